/* test_sched.c -- the scheduler alone: balanced shares, policies, caps, windows, replicas, queue order. */
#include "../../coordinator/sched.h"

#include <aicn/window.h>

#include "harness.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* 2024-01-01 (a Monday) 12:00 UTC. */
#define MON_NOON 1704110400LL

struct rec {
	int64_t task[4096];
	int64_t node[4096];
	uint32_t idx[4096];
	unsigned n;
	unsigned expired;
	int refuse; /* place() fails */
};

static int rec_place(void *ud, struct sched_task *t, uint32_t idx, const struct sched_node *n)
{
	struct rec *r = ud;

	if (r->refuse)
		return -EIO;
	r->task[r->n] = t->id;
	r->idx[r->n] = idx;
	r->node[r->n++] = n->id;
	return 0;
}

static void rec_expire(void *ud, struct sched_task *t)
{
	(void)t;
	((struct rec *)ud)->expired++;
}

static const struct sched_ops ops = {.place = rec_place, .expire = rec_expire};

static struct sched *new_sched(void)
{
	struct sched *s = NULL;

	return sched_new(&s) == 0 ? s : NULL;
}

static int add_node(struct sched *s, int64_t id, uint32_t cores, int64_t price, int64_t perf,
		    const char *loc, const char *win)
{
	struct sched_node n = {0};
	int r;

	n.id = id;
	n.cores = cores;
	n.memory = 64ULL << 30;
	n.price = price;
	n.perf = perf;
	snprintf(n.location, sizeof(n.location), "%s", loc ? loc : "");
	r = window_parse(win ? win : "always", &n.window, NULL, 0);
	if (r < 0)
		return r;
	r = sched_node_set(s, &n);
	if (r < 0)
		return r;
	return sched_node_online(s, id, true);
}

static struct sched_task mk_task(int64_t id, uint32_t cores)
{
	struct sched_task t = {0};

	t.id = id;
	t.cores = cores;
	t.memory = 1 << 20;
	t.max_price = 1000;
	t.replicas = 1;
	return t;
}

static int add_tasks(struct sched *s, int64_t first, unsigned n, uint32_t cores)
{
	for (unsigned i = 0; i < n; i++) {
		struct sched_task t = mk_task(first + i, cores);
		int r = sched_task_add(s, &t, NULL);

		if (r < 0)
			return r;
	}
	return 0;
}

/* Capacities 1:2, 60 one-core tasks, plenty of room: running load ends 1:2 within 10%. */
static void test_balanced_ratio(void)
{
	struct sched *s = new_sched();
	struct rec *r = calloc(1, sizeof(*r));
	const struct sched_node *a, *b;
	double ratio;

	CHECK(s && r);
	CHECK_EQ(add_node(s, 1, 40, 10, 0, NULL, NULL), 0);
	CHECK_EQ(add_node(s, 2, 80, 10, 0, NULL, NULL), 0);
	CHECK_EQ(add_tasks(s, 1, 60, 1), 0);
	CHECK_EQ(sched_run(s, MON_NOON, 1000, &ops, r), 60);
	a = sched_node_get(s, 1);
	b = sched_node_get(s, 2);
	printf("balanced 40:80 cores, 60 tasks -> %u : %u\n", a->used_cores, b->used_cores);
	CHECK_EQ(a->used_cores + b->used_cores, 60);
	ratio = (double)b->used_cores / a->used_cores;
	CHECK(ratio >= 2.0 * 0.9 && ratio <= 2.0 * 1.1);
	/* And at every step of the way: after each third placement it is exact. */
	{
		unsigned ca = 0, cb = 0;

		for (unsigned i = 0; i < r->n; i++) {
			if (r->node[i] == 1)
				ca++;
			else
				cb++;
			if ((i + 1) % 3 == 0)
				CHECK_EQ(cb, 2 * ca);
		}
	}
	sched_free(s);
	free(r);
}

/* Tasks come and go, never filling the nodes; the time-averaged running load stays 1:2. */
static void test_balanced_churn(void)
{
	struct sched *s = new_sched();
	struct rec *r = calloc(1, sizeof(*r));
	static int64_t running[4096];
	unsigned nrun = 0, seed = 7;
	uint64_t sum_a = 0, sum_b = 0;
	int64_t next_id = 1;
	double ratio;

	CHECK(s && r);
	CHECK_EQ(add_node(s, 1, 100, 10, 0, NULL, NULL), 0);
	CHECK_EQ(add_node(s, 2, 200, 10, 0, NULL, NULL), 0);
	for (int round = 0; round < 60; round++) {
		/* Finish a random third of what runs. */
		for (unsigned i = 0; i < nrun;) {
			if (rand_r(&seed) % 3 == 0) {
				CHECK_EQ(sched_task_remove(s, running[i]), 0);
				running[i] = running[--nrun];
			} else {
				i++;
			}
		}
		CHECK_EQ(add_tasks(s, next_id, 12, 1 + (unsigned)(round % 3)), 0);
		next_id += 12;
		r->n = 0;
		CHECK_EQ(sched_run(s, MON_NOON, 1000, &ops, r), 12);
		for (unsigned i = 0; i < r->n; i++)
			running[nrun++] = r->task[i];
		sum_a += sched_node_get(s, 1)->used_cores;
		sum_b += sched_node_get(s, 2)->used_cores;
	}
	/* Never full: the ratio comes from the policy, not from the caps. */
	CHECK(sched_node_get(s, 2)->used_cores < 150);
	ratio = (double)sum_b / (double)sum_a;
	printf("churn: average running cores %.1f : %.1f (ratio %.3f)\n", sum_a / 60.0,
	       sum_b / 60.0, ratio);
	CHECK(ratio >= 1.8 && ratio <= 2.2);
	sched_free(s);
	free(r);
}

/* A task that fits nowhere right now waits; it starts once cores are free. */
static void test_caps_wait(void)
{
	struct sched *s = new_sched();
	struct rec r = {0};
	struct sched_task *big;

	CHECK(s);
	CHECK_EQ(add_node(s, 1, 4, 10, 0, NULL, NULL), 0);
	CHECK_EQ(add_tasks(s, 1, 3, 1), 0);
	CHECK_EQ(sched_run(s, MON_NOON, 100, &ops, &r), 3);
	{
		struct sched_task t = mk_task(10, 4);

		CHECK_EQ(sched_task_add(s, &t, &big), 0);
	}
	CHECK_EQ(sched_run(s, MON_NOON, 100, &ops, &r), 0);
	CHECK_EQ(sched_node_get(s, 1)->used_cores, 3); /* never above the cap */
	CHECK(big->placed[0] < 0);
	CHECK_EQ(sched_task_remove(s, 1), 0);
	CHECK_EQ(sched_task_remove(s, 2), 0);
	CHECK_EQ(sched_run(s, MON_NOON, 100, &ops, &r), 0);
	CHECK_EQ(sched_task_remove(s, 3), 0);
	CHECK_EQ(sched_run(s, MON_NOON, 100, &ops, &r), 1);
	CHECK_EQ(r.task[r.n - 1], 10);
	CHECK_EQ(sched_node_get(s, 1)->used_cores, 4);
	/* max_tasks caps concurrent tasks as well. */
	{
		struct sched_node n = *sched_node_get(s, 1);
		struct sched_task t = mk_task(11, 1);

		n.cores = 8;
		n.max_tasks = 1;
		CHECK_EQ(sched_node_set(s, &n), 0);
		CHECK_EQ(sched_task_add(s, &t, NULL), 0);
		CHECK_EQ(sched_run(s, MON_NOON, 100, &ops, &r), 0);
	}
	sched_free(s);
}

/* Outside its window a node gets nothing; the task waits for the window to open. */
static void test_window_wait(void)
{
	struct sched *s = new_sched();
	struct rec r = {0};

	CHECK(s);
	CHECK_EQ(add_node(s, 1, 8, 10, 0, NULL, "Mon-Fri 22:00-07:00"), 0);
	CHECK_EQ(add_tasks(s, 1, 1, 1), 0);
	CHECK_EQ(sched_run(s, MON_NOON, 100, &ops, &r), 0);
	CHECK_EQ(sched_run(s, MON_NOON + 9 * 3600 + 59 * 60, 100, &ops, &r), 0); /* 21:59 */
	CHECK_EQ(sched_run(s, MON_NOON + 10 * 3600, 100, &ops, &r), 1);		 /* 22:00 */
	/* A node at UTC+2 opens at 20:00 UTC. */
	CHECK_EQ(add_node(s, 2, 8, 10, 0, NULL, "Mon-Fri 22:00-07:00"), 0);
	sched_node_get(s, 2)->utc_offset = 7200;
	sched_node_get(s, 1)->cores = 1; /* full */
	CHECK_EQ(add_tasks(s, 2, 1, 1), 0);
	CHECK_EQ(sched_run(s, MON_NOON + 7 * 3600 + 59 * 60, 100, &ops, &r), 0);
	CHECK_EQ(sched_run(s, MON_NOON + 8 * 3600, 100, &ops, &r), 1);
	CHECK_EQ(r.node[r.n - 1], 2);
	sched_free(s);
}

static void test_policies(void)
{
	struct sched *s = new_sched();
	struct rec r = {0};
	struct sched_task t;

	CHECK(s);
	CHECK_EQ(add_node(s, 1, 8, 30, 100, "eu-west", NULL), 0);
	CHECK_EQ(add_node(s, 2, 8, 10, 50, "us-east", NULL), 0);
	CHECK_EQ(add_node(s, 3, 8, 20, 900, "eu-north", NULL), 0);
	t = mk_task(1, 1);
	t.policy = SCHED_CHEAPEST;
	CHECK_EQ(sched_task_add(s, &t, NULL), 0);
	t = mk_task(2, 1);
	t.policy = SCHED_FASTEST;
	CHECK_EQ(sched_task_add(s, &t, NULL), 0);
	t = mk_task(3, 1);
	t.policy = SCHED_CHEAPEST;
	snprintf(t.location, sizeof(t.location), "eu");
	CHECK_EQ(sched_task_add(s, &t, NULL), 0);
	t = mk_task(4, 1);
	t.max_price = 25; /* node 1 too dear */
	t.policy = SCHED_FASTEST;
	CHECK_EQ(sched_task_add(s, &t, NULL), 0);
	t = mk_task(5, 1);
	t.policy = SCHED_EXPLICIT;
	t.nproviders = 1;
	t.providers[0] = 1;
	CHECK_EQ(sched_task_add(s, &t, NULL), 0);
	t = mk_task(6, 1);
	t.min_rating_centi = 400; /* nobody is rated */
	CHECK_EQ(sched_task_add(s, &t, NULL), 0);
	CHECK_EQ(sched_run(s, MON_NOON, 100, &ops, &r), 5);
	CHECK_EQ(r.task[0], 1);
	CHECK_EQ(r.node[0], 2); /* cheapest */
	CHECK_EQ(r.node[1], 3); /* fastest */
	CHECK_EQ(r.node[2], 3); /* cheapest in eu */
	CHECK_EQ(r.node[3], 3); /* fastest under 25 */
	CHECK_EQ(r.task[4], 5);
	CHECK_EQ(r.node[4], 1); /* explicit, even though dearest and slower */
	/* Once node 2 is rated 4.5, the rated task goes there. */
	sched_node_get(s, 2)->rating_centi = 450;
	CHECK_EQ(sched_run(s, MON_NOON, 100, &ops, &r), 1);
	CHECK_EQ(r.node[5], 2);
	sched_free(s);
}

/* Explicit providers: only them, even when they are full (the task waits). */
static void test_explicit_waits(void)
{
	struct sched *s = new_sched();
	struct rec r = {0};
	struct sched_task t = mk_task(1, 4);

	CHECK(s);
	CHECK_EQ(add_node(s, 1, 4, 10, 0, NULL, NULL), 0);
	CHECK_EQ(add_node(s, 2, 64, 10, 0, NULL, NULL), 0);
	t.policy = SCHED_EXPLICIT;
	t.nproviders = 1;
	t.providers[0] = 1;
	CHECK_EQ(sched_task_add(s, &t, NULL), 0);
	t.id = 2;
	CHECK_EQ(sched_task_add(s, &t, NULL), 0);
	CHECK_EQ(sched_run(s, MON_NOON, 100, &ops, &r), 1);
	CHECK_EQ(r.node[0], 1);
	CHECK_EQ(sched_node_get(s, 2)->used_cores, 0);
	CHECK_EQ(sched_task_remove(s, r.task[0]), 0);
	CHECK_EQ(sched_run(s, MON_NOON, 100, &ops, &r), 1);
	CHECK_EQ(r.node[1], 1);
	sched_free(s);
}

/* Replicas land on distinct nodes; a third replica with two nodes waits. */
static void test_replicas_distinct(void)
{
	struct sched *s = new_sched();
	struct rec r = {0};
	struct sched_task t = mk_task(1, 1), *tt;

	CHECK(s);
	CHECK_EQ(add_node(s, 1, 64, 10, 0, NULL, NULL), 0);
	CHECK_EQ(add_node(s, 2, 64, 10, 0, NULL, NULL), 0);
	t.replicas = 3;
	CHECK_EQ(sched_task_add(s, &t, &tt), 0);
	CHECK_EQ(sched_run(s, MON_NOON, 100, &ops, &r), 2);
	CHECK(r.node[0] != r.node[1]);
	CHECK(tt->placed[2] < 0);
	CHECK_EQ(add_node(s, 3, 1, 10, 0, NULL, NULL), 0);
	CHECK_EQ(sched_run(s, MON_NOON, 100, &ops, &r), 1);
	CHECK_EQ(r.node[2], 3);
	sched_free(s);
}

/* Requeue: node lost -> slot queued again, elsewhere when excluded; no double placement. */
static void test_requeue(void)
{
	struct sched *s = new_sched();
	struct rec r = {0};
	struct sched_task t = mk_task(1, 2), *tt;

	CHECK(s);
	CHECK_EQ(add_node(s, 1, 8, 10, 0, NULL, NULL), 0);
	CHECK_EQ(add_node(s, 2, 4, 10, 0, NULL, NULL), 0);
	CHECK_EQ(sched_task_add(s, &t, &tt), 0);
	CHECK_EQ(sched_run(s, MON_NOON, 100, &ops, &r), 1);
	CHECK_EQ(r.node[0], 1);
	/* While placed, another pass places nothing more. */
	CHECK_EQ(sched_run(s, MON_NOON, 100, &ops, &r), 0);
	CHECK_EQ(sched_slot_requeue(s, tt, 0, true), 0);
	CHECK_EQ(tt->attempts, 1);
	CHECK_EQ(sched_node_get(s, 1)->used_cores, 0);
	CHECK_EQ(sched_run(s, MON_NOON, 100, &ops, &r), 1);
	CHECK_EQ(r.node[1], 2); /* node 1 excluded */
	/* Node 2 goes offline: nothing else gets placed there. */
	CHECK_EQ(sched_slot_requeue(s, tt, 0, true), 0);
	CHECK_EQ(sched_node_online(s, 2, false), 0);
	CHECK_EQ(sched_run(s, MON_NOON, 100, &ops, &r), 0);
	/* A place() failure keeps the slot queued. */
	r.refuse = 1;
	CHECK_EQ(sched_node_online(s, 2, true), 0);
	sched_node_get(s, 2)->cores = 4;
	CHECK_EQ(sched_run(s, MON_NOON, 100, &ops, &r), 0);
	CHECK(tt->placed[0] < 0);
	sched_free(s);
}

/* Priority first, then earliest deadline, then FIFO; past deadlines expire. */
static void test_queue_order(void)
{
	struct sched *s = new_sched();
	struct rec r = {0};
	struct sched_task t;

	CHECK(s);
	CHECK_EQ(add_node(s, 1, 1, 10, 0, NULL, NULL), 0);
	t = mk_task(1, 1);
	CHECK_EQ(sched_task_add(s, &t, NULL), 0);
	t = mk_task(2, 1);
	t.deadline = MON_NOON + 100;
	CHECK_EQ(sched_task_add(s, &t, NULL), 0);
	t = mk_task(3, 1);
	t.priority = 5;
	CHECK_EQ(sched_task_add(s, &t, NULL), 0);
	t = mk_task(4, 1);
	t.deadline = MON_NOON + 50;
	CHECK_EQ(sched_task_add(s, &t, NULL), 0);
	t = mk_task(5, 1);
	t.deadline = MON_NOON - 1; /* already late */
	t.priority = 9;
	CHECK_EQ(sched_task_add(s, &t, NULL), 0);
	for (int i = 0; i < 4; i++) {
		CHECK_EQ(sched_run(s, MON_NOON, 100, &ops, &r), 1);
		CHECK_EQ(sched_task_remove(s, r.task[r.n - 1]), 0);
	}
	CHECK_EQ(r.task[0], 3);
	CHECK_EQ(r.task[1], 4);
	CHECK_EQ(r.task[2], 2);
	CHECK_EQ(r.task[3], 1);
	CHECK_EQ(r.expired, 1);
	sched_free(s);
}

int main(void)
{
	static const struct test_case cases[] = {
		TEST(test_balanced_ratio),    TEST(test_balanced_churn),
		TEST(test_caps_wait),	      TEST(test_window_wait),
		TEST(test_policies),	      TEST(test_explicit_waits),
		TEST(test_replicas_distinct), TEST(test_requeue),
		TEST(test_queue_order),	      {NULL, NULL},
	};

	return harness_run(cases);
}
