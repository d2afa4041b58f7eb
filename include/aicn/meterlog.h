/* meterlog.h -- the node's append-only meter log: signed, chained records, a Merkle tree, signed checkpoints, offline verification. */
#ifndef AICN_METERLOG_H
#define AICN_METERLOG_H

#include <aicn/checkpoint.h>
#include <aicn/merkle.h>
#include <aicn/record.h>

#include <stddef.h>
#include <stdint.h>

/*
 * The file: one canonical JSON object per line.  Record lines (interval, final,
 * heartbeat) form the chain c_i = SHA-256(c_(i-1) || line_i), c_(-1) = 32 zero
 * bytes, each line carrying c_(i-1) as "prev", and are the leaves of an RFC 6962
 * tree.  Checkpoint lines {"note":"<signed note>","type":"checkpoint"} seal the
 * records before them: their size is the number of records that precede them.
 */

#define METERLOG_ORIGIN_PREFIX "aicn/meter/"

struct meterlog_opts {
	uint64_t checkpoint_every;	 /* seal after this many records (default 1000) */
	uint64_t checkpoint_interval_ns; /* ... or this long after the first unsealed one (60 s) */
	uint64_t heartbeat_interval_ns;	 /* idle this long: append a heartbeat (default 60 s) */
	uint32_t sync_batch;		 /* flush by itself once this many lines wait (64) */
	uint64_t (*clock_ns)(void);	 /* realtime clock, for tests (default CLOCK_REALTIME) */
};

/* What opening found. */
struct meterlog_recovery {
	uint64_t records;     /* records in the log */
	uint64_t checkpoints; /* checkpoint lines */
	uint64_t torn_bytes;  /* bytes of an incomplete last line, dropped (saved to PATH.torn) */
	uint64_t sealed_on_open; /* unsealed records found and sealed by a new checkpoint */
};

struct meterlog;

/*
 * Open (creating) the log at path for appending with the node key.  A torn
 * last line (no newline: a write the crash cut short, never acknowledged) is
 * dropped; any other damage refuses to open (-EBADMSG, reason in *ret_err).
 * Records not yet covered by a checkpoint are sealed; the sequence continues.
 * The file is locked (-EBUSY when another process has it open).
 */
int meterlog_open(const char *path, EVP_PKEY *key, const struct meterlog_opts *opts,
		  struct meterlog **ret_ml, struct meterlog_recovery *ret_rec,
		  const char **ret_err);

/*
 * Append a record: sets version, node, seq, prev, time and sig in *rec, and
 * queues its line.  It is on disk once meterlog_flush() returned (or an
 * automatic flush of a full batch).  Send nothing before that.
 */
int meterlog_append(struct meterlog *ml, struct usage_record *rec);
/* Write every queued line and fdatasync; on error nothing acknowledged is lost and it can be retried. */
int meterlog_flush(struct meterlog *ml);
/* Write a checkpoint for the records so far (if any are unsealed) and flush. */
int meterlog_checkpoint(struct meterlog *ml);
/* Periodic duties at time now: heartbeat when idle, checkpoint when due, flush. */
int meterlog_tick(struct meterlog *ml);
/* Seal (checkpoint), flush and free.  Returns the first error; frees in any case. */
int meterlog_close(struct meterlog *ml);
/* Free without sealing or flushing (what a crash leaves).  Accepts NULL, returns NULL. */
struct meterlog *meterlog_free(struct meterlog *ml);

uint64_t meterlog_size(const struct meterlog *ml);    /* records appended */
uint64_t meterlog_durable(const struct meterlog *ml); /* records fsync'd */
uint64_t meterlog_sealed(const struct meterlog *ml);  /* records covered by the latest checkpoint */
/* The latest checkpoint note (NULL before the first); owned by ml. */
const char *meterlog_latest_checkpoint(const struct meterlog *ml);
const struct merkle_tree *meterlog_tree(const struct meterlog *ml);
const char *meterlog_path(const struct meterlog *ml);

/* ---- reading and verifying (offline, aicnctl audit) ---------------------- */

enum meterlog_fail {
	ML_OK,
	ML_MALFORMED,	     /* a line that is not a valid record or checkpoint */
	ML_BAD_SIGNATURE,    /* record signature does not verify with the key */
	ML_WRONG_NODE,	     /* record of another node */
	ML_BROKEN_CHAIN,     /* "prev" is not the chain value of the record before */
	ML_SEQ_GAP,	     /* a sequence number is missing (deleted record) */
	ML_SEQ_REORDER,	     /* a sequence number repeats or goes back (duplicate, swap) */
	ML_TIME_BACKWARDS,   /* "time" decreased */
	ML_CP_BAD_SIGNATURE, /* checkpoint not signed by the node key */
	ML_CP_SIZE,	     /* checkpoint size differs from the records before it (truncation) */
	ML_CP_MISSING,	     /* a checkpoint names a previous one the log lacks (deleted line) */
	ML_CP_ROOT,	     /* checkpoint root differs from the records (altered after sealing) */
	ML_CP_INCONSISTENT,  /* two checkpoints both signed but inconsistent: a lying log */
	ML_TRUNCATED,	     /* a checkpoint held by the auditor covers records the log lacks */
	ML_UNSEALED_TAIL,    /* records after the last checkpoint */
	ML_TORN_TAIL,	     /* an incomplete last line */
	ML_EMPTY,	     /* no records */
};

const char *meterlog_fail_name(enum meterlog_fail f);

struct meterlog_verify_opts {
	EVP_PKEY *pub;	      /* the node's public key (required) */
	int checkpoints_only; /* hashes and checkpoint signatures, not every record signature */
	int strict;	      /* also parse every record fully: schema and canonical form */
	unsigned threads;     /* 0: one per online CPU */
	const char *const *external; /* NULL-terminated signed notes the auditor holds */
};

struct meterlog_verify_result {
	uint64_t lines;		  /* lines read */
	uint64_t records;	  /* record lines */
	uint64_t checkpoints;	  /* checkpoint lines */
	uint64_t sealed;	  /* records covered by the last valid checkpoint */
	uint64_t failures;	  /* problems found (verification goes on after the first) */
	enum meterlog_fail fail;  /* the first problem */
	uint64_t fail_line;	  /* its 1-based line number (0: not a line) */
	uint64_t fail_seq;	  /* the record's sequence number, if any */
	char reason[512];	  /* the first problem in words */
	int lying;		  /* two validly signed checkpoints contradict each other */
	char lying_detail[512];	  /* which ones */
	uint8_t root[SHA256_LEN]; /* root over all records */
};

/* Verify a whole log held in memory; 0 when everything holds, -EBADMSG when not (see res). */
int meterlog_verify(const char *buf, size_t len, const struct meterlog_verify_opts *o,
		    struct meterlog_verify_result *res);
/* The same for a file (mapped read-only). */
int meterlog_verify_file(const char *path, const struct meterlog_verify_opts *o,
			 struct meterlog_verify_result *res);

/* ---- proofs ------------------------------------------------------------- */

/*
 * An inclusion proof file for record seq against the latest checkpoint that
 * covers it: canonical JSON {"checkpoint","index","proof":[base64...],
 * "record","type":"inclusion"}.  From a log file (no key needed) or from the
 * running agent's log.
 */
int meterlog_prove_file(const char *path, uint64_t seq, char **ret_json, const char **ret_err);
int meterlog_prove(const struct meterlog *ml, uint64_t seq, char **ret_json);
/* A consistency proof between two checkpoint sizes of the log: {"new","old","proof","type":"consistency"}. */
int meterlog_prove_consistency_file(const char *path, uint64_t old_size, uint64_t new_size,
				    char **ret_json, const char **ret_err);
/*
 * Check a proof file with the node's public key: checkpoint signature(s),
 * record signature and inclusion, or consistency.  0 when it holds, -EBADMSG
 * with a reason when not; *ret_summary (free it) says what was proven.
 */
int meterlog_check_proof(const char *json, size_t len, EVP_PKEY *pub, char **ret_summary,
			 const char **ret_err);

#endif /* AICN_METERLOG_H */
