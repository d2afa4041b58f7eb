/* hash.h -- SHA-256 (OpenSSL EVP: hash.c), hex and base64 codecs (no OpenSSL: hex.c) for all of aicn. */
#ifndef AICN_HASH_H
#define AICN_HASH_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_LEN 32
#define SHA256_HEX_LEN 64

struct sha256_ctx;

/* One-shot digest of a buffer. */
void sha256(const void *data, size_t len, uint8_t out[SHA256_LEN]);
/* Incremental digest; destructors accept NULL and return NULL. */
int sha256_new(struct sha256_ctx **ret_ctx);
void sha256_update(struct sha256_ctx *ctx, const void *data, size_t len);
void sha256_final(struct sha256_ctx *ctx, uint8_t out[SHA256_LEN]);
struct sha256_ctx *sha256_free(struct sha256_ctx *ctx);
/* Digest of a whole file opened relative to dirfd (AT_FDCWD allowed). */
int sha256_file(int dirfd, const char *path, uint8_t out[SHA256_LEN]);

/* Lowercase hex; out has room for 2 * len + 1 bytes. */
void hex_encode(const uint8_t *in, size_t len, char *out);
/* Exactly 2 * outlen hex digits (either case) -> bytes; -EINVAL otherwise. */
int hex_decode(const char *in, size_t inlen, uint8_t *out, size_t outlen);
/* "sha256:<64 lowercase hex>" (OCI digest form) -> bytes; -EINVAL otherwise. */
int digest_parse(const char *s, uint8_t out[SHA256_LEN]);

/* Standard base64 with padding, no newlines; *ret is NUL-terminated, free() it. */
int base64_encode(const void *in, size_t len, char **ret);
/* Strict standard base64 (padding required, no whitespace) -> malloc'd bytes. */
int base64_decode(const char *in, size_t len, uint8_t **ret, size_t *ret_len);

#endif /* AICN_HASH_H */
