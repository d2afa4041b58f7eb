/* prens.c -- a task's network namespace, made on a thread of its own while the caller does the rest of its start work, and its user namespace. */
#include "internal.h"

#include <fcntl.h>
#include <linux/sched.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define USERNS_STACK (64u << 10) /* the helper only blocks in read() */

struct sbx_ns {
	pthread_t thread;   /* the thread making the network namespace, until joined */
	int joined;	    /* 1 once the thread is joined */
	uint32_t id_base;   /* host id of task uid/gid 0 in the user namespace */
	int net_fd;	    /* nsfs fd of the network namespace; -1 if none */
	int user_fd;	    /* nsfs fd of the user namespace; -1 if none */
	int err;	    /* negative errno of the thread's failed step, 0 if none */
	const char *what;   /* the thread's failed step */
	int holder_pidfd;   /* the user namespace's holder, reaped by sbx_ns_free; -1 if none */
	int holder_pipe[2]; /* its pipe (the holder reads them here, after make_userns returned) */
	char *holder_stack; /* its stack, freed once it is reaped */
};

int sbx_loopback_up(void)
{
	struct ifreq ifr = {0};
	_cleanup_close_ int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	memcpy(ifr.ifr_name, "lo", 3);
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		return -errno;
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
		return -errno;
	return 0;
}

static int write_proc(pid_t pid, const char *file, const char *s)
{
	char path[64];
	size_t n = strlen(s);
	_cleanup_close_ int fd = -1;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	return write(fd, s, n) == (ssize_t)n ? 0 : -errno;
}

/*
 * Holds a user namespace open until its maps are written and its fd taken: runs on a
 * stack of its own in our address space (CLONE_VM, as posix_spawn does), and only
 * waits for the pipe to close.
 */
__attribute__((no_sanitize("address"))) static int userns_holder(void *arg)
{
	const int *pipefd = arg;
	char c;

	/* our copy of the write end, or the read would never see the end */
	(void)syscall(SYS_close, pipefd[1]);
	(void)syscall(SYS_read, pipefd[0], &c, 1);
	return 0;
}

/*
 * A user namespace mapping task ids 0..SBX_ID_COUNT-1 to host id_base...: its fd in
 * ns->user_fd.  The holder is left to exit on its own; sbx_ns_free reaps it, so
 * nobody waits here for a process to end (~50 us, more on a busy host).
 */
static int make_userns(struct sbx_ns *ns, const char **what)
{
	int *pipefd = ns->holder_pipe, pidfd = -1, r;
	char map[64], path[64];
	pid_t pid;

	*what = "create the task's user namespace";
	ns->holder_stack = malloc(USERNS_STACK);
	if (!ns->holder_stack)
		return -ENOMEM;
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return -errno;
	/* no exit signal: nobody else's SIGCHLD handling sees it */
	pid = clone(userns_holder, ns->holder_stack + USERNS_STACK,
		    CLONE_VM | CLONE_NEWUSER | CLONE_PIDFD, pipefd, &pidfd);
	if (pid < 0) {
		r = -errno;
		close(pipefd[0]);
		close(pipefd[1]);
		return r;
	}
	ns->holder_pidfd = pidfd;
	*what = "write the task's id maps";
	snprintf(map, sizeof(map), "0 %u %u\n", ns->id_base, SBX_ID_COUNT);
	r = write_proc(pid, "uid_map", map);
	if (r == 0)
		r = write_proc(pid, "setgroups", "deny\n");
	if (r == 0)
		r = write_proc(pid, "gid_map", map);
	if (r == 0) {
		*what = "open the task's user namespace";
		snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)pid);
		ns->user_fd = open(path, O_RDONLY | O_CLOEXEC);
		if (ns->user_fd < 0)
			r = -errno;
	}
	close(pipefd[1]); /* the holder returns */
	close(pipefd[0]);
	return r;
}

/*
 * Namespaces belong to threads, not processes: this thread alone moves into the new
 * network namespace, which outlives it through the fd.  It is owned by our user
 * namespace (host root's), as clone3's would be: the task, inside its own user
 * namespace, holds no capability over its network namespace.
 */
static void *ns_thread(void *arg)
{
	struct sbx_ns *ns = arg;
	int r;

	ns->what = "create the task's network namespace";
	if (unshare(CLONE_NEWNET) < 0) {
		ns->err = -errno;
		return NULL;
	}
	ns->what = "bring loopback up";
	r = sbx_loopback_up();
	if (r < 0) {
		ns->err = r;
		return NULL;
	}
	ns->what = "open the task's network namespace";
	ns->net_fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (ns->net_fd < 0)
		ns->err = -errno;
	return NULL;
}

int sbx_ns_start(uint32_t id_base, struct sbx_ns **ret_ns)
{
	struct sbx_ns *ns = calloc(1, sizeof(*ns));
	pthread_attr_t attr;
	cpu_set_t cpus;
	int cpu = sched_getcpu(), r;

	if (!ns)
		return -ENOMEM;
	ns->net_fd = ns->user_fd = ns->holder_pidfd = -1;
	ns->id_base = id_base ? id_base : SBX_ID_BASE;
	r = pthread_attr_init(&attr);
	if (r != 0) {
		free(ns);
		return -r;
	}
	/*
	 * Away from our CPU: on an idle host the scheduler mostly starts a new thread
	 * beside its creator, where its ~0.5 ms in the kernel would only delay ours.
	 * sbx_ns_fds lets it run anywhere again before waiting for it.
	 */
	if (cpu >= 0 && sched_getaffinity(0, sizeof(cpus), &cpus) == 0 && CPU_COUNT(&cpus) > 1 &&
	    CPU_ISSET(cpu, &cpus)) {
		CPU_CLR(cpu, &cpus);
		(void)pthread_attr_setaffinity_np(&attr, sizeof(cpus), &cpus);
	}
	r = pthread_create(&ns->thread, &attr, ns_thread, ns);
	pthread_attr_destroy(&attr);
	if (r != 0) {
		free(ns);
		return -r;
	}
	*ret_ns = ns;
	return 0;
}

static void ns_join(struct sbx_ns *ns)
{
	cpu_set_t cpus;

	if (ns->joined)
		return;
	/* a thread still queued behind a busy CPU may now come to ours, which waits */
	if (sched_getaffinity(0, sizeof(cpus), &cpus) == 0)
		(void)pthread_setaffinity_np(ns->thread, sizeof(cpus), &cpus);
	pthread_join(ns->thread, NULL);
	ns->joined = 1;
}

int sbx_ns_fds(struct sbx_ns *ns, uint32_t id_base, int *ret_net, int *ret_user,
	       struct sbx_err *err)
{
	const char *what;
	int r;

	if (ns->id_base != (id_base ? id_base : SBX_ID_BASE))
		return sbx_fail(err, -EINVAL, "the namespaces were made for host ids from %u",
				ns->id_base);
	/* the user namespace here, while the thread may still be making the other */
	if (ns->user_fd < 0 && ns->holder_pidfd < 0) {
		r = make_userns(ns, &what);
		if (r < 0)
			return sbx_fail(err, r, "cannot %s: %s", what, strerror(-r));
	}
	if (ns->user_fd < 0)
		return sbx_fail(err, -EINVAL, "the task's user namespace was not made");
	ns_join(ns);
	if (ns->err < 0)
		return sbx_fail(err, ns->err, "cannot %s: %s", ns->what, strerror(-ns->err));
	*ret_net = ns->net_fd;
	*ret_user = ns->user_fd;
	return 0;
}

struct sbx_ns *sbx_ns_free(struct sbx_ns *ns)
{
	if (!ns)
		return NULL;
	ns_join(ns);
	if (ns->holder_pidfd >= 0) {
		siginfo_t si;

		/* it returned once its pipe closed (make_userns) */
		(void)waitid(P_PIDFD, (id_t)ns->holder_pidfd, &si, WEXITED | __WALL);
		close(ns->holder_pidfd);
	}
	free(ns->holder_stack);
	if (ns->net_fd >= 0)
		close(ns->net_fd);
	if (ns->user_fd >= 0)
		close(ns->user_fd);
	free(ns);
	return NULL;
}
