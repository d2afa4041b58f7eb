/* aicnctl.c -- the one CLI for renters, operators, auditors and admins: dispatch to command families. */
#include <aicn/compiler.h>
#include <aicn/log.h>
#include <aicn/version.h>

#include "cmd.h"

#include <string.h>

/* Families register here, one line each (declared next to the table). */
int cmd_audit(int argc, char **argv);
int cmd_ca(int argc, char **argv);
int cmd_ledger(int argc, char **argv);
static const struct cli_cmd commands[] = {
	{"audit", "verify a node's meter log offline; proofs; CPU-hour summaries", cmd_audit},
	{"ca", "network certificate authority: init, issue, revoke, crl, list", cmd_ca},
	{"ledger", "verify the AICN ledger offline, show entries and balances", cmd_ledger},
	{NULL, NULL, NULL},
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: aicnctl [--version] [--help] COMMAND [ARGS...]\n\n"
		   "The AI Compute Network's command-line tool.\n\nCommands:\n");
	for (const struct cli_cmd *c = commands; c->name; c++)
		fprintf(f, "  %-12s %s\n", c->name, c->summary);
	fprintf(f, "\nRun 'aicnctl COMMAND --help' for a command's options.\n"
		   "Exit status: 0 success, 1 failure or failed check, 2 usage error.\n");
}

int main(int argc, char **argv)
{
	log_setup("aicnctl");
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("aicnctl %s\n", AICN_VERSION);
		return 0;
	}
	for (const struct cli_cmd *c = commands; c->name; c++)
		if (strcmp(argv[1], c->name) == 0)
			return c->run(argc - 1, argv + 1);
	fprintf(stderr, "aicnctl: unknown command '%s' (see 'aicnctl --help')\n", argv[1]);
	return 2;
}
