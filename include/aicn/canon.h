/* canon.h -- canonical JSON: exact int64 integers, sorted keys, no whitespace, strict parsing. */
#ifndef AICN_CANON_H
#define AICN_CANON_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Canonical form (what we sign and hash, and put on the wire):
 *   - objects' keys sorted by their UTF-8 bytes (memcmp order), no duplicates;
 *   - no whitespace outside strings;
 *   - numbers are integers in int64 range, written as "-"? digits with no leading
 *     zeros and no "-0"; floats, exponents and fractions are refused;
 *   - strings are valid UTF-8; escaped are only '"', '\\' and control characters
 *     (\b \f \n \r \t short forms, others as \u00XX lowercase); everything else as is;
 *   - literals true, false, null.
 *
 * Numbers live in cJSON trees as cJSON_Raw nodes holding their decimal text, so
 * values beyond 2^53 (realtime nanoseconds) stay exact.  Build trees with
 * canon_add_i64() / canon_add_u64(), read them with canon_get_*().
 */

#define CANON_MAX_DEPTH_DEFAULT 32

/* Serialise a tree in canonical form; *ret is NUL-terminated, free() it. */
int canon_print(const cJSON *v, char **ret, size_t *ret_len);

/*
 * Strictly parse JSON text (not necessarily canonical): valid UTF-8, no duplicate
 * keys, nesting at most max_depth, integers only, nothing after the value.  On
 * error returns -EINVAL and, if ret_err is not NULL, a static reason.
 */
int canon_parse(const char *buf, size_t len, unsigned max_depth, cJSON **ret, const char **ret_err);

/* 1 when buf is exactly the canonical form of what it parses to, 0 if not, <0 on parse error. */
int canon_is_canonical(const char *buf, size_t len);

/* Number nodes (cJSON_Raw with decimal text). */
cJSON *canon_create_i64(int64_t v);
cJSON *canon_create_u64(uint64_t v);
/* Add to an object; -ENOMEM on failure. */
int canon_add_i64(cJSON *obj, const char *key, int64_t v);
int canon_add_u64(cJSON *obj, const char *key, uint64_t v);

/* Read an integer node (Raw decimal, or a cJSON number holding an exact integer). */
int canon_number_i64(const cJSON *item, int64_t *ret);
int canon_number_u64(const cJSON *item, uint64_t *ret);
/* Member lookups: -ENOENT when absent, -EINVAL when of the wrong type or range. */
int canon_get_i64(const cJSON *obj, const char *key, int64_t *ret);
int canon_get_u64(const cJSON *obj, const char *key, uint64_t *ret);
int canon_get_str(const cJSON *obj, const char *key, const char **ret);
int canon_get_bool(const cJSON *obj, const char *key, int *ret);

#endif /* AICN_CANON_H */
