/* tls.c -- TLS 1.3 mutual authentication on a memory BIO the event loop feeds and drains. */
#include <aicn/compiler.h>
#include <aicn/key.h>
#include <aicn/tls.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

struct tls_ctx {
	SSL_CTX *ssl;
	struct tls_config cfg;
	char *ca_file, *crl_file; /* owned copies of cfg's paths */
	struct tls_peer self;
};

struct tls_conn {
	SSL *ssl;
	struct tls_ctx *ctx;
	const struct tls_conn_ops *ops;
	void *ud;
	const uint8_t *in; /* ciphertext being fed, consumed by the BIO */
	size_t in_len;
	bool established;
	bool have_peer;
	bool failed;
	struct tls_peer peer;
	char err[TLS_ERR_LEN];
};

static const char *const role_names[] = {"agent", "renter", "auditor", "coordinator"};

const char *role_name(enum aicn_role role)
{
	for (unsigned i = 0; i < ARRAY_SIZE(role_names); i++)
		if (role == (enum aicn_role)(1u << i))
			return role_names[i];
	return "none";
}

int role_parse(const char *s, enum aicn_role *ret)
{
	for (unsigned i = 0; i < ARRAY_SIZE(role_names); i++)
		if (s && strcmp(s, role_names[i]) == 0) {
			*ret = (enum aicn_role)(1u << i);
			return 0;
		}
	return -EINVAL;
}

static void set_err(char *err, const char *fmt, ...) _printf_(2, 3);
static void set_err(char *err, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return;
	va_start(ap, fmt);
	vsnprintf(err, TLS_ERR_LEN, fmt, ap);
	va_end(ap);
}

/* The reason of the most recent OpenSSL error, or "unknown error". */
static const char *ossl_reason(void)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;

	return r ? r : "unknown error";
}

/* ---- the BIO: reads from the bytes being fed, writes straight to the socket queue ---- */

static BIO_METHOD *bio_method;
static int conn_idx = -1;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static int bio_write(BIO *b, const char *data, int len)
{
	struct tls_conn *c = BIO_get_data(b);

	BIO_clear_retry_flags(b);
	if (len <= 0)
		return 0;
	if (c->ops->send(c->ud, (const uint8_t *)data, (size_t)len) < 0)
		return -1;
	return len;
}

static int bio_read(BIO *b, char *out, int len)
{
	struct tls_conn *c = BIO_get_data(b);
	size_t n;

	BIO_clear_retry_flags(b);
	if (len <= 0)
		return 0;
	if (c->in_len == 0) {
		BIO_set_retry_read(b);
		return -1;
	}
	n = MIN((size_t)len, c->in_len);
	memcpy(out, c->in, n);
	c->in += n;
	c->in_len -= n;
	return (int)n;
}

static long bio_ctrl(BIO *b, int cmd, long num _unused_, void *ptr _unused_)
{
	struct tls_conn *c = BIO_get_data(b);

	switch (cmd) {
	case BIO_CTRL_FLUSH:
		return 1;
	case BIO_CTRL_PENDING:
		return c ? (long)c->in_len : 0;
	case BIO_CTRL_WPENDING:
		return 0;
	default:
		return 0;
	}
}

static int bio_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static void init_once(void)
{
	bio_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "aicn-loop");
	if (bio_method) {
		BIO_meth_set_write(bio_method, bio_write);
		BIO_meth_set_read(bio_method, bio_read);
		BIO_meth_set_ctrl(bio_method, bio_ctrl);
		BIO_meth_set_create(bio_method, bio_create);
	}
	conn_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

/* ---- certificate identity ---- */

static void cert_label(X509 *cert, char *name, size_t namelen, char *serial, size_t seriallen)
{
	const ASN1_INTEGER *sn;
	BIGNUM *bn;
	char *hex = NULL;

	snprintf(name, namelen, "?");
	snprintf(serial, seriallen, "?");
	if (!cert)
		return;
	if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, name,
				      (int)namelen) < 0)
		snprintf(name, namelen, "?");
	sn = X509_get0_serialNumber(cert);
	bn = sn ? ASN1_INTEGER_to_BN(sn, NULL) : NULL;
	if (bn)
		hex = BN_bn2hex(bn);
	if (hex)
		snprintf(serial, seriallen, "%s", hex);
	OPENSSL_free(hex);
	BN_free(bn);
}

int tls_cert_identity(X509 *cert, struct tls_peer *ret, char *err)
{
	struct tls_peer p = {0};
	GENERAL_NAMES *sans;
	EVP_PKEY *pk;
	struct tm tm;
	int nroles = 0, r;

	cert_label(cert, p.name, sizeof(p.name), p.serial, sizeof(p.serial));
	pk = X509_get0_pubkey(cert);
	if (!pk || EVP_PKEY_get_id(pk) != EVP_PKEY_ED25519) {
		set_err(err, "certificate of %s (serial %s) does not hold an Ed25519 key", p.name,
			p.serial);
		return -EINVAL;
	}
	r = key_raw_public(pk, p.pubkey);
	if (r >= 0)
		r = key_node_id(pk, p.node_id);
	if (r < 0) {
		set_err(err, "cannot read the key of %s", p.name);
		return -EINVAL;
	}
	sans = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans); i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);
		const unsigned char *s;
		char buf[64];
		int len;
		enum aicn_role role;

		if (gn->type != GEN_URI)
			continue;
		s = ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier);
		len = ASN1_STRING_length(gn->d.uniformResourceIdentifier);
		if (len <= (int)strlen(ROLE_URI_PREFIX) || len >= (int)sizeof(buf) ||
		    memcmp(s, ROLE_URI_PREFIX, strlen(ROLE_URI_PREFIX)) != 0)
			continue;
		memcpy(buf, s, (size_t)len);
		buf[len] = '\0';
		if (memchr(buf, '\0', (size_t)len) ||
		    role_parse(buf + strlen(ROLE_URI_PREFIX), &role) < 0) {
			GENERAL_NAMES_free(sans);
			set_err(err, "certificate of %s (serial %s) names an unknown role", p.name,
				p.serial);
			return -EINVAL;
		}
		p.role = role;
		nroles++;
	}
	GENERAL_NAMES_free(sans);
	if (nroles != 1) {
		set_err(err, "certificate of %s (serial %s) must carry exactly one %s<role> URI",
			p.name, p.serial, ROLE_URI_PREFIX);
		return -EINVAL;
	}
	if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) == 1)
		p.not_after = (int64_t)timegm(&tm);
	*ret = p;
	return 0;
}

static const char *verify_hint(int e)
{
	switch (e) {
	case X509_V_ERR_CERT_HAS_EXPIRED:
		return "certificate expired";
	case X509_V_ERR_CERT_NOT_YET_VALID:
		return "certificate not yet valid";
	case X509_V_ERR_CERT_REVOKED:
		return "certificate revoked";
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_CERT_SIGNATURE_FAILURE:
		return "not issued by this network's CA";
	case X509_V_ERR_UNABLE_TO_GET_CRL:
		return "no CRL for the issuer";
	case X509_V_ERR_CRL_HAS_EXPIRED:
		return "CRL expired (reissue it with 'aicnctl ca crl')";
	default:
		return NULL;
	}
}

static int verify_cb(int ok, X509_STORE_CTX *xs)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct tls_conn *c = ssl ? SSL_get_ex_data(ssl, conn_idx) : NULL;
	X509 *cert = X509_STORE_CTX_get_current_cert(xs);
	char name[128], serial[48];

	if (!c)
		return 0;
	if (!ok) {
		int e = X509_STORE_CTX_get_error(xs);
		const char *hint = verify_hint(e);

		if (!c->err[0]) {
			const char *what = X509_verify_cert_error_string(e);

			cert_label(cert, name, sizeof(name), serial, sizeof(serial));
			if (hint && strcmp(hint, what) != 0)
				set_err(c->err, "refused certificate CN=%s serial=%s: %s (%s)",
					name, serial, hint, what);
			else
				set_err(c->err, "refused certificate CN=%s serial=%s: %s", name,
					serial, what);
		}
		return 0;
	}
	if (X509_STORE_CTX_get_error_depth(xs) == 0) {
		struct tls_peer p;
		char err[TLS_ERR_LEN];

		if (tls_cert_identity(cert, &p, err) < 0) {
			set_err(c->err, "refused %s", err);
			X509_STORE_CTX_set_error(xs, X509_V_ERR_APPLICATION_VERIFICATION);
			return 0;
		}
		if (!(p.role & c->ctx->cfg.peer_roles)) {
			set_err(c->err,
				"refused certificate CN=%s serial=%s: role %s not accepted here",
				p.name, p.serial, role_name(p.role));
			X509_STORE_CTX_set_error(xs, X509_V_ERR_APPLICATION_VERIFICATION);
			return 0;
		}
		c->peer = p;
		c->have_peer = true;
	}
	return 1;
}

/* ---- context ---- */

static X509_STORE *build_store(const char *ca_file, const char *crl_file, char *err)
{
	X509_STORE *st = X509_STORE_new();
	BIO *b = NULL;
	int ncrl = 0;

	if (!st) {
		set_err(err, "out of memory");
		return NULL;
	}
	if (X509_STORE_load_file(st, ca_file) != 1) {
		set_err(err, "cannot load CA certificate %s: %s", ca_file, ossl_reason());
		goto fail;
	}
	if (crl_file) {
		X509_CRL *crl;

		b = BIO_new_file(crl_file, "r");
		if (!b) {
			set_err(err, "cannot open CRL %s: %s", crl_file, ossl_reason());
			goto fail;
		}
		while ((crl = PEM_read_bio_X509_CRL(b, NULL, NULL, NULL))) {
			int r = X509_STORE_add_crl(st, crl);

			X509_CRL_free(crl);
			if (r != 1) {
				set_err(err, "cannot use CRL %s: %s", crl_file, ossl_reason());
				goto fail;
			}
			ncrl++;
		}
		ERR_clear_error(); /* the end of the PEM file */
		if (ncrl == 0) {
			set_err(err, "%s holds no PEM CRL", crl_file);
			goto fail;
		}
		X509_STORE_set_flags(st, X509_V_FLAG_CRL_CHECK);
		BIO_free(b);
	}
	return st;
fail:
	BIO_free(b);
	X509_STORE_free(st);
	return NULL;
}

int tls_ctx_new(const struct tls_config *cfg, struct tls_ctx **ret, char *err)
{
	struct tls_ctx *ctx;
	X509_STORE *st;
	EVP_PKEY *pk;
	X509 *cert;

	pthread_once(&once, init_once);
	if (!bio_method || conn_idx < 0) {
		set_err(err, "OpenSSL initialisation failed");
		return -ENOMEM;
	}
	if (!cfg->ca_file || !cfg->cert_file || !cfg->key_file) {
		set_err(err, "CA, certificate and key files are all required");
		return -EINVAL;
	}
	ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return -ENOMEM;
	ctx->cfg = *cfg;
	ctx->ca_file = strdup(cfg->ca_file);
	ctx->crl_file = cfg->crl_file ? strdup(cfg->crl_file) : NULL;
	ctx->ssl = SSL_CTX_new(cfg->server ? TLS_server_method() : TLS_client_method());
	if (!ctx->ca_file || (cfg->crl_file && !ctx->crl_file) || !ctx->ssl) {
		set_err(err, "out of memory");
		tls_ctx_free(ctx);
		return -ENOMEM;
	}
	ctx->cfg.ca_file = ctx->ca_file;
	ctx->cfg.crl_file = ctx->crl_file;
	ctx->cfg.cert_file = ctx->cfg.key_file = NULL;

	/* TLS 1.3 only: its cipher suites are all AEAD; Ed25519 signatures only. */
	if (SSL_CTX_set_min_proto_version(ctx->ssl, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(ctx->ssl, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_set_ciphersuites(ctx->ssl,
				     "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:"
				     "TLS_AES_128_GCM_SHA256") != 1 ||
	    SSL_CTX_set1_groups_list(ctx->ssl, "X25519:P-256") != 1 ||
	    SSL_CTX_set1_sigalgs_list(ctx->ssl, "ed25519") != 1) {
		set_err(err, "cannot restrict TLS parameters: %s", ossl_reason());
		tls_ctx_free(ctx);
		return -EINVAL;
	}
	/* No resumption: every connection is checked against the current CRL. */
	SSL_CTX_set_options(ctx->ssl, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION |
					      SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_num_tickets(ctx->ssl, 0);
	SSL_CTX_set_session_cache_mode(ctx->ssl, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_mode(ctx->ssl, SSL_MODE_RELEASE_BUFFERS);

	if (SSL_CTX_use_certificate_chain_file(ctx->ssl, cfg->cert_file) != 1) {
		set_err(err, "cannot load certificate %s: %s", cfg->cert_file, ossl_reason());
		tls_ctx_free(ctx);
		return -EINVAL;
	}
	if (key_load_private(cfg->key_file, &pk) < 0) {
		set_err(err, "cannot load Ed25519 private key %s (PEM, mode 0600)", cfg->key_file);
		tls_ctx_free(ctx);
		return -EINVAL;
	}
	if (SSL_CTX_use_PrivateKey(ctx->ssl, pk) != 1 || SSL_CTX_check_private_key(ctx->ssl) != 1) {
		EVP_PKEY_free(pk);
		set_err(err, "key %s does not match certificate %s", cfg->key_file, cfg->cert_file);
		tls_ctx_free(ctx);
		return -EINVAL;
	}
	EVP_PKEY_free(pk);
	cert = SSL_CTX_get0_certificate(ctx->ssl);
	if (tls_cert_identity(cert, &ctx->self, err) < 0) {
		tls_ctx_free(ctx);
		return -EINVAL;
	}
	st = build_store(ctx->ca_file, ctx->crl_file, err);
	if (!st) {
		tls_ctx_free(ctx);
		return -EINVAL;
	}
	SSL_CTX_set_cert_store(ctx->ssl, st);
	if (cfg->server) { /* name the network CA in the CertificateRequest */
		STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ctx->ca_file);

		if (names)
			SSL_CTX_set_client_CA_list(ctx->ssl, names);
	}
	SSL_CTX_set_verify(ctx->ssl, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_cb);
	SSL_CTX_set_verify_depth(ctx->ssl, 2);
	*ret = ctx;
	return 0;
}

int tls_ctx_reload_crl(struct tls_ctx *ctx, char *err)
{
	X509_STORE *st;

	if (!ctx->crl_file) {
		set_err(err, "no CRL file configured");
		return -ENOENT;
	}
	st = build_store(ctx->ca_file, ctx->crl_file, err);
	if (!st)
		return -EINVAL;
	SSL_CTX_set_cert_store(ctx->ssl, st);
	return 0;
}

const struct tls_peer *tls_ctx_self(const struct tls_ctx *ctx)
{
	return &ctx->self;
}

struct tls_ctx *tls_ctx_free(struct tls_ctx *ctx)
{
	if (!ctx)
		return NULL;
	SSL_CTX_free(ctx->ssl);
	free(ctx->ca_file);
	free(ctx->crl_file);
	free(ctx);
	return NULL;
}

/* ---- connections ---- */

int tls_conn_new(struct tls_ctx *ctx, const struct tls_conn_ops *ops, void *ud,
		 struct tls_conn **ret)
{
	struct tls_conn *c = calloc(1, sizeof(*c));
	BIO *b;

	if (!c)
		return -ENOMEM;
	c->ctx = ctx;
	c->ops = ops;
	c->ud = ud;
	c->ssl = SSL_new(ctx->ssl);
	b = c->ssl ? BIO_new(bio_method) : NULL;
	if (!b) {
		SSL_free(c->ssl);
		free(c);
		return -ENOMEM;
	}
	BIO_set_data(b, c);
	SSL_set_bio(c->ssl, b, b); /* one BIO for both directions; SSL_free frees it */
	SSL_set_ex_data(c->ssl, conn_idx, c);
	if (ctx->cfg.server)
		SSL_set_accept_state(c->ssl);
	else
		SSL_set_connect_state(c->ssl);
	*ret = c;
	return 0;
}

struct tls_conn *tls_conn_free(struct tls_conn *c)
{
	if (!c)
		return NULL;
	SSL_free(c->ssl);
	free(c);
	return NULL;
}

static int conn_fail(struct tls_conn *c, int ssl_err, const char *what)
{
	unsigned long e = ERR_peek_error();

	c->failed = true;
	if (c->err[0])
		return -EPROTO;
	if (ERR_GET_LIB(e) == ERR_LIB_SSL &&
	    ERR_GET_REASON(e) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE)
		set_err(c->err, "refused: peer sent no client certificate");
	else if (ssl_err == SSL_ERROR_SYSCALL && !e)
		set_err(c->err, "%s: transport failed", what);
	else
		set_err(c->err, "%s: %s", what, ossl_reason());
	return -EPROTO;
}

int tls_conn_start(struct tls_conn *c)
{
	int r;

	ERR_clear_error();
	r = SSL_do_handshake(c->ssl);
	if (r <= 0 && SSL_get_error(c->ssl, r) != SSL_ERROR_WANT_READ)
		return conn_fail(c, SSL_get_error(c->ssl, r), "TLS handshake failed");
	return 0;
}

int tls_conn_feed(struct tls_conn *c, const uint8_t *data, size_t len)
{
	uint8_t buf[16384];
	int done = 0;

	if (c->failed)
		return -EPROTO;
	c->in = data;
	c->in_len = len;
	if (!c->established) {
		int r, e;

		ERR_clear_error();
		r = SSL_do_handshake(c->ssl);
		if (r != 1) {
			e = SSL_get_error(c->ssl, r);
			c->in_len = 0;
			if (e == SSL_ERROR_WANT_READ)
				return 0;
			return conn_fail(c, e, "TLS handshake failed");
		}
		if (!c->have_peer) { /* cannot happen with SSL_VERIFY_PEER; never trust blindly */
			c->failed = true;
			set_err(c->err, "refused: no verified peer certificate");
			return -EPROTO;
		}
		c->established = true;
		done = 1;
	}
	for (;;) {
		int n, e;

		ERR_clear_error();
		n = SSL_read(c->ssl, buf, sizeof(buf));
		if (n > 0) {
			if (c->ops->on_plain(c->ud, buf, (size_t)n) < 0) {
				c->in_len = 0;
				return -ECONNABORTED;
			}
			continue;
		}
		e = SSL_get_error(c->ssl, n);
		c->in_len = 0;
		if (e == SSL_ERROR_WANT_READ)
			return done;
		if (e == SSL_ERROR_ZERO_RETURN) {
			c->failed = true;
			set_err(c->err, "peer closed the TLS session");
			return -ECONNRESET;
		}
		return conn_fail(c, e, "TLS read failed");
	}
}

int tls_conn_write(struct tls_conn *c, const void *data, size_t len)
{
	int n, e;

	if (!c->established || c->failed)
		return -ENOTCONN;
	if (len == 0)
		return 0;
	if (len > INT32_MAX)
		return -EMSGSIZE;
	ERR_clear_error();
	n = SSL_write(c->ssl, data, (int)len);
	if (n == (int)len)
		return 0;
	e = SSL_get_error(c->ssl, n);
	return conn_fail(c, e, "TLS write failed");
}

void tls_conn_shutdown(struct tls_conn *c)
{
	if (c->established && !c->failed) {
		ERR_clear_error();
		SSL_shutdown(c->ssl);
	}
}

int tls_conn_established(const struct tls_conn *c)
{
	return c->established;
}

const struct tls_peer *tls_conn_peer(const struct tls_conn *c)
{
	return c->established ? &c->peer : NULL;
}

const char *tls_conn_error(const struct tls_conn *c)
{
	return c->err[0] ? c->err : "no error";
}
