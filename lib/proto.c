/* proto.c -- the wire message catalogue: schemas, validation, role permissions, encoding. */
#include <aicn/canon.h>
#include <aicn/compiler.h>
#include <aicn/frame.h>
#include <aicn/hash.h>
#include <aicn/proto.h>

#include <pthread.h>
#include <string.h>

#define I64_MAX INT64_MAX
#define ANY_ROLE (ROLE_AGENT | ROLE_RENTER | ROLE_AUDITOR | ROLE_COORDINATOR)
#define ID_MAX ((int64_t)1 << 53) /* request ids stay exact in any JSON reader */
#define S(n, req, lo, hi)                                                                          \
	{                                                                                          \
		n, PK_STR, req, lo, hi, NULL, NULL                                                 \
	}
#define I(n, req, lo, hi)                                                                          \
	{                                                                                          \
		n, PK_INT, req, lo, hi, NULL, NULL                                                 \
	}
#define END                                                                                        \
	{                                                                                          \
		NULL, 0, 0, 0, 0, NULL, NULL                                                       \
	}

static const struct proto_field f_hello[] = {
	I("min_v", 0, 1, 65535),   /* client: lowest version it speaks */
	I("max_v", 0, 1, 65535),   /* client: highest version it speaks */
	I("version", 0, 1, 65535), /* server: the version chosen */
	S("software", 0, 0, 64),   /* "aicn-agent 0.1.0" */
	S("node_id", 0, 64, 64),   /* server: the client's node id as authenticated */
	S("role", 0, 1, 16),	   /* server: the client's role as authenticated */
	END,
};

static const char *const weekdays[] = {"mon", "tue", "wed", "thu", "fri",
				       "sat", "sun", "all", NULL};
static const struct proto_field f_window[] = {
	{"day", PK_ENUM, 1, 0, 0, NULL, weekdays}, /* day of week, or "all" */
	I("start_min", 1, 0, 1440),		   /* minutes after 00:00 UTC */
	I("end_min", 1, 0, 1440),
	END,
};

static const struct proto_field f_register[] = {
	I("cores", 1, 1, 65536),	     /* cores on the host */
	I("mem_mb", 1, 1, (int64_t)1 << 32), /* memory on the host */
	I("cores_offered", 1, 1, 65536),     /* cores lent to the network (cap) */
	I("ask_price", 1, 0, I64_MAX),	     /* base units (1e-9 AICN) per CPU-hour */
	S("location", 1, 1, 64),	     /* e.g. "eu-west/fr" */
	I("renewable_pm", 1, 0, 1000),	     /* renewable energy fraction, per mille */
	{"windows", PK_ARR_OBJ, 0, 0, 64, f_window, NULL}, /* availability; none = always */
	I("perf_score", 1, 0, 1000000000),		   /* benchmark score */
	S("agent_version", 1, 1, 64),
	S("arch", 0, 1, 16),			     /* "x86_64" */
	I("mem_offered_mb", 0, 1, (int64_t)1 << 32), /* memory lent (cap); default mem_mb */
	S("window", 0, 0, 512),		     /* availability, the agent's spec in its local time */
	I("utc_offset_s", 0, -50400, 50400), /* the agent's local time minus UTC now */
	I("max_tasks", 0, 1, 4096),	     /* concurrent tasks accepted */
	{"running", PK_ARR_STR, 0, 0, 4096, NULL, NULL}, /* task ids still running (reconnect) */
	END,
};

static const struct proto_field f_heartbeat[] = {
	I("free_cores", 1, 0, 65536),			 /* cores free under the cap */
	{"running", PK_ARR_STR, 1, 0, 4096, NULL, NULL}, /* task ids running now */
	END,
};

static const struct proto_field f_input[] = {
	{"digest", PK_DIGEST, 1, 0, 0, NULL, NULL},
	S("path", 1, 1, 256),
	I("size", 1, 0, I64_MAX),
	END,
};

static const struct proto_field f_task_offer[] = {
	S("task_id", 1, 1, 64),
	{"image", PK_DIGEST, 1, 0, 0, NULL, NULL}, /* OCI image archive digest */
	/* the coordinator's SUBMIT limits: 256 arguments of <= 4096 bytes, 256 "NAME=value" */
	{"cmd", PK_ARR_TEXT, 1, 1, 256, NULL, NULL},
	{"env", PK_ARR_TEXT, 0, 0, 256, NULL, NULL},
	{"inputs", PK_ARR_OBJ, 0, 0, 64, f_input, NULL},
	I("cores", 1, 1, 65536),
	I("mem_mb", 1, 1, (int64_t)1 << 32),
	I("max_cpu_ns", 1, 1, I64_MAX),	 /* CPU budget */
	I("price", 1, 0, I64_MAX),	 /* agreed base units per CPU-hour */
	I("deadline_ms", 0, 0, I64_MAX), /* wall-clock limit */
	I("replica", 0, 0, 64),		 /* Proof-of-Compute replica index */
	S("renter", 0, 1, 128),		 /* account charged (goes into the usage record) */
	I("pow_bits", 0, 0, 64),	 /* Proof-of-Work difficulty for the result stamp */
	END,
};

static const struct proto_field f_task_id[] = {
	S("task_id", 1, 1, 64),
	END,
};

static const struct proto_field f_task_reject[] = {
	S("task_id", 1, 1, 64),
	S("reason", 1, 0, 256),
	END,
};

static const struct proto_field f_blob_get[] = {
	{"digest", PK_DIGEST, 1, 0, 0, NULL, NULL},
	I("offset", 0, 0, I64_MAX),
	END,
};

static const struct proto_field f_blob_put[] = {
	{"digest", PK_DIGEST, 1, 0, 0, NULL, NULL},	 /* the whole blob's sha256 */
	I("offset", 1, 0, I64_MAX),			 /* of this chunk */
	I("size", 1, 0, I64_MAX),			 /* of the whole blob */
	S("data", 1, 0, (PROTO_BLOB_CHUNK + 2) / 3 * 4), /* base64 chunk, <= 256 KiB raw */
	{"last", PK_BOOL, 1, 0, 0, NULL, NULL},
	END,
};

static const char *const task_states[] = {"pulling", "starting", "running", "exited",
					  "failed",  "killed",	 NULL};
static const struct proto_field f_task_status[] = {
	S("task_id", 1, 1, 64),
	{"state", PK_ENUM, 1, 0, 0, NULL, task_states},
	I("cpu_ns", 1, 0, I64_MAX), /* CPU time so far, from the eBPF meter */
	I("wall_ns", 0, 0, I64_MAX),
	S("reason", 0, 0, 256), /* failed: why */
	END,
};

static const struct proto_field f_usage_record[] = {
	I("seq", 1, 0, I64_MAX),		 /* the record's sequence in the node's meter log */
	{"record", PK_OBJ, 1, 0, 0, NULL, NULL}, /* the signed record (records format) */
	END,
};

static const struct proto_field f_task_result[] = {
	S("task_id", 1, 1, 64),
	I("exit_code", 1, -255, 255),
	{"result_digest", PK_DIGEST, 1, 0, 0, NULL, NULL},
	I("seq", 0, 0, I64_MAX),	 /* the run's final usage record */
	I("pow_nonce", 0, 0, I64_MAX),	 /* Proof-of-Work stamp over (task, result, record) */
	I("result_size", 0, 0, I64_MAX), /* bytes of the result blob */
	END,
};

static const struct proto_field f_ack[] = {
	I("ref", 1, 0, ID_MAX),	 /* id of the acknowledged message */
	I("seq", 0, 0, I64_MAX), /* record sequence, for USAGE_RECORD */
	END,
};

static const struct proto_field f_error[] = {
	I("ref", 0, 0, ID_MAX),
	S("code", 1, 1, 32), /* machine-readable, e.g. "forbidden" */
	S("message", 1, 0, 512),
	END,
};

static const struct proto_def builtin[PROTO_BUILTIN_COUNT] = {
	[PROTO_HELLO] = {"HELLO", ANY_ROLE, f_hello},
	[PROTO_REGISTER] = {"REGISTER", ROLE_AGENT, f_register},
	[PROTO_HEARTBEAT] = {"HEARTBEAT", ROLE_AGENT, f_heartbeat},
	[PROTO_TASK_OFFER] = {"TASK_OFFER", ROLE_COORDINATOR, f_task_offer},
	[PROTO_TASK_ACCEPT] = {"TASK_ACCEPT", ROLE_AGENT, f_task_id},
	[PROTO_TASK_REJECT] = {"TASK_REJECT", ROLE_AGENT, f_task_reject},
	[PROTO_BLOB_GET] = {"BLOB_GET", ROLE_AGENT | ROLE_RENTER | ROLE_AUDITOR, f_blob_get},
	[PROTO_BLOB_PUT] = {"BLOB_PUT", ROLE_AGENT | ROLE_RENTER | ROLE_COORDINATOR, f_blob_put},
	[PROTO_TASK_STATUS] = {"TASK_STATUS", ROLE_AGENT | ROLE_COORDINATOR, f_task_status},
	[PROTO_USAGE_RECORD] = {"USAGE_RECORD", ROLE_AGENT, f_usage_record},
	[PROTO_TASK_RESULT] = {"TASK_RESULT", ROLE_AGENT, f_task_result},
	[PROTO_ACK] = {"ACK", ANY_ROLE, f_ack},
	[PROTO_ERROR] = {"ERROR", ANY_ROLE, f_error},
};

static const struct proto_def *defs[PROTO_MAX_TYPES];
static int ndefs;

static pthread_once_t defs_once = PTHREAD_ONCE_INIT;

static void init_builtin(void)
{
	for (int i = 1; i < PROTO_BUILTIN_COUNT; i++)
		defs[i] = &builtin[i];
	ndefs = PROTO_BUILTIN_COUNT;
}

static void init_defs(void)
{
	pthread_once(&defs_once, init_builtin);
}

int proto_define(const struct proto_def *def)
{
	init_defs();
	if (!def || !def->name || !def->fields || strlen(def->name) > 32)
		return -EINVAL;
	if (proto_type_from_name(def->name) != PROTO_UNKNOWN)
		return -EEXIST;
	if (ndefs >= PROTO_MAX_TYPES)
		return -ENOSPC;
	defs[ndefs] = def;
	return ndefs++;
}

const struct proto_def *proto_def_of(int type)
{
	init_defs();
	return type > 0 && type < ndefs ? defs[type] : NULL;
}

int proto_type_from_name(const char *name)
{
	init_defs();
	for (int i = 1; name && i < ndefs; i++)
		if (strcmp(defs[i]->name, name) == 0)
			return i;
	return PROTO_UNKNOWN;
}

const char *proto_type_name(int type)
{
	const struct proto_def *d = proto_def_of(type);

	return d ? d->name : "UNKNOWN";
}

int proto_allowed(int type, enum aicn_role role)
{
	const struct proto_def *d = proto_def_of(type);

	return d && (d->from_roles & role) ? 0 : -EPERM;
}

static int fail(char *errbuf, const char *prefix, const char *name, const char *what)
{
	if (errbuf)
		snprintf(errbuf, PROTO_ERR_LEN, "field %s%s%s: %s", prefix, prefix[0] ? "." : "",
			 name, what);
	return -EINVAL;
}

static int check_fields(const struct proto_field *fields, const cJSON *obj, const char *prefix,
			char *errbuf);

static int check_field(const struct proto_field *f, const cJSON *v, const char *prefix,
		       char *errbuf)
{
	uint8_t digest[SHA256_LEN];
	int64_t n;
	size_t len;
	int count;

	switch (f->kind) {
	case PK_INT:
		if (canon_number_i64(v, &n) < 0)
			return fail(errbuf, prefix, f->name, "not an integer");
		if (n < f->min || n > f->max)
			return fail(errbuf, prefix, f->name, "out of range");
		return 0;
	case PK_BOOL:
		return cJSON_IsBool(v) ? 0 : fail(errbuf, prefix, f->name, "not a boolean");
	case PK_STR:
		if (!cJSON_IsString(v))
			return fail(errbuf, prefix, f->name, "not a string");
		len = strlen(v->valuestring);
		if ((int64_t)len < f->min || (int64_t)len > f->max)
			return fail(errbuf, prefix, f->name, "bad length");
		return 0;
	case PK_DIGEST:
		if (!cJSON_IsString(v) || digest_parse(v->valuestring, digest) < 0)
			return fail(errbuf, prefix, f->name, "not a sha256:<hex> digest");
		return 0;
	case PK_ENUM:
		if (cJSON_IsString(v))
			for (const char *const *e = f->values; *e; e++)
				if (strcmp(*e, v->valuestring) == 0)
					return 0;
		return fail(errbuf, prefix, f->name, "not one of the allowed values");
	case PK_OBJ:
		if (!cJSON_IsObject(v))
			return fail(errbuf, prefix, f->name, "not an object");
		return f->sub ? check_fields(f->sub, v, f->name, errbuf) : 0;
	case PK_ARR_STR:
	case PK_ARR_TEXT:
	case PK_ARR_OBJ: {
		const cJSON *e;

		if (!cJSON_IsArray(v))
			return fail(errbuf, prefix, f->name, "not an array");
		count = 0;
		cJSON_ArrayForEach (e, v) {
			count++;
			if (count > f->max)
				return fail(errbuf, prefix, f->name, "too many elements");
			if (f->kind != PK_ARR_OBJ) {
				size_t emax = f->kind == PK_ARR_TEXT ? 8192 : 256;

				if (!cJSON_IsString(e) || strlen(e->valuestring) > emax)
					return fail(
						errbuf, prefix, f->name,
						f->kind == PK_ARR_TEXT
							? "elements must be strings of <= 8192 bytes"
							: "elements must be strings of <= 256 bytes");
			} else {
				if (!cJSON_IsObject(e))
					return fail(errbuf, prefix, f->name,
						    "elements must be objects");
				if (f->sub && check_fields(f->sub, e, f->name, errbuf) < 0)
					return -EINVAL;
			}
		}
		if (count < f->min)
			return fail(errbuf, prefix, f->name, "too few elements");
		return 0;
	}
	}
	return fail(errbuf, prefix, f->name, "bad schema");
}

static int check_fields(const struct proto_field *fields, const cJSON *obj, const char *prefix,
			char *errbuf)
{
	for (const struct proto_field *f = fields; f->name; f++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, f->name);

		if (!v) {
			if (f->required)
				return fail(errbuf, prefix, f->name, "missing");
			continue;
		}
		if (check_field(f, v, prefix, errbuf) < 0)
			return -EINVAL;
	}
	return 0;
}

int proto_validate(int type, const cJSON *root, char *errbuf)
{
	const struct proto_def *d = proto_def_of(type);

	if (!d) {
		if (errbuf)
			snprintf(errbuf, PROTO_ERR_LEN, "unknown message type");
		return -ENOENT;
	}
	if (!cJSON_IsObject(root)) {
		if (errbuf)
			snprintf(errbuf, PROTO_ERR_LEN, "message is not an object");
		return -EINVAL;
	}
	return check_fields(d->fields, root, "", errbuf);
}

int proto_parse(const char *buf, size_t len, struct proto_msg *ret_msg, char *errbuf)
{
	struct proto_msg m = {0};
	const char *perr = NULL, *tname;
	int r;

	r = canon_parse(buf, len, PROTO_MAX_DEPTH, &m.root, &perr);
	if (r < 0) {
		if (errbuf)
			snprintf(errbuf, PROTO_ERR_LEN, "bad JSON: %s", perr ? perr : "invalid");
		return -EINVAL;
	}
	if (!cJSON_IsObject(m.root)) {
		cJSON_Delete(m.root);
		if (errbuf)
			snprintf(errbuf, PROTO_ERR_LEN, "message is not an object");
		return -EINVAL;
	}
	if (canon_get_i64(m.root, "v", &m.v) < 0 || m.v < 1 || m.v > 65535) {
		cJSON_Delete(m.root);
		return fail(errbuf, "", "v", "missing or not a version number");
	}
	if (canon_get_i64(m.root, "id", &m.id) < 0 || m.id < 0 || m.id > ID_MAX) {
		cJSON_Delete(m.root);
		return fail(errbuf, "", "id", "missing or not an id in [0, 2^53]");
	}
	if (canon_get_str(m.root, "type", &tname) < 0 || strlen(tname) > 32) {
		cJSON_Delete(m.root);
		return fail(errbuf, "", "type", "missing or not a short string");
	}
	m.type = proto_type_from_name(tname);
	if (m.type == PROTO_UNKNOWN) {
		if (errbuf)
			snprintf(errbuf, PROTO_ERR_LEN, "unknown message type");
		*ret_msg = m;
		return -ENOENT;
	}
	r = proto_validate(m.type, m.root, errbuf);
	if (r < 0) {
		cJSON_Delete(m.root);
		return r;
	}
	*ret_msg = m;
	return 0;
}

void proto_msg_done(struct proto_msg *m)
{
	if (!m)
		return;
	cJSON_Delete(m->root);
	m->root = NULL;
}

cJSON *proto_new(int type)
{
	cJSON *o;

	if (!proto_def_of(type))
		return NULL;
	o = cJSON_CreateObject();
	if (o && !cJSON_AddStringToObject(o, "type", proto_type_name(type))) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

static int set_int(cJSON *o, const char *key, int64_t v)
{
	cJSON *n = canon_create_i64(v);

	if (!n)
		return -ENOMEM;
	if (cJSON_GetObjectItemCaseSensitive(o, key))
		return cJSON_ReplaceItemInObjectCaseSensitive(o, key, n) ? 0 : -ENOMEM;
	return cJSON_AddItemToObject(o, key, n) ? 0 : -ENOMEM;
}

int proto_encode(cJSON *msg, int64_t v, int64_t id, uint8_t **ret, size_t *ret_len)
{
	_cleanup_free_ char *txt = NULL;
	uint8_t *out;
	size_t len;
	int r;

	r = set_int(msg, "v", v);
	if (r >= 0)
		r = set_int(msg, "id", id);
	if (r >= 0)
		r = canon_print(msg, &txt, &len);
	if (r < 0)
		return r;
	if (len > UINT32_MAX)
		return -EMSGSIZE;
	out = malloc(FRAME_HDR_LEN + len);
	if (!out)
		return -ENOMEM;
	frame_hdr(out, (uint32_t)len);
	memcpy(out + FRAME_HDR_LEN, txt, len);
	*ret = out;
	*ret_len = FRAME_HDR_LEN + len;
	return 0;
}

int proto_negotiate(int64_t min_v, int64_t max_v, int64_t *ret_v)
{
	int64_t v = MIN(max_v, (int64_t)PROTO_VERSION_MAX);

	if (min_v > max_v || v < MAX(min_v, (int64_t)PROTO_VERSION_MIN))
		return -EPROTONOSUPPORT;
	*ret_v = v;
	return 0;
}
