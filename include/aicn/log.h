/* log.h -- the daemons' and tools' logger: one line per message to stderr (journald aware). */
#ifndef AICN_LOG_H
#define AICN_LOG_H

#include <aicn/compiler.h>

enum log_level {
	LOG_LVL_ERR = 3, /* syslog priority numbers, so journald can read them */
	LOG_LVL_WARN = 4,
	LOG_LVL_INFO = 6,
	LOG_LVL_DEBUG = 7,
};

/*
 * Set the program name and read AICN_LOG_LEVEL (err|warn|info|debug).  Under
 * journald (JOURNAL_STREAM set) lines carry a "<N>" priority prefix instead of a
 * timestamp.  Only mains call this; libraries return error codes instead of logging.
 */
void log_setup(const char *ident);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parse "err", "warn", "info" or "debug"; -EINVAL otherwise. */
int log_level_parse(const char *s, enum log_level *ret_level);
/* Send lines to fd instead of stderr (tests); returns the previous fd. */
int log_set_fd(int fd);

void log_msg(enum log_level level, const char *fmt, ...) _printf_(2, 3);
/* Log with ": strerror(-err)" appended; returns err (negative errno) for `return log_errno(...)`. */
int log_errno(enum log_level level, int err, const char *fmt, ...) _printf_(3, 4);

#define log_err(...) log_msg(LOG_LVL_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

#endif /* AICN_LOG_H */
