/* meter-work.c -- workloads with known shapes for the meter tests and benchmarks (spin, fork storm, daemon, net...). */
#include <aicn/compiler.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char usage_text[] =
	"Usage: meter-work MODE ARGS...\n"
	"  spin THREADS SECONDS       THREADS threads spin until each used SECONDS of CPU\n"
	"  forkstorm N                fork N short-lived processes (100 at a time), reap them\n"
	"  daemon SECONDS             double-fork a setsid() daemon that spins SECONDS of CPU, exit\n"
	"  sleep SECONDS              sleep (CPU near zero)\n"
	"  nested CGDIR SECONDS       make CGDIR/sub (CGDIR \"self\": our cgroup), spin in a child moved there\n"
	"  net BYTES                  send BYTES over loopback TCP to a receiver process\n"
	"  report FILE SECONDS        spin SECONDS of wall time; on SIGUSR1 append our CPU ns to FILE\n"
	"  pingpong ROUNDS            two processes bounce a byte over pipes ROUNDS times\n"
	"  exitheavy MIB THREADS      touch MIB MiB, then THREADS threads exit at once with the\n"
	"                             process: the kernel unmaps it all on the way out\n";

static double now_s(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Spin until this thread has used SECONDS of CPU (so the figure does not depend on the load). */
static void spin_for(double seconds)
{
	double end = now_s(CLOCK_THREAD_CPUTIME_ID) + seconds;
	volatile uint64_t x = 0;

	while (now_s(CLOCK_THREAD_CPUTIME_ID) < end)
		for (int i = 0; i < 10000; i++)
			x += (uint64_t)i;
}

static void *spin_thread(void *arg)
{
	spin_for(*(double *)arg);
	return NULL;
}

static int do_spin(int threads, double seconds)
{
	pthread_t t[64];

	if (threads < 1 || threads > 64)
		return 2;
	for (int i = 1; i < threads; i++)
		if (pthread_create(&t[i], NULL, spin_thread, &seconds) != 0)
			return 1;
	spin_for(seconds);
	for (int i = 1; i < threads; i++)
		pthread_join(t[i], NULL);
	return 0;
}

static int do_forkstorm(long n)
{
	long started = 0;

	while (started < n) {
		long batch = MIN(100L, n - started);

		for (long i = 0; i < batch; i++) {
			pid_t p = fork();

			if (p < 0)
				return 1;
			if (p == 0)
				_exit(0);
		}
		for (long i = 0; i < batch; i++)
			if (wait(NULL) < 0)
				return 1;
		started += batch;
	}
	return 0;
}

static int do_daemon(double seconds)
{
	pid_t p = fork();

	if (p < 0)
		return 1;
	if (p == 0) {
		pid_t q = fork();

		if (q < 0)
			_exit(1);
		if (q == 0) {
			setsid();
			/* outlive both parents, then spin */
			usleep(200000);
			spin_for(seconds);
			_exit(0);
		}
		_exit(0);
	}
	return waitpid(p, NULL, 0) == p ? 0 : 1;
}

/* Our own cgroup v2 directory: the cgroup2 mount point plus the "0::" line of /proc/self/cgroup. */
static int self_cgdir(char *buf, size_t size)
{
	char line[PATH_MAX], mnt[PATH_MAX] = "", rel[PATH_MAX] = "";
	FILE *f = fopen("/proc/self/mountinfo", "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		char *sep = strstr(line, " - cgroup2 ");
		char a[64], b[64], c[64], root[PATH_MAX], point[PATH_MAX];

		if (sep &&
		    sscanf(line, "%63s %63s %63s %4095s %4095s", a, b, c, root, point) == 5) {
			snprintf(mnt, sizeof(mnt), "%s", point);
			break;
		}
	}
	fclose(f);
	f = fopen("/proc/self/cgroup", "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "0::", 3) == 0) {
			line[strcspn(line, "\n")] = '\0';
			snprintf(rel, sizeof(rel), "%s", line + 3);
		}
	fclose(f);
	if (!mnt[0] || !rel[0])
		return -1;
	return (size_t)snprintf(buf, size, "%s%s", mnt, strcmp(rel, "/") ? rel : "") < size ? 0
											    : -1;
}

static int do_nested(const char *cgdir, double seconds)
{
	char sub[PATH_MAX], procs[PATH_MAX + 16], self[PATH_MAX];
	pid_t p;
	int st;

	if (strcmp(cgdir, "self") == 0) {
		if (self_cgdir(self, sizeof(self)) < 0)
			return 1;
		cgdir = self;
	}
	snprintf(sub, sizeof(sub), "%.*s/sub", PATH_MAX - 8, cgdir);
	if (mkdir(sub, 0755) < 0) {
		perror(sub);
		return 1;
	}
	snprintf(procs, sizeof(procs), "%s/cgroup.procs", sub);
	p = fork();
	if (p < 0)
		return 1;
	if (p == 0) {
		int fd = open(procs, O_WRONLY | O_CLOEXEC);

		if (fd < 0 || write(fd, "0", 1) != 1) {
			perror(procs);
			_exit(1);
		}
		close(fd);
		spin_for(seconds);
		_exit(0);
	}
	spin_for(seconds / 4);
	if (waitpid(p, &st, 0) != p || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return 1;
	return 0;
}

static int do_net(long bytes)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);
	char buf[65536];
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), c, st;
	pid_t p;

	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 1) < 0 ||
	    getsockname(l, (struct sockaddr *)&a, &alen) < 0)
		return 1;
	p = fork();
	if (p < 0)
		return 1;
	if (p == 0) {
		int s = accept(l, NULL, NULL);
		long got = 0;
		ssize_t n;

		while (s >= 0 && (n = read(s, buf, sizeof(buf))) > 0)
			got += n;
		_exit(got == bytes ? 0 : 1);
	}
	close(l);
	c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&a, sizeof(a)) < 0)
		return 1;
	memset(buf, 'x', sizeof(buf));
	for (long sent = 0; sent < bytes;) {
		ssize_t n = write(c, buf, (size_t)MIN((long)sizeof(buf), bytes - sent));

		if (n <= 0)
			return 1;
		sent += n;
	}
	close(c);
	return waitpid(p, &st, 0) == p && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}

static volatile sig_atomic_t report_now;

static void on_usr1(int sig)
{
	(void)sig;
	report_now = 1;
}

static int do_report(const char *file, double seconds)
{
	double end = now_s(CLOCK_MONOTONIC) + seconds;
	volatile uint64_t x = 0;
	int fd = open(file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

	if (fd < 0)
		return 1;
	signal(SIGUSR1, on_usr1);
	while (now_s(CLOCK_MONOTONIC) < end) {
		for (int i = 0; i < 1000; i++)
			x += (uint64_t)i;
		if (report_now) {
			struct timespec ts;
			char line[64];
			int n;

			clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
			report_now = 0;
			n = snprintf(line, sizeof(line), "%lld\n",
				     (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
			if (write(fd, line, (size_t)n) != n)
				return 1;
		}
	}
	close(fd);
	return 0;
}

static int do_pingpong(long rounds)
{
	int a[2], b[2];
	char c = 0;
	pid_t p;

	if (pipe(a) < 0 || pipe(b) < 0)
		return 1;
	p = fork();
	if (p < 0)
		return 1;
	if (p == 0) {
		for (long i = 0; i < rounds; i++)
			if (read(a[0], &c, 1) != 1 || write(b[1], &c, 1) != 1)
				_exit(1);
		_exit(0);
	}
	for (long i = 0; i < rounds; i++)
		if (write(a[1], &c, 1) != 1 || read(b[0], &c, 1) != 1)
			return 1;
	return waitpid(p, NULL, 0) == p ? 0 : 1;
}

/* A number argument; anything malformed ends the program with status 2. */
static double num(const char *s)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || v < 0) {
		fprintf(stderr, "meter-work: bad number '%s'\n", s);
		exit(2);
	}
	return v;
}

static void *park_thread(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

/*
 * CPU spent after the process's threads began to exit: tearing down a large
 * address space runs in the last exiting thread, after sched_process_exit.
 */
static int do_exitheavy(long mib, int threads)
{
	size_t len = (size_t)mib << 20;
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	pthread_t t;

	if (p == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	for (size_t i = 0; i < len; i += 4096)
		p[i] = 1;
	for (int i = 1; i < threads; i++)
		if (pthread_create(&t, NULL, park_thread, NULL)) {
			fputs("meter-work: pthread_create failed\n", stderr);
			return 1;
		}
	_exit(0); /* exit_group: every thread exits, the last one unmaps */
}

int main(int argc, char **argv)
{
	if (argc >= 4 && strcmp(argv[1], "spin") == 0)
		return do_spin((int)num(argv[2]), num(argv[3]));
	if (argc >= 3 && strcmp(argv[1], "forkstorm") == 0)
		return do_forkstorm((long)num(argv[2]));
	if (argc >= 3 && strcmp(argv[1], "daemon") == 0)
		return do_daemon(num(argv[2]));
	if (argc >= 3 && strcmp(argv[1], "sleep") == 0)
		return usleep((useconds_t)(num(argv[2]) * 1e6)) == 0 ? 0 : 1;
	if (argc >= 4 && strcmp(argv[1], "nested") == 0)
		return do_nested(argv[2], num(argv[3]));
	if (argc >= 3 && strcmp(argv[1], "net") == 0)
		return do_net((long)num(argv[2]));
	if (argc >= 4 && strcmp(argv[1], "report") == 0)
		return do_report(argv[2], num(argv[3]));
	if (argc >= 3 && strcmp(argv[1], "pingpong") == 0)
		return do_pingpong((long)num(argv[2]));
	if (argc >= 4 && strcmp(argv[1], "exitheavy") == 0)
		return do_exitheavy((long)num(argv[2]), (int)num(argv[3]));
	fputs(usage_text, stderr);
	return 2;
}
