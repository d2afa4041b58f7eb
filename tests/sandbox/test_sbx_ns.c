/* test_sbx_ns.c -- the namespace thread hands the set-up child a loopback-only network namespace, an IPC namespace and a mapped user namespace, or the step that failed. */
#include "harness.h"

#include "../../sandbox/internal.h"

#include <fcntl.h>
#include <linux/nsfs.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

static int send_msg(int sock, int err, const char *what, const int *fds, int nfds)
{
	struct sbx_ns_msg m = {.err = err};
	union {
		char buf[CMSG_SPACE((SBX_NS_N + 1) * sizeof(int))];
		struct cmsghdr align;
	} u = {0};
	struct iovec iov = {.iov_base = &m, .iov_len = sizeof(m)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

	snprintf(m.what, sizeof(m.what), "%s", what);
	if (nfds) {
		struct cmsghdr *c;

		mh.msg_control = u.buf;
		mh.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, (size_t)nfds * sizeof(int));
	}
	return sendmsg(sock, &mh, 0) == (ssize_t)sizeof(m) ? 0 : -1;
}

/* A failed step reaches the child as its errno and name; no fds come with it. */
static void test_recv_error(void)
{
	int sp[2], fd[SBX_NS_N] = {-1, -1, -1};
	struct sbx_ns_msg m;

	CHECK_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
	CHECK_EQ(send_msg(sp[0], -EPERM, "create the task's network namespace", NULL, 0), 0);
	CHECK_EQ(sbx_ns_recv(sp[1], fd, &m), -EPERM);
	CHECK_STREQ(m.what, "create the task's network namespace");
	CHECK_EQ(fd[0], -1);
	close(sp[0]);
	close(sp[1]);
}

static int count_fds(void)
{
	int n = 0;

	for (int fd = 0; fd < 1024; fd++)
		n += fcntl(fd, F_GETFD) >= 0;
	return n;
}

/* Anything but one whole message with exactly two fds is refused, never half used. */
static void test_recv_malformed(void)
{
	int sp[2], fd[SBX_NS_N] = {-1, -1, -1}, fds[SBX_NS_N + 1];
	struct sbx_ns_msg m;

	int before = count_fds();

	CHECK_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
	for (int i = 0; i < SBX_NS_N + 1; i++)
		fds[i] = sp[0];
	/* success without fds */
	CHECK_EQ(send_msg(sp[0], 0, "", NULL, 0), 0);
	CHECK_EQ(sbx_ns_recv(sp[1], fd, &m), -EPROTO);
	/* one fd too few, one too many */
	CHECK_EQ(send_msg(sp[0], 0, "", fds, SBX_NS_N - 1), 0);
	CHECK_EQ(sbx_ns_recv(sp[1], fd, &m), -EPROTO);
	CHECK_EQ(send_msg(sp[0], 0, "", fds, SBX_NS_N + 1), 0);
	CHECK_EQ(sbx_ns_recv(sp[1], fd, &m), -EPROTO);
	/* an error with fds: the error, and the fds closed */
	CHECK_EQ(send_msg(sp[0], -ENOMEM, "x", fds, SBX_NS_N), 0);
	CHECK_EQ(sbx_ns_recv(sp[1], fd, &m), -ENOMEM);
	/* a short message */
	CHECK_EQ(send(sp[0], "x", 1, 0), 1);
	CHECK_EQ(sbx_ns_recv(sp[1], fd, &m), -EPROTO);
	/* the thread gone without a word */
	close(sp[0]);
	CHECK_EQ(sbx_ns_recv(sp[1], fd, &m), -EPROTO);
	CHECK_EQ(fd[0], -1);
	close(sp[1]);
	/* the fds of refused messages were closed, not leaked */
	CHECK_EQ(count_fds(), before);
}

/*
 * In the task's namespaces: lo is up, and the task (root of its user namespace only)
 * cannot change it.  0, or which check failed.
 */
static int lo_check(void)
{
	struct ifreq ifr = {0};
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return 3;
	memcpy(ifr.ifr_name, "lo", 3);
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0 || !(ifr.ifr_flags & IFF_UP))
		return 4;
	ifr.ifr_flags &= ~IFF_UP;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) == 0 || errno != EPERM)
		return 5;
	return 0;
}

static int ns_type(int fd)
{
	return ioctl(fd, NS_GET_NSTYPE);
}

static int same_ns(int fd, const char *own)
{
	struct stat a, b;

	return fstat(fd, &a) == 0 && stat(own, &b) == 0 && a.st_ino == b.st_ino &&
	       a.st_dev == b.st_dev;
}

/* Read the first line of /proc/PID/FILE into buf. */
static int read_line(pid_t pid, const char *file, char *buf, size_t len)
{
	char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	f = fopen(path, "re");
	if (!f)
		return -1;
	if (!fgets(buf, (int)len, f)) {
		fclose(f);
		return -1;
	}
	fclose(f);
	return 0;
}

/* Lines of /proc/PID/FILE, and -1 unless one of them contains has. */
static int count_lines(pid_t pid, const char *file, const char *has)
{
	char path[64], buf[512];
	int n = 0, found = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(buf, sizeof(buf), f)) {
		n++;
		found |= strstr(buf, has) != NULL;
	}
	fclose(f);
	return found ? n : -1;
}

/*
 * The real thing: the fds a child receives are a new network namespace with loopback
 * up and a new user namespace mapping 0..SBX_ID_COUNT-1 to id_base.
 */
static void test_real_namespaces(void)
{
	struct sbx_ns *ns = NULL;
	struct sbx_err err = {{0}};
	struct sbx_ns_msg m;
	int sock, fd[SBX_NS_N], net, user, st, p[2];
	const uint32_t base = SBX_ID_BASE + 65536;
	char line[128], want[128];
	pid_t pid;

	REQUIRE_ROOT();
	CHECK_EQ(sbx_ns_start(base, &ns), 0);
	/* made for other ids: refused before any child is cloned */
	CHECK(sbx_ns_channel(ns, SBX_ID_BASE, &err) < 0);
	CHECK(strstr(err.msg, "host ids") != NULL);
	sock = sbx_ns_channel(ns, base, &err);
	CHECK(sock >= 0);
	CHECK_EQ(sbx_ns_recv(sock, fd, &m), 0);
	net = fd[SBX_NS_NET];
	user = fd[SBX_NS_USER];
	CHECK_EQ(ns_type(net), CLONE_NEWNET);
	CHECK_EQ(ns_type(fd[SBX_NS_IPC]), CLONE_NEWIPC);
	CHECK_EQ(ns_type(user), CLONE_NEWUSER);
	CHECK(!same_ns(net, "/proc/self/ns/net"));
	CHECK(!same_ns(fd[SBX_NS_IPC], "/proc/self/ns/ipc"));
	CHECK(!same_ns(user, "/proc/self/ns/user"));
	/* the fds arrive close-on-exec: the task never inherits them */
	for (int i = 0; i < SBX_NS_N; i++)
		CHECK(fcntl(fd[i], F_GETFD) & FD_CLOEXEC);

	/* a child joins both and looks around */
	CHECK_EQ(pipe(p), 0);
	pid = fork();
	if (pid == 0) {
		char c;

		if (setns(net, CLONE_NEWNET) < 0 || setns(fd[SBX_NS_IPC], CLONE_NEWIPC) < 0 ||
		    setns(user, CLONE_NEWUSER) < 0)
			_exit(2);
		close(p[1]);
		(void)!read(p[0], &c, 1);
		_exit(lo_check());
	}
	close(p[0]);
	CHECK(pid > 0);
	/* wait until it is in the user namespace: its uid_map is then the namespace's */
	for (int i = 0; i < 2000; i++) {
		struct stat a, b;
		char path[64];

		snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)pid);
		if (stat(path, &a) == 0 && fstat(user, &b) == 0 && a.st_ino == b.st_ino)
			break;
		usleep(1000);
	}
	snprintf(want, sizeof(want), "0 %u %u", base, SBX_ID_COUNT);
	CHECK_EQ(read_line(pid, "uid_map", line, sizeof(line)), 0);
	{
		/* the kernel pads the columns: compare the numbers */
		char *q = line, *end;
		unsigned long v[3];

		for (int i = 0; i < 3; i++, q = end) {
			v[i] = strtoul(q, &end, 10);
			CHECK(end != q);
		}
		snprintf(line, sizeof(line), "%lu %lu %lu", v[0], v[1], v[2]);
	}
	CHECK_STREQ(line, want);
	CHECK_EQ(read_line(pid, "setgroups", line, sizeof(line)), 0);
	CHECK_STREQ(line, "deny\n");
	CHECK_EQ(count_lines(pid, "net/dev", "lo:"), 3); /* two header lines and lo, nothing else */
	close(p[1]);
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	for (int i = 0; i < SBX_NS_N; i++)
		close(fd[i]);
	/* one message per task: nothing more comes */
	CHECK_EQ(recv(sock, line, sizeof(line), MSG_DONTWAIT), -1);
	CHECK_EQ(errno, EAGAIN);
	ns = sbx_ns_free(ns);
	CHECK(ns == NULL);
}

/* Freed without a child ever reading: the thread's message and holder go with it. */
static void test_free_unused(void)
{
	struct sbx_ns *ns = NULL;

	REQUIRE_ROOT();
	for (int i = 0; i < 20; i++) {
		CHECK_EQ(sbx_ns_start(0, &ns), 0);
		sbx_ns_free(ns);
	}
	/* no holder left behind: we have no children */
	CHECK_EQ(waitpid(-1, NULL, WNOHANG | __WALL), -1);
	CHECK_EQ(errno, ECHILD);
}

int main(void)
{
	static const struct test_case cases[] = {
		TEST(test_recv_error),
		TEST(test_recv_malformed),
		TEST(test_real_namespaces),
		TEST(test_free_unused),
		{NULL, NULL},
	};

	return harness_run(cases);
}
