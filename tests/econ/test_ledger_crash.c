/* test_ledger_crash.c -- kill -9 a settling process 100 times at random points: the ledger verifies, conservation holds, nothing is paid twice, and the end state equals an uninterrupted run's. */
#include "ledger_util.h"

#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#define TASKS 80
#define NODES 5
#define RECORDS 4000
#define PER_EPOCH 200
#define KILLS 100

static const int64_t S = 1000000000LL;

static int64_t record_cpu(int i)
{
	return (int64_t)(60 + i % 600) * S; /* 1 to 11 CPU-minutes */
}

/* Genesis: a renter with funds, stakers, and one escrow per task. */
static int genesis(struct ledger *l, const struct econ_params *p)
{
	int r = settle_mint(l, "renter", 1000000 * ECON_UNIT, "genesis:renter", 1, 0);

	for (int n = 0; r >= 0 && n < NODES; n++) {
		char node[32], cause[48];

		snprintf(node, sizeof(node), "node%d", n);
		snprintf(cause, sizeof(cause), "genesis:%s", node);
		r = settle_mint(l, node, (n + 1) * 100 * ECON_UNIT, cause, 1, 0);
		if (r >= 0)
			r = gov_stake(l, node, (n + 1) * 100 * ECON_UNIT, cause, 1, 0);
	}
	for (int t = 0; r >= 0 && t < TASKS; t++) {
		char task[32];
		struct settle_escrow_req req = {.task = task,
						.renter = "renter",
						.price_per_cpu_hour = 3 * ECON_UNIT,
						.max_cpu_ns = 3600 * S,
						.replicas = RECORDS / TASKS,
						.time_ns = 2,
						.epoch = 0};

		snprintf(task, sizeof(task), "task%d", t);
		r = settle_escrow_open(l, &req, NULL);
	}
	(void)p;
	return r;
}

static long kill_countdown; /* progress callbacks left before SIGKILL, 0 = never */

/* SQLite calls this every 100 virtual machine steps: die there, mid-statement. */
static int die_at_random(void *unused)
{
	(void)unused;
	if (kill_countdown > 0 && --kill_countdown == 0)
		raise(SIGKILL);
	return 0;
}

/*
 * The settlement workload, resumable: records in order, in batches of random size,
 * each epoch closed after its records; anything already in the ledger is -EEXIST
 * and skipped.  Deterministic content, so every run ends in the same ledger.
 */
static int workload(const char *path, unsigned seed, int ready_fd)
{
	struct econ_params p;
	struct ledger *l = NULL;
	sqlite3 *db = NULL;
	int r = 0, i = 0;

	econ_params_default(&p);
	srand(seed);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_busy_timeout(db, 5000);
	sqlite3_exec(db, "PRAGMA synchronous=FULL", NULL, NULL, NULL);
	r = ledger_new(db, &l);
	if (kill_countdown)
		sqlite3_progress_handler(db, 100, die_at_random, NULL);
	if (ready_fd >= 0 && write(ready_fd, "x", 1) != 1)
		r = -EIO;
	/* records settle in order, each batch atomically: resume after the last one */
	if (r >= 0) {
		sqlite3_stmt *st;

		if (sqlite3_prepare_v2(db, "SELECT count(*) FROM ledger_usage", -1, &st, NULL) ==
			    SQLITE_OK &&
		    sqlite3_step(st) == SQLITE_ROW)
			i = sqlite3_column_int(st, 0);
		sqlite3_finalize(st);
	}
	if (r >= 0 && i > 0 && i % PER_EPOCH == 0) {
		r = settle_epoch_close(l, &p, (uint64_t)(i / PER_EPOCH - 1), 10 + i - 1, NULL);
		if (r == -EEXIST)
			r = 0;
	}
	while (r >= 0 && i < RECORDS) {
		int batch = 1 + rand() % 16;

		r = ledger_begin(l);
		for (; r >= 0 && batch-- > 0 && i < RECORDS; i++) {
			char task[32], node[32];
			struct settle_usage_req u = {.price = SETTLE_PRICE_ESCROW,
						     .task = task,
						     .node = node,
						     .node_seq = (uint64_t)i,
						     .provider = node,
						     .cpu_ns = record_cpu(i),
						     .renewable_ppm = (i % 3) * 400000,
						     .time_ns = 10 + i,
						     .epoch = (uint64_t)(i / PER_EPOCH)};

			snprintf(task, sizeof(task), "task%d", i % TASKS);
			snprintf(node, sizeof(node), "node%d", i % NODES);
			tu_hash("crash-record", (uint64_t)i, u.record_hash);
			r = settle_usage(l, &p, &u, NULL);
			if (r == -EEXIST)
				r = 0;
			if (r >= 0 && (i + 1) % PER_EPOCH == 0) {
				r = settle_epoch_close(l, &p, (uint64_t)(i / PER_EPOCH), 10 + i,
						       NULL);
				if (r == -EEXIST)
					r = 0;
			}
		}
		if (r >= 0)
			r = ledger_commit(l);
		else if (ledger_in_batch(l))
			ledger_rollback(l);
	}
	for (int t = 0; r >= 0 && t < TASKS; t++) {
		char task[32];

		snprintf(task, sizeof(task), "task%d", t);
		r = settle_escrow_close(l, task, 10 + RECORDS, RECORDS / PER_EPOCH, NULL);
		if (r == -EEXIST)
			r = 0;
	}
	ledger_free(l);
	sqlite3_close(db);
	return r;
}

static sqlite3 *create(const char *name, char *path, size_t len)
{
	struct econ_params p;
	struct ledger *l = NULL;
	sqlite3 *db;

	econ_params_default(&p);
	snprintf(path, len, "%s/%s", tu_tmpdir(), name);
	db = tu_open(name);
	sqlite3_exec(db, "PRAGMA synchronous=FULL", NULL, NULL, NULL);
	if (ledger_new(db, &l) < 0 || genesis(l, &p) < 0)
		abort();
	ledger_free(l);
	return db;
}

static int settled(sqlite3 *db)
{
	sqlite3_stmt *st;
	int n = -1;

	if (sqlite3_prepare_v2(db, "SELECT count(*) FROM ledger_usage", -1, &st, NULL) ==
		    SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return n;
}

static void test_kill9(void)
{
	char path[512], ref_path[512];
	struct ledger_report rep, ref;
	sqlite3 *db;
	int killed = 0, progress_kills = 0, last = 0;
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	srand((unsigned)ts.tv_nsec);
	/* the uninterrupted reference */
	db = create("ref.db", ref_path, sizeof(ref_path));
	sqlite3_close(db);
	CHECK_EQ(workload(ref_path, 1, -1), 0);
	db = tu_open("ref.db");
	CHECK_EQ(ledger_verify(db, NULL, NULL, &ref), 0);
	CHECK_EQ(settled(db), RECORDS);
	sqlite3_close(db);

	db = create("crash.db", path, sizeof(path));
	sqlite3_close(db);
	for (int k = 0; k < KILLS; k++) {
		int pfd[2], status = 0, n;
		long long total, minted;
		pid_t pid;
		char c;

		CHECK(pipe2(pfd, O_CLOEXEC) == 0);
		/* odd runs die inside SQLite at a random step; even runs get kill -9 from
		 * outside after a random delay once they are settling */
		kill_countdown = k % 2 ? 1 + rand() % 300 : 0;
		pid = fork();
		CHECK(pid >= 0);
		if (pid == 0) {
			close(pfd[0]);
			_exit(workload(path, (unsigned)k, pfd[1]) < 0 ? 2 : 0);
		}
		close(pfd[1]);
		if (read(pfd[0], &c, 1) == 1 && k % 2 == 0) {
			usleep((useconds_t)(rand() % 1000));
			kill(pid, SIGKILL);
		}
		close(pfd[0]);
		CHECK(waitpid(pid, &status, 0) == pid);
		if (WIFSIGNALED(status)) {
			killed++;
		} else {
			CHECK_EQ(WEXITSTATUS(status), 0);
			break; /* finished before the kill: nothing left to interrupt */
		}
		db = tu_open("crash.db");
		if (ledger_verify(db, NULL, NULL, &rep) < 0) {
			fprintf(stderr, "after kill %d: %s (entry %" PRIu64 ")\n", k, rep.reason,
				rep.bad_seq);
			sqlite3_close(db);
			CHECK(0);
		}
		CHECK_EQ(tu_sums(db, &total, &minted), 0);
		CHECK_EQ(total, minted);
		CHECK_EQ(rep.total, rep.minted);
		n = settled(db);
		CHECK(n >= last);
		progress_kills += n > last && n < RECORDS;
		last = n;
		sqlite3_close(db);
	}
	printf("%d kills, %d of them mid-settlement, %d of %d records settled before the end\n",
	       killed, progress_kills, last, RECORDS);
	CHECK_EQ(killed, KILLS);
	CHECK(progress_kills >= 25);
	/* finish, and the ledger is the reference ledger entry for entry */
	kill_countdown = 0;
	CHECK_EQ(workload(path, 999, -1), 0);
	db = tu_open("crash.db");
	{
		struct settle_audit *au = NULL;

		CHECK_EQ(settle_audit_new(&au), 0);
		CHECK_EQ(ledger_verify(db, settle_audit_visit, au, &rep), 0);
		CHECK(settle_audit_checked(au) >= RECORDS);
		settle_audit_free(au);
	}
	CHECK_EQ(settled(db), RECORDS);
	sqlite3_close(db);
	CHECK_EQ(rep.entries, ref.entries);
	CHECK_EQ(rep.minted, ref.minted);
	CHECK_EQ(rep.usage_records, RECORDS);
	CHECK(memcmp(rep.head, ref.head, 32) == 0);
}

int main(void)
{
	static const struct test_case cases[] = {
		TEST(test_kill9),
		{NULL, NULL},
	};
	int r = harness_run(cases);

	tu_cleanup();
	return r;
}
