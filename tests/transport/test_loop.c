/* test_loop.c -- the io_uring loop: timers, wake-ups from threads, the worker pool, signals, sockets. */
#include <aicn/loop.h>

#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

static struct loop *new_loop(void)
{
	struct loop *l = NULL;
	struct loop_config cfg = {.buf_count = 64, .buf_size = 1024};

	if (loop_new(&cfg, &l) < 0)
		return NULL;
	return l;
}

struct timer_log {
	struct loop *l;
	int order[4];
	int n;
};

struct tctx {
	struct timer_log *log;
	int id;
};

static void timer_fired(struct loop_timer *t, void *ud)
{
	struct tctx *c = ud;

	(void)t;
	c->log->order[c->log->n++] = c->id;
	if (c->log->n == 3)
		loop_stop(c->log->l);
}

static void timers_fire_in_order(void)
{
	struct loop *l = new_loop();
	struct timer_log log = {.l = l};
	struct tctx c[4] = {{&log, 0}, {&log, 1}, {&log, 2}, {&log, 3}};
	struct loop_timer *t[4];
	struct timespec a, b;

	CHECK(l);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(loop_timer_new(l, timer_fired, &c[i], &t[i]), 0);
	loop_timer_arm(t[0], 30);
	loop_timer_arm(t[1], 10);
	loop_timer_arm(t[2], 20);
	loop_timer_arm(t[3], 15);
	loop_timer_disarm(t[3]);
	clock_gettime(CLOCK_MONOTONIC, &a);
	CHECK_EQ(loop_run(l), 0);
	clock_gettime(CLOCK_MONOTONIC, &b);
	CHECK_EQ(log.n, 3);
	CHECK_EQ(log.order[0], 1);
	CHECK_EQ(log.order[1], 2);
	CHECK_EQ(log.order[2], 0);
	CHECK((b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000 >= 29);
	loop_timer_free(t[0]);
	loop_free(l); /* frees the other timers */
}

struct post_ctx {
	struct loop *l;
	int count;
	pthread_t self;
	int wrong_thread;
};

static void posted(void *ud)
{
	struct post_ctx *p = ud;

	if (!pthread_equal(pthread_self(), p->self))
		p->wrong_thread++;
	if (++p->count == 1000)
		loop_stop(p->l);
}

static void *poster(void *ud)
{
	struct post_ctx *p = ud;

	for (int i = 0; i < 500; i++)
		loop_post(p->l, posted, p);
	return NULL;
}

static void posts_from_threads(void)
{
	struct post_ctx p = {.l = new_loop(), .self = pthread_self()};
	pthread_t th[2];

	CHECK(p.l);
	pthread_create(&th[0], NULL, poster, &p);
	pthread_create(&th[1], NULL, poster, &p);
	CHECK_EQ(loop_run(p.l), 0);
	pthread_join(th[0], NULL);
	pthread_join(th[1], NULL);
	CHECK_EQ(p.count, 1000);
	CHECK_EQ(p.wrong_thread, 0);
	loop_free(p.l);
}

struct job {
	struct loop *l;
	pthread_t loop_thread;
	int worked_off_loop, done_on_loop;
	int *remaining;
};

static void job_work(void *ud)
{
	struct job *j = ud;

	j->worked_off_loop = !pthread_equal(pthread_self(), j->loop_thread);
}

static void job_done(void *ud)
{
	struct job *j = ud;

	j->done_on_loop = pthread_equal(pthread_self(), j->loop_thread);
	if (--*j->remaining == 0)
		loop_stop(j->l);
}

static void pool_posts_back(void)
{
	struct loop *l = new_loop();
	struct loop_pool *p = NULL;
	struct job jobs[50];
	int remaining = 50;

	CHECK(l);
	CHECK_EQ(loop_pool_new(l, 2, &p), 0);
	for (int i = 0; i < 50; i++) {
		jobs[i] = (struct job){
			.l = l, .loop_thread = pthread_self(), .remaining = &remaining};
		CHECK_EQ(loop_pool_submit(p, job_work, job_done, &jobs[i]), 0);
	}
	CHECK_EQ(loop_run(l), 0);
	for (int i = 0; i < 50; i++) {
		CHECK(jobs[i].worked_off_loop);
		CHECK(jobs[i].done_on_loop);
	}
	loop_pool_free(p);
	loop_free(l);
}

static int got_signo;

static void on_sig(int signo, void *ud)
{
	got_signo = signo;
	loop_stop(ud);
}

static void signals_through_signalfd(void)
{
	struct loop *l = new_loop();

	CHECK(l);
	CHECK_EQ(loop_signal(l, SIGUSR1, on_sig, l), 0);
	kill(getpid(), SIGUSR1);
	CHECK_EQ(loop_run(l), 0);
	CHECK_EQ(got_signo, SIGUSR1);
	loop_free(l);
}

/* A listener, a connecting client and an echo server moving 4 MiB through a 64 KiB buffer ring. */
struct echo {
	struct loop *l;
	struct loop_sock *srv, *cli;
	size_t sent, received;
	uint8_t expect;
	int bad, connected, closed;
};

static void echo_srv_data(struct loop_sock *s, const uint8_t *data, size_t len, void *ud)
{
	(void)ud;
	loop_sock_send(s, data, len);
}

static void echo_srv_close(struct loop_sock *s, int err, void *ud)
{
	struct echo *e = ud;

	(void)err;
	e->closed++;
	loop_sock_close(s);
	e->srv = NULL;
}

static const struct loop_sock_ops srv_ops = {
	.on_data = echo_srv_data,
	.on_close = echo_srv_close,
};

static void echo_accept(int fd, void *ud)
{
	struct echo *e = ud;

	if (fd >= 0)
		loop_sock_new(e->l, fd, &srv_ops, e, &e->srv);
}

static void cli_connected(struct loop_sock *s, int err, void *ud)
{
	struct echo *e = ud;
	static uint8_t chunk[65536];

	if (err) {
		e->bad++;
		loop_stop(e->l);
		return;
	}
	e->connected = 1;
	for (int i = 0; i < 64; i++) {
		for (size_t k = 0; k < sizeof(chunk); k++)
			chunk[k] = (uint8_t)(e->sent + k);
		loop_sock_send(s, chunk, sizeof(chunk));
		e->sent += sizeof(chunk);
	}
}

static void cli_data(struct loop_sock *s, const uint8_t *data, size_t len, void *ud)
{
	struct echo *e = ud;

	(void)s;
	for (size_t i = 0; i < len; i++)
		if (data[i] != (uint8_t)(e->received + i))
			e->bad++;
	e->received += len;
	if (e->received == e->sent)
		loop_stop(e->l);
}

static void cli_close(struct loop_sock *s, int err, void *ud)
{
	struct echo *e = ud;

	(void)s;
	(void)err;
	e->bad++;
	loop_stop(e->l);
}

static const struct loop_sock_ops cli_ops = {
	.on_connect = cli_connected,
	.on_data = cli_data,
	.on_close = cli_close,
};

static void sockets_echo(void)
{
	struct echo e = {.l = new_loop()};
	struct loop_listen *ls = NULL;
	struct sockaddr_in sa = {.sin_family = AF_INET};
	uint16_t port = 0;
	int fd;

	CHECK(e.l);
	fd = loop_tcp_listen("127.0.0.1", 0, 16, &port);
	CHECK(fd >= 0);
	CHECK(port != 0);
	CHECK_EQ(loop_listen_new(e.l, fd, echo_accept, &e, &ls), 0);
	sa.sin_port = htons(port);
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	CHECK_EQ(loop_sock_connect(e.l, (struct sockaddr *)&sa, sizeof(sa), &cli_ops, &e, &e.cli),
		 0);
	CHECK_EQ(loop_run(e.l), 0);
	CHECK(e.connected);
	CHECK_EQ(e.bad, 0);
	CHECK_EQ(e.received, 64 * 65536);
	CHECK_EQ(loop_sock_queued(e.cli), 0);
	/* closing with receives armed and a listener pending must not leak (SAN) or crash */
	loop_sock_close(e.cli);
	loop_listen_free(ls);
	loop_free(e.l);
}

static void connect_refused(void)
{
	struct echo e = {.l = new_loop()};
	struct sockaddr_in sa = {.sin_family = AF_INET};
	uint16_t port = 0;
	int fd;

	CHECK(e.l);
	fd = loop_tcp_listen("127.0.0.1", 0, 1, &port);
	CHECK(fd >= 0);
	close(fd); /* nobody listens there now */
	sa.sin_port = htons(port);
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	CHECK_EQ(loop_sock_connect(e.l, (struct sockaddr *)&sa, sizeof(sa), &cli_ops, &e, &e.cli),
		 0);
	CHECK_EQ(loop_run(e.l), 0);
	CHECK_EQ(e.bad, 1);
	CHECK(!e.connected);
	CHECK_EQ(loop_sock_send(e.cli, "x", 1), -EPIPE);
	loop_sock_close(e.cli);
	loop_free(e.l);
}

/* After loop_sock_close_after_send() a socket delivers nothing more, flushes, then closes. */
struct drain {
	struct loop *l;
	int server_calls, after_close_calls, client_eof;
	size_t client_got;
};

static void drain_srv_data(struct loop_sock *s, const uint8_t *data, size_t len, void *ud)
{
	struct drain *d = ud;

	(void)data;
	(void)len;
	if (d->server_calls++ > 0) {
		d->after_close_calls++;
		return;
	}
	loop_sock_send(s, "bye", 3);
	loop_sock_close_after_send(s);
}

static const struct loop_sock_ops drain_srv_ops = {.on_data = drain_srv_data};

static void drain_accept(int fd, void *ud)
{
	struct drain *d = ud;
	struct loop_sock *s;

	if (fd >= 0)
		loop_sock_new(d->l, fd, &drain_srv_ops, d, &s);
}

static void drain_cli_connected(struct loop_sock *s, int err, void *ud)
{
	static uint8_t junk[256 * 1024];

	(void)err;
	(void)ud;
	loop_sock_send(s, junk, sizeof(junk));
}

static void drain_cli_data(struct loop_sock *s, const uint8_t *data, size_t len, void *ud)
{
	struct drain *d = ud;

	(void)s;
	(void)data;
	d->client_got += len;
}

static void drain_cli_close(struct loop_sock *s, int err, void *ud)
{
	struct drain *d = ud;

	(void)err;
	d->client_eof = 1;
	loop_sock_close(s);
	loop_stop(d->l);
}

static const struct loop_sock_ops drain_cli_ops = {
	.on_connect = drain_cli_connected,
	.on_data = drain_cli_data,
	.on_close = drain_cli_close,
};

static void close_after_send_is_quiet(void)
{
	struct drain d = {.l = new_loop()};
	struct loop_listen *ls = NULL;
	struct loop_sock *cli = NULL;
	struct sockaddr_in sa = {.sin_family = AF_INET};
	uint16_t port = 0;
	int fd;

	CHECK(d.l);
	fd = loop_tcp_listen("127.0.0.1", 0, 16, &port);
	CHECK(fd >= 0);
	CHECK_EQ(loop_listen_new(d.l, fd, drain_accept, &d, &ls), 0);
	sa.sin_port = htons(port);
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	CHECK_EQ(loop_sock_connect(d.l, (struct sockaddr *)&sa, sizeof(sa), &drain_cli_ops, &d,
				   &cli),
		 0);
	CHECK_EQ(loop_run(d.l), 0);
	CHECK_EQ(d.server_calls, 1);
	CHECK_EQ(d.after_close_calls, 0);
	CHECK_EQ(d.client_got, 3);
	CHECK(d.client_eof);
	loop_listen_free(ls);
	loop_free(d.l);
}

/*
 * Accepted connections as io_uring direct descriptors: a 64-slot table (RLIMIT_NOFILE's
 * soft limit when the listener starts), 100 clients: 64 direct, then plain fds once the
 * table is full, every one echoing with its peer address; closed slots are reused.
 */
#define DIRECT_CLIENTS 100
struct direct {
	struct loop *l;
	struct loop_sock *cli[DIRECT_CLIENTS];
	size_t got[DIRECT_CLIENTS];
	int direct, plain, bad_addr, done, srv_closed, want_closed;
};

static void direct_srv_data(struct loop_sock *s, const uint8_t *data, size_t len, void *ud)
{
	(void)ud;
	loop_sock_send(s, data, len);
}

static void direct_srv_close(struct loop_sock *s, int err, void *ud)
{
	struct direct *d = ud;

	(void)err;
	loop_sock_close(s);
	if (++d->srv_closed == d->want_closed)
		loop_stop(d->l);
}

static const struct loop_sock_ops direct_srv_ops = {
	.on_data = direct_srv_data,
	.on_close = direct_srv_close,
};

static void direct_accept(const struct loop_conn *a, int err, void *ud)
{
	struct direct *d = ud;
	const struct sockaddr_in *sin = (const struct sockaddr_in *)&a->peer;
	struct loop_sock *s;

	if (err < 0)
		return;
	if (a->direct)
		d->direct++;
	else
		d->plain++;
	if (a->peer_len != sizeof(*sin) || sin->sin_family != AF_INET || !sin->sin_port ||
	    sin->sin_addr.s_addr != htonl(INADDR_LOOPBACK))
		d->bad_addr++;
	if (loop_sock_adopt(d->l, a, &direct_srv_ops, d, &s) < 0)
		loop_conn_close(d->l, a);
}

static void direct_cli_connected(struct loop_sock *s, int err, void *ud)
{
	(void)ud;
	if (!err)
		loop_sock_send(s, "0123456789", 10);
}

static void direct_cli_data(struct loop_sock *s, const uint8_t *data, size_t len, void *ud)
{
	struct direct *d = ud;

	(void)data;
	for (int i = 0; i < DIRECT_CLIENTS; i++)
		if (d->cli[i] == s && (d->got[i] += len) == 10 && ++d->done == d->want_closed)
			loop_stop(d->l);
}

static void direct_cli_close(struct loop_sock *s, int err, void *ud)
{
	(void)s;
	(void)err;
	(void)ud;
}

static const struct loop_sock_ops direct_cli_ops = {
	.on_connect = direct_cli_connected,
	.on_data = direct_cli_data,
	.on_close = direct_cli_close,
};

static void direct_round(struct direct *d, const struct sockaddr_in *sa, int n)
{
	memset(d->got, 0, sizeof(d->got));
	d->done = d->srv_closed = 0;
	d->want_closed = n;
	for (int i = 0; i < n; i++)
		CHECK_EQ(loop_sock_connect(d->l, (const struct sockaddr *)sa, sizeof(*sa),
					   &direct_cli_ops, d, &d->cli[i]),
			 0);
	CHECK_EQ(loop_run(d->l), 0);
	CHECK_EQ(d->done, n);
	for (int i = 0; i < n; i++)
		loop_sock_close(d->cli[i]);
	CHECK_EQ(loop_run(d->l), 0); /* until every server side saw its peer go */
	CHECK_EQ(d->srv_closed, n);
}

static void direct_settled(struct loop_timer *t, void *ud)
{
	struct direct *d = ud;

	(void)t;
	loop_stop(d->l);
}

static void direct_accept_table(void)
{
	struct direct d = {.l = new_loop()};
	struct loop_timer *t = NULL;
	struct loop_listen *ls = NULL;
	struct sockaddr_in sa = {.sin_family = AF_INET};
	struct rlimit rl, small;
	uint16_t port = 0;
	int fd;

	CHECK(d.l);
	fd = loop_tcp_listen("127.0.0.1", 0, 256, &port);
	CHECK(fd >= 0);
	CHECK_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
	small = rl;
	small.rlim_cur = 64;
	CHECK_EQ(setrlimit(RLIMIT_NOFILE, &small), 0);
	CHECK_EQ(loop_listen_new_conn(d.l, fd, direct_accept, &d, &ls), 0);
	CHECK_EQ(setrlimit(RLIMIT_NOFILE, &rl), 0);
	sa.sin_port = htons(port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	direct_round(&d, &sa, DIRECT_CLIENTS);
	CHECK_EQ(d.direct, 64);
	CHECK_EQ(d.plain, DIRECT_CLIENTS - 64);
	CHECK_EQ(d.bad_addr, 0);
	/* let the kernel finish with the closed sockets: every slot is free again */
	CHECK_EQ(loop_timer_new(d.l, direct_settled, &d, &t), 0);
	loop_timer_arm(t, 50);
	CHECK_EQ(loop_run(d.l), 0);
	loop_timer_free(t);
	/* the accept armed while the table was full is a plain one, the next are direct */
	d.direct = d.plain = 0;
	direct_round(&d, &sa, 10);
	CHECK_EQ(d.plain, 1);
	CHECK_EQ(d.direct, 9);
	loop_listen_free(ls);
	loop_free(d.l);
}

int main(void)
{
	static const struct test_case cases[] = {
		TEST(timers_fire_in_order),	 TEST(posts_from_threads),  TEST(pool_posts_back),
		TEST(signals_through_signalfd),	 TEST(sockets_echo),	    TEST(connect_refused),
		TEST(close_after_send_is_quiet), TEST(direct_accept_table), {NULL, NULL},
	};
	return harness_run(cases);
}
