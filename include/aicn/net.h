/* net.h -- authenticated message connections: a server and a client framework over loop + TLS + frames. */
#ifndef AICN_NET_H
#define AICN_NET_H

#include <aicn/log.h>
#include <aicn/loop.h>
#include <aicn/proto.h>
#include <aicn/tls.h>

#include <stddef.h>
#include <stdint.h>

struct net_conn;
struct net_server;
struct net_client;

/* Bounds on what one peer can make us hold or do; 0 fields take the defaults. */
struct net_limits {
	uint32_t max_frame;    /* largest message (default 1 MiB) */
	unsigned handshake_ms; /* TCP + TLS + HELLO (+ REGISTER) within this (default 10 s) */
	unsigned idle_ms;      /* server: close after this long without a frame (default 120 s) */
	unsigned frame_ms;     /* a partly received frame older than this closes (default 30 s) */
	size_t sendq_max; /* bytes queued to a peer before it is dropped as a slow reader (4 MiB) */
	unsigned msg_rate;   /* frames per second per connection (token bucket, default 2000) */
	unsigned msg_burst;  /* bucket size (default 4000) */
	unsigned max_errors; /* bad messages tolerated before closing (default 16) */
};

/* Library code does not log: lines go to the caller's function (mains pass log_msg). */
typedef void (*net_log_fn)(void *ud, enum log_level level, const char *line);

/*
 * A handler for one message type.  It runs on the loop's thread with the
 * validated message (its tree is freed after the call; detach what you keep)
 * and replies itself with net_conn_ack() / net_conn_error() / net_conn_send().
 * A negative return sends ERROR "internal" referring to the message.  For work
 * on the loop's worker pool take net_conn_ref() and reply from the done callback.
 */
typedef int (*net_handler_fn)(struct net_conn *c, const struct proto_msg *m, void *ud);

/* ---- connections ---- */

/* The authenticated peer (role, node id, name, serial). */
const struct tls_peer *net_conn_peer(const struct net_conn *c);
/* "address:port" of the peer. */
const char *net_conn_addr(const struct net_conn *c);
int64_t net_conn_version(const struct net_conn *c);
/*
 * Send msg (a proto_new() object; "v" and "id" are set here, the id is
 * returned through ret_id when not NULL).  Sends made from inside a handler go
 * out together after the batch of received frames.  -ENOTCONN once closed,
 * -ENOBUFS when the peer does not read (the connection is then closed).
 */
int net_conn_send(struct net_conn *c, cJSON *msg, int64_t *ret_id);
/* ACK referring to message ref; seq < 0 leaves "seq" out. */
int net_conn_ack(struct net_conn *c, int64_t ref, int64_t seq);
/* ERROR {code, message, ref}; ref < 0 leaves "ref" out. */
int net_conn_error(struct net_conn *c, int64_t ref, const char *code, const char *message);
/* Close (after flushing what is queued); the on_close callback runs with reason. */
void net_conn_close(struct net_conn *c, const char *reason);
int net_conn_alive(const struct net_conn *c);
size_t net_conn_queued(const struct net_conn *c);
/* Keep c's memory valid across asynchronous work; unref may free it. */
struct net_conn *net_conn_ref(struct net_conn *c);
void net_conn_unref(struct net_conn *c);
void net_conn_set_data(struct net_conn *c, void *data);
void *net_conn_data(const struct net_conn *c);
/*
 * Send an already encoded frame (4-byte header + JSON), for relays and load
 * generators; the caller vouches for its "v" and "id".
 */
int net_conn_send_encoded(struct net_conn *c, const uint8_t *frame, size_t len);
/* Batch sends into one TLS record until uncork (done automatically inside handlers). */
void net_conn_cork(struct net_conn *c);
int net_conn_uncork(struct net_conn *c);

/* ---- server ---- */

struct net_server_config {
	struct tls_ctx *tls; /* a server context; its peer_roles say who may connect */
	int listen_fd;	     /* bound and listening (loop_tcp_listen()); owned from now on */
	unsigned max_conns;  /* beyond this new connections are refused (default 100000) */
	struct net_limits limits;
	const char *software; /* told to peers in HELLO */
	net_log_fn log;
	/* After HELLO: the peer is authenticated and speaks a common version. */
	void (*on_ready)(struct net_conn *c, void *ud);
	/* Once per connection that reached on_ready. */
	void (*on_close)(struct net_conn *c, const char *reason, void *ud);
	void *ud; /* for log, on_ready, on_close */
};

struct net_stats {
	uint64_t accepted, refused, ready, closed;
	uint64_t frames_in, frames_out, bad_frames;
	uint64_t conns; /* open now */
};

int net_server_new(struct loop *l, const struct net_server_config *cfg, struct net_server **ret);
/* Register the handler of a message type (before or after start). */
int net_server_handle(struct net_server *s, int type, net_handler_fn fn, void *ud);
/* Stop accepting and close every connection. */
struct net_server *net_server_free(struct net_server *s);
void net_server_stats(const struct net_server *s, struct net_stats *ret);

/* ---- client ---- */

struct net_client_config {
	struct tls_ctx *tls; /* a client context; peer_roles normally ROLE_COORDINATOR */
	const char *host;    /* resolved once, at net_client_new() */
	uint16_t port;
	unsigned backoff_min_ms; /* first retry delay (default 500 ms) */
	unsigned backoff_max_ms; /* cap (default 30 s); delays are jittered in [d/2, d] */
	struct net_limits limits;
	const char *software;
	net_log_fn log;
	/* Connected, HELLO done and, if set, REGISTER acknowledged: send freely. */
	void (*on_ready)(struct net_client *cl, struct net_conn *c, void *ud);
	/* A connection or an attempt ended (ready tells which); a reconnect is scheduled. */
	void (*on_down)(struct net_client *cl, const char *reason, int was_ready, void *ud);
	void *ud;
};

int net_client_new(struct loop *l, const struct net_client_config *cfg, struct net_client **ret);
int net_client_handle(struct net_client *cl, int type, net_handler_fn fn, void *ud);
/* A REGISTER message sent after every (re)connection before on_ready (copied). */
int net_client_set_register(struct net_client *cl, const cJSON *msg);
int net_client_start(struct net_client *cl);
/* The ready connection, or NULL. */
struct net_conn *net_client_conn(const struct net_client *cl);
int net_client_send(struct net_client *cl, cJSON *msg, int64_t *ret_id);
/* Connection attempts made so far (tests and metrics). */
uint64_t net_client_attempts(const struct net_client *cl);
struct net_client *net_client_free(struct net_client *cl);

#endif /* AICN_NET_H */
