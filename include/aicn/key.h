/* key.h -- the node's Ed25519 identity: create on first use (mode 0600), load, node id, sign, verify. */
#ifndef AICN_KEY_H
#define AICN_KEY_H

#include <openssl/types.h>
#include <stddef.h>
#include <stdint.h>

#define KEY_PUB_LEN 32	   /* raw Ed25519 public key */
#define KEY_SIG_LEN 64	   /* raw Ed25519 signature */
#define NODE_ID_HEX_LEN 64 /* lowercase hex SHA-256 of the raw public key */

/*
 * Load the Ed25519 private key at path (PEM PKCS#8), or create one there if the
 * file does not exist: written to a temporary file with mode 0600, fsync'd, then
 * linked into place, so a crash never leaves a half-written key and two starters
 * racing end up with the same key.  Returns 1 when created, 0 when loaded.
 * A key file readable by group or others is refused (-EPERM); the key is never
 * printed or logged.  The caller frees *ret_key with EVP_PKEY_free().
 */
int key_load_or_create(const char *path, EVP_PKEY **ret_key);
/* A fresh key in memory. */
int key_generate(EVP_PKEY **ret_key);
/* Load a private key (PEM PKCS#8, Ed25519 only); -EPERM if group/other may read it. */
int key_load_private(const char *path, EVP_PKEY **ret_key);
/*
 * Load a public key: PEM SubjectPublicKeyInfo ("BEGIN PUBLIC KEY"), or a private
 * key file, whose public half is used.  Ed25519 only (-EINVAL otherwise).
 */
int key_load_public(const char *path, EVP_PKEY **ret_key);
/* Write the private key as PEM PKCS#8 to path with mode 0600 (refuses to overwrite: -EEXIST). */
int key_save_private(EVP_PKEY *key, const char *path);

/* PEM SubjectPublicKeyInfo text of the key's public half; free() *ret_pem. */
int key_public_pem(EVP_PKEY *key, char **ret_pem);
/* Write the PEM public key to path (mode 0644, atomically replacing it). */
int key_write_public_pem(EVP_PKEY *key, const char *path);

/* Raw 32-byte public key, and back. */
int key_raw_public(const EVP_PKEY *key, uint8_t ret_raw[KEY_PUB_LEN]);
int key_from_raw_public(const uint8_t raw[KEY_PUB_LEN], EVP_PKEY **ret_key);
/* Node id: lowercase hex SHA-256 of the raw public key, NUL-terminated. */
int key_node_id(const EVP_PKEY *key, char ret_id[NODE_ID_HEX_LEN + 1]);

/* Ed25519 signature of msg (PureEdDSA, as `openssl pkeyutl -sign -rawin`). */
int key_sign(EVP_PKEY *key, const void *msg, size_t len, uint8_t ret_sig[KEY_SIG_LEN]);
/* 0 when sig is a valid signature of msg by key, -EBADMSG when not, other <0 on error. */
int key_verify(EVP_PKEY *key, const void *msg, size_t len, const uint8_t sig[KEY_SIG_LEN]);

/*
 * A verifier for many signatures by one key, keeping its OpenSSL context
 * between calls (one per thread; key_verify() sets one up per call).
 */
struct key_verifier;
int key_verifier_new(EVP_PKEY *key, struct key_verifier **ret_v);
int key_verifier_check(struct key_verifier *v, const void *msg, size_t len,
		       const uint8_t sig[KEY_SIG_LEN]);
struct key_verifier *key_verifier_free(struct key_verifier *v);

/* The same for signing (the meter log signs every record with one key). */
struct key_signer;
int key_signer_new(EVP_PKEY *key, struct key_signer **ret_s);
int key_signer_sign(struct key_signer *s, const void *msg, size_t len,
		    uint8_t ret_sig[KEY_SIG_LEN]);
struct key_signer *key_signer_free(struct key_signer *s);

#endif /* AICN_KEY_H */
