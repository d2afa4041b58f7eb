/* cmd_market.c -- market, balance, node and agent views: what renters compare and what providers check. */
#include "agentmx.h"
#include "client.h"
#include "cmd.h"
#include "opt.h"

#include <aicn/canon.h>
#include <aicn/compiler.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <ini.h>
#include <netdb.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

int cmd_market(int argc, char **argv);
int cmd_balance(int argc, char **argv);
int cmd_node(int argc, char **argv);
int cmd_agent(int argc, char **argv);
int cmd_nodes(int argc, char **argv);
int cmd_queue(int argc, char **argv);

DEFINE_TRIVIAL_CLEANUP_FUNC(cJSON, cJSON_Delete)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct client, client_free)

#define METRICS_MAX (4 << 20)	/* bytes of one /metrics page we read */
#define METRICS_TIMEOUT_MS 5000 /* connect + read */
#define AGENT_CONF "/etc/aicn/agent.conf"

/* First member present among names (the coordinator's field names, old and new). */
static const cJSON *pick(const cJSON *o, const char *const *names)
{
	for (; *names; names++) {
		const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, *names);

		if (it && !cJSON_IsNull(it))
			return it;
	}
	return NULL;
}

static int64_t pick_i64(const cJSON *o, const char *const *names, int64_t def)
{
	const cJSON *it = pick(o, names);
	int64_t v;

	return it && canon_number_i64(it, &v) == 0 ? v : def;
}

static const char *const N_ID[] = {"node_id", "node", NULL};
static const char *const N_NAME[] = {"name", "account", NULL};
static const char *const N_ASK[] = {"ask_price", "price", NULL};
static const char *const N_EFF[] = {"effective_price", "price_effective", "ask_price", "price",
				    NULL};
static const char *const N_PERF[] = {"perf_score", "perf", NULL};
static const char *const N_FREE[] = {"free_cores", NULL};
static const char *const N_CORES[] = {"cores_offered", "cores", NULL};
static const char *const N_RENEW_PM[] = {"renewable_pm", NULL};
static const char *const N_RENEW_PPM[] = {"renewable_ppm", NULL};
static const char *const N_ONLINE[] = {"online", NULL};
static const char *const N_WINDOW[] = {"in_window", "available", NULL};

/* A rating in milli-stars (the coordinator sends milli or centi), -1 when unrated. */
static int64_t rating_milli(const cJSON *p)
{
	static const char *const milli[] = {"rating_milli", NULL};
	static const char *const centi[] = {"rating_centi", NULL};
	static const char *const plain[] = {"rating", NULL};
	const cJSON *r = pick(p, plain);
	int64_t v;

	v = pick_i64(p, milli, -1);
	if (v >= 0)
		return v;
	v = pick_i64(p, centi, -1);
	if (v >= 0)
		return v * 10;
	if (cJSON_IsObject(r))
		return json_i64(r, "milli", json_i64(r, "average_milli", -1));
	v = pick_i64(p, plain, -1);
	return v >= 0 && v <= 5 ? v * 1000 : v; /* plain stars, or milli-stars */
}

static int64_t renewable_pm(const cJSON *p)
{
	int64_t v = pick_i64(p, N_RENEW_PM, -1);

	if (v >= 0)
		return v;
	v = pick_i64(p, N_RENEW_PPM, -1);
	return v >= 0 ? v / 1000 : -1;
}

/* The coordinator's location rule: "eu" matches "eu", "eu-west", "eu/paris", not "europe". */
static bool location_matches(const char *want, const char *have)
{
	size_t n = strlen(want);

	return strncmp(want, have, n) == 0 && (have[n] == '\0' || !isalnum((unsigned char)have[n]));
}

enum sort_key {
	SORT_PRICE,
	SORT_PERF,
	SORT_RATING,
	SORT_FREE
};
static enum sort_key sort_by;

static int prov_cmp(const void *a, const void *b)
{
	const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
	int64_t vx, vy;

	switch (sort_by) {
	case SORT_PRICE: /* cheapest first */
		vx = pick_i64(x, N_EFF, INT64_MAX);
		vy = pick_i64(y, N_EFF, INT64_MAX);
		return vx < vy ? -1 : vx > vy;
	case SORT_PERF:
		vx = pick_i64(x, N_PERF, -1);
		vy = pick_i64(y, N_PERF, -1);
		break;
	case SORT_RATING:
		vx = rating_milli(x);
		vy = rating_milli(y);
		break;
	default:
		vx = pick_i64(x, N_FREE, -1);
		vy = pick_i64(y, N_FREE, -1);
		break;
	}
	return vx > vy ? -1 : vx < vy; /* the most first */
}

int cmd_market(int argc, char **argv)
{
	const char *sort = "price", *location = NULL;
	int64_t min_rating = 0;
	int json = 0, all = 0, rc = EXIT_FAIL;
	const struct opt opts[] = {
		{"sort", 's', OPT_STR, &sort, "KEY",
		 "price (cheapest first, default), perf, rating or free\n(most first)", 0, 0},
		{"location", 'l', OPT_STR, &location, "L",
		 "only providers in L (eu matches eu, eu-west, eu/paris)", 0, 0},
		{"min-rating", 0, OPT_INT, &min_rating, "N", "only providers rated N stars or more",
		 1, 5},
		{"all", 'a', OPT_FLAG, &all, NULL, "include offline providers", 0, 0},
		{"json", 0, OPT_FLAG, &json, NULL,
		 "print the providers (filtered and sorted) as JSON", 0, 0},
		{0},
	};
	const struct opt_cmd cmd = {
		"aicnctl market",
		"[--sort price|perf|rating|free] [--location L] [--min-rating N]",
		"The providers on the network: node id and operator, the ask price and the\n"
		"effective price now (ask x the demand multiplier, what a task placed now pays per\n"
		"CPU-hour), the measured performance score, location, rating (1-5 stars, Bayesian\n"
		"average), renewable share of their energy, free cores, and whether they are online\n"
		"and inside their availability window.",
		opts,
		client_opt_table,
		0,
		0,
		0,
		NULL};
	_cleanup_(client_freep) struct client *c = NULL;
	_cleanup_(cJSON_Deletep) cJSON *data = NULL;
	_cleanup_free_ const cJSON **v = NULL;
	struct opt_args a = {0};
	const cJSON *provs, *p;
	size_t n = 0;
	int r = opt_parse(&cmd, argc, argv, &a);

	if (r)
		return r == OPT_HELP ? EXIT_OK : EXIT_USAGE;
	opt_args_done(&a);
	if (strcmp(sort, "price") == 0)
		sort_by = SORT_PRICE;
	else if (strcmp(sort, "perf") == 0)
		sort_by = SORT_PERF;
	else if (strcmp(sort, "rating") == 0)
		sort_by = SORT_RATING;
	else if (strcmp(sort, "free") == 0)
		sort_by = SORT_FREE;
	else
		return opt_fail(&cmd, "--sort: '%s' is not price, perf, rating or free", sort);
	rc = client_open_or_fail(cmd.name, &c);
	if (rc)
		return rc;
	r = client_call(c, MKT_MARKET, NULL, &data);
	if (r < 0)
		return client_fail(c, cmd.name, r, "market");
	provs = cJSON_GetObjectItemCaseSensitive(data, "providers");
	v = calloc((size_t)cJSON_GetArraySize(provs) + 1, sizeof(*v));
	if (!v)
		return EXIT_FAIL;
	cJSON_ArrayForEach (p, provs) {
		const cJSON *on = pick(p, N_ONLINE);

		if (!all && cJSON_IsFalse(on))
			continue;
		if (location && !location_matches(location, json_str(p, "location", "")))
			continue;
		if (min_rating && rating_milli(p) < min_rating * 1000)
			continue;
		v[n++] = p;
	}
	qsort(v, n, sizeof(*v), prov_cmp);
	if (json) {
		_cleanup_(cJSON_Deletep) cJSON *out = cJSON_CreateObject();
		cJSON *arr = out ? cJSON_AddArrayToObject(out, "providers") : NULL;

		if (!arr)
			return EXIT_FAIL;
		for (size_t i = 0; i < n; i++)
			if (!cJSON_AddItemToArray(arr, cJSON_Duplicate(v[i], 1)))
				return EXIT_FAIL;
		return client_print_json(out);
	}
	printf("%-16s %-12s %12s %12s %7s %-12s %6s %5s %5s %s\n", "NODE", "OPERATOR", "ASK/CPU-h",
	       "PRICE/CPU-h", "PERF", "LOCATION", "RATING", "RENEW", "FREE", "STATUS");
	for (size_t i = 0; i < n; i++) {
		const cJSON *id = pick(v[i], N_ID), *name = pick(v[i], N_NAME);
		const cJSON *win = pick(v[i], N_WINDOW), *on = pick(v[i], N_ONLINE);
		char ask[AMOUNT_STR_LEN], eff[AMOUNT_STR_LEN], rat[32] = "-", ren[32] = "-";
		int64_t rm = rating_milli(v[i]), rp = renewable_pm(v[i]);
		const char *status = cJSON_IsFalse(on)	  ? "offline"
				     : cJSON_IsFalse(win) ? "out of window"
							  : "available";

		if (rm > 0) /* 0: no rating yet (stars are 1-5) */
			snprintf(rat, sizeof(rat), "%.2f", (double)rm / 1000);
		if (rp >= 0)
			snprintf(ren, sizeof(ren), "%lld%%", (long long)(rp / 10));
		printf("%-16.16s %-12.12s %12s %12s %7lld %-12.12s %6s %5s %2lld/%-2lld %s\n",
		       cJSON_IsString(id) ? id->valuestring : "?",
		       cJSON_IsString(name) ? name->valuestring : "-",
		       amount_format(pick_i64(v[i], N_ASK, 0), ask),
		       amount_format(pick_i64(v[i], N_EFF, 0), eff),
		       (long long)pick_i64(v[i], N_PERF, 0), json_str(v[i], "location", "-"), rat,
		       ren, (long long)pick_i64(v[i], N_FREE, 0),
		       (long long)pick_i64(v[i], N_CORES, 0), status);
	}
	if (!n)
		printf("(no provider matches)\n");
	return EXIT_OK;
}

int cmd_balance(int argc, char **argv)
{
	const char *account = NULL;
	int json = 0, rc;
	const struct opt opts[] = {
		{"account", 'a', OPT_STR, &account, "NAME", "the account, instead of the argument",
		 0, 0},
		{"json", 0, OPT_FLAG, &json, NULL, "print the coordinator's reply as JSON", 0, 0},
		{0},
	};
	const struct opt_cmd cmd = {
		"aicnctl balance",
		"[ACCOUNT] [--json]",
		"An account's AICN: spendable balance, escrow held for unfinished tasks, stake, and\n"
		"stake unbonding.  ACCOUNT defaults to your own (your certificate's name).  Amounts\n"
		"are shown in AICN with up to 9 decimals (1 AICN = 10^9 base units; --json gives\n"
		"base units).",
		opts,
		client_opt_table,
		0,
		1,
		0,
		NULL};
	_cleanup_(client_freep) struct client *c = NULL;
	_cleanup_(cJSON_Deletep) cJSON *data = NULL;
	struct opt_args a = {0};
	cJSON *f = NULL;
	char b[4][AMOUNT_STR_LEN];
	int r = opt_parse(&cmd, argc, argv, &a);

	if (r)
		return r == OPT_HELP ? EXIT_OK : EXIT_USAGE;
	if (a.npos && account) {
		rc = opt_fail(&cmd, "give the account once: as ACCOUNT or with --account");
		goto out;
	}
	if (a.npos)
		account = a.pos[0];
	rc = client_open_or_fail(cmd.name, &c);
	if (rc)
		goto out;
	if (account) {
		f = cJSON_CreateObject();
		if (!f || !cJSON_AddStringToObject(f, "account", account)) {
			cJSON_Delete(f);
			rc = EXIT_FAIL;
			goto out;
		}
	}
	r = client_call(c, MKT_BALANCE, f, &data);
	if (r < 0) {
		rc = client_fail(c, cmd.name, r, "balance");
		goto out;
	}
	if (json) {
		rc = client_print_json(data);
		goto out;
	}
	printf("account    %s\nbalance    %s AICN\nescrow     %s AICN\nstake      %s AICN\n"
	       "unbonding  %s AICN\n",
	       json_str(data, "account", account ? account : "?"),
	       amount_format(json_i64(data, "balance", 0), b[0]),
	       amount_format(json_i64(data, "escrow", 0), b[1]),
	       amount_format(json_i64(data, "stake", 0), b[2]),
	       amount_format(json_i64(data, "unbonding", 0), b[3]));
out:
	opt_args_done(&a);
	return rc;
}

int cmd_node(int argc, char **argv)
{
	int json = 0, rc;
	const struct opt opts[] = {
		{"json", 0, OPT_FLAG, &json, NULL, "print the coordinator's reply as JSON", 0, 0},
		{0},
	};
	const struct opt_cmd cmd = {
		"aicnctl node",
		"status|earnings|tasks NODEID [--json]",
		"A provider node as the coordinator sees it (NODEID: the 64-hex node id that\n"
		"'aicnctl ca issue' and 'aicn-agent --check-config' print).\n"
		"  status     capacity, price, performance, location, window, online, rating, trust\n"
		"  earnings   what the node earned: its last 100 settled results (task, CPU time,\n"
		"             price, paid after the network fee, or refused), newest first (when\n"
		"             the coordinator has no per-node list: the balance of the node\n"
		"             operator's account, where charges and epoch rewards are paid)\n"
		"  tasks      the tasks it ran or runs",
		opts,
		client_opt_table,
		2,
		2,
		0,
		NULL};
	static const char *const earn_keys[] = {"earnings", NULL};
	static const char *const task_keys[] = {"tasks", NULL};
	_cleanup_(client_freep) struct client *c = NULL;
	_cleanup_(cJSON_Deletep) cJSON *data = NULL;
	struct opt_args a = {0};
	const char *what;
	const cJSON *part;
	cJSON *f;
	int r = opt_parse(&cmd, argc, argv, &a);

	if (r)
		return r == OPT_HELP ? EXIT_OK : EXIT_USAGE;
	what = a.pos[0];
	if (strcmp(what, "status") != 0 && strcmp(what, "earnings") != 0 &&
	    strcmp(what, "tasks") != 0) {
		rc = opt_fail(&cmd, "'%s' is not status, earnings or tasks", what);
		goto out;
	}
	if (strlen(a.pos[1]) != 64 || strspn(a.pos[1], "0123456789abcdef") != 64) {
		rc = opt_fail(&cmd, "NODEID must be 64 lowercase hex digits");
		goto out;
	}
	rc = client_open_or_fail(cmd.name, &c);
	if (rc)
		goto out;
	f = cJSON_CreateObject();
	if (!f || !cJSON_AddStringToObject(f, "node_id", a.pos[1])) {
		cJSON_Delete(f);
		rc = EXIT_FAIL;
		goto out;
	}
	r = client_call(c, MKT_NODE, f, &data);
	if (r < 0) {
		rc = client_fail(c, cmd.name, r, "node");
		goto out;
	}
	if (strcmp(what, "status") == 0) {
		/* everything but the two lists */
		cJSON_DeleteItemFromObjectCaseSensitive(data, "tasks");
		cJSON_DeleteItemFromObjectCaseSensitive(data, "earnings");
		part = data;
	} else {
		part = pick(data, strcmp(what, "earnings") == 0 ? earn_keys : task_keys);
		if (!part && strcmp(what, "earnings") == 0 && *json_str(data, "name", "")) {
			/*
			 * No earnings list in this coordinator's NODE reply: the operator's
			 * account is where the provider share and the epoch rewards go.
			 */
			cJSON *bf = cJSON_CreateObject(), *bal = NULL;

			if (bf &&
			    cJSON_AddStringToObject(bf, "account", json_str(data, "name", ""))) {
				r = client_call(c, MKT_BALANCE, bf, &bal);
				bf = NULL;
				if (r < 0) {
					rc = client_fail(c, cmd.name, r,
							 "balance of the node's account");
					goto out;
				}
				if (!cJSON_AddItemToObject(data, "earnings", bal)) {
					cJSON_Delete(bal);
					rc = EXIT_FAIL;
					goto out;
				}
				part = bal;
			}
			cJSON_Delete(bf);
		}
		if (!part) {
			fprintf(stderr, "%s: the coordinator's reply has no %s\n", cmd.name, what);
			rc = EXIT_FAIL;
			goto out;
		}
	}
	if (json) {
		if (part != data && !cJSON_IsObject(part)) {
			_cleanup_(cJSON_Deletep) cJSON *o = cJSON_CreateObject();

			if (!o || !cJSON_AddItemToObject(o, what, cJSON_Duplicate(part, 1))) {
				rc = EXIT_FAIL;
				goto out;
			}
			rc = client_print_json(o);
		} else {
			rc = client_print_json(part);
		}
		goto out;
	}
	if (cJSON_IsObject(part)) {
		client_print_kv(part, 0);
	} else {
		_cleanup_(cJSON_Deletep) cJSON *o = cJSON_CreateObject();

		if (o && cJSON_AddItemToObject(o, what, cJSON_Duplicate(part, 1)))
			client_print_kv(o, 0);
	}
out:
	opt_args_done(&a);
	return rc;
}

/* ---- agent status: the local agent's Prometheus metrics ---- */

static int conf_metrics_cb(void *ud, const char *section, const char *name, const char *value)
{
	char *out = ud;

	if ((!section[0] || strcmp(section, "agent") == 0) && strcmp(name, "metrics_listen") == 0)
		snprintf(out, 256, "%s", value);
	return 1;
}

/* GET /metrics from host:port with a deadline; *ret_body is malloc'd. */
static int http_get_metrics(const char *addr, char **ret_body, char *err, size_t errlen)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
	char host[256], req[512];
	_cleanup_free_ char *buf = NULL;
	_cleanup_close_ int fd = -1;
	const char *colon = strrchr(addr, ':'), *body;
	size_t len = 0, hl;
	struct pollfd pfd;
	int r;

	if (!colon || colon == addr) {
		snprintf(err, errlen, "'%s' is not HOST:PORT", addr);
		return -EINVAL;
	}
	hl = (size_t)(colon - addr);
	if (addr[0] == '[' && hl >= 2 && addr[hl - 1] == ']') {
		addr++;
		hl -= 2;
	}
	if (hl >= sizeof(host)) {
		snprintf(err, errlen, "host name too long");
		return -EINVAL;
	}
	memcpy(host, addr, hl);
	host[hl] = '\0';
	r = getaddrinfo(host, colon + 1, &hints, &ai);
	if (r != 0) {
		snprintf(err, errlen, "cannot resolve %.64s: %s", host, gai_strerror(r));
		return -EHOSTUNREACH;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS)) {
		r = -errno;
		freeaddrinfo(ai);
		snprintf(err, errlen, "cannot connect: %s", strerror(-r));
		return r;
	}
	freeaddrinfo(ai);
	pfd = (struct pollfd){.fd = fd, .events = POLLOUT};
	if (poll(&pfd, 1, METRICS_TIMEOUT_MS) != 1) {
		snprintf(err, errlen, "cannot connect: timed out");
		return -ETIMEDOUT;
	}
	{
		int soerr = 0;
		socklen_t sl = sizeof(soerr);

		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr) {
			snprintf(err, errlen, "cannot connect: %s",
				 strerror(soerr ? soerr : errno));
			return -(soerr ? soerr : errno);
		}
	}
	r = snprintf(req, sizeof(req),
		     "GET /metrics HTTP/1.0\r\nHost: %s\r\nUser-Agent: aicnctl\r\nAccept: "
		     "text/plain\r\nConnection: close\r\n\r\n",
		     host);
	if (send(fd, req, (size_t)r, MSG_NOSIGNAL) != r) {
		snprintf(err, errlen, "cannot send the request: %m");
		return -EIO;
	}
	buf = malloc(METRICS_MAX + 1);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n;

		pfd = (struct pollfd){.fd = fd, .events = POLLIN};
		if (poll(&pfd, 1, METRICS_TIMEOUT_MS) != 1) {
			snprintf(err, errlen, "no answer within %d s", METRICS_TIMEOUT_MS / 1000);
			return -ETIMEDOUT;
		}
		n = recv(fd, buf + len, METRICS_MAX - len, 0);
		if (n < 0) {
			snprintf(err, errlen, "read failed: %m");
			return -errno;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len == METRICS_MAX) {
			snprintf(err, errlen, "the page is larger than %d bytes", METRICS_MAX);
			return -EFBIG;
		}
	}
	buf[len] = '\0';
	if (strncmp(buf, "HTTP/1.", 7) != 0 || strncmp(buf + 8, " 200", 4) != 0) {
		snprintf(err, errlen, "HTTP error: %.*s", (int)strcspn(buf, "\r\n"), buf);
		return -EPROTO;
	}
	body = strstr(buf, "\r\n\r\n");
	if (!body) {
		snprintf(err, errlen, "malformed HTTP reply");
		return -EPROTO;
	}
	*ret_body = strdup(body + 4);
	return *ret_body ? 0 : -ENOMEM;
}

int cmd_agent(int argc, char **argv)
{
	const char *metrics = NULL;
	int json = 0, rc = EXIT_FAIL;
	const struct opt opts[] = {
		{"metrics", 'm', OPT_STR, &metrics, "HOST:PORT",
		 "the agent's metrics address (default: metrics_listen\nfrom /etc/aicn/agent.conf, "
		 "or 127.0.0.1:9464)",
		 0, 0},
		{"json", 0, OPT_FLAG, &json, NULL, "print the summary as JSON", 0, 0},
		{0},
	};
	const struct opt_cmd cmd = {
		"aicnctl agent",
		"status [--metrics HOST:PORT] [--json]",
		"Summarise the local aicn-agent from its Prometheus /metrics page: version, the\n"
		"coordinator connection, cores offered, tasks by state with each running task's\n"
		"metered CPU seconds, tasks ended since start, usage records waiting for the\n"
		"coordinator's acknowledgement, and the eBPF meter's drop counters (which should\n"
		"stay 0).",
		opts,
		NULL,
		1,
		1,
		0,
		"Exit status: 0 the agent answered and is registered with the coordinator; 1 it\n"
		"answered but is not registered, or its metrics could not be read; 2 usage error."};
	char addr[256] = "127.0.0.1:9464", err[256], version[64] = "?", conn[32] = "?";
	_cleanup_free_ char *body = NULL;
	_cleanup_(cJSON_Deletep) cJSON *out = NULL;
	cJSON *tasks, *ended, *cpu, *drops;
	double offered = 0, pending = 0;
	struct opt_args a = {0};
	int r = opt_parse(&cmd, argc, argv, &a);

	if (r)
		return r == OPT_HELP ? EXIT_OK : EXIT_USAGE;
	if (strcmp(a.pos[0], "status") != 0) {
		rc = opt_fail(&cmd, "unknown subcommand '%s' (status)", a.pos[0]);
		goto out;
	}
	if (metrics) {
		snprintf(addr, sizeof(addr), "%s", metrics);
	} else {
		FILE *f = fopen(AGENT_CONF, "re");

		if (f) {
			ini_parse_file(f, conf_metrics_cb, addr);
			fclose(f);
		}
		if (!addr[0] || strcmp(addr, "off") == 0) {
			fprintf(stderr, "%s: metrics are off in %s (metrics_listen)\n", cmd.name,
				AGENT_CONF);
			goto out;
		}
	}
	r = http_get_metrics(addr, &body, err, sizeof(err));
	if (r < 0 || !body) {
		fprintf(stderr,
			"%s: cannot read the agent's metrics at %s: %s (is aicn-agent "
			"running? see metrics_listen in %s)\n",
			cmd.name, addr, err, AGENT_CONF);
		goto out;
	}
	r = agent_metrics_summary(body, strlen(body), &out);
	if (r < 0) {
		fprintf(stderr, "%s: cannot summarise the metrics: %s\n", cmd.name, strerror(-r));
		goto out;
	}
	tasks = cJSON_GetObjectItemCaseSensitive(out, "tasks");
	ended = cJSON_GetObjectItemCaseSensitive(out, "tasks_ended");
	cpu = cJSON_GetObjectItemCaseSensitive(out, "task_cpu_ns");
	drops = cJSON_GetObjectItemCaseSensitive(out, "meter_drops");
	snprintf(version, sizeof(version), "%s", json_str(out, "version", "?"));
	snprintf(conn, sizeof(conn), "%s", json_str(out, "coordinator", "?"));
	offered = (double)json_i64(out, "cores_offered_milli", 0) / 1000;
	pending = (double)json_i64(out, "records_pending_ack", 0);
	if (!cJSON_AddStringToObject(out, "metrics", addr))
		goto out;
	rc = strcmp(conn, "registered") == 0 ? EXIT_OK : EXIT_FAIL;
	if (json) {
		if (client_print_json(out) != EXIT_OK)
			rc = EXIT_FAIL;
		goto out;
	}
	printf("agent %s at %s\ncoordinator: %s\ncores offered: %g\nrecords waiting for ack: "
	       "%.0f\n",
	       version, addr, conn, offered, pending);
	{
		const cJSON *it;

		printf("tasks:");
		cJSON_ArrayForEach (it, tasks) {
			int64_t n = 0;

			canon_number_i64(it, &n);
			printf(" %s %lld", it->string, (long long)n);
		}
		printf("\nended since start:");
		cJSON_ArrayForEach (it, ended) {
			int64_t n = 0;

			canon_number_i64(it, &n);
			printf(" %s %lld", it->string, (long long)n);
		}
		if (!cJSON_GetArraySize(ended))
			printf(" none");
		putchar('\n');
		cJSON_ArrayForEach (it, cpu) {
			int64_t n = 0;

			canon_number_i64(it, &n);
			printf("  task %s: %.3f CPU-s\n", it->string, (double)n / 1e9);
		}
		cJSON_ArrayForEach (it, drops) {
			int64_t n = 0;

			canon_number_i64(it, &n);
			if (n)
				printf("warning: meter dropped %lld events (%s)\n", (long long)n,
				       it->string);
		}
	}
out:
	opt_args_done(&a);
	return rc;
}

/* NODES and QUEUE: the operator's views (an auditor certificate). */
static int operator_view(int argc, char **argv, const struct opt_cmd *proto, enum market_msg m)
{
	int json = 0, rc;
	const struct opt opts[] = {
		{"json", 0, OPT_FLAG, &json, NULL, "print the coordinator's reply as JSON", 0, 0},
		{0},
	};
	struct opt_cmd cmd = *proto;
	_cleanup_(client_freep) struct client *c = NULL;
	_cleanup_(cJSON_Deletep) cJSON *data = NULL;
	struct opt_args a = {0};
	int r;

	cmd.opts = opts;
	cmd.opts2 = client_opt_table;
	r = opt_parse(&cmd, argc, argv, &a);
	if (r)
		return r == OPT_HELP ? EXIT_OK : EXIT_USAGE;
	opt_args_done(&a);
	rc = client_open_or_fail(cmd.name, &c);
	if (rc)
		return rc;
	r = client_call(c, m, NULL, &data);
	if (r < 0)
		return client_fail(c, cmd.name, r, cmd.name + strlen("aicnctl "));
	if (json)
		return client_print_json(data);
	client_print_kv(data, 0);
	return EXIT_OK;
}

int cmd_nodes(int argc, char **argv)
{
	static const struct opt_cmd cmd = {
		"aicnctl nodes",
		"[--json]",
		"Every provider node the coordinator knows, online or not, with capacity, price,\n"
		"location, window, rating and tasks (an operator's view: needs an auditor\n"
		"certificate).",
		NULL,
		NULL,
		0,
		0,
		0,
		NULL};

	return operator_view(argc, argv, &cmd, MKT_NODES);
}

int cmd_queue(int argc, char **argv)
{
	static const struct opt_cmd cmd = {
		"aicnctl queue",
		"[--json]",
		"The scheduler's state: queued and placed slots, online nodes, online and running\n"
		"cores (an operator's view: needs an auditor certificate).",
		NULL,
		NULL,
		0,
		0,
		0,
		NULL};

	return operator_view(argc, argv, &cmd, MKT_QUEUE);
}
