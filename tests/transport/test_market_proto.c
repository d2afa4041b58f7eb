/* test_market_proto.c -- the market messages: defined once with distinct ids, roles enforced, fields checked. */
#include <aicn/canon.h>
#include <aicn/frame.h>
#include <aicn/market_proto.h>

#include "harness.h"
#include "lib/proto_util.h"

#include <errno.h>
#include <string.h>

static void defined_once_with_distinct_ids(void)
{
	CHECK(market_proto_define() == 0);
	CHECK(market_proto_define() == 0); /* idempotent */
	for (int i = 0; i < MKT_COUNT; i++) {
		int t = market_type(i);

		CHECK(t >= PROTO_BUILTIN_COUNT);
		CHECK(market_msg_of(t) == i);
		for (int j = 0; j < i; j++)
			CHECK(market_type(j) != t);
	}
	CHECK(proto_type_from_name("SUBMIT") == market_type(MKT_SUBMIT));
	CHECK(market_msg_of(PROTO_HEARTBEAT) == -1);
}

static void roles(void)
{
	CHECK(market_proto_define() == 0);
	CHECK(proto_allowed(market_type(MKT_SUBMIT), ROLE_RENTER) == 0);
	CHECK(proto_allowed(market_type(MKT_SUBMIT), ROLE_AGENT) == -EPERM);
	CHECK(proto_allowed(market_type(MKT_NODES), ROLE_RENTER) == -EPERM);
	CHECK(proto_allowed(market_type(MKT_NODES), ROLE_AUDITOR) == 0);
	CHECK(proto_allowed(market_type(MKT_REPLY), ROLE_COORDINATOR) == 0);
	CHECK(proto_allowed(market_type(MKT_REPLY), ROLE_RENTER) == -EPERM);
	CHECK(proto_allowed(market_type(MKT_MARKET), ROLE_AGENT) == 0);
}

static void fields_checked(void)
{
	struct proto_msg m;
	char err[PROTO_ERR_LEN] = "";

	CHECK(market_proto_define() == 0);
	CHECK(proto_roundtrip(market_type(MKT_SUBMIT), "{\"spec\":{\"cores\":1}}", &m, err) == 0);
	CHECK(m.type == market_type(MKT_SUBMIT));
	proto_msg_done(&m);
	CHECK(proto_roundtrip(market_type(MKT_SUBMIT), "{\"spec\":1}", &m, err) == -EINVAL);
	CHECK(strstr(err, "spec") != NULL);
	CHECK(proto_roundtrip(market_type(MKT_RATE), "{\"task_id\":\"4\",\"stars\":6}", &m, err) ==
	      -EINVAL);
	CHECK(strstr(err, "stars") != NULL);
	CHECK(proto_roundtrip(market_type(MKT_VOTE), "{\"proposal\":3,\"yes\":true}", &m, err) ==
	      0);
	proto_msg_done(&m);
	CHECK(proto_roundtrip(market_type(MKT_NODE), "{\"node_id\":\"abc\"}", &m, err) == -EINVAL);
	CHECK(proto_roundtrip(market_type(MKT_REPLY), "{\"ref\":3,\"data\":{\"x\":[1,2]}}", &m,
			      err) == 0);
	proto_msg_done(&m);
	CHECK(proto_roundtrip(market_type(MKT_UPDATE),
			      "{\"task_id\":\"1\",\"state\":\"DONE\",\"cpu_ns\":5,\"final\":true}",
			      &m, err) == 0);
	proto_msg_done(&m);
}

int main(void)
{
	static const struct test_case cases[] = {
		TEST(defined_once_with_distinct_ids),
		TEST(roles),
		TEST(fields_checked),
		{NULL, NULL},
	};
	return harness_run(cases);
}
