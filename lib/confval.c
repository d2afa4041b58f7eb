/* confval.c -- strict parsing of config values (numbers, sizes, durations, booleans) shared by every config file. */
#include <aicn/compiler.h>
#include <aicn/confval.h>

#include <errno.h>
#include <string.h>

/* The leading run of digits of s as a number; *ret_end after it. -ERANGE past 64 bits. */
static int leading_uint(const char *s, uint64_t *ret, const char **ret_end)
{
	uint64_t v = 0;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	for (; *s >= '0' && *s <= '9'; s++) {
		uint64_t d = (uint64_t)(*s - '0');

		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*ret = v;
	*ret_end = s;
	return 0;
}

int confval_uint(const char *s, uint64_t max, uint64_t *ret)
{
	const char *end;
	uint64_t v;
	int r;

	r = leading_uint(s, &v, &end);
	if (r < 0)
		return r;
	if (*end)
		return -EINVAL;
	if (v > max)
		return -ERANGE;
	*ret = v;
	return 0;
}

int confval_size(const char *s, uint64_t max, uint64_t *ret)
{
	static const struct {
		const char *suffix;
		unsigned shift;
	} units[] = {
		{"", 0},   {"K", 10},	{"KiB", 10}, {"M", 20},	  {"MiB", 20},
		{"G", 30}, {"GiB", 30}, {"T", 40},   {"TiB", 40},
	};
	const char *end;
	uint64_t v;
	int r;

	r = leading_uint(s, &v, &end);
	if (r < 0)
		return r;
	for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
		if (strcmp(end, units[i].suffix) != 0)
			continue;
		if (v > (UINT64_MAX >> units[i].shift) || (v << units[i].shift) > max)
			return -ERANGE;
		*ret = v << units[i].shift;
		return 0;
	}
	return -EINVAL;
}

int confval_duration(const char *s, int64_t max, int64_t *ret)
{
	static const struct {
		char unit;
		int64_t mult;
	} units[] = {{'\0', 1}, {'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}};
	const char *end;
	uint64_t v;
	int r;

	if (max < 0)
		return -ERANGE;
	r = leading_uint(s, &v, &end);
	if (r < 0)
		return r;
	for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
		if (end[0] != units[i].unit || (end[0] && end[1]))
			continue;
		if (v > (uint64_t)(max / units[i].mult))
			return -ERANGE;
		*ret = (int64_t)v * units[i].mult;
		return 0;
	}
	return -EINVAL;
}

int confval_fixed(const char *s, unsigned digits, uint64_t max_scaled, uint64_t *ret)
{
	uint64_t ip, scale = 1, frac = 0;
	unsigned nf = 0;
	const char *end;
	int r;

	if (digits > 9)
		return -EINVAL;
	for (unsigned i = 0; i < digits; i++)
		scale *= 10;
	r = leading_uint(s, &ip, &end);
	if (r < 0)
		return r;
	if (*end == '.') {
		for (end++; *end >= '0' && *end <= '9'; end++, nf++) {
			if (nf >= digits)
				return -EINVAL;
			frac = frac * 10 + (uint64_t)(*end - '0');
		}
		if (!nf)
			return -EINVAL;
	}
	if (*end)
		return -EINVAL;
	for (unsigned i = nf; i < digits; i++)
		frac *= 10;
	if (ip > max_scaled / scale || ip * scale + frac > max_scaled)
		return -ERANGE;
	*ret = ip * scale + frac;
	return 0;
}

int confval_bool(const char *s, bool *ret)
{
	static const struct {
		const char *word;
		bool value;
	} words[] = {
		{"on", true},	{"yes", true}, {"true", true},	 {"1", true},
		{"off", false}, {"no", false}, {"false", false}, {"0", false},
	};

	for (size_t i = 0; i < ARRAY_SIZE(words); i++)
		if (strcmp(s, words[i].word) == 0) {
			*ret = words[i].value;
			return 0;
		}
	return -EINVAL;
}
