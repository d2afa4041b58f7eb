/* market_proto.h -- the coordinator's renter, staker and operator messages, defined on top of the built-in catalogue. */
#ifndef AICN_MARKET_PROTO_H
#define AICN_MARKET_PROTO_H

#include <aicn/proto.h>

/*
 * Requests from renters, stakers and operators (docs/protocol.md, "Market
 * messages").  Every request is answered by REPLY {ref, data} or ERROR {ref,
 * code, message}.  WATCH is answered by REPLY and then UPDATE messages until
 * the task reaches a final state.  Both ends call market_proto_define() once
 * before their first connection; the type ids are then market_type(MKT_...).
 */
enum market_msg {
	MKT_SUBMIT = 0, /* renter: {spec} -> {task_id, state, max_cost, escrow, duplicate} */
	MKT_STATUS,	/* renter, auditor: {task_id} -> the task and its replicas */
	MKT_WATCH,	/* renter: {task_id} -> status now, then UPDATE until final */
	MKT_UPDATE,	/* coordinator: {task_id, state, cpu_ns, wall_ns, final, reason} */
	MKT_CANCEL,	/* renter: {task_id} -> {task_id, state, refund} */
	MKT_RATE,	/* renter: {task_id, stars, text} -> {} */
	MKT_TASKS,	/* renter, auditor: {state, limit} -> {tasks: [...]} */
	MKT_MARKET,	/* any: {} -> {providers: [...]} */
	MKT_BALANCE,	/* any: {account} -> {account, balance, escrow, stake, unbonding} */
	MKT_NODE,	/* any: {node_id} -> {node, earnings, tasks, rating, trust} */
	MKT_NODES,	/* auditor (operator): {} -> {nodes: [...]} */
	MKT_QUEUE,	/* auditor (operator): {} -> {queue: [...]} */
	MKT_STAKE,	/* renter: {amount} -> {stake} */
	MKT_UNSTAKE,	/* renter: {amount} -> {unbonding, release_ns} */
	MKT_PROPOSE,	/* renter: {param, value, text} -> {proposal, ends_ns} */
	MKT_VOTE,	/* renter: {proposal, yes} -> {} */
	MKT_PROPOSALS,	/* any: {} -> {proposals: [...]} */
	MKT_REPLY,	/* coordinator: {ref, data} */
	MKT_COUNT,
};

/* Define every market type (idempotent, thread-safe); 0 or a negative errno. */
int market_proto_define(void);
/* The proto type id of m (market_proto_define() must have succeeded). */
int market_type(enum market_msg m);
/* MKT_* of a proto type id, or -1 when it is not a market type. */
int market_msg_of(int type);

#endif /* AICN_MARKET_PROTO_H */
