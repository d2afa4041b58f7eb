/* probe.c -- sbx-probe: a static program the sandbox tests run inside the sandbox to attempt escapes. */
/*
 * usage: sbx-probe ATTACK [ARGS...]
 * Prints one line per attempt: "DENIED what: errno" or "ESCAPED what".  Exit 0 when
 * every attempt was denied or contained, 1 if anything got through, 2 on bad usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <dirent.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

static int escaped;

/* Numbers from our own test scripts: 0 on garbage is good enough, but say so. */
static long num(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (end == s)
		fprintf(stderr, "not a number: %s\n", s);
	return v;
}

static void result(const char *what, long ret)
{
	if (ret < 0) {
		printf("DENIED %s: %s (%d)\n", what, strerror(errno), errno);
	} else {
		printf("ESCAPED %s (returned %ld)\n", what, ret);
		escaped = 1;
	}
}

/* Each "NR:ERRNO" must fail with exactly that errno. */
static int deny_all(int argc, char **argv)
{
	for (int i = 0; i < argc; i++) {
		long nr, want;
		long r;

		char *colon = strchr(argv[i], ':');

		if (!colon)
			return 2;
		nr = num(argv[i]);
		want = num(colon + 1);
		errno = 0;
		r = syscall(nr, 0, 0, 0, 0, 0, 0);
		if (r != -1 || errno != want) {
			printf("WRONG syscall %ld: returned %ld errno %d, want errno %ld\n", nr, r,
			       errno, want);
			escaped = 1;
		} else {
			printf("DENIED syscall %ld: errno %d\n", nr, errno);
		}
	}
	return escaped;
}

static void try_socket(const char *what, int family, int type, int proto)
{
	int fd = socket(family, type, proto);

	result(what, fd);
	if (fd >= 0)
		close(fd);
}

static void try_connect(const char *ip, int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	char what[96];

	inet_pton(AF_INET, ip, &sa.sin_addr);
	snprintf(what, sizeof(what), "connect %s:%d", ip, port);
	if (fd < 0) {
		result("socket for connect", fd);
		return;
	}
	result(what, connect(fd, (struct sockaddr *)&sa, sizeof(sa)));
	close(fd);
}

static int count_procs(void)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)))
		if (de->d_name[0] >= '1' && de->d_name[0] <= '9')
			n++;
	closedir(d);
	return n;
}

static int write_path(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_TRUNC);
	int r;

	if (fd < 0)
		return -1;
	r = (int)write(fd, s, strlen(s));
	close(fd);
	return r < 0 ? -1 : 0;
}

/* Write until the filesystem refuses; contained if it stops below max bytes. */
static int fill(const char *dir, long max_mb)
{
	char path[256];
	static char buf[1 << 20];
	long total = 0;
	int fd;

	snprintf(path, sizeof(path), "%s/fill", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		result("open fill file", -1);
		return 1;
	}
	memset(buf, 'x', sizeof(buf));
	for (;;) {
		ssize_t n = write(fd, buf, sizeof(buf));

		if (n <= 0)
			break;
		total += n;
		if (total > max_mb << 20)
			break;
	}
	printf("%s fill of %s stopped at %ld bytes: %s\n",
	       total > max_mb << 20 ? "ESCAPED" : "DENIED", dir, total, strerror(errno));
	close(fd);
	unlink(path);
	return total > max_mb << 20;
}

static int fill_inodes(const char *dir, long max)
{
	char path[256];
	long n;

	for (n = 0; n <= max; n++) {
		int fd;

		snprintf(path, sizeof(path), "%s/i%ld", dir, n);
		fd = open(path, O_WRONLY | O_CREAT, 0644);
		if (fd < 0)
			break;
		close(fd);
	}
	printf("%s inode fill of %s stopped at %ld files: %s\n", n > max ? "ESCAPED" : "DENIED",
	       dir, n, strerror(errno));
	return n > max;
}

static void spin(int procs, double secs)
{
	struct timespec t0, t;

	for (int i = 1; i < procs; i++)
		if (fork() == 0)
			break;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do
		clock_gettime(CLOCK_MONOTONIC, &t);
	while ((double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) / 1e9 < secs);
	while (wait(NULL) > 0)
		;
}

int main(int argc, char **argv)
{
	const char *a = argc > 1 ? argv[1] : "";

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (strcmp(a, "deny-all") == 0)
		return deny_all(argc - 2, argv + 2);
	if (strcmp(a, "mount") == 0) {
		result("mount tmpfs", mount("none", "/tmp", "tmpfs", 0, NULL));
		result("mount proc", mount("proc", "/tmp", "proc", 0, NULL));
		result("mount cgroup", mount("cgroup", "/tmp", "cgroup", 0, "memory"));
		result("remount / rw", mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND, NULL));
		result("umount /proc/kcore mask", umount2("/proc/kcore", MNT_DETACH));
		result("umount /proc", umount2("/proc", MNT_DETACH));
		result("fsopen", syscall(SYS_fsopen, "tmpfs", 0));
		result("open_tree", syscall(SYS_open_tree, AT_FDCWD, "/", 1 /* OPEN_TREE_CLONE */));
		result("move_mount",
		       syscall(SYS_move_mount, AT_FDCWD, "/tmp", AT_FDCWD, "/work", 0));
		result("pivot_root", syscall(SYS_pivot_root, "/tmp", "/tmp"));
		result("chroot", chroot("/tmp"));
	} else if (strcmp(a, "unshare") == 0) {
		long r = unshare(CLONE_NEWUSER);

		result("unshare(CLONE_NEWUSER)", r);
		if (r == 0)
			result("mount after unshare", mount("none", "/tmp", "tmpfs", 0, NULL));
		result("unshare(CLONE_NEWNS)", unshare(CLONE_NEWNS));
		result("unshare(CLONE_NEWNET)", unshare(CLONE_NEWNET));
		result("clone(CLONE_NEWUSER)",
		       syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0));
		result("clone(CLONE_NEWNS|CLONE_NEWPID)",
		       syscall(SYS_clone, CLONE_NEWNS | CLONE_NEWPID | SIGCHLD, 0, 0, 0, 0));
		{
			struct clone_args ca = {.flags = CLONE_NEWUSER, .exit_signal = SIGCHLD};
			long r3 = syscall(SYS_clone3, &ca, sizeof(ca));

			if (r3 == 0)
				_exit(0);
			result("clone3(CLONE_NEWUSER)", r3);
		}
		{
			int fd = open("/proc/self/ns/net", O_RDONLY);

			result("setns(own net ns)", fd < 0 ? -1 : syscall(SYS_setns, fd, 0));
		}
		result("setns(fd 0)", syscall(SYS_setns, 0, 0));
	} else if (strcmp(a, "kernel") == 0) {
		result("keyctl", syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3, 0));
		result("add_key", syscall(SYS_add_key, "user", "x", "y", 1, -3));
		result("bpf", syscall(SYS_bpf, 0, NULL, 0));
		result("perf_event_open", syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0));
		result("io_uring_setup", syscall(SYS_io_uring_setup, 8, NULL));
		result("userfaultfd", syscall(SYS_userfaultfd, 0));
		result("init_module", syscall(SYS_init_module, NULL, 0, ""));
		result("finit_module", syscall(SYS_finit_module, 0, "", 0));
		result("delete_module", syscall(SYS_delete_module, "loop", 0));
		result("kexec_load", syscall(SYS_kexec_load, 0, 0, NULL, 0));
		result("reboot", syscall(SYS_reboot, 0, 0, 0, NULL));
		result("swapon", syscall(SYS_swapon, "/tmp/x", 0));
		result("syslog", syscall(SYS_syslog, 3, NULL, 0));
		result("iopl", syscall(SYS_iopl, 3));
		result("ioperm", syscall(SYS_ioperm, 0x80, 1, 1));
		result("ptrace(TRACEME)", syscall(SYS_ptrace, 0, 0, 0, 0));
		result("process_vm_readv", syscall(SYS_process_vm_readv, 1, NULL, 0, NULL, 0, 0));
		result("open_by_handle_at", syscall(SYS_open_by_handle_at, AT_FDCWD, NULL, 0));
		result("unknown syscall 1023", syscall(1023, 0, 0, 0));
	} else if (strcmp(a, "ptrace") == 0) {
		long pid = argc > 2 ? num(argv[2]) : 1;

		result("kill host pid", kill((pid_t)pid, 0));
		result("ptrace(ATTACH host pid)",
		       syscall(SYS_ptrace, 16 /* PTRACE_ATTACH */, pid, 0, 0));
		result("ptrace(SEIZE pid 1)", syscall(SYS_ptrace, 0x4206, 1, 0, 0));
		result("process_vm_readv pid 1",
		       syscall(SYS_process_vm_readv, 1, NULL, 0, NULL, 0, 0));
	} else if (strcmp(a, "sockets") == 0) {
		try_socket("AF_ALG", 38, SOCK_SEQPACKET, 0);
		try_socket("AF_VSOCK", 40, SOCK_STREAM, 0);
		try_socket("AF_PACKET", AF_PACKET, SOCK_RAW, 0);
		try_socket("AF_INET raw", AF_INET, SOCK_RAW, IPPROTO_ICMP);
		try_socket("AF_INET6 raw", AF_INET6, SOCK_RAW, IPPROTO_ICMPV6);
		try_socket("AF_INET SOCK_PACKET", AF_INET, SOCK_PACKET, 0);
		try_socket("AF_KEY", 15, SOCK_RAW, 2);
		try_socket("AF_NETLINK audit", AF_NETLINK, SOCK_RAW, 9);
		try_socket("AF_BLUETOOTH", 31, SOCK_STREAM, 0);
		try_socket("family 100", 100, SOCK_STREAM, 0);
	} else if (strcmp(a, "connect") == 0) {
		for (int i = 2; i + 1 < argc; i += 2)
			try_connect(argv[i], (int)num(argv[i + 1]));
	} else if (strcmp(a, "files") == 0) {
		char buf[4096];
		int fd;
		ssize_t n;

		result("write core_pattern",
		       write_path("/proc/sys/kernel/core_pattern", "|/tmp/x"));
		result("write sysrq-trigger", write_path("/proc/sysrq-trigger", "h"));
		result("write release_agent", write_path("/sys/fs/cgroup/release_agent", "/tmp/x"));
		result("write memory release_agent",
		       write_path("/sys/fs/cgroup/memory/release_agent", "/tmp/x"));
		result("mkdir /sys for cgroupfs", mkdir("/sys", 0755));
		fd = open("/proc/kcore", O_RDONLY);
		n = fd < 0 ? -1 : read(fd, buf, sizeof(buf));
		if (n > 0)
			result("read /proc/kcore", n);
		else
			printf("DENIED read /proc/kcore: %zd bytes\n", n);
		if (fd >= 0)
			close(fd);
		fd = open("/proc/self/exe", O_WRONLY);
		result("open /proc/self/exe for writing", fd);
		fd = open("/proc/1/exe", O_WRONLY);
		result("open /proc/1/exe for writing", fd);
		result("write into the rootfs", write_path("/bin/busybox", "x"));
		result("create in the rootfs", open("/evil", O_WRONLY | O_CREAT, 0644));
		result("mknod /tmp/mem", mknod("/tmp/mem", S_IFCHR | 0600, makedev(1, 1)));
	} else if (strcmp(a, "procs") == 0) {
		int n = count_procs();

		printf("%s %d processes visible\n", n == 1 ? "DENIED host processes:" : "ESCAPED",
		       n);
		escaped = n != 1;
		printf("pid %d\n", (int)getpid());
	} else if (strcmp(a, "ids") == 0) {
		printf("uid %d euid %d gid %d egid %d\n", (int)getuid(), (int)geteuid(),
		       (int)getgid(), (int)getegid());
		escaped = geteuid() == 0 && getuid() != 0;
		if (escaped)
			printf("ESCAPED setuid binary gave euid 0\n");
	} else if (strcmp(a, "fds") == 0) {
		DIR *d = opendir("/proc/self/fd");
		struct dirent *de;
		int n = 0;

		while (d && (de = readdir(d))) {
			char p[64];
			int fd;

			if (de->d_name[0] == '.')
				continue;
			fd = (int)num(de->d_name);
			if (fd == dirfd(d))
				continue;
			n++;
			snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
			if (fd > 2) {
				printf("ESCAPED leaked fd %d\n", fd);
				escaped = 1;
				if (chdir(p) == 0)
					printf("ESCAPED chdir through fd %d\n", fd);
			}
		}
		if (d)
			closedir(d);
		printf("%d fds open\n", n);
	} else if (strcmp(a, "tiocsti") == 0) {
		char c = 'x';
		int fd = open("/dev/tty", O_RDWR);

		result("TIOCSTI on stdin", ioctl(0, TIOCSTI, &c));
		result("TIOCSTI on stdout", ioctl(1, TIOCSTI, &c));
		result("TIOCSTI with high bits",
		       syscall(SYS_ioctl, 0, 0x100000000ul | TIOCSTI, &c));
		result("open /dev/tty", fd);
		if (fd >= 0)
			result("TIOCSTI on /dev/tty", ioctl(fd, TIOCSTI, &c));
	} else if (strcmp(a, "fill") == 0 && argc > 3) {
		return fill(argv[2], num(argv[3]));
	} else if (strcmp(a, "inodes") == 0 && argc > 3) {
		return fill_inodes(argv[2], num(argv[3]));
	} else if (strcmp(a, "membomb") == 0) {
		size_t mb = argc > 2 ? (size_t)num(argv[2]) : 1024;

		for (size_t i = 0; i < mb; i++) {
			char *p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

			if (p == MAP_FAILED)
				break;
			memset(p, 1, 1 << 20);
		}
		printf("ESCAPED allocated %zu MiB\n", mb);
		return 1;
	} else if (strcmp(a, "spin") == 0 && argc > 3) {
		spin((int)num(argv[2]), strtod(argv[3], NULL));
		return 0;
	} else if (strcmp(a, "daemon") == 0) {
		/* double fork + setsid, then the task itself exits */
		if (fork() == 0) {
			setsid();
			if (fork() == 0) {
				char *args[] = {"sleep", argc > 2 ? argv[2] : "1000", NULL};

				execv("/bin/sleep", args);
				_exit(1);
			}
			_exit(0);
		}
		wait(NULL);
		printf("daemon started\n");
		return 0;
	} else if (strcmp(a, "yes") == 0) {
		static char buf[1 << 16];

		memset(buf, 'y', sizeof(buf));
		for (long long i = 0; i < 10LL * 1024 * 1024 * 1024 / (long long)sizeof(buf); i++)
			if (write(1, buf, sizeof(buf)) < 0)
				return 1;
		return 0;
	} else {
		fprintf(stderr, "usage: sbx-probe ATTACK [ARGS...] (see tests/sandbox/probe.c)\n");
		return 2;
	}
	return escaped;
}
