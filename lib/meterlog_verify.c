/* meterlog_verify.c -- offline audit of a meter log: signatures in parallel, then chain, sequence, time, Merkle roots and checkpoints in order. */
#include <aicn/compiler.h>

#include "meterlog_int.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define VL_WINDOW 65536 /* lines checked in parallel before the in-order pass */
#define VL_CHUNK 256	/* lines a worker takes at a time */
#define VL_MAX_THREADS 64

enum vl_kind {
	VL_RECORD,
	VL_CHECKPOINT,
	VL_BAD,
};

/* What the parallel pass learned about one line. */
struct vline {
	const char *p;
	uint32_t len;
	uint8_t kind;	 /* enum vl_kind */
	int8_t sig_ok;	 /* record signature: 1 valid, 0 not, -1 not checked */
	uint8_t node_ok; /* record's node id is the key's */
	uint8_t cp_ok;	 /* checkpoint signature valid */
	const char *err; /* why VL_BAD, or the checkpoint's reason */
	uint64_t seq, time;
	uint8_t prev[SHA256_LEN], chain[SHA256_LEN], leaf[SHA256_LEN];
	struct checkpoint *cp; /* parsed checkpoint (VL_CHECKPOINT) */
};

struct vctx {
	const struct meterlog_verify_opts *o;
	char node[NODE_ID_HEX_LEN + 1];
	char origin[CHECKPOINT_ORIGIN_MAX + 1];
	struct vline *lines;
	size_t n;
	atomic_size_t next;
	atomic_int oom;
};

const char *meterlog_fail_name(enum meterlog_fail f)
{
	static const char *const names[] = {
		[ML_OK] = "ok",
		[ML_MALFORMED] = "malformed line",
		[ML_BAD_SIGNATURE] = "bad signature",
		[ML_WRONG_NODE] = "record of another node",
		[ML_BROKEN_CHAIN] = "broken chain",
		[ML_SEQ_GAP] = "sequence gap",
		[ML_SEQ_REORDER] = "reordering or duplicate",
		[ML_TIME_BACKWARDS] = "time went backwards",
		[ML_CP_BAD_SIGNATURE] = "checkpoint bad signature",
		[ML_CP_SIZE] = "checkpoint size mismatch (records deleted or inserted)",
		[ML_CP_MISSING] = "checkpoint missing (a checkpoint line was deleted)",
		[ML_CP_ROOT] = "checkpoint root mismatch (records altered after sealing)",
		[ML_CP_INCONSISTENT] = "inconsistent checkpoints (lying log)",
		[ML_TRUNCATED] = "truncation against a signed checkpoint",
		[ML_UNSEALED_TAIL] = "unsealed tail",
		[ML_TORN_TAIL] = "torn last line",
		[ML_EMPTY] = "no records",
	};

	return (unsigned)f < ARRAY_SIZE(names) ? names[f] : "?";
}

/*
 * Checkpoints-only mode reads a record's chain fields without a full parse: in
 * canonical JSON an unescaped '"' never occurs inside a string, so "key": can
 * only match a member.  Everything else about the bytes is vouched for by the
 * signed Merkle roots.
 */
static const char *member_value(const char *line, size_t len, const char *pat)
{
	const char *p = memmem(line, len, pat, strlen(pat));

	return p ? p + strlen(pat) : NULL;
}

static int scan_u64(const char *p, const char *end, uint64_t *ret)
{
	uint64_t v = 0;
	int n = 0;

	while (p < end && *p >= '0' && *p <= '9' && n < 20) {
		v = v * 10 + (uint64_t)(*p++ - '0');
		n++;
	}
	if (n == 0)
		return -EINVAL;
	*ret = v;
	return 0;
}

static int quick_fields(const char *line, size_t len, const char *node, struct vline *v)
{
	const char *end = line + len, *p;

	if (len < 2 || line[0] != '{' || line[len - 1] != '}')
		return -EINVAL;
	/* canonical key order: node < prev < seq < time, so each search starts after the last */
	p = member_value(line, len, "\"node\":\"");
	if (!p || end - p < NODE_ID_HEX_LEN + 1)
		return -EINVAL;
	v->node_ok = memcmp(p, node, NODE_ID_HEX_LEN) == 0 && p[NODE_ID_HEX_LEN] == '"';
	p = member_value(p, (size_t)(end - p), "\"prev\":\"");
	if (!p || end - p < SHA256_HEX_LEN ||
	    hex_decode(p, SHA256_HEX_LEN, v->prev, SHA256_LEN) < 0)
		return -EINVAL;
	p = member_value(p, (size_t)(end - p), "\"seq\":");
	if (!p || scan_u64(p, end, &v->seq) < 0)
		return -EINVAL;
	p = member_value(p, (size_t)(end - p), "\"time\":");
	if (!p || scan_u64(p, end, &v->time) < 0)
		return -EINVAL;
	return 0;
}

static void check_line(struct vctx *c, struct vline *v, struct key_verifier *kv)
{
	if (ml_is_checkpoint_line(v->p, v->len)) {
		_cleanup_free_ char *note = NULL;
		size_t nl;

		v->kind = VL_CHECKPOINT;
		if (ml_parse_checkpoint_line(v->p, v->len, &note, &nl, &v->err) < 0) {
			v->kind = VL_BAD;
			return;
		}
		v->cp = calloc(1, sizeof(*v->cp));
		if (!v->cp) {
			c->oom = 1;
			v->kind = VL_BAD;
			v->err = "out of memory";
			return;
		}
		v->cp_ok = checkpoint_verify(note, nl, c->o->pub, c->origin, v->cp, &v->err) == 0;
		return;
	}
	v->kind = VL_RECORD;
	if (v->len > RECORD_LINE_MAX) {
		v->kind = VL_BAD;
		v->err = "record line too long";
		return;
	}
	if (quick_fields(v->p, v->len, c->node, v) < 0) {
		v->kind = VL_BAD;
		v->err = "not a record line";
		return;
	}
	v->sig_ok = -1;
	if (!c->o->checkpoints_only) {
		/*
		 * The signature covers the line without its "sig" member, byte for
		 * byte; verified, those bytes are the node's own canonical record.
		 */
		static const char pat[] = ",\"sig\":\"";
		const char *p = memmem(v->p, v->len, pat, sizeof(pat) - 1), *q = NULL;
		char m[RECORD_LINE_MAX];
		uint8_t *sig = NULL;
		size_t siglen = 0, mlen;

		if (p)
			q = memchr(p + sizeof(pat) - 1, '"',
				   v->len - (size_t)(p - v->p) - (sizeof(pat) - 1));
		if (!q ||
		    base64_decode(p + sizeof(pat) - 1, (size_t)(q - p) - (sizeof(pat) - 1), &sig,
				  &siglen) < 0 ||
		    siglen != KEY_SIG_LEN) {
			free(sig);
			v->kind = VL_BAD;
			v->err = "record without a valid \"sig\" member";
			return;
		}
		mlen = record_unsigned_from_line(v->p, v->len, m);
		v->sig_ok = key_verifier_check(kv, m, mlen, sig) == 0;
		free(sig);
		if (c->o->strict) {
			struct usage_record r;

			if (record_parse(v->p, v->len, &r, &v->err) < 0) {
				v->kind = VL_BAD;
				return;
			}
		}
	}
	ml_chain_next(v->prev, v->p, v->len, v->chain);
	merkle_hash_leaf(v->p, v->len, v->leaf);
}

static void *worker(void *arg)
{
	struct vctx *c = arg;
	struct key_verifier *kv = NULL;

	if (!c->o->checkpoints_only && key_verifier_new(c->o->pub, &kv) < 0) {
		c->oom = 1;
		return NULL;
	}
	for (;;) {
		size_t i = atomic_fetch_add(&c->next, VL_CHUNK), end;

		if (i >= c->n)
			break;
		end = MIN(i + VL_CHUNK, c->n);
		for (; i < end; i++)
			check_line(c, &c->lines[i], kv);
	}
	key_verifier_free(kv);
	return NULL;
}

/* ---- the in-order pass ------------------------------------------------------ */

struct signed_cp {
	uint64_t size;
	uint8_t root[SHA256_LEN];
	uint64_t line; /* 0 for a checkpoint the auditor holds */
	int matches;   /* root equals the records' tree at its size */
};

struct vstate {
	struct meterlog_verify_result *res;
	struct merkle_tree *tree;
	uint8_t chain[SHA256_LEN];
	uint64_t expect_seq;
	uint64_t last_time;
	uint64_t records;
	uint64_t line_no;
	struct signed_cp *cps; /* every validly signed checkpoint */
	size_t ncps, cps_cap;
	uint64_t last_cp_size;	    /* size of the last validly signed checkpoint line */
	struct signed_cp last_good; /* last checkpoint matching the records */
	int have_last_good;
};

static void fail_at(struct vstate *s, enum meterlog_fail f, uint64_t line, uint64_t seq,
		    const char *fmt, ...) _printf_(5, 6);

static void fail_at(struct vstate *s, enum meterlog_fail f, uint64_t line, uint64_t seq,
		    const char *fmt, ...)
{
	struct meterlog_verify_result *res = s->res;
	va_list ap;

	res->failures++;
	if (res->fail != ML_OK)
		return;
	res->fail = f;
	res->fail_line = line;
	res->fail_seq = seq;
	va_start(ap, fmt);
	vsnprintf(res->reason, sizeof(res->reason), fmt, ap);
	va_end(ap);
}

static int push_cp(struct vstate *s, const struct signed_cp *cp)
{
	if (s->ncps == s->cps_cap) {
		size_t cap = s->cps_cap ? s->cps_cap * 2 : 64;
		struct signed_cp *n = realloc(s->cps, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		s->cps = n;
		s->cps_cap = cap;
	}
	s->cps[s->ncps++] = *cp;
	return 0;
}

static int take_checkpoint(struct vstate *s, struct vline *v)
{
	const struct checkpoint *cp = v->cp;
	struct signed_cp sc = {.line = s->line_no};
	uint8_t root[SHA256_LEN];
	int r;

	if (!v->cp_ok) {
		fail_at(s, ML_CP_BAD_SIGNATURE, s->line_no, 0,
			"line %llu: checkpoint does not verify with the node key: %s",
			(unsigned long long)s->line_no, v->err ? v->err : "?");
		return 0;
	}
	s->res->checkpoints++;
	{
		char want[CHECKPOINT_EXT_MAX + 1];

		snprintf(want, sizeof(want), "prev %llu", (unsigned long long)s->last_cp_size);
		if (strcmp(cp->ext, want) != 0)
			fail_at(s, ML_CP_MISSING, s->line_no, 0,
				"line %llu: checkpoint says \"%s\" but the checkpoint before it in the log sealed %llu records: a checkpoint line was deleted or moved",
				(unsigned long long)s->line_no, cp->ext,
				(unsigned long long)s->last_cp_size);
		s->last_cp_size = cp->size;
	}
	sc.size = cp->size;
	memcpy(sc.root, cp->root, SHA256_LEN);
	if (cp->size != s->records) {
		fail_at(s, ML_CP_SIZE, s->line_no, 0,
			"line %llu: checkpoint of size %llu follows %llu records: records were deleted or inserted",
			(unsigned long long)s->line_no, (unsigned long long)cp->size,
			(unsigned long long)s->records);
		if (cp->size > s->records)
			return push_cp(s, &sc); /* judged against the whole log at the end */
	}
	r = merkle_root(s->tree, cp->size, root);
	if (r < 0)
		return r;
	sc.matches = memcmp(root, cp->root, SHA256_LEN) == 0;
	if (!sc.matches) {
		fail_at(s, ML_CP_ROOT, s->line_no, 0,
			"line %llu: checkpoint of size %llu has a root the records do not give: records were altered after it was signed",
			(unsigned long long)s->line_no, (unsigned long long)cp->size);
	} else if (cp->size == s->records) {
		/* consistency with the previous good checkpoint, as an RFC 9162 proof */
		if (s->have_last_good) {
			uint8_t proof[MERKLE_MAX_PROOF][MERKLE_HASH_LEN];
			size_t n;

			r = merkle_consistency_proof(s->tree, s->last_good.size, cp->size, proof,
						     &n);
			if (r < 0)
				return r;
			if (merkle_verify_consistency(s->last_good.size, cp->size,
						      s->last_good.root, cp->root, proof, n) < 0)
				fail_at(s, ML_CP_INCONSISTENT, s->line_no, 0,
					"line %llu: checkpoint not consistent with the one at line %llu",
					(unsigned long long)s->line_no,
					(unsigned long long)s->last_good.line);
		}
		s->last_good = sc;
		s->have_last_good = 1;
		s->res->sealed = cp->size;
	}
	return push_cp(s, &sc);
}

static void take_record(struct vstate *s, const struct vline *v)
{
	unsigned long long ln = (unsigned long long)s->line_no;

	if (!v->node_ok)
		fail_at(s, ML_WRONG_NODE, s->line_no, v->seq,
			"line %llu (seq %llu): record of another node", ln,
			(unsigned long long)v->seq);
	if (v->sig_ok == 0)
		fail_at(s, ML_BAD_SIGNATURE, s->line_no, v->seq,
			"line %llu (seq %llu): signature does not verify with the node key", ln,
			(unsigned long long)v->seq);
	if (v->seq > s->expect_seq)
		fail_at(s, ML_SEQ_GAP, s->line_no, v->seq,
			"line %llu: sequence jumps from %llu to %llu: records missing", ln,
			(unsigned long long)s->expect_seq, (unsigned long long)v->seq);
	else if (v->seq < s->expect_seq)
		fail_at(s, ML_SEQ_REORDER, s->line_no, v->seq,
			"line %llu: sequence number %llu where %llu was due: duplicated or reordered record",
			ln, (unsigned long long)v->seq, (unsigned long long)s->expect_seq);
	else if (memcmp(v->prev, s->chain, SHA256_LEN) != 0)
		fail_at(s, ML_BROKEN_CHAIN, s->line_no, v->seq,
			"line %llu (seq %llu): \"prev\" is not the chain value of the record before: broken chain",
			ln, (unsigned long long)v->seq);
	if (v->time < s->last_time)
		fail_at(s, ML_TIME_BACKWARDS, s->line_no, v->seq,
			"line %llu (seq %llu): time goes backwards", ln,
			(unsigned long long)v->seq);
	/* go on from this record, so one problem is reported once */
	s->expect_seq = v->seq + 1;
	memcpy(s->chain, v->chain, SHA256_LEN);
	s->last_time = MAX(s->last_time, v->time);
}

/* Two validly signed checkpoints that cannot both describe one append-only log. */
static void find_lies(struct vstate *s)
{
	struct meterlog_verify_result *res = s->res;

	for (size_t i = 0; i < s->ncps && !res->lying; i++) {
		for (size_t j = 0; j < s->ncps && !res->lying; j++) {
			const struct signed_cp *a = &s->cps[i], *b = &s->cps[j];
			int lie = 0;

			if (i == j)
				continue;
			if (a->size == b->size && memcmp(a->root, b->root, SHA256_LEN) != 0)
				lie = 1; /* a fork: two roots for one size */
			/* b matches the records, so its first a->size leaves are known: a contradicts them */
			if (b->matches && !a->matches && a->size <= b->size)
				lie = 1;
			if (!lie)
				continue;
			res->lying = 1;
			snprintf(
				res->lying_detail, sizeof(res->lying_detail),
				"checkpoint %s%llu (size %llu) and checkpoint %s%llu (size %llu) are both signed by the node key but no append-only log has both: proof of a lying log",
				a->line ? "at line " : "held by the auditor #",
				(unsigned long long)(a->line ? a->line : i + 1),
				(unsigned long long)a->size,
				b->line ? "at line " : "held by the auditor #",
				(unsigned long long)(b->line ? b->line : j + 1),
				(unsigned long long)b->size);
		}
	}
}

static void free_window(struct vline *lines, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(lines[i].cp);
		lines[i].cp = NULL;
	}
}

static int run_window(struct vctx *c, unsigned threads)
{
	pthread_t tids[VL_MAX_THREADS];
	unsigned started = 0;

	c->next = 0;
	for (unsigned t = 1; t < threads; t++) {
		if (pthread_create(&tids[started], NULL, worker, c) != 0)
			break;
		started++;
	}
	worker(c);
	for (unsigned t = 0; t < started; t++)
		pthread_join(tids[t], NULL);
	return c->oom ? -ENOMEM : 0;
}

int meterlog_verify(const char *buf, size_t len, const struct meterlog_verify_opts *o,
		    struct meterlog_verify_result *res)
{
	struct vctx c = {.o = o};
	struct vstate s = {.res = res};
	unsigned threads = o->threads;
	size_t pos = 0;
	int r = 0;

	memset(res, 0, sizeof(*res));
	if (!o->pub)
		return -EINVAL;
	if (threads == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);

		threads = n > 0 ? (unsigned)n : 1;
	}
	threads = MIN(threads, VL_MAX_THREADS);
	r = key_node_id(o->pub, c.node);
	if (r < 0)
		return r;
	ml_origin(c.node, c.origin);
	r = merkle_new(&s.tree);
	if (r < 0)
		return r;
	c.lines = calloc(VL_WINDOW, sizeof(*c.lines));
	if (!c.lines) {
		r = -ENOMEM;
		goto out;
	}
	while (pos < len) {
		/* split a window of complete lines */
		c.n = 0;
		while (pos < len && c.n < VL_WINDOW) {
			const char *nl = memchr(buf + pos, '\n', len - pos);
			size_t l;

			if (!nl)
				break;
			l = (size_t)(nl - (buf + pos));
			memset(&c.lines[c.n], 0, sizeof(c.lines[c.n]));
			c.lines[c.n].p = buf + pos;
			c.lines[c.n].len = l > UINT32_MAX ? UINT32_MAX : (uint32_t)l;
			c.n++;
			pos += l + 1;
		}
		if (c.n == 0)
			break;
		r = run_window(&c, c.n < 4 * VL_CHUNK ? 1 : threads);
		if (r < 0) {
			free_window(c.lines, c.n);
			goto out;
		}
		for (size_t i = 0; i < c.n && r == 0; i++) {
			struct vline *v = &c.lines[i];

			s.line_no++;
			res->lines++;
			switch (v->kind) {
			case VL_BAD:
				fail_at(&s, ML_MALFORMED, s.line_no, 0, "line %llu: %s",
					(unsigned long long)s.line_no,
					v->err ? v->err : "malformed");
				break;
			case VL_CHECKPOINT:
				r = take_checkpoint(&s, v);
				break;
			case VL_RECORD:
				take_record(&s, v);
				r = merkle_append_hash(s.tree, v->leaf);
				s.records++;
				res->records++;
				break;
			}
		}
		free_window(c.lines, c.n);
		if (r < 0)
			goto out;
	}
	if (pos < len)
		fail_at(&s, ML_TORN_TAIL, s.line_no + 1, 0,
			"line %llu: incomplete last line (%zu bytes, a write cut short); the agent drops it on its next start",
			(unsigned long long)s.line_no + 1, len - pos);
	/* checkpoints the auditor holds */
	for (size_t i = 0; o->external && o->external[i]; i++) {
		struct checkpoint cp;
		const char *why = NULL;
		struct signed_cp sc = {0};
		uint8_t root[SHA256_LEN];

		if (checkpoint_verify(o->external[i], strlen(o->external[i]), o->pub, c.origin, &cp,
				      &why) < 0) {
			fail_at(&s, ML_CP_BAD_SIGNATURE, 0, 0,
				"checkpoint #%zu given with --checkpoint does not verify: %s",
				i + 1, why ? why : "?");
			continue;
		}
		sc.size = cp.size;
		memcpy(sc.root, cp.root, SHA256_LEN);
		if (cp.size > s.records) {
			fail_at(&s, ML_TRUNCATED, 0, 0,
				"checkpoint #%zu (size %llu, signed by the node) covers records the log no longer has (it has %llu): the log was truncated",
				i + 1, (unsigned long long)cp.size, (unsigned long long)s.records);
		} else {
			r = merkle_root(s.tree, cp.size, root);
			if (r < 0)
				goto out;
			sc.matches = memcmp(root, cp.root, SHA256_LEN) == 0;
			if (!sc.matches)
				fail_at(&s, ML_CP_INCONSISTENT, 0, 0,
					"checkpoint #%zu (size %llu, signed by the node) does not match the log's records",
					i + 1, (unsigned long long)cp.size);
		}
		r = push_cp(&s, &sc);
		if (r < 0)
			goto out;
	}
	find_lies(&s);
	if (res->lying && res->fail != ML_CP_INCONSISTENT) {
		res->failures++;
		if (res->fail == ML_OK) {
			res->fail = ML_CP_INCONSISTENT;
			snprintf(res->reason, sizeof(res->reason), "%s", res->lying_detail);
		}
	}
	if (s.records == 0)
		fail_at(&s, ML_EMPTY, 0, 0, "the log holds no records");
	else if (res->sealed < s.records)
		fail_at(&s, ML_UNSEALED_TAIL, 0, res->sealed,
			"records %llu..%llu are not covered by a checkpoint: unsealed tail (a running or crashed agent seals them on its next checkpoint)",
			(unsigned long long)res->sealed, (unsigned long long)s.records - 1);
	r = merkle_root(s.tree, s.records, res->root);
	if (r == 0 && res->fail != ML_OK)
		r = -EBADMSG;
out:
	free(c.lines);
	free(s.cps);
	merkle_free(s.tree);
	return r;
}

int meterlog_verify_file(const char *path, const struct meterlog_verify_opts *o,
			 struct meterlog_verify_result *res)
{
	_cleanup_close_ int fd = -1;
	struct stat st;
	void *map;
	int r;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if (st.st_size == 0)
		return meterlog_verify("", 0, o, res);
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED)
		return -errno;
	(void)madvise(map, (size_t)st.st_size, MADV_SEQUENTIAL);
	r = meterlog_verify(map, (size_t)st.st_size, o, res);
	munmap(map, (size_t)st.st_size);
	return r;
}
