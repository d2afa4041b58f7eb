/* metrics.h -- Prometheus text exposition (format 0.0.4) of the agent's state: rendering and escaping. */
#ifndef AICN_AGENT_METRICS_H
#define AICN_AGENT_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define MX_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define MX_DEFAULT_MAX (1 << 20) /* bytes of one scrape */

enum mx_type {
	MX_COUNTER,
	MX_GAUGE,
	MX_UNTYPED,
};

/* A text exposition being built; bounded in size. */
struct mx;

int mx_new(size_t max_bytes, struct mx **ret_mx);
struct mx *mx_free(struct mx *mx);
/* Start a metric family: "# HELP" and "# TYPE" lines.  Names are checked ([a-zA-Z_:][a-zA-Z0-9_:]*). */
int mx_family(struct mx *mx, const char *name, enum mx_type type, const char *help);
/*
 * One sample of the current family (NAME must be it).  LABELS is NULL or a
 * NULL-terminated list of name, value, name, value...; values are escaped and
 * must be UTF-8.  -ENOBUFS once the bound is reached.
 */
int mx_sample_u64(struct mx *mx, const char *name, const char *const *labels, uint64_t value);
int mx_sample_double(struct mx *mx, const char *name, const char *const *labels, double value);
/* A value in nanoseconds written exactly in seconds ("1.000000001"). */
int mx_sample_ns_as_s(struct mx *mx, const char *name, const char *const *labels, uint64_t ns);
/* The text so far (NUL-terminated). */
const char *mx_text(const struct mx *mx, size_t *ret_len);

/* ---- the agent's metrics ---- */

enum agent_task_state {
	AGENT_TASK_FETCHING, /* accepted, image blobs being fetched */
	AGENT_TASK_STARTING, /* sandbox being set up */
	AGENT_TASK_RUNNING,
	AGENT_TASK_REPORTING, /* ended: record signing, result upload, ack pending */
	AGENT_TASK_STATE_N,
};

enum agent_conn_state {
	AGENT_CONN_DISCONNECTED,
	AGENT_CONN_CONNECTING,
	AGENT_CONN_CONNECTED,  /* TLS up, not yet registered */
	AGENT_CONN_REGISTERED, /* REGISTER accepted: receiving tasks */
	AGENT_CONN_STATE_N,
};

struct agent_metrics_task {
	const char *id;	 /* task id (label task=) */
	uint64_t cpu_ns; /* metered CPU time so far */
};

struct agent_metrics_counter {
	const char *name; /* label value, e.g. "ringbuf_full" */
	uint64_t value;
};

/* A snapshot of what the agent knows, taken by the caller. */
struct agent_metrics {
	const char *version;		    /* build version, label of aicn_agent_info */
	uint64_t tasks[AGENT_TASK_STATE_N]; /* tasks in each state now */
	const struct agent_metrics_counter *tasks_ended; /* since start, by kind (exited, oom...) */
	size_t n_tasks_ended;
	const struct agent_metrics_task *task_cpu; /* per running/reporting task */
	size_t n_task_cpu;
	const struct agent_metrics_counter *meter_drops; /* meter's drop counters by reason */
	size_t n_meter_drops;
	enum agent_conn_state conn;   /* coordinator connection */
	uint64_t records_pending_ack; /* signed usage records not yet acknowledged */
	uint64_t cores_offered_milli; /* max_cores * 1000 */
};

const char *agent_task_state_name(enum agent_task_state s);
const char *agent_conn_state_name(enum agent_conn_state s);

/* Render the whole /metrics page; *ret_text is malloc'd and NUL-terminated. */
int agent_metrics_render(const struct agent_metrics *m, char **ret_text, size_t *ret_len);

#endif /* AICN_AGENT_METRICS_H */
