/* test_hash.c -- SHA-256 against FIPS 180-2 vectors, hex and strict base64 round trips and rejections. */
#include <aicn/compiler.h>
#include <aicn/hash.h>

#include "harness.h"

#include <fcntl.h>

static void hexof(const uint8_t d[SHA256_LEN], char out[SHA256_HEX_LEN + 1])
{
	hex_encode(d, SHA256_LEN, out);
}

static void test_sha256_vectors(void)
{
	uint8_t d[SHA256_LEN];
	char h[SHA256_HEX_LEN + 1];
	struct sha256_ctx *ctx = NULL;

	sha256("", 0, d);
	hexof(d, h);
	CHECK_STREQ(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	sha256("abc", 3, d);
	hexof(d, h);
	CHECK_STREQ(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	CHECK_EQ(sha256_new(&ctx), 0);
	for (int i = 0; i < 1000; i++)
		sha256_update(
			ctx,
			"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
			"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
			1000 / 10);
	for (int i = 0; i < 9000; i++)
		sha256_update(
			ctx,
			"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
			"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
			100);
	sha256_final(ctx, d); /* one million 'a' */
	ctx = sha256_free(ctx);
	hexof(d, h);
	CHECK_STREQ(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

static void test_sha256_file(void)
{
	char path[] = "/tmp/aicn-hash-XXXXXX";
	int fd = mkstemp(path);
	uint8_t d[SHA256_LEN], e[SHA256_LEN];

	CHECK(fd >= 0);
	CHECK_EQ(write(fd, "abc", 3), 3);
	close(fd);
	CHECK_EQ(sha256_file(AT_FDCWD, path, d), 0);
	unlink(path);
	sha256("abc", 3, e);
	CHECK(memcmp(d, e, SHA256_LEN) == 0);
	CHECK_EQ(sha256_file(AT_FDCWD, path, d), -ENOENT);
}

static void test_hex(void)
{
	uint8_t b[3];
	char s[7];

	CHECK_EQ(hex_decode("00fFa1", 6, b, 3), 0);
	CHECK(b[0] == 0 && b[1] == 0xff && b[2] == 0xa1);
	hex_encode(b, 3, s);
	CHECK_STREQ(s, "00ffa1");
	CHECK_EQ(hex_decode("00ffa", 5, b, 3), -EINVAL);
	CHECK_EQ(hex_decode("00ffg1", 6, b, 3), -EINVAL);
}

static void test_digest_parse(void)
{
	uint8_t d[SHA256_LEN];

	CHECK_EQ(digest_parse(
			 "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
			 d),
		 0);
	CHECK_EQ(d[0], 0xe3);
	CHECK_EQ(digest_parse(
			 "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
			 d),
		 -EINVAL);
	CHECK_EQ(digest_parse(
			 "sha512:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
			 d),
		 -EINVAL);
	CHECK_EQ(digest_parse("sha256:e3b0", d), -EINVAL);
	CHECK_EQ(digest_parse(NULL, d), -EINVAL);
}

static void test_base64(void)
{
	static const char *const in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
	static const char *const want[] = {"",	       "Zg==",	   "Zm8=",    "Zm9v",
					   "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};

	for (size_t i = 0; i < ARRAY_SIZE(in); i++) {
		_cleanup_free_ char *e = NULL;
		_cleanup_free_ uint8_t *d = NULL;
		size_t n;

		CHECK_EQ(base64_encode(in[i], strlen(in[i]), &e), 0);
		CHECK_STREQ(e, want[i]); /* RFC 4648 section 10 */
		CHECK_EQ(base64_decode(e, strlen(e), &d, &n), 0);
		CHECK_EQ(n, strlen(in[i]));
		CHECK(memcmp(d, in[i], n) == 0);
	}
}

static void test_base64_strict(void)
{
	static const char *const bad[] = {"Zg=",    "Zg",   "Zh==", "Zm9=",	"Z===", "Zm 9v",
					  "Zm9v\n", "=Zm9", "Zm=v", "Zm9v====", "Zm9-"};
	uint8_t *d;
	size_t n;

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		if (base64_decode(bad[i], strlen(bad[i]), &d, &n) != -EINVAL) {
			fprintf(stderr, "accepted bad base64 '%s'\n", bad[i]);
			CHECK(0);
		}
	}
}

int main(void)
{
	static const struct test_case tests[] = {
		TEST(test_sha256_vectors),
		TEST(test_sha256_file),
		TEST(test_hex),
		TEST(test_digest_parse),
		TEST(test_base64),
		TEST(test_base64_strict),
		{0},
	};

	return harness_run(tests);
}
