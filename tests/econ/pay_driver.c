/* pay_driver.c -- drives settlement through a real coordinator until killed
 * (kill -9 tests), checks the invariants after, and runs the admin subcommands.
 */
#include "pay_util.h"

#include "../../coordinator/admin.h"

#include <inttypes.h>
#include <sqlite3.h>
#include <time.h>

#define A PW_AICN
#define S PW_S

static char err[256];

static void usage(void)
{
	fprintf(stderr, "Usage: aicn-pay-driver run DIR N      settle N more tasks in DIR\n"
			"       aicn-pay-driver verify DIR     check the ledger and its "
			"invariants\n"
			"       aicn-pay-driver admin ARGS...  aicn-coordinator's admin "
			"subcommands\n");
}

static int64_t count(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	int64_t n = -1;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

/* One task from SUBMIT to refund; every 5th has 3 replicas and one of them
 * lies. */
static int one_task(struct pw *w, int64_t k)
{
	struct pw_run run[3] = {0};
	char spec[1024], ref[48], acct[64];
	int64_t now = PW_T0 + k * 100, id;
	int reps = k % 5 == 0 ? 3 : k % 3 == 0 ? 2 : 1, n, r = 0;
	enum pay_verdict v;

	if (pw_balance(w, "alice") < 10 * A) {
		snprintf(ref, sizeof(ref), "drv-mint-%" PRId64, k);
		r = pay_mint(w->p, "alice", 50 * A, ref, now * S);
		if (r < 0 && r != -EEXIST)
			return r;
	}
	for (int i = 0; i < PW_NODES; i++) {
		snprintf(acct, sizeof(acct), "stake:%s", w->provider[i]);
		if (pw_balance(w, acct) > 0)
			continue;
		snprintf(ref, sizeof(ref), "drv-stake-%" PRId64 "-%d", k, i);
		r = pay_mint(w->p, w->provider[i], 10 * A, ref, now * S);
		if (r >= 0)
			r = pay_stake(w->p, w->provider[i], 10 * A, now * S, err, sizeof(err));
		if (r < 0)
			return r;
	}
	snprintf(ref, sizeof(ref), "drv-%" PRId64, k);
	pw_spec(w, 2 * A, reps, ref, spec, sizeof(spec));
	id = pw_submit(w, spec, now, NULL, err, sizeof(err));
	if (id < 0)
		return (int)id;
	n = pw_offers(w, id, now + 1, run, reps);
	if (n != reps)
		return n < 0 ? n : -EAGAIN;
	for (int i = 0; i < n && r >= 0; i++) {
		struct pw_usage u = {.start_s = 1,
				     .end_s = 61,
				     .cpu_ns = (30 + k % 20) * S,
				     .kernel_ns = (30 + k % 20) * S,
				     .seq = (uint64_t)k * 8 + (uint64_t)i,
				     .result = (uint8_t)(reps == 3 && i == 2 ? 0xbb : 0xaa),
				     .signer = -1};

		r = pw_record(w, id, &run[i], &u);
		if (r >= 0)
			r = pw_events(w, id, &run[i], now + 62);
		if (r >= 0)
			r = pw_result(w, id, &run[i], now + 62, &v, err, sizeof(err));
	}
	for (int i = 0; i < n; i++)
		free(run[i].line);
	if (r >= 0)
		r = pay_on_task_end(w->p, id, (now + 63) * S, NULL);
	if (r >= 0)
		r = coord_flush(w->c);
	if (r >= 0 && k % 4 == 0)
		r = pay_tick(w->p, (now + 64) * S, 1000, 16000);
	return r < 0 ? r : 0;
}

static int do_run(const char *dir, long n)
{
	struct pw w = {0};
	sqlite3_stmt *st = NULL;
	char params[320];
	int64_t k = 0;
	FILE *f;
	int r;

	snprintf(w.dir, sizeof(w.dir), "%s", dir);
	/* short epochs, so kills land inside epoch closes too */
	snprintf(params, sizeof(params), "%s/params.ini", dir);
	f = fopen(params, "we");
	if (!f)
		return 1;
	fprintf(f, "[econ]\nepoch_ns = 600000000000\n");
	fclose(f);
	r = pw_open(&w, PW_T0, params, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "open: %s (%s)\n", err, strerror(-r));
		pw_free(&w);
		return 1;
	}
	if (sqlite3_prepare_v2(store_db(coord_store(w.c)), "SELECT count(*) FROM tasks", -1, &st,
			       NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		k = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	for (long i = 0; i < n && r >= 0; i++)
		r = one_task(&w, ++k);
	pw_free(&w);
	if (r < 0) {
		fprintf(stderr, "task %" PRId64 ": %s (%s)\n", k, strerror(-r), err);
		return 1;
	}
	return 0;
}

static int fail(const char *what, int64_t a, int64_t b)
{
	printf("INVARIANT BROKEN: %s (%" PRId64 " vs %" PRId64 ")\n", what, a, b);
	return 1;
}

static int do_verify(const char *dir)
{
	struct settle_audit *au = NULL;
	struct ledger_report rep = {0};
	sqlite3 *db = NULL;
	char path[320];
	int64_t a, b;
	uint64_t settled = 0, signed_ok = 0;
	int r, ret = 0;

	snprintf(path, sizeof(path), "%s/coord.db", dir);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		sqlite3_close(db);
		return 1;
	}
	if (settle_audit_new(&au) < 0)
		return 1;
	settle_audit_require_records(au, true);
	r = ledger_verify(db, settle_audit_visit, au, &rep);
	settle_audit_records(au, &settled, &signed_ok);
	settle_audit_free(au);
	if (r != 0) {
		printf("UNSOUND at entry %" PRIu64 ": %s\n", rep.bad_seq, rep.reason);
		sqlite3_close(db);
		return 1;
	}
	if (rep.minted != rep.total)
		ret |= fail("sum of balances = minted", rep.total, rep.minted);
	if (settled != signed_ok)
		ret |= fail("every charge carries its signed record", (int64_t)signed_ok,
			    (int64_t)settled);
	/* nothing paid twice: one settle entry per paid result, and the other way
   * round */
	a = count(db, "SELECT count(*) FROM ledger_usage");
	b = count(db, "SELECT count(*) FROM pay_results WHERE state = 1");
	if (a != b)
		ret |= fail("settled records = paid results", a, b);
	a = count(db, "SELECT count(*) FROM (SELECT task FROM pay_results WHERE state = 1 "
		      "GROUP BY task, node HAVING count(*) > 1)");
	if (a != 0)
		ret |= fail("one paid result per node and task", a, 0);
	a = count(db, "SELECT count(*) FROM ledger_usage u JOIN tasks t ON u.task = "
		      "CAST(t.id AS TEXT) GROUP BY u.task HAVING count(*) > t.replicas");
	if (a > 0)
		ret |= fail("no task paid more results than replicas", a, 0);
	/* the task and its money committed together */
	a = count(db, "SELECT count(*) FROM tasks t LEFT JOIN ledger_escrow e ON e.task = "
		      "CAST(t.id AS TEXT) WHERE e.task IS NULL");
	if (a != 0)
		ret |= fail("every task has its escrow", a, 0);
	a = count(db, "SELECT count(*) FROM tasks WHERE state = 2");
	b = count(db, "SELECT count(*) FROM ledger_escrow WHERE closed = 1");
	if (a != b)
		ret |= fail("finished tasks = closed escrows", a, b);
	a = count(db, "SELECT count(*) FROM ledger_escrow e JOIN ledger_balances b "
		      "ON b.account "
		      "= 'escrow:' || e.task WHERE e.closed = 1 AND b.balance != 0");
	if (a != 0)
		ret |= fail("closed escrows are empty", a, 0);
	printf("%s: %" PRIu64 " entries, %" PRId64 " tasks, %" PRIu64
	       " records paid once each, minted %" PRId64 " = balances %" PRId64 "\n",
	       ret ? "BROKEN" : "sound", rep.entries, count(db, "SELECT count(*) FROM tasks"),
	       rep.usage_records, rep.minted, rep.total);
	sqlite3_close(db);
	return ret;
}

/* ---- bench: settled tasks per second, the time spent in pay_* and the commits
 * only ---- */

struct clk {
	double wall, cpu;
};

static double now_s(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void clk_start(struct clk *c)
{
	c->wall -= now_s(CLOCK_MONOTONIC);
	c->cpu -= now_s(CLOCK_PROCESS_CPUTIME_ID);
}

static void clk_stop(struct clk *c)
{
	c->wall += now_s(CLOCK_MONOTONIC);
	c->cpu += now_s(CLOCK_PROCESS_CPUTIME_ID);
}

/* One task: the coordinator's part untimed, settlement's part (and the commit)
 * timed. */
static int bench_task(struct pw *w, int64_t k, struct clk *t)
{
	struct pw_run run[1] = {0};
	struct pw_usage u = {.start_s = 1,
			     .end_s = 61,
			     .cpu_ns = 30 * S,
			     .kernel_ns = 30 * S,
			     .seq = (uint64_t)k,
			     .result = 0xcc,
			     .signer = -1};
	int64_t now = PW_T0 + 10 + k, id = 0, esc = 0;
	char spec_text[1024];
	cJSON *spec, *reply = NULL;
	enum pay_verdict v;
	int r;

	pw_spec(w, 2 * A, 1, NULL, spec_text, sizeof(spec_text));
	spec = pw_json(spec_text);
	if (!spec)
		return -ENOMEM;
	clk_start(t);
	r = pay_submit_check(w->p, "alice", spec, &esc, err, sizeof(err));
	clk_stop(t);
	if (r >= 0)
		r = coord_submit(w->c, w->renter_id, spec, now, &reply, err, sizeof(err));
	if (r >= 0)
		r = canon_get_i64(reply, "task_id", &id);
	clk_start(t);
	if (r >= 0)
		r = pay_submit_commit(w->p, "alice", id, spec, now * S, reply);
	clk_stop(t);
	cJSON_Delete(spec);
	cJSON_Delete(reply);
	if (r >= 0) { /* the scheduling pass, without the flush pw_offers does */
		struct coord_actions a = {0};

		r = coord_tick(w->c, now, &a);
		for (size_t i = 0; r >= 0 && i < a.n; i++)
			if (a.v[i].kind == COORD_OFFER && a.v[i].task_id == id) {
				run[0].row = a.v[i].node;
				run[0].node = pw_node_index(w, a.v[i].node);
				run[0].replica = a.v[i].idx;
				run[0].offered_s = now;
			}
		free(a.v);
		if (r >= 0 && run[0].row == 0)
			r = -EAGAIN;
		clk_start(t);
		if (r >= 0)
			r = pay_offer_terms(w->p, A, 2 * A, &run[0].price, &run[0].pow_bits);
		clk_stop(t);
	}
	if (r >= 0)
		r = pw_record(w, id, &run[0], &u);
	if (r >= 0)
		r = pw_events(w, id, &run[0], now + 62);
	clk_start(t);
	if (r >= 0)
		r = pw_result(w, id, &run[0], now + 62, &v, err, sizeof(err));
	if (r >= 0 && v != PAY_SETTLED)
		r = -EPROTO;
	if (r >= 0)
		r = pay_on_task_end(w->p, id, (now + 63) * S, NULL);
	clk_stop(t);
	free(run[0].line);
	return r;
}

static int do_bench(const char *dir, long n, long batch)
{
	struct pw w = {0};
	struct clk t = {0, 0};
	char params[320];
	int r;
	FILE *f;

	snprintf(w.dir, sizeof(w.dir), "%s", dir);
	snprintf(params, sizeof(params), "%s/params.ini", dir);
	f = fopen(params, "we");
	if (!f)
		return 1;
	/* cheap stamps for the agent side (verification is one hash either way), no
   * epoch */
	fprintf(f, "[econ]\npow_max_bits = 8\nepoch_ns = 31536000000000000\n");
	fclose(f);
	r = pw_open(&w, PW_T0, params, err, sizeof(err));
	if (r >= 0)
		r = pay_mint(w.p, "alice", (int64_t)n * 3 * A, NULL, PW_T0 * S);
	if (r >= 0)
		r = coord_flush(w.c);
	for (long i = 0; i < n && r >= 0; i++) {
		r = bench_task(&w, i + 1, &t);
		if (r >= 0 && ((i + 1) % batch == 0 || i + 1 == n)) {
			clk_start(&t);
			r = coord_flush(w.c);
			clk_stop(&t);
		}
	}
	pw_free(&w);
	if (r < 0) {
		fprintf(stderr, "bench: %s (%s)\n", strerror(-r), err);
		return 1;
	}
	printf("settled %ld tasks, commit every %ld: settlement %.3f s wall, %.3f s "
	       "CPU: "
	       "%.0f tasks/s, %.0f per CPU-second\n",
	       n, batch, t.wall, t.cpu, (double)n / t.wall, (double)n / t.cpu);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "admin") == 0) {
		int r = coord_admin_main(argc - 1, argv + 1);

		if (r < 0) {
			usage();
			return 2;
		}
		return r;
	}
	if (argc == 4 && strcmp(argv[1], "run") == 0)
		return do_run(argv[2], strtol(argv[3], NULL, 10));
	if (argc == 3 && strcmp(argv[1], "verify") == 0)
		return do_verify(argv[2]);
	if (argc == 5 && strcmp(argv[1], "bench") == 0)
		return do_bench(argv[2], strtol(argv[3], NULL, 10), strtol(argv[4], NULL, 10));
	usage();
	return 2;
}
