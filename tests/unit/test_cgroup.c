/* test_cgroup.c -- task cgroups on this host: create under our own cgroup, limits, figures, kill, removal. */
#include <aicn/cgroup.h>
#include <aicn/compiler.h>

#include "harness.h"

#include <limits.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

static struct cg_host host;
static char name[64];

static int dir_exists(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int host_ready(void)
{
	return cg_host_detect(&host) == 0;
}

static void test_detect(void)
{
	REQUIRE_ROOT();
	CHECK(host_ready());
	CHECK(host.v2_mount[0] == '/');
	CHECK(host.v2_self[0] == '/');
	if (host.layout == CG_LAYOUT_HYBRID)
		CHECK(host.v1_mount[CG_V1_CPU][0] || host.v1_mount[CG_V1_MEMORY][0]);
	printf("layout %s, v2 at %s, self %s\n",
	       host.layout == CG_LAYOUT_HYBRID ? "hybrid" : "unified", host.v2_mount, host.v2_self);
}

static void test_bad_names(void)
{
	struct cg *cg = NULL;

	REQUIRE_ROOT();
	CHECK(host_ready());
	CHECK_EQ(cg_create(&host, NULL, "..", 0, &cg), -EINVAL);
	CHECK_EQ(cg_create(&host, NULL, "a/b", 0, &cg), -EINVAL);
	CHECK_EQ(cg_create(&host, "../x", "a", 0, &cg), -EINVAL);
	CHECK_EQ(cg_create(&host, NULL, "", 0, &cg), -EINVAL);
	CHECK_EQ(cg_create(&host, "no-such-parent-aicn", "a", 0, &cg), -ENOENT);
	CHECK_EQ(cg_open(&host, NULL, "aicn-not-there", 0, &cg), -ENOENT);
	CHECK(!cg);
}

static pid_t spawn_spinner(struct cg *cg)
{
	int p[2];
	pid_t pid;
	char c;

	if (pipe(p) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		/* wait until moved, then burn CPU and fork a grandchild that also spins */
		close(p[1]);
		if (read(p[0], &c, 1) != 1)
			_exit(1);
		if (fork() == 0)
			setsid();
		for (;;)
			__asm__ volatile("" ::: "memory");
	}
	close(p[0]);
	if (pid > 0 && cg_attach(cg, pid) < 0) {
		kill(pid, SIGKILL);
		pid = -1;
	}
	if (write(p[1], "x", 1) != 1)
		pid = -1;
	close(p[1]);
	return pid;
}

static void test_lifecycle(void)
{
	struct cg *cg = NULL, *again = NULL, *child = NULL;
	struct cg_limits lim = {.cpu_quota_us = 50000, .memory_bytes = 64 << 20, .pids = 32};
	uint64_t id = 0, n = 0, ns = 0, ns2 = 0, oom = 1;
	char *v2 = NULL, *v1mem = NULL, childparent[96];
	struct timespec d = {0, 300 * 1000000L};
	pid_t pid;
	int status;

	REQUIRE_ROOT();
	CHECK(host_ready());
	snprintf(name, sizeof(name), "aicn-test-cg.%d", (int)getpid());
	CHECK_EQ(cg_create(&host, NULL, name, 1, &cg), 0);
	CHECK_EQ(cg_create(&host, NULL, name, 1, &again), -EEXIST);
	CHECK(cg->id != 0);
	CHECK_EQ(cg_id_of_path(cg->v2_path, &id), 0);
	CHECK(id == cg->id);
	CHECK_EQ(cg_open(&host, NULL, name, 1, &again), 0);
	CHECK(again->id == cg->id);
	again = cg_free(again);
	v2 = strdup(cg->v2_path);
	if (cg->v1_path[CG_V1_MEMORY])
		v1mem = strdup(cg->v1_path[CG_V1_MEMORY]);

	CHECK_EQ(cg_set_limits(cg, &lim), 0);
	/* a nested child cgroup, as a task may make */
	snprintf(childparent, sizeof(childparent), "%s", name);
	CHECK_EQ(cg_create(&host, childparent, "inner", 1, &child), 0);

	pid = spawn_spinner(cg);
	CHECK(pid > 0);
	nanosleep(&d, NULL);
	CHECK_EQ(cg_nprocs(cg, &n), 0);
	CHECK_EQ(n, 2);
	CHECK_EQ(cg_cpu_usage_ns(cg, &ns), 0);
	/* 2 spinners capped at 0.5 core for 300 ms: well above zero, well below 2 cores' worth */
	CHECK(ns > 20 * 1000000ULL);
	CHECK(ns < 280 * 1000000ULL);
	CHECK_EQ(cg_oom_kills(cg, &oom), 0);
	CHECK_EQ(oom, 0);
	CHECK_EQ(cg_kill(cg), 0);
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	CHECK_EQ(cg_nprocs(cg, &n), 0);
	CHECK_EQ(n, 0);
	CHECK_EQ(cg_cpu_usage_ns(cg, &ns2), 0);
	CHECK(ns2 >= ns);
	child = cg_free(child);
	CHECK_EQ(cg_destroy(cg), 0);
	CHECK(!dir_exists(v2));
	if (v1mem)
		CHECK(!dir_exists(v1mem));
	free(v2);
	free(v1mem);
}

static void test_destroy_kills_daemons(void)
{
	struct cg *cg = NULL;
	char *v2;
	pid_t pid;

	REQUIRE_ROOT();
	CHECK(host_ready());
	snprintf(name, sizeof(name), "aicn-test-cgd.%d", (int)getpid());
	CHECK_EQ(cg_create(&host, NULL, name, 1, &cg), 0);
	pid = spawn_spinner(cg);
	CHECK(pid > 0);
	v2 = strdup(cg->v2_path);
	CHECK_EQ(cg_destroy(cg), 0); /* the setsid grandchild goes too */
	waitpid(pid, NULL, 0);
	CHECK(!dir_exists(v2));
	free(v2);
}

/* Count the pids listed in dir/cgroup.procs. */
static int count_procs(const char *dir)
{
	char path[PATH_MAX], line[32];
	int n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		n++;
	fclose(f);
	return n;
}

static void test_make_room(void)
{
	struct cg *cg = NULL;
	struct cg_host v2host;
	char rname[64], leaf[PATH_MAX + 8];
	pid_t pids[2] = {0, 0};

	REQUIRE_ROOT();
	CHECK(host_ready());
	snprintf(rname, sizeof(rname), "aicn-test-room.%d", (int)getpid());
	CHECK_EQ(cg_create(&host, NULL, rname, 0, &cg), 0);
	for (int i = 0; i < 2; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			pause();
			_exit(0);
		}
		CHECK(pids[i] > 0);
		CHECK_EQ(cg_attach(cg, pids[i]), 0);
	}
	/* hybrid hosts and the root cgroup have no "no internal processes" rule: nothing moves */
	if (host.layout == CG_LAYOUT_HYBRID)
		CHECK_EQ(cg_host_make_room(&host, "agent"), 0);
	CHECK_EQ(count_procs(cg->v2_path), 2);

	/* as a delegated pure-v2 service cgroup holding the daemon's processes */
	v2host = host;
	v2host.layout = CG_LAYOUT_UNIFIED;
	CHECK((size_t)snprintf(v2host.v2_self, sizeof(v2host.v2_self), "%s/%s",
			       strcmp(host.v2_self, "/") ? host.v2_self : "",
			       rname) < sizeof(v2host.v2_self));
	CHECK_EQ(cg_host_make_room(&v2host, "../x"), -EINVAL);
	CHECK_EQ(cg_host_make_room(&v2host, "agent"), 0);
	snprintf(leaf, sizeof(leaf), "%s/agent", cg->v2_path);
	CHECK_EQ(count_procs(cg->v2_path), 0);
	CHECK_EQ(count_procs(leaf), 2);
	CHECK_EQ(cg_host_make_room(&v2host, "agent"), 0); /* again: nothing left to move */
	CHECK_EQ(count_procs(leaf), 2);

	for (int i = 0; i < 2; i++)
		kill(pids[i], SIGKILL);
	for (int i = 0; i < 2; i++)
		waitpid(pids[i], NULL, 0);
	CHECK_EQ(cg_destroy(cg), 0); /* removes the leaf too */
	CHECK(!dir_exists(leaf));
}

int main(void)
{
	static const struct test_case tests[] = {
		TEST(test_detect),    TEST(test_bad_names),
		TEST(test_lifecycle), TEST(test_destroy_kills_daemons),
		TEST(test_make_room), {0},
	};

	return harness_run(tests);
}
