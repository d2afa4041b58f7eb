/* supervisor.c -- the agent's side of per-task supervisors: start (double fork), state file, re-adopt, cancel. */
#include "supervisor.h"

#include <aicn/compiler.h>

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#define SUP_START_TIMEOUT_MS 30000
#define SUP_MAX_TIMEOUT_MS (400ULL * 24 * 3600 * 1000)

struct sup {
	char *task_dir;
	int dirfd;
	int pidfd; /* -1 once the supervisor is gone */
	struct sup_status st;
};

static const char *const kind_names[SUP_KIND_N] = {
	[SUP_RUNNING] = "running",   [SUP_EXITED] = "exited",	[SUP_SIGNALED] = "signaled",
	[SUP_CANCELED] = "canceled", [SUP_TIMEOUT] = "timeout", [SUP_OOM] = "oom",
	[SUP_FAILED] = "failed",     [SUP_LOST] = "lost",
};

const char *sup_kind_name(enum sup_kind kind)
{
	return (unsigned)kind < SUP_KIND_N ? kind_names[kind] : "unknown";
}

int sup_kind_parse(const char *s, enum sup_kind *ret_kind)
{
	for (int k = 0; k < SUP_KIND_N; k++)
		if (strcmp(s, kind_names[k]) == 0) {
			*ret_kind = (enum sup_kind)k;
			return 0;
		}
	return -EINVAL;
}

int sup_default_binary(char *buf, size_t len)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash;

	if (n < 0)
		return -errno;
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (!slash)
		return -EINVAL;
	*slash = '\0';
	if ((size_t)snprintf(buf, len, "%s/%s", exe, SUP_BIN_NAME) >= len)
		return -ENAMETOOLONG;
	return 0;
}

int sup_proc_start_time(pid_t pid, uint64_t *ret_ticks)
{
	char path[64], buf[1024], *p, *end;
	_cleanup_close_ int fd = -1;
	ssize_t n;
	unsigned long long v;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	if (!p)
		return -EBADMSG;
	/* fields after "(comm)": state is field 3, starttime field 22 */
	p++;
	for (int field = 3; field < 22; field++) {
		p = strchr(p + 1, ' ');
		if (!p)
			return -EBADMSG;
	}
	errno = 0;
	v = strtoull(p + 1, &end, 10);
	if (errno || end == p + 1)
		return -EBADMSG;
	*ret_ticks = v;
	return 0;
}

/* ---- the state file ------------------------------------------------------ */

static void one_line(char *dst, size_t len, const char *src)
{
	size_t i;

	for (i = 0; src[i] && i + 1 < len; i++)
		dst[i] = ((unsigned char)src[i] < 0x20 || src[i] == 0x7f) ? ' ' : src[i];
	dst[i] = '\0';
}

int sup_state_write(int dirfd, const struct sup_status *st)
{
	static const char tmp[] = "." SUP_STATE_FILE ".tmp";
	char buf[SUP_STATE_MAX], err[SUP_ERROR_MAX];
	_cleanup_close_ int fd = -1;
	int n, r;

	one_line(err, sizeof(err), st->error);
	n = snprintf(buf, sizeof(buf),
		     "version=1\ntask_id=%s\nkind=%s\nsupervisor_pid=%d\nsupervisor_start=%llu\n"
		     "pid=%d\npid_start=%llu\nexit_code=%d\nsignal=%d\n"
		     "started_realtime_ns=%llu\nstarted_boottime_ns=%llu\n"
		     "finished_realtime_ns=%llu\nfinished_boottime_ns=%llu\n"
		     "cpu_ns=%llu\noom_kills=%llu\nerror=%s\n",
		     st->task_id, sup_kind_name(st->kind), (int)st->supervisor_pid,
		     (unsigned long long)st->supervisor_start, (int)st->pid,
		     (unsigned long long)st->pid_start, st->exit_code, st->signal,
		     (unsigned long long)st->started_realtime_ns,
		     (unsigned long long)st->started_boottime_ns,
		     (unsigned long long)st->finished_realtime_ns,
		     (unsigned long long)st->finished_boottime_ns, (unsigned long long)st->cpu_ns,
		     (unsigned long long)st->oom_kills, err);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return -ENOBUFS;
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	for (int off = 0; off < n;) {
		ssize_t w = write(fd, buf + off, (size_t)(n - off));

		if (w < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			unlinkat(dirfd, tmp, 0);
			return r;
		}
		off += (int)w;
	}
	if (fsync(fd) < 0 || renameat(dirfd, tmp, dirfd, SUP_STATE_FILE) < 0) {
		r = -errno;
		unlinkat(dirfd, tmp, 0);
		return r;
	}
	if (fsync(dirfd) < 0)
		return -errno;
	return 0;
}

static int parse_num(const char *v, uint64_t max, uint64_t *ret)
{
	char *end;
	unsigned long long x;

	if (*v < '0' || *v > '9')
		return -EBADMSG;
	errno = 0;
	x = strtoull(v, &end, 10);
	if (errno || *end || x > max)
		return -EBADMSG;
	*ret = x;
	return 0;
}

int sup_state_read(int dirfd, struct sup_status *ret_status)
{
	char buf[SUP_STATE_MAX + 1];
	_cleanup_close_ int fd = -1;
	size_t len = 0;

	fd = openat(dirfd, SUP_STATE_FILE, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	for (;;) {
		ssize_t n = read(fd, buf + len, sizeof(buf) - len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > SUP_STATE_MAX)
			return -EFBIG;
	}
	return sup_state_parse(buf, len, ret_status);
}

int sup_state_parse(const char *text, size_t len, struct sup_status *ret_status)
{
	char buf[SUP_STATE_MAX + 1];
	struct sup_status st = {0};
	bool have_kind = false, have_id = false, have_version = false;
	char *line, *save = NULL;

	if (len > SUP_STATE_MAX)
		return -EFBIG;
	memcpy(buf, text, len);
	buf[len] = '\0';
	if (memchr(buf, '\0', len))
		return -EBADMSG;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *eq = strchr(line, '=');
		const char *k, *v;
		uint64_t x = 0;
		int r = 0;

		if (!eq)
			return -EBADMSG;
		*eq = '\0';
		k = line;
		v = eq + 1;
		if (strcmp(k, "version") == 0) {
			r = parse_num(v, 1, &x);
			have_version = r == 0 && x == 1;
		} else if (strcmp(k, "task_id") == 0) {
			if (strlen(v) > SUP_TASK_ID_MAX)
				return -EBADMSG;
			strcpy(st.task_id, v);
			have_id = true;
		} else if (strcmp(k, "kind") == 0) {
			r = sup_kind_parse(v, &st.kind);
			have_kind = r == 0;
		} else if (strcmp(k, "supervisor_pid") == 0) {
			r = parse_num(v, INT_MAX, &x);
			st.supervisor_pid = (pid_t)x;
		} else if (strcmp(k, "supervisor_start") == 0) {
			r = parse_num(v, UINT64_MAX, &st.supervisor_start);
		} else if (strcmp(k, "pid") == 0) {
			r = parse_num(v, INT_MAX, &x);
			st.pid = (pid_t)x;
		} else if (strcmp(k, "pid_start") == 0) {
			r = parse_num(v, UINT64_MAX, &st.pid_start);
		} else if (strcmp(k, "exit_code") == 0) {
			r = parse_num(v, 255, &x);
			st.exit_code = (int)x;
		} else if (strcmp(k, "signal") == 0) {
			r = parse_num(v, 64, &x);
			st.signal = (int)x;
		} else if (strcmp(k, "started_realtime_ns") == 0) {
			r = parse_num(v, UINT64_MAX, &st.started_realtime_ns);
		} else if (strcmp(k, "started_boottime_ns") == 0) {
			r = parse_num(v, UINT64_MAX, &st.started_boottime_ns);
		} else if (strcmp(k, "finished_realtime_ns") == 0) {
			r = parse_num(v, UINT64_MAX, &st.finished_realtime_ns);
		} else if (strcmp(k, "finished_boottime_ns") == 0) {
			r = parse_num(v, UINT64_MAX, &st.finished_boottime_ns);
		} else if (strcmp(k, "cpu_ns") == 0) {
			r = parse_num(v, UINT64_MAX, &st.cpu_ns);
		} else if (strcmp(k, "oom_kills") == 0) {
			r = parse_num(v, UINT64_MAX, &st.oom_kills);
		} else if (strcmp(k, "error") == 0) {
			one_line(st.error, sizeof(st.error), v);
		} /* unknown keys: written by a newer supervisor, ignored */
		if (r < 0)
			return -EBADMSG;
	}
	if (!have_version || !have_id || !have_kind || st.kind == SUP_LOST)
		return -EBADMSG;
	*ret_status = st;
	return 0;
}

/* ---- the spec file --------------------------------------------------------- */

static bool valid_task_id(const char *id)
{
	size_t n = id ? strlen(id) : 0;

	return n && n <= SUP_TASK_ID_MAX && id[0] != '.' &&
	       strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

static int add_strings(cJSON *obj, const char *name, const char *const *list, bool need_one)
{
	cJSON *arr = cJSON_AddArrayToObject(obj, name);
	size_t n = 0;

	if (!arr)
		return -ENOMEM;
	for (; list && list[n]; n++) {
		if (n >= SUP_ARGS_MAX || strlen(list[n]) > SUP_ARG_LEN_MAX)
			return -E2BIG;
		if (!cJSON_AddItemToArray(arr, cJSON_CreateString(list[n])))
			return -ENOMEM;
	}
	return need_one && !n ? -EINVAL : 0;
}

static int write_spec(int dirfd, const struct sup_spec *spec)
{
	static const char tmp[] = "." SUP_SPEC_FILE ".tmp";
	cJSON *root = cJSON_CreateObject(), *cg;
	_cleanup_free_ char *text = NULL;
	_cleanup_close_ int fd = -1;
	size_t len;
	int r = -ENOMEM;

	if (!root)
		return -ENOMEM;
	if (!cJSON_AddNumberToObject(root, "version", 1) ||
	    !cJSON_AddStringToObject(root, "task_id", spec->task_id))
		goto out;
	r = add_strings(root, "argv", spec->argv, true);
	if (r == 0)
		r = add_strings(root, "env", spec->envp, false);
	if (r < 0)
		goto out;
	r = -ENOMEM;
	if (spec->cwd && !cJSON_AddStringToObject(root, "cwd", spec->cwd))
		goto out;
	if (!cJSON_AddNumberToObject(root, "timeout_ms", (double)spec->timeout_ms) ||
	    !cJSON_AddNumberToObject(root, "grace_ms", (double)spec->grace_ms))
		goto out;
	if (spec->cg) {
		cJSON *v1;

		cg = cJSON_AddObjectToObject(root, "cgroup");
		if (!cg || !cJSON_AddStringToObject(cg, "v2", spec->cg->v2_path))
			goto out;
		v1 = cJSON_AddArrayToObject(cg, "v1");
		if (!v1)
			goto out;
		for (int c = 0; c < CG_V1_N; c++) {
			const char *p = spec->cg->v1_path[c];

			if (!cJSON_AddItemToArray(v1,
						  p ? cJSON_CreateString(p) : cJSON_CreateNull()))
				goto out;
		}
	}
	if (spec->sandbox) {
		const struct sup_sandbox *sb = spec->sandbox;
		cJSON *o = cJSON_AddObjectToObject(root, "sandbox");

		if (!o || !sb->rootfs || !sb->work_dir) {
			r = o ? -EINVAL : -ENOMEM;
			goto out;
		}
		if (!cJSON_AddStringToObject(o, "rootfs", sb->rootfs) ||
		    !cJSON_AddStringToObject(o, "work_dir", sb->work_dir) ||
		    (sb->user && !cJSON_AddStringToObject(o, "user", sb->user)) ||
		    !cJSON_AddNumberToObject(o, "millicores", sb->millicores) ||
		    !cJSON_AddNumberToObject(o, "memory_bytes", (double)sb->memory_bytes) ||
		    !cJSON_AddNumberToObject(o, "pids", (double)sb->pids) ||
		    !cJSON_AddNumberToObject(o, "output_bytes", (double)sb->output_bytes))
			goto out;
	}
	text = cJSON_PrintUnformatted(root);
	if (!text)
		goto out;
	len = strlen(text);
	if (len > SUP_SPEC_MAX) {
		r = -E2BIG;
		goto out;
	}
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	if (write(fd, text, len) != (ssize_t)len || fsync(fd) < 0 ||
	    renameat(dirfd, tmp, dirfd, SUP_SPEC_FILE) < 0) {
		r = errno ? -errno : -EIO;
		unlinkat(dirfd, tmp, 0);
		goto out;
	}
	r = 0;
out:
	cJSON_Delete(root);
	return r;
}

/* ---- start, adopt, watch ---------------------------------------------------- */

struct sup *sup_free(struct sup *sup)
{
	if (!sup)
		return NULL;
	if (sup->pidfd >= 0)
		close(sup->pidfd);
	if (sup->dirfd >= 0)
		close(sup->dirfd);
	free(sup->task_dir);
	free(sup);
	return NULL;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(struct sup, sup_free)

int sup_fd(const struct sup *sup)
{
	return sup->pidfd;
}

const struct sup_status *sup_status(const struct sup *sup)
{
	return &sup->st;
}

const char *sup_task_dir(const struct sup *sup)
{
	return sup->task_dir;
}

/* Is the supervisor that wrote ST still alive?  Returns a pidfd (>= 0), -ESRCH if gone. */
static int open_supervisor(const struct sup_status *st)
{
	_cleanup_close_ int pidfd = -1;
	uint64_t start = 0;
	int r;

	if (st->supervisor_pid <= 0)
		return -ESRCH;
	pidfd = pidfd_open(st->supervisor_pid, 0);
	if (pidfd < 0)
		return errno == ESRCH ? -ESRCH : -errno;
	/* the pidfd pins this pid: if the start time matches now, it is our supervisor */
	r = sup_proc_start_time(st->supervisor_pid, &start);
	if (r == -ENOENT || (r == 0 && start != st->supervisor_start))
		return -ESRCH;
	if (r < 0)
		return r;
	return TAKE_FD(pidfd);
}

int sup_refresh(struct sup *sup)
{
	struct sup_status st = {0};
	int r;

	if (sup->st.kind != SUP_RUNNING)
		return 0; /* final states never change */
	if (sup->pidfd >= 0) {
		struct pollfd p = {.fd = sup->pidfd, .events = POLLIN};

		if (poll(&p, 1, 0) == 1) {
			close(sup->pidfd);
			sup->pidfd = -1;
		}
	}
	/* read after the liveness check: a supervisor writes its final state before it exits */
	r = sup_state_read(sup->dirfd, &st);
	if (r < 0)
		return r;
	sup->st = st;
	if (st.kind == SUP_RUNNING && sup->pidfd < 0) {
		sup->st.kind = SUP_LOST;
		snprintf(sup->st.error, sizeof(sup->st.error),
			 "supervisor %d ended without recording the task's end",
			 (int)st.supervisor_pid);
	}
	return 0;
}

int sup_adopt(const char *task_dir, struct sup **ret_sup)
{
	_cleanup_(sup_freep) struct sup *sup = NULL;
	int r;

	sup = calloc(1, sizeof(*sup));
	if (!sup)
		return -ENOMEM;
	sup->dirfd = -1;
	sup->pidfd = -1;
	sup->task_dir = strdup(task_dir);
	if (!sup->task_dir)
		return -ENOMEM;
	sup->dirfd = open(task_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sup->dirfd < 0)
		return -errno;
	r = sup_state_read(sup->dirfd, &sup->st);
	if (r < 0)
		return r;
	if (sup->st.kind == SUP_RUNNING) {
		r = open_supervisor(&sup->st);
		if (r < 0 && r != -ESRCH)
			return r;
		sup->pidfd = r >= 0 ? r : -1;
		r = sup_refresh(sup);
		if (r < 0)
			return r;
	}
	*ret_sup = TAKE_PTR(sup);
	return 0;
}

int sup_cancel(struct sup *sup)
{
	if (sup->st.kind != SUP_RUNNING)
		return -EALREADY;
	if (sup->pidfd < 0)
		return -ESRCH;
	if (pidfd_send_signal(sup->pidfd, SIGTERM, NULL, 0) < 0)
		return -errno;
	return 0;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int sup_wait(struct sup *sup, int timeout_ms)
{
	uint64_t deadline = now_ms() + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms);
	int r;

	for (;;) {
		struct pollfd p = {.fd = sup->pidfd, .events = POLLIN};
		int left = -1;

		r = sup_refresh(sup);
		if (r < 0)
			return r;
		if (sup->st.kind != SUP_RUNNING)
			return 0;
		if (timeout_ms >= 0) {
			uint64_t now = now_ms();

			if (now >= deadline)
				return -ETIMEDOUT;
			left = (int)(deadline - now);
		}
		if (poll(&p, 1, left) < 0 && errno != EINTR)
			return -errno;
	}
}

/* Read the supervisor's one-line report from the status pipe ("ok" or "error <why>"). */
static int read_report(int fd, char *buf, size_t len)
{
	uint64_t deadline = now_ms() + SUP_START_TIMEOUT_MS;
	size_t got = 0;

	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		uint64_t now = now_ms();
		ssize_t n;

		if (now >= deadline)
			return -ETIMEDOUT;
		if (poll(&p, 1, (int)(deadline - now)) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		n = read(fd, buf + got, len - 1 - got);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		if (n == 0 || got + (size_t)n >= len - 1) {
			got += (size_t)n;
			break;
		}
		got += (size_t)n;
	}
	buf[got] = '\0';
	return (int)got;
}

int sup_start(const char *supervisor_bin, const char *task_dir, const struct sup_spec *spec,
	      struct sup **ret_sup)
{
	_cleanup_close_ int dirfd = -1, devnull = -1, rd = -1, wr = -1;
	const char *argv[] = {SUP_BIN_NAME, "--status-fd", "3", task_dir, NULL};
	char report[512];
	pid_t child;
	int r, status;

	if (!valid_task_id(spec->task_id) || !spec->argv || !spec->argv[0] ||
	    spec->timeout_ms > SUP_MAX_TIMEOUT_MS || spec->grace_ms > SUP_MAX_TIMEOUT_MS)
		return -EINVAL;
	dirfd = open(task_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return -errno;
	r = write_spec(dirfd, spec);
	if (r < 0)
		return r;
	unlinkat(dirfd, SUP_STATE_FILE, 0);
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull < 0)
		return -errno;
	{
		int p[2];

		if (pipe2(p, O_CLOEXEC) < 0)
			return -errno;
		rd = p[0];
		wr = p[1];
	}

	/* Only async-signal-safe calls between fork and exec: the agent may have threads. */
	child = fork();
	if (child < 0)
		return -errno;
	if (child == 0) {
		if (setsid() < 0)
			_exit(120);
		child = fork();
		if (child != 0)
			_exit(child < 0 ? 121 : 0);
		/* the grandchild: no parent of ours waits for it; init (or a subreaper) adopts it */
		if (dup2(devnull, 0) < 0 || dup2(devnull, 1) < 0 || dup2(devnull, 2) < 0)
			_exit(122);
		if (wr == 3 ? fcntl(3, F_SETFD, 0) < 0 : dup3(wr, 3, 0) < 0)
			_exit(122);
		close_range(4, ~0U, 0); /* none of the agent's sockets, maps or rings */
		execv(supervisor_bin, (char *const *)argv);
		_exit(123);
	}
	close(TAKE_FD(wr));
	while (waitpid(child, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return -ECHILD;
	r = read_report(rd, report, sizeof(report));
	if (r < 0)
		return r;
	if (strncmp(report, "ok\n", 3) != 0)
		return strncmp(report, "error ", 6) == 0 ? -EPROTO : -EIO;
	return sup_adopt(task_dir, ret_sup);
}

int sup_cap_create(const struct cg_host *host, const char *name, uint32_t millicores,
		   uint64_t memory, struct cg **ret_cg)
{
	struct cg_limits lim = {
		.cpu_period_us = 100000,
		.cpu_quota_us = (uint64_t)millicores * 100, /* period * millicores / 1000 */
		.memory_bytes = memory,
	};
	struct cg *cg = NULL;
	int r;

	if (!millicores || !memory)
		return -EINVAL;
	r = cg_create(host, NULL, name, 1, &cg);
	if (r == -EEXIST)
		r = cg_open(host, NULL, name, 1, &cg);
	if (r < 0)
		return r;
	r = cg_set_limits(cg, &lim);
	if (r < 0) {
		cg_free(cg);
		return r;
	}
	*ret_cg = cg;
	return 0;
}

void sup_names_free(char **names, size_t n)
{
	for (size_t i = 0; names && i < n; i++)
		free(names[i]);
	free(names);
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int sup_list_tasks(const char *tasks_dir, char ***ret_names, size_t *ret_n)
{
	DIR *d = opendir(tasks_dir);
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, cap = 0;
	int r = 0;

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		struct stat st;
		char path[sizeof(de->d_name) + sizeof(SUP_STATE_FILE) + 2];

		if (!valid_task_id(de->d_name))
			continue;
		snprintf(path, sizeof(path), "%s/%s", de->d_name, SUP_STATE_FILE);
		if (fstatat(dirfd(d), path, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
			continue;
		if (n == cap) {
			char **nn;

			cap = cap ? cap * 2 : 16;
			nn = realloc(names, cap * sizeof(*names));
			if (!nn) {
				r = -ENOMEM;
				break;
			}
			names = nn;
		}
		names[n] = strdup(de->d_name);
		if (!names[n]) {
			r = -ENOMEM;
			break;
		}
		n++;
	}
	closedir(d);
	if (r < 0) {
		sup_names_free(names, n);
		return r;
	}
	if (n)
		qsort(names, n, sizeof(*names), name_cmp);
	*ret_names = names;
	*ret_n = n;
	return 0;
}
