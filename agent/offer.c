/* offer.c -- TASK_OFFER validation (hostile values refused with a reason) and the agent's accept/reject rules. */
#include "offer.h"

#include <aicn/canon.h>
#include <aicn/compiler.h>
#include <aicn/errmsg.h>
#include <aicn/hash.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIB (1024ULL * 1024ULL)

static void free_strv(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

struct offer *offer_free(struct offer *o)
{
	if (!o)
		return NULL;
	free_strv(o->cmd);
	free_strv(o->env);
	free(o->inputs);
	free(o);
	return NULL;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(struct offer, offer_free)

static bool id_ok(const char *s, size_t max, const char *alphabet)
{
	size_t n = strlen(s);

	return n && n <= max && s[0] != '.' && strspn(s, alphabet) == n;
}

#define ALNUM "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

bool offer_path_ok(const char *p)
{
	size_t n = strlen(p), depth = 0;
	const char *s = p;

	if (!n || n > OFFER_INPUT_PATH_MAX || p[0] == '/')
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f || p[i] == '\\')
			return false;
	while (*s) {
		const char *e = strchr(s, '/');
		size_t l = e ? (size_t)(e - s) : strlen(s);

		if (l == 0 || (l == 1 && s[0] == '.') || (l == 2 && s[0] == '.' && s[1] == '.'))
			return false;
		if (++depth > OFFER_INPUT_DEPTH_MAX)
			return false;
		if (!e)
			break;
		s = e + 1;
		if (!*s)
			return false; /* trailing slash: a directory, not a file */
	}
	return true;
}

/* Strings of an array; NEED_ENV: "K=V" with K a shell variable name. */
static int get_strv(const cJSON *arr, bool need_env, size_t *bytes, char ***ret, size_t *ret_n,
		    char *why, size_t len)
{
	size_t n = 0, i = 0;
	const cJSON *it;
	char **v;

	if (!arr) {
		*ret = calloc(1, sizeof(char *));
		*ret_n = 0;
		return *ret ? 0 : -ENOMEM;
	}
	cJSON_ArrayForEach (it, arr) {
		const char *s = it->valuestring;

		if (!cJSON_IsString(it) || !s)
			return errmsg(why, len, -EINVAL, "%s: not a string",
				      need_env ? "env" : "cmd");
		*bytes += strlen(s) + 1;
		if (need_env) {
			const char *eq = strchr(s, '=');
			size_t k = eq ? (size_t)(eq - s) : 0;

			if (!k || strspn(s, ALNUM "_") != k || (s[0] >= '0' && s[0] <= '9'))
				return errmsg(why, len, -EINVAL, "env entry %zu is not NAME=VALUE",
					      n);
		}
		n++;
	}
	if (*bytes > OFFER_CMD_BYTES_MAX)
		return errmsg(why, len, -EINVAL, "cmd and env exceed %d bytes",
			      OFFER_CMD_BYTES_MAX);
	v = calloc(n + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	cJSON_ArrayForEach (it, arr) {
		v[i] = strdup(it->valuestring);
		if (!v[i++]) {
			free_strv(v);
			return -ENOMEM;
		}
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

static int get_u(const cJSON *msg, const char *key, bool required, uint64_t max, uint64_t *ret,
		 char *why, size_t len)
{
	uint64_t v = 0;
	int r = canon_get_u64(msg, key, &v);

	if (r == -ENOENT && !required) {
		*ret = 0;
		return 0;
	}
	if (r < 0 || v > max)
		return errmsg(why, len, -EINVAL, "%s: missing or out of range", key);
	*ret = v;
	return 0;
}

static int parse_inputs(const cJSON *arr, struct offer *o, char *why, size_t len)
{
	const cJSON *it;
	size_t n = 0;

	if (!arr)
		return 0;
	if (!cJSON_IsArray(arr))
		return errmsg(why, len, -EINVAL, "inputs: not an array");
	n = (size_t)cJSON_GetArraySize(arr);
	if (n > OFFER_INPUTS_MAX)
		return errmsg(why, len, -EINVAL, "more than %d inputs", OFFER_INPUTS_MAX);
	o->inputs = calloc(n ? n : 1, sizeof(*o->inputs));
	if (!o->inputs)
		return -ENOMEM;
	cJSON_ArrayForEach (it, arr) {
		struct offer_input *in = &o->inputs[o->n_inputs];
		const char *digest = NULL, *path = NULL;
		uint8_t raw[SHA256_LEN];

		if (canon_get_str(it, "digest", &digest) < 0 || digest_parse(digest, raw) < 0)
			return errmsg(why, len, -EINVAL, "input %zu: bad digest", o->n_inputs);
		if (canon_get_str(it, "path", &path) < 0 || !offer_path_ok(path))
			return errmsg(why, len, -EINVAL,
				      "input %zu: path must be relative below /work, without "
				      "'..', '.' or empty parts",
				      o->n_inputs);
		if (get_u(it, "size", true, OFFER_INPUTS_BYTES_MAX, &in->size, NULL, 0) < 0)
			return errmsg(
				why, len, -EINVAL,
				"input %zu: size missing or above the inputs' bound of %llu bytes",
				o->n_inputs, (unsigned long long)OFFER_INPUTS_BYTES_MAX);
		for (size_t k = 0; k < o->n_inputs; k++) {
			size_t pl = strlen(o->inputs[k].path), ql = strlen(path);

			/* the same file twice, or a file where another needs a directory */
			if (strcmp(o->inputs[k].path, path) == 0 ||
			    (pl < ql && strncmp(o->inputs[k].path, path, pl) == 0 &&
			     path[pl] == '/') ||
			    (ql < pl && strncmp(o->inputs[k].path, path, ql) == 0 &&
			     o->inputs[k].path[ql] == '/'))
				return errmsg(why, len, -EINVAL,
					      "input %zu: path %s clashes with input %zu",
					      o->n_inputs, path, k);
		}
		snprintf(in->digest, sizeof(in->digest), "%s", digest);
		snprintf(in->path, sizeof(in->path), "%s", path);
		o->inputs_bytes += in->size;
		if (o->inputs_bytes > OFFER_INPUTS_BYTES_MAX)
			return errmsg(why, len, -EINVAL, "inputs exceed %llu bytes together",
				      (unsigned long long)OFFER_INPUTS_BYTES_MAX);
		o->n_inputs++;
	}
	return 0;
}

int offer_parse(const cJSON *msg, char *why, size_t whylen, struct offer **ret_offer)
{
	_cleanup_(offer_freep) struct offer *o = calloc(1, sizeof(*o));
	const char *s = NULL;
	uint8_t raw[SHA256_LEN];
	size_t bytes = 0;
	uint64_t v = 0;
	int r;

	if (!o)
		return -ENOMEM;
	if (!cJSON_IsObject(msg))
		return errmsg(why, whylen, -EINVAL, "not an object");
	if (canon_get_str(msg, "task_id", &s) < 0 || !id_ok(s, OFFER_TASK_ID_MAX, ALNUM "._-"))
		return errmsg(why, whylen, -EINVAL,
			      "task_id: 1..%d of [A-Za-z0-9._-], not starting with '.'",
			      OFFER_TASK_ID_MAX);
	snprintf(o->task_id, sizeof(o->task_id), "%s", s);
	if (canon_get_str(msg, "image", &s) < 0 || digest_parse(s, raw) < 0)
		return errmsg(why, whylen, -EINVAL, "image: not a sha256 digest");
	snprintf(o->image, sizeof(o->image), "%s", s);
	r = get_strv(cJSON_GetObjectItemCaseSensitive(msg, "cmd"), false, &bytes, &o->cmd,
		     &o->n_cmd, why, whylen);
	if (r < 0)
		return r;
	if (!o->n_cmd || !o->cmd[0][0])
		return errmsg(why, whylen, -EINVAL, "cmd: empty command");
	r = get_strv(cJSON_GetObjectItemCaseSensitive(msg, "env"), true, &bytes, &o->env, &o->n_env,
		     why, whylen);
	if (r < 0)
		return r;
	r = parse_inputs(cJSON_GetObjectItemCaseSensitive(msg, "inputs"), o, why, whylen);
	if (r < 0)
		return r;
	if ((r = get_u(msg, "cores", true, 65536, &v, why, whylen)) < 0)
		return r;
	if (!v)
		return errmsg(why, whylen, -EINVAL, "cores: at least 1");
	o->cores = (uint32_t)v;
	if ((r = get_u(msg, "mem_mb", true, 1ULL << 32, &o->mem_mb, why, whylen)) < 0)
		return r;
	if (o->mem_mb < 16)
		return errmsg(why, whylen, -EINVAL, "mem_mb: at least 16");
	if ((r = get_u(msg, "max_cpu_ns", true, INT64_MAX, &o->max_cpu_ns, why, whylen)) < 0)
		return r;
	if (!o->max_cpu_ns)
		return errmsg(why, whylen, -EINVAL, "max_cpu_ns: at least 1");
	if ((r = get_u(msg, "price", true, INT64_MAX, &o->price, why, whylen)) < 0)
		return r;
	if ((r = get_u(msg, "deadline_ms", false, INT64_MAX, &o->deadline_ms, why, whylen)) < 0)
		return r;
	if (o->deadline_ms > OFFER_DEADLINE_MS_MAX)
		return errmsg(why, whylen, -EINVAL, "deadline_ms: more than 400 days");
	if ((r = get_u(msg, "replica", false, 64, &v, why, whylen)) < 0)
		return r;
	o->replica = (uint32_t)v;
	r = canon_get_str(msg, "renter", &s);
	if (r == 0) {
		if (!id_ok(s, 128, ALNUM "._:@-"))
			return errmsg(why, whylen, -EINVAL, "renter: 1..128 of [A-Za-z0-9._:@-]");
		snprintf(o->renter, sizeof(o->renter), "%s", s);
	} else if (r != -ENOENT) {
		return errmsg(why, whylen, -EINVAL, "renter: not a string");
	}
	if ((r = get_u(msg, "pow_bits", false, 64, &v, why, whylen)) < 0)
		return r;
	if (v > OFFER_POW_BITS_MAX)
		return errmsg(why, whylen, -EINVAL,
			      "pow_bits %llu: this agent mints stamps of at most %d bits",
			      (unsigned long long)v, OFFER_POW_BITS_MAX);
	o->pow_bits = (uint32_t)v;
	*ret_offer = TAKE_PTR(o);
	return 0;
}

int offer_check(const struct agent_config *cfg, const struct offer_load *load, bool in_window,
		const struct offer *o, char *why, size_t whylen)
{
	uint64_t mc = (uint64_t)o->cores * 1000, mem = o->mem_mb * MIB;

	if (mc > cfg->max_millicores)
		return errmsg(why, whylen, -E2BIG, "needs %u cores; this node offers %u.%03u",
			      o->cores, cfg->max_millicores / 1000, cfg->max_millicores % 1000);
	if (mem > cfg->max_memory)
		return errmsg(why, whylen, -E2BIG, "needs %llu MiB; this node offers %llu MiB",
			      (unsigned long long)o->mem_mb,
			      (unsigned long long)(cfg->max_memory / MIB));
	if (!in_window)
		return errmsg(why, whylen, -EAGAIN, "outside the node's availability windows");
	if (load->tasks >= cfg->max_tasks)
		return errmsg(why, whylen, -EAGAIN, "max_tasks (%u) reached", cfg->max_tasks);
	if (load->millicores + mc > cfg->max_millicores)
		return errmsg(why, whylen, -EAGAIN,
			      "not enough free cores: %u needed, %u.%03u of %u.%03u free", o->cores,
			      (cfg->max_millicores - load->millicores) / 1000,
			      (cfg->max_millicores - load->millicores) % 1000,
			      cfg->max_millicores / 1000, cfg->max_millicores % 1000);
	if (load->memory + mem > cfg->max_memory)
		return errmsg(why, whylen, -EAGAIN,
			      "not enough free memory: %llu MiB needed, %llu MiB free",
			      (unsigned long long)o->mem_mb,
			      (unsigned long long)((cfg->max_memory - load->memory) / MIB));
	return 0;
}
