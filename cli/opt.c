/* opt.c -- aicnctl option parsing and usage text from one table per command, plus the value syntaxes. */
#include "opt.h"

#include <aicn/compiler.h>

#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

const char opt_exit_common[] =
	"Exit status: 0 success; 1 failure; 2 usage error; 3 cannot connect to or talk to the\n"
	"coordinator; 4 the coordinator refused the request (its error code and message are\n"
	"printed).";

void opt_list_free(struct opt_list *l)
{
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

void opt_args_done(struct opt_args *a)
{
	free(a->pos);
	a->pos = NULL;
	a->npos = 0;
}

int opt_fail(const struct opt_cmd *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", cmd->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '%s --help'.\n", cmd->name);
	return EXIT_USAGE;
}

/* ---- value syntaxes ---- */

int opt_parse_int(const char *s, int64_t min, int64_t max, int64_t *ret)
{
	char *end;
	long long v;

	if (!*s || isspace((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (*end)
		return -EINVAL;
	if (errno == ERANGE || v < min || v > max)
		return -ERANGE;
	*ret = v;
	return 0;
}

int opt_parse_fixed(const char *s, int decimals, int64_t *ret)
{
	int64_t v = 0;
	int neg = 0, frac = -1, digits = 0;

	if (*s == '-') {
		neg = 1;
		s++;
	}
	for (; *s; s++) {
		if (*s == '.' && frac < 0) {
			frac = 0;
			continue;
		}
		if (!isdigit((unsigned char)*s))
			return -EINVAL;
		if (frac >= 0 && ++frac > decimals)
			return -ERANGE;
		if (v > (INT64_MAX - 9) / 10)
			return -ERANGE;
		v = v * 10 + (*s - '0');
		digits++;
	}
	if (!digits)
		return -EINVAL;
	for (int i = frac < 0 ? 0 : frac; i < decimals; i++) {
		if (v > INT64_MAX / 10)
			return -ERANGE;
		v *= 10;
	}
	*ret = neg ? -v : v;
	return 0;
}

int opt_parse_amount(const char *s, int64_t *ret)
{
	return opt_parse_fixed(s, 9, ret);
}

int opt_parse_size(const char *s, int64_t *ret)
{
	static const struct {
		const char *suffix;
		int shift;
	} units[] = {
		{"", 0},     {"b", 0},	 {"k", 10},   {"kb", 10},  {"kib", 10},
		{"m", 20},   {"mb", 20}, {"mib", 20}, {"g", 30},   {"gb", 30},
		{"gib", 30}, {"t", 40},	 {"tb", 40},  {"tib", 40},
	};
	char num[32];
	size_t n = strspn(s, "0123456789.");
	int64_t v;
	int r;

	if (n == 0 || n >= sizeof(num))
		return -EINVAL;
	memcpy(num, s, n);
	num[n] = '\0';
	/* two decimals are enough for "1.5G"; the result is truncated to whole bytes */
	r = opt_parse_fixed(num, 2, &v);
	if (r < 0)
		return r;
	for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
		if (strcasecmp(s + n, units[i].suffix) != 0)
			continue;
		if (units[i].shift && v > (INT64_MAX >> units[i].shift))
			return -ERANGE;
		*ret = (v << units[i].shift) / 100;
		return 0;
	}
	return -EINVAL;
}

int opt_parse_duration(const char *s, int64_t *ret)
{
	int64_t total = 0;
	int parts = 0;

	if (!*s)
		return -EINVAL;
	while (*s) {
		int64_t v = 0, mult;
		int d = 0;

		while (isdigit((unsigned char)*s)) {
			if (v > (INT64_MAX - 9) / 10)
				return -ERANGE;
			v = v * 10 + (*s++ - '0');
			d++;
		}
		if (!d)
			return -EINVAL;
		switch (*s) {
		case '\0':
			if (parts)
				return -EINVAL; /* "1h30" is ambiguous */
			mult = 1;
			break;
		case 's':
			mult = 1;
			s++;
			break;
		case 'm':
			mult = 60;
			s++;
			break;
		case 'h':
			mult = 3600;
			s++;
			break;
		case 'd':
			mult = 86400;
			s++;
			break;
		default:
			return -EINVAL;
		}
		if (v > (INT64_MAX - total) / mult)
			return -ERANGE;
		total += v * mult;
		parts++;
	}
	*ret = total;
	return 0;
}

int opt_parse_time(const char *s, int64_t now, int64_t *ret)
{
	struct tm tm = {0};
	const char *end;
	int64_t d;

	if (*s == '+') {
		if (opt_parse_duration(s + 1, &d) < 0 || d > INT64_MAX - now)
			return -EINVAL;
		*ret = now + d;
		return 0;
	}
	if (opt_parse_int(s, 0, INT64_MAX, &d) == 0) {
		*ret = d;
		return 0;
	}
	end = strptime(s, "%Y-%m-%dT%H:%M", &tm);
	if (end && *end == ':')
		end = strptime(end, ":%S", &tm);
	if (!end || strcmp(end, "Z") != 0)
		return -EINVAL;
	*ret = (int64_t)timegm(&tm);
	return 0;
}

const char *amount_format(int64_t units, char buf[AMOUNT_STR_LEN])
{
	uint64_t a = units < 0 ? -(uint64_t)units : (uint64_t)units;
	uint64_t whole = a / 1000000000ULL, frac = a % 1000000000ULL;
	int n;

	n = snprintf(buf, AMOUNT_STR_LEN, "%s%llu", units < 0 ? "-" : "",
		     (unsigned long long)whole);
	if (frac) {
		int w = 9;

		while (frac % 10 == 0) {
			frac /= 10;
			w--;
		}
		snprintf(buf + n, AMOUNT_STR_LEN - n, ".%0*llu", w, (unsigned long long)frac);
	}
	return buf;
}

const char *size_format(uint64_t bytes, char buf[32])
{
	static const char *const u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	int i = 0;

	while (i < 4 && bytes >= 1024 && bytes % 1024 == 0) {
		bytes /= 1024;
		i++;
	}
	snprintf(buf, 32, "%llu %s", (unsigned long long)bytes, u[i]);
	return buf;
}

/* ---- the parser ---- */

static const struct opt help_tab[] = {
	{"help", 'h', OPT_FLAG, NULL, NULL, "show this help and exit", 0, 0},
	{0},
};
#define help_opt (help_tab[0])

static const struct opt *find_long(const struct opt_cmd *cmd, const char *name, size_t len)
{
	const struct opt *tables[2] = {cmd->opts, cmd->opts2};

	for (int t = 0; t < 2; t++)
		for (const struct opt *o = tables[t]; o && o->name; o++)
			if (strlen(o->name) == len && strncmp(o->name, name, len) == 0)
				return o;
	if (len == 4 && strncmp(name, "help", 4) == 0)
		return &help_opt;
	return NULL;
}

static const struct opt *find_short(const struct opt_cmd *cmd, char c)
{
	const struct opt *tables[2] = {cmd->opts, cmd->opts2};

	for (int t = 0; t < 2; t++)
		for (const struct opt *o = tables[t]; o && o->name; o++)
			if (o->short_name && o->short_name == c)
				return o;
	return c == 'h' ? &help_opt : NULL;
}

static const char *kind_hint(enum opt_kind k)
{
	switch (k) {
	case OPT_INT:
		return "an integer";
	case OPT_SIZE:
		return "a size (e.g. 512M, 2G)";
	case OPT_DURATION:
		return "a duration (e.g. 90s, 15m, 2h, 1h30m)";
	case OPT_AMOUNT:
		return "an amount of AICN (e.g. 1.5, at most 9 decimals)";
	case OPT_HOURS:
		return "a number of hours (e.g. 0.5)";
	case OPT_TIME:
		return "a time (unix seconds, +DURATION, or YYYY-MM-DDTHH:MM[:SS]Z)";
	default:
		return "a value";
	}
}

static int set_value(const struct opt_cmd *cmd, const struct opt *o, const char *v)
{
	int64_t x = 0, lo = o->min, hi = o->max;
	int r = 0;

	if (!lo && !hi)
		hi = INT64_MAX;
	switch (o->kind) {
	case OPT_FLAG:
		(*(int *)o->dest)++;
		return 0;
	case OPT_STR:
		*(const char **)o->dest = v;
		return 0;
	case OPT_LIST: {
		struct opt_list *l = o->dest;
		const char **nv = realloc(l->v, sizeof(*nv) * (l->n + 1));

		if (!nv)
			return -ENOMEM;
		nv[l->n++] = v;
		l->v = nv;
		return 0;
	}
	case OPT_INT:
		r = opt_parse_int(v, INT64_MIN, INT64_MAX, &x);
		break;
	case OPT_SIZE:
		r = opt_parse_size(v, &x);
		break;
	case OPT_DURATION:
		r = opt_parse_duration(v, &x);
		break;
	case OPT_AMOUNT:
		r = opt_parse_amount(v, &x);
		break;
	case OPT_HOURS: {
		int64_t tenk;

		/* 1/10000 h = 0.36 s resolution; rounded up to whole seconds */
		r = opt_parse_fixed(v, 4, &tenk);
		if (r == 0 && (tenk < 0 || tenk > INT64_MAX / 3600))
			r = -ERANGE;
		if (r == 0)
			x = (tenk * 3600 + 9999) / 10000;
		break;
	}
	case OPT_TIME:
		r = opt_parse_time(v, (int64_t)time(NULL), &x);
		break;
	}
	if (r == -EINVAL) {
		opt_fail(cmd, "--%s: '%s' is not %s", o->name, v, kind_hint(o->kind));
		return r;
	}
	if (r < 0 || x < lo || x > hi) {
		if (o->kind == OPT_AMOUNT) {
			char a[AMOUNT_STR_LEN], b[AMOUNT_STR_LEN];

			opt_fail(cmd, "--%s: '%s' is out of range (%s to %s AICN)", o->name, v,
				 amount_format(lo, a), amount_format(hi, b));
		} else if (hi == INT64_MAX) {
			opt_fail(cmd, "--%s: '%s' is out of range (at least %lld%s)", o->name, v,
				 (long long)lo,
				 o->kind == OPT_SIZE  ? " bytes"
				 : o->kind == OPT_INT ? ""
						      : " s");
		} else {
			opt_fail(cmd, "--%s: '%s' is out of range (%lld to %lld%s)", o->name, v,
				 (long long)lo, (long long)hi,
				 o->kind == OPT_SIZE  ? " bytes"
				 : o->kind == OPT_INT ? ""
						      : " s");
		}
		return -ERANGE;
	}
	*(int64_t *)o->dest = x;
	return 0;
}

static int take(const struct opt_cmd *cmd, const struct opt *o, const char *inline_val,
		const char *shown, int argc, char **argv, int *i)
{
	const char *v = inline_val;
	int r;

	if (o == &help_opt)
		return OPT_HELP;
	if (o->kind == OPT_FLAG) {
		if (inline_val) {
			opt_fail(cmd, "%s takes no value", shown);
			return -EINVAL;
		}
	} else if (!v) {
		if (*i + 1 >= argc) {
			opt_fail(cmd, "%s needs a value (%s)", shown, o->arg ? o->arg : "VALUE");
			return -EINVAL;
		}
		v = argv[++*i];
	}
	r = set_value(cmd, o, v);
	if (r == -ENOMEM)
		opt_fail(cmd, "out of memory");
	return r < 0 ? -EINVAL : 0;
}

int opt_parse(const struct opt_cmd *cmd, int argc, char **argv, struct opt_args *ret)
{
	struct opt_args a = {0};
	int i, r = 0;

	a.pos = calloc((size_t)argc + 1, sizeof(*a.pos));
	if (!a.pos)
		return -ENOMEM;
	for (i = 1; i < argc; i++) {
		const char *s = argv[i];

		if (strcmp(s, "--") == 0) {
			i++;
			break;
		}
		if (s[0] == '-' && s[1] == '-') {
			const char *eq = strchr(s + 2, '=');
			size_t len = eq ? (size_t)(eq - s - 2) : strlen(s + 2);
			const struct opt *o = find_long(cmd, s + 2, len);
			char shown[80];

			if (!o) {
				opt_fail(cmd, "unknown option '%.*s'", (int)MIN(len + 2, 64u), s);
				r = -EINVAL;
				goto fail;
			}
			snprintf(shown, sizeof(shown), "--%s", o->name);
			r = take(cmd, o, eq ? eq + 1 : NULL, shown, argc, argv, &i);
		} else if (s[0] == '-' && s[1] && !isdigit((unsigned char)s[1])) {
			const struct opt *o = find_short(cmd, s[1]);
			char shown[8];

			if (!o) {
				opt_fail(cmd, "unknown option '-%c'", s[1]);
				r = -EINVAL;
				goto fail;
			}
			snprintf(shown, sizeof(shown), "-%c", s[1]);
			if (s[2] && o->kind == OPT_FLAG) {
				opt_fail(cmd, "write '-%c' and '%s' separately", s[1], s + 2);
				r = -EINVAL;
				goto fail;
			}
			r = take(cmd, o, s[2] ? s + 2 : NULL, shown, argc, argv, &i);
		} else {
			a.pos[a.npos++] = argv[i];
			continue;
		}
		if (r == OPT_HELP) {
			opt_usage(cmd, stdout);
			goto fail;
		}
		if (r < 0)
			goto fail;
	}
	if (cmd->rest) {
		a.rest = argv + i;
		a.nrest = argc - i;
	} else {
		for (; i < argc; i++)
			a.pos[a.npos++] = argv[i];
	}
	if (a.npos < cmd->min_pos || (cmd->max_pos >= 0 && a.npos > cmd->max_pos)) {
		if (a.npos < cmd->min_pos)
			opt_fail(cmd, "missing argument (usage: %s %.*s)", cmd->name,
				 (int)strcspn(cmd->synopsis, "\n"), cmd->synopsis);
		else
			opt_fail(cmd, "unexpected argument '%s'", a.pos[cmd->max_pos]);
		r = -EINVAL;
		goto fail;
	}
	*ret = a;
	return 0;
fail:
	free(a.pos);
	return r;
}

static void print_table(const struct opt *opts, FILE *f)
{
	for (const struct opt *o = opts; o && o->name; o++) {
		char left[64];
		int n;

		if (o->short_name)
			n = snprintf(left, sizeof(left), "-%c, --%s", o->short_name, o->name);
		else
			n = snprintf(left, sizeof(left), "    --%s", o->name);
		if (o->kind != OPT_FLAG && n >= 0 && (size_t)n < sizeof(left))
			snprintf(left + n, sizeof(left) - n, " %s", o->arg ? o->arg : "VALUE");
		fprintf(f, "  %-26s", left);
		if (strlen(left) > 26)
			fprintf(f, "\n  %-26s", "");
		for (const char *h = o->help; *h; h++) {
			fputc(*h, f);
			if (*h == '\n')
				fprintf(f, "  %-26s", "");
		}
		fputc('\n', f);
	}
}

void opt_usage(const struct opt_cmd *cmd, FILE *f)
{
	const char *s = cmd->synopsis;

	fprintf(f, "Usage: %s ", cmd->name);
	for (; *s; s++) {
		fputc(*s, f);
		if (*s == '\n')
			fprintf(f, "       %s ", cmd->name);
	}
	fprintf(f, "\n\n%s\n\nOptions:\n", cmd->description);
	print_table(cmd->opts, f);
	if (cmd->opts2) {
		fprintf(f,
			"\nConnection (default: ~/.config/aicn/aicnctl.conf, or $AICNCTL_CONFIG):\n");
		print_table(cmd->opts2, f);
	}
	print_table(help_tab, f);
	fprintf(f, "\n%s\n", cmd->exit_status ? cmd->exit_status : opt_exit_common);
}
