/* record.c -- usage records to and from canonical JSON lines, signed and verified with the node key. */
#include <aicn/canon.h>
#include <aicn/compiler.h>
#include <aicn/record.h>

#include <string.h>

DEFINE_TRIVIAL_CLEANUP_FUNC(cJSON, cJSON_Delete)

static const char *const type_names[] = {
	[RECORD_INTERVAL] = "interval",
	[RECORD_FINAL] = "final",
	[RECORD_HEARTBEAT] = "heartbeat",
};

static const char *const exit_names[] = {
	[RECORD_EXIT_RUNNING] = "running",   [RECORD_EXIT_EXITED] = "exited",
	[RECORD_EXIT_SIGNALED] = "signaled", [RECORD_EXIT_OOM] = "oom",
	[RECORD_EXIT_TIMEOUT] = "timeout",   [RECORD_EXIT_CANCELLED] = "cancelled",
	[RECORD_EXIT_ERROR] = "error",	     [RECORD_EXIT_LOST] = "lost",
};

const char *record_type_name(enum record_type t)
{
	return (unsigned)t < ARRAY_SIZE(type_names) ? type_names[t] : NULL;
}

const char *record_exit_kind_name(enum record_exit_kind k)
{
	return (unsigned)k < ARRAY_SIZE(exit_names) ? exit_names[k] : NULL;
}

static int id_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > RECORD_ID_MAX)
		return 0;
	for (; *s; s++) {
		char c = *s;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == ':' || c == '@' || c == '-'))
			return 0;
	}
	return 1;
}

static int add_str(cJSON *o, const char *key, const char *s)
{
	return cJSON_AddStringToObject(o, key, s) ? 0 : -ENOMEM;
}

static int add_digest(cJSON *o, const char *key, const uint8_t d[SHA256_LEN])
{
	char buf[7 + SHA256_HEX_LEN + 1];

	strcpy(buf, "sha256:");
	hex_encode(d, SHA256_LEN, buf + 7);
	return add_str(o, key, buf);
}

/* The record as a cJSON tree, with or without "sig". */
static int record_tree(const struct usage_record *r, int with_sig, cJSON **ret)
{
	_cleanup_(cJSON_Deletep) cJSON *o = cJSON_CreateObject();
	char prev[SHA256_HEX_LEN + 1];
	int e = 0;

	if (!o)
		return -ENOMEM;
	if (!record_type_name(r->type) || r->version != RECORD_VERSION)
		return -EINVAL;
	hex_encode(r->prev, SHA256_LEN, prev);
	e |= canon_add_u64(o, "v", r->version);
	e |= add_str(o, "type", record_type_name(r->type));
	e |= add_str(o, "node", r->node);
	e |= canon_add_u64(o, "seq", r->seq);
	e |= add_str(o, "prev", prev);
	e |= canon_add_u64(o, "time", r->time_ns);
	if (r->type != RECORD_HEARTBEAT) {
		cJSON *lim;

		if (!id_valid(r->task) || !id_valid(r->renter) ||
		    !record_exit_kind_name(r->exit_kind))
			return -EINVAL;
		e |= add_str(o, "task", r->task);
		e |= canon_add_u64(o, "replica", r->replica);
		e |= add_str(o, "renter", r->renter);
		e |= add_digest(o, "image", r->image);
		e |= canon_add_u64(o, "cgroup", r->cgroup_id);
		e |= canon_add_u64(o, "start_ns", r->start_ns);
		e |= canon_add_u64(o, "end_ns", r->end_ns);
		e |= canon_add_u64(o, "wall_ns", r->wall_ns);
		e |= canon_add_u64(o, "cpu_ns", r->cpu_ns);
		e |= canon_add_u64(o, "cpu_kernel_ns", r->cpu_kernel_ns);
		e |= canon_add_u64(o, "runq_wait_ns", r->runq_wait_ns);
		e |= canon_add_u64(o, "switches", r->switches);
		e |= canon_add_u64(o, "procs", r->procs);
		e |= canon_add_u64(o, "net_rx_bytes", r->net_rx_bytes);
		e |= canon_add_u64(o, "net_tx_bytes", r->net_tx_bytes);
		e |= canon_add_u64(o, "mem_peak_bytes", r->mem_peak_bytes);
		lim = cJSON_AddObjectToObject(o, "limits");
		if (!lim)
			return -ENOMEM;
		e |= canon_add_u64(lim, "cpu_quota_us", r->limits.cpu_quota_us);
		e |= canon_add_u64(lim, "cpu_period_us", r->limits.cpu_period_us);
		e |= canon_add_u64(lim, "mem_bytes", r->limits.mem_bytes);
		e |= canon_add_u64(lim, "pids", r->limits.pids);
		e |= canon_add_u64(lim, "timeout_ns", r->limits.timeout_ns);
		e |= add_str(o, "exit_kind", record_exit_kind_name(r->exit_kind));
		e |= canon_add_i64(o, "exit_status", r->exit_status);
		if (r->has_result)
			e |= add_digest(o, "result", r->result);
		else
			e |= cJSON_AddNullToObject(o, "result") ? 0 : -ENOMEM;
	}
	if (with_sig) {
		_cleanup_free_ char *b64 = NULL;
		int r2 = base64_encode(r->sig, KEY_SIG_LEN, &b64);

		if (r2 < 0)
			return r2;
		e |= add_str(o, "sig", b64);
	}
	if (e)
		return -ENOMEM;
	*ret = TAKE_PTR(o);
	return 0;
}

static int record_print(const struct usage_record *r, int with_sig, char **ret, size_t *ret_len)
{
	_cleanup_(cJSON_Deletep) cJSON *o = NULL;
	int e;

	e = record_tree(r, with_sig, &o);
	if (e < 0)
		return e;
	e = canon_print(o, ret, ret_len);
	if (e < 0)
		return e;
	if (*ret_len > RECORD_LINE_MAX) {
		free(*ret);
		*ret = NULL;
		return -E2BIG;
	}
	return 0;
}

int record_unsigned_bytes(const struct usage_record *r, char **ret, size_t *ret_len)
{
	return record_print(r, 0, ret, ret_len);
}

int record_format(const struct usage_record *r, char **ret_line, size_t *ret_len)
{
	return record_print(r, 1, ret_line, ret_len);
}

int record_sign(struct usage_record *r, struct key_signer *s, char **ret_line, size_t *ret_len)
{
	_cleanup_free_ char *m = NULL;
	size_t mlen;
	int e;

	e = record_print(r, 0, &m, &mlen);
	if (e < 0)
		return e;
	e = key_signer_sign(s, m, mlen, r->sig);
	if (e < 0)
		return e;
	return record_print(r, 1, ret_line, ret_len);
}

/* ---- parsing ------------------------------------------------------------ */

#define FAIL(why)                                                                                  \
	do {                                                                                       \
		if (ret_err)                                                                       \
			*ret_err = (why);                                                          \
		return -EINVAL;                                                                    \
	} while (0)

static int get_digest(const cJSON *o, const char *key, uint8_t out[SHA256_LEN])
{
	const char *s;

	if (canon_get_str(o, key, &s) < 0)
		return -EINVAL;
	return digest_parse(s, out);
}

static int get_u32(const cJSON *o, const char *key, uint32_t *out)
{
	uint64_t v;

	if (canon_get_u64(o, key, &v) < 0 || v > UINT32_MAX)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

static int get_name(const cJSON *o, const char *key, const char *const *names, size_t n)
{
	const char *s;

	if (canon_get_str(o, key, &s) < 0)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (names[i] && strcmp(s, names[i]) == 0)
			return (int)i;
	return -EINVAL;
}

static int get_id(const cJSON *o, const char *key, char out[RECORD_ID_MAX + 1])
{
	const char *s;

	if (canon_get_str(o, key, &s) < 0 || !id_valid(s))
		return -EINVAL;
	memcpy(out, s, strlen(s) + 1);
	return 0;
}

static int is_lower_hex(const char *s, size_t n)
{
	if (strlen(s) != n)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

static int parse_tree(const cJSON *o, struct usage_record *r, const char **ret_err)
{
	const cJSON *lim;
	const char *s;
	uint8_t *sig = NULL;
	size_t siglen = 0;
	int t, n = 0;

	if (!cJSON_IsObject(o))
		FAIL("not a JSON object");
	memset(r, 0, sizeof(*r));
	if (get_u32(o, "v", &r->version) < 0)
		FAIL("missing or bad \"v\"");
	if (r->version != RECORD_VERSION)
		FAIL("unsupported record version");
	t = get_name(o, "type", type_names, ARRAY_SIZE(type_names));
	if (t < 0)
		FAIL("missing or unknown \"type\"");
	r->type = (enum record_type)t;
	if (canon_get_str(o, "node", &s) < 0 || !is_lower_hex(s, NODE_ID_HEX_LEN))
		FAIL("bad \"node\"");
	memcpy(r->node, s, NODE_ID_HEX_LEN + 1);
	if (canon_get_u64(o, "seq", &r->seq) < 0)
		FAIL("bad \"seq\"");
	if (canon_get_str(o, "prev", &s) < 0 || !is_lower_hex(s, SHA256_HEX_LEN) ||
	    hex_decode(s, SHA256_HEX_LEN, r->prev, SHA256_LEN) < 0)
		FAIL("bad \"prev\"");
	if (canon_get_u64(o, "time", &r->time_ns) < 0)
		FAIL("bad \"time\"");
	if (canon_get_str(o, "sig", &s) < 0 || base64_decode(s, strlen(s), &sig, &siglen) < 0)
		FAIL("bad \"sig\"");
	if (siglen != KEY_SIG_LEN) {
		free(sig);
		FAIL("bad \"sig\" length");
	}
	memcpy(r->sig, sig, KEY_SIG_LEN);
	free(sig);
	if (r->type == RECORD_HEARTBEAT) {
		n = 7;
		goto count;
	}
	n = 27;
	if (get_id(o, "task", r->task) < 0)
		FAIL("bad \"task\"");
	if (get_u32(o, "replica", &r->replica) < 0)
		FAIL("bad \"replica\"");
	if (get_id(o, "renter", r->renter) < 0)
		FAIL("bad \"renter\"");
	if (get_digest(o, "image", r->image) < 0)
		FAIL("bad \"image\"");
	if (canon_get_u64(o, "cgroup", &r->cgroup_id) < 0)
		FAIL("bad \"cgroup\"");
	if (canon_get_u64(o, "start_ns", &r->start_ns) < 0 ||
	    canon_get_u64(o, "end_ns", &r->end_ns) < 0 || r->end_ns < r->start_ns)
		FAIL("bad \"start_ns\" or \"end_ns\"");
	if (canon_get_u64(o, "wall_ns", &r->wall_ns) < 0 ||
	    canon_get_u64(o, "cpu_ns", &r->cpu_ns) < 0 ||
	    canon_get_u64(o, "cpu_kernel_ns", &r->cpu_kernel_ns) < 0 ||
	    canon_get_u64(o, "runq_wait_ns", &r->runq_wait_ns) < 0 ||
	    canon_get_u64(o, "switches", &r->switches) < 0 ||
	    canon_get_u64(o, "procs", &r->procs) < 0 ||
	    canon_get_u64(o, "net_rx_bytes", &r->net_rx_bytes) < 0 ||
	    canon_get_u64(o, "net_tx_bytes", &r->net_tx_bytes) < 0 ||
	    canon_get_u64(o, "mem_peak_bytes", &r->mem_peak_bytes) < 0)
		FAIL("bad usage figure");
	lim = cJSON_GetObjectItemCaseSensitive(o, "limits");
	if (!cJSON_IsObject(lim) || cJSON_GetArraySize(lim) != 5 ||
	    canon_get_u64(lim, "cpu_quota_us", &r->limits.cpu_quota_us) < 0 ||
	    canon_get_u64(lim, "cpu_period_us", &r->limits.cpu_period_us) < 0 ||
	    canon_get_u64(lim, "mem_bytes", &r->limits.mem_bytes) < 0 ||
	    canon_get_u64(lim, "pids", &r->limits.pids) < 0 ||
	    canon_get_u64(lim, "timeout_ns", &r->limits.timeout_ns) < 0)
		FAIL("bad \"limits\"");
	t = get_name(o, "exit_kind", exit_names, ARRAY_SIZE(exit_names));
	if (t < 0)
		FAIL("bad \"exit_kind\"");
	r->exit_kind = (enum record_exit_kind)t;
	if ((r->type == RECORD_INTERVAL) != (r->exit_kind == RECORD_EXIT_RUNNING))
		FAIL("\"exit_kind\" does not fit the record type");
	{
		int64_t st;

		if (canon_get_i64(o, "exit_status", &st) < 0 || st < INT32_MIN || st > INT32_MAX)
			FAIL("bad \"exit_status\"");
		r->exit_status = (int32_t)st;
	}
	{
		const cJSON *res = cJSON_GetObjectItemCaseSensitive(o, "result");

		if (cJSON_IsNull(res)) {
			r->has_result = 0;
		} else if (get_digest(o, "result", r->result) == 0) {
			r->has_result = 1;
		} else {
			FAIL("bad \"result\"");
		}
	}
count:
	if (cJSON_GetArraySize(o) != n)
		FAIL("unexpected fields for the record type");
	return 0;
}

int record_parse(const char *line, size_t len, struct usage_record *ret, const char **ret_err)
{
	_cleanup_(cJSON_Deletep) cJSON *o = NULL;
	_cleanup_free_ char *again = NULL;
	struct usage_record r;
	size_t alen;
	int e;

	if (len > RECORD_LINE_MAX)
		FAIL("record line too long");
	e = canon_parse(line, len, 4, &o, ret_err);
	if (e < 0)
		return e;
	e = parse_tree(o, &r, ret_err);
	if (e < 0)
		return e;
	/* canonical form: exactly the bytes we would have written */
	e = canon_print(o, &again, &alen);
	if (e < 0)
		return e;
	if (alen != len || memcmp(again, line, len) != 0)
		FAIL("not in canonical form");
	*ret = r;
	return 0;
}

size_t record_unsigned_from_line(const char *line, size_t len, char *buf)
{
	static const char pat[] = ",\"sig\":\"";
	const char *p = memmem(line, len, pat, sizeof(pat) - 1);
	const char *q;

	if (!p) {
		memcpy(buf, line, len);
		return len;
	}
	q = memchr(p + sizeof(pat) - 1, '"', len - (size_t)(p - line) - (sizeof(pat) - 1));
	if (!q) {
		memcpy(buf, line, len);
		return len;
	}
	q++;
	memcpy(buf, line, (size_t)(p - line));
	memcpy(buf + (p - line), q, len - (size_t)(q - line));
	return len - (size_t)(q - p);
}

int record_verify(const struct usage_record *r, struct key_verifier *v)
{
	_cleanup_free_ char *m = NULL;
	size_t mlen;
	int e;

	e = record_print(r, 0, &m, &mlen);
	if (e < 0)
		return e;
	return key_verifier_check(v, m, mlen, r->sig);
}

int record_verify_line(const char *line, size_t len, const struct usage_record *r,
		       struct key_verifier *v)
{
	char buf[RECORD_LINE_MAX];
	size_t n;

	if (len > sizeof(buf))
		return -EINVAL;
	n = record_unsigned_from_line(line, len, buf);
	return key_verifier_check(v, buf, n, r->sig);
}
