/* agentmx.c -- parse the agent's Prometheus exposition (what `aicnctl agent status` shows) without trusting it. */
#include "agentmx.h"

#include <aicn/canon.h>
#include <aicn/compiler.h>

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define LINE_MAX_LEN 1024
#define LABEL_MAX 128

DEFINE_TRIVIAL_CLEANUP_FUNC(cJSON, cJSON_Delete)

/* Valid UTF-8 without control characters (what canonical JSON can carry as a key). */
static bool text_ok(const unsigned char *s)
{
	while (*s) {
		unsigned c = *s, n;

		if (c < 0x20 || c == 0x7f)
			return false;
		if (c < 0x80) {
			s++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			n = 1;
		else if (c >= 0xe0 && c <= 0xef)
			n = 2;
		else if (c >= 0xf0 && c <= 0xf4)
			n = 3;
		else
			return false;
		for (unsigned i = 1; i <= n; i++)
			if ((s[i] & 0xc0) != 0x80)
				return false;
		/* overlong, surrogate and beyond-U+10FFFF forms */
		if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] > 0x9f) ||
		    (c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] > 0x8f))
			return false;
		s += n + 1;
	}
	return true;
}

/*
 * One sample line "name{label="value",...} number": the name, the first label's
 * value (unescaped, at most LABEL_MAX bytes) and the number.  false for
 * comments and anything malformed.
 */
static bool parse_sample(char *line, const char **name, char *lvalue, bool *has_label,
			 double *value)
{
	char *p = line, *end;
	size_t n = 0;

	if (!*p || *p == '#')
		return false;
	*name = p;
	*has_label = false;
	p += strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_:");
	if (p == line)
		return false;
	if (*p == '{') {
		*p++ = '\0';
		p += strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_");
		if (p[0] != '=' || p[1] != '"')
			return false;
		for (p += 2; *p && *p != '"'; p++) {
			char c = *p;

			if (c == '\\') {
				p++;
				if (*p == 'n')
					c = '\n';
				else if (*p == '\\' || *p == '"')
					c = *p;
				else
					return false;
			}
			if (n + 1 >= LABEL_MAX)
				return false;
			lvalue[n++] = c;
		}
		if (*p != '"')
			return false;
		lvalue[n] = '\0';
		if (!text_ok((const unsigned char *)lvalue))
			return false;
		*has_label = true;
		p = strchr(p, '}');
		if (!p)
			return false;
		p++;
	} else if (*p == ' ') {
		*p++ = '\0';
	} else {
		return false;
	}
	p += strspn(p, " ");
	*value = strtod(p, &end);
	if (end == p || !isfinite(*value) || *value < 0 || *value > 9.2e18)
		return false;
	return true;
}

/* Add (or replace) key: v in obj. */
static int put(cJSON *obj, const char *key, int64_t v)
{
	cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
	return canon_add_i64(obj, key, v);
}

int agent_metrics_summary(const char *text, size_t len, cJSON **ret)
{
	_cleanup_(cJSON_Deletep) cJSON *out = cJSON_CreateObject();
	cJSON *tasks, *ended, *cpu, *drops;
	char version[LABEL_MAX] = "", conn[LABEL_MAX] = "unknown";
	double offered = 0, pending = 0;
	size_t pos = 0, series = 0;

	if (!out)
		return -ENOMEM;
	tasks = cJSON_AddObjectToObject(out, "tasks");
	ended = cJSON_AddObjectToObject(out, "tasks_ended");
	cpu = cJSON_AddObjectToObject(out, "task_cpu_ns");
	drops = cJSON_AddObjectToObject(out, "meter_drops");
	if (!tasks || !ended || !cpu || !drops)
		return -ENOMEM;
	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t ll = nl ? (size_t)(nl - text - pos) : len - pos;
		char line[LINE_MAX_LEN], lv[LABEL_MAX];
		const char *name;
		bool has_label;
		double v;
		cJSON *dst = NULL;
		int64_t iv;

		if (ll < sizeof(line) && !memchr(text + pos, '\0', ll)) {
			memcpy(line, text + pos, ll);
			line[ll] = '\0';
		} else {
			line[0] = '\0'; /* too long, or binary: skipped */
		}
		pos += ll + 1;
		if (!parse_sample(line, &name, lv, &has_label, &v))
			continue;
		iv = (int64_t)v;
		if (strcmp(name, "aicn_agent_records_pending_ack") == 0) {
			pending = v;
			continue;
		}
		if (strcmp(name, "aicn_agent_cores_offered") == 0) {
			offered = v;
			continue;
		}
		if (!has_label)
			continue;
		if (strcmp(name, "aicn_agent_info") == 0) {
			snprintf(version, sizeof(version), "%s", lv);
			continue;
		}
		if (strcmp(name, "aicn_agent_coordinator_connection") == 0) {
			if (v == 1)
				snprintf(conn, sizeof(conn), "%s", lv);
			continue;
		}
		if (strcmp(name, "aicn_agent_tasks") == 0)
			dst = tasks;
		else if (strcmp(name, "aicn_agent_tasks_ended_total") == 0)
			dst = ended;
		else if (strcmp(name, "aicn_agent_meter_drops_total") == 0)
			dst = drops;
		else if (strcmp(name, "aicn_agent_task_cpu_seconds_total") == 0) {
			dst = cpu;
			iv = v * 1e9 > 9.2e18 ? INT64_MAX : (int64_t)llround(v * 1e9);
		}
		if (!dst || ++series > AGENTMX_MAX_SERIES)
			continue;
		if (put(dst, lv, iv) < 0)
			return -ENOMEM;
	}
	if (!cJSON_AddStringToObject(out, "version", version[0] ? version : "?") ||
	    !cJSON_AddStringToObject(out, "coordinator", conn) ||
	    canon_add_i64(out, "cores_offered_milli", (int64_t)llround(offered * 1000)) < 0 ||
	    canon_add_i64(out, "records_pending_ack", (int64_t)pending) < 0)
		return -ENOMEM;
	*ret = TAKE_PTR(out);
	return 0;
}
