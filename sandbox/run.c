/* run.c -- start one task in fresh namespaces, cgroup limits and seccomp; pump its output; report how it ended. */
#include "internal.h"

#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <linux/securebits.h>
#include <linux/seccomp.h>
#include <grp.h>

#define DEF_MEMORY (512ull << 20)
#define DEF_PIDS 256
#define DEF_OUTPUT (16ull << 20)
#define DEF_TMP (64ull << 20)
#define DEF_WORK (64ull << 20)
#define DEF_INODES 16384
#define DEF_NOFILE 1024
#define DEF_FSIZE (1ull << 30)
#define DEF_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define CHILD_STACK (256u << 10) /* the set-up child's stack (CLONE_VM), a guard page below */

/* What the child reports through the status pipe when setup fails (one program). */
struct child_msg {
	int err;	/* errno of the failure */
	char what[120]; /* the step that failed */
};

/* Everything the child needs, prepared before clone so it allocates nothing. */
struct child_args {
	const char *rootfs;
	const char *work_dir;
	const char *hostname;
	char *const *argv;
	char *const *envp;
	const char *cwd;
	const char *path; /* PATH value for the lookup */
	uid_t uid;
	gid_t gid;
	int stdin_fd, out_w, err_w, status_w;
	int ns_sock;	     /* where the network and user namespaces come from (prens.c) */
	int new_session;     /* 1: setsid (we have a controlling terminal); 0: setpgid */
	int v1_fds[CG_V1_N]; /* open v1 `tasks` files the child joins itself (hybrid hosts) */
	int n_v1;	     /* how many */
	const struct sock_fprog *prog;
	struct rlimit nofile, fsize;
	char tmp_opts[160];
	char work_opts[160];
	char shm_opts[96];
};

struct sbx_task {
	pid_t pid;
	int pidfd;
	int out_r, err_r; /* task's stdout / stderr pipes */
	int cancel_fd;	  /* eventfd: sbx_task_cancel */
	int stdout_fd, stderr_fd;
	struct cg *cg;
	int own_cg;
	struct sbx_limits lim;
	uint64_t start_ns;
	uint64_t oom_before, cpu_before;
	int reaped;
	int status;	     /* wait status */
	enum sbx_end forced; /* TIMEOUT/CANCELED/OUTPUT_LIMIT once we killed it; EXITED if not */
	int setup_failed;
	char setup_error[256];
	uint64_t output_bytes;
	int done;
	struct sbx_result res;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

const char *sbx_end_name(enum sbx_end end)
{
	static const char *const names[] = {
		[SBX_END_EXITED] = "exited",
		[SBX_END_SIGNALED] = "signaled",
		[SBX_END_OOM] = "oom",
		[SBX_END_TIMEOUT] = "timeout",
		[SBX_END_CANCELED] = "canceled",
		[SBX_END_OUTPUT_LIMIT] = "output_limit",
		[SBX_END_SETUP_FAILED] = "setup_failed",
	};

	return (unsigned)end < ARRAY_SIZE(names) ? names[end] : "unknown";
}

/* ---- child side: only system calls from here to execve ---- */

static size_t c_strlen(const char *s)
{
	size_t n = 0;

	while (s[n])
		n++;
	return n;
}

static _noreturn_ void child_fail(const struct child_args *a, const char *what, int err)
{
	struct child_msg m = {.err = err};
	size_t n = c_strlen(what);

	if (n >= sizeof(m.what))
		n = sizeof(m.what) - 1;
	memcpy(m.what, what, n);
	if (write(a->status_w, &m, sizeof(m)) < 0) {
		/* nothing left to tell */
	}
	_exit(127);
}

#define CHECK_SYS(a, expr, what)                                                                   \
	do {                                                                                       \
		if ((expr) < 0)                                                                    \
			child_fail(a, what, errno);                                                \
	} while (0)

static const char *const masked_files[] = {
	"proc/kcore",	      "proc/keys",     "proc/timer_list", "proc/sched_debug",
	"proc/latency_stats", "proc/kallsyms", "proc/config.gz",  "proc/sysrq-trigger",
};
static const char *const masked_dirs[] = {"proc/acpi", "proc/scsi", "proc/asound", "proc/firmware"};
static const char *const ro_dirs[] = {"proc/sys", "proc/irq", "proc/bus", "proc/fs"};

static void child_proc_dev(const struct child_args *a)
{
	static const struct {
		const char *path;
		unsigned maj, min;
	} devs[] = {
		{"dev/null", 1, 3},   {"dev/zero", 1, 5},    {"dev/full", 1, 7},
		{"dev/random", 1, 8}, {"dev/urandom", 1, 9}, {"dev/tty", 5, 0},
	};
	static const char *const links[][2] = {
		{"/proc/self/fd", "dev/fd"},	   {"/proc/self/fd/0", "dev/stdin"},
		{"/proc/self/fd/1", "dev/stdout"}, {"/proc/self/fd/2", "dev/stderr"},
		{"pts/ptmx", "dev/ptmx"},
	};

	CHECK_SYS(a, mount("proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL),
		  "mount /proc");
	CHECK_SYS(a,
		  mount("tmpfs", "dev", "tmpfs", MS_NOSUID | MS_NOEXEC,
			"mode=0755,size=65536,nr_inodes=64"),
		  "mount /dev");
	for (size_t i = 0; i < ARRAY_SIZE(devs); i++)
		CHECK_SYS(a, mknod(devs[i].path, S_IFCHR | 0666, makedev(devs[i].maj, devs[i].min)),
			  "mknod in /dev");
	for (size_t i = 0; i < ARRAY_SIZE(links); i++)
		CHECK_SYS(a, symlink(links[i][0], links[i][1]), "symlink in /dev");
	CHECK_SYS(a, mkdir("dev/pts", 0755), "mkdir /dev/pts");
	CHECK_SYS(a, mkdir("dev/shm", 01777), "mkdir /dev/shm");
	CHECK_SYS(a,
		  mount("devpts", "dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
			"newinstance,ptmxmode=0666,mode=0620"),
		  "mount /dev/pts");
	CHECK_SYS(a,
		  mount("shm", "dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, a->shm_opts),
		  "mount /dev/shm");
	CHECK_SYS(a,
		  mount("tmpfs", "dev", NULL, MS_REMOUNT | MS_NOSUID | MS_NOEXEC | MS_RDONLY,
			"mode=0755,size=65536,nr_inodes=64"),
		  "remount /dev read-only");

	/* masks over /proc, like Docker's masked and read-only paths */
	for (size_t i = 0; i < ARRAY_SIZE(masked_files); i++)
		if (mount("dev/null", masked_files[i], NULL, MS_BIND, NULL) < 0 && errno != ENOENT)
			child_fail(a, "mask a /proc file", errno);
	for (size_t i = 0; i < ARRAY_SIZE(masked_dirs); i++)
		if (mount("tmpfs", masked_dirs[i], "tmpfs",
			  MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0,nr_inodes=1") < 0 &&
		    errno != ENOENT)
			child_fail(a, "mask a /proc directory", errno);
	for (size_t i = 0; i < ARRAY_SIZE(ro_dirs); i++) {
		if (mount(ro_dirs[i], ro_dirs[i], NULL, MS_BIND | MS_REC, NULL) < 0) {
			if (errno == ENOENT)
				continue;
			child_fail(a, "bind a read-only /proc path", errno);
		}
		CHECK_SYS(a,
			  mount(NULL, ro_dirs[i], NULL,
				MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
				NULL),
			  "remount a /proc path read-only");
	}
}

static void child_mounts(const struct child_args *a)
{
	CHECK_SYS(a, mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), "make mounts private");
	CHECK_SYS(a, mount(a->rootfs, a->rootfs, NULL, MS_BIND | MS_REC, NULL), "bind the rootfs");
	CHECK_SYS(a, chdir(a->rootfs), "enter the rootfs");
	child_proc_dev(a);
	CHECK_SYS(a, mount("tmpfs", "tmp", "tmpfs", MS_NOSUID | MS_NODEV, a->tmp_opts),
		  "mount /tmp");
	if (a->work_dir) {
		CHECK_SYS(a, mount(a->work_dir, "work", NULL, MS_BIND | MS_REC, NULL),
			  "bind /work");
		CHECK_SYS(a,
			  mount(NULL, "work", NULL, MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NODEV,
				NULL),
			  "remount /work");
	} else {
		CHECK_SYS(a, mount("tmpfs", "work", "tmpfs", MS_NOSUID | MS_NODEV, a->work_opts),
			  "mount /work");
	}
	CHECK_SYS(a, (int)syscall(SYS_pivot_root, ".", "."), "pivot_root");
	CHECK_SYS(a, umount2(".", MNT_DETACH), "detach the old root");
	CHECK_SYS(a, chdir("/"), "chdir /");
	CHECK_SYS(a,
		  mount(NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV,
			NULL),
		  "remount the rootfs read-only");
}

static void child_creds(const struct child_args *a)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[2] = {{0}};

	CHECK_SYS(a,
		  prctl(PR_SET_SECUREBITS,
			SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP_LOCKED |
				SECBIT_KEEP_CAPS_LOCKED | SECBIT_NO_CAP_AMBIENT_RAISE |
				SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED),
		  "set securebits");
	/* capabilities are numbered densely: the first EINVAL is past the last one */
	for (int cap = 0; cap <= 63; cap++) {
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0)
			continue;
		if (errno != EINVAL)
			child_fail(a, "drop the bounding set", errno);
		break;
	}
	CHECK_SYS(a, prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0),
		  "clear ambient caps");
	/* raw: glibc's wrappers would signal what it thinks are our threads (the parent's) */
	CHECK_SYS(a, (int)syscall(SYS_setresgid, a->gid, a->gid, a->gid), "setresgid");
	CHECK_SYS(a, (int)syscall(SYS_setresuid, a->uid, a->uid, a->uid), "setresuid");
	CHECK_SYS(a, (int)syscall(SYS_capset, &hdr, data), "drop capabilities");
}

static void child_exec(const struct child_args *a)
{
	const char *file = a->argv[0], *p = a->path;
	char buf[4096];
	int err = ENOENT;

	if (strchr(file, '/')) {
		execve(file, a->argv, a->envp);
		child_fail(a, "execve", errno);
	}
	while (p && *p) {
		const char *e = strchrnul(p, ':');
		size_t dl = (size_t)(e - p), fl = c_strlen(file);

		if (dl && dl + fl + 2 <= sizeof(buf)) {
			memcpy(buf, p, dl);
			buf[dl] = '/';
			memcpy(buf + dl + 1, file, fl + 1);
			execve(buf, a->argv, a->envp);
			if (errno != ENOENT && errno != ENOTDIR)
				err = errno;
		}
		p = *e ? e + 1 : e;
	}
	child_fail(a, "execve (command not found in PATH)", err);
}

static _noreturn_ void child_main(struct child_args *a)
{
	/*
	 * A dying parent takes the task along, setup included.  We were born in the
	 * task's v2 cgroup (CLONE_INTO_CGROUP); on hybrid hosts we join the v1 ones
	 * ourselves, still host root and single-threaded, by writing "0" to each
	 * hierarchy's `tasks` file: the kernel moves the calling thread without taking
	 * cgroup_threadgroup_rwsem for writing, whose RCU grace period made a pid
	 * written to cgroup.procs by the parent cost 2-36 ms per hierarchy.
	 */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (int i = 0; i < a->n_v1; i++) {
		if (write(a->v1_fds[i], "0", 1) != 1)
			child_fail(a, "join the task's v1 cgroups", errno);
		close(a->v1_fds[i]);
	}
	umask(0);
	CHECK_SYS(a, dup2(a->stdin_fd, 0), "stdin");
	CHECK_SYS(a, dup2(a->out_w, 1), "stdout");
	CHECK_SYS(a, dup2(a->err_w, 2), "stderr");
	child_mounts(a);
	CHECK_SYS(a, sethostname(a->hostname, c_strlen(a->hostname)), "sethostname");
	/*
	 * Never a controlling terminal, and a process group of its own.  setsid only when
	 * we have a terminal to leave: a new session also makes a new scheduler autogroup,
	 * and moving into it preempts the child on a busy host (0.9 ms median at load 4).
	 */
	if (a->new_session)
		CHECK_SYS(a, setsid(), "setsid");
	else
		CHECK_SYS(a, setpgid(0, 0), "setpgid");
	CHECK_SYS(a, setrlimit(RLIMIT_CORE, &(struct rlimit){0, 0}), "RLIMIT_CORE");
	CHECK_SYS(a, setrlimit(RLIMIT_NOFILE, &a->nofile), "RLIMIT_NOFILE");
	CHECK_SYS(a, setrlimit(RLIMIT_FSIZE, &a->fsize), "RLIMIT_FSIZE");
	CHECK_SYS(a, (int)syscall(SYS_setgroups, 0, NULL), "setgroups");
	/*
	 * The network (loopback up), IPC and user (id maps written) namespaces were made
	 * on the caller's thread meanwhile (prens.c).  Joining the first two this late
	 * changes nothing above: no mount here depends on them.  The user namespace
	 * last: from here on we own nothing but it.
	 */
	{
		struct sbx_ns_msg m;
		int fd[SBX_NS_N], r = sbx_ns_recv(a->ns_sock, fd, &m);

		if (r < 0) {
			m.what[sizeof(m.what) - 1] = '\0';
			child_fail(a, r == -EPROTO ? "receive the task's namespaces" : m.what, -r);
		}
		close(a->ns_sock);
		CHECK_SYS(a, setns(fd[SBX_NS_NET], CLONE_NEWNET),
			  "join the task's network namespace");
		CHECK_SYS(a, setns(fd[SBX_NS_IPC], CLONE_NEWIPC), "join the task's IPC namespace");
		CHECK_SYS(a, setns(fd[SBX_NS_USER], CLONE_NEWUSER),
			  "join the task's user namespace");
		for (int i = 0; i < SBX_NS_N; i++)
			close(fd[i]);
	}
	/* now in every cgroup of the task: make it our cgroup root */
	CHECK_SYS(a, unshare(CLONE_NEWCGROUP), "cgroup namespace");
	child_creds(a);
	CHECK_SYS(a, chdir(a->cwd), "chdir to the working directory");
	umask(022);
	CHECK_SYS(a, (int)syscall(SYS_close_range, 3, ~0u, CLOSE_RANGE_CLOEXEC), "close fds");
	CHECK_SYS(a, prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs");
	if (a->prog)
		CHECK_SYS(a, prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, a->prog), "seccomp");
	child_exec(a);
	_exit(127);
}

/* ---- parent side ---- */

/*
 * The set-up child shares our memory and we sleep until it has exec'd or died
 * (CLONE_VM | CLONE_VFORK, as posix_spawn does): no page tables to copy for a child
 * that only makes system calls, none to tear down at its exec, no copy-on-write faults
 * for us afterwards.  clone3 has no glibc wrapper that switches stacks, so the child
 * starts on its own stack here and calls fn(arg), which never returns.
 */
#if defined(__SANITIZE_ADDRESS__)
#define SBX_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SBX_ASAN 1
#endif
#endif
/*
 * Not under ASan: its run-time takes locks in our memory from the child (at
 * __asan_handle_no_return on a stack it does not know), which the child keeps held
 * across its exec; the parent then deadlocks.  Sanitizer builds copy the parent.
 */
#if defined(__x86_64__) && !defined(SBX_ASAN)
#define HAVE_CLONE3_VM 1
static long clone3_vm(struct clone_args *ca, void (*fn)(void *), void *arg)
{
	register void (*r12)(void *) __asm__("r12") = fn;
	register void *r13 __asm__("r13") = arg;
	long ret;

	__asm__ volatile("syscall\n\t"
			 "test %%rax, %%rax\n\t"
			 "jnz 1f\n\t"
			 "xor %%ebp, %%ebp\n\t"
			 "mov %%r13, %%rdi\n\t"
			 "call *%%r12\n\t"
			 "ud2\n"
			 "1:"
			 : "=a"(ret)
			 : "0"((long)SYS_clone3), "D"(ca), "S"(sizeof(*ca)), "r"(r12), "r"(r13)
			 : "rcx", "r11", "memory");
	return ret;
}
#endif

static void child_entry(void *arg)
{
	child_main(arg);
}

/* clone3 the set-up child; returns its pid (to the parent only) or -errno. */
static long clone_child(struct clone_args *ca, struct child_args *a)
{
	long pid;
#ifdef HAVE_CLONE3_VM
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	char *stack = mmap(NULL, CHILD_STACK + page, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);

	if (stack == MAP_FAILED)
		return -errno;
	if (mprotect(stack, page, PROT_NONE) < 0) {
		pid = -errno;
		munmap(stack, CHILD_STACK + page);
		return pid;
	}
	ca->flags |= CLONE_VM | CLONE_VFORK;
	ca->stack = (uint64_t)(uintptr_t)(stack + page);
	ca->stack_size = CHILD_STACK;
	pid = clone3_vm(ca, child_entry, a);
	/* back here once the child exec'd or died: its stack is free */
	munmap(stack, CHILD_STACK + page);
	return pid;
#else
	pid = syscall(SYS_clone3, ca, sizeof(*ca));
	if (pid < 0)
		return -errno;
	if (pid == 0)
		child_entry(a);
	return pid;
#endif
}

/* Find NAME (or numeric id) in the rootfs's passwd/group file: field 3 of the matching line. */
static int lookup_id(int rootfs_fd, const char *file, const char *name, long *ret_id, long *ret_gid)
{
	_cleanup_close_ int fd = sbx_open_in_root(rootfs_fd, file, O_RDONLY);
	_cleanup_fclose_ FILE *f = NULL;
	char line[1024];

	if (fd < 0)
		return fd;
	f = fdopen(fd, "r");
	if (!f)
		return -errno;
	TAKE_FD(fd);
	for (int lines = 0; lines < 100000 && fgets(line, sizeof(line), f); lines++) {
		char *save = NULL, *n = strtok_r(line, ":", &save), *id;

		if (!n || strcmp(n, name) != 0)
			continue;
		strtok_r(NULL, ":", &save);
		id = strtok_r(NULL, ":", &save);
		if (!id)
			return -EINVAL;
		*ret_id = strtol(id, NULL, 10);
		if (ret_gid) {
			char *g = strtok_r(NULL, ":", &save);

			*ret_gid = g ? strtol(g, NULL, 10) : 0;
		}
		return 0;
	}
	return -ENOENT;
}

static int parse_id(const char *s, long *ret)
{
	char *end;
	long v;

	if (!s[0])
		return -EINVAL;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < 0)
		return -EINVAL;
	*ret = v;
	return 0;
}

static int resolve_user(const char *rootfs, const char *spec, uid_t *ret_uid, gid_t *ret_gid,
			struct sbx_err *err)
{
	char buf[256], *colon;
	long uid = 0, gid = -1, pgid = 0;
	_cleanup_close_ int rfd = -1;

	if (!spec || !spec[0]) {
		*ret_uid = 0;
		*ret_gid = 0;
		return 0;
	}
	if (snprintf(buf, sizeof(buf), "%s", spec) >= (int)sizeof(buf))
		return sbx_fail(err, -EINVAL, "user \"%.64s...\" is too long", spec);
	rfd = open(rootfs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rfd < 0)
		return sbx_fail(err, -errno, "cannot open rootfs %s: %m", rootfs);
	colon = strchr(buf, ':');
	if (colon)
		*colon++ = '\0';
	if (parse_id(buf, &uid) == 0) {
		pgid = 0; /* a numeric uid without a group runs with group 0, as in Docker */
	} else if (lookup_id(rfd, "/etc/passwd", buf, &uid, &pgid) < 0) {
		return sbx_fail(err, -ENOENT, "user \"%s\" is not in the image's /etc/passwd", buf);
	}
	if (colon) {
		if (parse_id(colon, &gid) < 0 &&
		    lookup_id(rfd, "/etc/group", colon, &gid, NULL) < 0)
			return sbx_fail(err, -ENOENT,
					"group \"%s\" is not in the image's /etc/group", colon);
	} else {
		gid = pgid;
	}
	if (uid >= (long)SBX_ID_COUNT || gid >= (long)SBX_ID_COUNT || gid < 0)
		return sbx_fail(err, -ERANGE, "user %ld:%ld is outside the mapped ids 0..%u", uid,
				gid, SBX_ID_COUNT - 1);
	*ret_uid = (uid_t)uid;
	*ret_gid = (gid_t)gid;
	return 0;
}

/*
 * Open the `tasks` files of the task's v1 cgroups (hybrid hosts) for the child to join
 * itself.  Only the controllers v2 cannot stand in for: memory and pids always, cpu
 * when a CPU limit is set, cpuacct only without v2 cpu.stat, freezer only without v2
 * cgroup.kill.
 */
static int open_v1_tasks(const struct cg *cg, int cpu_limited, struct child_args *a)
{
	char path[PATH_MAX];

	a->n_v1 = 0;
	for (int c = 0; c < CG_V1_N; c++) {
		const char *need = c == CG_V1_CPUACCT	? "cpu.stat"
				   : c == CG_V1_FREEZER ? "cgroup.kill"
							: NULL;
		int dup = 0, fd;

		if (!cg->v1_path[c] || (c == CG_V1_CPU && !cpu_limited))
			continue;
		for (int d = 0; d < c; d++)
			if (cg->v1_path[d] && strcmp(cg->v1_path[d], cg->v1_path[c]) == 0)
				dup = 1;
		if (dup)
			continue;
		if (need) {
			snprintf(path, sizeof(path), "%s/%s", cg->v2_path, need);
			if (access(path, F_OK) == 0)
				continue;
		}
		snprintf(path, sizeof(path), "%s/tasks", cg->v1_path[c]);
		fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		a->v1_fds[a->n_v1++] = fd;
	}
	return 0;
}

static void close_v1_tasks(struct child_args *a)
{
	for (int i = 0; i < a->n_v1; i++)
		close(a->v1_fds[i]);
	a->n_v1 = 0;
}

static const char *env_path(char *const *envp)
{
	for (size_t i = 0; envp && envp[i]; i++)
		if (strncmp(envp[i], "PATH=", 5) == 0)
			return envp[i] + 5;
	return DEF_PATH + 5;
}

pid_t sbx_task_pid(const struct sbx_task *task)
{
	return task->pid;
}

const struct cg *sbx_task_cgroup(const struct sbx_task *task)
{
	return task->cg;
}

void sbx_task_cancel(struct sbx_task *task)
{
	uint64_t one = 1;

	if (task && task->cancel_fd >= 0 && write(task->cancel_fd, &one, sizeof(one)) < 0) {
		/* the counter is already non-zero: it is cancelled */
	}
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

struct sbx_task *sbx_task_free(struct sbx_task *task)
{
	if (!task)
		return NULL;
	if (task->cg && !task->done)
		(void)cg_kill(task->cg);
	if (task->pid > 0 && !task->reaped) {
		siginfo_t si;

		(void)waitid(P_PIDFD, (id_t)task->pidfd, &si, WEXITED);
	}
	close_fd(&task->pidfd);
	close_fd(&task->out_r);
	close_fd(&task->err_r);
	close_fd(&task->cancel_fd);
	if (task->own_cg)
		(void)cg_destroy(task->cg);
	else
		cg_free(task->cg);
	free(task);
	return NULL;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(struct sbx_task, sbx_task_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct sbx_ns, sbx_ns_free)

static void fill_defaults(struct sbx_limits *l)
{
	if (!l->memory_bytes)
		l->memory_bytes = DEF_MEMORY;
	if (!l->pids)
		l->pids = DEF_PIDS;
	if (!l->output_bytes)
		l->output_bytes = DEF_OUTPUT;
	if (!l->tmp_bytes)
		l->tmp_bytes = DEF_TMP;
	if (!l->work_bytes)
		l->work_bytes = DEF_WORK;
	if (!l->inodes)
		l->inodes = DEF_INODES;
	if (!l->nofile)
		l->nofile = DEF_NOFILE;
	if (!l->fsize_bytes)
		l->fsize_bytes = DEF_FSIZE;
}

/* Create (or borrow) the task cgroup and work out its limits; task_limits applies them. */
static int task_cgroup(const struct sbx_config *cfg, struct sbx_task *t, struct cg_limits *ret_cl,
		       struct sbx_err *err)
{
	static atomic_uint seq;
	struct cg_limits cl = {0};
	char name[64];
	int r;

	if (!cfg->host)
		return sbx_fail(err, -EINVAL, "no cgroup host layout given");
	if (cfg->cg) {
		/* borrow: copy the paths so that freeing stays ours */
		t->cg = calloc(1, sizeof(*t->cg));
		if (!t->cg)
			return -ENOMEM;
		t->cg->id = cfg->cg->id;
		t->cg->v2_path = cfg->cg->v2_path ? strdup(cfg->cg->v2_path) : NULL;
		for (int i = 0; i < CG_V1_N; i++)
			t->cg->v1_path[i] =
				cfg->cg->v1_path[i] ? strdup(cfg->cg->v1_path[i]) : NULL;
	} else {
		/* v1 cpu only for a CPU limit: the task joins no v1 cgroup it does not need */
		unsigned v1 = CG_V1_ALL & ~(t->lim.cores > 0 ? 0u : 1u << CG_V1_CPU);

		snprintf(name, sizeof(name), "sbx-%d-%u", (int)getpid(), atomic_fetch_add(&seq, 1));
		r = cg_create_v1(cfg->host, cfg->cg_parent, name,
				 cfg->host->layout == CG_LAYOUT_HYBRID ? v1 : 0, &t->cg);
		if (r < 0)
			return sbx_fail(err, r, "cannot create the task cgroup %s: %s", name,
					strerror(-r));
		t->own_cg = 1;
	}
	if (t->lim.cores > 0) {
		cl.cpu_period_us = 100000;
		cl.cpu_quota_us = (uint64_t)(t->lim.cores * 100000.0 + 0.5);
		if (cl.cpu_quota_us < 1000)
			return sbx_fail(err, -EINVAL, "CPU limit %.3f cores is too small",
					t->lim.cores);
	}
	cl.memory_bytes = t->lim.memory_bytes;
	cl.pids = t->lim.pids;
	/* a cgroup we just made has used nothing yet; a given one may have */
	if (!t->own_cg && cg_oom_kills(t->cg, &t->oom_before) < 0)
		t->oom_before = 0;
	if (!t->own_cg && cg_cpu_usage_ns(t->cg, &t->cpu_before) < 0)
		t->cpu_before = 0;
	*ret_cl = cl;
	return 0;
}

static int task_limits(struct sbx_task *t, const struct cg_limits *cl, struct sbx_err *err)
{
	int r = cg_set_limits(t->cg, cl);

	if (r < 0)
		return sbx_fail(
			err, r,
			"refusing to run: the limits (cpu %.2f cores, memory %llu, pids %llu) cannot be enforced: %s",
			t->lim.cores, (unsigned long long)cl->memory_bytes,
			(unsigned long long)cl->pids, strerror(-r));
	return 0;
}

int sbx_task_start(const struct sbx_config *cfg, struct sbx_task **ret_task, struct sbx_err *err)
{
	_cleanup_(sbx_task_freep) struct sbx_task *t = calloc(1, sizeof(*t));
	struct child_args a = {0};
	int outp[2] = {-1, -1}, errp[2] = {-1, -1}, statp[2] = {-1, -1};
	_cleanup_close_ int devnull = -1, cgfd = -1;
	_cleanup_(sbx_ns_freep) struct sbx_ns *own_ns = NULL;
	static char *const def_env[] = {DEF_PATH, NULL};
	struct clone_args ca = {0};
	struct cg_limits cl = {0};
	struct child_msg msg;
	int pidfd = -1, r;
	ssize_t n;
	long pid;

	if (err)
		err->msg[0] = '\0';
	if (!t)
		return -ENOMEM;
	t->pidfd = t->out_r = t->err_r = t->cancel_fd = -1;
	if (!cfg->rootfs || !cfg->argv || !cfg->argv[0])
		return sbx_fail(err, -EINVAL, "no rootfs or no command");
	if (!cfg->ns) {
		/* made while we create the cgroup */
		r = sbx_ns_start(cfg->id_base, &own_ns);
		if (r < 0)
			return sbx_fail(err, r, "cannot start making the task's namespaces: %s",
					strerror(-r));
	}
	t->lim = cfg->limits;
	fill_defaults(&t->lim);
	t->stdout_fd = cfg->stdout_fd;
	t->stderr_fd = cfg->stderr_fd;
	if (!cfg->no_seccomp) {
		r = sbx_seccomp_prepare();
		if (r < 0)
			return sbx_fail(err, r, "cannot build the seccomp filter: %s",
					strerror(-r));
		a.prog = sbx_seccomp_prog();
	}
	r = resolve_user(cfg->rootfs, cfg->user, &a.uid, &a.gid, err);
	if (r < 0)
		return r;
	a.rootfs = cfg->rootfs;
	a.work_dir = cfg->work_dir;
	a.hostname = cfg->hostname ? cfg->hostname : "aicn";
	a.argv = cfg->argv;
	a.envp = cfg->envp ? cfg->envp : def_env;
	a.path = env_path(a.envp);
	a.cwd = cfg->cwd ? cfg->cwd : "/work";
	a.nofile = (struct rlimit){t->lim.nofile, t->lim.nofile};
	a.fsize = (struct rlimit){t->lim.fsize_bytes, t->lim.fsize_bytes};
	snprintf(a.tmp_opts, sizeof(a.tmp_opts), "mode=1777,size=%llu,nr_inodes=%llu",
		 (unsigned long long)t->lim.tmp_bytes, (unsigned long long)t->lim.inodes);
	snprintf(a.shm_opts, sizeof(a.shm_opts), "mode=1777,size=%llu,nr_inodes=%llu",
		 (unsigned long long)t->lim.tmp_bytes, (unsigned long long)t->lim.inodes);
	{
		uint32_t base = cfg->id_base ? cfg->id_base : SBX_ID_BASE;

		snprintf(a.work_opts, sizeof(a.work_opts),
			 "mode=0755,size=%llu,nr_inodes=%llu,uid=%u,gid=%u",
			 (unsigned long long)t->lim.work_bytes, (unsigned long long)t->lim.inodes,
			 base + a.uid, base + a.gid);
		if (cfg->work_dir && chown(cfg->work_dir, base + a.uid, base + a.gid) < 0)
			return sbx_fail(err, -errno, "cannot hand %s to the task: %m",
					cfg->work_dir);
	}

	r = task_cgroup(cfg, t, &cl, err);
	if (r < 0)
		return r;
	if (!t->cg || !t->cg->v2_path)
		return sbx_fail(err, -EINVAL, "the task cgroup has no cgroup v2 path");
	/* every limit in place before the task's process exists */
	r = task_limits(t, &cl, err);
	if (r < 0)
		return r;

	{
		/* ENXIO: no controlling terminal; anything else, be safe and leave it */
		int tty = open("/dev/tty", O_RDONLY | O_NOCTTY | O_CLOEXEC);

		a.new_session = tty >= 0 || errno != ENXIO;
		if (tty >= 0)
			close(tty);
	}
	if (cfg->stdin_fd < 0) {
		devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (devnull < 0)
			return -errno;
	}
	t->cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (t->cancel_fd < 0 || pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0 ||
	    pipe2(statp, O_CLOEXEC) < 0) {
		r = -errno;
		goto out_pipes;
	}
	a.stdin_fd = cfg->stdin_fd >= 0 ? cfg->stdin_fd : devnull;
	a.out_w = outp[1];
	a.err_w = errp[1];
	a.status_w = statp[1];

	/* network, IPC and user namespaces come from the thread (prens.c) */
	ca.flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_PIDFD;
	r = sbx_ns_channel(cfg->ns ? cfg->ns : own_ns, cfg->id_base, err);
	if (r < 0)
		goto out_pipes;
	a.ns_sock = r;
	ca.pidfd = (uint64_t)(uintptr_t)&pidfd;
	ca.exit_signal = SIGCHLD;
	/* born in the task's v2 cgroup: the meter sees it from its first instruction */
	cgfd = open(t->cg->v2_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cgfd < 0) {
		r = sbx_fail(err, -errno, "cannot open the task cgroup %s: %m", t->cg->v2_path);
		goto out_pipes;
	}
	ca.flags |= CLONE_INTO_CGROUP;
	ca.cgroup = (uint64_t)cgfd;
	r = open_v1_tasks(t->cg, t->lim.cores > 0, &a);
	if (r < 0) {
		sbx_fail(err, r, "cannot open the task's v1 cgroups: %s", strerror(-r));
		goto out_pipes;
	}
	t->start_ns = now_ns();
	pid = clone_child(&ca, &a);
	if (pid < 0) {
		r = sbx_fail(err, (int)pid, "cannot create the task's namespaces: %s",
			     strerror((int)-pid));
		goto out_pipes;
	}

	t->pid = (pid_t)pid;
	t->pidfd = pidfd;
	close_fd(&outp[1]);
	close_fd(&errp[1]);
	close_fd(&statp[1]);
	t->out_r = outp[0];
	t->err_r = errp[0];
	outp[0] = errp[0] = -1;

	close_v1_tasks(&a);
	/* the status pipe closes at the exec (O_CLOEXEC) or brings why setup failed */
	n = read(statp[0], &msg, sizeof(msg));
	if (n == sizeof(msg)) {
		t->setup_failed = 1;
		msg.what[sizeof(msg.what) - 1] = '\0';
		snprintf(t->setup_error, sizeof(t->setup_error), "%s: %s", msg.what,
			 strerror(msg.err));
	} else if (n != 0) {
		t->setup_failed = 1;
		snprintf(t->setup_error, sizeof(t->setup_error), "sandbox setup died");
	}
	close_fd(&statp[0]);
	*ret_task = TAKE_PTR(t);
	return 0;

out_pipes:
	close_v1_tasks(&a);
	close_fd(&outp[0]);
	close_fd(&outp[1]);
	close_fd(&errp[0]);
	close_fd(&errp[1]);
	close_fd(&statp[0]);
	close_fd(&statp[1]);
	return r;
}

/* Copy what the task wrote; returns 1 on EOF, 0 otherwise.  Enforces the output limit. */
static int pump(struct sbx_task *t, int *fd, int dest)
{
	char buf[65536];
	ssize_t n = read(*fd, buf, sizeof(buf));

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n <= 0) {
		close_fd(fd);
		return 1;
	}
	if (t->output_bytes + (uint64_t)n > t->lim.output_bytes) {
		n = (ssize_t)(t->lim.output_bytes - t->output_bytes);
		if (t->forced == SBX_END_EXITED) {
			t->forced = SBX_END_OUTPUT_LIMIT;
			(void)cg_kill(t->cg);
		}
	}
	t->output_bytes += (uint64_t)n;
	for (ssize_t off = 0; dest >= 0 && off < n;) {
		ssize_t w = write(dest, buf + off, (size_t)(n - off));

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break; /* a closed reader must not stop the task's accounting */
		off += w;
	}
	return 0;
}

static void force_end(struct sbx_task *t, enum sbx_end why)
{
	if (t->forced != SBX_END_EXITED || t->reaped)
		return;
	t->forced = why;
	(void)cg_kill(t->cg);
}

int sbx_task_wait(struct sbx_task *t, struct sbx_result *ret)
{
	uint64_t deadline = t->lim.timeout_ms ? t->start_ns + t->lim.timeout_ms * 1000000ull : 0;
	struct sbx_result *res = &t->res;
	uint64_t v;
	int r;

	if (t->done)
		goto out;
	fcntl(t->out_r, F_SETFL, O_NONBLOCK);
	fcntl(t->err_r, F_SETFL, O_NONBLOCK);
	while (!t->reaped || t->out_r >= 0 || t->err_r >= 0) {
		struct pollfd p[4] = {
			{.fd = t->out_r, .events = POLLIN},
			{.fd = t->err_r, .events = POLLIN},
			{.fd = t->reaped ? -1 : t->pidfd, .events = POLLIN},
			{.fd = t->cancel_fd, .events = POLLIN},
		};
		int timeout = -1;

		if (deadline && !t->reaped) {
			uint64_t now = now_ns();

			if (now >= deadline) {
				force_end(t, SBX_END_TIMEOUT);
				deadline = 0;
				continue;
			}
			timeout = (int)((deadline - now) / 1000000ull) + 1;
		}
		if (t->reaped)
			timeout = 1000; /* only pipes left: every writer is dead */
		r = poll(p, 4, timeout);
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r == 0 && t->reaped) {
			close_fd(&t->out_r);
			close_fd(&t->err_r);
			break;
		}
		if (p[0].revents)
			pump(t, &t->out_r, t->stdout_fd);
		if (p[1].revents)
			pump(t, &t->err_r, t->stderr_fd);
		if (p[3].revents && read(t->cancel_fd, &v, sizeof(v)) == sizeof(v))
			force_end(t, SBX_END_CANCELED);
		if (p[2].revents) {
			siginfo_t si = {0};

			if (waitid(P_PIDFD, (id_t)t->pidfd, &si, WEXITED) == 0) {
				t->reaped = 1;
				t->status = si.si_code == CLD_EXITED ? (si.si_status & 0xff) << 8
								     : (si.si_status & 0x7f);
				/*
				 * The namespace's init is gone, and the kernel reaps every
				 * process of its pid namespace before we can reap init: a
				 * cgroup of our own holds nothing more (cg_destroy checks
				 * again); a given one is killed here to be sure.
				 */
				if (!t->own_cg)
					(void)cg_kill(t->cg);
			}
		}
	}
	memset(res, 0, sizeof(*res));
	res->wall_ns = now_ns() - t->start_ns;
	res->output_bytes = t->output_bytes;
	res->cgroup_id = t->cg->id;
	if (cg_cpu_usage_ns(t->cg, &v) == 0)
		res->cpu_ns = v - t->cpu_before;
	if (cg_memory_peak(t->cg, &v) == 0)
		res->memory_peak = v;
	if (cg_oom_kills(t->cg, &v) == 0)
		res->oom_kills = v - t->oom_before;
	if (WIFEXITED(t->status)) {
		res->exit_code = WEXITSTATUS(t->status);
		res->end = SBX_END_EXITED;
	} else {
		res->signal = WTERMSIG(t->status);
		res->end = SBX_END_SIGNALED;
	}
	if (t->setup_failed) {
		res->end = SBX_END_SETUP_FAILED;
		snprintf(res->setup_error, sizeof(res->setup_error), "%s", t->setup_error);
	} else if (t->forced != SBX_END_EXITED) {
		res->end = t->forced;
	} else if (res->end == SBX_END_SIGNALED && res->signal == SIGKILL && res->oom_kills) {
		res->end = SBX_END_OOM;
	}
	t->done = 1;
out:
	*ret = t->res;
	return 0;
}

int sbx_run(const struct sbx_config *cfg, struct sbx_result *ret, struct sbx_err *err)
{
	struct sbx_task *t = NULL;
	int r = sbx_task_start(cfg, &t, err);

	if (r < 0 || !t)
		return r < 0 ? r : -EIO;
	r = sbx_task_wait(t, ret);
	sbx_task_free(t);
	return r;
}
