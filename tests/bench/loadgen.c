/* loadgen.c -- aicn-loadgen: plays N agents over real mTLS against a coordinator (connections, handshakes, heartbeats). */
#include <aicn/canon.h>
#include <aicn/compiler.h>
#include <aicn/log.h>
#include <aicn/loop.h>
#include <aicn/net.h>
#include <aicn/tls.h>

#include "lib/proto_util.h"

#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

enum mode {
	M_ONCE,
	M_HOLD,
	M_HEARTBEAT,
	M_HANDSHAKE
};

struct opts {
	enum mode mode;
	struct tls_config tc;
	const char *host;
	uint16_t port;
	unsigned agents, threads, duration_s, rate;
	int verbose;
};

struct agent {
	struct worker *w;
	struct net_client *cl;
	int ready;
	int ever;
	double credit; /* heartbeats owed at the configured rate */
	uint64_t sent;
};

struct worker {
	const struct opts *o;
	struct loop *loop;
	struct tls_ctx *tls;
	struct agent *agents;
	unsigned n;
	unsigned started; /* agents started so far (they ramp up, as a real fleet would) */
	unsigned up;	  /* agents that reached ready at least once */
	struct loop_timer *tick, *end;
	uint64_t start_ms, last_tick_ms;
	uint8_t *hb_frame;
	size_t hb_len;
	pthread_t thread;
	int ret;
	char fail_reason[256];
};

static void ramp(struct worker *w);
static atomic_uint_fast64_t n_ready, n_failed, n_sent, n_handshakes;
static atomic_int all_stop;

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: aicn-loadgen --ca CA.pem --cert AGENT.pem --key AGENT.key --port N [OPTIONS]\n\n"
		"Plays N agents against an aicn coordinator over real TLS 1.3 mutual authentication\n"
		"(every agent uses the given certificate) and reports what happened as one JSON line.\n\n"
		"  --host ADDR        coordinator address (default 127.0.0.1)\n"
		"  --mode MODE        once       one agent: connect, HELLO, REGISTER; exit 0 when\n"
		"                                acknowledged, 1 with the reason when refused\n"
		"                     hold       N agents connect, register and stay for --duration\n"
		"                     heartbeat  N agents send HEARTBEATs for --duration, --rate per\n"
		"                                agent per second (0: as fast as the link allows)\n"
		"                     handshake  N agents connect, register and reconnect in a loop;\n"
		"                                reports full handshakes per second\n"
		"  --agents N         agents (default 1)\n"
		"  --threads N        event loops to spread them over (default 1)\n"
		"  --duration S       seconds to run after all are up (default 5)\n"
		"  --rate R           heartbeats per agent per second (default 10)\n"
		"  --verbose          log every connection event\n"
		"Exit status: 0 when every agent got through, 1 otherwise, 2 usage error.\n");
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void log_line(void *ud, enum log_level lvl, const char *line)
{
	struct worker *w = ((struct agent *)ud)->w;

	if (w->o->verbose || w->o->mode == M_ONCE || lvl <= LOG_LVL_ERR)
		log_msg(lvl, "%s", line);
}

static void on_ready(struct net_client *cl _unused_, struct net_conn *c, void *ud)
{
	struct agent *a = ud;

	if (!a->ever) {
		a->ever = 1;
		a->w->up++;
		ramp(a->w);
	}
	a->ready = 1;
	atomic_fetch_add(&n_ready, 1);
	if (a->w->o->mode == M_ONCE) {
		printf("ready: connected as CN=%s node_id %s to CN=%s (role %s)\n",
		       tls_ctx_self(a->w->tls)->name, tls_ctx_self(a->w->tls)->node_id,
		       net_conn_peer(c)->name, role_name(net_conn_peer(c)->role));
		loop_stop(a->w->loop);
	} else if (a->w->o->mode == M_HANDSHAKE) {
		atomic_fetch_add(&n_handshakes, 1);
		net_conn_close(c, "handshake done");
	}
}

static void on_down(struct net_client *cl _unused_, const char *reason, int was_ready, void *ud)
{
	struct agent *a = ud;

	if (was_ready) {
		a->ready = 0;
		atomic_fetch_sub(&n_ready, 1);
		return;
	}
	if (a->w->o->mode == M_ONCE) {
		snprintf(a->w->fail_reason, sizeof(a->w->fail_reason), "%s", reason);
		a->w->ret = 1;
		loop_stop(a->w->loop);
	} else {
		atomic_fetch_add(&n_failed, 1);
	}
}

/* Keep at most RAMP handshakes in flight per loop instead of a thundering herd. */
#define RAMP 64

static void ramp(struct worker *w)
{
	while (w->started < w->n && w->started - w->up < RAMP)
		net_client_start(w->agents[w->started++].cl);
}

static void tick(struct loop_timer *t, void *ud)
{
	struct worker *w = ud;
	uint64_t now = now_ms();
	double dt = (double)(now - w->last_tick_ms) / 1000.0;

	ramp(w);

	w->last_tick_ms = now;
	if (atomic_load(&all_stop)) {
		loop_stop(w->loop);
		return;
	}
	if (w->o->mode == M_HEARTBEAT && atomic_load(&n_ready) == w->o->agents) {
		for (unsigned i = 0; i < w->n; i++) {
			struct agent *a = &w->agents[i];
			struct net_conn *c = net_client_conn(a->cl);
			unsigned k = 0;

			if (!c)
				continue;
			if (w->o->rate) {
				a->credit += dt * w->o->rate;
				if (a->credit > w->o->rate)
					a->credit = w->o->rate;
			} else {
				a->credit = 64;
			}
			net_conn_cork(c);
			while (a->credit >= 1 && net_conn_queued(c) < 256 * 1024) {
				if (net_conn_send_encoded(c, w->hb_frame, w->hb_len) < 0)
					break;
				a->credit -= 1;
				k++;
			}
			net_conn_uncork(c);
			a->sent += k;
			atomic_fetch_add(&n_sent, k);
		}
	}
	loop_timer_arm(t, 5);
}

static int build_heartbeat(struct worker *w)
{
	cJSON *hb = proto_new(PROTO_HEARTBEAT);
	int r = -ENOMEM;

	if (hb && canon_add_i64(hb, "free_cores", 4) >= 0 &&
	    cJSON_AddItemToObject(hb, "running", cJSON_CreateArray()))
		r = proto_encode(hb, PROTO_VERSION_MAX, 0, &w->hb_frame, &w->hb_len);
	cJSON_Delete(hb);
	return r;
}

static cJSON *build_register(void)
{
	static const struct proto_test_register reg = {
		.cores = 8,
		.mem_mb = 16384,
		.cores_offered = 4,
		.ask_price = 1000,
		.location = "lab/loadgen",
		.renewable_pm = 500,
		.perf_score = 1000,
		.agent_version = "aicn-loadgen 0.1.0",
	};

	return proto_test_register_new(&reg);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	const struct opts *o = w->o;
	cJSON *reg = build_register();
	char err[TLS_ERR_LEN];

	w->ret = 1;
	if (!reg || tls_ctx_new(&o->tc, &w->tls, err) < 0) {
		log_err("%s", reg ? err : "out of memory");
		cJSON_Delete(reg);
		atomic_store(&all_stop, 1);
		return NULL;
	}
	if (loop_new(NULL, &w->loop) < 0 || build_heartbeat(w) < 0) {
		log_err("cannot set up the event loop");
		cJSON_Delete(reg);
		atomic_store(&all_stop, 1);
		return NULL;
	}
	w->ret = 0;
	for (unsigned i = 0; i < w->n; i++) {
		struct net_client_config cc = {
			.tls = w->tls,
			.host = o->host,
			.port = o->port,
			.software = "aicn-loadgen",
			.log = log_line,
			.on_ready = on_ready,
			.on_down = on_down,
			.ud = &w->agents[i],
			.limits = {.handshake_ms = 60000},
		};
		struct agent *a = &w->agents[i];

		if (o->mode == M_HANDSHAKE)
			cc.backoff_min_ms = cc.backoff_max_ms = 1;
		a->w = w;
		if (net_client_new(w->loop, &cc, &a->cl) < 0 ||
		    net_client_set_register(a->cl, reg) < 0) {
			log_err("cannot set up agent %u", i);
			w->ret = 1;
			break;
		}
	}
	cJSON_Delete(reg);
	w->last_tick_ms = now_ms();
	if (w->ret == 0 && loop_timer_new(w->loop, tick, w, &w->tick) == 0) {
		loop_timer_arm(w->tick, 5);
		loop_run(w->loop);
	}
	for (unsigned i = 0; i < w->n; i++)
		w->agents[i].cl = net_client_free(w->agents[i].cl);
	w->loop = loop_free(w->loop);
	w->tls = tls_ctx_free(w->tls);
	free(w->hb_frame);
	return NULL;
}

static int parse_mode(const char *s, enum mode *ret)
{
	static const char *const names[] = {"once", "hold", "heartbeat", "handshake"};

	if (!s)
		return -EINVAL;

	for (unsigned i = 0; i < ARRAY_SIZE(names); i++)
		if (strcmp(s, names[i]) == 0) {
			*ret = (enum mode)i;
			return 0;
		}
	return -EINVAL;
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{"ca", required_argument, NULL, 'a'},
		{"cert", required_argument, NULL, 'c'},
		{"key", required_argument, NULL, 'k'},
		{"host", required_argument, NULL, 'H'},
		{"port", required_argument, NULL, 'p'},
		{"mode", required_argument, NULL, 'm'},
		{"agents", required_argument, NULL, 'n'},
		{"threads", required_argument, NULL, 't'},
		{"duration", required_argument, NULL, 'd'},
		{"rate", required_argument, NULL, 'r'},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	struct opts o = {
		.mode = M_ONCE,
		.tc = {.server = 0, .peer_roles = ROLE_COORDINATOR},
		.host = "127.0.0.1",
		.agents = 1,
		.threads = 1,
		.duration_s = 5,
		.rate = 10,
	};
	struct worker *ws;
	struct rlimit rl;
	uint64_t t0, t_up = 0, t_end, sent_at_up = 0, hs_at_up = 0;
	unsigned per;
	int c, ret = 0;

	log_setup("aicn-loadgen");
	while ((c = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
		unsigned long v = optarg ? strtoul(optarg, NULL, 10) : 0;

		switch (c) {
		case 'a':
			o.tc.ca_file = optarg;
			break;
		case 'c':
			o.tc.cert_file = optarg;
			break;
		case 'k':
			o.tc.key_file = optarg;
			break;
		case 'H':
			o.host = optarg;
			break;
		case 'p':
			o.port = (uint16_t)v;
			break;
		case 'm':
			if (parse_mode(optarg, &o.mode) < 0) {
				fprintf(stderr, "aicn-loadgen: unknown --mode '%s'\n", optarg);
				return 2;
			}
			break;
		case 'n':
			o.agents = (unsigned)v;
			break;
		case 't':
			o.threads = (unsigned)v;
			break;
		case 'd':
			o.duration_s = (unsigned)v;
			break;
		case 'r':
			o.rate = (unsigned)v;
			break;
		case 'v':
			o.verbose = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!o.tc.ca_file || !o.tc.cert_file || !o.tc.key_file || !o.port || !o.agents ||
	    !o.threads || o.threads > 64 || o.agents > 1000000) {
		usage(stderr);
		return 2;
	}
	if (o.mode == M_ONCE)
		o.agents = o.threads = 1;
	if (o.threads > o.agents)
		o.threads = o.agents;
	/* many connections: as root raise the hard limit too, else use all of it */
	rl.rlim_cur = rl.rlim_max = 262144;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0 && getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGPIPE, SIG_IGN);
	ws = calloc(o.threads, sizeof(*ws));
	if (!ws)
		return 1;
	per = o.agents / o.threads;
	t0 = now_ms();
	for (unsigned i = 0; i < o.threads; i++) {
		ws[i].o = &o;
		ws[i].n = per + (i < o.agents % o.threads ? 1 : 0);
		ws[i].agents = calloc(ws[i].n, sizeof(struct agent));
		if (!ws[i].agents || pthread_create(&ws[i].thread, NULL, worker_main, &ws[i]) != 0)
			return 1;
	}
	if (o.mode != M_ONCE) {
		/* wait for everyone (up to 600 s), then run for the duration */
		while (!atomic_load(&all_stop) && now_ms() - t0 < 600000) {
			if (o.mode == M_HANDSHAKE ? atomic_load(&n_handshakes) >= o.agents
						  : atomic_load(&n_ready) >= o.agents)
				break;
			usleep(10000);
		}
		t_up = now_ms();
		sent_at_up = atomic_load(&n_sent);
		hs_at_up = atomic_load(&n_handshakes);
		while (!atomic_load(&all_stop) && now_ms() - t_up < (uint64_t)o.duration_s * 1000)
			usleep(10000);
		atomic_store(&all_stop, 1);
	}
	for (unsigned i = 0; i < o.threads; i++) {
		pthread_join(ws[i].thread, NULL);
		if (ws[i].ret)
			ret = 1;
	}
	t_end = now_ms();
	if (o.mode == M_ONCE) {
		if (ws[0].ret)
			printf("refused: %s\n", ws[0].fail_reason);
	} else {
		uint64_t secs_ms = t_end > t_up ? t_end - t_up : 1;
		uint64_t ready = atomic_load(&n_ready);

		if (o.mode != M_HANDSHAKE && ready < o.agents)
			ret = 1;
		printf("{\"mode\":\"%s\",\"agents\":%u,\"threads\":%u,\"up_ms\":%llu,\"ready\":%llu,"
		       "\"failed_attempts\":%llu,\"sent\":%llu,\"sent_per_s\":%.0f,"
		       "\"handshakes\":%llu,\"handshakes_per_s\":%.0f,\"run_ms\":%llu}\n",
		       o.mode == M_HOLD	       ? "hold"
		       : o.mode == M_HEARTBEAT ? "heartbeat"
					       : "handshake",
		       o.agents, o.threads, (unsigned long long)(t_up - t0),
		       (unsigned long long)ready, (unsigned long long)atomic_load(&n_failed),
		       (unsigned long long)(atomic_load(&n_sent) - sent_at_up),
		       (double)(atomic_load(&n_sent) - sent_at_up) * 1000.0 / (double)secs_ms,
		       (unsigned long long)(atomic_load(&n_handshakes) - hs_at_up),
		       (double)(atomic_load(&n_handshakes) - hs_at_up) * 1000.0 / (double)secs_ms,
		       (unsigned long long)secs_ms);
	}
	for (unsigned i = 0; i < o.threads; i++)
		free(ws[i].agents);
	free(ws);
	return ret;
}
