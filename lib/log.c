/* log.c -- one formatted line per message, written with a single write(2) so threads don't interleave. */
#include <aicn/log.h>

#include <stdarg.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#define LOG_LINE_MAX 2048

static const char *log_ident = "aicn";
static _Atomic int log_level = LOG_LVL_INFO;
static _Atomic int log_fd = STDERR_FILENO;
static int log_journal;

static const char *const level_names[] = {
	[LOG_LVL_ERR] = "error",
	[LOG_LVL_WARN] = "warning",
	[LOG_LVL_INFO] = "info",
	[LOG_LVL_DEBUG] = "debug",
};

int log_level_parse(const char *s, enum log_level *ret_level)
{
	static const struct {
		const char *name;
		enum log_level level;
	} map[] = {
		{"err", LOG_LVL_ERR},	   {"error", LOG_LVL_ERR}, {"warn", LOG_LVL_WARN},
		{"warning", LOG_LVL_WARN}, {"info", LOG_LVL_INFO}, {"debug", LOG_LVL_DEBUG},
	};

	if (!s)
		return -EINVAL;
	for (size_t i = 0; i < ARRAY_SIZE(map); i++) {
		if (strcmp(s, map[i].name) == 0) {
			*ret_level = map[i].level;
			return 0;
		}
	}
	return -EINVAL;
}

void log_setup(const char *ident)
{
	enum log_level level;
	const char *slash;

	if (ident) {
		slash = strrchr(ident, '/');
		log_ident = slash ? slash + 1 : ident;
	}
	if (log_level_parse(getenv("AICN_LOG_LEVEL"), &level) == 0)
		log_level = level;
	log_journal = getenv("JOURNAL_STREAM") != NULL;
}

void log_set_level(enum log_level level)
{
	log_level = level;
}

enum log_level log_get_level(void)
{
	return log_level;
}

int log_set_fd(int fd)
{
	return atomic_exchange(&log_fd, fd);
}

static void log_vmsg(enum log_level level, int err, const char *fmt, va_list ap)
{
	char line[LOG_LINE_MAX];
	size_t n = 0, cap = sizeof(line) - 1; /* room for the newline */
	int r;

	if ((int)level > log_level)
		return;
	if (log_journal) {
		r = snprintf(line, cap, "<%d>", (int)level);
	} else {
		struct timespec ts;
		struct tm tm;

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		r = snprintf(line, cap,
			     "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s[%d]: %s: ", tm.tm_year + 1900,
			     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
			     ts.tv_nsec / 1000000, log_ident, (int)getpid(), level_names[level]);
	}
	n = r > 0 ? MIN((size_t)r, cap) : 0;
	r = vsnprintf(line + n, cap - n, fmt, ap);
	n = r > 0 ? MIN(n + (size_t)r, cap) : n;
	if (err) {
		r = snprintf(line + n, cap - n, ": %s", strerror(err < 0 ? -err : err));
		n = r > 0 ? MIN(n + (size_t)r, cap) : n;
	}
	/* A message never spans lines: control characters from outside become '?'. */
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)line[i] < 0x20 && line[i] != '\t')
			line[i] = '?';
	line[n++] = '\n';
	if (write(log_fd, line, n) < 0) {
		/* nowhere left to report it */
	}
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, 0, fmt, ap);
	va_end(ap);
}

int log_errno(enum log_level level, int err, const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	log_vmsg(level, err, fmt, ap);
	va_end(ap);
	errno = saved;
	return err;
}
