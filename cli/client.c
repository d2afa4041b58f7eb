/* client.c -- aicnctl's blocking coordinator client: runs the event loop until the awaited reply arrives. */
#include "client.h"

#include <aicn/canon.h>
#include <aicn/compiler.h>
#include <aicn/hash.h>
#include <aicn/loop.h>
#include <aicn/net.h>
#include <aicn/tls.h>
#include <aicn/version.h>

#include <ctype.h>
#include <fcntl.h>
#include <ini.h>
#include <libgen.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>

#define DEFAULT_PORT 7443
#define DEFAULT_TIMEOUT_S 30
#define INBOX_MAX 4096
#define PUT_WINDOW 4 /* BLOB_PUT chunks in flight (4 x 350 KB of base64) */

struct client_opts client_opts;
static struct client_opts global_opts;

const struct opt client_opt_table[] = {
	{"coordinator", 0, OPT_STR, &client_opts.coordinator, "HOST:PORT",
	 "the coordinator to talk to (port default 7443)", 0, 0},
	{"cert", 0, OPT_STR, &client_opts.cert, "FILE",
	 "our certificate (PEM, from the network CA)", 0, 0},
	{"key", 0, OPT_STR, &client_opts.key, "FILE", "its Ed25519 private key (PEM)", 0, 0},
	{"ca", 0, OPT_STR, &client_opts.ca, "FILE", "the network CA certificate (PEM)", 0, 0},
	{"config", 0, OPT_STR, &client_opts.config, "FILE",
	 "read these settings from FILE (INI: coordinator, cert,\nkey, ca, timeout)", 0, 0},
	{"timeout", 0, OPT_DURATION, &client_opts.timeout, "DURATION",
	 "give up on a reply after this long (default 30s)", 1, 86400},
	{0},
};

int client_global_opts(int argc, char **argv)
{
	static const struct opt_cmd cmd = {"aicnctl", "", "", NULL, client_opt_table,
					   0,	      -1, 0,  NULL};
	int i = 1;

	/* only --name VALUE / --name=VALUE pairs that the table knows, before the command */
	while (i < argc && argv[i][0] == '-' && argv[i][1] == '-' && argv[i][2]) {
		const char *s = argv[i] + 2, *eq = strchr(s, '=');
		size_t len = eq ? (size_t)(eq - s) : strlen(s);
		const struct opt *o = NULL;
		char *sub[3];
		struct opt_args a;
		int r;

		for (const struct opt *t = client_opt_table; t->name; t++)
			if (strlen(t->name) == len && strncmp(t->name, s, len) == 0)
				o = t;
		if (!o)
			break;
		sub[0] = "aicnctl";
		sub[1] = argv[i];
		sub[2] = (!eq && i + 1 < argc) ? argv[i + 1] : NULL;
		r = opt_parse(&cmd, sub[2] ? 3 : 2, sub, &a);
		if (r < 0)
			return -EINVAL;
		opt_args_done(&a);
		i += eq ? 1 : 2;
	}
	global_opts = client_opts;
	memset(&client_opts, 0, sizeof(client_opts));
	return i - 1;
}

struct client {
	struct loop *l;
	struct tls_ctx *tls;
	struct net_client *nc;
	struct loop_timer *timer;
	char target[300];
	unsigned timeout_ms;
	bool ready, down, timed_out;
	char down_reason[256];
	char log_line[512];
	struct client_msg *inbox;
	size_t n_inbox;
	char err[CLIENT_ERR_LEN];
	char err_code[40];
};

void client_msg_done(struct client_msg *m)
{
	cJSON_Delete(m->root);
	m->root = NULL;
}

const char *client_error(const struct client *c)
{
	return c->err;
}

const char *client_error_code(const struct client *c)
{
	return c->err_code;
}

const char *client_target(const struct client *c)
{
	return c->target;
}

static void set_err(struct client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(struct client *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
}

/* ---- configuration ---- */

struct conf {
	char *coordinator, *cert, *key, *ca;
	int64_t timeout;
	char dir[1024];
	char err[512];
};

static char *conf_path(const struct conf *cf, const char *v)
{
	char *p = NULL;

	if (v[0] == '/' || !cf->dir[0])
		return strdup(v);
	if (v[0] == '~' && v[1] == '/' && getenv("HOME")) {
		if (asprintf(&p, "%s/%s", getenv("HOME"), v + 2) < 0)
			return NULL;
		return p;
	}
	if (asprintf(&p, "%s/%s", cf->dir, v) < 0)
		return NULL;
	return p;
}

static int conf_cb(void *ud, const char *section, const char *name, const char *value)
{
	struct conf *cf = ud;
	char **dst = NULL;

	if (cf->err[0])
		return 0;
	if (section[0] && strcmp(section, "aicnctl") != 0) {
		snprintf(cf->err, sizeof(cf->err), "unknown section [%.64s] (keys go in [aicnctl])",
			 section);
		return 0;
	}
	if (strcmp(name, "coordinator") == 0) {
		free(cf->coordinator);
		cf->coordinator = strdup(value);
		return cf->coordinator != NULL;
	}
	if (strcmp(name, "timeout") == 0) {
		if (opt_parse_duration(value, &cf->timeout) < 0 || cf->timeout < 1 ||
		    cf->timeout > 86400)
			snprintf(cf->err, sizeof(cf->err), "timeout: '%.64s' is not a duration",
				 value);
		return 1;
	}
	if (strcmp(name, "cert") == 0)
		dst = &cf->cert;
	else if (strcmp(name, "key") == 0)
		dst = &cf->key;
	else if (strcmp(name, "ca") == 0)
		dst = &cf->ca;
	if (!dst) {
		snprintf(cf->err, sizeof(cf->err),
			 "unknown key '%.64s' (coordinator, cert, key, ca, timeout)", name);
		return 1;
	}
	free(*dst);
	*dst = conf_path(cf, value);
	return *dst != NULL;
}

static void conf_done(struct conf *cf)
{
	free(cf->coordinator);
	free(cf->cert);
	free(cf->key);
	free(cf->ca);
}

/* Read the config file; a missing default file is no error. */
static int conf_load(const struct client_opts *o, struct conf *cf, char *err)
{
	_cleanup_free_ char *def = NULL, *dircopy = NULL;
	const char *path = o->config ? o->config : global_opts.config;
	int explicit = path != NULL;
	FILE *f;
	int r;

	if (!path)
		path = getenv("AICNCTL_CONFIG");
	if (path && *path)
		explicit = 1;
	else {
		const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");

		if (xdg && *xdg)
			r = asprintf(&def, "%s/aicn/aicnctl.conf", xdg);
		else if (home && *home)
			r = asprintf(&def, "%s/.config/aicn/aicnctl.conf", home);
		else
			return 0;
		if (r < 0)
			return -ENOMEM;
		path = def;
	}
	f = fopen(path, "re");
	if (!f) {
		r = -errno;
		if (r == -ENOENT && !explicit)
			return 0;
		snprintf(err, CLIENT_ERR_LEN, "cannot read config %s: %s", path, strerror(-r));
		return r;
	}
	dircopy = strdup(path);
	if (!dircopy) {
		fclose(f);
		return -ENOMEM;
	}
	snprintf(cf->dir, sizeof(cf->dir), "%s", dirname(dircopy));
	r = ini_parse_file(f, conf_cb, cf);
	fclose(f);
	if (r != 0 || cf->err[0]) {
		if (cf->err[0])
			snprintf(err, CLIENT_ERR_LEN, "config %s: %s", path, cf->err);
		else if (r > 0)
			snprintf(err, CLIENT_ERR_LEN, "config %s: line %d: bad syntax or too long",
				 path, r);
		else
			snprintf(err, CLIENT_ERR_LEN, "config %s: cannot parse", path);
		return -EINVAL;
	}
	return 0;
}

static int split_hostport(const char *s, char *host, size_t hostlen, uint16_t *port)
{
	const char *colon;
	int64_t p = DEFAULT_PORT;
	size_t hl;

	if (s[0] == '[') {
		const char *end = strchr(s, ']');

		if (!end)
			return -EINVAL;
		hl = (size_t)(end - s - 1);
		s++;
		colon = end[1] == ':' ? end + 1 : NULL;
		if (end[1] && !colon)
			return -EINVAL;
	} else {
		colon = strrchr(s, ':');
		hl = colon ? (size_t)(colon - s) : strlen(s);
	}
	if (hl == 0 || hl >= hostlen)
		return -EINVAL;
	memcpy(host, s, hl);
	host[hl] = '\0';
	if (colon && opt_parse_int(colon + 1, 1, 65535, &p) < 0)
		return -EINVAL;
	*port = (uint16_t)p;
	return 0;
}

/* ---- the loop side ---- */

static void on_log(void *ud, enum log_level level, const char *line)
{
	struct client *c = ud;

	if (level <= LOG_LVL_WARN)
		snprintf(c->log_line, sizeof(c->log_line), "%s", line);
}

static void on_ready(struct net_client *cl _unused_, struct net_conn *conn _unused_, void *ud)
{
	struct client *c = ud;

	c->ready = true;
	loop_stop(c->l);
}

static void on_down(struct net_client *cl _unused_, const char *reason, int was_ready _unused_,
		    void *ud)
{
	struct client *c = ud;

	if (!c->down)
		snprintf(c->down_reason, sizeof(c->down_reason), "%s", reason ? reason : "closed");
	c->down = true;
	c->ready = false;
	loop_stop(c->l);
}

static void on_timer(struct loop_timer *t _unused_, void *ud)
{
	struct client *c = ud;

	c->timed_out = true;
	loop_stop(c->l);
}

static int on_msg(struct net_conn *conn, const struct proto_msg *m, void *ud)
{
	struct client *c = ud;
	struct client_msg *n;

	if (c->n_inbox >= INBOX_MAX) {
		net_conn_close(conn, "too many unsolicited messages");
		return 0;
	}
	n = realloc(c->inbox, sizeof(*n) * (c->n_inbox + 1));
	if (!n)
		return -ENOMEM;
	c->inbox = n;
	n[c->n_inbox].type = m->type;
	n[c->n_inbox].root = cJSON_Duplicate(m->root, 1);
	if (!n[c->n_inbox].root)
		return -ENOMEM;
	c->n_inbox++;
	loop_stop(c->l);
	return 0;
}

/* "connect failed: Connection refused" -> "connection refused" */
static const char *tidy_reason(const char *r, char *buf, size_t len)
{
	static const char *const prefixes[] = {"connect failed: ", "cannot connect: "};

	for (size_t i = 0; i < ARRAY_SIZE(prefixes); i++)
		if (strncmp(r, prefixes[i], strlen(prefixes[i])) == 0)
			r += strlen(prefixes[i]);
	snprintf(buf, len, "%s", r);
	if (buf[0] && isupper((unsigned char)buf[0]) && islower((unsigned char)buf[1]))
		buf[0] = (char)tolower((unsigned char)buf[0]);
	return buf;
}

/* Run the loop until pred(c, ud) holds, the connection drops or timeout_ms passes. */
static int run_until(struct client *c, bool (*pred)(struct client *c, void *ud), void *ud,
		     unsigned timeout_ms)
{
	int r;

	c->timed_out = false;
	loop_timer_arm(c->timer, timeout_ms);
	for (;;) {
		if (pred(c, ud)) {
			r = 0;
			break;
		}
		if (c->down) {
			char why[256];

			set_err(c, "connection to %s lost: %s", c->target,
				tidy_reason(c->down_reason, why, sizeof(why)));
			r = -ECONNRESET;
			break;
		}
		if (c->timed_out) {
			set_err(c, "no answer from %s within %u s", c->target,
				(timeout_ms + 999) / 1000);
			r = -ETIMEDOUT;
			break;
		}
		r = loop_run(c->l);
		if (r < 0) {
			set_err(c, "event loop failed: %s", strerror(-r));
			break;
		}
	}
	loop_timer_disarm(c->timer);
	return r;
}

static bool is_ready(struct client *c, void *ud _unused_)
{
	return c->ready;
}

static void handle_all(struct client *c)
{
	static const int builtin[] = {PROTO_ACK, PROTO_ERROR, PROTO_BLOB_PUT, PROTO_TASK_STATUS};

	for (size_t i = 0; i < ARRAY_SIZE(builtin); i++)
		net_client_handle(c->nc, builtin[i], on_msg, c);
	for (int m = 0; m < MKT_COUNT; m++)
		if (m != MKT_SUBMIT)
			net_client_handle(c->nc, market_type(m), on_msg, c);
}

int client_open(const struct client_opts *o, struct client **ret, char *err)
{
	struct conf cf = {0};
	struct tls_config tc = {.server = 0, .peer_roles = ROLE_COORDINATOR};
	struct net_client_config nc = {0};
	struct client *c = NULL;
	char host[256], terr[TLS_ERR_LEN], why[256];
	const char *coord, *cert, *key, *ca;
	uint16_t port;
	int64_t timeout;
	int r;

	err[0] = '\0';
	r = market_proto_define();
	if (r < 0) {
		snprintf(err, CLIENT_ERR_LEN, "cannot define the market messages: %s",
			 strerror(-r));
		return r;
	}
	r = conf_load(o, &cf, err);
	if (r < 0)
		goto out;
#define PICK(f) (o->f ? o->f : global_opts.f ? global_opts.f : cf.f)
	coord = PICK(coordinator);
	cert = PICK(cert);
	key = PICK(key);
	ca = PICK(ca);
#undef PICK
	timeout = o->timeout		? o->timeout
		  : global_opts.timeout ? global_opts.timeout
		  : cf.timeout		? cf.timeout
					: DEFAULT_TIMEOUT_S;
	r = -EINVAL;
	if (!coord || !cert || !key || !ca) {
		snprintf(err, CLIENT_ERR_LEN,
			 "no %s configured: set it in ~/.config/aicn/aicnctl.conf or pass --%s "
			 "(see docs/renter.md)",
			 !coord	 ? "coordinator"
			 : !cert ? "cert"
			 : !key	 ? "key"
				 : "ca",
			 !coord	 ? "coordinator HOST:PORT"
			 : !cert ? "cert FILE"
			 : !key	 ? "key FILE"
				 : "ca FILE");
		goto out;
	}
	if (split_hostport(coord, host, sizeof(host), &port) < 0) {
		snprintf(err, CLIENT_ERR_LEN, "coordinator '%s' is not HOST:PORT", coord);
		goto out;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		r = -ENOMEM;
		goto out;
	}
	snprintf(c->target, sizeof(c->target), "%s:%u", host, port);
	c->timeout_ms = (unsigned)timeout * 1000;
	tc.ca_file = ca;
	tc.cert_file = cert;
	tc.key_file = key;
	r = tls_ctx_new(&tc, &c->tls, terr);
	if (r < 0) {
		snprintf(err, CLIENT_ERR_LEN, "cannot load our TLS identity: %s", terr);
		goto out;
	}
	r = loop_new(&(struct loop_config){.buf_count = 64, .buf_size = 16384}, &c->l);
	if (r < 0) {
		snprintf(err, CLIENT_ERR_LEN, "cannot set up io_uring: %s", strerror(-r));
		goto out;
	}
	r = loop_timer_new(c->l, on_timer, c, &c->timer);
	if (r < 0)
		goto out;
	nc.tls = c->tls;
	nc.host = host;
	nc.port = port;
	nc.backoff_min_ms = 3600 * 1000; /* one attempt: a CLI reports, it does not retry */
	nc.backoff_max_ms = 3600 * 1000;
	nc.limits.handshake_ms = c->timeout_ms;
	nc.software = "aicnctl/" AICN_VERSION;
	nc.log = on_log;
	nc.on_ready = on_ready;
	nc.on_down = on_down;
	nc.ud = c;
	r = net_client_new(c->l, &nc, &c->nc);
	if (r < 0) {
		snprintf(err, CLIENT_ERR_LEN, "cannot connect to %s: %s", c->target,
			 r == -EHOSTUNREACH ? "cannot resolve the host name" : strerror(-r));
		r = -ECONNREFUSED;
		goto out;
	}
	handle_all(c);
	r = net_client_start(c->nc);
	if (r >= 0)
		r = run_until(c, is_ready, NULL, c->timeout_ms);
	if (r < 0) {
		const char *reason = c->down ? c->down_reason : "timed out";

		/* the framework's log line says more (the server's refusal, the TLS alert) */
		if (strstr(reason, "refused by the server") && c->log_line[0])
			reason = c->log_line;
		snprintf(err, CLIENT_ERR_LEN, "cannot connect to %s: %s", c->target,
			 tidy_reason(reason, why, sizeof(why)));
		goto out;
	}
	*ret = TAKE_PTR(c);
	r = 0;
out:
	conf_done(&cf);
	client_free(c);
	return r;
}

struct client *client_free(struct client *c)
{
	if (!c)
		return NULL;
	net_client_free(c->nc);
	loop_timer_free(c->timer);
	loop_free(c->l);
	tls_ctx_free(c->tls);
	for (size_t i = 0; i < c->n_inbox; i++)
		client_msg_done(&c->inbox[i]);
	free(c->inbox);
	free(c);
	return NULL;
}

int client_send(struct client *c, cJSON *msg, int64_t *ret_id)
{
	char why[PROTO_ERR_LEN];
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(msg, "type");
	int type = cJSON_IsString(t) ? proto_type_from_name(t->valuestring) : PROTO_UNKNOWN;
	int r;

	why[0] = '\0';
	if (type == PROTO_UNKNOWN || proto_validate(type, msg, why) < 0) {
		set_err(c, "refusing to send an invalid %s: %s",
			cJSON_IsString(t) ? t->valuestring : "message", why);
		cJSON_Delete(msg);
		return -EINVAL;
	}
	if (c->down || !net_client_conn(c->nc)) {
		set_err(c, "connection to %s lost: %s", c->target, c->down_reason);
		cJSON_Delete(msg);
		return -ECONNRESET;
	}
	r = net_client_send(c->nc, msg, ret_id);
	cJSON_Delete(msg);
	if (r < 0)
		set_err(c, "cannot send to %s: %s", c->target, strerror(-r));
	return r;
}

/* ---- waiting for a particular message ---- */

typedef bool (*match_fn)(const struct client_msg *m, void *ud);

struct waiter {
	match_fn match;
	void *ud;
	struct client_msg got;
	bool found;
};

static bool take_match(struct client *c, void *ud)
{
	struct waiter *w = ud;

	for (size_t i = 0; i < c->n_inbox; i++) {
		if (!w->match(&c->inbox[i], w->ud))
			continue;
		w->got = c->inbox[i];
		memmove(&c->inbox[i], &c->inbox[i + 1], sizeof(*c->inbox) * (c->n_inbox - i - 1));
		c->n_inbox--;
		w->found = true;
		return true;
	}
	return false;
}

static int wait_for(struct client *c, match_fn match, void *ud, unsigned timeout_ms,
		    struct client_msg *ret)
{
	struct waiter w = {.match = match, .ud = ud};
	int r = run_until(c, take_match, &w, timeout_ms);

	if (r < 0)
		return r;
	*ret = w.got;
	return 0;
}

static bool match_ref(const struct client_msg *m, void *ud)
{
	int64_t ref;

	return (m->type == PROTO_ACK || m->type == PROTO_ERROR ||
		m->type == market_type(MKT_REPLY)) &&
	       canon_get_i64(m->root, "ref", &ref) == 0 && ref == *(int64_t *)ud;
}

static bool match_unclaimed(const struct client_msg *m, void *ud _unused_)
{
	return m->type != PROTO_ACK && m->type != market_type(MKT_REPLY);
}

/* An ERROR message: remember it and return -EREMOTE. */
static int remote_error(struct client *c, const struct client_msg *m)
{
	const char *code = json_str(m->root, "code", "error");
	const char *msg = json_str(m->root, "message", "");

	snprintf(c->err_code, sizeof(c->err_code), "%s", code);
	set_err(c, "%s%s%s", code, msg[0] ? ": " : "", msg);
	return -EREMOTE;
}

int client_next(struct client *c, unsigned timeout_ms, struct client_msg *ret)
{
	return wait_for(c, match_unclaimed, NULL, timeout_ms, ret);
}

int client_call(struct client *c, enum market_msg m, cJSON *fields, cJSON **ret_data)
{
	cJSON *msg = proto_new(market_type(m));
	struct client_msg rep = {0};
	int64_t id;
	int r;

	c->err_code[0] = '\0';
	if (!msg) {
		cJSON_Delete(fields);
		return -ENOMEM;
	}
	while (fields && fields->child) {
		cJSON *it = cJSON_DetachItemViaPointer(fields, fields->child);

		/* the key is copied before the old one is freed */
		if (!cJSON_AddItemToObject(msg, it->string, it)) {
			cJSON_Delete(it);
			cJSON_Delete(fields);
			cJSON_Delete(msg);
			return -ENOMEM;
		}
	}
	cJSON_Delete(fields);
	r = client_send(c, msg, &id);
	if (r < 0)
		return r;
	r = wait_for(c, match_ref, &id, c->timeout_ms, &rep);
	if (r < 0)
		return r;
	if (rep.type == PROTO_ERROR) {
		r = remote_error(c, &rep);
	} else if (rep.type != market_type(MKT_REPLY)) {
		set_err(c, "unexpected %s in answer to %s", proto_type_name(rep.type),
			proto_type_name(market_type(m)));
		r = -EPROTO;
	} else {
		cJSON *data = cJSON_DetachItemFromObjectCaseSensitive(rep.root, "data");

		if (!cJSON_IsObject(data)) {
			cJSON_Delete(data);
			set_err(c, "REPLY without data");
			r = -EPROTO;
		} else {
			*ret_data = data;
			r = 0;
		}
	}
	client_msg_done(&rep);
	return r;
}

/* ---- blobs ---- */

static int put_chunk(struct client *c, const char *digest, uint64_t off, uint64_t size,
		     const uint8_t *buf, size_t len, int last, int64_t *ret_id)
{
	_cleanup_free_ char *b64 = NULL;
	cJSON *msg = proto_new(PROTO_BLOB_PUT);
	int r;

	if (!msg)
		return -ENOMEM;
	r = base64_encode(buf, len, &b64);
	if (r < 0 || !cJSON_AddStringToObject(msg, "digest", digest) ||
	    canon_add_u64(msg, "offset", off) < 0 || canon_add_u64(msg, "size", size) < 0 ||
	    !cJSON_AddStringToObject(msg, "data", b64) ||
	    !cJSON_AddBoolToObject(msg, "last", last)) {
		cJSON_Delete(msg);
		return r < 0 ? r : -ENOMEM;
	}
	return client_send(c, msg, ret_id);
}

/* Wait for the answer to chunk id; 1 when the coordinator says it has the whole blob. */
static int put_wait(struct client *c, int64_t id, uint64_t size, unsigned timeout_ms)
{
	struct client_msg rep = {0};
	int64_t seq;
	int r;

	r = wait_for(c, match_ref, &id, timeout_ms, &rep);
	if (r < 0)
		return r;
	if (rep.type == PROTO_ERROR)
		r = remote_error(c, &rep);
	else
		r = canon_get_i64(rep.root, "seq", &seq) == 0 && (uint64_t)seq == size;
	client_msg_done(&rep);
	return r;
}

int client_blob_put(struct client *c, const char *path, char ret_digest[72], uint64_t *ret_size,
		    int *ret_had, void (*progress)(uint64_t done, uint64_t total, void *ud),
		    void *ud)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	_cleanup_free_ uint8_t *buf = NULL;
	int64_t ids[PUT_WINDOW];
	uint8_t md[SHA256_LEN];
	char digest[72], hex[SHA256_HEX_LEN + 1];
	uint64_t size, off = 0, acked = 0;
	unsigned head = 0, tail = 0;
	struct stat st;
	int r, had = 0;

	if (fd < 0 || fstat(fd, &st) < 0) {
		r = -errno;
		set_err(c, "cannot open %s: %s", path, strerror(-r));
		return r;
	}
	if (!S_ISREG(st.st_mode)) {
		set_err(c, "%s is not a regular file", path);
		return -EINVAL;
	}
	size = (uint64_t)st.st_size;
	r = sha256_file(AT_FDCWD, path, md);
	if (r < 0) {
		set_err(c, "cannot read %s: %s", path, strerror(-r));
		return r;
	}
	hex_encode(md, SHA256_LEN, hex);
	snprintf(digest, sizeof(digest), "sha256:%s", hex);
	buf = malloc(PROTO_BLOB_CHUNK);
	if (!buf)
		return -ENOMEM;
	/* the first chunk alone: the coordinator may already have the blob */
	do {
		size_t len = (size_t)MIN((uint64_t)PROTO_BLOB_CHUNK, size - off);
		ssize_t n = pread(fd, buf, len, (off_t)off);

		if (n != (ssize_t)len) {
			r = n < 0 ? -errno : -EIO;
			set_err(c, "cannot read %s: %s", path,
				n < 0 ? strerror(errno) : "file shrank");
			return r;
		}
		r = put_chunk(c, digest, off, size, buf, len, off + len == size,
			      &ids[head % PUT_WINDOW]);
		if (r < 0)
			return r;
		head++;
		off += len;
		if (off == len) {
			r = put_wait(c, ids[tail++ % PUT_WINDOW], size,
				     off == size ? c->timeout_ms * 4 : c->timeout_ms);
			if (r < 0)
				return r;
			if (r == 1 && off < size) {
				had = 1;
				break;
			}
			acked = off;
			if (progress)
				progress(acked, size, ud);
		}
		while (tail < head && (head - tail == PUT_WINDOW || off == size)) {
			uint64_t chunk_end = MIN(acked + PROTO_BLOB_CHUNK, size);

			r = put_wait(c, ids[tail++ % PUT_WINDOW], size,
				     chunk_end == size ? c->timeout_ms * 4 : c->timeout_ms);
			if (r < 0)
				return r;
			acked = chunk_end;
			if (progress)
				progress(acked, size, ud);
		}
	} while (off < size);
	memcpy(ret_digest, digest, sizeof(digest));
	*ret_size = size;
	*ret_had = had;
	return 0;
}

struct blob_match {
	const char *digest;
	uint64_t offset;
	int64_t id;
};

static bool match_chunk(const struct client_msg *m, void *ud)
{
	struct blob_match *bm = ud;
	int64_t off, ref;

	if (m->type == PROTO_ERROR)
		return canon_get_i64(m->root, "ref", &ref) == 0 && ref == bm->id;
	return m->type == PROTO_BLOB_PUT &&
	       strcmp(json_str(m->root, "digest", ""), bm->digest) == 0 &&
	       canon_get_i64(m->root, "offset", &off) == 0 && (uint64_t)off == bm->offset;
}

int client_blob_get(struct client *c, const char *digest, int fd, uint64_t max, uint64_t *ret_size)
{
	struct sha256_ctx *h = NULL;
	uint8_t want[SHA256_LEN], got[SHA256_LEN];
	uint64_t off = 0, total = 0;
	int last = 0, r;

	if (digest_parse(digest, want) < 0) {
		set_err(c, "'%s' is not a sha256 digest", digest);
		return -EINVAL;
	}
	r = sha256_new(&h);
	if (r < 0)
		return r;
	while (!last) {
		struct blob_match bm = {.digest = digest, .offset = off};
		struct client_msg rep = {0};
		_cleanup_free_ uint8_t *data = NULL;
		cJSON *msg = proto_new(PROTO_BLOB_GET);
		size_t len = 0;
		int64_t size;
		const char *b64;

		if (!msg || !cJSON_AddStringToObject(msg, "digest", digest) ||
		    canon_add_u64(msg, "offset", off) < 0) {
			cJSON_Delete(msg);
			r = -ENOMEM;
			goto out;
		}
		r = client_send(c, msg, &bm.id);
		if (r >= 0)
			r = wait_for(c, match_chunk, &bm, c->timeout_ms, &rep);
		if (r < 0)
			goto out;
		if (rep.type == PROTO_ERROR) {
			r = remote_error(c, &rep);
			client_msg_done(&rep);
			goto out;
		}
		b64 = json_str(rep.root, "data", NULL);
		last = json_bool(rep.root, "last", 0);
		r = canon_get_i64(rep.root, "size", &size);
		if (r < 0 || !b64 || base64_decode(b64, strlen(b64), &data, &len) < 0 ||
		    (off == 0 && (size < 0 || (uint64_t)size > max)) ||
		    (off > 0 && (uint64_t)size != total) || off + len > (uint64_t)size ||
		    (!last && len == 0) || (last && off + len != (uint64_t)size)) {
			client_msg_done(&rep);
			set_err(c, "blob %s: bad chunk at offset %llu%s", digest,
				(unsigned long long)off,
				size >= 0 && (uint64_t)size > max ? " (larger than allowed)" : "");
			r = -EBADMSG;
			goto out;
		}
		total = (uint64_t)size;
		client_msg_done(&rep);
		sha256_update(h, data, len);
		for (size_t w = 0; w < len;) {
			ssize_t n = write(fd, data + w, len - w);

			if (n < 0) {
				r = -errno;
				set_err(c, "cannot write the blob: %s", strerror(errno));
				goto out;
			}
			w += (size_t)n;
		}
		off += len;
	}
	sha256_final(h, got);
	if (memcmp(got, want, SHA256_LEN) != 0) {
		char hex[SHA256_HEX_LEN + 1];

		hex_encode(got, SHA256_LEN, hex);
		set_err(c, "blob %s: downloaded data hashes to sha256:%s", digest, hex);
		r = -EBADMSG;
		goto out;
	}
	*ret_size = off;
	r = 0;
out:
	sha256_free(h);
	return r;
}

/* ---- output and error helpers ---- */

int client_fail(const struct client *c, const char *cmd, int r, const char *what)
{
	const char *msg = c && c->err[0] ? c->err : strerror(-r);

	if (r == -EREMOTE) {
		fprintf(stderr, "%s: %s: refused by the coordinator: %s\n", cmd, what, msg);
		return EXIT_REFUSED;
	}
	fprintf(stderr, "%s: %s: %s\n", cmd, what, msg);
	if (r == -ECONNRESET || r == -ETIMEDOUT || r == -ENOTCONN || r == -EPIPE ||
	    r == -ECONNREFUSED || r == -EPROTO)
		return EXIT_CONNECT;
	return EXIT_FAIL;
}

int client_open_or_fail(const char *cmd, struct client **ret)
{
	char err[CLIENT_ERR_LEN];
	int r = client_open(&client_opts, ret, err);

	if (r >= 0)
		return 0;
	fprintf(stderr, "%s: %s\n", cmd, err[0] ? err : strerror(-r));
	/* a missing or bad setting is the caller's to fix: 1; the network: 3 */
	return r == -EINVAL || r == -ENOENT || r == -EACCES || r == -ENOMEM ? EXIT_FAIL
									    : EXIT_CONNECT;
}

int client_print_json(const cJSON *data)
{
	_cleanup_free_ char *s = NULL;
	size_t len;
	int r = canon_print(data, &s, &len);

	if (r < 0) {
		fprintf(stderr, "aicnctl: cannot print the reply as JSON: %s\n", strerror(-r));
		return EXIT_FAIL;
	}
	puts(s);
	return EXIT_OK;
}

const char *json_task_id(const cJSON *obj, const char *key, char buf[32])
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
	int64_t v;

	if (cJSON_IsString(it)) {
		snprintf(buf, 32, "%s", it->valuestring);
		return buf;
	}
	if (it && canon_number_i64(it, &v) == 0) {
		snprintf(buf, 32, "%lld", (long long)v);
		return buf;
	}
	snprintf(buf, 32, "?");
	return buf;
}

int64_t json_i64(const cJSON *obj, const char *key, int64_t def)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
	int64_t v;

	if (!it)
		return def;
	if (canon_number_i64(it, &v) == 0)
		return v;
	if (cJSON_IsString(it) && opt_parse_int(it->valuestring, INT64_MIN, INT64_MAX, &v) == 0)
		return v;
	return def;
}

const char *json_str(const cJSON *obj, const char *key, const char *def)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);

	return cJSON_IsString(it) ? it->valuestring : def;
}

int json_bool(const cJSON *obj, const char *key, int def)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);

	return cJSON_IsBool(it) ? cJSON_IsTrue(it) : def;
}

int json_is_amount(const char *key)
{
	static const char *const suffixes[] = {"balance", "escrow",   "stake",	"unbonding",
					       "price",	  "refund",   "cost",	"amount",
					       "earned",  "earnings", "reward", "charged",
					       "rewards", "charges",  "paid",	"fees"};
	size_t kl = strlen(key);

	for (size_t i = 0; i < ARRAY_SIZE(suffixes); i++) {
		size_t sl = strlen(suffixes[i]);

		if (kl >= sl && strcmp(key + kl - sl, suffixes[i]) == 0)
			return 1;
	}
	return 0;
}

static void print_scalar(const cJSON *it, const char *key, FILE *f)
{
	int64_t v;

	if (cJSON_IsString(it)) {
		fputs(it->valuestring, f);
	} else if (cJSON_IsBool(it)) {
		fputs(cJSON_IsTrue(it) ? "yes" : "no", f);
	} else if (cJSON_IsNull(it)) {
		fputs("-", f);
	} else if (canon_number_i64(it, &v) == 0) {
		size_t kl = key ? strlen(key) : 0;

		if (key && json_is_amount(key)) {
			char a[AMOUNT_STR_LEN];

			fprintf(f, "%s AICN", amount_format(v, a));
		} else if (kl > 3 && strcmp(key + kl - 3, "_ns") == 0 && v < 1000000000000000LL) {
			fprintf(f, "%.3f s", (double)v / 1e9);
		} else {
			fprintf(f, "%lld", (long long)v);
		}
	} else {
		_cleanup_free_ char *s = NULL;
		size_t len;

		if (canon_print(it, &s, &len) == 0)
			fputs(s, f);
	}
}

void client_print_kv(const cJSON *obj, int indent)
{
	const cJSON *it;

	cJSON_ArrayForEach (it, obj) {
		const char *key = it->string ? it->string : "-";

		if (cJSON_IsObject(it)) {
			printf("%*s%s:\n", indent, "", key);
			client_print_kv(it, indent + 2);
		} else if (cJSON_IsArray(it)) {
			const cJSON *el;

			printf("%*s%s:%s\n", indent, "", key,
			       cJSON_GetArraySize(it) ? "" : " (none)");
			cJSON_ArrayForEach (el, it) {
				if (cJSON_IsObject(el)) {
					const cJSON *m;
					int first = 1;

					printf("%*s-", indent + 2, "");
					cJSON_ArrayForEach (m, el) {
						printf("%s%s=", first ? " " : "  ", m->string);
						print_scalar(m, m->string, stdout);
						first = 0;
					}
					putchar('\n');
				} else {
					printf("%*s- ", indent + 2, "");
					print_scalar(el, key, stdout);
					putchar('\n');
				}
			}
		} else {
			printf("%*s%s: ", indent, "", key);
			print_scalar(it, key, stdout);
			putchar('\n');
		}
	}
}
