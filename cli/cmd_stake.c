/* cmd_stake.c -- the staker's commands: stake, unstake, propose a parameter change, vote, list proposals. */
#include "client.h"
#include "cmd.h"
#include "opt.h"

#include <aicn/canon.h>
#include <aicn/compiler.h>

#include <string.h>
#include <time.h>

int cmd_stake(int argc, char **argv);
int cmd_unstake(int argc, char **argv);
int cmd_propose(int argc, char **argv);
int cmd_vote(int argc, char **argv);
int cmd_proposals(int argc, char **argv);

DEFINE_TRIVIAL_CLEANUP_FUNC(cJSON, cJSON_Delete)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct client, client_free)

static int json_flag;
static const struct opt json_opts[] = {
	{"json", 0, OPT_FLAG, &json_flag, NULL, "print the coordinator's reply as JSON", 0, 0},
	{0},
};

static void fmt_time_ns(int64_t ns, char *buf, size_t len)
{
	time_t t = (time_t)(ns / 1000000000);
	struct tm tm;

	if (ns <= 0 || !gmtime_r(&t, &tm))
		snprintf(buf, len, "-");
	else
		strftime(buf, len, "%Y-%m-%d %H:%M:%SZ", &tm);
}

/* Run one request built from `fields` and print its reply (JSON or key: value). */
static int call_and_print(const struct opt_cmd *cmd, enum market_msg m, cJSON *fields,
			  void (*show)(const cJSON *data))
{
	_cleanup_(client_freep) struct client *c = NULL;
	_cleanup_(cJSON_Deletep) cJSON *data = NULL;
	int rc = client_open_or_fail(cmd->name, &c), r;

	if (rc) {
		cJSON_Delete(fields);
		return rc;
	}
	r = client_call(c, m, fields, &data);
	if (r < 0)
		return client_fail(c, cmd->name, r, cmd->name + strlen("aicnctl "));
	if (json_flag)
		return client_print_json(data);
	if (show)
		show(data);
	else
		client_print_kv(data, 0);
	return EXIT_OK;
}

static void show_stake(const cJSON *d)
{
	char a[AMOUNT_STR_LEN], t[40];
	int64_t rel = json_i64(d, "release_ns", 0);

	if (cJSON_GetObjectItemCaseSensitive(d, "stake"))
		printf("stake now %s AICN\n", amount_format(json_i64(d, "stake", 0), a));
	if (cJSON_GetObjectItemCaseSensitive(d, "unbonding") && json_i64(d, "unbonding", 0)) {
		printf("unbonding %s AICN", amount_format(json_i64(d, "unbonding", 0), a));
		if (rel > 0) {
			fmt_time_ns(rel, t, sizeof(t));
			printf(", spendable again from %s", t);
		}
		putchar('\n');
	}
}

static int stake_common(int argc, char **argv, int unstake)
{
	const struct opt_cmd cmd = {
		unstake ? "aicnctl unstake" : "aicnctl stake",
		"AMOUNT [--json]",
		unstake ? "Withdraw AMOUNT AICN of your stake.  It stops counting for votes and fee\n"
			  "shares at once and becomes spendable after the unbonding period\n"
			  "(unbonding_ns, 7 days by default; see docs/economics.md)."
			: "Stake AMOUNT AICN (e.g. 100 or 0.5) from your balance.  Stakers share the\n"
			  "staking part of the network fee each epoch, pro rata to their stake, and\n"
			  "vote on parameter changes with it; gov_min_stake (100 AICN by default) is\n"
			  "needed to propose.  A provider's stake is slashed when it lies.",
		json_opts,
		client_opt_table,
		1,
		1,
		0,
		NULL};
	struct opt_args a = {0};
	int64_t amount;
	cJSON *f;
	int r = opt_parse(&cmd, argc, argv, &a), rc;

	if (r)
		return r == OPT_HELP ? EXIT_OK : EXIT_USAGE;
	r = opt_parse_amount(a.pos[0], &amount);
	if (r < 0 || amount <= 0) {
		rc = opt_fail(&cmd,
			      "AMOUNT: '%s' is not a positive amount of AICN (at most 9 "
			      "decimals)",
			      a.pos[0]);
		goto out;
	}
	f = cJSON_CreateObject();
	if (!f || canon_add_i64(f, "amount", amount) < 0) {
		cJSON_Delete(f);
		rc = EXIT_FAIL;
		goto out;
	}
	rc = call_and_print(&cmd, unstake ? MKT_UNSTAKE : MKT_STAKE, f, show_stake);
out:
	opt_args_done(&a);
	return rc;
}

int cmd_stake(int argc, char **argv)
{
	return stake_common(argc, argv, 0);
}

int cmd_unstake(int argc, char **argv)
{
	return stake_common(argc, argv, 1);
}

static void show_proposed(const cJSON *d)
{
	char t[40];

	fmt_time_ns(json_i64(d, "ends_ns", 0), t, sizeof(t));
	printf("proposal %lld open for votes until %s\n", (long long)json_i64(d, "proposal", 0), t);
}

int cmd_propose(int argc, char **argv)
{
	const char *text = NULL;
	const struct opt opts[] = {
		{"text", 't', OPT_STR, &text, "TEXT", "why (kept in the ledger, up to 1024 bytes)",
		 0, 0},
		{"json", 0, OPT_FLAG, &json_flag, NULL, "print the coordinator's reply as JSON", 0,
		 0},
		{0},
	};
	const struct opt_cmd cmd = {
		"aicnctl propose",
		"PARAM VALUE [--text TEXT] [--json]",
		"Propose a new VALUE for the network parameter PARAM (for example fee_bps 400;\n"
		"the parameters, their units and bounds are listed in docs/economics.md).  VALUE is\n"
		"an integer in the parameter's own unit (base units for amounts, bps, ppm, ns).\n"
		"Needs gov_min_stake staked.  Stakers vote during gov_voting_ns; with quorum and a\n"
		"majority above gov_threshold_bps the value is applied.",
		opts,
		client_opt_table,
		2,
		2,
		0,
		NULL};
	struct opt_args a = {0};
	int64_t value;
	cJSON *f;
	int r = opt_parse(&cmd, argc, argv, &a), rc;

	if (r)
		return r == OPT_HELP ? EXIT_OK : EXIT_USAGE;
	if (!*a.pos[0] || strlen(a.pos[0]) > 64) {
		rc = opt_fail(&cmd, "PARAM must be 1-64 characters");
		goto out;
	}
	if (opt_parse_int(a.pos[1], INT64_MIN, INT64_MAX, &value) < 0) {
		rc = opt_fail(&cmd, "VALUE: '%s' is not an integer", a.pos[1]);
		goto out;
	}
	if (text && strlen(text) > 1024) {
		rc = opt_fail(&cmd, "--text is longer than 1024 bytes");
		goto out;
	}
	f = cJSON_CreateObject();
	if (!f || !cJSON_AddStringToObject(f, "param", a.pos[0]) ||
	    canon_add_i64(f, "value", value) < 0 ||
	    (text && !cJSON_AddStringToObject(f, "text", text))) {
		cJSON_Delete(f);
		rc = EXIT_FAIL;
		goto out;
	}
	rc = call_and_print(&cmd, MKT_PROPOSE, f, show_proposed);
out:
	opt_args_done(&a);
	return rc;
}

static void show_voted(const cJSON *d _unused_)
{
	printf("vote recorded\n");
}

int cmd_vote(int argc, char **argv)
{
	const struct opt_cmd cmd = {
		"aicnctl vote",
		"ID yes|no [--json]",
		"Vote on proposal ID with your whole stake (once per proposal).  At the tally each\n"
		"vote counts with the smaller of your stake when voting and your stake then.",
		json_opts,
		client_opt_table,
		2,
		2,
		0,
		NULL};
	struct opt_args a = {0};
	int64_t id;
	int yes, rc;
	cJSON *f;
	int r = opt_parse(&cmd, argc, argv, &a);

	if (r)
		return r == OPT_HELP ? EXIT_OK : EXIT_USAGE;
	if (opt_parse_int(a.pos[0], 1, INT64_MAX, &id) < 0) {
		rc = opt_fail(&cmd, "'%s' is not a proposal id", a.pos[0]);
		goto out;
	}
	if (strcmp(a.pos[1], "yes") == 0) {
		yes = 1;
	} else if (strcmp(a.pos[1], "no") == 0) {
		yes = 0;
	} else {
		rc = opt_fail(&cmd, "vote 'yes' or 'no', not '%s'", a.pos[1]);
		goto out;
	}
	f = cJSON_CreateObject();
	if (!f || canon_add_i64(f, "proposal", id) < 0 || !cJSON_AddBoolToObject(f, "yes", yes)) {
		cJSON_Delete(f);
		rc = EXIT_FAIL;
		goto out;
	}
	rc = call_and_print(&cmd, MKT_VOTE, f, show_voted);
out:
	opt_args_done(&a);
	return rc;
}

int cmd_proposals(int argc, char **argv)
{
	const struct opt_cmd cmd = {
		"aicnctl proposals",
		"[--json]",
		"The governance proposals: parameter, proposed value, who proposed it, the voting\n"
		"deadline, yes and no stake so far, and the outcome once tallied.",
		json_opts,
		client_opt_table,
		0,
		0,
		0,
		NULL};
	struct opt_args a = {0};
	int r = opt_parse(&cmd, argc, argv, &a);

	if (r)
		return r == OPT_HELP ? EXIT_OK : EXIT_USAGE;
	opt_args_done(&a);
	return call_and_print(&cmd, MKT_PROPOSALS, NULL, NULL);
}
