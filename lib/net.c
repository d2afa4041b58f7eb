/* net.c -- connections (TLS + frames + limits), the server framework and the reconnecting client. */
#include <aicn/canon.h>
#include <aicn/compiler.h>
#include <aicn/frame.h>
#include <aicn/net.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdbool.h>
#include <string.h>
#include <sys/random.h>

#define TICK_MS 250
#define CORK_FLUSH (256 * 1024)

enum conn_state {
	CS_TLS,	     /* TCP connecting or TLS handshake */
	CS_HELLO,    /* TLS done, waiting for HELLO (server) or its reply (client) */
	CS_REGISTER, /* client: REGISTER sent, waiting for its ACK */
	CS_READY,
	CS_CLOSED,
};

struct handler {
	net_handler_fn fn;
	void *ud;
};

/* What servers and clients share: limits, handlers, logging. */
struct net_ep {
	struct loop *l;
	struct tls_ctx *tls;
	struct net_limits lim;
	const char *software;
	net_log_fn log;
	void *ud;
	struct handler h[PROTO_MAX_TYPES];
	struct net_server *srv; /* one of these two */
	struct net_client *cli;
};

struct net_conn {
	struct net_ep *ep;
	struct loop_sock *sock;
	struct tls_conn *tls;
	struct frame_dec dec;
	enum conn_state state;
	unsigned refs;
	unsigned dispatching; /* inside a receive: sends are corked */
	bool corked;
	bool was_ready;
	uint8_t *cork;
	size_t cork_len, cork_cap;
	uint64_t created_ms, last_rx_ms;
	uint64_t tokens_m; /* rate limit bucket, in thousandths of a frame */
	uint64_t refill_ms;
	unsigned errors;
	int64_t version;
	int64_t next_id;
	int64_t register_id;
	struct tls_peer peer;
	char addr[64];
	void *data;
	struct net_conn *prev, *next;
};

struct net_server {
	struct net_ep ep;
	struct net_server_config cfg;
	struct loop_listen *listen;
	struct loop_timer *tick;
	struct net_conn *conns;
	struct net_stats st;
	bool freeing;
};

struct net_client {
	struct net_ep ep;
	struct net_client_config cfg;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	char target[64];
	cJSON *reg;
	struct net_conn *conn;
	struct loop_timer *retry, *tick;
	unsigned attempt;
	uint64_t attempts;
	uint64_t rnd;
	bool freeing;
};

static void ep_log(struct net_ep *ep, enum log_level lvl, const char *fmt, ...) _printf_(3, 4);
static void ep_log(struct net_ep *ep, enum log_level lvl, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	if (!ep->log)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	ep->log(ep->ud, lvl, line);
}

static void limits_default(struct net_limits *l)
{
	if (!l->max_frame)
		l->max_frame = FRAME_MAX_DEFAULT;
	if (!l->handshake_ms)
		l->handshake_ms = 10000;
	if (!l->frame_ms)
		l->frame_ms = 30000;
	if (!l->sendq_max)
		l->sendq_max = 4 * 1024 * 1024;
	if (!l->msg_rate)
		l->msg_rate = 2000;
	if (!l->msg_burst)
		l->msg_burst = 4000;
	if (!l->max_errors)
		l->max_errors = 16;
}

/* ---- connection lifetime ---- */

static void conn_free(struct net_conn *c)
{
	tls_conn_free(c->tls);
	frame_dec_reset(&c->dec);
	free(c->cork);
	free(c);
}

struct net_conn *net_conn_ref(struct net_conn *c)
{
	c->refs++;
	return c;
}

void net_conn_unref(struct net_conn *c)
{
	if (c && --c->refs == 0)
		conn_free(c);
}

static void client_conn_closed(struct net_client *cl, struct net_conn *c, const char *reason);

/* Close c; flush = send what is queued (and close_notify) first. */
static void conn_close(struct net_conn *c, const char *reason, bool flush)
{
	struct net_ep *ep = c->ep;

	if (c->state == CS_CLOSED)
		return;
	c->state = CS_CLOSED;
	if (c->sock) {
		if (flush && c->cork_len && tls_conn_established(c->tls))
			(void)tls_conn_write(c->tls, c->cork, c->cork_len);
		c->cork_len = 0;
		if (flush) {
			tls_conn_shutdown(c->tls);
			loop_sock_close_after_send(c->sock);
		} else {
			loop_sock_close(c->sock);
		}
		c->sock = NULL;
	}
	if (ep->srv) {
		struct net_server *s = ep->srv;

		if (c->prev)
			c->prev->next = c->next;
		else
			s->conns = c->next;
		if (c->next)
			c->next->prev = c->prev;
		s->st.closed++;
		s->st.conns--;
		if (c->was_ready && s->cfg.on_close && !s->freeing)
			s->cfg.on_close(c, reason, s->cfg.ud);
		net_conn_unref(c); /* the server list's reference */
	} else if (ep->cli) {
		client_conn_closed(ep->cli, c, reason);
	}
}

/* ---- sending ---- */

static int conn_check_queue(struct net_conn *c)
{
	size_t q;

	if (!c->sock)
		return -ENOTCONN;
	q = loop_sock_queued(c->sock);
	if (q > c->ep->lim.sendq_max) {
		ep_log(c->ep, LOG_LVL_WARN,
		       "%s (CN=%s): slow reader, %zu bytes queued (limit %zu); closing", c->addr,
		       c->peer.name, q, c->ep->lim.sendq_max);
		conn_close(c, "slow reader: send queue full", false);
		return -ENOBUFS;
	}
	return 0;
}

static int conn_flush_cork(struct net_conn *c)
{
	int r = 0;

	if (c->cork_len && c->state != CS_CLOSED) {
		r = tls_conn_write(c->tls, c->cork, c->cork_len);
		c->cork_len = 0;
		if (r < 0) {
			ep_log(c->ep, LOG_LVL_WARN, "%s: %s", c->addr, tls_conn_error(c->tls));
			conn_close(c, "TLS write failed", false);
			return r;
		}
		r = conn_check_queue(c);
	}
	free(c->cork);
	c->cork = NULL;
	c->cork_cap = 0;
	return r;
}

static int conn_write(struct net_conn *c, const uint8_t *buf, size_t len)
{
	int r;

	if (c->dispatching || c->corked) {
		if (c->cork_len + len > c->cork_cap) {
			size_t cap = MAX(c->cork_cap * 2, c->cork_len + len);
			uint8_t *n;

			cap = MAX(cap, (size_t)1024);
			n = realloc(c->cork, cap);
			if (!n)
				return -ENOMEM;
			c->cork = n;
			c->cork_cap = cap;
		}
		memcpy(c->cork + c->cork_len, buf, len);
		c->cork_len += len;
		if (c->cork_len >= CORK_FLUSH) {
			r = tls_conn_write(c->tls, c->cork, c->cork_len);
			c->cork_len = 0;
			if (r < 0) {
				conn_close(c, "TLS write failed", false);
				return r;
			}
			return conn_check_queue(c);
		}
		return 0;
	}
	r = tls_conn_write(c->tls, buf, len);
	if (r < 0) {
		conn_close(c, "TLS write failed", false);
		return r;
	}
	return conn_check_queue(c);
}

int net_conn_send(struct net_conn *c, cJSON *msg, int64_t *ret_id)
{
	_cleanup_free_ uint8_t *buf = NULL;
	int64_t id;
	size_t len;
	int r;

	if (c->state == CS_CLOSED || c->state == CS_TLS)
		return -ENOTCONN;
	id = c->next_id++;
	r = proto_encode(msg, c->version ? c->version : PROTO_VERSION_MIN, id, &buf, &len);
	if (r < 0)
		return r;
	if (len - FRAME_HDR_LEN > c->ep->lim.max_frame)
		return -EMSGSIZE;
	r = conn_write(c, buf, len);
	if (r < 0)
		return r;
	if (c->ep->srv)
		c->ep->srv->st.frames_out++;
	if (ret_id)
		*ret_id = id;
	return 0;
}

int net_conn_send_encoded(struct net_conn *c, const uint8_t *frame, size_t len)
{
	if (c->state != CS_READY)
		return -ENOTCONN;
	if (len < FRAME_HDR_LEN || len - FRAME_HDR_LEN > c->ep->lim.max_frame)
		return -EMSGSIZE;
	return conn_write(c, frame, len);
}

int net_conn_ack(struct net_conn *c, int64_t ref, int64_t seq)
{
	cJSON *m = proto_new(PROTO_ACK);
	int r = -ENOMEM;

	if (m && canon_add_i64(m, "ref", ref) >= 0 &&
	    (seq < 0 || canon_add_i64(m, "seq", seq) >= 0))
		r = net_conn_send(c, m, NULL);
	cJSON_Delete(m);
	return r;
}

int net_conn_error(struct net_conn *c, int64_t ref, const char *code, const char *message)
{
	cJSON *m = proto_new(PROTO_ERROR);
	char msg[512];
	int r = -ENOMEM;

	/* keep the message within the schema whatever the caller passed */
	snprintf(msg, sizeof(msg), "%s", message ? message : "");
	if (m && cJSON_AddStringToObject(m, "code", code) &&
	    cJSON_AddStringToObject(m, "message", msg) &&
	    (ref < 0 || canon_add_i64(m, "ref", ref) >= 0))
		r = net_conn_send(c, m, NULL);
	cJSON_Delete(m);
	return r;
}

void net_conn_close(struct net_conn *c, const char *reason)
{
	conn_close(c, reason ? reason : "closed by us", true);
}

int net_conn_alive(const struct net_conn *c)
{
	return c->state != CS_CLOSED;
}

size_t net_conn_queued(const struct net_conn *c)
{
	return c->sock ? loop_sock_queued(c->sock) + c->cork_len : 0;
}

const struct tls_peer *net_conn_peer(const struct net_conn *c)
{
	return &c->peer;
}

const char *net_conn_addr(const struct net_conn *c)
{
	return c->addr;
}

int64_t net_conn_version(const struct net_conn *c)
{
	return c->version;
}

void net_conn_set_data(struct net_conn *c, void *data)
{
	c->data = data;
}

void *net_conn_data(const struct net_conn *c)
{
	return c->data;
}

void net_conn_cork(struct net_conn *c)
{
	c->corked = true;
}

int net_conn_uncork(struct net_conn *c)
{
	c->corked = false;
	if (c->dispatching)
		return 0;
	return conn_flush_cork(c);
}

/* ---- receiving ---- */

static void bad_message(struct net_conn *c, int64_t ref, const char *code, const char *why)
{
	if (c->ep->srv)
		c->ep->srv->st.bad_frames++;
	ep_log(c->ep, LOG_LVL_INFO, "%s (CN=%s): %s: %s", c->addr, c->peer.name, code, why);
	net_conn_error(c, ref, code, why);
	if (++c->errors > c->ep->lim.max_errors) {
		ep_log(c->ep, LOG_LVL_WARN, "%s (CN=%s): more than %u bad messages; closing",
		       c->addr, c->peer.name, c->ep->lim.max_errors);
		conn_close(c, "too many bad messages", true);
	}
}

static void conn_ready(struct net_conn *c)
{
	struct net_ep *ep = c->ep;

	c->state = CS_READY;
	c->was_ready = true;
	if (ep->srv) {
		ep->srv->st.ready++;
		if (ep->srv->cfg.on_ready)
			ep->srv->cfg.on_ready(c, ep->srv->cfg.ud);
	} else {
		struct net_client *cl = ep->cli;

		cl->attempt = 0;
		ep_log(ep, LOG_LVL_INFO, "connected to %s (CN=%s), protocol v%lld", cl->target,
		       c->peer.name, (long long)c->version);
		if (cl->cfg.on_ready)
			cl->cfg.on_ready(cl, c, cl->cfg.ud);
	}
}

static void server_hello(struct net_conn *c, const struct proto_msg *m)
{
	int64_t min_v = PROTO_VERSION_MIN, max_v = PROTO_VERSION_MIN, v;
	cJSON *reply;

	if (m->type != PROTO_HELLO) {
		ep_log(c->ep, LOG_LVL_INFO, "%s (CN=%s): %s before HELLO; closing", c->addr,
		       c->peer.name, proto_type_name(m->type));
		net_conn_error(c, m->id, "hello_required", "send HELLO first");
		conn_close(c, "no HELLO", true);
		return;
	}
	(void)canon_get_i64(m->root, "min_v", &min_v);
	(void)canon_get_i64(m->root, "max_v", &max_v);
	if (proto_negotiate(min_v, max_v, &v) < 0) {
		char why[128];

		snprintf(why, sizeof(why), "peer speaks v%lld..v%lld, we speak v%d..v%d",
			 (long long)min_v, (long long)max_v, PROTO_VERSION_MIN, PROTO_VERSION_MAX);
		ep_log(c->ep, LOG_LVL_WARN, "%s (CN=%s): no common protocol version: %s", c->addr,
		       c->peer.name, why);
		net_conn_error(c, m->id, "unsupported_version", why);
		conn_close(c, "no common protocol version", true);
		return;
	}
	c->version = v;
	reply = proto_new(PROTO_HELLO);
	if (!reply || canon_add_i64(reply, "version", v) < 0 ||
	    !cJSON_AddStringToObject(reply, "node_id", c->peer.node_id) ||
	    !cJSON_AddStringToObject(reply, "role", role_name(c->peer.role)) ||
	    !cJSON_AddStringToObject(reply, "software", c->ep->software) ||
	    net_conn_send(c, reply, NULL) < 0) {
		cJSON_Delete(reply);
		conn_close(c, "cannot answer HELLO", false);
		return;
	}
	cJSON_Delete(reply);
	conn_ready(c);
}

static void client_hello_reply(struct net_conn *c, const struct proto_msg *m)
{
	struct net_client *cl = c->ep->cli;
	const char *code = "?", *msg = "?";
	int64_t v;

	if (m->type == PROTO_ERROR) {
		(void)canon_get_str(m->root, "code", &code);
		(void)canon_get_str(m->root, "message", &msg);
		ep_log(c->ep, LOG_LVL_ERR, "%s refused us: %s: %s", cl->target, code, msg);
		conn_close(c, "refused by the server", false);
		return;
	}
	if (c->state == CS_HELLO) {
		if (m->type != PROTO_HELLO || canon_get_i64(m->root, "version", &v) < 0 ||
		    v < PROTO_VERSION_MIN || v > PROTO_VERSION_MAX) {
			ep_log(c->ep, LOG_LVL_ERR, "%s: bad HELLO reply", cl->target);
			conn_close(c, "bad HELLO reply", false);
			return;
		}
		c->version = v;
		if (cl->reg) {
			c->state = CS_REGISTER;
			if (net_conn_send(c, cl->reg, &c->register_id) < 0)
				conn_close(c, "cannot send REGISTER", false);
			return;
		}
		conn_ready(c);
		return;
	}
	/* CS_REGISTER */
	if (m->type == PROTO_ACK) {
		int64_t ref;

		if (canon_get_i64(m->root, "ref", &ref) == 0 && ref == c->register_id) {
			conn_ready(c);
			return;
		}
	}
	ep_log(c->ep, LOG_LVL_WARN, "%s: %s before REGISTER was acknowledged; ignored", cl->target,
	       proto_type_name(m->type));
}

static void dispatch(struct net_conn *c, struct proto_msg *m)
{
	struct net_ep *ep = c->ep;
	const struct handler *h;
	char why[160];
	int r;

	if (m->v != c->version && m->type != PROTO_HELLO) {
		bad_message(c, m->id, "bad_version", "message version differs from HELLO's");
		return;
	}
	if (proto_allowed(m->type, c->peer.role) < 0) {
		snprintf(why, sizeof(why), "role %s may not send %s", role_name(c->peer.role),
			 proto_type_name(m->type));
		bad_message(c, m->id, "forbidden", why);
		return;
	}
	h = &ep->h[m->type];
	if (!h->fn) {
		/* never answer an ERROR or ACK with an ERROR: no ping-pong storms */
		if (m->type != PROTO_ERROR && m->type != PROTO_ACK) {
			snprintf(why, sizeof(why), "%s is not served here",
				 proto_type_name(m->type));
			bad_message(c, m->id, "unsupported", why);
		}
		return;
	}
	r = h->fn(c, m, h->ud);
	if (r < 0 && c->state != CS_CLOSED) {
		snprintf(why, sizeof(why), "%s failed: %s", proto_type_name(m->type), strerror(-r));
		net_conn_error(c, m->id, "internal", why);
	}
}

static int rate_ok(struct net_conn *c, uint64_t now)
{
	const struct net_limits *lim = &c->ep->lim;
	uint64_t cap = (uint64_t)lim->msg_burst * 1000;

	if (now > c->refill_ms) {
		c->tokens_m += (now - c->refill_ms) * lim->msg_rate;
		c->refill_ms = now;
		if (c->tokens_m > cap)
			c->tokens_m = cap;
	}
	if (c->tokens_m < 1000)
		return 0;
	c->tokens_m -= 1000;
	return 1;
}

static int on_frame(void *ud, char *payload, size_t len)
{
	struct net_conn *c = ud;
	struct net_ep *ep = c->ep;
	struct proto_msg m = {0};
	char err[PROTO_ERR_LEN];
	uint64_t now = loop_now_ms(ep->l);
	int r;

	c->last_rx_ms = now;
	if (ep->srv)
		ep->srv->st.frames_in++;
	if (!rate_ok(c, now)) {
		ep_log(ep, LOG_LVL_WARN, "%s (CN=%s): more than %u messages/s; closing", c->addr,
		       c->peer.name, ep->lim.msg_rate);
		net_conn_error(c, -1, "rate_limited", "too many messages per second");
		conn_close(c, "rate limited", true);
		return -ECONNABORTED;
	}
	r = proto_parse(payload, len, &m, err);
	if (r == -ENOENT) {
		if (c->state == CS_HELLO && ep->srv) {
			net_conn_error(c, m.id, "hello_required", "send HELLO first");
			conn_close(c, "no HELLO", true);
		} else {
			bad_message(c, m.id, "unknown_type", "unknown message type");
		}
		proto_msg_done(&m);
	} else if (r < 0) {
		if (c->state == CS_HELLO && ep->srv) {
			ep_log(ep, LOG_LVL_INFO, "%s (CN=%s): bad HELLO: %s; closing", c->addr,
			       c->peer.name, err);
			net_conn_error(c, -1, "bad_message", err);
			conn_close(c, "bad HELLO", true);
		} else {
			bad_message(c, -1, "bad_message", err);
		}
	} else {
		if (c->state == CS_HELLO && ep->srv)
			server_hello(c, &m);
		else if (c->state == CS_HELLO || c->state == CS_REGISTER)
			client_hello_reply(c, &m);
		else if (c->state == CS_READY)
			dispatch(c, &m);
		proto_msg_done(&m);
	}
	return c->state == CS_CLOSED ? -ECONNABORTED : 0;
}

static void conn_tls_done(struct net_conn *c)
{
	c->peer = *tls_conn_peer(c->tls);
	c->state = CS_HELLO;
	c->last_rx_ms = loop_now_ms(c->ep->l);
	if (c->ep->cli) {
		cJSON *h = proto_new(PROTO_HELLO);

		if (!h || canon_add_i64(h, "min_v", PROTO_VERSION_MIN) < 0 ||
		    canon_add_i64(h, "max_v", PROTO_VERSION_MAX) < 0 ||
		    !cJSON_AddStringToObject(h, "software", c->ep->software) ||
		    net_conn_send(c, h, NULL) < 0)
			conn_close(c, "cannot send HELLO", false);
		cJSON_Delete(h);
	}
}

static int on_plain(void *ud, const uint8_t *data, size_t len)
{
	struct net_conn *c = ud;
	int r;

	if (c->state == CS_TLS)
		conn_tls_done(c);
	if (c->state == CS_CLOSED)
		return -1;
	r = frame_dec_feed(&c->dec, data, len, loop_now_ms(c->ep->l), on_frame, c);
	if (r < 0 && r != -ECONNABORTED && c->state != CS_CLOSED) {
		const char *why = r == -EMSGSIZE  ? "frame longer than the limit"
				  : r == -EBADMSG ? "empty frame"
						  : "out of memory";

		if (c->ep->srv)
			c->ep->srv->st.bad_frames++;
		ep_log(c->ep, LOG_LVL_WARN, "%s (CN=%s): %s; closing", c->addr, c->peer.name, why);
		net_conn_error(c, -1, r == -EMSGSIZE ? "frame_too_large" : "bad_frame", why);
		conn_close(c, why, true);
	}
	return c->state == CS_CLOSED ? -1 : 0;
}

static const struct tls_conn_ops tls_ops;

static void sock_data(struct loop_sock *s _unused_, const uint8_t *data, size_t len, void *ud)
{
	struct net_conn *c = ud;
	struct net_ep *ep = c->ep;
	bool handshaking = c->state == CS_TLS;
	int r;

	if (c->state == CS_CLOSED)
		return;
	net_conn_ref(c);
	c->dispatching++;
	r = tls_conn_feed(c->tls, data, len);
	c->dispatching--;
	if (r == 1 && c->state == CS_TLS)
		conn_tls_done(c);
	if (r < 0 && r != -ECONNABORTED && c->state != CS_CLOSED) {
		if (handshaking && r != -ECONNRESET) {
			if (ep->srv)
				ep->srv->st.refused++;
			ep_log(ep, LOG_LVL_WARN, "refused %s: %s", c->addr, tls_conn_error(c->tls));
		} else if (r != -ECONNRESET) {
			ep_log(ep, LOG_LVL_WARN, "%s (CN=%s): %s", c->addr, c->peer.name,
			       tls_conn_error(c->tls));
		}
		conn_close(c, tls_conn_error(c->tls), false);
	} else if (!c->dispatching && c->state != CS_CLOSED) {
		conn_flush_cork(c);
	}
	net_conn_unref(c);
}

static void sock_closed(struct loop_sock *s _unused_, int err, void *ud)
{
	struct net_conn *c = ud;
	char why[96];

	if (c->state == CS_TLS && c->ep->srv) {
		c->ep->srv->st.refused++;
		ep_log(c->ep, LOG_LVL_INFO, "%s: closed during the TLS handshake", c->addr);
	}
	if (err)
		snprintf(why, sizeof(why), "connection failed: %s", strerror(-err));
	else
		snprintf(why, sizeof(why), "peer closed the connection");
	conn_close(c, why, false);
}

static void sock_connected(struct loop_sock *s _unused_, int err, void *ud)
{
	struct net_conn *c = ud;
	char why[96];

	if (err < 0) {
		snprintf(why, sizeof(why), "connect failed: %s", strerror(-err));
		conn_close(c, why, false);
		return;
	}
	if (tls_conn_start(c->tls) < 0)
		conn_close(c, tls_conn_error(c->tls), false);
}

static const struct loop_sock_ops sock_ops = {
	.on_connect = sock_connected,
	.on_data = sock_data,
	.on_close = sock_closed,
};

static int tls_send(void *ud, const uint8_t *data, size_t len)
{
	struct net_conn *c = ud;

	if (!c->sock)
		return -EPIPE;
	return loop_sock_send(c->sock, data, len);
}

static const struct tls_conn_ops tls_ops = {
	.send = tls_send,
	.on_plain = on_plain,
};

static struct net_conn *conn_alloc(struct net_ep *ep)
{
	struct net_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->ep = ep;
	c->refs = 1;
	c->state = CS_TLS;
	c->created_ms = c->last_rx_ms = c->refill_ms = loop_now_ms(ep->l);
	c->tokens_m = (uint64_t)ep->lim.msg_burst * 1000;
	c->next_id = 1;
	snprintf(c->peer.name, sizeof(c->peer.name), "?");
	frame_dec_init(&c->dec, ep->lim.max_frame);
	if (tls_conn_new(ep->tls, &tls_ops, c, &c->tls) < 0) {
		free(c);
		return NULL;
	}
	return c;
}

static void format_addr(const struct sockaddr *sa, char *out, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		port = ntohs(s4->sin_port);
		snprintf(out, len, "%s:%u", host, port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		port = ntohs(s6->sin6_port);
		snprintf(out, len, "[%s]:%u", host, port);
	} else {
		snprintf(out, len, "?");
	}
}

/* ---- timeouts (one sweep over all connections every TICK_MS) ---- */

static const char *conn_expired(struct net_conn *c, uint64_t now)
{
	const struct net_limits *lim = &c->ep->lim;

	if (c->state < CS_READY && now - c->created_ms > lim->handshake_ms)
		return "handshake not finished in time";
	if (lim->idle_ms && c->state == CS_READY && now - c->last_rx_ms > lim->idle_ms)
		return "idle for too long";
	if (c->dec.started_ms && frame_dec_partial(&c->dec) &&
	    now - c->dec.started_ms > lim->frame_ms)
		return "frame not finished in time (slow sender)";
	return NULL;
}

static void server_tick(struct loop_timer *t, void *ud)
{
	struct net_server *s = ud;
	uint64_t now = loop_now_ms(s->ep.l);

	for (struct net_conn *c = s->conns, *n; c; c = n) {
		const char *why = conn_expired(c, now);

		n = c->next;
		if (why) {
			if (c->state < CS_READY)
				s->st.refused++;
			ep_log(&s->ep, LOG_LVL_INFO, "%s (CN=%s): %s; closing", c->addr,
			       c->peer.name, why);
			conn_close(c, why, false);
		}
	}
	loop_timer_arm(t, TICK_MS);
}

/* ---- server ---- */

static void server_accept(const struct loop_conn *a, int err, void *ud)
{
	struct net_server *s = ud;
	struct net_conn *c;

	if (err < 0) {
		ep_log(&s->ep, LOG_LVL_WARN, "accept failed: %s (retrying)", strerror(-err));
		return;
	}
	s->st.accepted++;
	if (s->st.conns >= s->cfg.max_conns) {
		s->st.refused++;
		ep_log(&s->ep, LOG_LVL_WARN, "refused a connection: %u connections open (limit)",
		       s->cfg.max_conns);
		loop_conn_close(s->ep.l, a);
		return;
	}
	c = conn_alloc(&s->ep);
	if (!c) {
		loop_conn_close(s->ep.l, a);
		return;
	}
	if (a->peer_len > 0)
		format_addr((const struct sockaddr *)&a->peer, c->addr, sizeof(c->addr));
	else
		snprintf(c->addr, sizeof(c->addr), "?");
	if (loop_sock_adopt(s->ep.l, a, &sock_ops, c, &c->sock) < 0) {
		loop_conn_close(s->ep.l, a);
		conn_free(c);
		return;
	}
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	s->st.conns++;
}

int net_server_new(struct loop *l, const struct net_server_config *cfg, struct net_server **ret)
{
	struct net_server *s;
	int r;

	if (!cfg->tls || cfg->listen_fd < 0)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->cfg = *cfg;
	if (!s->cfg.max_conns)
		s->cfg.max_conns = 100000;
	s->ep.l = l;
	s->ep.tls = cfg->tls;
	s->ep.lim = cfg->limits;
	if (!s->ep.lim.idle_ms)
		s->ep.lim.idle_ms = 120000;
	limits_default(&s->ep.lim);
	s->ep.software = cfg->software ? cfg->software : "aicn";
	s->ep.log = cfg->log;
	s->ep.ud = cfg->ud;
	s->ep.srv = s;
	r = loop_timer_new(l, server_tick, s, &s->tick);
	if (r < 0) {
		free(s);
		return r;
	}
	r = loop_listen_new_conn(l, cfg->listen_fd, server_accept, s, &s->listen);
	if (r < 0) {
		loop_timer_free(s->tick);
		free(s);
		return r;
	}
	loop_timer_arm(s->tick, TICK_MS);
	*ret = s;
	return 0;
}

int net_server_handle(struct net_server *s, int type, net_handler_fn fn, void *ud)
{
	if (!proto_def_of(type))
		return -EINVAL;
	s->ep.h[type].fn = fn;
	s->ep.h[type].ud = ud;
	return 0;
}

void net_server_stats(const struct net_server *s, struct net_stats *ret)
{
	*ret = s->st;
}

struct net_server *net_server_free(struct net_server *s)
{
	if (!s)
		return NULL;
	s->freeing = true;
	loop_listen_free(s->listen);
	while (s->conns)
		conn_close(s->conns, "server shutting down", true);
	loop_timer_free(s->tick);
	free(s);
	return NULL;
}

/* ---- client ---- */

static uint64_t client_rand(struct net_client *cl)
{
	/* xorshift64*: jitter only, not security */
	cl->rnd ^= cl->rnd >> 12;
	cl->rnd ^= cl->rnd << 25;
	cl->rnd ^= cl->rnd >> 27;
	return cl->rnd * 2685821657736338717ULL;
}

static void client_connect(struct net_client *cl)
{
	struct net_conn *c;
	int r;

	cl->attempts++;
	c = conn_alloc(&cl->ep);
	if (!c) {
		client_conn_closed(cl, NULL, "out of memory");
		return;
	}
	snprintf(c->addr, sizeof(c->addr), "%s", cl->target);
	cl->conn = c;
	r = loop_sock_connect(cl->ep.l, (struct sockaddr *)&cl->addr, cl->addrlen, &sock_ops, c,
			      &c->sock);
	if (r < 0) {
		char why[96];

		snprintf(why, sizeof(why), "cannot connect: %s", strerror(-r));
		conn_close(c, why, false);
	}
}

static void client_retry(struct loop_timer *t _unused_, void *ud)
{
	client_connect(ud);
}

static void client_conn_closed(struct net_client *cl, struct net_conn *c, const char *reason)
{
	uint64_t d;
	unsigned shift = MIN(cl->attempt, 20u);

	if (c && cl->conn == c) {
		cl->conn = NULL;
		if (cl->cfg.on_down && !cl->freeing)
			cl->cfg.on_down(cl, reason, c->was_ready, cl->cfg.ud);
		net_conn_unref(c);
	}
	if (cl->freeing)
		return;
	d = MIN((uint64_t)cl->cfg.backoff_min_ms << shift, (uint64_t)cl->cfg.backoff_max_ms);
	d = d / 2 + client_rand(cl) % (d / 2 + 1);
	cl->attempt++;
	ep_log(&cl->ep, LOG_LVL_WARN, "connection to %s: %s; retrying in %llu ms", cl->target,
	       reason, (unsigned long long)d);
	loop_timer_arm(cl->retry, d);
}

static void client_tick(struct loop_timer *t, void *ud)
{
	struct net_client *cl = ud;
	struct net_conn *c = cl->conn;

	if (c) {
		const char *why = conn_expired(c, loop_now_ms(cl->ep.l));

		if (why)
			conn_close(c, why, false);
	}
	loop_timer_arm(t, TICK_MS);
}

int net_client_new(struct loop *l, const struct net_client_config *cfg, struct net_client **ret)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
	struct net_client *cl;
	char port[8];
	int r;

	if (!cfg->tls || !cfg->host)
		return -EINVAL;
	snprintf(port, sizeof(port), "%u", cfg->port);
	r = getaddrinfo(cfg->host, port, &hints, &ai);
	if (r != 0 || !ai)
		return -EHOSTUNREACH;
	cl = calloc(1, sizeof(*cl));
	if (!cl) {
		freeaddrinfo(ai);
		return -ENOMEM;
	}
	memcpy(&cl->addr, ai->ai_addr, MIN((size_t)ai->ai_addrlen, sizeof(cl->addr)));
	cl->addrlen = ai->ai_addrlen;
	freeaddrinfo(ai);
	cl->cfg = *cfg;
	if (!cl->cfg.backoff_min_ms)
		cl->cfg.backoff_min_ms = 500;
	if (!cl->cfg.backoff_max_ms)
		cl->cfg.backoff_max_ms = 30000;
	snprintf(cl->target, sizeof(cl->target), "%.48s:%u", cfg->host, cfg->port);
	cl->ep.l = l;
	cl->ep.tls = cfg->tls;
	cl->ep.lim = cfg->limits; /* idle_ms 0: the client does not time out a quiet server */
	limits_default(&cl->ep.lim);
	cl->ep.software = cfg->software ? cfg->software : "aicn";
	cl->ep.log = cfg->log;
	cl->ep.ud = cfg->ud;
	cl->ep.cli = cl;
	if (getrandom(&cl->rnd, sizeof(cl->rnd), GRND_NONBLOCK) != sizeof(cl->rnd) || !cl->rnd)
		cl->rnd = (uint64_t)(uintptr_t)cl ^ loop_now_ms(l) ^ 0x9e3779b97f4a7c15ULL;
	r = loop_timer_new(l, client_retry, cl, &cl->retry);
	if (r >= 0)
		r = loop_timer_new(l, client_tick, cl, &cl->tick);
	if (r < 0) {
		loop_timer_free(cl->retry);
		free(cl);
		return r;
	}
	*ret = cl;
	return 0;
}

int net_client_handle(struct net_client *cl, int type, net_handler_fn fn, void *ud)
{
	if (!proto_def_of(type))
		return -EINVAL;
	cl->ep.h[type].fn = fn;
	cl->ep.h[type].ud = ud;
	return 0;
}

int net_client_set_register(struct net_client *cl, const cJSON *msg)
{
	cJSON *dup = msg ? cJSON_Duplicate(msg, 1) : NULL;

	if (msg && !dup)
		return -ENOMEM;
	cJSON_Delete(cl->reg);
	cl->reg = dup;
	return 0;
}

int net_client_start(struct net_client *cl)
{
	loop_timer_arm(cl->tick, TICK_MS);
	client_connect(cl);
	return 0;
}

struct net_conn *net_client_conn(const struct net_client *cl)
{
	return cl->conn && cl->conn->state == CS_READY ? cl->conn : NULL;
}

int net_client_send(struct net_client *cl, cJSON *msg, int64_t *ret_id)
{
	struct net_conn *c = net_client_conn(cl);

	return c ? net_conn_send(c, msg, ret_id) : -ENOTCONN;
}

uint64_t net_client_attempts(const struct net_client *cl)
{
	return cl->attempts;
}

struct net_client *net_client_free(struct net_client *cl)
{
	if (!cl)
		return NULL;
	cl->freeing = true;
	if (cl->conn)
		conn_close(cl->conn, "client shutting down", true);
	loop_timer_free(cl->retry);
	loop_timer_free(cl->tick);
	cJSON_Delete(cl->reg);
	free(cl);
	return NULL;
}
