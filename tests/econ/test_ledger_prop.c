/* test_ledger_prop.c -- property test: thousands of random settlement and governance operations; after each, balances sum to what was minted, nothing is negative, and replay agrees. */
#include "ledger_util.h"

#include "harness.h"

#include <errno.h>
#include <inttypes.h>

#define OPS 4000
#define OWNERS 8
#define MAX_TASKS 256

static const int64_t S = 1000000000LL;

static uint64_t rng = 0x853c49e6748fea9bULL;
static uint64_t rnd(void)
{
	uint64_t z = (rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static const char *owner(uint64_t i)
{
	static const char *const names[OWNERS] = {"ann", "bo",	"cy",  "di",
						  "ed",	 "flo", "gus", "hal"};

	return names[i % OWNERS];
}

static void test_random_ops(void)
{
	struct econ_params p;
	struct ledger_report rep;
	struct ledger *l = NULL;
	sqlite3 *db = tu_open("prop.db");
	int64_t minted = 0, now = 1, proposals = 0;
	int ok_ops[16] = {0}, tasks = 0, records = 0, replays_refused = 0;
	uint64_t epoch = 0;
	uint8_t last_hash[32] = {0};
	char last_node[16] = "ann";
	uint64_t last_seq = 0;

	CHECK_EQ(ledger_new(db, &l), 0);
	for (int op = 0; op < OPS; op++) {
		int kind = (int)(rnd() % 13), r = 0;
		char cause[64], task[32];
		long long total, mint_sum;

		CHECK_EQ(gov_params(l, &p), 0);
		now += (int64_t)(rnd() % (600 * (uint64_t)S));
		snprintf(cause, sizeof(cause), "op:%d", op);
		switch (kind) {
		case 0: { /* mint */
			int64_t a = 1 + (int64_t)(rnd() % (1000 * (uint64_t)ECON_UNIT));

			r = settle_mint(l, owner(rnd()), a, cause, now, epoch);
			if (r == 0)
				minted += a;
			break;
		}
		case 1: /* transfer, possibly more than the balance */
			r = settle_transfer(l, owner(rnd()), owner(rnd()),
					    1 + (int64_t)(rnd() % (500 * (uint64_t)ECON_UNIT)),
					    cause, now, epoch);
			break;
		case 2: { /* open an escrow */
			struct settle_escrow_req req = {
				.task = task,
				.renter = owner(rnd()),
				.price_per_cpu_hour = (int64_t)(rnd() % (10 * (uint64_t)ECON_UNIT)),
				.max_cpu_ns = (int64_t)(rnd() % (7200 * (uint64_t)S)),
				.replicas = 1 + (unsigned)(rnd() % 3),
				.time_ns = now,
				.epoch = epoch};

			if (tasks >= MAX_TASKS) {
				r = -ENOSPC;
				break;
			}
			snprintf(task, sizeof(task), "t%d", tasks);
			r = settle_escrow_open(l, &req, NULL);
			if (r == 0)
				tasks++;
			break;
		}
		case 3:
		case 4:
		case 5: { /* settle a record, sometimes a replayed one */
			struct settle_usage_req u = {
				.price = SETTLE_PRICE_ESCROW,
				.task = task,
				.node = last_node,
				.provider = last_node,
				.cpu_ns = (int64_t)(rnd() % (8000 * (uint64_t)S)),
				.renewable_ppm = (int64_t)(rnd() % 1000001),
				.time_ns = now,
				.epoch = epoch};
			bool replay = records > 0 && rnd() % 4 == 0;

			if (!tasks)
				break;
			snprintf(task, sizeof(task), "t%d", (int)(rnd() % (uint64_t)tasks));
			if (replay) {
				memcpy(u.record_hash, last_hash, 32);
				u.node_seq = last_seq;
			} else {
				snprintf(last_node, sizeof(last_node), "%s", owner(rnd()));
				tu_hash("prop", (uint64_t)op, u.record_hash);
				u.node_seq = (uint64_t)op;
			}
			r = settle_usage(l, &p, &u, NULL);
			if (replay) {
				CHECK(r < 0); /* a replay never pays */
				replays_refused++;
			} else if (r == 0) {
				records++;
				memcpy(last_hash, u.record_hash, 32);
				last_seq = u.node_seq;
			}
			break;
		}
		case 6: /* close an escrow */
			if (!tasks)
				break;
			snprintf(task, sizeof(task), "t%d", (int)(rnd() % (uint64_t)tasks));
			r = settle_escrow_close(l, task, now, epoch, NULL);
			break;
		case 7: /* stake */
			r = gov_stake(l, owner(rnd()),
				      1 + (int64_t)(rnd() % (300 * (uint64_t)ECON_UNIT)), cause,
				      now, epoch);
			break;
		case 8: /* unstake and release */
			r = gov_unstake(l, owner(rnd()),
					1 + (int64_t)(rnd() % (100 * (uint64_t)ECON_UNIT)), cause,
					now, epoch, NULL);
			if (r >= 0)
				r = gov_release(l, now, epoch);
			break;
		case 9: /* slash */
			r = settle_slash(l, &p, owner(rnd()), owner(rnd()), cause, now, epoch,
					 NULL);
			break;
		case 10: { /* epoch end */
			struct settle_epoch_result res;

			r = settle_epoch_close(l, &p, epoch, now, &res);
			if (r == 0)
				minted += p.reward_pool;
			if (r == 0)
				r = settle_epoch_price(l, &p, epoch + 1, rnd() % 100000,
						       rnd() % 100000, now, NULL, NULL);
			epoch++;
			break;
		}
		case 11: { /* governance */
			static const char *const names[] = {"fee_bps", "fee_maint_bps",
							    "reward_pool", "slash_bps"};
			int64_t id;

			r = gov_propose(l, owner(rnd()), names[rnd() % 4], (int64_t)(rnd() % 4000),
					NULL, now, epoch, &id);
			if (r == 0)
				proposals++;
			for (int v = 0; v < 4 && proposals; v++)
				gov_vote(l, 1 + (int64_t)(rnd() % (uint64_t)proposals),
					 owner(rnd()), rnd() % 3 != 0, now, epoch);
			break;
		}
		case 12:
			r = gov_tick(l, now, epoch);
			if (r >= 0)
				r = gov_release(l, now, epoch);
			break;
		}
		if (r >= 0)
			ok_ops[kind]++;
		/* the property, after every single operation */
		CHECK_EQ(tu_sums(db, &total, &mint_sum), 0);
		CHECK_EQ(mint_sum, minted);
		CHECK_EQ(total, minted);
		if (op % 1000 == 999) {
			CHECK_EQ(ledger_verify(db, NULL, NULL, &rep), 0);
			CHECK_EQ(rep.minted, minted);
			CHECK_EQ(rep.usage_records, (uint64_t)records);
		}
	}
	{
		struct settle_audit *au = NULL;
		int r;

		CHECK_EQ(settle_audit_new(&au), 0);
		r = ledger_verify(db, settle_audit_visit, au, &rep);
		if (r < 0)
			fprintf(stderr, "audit: %s\n", rep.reason);
		printf("audit recomputed %" PRIu64 " entries\n", settle_audit_checked(au));
		settle_audit_free(au);
		CHECK_EQ(r, 0);
	}
	printf("%" PRIu64 " entries, %d tasks, %d records settled, %d replays refused, %" PRId64
	       " proposals, minted %" PRId64 "\n",
	       rep.entries, tasks, records, replays_refused, proposals, minted);
	for (int k = 0; k < 13; k++)
		printf("op %d succeeded %d times\n", k, ok_ops[k]);
	/* every kind of operation happened, or the test proves less than it claims */
	for (int k = 0; k < 13; k++)
		CHECK(ok_ops[k] > 0);
	CHECK(records > 50);
	CHECK(replays_refused > 10);
	ledger_free(l);
	sqlite3_close(db);
}

int main(void)
{
	static const struct test_case cases[] = {
		TEST(test_random_ops),
		{NULL, NULL},
	};
	int r = harness_run(cases);

	tu_cleanup();
	return r;
}
