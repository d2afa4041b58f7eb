/* test_cli_opt.c -- aicnctl's option parser and value syntaxes: sizes, durations, amounts, times, errors. */
#include "harness.h"

#include "../../cli/opt.h"

#include <errno.h>
#include <stdint.h>

static void test_sizes(void)
{
	int64_t v;

	CHECK_EQ(opt_parse_size("512M", &v), 0);
	CHECK_EQ(v, 512LL << 20);
	CHECK_EQ(opt_parse_size("2g", &v), 0);
	CHECK_EQ(v, 2LL << 30);
	CHECK_EQ(opt_parse_size("1.5GiB", &v), 0);
	CHECK_EQ(v, 3LL << 29);
	CHECK_EQ(opt_parse_size("4096", &v), 0);
	CHECK_EQ(v, 4096);
	CHECK_EQ(opt_parse_size("64k", &v), 0);
	CHECK_EQ(v, 65536);
	CHECK_EQ(opt_parse_size("5X", &v), -EINVAL);
	CHECK_EQ(opt_parse_size("", &v), -EINVAL);
	CHECK_EQ(opt_parse_size("M", &v), -EINVAL);
	CHECK_EQ(opt_parse_size("-1M", &v), -EINVAL);
	CHECK_EQ(opt_parse_size("1.234G", &v), -ERANGE);
	CHECK_EQ(opt_parse_size("99999999999999999T", &v), -ERANGE);
}

static void test_durations(void)
{
	int64_t v;

	CHECK_EQ(opt_parse_duration("90", &v), 0);
	CHECK_EQ(v, 90);
	CHECK_EQ(opt_parse_duration("90s", &v), 0);
	CHECK_EQ(v, 90);
	CHECK_EQ(opt_parse_duration("15m", &v), 0);
	CHECK_EQ(v, 900);
	CHECK_EQ(opt_parse_duration("1h30m", &v), 0);
	CHECK_EQ(v, 5400);
	CHECK_EQ(opt_parse_duration("2d", &v), 0);
	CHECK_EQ(v, 172800);
	CHECK_EQ(opt_parse_duration("1h30", &v), -EINVAL);
	CHECK_EQ(opt_parse_duration("h", &v), -EINVAL);
	CHECK_EQ(opt_parse_duration("10x", &v), -EINVAL);
	CHECK_EQ(opt_parse_duration("", &v), -EINVAL);
	CHECK_EQ(opt_parse_duration("99999999999999999999d", &v), -ERANGE);
}

static void test_amounts(void)
{
	char buf[AMOUNT_STR_LEN];
	int64_t v;

	CHECK_EQ(opt_parse_amount("1.5", &v), 0);
	CHECK_EQ(v, 1500000000);
	CHECK_EQ(opt_parse_amount("0.000000001", &v), 0);
	CHECK_EQ(v, 1);
	CHECK_EQ(opt_parse_amount("42", &v), 0);
	CHECK_EQ(v, 42000000000LL);
	CHECK_EQ(opt_parse_amount(".5", &v), 0);
	CHECK_EQ(v, 500000000);
	CHECK_EQ(opt_parse_amount("0.0000000001", &v), -ERANGE);
	CHECK_EQ(opt_parse_amount("1,5", &v), -EINVAL);
	CHECK_EQ(opt_parse_amount("1.2.3", &v), -EINVAL);
	CHECK_EQ(opt_parse_amount("", &v), -EINVAL);
	CHECK_EQ(opt_parse_amount("99999999999", &v), -ERANGE); /* beyond int64 base units */
	CHECK_STREQ(amount_format(1500000000, buf), "1.5");
	CHECK_STREQ(amount_format(1, buf), "0.000000001");
	CHECK_STREQ(amount_format(0, buf), "0");
	CHECK_STREQ(amount_format(-2000000000, buf), "-2");
	CHECK_STREQ(amount_format(857291666, buf), "0.857291666");
	CHECK_STREQ(amount_format(INT64_MIN, buf), "-9223372036.854775808");
	/* round trip */
	for (int64_t x = 1; x < INT64_MAX / 7; x = x * 7 + 3) {
		CHECK_EQ(opt_parse_amount(amount_format(x, buf), &v), 0);
		CHECK_EQ(v, x);
	}
}

static void test_times(void)
{
	int64_t v;

	CHECK_EQ(opt_parse_time("+2h", 1000, &v), 0);
	CHECK_EQ(v, 1000 + 7200);
	CHECK_EQ(opt_parse_time("1764158400", 0, &v), 0);
	CHECK_EQ(v, 1764158400);
	CHECK_EQ(opt_parse_time("2026-11-26T12:00Z", 0, &v), 0);
	CHECK_EQ(v, 1795694400);
	CHECK_EQ(opt_parse_time("2026-11-26T12:00:30Z", 0, &v), 0);
	CHECK_EQ(v, 1795694430);
	CHECK_EQ(opt_parse_time("2026-11-26 12:00", 0, &v), -EINVAL);
	CHECK_EQ(opt_parse_time("tomorrow", 0, &v), -EINVAL);
}

static int64_t t_cores = 1, t_mem = 0, t_price = -1, t_hours = -1;
static const char *t_name;
static int t_flag;
static struct opt_list t_list;
static const struct opt t_opts[] = {
	{"cores", 'c', OPT_INT, &t_cores, "N", "cores", 1, 64},
	{"memory", 'm', OPT_SIZE, &t_mem, "SIZE", "memory", 1 << 20, 1LL << 40},
	{"max-price", 'p', OPT_AMOUNT, &t_price, "AICN", "price", 0, 1000000000000LL},
	{"max-cpu-hours", 0, OPT_HOURS, &t_hours, "H", "hours", 1, INT64_MAX},
	{"name", 'n', OPT_STR, &t_name, "NAME", "a name", 0, 0},
	{"flag", 'f', OPT_FLAG, &t_flag, NULL, "a flag", 0, 0},
	{"env", 'e', OPT_LIST, &t_list, "K=V", "repeatable", 0, 0},
	{0},
};
static const struct opt_cmd t_cmd = {
	"aicnctl t", "IMAGE [OPTIONS] -- CMD", "test", t_opts, NULL, 1, 1, 1, NULL};

static int parse(struct opt_args *a, int argc, char **argv)
{
	t_cores = 1;
	t_mem = 0;
	t_price = -1;
	t_hours = -1;
	t_name = NULL;
	t_flag = 0;
	opt_list_free(&t_list);
	return opt_parse(&t_cmd, argc, argv, a);
}

static void test_parse_ok(void)
{
	char *argv[] = {"t",   "--cores", "4",		"img", "-m512M",    "--max-price=2.5",
			"-e",  "A=1",	  "--env",	"B=2", "-f",	    "--max-cpu-hours",
			"0.5", "-n",	  "-dash-name", "--",  "/bin/echo", "--cores",
			NULL};
	struct opt_args a;

	CHECK_EQ(parse(&a, 18, argv), 0);
	CHECK_EQ(t_cores, 4);
	CHECK_EQ(t_mem, 512LL << 20);
	CHECK_EQ(t_price, 2500000000LL);
	CHECK_EQ(t_hours, 1800);
	CHECK_EQ(t_flag, 1);
	CHECK_STREQ(t_name, "-dash-name");
	CHECK_EQ(t_list.n, 2);
	CHECK_STREQ(t_list.v[1], "B=2");
	CHECK_EQ(a.npos, 1);
	CHECK_STREQ(a.pos[0], "img");
	CHECK_EQ(a.nrest, 2);
	CHECK_STREQ(a.rest[1], "--cores"); /* after "--" nothing is an option */
	opt_args_done(&a);
}

static void test_parse_errors(void)
{
	struct opt_args a;
	char *bad_int[] = {"t", "img", "--cores", "abc", NULL};
	char *range[] = {"t", "img", "--cores", "65", NULL};
	char *unknown[] = {"t", "img", "--nope", NULL};
	char *missing_val[] = {"t", "img", "--cores", NULL};
	char *flag_val[] = {"t", "img", "--flag=1", NULL};
	char *no_pos[] = {"t", "--cores", "2", NULL};
	char *two_pos[] = {"t", "a", "b", NULL};
	char *amount[] = {"t", "img", "-p", "1.0000000001", NULL};
	char *shortu[] = {"t", "img", "-z", NULL};
	char *help[] = {"t", "img", "--help", NULL};
	FILE *saved = stdout;

	CHECK_EQ(parse(&a, 4, bad_int), -EINVAL);
	CHECK_EQ(parse(&a, 4, range), -EINVAL);
	CHECK_EQ(parse(&a, 3, unknown), -EINVAL);
	CHECK_EQ(parse(&a, 3, missing_val), -EINVAL);
	CHECK_EQ(parse(&a, 3, flag_val), -EINVAL);
	CHECK_EQ(parse(&a, 3, no_pos), -EINVAL);
	CHECK_EQ(parse(&a, 3, two_pos), -EINVAL);
	CHECK_EQ(parse(&a, 4, amount), -EINVAL);
	CHECK_EQ(parse(&a, 3, shortu), -EINVAL);
	stdout = fopen("/dev/null", "w");
	CHECK(stdout != NULL);
	CHECK_EQ(parse(&a, 3, help), OPT_HELP);
	fclose(stdout);
	stdout = saved;
	opt_list_free(&t_list);
}

int main(void)
{
	static const struct test_case cases[] = {
		TEST(test_sizes),    TEST(test_durations),    TEST(test_amounts), TEST(test_times),
		TEST(test_parse_ok), TEST(test_parse_errors), {NULL, NULL},
	};

	return harness_run(cases);
}
