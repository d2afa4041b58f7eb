/* test_crash.c -- kill -9 a process that submits, places and finishes tasks through the store mid-batch,
 * restart it, again and again: no acknowledged task lost, none duplicated, no slot placed twice. */
#include <aicn/compiler.h>

#include "coord_util.h"

#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#define MAX_REFS 200000
#define NODES 4

static struct tdir d;
static char image[80];
static int64_t acked_id[MAX_REFS]; /* by client_ref number: task id the renter was told */

/* The child: a coordinator whose replies go to fd only after coord_flush(). */
static _noreturn_ void child(int fd, int first_ref, unsigned seed)
{
	struct coord *c = NULL;
	struct coord_params p;
	struct coord_actions a = {0};
	int64_t renter, node[NODES];
	char line[128], err[256], req[512];
	int ref = first_ref;

	coord_params_default(&p);
	p.batch_max = 1000000; /* only explicit flushes commit */
	if (coord_open(d.db, d.blobs, &p, T0, &c) < 0 ||
	    store_account_ensure(coord_store(c), "renter", "renter", &renter) < 0 ||
	    put_image(c, renter, T0, image) < 0)
		_exit(3);
	/* The agents come back running exactly what they were offered. */
	for (int i = 0; i < NODES; i++) {
		struct store_node sn;
		char extra[4096];
		size_t off;

		off = (size_t)snprintf(extra, sizeof(extra), ", \"running\": [");
		if (store_node_find(coord_store(c), node_hex((char)('a' + i)), &sn) == 0) {
			sqlite3_stmt *s = NULL;

			sqlite3_prepare_v2(
				store_db(coord_store(c)),
				"SELECT task_id FROM replicas WHERE node = ?1 AND state IN (0, 1)",
				-1, &s, NULL);
			sqlite3_bind_int64(s, 1, sn.id);
			while (sqlite3_step(s) == SQLITE_ROW && off < sizeof(extra) - 32)
				off += (size_t)snprintf(extra + off, sizeof(extra) - off, "%s%lld",
							extra[off - 1] == '[' ? "" : ",",
							(long long)sqlite3_column_int64(s, 0));
			sqlite3_finalize(s);
		}
		snprintf(extra + off, sizeof(extra) - off, "]");
		node[i] = reg_node(c, (char)('a' + i), 8, extra, T0, &a);
		if (node[i] < 0)
			_exit(4);
	}
	if (a.n) /* nothing may need cancelling or requeueing */
		_exit(5);
	if (coord_flush(c) < 0)
		_exit(6);
	for (;;) {
		int batch_first = ref, n = 1 + (int)(rand_r(&seed) % 40);
		int64_t ids[64];

		a.n = 0;
		for (int k = 0; k < n; k++, ref++) {
			snprintf(
				req, sizeof(req),
				"{\"image\": \"%s\", \"command\": [\"true\"], \"cores\": 1, "
				"\"memory\": 1048576, \"max_wall_seconds\": 60, \"max_price\": 100, "
				"\"client_ref\": \"k-%d\"}",
				image, ref);
			ids[k] = submit(c, renter, req, T0, err, sizeof(err));
			if (ids[k] <= 0)
				_exit(7);
		}
		if (coord_schedule(c, T0, 1000, &a) < 0)
			_exit(8);
		/* Some running tasks finish. */
		for (size_t k = 0; k < a.n; k++)
			if (rand_r(&seed) % 2)
				coord_task_event(c, a.v[k].node, a.v[k].task_id, COORD_EV_FINISHED,
						 0, "", NULL, T0, NULL);
		if (coord_flush(c) < 0)
			_exit(9);
		/* Only now may anyone hear about this batch. */
		for (int k = 0; k < n; k++) {
			int len = snprintf(line, sizeof(line), "T %d %lld\n", batch_first + k,
					   (long long)ids[k]);

			if (write(fd, line, (size_t)len) != len)
				_exit(10);
		}
	}
}

static int read_acks(FILE *f, int *max_ref)
{
	char line[128], *end;
	long ref;
	long long id;
	int dup_mismatch = 0;

	while (fgets(line, sizeof(line), f)) {
		if (line[0] != 'T' || line[1] != ' ')
			return -1;
		ref = strtol(line + 2, &end, 10);
		if (*end != ' ' || ref < 0 || ref >= MAX_REFS)
			return -1;
		id = strtoll(end + 1, &end, 10);
		if (*end != '\n')
			break; /* the last line, cut by the kill */
		if (acked_id[ref] && acked_id[ref] != id)
			dup_mismatch++; /* a resubmission got a different task: a duplicate */
		acked_id[ref] = id;
		if (ref > *max_ref)
			*max_ref = ref;
	}
	return dup_mismatch;
}

static void test_kill9(void)
{
	struct store *st = NULL;
	int max_ref = -1, kills = 0, total_acked = 0;
	unsigned seed = (unsigned)getpid();
	sqlite3_stmt *s = NULL;

	tdir_make(&d);
	{
		struct coord *c = NULL;
		int64_t renter;

		CHECK_EQ(coord_open(d.db, d.blobs, NULL, T0, &c), 0);
		CHECK_EQ(store_account_ensure(coord_store(c), "renter", "renter", &renter), 0);
		CHECK_EQ(put_image(c, renter, T0, image), 0);
		CHECK_EQ(coord_flush(c), 0);
		coord_free(c);
	}
	for (int round = 0; round < 8; round++) {
		int p[2], status;
		pid_t pid;
		FILE *f;
		/* Restart a little before the last acknowledged submission: retries must dedupe. */
		int first = max_ref >= 5 ? max_ref - 5 : 0;

		CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
		pid = fork();
		CHECK(pid >= 0);
		if (pid == 0) {
			close(p[0]);
			child(p[1], first, seed + (unsigned)round);
		}
		close(p[1]);
		usleep(20000 + (rand_r(&seed) % 150) * 1000);
		CHECK_EQ(kill(pid, SIGKILL), 0);
		CHECK_EQ(waitpid(pid, &status, 0), pid);
		if (!WIFSIGNALED(status)) {
			fprintf(stderr, "child exited %d before the kill\n", WEXITSTATUS(status));
			CHECK(0);
		}
		kills++;
		f = fdopen(p[0], "r");
		CHECK(f);
		CHECK_EQ(read_acks(f, &max_ref), 0);
		fclose(f);
	}
	printf("%d kills, %d submissions acknowledged\n", kills, max_ref + 1);
	CHECK(max_ref > 50);

	CHECK_EQ(store_open(d.db, 0, &st), 0);
	/* Every acknowledged task is there, exactly once, with the id the renter was told. */
	CHECK_EQ(sqlite3_prepare_v2(
			 store_db(st),
			 "SELECT id, (SELECT count(*) FROM tasks t2 WHERE t2.client_ref = ?1) "
			 "FROM tasks WHERE client_ref = ?1",
			 -1, &s, NULL),
		 SQLITE_OK);
	for (int ref = 0; ref <= max_ref; ref++) {
		char name[32];

		if (!acked_id[ref])
			continue;
		total_acked++;
		snprintf(name, sizeof(name), "k-%d", ref);
		sqlite3_bind_text(s, 1, name, -1, SQLITE_TRANSIENT);
		if (sqlite3_step(s) != SQLITE_ROW || sqlite3_column_int64(s, 0) != acked_id[ref] ||
		    sqlite3_column_int64(s, 1) != 1) {
			fprintf(stderr, "acknowledged task %s (id %lld) lost or duplicated\n", name,
				(long long)acked_id[ref]);
			CHECK(0);
		}
		sqlite3_reset(s);
	}
	sqlite3_finalize(s);
	CHECK(total_acked > 50);
	/* No slot is live twice, no task has more live placements than replicas, none was lost. */
	CHECK_EQ(sqlite3_prepare_v2(
			 store_db(st),
			 "SELECT (SELECT count(*) FROM (SELECT task_id FROM replicas "
			 "WHERE state IN (0,1) GROUP BY task_id HAVING count(*) > 1)), "
			 "(SELECT count(*) FROM replicas WHERE state = 5), "
			 "(SELECT count(*) FROM tasks t WHERE state = 1 AND NOT EXISTS "
			 "(SELECT 1 FROM replicas r WHERE r.task_id = t.id AND r.state IN (0,1)))",
			 -1, &s, NULL),
		 SQLITE_OK);
	CHECK_EQ(sqlite3_step(s), SQLITE_ROW);
	CHECK_EQ(sqlite3_column_int64(s, 0), 0);
	CHECK_EQ(sqlite3_column_int64(s, 1), 0);
	CHECK_EQ(sqlite3_column_int64(s, 2), 0);
	sqlite3_finalize(s);
	CHECK_EQ(sqlite3_prepare_v2(store_db(st), "PRAGMA integrity_check", -1, &s, NULL),
		 SQLITE_OK);
	CHECK_EQ(sqlite3_step(s), SQLITE_ROW);
	CHECK_STREQ((const char *)sqlite3_column_text(s, 0), "ok");
	sqlite3_finalize(s);
	store_free(st);
	tdir_remove(&d);
}

int main(void)
{
	static const struct test_case cases[] = {
		TEST(test_kill9),
		{NULL, NULL},
	};

	return harness_run(cases);
}
