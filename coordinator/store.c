/* store.c -- SQLite state of the coordinator: WAL + synchronous=FULL, migrations, batched writes. */
#include "store.h"

#include <aicn/compiler.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>

#define STORE_BATCH_DEFAULT 4096

enum stmt_id {
	S_ACCOUNT_FIND,
	S_ACCOUNT_INSERT,
	S_NODE_UPSERT,
	S_NODE_SEEN,
	S_NODE_GET,
	S_NODE_FIND,
	S_NODE_ALL,
	S_TASK_INSERT,
	S_TASK_BY_REF,
	S_TASK_GET,
	S_TASK_STATE,
	S_TASK_RESULT,
	S_TASK_ACTIVE,
	S_TASK_COUNT,
	S_TASK_COUNT_ALL,
	S_REPLICA_INSERT,
	S_REPLICA_STATE,
	S_REPLICA_GET,
	S_REPLICA_FIND_LIVE,
	S_REPLICA_LIVE_ALL,
	S_REPLICA_LIVE_TASK,
	S_REPLICA_ALL_TASK,
	S_REPLICA_LIVE_NODE,
	S_USAGE_INSERT,
	S_USAGE_HASH,
	S_USAGE_COUNT,
	S_USAGE_TASK_CPU,
	S_BLOB_PUT,
	S_BLOB_GET,
	S_BLOB_FETCHED,
	S_BLOB_DELETE,
	S_BLOB_EXPIRED,
	S_RATING_INSERT,
	S_RATING_NODE,
	S_ACCOUNT_NAME,
	S_USAGE_GET,
	S_TASK_LIST,
	S_TASK_INPUT_ADD,
	S_BLOB_AGENT_MAY,
	S_BLOB_RENTER_MAY,
	S_REPLICA_SET_TERMS,
	S_REPLICA_TERMS,
	S_TASK_REPLICAS,
	S_SAVEPOINT,
	S_RELEASE,
	S_ROLLBACK_TO,
	S_N,
};

/* The columns, in order, that node_from_row(), task_from_row(), replica_from_row() and
 * blob_from_row() read. */
#define NODE_COLS                                                                                   \
	"id, node_id, account_id, cores, memory, max_tasks, price, perf, location, renewable_ppm, " \
	"window, utc_offset, registered_at, last_seen"
#define TASK_COLS                                                                                  \
	"id, account_id, IFNULL(client_ref,''), image, spec, cores, memory, max_price, replicas, " \
	"priority, deadline, state, attempts, reason, submitted_at, finished_at, result_digest, "  \
	"exit_code"
#define REPLICA_COLS                                                                                \
	"id, task_id, idx, node, attempt, state, assigned_at, ended_at, exit_code, result_digest, " \
	"reason"
#define BLOB_COLS "digest, size, owner, kind, created_at, expires_at, fetched_at"

static const char *const stmt_sql[S_N] = {
	[S_ACCOUNT_FIND] = "SELECT id FROM accounts WHERE name = ?1",
	[S_ACCOUNT_INSERT] = "INSERT INTO accounts(name, role, created_at) VALUES(?1, ?2, "
			     "CAST(strftime('%s','now') AS INTEGER))",
	[S_NODE_UPSERT] =
		"INSERT INTO nodes(node_id, account_id, cores, memory, max_tasks, price, perf, "
		"location, renewable_ppm, window, utc_offset, registered_at, last_seen) "
		"VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13) "
		"ON CONFLICT(node_id) DO UPDATE SET account_id=?2, cores=?3, memory=?4, "
		"max_tasks=?5, price=?6, perf=?7, location=?8, renewable_ppm=?9, window=?10, "
		"utc_offset=?11, last_seen=?13 RETURNING id",
	[S_NODE_SEEN] = "UPDATE nodes SET last_seen = ?2 WHERE id = ?1",
	[S_NODE_GET] = "SELECT " NODE_COLS " FROM nodes WHERE id = ?1",
	[S_NODE_FIND] = "SELECT " NODE_COLS " FROM nodes WHERE node_id = ?1",
	[S_NODE_ALL] = "SELECT " NODE_COLS " FROM nodes ORDER BY id",
	[S_TASK_INSERT] = "INSERT INTO tasks(account_id, client_ref, image, spec, cores, memory, "
			  "max_price, replicas, priority, deadline, state, attempts, reason, "
			  "submitted_at, finished_at, result_digest, exit_code) "
			  "VALUES(?1,NULLIF(?2,''),?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,"
			  "?16,?17)",
	[S_TASK_BY_REF] = "SELECT id FROM tasks WHERE account_id = ?1 AND client_ref = ?2",
	[S_TASK_GET] = "SELECT " TASK_COLS " FROM tasks WHERE id = ?1",
	[S_TASK_STATE] = "UPDATE tasks SET state = ?2, attempts = ?3, reason = ?4, "
			 "finished_at = ?5 WHERE id = ?1",
	[S_TASK_RESULT] = "UPDATE tasks SET result_digest = ?2, exit_code = ?3 WHERE id = ?1",
	[S_TASK_ACTIVE] = "SELECT " TASK_COLS " FROM tasks WHERE state IN (0, 1) ORDER BY id",
	[S_TASK_COUNT] = "SELECT count(*) FROM tasks WHERE state = ?1",
	[S_TASK_COUNT_ALL] = "SELECT count(*) FROM tasks",
	[S_REPLICA_INSERT] = "INSERT INTO replicas(task_id, idx, node, attempt, state, "
			     "assigned_at, ended_at, exit_code, result_digest, reason) "
			     "VALUES(?1,?2,?3,?4,0,?5,0,0,'','')",
	[S_REPLICA_STATE] = "UPDATE replicas SET state = ?2, exit_code = ?3, "
			    "result_digest = ?4, reason = ?5, ended_at = ?6 WHERE id = ?1",
	[S_REPLICA_GET] = "SELECT " REPLICA_COLS " FROM replicas WHERE id = ?1",
	[S_REPLICA_FIND_LIVE] =
		"SELECT " REPLICA_COLS
		" FROM replicas WHERE task_id = ?1 AND node = ?2 AND state IN (0, 1)",
	[S_REPLICA_LIVE_ALL] =
		"SELECT " REPLICA_COLS " FROM replicas WHERE state IN (0, 1) ORDER BY id",
	[S_REPLICA_LIVE_TASK] = "SELECT " REPLICA_COLS
				" FROM replicas WHERE task_id = ?1 AND state IN (0, 1) ORDER BY id",
	[S_REPLICA_ALL_TASK] =
		"SELECT " REPLICA_COLS " FROM replicas WHERE task_id = ?1 ORDER BY id",
	[S_REPLICA_LIVE_NODE] = "SELECT " REPLICA_COLS
				" FROM replicas WHERE node = ?1 AND state IN (0, 1) ORDER BY id",
	[S_USAGE_INSERT] = "INSERT INTO usage_records(node, seq, task_id, record, record_hash, "
			   "cpu_ns, received_at) VALUES(?1,?2,?3,?4,?5,?6,?7)",
	[S_USAGE_HASH] = "SELECT record_hash FROM usage_records WHERE node = ?1 AND seq = ?2",
	[S_USAGE_COUNT] = "SELECT count(*) FROM usage_records WHERE node = ?1",
	/* a node's records of a task are cumulative (interval, then final): its last is its most */
	[S_USAGE_TASK_CPU] = "SELECT IFNULL(sum(m), 0) FROM (SELECT max(cpu_ns) AS m FROM "
			     "usage_records WHERE task_id = ?1 GROUP BY node)",
	[S_BLOB_PUT] = "INSERT INTO blobs(digest, size, owner, kind, created_at, expires_at, "
		       "fetched_at) VALUES(?1,?2,?3,?4,?5,?6,0) ON CONFLICT(digest) DO UPDATE "
		       "SET expires_at = max(expires_at, ?6), kind = min(kind, ?4)",
	[S_BLOB_GET] = "SELECT " BLOB_COLS " FROM blobs WHERE digest = ?1",
	[S_BLOB_FETCHED] = "UPDATE blobs SET fetched_at = ?2, expires_at = min(expires_at, ?3) "
			   "WHERE digest = ?1",
	[S_BLOB_DELETE] = "DELETE FROM blobs WHERE digest = ?1",
	[S_BLOB_EXPIRED] = "SELECT " BLOB_COLS " FROM blobs b "
			   "WHERE expires_at <= ?1 AND NOT EXISTS (SELECT 1 FROM "
			   "tasks t WHERE t.image = b.digest AND t.state IN (0, 1)) "
			   "AND NOT EXISTS (SELECT 1 FROM task_inputs i JOIN tasks t ON "
			   "t.id = i.task_id WHERE i.digest = b.digest AND t.state IN (0, 1)) "
			   "ORDER BY expires_at LIMIT 1024",
	[S_RATING_INSERT] = "INSERT INTO ratings(task_id, account_id, node, stars, text, "
			    "created_at) VALUES(?1,?2,?3,?4,?5,?6)",
	[S_RATING_NODE] = "SELECT count(*), IFNULL(sum(stars), 0) FROM ratings WHERE node = ?1",
	[S_ACCOUNT_NAME] = "SELECT name FROM accounts WHERE id = ?1",
	[S_USAGE_GET] = "SELECT IFNULL(task_id, 0), record, record_hash, cpu_ns FROM "
			"usage_records WHERE node = ?1 AND seq = ?2",
	[S_TASK_LIST] = "SELECT " TASK_COLS " FROM tasks "
			"WHERE (?1 < 0 OR account_id = ?1) AND (?2 < 0 OR state = ?2) "
			"ORDER BY id DESC LIMIT ?3",
	[S_TASK_INPUT_ADD] = "INSERT OR IGNORE INTO task_inputs(task_id, digest) VALUES(?1, ?2)",
	[S_BLOB_AGENT_MAY] = "SELECT 1 FROM replicas r JOIN tasks t ON t.id = r.task_id "
			     "WHERE r.node = ?1 AND (t.image = ?2 OR EXISTS (SELECT 1 FROM "
			     "task_inputs i WHERE i.task_id = t.id AND i.digest = ?2)) LIMIT 1",
	[S_BLOB_RENTER_MAY] = "SELECT 1 WHERE EXISTS (SELECT 1 FROM blobs WHERE digest = ?2 "
			      "AND owner = ?1) OR EXISTS (SELECT 1 FROM tasks WHERE "
			      "account_id = ?1 AND result_digest = ?2) OR EXISTS (SELECT 1 FROM "
			      "replicas r JOIN tasks t ON t.id = r.task_id WHERE t.account_id = ?1 "
			      "AND r.result_digest = ?2)",
	[S_REPLICA_SET_TERMS] = "UPDATE replicas SET price = ?2, pow_bits = ?3, offered_ns = ?4 "
				"WHERE id = ?1",
	[S_REPLICA_TERMS] = "SELECT price, pow_bits, offered_ns FROM replicas WHERE id = ?1",
	[S_TASK_REPLICAS] = "UPDATE tasks SET replicas = ?2 WHERE id = ?1",
	[S_SAVEPOINT] = "SAVEPOINT op",
	[S_RELEASE] = "RELEASE op",
	[S_ROLLBACK_TO] = "ROLLBACK TO op",
};

/* Core schema, one step per version; later steps only ever add. */
static const struct store_migration core_migrations[] = {
	{1,
	 "CREATE TABLE accounts(\n"
	 "  id INTEGER PRIMARY KEY,\n"
	 "  name TEXT NOT NULL UNIQUE,          -- certificate subject or key id\n"
	 "  role TEXT NOT NULL,                 -- renter | agent | auditor | operator\n"
	 "  created_at INTEGER NOT NULL);\n"
	 "CREATE TABLE nodes(\n"
	 "  id INTEGER PRIMARY KEY,\n"
	 "  node_id TEXT NOT NULL UNIQUE,       -- hex SHA-256 of the node public key\n"
	 "  account_id INTEGER NOT NULL REFERENCES accounts(id),\n"
	 "  cores INTEGER NOT NULL CHECK(cores >= 0),\n"
	 "  memory INTEGER NOT NULL CHECK(memory >= 0),\n"
	 "  max_tasks INTEGER NOT NULL DEFAULT 0,\n"
	 "  price INTEGER NOT NULL CHECK(price >= 0),  -- base units per CPU-hour\n"
	 "  perf INTEGER NOT NULL DEFAULT 0,\n"
	 "  location TEXT NOT NULL DEFAULT '',\n"
	 "  renewable_ppm INTEGER NOT NULL DEFAULT 0 CHECK(renewable_ppm BETWEEN 0 AND 1000000),\n"
	 "  window TEXT NOT NULL DEFAULT 'always',\n"
	 "  utc_offset INTEGER NOT NULL DEFAULT 0,\n"
	 "  registered_at INTEGER NOT NULL,\n"
	 "  last_seen INTEGER NOT NULL);\n"
	 "CREATE TABLE tasks(\n"
	 "  id INTEGER PRIMARY KEY,\n"
	 "  account_id INTEGER NOT NULL REFERENCES accounts(id),\n"
	 "  client_ref TEXT,                    -- renter's idempotency key\n"
	 "  image TEXT NOT NULL,                -- sha256:<hex>\n"
	 "  spec TEXT NOT NULL,                 -- canonical JSON of the validated SUBMIT\n"
	 "  cores INTEGER NOT NULL CHECK(cores > 0),\n"
	 "  memory INTEGER NOT NULL CHECK(memory > 0),\n"
	 "  max_price INTEGER NOT NULL CHECK(max_price >= 0),\n"
	 "  replicas INTEGER NOT NULL CHECK(replicas > 0),\n"
	 "  priority INTEGER NOT NULL DEFAULT 0,\n"
	 "  deadline INTEGER NOT NULL DEFAULT 0,\n"
	 "  state INTEGER NOT NULL,             -- enum task_state\n"
	 "  attempts INTEGER NOT NULL DEFAULT 0,\n"
	 "  reason TEXT NOT NULL DEFAULT '',\n"
	 "  submitted_at INTEGER NOT NULL,\n"
	 "  finished_at INTEGER NOT NULL DEFAULT 0,\n"
	 "  result_digest TEXT NOT NULL DEFAULT '',\n"
	 "  exit_code INTEGER NOT NULL DEFAULT 0,\n"
	 "  UNIQUE(account_id, client_ref));\n"
	 "CREATE INDEX tasks_active ON tasks(state) WHERE state IN (0, 1);\n"
	 "CREATE TABLE replicas(\n"
	 "  id INTEGER PRIMARY KEY,\n"
	 "  task_id INTEGER NOT NULL REFERENCES tasks(id),\n"
	 "  idx INTEGER NOT NULL,               -- replica slot 0..replicas-1\n"
	 "  node INTEGER NOT NULL REFERENCES nodes(id),\n"
	 "  attempt INTEGER NOT NULL,\n"
	 "  state INTEGER NOT NULL,             -- enum replica_state\n"
	 "  assigned_at INTEGER NOT NULL,\n"
	 "  ended_at INTEGER NOT NULL,\n"
	 "  exit_code INTEGER NOT NULL,\n"
	 "  result_digest TEXT NOT NULL,\n"
	 "  reason TEXT NOT NULL);\n"
	 "CREATE INDEX replicas_task ON replicas(task_id);\n"
	 "CREATE INDEX replicas_node_live ON replicas(node) WHERE state IN (0, 1);\n"
	 "-- no slot runs twice at once, and no node holds two replicas of one task\n"
	 "CREATE UNIQUE INDEX replicas_live_slot ON replicas(task_id, idx) WHERE state IN (0, 1);\n"
	 "CREATE UNIQUE INDEX replicas_live_node ON replicas(task_id, node) WHERE state IN (0, 1);\n"
	 "CREATE TABLE usage_records(\n"
	 "  id INTEGER PRIMARY KEY,\n"
	 "  node INTEGER NOT NULL REFERENCES nodes(id),\n"
	 "  seq INTEGER NOT NULL,               -- the node's record sequence number\n"
	 "  task_id INTEGER,\n"
	 "  record TEXT NOT NULL,               -- signed canonical JSON as received\n"
	 "  record_hash TEXT NOT NULL,\n"
	 "  cpu_ns INTEGER NOT NULL,\n"
	 "  received_at INTEGER NOT NULL,\n"
	 "  UNIQUE(node, seq));\n"
	 "CREATE INDEX usage_task ON usage_records(task_id);\n"
	 "CREATE TABLE blobs(\n"
	 "  digest TEXT PRIMARY KEY,            -- sha256:<hex>\n"
	 "  size INTEGER NOT NULL,\n"
	 "  owner INTEGER NOT NULL,\n"
	 "  kind INTEGER NOT NULL,              -- 0 input, 1 result\n"
	 "  created_at INTEGER NOT NULL,\n"
	 "  expires_at INTEGER NOT NULL,\n"
	 "  fetched_at INTEGER NOT NULL) WITHOUT ROWID;\n"
	 "CREATE INDEX blobs_expiry ON blobs(expires_at);\n"
	 "CREATE TABLE ratings(\n"
	 "  task_id INTEGER PRIMARY KEY REFERENCES tasks(id),  -- once per task\n"
	 "  account_id INTEGER NOT NULL,\n"
	 "  node INTEGER NOT NULL REFERENCES nodes(id),\n"
	 "  stars INTEGER NOT NULL CHECK(stars BETWEEN 1 AND 5),\n"
	 "  text TEXT NOT NULL,\n"
	 "  created_at INTEGER NOT NULL);\n"
	 "CREATE INDEX ratings_node ON ratings(node);\n"},
	{2, "CREATE TABLE task_inputs(\n"
	    "  task_id INTEGER NOT NULL REFERENCES tasks(id),\n"
	    "  digest TEXT NOT NULL,               -- sha256:<hex> of an input blob\n"
	    "  PRIMARY KEY(task_id, digest)) WITHOUT ROWID;\n"
	    "CREATE INDEX task_inputs_digest ON task_inputs(digest);\n"
	    "CREATE INDEX tasks_result ON tasks(result_digest);\n"
	    "CREATE INDEX replicas_result ON replicas(result_digest);\n"
	    "ALTER TABLE replicas ADD COLUMN price INTEGER NOT NULL DEFAULT 0;\n"
	    "ALTER TABLE replicas ADD COLUMN pow_bits INTEGER NOT NULL DEFAULT 0;\n"
	    "ALTER TABLE replicas ADD COLUMN offered_ns INTEGER NOT NULL DEFAULT 0;\n"},
};

struct store {
	sqlite3 *db;
	sqlite3_stmt *stmt[S_N];
	int lock_fd;	    /* flock'd "<path>-lock": one coordinator per store */
	int in_tx;	    /* a batch (BEGIN IMMEDIATE) is open */
	unsigned op_depth;  /* nested store_op_begin() */
	unsigned pending;   /* writes in the open batch */
	unsigned batch_max; /* commit early past this many writes */
};

static int sqlite_errno(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW:
		return 0;
	case SQLITE_CONSTRAINT:
		return -EEXIST;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return -EBADMSG;
	case SQLITE_READONLY:
		return -EROFS;
	case SQLITE_CANTOPEN:
		return -ENOENT;
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return -EACCES;
	case SQLITE_TOOBIG:
		return -E2BIG;
	default:
		return -EIO;
	}
}

static int exec_sql(sqlite3 *db, const char *sql)
{
	return sqlite_errno(sqlite3_exec(db, sql, NULL, NULL, NULL));
}

static sqlite3_stmt *stmt_get(struct store *st, enum stmt_id id)
{
	sqlite3_stmt *s = st->stmt[id];

	if (!s) {
		if (sqlite3_prepare_v3(st->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &s,
				       NULL) != SQLITE_OK)
			return NULL;
		st->stmt[id] = s;
	}
	return s;
}

static void stmt_done(sqlite3_stmt *s)
{
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
}

/* Step a statement that returns no rows; always resets it. */
static int step_done(sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);

	stmt_done(s);
	return rc == SQLITE_DONE ? 0 : sqlite_errno(rc ? rc : SQLITE_ERROR);
}

static void text_copy(char *dst, size_t size, sqlite3_stmt *s, int col)
{
	const unsigned char *t = sqlite3_column_text(s, col);

	snprintf(dst, size, "%s", t ? (const char *)t : "");
}

static int bind_text(sqlite3_stmt *s, int i, const char *t)
{
	return sqlite3_bind_text(s, i, t ? t : "", -1, SQLITE_STATIC);
}

/* A prepared write statement that joins the open batch; NULL and *ret < 0 on failure. */
static sqlite3_stmt *write_stmt(struct store *st, enum stmt_id id, int *ret)
{
	sqlite3_stmt *s;
	int r = store_write_begin(st);

	if (r < 0) {
		*ret = r;
		return NULL;
	}
	s = stmt_get(st, id);
	*ret = s ? 0 : -EIO;
	return s;
}

/* Bind n int64 values to parameters first..first+n-1 of s. */
static void bind_int64s(sqlite3_stmt *s, int first, size_t n, const int64_t *v)
{
	for (size_t i = 0; i < n; i++)
		sqlite3_bind_int64(s, first + (int)i, v[i]);
}

#define BIND_INTS(s, first, ...)                                                                   \
	bind_int64s(s, first, ARRAY_SIZE(((const int64_t[]){__VA_ARGS__})),                        \
		    (const int64_t[]){__VA_ARGS__})

/* A write whose parameters are all integers, in order: prepare, bind, step, reset. */
static int write_int64s(struct store *st, enum stmt_id id, size_t n, const int64_t *v)
{
	int r;
	sqlite3_stmt *s = write_stmt(st, id, &r);

	if (!s)
		return r;
	bind_int64s(s, 1, n, v);
	return step_done(s);
}

#define WRITE_INTS(st, id, ...)                                                                    \
	write_int64s(st, id, ARRAY_SIZE(((const int64_t[]){__VA_ARGS__})),                         \
		     (const int64_t[]){__VA_ARGS__})

/* Step an UPDATE of one row by key: -ENOENT when no row had that key. */
static int step_one_row(struct store *st, sqlite3_stmt *s)
{
	int r = step_done(s);

	if (r < 0)
		return r;
	return sqlite3_changes(st->db) == 1 ? 0 : -ENOENT;
}

/* What a single-row lookup's last step means: found, not found, or an error. */
static int row_result(int rc)
{
	return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : sqlite_errno(rc);
}

/* Step a lookup of at most one row: from_row fills ret when there is one. */
static int one_row(sqlite3_stmt *s, void (*from_row)(sqlite3_stmt *, void *), void *ret)
{
	int rc = sqlite3_step(s);

	if (rc == SQLITE_ROW)
		from_row(s, ret);
	stmt_done(s);
	return row_result(rc);
}

/* A SELECT of one integer (a count, a sum) with one integer parameter (none when key < 0). */
static int count_rows(struct store *st, enum stmt_id id, int64_t key, int64_t *ret)
{
	sqlite3_stmt *s = stmt_get(st, id);
	int rc;

	if (!s)
		return -EIO;
	if (key >= 0)
		sqlite3_bind_int64(s, 1, key);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*ret = sqlite3_column_int64(s, 0);
	stmt_done(s);
	return rc == SQLITE_ROW ? 0 : sqlite_errno(rc);
}

/*
 * Read every row of s into a malloc'd array (from_row fills one element of
 * size bytes) and reset s; callers then visit the rows, which may write to the
 * table being read.
 */
static int rows_collect(sqlite3_stmt *s, size_t size, void (*from_row)(sqlite3_stmt *, void *),
			void **ret_list, size_t *ret_n)
{
	char *list = NULL;
	size_t n = 0, cap = 0;
	int rc, r = 0;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			char *nl = realloc(list, ncap * size);

			if (!nl) {
				r = -ENOMEM;
				break;
			}
			list = nl;
			cap = ncap;
		}
		from_row(s, list + n++ * size);
	}
	stmt_done(s);
	if (r >= 0 && rc != SQLITE_DONE)
		r = sqlite_errno(rc);
	if (r < 0) {
		free(list);
		return r;
	}
	*ret_list = list;
	*ret_n = n;
	return 0;
}

sqlite3 *store_db(struct store *st)
{
	return st->db;
}

unsigned store_pending(const struct store *st)
{
	return st->pending;
}

int store_flush(struct store *st)
{
	int r;

	if (!st->in_tx)
		return 0;
	if (st->op_depth)
		return -EBUSY;
	if (sqlite3_get_autocommit(st->db)) {
		st->in_tx = 0;
		st->pending = 0;
		return -EIO; /* rolled back by SQLite after an error: nothing was committed */
	}
	r = exec_sql(st->db, "COMMIT");
	if (r < 0)
		return r;
	st->in_tx = 0;
	st->pending = 0;
	return 0;
}

int store_rollback(struct store *st)
{
	if (!st->in_tx)
		return 0;
	st->in_tx = 0;
	st->pending = 0;
	st->op_depth = 0;
	return exec_sql(st->db, "ROLLBACK");
}

int store_write_begin(struct store *st)
{
	int r;

	if (st->in_tx && sqlite3_get_autocommit(st->db)) {
		/* SQLite rolled the batch back by itself (I/O error, disk full): it is lost. */
		st->in_tx = 0;
		st->pending = 0;
		st->op_depth = 0;
		return -EIO;
	}
	if (st->in_tx && st->op_depth == 0 && st->pending >= st->batch_max) {
		r = store_flush(st);
		if (r < 0)
			return r;
	}
	if (!st->in_tx) {
		r = exec_sql(st->db, "BEGIN IMMEDIATE");
		if (r < 0)
			return r;
		st->in_tx = 1;
	}
	st->pending++;
	return 0;
}

int store_op_begin(struct store *st)
{
	sqlite3_stmt *s;
	int r;

	s = write_stmt(st, S_SAVEPOINT, &r);
	if (!s)
		return r;
	r = step_done(s);
	if (r < 0)
		return r;
	st->op_depth++;
	return 0;
}

int store_op_end(struct store *st, int result)
{
	sqlite3_stmt *s;

	if (!st->op_depth)
		return result < 0 ? result : -EINVAL;
	if (result < 0) {
		s = stmt_get(st, S_ROLLBACK_TO);
		if (s)
			step_done(s);
	}
	s = stmt_get(st, S_RELEASE);
	if (s)
		step_done(s);
	st->op_depth--;
	return result;
}

int store_schema_version(struct store *st, const char *component, unsigned *ret)
{
	sqlite3_stmt *s = NULL;
	int rc, r = 0;

	rc = sqlite3_prepare_v2(st->db,
				"SELECT IFNULL(max(version), 0) FROM schema_migrations "
				"WHERE component = ?1",
				-1, &s, NULL);
	if (rc != SQLITE_OK)
		return sqlite_errno(rc);
	bind_text(s, 1, component);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*ret = (unsigned)sqlite3_column_int64(s, 0);
	else
		r = sqlite_errno(rc);
	sqlite3_finalize(s);
	return r;
}

int store_migrate(struct store *st, const char *component, const struct store_migration *steps,
		  size_t n)
{
	unsigned have = 0;
	sqlite3_stmt *s = NULL;
	int r;

	r = store_flush(st);
	if (r < 0)
		return r;
	r = store_schema_version(st, component, &have);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		if (steps[i].version <= have)
			continue;
		if (steps[i].version != have + 1)
			return -EINVAL; /* steps must be numbered 1, 2, 3 ... in order */
		r = exec_sql(st->db, "BEGIN IMMEDIATE");
		if (r < 0)
			return r;
		r = exec_sql(st->db, steps[i].sql);
		if (r >= 0) {
			r = sqlite_errno(sqlite3_prepare_v2(
				st->db,
				"INSERT INTO schema_migrations(component, version, applied_at) "
				"VALUES(?1, ?2, CAST(strftime('%s','now') AS INTEGER))",
				-1, &s, NULL));
			if (r >= 0) {
				bind_text(s, 1, component);
				sqlite3_bind_int64(s, 2, steps[i].version);
				r = sqlite3_step(s) == SQLITE_DONE ? 0 : -EIO;
			}
			sqlite3_finalize(s);
			s = NULL;
		}
		if (r < 0) {
			exec_sql(st->db, "ROLLBACK");
			return r;
		}
		r = exec_sql(st->db, "COMMIT");
		if (r < 0)
			return r;
		have = steps[i].version;
	}
	return 0;
}

struct store *store_free(struct store *st)
{
	if (!st)
		return NULL;
	if (st->in_tx)
		exec_sql(st->db, "ROLLBACK");
	for (int i = 0; i < S_N; i++)
		sqlite3_finalize(st->stmt[i]);
	sqlite3_close(st->db);
	if (st->lock_fd >= 0)
		close(st->lock_fd);
	free(st);
	return NULL;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(struct store, store_free)

int store_open(const char *path, unsigned batch_max, struct store **ret)
{
	_cleanup_(store_freep) struct store *st = NULL;
	_cleanup_free_ char *lock_path = NULL;
	int r;

	if (!path || !*path)
		return -EINVAL;
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->lock_fd = -1;
	st->batch_max = batch_max ? batch_max : STORE_BATCH_DEFAULT;
	if (asprintf(&lock_path, "%s-lock", path) < 0)
		return -ENOMEM;
	st->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (st->lock_fd < 0)
		return -errno;
	if (flock(st->lock_fd, LOCK_EX | LOCK_NB) < 0)
		return errno == EWOULDBLOCK ? -EBUSY : -errno;
	r = sqlite_errno(sqlite3_open_v2(path, &st->db,
					 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
						 SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW,
					 NULL));
	if (r < 0)
		return r;
	sqlite3_extended_result_codes(st->db, 0);
	sqlite3_busy_timeout(st->db, 5000);
	r = exec_sql(st->db, "PRAGMA journal_mode=WAL");
	if (r < 0)
		return r;
	r = exec_sql(st->db, "PRAGMA synchronous=FULL;"
			     "PRAGMA foreign_keys=ON;"
			     "PRAGMA wal_autocheckpoint=4096;"
			     "PRAGMA cache_size=-65536;"
			     "PRAGMA temp_store=MEMORY;"
			     "CREATE TABLE IF NOT EXISTS schema_migrations("
			     " component TEXT NOT NULL,"
			     " version INTEGER NOT NULL,"
			     " applied_at INTEGER NOT NULL,"
			     " PRIMARY KEY(component, version))");
	if (r < 0)
		return r;
	r = store_migrate(st, "core", core_migrations, ARRAY_SIZE(core_migrations));
	if (r < 0)
		return r;
	*ret = TAKE_PTR(st);
	return 0;
}

/* --- accounts --- */

int store_account_ensure(struct store *st, const char *name, const char *role, int64_t *ret_id)
{
	sqlite3_stmt *s = stmt_get(st, S_ACCOUNT_FIND);
	int rc, r;

	if (!s || !name || !*name || !role)
		return s ? -EINVAL : -EIO;
	bind_text(s, 1, name);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*ret_id = sqlite3_column_int64(s, 0);
		stmt_done(s);
		return 0;
	}
	stmt_done(s);
	if (rc != SQLITE_DONE)
		return sqlite_errno(rc);
	s = write_stmt(st, S_ACCOUNT_INSERT, &r);
	if (!s)
		return r;
	bind_text(s, 1, name);
	bind_text(s, 2, role);
	r = step_done(s);
	if (r < 0)
		return r;
	*ret_id = sqlite3_last_insert_rowid(st->db);
	return 0;
}

/* --- nodes --- */

static void node_from_row(sqlite3_stmt *s, void *row)
{
	struct store_node *n = row;

	n->id = sqlite3_column_int64(s, 0);
	text_copy(n->node_id, sizeof(n->node_id), s, 1);
	n->account_id = sqlite3_column_int64(s, 2);
	n->cores = (uint32_t)sqlite3_column_int64(s, 3);
	n->memory = (uint64_t)sqlite3_column_int64(s, 4);
	n->max_tasks = (uint32_t)sqlite3_column_int64(s, 5);
	n->price = sqlite3_column_int64(s, 6);
	n->perf = sqlite3_column_int64(s, 7);
	text_copy(n->location, sizeof(n->location), s, 8);
	n->renewable_ppm = (uint32_t)sqlite3_column_int64(s, 9);
	text_copy(n->window, sizeof(n->window), s, 10);
	n->utc_offset = (int32_t)sqlite3_column_int64(s, 11);
	n->registered_at = sqlite3_column_int64(s, 12);
	n->last_seen = sqlite3_column_int64(s, 13);
}

int store_node_upsert(struct store *st, const struct store_node *n, int64_t *ret_id)
{
	sqlite3_stmt *s;
	int r, rc;

	s = write_stmt(st, S_NODE_UPSERT, &r);
	if (!s)
		return r;
	bind_text(s, 1, n->node_id);
	BIND_INTS(s, 2, n->account_id, n->cores, (int64_t)n->memory, n->max_tasks, n->price,
		  n->perf);
	bind_text(s, 8, n->location);
	sqlite3_bind_int64(s, 9, n->renewable_ppm);
	bind_text(s, 10, n->window[0] ? n->window : "always");
	BIND_INTS(s, 11, n->utc_offset, n->registered_at, n->last_seen);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*ret_id = sqlite3_column_int64(s, 0);
		r = 0;
	} else {
		r = sqlite_errno(rc ? rc : SQLITE_ERROR);
		if (r == 0)
			r = -EIO;
	}
	stmt_done(s);
	return r;
}

int store_node_seen(struct store *st, int64_t id, int64_t now)
{
	return WRITE_INTS(st, S_NODE_SEEN, id, now);
}

static int node_one(struct store *st, enum stmt_id id, int64_t key, const char *skey,
		    struct store_node *ret)
{
	sqlite3_stmt *s = stmt_get(st, id);

	if (!s)
		return -EIO;
	if (skey)
		bind_text(s, 1, skey);
	else
		sqlite3_bind_int64(s, 1, key);
	return one_row(s, node_from_row, ret);
}

int store_node_get(struct store *st, int64_t id, struct store_node *ret)
{
	return node_one(st, S_NODE_GET, id, NULL, ret);
}

int store_node_find(struct store *st, const char *node_id, struct store_node *ret)
{
	return node_one(st, S_NODE_FIND, 0, node_id ? node_id : "", ret);
}

int store_node_foreach(struct store *st, store_node_cb cb, void *userdata)
{
	sqlite3_stmt *s = stmt_get(st, S_NODE_ALL);
	struct store_node n;
	int rc, r = 0;

	if (!s)
		return -EIO;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		node_from_row(s, &n);
		r = cb(&n, userdata);
		if (r < 0)
			break;
	}
	stmt_done(s);
	if (r < 0)
		return r;
	return rc == SQLITE_DONE ? 0 : sqlite_errno(rc);
}

/* --- tasks --- */

static int task_from_row(sqlite3_stmt *s, struct store_task *t)
{
	const unsigned char *spec = sqlite3_column_text(s, 4);

	memset(t, 0, sizeof(*t));
	t->id = sqlite3_column_int64(s, 0);
	t->account_id = sqlite3_column_int64(s, 1);
	text_copy(t->client_ref, sizeof(t->client_ref), s, 2);
	text_copy(t->image, sizeof(t->image), s, 3);
	if (spec) {
		t->spec = strdup((const char *)spec);
		if (!t->spec)
			return -ENOMEM;
	}
	t->cores = (uint32_t)sqlite3_column_int64(s, 5);
	t->memory = (uint64_t)sqlite3_column_int64(s, 6);
	t->max_price = sqlite3_column_int64(s, 7);
	t->replicas = (uint32_t)sqlite3_column_int64(s, 8);
	t->priority = (int32_t)sqlite3_column_int64(s, 9);
	t->deadline = sqlite3_column_int64(s, 10);
	t->state = (int32_t)sqlite3_column_int64(s, 11);
	t->attempts = (uint32_t)sqlite3_column_int64(s, 12);
	text_copy(t->reason, sizeof(t->reason), s, 13);
	t->submitted_at = sqlite3_column_int64(s, 14);
	t->finished_at = sqlite3_column_int64(s, 15);
	text_copy(t->result_digest, sizeof(t->result_digest), s, 16);
	t->exit_code = (int32_t)sqlite3_column_int64(s, 17);
	return 0;
}

void store_task_clear(struct store_task *t)
{
	if (t) {
		free(t->spec);
		t->spec = NULL;
	}
}

/* Hand every task row of s to cb (stopping at its first error), then reset s. */
static int task_rows(sqlite3_stmt *s, store_task_cb cb, void *userdata)
{
	struct store_task t;
	int rc, r = 0;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		r = task_from_row(s, &t);
		if (r >= 0)
			r = cb(&t, userdata);
		store_task_clear(&t);
		if (r < 0)
			break;
	}
	stmt_done(s);
	if (r < 0)
		return r;
	return rc == SQLITE_DONE ? 0 : sqlite_errno(rc);
}

int store_task_insert(struct store *st, struct store_task *t, int64_t *ret_existing)
{
	sqlite3_stmt *s;
	int r, rc;

	if (!t->spec || t->state < 0 || t->state >= TASK_STATE_N)
		return -EINVAL;
	if (t->client_ref[0]) {
		s = stmt_get(st, S_TASK_BY_REF);
		if (!s)
			return -EIO;
		sqlite3_bind_int64(s, 1, t->account_id);
		bind_text(s, 2, t->client_ref);
		rc = sqlite3_step(s);
		if (rc == SQLITE_ROW && ret_existing)
			*ret_existing = sqlite3_column_int64(s, 0);
		stmt_done(s);
		if (rc == SQLITE_ROW)
			return -EEXIST;
		if (rc != SQLITE_DONE)
			return sqlite_errno(rc);
	}
	s = write_stmt(st, S_TASK_INSERT, &r);
	if (!s)
		return r;
	sqlite3_bind_int64(s, 1, t->account_id);
	bind_text(s, 2, t->client_ref);
	bind_text(s, 3, t->image);
	bind_text(s, 4, t->spec);
	BIND_INTS(s, 5, t->cores, (int64_t)t->memory, t->max_price, t->replicas, t->priority,
		  t->deadline, t->state, t->attempts);
	bind_text(s, 13, t->reason);
	BIND_INTS(s, 14, t->submitted_at, t->finished_at);
	bind_text(s, 16, t->result_digest);
	sqlite3_bind_int64(s, 17, t->exit_code);
	r = step_done(s);
	if (r < 0)
		return r == -EEXIST ? -EINVAL : r; /* a CHECK failed: invalid values */
	t->id = sqlite3_last_insert_rowid(st->db);
	return 0;
}

int store_task_get(struct store *st, int64_t id, struct store_task *ret)
{
	sqlite3_stmt *s = stmt_get(st, S_TASK_GET);
	int rc, r = 0;

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		r = task_from_row(s, ret);
	else
		r = rc == SQLITE_DONE ? -ENOENT : sqlite_errno(rc);
	stmt_done(s);
	return r;
}

int store_task_set_state(struct store *st, int64_t id, enum task_state state, uint32_t attempts,
			 const char *reason, int64_t finished_at)
{
	sqlite3_stmt *s;
	int r;

	s = write_stmt(st, S_TASK_STATE, &r);
	if (!s)
		return r;
	BIND_INTS(s, 1, id, state, attempts);
	bind_text(s, 4, reason);
	sqlite3_bind_int64(s, 5, finished_at);
	return step_one_row(st, s);
}

int store_task_set_result(struct store *st, int64_t id, const char *digest, int32_t exit_code)
{
	sqlite3_stmt *s;
	int r;

	s = write_stmt(st, S_TASK_RESULT, &r);
	if (!s)
		return r;
	sqlite3_bind_int64(s, 1, id);
	bind_text(s, 2, digest);
	sqlite3_bind_int64(s, 3, exit_code);
	return step_one_row(st, s);
}

int store_task_count(struct store *st, int state, int64_t *ret)
{
	return count_rows(st, state < 0 ? S_TASK_COUNT_ALL : S_TASK_COUNT, state, ret);
}

int store_task_foreach_active(struct store *st, store_task_cb cb, void *userdata)
{
	sqlite3_stmt *s = stmt_get(st, S_TASK_ACTIVE);

	if (!s)
		return -EIO;
	return task_rows(s, cb, userdata);
}

/* --- replicas --- */

static void replica_from_row(sqlite3_stmt *s, void *row)
{
	struct store_replica *r = row;

	r->id = sqlite3_column_int64(s, 0);
	r->task_id = sqlite3_column_int64(s, 1);
	r->idx = (uint32_t)sqlite3_column_int64(s, 2);
	r->node = sqlite3_column_int64(s, 3);
	r->attempt = (uint32_t)sqlite3_column_int64(s, 4);
	r->state = (int32_t)sqlite3_column_int64(s, 5);
	r->assigned_at = sqlite3_column_int64(s, 6);
	r->ended_at = sqlite3_column_int64(s, 7);
	r->exit_code = (int32_t)sqlite3_column_int64(s, 8);
	text_copy(r->result_digest, sizeof(r->result_digest), s, 9);
	text_copy(r->reason, sizeof(r->reason), s, 10);
}

int store_replica_assign(struct store *st, int64_t task_id, uint32_t idx, int64_t node,
			 uint32_t attempt, int64_t now, int64_t *ret_id)
{
	int r = WRITE_INTS(st, S_REPLICA_INSERT, task_id, idx, node, attempt, now);

	if (r < 0)
		return r;
	if (ret_id)
		*ret_id = sqlite3_last_insert_rowid(st->db);
	return 0;
}

int store_replica_set_state(struct store *st, int64_t id, enum replica_state state,
			    int32_t exit_code, const char *digest, const char *reason, int64_t now)
{
	sqlite3_stmt *s;
	int r;

	s = write_stmt(st, S_REPLICA_STATE, &r);
	if (!s)
		return r;
	BIND_INTS(s, 1, id, state, exit_code);
	bind_text(s, 4, digest);
	bind_text(s, 5, reason);
	sqlite3_bind_int64(s, 6, REPLICA_LIVE(state) ? 0 : now);
	return step_one_row(st, s);
}

int store_replica_get(struct store *st, int64_t id, struct store_replica *ret)
{
	sqlite3_stmt *s = stmt_get(st, S_REPLICA_GET);

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, id);
	return one_row(s, replica_from_row, ret);
}

int store_replica_find_live(struct store *st, int64_t task_id, int64_t node,
			    struct store_replica *ret)
{
	sqlite3_stmt *s = stmt_get(st, S_REPLICA_FIND_LIVE);

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, task_id);
	sqlite3_bind_int64(s, 2, node);
	return one_row(s, replica_from_row, ret);
}

/* Collect the rows first: callbacks may write to the table being read. */
static int replica_run(struct store *st, enum stmt_id id, int64_t key, store_replica_cb cb,
		       void *userdata)
{
	sqlite3_stmt *s = stmt_get(st, id);
	struct store_replica *list = NULL;
	size_t n = 0;
	int r;

	if (!s)
		return -EIO;
	if (key >= 0)
		sqlite3_bind_int64(s, 1, key);
	r = rows_collect(s, sizeof(*list), replica_from_row, (void **)&list, &n);
	for (size_t i = 0; r >= 0 && i < n; i++)
		r = cb(&list[i], userdata);
	free(list);
	return r;
}

int store_replica_foreach(struct store *st, int64_t task_id, int all, store_replica_cb cb,
			  void *userdata)
{
	enum stmt_id id =
		task_id < 0 ? S_REPLICA_LIVE_ALL : (all ? S_REPLICA_ALL_TASK : S_REPLICA_LIVE_TASK);

	return replica_run(st, id, task_id, cb, userdata);
}

int store_replica_foreach_node(struct store *st, int64_t node, store_replica_cb cb, void *userdata)
{
	return replica_run(st, S_REPLICA_LIVE_NODE, node, cb, userdata);
}

/* --- usage records --- */

int store_usage_insert(struct store *st, int64_t node, uint64_t seq, int64_t task_id,
		       const char *record, const char *record_hash, uint64_t cpu_ns, int64_t now)
{
	sqlite3_stmt *s;
	int r, rc, same;

	if (!record || !record_hash || seq > INT64_MAX || cpu_ns > INT64_MAX)
		return -EINVAL;
	s = stmt_get(st, S_USAGE_HASH);
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, node);
	sqlite3_bind_int64(s, 2, (int64_t)seq);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		const unsigned char *h = sqlite3_column_text(s, 0);

		same = h && strcmp((const char *)h, record_hash) == 0;
		stmt_done(s);
		return same ? 1 : -EEXIST;
	}
	stmt_done(s);
	if (rc != SQLITE_DONE)
		return sqlite_errno(rc);
	s = write_stmt(st, S_USAGE_INSERT, &r);
	if (!s)
		return r;
	BIND_INTS(s, 1, node, (int64_t)seq);
	if (task_id > 0)
		sqlite3_bind_int64(s, 3, task_id);
	else
		sqlite3_bind_null(s, 3);
	bind_text(s, 4, record);
	bind_text(s, 5, record_hash);
	BIND_INTS(s, 6, (int64_t)cpu_ns, now);
	return step_done(s);
}

int store_usage_count(struct store *st, int64_t node, int64_t *ret)
{
	return count_rows(st, S_USAGE_COUNT, node, ret);
}

int store_task_cpu_ns(struct store *st, int64_t task_id, int64_t *ret)
{
	return count_rows(st, S_USAGE_TASK_CPU, task_id, ret);
}

/* --- blobs --- */

static void blob_from_row(sqlite3_stmt *s, void *row)
{
	struct store_blob *b = row;

	text_copy(b->digest, sizeof(b->digest), s, 0);
	b->size = (uint64_t)sqlite3_column_int64(s, 1);
	b->owner = sqlite3_column_int64(s, 2);
	b->kind = (int32_t)sqlite3_column_int64(s, 3);
	b->created_at = sqlite3_column_int64(s, 4);
	b->expires_at = sqlite3_column_int64(s, 5);
	b->fetched_at = sqlite3_column_int64(s, 6);
}

int store_blob_put(struct store *st, const struct store_blob *b)
{
	sqlite3_stmt *s;
	int r;

	s = write_stmt(st, S_BLOB_PUT, &r);
	if (!s)
		return r;
	bind_text(s, 1, b->digest);
	BIND_INTS(s, 2, (int64_t)b->size, b->owner, b->kind, b->created_at, b->expires_at);
	return step_done(s);
}

int store_blob_get(struct store *st, const char *digest, struct store_blob *ret)
{
	sqlite3_stmt *s = stmt_get(st, S_BLOB_GET);

	if (!s)
		return -EIO;
	bind_text(s, 1, digest);
	return one_row(s, blob_from_row, ret);
}

int store_blob_fetched(struct store *st, const char *digest, int64_t now, int64_t expires_at)
{
	sqlite3_stmt *s;
	int r;

	s = write_stmt(st, S_BLOB_FETCHED, &r);
	if (!s)
		return r;
	bind_text(s, 1, digest);
	BIND_INTS(s, 2, now, expires_at);
	return step_one_row(st, s);
}

int store_blob_delete(struct store *st, const char *digest)
{
	sqlite3_stmt *s;
	int r;

	s = write_stmt(st, S_BLOB_DELETE, &r);
	if (!s)
		return r;
	bind_text(s, 1, digest);
	return step_done(s);
}

int store_blob_foreach_expired(struct store *st, int64_t now, store_blob_cb cb, void *userdata)
{
	sqlite3_stmt *s = stmt_get(st, S_BLOB_EXPIRED);
	struct store_blob *list = NULL;
	size_t n = 0;
	int r;

	if (!s)
		return -EIO;
	/* Collect first: the callback may delete rows of the table being read. */
	sqlite3_bind_int64(s, 1, now);
	r = rows_collect(s, sizeof(*list), blob_from_row, (void **)&list, &n);
	for (size_t i = 0; r >= 0 && i < n; i++)
		r = cb(&list[i], userdata);
	free(list);
	return r;
}

/* --- ratings --- */

int store_rating_insert(struct store *st, int64_t task_id, int64_t account_id, int64_t node,
			int stars, const char *text, int64_t now)
{
	sqlite3_stmt *s;
	int r;

	if (stars < 1 || stars > 5)
		return -EINVAL;
	s = write_stmt(st, S_RATING_INSERT, &r);
	if (!s)
		return r;
	BIND_INTS(s, 1, task_id, account_id, node, stars);
	bind_text(s, 5, text);
	sqlite3_bind_int64(s, 6, now);
	return step_done(s);
}

int store_node_rating(struct store *st, int64_t node, int32_t *ret_centi, uint32_t *ret_count)
{
	sqlite3_stmt *s = stmt_get(st, S_RATING_NODE);
	int64_t count = 0, sum = 0;
	int rc;

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, node);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		count = sqlite3_column_int64(s, 0);
		sum = sqlite3_column_int64(s, 1);
	}
	stmt_done(s);
	if (rc != SQLITE_ROW)
		return sqlite_errno(rc);
	*ret_centi = count ? (int32_t)(sum * 100 / count) : 0;
	*ret_count = (uint32_t)count;
	return 0;
}

/* --- lookups for the network front --- */

int store_account_name(struct store *st, int64_t id, char *buf, size_t len)
{
	sqlite3_stmt *s = stmt_get(st, S_ACCOUNT_NAME);
	int rc;

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		text_copy(buf, len, s, 0);
	stmt_done(s);
	return row_result(rc);
}

int store_usage_get(struct store *st, int64_t node, uint64_t seq, struct store_usage *ret)
{
	sqlite3_stmt *s = stmt_get(st, S_USAGE_GET);
	const unsigned char *rec;
	int rc, r = 0;

	if (!s)
		return -EIO;
	if (seq > INT64_MAX)
		return -ENOENT;
	sqlite3_bind_int64(s, 1, node);
	sqlite3_bind_int64(s, 2, (int64_t)seq);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		memset(ret, 0, sizeof(*ret));
		ret->task_id = sqlite3_column_int64(s, 0);
		rec = sqlite3_column_text(s, 1);
		ret->record = strdup(rec ? (const char *)rec : "");
		if (!ret->record)
			r = -ENOMEM;
		text_copy(ret->record_hash, sizeof(ret->record_hash), s, 2);
		ret->cpu_ns = (uint64_t)sqlite3_column_int64(s, 3);
	}
	stmt_done(s);
	if (r < 0)
		return r;
	return row_result(rc);
}

void store_usage_clear(struct store_usage *u)
{
	if (u) {
		free(u->record);
		u->record = NULL;
	}
}

int store_task_list(struct store *st, int64_t account, int state, unsigned limit, store_task_cb cb,
		    void *userdata)
{
	sqlite3_stmt *s = stmt_get(st, S_TASK_LIST);

	if (!s)
		return -EIO;
	BIND_INTS(s, 1, account, state, limit);
	return task_rows(s, cb, userdata);
}

int store_task_input_add(struct store *st, int64_t task_id, const char *digest)
{
	sqlite3_stmt *s;
	int r;

	s = write_stmt(st, S_TASK_INPUT_ADD, &r);
	if (!s)
		return r;
	sqlite3_bind_int64(s, 1, task_id);
	bind_text(s, 2, digest);
	return step_done(s);
}

int store_blob_may_fetch(struct store *st, int is_agent, int64_t who, const char *digest)
{
	sqlite3_stmt *s = stmt_get(st, is_agent ? S_BLOB_AGENT_MAY : S_BLOB_RENTER_MAY);
	int rc;

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, who);
	bind_text(s, 2, digest);
	rc = sqlite3_step(s);
	stmt_done(s);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : sqlite_errno(rc);
}

int store_replica_set_terms(struct store *st, int64_t id, int64_t price, unsigned pow_bits,
			    int64_t offered_ns)
{
	return WRITE_INTS(st, S_REPLICA_SET_TERMS, id, price, pow_bits, offered_ns);
}

int store_replica_terms(struct store *st, int64_t id, int64_t *ret_price, unsigned *ret_pow_bits,
			int64_t *ret_offered_ns)
{
	sqlite3_stmt *s = stmt_get(st, S_REPLICA_TERMS);
	int rc;

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*ret_price = sqlite3_column_int64(s, 0);
		*ret_pow_bits = (unsigned)sqlite3_column_int64(s, 1);
		*ret_offered_ns = sqlite3_column_int64(s, 2);
	}
	stmt_done(s);
	return row_result(rc);
}

int store_task_set_replicas(struct store *st, int64_t id, uint32_t replicas)
{
	sqlite3_stmt *s;
	int r;

	s = write_stmt(st, S_TASK_REPLICAS, &r);
	if (!s)
		return r;
	BIND_INTS(s, 1, id, replicas);
	return step_one_row(st, s);
}
