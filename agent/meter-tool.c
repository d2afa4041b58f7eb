/* meter-tool.c -- aicn-meter: run a command in a metered cgroup and print its usage record; watch tracked cgroups. */
#include <aicn/canon.h>
#include <aicn/cgroup.h>
#include <aicn/compiler.h>
#include <aicn/log.h>
#include <aicn/meter.h>
#include <aicn/version.h>

#include <bpf/libbpf.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

DEFINE_TRIVIAL_CLEANUP_FUNC(cJSON, cJSON_Delete);

#define EXIT_TOOL 125	    /* aicn-meter itself failed (as env(1), timeout(1)) */
#define EXIT_CANNOT_RUN 126 /* the command was found but could not be executed */
#define EXIT_NOT_FOUND 127  /* the command was not found */
#define SETTLE_MS 12000 /* a thread past a full "dying" map waits for its free (lazy RCU: 10 s) */

#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif

/* struct clone_args of clone3(2), version 2 (with the cgroup field). */
struct clone3_args {
	uint64_t flags;
	uint64_t pidfd;
	uint64_t child_tid;
	uint64_t parent_tid;
	uint64_t exit_signal;
	uint64_t stack;
	uint64_t stack_size;
	uint64_t tls;
	uint64_t set_tid;
	uint64_t set_tid_size;
	uint64_t cgroup;
};

static const char usage_text[] =
	"Usage: aicn-meter COMMAND [OPTIONS]\n"
	"       aicn-meter --version | --help\n"
	"\n"
	"Meter the exact CPU time, run-queue wait, context switches, process events and\n"
	"network traffic of a cgroup subtree with eBPF, from the scheduler's own clock.\n"
	"\n"
	"Commands:\n"
	"  run [OPTIONS] -- CMD [ARG...]\n"
	"      Run CMD in a fresh cgroup under our own cgroup, wait until it and every\n"
	"      process it left behind have ended, print its JSON usage record and remove\n"
	"      the cgroup.  Exits with CMD's exit status (128+N if killed by signal N).\n"
	"  wait --name NAME [OPTIONS]\n"
	"      Finish what a killed `run` started: wait until the tracked cgroup NAME is\n"
	"      empty, print its record, untrack and remove it.\n"
	"  read (--name NAME | --id ID) [OPTIONS]\n"
	"      Print the live figures of a tracked cgroup as JSON.\n"
	"  top [--interval SECONDS] [--iterations N]\n"
	"      Show every tracked cgroup's CPU use, refreshed like top(1).\n"
	"  track PATH | untrack (PATH | ID)\n"
	"      Start or stop metering an existing cgroup v2 directory.\n"
	"  status\n"
	"      Print the pin directory's state and the drop counters as JSON.\n"
	"  cleanup\n"
	"      Detach the programs and remove every pin (uninstall).  Metering stops.\n"
	"\n"
	"Options:\n"
	"  --pin-dir DIR        where programs and maps are pinned (default $" METER_PIN_DIR_ENV
	" or " METER_PIN_DIR_DEFAULT ")\n"
	"  --cgroup-parent P    create or find the cgroup under P, relative to our own\n"
	"                       cgroup (in the v2 tree: /sys/fs/cgroup or .../unified)\n"
	"  --name NAME          the task cgroup's name (run: default aicn-meter-PID)\n"
	"  -o, --output FILE    write the record to FILE instead of standard output\n"
	"  --kill-on-exit       run: when CMD exits, kill what it left in the cgroup\n"
	"  --timeout SECONDS    run/wait: kill the cgroup after SECONDS\n"
	"  -h, --help           this text\n"
	"  -V, --version        print the version and exit\n"
	"\n"
	"The record (one line of canonical JSON) holds cpu_ns, the kernel's own figure\n"
	"kernel_cpu_ns (cpu.stat usage_usec * 1000) and crosscheck: \"ok\" when they agree\n"
	"within 0.01% + 2 us, else \"mismatch\" (also logged).  Needs root: it loads eBPF\n"
	"programs and creates cgroups.  Programs and maps stay pinned while anything is\n"
	"tracked, so metering survives the death of this process; `run` removes the pins\n"
	"when it loaded them and nothing else uses them.\n"
	"\n"
	"Exit status: CMD's status for run; 0 for the other commands; 125 when aicn-meter\n"
	"itself fails; 126 when CMD cannot be executed; 127 when CMD is not found.\n"
	"Environment: " METER_PIN_DIR_ENV ", AICN_LOG_LEVEL (err|warn|info|debug).\n";

struct opts {
	const char *pin_dir;
	const char *parent;
	const char *name;
	const char *output;
	uint64_t id;
	int kill_on_exit;
	unsigned timeout_s;
	double interval_s;
	long iterations;
};

static int libbpf_log(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char buf[1024];
	size_t n;

	if (log_get_level() < LOG_LVL_DEBUG && level != LIBBPF_WARN)
		return 0;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	while (n && buf[n - 1] == '\n')
		buf[--n] = '\0';
	/* libbpf's warnings repeat what our own error says; keep them for debug */
	log_debug("libbpf: %s", buf);
	return 0;
}

static uint64_t monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int parse_u64(const char *s, uint64_t *ret)
{
	char *end;
	unsigned long long v;

	if (!s || !*s || *s == '-')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end)
		return -EINVAL;
	*ret = v;
	return 0;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	enum {
		O_PIN = 256,
		O_PARENT,
		O_NAME,
		O_KILL,
		O_TIMEOUT,
		O_ID,
		O_INTERVAL,
		O_ITER
	};
	static const struct option longopts[] = {
		{"pin-dir", required_argument, NULL, O_PIN},
		{"cgroup-parent", required_argument, NULL, O_PARENT},
		{"name", required_argument, NULL, O_NAME},
		{"output", required_argument, NULL, 'o'},
		{"kill-on-exit", no_argument, NULL, O_KILL},
		{"timeout", required_argument, NULL, O_TIMEOUT},
		{"id", required_argument, NULL, O_ID},
		{"interval", required_argument, NULL, O_INTERVAL},
		{"iterations", required_argument, NULL, O_ITER},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	uint64_t v;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "+o:h", longopts, NULL)) != -1) {
		switch (c) {
		case O_PIN:
			o->pin_dir = optarg;
			break;
		case O_PARENT:
			o->parent = optarg;
			break;
		case O_NAME:
			o->name = optarg;
			break;
		case 'o':
			o->output = optarg;
			break;
		case O_KILL:
			o->kill_on_exit = 1;
			break;
		case O_TIMEOUT:
			if (parse_u64(optarg, &v) < 0 || v == 0 || v > 30 * 86400) {
				log_err("--timeout: expected 1..2592000 seconds, got '%s'", optarg);
				return -EINVAL;
			}
			o->timeout_s = (unsigned)v;
			break;
		case O_ID:
			if (parse_u64(optarg, &o->id) < 0 || o->id == 0) {
				log_err("--id: expected a cgroup id, got '%s'", optarg);
				return -EINVAL;
			}
			break;
		case O_INTERVAL: {
			char *end;

			o->interval_s = strtod(optarg, &end);
			if (*end || !(o->interval_s >= 0.05 && o->interval_s <= 3600)) {
				log_err("--interval: expected 0.05..3600 seconds, got '%s'",
					optarg);
				return -EINVAL;
			}
			break;
		}
		case O_ITER:
			if (parse_u64(optarg, &v) < 0 || v == 0 || v > 1000000000) {
				log_err("--iterations: expected a positive count, got '%s'",
					optarg);
				return -EINVAL;
			}
			o->iterations = (long)v;
			break;
		case 'h':
			fputs(usage_text, stdout);
			exit(0);
		default:
			fputs("Try 'aicn-meter --help'.\n", stderr);
			return -EINVAL;
		}
	}
	if (!o->pin_dir)
		o->pin_dir = meter_default_pin_dir();
	return optind;
}

static int open_meter(const struct opts *o, unsigned flags, struct meter **ret)
{
	char reason[512] = "";
	int r = meter_open(o->pin_dir, flags, ret, reason, sizeof(reason));

	if (r < 0)
		return log_errno(LOG_LVL_ERR, r, "cannot open the meter: %s",
				 reason[0] ? reason : o->pin_dir);
	return 0;
}

/* Write one record line to FILE (atomically replaced) or standard output. */
static int emit(const struct opts *o, cJSON *rec)
{
	_cleanup_free_ char *text = NULL;
	size_t len;
	int r = canon_print(rec, &text, &len);

	if (r < 0)
		return log_errno(LOG_LVL_ERR, r, "cannot format the record");
	if (o->output) {
		char tmp[PATH_MAX];
		FILE *f;

		if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", o->output) >= sizeof(tmp))
			return log_errno(LOG_LVL_ERR, -ENAMETOOLONG, "%s", o->output);
		f = fopen(tmp, "we");
		if (!f)
			return log_errno(LOG_LVL_ERR, -errno, "cannot write %s", tmp);
		fprintf(f, "%s\n", text);
		if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
			r = -errno;
			fclose(f);
			unlink(tmp);
			return log_errno(LOG_LVL_ERR, r, "cannot write %s", tmp);
		}
		fclose(f);
		if (rename(tmp, o->output) < 0) {
			r = -errno;
			unlink(tmp);
			return log_errno(LOG_LVL_ERR, r, "cannot write %s", o->output);
		}
		return 0;
	}
	printf("%s\n", text);
	return fflush(stdout) == 0 ? 0 : -EIO;
}

static int add_usage(cJSON *rec, const struct meter_usage *u)
{
	int r = 0;

	r |= canon_add_u64(rec, "cgroup_id", u->cgroup_id);
	r |= canon_add_u64(rec, "cpu_ns", u->cpu_ns);
	r |= canon_add_u64(rec, "rq_wait_ns", u->rq_wait_ns);
	r |= canon_add_u64(rec, "switches_voluntary", u->vol_switches);
	r |= canon_add_u64(rec, "switches_involuntary", u->invol_switches);
	r |= canon_add_u64(rec, "procs_forked", u->procs_forked);
	r |= canon_add_u64(rec, "threads_born", u->threads_born);
	r |= canon_add_u64(rec, "procs_execed", u->procs_execed);
	r |= canon_add_u64(rec, "procs_exited", u->procs_exited);
	r |= canon_add_i64(rec, "threads_live", u->threads_live);
	r |= canon_add_u64(rec, "threads_peak", u->threads_peak);
	r |= canon_add_u64(rec, "threads_lost", u->threads_lost);
	r |= canon_add_u64(rec, "net_rx_bytes", u->net_rx_bytes);
	r |= canon_add_u64(rec, "net_rx_packets", u->net_rx_packets);
	r |= canon_add_u64(rec, "net_tx_bytes", u->net_tx_bytes);
	r |= canon_add_u64(rec, "net_tx_packets", u->net_tx_packets);
	if (!cJSON_AddBoolToObject(rec, "consistent", u->consistent))
		r = -ENOMEM;
	return r ? -ENOMEM : 0;
}

static int add_drops(cJSON *rec, struct meter *m)
{
	struct meter_drops d;
	int r = 0;

	meter_drops(m, &d);
	r |= canon_add_u64(rec, "drops_task_storage", d.task_storage);
	r |= canon_add_u64(rec, "drops_depth", d.depth);
	r |= canon_add_u64(rec, "drops_stats_missing", d.stats_missing);
	r |= canon_add_u64(rec, "drops_dying_full", d.dying_full);
	return r ? -ENOMEM : 0;
}

struct ending {
	int have_status; /* 0: the command's status is unknown (wait after a restart) */
	int status;	 /* waitpid() status */
	int killed_by;	 /* signal that made us kill the cgroup, or 0 */
	int timed_out;
	uint64_t wall_ns;
};

/* The final record of a task cgroup that has emptied; the cgroup is still there. */
static int final_record(const struct opts *o, struct meter *m, const struct cg *cg, char **cmd,
			const struct ending *e)
{
	_cleanup_(cJSON_Deletep) cJSON *rec = cJSON_CreateObject();
	struct meter_usage u;
	uint64_t kernel_ns = 0;
	int64_t diff = 0;
	int ok, r;

	r = meter_settle(m, cg->id, SETTLE_MS);
	if (r < 0)
		log_errno(LOG_LVL_WARN, r, "threads of %s still being accounted", cg->v2_path);
	r = meter_read(m, cg->id, &u);
	if (r < 0)
		return log_errno(LOG_LVL_ERR, r, "cannot read the meter for %s", cg->v2_path);
	r = cg_cpu_usage_ns(cg, &kernel_ns);
	if (r < 0)
		return log_errno(LOG_LVL_ERR, r, "cannot read cpu.stat of %s", cg->v2_path);
	ok = meter_crosscheck(u.cpu_ns, kernel_ns, &diff);
	if (!ok)
		log_warn("cross-check mismatch for %s: meter %" PRIu64 " ns, cpu.stat %" PRIu64
			 " ns, difference %" PRId64 " ns",
			 cg->v2_path, u.cpu_ns, kernel_ns, diff);
	if (!rec)
		return -ENOMEM;
	r = add_usage(rec, &u);
	if (r == 0)
		r = add_drops(rec, m);
	if (r == 0)
		r = canon_add_u64(rec, "kernel_cpu_ns", kernel_ns);
	if (r == 0)
		r = canon_add_i64(rec, "crosscheck_diff_ns", diff);
	if (r == 0)
		r = canon_add_u64(rec, "wall_ns", e->wall_ns);
	if (r < 0 || !cJSON_AddStringToObject(rec, "crosscheck", ok ? "ok" : "mismatch") ||
	    !cJSON_AddStringToObject(rec, "cgroup", cg->v2_path) ||
	    !cJSON_AddBoolToObject(rec, "timed_out", e->timed_out))
		return -ENOMEM;
	if (cmd) {
		cJSON *a = cJSON_AddArrayToObject(rec, "command");

		for (char **p = cmd; a && *p; p++)
			cJSON_AddItemToArray(a, cJSON_CreateString(*p));
		if (!a)
			return -ENOMEM;
	}
	if (e->have_status && WIFEXITED(e->status)) {
		r = canon_add_i64(rec, "exit_code", WEXITSTATUS(e->status));
		if (r == 0 && !cJSON_AddNullToObject(rec, "signal"))
			r = -ENOMEM;
	} else if (e->have_status && WIFSIGNALED(e->status)) {
		r = canon_add_i64(rec, "signal", WTERMSIG(e->status));
		if (r == 0 && !cJSON_AddNullToObject(rec, "exit_code"))
			r = -ENOMEM;
	} else {
		r = cJSON_AddNullToObject(rec, "exit_code") && cJSON_AddNullToObject(rec, "signal")
			    ? 0
			    : -ENOMEM;
	}
	if (r < 0)
		return r;
	return emit(o, rec);
}

static int read_populated(int events_fd)
{
	char buf[256];
	ssize_t n = pread(events_fd, buf, sizeof(buf) - 1, 0);
	char *p;

	if (n < 0)
		return -errno;
	buf[n] = '\0';
	p = strstr(buf, "populated ");
	if (!p)
		return -EIO;
	return p[10] == '1';
}

static int open_events(const struct cg *cg)
{
	char path[PATH_MAX];
	int fd;

	if ((size_t)snprintf(path, sizeof(path), "%s/cgroup.events", cg->v2_path) >= sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/*
 * Wait until the cgroup is empty (and, with child > 0, the child was reaped),
 * reaping every child (we are a subreaper) and reacting to signals and the timeout.
 */
static int wait_task(const struct opts *o, const struct cg *cg, pid_t child, int sig_fd,
		     uint64_t start_ns, struct ending *e)
{
	_cleanup_close_ int ev_fd = open_events(cg);
	uint64_t deadline = o->timeout_s ? start_ns + (uint64_t)o->timeout_s * 1000000000ULL : 0;
	int child_done = child <= 0, killed = 0;

	if (ev_fd < 0)
		return log_errno(LOG_LVL_ERR, ev_fd, "cannot watch %s", cg->v2_path);
	for (;;) {
		struct pollfd p[2] = {{.fd = sig_fd, .events = POLLIN},
				      {.fd = ev_fd, .events = POLLPRI}};
		int timeout_ms = 1000, pop;

		if (deadline) {
			uint64_t now = monotonic_ns();

			if (now >= deadline && !killed) {
				log_warn("timeout: killing %s", cg->v2_path);
				e->timed_out = 1;
				cg_kill(cg);
				killed = 1;
			} else if (now < deadline && (deadline - now) / 1000000 < 1000) {
				timeout_ms = (int)((deadline - now) / 1000000) + 1;
			}
		}
		if (sig_fd >= 0) {
			struct signalfd_siginfo si;

			while (read(sig_fd, &si, sizeof(si)) == sizeof(si)) {
				if (si.ssi_signo == SIGCHLD)
					continue;
				if (!killed) {
					log_info("signal %u: killing %s", si.ssi_signo,
						 cg->v2_path);
					e->killed_by = (int)si.ssi_signo;
					cg_kill(cg);
					killed = 1;
				}
			}
		}
		for (;;) {
			int st;
			pid_t pid = waitpid(-1, &st, WNOHANG);

			if (pid <= 0)
				break;
			if (pid == child) {
				e->have_status = 1;
				e->status = st;
				child_done = 1;
				if (o->kill_on_exit && !killed) {
					cg_kill(cg);
					killed = 1;
				}
			}
		}
		pop = read_populated(ev_fd);
		if (pop < 0)
			return log_errno(LOG_LVL_ERR, pop, "cannot read %s/cgroup.events",
					 cg->v2_path);
		if (!pop && child_done)
			break;
		if (poll(p, sig_fd >= 0 ? 2 : 1, timeout_ms) < 0 && errno != EINTR)
			return log_errno(LOG_LVL_ERR, -errno, "poll");
	}
	e->wall_ns = monotonic_ns() - start_ns;
	return 0;
}

/* Fork CMD straight into the cgroup: it never runs a single instruction outside it. */
static pid_t spawn_in(const struct cg *cg, char **cmd, const sigset_t *child_mask, int *ret_errno)
{
	_cleanup_close_ int cg_fd = open(cg->v2_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int pfd[2];
	struct clone3_args args = {.flags = CLONE_INTO_CGROUP, .exit_signal = SIGCHLD};
	pid_t pid;
	int err = 0;
	ssize_t n;

	if (cg_fd < 0)
		return -errno;
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -errno;
	args.cgroup = (uint64_t)cg_fd;
	pid = (pid_t)syscall(SYS_clone3, &args, sizeof(args));
	if (pid < 0) {
		err = -errno;
		close(pfd[0]);
		close(pfd[1]);
		return err;
	}
	if (pid == 0) {
		close(pfd[0]);
		sigprocmask(SIG_SETMASK, child_mask, NULL);
		signal(SIGPIPE, SIG_DFL);
		execvp(cmd[0], cmd);
		err = errno;
		if (write(pfd[1], &err, sizeof(err)) < 0)
			_exit(EXIT_CANNOT_RUN);
		_exit(err == ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_RUN);
	}
	close(pfd[1]);
	do
		n = read(pfd[0], &err, sizeof(err));
	while (n < 0 && errno == EINTR);
	close(pfd[0]);
	*ret_errno = n == sizeof(err) ? err : 0;
	return pid;
}

static int cmd_run(int argc, char **argv)
{
	struct opts o = {0};
	_cleanup_free_ char *name = NULL;
	_cleanup_close_ int sig_fd = -1;
	struct meter *m = NULL;
	struct cg_host host;
	struct cg *cg = NULL;
	struct ending e = {0};
	sigset_t mask, old;
	uint64_t id = 0, start;
	int exec_err = 0, code = EXIT_TOOL, r, idx;
	pid_t child;

	idx = parse_opts(argc, argv, &o);
	if (idx < 0)
		return EXIT_TOOL;
	if (idx >= argc) {
		log_err("run: no command given (aicn-meter run [OPTIONS] -- CMD [ARG...])");
		return EXIT_TOOL;
	}
	r = cg_host_detect(&host);
	if (r < 0) {
		log_errno(LOG_LVL_ERR, r, "cannot find the cgroup hierarchies");
		return EXIT_TOOL;
	}
	if (o.name)
		name = strdup(o.name);
	else if (asprintf(&name, "aicn-meter-%d", (int)getpid()) < 0)
		name = NULL;
	if (!name)
		return EXIT_TOOL;
	/* check the command exists before we touch anything */
	if (!strchr(argv[idx], '/')) {
		_cleanup_free_ char *path = NULL;
		const char *pathenv = getenv("PATH");
		int found = 0;

		for (const char *p = pathenv ? pathenv : "/usr/bin:/bin"; p && !found;) {
			const char *colon = strchr(p, ':');
			size_t len = colon ? (size_t)(colon - p) : strlen(p);

			free(path);
			if (asprintf(&path, "%.*s/%s", (int)len, len ? p : ".", argv[idx]) < 0)
				return EXIT_TOOL;
			found = access(path, X_OK) == 0;
			p = colon ? colon + 1 : NULL;
		}
		if (!found) {
			log_err("%s: command not found", argv[idx]);
			return EXIT_NOT_FOUND;
		}
	}
	if (open_meter(&o, METER_CREATE, &m) < 0)
		return EXIT_TOOL;
	r = cg_create(&host, o.parent, name, 0, &cg);
	if (r < 0) {
		log_errno(LOG_LVL_ERR, r, "cannot create cgroup %s%s%s under %s%s", o.parent ?: "",
			  o.parent ? "/" : "", name, host.v2_mount,
			  strcmp(host.v2_self, "/") ? host.v2_self : "");
		goto out;
	}
	r = meter_track(m, cg->v2_path, &id);
	if (r < 0) {
		log_errno(LOG_LVL_ERR, r, "cannot meter %s", cg->v2_path);
		goto out;
	}
	log_info("metering %s (cgroup id %" PRIu64 ")", cg->v2_path, id);
	/* orphaned daemons are re-parented to us, so nothing is left unreaped */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, &old);
	sig_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sig_fd < 0) {
		log_errno(LOG_LVL_ERR, -errno, "signalfd");
		goto out;
	}
	start = monotonic_ns();
	child = spawn_in(cg, argv + idx, &old, &exec_err);
	if (child < 0) {
		log_errno(LOG_LVL_ERR, child, "cannot start %s in %s", argv[idx], cg->v2_path);
		goto out;
	}
	if (exec_err) {
		log_errno(LOG_LVL_ERR, -exec_err, "%s", argv[idx]);
		waitpid(child, NULL, 0);
		code = exec_err == ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_RUN;
		goto out;
	}
	r = wait_task(&o, cg, child, sig_fd, start, &e);
	if (r < 0)
		goto out;
	r = final_record(&o, m, cg, argv + idx, &e);
	if (r < 0)
		goto out;
	if (e.have_status)
		code = WIFEXITED(e.status)     ? WEXITSTATUS(e.status)
		       : WIFSIGNALED(e.status) ? 128 + WTERMSIG(e.status)
					       : EXIT_TOOL;
out:
	if (id)
		meter_untrack(m, id);
	if (cg) {
		const char *path = cg->v2_path;

		r = cg_destroy(cg);
		if (r < 0)
			log_errno(LOG_LVL_ERR, r, "cannot remove the task cgroup %s", path);
	}
	meter_release(m);
	return code;
}

static int find_cg(const struct opts *o, struct cg **ret)
{
	struct cg_host host;
	int r;

	if (!o->name) {
		log_err("--name is required");
		return -EINVAL;
	}
	r = cg_host_detect(&host);
	if (r < 0)
		return log_errno(LOG_LVL_ERR, r, "cannot find the cgroup hierarchies");
	r = cg_open(&host, o->parent, o->name, 0, ret);
	if (r < 0)
		return log_errno(LOG_LVL_ERR, r, "no cgroup %s%s%s under %s%s", o->parent ?: "",
				 o->parent ? "/" : "", o->name, host.v2_mount,
				 strcmp(host.v2_self, "/") ? host.v2_self : "");
	return 0;
}

static int cmd_wait(int argc, char **argv)
{
	struct opts o = {0};
	struct meter *m = NULL;
	struct cg *cg = NULL;
	struct meter_usage u;
	struct ending e = {0};
	int r, code = EXIT_TOOL;

	if (parse_opts(argc, argv, &o) < 0 || find_cg(&o, &cg) < 0 || !cg)
		return EXIT_TOOL;
	if (open_meter(&o, 0, &m) < 0) {
		cg_free(cg);
		return EXIT_TOOL;
	}
	r = meter_read(m, cg->id, &u);
	if (r < 0) {
		log_errno(LOG_LVL_ERR, r, "%s is not metered", cg->v2_path);
		cg_free(cg);
		meter_free(m);
		return EXIT_TOOL;
	}
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	r = wait_task(&o, cg, 0, -1, u.tracked_at_ns, &e);
	if (r == 0 && final_record(&o, m, cg, NULL, &e) == 0)
		code = 0;
	meter_untrack(m, cg->id);
	r = cg_destroy(cg);
	if (r < 0)
		log_errno(LOG_LVL_ERR, r, "cannot remove the task cgroup");
	meter_release(m);
	return code;
}

static int cmd_read(int argc, char **argv)
{
	_cleanup_(cJSON_Deletep) cJSON *rec = cJSON_CreateObject();
	struct opts o = {0};
	struct meter *m = NULL;
	struct cg *cg = NULL;
	struct meter_usage u;
	uint64_t id, kernel_ns;
	int r;

	if (parse_opts(argc, argv, &o) < 0 || !rec)
		return EXIT_TOOL;
	if (!o.id && find_cg(&o, &cg) < 0)
		return EXIT_TOOL;
	id = cg ? cg->id : o.id;
	if (open_meter(&o, 0, &m) < 0) {
		cg_free(cg);
		return EXIT_TOOL;
	}
	r = meter_read(m, id, &u);
	if (r < 0) {
		log_errno(LOG_LVL_ERR, r, "cgroup %" PRIu64 " is not metered", id);
		goto out;
	}
	r = add_usage(rec, &u);
	if (r == 0)
		r = canon_add_u64(rec, "wall_ns", monotonic_ns() - u.tracked_at_ns);
	if (r == 0 && cg && cg_cpu_usage_ns(cg, &kernel_ns) == 0)
		r = canon_add_u64(rec, "kernel_cpu_ns", kernel_ns);
	if (r == 0)
		r = emit(&o, rec);
out:
	cg_free(cg);
	meter_free(m);
	return r < 0 ? EXIT_TOOL : 0;
}

/* Path of a cgroup from its id (a kernfs file handle), or "?" if it cannot be found. */
static void path_of_id(int mount_fd, uint64_t id, char *buf, size_t size)
{
	struct {
		struct file_handle fh;
		uint64_t id;
	} h = {.fh.handle_bytes = sizeof(uint64_t), .fh.handle_type = 0xfe /* FILEID_KERNFS */};
	char link[64];
	_cleanup_close_ int fd = -1;
	ssize_t n;

	memcpy(h.fh.f_handle, &id, sizeof(id));
	snprintf(buf, size, "?");
	fd = open_by_handle_at(mount_fd, &h.fh, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, buf, size - 1);
	buf[n > 0 ? n : 0] = '\0';
}

#define TOP_MAX 512

static int cmd_top(int argc, char **argv)
{
	struct opts o = {.interval_s = 1.0};
	struct meter *m = NULL;
	struct cg_host host;
	_cleanup_close_ int mount_fd = -1;
	static uint64_t ids[TOP_MAX], prev_id[TOP_MAX], prev_cpu[TOP_MAX];
	size_t nprev = 0;
	uint64_t prev_t = monotonic_ns();

	if (parse_opts(argc, argv, &o) < 0)
		return EXIT_TOOL;
	if (cg_host_detect(&host) == 0)
		mount_fd = open(host.v2_mount, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (open_meter(&o, 0, &m) < 0)
		return EXIT_TOOL;
	/* it == -1 is a silent first sample, so the first screen already shows rates */
	for (long it = -1; !o.iterations || it < o.iterations; it++) {
		uint64_t now;
		int n = meter_list(m, ids, TOP_MAX);
		size_t cur = 0;
		static uint64_t cur_id[TOP_MAX], cur_cpu[TOP_MAX];

		if (n < 0) {
			log_errno(LOG_LVL_ERR, n, "cannot list tracked cgroups");
			meter_free(m);
			return EXIT_TOOL;
		}
		now = monotonic_ns();
		if (it >= 0)
			printf("%s%-12s %7s %12s %12s %7s %6s %12s %12s  %s\n", it > 0 ? "\n" : "",
			       "CGROUP-ID", "CPU%", "CPU-S", "WAIT-S", "THREADS", "PEAK",
			       "TX-BYTES", "RX-BYTES", "PATH");
		for (int i = 0; i < n && i < TOP_MAX; i++) {
			struct meter_usage u;
			char path[PATH_MAX];
			double pct = 0;

			if (meter_read(m, ids[i], &u) < 0)
				continue;
			for (size_t j = 0; j < nprev; j++)
				if (prev_id[j] == ids[i] && now > prev_t && u.cpu_ns >= prev_cpu[j])
					pct = 100.0 * (double)(u.cpu_ns - prev_cpu[j]) /
					      (double)(now - prev_t);
			cur_id[cur] = ids[i];
			cur_cpu[cur++] = u.cpu_ns;
			if (it < 0)
				continue;
			path_of_id(mount_fd, ids[i], path, sizeof(path));
			printf("%-12" PRIu64 " %7.1f %12.3f %12.3f %7" PRId64 " %6" PRIu64
			       " %12" PRIu64 " %12" PRIu64 "  %s\n",
			       ids[i], pct, (double)u.cpu_ns / 1e9, (double)u.rq_wait_ns / 1e9,
			       u.threads_live, u.threads_peak, u.net_tx_bytes, u.net_rx_bytes,
			       path);
		}
		fflush(stdout);
		memcpy(prev_id, cur_id, cur * sizeof(uint64_t));
		memcpy(prev_cpu, cur_cpu, cur * sizeof(uint64_t));
		nprev = cur;
		prev_t = now;
		if (o.iterations && it + 1 >= o.iterations)
			break;
		nanosleep(&(struct timespec){.tv_sec = (time_t)o.interval_s,
					     .tv_nsec = (long)((o.interval_s -
								(double)(time_t)o.interval_s) *
							       1e9)},
			  NULL);
	}
	meter_free(m);
	return 0;
}

static int cmd_track(int argc, char **argv, int track)
{
	struct opts o = {0};
	struct meter *m = NULL;
	uint64_t id = 0;
	int idx = parse_opts(argc, argv, &o), r;

	if (idx < 0)
		return EXIT_TOOL;
	if (idx != argc - 1) {
		log_err("%s: expected one cgroup v2 path%s", track ? "track" : "untrack",
			track ? "" : " or id");
		return EXIT_TOOL;
	}
	if (!track && parse_u64(argv[idx], &id) < 0 && cg_id_of_path(argv[idx], &id) < 0) {
		log_err("untrack: %s is neither a cgroup id nor a cgroup path", argv[idx]);
		return EXIT_TOOL;
	}
	if (open_meter(&o, track ? METER_CREATE | METER_PERSIST : 0, &m) < 0)
		return EXIT_TOOL;
	r = track ? meter_track(m, argv[idx], &id) : meter_untrack(m, id);
	if (r < 0)
		log_errno(LOG_LVL_ERR, r, "cannot %s %s", track ? "track" : "untrack", argv[idx]);
	else if (track)
		printf("%" PRIu64 "\n", id);
	meter_free(m);
	return r < 0 ? EXIT_TOOL : 0;
}

static int cmd_status(int argc, char **argv)
{
	_cleanup_(cJSON_Deletep) cJSON *rec = cJSON_CreateObject();
	struct opts o = {0};
	struct meter *m = NULL;
	int n, r;

	if (parse_opts(argc, argv, &o) < 0 || !rec)
		return EXIT_TOOL;
	if (open_meter(&o, 0, &m) < 0)
		return EXIT_TOOL;
	n = meter_list(m, NULL, 0);
	r = n < 0 ? n : canon_add_u64(rec, "tracked", (uint64_t)n);
	if (r == 0)
		r = add_drops(rec, m);
	if (r == 0 && !cJSON_AddStringToObject(rec, "pin_dir", meter_pin_dir(m)))
		r = -ENOMEM;
	if (r == 0)
		r = emit(&o, rec);
	meter_free(m);
	return r < 0 ? EXIT_TOOL : 0;
}

static int cmd_cleanup(int argc, char **argv)
{
	struct opts o = {0};
	int r;

	if (parse_opts(argc, argv, &o) < 0)
		return EXIT_TOOL;
	r = meter_cleanup(o.pin_dir);
	if (r < 0) {
		log_errno(LOG_LVL_ERR, r, "cannot remove the pins in %s", o.pin_dir);
		return EXIT_TOOL;
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *cmd;

	log_setup("aicn-meter");
	libbpf_set_print(libbpf_log);
	if (argc < 2) {
		fputs(usage_text, stderr);
		return EXIT_TOOL;
	}
	cmd = argv[1];
	if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
		fputs(usage_text, stdout);
		return 0;
	}
	if (strcmp(cmd, "-V") == 0 || strcmp(cmd, "--version") == 0) {
		printf("aicn-meter %s\n", AICN_VERSION);
		return 0;
	}
	argc--;
	argv++;
	if (strcmp(cmd, "run") == 0)
		return cmd_run(argc, argv);
	if (strcmp(cmd, "wait") == 0)
		return cmd_wait(argc, argv);
	if (strcmp(cmd, "read") == 0)
		return cmd_read(argc, argv);
	if (strcmp(cmd, "top") == 0)
		return cmd_top(argc, argv);
	if (strcmp(cmd, "track") == 0)
		return cmd_track(argc, argv, 1);
	if (strcmp(cmd, "untrack") == 0)
		return cmd_track(argc, argv, 0);
	if (strcmp(cmd, "status") == 0)
		return cmd_status(argc, argv);
	if (strcmp(cmd, "cleanup") == 0)
		return cmd_cleanup(argc, argv);
	log_err("unknown command '%s'", cmd);
	fputs("Try 'aicn-meter --help'.\n", stderr);
	return EXIT_TOOL;
}
