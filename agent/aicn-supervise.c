/* aicn-supervise.c -- per-task supervisor (like conmon): runs one task in its cgroup, records how it ended. */
#include "supervisor.h"

#include <aicn/compiler.h>
#include <aicn/fileio.h>
#include <aicn/log.h>
#include <aicn/sandbox.h>
#include <aicn/version.h>

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <linux/sched.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>

struct task_spec {
	char *task_id;
	char **argv;
	char **env;
	char *cwd;
	uint64_t timeout_ms;
	uint64_t grace_ms;
	struct cg *cg;
	bool sandboxed; /* "sandbox" given: run argv inside the image's rootfs */
	char *rootfs;
	char *work_dir;
	char *user;
	uint64_t millicores, memory_bytes, pids, output_bytes;
};

enum stop_reason {
	STOP_NONE,
	STOP_CANCEL,
	STOP_TIMEOUT,
};

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: aicn-supervise [--status-fd FD] TASK_DIR\n"
		"       aicn-supervise --version | --help\n"
		"\n"
		"Supervise one aicn task, the way conmon supervises a container. aicn-agent starts\n"
		"it (forked twice, in a session of its own) for every task; it is not meant to be\n"
		"run by hand.\n"
		"\n"
		"It reads TASK_DIR/" SUP_SPEC_FILE " (JSON: task_id, argv, env, cwd, timeout_ms,\n"
		"grace_ms and the task's cgroup paths), starts the task in that cgroup with stdout\n"
		"and stderr in TASK_DIR/stdout and TASK_DIR/stderr, and writes TASK_DIR/" SUP_STATE_FILE
		"\n"
		"atomically: once when the task runs (pids and start times, so a restarted agent can\n"
		"re-adopt it) and once when it ended (exited, signaled, canceled, timeout, oom or\n"
		"failed, with exit code or signal, timestamps and the cgroup's CPU time). When the\n"
		"task's main process ends, whatever it left in its cgroup is killed. The supervisor\n"
		"never removes the cgroup: the agent reads the meter first.\n"
		"\n"
		"Signals: SIGTERM or SIGINT cancels the task: SIGTERM to its process group, SIGKILL\n"
		"to its whole cgroup after grace_ms.  The supervisor does not die with the agent.\n"
		"\n"
		"Options:\n"
		"  --status-fd FD  write \"ok\" (or \"error REASON\") and close FD once the task was\n"
		"                  exec'd (or failed to) and the state file is on disk\n"
		"  -V, --version   print the version and exit\n"
		"  -h, --help      show this help\n"
		"\n"
		"Its own messages go to TASK_DIR/" SUP_LOG_FILE
		". Exit status: 0 when the task's end\n"
		"was recorded, 1 when the spec was unusable or the state could not be written.\n");
}

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void report(int *fd, const char *what)
{
	if (*fd < 0)
		return;
	if (write(*fd, what, strlen(what)) < 0)
		log_warn("status pipe: %m");
	close(*fd);
	*fd = -1;
}

static void free_strv(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

static void spec_free(struct task_spec *s)
{
	free(s->task_id);
	free_strv(s->argv);
	free_strv(s->env);
	free(s->cwd);
	cg_free(s->cg);
	free(s->rootfs);
	free(s->work_dir);
	free(s->user);
}

static int get_strv(const cJSON *arr, bool need_eq, size_t min, char ***ret)
{
	size_t n = 0, i = 0;
	const cJSON *it;
	char **v;

	if (!cJSON_IsArray(arr))
		return -EINVAL;
	cJSON_ArrayForEach (it, arr) {
		if (!cJSON_IsString(it) || strlen(it->valuestring) > SUP_ARG_LEN_MAX ||
		    (need_eq && !strchr(it->valuestring, '=')))
			return -EINVAL;
		n++;
	}
	if (n < min || n > SUP_ARGS_MAX)
		return -EINVAL;
	v = calloc(n + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	cJSON_ArrayForEach (it, arr) {
		v[i] = strdup(it->valuestring);
		if (!v[i++]) {
			free_strv(v);
			return -ENOMEM;
		}
	}
	*ret = v;
	return 0;
}

static int get_num(const cJSON *root, const char *name, double max, uint64_t *ret)
{
	const cJSON *n = cJSON_GetObjectItemCaseSensitive(root, name);

	if (!n) {
		*ret = 0;
		return 0;
	}
	if (!cJSON_IsNumber(n) || n->valuedouble < 0 || n->valuedouble > max ||
	    n->valuedouble != (double)(uint64_t)n->valuedouble)
		return -EINVAL;
	*ret = (uint64_t)n->valuedouble;
	return 0;
}

static int get_ms(const cJSON *root, const char *name, uint64_t *ret)
{
	return get_num(root, name, 4e10, ret);
}

static int get_path(const cJSON *o, const char *name, bool required, char **ret)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, name);

	if (!it)
		return required ? -EINVAL : 0;
	if (!cJSON_IsString(it) || !it->valuestring[0] || strlen(it->valuestring) > PATH_MAX)
		return -EINVAL;
	*ret = strdup(it->valuestring);
	return *ret ? 0 : -ENOMEM;
}

static int get_sandbox(const cJSON *o, struct task_spec *s)
{
	int r;

	if (!cJSON_IsObject(o))
		return -EINVAL;
	s->sandboxed = true;
	r = get_path(o, "rootfs", true, &s->rootfs);
	if (r == 0)
		r = get_path(o, "work_dir", true, &s->work_dir);
	if (r == 0)
		r = get_path(o, "user", false, &s->user);
	if (r == 0 && (s->rootfs[0] != '/' || s->work_dir[0] != '/'))
		r = -EINVAL;
	if (r == 0)
		r = get_num(o, "millicores", 65536000, &s->millicores);
	if (r == 0)
		r = get_num(o, "memory_bytes", 9e15, &s->memory_bytes);
	if (r == 0)
		r = get_num(o, "pids", 4194304, &s->pids);
	if (r == 0)
		r = get_num(o, "output_bytes", 9e15, &s->output_bytes);
	return r;
}

static int get_cgroup(const cJSON *j, struct cg **ret)
{
	const cJSON *v2 = cJSON_GetObjectItemCaseSensitive(j, "v2");
	const cJSON *v1 = cJSON_GetObjectItemCaseSensitive(j, "v1"), *it;
	struct cg *cg;
	int c = 0, r;

	if (!cJSON_IsString(v2) || v2->valuestring[0] != '/' || !cJSON_IsArray(v1) ||
	    cJSON_GetArraySize(v1) != CG_V1_N)
		return -EINVAL;
	cg = calloc(1, sizeof(*cg));
	if (!cg)
		return -ENOMEM;
	cg->v2_path = strdup(v2->valuestring);
	r = cg->v2_path ? 0 : -ENOMEM;
	cJSON_ArrayForEach (it, v1) {
		if (r < 0)
			break;
		if (cJSON_IsString(it) && it->valuestring[0] == '/') {
			cg->v1_path[c] = strdup(it->valuestring);
			if (!cg->v1_path[c])
				r = -ENOMEM;
		} else if (!cJSON_IsNull(it)) {
			r = -EINVAL;
		}
		c++;
	}
	if (r == 0)
		r = cg_id_of_path(cg->v2_path, &cg->id);
	if (r < 0) {
		cg_free(cg);
		return r;
	}
	*ret = cg;
	return 0;
}

static int spec_read(int dirfd, struct task_spec *s, const char **why)
{
	_cleanup_free_ char *buf = NULL;
	_cleanup_close_ int fd = -1;
	const cJSON *it;
	cJSON *root;
	size_t len = 0;
	int r = -EINVAL;

	*why = "cannot read " SUP_SPEC_FILE;
	fd = openat(dirfd, SUP_SPEC_FILE, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	r = read_fd_all(fd, SUP_SPEC_MAX, &buf, &len);
	if (r == -EFBIG)
		*why = SUP_SPEC_FILE " too big";
	if (r < 0)
		return r;
	r = -EINVAL;
	root = cJSON_ParseWithLength(buf, len);
	*why = SUP_SPEC_FILE " is not valid JSON";
	if (!root)
		return -EINVAL;
	it = cJSON_GetObjectItemCaseSensitive(root, "version");
	*why = SUP_SPEC_FILE ": unsupported version";
	if (!cJSON_IsNumber(it) || it->valuedouble != 1)
		goto out;
	it = cJSON_GetObjectItemCaseSensitive(root, "task_id");
	*why = SUP_SPEC_FILE ": bad task_id";
	if (!cJSON_IsString(it) || !it->valuestring[0] ||
	    strlen(it->valuestring) > SUP_TASK_ID_MAX || !(s->task_id = strdup(it->valuestring)))
		goto out;
	*why = SUP_SPEC_FILE ": bad argv";
	r = get_strv(cJSON_GetObjectItemCaseSensitive(root, "argv"), false, 1, &s->argv);
	if (r < 0)
		goto out;
	*why = SUP_SPEC_FILE ": bad env";
	r = get_strv(cJSON_GetObjectItemCaseSensitive(root, "env"), true, 0, &s->env);
	if (r < 0)
		goto out;
	r = -EINVAL;
	it = cJSON_GetObjectItemCaseSensitive(root, "cwd");
	*why = SUP_SPEC_FILE ": bad cwd";
	if (it && (!cJSON_IsString(it) || it->valuestring[0] != '/' ||
		   !(s->cwd = strdup(it->valuestring))))
		goto out;
	*why = SUP_SPEC_FILE ": bad timeout_ms or grace_ms";
	if (get_ms(root, "timeout_ms", &s->timeout_ms) < 0 ||
	    get_ms(root, "grace_ms", &s->grace_ms) < 0)
		goto out;
	if (!s->grace_ms)
		s->grace_ms = SUP_DEFAULT_GRACE_MS;
	it = cJSON_GetObjectItemCaseSensitive(root, "cgroup");
	*why = SUP_SPEC_FILE ": bad or missing cgroup";
	if (it) {
		r = get_cgroup(it, &s->cg);
		if (r < 0)
			goto out;
	}
	it = cJSON_GetObjectItemCaseSensitive(root, "sandbox");
	*why = SUP_SPEC_FILE ": bad sandbox";
	if (it) {
		r = get_sandbox(it, s);
		if (r < 0)
			goto out;
	}
	r = 0;
out:
	cJSON_Delete(root);
	return r;
}

/*
 * In the forked child: never returns; failures go to the parent through errpipe.
 * born_in_v2: the child was born in the task's v2 cgroup (CLONE_INTO_CGROUP) and only
 * joins the v1 ones, through `tasks` (cg_join_v1_self: no RCU grace period per
 * hierarchy, as a pid written to cgroup.procs by cg_attach costs).
 */
static _noreturn_ void run_task(const struct task_spec *s, int dirfd, const char *task_dir,
				int errpipe, bool born_in_v2)
{
	sigset_t all;
	int fd, e;
	const char *stage;

	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	signal(SIGPIPE, SIG_DFL);
	stage = "setsid";
	if (setsid() < 0)
		goto fail;
	stage = "joining the task cgroup";
	if (s->cg) {
		e = born_in_v2 ? cg_join_v1_self(s->cg) : cg_attach(s->cg, getpid());
		if (e < 0) {
			errno = -e;
			goto fail;
		}
	}
	stage = "opening stdout/stderr";
	fd = openat(dirfd, "stdout", O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW, 0600);
	if (fd < 0 || dup2(fd, 1) < 0)
		goto fail;
	close(fd);
	fd = openat(dirfd, "stderr", O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW, 0600);
	if (fd < 0 || dup2(fd, 2) < 0)
		goto fail;
	close(fd);
	stage = "changing directory";
	if (chdir(s->cwd ? s->cwd : task_dir) < 0)
		goto fail;
	close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
	stage = "exec";
	if (!s->argv || !s->argv[0])
		_exit(127);
	execvpe(s->argv[0], s->argv, s->env);
fail:
	e = errno;
	{
		char msg[SUP_ERROR_MAX];
		int n = strcmp(stage, "exec") == 0
				? snprintf(msg, sizeof(msg), "exec %s: %s", s->argv[0], strerror(e))
				: snprintf(msg, sizeof(msg), "%s: %s", stage, strerror(e));

		if (n > 0 && write(errpipe, msg, (size_t)MIN(n, (int)sizeof(msg) - 1)) < 0)
			_exit(126);
	}
	_exit(127);
}

static struct sbx_task *volatile sandboxed_task;
static volatile sig_atomic_t cancel_requested;

static void on_cancel_signal(int sig)
{
	(void)sig;
	cancel_requested = 1;
	if (sandboxed_task)
		sbx_task_cancel(sandboxed_task);
}

static enum sup_kind kind_of_end(const struct sbx_result *res, struct sup_status *st)
{
	switch (res->end) {
	case SBX_END_EXITED:
		st->exit_code = res->exit_code;
		return SUP_EXITED;
	case SBX_END_SIGNALED:
		st->signal = res->signal;
		return SUP_SIGNALED;
	case SBX_END_OOM:
		st->signal = res->signal ? res->signal : SIGKILL;
		return SUP_OOM;
	case SBX_END_TIMEOUT:
		st->signal = SIGKILL;
		return SUP_TIMEOUT;
	case SBX_END_CANCELED:
		st->signal = SIGKILL;
		return SUP_CANCELED;
	case SBX_END_OUTPUT_LIMIT:
		st->signal = SIGKILL;
		snprintf(st->error, sizeof(st->error), "output limit reached: the task was killed");
		return SUP_SIGNALED;
	case SBX_END_SETUP_FAILED:
	default:
		snprintf(st->error, sizeof(st->error), "%.*s", (int)sizeof(st->error) - 1,
			 res->setup_error[0] ? res->setup_error : "the sandbox could not start");
		return SUP_FAILED;
	}
}

/*
 * The task in the sandbox: born in the task cgroup (CLONE_INTO_CGROUP), so the
 * meter counts it from its first instruction.  SIGTERM/SIGINT cancel it (the
 * whole cgroup is killed); the wall-time limit is the sandbox's.
 */
static int run_sandboxed(const struct task_spec *s, int dirfd, struct sup_status *st,
			 int *status_fd)
{
	struct sigaction sa = {.sa_handler = on_cancel_signal};
	_cleanup_close_ int out_fd = -1, err_fd = -1;
	struct sbx_result res = {0};
	struct sbx_err err = {{0}};
	struct sbx_task *task = NULL;
	struct cg_host host;
	int r;

	sigset_t mask;

	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	/* the agent blocks these in its loop thread, and a blocked mask survives fork and exec */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_UNBLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	out_fd = openat(dirfd, "stdout", O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
			0600);
	err_fd = openat(dirfd, "stderr", O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
			0600);
	r = cg_host_detect(&host);
	st->started_realtime_ns = clock_ns(CLOCK_REALTIME);
	st->started_boottime_ns = clock_ns(CLOCK_BOOTTIME);
	if (out_fd < 0 || err_fd < 0 || r < 0) {
		snprintf(st->error, sizeof(st->error),
			 "cannot open the task's output files or "
			 "find the cgroup layout");
	} else {
		struct sbx_config cfg = {
			.rootfs = s->rootfs,
			.argv = s->argv,
			.envp = s->env,
			.cwd = s->cwd,
			.user = s->user,
			.work_dir = s->work_dir,
			.net_loopback = 1,
			.stdin_fd = -1,
			.stdout_fd = out_fd,
			.stderr_fd = err_fd,
			.limits = {.cores = (double)s->millicores / 1000.0,
				   .memory_bytes = s->memory_bytes,
				   .pids = s->pids,
				   .timeout_ms = s->timeout_ms,
				   .output_bytes = s->output_bytes},
			.host = &host,
			.cg = s->cg,
		};

		r = sbx_task_start(&cfg, &task, &err);
		if (r < 0)
			snprintf(st->error, sizeof(st->error), "%.*s", (int)sizeof(st->error) - 1,
				 err.msg[0] ? err.msg : strerror(-r));
	}
	if (!task) {
		st->kind = SUP_FAILED;
		st->finished_realtime_ns = clock_ns(CLOCK_REALTIME);
		st->finished_boottime_ns = clock_ns(CLOCK_BOOTTIME);
		log_err("task %s did not start: %s", st->task_id, st->error);
		r = sup_state_write(dirfd, st);
		report(status_fd, r < 0 ? "error cannot write the state file\n" : "ok\n");
		return r < 0 ? 1 : 0;
	}
	st->kind = SUP_RUNNING;
	st->pid = sbx_task_pid(task);
	sup_proc_start_time(st->pid, &st->pid_start);
	r = sup_state_write(dirfd, st);
	if (r < 0) {
		log_errno(LOG_LVL_ERR, r, "writing the state file");
		sbx_task_cancel(task);
		sbx_task_wait(task, &res);
		sbx_task_free(task);
		report(status_fd, "error cannot write the state file\n");
		return 1;
	}
	sandboxed_task = task;
	if (cancel_requested)
		sbx_task_cancel(task);
	report(status_fd, "ok\n");
	log_info("task %s runs in the sandbox as pid %d", st->task_id, (int)st->pid);
	r = sbx_task_wait(task, &res);
	sandboxed_task = NULL;
	if (r < 0) {
		res.end = SBX_END_SETUP_FAILED;
		snprintf(res.setup_error, sizeof(res.setup_error), "waiting for the task: %s",
			 strerror(-r));
	}
	st->finished_realtime_ns = clock_ns(CLOCK_REALTIME);
	st->finished_boottime_ns = clock_ns(CLOCK_BOOTTIME);
	st->kind = kind_of_end(&res, st);
	if (st->kind == SUP_FAILED && res.wall_ns)
		st->kind = SUP_SIGNALED; /* it ran: an error while waiting is not "never started" */
	st->cpu_ns = res.cpu_ns;
	st->oom_kills = res.oom_kills;
	sbx_task_free(task);
	r = sup_state_write(dirfd, st);
	if (r < 0)
		log_errno(LOG_LVL_ERR, r, "writing the final state");
	else
		log_info("task %s ended: %s (exit %d, signal %d)", st->task_id,
			 sup_kind_name(st->kind), st->exit_code, st->signal);
	return r < 0 ? 1 : 0;
}

static int arm(int tfd, uint64_t ms)
{
	struct itimerspec it = {
		.it_value = {.tv_sec = (time_t)(ms / 1000),
			     .tv_nsec = (long)(ms % 1000) * 1000000L},
	};

	if (!ms)
		it.it_value.tv_nsec = 1;
	return timerfd_settime(tfd, 0, &it, NULL) < 0 ? -errno : 0;
}

/*
 * fork(), but with a task cgroup the child is born in its v2 cgroup (clone3
 * CLONE_INTO_CGROUP), so it joins only the v1 ones itself.  Kernels without
 * CLONE_INTO_CGROUP get a plain fork and cg_attach.
 */
static pid_t fork_task(const struct task_spec *s, bool *ret_born_in_v2)
{
	struct clone_args ca = {.exit_signal = SIGCHLD};
	_cleanup_close_ int cgfd = -1;
	long pid;

	*ret_born_in_v2 = false;
	if (s->cg && s->cg->v2_path)
		cgfd = open(s->cg->v2_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cgfd >= 0) {
		ca.flags = CLONE_INTO_CGROUP;
		ca.cgroup = (uint64_t)cgfd;
		pid = syscall(SYS_clone3, &ca, sizeof(ca));
		if (pid >= 0) {
			*ret_born_in_v2 = true; /* for the child (0) and the parent alike */
			return (pid_t)pid;
		}
		if (errno != ENOSYS && errno != E2BIG && errno != EINVAL)
			return -1;
	}
	return fork();
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"status-fd", required_argument, NULL, 's'},
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{},
	};
	struct task_spec spec = {0};
	struct sup_status st = {0};
	_cleanup_close_ int dirfd = -1, sfd = -1, tfd = -1;
	enum stop_reason stop = STOP_NONE;
	bool killing = false, born_in_v2 = false;
	int status_fd = -1, c, r, errp[2], wstatus = 0;
	const char *task_dir, *why = "";
	char errbuf[SUP_ERROR_MAX] = "";
	struct rusage ru = {0};
	sigset_t mask;
	ssize_t n;
	pid_t pid;

	while ((c = getopt_long(argc, argv, "hV", opts, NULL)) != -1) {
		switch (c) {
		case 'V':
			printf("aicn-supervise %s\n", AICN_VERSION);
			return 0;
		case 's': {
			char *end;
			long v = strtol(optarg, &end, 10);

			if (*end || v < 0 || v > INT_MAX || fcntl((int)v, F_GETFD) < 0) {
				fprintf(stderr, "aicn-supervise: --status-fd: not an open fd\n");
				return 1;
			}
			status_fd = (int)v;
			fcntl(status_fd, F_SETFD, FD_CLOEXEC);
			break;
		}
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 1;
		}
	}
	if (optind + 1 != argc) {
		usage(stderr);
		return 1;
	}
	task_dir = argv[optind];
	log_setup("aicn-supervise");
	dirfd = open(task_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0) {
		log_errno(LOG_LVL_ERR, -errno, "task directory %s", task_dir);
		report(&status_fd, "error cannot open the task directory\n");
		return 1;
	}
	{
		int lfd = openat(dirfd, SUP_LOG_FILE, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
				 0600);

		if (lfd >= 0) {
			dup2(lfd, STDERR_FILENO);
			close(lfd);
		}
	}
	r = spec_read(dirfd, &spec, &why);
	if (r < 0) {
		char msg[SUP_ERROR_MAX];

		log_errno(LOG_LVL_ERR, r, "%s", why);
		snprintf(msg, sizeof(msg), "error %s\n", why);
		report(&status_fd, msg);
		spec_free(&spec);
		return 1;
	}
	snprintf(st.task_id, sizeof(st.task_id), "%s", spec.task_id);
	st.supervisor_pid = getpid();
	r = sup_proc_start_time(st.supervisor_pid, &st.supervisor_start);
	if (r < 0)
		log_errno(LOG_LVL_WARN, r, "own start time");

	if (spec.sandboxed) {
		r = run_sandboxed(&spec, dirfd, &st, &status_fd);
		spec_free(&spec);
		return r;
	}

	/* orphans of the task come to us, not to init, so nothing escapes unreaped */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		log_errno(LOG_LVL_WARN, -errno, "PR_SET_CHILD_SUBREAPER");
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGQUIT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (sfd < 0 || tfd < 0 || pipe2(errp, O_CLOEXEC) < 0) {
		log_errno(LOG_LVL_ERR, -errno, "signalfd/timerfd/pipe");
		report(&status_fd, "error no signalfd, timerfd or pipe\n");
		spec_free(&spec);
		return 1;
	}

	st.started_realtime_ns = clock_ns(CLOCK_REALTIME);
	st.started_boottime_ns = clock_ns(CLOCK_BOOTTIME);
	pid = fork_task(&spec, &born_in_v2);
	if (pid == 0) {
		close(errp[0]);
		run_task(&spec, dirfd, task_dir, errp[1], born_in_v2);
	}
	close(errp[1]);
	if (pid < 0) {
		snprintf(errbuf, sizeof(errbuf), "fork: %s", strerror(errno));
	} else {
		n = read(errp[0], errbuf, sizeof(errbuf) - 1);
		errbuf[n > 0 ? n : 0] = '\0';
	}
	close(errp[0]);
	if (errbuf[0]) {
		/* never ran: record why and stop */
		if (pid > 0)
			waitpid(pid, NULL, 0);
		st.kind = SUP_FAILED;
		snprintf(st.error, sizeof(st.error), "%s", errbuf);
		st.finished_realtime_ns = clock_ns(CLOCK_REALTIME);
		st.finished_boottime_ns = clock_ns(CLOCK_BOOTTIME);
		log_err("task %s did not start: %s", st.task_id, errbuf);
		r = sup_state_write(dirfd, &st);
		report(&status_fd, r < 0 ? "error cannot write the state file\n" : "ok\n");
		spec_free(&spec);
		return r < 0 ? 1 : 0;
	}
	st.kind = SUP_RUNNING;
	st.pid = pid;
	sup_proc_start_time(pid, &st.pid_start);
	r = sup_state_write(dirfd, &st);
	if (r < 0) {
		/* a task nobody could re-adopt must not run */
		log_errno(LOG_LVL_ERR, r, "writing the state file");
		kill(-pid, SIGKILL);
		if (spec.cg)
			cg_kill(spec.cg);
		waitpid(pid, NULL, 0);
		report(&status_fd, "error cannot write the state file\n");
		spec_free(&spec);
		return 1;
	}
	report(&status_fd, "ok\n");
	log_info("task %s runs as pid %d", st.task_id, (int)pid);
	if (spec.timeout_ms)
		arm(tfd, spec.timeout_ms);

	for (;;) {
		struct pollfd p[2] = {{.fd = sfd, .events = POLLIN}, {.fd = tfd, .events = POLLIN}};
		struct signalfd_siginfo si;
		siginfo_t wi;
		bool main_done = false;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_errno(LOG_LVL_ERR, -errno, "poll");
			break;
		}
		if (p[1].revents & POLLIN) {
			uint64_t ticks;

			if (read(tfd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
				log_errno(LOG_LVL_WARN, -errno, "timerfd");
			if (stop == STOP_NONE) {
				stop = STOP_TIMEOUT;
				log_info("task %s: wall-time limit reached", st.task_id);
				kill(-pid, SIGTERM);
				arm(tfd, spec.grace_ms);
			} else if (!killing) {
				killing = true;
				kill(-pid, SIGKILL);
				if (spec.cg)
					cg_kill(spec.cg);
			}
		}
		while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
			if ((si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) &&
			    stop == STOP_NONE) {
				stop = STOP_CANCEL;
				log_info("task %s: canceled", st.task_id);
				kill(-pid, SIGTERM);
				arm(tfd, spec.grace_ms);
			}
		}
		/* reap orphans; peek at the main process without reaping it (its pid keeps the pgid) */
		for (;;) {
			memset(&wi, 0, sizeof(wi));
			if (waitid(P_ALL, 0, &wi, WEXITED | WNOHANG | WNOWAIT) < 0 ||
			    wi.si_pid == 0)
				break;
			if (wi.si_pid == pid) {
				main_done = true;
				break;
			}
			waitpid(wi.si_pid, NULL, 0);
		}
		if (!main_done)
			continue;
		/* the task's main process ended: nothing of it may stay behind */
		kill(-pid, SIGKILL);
		if (spec.cg) {
			r = cg_kill(spec.cg);
			if (r < 0)
				log_errno(LOG_LVL_WARN, r,
					  "killing what the task left in its cgroup");
		}
		while (wait4(pid, &wstatus, 0, &ru) < 0 && errno == EINTR)
			;
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		break;
	}

	st.finished_realtime_ns = clock_ns(CLOCK_REALTIME);
	st.finished_boottime_ns = clock_ns(CLOCK_BOOTTIME);
	if (WIFEXITED(wstatus)) {
		st.exit_code = WEXITSTATUS(wstatus);
		st.kind = SUP_EXITED;
	} else if (WIFSIGNALED(wstatus)) {
		st.signal = WTERMSIG(wstatus);
		st.kind = SUP_SIGNALED;
	}
	if (spec.cg) {
		if (cg_cpu_usage_ns(spec.cg, &st.cpu_ns) < 0)
			st.cpu_ns = 0;
		if (cg_oom_kills(spec.cg, &st.oom_kills) < 0)
			st.oom_kills = 0;
	} else {
		st.cpu_ns =
			((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) *
				1000000000ULL +
			((uint64_t)ru.ru_utime.tv_usec + (uint64_t)ru.ru_stime.tv_usec) * 1000ULL;
	}
	if (stop == STOP_CANCEL)
		st.kind = SUP_CANCELED;
	else if (stop == STOP_TIMEOUT)
		st.kind = SUP_TIMEOUT;
	else if (st.kind == SUP_SIGNALED && st.signal == SIGKILL && st.oom_kills > 0)
		st.kind = SUP_OOM;
	r = sup_state_write(dirfd, &st);
	if (r < 0)
		log_errno(LOG_LVL_ERR, r, "writing the final state");
	else
		log_info("task %s ended: %s (exit %d, signal %d)", st.task_id,
			 sup_kind_name(st.kind), st.exit_code, st.signal);
	spec_free(&spec);
	return r < 0 ? 1 : 0;
}
