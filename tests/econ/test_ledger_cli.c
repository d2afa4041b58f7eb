/* test_ledger_cli.c -- `aicnctl ledger verify|show|balance` on a real ledger: sound, then tampered. */
#include "ledger_util.h"

#include "harness.h"

#include <aicn/key.h>
#include <openssl/evp.h>

#include <errno.h>
#include <sys/wait.h>

static const int64_t S = 1000000000LL;
static char db_path[512];

/* Run aicnctl with args, capture stdout; returns the exit code. */
static int aicnctl(const char *args, char *out, size_t len)
{
	char cmd[2048];
	const char *bin = getenv("AICN_BIN");
	FILE *p;
	size_t n;
	int st;

	snprintf(cmd, sizeof(cmd), "%s/aicnctl %s", bin ? bin : "build/bin", args);
	p = popen(cmd, "r");
	if (!p)
		return -1;
	n = fread(out, 1, len - 1, p);
	out[n] = '\0';
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void build_ledger(void)
{
	struct econ_params p;
	struct ledger *l = NULL;
	sqlite3 *db = tu_open("cli.db");
	struct settle_escrow_req req = {.task = "job1",
					.renter = "renter",
					.price_per_cpu_hour = 2 * ECON_UNIT,
					.max_cpu_ns = 3600 * S,
					.replicas = 1,
					.time_ns = S,
					.epoch = 0};
	struct settle_usage_req u = {.price = SETTLE_PRICE_ESCROW,
				     .task = "job1",
				     .node = "node1",
				     .node_seq = 0,
				     .provider = "owner1",
				     .cpu_ns = 900 * S,
				     .renewable_ppm = 250000,
				     .time_ns = 2 * S,
				     .epoch = 0};

	econ_params_default(&p);
	snprintf(db_path, sizeof(db_path), "%s/cli.db", tu_tmpdir());
	if (ledger_new(db, &l) < 0 ||
	    settle_mint(l, "renter", 5 * ECON_UNIT, "faucet:1", 1, 0) < 0 ||
	    settle_escrow_open(l, &req, NULL) < 0)
		abort();
	tu_hash("cli", 0, u.record_hash);
	if (settle_usage(l, &p, &u, NULL) < 0 ||
	    settle_escrow_close(l, "job1", 3 * S, 0, NULL) < 0 ||
	    settle_epoch_close(l, &p, 0, 4 * S, NULL) < 0)
		abort();
	ledger_free(l);
	sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
	sqlite3_close(db);
}

static void test_cli(void)
{
	char out[8192], args[1024];
	sqlite3 *db;

	build_ledger();
	snprintf(args, sizeof(args), "ledger verify --allow-unsigned %s", db_path);
	CHECK_EQ(aicnctl(args, out, sizeof(out)), 0);
	printf("%s", out);
	CHECK(strstr(out, "ledger sound: 6 entries") != NULL);
	CHECK(strstr(out, "usage records paid once each") != NULL);
	CHECK(strstr(out, "0 of 1 charges carry an agent-signed usage record") != NULL);
	/* this ledger's charge was settled without its record: the audit refuses it by default */
	snprintf(args, sizeof(args), "ledger verify %s", db_path);
	CHECK_EQ(aicnctl(args, out, sizeof(out)), 1);
	CHECK(strstr(out, "without its agent-signed record") != NULL);
	snprintf(args, sizeof(args), "ledger verify --signed-records %s", db_path);
	CHECK_EQ(aicnctl(args, out, sizeof(out)), 1);
	snprintf(args, sizeof(args), "ledger verify --allow-unsigned --json %s", db_path);
	CHECK_EQ(aicnctl(args, out, sizeof(out)), 0);
	CHECK(strstr(out, "\"sound\":true") != NULL);
	snprintf(args, sizeof(args), "ledger balance %s owner1 renter", db_path);
	CHECK_EQ(aicnctl(args, out, sizeof(out)), 0);
	/* 15 CPU-minutes at 2 AICN/h = 0.5 AICN, 95 % to the provider, 4.5 AICN refunded */
	CHECK(strstr(out, "renter 4500000000\n") != NULL);
	/* and the only worker of the epoch gets the whole 1000 AICN pool besides */
	CHECK(strstr(out, "owner1 1000475000000\n") != NULL);
	snprintf(args, sizeof(args), "ledger show --from 3 --count 1 %s", db_path);
	CHECK_EQ(aicnctl(args, out, sizeof(out)), 0);
	CHECK(strstr(out, "\"kind\":\"settle\"") != NULL);
	CHECK(strstr(out, "\"seq\":3") != NULL);
	/* the renter's trail: escrow, the settled record, the refund, each proven included */
	snprintf(args, sizeof(args), "ledger task %s job1", db_path);
	CHECK_EQ(aicnctl(args, out, sizeof(out)), 0);
	printf("%s", out);
	CHECK(strstr(out, "entry 2 (included") != NULL);
	CHECK(strstr(out, "entry 3 (included") != NULL);
	CHECK(strstr(out, "\"record\":\"") != NULL);
	CHECK(strstr(out, "entry 4 (included") != NULL);
	CHECK(strstr(out, "entry 5") == NULL); /* the epoch reward is not the task's */
	snprintf(args, sizeof(args), "ledger task %s nosuchjob", db_path);
	CHECK_EQ(aicnctl(args, out, sizeof(out)), 1);
	/* usage errors */
	CHECK_EQ(aicnctl("ledger verify 2>/dev/null", out, sizeof(out)), 2);
	CHECK_EQ(aicnctl("ledger frobnicate x 2>/dev/null", out, sizeof(out)), 2);
	CHECK_EQ(aicnctl("ledger --help", out, sizeof(out)), 0);
	CHECK(strstr(out, "Usage: aicnctl ledger verify") != NULL);
	CHECK_EQ(aicnctl("ledger verify /nonexistent/x.db 2>/dev/null", out, sizeof(out)), 1);
	/* a provider that pays itself one more unit is found */
	db = tu_open("cli.db");
	sqlite3_exec(db, "UPDATE ledger_balances SET balance = balance + 1 WHERE account='owner1'",
		     NULL, NULL, NULL);
	sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
	sqlite3_close(db);
	snprintf(args, sizeof(args), "ledger verify --allow-unsigned %s", db_path);
	CHECK_EQ(aicnctl(args, out, sizeof(out)), 1);
	printf("%s", out);
	CHECK(strstr(out, "UNSOUND") != NULL);
	CHECK(strstr(out, "owner1") != NULL);
}

/* A signed checkpoint binds the copy: later appends keep it valid, a fork does not. */
static void test_checkpoint(void)
{
	char out[8192], args[2048], key[512], pub[512], other_pub[512], note[512], fork_path[512];
	EVP_PKEY *k = NULL, *k2 = NULL;
	struct ledger *l = NULL;
	struct econ_params p;
	FILE *f;
	sqlite3 *db;

	econ_params_default(&p);
	snprintf(key, sizeof(key), "%s/coord.key", tu_tmpdir());
	snprintf(pub, sizeof(pub), "%s/coord.pub", tu_tmpdir());
	snprintf(other_pub, sizeof(other_pub), "%s/other.pub", tu_tmpdir());
	snprintf(note, sizeof(note), "%s/ledger.checkpoint", tu_tmpdir());
	CHECK_EQ(key_generate(&k), 0);
	CHECK_EQ(key_save_private(k, key), 0);
	CHECK_EQ(key_write_public_pem(k, pub), 0);
	CHECK_EQ(key_generate(&k2), 0);
	CHECK_EQ(key_write_public_pem(k2, other_pub), 0);
	EVP_PKEY_free(k2);

	db = tu_open("cp.db");
	CHECK_EQ(ledger_new(db, &l), 0);
	CHECK_EQ(settle_mint(l, "alice", 100, "f1", 1, 0), 0);
	CHECK_EQ(settle_transfer(l, "alice", "bob", 40, "t1", 2, 0), 0);
	/* the coordinator signs in process (the same as aicnctl ledger sign) */
	{
		char *n = NULL;

		CHECK_EQ(ledger_begin(l), 0);
		CHECK_EQ(ledger_checkpoint(l, k, "aicn/ledger/test", &n), -EBUSY);
		CHECK_EQ(ledger_rollback(l), 0);
		CHECK_EQ(ledger_checkpoint(l, k, "aicn/meter/x", &n), -EINVAL);
		CHECK_EQ(ledger_checkpoint(l, k, "aicn/ledger/test", &n), 0);
		f = fopen(note, "we");
		CHECK(f != NULL);
		fputs(n, f);
		fclose(f);
		free(n);
	}
	CHECK_EQ(settle_transfer(l, "bob", "carol", 10, "t2", 3, 0), 0); /* after the checkpoint */
	ledger_free(l);
	sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
	sqlite3_close(db);
	EVP_PKEY_free(k);

	snprintf(args, sizeof(args), "ledger verify --checkpoint %s --key %s %s/cp.db", note, pub,
		 tu_tmpdir());
	CHECK_EQ(aicnctl(args, out, sizeof(out)), 0);
	printf("%s", out);
	CHECK(strstr(out,
		     "checkpoint of aicn/ledger/test signed by the key, size 2: root matches") !=
	      NULL);
	/* the CLI signs the same way */
	snprintf(args, sizeof(args), "ledger sign --key %s --origin aicn/ledger/test %s/cp.db", key,
		 tu_tmpdir());
	CHECK_EQ(aicnctl(args, out, sizeof(out)), 0);
	CHECK(strncmp(out, "aicn/ledger/test\n3\n", 19) == 0);
	/* another key's checkpoint, or another origin, is refused */
	snprintf(args, sizeof(args), "ledger verify --checkpoint %s --key %s %s/cp.db", note,
		 other_pub, tu_tmpdir());
	CHECK_EQ(aicnctl(args, out, sizeof(out)), 1);
	CHECK(strstr(out, "UNSOUND: checkpoint") != NULL);
	snprintf(args, sizeof(args),
		 "ledger verify --checkpoint %s --key %s --origin aicn/ledger/prod %s/cp.db", note,
		 pub, tu_tmpdir());
	CHECK_EQ(aicnctl(args, out, sizeof(out)), 1);
	/* a fork: a different history of the same length does not match the signed root */
	db = tu_open("fork.db");
	snprintf(fork_path, sizeof(fork_path), "%s/fork.db", tu_tmpdir());
	CHECK_EQ(ledger_new(db, &l), 0);
	CHECK_EQ(settle_mint(l, "alice", 100, "f1", 1, 0), 0);
	CHECK_EQ(settle_transfer(l, "alice", "mallory", 40, "t1", 2, 0), 0);
	ledger_free(l);
	sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
	sqlite3_close(db);
	snprintf(args, sizeof(args), "ledger verify --checkpoint %s --key %s %s", note, pub,
		 fork_path);
	CHECK_EQ(aicnctl(args, out, sizeof(out)), 1);
	printf("%s", out);
	CHECK(strstr(out, "do not have the checkpoint's root") != NULL);
	/* --checkpoint without --key is a usage error */
	snprintf(args, sizeof(args), "ledger verify --checkpoint %s %s 2>/dev/null", note,
		 fork_path);
	CHECK_EQ(aicnctl(args, out, sizeof(out)), 2);
}

int main(void)
{
	static const struct test_case cases[] = {
		TEST(test_cli),
		TEST(test_checkpoint),
		{NULL, NULL},
	};
	int r = harness_run(cases);

	tu_cleanup();
	return r;
}
