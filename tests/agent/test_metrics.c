/* test_metrics.c -- /metrics output read back by a strict parser of the Prometheus text format. */
#include "../../agent/metrics.h"

#include "harness.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>

#define MAXS 256
#define STREQ(a, b) (strcmp((a), (b)) == 0)

struct sample {
	char name[128];
	char labels[512]; /* "k=v" pairs joined by ';' after unescaping, in order */
	double value;
};

static struct sample samples[MAXS];
static int nsamples;
static char perr[1400];

static bool name_ok(const char *s, size_t n, bool colons)
{
	if (!n)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool a = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
			 (colons && c == ':');

		if (!a && !(i && c >= '0' && c <= '9'))
			return false;
	}
	return true;
}

/* Parse a whole exposition; 0 or -1 with perr set. */
static int parse(const char *text)
{
	char families[64][128], typed[64][128], helped[64][128], cur[128] = "";
	int nfam = 0, ntyped = 0, nhelp = 0;
	const char *p = text;

	nsamples = 0;
	while (*p) {
		const char *nl = strchr(p, '\n');
		char line[1024];
		size_t n;

		if (!nl)
			return snprintf(perr, sizeof(perr), "last line without newline"), -1;
		n = (size_t)(nl - p);
		if (n >= sizeof(line))
			return snprintf(perr, sizeof(perr), "line too long"), -1;
		memcpy(line, p, n);
		line[n] = '\0';
		p = nl + 1;
		if (!n)
			continue;
		if (strncmp(line, "# HELP ", 7) == 0 || strncmp(line, "# TYPE ", 7) == 0) {
			char *name = line + 7, *sp = strchr(name, ' ');
			bool help = line[2] == 'H';

			if (!sp || !name_ok(name, (size_t)(sp - name), true))
				return snprintf(perr, sizeof(perr), "bad name: %s", line), -1;
			*sp = '\0';
			if (help) {
				for (const char *c = sp + 1; *c; c++)
					if (*c == '\\' && c[1] != '\\' && c[1] != 'n')
						return snprintf(perr, sizeof(perr), "bad escape"),
						       -1;
					else if (*c == '\\')
						c++;
				for (int i = 0; i < nhelp; i++)
					if (STREQ(helped[i], name))
						return snprintf(perr, sizeof(perr), "HELP twice"),
						       -1;
				snprintf(helped[nhelp++], 128, "%s", name);
			} else {
				const char *t = sp + 1;

				if (!STREQ(t, "counter") && !STREQ(t, "gauge") &&
				    !STREQ(t, "untyped") && !STREQ(t, "summary") &&
				    !STREQ(t, "histogram"))
					return snprintf(perr, sizeof(perr), "bad type %s", t), -1;
				for (int i = 0; i < ntyped; i++)
					if (STREQ(typed[i], name))
						return snprintf(perr, sizeof(perr), "TYPE twice"),
						       -1;
				for (int i = 0; i < nsamples; i++)
					if (STREQ(samples[i].name, name))
						return snprintf(perr, sizeof(perr),
								"TYPE after samples"),
						       -1;
				if (STREQ(t, "counter") &&
				    (strlen(name) < 6 || !STREQ(name + strlen(name) - 6, "_total")))
					return snprintf(perr, sizeof(perr),
							"counter without _total"),
					       -1;
				snprintf(typed[ntyped++], 128, "%s", name);
			}
			continue;
		}
		if (line[0] == '#')
			continue;
		{
			struct sample *s = &samples[nsamples];
			char *c = line, *end;
			size_t nl2 = strcspn(c, "{ ");
			bool known = false;

			if (nsamples >= MAXS || !name_ok(c, nl2, true) || nl2 >= sizeof(s->name))
				return snprintf(perr, sizeof(perr), "bad sample name: %s", line),
				       -1;
			memcpy(s->name, c, nl2);
			s->name[nl2] = '\0';
			c += nl2;
			s->labels[0] = '\0';
			if (*c == '{') {
				c++;
				while (*c != '}') {
					size_t ln = strcspn(c, "=");
					char key[128], val[256];
					size_t vl = 0;

					if (!name_ok(c, ln, false) || ln >= sizeof(key) ||
					    c[ln] != '=' || c[ln + 1] != '"')
						return snprintf(perr, sizeof(perr), "bad label: %s",
								line),
						       -1;
					memcpy(key, c, ln);
					key[ln] = '\0';
					c += ln + 2;
					while (*c != '"') {
						if (!*c || vl + 1 >= sizeof(val))
							return snprintf(perr, sizeof(perr),
									"open label value"),
							       -1;
						if (*c == '\\') {
							c++;
							if (*c == 'n')
								val[vl++] = '\n';
							else if (*c == '\\' || *c == '"')
								val[vl++] = *c;
							else
								return snprintf(perr, sizeof(perr),
										"bad escape"),
								       -1;
							c++;
						} else {
							val[vl++] = *c++;
						}
					}
					val[vl] = '\0';
					c++;
					{
						char pair[400], pre[132];

						snprintf(pair, sizeof(pair), "%s=%s;", key, val);
						snprintf(pre, sizeof(pre), ";%s=", key);
						if (strstr(s->labels, pre + 1) == s->labels ||
						    strstr(s->labels, pre))
							return snprintf(perr, sizeof(perr),
									"dup label"),
							       -1;
						strncat(s->labels, pair,
							sizeof(s->labels) - strlen(s->labels) - 1);
					}
					if (*c == ',')
						c++;
					else if (*c != '}')
						return snprintf(perr, sizeof(perr),
								"bad label list"),
						       -1;
				}
				c++;
			}
			if (*c != ' ')
				return snprintf(perr, sizeof(perr), "no value: %s", line), -1;
			c++;
			if (STREQ(c, "NaN"))
				s->value = NAN;
			else if (STREQ(c, "+Inf"))
				s->value = INFINITY;
			else if (STREQ(c, "-Inf"))
				s->value = -INFINITY;
			else {
				s->value = strtod(c, &end);
				if (end == c || *end)
					return snprintf(perr, sizeof(perr), "bad value: %s", line),
					       -1;
			}
			for (int i = 0; i < ntyped; i++)
				known |= STREQ(typed[i], s->name);
			if (!known)
				return snprintf(perr, sizeof(perr), "sample before TYPE: %s", line),
				       -1;
			/* families are contiguous */
			if (!STREQ(cur, s->name)) {
				for (int i = 0; i < nfam; i++)
					if (STREQ(families[i], s->name))
						return snprintf(perr, sizeof(perr),
								"family split: %s", s->name),
						       -1;
				snprintf(families[nfam++], 128, "%s", s->name);
				snprintf(cur, sizeof(cur), "%s", s->name);
			}
			for (int i = 0; i < nsamples; i++)
				if (STREQ(samples[i].name, s->name) &&
				    STREQ(samples[i].labels, s->labels))
					return snprintf(perr, sizeof(perr), "duplicate series"), -1;
			nsamples++;
		}
	}
	return 0;
}

static double get(const char *name, const char *labels)
{
	for (int i = 0; i < nsamples; i++)
		if (STREQ(samples[i].name, name) && STREQ(samples[i].labels, labels))
			return samples[i].value;
	return -12345;
}

static void test_agent_page(void)
{
	static const struct agent_metrics_task tasks[] = {
		{"t-1", 1500000000ULL},
		{"we\"ird\\id\nx", 1},
	};
	static const struct agent_metrics_counter drops[] = {{"ringbuf_full", 3}, {"map_full", 0}};
	static const struct agent_metrics_counter ended[] = {{"exited", 10}, {"oom", 2}};
	struct agent_metrics m = {
		.version = "0.1.0",
		.tasks = {[AGENT_TASK_RUNNING] = 2, [AGENT_TASK_FETCHING] = 1},
		.tasks_ended = ended,
		.n_tasks_ended = 2,
		.task_cpu = tasks,
		.n_task_cpu = 2,
		.meter_drops = drops,
		.n_meter_drops = 2,
		.conn = AGENT_CONN_REGISTERED,
		.records_pending_ack = 4,
		.cores_offered_milli = 1500,
	};
	char *text = NULL;
	size_t len = 0;
	int r;

	CHECK_EQ(agent_metrics_render(&m, &text, &len), 0);
	CHECK_EQ(len, strlen(text));
	r = parse(text);
	if (r < 0)
		fprintf(stderr, "parse: %s\n%s", perr, text);
	free(text);
	CHECK_EQ(r, 0);
	CHECK(get("aicn_agent_info", "version=0.1.0;") == 1);
	CHECK(get("aicn_agent_tasks", "state=running;") == 2);
	CHECK(get("aicn_agent_tasks", "state=fetching;") == 1);
	CHECK(get("aicn_agent_tasks", "state=starting;") == 0);
	CHECK(get("aicn_agent_tasks", "state=reporting;") == 0);
	CHECK(get("aicn_agent_tasks_ended_total", "kind=oom;") == 2);
	CHECK(get("aicn_agent_task_cpu_seconds_total", "task=t-1;") == 1.5);
	CHECK(get("aicn_agent_task_cpu_seconds_total", "task=we\"ird\\id\nx;") == 1e-9);
	CHECK(get("aicn_agent_meter_drops_total", "reason=ringbuf_full;") == 3);
	CHECK(get("aicn_agent_coordinator_connection", "state=registered;") == 1);
	CHECK(get("aicn_agent_coordinator_connection", "state=disconnected;") == 0);
	CHECK(get("aicn_agent_records_pending_ack", "") == 4);
	CHECK(get("aicn_agent_cores_offered", "") == 1.5);
}

static void test_builder_rules(void)
{
	struct mx *mx = NULL;
	const char *t;

	CHECK_EQ(mx_new(4096, &mx), 0);
	CHECK_EQ(mx_family(mx, "1bad", MX_GAUGE, "x"), -EINVAL);
	CHECK_EQ(mx_family(mx, "bad-name", MX_GAUGE, "x"), -EINVAL);
	CHECK_EQ(mx_sample_u64(mx, "x", NULL, 1), -EINVAL); /* no family yet */
	CHECK_EQ(mx_family(mx, "a:b_c", MX_UNTYPED, "help with \\ and\nnewline"), 0);
	CHECK_EQ(mx_sample_u64(mx, "other", NULL, 1), -EINVAL);
	CHECK_EQ(mx_sample_u64(mx, "a:b_c", (const char *const[]){"__reserved", "v", NULL}, 1),
		 -EINVAL);
	CHECK_EQ(mx_sample_u64(mx, "a:b_c", (const char *const[]){"a:b", "v", NULL}, 1), -EINVAL);
	CHECK_EQ(mx_sample_u64(mx, "a:b_c", (const char *const[]){"k", "\xff\xfe", NULL}, 1),
		 -EINVAL);
	CHECK_EQ(mx_sample_u64(mx, "a:b_c", (const char *const[]){"k", "\xed\xa0\x80", NULL}, 1),
		 -EINVAL); /* a UTF-16 surrogate */
	CHECK_EQ(mx_sample_u64(mx, "a:b_c", (const char *const[]){"k", "\xc3\xa9t\xc3\xa9", NULL},
			       1),
		 0);
	CHECK_EQ(mx_sample_double(mx, "a:b_c", (const char *const[]){"k", "nan", NULL}, NAN), 0);
	CHECK_EQ(mx_sample_double(mx, "a:b_c", (const char *const[]){"k", "inf", NULL}, -INFINITY),
		 0);
	CHECK_EQ(mx_sample_double(mx, "a:b_c", (const char *const[]){"k", "pi", NULL}, 3.25), 0);
	CHECK_EQ(mx_sample_ns_as_s(mx, "a:b_c", (const char *const[]){"k", "ns", NULL},
				   1000000001ULL),
		 0);
	t = mx_text(mx, NULL);
	CHECK(strstr(t, "# HELP a:b_c help with \\\\ and\\nnewline\n"));
	CHECK(strstr(t, "a:b_c{k=\"ns\"} 1.000000001\n"));
	CHECK(strstr(t, "a:b_c{k=\"inf\"} -Inf\n"));
	CHECK_EQ(parse(t), 0);
	CHECK(isnan(get("a:b_c", "k=nan;")));
	CHECK(get("a:b_c", "k=pi;") == 3.25);
	mx_free(mx);
}

static void test_bound(void)
{
	struct mx *mx = NULL;
	size_t len = 0;
	int r = 0, i;

	CHECK_EQ(mx_new(300, &mx), 0);
	CHECK_EQ(mx_family(mx, "m", MX_GAUGE, "bounded"), 0);
	for (i = 0; i < 100 && r == 0; i++) {
		char id[16];

		snprintf(id, sizeof(id), "%d", i);
		r = mx_sample_u64(mx, "m", (const char *const[]){"i", id, NULL}, (uint64_t)i);
	}
	CHECK_EQ(r, -ENOBUFS);
	mx_text(mx, &len);
	CHECK(len <= 300);
	CHECK_EQ(parse(mx_text(mx, NULL)), 0); /* no half-written line */
	CHECK_EQ(nsamples, i - 1);
	mx_free(mx);
}

/* The checker itself refuses what Prometheus would refuse. */
static void test_parser_refuses(void)
{
	CHECK_EQ(parse("# TYPE m gauge\nm 1\n"), 0);
	CHECK_EQ(parse("m 1\n"), -1);
	CHECK_EQ(parse("# TYPE m gauge\nm 1"), -1);
	CHECK_EQ(parse("# TYPE m gauge\nm{a=\"x} 1\n"), -1);
	CHECK_EQ(parse("# TYPE m gauge\nm{a=\"\\q\"} 1\n"), -1);
	CHECK_EQ(parse("# TYPE m gauge\nm{a=\"1\",a=\"2\"} 1\n"), -1);
	CHECK_EQ(parse("# TYPE m gauge\nm 1\nm 2\n"), -1);
	CHECK_EQ(parse("# TYPE m gauge\n# TYPE n gauge\nm{a=\"1\"} 1\nn 1\nm{a=\"2\"} 1\n"), -1);
	CHECK_EQ(parse("# TYPE m_total counter\nm_total one\n"), -1);
	CHECK_EQ(parse("# TYPE c counter\nc 1\n"), -1);
}

int main(void)
{
	static const struct test_case cases[] = {
		TEST(test_agent_page), TEST(test_builder_rules),
		TEST(test_bound),      TEST(test_parser_refuses),
		{NULL, NULL},
	};
	return harness_run(cases);
}
