/* test_window.c -- availability windows: grammar, clear errors, inside() and next change across midnight and weeks. */
#include <aicn/window.h>

#include "harness.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Unix time of a UTC wall-clock moment; 2024-01-01 was a Monday. */
static time_t at(int mday, int hour, int min)
{
	struct tm tm = {
		.tm_year = 124, .tm_mon = 0, .tm_mday = mday, .tm_hour = hour, .tm_min = min};

	return timegm(&tm);
}

static void test_weeknights(void)
{
	struct window w;
	char err[128];

	CHECK_EQ(window_parse("Mon-Fri 22:00-07:00", &w, err, sizeof(err)), 0);
	CHECK_EQ(w.inside_minutes, 5 * 9 * 60);
	CHECK(window_inside_offset(&w, at(1, 22, 0), 0));   /* Mon 22:00 */
	CHECK(!window_inside_offset(&w, at(1, 21, 59), 0)); /* Mon 21:59 */
	CHECK(window_inside_offset(&w, at(2, 6, 59), 0));   /* Tue 06:59 */
	CHECK(!window_inside_offset(&w, at(2, 7, 0), 0));   /* Tue 07:00: end excluded */
	CHECK(window_inside_offset(&w, at(6, 6, 0), 0));    /* Sat 06:00 belongs to Fri night */
	CHECK(!window_inside_offset(&w, at(6, 23, 0), 0));  /* Sat 23:00 */
	CHECK(!window_inside_offset(&w, at(1, 3, 0), 0));   /* Mon 03:00 belongs to Sunday */
	/* The same instant seen from UTC+2 is Mon 00:00 local, still Sunday's night: outside. */
	CHECK(!window_inside_offset(&w, at(7, 22, 0), 2 * 3600));
	/* From UTC-3, Mon 01:00 UTC is Sun 22:00 local: outside too. */
	CHECK(!window_inside_offset(&w, at(1, 1, 0), -3 * 3600));
	/* From UTC+1, Mon 21:30 UTC is Mon 22:30 local: inside. */
	CHECK(window_inside_offset(&w, at(1, 21, 30), 3600));
}

static void test_next_change(void)
{
	struct window w;
	time_t t;

	CHECK_EQ(window_parse("Mon-Fri 22:00-07:00", &w, NULL, 0), 0);
	CHECK_EQ(window_next_change_offset(&w, at(1, 12, 30) + 17, 0, &t), 0);
	CHECK_EQ(t, at(1, 22, 0));
	CHECK_EQ(window_next_change_offset(&w, at(1, 22, 0), 0, &t), 0);
	CHECK_EQ(t, at(2, 7, 0));
	/* Friday night closes Saturday 07:00 and reopens Monday 22:00. */
	CHECK_EQ(window_next_change_offset(&w, at(6, 7, 0), 0, &t), 0);
	CHECK_EQ(t, at(8, 22, 0));
	/* With an offset the change is at local 22:00 = 20:00 UTC for UTC+2. */
	CHECK_EQ(window_next_change_offset(&w, at(1, 12, 0), 2 * 3600, &t), 0);
	CHECK_EQ(t, at(1, 20, 0));
	CHECK_EQ(window_parse("always", &w, NULL, 0), 0);
	CHECK_EQ(window_next_change_offset(&w, at(1, 0, 0), 0, &t), -ENOENT);
	CHECK(window_inside_offset(&w, at(3, 3, 3), 0));
}

static void test_local_time(void)
{
	struct window w;
	time_t t, now = at(3, 12, 0);

	/* Local-time variants agree with the offset ones under a fixed-offset zone. */
	setenv("TZ", "UTC0", 1);
	tzset();
	CHECK_EQ(window_parse("Wed 11:00-13:00", &w, NULL, 0), 0);
	CHECK(window_inside(&w, now));
	CHECK_EQ(window_next_change(&w, now, &t), 0);
	CHECK_EQ(t, at(3, 13, 0));
	setenv("TZ", "XYZ-5", 1); /* UTC+5 */
	tzset();
	CHECK(!window_inside(&w, now)); /* 17:00 local */
	CHECK_EQ(window_next_change(&w, now, &t), 0);
	CHECK_EQ(t, at(10, 6, 0)); /* next Wednesday 11:00 local */
	unsetenv("TZ");
	tzset();
}

static void test_grammar(void)
{
	struct window w, w2;

	CHECK_EQ(window_parse("  mon , wed-fri 9:00-17:30 ; Sat 00:00-24:00", &w, NULL, 0), 0);
	CHECK_EQ(w.inside_minutes, 4 * (8 * 60 + 30) + 24 * 60);
	CHECK(window_inside_offset(&w, at(3, 9, 0), 0));   /* Wed */
	CHECK(!window_inside_offset(&w, at(2, 10, 0), 0)); /* Tue */
	CHECK(window_inside_offset(&w, at(6, 23, 59), 0)); /* Sat */
	CHECK_EQ(window_parse("Monday-Sunday 00:00-24:00", &w2, NULL, 0), 0);
	CHECK_EQ(w2.inside_minutes, WINDOW_MINUTES);
	CHECK_EQ(window_parse("18:00-20:00, 06:00-08:00", &w2, NULL, 0), 0);
	CHECK_EQ(w2.inside_minutes, 7 * 4 * 60);
	/* Wrapping day range: Fri-Mon. */
	CHECK_EQ(window_parse("Fri-Mon 10:00-11:00", &w2, NULL, 0), 0);
	CHECK_EQ(w2.inside_minutes, 4 * 60);
	CHECK(window_inside_offset(&w2, at(7, 10, 30), 0));  /* Sun */
	CHECK(!window_inside_offset(&w2, at(2, 10, 30), 0)); /* Tue */
	/* Sunday night crosses into Monday, wrapping the week. */
	CHECK_EQ(window_parse("Sun 23:00-01:00", &w2, NULL, 0), 0);
	CHECK(window_inside_offset(&w2, at(1, 0, 30), 0));
	CHECK_EQ(window_parse("never", &w2, NULL, 0), 0);
	CHECK_EQ(w2.inside_minutes, 0);
	CHECK(!window_inside_offset(&w2, at(1, 0, 30), 0));
}

static void test_errors(void)
{
	static const struct {
		const char *spec, *want;
	} bad[] = {
		{"", "empty window spec"},
		{"Mon-Fri", "column 8: expected a time like 22:00"},
		{"Mon-Fry 22:00-07:00", "column 5: expected a day name after '-'"},
		{"Mon-Fri 25:00-07:00", "hour must be 00-23"},
		{"Mon-Fri 22:60-07:00", "minutes must be 00-59"},
		{"Mon-Fri 22:00-24:01", "hour must be 00-23 (or 24:00 as an end)"},
		{"Mon-Fri 24:00-07:00", "hour must be 00-23"},
		{"Mon-Fri 22:00 07:00", "expected '-' between start and end time"},
		{"Mon-Fri 22:00-22:00", "empty window"},
		{"Mon-Fri 22:00-07:00 x", "unexpected 'x'"},
		{"Mon-Fri 22:00-07:00,", "expected a window after the separator"},
		{"always sometimes", "nothing may follow \"always\""},
		{"Mon, 10:00-11:00", "expected a day name after ','"},
		{"Mon 1:5-2:00", "expected two digits of minutes"},
	};
	struct window w;
	char err[160];
	char long_spec[WINDOW_SPEC_MAX + 8];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (window_parse(bad[i].spec, &w, err, sizeof(err)) != -EINVAL ||
		    !strstr(err, bad[i].want)) {
			fprintf(stderr, "spec \"%s\": got \"%s\", want \"%s\"\n", bad[i].spec, err,
				bad[i].want);
			CHECK(0);
		}
	}
	memset(long_spec, 'a', sizeof(long_spec) - 1);
	long_spec[sizeof(long_spec) - 1] = '\0';
	CHECK_EQ(window_parse(long_spec, &w, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "longer than"));
	/* A tiny error buffer is still NUL-terminated and never overrun. */
	CHECK_EQ(window_parse("Mon-Fri", &w, err, 4), -EINVAL);
	CHECK_EQ(strlen(err), 3);
}

int main(void)
{
	static const struct test_case cases[] = {
		TEST(test_weeknights), TEST(test_next_change), TEST(test_local_time),
		TEST(test_grammar),    TEST(test_errors),      {NULL, NULL},
	};

	return harness_run(cases);
}
