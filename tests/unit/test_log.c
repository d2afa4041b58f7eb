/* test_log.c -- the logger: levels, filtering, one line per message, errno suffix, no injected newlines. */
#include <aicn/compiler.h>
#include <aicn/log.h>

#include "harness.h"

#include <fcntl.h>

/* Log through a pipe and return what came out (static buffer). */
static const char *capture(void (*emit)(void))
{
	static char buf[4096];
	int p[2], old;
	ssize_t n;

	if (pipe2(p, O_CLOEXEC) < 0)
		return NULL;
	old = log_set_fd(p[1]);
	emit();
	log_set_fd(old);
	close(p[1]);
	n = read(p[0], buf, sizeof(buf) - 1);
	close(p[0]);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static void emit_levels(void)
{
	log_set_level(LOG_LVL_WARN);
	log_debug("hidden-debug");
	log_info("hidden-info");
	log_warn("shown-warn %d", 42);
	log_err("shown-err");
	log_set_level(LOG_LVL_INFO);
}

static void test_level_filter(void)
{
	const char *out = capture(emit_levels);

	CHECK(out);
	CHECK(!strstr(out, "hidden"));
	CHECK(strstr(out, "warning: shown-warn 42\n"));
	CHECK(strstr(out, "error: shown-err\n"));
	CHECK(strstr(out, "test_log["));
}

static void emit_errno(void)
{
	int r = log_errno(LOG_LVL_ERR, -ENOENT, "open %s", "/nope");

	log_info("returned %d", r);
}

static void test_errno_suffix(void)
{
	const char *out = capture(emit_errno);

	CHECK(strstr(out, "open /nope: No such file or directory\n"));
	CHECK(strstr(out, "returned -2\n"));
}

static void emit_newline(void)
{
	log_info("line1\nline2\rend");
}

static void test_no_line_injection(void)
{
	const char *out = capture(emit_newline);

	CHECK(strstr(out, "line1?line2?end\n"));
	CHECK_EQ(strchr(out, '\n') - out, (long)strlen(out) - 1);
}

static void emit_long(void)
{
	static char big[8192];

	memset(big, 'x', sizeof(big) - 1);
	log_info("%s", big);
}

static void test_truncates_long_lines(void)
{
	const char *out = capture(emit_long);
	size_t len = strlen(out);

	CHECK(len > 1000 && len <= 2048);
	CHECK_EQ(out[len - 1], '\n');
}

static void test_level_parse(void)
{
	enum log_level l;

	CHECK_EQ(log_level_parse("debug", &l), 0);
	CHECK_EQ(l, LOG_LVL_DEBUG);
	CHECK_EQ(log_level_parse("err", &l), 0);
	CHECK_EQ(l, LOG_LVL_ERR);
	CHECK_EQ(log_level_parse("loud", &l), -EINVAL);
	CHECK_EQ(log_level_parse(NULL, &l), -EINVAL);
}

static void emit_journal(void)
{
	setenv("JOURNAL_STREAM", "8:1234", 1);
	log_setup("jtest");
	log_warn("to-journal");
	unsetenv("JOURNAL_STREAM");
	log_setup("test_log");
}

static void test_journal_prefix(void)
{
	const char *out = capture(emit_journal);

	CHECK_STREQ(out, "<4>to-journal\n");
}

int main(int argc _unused_, char **argv)
{
	static const struct test_case tests[] = {
		TEST(test_level_filter),
		TEST(test_errno_suffix),
		TEST(test_no_line_injection),
		TEST(test_truncates_long_lines),
		TEST(test_level_parse),
		TEST(test_journal_prefix),
		{0},
	};

	unsetenv("AICN_LOG_LEVEL");
	log_setup(argv[0]);
	return harness_run(tests);
}
