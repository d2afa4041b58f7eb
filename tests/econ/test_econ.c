/* test_econ.c -- the pure economics: parameters, price, escrow, fees, rewards, ratings, replication, usage checks. */
#include "../../coordinator/econ.h"

#include "harness.h"

#include <errno.h>
#include <stdint.h>

static struct econ_params P;

static void setup(void)
{
	econ_params_default(&P);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void)
{
	/* splitmix64: deterministic, so a failure is reproducible */
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void test_params(void)
{
	int64_t v;
	const char *why = NULL;

	setup();
	CHECK_EQ(econ_params_validate(&P, &why), 0);
	CHECK_EQ(econ_param_get(&P, "fee_bps", &v), 0);
	CHECK_EQ(v, 500);
	CHECK_EQ(econ_param_set(&P, "fee_bps", 250), 0);
	CHECK_EQ(P.fee_bps, 250);
	CHECK_EQ(econ_param_set(&P, "fee_bps", 10001), -ERANGE);
	CHECK_EQ(econ_param_set(&P, "no_such", 1), -ENOENT);
	/* cross-field rule: maintenance + development shares <= 100 % */
	CHECK_EQ(econ_param_set(&P, "fee_maint_bps", 8000), -EINVAL);
	CHECK_EQ(P.fee_maint_bps, 3000);
	CHECK_EQ(econ_param_set(&P, "price_min_mult_ppm", 5000000), -EINVAL);
	for (size_t i = 0; i < econ_param_count(); i++)
		CHECK_EQ(econ_param_get(&P, econ_param_name(i), &v), 0);
	CHECK(econ_param_name(econ_param_count()) == NULL);
}

static void test_price(void)
{
	int64_t m, price;

	setup();
	/* the worked example of docs/economics.md: 60 cores demanded of 50 offered */
	m = econ_demand_mult_raw(&P, 60000, 50000);
	CHECK_EQ(m, 1500000);
	CHECK_EQ(econ_demand_mult_smooth(&P, 1000000, m), 1250000);
	CHECK_EQ(econ_effective_price(2 * ECON_UNIT, 1250000, &price), 0);
	CHECK_EQ(price, 2500000000LL);
	/* bounds */
	CHECK_EQ(econ_demand_mult_raw(&P, 0, 50000), P.price_min_mult_ppm);
	CHECK_EQ(econ_demand_mult_raw(&P, 1000, 0), P.price_max_mult_ppm);
	CHECK_EQ(econ_demand_mult_raw(&P, UINT64_MAX, 1), P.price_max_mult_ppm);
	CHECK_EQ(econ_demand_mult_raw(&P, 1, UINT64_MAX), P.price_min_mult_ppm);
	/* at the target utilisation the multiplier is exactly 1 */
	CHECK_EQ(econ_demand_mult_raw(&P, 40000, 50000), ECON_PPM);
	CHECK_EQ(econ_demand_mult_smooth(&P, 3000000, 500000), 1750000);
	CHECK_EQ(econ_effective_price(-1, ECON_PPM, &price), -ERANGE);
	CHECK_EQ(econ_effective_price(ECON_MAX_AMOUNT, 2 * ECON_PPM, &price), -ERANGE);
	/* smoothing converges and never leaves the bounds */
	m = ECON_PPM;
	for (int i = 0; i < 1000; i++) {
		m = econ_demand_mult_smooth(
			&P, m, econ_demand_mult_raw(&P, rnd() % 100000, rnd() % 100000));
		CHECK(m >= P.price_min_mult_ppm && m <= P.price_max_mult_ppm);
	}
	CHECK_EQ(econ_pow_bits(&P, P.price_min_mult_ppm), P.pow_min_bits);
	CHECK_EQ(econ_pow_bits(&P, P.price_max_mult_ppm), P.pow_max_bits);
	CHECK_EQ(econ_pow_bits(&P, 1750000), 14);
}

static void test_escrow_charge_fee(void)
{
	int64_t esc, ch;
	struct econ_fee_split s;

	setup();
	/* 0.5 CPU-hour at 2.5 AICN/h, 2 replicas = 2.5 AICN */
	CHECK_EQ(econ_escrow_amount(ECON_NS_PER_HOUR / 2, 2500000000LL, 2, &esc), 0);
	CHECK_EQ(esc, 2500000000LL);
	/* 1234.5 CPU-seconds at 2.5 AICN/h */
	CHECK_EQ(econ_charge(1234500000000LL, ECON_NS_PER_HOUR / 2, 2500000000LL, &ch), 0);
	CHECK_EQ(ch, 857291666LL);
	/* capped at the renter's maximum */
	CHECK_EQ(econ_charge(ECON_NS_PER_HOUR, ECON_NS_PER_HOUR / 2, 2500000000LL, &ch), 0);
	CHECK_EQ(ch, 1250000000LL);
	CHECK_EQ(econ_escrow_amount(1, 1, 1, &esc), 0);
	CHECK_EQ(esc, 1); /* escrow rounds up, charge rounds down: charge <= escrow always */
	CHECK_EQ(econ_escrow_amount(ECON_MAX_CPU_NS, ECON_MAX_AMOUNT, 64, &esc), -ERANGE);
	CHECK_EQ(econ_escrow_amount(1, 1, 0, &esc), -ERANGE);
	CHECK_EQ(econ_fee_split(&P, 857291666LL, &s), 0);
	CHECK_EQ(s.provider, 814427083LL);
	CHECK_EQ(s.maintenance, 12859374LL);
	CHECK_EQ(s.development, 12859374LL);
	CHECK_EQ(s.staking, 17145835LL);
	/* property: the four parts always sum to the charge */
	for (int i = 0; i < 10000; i++) {
		int64_t c = (int64_t)(rnd() % (uint64_t)ECON_MAX_AMOUNT);
		struct econ_params q = P;

		q.fee_bps = (int64_t)(rnd() % 10001);
		q.fee_maint_bps = (int64_t)(rnd() % 5001);
		q.fee_dev_bps = (int64_t)(rnd() % 5001);
		CHECK_EQ(econ_fee_split(&q, c, &s), 0);
		CHECK_EQ(s.provider + s.maintenance + s.development + s.staking, c);
		CHECK(s.provider >= 0 && s.maintenance >= 0 && s.development >= 0 &&
		      s.staking >= 0);
		/* charge never exceeds escrow for the same cap and price */
		int64_t cap = (int64_t)(rnd() % (uint64_t)ECON_MAX_CPU_NS);
		int64_t price = (int64_t)(rnd() % (1000 * (uint64_t)ECON_UNIT));
		CHECK_EQ(econ_escrow_amount(cap, price, 1, &esc), 0);
		CHECK_EQ(econ_charge((int64_t)(rnd() % (uint64_t)ECON_MAX_CPU_NS), cap, price, &ch),
			 0);
		CHECK(ch <= esc);
	}
}

static void test_rewards(void)
{
	struct econ_contrib c[3] = {
		{.cpu_ns = 10 * ECON_NS_PER_HOUR, .renewable_ppm = 0},
		{.cpu_ns = 10 * ECON_NS_PER_HOUR, .renewable_ppm = 1000000},
		{.cpu_ns = 5 * ECON_NS_PER_HOUR, .renewable_ppm = 500000},
	};
	int64_t rem;

	setup();
	/* worked example: weights 10 x 1.0, 10 x 1.2, 5 x 1.1 = 27.5; T = 1000 AICN */
	CHECK_EQ(econ_renewable_mult(&P, 500000), 1100000);
	CHECK_EQ(econ_rewards(1000 * ECON_UNIT, &P, c, 3, &rem), 0);
	CHECK_EQ(c[0].reward, 363636363636LL);
	CHECK_EQ(c[1].reward, 436363636363LL);
	CHECK_EQ(c[2].reward, 200000000000LL);
	CHECK_EQ(rem, 1);
	CHECK_EQ(c[0].reward + c[1].reward + c[2].reward + rem, 1000 * ECON_UNIT);
	/* nobody worked: everything to the treasury */
	c[0].cpu_ns = c[1].cpu_ns = c[2].cpu_ns = 0;
	CHECK_EQ(econ_rewards(77, &P, c, 3, &rem), 0);
	CHECK_EQ(rem, 77);
	c[0].cpu_ns = -1;
	CHECK_EQ(econ_rewards(77, &P, c, 3, &rem), -ERANGE);
	/* property: conservation with random contributions, including huge ones */
	for (int it = 0; it < 2000; it++) {
		struct econ_contrib r[17];
		size_t n = 1 + rnd() % 17;
		int64_t pool = (int64_t)(rnd() % (uint64_t)(ECON_MAX_AMOUNT / 1024)), sum = 0;

		P.renewable_bonus_ppm = (int64_t)(rnd() % (4 * ECON_PPM + 1));
		for (size_t i = 0; i < n; i++) {
			r[i].cpu_ns =
				(int64_t)(rnd() % (uint64_t)(it & 1 ? ECON_MAX_CPU_NS : 1000000));
			r[i].renewable_ppm = (int64_t)(rnd() % (ECON_PPM + 1));
		}
		CHECK_EQ(econ_rewards(pool, &P, r, n, &rem), 0);
		for (size_t i = 0; i < n; i++) {
			CHECK(r[i].reward >= 0);
			sum += r[i].reward;
		}
		CHECK(rem >= 0);
		CHECK_EQ(sum + rem, pool);
		/* rounding loses less than one unit per contributor (plus the shift error) */
		if (!(it & 1))
			CHECK((size_t)rem <= n);
	}
}

static void test_pro_rata(void)
{
	int64_t w[3] = {100, 200, 700}, s[3], rem;

	CHECK_EQ(econ_pro_rata(1001, w, s, 3, &rem), 0);
	CHECK_EQ(s[0], 100);
	CHECK_EQ(s[1], 200);
	CHECK_EQ(s[2], 700);
	CHECK_EQ(rem, 1);
	w[0] = w[1] = w[2] = 0;
	CHECK_EQ(econ_pro_rata(5, w, s, 3, &rem), 0);
	CHECK_EQ(rem, 5);
	w[0] = ECON_MAX_AMOUNT;
	w[1] = ECON_MAX_AMOUNT;
	w[2] = 3;
	CHECK_EQ(econ_pro_rata(ECON_MAX_AMOUNT, w, s, 3, &rem), 0);
	CHECK_EQ(s[0] + s[1] + s[2] + rem, ECON_MAX_AMOUNT);
	CHECK(s[0] >= ECON_MAX_AMOUNT / 2 - 1 && s[0] <= ECON_MAX_AMOUNT / 2);
}

static void test_rating(void)
{
	setup();
	/* no ratings: the prior; one 5-star rating moves it a little; many converge */
	CHECK_EQ(econ_rating_bayes(&P, 0, 0), 3000);
	CHECK_EQ(econ_rating_bayes(&P, 1, 5), 3333);
	CHECK_EQ(econ_rating_bayes(&P, 1000, 5000), 4990);
	CHECK_EQ(econ_rating_bayes(&P, 10, 10), 1667);
}

static void test_replication(void)
{
	struct econ_trust t = {0};
	int replicated = 0;

	setup();
	/* new node: always */
	for (int i = 0; i < 100; i++)
		CHECK(econ_should_replicate(&P, &t, rnd()));
	for (int i = 0; i < 10; i++)
		econ_trust_valid(&t);
	/* trusted: about 1 in replication_n */
	for (int i = 0; i < 100000; i++)
		replicated += econ_should_replicate(&P, &t, rnd());
	CHECK(replicated > 9000 && replicated < 11000);
	/* one wrong result: always again until the streak is rebuilt */
	econ_trust_invalid(&t);
	CHECK_EQ(t.valid_streak, 0);
	for (int i = 0; i < 100; i++)
		CHECK(econ_should_replicate(&P, &t, rnd()));
	CHECK(econ_reputation_ppm(&t) < econ_reputation_ppm(&(struct econ_trust){10, 10, 0}));
	CHECK_EQ(econ_reputation_ppm(&(struct econ_trust){0, 0, 0}), 500000);
}

static void test_quorum(void)
{
	uint8_t d[4][32] = {{0}};
	size_t w = 99;

	d[0][0] = 1;
	d[1][0] = 1;
	d[2][0] = 2;
	CHECK_EQ(econ_quorum(d, 0, &w), -EINVAL);
	CHECK_EQ(econ_quorum(d, 1, &w), ECON_QUORUM_SINGLE);
	CHECK_EQ(econ_quorum(d, 2, &w), ECON_QUORUM_AGREED);
	CHECK_EQ(w, 0);
	/* 1 vs 2: a tie, a third replica decides */
	CHECK_EQ(econ_quorum(d + 1, 2, &w), ECON_QUORUM_NEED_MORE);
	CHECK_EQ(econ_quorum(d, 3, &w), ECON_QUORUM_AGREED);
	CHECK_EQ(w, 0);
	/* the liar first */
	d[0][0] = 2;
	CHECK_EQ(econ_quorum(d, 3, &w), ECON_QUORUM_AGREED);
	CHECK_EQ(d[w][0], 2);
	/* all different */
	d[0][0] = 3;
	CHECK_EQ(econ_quorum(d, 3, &w), ECON_QUORUM_NEED_MORE);
	/* 2 vs 2 */
	d[0][0] = 1;
	d[3][0] = 2;
	CHECK_EQ(econ_quorum(d, 4, &w), ECON_QUORUM_NEED_MORE);
}

static void test_usage_checks(void)
{
	const int64_t s = 1000000000LL;
	struct econ_task_window w = {.millicores = 2000,
				     .max_cpu_ns = 3600 * s,
				     .start_ns = 1000 * s,
				     .end_ns = 2000 * s,
				     .clock_slack_ns = s};
	struct econ_usage u = {.cpu_ns = 100 * s,
			       .kernel_cpu_ns = 100 * s + 3000,
			       .start_ns = 1001 * s,
			       .end_ns = 1051 * s};

	setup();
	CHECK_EQ(econ_check_usage(&P, &w, &u), ECON_USAGE_OK);
	/* 2 cores x 50 s = 100 s; 1 % slack allows 101 s, not 101.1 s */
	u.cpu_ns = u.kernel_cpu_ns = 101 * s;
	CHECK_EQ(econ_check_usage(&P, &w, &u), ECON_USAGE_OK);
	u.cpu_ns = u.kernel_cpu_ns = 101 * s + 100000000;
	CHECK_EQ(econ_check_usage(&P, &w, &u), ECON_USAGE_CPU_OVER_WALL);
	u.cpu_ns = 100 * s;
	u.kernel_cpu_ns = 90 * s;
	CHECK_EQ(econ_check_usage(&P, &w, &u), ECON_USAGE_METER_MISMATCH);
	u.kernel_cpu_ns = 100 * s - 5000000; /* within 10 ms */
	CHECK_EQ(econ_check_usage(&P, &w, &u), ECON_USAGE_OK);
	u.kernel_cpu_ns = 100 * s;
	u.start_ns = 998 * s;
	CHECK_EQ(econ_check_usage(&P, &w, &u), ECON_USAGE_WINDOW);
	u.start_ns = 1001 * s;
	u.end_ns = 2002 * s;
	CHECK_EQ(econ_check_usage(&P, &w, &u), ECON_USAGE_WINDOW);
	u.end_ns = 1000 * s;
	CHECK_EQ(econ_check_usage(&P, &w, &u), ECON_USAGE_WALL);
	u.end_ns = 1051 * s;
	u.cpu_ns = -1;
	CHECK_EQ(econ_check_usage(&P, &w, &u), ECON_USAGE_NEGATIVE);
	u.cpu_ns = u.kernel_cpu_ns = 99 * s;
	w.max_cpu_ns = 10 * s;
	CHECK_EQ(econ_check_usage(&P, &w, &u), ECON_USAGE_OVER_CAP);
	CHECK_STREQ(econ_usage_fault_str(ECON_USAGE_OVER_CAP), "cpu time exceeds the renter's cap");
	/* no overflow with extreme figures */
	u = (struct econ_usage){INT64_MAX / 2, INT64_MAX / 2, 0, INT64_MAX};
	w = (struct econ_task_window){.millicores = INT64_MAX, .start_ns = 0, .end_ns = INT64_MAX};
	CHECK_EQ(econ_check_usage(&P, &w, &u), ECON_USAGE_NEGATIVE);
}

static void test_format_aicn(void)
{
	char b[ECON_AICN_STR];

	CHECK_STREQ(econ_format_aicn(15 * ECON_UNIT / 10, b), "1.5");
	CHECK_STREQ(econ_format_aicn(3 * ECON_UNIT, b), "3");
	CHECK_STREQ(econ_format_aicn(0, b), "0");
	CHECK_STREQ(econ_format_aicn(-1, b), "-0.000000001");
	CHECK_STREQ(econ_format_aicn(INT64_MIN, b), "-9223372036.854775808");
	CHECK_STREQ(econ_format_aicn(ECON_MAX_AMOUNT, b), "4611686018.427387904");
}

int main(void)
{
	static const struct test_case cases[] = {
		TEST(test_params),	TEST(test_price),    TEST(test_escrow_charge_fee),
		TEST(test_rewards),	TEST(test_pro_rata), TEST(test_rating),
		TEST(test_replication), TEST(test_quorum),   TEST(test_usage_checks),
		TEST(test_format_aicn), {NULL, NULL},
	};

	return harness_run(cases);
}
