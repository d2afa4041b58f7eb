/* econ.h -- the network's economics as pure integer functions: parameters, price, escrow, fees, rewards, ratings, replication, usage checks. */
#ifndef AICN_COORD_ECON_H
#define AICN_COORD_ECON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Money is int64 base units: 1 AICN = 10^9 base units (ECON_UNIT).  No floating
 * point touches money.  Fractions are fixed point: "_ppm" parts per million
 * (1.0 = 1000000), "_bps" basis points (1.0 = 10000).  Every division rounds
 * toward zero and says who gets the remainder, so sums are conserved exactly.
 *
 * Bounds that keep every intermediate product inside unsigned __int128:
 * amounts and prices are at most ECON_MAX_AMOUNT (2^62), CPU nanoseconds per
 * record or per node and epoch at most ECON_MAX_CPU_NS (2^56, about 2.3 CPU-years).
 */
#define ECON_UNIT 1000000000LL		 /* base units per AICN */
#define ECON_PPM 1000000LL		 /* 1.0 in parts per million */
#define ECON_BPS 10000LL		 /* 1.0 in basis points */
#define ECON_NS_PER_HOUR 3600000000000LL /* a CPU-hour in CPU nanoseconds */
#define ECON_MAX_AMOUNT (1LL << 62)
#define ECON_MAX_CPU_NS (1LL << 56)

/* Network parameters; governance changes them by name (econ_param_*). */
struct econ_params {
	int64_t fee_bps;       /* network fee on each payment */
	int64_t fee_maint_bps; /* share of the fee to fee:maintenance */
	int64_t fee_dev_bps;   /* share of the fee to fee:development; the rest to fee:staking */
	int64_t reward_pool;   /* T_CPT: base units minted and shared per epoch */
	int64_t epoch_ns;      /* epoch length */
	int64_t renewable_bonus_ppm; /* m = 1 + bonus x renewable fraction */
	int64_t price_min_mult_ppm;  /* lower bound of the demand multiplier */
	int64_t price_max_mult_ppm;  /* upper bound of the demand multiplier */
	int64_t target_util_ppm;     /* utilisation at which the multiplier is 1.0 */
	int64_t price_smooth_ppm;    /* weight of the new epoch's raw multiplier (EMA alpha) */
	int64_t pow_min_bits;	     /* proof-of-work difficulty at the lowest demand */
	int64_t pow_max_bits;	     /* proof-of-work difficulty at the highest demand */
	int64_t replication_n;	     /* trusted nodes are replicated with probability 1/N */
	int64_t trust_min_streak;    /* consecutive valid results before a node is trusted */
	int64_t slash_bps;	     /* share of a lying node's stake moved to the treasury */
	int64_t rating_prior_milli;  /* Bayesian prior mean, milli-stars (3000 = 3.0) */
	int64_t rating_prior_weight; /* Bayesian prior weight, in ratings */
	int64_t cpu_slack_ppm;	     /* cpu ns may exceed cores x wall by this much */
	int64_t meter_tolerance_ppm; /* allowed meter vs kernel disagreement, relative */
	int64_t meter_tolerance_ns;  /* ... and absolute (cpu.stat has microsecond steps) */
	int64_t gov_quorum_bps;	     /* votes cast / total stake needed for a valid vote */
	int64_t gov_threshold_bps;   /* yes / (yes + no) needed to pass */
	int64_t gov_voting_ns;	     /* voting period */
	int64_t gov_min_stake;	     /* stake needed to make a proposal */
	int64_t unbonding_ns;	     /* delay between unstake and funds being spendable */
};

/* An amount as decimal AICN for people ("1.5", "-0.000000001", "3"): no floating point. */
#define ECON_AICN_STR 32
const char *econ_format_aicn(int64_t amount, char buf[ECON_AICN_STR]);

/* The built-in defaults (genesis); documented in docs/economics.md. */
void econ_params_default(struct econ_params *p);
/* Check every field's range and the cross-field rules; -EINVAL and a static reason. */
int econ_params_validate(const struct econ_params *p, const char **ret_reason);

/*
 * The genesis parameters file (econ_file.c): INI lines "name = value" (optionally
 * under [econ]) or one JSON object of integers, over the defaults, validated as a
 * whole.  -EINVAL / -ENOENT / -ERANGE with a one-line reason in err.
 */
#define ECON_PARAMS_TEXT_MAX (64 << 10)
int econ_params_parse(const char *buf, size_t len, struct econ_params *ret, char *err,
		      size_t errlen);

/* Parameters by name, for governance and configuration. */
size_t econ_param_count(void);
const char *econ_param_name(size_t i);
/* -ENOENT for an unknown name. */
int econ_param_get(const struct econ_params *p, const char *name, int64_t *ret);
/* Set one field; -ENOENT unknown, -ERANGE outside the field's bounds, -EINVAL if the
 * whole set would be inconsistent (p is left unchanged then). */
int econ_param_set(struct econ_params *p, const char *name, int64_t value);
/* Set one field checking only its own bounds (loading a set that was valid as a whole). */
int econ_param_set_field(struct econ_params *p, const char *name, int64_t value);

/* ---- dynamic price (whitepaper 5.2) ---- */

/*
 * Raw demand multiplier: utilisation u = demand / supply (cores queued plus running
 * over cores offered), multiplier = u / target_util, bounded to [min, max].  No supply
 * with demand gives the maximum; no demand gives the minimum.
 */
int64_t econ_demand_mult_raw(const struct econ_params *p, uint64_t demand_millicores,
			     uint64_t supply_millicores);
/* Per-epoch smoothing: prev + alpha x (raw - prev), bounded. */
int64_t econ_demand_mult_smooth(const struct econ_params *p, int64_t prev_mult_ppm,
				int64_t raw_mult_ppm);
/* Effective price per CPU-hour = ask x multiplier (rounded down); -ERANGE beyond bounds. */
int econ_effective_price(int64_t ask_per_cpu_hour, int64_t mult_ppm, int64_t *ret_price);
/* Proof-of-work difficulty for an epoch: linear in the multiplier between the bounds. */
unsigned econ_pow_bits(const struct econ_params *p, int64_t mult_ppm);

/* ---- escrow, charge, fee ---- */

/* Escrow for a task: ceil(max cpu ns x price / 1 h) x replicas; -ERANGE on overflow. */
int econ_escrow_amount(int64_t max_cpu_ns, int64_t price_per_cpu_hour, unsigned replicas,
		       int64_t *ret_amount);
/* Charge of one validated record: floor(min(cpu_ns, max_cpu_ns) x price / 1 h). */
int econ_charge(int64_t cpu_ns, int64_t max_cpu_ns, int64_t price_per_cpu_hour,
		int64_t *ret_charge);

struct econ_fee_split {
	int64_t provider;    /* charge - fee */
	int64_t maintenance; /* fee x fee_maint_bps, rounded down */
	int64_t development; /* fee x fee_dev_bps, rounded down */
	int64_t staking;     /* fee - maintenance - development (gets the rounding) */
};
/* Split a charge; the four parts always sum to the charge exactly. */
int econ_fee_split(const struct econ_params *p, int64_t charge, struct econ_fee_split *ret);

/* ---- epoch rewards (5.1, 5.5) ---- */

struct econ_contrib {
	int64_t cpu_ns;	       /* P: validated CPU time in the epoch */
	int64_t renewable_ppm; /* share of renewable energy, 0..1000000 */
	int64_t reward;	       /* out: R */
};
/* m = 1 + bonus x renewable fraction, in ppm. */
int64_t econ_renewable_mult(const struct econ_params *p, int64_t renewable_ppm);
/*
 * R_i = floor(T x P_i m_i / sum(P m)); the remainder (T - sum R_i) goes to
 * *ret_remainder (the treasury), so sum R_i + remainder = T exactly.  With no
 * work at all, everything is remainder.  -ERANGE beyond the documented bounds.
 */
int econ_rewards(int64_t pool, const struct econ_params *p, struct econ_contrib *c, size_t n,
		 int64_t *ret_remainder);
/* Pro-rata share of amount by weights (stakers): floor(amount x w_i / sum w); remainder out. */
int econ_pro_rata(int64_t amount, const int64_t *weights, int64_t *ret_shares, size_t n,
		  int64_t *ret_remainder);

/* ---- ratings ---- */

/* Bayesian average in milli-stars: (C x prior + sum) / (C + n), ratings 1..5. */
int64_t econ_rating_bayes(const struct econ_params *p, uint64_t n_ratings, uint64_t sum_stars);

/* ---- Proof of Compute: adaptive replication, quorum, physical checks ---- */

struct econ_trust {
	uint64_t valid_total;	/* results validated */
	uint64_t valid_streak;	/* consecutive validated results since the last error */
	uint64_t invalid_total; /* results refused or outvoted */
};
/* BOINC-style adaptive replication: always for new or recently wrong nodes, else when
 * rnd % replication_n == 0 (probability 1/N with a uniform rnd). */
bool econ_should_replicate(const struct econ_params *p, const struct econ_trust *t, uint64_t rnd);
void econ_trust_valid(struct econ_trust *t);
void econ_trust_invalid(struct econ_trust *t);
/* Reputation in ppm: Laplace-smoothed valid / (valid + 4 x invalid). */
int64_t econ_reputation_ppm(const struct econ_trust *t);

enum econ_quorum_state {
	ECON_QUORUM_AGREED = 0,	   /* a strict majority (at least 2) agree */
	ECON_QUORUM_NEED_MORE = 1, /* no majority yet: start another replica */
	ECON_QUORUM_SINGLE = 2,	   /* one result only (unreplicated task) */
};
/*
 * Compare n result digests: on AGREED *ret_winner is the index of one agreeing
 * replica and every replica whose digest differs from it lost.  A tie (1 vs 1,
 * 2 vs 2) or all different gives NEED_MORE.  -EINVAL for n == 0.
 */
int econ_quorum(const uint8_t (*digests)[32], size_t n, size_t *ret_winner);

/* What the task allowed, and what the agent's signed record claims. */
struct econ_task_window {
	int64_t millicores;	/* cores granted x 1000 */
	int64_t max_cpu_ns;	/* the renter's cap */
	int64_t start_ns;	/* dispatched at (coordinator clock, realtime) */
	int64_t end_ns;		/* record received at (coordinator clock, realtime) */
	int64_t clock_slack_ns; /* tolerated clock difference between node and coordinator */
};
struct econ_usage {
	int64_t cpu_ns;	       /* eBPF meter */
	int64_t kernel_cpu_ns; /* cgroup cpu.stat usage */
	int64_t start_ns;      /* node realtime at container start */
	int64_t end_ns;	       /* node realtime at container exit */
};
enum econ_usage_fault {
	ECON_USAGE_OK = 0,
	ECON_USAGE_NEGATIVE,	   /* a negative or out-of-bounds figure */
	ECON_USAGE_WALL,	   /* end before start */
	ECON_USAGE_WINDOW,	   /* ran outside the task's window */
	ECON_USAGE_CPU_OVER_WALL,  /* cpu > cores x wall x (1 + slack) */
	ECON_USAGE_METER_MISMATCH, /* meter and kernel disagree */
	ECON_USAGE_OVER_CAP,	   /* more cpu than the renter's cap allows (with slack) */
};
/* Physical possibility of a usage record; ECON_USAGE_OK or the first fault found. */
enum econ_usage_fault econ_check_usage(const struct econ_params *p,
				       const struct econ_task_window *w,
				       const struct econ_usage *u);
const char *econ_usage_fault_str(enum econ_usage_fault f);

#endif /* AICN_COORD_ECON_H */
