/* metrics.c -- render the agent's /metrics page in the Prometheus text format, names checked, values escaped. */
#include "metrics.h"

#include <aicn/compiler.h>

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <string.h>

struct mx {
	char *buf;
	size_t len;
	size_t cap;
	size_t max;
	char family[128]; /* the family samples belong to now */
	enum mx_type type;
};

static const char *const task_state_names[AGENT_TASK_STATE_N] = {
	[AGENT_TASK_FETCHING] = "fetching",
	[AGENT_TASK_STARTING] = "starting",
	[AGENT_TASK_RUNNING] = "running",
	[AGENT_TASK_REPORTING] = "reporting",
};

static const char *const conn_state_names[AGENT_CONN_STATE_N] = {
	[AGENT_CONN_DISCONNECTED] = "disconnected",
	[AGENT_CONN_CONNECTING] = "connecting",
	[AGENT_CONN_CONNECTED] = "connected",
	[AGENT_CONN_REGISTERED] = "registered",
};

const char *agent_task_state_name(enum agent_task_state s)
{
	return (unsigned)s < AGENT_TASK_STATE_N ? task_state_names[s] : "unknown";
}

const char *agent_conn_state_name(enum agent_conn_state s)
{
	return (unsigned)s < AGENT_CONN_STATE_N ? conn_state_names[s] : "unknown";
}

int mx_new(size_t max_bytes, struct mx **ret_mx)
{
	struct mx *mx = calloc(1, sizeof(*mx));

	if (!mx)
		return -ENOMEM;
	mx->cap = MIN(max_bytes + 1, (size_t)4096);
	mx->buf = malloc(mx->cap);
	if (!mx->buf) {
		free(mx);
		return -ENOMEM;
	}
	mx->buf[0] = '\0';
	mx->max = max_bytes;
	*ret_mx = mx;
	return 0;
}

struct mx *mx_free(struct mx *mx)
{
	if (!mx)
		return NULL;
	free(mx->buf);
	free(mx);
	return NULL;
}

const char *mx_text(const struct mx *mx, size_t *ret_len)
{
	if (ret_len)
		*ret_len = mx->len;
	return mx->buf;
}

static int mx_put(struct mx *mx, const char *s, size_t n)
{
	if (n > mx->max - mx->len)
		return -ENOBUFS;
	if (mx->len + n + 1 > mx->cap) {
		size_t cap = mx->cap;
		char *nb;

		while (cap < mx->len + n + 1)
			cap *= 2;
		cap = MIN(cap, mx->max + 1);
		nb = realloc(mx->buf, cap);
		if (!nb)
			return -ENOMEM;
		mx->buf = nb;
		mx->cap = cap;
	}
	memcpy(mx->buf + mx->len, s, n);
	mx->len += n;
	mx->buf[mx->len] = '\0';
	return 0;
}

static int mx_puts(struct mx *mx, const char *s)
{
	return mx_put(mx, s, strlen(s));
}

static bool valid_name(const char *s, bool colons)
{
	if (!s || !*s || strlen(s) >= 128)
		return false;
	for (const char *c = s; *c; c++) {
		bool alpha = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || *c == '_' ||
			     (colons && *c == ':');

		if (!alpha && !(c != s && *c >= '0' && *c <= '9'))
			return false;
	}
	return true;
}

static bool valid_utf8(const unsigned char *s)
{
	while (*s) {
		unsigned n, cp;

		if (*s < 0x80) {
			s++;
			continue;
		}
		if ((*s & 0xe0) == 0xc0)
			n = 1, cp = *s & 0x1f;
		else if ((*s & 0xf0) == 0xe0)
			n = 2, cp = *s & 0x0f;
		else if ((*s & 0xf8) == 0xf0)
			n = 3, cp = *s & 0x07;
		else
			return false;
		s++;
		for (unsigned i = 0; i < n; i++, s++) {
			if ((*s & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (*s & 0x3f);
		}
		if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
	}
	return true;
}

/* Escape backslash and newline (HELP), and double quote too (label values). */
static int mx_escaped(struct mx *mx, const char *s, bool quote)
{
	const char *run = s;
	int r;

	for (; *s; s++) {
		const char *rep = NULL;

		if (*s == '\\')
			rep = "\\\\";
		else if (*s == '\n')
			rep = "\\n";
		else if (quote && *s == '"')
			rep = "\\\"";
		if (!rep)
			continue;
		r = mx_put(mx, run, (size_t)(s - run));
		if (r == 0)
			r = mx_puts(mx, rep);
		if (r < 0)
			return r;
		run = s + 1;
	}
	return mx_put(mx, run, (size_t)(s - run));
}

int mx_family(struct mx *mx, const char *name, enum mx_type type, const char *help)
{
	static const char *const types[] = {"counter", "gauge", "untyped"};
	size_t start = mx->len;
	int r;

	if (!valid_name(name, true) || (unsigned)type > MX_UNTYPED ||
	    !valid_utf8((const unsigned char *)help))
		return -EINVAL;
	r = mx_puts(mx, "# HELP ");
	if (r == 0)
		r = mx_puts(mx, name);
	if (r == 0)
		r = mx_puts(mx, " ");
	if (r == 0)
		r = mx_escaped(mx, help, false);
	if (r == 0)
		r = mx_puts(mx, "\n# TYPE ");
	if (r == 0)
		r = mx_puts(mx, name);
	if (r == 0)
		r = mx_puts(mx, " ");
	if (r == 0)
		r = mx_puts(mx, types[type]);
	if (r == 0)
		r = mx_puts(mx, "\n");
	if (r < 0) {
		mx->len = start; /* nothing half-written */
		mx->buf[start] = '\0';
		return r;
	}
	snprintf(mx->family, sizeof(mx->family), "%s", name);
	mx->type = type;
	return 0;
}

static int mx_sample(struct mx *mx, const char *name, const char *const *labels, const char *value)
{
	size_t start = mx->len;
	int r;

	if (!mx->family[0] || strcmp(name, mx->family) != 0)
		return -EINVAL;
	for (const char *const *l = labels; l && *l; l += 2)
		if (!valid_name(l[0], false) || strncmp(l[0], "__", 2) == 0 || !l[1] ||
		    !valid_utf8((const unsigned char *)l[1]))
			return -EINVAL;
	r = mx_puts(mx, name);
	for (const char *const *l = labels; r == 0 && l && *l; l += 2) {
		r = mx_puts(mx, l == labels ? "{" : ",");
		if (r == 0)
			r = mx_puts(mx, l[0]);
		if (r == 0)
			r = mx_puts(mx, "=\"");
		if (r == 0)
			r = mx_escaped(mx, l[1], true);
		if (r == 0)
			r = mx_puts(mx, "\"");
	}
	if (r == 0 && labels && *labels)
		r = mx_puts(mx, "}");
	if (r == 0)
		r = mx_puts(mx, " ");
	if (r == 0)
		r = mx_puts(mx, value);
	if (r == 0)
		r = mx_puts(mx, "\n");
	if (r < 0) {
		mx->len = start;
		mx->buf[start] = '\0';
	}
	return r;
}

int mx_sample_u64(struct mx *mx, const char *name, const char *const *labels, uint64_t value)
{
	char v[24];

	snprintf(v, sizeof(v), "%llu", (unsigned long long)value);
	return mx_sample(mx, name, labels, v);
}

int mx_sample_double(struct mx *mx, const char *name, const char *const *labels, double value)
{
	char v[40];

	if (isnan(value))
		snprintf(v, sizeof(v), "NaN");
	else if (isinf(value))
		snprintf(v, sizeof(v), "%sInf", value > 0 ? "+" : "-");
	else
		snprintf(v, sizeof(v), "%.17g", value);
	return mx_sample(mx, name, labels, v);
}

int mx_sample_ns_as_s(struct mx *mx, const char *name, const char *const *labels, uint64_t ns)
{
	char v[32];

	snprintf(v, sizeof(v), "%llu.%09llu", (unsigned long long)(ns / 1000000000ULL),
		 (unsigned long long)(ns % 1000000000ULL));
	return mx_sample(mx, name, labels, v);
}

DEFINE_TRIVIAL_CLEANUP_FUNC(struct mx, mx_free)

int agent_metrics_render(const struct agent_metrics *m, char **ret_text, size_t *ret_len)
{
	_cleanup_(mx_freep) struct mx *mx = NULL;
	int r;

	r = mx_new(MX_DEFAULT_MAX, &mx);
	if (r < 0)
		return r;

#define TRY(expr)                                                                                  \
	do {                                                                                       \
		r = (expr);                                                                        \
		if (r < 0)                                                                         \
			return r;                                                                  \
	} while (0)

	TRY(mx_family(mx, "aicn_agent_info", MX_GAUGE, "Build information of this agent."));
	TRY(mx_sample_u64(mx, "aicn_agent_info",
			  (const char *const[]){"version", m->version ? m->version : "", NULL}, 1));

	TRY(mx_family(mx, "aicn_agent_tasks", MX_GAUGE, "Tasks on this node now, by state."));
	for (int s = 0; s < AGENT_TASK_STATE_N; s++)
		TRY(mx_sample_u64(mx, "aicn_agent_tasks",
				  (const char *const[]){"state", task_state_names[s], NULL},
				  m->tasks[s]));

	TRY(mx_family(mx, "aicn_agent_tasks_ended_total", MX_COUNTER,
		      "Tasks ended since the agent started, by how they ended."));
	for (size_t i = 0; i < m->n_tasks_ended; i++)
		TRY(mx_sample_u64(mx, "aicn_agent_tasks_ended_total",
				  (const char *const[]){"kind", m->tasks_ended[i].name, NULL},
				  m->tasks_ended[i].value));

	TRY(mx_family(mx, "aicn_agent_task_cpu_seconds_total", MX_COUNTER,
		      "CPU time of each current task as the eBPF meter measured it."));
	for (size_t i = 0; i < m->n_task_cpu; i++)
		TRY(mx_sample_ns_as_s(mx, "aicn_agent_task_cpu_seconds_total",
				      (const char *const[]){"task", m->task_cpu[i].id, NULL},
				      m->task_cpu[i].cpu_ns));

	TRY(mx_family(mx, "aicn_agent_meter_drops_total", MX_COUNTER,
		      "Events the CPU meter could not deliver, by reason (should stay 0)."));
	for (size_t i = 0; i < m->n_meter_drops; i++)
		TRY(mx_sample_u64(mx, "aicn_agent_meter_drops_total",
				  (const char *const[]){"reason", m->meter_drops[i].name, NULL},
				  m->meter_drops[i].value));

	TRY(mx_family(mx, "aicn_agent_coordinator_connection", MX_GAUGE,
		      "Connection to the coordinator: 1 for the current state, 0 for the others."));
	for (int s = 0; s < AGENT_CONN_STATE_N; s++)
		TRY(mx_sample_u64(mx, "aicn_agent_coordinator_connection",
				  (const char *const[]){"state", conn_state_names[s], NULL},
				  (unsigned)m->conn == (unsigned)s));

	TRY(mx_family(mx, "aicn_agent_records_pending_ack", MX_GAUGE,
		      "Signed usage records the coordinator has not acknowledged yet."));
	TRY(mx_sample_u64(mx, "aicn_agent_records_pending_ack", NULL, m->records_pending_ack));

	TRY(mx_family(mx, "aicn_agent_cores_offered", MX_GAUGE,
		      "CPU cores offered to tasks (max_cores)."));
	TRY(mx_sample_double(mx, "aicn_agent_cores_offered", NULL,
			     (double)m->cores_offered_milli / 1000.0));
#undef TRY

	*ret_text = TAKE_PTR(mx->buf);
	if (ret_len)
		*ret_len = mx->len;
	return 0;
}
