/* fuzz_tls_records.c -- libFuzzer: lib/tls.c's own TLS 1.3 records, fed what a hostile client may send. */
/*
 * Once, at start: an Ed25519 CA and two certificates made in memory, and one real
 * handshake per TLS 1.3 suite between our server (lib/tls.c) and an OpenSSL client,
 * after which the server runs its own record layer.  Per input, a fresh server
 * connection with those traffic secrets (or, for byte 0 in 0x80-0x83, a whole new
 * handshake with the stream right behind the client's Finished, as a client's first
 * message often is), then a stream built from the input:
 *
 *   byte 0      suite (% 3); 0x80-0x83: after a new handshake
 *   byte 1      the stream is fed in pieces of this many bytes (0: all at once)
 *   then items  op (1 byte), length (2 bytes, big-endian), that many bytes:
 *               op even: an inner plaintext (content, type, zero padding) sealed with
 *                        the client's real key, so the MAC holds and the server parses it;
 *               op odd:  raw bytes put on the wire as they are.
 *
 * The server echoes what it receives; a client-side reader decrypts everything it
 * sends.  Checked on every input, beside ASan/UBSan: the server accepts exactly the
 * records RFC 8446 allows (a model below), delivers exactly their application bytes,
 * derives the same next keys after a KeyUpdate, answers a requested KeyUpdate, and
 * every byte it sends (echo, KeyUpdate, alert) is a valid record under its keys.
 */
#include <aicn/hash.h>
#include <aicn/key.h>
#include <aicn/tls.h>

#include "../../lib/tls_int.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/kdf.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NSUITES 3

static const char *const suites[NSUITES] = {"TLS_AES_256_GCM_SHA384", "TLS_AES_128_GCM_SHA256",
					    "TLS_CHACHA20_POLY1305_SHA256"};
static struct tls_ctx *sctx;
static SSL_CTX *cctx;		      /* the OpenSSL client's */
static struct tls_conn *tpl[NSUITES]; /* a server right after its handshake, per suite */

#define FAIL(...)                                                                                  \
	do {                                                                                       \
		fprintf(stderr, "fuzz_tls_records: " __VA_ARGS__);                                 \
		fputc('\n', stderr);                                                               \
		abort();                                                                           \
	} while (0)

/* ---- growable byte buffers ---- */

struct buf {
	uint8_t *p;
	size_t len, cap;
};

static void buf_add(struct buf *b, const uint8_t *data, size_t len)
{
	if (b->len + len > b->cap) {
		size_t cap = b->cap * 2 > b->len + len ? b->cap * 2 : b->len + len + 256;

		b->p = realloc(b->p, cap);
		if (!b->p)
			FAIL("out of memory");
		b->cap = cap;
	}
	if (len)
		memcpy(b->p + b->len, data, len);
	b->len += len;
}

/* Whether b's bytes begin a's. */
static bool starts_with(const struct buf *a, const struct buf *b)
{
	return b->len <= a->len && (!b->len || memcmp(a->p, b->p, b->len) == 0);
}

/* ---- certificates and the handshakes, once ---- */

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX v3;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, issuer, cert, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	ok = ext && X509_add_ext(cert, ext, -1) == 1;
	X509_EXTENSION_free(ext);
	return ok;
}

/* A certificate for key, signed by ca_key (issuer NULL: self-signed CA). */
static X509 *make_cert(EVP_PKEY *key, EVP_PKEY *ca_key, X509 *issuer, const char *cn,
		       const char *role)
{
	X509 *c = X509_new();
	X509_NAME *n = X509_NAME_new();
	char san[64];
	int ok;

	snprintf(san, sizeof(san), "URI:%s%s", ROLE_URI_PREFIX, role ? role : "");
	ok = c && n && X509_set_version(c, 2) == 1 &&
	     ASN1_INTEGER_set(X509_get_serialNumber(c), issuer ? 2 : 1) == 1 &&
	     X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
					0) == 1 &&
	     X509_set_subject_name(c, n) == 1 &&
	     X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer) : n) == 1 &&
	     X509_gmtime_adj(X509_getm_notBefore(c), -300) &&
	     X509_gmtime_adj(X509_getm_notAfter(c), 86400) && X509_set_pubkey(c, key) == 1;
	if (ok && !issuer)
		ok = add_ext(c, c, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") &&
		     add_ext(c, c, NID_key_usage, "critical,keyCertSign,cRLSign");
	else if (ok)
		ok = add_ext(c, issuer, NID_basic_constraints, "critical,CA:FALSE") &&
		     add_ext(c, issuer, NID_key_usage, "critical,digitalSignature") &&
		     add_ext(c, issuer, NID_subject_alt_name, san);
	if (ok)
		ok = X509_sign(c, ca_key, NULL) > 0;
	X509_NAME_free(n);
	if (!ok)
		FAIL("cannot make the certificate of %s", cn);
	return c;
}

static void write_cert(const char *path, X509 *cert)
{
	FILE *f = fopen(path, "we");

	if (!f || PEM_write_X509(f, cert) != 1 || fclose(f) != 0)
		FAIL("cannot write %s", path);
}

static struct buf hs_to_cli; /* the server's handshake flight */

static int hs_send(void *ud, const uint8_t *data, size_t len)
{
	(void)ud;
	buf_add(&hs_to_cli, data, len);
	return 0;
}

static int hs_plain(void *ud, const uint8_t *data, size_t len)
{
	(void)ud;
	(void)data;
	(void)len;
	return 0;
}

static const struct tls_conn_ops hs_ops = {.send = hs_send, .on_plain = hs_plain};

/* The OpenSSL client's application traffic secrets, from its key log. */
static struct {
	uint8_t cts[EVP_MAX_MD_SIZE], sts[EVP_MAX_MD_SIZE];
	size_t cts_len, sts_len;
} cli_keys;

static void cli_keylog(const SSL *ssl, const char *line)
{
	const char *hex = strrchr(line, ' ');
	size_t n = hex ? strlen(hex + 1) : 0;

	(void)ssl;
	if (!n || n % 2 || n / 2 > EVP_MAX_MD_SIZE)
		return;
	if (!strncmp(line, "CLIENT_TRAFFIC_SECRET_0 ", 24) &&
	    hex_decode(hex + 1, n, cli_keys.cts, n / 2) == 0)
		cli_keys.cts_len = n / 2;
	else if (!strncmp(line, "SERVER_TRAFFIC_SECRET_0 ", 24) &&
		 hex_decode(hex + 1, n, cli_keys.sts, n / 2) == 0)
		cli_keys.sts_len = n / 2;
}

/*
 * Our server srv (made by the caller; what it sends must go to hs_to_cli) and an OpenSSL
 * client restricted to suite, until the client has finished: its last flight (Certificate,
 * CertificateVerify, Finished) is appended to flight for the caller to feed, and its
 * traffic secrets are in cli_keys.
 */
static SSL *handshake_start(const char *suite, struct tls_conn *srv, struct buf *flight)
{
	BIO *to_cli = BIO_new(BIO_s_mem()), *from_cli = BIO_new(BIO_s_mem());
	SSL *cli = SSL_new(cctx);
	uint8_t b[16384];
	int n;

	if (!cli || !to_cli || !from_cli || SSL_set_ciphersuites(cli, suite) != 1)
		FAIL("cannot set up the %s client", suite);
	SSL_set_bio(cli, to_cli, from_cli);
	SSL_set_connect_state(cli);
	cli_keys.cts_len = cli_keys.sts_len = 0;
	hs_to_cli.len = 0;
	for (int i = 0; i < 4; i++) {
		if (SSL_do_handshake(cli) == 1) {
			while ((n = BIO_read(from_cli, b, sizeof(b))) > 0)
				buf_add(flight, b, (size_t)n);
			if (!cli_keys.cts_len || cli_keys.cts_len != cli_keys.sts_len)
				FAIL("%s: no client traffic secrets", suite);
			return cli;
		}
		while ((n = BIO_read(from_cli, b, sizeof(b))) > 0)
			if (tls_conn_feed(srv, b, (size_t)n) < 0)
				FAIL("%s handshake: %s", suite, tls_conn_error(srv));
		BIO_write(to_cli, hs_to_cli.p, (int)hs_to_cli.len);
		hs_to_cli.len = 0;
	}
	FAIL("%s: the client did not finish its handshake", suite);
}

/* One whole handshake of our server with the OpenSSL client restricted to suite. */
static struct tls_conn *handshake(const char *suite)
{
	struct tls_conn *srv = NULL;
	struct buf flight = {0};
	SSL *cli;

	if (tls_conn_new(sctx, &hs_ops, NULL, &srv) < 0)
		FAIL("cannot set up the %s server", suite);
	cli = handshake_start(suite, srv, &flight);
	if (tls_conn_feed(srv, flight.p, flight.len) != 1 || srv->ssl)
		FAIL("%s: the server did not take its records over", suite);
	SSL_free(cli);
	free(flight.p);
	return srv;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char dir[] = "/tmp/aicn-fuzz-tls.XXXXXX", ca_path[64], cert_path[64], key_path[64];
	struct tls_config cfg = {.server = 1, .peer_roles = ROLE_AGENT};
	EVP_PKEY *ca_key, *srv_key, *cli_key;
	X509 *ca, *srv_cert, *cli_cert;
	char err[TLS_ERR_LEN];

	(void)argc;
	(void)argv;
	if (!mkdtemp(dir) || key_generate(&ca_key) < 0 || key_generate(&srv_key) < 0 ||
	    key_generate(&cli_key) < 0)
		FAIL("cannot make keys");
	ca = make_cert(ca_key, ca_key, NULL, "fuzz CA", NULL);
	srv_cert = make_cert(srv_key, ca_key, ca, "coordinator", "coordinator");
	cli_cert = make_cert(cli_key, ca_key, ca, "agent", "agent");
	snprintf(ca_path, sizeof(ca_path), "%s/ca.pem", dir);
	snprintf(cert_path, sizeof(cert_path), "%s/cert.pem", dir);
	snprintf(key_path, sizeof(key_path), "%s/key.pem", dir);
	write_cert(ca_path, ca);
	write_cert(cert_path, srv_cert);
	if (key_save_private(srv_key, key_path) < 0)
		FAIL("cannot write %s", key_path);
	cfg.ca_file = ca_path;
	cfg.cert_file = cert_path;
	cfg.key_file = key_path;
	if (tls_ctx_new(&cfg, &sctx, err) < 0)
		FAIL("server context: %s", err);
	unlink(ca_path);
	unlink(cert_path);
	unlink(key_path);
	rmdir(dir);

	cctx = SSL_CTX_new(TLS_client_method());
	if (!cctx || SSL_CTX_set_min_proto_version(cctx, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_use_certificate(cctx, cli_cert) != 1 ||
	    SSL_CTX_use_PrivateKey(cctx, cli_key) != 1 ||
	    X509_STORE_add_cert(SSL_CTX_get_cert_store(cctx), ca) != 1)
		FAIL("client context");
	SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_keylog_callback(cctx, cli_keylog);
	for (int i = 0; i < NSUITES; i++)
		tpl[i] = handshake(suites[i]);
	X509_free(ca);
	X509_free(srv_cert);
	X509_free(cli_cert);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(srv_key);
	EVP_PKEY_free(cli_key);
	ERR_clear_error();
	return 0;
}

/* ---- per input ---- */

struct run {
	struct tls_conn *srv, *rdr; /* the server; the client's reader of what it sends */
	struct buf got, echo;	    /* what the server received; what the reader decrypted */
	int rdr_sent;		    /* records the reader sent: it refused the server's bytes */
	bool handshaking;	    /* the server's bytes go to the OpenSSL client meanwhile */
};

/* A connection past its handshake from a template's suite and the given secrets. */
static struct tls_conn *conn_from(const struct tls_conn *t, const uint8_t *rd_secret,
				  const uint8_t *wr_secret, const struct tls_conn_ops *ops,
				  void *ud)
{
	struct tls_conn *c = calloc(1, sizeof(*c));

	if (!c)
		FAIL("out of memory");
	c->ctx = t->ctx;
	c->ops = ops;
	c->ud = ud;
	c->established = c->have_peer = true;
	c->peer = t->peer;
	c->cipher = t->cipher;
	c->md = t->md;
	c->secret_len = t->secret_len;
	memcpy(c->rd.secret, rd_secret, t->secret_len);
	memcpy(c->wr.secret, wr_secret, t->secret_len);
	c->rd.have_secret = c->wr.have_secret = true;
	if (tls_rec_start(c) < 0)
		FAIL("cannot start records");
	return c;
}

static int rdr_send(void *ud, const uint8_t *data, size_t len)
{
	struct run *r = ud;

	(void)data;
	(void)len;
	r->rdr_sent++;
	return 0;
}

static int rdr_plain(void *ud, const uint8_t *data, size_t len)
{
	struct run *r = ud;

	buf_add(&r->echo, data, len);
	return 0;
}

static const struct tls_conn_ops rdr_ops = {.send = rdr_send, .on_plain = rdr_plain};

/* Every record the server sends goes straight to the client's reader. */
static int srv_send(void *ud, const uint8_t *data, size_t len)
{
	struct run *r = ud;

	if (r->handshaking) {
		buf_add(&hs_to_cli, data, len);
		return 0;
	}
	if (r->rdr->failed)
		FAIL("the server sent a record after its alert or close_notify");
	r->rdr->key_updates = KEY_UPDATE_BUDGET; /* the server's KeyUpdates answer ours */
	(void)tls_conn_feed(r->rdr, data, len);
	if (r->rdr_sent)
		FAIL("the client cannot read the server's record: %s", tls_conn_error(r->rdr));
	return 0;
}

static int srv_plain(void *ud, const uint8_t *data, size_t len)
{
	struct run *r = ud;

	buf_add(&r->got, data, len);
	return tls_conn_write(r->srv, data, len);
}

static const struct tls_conn_ops srv_ops = {.send = srv_send, .on_plain = srv_plain};

/* HKDF-Expand-Label(secret, "traffic upd", "", len): the client's next secret (RFC 8446 7.2). */
static void next_secret(const struct tls_conn *t, uint8_t *secret)
{
	static const char label[] = "tls13 traffic upd";
	uint8_t info[4 + sizeof(label)], out[EVP_MAX_MD_SIZE];
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, OSSL_KDF_NAME_HKDF, NULL);
	EVP_KDF_CTX *kc = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
	OSSL_PARAM params[5];
	size_t n = 0;

	info[n++] = 0;
	info[n++] = t->secret_len;
	info[n++] = sizeof(label) - 1;
	memcpy(info + n, label, sizeof(label) - 1);
	n += sizeof(label) - 1;
	info[n++] = 0;
	params[0] = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
	params[1] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)t->md, 0);
	params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, secret, t->secret_len);
	params[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, n);
	params[4] = OSSL_PARAM_construct_end();
	if (!kc || EVP_KDF_derive(kc, out, t->secret_len, params) != 1)
		FAIL("HKDF");
	memcpy(secret, out, t->secret_len);
	EVP_KDF_CTX_free(kc);
	EVP_KDF_free(kdf);
}

/* Seal an inner plaintext (TLSInnerPlaintext as it stands) with the writer's current key. */
static void seal(struct tls_conn *w, const uint8_t *inner, size_t n, struct buf *out)
{
	uint8_t hdr[REC_HDR], nonce[REC_IV], tag[REC_TAG];
	size_t body = n + REC_TAG, at;
	int o, f;

	hdr[0] = CT_APP;
	hdr[1] = hdr[2] = 3;
	hdr[3] = (uint8_t)(body >> 8);
	hdr[4] = (uint8_t)body;
	buf_add(out, hdr, REC_HDR);
	at = out->len;
	buf_add(out, inner, n);
	memcpy(nonce, w->wr.iv, REC_IV);
	for (int i = 0; i < 8; i++)
		nonce[REC_IV - 1 - i] ^= (uint8_t)(w->wr.seq >> (8 * i));
	if (EVP_EncryptInit_ex2(w->wr.aead, NULL, NULL, nonce, NULL) != 1 ||
	    EVP_EncryptUpdate(w->wr.aead, NULL, &o, hdr, REC_HDR) != 1 ||
	    EVP_EncryptUpdate(w->wr.aead, out->p + at, &o, out->p + at, (int)n) != 1 ||
	    EVP_EncryptFinal_ex(w->wr.aead, out->p + at + o, &f) != 1 ||
	    EVP_CIPHER_CTX_ctrl(w->wr.aead, EVP_CTRL_AEAD_GET_TAG, REC_TAG, tag) != 1)
		FAIL("seal");
	buf_add(out, tag, REC_TAG);
	w->wr.seq++;
}

/* What RFC 8446 makes of one record the server decrypts, as the server must judge it. */
enum verdict {
	V_OK,
	V_KEY_UPDATE,
	V_CLOSED,
	V_ALERT,
	V_REFUSED
};

static enum verdict judge(const uint8_t *inner, size_t n, int *budget, struct buf *want)
{
	size_t len = n;
	uint8_t type;

	if (n + REC_TAG > REC_MAX_BODY || n + REC_TAG < 1 + REC_TAG)
		return V_REFUSED;
	while (len && inner[len - 1] == 0)
		len--;
	if (!len)
		return V_REFUSED;
	type = inner[--len];
	if (len > REC_MAX_PLAIN)
		return V_REFUSED;
	switch (type) {
	case CT_APP:
		*budget = KEY_UPDATE_BUDGET;
		buf_add(want, inner, len);
		return V_OK;
	case CT_HANDSHAKE:
		if (len != 5 || inner[0] != HS_KEY_UPDATE || inner[1] || inner[2] ||
		    inner[3] != 1 || inner[4] > 1 || *budget == 0)
			return V_REFUSED;
		--*budget;
		return V_KEY_UPDATE;
	case CT_ALERT:
		if (len != 2)
			return V_REFUSED;
		if (inner[1] == 90) /* user_canceled: a close_notify follows */
			return V_OK;
		return inner[1] == 0 ? V_CLOSED : V_ALERT; /* no alert back to an alert */
	default:
		return V_REFUSED;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct run r = {0};
	struct buf wire = {0}, want = {0};
	const struct tls_conn *t;
	struct tls_conn *w;
	uint8_t cli_secret[EVP_MAX_MD_SIZE], rd0[EVP_MAX_MD_SIZE], wr0[EVP_MAX_MD_SIZE];
	SSL *cli = NULL;
	unsigned suite;
	bool hs;
	enum verdict v = V_OK;
	int budget = KEY_UPDATE_BUDGET, key_updates = 0, requested = 0;
	size_t piece, off, raw = 0;

	if (size < 2)
		return 0;
	suite = data[0] % NSUITES;
	t = tpl[suite];
	hs = (data[0] & 0xfc) == 0x80; /* rare: a handshake costs a hundred inputs */
	piece = data[1];
	data += 2;
	size -= 2;
	if (hs) { /* a whole handshake; the stream follows the client's Finished */
		if (tls_conn_new(sctx, &srv_ops, &r, &r.srv) < 0)
			FAIL("out of memory");
		r.handshaking = true;
		cli = handshake_start(suites[suite], r.srv, &wire);
		r.handshaking = false;
		memcpy(rd0, cli_keys.cts, t->secret_len);
		memcpy(wr0, cli_keys.sts, t->secret_len);
	} else { /* the records of a server past its handshake */
		memcpy(rd0, t->rd.secret, t->secret_len);
		memcpy(wr0, t->wr.secret, t->secret_len);
		r.srv = conn_from(t, rd0, wr0, &srv_ops, &r);
	}
	memcpy(cli_secret, rd0, t->secret_len);
	r.rdr = conn_from(t, wr0, rd0, &rdr_ops, &r);
	w = conn_from(t, wr0, cli_secret, &rdr_ops, &r);

	/* the client's stream, and what the server must make of it */
	for (off = 0; off + 3 <= size;) {
		uint8_t op = data[off];
		size_t len = (size_t)data[off + 1] << 8 | data[off + 2];

		off += 3;
		if (len > size - off)
			len = size - off;
		if (op & 1) {
			buf_add(&wire, data + off, len);
			raw += len;
		} else {
			enum verdict rv;

			if (len + REC_TAG > 0xffff)
				len = 0xffff - REC_TAG;
			seal(w, data + off, len, &wire);
			rv = raw || v != V_OK ? V_OK : judge(data + off, len, &budget, &want);
			if (rv == V_KEY_UPDATE) { /* our keys change after this record */
				next_secret(t, cli_secret);
				tls_conn_free(w);
				w = conn_from(t, wr0, cli_secret, &rdr_ops, &r);
				key_updates++;
				requested += data[off + 4] == 1;
			} else if (rv != V_OK) {
				v = rv;
			}
		}
		off += len;
	}

	/* fed in pieces, as a socket might deliver it */
	for (off = 0; off < wire.len;) {
		size_t n = piece && piece < wire.len - off ? piece : wire.len - off;

		if (tls_conn_feed(r.srv, wire.p + off, n) < 0)
			break;
		off += n;
	}

	if (hs && (!tls_conn_established(r.srv) || r.srv->ssl))
		FAIL("the handshake did not end with our records: %s", tls_conn_error(r.srv));
	if (!raw && v == V_OK) {
		if (r.srv->failed || r.srv->part_len)
			FAIL("a valid stream was refused: %s", tls_conn_error(r.srv));
		if (memcmp(r.srv->rd.secret, cli_secret, t->secret_len) != 0)
			FAIL("the server's keys after %d KeyUpdates differ from the client's",
			     key_updates);
		if (requested && !memcmp(r.srv->wr.secret, wr0, t->secret_len))
			FAIL("a requested KeyUpdate was not answered");
	} else if (!raw && !r.srv->failed) {
		FAIL("an invalid record was accepted");
	} else if (raw && !r.srv->failed && !r.srv->part_len) {
		FAIL("raw bytes passed as records");
	}
	if (!starts_with(&want, &r.got))
		FAIL("delivered bytes that were never sent");
	if (!raw && r.got.len != want.len)
		FAIL("delivered %zu bytes, %zu sent", r.got.len, want.len);
	if (r.srv->failed && !strcmp(tls_conn_error(r.srv), "no error"))
		FAIL("refused without a reason");
	tls_conn_shutdown(r.srv);
	if (r.echo.len != r.got.len || !starts_with(&r.got, &r.echo))
		FAIL("echo of %zu bytes read back as %zu", r.got.len, r.echo.len);
	if (!r.rdr->failed && v != V_CLOSED && v != V_ALERT)
		FAIL("no alert or close_notify reached the client");

	SSL_free(cli);
	tls_conn_free(w);
	tls_conn_free(r.srv);
	tls_conn_free(r.rdr);
	free(r.got.p);
	free(r.echo.p);
	free(wire.p);
	free(want.p);
	return 0;
}
