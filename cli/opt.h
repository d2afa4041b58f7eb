/* opt.h -- aicnctl's option tables: one parser, one usage layout and one set of value syntaxes for every command. */
#ifndef AICN_CLI_OPT_H
#define AICN_CLI_OPT_H

#include <stdint.h>
#include <stdio.h>

/*
 * Exit status of every aicnctl command (documented in `aicnctl --help` and
 * docs/renter.md).  `watch` exits with the task's final state instead.
 */
enum cli_exit {
	EXIT_OK = 0,	  /* success */
	EXIT_FAIL = 1,	  /* failure, or a check that failed */
	EXIT_USAGE = 2,	  /* bad command line */
	EXIT_CONNECT = 3, /* could not reach or talk to the coordinator */
	EXIT_REFUSED = 4, /* the coordinator answered ERROR */
	EXIT_TASK_FAILED = 5,
	EXIT_TASK_CANCELLED = 6,
	EXIT_TASK_EXPIRED = 7,
};

enum opt_kind {
	OPT_FLAG,     /* int *: set to 1 (counts repeats) */
	OPT_STR,      /* const char **: the argument as given */
	OPT_LIST,     /* struct opt_list *: every occurrence, in order */
	OPT_INT,      /* int64_t *: a decimal integer within [min, max] */
	OPT_SIZE,     /* int64_t *: bytes, "512M", "2G", "1.5GiB" (binary units) */
	OPT_DURATION, /* int64_t *: seconds, "90", "90s", "15m", "2h", "1d", "1h30m" */
	OPT_AMOUNT,   /* int64_t *: AICN as base units, "1.5" = 1,500,000,000 */
	OPT_HOURS, /* int64_t *: hours given as a decimal ("0.5"), stored as seconds rounded up */
	OPT_TIME,  /* int64_t *: unix seconds, "+2h" from now, or "2026-11-26T12:00[:00]Z" */
};

struct opt {
	const char *name; /* long name without "--"; NULL ends a table */
	char short_name;  /* 0 for none */
	enum opt_kind kind;
	void *dest;	  /* where the value goes (see enum opt_kind) */
	const char *arg;  /* placeholder in the usage, e.g. "N" (not for flags) */
	const char *help; /* may hold '\n': continuation lines are indented */
	int64_t min, max; /* bounds for the numeric kinds; both 0 = any non-negative value */
};

struct opt_list {
	const char **v; /* malloc'd array of argv strings */
	int n;
};
void opt_list_free(struct opt_list *l);

/* A command (or subcommand) described once for the parser and for --help. */
struct opt_cmd {
	const char *name;	 /* "aicnctl submit" (used in messages) */
	const char *synopsis;	 /* after "Usage: NAME ", '\n' starts another synopsis line */
	const char *description; /* paragraphs, already wrapped at 90 columns */
	const struct opt *opts;	 /* may be NULL */
	const struct opt *opts2; /* a second table (the connection options), may be NULL */
	int min_pos, max_pos;	 /* positional arguments allowed (max_pos -1: unbounded) */
	int rest;		 /* 1: arguments after "--" are a command (opt_args.rest) */
	const char *exit_status; /* NULL: the common exit status text */
};

struct opt_args {
	char **pos; /* positional arguments (malloc'd array of argv strings) */
	int npos;
	char **rest; /* after "--" when opt_cmd.rest, else NULL; NULL-terminated (points into argv) */
	int nrest;
};
void opt_args_done(struct opt_args *a);

#define OPT_HELP 1
/*
 * Parse argv (argv[0] is the command's own name).  Options and positionals may
 * mix; "--" ends the options.  Returns 0 to run, OPT_HELP after printing the
 * usage on stdout (exit 0), or -EINVAL after one clear line on stderr (exit 2).
 */
int opt_parse(const struct opt_cmd *cmd, int argc, char **argv, struct opt_args *ret);
void opt_usage(const struct opt_cmd *cmd, FILE *f);
/* "NAME: message\nTry 'NAME --help'.\n" on stderr; returns EXIT_USAGE. */
int opt_fail(const struct opt_cmd *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Value syntaxes (also used for positionals); 0 or -EINVAL / -ERANGE. */
int opt_parse_int(const char *s, int64_t min, int64_t max, int64_t *ret);
int opt_parse_size(const char *s, int64_t *ret);
int opt_parse_duration(const char *s, int64_t *ret);
/* A decimal with at most `decimals` fractional digits, scaled by 10^decimals. */
int opt_parse_fixed(const char *s, int decimals, int64_t *ret);
int opt_parse_amount(const char *s, int64_t *ret);
int opt_parse_time(const char *s, int64_t now, int64_t *ret);

/* Base units as AICN with trailing zeros trimmed: "1.5", "0.000000001", "-2". */
#define AMOUNT_STR_LEN 32
const char *amount_format(int64_t units, char buf[AMOUNT_STR_LEN]);
/* Bytes as "512 MiB" style text. */
const char *size_format(uint64_t bytes, char buf[32]);

/* The exit status paragraph shared by every networked command. */
extern const char opt_exit_common[];

#endif /* AICN_CLI_OPT_H */
