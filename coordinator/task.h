/* task.h -- the coordinator core: task lifecycle, submission validation, node events, recovery. */
#ifndef AICN_COORD_TASK_H
#define AICN_COORD_TASK_H

#include "sched.h"
#include "store.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * struct coord ties the store (truth), the scheduler (in-memory index) and the
 * blob store together.  It does no I/O on sockets: the network front calls a
 * coord_* function per parsed message, gets a reply body (cJSON) or an error
 * text, and collects "actions" (offers and cancels to send to agents).
 *
 * The rule that makes restarts safe: call coord_flush() after handling a round
 * of messages and BEFORE sending any reply or action of that round.  A renter
 * then never hears of a task that a crash could lose, and an agent never gets an
 * offer the coordinator could forget (which would make it place the task twice).
 *
 * Task states: QUEUED -> RUNNING -> DONE, with RUNNING -> QUEUED on requeue
 * (node lost, rejected, sandbox failure; at most retry_cap times, then FAILED),
 * QUEUED|RUNNING -> CANCELLED by the renter, QUEUED -> EXPIRED when the deadline
 * passes before it starts.  DONE, FAILED, CANCELLED and EXPIRED are final.
 */

struct blobs;

struct coord_params {
	int64_t heartbeat_timeout; /* s without a heartbeat before a node is lost (30) */
	uint32_t retry_cap;	   /* requeues of a task before it fails (3) */
	int64_t blob_retention;	   /* s a blob is kept after upload (7 days) */
	int64_t result_grace;	   /* s a result blob is kept after its first fetch (0) */
	uint64_t max_active;	   /* most unfinished tasks; SUBMIT beyond is refused (1000000) */
	unsigned batch_max;	   /* store writes per batch before an early commit (4096) */
	unsigned sched_max;	   /* placements per scheduling pass (100000) */
};

/* What the network front must send once the batch is flushed. */
enum coord_action_kind {
	COORD_OFFER = 0,  /* send TASK_OFFER for (task, idx) to node; body: coord_offer_body() */
	COORD_CANCEL = 1, /* tell node to stop and discard task */
};

struct coord_action {
	enum coord_action_kind kind;
	int64_t node;	    /* nodes.id */
	int64_t task_id;    /* tasks.id */
	uint32_t idx;	    /* replica slot */
	int64_t replica_id; /* replicas.id (offers) */
};

struct coord_actions {
	struct coord_action *v;
	size_t n, cap;
};

struct coord;

void coord_params_default(struct coord_params *ret);

/*
 * Told of every task state change as it is written into the open batch (the
 * batch may still be undone): the front uses it to wake watchers and to close
 * settlement of final tasks before the flush.
 */
typedef void (*coord_task_hook_fn)(void *ud, int64_t task_id, int state);
void coord_set_task_hook(struct coord *c, coord_task_hook_fn fn, void *ud);
/*
 * Open the store (migrating it) and the blob directory, and rebuild the
 * scheduler: nodes start offline with a grace of heartbeat_timeout from NOW to
 * reconnect; slots placed before the restart stay placed (never placed twice).
 */
int coord_open(const char *db_path, const char *blob_dir, const struct coord_params *p, int64_t now,
	       struct coord **ret);
struct coord *coord_free(struct coord *c);

struct store *coord_store(struct coord *c);
struct sched *coord_sched(struct coord *c);
struct blobs *coord_blobs(struct coord *c);
/* Commit the batch (fsync).  On error the process must exit: restart recovers. */
int coord_flush(struct coord *c);

void coord_actions_clear(struct coord_actions *a);

/*
 * Renter: SUBMIT.  Validates REQ completely before storing anything; on error
 * returns -EINVAL (or -ENOSPC when the queue is full, -EEXIST when client_ref was
 * used for a different task) with a one-line reason naming the field in err.
 * The reply is {"task_id", "state", "max_cost", "duplicate"}.  A SUBMIT whose
 * client_ref repeats an earlier identical one returns the earlier task.
 */
int coord_submit(struct coord *c, int64_t account, const cJSON *req, int64_t now, cJSON **ret_reply,
		 char *err, size_t errlen);
/* STATUS: the task and its replicas.  account < 0: operator (any task). */
int coord_status(struct coord *c, int64_t account, int64_t task_id, cJSON **ret_reply, char *err,
		 size_t errlen);
/* CANCEL: final state CANCELLED; running replicas get COORD_CANCEL actions. */
int coord_cancel(struct coord *c, int64_t account, int64_t task_id, int64_t now,
		 struct coord_actions *actions, char *err, size_t errlen);
/* RATE: 1..5 stars and text (<= 1024 bytes), once per DONE task. */
int coord_rate(struct coord *c, int64_t account, int64_t task_id, int stars, const char *text,
	       int64_t now, char *err, size_t errlen);

/*
 * Agent: REGISTER (and re-register after a reconnect).  REQ holds cores,
 * memory, price, perf, location, renewable_ppm, window, utc_offset, max_tasks and
 * "running": the task ids it still runs.  Those it runs but no longer holds get
 * COORD_CANCEL; those it holds but does not run are requeued.  ret_node is the
 * node's row id.
 */
int coord_node_register(struct coord *c, int64_t account, const char *node_id, const cJSON *req,
			int64_t now, int64_t *ret_node, struct coord_actions *actions, char *err,
			size_t errlen);
int coord_node_heartbeat(struct coord *c, int64_t node, int64_t now);
/* Connection closed: no new offers; its tasks wait heartbeat_timeout for a reconnect. */
int coord_node_disconnected(struct coord *c, int64_t node, int64_t now);

enum coord_task_event {
	COORD_EV_STARTED = 0,  /* the sandbox started */
	COORD_EV_REJECTED = 1, /* the agent declined the offer (reason) */
	COORD_EV_FAILED = 2,   /* sandbox/agent failure, not the task's own exit (reason) */
	COORD_EV_FINISHED = 3, /* the task exited (exit_code, result digest) */
};
/*
 * Agent: an event about task_id on node.  An event for a task the node does not
 * hold (requeued elsewhere meanwhile) is answered with COORD_CANCEL and returns -ESTALE.
 */
int coord_task_event(struct coord *c, int64_t node, int64_t task_id, enum coord_task_event ev,
		     int32_t exit_code, const char *result_digest, const char *reason, int64_t now,
		     struct coord_actions *actions);

/*
 * Settlement asked for one more replica (validation, tie-break): the task gets
 * another slot, queued at once, never on a node that ran one of its slots.
 */
int coord_add_replica(struct coord *c, int64_t task_id, int64_t now);
/* End an unfinished task as FAILED with reason (live replicas get COORD_CANCEL). */
int coord_task_fail(struct coord *c, int64_t task_id, const char *reason, int64_t now,
		    struct coord_actions *actions);
/*
 * Forget a task coord_submit() just added, when the caller rolls back the store
 * operation that surrounded it (settlement refused the escrow).
 */
int coord_submit_undo(struct coord *c, int64_t task_id);

/* Agent: a usage record (already verified by the records layer); see store_usage_insert. */
int coord_usage(struct coord *c, int64_t node, uint64_t seq, int64_t task_id, const char *record,
		const char *record_hash, uint64_t cpu_ns, int64_t now);

/*
 * Periodic work at NOW: nodes past heartbeat_timeout are lost (their slots
 * requeued), expired blobs deleted, then one scheduling pass; offers are added
 * to actions.  Returns placements made.
 */
int coord_tick(struct coord *c, int64_t now, struct coord_actions *actions);
/* Only the scheduling pass (at most max placements). */
int coord_schedule(struct coord *c, int64_t now, unsigned max, struct coord_actions *actions);

/* The TASK_OFFER body for an offer action: the stored spec plus task_id and replica. */
int coord_offer_body(struct coord *c, const struct coord_action *a, cJSON **ret);

/* Operator and market views. */
int coord_nodes_json(struct coord *c, int64_t now, cJSON **ret);
int coord_queue_json(struct coord *c, cJSON **ret);

const char *task_state_name(int state);
const char *replica_state_name(int state);
/* Whether the lifecycle allows FROM -> TO. */
bool task_transition_valid(int from, int to);

#endif /* AICN_COORD_TASK_H */
