/* meterlog_int.h -- what the meter log's writer, verifier and prover share inside libaicn. */
#ifndef AICN_METERLOG_INT_H
#define AICN_METERLOG_INT_H

#include <aicn/meterlog.h>

/* Checkpoint lines start with this (sorted keys: "note" < "type"); records never do. */
#define ML_CP_PREFIX "{\"note\":\""

int ml_is_checkpoint_line(const char *line, size_t len);
/* {"note":"...","type":"checkpoint"} <-> the note text; *ret_note is malloc'd. */
int ml_format_checkpoint_line(const char *note, char **ret_line, size_t *ret_len);
int ml_parse_checkpoint_line(const char *line, size_t len, char **ret_note, size_t *ret_note_len,
			     const char **ret_err);
/* c_i = SHA-256(c_(i-1) || line). */
void ml_chain_next(const uint8_t prev[SHA256_LEN], const char *line, size_t len,
		   uint8_t ret[SHA256_LEN]);
/* The log's origin for a node id. */
void ml_origin(const char *node_id, char ret[CHECKPOINT_ORIGIN_MAX + 1]);

#endif /* AICN_METERLOG_INT_H */
