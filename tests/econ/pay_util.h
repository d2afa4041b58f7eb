/* pay_util.h -- a real coordinator with settlement for the pay tests: nodes with real Ed25519 keys, tasks run through coord_*, agent-signed final records. */
#ifndef AICN_TEST_PAY_UTIL_H
#define AICN_TEST_PAY_UTIL_H

#include "../../coordinator/blobs.h"
#include "../../coordinator/ledger.h"
#include "../../coordinator/pay.h"
#include "../../coordinator/settle.h"
#include "../../coordinator/task.h"

#include <aicn/canon.h>
#include <aicn/hash.h>
#include <aicn/key.h>
#include <aicn/pow.h>
#include <aicn/record.h>

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define PW_T0 1704110400LL /* 2024-01-01 12:00 UTC, coordinator seconds */
#define PW_S 1000000000LL
#define PW_AICN 1000000000LL
#define PW_NODES 4

struct pw {
	char dir[256];
	struct coord *c;
	struct pay *p;
	char image[80];
	int64_t renter_id;
	EVP_PKEY *key[PW_NODES];
	char node[PW_NODES][NODE_ID_HEX_LEN + 1];
	uint8_t pub[PW_NODES][KEY_PUB_LEN];
	int64_t row[PW_NODES];	     /* nodes.id */
	char provider[PW_NODES][16]; /* account names prov0.. */
};

static inline int pw_path(const struct pw *w, const char *name, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/%s", w->dir, name);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static inline cJSON *pw_json(const char *text)
{
	cJSON *v = NULL;

	if (canon_parse(text, strlen(text), CANON_MAX_DEPTH_DEFAULT, &v, NULL) < 0)
		return NULL;
	return v;
}

/* Open (or reopen) the coordinator and settlement in w->dir at now (coordinator seconds). */
static inline int pw_open(struct pw *w, int64_t now, const char *params_file, char *err,
			  size_t errlen)
{
	char db[320], blobs[320], key[320], cp[320];
	struct coord_params cp_ = {0};
	struct pay_config cfg;
	int r;

	coord_params_default(&cp_);
	cp_.heartbeat_timeout = 1000000;
	if (pw_path(w, "coord.db", db, sizeof(db)) < 0 ||
	    pw_path(w, "blobs", blobs, sizeof(blobs)) < 0 ||
	    pw_path(w, "coordinator.key", key, sizeof(key)) < 0 ||
	    pw_path(w, "checkpoints", cp, sizeof(cp)) < 0)
		return -ENAMETOOLONG;
	r = coord_open(db, blobs, &cp_, now, &w->c);
	if (r < 0)
		return r;
	{
		EVP_PKEY *k = NULL;

		r = key_load_or_create(key, &k);
		EVP_PKEY_free(k);
		if (r < 0)
			return r;
	}
	cfg = (struct pay_config){.key_file = key,
				  .origin = "aicn/ledger/test",
				  .checkpoint_dir = cp,
				  .params_file = params_file};
	r = pay_open(w->c, &cfg, now * PW_S, &w->p, err, errlen);
	if (r < 0)
		return r;
	r = store_account_ensure(coord_store(w->c), "alice", "renter", &w->renter_id);
	if (r < 0)
		return r;
	r = blobs_put(coord_blobs(w->c), "an image", 8, w->renter_id, BLOB_INPUT, now,
		      365LL * 86400, w->image);
	if (r < 0)
		return r;
	for (int i = 0; i < PW_NODES; i++) {
		char kp[320], name[32], body[512], e[256];
		struct coord_actions a = {0};
		int64_t acc = 0;
		cJSON *req;

		snprintf(name, sizeof(name), "node%d.key", i);
		snprintf(w->provider[i], sizeof(w->provider[i]), "prov%d", i);
		if (pw_path(w, name, kp, sizeof(kp)) < 0)
			return -ENAMETOOLONG;
		if (!w->key[i]) {
			r = key_load_or_create(kp, &w->key[i]);
			if (r < 0 || (r = key_raw_public(w->key[i], w->pub[i])) < 0 ||
			    (r = key_node_id(w->key[i], w->node[i])) < 0)
				return r;
		}
		/* ask 1 AICN per CPU-hour */
		snprintf(body, sizeof(body),
			 "{\"cores\": 4, \"memory\": 68719476736, \"price\": %lld}",
			 (long long)PW_AICN);
		req = pw_json(body);
		if (!req)
			return -EINVAL;
		r = store_account_ensure(coord_store(w->c), w->provider[i], "agent", &acc);
		if (r >= 0)
			r = coord_node_register(w->c, acc, w->node[i], req, now, &w->row[i], &a, e,
						sizeof(e));
		cJSON_Delete(req);
		coord_actions_clear(&a);
		free(a.v);
		if (r < 0) {
			snprintf(err, errlen, "register: %.200s", e);
			return r;
		}
	}
	return coord_flush(w->c);
}

static inline void pw_close(struct pw *w)
{
	w->p = pay_free(w->p);
	w->c = coord_free(w->c);
}

static inline void pw_free(struct pw *w)
{
	pw_close(w);
	for (int i = 0; i < PW_NODES; i++) {
		EVP_PKEY_free(w->key[i]);
		w->key[i] = NULL;
	}
}

static inline int pw_node_index(const struct pw *w, int64_t row)
{
	for (int i = 0; i < PW_NODES; i++)
		if (w->row[i] == row)
			return i;
	return -1;
}

/* The SUBMIT body: cores 1, max_wall 3600 s, max_cpu 3600 s, max_price and replicas given. */
static inline void pw_spec(const struct pw *w, int64_t max_price, int replicas,
			   const char *client_ref, char *buf, size_t len)
{
	char ref[96] = "";

	if (client_ref)
		snprintf(ref, sizeof(ref), ", \"client_ref\": \"%s\"", client_ref);
	snprintf(buf, len,
		 "{\"image\": \"%s\", \"command\": [\"/bin/true\"], \"cores\": 1, "
		 "\"memory\": 1073741824, \"max_wall_seconds\": 3600, \"max_cpu_seconds\": 3600, "
		 "\"max_price\": %lld, \"replicas\": %d%s}",
		 w->image, (long long)max_price, replicas, ref);
}

/* SUBMIT as the front does it: check funds, coord_submit, commit the escrow.  Returns the
 * task id or a negative errno (err says why). */
static inline int64_t pw_submit(struct pw *w, const char *spec_text, int64_t now,
				int64_t *ret_escrow, char *err, size_t errlen)
{
	cJSON *spec = pw_json(spec_text), *reply = NULL;
	int64_t esc = 0, id = 0;
	int r, dup = 0;

	if (!spec)
		return -EINVAL;
	r = pay_submit_check(w->p, "alice", spec, &esc, err, errlen);
	if (r >= 0)
		r = coord_submit(w->c, w->renter_id, spec, now, &reply, err, errlen);
	if (r >= 0 && (canon_get_i64(reply, "task_id", &id) < 0 ||
		       canon_get_bool(reply, "duplicate", &dup) < 0))
		r = -EBADMSG;
	if (r >= 0 && !dup)
		r = pay_submit_commit(w->p, "alice", id, spec, now * PW_S, reply);
	if (r >= 0 && canon_get_i64(reply, "escrow", &esc) < 0 && !dup)
		r = -EBADMSG;
	cJSON_Delete(spec);
	cJSON_Delete(reply);
	if (r < 0)
		return r;
	if (ret_escrow)
		*ret_escrow = esc;
	return id;
}

struct pw_run {
	int node;	   /* index into w's nodes */
	int64_t row;	   /* nodes.id */
	uint32_t replica;  /* slot */
	int64_t offered_s; /* coordinator seconds of the offer */
	int64_t price;	   /* agreed */
	unsigned pow_bits; /* given */
	char digest[80];   /* result digest reported */
	char *line;	   /* the signed final record */
	size_t len;
	uint64_t nonce;
};

/* The offers a scheduling pass made at now, as the front would send them. */
static inline int pw_offers(struct pw *w, int64_t task_id, int64_t now, struct pw_run *runs,
			    int max)
{
	struct coord_actions a = {0};
	int n = 0, r;

	r = coord_tick(w->c, now, &a);
	for (size_t i = 0; r >= 0 && i < a.n; i++) {
		struct store_node sn;
		struct store_task t = {0};

		if (a.v[i].kind != COORD_OFFER || a.v[i].task_id != task_id || n >= max)
			continue;
		memset(&runs[n], 0, sizeof(runs[n]));
		runs[n].row = a.v[i].node;
		runs[n].node = pw_node_index(w, a.v[i].node);
		runs[n].replica = a.v[i].idx;
		runs[n].offered_s = now;
		r = store_node_get(coord_store(w->c), a.v[i].node, &sn);
		if (r >= 0)
			r = store_task_get(coord_store(w->c), task_id, &t);
		if (r >= 0)
			r = pay_offer_terms(w->p, sn.price, t.max_price, &runs[n].price,
					    &runs[n].pow_bits);
		store_task_clear(&t);
		n++;
	}
	free(a.v);
	if (r >= 0)
		r = coord_flush(w->c);
	return r < 0 ? r : n;
}

struct pw_usage {
	int64_t start_s, end_s; /* node realtime, seconds after the offer */
	int64_t cpu_ns, kernel_ns;
	uint64_t seq;
	uint8_t result;	    /* digest = 32 bytes of this value */
	int signer;	    /* node whose key signs (-1: the running node) */
	const char *image;  /* the record's image digest (NULL: the task's) */
	uint64_t mem_bytes; /* the record's memory limit (0: 1 GiB, the spec's) */
};

/* The agent's final record for run R, signed, and its PoW stamp at the offer's difficulty. */
static inline int pw_record(struct pw *w, int64_t task_id, struct pw_run *run,
			    const struct pw_usage *u)
{
	struct usage_record rec = {0};
	struct key_signer *s = NULL;
	uint8_t h[SHA256_LEN];
	char hex[SHA256_HEX_LEN + 1];
	int signer = u->signer >= 0 ? u->signer : run->node;
	int64_t t0 = run->offered_s * PW_S;
	int r;

	rec.version = RECORD_VERSION;
	rec.type = RECORD_FINAL;
	snprintf(rec.node, sizeof(rec.node), "%s", w->node[run->node]);
	rec.seq = u->seq;
	rec.time_ns = (uint64_t)(t0 + u->end_s * PW_S);
	snprintf(rec.task, sizeof(rec.task), "%lld", (long long)task_id);
	rec.replica = run->replica;
	snprintf(rec.renter, sizeof(rec.renter), "alice");
	if (digest_parse(u->image ? u->image : w->image, rec.image) < 0)
		return -EINVAL;
	rec.cgroup_id = 42;
	rec.start_ns = (uint64_t)(t0 + u->start_s * PW_S);
	rec.end_ns = (uint64_t)(t0 + u->end_s * PW_S);
	rec.wall_ns = rec.end_ns - rec.start_ns;
	rec.cpu_ns = (uint64_t)u->cpu_ns;
	rec.cpu_kernel_ns = (uint64_t)u->kernel_ns;
	rec.limits = (struct record_limits){.cpu_quota_us = 100000,
					    .cpu_period_us = 100000,
					    .mem_bytes = u->mem_bytes ? u->mem_bytes : 1073741824,
					    .pids = 256,
					    .timeout_ns = 3600 * PW_S};
	rec.exit_kind = RECORD_EXIT_EXITED;
	rec.has_result = 1;
	memset(rec.result, u->result, SHA256_LEN);
	hex_encode(rec.result, SHA256_LEN, hex);
	snprintf(run->digest, sizeof(run->digest), "sha256:%s", hex);
	r = key_signer_new(w->key[signer], &s);
	if (r < 0)
		return r;
	free(run->line);
	run->line = NULL;
	r = record_sign(&rec, s, &run->line, &run->len);
	key_signer_free(s);
	if (r < 0)
		return r;
	sha256(run->line, run->len, h);
	{
		char task[24];

		snprintf(task, sizeof(task), "%lld", (long long)task_id);
		return pow_mint(task, rec.result, h, run->pow_bits, 0, 0, &run->nonce);
	}
}

/* Hand a run's result to settlement as the front does, at now (coordinator seconds). */
static inline int pw_result(struct pw *w, int64_t task_id, const struct pw_run *run, int64_t now,
			    enum pay_verdict *ret, char *err, size_t errlen)
{
	struct store_task t = {0};
	struct pay_result pr;
	cJSON *spec = NULL;
	int r;

	r = store_task_get(coord_store(w->c), task_id, &t);
	if (r < 0)
		return r;
	spec = pw_json(t.spec);
	store_task_clear(&t);
	if (!spec)
		return -EINVAL;
	pr = (struct pay_result){.task_id = task_id,
				 .replica = run->replica,
				 .renter = "alice",
				 .node_id = w->node[run->node],
				 .node_pubkey = w->pub[run->node],
				 .provider = w->provider[run->node],
				 .renewable_ppm = 500000,
				 .price = run->price,
				 .pow_bits = run->pow_bits,
				 .dispatched_ns = run->offered_s * PW_S,
				 .now_ns = now * PW_S,
				 .spec = spec,
				 .record_line = run->line,
				 .record_len = run->len,
				 .result_digest = run->digest,
				 .pow_nonce = run->nonce};
	r = pay_on_result(w->p, &pr, ret, err, errlen);
	cJSON_Delete(spec);
	return r;
}

/* The coordinator side of a run finishing: started and finished events. */
static inline int pw_events(struct pw *w, int64_t task_id, const struct pw_run *run, int64_t now)
{
	struct coord_actions a = {0};
	int r;

	r = coord_task_event(w->c, run->row, task_id, COORD_EV_STARTED, 0, NULL, NULL, now, &a);
	if (r >= 0)
		r = coord_task_event(w->c, run->row, task_id, COORD_EV_FINISHED, 0, run->digest,
				     NULL, now, &a);
	free(a.v);
	return r;
}

static inline int64_t pw_balance(struct pw *w, const char *acct)
{
	int64_t v = 0;
	struct ledger *l = NULL;

	if (ledger_new(store_db(coord_store(w->c)), &l) < 0)
		return -1;
	if (ledger_balance(l, acct, &v) < 0)
		v = -1;
	ledger_free(l);
	return v;
}

/* Replay the whole ledger with the auditor's recomputation, signed records required. */
static inline int pw_verify(struct pw *w, struct ledger_report *rep)
{
	struct settle_audit *a = NULL;
	int r;

	if (settle_audit_new(&a) < 0)
		return -ENOMEM;
	settle_audit_require_records(a, true);
	r = ledger_verify(store_db(coord_store(w->c)), settle_audit_visit, a, rep);
	settle_audit_free(a);
	return r;
}

#endif /* AICN_TEST_PAY_UTIL_H */
