/* test_supervisor.c -- aicn-supervise for real: exit/signal/kill/cancel/timeout recorded, tasks outlive a kill -9'd agent. */
#include "../../agent/supervisor.h"

#include <aicn/cgroup.h>
#include <aicn/compiler.h>

#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

static char base[] = "/tmp/aicn-sup-XXXXXX";
static char bin[512];

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static const char *task_dir(const char *id)
{
	static char dir[256];

	snprintf(dir, sizeof(dir), "%s/%s", base, id);
	mkdir(dir, 0700);
	return dir;
}

static int start(const char *id, const char *const *argv, uint64_t timeout_ms, uint64_t grace_ms,
		 const struct cg *cg, struct sup **ret)
{
	struct sup_spec spec = {
		.task_id = id,
		.argv = argv,
		.envp = (const char *const[]){"PATH=/usr/bin:/bin", NULL},
		.cg = cg,
		.timeout_ms = timeout_ms,
		.grace_ms = grace_ms,
	};

	return sup_start(bin, task_dir(id), &spec, ret);
}

static int read_file(const char *dir, const char *name, char *buf, size_t len)
{
	char path[512];
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return (int)n;
}

static void test_exit_code(void)
{
	const char *argv[] = {"sh", "-c", "echo hello; echo oops >&2; exit 3", NULL};
	struct sup *s = NULL;
	const struct sup_status *st;
	struct sup_status disk;
	struct timespec now;
	char buf[64];
	int dfd;

	CHECK_EQ(start("exit3", argv, 0, 0, NULL, &s), 0);
	CHECK_EQ(sup_wait(s, 10000), 0);
	st = sup_status(s);
	CHECK_EQ(st->kind, SUP_EXITED);
	CHECK_EQ(st->exit_code, 3);
	CHECK_EQ(st->signal, 0);
	CHECK_STREQ(st->task_id, "exit3");
	CHECK(st->pid > 0 && st->supervisor_pid > 0 && st->supervisor_pid != getpid());
	CHECK(st->finished_boottime_ns >= st->started_boottime_ns);
	CHECK(st->finished_realtime_ns >= st->started_realtime_ns);
	clock_gettime(CLOCK_REALTIME, &now);
	CHECK((uint64_t)now.tv_sec - st->started_realtime_ns / 1000000000ULL < 60);
	CHECK(read_file(sup_task_dir(s), "stdout", buf, sizeof(buf)) > 0);
	CHECK_STREQ(buf, "hello\n");
	CHECK(read_file(sup_task_dir(s), "stderr", buf, sizeof(buf)) > 0);
	CHECK_STREQ(buf, "oops\n");
	/* what the agent sees is what is on disk */
	dfd = open(sup_task_dir(s), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHECK(dfd >= 0);
	CHECK_EQ(sup_state_read(dfd, &disk), 0);
	close(dfd);
	CHECK_EQ(disk.kind, SUP_EXITED);
	CHECK_EQ(disk.exit_code, 3);
	CHECK_EQ(disk.finished_boottime_ns, st->finished_boottime_ns);
	CHECK_EQ(sup_cancel(s), -EALREADY);
	sup_free(s);
}

static void test_signal(void)
{
	const char *argv[] = {"sh", "-c", "kill -USR1 $$", NULL};
	struct sup *s = NULL;

	CHECK_EQ(start("usr1", argv, 0, 0, NULL, &s), 0);
	CHECK_EQ(sup_wait(s, 10000), 0);
	CHECK_EQ(sup_status(s)->kind, SUP_SIGNALED);
	CHECK_EQ(sup_status(s)->signal, SIGUSR1);
	sup_free(s);
}

static void test_killed_from_outside(void)
{
	const char *argv[] = {"sleep", "30", NULL};
	struct sup *s = NULL;

	CHECK_EQ(start("kill9", argv, 0, 0, NULL, &s), 0);
	CHECK_EQ(sup_status(s)->kind, SUP_RUNNING);
	CHECK_EQ(sup_wait(s, 200), -ETIMEDOUT);
	CHECK_EQ(kill(sup_status(s)->pid, SIGKILL), 0);
	CHECK_EQ(sup_wait(s, 10000), 0);
	CHECK_EQ(sup_status(s)->kind, SUP_SIGNALED);
	CHECK_EQ(sup_status(s)->signal, SIGKILL);
	sup_free(s);
}

static void test_cancel(void)
{
	const char *polite[] = {"sh", "-c", "trap 'exit 7' TERM; while :; do sleep 0.05; done",
				NULL};
	const char *stubborn[] = {"sh", "-c", "trap '' TERM; while :; do sleep 0.05; done", NULL};
	struct sup *s = NULL;
	uint64_t t0;

	CHECK_EQ(start("cancel1", polite, 0, 0, NULL, &s), 0);
	CHECK_EQ(sup_cancel(s), 0);
	CHECK_EQ(sup_wait(s, 10000), 0);
	CHECK_EQ(sup_status(s)->kind, SUP_CANCELED);
	CHECK_EQ(sup_status(s)->exit_code, 7);
	s = sup_free(s);

	/* SIGTERM ignored: SIGKILL follows after the grace time, not before */
	CHECK_EQ(start("cancel2", stubborn, 0, 400, NULL, &s), 0);
	t0 = mono_ms();
	CHECK_EQ(sup_cancel(s), 0);
	CHECK_EQ(sup_wait(s, 10000), 0);
	CHECK(mono_ms() - t0 >= 380);
	CHECK(mono_ms() - t0 < 5000);
	CHECK_EQ(sup_status(s)->kind, SUP_CANCELED);
	CHECK_EQ(sup_status(s)->signal, SIGKILL);
	sup_free(s);
}

static void test_timeout(void)
{
	const char *argv[] = {"sleep", "30", NULL};
	struct sup *s = NULL;
	const struct sup_status *st;
	uint64_t wall_ms;

	CHECK_EQ(start("timeout", argv, 300, 0, NULL, &s), 0);
	CHECK_EQ(sup_wait(s, 10000), 0);
	st = sup_status(s);
	CHECK_EQ(st->kind, SUP_TIMEOUT);
	CHECK_EQ(st->signal, SIGTERM);
	wall_ms = (st->finished_boottime_ns - st->started_boottime_ns) / 1000000;
	CHECK(wall_ms >= 300 && wall_ms < 5000);
	sup_free(s);
}

static void test_exec_failure(void)
{
	const char *argv[] = {"/nonexistent/aicn-prog", NULL};
	struct sup *s = NULL;

	CHECK_EQ(start("nosuch", argv, 0, 0, NULL, &s), 0);
	CHECK_EQ(sup_status(s)->kind, SUP_FAILED);
	CHECK(strstr(sup_status(s)->error, "exec /nonexistent/aicn-prog"));
	CHECK(strstr(sup_status(s)->error, "No such file"));
	sup_free(s);
}

static void test_bad_spec(void)
{
	const char *argv[] = {"true", NULL};
	struct sup *s = NULL;

	CHECK_EQ(start("bad id!", argv, 0, 0, NULL, &s), -EINVAL);
	CHECK_EQ(start("ok", (const char *const[]){NULL}, 0, 0, NULL, &s), -EINVAL);
	CHECK(sup_start("/nonexistent/aicn-supervise", task_dir("nobin"),
			&(struct sup_spec){.task_id = "nobin", .argv = argv}, &s) < 0);
}

/* A forked "agent" starts the task and dies by SIGKILL; returns its task directory. */
static int agent_starts_then_dies(const char *id, const char *const *argv)
{
	int p[2], status;
	char c;
	pid_t agent;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	agent = fork();
	if (agent == 0) {
		struct sup *s = NULL;

		close(p[0]);
		if (start(id, argv, 0, 0, NULL, &s) < 0)
			_exit(1);
		if (write(p[1], "s", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(p[1]);
	if (read(p[0], &c, 1) != 1) {
		close(p[0]);
		return -EIO;
	}
	close(p[0]);
	kill(agent, SIGKILL);
	waitpid(agent, &status, 0);
	return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL ? 0 : -ECHILD;
}

static void test_survives_agent_kill(void)
{
	const char *argv[] = {"sh", "-c", "while [ ! -e go ]; do sleep 0.02; done; exit 5", NULL};
	struct sup *s = NULL;
	uint64_t start_ticks;
	char go[300];
	int fd;

	CHECK_EQ(agent_starts_then_dies("survive", argv), 0);
	usleep(100000);
	/* the restarted agent re-adopts: same task, still running */
	CHECK_EQ(sup_adopt(task_dir("survive"), &s), 0);
	CHECK_EQ(sup_status(s)->kind, SUP_RUNNING);
	CHECK(sup_fd(s) >= 0);
	CHECK_EQ(kill(sup_status(s)->pid, 0), 0);
	CHECK_EQ(sup_proc_start_time(sup_status(s)->pid, &start_ticks), 0);
	CHECK_EQ(start_ticks, sup_status(s)->pid_start);
	CHECK_EQ(sup_wait(s, 300), -ETIMEDOUT);
	snprintf(go, sizeof(go), "%s/go", sup_task_dir(s));
	fd = open(go, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	CHECK(fd >= 0);
	close(fd);
	CHECK_EQ(sup_wait(s, 10000), 0);
	CHECK_EQ(sup_status(s)->kind, SUP_EXITED);
	CHECK_EQ(sup_status(s)->exit_code, 5);
	sup_free(s);
}

static void test_finished_while_agent_down(void)
{
	const char *argv[] = {"sh", "-c", "sleep 0.2; exit 4", NULL};
	struct sup *s = NULL;

	CHECK_EQ(agent_starts_then_dies("down", argv), 0);
	usleep(700000);
	CHECK_EQ(sup_adopt(task_dir("down"), &s), 0);
	CHECK_EQ(sup_wait(s, 10000), 0);
	CHECK_EQ(sup_status(s)->kind, SUP_EXITED);
	CHECK_EQ(sup_status(s)->exit_code, 4);
	CHECK_EQ(sup_fd(s), -1);
	sup_free(s);
}

static void test_supervisor_killed_is_lost(void)
{
	const char *argv[] = {"sleep", "30", NULL};
	struct sup *s = NULL, *again = NULL;
	pid_t task;

	CHECK_EQ(start("lost", argv, 0, 0, NULL, &s), 0);
	task = sup_status(s)->pid;
	CHECK_EQ(kill(sup_status(s)->supervisor_pid, SIGKILL), 0);
	CHECK_EQ(sup_wait(s, 10000), 0);
	CHECK_EQ(sup_status(s)->kind, SUP_LOST);
	CHECK(strstr(sup_status(s)->error, "without recording"));
	/* a later agent sees the same */
	CHECK_EQ(sup_adopt(sup_task_dir(s), &again), 0);
	CHECK_EQ(sup_status(again)->kind, SUP_LOST);
	kill(task, SIGKILL);
	sup_free(again);
	sup_free(s);
}

static int host_or_skip(struct cg_host *h)
{
	return cg_host_detect(h);
}

static void test_cgroup_task(void)
{
	const char *argv[] = {"sh", "-c",
			      "cat /proc/self/cgroup; (sleep 30 &); i=0; "
			      "while [ $i -lt 100000 ]; do i=$((i+1)); done; exit 0",
			      NULL};
	struct cg_host host;
	struct cg *cg = NULL;
	struct sup *s = NULL;
	char name[64], out[4096];
	uint64_t procs = 1;

	REQUIRE_ROOT();
	CHECK_EQ(host_or_skip(&host), 0);
	snprintf(name, sizeof(name), "aicn-test-sup-%d", (int)getpid());
	CHECK_EQ(cg_create(&host, NULL, name, 1, &cg), 0);
	if (start("cgtask", argv, 0, 0, cg, &s) < 0) {
		cg_destroy(cg);
		CHECK(0);
	}
	if (sup_wait(s, 30000) < 0 || sup_status(s)->kind != SUP_EXITED) {
		sup_free(s);
		cg_destroy(cg);
		CHECK(0);
	}
	/* the task ran in its cgroup, its CPU time is the cgroup's, its leftovers were killed */
	read_file(sup_task_dir(s), "stdout", out, sizeof(out));
	cg_nprocs(cg, &procs);
	fprintf(stderr, "cgroup task: cpu_ns=%llu procs left=%llu\n",
		(unsigned long long)sup_status(s)->cpu_ns, (unsigned long long)procs);
	{
		int ok = strstr(out, name) != NULL && procs == 0 &&
			 sup_status(s)->cpu_ns > 10000000ULL;

		sup_free(s);
		CHECK_EQ(cg_destroy(cg), 0);
		CHECK(ok);
	}
}

static void test_oom(void)
{
	const char *argv[] = {"awk", "BEGIN { s = \"xxxxxxxx\"; while (1) s = s s }", NULL};
	struct cg_limits lim = {.memory_bytes = 32ULL << 20};
	struct cg_host host;
	struct cg *cg = NULL;
	struct sup *s = NULL;
	char name[64];
	int kind = -1;
	uint64_t ooms = 0;

	REQUIRE_ROOT();
	CHECK_EQ(host_or_skip(&host), 0);
	snprintf(name, sizeof(name), "aicn-test-oom-%d", (int)getpid());
	CHECK_EQ(cg_create(&host, NULL, name, 1, &cg), 0);
	if (cg_set_limits(cg, &lim) == 0 && start("oom", argv, 20000, 0, cg, &s) == 0 &&
	    sup_wait(s, 30000) == 0) {
		kind = sup_status(s)->kind;
		ooms = sup_status(s)->oom_kills;
	}
	sup_free(s);
	cg_destroy(cg);
	fprintf(stderr, "oom: kind=%s oom_kills=%llu\n", sup_kind_name(kind),
		(unsigned long long)ooms);
	CHECK_EQ(kind, SUP_OOM);
	CHECK(ooms >= 1);
}

/* The parent cap: limits land in the files, and tasks under it never get more CPU together. */
static void test_cap(void)
{
	const char *argv[] = {"sh", "-c", "while :; do :; done & while :; do :; done & wait", NULL};
	struct cg_host host;
	struct cg *cap = NULL, *again = NULL, *task = NULL;
	struct sup *s = NULL;
	char name[64], path[600], buf[64];
	uint64_t cpu = 0, wall_ns = 0;
	int kind = -1;

	REQUIRE_ROOT();
	CHECK_EQ(host_or_skip(&host), 0);
	snprintf(name, sizeof(name), "aicn-test-cap-%d", (int)getpid());
	CHECK_EQ(sup_cap_create(&host, name, 500, 64ULL << 20, &cap), 0);
	if (cap->v1_path[CG_V1_CPU]) {
		snprintf(path, sizeof(path), "%s", cap->v1_path[CG_V1_CPU]);
		CHECK(read_file(path, "cpu.cfs_quota_us", buf, sizeof(buf)) > 0);
		CHECK_EQ(strtoll(buf, NULL, 10), 50000);
		CHECK(read_file(cap->v1_path[CG_V1_MEMORY], "memory.limit_in_bytes", buf,
				sizeof(buf)) > 0);
		CHECK_EQ(strtoll(buf, NULL, 10), 64LL << 20);
	} else {
		CHECK(read_file(cap->v2_path, "cpu.max", buf, sizeof(buf)) > 0);
		CHECK_STREQ(buf, "50000 100000\n");
		CHECK(read_file(cap->v2_path, "memory.max", buf, sizeof(buf)) > 0);
		CHECK_EQ(strtoll(buf, NULL, 10), 64LL << 20);
	}
	/* opening it again (agent restart) works and re-applies the limits */
	CHECK_EQ(sup_cap_create(&host, name, 500, 64ULL << 20, &again), 0);
	cg_free(again);
	if (cg_create(&host, name, "t1", 1, &task) == 0 &&
	    start("captask", argv, 1000, 200, task, &s) == 0 && sup_wait(s, 30000) == 0) {
		kind = sup_status(s)->kind;
		cpu = sup_status(s)->cpu_ns;
		wall_ns = sup_status(s)->finished_boottime_ns - sup_status(s)->started_boottime_ns;
	}
	sup_free(s);
	cg_destroy(task);
	CHECK_EQ(cg_destroy(cap), 0);
	fprintf(stderr, "cap 0.5 core: two spinners used %llu ms CPU in %llu ms\n",
		(unsigned long long)cpu / 1000000, (unsigned long long)wall_ns / 1000000);
	CHECK_EQ(kind, SUP_TIMEOUT);
	CHECK(cpu > 100000000ULL);
	CHECK(cpu <= wall_ns / 2 + wall_ns / 10 + 20000000ULL);
}

/* What an agent finds at start: every task directory with a state file, sorted. */
static void test_list_tasks(void)
{
	char **names = NULL;
	size_t n = 0;
	int exit3 = 0, survive = 0, nobin = 0;

	CHECK_EQ(sup_list_tasks(base, &names, &n), 0);
	for (size_t i = 0; i < n; i++) {
		exit3 += strcmp(names[i], "exit3") == 0;
		survive += strcmp(names[i], "survive") == 0;
		nobin += strcmp(names[i], "nobin") == 0; /* supervisor never ran: no state */
		if (i && strcmp(names[i - 1], names[i]) >= 0)
			exit3 = -100;
	}
	sup_names_free(names, n);
	CHECK_EQ(exit3, 1);
	CHECK_EQ(survive, 1);
	CHECK_EQ(nobin, 0);
	CHECK(n >= 8);
	CHECK_EQ(sup_list_tasks("/nonexistent/aicn", &names, &n), -ENOENT);
}

static void test_default_binary(void)
{
	char b[512];

	CHECK_EQ(sup_default_binary(b, sizeof(b)), 0);
	CHECK(strstr(b, "/aicn-supervise"));
	CHECK_EQ(sup_default_binary(b, 8), -ENAMETOOLONG);
}

int main(void)
{
	static const struct test_case cases[] = {
		TEST(test_exit_code),
		TEST(test_signal),
		TEST(test_killed_from_outside),
		TEST(test_cancel),
		TEST(test_timeout),
		TEST(test_exec_failure),
		TEST(test_bad_spec),
		TEST(test_survives_agent_kill),
		TEST(test_finished_while_agent_down),
		TEST(test_supervisor_killed_is_lost),
		TEST(test_cgroup_task),
		TEST(test_oom),
		TEST(test_cap),
		TEST(test_list_tasks),
		TEST(test_default_binary),
		{NULL, NULL},
	};
	const char *b = getenv("AICN_BIN");
	char cmd[600];
	int r;

	snprintf(bin, sizeof(bin), "%s/aicn-supervise", b ? b : "build/bin");
	if (access(bin, X_OK) < 0) {
		printf("FAIL: %s not built\n", bin);
		return 1;
	}
	if (!mkdtemp(base))
		return 1;
	r = harness_run(cases);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", base);
	if (system(cmd) != 0)
		return 1;
	return r;
}
