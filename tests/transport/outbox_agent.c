/* outbox_agent.c -- aicn-outbox-agent: an agent stand-in that writes N records into the outbox and delivers them. */
#include <aicn/canon.h>
#include <aicn/compiler.h>
#include <aicn/log.h>
#include <aicn/loop.h>
#include <aicn/net.h>
#include <aicn/outbox.h>

#include "lib/proto_util.h"

#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <string.h>

/*
 * It "produces" records 1..N at --rate per second (the last produced sequence
 * is kept in DIR/produced, written after the outbox put, so a kill -9 between
 * the two re-puts a record that is already pending: -EEXIST, harmless) and
 * exits 0 once all N are produced and acknowledged.
 */

struct st {
	struct loop *loop;
	struct net_client *cl;
	struct outbox *ob;
	const char *dir;
	uint64_t n, produced;
	unsigned rate;
	struct loop_timer *tick;
	int ret;
};

static void log_line(void *ud _unused_, enum log_level lvl, const char *line)
{
	log_msg(lvl, "%s", line);
}

static uint64_t read_produced(const char *dir)
{
	_cleanup_free_ char *p = NULL;
	_cleanup_fclose_ FILE *f = NULL;
	char line[32];

	if (asprintf(&p, "%s/produced", dir) < 0)
		return 0;
	f = fopen(p, "re");
	if (!f || !fgets(line, sizeof(line), f))
		return 0;
	return strtoull(line, NULL, 10);
}

static int write_produced(const char *dir, uint64_t v)
{
	_cleanup_free_ char *p = NULL, *tmp = NULL;
	FILE *f;

	if (asprintf(&p, "%s/produced", dir) < 0 || asprintf(&tmp, "%s/produced.tmp", dir) < 0)
		return -ENOMEM;
	f = fopen(tmp, "we");
	if (!f)
		return -errno;
	fprintf(f, "%" PRIu64 "\n", v);
	if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
		fclose(f);
		return -EIO;
	}
	fclose(f);
	return rename(tmp, p) < 0 ? -errno : 0;
}

static void on_ready(struct net_client *cl _unused_, struct net_conn *c, void *ud)
{
	struct st *s = ud;

	log_info("ready; %zu records pending, resending", outbox_pending(s->ob));
	outbox_on_ready(s->ob, c);
}

static void tick(struct loop_timer *t, void *ud)
{
	struct st *s = ud;
	unsigned per_tick = s->rate / 100 ? s->rate / 100 : 1;

	for (unsigned i = 0; i < per_tick && s->produced < s->n; i++) {
		uint64_t seq = s->produced + 1;
		char rec[160];
		int r;

		snprintf(rec, sizeof(rec),
			 "{\"cpu_ns\":%" PRIu64 ",\"seq\":%" PRIu64 ",\"task\":\"t%" PRIu64 "\"}",
			 seq * 1000, seq, seq);
		r = outbox_put(s->ob, seq, rec, strlen(rec));
		if (r < 0 && r != -EEXIST) {
			log_errno(LOG_LVL_ERR, r, "outbox_put %" PRIu64, seq);
			s->ret = 1;
			loop_stop(s->loop);
			return;
		}
		if (write_produced(s->dir, seq) < 0) {
			s->ret = 1;
			loop_stop(s->loop);
			return;
		}
		s->produced = seq;
	}
	if (net_client_conn(s->cl))
		outbox_pump(s->ob, net_client_conn(s->cl));
	if (s->produced >= s->n && outbox_pending(s->ob) == 0) {
		log_info("all %" PRIu64 " records delivered", s->n);
		loop_stop(s->loop);
		return;
	}
	loop_timer_arm(t, 10);
}

static void on_term(int signo _unused_, void *ud)
{
	struct st *s = ud;

	s->ret = 1;
	loop_stop(s->loop);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"ca", required_argument, NULL, 'a'},
		{"cert", required_argument, NULL, 'c'},
		{"key", required_argument, NULL, 'k'},
		{"port", required_argument, NULL, 'p'},
		{"outbox", required_argument, NULL, 'o'},
		{"records", required_argument, NULL, 'n'},
		{"rate", required_argument, NULL, 'r'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	struct tls_config tc = {.peer_roles = ROLE_COORDINATOR};
	struct net_client_config cc = {.host = "127.0.0.1",
				       .log = log_line,
				       .software = "aicn-outbox-agent",
				       .on_ready = on_ready,
				       .backoff_min_ms = 100,
				       .backoff_max_ms = 1000};
	struct st s = {.rate = 200};
	static const struct proto_test_register reg_fields = {
		.cores = 2,
		.mem_mb = 1024,
		.cores_offered = 1,
		.ask_price = 10,
		.location = "test",
		.perf_score = 1,
		.agent_version = "test",
	};
	struct tls_ctx *tls = NULL;
	cJSON *reg;
	char err[TLS_ERR_LEN];
	int c;

	log_setup("aicn-outbox-agent");
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
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
		case 'p':
			cc.port = (uint16_t)strtoul(optarg, NULL, 10);
			break;
		case 'o':
			s.dir = optarg;
			break;
		case 'n':
			s.n = strtoull(optarg, NULL, 10);
			break;
		case 'r':
			s.rate = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'h':
			printf("Usage: aicn-outbox-agent --ca F --cert F --key F --port N --outbox DIR "
			       "--records N [--rate R]\n\nTest stand-in for the agent's record delivery: "
			       "produces records 1..N into the durable outbox\nat R per second and exits 0 "
			       "when the server acknowledged all of them.\n");
			return 0;
		default:
			return 2;
		}
	}
	if (!tc.ca_file || !tc.cert_file || !tc.key_file || !cc.port || !s.dir || !s.n)
		return 2;
	if (tls_ctx_new(&tc, &tls, err) < 0) {
		log_err("%s", err);
		return 1;
	}
	if (outbox_open(s.dir, 0, &s.ob) < 0 || loop_new(NULL, &s.loop) < 0)
		return 1;
	s.produced = read_produced(s.dir);
	log_info("starting: %zu pending, %" PRIu64 " of %" PRIu64 " produced", outbox_pending(s.ob),
		 s.produced, s.n);
	loop_signal(s.loop, SIGTERM, on_term, &s);
	cc.tls = tls;
	cc.ud = &s;
	if (net_client_new(s.loop, &cc, &s.cl) < 0 || outbox_bind(s.ob, s.cl, NULL, NULL) < 0 ||
	    loop_timer_new(s.loop, tick, &s, &s.tick) < 0)
		return 1;
	reg = proto_test_register_new(&reg_fields);
	if (!reg)
		return 1;
	net_client_set_register(s.cl, reg);
	cJSON_Delete(reg);
	net_client_start(s.cl);
	loop_timer_arm(s.tick, 0);
	loop_run(s.loop);
	s.cl = net_client_free(s.cl);
	s.loop = loop_free(s.loop);
	outbox_free(s.ob);
	tls_ctx_free(tls);
	return s.ret;
}
