/* store.h -- the coordinator's durable state in SQLite: schema, migrations, one batched writer path. */
#ifndef AICN_COORD_STORE_H
#define AICN_COORD_STORE_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

/*
 * One struct store per process, used from one thread (the coordinator's event
 * loop): SQLite in WAL mode with synchronous=FULL, so a commit is on disk when
 * store_flush() returns.
 *
 * Writes are batched: every store_* write joins the transaction that is open,
 * opening one if needed, and nothing is durable until store_flush() commits it.
 * The caller answers a renter or sends an offer to an agent only after the
 * flush that made its effect durable ("flush before you send"), so a crash —
 * kill -9 included — loses nothing that anyone was told about, and a batch is
 * all or nothing.  A batch that reaches `batch_max` writes is committed early.
 *
 * Each multi-statement operation runs inside a SAVEPOINT, so one failing
 * operation (e.g. a constraint) is undone alone and the rest of the batch stays.
 */

struct store;

/* Task states (tasks.state column); see task.h for the transitions. */
enum task_state {
	TASK_QUEUED = 0,    /* waiting for (some of) its replicas to be placed */
	TASK_RUNNING = 1,   /* every replica placed on a node (offered or running) */
	TASK_DONE = 2,	    /* every replica finished; results may be fetched */
	TASK_FAILED = 3,    /* gave up: retry cap reached or unrunnable */
	TASK_CANCELLED = 4, /* cancelled by the renter */
	TASK_EXPIRED = 5,   /* deadline passed before it could start */
	TASK_STATE_N,
};

/* Replica (placement) states (replicas.state column). */
enum replica_state {
	REPLICA_ASSIGNED = 0,  /* offered to the node, not yet confirmed started */
	REPLICA_RUNNING = 1,   /* the node reported it started */
	REPLICA_DONE = 2,      /* finished (any exit code); result_digest set */
	REPLICA_FAILED = 3,    /* sandbox or agent failure on that node */
	REPLICA_REJECTED = 4,  /* the node declined the offer */
	REPLICA_LOST = 5,      /* the node vanished (heartbeat timeout) */
	REPLICA_CANCELLED = 6, /* the task was cancelled */
	REPLICA_STATE_N,
};

/* A placement is live while ASSIGNED or RUNNING: at most one live row per (task, idx). */
#define REPLICA_LIVE(s) ((s) == REPLICA_ASSIGNED || (s) == REPLICA_RUNNING)

#define STORE_NODE_ID_LEN 64 /* hex SHA-256 of the node's public key */
#define STORE_LOCATION_MAX 32
#define STORE_WINDOW_MAX 512
#define STORE_REF_MAX 64
#define STORE_REASON_MAX 256

struct store_node {
	int64_t id;			     /* nodes.id, row id */
	char node_id[STORE_NODE_ID_LEN + 1]; /* nodes.node_id: hex SHA-256 of the node key */
	int64_t account_id;		     /* nodes.account_id: the operator's account */
	uint32_t cores;			     /* nodes.cores: cores offered (agent's cap) */
	uint64_t memory;		     /* nodes.memory: bytes offered */
	uint32_t max_tasks;		     /* nodes.max_tasks: concurrent tasks, 0 = no limit */
	int64_t price;			     /* nodes.price: ask, base units per CPU-hour */
	int64_t perf;			     /* nodes.perf: measured perf score (higher = faster) */
	char location[STORE_LOCATION_MAX + 1]; /* nodes.location: e.g. "eu-west" */
	uint32_t renewable_ppm;		       /* nodes.renewable_ppm: renewable share, 0..1e6 */
	char window[STORE_WINDOW_MAX + 1];     /* nodes.window: availability spec ("always") */
	int32_t utc_offset;		       /* nodes.utc_offset: node's local time - UTC, s */
	int64_t registered_at;		       /* nodes.registered_at: unix s */
	int64_t last_seen;		       /* nodes.last_seen: unix s of the last heartbeat */
};

struct store_task {
	int64_t id;			    /* tasks.id */
	int64_t account_id;		    /* tasks.account_id: renter */
	char client_ref[STORE_REF_MAX + 1]; /* tasks.client_ref: renter's idempotency key or "" */
	char image[80];			    /* tasks.image: "sha256:<hex>" */
	char *spec;			    /* tasks.spec: canonical JSON of the validated SUBMIT */
	uint32_t cores;			    /* tasks.cores */
	uint64_t memory;		    /* tasks.memory: bytes */
	int64_t max_price;		    /* tasks.max_price: base units per CPU-hour */
	uint32_t replicas;		    /* tasks.replicas: 1.. */
	int32_t priority;		    /* tasks.priority: higher first */
	int64_t deadline;		    /* tasks.deadline: latest start, unix s, 0 = none */
	int32_t state;			    /* tasks.state: enum task_state */
	uint32_t attempts;		    /* tasks.attempts: requeues so far */
	char reason[STORE_REASON_MAX + 1];  /* tasks.reason: why failed/cancelled/expired */
	int64_t submitted_at;		    /* tasks.submitted_at: unix s */
	int64_t finished_at;		    /* tasks.finished_at: unix s or 0 */
	char result_digest[80];		    /* tasks.result_digest: "sha256:<hex>" or "" */
	int32_t exit_code;		    /* tasks.exit_code */
};

struct store_replica {
	int64_t id;			   /* replicas.id */
	int64_t task_id;		   /* replicas.task_id */
	uint32_t idx;			   /* replicas.idx: 0..replicas-1 */
	int64_t node;			   /* replicas.node: nodes.id */
	uint32_t attempt;		   /* replicas.attempt: task attempts at assignment */
	int32_t state;			   /* replicas.state: enum replica_state */
	int64_t assigned_at;		   /* replicas.assigned_at: unix s */
	int64_t ended_at;		   /* replicas.ended_at: unix s or 0 */
	int32_t exit_code;		   /* replicas.exit_code */
	char result_digest[80];		   /* replicas.result_digest */
	char reason[STORE_REASON_MAX + 1]; /* replicas.reason */
};

/* Open (creating and migrating) the database at PATH.  batch_max 0 = default (4096). */
int store_open(const char *path, unsigned batch_max, struct store **ret);
/* Close; an uncommitted batch is rolled back (like a crash).  Accepts NULL, returns NULL. */
struct store *store_free(struct store *st);

/* The handle, for other coordinator parts (ledger) that keep tables in the same file. */
sqlite3 *store_db(struct store *st);
/* Commit the open batch (fsync).  0 if nothing was pending. */
int store_flush(struct store *st);
/* Make sure a batch is open (other parts call this before writing through store_db()). */
int store_write_begin(struct store *st);
/* Writes in the open batch. */
unsigned store_pending(const struct store *st);
/* Roll back the open batch (only for tests and fatal paths). */
int store_rollback(struct store *st);

/* Atomic multi-statement operation inside the batch. */
int store_op_begin(struct store *st);
int store_op_end(struct store *st,
		 int result); /* releases on result >= 0, else undoes; returns result */

/*
 * Versioned migrations.  Each component (the core is "core"; the ledger might be
 * "ledger") has steps 1..n applied in order, each in its own transaction,
 * recorded in schema_migrations(component, version).  Safe to call at every start.
 */
struct store_migration {
	unsigned version; /* 1, 2, 3 ... */
	const char *sql;  /* one or more statements */
};
int store_migrate(struct store *st, const char *component, const struct store_migration *steps,
		  size_t n);
/* Highest applied version of COMPONENT (0 if none). */
int store_schema_version(struct store *st, const char *component, unsigned *ret);

/* Accounts: find or create by name (certificate subject); role "renter", "agent", ... */
int store_account_ensure(struct store *st, const char *name, const char *role, int64_t *ret_id);

/* Nodes: insert or update by node_id; ret_id is the row id. */
int store_node_upsert(struct store *st, const struct store_node *n, int64_t *ret_id);
int store_node_seen(struct store *st, int64_t id, int64_t now);
int store_node_get(struct store *st, int64_t id, struct store_node *ret);
int store_node_find(struct store *st, const char *node_id, struct store_node *ret);
typedef int (*store_node_cb)(const struct store_node *n, void *userdata);
int store_node_foreach(struct store *st, store_node_cb cb, void *userdata);

/*
 * Tasks.  Insert fills t->id.  With a non-empty client_ref already used by the
 * same account, returns -EEXIST and the existing task's id in *ret_existing.
 */
int store_task_insert(struct store *st, struct store_task *t, int64_t *ret_existing);
int store_task_get(struct store *st, int64_t id, struct store_task *ret); /* ret->spec malloc'd */
int store_task_set_state(struct store *st, int64_t id, enum task_state state, uint32_t attempts,
			 const char *reason, int64_t finished_at);
int store_task_set_result(struct store *st, int64_t id, const char *digest, int32_t exit_code);
/* A validation replica was added: the task now has this many slots. */
int store_task_set_replicas(struct store *st, int64_t id, uint32_t replicas);
int store_task_count(struct store *st, int state, int64_t *ret); /* state < 0: all */
/* Tasks not yet finished (QUEUED or RUNNING), in id order (t->spec freed after cb). */
typedef int (*store_task_cb)(const struct store_task *t, void *userdata);
int store_task_foreach_active(struct store *st, store_task_cb cb, void *userdata);
void store_task_clear(struct store_task *t); /* frees t->spec */
/* Newest first, at most limit; account < 0 or state < 0: any. */
int store_task_list(struct store *st, int64_t account, int state, unsigned limit, store_task_cb cb,
		    void *userdata);
/* An input blob of a task (SUBMIT "inputs"): agents placed on it may fetch it, GC keeps it. */
int store_task_input_add(struct store *st, int64_t task_id, const char *digest);
/* Account name (certificate CN) of an account id; -ENOENT if none. */
int store_account_name(struct store *st, int64_t id, char *buf, size_t len);

/* Replicas.  Assign fails with -EEXIST if (task, idx) or (task, node) already has a live row. */
int store_replica_assign(struct store *st, int64_t task_id, uint32_t idx, int64_t node,
			 uint32_t attempt, int64_t now, int64_t *ret_id);
int store_replica_set_state(struct store *st, int64_t id, enum replica_state state,
			    int32_t exit_code, const char *digest, const char *reason, int64_t now);
int store_replica_get(struct store *st, int64_t id, struct store_replica *ret);
/* The live replica of (task, node), -ENOENT if none. */
int store_replica_find_live(struct store *st, int64_t task_id, int64_t node,
			    struct store_replica *ret);
/* The terms an offer was sent with (replicas.price, .pow_bits, .offered_ns realtime). */
int store_replica_set_terms(struct store *st, int64_t id, int64_t price, unsigned pow_bits,
			    int64_t offered_ns);
int store_replica_terms(struct store *st, int64_t id, int64_t *ret_price, unsigned *ret_pow_bits,
			int64_t *ret_offered_ns);
typedef int (*store_replica_cb)(const struct store_replica *r, void *userdata);
/* Live replicas (all when task_id < 0), or every replica of one task with all = 1. */
int store_replica_foreach(struct store *st, int64_t task_id, int all, store_replica_cb cb,
			  void *userdata);
/* Live replicas placed on one node. */
int store_replica_foreach_node(struct store *st, int64_t node, store_replica_cb cb, void *userdata);

/*
 * Usage records, deduplicated by (node, seq): returns 0 when stored, 1 when the
 * same record (same hash) was already stored, -EEXIST when a different record
 * already holds that sequence number.
 */
int store_usage_insert(struct store *st, int64_t node, uint64_t seq, int64_t task_id,
		       const char *record, const char *record_hash, uint64_t cpu_ns, int64_t now);
int store_usage_count(struct store *st, int64_t node, int64_t *ret);
/* The CPU time the usage records of a task report: per node its latest (highest), summed. */
int store_task_cpu_ns(struct store *st, int64_t task_id, int64_t *ret);

/* The usage record stored for (node, seq). */
struct store_usage {
	int64_t task_id;      /* usage_records.task_id: 0 for a heartbeat record */
	char *record;	      /* usage_records.record: the signed line as received (malloc'd) */
	char record_hash[65]; /* usage_records.record_hash: hex SHA-256 of the line */
	uint64_t cpu_ns;      /* usage_records.cpu_ns */
};
/* -ENOENT when the node has no record with that sequence. */
int store_usage_get(struct store *st, int64_t node, uint64_t seq, struct store_usage *ret);
void store_usage_clear(struct store_usage *u); /* frees u->record */

/* Blob metadata (the bytes live in blobs.c's directory). */
enum blob_kind {
	BLOB_INPUT = 0,	 /* uploaded by a renter: image layers, inputs */
	BLOB_RESULT = 1, /* produced by a task; deleted once the renter fetched it */
};
struct store_blob {
	char digest[80];    /* blobs.digest: "sha256:<hex>" */
	uint64_t size;	    /* blobs.size: bytes */
	int64_t owner;	    /* blobs.owner: account id */
	int32_t kind;	    /* blobs.kind: enum blob_kind */
	int64_t created_at; /* blobs.created_at */
	int64_t expires_at; /* blobs.expires_at: deleted after this (unix s) */
	int64_t fetched_at; /* blobs.fetched_at: 0 until downloaded */
};
int store_blob_put(struct store *st, const struct store_blob *b); /* upsert, extends expiry */
int store_blob_get(struct store *st, const char *digest, struct store_blob *ret);
int store_blob_fetched(struct store *st, const char *digest, int64_t now, int64_t expires_at);
int store_blob_delete(struct store *st, const char *digest);
/*
 * Whether a peer may download DIGEST (docs/protocol.md, "Blobs"): an agent
 * (is_agent, who = node row id) the image and inputs of tasks placed on it; a
 * renter (who = account id) what it uploaded and its own tasks' results.  1, 0 or <0.
 */
int store_blob_may_fetch(struct store *st, int is_agent, int64_t who, const char *digest);
/* Blobs expired at NOW that no unfinished task references as its image. */
typedef int (*store_blob_cb)(const struct store_blob *b, void *userdata);
int store_blob_foreach_expired(struct store *st, int64_t now, store_blob_cb cb, void *userdata);

/* Ratings: one per task (-EEXIST on a second); node's average in hundredths of a star. */
int store_rating_insert(struct store *st, int64_t task_id, int64_t account_id, int64_t node,
			int stars, const char *text, int64_t now);
int store_node_rating(struct store *st, int64_t node, int32_t *ret_centi, uint32_t *ret_count);

#endif /* AICN_COORD_STORE_H */
