/* front.c -- the coordinator's network front: per-type handlers, rounds (flush before send), watchers, blobs, offers. */
#include "front.h"

#include "blobs.h"
#include "pay.h"
#include "sched.h"
#include "store.h"

#include <aicn/canon.h>
#include <aicn/compiler.h>
#include <aicn/hash.h>
#include <aicn/key.h>
#include <aicn/market_proto.h>
#include <aicn/net.h>
#include <aicn/proto.h>
#include <aicn/record.h>
#include <aicn/version.h>

#include <errno.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LIVE_BUCKETS 4096
#define WATCH_PER_CONN 256 /* tasks one connection may watch at once */
#define UPDATE_CPU_MS 1000 /* live cpu_ns goes to watchers at most this often */
#define TASK_ID_MAX ((int64_t)1 << 53)
#define MIB (1ULL << 20)

DEFINE_TRIVIAL_CLEANUP_FUNC(cJSON, cJSON_Delete)

struct front;
struct live;

/* One watcher: a connection waiting for UPDATEs about one task. */
struct watch {
	struct peer *p;
	struct live *l;
	struct watch *lnext; /* in l->watchers */
	struct watch *pnext; /* in p->watches */
};

/* What the front knows of an unfinished task beyond the store: live CPU time, watchers. */
struct live {
	int64_t task_id;
	int sent_state;			  /* state in the last UPDATE, -1 = none yet */
	uint64_t cpu[SCHED_MAX_REPLICAS]; /* live cpu_ns per replica slot (TASK_STATUS) */
	uint64_t cpu_sent;		  /* sum in the last UPDATE */
	uint64_t cpu_sent_ms;		  /* loop time of that UPDATE */
	int64_t started_ns;		  /* realtime of the first "running", 0 = not yet */
	bool start_sent;		  /* watchers were told it started (wall_ns) */
	bool dirty;			  /* in f->dirty */
	struct watch *watchers;
	struct live *hnext;
};

/* Per connection. */
struct peer {
	struct front *f;
	struct net_conn *c;
	enum aicn_role role;
	int64_t account;	 /* accounts.id (certificate CN) */
	int64_t node;		 /* agents: nodes.id after REGISTER, 0 before */
	struct key_verifier *kv; /* agents: the certificate key, for usage records */
	struct blob_upload *up;	 /* upload in progress on this connection */
	char up_digest[80];
	uint64_t up_size, up_off;
	unsigned nwatch;
	struct watch *watches;
	struct peer *prev, *next; /* in front.peers */
};

/* A message waiting for the end of the round. */
struct out {
	struct net_conn *c; /* referenced */
	cJSON *msg;
};

struct front {
	struct front_config cfg;
	struct coord *c;
	struct net_server *srv;
	struct loop_timer *round_timer, *tick_timer;
	bool round_armed, need_sched;
	int fatal;
	struct coord_actions actions;
	struct out *out;
	size_t nout, capout;
	struct peer *peers;    /* every connection past HELLO */
	struct peer **by_node; /* nodes.id -> connected agent */
	size_t nby_node;
	struct live *live[LIVE_BUCKETS];
	int64_t *dirty; /* task ids whose state or cpu changed this round */
	size_t ndirty, capdirty;
	int64_t *ended; /* task ids that reached a final state this round */
	size_t nended, capended;
	uint64_t placements, rounds;
};

static void flog(struct front *f, enum log_level lvl, const char *fmt, ...) _printf_(3, 4);
static void flog(struct front *f, enum log_level lvl, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	if (!f->cfg.log || lvl > log_get_level())
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	f->cfg.log(f->cfg.log_ud, lvl, line);
}

static int64_t now_s(void)
{
	return (int64_t)time(NULL);
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int push_id(int64_t **v, size_t *n, size_t *cap, int64_t id)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 64;
		int64_t *nv = realloc(*v, nc * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		*v = nv;
		*cap = nc;
	}
	(*v)[(*n)++] = id;
	return 0;
}

/* ---- the round: everything goes out after the flush ---- */

static void round_arm(struct front *f)
{
	if (!f->round_armed) {
		f->round_armed = true;
		loop_timer_arm(f->round_timer, 0);
	}
}

/* Queue msg (owned from now on) to c for the end of the round. */
static int out_push(struct front *f, struct net_conn *c, cJSON *msg)
{
	if (!msg)
		return -ENOMEM;
	if (f->nout == f->capout) {
		size_t nc = f->capout ? f->capout * 2 : 64;
		struct out *n = realloc(f->out, nc * sizeof(*n));

		if (!n) {
			cJSON_Delete(msg);
			return -ENOMEM;
		}
		f->out = n;
		f->capout = nc;
	}
	f->out[f->nout++] = (struct out){net_conn_ref(c), msg};
	round_arm(f);
	return 0;
}

static int q_ack(struct peer *p, int64_t ref, int64_t seq)
{
	cJSON *m = proto_new(PROTO_ACK);

	if (m &&
	    (canon_add_i64(m, "ref", ref) < 0 || (seq >= 0 && canon_add_i64(m, "seq", seq) < 0))) {
		cJSON_Delete(m);
		m = NULL;
	}
	return out_push(p->f, p->c, m);
}

static int q_error(struct peer *p, int64_t ref, const char *code, const char *fmt, ...)
	_printf_(4, 5);
static int q_error(struct peer *p, int64_t ref, const char *code, const char *fmt, ...)
{
	cJSON *m = proto_new(PROTO_ERROR);
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* Messages may quote what a peer sent: keep them printable ASCII. */
	for (char *s = msg; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
			*s = '?';
	if (m &&
	    (!cJSON_AddStringToObject(m, "code", code) ||
	     !cJSON_AddStringToObject(m, "message", msg) || canon_add_i64(m, "ref", ref) < 0)) {
		cJSON_Delete(m);
		m = NULL;
	}
	return out_push(p->f, p->c, m);
}

/* ERROR for a call that failed with r: the reason it wrote into err, else strerror(r). */
static int q_failed(struct peer *p, int64_t ref, const char *code, int r, const char *err)
{
	return q_error(p, ref, code, "%s", err[0] ? err : strerror(-r));
}

/* REPLY {ref, data}; data is owned from now on. */
static int q_reply(struct peer *p, int64_t ref, cJSON *data)
{
	cJSON *m = data ? proto_new(market_type(MKT_REPLY)) : NULL;

	if (!m || canon_add_i64(m, "ref", ref) < 0 || !cJSON_AddItemToObject(m, "data", data)) {
		cJSON_Delete(m);
		cJSON_Delete(data);
		return -ENOMEM;
	}
	return out_push(p->f, p->c, m);
}

static const char *code_of(int r)
{
	switch (r) {
	case -ENOENT:
		return "not_found";
	case -EINVAL:
		return "invalid";
	case -ENOSPC:
		return "refused";
	case -EEXIST:
		return "conflict";
	case -EALREADY:
		return "final";
	case -EPERM:
	case -EACCES:
		return "forbidden";
	default:
		return "internal";
	}
}

/* ---- live tasks and watchers ---- */

static struct live **live_slot(struct front *f, int64_t task_id)
{
	struct live **l = &f->live[(uint64_t)task_id % LIVE_BUCKETS];

	while (*l && (*l)->task_id != task_id)
		l = &(*l)->hnext;
	return l;
}

static struct live *live_get(struct front *f, int64_t task_id, bool create)
{
	struct live **slot = live_slot(f, task_id), *l = *slot;

	if (l || !create)
		return l;
	l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	l->task_id = task_id;
	l->sent_state = -1;
	*slot = l;
	return l;
}

static void live_drop(struct front *f, int64_t task_id)
{
	struct live **slot = live_slot(f, task_id), *l = *slot;

	if (!l || l->watchers)
		return;
	*slot = l->hnext;
	free(l);
}

static void mark_dirty(struct front *f, int64_t task_id)
{
	struct live *l = live_get(f, task_id, false);

	if (!l || l->dirty)
		return;
	if (push_id(&f->dirty, &f->ndirty, &f->capdirty, task_id) == 0) {
		l->dirty = true;
		round_arm(f);
	}
}

static void watch_remove(struct front *f, struct watch *w)
{
	struct watch **pp;

	for (pp = &w->l->watchers; *pp && *pp != w; pp = &(*pp)->lnext)
		;
	if (*pp)
		*pp = w->lnext;
	for (pp = &w->p->watches; *pp && *pp != w; pp = &(*pp)->pnext)
		;
	if (*pp)
		*pp = w->pnext;
	w->p->nwatch--;
	if (!w->l->watchers && !w->l->dirty && w->l->sent_state >= TASK_DONE)
		live_drop(f, w->l->task_id);
	free(w);
}

static uint64_t live_cpu(const struct live *l)
{
	uint64_t sum = 0;

	for (unsigned i = 0; i < SCHED_MAX_REPLICAS; i++)
		sum += l->cpu[i];
	return sum;
}

/* UPDATE for every watcher of l when its state changed, or its CPU time (at most once a second). */
static int live_update(struct front *f, struct live *l, bool force_cpu)
{
	struct store_task t;
	bool final, changed;
	uint64_t cpu = live_cpu(l), ms = loop_now_ms(f->cfg.loop);
	char id[24];
	int r;

	if (!l->watchers)
		return 0;
	r = store_task_get(coord_store(f->c), l->task_id, &t);
	if (r < 0)
		return r;
	store_task_clear(&t);
	final = t.state >= TASK_DONE;
	/* A start is news too: the first UPDATE with wall_ns says the sandbox runs. */
	changed = t.state != l->sent_state || (l->started_ns && !l->start_sent);
	if (!changed && (cpu == l->cpu_sent || (!force_cpu && ms - l->cpu_sent_ms < UPDATE_CPU_MS)))
		return 0;
	snprintf(id, sizeof(id), "%lld", (long long)l->task_id);
	for (struct watch *w = l->watchers, *next; w; w = next) {
		cJSON *m = proto_new(market_type(MKT_UPDATE));

		next = w->lnext;
		if (!m || !cJSON_AddStringToObject(m, "task_id", id) ||
		    !cJSON_AddStringToObject(m, "state", task_state_name(t.state)) ||
		    canon_add_u64(m, "cpu_ns", cpu) < 0 ||
		    !cJSON_AddBoolToObject(m, "final", final) ||
		    (l->started_ns && canon_add_i64(m, "wall_ns", now_ns() - l->started_ns) < 0) ||
		    (t.reason[0] && !cJSON_AddStringToObject(m, "reason", t.reason)) ||
		    (t.state == TASK_DONE && t.result_digest[0] &&
		     !cJSON_AddStringToObject(m, "result_digest", t.result_digest))) {
			cJSON_Delete(m);
			return -ENOMEM;
		}
		out_push(f, w->p->c, m);
		if (final)
			watch_remove(f, w);
	}
	l->sent_state = t.state;
	l->start_sent = l->started_ns != 0;
	l->cpu_sent = cpu;
	l->cpu_sent_ms = ms;
	return 0;
}

/* ---- offers and cancels ---- */

static int parse_task_id(const char *s, int64_t *ret)
{
	int64_t v = 0;

	if (!s || !*s || *s == '0' || strlen(s) > 16)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		v = v * 10 + (*s - '0');
	}
	if (v > TASK_ID_MAX)
		return -EINVAL;
	*ret = v;
	return 0;
}

static struct peer *node_peer(struct front *f, int64_t node)
{
	return node > 0 && (size_t)node < f->nby_node ? f->by_node[node] : NULL;
}

/* The TASK_OFFER message for an offer action (protocol field names). */
static int offer_build(struct front *f, const struct coord_action *a, cJSON **ret)
{
	_cleanup_(cJSON_Deletep) cJSON *body = NULL;
	const struct sched_node *n = sched_node_get(coord_sched(f->c), a->node);
	const cJSON *env, *it, *in;
	struct store_task t;
	int64_t cores, mem, cpu_s, wall_s, max_price, price;
	unsigned pow_bits = 0;
	char id[24], renter[128] = "";
	cJSON *m, *arr;
	int r;

	if (!n)
		return -ENOENT;
	r = coord_offer_body(f->c, a, &body);
	if (r < 0)
		return r;
	r = store_task_get(coord_store(f->c), a->task_id, &t);
	if (r < 0)
		return r;
	store_account_name(coord_store(f->c), t.account_id, renter, sizeof(renter));
	store_task_clear(&t);
	if (canon_get_i64(body, "cores", &cores) < 0 || canon_get_i64(body, "memory", &mem) < 0 ||
	    canon_get_i64(body, "max_cpu_seconds", &cpu_s) < 0 ||
	    canon_get_i64(body, "max_wall_seconds", &wall_s) < 0 ||
	    canon_get_i64(body, "max_price", &max_price) < 0)
		return -EBADMSG;
	if (f->cfg.pay) {
		r = pay_offer_terms(f->cfg.pay, n->price, max_price, &price, &pow_bits);
		if (r < 0)
			return r;
	} else {
		price = MIN(n->price, max_price);
	}
	snprintf(id, sizeof(id), "%lld", (long long)a->task_id);
	m = proto_new(PROTO_TASK_OFFER);
	if (!m)
		return -ENOMEM;
	r = -ENOMEM;
	arr = cJSON_CreateArray();
	if (!arr || !cJSON_AddItemToObject(m, "env", arr))
		goto fail;
	env = cJSON_GetObjectItemCaseSensitive(body, "env");
	cJSON_ArrayForEach (it, env) {
		_cleanup_free_ char *kv = NULL;

		if (asprintf(&kv, "%s=%s", it->string, it->valuestring) < 0 ||
		    !cJSON_AddItemToArray(arr, cJSON_CreateString(kv)))
			goto fail;
	}
	in = cJSON_GetObjectItemCaseSensitive(body, "inputs");
	if (in && !cJSON_AddItemToObject(m, "inputs", cJSON_Duplicate(in, 1)))
		goto fail;
	it = cJSON_GetObjectItemCaseSensitive(body, "command");
	if (!it || !cJSON_AddItemToObject(m, "cmd", cJSON_Duplicate(it, 1)) ||
	    !cJSON_AddStringToObject(m, "task_id", id) ||
	    !cJSON_AddStringToObject(
		    m, "image", cJSON_GetObjectItemCaseSensitive(body, "image")->valuestring) ||
	    canon_add_i64(m, "cores", cores) < 0 ||
	    canon_add_i64(m, "mem_mb", (int64_t)(((uint64_t)mem + MIB - 1) / MIB)) < 0 ||
	    canon_add_i64(m, "max_cpu_ns", cpu_s * 1000000000LL) < 0 ||
	    canon_add_i64(m, "price", price) < 0 ||
	    canon_add_i64(m, "deadline_ms", wall_s * 1000) < 0 ||
	    canon_add_i64(m, "replica", a->idx) < 0 ||
	    (renter[0] && !cJSON_AddStringToObject(m, "renter", renter)) ||
	    canon_add_i64(m, "pow_bits", pow_bits) < 0)
		goto fail;
	r = store_replica_set_terms(coord_store(f->c), a->replica_id, price, pow_bits, now_ns());
	if (r < 0)
		goto fail;
	*ret = m;
	return 0;
fail:
	cJSON_Delete(m);
	return r;
}

static cJSON *kill_build(int64_t task_id)
{
	cJSON *m = proto_new(PROTO_TASK_STATUS);
	char id[24];

	snprintf(id, sizeof(id), "%lld", (long long)task_id);
	if (m &&
	    (!cJSON_AddStringToObject(m, "task_id", id) ||
	     !cJSON_AddStringToObject(m, "state", "killed") || canon_add_i64(m, "cpu_ns", 0) < 0)) {
		cJSON_Delete(m);
		return NULL;
	}
	return m;
}

/*
 * BOINC-style adaptive replication: when the first slot of a single-replica
 * task goes to a node settlement does not trust yet, the task gets a second
 * slot on another node so the two results can be compared.
 */
static void want_validation(struct front *f, const struct coord_action *a)
{
	struct sched_task *t = sched_task_get(coord_sched(f->c), a->task_id);
	const struct sched_node *n = sched_node_get(coord_sched(f->c), a->node);
	int r;

	bool other = false;

	if (!f->cfg.pay || !t || !n || a->idx != 0 || t->replicas != 1 || t->attempts ||
	    t->policy == SCHED_EXPLICIT)
		return;
	/* Only where a second, distinct provider could take it: a lone provider's tasks finish. */
	for (unsigned i = 0; i < sched_node_count(coord_sched(f->c)) && !other; i++) {
		const struct sched_node *o = sched_node_at(coord_sched(f->c), i);

		other = o->known && o->online && o->id != n->id && o->cores >= t->cores &&
			o->memory >= t->memory && o->price <= t->max_price;
	}
	if (!other || !pay_want_replica(f->cfg.pay, n->node_id))
		return;
	r = coord_add_replica(f->c, a->task_id, now_s());
	if (r < 0)
		flog(f, LOG_LVL_WARN, "task %lld: cannot add a validation replica: %s",
		     (long long)a->task_id, strerror(-r));
	else
		flog(f, LOG_LVL_INFO,
		     "task %lld: validation replica added (node %lld not trusted yet)",
		     (long long)a->task_id, (long long)a->node);
	f->need_sched = true;
}

/* Turn the round's actions into queued messages (before the flush: offers record their terms). */
static void actions_drain(struct front *f)
{
	for (size_t i = 0; i < f->actions.n; i++) {
		const struct coord_action *a = &f->actions.v[i];
		struct peer *p = node_peer(f, a->node);
		cJSON *m = NULL;
		int r;

		mark_dirty(f, a->task_id);
		if (a->kind == COORD_OFFER) {
			f->placements++;
			want_validation(f, a);
			r = offer_build(f, a, &m);
			if (r < 0) {
				flog(f, LOG_LVL_WARN, "task %lld: cannot build the offer: %s",
				     (long long)a->task_id, strerror(-r));
				continue;
			}
			flog(f, LOG_LVL_DEBUG, "task %lld slot %u offered to node %lld",
			     (long long)a->task_id, a->idx, (long long)a->node);
		} else {
			m = kill_build(a->task_id);
			flog(f, LOG_LVL_INFO, "task %lld: telling node %lld to stop it",
			     (long long)a->task_id, (long long)a->node);
		}
		/* Not connected: the node's next REGISTER reconciles (requeue or cancel). */
		if (p)
			out_push(f, p->c, m);
		else
			cJSON_Delete(m);
	}
	f->actions.n = 0;
}

static void task_hook(void *ud, int64_t task_id, int state)
{
	struct front *f = ud;

	mark_dirty(f, task_id);
	if (state >= TASK_DONE)
		push_id(&f->ended, &f->nended, &f->capended, task_id);
	round_arm(f);
}

static void round_run(struct loop_timer *t _unused_, void *ud)
{
	struct front *f = ud;
	int r;

	f->round_armed = false;
	if (f->fatal)
		return;
	if (f->need_sched) {
		f->need_sched = false;
		r = coord_schedule(f->c, now_s(), f->cfg.sched_max, &f->actions);
		if (r < 0)
			flog(f, LOG_LVL_ERR, "scheduling pass failed: %s", strerror(-r));
	}
	actions_drain(f);
	if (f->need_sched) {
		/* A validation replica added while draining: place it in this round too. */
		f->need_sched = false;
		coord_schedule(f->c, now_s(), f->cfg.sched_max, &f->actions);
		actions_drain(f);
	}
	for (size_t i = 0; f->cfg.pay && i < f->nended; i++) {
		r = pay_on_task_end(f->cfg.pay, f->ended[i], now_ns(), NULL);
		if (r < 0)
			flog(f, LOG_LVL_ERR, "task %lld: cannot close its escrow: %s",
			     (long long)f->ended[i], strerror(-r));
	}
	f->nended = 0;
	for (size_t i = 0; i < f->ndirty; i++) {
		struct live *l = live_get(f, f->dirty[i], false);

		if (!l)
			continue;
		l->dirty = false;
		if (live_update(f, l, false) < 0)
			flog(f, LOG_LVL_WARN, "task %lld: cannot build an UPDATE",
			     (long long)l->task_id);
		if (l->sent_state >= TASK_DONE && !l->watchers)
			live_drop(f, l->task_id);
	}
	f->ndirty = 0;
	r = coord_flush(f->c);
	if (r < 0) {
		/* Nothing of this round may go out: exit, the restart recovers from the store. */
		flog(f, LOG_LVL_ERR, "cannot commit the state: %s; stopping", strerror(-r));
		f->fatal = r;
		loop_stop(f->cfg.loop);
		return;
	}
	f->rounds++;
	for (size_t i = 0; i < f->nout; i++) {
		struct out *o = &f->out[i];

		if (net_conn_alive(o->c))
			net_conn_send(o->c, o->msg, NULL);
		cJSON_Delete(o->msg);
		net_conn_unref(o->c);
	}
	f->nout = 0;
}

/* ---- connections ---- */

static void on_ready(struct net_conn *c, void *ud)
{
	struct front *f = ud;
	const struct tls_peer *tp = net_conn_peer(c);
	struct peer *p;
	int r;

	if (!tp->name[0]) {
		net_conn_close(c, "certificate without a subject CN (no account name)");
		return;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		net_conn_close(c, "out of memory");
		return;
	}
	p->f = f;
	p->c = c;
	p->role = tp->role;
	r = store_account_ensure(coord_store(f->c), tp->name, role_name(tp->role), &p->account);
	if (r < 0) {
		free(p);
		net_conn_close(c, "cannot record the account");
		return;
	}
	net_conn_set_data(c, p);
	p->next = f->peers;
	if (f->peers)
		f->peers->prev = p;
	f->peers = p;
	round_arm(f);
	flog(f, LOG_LVL_DEBUG, "%s connected as %s (%s)", net_conn_addr(c), tp->name,
	     role_name(tp->role));
}

/* Forget a connection's state (its watches, upload, key). */
static void peer_release(struct front *f, struct peer *p)
{
	if (p->prev)
		p->prev->next = p->next;
	else
		f->peers = p->next;
	if (p->next)
		p->next->prev = p->prev;
	while (p->watches)
		watch_remove(f, p->watches);
	blobs_upload_abort(p->up);
	key_verifier_free(p->kv);
	free(p);
}

static void on_close(struct net_conn *c, const char *reason, void *ud)
{
	struct front *f = ud;
	struct peer *p = net_conn_data(c);

	if (!p)
		return;
	net_conn_set_data(c, NULL);
	if (p->node && node_peer(f, p->node) == p) {
		f->by_node[p->node] = NULL;
		coord_node_disconnected(f->c, p->node, now_s());
		flog(f, LOG_LVL_INFO, "node %lld (%s) disconnected: %s", (long long)p->node,
		     net_conn_peer(c)->name, reason ? reason : "closed");
	}
	peer_release(f, p);
}

static struct peer *peer_of(struct net_conn *c)
{
	return net_conn_data(c);
}

/* An agent's handlers need its REGISTER first. */
static struct peer *agent_of(struct net_conn *c, const struct proto_msg *m)
{
	struct peer *p = peer_of(c);

	if (p && !p->node) {
		q_error(p, m->id, "register_required", "send REGISTER first");
		return NULL;
	}
	/* Any message of a registered node shows it is alive, not only HEARTBEAT. */
	if (p) {
		struct sched_node *n = sched_node_get(coord_sched(p->f->c), p->node);

		coord_node_heartbeat(p->f->c, p->node, now_s());
		if (n && !n->online && node_peer(p->f, p->node) == p) {
			/* Declared lost while silent, but still connected: it may take work again. */
			sched_node_online(coord_sched(p->f->c), p->node, true);
			p->f->need_sched = true;
			flog(p->f, LOG_LVL_INFO, "node %lld is back (a message after %s)",
			     (long long)p->node, "its heartbeat timeout");
		}
	}
	return p;
}

/* ---- agent messages ---- */

/* REGISTER "windows" [{day, start_min, end_min}] in UTC -> the window grammar. */
static int windows_to_spec(const cJSON *arr, char *buf, size_t len)
{
	const cJSON *it;
	size_t off = 0;

	buf[0] = '\0';
	cJSON_ArrayForEach (it, arr) {
		const char *day = NULL;
		int64_t a, b;
		int n;

		if (canon_get_str(it, "day", &day) < 0 || canon_get_i64(it, "start_min", &a) < 0 ||
		    canon_get_i64(it, "end_min", &b) < 0)
			return -EINVAL;
		n = snprintf(buf + off, len - off, "%s%s%s%02lld:%02lld-%02lld:%02lld",
			     off ? ", " : "", strcmp(day, "all") ? day : "",
			     strcmp(day, "all") ? " " : "", (long long)(a / 60),
			     (long long)(a % 60), (long long)(b / 60), (long long)(b % 60));
		if (n < 0 || (size_t)n >= len - off)
			return -E2BIG;
		off += (size_t)n;
	}
	return off ? 0 : -ENOENT;
}

static int h_register(struct net_conn *c, const struct proto_msg *m, void *ud)
{
	struct front *f = ud;
	struct peer *p = peer_of(c), *old;
	const struct tls_peer *tp = net_conn_peer(c);
	_cleanup_(cJSON_Deletep) cJSON *req = cJSON_CreateObject();
	const cJSON *root = m->root, *it, *run;
	const char *s;
	int64_t v, node = 0;
	char err[256], win[STORE_WINDOW_MAX + 1];
	int r;

	if (!p)
		return -EIO;
	if (!req)
		return -ENOMEM;
	/* The wire fields, translated to what the core expects. */
	r = 0;
	if (canon_get_i64(root, "cores_offered", &v) == 0)
		r |= canon_add_i64(req, "cores", v);
	if (canon_get_i64(root, "mem_offered_mb", &v) == 0 ||
	    canon_get_i64(root, "mem_mb", &v) == 0)
		r |= canon_add_i64(req, "memory", v * (int64_t)MIB);
	if (canon_get_i64(root, "ask_price", &v) == 0)
		r |= canon_add_i64(req, "price", v);
	if (canon_get_i64(root, "perf_score", &v) == 0)
		r |= canon_add_i64(req, "perf", v);
	if (canon_get_i64(root, "renewable_pm", &v) == 0)
		r |= canon_add_i64(req, "renewable_ppm", v * 1000);
	if (canon_get_i64(root, "utc_offset_s", &v) == 0)
		r |= canon_add_i64(req, "utc_offset", v);
	if (canon_get_i64(root, "max_tasks", &v) == 0)
		r |= canon_add_i64(req, "max_tasks", v);
	if (canon_get_str(root, "location", &s) == 0 &&
	    !cJSON_AddStringToObject(req, "location", s))
		r = -ENOMEM;
	if (canon_get_str(root, "window", &s) == 0) {
		if (!cJSON_AddStringToObject(req, "window", s))
			r = -ENOMEM;
	} else if ((it = cJSON_GetObjectItemCaseSensitive(root, "windows"))) {
		int w = windows_to_spec(it, win, sizeof(win));

		if (w == -ENOENT)
			snprintf(win, sizeof(win), "never");
		else if (w < 0)
			return q_error(p, m->id, "invalid", "windows: more than %d bytes as a spec",
				       STORE_WINDOW_MAX);
		if (!cJSON_AddStringToObject(req, "window", win))
			r = -ENOMEM;
		cJSON_DeleteItemFromObjectCaseSensitive(req, "utc_offset");
		r |= canon_add_i64(req, "utc_offset", 0);
	}
	run = cJSON_GetObjectItemCaseSensitive(root, "running");
	if (run) {
		cJSON *arr = cJSON_CreateArray();

		if (!arr || !cJSON_AddItemToObject(req, "running", arr))
			r = -ENOMEM;
		cJSON_ArrayForEach (it, run) {
			char num[24];

			if (parse_task_id(it->valuestring, &v) < 0)
				return q_error(p, m->id, "invalid",
					       "running: \"%.32s\" is not a task id",
					       it->valuestring);
			snprintf(num, sizeof(num), "%lld", (long long)v);
			if (!cJSON_AddItemToArray(arr, cJSON_CreateRaw(num)))
				return -ENOMEM;
		}
	}
	if (r < 0)
		return -ENOMEM;
	r = coord_node_register(f->c, p->account, tp->node_id, req, now_s(), &node, &f->actions,
				err, sizeof(err));
	if (r < 0) {
		flog(f, LOG_LVL_WARN, "REGISTER from %s refused: %s", tp->name, err);
		return q_error(p, m->id, code_of(r), "%s", err);
	}
	if ((size_t)node >= f->nby_node) {
		size_t n = MAX((size_t)node + 1, f->nby_node * 2);
		struct peer **nb = realloc(f->by_node, n * sizeof(*nb));

		if (!nb)
			return -ENOMEM;
		memset(nb + f->nby_node, 0, (n - f->nby_node) * sizeof(*nb));
		f->by_node = nb;
		f->nby_node = n;
	}
	old = f->by_node[node];
	if (old && old != p) {
		old->node = 0;
		net_conn_close(old->c, "replaced by a newer connection of the same node");
	}
	f->by_node[node] = p;
	p->node = node;
	f->need_sched = true;
	flog(f, LOG_LVL_INFO, "node %lld registered: %s (%s), %lld cores offered", (long long)node,
	     tp->name, tp->node_id, (long long)(canon_get_i64(root, "cores_offered", &v) ? 0 : v));
	return q_ack(p, m->id, -1);
}

static int h_heartbeat(struct net_conn *c, const struct proto_msg *m, void *ud)
{
	struct front *f = ud;
	struct peer *p = agent_of(c, m);

	if (!p)
		return 0;
	coord_node_heartbeat(f->c, p->node, now_s());
	return 0;
}

/* The task named in an agent message, and whether this node holds a live slot of it. */
static int agent_task(struct front *f, struct peer *p, const struct proto_msg *m, int64_t *ret_id,
		      struct store_replica *ret_rep)
{
	const char *s = NULL;
	int r;

	if (canon_get_str(m->root, "task_id", &s) < 0 || parse_task_id(s, ret_id) < 0) {
		q_error(p, m->id, "invalid", "task_id: not a task id");
		return -EINVAL;
	}
	r = store_replica_find_live(coord_store(f->c), *ret_id, p->node, ret_rep);
	if (r == -ENOENT) {
		q_error(p, m->id, "stale", "task %s is not placed on this node", s);
		return r;
	}
	if (r < 0) {
		q_error(p, m->id, "internal", "lookup failed");
		return r;
	}
	return 0;
}

static int h_task_accept(struct net_conn *c, const struct proto_msg *m, void *ud)
{
	struct front *f = ud;
	struct peer *p = agent_of(c, m);
	struct store_replica rep;
	int64_t id;

	if (!p || agent_task(f, p, m, &id, &rep) < 0)
		return 0;
	return q_ack(p, m->id, -1);
}

static int h_task_reject(struct net_conn *c, const struct proto_msg *m, void *ud)
{
	struct front *f = ud;
	struct peer *p = agent_of(c, m);
	struct store_replica rep;
	const char *reason = "";
	char why[300];
	int64_t id;
	int r;

	if (!p || agent_task(f, p, m, &id, &rep) < 0)
		return 0;
	canon_get_str(m->root, "reason", &reason);
	snprintf(why, sizeof(why), "rejected by provider: %s", reason);
	r = coord_task_event(f->c, p->node, id, COORD_EV_REJECTED, 0, NULL, why, now_s(),
			     &f->actions);
	if (r < 0 && r != -ESTALE)
		return q_error(p, m->id, code_of(r), "cannot record the rejection");
	flog(f, LOG_LVL_INFO, "task %lld rejected by node %lld: %s", (long long)id,
	     (long long)p->node, reason);
	f->need_sched = true;
	return q_ack(p, m->id, -1);
}

static int h_task_status(struct net_conn *c, const struct proto_msg *m, void *ud)
{
	struct front *f = ud;
	struct peer *p = agent_of(c, m);
	struct store_replica rep;
	const char *state = "", *reason = "";
	int64_t id, cpu = 0;
	struct live *l;
	int r = 0;

	if (!p)
		return 0;
	if (agent_task(f, p, m, &id, &rep) < 0) {
		/* Running something that is not its own (any more): make it stop. */
		if (canon_get_str(m->root, "state", &state) == 0 &&
		    (!strcmp(state, "running") || !strcmp(state, "starting") ||
		     !strcmp(state, "pulling")) &&
		    canon_get_str(m->root, "task_id", &reason) == 0 &&
		    parse_task_id(reason, &id) == 0)
			out_push(f, c, kill_build(id));
		return 0;
	}
	canon_get_str(m->root, "state", &state);
	canon_get_i64(m->root, "cpu_ns", &cpu);
	canon_get_str(m->root, "reason", &reason);
	if (!strcmp(state, "running")) {
		l = live_get(f, id, true);
		if (l && rep.idx < SCHED_MAX_REPLICAS) {
			if (cpu > 0 && (uint64_t)cpu > l->cpu[rep.idx])
				l->cpu[rep.idx] = (uint64_t)cpu;
			if (!l->started_ns)
				l->started_ns = now_ns();
		}
		if (rep.state != REPLICA_RUNNING) {
			r = coord_task_event(f->c, p->node, id, COORD_EV_STARTED, 0, NULL, NULL,
					     now_s(), &f->actions);
			flog(f, LOG_LVL_INFO, "task %lld started on node %lld", (long long)id,
			     (long long)p->node);
		}
		mark_dirty(f, id);
	} else if (!strcmp(state, "failed") || !strcmp(state, "killed")) {
		char why[300];

		snprintf(why, sizeof(why), "%s: %s",
			 !strcmp(state, "failed") ? "sandbox failure" : "killed by provider",
			 reason[0] ? reason : "no reason given");
		r = coord_task_event(f->c, p->node, id, COORD_EV_FAILED, 0, NULL, why, now_s(),
				     &f->actions);
		flog(f, LOG_LVL_INFO, "task %lld failed on node %lld: %s", (long long)id,
		     (long long)p->node, why);
		if ((l = live_get(f, id, false)) && rep.idx < SCHED_MAX_REPLICAS)
			l->cpu[rep.idx] = 0;
		f->need_sched = true;
	} else if ((l = live_get(f, id, false)) && rep.idx < SCHED_MAX_REPLICAS && cpu > 0 &&
		   (uint64_t)cpu > l->cpu[rep.idx]) {
		l->cpu[rep.idx] = (uint64_t)cpu;
		mark_dirty(f, id);
	}
	if (r < 0 && r != -ESTALE)
		return q_error(p, m->id, code_of(r), "cannot record the status");
	return q_ack(p, m->id, -1);
}

static int h_usage_record(struct net_conn *c, const struct proto_msg *m, void *ud)
{
	struct front *f = ud;
	struct peer *p = agent_of(c, m);
	const struct tls_peer *tp = net_conn_peer(c);
	const cJSON *rec = cJSON_GetObjectItemCaseSensitive(m->root, "record");
	_cleanup_free_ char *line = NULL;
	struct usage_record ur;
	const char *why = NULL;
	uint8_t h[SHA256_LEN];
	char hex[SHA256_HEX_LEN + 1];
	int64_t seq, task_id = 0;
	size_t len;
	int r;

	if (!p)
		return 0;
	if (canon_get_i64(m->root, "seq", &seq) < 0)
		return q_error(p, m->id, "invalid", "seq: missing");
	r = canon_print(rec, &line, &len);
	if (r < 0)
		return q_error(p, m->id, "invalid", "record: not canonical JSON");
	if (len > RECORD_LINE_MAX)
		return q_error(p, m->id, "invalid", "record: longer than %d bytes",
			       RECORD_LINE_MAX);
	r = record_parse(line, len, &ur, &why);
	if (r < 0)
		return q_error(p, m->id, "bad_record", "record: %s", why ? why : "malformed");
	if (strcmp(ur.node, tp->node_id) != 0)
		return q_error(p, m->id, "bad_record",
			       "record: node %.16s... is not this connection's node %.16s...",
			       ur.node, tp->node_id);
	if ((uint64_t)seq != ur.seq)
		return q_error(p, m->id, "bad_record", "seq %lld differs from the record's %llu",
			       (long long)seq, (unsigned long long)ur.seq);
	if (!p->kv) {
		EVP_PKEY *pk = NULL;

		r = key_from_raw_public(tp->pubkey, &pk);
		if (r >= 0)
			r = key_verifier_new(pk, &p->kv);
		EVP_PKEY_free(pk);
		if (r < 0)
			return q_error(p, m->id, "internal", "cannot load the node key");
	}
	if (record_verify_line(line, len, &ur, p->kv) < 0)
		return q_error(p, m->id, "bad_signature",
			       "record %llu: the signature does not verify with this node's key",
			       (unsigned long long)ur.seq);
	if (ur.type != RECORD_HEARTBEAT && parse_task_id(ur.task, &task_id) < 0)
		task_id = 0; /* not one of ours: kept, settles nothing */
	if (task_id > 0) {
		struct store_task t;

		if (store_task_get(coord_store(f->c), task_id, &t) < 0)
			task_id = 0;
		else
			store_task_clear(&t);
	}
	sha256(line, len, h);
	hex_encode(h, SHA256_LEN, hex);
	r = coord_usage(f->c, p->node, ur.seq, task_id, line, hex, ur.cpu_ns, now_s());
	if (r == -EEXIST)
		return q_error(p, m->id, "conflict",
			       "record %llu: a different record with this seq is already stored",
			       (unsigned long long)ur.seq);
	if (r < 0)
		return q_error(p, m->id, "internal", "cannot store the record");
	if (task_id > 0) {
		struct live *l = live_get(f, task_id, false);

		if (l && ur.replica < SCHED_MAX_REPLICAS && ur.cpu_ns > l->cpu[ur.replica]) {
			l->cpu[ur.replica] = ur.cpu_ns;
			mark_dirty(f, task_id);
		}
	}
	return q_ack(p, m->id, (int64_t)ur.seq);
}

/* Whether some provider that ran no slot of the task could take one more (online, big enough). */
static bool other_provider(struct front *f, int64_t task_id)
{
	struct sched *sc = coord_sched(f->c);
	const struct sched_task *t = sched_task_get(sc, task_id);

	for (unsigned i = 0; t && i < sched_node_count(sc); i++) {
		const struct sched_node *n = sched_node_at(sc, i);
		bool used = false;

		if (!n->known || !n->online || n->cores < t->cores || n->memory < t->memory ||
		    n->price > t->max_price)
			continue;
		for (uint32_t k = 0; k < t->replicas && !used; k++)
			used = t->placed[k] == (int32_t)i;
		for (uint32_t k = 0; k < MIN(t->nexcluded, SCHED_MAX_EXCLUDED) && !used; k++)
			used = t->excluded[k] == (int32_t)i;
		if (!used)
			return true;
	}
	return false;
}

/* Proof of Compute and payment of one finished replica (PAY_SETTLED without settlement). */
static int settle_result(struct front *f, struct peer *p, const struct proto_msg *m,
			 const struct store_replica *rep, const struct store_usage *u,
			 const char *digest, enum pay_verdict *ret, char *why, size_t whylen)
{
	const struct tls_peer *tp = net_conn_peer(p->c);
	_cleanup_(cJSON_Deletep) cJSON *spec = NULL;
	struct store_task t;
	struct store_node sn;
	char renter[128] = "";
	struct pay_result pr = {0};
	int64_t price = 0, offered = 0, nonce = 0;
	unsigned pow_bits = 0;
	int r;

	*ret = PAY_SETTLED;
	if (!f->cfg.pay)
		return 0;
	r = store_task_get(coord_store(f->c), rep->task_id, &t);
	if (r < 0)
		return r;
	r = canon_parse(t.spec, strlen(t.spec), CANON_MAX_DEPTH_DEFAULT, &spec, NULL);
	store_account_name(coord_store(f->c), t.account_id, renter, sizeof(renter));
	store_task_clear(&t);
	if (r < 0)
		return r;
	r = store_node_get(coord_store(f->c), p->node, &sn);
	if (r < 0)
		return r;
	r = store_replica_terms(coord_store(f->c), rep->id, &price, &pow_bits, &offered);
	if (r < 0)
		return r;
	canon_get_i64(m->root, "pow_nonce", &nonce);
	pr = (struct pay_result){
		.task_id = rep->task_id,
		.replica = rep->idx,
		.renter = renter,
		.node_id = tp->node_id,
		.node_pubkey = tp->pubkey,
		.provider = tp->name,
		.renewable_ppm = sn.renewable_ppm,
		.price = price,
		.pow_bits = pow_bits,
		.dispatched_ns = offered,
		.now_ns = now_ns(),
		.spec = spec,
		.record_line = u->record,
		.record_len = strlen(u->record),
		.result_digest = digest,
		.pow_nonce = (uint64_t)nonce,
	};
	return pay_on_result(f->cfg.pay, &pr, ret, why, whylen);
}

static int h_task_result(struct net_conn *c, const struct proto_msg *m, void *ud)
{
	struct front *f = ud;
	struct peer *p = agent_of(c, m);
	struct store_replica rep;
	struct store_usage u = {0};
	struct usage_record ur;
	const char *digest = NULL, *why = NULL;
	enum pay_verdict verdict = PAY_SETTLED;
	bool no_quorum = false;
	char why_buf[512] = "";
	int64_t id, seq, exit_code = 0;
	int r;

	if (!p)
		return 0;
	if (canon_get_str(m->root, "task_id", &digest) < 0 || parse_task_id(digest, &id) < 0)
		return q_error(p, m->id, "invalid", "task_id: not a task id");
	if (canon_get_i64(m->root, "seq", &seq) < 0)
		return q_error(p, m->id, "record_missing",
			       "seq: the final usage record is required with the result");
	r = store_usage_get(coord_store(f->c), p->node, (uint64_t)seq, &u);
	if (r == -ENOENT)
		return q_error(p, m->id, "record_missing",
			       "usage record %lld has not arrived yet; send it, then the result",
			       (long long)seq);
	if (r < 0)
		return q_error(p, m->id, "internal", "record lookup failed");
	r = record_parse(u.record, strlen(u.record), &ur, &why);
	if (r < 0 || ur.type != RECORD_FINAL || u.task_id != id) {
		store_usage_clear(&u);
		return q_error(p, m->id, "bad_record",
			       "usage record %lld is not the final record of task %lld",
			       (long long)seq, (long long)id);
	}
	r = store_replica_find_live(coord_store(f->c), id, p->node, &rep);
	if (r == -ENOENT) {
		/* Requeued or cancelled meanwhile: nothing more to do with it. */
		store_usage_clear(&u);
		flog(f, LOG_LVL_INFO, "task %lld: late result from node %lld ignored",
		     (long long)id, (long long)p->node);
		return q_ack(p, m->id, -1);
	}
	if (r < 0) {
		store_usage_clear(&u);
		return q_error(p, m->id, "internal", "lookup failed");
	}
	canon_get_i64(m->root, "exit_code", &exit_code);
	canon_get_str(m->root, "result_digest", &digest);
	r = settle_result(f, p, m, &rep, &u, digest, &verdict, why_buf, sizeof(why_buf));
	store_usage_clear(&u);
	if (r < 0)
		return q_error(p, m->id, "internal", "settlement failed: %s", strerror(-r));
	if (verdict == PAY_REFUSED) {
		flog(f, LOG_LVL_WARN, "task %lld: result of node %lld refused: %s", (long long)id,
		     (long long)p->node, why_buf);
		r = coord_task_event(f->c, p->node, id, COORD_EV_FAILED, 0, NULL, why_buf, now_s(),
				     &f->actions);
		f->need_sched = true;
		if (r < 0 && r != -ESTALE)
			return q_error(p, m->id, code_of(r), "cannot record the refusal");
		return q_error(p, m->id, "result_refused", "%s", why_buf);
	}
	if (verdict == PAY_NEED_REPLICA) {
		no_quorum = !other_provider(f, id);
		r = no_quorum ? -ENOSPC : coord_add_replica(f->c, id, now_s());
		flog(f, LOG_LVL_INFO, "task %lld: results disagree, another replica %s",
		     (long long)id,
		     no_quorum ? "impossible: no further distinct provider"
			       : (r < 0 ? "could not be added" : "added"));
	}
	/* No quorum possible: the task fails; its end closes the escrow (results refused). */
	if (no_quorum)
		r = coord_task_fail(f->c, id, "no quorum: no further distinct provider", now_s(),
				    &f->actions);
	else
		r = coord_task_event(f->c, p->node, id, COORD_EV_FINISHED, (int32_t)exit_code,
				     digest, NULL, now_s(), &f->actions);
	if (r < 0 && r != -ESTALE)
		return q_error(p, m->id, code_of(r), "cannot record the result");
	flog(f, LOG_LVL_INFO, "task %lld slot %u finished on node %lld (exit %lld)", (long long)id,
	     rep.idx, (long long)p->node, (long long)exit_code);
	f->need_sched = true;
	return q_ack(p, m->id, -1);
}

/* ---- blobs ---- */

static int h_blob_put(struct net_conn *c, const struct proto_msg *m, void *ud)
{
	struct front *f = ud;
	struct peer *p = peer_of(c);
	const char *digest = NULL, *data = NULL;
	_cleanup_free_ uint8_t *raw = NULL;
	int64_t off, size;
	int last = 0;
	size_t n = 0;
	int r;

	if (!p)
		return -EIO;
	if (p->role == ROLE_AGENT && !p->node)
		return q_error(p, m->id, "register_required", "send REGISTER first");
	canon_get_str(m->root, "digest", &digest);
	canon_get_str(m->root, "data", &data);
	canon_get_i64(m->root, "offset", &off);
	canon_get_i64(m->root, "size", &size);
	canon_get_bool(m->root, "last", &last);
	if ((uint64_t)size > BLOB_MAX_SIZE)
		return q_error(p, m->id, "too_large", "blobs are at most %llu bytes",
			       (unsigned long long)BLOB_MAX_SIZE);
	if (base64_decode(data, strlen(data), &raw, &n) < 0 || n > PROTO_BLOB_CHUNK)
		return q_error(p, m->id, "invalid", "data: not base64 of at most %d bytes",
			       PROTO_BLOB_CHUNK);
	if (off == 0) {
		p->up = blobs_upload_abort(p->up);
		r = blobs_upload_begin(coord_blobs(f->c), digest, (uint64_t)size, &p->up);
		if (r == -EEXIST) {
			/* Already here: the uploader may stop.  Refresh the owner's access. */
			struct store_blob sb;

			if (store_blob_get(coord_store(f->c), digest, &sb) == 0 &&
			    sb.size == (uint64_t)size && p->role == ROLE_RENTER &&
			    sb.owner != p->account) {
				/* A second renter with the same bytes: grant it by a metadata refresh. */
				store_blob_put(coord_store(f->c), &sb);
			}
			return q_ack(p, m->id, size);
		}
		if (r < 0)
			return q_error(p, m->id, r == -EFBIG ? "too_large" : "invalid",
				       "cannot start the upload: %s", strerror(-r));
		snprintf(p->up_digest, sizeof(p->up_digest), "%s", digest);
		p->up_size = (uint64_t)size;
		p->up_off = 0;
	} else if (!p->up || strcmp(p->up_digest, digest) != 0 || (uint64_t)size != p->up_size ||
		   (uint64_t)off != p->up_off) {
		return q_error(p, m->id, "bad_offset",
			       "expected the chunk at offset %llu of the upload in progress",
			       (unsigned long long)(p->up ? p->up_off : 0));
	}
	r = blobs_upload_write(p->up, raw, n);
	if (r < 0) {
		p->up = blobs_upload_abort(p->up);
		return q_error(p, m->id, r == -EFBIG ? "too_large" : "internal",
			       r == -EFBIG ? "more bytes than the announced size" : "cannot write");
	}
	p->up_off += n;
	if (!last)
		return q_ack(p, m->id, -1);
	if (p->up_off != p->up_size) {
		p->up = blobs_upload_abort(p->up);
		return q_error(p, m->id, "size_mismatch", "got %llu bytes of %llu announced",
			       (unsigned long long)p->up_off, (unsigned long long)p->up_size);
	}
	r = blobs_upload_finish(coord_blobs(f->c), p->up, p->account,
				p->role == ROLE_AGENT ? BLOB_RESULT : BLOB_INPUT, now_s(),
				f->cfg.blob_retention);
	p->up = NULL;
	if (r == -EBADMSG)
		return q_error(p, m->id, "digest_mismatch",
			       "the data's SHA-256 is not %.80s; nothing kept", digest);
	if (r < 0)
		return q_error(p, m->id, "internal", "cannot store the blob: %s", strerror(-r));
	flog(f, LOG_LVL_INFO, "blob %s (%lld bytes) stored from %s", digest, (long long)size,
	     net_conn_peer(c)->name);
	return q_ack(p, m->id, size);
}

static int h_blob_get(struct net_conn *c, const struct proto_msg *m, void *ud)
{
	struct front *f = ud;
	struct peer *p = peer_of(c);
	const char *digest = NULL;
	_cleanup_close_ int fd = -1;
	_cleanup_free_ uint8_t *buf = NULL;
	_cleanup_free_ char *b64 = NULL;
	uint64_t size;
	int64_t off = 0;
	ssize_t n;
	size_t got = 0, want;
	cJSON *put;
	int r;

	if (!p)
		return -EIO;
	if (p->role == ROLE_AGENT && !p->node)
		return q_error(p, m->id, "register_required", "send REGISTER first");
	canon_get_str(m->root, "digest", &digest);
	canon_get_i64(m->root, "offset", &off);
	r = blobs_has(coord_blobs(f->c), digest);
	if (r == 0)
		return q_error(p, m->id, "not_found", "no blob %.80s", digest);
	if (r < 0)
		return q_error(p, m->id, "internal", "lookup failed");
	if (p->role != ROLE_AUDITOR) {
		r = store_blob_may_fetch(coord_store(f->c), p->role == ROLE_AGENT,
					 p->role == ROLE_AGENT ? p->node : p->account, digest);
		if (r == 0)
			return q_error(p, m->id, "forbidden", "blob %.80s is not yours to fetch",
				       digest);
		if (r < 0)
			return q_error(p, m->id, "internal", "lookup failed");
	}
	r = blobs_open_read(coord_blobs(f->c), digest, &fd, &size);
	if (r < 0)
		return q_error(p, m->id, r == -ENOENT ? "not_found" : "internal",
			       "cannot open the blob");
	if ((uint64_t)off > size)
		return q_error(p, m->id, "bad_offset", "offset beyond the blob's %llu bytes",
			       (unsigned long long)size);
	want = (size_t)MIN((uint64_t)PROTO_BLOB_CHUNK, size - (uint64_t)off);
	buf = malloc(want ? want : 1);
	if (!buf)
		return -ENOMEM;
	while (got < want && (n = pread(fd, buf + got, want - got, off + (off_t)got)) > 0)
		got += (size_t)n;
	if (got != want)
		return q_error(p, m->id, "internal", "short read");
	r = base64_encode(buf, want, &b64);
	if (r < 0)
		return r;
	put = proto_new(PROTO_BLOB_PUT);
	if (!put || !cJSON_AddStringToObject(put, "digest", digest) ||
	    canon_add_i64(put, "offset", off) < 0 || canon_add_u64(put, "size", size) < 0 ||
	    !cJSON_AddStringToObject(put, "data", b64) ||
	    !cJSON_AddBoolToObject(put, "last", (uint64_t)off + want >= size)) {
		cJSON_Delete(put);
		return -ENOMEM;
	}
	/* The renter has its result: it expires after result_grace (data ownership). */
	if ((uint64_t)off + want >= size && p->role == ROLE_RENTER)
		blobs_fetched(coord_blobs(f->c), digest, now_s(), f->cfg.result_grace);
	return out_push(f, c, put);
}

/* ---- market messages ---- */

static int task_id_arg(struct peer *p, const struct proto_msg *m, int64_t *ret)
{
	const char *s = NULL;

	if (canon_get_str(m->root, "task_id", &s) < 0 || parse_task_id(s, ret) < 0) {
		q_error(p, m->id, "invalid", "task_id: a decimal task number is required");
		return -EINVAL;
	}
	return 0;
}

/* Replace an integer "task_id" member by its decimal string (task ids are strings on the wire). */
static int task_id_to_string(cJSON *o)
{
	int64_t v;
	char id[24];

	if (canon_get_i64(o, "task_id", &v) < 0)
		return 0;
	snprintf(id, sizeof(id), "%lld", (long long)v);
	cJSON_DeleteItemFromObjectCaseSensitive(o, "task_id");
	return cJSON_AddStringToObject(o, "task_id", id) ? 0 : -ENOMEM;
}

static int h_submit(struct net_conn *c, const struct proto_msg *m, void *ud)
{
	struct front *f = ud;
	struct peer *p = peer_of(c);
	const char *account = net_conn_peer(c)->name;
	const cJSON *spec = cJSON_GetObjectItemCaseSensitive(m->root, "spec");
	struct store *st = coord_store(f->c);
	cJSON *reply = NULL;
	char err[512] = "";
	int64_t escrow = 0, task_id = 0;
	int r;
	bool dup;

	if (!p)
		return -EIO;
	/*
	 * One operation: the task and its escrow are stored together or not at
	 * all.  The spec is validated first, so a bad field is named even to a
	 * renter without funds.
	 */
	r = store_op_begin(st);
	if (r < 0)
		return q_error(p, m->id, "internal", "store unavailable");
	r = coord_submit(f->c, p->account, spec, now_s(), &reply, err, sizeof(err));
	if (r < 0) {
		store_op_end(st, r);
		return q_failed(p, m->id, r == -ENOSPC ? "queue_full" : code_of(r), r, err);
	}
	dup = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(reply, "duplicate"));
	canon_get_i64(reply, "task_id", &task_id);
	if (f->cfg.pay) {
		r = pay_submit_check(f->cfg.pay, account, spec, &escrow, err, sizeof(err));
		if (dup)
			r = 0; /* escrowed with the original: escrow is its figure */
		else if (r >= 0)
			r = pay_submit_commit(f->cfg.pay, account, task_id, spec, now_ns(), reply);
		else if (!err[0])
			snprintf(err, sizeof(err), "settlement: %s", strerror(-r));
	}
	if (r >= 0 && !cJSON_GetObjectItemCaseSensitive(reply, "escrow") &&
	    canon_add_i64(reply, "escrow", escrow) < 0)
		r = -ENOMEM;
	if (r < 0) {
		store_op_end(st, r);
		if (!dup)
			coord_submit_undo(f->c, task_id);
		cJSON_Delete(reply);
		return q_error(p, m->id, r == -ENOSPC ? "insufficient_funds" : code_of(r), "%s",
			       err[0] ? err : "cannot store the task");
	}
	store_op_end(st, 0);
	if (task_id_to_string(reply) < 0) {
		cJSON_Delete(reply);
		return -ENOMEM;
	}
	f->need_sched = true;
	if (!dup)
		flog(f, LOG_LVL_INFO, "task %lld submitted by %s", (long long)task_id, account);
	return q_reply(p, m->id, reply);
}

/*
 * STATUS body: the core's view with node ids instead of row ids, and cpu_ns the live
 * figure while replicas run (TASK_STATUS), else what the usage records report.
 */
static int status_build(struct front *f, struct peer *p, int64_t id, cJSON **ret, char *err,
			size_t errlen)
{
	cJSON *o = NULL, *it;
	int64_t recorded = 0;
	struct live *l;
	int r;

	r = coord_status(f->c, p->role == ROLE_AUDITOR ? -1 : p->account, id, &o, err, errlen);
	if (r < 0)
		return r;
	cJSON_ArrayForEach (it, cJSON_GetObjectItemCaseSensitive(o, "replicas")) {
		struct store_node sn;
		int64_t node;

		if (canon_get_i64(it, "node", &node) == 0 &&
		    store_node_get(coord_store(f->c), node, &sn) == 0) {
			cJSON_DeleteItemFromObjectCaseSensitive(it, "node");
			if (!cJSON_AddStringToObject(it, "node", sn.node_id))
				r = -ENOMEM;
		}
	}
	l = live_get(f, id, false);
	if (r >= 0 && l && canon_get_i64(o, "cpu_ns", &recorded) == 0 &&
	    live_cpu(l) > (uint64_t)MAX(recorded, 0)) {
		cJSON_DeleteItemFromObjectCaseSensitive(o, "cpu_ns");
		if (canon_add_u64(o, "cpu_ns", live_cpu(l)) < 0)
			r = -ENOMEM;
	}
	if (r < 0 || task_id_to_string(o) < 0) {
		cJSON_Delete(o);
		return -ENOMEM;
	}
	*ret = o;
	return 0;
}

static int h_status(struct net_conn *c, const struct proto_msg *m, void *ud)
{
	struct front *f = ud;
	struct peer *p = peer_of(c);
	cJSON *o = NULL;
	char err[256] = "";
	int64_t id;
	int r;

	if (!p)
		return -EIO;
	if (task_id_arg(p, m, &id) < 0)
		return 0;
	r = status_build(f, p, id, &o, err, sizeof(err));
	if (r < 0)
		return q_failed(p, m->id, code_of(r), r, err);
	return q_reply(p, m->id, o);
}

static int h_watch(struct net_conn *c, const struct proto_msg *m, void *ud)
{
	struct front *f = ud;
	struct peer *p = peer_of(c);
	struct watch *w;
	struct live *l;
	cJSON *o = NULL;
	char err[256] = "";
	int64_t id;
	int r;

	if (!p)
		return -EIO;
	if (task_id_arg(p, m, &id) < 0)
		return 0;
	for (w = p->watches; w; w = w->pnext)
		if (w->l->task_id == id)
			break;
	if (!w && p->nwatch >= WATCH_PER_CONN)
		return q_error(p, m->id, "refused", "at most %d watches per connection",
			       WATCH_PER_CONN);
	r = status_build(f, p, id, &o, err, sizeof(err));
	if (r < 0)
		return q_failed(p, m->id, code_of(r), r, err);
	r = q_reply(p, m->id, o);
	if (r < 0 || w)
		return r;
	l = live_get(f, id, true);
	w = l ? calloc(1, sizeof(*w)) : NULL;
	if (!w)
		return -ENOMEM;
	*w = (struct watch){.p = p, .l = l, .lnext = l->watchers, .pnext = p->watches};
	l->watchers = w;
	p->watches = w;
	p->nwatch++;
	/* The first UPDATE says where it is now (and is final at once for a finished task). */
	l->sent_state = -1;
	mark_dirty(f, id);
	return 0;
}

static int h_cancel(struct net_conn *c, const struct proto_msg *m, void *ud)
{
	struct front *f = ud;
	struct peer *p = peer_of(c);
	char err[256] = "";
	cJSON *o;
	int64_t id, refund = 0;
	int r;

	if (!p)
		return -EIO;
	if (task_id_arg(p, m, &id) < 0)
		return 0;
	r = coord_cancel(f->c, p->account, id, now_s(), &f->actions, err, sizeof(err));
	if (r < 0)
		return q_failed(p, m->id, code_of(r), r, err);
	/* Only validated usage is charged; the rest of the escrow comes back now. */
	if (f->cfg.pay && (r = pay_on_task_end(f->cfg.pay, id, now_ns(), &refund)) < 0)
		flog(f, LOG_LVL_ERR, "task %lld: cannot close its escrow: %s", (long long)id,
		     strerror(-r));
	o = cJSON_CreateObject();
	if (!o || canon_add_i64(o, "task_id", id) < 0 || task_id_to_string(o) < 0 ||
	    !cJSON_AddStringToObject(o, "state", task_state_name(TASK_CANCELLED)) ||
	    canon_add_i64(o, "refund", refund) < 0) {
		cJSON_Delete(o);
		return -ENOMEM;
	}
	flog(f, LOG_LVL_INFO, "task %lld cancelled by %s", (long long)id, net_conn_peer(c)->name);
	return q_reply(p, m->id, o);
}

struct rated {
	int64_t node;
};

static int rated_cb(const struct store_replica *rep, void *ud)
{
	struct rated *x = ud;

	if (rep->state == REPLICA_DONE && !x->node)
		x->node = rep->node;
	return 0;
}

static int h_rate(struct net_conn *c, const struct proto_msg *m, void *ud)
{
	struct front *f = ud;
	struct peer *p = peer_of(c);
	struct store_node sn;
	const char *text = "";
	char err[256] = "";
	int64_t id, stars = 0;
	int r;

	if (!p)
		return -EIO;
	if (task_id_arg(p, m, &id) < 0)
		return 0;
	canon_get_i64(m->root, "stars", &stars);
	canon_get_str(m->root, "text", &text);
	r = coord_rate(f->c, p->account, id, (int)stars, text, now_s(), err, sizeof(err));
	if (r < 0)
		return q_failed(p, m->id, code_of(r), r, err);
	if (f->cfg.pay) {
		struct rated x = {0};

		store_replica_foreach(coord_store(f->c), id, 1, rated_cb, &x);
		if (x.node && store_node_get(coord_store(f->c), x.node, &sn) == 0 &&
		    pay_rate(f->cfg.pay, id, net_conn_peer(c)->name, sn.node_id, (int)stars, err,
			     sizeof(err)) < 0)
			flog(f, LOG_LVL_WARN, "task %lld: rating not recorded by settlement: %s",
			     (long long)id, err);
	}
	return q_reply(p, m->id, cJSON_CreateObject());
}

struct list_ctx {
	cJSON *arr;
};

static int list_cb(const struct store_task *t, void *ud)
{
	struct list_ctx *x = ud;
	cJSON *o = cJSON_CreateObject();
	char id[24];

	snprintf(id, sizeof(id), "%lld", (long long)t->id);
	if (!o || !cJSON_AddItemToArray(x->arr, o)) {
		cJSON_Delete(o);
		return -ENOMEM;
	}
	if (!cJSON_AddStringToObject(o, "task_id", id) ||
	    !cJSON_AddStringToObject(o, "state", task_state_name(t->state)) ||
	    !cJSON_AddStringToObject(o, "image", t->image) ||
	    canon_add_i64(o, "cores", t->cores) < 0 ||
	    canon_add_i64(o, "replicas", t->replicas) < 0 ||
	    canon_add_i64(o, "submitted_at", t->submitted_at) < 0 ||
	    canon_add_i64(o, "finished_at", t->finished_at) < 0 ||
	    !cJSON_AddStringToObject(o, "reason", t->reason) ||
	    !cJSON_AddStringToObject(o, "result", t->result_digest) ||
	    canon_add_i64(o, "exit_code", t->exit_code) < 0)
		return -ENOMEM;
	return 0;
}

static int h_tasks(struct net_conn *c, const struct proto_msg *m, void *ud)
{
	struct front *f = ud;
	struct peer *p = peer_of(c);
	const char *state = NULL;
	int64_t limit = 100;
	int st = -1, r;
	cJSON *o;
	struct list_ctx x;

	if (!p)
		return -EIO;
	canon_get_i64(m->root, "limit", &limit);
	if (canon_get_str(m->root, "state", &state) == 0) {
		for (int i = 0; i < TASK_STATE_N; i++)
			if (!strcmp(state, task_state_name(i)))
				st = i;
		if (st < 0)
			return q_error(p, m->id, "invalid",
				       "state: one of queued, running, done, failed, cancelled, "
				       "expired");
	}
	o = cJSON_CreateObject();
	x.arr = cJSON_CreateArray();
	if (!o || !x.arr || !cJSON_AddItemToObject(o, "tasks", x.arr)) {
		cJSON_Delete(o);
		cJSON_Delete(x.arr);
		return -ENOMEM;
	}
	r = store_task_list(coord_store(f->c), p->role == ROLE_AUDITOR ? -1 : p->account, st,
			    (unsigned)limit, list_cb, &x);
	if (r < 0) {
		cJSON_Delete(o);
		return q_error(p, m->id, "internal", "cannot list tasks");
	}
	return q_reply(p, m->id, o);
}

/* MARKET and NODES: the nodes view with account names; market hides nothing but the row id. */
static int nodes_build(struct front *f, cJSON **ret)
{
	cJSON *arr = NULL, *it;
	int r = coord_nodes_json(f->c, now_s(), &arr);

	if (r < 0)
		return r;
	cJSON_ArrayForEach (it, arr) {
		const char *nid = NULL;
		struct store_node sn;
		char name[128] = "";

		int64_t price = 0, eff;
		unsigned bits;

		if (canon_get_str(it, "node_id", &nid) == 0 &&
		    store_node_find(coord_store(f->c), nid, &sn) == 0)
			store_account_name(coord_store(f->c), sn.account_id, name, sizeof(name));
		canon_get_i64(it, "price", &price);
		eff = price;
		if (f->cfg.pay)
			pay_offer_terms(f->cfg.pay, price, INT64_MAX, &eff, &bits);
		if (!cJSON_AddStringToObject(it, "name", name) ||
		    canon_add_i64(it, "effective_price", eff) < 0) {
			cJSON_Delete(arr);
			return -ENOMEM;
		}
	}
	*ret = arr;
	return 0;
}

static int h_nodes_like(struct net_conn *c, const struct proto_msg *m, struct front *f,
			const char *key)
{
	struct peer *p = peer_of(c);
	cJSON *arr = NULL, *o;
	int r;

	if (!p)
		return -EIO;
	r = nodes_build(f, &arr);
	if (r < 0)
		return q_error(p, m->id, "internal", "cannot list nodes");
	o = cJSON_CreateObject();
	if (!o || !cJSON_AddItemToObject(o, key, arr)) {
		cJSON_Delete(o);
		cJSON_Delete(arr);
		return -ENOMEM;
	}
	return q_reply(p, m->id, o);
}

static int h_market(struct net_conn *c, const struct proto_msg *m, void *ud)
{
	return h_nodes_like(c, m, ud, "providers");
}

static int h_nodes(struct net_conn *c, const struct proto_msg *m, void *ud)
{
	return h_nodes_like(c, m, ud, "nodes");
}

static int h_node(struct net_conn *c, const struct proto_msg *m, void *ud)
{
	struct front *f = ud;
	struct peer *p = peer_of(c);
	const char *nid = NULL;
	cJSON *arr = NULL, *it, *found = NULL;
	int r;

	if (!p)
		return -EIO;
	canon_get_str(m->root, "node_id", &nid);
	r = nodes_build(f, &arr);
	if (r < 0)
		return q_error(p, m->id, "internal", "cannot list nodes");
	cJSON_ArrayForEach (it, arr) {
		const char *s = NULL;

		if (canon_get_str(it, "node_id", &s) == 0 && nid && !strcmp(s, nid)) {
			found = cJSON_DetachItemViaPointer(arr, it);
			break;
		}
	}
	cJSON_Delete(arr);
	if (!found)
		return q_error(p, m->id, "not_found", "no node %.64s", nid ? nid : "");
	if (f->cfg.pay) {
		cJSON *money = NULL;

		if (pay_node(f->cfg.pay, nid, &money) == 0) {
			cJSON *it2, *next;

			/* earnings, trust and rating next to the market view */
			for (it2 = money->child; it2; it2 = next) {
				next = it2->next;
				if (!cJSON_GetObjectItemCaseSensitive(found, it2->string))
					cJSON_AddItemToObject(
						found, it2->string,
						cJSON_DetachItemViaPointer(money, it2));
			}
			cJSON_Delete(money);
		}
	}
	return q_reply(p, m->id, found);
}

static int h_queue(struct net_conn *c, const struct proto_msg *m, void *ud)
{
	struct front *f = ud;
	struct peer *p = peer_of(c);
	cJSON *q = NULL, *o;

	if (!p)
		return -EIO;
	if (coord_queue_json(f->c, &q) < 0)
		return q_error(p, m->id, "internal", "cannot build the queue view");
	o = cJSON_CreateObject();
	if (!o || !cJSON_AddItemToObject(o, "queue", q)) {
		cJSON_Delete(o);
		cJSON_Delete(q);
		return -ENOMEM;
	}
	return q_reply(p, m->id, o);
}

static int h_no_settlement(struct peer *p, const struct proto_msg *m)
{
	return q_error(p, m->id, "unsupported", "%s: settlement is not enabled on this coordinator",
		       proto_type_name(m->type));
}

/* BALANCE, NODE's money part, STAKE, UNSTAKE, PROPOSE, VOTE, PROPOSALS: settlement answers. */
static int h_money(struct net_conn *c, const struct proto_msg *m, void *ud)
{
	struct front *f = ud;
	struct peer *p = peer_of(c);
	const char *account = net_conn_peer(c)->name, *s = NULL, *text = NULL;
	struct pay *pay = f->cfg.pay;
	int kind = market_msg_of(m->type);
	cJSON *o = NULL;
	char err[512] = "";
	int64_t v = 0, amount = 0, release = 0;
	int yes = 0, r = 0;

	if (!p)
		return -EIO;
	if (!pay)
		return h_no_settlement(p, m);
	switch (kind) {
	case MKT_BALANCE:
		if (canon_get_str(m->root, "account", &s) == 0)
			account = s;
		r = pay_balance(pay, account, &o);
		break;
	case MKT_STAKE:
	case MKT_UNSTAKE:
		canon_get_i64(m->root, "amount", &amount);
		r = kind == MKT_STAKE ? pay_stake(pay, account, amount, now_ns(), err, sizeof(err))
				      : pay_unstake(pay, account, amount, now_ns(), err,
						    sizeof(err), &release);
		if (r >= 0)
			r = pay_balance(pay, account, &o);
		/* UNSTAKE: when the amount becomes spendable again */
		if (r >= 0 && kind == MKT_UNSTAKE && canon_add_i64(o, "release_ns", release) < 0)
			r = -ENOMEM;
		break;
	case MKT_PROPOSE:
		canon_get_str(m->root, "param", &s);
		canon_get_i64(m->root, "value", &v);
		canon_get_str(m->root, "text", &text);
		r = pay_propose(pay, account, s, v, text, now_ns(), &o, err, sizeof(err));
		break;
	case MKT_VOTE:
		canon_get_i64(m->root, "proposal", &v);
		canon_get_bool(m->root, "yes", &yes);
		r = pay_vote(pay, account, v, yes, now_ns(), err, sizeof(err));
		if (r >= 0 && !(o = cJSON_CreateObject()))
			r = -ENOMEM;
		break;
	case MKT_PROPOSALS: {
		cJSON *arr = NULL;

		r = pay_proposals(pay, &arr);
		if (r >= 0) {
			o = cJSON_CreateObject();
			if (!o || !cJSON_AddItemToObject(o, "proposals", arr)) {
				cJSON_Delete(arr);
				r = -ENOMEM;
			}
		}
		break;
	}
	default:
		r = -EINVAL;
	}
	if (r < 0) {
		cJSON_Delete(o);
		return q_failed(p, m->id, r == -ENOSPC ? "insufficient_funds" : code_of(r), r, err);
	}
	return q_reply(p, m->id, o);
}

/* ---- periodic work ---- */

static void tick_run(struct loop_timer *t, void *ud)
{
	struct front *f = ud;
	struct sched *sc = coord_sched(f->c);
	int64_t now = now_s();
	int r;

	loop_timer_arm(t, f->cfg.tick_ms);
	if (f->fatal)
		return;
	/*
	 * A connected node without work counts as alive: heartbeat_timeout is for
	 * nodes holding slots (they report every few seconds while running), so a
	 * short timeout never flaps idle providers between their 10 s HEARTBEATs.
	 */
	for (size_t i = 1; i < f->nby_node; i++) {
		const struct sched_node *n = f->by_node[i] ? sched_node_get(sc, (int64_t)i) : NULL;

		if (n && n->online && !n->tasks)
			coord_node_heartbeat(f->c, (int64_t)i, now);
	}
	/* Say which nodes coord_tick() is about to declare lost (the core does not log). */
	for (unsigned i = 0; i < sched_node_count(sc); i++) {
		const struct sched_node *n = sched_node_at(sc, i);

		if (n->known && (n->online || n->tasks) &&
		    now - n->last_seen > f->cfg.heartbeat_timeout)
			flog(f, LOG_LVL_INFO,
			     "node %lld lost: no message for %lld s; %u slot(s) requeued",
			     (long long)n->id, (long long)(now - n->last_seen), n->tasks);
	}
	r = coord_tick(f->c, now, &f->actions);
	if (r < 0)
		flog(f, LOG_LVL_ERR, "periodic pass failed: %s", strerror(-r));
	if (f->cfg.pay) {
		struct sched_stats ss;

		sched_get_stats(sc, &ss);
		r = pay_tick(f->cfg.pay, now_ns(), (ss.running_cores + ss.queued_cores) * 1000,
			     ss.online_cores * 1000);
		if (r == 1)
			flog(f, LOG_LVL_INFO, "settlement epoch closed");
		if (r < 0) {
			flog(f, LOG_LVL_ERR, "settlement tick failed: %s; stopping", strerror(-r));
			f->fatal = r;
			loop_stop(f->cfg.loop);
			return;
		}
	}
	/* Watchers get the live CPU time at least once a second. */
	for (size_t b = 0; b < LIVE_BUCKETS; b++)
		for (struct live *l = f->live[b]; l; l = l->hnext)
			if (l->watchers)
				mark_dirty(f, l->task_id);
	round_arm(f);
}

/* ---- set-up ---- */

static void net_log(void *ud, enum log_level lvl, const char *line)
{
	struct front *f = ud;

	if (f->cfg.log)
		f->cfg.log(f->cfg.log_ud, lvl, line);
}

int front_fatal(const struct front *f)
{
	return f->fatal;
}

struct front *front_free(struct front *f)
{
	if (!f)
		return NULL;
	f->srv = net_server_free(f->srv);
	/* Connections closed at shutdown may not pass through on_close. */
	while (f->peers)
		peer_release(f, f->peers);
	loop_timer_free(f->round_timer);
	loop_timer_free(f->tick_timer);
	for (size_t i = 0; i < f->nout; i++) {
		cJSON_Delete(f->out[i].msg);
		net_conn_unref(f->out[i].c);
	}
	for (size_t b = 0; b < LIVE_BUCKETS; b++)
		while (f->live[b]) {
			struct live *l = f->live[b];

			f->live[b] = l->hnext;
			free(l);
		}
	coord_set_task_hook(f->c, NULL, NULL);
	coord_actions_clear(&f->actions);
	free(f->out);
	free(f->by_node);
	free(f->dirty);
	free(f->ended);
	free(f);
	return NULL;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(struct front, front_free)

int front_new(const struct front_config *cfg, struct front **ret)
{
	static const struct {
		int mkt; /* market message, or -1 for a built-in type */
		int type;
		net_handler_fn fn;
	} handlers[] = {
		{-1, PROTO_REGISTER, h_register},
		{-1, PROTO_HEARTBEAT, h_heartbeat},
		{-1, PROTO_TASK_ACCEPT, h_task_accept},
		{-1, PROTO_TASK_REJECT, h_task_reject},
		{-1, PROTO_TASK_STATUS, h_task_status},
		{-1, PROTO_USAGE_RECORD, h_usage_record},
		{-1, PROTO_TASK_RESULT, h_task_result},
		{-1, PROTO_BLOB_PUT, h_blob_put},
		{-1, PROTO_BLOB_GET, h_blob_get},
		{MKT_SUBMIT, 0, h_submit},
		{MKT_STATUS, 0, h_status},
		{MKT_WATCH, 0, h_watch},
		{MKT_CANCEL, 0, h_cancel},
		{MKT_RATE, 0, h_rate},
		{MKT_TASKS, 0, h_tasks},
		{MKT_MARKET, 0, h_market},
		{MKT_NODE, 0, h_node},
		{MKT_NODES, 0, h_nodes},
		{MKT_QUEUE, 0, h_queue},
		{MKT_BALANCE, 0, h_money},
		{MKT_STAKE, 0, h_money},
		{MKT_UNSTAKE, 0, h_money},
		{MKT_PROPOSE, 0, h_money},
		{MKT_VOTE, 0, h_money},
		{MKT_PROPOSALS, 0, h_money},
	};
	_cleanup_(front_freep) struct front *f = NULL;
	struct net_server_config sc = {0};
	int r;

	r = market_proto_define();
	if (r < 0)
		return r;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->cfg = *cfg;
	f->c = cfg->coord;
	if (!f->cfg.tick_ms)
		f->cfg.tick_ms = 1000;
	if (!f->cfg.sched_max)
		f->cfg.sched_max = 100000;
	r = loop_timer_new(cfg->loop, round_run, f, &f->round_timer);
	if (r < 0)
		return r;
	r = loop_timer_new(cfg->loop, tick_run, f, &f->tick_timer);
	if (r < 0)
		return r;
	coord_set_task_hook(f->c, task_hook, f);
	sc.tls = cfg->tls;
	sc.listen_fd = cfg->listen_fd;
	sc.max_conns = cfg->max_conns;
	sc.software = "aicn-coordinator " AICN_VERSION;
	sc.log = net_log;
	sc.on_ready = on_ready;
	sc.on_close = on_close;
	sc.ud = f;
	r = net_server_new(cfg->loop, &sc, &f->srv);
	if (r < 0)
		return r;
	for (size_t i = 0; i < ARRAY_SIZE(handlers); i++) {
		int type = handlers[i].mkt >= 0 ? market_type(handlers[i].mkt) : handlers[i].type;

		r = net_server_handle(f->srv, type, handlers[i].fn, f);
		if (r < 0)
			return r;
	}
	loop_timer_arm(f->tick_timer, 0);
	*ret = TAKE_PTR(f);
	return 0;
}
