/* front.h -- the coordinator's network front: message handlers, watchers, blob transfer, offers, the periodic tick. */
#ifndef AICN_COORD_FRONT_H
#define AICN_COORD_FRONT_H

#include "task.h"

#include <aicn/log.h>
#include <aicn/loop.h>
#include <aicn/tls.h>

#include <stdint.h>

/*
 * The front owns the net_server and turns messages into coord_* calls.  Every
 * reply, offer and cancel of a loop iteration is queued and goes out only after
 * one round: schedule -> settle ended tasks -> coord_flush() -> send.  So
 * nobody is ever told of something a crash could lose (docs/coordinator.md).
 */

struct front;

struct front_config {
	struct loop *loop;
	struct tls_ctx *tls;	   /* server context; peer roles agent, renter, auditor */
	int listen_fd;		   /* bound and listening; owned from now on */
	unsigned max_conns;	   /* connections before new ones are refused */
	unsigned tick_ms;	   /* periodic scheduling and housekeeping */
	int64_t blob_retention;	   /* s an uploaded blob is kept */
	int64_t result_grace;	   /* s a result blob is kept after the renter fetched it */
	unsigned sched_max;	   /* placements per pass */
	int64_t heartbeat_timeout; /* s of silence before a node is lost (as in coord_params) */
	struct coord *coord;
	struct pay *pay; /* settlement, NULL = none (tests of the core only) */
	void (*log)(void *ud, enum log_level level, const char *line);
	void *log_ud;
};

int front_new(const struct front_config *cfg, struct front **ret);
/* Closes every connection (flushing what is committed). Accepts NULL. */
struct front *front_free(struct front *f);
/* A fatal error (the store could not commit): the main must exit, restart recovers. */
int front_fatal(const struct front *f);

#endif /* AICN_COORD_FRONT_H */
