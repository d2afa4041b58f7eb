/* cmd_task.c -- the renter's task commands: submit, watch, result, cancel, rate, tasks. */
#include "client.h"
#include "cmd.h"
#include "opt.h"
#include "tarball.h"

#include <aicn/canon.h>
#include <aicn/compiler.h>

#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <libgen.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

int cmd_submit(int argc, char **argv);
int cmd_watch(int argc, char **argv);
int cmd_result(int argc, char **argv);
int cmd_cancel(int argc, char **argv);
int cmd_rate(int argc, char **argv);
int cmd_tasks(int argc, char **argv);
int cmd_status(int argc, char **argv);

DEFINE_TRIVIAL_CLEANUP_FUNC(cJSON, cJSON_Delete)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct client, client_free)

#define RESULT_MAX_BYTES (8ULL << 30)	   /* the coordinator's own blob cap */
#define RESULT_MAX_ENTRIES 1000000ULL	   /* members of a result tar */
#define RESULT_MAX_DATA (64ULL << 30)	   /* extracted bytes (sparse files expand) */
#define WATCH_POLL_MS 30000		   /* STATUS this often: keeps the connection alive */
#define STDOUT_PRINT_MAX (1024 * 1024 + 1) /* the result's stdout is at most 1 MiB */

/* States travel in lower case ("done"); people read them in capitals. */
static bool is_final(const char *state)
{
	return strcasecmp(state, "DONE") == 0 || strcasecmp(state, "FAILED") == 0 ||
	       strcasecmp(state, "CANCELLED") == 0 || strcasecmp(state, "EXPIRED") == 0;
}

static const char *upper(const char *s, char *buf, size_t len)
{
	size_t i;

	for (i = 0; s[i] && i + 1 < len; i++)
		buf[i] = (char)toupper((unsigned char)s[i]);
	buf[i] = '\0';
	return buf;
}

static int final_exit(const char *state)
{
	if (strcasecmp(state, "DONE") == 0)
		return EXIT_OK;
	if (strcasecmp(state, "FAILED") == 0)
		return EXIT_TASK_FAILED;
	if (strcasecmp(state, "CANCELLED") == 0)
		return EXIT_TASK_CANCELLED;
	if (strcasecmp(state, "EXPIRED") == 0)
		return EXIT_TASK_EXPIRED;
	return EXIT_FAIL;
}

static bool task_id_ok(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= 64 && strspn(s, "0123456789") == n;
}

static cJSON *task_fields(const char *id)
{
	cJSON *f = cJSON_CreateObject();

	if (f && !cJSON_AddStringToObject(f, "task_id", id)) {
		cJSON_Delete(f);
		return NULL;
	}
	return f;
}

/* ---- submit ---- */

static void upload_progress(uint64_t done, uint64_t total, void *ud)
{
	const char *what = ud;

	if (!isatty(STDERR_FILENO) || total < (1 << 20))
		return;
	fprintf(stderr, "\ruploading %s: %3llu%% of %llu MiB", what,
		(unsigned long long)(done * 100 / (total ? total : 1)),
		(unsigned long long)(total >> 20));
	if (done == total)
		fputc('\n', stderr);
}

/* The image as a file to upload: the file itself, or a temporary archive. */
static int image_file(const struct opt_cmd *cmd, const char *image, int rootfs, char **ret_path,
		      int *ret_temp)
{
	char err[IMAGE_ERR_LEN];
	const char *tmpdir = getenv("TMPDIR");
	_cleanup_free_ char *tmp = NULL;
	struct stat st;
	int is_layout, fd, r;

	if (stat(image, &st) < 0) {
		fprintf(stderr, "%s: image %s: %m\n", cmd->name, image);
		return EXIT_FAIL;
	}
	if (S_ISREG(st.st_mode)) {
		if (rootfs)
			return opt_fail(cmd, "--rootfs needs a directory, %s is a file", image);
		*ret_path = strdup(image);
		*ret_temp = 0;
		return *ret_path ? 0 : EXIT_FAIL;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "%s: image %s is neither a file nor a directory\n", cmd->name,
			image);
		return EXIT_FAIL;
	}
	{
		_cleanup_free_ char *idx = NULL;

		if (asprintf(&idx, "%s/index.json", image) < 0)
			return EXIT_FAIL;
		is_layout = access(idx, F_OK) == 0;
	}
	if (!is_layout && !rootfs) {
		fprintf(stderr,
			"%s: %s is a plain directory, not an OCI image layout: add --rootfs to "
			"build an image from it (see 'aicnctl image build-from-rootfs')\n",
			cmd->name, image);
		return EXIT_USAGE;
	}
	if (asprintf(&tmp, "%s/aicnctl-image.XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp") < 0)
		return EXIT_FAIL;
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "%s: cannot create a temporary file: %m\n", cmd->name);
		return EXIT_FAIL;
	}
	close(fd);
	if (is_layout && !rootfs) {
		r = image_pack_layout(image, tmp, err);
	} else {
		struct image_config cfg = {0};
		struct image_stats st2;

		r = image_build_rootfs(image, &cfg, tmp, &st2, err);
		if (r >= 0)
			fprintf(stderr, "built image %s from %s (%llu files)\n",
				st2.manifest_digest, image, st2.files);
	}
	if (r < 0) {
		unlink(tmp);
		fprintf(stderr, "%s: %s\n", cmd->name, err[0] ? err : strerror(-r));
		return EXIT_FAIL;
	}
	*ret_path = TAKE_PTR(tmp);
	*ret_temp = 1;
	return 0;
}

static int add_list(cJSON *spec, const char *key, const struct opt_list *l)
{
	cJSON *a = cJSON_AddArrayToObject(spec, key);

	if (!a)
		return -ENOMEM;
	for (int i = 0; i < l->n; i++)
		if (!cJSON_AddItemToArray(a, cJSON_CreateString(l->v[i])))
			return -ENOMEM;
	return 0;
}

static int do_watch(struct client *c, const char *cmdname, const char *id, int json, int quiet,
		    int64_t max_cpu_ns);

int cmd_submit(int argc, char **argv)
{
	const char *location = NULL, *policy = NULL, *client_ref = NULL, *image_opt = NULL;
	int64_t cores = 1, memory = 512LL << 20, wall = 3600, cpu = -1, price = -1, rating = -1;
	int64_t replicas = -1, priority = -1, deadline = -1;
	struct opt_list inputs = {0}, providers = {0}, env = {0};
	int rootfs = 0, json = 0, watch = 0, rc = EXIT_FAIL, temp = 0, r;
	const struct opt opts[] = {
		{"cores", 'c', OPT_INT, &cores, "N", "CPU cores the task may use (default 1)", 1,
		 4096},
		{"memory", 'm', OPT_SIZE, &memory, "SIZE",
		 "memory limit, e.g. 512M, 2G (default 512M)", 1 << 20, 64LL << 40},
		{"max-wall", 0, OPT_DURATION, &wall, "DURATION",
		 "wall-clock limit, e.g. 90s, 30m, 2h (default 1h)", 1, 30 * 86400},
		{"max-cpu-hours", 0, OPT_HOURS, &cpu, "H",
		 "CPU time limit in hours, e.g. 0.5 (default: cores x\nmax-wall); the escrow is "
		 "this x max-price",
		 1, INT64_MAX},
		{"max-price", 'p', OPT_AMOUNT, &price, "AICN",
		 "the most you pay per CPU-hour, e.g. 2.5 (required)", 0, 1000000000000LL},
		{"location", 'l', OPT_STR, &location, "L",
		 "only providers in L (prefix: eu matches eu-west)", 0, 0},
		{"min-rating", 0, OPT_INT, &rating, "N",
		 "only providers rated at least N stars (1-5)", 1, 5},
		{"provider", 0, OPT_LIST, &providers, "NODEID",
		 "run only on this provider (repeatable, up to 16)", 0, 0},
		{"policy", 0, OPT_STR, &policy, "P", "balanced (default), cheapest or fastest", 0,
		 0},
		{"replicas", 'r', OPT_INT, &replicas, "N",
		 "run on N distinct providers and compare results (1-5)", 1, 5},
		{"priority", 0, OPT_INT, &priority, "N", "0-9, higher runs first (default 0)", 0,
		 9},
		{"deadline", 0, OPT_TIME, &deadline, "TIME",
		 "expire if not started by TIME (unix seconds, +2h, or\n2026-11-26T12:00Z)", 0, 0},
		{"env", 'e', OPT_LIST, &env, "K=V", "environment variable of the task (repeatable)",
		 0, 0},
		{"input", 'i', OPT_LIST, &inputs, "FILE[:PATH]",
		 "upload FILE and give it to the task at /work/PATH\n(default: its base name; "
		 "repeatable)",
		 0, 0},
		{"image", 0, OPT_STR, &image_opt, "IMAGE",
		 "the image, instead of the first argument", 0, 0},
		{"rootfs", 0, OPT_FLAG, &rootfs, NULL,
		 "IMAGE is a plain directory: build an image from it", 0, 0},
		{"client-ref", 0, OPT_STR, &client_ref, "REF",
		 "idempotency key: submitting the same REF again returns\nthe same task", 0, 0},
		{"watch", 'w', OPT_FLAG, &watch, NULL, "then watch the task (as 'aicnctl watch')",
		 0, 0},
		{"json", 0, OPT_FLAG, &json, NULL, "print the coordinator's reply as JSON", 0, 0},
		{0},
	};
	const struct opt_cmd cmd = {
		"aicnctl submit",
		"IMAGE [OPTIONS] --max-price AICN -- COMMAND [ARG...]\n"
		"--image IMAGE [OPTIONS] --max-price AICN -- COMMAND [ARG...]",
		"Run COMMAND in a container made from IMAGE on the network's providers.  IMAGE is an\n"
		"OCI image archive (from 'aicnctl image build-from-rootfs', skopeo's oci-archive or\n"
		"docker save), an OCI image layout directory, or with --rootfs a plain directory\n"
		"turned into an image on the fly.  The image and every --input file are uploaded as\n"
		"content-addressed blobs (skipped when the coordinator already has them).\n"
		"\n"
		"The coordinator checks the request, holds the most the task can cost in escrow\n"
		"(max CPU hours x max price x replicas) and queues it; the task id is printed on\n"
		"stdout (the escrow and state on stderr).  What the task writes under /work/out,\n"
		"with its stdout, stderr and exit code, comes back through 'aicnctl result ID'.",
		opts,
		client_opt_table,
		0,
		1,
		1,
		NULL};
	_cleanup_(cJSON_Deletep) cJSON *spec = NULL, *data = NULL;
	_cleanup_(client_freep) struct client *c = NULL;
	_cleanup_free_ char *image_path = NULL;
	struct opt_args a = {0};
	char digest[72], id[32], amt[AMOUNT_STR_LEN], amt2[AMOUNT_STR_LEN];
	uint64_t size;
	int had;
	cJSON *arr, *envo;

	r = opt_parse(&cmd, argc, argv, &a);
	if (r) {
		rc = r == OPT_HELP ? EXIT_OK : EXIT_USAGE;
		goto out;
	}
	rc = EXIT_USAGE;
	if (!!image_opt == !!a.npos) {
		opt_fail(&cmd, image_opt
				       ? "give the image once: as IMAGE or with --image"
				       : "missing IMAGE (an OCI archive, layout or, with --rootfs, "
					 "a directory)");
		goto out;
	}
	if (!image_opt)
		image_opt = a.pos[0];
	if (a.nrest < 1) {
		opt_fail(&cmd, "give the command after '--' (e.g. -- /bin/echo hello)");
		goto out;
	}
	if (a.nrest > 256) {
		opt_fail(&cmd, "the command has more than 256 words");
		goto out;
	}
	if (price < 0) {
		opt_fail(&cmd, "--max-price AICN is required (see 'aicnctl market' for prices)");
		goto out;
	}
	if (policy && strcmp(policy, "balanced") != 0 && strcmp(policy, "cheapest") != 0 &&
	    strcmp(policy, "fastest") != 0) {
		opt_fail(&cmd, "--policy: '%s' is not balanced, cheapest or fastest", policy);
		goto out;
	}
	if (providers.n > 16) {
		opt_fail(&cmd, "--provider: at most 16");
		goto out;
	}
	for (int i = 0; i < env.n; i++) {
		const char *eq = strchr(env.v[i], '=');

		if (!eq || eq == env.v[i]) {
			opt_fail(&cmd, "--env: '%s' is not K=V", env.v[i]);
			goto out;
		}
	}
	if (inputs.n > 64) {
		opt_fail(&cmd, "--input: at most 64 files");
		goto out;
	}

	spec = cJSON_CreateObject();
	if (!spec)
		goto out_mem;
	arr = cJSON_AddArrayToObject(spec, "command");
	if (!arr)
		goto out_mem;
	for (int i = 0; i < a.nrest; i++)
		if (!cJSON_AddItemToArray(arr, cJSON_CreateString(a.rest[i])))
			goto out_mem;
	if (canon_add_i64(spec, "cores", cores) < 0 || canon_add_i64(spec, "memory", memory) < 0 ||
	    canon_add_i64(spec, "max_wall_seconds", wall) < 0 ||
	    canon_add_i64(spec, "max_price", price) < 0)
		goto out_mem;
	if ((cpu >= 0 && canon_add_i64(spec, "max_cpu_seconds", cpu) < 0) ||
	    (rating >= 0 && canon_add_i64(spec, "min_rating", rating) < 0) ||
	    (replicas >= 0 && canon_add_i64(spec, "replicas", replicas) < 0) ||
	    (priority >= 0 && canon_add_i64(spec, "priority", priority) < 0) ||
	    (deadline >= 0 && canon_add_i64(spec, "deadline", deadline) < 0) ||
	    (location && !cJSON_AddStringToObject(spec, "location", location)) ||
	    (policy && !cJSON_AddStringToObject(spec, "policy", policy)) ||
	    (client_ref && !cJSON_AddStringToObject(spec, "client_ref", client_ref)) ||
	    (providers.n && add_list(spec, "providers", &providers) < 0))
		goto out_mem;
	if (env.n) {
		envo = cJSON_AddObjectToObject(spec, "env");
		if (!envo)
			goto out_mem;
		for (int i = 0; i < env.n; i++) {
			_cleanup_free_ char *k = strndup(env.v[i], strcspn(env.v[i], "="));

			if (!k || cJSON_GetObjectItemCaseSensitive(envo, k) ||
			    !cJSON_AddStringToObject(envo, k, strchr(env.v[i], '=') + 1)) {
				opt_fail(&cmd, "--env: '%s' given twice", k ? k : "?");
				goto out;
			}
		}
	}

	rc = image_file(&cmd, image_opt, rootfs, &image_path, &temp);
	if (rc)
		goto out;
	rc = client_open_or_fail(cmd.name, &c);
	if (rc)
		goto out;
	r = client_blob_put(c, image_path, digest, &size, &had, upload_progress, "the image");
	if (r < 0) {
		rc = client_fail(c, cmd.name, r, "uploading the image");
		goto out;
	}
	fprintf(stderr, "image %s: %llu bytes %s\n", digest, (unsigned long long)size,
		had ? "(already on the coordinator)" : "uploaded");
	if (!cJSON_AddStringToObject(spec, "image", digest))
		goto out_mem;
	if (inputs.n) {
		arr = cJSON_AddArrayToObject(spec, "inputs");
		if (!arr)
			goto out_mem;
	}
	for (int i = 0; i < inputs.n; i++) {
		_cleanup_free_ char *file = strdup(inputs.v[i]), *base = NULL;
		char *colon = file ? strrchr(file, ':') : NULL;
		const char *path;
		cJSON *in;

		if (!file)
			goto out_mem;
		if (colon) {
			*colon = '\0';
			path = colon + 1;
		} else {
			base = strdup(file);
			if (!base)
				goto out_mem;
			path = basename(base);
		}
		if (!*path || path[0] == '/' || strstr(path, "..")) {
			rc = opt_fail(&cmd, "--input: '%s' is not a relative path under /work",
				      path);
			goto out;
		}
		r = client_blob_put(c, file, digest, &size, &had, upload_progress, file);
		if (r < 0) {
			rc = client_fail(c, cmd.name, r, file);
			goto out;
		}
		fprintf(stderr, "input %s -> /work/%s: %s, %llu bytes %s\n", file, path, digest,
			(unsigned long long)size, had ? "(already there)" : "uploaded");
		in = cJSON_CreateObject();
		if (!in || !cJSON_AddItemToArray(arr, in) ||
		    !cJSON_AddStringToObject(in, "digest", digest) ||
		    !cJSON_AddStringToObject(in, "path", path))
			goto out_mem;
	}
	{
		cJSON *f = cJSON_CreateObject();

		if (!f || !cJSON_AddItemToObject(f, "spec", TAKE_PTR(spec))) {
			cJSON_Delete(f);
			goto out_mem;
		}
		r = client_call(c, MKT_SUBMIT, f, &data);
	}
	if (r < 0) {
		rc = client_fail(c, cmd.name, r, "submit");
		goto out;
	}
	json_task_id(data, "task_id", id);
	if (json) {
		client_print_json(data);
	} else {
		printf("%s\n", id);
		fflush(stdout);
		char st[24];

		fprintf(stderr, "task %s %s%s; escrow %s AICN (max cost %s AICN)\n", id,
			upper(json_str(data, "state", "?"), st, sizeof(st)),
			json_bool(data, "duplicate", 0) ? " (submitted before with this client-ref)"
							: "",
			amount_format(json_i64(data, "escrow", json_i64(data, "max_cost", 0)), amt),
			amount_format(json_i64(data, "max_cost", 0), amt2));
	}
	rc = watch ? do_watch(c, "aicnctl submit", id, json, 0,
			      (cpu >= 0 ? cpu : cores * wall) * 1000000000LL)
		   : EXIT_OK;
	goto out;
out_mem:
	fprintf(stderr, "%s: out of memory\n", cmd.name);
	rc = EXIT_FAIL;
out:
	if (temp && image_path)
		unlink(image_path);
	opt_args_done(&a);
	opt_list_free(&inputs);
	opt_list_free(&providers);
	opt_list_free(&env);
	return rc;
}

/* ---- watch ---- */

struct watch_view {
	char state[24];
	int64_t cpu_ns, wall_ns, max_cpu_ns;
	bool tty, shown;
	char last_line[256];
};

static void fmt_hms(int64_t ns, char *buf, size_t len)
{
	int64_t s = ns / 1000000000;

	snprintf(buf, len, "%02lld:%02lld:%02lld", (long long)(s / 3600), (long long)(s / 60 % 60),
		 (long long)(s % 60));
}

static void watch_show(struct watch_view *v, const char *id, const char *reason, bool final)
{
	char wall[32], line[256];

	fmt_hms(v->wall_ns, wall, sizeof(wall));
	if (v->tty) {
		char bar[32] = "";

		if (v->max_cpu_ns > 0) {
			int64_t f =
				v->cpu_ns >= v->max_cpu_ns ? 20 : v->cpu_ns * 20 / v->max_cpu_ns;

			bar[0] = '[';
			for (int i = 0; i < 20; i++)
				bar[i + 1] = i < f ? '#' : '.';
			bar[21] = ']';
			bar[22] = ' ';
			bar[23] = '\0';
		}
		fprintf(stderr, "\r\033[Ktask %s %-9s %s%.3f CPU-s", id, v->state, bar,
			(double)v->cpu_ns / 1e9);
		if (v->max_cpu_ns > 0)
			fprintf(stderr, " of %.0f", (double)v->max_cpu_ns / 1e9);
		fprintf(stderr, "  wall %s%s%s", wall, reason && *reason ? "  " : "",
			reason ? reason : "");
		if (final)
			fputc('\n', stderr);
		v->shown = true;
		return;
	}
	snprintf(line, sizeof(line), "task %s %s cpu %.3f s wall %s%s%s", id, v->state,
		 (double)v->cpu_ns / 1e9, wall, reason && *reason ? " reason: " : "",
		 reason ? reason : "");
	if (strcmp(line, v->last_line) != 0) {
		time_t now = time(NULL);
		struct tm tm;
		char ts[32];

		gmtime_r(&now, &tm);
		strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
		printf("%s %s\n", ts, line);
		fflush(stdout);
		snprintf(v->last_line, sizeof(v->last_line), "%s", line);
	}
}

/* Take state, CPU and wall from a STATUS reply or an UPDATE. */
static void watch_take(struct watch_view *v, const cJSON *d)
{
	const cJSON *spec = cJSON_GetObjectItemCaseSensitive(d, "spec");
	int64_t cpu = json_i64(d, "cpu_ns", -1), mx;

	char st[24];

	upper(json_str(d, "state", v->state), st, sizeof(st));
	snprintf(v->state, sizeof(v->state), "%s", st);
	if (cpu > v->cpu_ns) /* a STATUS poll may carry less than the live UPDATEs */
		v->cpu_ns = cpu;
	v->wall_ns = json_i64(d, "wall_ns", v->wall_ns);
	mx = json_i64(d, "max_cpu_ns", -1);
	if (mx < 0 && cJSON_GetObjectItemCaseSensitive(d, "max_cpu_seconds"))
		mx = json_i64(d, "max_cpu_seconds", -1) * 1000000000; /* STATUS */
	if (mx < 0 && spec)
		mx = json_i64(spec, "max_cpu_seconds", -1) * 1000000000;
	if (mx > 0)
		v->max_cpu_ns = mx;
}

/* max_cpu_ns: the task's CPU cap when known (submit --watch), for the progress bar; 0 if not. */
static int do_watch(struct client *c, const char *cmdname, const char *id, int json, int quiet,
		    int64_t max_cpu_ns)
{
	_cleanup_(cJSON_Deletep) cJSON *data = NULL;
	struct watch_view v = {.tty = isatty(STDERR_FILENO) && !json, .max_cpu_ns = max_cpu_ns};
	int r;

	r = client_call(c, MKT_WATCH, task_fields(id), &data);
	if (r < 0)
		return client_fail(c, cmdname, r, "watch");
	watch_take(&v, data);
	if (json)
		client_print_json(data);
	else if (!quiet)
		watch_show(&v, id, json_str(data, "reason", NULL), is_final(v.state));
	while (!is_final(v.state)) {
		struct client_msg m = {0};
		char tid[32];

		r = client_next(c, WATCH_POLL_MS, &m);
		if (r == -ETIMEDOUT) {
			/* quiet for a while: ask, which also keeps the connection alive */
			cJSON *st = NULL;

			r = client_call(c, MKT_STATUS, task_fields(id), &st);
			if (r < 0)
				return client_fail(c, cmdname, r, "status");
			watch_take(&v, st);
			if (json)
				client_print_json(st);
			else if (!quiet)
				watch_show(&v, id, json_str(st, "reason", NULL), is_final(v.state));
			cJSON_Delete(st);
			continue;
		}
		if (r < 0) {
			if (v.shown)
				fputc('\n', stderr);
			return client_fail(c, cmdname, r, "watch");
		}
		if (m.type == PROTO_ERROR) {
			fprintf(stderr, "%s: the coordinator says: %s: %s\n", cmdname,
				json_str(m.root, "code", "?"), json_str(m.root, "message", ""));
			client_msg_done(&m);
			continue;
		}
		if (m.type != market_type(MKT_UPDATE) ||
		    strcmp(json_task_id(m.root, "task_id", tid), id) != 0) {
			client_msg_done(&m);
			continue;
		}
		watch_take(&v, m.root);
		if (json_bool(m.root, "final", 0) && !is_final(v.state))
			snprintf(v.state, sizeof(v.state), "%s", "DONE");
		if (json)
			client_print_json(m.root);
		else if (!quiet)
			watch_show(&v, id, json_str(m.root, "reason", NULL), is_final(v.state));
		client_msg_done(&m);
	}
	if (!json && !quiet && strcasecmp(v.state, "DONE") == 0)
		fprintf(stderr, "fetch the result with: aicnctl result %s\n", id);
	return final_exit(v.state);
}

int cmd_watch(int argc, char **argv)
{
	int json = 0, rc;
	const struct opt opts[] = {
		{"json", 0, OPT_FLAG, &json, NULL,
		 "print the WATCH reply and every UPDATE as JSON lines", 0, 0},
		{0},
	};
	const struct opt_cmd cmd = {
		"aicnctl watch",
		"ID [--json]",
		"Follow task ID until it reaches a final state: its state (QUEUED, RUNNING, DONE,\n"
		"FAILED, CANCELLED, EXPIRED), the CPU seconds its replicas used so far as the\n"
		"providers' eBPF meters measure them, and the wall time.  On a terminal one status\n"
		"line is redrawn with a progress bar towards the CPU limit; when stdout is not a\n"
		"terminal each change is printed as one timestamped line.",
		opts,
		client_opt_table,
		1,
		1,
		0,
		"Exit status: the task's final state: 0 DONE, 5 FAILED, 6 CANCELLED, 7 EXPIRED;\n"
		"1 failure; 2 usage error; 3 cannot connect to or talk to the coordinator; 4 the\n"
		"coordinator refused (for example: no such task)."};
	_cleanup_(client_freep) struct client *c = NULL;
	struct opt_args a = {0};
	int r = opt_parse(&cmd, argc, argv, &a);

	if (r)
		return r == OPT_HELP ? EXIT_OK : EXIT_USAGE;
	if (!task_id_ok(a.pos[0])) {
		rc = opt_fail(&cmd, "'%s' is not a task id", a.pos[0]);
		goto out;
	}
	rc = client_open_or_fail(cmd.name, &c);
	if (!rc)
		rc = do_watch(c, cmd.name, a.pos[0], json, 0, 0);
out:
	opt_args_done(&a);
	return rc;
}

/* ---- result ---- */

static int dir_empty_or_new(const char *dir)
{
	DIR *d;
	struct dirent *de;
	int n = 0;

	if (mkdir(dir, 0755) == 0)
		return 0;
	if (errno != EEXIST)
		return -errno;
	d = opendir(dir);
	if (!d)
		return -errno;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			n++;
	closedir(d);
	return n ? -ENOTEMPTY : 0;
}

static bool ends_with_tar(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	struct stat st;

	return n > 4 && strcmp(s + n - 4, ".tar") == 0 &&
	       !(stat(s, &st) == 0 && S_ISDIR(st.st_mode));
}

/* Download digest to dir/name.part, then rename to dir/name once verified. */
static int fetch_to(struct client *c, const char *cmdname, const char *digest, int dfd,
		    const char *name, const char *shown, uint64_t *ret_size)
{
	_cleanup_free_ char *part = NULL;
	_cleanup_close_ int fd = -1;
	int r;

	if (asprintf(&part, "%s.part", name) < 0)
		return EXIT_FAIL;
	fd = openat(dfd, part, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0) {
		fprintf(stderr, "%s: %s.part: %m\n", cmdname, shown);
		return EXIT_FAIL;
	}
	r = client_blob_get(c, digest, fd, RESULT_MAX_BYTES, ret_size);
	if (r < 0) {
		unlinkat(dfd, part, 0);
		return client_fail(c, cmdname, r, "downloading the result");
	}
	if (fsync(fd) < 0 || renameat(dfd, part, dfd, name) < 0) {
		fprintf(stderr, "%s: %s: %m\n", cmdname, shown);
		unlinkat(dfd, part, 0);
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

int cmd_result(int argc, char **argv)
{
	const char *dir = NULL;
	int json = 0, quiet = 0, rc = EXIT_FAIL;
	const struct opt opts[] = {
		{"output", 'o', OPT_STR, &dir, "DIR|FILE.tar",
		 "extract into DIR (default ./result-ID; new or empty),\nor with a name ending in "
		 ".tar only save the verified\narchive there (replacing the file)",
		 0, 0},
		{"quiet", 'q', OPT_FLAG, &quiet, NULL, "do not print the task's stdout", 0, 0},
		{"json", 0, OPT_FLAG, &json, NULL,
		 "print {task_id, exit_code, result, size, dir or archive}\nas JSON instead", 0, 0},
		{0},
	};
	const struct opt_cmd cmd = {
		"aicnctl result",
		"ID [-o DIR|FILE.tar] [--quiet] [--json]",
		"Fetch the result of task ID once it is DONE: download the result blob and check\n"
		"that its SHA-256 is the result digest the provider signed in its usage record.\n"
		"Then keep it as DIR/result.tar and extract it into DIR: exit_code, stdout, stderr\n"
		"(each the last 1 MiB at most) and out/, everything the task wrote under /work/out.\n"
		"Extraction refuses absolute names, '..', hard links and device files, never\n"
		"follows a symlink and drops set-id bits.  With -o FILE.tar the verified archive is\n"
		"only saved as FILE.tar.  The task's stdout is printed, then its exit code.  The\n"
		"coordinator deletes a result once it was fetched: keep what you fetched.",
		opts,
		client_opt_table,
		1,
		1,
		0,
		NULL};
	_cleanup_(client_freep) struct client *c = NULL;
	_cleanup_(cJSON_Deletep) cJSON *st = NULL;
	_cleanup_free_ char *defdir = NULL, *final = NULL, *dcopy = NULL, *bcopy = NULL;
	_cleanup_free_ char *outbuf = NULL;
	_cleanup_close_ int dfd = -1;
	struct opt_args a = {0};
	char err[IMAGE_ERR_LEN], code[32] = "";
	const char *digest, *fname = "result.tar";
	uint64_t size = 0;
	bool archive_only;
	int r = opt_parse(&cmd, argc, argv, &a);

	if (r)
		return r == OPT_HELP ? EXIT_OK : EXIT_USAGE;
	if (!task_id_ok(a.pos[0])) {
		rc = opt_fail(&cmd, "'%s' is not a task id", a.pos[0]);
		goto out;
	}
	if (!dir) {
		if (asprintf(&defdir, "result-%s", a.pos[0]) < 0)
			goto out;
		dir = defdir;
	}
	archive_only = ends_with_tar(dir);
	rc = client_open_or_fail(cmd.name, &c);
	if (rc)
		goto out;
	rc = EXIT_FAIL;
	r = client_call(c, MKT_STATUS, task_fields(a.pos[0]), &st);
	if (r < 0) {
		rc = client_fail(c, cmd.name, r, "status");
		goto out;
	}
	digest = json_str(st, "result", NULL);
	if (!digest || !*digest)
		digest = json_str(st, "result_digest", "");
	if (!*digest) {
		char up[24];

		fprintf(stderr, "%s: task %s has no result (state %s%s%s)\n", cmd.name, a.pos[0],
			upper(json_str(st, "state", "?"), up, sizeof(up)),
			*json_str(st, "reason", "") ? ": " : "", json_str(st, "reason", ""));
		goto out;
	}
	if (archive_only) {
		dcopy = strdup(dir);
		bcopy = strdup(dir);
		if (!dcopy || !bcopy)
			goto out;
		dfd = open(dirname(dcopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		fname = basename(bcopy);
		final = strdup(dir);
	} else {
		r = dir_empty_or_new(dir);
		if (r < 0) {
			fprintf(stderr, "%s: %s: %s\n", cmd.name, dir,
				r == -ENOTEMPTY ? "exists and is not empty (choose another with -o)"
						: strerror(-r));
			goto out;
		}
		dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (asprintf(&final, "%s/result.tar", dir) < 0)
			final = NULL;
	}
	if (dfd < 0 || !final) {
		fprintf(stderr, "%s: %s: %m\n", cmd.name, dir);
		goto out;
	}
	rc = fetch_to(c, cmd.name, digest, dfd, fname, final, &size);
	if (rc)
		goto out;
	rc = EXIT_FAIL;
	if (!archive_only) {
		r = image_extract_result(final, dfd, RESULT_MAX_ENTRIES, RESULT_MAX_DATA, err);
		if (r < 0) {
			fprintf(stderr,
				"%s: refusing the result: %s (the verified archive is kept as %s)\n",
				cmd.name, err, final);
			goto out;
		}
	}
	if (image_result_member(final, "exit_code", code, sizeof(code), NULL) < 0 || !code[0])
		snprintf(code, sizeof(code), "%lld", (long long)json_i64(st, "exit_code", -1));
	code[strcspn(code, "\n")] = '\0';
	if (json) {
		cJSON *o = cJSON_CreateObject();
		int64_t ec;

		if (!o || !cJSON_AddStringToObject(o, "task_id", a.pos[0]) ||
		    !cJSON_AddStringToObject(o, "result", digest) ||
		    !cJSON_AddStringToObject(o, archive_only ? "archive" : "dir", dir) ||
		    canon_add_i64(o, "exit_code",
				  opt_parse_int(code, -255, 255, &ec) == 0 ? ec : -1) < 0 ||
		    canon_add_u64(o, "size", size) < 0) {
			cJSON_Delete(o);
			goto out;
		}
		rc = client_print_json(o);
		cJSON_Delete(o);
		goto out;
	}
	if (!quiet) {
		size_t len = 0;

		outbuf = malloc(STDOUT_PRINT_MAX + 1);
		if (outbuf &&
		    image_result_member(final, "stdout", outbuf, STDOUT_PRINT_MAX + 1, &len) == 0) {
			fwrite(outbuf, 1, len, stdout);
			fflush(stdout);
		}
	}
	fprintf(stderr, "task %s: exit code %s; result %s verified (%llu bytes), %s %s%s\n",
		a.pos[0], code, digest, (unsigned long long)size,
		archive_only ? "saved as" : "files in", dir, archive_only ? "" : "/");
	rc = EXIT_OK;
out:
	opt_args_done(&a);
	return rc;
}

int cmd_status(int argc, char **argv)
{
	int json = 0, rc;
	const struct opt opts[] = {
		{"json", 0, OPT_FLAG, &json, NULL, "print the coordinator's reply as JSON", 0, 0},
		{0},
	};
	const struct opt_cmd cmd = {
		"aicnctl status",
		"ID [--json]",
		"Task ID now: its state, attempts, the reason of a failure, submit and finish times,\n"
		"the result digest and exit code once DONE, and each replica (provider node, state,\n"
		"exit code, result).  'aicnctl watch' follows it until it ends.",
		opts,
		client_opt_table,
		1,
		1,
		0,
		NULL};
	_cleanup_(client_freep) struct client *c = NULL;
	_cleanup_(cJSON_Deletep) cJSON *data = NULL;
	struct opt_args a = {0};
	int r = opt_parse(&cmd, argc, argv, &a);

	if (r)
		return r == OPT_HELP ? EXIT_OK : EXIT_USAGE;
	if (!task_id_ok(a.pos[0])) {
		rc = opt_fail(&cmd, "'%s' is not a task id", a.pos[0]);
		goto out;
	}
	rc = client_open_or_fail(cmd.name, &c);
	if (rc)
		goto out;
	r = client_call(c, MKT_STATUS, task_fields(a.pos[0]), &data);
	if (r < 0) {
		rc = client_fail(c, cmd.name, r, "status");
		goto out;
	}
	if (json) {
		rc = client_print_json(data);
	} else {
		char up[24];
		cJSON *stn = cJSON_GetObjectItemCaseSensitive(data, "state");

		if (cJSON_IsString(stn))
			cJSON_SetValuestring(stn, upper(stn->valuestring, up, sizeof(up)));
		client_print_kv(data, 0);
	}
out:
	opt_args_done(&a);
	return rc;
}

/* ---- cancel, rate, tasks ---- */

int cmd_cancel(int argc, char **argv)
{
	int json = 0, rc;
	const struct opt opts[] = {
		{"json", 0, OPT_FLAG, &json, NULL, "print the coordinator's reply as JSON", 0, 0},
		{0},
	};
	const struct opt_cmd cmd = {
		"aicnctl cancel",
		"ID [--json]",
		"Cancel task ID: a queued task never starts, a running one is stopped on every\n"
		"provider.  You pay only for the CPU time the providers' signed usage records show\n"
		"up to the cancel; the rest of the escrow is refunded at once.",
		opts,
		client_opt_table,
		1,
		1,
		0,
		NULL};
	_cleanup_(client_freep) struct client *c = NULL;
	_cleanup_(cJSON_Deletep) cJSON *data = NULL;
	struct opt_args a = {0};
	char amt[AMOUNT_STR_LEN], st[24];
	int r = opt_parse(&cmd, argc, argv, &a);

	if (r)
		return r == OPT_HELP ? EXIT_OK : EXIT_USAGE;
	if (!task_id_ok(a.pos[0])) {
		rc = opt_fail(&cmd, "'%s' is not a task id", a.pos[0]);
		goto out;
	}
	rc = client_open_or_fail(cmd.name, &c);
	if (rc)
		goto out;
	r = client_call(c, MKT_CANCEL, task_fields(a.pos[0]), &data);
	if (r < 0) {
		rc = client_fail(c, cmd.name, r, "cancel");
		goto out;
	}
	if (json)
		rc = client_print_json(data);
	else
		printf("task %s %s; refunded %s AICN\n", a.pos[0],
		       upper(json_str(data, "state", "?"), st, sizeof(st)),
		       amount_format(json_i64(data, "refund", 0), amt));
out:
	opt_args_done(&a);
	return rc;
}

int cmd_rate(int argc, char **argv)
{
	int json = 0, rc;
	const struct opt opts[] = {
		{"json", 0, OPT_FLAG, &json, NULL, "print the coordinator's reply as JSON", 0, 0},
		{0},
	};
	const struct opt_cmd cmd = {
		"aicnctl rate",
		"ID STARS [TEXT]",
		"Rate the provider(s) that ran task ID with 1 to 5 STARS and an optional TEXT (up to\n"
		"1024 bytes).  Once per task, after it is DONE.  Ratings are shown in 'aicnctl\n"
		"market' and used by --min-rating.",
		opts,
		client_opt_table,
		2,
		3,
		0,
		NULL};
	_cleanup_(client_freep) struct client *c = NULL;
	_cleanup_(cJSON_Deletep) cJSON *data = NULL;
	struct opt_args a = {0};
	cJSON *f;
	int64_t stars;
	int r = opt_parse(&cmd, argc, argv, &a);

	if (r)
		return r == OPT_HELP ? EXIT_OK : EXIT_USAGE;
	if (!task_id_ok(a.pos[0])) {
		rc = opt_fail(&cmd, "'%s' is not a task id", a.pos[0]);
		goto out;
	}
	if (opt_parse_int(a.pos[1], 1, 5, &stars) < 0) {
		rc = opt_fail(&cmd, "STARS must be 1 to 5, not '%s'", a.pos[1]);
		goto out;
	}
	if (a.npos == 3 && strlen(a.pos[2]) > 1024) {
		rc = opt_fail(&cmd, "TEXT is longer than 1024 bytes");
		goto out;
	}
	rc = client_open_or_fail(cmd.name, &c);
	if (rc)
		goto out;
	f = task_fields(a.pos[0]);
	if (!f || canon_add_i64(f, "stars", stars) < 0 ||
	    (a.npos == 3 && !cJSON_AddStringToObject(f, "text", a.pos[2]))) {
		cJSON_Delete(f);
		rc = EXIT_FAIL;
		goto out;
	}
	r = client_call(c, MKT_RATE, f, &data);
	if (r < 0) {
		rc = client_fail(c, cmd.name, r, "rate");
		goto out;
	}
	if (json)
		rc = client_print_json(data);
	else
		printf("task %s rated %lld star%s\n", a.pos[0], (long long)stars,
		       stars == 1 ? "" : "s");
out:
	opt_args_done(&a);
	return rc;
}

int cmd_tasks(int argc, char **argv)
{
	const char *state = NULL;
	int64_t limit = 100;
	int json = 0, rc;
	const struct opt opts[] = {
		{"state", 's', OPT_STR, &state, "STATE",
		 "only tasks in STATE (QUEUED, RUNNING, DONE, FAILED,\nCANCELLED, EXPIRED)", 0, 0},
		{"limit", 'n', OPT_INT, &limit, "N", "at most N tasks, newest first (default 100)",
		 1, 10000},
		{"json", 0, OPT_FLAG, &json, NULL, "print the coordinator's reply as JSON", 0, 0},
		{0},
	};
	const struct opt_cmd cmd = {
		"aicnctl tasks",
		"[--state STATE] [--limit N] [--json]",
		"List your tasks, newest first (an auditor certificate sees every renter's).",
		opts,
		client_opt_table,
		0,
		0,
		0,
		NULL};
	_cleanup_(client_freep) struct client *c = NULL;
	_cleanup_(cJSON_Deletep) cJSON *data = NULL;
	struct opt_args a = {0};
	const cJSON *tasks, *t;
	char lower[24] = "";
	cJSON *f;
	int r = opt_parse(&cmd, argc, argv, &a);

	if (r)
		return r == OPT_HELP ? EXIT_OK : EXIT_USAGE;
	opt_args_done(&a);
	rc = client_open_or_fail(cmd.name, &c);
	if (rc)
		return rc;
	f = cJSON_CreateObject();
	if (state) {
		for (size_t i = 0; i < sizeof(lower) - 1 && state[i]; i++)
			lower[i] = (char)tolower((unsigned char)state[i]);
		state = lower;
	}
	if (!f || canon_add_i64(f, "limit", limit) < 0 ||
	    (state && !cJSON_AddStringToObject(f, "state", state))) {
		cJSON_Delete(f);
		return EXIT_FAIL;
	}
	r = client_call(c, MKT_TASKS, f, &data);
	if (r < 0)
		return client_fail(c, cmd.name, r, "tasks");
	if (json)
		return client_print_json(data);
	tasks = cJSON_GetObjectItemCaseSensitive(data, "tasks");
	printf("%-10s %-10s %-20s %-5s %s\n", "ID", "STATE", "SUBMITTED (UTC)", "EXIT", "REASON");
	cJSON_ArrayForEach (t, tasks) {
		char id[32], when[32] = "-", ec[16] = "-";
		time_t ts = (time_t)json_i64(t, "submitted_at", 0);
		struct tm tm;
		char st[24];

		upper(json_str(t, "state", "?"), st, sizeof(st));
		if (ts > 0 && gmtime_r(&ts, &tm))
			strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
		if (strcmp(st, "DONE") == 0)
			snprintf(ec, sizeof(ec), "%lld", (long long)json_i64(t, "exit_code", -1));
		printf("%-10s %-10s %-20s %-5s %s\n", json_task_id(t, "task_id", id), st, when, ec,
		       json_str(t, "reason", ""));
	}
	return EXIT_OK;
}
