/* outbox.h -- the agent's durable outbox: signed usage records kept on disk until the coordinator ACKs them. */
#ifndef AICN_OUTBOX_H
#define AICN_OUTBOX_H

#include <aicn/net.h>

#include <stddef.h>
#include <stdint.h>

/*
 * Exactly-once delivery, the agent's half: outbox_put() returns only once the
 * record is on disk (file written, fsync'd, renamed, directory fsync'd), so a
 * kill -9 right after loses nothing.  Every pending record is (re)sent after
 * each (re)connection and removed only when an ACK carries its sequence; the
 * coordinator dedups by (node id, seq), so a record resent after a crash on
 * either side is counted once.  One file per record: DIR/<seq, 20 digits>.rec.
 */

#define OUTBOX_WINDOW 64	       /* records in flight on one connection */
#define OUTBOX_MAX_RECORD (256 * 1024) /* bytes of one record */

struct outbox;

/* Open (creating, mode 0700) the outbox directory; leftovers of interrupted puts are removed. */
int outbox_open(const char *dir, size_t max_pending, struct outbox **ret);
struct outbox *outbox_free(struct outbox *o);

/*
 * Persist record (a JSON object, canonical text) under seq.  -EEXIST when seq is
 * pending already, -ENOSPC beyond max_pending, -EINVAL for a record that is not
 * a JSON object or is too large.  Call outbox_pump() afterwards to send it.
 */
int outbox_put(struct outbox *o, uint64_t seq, const char *record, size_t len);
/* Forget seq (the coordinator has it).  0 also when it was not pending. */
int outbox_ack(struct outbox *o, uint64_t seq);
size_t outbox_pending(const struct outbox *o);
/* 1 while seq is pending (not yet acknowledged), 0 otherwise. */
int outbox_has(const struct outbox *o, uint64_t seq);
/* Called with each sequence the coordinator acknowledged (after it left the outbox). */
void outbox_on_acked(struct outbox *o, void (*fn)(uint64_t seq, void *ud), void *ud);
/* Lowest pending sequence, or 0 when empty. */
uint64_t outbox_first(const struct outbox *o);
/* Records found unreadable and set aside as DIR/<seq>.bad. */
size_t outbox_bad(const struct outbox *o);

/*
 * Wiring to the client framework: outbox_bind() registers the ACK handler on
 * cl (it forwards ACKs that are not for records to next, if given); call
 * outbox_on_ready() from the client's on_ready, which resends everything
 * pending; outbox_pump() sends what fits in the window.
 */
int outbox_bind(struct outbox *o, struct net_client *cl, net_handler_fn next, void *next_ud);
void outbox_on_ready(struct outbox *o, struct net_conn *c);
int outbox_pump(struct outbox *o, struct net_conn *c);

#endif /* AICN_OUTBOX_H */
