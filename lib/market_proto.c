/* market_proto.c -- field schemas and role permissions of the coordinator's market messages. */
#include <aicn/compiler.h>
#include <aicn/market_proto.h>

#include <pthread.h>
#include <stdint.h>

#define I64_MAX INT64_MAX
#define ID_MAX ((int64_t)1 << 53)
#define USERS (ROLE_AGENT | ROLE_RENTER | ROLE_AUDITOR)
#define F(n, kind, req, lo, hi)                                                                    \
	{                                                                                          \
		n, kind, req, lo, hi, NULL, NULL                                                   \
	}
#define END F(NULL, 0, 0, 0, 0)

static const struct proto_field f_submit[] = {
	F("spec", PK_OBJ, 1, 0, 0), /* the task spec; checked field by field by the coordinator */
	END,
};

static const struct proto_field f_task[] = {
	F("task_id", PK_STR, 1, 1, 64), /* decimal task id */
	END,
};

static const struct proto_field f_update[] = {
	F("task_id", PK_STR, 1, 1, 64),
	F("state", PK_STR, 1, 1, 16),	     /* QUEUED, RUNNING, DONE, FAILED, CANCELLED, EXPIRED */
	F("cpu_ns", PK_INT, 1, 0, I64_MAX),  /* CPU time so far over all replicas (eBPF meter) */
	F("wall_ns", PK_INT, 0, 0, I64_MAX), /* since the first replica started */
	F("final", PK_BOOL, 1, 0, 0),	     /* no UPDATE follows */
	F("reason", PK_STR, 0, 0, 512),	     /* FAILED / CANCELLED: why */
	F("result_digest", PK_DIGEST, 0, 0, 0), /* DONE: the accepted result */
	END,
};

static const struct proto_field f_rate[] = {
	F("task_id", PK_STR, 1, 1, 64),
	F("stars", PK_INT, 1, 1, 5),
	F("text", PK_STR, 0, 0, 1024),
	END,
};

static const struct proto_field f_tasks[] = {
	F("state", PK_STR, 0, 1, 16),	 /* only tasks in this state */
	F("limit", PK_INT, 0, 1, 10000), /* newest first, at most this many (100) */
	END,
};

static const struct proto_field f_none[] = {
	END,
};

static const struct proto_field f_balance[] = {
	F("account", PK_STR, 0, 1, 128), /* default: the caller's own account */
	END,
};

static const struct proto_field f_node[] = {
	F("node_id", PK_STR, 1, 64, 64),
	END,
};

static const struct proto_field f_amount[] = {
	F("amount", PK_INT, 1, 1, I64_MAX), /* base units (1e-9 AICN) */
	END,
};

static const struct proto_field f_propose[] = {
	F("param", PK_STR, 1, 1, 64), /* a network parameter name (docs/economics.md) */
	F("value", PK_INT, 1, INT64_MIN, I64_MAX),
	F("text", PK_STR, 0, 0, 1024), /* the motivation, kept in the ledger */
	END,
};

static const struct proto_field f_vote[] = {
	F("proposal", PK_INT, 1, 1, I64_MAX),
	F("yes", PK_BOOL, 1, 0, 0),
	END,
};

static const struct proto_field f_reply[] = {
	F("ref", PK_INT, 1, 0, ID_MAX), /* id of the request answered */
	F("data", PK_OBJ, 1, 0, 0),	/* the answer; its fields are per request */
	END,
};

static const struct proto_def defs[MKT_COUNT] = {
	[MKT_SUBMIT] = {"SUBMIT", ROLE_RENTER, f_submit},
	[MKT_STATUS] = {"STATUS", ROLE_RENTER | ROLE_AUDITOR, f_task},
	[MKT_WATCH] = {"WATCH", ROLE_RENTER | ROLE_AUDITOR, f_task},
	[MKT_UPDATE] = {"UPDATE", ROLE_COORDINATOR, f_update},
	[MKT_CANCEL] = {"CANCEL", ROLE_RENTER, f_task},
	[MKT_RATE] = {"RATE", ROLE_RENTER, f_rate},
	[MKT_TASKS] = {"TASKS", ROLE_RENTER | ROLE_AUDITOR, f_tasks},
	[MKT_MARKET] = {"MARKET", USERS, f_none},
	[MKT_BALANCE] = {"BALANCE", USERS, f_balance},
	[MKT_NODE] = {"NODE", USERS, f_node},
	[MKT_NODES] = {"NODES", ROLE_AUDITOR, f_none},
	[MKT_QUEUE] = {"QUEUE", ROLE_AUDITOR, f_none},
	[MKT_STAKE] = {"STAKE", ROLE_RENTER, f_amount},
	[MKT_UNSTAKE] = {"UNSTAKE", ROLE_RENTER, f_amount},
	[MKT_PROPOSE] = {"PROPOSE", ROLE_RENTER, f_propose},
	[MKT_VOTE] = {"VOTE", ROLE_RENTER, f_vote},
	[MKT_PROPOSALS] = {"PROPOSALS", USERS, f_none},
	[MKT_REPLY] = {"REPLY", ROLE_COORDINATOR, f_reply},
};

static int ids[MKT_COUNT];
static int define_error;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void define_all(void)
{
	for (int i = 0; i < MKT_COUNT; i++) {
		int r = proto_define(&defs[i]);

		if (r == -EEXIST)
			r = proto_type_from_name(defs[i].name);
		if (r < 0) {
			define_error = r;
			return;
		}
		ids[i] = r;
	}
}

int market_proto_define(void)
{
	pthread_once(&once, define_all);
	return define_error;
}

int market_type(enum market_msg m)
{
	return m < MKT_COUNT ? ids[m] : PROTO_UNKNOWN;
}

int market_msg_of(int type)
{
	for (int i = 0; i < MKT_COUNT; i++)
		if (ids[i] == type && type != PROTO_UNKNOWN)
			return i;
	return -1;
}
