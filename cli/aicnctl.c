/* aicnctl.c -- the one CLI for renters, operators, auditors and admins: dispatch to command families. */
#include <aicn/compiler.h>
#include <aicn/log.h>
#include <aicn/version.h>

#include "client.h"
#include "cmd.h"
#include "opt.h"

#include <string.h>

/* Families register here, one line each (declared next to the table). */
int cmd_audit(int argc, char **argv);
int cmd_ca(int argc, char **argv);
int cmd_ledger(int argc, char **argv);
int cmd_image(int argc, char **argv);
int cmd_submit(int argc, char **argv);
int cmd_watch(int argc, char **argv);
int cmd_result(int argc, char **argv);
int cmd_cancel(int argc, char **argv);
int cmd_rate(int argc, char **argv);
int cmd_tasks(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_market(int argc, char **argv);
int cmd_balance(int argc, char **argv);
int cmd_node(int argc, char **argv);
int cmd_agent(int argc, char **argv);
int cmd_nodes(int argc, char **argv);
int cmd_queue(int argc, char **argv);
int cmd_stake(int argc, char **argv);
int cmd_unstake(int argc, char **argv);
int cmd_propose(int argc, char **argv);
int cmd_vote(int argc, char **argv);
int cmd_proposals(int argc, char **argv);
static const struct cli_cmd commands[] = {
	{"submit", "renter: run a container task (uploads the image and inputs)", cmd_submit},
	{"watch", "renter: follow a task's state and CPU time until it ends", cmd_watch},
	{"status", "renter: a task's state, replicas and result digest now", cmd_status},
	{"result", "renter: download, verify and extract a task's result", cmd_result},
	{"cancel", "renter: cancel a task; unused escrow is refunded", cmd_cancel},
	{"rate", "renter: rate the provider of a finished task (1-5 stars)", cmd_rate},
	{"tasks", "renter: list your tasks", cmd_tasks},
	{"market", "providers with price, performance, location, rating; sort, filter", cmd_market},
	{"balance", "an account's AICN: balance, escrow, stake, unbonding", cmd_balance},
	{"node", "provider: status, earnings or tasks of a node", cmd_node},
	{"agent", "provider: status of the local aicn-agent (from its metrics)", cmd_agent},
	{"nodes", "operator: every node the coordinator knows (auditor certificate)", cmd_nodes},
	{"queue", "operator: the scheduler's queue (auditor certificate)", cmd_queue},
	{"stake", "staker: stake AICN (fee shares, votes)", cmd_stake},
	{"unstake", "staker: start unbonding staked AICN", cmd_unstake},
	{"propose", "staker: propose a new value for a network parameter", cmd_propose},
	{"vote", "staker: vote yes or no on a proposal", cmd_vote},
	{"proposals", "the governance proposals and their votes", cmd_proposals},
	{"image", "build-from-rootfs: an OCI image archive from a plain directory", cmd_image},
	{"audit", "verify a node's meter log offline; proofs; CPU-hour summaries", cmd_audit},
	{"ca", "network certificate authority: init, issue, revoke, crl, list", cmd_ca},
	{"ledger", "verify the AICN ledger offline, show entries and balances", cmd_ledger},
	{NULL, NULL, NULL},
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: aicnctl [--version] [--help] [CONNECTION OPTIONS] COMMAND [ARGS...]\n\n"
		"The AI Compute Network's command-line tool: renters submit container tasks and\n"
		"pay in AICN, providers look after their nodes, stakers vote, auditors verify.\n\n"
		"Commands:\n");
	for (const struct cli_cmd *c = commands; c->name; c++)
		fprintf(f, "  %-12s %s\n", c->name, c->summary);
	fprintf(f,
		"\nRun 'aicnctl COMMAND --help' for a command's options.\n\n"
		"Connection options (before or after COMMAND; they override the config file):\n"
		"  --coordinator HOST:PORT  --cert FILE  --key FILE  --ca FILE  --config FILE\n"
		"  --timeout DURATION\n"
		"The config file is $AICNCTL_CONFIG or ~/.config/aicn/aicnctl.conf, INI with the keys\n"
		"coordinator, cert, key, ca and timeout (see docs/renter.md).\n\n"
		"Read commands take --json: the coordinator's reply as canonical JSON on stdout.\n\n"
		"Exit status:\n"
		"  0  success (watch: the task is DONE)\n"
		"  1  failure, or a check that failed\n"
		"  2  usage error\n"
		"  3  cannot connect to or talk to the coordinator (refused, TLS, timeout, lost)\n"
		"  4  the coordinator refused the request (its error code and message are printed)\n"
		"  5  watch: the task FAILED      6  watch: CANCELLED      7  watch: EXPIRED\n");
}

int main(int argc, char **argv)
{
	int used;

	log_setup("aicnctl");
	used = client_global_opts(argc, argv);
	if (used < 0)
		return EXIT_USAGE;
	argc -= used;
	argv += used;
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return EXIT_OK;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("aicnctl %s\n", AICN_VERSION);
		return EXIT_OK;
	}
	for (const struct cli_cmd *c = commands; c->name; c++)
		if (strcmp(argv[1], c->name) == 0)
			return c->run(argc - 1, argv + 1);
	fprintf(stderr, "aicnctl: unknown command '%s' (see 'aicnctl --help')\n", argv[1]);
	return EXIT_USAGE;
}
