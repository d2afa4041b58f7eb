/* conf.c -- parse and check /etc/aicn/coordinator.conf with inih: every key validated, unknown keys refused. */
#include "conf.h"

#include <aicn/compiler.h>
#include <aicn/confval.h>
#include <aicn/fileio.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONF_FILE_MAX (1 << 20)
#define SETTLEMENT_DEFAULT true
#define CONF_PATH_MAX 1024
#define CONF_NETWORK_MAX 64
#define HEARTBEAT_MIN 1

enum conf_key {
	K_LISTEN,
	K_CERT,
	K_KEY,
	K_CA,
	K_CRL,
	K_STATE_DIR,
	K_NETWORK,
	K_PARAMS,
	K_PORT_FILE,
	K_HEARTBEAT_TIMEOUT,
	K_RETRY_CAP,
	K_BLOB_RETENTION,
	K_RESULT_GRACE,
	K_MAX_ACTIVE,
	K_TICK_MS,
	K_MAX_CONNS,
	K_LOG_LEVEL,
	K_SETTLEMENT,
	K_N,
};

static const char *const key_names[K_N] = {
	[K_LISTEN] = "listen",
	[K_CERT] = "cert",
	[K_KEY] = "key",
	[K_CA] = "ca",
	[K_CRL] = "crl",
	[K_STATE_DIR] = "state_dir",
	[K_NETWORK] = "network",
	[K_PARAMS] = "params",
	[K_PORT_FILE] = "port_file",
	[K_HEARTBEAT_TIMEOUT] = "heartbeat_timeout",
	[K_RETRY_CAP] = "retry_cap",
	[K_BLOB_RETENTION] = "blob_retention",
	[K_RESULT_GRACE] = "result_grace",
	[K_MAX_ACTIVE] = "max_active",
	[K_TICK_MS] = "tick_ms",
	[K_MAX_CONNS] = "max_connections",
	[K_LOG_LEVEL] = "log_level",
	[K_SETTLEMENT] = "settlement",
};

struct conf_parse {
	const char *name; /* file name for messages */
	const char *text;
	size_t len, pos;
	int line; /* line handed to inih last */
	struct coord_conf *c;
	int set_at[K_N]; /* line where each key was set, 0 = unset */
	char *err;
	size_t errlen;
	int error; /* first error, 0 = none */
};

static int conf_fail(struct conf_parse *p, const char *fmt, ...) _printf_(2, 3);
static int conf_fail(struct conf_parse *p, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (p->error)
		return p->error;
	p->error = -EINVAL;
	if (!p->err || !p->errlen)
		return p->error;
	n = p->line ? snprintf(p->err, p->errlen, "%s:%d: ", p->name, p->line)
		    : snprintf(p->err, p->errlen, "%s: ", p->name);
	if (n < 0 || (size_t)n >= p->errlen)
		return p->error;
	va_start(ap, fmt);
	vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return p->error;
}

static int set_str(char **field, const char *v)
{
	char *d = v ? strdup(v) : NULL;

	if (v && !d)
		return -ENOMEM;
	free(*field);
	*field = d;
	return 0;
}

int coord_conf_init(struct coord_conf *c)
{
	*c = (struct coord_conf){
		.listen_port = 7443,
		.heartbeat_timeout = 30,
		.retry_cap = 3,
		.blob_retention = 7 * 86400,
		.result_grace = 0,
		.max_active = 1000000,
		.tick_ms = 1000,
		.max_conns = 100000,
		.log_level = LOG_LVL_INFO,
		.settlement = SETTLEMENT_DEFAULT,
	};
	snprintf(c->listen_host, sizeof(c->listen_host), "0.0.0.0");
	if (set_str(&c->listen, "0.0.0.0:7443") < 0 ||
	    set_str(&c->cert, "/etc/aicn/coordinator.pem") < 0 ||
	    set_str(&c->key, "/etc/aicn/coordinator.key") < 0 ||
	    set_str(&c->ca, "/etc/aicn/ca.pem") < 0 ||
	    set_str(&c->state_dir, COORD_STATE_DEFAULT) < 0 || set_str(&c->network, "aicn") < 0) {
		coord_conf_done(c);
		return -ENOMEM;
	}
	return 0;
}

void coord_conf_done(struct coord_conf *c)
{
	free(c->listen);
	free(c->cert);
	free(c->key);
	free(c->ca);
	free(c->crl);
	free(c->state_dir);
	free(c->network);
	free(c->params);
	free(c->port_file);
	*c = (struct coord_conf){0};
}

static bool printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			return false;
	return true;
}

/* "IPv4:port" or "[IPv6]:port"; port 0 means any free port. */
static int parse_listen(const char *s, char *host, size_t hostlen, uint16_t *port, const char **why)
{
	const char *colon, *h = s;
	size_t hl;
	uint64_t pv;
	union {
		struct in_addr a4;
		struct in6_addr a6;
	} a;

	if (s[0] == '[') {
		const char *end = strchr(s, ']');

		if (!end || end[1] != ':') {
			*why = "expected [IPv6]:port";
			return -EINVAL;
		}
		h = s + 1;
		hl = (size_t)(end - h);
		colon = end + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || strchr(s, ':') != colon) {
			*why = "expected address:port (IPv6 as [addr]:port)";
			return -EINVAL;
		}
		hl = (size_t)(colon - s);
	}
	if (!hl || hl >= hostlen) {
		*why = "missing or too long address";
		return -EINVAL;
	}
	memcpy(host, h, hl);
	host[hl] = '\0';
	if (inet_pton(s[0] == '[' ? AF_INET6 : AF_INET, host, &a) != 1) {
		*why = "the address must be an IP address (e.g. 0.0.0.0 or [::])";
		return -EINVAL;
	}
	if (confval_uint(colon + 1, 65535, &pv) < 0) {
		*why = "port must be 0-65535";
		return -EINVAL;
	}
	*port = (uint16_t)pv;
	return 0;
}

static int set_path(struct conf_parse *p, const char *key, char **field, const char *v,
		    bool optional)
{
	if (optional && !*v) {
		free(*field);
		*field = NULL;
		return 0;
	}
	if (v[0] != '/' || strlen(v) >= CONF_PATH_MAX || !printable(v))
		return conf_fail(p, "%s: '%.200s' is not an absolute path", key, v);
	if (set_str(field, v) < 0)
		return p->error = -ENOMEM;
	return 0;
}

static int handle_key(struct conf_parse *p, enum conf_key k, const char *v)
{
	struct coord_conf *c = p->c;
	const char *key = key_names[k], *why = NULL;
	uint64_t n;
	int64_t d;

	switch (k) {
	case K_LISTEN:
		if (parse_listen(v, c->listen_host, sizeof(c->listen_host), &c->listen_port, &why) <
		    0)
			return conf_fail(p, "listen: '%.200s': %s", v, why);
		return set_str(&c->listen, v) < 0 ? (p->error = -ENOMEM) : 0;
	case K_CERT:
		return set_path(p, key, &c->cert, v, false);
	case K_KEY:
		return set_path(p, key, &c->key, v, false);
	case K_CA:
		return set_path(p, key, &c->ca, v, false);
	case K_CRL:
		return set_path(p, key, &c->crl, v, true);
	case K_STATE_DIR:
		return set_path(p, key, &c->state_dir, v, false);
	case K_PARAMS:
		return set_path(p, key, &c->params, v, true);
	case K_PORT_FILE:
		return set_path(p, key, &c->port_file, v, true);
	case K_NETWORK: {
		size_t len = strlen(v);
		bool ok = len >= 1 && len <= CONF_NETWORK_MAX;

		for (size_t i = 0; ok && i < len; i++)
			ok = (v[i] >= 'a' && v[i] <= 'z') || (v[i] >= '0' && v[i] <= '9') ||
			     strchr("-._", v[i]);
		if (!ok)
			return conf_fail(p, "network: '%.200s': 1 to %d of a-z 0-9 - . _", v,
					 CONF_NETWORK_MAX);
		return set_str(&c->network, v) < 0 ? (p->error = -ENOMEM) : 0;
	}
	case K_HEARTBEAT_TIMEOUT:
		if (confval_duration(v, 86400, &d) < 0 || d < HEARTBEAT_MIN)
			return conf_fail(p, "%s: '%.200s': a duration from %ds to 1d (e.g. 30s)",
					 key, v, HEARTBEAT_MIN);
		c->heartbeat_timeout = d;
		return 0;
	case K_BLOB_RETENTION:
		if (confval_duration(v, 3650LL * 86400, &d) < 0 || d < 60)
			return conf_fail(p, "%s: '%.200s': a duration from 60s to 3650d (e.g. 7d)",
					 key, v);
		c->blob_retention = d;
		return 0;
	case K_RESULT_GRACE:
		if (confval_duration(v, 365LL * 86400, &d) < 0)
			return conf_fail(p, "%s: '%.200s': a duration from 0 to 365d (e.g. 1h)",
					 key, v);
		c->result_grace = d;
		return 0;
	case K_RETRY_CAP:
		if (confval_uint(v, 100, &n) < 0)
			return conf_fail(p, "%s: '%.200s': an integer from 0 to 100", key, v);
		c->retry_cap = (uint32_t)n;
		return 0;
	case K_MAX_ACTIVE:
		if (confval_uint(v, 100000000, &n) < 0 || n < 1)
			return conf_fail(p, "%s: '%.200s': an integer from 1 to 100000000", key, v);
		c->max_active = n;
		return 0;
	case K_TICK_MS:
		if (confval_uint(v, 60000, &n) < 0 || n < 10)
			return conf_fail(p, "%s: '%.200s': milliseconds from 10 to 60000", key, v);
		c->tick_ms = (unsigned)n;
		return 0;
	case K_MAX_CONNS:
		if (confval_uint(v, 1000000, &n) < 0 || n < 1)
			return conf_fail(p, "%s: '%.200s': an integer from 1 to 1000000", key, v);
		c->max_conns = (unsigned)n;
		return 0;
	case K_LOG_LEVEL:
		if (log_level_parse(v, &c->log_level) < 0)
			return conf_fail(p, "%s: '%.200s': one of err, warn, info, debug", key, v);
		return 0;
	case K_SETTLEMENT:
		if (confval_bool(v, &c->settlement) < 0)
			return conf_fail(p, "%s: '%.200s': on or off", key, v);
		return 0;
	case K_N:
		break;
	}
	return 0;
}

static int ini_cb(void *user, const char *section, const char *name, const char *value)
{
	struct conf_parse *p = user;

	if (p->error)
		return 0;
	if (section[0] && strcmp(section, "coordinator") != 0) {
		conf_fail(p, "unknown section [%.64s] (only [coordinator])", section);
		return 0;
	}
	if (!name || !value) {
		conf_fail(p, "expected 'key = value'");
		return 0;
	}
	for (int k = 0; k < K_N; k++) {
		if (strcmp(name, key_names[k]) != 0)
			continue;
		/* A repeated key: the last one wins (like systemd units), each value checked. */
		p->set_at[k] = p->line;
		handle_key(p, (enum conf_key)k, value);
		return !p->error;
	}
	conf_fail(p, "unknown key '%.64s' (see aicn-coordinator --help)", name);
	return 0;
}

/* fgets-like reader over the buffer that counts lines and refuses NUL bytes and long lines. */
static char *conf_reader(char *str, int num, void *stream)
{
	struct conf_parse *p = stream;
	const char *start, *nl;
	size_t n;

	if (p->error || p->pos >= p->len)
		return NULL;
	start = p->text + p->pos;
	nl = memchr(start, '\n', p->len - p->pos);
	n = nl ? (size_t)(nl - start) + 1 : p->len - p->pos;
	p->line++;
	if (memchr(start, '\0', n)) {
		conf_fail(p, "NUL byte in the file");
		return NULL;
	}
	if (n >= (size_t)num - 1) {
		conf_fail(p, "line longer than %d bytes", num - 2);
		return NULL;
	}
	memcpy(str, start, n);
	str[n] = '\0';
	p->pos += n;
	/* inih reports nothing for a section without keys: check every header here. */
	{
		const char *h = str + strspn(str, " \t");

		if (*h == '[' && strncmp(h, "[coordinator]", 13) != 0) {
			size_t hl = strcspn(h, "]\r\n");

			conf_fail(p, "unknown section %.*s] (only [coordinator])", (int)MIN(hl, 64),
				  h);
			return NULL;
		}
	}
	return str;
}

int coord_conf_load(struct coord_conf *c, const char *path, char *err, size_t errlen)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *buf = NULL;
	struct stat sb;
	size_t got = 0;
	int r;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0 || fstat(fd, &sb) < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(-r));
		return r;
	}
	if (!S_ISREG(sb.st_mode) || read_fd_all(fd, CONF_FILE_MAX, &buf, &got) < 0) {
		snprintf(err, errlen, "%s: not a readable regular file of at most 1 MiB", path);
		return -EINVAL;
	}
	return coord_conf_parse(c, path, buf, got, err, errlen);
}

int coord_conf_parse(struct coord_conf *c, const char *name, const char *text, size_t len,
		     char *err, size_t errlen)
{
	struct conf_parse p = {.name = name, .c = c, .err = err, .errlen = errlen};
	int r;

	if (err && errlen)
		err[0] = '\0';
	p.text = text;
	p.len = len;
	r = ini_parse_stream(conf_reader, &p, ini_cb, &p);
	if (!p.error && r == -2)
		p.error = -ENOMEM;
	if (!p.error && r != 0) {
		p.line = r;
		conf_fail(&p, "syntax error (expected 'key = value' or '[coordinator]')");
	}
	if (p.error == -ENOMEM && err && errlen)
		snprintf(err, errlen, "%s: out of memory", name);
	return p.error;
}

static int check_readable(const char *key, const char *path, char *err, size_t errlen)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	struct stat sb;

	if (fd < 0 || fstat(fd, &sb) < 0) {
		int r = -errno;

		snprintf(err, errlen, "%s = %s: cannot read: %s", key, path, strerror(-r));
		return r;
	}
	if (!S_ISREG(sb.st_mode)) {
		snprintf(err, errlen, "%s = %s: not a regular file", key, path);
		return -EINVAL;
	}
	return 0;
}

int coord_conf_check_files(const struct coord_conf *c, char *err, size_t errlen)
{
	struct stat sb;
	int r;

	if ((r = check_readable("cert", c->cert, err, errlen)) < 0 ||
	    (r = check_readable("key", c->key, err, errlen)) < 0 ||
	    (r = check_readable("ca", c->ca, err, errlen)) < 0 ||
	    (c->crl && (r = check_readable("crl", c->crl, err, errlen)) < 0) ||
	    (c->params && (r = check_readable("params", c->params, err, errlen)) < 0))
		return r;
	if (stat(c->state_dir, &sb) == 0) {
		if (!S_ISDIR(sb.st_mode)) {
			snprintf(err, errlen, "state_dir = %s: not a directory", c->state_dir);
			return -ENOTDIR;
		}
		if (access(c->state_dir, W_OK | X_OK) < 0) {
			r = -errno;
			snprintf(err, errlen, "state_dir = %s: not writable: %s", c->state_dir,
				 strerror(-r));
			return r;
		}
	} else if (errno != ENOENT) {
		r = -errno;
		snprintf(err, errlen, "state_dir = %s: %s", c->state_dir, strerror(-r));
		return r;
	}
	return 0;
}

static const char *level_name(enum log_level l)
{
	switch (l) {
	case LOG_LVL_ERR:
		return "err";
	case LOG_LVL_WARN:
		return "warn";
	case LOG_LVL_DEBUG:
		return "debug";
	default:
		return "info";
	}
}

void coord_conf_print(const struct coord_conf *c, FILE *f)
{
	fprintf(f,
		"[coordinator]\n"
		"listen = %s\n"
		"cert = %s\n"
		"key = %s\n"
		"ca = %s\n"
		"crl = %s\n"
		"state_dir = %s\n"
		"network = %s\n"
		"params = %s\n"
		"port_file = %s\n"
		"heartbeat_timeout = %llds\n"
		"retry_cap = %u\n"
		"blob_retention = %llds\n"
		"result_grace = %llds\n"
		"max_active = %llu\n"
		"tick_ms = %u\n"
		"max_connections = %u\n"
		"log_level = %s\n"
		"settlement = %s\n",
		c->listen, c->cert, c->key, c->ca, c->crl ? c->crl : "", c->state_dir, c->network,
		c->params ? c->params : "", c->port_file ? c->port_file : "",
		(long long)c->heartbeat_timeout, c->retry_cap, (long long)c->blob_retention,
		(long long)c->result_grace, (unsigned long long)c->max_active, c->tick_ms,
		c->max_conns, level_name(c->log_level), c->settlement ? "on" : "off");
}
