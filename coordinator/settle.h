/* settle.h -- settlement: minting, escrow, charging validated usage, refunds, slashing, epoch rewards, trust and ratings, all as ledger entries. */
#ifndef AICN_COORD_SETTLE_H
#define AICN_COORD_SETTLE_H

#include "econ.h"
#include "ledger.h"

/*
 * Accounts: owners (renters, providers, stakers) use their own names; the network's
 * are LEDGER_TREASURY and the three fee accounts; a task's escrow is escrow:<task>,
 * a stake stake:<owner>, stake being unbonded unbond:<owner>.
 *
 * Every function here is one atomic unit (see ledger_unit_begin): inside a batch it
 * joins the batch, outside one it commits on its own.  Entries are idempotent by
 * cause: repeating a call with the same cause returns -EEXIST and changes nothing.
 */

#define SETTLE_TASK_MAX 96	 /* bytes of a task id: the account name rules apply */
#define SETTLE_PRICE_ESCROW (-1) /* settle_usage_req.price: charge the escrow's price */

/* Operator's faucet / genesis: kind "mint", cause as given (a request id). */
int settle_mint(struct ledger *l, const char *account, int64_t amount, const char *cause,
		int64_t time_ns, uint64_t epoch);
/* A plain transfer between owner accounts: kind "transfer". */
int settle_transfer(struct ledger *l, const char *from, const char *to, int64_t amount,
		    const char *cause, int64_t time_ns, uint64_t epoch);

struct settle_escrow_req {
	const char *task;
	const char *renter;	    /* account charged */
	int64_t price_per_cpu_hour; /* the most per CPU-hour (max_price); charges may be lower */
	int64_t max_cpu_ns;	    /* the renter's cap per replica */
	unsigned replicas;	    /* replicas to pay for (1 + planned replicas) */
	int64_t time_ns;
	uint64_t epoch;
};
/* Move the maximum cost into escrow:<task> (kind "escrow", cause "task:<id>").
 * -ENOSPC when the renter cannot pay it (the submit must be refused). */
int settle_escrow_open(struct ledger *l, const struct settle_escrow_req *req, int64_t *ret_amount);

struct settle_usage_req {
	const char *task;
	uint8_t record_hash[32]; /* SHA-256 of the signed usage record */
	const char *node;	 /* node id that signed it */
	uint64_t node_seq;	 /* its sequence in the node's meter log */
	const char *provider;	 /* account paid (the node's owner) */
	int64_t cpu_ns;		 /* validated CPU ns (the meter's figure) */
	int64_t renewable_ppm;	 /* the node's declared renewable share */
	int64_t time_ns;
	uint64_t epoch;	   /* reward epoch the work counts in */
	int64_t price;	   /* agreed in the offer, per CPU-hour; charged min(price, escrow's);
			 * SETTLE_PRICE_ESCROW: the escrow's price (the renter's maximum) */
	const char *payer; /* NULL: escrow:<task>, one of the replicas the renter paid for;
			    * LEDGER_TREASURY: a validation replica the network added */
	/* Optional, and what makes the charge auditable offline: the agent-signed record
	 * line itself (record_hash must be its SHA-256) and the node's raw Ed25519 public
	 * key from its certificate (its SHA-256 is the node id).  Kept in the entry. */
	const char *record_line;
	size_t record_len;
	const uint8_t *node_pubkey; /* 32 bytes, required with record_line */
};
/*
 * Pay one validated usage record out of the task's escrow (or, for a network
 * validation replica, out of the treasury): charge = min(cpu, cap) x price, price
 * the agreed one capped by the escrow's; provider gets charge - fee, the fee goes to
 * the three fee accounts.  Treasury-paid records do not use up the escrow's replicas
 * (-ENOSPC when the treasury cannot pay: settle at price 0 then, the work still
 * counts toward the epoch reward).
 * Kind "settle", cause "record:<hex>"; the record hash and (node, seq) are each
 * paid once: a duplicate or replay returns -EEXIST and pays nothing.  The caller
 * has already checked the record (signature, econ_check_usage, PoW, quorum).
 * Counts cpu_ns toward the node's epoch contribution and its trust.
 * -ENOENT no such escrow, -ESTALE escrow closed, -ENOSPC more records than replicas.
 */
int settle_usage(struct ledger *l, const struct econ_params *p, const struct settle_usage_req *u,
		 struct econ_fee_split *ret_split);

/* Refund what is left in escrow to the renter (completion or cancel: only settled
 * usage was charged).  Kind "refund", cause "task:<id>"; later records get -ESTALE. */
int settle_escrow_close(struct ledger *l, const char *task, int64_t time_ns, uint64_t epoch,
			int64_t *ret_refund);

/* A refused record (forged, impossible, below difficulty, outvoted): recorded as a
 * decision (kind "refuse", cause "record:<hex>", no postings) and the node's trust falls. */
int settle_refuse(struct ledger *l, const char *node, const uint8_t record_hash[32],
		  const char *reason, int64_t time_ns, uint64_t epoch);
/* Slash slash_bps of stake:<node owner> to the treasury (kind "slash"); trust falls. */
int settle_slash(struct ledger *l, const struct econ_params *p, const char *node, const char *owner,
		 const char *cause, int64_t time_ns, uint64_t epoch, int64_t *ret_amount);

struct settle_epoch_result {
	int64_t rewards_paid;	  /* to providers */
	int64_t reward_remainder; /* to the treasury */
	int64_t staking_paid;	  /* from fee:staking to stakers */
	size_t providers;	  /* providers rewarded */
	size_t stakers;		  /* stakers paid */
};
/*
 * Close an epoch: mint the pool T (reward_pool) and share it by P x m (kind "reward",
 * cause "epoch:<n>", the per-node figures in data so auditors recompute it), then pay
 * fee:staking to stakers pro rata to stake (kind "stake_reward").
 */
int settle_epoch_close(struct ledger *l, const struct econ_params *p, uint64_t epoch,
		       int64_t time_ns, struct settle_epoch_result *ret);

/* The next epoch's demand multiplier and PoW difficulty from demand over supply,
 * smoothed against the previous epoch's (kind "price", cause "epoch:<n>"). */
int settle_epoch_price(struct ledger *l, const struct econ_params *p, uint64_t epoch,
		       uint64_t demand_millicores, uint64_t supply_millicores, int64_t time_ns,
		       int64_t *ret_mult_ppm, unsigned *ret_pow_bits);
/* The multiplier in force (1.0 before the first price entry). */
int settle_current_mult(struct ledger *l, int64_t *ret_mult_ppm);

/* A node's trust record (zeros for an unknown node). */
int settle_trust(struct ledger *l, const char *node, struct econ_trust *ret);

/* A renter's 1..5 rating of a node for a task of theirs that was settled on that node;
 * -EPERM not their task or nothing settled, -EEXIST already rated. */
int settle_rate(struct ledger *l, const char *task, const char *renter, const char *node,
		int stars);
/* Bayesian average in milli-stars and the number of ratings. */
int settle_rating(struct ledger *l, const struct econ_params *p, const char *node,
		  int64_t *ret_milli, uint64_t *ret_count);

/*
 * The auditor's recomputation, as a ledger_verify() visitor: replays the parameters
 * (defaults, then every "param" entry), and checks that every "settle" entry names
 * a usage record and charges exactly cpu x price split by the fee parameters in
 * force, that every "reward" entry pays exactly the pool shared by P x m over the
 * epoch's settled work, and that every "stake_reward" pays fee:staking pro rata to
 * the stakes of that moment.
 */
struct settle_audit;
int settle_audit_new(struct settle_audit **ret);
struct settle_audit *settle_audit_free(struct settle_audit *a);
int settle_audit_visit(void *ctx, uint64_t seq, const cJSON *body, char *reason, size_t reason_len);
/* Entries of each checked kind seen, for reports. */
uint64_t settle_audit_checked(const struct settle_audit *a);
/*
 * Every "settle" entry that carries its record is checked further: the record line
 * hashes to the entry's record hash, parses, is signed by the key whose SHA-256 is the
 * node id, and names the same node, sequence and task, with at least the CPU charged.
 * With require, a charge without its record fails the audit.
 */
void settle_audit_require_records(struct settle_audit *a, bool require);
/* Settlements seen, and how many of them carried a record whose signature verified. */
void settle_audit_records(const struct settle_audit *a, uint64_t *ret_settled,
			  uint64_t *ret_signed);

#endif /* AICN_COORD_SETTLE_H */
