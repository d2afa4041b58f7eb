/* econ_file.c -- the genesis parameters file: INI (name = value, optionally under [econ]) or a JSON object of integers, to struct econ_params. */
#include "econ.h"

#include <aicn/canon.h>
#include <aicn/errmsg.h>

#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct params_load {
	struct econ_params *p;
	char *err;
	size_t errlen;
	int r;
};

static int set_text(struct params_load *pl, const char *name, const char *text)
{
	char *end = NULL;
	long long v;
	int r;

	errno = 0;
	v = strtoll(text, &end, 10);
	if (errno || end == text || *end)
		return errmsg(pl->err, pl->errlen, -EINVAL, "%.64s: not an integer: %.40s", name,
			      text);
	r = econ_param_set_field(pl->p, name, (int64_t)v);
	if (r == -ENOENT)
		return errmsg(pl->err, pl->errlen, r, "unknown parameter %.64s", name);
	if (r < 0)
		return errmsg(pl->err, pl->errlen, r, "%.64s: %lld out of range", name, v);
	return 0;
}

static int ini_cb(void *user, const char *section, const char *name, const char *value)
{
	struct params_load *pl = user;

	if (section[0] && strcmp(section, "econ") != 0) {
		pl->r = errmsg(pl->err, pl->errlen, -EINVAL, "unknown section [%.32s]", section);
		return 0;
	}
	pl->r = set_text(pl, name, value);
	return pl->r == 0;
}

static int parse_json(const char *buf, size_t len, struct econ_params *p, char *err, size_t errlen)
{
	const char *why = NULL;
	cJSON *root = NULL, *it;
	int r;

	r = canon_parse(buf, len, 2, &root, &why);
	if (r < 0)
		return errmsg(err, errlen, -EINVAL, "%s", why ? why : "bad JSON");
	if (!cJSON_IsObject(root)) {
		cJSON_Delete(root);
		return errmsg(err, errlen, -EINVAL, "not a JSON object");
	}
	cJSON_ArrayForEach (it, root) {
		int64_t v;

		if (canon_number_i64(it, &v) < 0) {
			r = errmsg(err, errlen, -EINVAL, "%.64s: not an integer", it->string);
			break;
		}
		r = econ_param_set_field(p, it->string, v);
		if (r < 0) {
			r = errmsg(err, errlen, r, "%.64s: %s", it->string,
				   r == -ENOENT ? "unknown parameter" : "out of range");
			break;
		}
	}
	cJSON_Delete(root);
	return r < 0 ? r : 0;
}

int econ_params_parse(const char *buf, size_t len, struct econ_params *ret, char *err,
		      size_t errlen)
{
	struct econ_params p;
	struct params_load pl = {&p, err, errlen, 0};
	const char *why = NULL;
	char *text;
	size_t i = 0;
	int r;

	if (!buf || len > ECON_PARAMS_TEXT_MAX)
		return errmsg(err, errlen, -EFBIG, "larger than %d bytes", ECON_PARAMS_TEXT_MAX);
	if (memchr(buf, '\0', len))
		return errmsg(err, errlen, -EINVAL, "NUL byte");
	econ_params_default(&p);
	while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\n' || buf[i] == '\r'))
		i++;
	if (i < len && buf[i] == '{') {
		r = parse_json(buf, len, &p, err, errlen);
	} else {
		text = strndup(buf, len);
		if (!text)
			return -ENOMEM;
		r = ini_parse_string(text, ini_cb, &pl);
		free(text);
		if (pl.r < 0)
			r = pl.r;
		else if (r != 0)
			r = errmsg(err, errlen, -EINVAL, "syntax error on line %d", r);
	}
	if (r < 0)
		return r;
	if (econ_params_validate(&p, &why) < 0)
		return errmsg(err, errlen, -EINVAL, "%s", why);
	*ret = p;
	return 0;
}
