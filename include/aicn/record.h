/* record.h -- signed usage records: the struct the agent fills, canonical JSON lines, Ed25519 signatures. */
#ifndef AICN_RECORD_H
#define AICN_RECORD_H

#include <aicn/hash.h>
#include <aicn/key.h>

#include <stddef.h>
#include <stdint.h>

#define RECORD_VERSION 1
#define RECORD_LINE_MAX 4096 /* bytes in one record line, newline excluded */
#define RECORD_ID_MAX 128    /* task and renter ids: 1..128 of [A-Za-z0-9._:@-] */

/* What a record says; docs/formats.md specifies every field. */
enum record_type {
	RECORD_INTERVAL,  /* "interval": a running task's usage so far (at least every 60 s) */
	RECORD_FINAL,	  /* "final": the task ended; closes it */
	RECORD_HEARTBEAT, /* "heartbeat": no task, the node was up and the log was idle */
};

enum record_exit_kind {
	RECORD_EXIT_RUNNING,   /* "running": interval records */
	RECORD_EXIT_EXITED,    /* "exited": exit_status is the exit code */
	RECORD_EXIT_SIGNALED,  /* "signaled": exit_status is the signal number */
	RECORD_EXIT_OOM,       /* "oom": killed by the memory limit */
	RECORD_EXIT_TIMEOUT,   /* "timeout": killed at the task's time limit */
	RECORD_EXIT_CANCELLED, /* "cancelled": killed on the renter's or coordinator's request */
	RECORD_EXIT_ERROR,     /* "error": the agent could not run it (exit_status is -errno) */
	RECORD_EXIT_LOST,      /* "lost": the agent restarted and found the task gone */
	RECORD_EXIT_N,
};

/* Limits the sandbox applied; 0 = not set.  JSON object "limits". */
struct record_limits {
	uint64_t cpu_quota_us;	/* "cpu_quota_us": with cpu_period_us, cores = quota / period */
	uint64_t cpu_period_us; /* "cpu_period_us" */
	uint64_t mem_bytes;	/* "mem_bytes": memory limit */
	uint64_t pids;		/* "pids": process limit */
	uint64_t timeout_ns;	/* "timeout_ns": wall-clock limit */
};

/*
 * One usage record.  The meter log fills version, node, seq, prev and time on
 * append and signs; the agent fills the rest from the meter (interval and
 * final records).  Figures are cumulative from the task's start to end_ns.
 */
struct usage_record {
	uint32_t version;		/* "v": RECORD_VERSION */
	enum record_type type;		/* "type" */
	char node[NODE_ID_HEX_LEN + 1]; /* "node": hex SHA-256 of the node's raw public key */
	uint64_t seq;			/* "seq": 0, 1, 2, ... in the node's meter log */
	uint8_t prev[SHA256_LEN];	/* "prev": chain value c_(seq-1), hex; zeros for seq 0 */
	uint64_t time_ns;		/* "time": realtime ns when logged, never decreasing */
	char task[RECORD_ID_MAX + 1];	/* "task": task id (task records only) */
	uint32_t replica;		/* "replica": replica index of the task */
	char renter[RECORD_ID_MAX + 1]; /* "renter": renter account id */
	uint8_t image[SHA256_LEN];	/* "image": "sha256:<hex>" image archive as submitted */
	uint64_t cgroup_id;		/* "cgroup": cgroup v2 id the meter keyed on */
	uint64_t start_ns;		/* "start_ns": realtime ns the task started */
	uint64_t end_ns;		/* "end_ns": realtime ns these figures were taken */
	uint64_t wall_ns;		/* "wall_ns": monotonic wall time from start to end */
	uint64_t cpu_ns;		/* "cpu_ns": CPU time measured by the eBPF meter */
	uint64_t cpu_kernel_ns;	 /* "cpu_kernel_ns": the kernel's cgroup cpu.stat (cross-check) */
	uint64_t runq_wait_ns;	 /* "runq_wait_ns": time runnable but waiting for a CPU */
	uint64_t switches;	 /* "switches": context switches */
	uint64_t procs;		 /* "procs": processes and threads started */
	uint64_t net_rx_bytes;	 /* "net_rx_bytes" */
	uint64_t net_tx_bytes;	 /* "net_tx_bytes" */
	uint64_t mem_peak_bytes; /* "mem_peak_bytes": peak memory of the cgroup */
	struct record_limits limits;	 /* "limits" */
	enum record_exit_kind exit_kind; /* "exit_kind" */
	int32_t exit_status;		 /* "exit_status" */
	int has_result;			 /* "result" is a digest rather than null */
	uint8_t result[SHA256_LEN]; /* "result": "sha256:<hex>" of the task's output, or null */
	uint8_t sig[KEY_SIG_LEN]; /* "sig": base64 Ed25519 over the canonical bytes without "sig" */
};

const char *record_type_name(enum record_type t);
const char *record_exit_kind_name(enum record_exit_kind k);

/* Canonical JSON without "sig" (what is signed); *ret is NUL-terminated, free() it. */
int record_unsigned_bytes(const struct usage_record *r, char **ret, size_t *ret_len);
/* Sign r (sets r->sig) and return its canonical line (with "sig", no newline). */
int record_sign(struct usage_record *r, struct key_signer *s, char **ret_line, size_t *ret_len);
/* Canonical line of an already signed record. */
int record_format(const struct usage_record *r, char **ret_line, size_t *ret_len);

/*
 * Strictly parse one record line (no newline): canonical JSON of exactly the
 * fields of its type, valid values.  On error -EINVAL (or -ENOMEM) and a static
 * reason in *ret_err if not NULL.  With ret_unsigned_len, also the length of
 * the signed bytes, which are the line with its ,"sig":"..." member removed
 * (see record_unsigned_from_line()).
 */
int record_parse(const char *line, size_t len, struct usage_record *ret, const char **ret_err);

/*
 * The signed bytes of a line that record_parse() accepted: the line without its
 * ,"sig":"..." member (canonical JSON of the other fields, because removing a
 * member keeps the rest sorted).  buf has room for len bytes; returns the length.
 */
size_t record_unsigned_from_line(const char *line, size_t len, char *buf);

/* 0 when r->sig is the node key's signature of r, -EBADMSG when not. */
int record_verify(const struct usage_record *r, struct key_verifier *v);
/* The same from a line accepted by record_parse() (no re-serialisation). */
int record_verify_line(const char *line, size_t len, const struct usage_record *r,
		       struct key_verifier *v);

#endif /* AICN_RECORD_H */
