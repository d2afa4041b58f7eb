/* errmsg.c -- the reason beside a negative errno, printed into the caller's buffer. */
#include <aicn/errmsg.h>

#include <stdarg.h>
#include <stdio.h>

int errmsg(char *buf, size_t len, int code, const char *fmt, ...)
{
	va_list ap;

	if (buf && len) {
		va_start(ap, fmt);
		vsnprintf(buf, len, fmt, ap);
		va_end(ap);
	}
	return code;
}
