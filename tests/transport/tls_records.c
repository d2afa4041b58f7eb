/* tls_records.c -- the server's own TLS 1.3 records after the handshake, against a plain OpenSSL client. */
/*
 * aicn-tls-records CA SERVER_CERT SERVER_KEY CLIENT_CERT CLIENT_KEY
 *
 * Our server (lib/tls.c) hands the records to its own code once the handshake is done;
 * the client here is OpenSSL's own record layer on memory BIOs.  For each TLS 1.3 suite:
 * 100 KB each way (the server's input fed in 7-byte pieces and whole), KeyUpdate with and
 * without a requested answer, close_notify both ways; then a tampered record, a
 * plaintext record, an oversized record and a KeyUpdate flood, each refused with an
 * alert the client sees.  Exit 0 when every check holds, 1 otherwise.
 */
#include <aicn/compiler.h>
#include <aicn/tls.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);            \
			fprintf(stderr, __VA_ARGS__);                                              \
			fputc('\n', stderr);                                                       \
			failures++;                                                                \
		}                                                                                  \
	} while (0)

struct pair {
	struct tls_conn *srv;
	SSL *cli;
	BIO *to_cli, *from_cli; /* the client's read and write BIOs */
	uint8_t *got;		/* plaintext the server received */
	size_t got_len, got_cap;
	int last; /* last tls_conn_feed result */
};

static int srv_send(void *ud, const uint8_t *data, size_t len)
{
	struct pair *p = ud;

	return BIO_write(p->to_cli, data, (int)len) == (int)len ? 0 : -EIO;
}

static int srv_plain(void *ud, const uint8_t *data, size_t len)
{
	struct pair *p = ud;

	if (p->got_len + len > p->got_cap) {
		size_t cap = MAX(p->got_cap * 2, p->got_len + len);
		uint8_t *g = realloc(p->got, cap);

		if (!g)
			return -ENOMEM;
		p->got = g;
		p->got_cap = cap;
	}
	memcpy(p->got + p->got_len, data, len);
	p->got_len += len;
	return 0;
}

static const struct tls_conn_ops ops = {.send = srv_send, .on_plain = srv_plain};

/* Feed the server what the client wrote, in pieces of `piece` bytes (0: all at once). */
static int pump(struct pair *p, size_t piece)
{
	uint8_t buf[65536];
	int n;

	while ((n = BIO_read(p->from_cli, buf, sizeof(buf))) > 0) {
		size_t step = piece ? piece : (size_t)n;

		for (size_t off = 0; off < (size_t)n; off += step) {
			p->last = tls_conn_feed(p->srv, buf + off, MIN(step, (size_t)n - off));
			if (p->last < 0)
				return p->last;
		}
	}
	return 0;
}

static int pair_new(struct pair *p, SSL_CTX *cctx, struct tls_ctx *sctx)
{
	int r;

	memset(p, 0, sizeof(*p));
	p->cli = SSL_new(cctx);
	p->to_cli = BIO_new(BIO_s_mem());
	p->from_cli = BIO_new(BIO_s_mem());
	if (!p->cli || !p->to_cli || !p->from_cli || tls_conn_new(sctx, &ops, p, &p->srv) < 0)
		return -ENOMEM;
	BIO_set_mem_eof_return(p->to_cli, -1);
	SSL_set_bio(p->cli, p->to_cli, p->from_cli);
	SSL_set_connect_state(p->cli);
	for (int i = 0; i < 20; i++) {
		int e;

		r = SSL_do_handshake(p->cli);
		e = r == 1 ? SSL_ERROR_NONE : SSL_get_error(p->cli, r);
		if (e != SSL_ERROR_NONE && e != SSL_ERROR_WANT_READ) {
			fprintf(stderr, "client: handshake error %d\n", e);
			ERR_print_errors_fp(stderr);
			return -EPROTO;
		}
		if (pump(p, 0) < 0) {
			fprintf(stderr, "server: %s\n", tls_conn_error(p->srv));
			return -EPROTO;
		}
		if (r == 1 && tls_conn_established(p->srv))
			return 0;
	}
	fprintf(stderr, "handshake did not finish\n");
	return -ETIMEDOUT;
}

static void pair_free(struct pair *p)
{
	tls_conn_free(p->srv);
	SSL_free(p->cli); /* frees both BIOs */
	free(p->got);
}

/* What the client reads now: up to `cap` bytes; returns the count or -SSL_get_error. */
static int cli_read(struct pair *p, uint8_t *out, size_t cap)
{
	size_t got = 0;

	while (got < cap) {
		int n = SSL_read(p->cli, out + got, (int)(cap - got));

		if (n <= 0) {
			int e = SSL_get_error(p->cli, n);

			if (e == SSL_ERROR_WANT_READ)
				break;
			return got ? (int)got : -e;
		}
		got += (size_t)n;
	}
	return (int)got;
}

static void fill(uint8_t *b, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)(i * 131 + seed + (i >> 9));
}

static void suite_checks(SSL_CTX *cctx, struct tls_ctx *sctx, const char *suite)
{
	static uint8_t big[100000], back[100000];
	struct pair p;
	int n;

	if (SSL_CTX_set_ciphersuites(cctx, suite) != 1) {
		CHECK(0, "suite %s", suite);
		return;
	}
	if (pair_new(&p, cctx, sctx) < 0) {
		CHECK(0, "%s: handshake", suite);
		pair_free(&p);
		return;
	}
	CHECK(strcmp(SSL_CIPHER_get_name(SSL_get_current_cipher(p.cli)), suite) == 0, "%s", suite);
	CHECK(tls_conn_peer(p.srv) && tls_conn_peer(p.srv)->role == ROLE_AGENT, "%s: peer", suite);

	/* 100 KB client -> server, fed in 7-byte pieces, then whole */
	fill(big, sizeof(big), 1);
	CHECK(SSL_write(p.cli, big, sizeof(big)) == (int)sizeof(big), "%s: client write", suite);
	CHECK(pump(&p, 7) == 0, "%s: pieces: %s", suite, tls_conn_error(p.srv));
	CHECK(p.got_len == sizeof(big) && !memcmp(p.got, big, sizeof(big)), "%s: %zu bytes", suite,
	      p.got_len);
	p.got_len = 0;
	CHECK(SSL_write(p.cli, big, 1) == 1 && SSL_write(p.cli, big, 300) == 300, "%s", suite);
	CHECK(pump(&p, 0) == 0 && p.got_len == 301, "%s: two records at once: %zu", suite,
	      p.got_len);

	/* 100 KB server -> client */
	fill(big, sizeof(big), 2);
	CHECK(tls_conn_write(p.srv, big, sizeof(big)) == 0, "%s: server write", suite);
	n = cli_read(&p, back, sizeof(back));
	CHECK(n == (int)sizeof(back) && !memcmp(back, big, sizeof(big)), "%s: client read %d",
	      suite, n);

	/* KeyUpdate asking for ours, then data both ways under the new keys */
	for (int round = 0; round < 3; round++) {
		p.got_len = 0;
		CHECK(SSL_key_update(p.cli, round == 1 ? SSL_KEY_UPDATE_NOT_REQUESTED
						       : SSL_KEY_UPDATE_REQUESTED) == 1,
		      "%s", suite);
		CHECK(SSL_write(p.cli, "after", 5) == 5, "%s", suite);
		CHECK(pump(&p, 3) == 0 && p.got_len == 5 && !memcmp(p.got, "after", 5),
		      "%s: after KeyUpdate: %s", suite, tls_conn_error(p.srv));
		CHECK(tls_conn_write(p.srv, "reply", 5) == 0, "%s", suite);
		n = cli_read(&p, back, 5);
		CHECK(n == 5 && !memcmp(back, "reply", 5), "%s: reply after KeyUpdate: %d", suite,
		      n);
	}

	/* the server closes: the client sees close_notify */
	tls_conn_shutdown(p.srv);
	n = cli_read(&p, back, 1);
	CHECK(n == -SSL_ERROR_ZERO_RETURN, "%s: close_notify to the client: %d", suite, n);
	/* the client closes: the server says so */
	SSL_shutdown(p.cli);
	CHECK(pump(&p, 0) == -ECONNRESET, "%s: close_notify from the client: %d", suite, p.last);
	pair_free(&p);
}

/* A hostile record after the handshake: refused, with an alert the client reads. */
static void hostile(SSL_CTX *cctx, struct tls_ctx *sctx, int kind, const char *want_err)
{
	static const uint8_t plain_hs[9] = {0x16, 3, 3, 0, 4, 0x14, 0, 0, 0};
	static const uint8_t huge[5] = {0x17, 3, 3, 0x41, 0x01}; /* 16641 > 2^14 + 256 */
	uint8_t buf[40000] = {0}, b[8];
	struct pair p;
	int n, r = 0;

	if (pair_new(&p, cctx, sctx) < 0) {
		CHECK(0, "handshake");
		pair_free(&p);
		return;
	}
	switch (kind) {
	case 0: /* a flipped ciphertext bit */
		CHECK(SSL_write(p.cli, "hello", 5) == 5, "write");
		n = BIO_read(p.from_cli, buf, sizeof(buf));
		buf[n - 3] ^= 4;
		r = tls_conn_feed(p.srv, buf, (size_t)n);
		break;
	case 1: /* a plaintext handshake record */
		r = tls_conn_feed(p.srv, plain_hs, sizeof(plain_hs));
		break;
	case 2: /* longer than any TLS record */
		r = tls_conn_feed(p.srv, huge, sizeof(huge));
		break;
	case 3: /* KeyUpdates and never any data */
		for (int i = 0; i < 20 && r >= 0; i++) {
			SSL_key_update(p.cli, SSL_KEY_UPDATE_NOT_REQUESTED);
			SSL_do_handshake(p.cli);
			r = pump(&p, 0);
		}
		break;
	}
	CHECK(r == -EPROTO, "kind %d: %d", kind, r);
	CHECK(strstr(tls_conn_error(p.srv), want_err), "kind %d: %s", kind, tls_conn_error(p.srv));
	n = cli_read(&p, b, sizeof(b));
	CHECK(n == -SSL_ERROR_SSL, "kind %d: the client got no alert: %d", kind, n);
	CHECK(tls_conn_feed(p.srv, buf, 1) == -EPROTO, "kind %d: stays failed", kind);
	ERR_clear_error();
	pair_free(&p);
}

int main(int argc, char **argv)
{
	struct tls_config scfg = {.server = 1, .peer_roles = ROLE_AGENT};
	struct tls_ctx *sctx = NULL;
	char err[TLS_ERR_LEN];
	SSL_CTX *cctx;

	if (argc != 6) {
		fprintf(stderr, "usage: aicn-tls-records CA SERVER_CERT SERVER_KEY CLIENT_CERT "
				"CLIENT_KEY\n");
		return 2;
	}
	scfg.ca_file = argv[1];
	scfg.cert_file = argv[2];
	scfg.key_file = argv[3];
	if (tls_ctx_new(&scfg, &sctx, err) < 0) {
		fprintf(stderr, "server: %s\n", err);
		return 1;
	}
	cctx = SSL_CTX_new(TLS_client_method());
	if (!cctx || SSL_CTX_set_min_proto_version(cctx, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_use_certificate_chain_file(cctx, argv[4]) != 1 ||
	    SSL_CTX_use_PrivateKey_file(cctx, argv[5], SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_load_verify_file(cctx, argv[1]) != 1) {
		ERR_print_errors_fp(stderr);
		return 1;
	}
	SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, NULL);
	suite_checks(cctx, sctx, "TLS_AES_256_GCM_SHA384");
	suite_checks(cctx, sctx, "TLS_AES_128_GCM_SHA256");
	suite_checks(cctx, sctx, "TLS_CHACHA20_POLY1305_SHA256");
	hostile(cctx, sctx, 0, "bad record mac");
	hostile(cctx, sctx, 1, "unexpected record type 22");
	hostile(cctx, sctx, 2, "record of 16641 bytes");
	hostile(cctx, sctx, 3, "too many KeyUpdates");
	SSL_CTX_free(cctx);
	tls_ctx_free(sctx);
	if (failures) {
		fprintf(stderr, "%d checks failed\n", failures);
		return 1;
	}
	printf("all record checks passed\n");
	return 0;
}
