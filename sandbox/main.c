/* main.c -- aicn-sandbox: run one OCI image or rootfs by hand, unpack images, show the seccomp policy. */
#include <aicn/log.h>
#include <aicn/meter.h>
#include <aicn/sandbox.h>
#include <aicn/version.h>

#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_CACHE "/var/cache/aicn/images"

static const char usage_text[] =
	"usage: aicn-sandbox run [OPTIONS] IMAGE [-- COMMAND [ARG...]]\n"
	"       aicn-sandbox unpack [--cache DIR] IMAGE\n"
	"       aicn-sandbox policy\n"
	"       aicn-sandbox --version | --help\n"
	"\n"
	"Run one container task the way aicn-agent runs renters' tasks: user, pid, mount,\n"
	"net, uts, ipc and cgroup namespaces; task root mapped to host ids %u..%u (never\n"
	"host root); pivot_root into the image's rootfs mounted read-only, with private\n"
	"writable /work and /tmp; fresh /proc with masked paths; minimal /dev; loopback-only\n"
	"network; no capabilities, no_new_privs and a seccomp filter; CPU, memory and pids\n"
	"limits in a cgroup under aicn-sandbox's own cgroup.  A limit that cannot be enforced\n"
	"refuses the run; nothing ever runs unlimited.\n"
	"\n"
	"IMAGE is an OCI image layout directory, an OCI layout tar (skopeo oci-archive:, umoci,\n"
	"docker save >= 25), or a plain rootfs directory.  Layouts are unpacked once into the\n"
	"cache, keyed by manifest digest; every blob's sha256 is checked.  COMMAND replaces the\n"
	"image's Cmd (its Entrypoint stays); without either, run fails.\n"
	"\n"
	"run options:\n"
	"  --cache DIR         rootfs cache (default $AICN_SANDBOX_CACHE or " DEFAULT_CACHE ")\n"
	"  --cores N           CPU limit in cores, fractions allowed (default: unlimited)\n"
	"  --memory SIZE       memory limit, swap 0 (default 512M)\n"
	"  --pids N            process/thread limit (default 256)\n"
	"  --timeout SECONDS   wall-clock limit; the whole cgroup is killed (default none)\n"
	"  --output-limit SIZE stdout+stderr limit; the task is killed beyond it (default 16M)\n"
	"  --tmp-size SIZE     size of the /tmp tmpfs (default 64M)\n"
	"  --work-size SIZE    size of the private /work tmpfs (default 64M)\n"
	"  --inodes N          inodes of each tmpfs (default 16384)\n"
	"  --nofile N          RLIMIT_NOFILE (default 1024)\n"
	"  --work DIR          bind host DIR as /work instead of a private tmpfs (given to the\n"
	"                      task's user; its size is whatever DIR's filesystem allows)\n"
	"  -e, --env K=V       add or replace an environment variable (repeatable)\n"
	"  -u, --user U[:G]    user and group, numeric or names from the image (default image's)\n"
	"  -w, --cwd DIR       working directory (default image's WorkingDir, else /work)\n"
	"  --hostname NAME     hostname (default aicn)\n"
	"  --cgroup-parent P   create the task cgroup under P (relative to our own cgroup)\n"
	"  --result FILE       write the JSON result to FILE instead of stderr\n"
	"  --meter             meter the task's exact CPU time with the eBPF meter, loading it\n"
	"                      if it is not pinned yet (by default it is used only when an\n"
	"                      agent or aicn-meter already has it pinned; $AICN_METER_PIN_DIR)\n"
	"  --no-meter          do not use the eBPF meter\n"
	"  -q, --quiet         do not print the JSON result\n"
	"  -h, --help          this text\n"
	"\n"
	"SIZE takes K, M, G suffixes (powers of 1024).  On SIGINT or SIGTERM the task is\n"
	"cancelled (its whole cgroup killed).  The JSON result has status (exited, signaled,\n"
	"oom, timeout, canceled, output_limit, setup_failed), exit_code, signal, wall and CPU\n"
	"times, memory peak, OOM kills, output bytes, the cgroup id and the limits applied;\n"
	"with the meter, cpu_ns is the meter's exact figure (cpu_source \"meter\") beside the\n"
	"kernel's cpu.stat (cgroup_cpu_ns) and their crosscheck.\n"
	"\n"
	"exit status: the task's own exit status; 128+N if killed by signal N; 124 timeout;\n"
	"137 OOM kill; 130 cancelled; 141 output limit; 125 the sandbox could not run it.\n"
	"\n"
	"--version (or -V) prints \"aicn-sandbox VERSION\".\n"
	"unpack prints the image's rootfs path and digest as JSON (unpacking it if needed).\n"
	"policy prints the seccomp table: every named syscall and what it gets; any syscall\n"
	"not listed returns ENOSYS.\n"
	"See docs/sandbox.md.\n";

static void usage(FILE *f)
{
	fprintf(f, usage_text, SBX_ID_BASE, SBX_ID_BASE + SBX_ID_COUNT - 1);
}

static int parse_size(const char *s, uint64_t *ret)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || v < 0 || !isfinite(v))
		return -EINVAL;
	switch (*end) {
	case 'k':
	case 'K':
		v *= 1024;
		end++;
		break;
	case 'm':
	case 'M':
		v *= 1024 * 1024;
		end++;
		break;
	case 'g':
	case 'G':
		v *= 1024.0 * 1024 * 1024;
		end++;
		break;
	default:
		break;
	}
	if (*end == 'i' || *end == 'B')
		end++;
	if (*end || v > 9e18)
		return -EINVAL;
	*ret = (uint64_t)v;
	return 0;
}

static int parse_num(const char *s, double *ret)
{
	char *end;

	errno = 0;
	*ret = strtod(s, &end);
	return errno || end == s || *end || *ret < 0 || !isfinite(*ret) ? -EINVAL : 0;
}

static struct sbx_task *volatile current_task;

static void on_signal(int sig)
{
	(void)sig;
	if (current_task)
		sbx_task_cancel(current_task);
}

static const char *cache_dir(const char *opt)
{
	const char *env = getenv("AICN_SANDBOX_CACHE");

	return opt ? opt : env && env[0] ? env : DEFAULT_CACHE;
}

static int cmd_policy(void)
{
	size_t n;
	const struct sbx_sc_rule *p = sbx_seccomp_policy(&n);
	static const char *const act[] = {"allow", "EPERM", "ENOSYS", "args"};

	printf("%-26s %-7s %s\n", "syscall", "action", "why");
	for (size_t i = 0; i < n; i++)
		printf("%-26s %-7s %s\n", p[i].name, act[p[i].action], p[i].why ? p[i].why : "");
	printf("%-26s %-7s %s\n", "(any other)", "ENOSYS", "unknown or future syscalls");
	return 0;
}

static int cmd_unpack(int argc, char **argv)
{
	const char *cache = NULL;
	struct sbx_image *img = NULL;
	struct sbx_err err = {{0}};
	int r;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--cache") == 0 && i + 1 < argc) {
			cache = argv[++i];
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		} else if (argv[i][0] == '-' || i != argc - 1) {
			usage(stderr);
			return 2;
		} else {
			r = sbx_image_open(cache_dir(cache), argv[i], &img, &err);
			if (r < 0) {
				log_err("%s: %s", argv[i], err.msg[0] ? err.msg : strerror(-r));
				return 1;
			}
			printf("{\"rootfs\":\"%s\",\"digest\":\"%s\",\"unpacked\":%s}\n",
			       img->rootfs, img->digest, img->unpacked ? "true" : "false");
			sbx_image_free(img);
			return 0;
		}
	}
	usage(stderr);
	return 2;
}

static char **build_env(char **image_env, char **extra, size_t n_extra)
{
	size_t n = 0, cap = 2 + n_extra;
	char **env;
	int has_path = 0;

	for (size_t i = 0; image_env && image_env[i]; i++)
		cap++;
	env = calloc(cap, sizeof(*env));
	if (!env)
		return NULL;
	for (size_t i = 0; image_env && image_env[i]; i++)
		env[n++] = image_env[i];
	for (size_t i = 0; i < n_extra; i++) {
		size_t klen = strcspn(extra[i], "=") + 1;
		size_t j;

		for (j = 0; j < n; j++)
			if (strncmp(env[j], extra[i], klen) == 0)
				break;
		env[j] = extra[i];
		if (j == n)
			n++;
	}
	for (size_t i = 0; i < n; i++)
		if (strncmp(env[i], "PATH=", 5) == 0)
			has_path = 1;
	if (!has_path)
		env[n++] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	env[n] = NULL;
	return env;
}

static int exit_status_of(const struct sbx_result *res)
{
	switch (res->end) {
	case SBX_END_EXITED:
		return res->exit_code;
	case SBX_END_SIGNALED:
		return 128 + res->signal;
	case SBX_END_OOM:
		return 137;
	case SBX_END_TIMEOUT:
		return 124;
	case SBX_END_CANCELED:
		return 130;
	case SBX_END_OUTPUT_LIMIT:
		return 141;
	case SBX_END_SETUP_FAILED:
	default:
		return 125;
	}
}

/* The meter's figures for the task, when it was metered. */
struct metered {
	int have;	     /* 1 if the meter read succeeded */
	uint64_t cpu_ns;     /* exact CPU time */
	uint64_t rq_wait_ns; /* run-queue wait */
	int crosscheck;	     /* meter within 0.01% + 2 us of cpu.stat */
	int64_t diff_ns;     /* meter - cpu.stat */
};

static char *result_json(const struct sbx_result *res, const struct sbx_limits *lim,
			 const char *digest, const struct metered *mt)
{
	cJSON *j = cJSON_CreateObject(), *l;
	char *s;

	if (!j)
		return NULL;
	cJSON_AddStringToObject(j, "status", sbx_end_name(res->end));
	cJSON_AddNumberToObject(j, "exit_code", res->end == SBX_END_EXITED ? res->exit_code : -1);
	cJSON_AddNumberToObject(j, "signal", res->signal);
	cJSON_AddBoolToObject(j, "oom", res->end == SBX_END_OOM);
	cJSON_AddBoolToObject(j, "timeout", res->end == SBX_END_TIMEOUT);
	cJSON_AddBoolToObject(j, "canceled", res->end == SBX_END_CANCELED);
	cJSON_AddBoolToObject(j, "output_limited", res->end == SBX_END_OUTPUT_LIMIT);
	cJSON_AddNumberToObject(j, "wall_ns", (double)res->wall_ns);
	cJSON_AddNumberToObject(j, "cpu_ns", (double)(mt->have ? mt->cpu_ns : res->cpu_ns));
	cJSON_AddStringToObject(j, "cpu_source", mt->have ? "meter" : "cgroup");
	cJSON_AddNumberToObject(j, "cgroup_cpu_ns", (double)res->cpu_ns);
	if (mt->have) {
		cJSON_AddNumberToObject(j, "rq_wait_ns", (double)mt->rq_wait_ns);
		cJSON_AddBoolToObject(j, "meter_crosscheck", mt->crosscheck);
		cJSON_AddNumberToObject(j, "meter_diff_ns", (double)mt->diff_ns);
	}
	cJSON_AddNumberToObject(j, "memory_peak", (double)res->memory_peak);
	cJSON_AddNumberToObject(j, "oom_kills", (double)res->oom_kills);
	cJSON_AddNumberToObject(j, "output_bytes", (double)res->output_bytes);
	cJSON_AddNumberToObject(j, "cgroup_id", (double)res->cgroup_id);
	cJSON_AddStringToObject(j, "image", digest ? digest : "");
	if (res->end == SBX_END_SETUP_FAILED)
		cJSON_AddStringToObject(j, "error", res->setup_error);
	l = cJSON_AddObjectToObject(j, "limits");
	if (l) {
		cJSON_AddNumberToObject(l, "cores", lim->cores);
		cJSON_AddNumberToObject(l, "memory_bytes", (double)lim->memory_bytes);
		cJSON_AddNumberToObject(l, "pids", (double)lim->pids);
		cJSON_AddNumberToObject(l, "timeout_ms", (double)lim->timeout_ms);
		cJSON_AddNumberToObject(l, "output_bytes", (double)lim->output_bytes);
		cJSON_AddNumberToObject(l, "tmp_bytes", (double)lim->tmp_bytes);
		cJSON_AddNumberToObject(l, "work_bytes", (double)lim->work_bytes);
	}
	s = cJSON_PrintUnformatted(j);
	cJSON_Delete(j);
	return s;
}

enum {
	OPT_CACHE = 256,
	OPT_CORES,
	OPT_MEMORY,
	OPT_PIDS,
	OPT_TIMEOUT,
	OPT_OUTPUT,
	OPT_TMP,
	OPT_WORKSIZE,
	OPT_INODES,
	OPT_NOFILE,
	OPT_WORK,
	OPT_HOSTNAME,
	OPT_CGPARENT,
	OPT_RESULT,
	OPT_METER,
	OPT_NO_METER,
};

/* Open the eBPF meter: existing pins, or (want == 2) load it.  Returns NULL without one. */
static struct meter *meter_for_task(int want, int *ret_created)
{
	struct meter *m = NULL;
	char reason[256] = "";
	int r;

	*ret_created = 0;
	if (!want)
		return NULL;
	r = meter_open(meter_default_pin_dir(), 0, &m, reason, sizeof(reason));
	if (r == -ENOENT && want == 2) {
		r = meter_open(meter_default_pin_dir(), METER_CREATE, &m, reason, sizeof(reason));
		*ret_created = r == 0;
	}
	if (r < 0) {
		if (want == 2)
			log_errno(LOG_LVL_WARN, r,
				  "no eBPF meter (%s): CPU time from cpu.stat only",
				  reason[0] ? reason : "unavailable");
		return NULL;
	}
	return m;
}

static int cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{"cache", required_argument, NULL, OPT_CACHE},
		{"cores", required_argument, NULL, OPT_CORES},
		{"memory", required_argument, NULL, OPT_MEMORY},
		{"pids", required_argument, NULL, OPT_PIDS},
		{"timeout", required_argument, NULL, OPT_TIMEOUT},
		{"output-limit", required_argument, NULL, OPT_OUTPUT},
		{"tmp-size", required_argument, NULL, OPT_TMP},
		{"work-size", required_argument, NULL, OPT_WORKSIZE},
		{"inodes", required_argument, NULL, OPT_INODES},
		{"nofile", required_argument, NULL, OPT_NOFILE},
		{"work", required_argument, NULL, OPT_WORK},
		{"env", required_argument, NULL, 'e'},
		{"user", required_argument, NULL, 'u'},
		{"cwd", required_argument, NULL, 'w'},
		{"hostname", required_argument, NULL, OPT_HOSTNAME},
		{"cgroup-parent", required_argument, NULL, OPT_CGPARENT},
		{"result", required_argument, NULL, OPT_RESULT},
		{"meter", no_argument, NULL, OPT_METER},
		{"no-meter", no_argument, NULL, OPT_NO_METER},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	struct sbx_config cfg = {.stdin_fd = -1,
				 .stdout_fd = STDOUT_FILENO,
				 .stderr_fd = STDERR_FILENO,
				 .net_loopback = 1};
	const char *cache = NULL, *result_path = NULL;
	char **extra_env = calloc((size_t)argc + 1, sizeof(char *)), **env = NULL, **cmd = NULL;
	size_t n_env = 0;
	struct sbx_image *img = NULL;
	struct sbx_err err = {{0}};
	struct sbx_result res = {0};
	struct cg_host host;
	struct sbx_task *task = NULL;
	int quiet = 0, c, r, rc = 125, want_meter = 1, meter_created = 0;
	struct meter *meter = NULL;
	struct cg *mcg = NULL;
	uint64_t mid = 0;
	struct metered mt = {0};
	double d;
	uint64_t u = 0;

	if (!extra_env)
		return 125;
	while ((c = getopt_long(argc, argv, "+e:u:w:qh", opts, NULL)) != -1) {
		r = 0;
		switch (c) {
		case OPT_CACHE:
			cache = optarg;
			break;
		case OPT_CORES:
			r = parse_num(optarg, &d);
			cfg.limits.cores = d;
			if (r == 0 && (d <= 0 || d > 4096))
				r = -EINVAL;
			break;
		case OPT_MEMORY:
			r = parse_size(optarg, &cfg.limits.memory_bytes);
			break;
		case OPT_PIDS:
			r = parse_size(optarg, &cfg.limits.pids);
			break;
		case OPT_TIMEOUT:
			r = parse_num(optarg, &d);
			cfg.limits.timeout_ms = (uint64_t)(d * 1000.0);
			break;
		case OPT_OUTPUT:
			r = parse_size(optarg, &cfg.limits.output_bytes);
			break;
		case OPT_TMP:
			r = parse_size(optarg, &cfg.limits.tmp_bytes);
			break;
		case OPT_WORKSIZE:
			r = parse_size(optarg, &cfg.limits.work_bytes);
			break;
		case OPT_INODES:
			r = parse_size(optarg, &cfg.limits.inodes);
			break;
		case OPT_NOFILE:
			r = parse_size(optarg, &u);
			cfg.limits.nofile = u;
			break;
		case OPT_WORK:
			cfg.work_dir = optarg;
			break;
		case 'e':
			if (!strchr(optarg, '=')) {
				log_err("--env wants K=V, not \"%s\"", optarg);
				goto out;
			}
			extra_env[n_env++] = optarg;
			break;
		case 'u':
			cfg.user = optarg;
			break;
		case 'w':
			cfg.cwd = optarg;
			break;
		case OPT_HOSTNAME:
			cfg.hostname = optarg;
			break;
		case OPT_CGPARENT:
			cfg.cg_parent = optarg;
			break;
		case OPT_RESULT:
			result_path = optarg;
			break;
		case OPT_METER:
			want_meter = 2;
			break;
		case OPT_NO_METER:
			want_meter = 0;
			break;
		case 'q':
			quiet = 1;
			break;
		case 'h':
			usage(stdout);
			rc = 0;
			goto out;
		default:
			usage(stderr);
			rc = 2;
			goto out;
		}
		if (r < 0) {
			log_err("invalid value \"%s\" for an option", optarg);
			rc = 2;
			goto out;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		rc = 2;
		goto out;
	}
	/* the kernel sets the namespaces up while we open the image and make cgroups */
	if (sbx_ns_start(0, &cfg.ns) < 0)
		cfg.ns = NULL; /* then sbx_task_start makes them */
	r = sbx_image_open(cache_dir(cache), argv[optind], &img, &err);
	if (r < 0) {
		log_err("%s: %s", argv[optind], err.msg[0] ? err.msg : strerror(-r));
		goto out;
	}
	optind++;
	if (optind < argc && strcmp(argv[optind], "--") == 0)
		optind++;
	{
		size_t ne = 0, nc = optind < argc ? (size_t)(argc - optind) : 0, k = 0;

		for (; img->entrypoint && img->entrypoint[ne]; ne++)
			;
		if (!nc)
			for (; img->cmd && img->cmd[nc]; nc++)
				;
		cmd = calloc(ne + nc + 1, sizeof(*cmd));
		if (!cmd)
			goto out;
		for (size_t i = 0; i < ne; i++)
			cmd[k++] = img->entrypoint[i];
		for (size_t i = 0; i < nc; i++)
			cmd[k++] = optind < argc ? argv[optind + (int)i] : img->cmd[i];
		if (!k) {
			log_err("no command: the image has no Entrypoint or Cmd, give one after --");
			rc = 2;
			goto out;
		}
	}
	env = build_env(img->env, extra_env, n_env);
	if (!env)
		goto out;
	r = cg_host_detect(&host);
	if (r < 0) {
		log_errno(LOG_LVL_ERR, r, "cannot inspect this host's cgroups");
		goto out;
	}
	cfg.rootfs = img->rootfs;
	cfg.argv = cmd;
	cfg.envp = env;
	if (!cfg.user)
		cfg.user = img->user;
	if (!cfg.cwd)
		cfg.cwd = img->workdir;
	cfg.host = &host;

	meter = meter_for_task(want_meter, &meter_created);
	if (meter) {
		/* our own task cgroup, tracked before anything enters it */
		char name[64];

		snprintf(name, sizeof(name), "sbx-%d-m", (int)getpid());
		r = cg_create(&host, cfg.cg_parent, name, host.layout == CG_LAYOUT_HYBRID, &mcg);
		if (r < 0) {
			log_errno(LOG_LVL_ERR, r, "cannot create the task cgroup %s", name);
			goto out;
		}
		r = meter_track(meter, mcg->v2_path, &mid);
		if (r < 0) {
			log_errno(LOG_LVL_WARN, r, "cannot meter %s: CPU time from cpu.stat only",
				  mcg->v2_path);
		} else {
			cfg.cg = mcg;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	r = sbx_task_start(&cfg, &task, &err);
	cfg.ns = sbx_ns_free(cfg.ns);
	if (r < 0) {
		log_err("%s", err.msg[0] ? err.msg : strerror(-r));
		goto out;
	}
	current_task = task;
	{
		struct sigaction sa = {.sa_handler = on_signal};

		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGHUP, &sa, NULL);
	}
	r = sbx_task_wait(task, &res);
	current_task = NULL;
	sbx_task_free(task);
	if (r < 0) {
		log_errno(LOG_LVL_ERR, r, "waiting for the task failed");
		goto out;
	}
	if (res.end == SBX_END_SETUP_FAILED)
		log_err("the sandbox could not start the task: %s", res.setup_error);
	if (meter && cfg.cg) {
		struct meter_usage mu;

		if (meter_settle(meter, mid, 1000) == 0 && meter_read(meter, mid, &mu) == 0) {
			mt.have = 1;
			mt.cpu_ns = mu.cpu_ns;
			mt.rq_wait_ns = mu.rq_wait_ns;
			mt.crosscheck = meter_crosscheck(mu.cpu_ns, res.cpu_ns, &mt.diff_ns) == 1;
		}
	}
	{
		struct sbx_limits applied = cfg.limits;
		char *js;

		/* report what was applied, defaults included */
		if (!applied.memory_bytes)
			applied.memory_bytes = 512ull << 20;
		if (!applied.pids)
			applied.pids = 256;
		if (!applied.output_bytes)
			applied.output_bytes = 16ull << 20;
		if (!applied.tmp_bytes)
			applied.tmp_bytes = 64ull << 20;
		if (!applied.work_bytes)
			applied.work_bytes = 64ull << 20;
		js = result_json(&res, &applied, img->digest, &mt);
		if (js && !quiet) {
			FILE *f = result_path ? fopen(result_path, "we") : stderr;

			if (f) {
				fprintf(f, "%s\n", js);
				if (f != stderr)
					fclose(f);
			} else {
				log_errno(LOG_LVL_ERR, -errno, "cannot write %s", result_path);
			}
		}
		free(js);
	}
	rc = exit_status_of(&res);
out:
	if (meter && cfg.cg)
		meter_untrack(meter, mid);
	if (mcg)
		cg_destroy(mcg);
	if (meter_created)
		meter_release(meter);
	else
		meter_free(meter);
	sbx_ns_free(cfg.ns);
	free(extra_env);
	free(env);
	free(cmd);
	sbx_image_free(img);
	return rc;
}

int main(int argc, char **argv)
{
	log_setup("aicn-sandbox");
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "-V") == 0 || strcmp(argv[1], "--version") == 0) {
		printf("aicn-sandbox %s\n", AICN_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "run") == 0)
		return cmd_run(argc - 1, argv + 1);
	if (strcmp(argv[1], "unpack") == 0)
		return cmd_unpack(argc - 1, argv + 1);
	if (strcmp(argv[1], "policy") == 0)
		return cmd_policy();
	log_err("unknown command \"%s\" (run, unpack or policy)", argv[1]);
	return 2;
}
