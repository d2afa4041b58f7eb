/* loop.c -- the io_uring event loop: provided-buffer ring, multishot accept/recv, timers, signals, wake-ups. */
#include <aicn/compiler.h>
#include <aicn/loop.h>

#include <arpa/inet.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <time.h>

#define BUF_GROUP 0
#define SEND_IOV_MAX 8
#define CHUNK_MIN 4096
#define CHUNK_MAX (64 * 1024)
#define ACCEPT_RETRY_MS 100
#define LINGER_MS 5000
#define CQE_BATCH 4096

enum op_kind {
	OP_NONE = 0, /* completions we ignore (cancels) */
	OP_ACCEPT,
	OP_RECV,
	OP_SEND,
	OP_CONNECT,
	OP_SIGNAL,
	OP_WAKE,
};

/* Every submission's user_data points at one of these, embedded in its owner. */
struct loop_op {
	uint8_t kind;
};

struct post_item {
	struct post_item *next;
	loop_post_fn fn;
	void *ud;
};

struct chunk {
	struct chunk *next;
	uint32_t len; /* bytes written into data */
	uint32_t off; /* bytes already sent */
	uint32_t cap;
	uint8_t data[];
};

struct loop_sock {
	struct loop *l;
	int fd;	     /* or the slot in the ring's file table when direct */
	bool direct; /* an io_uring direct descriptor: no entry in the process's fd table */
	const struct loop_sock_ops *ops;
	void *ud;
	struct loop_op recv_op, send_op, conn_op;
	unsigned refs; /* operations in the kernel + callbacks running */
	bool recv_armed, send_busy, connecting;
	bool closed; /* the owner let go: no more callbacks */
	bool failed; /* on_close was called */
	bool close_after_send;
	bool quiet; /* closing after the send queue drains: no more callbacks, no receives */
	struct loop_timer *linger; /* bounds how long a draining socket may wait for its peer */
	struct chunk *head, *tail;
	size_t queued;
	struct msghdr msg;
	struct iovec iov[SEND_IOV_MAX];
	struct sockaddr_storage *peer; /* connect target, only while connecting */
	struct loop_sock *prev, *next;
};

struct loop_listen {
	struct loop *l;
	int fd;
	loop_accept_fn fn;
	loop_accept_conn_fn conn_fn; /* instead of fn: one accept at a time, direct when possible */
	void *ud;
	struct loop_op op;
	unsigned refs;
	bool armed, closed;
	bool armed_direct;	      /* the accept in flight allocates a direct descriptor */
	struct sockaddr_storage addr; /* its peer address */
	socklen_t addrlen;
	struct loop_timer *retry;
	struct loop_listen *prev, *next;
};

struct loop_timer {
	struct loop *l;
	loop_timer_fn fn;
	void *ud;
	uint64_t when;
	long idx; /* position in the heap, -1 when not armed */
	struct loop_timer *prev, *next;
};

struct sig_handler {
	loop_signal_fn fn;
	void *ud;
};

struct loop {
	struct io_uring ring;
	bool ring_ok;
	bool stop;
	/* registered file table for direct descriptors (nfixed 0: none, or the kernel has none) */
	bool fixed_tried;
	bool fixed_full; /* a direct accept found no free slot; reset when one frees */
	unsigned nfixed;
	uint64_t now;
	/* provided buffers */
	struct io_uring_buf_ring *br;
	size_t br_len;
	uint8_t *bufs;
	size_t bufs_len;
	unsigned buf_count, buf_size;
	/* timers */
	struct loop_timer **heap;
	size_t nheap, heap_cap;
	struct loop_timer *timers;
	/* sockets and listeners, for teardown */
	struct loop_sock *socks;
	struct loop_listen *listens;
	/* signals */
	int sigfd;
	sigset_t sigmask;
	struct loop_op sig_op;
	struct signalfd_siginfo siginfo;
	struct sig_handler sigs[_NSIG];
	/* cross-thread wake-ups */
	int wakefd;
	struct loop_op wake_op;
	uint64_t wake_val;
	unsigned fixed_used; /* slots in use: a full table fails the accept and drops it */
	bool wake_armed;
	pthread_mutex_t post_lock;
	struct post_item *post_head, *post_tail;
};

struct loop_pool {
	struct loop *l;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct pool_job *head, *tail;
	bool stop;
	unsigned nthreads;
	pthread_t threads[];
};

/* A job is a post item (first member) that becomes its own completion. */
struct pool_job {
	struct post_item item;
	struct pool_job *next;
	void (*work)(void *ud);
};

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static struct io_uring_sqe *get_sqe(struct loop *l)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&l->ring);

	if (!sqe) {
		io_uring_submit(&l->ring);
		sqe = io_uring_get_sqe(&l->ring);
	}
	return sqe;
}

static void cancel_op(struct loop *l, struct loop_op *op)
{
	struct io_uring_sqe *sqe = get_sqe(l);

	if (!sqe)
		return;
	io_uring_prep_cancel(sqe, op, 0);
	io_uring_sqe_set_data(sqe, NULL);
}

/* ---- provided buffers ---- */

static void buf_recycle(struct loop *l, unsigned bid)
{
	io_uring_buf_ring_add(l->br, l->bufs + (size_t)bid * l->buf_size, l->buf_size,
			      (unsigned short)bid, io_uring_buf_ring_mask(l->buf_count), 0);
	io_uring_buf_ring_advance(l->br, 1);
}

/* liburing 2.3 has no io_uring_setup_buf_ring(): map the ring and register it by hand. */
static int bufs_setup(struct loop *l)
{
	struct io_uring_buf_reg reg = {0};
	long page = sysconf(_SC_PAGESIZE);
	int r;

	l->br_len = (size_t)l->buf_count * sizeof(struct io_uring_buf);
	l->br_len = (l->br_len + (size_t)page - 1) & ~((size_t)page - 1);
	l->br = mmap(NULL, l->br_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (l->br == MAP_FAILED) {
		l->br = NULL;
		return -errno;
	}
	l->bufs_len = (size_t)l->buf_count * l->buf_size;
	l->bufs =
		mmap(NULL, l->bufs_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (l->bufs == MAP_FAILED) {
		l->bufs = NULL;
		return -errno;
	}
	reg.ring_addr = (uint64_t)(uintptr_t)l->br;
	reg.ring_entries = l->buf_count;
	reg.bgid = BUF_GROUP;
	r = io_uring_register_buf_ring(&l->ring, &reg, 0);
	if (r < 0)
		return r;
	io_uring_buf_ring_init(l->br);
	for (unsigned i = 0; i < l->buf_count; i++)
		io_uring_buf_ring_add(l->br, l->bufs + (size_t)i * l->buf_size, l->buf_size,
				      (unsigned short)i, io_uring_buf_ring_mask(l->buf_count),
				      (int)i);
	io_uring_buf_ring_advance(l->br, (int)l->buf_count);
	return 0;
}

/* ---- timers (binary min-heap on deadline) ---- */

static void heap_swap(struct loop *l, size_t a, size_t b)
{
	struct loop_timer *t = l->heap[a];

	l->heap[a] = l->heap[b];
	l->heap[b] = t;
	l->heap[a]->idx = (long)a;
	l->heap[b]->idx = (long)b;
}

static void heap_up(struct loop *l, size_t i)
{
	while (i > 0) {
		size_t p = (i - 1) / 2;

		if (l->heap[p]->when <= l->heap[i]->when)
			break;
		heap_swap(l, p, i);
		i = p;
	}
}

static void heap_down(struct loop *l, size_t i)
{
	for (;;) {
		size_t c = 2 * i + 1, m = i;

		if (c < l->nheap && l->heap[c]->when < l->heap[m]->when)
			m = c;
		if (c + 1 < l->nheap && l->heap[c + 1]->when < l->heap[m]->when)
			m = c + 1;
		if (m == i)
			break;
		heap_swap(l, i, m);
		i = m;
	}
}

static void heap_remove(struct loop *l, struct loop_timer *t)
{
	size_t i = (size_t)t->idx;

	t->idx = -1;
	l->nheap--;
	if (i == l->nheap)
		return;
	l->heap[i] = l->heap[l->nheap];
	l->heap[i]->idx = (long)i;
	heap_down(l, i);
	heap_up(l, i);
}

int loop_timer_new(struct loop *l, loop_timer_fn fn, void *ud, struct loop_timer **ret)
{
	struct loop_timer *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	t->l = l;
	t->fn = fn;
	t->ud = ud;
	t->idx = -1;
	t->next = l->timers;
	if (l->timers)
		l->timers->prev = t;
	l->timers = t;
	*ret = t;
	return 0;
}

void loop_timer_arm(struct loop_timer *t, uint64_t after_ms)
{
	struct loop *l = t->l;

	if (t->idx >= 0)
		heap_remove(l, t);
	if (l->nheap == l->heap_cap) {
		size_t cap = l->heap_cap ? l->heap_cap * 2 : 64;
		struct loop_timer **h = realloc(l->heap, cap * sizeof(*h));

		if (!h)
			return; /* cannot happen for long: keep the timer disarmed */
		l->heap = h;
		l->heap_cap = cap;
	}
	t->when = mono_ms() + after_ms;
	t->idx = (long)l->nheap;
	l->heap[l->nheap++] = t;
	heap_up(l, (size_t)t->idx);
}

void loop_timer_disarm(struct loop_timer *t)
{
	if (t && t->idx >= 0)
		heap_remove(t->l, t);
}

struct loop_timer *loop_timer_free(struct loop_timer *t)
{
	if (!t)
		return NULL;
	loop_timer_disarm(t);
	if (t->prev)
		t->prev->next = t->next;
	else
		t->l->timers = t->next;
	if (t->next)
		t->next->prev = t->prev;
	free(t);
	return NULL;
}

static void run_timers(struct loop *l)
{
	l->now = mono_ms();
	while (l->nheap && l->heap[0]->when <= l->now && !l->stop) {
		struct loop_timer *t = l->heap[0];

		heap_remove(l, t);
		t->fn(t, t->ud);
	}
}

/* ---- signals and wake-ups ---- */

static void arm_signal(struct loop *l)
{
	struct io_uring_sqe *sqe = get_sqe(l);

	if (!sqe)
		return;
	io_uring_prep_read(sqe, l->sigfd, &l->siginfo, sizeof(l->siginfo), 0);
	io_uring_sqe_set_data(sqe, &l->sig_op);
}

int loop_signal(struct loop *l, int signo, loop_signal_fn fn, void *ud)
{
	bool first = l->sigfd < 0;
	sigset_t one;
	int fd;

	if (signo <= 0 || signo >= _NSIG)
		return -EINVAL;
	sigemptyset(&one);
	sigaddset(&one, signo);
	if (pthread_sigmask(SIG_BLOCK, &one, NULL) != 0)
		return -EINVAL;
	sigaddset(&l->sigmask, signo);
	fd = signalfd(l->sigfd, &l->sigmask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (fd < 0)
		return -errno;
	l->sigfd = fd;
	l->sigs[signo].fn = fn;
	l->sigs[signo].ud = ud;
	if (first)
		arm_signal(l);
	return 0;
}

static void on_signal(struct loop *l, int res)
{
	if (res == (int)sizeof(l->siginfo)) {
		unsigned signo = l->siginfo.ssi_signo;

		if (signo < _NSIG && l->sigs[signo].fn)
			l->sigs[signo].fn((int)signo, l->sigs[signo].ud);
	}
	if (res != -ECANCELED)
		arm_signal(l);
}

static void arm_wake(struct loop *l)
{
	struct io_uring_sqe *sqe = get_sqe(l);

	if (!sqe)
		return;
	io_uring_prep_read(sqe, l->wakefd, &l->wake_val, sizeof(l->wake_val), 0);
	io_uring_sqe_set_data(sqe, &l->wake_op);
	l->wake_armed = true;
}

static void run_posted(struct loop *l)
{
	struct post_item *it;

	pthread_mutex_lock(&l->post_lock);
	it = l->post_head;
	l->post_head = l->post_tail = NULL;
	pthread_mutex_unlock(&l->post_lock);
	while (it) {
		struct post_item *next = it->next;

		it->fn(it->ud);
		free(it);
		it = next;
	}
}

static void on_wake(struct loop *l, int res)
{
	l->wake_armed = false;
	run_posted(l);
	if (res != -ECANCELED)
		arm_wake(l);
}

static void post_item(struct loop *l, struct post_item *it)
{
	uint64_t one = 1;
	ssize_t r;

	it->next = NULL;
	pthread_mutex_lock(&l->post_lock);
	if (l->post_tail)
		l->post_tail->next = it;
	else
		l->post_head = it;
	l->post_tail = it;
	pthread_mutex_unlock(&l->post_lock);
	r = write(l->wakefd, &one, sizeof(one)); /* EAGAIN: the counter is saturated, still awake */
	(void)r;
}

int loop_post(struct loop *l, loop_post_fn fn, void *ud)
{
	struct post_item *it = calloc(1, sizeof(*it));

	if (!it)
		return -ENOMEM;
	it->fn = fn;
	it->ud = ud;
	post_item(l, it);
	return 0;
}

/* ---- worker pool ---- */

static void *pool_main(void *arg)
{
	struct loop_pool *p = arg;
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	for (;;) {
		struct pool_job *j;

		pthread_mutex_lock(&p->lock);
		while (!p->head && !p->stop)
			pthread_cond_wait(&p->cond, &p->lock);
		j = p->head;
		if (j) {
			p->head = j->next;
			if (!p->head)
				p->tail = NULL;
		}
		pthread_mutex_unlock(&p->lock);
		if (!j)
			return NULL;
		j->work(j->item.ud);
		post_item(p->l, &j->item);
	}
}

int loop_pool_new(struct loop *l, unsigned threads, struct loop_pool **ret)
{
	struct loop_pool *p;
	int r;

	if (threads == 0 || threads > 256)
		return -EINVAL;
	p = calloc(1, sizeof(*p) + threads * sizeof(pthread_t));
	if (!p)
		return -ENOMEM;
	p->l = l;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	for (unsigned i = 0; i < threads; i++) {
		r = pthread_create(&p->threads[i], NULL, pool_main, p);
		if (r != 0) {
			loop_pool_free(p);
			return -r;
		}
		p->nthreads++;
	}
	*ret = p;
	return 0;
}

struct loop_pool *loop_pool_free(struct loop_pool *p)
{
	if (!p)
		return NULL;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	free(p);
	return NULL;
}

int loop_pool_submit(struct loop_pool *p, void (*work)(void *ud), void (*done)(void *ud), void *ud)
{
	struct pool_job *j = calloc(1, sizeof(*j));

	if (!j)
		return -ENOMEM;
	j->work = work;
	j->item.fn = done;
	j->item.ud = ud;
	pthread_mutex_lock(&p->lock);
	if (p->tail)
		p->tail->next = j;
	else
		p->head = j;
	p->tail = j;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
	return 0;
}

/* ---- sockets ---- */

static void sock_unlink_free(struct loop_sock *s)
{
	struct loop *l = s->l;

	if (s->prev)
		s->prev->next = s->next;
	else
		l->socks = s->next;
	if (s->next)
		s->next->prev = s->prev;
	while (s->head) {
		struct chunk *c = s->head;

		s->head = c->next;
		free(c);
	}
	if (s->direct) {
		int none = -1;

		if (l->ring_ok) /* the ring's exit closes what is left */
			(void)io_uring_register_files_update(&l->ring, (unsigned)s->fd, &none, 1);
		l->fixed_used--;
		l->fixed_full = false;
	} else if (s->fd >= 0) {
		close(s->fd);
	}
	loop_timer_free(s->linger);
	free(s->peer);
	free(s);
}

static void sock_put(struct loop_sock *s)
{
	if (--s->refs == 0 && s->closed)
		sock_unlink_free(s);
}

static void sock_fail(struct loop_sock *s, int err)
{
	if (s->failed || s->closed || s->quiet)
		return;
	s->failed = true;
	if (s->ops->on_close)
		s->ops->on_close(s, err, s->ud);
}

static void sock_arm_recv(struct loop_sock *s)
{
	struct io_uring_sqe *sqe;

	if (s->recv_armed || s->closed || s->failed || s->quiet)
		return;
	sqe = get_sqe(s->l);
	if (!sqe) {
		sock_fail(s, -EBUSY);
		return;
	}
	io_uring_prep_recv_multishot(sqe, s->fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT | (s->direct ? IOSQE_FIXED_FILE : 0);
	sqe->buf_group = BUF_GROUP;
	io_uring_sqe_set_data(sqe, &s->recv_op);
	s->recv_armed = true;
	s->refs++;
}

static void sock_kick_send(struct loop_sock *s)
{
	struct io_uring_sqe *sqe;
	int n = 0;

	if (s->send_busy || !s->head || s->failed || s->connecting)
		return;
	for (struct chunk *c = s->head; c && n < SEND_IOV_MAX; c = c->next, n++) {
		s->iov[n].iov_base = c->data + c->off;
		s->iov[n].iov_len = c->len - c->off;
	}
	memset(&s->msg, 0, sizeof(s->msg));
	s->msg.msg_iov = s->iov;
	s->msg.msg_iovlen = (size_t)n;
	sqe = get_sqe(s->l);
	if (!sqe) {
		sock_fail(s, -EBUSY);
		return;
	}
	io_uring_prep_sendmsg(sqe, s->fd, &s->msg, MSG_NOSIGNAL);
	if (s->direct)
		sqe->flags |= IOSQE_FIXED_FILE;
	io_uring_sqe_set_data(sqe, &s->send_op);
	s->send_busy = true;
	s->refs++;
}

static struct loop_sock *sock_alloc(struct loop *l, int fd, const struct loop_sock_ops *ops,
				    void *ud)
{
	struct loop_sock *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->l = l;
	s->fd = fd;
	s->ops = ops;
	s->ud = ud;
	s->recv_op.kind = OP_RECV;
	s->send_op.kind = OP_SEND;
	s->conn_op.kind = OP_CONNECT;
	s->next = l->socks;
	if (l->socks)
		l->socks->prev = s;
	l->socks = s;
	return s;
}

int loop_sock_new(struct loop *l, int fd, const struct loop_sock_ops *ops, void *ud,
		  struct loop_sock **ret)
{
	struct loop_sock *s;
	int one = 1;

	if (fd < 0)
		return -EBADF;
	s = sock_alloc(l, fd, ops, ud);
	if (!s)
		return -ENOMEM;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	sock_arm_recv(s);
	*ret = s;
	return 0;
}

int loop_sock_connect(struct loop *l, const struct sockaddr *sa, socklen_t salen,
		      const struct loop_sock_ops *ops, void *ud, struct loop_sock **ret)
{
	struct io_uring_sqe *sqe;
	struct loop_sock *s;
	int fd, one = 1;

	if (salen > sizeof(struct sockaddr_storage))
		return -EINVAL;
	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	s = sock_alloc(l, fd, ops, ud);
	if (!s) {
		close(fd);
		return -ENOMEM;
	}
	s->peer = calloc(1, sizeof(*s->peer));
	sqe = s->peer ? get_sqe(l) : NULL;
	if (!sqe) {
		s->closed = true;
		sock_unlink_free(s);
		return -ENOMEM;
	}
	memcpy(s->peer, sa, salen);
	io_uring_prep_connect(sqe, fd, (struct sockaddr *)s->peer, salen);
	io_uring_sqe_set_data(sqe, &s->conn_op);
	s->connecting = true;
	s->refs++;
	*ret = s;
	return 0;
}

int loop_sock_send(struct loop_sock *s, const void *data, size_t len)
{
	const uint8_t *p = data;

	if (s->closed || s->failed || s->close_after_send)
		return -EPIPE;
	while (len > 0) {
		struct chunk *c = s->tail;
		size_t n;

		if (!c || c->len == c->cap) {
			size_t cap = MAX(MIN(len, (size_t)CHUNK_MAX), (size_t)CHUNK_MIN);

			c = malloc(sizeof(*c) + cap);
			if (!c)
				return -ENOMEM;
			c->next = NULL;
			c->len = c->off = 0;
			c->cap = (uint32_t)cap;
			if (s->tail)
				s->tail->next = c;
			else
				s->head = c;
			s->tail = c;
		}
		n = MIN(len, (size_t)(c->cap - c->len));
		memcpy(c->data + c->len, p, n);
		c->len += (uint32_t)n;
		s->queued += n;
		p += n;
		len -= n;
	}
	sock_kick_send(s);
	return 0;
}

size_t loop_sock_queued(const struct loop_sock *s)
{
	return s->queued;
}

size_t loop_sock_mem(const struct loop_sock *s)
{
	size_t n = sizeof(*s);

	for (const struct chunk *c = s->head; c; c = c->next)
		n += sizeof(*c) + c->cap;
	return n;
}

int loop_sock_fd(const struct loop_sock *s)
{
	return s->direct ? -1 : s->fd;
}

int loop_sock_adopt(struct loop *l, const struct loop_conn *a, const struct loop_sock_ops *ops,
		    void *ud, struct loop_sock **ret)
{
	struct loop_sock *s;

	if (!a->direct)
		return loop_sock_new(l, a->fd, ops, ud, ret);
	s = sock_alloc(l, a->fd, ops, ud);
	if (!s)
		return -ENOMEM;
	s->direct = true; /* TCP_NODELAY: inherited from the listener */
	sock_arm_recv(s);
	*ret = s;
	return 0;
}

void loop_conn_close(struct loop *l, const struct loop_conn *a)
{
	int none = -1;

	if (!a->direct) {
		close(a->fd);
		return;
	}
	(void)io_uring_register_files_update(&l->ring, (unsigned)a->fd, &none, 1);
	l->fixed_used--;
	l->fixed_full = false;
}

void loop_sock_close(struct loop_sock *s)
{
	if (!s || s->closed)
		return;
	s->closed = true;
	if (s->recv_armed)
		cancel_op(s->l, &s->recv_op);
	if (s->send_busy)
		cancel_op(s->l, &s->send_op);
	if (s->connecting)
		cancel_op(s->l, &s->conn_op);
	if (s->refs == 0)
		sock_unlink_free(s);
}

static void linger_expired(struct loop_timer *t _unused_, void *ud)
{
	loop_sock_close(ud);
}

void loop_sock_close_after_send(struct loop_sock *s)
{
	if (!s || s->closed)
		return;
	if (!s->head || s->failed || loop_timer_new(s->l, linger_expired, s, &s->linger) < 0) {
		loop_sock_close(s);
		return;
	}
	/* a peer that never reads must not keep the socket and its queue forever */
	loop_timer_arm(s->linger, LINGER_MS);
	s->close_after_send = true;
	s->quiet = true;
	if (s->recv_armed)
		cancel_op(s->l, &s->recv_op);
}

static void on_recv(struct loop_sock *s, int res, unsigned flags)
{
	struct loop *l = s->l;
	bool more = flags & IORING_CQE_F_MORE;

	s->refs++;
	if (!more) {
		s->recv_armed = false;
		s->refs--;
	}
	if (flags & IORING_CQE_F_BUFFER) {
		unsigned bid = flags >> IORING_CQE_BUFFER_SHIFT;

		if (res > 0 && !s->closed && !s->failed && !s->quiet && s->ops->on_data)
			s->ops->on_data(s, l->bufs + (size_t)bid * l->buf_size, (size_t)res, s->ud);
		buf_recycle(l, bid);
	}
	if (res == 0)
		sock_fail(s, 0);
	else if (res < 0 && res != -ENOBUFS && res != -ECANCELED)
		sock_fail(s, res);
	else if (!more && !s->closed && !s->quiet)
		sock_arm_recv(s); /* ran out of buffers or the kernel ended the multishot */
	sock_put(s);
}

static void on_send(struct loop_sock *s, int res)
{
	s->send_busy = false;
	if (res < 0) {
		if (res != -ECANCELED)
			sock_fail(s, res);
		if (s->close_after_send)
			loop_sock_close(s);
		sock_put(s);
		return;
	}
	size_t n = (size_t)res;

	s->queued -= MIN(n, s->queued);
	while (n > 0 && s->head) {
		struct chunk *c = s->head;
		size_t left = c->len - c->off;

		if (n < left) {
			c->off += (uint32_t)n;
			break;
		}
		n -= left;
		s->head = c->next;
		if (!s->head)
			s->tail = NULL;
		free(c);
	}
	/* a fully sent tail chunk was freed; an empty head means nothing queued */
	if (!s->head && s->close_after_send)
		loop_sock_close(s);
	else if (!s->closed)
		sock_kick_send(s);
	sock_put(s);
}

static void on_connect(struct loop_sock *s, int res)
{
	s->connecting = false;
	free(s->peer);
	s->peer = NULL;
	/* the connect op's reference is held until the callback returned */
	if (s->quiet && res < 0) {
		loop_sock_close(s);
	} else if (s->quiet) {
		sock_arm_recv(s); /* no-op while quiet */
		sock_kick_send(s);
	} else if (!s->closed) {
		if (res < 0) {
			s->failed = true;
			if (s->ops->on_connect)
				s->ops->on_connect(s, res, s->ud);
		} else {
			sock_arm_recv(s);
			sock_kick_send(s);
			if (s->ops->on_connect)
				s->ops->on_connect(s, 0, s->ud);
		}
	}
	sock_put(s);
}

/* ---- listeners ---- */

static void listen_unlink_free(struct loop_listen *ls)
{
	struct loop *l = ls->l;

	if (ls->prev)
		ls->prev->next = ls->next;
	else
		l->listens = ls->next;
	if (ls->next)
		ls->next->prev = ls->prev;
	loop_timer_free(ls->retry);
	if (ls->fd >= 0)
		close(ls->fd);
	free(ls);
}

static void listen_arm(struct loop_listen *ls)
{
	struct io_uring_sqe *sqe;

	struct loop *l = ls->l;

	if (ls->armed || ls->closed)
		return;
	sqe = get_sqe(l);
	if (!sqe) {
		loop_timer_arm(ls->retry, ACCEPT_RETRY_MS);
		return;
	}
	if (ls->conn_fn) {
		/* one at a time, each with its peer address; direct while the table has room */
		ls->addrlen = sizeof(ls->addr);
		ls->armed_direct = l->fixed_used < l->nfixed && !l->fixed_full;
		if (ls->armed_direct)
			/* no SOCK_CLOEXEC: there is no fd; liburing adds 1 to the index */
			io_uring_prep_accept_direct(sqe, ls->fd, (struct sockaddr *)&ls->addr,
						    &ls->addrlen, 0, IORING_FILE_INDEX_ALLOC - 1);
		else
			io_uring_prep_accept(sqe, ls->fd, (struct sockaddr *)&ls->addr,
					     &ls->addrlen, SOCK_CLOEXEC);
	} else {
		io_uring_prep_multishot_accept(sqe, ls->fd, NULL, NULL, SOCK_CLOEXEC);
	}
	io_uring_sqe_set_data(sqe, &ls->op);
	ls->armed = true;
	ls->refs++;
}

static void listen_retry(struct loop_timer *t _unused_, void *ud)
{
	listen_arm(ud);
}

/*
 * The ring's file table for direct descriptors, once: as large as the kernel lets a
 * process have open files (it refuses more), which direct descriptors do not count
 * against; none on kernels without sparse tables.
 */
static void fixed_setup(struct loop *l)
{
	struct rlimit rl;
	unsigned n;

	if (l->fixed_tried)
		return;
	l->fixed_tried = true;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	n = (unsigned)MIN(rl.rlim_cur, (rlim_t)LOOP_FIXED_MAX);
	if (n >= 64 && io_uring_register_files_sparse(&l->ring, n) == 0)
		l->nfixed = n;
}

static int listen_new(struct loop *l, int fd, loop_accept_fn fn, loop_accept_conn_fn conn_fn,
		      void *ud, struct loop_listen **ret)
{
	struct loop_listen *ls = calloc(1, sizeof(*ls));
	int r;

	if (!ls)
		return -ENOMEM;
	ls->l = l;
	ls->fd = fd;
	ls->fn = fn;
	ls->conn_fn = conn_fn;
	ls->ud = ud;
	ls->op.kind = OP_ACCEPT;
	r = loop_timer_new(l, listen_retry, ls, &ls->retry);
	if (r < 0) {
		free(ls);
		return r;
	}
	ls->next = l->listens;
	if (l->listens)
		l->listens->prev = ls;
	l->listens = ls;
	listen_arm(ls);
	*ret = ls;
	return 0;
}

int loop_listen_new(struct loop *l, int fd, loop_accept_fn fn, void *ud, struct loop_listen **ret)
{
	return listen_new(l, fd, fn, NULL, ud, ret);
}

int loop_listen_new_conn(struct loop *l, int fd, loop_accept_conn_fn fn, void *ud,
			 struct loop_listen **ret)
{
	int one = 1;

	fixed_setup(l);
	/* accepted sockets inherit it: direct descriptors cannot take setsockopt() */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return listen_new(l, fd, NULL, fn, ud, ret);
}

struct loop_listen *loop_listen_free(struct loop_listen *ls)
{
	if (!ls || ls->closed)
		return NULL;
	ls->closed = true;
	loop_timer_disarm(ls->retry);
	if (ls->armed)
		cancel_op(ls->l, &ls->op);
	if (ls->refs == 0)
		listen_unlink_free(ls);
	return NULL;
}

/*
 * A single-shot accept of a conn_fn listener completed.  Returns 1 when it only
 * told us to stop asking for direct descriptors (then accept again at once).
 */
static int on_accept_conn(struct loop_listen *ls, int res)
{
	struct loop *l = ls->l;
	struct loop_conn a = {.fd = res, .direct = ls->armed_direct};

	if (a.direct && res >= 0)
		l->fixed_used++;
	if (ls->closed) {
		if (res >= 0)
			loop_conn_close(l, &a);
		return 0;
	}
	if (a.direct && (res == -EINVAL || res == -EOPNOTSUPP)) {
		l->nfixed = 0; /* a kernel without direct accept: plain descriptors from now on */
		return 1;
	}
	if (a.direct && res == -ENFILE) { /* not expected (we count): plain until a slot frees */
		l->fixed_full = true;
		ls->conn_fn(NULL, res, ls->ud);
		return 1;
	}
	if (res == -ECANCELED)
		return 0;
	if (res >= 0) {
		memcpy(&a.peer, &ls->addr, sizeof(a.peer));
		a.peer_len = MIN(ls->addrlen, (socklen_t)sizeof(a.peer));
	}
	ls->conn_fn(res >= 0 ? &a : NULL, res >= 0 ? 0 : res, ls->ud);
	return 0;
}

static void on_accept(struct loop_listen *ls, int res, unsigned flags)
{
	if (!(flags & IORING_CQE_F_MORE)) {
		ls->armed = false;
		ls->refs--;
	}
	if (ls->conn_fn) {
		if (on_accept_conn(ls, res))
			res = 0; /* try again at once, differently */
		if (ls->closed) {
			if (ls->refs == 0)
				listen_unlink_free(ls);
			return;
		}
	} else if (ls->closed) {
		if (res >= 0)
			close(res);
		if (ls->refs == 0)
			listen_unlink_free(ls);
		return;
	} else if (res != -ECANCELED) {
		ls->fn(res, ls->ud);
	}
	if (!ls->armed && !ls->closed) {
		if (res < 0)
			loop_timer_arm(ls->retry,
				       ACCEPT_RETRY_MS); /* EMFILE and friends: back off */
		else
			listen_arm(ls);
	}
}

int loop_tcp_listen(const char *addr, uint16_t port, int backlog, uint16_t *ret_port)
{
	struct sockaddr_storage ss = {0};
	socklen_t len;
	int one = 1;
	_cleanup_close_ int fd = -1;

	if (!addr || !*addr)
		addr = "127.0.0.1";
	if (strchr(addr, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		if (inet_pton(AF_INET6, addr, &s6->sin6_addr) != 1)
			return -EINVAL;
		len = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		if (inet_pton(AF_INET, addr, &s4->sin_addr) != 1)
			return -EINVAL;
		len = sizeof(*s4);
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&ss, len) < 0)
		return -errno;
	if (listen(fd, backlog > 0 ? backlog : 4096) < 0)
		return -errno;
	if (ret_port) {
		len = sizeof(ss);
		if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
			return -errno;
		*ret_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
							   : ((struct sockaddr_in *)&ss)->sin_port);
	}
	return TAKE_FD(fd);
}

/* ---- the loop ---- */

static void dispatch(struct loop *l, struct loop_op *op, int res, unsigned flags)
{
	if (!op)
		return;
	switch (op->kind) {
	case OP_RECV:
		on_recv((struct loop_sock *)((char *)op - offsetof(struct loop_sock, recv_op)), res,
			flags);
		break;
	case OP_SEND:
		on_send((struct loop_sock *)((char *)op - offsetof(struct loop_sock, send_op)),
			res);
		break;
	case OP_CONNECT:
		on_connect((struct loop_sock *)((char *)op - offsetof(struct loop_sock, conn_op)),
			   res);
		break;
	case OP_ACCEPT:
		on_accept((struct loop_listen *)((char *)op - offsetof(struct loop_listen, op)),
			  res, flags);
		break;
	case OP_SIGNAL:
		on_signal(l, res);
		break;
	case OP_WAKE:
		on_wake(l, res);
		break;
	default:
		break;
	}
}

static int process_cqes(struct loop *l)
{
	struct io_uring_cqe *cqe;
	int n = 0;

	/* bounded, so timers (timeouts, periodic work) still run under a flood of completions */
	while (n < CQE_BATCH && io_uring_peek_cqe(&l->ring, &cqe) == 0) {
		struct loop_op *op = io_uring_cqe_get_data(cqe);
		int res = cqe->res;
		unsigned flags = cqe->flags;

		io_uring_cqe_seen(&l->ring, cqe);
		dispatch(l, op, res, flags);
		n++;
	}
	return n;
}

int loop_new(const struct loop_config *cfg, struct loop **ret)
{
	struct io_uring_params p = {0};
	struct loop *l;
	unsigned sq = cfg && cfg->sq_entries ? cfg->sq_entries : 512;
	int r;

	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->sigfd = -1;
	l->wakefd = -1;
	sigemptyset(&l->sigmask);
	pthread_mutex_init(&l->post_lock, NULL);
	l->buf_count = cfg && cfg->buf_count ? cfg->buf_count : 1024;
	l->buf_size = cfg && cfg->buf_size ? cfg->buf_size : 4096;
	if ((l->buf_count & (l->buf_count - 1)) != 0 || l->buf_count > 32768) {
		loop_free(l);
		return -EINVAL;
	}
	l->sig_op.kind = OP_SIGNAL;
	l->wake_op.kind = OP_WAKE;

	p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN;
	p.cq_entries = sq * 8;
	r = io_uring_queue_init_params(sq, &l->ring, &p);
	if (r == -EINVAL) { /* older kernels: no COOP_TASKRUN / SUBMIT_ALL */
		memset(&p, 0, sizeof(p));
		p.flags = IORING_SETUP_CQSIZE;
		p.cq_entries = sq * 8;
		r = io_uring_queue_init_params(sq, &l->ring, &p);
	}
	if (r < 0) {
		loop_free(l);
		return r;
	}
	l->ring_ok = true;
	r = bufs_setup(l);
	if (r < 0) {
		loop_free(l);
		return r;
	}
	l->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (l->wakefd < 0) {
		r = -errno;
		loop_free(l);
		return r;
	}
	arm_wake(l);
	l->now = mono_ms();
	*ret = l;
	return 0;
}

uint64_t loop_now_ms(const struct loop *l)
{
	return l->now;
}

void loop_stop(struct loop *l)
{
	l->stop = true;
}

int loop_run(struct loop *l)
{
	l->stop = false;
	while (!l->stop) {
		struct __kernel_timespec ts, *tsp = NULL;
		struct io_uring_cqe *cqe;
		int r;

		run_timers(l);
		if (l->stop)
			break;
		if (l->nheap) {
			uint64_t d = l->heap[0]->when > l->now ? l->heap[0]->when - l->now : 0;

			ts.tv_sec = (long long)(d / 1000);
			ts.tv_nsec = (long long)(d % 1000) * 1000000;
			tsp = &ts;
		}
		r = io_uring_submit_and_wait_timeout(&l->ring, &cqe, 1, tsp, NULL);
		if (r < 0 && r != -ETIME && r != -EINTR && r != -EAGAIN && r != -EBUSY)
			return r;
		l->now = mono_ms();
		process_cqes(l);
	}
	io_uring_submit(&l->ring);
	return 0;
}

static bool loop_busy(struct loop *l)
{
	for (struct loop_sock *s = l->socks; s; s = s->next)
		if (s->refs)
			return true;
	for (struct loop_listen *ls = l->listens; ls; ls = ls->next)
		if (ls->refs)
			return true;
	return false;
}

struct loop *loop_free(struct loop *l)
{
	if (!l)
		return NULL;
	if (l->ring_ok) {
		/* let the kernel finish with our buffers before they go away */
		for (struct loop_sock *s = l->socks, *n; s; s = n) {
			n = s->next;
			loop_sock_close(s);
		}
		for (struct loop_listen *ls = l->listens, *n; ls; ls = n) {
			n = ls->next;
			loop_listen_free(ls);
		}
		for (int i = 0; i < 200 && loop_busy(l); i++) {
			struct __kernel_timespec ts = {.tv_nsec = 10 * 1000000};
			struct io_uring_cqe *cqe;

			io_uring_submit_and_wait_timeout(&l->ring, &cqe, 1, &ts, NULL);
			process_cqes(l);
		}
		io_uring_queue_exit(&l->ring);
		l->ring_ok = false;
	}
	while (l->socks) {
		l->socks->closed = true;
		sock_unlink_free(l->socks);
	}
	while (l->listens)
		listen_unlink_free(l->listens);
	while (l->timers)
		loop_timer_free(l->timers);
	for (struct post_item *it = l->post_head, *n; it; it = n) {
		n = it->next;
		free(it);
	}
	free(l->heap);
	if (l->br)
		munmap(l->br, l->br_len);
	if (l->bufs)
		munmap(l->bufs, l->bufs_len);
	if (l->sigfd >= 0)
		close(l->sigfd);
	if (l->wakefd >= 0)
		close(l->wakefd);
	pthread_mutex_destroy(&l->post_lock);
	free(l);
	return NULL;
}
