/* hash.c -- SHA-256 and base64 encoding through OpenSSL's EVP interface (the pure codecs are in hex.c). */
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
