/* test_config.c -- agent.conf: defaults, every key, every bad value named by file:line and key, round trip. */
#include "../../agent/config.h"

#include <aicn/compiler.h>

#include "harness.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <sys/stat.h>

static const struct agent_host_facts host = {.ncpus = 4, .mem_bytes = 8ULL << 30};
static char err[AGENT_CONFIG_ERR_MAX];

static int parse(const char *text, struct agent_config **ret)
{
	*ret = NULL;
	return agent_config_parse(text, strlen(text), "t.conf", &host, err, sizeof(err), ret);
}

static void test_minimal_defaults(void)
{
	struct agent_config *c;

	CHECK_EQ(parse("[agent]\ncoordinator = coord.example.org:7443\nask_price = 1200\n", &c), 0);
	CHECK_STREQ(c->coordinator, "coord.example.org:7443");
	CHECK_EQ(c->ask_price, 1200);
	CHECK_STREQ(c->cert, "/etc/aicn/agent.crt");
	CHECK_STREQ(c->key, "/etc/aicn/agent.key");
	CHECK_STREQ(c->ca, "/etc/aicn/ca.pem"); /* as the coordinator's default */
	CHECK_STREQ(c->state_dir, "/var/lib/aicn");
	CHECK_EQ(c->max_millicores, 4000);
	CHECK_EQ(c->max_memory, 4ULL << 30);
	CHECK_STREQ(c->windows, "");
	CHECK_EQ(c->window.inside_minutes, WINDOW_MINUTES); /* always available */
	CHECK_EQ(c->on_window_close, AGENT_WINDOW_FINISH);
	CHECK_STREQ(c->location, "");
	CHECK_EQ(c->renewable_ppm, 0);
	CHECK_EQ(c->max_tasks, 4);
	CHECK_EQ(c->image_cache_size, 10ULL << 30);
	CHECK_STREQ(c->metrics_listen, "127.0.0.1:9464");
	agent_config_free(c);
}

static const char full[] = "# a full configuration\n"
			   "[agent]\n"
			   "coordinator = [2001:db8::1]:7443\n"
			   "cert = /srv/aicn/node.crt\n"
			   "key = /srv/aicn/node.key\n"
			   "ca = /srv/aicn/ca.crt\n"
			   "state_dir = /srv/aicn/state\n"
			   "max_cores = 2.5\n"
			   "max_memory = 3G\n"
			   "windows = Mon-Fri 22:00-07:00\n"
			   "on_window_close = cancel ; inline comment\n"
			   "ask_price = 0\n"
			   "location = eu-west/de-fra\n"
			   "renewable_fraction = 0.35\n"
			   "max_tasks = 7\n"
			   "image_cache_size = 512MiB\n"
			   "metrics_listen = [::1]:0\n";

static void test_full(void)
{
	struct agent_config *c;

	CHECK_EQ(parse(full, &c), 0);
	CHECK_STREQ(c->coordinator, "[2001:db8::1]:7443");
	CHECK_STREQ(c->cert, "/srv/aicn/node.crt");
	CHECK_STREQ(c->key, "/srv/aicn/node.key");
	CHECK_STREQ(c->ca, "/srv/aicn/ca.crt");
	CHECK_STREQ(c->state_dir, "/srv/aicn/state");
	CHECK_EQ(c->max_millicores, 2500);
	CHECK_EQ(c->max_memory, 3ULL << 30);
	CHECK_STREQ(c->windows, "Mon-Fri 22:00-07:00");
	/* parsed by the shared window parser: Friday 23:00 inside, Saturday 12:00 and Monday 03:00 not */
	CHECK(window_inside_minute(&c->window, 4 * 1440 + 23 * 60));
	CHECK(!window_inside_minute(&c->window, 5 * 1440 + 12 * 60));
	CHECK(!window_inside_minute(&c->window, 0 * 1440 + 3 * 60));
	CHECK_EQ(c->on_window_close, AGENT_WINDOW_CANCEL);
	CHECK_EQ(c->ask_price, 0);
	CHECK_STREQ(c->location, "eu-west/de-fra");
	CHECK_EQ(c->renewable_ppm, 350000);
	CHECK_EQ(c->max_tasks, 7);
	CHECK_EQ(c->image_cache_size, 512ULL << 20);
	CHECK_STREQ(c->metrics_listen, "[::1]:0");
	agent_config_free(c);
}

static void test_keys_without_section_and_off(void)
{
	struct agent_config *c;

	CHECK_EQ(parse("coordinator=10.0.0.1:1\r\nask_price=5\r\nmetrics_listen = off\r\n"
		       "max_cores = 0.5\r\n",
		       &c),
		 0);
	CHECK_STREQ(c->coordinator, "10.0.0.1:1");
	CHECK_STREQ(c->metrics_listen, "");
	CHECK_EQ(c->max_millicores, 500);
	CHECK_EQ(c->max_tasks, 1); /* default follows max_cores, at least 1 */
	agent_config_free(c);
}

/* Every bad value: refused, message names t.conf:LINE and the key, nothing returned. */
static void test_bad_values(void)
{
	static const struct {
		const char *line;
		const char *expect; /* substring of the message */
	} bad[] = {
		{"coordinator = nohostport", "key 'coordinator'"},
		{"coordinator = host:0", "port must be 1-65535"},
		{"coordinator = host:65536", "key 'coordinator'"},
		{"coordinator = -bad-.org:1", "not a valid host name"},
		{"coordinator = 1.2.3.4.5:7", "key 'coordinator'"},
		{"coordinator = [::zz]:7", "IPv6"},
		{"coordinator = ::1:7", "key 'coordinator'"},
		{"coordinator =", "key 'coordinator'"},
		{"cert = relative/path.crt",
		 "key 'cert': 'relative/path.crt' is not an absolute path"},
		{"key = ", "key 'key'"},
		{"ca = ca.crt", "key 'ca'"},
		{"state_dir = var/lib", "key 'state_dir'"},
		{"max_cores = 0", "key 'max_cores'"},
		{"max_cores = -1", "key 'max_cores'"},
		{"max_cores = 1.2345", "key 'max_cores'"},
		{"max_cores = 5", "this host has 4 CPUs"},
		{"max_cores = two", "key 'max_cores'"},
		{"max_cores = 1.", "key 'max_cores'"},
		{"max_cores = 99999999999999999999", "key 'max_cores'"},
		{"max_memory = 1K", "key 'max_memory'"},
		{"max_memory = 9G", "key 'max_memory'"},
		{"max_memory = 2X", "key 'max_memory'"},
		{"max_memory = 99999999999T", "key 'max_memory'"},
		{"max_memory = 18446744073709551616", "key 'max_memory'"},
		{"on_window_close = later", "'later' must be 'finish' or 'cancel'"},
		{"ask_price = -3", "key 'ask_price'"},
		{"ask_price = 1.5", "key 'ask_price'"},
		{"ask_price = 1000000000000001", "key 'ask_price'"},
		{"location = eu west", "key 'location'"},
		{"location = aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		 "key 'location'"},
		{"renewable_fraction = 1.1", "key 'renewable_fraction'"},
		{"renewable_fraction = 0.1234567", "key 'renewable_fraction'"},
		{"renewable_fraction = 35%", "key 'renewable_fraction'"},
		{"max_tasks = 0", "key 'max_tasks'"},
		{"max_tasks = 1025", "key 'max_tasks'"},
		{"image_cache_size = 1M", "key 'image_cache_size'"},
		{"image_cache_size = 2000T", "key 'image_cache_size'"},
		{"metrics_listen = localhost:9464", "must be an IP address"},
		{"metrics_listen = 127.0.0.1:70000", "key 'metrics_listen'"},
		{"windows = \x01", "key 'windows'"},
		{"windows = Mon-Fri 22:00", "key 'windows': 'Mon-Fri 22:00': column"},
		{"windows = Mon-Fry 22:00-07:00", "key 'windows'"},
		{"windows = 25:00-26:00", "key 'windows'"},
		{"bogus = 1", "unknown key 'bogus'"},
		{"coordinator = a:1", "key 'coordinator': set twice (first on line 2)"},
	};
	char text[512], want[160];

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct agent_config *c;

		bool own = !strncmp(bad[i].line, "coordinator =", 13) &&
			   !strstr(bad[i].expect, "twice");

		snprintf(text, sizeof(text), "[agent]\n%s\nask_price = 1\n%s\n",
			 own ? "; coordinator below" : "coordinator = c.example:1", bad[i].line);
		c = NULL;
		if (parse(text, &c) != -EINVAL || c) {
			fprintf(stderr, "accepted: %s\n", bad[i].line);
			CHECK(0);
		}
		snprintf(want, sizeof(want), "t.conf:4: ");
		if (strncmp(err, want, strlen(want)) != 0 || !strstr(err, bad[i].expect)) {
			fprintf(stderr, "line '%s': message '%s' lacks '%s' / '%s'\n", bad[i].line,
				err, want, bad[i].expect);
			CHECK(0);
		}
	}
}

static void test_structure_errors(void)
{
	struct agent_config *c;
	char big[300], *huge;
	int r;

	CHECK_EQ(parse("[agent]\nask_price = 1\n", &c), -EINVAL);
	CHECK(strstr(err, "missing required key 'coordinator'"));
	CHECK_EQ(parse("[agent]\ncoordinator = a:1\n", &c), -EINVAL);
	CHECK(strstr(err, "missing required key 'ask_price'"));
	CHECK_EQ(parse("[agent]\ncoordinator = a:1\n[market]\nask_price = 1\n", &c), -EINVAL);
	CHECK_STREQ(err, "t.conf:3: unknown section [market] (keys go in [agent])");
	CHECK_EQ(parse("[agent]\ncoordinator = a:1\nask_price\n", &c), -EINVAL);
	CHECK_STREQ(err, "t.conf:3: syntax error (expected 'key = value' or '[agent]')");
	CHECK_EQ(parse("[agent\ncoordinator = a:1\n", &c), -EINVAL);
	CHECK(strncmp(err, "t.conf:1: syntax error", 22) == 0);
	CHECK_EQ(parse("[agent]\ncoordinator = a:1\n  ask_price = 1\n", &c), -EINVAL);
	CHECK_STREQ(err, "t.conf:3: indented line (continuation lines are not supported)");
	memset(big, 'x', sizeof(big));
	memcpy(big, "location = ", 11);
	big[sizeof(big) - 1] = '\0';
	CHECK_EQ(parse(big, &c), -EINVAL);
	CHECK(strstr(err, "t.conf:1: line longer than"));
	CHECK_EQ(agent_config_parse("coordinator = a:1\n\0x", 20, "t.conf", &host, err, sizeof(err),
				    &c),
		 -EINVAL);
	CHECK_STREQ(err, "t.conf:2: NUL byte in line");
	huge = calloc(1, AGENT_CONFIG_MAX_SIZE + 2);
	CHECK(huge);
	memset(huge, '\n', AGENT_CONFIG_MAX_SIZE + 1);
	r = agent_config_parse(huge, AGENT_CONFIG_MAX_SIZE + 1, "t.conf", &host, err, sizeof(err),
			       &c);
	free(huge);
	CHECK_EQ(r, -EFBIG);
	/* comments and blank lines are fine, indented comments too */
	CHECK_EQ(
		parse("; c\n# c\n\n   # indented comment\n[agent]\ncoordinator = a:1\nask_price = 1\n",
		      &c),
		0);
	agent_config_free(c);
}

static void test_write_round_trip(void)
{
	struct agent_config *a, *b;
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	FILE *f;

	CHECK_EQ(parse(full, &a), 0);
	f = open_memstream(&buf, &len);
	CHECK(f);
	CHECK_EQ(agent_config_write(a, f), 0);
	fclose(f);
	CHECK_EQ(agent_config_parse(buf, len, "w.conf", &host, err, sizeof(err), &b), 0);
	CHECK_STREQ(a->coordinator, b->coordinator);
	CHECK_STREQ(a->cert, b->cert);
	CHECK_STREQ(a->state_dir, b->state_dir);
	CHECK_EQ(a->max_millicores, b->max_millicores);
	CHECK_EQ(a->max_memory, b->max_memory);
	CHECK_STREQ(a->windows, b->windows);
	CHECK_EQ(a->on_window_close, b->on_window_close);
	CHECK_EQ(a->ask_price, b->ask_price);
	CHECK_STREQ(a->location, b->location);
	CHECK_EQ(a->renewable_ppm, b->renewable_ppm);
	CHECK_EQ(a->max_tasks, b->max_tasks);
	CHECK_EQ(a->image_cache_size, b->image_cache_size);
	CHECK_STREQ(a->metrics_listen, b->metrics_listen);
	CHECK(strstr(buf, "max_cores = 2.5\n"));
	CHECK(strstr(buf, "renewable_fraction = 0.35\n"));
	agent_config_free(a);
	agent_config_free(b);
}

static void test_load_and_check_files(void)
{
	char dir[] = "/tmp/aicn-cfg-XXXXXX", path[128], body[1024];
	struct agent_config *c = NULL;
	int fd;

	CHECK(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/agent.conf", dir);
	CHECK_EQ(agent_config_load(path, &host, err, sizeof(err), &c), -ENOENT);
	CHECK(strstr(err, "cannot open"));
	snprintf(body, sizeof(body),
		 "[agent]\ncoordinator = a:1\nask_price = 1\ncert = %s/c\nkey = %s/k\nca = %s/ca\n"
		 "state_dir = %s/state\n",
		 dir, dir, dir, dir);
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	CHECK(fd >= 0);
	CHECK(write(fd, body, strlen(body)) == (ssize_t)strlen(body));
	close(fd);
	CHECK_EQ(agent_config_load(path, &host, err, sizeof(err), &c), 0);
	CHECK(agent_config_check_files(c, err, sizeof(err)) < 0);
	CHECK(strstr(err, "cert "));
	for (const char *n = "c\0k\0ca\0"; *n; n += strlen(n) + 1) {
		snprintf(body, sizeof(body), "%s/%s", dir, n);
		fd = open(body, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
		CHECK(fd >= 0);
		close(fd);
	}
	CHECK(agent_config_check_files(c, err, sizeof(err)) < 0);
	CHECK(strstr(err, "state_dir "));
	snprintf(body, sizeof(body), "%s/state", dir);
	CHECK_EQ(mkdir(body, 0700), 0);
	CHECK_EQ(agent_config_check_files(c, err, sizeof(err)), 0);
	agent_config_free(c);
	snprintf(body, sizeof(body), "rm -rf %s", dir);
	CHECK_EQ(system(body), 0);
}

static void test_host_probe(void)
{
	struct agent_host_facts h;

	CHECK_EQ(agent_host_probe(&h), 0);
	CHECK(h.ncpus >= 1);
	CHECK(h.mem_bytes >= (64ULL << 20));
}

int main(void)
{
	static const struct test_case cases[] = {
		TEST(test_minimal_defaults),
		TEST(test_full),
		TEST(test_keys_without_section_and_off),
		TEST(test_bad_values),
		TEST(test_structure_errors),
		TEST(test_write_round_trip),
		TEST(test_load_and_check_files),
		TEST(test_host_probe),
		{NULL, NULL},
	};
	return harness_run(cases);
}
