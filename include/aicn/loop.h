/* loop.h -- one io_uring event loop per thread: sockets, timers, signals, wake-ups, worker pool. */
#ifndef AICN_LOOP_H
#define AICN_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/*
 * Everything here runs on the thread that calls loop_run(), except loop_post()
 * and loop_pool_submit()'s work function.  Sockets receive through multishot
 * recv into a ring of provided buffers shared by every socket of the loop
 * (memory does not grow with the number of connections); listeners use
 * multishot accept; timers are kept in a heap and bound the io_uring wait;
 * signals arrive through a signalfd read by the ring; loop_post() wakes the
 * loop through an eventfd.  No epoll, poll, select or blocking socket call.
 */

struct loop;
struct loop_sock;
struct loop_listen;
struct loop_timer;
struct loop_pool;

struct loop_config {
	unsigned sq_entries; /* submission queue size (default 512) */
	unsigned buf_count;  /* provided receive buffers, a power of two (default 1024) */
	unsigned buf_size;   /* bytes per receive buffer (default 4096) */
};

/* cfg may be NULL for defaults. */
int loop_new(const struct loop_config *cfg, struct loop **ret);
/* Frees the loop and whatever sockets, listeners and timers are still open on it. */
struct loop *loop_free(struct loop *l);
/* Run until loop_stop(); returns 0, or a negative errno if the ring failed. */
int loop_run(struct loop *l);
void loop_stop(struct loop *l);
/* CLOCK_MONOTONIC in milliseconds, refreshed once per loop iteration. */
uint64_t loop_now_ms(const struct loop *l);

/* Timers: one-shot; re-arm from the callback for periodic work. */
typedef void (*loop_timer_fn)(struct loop_timer *t, void *ud);
int loop_timer_new(struct loop *l, loop_timer_fn fn, void *ud, struct loop_timer **ret);
void loop_timer_arm(struct loop_timer *t, uint64_t after_ms);
void loop_timer_disarm(struct loop_timer *t);
struct loop_timer *loop_timer_free(struct loop_timer *t);

/*
 * Deliver signo through the loop: the signal is blocked in the calling thread
 * (call this before starting other threads, so they inherit the mask).
 */
typedef void (*loop_signal_fn)(int signo, void *ud);
int loop_signal(struct loop *l, int signo, loop_signal_fn fn, void *ud);

/* Run fn(ud) on the loop's thread soon; safe from any thread. */
typedef void (*loop_post_fn)(void *ud);
int loop_post(struct loop *l, loop_post_fn fn, void *ud);

/*
 * Worker pool for CPU-heavy work (signature checks, database commits): work(ud)
 * runs on a worker thread, then done(ud) runs on the loop's thread.
 */
int loop_pool_new(struct loop *l, unsigned threads, struct loop_pool **ret);
/* Waits for queued work to finish; done callbacks not yet run are dropped. */
struct loop_pool *loop_pool_free(struct loop_pool *p);
int loop_pool_submit(struct loop_pool *p, void (*work)(void *ud), void (*done)(void *ud), void *ud);

/* Sockets (stream).  Callbacks never run after loop_sock_close(). */
struct loop_sock_ops {
	/* Connected (err 0) or failed (negative errno); only for loop_sock_connect(). */
	void (*on_connect)(struct loop_sock *s, int err, void *ud);
	/* Received bytes; the buffer is only valid during the call. */
	void (*on_data)(struct loop_sock *s, const uint8_t *data, size_t len, void *ud);
	/* Peer closed (0) or the socket failed (negative errno); called at most once. */
	void (*on_close)(struct loop_sock *s, int err, void *ud);
};

/* Adopt a connected socket fd (closed by the loop from now on) and start receiving. */
int loop_sock_new(struct loop *l, int fd, const struct loop_sock_ops *ops, void *ud,
		  struct loop_sock **ret);
/* Connect to sa asynchronously; receiving starts once connected. */
int loop_sock_connect(struct loop *l, const struct sockaddr *sa, socklen_t salen,
		      const struct loop_sock_ops *ops, void *ud, struct loop_sock **ret);
/* Queue bytes to send (copied); sends complete in order.  -EPIPE once failed or closed. */
int loop_sock_send(struct loop_sock *s, const void *data, size_t len);
/* Bytes queued and not yet sent. */
size_t loop_sock_queued(const struct loop_sock *s);
/* Heap bytes this socket holds now (queue chunks and bookkeeping). */
size_t loop_sock_mem(const struct loop_sock *s);
/* The socket's fd; -1 for a direct descriptor. */
int loop_sock_fd(const struct loop_sock *s);
/* Stop callbacks, cancel pending I/O, close the fd; memory is released once the kernel is done. */
void loop_sock_close(struct loop_sock *s);
/* Close after the send queue drained (or failed); no more callbacks either way. */
void loop_sock_close_after_send(struct loop_sock *s);

/*
 * Listeners: multishot accept on a bound, listening fd (owned by the listener).
 * fn gets each accepted fd (SOCK_CLOEXEC), or a negative errno when accept failed
 * (for example -EMFILE); accepting resumes by itself after a failure.
 */
typedef void (*loop_accept_fn)(int fd, void *ud);
int loop_listen_new(struct loop *l, int fd, loop_accept_fn fn, void *ud, struct loop_listen **ret);

/*
 * An accepted connection for loop_listen_new_conn(): an io_uring direct descriptor
 * (a slot in the ring's registered file table, not in the process's fd table, so
 * RLIMIT_NOFILE does not bound how many a server holds besides its other files) or a
 * plain fd once the table is full or on kernels without direct accept.
 */
struct loop_conn {
	int fd;			      /* plain fd, or the slot when direct */
	bool direct;		      /* only loop_sock_adopt()/loop_conn_close() can use it */
	struct sockaddr_storage peer; /* the peer's address */
	socklen_t peer_len;
};
#define LOOP_FIXED_MAX 1048576 /* slots at most (the kernel's own cap) */
/*
 * Listener handing out loop_conns (a, err 0), or (NULL, negative errno) when accept
 * failed; sets TCP_NODELAY on fd so accepted sockets inherit it.  The file table is
 * registered on first use, as large as RLIMIT_NOFILE's soft limit at that time.
 */
typedef void (*loop_accept_conn_fn)(const struct loop_conn *a, int err, void *ud);
int loop_listen_new_conn(struct loop *l, int fd, loop_accept_conn_fn fn, void *ud,
			 struct loop_listen **ret);
/* Adopt an accepted connection like loop_sock_new(); the loop closes it from now on. */
int loop_sock_adopt(struct loop *l, const struct loop_conn *a, const struct loop_sock_ops *ops,
		    void *ud, struct loop_sock **ret);
/* Close an accepted connection not adopted. */
void loop_conn_close(struct loop *l, const struct loop_conn *a);
struct loop_listen *loop_listen_free(struct loop_listen *ls);

/* Helper: a TCP socket bound to addr:port (port 0 = any) and listening; returns the fd. */
int loop_tcp_listen(const char *addr, uint16_t port, int backlog, uint16_t *ret_port);

#endif /* AICN_LOOP_H */
