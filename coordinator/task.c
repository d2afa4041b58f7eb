/* task.c -- task lifecycle through the store and the scheduler: SUBMIT validation, node events, recovery. */
#include "task.h"

#include "blobs.h"

#include <aicn/canon.h>
#include <aicn/compiler.h>
#include <aicn/errmsg.h>
#include <aicn/hash.h>
#include <aicn/window.h>

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TASK_MAX_CORES 4096
#define TASK_MIN_MEMORY (1ULL << 20)
#define TASK_MAX_MEMORY (64ULL << 40)
#define TASK_MAX_WALL (30LL * 86400)
#define TASK_MAX_PRICE 1000000000000LL /* base units per CPU-hour */
#define TASK_MAX_ARGS 256
#define TASK_MAX_ARG_LEN 4096
#define TASK_MAX_CMD_BYTES 65536
#define TASK_MAX_ENV 256
#define TASK_MAX_DEADLINE (30LL * 86400)
#define TASK_MAX_PRIORITY 9
#define RATE_TEXT_MAX 1024
#define NODE_MAX_RUNNING 65536
#define TASK_MAX_INPUTS 64
#define TASK_INPUT_PATH_MAX 256

struct coord {
	struct coord_params p;
	struct store *st;
	struct sched *sc;
	struct blobs *bl;
	uint64_t active;	 /* unfinished tasks */
	coord_task_hook_fn hook; /* told of every task state change */
	void *hook_ud;
};

void coord_set_task_hook(struct coord *c, coord_task_hook_fn fn, void *ud)
{
	c->hook = fn;
	c->hook_ud = ud;
}

static void task_changed(struct coord *c, int64_t task_id, int state)
{
	if (c->hook)
		c->hook(c->hook_ud, task_id, state);
}

static const char *const task_names[TASK_STATE_N] = {"queued", "running",   "done",
						     "failed", "cancelled", "expired"};
static const char *const replica_names[REPLICA_STATE_N] = {
	"assigned", "running", "done", "failed", "rejected", "lost", "cancelled"};

const char *task_state_name(int state)
{
	return state >= 0 && state < TASK_STATE_N ? task_names[state] : "?";
}

const char *replica_state_name(int state)
{
	return state >= 0 && state < REPLICA_STATE_N ? replica_names[state] : "?";
}

bool task_transition_valid(int from, int to)
{
	switch (from) {
	case TASK_QUEUED:
		return to == TASK_RUNNING || to == TASK_DONE || to == TASK_FAILED ||
		       to == TASK_CANCELLED || to == TASK_EXPIRED;
	case TASK_RUNNING:
		return to == TASK_QUEUED || to == TASK_DONE || to == TASK_FAILED ||
		       to == TASK_CANCELLED;
	default:
		return false; /* DONE, FAILED, CANCELLED and EXPIRED are final */
	}
}

void coord_params_default(struct coord_params *ret)
{
	*ret = (struct coord_params){
		.heartbeat_timeout = 30,
		.retry_cap = 3,
		.blob_retention = 7 * 86400,
		.result_grace = 0,
		.max_active = 1000000,
		.batch_max = 4096,
		.sched_max = 100000,
	};
}

void coord_actions_clear(struct coord_actions *a)
{
	free(a->v);
	*a = (struct coord_actions){0};
}

static int action_add(struct coord_actions *a, enum coord_action_kind kind, int64_t node,
		      int64_t task_id, uint32_t idx, int64_t replica_id)
{
	if (!a)
		return 0;
	if (a->n == a->cap) {
		size_t ncap = a->cap ? a->cap * 2 : 64;
		struct coord_action *nv = realloc(a->v, ncap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		a->v = nv;
		a->cap = ncap;
	}
	a->v[a->n++] = (struct coord_action){kind, node, task_id, idx, replica_id};
	return 0;
}

struct store *coord_store(struct coord *c)
{
	return c->st;
}

struct sched *coord_sched(struct coord *c)
{
	return c->sc;
}

struct blobs *coord_blobs(struct coord *c)
{
	return c->bl;
}

int coord_flush(struct coord *c)
{
	return store_flush(c->st);
}

/* --- field helpers for the strict parsers --- */

static bool is_node_id(const char *s)
{
	size_t n = 0;

	for (; s[n]; n++)
		if (!isdigit((unsigned char)s[n]) && !(s[n] >= 'a' && s[n] <= 'f'))
			return false;
	return n == STORE_NODE_ID_LEN;
}

static bool is_location(const char *s)
{
	size_t n = 0;

	for (; s[n]; n++)
		if (!isalnum((unsigned char)s[n]) && !strchr("-/_.", s[n]))
			return false;
	return n >= 1 && n <= SCHED_LOCATION_MAX;
}

static bool is_printable(const char *s, size_t max)
{
	size_t n = 0;

	for (; s[n]; n++)
		if ((unsigned char)s[n] < 0x20 || s[n] == 0x7f)
			return false;
	return n <= max;
}

/* Integer member KEY within [min, max]; absent -> def (or an error when required). */
static int get_int(const cJSON *o, const char *key, int64_t min, int64_t max, bool required,
		   int64_t def, int64_t *ret, char *err, size_t errlen)
{
	int r = canon_get_i64(o, key, ret);

	if (r == -ENOENT) {
		if (required)
			return errmsg(err, errlen, -EINVAL, "%s: missing (an integer is required)",
				      key);
		*ret = def;
		return 0;
	}
	if (r < 0 || *ret < min || *ret > max)
		return errmsg(err, errlen, -EINVAL, "%s: must be an integer from %lld to %lld", key,
			      (long long)min, (long long)max);
	return 0;
}

static int get_string(const cJSON *o, const char *key, bool required, const char **ret, char *err,
		      size_t errlen)
{
	int r = canon_get_str(o, key, ret);

	if (r == -ENOENT) {
		*ret = NULL;
		return required ? errmsg(err, errlen, -EINVAL, "%s: missing (a string is required)",
					 key)
				: 0;
	}
	if (r < 0)
		return errmsg(err, errlen, -EINVAL, "%s: must be a string", key);
	return 0;
}

static int check_members(const cJSON *o, const char *const *known, char *err, size_t errlen)
{
	const cJSON *it;

	cJSON_ArrayForEach (it, o) {
		bool ok = false;

		for (const char *const *k = known; *k && !ok; k++)
			ok = it->string && strcmp(it->string, *k) == 0;
		if (!ok)
			return errmsg(err, errlen, -EINVAL, "unknown field \"%.64s\"",
				      it->string ? it->string : "");
	}
	return 0;
}

/* --- SUBMIT --- */

static const char *const submit_fields[] = {
	"image",	   "command",	"env",	    "cores",	  "memory",    "max_wall_seconds",
	"max_cpu_seconds", "max_price", "location", "min_rating", "providers", "policy",
	"replicas",	   "priority",	"deadline", "client_ref", "inputs",    NULL,
};

/* An input's place under the task's /work/in: relative, no "." or ".." or empty parts. */
static bool is_input_path(const char *s)
{
	size_t n = strlen(s), part = 0;

	if (!n || n > TASK_INPUT_PATH_MAX || s[0] == '/')
		return false;
	for (size_t i = 0; i <= n; i++) {
		if (s[i] == '/' || !s[i]) {
			if (!part || (part == 1 && s[i - 1] == '.') ||
			    (part == 2 && s[i - 1] == '.' && s[i - 2] == '.'))
				return false;
			part = 0;
			continue;
		}
		if (!isalnum((unsigned char)s[i]) && !strchr("._-+", s[i]))
			return false;
		part++;
	}
	return true;
}

/* SUBMIT "inputs": [{digest, path}], each an uploaded blob; the spec keeps {digest, path, size}. */
static int inputs_parse(struct coord *c, const cJSON *in, cJSON **ret, char *err, size_t errlen)
{
	const cJSON *it;
	cJSON *arr;
	int n = cJSON_IsArray(in) ? cJSON_GetArraySize(in) : -1, i = 0;

	if (n < 0 || n > TASK_MAX_INPUTS)
		return errmsg(err, errlen, -EINVAL,
			      "inputs: must be an array of at most %d {digest, path} objects",
			      TASK_MAX_INPUTS);
	arr = cJSON_CreateArray();
	if (!arr)
		return -ENOMEM;
	cJSON_ArrayForEach (it, in) {
		static const char *const fields[] = {"digest", "path", NULL};
		const char *digest = NULL, *path = NULL;
		struct store_blob sb = {0};
		uint8_t dig[SHA256_LEN];
		cJSON *o;
		int r;

		if (!cJSON_IsObject(it)) {
			cJSON_Delete(arr);
			return errmsg(err, errlen, -EINVAL, "inputs[%d]: must be an object", i);
		}
		r = check_members(it, fields, err, errlen);
		if (r >= 0 &&
		    (canon_get_str(it, "digest", &digest) < 0 || digest_parse(digest, dig) < 0))
			r = errmsg(err, errlen, -EINVAL,
				   "inputs[%d].digest: must be sha256:<64 hex digits>", i);
		if (r >= 0 && (canon_get_str(it, "path", &path) < 0 || !is_input_path(path)))
			r = errmsg(err, errlen, -EINVAL,
				   "inputs[%d].path: a relative path of at most %d bytes of "
				   "[A-Za-z0-9._+-] parts, no . or .. parts",
				   i, TASK_INPUT_PATH_MAX);
		for (const cJSON *p = arr->child; r >= 0 && p; p = p->next) {
			const char *q = cJSON_GetObjectItemCaseSensitive(p, "path")->valuestring;

			if (strcmp(q, path) == 0)
				r = errmsg(err, errlen, -EINVAL,
					   "inputs[%d].path: \"%.64s\" given twice", i, path);
		}
		if (r >= 0) {
			r = blobs_has(c->bl, digest);
			if (r == 0)
				r = errmsg(
					err, errlen, -EINVAL,
					"inputs[%d].digest: unknown blob %.80s (upload it first)",
					i, digest);
			else if (r > 0)
				r = store_blob_get(c->st, digest, &sb);
			if (r < 0 && err && !err[0])
				errmsg(err, errlen, r, "inputs[%d]: blob lookup failed", i);
		}
		if (r < 0) {
			cJSON_Delete(arr);
			return r;
		}
		o = cJSON_CreateObject();
		if (!o || !cJSON_AddStringToObject(o, "digest", digest) ||
		    !cJSON_AddStringToObject(o, "path", path) ||
		    canon_add_u64(o, "size", sb.size) < 0 || !cJSON_AddItemToArray(arr, o)) {
			cJSON_Delete(o);
			cJSON_Delete(arr);
			return -ENOMEM;
		}
		i++;
	}
	*ret = arr;
	return 0;
}

static int add_i64(cJSON *o, const char *key, int64_t v)
{
	return canon_add_i64(o, key, v);
}

static int copy_member(cJSON *dst, const cJSON *src, const char *key)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(src, key);
	cJSON *dup;

	if (!it)
		return 0;
	dup = cJSON_Duplicate(it, 1);
	if (!dup || !cJSON_AddItemToObject(dst, key, dup)) {
		cJSON_Delete(dup);
		return -ENOMEM;
	}
	return 0;
}

/*
 * Validate a SUBMIT body completely.  Fills *t (sched fields) and returns the
 * normalised spec (defaults filled in) as a cJSON tree in *ret_spec.
 */
static int submit_parse(struct coord *c, const cJSON *req, int64_t now, struct sched_task *t,
			int64_t *ret_max_cost, cJSON **ret_spec, char *err, size_t errlen)
{
	const char *image, *location, *policy, *client_ref;
	const cJSON *cmd, *env, *prov, *it, *inputs;
	cJSON *inputs_spec = NULL;
	int64_t cores, memory, wall, cpu, price, rating, replicas, prio, deadline;
	uint32_t fitting = 0, prov_max_cores = 0;
	uint64_t prov_max_mem = 0, cmd_bytes = 0;
	uint8_t dig[SHA256_LEN];
	__int128 cost;
	cJSON *spec;
	int r, n;

	if (!cJSON_IsObject(req))
		return errmsg(err, errlen, -EINVAL, "submit: the body must be a JSON object");
	r = check_members(req, submit_fields, err, errlen);
	if (r < 0)
		return r;
	r = get_string(req, "image", true, &image, err, errlen);
	if (r < 0)
		return r;
	if (digest_parse(image, dig) < 0)
		return errmsg(err, errlen, -EINVAL,
			      "image: must be a digest like sha256:<64 hex digits>");
	cmd = cJSON_GetObjectItemCaseSensitive(req, "command");
	if (!cmd)
		return errmsg(err, errlen, -EINVAL,
			      "command: missing (an array of strings is required)");
	n = cJSON_IsArray(cmd) ? cJSON_GetArraySize(cmd) : -1;
	if (n < 1 || n > TASK_MAX_ARGS)
		return errmsg(err, errlen, -EINVAL, "command: must be an array of 1 to %d strings",
			      TASK_MAX_ARGS);
	cJSON_ArrayForEach (it, cmd) {
		size_t len;

		if (!cJSON_IsString(it) || !it->valuestring)
			return errmsg(err, errlen, -EINVAL,
				      "command: every element must be a string");
		len = strlen(it->valuestring);
		if (len > TASK_MAX_ARG_LEN)
			return errmsg(err, errlen, -EINVAL,
				      "command: an argument is longer than %d bytes",
				      TASK_MAX_ARG_LEN);
		cmd_bytes += len + 1;
	}
	if (!cJSON_GetArrayItem(cmd, 0)->valuestring[0])
		return errmsg(err, errlen, -EINVAL,
			      "command: the program (first element) is empty");
	env = cJSON_GetObjectItemCaseSensitive(req, "env");
	if (env) {
		if (!cJSON_IsObject(env) || cJSON_GetArraySize(env) > TASK_MAX_ENV)
			return errmsg(err, errlen, -EINVAL,
				      "env: must be an object of at most %d string values",
				      TASK_MAX_ENV);
		cJSON_ArrayForEach (it, env) {
			const char *k = it->string;
			bool ok = k && (isalpha((unsigned char)k[0]) || k[0] == '_');

			for (size_t i = 1; ok && k[i]; i++)
				ok = isalnum((unsigned char)k[i]) || k[i] == '_';
			if (!ok || strlen(k) > 255)
				return errmsg(
					err, errlen, -EINVAL,
					"env: \"%.64s\" is not a variable name ([A-Za-z_][A-Za-z0-9_]*)",
					k ? k : "");
			if (!cJSON_IsString(it) || strlen(it->valuestring) > TASK_MAX_ARG_LEN)
				return errmsg(err, errlen, -EINVAL,
					      "env: %.64s: must be a string of at most %d bytes", k,
					      TASK_MAX_ARG_LEN);
			cmd_bytes += strlen(k) + strlen(it->valuestring) + 2;
		}
	}
	if (cmd_bytes > TASK_MAX_CMD_BYTES)
		return errmsg(err, errlen, -EINVAL, "command and env: more than %d bytes together",
			      TASK_MAX_CMD_BYTES);
	if ((r = get_int(req, "cores", 1, TASK_MAX_CORES, true, 0, &cores, err, errlen)) < 0 ||
	    (r = get_int(req, "memory", TASK_MIN_MEMORY, TASK_MAX_MEMORY, true, 0, &memory, err,
			 errlen)) < 0 ||
	    (r = get_int(req, "max_wall_seconds", 1, TASK_MAX_WALL, true, 0, &wall, err, errlen)) <
		    0 ||
	    (r = get_int(req, "max_cpu_seconds", 1, cores * wall, false, cores * wall, &cpu, err,
			 errlen)) < 0 ||
	    (r = get_int(req, "max_price", 0, TASK_MAX_PRICE, true, 0, &price, err, errlen)) < 0 ||
	    (r = get_int(req, "min_rating", 1, 5, false, 0, &rating, err, errlen)) < 0 ||
	    (r = get_int(req, "replicas", 1, SCHED_MAX_REPLICAS, false, 1, &replicas, err,
			 errlen)) < 0 ||
	    (r = get_int(req, "priority", 0, TASK_MAX_PRIORITY, false, 0, &prio, err, errlen)) <
		    0 ||
	    (r = get_int(req, "deadline", now + 1, now + TASK_MAX_DEADLINE, false, 0, &deadline,
			 err, errlen)) < 0)
		return r;
	if ((r = get_string(req, "location", false, &location, err, errlen)) < 0 ||
	    (r = get_string(req, "policy", false, &policy, err, errlen)) < 0 ||
	    (r = get_string(req, "client_ref", false, &client_ref, err, errlen)) < 0)
		return r;
	if (location && !is_location(location))
		return errmsg(err, errlen, -EINVAL,
			      "location: 1 to %d letters, digits or -/_. (e.g. \"eu-west\")",
			      SCHED_LOCATION_MAX);
	if (client_ref && (!client_ref[0] || !is_printable(client_ref, STORE_REF_MAX)))
		return errmsg(err, errlen, -EINVAL, "client_ref: 1 to %d printable characters",
			      STORE_REF_MAX);

	memset(t, 0, sizeof(*t));
	t->cores = (uint32_t)cores;
	t->memory = (uint64_t)memory;
	t->max_price = price;
	t->min_rating_centi = (int32_t)rating * 100;
	t->replicas = (uint32_t)replicas;
	t->priority = (int32_t)prio;
	t->deadline = deadline;
	if (location)
		snprintf(t->location, sizeof(t->location), "%s", location);

	prov = cJSON_GetObjectItemCaseSensitive(req, "providers");
	if (prov) {
		n = cJSON_IsArray(prov) ? cJSON_GetArraySize(prov) : -1;
		if (n < 1 || n > SCHED_MAX_PROVIDERS)
			return errmsg(err, errlen, -EINVAL,
				      "providers: must be an array of 1 to %d node ids",
				      SCHED_MAX_PROVIDERS);
		if (policy && strcmp(policy, "explicit") != 0)
			return errmsg(err, errlen, -EINVAL,
				      "policy: \"%.16s\" cannot be combined with providers",
				      policy);
		t->policy = SCHED_EXPLICIT;
		cJSON_ArrayForEach (it, prov) {
			struct store_node sn;
			const struct sched_node *nd;

			if (!cJSON_IsString(it) || !is_node_id(it->valuestring))
				return errmsg(
					err, errlen, -EINVAL,
					"providers: each must be a node id (64 lowercase hex digits)");
			r = store_node_find(c->st, it->valuestring, &sn);
			if (r == -ENOENT)
				return errmsg(err, errlen, -EINVAL,
					      "providers: unknown provider %.16s...",
					      it->valuestring);
			if (r < 0)
				return errmsg(err, errlen, r, "providers: lookup failed");
			for (uint32_t k = 0; k < t->nproviders; k++)
				if (t->providers[k] == sn.id)
					return errmsg(err, errlen, -EINVAL,
						      "providers: %.16s... listed twice",
						      it->valuestring);
			t->providers[t->nproviders++] = sn.id;
			nd = sched_node_get(c->sc, sn.id);
			if (nd && nd->cores >= cores && nd->memory >= (uint64_t)memory)
				fitting++;
			if (nd) {
				prov_max_cores = MAX(prov_max_cores, nd->cores);
				prov_max_mem = MAX(prov_max_mem, nd->memory);
			}
		}
		if (cores > prov_max_cores)
			return errmsg(
				err, errlen, -EINVAL,
				"cores: %lld exceeds every chosen provider (largest offers %u)",
				(long long)cores, prov_max_cores);
		if ((uint64_t)memory > prov_max_mem)
			return errmsg(
				err, errlen, -EINVAL,
				"memory: %lld bytes exceeds every chosen provider (largest offers %llu)",
				(long long)memory, (unsigned long long)prov_max_mem);
	} else {
		if (policy) {
			r = sched_policy_parse(policy, &t->policy);
			if (r < 0 || t->policy == SCHED_EXPLICIT)
				return errmsg(
					err, errlen, -EINVAL,
					"policy: must be \"balanced\", \"cheapest\" or \"fastest\" "
					"(or give providers)");
		}
		if ((uint32_t)cores > sched_max_cores(c->sc))
			return errmsg(err, errlen, -EINVAL,
				      "cores: %lld exceeds every provider (largest offers %u)",
				      (long long)cores, sched_max_cores(c->sc));
		if ((uint64_t)memory > sched_max_memory(c->sc))
			return errmsg(
				err, errlen, -EINVAL,
				"memory: %lld bytes exceeds every provider (largest offers %llu)",
				(long long)memory, (unsigned long long)sched_max_memory(c->sc));
		for (unsigned i = 0; i < sched_node_count(c->sc); i++) {
			const struct sched_node *nd = sched_node_at(c->sc, i);

			if (nd->known && nd->cores >= cores && nd->memory >= (uint64_t)memory)
				fitting++;
		}
	}
	if (fitting < replicas)
		return errmsg(
			err, errlen, -EINVAL,
			"replicas: %lld need as many distinct providers with %lld cores; %u known",
			(long long)replicas, (long long)cores, fitting);
	r = blobs_has(c->bl, image);
	if (r < 0)
		return errmsg(err, errlen, r, "image: blob lookup failed");
	if (r == 0)
		return errmsg(err, errlen, -EINVAL,
			      "image: unknown image digest %.80s (upload it first)", image);
	/* The most the renter can be charged: escrowed by settlement. */
	cost = ((__int128)price * cpu + 3599) / 3600;
	if (cost > INT64_MAX)
		return errmsg(err, errlen, -EINVAL, "max_price x max_cpu_seconds: too large");
	*ret_max_cost = (int64_t)cost;
	inputs = cJSON_GetObjectItemCaseSensitive(req, "inputs");
	if (inputs) {
		r = inputs_parse(c, inputs, &inputs_spec, err, errlen);
		if (r < 0)
			return r;
	}

	spec = cJSON_CreateObject();
	if (!spec) {
		cJSON_Delete(inputs_spec);
		return -ENOMEM;
	}
	r = 0;
	if (inputs_spec && !cJSON_AddItemToObject(spec, "inputs", inputs_spec)) {
		cJSON_Delete(inputs_spec);
		r = -ENOMEM;
	}
	if (r >= 0 && !cJSON_AddStringToObject(spec, "image", image))
		r = -ENOMEM;
	if (r >= 0)
		r = copy_member(spec, req, "command");
	if (r >= 0)
		r = copy_member(spec, req, "env");
	if (r >= 0)
		r = copy_member(spec, req, "providers");
	if (r >= 0)
		r = add_i64(spec, "cores", cores);
	if (r >= 0)
		r = add_i64(spec, "memory", memory);
	if (r >= 0)
		r = add_i64(spec, "max_wall_seconds", wall);
	if (r >= 0)
		r = add_i64(spec, "max_cpu_seconds", cpu);
	if (r >= 0)
		r = add_i64(spec, "max_price", price);
	if (r >= 0)
		r = add_i64(spec, "replicas", replicas);
	if (r >= 0)
		r = add_i64(spec, "priority", prio);
	if (r >= 0 && rating)
		r = add_i64(spec, "min_rating", rating);
	if (r >= 0 && deadline)
		r = add_i64(spec, "deadline", deadline);
	if (r >= 0 && location && !cJSON_AddStringToObject(spec, "location", location))
		r = -ENOMEM;
	if (r >= 0 && client_ref && !cJSON_AddStringToObject(spec, "client_ref", client_ref))
		r = -ENOMEM;
	if (r >= 0 && !cJSON_AddStringToObject(spec, "policy", sched_policy_name(t->policy)))
		r = -ENOMEM;
	if (r < 0) {
		cJSON_Delete(spec);
		return r;
	}
	*ret_spec = spec;
	return 0;
}

/* Rebuild the scheduling fields of a task from its stored spec (recovery). */
static int spec_to_sched(struct coord *c, const struct store_task *st_t, struct sched_task *t)
{
	cJSON *spec = NULL;
	const cJSON *prov, *it;
	const char *s;
	int64_t v;
	int r;

	r = canon_parse(st_t->spec, strlen(st_t->spec), CANON_MAX_DEPTH_DEFAULT, &spec, NULL);
	if (r < 0)
		return r;
	memset(t, 0, sizeof(*t));
	t->id = st_t->id;
	t->cores = st_t->cores;
	t->memory = st_t->memory;
	t->max_price = st_t->max_price;
	t->replicas = st_t->replicas;
	t->priority = st_t->priority;
	t->deadline = st_t->deadline;
	t->attempts = st_t->attempts;
	t->state = st_t->state;
	if (canon_get_i64(spec, "min_rating", &v) == 0)
		t->min_rating_centi = (int32_t)v * 100;
	if (canon_get_str(spec, "location", &s) == 0)
		snprintf(t->location, sizeof(t->location), "%s", s);
	if (canon_get_str(spec, "policy", &s) == 0)
		sched_policy_parse(s, &t->policy);
	prov = cJSON_GetObjectItemCaseSensitive(spec, "providers");
	cJSON_ArrayForEach (it, prov) {
		struct store_node sn;

		if (t->nproviders < SCHED_MAX_PROVIDERS && cJSON_IsString(it) &&
		    store_node_find(c->st, it->valuestring, &sn) == 0)
			t->providers[t->nproviders++] = sn.id;
	}
	cJSON_Delete(spec);
	return 0;
}

int coord_submit(struct coord *c, int64_t account, const cJSON *req, int64_t now, cJSON **ret_reply,
		 char *err, size_t errlen)
{
	struct store_task st_t = {0};
	struct sched_task t;
	_cleanup_free_ char *spec_text = NULL;
	cJSON *spec = NULL, *reply;
	int64_t existing = 0, max_cost = 0;
	bool duplicate = false;
	const char *ref = NULL;
	int r;

	if (err && errlen)
		err[0] = '\0';
	if (c->active >= c->p.max_active)
		return errmsg(err, errlen, -ENOSPC, "queue full (%llu unfinished tasks)",
			      (unsigned long long)c->active);
	r = submit_parse(c, req, now, &t, &max_cost, &spec, err, errlen);
	if (r < 0)
		return r;
	r = canon_print(spec, &spec_text, NULL);
	if (r >= 0 && canon_get_str(spec, "client_ref", &ref) == 0)
		snprintf(st_t.client_ref, sizeof(st_t.client_ref), "%s", ref);
	cJSON_Delete(spec);
	if (r < 0)
		return errmsg(err, errlen, r, "submit: cannot encode the task");

	st_t.account_id = account;
	snprintf(st_t.image, sizeof(st_t.image), "%s",
		 cJSON_GetObjectItemCaseSensitive(req, "image")->valuestring);
	st_t.spec = spec_text;
	st_t.cores = t.cores;
	st_t.memory = t.memory;
	st_t.max_price = t.max_price;
	st_t.replicas = t.replicas;
	st_t.priority = t.priority;
	st_t.deadline = t.deadline;
	st_t.state = TASK_QUEUED;
	st_t.submitted_at = now;

	r = store_op_begin(c->st);
	if (r < 0)
		return errmsg(err, errlen, r, "submit: store unavailable");
	r = store_task_insert(c->st, &st_t, &existing);
	if (r == -EEXIST) {
		struct store_task old;

		r = store_task_get(c->st, existing, &old);
		if (r >= 0) {
			if (strcmp(old.spec, spec_text) == 0) {
				duplicate = true;
				st_t.id = existing;
				st_t.state = old.state;
			} else {
				r = -EEXIST;
			}
			store_task_clear(&old);
		}
		store_op_end(c->st, r);
		if (r < 0)
			return errmsg(err, errlen, r,
				      "client_ref: already used by task %lld with a different spec",
				      (long long)existing);
	} else {
		const cJSON *in = cJSON_GetObjectItemCaseSensitive(req, "inputs"), *it;

		cJSON_ArrayForEach (it, in)
			if (r >= 0)
				r = store_task_input_add(
					c->st, st_t.id,
					cJSON_GetObjectItemCaseSensitive(it, "digest")
						->valuestring);
		if (r >= 0) {
			t.id = st_t.id;
			t.state = TASK_QUEUED;
			r = sched_task_add(c->sc, &t, NULL);
		}
		r = store_op_end(c->st, r);
		if (r < 0)
			return errmsg(err, errlen, r, "submit: cannot store the task");
		c->active++;
	}

	reply = cJSON_CreateObject();
	if (!reply || canon_add_i64(reply, "task_id", st_t.id) < 0 ||
	    !cJSON_AddStringToObject(reply, "state", task_state_name(st_t.state)) ||
	    canon_add_i64(reply, "max_cost", max_cost) < 0 ||
	    !cJSON_AddBoolToObject(reply, "duplicate", duplicate)) {
		cJSON_Delete(reply);
		return -ENOMEM; /* the task is stored; the renter retries with client_ref */
	}
	*ret_reply = reply;
	return 0;
}

/* --- lifecycle helpers --- */

static int set_task_state(struct coord *c, struct sched_task *t, enum task_state to,
			  const char *reason, int64_t now)
{
	int r;

	if (t->state == (int32_t)to)
		return store_task_set_state(c->st, t->id, to, t->attempts, reason ? reason : "", 0);
	if (!task_transition_valid(t->state, to))
		return -EINVAL;
	r = store_task_set_state(c->st, t->id, to, t->attempts, reason ? reason : "",
				 to >= TASK_DONE ? now : 0);
	if (r >= 0) {
		t->state = to;
		task_changed(c, t->id, to);
	}
	return r;
}

/* QUEUED while a slot waits, RUNNING when every unfinished slot is placed. */
static int refresh_state(struct coord *c, struct sched_task *t, const char *reason, int64_t now)
{
	bool waiting = false;

	for (uint32_t i = 0; i < t->replicas; i++)
		if (t->placed[i] < 0 && !t->finished[i])
			waiting = true;
	if (waiting && t->state != TASK_QUEUED)
		return set_task_state(c, t, TASK_QUEUED, reason, now);
	if (!waiting && t->state != TASK_RUNNING)
		return set_task_state(c, t, TASK_RUNNING, "", now);
	return 0;
}

struct cancel_ctx {
	struct coord *c;
	struct coord_actions *actions;
	enum replica_state to;
	const char *reason;
	int64_t now;
};

static int cancel_replica_cb(const struct store_replica *rep, void *userdata)
{
	struct cancel_ctx *x = userdata;
	int r;

	r = store_replica_set_state(x->c->st, rep->id, x->to, 0, "", x->reason, x->now);
	if (r < 0)
		return r;
	return action_add(x->actions, COORD_CANCEL, rep->node, rep->task_id, rep->idx, rep->id);
}

/* Final state: live replicas cancelled (agents told), scheduler forgets the task. */
static int task_end(struct coord *c, struct sched_task *t, enum task_state to, const char *reason,
		    int64_t now, struct coord_actions *actions)
{
	struct cancel_ctx x = {c, actions, REPLICA_CANCELLED, reason, now};
	int r;

	if (!task_transition_valid(t->state, to))
		return -EINVAL;
	r = store_op_begin(c->st);
	if (r < 0)
		return r;
	r = store_replica_foreach(c->st, t->id, 0, cancel_replica_cb, &x);
	if (r >= 0)
		r = set_task_state(c, t, to, reason, now);
	r = store_op_end(c->st, r);
	if (r < 0)
		return r;
	sched_task_remove(c->sc, t->id);
	if (c->active)
		c->active--;
	return 0;
}

/* A placed slot ended without finishing: queue it again, or give up past the retry cap. */
static int slot_retry(struct coord *c, struct sched_task *t, uint32_t idx, bool exclude,
		      const char *why, int64_t now, struct coord_actions *actions)
{
	char reason[STORE_REASON_MAX];
	int r;

	r = sched_slot_requeue(c->sc, t, idx, exclude);
	if (r < 0)
		return r;
	if (t->attempts > c->p.retry_cap) {
		snprintf(reason, sizeof(reason), "gave up after %u attempts; last: %s", t->attempts,
			 why);
		return task_end(c, t, TASK_FAILED, reason, now, actions);
	}
	return refresh_state(c, t, why, now);
}

/* --- scheduling --- */

struct place_ctx {
	struct coord *c;
	int64_t now;
	struct coord_actions *actions;
};

static int place_cb(void *userdata, struct sched_task *t, uint32_t idx, const struct sched_node *n)
{
	struct place_ctx *x = userdata;
	struct coord *c = x->c;
	int64_t rid = 0;
	bool waiting = false;
	int r;

	r = store_op_begin(c->st);
	if (r < 0)
		return r;
	r = store_replica_assign(c->st, t->id, idx, n->id, t->attempts, x->now, &rid);
	for (uint32_t i = 0; i < t->replicas; i++)
		if (i != idx && t->placed[i] < 0 && !t->finished[i])
			waiting = true;
	if (r >= 0 && !waiting && t->state != TASK_RUNNING)
		r = store_task_set_state(c->st, t->id, TASK_RUNNING, t->attempts, "", 0);
	if (r >= 0)
		r = action_add(x->actions, COORD_OFFER, n->id, t->id, idx, rid);
	r = store_op_end(c->st, r);
	if (r >= 0 && !waiting && t->state != TASK_RUNNING) {
		t->state = TASK_RUNNING;
		task_changed(c, t->id, TASK_RUNNING);
	}
	return r;
}

static void expire_cb(void *userdata, struct sched_task *t)
{
	struct place_ctx *x = userdata;
	bool started = false;

	for (uint32_t i = 0; i < t->replicas; i++)
		if (t->placed[i] >= 0 || t->finished[i])
			started = true;
	/* The deadline is the latest start: a task that already runs keeps running. */
	if (!started)
		task_end(x->c, t, TASK_EXPIRED, "deadline passed before a provider was free",
			 x->now, x->actions);
}

int coord_schedule(struct coord *c, int64_t now, unsigned max, struct coord_actions *actions)
{
	static const struct sched_ops ops = {.place = place_cb, .expire = expire_cb};
	struct place_ctx x = {c, now, actions};

	return sched_run(c->sc, now, max, &ops, &x);
}

/* --- nodes --- */

struct lost_ctx {
	struct coord *c;
	struct coord_actions *actions;
	int64_t now;
	const char *why;
	const int64_t *keep; /* task ids the node still runs (register), sorted */
	size_t nkeep;
};

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static int lost_cb(const struct store_replica *rep, void *userdata)
{
	struct lost_ctx *x = userdata;
	struct sched_task *t;
	int r;

	if (x->nkeep && bsearch(&rep->task_id, x->keep, x->nkeep, sizeof(int64_t), cmp_i64))
		return 0;
	t = sched_task_get(x->c->sc, rep->task_id);
	r = store_replica_set_state(x->c->st, rep->id, REPLICA_LOST, 0, "", x->why, x->now);
	if (r < 0 || !t || t->placed[rep->idx] < 0)
		return r;
	return slot_retry(x->c, t, rep->idx, false, x->why, x->now, x->actions);
}

static int node_lost(struct coord *c, struct sched_node *n, int64_t now,
		     struct coord_actions *actions)
{
	struct lost_ctx x = {c, actions, now, "provider lost (no heartbeat)", NULL, 0};
	int64_t id = n->id;

	sched_node_online(c->sc, id, false);
	if (n->tasks == 0)
		return 0;
	return store_replica_foreach_node(c->st, id, lost_cb, &x);
}

static const char *const register_fields[] = {
	"cores",  "memory",	"price",     "perf",	"location", "renewable_ppm",
	"window", "utc_offset", "max_tasks", "running", NULL,
};

int coord_node_register(struct coord *c, int64_t account, const char *node_id, const cJSON *req,
			int64_t now, int64_t *ret_node, struct coord_actions *actions, char *err,
			size_t errlen)
{
	struct store_node sn = {0};
	struct sched_node nd = {0};
	const char *location, *window;
	const cJSON *running, *it;
	_cleanup_free_ int64_t *keep = NULL;
	size_t nkeep = 0;
	int64_t v, id;
	char werr[128];
	int r, n;

	if (!node_id || !is_node_id(node_id))
		return errmsg(err, errlen, -EINVAL, "node id: must be 64 lowercase hex digits");
	if (!cJSON_IsObject(req))
		return errmsg(err, errlen, -EINVAL, "register: the body must be a JSON object");
	r = check_members(req, register_fields, err, errlen);
	if (r < 0)
		return r;
	if ((r = get_int(req, "cores", 1, TASK_MAX_CORES, true, 0, &v, err, errlen)) < 0)
		return r;
	sn.cores = (uint32_t)v;
	if ((r = get_int(req, "memory", TASK_MIN_MEMORY, TASK_MAX_MEMORY, true, 0, &v, err,
			 errlen)) < 0)
		return r;
	sn.memory = (uint64_t)v;
	if ((r = get_int(req, "price", 0, TASK_MAX_PRICE, true, 0, &sn.price, err, errlen)) < 0 ||
	    (r = get_int(req, "perf", 0, INT64_MAX / 4, false, 0, &sn.perf, err, errlen)) < 0)
		return r;
	if ((r = get_int(req, "renewable_ppm", 0, 1000000, false, 0, &v, err, errlen)) < 0)
		return r;
	sn.renewable_ppm = (uint32_t)v;
	if ((r = get_int(req, "utc_offset", -14 * 3600, 14 * 3600, false, 0, &v, err, errlen)) < 0)
		return r;
	sn.utc_offset = (int32_t)v;
	if ((r = get_int(req, "max_tasks", 0, 65536, false, 0, &v, err, errlen)) < 0)
		return r;
	sn.max_tasks = (uint32_t)v;
	if ((r = get_string(req, "location", false, &location, err, errlen)) < 0 ||
	    (r = get_string(req, "window", false, &window, err, errlen)) < 0)
		return r;
	if (location && location[0] && !is_location(location))
		return errmsg(err, errlen, -EINVAL,
			      "location: 1 to %d letters, digits or -/_. (e.g. \"eu-west\")",
			      SCHED_LOCATION_MAX);
	if (!window)
		window = "always";
	r = window_parse(window, &nd.window, werr, sizeof(werr));
	if (r < 0)
		return errmsg(err, errlen, -EINVAL, "window: %s", werr);
	running = cJSON_GetObjectItemCaseSensitive(req, "running");
	if (running) {
		n = cJSON_IsArray(running) ? cJSON_GetArraySize(running) : -1;
		if (n < 0 || n > NODE_MAX_RUNNING)
			return errmsg(err, errlen, -EINVAL,
				      "running: must be an array of task ids");
		keep = calloc((size_t)n + 1, sizeof(*keep));
		if (!keep)
			return -ENOMEM;
		cJSON_ArrayForEach (it, running) {
			if (canon_number_i64(it, &v) < 0 || v <= 0)
				return errmsg(err, errlen, -EINVAL,
					      "running: must be an array of task ids");
			keep[nkeep++] = v;
		}
		qsort(keep, nkeep, sizeof(*keep), cmp_i64);
	}
	snprintf(sn.node_id, sizeof(sn.node_id), "%s", node_id);
	snprintf(sn.location, sizeof(sn.location), "%s", location ? location : "");
	snprintf(sn.window, sizeof(sn.window), "%s", window);
	sn.account_id = account;
	sn.registered_at = now;
	sn.last_seen = now;
	r = store_node_upsert(c->st, &sn, &id);
	if (r < 0)
		return errmsg(err, errlen, r, "register: cannot store the node");

	nd.id = id;
	memcpy(nd.node_id, sn.node_id, sizeof(nd.node_id));
	nd.cores = sn.cores;
	nd.memory = sn.memory;
	nd.max_tasks = sn.max_tasks;
	nd.price = sn.price;
	nd.perf = sn.perf;
	memcpy(nd.location, sn.location, sizeof(nd.location));
	nd.utc_offset = sn.utc_offset;
	nd.last_seen = now;
	nd.seen_stored = now;
	{
		uint32_t count = 0;

		r = store_node_rating(c->st, id, &nd.rating_centi, &count);
		if (r < 0)
			return errmsg(err, errlen, r, "register: cannot read the rating");
	}
	r = sched_node_set(c->sc, &nd);
	if (r < 0)
		return errmsg(err, errlen, r, "register: out of memory");

	/* Tasks it runs that are no longer its own: stop them. */
	for (size_t i = 0; i < nkeep; i++) {
		struct store_replica rep;

		r = store_replica_find_live(c->st, keep[i], id, &rep);
		if (r == -ENOENT) {
			r = action_add(actions, COORD_CANCEL, id, keep[i], 0, 0);
			keep[i] = 0; /* not ours: do not protect it below */
		}
		if (r < 0)
			return errmsg(err, errlen, r, "register: reconcile failed");
	}
	if (nkeep)
		qsort(keep, nkeep, sizeof(*keep), cmp_i64);
	/* Tasks it holds but no longer runs (lost in a crash, offer never arrived): requeue. */
	{
		struct lost_ctx x = {c,	   actions, now, "provider restarted without the task",
				     keep, nkeep};

		r = store_replica_foreach_node(c->st, id, lost_cb, &x);
		if (r < 0)
			return errmsg(err, errlen, r, "register: reconcile failed");
	}
	sched_node_online(c->sc, id, true);
	*ret_node = id;
	return 0;
}

int coord_node_heartbeat(struct coord *c, int64_t node, int64_t now)
{
	struct sched_node *n = sched_node_get(c->sc, node);

	if (!n)
		return -ENOENT;
	n->last_seen = now;
	/* The store's copy is informational: write it at most once a minute per node. */
	if (now - n->seen_stored >= 60) {
		n->seen_stored = now;
		return store_node_seen(c->st, node, now);
	}
	return 0;
}

int coord_node_disconnected(struct coord *c, int64_t node, int64_t now)
{
	struct sched_node *n = sched_node_get(c->sc, node);

	if (!n)
		return -ENOENT;
	(void)now;
	return sched_node_online(c->sc, node, false);
}

/* --- task events from agents --- */

struct done_ctx {
	bool all_done;
	int64_t node;
};

int coord_task_event(struct coord *c, int64_t node, int64_t task_id, enum coord_task_event ev,
		     int32_t exit_code, const char *result_digest, const char *reason, int64_t now,
		     struct coord_actions *actions)
{
	struct sched_task *t = sched_task_get(c->sc, task_id);
	struct store_replica rep;
	uint8_t dig[SHA256_LEN];
	char why[STORE_REASON_MAX];
	int r;

	snprintf(why, sizeof(why), "%s", reason ? reason : "");
	for (char *p = why; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	r = store_replica_find_live(c->st, task_id, node, &rep);
	if (r == -ENOENT || (r >= 0 && !t)) {
		/* Not this node's task (any more): make sure it stops. */
		if (ev == COORD_EV_STARTED)
			action_add(actions, COORD_CANCEL, node, task_id, 0, 0);
		return -ESTALE;
	}
	if (r < 0)
		return r;
	switch (ev) {
	case COORD_EV_STARTED:
		if (rep.state == REPLICA_RUNNING)
			return 0;
		return store_replica_set_state(c->st, rep.id, REPLICA_RUNNING, 0, "", "", now);
	case COORD_EV_REJECTED:
	case COORD_EV_FAILED:
		r = store_op_begin(c->st);
		if (r < 0)
			return r;
		r = store_replica_set_state(
			c->st, rep.id, ev == COORD_EV_REJECTED ? REPLICA_REJECTED : REPLICA_FAILED,
			exit_code, "", why, now);
		if (r >= 0)
			r = slot_retry(c, t, rep.idx, true,
				       why[0] ? why
					      : (ev == COORD_EV_REJECTED ? "rejected by provider"
									 : "sandbox failure"),
				       now, actions);
		return store_op_end(c->st, r);
	case COORD_EV_FINISHED: {
		bool all = true;

		if (result_digest && result_digest[0] && digest_parse(result_digest, dig) < 0)
			return -EINVAL;
		r = store_op_begin(c->st);
		if (r < 0)
			return r;
		r = store_replica_set_state(c->st, rep.id, REPLICA_DONE, exit_code,
					    result_digest ? result_digest : "", "", now);
		if (r >= 0)
			r = sched_slot_finished(c->sc, t, rep.idx);
		for (uint32_t i = 0; i < t->replicas; i++)
			if (!t->finished[i])
				all = false;
		if (r >= 0 && all) {
			r = store_task_set_result(c->st, t->id, result_digest ? result_digest : "",
						  exit_code);
			if (r >= 0)
				r = set_task_state(c, t, TASK_DONE, "", now);
		}
		r = store_op_end(c->st, r);
		if (r >= 0 && all) {
			sched_task_remove(c->sc, t->id);
			if (c->active)
				c->active--;
		}
		return r;
	}
	}
	return -EINVAL;
}

int coord_add_replica(struct coord *c, int64_t task_id, int64_t now)
{
	struct sched_task *t = sched_task_get(c->sc, task_id);
	int r;

	if (!t)
		return -ENOENT;
	if (t->replicas >= SCHED_MAX_REPLICAS)
		return -ENOSPC;
	r = store_op_begin(c->st);
	if (r < 0)
		return r;
	r = store_task_set_replicas(c->st, task_id, t->replicas + 1);
	if (r >= 0)
		r = sched_task_add_slot(c->sc, t);
	if (r >= 0)
		r = refresh_state(c, t, "", now);
	return store_op_end(c->st, r);
}

int coord_task_fail(struct coord *c, int64_t task_id, const char *reason, int64_t now,
		    struct coord_actions *actions)
{
	struct sched_task *t = sched_task_get(c->sc, task_id);

	if (!t)
		return -ENOENT;
	return task_end(c, t, TASK_FAILED, reason, now, actions);
}

int coord_submit_undo(struct coord *c, int64_t task_id)
{
	int r = sched_task_remove(c->sc, task_id);

	if (r >= 0 && c->active)
		c->active--;
	return r;
}

int coord_usage(struct coord *c, int64_t node, uint64_t seq, int64_t task_id, const char *record,
		const char *record_hash, uint64_t cpu_ns, int64_t now)
{
	return store_usage_insert(c->st, node, seq, task_id, record, record_hash, cpu_ns, now);
}

/* --- renter requests on existing tasks --- */

static int owned_task(struct coord *c, int64_t account, int64_t task_id, struct store_task *ret,
		      char *err, size_t errlen)
{
	int r = store_task_get(c->st, task_id, ret);

	if (r == -ENOENT || (r >= 0 && account >= 0 && ret->account_id != account)) {
		if (r >= 0)
			store_task_clear(ret);
		return errmsg(err, errlen, -ENOENT, "task %lld: no such task", (long long)task_id);
	}
	if (r < 0)
		return errmsg(err, errlen, r, "task %lld: lookup failed", (long long)task_id);
	return 0;
}

static int status_replica_cb(const struct store_replica *rep, void *userdata)
{
	cJSON *arr = userdata, *o = cJSON_CreateObject();

	if (!o || !cJSON_AddItemToArray(arr, o)) {
		cJSON_Delete(o);
		return -ENOMEM;
	}
	if (canon_add_i64(o, "idx", rep->idx) < 0 || canon_add_i64(o, "node", rep->node) < 0 ||
	    canon_add_i64(o, "attempt", rep->attempt) < 0 ||
	    !cJSON_AddStringToObject(o, "state", replica_state_name(rep->state)) ||
	    canon_add_i64(o, "exit_code", rep->exit_code) < 0 ||
	    !cJSON_AddStringToObject(o, "result", rep->result_digest) ||
	    !cJSON_AddStringToObject(o, "reason", rep->reason))
		return -ENOMEM;
	return 0;
}

/* STATUS's figures: the task's CPU cap (its spec's) and the CPU time its usage records report. */
static int status_figures(struct coord *c, const struct store_task *t, cJSON *o)
{
	cJSON *spec = NULL;
	int64_t cpu_s = 0, cpu_ns = 0;
	int r;

	if (t->spec &&
	    canon_parse(t->spec, strlen(t->spec), CANON_MAX_DEPTH_DEFAULT, &spec, NULL) == 0)
		canon_get_i64(spec, "max_cpu_seconds", &cpu_s);
	cJSON_Delete(spec);
	r = store_task_cpu_ns(c->st, t->id, &cpu_ns);
	if (r < 0)
		return r;
	if (canon_add_i64(o, "max_cpu_seconds", cpu_s) < 0 ||
	    canon_add_i64(o, "cpu_ns", cpu_ns) < 0)
		return -ENOMEM;
	return 0;
}

int coord_status(struct coord *c, int64_t account, int64_t task_id, cJSON **ret_reply, char *err,
		 size_t errlen)
{
	struct store_task t;
	cJSON *o, *reps;
	int r;

	r = owned_task(c, account, task_id, &t, err, errlen);
	if (r < 0)
		return r;
	o = cJSON_CreateObject();
	reps = cJSON_CreateArray();
	r = -ENOMEM;
	if (o && reps && cJSON_AddItemToObject(o, "replicas", reps)) {
		reps = NULL;
		if (canon_add_i64(o, "task_id", t.id) >= 0 &&
		    cJSON_AddStringToObject(o, "state", task_state_name(t.state)) &&
		    canon_add_i64(o, "attempts", t.attempts) >= 0 &&
		    cJSON_AddStringToObject(o, "reason", t.reason) &&
		    canon_add_i64(o, "submitted_at", t.submitted_at) >= 0 &&
		    canon_add_i64(o, "finished_at", t.finished_at) >= 0 &&
		    cJSON_AddStringToObject(o, "result", t.result_digest) &&
		    canon_add_i64(o, "exit_code", t.exit_code) >= 0)
			r = status_figures(c, &t, o);
		if (r >= 0)
			r = store_replica_foreach(c->st, t.id, 1, status_replica_cb,
						  cJSON_GetObjectItemCaseSensitive(o, "replicas"));
	}
	cJSON_Delete(reps);
	store_task_clear(&t);
	if (r < 0) {
		cJSON_Delete(o);
		return errmsg(err, errlen, r, "status: cannot build the reply");
	}
	*ret_reply = o;
	return 0;
}

int coord_cancel(struct coord *c, int64_t account, int64_t task_id, int64_t now,
		 struct coord_actions *actions, char *err, size_t errlen)
{
	struct store_task t;
	struct sched_task *st;
	int r;

	r = owned_task(c, account, task_id, &t, err, errlen);
	if (r < 0)
		return r;
	store_task_clear(&t);
	st = sched_task_get(c->sc, task_id);
	if (!st || t.state >= TASK_DONE)
		return errmsg(err, errlen, -EALREADY, "task %lld: already %s", (long long)task_id,
			      task_state_name(t.state));
	r = task_end(c, st, TASK_CANCELLED, "cancelled by the renter", now, actions);
	if (r < 0)
		return errmsg(err, errlen, r, "cancel: cannot store the change");
	return 0;
}

static int first_done_cb(const struct store_replica *rep, void *userdata)
{
	int64_t *node = userdata;

	if (rep->state == REPLICA_DONE && !*node)
		*node = rep->node;
	return 0;
}

int coord_rate(struct coord *c, int64_t account, int64_t task_id, int stars, const char *text,
	       int64_t now, char *err, size_t errlen)
{
	struct store_task t;
	struct sched_node *n;
	int64_t node = 0;
	uint32_t count;
	int r;

	if (stars < 1 || stars > 5)
		return errmsg(err, errlen, -EINVAL, "stars: must be 1 to 5");
	if (!text)
		text = "";
	if (!is_printable(text, RATE_TEXT_MAX))
		return errmsg(err, errlen, -EINVAL, "text: at most %d printable characters",
			      RATE_TEXT_MAX);
	r = owned_task(c, account, task_id, &t, err, errlen);
	if (r < 0)
		return r;
	store_task_clear(&t);
	if (t.state != TASK_DONE)
		return errmsg(err, errlen, -EINVAL, "task %lld: only a completed task can be rated",
			      (long long)task_id);
	r = store_replica_foreach(c->st, task_id, 1, first_done_cb, &node);
	if (r < 0 || !node)
		return errmsg(err, errlen, r < 0 ? r : -ENOENT, "rate: no provider ran this task");
	r = store_rating_insert(c->st, task_id, t.account_id, node, stars, text, now);
	if (r == -EEXIST)
		return errmsg(err, errlen, -EEXIST, "task %lld: already rated", (long long)task_id);
	if (r < 0)
		return errmsg(err, errlen, r, "rate: cannot store the rating");
	n = sched_node_get(c->sc, node);
	if (n)
		store_node_rating(c->st, node, &n->rating_centi, &count);
	return 0;
}

/* --- periodic work --- */

int coord_tick(struct coord *c, int64_t now, struct coord_actions *actions)
{
	unsigned deleted;
	int r;

	for (unsigned i = 0; i < sched_node_count(c->sc); i++) {
		struct sched_node *n = sched_node_at(c->sc, i);

		if (!n->known || now - n->last_seen <= c->p.heartbeat_timeout)
			continue;
		if (n->online || n->tasks) {
			r = node_lost(c, n, now, actions);
			if (r < 0)
				return r;
		}
	}
	r = blobs_gc(c->bl, now, &deleted);
	if (r < 0)
		return r;
	return coord_schedule(c, now, c->p.sched_max, actions);
}

int coord_offer_body(struct coord *c, const struct coord_action *a, cJSON **ret)
{
	struct store_task t;
	cJSON *o = NULL;
	int r;

	r = store_task_get(c->st, a->task_id, &t);
	if (r < 0)
		return r;
	r = canon_parse(t.spec, strlen(t.spec), CANON_MAX_DEPTH_DEFAULT, &o, NULL);
	store_task_clear(&t);
	if (r < 0)
		return r;
	if (canon_add_i64(o, "task_id", a->task_id) < 0 ||
	    canon_add_i64(o, "replica", a->idx) < 0 ||
	    canon_add_i64(o, "replica_id", a->replica_id) < 0) {
		cJSON_Delete(o);
		return -ENOMEM;
	}
	*ret = o;
	return 0;
}

int coord_nodes_json(struct coord *c, int64_t now, cJSON **ret)
{
	cJSON *arr = cJSON_CreateArray();

	if (!arr)
		return -ENOMEM;
	for (unsigned i = 0; i < sched_node_count(c->sc); i++) {
		struct sched_node *n = sched_node_at(c->sc, i);
		struct store_node sn;
		cJSON *o;
		bool open;
		time_t next = 0;

		if (!n->known || store_node_get(c->st, n->id, &sn) < 0)
			continue;
		open = window_inside_offset(&n->window, (time_t)now, n->utc_offset);
		if (window_next_change_offset(&n->window, (time_t)now, n->utc_offset, &next) < 0)
			next = 0;
		o = cJSON_CreateObject();
		if (!o || !cJSON_AddItemToArray(arr, o)) {
			cJSON_Delete(o);
			cJSON_Delete(arr);
			return -ENOMEM;
		}
		if (!cJSON_AddStringToObject(o, "node_id", n->node_id) ||
		    canon_add_i64(o, "cores", n->cores) < 0 ||
		    canon_add_i64(o, "free_cores",
				  n->cores > n->used_cores ? n->cores - n->used_cores : 0) < 0 ||
		    canon_add_u64(o, "memory", n->memory) < 0 ||
		    canon_add_i64(o, "price", n->price) < 0 ||
		    canon_add_i64(o, "perf", n->perf) < 0 ||
		    !cJSON_AddStringToObject(o, "location", n->location) ||
		    canon_add_i64(o, "rating_centi", n->rating_centi) < 0 ||
		    canon_add_i64(o, "renewable_ppm", sn.renewable_ppm) < 0 ||
		    !cJSON_AddBoolToObject(o, "online", n->online) ||
		    !cJSON_AddStringToObject(o, "window", sn.window) ||
		    !cJSON_AddBoolToObject(o, "available", n->online && open) ||
		    canon_add_i64(o, "window_changes_at", (int64_t)next) < 0 ||
		    canon_add_i64(o, "tasks", n->tasks) < 0) {
			cJSON_Delete(arr);
			return -ENOMEM;
		}
	}
	*ret = arr;
	return 0;
}

int coord_queue_json(struct coord *c, cJSON **ret)
{
	struct sched_stats s;
	cJSON *o = cJSON_CreateObject();
	int64_t count;

	if (!o)
		return -ENOMEM;
	sched_get_stats(c->sc, &s);
	if (canon_add_u64(o, "queued_slots", s.queued_slots) < 0 ||
	    canon_add_u64(o, "placed_slots", s.placed_slots) < 0 ||
	    canon_add_i64(o, "online_nodes", s.online_nodes) < 0 ||
	    canon_add_u64(o, "online_cores", s.online_cores) < 0 ||
	    canon_add_u64(o, "running_cores", s.running_cores) < 0 ||
	    canon_add_u64(o, "active_tasks", c->active) < 0)
		goto fail;
	for (int st = 0; st < TASK_STATE_N; st++) {
		char key[32];

		if (store_task_count(c->st, st, &count) < 0)
			goto fail;
		snprintf(key, sizeof(key), "tasks_%s", task_state_name(st));
		if (canon_add_i64(o, key, count) < 0)
			goto fail;
	}
	*ret = o;
	return 0;
fail:
	cJSON_Delete(o);
	return -ENOMEM;
}

/* --- open and recovery --- */

struct load_ctx {
	struct coord *c;
	int64_t now;
};

static int load_node_cb(const struct store_node *sn, void *userdata)
{
	struct load_ctx *x = userdata;
	struct sched_node nd = {0};
	uint32_t count;
	int r;

	nd.id = sn->id;
	memcpy(nd.node_id, sn->node_id, sizeof(nd.node_id));
	nd.cores = sn->cores;
	nd.memory = sn->memory;
	nd.max_tasks = sn->max_tasks;
	nd.price = sn->price;
	nd.perf = sn->perf;
	snprintf(nd.location, sizeof(nd.location), "%s", sn->location);
	nd.utc_offset = sn->utc_offset;
	if (window_parse(sn->window, &nd.window, NULL, 0) < 0)
		memset(&nd.window, 0, sizeof(nd.window)); /* unreadable: never open */
	/* A grace of one heartbeat timeout to reconnect, counted from the restart. */
	nd.last_seen = x->now;
	nd.seen_stored = x->now;
	r = store_node_rating(x->c->st, sn->id, &nd.rating_centi, &count);
	if (r < 0)
		return r;
	return sched_node_set(x->c->sc, &nd);
}

static int load_task_cb(const struct store_task *st_t, void *userdata)
{
	struct load_ctx *x = userdata;
	struct sched_task t;
	int r;

	r = spec_to_sched(x->c, st_t, &t);
	if (r < 0)
		return r;
	r = sched_task_add(x->c->sc, &t, NULL);
	if (r < 0)
		return r;
	x->c->active++;
	return 0;
}

static int load_replica_cb(const struct store_replica *rep, void *userdata)
{
	struct load_ctx *x = userdata;
	struct sched_task *t = sched_task_get(x->c->sc, rep->task_id);

	if (!t || rep->idx >= t->replicas)
		return 0;
	if (REPLICA_LIVE(rep->state))
		return sched_task_mark_placed(x->c->sc, t, rep->idx, rep->node);
	if (rep->state == REPLICA_DONE)
		t->finished[rep->idx] = 1;
	return 0;
}

static int load_replica_exclude_cb(const struct store_replica *rep, void *userdata)
{
	struct load_ctx *x = userdata;
	struct sched_task *t = sched_task_get(x->c->sc, rep->task_id);

	/* A node that finished a slot gets no other slot of the task after a restart either. */
	if (t && t->replicas > 1 && rep->state == REPLICA_DONE)
		sched_task_exclude(x->c->sc, t, rep->node);
	return 0;
}

static int load_task_replicas_cb(const struct store_task *st_t, void *userdata)
{
	int r = store_replica_foreach(((struct load_ctx *)userdata)->c->st, st_t->id, 1,
				      load_replica_cb, userdata);

	if (r < 0)
		return r;
	return store_replica_foreach(((struct load_ctx *)userdata)->c->st, st_t->id, 1,
				     load_replica_exclude_cb, userdata);
}

struct coord *coord_free(struct coord *c)
{
	if (!c)
		return NULL;
	blobs_free(c->bl);
	sched_free(c->sc);
	store_free(c->st);
	free(c);
	return NULL;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(struct coord, coord_free)

int coord_open(const char *db_path, const char *blob_dir, const struct coord_params *p, int64_t now,
	       struct coord **ret)
{
	_cleanup_(coord_freep) struct coord *c = calloc(1, sizeof(*c));
	struct load_ctx x;
	int r;

	if (!c)
		return -ENOMEM;
	if (p)
		c->p = *p;
	else
		coord_params_default(&c->p);
	r = store_open(db_path, c->p.batch_max, &c->st);
	if (r < 0)
		return r;
	r = sched_new(&c->sc);
	if (r < 0)
		return r;
	r = blobs_open(blob_dir, c->st, &c->bl);
	if (r < 0)
		return r;
	x = (struct load_ctx){c, now};
	r = store_node_foreach(c->st, load_node_cb, &x);
	if (r < 0)
		return r;
	r = store_task_foreach_active(c->st, load_task_cb, &x);
	if (r < 0)
		return r;
	r = store_task_foreach_active(c->st, load_task_replicas_cb, &x);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(c);
	return 0;
}
