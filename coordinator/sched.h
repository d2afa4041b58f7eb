/* sched.h -- the scheduler: in-memory index of nodes and queued replica slots, filters and policies. */
#ifndef AICN_COORD_SCHED_H
#define AICN_COORD_SCHED_H

#include <aicn/window.h>

#include <stdbool.h>
#include <stdint.h>

/*
 * The scheduler holds no durable state: the store is the truth, and the task
 * layer (task.c) rebuilds the scheduler from it at start and persists every
 * decision it makes through the placement callback of sched_run().
 *
 * A task with R replicas is R slots; each slot is queued and placed on its own,
 * never on a node that holds another slot of the same task.  A slot is either
 * queued, placed (on exactly one node) or finished: it can never be placed on
 * two nodes at once.
 */

enum sched_policy {
	SCHED_BALANCED = 0, /* L_user = C_user / sum(C_all) * L_total: furthest below target wins */
	SCHED_CHEAPEST = 1, /* lowest ask price, then balanced */
	SCHED_FASTEST = 2,  /* highest perf score, then balanced */
	SCHED_EXPLICIT = 3, /* only the renter's providers, balanced among them */
};

#define SCHED_MAX_REPLICAS 5
#define SCHED_MAX_PROVIDERS 16
#define SCHED_MAX_EXCLUDED 8
#define SCHED_LOCATION_MAX 32

struct sched_node {
	int64_t id;			       /* store row id */
	char node_id[65];		       /* hex SHA-256 of the node key */
	uint32_t cores;			       /* offered cores (the provider's cap) */
	uint32_t used_cores;		       /* cores of slots placed here */
	uint64_t memory;		       /* offered bytes */
	uint64_t used_memory;		       /* bytes of slots placed here */
	uint32_t max_tasks;		       /* 0 = no limit */
	uint32_t tasks;			       /* slots placed here */
	int64_t price;			       /* ask, base units per CPU-hour */
	int64_t perf;			       /* perf score, higher = faster */
	char location[SCHED_LOCATION_MAX + 1]; /* e.g. "eu-west" */
	int32_t rating_centi;		       /* average rating x 100, 0 = unrated */
	struct window window;		       /* availability, in the node's local time */
	int32_t utc_offset;		       /* node's local time - UTC, seconds */
	int64_t win_until;		       /* cached: win_open holds until this time */
	bool win_open;			       /* cached window state */
	bool online;			       /* connected and heartbeating */
	bool known;			       /* slot in use */
	int64_t last_seen;		       /* task layer: last heartbeat, unix s */
	int64_t seen_stored;		       /* task layer: last_seen last written to the store */
};

struct sched_task {
	int64_t id;				/* tasks.id */
	uint32_t cores;				/* cores per replica */
	uint64_t memory;			/* bytes per replica */
	int64_t max_price;			/* base units per CPU-hour */
	char location[SCHED_LOCATION_MAX + 1];	/* filter, "" = anywhere */
	int32_t min_rating_centi;		/* 0 = any */
	enum sched_policy policy;		/* how to choose among eligible nodes */
	uint32_t nproviders;			/* explicit providers (policy EXPLICIT) */
	int64_t providers[SCHED_MAX_PROVIDERS]; /* node row ids */
	uint32_t replicas;			/* slots, 1..SCHED_MAX_REPLICAS */
	int32_t priority;			/* higher first */
	int64_t deadline;			/* latest start (unix s), 0 = none */
	uint32_t attempts;			/* requeues so far */
	int32_t state;				/* task layer: enum task_state */
	/* scheduler-owned from here */
	int64_t seq;			      /* FIFO order among equals */
	int32_t placed[SCHED_MAX_REPLICAS];   /* node index per slot, -1 = not placed */
	uint8_t finished[SCHED_MAX_REPLICAS]; /* slot done */
	uint8_t queued[SCHED_MAX_REPLICAS];   /* slot has a live queue entry */
	uint32_t nexcluded;		      /* nodes that rejected or failed it */
	int32_t excluded[SCHED_MAX_EXCLUDED]; /* node indexes, ring */
	uint32_t heap_refs;		      /* queue entries pointing here */
	bool dead;			      /* removed; freed when heap_refs drops to 0 */
	struct sched_task *hnext;	      /* id hash chain */
};

struct sched;

struct sched_stats {
	uint64_t queued_slots;	/* slots waiting */
	uint64_t queued_cores;	/* cores those slots ask for */
	uint64_t placed_slots;	/* slots on nodes */
	uint32_t online_nodes;	/* nodes online */
	uint64_t online_cores;	/* sum of offered cores of online nodes (sum C_all) */
	uint64_t running_cores; /* cores in use on online nodes (L_total) */
	uint64_t placements;	/* placements since start */
};

int sched_new(struct sched **ret);
struct sched *sched_free(struct sched *s);

/* Tuning: how many unplaceable slots one sched_run() examines before it stops (default 64). */
void sched_set_backfill_depth(struct sched *s, unsigned depth);

/*
 * Nodes.  Add or update (caps, price, window...) by row id; the node keeps its
 * placements.  A node that shrinks below what is placed on it only gets no more.
 */
int sched_node_set(struct sched *s, const struct sched_node *n);
int sched_node_online(struct sched *s, int64_t id, bool online);
struct sched_node *sched_node_get(struct sched *s, int64_t id);
/* Largest offered cores / memory of any known node (for submission checks). */
uint32_t sched_max_cores(const struct sched *s);
uint64_t sched_max_memory(const struct sched *s);

/*
 * Tasks.  sched_task_add copies *t (seq, placed... are reset) and queues every
 * slot; ret_task (optional) is the scheduler's copy.  -EEXIST if the id is known.
 */
int sched_task_add(struct sched *s, const struct sched_task *t, struct sched_task **ret_task);
struct sched_task *sched_task_get(struct sched *s, int64_t id);
/* Record slot idx as already placed on node id (rebuilding from the store). */
int sched_task_mark_placed(struct sched *s, struct sched_task *t, uint32_t idx, int64_t node);
/* Forget a task (finished, cancelled, expired): its placed slots free their nodes. */
int sched_task_remove(struct sched *s, int64_t id);

/*
 * A placed slot ends.  finished: the slot is done (cores freed, not queued again).
 * Otherwise the slot is requeued; with exclude, that node is not tried again for
 * this task (it rejected or failed it).
 */
int sched_slot_finished(struct sched *s, struct sched_task *t, uint32_t idx);
/* Never place another slot of t on node (it ran one already). */
int sched_task_exclude(struct sched *s, struct sched_task *t, int64_t node);
/* One more slot (a validation replica), queued at once; -ENOSPC at SCHED_MAX_REPLICAS. */
int sched_task_add_slot(struct sched *s, struct sched_task *t);
int sched_slot_requeue(struct sched *s, struct sched_task *t, uint32_t idx, bool exclude);

/*
 * One scheduling pass at time NOW: take queued slots in priority order
 * (priority desc, deadline asc with none last, then FIFO), pick a node for each
 * by its policy, and call place() to persist it.  If place() returns < 0 the slot
 * stays queued.  Slots whose deadline passed are handed to expire() (if not NULL)
 * instead and dropped from the queue.  Stops after max placements, after
 * backfill_depth slots found no node, or when no online node has a free core.
 * Returns the number of placements.
 */
struct sched_ops {
	int (*place)(void *userdata, struct sched_task *t, uint32_t idx,
		     const struct sched_node *n);
	void (*expire)(void *userdata, struct sched_task *t);
};
int sched_run(struct sched *s, int64_t now, unsigned max, const struct sched_ops *ops,
	      void *userdata);

/*
 * The node the policy would choose for slot idx of t at NOW (no state change);
 * NULL when no node is eligible.  ret_why (optional) says why nothing fits.
 */
const struct sched_node *sched_pick(struct sched *s, const struct sched_task *t, uint32_t idx,
				    int64_t now, const char **ret_why);

/* Whether node n passes every filter for slot idx of t at NOW. */
bool sched_eligible(struct sched *s, struct sched_node *n, const struct sched_task *t, uint32_t idx,
		    int64_t now);

void sched_get_stats(const struct sched *s, struct sched_stats *ret);
/* Nodes by index 0..n-1 (entries with known = false are holes). */
unsigned sched_node_count(const struct sched *s);
struct sched_node *sched_node_at(struct sched *s, unsigned i);

const char *sched_policy_name(enum sched_policy p);
int sched_policy_parse(const char *name, enum sched_policy *ret);

#endif /* AICN_COORD_SCHED_H */
