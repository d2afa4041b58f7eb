/* client.h -- aicnctl's blocking connection to the coordinator: config, request/reply, blob upload and download. */
#ifndef AICN_CLI_CLIENT_H
#define AICN_CLI_CLIENT_H

#include "opt.h"

#include <aicn/market_proto.h>

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

/*
 * Where the coordinator is and who we are.  Filled from, in rising order of
 * precedence: the config file (~/.config/aicn/aicnctl.conf, or $AICNCTL_CONFIG,
 * or --config), aicnctl's leading options, and the command's own options.
 * Relative paths in the file are relative to the file's directory.
 */
struct client_opts {
	const char *config;	 /* --config FILE */
	const char *coordinator; /* --coordinator HOST:PORT */
	const char *cert;	 /* --cert renter.pem */
	const char *key;	 /* --key renter.key */
	const char *ca;		 /* --ca ca.pem */
	int64_t timeout;	 /* --timeout seconds for one reply (default 30) */
};

/* The options every networked command takes (a second opt table for opt_cmd.opts2). */
extern struct client_opts client_opts;
extern const struct opt client_opt_table[];

/*
 * aicnctl's leading options (`aicnctl --coordinator H:P submit ...`): consume
 * them from argv; returns how many arguments were used, or -EINVAL after a
 * message.
 */
int client_global_opts(int argc, char **argv);

struct client;

/* A message received from the coordinator (type and owned tree). */
struct client_msg {
	int type;
	cJSON *root;
};
void client_msg_done(struct client_msg *m);

/*
 * Connect (TCP, TLS 1.3, HELLO) within the timeout.  On failure returns a
 * negative errno and writes one line to err (CLIENT_ERR_LEN), such as
 * "cannot connect to 127.0.0.1:7443: connection refused".
 */
#define CLIENT_ERR_LEN 768
int client_open(const struct client_opts *o, struct client **ret, char *err);
struct client *client_free(struct client *c);

/*
 * Send a market request (fields is consumed) and wait for its REPLY.  On
 * success *ret_data is the reply's "data" (owned by the caller).  -EREMOTE when
 * the coordinator answered ERROR (client_error() gives "code: message"),
 * -ECONNRESET when the connection went down, -ETIMEDOUT.
 */
int client_call(struct client *c, enum market_msg m, cJSON *fields, cJSON **ret_data);
/* Send any message (consumed); returns its id through ret_id. */
int client_send(struct client *c, cJSON *msg, int64_t *ret_id);
/* Wait for the next message not claimed by a call (UPDATE), up to timeout_ms. */
int client_next(struct client *c, unsigned timeout_ms, struct client_msg *ret);

/*
 * Upload a file as a blob unless the coordinator already has it.  ret_digest
 * gets "sha256:<hex>"; *ret_had is 1 when the upload was skipped.  progress
 * (may be NULL) is called with bytes acknowledged so far.
 */
int client_blob_put(struct client *c, const char *path, char ret_digest[72], uint64_t *ret_size,
		    int *ret_had, void (*progress)(uint64_t done, uint64_t total, void *ud),
		    void *ud);
/* Download blob digest into fd (from offset 0) and check its sha256; at most max bytes. */
int client_blob_get(struct client *c, const char *digest, int fd, uint64_t max, uint64_t *ret_size);

/* The last error: the coordinator's "code: message", or what failed locally. */
const char *client_error(const struct client *c);
/* The coordinator's ERROR code of the last -EREMOTE ("" otherwise). */
const char *client_error_code(const struct client *c);
/* What was connected to ("host:port"). */
const char *client_target(const struct client *c);

/*
 * Print "aicnctl CMD: what: <error>" for a failed client call r and return the
 * exit status for it: EXIT_REFUSED for -EREMOTE, EXIT_CONNECT for connection
 * trouble, EXIT_FAIL otherwise.
 */
int client_fail(const struct client *c, const char *cmd, int r, const char *what);

/* Open the client for a command; on failure print the reason and return its exit status. */
int client_open_or_fail(const char *cmd, struct client **ret);

/* Print a reply's data as canonical JSON on stdout (the --json output). */
int client_print_json(const cJSON *data);

/*
 * Print an object for people: "key: value" lines, nested objects indented,
 * arrays of objects one element per line.  Members whose names end in
 * "balance", "escrow", "stake", "unbonding", "price", "refund", "cost",
 * "amount", "earned", "earnings", "reward" or "charged" are base units and
 * shown as AICN; "_ns" times as seconds.
 */
void client_print_kv(const cJSON *obj, int indent);
/* Is a member name an amount of base units (see client_print_kv)? */
int json_is_amount(const char *key);

/* Task ids travel as decimal strings; the coordinator may answer numbers. */
const char *json_task_id(const cJSON *obj, const char *key, char buf[32]);
/* An integer member (Raw number or string of digits); def when absent. */
int64_t json_i64(const cJSON *obj, const char *key, int64_t def);
/* A string member, or def. */
const char *json_str(const cJSON *obj, const char *key, const char *def);
/* A boolean member, or def. */
int json_bool(const cJSON *obj, const char *key, int def);

#endif /* AICN_CLI_CLIENT_H */
