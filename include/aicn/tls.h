/* tls.h -- TLS 1.3 with mutual authentication against the network CA, on in-memory BIOs. */
#ifndef AICN_TLS_H
#define AICN_TLS_H

#include <stddef.h>
#include <stdint.h>

/* Roles carried by certificates as a SAN URI "aicn:role:<name>"; usable as a mask. */
enum aicn_role {
	ROLE_NONE = 0,
	ROLE_AGENT = 1 << 0,
	ROLE_RENTER = 1 << 1,
	ROLE_AUDITOR = 1 << 2,
	ROLE_COORDINATOR = 1 << 3,
};
#define ROLE_URI_PREFIX "aicn:role:"

const char *role_name(enum aicn_role role); /* "agent", ..., "none" */
int role_parse(const char *s, enum aicn_role *ret);

#define TLS_NODE_ID_LEN 64 /* hex SHA-256 of the raw Ed25519 public key */
#define TLS_ERR_LEN 256

/* Who is on the other end, from a verified certificate. */
struct tls_peer {
	enum aicn_role role;
	char node_id[TLS_NODE_ID_LEN + 1]; /* hex sha256(raw Ed25519 public key) */
	char name[128];			   /* subject CN */
	char serial[48];		   /* certificate serial, hex */
	int64_t not_after;		   /* unix seconds */
	uint8_t pubkey[32];		   /* raw Ed25519 public key */
};

struct tls_config {
	const char *ca_file;   /* network CA certificate (PEM) */
	const char *cert_file; /* our certificate (PEM), signed by the CA */
	const char *key_file;  /* our Ed25519 private key (PEM) */
	const char *crl_file;  /* CRL (PEM) checked for the peer's certificate; NULL = none */
	int server;	       /* 1: accept connections; 0: connect */
	unsigned peer_roles;   /* roles accepted from the peer (mask of enum aicn_role) */
};

struct tls_ctx;
struct tls_conn;

/* Load keys, certificates and CRL; on failure err (TLS_ERR_LEN) says which file and why. */
int tls_ctx_new(const struct tls_config *cfg, struct tls_ctx **ret, char *err);
struct tls_ctx *tls_ctx_free(struct tls_ctx *ctx);
/* Re-read the CRL file (SIGHUP); on failure the previous CRL stays in force. */
int tls_ctx_reload_crl(struct tls_ctx *ctx, char *err);
/* Our own certificate's identity. */
const struct tls_peer *tls_ctx_self(const struct tls_ctx *ctx);

struct tls_conn_ops {
	/* Ciphertext to put on the wire; negative errno to fail the connection. */
	int (*send)(void *ud, const uint8_t *data, size_t len);
	/* Decrypted application bytes; negative return stops reading (connection going away). */
	int (*on_plain)(void *ud, const uint8_t *data, size_t len);
};

int tls_conn_new(struct tls_ctx *ctx, const struct tls_conn_ops *ops, void *ud,
		 struct tls_conn **ret);
struct tls_conn *tls_conn_free(struct tls_conn *c);
/* Client: send the ClientHello.  Servers wait for input. */
int tls_conn_start(struct tls_conn *c);
/*
 * Feed ciphertext from the wire.  Returns 1 when the handshake completed (and
 * the peer passed every check) during this call, 0 otherwise, or a negative
 * errno when the connection must close; tls_conn_error() then says why
 * (for example "certificate revoked" with the peer's name and serial).
 * -ECONNRESET means the peer closed cleanly (close_notify).
 */
int tls_conn_feed(struct tls_conn *c, const uint8_t *data, size_t len);
/* Encrypt and send application bytes (only once established). */
int tls_conn_write(struct tls_conn *c, const void *data, size_t len);
/* Send close_notify. */
void tls_conn_shutdown(struct tls_conn *c);
int tls_conn_established(const struct tls_conn *c);
/* The verified peer; NULL until established. */
const struct tls_peer *tls_conn_peer(const struct tls_conn *c);
const char *tls_conn_error(const struct tls_conn *c);

/* Identity of a certificate (role from the SAN URI, node id from the key); -EINVAL + err. */
struct x509_st;
int tls_cert_identity(struct x509_st *cert, struct tls_peer *ret, char *err);

#endif /* AICN_TLS_H */
