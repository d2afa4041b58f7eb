/* test_merkle.c -- RFC 6962 test vectors (certificate-transparency / transparency-dev) and proof round trips. */
#include <aicn/compiler.h>
#include <aicn/hash.h>
#include <aicn/merkle.h>

#include "harness.h"

typedef uint8_t mhash[MERKLE_HASH_LEN];

/* The eight leaves of the certificate-transparency test suite. */
static const struct {
	const char *data;
	size_t len;
} ct_leaves[] = {
	{"", 0},
	{"\x00", 1},
	{"\x10", 1},
	{"\x20\x21", 2},
	{"\x30\x31", 2},
	{"\x40\x41\x42\x43", 4},
	{"\x50\x51\x52\x53\x54\x55\x56\x57", 8},
	{"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f", 16},
};

static const char *const ct_roots[] = {
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
	"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
	"aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
	"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
	"4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
	"76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
	"ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
	"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};

#define H_96A2 "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"
#define H_5F08 "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"
#define H_6B47 "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"
#define H_BC1A "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"
#define H_CA85 "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"
#define H_D37E "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"
#define H_6E34 "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
#define H_FAC5 "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"
#define H_0EBC "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"

struct vec {
	uint64_t a, b; /* inclusion: index, size; consistency: old, new */
	const char *proof[4];
};

static const struct vec inclusion_vecs[] = {
	{0, 1, {NULL}},
	{0, 2, {H_96A2}},
	{1, 2, {H_6E34}},
	{2, 3, {H_FAC5}},
	{1, 5, {H_6E34, H_5F08, H_BC1A}},
	{0, 8, {H_96A2, H_5F08, H_6B47}},
	{5, 8, {H_BC1A, H_CA85, H_D37E}},
};

static const struct vec consistency_vecs[] = {
	{1, 1, {NULL}},
	{1, 8, {H_96A2, H_5F08, H_6B47}},
	{6, 8, {H_0EBC, H_CA85, H_D37E}},
	{2, 5, {H_5F08, H_BC1A}},
};

/* compact/range_test.go golden roots: leaf i is the two bytes i & 0xff, i >> 8 & 0xff. */
static const struct {
	uint64_t size;
	const char *root_b64;
} golden[] = {
	{10, "VjWMPSYNtCuCNlF/RLnQy6HcwSk6CIipfxm+hettA+4="},
	{15, "j4SulYmocFuxdeyp12xXCIgK6PekBcxzAIj4zbQzNEI="},
	{16, "c+4Uc6BCMOZf/v3NZK1kqTUJe+bBoFtOhP+P3SayKRE="},
	{100, "dUh9hYH88p0CMoHkdr1wC2szbhcLAXOejWpINIooKUY="},
	{255, "SmdsuKUqiod3RX2jyF2M6JnbdE4QuTwwipfAowI4/i0="},
	{256, "qFI0t/tZ1MdOYgyPpPzHFiZVw86koScXy9q3FU5casA="},
	{1000, "RXrgb8xHd55Y48FbfotJwCbV82Kx22LZfEbmBGAvwlQ="},
	{4095, "cWRFdQhPcjn9WyBXE/r1f04ejxIm5lvg40DEpRBVS0w="},
	{4096, "6uU/phfHg1n/GksYT6TO9aN8EauMCCJRl3dIK0HDs2M="},
	{10000, "VZcav65F9haHVRk3wre2axFoBXRNeUh/1d9d5FQfxIg="},
	{65535, "iPuVYJhP6SEE4gUFp8qbafd2rYv9YTCDYqAxCj8HdLM="},
};

static void hexh(const char *s, uint8_t out[MERKLE_HASH_LEN])
{
	if (hex_decode(s, strlen(s), out, MERKLE_HASH_LEN) < 0)
		abort();
}

static struct merkle_tree *ct_tree(void)
{
	struct merkle_tree *t = NULL;

	if (merkle_new(&t) < 0)
		abort();
	for (size_t i = 0; i < ARRAY_SIZE(ct_leaves); i++)
		if (merkle_append(t, ct_leaves[i].data, ct_leaves[i].len) < 0)
			abort();
	return t;
}

static void test_hasher(void)
{
	mhash h, want;

	merkle_empty_root(h);
	hexh(ct_roots[0], want);
	CHECK(memcmp(h, want, 32) == 0);
	merkle_hash_leaf("L123456", 7, h);
	hexh("395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56", want);
	CHECK(memcmp(h, want, 32) == 0);
	/* long leaves take the incremental path: same result as hashing 0x00 || leaf */
	{
		size_t len = 5000;
		uint8_t *buf = malloc(len + 1);

		CHECK(buf);
		buf[0] = 0;
		for (size_t i = 1; i <= len; i++)
			buf[i] = (uint8_t)(i * 7);
		sha256(buf, len + 1, want);
		merkle_hash_leaf(buf + 1, len, h);
		free(buf);
		CHECK(memcmp(h, want, 32) == 0);
	}
}

static void test_ct_roots(void)
{
	struct merkle_tree *t = ct_tree();
	mhash h, want;

	CHECK_EQ(merkle_size(t), 8);
	for (uint64_t n = 0; n <= 8; n++) {
		CHECK_EQ(merkle_root(t, n, h), 0);
		hexh(ct_roots[n], want);
		CHECK(memcmp(h, want, 32) == 0);
	}
	CHECK_EQ(merkle_root(t, 9, h), -ERANGE);
	/* roots of every size as the tree grows */
	{
		struct merkle_tree *g = NULL;

		CHECK_EQ(merkle_new(&g), 0);
		for (size_t i = 0; i < 8; i++) {
			CHECK_EQ(merkle_append(g, ct_leaves[i].data, ct_leaves[i].len), 0);
			CHECK_EQ(merkle_root(g, i + 1, h), 0);
			hexh(ct_roots[i + 1], want);
			CHECK(memcmp(h, want, 32) == 0);
		}
		merkle_free(g);
	}
	merkle_free(t);
}

static int check_vec_proof(const struct vec *v, uint8_t got[][MERKLE_HASH_LEN], size_t n)
{
	size_t want_n = 0;

	while (want_n < 4 && v->proof[want_n])
		want_n++;
	if (n != want_n)
		return 0;
	for (size_t i = 0; i < n; i++) {
		mhash w;

		hexh(v->proof[i], w);
		if (memcmp(w, got[i], 32) != 0)
			return 0;
	}
	return 1;
}

static void test_ct_proofs(void)
{
	struct merkle_tree *t = ct_tree();
	mhash proof[MERKLE_MAX_PROOF], root, root2, leaf;
	size_t n;

	for (size_t i = 0; i < ARRAY_SIZE(inclusion_vecs); i++) {
		const struct vec *v = &inclusion_vecs[i];

		CHECK_EQ(merkle_inclusion_proof(t, v->a, v->b, proof, &n), 0);
		CHECK(check_vec_proof(v, proof, n));
		hexh(ct_roots[v->b], root);
		merkle_hash_leaf(ct_leaves[v->a].data, ct_leaves[v->a].len, leaf);
		CHECK_EQ(merkle_verify_inclusion(leaf, v->a, v->b, proof, n, root), 0);
	}
	for (size_t i = 0; i < ARRAY_SIZE(consistency_vecs); i++) {
		const struct vec *v = &consistency_vecs[i];

		CHECK_EQ(merkle_consistency_proof(t, v->a, v->b, proof, &n), 0);
		CHECK(check_vec_proof(v, proof, n));
		hexh(ct_roots[v->a], root);
		hexh(ct_roots[v->b], root2);
		CHECK_EQ(merkle_verify_consistency(v->a, v->b, root, root2, proof, n), 0);
	}
	CHECK_EQ(merkle_inclusion_proof(t, 8, 8, proof, &n), -ERANGE);
	CHECK_EQ(merkle_inclusion_proof(t, 0, 9, proof, &n), -ERANGE);
	CHECK_EQ(merkle_consistency_proof(t, 5, 4, proof, &n), -ERANGE);
	merkle_free(t);
}

static void test_golden_roots(void)
{
	struct merkle_tree *t = NULL;
	size_t g = 0;

	CHECK_EQ(merkle_new(&t), 0);
	for (uint64_t i = 0; i < 65535; i++) {
		uint8_t leaf[2] = {(uint8_t)(i & 0xff), (uint8_t)(i >> 8 & 0xff)};

		CHECK_EQ(merkle_append(t, leaf, 2), 0);
		if (g < ARRAY_SIZE(golden) && golden[g].size == i + 1) {
			uint8_t *want = NULL;
			size_t wl = 0;
			mhash h;

			CHECK_EQ(base64_decode(golden[g].root_b64, strlen(golden[g].root_b64),
					       &want, &wl),
				 0);
			CHECK_EQ(wl, 32);
			CHECK_EQ(merkle_root(t, i + 1, h), 0);
			CHECK(memcmp(h, want, 32) == 0);
			free(want);
			g++;
		}
	}
	CHECK_EQ(g, ARRAY_SIZE(golden));
	/* historical roots stay answerable after the tree grew */
	for (size_t k = 0; k < ARRAY_SIZE(golden); k++) {
		uint8_t *want = NULL;
		size_t wl = 0;
		mhash h;

		CHECK_EQ(base64_decode(golden[k].root_b64, strlen(golden[k].root_b64), &want, &wl),
			 0);
		CHECK_EQ(merkle_root(t, golden[k].size, h), 0);
		CHECK(memcmp(h, want, 32) == 0);
		free(want);
	}
	merkle_free(t);
}

/* Independent naive MTH straight from RFC 6962 §2.1, over leaf hashes. */
static void naive_mth(const mhash *leaves, uint64_t n, uint8_t out[32])
{
	uint64_t k = 1;

	if (n == 0) {
		merkle_empty_root(out);
		return;
	}
	if (n == 1) {
		memcpy(out, leaves[0], 32);
		return;
	}
	while (k * 2 < n)
		k *= 2;
	{
		mhash l, r;

		naive_mth(leaves, k, l);
		naive_mth(leaves + k, n - k, r);
		merkle_hash_children(l, r, out);
	}
}

static void test_round_trips(void)
{
	enum {
		N = 70
	};
	struct merkle_tree *t = NULL;
	mhash leaves[N], roots[N + 1], proof[MERKLE_MAX_PROOF], bad[MERKLE_MAX_PROOF];
	size_t n;

	CHECK_EQ(merkle_new(&t), 0);
	for (int i = 0; i < N; i++) {
		char buf[16];
		int len = snprintf(buf, sizeof(buf), "%d", i);

		merkle_hash_leaf(buf, (size_t)len, leaves[i]);
		CHECK_EQ(merkle_append_hash(t, leaves[i]), 0);
	}
	for (uint64_t s = 0; s <= N; s++) {
		mhash want;

		naive_mth(leaves, s, want);
		CHECK_EQ(merkle_root(t, s, roots[s]), 0);
		CHECK(memcmp(roots[s], want, 32) == 0);
	}
	for (uint64_t s = 1; s <= N; s++) {
		for (uint64_t i = 0; i < s; i++) {
			CHECK_EQ(merkle_inclusion_proof(t, i, s, proof, &n), 0);
			CHECK_EQ(merkle_verify_inclusion(leaves[i], i, s, proof, n, roots[s]), 0);
			/* wrong index, size, leaf, root; flipped bit; missing or extra node */
			if (s > 1)
				CHECK(merkle_verify_inclusion(leaves[i], (i + 1) % s, s, proof, n,
							      roots[s]) != 0);
			CHECK(merkle_verify_inclusion(leaves[i], i, s * 2, proof, n, roots[s]) !=
			      0);
			CHECK(merkle_verify_inclusion(leaves[(i + 1) % N], i, s, proof, n,
						      roots[s]) != 0);
			CHECK(merkle_verify_inclusion(leaves[i], i, s, proof, n, roots[s - 1]) !=
			      0);
			CHECK(merkle_verify_inclusion(leaves[i], i, s, proof, n + 1, roots[s]) !=
			      0);
			for (size_t j = 0; j < n; j++) {
				memcpy(bad, proof, n * 32);
				bad[j][j % 32] ^= 8;
				CHECK(merkle_verify_inclusion(leaves[i], i, s, bad, n, roots[s]) !=
				      0);
			}
			if (n > 0)
				CHECK(merkle_verify_inclusion(leaves[i], i, s, proof, n - 1,
							      roots[s]) != 0);
		}
	}
	for (uint64_t b = 1; b <= N; b++) {
		for (uint64_t a = 0; a <= b; a++) {
			CHECK_EQ(merkle_consistency_proof(t, a, b, proof, &n), 0);
			CHECK_EQ(merkle_verify_consistency(a, b, roots[a], roots[b], proof, n), 0);
			if (a == 0 || a == b)
				continue;
			CHECK(merkle_verify_consistency(a, b, roots[a], roots[b - 1], proof, n) !=
			      0);
			CHECK(merkle_verify_consistency(a, b, roots[a - 1], roots[b], proof, n) !=
			      0);
			CHECK(merkle_verify_consistency(a - 1, b, roots[a], roots[b], proof, n) !=
			      0);
			for (size_t j = 0; j < n; j++) {
				memcpy(bad, proof, n * 32);
				bad[j][(j * 5) % 32] ^= 1;
				CHECK(merkle_verify_consistency(a, b, roots[a], roots[b], bad, n) !=
				      0);
			}
			CHECK(merkle_verify_consistency(a, b, roots[a], roots[b], proof, n - 1) !=
			      0);
		}
	}
	/* truncating then appending the same leaves gives the same tree */
	CHECK_EQ(merkle_truncate(t, 37), 0);
	CHECK_EQ(merkle_size(t), 37);
	for (int i = 37; i < N; i++)
		CHECK_EQ(merkle_append_hash(t, leaves[i]), 0);
	{
		mhash h;

		CHECK_EQ(merkle_root(t, N, h), 0);
		CHECK(memcmp(h, roots[N], 32) == 0);
		CHECK_EQ(merkle_leaf_hash_at(t, 40, h), 0);
		CHECK(memcmp(h, leaves[40], 32) == 0);
		CHECK_EQ(merkle_leaf_hash_at(t, N, h), -ERANGE);
	}
	merkle_free(t);
}

static const struct test_case cases[] = {
	TEST(test_hasher),	 TEST(test_ct_roots),	 TEST(test_ct_proofs),
	TEST(test_golden_roots), TEST(test_round_trips), {NULL, NULL},
};

int main(void)
{
	return harness_run(cases);
}
