/* test_perf.c -- the perf score: chains checked against an independent OpenSSL implementation, rates match times. */
#include "../../agent/perf.h"

#include "harness.h"

#include <errno.h>
#include <openssl/evp.h>

static const uint8_t seed[] = "aicn-perf-test-seed";

/* The chain as documented in perf.h, written again directly on OpenSSL. */
static void ref_chain(uint32_t index, uint8_t out[32])
{
	uint8_t buf[4096], in[sizeof(seed) + 8], d[32];
	unsigned int len;

	memcpy(in, seed, sizeof(seed));
	for (uint32_t c = 0; c < 128; c++) {
		uint8_t *p = in + sizeof(seed);

		p[0] = index & 0xff, p[1] = (index >> 8) & 0xff, p[2] = (index >> 16) & 0xff;
		p[3] = index >> 24, p[4] = c & 0xff, p[5] = c >> 8, p[6] = 0, p[7] = 0;
		EVP_Digest(in, sizeof(in), buf + 32 * c, &len, EVP_sha256(), NULL);
	}
	for (uint32_t s = 0; s < 65536; s++) {
		EVP_Digest(buf, sizeof(buf), d, &len, EVP_sha256(), NULL);
		memcpy(buf + (s * 32) % 4096, d, 32);
	}
	memcpy(out, d, 32);
}

static void test_chain_matches_reference(void)
{
	uint8_t a[32], b[32];

	perf_chain(seed, sizeof(seed), 1, a);
	ref_chain(1, b);
	CHECK(memcmp(a, b, 32) == 0);
	perf_chain(seed, sizeof(seed), 0, b);
	CHECK(memcmp(a, b, 32) != 0);
}

static void test_measure(void)
{
	struct perf_result r;
	uint8_t chains[2][32], want[32], expect[32];
	uint8_t two[4] = {2, 0, 0, 0};
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	uint64_t bytes = 65536ULL * 4096;
	unsigned int len;
	char hex[65];

	CHECK(md);
	CHECK_EQ(perf_measure(seed, sizeof(seed), 2, &r), 0);
	/* hash = SHA-256(le32 threads || chain 0 || chain 1), computed independently */
	ref_chain(0, chains[0]);
	ref_chain(1, chains[1]);
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	EVP_DigestUpdate(md, two, 4);
	EVP_DigestUpdate(md, chains, sizeof(chains));
	EVP_DigestFinal_ex(md, want, &len);
	EVP_MD_CTX_free(md);
	CHECK(memcmp(r.hash, want, 32) == 0);
	CHECK_EQ(perf_expected_hash(seed, sizeof(seed), 2, expect), 0);
	CHECK(memcmp(expect, want, 32) == 0);
	hex_encode(want, 32, hex);
	CHECK_STREQ(r.hash_hex, hex);
	CHECK_EQ(r.threads, 2);
	/* the rates are the fixed work over the measured times */
	CHECK(r.single_ns > 1000000 && r.multi_ns > 1000000);
	CHECK(llabs((long long)r.single_kib_s -
		    (long long)(bytes / 1024 * 1000000000ULL / r.single_ns)) <=
	      (long long)r.single_kib_s / 100 + 1);
	CHECK(llabs((long long)r.multi_kib_s -
		    (long long)(2 * bytes / 1024 * 1000000000ULL / r.multi_ns)) <=
	      (long long)r.multi_kib_s / 100 + 1);
	printf("perf: single %llu KiB/s (%.1f ms), 2 threads %llu KiB/s (%.1f ms), hash %.16s...\n",
	       (unsigned long long)r.single_kib_s, r.single_ns / 1e6,
	       (unsigned long long)r.multi_kib_s, r.multi_ns / 1e6, r.hash_hex);
}

static void test_seed_and_args(void)
{
	uint8_t a[32], b[32];
	struct perf_result r;

	CHECK_EQ(perf_expected_hash(seed, sizeof(seed), 1, a), 0);
	CHECK_EQ(perf_expected_hash((const uint8_t *)"other", 5, 1, b), 0);
	CHECK(memcmp(a, b, 32) != 0);
	CHECK_EQ(perf_measure(seed, sizeof(seed), 0, &r), -EINVAL);
	CHECK_EQ(perf_measure(seed, PERF_SEED_MAX + 1, 1, &r), -EINVAL);
	CHECK_EQ(perf_expected_hash(seed, sizeof(seed), PERF_MAX_THREADS + 1, a), -EINVAL);
}

int main(void)
{
	static const struct test_case cases[] = {
		TEST(test_chain_matches_reference),
		TEST(test_measure),
		TEST(test_seed_and_args),
		{NULL, NULL},
	};
	return harness_run(cases);
}
