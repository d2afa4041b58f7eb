/* test_meter_api.c -- the meter_* API on real eBPF and real cgroups: lifecycle, re-open, live readings, errors. */
#include <aicn/cgroup.h>
#include <aicn/meter.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "harness.h"

static char pin_dir[128];

static void set_pin_dir(const char *tag)
{
	snprintf(pin_dir, sizeof(pin_dir), "/sys/fs/bpf/aicn-test-api-%d-%s", (int)getpid(), tag);
}

static int make_cg(const char *tag, struct cg **ret)
{
	struct cg_host host;
	char name[64];
	int r = cg_host_detect(&host);

	if (r < 0)
		return r;
	snprintf(name, sizeof(name), "aicn-test-api-%d-%s", (int)getpid(), tag);
	return cg_create(&host, NULL, name, 0, ret);
}

static void test_crosscheck_bound(void)
{
	int64_t d;

	CHECK_EQ(meter_crosscheck(1000000000, 1000000000, &d), 1);
	CHECK_EQ(d, 0);
	/* 0.01% of 1 s is 100 us, plus 2 us */
	CHECK_EQ(meter_crosscheck(1000102000, 1000000000, &d), 1);
	CHECK_EQ(d, 102000);
	CHECK_EQ(meter_crosscheck(1000102001, 1000000000, NULL), 0);
	CHECK_EQ(meter_crosscheck(999898000, 1000000000, &d), 1);
	CHECK_EQ(d, -102000);
	CHECK_EQ(meter_crosscheck(999897999, 1000000000, NULL), 0);
	CHECK_EQ(meter_crosscheck(2000, 0, NULL), 1);
	CHECK_EQ(meter_crosscheck(2001, 0, NULL), 0);
}

static void test_open_errors(void)
{
	struct meter *m = NULL;
	char reason[256] = "";

	REQUIRE_ROOT();
	set_pin_dir("missing");
	CHECK_EQ(meter_open(pin_dir, 0, &m, reason, sizeof(reason)), -ENOENT);
	CHECK(reason[0] != '\0');
	CHECK(m == NULL);
	CHECK_EQ(meter_open("relative/dir", METER_CREATE, &m, reason, sizeof(reason)), -EINVAL);
	CHECK_EQ(meter_open("/tmp", METER_CREATE, &m, reason, sizeof(reason)), -ENOTDIR);
	CHECK(strstr(reason, "BPF filesystem") != NULL);
	CHECK_EQ(meter_open("/tmp/aicn-no-such-dir/pins", METER_CREATE, &m, NULL, 0), -ENOTDIR);
	CHECK(access("/tmp/aicn-no-such-dir", F_OK) < 0);
}

static void test_lifecycle(void)
{
	struct meter *m = NULL, *m2 = NULL;
	struct meter_usage u;
	struct meter_drops d;
	struct cg *cg = NULL;
	char reason[256] = "";
	uint64_t id = 0, ids[4];
	int r;

	REQUIRE_ROOT();
	set_pin_dir("life");
	r = meter_open(pin_dir, METER_CREATE, &m, reason, sizeof(reason));
	if (r < 0)
		fprintf(stderr, "meter_open: %s\n", reason);
	CHECK_EQ(r, 0);
	r = make_cg("life", &cg);
	CHECK_EQ(r, 0);
	CHECK_EQ(meter_track(m, cg->v2_path, &id), 0);
	CHECK_EQ(id, cg->id);
	CHECK_EQ(meter_track(m, cg->v2_path, &id), -EEXIST);
	CHECK_EQ(meter_track(m, "/nonexistent/cgroup", &id), -ENOENT);
	CHECK_EQ(meter_list(m, ids, 4), 1);
	CHECK_EQ(ids[0], cg->id);
	CHECK_EQ(meter_read(m, cg->id, &u), 0);
	CHECK_EQ(u.cpu_ns, 0);
	CHECK_EQ(u.threads_live, 0);
	CHECK(u.tracked_at_ns > 0);
	CHECK_EQ(u.consistent, 1);

	/* a second handle (a restarted agent) sees the same state; releasing one keeps the pins */
	CHECK_EQ(meter_open(pin_dir, 0, &m2, NULL, 0), 0);
	CHECK_EQ(meter_read(m2, cg->id, &u), 0);
	CHECK_EQ(meter_release(m2), 0);
	CHECK_EQ(access(pin_dir, F_OK), 0);

	CHECK_EQ(meter_untrack(m, cg->id), 0);
	CHECK_EQ(meter_untrack(m, cg->id), -ENOENT);
	CHECK_EQ(meter_read(m, cg->id, &u), -ENOENT);
	CHECK_EQ(meter_drops(m, &d), 0);
	CHECK_EQ(d.task_storage + d.depth + d.stats_missing, 0);
	CHECK_EQ(cg_destroy(cg), 0);
	CHECK_EQ(meter_release(m), 1);
	CHECK(access(pin_dir, F_OK) < 0);
}

static void test_persist(void)
{
	struct meter *m = NULL;
	char nested[160];

	REQUIRE_ROOT();
	/* a nested pin directory is made level by level */
	set_pin_dir("nest");
	snprintf(nested, sizeof(nested), "%s/a/b", pin_dir);
	CHECK_EQ(meter_open(nested, METER_CREATE, &m, NULL, 0), 0);
	CHECK_EQ(meter_release(m), 1);
	CHECK(access(nested, F_OK) < 0);
	snprintf(nested, sizeof(nested), "%s/a", pin_dir);
	rmdir(nested);
	rmdir(pin_dir);
	set_pin_dir("persist");
	CHECK_EQ(meter_open(pin_dir, METER_CREATE | METER_PERSIST, &m, NULL, 0), 0);
	CHECK_EQ(meter_release(m), 0);
	CHECK_EQ(access(pin_dir, F_OK), 0);
	/* re-open without creating: pinned programs are found and still attached */
	CHECK_EQ(meter_open(pin_dir, 0, &m, NULL, 0), 0);
	meter_free(m);
	CHECK_EQ(meter_cleanup(pin_dir), 0);
	CHECK(access(pin_dir, F_OK) < 0);
	CHECK_EQ(meter_cleanup(pin_dir), 0);
}

static uint64_t read_first_u64(const char *path, int wait_ms)
{
	for (int i = 0; i < wait_ms; i++) {
		FILE *f = fopen(path, "re");
		char line[64];
		int got = f && fgets(line, sizeof(line), f) && line[0] >= '0' && line[0] <= '9';

		if (f)
			fclose(f);
		if (got)
			return strtoull(line, NULL, 10);
		usleep(1000);
	}
	return 0;
}

/*
 * A pure spinner, moved into the cgroup by cg_attach: the live reading at ~1 s
 * matches the process's own CPU clock taken right after the read within 1%.
 */
static void test_live_spinner(void)
{
	struct meter *m = NULL;
	struct cg *cg = NULL;
	struct meter_usage u = {0};
	char work[PATH_MAX], report[64];
	const char *build = getenv("AICN_BUILD");
	uint64_t id, self_ns = 0;
	int r = -1, untracked, destroyed;
	pid_t pid;

	REQUIRE_ROOT();
	if (!build)
		SKIP("AICN_BUILD not set (run through make check)");
	snprintf(work, sizeof(work), "%s/tests/meter-work", build);
	snprintf(report, sizeof(report), "/tmp/aicn-test-api-%d.report", (int)getpid());
	unlink(report);
	set_pin_dir("live");
	CHECK_EQ(meter_open(pin_dir, METER_CREATE, &m, NULL, 0), 0);
	CHECK_EQ(make_cg("live", &cg), 0);
	CHECK_EQ(meter_track(m, cg->v2_path, &id), 0);
	pid = fork();
	if (pid == 0) {
		if (cg_attach(cg, getpid()) < 0)
			_exit(3);
		execl(work, work, "report", report, "3", (char *)NULL);
		_exit(4);
	}
	if (pid > 0) {
		usleep(1000000);
		r = meter_read(m, id, &u);
		kill(pid, SIGUSR1);
		self_ns = read_first_u64(report, 2000);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	/* clean up first, so a failed check leaves nothing behind */
	unlink(report);
	untracked = meter_untrack(m, id);
	destroyed = cg_destroy(cg);
	meter_release(m);
	fprintf(stderr, "live %llu ns, process clock %llu ns just after, %+.3f%%\n",
		(unsigned long long)u.cpu_ns, (unsigned long long)self_ns,
		self_ns ? 100.0 * ((double)u.cpu_ns - (double)self_ns) / (double)self_ns : 0.0);
	CHECK(pid > 0);
	CHECK_EQ(r, 0);
	CHECK(u.consistent);
	CHECK(self_ns > 20000000); /* it did spin, however loaded the machine */
	CHECK(u.cpu_ns <= self_ns + 2000);
	CHECK((self_ns - u.cpu_ns) * 100 <= self_ns);
	CHECK_EQ(u.threads_live, 1);
	CHECK_EQ(untracked, 0);
	CHECK_EQ(destroyed, 0);
	CHECK(access(pin_dir, F_OK) < 0);
}

int main(void)
{
	static const struct test_case cases[] = {
		TEST(test_crosscheck_bound), TEST(test_open_errors),  TEST(test_lifecycle),
		TEST(test_persist),	     TEST(test_live_spinner), {0},
	};

	return harness_run(cases);
}
