/* hash.c -- SHA-256 through OpenSSL's EVP interface, plus strict hex and base64 codecs. */
#include <aicn/compiler.h>
#include <aicn/hash.h>

#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <string.h>

struct sha256_ctx {
	EVP_MD_CTX *md; /* OpenSSL digest state */
};

/*
 * SHA-256 fetched from the provider once: EVP_sha256() makes every call look the
 * implementation up again, which costs more than hashing a 64-byte Merkle node.
 */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static const EVP_MD *sha256_evp(void)
{
	pthread_once(&sha256_once, sha256_fetch);
	return sha256_md ? sha256_md : EVP_sha256();
}

void sha256(const void *data, size_t len, uint8_t out[SHA256_LEN])
{
	unsigned int n = SHA256_LEN;

	/* EVP_Digest cannot fail for SHA-256 short of memory exhaustion; abort then. */
	if (!EVP_Digest(data, len, out, &n, sha256_evp(), NULL))
		abort();
}

int sha256_new(struct sha256_ctx **ret_ctx)
{
	struct sha256_ctx *ctx = calloc(1, sizeof(*ctx));

	if (!ctx)
		return -ENOMEM;
	ctx->md = EVP_MD_CTX_new();
	if (!ctx->md || !EVP_DigestInit_ex(ctx->md, sha256_evp(), NULL)) {
		sha256_free(ctx);
		return -ENOMEM;
	}
	*ret_ctx = ctx;
	return 0;
}

void sha256_update(struct sha256_ctx *ctx, const void *data, size_t len)
{
	if (!EVP_DigestUpdate(ctx->md, data, len))
		abort();
}

void sha256_final(struct sha256_ctx *ctx, uint8_t out[SHA256_LEN])
{
	unsigned int n = SHA256_LEN;

	if (!EVP_DigestFinal_ex(ctx->md, out, &n))
		abort();
	/* leave the context reusable */
	EVP_DigestInit_ex(ctx->md, sha256_evp(), NULL);
}

struct sha256_ctx *sha256_free(struct sha256_ctx *ctx)
{
	if (ctx) {
		EVP_MD_CTX_free(ctx->md);
		free(ctx);
	}
	return NULL;
}

int sha256_file(int dirfd, const char *path, uint8_t out[SHA256_LEN])
{
	_cleanup_close_ int fd = -1;
	struct sha256_ctx *ctx = NULL;
	static const size_t bufsz = 1 << 16;
	_cleanup_free_ uint8_t *buf = NULL;
	int r;

	fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	buf = malloc(bufsz);
	if (!buf)
		return -ENOMEM;
	r = sha256_new(&ctx);
	if (r < 0)
		return r;
	for (;;) {
		ssize_t n = read(fd, buf, bufsz);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			sha256_free(ctx);
			return r;
		}
		if (n == 0)
			break;
		sha256_update(ctx, buf, (size_t)n);
	}
	sha256_final(ctx, out);
	sha256_free(ctx);
	return 0;
}

void hex_encode(const uint8_t *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0xf];
	}
	out[2 * len] = '\0';
}

static int hex_val(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int hex_decode(const char *in, size_t inlen, uint8_t *out, size_t outlen)
{
	if (inlen != 2 * outlen)
		return -EINVAL;
	for (size_t i = 0; i < outlen; i++) {
		int hi = hex_val(in[2 * i]), lo = hex_val(in[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

int digest_parse(const char *s, uint8_t out[SHA256_LEN])
{
	static const char prefix[] = "sha256:";

	if (!s || strncmp(s, prefix, sizeof(prefix) - 1) != 0)
		return -EINVAL;
	s += sizeof(prefix) - 1;
	if (strlen(s) != SHA256_HEX_LEN)
		return -EINVAL;
	for (const char *p = s; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return -EINVAL; /* OCI digests are lowercase */
	return hex_decode(s, SHA256_HEX_LEN, out, SHA256_LEN);
}

int base64_encode(const void *in, size_t len, char **ret)
{
	size_t outlen;
	char *out;

	if (len > (SIZE_MAX / 4) * 3 - 3 || len > INT32_MAX)
		return -E2BIG;
	outlen = 4 * ((len + 2) / 3);
	out = malloc(outlen + 1);
	if (!out)
		return -ENOMEM;
	if (EVP_EncodeBlock((unsigned char *)out, in, (int)len) != (int)outlen) {
		free(out);
		return -EIO;
	}
	out[outlen] = '\0';
	*ret = out;
	return 0;
}

static int b64_val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int base64_decode(const char *in, size_t len, uint8_t **ret, size_t *ret_len)
{
	size_t pad = 0, n = 0;
	uint8_t *out;

	if (len % 4 != 0)
		return -EINVAL;
	if (len >= 1 && in[len - 1] == '=')
		pad++;
	if (len >= 2 && in[len - 2] == '=')
		pad++;
	out = malloc(len / 4 * 3 + 1);
	if (!out)
		return -ENOMEM;
	for (size_t i = 0; i < len; i += 4) {
		int v[4];
		int last = i + 4 == len;

		for (int k = 0; k < 4; k++) {
			v[k] = b64_val(in[i + k]);
			if (v[k] < 0 && !(last && in[i + k] == '=' && k >= 4 - (int)pad))
				goto fail;
			if (v[k] < 0)
				v[k] = 0;
		}
		out[n++] = (uint8_t)(v[0] << 2 | v[1] >> 4);
		if (!(last && pad == 2))
			out[n++] = (uint8_t)(v[1] << 4 | v[2] >> 2);
		if (!(last && pad >= 1))
			out[n++] = (uint8_t)(v[2] << 6 | v[3]);
		/* canonical: bits dropped by padding must be zero */
		if (last && pad == 2 && (v[1] & 0xf))
			goto fail;
		if (last && pad == 1 && (v[2] & 0x3))
			goto fail;
	}
	*ret = out;
	*ret_len = n;
	return 0;
fail:
	free(out);
	return -EINVAL;
}
