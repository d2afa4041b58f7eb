/* test_pow.c -- proof-of-work stamps: minted stamps verify, a stamp below difficulty or for other inputs is refused. */
#include <aicn/hash.h>
#include <aicn/pow.h>

#include "harness.h"

#include <errno.h>
#include <string.h>

static uint8_t result[32], record[32];

static void setup(void)
{
	sha256("result", 6, result);
	sha256("record", 6, record);
}

static void test_mint_verify(void)
{
	uint64_t nonce = 0;

	setup();
	CHECK_EQ(pow_mint("task-1", result, record, 12, 0, 0, &nonce), 0);
	CHECK(pow_stamp_bits("task-1", result, record, nonce) >= 12);
	CHECK_EQ(pow_verify("task-1", result, record, nonce, 12), 0);
	CHECK_EQ(pow_verify("task-1", result, record, nonce, 0), 0);
	/* bound to every input: another task, result or record does not carry the stamp
	 * (each has a 2^-12 chance to pass by luck; these fixed inputs do not) */
	CHECK_EQ(pow_verify("task-2", result, record, nonce, 12), -EBADMSG);
	CHECK_EQ(pow_verify("task-1", record, record, nonce, 12), -EBADMSG);
	CHECK_EQ(pow_verify("task-1", result, result, nonce, 12), -EBADMSG);
}

static void test_below_difficulty(void)
{
	uint64_t nonce = 0, weak = 0;
	int bits, refused = 0;

	setup();
	/* a stamp with exactly b bits meets b and is refused at b + 1 */
	CHECK_EQ(pow_mint("task-1", result, record, 10, 0, 0, &nonce), 0);
	bits = pow_stamp_bits("task-1", result, record, nonce);
	CHECK(bits >= 10);
	CHECK_EQ(pow_verify("task-1", result, record, nonce, (unsigned)bits), 0);
	CHECK_EQ(pow_verify("task-1", result, record, nonce, (unsigned)bits + 1), -EBADMSG);
	/* random nonces are mostly refused at 16 bits */
	for (uint64_t n = 1000; n < 1200; n++)
		refused += pow_verify("task-1", result, record, n, 16) == -EBADMSG;
	CHECK(refused >= 195);
	/* an exhausted search says so */
	CHECK_EQ(pow_mint("task-1", result, record, 40, 0, 100, &weak), -EAGAIN);
}

static void test_bad_input(void)
{
	char big[POW_MAX_TASK_ID_LEN + 2];
	uint64_t n;

	setup();
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	CHECK_EQ(pow_verify("", result, record, 0, 1), -EINVAL);
	CHECK_EQ(pow_verify(big, result, record, 0, 1), -EINVAL);
	CHECK_EQ(pow_verify(NULL, result, record, 0, 1), -EINVAL);
	CHECK_EQ(pow_verify("t", result, record, 0, POW_MAX_BITS + 1), -EINVAL);
	CHECK_EQ(pow_mint("t", result, record, POW_MAX_BITS + 1, 0, 1, &n), -EINVAL);
}

static void test_known_vector(void)
{
	/* the stamp digest is SHA-256 over the documented layout: recompute it by hand */
	uint8_t buf[12 + 2 + 6 + 32 + 32 + 8], d[32];
	size_t o = 0;
	int bits = 0;

	setup();
	memcpy(buf, "aicn-pow-v1", 12); /* with its NUL */
	o = 12;
	buf[o++] = 0;
	buf[o++] = 6;
	memcpy(buf + o, "task-1", 6);
	o += 6;
	memcpy(buf + o, result, 32);
	o += 32;
	memcpy(buf + o, record, 32);
	o += 32;
	memset(buf + o, 0, 7);
	buf[o + 7] = 42;
	sha256(buf, sizeof(buf), d);
	for (int i = 0; i < 32 && !d[i]; i++)
		bits += 8;
	for (int i = 0; i < 32; i++)
		if (d[i]) {
			bits += __builtin_clz((unsigned)d[i]) - 24;
			break;
		}
	CHECK_EQ(pow_stamp_bits("task-1", result, record, 42), bits);
}

int main(void)
{
	static const struct test_case cases[] = {
		TEST(test_mint_verify), TEST(test_below_difficulty),
		TEST(test_bad_input),	TEST(test_known_vector),
		{NULL, NULL},
	};

	return harness_run(cases);
}
