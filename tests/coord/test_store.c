/* test_store.c -- the SQLite store: migrations, batches (durable only on flush), dedup keys, constraints. */
#include "../../coordinator/store.h"

#include "harness.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static char dir[64], db[128];

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/aicn-store-XXXXXX");
	if (!mkdtemp(dir))
		abort();
	snprintf(db, sizeof(db), "%s/coord.db", dir);
}

static void teardown(void)
{
	char cmd[160];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup of %s failed\n", dir);
}

static int64_t add_task(struct store *st, int64_t account, const char *ref)
{
	struct store_task t = {0};
	int64_t existing = 0;

	t.account_id = account;
	snprintf(t.client_ref, sizeof(t.client_ref), "%s", ref ? ref : "");
	snprintf(t.image, sizeof(t.image), "sha256:%064d", 0);
	t.spec = "{}";
	t.cores = 1;
	t.memory = 1 << 20;
	t.replicas = 1;
	t.submitted_at = 1;
	if (store_task_insert(st, &t, &existing) < 0)
		return -existing;
	return t.id;
}

static int64_t add_node(struct store *st, int64_t account, char c)
{
	struct store_node n = {0};
	int64_t id = 0;

	memset(n.node_id, c, STORE_NODE_ID_LEN);
	n.account_id = account;
	n.cores = 4;
	n.memory = 1 << 30;
	if (store_node_upsert(st, &n, &id) < 0)
		return -1;
	return id;
}

static void test_migrations(void)
{
	static const struct store_migration ledger[] = {
		{1, "CREATE TABLE ledger_entries(id INTEGER PRIMARY KEY, amount INTEGER NOT NULL)"},
		{2, "ALTER TABLE ledger_entries ADD COLUMN memo TEXT NOT NULL DEFAULT ''"},
	};
	static const struct store_migration gap[] = {{5, "SELECT 1"}};
	struct store *st = NULL;
	unsigned v = 0;

	setup();
	CHECK_EQ(store_open(db, 0, &st), 0);
	CHECK_EQ(store_schema_version(st, "core", &v), 0);
	CHECK_EQ(v, 2); /* v2: task_inputs, offer terms */
	CHECK_EQ(store_migrate(st, "ledger", ledger, 1), 0);
	CHECK_EQ(store_migrate(st, "ledger", ledger, 2), 0); /* only step 2 runs */
	CHECK_EQ(store_migrate(st, "ledger", ledger, 2), 0); /* idempotent */
	CHECK_EQ(store_schema_version(st, "ledger", &v), 0);
	CHECK_EQ(v, 2);
	CHECK_EQ(store_migrate(st, "other", gap, 1), -EINVAL);
	/* A second coordinator on the same store is refused. */
	{
		struct store *st2 = NULL;

		CHECK_EQ(store_open(db, 0, &st2), -EBUSY);
	}
	st = store_free(st);
	CHECK_EQ(store_open(db, 0, &st), 0);
	CHECK_EQ(store_schema_version(st, "ledger", &v), 0);
	CHECK_EQ(v, 2);
	CHECK_EQ(sqlite3_exec(store_db(st),
			      "INSERT INTO ledger_entries(amount, memo) VALUES(5, 'x')", NULL, NULL,
			      NULL),
		 SQLITE_OK);
	store_free(st);
	teardown();
}

/* Nothing is durable before store_flush(); closing without it loses the batch whole. */
static void test_batches(void)
{
	struct store *st = NULL;
	int64_t acc, count = -1;

	setup();
	CHECK_EQ(store_open(db, 0, &st), 0);
	CHECK_EQ(store_account_ensure(st, "renter-a", "renter", &acc), 0);
	CHECK(add_task(st, acc, "a") > 0);
	CHECK_EQ(store_flush(st), 0);
	CHECK(add_task(st, acc, "b") > 0);
	CHECK(add_task(st, acc, "c") > 0);
	CHECK_EQ(store_pending(st), 2);
	st = store_free(st); /* like a crash: b and c were never committed */
	CHECK_EQ(store_open(db, 0, &st), 0);
	CHECK_EQ(store_task_count(st, -1, &count), 0);
	CHECK_EQ(count, 1);
	/* An operation that fails inside a batch is undone alone. */
	CHECK(add_task(st, acc, "d") > 0);
	CHECK_EQ(store_op_begin(st), 0);
	CHECK(add_task(st, acc, "e") > 0);
	CHECK_EQ(store_op_end(st, -EIO), -EIO);
	CHECK(add_task(st, acc, "f") > 0);
	CHECK_EQ(store_flush(st), 0);
	CHECK_EQ(store_task_count(st, -1, &count), 0);
	CHECK_EQ(count, 3); /* a, d, f */
	/* Early commit past batch_max. */
	st = store_free(st);
	CHECK_EQ(store_open(db, 3, &st), 0);
	for (int i = 0; i < 7; i++)
		CHECK(add_task(st, acc, NULL) > 0);
	CHECK(store_pending(st) < 3);
	store_free(st);
	teardown();
}

static void test_constraints(void)
{
	struct store *st = NULL;
	int64_t acc, t1, n1, n2, r1;
	struct store_replica rep;

	setup();
	CHECK_EQ(store_open(db, 0, &st), 0);
	CHECK_EQ(store_account_ensure(st, "r", "renter", &acc), 0);
	t1 = add_task(st, acc, "same");
	CHECK(t1 > 0);
	CHECK_EQ(add_task(st, acc, "same"), -t1); /* idempotency key: the existing id */
	n1 = add_node(st, acc, 'a');
	n2 = add_node(st, acc, 'b');
	CHECK(n1 > 0 && n2 > 0 && n1 != n2);
	CHECK_EQ(add_node(st, acc, 'a'), n1); /* upsert keeps the row */
	/* One live placement per slot, one replica per node. */
	CHECK_EQ(store_replica_assign(st, t1, 0, n1, 0, 10, &r1), 0);
	CHECK_EQ(store_replica_assign(st, t1, 0, n2, 0, 10, NULL), -EEXIST);
	CHECK_EQ(store_replica_assign(st, t1, 1, n1, 0, 10, NULL), -EEXIST);
	CHECK_EQ(store_replica_find_live(st, t1, n1, &rep), 0);
	CHECK_EQ(rep.id, r1);
	CHECK_EQ(store_replica_set_state(st, r1, REPLICA_LOST, 0, "", "gone", 20), 0);
	CHECK_EQ(store_replica_find_live(st, t1, n1, &rep), -ENOENT);
	CHECK_EQ(store_replica_assign(st, t1, 0, n2, 1, 30, NULL), 0); /* requeued elsewhere */
	/* Usage records: (node, seq) is the dedup key. */
	CHECK_EQ(store_usage_insert(st, n1, 1, t1, "{\"a\":1}", "h1", 5, 1), 0);
	CHECK_EQ(store_usage_insert(st, n1, 1, t1, "{\"a\":1}", "h1", 5, 2), 1);
	CHECK_EQ(store_usage_insert(st, n1, 1, t1, "{\"a\":2}", "h2", 6, 2), -EEXIST);
	CHECK_EQ(store_usage_insert(st, n2, 1, t1, "{\"a\":2}", "h2", 6, 2), 0);
	{
		int64_t c = 0;

		CHECK_EQ(store_usage_count(st, n1, &c), 0);
		CHECK_EQ(c, 1);
	}
	/* Ratings: once per task, 1..5. */
	CHECK_EQ(store_rating_insert(st, t1, acc, n2, 6, "", 1), -EINVAL);
	CHECK_EQ(store_rating_insert(st, t1, acc, n2, 4, "ok", 1), 0);
	CHECK_EQ(store_rating_insert(st, t1, acc, n2, 5, "again", 1), -EEXIST);
	{
		int32_t centi = 0;
		uint32_t count = 0;

		CHECK_EQ(store_node_rating(st, n2, &centi, &count), 0);
		CHECK_EQ(centi, 400);
		CHECK_EQ(count, 1);
	}
	CHECK_EQ(store_flush(st), 0);
	store_free(st);
	teardown();
}

int main(void)
{
	static const struct test_case cases[] = {
		TEST(test_migrations),
		TEST(test_batches),
		TEST(test_constraints),
		{NULL, NULL},
	};

	return harness_run(cases);
}
