/* ledger.c -- double-entry, append-only, hash-chained AICN ledger on SQLite, and its offline replay. */
#include "ledger.h"

#include <aicn/canon.h>
#include <aicn/checkpoint.h>
#include <aicn/compiler.h>
#include <aicn/hash.h>
#include <aicn/merkle.h>

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>

#define LEDGER_SCHEMA_VERSION 1

enum {
	ST_INSERT_ENTRY,
	ST_GET_BALANCE,
	ST_ADD_BALANCE,
	ST_INSERT_USAGE,
	ST_HAS_CAUSE,
	ST_USAGE_BY_HASH,
	ST_USAGE_BY_SEQ,
	ST_HEAD,
	ST__MAX,
};

static const char *const stmt_sql[ST__MAX] = {
	[ST_INSERT_ENTRY] = "INSERT INTO ledger_entries(seq, hash, kind, cause, body) "
			    "VALUES(?1, ?2, ?3, ?4, ?5)",
	[ST_GET_BALANCE] = "SELECT balance FROM ledger_balances WHERE account = ?1",
	[ST_ADD_BALANCE] =
		"INSERT INTO ledger_balances(account, balance) VALUES(?1, ?2) "
		"ON CONFLICT(account) DO UPDATE SET balance = balance + excluded.balance",
	[ST_INSERT_USAGE] = "INSERT INTO ledger_usage(record_hash, node, node_seq, entry, task) "
			    "VALUES(?1, ?2, ?3, ?4, ?5)",
	[ST_HAS_CAUSE] = "SELECT 1 FROM ledger_entries WHERE kind = ?1 AND cause = ?2",
	[ST_USAGE_BY_HASH] = "SELECT 1 FROM ledger_usage WHERE record_hash = ?1",
	[ST_USAGE_BY_SEQ] = "SELECT 1 FROM ledger_usage WHERE node = ?1 AND node_seq = ?2",
	[ST_HEAD] = "SELECT seq, hash FROM ledger_entries ORDER BY seq DESC LIMIT 1",
};

struct ledger {
	sqlite3 *db;		   /* borrowed */
	sqlite3_stmt *st[ST__MAX]; /* prepared once */
	uint64_t size;		   /* entries committed or pending in this batch */
	uint8_t head[SHA256_LEN];  /* hash of entry `size` */
	bool batch;		   /* inside ledger_begin .. commit */
	struct merkle_tree *tree;  /* lazily built, may lag the ledger (ledger_tree_head) */
	struct {
		const char *sql; /* cache key: the literal's address */
		sqlite3_stmt *st;
	} cache[96];
	uint64_t batch_size; /* head at ledger_begin, restored on rollback */
	uint8_t batch_head[SHA256_LEN];
};

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS ledger_meta(\n"
	"  k TEXT PRIMARY KEY,             -- setting name\n"
	"  v TEXT NOT NULL                 -- its value\n"
	");\n"
	"CREATE TABLE IF NOT EXISTS ledger_entries(\n"
	"  seq INTEGER PRIMARY KEY,        -- 1, 2, 3 ... without gaps\n"
	"  hash BLOB NOT NULL,             -- SHA-256 of body\n"
	"  kind TEXT NOT NULL,             -- copy of body.kind, for lookups\n"
	"  cause TEXT NOT NULL,            -- copy of body.cause; unique per kind\n"
	"  body TEXT NOT NULL,             -- canonical JSON, the hashed bytes\n"
	"  UNIQUE(kind, cause)\n"
	");\n"
	"CREATE TABLE IF NOT EXISTS ledger_balances(\n"
	"  account TEXT PRIMARY KEY,       -- account name\n"
	"  balance INTEGER NOT NULL        -- base units; a cache of the replay\n"
	") WITHOUT ROWID;\n"
	"CREATE TABLE IF NOT EXISTS ledger_usage(\n"
	"  record_hash BLOB PRIMARY KEY,   -- SHA-256 of the signed usage record\n"
	"  node TEXT NOT NULL,             -- node id that signed it\n"
	"  node_seq INTEGER NOT NULL,      -- the record's sequence in the node's meter log\n"
	"  entry INTEGER NOT NULL,         -- the settling ledger entry\n"
	"  task TEXT NOT NULL,             -- the task it ran for\n"
	"  UNIQUE(node, node_seq)\n"
	");\n"
	/* state derived from the entries, kept in step inside the same transactions */
	"CREATE TABLE IF NOT EXISTS ledger_escrow(\n"
	"  task TEXT PRIMARY KEY,          -- task id; the account is escrow:<task>\n"
	"  renter TEXT NOT NULL,           -- account refunded at close\n"
	"  price INTEGER NOT NULL,         -- base units per CPU-hour, fixed at submit\n"
	"  max_cpu_ns INTEGER NOT NULL,    -- the renter's cap per replica\n"
	"  replicas INTEGER NOT NULL,      -- replicas paid for\n"
	"  settled INTEGER NOT NULL,       -- usage records settled so far\n"
	"  closed INTEGER NOT NULL         -- 1 once refunded\n"
	");\n"
	"CREATE TABLE IF NOT EXISTS ledger_work(\n"
	"  epoch INTEGER NOT NULL,         -- reward epoch\n"
	"  node TEXT NOT NULL,             -- node id\n"
	"  provider TEXT NOT NULL,         -- account its reward goes to\n"
	"  cpu_ns INTEGER NOT NULL,        -- validated CPU ns in the epoch (P)\n"
	"  renewable_ppm INTEGER NOT NULL, -- renewable share last declared\n"
	"  PRIMARY KEY(epoch, node)\n"
	");\n"
	"CREATE TABLE IF NOT EXISTS ledger_trust(\n"
	"  node TEXT PRIMARY KEY,          -- node id\n"
	"  valid_total INTEGER NOT NULL,   -- results validated\n"
	"  valid_streak INTEGER NOT NULL,  -- consecutive since the last error\n"
	"  invalid_total INTEGER NOT NULL  -- results refused or outvoted\n"
	");\n"
	"CREATE TABLE IF NOT EXISTS ledger_ratings(\n"
	"  task TEXT NOT NULL,             -- rated task\n"
	"  node TEXT NOT NULL,             -- rated node\n"
	"  stars INTEGER NOT NULL,         -- 1..5\n"
	"  PRIMARY KEY(task, node)\n"
	");\n"
	"CREATE TABLE IF NOT EXISTS ledger_params(\n"
	"  name TEXT PRIMARY KEY,          -- econ parameter name\n"
	"  value INTEGER NOT NULL          -- overrides the built-in default\n"
	");\n"
	"CREATE TABLE IF NOT EXISTS ledger_proposals(\n"
	"  id INTEGER PRIMARY KEY,         -- proposal number\n"
	"  proposer TEXT NOT NULL,         -- staking account that proposed\n"
	"  param TEXT NOT NULL,            -- parameter to change\n"
	"  value INTEGER NOT NULL,         -- its proposed value\n"
	"  end_ns INTEGER NOT NULL,        -- end of the voting period\n"
	"  state INTEGER NOT NULL          -- 0 open, 1 passed, 2 failed, 3 not applicable\n"
	");\n"
	"CREATE TABLE IF NOT EXISTS ledger_votes(\n"
	"  proposal INTEGER NOT NULL,      -- proposal id\n"
	"  voter TEXT NOT NULL,            -- staking account\n"
	"  yes INTEGER NOT NULL,           -- 1 yes, 0 no\n"
	"  weight INTEGER NOT NULL,        -- stake when the vote was cast\n"
	"  PRIMARY KEY(proposal, voter)\n"
	");\n"
	"CREATE TABLE IF NOT EXISTS ledger_unbond(\n"
	"  id INTEGER PRIMARY KEY,         -- unbonding number\n"
	"  owner TEXT NOT NULL,            -- account paid at release\n"
	"  amount INTEGER NOT NULL,        -- base units\n"
	"  release_ns INTEGER NOT NULL,    -- spendable from\n"
	"  released INTEGER NOT NULL       -- 1 once paid out\n"
	");\n";

/* ---- names ---- */

bool ledger_account_valid(const char *s)
{
	size_t n = 0;

	if (!s)
		return false;
	for (; s[n]; n++) {
		char c = s[n];

		if (n >= LEDGER_ACCOUNT_MAX)
			return false;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == ':' || c == '.' || c == '_' || c == '@' || c == '-'))
			return false;
	}
	return n > 0;
}

bool ledger_cause_valid(const char *s)
{
	size_t n = 0;

	if (!s)
		return false;
	for (; s[n]; n++)
		if (n >= LEDGER_CAUSE_MAX || (unsigned char)s[n] < 0x20 ||
		    (unsigned char)s[n] > 0x7e)
			return false;
	return n > 0;
}

static bool kind_valid(const char *s)
{
	size_t n = 0;

	if (!s)
		return false;
	for (; s[n]; n++)
		if (n >= LEDGER_KIND_MAX || !((s[n] >= 'a' && s[n] <= 'z') || s[n] == '_'))
			return false;
	return n > 0;
}

/* ---- setup ---- */

int ledger_sql_errno(int rc)
{
	switch (rc) {
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
	case SQLITE_READONLY:
		return -EROFS;
	default:
		return -EIO;
	}
}

int ledger_stmt_run(sqlite3_stmt *st)
{
	int r;

	if (!st)
		return -EIO;
	r = ledger_sql_errno(sqlite3_step(st));
	sqlite3_reset(st);
	return r;
}

static int exec(sqlite3 *db, const char *sql)
{
	return ledger_sql_errno(sqlite3_exec(db, sql, NULL, NULL, NULL));
}

int ledger_migrate(sqlite3 *db)
{
	int r = exec(db, "BEGIN IMMEDIATE");

	if (r < 0)
		return r;
	r = exec(db, schema);
	if (r >= 0)
		r = exec(db, "INSERT OR IGNORE INTO ledger_meta(k, v) VALUES('schema', '1')");
	if (r < 0) {
		exec(db, "ROLLBACK");
		return r;
	}
	return exec(db, "COMMIT");
}

static int load_head(struct ledger *l)
{
	sqlite3_stmt *st = l->st[ST_HEAD];
	int rc;

	sqlite3_reset(st);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		l->size = 0;
		memset(l->head, 0, sizeof(l->head));
		sqlite3_reset(st);
		return 0;
	}
	if (rc != SQLITE_ROW) {
		sqlite3_reset(st);
		return ledger_sql_errno(rc);
	}
	if (sqlite3_column_bytes(st, 1) != SHA256_LEN) {
		sqlite3_reset(st);
		return -EBADMSG;
	}
	l->size = (uint64_t)sqlite3_column_int64(st, 0);
	memcpy(l->head, sqlite3_column_blob(st, 1), SHA256_LEN);
	sqlite3_reset(st);
	return 0;
}

struct ledger *ledger_free(struct ledger *l)
{
	if (!l)
		return NULL;
	for (int i = 0; i < ST__MAX; i++)
		sqlite3_finalize(l->st[i]);
	for (size_t i = 0; i < ARRAY_SIZE(l->cache); i++)
		sqlite3_finalize(l->cache[i].st);
	merkle_free(l->tree);
	free(l);
	return NULL;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(struct ledger, ledger_free);

int ledger_new(sqlite3 *db, struct ledger **ret)
{
	_cleanup_(ledger_freep) struct ledger *l = calloc(1, sizeof(*l));
	int r;

	if (!l)
		return -ENOMEM;
	l->db = db;
	for (int i = 0; i < ST__MAX; i++) {
		r = ledger_sql_errno(sqlite3_prepare_v3(
			db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &l->st[i], NULL));
		if (r < 0)
			return r == -EEXIST ? -EIO : r;
	}
	r = load_head(l);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(l);
	return 0;
}

sqlite3_stmt *ledger_stmt(struct ledger *l, const char *sql)
{
	sqlite3_stmt *st = NULL;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(l->cache) && l->cache[i].sql; i++) {
		if (l->cache[i].sql == sql) {
			sqlite3_reset(l->cache[i].st);
			sqlite3_clear_bindings(l->cache[i].st);
			return l->cache[i].st;
		}
	}
	if (sqlite3_prepare_v3(l->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK)
		return NULL;
	if (i == ARRAY_SIZE(l->cache)) {
		/* full: evict the last slot (only happens with more call sites than slots) */
		i--;
		sqlite3_finalize(l->cache[i].st);
	}
	l->cache[i].sql = sql;
	l->cache[i].st = st;
	return st;
}

sqlite3 *ledger_db(struct ledger *l)
{
	return l->db;
}

static void tree_undo(struct ledger *l);

int ledger_begin(struct ledger *l)
{
	int r;

	if (l->batch)
		return -EBUSY;
	r = exec(l->db, "BEGIN IMMEDIATE");
	if (r < 0)
		return r;
	r = load_head(l); /* another connection may have appended */
	if (r < 0) {
		exec(l->db, "ROLLBACK");
		return r;
	}
	l->batch = true;
	l->batch_size = l->size;
	memcpy(l->batch_head, l->head, SHA256_LEN);
	return 0;
}

int ledger_commit(struct ledger *l)
{
	int r;

	if (!l->batch)
		return -EINVAL;
	r = exec(l->db, "COMMIT");
	if (r < 0) {
		ledger_rollback(l);
		return r;
	}
	l->batch = false;
	return 0;
}

int ledger_rollback(struct ledger *l)
{
	if (!l->batch)
		return -EINVAL;
	exec(l->db, "ROLLBACK");
	l->batch = false;
	l->size = l->batch_size;
	memcpy(l->head, l->batch_head, SHA256_LEN);
	tree_undo(l);
	return 0;
}

bool ledger_in_batch(struct ledger *l)
{
	return l->batch;
}

int ledger_join(struct ledger *l)
{
	if (l->batch)
		return -EBUSY;
	if (sqlite3_get_autocommit(l->db))
		return -EINVAL; /* nobody opened a transaction to join */
	l->batch = true;
	l->batch_size = l->size;
	memcpy(l->batch_head, l->head, SHA256_LEN);
	return 0;
}

void ledger_leave(struct ledger *l)
{
	l->batch = false;
}

int ledger_reload(struct ledger *l)
{
	int r;

	if (l->batch)
		return -EBUSY;
	r = load_head(l);
	if (r < 0)
		return r;
	tree_undo(l);
	return 0;
}

/* After an undo: leaves of undone entries must not survive in the tree. */
static void tree_undo(struct ledger *l)
{
	if (l->tree && merkle_size(l->tree) > l->size && merkle_truncate(l->tree, l->size) < 0)
		l->tree = merkle_free(l->tree);
}

int ledger_unit_begin(struct ledger *l, struct ledger_unit *u)
{
	int r;

	u->own_tx = !l->batch;
	if (u->own_tx) {
		r = ledger_begin(l);
		if (r < 0)
			return r;
	}
	u->size = l->size;
	memcpy(u->head, l->head, SHA256_LEN);
	r = exec(l->db, "SAVEPOINT ledger_unit");
	if (r < 0 && u->own_tx)
		ledger_rollback(l);
	return r;
}

int ledger_unit_end(struct ledger *l, struct ledger_unit *u, int r)
{
	if (r < 0) {
		exec(l->db, "ROLLBACK TO ledger_unit");
		exec(l->db, "RELEASE ledger_unit");
		l->size = u->size;
		memcpy(l->head, u->head, SHA256_LEN);
		tree_undo(l);
		if (u->own_tx)
			ledger_rollback(l);
		return r;
	}
	r = exec(l->db, "RELEASE ledger_unit");
	if (r < 0) {
		exec(l->db, "ROLLBACK TO ledger_unit");
		exec(l->db, "RELEASE ledger_unit");
		l->size = u->size;
		memcpy(l->head, u->head, SHA256_LEN);
		tree_undo(l);
		if (u->own_tx)
			ledger_rollback(l);
		return r;
	}
	if (u->own_tx)
		return ledger_commit(l);
	return 0;
}

/* ---- lookups ---- */

static int step_exists(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st), r;

	r = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : ledger_sql_errno(rc);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return r;
}

int ledger_balance(struct ledger *l, const char *account, int64_t *ret)
{
	sqlite3_stmt *st = l->st[ST_GET_BALANCE];
	int rc;

	if (!ledger_account_valid(account))
		return -EINVAL;
	sqlite3_bind_text(st, 1, account, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*ret = sqlite3_column_int64(st, 0);
	else if (rc == SQLITE_DONE)
		*ret = 0;
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : ledger_sql_errno(rc);
}

int ledger_has_cause(struct ledger *l, const char *kind, const char *cause)
{
	sqlite3_stmt *st = l->st[ST_HAS_CAUSE];

	sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, cause, -1, SQLITE_STATIC);
	return step_exists(st);
}

int ledger_usage_seen(struct ledger *l, const uint8_t record_hash[32], const char *node,
		      uint64_t node_seq)
{
	sqlite3_stmt *st = l->st[ST_USAGE_BY_HASH];
	int r;

	sqlite3_bind_blob(st, 1, record_hash, SHA256_LEN, SQLITE_STATIC);
	r = step_exists(st);
	if (r != 0 || !node)
		return r;
	st = l->st[ST_USAGE_BY_SEQ];
	sqlite3_bind_text(st, 1, node, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (int64_t)node_seq);
	return step_exists(st);
}

void ledger_head(struct ledger *l, uint64_t *ret_size, uint8_t ret_hash[32])
{
	if (ret_size)
		*ret_size = l->size;
	if (ret_hash)
		memcpy(ret_hash, l->head, SHA256_LEN);
}

/* ---- append ---- */

struct net {
	const char *account;
	int64_t delta;
};

static int net_cmp(const void *a, const void *b)
{
	return strcmp(((const struct net *)a)->account, ((const struct net *)b)->account);
}

/* Postings folded per account (sorted); checks names and the zero sum. */
static int fold_postings(const struct ledger_append_args *a, struct net **ret, size_t *ret_n)
{
	_cleanup_free_ struct net *v = NULL;
	__int128 sum = 0;
	size_t n = 0;

	if (a->n_postings > LEDGER_MAX_POSTINGS || (a->n_postings && !a->postings))
		return -EINVAL;
	if (a->n_postings == 0) {
		*ret = NULL;
		*ret_n = 0;
		return 0;
	}
	v = calloc(a->n_postings, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < a->n_postings; i++) {
		if (!ledger_account_valid(a->postings[i].account) || a->postings[i].delta == 0 ||
		    a->postings[i].delta == INT64_MIN)
			return -EINVAL;
		v[i].account = a->postings[i].account;
		v[i].delta = a->postings[i].delta;
		sum += a->postings[i].delta;
	}
	if (sum != 0)
		return -EINVAL;
	qsort(v, a->n_postings, sizeof(*v), net_cmp);
	for (size_t i = 0; i < a->n_postings; i++) {
		if (n && strcmp(v[n - 1].account, v[i].account) == 0) {
			__int128 s = (__int128)v[n - 1].delta + v[i].delta;

			if (s > INT64_MAX || s < -INT64_MAX)
				return -ERANGE;
			v[n - 1].delta = (int64_t)s;
		} else {
			v[n++] = v[i];
		}
	}
	*ret = TAKE_PTR(v);
	*ret_n = n;
	return 0;
}

static int build_body(const struct ledger *l, const struct ledger_append_args *a, char **ret,
		      size_t *ret_len)
{
	cJSON *o = cJSON_CreateObject(), *ps, *d;
	char hex[SHA256_HEX_LEN + 1];
	int r = -ENOMEM;

	if (!o)
		return -ENOMEM;
	hex_encode(l->head, SHA256_LEN, hex);
	if (!cJSON_AddStringToObject(o, "cause", a->cause) ||
	    canon_add_u64(o, "epoch", a->epoch) < 0 ||
	    !cJSON_AddStringToObject(o, "kind", a->kind) ||
	    !cJSON_AddStringToObject(o, "prev", hex) || canon_add_u64(o, "seq", l->size + 1) < 0 ||
	    canon_add_i64(o, "time", a->time_ns) < 0 || canon_add_i64(o, "v", 1) < 0)
		goto out;
	ps = cJSON_AddArrayToObject(o, "postings");
	if (!ps)
		goto out;
	for (size_t i = 0; i < a->n_postings; i++) {
		cJSON *p = cJSON_CreateObject();

		if (!p)
			goto out;
		cJSON_AddItemToArray(ps, p);
		if (!cJSON_AddStringToObject(p, "a", a->postings[i].account) ||
		    canon_add_i64(p, "d", a->postings[i].delta) < 0)
			goto out;
	}
	if (a->usage) {
		d = cJSON_AddObjectToObject(o, "usage");
		hex_encode(a->usage->record_hash, SHA256_LEN, hex);
		if (!d || !cJSON_AddStringToObject(d, "node", a->usage->node) ||
		    canon_add_u64(d, "node_seq", a->usage->node_seq) < 0 ||
		    !cJSON_AddStringToObject(d, "record", hex) ||
		    !cJSON_AddStringToObject(d, "task", a->usage->task))
			goto out;
	}
	if (a->data) {
		d = cJSON_Duplicate(a->data, 1);
		if (!d)
			goto out;
		cJSON_AddItemToObject(o, "data", d);
	}
	r = canon_print(o, ret, ret_len);
out:
	cJSON_Delete(o);
	return r;
}

static int append_rows(struct ledger *l, const struct ledger_append_args *a, const struct net *v,
		       size_t n, const char *body, size_t body_len, const uint8_t hash[32])
{
	sqlite3_stmt *st = l->st[ST_INSERT_ENTRY];
	int r;

	sqlite3_bind_int64(st, 1, (int64_t)(l->size + 1));
	sqlite3_bind_blob(st, 2, hash, SHA256_LEN, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, a->kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, a->cause, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, body, (int)body_len, SQLITE_STATIC);
	r = ledger_sql_errno(sqlite3_step(st));
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (r < 0)
		return r;
	st = l->st[ST_ADD_BALANCE];
	for (size_t i = 0; i < n; i++) {
		if (v[i].delta == 0)
			continue;
		sqlite3_bind_text(st, 1, v[i].account, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, v[i].delta);
		r = ledger_sql_errno(sqlite3_step(st));
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		if (r < 0)
			return r == -EEXIST ? -EIO : r;
	}
	if (a->usage) {
		st = l->st[ST_INSERT_USAGE];
		sqlite3_bind_blob(st, 1, a->usage->record_hash, SHA256_LEN, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, a->usage->node, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, (int64_t)a->usage->node_seq);
		sqlite3_bind_int64(st, 4, (int64_t)(l->size + 1));
		sqlite3_bind_text(st, 5, a->usage->task, -1, SQLITE_STATIC);
		r = ledger_sql_errno(sqlite3_step(st));
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
	}
	return r;
}

int ledger_append(struct ledger *l, const struct ledger_append_args *a, uint64_t *ret_seq)
{
	_cleanup_free_ struct net *v = NULL;
	_cleanup_free_ char *body = NULL;
	uint8_t hash[SHA256_LEN];
	size_t n = 0, body_len = 0;
	bool own_tx = false;
	int r;

	if (!a || !kind_valid(a->kind) || !ledger_cause_valid(a->cause) || a->time_ns < 0 ||
	    a->epoch > INT64_MAX || (a->data && !cJSON_IsObject(a->data)))
		return -EINVAL;
	if (a->usage && (!ledger_account_valid(a->usage->node) || a->usage->node_seq > INT64_MAX ||
			 !ledger_cause_valid(a->usage->task)))
		return -EINVAL;
	r = fold_postings(a, &v, &n);
	if (r < 0)
		return r;

	if (!l->batch) {
		r = ledger_begin(l);
		if (r < 0)
			return r;
		own_tx = true;
	}
	/* idempotency: the same cause, record or (node, seq) never counts twice */
	r = ledger_has_cause(l, a->kind, a->cause);
	if (r == 0 && a->usage)
		r = ledger_usage_seen(l, a->usage->record_hash, a->usage->node, a->usage->node_seq);
	if (r > 0)
		r = -EEXIST;
	/* funds: nothing but mint may end below zero */
	for (size_t i = 0; r >= 0 && i < n; i++) {
		int64_t bal = 0;

		r = ledger_balance(l, v[i].account, &bal);
		if (r < 0)
			break;
		if ((v[i].delta > 0 && bal > INT64_MAX - v[i].delta) ||
		    (v[i].delta < 0 && bal < INT64_MIN - v[i].delta))
			r = -ERANGE;
		else if (bal + v[i].delta < 0 && strcmp(v[i].account, LEDGER_MINT) != 0)
			r = -ENOSPC;
	}
	if (r >= 0)
		r = build_body(l, a, &body, &body_len);
	if (r >= 0 && body_len > LEDGER_BODY_MAX)
		r = -E2BIG;
	if (r < 0)
		goto fail;
	sha256(body, body_len, hash);

	r = exec(l->db, "SAVEPOINT ledger_append");
	if (r < 0)
		goto fail;
	r = append_rows(l, a, v, n, body, body_len, hash);
	if (r < 0) {
		exec(l->db, "ROLLBACK TO ledger_append");
		exec(l->db, "RELEASE ledger_append");
		goto fail;
	}
	r = exec(l->db, "RELEASE ledger_append");
	if (r < 0)
		goto fail;
	l->size++;
	memcpy(l->head, hash, SHA256_LEN);
	if (own_tx) {
		r = ledger_commit(l);
		if (r < 0)
			return r;
	}
	if (ret_seq)
		*ret_seq = l->size;
	return 0;
fail:
	if (own_tx)
		ledger_rollback(l);
	return r;
}

/* ---- Merkle tree head ---- */

int ledger_tree_head(struct ledger *l, uint64_t *ret_size, uint8_t ret_root[32])
{
	static const char sql[] =
		"SELECT seq, body FROM ledger_entries WHERE seq > ?1 ORDER BY seq";
	sqlite3_stmt *st;
	uint64_t next;
	int rc, r = 0;

	if (!l->tree) {
		r = merkle_new(&l->tree);
		if (r < 0)
			return r;
	}
	/* a rolled-back batch may have left leaves beyond the ledger */
	if (merkle_size(l->tree) > l->size) {
		r = merkle_truncate(l->tree, l->size);
		if (r < 0)
			return r;
	}
	next = merkle_size(l->tree);
	if (next < l->size) {
		st = ledger_stmt(l, sql);
		if (!st)
			return -EIO;
		sqlite3_bind_int64(st, 1, (int64_t)next);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			if ((uint64_t)sqlite3_column_int64(st, 0) != next + 1) {
				r = -EBADMSG;
				break;
			}
			r = merkle_append(l->tree, sqlite3_column_text(st, 1),
					  (size_t)sqlite3_column_bytes(st, 1));
			if (r < 0)
				break;
			next++;
		}
		if (!r && rc != SQLITE_DONE)
			r = ledger_sql_errno(rc);
		sqlite3_reset(st);
		if (r < 0) {
			l->tree = merkle_free(l->tree);
			return r;
		}
	}
	if (merkle_size(l->tree) != l->size)
		return -EBADMSG;
	*ret_size = l->size;
	return merkle_root(l->tree, l->size, ret_root);
}

int ledger_checkpoint(struct ledger *l, EVP_PKEY *key, const char *origin, char **ret_note)
{
	struct checkpoint c = {0};
	int r;

	if (!key || !origin ||
	    strncmp(origin, LEDGER_ORIGIN_PREFIX, strlen(LEDGER_ORIGIN_PREFIX)) != 0 ||
	    strlen(origin) > CHECKPOINT_ORIGIN_MAX)
		return -EINVAL;
	/* an open transaction (ours or a joined one) may hold entries a crash would lose */
	if (l->batch || !sqlite3_get_autocommit(l->db))
		return -EBUSY;
	r = ledger_tree_head(l, &c.size, c.root);
	if (r < 0)
		return r;
	snprintf(c.origin, sizeof(c.origin), "%s", origin);
	return checkpoint_sign(&c, key, ret_note);
}

/* ---- verification ---- */

/* A string-keyed open-addressing map for the replay (accounts, records). */
struct smap_slot {
	char *key;
	int64_t val;
};
struct smap {
	struct smap_slot *slots;
	size_t cap, n;
};

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
	return h;
}

static void smap_done(struct smap *m)
{
	for (size_t i = 0; i < m->cap; i++)
		free(m->slots[i].key);
	free(m->slots);
	*m = (struct smap){NULL, 0, 0};
}

static struct smap_slot *smap_slot(struct smap *m, const char *key)
{
	size_t i = fnv1a(key) & (m->cap - 1);

	while (m->slots[i].key && strcmp(m->slots[i].key, key) != 0)
		i = (i + 1) & (m->cap - 1);
	return &m->slots[i];
}

/* The slot for key, created with val 0 when absent; *ret_new tells which. */
static int smap_get(struct smap *m, const char *key, struct smap_slot **ret, bool *ret_new)
{
	struct smap_slot *s;

	if ((m->n + 1) * 2 > m->cap) {
		struct smap g = {NULL, m->cap ? m->cap * 2 : 1024, 0};

		g.slots = calloc(g.cap, sizeof(*g.slots));
		if (!g.slots)
			return -ENOMEM;
		for (size_t i = 0; i < m->cap; i++)
			if (m->slots[i].key)
				*smap_slot(&g, m->slots[i].key) = m->slots[i];
		g.n = m->n;
		free(m->slots);
		*m = g;
	}
	s = smap_slot(m, key);
	*ret_new = !s->key;
	if (!s->key) {
		s->key = strdup(key);
		if (!s->key)
			return -ENOMEM;
		s->val = 0;
		m->n++;
	}
	*ret = s;
	return 0;
}

static int fail_at(struct ledger_report *rep, uint64_t seq, const char *fmt, ...) _printf_(3, 4);
static int fail_at(struct ledger_report *rep, uint64_t seq, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rep->reason, sizeof(rep->reason), fmt, ap);
	va_end(ap);
	rep->bad_seq = seq;
	return -EBADMSG;
}

struct replay {
	struct smap balances; /* account -> balance */
	struct smap seen;     /* "k:" kind/cause, "r:" record, "n:" node/seq -> 1 */
	uint8_t prev[SHA256_LEN];
};

static int seen_once(struct replay *rp, const char *key)
{
	struct smap_slot *s;
	bool fresh;
	int r = smap_get(&rp->seen, key, &s, &fresh);

	return r < 0 ? r : fresh ? 0 : 1;
}

static int replay_entry(struct replay *rp, uint64_t seq, const uint8_t *hash, const char *kind,
			const char *cause, const char *body, size_t body_len, cJSON **ret_tree,
			struct ledger_report *rep)
{
	cJSON *t = NULL;
	const cJSON *ps, *p, *u;
	const char *s, *err = NULL, *acct;
	uint8_t h[SHA256_LEN], prev[SHA256_LEN];
	uint64_t useq, nseq;
	int64_t d, v;
	__int128 sum = 0;
	_cleanup_free_ char *key = NULL;
	int r;

	sha256(body, body_len, h);
	if (memcmp(h, hash, SHA256_LEN) != 0)
		return fail_at(rep, seq, "entry %" PRIu64 ": body does not hash to its hash", seq);
	r = canon_parse(body, body_len, 8, &t, &err);
	if (r < 0)
		return fail_at(rep, seq, "entry %" PRIu64 ": body is not valid JSON: %s", seq,
			       err ? err : "?");
	*ret_tree = t;
	if (canon_get_i64(t, "v", &v) < 0 || v != 1)
		return fail_at(rep, seq, "entry %" PRIu64 ": unknown version", seq);
	if (canon_get_u64(t, "seq", &useq) < 0 || useq != seq)
		return fail_at(rep, seq, "entry %" PRIu64 ": body names another seq", seq);
	if (canon_get_str(t, "prev", &s) < 0 || hex_decode(s, strlen(s), prev, SHA256_LEN) < 0 ||
	    memcmp(prev, rp->prev, SHA256_LEN) != 0)
		return fail_at(rep, seq, "entry %" PRIu64 ": chain broken (prev hash differs)",
			       seq);
	if (canon_get_str(t, "kind", &s) < 0 || strcmp(s, kind) != 0 || !kind_valid(s) ||
	    canon_get_str(t, "cause", &s) < 0 || strcmp(s, cause) != 0 || !ledger_cause_valid(s))
		return fail_at(rep, seq, "entry %" PRIu64 ": kind or cause differ from the index",
			       seq);
	if (canon_get_u64(t, "epoch", &useq) < 0 || canon_get_i64(t, "time", &v) < 0)
		return fail_at(rep, seq, "entry %" PRIu64 ": epoch or time missing", seq);
	if (asprintf(&key, "k:%s\n%s", kind, cause) < 0)
		return -ENOMEM;
	r = seen_once(rp, key);
	if (r)
		return r < 0 ? r
			     : fail_at(rep, seq, "entry %" PRIu64 ": cause %s/%s repeated", seq,
				       kind, cause);
	u = cJSON_GetObjectItemCaseSensitive(t, "usage");
	if (u) {
		if (canon_get_str(u, "record", &s) < 0 || strlen(s) != SHA256_HEX_LEN ||
		    canon_get_u64(u, "node_seq", &nseq) < 0 || canon_get_str(u, "node", &acct) < 0)
			return fail_at(rep, seq, "entry %" PRIu64 ": malformed usage reference",
				       seq);
		free(key);
		key = NULL;
		if (asprintf(&key, "r:%s", s) < 0)
			return -ENOMEM;
		r = seen_once(rp, key);
		if (r)
			return r < 0 ? r
				     : fail_at(rep, seq,
					       "entry %" PRIu64
					       ": usage record %.16s... paid twice",
					       seq, s);
		free(key);
		key = NULL;
		if (asprintf(&key, "n:%s\n%" PRIu64, acct, nseq) < 0)
			return -ENOMEM;
		r = seen_once(rp, key);
		if (r)
			return r < 0 ? r
				     : fail_at(rep, seq,
					       "entry %" PRIu64 ": node %s sequence %" PRIu64
					       " paid twice",
					       seq, acct, nseq);
		rep->usage_records++;
	}
	ps = cJSON_GetObjectItemCaseSensitive(t, "postings");
	if (!cJSON_IsArray(ps))
		return fail_at(rep, seq, "entry %" PRIu64 ": no postings array", seq);
	cJSON_ArrayForEach (p, ps) {
		struct smap_slot *sl;
		bool fresh;

		if (canon_get_str(p, "a", &acct) < 0 || !ledger_account_valid(acct) ||
		    canon_get_i64(p, "d", &d) < 0 || d == 0 || d == INT64_MIN)
			return fail_at(rep, seq, "entry %" PRIu64 ": malformed posting", seq);
		r = smap_get(&rp->balances, acct, &sl, &fresh);
		if (r < 0)
			return r;
		if ((d > 0 && sl->val > INT64_MAX - d) || (d < 0 && sl->val < INT64_MIN - d))
			return fail_at(rep, seq, "entry %" PRIu64 ": balance of %s overflows", seq,
				       acct);
		sl->val += d;
		sum += d;
	}
	if (sum != 0)
		return fail_at(rep, seq, "entry %" PRIu64 ": postings do not sum to zero", seq);
	/* after the whole entry (an account may appear twice), nothing but mint is negative */
	cJSON_ArrayForEach (p, ps) {
		struct smap_slot *sl;
		bool fresh;

		canon_get_str(p, "a", &acct);
		r = smap_get(&rp->balances, acct, &sl, &fresh);
		if (r < 0)
			return r;
		if (sl->val < 0 && strcmp(acct, LEDGER_MINT) != 0)
			return fail_at(rep, seq, "entry %" PRIu64 ": %s goes negative", seq, acct);
	}
	memcpy(rp->prev, h, SHA256_LEN);
	return 0;
}

static int compare_balances(sqlite3 *db, struct replay *rp, struct ledger_report *rep)
{
	sqlite3_stmt *st = NULL;
	uint64_t rows = 0, nonzero = 0;
	int rc, r = 0;

	rc = sqlite3_prepare_v2(db, "SELECT account, balance FROM ledger_balances", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return ledger_sql_errno(rc);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *acct = (const char *)sqlite3_column_text(st, 0);
		int64_t bal = sqlite3_column_int64(st, 1);
		struct smap_slot *sl;

		rows++;
		if (!acct || !ledger_account_valid(acct)) {
			r = fail_at(rep, 0, "balances table holds a malformed account");
			break;
		}
		sl = rp->balances.cap ? smap_slot(&rp->balances, acct) : NULL;
		if (!sl || !sl->key) {
			if (bal != 0) {
				r = fail_at(rep, 0, "account %s has a balance but no entries",
					    acct);
				break;
			}
			continue;
		}
		if (sl->val != bal) {
			r = fail_at(rep, 0,
				    "account %s: balance %" PRId64 " but replay gives %" PRId64,
				    acct, bal, sl->val);
			break;
		}
	}
	if (!r && rc != SQLITE_DONE)
		r = ledger_sql_errno(rc);
	sqlite3_finalize(st);
	if (r)
		return r;
	for (size_t i = 0; i < rp->balances.cap; i++)
		if (rp->balances.slots[i].key && rp->balances.slots[i].val != 0)
			nonzero++;
	(void)rows;
	/* every non-zero replayed account must have been matched by a table row */
	{
		uint64_t matched = 0;

		rc = sqlite3_prepare_v2(db,
					"SELECT count(*) FROM ledger_balances WHERE balance != 0",
					-1, &st, NULL);
		if (rc != SQLITE_OK)
			return ledger_sql_errno(rc);
		if (sqlite3_step(st) == SQLITE_ROW)
			matched = (uint64_t)sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
		if (matched != nonzero)
			return fail_at(rep, 0,
				       "balances table has %" PRIu64
				       " non-zero accounts, replay %" PRIu64,
				       matched, nonzero);
	}
	return 0;
}

int ledger_verify(sqlite3 *db, ledger_visit_fn visit, void *ctx, struct ledger_report *ret)
{
	return ledger_verify_tree(db, visit, ctx, NULL, ret);
}

int ledger_verify_tree(sqlite3 *db, ledger_visit_fn visit, void *ctx, struct merkle_tree *tree,
		       struct ledger_report *ret)
{
	struct replay rp = {{NULL, 0, 0}, {NULL, 0, 0}, {0}};
	struct ledger_report rep = {0};
	sqlite3_stmt *st = NULL;
	uint64_t expect = 1;
	__int128 total = 0;
	int rc, r = 0;

	rc = sqlite3_exec(db, "BEGIN", NULL, NULL, NULL); /* one consistent snapshot */
	if (rc != SQLITE_OK)
		return ledger_sql_errno(rc);
	rc = sqlite3_prepare_v2(db,
				"SELECT seq, hash, kind, cause, body FROM ledger_entries "
				"ORDER BY seq",
				-1, &st, NULL);
	if (rc != SQLITE_OK) {
		r = ledger_sql_errno(rc);
		goto out;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		uint64_t seq = (uint64_t)sqlite3_column_int64(st, 0);
		const void *hash = sqlite3_column_blob(st, 1);
		const char *kind = (const char *)sqlite3_column_text(st, 2);
		const char *cause = (const char *)sqlite3_column_text(st, 3);
		const char *body = (const char *)sqlite3_column_text(st, 4);
		size_t body_len = (size_t)sqlite3_column_bytes(st, 4);
		cJSON *parsed = NULL;

		if (seq != expect) {
			r = fail_at(&rep, expect, "entry %" PRIu64 " missing (found %" PRIu64 ")",
				    expect, seq);
			break;
		}
		if (sqlite3_column_bytes(st, 1) != SHA256_LEN || !kind || !cause || !body) {
			r = fail_at(&rep, seq, "entry %" PRIu64 ": malformed row", seq);
			break;
		}
		r = replay_entry(&rp, seq, hash, kind, cause, body, body_len, &parsed, &rep);
		if (r == 0 && tree)
			r = merkle_append(tree, body, body_len);
		if (r == 0 && visit) {
			r = visit(ctx, seq, parsed, rep.reason, sizeof(rep.reason));
			if (r < 0) {
				rep.bad_seq = seq;
				if (!rep.reason[0])
					snprintf(rep.reason, sizeof(rep.reason),
						 "entry %" PRIu64 ": refused by check", seq);
				r = -EBADMSG;
			}
		}
		cJSON_Delete(parsed);
		if (r < 0)
			break;
		expect++;
	}
	if (!r && rc != SQLITE_DONE)
		r = ledger_sql_errno(rc);
	sqlite3_finalize(st);
	if (r)
		goto out;
	rep.entries = expect - 1;
	memcpy(rep.head, rp.prev, SHA256_LEN);
	if (tree)
		merkle_root(tree, merkle_size(tree), rep.root);
	r = compare_balances(db, &rp, &rep);
	if (r)
		goto out;
	for (size_t i = 0; i < rp.balances.cap; i++) {
		if (!rp.balances.slots[i].key)
			continue;
		rep.accounts++;
		if (strcmp(rp.balances.slots[i].key, LEDGER_MINT) == 0)
			rep.minted = -rp.balances.slots[i].val;
		else
			total += rp.balances.slots[i].val;
	}
	rep.total = (int64_t)total;
	if (total != rep.minted)
		r = fail_at(&rep, 0,
			    "conservation broken: balances sum to %" PRId64 ", minted %" PRId64,
			    rep.total, rep.minted);
out:
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	smap_done(&rp.balances);
	smap_done(&rp.seen);
	*ret = rep;
	return r;
}
