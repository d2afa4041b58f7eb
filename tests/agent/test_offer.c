/* test_offer.c -- TASK_OFFER validation against hostile values, and the accept/reject rules (cap, windows, max_tasks). */
#include "../../agent/config.h"
#include "../../agent/offer.h"

#include <aicn/canon.h>
#include <aicn/compiler.h>

#include "harness.h"

#include <errno.h>
#include <string.h>

#define IMG "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define DIG "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define BASE                                                                                       \
	"\"task_id\":\"42\",\"image\":\"" IMG "\",\"cmd\":[\"sh\",\"-c\",\"true\"],"               \
	"\"cores\":1,\"mem_mb\":64,\"max_cpu_ns\":1000000000,\"price\":1000"

static char why[OFFER_REASON_MAX];

/* Parse an offer from JSON text; 0 or a negative errno (the reason in why). */
static int parse(const char *json, struct offer **ret)
{
	cJSON *root = NULL;
	int r;

	why[0] = '\0';
	*ret = NULL;
	r = canon_parse(json, strlen(json), 8, &root, NULL);
	if (r < 0)
		return r;
	r = offer_parse(root, why, sizeof(why), ret);
	cJSON_Delete(root);
	return r;
}

static int parse_free(const char *json)
{
	struct offer *o = NULL;
	int r = parse(json, &o);

	offer_free(o);
	return r;
}

static void test_full_offer(void)
{
	struct offer *o = NULL;

	CHECK_EQ(parse("{" BASE
		       ",\"env\":[\"A=1\",\"LONG_NAME_2=x=y\"],\"inputs\":[{\"digest\":\"" DIG
		       "\",\"path\":\"in/data.txt\",\"size\":22},{\"digest\":\"" DIG
		       "\",\"path\":\"in/b\",\"size\":3}],\"deadline_ms\":60000,\"replica\":2,"
		       "\"renter\":\"alice@x\",\"pow_bits\":12}",
		       &o),
		 0);
	CHECK_STREQ(o->task_id, "42");
	CHECK_STREQ(o->image, IMG);
	CHECK_EQ(o->n_cmd, 3);
	CHECK_STREQ(o->cmd[2], "true");
	CHECK(o->cmd[3] == NULL);
	CHECK_EQ(o->n_env, 2);
	CHECK_STREQ(o->env[1], "LONG_NAME_2=x=y");
	CHECK_EQ(o->n_inputs, 2);
	CHECK_STREQ(o->inputs[0].path, "in/data.txt");
	CHECK_EQ(o->inputs_bytes, 25);
	CHECK_EQ(o->cores, 1);
	CHECK_EQ(o->mem_mb, 64);
	CHECK_EQ(o->deadline_ms, 60000);
	CHECK_EQ(o->replica, 2);
	CHECK_STREQ(o->renter, "alice@x");
	CHECK_EQ(o->pow_bits, 12);
	offer_free(o);
	CHECK_EQ(parse("{" BASE "}", &o), 0); /* optional fields absent */
	CHECK_EQ(o->n_env, 0);
	CHECK(o->env && !o->env[0]);
	CHECK_EQ(o->renter[0], '\0');
	offer_free(o);
}

static void test_hostile_offers(void)
{
	static const char *const bad[] = {
		/* task ids that would name other directories or cgroups */
		"{\"task_id\":\"../etc\",\"image\":\"" IMG
		"\",\"cmd\":[\"x\"],\"cores\":1,\"mem_mb\":64,\"max_cpu_ns\":1,\"price\":0}",
		"{\"task_id\":\".hidden\",\"image\":\"" IMG
		"\",\"cmd\":[\"x\"],\"cores\":1,\"mem_mb\":64,\"max_cpu_ns\":1,\"price\":0}",
		"{\"task_id\":\"a/b\",\"image\":\"" IMG
		"\",\"cmd\":[\"x\"],\"cores\":1,\"mem_mb\":64,\"max_cpu_ns\":1,\"price\":0}",
		"{\"task_id\":\"\",\"image\":\"" IMG
		"\",\"cmd\":[\"x\"],\"cores\":1,\"mem_mb\":64,\"max_cpu_ns\":1,\"price\":0}",
		"{\"task_id\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"image\":\"" IMG
		"\",\"cmd\":[\"x\"],\"cores\":1,\"mem_mb\":64,\"max_cpu_ns\":1,\"price\":0}",
		/* unknown or malformed image */
		"{\"task_id\":\"1\",\"image\":\"busybox:latest\",\"cmd\":[\"x\"],\"cores\":1,\"mem_mb\":64,\"max_cpu_ns\":1,\"price\":0}",
		"{\"task_id\":\"1\",\"image\":\"sha256:XYZ\",\"cmd\":[\"x\"],\"cores\":1,\"mem_mb\":64,\"max_cpu_ns\":1,\"price\":0}",
		/* command and environment */
		"{\"task_id\":\"1\",\"image\":\"" IMG
		"\",\"cmd\":[],\"cores\":1,\"mem_mb\":64,\"max_cpu_ns\":1,\"price\":0}",
		"{\"task_id\":\"1\",\"image\":\"" IMG
		"\",\"cmd\":[\"\"],\"cores\":1,\"mem_mb\":64,\"max_cpu_ns\":1,\"price\":0}",
		"{\"task_id\":\"1\",\"image\":\"" IMG
		"\",\"cmd\":[1],\"cores\":1,\"mem_mb\":64,\"max_cpu_ns\":1,\"price\":0}",
		"{" BASE ",\"env\":[\"NOEQUALS\"]}",
		"{" BASE ",\"env\":[\"=x\"]}",
		"{" BASE ",\"env\":[\"1A=x\"]}",
		"{" BASE ",\"env\":[\"A-B=x\"]}",
		/* huge or zero values */
		"{\"task_id\":\"1\",\"image\":\"" IMG
		"\",\"cmd\":[\"x\"],\"cores\":0,\"mem_mb\":64,\"max_cpu_ns\":1,\"price\":0}",
		"{\"task_id\":\"1\",\"image\":\"" IMG
		"\",\"cmd\":[\"x\"],\"cores\":100000,\"mem_mb\":64,\"max_cpu_ns\":1,\"price\":0}",
		"{\"task_id\":\"1\",\"image\":\"" IMG
		"\",\"cmd\":[\"x\"],\"cores\":1,\"mem_mb\":1,\"max_cpu_ns\":1,\"price\":0}",
		"{\"task_id\":\"1\",\"image\":\"" IMG
		"\",\"cmd\":[\"x\"],\"cores\":1,\"mem_mb\":99999999999,\"max_cpu_ns\":1,\"price\":0}",
		"{\"task_id\":\"1\",\"image\":\"" IMG
		"\",\"cmd\":[\"x\"],\"cores\":1,\"mem_mb\":64,\"max_cpu_ns\":0,\"price\":0}",
		"{\"task_id\":\"1\",\"image\":\"" IMG
		"\",\"cmd\":[\"x\"],\"cores\":1,\"mem_mb\":64,\"max_cpu_ns\":-5,\"price\":0}",
		"{\"task_id\":\"1\",\"image\":\"" IMG
		"\",\"cmd\":[\"x\"],\"cores\":1,\"mem_mb\":64,\"max_cpu_ns\":1,\"price\":-1}",
		"{" BASE ",\"deadline_ms\":9223372036854775807}",
		"{" BASE ",\"pow_bits\":33}",
		"{" BASE ",\"pow_bits\":64}",
		"{" BASE ",\"replica\":65}",
		"{" BASE ",\"renter\":\"bad renter\"}",
		"{" BASE ",\"renter\":\"\"}",
		/* inputs: traversal, absolute, odd parts, clashes, sizes */
		"{" BASE ",\"inputs\":[{\"digest\":\"" DIG
		"\",\"path\":\"../../etc/passwd\",\"size\":1}]}",
		"{" BASE ",\"inputs\":[{\"digest\":\"" DIG
		"\",\"path\":\"/etc/passwd\",\"size\":1}]}",
		"{" BASE ",\"inputs\":[{\"digest\":\"" DIG
		"\",\"path\":\"a/../../b\",\"size\":1}]}",
		"{" BASE ",\"inputs\":[{\"digest\":\"" DIG "\",\"path\":\"a//b\",\"size\":1}]}",
		"{" BASE ",\"inputs\":[{\"digest\":\"" DIG "\",\"path\":\"./a\",\"size\":1}]}",
		"{" BASE ",\"inputs\":[{\"digest\":\"" DIG "\",\"path\":\"a/\",\"size\":1}]}",
		"{" BASE ",\"inputs\":[{\"digest\":\"" DIG "\",\"path\":\"..\",\"size\":1}]}",
		"{" BASE ",\"inputs\":[{\"digest\":\"" DIG "\",\"path\":\"a\\nb\",\"size\":1}]}",
		"{" BASE ",\"inputs\":[{\"digest\":\"" DIG "\",\"path\":\"a\\\\b\",\"size\":1}]}",
		"{" BASE ",\"inputs\":[{\"digest\":\"" DIG
		"\",\"path\":\"a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q\",\"size\":1}]}",
		"{" BASE ",\"inputs\":[{\"digest\":\"" DIG
		"\",\"path\":\"x\",\"size\":1},{\"digest\":\"" DIG
		"\",\"path\":\"x\",\"size\":1}]}",
		"{" BASE ",\"inputs\":[{\"digest\":\"" DIG
		"\",\"path\":\"x\",\"size\":1},{\"digest\":\"" DIG
		"\",\"path\":\"x/y\",\"size\":1}]}",
		"{" BASE ",\"inputs\":[{\"digest\":\"" DIG
		"\",\"path\":\"x/y\",\"size\":1},{\"digest\":\"" DIG
		"\",\"path\":\"x\",\"size\":1}]}",
		"{" BASE ",\"inputs\":[{\"digest\":\"" DIG
		"\",\"path\":\"x\",\"size\":4294967296},{\"digest\":\"" DIG
		"\",\"path\":\"y\",\"size\":4294967296}]}",
		"{" BASE ",\"inputs\":[{\"digest\":\"nope\",\"path\":\"x\",\"size\":1}]}",
		"{" BASE ",\"inputs\":[{\"path\":\"x\",\"size\":1}]}",
		"{" BASE ",\"inputs\":{}}",
		NULL,
	};

	for (size_t i = 0; bad[i]; i++) {
		int r = parse_free(bad[i]);

		if (r != -EINVAL)
			fprintf(stderr, "case %zu: %d: %s\n", i, r, bad[i]);
		CHECK_EQ(r, -EINVAL);
		if (!why[0])
			fprintf(stderr, "case %zu: no reason\n", i);
		CHECK(why[0] != '\0'); /* the coordinator gets a reason */
	}
	/* a clash is not a prefix match: "x" and "xy" are different files */
	CHECK_EQ(parse_free("{" BASE ",\"inputs\":[{\"digest\":\"" DIG
			    "\",\"path\":\"x\",\"size\":1},"
			    "{\"digest\":\"" DIG "\",\"path\":\"xy/z\",\"size\":1}]}"),
		 0);
	CHECK(offer_path_ok("a/b.c/..d"));
	CHECK(offer_path_ok("...")); /* a name, not a parent */
	CHECK(!offer_path_ok(""));
}

static void test_many_inputs(void)
{
	char *json = malloc(64 * 1024);
	size_t n;

	CHECK(json);
	n = (size_t)snprintf(json, 64 * 1024, "{" BASE ",\"inputs\":[");
	for (int i = 0; i < OFFER_INPUTS_MAX + 1; i++)
		n += (size_t)snprintf(json + n, 64 * 1024 - n,
				      "%s{\"digest\":\"" DIG "\",\"path\":\"f%d\",\"size\":1}",
				      i ? "," : "", i);
	snprintf(json + n, 64 * 1024 - n, "]}");
	CHECK_EQ(parse_free(json), -EINVAL);
	free(json);
}

static void test_rules(void)
{
	struct agent_config cfg = {
		.max_millicores = 2500,
		.max_memory = 1024ULL << 20,
		.max_tasks = 2,
	};
	struct offer_load load = {0};
	struct offer *o = NULL;

	CHECK_EQ(parse("{\"task_id\":\"7\",\"image\":\"" IMG "\",\"cmd\":[\"x\"],\"cores\":2,"
		       "\"mem_mb\":512,\"max_cpu_ns\":1,\"price\":0}",
		       &o),
		 0);
	CHECK_EQ(offer_check(&cfg, &load, true, o, why, sizeof(why)), 0);
	/* outside the windows: later */
	CHECK_EQ(offer_check(&cfg, &load, false, o, why, sizeof(why)), -EAGAIN);
	CHECK(strstr(why, "window"));
	/* cores under the cap, counting what runs: 2 + 1 > 2.5 */
	load = (struct offer_load){.millicores = 1000, .memory = 0, .tasks = 1};
	CHECK_EQ(offer_check(&cfg, &load, true, o, why, sizeof(why)), -EAGAIN);
	CHECK(strstr(why, "cores"));
	load = (struct offer_load){.millicores = 500, .memory = 0, .tasks = 1};
	CHECK_EQ(offer_check(&cfg, &load, true, o, why, sizeof(why)), 0);
	/* memory: 512 + 600 > 1024 */
	load = (struct offer_load){.millicores = 0, .memory = 600ULL << 20, .tasks = 1};
	CHECK_EQ(offer_check(&cfg, &load, true, o, why, sizeof(why)), -EAGAIN);
	CHECK(strstr(why, "memory"));
	/* max_tasks */
	load = (struct offer_load){.tasks = 2};
	CHECK_EQ(offer_check(&cfg, &load, true, o, why, sizeof(why)), -EAGAIN);
	CHECK(strstr(why, "max_tasks"));
	/* bigger than the whole cap: never, whatever runs or the window says */
	cfg.max_millicores = 1500;
	load = (struct offer_load){0};
	CHECK_EQ(offer_check(&cfg, &load, false, o, why, sizeof(why)), -E2BIG);
	CHECK(strstr(why, "offers"));
	cfg.max_millicores = 4000;
	cfg.max_memory = 256ULL << 20;
	CHECK_EQ(offer_check(&cfg, &load, true, o, why, sizeof(why)), -E2BIG);
	offer_free(o);
}

int main(void)
{
	static const struct test_case cases[] = {
		TEST(test_full_offer),	TEST(test_hostile_offers),
		TEST(test_many_inputs), TEST(test_rules),
		{NULL, NULL},
	};

	return harness_run(cases);
}
