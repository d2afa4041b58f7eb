/* econ.c -- the network's economics as pure integer functions (see docs/economics.md for every formula). */
#include "econ.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

typedef unsigned __int128 u128;

void econ_params_default(struct econ_params *p)
{
	*p = (struct econ_params){
		.fee_bps = 500,
		.fee_maint_bps = 3000,
		.fee_dev_bps = 3000,
		.reward_pool = 1000 * ECON_UNIT,
		.epoch_ns = 3600LL * 1000000000LL,
		.renewable_bonus_ppm = 200000,
		.price_min_mult_ppm = 500000,
		.price_max_mult_ppm = 3000000,
		.target_util_ppm = 800000,
		.price_smooth_ppm = 500000,
		.pow_min_bits = 8,
		.pow_max_bits = 20,
		.replication_n = 10,
		.trust_min_streak = 10,
		.slash_bps = 1000,
		.rating_prior_milli = 3000,
		.rating_prior_weight = 5,
		.cpu_slack_ppm = 10000,
		.meter_tolerance_ppm = 10000,
		.meter_tolerance_ns = 10000000,
		.gov_quorum_bps = 3000,
		.gov_threshold_bps = 5000,
		.gov_voting_ns = 24LL * 3600 * 1000000000LL,
		.gov_min_stake = 100 * ECON_UNIT,
		.unbonding_ns = 7LL * 24 * 3600 * 1000000000LL,
	};
}

struct param_desc {
	const char *name;
	size_t off;
	int64_t min, max;
};

#define P(f, lo, hi)                                                                               \
	{                                                                                          \
#f, offsetof(struct econ_params, f), lo, hi                                        \
	}
static const struct param_desc params[] = {
	P(fee_bps, 0, ECON_BPS),
	P(fee_maint_bps, 0, ECON_BPS),
	P(fee_dev_bps, 0, ECON_BPS),
	P(reward_pool, 0, ECON_MAX_AMOUNT / 1024),
	P(epoch_ns, 1000000000LL, 366LL * 24 * 3600 * 1000000000LL),
	P(renewable_bonus_ppm, 0, 4 * ECON_PPM),
	P(price_min_mult_ppm, 1000, 100 * ECON_PPM),
	P(price_max_mult_ppm, 1000, 100 * ECON_PPM),
	P(target_util_ppm, 1000, ECON_PPM),
	P(price_smooth_ppm, 1, ECON_PPM),
	P(pow_min_bits, 0, 40),
	P(pow_max_bits, 0, 40),
	P(replication_n, 1, 1000000),
	P(trust_min_streak, 0, 1000000),
	P(slash_bps, 0, ECON_BPS),
	P(rating_prior_milli, 1000, 5000),
	P(rating_prior_weight, 0, 1000000),
	P(cpu_slack_ppm, 0, ECON_PPM),
	P(meter_tolerance_ppm, 0, ECON_PPM),
	P(meter_tolerance_ns, 0, 60LL * 1000000000LL),
	P(gov_quorum_bps, 0, ECON_BPS),
	P(gov_threshold_bps, 0, ECON_BPS),
	P(gov_voting_ns, 1000000LL, 366LL * 24 * 3600 * 1000000000LL),
	P(gov_min_stake, 0, ECON_MAX_AMOUNT),
	P(unbonding_ns, 0, 366LL * 24 * 3600 * 1000000000LL),
};
#undef P
_Static_assert(sizeof(params) / sizeof(params[0]) == sizeof(struct econ_params) / sizeof(int64_t),
	       "every parameter has a descriptor");

static int64_t *field(struct econ_params *p, const struct param_desc *d)
{
	return (int64_t *)((char *)p + d->off);
}

static const struct param_desc *param_find(const char *name)
{
	for (size_t i = 0; i < sizeof(params) / sizeof(params[0]); i++)
		if (strcmp(params[i].name, name) == 0)
			return &params[i];
	return NULL;
}

size_t econ_param_count(void)
{
	return sizeof(params) / sizeof(params[0]);
}

const char *econ_param_name(size_t i)
{
	return i < econ_param_count() ? params[i].name : NULL;
}

int econ_params_validate(const struct econ_params *p, const char **ret_reason)
{
	const char *why = NULL;

	for (size_t i = 0; i < econ_param_count() && !why; i++) {
		int64_t v = *field((struct econ_params *)p, &params[i]);

		if (v < params[i].min || v > params[i].max)
			why = params[i].name;
	}
	if (!why && p->fee_maint_bps + p->fee_dev_bps > ECON_BPS)
		why = "fee_maint_bps + fee_dev_bps exceeds 10000";
	if (!why && p->price_min_mult_ppm > p->price_max_mult_ppm)
		why = "price_min_mult_ppm exceeds price_max_mult_ppm";
	if (!why && p->pow_min_bits > p->pow_max_bits)
		why = "pow_min_bits exceeds pow_max_bits";
	if (why) {
		if (ret_reason)
			*ret_reason = why;
		return -EINVAL;
	}
	return 0;
}

int econ_param_get(const struct econ_params *p, const char *name, int64_t *ret)
{
	const struct param_desc *d = param_find(name);

	if (!d)
		return -ENOENT;
	*ret = *field((struct econ_params *)p, d);
	return 0;
}

int econ_param_set_field(struct econ_params *p, const char *name, int64_t value)
{
	const struct param_desc *d = param_find(name);

	if (!d)
		return -ENOENT;
	if (value < d->min || value > d->max)
		return -ERANGE;
	*field(p, d) = value;
	return 0;
}

int econ_param_set(struct econ_params *p, const char *name, int64_t value)
{
	const struct param_desc *d = param_find(name);
	struct econ_params n;

	if (!d)
		return -ENOENT;
	if (value < d->min || value > d->max)
		return -ERANGE;
	n = *p;
	*field(&n, d) = value;
	if (econ_params_validate(&n, NULL) < 0)
		return -EINVAL;
	*p = n;
	return 0;
}

/* ---- price ---- */

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

int64_t econ_demand_mult_raw(const struct econ_params *p, uint64_t demand_millicores,
			     uint64_t supply_millicores)
{
	u128 mult;

	if (demand_millicores == 0)
		return p->price_min_mult_ppm;
	if (supply_millicores == 0)
		return p->price_max_mult_ppm;
	/* u = d / s; mult = u / target = d x 10^6 x 10^6 / (s x target) */
	mult = (u128)demand_millicores * ECON_PPM * ECON_PPM /
	       ((u128)supply_millicores * (uint64_t)p->target_util_ppm);
	if (mult > (u128)p->price_max_mult_ppm)
		return p->price_max_mult_ppm;
	return clamp64((int64_t)mult, p->price_min_mult_ppm, p->price_max_mult_ppm);
}

int64_t econ_demand_mult_smooth(const struct econ_params *p, int64_t prev_mult_ppm,
				int64_t raw_mult_ppm)
{
	__int128 d = (__int128)(raw_mult_ppm - prev_mult_ppm) * p->price_smooth_ppm / ECON_PPM;

	return clamp64(prev_mult_ppm + (int64_t)d, p->price_min_mult_ppm, p->price_max_mult_ppm);
}

int econ_effective_price(int64_t ask_per_cpu_hour, int64_t mult_ppm, int64_t *ret_price)
{
	u128 v;

	if (ask_per_cpu_hour < 0 || ask_per_cpu_hour > ECON_MAX_AMOUNT || mult_ppm < 0)
		return -ERANGE;
	v = (u128)ask_per_cpu_hour * (uint64_t)mult_ppm / ECON_PPM;
	if (v > (u128)ECON_MAX_AMOUNT)
		return -ERANGE;
	*ret_price = (int64_t)v;
	return 0;
}

unsigned econ_pow_bits(const struct econ_params *p, int64_t mult_ppm)
{
	int64_t span = p->price_max_mult_ppm - p->price_min_mult_ppm;
	int64_t m = clamp64(mult_ppm, p->price_min_mult_ppm, p->price_max_mult_ppm);
	int64_t bits = p->pow_min_bits;

	if (span > 0)
		bits += (p->pow_max_bits - p->pow_min_bits) * (m - p->price_min_mult_ppm) / span;
	return (unsigned)bits;
}

/* ---- escrow, charge, fee ---- */

int econ_escrow_amount(int64_t max_cpu_ns, int64_t price_per_cpu_hour, unsigned replicas,
		       int64_t *ret_amount)
{
	u128 v;

	if (max_cpu_ns < 0 || max_cpu_ns > ECON_MAX_CPU_NS || price_per_cpu_hour < 0 ||
	    price_per_cpu_hour > ECON_MAX_AMOUNT || replicas == 0 || replicas > 64)
		return -ERANGE;
	v = ((u128)max_cpu_ns * (uint64_t)price_per_cpu_hour + ECON_NS_PER_HOUR - 1) /
	    ECON_NS_PER_HOUR;
	v *= replicas;
	if (v > (u128)ECON_MAX_AMOUNT)
		return -ERANGE;
	*ret_amount = (int64_t)v;
	return 0;
}

int econ_charge(int64_t cpu_ns, int64_t max_cpu_ns, int64_t price_per_cpu_hour, int64_t *ret_charge)
{
	int64_t billed;

	if (cpu_ns < 0 || max_cpu_ns < 0 || max_cpu_ns > ECON_MAX_CPU_NS ||
	    price_per_cpu_hour < 0 || price_per_cpu_hour > ECON_MAX_AMOUNT)
		return -ERANGE;
	billed = cpu_ns < max_cpu_ns ? cpu_ns : max_cpu_ns;
	*ret_charge = (int64_t)((u128)billed * (uint64_t)price_per_cpu_hour / ECON_NS_PER_HOUR);
	return 0;
}

int econ_fee_split(const struct econ_params *p, int64_t charge, struct econ_fee_split *ret)
{
	int64_t fee;

	if (charge < 0 || charge > ECON_MAX_AMOUNT)
		return -ERANGE;
	fee = (int64_t)((u128)charge * (uint64_t)p->fee_bps / ECON_BPS);
	ret->provider = charge - fee;
	ret->maintenance = (int64_t)((u128)fee * (uint64_t)p->fee_maint_bps / ECON_BPS);
	ret->development = (int64_t)((u128)fee * (uint64_t)p->fee_dev_bps / ECON_BPS);
	ret->staking = fee - ret->maintenance - ret->development;
	return 0;
}

/* ---- rewards ---- */

int64_t econ_renewable_mult(const struct econ_params *p, int64_t renewable_ppm)
{
	int64_t r = clamp64(renewable_ppm, 0, ECON_PPM);

	return ECON_PPM + (int64_t)((__int128)p->renewable_bonus_ppm * r / ECON_PPM);
}

int econ_rewards(int64_t pool, const struct econ_params *p, struct econ_contrib *c, size_t n,
		 int64_t *ret_remainder)
{
	u128 total = 0;
	int64_t paid = 0;

	if (pool < 0 || pool > ECON_MAX_AMOUNT)
		return -ERANGE;
	for (size_t i = 0; i < n; i++) {
		if (c[i].cpu_ns < 0 || c[i].cpu_ns > ECON_MAX_CPU_NS || c[i].renewable_ppm < 0 ||
		    c[i].renewable_ppm > ECON_PPM)
			return -ERANGE;
		/* weight w = P x m (ppm) <= 2^56 x 5 x 2^20 < 2^79: kept in 128 bits */
		total += (u128)c[i].cpu_ns * (uint64_t)econ_renewable_mult(p, c[i].renewable_ppm);
	}
	for (size_t i = 0; i < n; i++) {
		u128 w = (u128)c[i].cpu_ns * (uint64_t)econ_renewable_mult(p, c[i].renewable_ppm);

		/* T x w < 2^62 x 2^79 overflows 128 bits; divide w and total by a common
		 * power of two first when needed (exact for the ratio up to rounding down) */
		if (total == 0) {
			c[i].reward = 0;
			continue;
		}
		u128 tw = total, ww = w;
		while (tw >> 64) {
			tw >>= 1;
			ww >>= 1;
		}
		c[i].reward = (int64_t)((u128)(uint64_t)pool * ww / tw);
		paid += c[i].reward;
	}
	if (paid > pool)
		return -ERANGE; /* cannot happen: each share rounds down */
	*ret_remainder = pool - paid;
	return 0;
}

int econ_pro_rata(int64_t amount, const int64_t *weights, int64_t *ret_shares, size_t n,
		  int64_t *ret_remainder)
{
	u128 total = 0;
	int64_t paid = 0;

	if (amount < 0 || amount > ECON_MAX_AMOUNT)
		return -ERANGE;
	for (size_t i = 0; i < n; i++) {
		if (weights[i] < 0)
			return -ERANGE;
		total += (uint64_t)weights[i];
	}
	for (size_t i = 0; i < n; i++) {
		u128 tw = total, ww = (uint64_t)weights[i];

		if (total == 0) {
			ret_shares[i] = 0;
			continue;
		}
		while (tw >> 64) {
			tw >>= 1;
			ww >>= 1;
		}
		ret_shares[i] = (int64_t)((u128)(uint64_t)amount * ww / tw);
		paid += ret_shares[i];
	}
	*ret_remainder = amount - paid;
	return 0;
}

/* ---- ratings ---- */

int64_t econ_rating_bayes(const struct econ_params *p, uint64_t n_ratings, uint64_t sum_stars)
{
	u128 num = (u128)(uint64_t)p->rating_prior_weight * (uint64_t)p->rating_prior_milli +
		   (u128)sum_stars * 1000;
	u128 den = (u128)(uint64_t)p->rating_prior_weight + n_ratings;

	if (den == 0)
		return p->rating_prior_milli;
	return (int64_t)((num + den / 2) / den);
}

/* ---- Proof of Compute ---- */

bool econ_should_replicate(const struct econ_params *p, const struct econ_trust *t, uint64_t rnd)
{
	if (t->valid_streak < (uint64_t)p->trust_min_streak || t->valid_total == 0)
		return true;
	return rnd % (uint64_t)p->replication_n == 0;
}

void econ_trust_valid(struct econ_trust *t)
{
	t->valid_total++;
	t->valid_streak++;
}

void econ_trust_invalid(struct econ_trust *t)
{
	t->invalid_total++;
	t->valid_streak = 0;
}

int64_t econ_reputation_ppm(const struct econ_trust *t)
{
	u128 num = (u128)t->valid_total + 1;
	u128 den = (u128)t->valid_total + 4 * (u128)t->invalid_total + 2;

	return (int64_t)(num * ECON_PPM / den);
}

int econ_quorum(const uint8_t (*digests)[32], size_t n, size_t *ret_winner)
{
	size_t best = 0, best_votes = 0, second_votes = 0;

	if (n == 0)
		return -EINVAL;
	if (n == 1) {
		*ret_winner = 0;
		return ECON_QUORUM_SINGLE;
	}
	for (size_t i = 0; i < n; i++) {
		size_t votes = 0;
		bool seen = false;

		for (size_t j = 0; j < i && !seen; j++)
			seen = memcmp(digests[i], digests[j], 32) == 0;
		if (seen)
			continue;
		for (size_t j = 0; j < n; j++)
			votes += memcmp(digests[i], digests[j], 32) == 0;
		if (votes > best_votes) {
			second_votes = best_votes;
			best_votes = votes;
			best = i;
		} else if (votes > second_votes) {
			second_votes = votes;
		}
	}
	/* a winner needs at least two agreeing replicas and strictly more than any rival */
	if (best_votes < 2 || best_votes == second_votes)
		return ECON_QUORUM_NEED_MORE;
	*ret_winner = best;
	return ECON_QUORUM_AGREED;
}

static bool over_ppm(int64_t value, int64_t base, int64_t slack_ppm, int64_t abs_ns)
{
	/* value > base x (1 + slack) + abs, computed exactly */
	__int128 lim = (__int128)base * (ECON_PPM + slack_ppm) + (__int128)abs_ns * ECON_PPM;

	return (__int128)value * ECON_PPM > lim;
}

enum econ_usage_fault econ_check_usage(const struct econ_params *p,
				       const struct econ_task_window *w, const struct econ_usage *u)
{
	int64_t wall, diff, tol;

	if (u->cpu_ns < 0 || u->kernel_cpu_ns < 0 || u->cpu_ns > ECON_MAX_CPU_NS ||
	    u->kernel_cpu_ns > ECON_MAX_CPU_NS || u->start_ns < 0 || u->end_ns < 0 ||
	    w->millicores <= 0 || w->clock_slack_ns < 0)
		return ECON_USAGE_NEGATIVE;
	if (u->end_ns < u->start_ns)
		return ECON_USAGE_WALL;
	if (u->start_ns < w->start_ns - w->clock_slack_ns ||
	    u->end_ns > w->end_ns + w->clock_slack_ns)
		return ECON_USAGE_WINDOW;
	wall = u->end_ns - u->start_ns;
	/* cpu <= cores x wall x (1 + slack): millicores x wall / 1000 */
	if ((__int128)u->cpu_ns * 1000 * ECON_PPM >
	    (__int128)w->millicores * wall * (ECON_PPM + p->cpu_slack_ppm))
		return ECON_USAGE_CPU_OVER_WALL;
	diff = u->cpu_ns > u->kernel_cpu_ns ? u->cpu_ns - u->kernel_cpu_ns
					    : u->kernel_cpu_ns - u->cpu_ns;
	tol = (int64_t)((__int128)u->kernel_cpu_ns * p->meter_tolerance_ppm / ECON_PPM);
	if (diff > tol + p->meter_tolerance_ns)
		return ECON_USAGE_METER_MISMATCH;
	if (w->max_cpu_ns > 0 &&
	    over_ppm(u->cpu_ns, w->max_cpu_ns, p->cpu_slack_ppm, p->meter_tolerance_ns))
		return ECON_USAGE_OVER_CAP;
	return ECON_USAGE_OK;
}

const char *econ_usage_fault_str(enum econ_usage_fault f)
{
	switch (f) {
	case ECON_USAGE_OK:
		return "ok";
	case ECON_USAGE_NEGATIVE:
		return "negative or out-of-range figure";
	case ECON_USAGE_WALL:
		return "ends before it starts";
	case ECON_USAGE_WINDOW:
		return "ran outside the task's window";
	case ECON_USAGE_CPU_OVER_WALL:
		return "cpu time exceeds cores x wall time";
	case ECON_USAGE_METER_MISMATCH:
		return "meter and kernel cpu figures disagree";
	case ECON_USAGE_OVER_CAP:
		return "cpu time exceeds the renter's cap";
	}
	return "unknown fault";
}

const char *econ_format_aicn(int64_t amount, char buf[ECON_AICN_STR])
{
	uint64_t a = amount < 0 ? -(uint64_t)amount : (uint64_t)amount;
	uint64_t whole = a / ECON_UNIT, frac = a % ECON_UNIT;
	int n = snprintf(buf, ECON_AICN_STR, "%s%" PRIu64, amount < 0 ? "-" : "", whole);

	if (frac) {
		snprintf(buf + n, ECON_AICN_STR - (size_t)n, ".%09" PRIu64, frac);
		for (char *e = buf + strlen(buf) - 1; *e == '0'; e--)
			*e = '\0';
	}
	return buf;
}
