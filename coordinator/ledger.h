/* ledger.h -- the coordinator's double-entry, append-only, hash-chained AICN ledger in SQLite. */
#ifndef AICN_COORD_LEDGER_H
#define AICN_COORD_LEDGER_H

#include <aicn/compiler.h>

#include <cjson/cJSON.h>
#include <openssl/types.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Every balance change is one entry: a set of postings (account, signed amount in
 * base units) that sums to zero, a kind, and a cause that is unique per kind (a
 * usage record hash, an epoch, a proposal, a request id).  Appending an entry whose
 * (kind, cause) is already present returns -EEXIST and changes nothing: every
 * operation is idempotent, and a replayed usage record pays nothing.
 *
 * Entry body (what is hashed; canonical JSON, see canon.h):
 *   {"cause":C,"data":{...},"epoch":E,"kind":K,"postings":[{"a":ACCOUNT,"d":DELTA},...],
 *    "prev":HEX(hash of entry seq-1, zeros for seq 1),"seq":N,"time":UNIX_NS,"v":1}
 * The entry hash is SHA-256(body); each body names its predecessor's hash, so the
 * entries form a chain and the Merkle tree's leaves are the bodies in seq order.
 *
 * Only the account "mint" may go negative: -balance(mint) is the total ever minted,
 * and the sum of every other balance equals it at all times (conservation).
 */

#define LEDGER_MINT "mint"
#define LEDGER_TREASURY "treasury"
#define LEDGER_FEE_MAINT "fee:maintenance"
#define LEDGER_FEE_DEV "fee:development"
#define LEDGER_FEE_STAKING "fee:staking"
#define LEDGER_ACCOUNT_MAX 128	  /* bytes of an account name: [A-Za-z0-9:._@-] */
#define LEDGER_CAUSE_MAX 256	  /* bytes of a cause: printable ASCII */
#define LEDGER_KIND_MAX 32	  /* bytes of a kind: [a-z_] */
#define LEDGER_MAX_POSTINGS 65536 /* per entry */
#define LEDGER_BODY_MAX (16 << 20)

struct ledger;

struct ledger_posting {
	const char *account;
	int64_t delta; /* base units; credits positive, debits negative */
};

/* A settled usage record; (record hash) and (node, seq) are each accepted once. */
struct ledger_usage_ref {
	uint8_t record_hash[32];
	const char *node;
	uint64_t node_seq;
	const char *task; /* the task it ran for */
};

struct ledger_append_args {
	const char *kind;
	const char *cause;
	int64_t time_ns;
	uint64_t epoch;
	const struct ledger_posting *postings;
	size_t n_postings;
	const struct ledger_usage_ref *usage; /* NULL unless the entry settles a record */
	const cJSON *data;		      /* optional object kept in the body; borrowed */
};

/* Create every ledger_* table (the ledger's, settlement's and governance's) if missing;
 * idempotent; run inside no transaction. */
int ledger_migrate(sqlite3 *db);
/* Prepare statements and load the head; db stays the caller's. */
int ledger_new(sqlite3 *db, struct ledger **ret);
struct ledger *ledger_free(struct ledger *l);
sqlite3 *ledger_db(struct ledger *l);

/*
 * Batches: appends between begin and commit are committed together (one fsync).
 * Outside a batch every append is its own transaction.  Each append is atomic
 * inside a batch too (a savepoint): a refused entry leaves no trace.
 */
int ledger_begin(struct ledger *l);
int ledger_commit(struct ledger *l);
int ledger_rollback(struct ledger *l);
bool ledger_in_batch(struct ledger *l);

/*
 * Join a transaction its owner opened on the same handle (the coordinator's store
 * batch, see store_write_begin): appends become part of it and the owner commits
 * (one fsync for the tasks and their money).  -EINVAL when no transaction is open,
 * -EBUSY inside a batch.  ledger_leave ends the joined stretch; the head then
 * includes entries still pending in the owner's transaction, so a checkpoint is
 * refused until it commits.  If the owner rolls back instead, ledger_reload()
 * reads the head again.
 */
int ledger_join(struct ledger *l);
void ledger_leave(struct ledger *l);
int ledger_reload(struct ledger *l);

/*
 * A unit of work spanning several appends and the modules' own ledger_* tables
 * (settle.c, gov.c): all of it lands or none of it.  Begins its own transaction
 * outside a batch, a savepoint inside one.  ledger_unit_end(l, &u, r) commits when
 * r >= 0 and undoes everything otherwise; it returns r, or the commit's error.
 */
struct ledger_unit {
	bool own_tx;   /* began a transaction of its own */
	uint64_t size; /* head at the start, restored on failure */
	uint8_t head[32];
};
int ledger_unit_begin(struct ledger *l, struct ledger_unit *u);
int ledger_unit_end(struct ledger *l, struct ledger_unit *u, int r);

/*
 * Append one entry.  -EINVAL malformed (names, sum not zero, no postings is allowed
 * only for records of decisions), -EEXIST (kind, cause) or the usage record already
 * present, -ENOSPC an account other than mint would go negative (insufficient funds),
 * -EIO on a database error.  *ret_seq (may be NULL) is the new entry's number.
 */
int ledger_append(struct ledger *l, const struct ledger_append_args *a, uint64_t *ret_seq);

int ledger_balance(struct ledger *l, const char *account, int64_t *ret);
/* 1 present, 0 absent, <0 error. */
int ledger_has_cause(struct ledger *l, const char *kind, const char *cause);
int ledger_usage_seen(struct ledger *l, const uint8_t record_hash[32], const char *node,
		      uint64_t node_seq);
/* Number of entries and the last entry's hash (zeros when empty). */
void ledger_head(struct ledger *l, uint64_t *ret_size, uint8_t ret_hash[32]);

/*
 * A prepared statement for sql, cached on the ledger by the address of sql (pass
 * string literals only), reset and unbound; NULL on error.  For settle.c and gov.c.
 */
sqlite3_stmt *ledger_stmt(struct ledger *l, const char *sql);
/* SQLite result code as a negative errno (0 for OK, ROW, DONE; CONSTRAINT is -EEXIST). */
int ledger_sql_errno(int rc);
/* Step a statement that returns no rows and reset it; -EIO for NULL (ledger_stmt failed). */
int ledger_stmt_run(sqlite3_stmt *st);

/* The entry data objects the modules build are freed on every path. */
static inline void ledger_json_freep(cJSON **p)
{
	cJSON_Delete(*p);
}
#define _cleanup_json_ _cleanup_(ledger_json_freep)

/* Syntactic checks, exported for the modules that build names. */
bool ledger_account_valid(const char *s);
bool ledger_cause_valid(const char *s);

/* ---- offline verification ---- */

struct ledger_report {
	uint64_t entries;	/* entries replayed */
	uint64_t accounts;	/* accounts ever touched */
	uint64_t usage_records; /* distinct settled usage records */
	int64_t minted;		/* -balance(mint) */
	int64_t total;		/* sum of all other balances (== minted when sound) */
	uint8_t head[32];	/* hash of the last entry */
	uint8_t root[32];	/* RFC 6962 root over every body (with a tree) */
	uint64_t bad_seq;	/* first failing entry, 0 if none */
	char reason[192];	/* why verification failed */
};

/*
 * Replay the whole ledger: seq contiguous from 1, each body hashes to its stored hash
 * and names its predecessor, kind and cause match the columns, postings sum to zero,
 * no account but mint ever negative, (kind, cause), record hashes and (node, seq)
 * unique, and the balances table equals what the replay gives.  0 sound,
 * -EBADMSG unsound (report says where and why), other negative errno on I/O.
 * Callback (may be NULL) sees each parsed body for further checks (rewards, fees);
 * a negative return stops and fails with its reason.
 */
typedef int (*ledger_visit_fn)(void *ctx, uint64_t seq, const cJSON *body, char *reason,
			       size_t reason_len);
int ledger_verify(sqlite3 *db, ledger_visit_fn visit, void *ctx, struct ledger_report *ret);
/* The same, also appending every body as a leaf to tree (an empty merkle_tree), so the
 * caller can check a signed checkpoint against the root at the checkpoint's size. */
struct merkle_tree;
int ledger_verify_tree(sqlite3 *db, ledger_visit_fn visit, void *ctx, struct merkle_tree *tree,
		       struct ledger_report *ret);

/*
 * The RFC 6962 Merkle tree head over the entry bodies (leaf i = body of entry i+1):
 * size and root.  The tree is built on first use and kept up to date incrementally,
 * so signing a checkpoint after each batch is cheap.
 */
int ledger_tree_head(struct ledger *l, uint64_t *ret_size, uint8_t ret_root[32]);

/*
 * A C2SP signed checkpoint (same format as the meter log's, see checkpoint.h) of the
 * committed ledger, signed with the coordinator's Ed25519 key under origin (which
 * must start with LEDGER_ORIGIN_PREFIX).  Refused inside a batch or while any
 * transaction is open on the handle (-EBUSY): a checkpoint only ever covers
 * committed entries.  free() *ret_note.
 */
#define LEDGER_ORIGIN_PREFIX "aicn/ledger/"
int ledger_checkpoint(struct ledger *l, EVP_PKEY *key, const char *origin, char **ret_note);

#endif /* AICN_COORD_LEDGER_H */
