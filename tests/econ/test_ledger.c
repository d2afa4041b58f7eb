/* test_ledger.c -- the ledger and settlement: double entry, idempotency, escrow, fees, replays, forgeries, quorum and slashing, rewards, tampering found by replay. */
#include "ledger_util.h"

#include "harness.h"

#include <aicn/key.h>
#include <aicn/merkle.h>
#include <aicn/record.h>
#include <openssl/evp.h>

#include <errno.h>
#include <inttypes.h>

static const int64_t S = 1000000000LL; /* a second in ns */

static struct econ_params P;

struct fx {
	sqlite3 *db;
	struct ledger *l;
};

static void fx_open(struct fx *f, const char *name)
{
	econ_params_default(&P);
	f->db = tu_open(name);
	if (ledger_new(f->db, &f->l) < 0)
		abort();
}

static void fx_close(struct fx *f)
{
	f->l = ledger_free(f->l);
	sqlite3_close(f->db);
}

/* Replay with the auditor's recomputation of charges, fees and rewards. */
static int verify(sqlite3 *db, struct ledger_report *rep)
{
	struct settle_audit *au = NULL;
	int r = settle_audit_new(&au);

	if (r < 0)
		return r;
	r = ledger_verify(db, settle_audit_visit, au, rep);
	settle_audit_free(au);

	if (r < 0)
		fprintf(stderr, "verify: %d at %" PRIu64 ": %s\n", r, rep->bad_seq, rep->reason);
	return r;
}

static int64_t bal(struct fx *f, const char *a)
{
	int64_t b = -1;

	if (ledger_balance(f->l, a, &b) < 0)
		return -999;
	return b;
}

static void test_double_entry(void)
{
	struct fx f;
	struct ledger_report rep;
	struct ledger_posting bad[2] = {{"alice", 5}, {"bob", -4}};
	struct ledger_posting neg[2] = {{"alice", -1000}, {"bob", 1000}};
	struct ledger_append_args a = {
		.kind = "transfer", .cause = "t1", .time_ns = 1, .postings = bad, .n_postings = 2};
	uint64_t size;

	fx_open(&f, "double.db");
	CHECK_EQ(settle_mint(f.l, "alice", 100, "faucet:1", 1, 0), 0);
	CHECK_EQ(settle_mint(f.l, "alice", 100, "faucet:1", 1, 0), -EEXIST); /* idempotent */
	CHECK_EQ(bal(&f, "alice"), 100);
	CHECK_EQ(bal(&f, LEDGER_MINT), -100);
	CHECK_EQ(ledger_append(f.l, &a, NULL), -EINVAL); /* does not sum to zero */
	a.postings = neg;
	CHECK_EQ(ledger_append(f.l, &a, NULL), -ENOSPC); /* alice has 100 */
	CHECK_EQ(settle_transfer(f.l, "alice", "bob", 40, "t1", 2, 0), 0);
	CHECK_EQ(settle_transfer(f.l, "alice", "bob", 40, "t1", 2, 0), -EEXIST);
	CHECK_EQ(settle_transfer(f.l, "alice", "mint", 40, "t2", 2, 0), -EINVAL);
	CHECK_EQ(settle_transfer(f.l, "alice", "bad name", 1, "t3", 2, 0), -EINVAL);
	CHECK_EQ(settle_mint(f.l, "alice", 1, "bad\ncause", 1, 0), -EINVAL);
	CHECK_EQ(bal(&f, "alice"), 60);
	CHECK_EQ(bal(&f, "bob"), 40);
	ledger_head(f.l, &size, NULL);
	CHECK_EQ(size, 2);
	CHECK_EQ(verify(f.db, &rep), 0);
	CHECK_EQ(rep.entries, 2);
	CHECK_EQ(rep.minted, 100);
	CHECK_EQ(rep.total, 100);
	/* a batch that is rolled back leaves nothing, and the chain continues correctly */
	CHECK_EQ(ledger_begin(f.l), 0);
	CHECK_EQ(settle_mint(f.l, "carol", 5, "faucet:2", 3, 0), 0);
	CHECK_EQ(ledger_rollback(f.l), 0);
	CHECK_EQ(bal(&f, "carol"), 0);
	CHECK_EQ(settle_mint(f.l, "carol", 5, "faucet:2", 3, 0), 0);
	CHECK_EQ(verify(f.db, &rep), 0);
	CHECK_EQ(rep.entries, 3);
	fx_close(&f);
}

static void test_tamper(void)
{
	struct fx f;
	struct ledger_report rep;

	fx_open(&f, "tamper.db");
	CHECK_EQ(settle_mint(f.l, "alice", 100, "f1", 1, 0), 0);
	CHECK_EQ(settle_transfer(f.l, "alice", "bob", 30, "t1", 2, 0), 0);
	CHECK_EQ(settle_transfer(f.l, "bob", "carol", 10, "t2", 3, 0), 0);
	CHECK_EQ(verify(f.db, &rep), 0);
	/* a changed balance */
	sqlite3_exec(f.db, "UPDATE ledger_balances SET balance = balance + 1 WHERE account='bob'",
		     NULL, NULL, NULL);
	CHECK_EQ(ledger_verify(f.db, NULL, NULL, &rep), -EBADMSG);
	CHECK(strstr(rep.reason, "bob") != NULL);
	sqlite3_exec(f.db, "UPDATE ledger_balances SET balance = balance - 1 WHERE account='bob'",
		     NULL, NULL, NULL);
	CHECK_EQ(verify(f.db, &rep), 0);
	/* a changed amount inside a body */
	sqlite3_exec(f.db,
		     "UPDATE ledger_entries SET body = replace(body, '\"d\":30', '\"d\":31') "
		     "WHERE seq = 2",
		     NULL, NULL, NULL);
	CHECK_EQ(ledger_verify(f.db, NULL, NULL, &rep), -EBADMSG);
	CHECK_EQ(rep.bad_seq, 2);
	fx_close(&f);
	/* a deleted entry */
	fx_open(&f, "tamper2.db");
	CHECK_EQ(settle_mint(f.l, "alice", 100, "f1", 1, 0), 0);
	CHECK_EQ(settle_transfer(f.l, "alice", "bob", 30, "t1", 2, 0), 0);
	CHECK_EQ(settle_transfer(f.l, "bob", "carol", 10, "t2", 3, 0), 0);
	sqlite3_exec(f.db, "DELETE FROM ledger_entries WHERE seq = 2", NULL, NULL, NULL);
	CHECK_EQ(ledger_verify(f.db, NULL, NULL, &rep), -EBADMSG);
	CHECK_EQ(rep.bad_seq, 2);
	fx_close(&f);
	/* a re-hashed, re-chained forgery still breaks the next entry's prev */
	fx_open(&f, "tamper3.db");
	CHECK_EQ(settle_mint(f.l, "alice", 100, "f1", 1, 0), 0);
	CHECK_EQ(settle_mint(f.l, "alice", 100, "f2", 1, 0), 0);
	{
		sqlite3_stmt *st;
		char body[4096], *p;
		uint8_t h[32];

		CHECK(sqlite3_prepare_v2(f.db, "SELECT body FROM ledger_entries WHERE seq = 1", -1,
					 &st, NULL) == SQLITE_OK);
		CHECK(sqlite3_step(st) == SQLITE_ROW);
		snprintf(body, sizeof(body), "%s", (const char *)sqlite3_column_text(st, 0));
		sqlite3_finalize(st);
		p = strstr(body, "\"d\":100}");
		CHECK(p != NULL);
		p[5] = '1'; /* 100 -> 101 for alice (and the mint leg stays -100) */
		sha256(body, strlen(body), h);
		CHECK(sqlite3_prepare_v2(f.db,
					 "UPDATE ledger_entries SET body = ?1, hash = ?2 "
					 "WHERE seq = 1",
					 -1, &st, NULL) == SQLITE_OK);
		sqlite3_bind_text(st, 1, body, -1, SQLITE_STATIC);
		sqlite3_bind_blob(st, 2, h, 32, SQLITE_STATIC);
		CHECK(sqlite3_step(st) == SQLITE_DONE);
		sqlite3_finalize(st);
	}
	CHECK_EQ(ledger_verify(f.db, NULL, NULL, &rep), -EBADMSG);
	CHECK(rep.bad_seq == 1 || rep.bad_seq == 2);
	fx_close(&f);
}

/* Settle one replica's record of `task` from `node`. */
static int pay(struct fx *f, const char *task, const char *node, uint64_t seq, int64_t cpu,
	       uint8_t hash[32])
{
	struct settle_usage_req u = {.price = SETTLE_PRICE_ESCROW,
				     .task = task,
				     .node = node,
				     .node_seq = seq,
				     .provider = node,
				     .cpu_ns = cpu,
				     .renewable_ppm = 0,
				     .time_ns = 100 * S,
				     .epoch = 1};

	memcpy(u.record_hash, hash, 32);
	return settle_usage(f->l, &P, &u, NULL);
}

static void test_escrow_and_replay(void)
{
	struct fx f;
	struct ledger_report rep;
	struct settle_escrow_req req = {.task = "t1",
					.renter = "renter",
					.price_per_cpu_hour = 2 * ECON_UNIT,
					.max_cpu_ns = 3600 * S,
					.replicas = 1,
					.time_ns = S,
					.epoch = 1};
	struct econ_fee_split fs;
	int64_t esc = 0, refund = 0;
	uint8_t h[32], h2[32];
	struct settle_usage_req u;

	fx_open(&f, "escrow.db");
	CHECK_EQ(settle_mint(f.l, "renter", 3 * ECON_UNIT, "f1", 1, 0), 0);
	/* 1 CPU-hour x 2 AICN x 2 replicas = 4 AICN: refused, nothing moves */
	req.replicas = 2;
	CHECK_EQ(settle_escrow_open(f.l, &req, &esc), -ENOSPC);
	CHECK_EQ(bal(&f, "renter"), 3 * ECON_UNIT);
	req.replicas = 1;
	CHECK_EQ(settle_escrow_open(f.l, &req, &esc), 0);
	CHECK_EQ(esc, 2 * ECON_UNIT);
	CHECK_EQ(settle_escrow_open(f.l, &req, &esc), -EEXIST);
	CHECK_EQ(bal(&f, "escrow:t1"), 2 * ECON_UNIT);
	/* 30 CPU-minutes: charge 1 AICN, fee 5 % */
	tu_hash("rec", 1, h);
	memset(&u, 0, sizeof(u));
	u = (struct settle_usage_req){.price = SETTLE_PRICE_ESCROW,
				      .task = "t1",
				      .node = "node-a",
				      .node_seq = 7,
				      .provider = "owner-a",
				      .cpu_ns = 1800 * S,
				      .renewable_ppm = 500000,
				      .time_ns = 10 * S,
				      .epoch = 1};
	memcpy(u.record_hash, h, 32);
	CHECK_EQ(settle_usage(f.l, &P, &u, &fs), 0);
	CHECK_EQ(fs.provider, 950000000);
	CHECK_EQ(bal(&f, "owner-a"), 950000000);
	CHECK_EQ(bal(&f, LEDGER_FEE_MAINT) + bal(&f, LEDGER_FEE_DEV) + bal(&f, LEDGER_FEE_STAKING),
		 50000000);
	/* the same record again, or the same node sequence under another hash: nothing */
	CHECK_EQ(settle_usage(f.l, &P, &u, &fs), -EEXIST);
	tu_hash("rec", 2, h2);
	memcpy(u.record_hash, h2, 32);
	CHECK_EQ(settle_usage(f.l, &P, &u, &fs), -EEXIST);
	CHECK_EQ(bal(&f, "owner-a"), 950000000);
	/* a second record for a one-replica task finds no escrow left to pay it */
	u.node_seq = 8;
	CHECK_EQ(settle_usage(f.l, &P, &u, &fs), -ENOSPC);
	/* completion refunds the rest */
	CHECK_EQ(settle_escrow_close(f.l, "t1", 20 * S, 1, &refund), 0);
	CHECK_EQ(refund, ECON_UNIT);
	CHECK_EQ(bal(&f, "renter"), 2 * ECON_UNIT);
	CHECK_EQ(bal(&f, "escrow:t1"), 0);
	CHECK_EQ(settle_escrow_close(f.l, "t1", 20 * S, 1, &refund), -EEXIST);
	memcpy(u.record_hash, h2, 32);
	u.node_seq = 9;
	CHECK_EQ(settle_usage(f.l, &P, &u, &fs), -ESTALE);
	CHECK_EQ(pay(&f, "nope", "node-a", 10, S, h2), -ENOENT);
	/* cancel before any usage: everything back */
	req.task = "t2";
	CHECK_EQ(settle_escrow_open(f.l, &req, &esc), 0);
	CHECK_EQ(settle_escrow_close(f.l, "t2", 30 * S, 1, &refund), 0);
	CHECK_EQ(refund, 2 * ECON_UNIT);
	/* ratings only for one's own settled task */
	CHECK_EQ(settle_rate(f.l, "t1", "renter", "node-a", 5), 0);
	CHECK_EQ(settle_rate(f.l, "t1", "renter", "node-a", 4), -EEXIST);
	CHECK_EQ(settle_rate(f.l, "t1", "mallory", "node-a", 1), -EPERM);
	CHECK_EQ(settle_rate(f.l, "t2", "renter", "node-a", 1), -EPERM);
	CHECK_EQ(settle_rate(f.l, "t1", "renter", "node-a", 6), -EINVAL);
	{
		int64_t milli;
		uint64_t n;

		CHECK_EQ(settle_rating(f.l, &P, "node-a", &milli, &n), 0);
		CHECK_EQ(n, 1);
		CHECK_EQ(milli, 3333);
	}
	CHECK_EQ(verify(f.db, &rep), 0);
	CHECK_EQ(rep.usage_records, 1);
	CHECK_EQ(rep.minted, 3 * ECON_UNIT);
	fx_close(&f);
}

static void test_forged_record(void)
{
	struct fx f;
	struct econ_task_window w = {.millicores = 1000,
				     .max_cpu_ns = 3600 * S,
				     .start_ns = 1000 * S,
				     .end_ns = 1100 * S,
				     .clock_slack_ns = S};
	struct econ_usage claimed = {.cpu_ns = 500 * S,
				     .kernel_cpu_ns = 500 * S,
				     .start_ns = 1001 * S,
				     .end_ns = 1050 * S};
	struct econ_trust before, after;
	enum econ_usage_fault fault;
	uint8_t h[32];
	struct ledger_report rep;

	fx_open(&f, "forged.db");
	tu_hash("forged", 1, h);
	/* 500 s of CPU in 49 s on one core: impossible, refused, trust falls */
	CHECK_EQ(settle_trust(f.l, "node-x", &before), 0);
	fault = econ_check_usage(&P, &w, &claimed);
	CHECK_EQ(fault, ECON_USAGE_CPU_OVER_WALL);
	CHECK_EQ(settle_refuse(f.l, "node-x", h, econ_usage_fault_str(fault), 1100 * S, 1), 0);
	CHECK_EQ(settle_refuse(f.l, "node-x", h, econ_usage_fault_str(fault), 1100 * S, 1),
		 -EEXIST);
	CHECK_EQ(settle_trust(f.l, "node-x", &after), 0);
	CHECK_EQ(after.invalid_total, 1);
	CHECK(econ_reputation_ppm(&after) < econ_reputation_ppm(&before));
	CHECK(econ_should_replicate(&P, &after, 1)); /* and is replicated from now on */
	CHECK_EQ(verify(f.db, &rep), 0);
	fx_close(&f);
}

static void test_lying_replica(void)
{
	struct fx f;
	struct settle_escrow_req req = {.task = "tq",
					.renter = "renter",
					.price_per_cpu_hour = ECON_UNIT,
					.max_cpu_ns = 3600 * S,
					.replicas = 3,
					.time_ns = S,
					.epoch = 1};
	const char *nodes[3] = {"honest1", "liar", "honest2"};
	uint8_t digests[3][32], rec[3][32];
	int64_t slashed = 0, refund;
	size_t winner;
	struct econ_trust t;
	struct ledger_report rep;

	fx_open(&f, "quorum.db");
	CHECK_EQ(settle_mint(f.l, "renter", 10 * ECON_UNIT, "f1", 1, 0), 0);
	for (int i = 0; i < 3; i++) {
		char cause[32];

		snprintf(cause, sizeof(cause), "f-%s", nodes[i]);
		CHECK_EQ(settle_mint(f.l, nodes[i], 1000 * ECON_UNIT, cause, 1, 0), 0);
		CHECK_EQ(gov_stake(f.l, nodes[i], 1000 * ECON_UNIT, cause, 1, 0), 0);
		tu_hash(nodes[i], 0, rec[i]);
	}
	CHECK_EQ(settle_escrow_open(f.l, &req, NULL), 0);
	tu_hash("good-result", 0, digests[0]);
	tu_hash("bad-result", 0, digests[1]);
	tu_hash("good-result", 0, digests[2]);
	/* two replicas disagree: a tie, a third is started */
	CHECK_EQ(econ_quorum(digests, 2, &winner), ECON_QUORUM_NEED_MORE);
	CHECK_EQ(econ_quorum(digests, 3, &winner), ECON_QUORUM_AGREED);
	for (size_t i = 0; i < 3; i++) {
		if (memcmp(digests[i], digests[winner], 32) == 0) {
			CHECK_EQ(pay(&f, "tq", nodes[i], 1, 600 * S, rec[i]), 0);
		} else {
			CHECK_EQ(settle_refuse(f.l, nodes[i], rec[i], "outvoted", 50 * S, 1), 0);
			CHECK_EQ(settle_slash(f.l, &P, nodes[i], nodes[i], "slash:tq:liar", 50 * S,
					      1, &slashed),
				 0);
		}
	}
	CHECK_EQ(slashed, 100 * ECON_UNIT); /* 10 % of 1000 */
	CHECK_EQ(bal(&f, "stake:liar"), 900 * ECON_UNIT);
	CHECK_EQ(bal(&f, LEDGER_TREASURY), 100 * ECON_UNIT);
	CHECK_EQ(bal(&f, "liar"), 0); /* not paid */
	CHECK(bal(&f, "honest1") > 0 && bal(&f, "honest1") == bal(&f, "honest2"));
	CHECK_EQ(settle_trust(f.l, "liar", &t), 0);
	CHECK_EQ(t.invalid_total, 2); /* refused and slashed */
	CHECK_EQ(t.valid_total, 0);
	CHECK_EQ(settle_trust(f.l, "honest1", &t), 0);
	CHECK_EQ(t.valid_total, 1);
	/* the renter pays two replicas' 10 minutes, the third replica's escrow comes back */
	CHECK_EQ(settle_escrow_close(f.l, "tq", 60 * S, 1, &refund), 0);
	CHECK_EQ(refund, 3 * ECON_UNIT - 2 * (ECON_UNIT / 6));
	CHECK_EQ(verify(f.db, &rep), 0);
	fx_close(&f);
}

static void test_epoch_rewards(void)
{
	struct fx f;
	struct settle_escrow_req req = {.task = "te",
					.renter = "renter",
					.price_per_cpu_hour = ECON_UNIT,
					.max_cpu_ns = 36000 * S,
					.replicas = 3,
					.time_ns = S,
					.epoch = 5};
	struct settle_usage_req u = {
		.price = SETTLE_PRICE_ESCROW, .task = "te", .time_ns = 2 * S, .epoch = 5};
	struct settle_epoch_result res;
	struct ledger_report rep;
	int64_t mult;
	unsigned bits;

	fx_open(&f, "epoch.db");
	CHECK_EQ(settle_mint(f.l, "renter", 100 * ECON_UNIT, "f1", 1, 0), 0);
	CHECK_EQ(settle_mint(f.l, "s1", 300, "f2", 1, 0), 0);
	CHECK_EQ(settle_mint(f.l, "s2", 100, "f3", 1, 0), 0);
	CHECK_EQ(gov_stake(f.l, "s1", 300, "st1", 1, 0), 0);
	CHECK_EQ(gov_stake(f.l, "s2", 100, "st2", 1, 0), 0);
	CHECK_EQ(settle_escrow_open(f.l, &req, NULL), 0);
	/* the worked example of docs/economics.md: 10 h at m 1.0, 10 h at 1.2, 5 h at 1.1 */
	u.node = u.provider = "pa";
	u.cpu_ns = 36000 * S;
	u.renewable_ppm = 0;
	tu_hash("e", 1, u.record_hash);
	CHECK_EQ(settle_usage(f.l, &P, &u, NULL), 0);
	u.node = u.provider = "pb";
	u.renewable_ppm = 1000000;
	tu_hash("e", 2, u.record_hash);
	CHECK_EQ(settle_usage(f.l, &P, &u, NULL), 0);
	u.node = u.provider = "pc";
	u.cpu_ns = 18000 * S;
	u.renewable_ppm = 500000;
	tu_hash("e", 3, u.record_hash);
	CHECK_EQ(settle_usage(f.l, &P, &u, NULL), 0);
	{
		int64_t before_a = bal(&f, "pa"), before_b = bal(&f, "pb"),
			before_c = bal(&f, "pc"), pot = bal(&f, LEDGER_FEE_STAKING);

		CHECK_EQ(settle_epoch_close(f.l, &P, 5, 3600 * S, &res), 0);
		CHECK_EQ(bal(&f, "pa") - before_a, 363636363636LL);
		CHECK_EQ(bal(&f, "pb") - before_b, 436363636363LL);
		CHECK_EQ(bal(&f, "pc") - before_c, 200000000000LL);
		CHECK_EQ(res.reward_remainder, 1);
		CHECK_EQ(bal(&f, LEDGER_TREASURY), 1);
		/* stakers 3:1 */
		CHECK_EQ(res.staking_paid, pot - pot % 4);
		CHECK_EQ(bal(&f, "s1"), pot / 4 * 3);
		CHECK_EQ(bal(&f, "s2"), pot / 4);
		CHECK_EQ(res.stakers, 2);
	}
	CHECK_EQ(settle_epoch_close(f.l, &P, 5, 3600 * S, &res), -EEXIST);
	/* an epoch without work: the whole pool goes to the treasury */
	CHECK_EQ(settle_epoch_close(f.l, &P, 6, 7200 * S, &res), 0);
	CHECK_EQ(res.reward_remainder, P.reward_pool);
	/* price: 60 of 50 cores, from 1.0 -> 1.25; PoW difficulty follows */
	CHECK_EQ(settle_epoch_price(f.l, &P, 7, 60000, 50000, 7200 * S, &mult, &bits), 0);
	CHECK_EQ(mult, 1250000);
	CHECK_EQ(bits, econ_pow_bits(&P, 1250000));
	CHECK_EQ(settle_current_mult(f.l, &mult), 0);
	CHECK_EQ(mult, 1250000);
	CHECK_EQ(verify(f.db, &rep), 0);
	CHECK_EQ(rep.minted, 100 * ECON_UNIT + 400 + 2 * P.reward_pool);
	fx_close(&f);
}

static void test_governance(void)
{
	struct fx f;
	struct econ_params p;
	int64_t id = 0, id2 = 0, release = 0;
	enum gov_state st;
	struct ledger_report rep;
	const int64_t H = 3600 * S;

	fx_open(&f, "gov.db");
	CHECK_EQ(settle_mint(f.l, "a", 600 * ECON_UNIT, "f1", 1, 0), 0);
	CHECK_EQ(settle_mint(f.l, "b", 300 * ECON_UNIT, "f2", 1, 0), 0);
	CHECK_EQ(settle_mint(f.l, "c", 100 * ECON_UNIT, "f3", 1, 0), 0);
	CHECK_EQ(gov_stake(f.l, "a", 600 * ECON_UNIT, "s1", 1, 0), 0);
	CHECK_EQ(gov_stake(f.l, "b", 300 * ECON_UNIT, "s2", 1, 0), 0);
	CHECK_EQ(gov_stake(f.l, "c", 50 * ECON_UNIT, "s3", 1, 0), 0);
	/* c has too little stake to propose; unknown or out-of-range values refused */
	CHECK_EQ(gov_propose(f.l, "c", "fee_bps", 100, NULL, H, 0, &id), -EPERM);
	CHECK_EQ(gov_propose(f.l, "a", "no_such", 100, NULL, H, 0, &id), -ENOENT);
	CHECK_EQ(gov_propose(f.l, "a", "fee_bps", 20000, NULL, H, 0, &id), -ERANGE);
	/* a proposal that passes: 900 of 950 staked vote, 600 yes */
	CHECK_EQ(gov_propose(f.l, "a", "fee_bps", 100, NULL, H, 0, &id), 0);
	CHECK_EQ(gov_vote(f.l, id, "a", true, H + 1, 0), 0);
	CHECK_EQ(gov_vote(f.l, id, "a", true, H + 2, 0), -EEXIST);
	CHECK_EQ(gov_vote(f.l, id, "b", false, H + 3, 0), 0);
	CHECK_EQ(gov_vote(f.l, id, "nobody", true, H + 3, 0), -EPERM);
	CHECK_EQ(gov_tick(f.l, H + 100, 0), 0); /* still open */
	CHECK_EQ(gov_params(f.l, &p), 0);
	CHECK_EQ(p.fee_bps, 500);
	CHECK_EQ(gov_tick(f.l, H + P.gov_voting_ns, 1), 1);
	CHECK_EQ(gov_proposal_state(f.l, id, &st), 0);
	CHECK_EQ(st, GOV_PASSED);
	CHECK_EQ(gov_params(f.l, &p), 0);
	CHECK_EQ(p.fee_bps, 100);
	CHECK_EQ(gov_vote(f.l, id, "c", true, H + P.gov_voting_ns + 1, 1), -ESTALE);
	/* the new fee is what settlement charges now */
	{
		struct econ_fee_split fs;

		CHECK_EQ(econ_fee_split(&p, 10000, &fs), 0);
		CHECK_EQ(fs.provider, 9900);
	}
	/* a proposal without quorum fails: only c (50 of 950 = 5 % < 30 %) votes */
	CHECK_EQ(gov_propose(f.l, "b", "fee_bps", 900, NULL, 2 * P.gov_voting_ns, 2, &id2), 0);
	CHECK_EQ(gov_vote(f.l, id2, "c", true, 2 * P.gov_voting_ns + 1, 2), 0);
	CHECK_EQ(gov_tick(f.l, 4 * P.gov_voting_ns, 3), 1);
	CHECK_EQ(gov_proposal_state(f.l, id2, &st), 0);
	CHECK_EQ(st, GOV_FAILED);
	CHECK_EQ(gov_params(f.l, &p), 0);
	CHECK_EQ(p.fee_bps, 100);
	/* unbonding: stake is locked until the delay has passed */
	CHECK_EQ(gov_unstake(f.l, "b", 100 * ECON_UNIT, "u1", 5 * P.gov_voting_ns, 3, &release), 0);
	CHECK_EQ(release, 5 * P.gov_voting_ns + p.unbonding_ns);
	CHECK_EQ(gov_unstake(f.l, "b", 1000 * ECON_UNIT, "u2", 5 * P.gov_voting_ns, 3, &release),
		 -ENOSPC);
	CHECK_EQ(bal(&f, "stake:b"), 200 * ECON_UNIT);
	CHECK_EQ(bal(&f, "unbond:b"), 100 * ECON_UNIT);
	CHECK_EQ(gov_release(f.l, 5 * P.gov_voting_ns + p.unbonding_ns - 1, 3), 0);
	CHECK_EQ(bal(&f, "b"), 0);
	CHECK_EQ(gov_release(f.l, 5 * P.gov_voting_ns + p.unbonding_ns, 4), 1);
	CHECK_EQ(bal(&f, "b"), 100 * ECON_UNIT);
	CHECK_EQ(gov_release(f.l, 5 * P.gov_voting_ns + p.unbonding_ns, 4), 0);
	CHECK_EQ(verify(f.db, &rep), 0);
	/* decisions are in the ledger */
	CHECK_EQ(ledger_has_cause(f.l, "param", "proposal:1"), 1);
	CHECK_EQ(ledger_has_cause(f.l, "tally", "proposal:2"), 1);
	CHECK_EQ(ledger_has_cause(f.l, "param", "proposal:2"), 0);
	fx_close(&f);
}

static void test_audit_recomputes(void)
{
	struct fx f;
	struct ledger_report rep;
	struct settle_escrow_req req = {.task = "ta",
					.renter = "r",
					.price_per_cpu_hour = ECON_UNIT,
					.max_cpu_ns = 3600 * S,
					.replicas = 2,
					.time_ns = S,
					.epoch = 1};
	struct econ_params wrong;
	struct settle_usage_req u = {.price = SETTLE_PRICE_ESCROW,
				     .task = "ta",
				     .node = "n1",
				     .node_seq = 1,
				     .provider = "n1",
				     .cpu_ns = 1200 * S,
				     .time_ns = 2 * S,
				     .epoch = 1};
	struct merkle_tree *tree = NULL;
	uint64_t size;
	uint8_t root[32];

	fx_open(&f, "audit.db");
	CHECK_EQ(settle_mint(f.l, "r", 10 * ECON_UNIT, "f", 1, 0), 0);
	CHECK_EQ(settle_escrow_open(f.l, &req, NULL), 0);
	tu_hash("a", 1, u.record_hash);
	CHECK_EQ(settle_usage(f.l, &P, &u, NULL), 0);
	CHECK_EQ(settle_epoch_close(f.l, &P, 1, 3 * S, NULL), 0);
	CHECK_EQ(verify(f.db, &rep), 0);
	/* the Merkle root the ledger keeps is the replay's */
	CHECK_EQ(merkle_new(&tree), 0);
	CHECK_EQ(ledger_verify_tree(f.db, NULL, NULL, tree, &rep), 0);
	CHECK_EQ(ledger_tree_head(f.l, &size, root), 0);
	CHECK_EQ(size, rep.entries);
	CHECK(memcmp(root, rep.root, 32) == 0);
	merkle_free(tree);
	/* a coordinator that charges a fee other than the one in force is caught */
	wrong = P;
	wrong.fee_bps = 900;
	u.node = u.provider = "n2";
	u.node_seq = 2;
	tu_hash("a", 2, u.record_hash);
	CHECK_EQ(settle_usage(f.l, &wrong, &u, NULL), 0);
	CHECK_EQ(ledger_verify(f.db, NULL, NULL, &rep), 0); /* sound as bookkeeping */
	CHECK_EQ(verify(f.db, &rep), -EBADMSG);		    /* but not by the rules */
	CHECK(strstr(rep.reason, "fee") != NULL);
	CHECK_EQ(ledger_tree_head(f.l, &size, root), 0);
	CHECK_EQ(size, rep.bad_seq);
	fx_close(&f);
	/* rewards that do not follow the formula are caught */
	fx_open(&f, "audit2.db");
	CHECK_EQ(settle_mint(f.l, "r", 10 * ECON_UNIT, "f", 1, 0), 0);
	CHECK_EQ(settle_escrow_open(f.l, &req, NULL), 0);
	u.node = u.provider = "n1";
	CHECK_EQ(settle_usage(f.l, &P, &u, NULL), 0);
	wrong = P;
	wrong.renewable_bonus_ppm = 0;
	wrong.reward_pool = P.reward_pool + 1;
	CHECK_EQ(settle_epoch_close(f.l, &wrong, 1, 3 * S, NULL), 0);
	CHECK_EQ(verify(f.db, &rep), -EBADMSG);
	CHECK(strstr(rep.reason, "reward") != NULL);
	fx_close(&f);
}

/* A node's signed final record for task, as the agent's meter log writes it. */
static int signed_record(EVP_PKEY *key, const char *task, uint64_t seq, uint64_t cpu_ns,
			 char **ret_line, size_t *ret_len)
{
	struct usage_record r;
	struct key_signer *s = NULL;
	int ret;

	memset(&r, 0, sizeof(r));
	r.version = RECORD_VERSION;
	r.type = RECORD_FINAL;
	if (key_node_id(key, r.node) < 0)
		return -1;
	r.seq = seq;
	r.time_ns = 2000 * S;
	snprintf(r.task, sizeof(r.task), "%s", task);
	snprintf(r.renter, sizeof(r.renter), "r");
	memset(r.image, 0x11, sizeof(r.image));
	r.cgroup_id = 77;
	r.start_ns = 1000 * S;
	r.end_ns = 2000 * S;
	r.wall_ns = 1000 * S;
	r.cpu_ns = cpu_ns;
	r.cpu_kernel_ns = cpu_ns;
	r.limits.cpu_period_us = 100000;
	r.limits.cpu_quota_us = 100000;
	r.exit_kind = RECORD_EXIT_EXITED;
	if (key_signer_new(key, &s) < 0)
		return -1;
	ret = record_sign(&r, s, ret_line, ret_len);
	key_signer_free(s);
	return ret;
}

static void test_signed_records(void)
{
	struct fx f;
	struct ledger_report rep;
	struct settle_audit *au = NULL;
	struct settle_escrow_req req = {.task = "ts",
					.renter = "r",
					.price_per_cpu_hour = ECON_UNIT,
					.max_cpu_ns = 3600 * S,
					.replicas = 3,
					.time_ns = S,
					.epoch = 1};
	EVP_PKEY *node_key = NULL, *other = NULL;
	char node_id[NODE_ID_HEX_LEN + 1], *line = NULL, *p;
	uint8_t raw[KEY_PUB_LEN], other_raw[KEY_PUB_LEN];
	struct settle_usage_req u;
	uint64_t settled, signed_ok;
	size_t len;

	fx_open(&f, "signed.db");
	CHECK_EQ(key_generate(&node_key), 0);
	CHECK_EQ(key_generate(&other), 0);
	CHECK_EQ(key_node_id(node_key, node_id), 0);
	CHECK_EQ(key_raw_public(node_key, raw), 0);
	CHECK_EQ(key_raw_public(other, other_raw), 0);
	CHECK_EQ(settle_mint(f.l, "r", 10 * ECON_UNIT, "f", 1, 0), 0);
	CHECK_EQ(settle_escrow_open(f.l, &req, NULL), 0);
	/* the genuine record: the charge points to it and its signature verifies */
	CHECK_EQ(signed_record(node_key, "ts", 0, 600 * S, &line, &len), 0);
	u = (struct settle_usage_req){.price = SETTLE_PRICE_ESCROW,
				      .task = "ts",
				      .node = node_id,
				      .node_seq = 0,
				      .provider = "owner",
				      .cpu_ns = 600 * S,
				      .time_ns = 2 * S,
				      .epoch = 1,
				      .record_line = line,
				      .record_len = len,
				      .node_pubkey = raw};
	sha256(line, len, u.record_hash);
	u.record_hash[0] ^= 1; /* a hash that is not the line's is refused at once */
	CHECK_EQ(settle_usage(f.l, &P, &u, NULL), -EINVAL);
	u.record_hash[0] ^= 1;
	CHECK_EQ(settle_usage(f.l, &P, &u, NULL), 0);
	CHECK_EQ(settle_audit_new(&au), 0);
	settle_audit_require_records(au, true);
	CHECK_EQ(ledger_verify(f.db, settle_audit_visit, au, &rep), 0);
	settle_audit_records(au, &settled, &signed_ok);
	CHECK_EQ(settled, 1);
	CHECK_EQ(signed_ok, 1);
	au = settle_audit_free(au);
	/* altered cpu ns: the coordinator recorded a line the node never signed */
	p = strstr(line, "\"cpu_ns\":600");
	CHECK(p != NULL);
	p[9] = '9';
	u.node_seq = 1;
	{
		char *q = strstr(line, "\"seq\":0");

		CHECK(q != NULL);
		q[6] = '1';
	}
	u.cpu_ns = 900 * S;
	sha256(line, len, u.record_hash);
	CHECK_EQ(settle_usage(f.l, &P, &u, NULL), 0);
	CHECK_EQ(settle_audit_new(&au), 0);
	CHECK_EQ(ledger_verify(f.db, settle_audit_visit, au, &rep), -EBADMSG);
	CHECK(strstr(rep.reason, "signature does not verify") != NULL);
	au = settle_audit_free(au);
	free(line);
	fx_close(&f);
	/* another node's key under this node's id */
	fx_open(&f, "signed2.db");
	CHECK_EQ(settle_mint(f.l, "r", 10 * ECON_UNIT, "f", 1, 0), 0);
	CHECK_EQ(settle_escrow_open(f.l, &req, NULL), 0);
	CHECK_EQ(signed_record(node_key, "ts", 0, 600 * S, &line, &len), 0);
	u = (struct settle_usage_req){.price = SETTLE_PRICE_ESCROW,
				      .task = "ts",
				      .node = node_id,
				      .node_seq = 0,
				      .provider = "owner",
				      .cpu_ns = 600 * S,
				      .time_ns = 2 * S,
				      .epoch = 1,
				      .record_line = line,
				      .record_len = len,
				      .node_pubkey = other_raw};
	sha256(line, len, u.record_hash);
	CHECK_EQ(settle_usage(f.l, &P, &u, NULL), 0);
	CHECK_EQ(settle_audit_new(&au), 0);
	CHECK_EQ(ledger_verify(f.db, settle_audit_visit, au, &rep), -EBADMSG);
	CHECK(strstr(rep.reason, "another node") != NULL);
	au = settle_audit_free(au);
	free(line);
	/* strict audit: a charge without its record fails */
	u = (struct settle_usage_req){.price = SETTLE_PRICE_ESCROW,
				      .task = "ts",
				      .node = "n9",
				      .node_seq = 0,
				      .provider = "o",
				      .cpu_ns = S,
				      .time_ns = 2 * S,
				      .epoch = 1};
	tu_hash("bare", 0, u.record_hash);
	fx_close(&f);
	fx_open(&f, "signed3.db");
	CHECK_EQ(settle_mint(f.l, "r", 10 * ECON_UNIT, "f", 1, 0), 0);
	CHECK_EQ(settle_escrow_open(f.l, &req, NULL), 0);
	CHECK_EQ(settle_usage(f.l, &P, &u, NULL), 0);
	CHECK_EQ(settle_audit_new(&au), 0);
	CHECK_EQ(ledger_verify(f.db, settle_audit_visit, au, &rep), 0);
	settle_audit_require_records(au, true);
	au = settle_audit_free(au);
	CHECK_EQ(settle_audit_new(&au), 0);
	settle_audit_require_records(au, true);
	CHECK_EQ(ledger_verify(f.db, settle_audit_visit, au, &rep), -EBADMSG);
	CHECK(strstr(rep.reason, "without its agent-signed record") != NULL);
	settle_audit_free(au);
	EVP_PKEY_free(node_key);
	EVP_PKEY_free(other);
	fx_close(&f);
}

int main(void)
{
	static const struct test_case cases[] = {
		TEST(test_double_entry),      TEST(test_tamper),
		TEST(test_escrow_and_replay), TEST(test_forged_record),
		TEST(test_lying_replica),     TEST(test_epoch_rewards),
		TEST(test_governance),	      TEST(test_audit_recomputes),
		TEST(test_signed_records),    {NULL, NULL},
	};
	int r = harness_run(cases);

	tu_cleanup();
	return r;
}
