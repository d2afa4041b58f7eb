/* test_coord.c -- task lifecycle through store and scheduler: SUBMIT checks, events, loss, restart. */
#include "coord_util.h"

#include "harness.h"

#include <errno.h>

static struct tdir d;
static struct coord *c;
static int64_t renter;
static char image[80];
static char body[2048];

static int open_coord(int64_t now)
{
	struct coord_params p;

	coord_params_default(&p);
	return coord_open(d.db, d.blobs, &p, now, &c);
}

static void start(void)
{
	tdir_make(&d);
	if (open_coord(T0) < 0 ||
	    store_account_ensure(coord_store(c), "renter", "renter", &renter) < 0 ||
	    put_image(c, renter, T0, image) < 0 || coord_flush(c) < 0)
		abort();
}

static void stop(void)
{
	c = coord_free(c);
	tdir_remove(&d);
}

/* A good submission with EXTRA members (", \"k\": v" ...) added or replacing defaults. */
static const char *task_json(const char *extra)
{
	char base[1024], over[1024];
	cJSON *b, *o, *it;
	char *text = NULL;

	snprintf(base, sizeof(base),
		 "{\"image\": \"%s\", \"command\": [\"/bin/sh\", \"-c\", \"echo hi\"], "
		 "\"cores\": 1, \"memory\": 1048576, \"max_wall_seconds\": 60, \"max_price\": 100}",
		 image);
	snprintf(over, sizeof(over), "{%s}", extra ? extra + 1 : "");
	b = json(base);
	o = json(over);
	if (!b || !o)
		abort();
	while ((it = o->child)) {
		cJSON_DetachItemViaPointer(o, it);
		cJSON_DeleteItemFromObjectCaseSensitive(b, it->string);
		cJSON_AddItemToObject(b, it->string, it);
	}
	if (canon_print(b, &text, NULL) < 0)
		abort();
	snprintf(body, sizeof(body), "%s", text);
	free(text);
	cJSON_Delete(b);
	cJSON_Delete(o);
	return body;
}

static int64_t count_rows(const char *table)
{
	char sql[128];
	sqlite3_stmt *s = NULL;
	int64_t n = -1;

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
	if (sqlite3_prepare_v2(store_db(coord_store(c)), sql, -1, &s, NULL) == SQLITE_OK &&
	    sqlite3_step(s) == SQLITE_ROW)
		n = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return n;
}

static void test_bad_submissions(void)
{
	static const struct {
		const char *extra, *want;
	} bad[] = {
		{", \"cores\": 64", "cores: 64 exceeds every provider (largest offers 8)"},
		{", \"cores\": -1", "cores: must be an integer from 1 to 4096"},
		{", \"cores\": 99999999999999", "cores: must be an integer from 1 to 4096"},
		{", \"memory\": 0", "memory: must be an integer"},
		{", \"max_price\": -5", "max_price: must be an integer from 0"},
		{", \"max_wall_seconds\": 99999999999", "max_wall_seconds: must be an integer"},
		{", \"max_cpu_seconds\": 61", "max_cpu_seconds: must be an integer from 1 to 60"},
		{", \"replicas\": 2", "replicas: 2 need as many distinct providers"},
		{", \"replicas\": 0", "replicas: must be an integer from 1 to 5"},
		{", \"policy\": \"random\"", "policy: must be \"balanced\""},
		{", \"providers\": [\"abc\"]", "providers: each must be a node id"},
		{", \"providers\": [\""
		 "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
		 "\"]",
		 "providers: unknown provider"},
		{", \"location\": \"eu west\"", "location: 1 to 32"},
		{", \"deadline\": 5", "deadline: must be an integer"},
		{", \"env\": {\"1X\": \"y\"}", "env: \"1X\" is not a variable name"},
		{", \"colour\": \"blue\"", "unknown field \"colour\""},
		{", \"min_rating\": 6", "min_rating: must be an integer from 1 to 5"},
	};
	static const char *const whole[][2] = {
		{"[]", "submit: the body must be a JSON object"},
		{"{\"command\": [\"x\"], \"cores\": 1, \"memory\": 1048576, \"max_wall_seconds\": 1, "
		 "\"max_price\": 1}",
		 "image: missing"},
		{"{\"image\": \"sha256:0000000000000000000000000000000000000000000000000000000000000000\", "
		 "\"command\": [\"x\"], \"cores\": 1, \"memory\": 1048576, \"max_wall_seconds\": 1, "
		 "\"max_price\": 1}",
		 "image: unknown image digest sha256:0000"},
		{"{\"image\": \"latest\", \"command\": [\"x\"], \"cores\": 1, \"memory\": 1048576, "
		 "\"max_wall_seconds\": 1, \"max_price\": 1}",
		 "image: must be a digest"},
	};
	char err[256];
	int64_t r;

	start();
	CHECK(reg_node(c, 'a', 8, NULL, T0, NULL) > 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		r = submit(c, renter, task_json(bad[i].extra), T0, err, sizeof(err));
		if (r != -EINVAL || !strstr(err, bad[i].want)) {
			fprintf(stderr, "%s: got %lld \"%s\", want \"%s\"\n", bad[i].extra,
				(long long)r, err, bad[i].want);
			CHECK(0);
		}
	}
	for (size_t i = 0; i < sizeof(whole) / sizeof(whole[0]); i++) {
		err[0] = '\0';
		r = submit(c, renter, whole[i][0], T0, err, sizeof(err));
		if (r != -EINVAL || !strstr(err, whole[i][1])) {
			fprintf(stderr, "%s: got %lld \"%s\", want \"%s\"\n", whole[i][0],
				(long long)r, err, whole[i][1]);
			CHECK(0);
		}
	}
	/* Missing required fields, one at a time. */
	{
		static const char *const req[] = {"command", "cores", "memory", "max_wall_seconds",
						  "max_price"};

		for (size_t i = 0; i < 5; i++) {
			cJSON *j = json(task_json(NULL)), *reply = NULL;

			cJSON_DeleteItemFromObjectCaseSensitive(j, req[i]);
			CHECK_EQ(coord_submit(c, renter, j, T0, &reply, err, sizeof(err)), -EINVAL);
			cJSON_Delete(j);
			CHECK(strstr(err, req[i]) && strstr(err, "missing"));
		}
	}
	CHECK_EQ(coord_flush(c), 0);
	CHECK_EQ(count_rows("tasks"), 0); /* nothing stored */
	CHECK_EQ(count_rows("replicas"), 0);
	/* And the good one goes through. */
	CHECK(submit(c, renter, task_json(NULL), T0, err, sizeof(err)) > 0);
	CHECK_EQ(count_rows("tasks"), 1);
	stop();
}

static void test_lifecycle(void)
{
	struct coord_actions a = {0};
	char err[256];
	int64_t node, task;
	cJSON *st = NULL, *offer = NULL;
	const char *s;
	int64_t v;

	start();
	node = reg_node(c, 'a', 4, NULL, T0, &a);
	CHECK(node > 0);
	task = submit(c, renter, task_json(", \"client_ref\": \"job-1\""), T0, err, sizeof(err));
	CHECK(task > 0);
	/* The same submission again (a retry after a lost reply) is the same task. */
	CHECK_EQ(submit(c, renter, task_json(", \"client_ref\": \"job-1\""), T0, err, sizeof(err)),
		 task);
	CHECK_EQ(submit(c, renter, task_json(", \"client_ref\": \"job-1\", \"priority\": 3"), T0,
			err, sizeof(err)),
		 -EEXIST);
	CHECK_EQ(coord_schedule(c, T0, 100, &a), 1);
	CHECK_EQ(a.n, 1);
	CHECK_EQ(a.v[0].kind, COORD_OFFER);
	CHECK_EQ(a.v[0].node, node);
	CHECK_EQ(coord_flush(c), 0);
	CHECK_EQ(coord_offer_body(c, &a.v[0], &offer), 0);
	CHECK_EQ(canon_get_i64(offer, "task_id", &v), 0);
	CHECK_EQ(v, task);
	CHECK_EQ(canon_get_str(offer, "image", &s), 0);
	CHECK_STREQ(s, image);
	cJSON_Delete(offer);
	CHECK_EQ(coord_task_event(c, node, task, COORD_EV_STARTED, 0, NULL, NULL, T0 + 1, &a), 0);
	CHECK_EQ(coord_status(c, renter, task, &st, err, sizeof(err)), 0);
	CHECK_EQ(canon_get_str(st, "state", &s), 0);
	CHECK_STREQ(s, "running");
	cJSON_Delete(st);
	/* Another renter cannot see it; rating before completion is refused. */
	CHECK_EQ(coord_status(c, renter + 100, task, &st, err, sizeof(err)), -ENOENT);
	CHECK_EQ(coord_rate(c, renter, task, 5, "", T0, err, sizeof(err)), -EINVAL);
	CHECK_EQ(coord_task_event(
			 c, node, task, COORD_EV_FINISHED, 0,
			 "sha256:1111111111111111111111111111111111111111111111111111111111111111",
			 NULL, T0 + 5, &a),
		 0);
	CHECK_EQ(coord_status(c, renter, task, &st, err, sizeof(err)), 0);
	CHECK_EQ(canon_get_str(st, "state", &s), 0);
	CHECK_STREQ(s, "done");
	CHECK_EQ(canon_get_str(st, "result", &s), 0);
	CHECK(strncmp(s, "sha256:1111", 11) == 0);
	cJSON_Delete(st);
	CHECK_EQ(sched_node_get(coord_sched(c), node)->used_cores, 0);
	CHECK_EQ(coord_rate(c, renter, task, 4, "fast", T0 + 6, err, sizeof(err)), 0);
	CHECK_EQ(coord_rate(c, renter, task, 5, "again", T0 + 7, err, sizeof(err)), -EEXIST);
	CHECK(strstr(err, "already rated"));
	CHECK_EQ(sched_node_get(coord_sched(c), node)->rating_centi, 400);
	CHECK_EQ(coord_cancel(c, renter, task, T0, &a, err, sizeof(err)), -EALREADY);
	coord_actions_clear(&a);
	stop();
}

/* Explicit provider honoured; node loss requeues elsewhere; the lost node is told to stop. */
static void test_node_loss(void)
{
	struct coord_actions a = {0};
	char err[256], extra[200];
	int64_t na, nb, task;

	start();
	na = reg_node(c, 'a', 4, NULL, T0, &a);
	nb = reg_node(c, 'b', 4, NULL, T0, &a);
	snprintf(extra, sizeof(extra), ", \"providers\": [\"%s\"]", node_hex('a'));
	task = submit(c, renter, task_json(extra), T0, err, sizeof(err));
	CHECK(task > 0);
	CHECK_EQ(coord_schedule(c, T0, 100, &a), 1);
	CHECK_EQ(a.v[0].node, na);
	CHECK_EQ(coord_task_event(c, na, task, COORD_EV_STARTED, 0, NULL, NULL, T0, &a), 0);
	CHECK_EQ(coord_flush(c), 0);
	coord_actions_clear(&a);
	/* b heartbeats, a goes silent. */
	CHECK_EQ(coord_node_heartbeat(c, nb, T0 + 25), 0);
	CHECK_EQ(coord_tick(c, T0 + 20, &a), 0); /* not yet */
	CHECK_EQ(a.n, 0);
	/* Lost; but the renter asked for a only: it waits. */
	CHECK_EQ(coord_tick(c, T0 + 31, &a), 0);
	CHECK_EQ(sched_node_get(coord_sched(c), na)->online, false);
	{
		struct store_task t;

		CHECK_EQ(store_task_get(coord_store(c), task, &t), 0);
		CHECK_EQ(t.state, TASK_QUEUED);
		CHECK_EQ(t.attempts, 1);
		store_task_clear(&t);
	}
	/* a comes back still running it: told to cancel (no double run), then offered afresh. */
	CHECK_EQ(reg_node(c, 'a', 4, ", \"running\": [1]", T0 + 40, &a), na);
	CHECK_EQ(a.n, 1);
	CHECK_EQ(a.v[0].kind, COORD_CANCEL);
	CHECK_EQ(a.v[0].task_id, task);
	CHECK_EQ(coord_tick(c, T0 + 40, &a), 1);
	CHECK_EQ(a.v[1].kind, COORD_OFFER);
	CHECK_EQ(a.v[1].node, na);
	coord_actions_clear(&a);

	/* A balanced task on a lost node moves to the other node. */
	task = submit(c, renter, task_json(NULL), T0 + 40, err, sizeof(err));
	CHECK(task > 0);
	sched_node_get(coord_sched(c), na)->cores = 1; /* full now: the task goes to b */
	CHECK_EQ(coord_schedule(c, T0 + 40, 100, &a), 1);
	CHECK_EQ(a.v[0].node, nb);
	sched_node_get(coord_sched(c), na)->cores = 4;
	coord_actions_clear(&a);
	CHECK_EQ(coord_node_heartbeat(c, na, T0 + 70), 0);
	CHECK_EQ(coord_tick(c, T0 + 75, &a), 1);
	CHECK_EQ(a.n, 1);
	CHECK_EQ(a.v[0].kind, COORD_OFFER);
	CHECK_EQ(a.v[0].node, na);
	CHECK_EQ(a.v[0].task_id, task);
	/* A late event from b about the task it lost is refused and b told to stop. */
	CHECK_EQ(coord_task_event(c, nb, task, COORD_EV_STARTED, 0, NULL, NULL, T0 + 76, &a),
		 -ESTALE);
	CHECK_EQ(a.v[a.n - 1].kind, COORD_CANCEL);
	CHECK_EQ(a.v[a.n - 1].node, nb);
	coord_actions_clear(&a);
	stop();
}

/* Rejects and sandbox failures requeue elsewhere, up to the retry cap; cancel reaches the node. */
static void test_retry_cap_and_cancel(void)
{
	struct coord_actions a = {0};
	struct store_task t;
	char err[256];
	int64_t task, n[5], used[5];

	start();
	for (int i = 0; i < 5; i++) {
		n[i] = reg_node(c, (char)('a' + i), 2, NULL, T0, &a);
		CHECK(n[i] > 0);
	}
	task = submit(c, renter, task_json(NULL), T0, err, sizeof(err));
	CHECK(task > 0);
	for (int i = 0; i < 4; i++) {
		a.n = 0;
		CHECK_EQ(coord_schedule(c, T0, 100, &a), 1);
		/* Never the same node twice: it rejected or failed it. */
		for (int k = 0; k < i; k++)
			CHECK(a.v[0].node != used[k]);
		used[i] = a.v[0].node;
		CHECK_EQ(coord_task_event(c, a.v[0].node, task,
					  i % 2 ? COORD_EV_FAILED : COORD_EV_REJECTED, -1, NULL,
					  i % 2 ? "sandbox: pivot_root failed" : "outside window",
					  T0 + i, &a),
			 0);
	}
	CHECK_EQ(store_task_get(coord_store(c), task, &t), 0);
	CHECK_EQ(t.state, TASK_FAILED);
	CHECK(strstr(t.reason, "gave up after 4 attempts; last: sandbox: pivot_root failed"));
	store_task_clear(&t);
	CHECK_EQ(sched_task_get(coord_sched(c), task), NULL);

	coord_actions_clear(&a);
	task = submit(c, renter, task_json(NULL), T0, err, sizeof(err));
	CHECK_EQ(coord_schedule(c, T0, 100, &a), 1);
	CHECK_EQ(coord_cancel(c, renter + 1, task, T0, &a, err, sizeof(err)), -ENOENT);
	CHECK_EQ(coord_cancel(c, renter, task, T0, &a, err, sizeof(err)), 0);
	CHECK_EQ(a.n, 2);
	CHECK_EQ(a.v[1].kind, COORD_CANCEL);
	CHECK_EQ(a.v[1].node, a.v[0].node);
	CHECK_EQ(store_task_get(coord_store(c), task, &t), 0);
	CHECK_EQ(t.state, TASK_CANCELLED);
	store_task_clear(&t);
	coord_actions_clear(&a);
	stop();
}

/* A restart keeps placed tasks placed and queued tasks queued: nothing lost, nothing doubled. */
static void test_restart(void)
{
	struct coord_actions a = {0};
	char err[256];
	int64_t na, t[3];

	start();
	na = reg_node(c, 'a', 2, NULL, T0, &a);
	for (int i = 0; i < 3; i++)
		t[i] = submit(c, renter, task_json(NULL), T0, err, sizeof(err));
	CHECK_EQ(coord_schedule(c, T0, 100, &a), 2);
	CHECK_EQ(coord_flush(c), 0);
	/* Unflushed work is lost like in a crash: a fourth submission never acknowledged. */
	CHECK(submit(c, renter, task_json(", \"priority\": 1"), T0, err, sizeof(err)) > 0);
	coord_actions_clear(&a);
	c = coord_free(c);

	CHECK_EQ(open_coord(T0 + 100), 0);
	CHECK_EQ(count_rows("tasks"), 3);
	/* The node comes back with both tasks running: nothing is offered again. */
	snprintf(body, sizeof(body), ", \"running\": [%lld, %lld]", (long long)t[0],
		 (long long)t[1]);
	CHECK_EQ(reg_node(c, 'a', 2, body, T0 + 101, &a), na);
	CHECK_EQ(a.n, 0);
	CHECK_EQ(coord_tick(c, T0 + 102, &a), 0);
	CHECK_EQ(sched_node_get(coord_sched(c), na)->used_cores, 2);
	CHECK_EQ(coord_task_event(c, na, t[0], COORD_EV_FINISHED, 0, "", NULL, T0 + 103, &a), 0);
	CHECK_EQ(coord_tick(c, T0 + 104, &a), 1);
	CHECK_EQ(a.v[0].task_id, t[2]);
	coord_actions_clear(&a);
	c = coord_free(c);

	/* Restart again, and this time the node never returns: its tasks are requeued once. */
	CHECK_EQ(open_coord(T0 + 200), 0);
	CHECK_EQ(coord_tick(c, T0 + 229, &a), 0);
	CHECK_EQ(reg_node(c, 'b', 2, NULL, T0 + 229, &a), 2);
	CHECK_EQ(coord_tick(c, T0 + 231, &a), 2);
	CHECK_EQ(a.v[0].node, 2);
	CHECK_EQ(a.v[1].node, 2);
	CHECK(a.v[0].task_id != a.v[1].task_id);
	coord_actions_clear(&a);
	stop();
}

/* Blobs: verified uploads, results deleted once fetched, images kept while a task needs them. */
static void test_blobs(void)
{
	struct blobs *b;
	struct blob_upload *u = NULL;
	char res[80], err[256];
	int64_t task;
	int fd = -1;
	uint64_t size = 0;
	unsigned deleted = 0;

	start();
	b = coord_blobs(c);
	CHECK_EQ(blobs_has(b, image), 1);
	CHECK_EQ(blobs_upload_begin(b, image, 10, &u), -EEXIST);
	CHECK_EQ(blobs_upload_begin(b, "sha256:XYZ", 10, &u), -EINVAL);
	CHECK_EQ(blobs_upload_begin(
			 b,
			 "sha256:2222222222222222222222222222222222222222222222222222222222222222",
			 BLOB_MAX_SIZE + 1, &u),
		 -EFBIG);
	CHECK_EQ(blobs_upload_begin(
			 b,
			 "sha256:2222222222222222222222222222222222222222222222222222222222222222",
			 4, &u),
		 0);
	CHECK_EQ(blobs_upload_write(u, "abcde", 5), -EFBIG);
	CHECK_EQ(blobs_upload_write(u, "abcd", 4), 0);
	CHECK_EQ(blobs_upload_finish(b, u, renter, BLOB_INPUT, T0, 100),
		 -EBADMSG); /* wrong digest */
	CHECK_EQ(blobs_has(
			 b,
			 "sha256:2222222222222222222222222222222222222222222222222222222222222222"),
		 0);
	CHECK_EQ(blobs_put(b, "result!", 7, renter, BLOB_RESULT, T0, 86400, res), 0);
	CHECK_EQ(blobs_open_read(b, res, &fd, &size), 0);
	CHECK_EQ(size, 7);
	close(fd);
	CHECK_EQ(blobs_gc(b, T0 + 10, &deleted), 0);
	CHECK_EQ(deleted, 0);
	CHECK_EQ(blobs_fetched(b, res, T0 + 10, 0), 0);
	CHECK_EQ(blobs_gc(b, T0 + 10, &deleted), 0);
	CHECK_EQ(deleted, 1);
	CHECK_EQ(blobs_has(b, res), 0);
	/* The image (retention 3600) is kept while a queued task uses it. */
	CHECK(reg_node(c, 'a', 1, NULL, T0, NULL) > 0);
	task = submit(c, renter, task_json(NULL), T0, err, sizeof(err));
	CHECK(task > 0);
	CHECK_EQ(blobs_gc(b, T0 + 7200, &deleted), 0);
	CHECK_EQ(deleted, 0);
	CHECK_EQ(blobs_has(b, image), 1);
	CHECK_EQ(coord_cancel(c, renter, task, T0 + 7200, NULL, err, sizeof(err)), 0);
	CHECK_EQ(blobs_gc(b, T0 + 7200, &deleted), 0);
	CHECK_EQ(deleted, 1);
	CHECK_EQ(blobs_has(b, image), 0);
	/* A blob file whose row never committed (crash between rename and flush) is removed at open. */
	{
		char orphan[256];
		FILE *f;

		snprintf(orphan, sizeof(orphan), "%s/sha256/%064d", d.blobs, 7);
		f = fopen(orphan, "w");
		CHECK(f);
		fclose(f);
		c = coord_free(c);
		CHECK_EQ(open_coord(T0), 0);
		CHECK(access(orphan, F_OK) < 0);
	}
	stop();
}

int main(void)
{
	static const struct test_case cases[] = {
		TEST(test_bad_submissions),
		TEST(test_lifecycle),
		TEST(test_node_loss),
		TEST(test_retry_cap_and_cancel),
		TEST(test_restart),
		TEST(test_blobs),
		{NULL, NULL},
	};

	return harness_run(cases);
}
