/* errmsg.h -- the reason beside a negative errno: printed into the caller's buffer, the code returned. */
#ifndef AICN_ERRMSG_H
#define AICN_ERRMSG_H

#include <aicn/compiler.h>

#include <stddef.h>

/*
 * Print the reason into buf (len bytes, truncated; nothing when buf is NULL or len 0)
 * and return code, so a parser can `return errmsg(err, errlen, -EINVAL, "...", ...)`.
 */
int errmsg(char *buf, size_t len, int code, const char *fmt, ...) _printf_(4, 5);

#endif /* AICN_ERRMSG_H */
