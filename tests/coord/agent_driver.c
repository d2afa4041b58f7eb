/* agent_driver.c -- aicn-coord-agent-driver: a protocol-level agent for coordinator tests and benchmarks (no sandbox). */
#include <aicn/canon.h>
#include <aicn/compiler.h>
#include <aicn/hash.h>
#include <aicn/key.h>
#include <aicn/log.h>
#include <aicn/loop.h>
#include <aicn/net.h>
#include <aicn/pow.h>
#include <aicn/record.h>

#include <getopt.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/proto_util.h"

/*
 * Speaks the agent side of docs/protocol.md exactly, but runs nothing: every
 * TASK_OFFER is accepted (or rejected with --reject) and reported "running" at
 * once; after --finish-ms it sends a signed final usage record, a result blob
 * and TASK_RESULT, as a real agent does.  Every event is one line in --log:
 *   <ms since start> OFFER <task> <replica> | RUNNING <task> | KILL <task> |
 *   DONE <task> | ERROR <code> <ref> <message> | READY
 * so shell tests can check what the coordinator offered and when.
 */

#define MAX_TASKS 4096

struct dtask {
	char id[72];
	uint32_t replica;
	unsigned pow_bits; /* from the offer */
	char renter[RECORD_ID_MAX + 1];
	char image[80];
	uint64_t start_ns;
	int64_t result_ref;	  /* TASK_RESULT request id */
	struct loop_timer *timer; /* finish */
	bool used;
};

struct driver {
	struct loop *loop;
	struct net_client *cl;
	cJSON *reg; /* REGISTER body; "running" updated as tasks come and go */
	FILE *log;
	uint64_t t0_ms;
	int finish_ms; /* -1: never finish */
	const char *reject, *fail;
	int exit_code;
	int64_t cores;
	struct loop_timer *hb;
	char node_id[NODE_ID_HEX_LEN + 1];
	struct key_signer *signer;
	uint64_t seq;
	struct dtask tasks[MAX_TASKS];
};

static struct driver *the_driver;

static void log_line(void *ud _unused_, enum log_level lvl, const char *line)
{
	log_msg(lvl, "%s", line);
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t real_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void event(struct driver *d, const char *fmt, ...) _printf_(2, 3);
static void event(struct driver *d, const char *fmt, ...)
{
	va_list ap;

	if (!d->log)
		return;
	fprintf(d->log, "%llu ", (unsigned long long)(mono_ms() - d->t0_ms));
	va_start(ap, fmt);
	vfprintf(d->log, fmt, ap);
	va_end(ap);
	fputc('\n', d->log);
	fflush(d->log);
}

static struct dtask *task_find(struct driver *d, const char *id)
{
	for (int i = 0; i < MAX_TASKS; i++)
		if (d->tasks[i].used && strcmp(d->tasks[i].id, id) == 0)
			return &d->tasks[i];
	return NULL;
}

static void update_register(struct driver *d)
{
	cJSON *arr = cJSON_CreateArray();

	if (!arr)
		return;
	for (int i = 0; i < MAX_TASKS; i++)
		if (d->tasks[i].used)
			cJSON_AddItemToArray(arr, cJSON_CreateString(d->tasks[i].id));
	cJSON_DeleteItemFromObjectCaseSensitive(d->reg, "running");
	cJSON_AddItemToObject(d->reg, "running", arr);
	net_client_set_register(d->cl, d->reg);
}

static void task_drop(struct driver *d, struct dtask *t)
{
	t->timer = loop_timer_free(t->timer);
	t->used = false;
	update_register(d);
}

static int send_status(struct driver *d, const char *id, const char *state, int64_t cpu)
{
	cJSON *m = proto_new(PROTO_TASK_STATUS);
	int r;

	if (!m || !cJSON_AddStringToObject(m, "task_id", id) ||
	    !cJSON_AddStringToObject(m, "state", state) || canon_add_i64(m, "cpu_ns", cpu) < 0) {
		cJSON_Delete(m);
		return -ENOMEM;
	}
	if (d->fail && !strcmp(state, "failed"))
		cJSON_AddStringToObject(m, "reason", d->fail);
	r = net_client_send(d->cl, m, NULL);
	cJSON_Delete(m);
	return r;
}

/* The final usage record, the result blob and TASK_RESULT, in that order. */
static void finish(struct loop_timer *tm _unused_, void *ud)
{
	struct dtask *t = ud;
	struct driver *d = NULL;
	struct usage_record r = {0};
	_cleanup_free_ char *line = NULL, *b64 = NULL;
	char result[128], digest[80], hex[SHA256_HEX_LEN + 1];
	uint8_t dg[SHA256_LEN];
	cJSON *rec = NULL, *m;
	uint8_t rec_hash[SHA256_LEN];
	uint64_t nonce = 0;
	size_t len;
	int n;

	d = the_driver; /* the timer's ud is the task */
	if (d->fail) {
		send_status(d, t->id, "failed", 1000);
		event(d, "FAILED %s", t->id);
		task_drop(d, t);
		return;
	}
	n = snprintf(result, sizeof(result), "result of task %s replica %u\n", t->id, t->replica);
	sha256(result, (size_t)n, dg);
	hex_encode(dg, SHA256_LEN, hex);
	snprintf(digest, sizeof(digest), "sha256:%s", hex);

	r.version = RECORD_VERSION;
	r.type = RECORD_FINAL;
	snprintf(r.node, sizeof(r.node), "%s", d->node_id);
	r.seq = d->seq++;
	r.time_ns = real_ns();
	snprintf(r.task, sizeof(r.task), "%s", t->id);
	r.replica = t->replica;
	snprintf(r.renter, sizeof(r.renter), "%s", t->renter[0] ? t->renter : "unknown");
	digest_parse(t->image, r.image);
	r.cgroup_id = 1234;
	r.start_ns = t->start_ns;
	r.end_ns = real_ns();
	r.wall_ns = r.end_ns - r.start_ns;
	r.cpu_ns = r.wall_ns / 2;
	r.cpu_kernel_ns = r.cpu_ns;
	r.exit_kind = RECORD_EXIT_EXITED;
	r.exit_status = d->exit_code;
	r.has_result = 1;
	memcpy(r.result, dg, SHA256_LEN);
	if (record_sign(&r, d->signer, &line, &len) < 0 ||
	    canon_parse(line, len, CANON_MAX_DEPTH_DEFAULT, &rec, NULL) < 0) {
		event(d, "ERROR sign - cannot sign the record");
		return;
	}
	/* The Proof-of-Work stamp over (task id, result digest, SHA-256 of the record line). */
	sha256(line, len, rec_hash);
	if (pow_mint(t->id, dg, rec_hash, t->pow_bits, 0, 0, &nonce) < 0) {
		event(d, "ERROR pow - cannot mint the stamp");
		cJSON_Delete(rec);
		return;
	}
	m = proto_new(PROTO_USAGE_RECORD);
	canon_add_i64(m, "seq", (int64_t)r.seq);
	cJSON_AddItemToObject(m, "record", rec);
	net_client_send(d->cl, m, NULL);
	cJSON_Delete(m);

	base64_encode(result, (size_t)n, &b64);
	m = proto_new(PROTO_BLOB_PUT);
	cJSON_AddStringToObject(m, "digest", digest);
	canon_add_i64(m, "offset", 0);
	canon_add_i64(m, "size", n);
	cJSON_AddStringToObject(m, "data", b64);
	cJSON_AddBoolToObject(m, "last", 1);
	net_client_send(d->cl, m, NULL);
	cJSON_Delete(m);

	m = proto_new(PROTO_TASK_RESULT);
	cJSON_AddStringToObject(m, "task_id", t->id);
	canon_add_i64(m, "exit_code", d->exit_code);
	cJSON_AddStringToObject(m, "result_digest", digest);
	canon_add_i64(m, "seq", (int64_t)r.seq);
	canon_add_i64(m, "pow_nonce", (int64_t)(nonce & INT64_MAX));
	canon_add_i64(m, "result_size", n);
	net_client_send(d->cl, m, &t->result_ref);
	cJSON_Delete(m);
	event(d, "FINISH %s seq %llu", t->id, (unsigned long long)r.seq);
}

static int h_offer(struct net_conn *c, const struct proto_msg *m, void *ud)
{
	struct driver *d = ud;
	const char *id = NULL, *image = NULL, *renter = NULL;
	struct dtask *t = NULL;
	int64_t replica = 0, bits = 0;
	cJSON *a;

	canon_get_str(m->root, "task_id", &id);
	canon_get_str(m->root, "image", &image);
	canon_get_str(m->root, "renter", &renter);
	canon_get_i64(m->root, "replica", &replica);
	canon_get_i64(m->root, "pow_bits", &bits);
	event(d, "OFFER %s %lld", id, (long long)replica);
	if (d->reject) {
		a = proto_new(PROTO_TASK_REJECT);
		cJSON_AddStringToObject(a, "task_id", id);
		cJSON_AddStringToObject(a, "reason", d->reject);
		net_conn_send(c, a, NULL);
		cJSON_Delete(a);
		return 0;
	}
	if (task_find(d, id)) {
		event(d, "ERROR twice - task %s offered while already held", id);
		return 0;
	}
	for (int i = 0; i < MAX_TASKS && !t; i++)
		if (!d->tasks[i].used)
			t = &d->tasks[i];
	if (!t)
		return -ENOSPC;
	memset(t, 0, sizeof(*t));
	t->used = true;
	snprintf(t->id, sizeof(t->id), "%s", id);
	snprintf(t->image, sizeof(t->image), "%s", image);
	snprintf(t->renter, sizeof(t->renter), "%s", renter ? renter : "");
	t->replica = (uint32_t)replica;
	t->pow_bits = (unsigned)bits;
	t->start_ns = real_ns();
	a = proto_new(PROTO_TASK_ACCEPT);
	cJSON_AddStringToObject(a, "task_id", id);
	net_conn_send(c, a, NULL);
	cJSON_Delete(a);
	send_status(d, id, "running", 0);
	event(d, "RUNNING %s", id);
	update_register(d);
	if (d->finish_ms >= 0 && loop_timer_new(d->loop, finish, t, &t->timer) == 0)
		loop_timer_arm(t->timer, (uint64_t)d->finish_ms);
	return 0;
}

static int h_status(struct net_conn *c _unused_, const struct proto_msg *m, void *ud)
{
	struct driver *d = ud;
	const char *id = NULL, *state = NULL;
	struct dtask *t;

	canon_get_str(m->root, "task_id", &id);
	canon_get_str(m->root, "state", &state);
	if (state && !strcmp(state, "killed")) {
		event(d, "KILL %s", id);
		t = task_find(d, id);
		if (t)
			task_drop(d, t);
	}
	return 0;
}

static int h_ack(struct net_conn *c _unused_, const struct proto_msg *m, void *ud)
{
	struct driver *d = ud;
	int64_t ref = -1;

	canon_get_i64(m->root, "ref", &ref);
	for (int i = 0; i < MAX_TASKS; i++) {
		struct dtask *t = &d->tasks[i];

		if (t->used && t->result_ref && t->result_ref == ref) {
			event(d, "DONE %s", t->id);
			task_drop(d, t);
			break;
		}
	}
	return 0;
}

static int h_error(struct net_conn *c _unused_, const struct proto_msg *m, void *ud)
{
	struct driver *d = ud;
	const char *code = "", *msg = "";
	int64_t ref = -1;

	canon_get_str(m->root, "code", &code);
	canon_get_str(m->root, "message", &msg);
	canon_get_i64(m->root, "ref", &ref);
	event(d, "ERROR %s %lld %s", code, (long long)ref, msg);
	return 0;
}

static void on_ready(struct net_client *cl _unused_, struct net_conn *c _unused_, void *ud)
{
	struct driver *d = ud;

	event(d, "READY");
	/* Results not acknowledged before a disconnect are sent again (a real agent's outbox). */
	for (int i = 0; i < MAX_TASKS; i++)
		if (d->tasks[i].used && d->tasks[i].result_ref)
			finish(NULL, &d->tasks[i]);
}

static void heartbeat(struct loop_timer *t, void *ud)
{
	struct driver *d = ud;
	cJSON *m = proto_new(PROTO_HEARTBEAT), *arr = cJSON_CreateArray();
	int64_t used = 0;

	for (int i = 0; i < MAX_TASKS; i++)
		if (d->tasks[i].used) {
			cJSON_AddItemToArray(arr, cJSON_CreateString(d->tasks[i].id));
			used++;
		}
	canon_add_i64(m, "free_cores", used < d->cores ? d->cores - used : 0);
	cJSON_AddItemToObject(m, "running", arr);
	if (net_client_conn(d->cl))
		net_client_send(d->cl, m, NULL);
	cJSON_Delete(m);
	loop_timer_arm(t, 2000);
}

static void on_term(int signo _unused_, void *ud)
{
	loop_stop(((struct driver *)ud)->loop);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"ca", required_argument, NULL, 'a'},
		{"cert", required_argument, NULL, 'c'},
		{"key", required_argument, NULL, 'k'},
		{"port", required_argument, NULL, 'p'},
		{"cores", required_argument, NULL, 'n'},
		{"mem-mb", required_argument, NULL, 'M'},
		{"price", required_argument, NULL, 'P'},
		{"location", required_argument, NULL, 'L'},
		{"perf", required_argument, NULL, 'f'},
		{"max-tasks", required_argument, NULL, 'T'},
		{"window", required_argument, NULL, 'w'},
		{"log", required_argument, NULL, 'l'},
		{"finish-ms", required_argument, NULL, 'F'},
		{"reject", required_argument, NULL, 'R'},
		{"fail", required_argument, NULL, 'X'},
		{"exit-code", required_argument, NULL, 'e'},
		{"seq", required_argument, NULL, 's'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	static struct driver d = {.finish_ms = -1};
	struct tls_config tc = {.server = 0, .peer_roles = ROLE_COORDINATOR};
	struct net_client_config cc = {.host = "127.0.0.1",
				       .log = log_line,
				       .software = "aicn-coord-agent-driver",
				       .backoff_min_ms = 100,
				       .backoff_max_ms = 500};
	const char *logpath = NULL, *location = "test", *window = NULL;
	int64_t cores = 4, mem_mb = 4096, price = 100, perf = 1000, max_tasks = 0;
	char err[TLS_ERR_LEN];
	struct tls_ctx *tls = NULL;
	EVP_PKEY *key = NULL;
	int o;

	log_setup("aicn-coord-agent-driver");
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
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
			cc.port = (uint16_t)(int)strtol(optarg, NULL, 10);
			break;
		case 'n':
			cores = strtoll(optarg, NULL, 10);
			break;
		case 'M':
			mem_mb = strtoll(optarg, NULL, 10);
			break;
		case 'P':
			price = strtoll(optarg, NULL, 10);
			break;
		case 'L':
			location = optarg;
			break;
		case 'f':
			perf = strtoll(optarg, NULL, 10);
			break;
		case 'T':
			max_tasks = strtoll(optarg, NULL, 10);
			break;
		case 'w':
			window = optarg;
			break;
		case 'l':
			logpath = optarg;
			break;
		case 'F':
			d.finish_ms = (int)strtol(optarg, NULL, 10);
			break;
		case 'R':
			d.reject = optarg;
			break;
		case 'X':
			d.fail = optarg;
			break;
		case 'e':
			d.exit_code = (int)strtol(optarg, NULL, 10);
			break;
		case 's':
			d.seq = strtoull(optarg, NULL, 10);
			break;
		case 'h':
			printf("Usage: aicn-coord-agent-driver --ca CA --cert CERT --key KEY --port N\n"
			       "  [--cores N] [--mem-mb N] [--price N] [--location S] [--perf N]\n"
			       "  [--max-tasks N] [--window SPEC] [--log FILE] [--finish-ms MS]\n"
			       "  [--reject REASON] [--fail REASON] [--exit-code N] [--seq N]\n"
			       "A protocol-level agent for coordinator tests: accepts every offer,\n"
			       "reports it running at once, finishes it after --finish-ms with a\n"
			       "signed final record, a result blob and TASK_RESULT.  Runs nothing.\n");
			return 0;
		default:
			return 2;
		}
	}
	if (!tc.ca_file || !tc.cert_file || !tc.key_file || !cc.port) {
		fprintf(stderr, "--ca, --cert, --key and --port are required\n");
		return 2;
	}
	the_driver = &d;
	d.t0_ms = mono_ms();
	if (logpath) {
		d.log = fopen(logpath, "ae");
		if (!d.log)
			return 1;
	}
	if (key_load_private(tc.key_file, &key) < 0 || key_node_id(key, d.node_id) < 0 ||
	    key_signer_new(key, &d.signer) < 0) {
		fprintf(stderr, "cannot load %s\n", tc.key_file);
		return 1;
	}
	EVP_PKEY_free(key);
	if (tls_ctx_new(&tc, &tls, err) < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	cc.tls = tls;
	cc.on_ready = on_ready;
	cc.ud = &d;
	signal(SIGPIPE, SIG_IGN);
	if (loop_new(NULL, &d.loop) < 0 || net_client_new(d.loop, &cc, &d.cl) < 0)
		return 1;
	loop_signal(d.loop, SIGTERM, on_term, &d);
	loop_signal(d.loop, SIGINT, on_term, &d);
	net_client_handle(d.cl, PROTO_TASK_OFFER, h_offer, &d);
	net_client_handle(d.cl, PROTO_TASK_STATUS, h_status, &d);
	net_client_handle(d.cl, PROTO_ACK, h_ack, &d);
	net_client_handle(d.cl, PROTO_ERROR, h_error, &d);
	d.reg = proto_test_register_new(&(const struct proto_test_register){
		.cores = cores,
		.mem_mb = mem_mb,
		.cores_offered = cores,
		.ask_price = price,
		.location = location,
		.renewable_pm = 500,
		.perf_score = perf,
		.agent_version = "driver",
	});
	if (!d.reg)
		return 1;
	if (max_tasks > 0)
		canon_add_i64(d.reg, "max_tasks", max_tasks);
	if (window)
		cJSON_AddStringToObject(d.reg, "window", window);
	update_register(&d);
	d.cores = cores;
	if (loop_timer_new(d.loop, heartbeat, &d, &d.hb) == 0)
		loop_timer_arm(d.hb, 2000);
	net_client_start(d.cl);
	loop_run(d.loop);
	for (int i = 0; i < MAX_TASKS; i++)
		loop_timer_free(d.tasks[i].timer);
	loop_timer_free(d.hb);
	d.cl = net_client_free(d.cl);
	d.loop = loop_free(d.loop);
	cJSON_Delete(d.reg);
	key_signer_free(d.signer);
	tls_ctx_free(tls);
	if (d.log)
		fclose(d.log);
	return 0;
}
