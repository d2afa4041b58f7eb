/* prens.c -- a task's network and user namespaces, made on a thread of their own while the caller and the task's set-up child do the rest of the start work. */
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
	pthread_t thread;   /* the thread making the namespaces, until joined */
	int joined;	    /* 1 once the thread is joined */
	uint32_t id_base;   /* host id of task uid/gid 0 in the user namespace */
	int fd[SBX_NS_N];   /* nsfs fds by enum sbx_ns_kind; -1 if not made */
	int sock[2];	    /* [0] the thread sends the fds, [1] the set-up child receives them */
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
 * ns->fd[SBX_NS_USER].  The holder is left to exit on its own (once every copy of its pipe's
 * write end is closed: a set-up child cloned meanwhile holds one until its exec);
 * sbx_ns_free reaps it.
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
		ns->fd[SBX_NS_USER] = open(path, O_RDONLY | O_CLOEXEC);
		if (ns->fd[SBX_NS_USER] < 0)
			r = -errno;
	}
	close(pipefd[1]); /* the holder returns */
	close(pipefd[0]);
	return r;
}

/* Tell the set-up child how it went: the fds, or the step that failed. */
static void ns_send(struct sbx_ns *ns, int err, const char *what)
{
	struct sbx_ns_msg m = {.err = err};
	union {
		char buf[CMSG_SPACE(sizeof(ns->fd))];
		struct cmsghdr align;
	} u = {0};
	struct iovec iov = {.iov_base = &m, .iov_len = sizeof(m)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	struct cmsghdr *c;

	snprintf(m.what, sizeof(m.what), "%s", what);
	if (err == 0) {
		mh.msg_control = u.buf;
		mh.msg_controllen = sizeof(u.buf);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(ns->fd));
		memcpy(CMSG_DATA(c), ns->fd, sizeof(ns->fd));
	}
	/* a full socket cannot be: one message per task; a child that never comes is fine */
	(void)sendmsg(ns->sock[0], &mh, MSG_NOSIGNAL);
}

/*
 * Namespaces belong to threads, not processes: this thread alone moves into the new
 * network and IPC namespaces, which outlive it through their fds.  They are owned by
 * our user namespace (host root's), as clone3's would be: the task, inside its own
 * user namespace, holds no capability over them.  The user namespace comes from a
 * holder process (make_userns).  The fds go to the set-up child over ns->sock, which
 * it reads only after its mounts: the ~0.7 ms of kernel work here overlaps the
 * caller's start work and then the child's.
 */
static void *ns_thread(void *arg)
{
	struct sbx_ns *ns = arg;
	const char *what = "create the task's network namespace";
	int r = 0;

	if (unshare(CLONE_NEWNET) < 0) {
		r = -errno;
		goto out;
	}
	what = "bring loopback up";
	r = sbx_loopback_up();
	if (r < 0)
		goto out;
	what = "open the task's network namespace";
	ns->fd[SBX_NS_NET] = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (ns->fd[SBX_NS_NET] < 0) {
		r = -errno;
		goto out;
	}
	/* its own SysV IPC and POSIX message queues (~35 us, mostly the mqueue mount) */
	what = "create the task's IPC namespace";
	if (unshare(CLONE_NEWIPC) < 0) {
		r = -errno;
		goto out;
	}
	ns->fd[SBX_NS_IPC] = open("/proc/thread-self/ns/ipc", O_RDONLY | O_CLOEXEC);
	if (ns->fd[SBX_NS_IPC] < 0) {
		r = -errno;
		goto out;
	}
	r = make_userns(ns, &what);
out:
	ns_send(ns, r, what);
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
	for (int i = 0; i < SBX_NS_N; i++)
		ns->fd[i] = -1;
	ns->holder_pidfd = -1;
	ns->id_base = id_base ? id_base : SBX_ID_BASE;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ns->sock) < 0) {
		r = -errno;
		free(ns);
		return r;
	}
	r = pthread_attr_init(&attr);
	if (r != 0)
		goto fail;
	/*
	 * Away from our CPU: on an idle host the scheduler mostly starts a new thread
	 * beside its creator, where its ~0.7 ms in the kernel would only delay ours.
	 * sbx_ns_free lets it run anywhere again before waiting for it.
	 */
	if (cpu >= 0 && sched_getaffinity(0, sizeof(cpus), &cpus) == 0 && CPU_COUNT(&cpus) > 1 &&
	    CPU_ISSET(cpu, &cpus)) {
		CPU_CLR(cpu, &cpus);
		(void)pthread_attr_setaffinity_np(&attr, sizeof(cpus), &cpus);
	}
	r = pthread_create(&ns->thread, &attr, ns_thread, ns);
	pthread_attr_destroy(&attr);
	if (r != 0)
		goto fail;
	*ret_ns = ns;
	return 0;
fail:
	close(ns->sock[0]);
	close(ns->sock[1]);
	free(ns);
	return -r;
}

int sbx_ns_channel(const struct sbx_ns *ns, uint32_t id_base, struct sbx_err *err)
{
	if (ns->id_base != (id_base ? id_base : SBX_ID_BASE))
		return sbx_fail(err, -EINVAL, "the namespaces were made for host ids from %u",
				ns->id_base);
	return ns->sock[1];
}

int sbx_ns_recv(int sock, int ret_fds[SBX_NS_N], struct sbx_ns_msg *ret_msg)
{
	int fds[SBX_NS_N];
	union {
		char buf[CMSG_SPACE(sizeof(fds))];
		struct cmsghdr align;
	} u;
	struct iovec iov = {.iov_base = ret_msg, .iov_len = sizeof(*ret_msg)};
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = u.buf,
			    .msg_controllen = sizeof(u.buf)};
	struct cmsghdr *c;
	ssize_t n;

	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	c = CMSG_FIRSTHDR(&mh);
	if (n == sizeof(*ret_msg) && ret_msg->err == 0 && c && c->cmsg_level == SOL_SOCKET &&
	    c->cmsg_type == SCM_RIGHTS && c->cmsg_len == CMSG_LEN(sizeof(fds)) &&
	    !(mh.msg_flags & MSG_CTRUNC)) {
		memcpy(ret_fds, CMSG_DATA(c), sizeof(fds));
		return 0;
	}
	/* refused: close whatever fds came along */
	for (; c; c = CMSG_NXTHDR(&mh, c)) {
		size_t k =
			c->cmsg_len > CMSG_LEN(0) ? (c->cmsg_len - CMSG_LEN(0)) / sizeof(int) : 0;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		/* k may exceed SBX_NS_N: the kernel fills the control buffer's padding too */
		for (size_t i = 0; i < k; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
			close(fd);
		}
	}
	return n == sizeof(*ret_msg) && ret_msg->err < 0 ? ret_msg->err : -EPROTO;
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
	for (int i = 0; i < SBX_NS_N; i++)
		if (ns->fd[i] >= 0)
			close(ns->fd[i]);
	close(ns->sock[0]);
	close(ns->sock[1]);
	free(ns);
	return NULL;
}
