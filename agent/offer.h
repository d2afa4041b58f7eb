/* offer.h -- TASK_OFFER as the agent sees it: strict validation of hostile values, and the accept/reject rules. */
#ifndef AICN_AGENT_OFFER_H
#define AICN_AGENT_OFFER_H

#include "config.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OFFER_TASK_ID_MAX 64
#define OFFER_DIGEST_LEN 71			     /* "sha256:" + 64 hex */
#define OFFER_INPUTS_MAX 64			     /* inputs of one task */
#define OFFER_INPUT_PATH_MAX 256		     /* bytes of one input path */
#define OFFER_INPUT_DEPTH_MAX 16		     /* components of one input path */
#define OFFER_INPUTS_BYTES_MAX (4ULL << 30)	     /* all inputs of one task together */
#define OFFER_CMD_BYTES_MAX (256 * 1024)	     /* argv + env together */
#define OFFER_POW_BITS_MAX 32			     /* harder stamps are refused: 2^32 hashes */
#define OFFER_DEADLINE_MS_MAX (400ULL * 86400000ULL) /* wall-clock limits beyond: refused */
#define OFFER_REASON_MAX 256			     /* TASK_REJECT reason */

struct offer_input {
	char digest[OFFER_DIGEST_LEN + 1];   /* "sha256:<hex>" of the blob */
	char path[OFFER_INPUT_PATH_MAX + 1]; /* relative path below the task's /work */
	uint64_t size;			     /* bytes, checked when fetched */
};

/* A validated TASK_OFFER. */
struct offer {
	char task_id[OFFER_TASK_ID_MAX + 1]; /* [A-Za-z0-9._-], not starting with '.' */
	char image[OFFER_DIGEST_LEN + 1];    /* digest of the OCI image archive blob */
	char **cmd;			     /* NULL-terminated, at least one */
	size_t n_cmd;
	char **env; /* NULL-terminated "K=V" list (may be empty) */
	size_t n_env;
	struct offer_input *inputs;
	size_t n_inputs;
	uint64_t inputs_bytes; /* sum of the inputs' sizes */
	uint32_t cores;	       /* whole cores the task may use */
	uint64_t mem_mb;       /* memory limit, MiB */
	uint64_t max_cpu_ns;   /* CPU budget: the task is stopped beyond it */
	uint64_t price;	       /* agreed base units per CPU-hour */
	uint64_t deadline_ms;  /* wall-clock limit, 0 = none */
	uint32_t replica;      /* replica index */
	char renter[128 + 1];  /* account charged, "" when not given */
	uint32_t pow_bits;     /* difficulty of the result's Proof-of-Work stamp */
};

/*
 * Validate a TASK_OFFER message (already checked against the wire schema) beyond
 * its types: task id alphabet, env syntax, input paths (relative, no "..", no
 * duplicates), sizes and difficulty.  -EINVAL with a reason in WHY (for
 * TASK_REJECT), -ENOMEM.
 */
int offer_parse(const cJSON *msg, char *why, size_t whylen, struct offer **ret_offer);
struct offer *offer_free(struct offer *o);

/* What already runs on the node, for the capacity rules. */
struct offer_load {
	uint32_t millicores; /* cores of accepted tasks, x1000 */
	uint64_t memory;     /* bytes of accepted tasks */
	uint32_t tasks;	     /* accepted tasks not yet finished */
};

/*
 * The accept/reject rules against the operator's configuration: inside the
 * windows (IN_WINDOW), max_tasks, cores and memory under the cap counting what
 * already runs.  0 accepts; -EAGAIN (try later: busy or outside the windows) or
 * -E2BIG (never fits this node) with the reason in WHY.
 */
int offer_check(const struct agent_config *cfg, const struct offer_load *load, bool in_window,
		const struct offer *o, char *why, size_t whylen);

/* Is P a safe relative path for a file below /work (no "..", ".", empty parts, control bytes)? */
bool offer_path_ok(const char *p);

#endif /* AICN_AGENT_OFFER_H */
