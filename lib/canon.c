/* canon.c -- canonical JSON: a strict parser and a canonical printer over cJSON trees, exact int64 numbers. */
#include <aicn/canon.h>
#include <aicn/compiler.h>

#include <limits.h>
#include <string.h>

/* ---- numbers ------------------------------------------------------------ */

/* Parse "-"? (0 | [1-9][0-9]*) exactly, within int64 (or uint64 when !neg_ok). */
static int parse_int_text(const char *s, size_t len, int allow_neg, int64_t *ret_i, uint64_t *ret_u)
{
	size_t i = 0;
	int neg = 0;
	uint64_t v = 0;

	if (len > 0 && s[0] == '-') {
		if (!allow_neg)
			return -EINVAL;
		neg = 1;
		i = 1;
	}
	if (i >= len || s[i] < '0' || s[i] > '9')
		return -EINVAL;
	if (s[i] == '0' && (len - i > 1 || neg))
		return -EINVAL; /* leading zeros and "-0" */
	for (; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		if (v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return -ERANGE;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (ret_u) {
		if (neg)
			return -ERANGE;
		*ret_u = v;
		return 0;
	}
	if (neg ? v > (uint64_t)INT64_MAX + 1 : v > (uint64_t)INT64_MAX)
		return -ERANGE;
	*ret_i = neg ? (int64_t)(0 - v) : (int64_t)v;
	return 0;
}

cJSON *canon_create_i64(int64_t v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "%lld", (long long)v);
	return cJSON_CreateRaw(buf);
}

cJSON *canon_create_u64(uint64_t v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
	return cJSON_CreateRaw(buf);
}

static int add_item(cJSON *obj, const char *key, cJSON *item)
{
	if (!item)
		return -ENOMEM;
	if (!cJSON_AddItemToObject(obj, key, item)) {
		cJSON_Delete(item);
		return -ENOMEM;
	}
	return 0;
}

int canon_add_i64(cJSON *obj, const char *key, int64_t v)
{
	return add_item(obj, key, canon_create_i64(v));
}

int canon_add_u64(cJSON *obj, const char *key, uint64_t v)
{
	return add_item(obj, key, canon_create_u64(v));
}

#define EXACT_DOUBLE_MAX 9007199254740992.0 /* 2^53 */

static int number_from_double(double d, int allow_neg, int64_t *ret_i, uint64_t *ret_u)
{
	if (!(d >= -EXACT_DOUBLE_MAX && d <= EXACT_DOUBLE_MAX) || d != (double)(int64_t)d)
		return -EINVAL;
	if (d < 0 && !allow_neg)
		return -ERANGE;
	if (ret_u)
		*ret_u = (uint64_t)d;
	else
		*ret_i = (int64_t)d;
	return 0;
}

int canon_number_i64(const cJSON *item, int64_t *ret)
{
	if (cJSON_IsRaw(item))
		return parse_int_text(item->valuestring, strlen(item->valuestring), 1, ret, NULL);
	if (cJSON_IsNumber(item))
		return number_from_double(item->valuedouble, 1, ret, NULL);
	return -EINVAL;
}

int canon_number_u64(const cJSON *item, uint64_t *ret)
{
	if (cJSON_IsRaw(item))
		return parse_int_text(item->valuestring, strlen(item->valuestring), 0, NULL, ret);
	if (cJSON_IsNumber(item))
		return number_from_double(item->valuedouble, 0, NULL, ret);
	return -EINVAL;
}

static const cJSON *member(const cJSON *obj, const char *key)
{
	return cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
}

int canon_get_i64(const cJSON *obj, const char *key, int64_t *ret)
{
	const cJSON *it = member(obj, key);

	if (!it)
		return -ENOENT;
	return canon_number_i64(it, ret) < 0 ? -EINVAL : 0;
}

int canon_get_u64(const cJSON *obj, const char *key, uint64_t *ret)
{
	const cJSON *it = member(obj, key);

	if (!it)
		return -ENOENT;
	return canon_number_u64(it, ret) < 0 ? -EINVAL : 0;
}

int canon_get_str(const cJSON *obj, const char *key, const char **ret)
{
	const cJSON *it = member(obj, key);

	if (!it)
		return -ENOENT;
	if (!cJSON_IsString(it))
		return -EINVAL;
	*ret = it->valuestring;
	return 0;
}

int canon_get_bool(const cJSON *obj, const char *key, int *ret)
{
	const cJSON *it = member(obj, key);

	if (!it)
		return -ENOENT;
	if (!cJSON_IsBool(it))
		return -EINVAL;
	*ret = cJSON_IsTrue(it);
	return 0;
}

/* ---- UTF-8 -------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (shortest form, no surrogates, <= U+10FFFF), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t avail)
{
	unsigned char c = s[0];
	size_t n;
	uint32_t cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (avail < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

static size_t utf8_put(uint32_t cp, char *out)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | cp >> 6);
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | cp >> 12);
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | cp >> 18);
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* ---- sorting keys -------------------------------------------------------- */

static int key_cmp(const void *a, const void *b)
{
	const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;

	return strcmp(x->string, y->string); /* byte order == UTF-8 code point order */
}

/* Children of an object sorted by key in a malloc'd array; -EINVAL on a duplicate key. */
static int sorted_members(const cJSON *obj, const cJSON ***ret, size_t *ret_n)
{
	size_t n = 0, i = 0;
	const cJSON **v;

	for (const cJSON *c = obj->child; c; c = c->next)
		n++;
	v = malloc((n ? n : 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (const cJSON *c = obj->child; c; c = c->next) {
		if (!c->string) {
			free(v);
			return -EINVAL;
		}
		v[i++] = c;
	}
	qsort(v, n, sizeof(*v), key_cmp);
	for (i = 1; i < n; i++) {
		if (strcmp(v[i - 1]->string, v[i]->string) == 0) {
			free(v);
			return -EINVAL;
		}
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

/* ---- printer ------------------------------------------------------------ */

struct out {
	char *buf;
	size_t len, cap;
};

static int out_put(struct out *o, const char *s, size_t n)
{
	if (o->len + n + 1 > o->cap) {
		size_t cap = o->cap ? o->cap : 256;
		char *nb;

		while (o->len + n + 1 > cap)
			cap *= 2;
		nb = realloc(o->buf, cap);
		if (!nb)
			return -ENOMEM;
		o->buf = nb;
		o->cap = cap;
	}
	memcpy(o->buf + o->len, s, n);
	o->len += n;
	o->buf[o->len] = '\0';
	return 0;
}

static int print_string(struct out *o, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t len = strlen(s);
	int r = out_put(o, "\"", 1);

	while (r == 0 && len > 0) {
		size_t run = 0, n;

		/* copy the longest run needing no escape in one go */
		while (run < len && p[run] >= 0x20 && p[run] != '"' && p[run] != '\\') {
			n = utf8_seq(p + run, len - run);
			if (!n)
				return -EINVAL;
			run += n;
		}
		if (run) {
			r = out_put(o, (const char *)p, run);
			p += run;
			len -= run;
			continue;
		}
		{
			char esc[8];

			switch (*p) {
			case '"':
				memcpy(esc, "\\\"", 3);
				break;
			case '\\':
				memcpy(esc, "\\\\", 3);
				break;
			case '\b':
				memcpy(esc, "\\b", 3);
				break;
			case '\f':
				memcpy(esc, "\\f", 3);
				break;
			case '\n':
				memcpy(esc, "\\n", 3);
				break;
			case '\r':
				memcpy(esc, "\\r", 3);
				break;
			case '\t':
				memcpy(esc, "\\t", 3);
				break;
			default:
				snprintf(esc, sizeof(esc), "\\u%04x", *p);
			}
			r = out_put(o, esc, strlen(esc));
			p++;
			len--;
		}
	}
	return r ? r : out_put(o, "\"", 1);
}

static int print_value(struct out *o, const cJSON *v, unsigned depth)
{
	int r = 0;

	if (depth > 256)
		return -ELOOP;
	switch (v->type & 0xff) {
	case cJSON_NULL:
		return out_put(o, "null", 4);
	case cJSON_True:
		return out_put(o, "true", 4);
	case cJSON_False:
		return out_put(o, "false", 5);
	case cJSON_Raw: {
		int64_t i;

		if (!v->valuestring ||
		    parse_int_text(v->valuestring, strlen(v->valuestring), 1, &i, NULL) < 0) {
			uint64_t u; /* values above INT64_MAX are still exact integers */

			if (!v->valuestring ||
			    parse_int_text(v->valuestring, strlen(v->valuestring), 0, NULL, &u) < 0)
				return -EINVAL;
		}
		return out_put(o, v->valuestring, strlen(v->valuestring));
	}
	case cJSON_Number: {
		int64_t i;
		char buf[24];

		if (number_from_double(v->valuedouble, 1, &i, NULL) < 0)
			return -EINVAL;
		snprintf(buf, sizeof(buf), "%lld", (long long)i);
		return out_put(o, buf, strlen(buf));
	}
	case cJSON_String:
		return v->valuestring ? print_string(o, v->valuestring) : -EINVAL;
	case cJSON_Array:
		r = out_put(o, "[", 1);
		for (const cJSON *c = v->child; c && r == 0; c = c->next) {
			r = print_value(o, c, depth + 1);
			if (r == 0 && c->next)
				r = out_put(o, ",", 1);
		}
		return r ? r : out_put(o, "]", 1);
	case cJSON_Object: {
		const cJSON **m;
		size_t n;

		r = sorted_members(v, &m, &n);
		if (r < 0)
			return r;
		r = out_put(o, "{", 1);
		for (size_t i = 0; i < n && r == 0; i++) {
			r = print_string(o, m[i]->string);
			if (r == 0)
				r = out_put(o, ":", 1);
			if (r == 0)
				r = print_value(o, m[i], depth + 1);
			if (r == 0 && i + 1 < n)
				r = out_put(o, ",", 1);
		}
		free(m);
		return r ? r : out_put(o, "}", 1);
	}
	default:
		return -EINVAL;
	}
}

int canon_print(const cJSON *v, char **ret, size_t *ret_len)
{
	struct out o = {0};
	int r;

	if (!v)
		return -EINVAL;
	r = print_value(&o, v, 0);
	if (r < 0) {
		free(o.buf);
		return r;
	}
	*ret = o.buf;
	if (ret_len)
		*ret_len = o.len;
	return 0;
}

/* ---- strict parser ------------------------------------------------------- */

struct parser {
	const char *p, *end;
	unsigned depth, max_depth;
	const char *err;
};

static cJSON *fail(struct parser *ps, const char *why)
{
	if (!ps->err)
		ps->err = why;
	return NULL;
}

static void skip_ws(struct parser *ps)
{
	while (ps->p < ps->end &&
	       (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
		ps->p++;
}

static int hex4(const char *s, uint32_t *ret)
{
	uint32_t v = 0;

	for (int i = 0; i < 4; i++) {
		char c = s[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (uint32_t)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (uint32_t)(c - 'A' + 10);
		else
			return -EINVAL;
	}
	*ret = v;
	return 0;
}

/* Parse a string token at ps->p (on the opening quote) into a malloc'd C string. */
static char *parse_string_raw(struct parser *ps)
{
	const char *s = ps->p + 1;
	size_t cap = 0;
	char *out, *w;

	/* decoded text is never longer than the source */
	for (const char *q = s; q < ps->end && *q != '"'; q++, cap++)
		if (*q == '\\' && q + 1 < ps->end)
			q++, cap++;
	out = malloc(cap + 1);
	if (!out) {
		fail(ps, "out of memory");
		return NULL;
	}
	w = out;
	while (s < ps->end && *s != '"') {
		unsigned char c = (unsigned char)*s;

		if (c < 0x20) {
			fail(ps, "control character in string");
			goto bad;
		}
		if (c != '\\') {
			size_t n = utf8_seq((const unsigned char *)s, (size_t)(ps->end - s));

			if (!n) {
				fail(ps, "invalid UTF-8 in string");
				goto bad;
			}
			memcpy(w, s, n);
			w += n;
			s += n;
			continue;
		}
		if (++s >= ps->end)
			break;
		switch (*s) {
		case '"':
		case '\\':
		case '/':
			*w++ = *s++;
			break;
		case 'b':
			*w++ = '\b', s++;
			break;
		case 'f':
			*w++ = '\f', s++;
			break;
		case 'n':
			*w++ = '\n', s++;
			break;
		case 'r':
			*w++ = '\r', s++;
			break;
		case 't':
			*w++ = '\t', s++;
			break;
		case 'u': {
			uint32_t cp, lo;

			if (ps->end - s < 5 || hex4(s + 1, &cp) < 0) {
				fail(ps, "bad \\u escape");
				goto bad;
			}
			s += 5;
			if (cp >= 0xdc00 && cp <= 0xdfff) {
				fail(ps, "lone low surrogate");
				goto bad;
			}
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (ps->end - s < 6 || s[0] != '\\' || s[1] != 'u' ||
				    hex4(s + 2, &lo) < 0 || lo < 0xdc00 || lo > 0xdfff) {
					fail(ps, "lone high surrogate");
					goto bad;
				}
				s += 6;
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			}
			if (cp == 0) {
				fail(ps, "NUL in string");
				goto bad;
			}
			w += utf8_put(cp, w);
			break;
		}
		default:
			fail(ps, "bad escape in string");
			goto bad;
		}
	}
	if (s >= ps->end) {
		fail(ps, "unterminated string");
		goto bad;
	}
	*w = '\0';
	ps->p = s + 1;
	return out;
bad:
	free(out);
	return NULL;
}

static cJSON *parse_value(struct parser *ps);

static cJSON *parse_number(struct parser *ps)
{
	const char *s = ps->p;
	int64_t i;
	uint64_t u;
	char *text;
	cJSON *item;
	size_t n;

	while (ps->p < ps->end && (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9')))
		ps->p++;
	if (ps->p < ps->end && (*ps->p == '.' || *ps->p == 'e' || *ps->p == 'E' || *ps->p == '+'))
		return fail(ps, "only integers are allowed");
	n = (size_t)(ps->p - s);
	if (parse_int_text(s, n, 1, &i, NULL) < 0 && parse_int_text(s, n, 0, NULL, &u) < 0)
		return fail(ps, "bad or out-of-range integer");
	text = strndup(s, n);
	if (!text)
		return fail(ps, "out of memory");
	item = cJSON_CreateRaw(text);
	free(text);
	return item ? item : fail(ps, "out of memory");
}

static cJSON *parse_container(struct parser *ps, int is_object)
{
	cJSON *c = is_object ? cJSON_CreateObject() : cJSON_CreateArray();
	char close = is_object ? '}' : ']';
	size_t count = 0;

	if (!c)
		return fail(ps, "out of memory");
	if (++ps->depth > ps->max_depth) {
		cJSON_Delete(c);
		return fail(ps, "nesting too deep");
	}
	ps->p++;
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == close) {
		ps->p++;
		ps->depth--;
		return c;
	}
	for (;;) {
		_cleanup_free_ char *key = NULL;
		cJSON *v;

		skip_ws(ps);
		if (is_object) {
			if (ps->p >= ps->end || *ps->p != '"')
				goto bad_syntax;
			key = parse_string_raw(ps);
			if (!key)
				goto bad;
			skip_ws(ps);
			if (ps->p >= ps->end || *ps->p != ':')
				goto bad_syntax;
			ps->p++;
		}
		v = parse_value(ps);
		if (!v)
			goto bad;
		if (is_object ? !cJSON_AddItemToObject(c, key, v) : !cJSON_AddItemToArray(c, v)) {
			cJSON_Delete(v);
			fail(ps, "out of memory");
			goto bad;
		}
		count++;
		skip_ws(ps);
		if (ps->p < ps->end && *ps->p == ',') {
			ps->p++;
			continue;
		}
		if (ps->p < ps->end && *ps->p == close) {
			ps->p++;
			break;
		}
		goto bad_syntax;
	}
	if (is_object && count > 1) {
		const cJSON **m;
		size_t n;
		int r = sorted_members(c, &m, &n);

		if (r < 0) {
			fail(ps, r == -ENOMEM ? "out of memory" : "duplicate key");
			goto bad;
		}
		free(m);
	}
	ps->depth--;
	return c;
bad_syntax:
	fail(ps, is_object ? "malformed object" : "malformed array");
bad:
	cJSON_Delete(c);
	return NULL;
}

static cJSON *parse_value(struct parser *ps)
{
	skip_ws(ps);
	if (ps->p >= ps->end)
		return fail(ps, "unexpected end of input");
	switch (*ps->p) {
	case '{':
		return parse_container(ps, 1);
	case '[':
		return parse_container(ps, 0);
	case '"': {
		char *s = parse_string_raw(ps);
		cJSON *item;

		if (!s)
			return NULL;
		item = cJSON_CreateString(s);
		free(s);
		return item ? item : fail(ps, "out of memory");
	}
	case 't':
		if (ps->end - ps->p >= 4 && memcmp(ps->p, "true", 4) == 0) {
			ps->p += 4;
			return cJSON_CreateTrue();
		}
		break;
	case 'f':
		if (ps->end - ps->p >= 5 && memcmp(ps->p, "false", 5) == 0) {
			ps->p += 5;
			return cJSON_CreateFalse();
		}
		break;
	case 'n':
		if (ps->end - ps->p >= 4 && memcmp(ps->p, "null", 4) == 0) {
			ps->p += 4;
			return cJSON_CreateNull();
		}
		break;
	default:
		if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9'))
			return parse_number(ps);
	}
	return fail(ps, "unexpected character");
}

int canon_parse(const char *buf, size_t len, unsigned max_depth, cJSON **ret, const char **ret_err)
{
	struct parser ps = {.max_depth = max_depth};
	cJSON *v;

	if (!buf) {
		if (ret_err)
			*ret_err = "no input";
		return -EINVAL;
	}
	ps.p = buf;
	ps.end = buf + len;
	v = parse_value(&ps);
	if (v) {
		skip_ws(&ps);
		if (ps.p != ps.end) {
			cJSON_Delete(v);
			v = fail(&ps, "trailing bytes after the value");
		}
	}
	if (!v) {
		if (ret_err)
			*ret_err = ps.err ? ps.err : "invalid JSON";
		return ps.err && strcmp(ps.err, "out of memory") == 0 ? -ENOMEM : -EINVAL;
	}
	*ret = v;
	return 0;
}

int canon_is_canonical(const char *buf, size_t len)
{
	cJSON *v;
	char *out;
	size_t n;
	int r;

	r = canon_parse(buf, len, CANON_MAX_DEPTH_DEFAULT, &v, NULL);
	if (r < 0)
		return r;
	r = canon_print(v, &out, &n);
	cJSON_Delete(v);
	if (r < 0)
		return r;
	r = n == len && memcmp(out, buf, len) == 0;
	free(out);
	return r;
}
