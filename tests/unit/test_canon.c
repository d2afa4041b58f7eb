/* test_canon.c -- canonical JSON: sorted keys, exact int64, escapes, and every strictness rule of the parser. */
#include <aicn/canon.h>
#include <aicn/compiler.h>

#include "harness.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(cJSON, cJSON_Delete)

/* Parse text, print canonically, compare with want (NULL: expect a parse error). */
static int roundtrip(const char *text, const char *want)
{
	_cleanup_(cJSON_Deletep) cJSON *v = NULL;
	_cleanup_free_ char *out = NULL;
	const char *err = NULL;
	int r = canon_parse(text, strlen(text), 8, &v, &err);

	if (!want) {
		if (r == 0) {
			fprintf(stderr, "accepted bad JSON: %s\n", text);
			return 0;
		}
		return err != NULL;
	}
	if (r < 0) {
		fprintf(stderr, "rejected %s: %s\n", text, err);
		return 0;
	}
	if (canon_print(v, &out, NULL) < 0)
		return 0;
	if (strcmp(out, want) != 0) {
		fprintf(stderr, "canonical form of %s is %s, want %s\n", text, out, want);
		return 0;
	}
	return 1;
}

static void test_canonical_forms(void)
{
	CHECK(roundtrip(" { \"b\" : 1 , \"a\" : [ true, false, null ] } ",
			"{\"a\":[true,false,null],\"b\":1}"));
	CHECK(roundtrip("{\"\xc3\xa9\":1,\"z\":2,\"Z\":3}", "{\"Z\":3,\"z\":2,\"\xc3\xa9\":1}"));
	CHECK(roundtrip("[9223372036854775807,-9223372036854775808,18446744073709551615,0,-1]",
			"[9223372036854775807,-9223372036854775808,18446744073709551615,0,-1]"));
	CHECK(roundtrip("\"\\u00e9\\/\\\"\\\\\\b\\f\\n\\r\\t\\u0001\\ud83d\\ude00\"",
			"\"\xc3\xa9/\\\"\\\\\\b\\f\\n\\r\\t\\u0001\xf0\x9f\x98\x80\""));
	CHECK(roundtrip("{}", "{}"));
	CHECK(roundtrip("[]", "[]"));
	CHECK(roundtrip("{\"a\":{\"d\":1,\"c\":{}}}", "{\"a\":{\"c\":{},\"d\":1}}"));
}

static void test_rejections(void)
{
	static const char *const bad[] = {
		"1.5",
		"1e3",
		"1E3",
		"-0",
		"01",
		"+1",
		"18446744073709551616",
		"-9223372036854775809",
		"{\"a\":1,\"a\":2}",
		"{\"a\":1,}",
		"[1,]",
		"[1 2]",
		"{a:1}",
		"\"\x01\"",
		"\"\xc0\xaf\"",		/* overlong */
		"\"\xed\xa0\x80\"",	/* UTF-8 surrogate */
		"\"\xf4\x90\x80\x80\"", /* above U+10FFFF */
		"\"\\ud800\"",
		"\"\\udc00\"",
		"\"\\u0000\"",
		"\"\\x\"",
		"\"abc",
		"[[[[[[[[[1]]]]]]]]]", /* depth 9 > 8 */
		"1 2",
		"",
		"   ",
		"tru",
		"nul",
		"{\"a\"}",
	};

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		CHECK(roundtrip(bad[i], NULL));
	CHECK(roundtrip("[[[[[[[[1]]]]]]]]", "[[[[[[[[1]]]]]]]]")); /* depth 8 is fine */
}

static void test_exact_int64(void)
{
	_cleanup_(cJSON_Deletep) cJSON *o = cJSON_CreateObject();
	_cleanup_(cJSON_Deletep) cJSON *back = NULL;
	_cleanup_free_ char *out = NULL;
	int64_t i;
	uint64_t u;
	const char *s;
	int b;

	CHECK(o);
	CHECK_EQ(canon_add_i64(o, "t", 1764111463123456789LL), 0); /* realtime ns: > 2^53 */
	CHECK_EQ(canon_add_u64(o, "u", UINT64_MAX), 0);
	CHECK_EQ(canon_add_i64(o, "n", INT64_MIN), 0);
	CHECK(cJSON_AddStringToObject(o, "s", "x"));
	CHECK(cJSON_AddTrueToObject(o, "b"));
	CHECK(cJSON_AddNumberToObject(o, "d", 42));
	CHECK_EQ(canon_print(o, &out, NULL), 0);
	CHECK_STREQ(out, "{\"b\":true,\"d\":42,\"n\":-9223372036854775808,\"s\":\"x\","
			 "\"t\":1764111463123456789,\"u\":18446744073709551615}");
	CHECK_EQ(canon_parse(out, strlen(out), 4, &back, NULL), 0);
	CHECK_EQ(canon_get_i64(back, "t", &i), 0);
	CHECK_EQ(i, 1764111463123456789LL);
	CHECK_EQ(canon_get_u64(back, "u", &u), 0);
	CHECK(u == UINT64_MAX);
	CHECK_EQ(canon_get_i64(back, "u", &i), -EINVAL); /* out of int64 range */
	CHECK_EQ(canon_get_u64(back, "n", &u), -EINVAL); /* negative */
	CHECK_EQ(canon_get_i64(back, "d", &i), 0);
	CHECK_EQ(i, 42);
	CHECK_EQ(canon_get_str(back, "s", &s), 0);
	CHECK_STREQ(s, "x");
	CHECK_EQ(canon_get_bool(back, "b", &b), 0);
	CHECK_EQ(b, 1);
	CHECK_EQ(canon_get_str(back, "t", &s), -EINVAL);
	CHECK_EQ(canon_get_i64(back, "missing", &i), -ENOENT);
	CHECK_EQ(canon_is_canonical(out, strlen(out)), 1);
	CHECK_EQ(canon_is_canonical("{\"b\":1, \"a\":2}", 14), 0);
	CHECK_EQ(canon_is_canonical("{\"b\":1,\"a\":2}", 13), 0);
	CHECK_EQ(canon_is_canonical("{\"a\":2,\"b\":1}", 13), 1);
	CHECK(canon_is_canonical("{", 1) < 0);
}

static void test_print_refuses_non_canonical_trees(void)
{
	_cleanup_(cJSON_Deletep) cJSON *f = cJSON_CreateNumber(1.5);
	_cleanup_(cJSON_Deletep) cJSON *raw = cJSON_CreateRaw("1e9");
	_cleanup_(cJSON_Deletep) cJSON *dup = cJSON_CreateObject();
	_cleanup_(cJSON_Deletep) cJSON *bad = cJSON_CreateString("\xff");
	char *out = NULL;

	CHECK(f && raw && dup && bad);
	CHECK_EQ(canon_print(f, &out, NULL), -EINVAL);
	CHECK_EQ(canon_print(raw, &out, NULL), -EINVAL);
	cJSON_AddNumberToObject(dup, "k", 1);
	cJSON_AddNumberToObject(dup, "k", 2);
	CHECK_EQ(canon_print(dup, &out, NULL), -EINVAL);
	CHECK_EQ(canon_print(bad, &out, NULL), -EINVAL);
	CHECK(!out);
}

static void test_large_object_duplicate_check_is_fast(void)
{
	/* 50,000 keys: a quadratic duplicate check would take seconds */
	size_t n = 50000, cap = n * 16 + 16, len = 0;
	_cleanup_free_ char *buf = malloc(cap);
	_cleanup_(cJSON_Deletep) cJSON *v = NULL;

	CHECK(buf);
	buf[len++] = '{';
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(buf + len, cap - len, "%s\"k%zu\":%zu", i ? "," : "", n - i,
					i);
	buf[len++] = '}';
	CHECK_EQ(canon_parse(buf, len, 4, &v, NULL), 0);
	CHECK_EQ(cJSON_GetArraySize(v), (int)n);
}

int main(void)
{
	static const struct test_case tests[] = {
		TEST(test_canonical_forms),
		TEST(test_rejections),
		TEST(test_exact_int64),
		TEST(test_print_refuses_non_canonical_trees),
		TEST(test_large_object_duplicate_check_is_fast),
		{0},
	};

	return harness_run(tests);
}
