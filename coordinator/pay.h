/* pay.h -- settlement wired into the coordinator: escrow at submit, Proof of Compute and payment of finished replicas, epochs, governance requests. */
#ifndef AICN_COORD_PAY_H
#define AICN_COORD_PAY_H

#include "econ.h"
#include "task.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The network front calls pay_* at fixed points of a task's life.  The ledger lives
 * in the coordinator's own SQLite file and every pay_* write joins the store's open
 * batch (store_write_begin), so the front's coord_flush() commits the task and its
 * money with one fsync; nothing here commits on its own except pay_tick (which
 * flushes before it signs a checkpoint, so a checkpoint never covers an entry a
 * crash could lose).  Same thread as the coord_* calls.
 *
 * Accounts are names: a renter's is its certificate CN, a provider's its agent
 * certificate's CN; a node is its node id (hex SHA-256 of its Ed25519 key).  A
 * task's escrow account is "escrow:<tasks.id in decimal>".
 *
 * Money is int64 base units (1 AICN = ECON_UNIT).  Errors are negative errno; where
 * a renter or operator must understand why, a one-line reason goes to err.
 */

struct pay;

struct pay_config {
	const char *key_file;	    /* coordinator's Ed25519 key (PEM): signs checkpoints */
	const char *origin;	    /* checkpoint origin line, "aicn/ledger/<network name>" */
	const char *checkpoint_dir; /* signed checkpoints for auditors; NULL = none */
	const char *params_file;    /* INI/JSON genesis params; NULL = defaults */
};

/*
 * Create the ledger tables in c's store (migration "ledger"), load the key and the
 * parameters.  params_file only sets genesis: once governance has changed a
 * parameter, the ledger's value wins.  -EINVAL bad config (reason in err).
 */
int pay_open(struct coord *c, const struct pay_config *cfg, int64_t now_ns, struct pay **ret,
	     char *err, size_t errlen);
struct pay *pay_free(struct pay *p);
/* The parameters in force (genesis overridden by passed proposals). */
const struct econ_params *pay_params(const struct pay *p);

/*
 * SUBMIT, before coord_submit(): the escrow the spec needs (max CPU-hours x max_price
 * x replicas; max_cpu_seconds defaults to cores x max_wall_seconds and replicas to 1,
 * as coord_submit does) and whether ACCOUNT can pay: -ENOSPC and a reason
 * ("insufficient funds: balance 1.5 AICN, escrow needs 3 AICN") when not, -EINVAL
 * when the figures are missing or out of range (coord_submit then names the field).
 */
int pay_submit_check(struct pay *p, const char *account, const cJSON *spec, int64_t *ret_escrow,
		     char *err, size_t errlen);
/*
 * After coord_submit() created task_id (not for a duplicate client_ref): move the
 * escrow into escrow:<task_id> and add "escrow" (base units) to reply.  Idempotent by
 * task id.  -ENOSPC if the funds went meanwhile: the front must then cancel the task.
 */
int pay_submit_commit(struct pay *p, const char *account, int64_t task_id, const cJSON *spec,
		      int64_t now_ns, cJSON *reply);

/*
 * For a TASK_OFFER: the effective price (provider ask x demand multiplier, capped by
 * the task's max_price) and the PoW difficulty in force; the front puts "price" and
 * "pow_bits" in the offer and hands both back in pay_result.
 */
int pay_offer_terms(struct pay *p, int64_t ask_price, int64_t max_price, int64_t *ret_price,
		    unsigned *ret_pow_bits);

struct pay_result {
	int64_t task_id;	    /* tasks.id */
	uint32_t replica;	    /* replica slot (idx) */
	const char *renter;	    /* task's account name */
	const char *node_id;	    /* hex SHA-256 of the node key */
	const uint8_t *node_pubkey; /* 32 bytes, from the peer certificate */
	const char *provider;	    /* the node's account name */
	int64_t renewable_ppm;	    /* node's declared renewable share, 0..1000000 */
	int64_t price;		    /* price agreed in the offer (base units per CPU-hour) */
	unsigned pow_bits;	    /* difficulty given in the offer */
	int64_t dispatched_ns;	    /* coordinator realtime of the offer */
	int64_t now_ns;		    /* coordinator realtime now */
	const cJSON *spec;	    /* the task's stored spec (cores, image, ...) */
	const char *record_line;    /* the final usage record as the agent signed it */
	size_t record_len;	    /* bytes of record_line (no newline) */
	const char *result_digest;  /* "sha256:<hex>" the agent reported */
	uint64_t pow_nonce;	    /* hashcash nonce over (task id, result digest, record hash) */
};

enum pay_verdict {
	PAY_SETTLED = 0,      /* decided: paid (or, for a losing replica, refused after quorum) */
	PAY_WAIT = 1,	      /* accepted, waiting for the task's other replicas */
	PAY_NEED_REPLICA = 2, /* front adds a slot (coord_add_replica) */
	PAY_REFUSED = 3,      /* refused (reason in err); the front treats the replica as failed */
};

/*
 * Proof of Compute for a finished replica: signature with node_pubkey, record's node
 * == node_id, task/replica/image/limits match the spec, econ_check_usage (cpu <=
 * cores x wall x 1.01, window, meter vs kernel), PoW stamp >= pow_bits; then quorum
 * across the task's replicas (econ_quorum, expected results = the task's replica
 * count in the store), slashing and trust for a losing node, settle_usage for winners
 * (at the agreed price, capped by the escrowed one).  Results beyond the renter's
 * own replicas (network validation and tie-breakers) are paid by the treasury.
 * Refused records are recorded with settle_refuse.  A replayed record pays nothing
 * (PAY_REFUSED, "already settled").  Negative errno only for internal errors.
 */
int pay_on_result(struct pay *p, const struct pay_result *r, enum pay_verdict *ret, char *err,
		  size_t errlen);
/* Whether a placement on node_id should get an adaptive validation replica (BOINC-style,
 * econ_should_replicate on the node's trust). */
bool pay_want_replica(struct pay *p, const char *node_id);
/*
 * The task reached a final state (DONE, CANCELLED, FAILED, EXPIRED): results still
 * waiting for a quorum are decided with what there is, then the escrow is closed and
 * the rest refunded (*ret_refund, may be NULL).  Idempotent.
 */
int pay_on_task_end(struct pay *p, int64_t task_id, int64_t now_ns, int64_t *ret_refund);

/*
 * Periodic: release due unbondings, close the epoch when due (rewards, staking pay,
 * price multiplier and PoW difficulty for the next from demand/supply), tick
 * governance (apply passed proposals), then coord_flush() and write a signed
 * checkpoint when the ledger grew.  Returns 1 when an epoch closed, 0 otherwise;
 * a flush error means the process must exit (as with coord_flush).
 */
int pay_tick(struct pay *p, int64_t now_ns, uint64_t demand_millicores, uint64_t supply_millicores);

#define PAY_NODE_EARNINGS 100 /* results in NODE's earnings list */

/* Requests from renters/stakers/operators (cJSON reply or -errno + reason). */
/* {"account","balance","escrowed","staked","unbonding"} (base units). */
int pay_balance(struct pay *p, const char *account, cJSON **ret);
/*
 * {"node","earned","cpu_ns","results","refused","trust":{"valid","streak","invalid",
 * "reputation_ppm"},"rating_milli","ratings","earnings":[{"task_id","replica","cpu_ns",
 * "price","paid","state"}]}: earnings lists the node's last PAY_NODE_EARNINGS decided
 * results, newest first ("paid", or "refused" with paid 0).
 */
int pay_node(struct pay *p, const char *node_id, cJSON **ret);
/* A renter's 1..5 stars for a settled task of theirs on node_id. */
int pay_rate(struct pay *p, int64_t task_id, const char *renter, const char *node_id, int stars,
	     char *err, size_t errlen);
int pay_rating(struct pay *p, const char *node_id, int64_t *ret_milli, uint64_t *ret_count);
int pay_stake(struct pay *p, const char *account, int64_t amount, int64_t now_ns, char *err,
	      size_t errlen);
/* *ret_release_ns (may be NULL): when the unbonded amount becomes spendable. */
int pay_unstake(struct pay *p, const char *account, int64_t amount, int64_t now_ns, char *err,
		size_t errlen, int64_t *ret_release_ns);
/* {"proposal","param","value","ends_ns"}; text (<= 1024 bytes, may be NULL) is kept in the ledger. */
int pay_propose(struct pay *p, const char *account, const char *param, int64_t value,
		const char *text, int64_t now_ns, cJSON **ret, char *err, size_t errlen);
int pay_vote(struct pay *p, const char *account, int64_t proposal, bool yes, int64_t now_ns,
	     char *err, size_t errlen);
/* [{"proposal","param","value","proposer","ends_ns","state","yes","no"}, ...] */
int pay_proposals(struct pay *p, cJSON **ret);
/* Operator's faucet: mint amount to account, idempotent by cause (-EEXIST). */
int pay_mint(struct pay *p, const char *account, int64_t amount, const char *cause, int64_t now_ns);

#endif /* AICN_COORD_PAY_H */
