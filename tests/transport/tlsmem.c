/* tlsmem.c -- where a server's TLS connection memory goes: live bytes per connection by OpenSSL allocation site. */
/*
 * aicn-tlsmem --ca CA --server-cert C --server-key K --client-cert C --client-key K [--conns N]
 *             [--max-bytes B] [--top N]
 *
 * Runs N full TLS 1.3 mTLS handshakes in memory through lib/tls.c (a server and a client
 * tls_conn per pair, their ciphertext handed over directly), then one application record
 * each way, and counts what every server connection still holds: each OpenSSL allocation
 * (CRYPTO_set_mem_functions gives the file and line of every one) is attributed to the
 * side whose call made it and tracked until freed.  Prints the live bytes per server
 * connection by site (requested bytes and glibc chunk bytes, header and rounding
 * included), by area, and the total with our own wrapper.  With --max-bytes the program
 * fails (exit 1) when the server side holds more than B chunk bytes per connection.
 */
#include <aicn/compiler.h>
#include <aicn/tls.h>

#include <getopt.h>
#include <malloc.h>
#include <openssl/crypto.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum side {
	SIDE_OTHER,
	SIDE_SERVER,
	SIDE_CLIENT
};
enum phase {
	PH_NEW,
	PH_HANDSHAKE,
	PH_DATA,
	PH_MAX
};
static const char *const phase_names[PH_MAX] = {"new", "handshake", "data"};

struct site {
	const char *file; /* OpenSSL's __FILE__ literal */
	int line;
	enum phase phase;
	size_t live, req, chunk; /* server side, live at the end */
};

struct rec {
	void *p;
	size_t req, chunk;
	unsigned site;
	enum side side;
};

#define MAX_SITES 8192
static struct site sites[MAX_SITES];
static unsigned nsites;
static struct rec *tab;
static size_t tab_mask;
static enum side cur_side;
static enum phase cur_phase;
static bool tracking;
static size_t untracked; /* allocations beyond the table or sites: counted, not attributed */

static size_t hash_ptr(const void *p)
{
	uint64_t x = (uint64_t)(uintptr_t)p;

	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return (size_t)x & tab_mask;
}

static unsigned site_of(const char *file, int line)
{
	for (unsigned i = 0; i < nsites; i++)
		if (sites[i].line == line && sites[i].phase == cur_phase &&
		    (sites[i].file == file ||
		     (file && sites[i].file && !strcmp(sites[i].file, file))))
			return i;
	if (nsites == MAX_SITES)
		return MAX_SITES;
	sites[nsites] = (struct site){.file = file, .line = line, .phase = cur_phase};
	return nsites++;
}

static void track(void *p, size_t req, const char *file, int line)
{
	size_t i;

	if (!tracking || !p || cur_side == SIDE_OTHER)
		return;
	for (i = hash_ptr(p); tab[i].p; i = (i + 1) & tab_mask)
		;
	tab[i] = (struct rec){.p = p,
			      .req = req,
			      .chunk = malloc_usable_size(p) + sizeof(size_t),
			      .site = site_of(file, line),
			      .side = cur_side};
	if (tab[i].site == MAX_SITES) {
		untracked++;
		tab[i].p = NULL;
	}
}

/* Linear probing with backward-shift deletion. */
static void untrack(void *p)
{
	size_t i, j, k;

	if (!p || !tab)
		return;
	for (i = hash_ptr(p); tab[i].p != p; i = (i + 1) & tab_mask)
		if (!tab[i].p)
			return;
	tab[i].p = NULL;
	for (j = (i + 1) & tab_mask; tab[j].p; j = (j + 1) & tab_mask) {
		k = hash_ptr(tab[j].p);
		if ((j > i && (k <= i || k > j)) || (j < i && (k <= i && k > j))) {
			tab[i] = tab[j];
			tab[j].p = NULL;
			i = j;
		}
	}
}

static void *m_malloc(size_t n, const char *file, int line)
{
	void *p = malloc(n);

	track(p, n, file, line);
	return p;
}

static void *m_realloc(void *old, size_t n, const char *file, int line)
{
	void *p;

	untrack(old);
	p = realloc(old, n);
	if (!p && old && n)
		track(old, n, file, line); /* still there, now unknown size: close enough */
	else
		track(p, n, file, line);
	return p;
}

static void m_free(void *p, const char *file _unused_, int line _unused_)
{
	untrack(p);
	free(p);
}

/* ---- an in-memory pair ---- */

struct buf {
	uint8_t *d;
	size_t len, cap;
};

struct end {
	struct tls_conn *c;
	struct buf out; /* ciphertext this end sent, not yet fed to the other */
	size_t plain;	/* application bytes received */
};

static int end_send(void *ud, const uint8_t *data, size_t len)
{
	struct end *e = ud;

	if (e->out.len + len > e->out.cap) {
		size_t cap = MAX(e->out.cap * 2, e->out.len + len);
		uint8_t *d = realloc(e->out.d, cap);

		if (!d)
			return -ENOMEM;
		e->out.d = d;
		e->out.cap = cap;
	}
	memcpy(e->out.d + e->out.len, data, len);
	e->out.len += len;
	return 0;
}

static int end_plain(void *ud, const uint8_t *data _unused_, size_t len)
{
	((struct end *)ud)->plain += len;
	return 0;
}

static const struct tls_conn_ops ops = {.send = end_send, .on_plain = end_plain};

/* Hand what `from` sent to `to`, on `side`'s account; 1 if anything moved. */
static int pass(struct end *from, struct end *to, enum side side, int *ret)
{
	int r;

	if (!from->out.len)
		return 0;
	cur_side = side;
	r = tls_conn_feed(to->c, from->out.d, from->out.len);
	cur_side = SIDE_OTHER;
	from->out.len = 0;
	if (r < 0) {
		fprintf(stderr, "aicn-tlsmem: %s: %s\n", side == SIDE_SERVER ? "server" : "client",
			tls_conn_error(to->c));
		*ret = r;
	}
	return 1;
}

static int pair_run(struct end *srv, struct end *cli)
{
	int r = 0;

	cur_side = SIDE_CLIENT;
	r = tls_conn_start(cli->c);
	cur_side = SIDE_OTHER;
	if (r < 0)
		return r;
	while (!r && (pass(cli, srv, SIDE_SERVER, &r) | pass(srv, cli, SIDE_CLIENT, &r)))
		;
	if (r < 0)
		return r;
	if (!tls_conn_established(srv->c) || !tls_conn_established(cli->c))
		return -EPROTO;
	return 0;
}

/* One record each way, the size of a HELLO and its reply, as the daemons exchange. */
static int pair_data(struct end *srv, struct end *cli)
{
	static const char msg[300] = "{\"v\":1,\"type\":\"HELLO\"}";
	int r = 0;

	cur_side = SIDE_CLIENT;
	r = tls_conn_write(cli->c, msg, sizeof(msg));
	cur_side = SIDE_OTHER;
	if (!r)
		pass(cli, srv, SIDE_SERVER, &r);
	if (!r) {
		cur_side = SIDE_SERVER;
		r = tls_conn_write(srv->c, msg, sizeof(msg));
		cur_side = SIDE_OTHER;
	}
	if (!r)
		pass(srv, cli, SIDE_CLIENT, &r);
	if (!r && (srv->plain != sizeof(msg) || cli->plain != sizeof(msg)))
		r = -EPROTO;
	return r;
}

static int cmp_site(const void *a, const void *b)
{
	const struct site *x = a, *y = b;

	return x->chunk < y->chunk ? 1 : x->chunk > y->chunk ? -1 : 0;
}

/* The area of OpenSSL a source file belongs to, for the summary. */
static const char *area_of(const char *file)
{
	static const struct {
		const char *pfx, *area;
	} areas[] = {
		{"ssl/ssl_lib.c", "SSL object and its per-connection copies (SSL_new)"},
		{"ssl/ssl_cert.c", "per-SSL CERT copy (ssl_cert_dup)"},
		{"ssl/ssl_sess.c", "SSL_SESSION"},
		{"ssl/record/", "record layer"},
		{"ssl/statem/", "handshake state machine leftovers"},
		{"ssl/", "other libssl"},
		{"crypto/x509/", "X.509 certificate objects and verify params"},
		{"crypto/asn1/", "ASN.1 decoding (the parsed peer certificate)"},
		{"crypto/threads", "locks of reference-counted objects"},
		{"crypto/evp/", "EVP contexts and keys"},
		{"providers/", "provider contexts (cipher, digest, key)"},
		{"crypto/ec/", "X25519/Ed25519 keys"},
		{"crypto/bio/", "BIO"},
		{"crypto/stack/", "stacks"},
		{"crypto/", "other libcrypto"},
	};

	for (unsigned i = 0; i < ARRAY_SIZE(areas); i++)
		if (file && strstr(file, areas[i].pfx))
			return areas[i].area;
	return "other";
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: aicn-tlsmem --ca FILE --server-cert FILE --server-key FILE\n"
		"                   --client-cert FILE --client-key FILE [--conns N] [--top N]\n"
		"                   [--max-bytes B]\n"
		"\n"
		"Holds N server-side TLS 1.3 mTLS connections (lib/tls.c, in memory, each after a\n"
		"full handshake and one record each way) and prints the memory each one keeps, by\n"
		"OpenSSL allocation site (file:line, from CRYPTO_set_mem_functions) and by area:\n"
		"chunks, requested bytes and glibc chunk bytes (header and rounding included) per\n"
		"connection.  The server certificate needs role coordinator, the client's agent.\n"
		"\n"
		"  --conns N      connections to hold (default 1000)\n"
		"  --top N        sites to list (default 40)\n"
		"  --max-bytes B  exit 1 if the server side keeps more than B chunk bytes per\n"
		"                 connection (OpenSSL and our wrapper together)\n"
		"  -h, --help     this text\n"
		"\n"
		"Exit status: 0 done (and within --max-bytes), 1 over the limit or a handshake\n"
		"failed, 2 bad usage.\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"ca", required_argument, NULL, 'a'},
		{"server-cert", required_argument, NULL, 'c'},
		{"server-key", required_argument, NULL, 'k'},
		{"client-cert", required_argument, NULL, 'C'},
		{"client-key", required_argument, NULL, 'K'},
		{"conns", required_argument, NULL, 'n'},
		{"top", required_argument, NULL, 't'},
		{"max-bytes", required_argument, NULL, 'm'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	struct tls_config scfg = {.server = 1, .peer_roles = ROLE_AGENT};
	struct tls_config ccfg = {.server = 0, .peer_roles = ROLE_COORDINATOR};
	struct tls_ctx *sctx = NULL, *cctx = NULL;
	struct end *srv, *cli;
	char err[TLS_ERR_LEN];
	long n = 1000, top = 40, max_bytes = 0;
	size_t heap0 = 0, heap1, live_req = 0, live_chunk = 0, live_n = 0, cli_chunk = 0, ours;
	int opt, r = 0;

	/* before OpenSSL allocates anything */
	if (!CRYPTO_set_mem_functions(m_malloc, m_realloc, m_free)) {
		fprintf(stderr, "aicn-tlsmem: CRYPTO_set_mem_functions refused\n");
		return 1;
	}
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'a':
			scfg.ca_file = ccfg.ca_file = optarg;
			break;
		case 'c':
			scfg.cert_file = optarg;
			break;
		case 'k':
			scfg.key_file = optarg;
			break;
		case 'C':
			ccfg.cert_file = optarg;
			break;
		case 'K':
			ccfg.key_file = optarg;
			break;
		case 'n':
			n = strtol(optarg, NULL, 10);
			break;
		case 't':
			top = strtol(optarg, NULL, 10);
			break;
		case 'm':
			max_bytes = strtol(optarg, NULL, 10);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc || n < 1 || n > 1000000 || top < 0 || max_bytes < 0 || !scfg.ca_file ||
	    !scfg.cert_file || !scfg.key_file || !ccfg.cert_file || !ccfg.key_file) {
		usage(stderr);
		return 2;
	}
	if (tls_ctx_new(&scfg, &sctx, err) < 0 || tls_ctx_new(&ccfg, &cctx, err) < 0) {
		fprintf(stderr, "aicn-tlsmem: %s\n", err);
		tls_ctx_free(sctx);
		return 1;
	}
	tab_mask = 1;
	while (tab_mask < (size_t)n * 2048)
		tab_mask <<= 1;
	tab = calloc(tab_mask, sizeof(*tab));
	tab_mask--;
	srv = calloc((size_t)n, sizeof(*srv));
	cli = calloc((size_t)n, sizeof(*cli));
	if (!tab || !srv || !cli) {
		fprintf(stderr, "aicn-tlsmem: out of memory\n");
		return 1;
	}
	/* one warm-up pair: OpenSSL's one-time lazy state (fetched algorithms, names) */
	for (int pass_no = 0; pass_no < 2 && !r; pass_no++) {
		long from = pass_no ? 1 : 0, to = pass_no ? n : 1;

		if (pass_no) {
			tracking = true;
			heap0 = mallinfo2().uordblks;
		}
		for (long i = from; i < to && !r; i++) {
			cur_phase = PH_NEW;
			cur_side = SIDE_SERVER;
			r = tls_conn_new(sctx, &ops, &srv[i], &srv[i].c);
			cur_side = SIDE_CLIENT;
			if (!r)
				r = tls_conn_new(cctx, &ops, &cli[i], &cli[i].c);
			cur_side = SIDE_OTHER;
			cur_phase = PH_HANDSHAKE;
			if (!r)
				r = pair_run(&srv[i], &cli[i]);
			cur_phase = PH_DATA;
			if (!r)
				r = pair_data(&srv[i], &cli[i]);
			free(srv[i].out.d);
			free(cli[i].out.d);
			srv[i].out = cli[i].out = (struct buf){0};
		}
	}
	heap1 = mallinfo2().uordblks;
	tracking = false;
	if (r < 0) {
		fprintf(stderr, "aicn-tlsmem: handshake failed: %s\n", strerror(-r));
		return 1;
	}
	n--; /* the warm-up pair is not counted */
	for (size_t i = 0; i <= tab_mask; i++) {
		if (!tab[i].p)
			continue;
		if (tab[i].side == SIDE_CLIENT) {
			cli_chunk += tab[i].chunk;
			continue;
		}
		sites[tab[i].site].live++;
		sites[tab[i].site].req += tab[i].req;
		sites[tab[i].site].chunk += tab[i].chunk;
		live_n++;
		live_req += tab[i].req;
		live_chunk += tab[i].chunk;
	}
	/* both sides' wrappers: heap growth beyond what OpenSSL holds, split evenly */
	ours = heap1 - heap0 > live_chunk + cli_chunk ? (heap1 - heap0 - live_chunk - cli_chunk) / 2
						      : 0;
	qsort(sites, nsites, sizeof(sites[0]), cmp_site);
	printf("server side of %ld TLS 1.3 mTLS connections (Ed25519, %s), after the handshake and one record each way\n",
	       n, OpenSSL_version(OPENSSL_VERSION));
	printf("per connection: %.1f OpenSSL allocations, %.0f bytes requested, %.0f bytes in glibc chunks\n",
	       (double)live_n / n, (double)live_req / n, (double)live_chunk / n);
	printf("                + %.0f bytes of our own (struct tls_conn, from the heap growth)\n",
	       (double)ours / n);
	printf("                = %.0f bytes per connection\n", (double)(live_chunk + ours) / n);
	printf("\nby area (chunk bytes per connection):\n");
	for (unsigned i = 0; i < nsites; i++) {
		const char *a = area_of(sites[i].file);
		size_t chunks = 0, bytes = 0, req = 0;
		bool seen = false;

		if (!sites[i].live)
			continue;
		for (unsigned j = 0; j < i && !seen; j++)
			seen = sites[j].live && area_of(sites[j].file) == a;
		if (seen)
			continue;
		for (unsigned j = i; j < nsites; j++)
			if (sites[j].live && area_of(sites[j].file) == a) {
				chunks += sites[j].live;
				bytes += sites[j].chunk;
				req += sites[j].req;
			}
		printf("  %6.0f  %5.1f chunks %6.0f requested  %s\n", (double)bytes / n,
		       (double)chunks / n, (double)req / n, a);
	}
	printf("\nby site (phase: new = SSL_new, handshake, data = first records):\n");
	printf("  %6s %6s %6s  %-9s %s\n", "chunk", "req", "allocs", "phase", "site");
	for (unsigned i = 0; i < nsites && (long)i < top; i++) {
		if (!sites[i].live)
			break;
		printf("  %6.0f %6.0f %6.2f  %-9s %s:%d\n", (double)sites[i].chunk / n,
		       (double)sites[i].req / n, (double)sites[i].live / n,
		       phase_names[sites[i].phase], sites[i].file ? sites[i].file : "?",
		       sites[i].line);
	}
	if (untracked)
		printf("(%zu allocations not attributed: site table full)\n", untracked);
	for (long i = 0; i <= n; i++) {
		tls_conn_free(srv[i].c);
		tls_conn_free(cli[i].c);
	}
	free(srv);
	free(cli);
	free(tab);
	tab = NULL;
	tls_ctx_free(sctx);
	tls_ctx_free(cctx);
	if (max_bytes && (double)(live_chunk + ours) / n > (double)max_bytes) {
		printf("FAIL: %.0f bytes per connection > %ld\n", (double)(live_chunk + ours) / n,
		       max_bytes);
		return 1;
	}
	return 0;
}
