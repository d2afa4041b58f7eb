/* window.c -- availability windows as a minute-of-week bitmap: parser, inside() and next change. */
#include <aicn/window.h>

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define DAY_MINUTES (24 * 60)

struct wparser {
	const char *s; /* whole spec */
	size_t pos;    /* next byte to read */
	char *err;
	size_t errlen;
};

static const char *const day_short[7] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
static const char *const day_long[7] = {"monday", "tuesday",  "wednesday", "thursday",
					"friday", "saturday", "sunday"};

static int wp_fail(struct wparser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int wp_fail(struct wparser *p, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (p->err && p->errlen) {
		n = snprintf(p->err, p->errlen, "column %zu: ", p->pos + 1);
		if (n >= 0 && (size_t)n < p->errlen) {
			va_start(ap, fmt);
			vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
			va_end(ap);
		}
	}
	return -EINVAL;
}

static void wp_skip_space(struct wparser *p)
{
	while (p->s[p->pos] == ' ' || p->s[p->pos] == '\t')
		p->pos++;
}

/* A day name at the current position: 0..6 (Monday first), or -1 (nothing consumed). */
static int wp_day(struct wparser *p)
{
	size_t n = 0;

	while (isalpha((unsigned char)p->s[p->pos + n]))
		n++;
	if (n == 0)
		return -1;
	for (int d = 0; d < 7; d++) {
		if ((n == 3 && strncasecmp(p->s + p->pos, day_short[d], 3) == 0) ||
		    (n == strlen(day_long[d]) && strncasecmp(p->s + p->pos, day_long[d], n) == 0)) {
			p->pos += n;
			return d;
		}
	}
	return -2;
}

/* H:MM or HH:MM; allow_24 permits exactly 24:00.  Returns minutes of the day. */
static int wp_time(struct wparser *p, bool allow_24, unsigned *ret)
{
	unsigned h = 0, m = 0, nd = 0;

	wp_skip_space(p);
	while (isdigit((unsigned char)p->s[p->pos]) && nd < 2) {
		h = h * 10 + (unsigned)(p->s[p->pos++] - '0');
		nd++;
	}
	if (nd == 0 || p->s[p->pos] != ':')
		return wp_fail(p, "expected a time like 22:00");
	p->pos++;
	if (!isdigit((unsigned char)p->s[p->pos]) || !isdigit((unsigned char)p->s[p->pos + 1]))
		return wp_fail(p, "expected two digits of minutes");
	m = (unsigned)(p->s[p->pos] - '0') * 10 + (unsigned)(p->s[p->pos + 1] - '0');
	if (isdigit((unsigned char)p->s[p->pos + 2]))
		return wp_fail(p, "expected two digits of minutes");
	if (m > 59)
		return wp_fail(p, "minutes must be 00-59");
	if (h > 24 || (h == 24 && (m != 0 || !allow_24)))
		return wp_fail(p, "%s",
			       allow_24 ? "hour must be 00-23 (or 24:00 as an end)"
					: "hour must be 00-23");
	p->pos += 2;
	*ret = h * 60 + m;
	return 0;
}

static void set_range(struct window *w, unsigned from, unsigned len)
{
	for (unsigned i = 0; i < len; i++) {
		unsigned m = (from + i) % WINDOW_MINUTES;

		w->bits[m / 8] |= (uint8_t)(1u << (m % 8));
	}
}

/* One window: [days] time-time.  Days land in *days as a bitmask. */
static int wp_window(struct wparser *p, struct window *w)
{
	unsigned days = 0, start = 0, end = 0, len;
	int r, d0, d1;

	wp_skip_space(p);
	if (isalpha((unsigned char)p->s[p->pos])) {
		for (;;) {
			wp_skip_space(p);
			d0 = wp_day(p);
			if (d0 < 0)
				return wp_fail(p, "expected a day name (Mon..Sun)");
			d1 = d0;
			wp_skip_space(p);
			if (p->s[p->pos] == '-') {
				p->pos++;
				wp_skip_space(p);
				d1 = wp_day(p);
				if (d1 < 0)
					return wp_fail(p, "expected a day name after '-'");
			}
			for (int d = d0;; d = (d + 1) % 7) {
				days |= 1u << d;
				if (d == d1)
					break;
			}
			wp_skip_space(p);
			if (p->s[p->pos] != ',')
				break;
			p->pos++;
			wp_skip_space(p);
			if (!isalpha((unsigned char)p->s[p->pos]))
				return wp_fail(p, "expected a day name after ','");
		}
	} else {
		days = 0x7f;
	}
	r = wp_time(p, false, &start);
	if (r < 0)
		return r;
	wp_skip_space(p);
	if (p->s[p->pos] != '-')
		return wp_fail(p, "expected '-' between start and end time");
	p->pos++;
	r = wp_time(p, true, &end);
	if (r < 0)
		return r;
	if (end == start)
		return wp_fail(p, "empty window (start equals end); use 00:00-24:00 for all day");
	len = end > start ? end - start : DAY_MINUTES - start + end;
	for (unsigned d = 0; d < 7; d++)
		if (days & (1u << d))
			set_range(w, d * DAY_MINUTES + start, len);
	return 0;
}

static void count_bits(struct window *w)
{
	w->inside_minutes = 0;
	for (size_t i = 0; i < sizeof(w->bits); i++)
		w->inside_minutes += (uint32_t)__builtin_popcount(w->bits[i]);
}

void window_always(struct window *ret)
{
	memset(ret->bits, 0xff, sizeof(ret->bits));
	ret->inside_minutes = WINDOW_MINUTES;
}

int window_parse(const char *spec, struct window *ret, char *err, size_t errlen)
{
	struct wparser p = {.s = spec, .err = err, .errlen = errlen};
	struct window w = {0};
	unsigned spans = 0;
	size_t n;
	int r;

	if (!spec)
		return wp_fail(&p, "no window given");
	n = strnlen(spec, WINDOW_SPEC_MAX + 1);
	if (n > WINDOW_SPEC_MAX) {
		p.pos = WINDOW_SPEC_MAX;
		return wp_fail(&p, "window spec longer than %d bytes", WINDOW_SPEC_MAX);
	}
	wp_skip_space(&p);
	if (!spec[p.pos])
		return wp_fail(&p, "empty window spec (use \"always\")");
	for (const char *kw = "always", *kw2 = "never"; kw; kw = kw2, kw2 = NULL) {
		size_t k = strlen(kw), save = p.pos;

		if (strncasecmp(spec + p.pos, kw, k) == 0 &&
		    !isalpha((unsigned char)spec[p.pos + k])) {
			p.pos += k;
			wp_skip_space(&p);
			if (spec[p.pos])
				return wp_fail(&p, "nothing may follow \"%s\"", kw);
			if (kw[0] == 'a')
				window_always(&w);
			count_bits(&w);
			*ret = w;
			return 0;
		}
		p.pos = save;
	}
	for (;;) {
		if (++spans > WINDOW_MAX_SPANS)
			return wp_fail(&p, "more than %d windows", WINDOW_MAX_SPANS);
		r = wp_window(&p, &w);
		if (r < 0)
			return r;
		wp_skip_space(&p);
		if (!spec[p.pos])
			break;
		if (spec[p.pos] != ',' && spec[p.pos] != ';')
			return wp_fail(&p, "unexpected '%c' (windows are separated by ',' or ';')",
				       isprint((unsigned char)spec[p.pos]) ? spec[p.pos] : '?');
		p.pos++;
		wp_skip_space(&p);
		if (!spec[p.pos])
			return wp_fail(&p, "expected a window after the separator");
	}
	count_bits(&w);
	*ret = w;
	return 0;
}

bool window_inside_minute(const struct window *w, unsigned m)
{
	m %= WINDOW_MINUTES;
	return w->bits[m / 8] & (1u << (m % 8));
}

static unsigned tm_minute(const struct tm *tm)
{
	unsigned wd = (unsigned)(tm->tm_wday + 6) % 7; /* Monday = 0 */

	return wd * DAY_MINUTES + (unsigned)tm->tm_hour * 60 + (unsigned)tm->tm_min;
}

bool window_inside_tm(const struct window *w, const struct tm *tm)
{
	return window_inside_minute(w, tm_minute(tm));
}

bool window_inside(const struct window *w, time_t now)
{
	struct tm tm;

	if (w->inside_minutes == 0 || w->inside_minutes == WINDOW_MINUTES)
		return w->inside_minutes != 0;
	if (!localtime_r(&now, &tm))
		return false;
	return window_inside_tm(w, &tm);
}

bool window_inside_offset(const struct window *w, time_t now, int32_t utc_offset)
{
	time_t t = now + utc_offset;
	struct tm tm;

	if (w->inside_minutes == 0 || w->inside_minutes == WINDOW_MINUTES)
		return w->inside_minutes != 0;
	if (!gmtime_r(&t, &tm))
		return false;
	return window_inside_tm(w, &tm);
}

/* Minutes from minute m until the bitmap differs from bit m (1..WINDOW_MINUTES-1). */
static unsigned minutes_to_change(const struct window *w, unsigned m)
{
	bool cur = window_inside_minute(w, m);
	unsigned k = 1;

	while (window_inside_minute(w, m + k) == cur)
		k++;
	return k;
}

int window_next_change(const struct window *w, time_t now, time_t *ret)
{
	struct tm tm;
	time_t t;

	if (w->inside_minutes == 0 || w->inside_minutes == WINDOW_MINUTES)
		return -ENOENT;
	if (!localtime_r(&now, &tm))
		return -EOVERFLOW;
	tm.tm_min += (int)minutes_to_change(w, tm_minute(&tm));
	tm.tm_sec = 0;
	tm.tm_isdst = -1;
	t = mktime(&tm);
	if (t == (time_t)-1)
		return -EOVERFLOW;
	/* A DST jump can land the wall-clock target at or before now; never go backwards. */
	if (t <= now)
		t = now + 60 - (now % 60);
	*ret = t;
	return 0;
}

int window_next_change_offset(const struct window *w, time_t now, int32_t utc_offset, time_t *ret)
{
	time_t local = now + utc_offset;
	struct tm tm;

	if (w->inside_minutes == 0 || w->inside_minutes == WINDOW_MINUTES)
		return -ENOENT;
	if (!gmtime_r(&local, &tm))
		return -EOVERFLOW;
	*ret = now - tm.tm_sec + (time_t)minutes_to_change(w, tm_minute(&tm)) * 60;
	return 0;
}
