/* testd.c -- aicn-transport-testd: a server on the transport framework with simple handlers, for tests and benchmarks. */
#include <aicn/canon.h>
#include <aicn/compiler.h>
#include <aicn/hash.h>
#include <aicn/log.h>
#include <aicn/loop.h>
#include <aicn/net.h>
#include <aicn/tls.h>

#include <fcntl.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>

/*
 * Not the coordinator: it answers REGISTER, counts HEARTBEATs, and for
 * USAGE_RECORD keeps a durable (node id, seq) set in --records so a test can
 * check that each record arrives exactly once across restarts of either side.
 */

struct seen {
	char node_id[TLS_NODE_ID_LEN + 1];
	int64_t seq;
};

struct testd {
	struct loop *loop;
	struct loop_pool *pool;
	struct net_server *srv;
	struct tls_ctx *tls;
	const char *records_path;
	int records_fd;
	struct seen *seen;
	size_t nseen, capseen;
	uint64_t heartbeats, registers, records, dups;
	const char *stats_path;
	struct loop_timer *stats_timer;
	uint8_t *blob;
	size_t blob_len;
	char blob_digest[80];
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: aicn-transport-testd --ca CA.pem --cert CERT.pem --key KEY.pem [OPTIONS]\n\n"
		"A test server on the aicn transport framework (TLS 1.3 mTLS, framed JSON):\n"
		"acknowledges REGISTER, TASK_STATUS and TASK_RESULT, counts HEARTBEATs, and\n"
		"keeps USAGE_RECORDs exactly once by (node id, seq) in a durable --records file.\n"
		"It is what the transport tests and benchmarks talk to; the real server is\n"
		"aicn-coordinator.\n\n"
		"  --crl FILE          CRL to enforce; SIGHUP reloads it\n"
		"  --listen ADDR       address to bind (default 127.0.0.1)\n"
		"  --port N            port (default 0: any free one)\n"
		"  --port-file FILE    write the bound port there once listening\n"
		"  --roles LIST        roles accepted, comma separated (default agent,renter,auditor)\n"
		"  --records FILE      durable record of USAGE_RECORDs received\n"
		"  --stats-file FILE   rewritten every 500 ms with counters as JSON\n"
		"  --max-conns N       connection cap (default 100000)\n"
		"  --handshake-ms N --idle-ms N --frame-ms N --rate N --burst N --sendq BYTES\n"
		"                      connection limits (see include/aicn/net.h)\n"
		"  --blob-mb N         serve an N MiB blob to BLOB_GET (all chunks at once)\n"
		"Signals: SIGHUP reloads the CRL; SIGTERM/SIGINT stop.\n");
}

static void log_line(void *ud _unused_, enum log_level lvl, const char *line)
{
	log_msg(lvl, "%s", line);
}

static int load_records(struct testd *d)
{
	_cleanup_fclose_ FILE *f = fopen(d->records_path, "re");
	char line[128], node[80], *sp, *end;
	long long seq;

	if (!f)
		return errno == ENOENT ? 0 : -errno;
	while (fgets(line, sizeof(line), f)) {
		sp = strchr(line, ' ');
		if (!sp || sp - line >= (long)sizeof(node))
			continue;
		memcpy(node, line, (size_t)(sp - line));
		node[sp - line] = '\0';
		seq = strtoll(sp + 1, &end, 10);
		if (*end != '\n' && *end != '\0')
			continue;
		if (d->nseen == d->capseen) {
			size_t cap = d->capseen ? d->capseen * 2 : 1024;
			struct seen *n = realloc(d->seen, cap * sizeof(*n));

			if (!n)
				return -ENOMEM;
			d->seen = n;
			d->capseen = cap;
		}
		snprintf(d->seen[d->nseen].node_id, sizeof(d->seen[0].node_id), "%.64s", node);
		d->seen[d->nseen++].seq = seq;
	}
	return 0;
}

static int seen_has(struct testd *d, const char *node, int64_t seq)
{
	for (size_t i = 0; i < d->nseen; i++)
		if (d->seen[i].seq == seq && strcmp(d->seen[i].node_id, node) == 0)
			return 1;
	return 0;
}

static int on_register(struct net_conn *c, const struct proto_msg *m, void *ud)
{
	struct testd *d = ud;

	d->registers++;
	return net_conn_ack(c, m->id, -1);
}

static int on_heartbeat(struct net_conn *c _unused_, const struct proto_msg *m _unused_, void *ud)
{
	struct testd *d = ud;

	d->heartbeats++;
	return 0;
}

static int on_ack_only(struct net_conn *c, const struct proto_msg *m, void *ud _unused_)
{
	return net_conn_ack(c, m->id, -1);
}

/* A record's durable write runs on the worker pool; the ACK goes out from the loop. */
struct rec_job {
	struct testd *d;
	struct net_conn *c;
	int64_t ref, seq;
	char line[128];
	int err;
};

static void rec_work(void *ud)
{
	struct rec_job *j = ud;
	size_t len = strlen(j->line);

	if (write(j->d->records_fd, j->line, len) != (ssize_t)len ||
	    fdatasync(j->d->records_fd) < 0)
		j->err = -EIO;
}

static void rec_done(void *ud)
{
	struct rec_job *j = ud;

	if (j->err == 0)
		net_conn_ack(j->c, j->ref, j->seq);
	else if (net_conn_alive(j->c))
		net_conn_error(j->c, j->ref, "internal", "cannot store the record");
	net_conn_unref(j->c);
	free(j);
}

static int on_record(struct net_conn *c, const struct proto_msg *m, void *ud)
{
	struct testd *d = ud;
	const struct tls_peer *p = net_conn_peer(c);
	struct rec_job *j;
	int64_t seq;
	int r;

	r = canon_get_i64(m->root, "seq", &seq);
	if (r < 0)
		return r;
	if (seen_has(d, p->node_id, seq)) {
		d->dups++;
		return net_conn_ack(c, m->id, seq);
	}
	if (d->nseen == d->capseen) {
		size_t cap = d->capseen ? d->capseen * 2 : 1024;
		struct seen *n = realloc(d->seen, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		d->seen = n;
		d->capseen = cap;
	}
	snprintf(d->seen[d->nseen].node_id, sizeof(d->seen[0].node_id), "%s", p->node_id);
	d->seen[d->nseen++].seq = seq;
	d->records++;
	if (d->records_fd < 0)
		return net_conn_ack(c, m->id, seq);
	j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	j->d = d;
	j->c = net_conn_ref(c);
	j->ref = m->id;
	j->seq = seq;
	snprintf(j->line, sizeof(j->line), "%s %lld\n", p->node_id, (long long)seq);
	return loop_pool_submit(d->pool, rec_work, rec_done, j);
}

static int on_blob_get(struct net_conn *c, const struct proto_msg *m, void *ud)
{
	struct testd *d = ud;
	const char *digest;

	if (canon_get_str(m->root, "digest", &digest) < 0 || !d->blob ||
	    strcmp(digest, d->blob_digest) != 0)
		return net_conn_error(c, m->id, "not_found", "no such blob");
	for (size_t off = 0; off < d->blob_len; off += PROTO_BLOB_CHUNK) {
		size_t n = MIN((size_t)PROTO_BLOB_CHUNK, d->blob_len - off);
		_cleanup_free_ char *b64 = NULL;
		cJSON *put = proto_new(PROTO_BLOB_PUT);
		int r;

		r = base64_encode(d->blob + off, n, &b64);
		if (r < 0 || !put || !cJSON_AddStringToObject(put, "digest", d->blob_digest) ||
		    canon_add_i64(put, "offset", (int64_t)off) < 0 ||
		    canon_add_i64(put, "size", (int64_t)d->blob_len) < 0 ||
		    !cJSON_AddStringToObject(put, "data", b64) ||
		    !cJSON_AddBoolToObject(put, "last", off + n >= d->blob_len)) {
			cJSON_Delete(put);
			return -ENOMEM;
		}
		r = net_conn_send(c, put, NULL);
		cJSON_Delete(put);
		if (r < 0)
			return r == -ENOBUFS ? 0 : r; /* slow reader: the framework closed it */
	}
	return 0;
}

static void write_stats(struct testd *d)
{
	struct net_stats st;
	struct mallinfo2 mi = mallinfo2();
	_cleanup_free_ char *tmp = NULL;
	FILE *f;

	if (!d->stats_path || asprintf(&tmp, "%s.tmp", d->stats_path) < 0)
		return;
	net_server_stats(d->srv, &st);
	f = fopen(tmp, "we");
	if (!f)
		return;
	fprintf(f,
		"{\"conns\":%llu,\"accepted\":%llu,\"refused\":%llu,\"ready\":%llu,\"closed\":%llu,"
		"\"frames_in\":%llu,\"bad_frames\":%llu,\"heartbeats\":%llu,\"registers\":%llu,"
		"\"records\":%llu,\"dups\":%llu,\"heap_bytes\":%zu,\"now_ms\":%llu,"
		"\"blob\":\"%s\"}\n",
		(unsigned long long)st.conns, (unsigned long long)st.accepted,
		(unsigned long long)st.refused, (unsigned long long)st.ready,
		(unsigned long long)st.closed, (unsigned long long)st.frames_in,
		(unsigned long long)st.bad_frames, (unsigned long long)d->heartbeats,
		(unsigned long long)d->registers, (unsigned long long)d->records,
		(unsigned long long)d->dups, mi.uordblks + mi.hblkhd,
		(unsigned long long)loop_now_ms(d->loop), d->blob_digest);
	fclose(f);
	rename(tmp, d->stats_path);
}

static void stats_tick(struct loop_timer *t, void *ud)
{
	write_stats(ud);
	loop_timer_arm(t, 500);
}

static void on_hup(int signo _unused_, void *ud)
{
	struct testd *d = ud;
	char err[TLS_ERR_LEN];

	if (tls_ctx_reload_crl(d->tls, err) < 0)
		log_err("CRL reload failed, keeping the previous one: %s", err);
	else
		log_info("CRL reloaded");
}

static void on_term(int signo, void *ud)
{
	struct testd *d = ud;

	log_info("signal %d: stopping", signo);
	loop_stop(d->loop);
}

static int parse_roles(const char *s, unsigned *ret)
{
	_cleanup_free_ char *dup = s ? strdup(s) : NULL;
	char *save = NULL;
	unsigned mask = 0;

	if (!dup)
		return -ENOMEM;
	for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		enum aicn_role r;

		if (role_parse(t, &r) < 0)
			return -EINVAL;
		mask |= r;
	}
	*ret = mask;
	return mask ? 0 : -EINVAL;
}

static int make_blob(struct testd *d, unsigned mb)
{
	uint8_t dg[SHA256_LEN];
	char hex[SHA256_HEX_LEN + 1];

	d->blob_len = (size_t)mb << 20;
	d->blob = malloc(d->blob_len);
	if (!d->blob)
		return -ENOMEM;
	for (size_t i = 0; i < d->blob_len; i++)
		d->blob[i] = (uint8_t)(i * 2654435761u >> 13);
	sha256(d->blob, d->blob_len, dg);
	hex_encode(dg, SHA256_LEN, hex);
	snprintf(d->blob_digest, sizeof(d->blob_digest), "sha256:%s", hex);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"ca", required_argument, NULL, 'a'},
		{"cert", required_argument, NULL, 'c'},
		{"key", required_argument, NULL, 'k'},
		{"crl", required_argument, NULL, 'C'},
		{"listen", required_argument, NULL, 'l'},
		{"port", required_argument, NULL, 'p'},
		{"port-file", required_argument, NULL, 'P'},
		{"roles", required_argument, NULL, 'r'},
		{"records", required_argument, NULL, 'R'},
		{"stats-file", required_argument, NULL, 'S'},
		{"max-conns", required_argument, NULL, 'm'},
		{"handshake-ms", required_argument, NULL, 1},
		{"idle-ms", required_argument, NULL, 2},
		{"frame-ms", required_argument, NULL, 3},
		{"rate", required_argument, NULL, 4},
		{"burst", required_argument, NULL, 5},
		{"sendq", required_argument, NULL, 6},
		{"blob-mb", required_argument, NULL, 7},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	struct tls_config tc = {.server = 1, .peer_roles = ROLE_AGENT | ROLE_RENTER | ROLE_AUDITOR};
	struct net_server_config sc = {.log = log_line, .software = "aicn-transport-testd"};
	struct testd d = {.records_fd = -1};
	const char *listen_addr = "127.0.0.1", *port_file = NULL;
	char err[TLS_ERR_LEN];
	struct rlimit rl;
	unsigned blob_mb = 0;
	uint16_t port = 0;
	int c, r, fd;

	log_setup("aicn-transport-testd");
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		unsigned long v = optarg ? strtoul(optarg, NULL, 10) : 0;

		switch (c) {
		case 'a':
			tc.ca_file = optarg;
			break;
		case 'c':
			tc.cert_file = optarg;
			break;
		case 'k':
			tc.key_file = optarg;
			break;
		case 'C':
			tc.crl_file = optarg;
			break;
		case 'l':
			listen_addr = optarg;
			break;
		case 'p':
			port = (uint16_t)v;
			break;
		case 'P':
			port_file = optarg;
			break;
		case 'r':
			if (parse_roles(optarg, &tc.peer_roles) < 0) {
				fprintf(stderr, "bad --roles '%s'\n", optarg);
				return 2;
			}
			break;
		case 'R':
			d.records_path = optarg;
			break;
		case 'S':
			d.stats_path = optarg;
			break;
		case 'm':
			sc.max_conns = (unsigned)v;
			break;
		case 1:
			sc.limits.handshake_ms = (unsigned)v;
			break;
		case 2:
			sc.limits.idle_ms = (unsigned)v;
			break;
		case 3:
			sc.limits.frame_ms = (unsigned)v;
			break;
		case 4:
			sc.limits.msg_rate = (unsigned)v;
			break;
		case 5:
			sc.limits.msg_burst = (unsigned)v;
			break;
		case 6:
			sc.limits.sendq_max = v;
			break;
		case 7:
			blob_mb = (unsigned)v;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!tc.ca_file || !tc.cert_file || !tc.key_file) {
		usage(stderr);
		return 2;
	}
	/* many connections: as root raise the hard limit too, else use all of it */
	rl.rlim_cur = rl.rlim_max = 262144;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0 && getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (tls_ctx_new(&tc, &d.tls, err) < 0) {
		log_err("%s", err);
		return 1;
	}
	if (blob_mb && make_blob(&d, blob_mb) < 0)
		return 1;
	if (d.records_path) {
		r = load_records(&d);
		if (r < 0)
			return log_errno(LOG_LVL_ERR, r, "cannot read %s", d.records_path);
		d.records_fd =
			open(d.records_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (d.records_fd < 0)
			return log_errno(LOG_LVL_ERR, -errno, "cannot open %s", d.records_path);
	}
	r = loop_new(NULL, &d.loop);
	if (r < 0)
		return log_errno(LOG_LVL_ERR, r, "cannot set up io_uring");
	loop_signal(d.loop, SIGHUP, on_hup, &d);
	loop_signal(d.loop, SIGTERM, on_term, &d);
	loop_signal(d.loop, SIGINT, on_term, &d);
	r = loop_pool_new(d.loop, 1, &d.pool);
	if (r < 0)
		return log_errno(LOG_LVL_ERR, r, "cannot start the worker pool");
	fd = loop_tcp_listen(listen_addr, port, 4096, &port);
	if (fd < 0)
		return log_errno(LOG_LVL_ERR, fd, "cannot listen on %s", listen_addr);
	sc.tls = d.tls;
	sc.listen_fd = fd;
	sc.ud = &d;
	r = net_server_new(d.loop, &sc, &d.srv);
	if (r < 0)
		return log_errno(LOG_LVL_ERR, r, "cannot start the server");
	net_server_handle(d.srv, PROTO_REGISTER, on_register, &d);
	net_server_handle(d.srv, PROTO_HEARTBEAT, on_heartbeat, &d);
	net_server_handle(d.srv, PROTO_USAGE_RECORD, on_record, &d);
	net_server_handle(d.srv, PROTO_TASK_STATUS, on_ack_only, &d);
	net_server_handle(d.srv, PROTO_TASK_RESULT, on_ack_only, &d);
	net_server_handle(d.srv, PROTO_BLOB_GET, on_blob_get, &d);
	if (loop_timer_new(d.loop, stats_tick, &d, &d.stats_timer) == 0)
		loop_timer_arm(d.stats_timer, 0);
	if (port_file) {
		_cleanup_free_ char *tmp = NULL;
		FILE *f;

		if (asprintf(&tmp, "%s.tmp", port_file) < 0 || !(f = fopen(tmp, "we")))
			return 1;
		fprintf(f, "%u\n", port);
		fclose(f);
		rename(tmp, port_file);
	}
	log_info("listening on %s:%u as %s (role %s)", listen_addr, port, tls_ctx_self(d.tls)->name,
		 role_name(tls_ctx_self(d.tls)->role));
	r = loop_run(d.loop);
	write_stats(&d);
	d.srv = net_server_free(d.srv);
	d.pool = loop_pool_free(d.pool);
	d.loop = loop_free(d.loop);
	tls_ctx_free(d.tls);
	free(d.seen);
	free(d.blob);
	if (d.records_fd >= 0)
		close(d.records_fd);
	return r < 0 ? 1 : 0;
}
