/* test_proto.c -- the message catalogue: every type round-trips, bad fields and hostile JSON are refused. */
#include <aicn/canon.h>
#include <aicn/frame.h>
#include <aicn/proto.h>

#include "harness.h"
#include "lib/proto_util.h"

#include <errno.h>

#define DIGEST "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* A valid body for each built-in type, without v/id/type. */
static const char *const valid[PROTO_BUILTIN_COUNT] = {
	[PROTO_HELLO] = "{\"min_v\":1,\"max_v\":1,\"software\":\"t\"}",
	[PROTO_REGISTER] =
		"{\"cores\":8,\"mem_mb\":16384,\"cores_offered\":4,\"ask_price\":1000,"
		"\"location\":\"eu\",\"renewable_pm\":500,\"perf_score\":10,"
		"\"agent_version\":\"0.1\",\"windows\":[{\"day\":\"mon\",\"start_min\":0,"
		"\"end_min\":600}]}",
	[PROTO_HEARTBEAT] = "{\"free_cores\":2,\"running\":[\"t1\",\"t2\"]}",
	[PROTO_TASK_OFFER] = "{\"task_id\":\"t1\",\"image\":\"" DIGEST "\",\"cmd\":[\"true\"],"
			     "\"cores\":1,\"mem_mb\":64,\"max_cpu_ns\":1000000000,\"price\":5}",
	[PROTO_TASK_ACCEPT] = "{\"task_id\":\"t1\"}",
	[PROTO_TASK_REJECT] = "{\"task_id\":\"t1\",\"reason\":\"busy\"}",
	[PROTO_BLOB_GET] = "{\"digest\":\"" DIGEST "\",\"offset\":0}",
	[PROTO_BLOB_PUT] = "{\"digest\":\"" DIGEST "\",\"offset\":0,\"size\":3,\"data\":\"YWJj\","
			   "\"last\":true}",
	[PROTO_TASK_STATUS] = "{\"task_id\":\"t1\",\"state\":\"running\",\"cpu_ns\":123}",
	[PROTO_USAGE_RECORD] = "{\"seq\":7,\"record\":{\"any\":\"thing\"}}",
	[PROTO_TASK_RESULT] =
		"{\"task_id\":\"t1\",\"exit_code\":0,\"result_digest\":\"" DIGEST "\"}",
	[PROTO_ACK] = "{\"ref\":3,\"seq\":7}",
	[PROTO_ERROR] = "{\"code\":\"x\",\"message\":\"y\",\"ref\":1}",
};

static void every_type_roundtrips(void)
{
	for (int t = 1; t < PROTO_BUILTIN_COUNT; t++) {
		struct proto_msg m;
		char err[PROTO_ERR_LEN] = "";
		int r = proto_roundtrip(t, valid[t], &m, err);

		if (r != 0)
			fprintf(stderr, "%s: %s\n", proto_type_name(t), err);
		CHECK_EQ(r, 0);
		CHECK_EQ(m.type, t);
		CHECK_EQ(m.id, PROTO_TEST_ID);
		CHECK_EQ(m.v, 1);
		proto_msg_done(&m);
	}
}

static void expect_bad(int type, const char *body, const char *needle)
{
	struct proto_msg m;
	char err[PROTO_ERR_LEN] = "";
	int r = proto_roundtrip(type, body, &m, err);

	if (r == 0)
		proto_msg_done(&m);
	if (r != -EINVAL || !strstr(err, needle)) {
		fprintf(stderr, "%s %s: r=%d err='%s' (wanted '%s')\n", proto_type_name(type), body,
			r, err, needle);
		harness_failed++;
	}
}

/* Offers carry what SUBMIT accepts: arguments up to 4096 bytes (8192 for the wire), not 256. */
static void long_command_arguments(void)
{
	char *body = malloc(9000 + 200), err[PROTO_ERR_LEN] = "";
	struct proto_msg m;
	int n;

	CHECK(body != NULL);
	n = sprintf(body, "{\"task_id\":\"1\",\"image\":\"" DIGEST "\",\"cores\":1,\"mem_mb\":1,"
			  "\"max_cpu_ns\":1,\"price\":0,\"cmd\":[\"sh\",\"");
	memset(body + n, 'x', 8192);
	strcpy(body + n + 8192, "\"]}");
	CHECK(proto_roundtrip(PROTO_TASK_OFFER, body, &m, err) == 0);
	proto_msg_done(&m);
	strcpy(body + n + 8192, "y\"]}"); /* 8193 bytes */
	CHECK(proto_roundtrip(PROTO_TASK_OFFER, body, &m, err) == -EINVAL);
	CHECK(strstr(err, "cmd") && strstr(err, "8192"));
	free(body);
}

static void bad_fields_refused(void)
{
	expect_bad(PROTO_HEARTBEAT, "{\"running\":[]}", "free_cores: missing");
	expect_bad(PROTO_HEARTBEAT, "{\"free_cores\":\"2\",\"running\":[]}", "not an integer");
	expect_bad(PROTO_HEARTBEAT, "{\"free_cores\":-1,\"running\":[]}", "out of range");
	expect_bad(PROTO_HEARTBEAT, "{\"free_cores\":1,\"running\":[1]}", "elements");
	long_command_arguments();
	expect_bad(
		PROTO_REGISTER,
		"{\"cores\":8,\"mem_mb\":1,\"cores_offered\":4,\"ask_price\":1,\"location\":\"\","
		"\"renewable_pm\":1,\"perf_score\":1,\"agent_version\":\"a\"}",
		"location: bad length");
	expect_bad(
		PROTO_REGISTER,
		"{\"cores\":8,\"mem_mb\":1,\"cores_offered\":4,\"ask_price\":1,\"location\":\"x\","
		"\"renewable_pm\":1001,\"perf_score\":1,\"agent_version\":\"a\"}",
		"renewable_pm: out of range");
	expect_bad(
		PROTO_REGISTER,
		"{\"cores\":8,\"mem_mb\":1,\"cores_offered\":4,\"ask_price\":1,\"location\":\"x\","
		"\"renewable_pm\":1,\"perf_score\":1,\"agent_version\":\"a\","
		"\"windows\":[{\"day\":\"funday\",\"start_min\":0,\"end_min\":1}]}",
		"windows.day");
	expect_bad(PROTO_TASK_STATUS, "{\"task_id\":\"t\",\"state\":\"dancing\",\"cpu_ns\":1}",
		   "state");
	expect_bad(PROTO_BLOB_GET, "{\"digest\":\"sha256:xyz\"}", "digest");
	expect_bad(PROTO_USAGE_RECORD, "{\"seq\":-1,\"record\":{}}", "seq: out of range");
	expect_bad(PROTO_USAGE_RECORD, "{\"seq\":1,\"record\":[]}", "record: not an object");
}

static void parse_raw(const char *txt, int want, const char *needle)
{
	struct proto_msg m = {0};
	char err[PROTO_ERR_LEN] = "";
	int r = proto_parse(txt, strlen(txt), &m, err);

	proto_msg_done(&m);
	if (r != want || (needle && !strstr(err, needle))) {
		fprintf(stderr, "'%.60s': r=%d err='%s' (wanted %d '%s')\n", txt, r, err, want,
			needle ? needle : "");
		harness_failed++;
	}
}

static void hostile_json_refused(void)
{
	char deep[2100];
	size_t n = 0;

	parse_raw("{\"v\":1,\"id\":1,\"type\":\"ACK\",\"ref\":1", -EINVAL, "bad JSON");
	parse_raw("{\"v\":1,\"id\":1,\"type\":\"ERROR\",\"code\":\"\xff\xfe\",\"message\":\"\"}",
		  -EINVAL, "bad JSON");
	parse_raw("{\"v\":1,\"id\":1,\"type\":\"ACK\",\"ref\":1,\"ref\":2}", -EINVAL, "bad JSON");
	parse_raw("[1,2]", -EINVAL, "not an object");
	parse_raw("{\"v\":1,\"id\":1,\"type\":\"ACK\",\"ref\":1.5}", -EINVAL, "bad JSON");
	parse_raw("{\"id\":1,\"type\":\"ACK\",\"ref\":1}", -EINVAL, "field v");
	parse_raw("{\"v\":1,\"id\":-1,\"type\":\"ACK\",\"ref\":1}", -EINVAL, "field id");
	parse_raw("{\"v\":1,\"id\":1,\"type\":\"NOPE\"}", -ENOENT, "unknown");
	parse_raw("{\"v\":1,\"id\":1,\"type\":\"ACK\",\"ref\":1} x", -EINVAL, "bad JSON");
	n += (size_t)snprintf(deep, sizeof(deep),
			      "{\"v\":1,\"id\":1,\"type\":\"ACK\",\"ref\":1,\"x\":");
	for (int i = 0; i < 1000; i++)
		deep[n++] = '[';
	for (int i = 0; i < 1000; i++)
		deep[n++] = ']';
	deep[n++] = '}';
	deep[n] = '\0';
	parse_raw(deep, -EINVAL, "bad JSON");
}

static void unknown_type_keeps_id(void)
{
	const char *t = "{\"v\":1,\"id\":77,\"type\":\"FROBNICATE\"}";
	struct proto_msg m = {0};
	char err[PROTO_ERR_LEN];

	CHECK_EQ(proto_parse(t, strlen(t), &m, err), -ENOENT);
	CHECK_EQ(m.id, 77);
	CHECK_EQ(m.type, PROTO_UNKNOWN);
	proto_msg_done(&m);
}

static void roles(void)
{
	CHECK_EQ(proto_allowed(PROTO_HEARTBEAT, ROLE_AGENT), 0);
	CHECK_EQ(proto_allowed(PROTO_HEARTBEAT, ROLE_RENTER), -EPERM);
	CHECK_EQ(proto_allowed(PROTO_USAGE_RECORD, ROLE_AUDITOR), -EPERM);
	CHECK_EQ(proto_allowed(PROTO_TASK_OFFER, ROLE_AGENT), -EPERM);
	CHECK_EQ(proto_allowed(PROTO_TASK_OFFER, ROLE_COORDINATOR), 0);
	CHECK_EQ(proto_allowed(PROTO_ERROR, ROLE_RENTER), 0);
	CHECK_EQ(proto_allowed(PROTO_UNKNOWN, ROLE_AGENT), -EPERM);
}

static void versions(void)
{
	int64_t v = 0;

	CHECK_EQ(proto_negotiate(1, 1, &v), 0);
	CHECK_EQ(v, 1);
	CHECK_EQ(proto_negotiate(1, 9, &v), 0);
	CHECK_EQ(v, PROTO_VERSION_MAX);
	CHECK_EQ(proto_negotiate(PROTO_VERSION_MAX + 1, PROTO_VERSION_MAX + 5, &v),
		 -EPROTONOSUPPORT);
	CHECK_EQ(proto_negotiate(3, 2, &v), -EPROTONOSUPPORT);
}

static const struct proto_field f_submit[] = {
	{"image", PK_DIGEST, 1, 0, 0, NULL, NULL},
	{"cores", PK_INT, 1, 1, 64, NULL, NULL},
	{NULL, 0, 0, 0, 0, NULL, NULL},
};
static const struct proto_def d_submit = {"SUBMIT", ROLE_RENTER, f_submit};

static void define_new_type(void)
{
	int t = proto_define(&d_submit);
	struct proto_msg m;
	char err[PROTO_ERR_LEN];

	CHECK(t >= PROTO_BUILTIN_COUNT);
	CHECK_EQ(proto_define(&d_submit), -EEXIST);
	CHECK_EQ(proto_type_from_name("SUBMIT"), t);
	CHECK_EQ(proto_allowed(t, ROLE_RENTER), 0);
	CHECK_EQ(proto_allowed(t, ROLE_AGENT), -EPERM);
	CHECK_EQ(proto_roundtrip(t, "{\"image\":\"" DIGEST "\",\"cores\":2}", &m, err), 0);
	CHECK_EQ(m.type, t);
	proto_msg_done(&m);
	CHECK_EQ(proto_roundtrip(t, "{\"image\":\"" DIGEST "\",\"cores\":0}", &m, err), -EINVAL);
}

static void encode_is_canonical(void)
{
	cJSON *o = proto_new(PROTO_ACK);
	uint8_t *buf = NULL;
	size_t len;

	CHECK(o);
	canon_add_i64(o, "ref", 5);
	CHECK_EQ(proto_encode(o, 1, 9, &buf, &len), 0);
	cJSON_Delete(o);
	CHECK_EQ(len - FRAME_HDR_LEN, strlen("{\"id\":9,\"ref\":5,\"type\":\"ACK\",\"v\":1}"));
	CHECK(memcmp(buf + FRAME_HDR_LEN, "{\"id\":9,\"ref\":5,\"type\":\"ACK\",\"v\":1}",
		     len - FRAME_HDR_LEN) == 0);
	CHECK_EQ(buf[3], len - FRAME_HDR_LEN);
	free(buf);
}

int main(void)
{
	static const struct test_case cases[] = {
		TEST(every_type_roundtrips),
		TEST(bad_fields_refused),
		TEST(hostile_json_refused),
		TEST(unknown_type_keeps_id),
		TEST(roles),
		TEST(versions),
		TEST(define_new_type),
		TEST(encode_is_canonical),
		{NULL, NULL},
	};
	return harness_run(cases);
}
