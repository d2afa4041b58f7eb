/* test_pay.c -- settlement wired into a real coordinator: escrow, Proof of Compute, quorum, slashing, PoW, epochs, governance, checkpoints. */
#include "pay_util.h"

#include "harness.h"

#include <aicn/checkpoint.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define A PW_AICN
#define S PW_S

static struct pw w;
static char err[256];

static void start(void)
{
	const char *t = getenv("TMPDIR");

	memset(&w, 0, sizeof(w));
	snprintf(w.dir, sizeof(w.dir), "%s/aicn-pay-XXXXXX", t ? t : "/tmp");
	if (!mkdtemp(w.dir))
		abort();
	if (pw_open(&w, PW_T0, NULL, err, sizeof(err)) < 0) {
		fprintf(stderr, "open: %s\n", err);
		abort();
	}
}

static void stop(void)
{
	char cmd[300];

	pw_free(&w);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", w.dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", w.dir);
}

static int mint(const char *acct, int64_t amount)
{
	int r = pay_mint(w.p, acct, amount, NULL, PW_T0 * S);

	return r < 0 ? r : coord_flush(w.c);
}

static void free_runs(struct pw_run *runs, int n)
{
	for (int i = 0; i < n; i++) {
		free(runs[i].line);
		runs[i].line = NULL;
	}
}

/* 1800 CPU-seconds over 1900 s of wall time, result byte RES, meter log sequence SEQ. */
static struct pw_usage honest(uint64_t seq, uint8_t res)
{
	return (struct pw_usage){.start_s = 1,
				 .end_s = 1901,
				 .cpu_ns = 1800 * S,
				 .kernel_ns = 1800 * S,
				 .seq = seq,
				 .result = res,
				 .signer = -1};
}

/* Settlement's verdict on run r's result at now (coordinator seconds), or -errno; err says why. */
static int verdict(int64_t id, struct pw_run *r, int64_t now)
{
	enum pay_verdict v;
	int rc = pw_result(&w, id, r, now, &v, err, sizeof(err));

	return rc < 0 ? rc : (int)v;
}

static int64_t fees(void)
{
	return pw_balance(&w, LEDGER_FEE_MAINT) + pw_balance(&w, LEDGER_FEE_DEV) +
	       pw_balance(&w, LEDGER_FEE_STAKING);
}

static void sound(int64_t minted)
{
	struct ledger_report rep = {0};
	int r = pw_verify(&w, &rep);

	if (r != 0)
		fprintf(stderr, "ledger unsound at %llu: %s\n", (unsigned long long)rep.bad_seq,
			rep.reason);
	CHECK_EQ(r, 0);
	CHECK_EQ(rep.minted, minted);
	CHECK_EQ(rep.total, minted);
}

static void test_escrow_refused(void)
{
	char spec[1024];
	int64_t id;

	start();
	CHECK_EQ(mint("alice", 15 * A / 10), 0);
	pw_spec(&w, 3 * A, 1, NULL, spec, sizeof(spec));
	id = pw_submit(&w, spec, PW_T0, NULL, err, sizeof(err));
	CHECK_EQ(id, -ENOSPC);
	CHECK_STREQ(err, "insufficient funds: balance 1.5 AICN, escrow needs 3 AICN");
	/* two replicas of 0.5 AICN/h x 1 h fit */
	pw_spec(&w, A / 2, 2, NULL, spec, sizeof(spec));
	id = pw_submit(&w, spec, PW_T0, NULL, err, sizeof(err));
	CHECK(id > 0);
	CHECK_EQ(coord_flush(w.c), 0);
	CHECK_EQ(pw_balance(&w, "alice"), A / 2);
	CHECK_EQ(pw_balance(&w, "escrow:1"), A);
	sound(15 * A / 10);
	stop();
}

/* One task from SUBMIT to refund: the charge is at the agreed price, exactly. */
static void test_full_life(void)
{
	struct pw_run run[1] = {0};
	struct pw_usage u = honest(0, 0x11);
	char spec[1024], path[300], note[4096];
	struct checkpoint cp;
	int64_t id, esc = 0, refund = -1, charge, fee, milli = 0;
	uint64_t nrat = 0;
	EVP_PKEY *pub = NULL;
	cJSON *o = NULL;
	int fd;
	ssize_t n;

	start();
	CHECK_EQ(mint("alice", 10 * A), 0);
	pw_spec(&w, 2 * A, 1, "job-1", spec, sizeof(spec));
	id = pw_submit(&w, spec, PW_T0, &esc, err, sizeof(err));
	CHECK_EQ(id, 1);
	CHECK_EQ(esc, 2 * A); /* 1 CPU-hour x 2 AICN x 1 replica */
	/* the same client_ref again: the same task, escrowed once */
	CHECK_EQ(pw_submit(&w, spec, PW_T0, &esc, err, sizeof(err)), 1);
	CHECK_EQ(coord_flush(w.c), 0);
	CHECK_EQ(pw_balance(&w, "alice"), 8 * A);

	CHECK_EQ(pw_offers(&w, id, PW_T0 + 10, run, 1), 1);
	CHECK_EQ(run[0].price, A); /* ask 1 AICN x multiplier 1.0, under max_price 2 */
	CHECK(run[0].pow_bits >= 8);
	CHECK_EQ(pw_record(&w, id, &run[0], &u), 0);
	CHECK_EQ(pw_events(&w, id, &run[0], PW_T0 + 1912), 0);
	CHECK_EQ(verdict(id, &run[0], PW_T0 + 1912), PAY_SETTLED);
	CHECK_EQ(pay_on_task_end(w.p, id, (PW_T0 + 1913) * S, &refund), 0);
	CHECK_EQ(coord_flush(w.c), 0);

	charge = A / 2; /* 1800 CPU-s at 1 AICN per CPU-hour, not the escrowed 2 */
	fee = charge * pay_params(w.p)->fee_bps / 10000;
	CHECK_EQ(refund, 2 * A - charge);
	CHECK_EQ(pw_balance(&w, "alice"), 10 * A - charge);
	CHECK_EQ(pw_balance(&w, w.provider[run[0].node]), charge - fee);
	CHECK_EQ(fees(), fee);
	CHECK_EQ(pw_balance(&w, "escrow:1"), 0);
	/* idempotent end */
	CHECK_EQ(pay_on_task_end(w.p, id, (PW_T0 + 1914) * S, &refund), 0);
	CHECK_EQ(refund, 0);
	CHECK_EQ(coord_flush(w.c), 0);
	sound(10 * A);

	/* balance and node views */
	CHECK_EQ(pay_balance(w.p, "alice", &o), 0);
	CHECK_EQ(canon_get_i64(o, "balance", &esc), 0);
	CHECK_EQ(esc, 10 * A - charge);
	cJSON_Delete(o);
	CHECK_EQ(pay_node(w.p, w.node[run[0].node], &o), 0);
	CHECK_EQ(canon_get_i64(o, "earned", &esc), 0);
	CHECK_EQ(esc, charge - fee);
	{
		/* the earnings list: this one paid result */
		const cJSON *earn = cJSON_GetObjectItemCaseSensitive(o, "earnings");
		const cJSON *e = cJSON_GetArrayItem(earn, 0);
		const char *s = NULL;
		int64_t x = 0;
		char tid[24];

		CHECK(cJSON_IsArray(earn));
		CHECK_EQ(cJSON_GetArraySize(earn), 1);
		snprintf(tid, sizeof(tid), "%lld", (long long)id);
		CHECK_EQ(canon_get_str(e, "task_id", &s), 0);
		CHECK_STREQ(s, tid);
		CHECK_EQ(canon_get_str(e, "state", &s), 0);
		CHECK_STREQ(s, "paid");
		CHECK_EQ(canon_get_i64(e, "paid", &x), 0);
		CHECK_EQ(x, charge - fee);
		CHECK_EQ(canon_get_i64(e, "cpu_ns", &x), 0);
		CHECK_EQ(x, 1800 * S);
		CHECK_EQ(canon_get_i64(e, "price", &x), 0);
		CHECK_EQ(x, run[0].price);
	}
	cJSON_Delete(o);
	CHECK_EQ(pay_rate(w.p, id, "alice", w.node[run[0].node], 5, err, sizeof(err)), 0);
	CHECK_EQ(pay_rate(w.p, id, "alice", w.node[run[0].node], 4, err, sizeof(err)), -EEXIST);
	CHECK_EQ(pay_rate(w.p, id, "alice", w.node[(run[0].node + 1) % PW_NODES], 4, err,
			  sizeof(err)),
		 -EPERM);
	CHECK_EQ(pay_rating(w.p, w.node[run[0].node], &milli, &nrat), 0);
	CHECK_EQ(nrat, 1);
	CHECK(milli > 3000 && milli < 5000);

	/* a signed checkpoint of the committed ledger, for auditors */
	CHECK_EQ(pay_tick(w.p, (PW_T0 + 1915) * S, 0, 4000), 0);
	snprintf(path, sizeof(path), "%s/checkpoints/checkpoint", w.dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	n = read(fd, note, sizeof(note));
	close(fd);
	CHECK(n > 0);
	snprintf(path, sizeof(path), "%s/coordinator.key", w.dir);
	CHECK_EQ(key_load_private(path, &pub), 0);
	CHECK_EQ(checkpoint_verify(note, (size_t)n, pub, "aicn/ledger/test", &cp, NULL), 0);
	EVP_PKEY_free(pub);
	{
		struct ledger *l = NULL;
		uint64_t size = 0;
		uint8_t root[32];

		CHECK_EQ(ledger_new(store_db(coord_store(w.c)), &l), 0);
		CHECK_EQ(ledger_tree_head(l, &size, root), 0);
		ledger_free(l);
		CHECK_EQ(cp.size, size);
		CHECK(memcmp(cp.root, root, 32) == 0);
	}
	free_runs(run, 1);
	stop();
}

static void test_replay_pays_nothing(void)
{
	struct pw_run run[1] = {0};
	struct pw_usage u = honest(3, 0x11);
	char spec[1024];
	int64_t id, prov;

	start();
	CHECK_EQ(mint("alice", 10 * A), 0);
	pw_spec(&w, 2 * A, 1, NULL, spec, sizeof(spec));
	id = pw_submit(&w, spec, PW_T0, NULL, err, sizeof(err));
	CHECK(id > 0);
	CHECK_EQ(pw_offers(&w, id, PW_T0 + 10, run, 1), 1);
	CHECK_EQ(pw_record(&w, id, &run[0], &u), 0);
	CHECK_EQ(verdict(id, &run[0], PW_T0 + 1912), PAY_SETTLED);
	CHECK_EQ(coord_flush(w.c), 0);
	prov = pw_balance(&w, w.provider[run[0].node]);
	CHECK(prov > 0);
	/* the same record again */
	CHECK_EQ(verdict(id, &run[0], PW_T0 + 1913), PAY_REFUSED);
	CHECK_STREQ(err, "the usage record was already settled");
	/* another final record of the same node for the same task (new sequence) */
	u.seq = 4;
	u.end_s = 1900;
	CHECK_EQ(pw_record(&w, id, &run[0], &u), 0);
	CHECK_EQ(verdict(id, &run[0], PW_T0 + 1913), PAY_REFUSED);
	CHECK_EQ(coord_flush(w.c), 0);
	CHECK_EQ(pw_balance(&w, w.provider[run[0].node]), prov);
	sound(10 * A);
	free_runs(run, 1);
	stop();
}

static int64_t reputation(int node, int64_t *ret_invalid)
{
	cJSON *o = NULL;
	const cJSON *t;
	int64_t rep = -1;

	if (pay_node(w.p, w.node[node], &o) < 0)
		return -1;
	t = cJSON_GetObjectItemCaseSensitive(o, "trust");
	canon_get_i64(t, "reputation_ppm", &rep);
	canon_get_i64(t, "invalid", ret_invalid);
	cJSON_Delete(o);
	return rep;
}

static void test_forged_refused(void)
{
	struct pw_run run[1] = {0};
	struct pw_usage u = honest(7, 0x11);
	char spec[1024], *p;
	int64_t id, rep0, rep1, inv = 0, alice;

	start();
	CHECK_EQ(mint("alice", 10 * A), 0);
	pw_spec(&w, 2 * A, 1, NULL, spec, sizeof(spec));
	id = pw_submit(&w, spec, PW_T0, NULL, err, sizeof(err));
	CHECK(id > 0);
	CHECK_EQ(pw_offers(&w, id, PW_T0 + 10, run, 1), 1);
	CHECK_EQ(coord_flush(w.c), 0);
	alice = pw_balance(&w, "alice");
	/* a first valid result elsewhere gives the node a history */
	rep0 = reputation(run[0].node, &inv);
	CHECK_EQ(inv, 0);

	/* 1: signed by another node's key */
	u.signer = (run[0].node + 1) % PW_NODES;
	CHECK_EQ(pw_record(&w, id, &run[0], &u), 0);
	CHECK_EQ(verdict(id, &run[0], PW_T0 + 1912), PAY_REFUSED);
	CHECK_STREQ(err, "the record's signature does not verify with the node's key");
	/* 2: the node's own signature, then cpu_ns altered in the line */
	u.signer = -1;
	CHECK_EQ(pw_record(&w, id, &run[0], &u), 0);
	p = strstr(run[0].line, "\"cpu_ns\":1800");
	CHECK(p);
	p[9] = '9';
	CHECK_EQ(verdict(id, &run[0], PW_T0 + 1912), PAY_REFUSED);
	CHECK_STREQ(err, "the record's signature does not verify with the node's key");
	/* 3: signed, but more CPU than one core gives in the wall time */
	u.cpu_ns = u.kernel_ns = 3000 * S;
	CHECK_EQ(pw_record(&w, id, &run[0], &u), 0);
	CHECK_EQ(verdict(id, &run[0], PW_T0 + 1912), PAY_REFUSED);
	CHECK_STREQ(err, "impossible usage: cpu time exceeds cores x wall time");
	/* 4: meter and kernel disagree */
	u.cpu_ns = 1800 * S;
	u.kernel_ns = 1200 * S;
	CHECK_EQ(pw_record(&w, id, &run[0], &u), 0);
	CHECK_EQ(verdict(id, &run[0], PW_T0 + 1912), PAY_REFUSED);
	CHECK_STREQ(err, "impossible usage: meter and kernel cpu figures disagree");
	/* 5: ran before it was offered */
	u = honest(7, 0x11);
	u.start_s = -100;
	CHECK_EQ(pw_record(&w, id, &run[0], &u), 0);
	CHECK_EQ(verdict(id, &run[0], PW_T0 + 1912), PAY_REFUSED);
	CHECK_STREQ(err, "impossible usage: ran outside the task's window");
	CHECK_EQ(coord_flush(w.c), 0);

	rep1 = reputation(run[0].node, &inv);
	CHECK_EQ(inv, 5);
	CHECK(rep1 < rep0);
	CHECK_EQ(pw_balance(&w, "alice"), alice);
	CHECK_EQ(pw_balance(&w, w.provider[run[0].node]), 0);
	/* the honest record still settles */
	u = honest(7, 0x11);
	CHECK_EQ(pw_record(&w, id, &run[0], &u), 0);
	CHECK_EQ(verdict(id, &run[0], PW_T0 + 1912), PAY_SETTLED);
	CHECK_EQ(coord_flush(w.c), 0);
	sound(10 * A);
	free_runs(run, 1);
	stop();
}

static void test_lying_replica(void)
{
	struct pw_run run[3] = {0};
	enum pay_verdict v;
	char spec[1024];
	int64_t id, refund = 0, stake_before, treasury_before;
	int liar;

	start();
	CHECK_EQ(mint("alice", 20 * A), 0);
	pw_spec(&w, 2 * A, 3, NULL, spec, sizeof(spec));
	id = pw_submit(&w, spec, PW_T0, NULL, err, sizeof(err));
	CHECK(id > 0);
	CHECK_EQ(pw_offers(&w, id, PW_T0 + 10, run, 3), 3);
	CHECK(run[0].node != run[1].node && run[1].node != run[2].node &&
	      run[0].node != run[2].node);
	liar = run[2].node;
	CHECK_EQ(mint(w.provider[liar], 10 * A), 0);
	CHECK_EQ(pay_stake(w.p, w.provider[liar], 10 * A, PW_T0 * S, err, sizeof(err)), 0);
	CHECK_EQ(coord_flush(w.c), 0);
	stake_before = 10 * A;
	treasury_before = pw_balance(&w, LEDGER_TREASURY);
	for (int i = 0; i < 3; i++) {
		struct pw_usage u = honest(1, i == 2 ? 0x22 : 0x11);

		CHECK_EQ(pw_record(&w, id, &run[i], &u), 0);
		CHECK_EQ(pw_events(&w, id, &run[i], PW_T0 + 1912), 0);
		CHECK_EQ(pw_result(&w, id, &run[i], PW_T0 + 1912, &v, err, sizeof(err)), 0);
		if (i < 2)
			CHECK_EQ(v, PAY_WAIT);
	}
	CHECK_EQ(v, PAY_REFUSED);
	CHECK_STREQ(err, "outvoted by the quorum: result differs");
	CHECK_EQ(pay_on_task_end(w.p, id, (PW_T0 + 1913) * S, &refund), 0);
	CHECK_EQ(coord_flush(w.c), 0);
	/* slashed slash_bps of the stake, to the treasury; nothing earned */
	{
		char acct[64];
		int64_t cut = stake_before * pay_params(w.p)->slash_bps / 10000;

		snprintf(acct, sizeof(acct), "stake:%s", w.provider[liar]);
		CHECK_EQ(pw_balance(&w, acct), stake_before - cut);
		CHECK_EQ(pw_balance(&w, LEDGER_TREASURY), treasury_before + cut);
	}
	CHECK_EQ(pw_balance(&w, w.provider[liar]), 0);
	{
		/* the liar's earnings list: its result, refused, paid nothing */
		cJSON *o = NULL;
		const cJSON *e;
		const char *s = NULL;
		int64_t paid = -1;

		CHECK_EQ(pay_node(w.p, w.node[liar], &o), 0);
		e = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(o, "earnings"), 0);
		CHECK_EQ(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(o, "earnings")), 1);
		CHECK_EQ(canon_get_str(e, "state", &s), 0);
		CHECK_STREQ(s, "refused");
		CHECK_EQ(canon_get_i64(e, "paid", &paid), 0);
		CHECK_EQ(paid, 0);
		cJSON_Delete(o);
	}
	CHECK(pw_balance(&w, w.provider[run[0].node]) > 0);
	CHECK(pw_balance(&w, w.provider[run[1].node]) > 0);
	CHECK_EQ(refund, 6 * A - 2 * (A / 2)); /* two honest results charged */
	sound(30 * A);
	free_runs(run, 3);

	/* a tie (1 vs 1): a third replica is needed; without one, no quorum, nobody paid */
	pw_spec(&w, 2 * A, 2, NULL, spec, sizeof(spec));
	id = pw_submit(&w, spec, PW_T0 + 2000, NULL, err, sizeof(err));
	CHECK(id > 0);
	CHECK_EQ(pw_offers(&w, id, PW_T0 + 2010, run, 2), 2);
	for (int i = 0; i < 2; i++) {
		struct pw_usage u = honest(2, i ? 0x22 : 0x11);

		CHECK_EQ(pw_record(&w, id, &run[i], &u), 0);
		CHECK_EQ(pw_events(&w, id, &run[i], PW_T0 + 3912), 0);
		CHECK_EQ(pw_result(&w, id, &run[i], PW_T0 + 3912, &v, err, sizeof(err)), 0);
	}
	CHECK_EQ(v, PAY_NEED_REPLICA);
	CHECK_EQ(pay_on_task_end(w.p, id, (PW_T0 + 3913) * S, &refund), 0);
	CHECK_EQ(refund, 4 * A);
	CHECK_EQ(coord_flush(w.c), 0);
	sound(30 * A);
	free_runs(run, 2);
	stop();
}

static void test_pow_below_difficulty(void)
{
	struct pw_run run[1] = {0};
	struct pw_usage u = honest(5, 0x33);
	uint8_t h[32], res[32];
	uint64_t good;
	char spec[1024];
	int64_t id;

	start();
	CHECK_EQ(mint("alice", 10 * A), 0);
	pw_spec(&w, 2 * A, 1, NULL, spec, sizeof(spec));
	id = pw_submit(&w, spec, PW_T0, NULL, err, sizeof(err));
	CHECK(id > 0);
	CHECK_EQ(pw_offers(&w, id, PW_T0 + 10, run, 1), 1);
	run[0].pow_bits = 16;
	CHECK_EQ(pw_record(&w, id, &run[0], &u), 0);
	good = run[0].nonce;
	sha256(run[0].line, run[0].len, h);
	memset(res, 0x33, 32);
	CHECK(pow_stamp_bits("1", res, h, good) >= 16);
	/* the first nonce whose stamp has fewer than 16 zero bits */
	for (run[0].nonce = 0; pow_stamp_bits("1", res, h, run[0].nonce) >= 16; run[0].nonce++)
		;
	CHECK_EQ(verdict(id, &run[0], PW_T0 + 1912), PAY_REFUSED);
	CHECK_STREQ(err, "proof-of-work stamp below difficulty 16");
	run[0].nonce = good;
	CHECK_EQ(verdict(id, &run[0], PW_T0 + 1912), PAY_SETTLED);
	CHECK_EQ(coord_flush(w.c), 0);
	sound(10 * A);
	free_runs(run, 1);
	stop();
}

static void test_epoch_conserves_pool(void)
{
	struct pw_run run[2] = {0};
	enum pay_verdict v;
	char spec[1024];
	int64_t id, before[2], pool, treasury, staking, alice_before, price, mult = 0;
	unsigned bits;
	int64_t epoch_ns;

	start();
	CHECK_EQ(mint("alice", 10 * A), 0);
	CHECK_EQ(pay_stake(w.p, "alice", A, PW_T0 * S, err, sizeof(err)), 0);
	pw_spec(&w, 2 * A, 2, NULL, spec, sizeof(spec));
	id = pw_submit(&w, spec, PW_T0, NULL, err, sizeof(err));
	CHECK(id > 0);
	CHECK_EQ(pw_offers(&w, id, PW_T0 + 10, run, 2), 2);
	for (int i = 0; i < 2; i++) {
		struct pw_usage u = honest(1, 0x44);

		u.cpu_ns = u.kernel_ns = (i + 1) * 600 * S; /* 600 and 1200 CPU-s */
		CHECK_EQ(pw_record(&w, id, &run[i], &u), 0);
		CHECK_EQ(pw_events(&w, id, &run[i], PW_T0 + 1912), 0);
		CHECK_EQ(pw_result(&w, id, &run[i], PW_T0 + 1912, &v, err, sizeof(err)), 0);
	}
	CHECK_EQ(v, PAY_SETTLED);
	CHECK_EQ(pay_on_task_end(w.p, id, (PW_T0 + 1913) * S, NULL), 0);
	CHECK_EQ(coord_flush(w.c), 0);
	for (int i = 0; i < 2; i++)
		before[i] = pw_balance(&w, w.provider[run[i].node]);
	treasury = pw_balance(&w, LEDGER_TREASURY);
	staking = pw_balance(&w, LEDGER_FEE_STAKING);
	alice_before = pw_balance(&w, "alice");
	CHECK(staking > 0);
	pool = pay_params(w.p)->reward_pool;
	epoch_ns = pay_params(w.p)->epoch_ns;

	/* not due yet, then due: demand 0 over 16 offered cores lowers the price */
	CHECK_EQ(pay_tick(w.p, PW_T0 * S + epoch_ns - 1, 0, 16000), 0);
	CHECK_EQ(pay_tick(w.p, PW_T0 * S + epoch_ns, 0, 16000), 1);
	{
		int64_t r0 = pw_balance(&w, w.provider[run[0].node]) - before[0];
		int64_t r1 = pw_balance(&w, w.provider[run[1].node]) - before[1];
		int64_t rem = pw_balance(&w, LEDGER_TREASURY) - treasury;

		/* the pool shared 1:2 by validated CPU (same renewable share), all of it */
		CHECK_EQ(r0 + r1 + rem, pool);
		CHECK(r1 == 2 * r0 || r1 == 2 * r0 + 1);
		CHECK(rem >= 0 && rem < 2);
	}
	/* fee:staking paid to the one staker */
	CHECK_EQ(pw_balance(&w, LEDGER_FEE_STAKING), 0);
	CHECK_EQ(pw_balance(&w, "alice"), alice_before + staking);
	sound(10 * A + pool);
	/* the next epoch's price */
	CHECK_EQ(pay_offer_terms(w.p, A, 2 * A, &price, &bits), 0);
	{
		struct ledger *l = NULL;

		CHECK_EQ(ledger_new(store_db(coord_store(w.c)), &l), 0);
		CHECK_EQ(settle_current_mult(l, &mult), 0);
		ledger_free(l);
	}
	CHECK(mult < 1000000);
	CHECK_EQ(price, A * mult / 1000000);
	CHECK_EQ(bits, econ_pow_bits(pay_params(w.p), mult));
	free_runs(run, 2);
	stop();
}

static void test_governance(void)
{
	struct pw_run run[1] = {0};
	struct pw_usage u = honest(9, 0x55);
	char spec[1024];
	int64_t id, prop = 0, prop2 = 0, voting, fee;
	cJSON *o = NULL, *it;
	int seen = 0;

	start();
	CHECK_EQ(mint("alice", 500 * A), 0);
	CHECK_EQ(mint("bob", 300 * A), 0);
	CHECK_EQ(pay_propose(w.p, "alice", "fee_bps", 250, NULL, PW_T0 * S, &o, err, sizeof(err)),
		 -EPERM);
	CHECK_EQ(pay_stake(w.p, "alice", 200 * A, PW_T0 * S, err, sizeof(err)), 0);
	CHECK_EQ(pay_stake(w.p, "bob", 400 * A, PW_T0 * S, err, sizeof(err)), -ENOSPC);
	CHECK_STREQ(err, "insufficient funds: balance 300 AICN, stake needs 400 AICN");
	CHECK_EQ(pay_stake(w.p, "bob", 100 * A, PW_T0 * S, err, sizeof(err)), 0);
	CHECK_EQ(pay_propose(w.p, "alice", "fee_bps", 250, "halve the fee", PW_T0 * S, &o, err,
			     sizeof(err)),
		 0);
	CHECK_EQ(canon_get_i64(o, "proposal", &prop), 0);
	cJSON_Delete(o);
	CHECK_EQ(pay_propose(w.p, "bob", "slash_bps", 2000, NULL, PW_T0 * S, &o, err, sizeof(err)),
		 0);
	CHECK_EQ(canon_get_i64(o, "proposal", &prop2), 0);
	cJSON_Delete(o);
	CHECK_EQ(pay_propose(w.p, "bob", "no_such", 1, NULL, PW_T0 * S, &o, err, sizeof(err)),
		 -ENOENT);
	CHECK_EQ(pay_vote(w.p, "alice", prop, true, PW_T0 * S + 1, err, sizeof(err)), 0);
	CHECK_EQ(pay_vote(w.p, "bob", prop, true, PW_T0 * S + 1, err, sizeof(err)), 0);
	CHECK_EQ(pay_vote(w.p, "bob", prop, false, PW_T0 * S + 2, err, sizeof(err)), -EEXIST);
	CHECK_EQ(pay_vote(w.p, "carol", prop, true, PW_T0 * S + 2, err, sizeof(err)), -EPERM);
	CHECK_EQ(coord_flush(w.c), 0);
	voting = pay_params(w.p)->gov_voting_ns;
	CHECK_EQ(pay_params(w.p)->fee_bps, 500);
	CHECK(pay_tick(w.p, PW_T0 * S + voting, 0, 0) >= 0);
	CHECK_EQ(pay_params(w.p)->fee_bps, 250);
	CHECK_EQ(pay_params(w.p)->slash_bps, 1000); /* no votes: no quorum */
	CHECK_EQ(pay_vote(w.p, "alice", prop2, true, PW_T0 * S + voting + 1, err, sizeof(err)),
		 -ESTALE);
	CHECK_EQ(pay_proposals(w.p, &o), 0);
	cJSON_ArrayForEach (it, o) {
		const char *st = NULL;
		int64_t n = 0;

		canon_get_i64(it, "proposal", &n);
		canon_get_str(it, "state", &st);
		if (n == prop) {
			CHECK_STREQ(st, "passed");
			seen++;
		} else if (n == prop2) {
			CHECK_STREQ(st, "failed");
			seen++;
		}
	}
	cJSON_Delete(o);
	CHECK_EQ(seen, 2);

	/* a payment after the change pays the new fee */
	pw_spec(&w, 2 * A, 1, NULL, spec, sizeof(spec));
	id = pw_submit(&w, spec, PW_T0 + voting / S + 10, NULL, err, sizeof(err));
	CHECK(id > 0);
	CHECK_EQ(pw_offers(&w, id, PW_T0 + voting / S + 20, run, 1), 1);
	CHECK_EQ(pw_record(&w, id, &run[0], &u), 0);
	CHECK_EQ(verdict(id, &run[0], PW_T0 + voting / S + 1922), PAY_SETTLED);
	CHECK_EQ(coord_flush(w.c), 0);
	fee = (run[0].price / 2) * 250 / 10000;
	CHECK_EQ(fees(), fee);
	{
		struct ledger_report rep = {0};

		CHECK_EQ(pw_verify(&w, &rep), 0);
		CHECK_EQ(rep.minted, rep.total);
	}
	free_runs(run, 1);
	stop();
}

/* Genesis parameters from a file are ledger entries an auditor replays. */
static void test_params_file(void)
{
	char path[300], spec[1024];
	struct pw_run run[1] = {0};
	struct pw_usage u = honest(1, 0x66);
	int64_t id;
	FILE *f;

	start();
	pw_close(&w);
	snprintf(path, sizeof(path), "%s/bad.ini", w.dir);
	f = fopen(path, "w");
	CHECK(f);
	fprintf(f, "[econ]\nfee_bps = 300\nno_such = 1\n");
	fclose(f);
	CHECK_EQ(pw_open(&w, PW_T0, path, err, sizeof(err)), -ENOENT);
	CHECK(strstr(err, "params: ") == err && strstr(err, "bad.ini: unknown parameter no_such"));
	pw_close(&w);
	/* a fresh ledger with a good file */
	{
		char cmd[400];

		snprintf(cmd, sizeof(cmd), "rm -f '%s'/coord.db*", w.dir);
		CHECK_EQ(system(cmd), 0);
	}
	snprintf(path, sizeof(path), "%s/params.ini", w.dir);
	f = fopen(path, "w");
	CHECK(f);
	fprintf(f, "# genesis\n[econ]\nfee_bps = 300\n");
	fclose(f);
	CHECK_EQ(pw_open(&w, PW_T0, path, err, sizeof(err)), 0);
	CHECK_EQ(pay_params(w.p)->fee_bps, 300);
	CHECK_EQ(mint("alice", 10 * A), 0);
	pw_spec(&w, 2 * A, 1, NULL, spec, sizeof(spec));
	id = pw_submit(&w, spec, PW_T0, NULL, err, sizeof(err));
	CHECK(id > 0);
	CHECK_EQ(pw_offers(&w, id, PW_T0 + 10, run, 1), 1);
	CHECK_EQ(pw_record(&w, id, &run[0], &u), 0);
	CHECK_EQ(verdict(id, &run[0], PW_T0 + 1912), PAY_SETTLED);
	CHECK_EQ(coord_flush(w.c), 0);
	CHECK_EQ(fees(), (A / 2) * 300 / 10000);
	sound(10 * A);
	/* a restart with another file changes nothing: governance owns the values now */
	pw_close(&w);
	f = fopen(path, "w");
	CHECK(f);
	fprintf(f, "{\"fee_bps\": 900}\n");
	fclose(f);
	CHECK_EQ(pw_open(&w, PW_T0 + 2000, path, err, sizeof(err)), 0);
	CHECK_EQ(pay_params(w.p)->fee_bps, 300);
	/* new nodes are always validated */
	CHECK(pay_want_replica(w.p, w.node[0]));
	free_runs(run, 1);
	stop();
}

/* An OCI layout archive: the agent's record names its manifest, SUBMIT names the archive. */
static void test_image_manifest(void)
{
	static const char manifest[] =
		"sha256:abababababababababababababababababababababababababababababababab";
	static const char other[] =
		"sha256:cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd";
	struct pw_run run[1] = {0};
	struct pw_usage u = honest(1, 0x77);
	char spec[1024], cmd[700], path[300], *data = NULL;
	int64_t id;
	size_t n = 0;
	FILE *f;

	start();
	snprintf(path, sizeof(path), "%s/layout", w.dir);
	CHECK_EQ(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/layout/index.json", w.dir);
	f = fopen(path, "w");
	CHECK(f);
	fprintf(f,
		"{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":"
		"\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"%s\",\"size\":500}]}",
		manifest);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "tar -C '%s/layout' -cf '%s/img.tar' index.json", w.dir, w.dir);
	CHECK_EQ(system(cmd), 0);
	snprintf(path, sizeof(path), "%s/img.tar", w.dir);
	f = fopen(path, "r");
	CHECK(f);
	data = malloc(1 << 16);
	CHECK(data);
	n = fread(data, 1, 1 << 16, f);
	fclose(f);
	CHECK(n > 0);
	CHECK_EQ(blobs_put(coord_blobs(w.c), data, n, w.renter_id, BLOB_INPUT, PW_T0, 86400,
			   w.image),
		 0);
	free(data);
	CHECK_EQ(mint("alice", 10 * A), 0);
	pw_spec(&w, 2 * A, 1, NULL, spec, sizeof(spec));
	id = pw_submit(&w, spec, PW_T0, NULL, err, sizeof(err));
	CHECK(id > 0);
	CHECK_EQ(pw_offers(&w, id, PW_T0 + 10, run, 1), 1);
	u.image = other;
	CHECK_EQ(pw_record(&w, id, &run[0], &u), 0);
	CHECK_EQ(verdict(id, &run[0], PW_T0 + 1912), PAY_REFUSED);
	CHECK_STREQ(err, "the record ran another image");
	u.image = manifest;
	CHECK_EQ(pw_record(&w, id, &run[0], &u), 0);
	CHECK_EQ(verdict(id, &run[0], PW_T0 + 1912), PAY_SETTLED);
	CHECK_EQ(coord_flush(w.c), 0);
	free_runs(run, 1);
	stop();
}

/*
 * Memory that is not a whole MiB: the offer rounds it up (mem_mb), so the agent's
 * limit is the spec's rounded up to a MiB.  That is no looser than the spec; one MiB
 * more is.
 */
static void test_memory_rounded_to_mib(void)
{
	struct pw_run run[1] = {0};
	struct pw_usage u = honest(1, 0x55);
	char spec[1024];
	int64_t id;

	start();
	CHECK_EQ(mint("alice", 10 * A), 0);
	/* 1 GiB - 512 KiB - 1: the offer says mem_mb 1024 */
	snprintf(spec, sizeof(spec),
		 "{\"image\": \"%s\", \"command\": [\"/bin/true\"], \"cores\": 1, "
		 "\"memory\": 1073217535, \"max_wall_seconds\": 3600, \"max_cpu_seconds\": 3600, "
		 "\"max_price\": %lld, \"replicas\": 1}",
		 w.image, (long long)(2 * A));
	id = pw_submit(&w, spec, PW_T0, NULL, err, sizeof(err));
	CHECK(id > 0);
	CHECK_EQ(pw_offers(&w, id, PW_T0 + 10, run, 1), 1);
	u.mem_bytes = 1074790400; /* 1025 MiB: looser than the spec */
	CHECK_EQ(pw_record(&w, id, &run[0], &u), 0);
	CHECK_EQ(verdict(id, &run[0], PW_T0 + 1912), PAY_REFUSED);
	CHECK_STREQ(err, "the record's limits are looser than the task's");
	u.mem_bytes = 1073741824; /* 1024 MiB: what the agent was offered */
	CHECK_EQ(pw_record(&w, id, &run[0], &u), 0);
	CHECK_EQ(verdict(id, &run[0], PW_T0 + 1912), PAY_SETTLED);
	CHECK_EQ(coord_flush(w.c), 0);
	free_runs(run, 1);
	stop();
}

int main(void)
{
	static const struct test_case cases[] = {
		TEST(test_escrow_refused),	  TEST(test_full_life),
		TEST(test_replay_pays_nothing),	  TEST(test_forged_refused),
		TEST(test_lying_replica),	  TEST(test_pow_below_difficulty),
		TEST(test_epoch_conserves_pool),  TEST(test_governance),
		TEST(test_params_file),		  TEST(test_image_manifest),
		TEST(test_memory_rounded_to_mib), {NULL, NULL},
	};

	return harness_run(cases);
}
