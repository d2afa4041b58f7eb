/* test_confval.c -- strict config value parsing: limits, suffixes, overflow, junk, signs and spaces refused. */
#include <aicn/confval.h>

#include "harness.h"

#include <errno.h>
#include <stdint.h>

static void uints(void)
{
	uint64_t v = 7;

	CHECK(confval_uint("0", 10, &v) == 0 && v == 0);
	CHECK(confval_uint("10", 10, &v) == 0 && v == 10); /* max itself */
	CHECK(confval_uint("11", 10, &v) == -ERANGE && v == 10);
	CHECK(confval_uint("18446744073709551615", UINT64_MAX, &v) == 0 && v == UINT64_MAX);
	CHECK(confval_uint("18446744073709551616", UINT64_MAX, &v) == -ERANGE);
	CHECK(confval_uint("99999999999999999999999", UINT64_MAX, &v) == -ERANGE);
	CHECK(v == UINT64_MAX); /* untouched by the failures */
	CHECK(confval_uint("", 10, &v) == -EINVAL);
	CHECK(confval_uint("-1", 10, &v) == -EINVAL);
	CHECK(confval_uint("+1", 10, &v) == -EINVAL);
	CHECK(confval_uint(" 1", 10, &v) == -EINVAL);
	CHECK(confval_uint("1 ", 10, &v) == -EINVAL);
	CHECK(confval_uint("1x", 10, &v) == -EINVAL);
	CHECK(confval_uint("0x1", 10, &v) == -EINVAL);
	CHECK(confval_uint("1.0", 10, &v) == -EINVAL);
}

static void sizes(void)
{
	uint64_t v = 0;

	CHECK(confval_size("4096", UINT64_MAX, &v) == 0 && v == 4096);
	CHECK(confval_size("512K", UINT64_MAX, &v) == 0 && v == 512ULL << 10);
	CHECK(confval_size("512KiB", UINT64_MAX, &v) == 0 && v == 512ULL << 10);
	CHECK(confval_size("16M", UINT64_MAX, &v) == 0 && v == 16ULL << 20);
	CHECK(confval_size("16MiB", UINT64_MAX, &v) == 0 && v == 16ULL << 20);
	CHECK(confval_size("10G", UINT64_MAX, &v) == 0 && v == 10ULL << 30);
	CHECK(confval_size("2GiB", UINT64_MAX, &v) == 0 && v == 2ULL << 30);
	CHECK(confval_size("1T", UINT64_MAX, &v) == 0 && v == 1ULL << 40);
	CHECK(confval_size("1TiB", UINT64_MAX, &v) == 0 && v == 1ULL << 40);
	CHECK(confval_size("16777215T", UINT64_MAX, &v) == 0 && v == 16777215ULL << 40);
	CHECK(confval_size("16777216T", UINT64_MAX, &v) == -ERANGE); /* 2^64: wraps */
	CHECK(confval_size("1G", (1ULL << 30) - 1, &v) == -ERANGE);  /* over max after scaling */
	CHECK(confval_size("1G", 1ULL << 30, &v) == 0 && v == 1ULL << 30);
	CHECK(confval_size("", UINT64_MAX, &v) == -EINVAL);
	CHECK(confval_size("M", UINT64_MAX, &v) == -EINVAL);
	CHECK(confval_size("1m", UINT64_MAX, &v) == -EINVAL); /* binary units are upper case */
	CHECK(confval_size("1MB", UINT64_MAX, &v) == -EINVAL);
	CHECK(confval_size("1 M", UINT64_MAX, &v) == -EINVAL);
	CHECK(confval_size("-1M", UINT64_MAX, &v) == -EINVAL);
	CHECK(confval_size("1.5G", UINT64_MAX, &v) == -EINVAL);
	CHECK(v == 1ULL << 30);
}

static void durations(void)
{
	int64_t d = 0;

	CHECK(confval_duration("90", 86400, &d) == 0 && d == 90);
	CHECK(confval_duration("90s", 86400, &d) == 0 && d == 90);
	CHECK(confval_duration("15m", 86400, &d) == 0 && d == 900);
	CHECK(confval_duration("12h", 86400, &d) == 0 && d == 43200);
	CHECK(confval_duration("1d", 86400, &d) == 0 && d == 86400);
	CHECK(confval_duration("2d", 86400, &d) == -ERANGE);
	CHECK(confval_duration("86401", 86400, &d) == -ERANGE);
	CHECK(confval_duration("1441m", 86400, &d) == -ERANGE);
	CHECK(confval_duration("106751991167300d", INT64_MAX, &d) == 0);
	CHECK(confval_duration("106751991167301d", INT64_MAX, &d) == -ERANGE); /* would overflow */
	CHECK(confval_duration("99999999999999999999s", INT64_MAX, &d) == -ERANGE);
	CHECK(confval_duration("", 86400, &d) == -EINVAL);
	CHECK(confval_duration("s", 86400, &d) == -EINVAL);
	CHECK(confval_duration("1w", 86400, &d) == -EINVAL);
	CHECK(confval_duration("1ss", 86400, &d) == -EINVAL);
	CHECK(confval_duration("1 s", 86400, &d) == -EINVAL);
	CHECK(confval_duration("-1s", 86400, &d) == -EINVAL);
	CHECK(confval_duration("1h30m", 86400, &d) == -EINVAL);
}

static void fixed(void)
{
	uint64_t v = 0;

	CHECK(confval_fixed("2", 3, UINT32_MAX, &v) == 0 && v == 2000);
	CHECK(confval_fixed("1.5", 3, UINT32_MAX, &v) == 0 && v == 1500);
	CHECK(confval_fixed("0.001", 3, UINT32_MAX, &v) == 0 && v == 1);
	CHECK(confval_fixed("1", 6, 1000000, &v) == 0 && v == 1000000);
	CHECK(confval_fixed("1.000001", 6, 1000000, &v) == -ERANGE);
	CHECK(confval_fixed("0.0001", 3, UINT32_MAX, &v) == -EINVAL); /* too many decimals */
	CHECK(confval_fixed("1.", 3, UINT32_MAX, &v) == -EINVAL);
	CHECK(confval_fixed(".5", 3, UINT32_MAX, &v) == -EINVAL);
	CHECK(confval_fixed("-1", 3, UINT32_MAX, &v) == -EINVAL);
	CHECK(confval_fixed("1.5x", 3, UINT32_MAX, &v) == -EINVAL);
	CHECK(confval_fixed("99999999999999999999", 3, UINT64_MAX, &v) == -ERANGE);
	CHECK(confval_fixed("18446744073709552", 3, UINT64_MAX, &v) == -ERANGE); /* *1000 wraps */
	CHECK(v == 1000000);
}

static void bools(void)
{
	static const char *const yes[] = {"on", "yes", "true", "1"};
	static const char *const no[] = {"off", "no", "false", "0"};
	static const char *const bad[] = {"", "On", "ON", "y", "2", " on", "on ", "offf"};
	bool b;

	for (size_t i = 0; i < 4; i++) {
		b = false;
		CHECK(confval_bool(yes[i], &b) == 0 && b);
		CHECK(confval_bool(no[i], &b) == 0 && !b);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		b = true;
		CHECK(confval_bool(bad[i], &b) == -EINVAL && b);
	}
}

int main(void)
{
	static const struct test_case cases[] = {
		TEST(uints), TEST(sizes), TEST(durations), TEST(fixed), TEST(bools), {NULL, NULL},
	};

	return harness_run(cases);
}
