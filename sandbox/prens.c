/* prens.c -- a task's network and user namespaces, made on a thread of their own while the caller does the rest of its start work. */
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
	pthread_t thread; /* the thread making them, until joined */
	int joined;	  /* 1 once the thread is joined */
	uint32_t id_base; /* host id of task uid/gid 0 in the user namespace */
	int net_fd;	  /* nsfs fd of the network namespace; -1 if none */
	int user_fd;	  /* nsfs fd of the user namespace; -1 if none */
	int err;	  /* negative errno of the failed step, 0 if none */
	const char *what; /* the failed step */
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

/* A user namespace mapping task ids 0..SBX_ID_COUNT-1 to host id_base...; its fd. */
static int make_userns(uint32_t id_base, const char **what)
{
	_cleanup_free_ char *stack = malloc(USERNS_STACK);
	int pipefd[2] = {-1, -1}, pidfd = -1, fd = -1, r;
	char map[64], path[64];
	siginfo_t si;
	pid_t pid;

	*what = "create the task's user namespace";
	if (!stack)
		return -ENOMEM;
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return -errno;
	/* no exit signal: nobody else's SIGCHLD handling sees it; reaped below */
	pid = clone(userns_holder, stack + USERNS_STACK, CLONE_VM | CLONE_NEWUSER | CLONE_PIDFD,
		    pipefd, &pidfd);
	if (pid < 0) {
		r = -errno;
		close(pipefd[0]);
		close(pipefd[1]);
		return r;
	}
	*what = "write the task's id maps";
	snprintf(map, sizeof(map), "0 %u %u\n", id_base, SBX_ID_COUNT);
	r = write_proc(pid, "uid_map", map);
	if (r == 0)
		r = write_proc(pid, "setgroups", "deny\n");
	if (r == 0)
		r = write_proc(pid, "gid_map", map);
	if (r == 0) {
		*what = "open the task's user namespace";
		snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)pid);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			r = -errno;
	}
	close(pipefd[1]); /* the holder returns */
	(void)waitid(P_PIDFD, (id_t)pidfd, &si, WEXITED | __WALL);
	close(pidfd);
	close(pipefd[0]);
	return r < 0 ? r : fd;
}

/*
 * Namespaces belong to threads, not processes: this thread alone moves into the new
 * network namespace, which outlives it through the fd.  Both are owned by our user
 * namespace (host root's), as clone3's would be: the task, inside the new user
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
	if (ns->net_fd < 0) {
		ns->err = -errno;
		return NULL;
	}
	r = make_userns(ns->id_base, &ns->what);
	if (r < 0)
		ns->err = r;
	else
		ns->user_fd = r;
	return NULL;
}

int sbx_ns_start(uint32_t id_base, struct sbx_ns **ret_ns)
{
	struct sbx_ns *ns = calloc(1, sizeof(*ns));
	int r;

	if (!ns)
		return -ENOMEM;
	ns->net_fd = ns->user_fd = -1;
	ns->id_base = id_base ? id_base : SBX_ID_BASE;
	r = pthread_create(&ns->thread, NULL, ns_thread, ns);
	if (r != 0) {
		free(ns);
		return -r;
	}
	*ret_ns = ns;
	return 0;
}

int sbx_ns_fds(struct sbx_ns *ns, uint32_t id_base, int *ret_net, int *ret_user,
	       struct sbx_err *err)
{
	if (!ns->joined) {
		pthread_join(ns->thread, NULL);
		ns->joined = 1;
	}
	if (ns->err < 0)
		return sbx_fail(err, ns->err, "cannot %s: %s", ns->what, strerror(-ns->err));
	if (ns->id_base != (id_base ? id_base : SBX_ID_BASE))
		return sbx_fail(err, -EINVAL, "the namespaces were made for host ids from %u",
				ns->id_base);
	*ret_net = ns->net_fd;
	*ret_user = ns->user_fd;
	return 0;
}

struct sbx_ns *sbx_ns_free(struct sbx_ns *ns)
{
	if (!ns)
		return NULL;
	if (!ns->joined)
		pthread_join(ns->thread, NULL);
	if (ns->net_fd >= 0)
		close(ns->net_fd);
	if (ns->user_fd >= 0)
		close(ns->user_fd);
	free(ns);
	return NULL;
}
