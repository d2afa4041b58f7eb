/* sha_dl.c -- SHA-256 of image blobs through libcrypto loaded on first use: a cached run never maps it. */
#include "internal.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

/* OpenSSL 3's soname (Debian 12 libssl3, Fedora openssl-libs) */
#define SBX_CRYPTO_SONAME "libcrypto.so.3"

#define SBX_CRYPTO_FUNCS(X)                                                                        \
	X(EVP_MD_fetch)                                                                            \
	X(EVP_MD_CTX_new)                                                                          \
	X(EVP_MD_CTX_free)                                                                         \
	X(EVP_DigestInit_ex)                                                                       \
	X(EVP_DigestUpdate)                                                                        \
	X(EVP_DigestFinal_ex)

static struct {
#define SBX_CR_FIELD(f) __typeof__(&f) f;
	SBX_CRYPTO_FUNCS(SBX_CR_FIELD)
#undef SBX_CR_FIELD
} cr;
static EVP_MD *cr_sha256; /* fetched once, never freed */
static int cr_err;
static char cr_why[256];
static pthread_once_t cr_once = PTHREAD_ONCE_INIT;

struct sbx_sha256 {
	EVP_MD_CTX *md; /* OpenSSL digest state */
};

static void cr_load(void)
{
#define SBX_CR_NAME(f) #f,
#define SBX_CR_SLOT(f) (void **)&cr.f,
	static const char *const names[] = {SBX_CRYPTO_FUNCS(SBX_CR_NAME)};
	void **const slots[] = {SBX_CRYPTO_FUNCS(SBX_CR_SLOT)};
#undef SBX_CR_SLOT
#undef SBX_CR_NAME

	cr_err = sbx_dl_load(SBX_CRYPTO_SONAME, names, slots, ARRAY_SIZE(names), cr_why,
			     sizeof(cr_why));
	if (cr_err < 0)
		return;
	cr_sha256 = cr.EVP_MD_fetch(NULL, "SHA256", NULL);
	if (!cr_sha256) {
		snprintf(cr_why, sizeof(cr_why), "it provides no SHA256");
		cr_err = -ELIBBAD;
	}
}

int sbx_sha256_new(struct sbx_sha256 **ret_ctx, struct sbx_err *err)
{
	struct sbx_sha256 *ctx;

	pthread_once(&cr_once, cr_load);
	if (cr_err < 0)
		return sbx_fail(err, cr_err, "cannot load %s to check image digests: %s",
				SBX_CRYPTO_SONAME, cr_why);
	ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return -ENOMEM;
	ctx->md = cr.EVP_MD_CTX_new();
	if (!ctx->md || !cr.EVP_DigestInit_ex(ctx->md, cr_sha256, NULL)) {
		sbx_sha256_free(ctx);
		return -ENOMEM;
	}
	*ret_ctx = ctx;
	return 0;
}

void sbx_sha256_update(struct sbx_sha256 *ctx, const void *data, size_t len)
{
	/* cannot fail for SHA-256 short of memory exhaustion, as in lib/hash.c */
	if (!cr.EVP_DigestUpdate(ctx->md, data, len))
		abort();
}

void sbx_sha256_final(struct sbx_sha256 *ctx, uint8_t out[SHA256_LEN])
{
	unsigned int n = SHA256_LEN;

	if (!cr.EVP_DigestFinal_ex(ctx->md, out, &n))
		abort();
}

struct sbx_sha256 *sbx_sha256_free(struct sbx_sha256 *ctx)
{
	if (ctx) {
		cr.EVP_MD_CTX_free(ctx->md);
		free(ctx);
	}
	return NULL;
}

int sbx_sha256_buf(const void *data, size_t len, uint8_t out[SHA256_LEN], struct sbx_err *err)
{
	struct sbx_sha256 *ctx = NULL;
	int r = sbx_sha256_new(&ctx, err);

	if (r < 0 || !ctx)
		return r < 0 ? r : -ENOMEM;
	sbx_sha256_update(ctx, data, len);
	sbx_sha256_final(ctx, out);
	sbx_sha256_free(ctx);
	return 0;
}
