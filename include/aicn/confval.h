/* confval.h -- strict parsing of config values (numbers, sizes, durations, booleans) shared by every config file. */
#ifndef AICN_CONFVAL_H
#define AICN_CONFVAL_H

#include <stdbool.h>
#include <stdint.h>

/*
 * Every parser takes the whole value: no sign, no spaces, no leading '+',
 * nothing after the number but the one suffix it names.  They return 0,
 * -EINVAL for text that is not such a value, or -ERANGE for one that is but
 * exceeds max (or 64 bits); *ret is written only on success.
 */

/* Decimal digits only: "0", "42". */
int confval_uint(const char *s, uint64_t max, uint64_t *ret);
/* Bytes with an optional binary suffix: 4096, 512K, 512M, 10G, 1T, or KiB, MiB, GiB, TiB. */
int confval_size(const char *s, uint64_t max, uint64_t *ret);
/* Seconds with an optional unit: 90, 90s, 15m, 12h, 7d. */
int confval_duration(const char *s, int64_t max, int64_t *ret);
/* "I" or "I.F" with at most digits (<= 9) fraction digits, scaled by 10^digits: "1.5" -> 1500 for 3. */
int confval_fixed(const char *s, unsigned digits, uint64_t max_scaled, uint64_t *ret);
/* on/off, yes/no, true/false, 1/0. */
int confval_bool(const char *s, bool *ret);

#endif /* AICN_CONFVAL_H */
