/* frame.h -- wire framing: a 4-byte big-endian length, then that many bytes of canonical JSON. */
#ifndef AICN_FRAME_H
#define AICN_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define FRAME_HDR_LEN 4
#define FRAME_MAX_DEFAULT (1024 * 1024) /* 1 MiB per message */

/*
 * Incremental decoder.  Memory is bounded by the cap: the payload buffer is
 * allocated only once a header announced a length within it, and freed after
 * the frame was delivered.
 */
struct frame_dec {
	uint32_t max;		    /* largest payload accepted */
	uint8_t hdr[FRAME_HDR_LEN]; /* header bytes gathered so far */
	uint32_t hdr_have;
	uint32_t need;	     /* payload length announced by the header */
	uint32_t have;	     /* payload bytes gathered so far */
	char *buf;	     /* payload (need + 1 bytes, NUL-terminated for the parser) */
	uint64_t started_ms; /* when the frame in progress began (0: none) */
};

/* Called for each complete frame; payload is NUL-terminated.  A negative return stops feeding. */
typedef int (*frame_fn)(void *ud, char *payload, size_t len);

void frame_dec_init(struct frame_dec *d, uint32_t max);
void frame_dec_reset(struct frame_dec *d);
/*
 * Feed received bytes.  Returns 0, -EMSGSIZE for a length above the cap,
 * -EBADMSG for an empty frame, -ENOMEM, or the callback's negative return.
 * After an error the stream cannot be resynchronised: close the connection.
 * now_ms stamps the start of a partial frame (for slowloris timeouts).
 */
int frame_dec_feed(struct frame_dec *d, const uint8_t *data, size_t len, uint64_t now_ms,
		   frame_fn fn, void *ud);
/* True while a frame is partly received. */
int frame_dec_partial(const struct frame_dec *d);
/* Heap bytes held by the decoder. */
size_t frame_dec_mem(const struct frame_dec *d);

/* Write the header for a payload of len bytes (len must fit 32 bits). */
void frame_hdr(uint8_t hdr[FRAME_HDR_LEN], uint32_t len);

#endif /* AICN_FRAME_H */
