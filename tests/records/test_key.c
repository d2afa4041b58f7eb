/* test_key.c -- node key: create-on-first-use with mode 0600, reload, node id, PEM, sign/verify (reused contexts). */
#include <aicn/compiler.h>
#include <aicn/hash.h>
#include <aicn/key.h>

#include "harness.h"

#include <openssl/evp.h>
#include <sys/stat.h>

static char dir[] = "/tmp/aicn-test-key-XXXXXX";

static void test_create_load(void)
{
	char path[256], id1[NODE_ID_HEX_LEN + 1], id2[NODE_ID_HEX_LEN + 1];
	EVP_PKEY *k1 = NULL, *k2 = NULL;
	struct stat st;

	snprintf(path, sizeof(path), "%s/node.key", dir);
	CHECK_EQ(key_load_or_create(path, &k1), 1);
	CHECK(stat(path, &st) == 0);
	CHECK_EQ(st.st_mode & 0777, 0600);
	CHECK_EQ(key_load_or_create(path, &k2), 0);
	CHECK_EQ(key_node_id(k1, id1), 0);
	CHECK_EQ(key_node_id(k2, id2), 0);
	CHECK_STREQ(id1, id2);
	CHECK_EQ(strlen(id1), 64);
	for (const char *p = id1; *p; p++)
		CHECK((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'));
	/* node id is the hex SHA-256 of the raw public key */
	{
		uint8_t raw[KEY_PUB_LEN], d[SHA256_LEN];
		char hex[SHA256_HEX_LEN + 1];

		CHECK_EQ(key_raw_public(k1, raw), 0);
		sha256(raw, sizeof(raw), d);
		hex_encode(d, sizeof(d), hex);
		CHECK_STREQ(hex, id1);
	}
	EVP_PKEY_free(k1);
	EVP_PKEY_free(k2);
	/* a key readable by others is refused */
	CHECK(chmod(path, 0644) == 0);
	k1 = NULL;
	CHECK_EQ(key_load_or_create(path, &k1), -EPERM);
	CHECK(k1 == NULL);
	CHECK(chmod(path, 0600) == 0);
	/* garbage is refused, not replaced */
	snprintf(path, sizeof(path), "%s/garbage.key", dir);
	{
		FILE *f = fopen(path, "we");

		CHECK(f);
		fputs("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n", f);
		fclose(f);
		CHECK(chmod(path, 0600) == 0);
	}
	CHECK_EQ(key_load_or_create(path, &k1), -EINVAL);
}

static void test_public_pem(void)
{
	char path[256], id1[NODE_ID_HEX_LEN + 1], id2[NODE_ID_HEX_LEN + 1];
	EVP_PKEY *k = NULL, *pub = NULL, *pub2 = NULL;
	char *pem = NULL;
	struct stat st;

	CHECK_EQ(key_generate(&k), 0);
	CHECK_EQ(key_public_pem(k, &pem), 0);
	CHECK(strstr(pem, "-----BEGIN PUBLIC KEY-----") == pem);
	CHECK(!strstr(pem, "PRIVATE"));
	free(pem);
	snprintf(path, sizeof(path), "%s/node.pub", dir);
	CHECK_EQ(key_write_public_pem(k, path), 0);
	CHECK(stat(path, &st) == 0);
	CHECK_EQ(st.st_mode & 0777, 0644);
	CHECK_EQ(key_load_public(path, &pub), 0);
	CHECK_EQ(key_node_id(k, id1), 0);
	CHECK_EQ(key_node_id(pub, id2), 0);
	CHECK_STREQ(id1, id2);
	/* a private key file also yields its public half */
	snprintf(path, sizeof(path), "%s/other.key", dir);
	CHECK_EQ(key_save_private(k, path), 0);
	CHECK_EQ(key_save_private(k, path), -EEXIST);
	CHECK_EQ(key_load_public(path, &pub2), 0);
	CHECK_EQ(key_node_id(pub2, id2), 0);
	CHECK_STREQ(id1, id2);
	EVP_PKEY_free(k);
	EVP_PKEY_free(pub);
	EVP_PKEY_free(pub2);
}

static void test_sign_verify(void)
{
	EVP_PKEY *k = NULL, *other = NULL, *pub = NULL;
	struct key_signer *s = NULL;
	struct key_verifier *v = NULL;
	uint8_t sig[KEY_SIG_LEN], raw[KEY_PUB_LEN];
	char msg[64];

	CHECK_EQ(key_generate(&k), 0);
	CHECK_EQ(key_generate(&other), 0);
	CHECK_EQ(key_raw_public(k, raw), 0);
	CHECK_EQ(key_from_raw_public(raw, &pub), 0);
	CHECK_EQ(key_signer_new(k, &s), 0);
	CHECK_EQ(key_verifier_new(pub, &v), 0);
	/* contexts are reused across many messages; each result must still be right */
	for (int i = 0; i < 200; i++) {
		int n = snprintf(msg, sizeof(msg), "record %d", i);

		CHECK_EQ(key_signer_sign(s, msg, (size_t)n, sig), 0);
		CHECK_EQ(key_verifier_check(v, msg, (size_t)n, sig), 0);
		CHECK_EQ(key_verify(pub, msg, (size_t)n, sig), 0);
		msg[0] ^= 1;
		CHECK_EQ(key_verifier_check(v, msg, (size_t)n, sig), -EBADMSG);
		msg[0] ^= 1;
		sig[i % KEY_SIG_LEN] ^= 0x40;
		CHECK_EQ(key_verifier_check(v, msg, (size_t)n, sig), -EBADMSG);
		sig[i % KEY_SIG_LEN] ^= 0x40;
		CHECK_EQ(key_verify(other, msg, (size_t)n, sig), -EBADMSG);
		/* one-shot signing agrees: Ed25519 is deterministic */
		{
			uint8_t sig2[KEY_SIG_LEN];

			CHECK_EQ(key_sign(k, msg, (size_t)n, sig2), 0);
			CHECK(memcmp(sig, sig2, KEY_SIG_LEN) == 0);
		}
	}
	key_signer_free(s);
	key_verifier_free(v);
	EVP_PKEY_free(k);
	EVP_PKEY_free(other);
	EVP_PKEY_free(pub);
}

static const struct test_case cases[] = {
	TEST(test_create_load),
	TEST(test_public_pem),
	TEST(test_sign_verify),
	{NULL, NULL},
};

int main(void)
{
	char cmd[300];
	int r;

	if (!mkdtemp(dir))
		return 1;
	r = harness_run(cases);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		r = r ? r : 1;
	return r;
}
