/* tls_int.h -- lib/tls.c's connection state and record layer, shared only with its fuzz target. */
#ifndef AICN_TLS_INT_H
#define AICN_TLS_INT_H

#include <aicn/tls.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>

/*
 * TLS 1.3 records (RFC 8446 section 5) after a server handshake: OpenSSL runs the
 * handshake, then the connection keeps only the two application traffic secrets
 * (from the key log callback), one AEAD context per direction and the sequence
 * numbers, and frees the SSL with its session, parsed peer certificate and buffers:
 * what kernel TLS offload does, in user space (no kTLS on every host).
 */
#define REC_HDR 5
#define REC_TAG 16
#define REC_IV 12
#define REC_MAX_PLAIN 16384			   /* 2^14 */
#define REC_MAX_BODY (REC_MAX_PLAIN + 256)	   /* largest TLSCiphertext.length */
#define REC_MAX_SEAL (REC_MAX_PLAIN + 1 + REC_TAG) /* what we ever send */
#define CT_ALERT 21
#define CT_HANDSHAKE 22
#define CT_APP 23
#define HS_KEY_UPDATE 24
#define AL_CLOSE_NOTIFY 0
#define AL_UNEXPECTED_MESSAGE 10
#define AL_BAD_RECORD_MAC 20
#define AL_RECORD_OVERFLOW 22
#define AL_INTERNAL_ERROR 80
#define AL_USER_CANCELED 90
#define AL_ILLEGAL_PARAMETER 47
#define AL_DECODE_ERROR 50
/* rekey our direction long before AES-GCM's limit of 2^24.5 records (RFC 8446 5.5) */
#define REKEY_RECORDS (1ULL << 24)
/* KeyUpdates a peer may send without application data in between */
#define KEY_UPDATE_BUDGET 16

struct rec_dir {
	EVP_CIPHER_CTX *aead; /* key set; the nonce per record */
	uint64_t seq;
	uint8_t iv[REC_IV];
	uint8_t secret[EVP_MAX_MD_SIZE]; /* current application traffic secret */
	bool have_secret;
};

struct tls_ctx {
	SSL_CTX *ssl;
	struct tls_config cfg;
	char *ca_file, *crl_file; /* owned copies of cfg's paths */
	struct tls_peer self;
	EVP_KDF *hkdf;					/* NULL: records stay with OpenSSL */
	EVP_CIPHER *aes128_gcm, *aes256_gcm, *chacha20; /* for our own records */
};

struct tls_conn {
	SSL *ssl; /* NULL once the handshake is done and the records are ours */
	struct tls_ctx *ctx;
	const struct tls_conn_ops *ops;
	void *ud;
	const uint8_t *in; /* ciphertext being fed, consumed by the BIO */
	size_t in_len;
	bool established;
	bool have_peer;
	bool failed;
	uint8_t secret_len;	  /* hash length of the suite */
	uint8_t key_updates;	  /* budget left, see KEY_UPDATE_BUDGET */
	const EVP_CIPHER *cipher; /* our records: the suite's AEAD */
	const char *md;		  /* and its hash, by name */
	struct rec_dir rd, wr;
	uint8_t *part; /* a record arriving in pieces (allocated only meanwhile) */
	size_t part_len, part_need;
	struct tls_peer peer;
	char err[TLS_ERR_LEN];
};

/*
 * Take the records over from c->cipher, c->md, c->secret_len and the two directions'
 * secrets: one AEAD context per direction, keys and IVs derived, sequences at 0.
 * On failure nothing is left allocated.
 */
int tls_rec_start(struct tls_conn *c);

#endif /* AICN_TLS_INT_H */
