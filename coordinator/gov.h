/* gov.h -- governance on the ledger: stake and unbonding, parameter proposals, stake-weighted votes, automatic application. */
#ifndef AICN_COORD_GOV_H
#define AICN_COORD_GOV_H

#include "econ.h"
#include "ledger.h"

/*
 * Every step is a ledger entry: "stake" and "unstake" move tokens between owner,
 * stake:<owner> and unbond:<owner>; "release" pays unbonded tokens back after
 * unbonding_ns; "propose", "vote", "tally" and "param" record decisions (no postings).
 * The parameters in force are the built-in defaults overridden by every applied
 * "param" entry, in ledger order (ledger_params caches them).
 */

enum gov_state {
	GOV_OPEN = 0,
	GOV_PASSED = 1,	     /* applied */
	GOV_FAILED = 2,	     /* no quorum or not enough yes */
	GOV_NOT_APPLIED = 3, /* passed, but the value no longer fits the other parameters */
};

/* The parameters in force. */
int gov_params(struct ledger *l, struct econ_params *ret);

/* Lock amount of owner's tokens as stake (-ENOSPC without the funds). */
int gov_stake(struct ledger *l, const char *owner, int64_t amount, const char *cause,
	      int64_t time_ns, uint64_t epoch);
/*
 * Start unbonding amount of owner's stake; spendable after unbonding_ns (gov_release),
 * from *ret_release_ns (may be NULL).
 */
int gov_unstake(struct ledger *l, const char *owner, int64_t amount, const char *cause,
		int64_t time_ns, uint64_t epoch, int64_t *ret_release_ns);
/* Pay out every unbonding that is due at now_ns; returns how many. */
int gov_release(struct ledger *l, int64_t now_ns, uint64_t epoch);

/*
 * Propose param = value (valid now, checked by econ_param_set); the proposer needs
 * gov_min_stake staked.  Voting ends at time_ns + gov_voting_ns.  text (may be NULL,
 * at most GOV_TEXT_MAX bytes) is the proposer's explanation, kept in the entry.
 * -ENOENT unknown parameter, -ERANGE / -EINVAL bad value, -EPERM not enough stake.
 */
#define GOV_TEXT_MAX 1024
int gov_propose(struct ledger *l, const char *proposer, const char *param, int64_t value,
		const char *text, int64_t time_ns, uint64_t epoch, int64_t *ret_id);
/* One vote per staking account, weighted by its stake now; -EEXIST voted, -ESTALE closed,
 * -EPERM no stake, -ENOENT no such proposal. */
int gov_vote(struct ledger *l, int64_t proposal, const char *voter, bool yes, int64_t time_ns,
	     uint64_t epoch);
/*
 * Close every proposal whose period ended by now_ns: a vote counts with
 * min(stake when cast, stake now); quorum when votes x 10000 >= gov_quorum_bps x
 * total stake; passes when yes x 10000 > gov_threshold_bps x (yes + no); passed
 * proposals are applied at once.  Returns the number closed.
 */
int gov_tick(struct ledger *l, int64_t now_ns, uint64_t epoch);
int gov_proposal_state(struct ledger *l, int64_t proposal, enum gov_state *ret);

#endif /* AICN_COORD_GOV_H */
