/* sched.c -- placement: filters (online, window, caps, price, location, rating) and policies. */
#include "sched.h"

#include <aicn/compiler.h>

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SCHED_BACKFILL_DEFAULT 64

struct qent {
	struct sched_task *t; /* task; kept alive by heap_refs */
	uint32_t idx;	      /* slot */
};

struct sched {
	struct sched_node *nodes; /* by index; pointers change when a node is added */
	unsigned nnodes, nodes_cap;
	int32_t *index_of; /* node row id -> index + 1 (0 = unknown) */
	int64_t index_of_cap;
	struct qent *heap;
	size_t nheap, heap_cap;
	struct sched_task **ht; /* task id hash, chained */
	size_t ht_cap, ntasks;
	int64_t seq;
	unsigned backfill;
	uint64_t online_cores, running_cores, free_cores, placed_slots, placements;
	uint32_t online_nodes;
};

/* --- small helpers --- */

const char *sched_policy_name(enum sched_policy p)
{
	switch (p) {
	case SCHED_BALANCED:
		return "balanced";
	case SCHED_CHEAPEST:
		return "cheapest";
	case SCHED_FASTEST:
		return "fastest";
	case SCHED_EXPLICIT:
		return "explicit";
	}
	return "?";
}

int sched_policy_parse(const char *name, enum sched_policy *ret)
{
	static const enum sched_policy all[] = {SCHED_BALANCED, SCHED_CHEAPEST, SCHED_FASTEST,
						SCHED_EXPLICIT};

	for (size_t i = 0; name && i < ARRAY_SIZE(all); i++)
		if (strcmp(name, sched_policy_name(all[i])) == 0) {
			*ret = all[i];
			return 0;
		}
	return -EINVAL;
}

/* "eu" matches "eu", "EU-west" and "eu/paris", not "europe". */
static bool location_match(const char *filter, const char *loc)
{
	size_t n = strlen(filter);

	if (!n)
		return true;
	if (strncasecmp(filter, loc, n) != 0)
		return false;
	return loc[n] == '\0' || loc[n] == '-' || loc[n] == '/';
}

static int node_index(const struct sched *s, int64_t id)
{
	if (id <= 0 || id >= s->index_of_cap)
		return -1;
	return s->index_of[id] - 1;
}

/* Add (sign 1) or remove (sign -1) a node's share of the online totals. */
static void node_account(struct sched *s, const struct sched_node *n, int sign)
{
	uint64_t free = n->cores > n->used_cores ? n->cores - n->used_cores : 0;

	if (!n->online || !n->known)
		return;
	if (sign > 0) {
		s->online_cores += n->cores;
		s->running_cores += n->used_cores;
		s->free_cores += free;
		s->online_nodes++;
	} else {
		s->online_cores -= n->cores;
		s->running_cores -= n->used_cores;
		s->free_cores -= free;
		s->online_nodes--;
	}
}

/* --- task hash --- */

static size_t ht_slot(const struct sched *s, int64_t id)
{
	uint64_t h = (uint64_t)id * 0x9e3779b97f4a7c15ull;

	return (size_t)(h >> 20) & (s->ht_cap - 1);
}

static int ht_grow(struct sched *s)
{
	size_t ncap = s->ht_cap ? s->ht_cap * 2 : 1024;
	struct sched_task **nt = calloc(ncap, sizeof(*nt));
	struct sched_task **old = s->ht;
	size_t ocap = s->ht_cap;

	if (!nt)
		return -ENOMEM;
	s->ht = nt;
	s->ht_cap = ncap;
	for (size_t i = 0; i < ocap; i++) {
		struct sched_task *t = old[i], *next;

		for (; t; t = next) {
			size_t b = ht_slot(s, t->id);

			next = t->hnext;
			t->hnext = s->ht[b];
			s->ht[b] = t;
		}
	}
	free(old);
	return 0;
}

struct sched_task *sched_task_get(struct sched *s, int64_t id)
{
	if (!s->ht_cap)
		return NULL;
	for (struct sched_task *t = s->ht[ht_slot(s, id)]; t; t = t->hnext)
		if (t->id == id)
			return t;
	return NULL;
}

static void ht_unlink(struct sched *s, struct sched_task *t)
{
	struct sched_task **pp = &s->ht[ht_slot(s, t->id)];

	for (; *pp; pp = &(*pp)->hnext)
		if (*pp == t) {
			*pp = t->hnext;
			s->ntasks--;
			return;
		}
}

/* --- queue: binary heap --- */

static int64_t eff_deadline(const struct sched_task *t)
{
	return t->deadline > 0 ? t->deadline : INT64_MAX;
}

/* a before b? */
static bool q_before(const struct qent *a, const struct qent *b)
{
	if (a->t->priority != b->t->priority)
		return a->t->priority > b->t->priority;
	if (eff_deadline(a->t) != eff_deadline(b->t))
		return eff_deadline(a->t) < eff_deadline(b->t);
	if (a->t->seq != b->t->seq)
		return a->t->seq < b->t->seq;
	return a->idx < b->idx;
}

static int q_push(struct sched *s, struct sched_task *t, uint32_t idx)
{
	size_t i;

	if (s->nheap == s->heap_cap) {
		size_t ncap = s->heap_cap ? s->heap_cap * 2 : 1024;
		struct qent *nh = realloc(s->heap, ncap * sizeof(*nh));

		if (!nh)
			return -ENOMEM;
		s->heap = nh;
		s->heap_cap = ncap;
	}
	i = s->nheap++;
	s->heap[i] = (struct qent){t, idx};
	while (i > 0) {
		size_t p = (i - 1) / 2;
		struct qent tmp;

		if (!q_before(&s->heap[i], &s->heap[p]))
			break;
		tmp = s->heap[p];
		s->heap[p] = s->heap[i];
		s->heap[i] = tmp;
		i = p;
	}
	t->heap_refs++;
	t->queued[idx] = 1;
	return 0;
}

/* Pop the first entry; the caller owns one heap_ref of e->t. */
static bool q_pop(struct sched *s, struct qent *ret)
{
	size_t i = 0;

	if (!s->nheap)
		return false;
	*ret = s->heap[0];
	s->heap[0] = s->heap[--s->nheap];
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		struct qent tmp;

		if (l < s->nheap && q_before(&s->heap[l], &s->heap[m]))
			m = l;
		if (r < s->nheap && q_before(&s->heap[r], &s->heap[m]))
			m = r;
		if (m == i)
			break;
		tmp = s->heap[m];
		s->heap[m] = s->heap[i];
		s->heap[i] = tmp;
		i = m;
	}
	ret->t->queued[ret->idx] = 0;
	return true;
}

static void task_unref(struct sched_task *t)
{
	if (--t->heap_refs == 0 && t->dead)
		free(t);
}

/* --- lifecycle --- */

int sched_new(struct sched **ret)
{
	struct sched *s = calloc(1, sizeof(*s));
	int r;

	if (!s)
		return -ENOMEM;
	s->backfill = SCHED_BACKFILL_DEFAULT;
	r = ht_grow(s);
	if (r < 0) {
		free(s);
		return r;
	}
	*ret = s;
	return 0;
}

struct sched *sched_free(struct sched *s)
{
	if (!s)
		return NULL;
	/* Drop queue entries first: removed tasks live only through them. */
	for (size_t i = 0; i < s->nheap; i++)
		task_unref(s->heap[i].t);
	for (size_t i = 0; i < s->ht_cap; i++) {
		struct sched_task *t = s->ht[i], *next;

		for (; t; t = next) {
			next = t->hnext;
			free(t);
		}
	}
	free(s->heap);
	free(s->ht);
	free(s->nodes);
	free(s->index_of);
	free(s);
	return NULL;
}

void sched_set_backfill_depth(struct sched *s, unsigned depth)
{
	s->backfill = depth ? depth : 1;
}

/* --- nodes --- */

int sched_node_set(struct sched *s, const struct sched_node *n)
{
	struct sched_node *cur;
	int i = node_index(s, n->id);

	if (n->id <= 0 || n->id > INT32_MAX)
		return -EINVAL;
	if (i < 0) {
		if (n->id >= s->index_of_cap) {
			int64_t ncap = MAX(s->index_of_cap * 2, n->id + 64);
			int32_t *nm = realloc(s->index_of, (size_t)ncap * sizeof(*nm));

			if (!nm)
				return -ENOMEM;
			memset(nm + s->index_of_cap, 0,
			       (size_t)(ncap - s->index_of_cap) * sizeof(*nm));
			s->index_of = nm;
			s->index_of_cap = ncap;
		}
		if (s->nnodes == s->nodes_cap) {
			unsigned ncap = s->nodes_cap ? s->nodes_cap * 2 : 64;
			struct sched_node *nn = realloc(s->nodes, ncap * sizeof(*nn));

			if (!nn)
				return -ENOMEM;
			s->nodes = nn;
			s->nodes_cap = ncap;
		}
		i = (int)s->nnodes++;
		s->index_of[n->id] = i + 1;
		cur = &s->nodes[i];
		*cur = *n;
		cur->used_cores = 0;
		cur->used_memory = 0;
		cur->tasks = 0;
		cur->online = false;
	} else {
		cur = &s->nodes[i];
		node_account(s, cur, -1);
		{
			uint32_t used = cur->used_cores, tasks = cur->tasks;
			uint64_t used_mem = cur->used_memory;
			bool online = cur->online;

			*cur = *n;
			cur->used_cores = used;
			cur->used_memory = used_mem;
			cur->tasks = tasks;
			cur->online = online;
		}
	}
	cur->known = true;
	cur->win_until = INT64_MIN; /* recompute the window state on next use */
	node_account(s, cur, 1);
	return 0;
}

int sched_node_online(struct sched *s, int64_t id, bool online)
{
	int i = node_index(s, id);

	if (i < 0)
		return -ENOENT;
	node_account(s, &s->nodes[i], -1);
	s->nodes[i].online = online;
	node_account(s, &s->nodes[i], 1);
	return 0;
}

struct sched_node *sched_node_get(struct sched *s, int64_t id)
{
	int i = node_index(s, id);

	return i < 0 ? NULL : &s->nodes[i];
}

unsigned sched_node_count(const struct sched *s)
{
	return s->nnodes;
}

struct sched_node *sched_node_at(struct sched *s, unsigned i)
{
	return i < s->nnodes ? &s->nodes[i] : NULL;
}

uint32_t sched_max_cores(const struct sched *s)
{
	uint32_t m = 0;

	for (unsigned i = 0; i < s->nnodes; i++)
		m = MAX(m, s->nodes[i].cores);
	return m;
}

uint64_t sched_max_memory(const struct sched *s)
{
	uint64_t m = 0;

	for (unsigned i = 0; i < s->nnodes; i++)
		m = MAX(m, s->nodes[i].memory);
	return m;
}

static void node_take(struct sched *s, struct sched_node *n, const struct sched_task *t)
{
	node_account(s, n, -1);
	n->used_cores += t->cores;
	n->used_memory += t->memory;
	n->tasks++;
	node_account(s, n, 1);
	s->placed_slots++;
}

static void node_release(struct sched *s, struct sched_node *n, const struct sched_task *t)
{
	node_account(s, n, -1);
	n->used_cores = n->used_cores > t->cores ? n->used_cores - t->cores : 0;
	n->used_memory = n->used_memory > t->memory ? n->used_memory - t->memory : 0;
	n->tasks = n->tasks ? n->tasks - 1 : 0;
	node_account(s, n, 1);
	s->placed_slots--;
}

/* --- tasks --- */

int sched_task_add(struct sched *s, const struct sched_task *t, struct sched_task **ret_task)
{
	struct sched_task *c;
	size_t b;
	int r;

	if (t->replicas < 1 || t->replicas > SCHED_MAX_REPLICAS || t->cores == 0 ||
	    t->nproviders > SCHED_MAX_PROVIDERS)
		return -EINVAL;
	if (sched_task_get(s, t->id))
		return -EEXIST;
	if (s->ntasks + 1 > s->ht_cap) {
		r = ht_grow(s);
		if (r < 0)
			return r;
	}
	c = malloc(sizeof(*c));
	if (!c)
		return -ENOMEM;
	*c = *t;
	c->seq = ++s->seq;
	c->nexcluded = 0;
	c->heap_refs = 0;
	c->dead = false;
	for (uint32_t i = 0; i < SCHED_MAX_REPLICAS; i++) {
		c->placed[i] = -1;
		c->finished[i] = 0;
		c->queued[i] = 0;
	}
	for (uint32_t i = 0; i < c->replicas; i++) {
		r = q_push(s, c, i);
		if (r < 0) {
			/* Entries already pushed keep c alive; mark it dead so they are dropped. */
			c->dead = true;
			if (c->heap_refs == 0)
				free(c);
			return r;
		}
	}
	b = ht_slot(s, c->id);
	c->hnext = s->ht[b];
	s->ht[b] = c;
	s->ntasks++;
	if (ret_task)
		*ret_task = c;
	return 0;
}

int sched_task_mark_placed(struct sched *s, struct sched_task *t, uint32_t idx, int64_t node)
{
	int i = node_index(s, node);

	if (idx >= t->replicas || t->placed[idx] >= 0 || t->finished[idx])
		return -EINVAL;
	if (i < 0)
		return -ENOENT;
	for (uint32_t k = 0; k < t->replicas; k++)
		if (t->placed[k] == i)
			return -EEXIST;
	t->placed[idx] = i;
	node_take(s, &s->nodes[i], t);
	/* Its queue entry, if any, is dropped when popped. */
	return 0;
}

int sched_task_remove(struct sched *s, int64_t id)
{
	struct sched_task *t = sched_task_get(s, id);

	if (!t)
		return -ENOENT;
	for (uint32_t k = 0; k < t->replicas; k++)
		if (t->placed[k] >= 0) {
			node_release(s, &s->nodes[t->placed[k]], t);
			t->placed[k] = -1;
		}
	ht_unlink(s, t);
	t->dead = true;
	if (t->heap_refs == 0)
		free(t);
	return 0;
}

int sched_slot_finished(struct sched *s, struct sched_task *t, uint32_t idx)
{
	if (idx >= t->replicas || t->placed[idx] < 0)
		return -EINVAL;
	node_release(s, &s->nodes[t->placed[idx]], t);
	/* A node that ran one slot gets no other slot of the task (replicas compare nodes). */
	if (t->replicas > 1)
		t->excluded[t->nexcluded++ % SCHED_MAX_EXCLUDED] = t->placed[idx];
	t->placed[idx] = -1;
	t->finished[idx] = 1;
	return 0;
}

int sched_task_exclude(struct sched *s, struct sched_task *t, int64_t node)
{
	int i = node_index(s, node);

	if (i < 0)
		return -ENOENT;
	for (uint32_t k = 0; k < MIN(t->nexcluded, SCHED_MAX_EXCLUDED); k++)
		if (t->excluded[k] == i)
			return 0;
	t->excluded[t->nexcluded++ % SCHED_MAX_EXCLUDED] = i;
	return 0;
}

int sched_task_add_slot(struct sched *s, struct sched_task *t)
{
	uint32_t idx;

	if (t->dead)
		return -EINVAL;
	if (t->replicas >= SCHED_MAX_REPLICAS)
		return -ENOSPC;
	idx = t->replicas++;
	t->placed[idx] = -1;
	t->finished[idx] = 0;
	t->queued[idx] = 0;
	return q_push(s, t, idx);
}

int sched_slot_requeue(struct sched *s, struct sched_task *t, uint32_t idx, bool exclude)
{
	int32_t ni;

	if (idx >= t->replicas || t->placed[idx] < 0 || t->dead)
		return -EINVAL;
	ni = t->placed[idx];
	node_release(s, &s->nodes[ni], t);
	t->placed[idx] = -1;
	t->attempts++;
	if (exclude)
		t->excluded[t->nexcluded++ % SCHED_MAX_EXCLUDED] = ni;
	if (t->queued[idx])
		return 0; /* a stale entry still sits in the queue: it becomes live again */
	return q_push(s, t, idx);
}

/* --- filters and policies --- */

static bool window_open(struct sched_node *n, int64_t now)
{
	if (n->win_until == INT64_MIN || now >= n->win_until ||
	    now < n->win_until - WINDOW_MINUTES * 60) {
		time_t next;

		n->win_open = window_inside_offset(&n->window, (time_t)now, n->utc_offset);
		if (window_next_change_offset(&n->window, (time_t)now, n->utc_offset, &next) == 0)
			n->win_until = next;
		else
			n->win_until = INT64_MAX;
	}
	return n->win_open;
}

bool sched_eligible(struct sched *s, struct sched_node *n, const struct sched_task *t, uint32_t idx,
		    int64_t now)
{
	int ni = (int)(n - s->nodes);

	if (!n->known || !n->online)
		return false;
	if (n->used_cores + t->cores > n->cores || n->used_memory + t->memory > n->memory)
		return false;
	if (n->max_tasks && n->tasks >= n->max_tasks)
		return false;
	if (n->price > t->max_price)
		return false;
	if (t->min_rating_centi > 0 && n->rating_centi < t->min_rating_centi)
		return false;
	if (t->location[0] && !location_match(t->location, n->location))
		return false;
	for (uint32_t k = 0; k < t->replicas; k++)
		if (k != idx && t->placed[k] == ni)
			return false;
	for (uint32_t k = 0; k < MIN(t->nexcluded, SCHED_MAX_EXCLUDED); k++)
		if (t->excluded[k] == ni)
			return false;
	return window_open(n, now);
}

/*
 * Balanced: node i's target share of running cores is C_i / sum(C) * L, with L the
 * running cores after this placement; its deficit, scaled by sum(C) to stay in
 * integers, is C_i * L - running_i * sum(C).  The largest deficit wins.
 */
static int64_t balanced_key(const struct sched *s, const struct sched_node *n, uint32_t cores)
{
	int64_t total = (int64_t)s->online_cores, load = (int64_t)s->running_cores + cores;

	return (int64_t)n->cores * load - (int64_t)n->used_cores * total;
}

/* Is a a better choice than b (b may be NULL) for this policy? */
static bool better(const struct sched *s, enum sched_policy p, const struct sched_node *a,
		   const struct sched_node *b, uint32_t cores)
{
	int64_t ka, kb;

	if (!b)
		return true;
	if (p == SCHED_CHEAPEST && a->price != b->price)
		return a->price < b->price;
	if (p == SCHED_FASTEST && a->perf != b->perf)
		return a->perf > b->perf;
	ka = balanced_key(s, a, cores);
	kb = balanced_key(s, b, cores);
	if (ka != kb)
		return ka > kb;
	if (a->cores - a->used_cores != b->cores - b->used_cores)
		return a->cores - a->used_cores > b->cores - b->used_cores;
	return a->id < b->id;
}

const struct sched_node *sched_pick(struct sched *s, const struct sched_task *t, uint32_t idx,
				    int64_t now, const char **ret_why)
{
	struct sched_node *best = NULL;

	if (t->policy == SCHED_EXPLICIT) {
		for (uint32_t k = 0; k < t->nproviders; k++) {
			int i = node_index(s, t->providers[k]);

			if (i >= 0 && sched_eligible(s, &s->nodes[i], t, idx, now) &&
			    better(s, t->policy, &s->nodes[i], best, t->cores))
				best = &s->nodes[i];
		}
	} else {
		for (unsigned i = 0; i < s->nnodes; i++) {
			struct sched_node *n = &s->nodes[i];

			/* Cheap checks first: most nodes fail on capacity under load. */
			if (!n->online || n->used_cores + t->cores > n->cores)
				continue;
			if (sched_eligible(s, n, t, idx, now) &&
			    better(s, t->policy, n, best, t->cores))
				best = n;
		}
	}
	if (!best && ret_why)
		*ret_why = s->online_nodes == 0
				   ? "no provider online"
				   : "no online provider fits right now (cores, memory, "
				     "window, price, location or rating)";
	return best;
}

int sched_run(struct sched *s, int64_t now, unsigned max, const struct sched_ops *ops,
	      void *userdata)
{
	struct qent *deferred = NULL, e;
	size_t ndef = 0, defcap = 0;
	unsigned placed = 0, misses = 0;
	int r = 0;

	while (placed < max && misses < s->backfill && s->free_cores > 0 && q_pop(s, &e)) {
		struct sched_task *t = e.t;
		const struct sched_node *n;

		if (t->dead || t->placed[e.idx] >= 0 || t->finished[e.idx]) {
			task_unref(t);
			continue;
		}
		if (t->deadline > 0 && now > t->deadline) {
			if (ops->expire)
				ops->expire(userdata, t);
			task_unref(t);
			continue;
		}
		n = sched_pick(s, t, e.idx, now, NULL);
		if (n && ops->place(userdata, t, e.idx, n) >= 0 && !t->dead) {
			t->placed[e.idx] = (int32_t)(n - s->nodes);
			node_take(s, &s->nodes[t->placed[e.idx]], t);
			s->placements++;
			placed++;
			task_unref(t);
			continue;
		}
		if (t->dead) {
			task_unref(t);
			continue;
		}
		misses++;
		if (ndef == defcap) {
			size_t ncap = defcap ? defcap * 2 : 64;
			struct qent *nd = realloc(deferred, ncap * sizeof(*nd));

			if (!nd) {
				/* Cannot remember it: put it straight back and stop this pass. */
				t->heap_refs--;
				r = q_push(s, t, e.idx);
				break;
			}
			deferred = nd;
			defcap = ncap;
		}
		deferred[ndef++] = e;
	}
	for (size_t i = 0; i < ndef; i++) {
		deferred[i].t->heap_refs--; /* q_push takes its own reference */
		if (q_push(s, deferred[i].t, deferred[i].idx) < 0 && r == 0)
			r = -ENOMEM;
	}
	free(deferred);
	return r < 0 ? r : (int)placed;
}

void sched_get_stats(const struct sched *s, struct sched_stats *ret)
{
	uint64_t queued = 0, cores = 0;

	for (size_t i = 0; i < s->nheap; i++) {
		const struct sched_task *t = s->heap[i].t;

		if (!t->dead && t->placed[s->heap[i].idx] < 0 && !t->finished[s->heap[i].idx]) {
			queued++;
			cores += t->cores;
		}
	}
	ret->queued_slots = queued;
	ret->queued_cores = cores;
	ret->placed_slots = s->placed_slots;
	ret->online_nodes = s->online_nodes;
	ret->online_cores = s->online_cores;
	ret->running_cores = s->running_cores;
	ret->placements = s->placements;
}
