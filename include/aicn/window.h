/* window.h -- provider availability windows ("Mon-Fri 22:00-07:00"): parse, inside(now), next change. */
#ifndef AICN_WINDOW_H
#define AICN_WINDOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/*
 * Grammar (case-insensitive, spaces between tokens optional where unambiguous):
 *
 *   spec    := "always" | "never" | window ( ("," | ";") window )*
 *   window  := [ days ] time "-" time
 *   days    := dayitem ( "," dayitem )*
 *   dayitem := day [ "-" day ]                (ranges wrap: Fri-Mon is Fri,Sat,Sun,Mon)
 *   day     := mon|tue|wed|thu|fri|sat|sun  or the full English name
 *   time    := H:MM or HH:MM, 00:00 .. 23:59; the end time may also be 24:00
 *
 * A window without days applies every day.  A span whose end is not after its
 * start crosses midnight and belongs to the day it starts on: "Mon-Fri 22:00-07:00"
 * covers Friday 23:00 and Saturday 06:59, but not Monday 03:00 (that belongs to Sunday).
 * Times are local wall-clock minutes; the end minute is excluded.
 */

#define WINDOW_MINUTES (7 * 24 * 60) /* minutes in a week, Monday 00:00 first */
#define WINDOW_SPEC_MAX 512	     /* longest accepted spec, bytes */
#define WINDOW_MAX_SPANS 32	     /* most windows in one spec */

struct window {
	uint8_t bits[WINDOW_MINUTES / 8]; /* bit m set: minute m of the week is inside */
	uint32_t inside_minutes; /* number of set bits (0 = never, WINDOW_MINUTES = always) */
};

/*
 * Parse SPEC into *ret.  On error returns -EINVAL and writes a one-line reason
 * with the 1-based column into err (if errlen > 0), e.g.
 * "column 9: expected a time like 22:00".  *ret is written only on success.
 */
int window_parse(const char *spec, struct window *ret, char *err, size_t errlen);

/* The window that is always open. */
void window_always(struct window *ret);

/* Whether minute-of-week m (0 = Monday 00:00) is inside. */
bool window_inside_minute(const struct window *w, unsigned m);

/* Whether wall-clock time tm (tm_wday, tm_hour, tm_min) is inside. */
bool window_inside_tm(const struct window *w, const struct tm *tm);

/* Inside at NOW in this process's local time zone (localtime_r). */
bool window_inside(const struct window *w, time_t now);

/* Inside at NOW for a host whose local time is UTC + utc_offset seconds. */
bool window_inside_offset(const struct window *w, time_t now, int32_t utc_offset);

/*
 * The first time after NOW at which inside() changes, in local time (DST aware,
 * through mktime) or for a fixed UTC offset.  -ENOENT if it never changes
 * (always or never open).
 */
int window_next_change(const struct window *w, time_t now, time_t *ret);
int window_next_change_offset(const struct window *w, time_t now, int32_t utc_offset, time_t *ret);

#endif /* AICN_WINDOW_H */
