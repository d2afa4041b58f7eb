/* test_ledger_bench.c -- settlement throughput and ledger verification speed; small and checked under `make check`, full size with --bench. */
#include "ledger_util.h"

#include <aicn/pow.h>

#include <errno.h>
#include <inttypes.h>
#include <time.h>

static const int64_t S = 1000000000LL;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU seconds of this process: the figure that a loaded, shared machine disturbs least. */
static double cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double last_cpu; /* CPU seconds of the last timed part */

/*
 * Settle `tasks` tasks, each the full path: escrow at submit, the usage record's
 * physical checks and PoW stamp verified, charge with fee split, refund at close;
 * commits every `batch` tasks (1 = a commit per task).  Returns tasks per second.
 */
static double settle_run(sqlite3 *db, int tasks, int batch, int pow_bits, int offset)
{
	struct econ_params p;
	struct ledger *l = NULL;
	uint8_t result[32];
	double t0, t1;
	int r = 0;

	econ_params_default(&p);
	if (ledger_new(db, &l) < 0)
		return -1;
	if (settle_mint(l, "renter", ECON_MAX_AMOUNT / 4, offset ? "bench:mint2" : "bench:mint", 1,
			0) < 0)
		return -1;
	sha256("result", 6, result);
	last_cpu = cpu_s();
	t0 = now_s();
	for (int i = 0; i < tasks && r >= 0; i++) {
		char task[32], node[16];
		int id = offset + i;
		struct settle_escrow_req req = {.task = task,
						.renter = "renter",
						.price_per_cpu_hour = 2 * ECON_UNIT,
						.max_cpu_ns = 3600 * S,
						.replicas = 1,
						.time_ns = 10 * S,
						.epoch = 0};
		struct econ_task_window w = {.millicores = 2000,
					     .max_cpu_ns = 3600 * S,
					     .start_ns = 10 * S,
					     .end_ns = 200 * S,
					     .clock_slack_ns = S};
		struct econ_usage use = {.cpu_ns = 100 * S + id,
					 .kernel_cpu_ns = 100 * S + id,
					 .start_ns = 11 * S,
					 .end_ns = 70 * S};
		struct settle_usage_req u = {.price = SETTLE_PRICE_ESCROW,
					     .task = task,
					     .node = node,
					     .node_seq = (uint64_t)id,
					     .provider = node,
					     .cpu_ns = use.cpu_ns,
					     .renewable_ppm = 300000,
					     .time_ns = 70 * S,
					     .epoch = 0};
		uint64_t nonce = 0;

		snprintf(task, sizeof(task), "task%d", id);
		snprintf(node, sizeof(node), "node%d", id % 64);
		tu_hash("bench", (uint64_t)id, u.record_hash);
		/* the agent's stamp: minted outside the timed part would be fairer, but at
		 * the benchmark's difficulty it is a few hashes; the coordinator's verify is
		 * what settlement pays */
		if (pow_bits &&
		    pow_mint(task, result, u.record_hash, (unsigned)pow_bits, 0, 0, &nonce) < 0)
			return -1;
		if (batch > 1 && i % batch == 0)
			r = ledger_begin(l);
		if (r >= 0)
			r = settle_escrow_open(l, &req, NULL);
		if (r >= 0 && econ_check_usage(&p, &w, &use) != ECON_USAGE_OK)
			r = -EINVAL;
		if (r >= 0 && pow_bits)
			r = pow_verify(task, result, u.record_hash, nonce, (unsigned)pow_bits);
		if (r >= 0)
			r = settle_usage(l, &p, &u, NULL);
		if (r >= 0)
			r = settle_escrow_close(l, task, 80 * S, 0, NULL);
		if (r >= 0 && batch > 1 && (i % batch == batch - 1 || i == tasks - 1))
			r = ledger_commit(l);
	}
	t1 = now_s();
	last_cpu = cpu_s() - last_cpu;
	if (ledger_in_batch(l))
		ledger_rollback(l);
	ledger_free(l);
	if (r < 0) {
		fprintf(stderr, "settlement failed: %s\n", strerror(-r));
		return -1;
	}
	return tasks / (t1 - t0);
}

/* Verification speed: seconds for the whole replay, with and without the audit. */
static int verify_run(sqlite3 *db, double *ret_plain, double *ret_audit, double *ret_hash,
		      uint64_t *ret_entries, double *ret_audit_cpu)
{
	struct ledger_report rep;
	struct settle_audit *au = NULL;
	sqlite3_stmt *st;
	double t0;
	int r;

	t0 = now_s();
	r = ledger_verify(db, NULL, NULL, &rep);
	*ret_plain = now_s() - t0;
	if (r < 0) {
		fprintf(stderr, "verify: %s\n", rep.reason);
		return r;
	}
	*ret_entries = rep.entries;
	if (settle_audit_new(&au) < 0)
		return -ENOMEM;
	t0 = now_s();
	*ret_audit_cpu = cpu_s();
	r = ledger_verify(db, settle_audit_visit, au, &rep);
	*ret_audit = now_s() - t0;
	*ret_audit_cpu = cpu_s() - *ret_audit_cpu;
	settle_audit_free(au);
	if (r < 0) {
		fprintf(stderr, "audit: %s\n", rep.reason);
		return r;
	}
	/* the floor: reading and hashing the same bodies, nothing else */
	t0 = now_s();
	if (sqlite3_prepare_v2(db, "SELECT body FROM ledger_entries ORDER BY seq", -1, &st, NULL) !=
	    SQLITE_OK)
		return -EIO;
	while (sqlite3_step(st) == SQLITE_ROW) {
		uint8_t h[32];

		sha256(sqlite3_column_text(st, 0), (size_t)sqlite3_column_bytes(st, 0), h);
	}
	sqlite3_finalize(st);
	*ret_hash = now_s() - t0;
	return 0;
}

int main(int argc, char **argv)
{
	bool bench = argc > 1 && strcmp(argv[1], "--bench") == 0;
	int tasks = bench ? 20000 : 1000, unbatched = bench ? 2000 : 100;
	int fill = bench ? 333334 : 3000; /* tasks: 3 entries each */
	double batched_rate, single_rate, plain, audit, hash, batched_cpu, audit_cpu = 0;
	uint64_t entries = 0;
	sqlite3 *db;
	int rc = 0;

	if (argc > 1 && !bench) {
		fprintf(stderr, "usage: %s [--bench]\n", argv[0]);
		return 2;
	}
	/* settlement, batched and one commit per task, side by side (WAL, synchronous=FULL) */
	db = tu_open("settle.db");
	sqlite3_exec(db, "PRAGMA synchronous=FULL", NULL, NULL, NULL);
	batched_rate = settle_run(db, tasks, 256, 8, 0);
	batched_cpu = last_cpu;
	single_rate = settle_run(db, unbatched, 1, 8, tasks);
	sqlite3_close(db);
	if (batched_rate <= 0 || single_rate <= 0) {
		tu_cleanup();
		return 1;
	}
	printf("settled tasks/s (escrow + checks + PoW verify + charge + refund, 3 ledger entries "
	       "each), batches of 256: %.0f wall, %.0f per CPU-second\n",
	       batched_rate, tasks / batched_cpu);
	printf("settled tasks/s, one commit per task: %.0f (batched is %.1fx)\n", single_rate,
	       batched_rate / single_rate);

	/* a ledger of about `fill` x 3 entries, then its verification */
	db = tu_open("verify.db");
	sqlite3_exec(db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
	if (settle_run(db, fill, 4096, 0, 0) <= 0 ||
	    verify_run(db, &plain, &audit, &hash, &entries, &audit_cpu) < 0) {
		sqlite3_close(db);
		tu_cleanup();
		return 1;
	}
	sqlite3_close(db);
	printf("verify %" PRIu64 " entries: replay %.2f s, replay + audit %.2f s (%.2f CPU-s), "
	       "read + SHA-256 only %.2f s (%.1fx the floor)\n",
	       entries, plain, audit, audit_cpu, hash, audit / hash);
	if (!bench) {
		/* under make check: the figures exist and the ledger checked out */
		if (entries != (uint64_t)fill * 3 + 1 || batched_rate < 50)
			rc = 1;
	}
	tu_cleanup();
	return rc;
}
