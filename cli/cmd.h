/* cmd.h -- aicnctl's command families: each lives in its own cli/cmd_*.c and is listed in aicnctl.c. */
#ifndef AICN_CLI_CMD_H
#define AICN_CLI_CMD_H

/*
 * A family's entry point gets argv starting at its own name (argv[0] = "audit");
 * it parses its subcommands and options and returns the process exit code:
 * 0 success, 1 failure / check failed, 2 usage error.
 */
struct cli_cmd {
	const char *name;
	const char *summary; /* one line for `aicnctl --help` */
	int (*run)(int argc, char **argv);
};

#endif /* AICN_CLI_CMD_H */
