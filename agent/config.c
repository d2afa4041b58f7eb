/* config.c -- parse and validate /etc/aicn/agent.conf with inih: every key checked, unknown keys refused. */
#include "config.h"

#include <aicn/compiler.h>
#include <aicn/confval.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <stdarg.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>

#define CFG_LINE_MAX (INI_MAX_LINE - 3) /* inih needs room for "\r\n\0" */
#define CFG_PATH_MAX 1024
#define CFG_LOCATION_MAX 64
#define CFG_WINDOWS_MAX 190
#define CFG_MAX_TASKS 1024
#define CFG_MIN_MEMORY (16ULL << 20)
#define CFG_MIN_CACHE (16ULL << 20)
#define CFG_MAX_CACHE (1ULL << 50)
#define CFG_MAX_PRICE 1000000000000000ULL /* 1e15: price * CPU-hours stays far inside int64 */
#define MEGA 1000000U

enum cfg_key {
	K_COORDINATOR,
	K_CERT,
	K_KEY,
	K_CA,
	K_STATE_DIR,
	K_MAX_CORES,
	K_MAX_MEMORY,
	K_WINDOWS,
	K_ON_WINDOW_CLOSE,
	K_ASK_PRICE,
	K_LOCATION,
	K_RENEWABLE,
	K_MAX_TASKS,
	K_IMAGE_CACHE,
	K_METRICS,
	K_N,
};

static const char *const key_names[K_N] = {
	[K_COORDINATOR] = "coordinator",
	[K_CERT] = "cert",
	[K_KEY] = "key",
	[K_CA] = "ca",
	[K_STATE_DIR] = "state_dir",
	[K_MAX_CORES] = "max_cores",
	[K_MAX_MEMORY] = "max_memory",
	[K_WINDOWS] = "windows",
	[K_ON_WINDOW_CLOSE] = "on_window_close",
	[K_ASK_PRICE] = "ask_price",
	[K_LOCATION] = "location",
	[K_RENEWABLE] = "renewable_fraction",
	[K_MAX_TASKS] = "max_tasks",
	[K_IMAGE_CACHE] = "image_cache_size",
	[K_METRICS] = "metrics_listen",
};

struct cfg_parse {
	const char *name; /* file name for messages */
	const char *text;
	size_t len;
	size_t pos;
	int line; /* line the reader handed out last */
	const struct agent_host_facts *host;
	struct agent_config *cfg;
	int set_at[K_N]; /* line where each key was set, 0 = unset */
	char *err;
	size_t errlen;
	int error; /* first error (negative errno), 0 = none */
};

const char *agent_window_close_name(enum agent_window_close c)
{
	return c == AGENT_WINDOW_CANCEL ? "cancel" : "finish";
}

static void cfg_fail(struct cfg_parse *p, int err, const char *fmt, ...) _printf_(3, 4);
static void cfg_fail(struct cfg_parse *p, int err, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (p->error)
		return;
	p->error = err;
	if (!p->err || !p->errlen)
		return;
	n = snprintf(p->err, p->errlen, "%s:%d: ", p->name, p->line);
	if (n < 0 || (size_t)n >= p->errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(p->err + n, p->errlen - n, fmt, ap);
	va_end(ap);
}

int agent_host_probe(struct agent_host_facts *ret_facts)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	long pages = sysconf(_SC_PHYS_PAGES);
	long psz = sysconf(_SC_PAGESIZE);

	if (n <= 0 || pages <= 0 || psz <= 0)
		return -EIO;
	ret_facts->ncpus = (uint32_t)n;
	ret_facts->mem_bytes = (uint64_t)pages * (uint64_t)psz;
	return 0;
}

static bool is_dns_name(const char *s)
{
	size_t len = strlen(s), label = 0;

	if (!len || len > 253)
		return false;
	for (const char *c = s; *c; c++) {
		if (*c == '.') {
			if (!label || c[-1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!isalnum((unsigned char)*c) && *c != '-')
			return false;
		if (*c == '-' && !label)
			return false;
		if (++label > 63)
			return false;
	}
	return label && s[len - 1] != '-';
}

/* host:port, [v6]:port; NAMES allows DNS names besides IP literals. */
static int parse_hostport(const char *s, bool names, bool port0, const char **why)
{
	char host[256];
	const char *colon;
	uint64_t port;
	size_t hl;

	if (s[0] == '[') {
		const char *end = strchr(s, ']');
		struct in6_addr a6;

		if (!end || end[1] != ':') {
			*why = "expected [IPv6]:port";
			return -EINVAL;
		}
		hl = (size_t)(end - s - 1);
		if (hl >= sizeof(host)) {
			*why = "address too long";
			return -EINVAL;
		}
		memcpy(host, s + 1, hl);
		host[hl] = '\0';
		if (inet_pton(AF_INET6, host, &a6) != 1) {
			*why = "not an IPv6 address inside [ ]";
			return -EINVAL;
		}
		colon = end + 1;
	} else {
		struct in_addr a4;

		colon = strchr(s, ':');
		if (!colon || strchr(colon + 1, ':')) {
			*why = "expected host:port (write IPv6 addresses as [addr]:port)";
			return -EINVAL;
		}
		hl = (size_t)(colon - s);
		if (!hl || hl >= sizeof(host)) {
			*why = "missing or too long host";
			return -EINVAL;
		}
		memcpy(host, s, hl);
		host[hl] = '\0';
		if (inet_pton(AF_INET, host, &a4) != 1) {
			if (!names) {
				*why = "the host must be an IP address to listen on";
				return -EINVAL;
			}
			if (!is_dns_name(host) || strspn(host, "0123456789.") == hl) {
				*why = "not a valid host name or IPv4 address";
				return -EINVAL;
			}
		}
	}
	if (confval_uint(colon + 1, 65535, &port) < 0 || (!port0 && port == 0)) {
		*why = port0 ? "port must be 0-65535" : "port must be 1-65535";
		return -EINVAL;
	}
	return 0;
}

static bool all_printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			return false;
	return true;
}

static int set_string(struct cfg_parse *p, char **field, const char *value)
{
	char *dup = strdup(value);

	if (!dup) {
		cfg_fail(p, -ENOMEM, "out of memory");
		return -ENOMEM;
	}
	free(*field);
	*field = dup;
	return 0;
}

static int set_path(struct cfg_parse *p, const char *key, char **field, const char *value)
{
	if (value[0] != '/' || strlen(value) >= CFG_PATH_MAX || !all_printable(value)) {
		cfg_fail(p, -EINVAL, "key '%s': '%s' is not an absolute path", key, value);
		return -EINVAL;
	}
	return set_string(p, field, value);
}

static int handle_key(struct cfg_parse *p, enum cfg_key k, const char *v)
{
	struct agent_config *c = p->cfg;
	const char *key = key_names[k];
	const char *why = NULL;
	uint64_t n;
	int r;

	switch (k) {
	case K_COORDINATOR:
		if (parse_hostport(v, true, false, &why) < 0) {
			cfg_fail(p, -EINVAL, "key '%s': '%s': %s", key, v, why);
			return -EINVAL;
		}
		return set_string(p, &c->coordinator, v);
	case K_CERT:
		return set_path(p, key, &c->cert, v);
	case K_KEY:
		return set_path(p, key, &c->key, v);
	case K_CA:
		return set_path(p, key, &c->ca, v);
	case K_STATE_DIR:
		return set_path(p, key, &c->state_dir, v);
	case K_MAX_CORES:
		r = confval_fixed(v, 3, UINT32_MAX, &n);
		if (r < 0 || n == 0) {
			cfg_fail(
				p, -EINVAL,
				"key '%s': '%s' is not a positive number of cores (e.g. 2 or 1.5, at most 3 decimals)",
				key, v);
			return -EINVAL;
		}
		if (n > (uint64_t)p->host->ncpus * 1000) {
			cfg_fail(p, -EINVAL, "key '%s': %s cores offered but this host has %u CPUs",
				 key, v, p->host->ncpus);
			return -EINVAL;
		}
		c->max_millicores = (uint32_t)n;
		return 0;
	case K_MAX_MEMORY:
		r = confval_size(v, UINT64_MAX, &n);
		if (r < 0) {
			cfg_fail(p, -EINVAL,
				 "key '%s': '%s' is not a size (bytes, or with K, M, G, T suffix)",
				 key, v);
			return -EINVAL;
		}
		if (n < CFG_MIN_MEMORY || n > p->host->mem_bytes) {
			cfg_fail(p, -EINVAL,
				 "key '%s': %s is outside 16M..%llu bytes (the host's memory)", key,
				 v, (unsigned long long)p->host->mem_bytes);
			return -EINVAL;
		}
		c->max_memory = n;
		return 0;
	case K_WINDOWS:
		if (strlen(v) > CFG_WINDOWS_MAX || !all_printable(v)) {
			cfg_fail(p, -EINVAL,
				 "key '%s': must be printable text of at most %d characters", key,
				 CFG_WINDOWS_MAX);
			return -EINVAL;
		}
		if (!*v) {
			window_always(&c->window);
		} else {
			char werr[160];

			if (window_parse(v, &c->window, werr, sizeof(werr)) < 0) {
				cfg_fail(p, -EINVAL, "key '%s': '%s': %s", key, v, werr);
				return -EINVAL;
			}
		}
		return set_string(p, &c->windows, v);
	case K_ON_WINDOW_CLOSE:
		if (strcmp(v, "finish") == 0) {
			c->on_window_close = AGENT_WINDOW_FINISH;
		} else if (strcmp(v, "cancel") == 0) {
			c->on_window_close = AGENT_WINDOW_CANCEL;
		} else {
			cfg_fail(p, -EINVAL, "key '%s': '%s' must be 'finish' or 'cancel'", key, v);
			return -EINVAL;
		}
		return 0;
	case K_ASK_PRICE:
		r = confval_uint(v, CFG_MAX_PRICE, &n);
		if (r < 0) {
			cfg_fail(
				p, -EINVAL,
				"key '%s': '%s' is not a whole number of base units per CPU-hour (0..%llu)",
				key, v, (unsigned long long)CFG_MAX_PRICE);
			return -EINVAL;
		}
		c->ask_price = n;
		return 0;
	case K_LOCATION:
		if (strlen(v) > CFG_LOCATION_MAX ||
		    strspn(v,
			   "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._/-") !=
			    strlen(v)) {
			cfg_fail(
				p, -EINVAL,
				"key '%s': '%s' must be at most %d characters of A-Z a-z 0-9 . _ / -",
				key, v, CFG_LOCATION_MAX);
			return -EINVAL;
		}
		return set_string(p, &c->location, v);
	case K_RENEWABLE:
		r = confval_fixed(v, 6, MEGA, &n);
		if (r < 0) {
			cfg_fail(
				p, -EINVAL,
				"key '%s': '%s' is not a fraction between 0 and 1 (at most 6 decimals)",
				key, v);
			return -EINVAL;
		}
		c->renewable_ppm = (uint32_t)n;
		return 0;
	case K_MAX_TASKS:
		r = confval_uint(v, CFG_MAX_TASKS, &n);
		if (r < 0 || n == 0) {
			cfg_fail(p, -EINVAL,
				 "key '%s': '%s' is not a whole number between 1 and %d", key, v,
				 CFG_MAX_TASKS);
			return -EINVAL;
		}
		c->max_tasks = (uint32_t)n;
		return 0;
	case K_IMAGE_CACHE:
		r = confval_size(v, UINT64_MAX, &n);
		if (r < 0 || n < CFG_MIN_CACHE || n > CFG_MAX_CACHE) {
			cfg_fail(
				p, -EINVAL,
				"key '%s': '%s' is not a size between 16M and 1024T (bytes, or with K, M, G, T suffix)",
				key, v);
			return -EINVAL;
		}
		c->image_cache_size = n;
		return 0;
	case K_METRICS:
		if (!*v || strcmp(v, "off") == 0)
			return set_string(p, &c->metrics_listen, "");
		if (parse_hostport(v, false, true, &why) < 0) {
			cfg_fail(p, -EINVAL, "key '%s': '%s': %s (or 'off')", key, v, why);
			return -EINVAL;
		}
		return set_string(p, &c->metrics_listen, v);
	case K_N:
		break;
	}
	return -EINVAL;
}

static int ini_cb(void *user, const char *section, const char *name, const char *value)
{
	struct cfg_parse *p = user;
	int k;

	if (p->error)
		return 0;
	if (section[0] && strcmp(section, "agent") != 0) {
		cfg_fail(p, -EINVAL, "unknown section [%s] (keys go in [agent])", section);
		return 0;
	}
	for (k = 0; k < K_N; k++)
		if (strcmp(name, key_names[k]) == 0)
			break;
	if (k == K_N) {
		cfg_fail(p, -EINVAL, "unknown key '%s'", name);
		return 0;
	}
	if (p->set_at[k]) {
		cfg_fail(p, -EINVAL, "key '%s': set twice (first on line %d)", name, p->set_at[k]);
		return 0;
	}
	p->set_at[k] = p->line;
	return handle_key(p, (enum cfg_key)k, value) < 0 ? 0 : 1;
}

/* fgets-like reader over the buffer that counts lines and refuses what inih would misread. */
static char *cfg_reader(char *str, int num, void *stream)
{
	struct cfg_parse *p = stream;
	const char *start, *nl;
	size_t n, avail, i;

	if (p->error || p->pos >= p->len)
		return NULL;
	start = p->text + p->pos;
	avail = p->len - p->pos;
	nl = memchr(start, '\n', avail);
	n = nl ? (size_t)(nl - start) + 1 : avail;
	p->line++;
	p->pos += n;
	if (n > CFG_LINE_MAX || n + 1 > (size_t)num) {
		cfg_fail(p, -EINVAL, "line longer than %d characters", CFG_LINE_MAX - 1);
		return NULL;
	}
	if (memchr(start, '\0', n)) {
		cfg_fail(p, -EINVAL, "NUL byte in line");
		return NULL;
	}
	/* inih would read an indented line as the continuation of the previous value. */
	for (i = 0; i < n && (start[i] == ' ' || start[i] == '\t'); i++)
		;
	if (i > 0 && i < n && !strchr(";#\r\n", start[i])) {
		cfg_fail(p, -EINVAL, "indented line (continuation lines are not supported)");
		return NULL;
	}
	if (start[0] == '[') {
		const char *end = memchr(start, ']', n);

		if (end && !(end - start == 6 && memcmp(start + 1, "agent", 5) == 0)) {
			cfg_fail(p, -EINVAL, "unknown section [%.*s] (keys go in [agent])",
				 (int)(end - start - 1), start + 1);
			return NULL;
		}
	}
	memcpy(str, start, n);
	str[n] = '\0';
	return str;
}

static int cfg_defaults(struct agent_config *c, const struct agent_host_facts *host)
{
	c->cert = strdup("/etc/aicn/agent.crt");
	c->key = strdup("/etc/aicn/agent.key");
	c->ca = strdup("/etc/aicn/ca.pem");
	c->state_dir = strdup("/var/lib/aicn");
	c->windows = strdup("");
	c->location = strdup("");
	c->metrics_listen = strdup("127.0.0.1:9464");
	if (!c->cert || !c->key || !c->ca || !c->state_dir || !c->windows || !c->location ||
	    !c->metrics_listen)
		return -ENOMEM;
	window_always(&c->window);
	c->max_millicores = host->ncpus * 1000;
	c->max_memory = MAX(host->mem_bytes / 2, CFG_MIN_MEMORY);
	c->on_window_close = AGENT_WINDOW_FINISH;
	c->renewable_ppm = 0;
	c->image_cache_size = 10ULL << 30;
	return 0;
}

struct agent_config *agent_config_free(struct agent_config *c)
{
	if (!c)
		return NULL;
	free(c->coordinator);
	free(c->cert);
	free(c->key);
	free(c->ca);
	free(c->state_dir);
	free(c->windows);
	free(c->location);
	free(c->metrics_listen);
	free(c);
	return NULL;
}

int agent_config_parse(const char *text, size_t len, const char *name,
		       const struct agent_host_facts *host, char *err, size_t errlen,
		       struct agent_config **ret_cfg)
{
	struct agent_config *c;
	struct agent_host_facts probed;
	struct cfg_parse p = {
		.name = name ? name : "(config)",
		.text = text,
		.len = len,
		.err = err,
		.errlen = errlen,
	};
	int r;

	if (err && errlen)
		err[0] = '\0';
	if (!host) {
		r = agent_host_probe(&probed);
		if (r < 0)
			return r;
		host = &probed;
	}
	p.host = host;
	if (len > AGENT_CONFIG_MAX_SIZE) {
		cfg_fail(&p, -EFBIG, "larger than %d bytes", AGENT_CONFIG_MAX_SIZE);
		return p.error;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	if (cfg_defaults(c, host) < 0) {
		agent_config_free(c);
		return -ENOMEM;
	}
	p.cfg = c;

	r = ini_parse_stream(cfg_reader, &p, ini_cb, &p);
	if (!p.error && r == -2)
		p.error = -ENOMEM;
	if (!p.error && r != 0) {
		p.line = r;
		cfg_fail(&p, -EINVAL, "syntax error (expected 'key = value' or '[agent]')");
	}
	p.line = 0;
	if (!p.set_at[K_COORDINATOR])
		cfg_fail(&p, -EINVAL, "missing required key 'coordinator' (host:port)");
	if (!p.set_at[K_ASK_PRICE])
		cfg_fail(&p, -EINVAL, "missing required key 'ask_price' (base units per CPU-hour)");
	if (p.error) {
		agent_config_free(c);
		return p.error;
	}
	if (!p.set_at[K_MAX_TASKS])
		c->max_tasks = MAX(1U, (c->max_millicores + 999) / 1000);
	*ret_cfg = c;
	return 0;
}

int agent_config_load(const char *path, const struct agent_host_facts *host, char *err,
		      size_t errlen, struct agent_config **ret_cfg)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	ssize_t n;

	if (err && errlen)
		err[0] = '\0';
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		int e = -errno;

		if (err)
			snprintf(err, errlen, "%s: cannot open: %s", path, strerror(-e));
		return e;
	}
	buf = malloc(AGENT_CONFIG_MAX_SIZE + 1);
	if (!buf)
		return -ENOMEM;
	while ((n = read(fd, buf + len, AGENT_CONFIG_MAX_SIZE + 1 - len)) != 0) {
		if (n < 0) {
			int e = -errno;

			if (e == -EINTR)
				continue;
			if (err)
				snprintf(err, errlen, "%s: cannot read: %s", path, strerror(-e));
			return e;
		}
		len += (size_t)n;
		if (len > AGENT_CONFIG_MAX_SIZE)
			break;
	}
	return agent_config_parse(buf, len, path, host, err, errlen, ret_cfg);
}

static int check_readable(const char *what, const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (access(path, R_OK) < 0 || stat(path, &st) < 0) {
		int e = -errno;

		snprintf(err, errlen, "%s %s: %s", what, path, strerror(-e));
		return e;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s %s: not a regular file", what, path);
		return -EINVAL;
	}
	return 0;
}

int agent_config_check_files(const struct agent_config *c, char *err, size_t errlen)
{
	struct stat st;
	int r;

	r = check_readable("cert", c->cert, err, errlen);
	if (r < 0)
		return r;
	r = check_readable("key", c->key, err, errlen);
	if (r < 0)
		return r;
	r = check_readable("ca", c->ca, err, errlen);
	if (r < 0)
		return r;
	if (stat(c->state_dir, &st) < 0) {
		r = -errno;
		snprintf(err, errlen, "state_dir %s: %s", c->state_dir, strerror(-r));
		return r;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "state_dir %s: not a directory", c->state_dir);
		return -ENOTDIR;
	}
	return 0;
}

/* "1.5" from 1500 with SCALE 1000: trailing fraction zeros dropped. */
static void fmt_fixed(char *buf, size_t len, uint64_t v, uint64_t scale, int digits)
{
	int n = snprintf(buf, len, "%llu.%0*llu", (unsigned long long)(v / scale), digits,
			 (unsigned long long)(v % scale));

	while (n > 0 && buf[n - 1] == '0')
		buf[--n] = '\0';
	if (n > 0 && buf[n - 1] == '.')
		buf[--n] = '\0';
}

int agent_config_write(const struct agent_config *c, FILE *out)
{
	char cores[32], ren[32];

	fmt_fixed(cores, sizeof(cores), c->max_millicores, 1000, 3);
	fmt_fixed(ren, sizeof(ren), c->renewable_ppm, MEGA, 6);
	fprintf(out,
		"[agent]\n"
		"coordinator = %s\n"
		"cert = %s\n"
		"key = %s\n"
		"ca = %s\n"
		"state_dir = %s\n"
		"max_cores = %s\n"
		"max_memory = %llu\n"
		"windows = %s\n"
		"on_window_close = %s\n"
		"ask_price = %llu\n"
		"location = %s\n"
		"renewable_fraction = %s\n"
		"max_tasks = %u\n"
		"image_cache_size = %llu\n"
		"metrics_listen = %s\n",
		c->coordinator, c->cert, c->key, c->ca, c->state_dir, cores,
		(unsigned long long)c->max_memory, c->windows,
		agent_window_close_name(c->on_window_close), (unsigned long long)c->ask_price,
		c->location, ren, c->max_tasks, (unsigned long long)c->image_cache_size,
		c->metrics_listen[0] ? c->metrics_listen : "off");
	return ferror(out) ? -EIO : 0;
}
