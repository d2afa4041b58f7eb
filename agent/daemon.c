/* daemon.c -- aicn-agent's daemon: coordinator link, offers, blob transfers, supervised metered tasks, records, results. */
#include "cache.h"
#include "daemon.h"
#include "metrics.h"
#include "offer.h"
#include "perf.h"
#include "result.h"
#include "supervisor.h"

#include <aicn/canon.h>
#include <aicn/cgroup.h>
#include <aicn/compiler.h>
#include <aicn/fileio.h>
#include <aicn/hash.h>
#include <aicn/key.h>
#include <aicn/log.h>
#include <aicn/loop.h>
#include <aicn/meter.h>
#include <aicn/meterlog.h>
#include <aicn/net.h>
#include <aicn/outbox.h>
#include <aicn/pow.h>
#include <aicn/record.h>
#include <aicn/sandbox.h>
#include <aicn/tls.h>
#include <aicn/version.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <openssl/evp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#define TICK_MS 200		     /* supervisors, windows, CPU budgets, retries */
#define STATUS_EVERY_MS 2000	     /* TASK_STATUS running (protocol: at most 5 s apart) */
#define INTERVAL_EVERY_MS 30000	     /* interval records (records: at least every 60 s) */
#define HEARTBEAT_EVERY_MS 10000     /* HEARTBEAT (server idle timeout: 120 s) */
#define LOGTICK_EVERY_MS 5000	     /* meterlog_tick: heartbeats, checkpoints */
#define RESULT_RETRY_MS 2000	     /* TASK_RESULT again after ERROR record_missing */
#define RESULT_RETRIES_MAX 60	     /* then the task is given up */
#define SETTLE_MS 12000		     /* meter_settle (a worker thread) after the cgroup emptied */
#define OUTBOX_MAX 100000	     /* records pending at most */
#define IMAGE_BLOB_MAX (64ULL << 30) /* bytes of an image archive accepted */
#define HTTP_REQ_MAX 4096	     /* bytes of a /metrics request */
#define HTTP_CONNS_MAX 32	     /* scrapes at once */
#define TASK_PIDS 1024		     /* pids limit of a task */
#define MIB (1024ULL * 1024ULL)

enum tstate {
	T_FETCH,  /* fetching the image archive and the inputs */
	T_UNPACK, /* the image is being unpacked (worker pool) */
	T_RUN,	  /* its supervisor runs it */
	T_END,	  /* ended: settling the meter, building the result (worker pool) */
	T_REPORT, /* final record signed: record, result upload, PoW, TASK_RESULT */
};

enum cancel_why {
	C_NONE,
	C_KILLED, /* the coordinator said "killed": discard */
	C_WINDOW, /* on_window_close = cancel */
	C_CPU,	  /* the offer's CPU budget ran out */
};

struct agent;

struct task {
	struct task *next;
	struct agent *a;
	struct offer *offer;
	char *offer_json; /* the offer as received (canonical), persisted as offer.json */
	struct sha256_ctx *fetch_sha;
	struct sbx_image *img;
	struct cg *cg;
	struct sup *sup;
	void *job; /* the unpack job in flight (freed here if the agent stops before it is done) */

	/* fetching: item 0 is the image archive, 1..n the inputs */
	size_t fetch_i;
	uint64_t fetch_off, fetch_size; /* size: UINT64_MAX until the first chunk */
	int64_t fetch_ref;

	/* running */
	uint64_t cg_id;
	uint64_t last_status_ms, last_interval_ms, accepted_ms;
	uint64_t cpu_ns; /* latest meter figure */

	/* ended */
	struct sup_status end;
	struct meter_usage usage;
	uint64_t kernel_ns, mem_peak;
	struct result_info res;

	/* reporting */
	uint64_t seq;
	uint64_t up_off;
	int64_t up_ref;
	uint64_t nonce;
	int64_t result_ref;
	uint64_t retry_at_ms;

	char dir[PATH_MAX];
	char fetch_tmp[PATH_MAX];
	char rootfs[PATH_MAX];
	char unpack_why[512];
	char build_why[RESULT_WHY_MAX];
	char manifest[72];
	uint8_t rec_hash[SHA256_LEN];

	int dirfd;
	int fetch_fd;
	int unpack_err;
	int build_err;
	int exit_code; /* TASK_RESULT's */
	unsigned retries;
	enum tstate state;
	enum cancel_why cancel;

	bool busy;	/* a worker job holds it: do not free */
	int settle_err; /* meter_settle() of the ended task (worker thread) */
	int read_err;	/* meter_read() of the ended task (worker thread) */
	bool dropped;	/* to be wiped once no job holds it */
	bool fetch_inflight;
	bool pinned;
	bool img_borrowed; /* t->img belongs to the agent's table of opened images */
	bool tracked;
	bool cancel_sent;
	bool has_result; /* discarded tasks (killed, lost) have none */
	bool record_acked;
	bool up_inflight, up_done;
	bool pow_busy, pow_done;
	bool result_inflight;
};

struct http_conn {
	struct http_conn *next, **pprev;
	struct agent *a;
	struct loop_sock *s;
	size_t len;
	char buf[HTTP_REQ_MAX];
};

#define IMG_TABLE 64 /* opened images kept in memory (their config and rootfs path) */

struct img_ent {
	char digest[72]; /* the archive's */
	struct sbx_image *img;
};

struct agent {
	struct img_ent imgs[IMG_TABLE];
	const struct agent_config *cfg;
	const struct agent_host_facts *host;
	struct loop *loop;
	struct loop_pool *pool;
	struct loop_timer *tick;
	struct tls_ctx *tls;
	struct net_client *cl;
	EVP_PKEY *key;
	char node_id[NODE_ID_HEX_LEN + 1];
	struct meter *meter;
	struct meterlog *ml;
	struct outbox *ob;
	struct cache *cache;
	struct cg_host cgh;
	struct cg *cap;
	char cap_name[64];
	char sup_bin[PATH_MAX];
	char tasks_dir[PATH_MAX], blobs_dir[PATH_MAX], images_dir[PATH_MAX];
	struct task *tasks;
	struct perf_result perf;
	enum agent_conn_state conn;
	bool in_window;
	uint64_t last_hb_ms, last_logtick_ms;
	uint64_t ended[SUP_KIND_N];
	char **lost_ids; /* tasks found half-started at start: reported failed once connected */
	size_t n_lost;
	struct loop_listen *http;
	struct http_conn *http_conns;
	size_t n_http;
};

/* ---- small helpers ----------------------------------------------------------------- */

/* snprintf for paths and reasons that may be cut short (the callers check where it matters). */
static int fmt(char *buf, size_t len, const char *f, ...) _printf_(3, 4);
static int fmt(char *buf, size_t len, const char *f, ...)
{
	va_list ap;
	int n;

	va_start(ap, f);
	n = vsnprintf(buf, len, f, ap);
	va_end(ap);
	return n;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void net_log(void *ud, enum log_level level, const char *line)
{
	(void)ud;
	log_msg(level, "%s", line);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if ((flag == FTW_DP ? rmdir(path) : unlink(path)) < 0 && errno != ENOENT)
		return 0; /* keep going: remove what can be removed */
	return 0;
}

/* rm -rf that never follows a symlink nor crosses a mount point. */
static int rm_rf(const char *path)
{
	if (nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

static int mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX];

	if (fmt(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* Write a small file atomically in DIRFD. */
static int write_atomic(int dirfd, const char *name, const char *text, size_t len)
{
	char tmp[128];
	_cleanup_close_ int fd = -1;

	fmt(tmp, sizeof(tmp), ".%s.tmp", name);
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	if (write(fd, text, len) != (ssize_t)len || fsync(fd) < 0 ||
	    renameat(dirfd, tmp, dirfd, name) < 0) {
		int r = errno ? -errno : -EIO;

		unlinkat(dirfd, tmp, 0);
		return r;
	}
	return fsync(dirfd) < 0 ? -errno : 0;
}

/* Read a small file (at most MAX bytes) of DIRFD, NUL-terminated. */
static int read_small(int dirfd, const char *name, size_t max, char **ret, size_t *ret_len)
{
	_cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0)
		return -errno;
	return read_fd_all(fd, max, ret, ret_len);
}

/* "sha256:<hex>" of a digest; OUT has room for 72 bytes. */
static void digest_str(const uint8_t d[SHA256_LEN], char *out)
{
	strcpy(out, "sha256:");
	hex_encode(d, SHA256_LEN, out + 7);
}

static const char *digest_hex(const char *digest)
{
	return digest + strlen("sha256:");
}

/* ---- tasks: bookkeeping ---------------------------------------------------------- */

static struct task *task_find(struct agent *a, const char *id)
{
	for (struct task *t = a->tasks; t; t = t->next)
		if (!t->dropped && strcmp(t->offer->task_id, id) == 0)
			return t;
	return NULL;
}

static struct offer_load agent_load(const struct agent *a)
{
	struct offer_load l = {0};

	for (const struct task *t = a->tasks; t; t = t->next) {
		if (t->dropped || t->state >= T_END)
			continue;
		l.millicores += t->offer->cores * 1000;
		l.memory += t->offer->mem_mb * MIB;
		l.tasks++;
	}
	return l;
}

static void task_free(struct task *t)
{
	if (t->fetch_fd >= 0)
		close(t->fetch_fd);
	sha256_free(t->fetch_sha);
	if (t->dirfd >= 0)
		close(t->dirfd);
	if (!t->img_borrowed)
		sbx_image_free(t->img);
	free(t->job);
	cg_free(t->cg);
	sup_free(t->sup);
	offer_free(t->offer);
	free(t->offer_json);
	free(t);
}

static cJSON *running_ids(const struct agent *a)
{
	cJSON *arr = cJSON_CreateArray();

	for (const struct task *t = a->tasks; arr && t; t = t->next)
		if (!t->dropped &&
		    !cJSON_AddItemToArray(arr, cJSON_CreateString(t->offer->task_id))) {
			cJSON_Delete(arr);
			return NULL;
		}
	return arr;
}

static void update_register(struct agent *a);

/* Forget a task: release what it holds and remove its directory. */
static void task_drop(struct task *t)
{
	struct agent *a = t->a;

	if (!t->dropped) {
		t->dropped = true;
		if (t->tracked) {
			meter_untrack(a->meter, t->cg_id);
			t->tracked = false;
		}
		if (t->cg) {
			int r = cg_destroy(t->cg);

			if (r < 0)
				log_errno(LOG_LVL_WARN, r, "task %s: removing its cgroup",
					  t->offer->task_id);
			t->cg = NULL;
		}
		if (t->pinned) {
			cache_unpin(a->cache, t->offer->image);
			t->pinned = false;
		}
		if (t->dirfd >= 0) {
			close(t->dirfd);
			t->dirfd = -1;
		}
		rm_rf(t->dir);
		update_register(a);
	}
	if (t->busy)
		return; /* freed once its job is done */
	for (struct task **pp = &a->tasks; *pp; pp = &(*pp)->next)
		if (*pp == t) {
			*pp = t->next;
			break;
		}
	task_free(t);
}

/* ---- messages to the coordinator --------------------------------------------------- */

static int send_msg(struct agent *a, cJSON *msg, int64_t *ret_id)
{
	int r;

	if (!msg)
		return -ENOMEM;
	if (!a->cl) {
		cJSON_Delete(msg);
		return -ENOTCONN;
	}
	r = net_client_send(a->cl, msg, ret_id);
	cJSON_Delete(msg);
	return r;
}

static void send_status(struct task *t, const char *state, const char *reason)
{
	cJSON *m = proto_new(PROTO_TASK_STATUS);
	uint64_t wall = 0;

	if (t->end.started_boottime_ns && t->end.finished_boottime_ns > t->end.started_boottime_ns)
		wall = t->end.finished_boottime_ns - t->end.started_boottime_ns;
	else if (t->sup && sup_status(t->sup)->started_realtime_ns)
		wall = realtime_ns() - sup_status(t->sup)->started_realtime_ns;
	if (m && (!cJSON_AddStringToObject(m, "task_id", t->offer->task_id) ||
		  !cJSON_AddStringToObject(m, "state", state) ||
		  canon_add_u64(m, "cpu_ns", t->cpu_ns & INT64_MAX) < 0 ||
		  canon_add_u64(m, "wall_ns", wall & INT64_MAX) < 0 ||
		  (reason && !cJSON_AddStringToObject(m, "reason", reason)))) {
		cJSON_Delete(m);
		m = NULL;
	}
	send_msg(t->a, m, NULL);
}

static void send_status_id(struct agent *a, const char *id, const char *state, const char *reason)
{
	cJSON *m = proto_new(PROTO_TASK_STATUS);

	if (m &&
	    (!cJSON_AddStringToObject(m, "task_id", id) ||
	     !cJSON_AddStringToObject(m, "state", state) || canon_add_u64(m, "cpu_ns", 0) < 0 ||
	     (reason && !cJSON_AddStringToObject(m, "reason", reason)))) {
		cJSON_Delete(m);
		m = NULL;
	}
	send_msg(a, m, NULL);
}

/* A task that cannot go on before it ran: tell the coordinator (it requeues) and forget it. */
static void task_fail(struct task *t, const char *why)
{
	char reason[OFFER_REASON_MAX];

	fmt(reason, sizeof(reason), "%s", why);
	log_warn("task %s failed: %s", t->offer->task_id, reason);
	t->a->ended[SUP_FAILED]++;
	send_status(t, "failed", reason);
	task_drop(t);
}

static void send_heartbeat(struct agent *a)
{
	cJSON *m = proto_new(PROTO_HEARTBEAT);
	struct offer_load l = agent_load(a);
	uint32_t free_mc =
		a->cfg->max_millicores > l.millicores ? a->cfg->max_millicores - l.millicores : 0;
	cJSON *ids = running_ids(a);

	if (!m || !ids || canon_add_u64(m, "free_cores", free_mc / 1000) < 0 ||
	    !cJSON_AddItemToObject(m, "running", ids)) {
		if (!m || !cJSON_IsArray(cJSON_GetObjectItem(m, "running")))
			cJSON_Delete(ids);
		cJSON_Delete(m);
		return;
	}
	send_msg(a, m, NULL);
	a->last_hb_ms = now_ms();
}

/* ---- REGISTER ------------------------------------------------------------------------ */

static int32_t utc_offset_s(void)
{
	time_t now = time(NULL);
	struct tm tm;

	if (!localtime_r(&now, &tm))
		return 0;
	return (int32_t)tm.tm_gmtoff;
}

/* The windows as UTC spans per day ({day, start_min, end_min}), at most 64 (the rest is left out). */
static cJSON *windows_utc(const struct window *w, int32_t off_s)
{
	static const char *const days[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
	cJSON *arr = cJSON_CreateArray();
	int off_min = off_s / 60;
	int n = 0;

	if (!arr)
		return NULL;
	for (int d = 0; d < 7 && n < 64; d++) {
		int m = 0;

		while (m < 1440 && n < 64) {
			int start, u = d * 1440 + m;
			int local =
				((u + off_min) % WINDOW_MINUTES + WINDOW_MINUTES) % WINDOW_MINUTES;

			if (!window_inside_minute(w, (unsigned)local)) {
				m++;
				continue;
			}
			start = m;
			while (m < 1440) {
				u = d * 1440 + m;
				local = ((u + off_min) % WINDOW_MINUTES + WINDOW_MINUTES) %
					WINDOW_MINUTES;
				if (!window_inside_minute(w, (unsigned)local))
					break;
				m++;
			}
			{
				cJSON *o = cJSON_CreateObject();

				if (!o || !cJSON_AddItemToArray(arr, o) ||
				    !cJSON_AddStringToObject(o, "day", days[d]) ||
				    canon_add_i64(o, "start_min", start) < 0 ||
				    canon_add_i64(o, "end_min", m) < 0) {
					cJSON_Delete(arr);
					return NULL;
				}
				n++;
			}
		}
	}
	if (n == 0) { /* never: one empty span, since no spans at all would mean "always" */
		cJSON *o = cJSON_CreateObject();

		if (!o || !cJSON_AddItemToArray(arr, o) ||
		    !cJSON_AddStringToObject(o, "day", "mon") ||
		    canon_add_i64(o, "start_min", 0) < 0 || canon_add_i64(o, "end_min", 0) < 0) {
			cJSON_Delete(arr);
			return NULL;
		}
	}
	return arr;
}

static void update_register(struct agent *a)
{
	const struct agent_config *c = a->cfg;
	cJSON *m = proto_new(PROTO_REGISTER), *w = NULL, *ids = running_ids(a);
	int32_t off = utc_offset_s();
	struct utsname un;
	uint32_t offered = MAX(1U, c->max_millicores / 1000);
	bool ok;

	if (!a->cl) {
		cJSON_Delete(m);
		cJSON_Delete(ids);
		return;
	}
	if (uname(&un) < 0)
		fmt(un.machine, sizeof(un.machine), "unknown");
	ok = m && ids && canon_add_u64(m, "cores", a->host->ncpus) == 0 &&
	     canon_add_u64(m, "mem_mb", MAX(1ULL, a->host->mem_bytes / MIB)) == 0 &&
	     canon_add_u64(m, "cores_offered", offered) == 0 &&
	     canon_add_u64(m, "mem_offered_mb", MAX(1ULL, c->max_memory / MIB)) == 0 &&
	     canon_add_u64(m, "ask_price", c->ask_price) == 0 &&
	     cJSON_AddStringToObject(m, "location", c->location[0] ? c->location : "unstated") &&
	     canon_add_u64(m, "renewable_pm", c->renewable_ppm / 1000) == 0 &&
	     canon_add_u64(m, "perf_score", MIN(a->perf.multi_kib_s, 1000000000ULL)) == 0 &&
	     canon_add_u64(m, "perf_single_kib_s", a->perf.single_kib_s) == 0 &&
	     canon_add_u64(m, "perf_threads", a->perf.threads) == 0 &&
	     cJSON_AddStringToObject(m, "perf_hash", a->perf.hash_hex) &&
	     cJSON_AddStringToObject(m, "agent_version", "aicn-agent " AICN_VERSION) &&
	     cJSON_AddStringToObject(m, "arch", un.machine) &&
	     canon_add_u64(m, "max_tasks", c->max_tasks) == 0 &&
	     canon_add_i64(m, "utc_offset_s", off) == 0 && cJSON_AddItemToObject(m, "running", ids);
	if (!ok) {
		if (!m || !cJSON_GetObjectItem(m, "running"))
			cJSON_Delete(ids);
		cJSON_Delete(m);
		log_warn("cannot build REGISTER (out of memory)");
		return;
	}
	if (c->windows[0]) {
		w = windows_utc(&c->window, off);
		if (!w || !cJSON_AddItemToObject(m, "windows", w) ||
		    !cJSON_AddStringToObject(m, "window", c->windows)) {
			if (w && !cJSON_GetObjectItem(m, "windows"))
				cJSON_Delete(w);
			cJSON_Delete(m);
			return;
		}
	}
	if (net_client_set_register(a->cl, m) < 0)
		log_warn("cannot set REGISTER");
	cJSON_Delete(m);
}

/* ---- fetching blobs ---------------------------------------------------------------- */

static void fetch_next(struct task *t);
static void start_unpack(struct task *t);

static const char *fetch_digest(const struct task *t)
{
	return t->fetch_i == 0 ? t->offer->image : t->offer->inputs[t->fetch_i - 1].digest;
}

static void fetch_reset(struct task *t)
{
	if (t->fetch_fd >= 0)
		close(t->fetch_fd);
	t->fetch_fd = -1;
	t->fetch_sha = sha256_free(t->fetch_sha);
	t->fetch_inflight = false;
	if (t->fetch_tmp[0])
		unlink(t->fetch_tmp);
	t->fetch_tmp[0] = '\0';
}

static void fetch_request(struct task *t)
{
	cJSON *m = proto_new(PROTO_BLOB_GET);

	if (m && (!cJSON_AddStringToObject(m, "digest", fetch_digest(t)) ||
		  canon_add_u64(m, "offset", t->fetch_off) < 0)) {
		cJSON_Delete(m);
		m = NULL;
	}
	t->fetch_inflight = send_msg(t->a, m, &t->fetch_ref) == 0;
}

/* Where item I goes once complete. */
static int fetch_dest(const struct task *t, char *buf, size_t len)
{
	int n = t->fetch_i == 0
			? fmt(buf, len, "%s/%s", t->a->blobs_dir, digest_hex(t->offer->image))
			: fmt(buf, len, "%s/work/%s", t->dir,
			      t->offer->inputs[t->fetch_i - 1].path);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* Make the parent directories of input I below work/ (never through a link). */
static int input_parents(const struct task *t, const char *rel)
{
	_cleanup_close_ int fd =
		openat(t->dirfd, "work", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	char buf[OFFER_INPUT_PATH_MAX + 1];
	char *p = buf, *slash;

	if (fd < 0)
		return -errno;
	fmt(buf, sizeof(buf), "%s", rel);
	while ((slash = strchr(p, '/'))) {
		int sub;

		*slash = '\0';
		if (mkdirat(fd, p, 0755) < 0 && errno != EEXIST)
			return -errno;
		sub = openat(fd, p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub < 0)
			return -errno;
		close(fd);
		fd = sub;
		p = slash + 1;
	}
	return 0;
}

static void fetch_next(struct task *t)
{
	char dest[PATH_MAX];
	struct stat st;

	fetch_reset(t);
	for (; t->fetch_i <= t->offer->n_inputs; t->fetch_i++) {
		if (fetch_dest(t, dest, sizeof(dest)) < 0) {
			task_fail(t, "input path too long");
			return;
		}
		if (t->fetch_i == 0 && stat(dest, &st) == 0 && S_ISREG(st.st_mode))
			continue; /* the image archive is here already */
		if (t->fetch_i > 0 && input_parents(t, t->offer->inputs[t->fetch_i - 1].path) < 0) {
			task_fail(t, "cannot create the directories of an input");
			return;
		}
		if (fmt(t->fetch_tmp, sizeof(t->fetch_tmp), "%s/fetch.tmp", t->dir) >=
		    (int)sizeof(t->fetch_tmp)) {
			task_fail(t, "task directory path too long");
			return;
		}
		t->fetch_fd = open(t->fetch_tmp,
				   O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
		if (t->fetch_fd < 0 || sha256_new(&t->fetch_sha) < 0) {
			task_fail(t, "cannot create a download file");
			return;
		}
		t->fetch_off = 0;
		t->fetch_size = UINT64_MAX;
		if (net_client_conn(t->a->cl))
			fetch_request(t);
		return; /* or on_ready asks */
	}
	start_unpack(t);
}

static struct task *fetch_owner(struct agent *a, const char *digest, uint64_t off)
{
	for (struct task *t = a->tasks; t; t = t->next)
		if (!t->dropped && t->state == T_FETCH && t->fetch_inflight &&
		    t->fetch_off == off && strcmp(fetch_digest(t), digest) == 0)
			return t;
	return NULL;
}

static int on_blob_put(struct net_conn *c, const struct proto_msg *m, void *ud)
{
	struct agent *a = ud;
	const char *digest = NULL, *b64 = NULL;
	uint64_t off = 0, size = 0, limit;
	_cleanup_free_ uint8_t *data = NULL;
	size_t len = 0;
	int last = 0;
	struct task *t;
	char dest[PATH_MAX];

	(void)c;
	if (canon_get_str(m->root, "digest", &digest) < 0 ||
	    canon_get_u64(m->root, "offset", &off) < 0 ||
	    canon_get_u64(m->root, "size", &size) < 0 || canon_get_str(m->root, "data", &b64) < 0 ||
	    canon_get_bool(m->root, "last", &last) < 0)
		return 0;
	t = fetch_owner(a, digest, off);
	if (!t) {
		log_debug("BLOB_PUT %s at %llu: not asked for; ignored", digest,
			  (unsigned long long)off);
		return 0;
	}
	t->fetch_inflight = false;
	limit = t->fetch_i == 0 ? MIN(IMAGE_BLOB_MAX, a->cfg->image_cache_size)
				: t->offer->inputs[t->fetch_i - 1].size;
	if (base64_decode(b64, strlen(b64), &data, &len) < 0 || len > PROTO_BLOB_CHUNK) {
		task_fail(t, "the coordinator sent a malformed blob chunk");
		return 0;
	}
	if (t->fetch_size == UINT64_MAX)
		t->fetch_size = size;
	if (size != t->fetch_size || size > limit || off + len > size || (!len && !last) ||
	    (t->fetch_i > 0 && size != t->offer->inputs[t->fetch_i - 1].size)) {
		task_fail(t, t->fetch_i == 0 ? "image archive larger than this node accepts"
					     : "input blob size differs from the offer");
		return 0;
	}
	if (len && pwrite(t->fetch_fd, data, len, (off_t)off) != (ssize_t)len) {
		task_fail(t, "cannot write a downloaded blob (disk full?)");
		return 0;
	}
	sha256_update(t->fetch_sha, data, len);
	t->fetch_off = off + len;
	if (!last) {
		fetch_request(t);
		return 0;
	}
	{
		uint8_t got[SHA256_LEN], want[SHA256_LEN];

		sha256_final(t->fetch_sha, got);
		t->fetch_sha = sha256_free(t->fetch_sha);
		if (t->fetch_off != size || digest_parse(digest, want) < 0 ||
		    memcmp(got, want, SHA256_LEN) != 0) {
			task_fail(t, "downloaded blob does not match its digest");
			return 0;
		}
	}
	if (fsync(t->fetch_fd) < 0 || fetch_dest(t, dest, sizeof(dest)) < 0 ||
	    rename(t->fetch_tmp, dest) < 0) {
		task_fail(t, "cannot store a downloaded blob");
		return 0;
	}
	t->fetch_tmp[0] = '\0';
	log_debug("task %s: fetched %s (%llu bytes) %llu ms after the offer", t->offer->task_id,
		  digest, (unsigned long long)size,
		  (unsigned long long)(now_ms() - t->accepted_ms));
	t->fetch_i++;
	fetch_next(t);
	return 0;
}

/* ---- the image: cache accounting and unpacking ------------------------------------ */

static struct img_ent *img_find(struct agent *a, const char *digest)
{
	for (size_t i = 0; i < IMG_TABLE; i++)
		if (a->imgs[i].img && strcmp(a->imgs[i].digest, digest) == 0)
			return &a->imgs[i];
	return NULL;
}

static void img_forget(struct agent *a, const char *digest)
{
	struct img_ent *e = img_find(a, digest);

	if (e) {
		e->img = sbx_image_free(e->img);
		e->digest[0] = '\0';
	}
}

/* Keep an opened image for the next task of the same archive (a full table keeps none). */
static void img_keep(struct task *t)
{
	struct agent *a = t->a;

	if (img_find(a, t->offer->image))
		return;
	for (size_t i = 0; i < IMG_TABLE; i++)
		if (!a->imgs[i].img) {
			a->imgs[i].img = t->img;
			fmt(a->imgs[i].digest, sizeof(a->imgs[i].digest), "%s", t->offer->image);
			t->img_borrowed = true;
			return;
		}
}

static int evict_image(const char *digest, void *ud)
{
	struct agent *a = ud;
	char path[PATH_MAX], side[PATH_MAX];
	_cleanup_free_ char *rootfs = NULL;
	size_t len = 0;
	_cleanup_close_ int dfd = open(a->blobs_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	fmt(path, sizeof(path), "%s/%s", a->blobs_dir, digest_hex(digest));
	fmt(side, sizeof(side), "%s.rootfs", digest_hex(digest));
	img_forget(a, digest);
	if (dfd >= 0 && read_small(dfd, side, PATH_MAX, &rootfs, &len) == 0 && rootfs &&
	    rootfs[0] == '/' && strncmp(rootfs, a->images_dir, strlen(a->images_dir)) == 0)
		rm_rf(rootfs);
	if (dfd >= 0)
		unlinkat(dfd, side, 0);
	unlink(path);
	log_info("image cache: evicted %s", digest);
	return 0;
}

struct unpack_job {
	struct task *t;
	char archive[PATH_MAX];
	char cache[PATH_MAX];
};

static void unpack_work(void *ud)
{
	struct unpack_job *j = ud;
	struct sbx_err err = {{0}};

	j->t->unpack_err = sbx_image_open(j->cache, j->archive, &j->t->img, &err);
	fmt(j->t->unpack_why, sizeof(j->t->unpack_why), "%s", err.msg);
}

static void start_task(struct task *t);
static void image_ready(struct task *t, const char *how);

static void unpack_done(void *ud)
{
	struct unpack_job *j = ud;
	struct task *t = j->t;

	free(j);
	t->job = NULL;
	t->busy = false;
	if (t->dropped) {
		task_drop(t);
		return;
	}
	if (t->unpack_err < 0) {
		char why[OFFER_REASON_MAX];

		fmt(why, sizeof(why), "image: %s",
		    t->unpack_why[0] ? t->unpack_why : strerror(-t->unpack_err));
		task_fail(t, why);
		return;
	}
	{
		_cleanup_close_ int dfd = open(t->a->blobs_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		char side[128];

		fmt(side, sizeof(side), "%s.rootfs", digest_hex(t->offer->image));
		if (dfd >= 0)
			write_atomic(dfd, side, t->img->rootfs, strlen(t->img->rootfs));
	}
	img_keep(t);
	image_ready(t, t->img->unpacked ? "unpacked" : "from the rootfs cache");
}

static void image_ready(struct task *t, const char *how)
{
	fmt(t->rootfs, sizeof(t->rootfs), "%s", t->img->rootfs);
	fmt(t->manifest, sizeof(t->manifest), "%s", t->img->digest);
	log_debug("task %s: image %s ready (%s) %llu ms after the offer", t->offer->task_id,
		  t->manifest, how, (unsigned long long)(now_ms() - t->accepted_ms));
	start_task(t);
}

static void start_unpack(struct task *t)
{
	struct agent *a = t->a;
	struct unpack_job *j;
	struct stat st;
	uint64_t size;
	int r;

	t->state = T_UNPACK;
	j = calloc(1, sizeof(*j));
	if (!j) {
		task_fail(t, "out of memory");
		return;
	}
	j->t = t;
	fmt(j->archive, sizeof(j->archive), "%s/%s", a->blobs_dir, digest_hex(t->offer->image));
	fmt(j->cache, sizeof(j->cache), "%s", a->images_dir);
	if (stat(j->archive, &st) < 0) {
		free(j);
		task_fail(t, "image archive vanished");
		return;
	}
	r = cache_lookup(a->cache, t->offer->image, &size);
	if (r == -ENOENT)
		r = cache_insert(a->cache, t->offer->image, (uint64_t)st.st_size, evict_image, a);
	if (r == 0)
		r = cache_pin(a->cache, t->offer->image);
	if (r < 0) {
		free(j);
		task_fail(t, r == -EFBIG    ? "image larger than the node's image cache"
			     : r == -ENOSPC ? "image cache full of images in use"
					    : "image cache error");
		return;
	}
	t->pinned = true;
	{
		struct img_ent *e = img_find(a, t->offer->image);

		if (e && access(e->img->rootfs, F_OK) == 0) {
			free(j);
			t->img = e->img;
			t->img_borrowed = true;
			image_ready(t, "opened already");
			return;
		}
		if (e) /* its rootfs was removed by hand: open it again */
			img_forget(a, t->offer->image);
	}
	t->busy = true;
	t->job = j;
	r = loop_pool_submit(a->pool, unpack_work, unpack_done, j);
	if (r < 0) {
		t->busy = false;
		t->job = NULL;
		free(j);
		task_fail(t, "cannot queue the image unpack");
	}
}

/* ---- starting the task under its supervisor ------------------------------------ */

static char **build_argv(const struct task *t)
{
	size_t n = 0, k = 0;
	char **v;

	for (size_t i = 0; t->img->entrypoint && t->img->entrypoint[i]; i++)
		n++;
	v = calloc(n + t->offer->n_cmd + 1, sizeof(*v));
	if (!v)
		return NULL;
	for (size_t i = 0; t->img->entrypoint && t->img->entrypoint[i]; i++)
		v[k++] = t->img->entrypoint[i];
	for (size_t i = 0; i < t->offer->n_cmd; i++)
		v[k++] = t->offer->cmd[i];
	return v;
}

/* The image's environment with the offer's on top (same name: the offer's wins). */
static char **build_env(const struct task *t)
{
	size_t n = 0, k = 0;
	char **v;
	bool has_path = false;

	for (size_t i = 0; t->img->env && t->img->env[i]; i++)
		n++;
	v = calloc(n + t->offer->n_env + 2, sizeof(*v));
	if (!v)
		return NULL;
	for (size_t i = 0; t->img->env && t->img->env[i]; i++) {
		const char *e = t->img->env[i], *eq = strchr(e, '=');
		size_t kl = eq ? (size_t)(eq - e) : strlen(e);
		bool overridden = false;

		for (size_t j = 0; j < t->offer->n_env; j++)
			if (strncmp(t->offer->env[j], e, kl) == 0 && t->offer->env[j][kl] == '=')
				overridden = true;
		if (!overridden)
			v[k++] = (char *)e;
	}
	for (size_t j = 0; j < t->offer->n_env; j++)
		v[k++] = t->offer->env[j];
	for (size_t i = 0; i < k; i++)
		if (strncmp(v[i], "PATH=", 5) == 0)
			has_path = true;
	if (!has_path)
		v[k++] =
			(char *)"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	return v;
}

static int save_agent_json(struct task *t)
{
	cJSON *o = cJSON_CreateObject();
	_cleanup_free_ char *text = NULL;
	size_t len;
	int r = -ENOMEM;

	if (o && canon_add_u64(o, "cgroup_id", t->cg_id) == 0 &&
	    cJSON_AddStringToObject(o, "manifest", t->manifest) &&
	    cJSON_AddStringToObject(o, "rootfs", t->rootfs) && canon_print(o, &text, &len) == 0)
		r = write_atomic(t->dirfd, "agent.json", text, len);
	cJSON_Delete(o);
	return r;
}

static void start_task(struct task *t)
{
	struct agent *a = t->a;
	_cleanup_free_ char **argv = NULL, **envp = NULL;
	char work[PATH_MAX];
	struct sup_sandbox sb;
	struct sup_spec spec;
	int r;

	if (t->cancel != C_NONE) {
		task_fail(t, t->cancel == C_WINDOW ? "availability window closed" : "cancelled");
		return;
	}
	send_status(t, "starting", NULL);
	argv = build_argv(t);
	envp = build_env(t);
	if (!argv || !envp) {
		task_fail(t, "out of memory");
		return;
	}
	r = cg_create(&a->cgh, a->cap_name, t->offer->task_id, a->cgh.layout == CG_LAYOUT_HYBRID,
		      &t->cg);
	if (r == -EEXIST) { /* left by a task of the same id that did not clean up */
		struct cg *old = NULL;

		if (cg_open(&a->cgh, a->cap_name, t->offer->task_id,
			    a->cgh.layout == CG_LAYOUT_HYBRID, &old) == 0)
			cg_destroy(old);
		r = cg_create(&a->cgh, a->cap_name, t->offer->task_id,
			      a->cgh.layout == CG_LAYOUT_HYBRID, &t->cg);
	}
	if (r < 0) {
		log_errno(LOG_LVL_ERR, r, "task %s: cannot create its cgroup", t->offer->task_id);
		task_fail(t, "agent: cannot create the task's cgroup");
		return;
	}
	r = meter_track(a->meter, t->cg->v2_path, &t->cg_id);
	if (r < 0) {
		log_errno(LOG_LVL_ERR, r, "task %s: cannot meter its cgroup", t->offer->task_id);
		task_fail(t, "agent: cannot meter the task");
		return;
	}
	t->tracked = true;
	log_debug("task %s: cgroup %llu created and metered %llu ms after the offer",
		  t->offer->task_id, (unsigned long long)t->cg_id,
		  (unsigned long long)(now_ms() - t->accepted_ms));
	r = save_agent_json(t);
	if (r < 0) {
		task_fail(t, "agent: cannot write the task's state");
		return;
	}
	fmt(work, sizeof(work), "%s/work", t->dir);
	sb = (struct sup_sandbox){
		.rootfs = t->rootfs,
		.work_dir = work,
		.user = t->img->user,
		.millicores = t->offer->cores * 1000,
		.memory_bytes = t->offer->mem_mb * MIB,
		.pids = TASK_PIDS,
	};
	spec = (struct sup_spec){
		.task_id = t->offer->task_id,
		.argv = (const char *const *)argv,
		.envp = (const char *const *)envp,
		.cwd = t->img->workdir,
		.cg = t->cg,
		.timeout_ms = t->offer->deadline_ms,
		.sandbox = &sb,
	};
	r = sup_start(a->sup_bin, t->dir, &spec, &t->sup);
	if (r < 0) {
		log_errno(LOG_LVL_ERR, r, "task %s: cannot start its supervisor",
			  t->offer->task_id);
		task_fail(t, "agent: cannot start the task's supervisor");
		return;
	}
	t->state = T_RUN;
	t->last_interval_ms = t->last_status_ms = now_ms();
	if (sup_status(t->sup)->kind != SUP_FAILED) { /* it ran (it may have ended already) */
		log_info("task %s: running (pid %d, %u cores, %llu MiB) %llu ms after the offer",
			 t->offer->task_id, (int)sup_status(t->sup)->pid, t->offer->cores,
			 (unsigned long long)t->offer->mem_mb,
			 (unsigned long long)(now_ms() - t->accepted_ms));
		send_status(t, "running", NULL);
	}
	/* an immediate failure is seen by the next tick */
}

/* ---- records ----------------------------------------------------------------------- */

static void fill_record(struct task *t, struct usage_record *rec, const struct meter_usage *u,
			uint64_t kernel_ns, uint64_t mem_peak)
{
	const struct sup_status *st = t->sup ? sup_status(t->sup) : &t->end;

	memset(rec, 0, sizeof(*rec));
	fmt(rec->task, sizeof(rec->task), "%s", t->offer->task_id);
	rec->replica = t->offer->replica;
	fmt(rec->renter, sizeof(rec->renter), "%s",
	    t->offer->renter[0] ? t->offer->renter : "unknown");
	/* the image as the renter submitted it (the archive blob): what the coordinator checks */
	digest_parse(t->offer->image, rec->image);
	rec->cgroup_id = t->cg_id;
	rec->start_ns = st->started_realtime_ns;
	rec->cpu_ns = u->cpu_ns;
	rec->cpu_kernel_ns = kernel_ns;
	rec->runq_wait_ns = u->rq_wait_ns;
	rec->switches = u->vol_switches + u->invol_switches;
	rec->procs = u->procs_forked + u->threads_born;
	rec->net_rx_bytes = u->net_rx_bytes;
	rec->net_tx_bytes = u->net_tx_bytes;
	rec->mem_peak_bytes = mem_peak;
	rec->limits.cpu_period_us = 100000;
	rec->limits.cpu_quota_us = (uint64_t)t->offer->cores * 100000;
	rec->limits.mem_bytes = t->offer->mem_mb * MIB;
	rec->limits.pids = TASK_PIDS;
	rec->limits.timeout_ns = t->offer->deadline_ms * 1000000ULL;
}

/* Sign and log a record, make it durable, and hand it to the outbox.  Returns its seq. */
static int log_record(struct agent *a, struct usage_record *rec, uint64_t *ret_seq,
		      uint8_t ret_hash[SHA256_LEN])
{
	_cleanup_free_ char *line = NULL;
	size_t len = 0;
	int r;

	r = meterlog_append(a->ml, rec);
	if (r == 0)
		r = meterlog_flush(a->ml);
	if (r == 0)
		r = record_format(rec, &line, &len);
	if (r < 0)
		return r;
	r = outbox_put(a->ob, rec->seq, line, len);
	if (r < 0)
		return r;
	if (ret_hash)
		sha256(line, len, ret_hash);
	*ret_seq = rec->seq;
	if (net_client_conn(a->cl))
		outbox_pump(a->ob, net_client_conn(a->cl));
	return 0;
}

static void interval_record(struct task *t)
{
	struct meter_usage u;
	struct usage_record rec;
	uint64_t kernel = 0, peak = 0, seq;
	const struct sup_status *st = sup_status(t->sup);
	int r;

	if (!t->tracked || meter_read(t->a->meter, t->cg_id, &u) < 0)
		return;
	cg_cpu_usage_ns(t->cg, &kernel);
	cg_memory_peak(t->cg, &peak);
	fill_record(t, &rec, &u, kernel, peak);
	rec.type = RECORD_INTERVAL;
	rec.end_ns = realtime_ns();
	rec.wall_ns =
		rec.end_ns > st->started_realtime_ns ? rec.end_ns - st->started_realtime_ns : 0;
	rec.exit_kind = RECORD_EXIT_RUNNING;
	r = log_record(t->a, &rec, &seq, NULL);
	if (r < 0)
		log_errno(LOG_LVL_ERR, r, "task %s: interval record", t->offer->task_id);
}

/* ---- the end of a task ------------------------------------------------------------- */

static void report_step(struct task *t);

static int exit_code_of(const struct sup_status *st)
{
	switch (st->kind) {
	case SUP_EXITED:
		return st->exit_code;
	case SUP_SIGNALED:
		return MIN(128 + st->signal, 255);
	case SUP_OOM:
		return 137;
	case SUP_TIMEOUT:
		return 124;
	case SUP_CANCELED:
		return 130;
	default:
		return 255;
	}
}

static void build_work(void *ud)
{
	struct task *t = ud;
	char out[PATH_MAX];

	fmt(out, sizeof(out), "%s/result.tar", t->dir);
	t->build_err = result_build(t->dirfd, "work", t->exit_code, out, &t->res, t->build_why,
				    sizeof(t->build_why));
}

static int save_report(struct task *t)
{
	cJSON *o = cJSON_CreateObject();
	_cleanup_free_ char *text = NULL;
	char hex[SHA256_HEX_LEN + 1], rd[SHA256_HEX_LEN + 8];
	size_t len;
	int r = -ENOMEM;

	hex_encode(t->rec_hash, SHA256_LEN, hex);
	digest_str(t->res.digest, rd);
	if (o && canon_add_u64(o, "seq", t->seq) == 0 &&
	    cJSON_AddStringToObject(o, "record_hash", hex) &&
	    canon_add_i64(o, "exit_code", t->exit_code) == 0 &&
	    (t->has_result ? cJSON_AddStringToObject(o, "result", rd) != NULL
			   : cJSON_AddNullToObject(o, "result") != NULL) &&
	    canon_add_u64(o, "result_size", t->res.size) == 0 &&
	    cJSON_AddStringToObject(o, "kind", sup_kind_name(t->end.kind)) &&
	    canon_add_u64(o, "cpu_ns", t->cpu_ns) == 0 && canon_print(o, &text, &len) == 0)
		r = write_atomic(t->dirfd, "report.json", text, len);
	cJSON_Delete(o);
	return r;
}

static enum record_exit_kind record_kind(const struct task *t)
{
	switch (t->end.kind) {
	case SUP_EXITED:
		return RECORD_EXIT_EXITED;
	case SUP_SIGNALED:
		return RECORD_EXIT_SIGNALED;
	case SUP_OOM:
		return RECORD_EXIT_OOM;
	case SUP_TIMEOUT:
		return RECORD_EXIT_TIMEOUT;
	case SUP_CANCELED:
		return t->cancel == C_CPU ? RECORD_EXIT_TIMEOUT : RECORD_EXIT_CANCELLED;
	case SUP_LOST:
		return RECORD_EXIT_LOST;
	default:
		return RECORD_EXIT_ERROR;
	}
}

/* The result is built (or not needed): sign the final record, then report. */
static void build_done(void *ud)
{
	struct task *t = ud;
	struct agent *a = t->a;
	struct usage_record rec;
	int r;

	t->busy = false;
	if (t->dropped) {
		task_drop(t);
		return;
	}
	if (t->has_result && t->build_err < 0) {
		log_errno(LOG_LVL_ERR, t->build_err, "task %s: result archive: %s",
			  t->offer->task_id, t->build_why);
		t->has_result = false;
	}
	fill_record(t, &rec, &t->usage, t->kernel_ns, t->mem_peak);
	rec.type = RECORD_FINAL;
	rec.end_ns = t->end.finished_realtime_ns ? t->end.finished_realtime_ns : realtime_ns();
	rec.wall_ns = t->end.finished_boottime_ns > t->end.started_boottime_ns
			      ? t->end.finished_boottime_ns - t->end.started_boottime_ns
			      : 0;
	rec.exit_kind = record_kind(t);
	rec.exit_status = t->end.kind == SUP_EXITED ? t->end.exit_code : t->end.signal;
	if (t->has_result) {
		rec.has_result = 1;
		memcpy(rec.result, t->res.digest, SHA256_LEN);
	}
	r = log_record(a, &rec, &t->seq, t->rec_hash);
	if (r < 0) {
		log_errno(LOG_LVL_ERR, r, "task %s: cannot log its final record",
			  t->offer->task_id);
		send_status(t, "failed", "agent: cannot sign the usage record");
		task_drop(t);
		return;
	}
	r = save_report(t);
	if (r < 0)
		log_errno(LOG_LVL_WARN, r, "task %s: report.json", t->offer->task_id);
	log_info("task %s: %s, exit %d, cpu %llu ns (kernel %llu ns), final record seq %llu",
		 t->offer->task_id, sup_kind_name(t->end.kind), t->exit_code,
		 (unsigned long long)t->usage.cpu_ns, (unsigned long long)t->kernel_ns,
		 (unsigned long long)t->seq);
	/* the cgroup is no longer needed: the figures are in the record */
	if (t->tracked) {
		meter_untrack(a->meter, t->cg_id);
		t->tracked = false;
	}
	if (t->cg) {
		cg_destroy(t->cg);
		t->cg = NULL;
	}
	if (t->pinned) {
		cache_unpin(a->cache, t->offer->image);
		t->pinned = false;
	}
	t->state = T_REPORT;
	t->record_acked = !outbox_has(a->ob, t->seq);
	if (t->cancel == C_KILLED) {
		send_status(t, "killed", NULL);
	} else if (t->cancel == C_WINDOW) {
		send_status(t, "failed", "availability window closed: the task was cancelled");
	} else if (!t->has_result) {
		char why[OFFER_REASON_MAX];

		fmt(why, sizeof(why), "%s%s%s", sup_kind_name(t->end.kind),
		    t->end.error[0] ? ": " : "", t->end.error);
		send_status(t, "failed", why);
	} else {
		send_status(t, "exited", NULL);
	}
	update_register(a);
	report_step(t);
}

static void settle_work(void *ud);
static void settle_done(void *ud);
static void task_measured(struct task *t);

/* The supervisor recorded the end (or died): read the meter's final figures. */
static void task_ended(struct task *t)
{
	struct agent *a = t->a;
	int r;

	t->end = *sup_status(t->sup);
	a->ended[t->end.kind < SUP_KIND_N ? t->end.kind : SUP_FAILED]++;
	t->state = T_END;
	if (t->end.kind == SUP_FAILED) {
		char why[OFFER_REASON_MAX];

		fmt(why, sizeof(why), "sandbox: %s", t->end.error);
		log_warn("task %s did not start: %s", t->offer->task_id, t->end.error);
		send_status(t, "failed", why);
		task_drop(t);
		return;
	}
	if (t->end.kind == SUP_LOST && t->cg) {
		r = cg_kill(t->cg);
		if (r < 0)
			log_errno(LOG_LVL_WARN, r, "task %s: killing what its lost supervisor left",
				  t->offer->task_id);
		t->end.finished_realtime_ns = realtime_ns();
	}
	if (!t->tracked) {
		task_measured(t);
		return;
	}
	t->busy = true;
	r = loop_pool_submit(a->pool, settle_work, settle_done, t);
	if (r < 0) {
		t->busy = false;
		t->settle_err = r;
		settle_done(t);
	}
}

/*
 * A worker thread: wait until the meter has committed the task's last threads
 * (within a tick of their final switch-out, or when the kernel frees them if
 * the meter's "dying" map was full), then read its final figures.
 */
static void settle_work(void *ud)
{
	struct task *t = ud;

	t->settle_err = meter_settle(t->a->meter, t->cg_id, SETTLE_MS);
	t->read_err = meter_read(t->a->meter, t->cg_id, &t->usage);
}

static void settle_done(void *ud)
{
	struct task *t = ud;

	t->busy = false;
	if (t->dropped) {
		task_drop(t);
		return;
	}
	if (t->settle_err < 0 && t->settle_err != -ETIMEDOUT)
		log_errno(LOG_LVL_WARN, t->settle_err, "task %s: meter_settle", t->offer->task_id);
	if (t->settle_err == -ETIMEDOUT)
		log_warn("task %s: the meter did not see all threads end within %d ms",
			 t->offer->task_id, SETTLE_MS);
	if (t->read_err < 0)
		log_errno(LOG_LVL_ERR, t->read_err, "task %s: meter_read", t->offer->task_id);
	task_measured(t);
}

/* The task's figures are final: cross-check them and build its result and record. */
static void task_measured(struct task *t)
{
	struct agent *a = t->a;
	int r;

	t->cpu_ns = t->usage.cpu_ns;
	if (t->cg) {
		if (cg_cpu_usage_ns(t->cg, &t->kernel_ns) < 0)
			t->kernel_ns = t->end.cpu_ns;
		if (cg_memory_peak(t->cg, &t->mem_peak) < 0)
			t->mem_peak = 0;
	} else {
		t->kernel_ns = t->end.cpu_ns;
	}
	{
		int64_t diff = 0;

		if (t->tracked && !meter_crosscheck(t->usage.cpu_ns, t->kernel_ns, &diff))
			log_warn("task %s: meter %llu ns vs kernel %llu ns (diff %lld ns)",
				 t->offer->task_id, (unsigned long long)t->usage.cpu_ns,
				 (unsigned long long)t->kernel_ns, (long long)diff);
	}
	t->exit_code = exit_code_of(&t->end);
	t->has_result = t->cancel != C_KILLED && t->cancel != C_WINDOW && t->end.kind != SUP_LOST;
	if (!t->has_result) {
		build_done(t);
		return;
	}
	t->busy = true;
	r = loop_pool_submit(a->pool, build_work, build_done, t);
	if (r < 0) {
		t->busy = false;
		t->build_err = r;
		build_done(t);
	}
}

/* ---- reporting: record ack, result upload, PoW, TASK_RESULT ----------------------- */

static void upload_chunk(struct task *t)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ uint8_t *buf = NULL;
	_cleanup_free_ char *b64 = NULL;
	char digest[SHA256_HEX_LEN + 8];
	size_t want;
	ssize_t n;
	cJSON *m;

	fd = openat(t->dirfd, "result.tar", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	buf = malloc(PROTO_BLOB_CHUNK);
	if (fd < 0 || !buf) {
		log_err("task %s: result archive unreadable; the result is given up",
			t->offer->task_id);
		t->has_result = false;
		t->up_done = true;
		return;
	}
	want = (size_t)MIN((uint64_t)PROTO_BLOB_CHUNK, t->res.size - t->up_off);
	n = pread(fd, buf, want, (off_t)t->up_off);
	if (n != (ssize_t)want || base64_encode(buf, want, &b64) < 0) {
		log_err("task %s: reading the result archive failed", t->offer->task_id);
		t->has_result = false;
		t->up_done = true;
		return;
	}
	digest_str(t->res.digest, digest);
	m = proto_new(PROTO_BLOB_PUT);
	if (m && (!cJSON_AddStringToObject(m, "digest", digest) ||
		  canon_add_u64(m, "offset", t->up_off) < 0 ||
		  canon_add_u64(m, "size", t->res.size) < 0 ||
		  !cJSON_AddStringToObject(m, "data", b64) ||
		  !cJSON_AddBoolToObject(m, "last", t->up_off + want == t->res.size))) {
		cJSON_Delete(m);
		m = NULL;
	}
	t->up_inflight = send_msg(t->a, m, &t->up_ref) == 0;
}

static void pow_work(void *ud)
{
	struct task *t = ud;
	int r = pow_mint(t->offer->task_id, t->res.digest, t->rec_hash, t->offer->pow_bits, 0, 0,
			 &t->nonce);

	t->pow_done = r == 0;
}

static void pow_done_cb(void *ud)
{
	struct task *t = ud;

	t->busy = false;
	t->pow_busy = false;
	if (t->dropped) {
		task_drop(t);
		return;
	}
	if (!t->pow_done) {
		log_err("task %s: no Proof-of-Work stamp could be minted", t->offer->task_id);
		task_drop(t);
		return;
	}
	report_step(t);
}

static void send_result(struct task *t)
{
	cJSON *m = proto_new(PROTO_TASK_RESULT);
	char digest[SHA256_HEX_LEN + 8];

	digest_str(t->res.digest, digest);
	if (m && (!cJSON_AddStringToObject(m, "task_id", t->offer->task_id) ||
		  canon_add_i64(m, "exit_code", t->exit_code) < 0 ||
		  !cJSON_AddStringToObject(m, "result_digest", digest) ||
		  canon_add_u64(m, "seq", t->seq) < 0 ||
		  canon_add_u64(m, "pow_nonce", t->nonce & INT64_MAX) < 0 ||
		  canon_add_u64(m, "result_size", t->res.size) < 0)) {
		cJSON_Delete(m);
		m = NULL;
	}
	t->result_inflight = send_msg(t->a, m, &t->result_ref) == 0;
}

/* Advance a reporting task as far as it can go now. */
static void report_step(struct task *t)
{
	struct agent *a = t->a;

	if (t->state != T_REPORT || t->busy || t->dropped)
		return;
	if (!t->has_result) {
		/* killed, cancelled by the window, lost: only the record goes out */
		if (t->record_acked) {
			log_info("task %s: record acknowledged; done", t->offer->task_id);
			task_drop(t);
		}
		return;
	}
	if (!net_client_conn(a->cl))
		return;
	if (!t->up_done) {
		if (!t->up_inflight)
			upload_chunk(t);
		if (!t->up_done)
			return;
	}
	if (!t->record_acked)
		return;
	if (!t->pow_done) {
		if (t->offer->pow_bits == 0) {
			pow_work(t);
		} else if (!t->pow_busy) {
			t->pow_busy = t->busy = true;
			if (loop_pool_submit(a->pool, pow_work, pow_done_cb, t) < 0) {
				t->pow_busy = t->busy = false;
				pow_work(t); /* no pool: mint here */
			}
			return;
		}
		if (!t->pow_done)
			return;
	}
	if (!t->result_inflight && now_ms() >= t->retry_at_ms)
		send_result(t);
}

static void on_outbox_acked(uint64_t seq, void *ud)
{
	struct agent *a = ud;

	for (struct task *t = a->tasks; t; t = t->next)
		if (t->state == T_REPORT && !t->dropped && !t->record_acked && t->seq == seq) {
			t->record_acked = true;
			report_step(t);
			return;
		}
}

static int on_ack(struct net_conn *c, const struct proto_msg *m, void *ud)
{
	struct agent *a = ud;
	int64_t ref, seq = -1;

	(void)c;
	if (canon_get_i64(m->root, "ref", &ref) < 0)
		return 0;
	(void)canon_get_i64(m->root, "seq", &seq);
	for (struct task *t = a->tasks; t; t = t->next) {
		if (t->dropped || t->state != T_REPORT)
			continue;
		if (t->up_inflight && t->up_ref == ref) {
			uint64_t want = MIN((uint64_t)PROTO_BLOB_CHUNK, t->res.size - t->up_off);

			t->up_inflight = false;
			if ((seq >= 0 && (uint64_t)seq == t->res.size) ||
			    t->up_off + want >= t->res.size) {
				t->up_done = true;
				log_debug("task %s: result uploaded", t->offer->task_id);
			} else {
				t->up_off += want;
			}
			report_step(t);
			return 0;
		}
		if (t->result_inflight && t->result_ref == ref) {
			log_info("task %s: result accepted by the coordinator", t->offer->task_id);
			task_drop(t);
			return 0;
		}
	}
	return 0;
}

static int on_error(struct net_conn *c, const struct proto_msg *m, void *ud)
{
	struct agent *a = ud;
	const char *code = "?", *msg = "";
	int64_t ref = -1;

	(void)c;
	(void)canon_get_str(m->root, "code", &code);
	(void)canon_get_str(m->root, "message", &msg);
	(void)canon_get_i64(m->root, "ref", &ref);
	for (struct task *t = a->tasks; ref >= 0 && t; t = t->next) {
		char why[OFFER_REASON_MAX];

		if (t->dropped)
			continue;
		if (t->state == T_FETCH && t->fetch_inflight && t->fetch_ref == ref) {
			t->fetch_inflight = false;
			fmt(why, sizeof(why), "cannot fetch %s %s: %s",
			    t->fetch_i == 0 ? "image" : "input", fetch_digest(t), code);
			task_fail(t, why);
			return 0;
		}
		if (t->state != T_REPORT)
			continue;
		if (t->up_inflight && t->up_ref == ref) {
			log_err("task %s: result upload refused: %s: %s", t->offer->task_id, code,
				msg);
			t->up_inflight = false;
			t->up_off = 0; /* start over once, then give up on the result */
			if (++t->retries > 3) {
				task_drop(t);
				return 0;
			}
			t->retry_at_ms = now_ms() + RESULT_RETRY_MS;
			return 0;
		}
		if (t->result_inflight && t->result_ref == ref) {
			t->result_inflight = false;
			if (strcmp(code, "record_missing") == 0 &&
			    ++t->retries <= RESULT_RETRIES_MAX) {
				log_info("task %s: the coordinator lacks record %llu yet; retrying",
					 t->offer->task_id, (unsigned long long)t->seq);
				t->retry_at_ms = now_ms() + RESULT_RETRY_MS;
				return 0;
			}
			log_err("task %s: TASK_RESULT refused: %s: %s", t->offer->task_id, code,
				msg);
			task_drop(t);
			return 0;
		}
	}
	log_warn("coordinator: ERROR %s: %s (ref %lld)", code, msg, (long long)ref);
	return 0;
}

/* ---- offers and coordinator orders ------------------------------------------------- */

static void reject(struct net_conn *c, const char *id, const char *why)
{
	cJSON *m = proto_new(PROTO_TASK_REJECT);

	log_info("offer %s rejected: %s", id, why);
	if (m && cJSON_AddStringToObject(m, "task_id", id) &&
	    cJSON_AddStringToObject(m, "reason", why))
		net_conn_send(c, m, NULL);
	cJSON_Delete(m);
}

static int on_offer(struct net_conn *c, const struct proto_msg *m, void *ud)
{
	struct agent *a = ud;
	char why[OFFER_REASON_MAX];
	struct offer *o = NULL;
	struct offer_load load;
	const char *raw_id = "?";
	struct task *t;
	cJSON *ack;
	int r;

	(void)canon_get_str(m->root, "task_id", &raw_id);
	r = offer_parse(m->root, why, sizeof(why), &o);
	if (r < 0) {
		reject(c, raw_id, r == -ENOMEM ? "agent out of memory" : why);
		return 0;
	}
	t = task_find(a, o->task_id);
	if (t) { /* offered again (a reconnect): it is ours already */
		offer_free(o);
		ack = proto_new(PROTO_TASK_ACCEPT);
		if (ack && cJSON_AddStringToObject(ack, "task_id", t->offer->task_id))
			net_conn_send(c, ack, NULL);
		cJSON_Delete(ack);
		return 0;
	}
	load = agent_load(a);
	r = offer_check(a->cfg, &load, a->in_window, o, why, sizeof(why));
	if (r < 0) {
		reject(c, o->task_id, why);
		offer_free(o);
		return 0;
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		reject(c, o->task_id, "agent out of memory");
		offer_free(o);
		return 0;
	}
	t->a = a;
	t->offer = o;
	t->dirfd = t->fetch_fd = -1;
	t->accepted_ms = now_ms();
	fmt(t->dir, sizeof(t->dir), "%s/%s", a->tasks_dir, o->task_id);
	r = canon_print(m->root, &t->offer_json, &(size_t){0});
	if (r == 0 && mkdir(t->dir, 0700) < 0)
		r = -errno;
	if (r == 0) {
		char work[PATH_MAX];

		fmt(work, sizeof(work), "%s/work", t->dir);
		t->dirfd = open(t->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (t->dirfd < 0 || mkdir(work, 0755) < 0)
			r = -errno;
	}
	if (r == 0)
		r = write_atomic(t->dirfd, "offer.json", t->offer_json, strlen(t->offer_json));
	if (r < 0) {
		log_errno(LOG_LVL_ERR, r, "task %s: cannot create its directory", o->task_id);
		reject(c, o->task_id, "agent: cannot create the task directory");
		rm_rf(t->dir);
		task_free(t);
		return 0;
	}
	t->next = a->tasks;
	a->tasks = t;
	ack = proto_new(PROTO_TASK_ACCEPT);
	if (ack && cJSON_AddStringToObject(ack, "task_id", o->task_id))
		net_conn_send(c, ack, NULL);
	cJSON_Delete(ack);
	log_info("offer %s accepted: %u cores, %llu MiB, image %s, %zu inputs, price %llu",
		 o->task_id, o->cores, (unsigned long long)o->mem_mb, o->image, o->n_inputs,
		 (unsigned long long)o->price);
	update_register(a);
	t->state = T_FETCH;
	send_status(t, "pulling", NULL);
	fetch_next(t);
	return 0;
}

static void task_cancel(struct task *t, enum cancel_why why)
{
	if (t->cancel == C_NONE || why == C_KILLED)
		t->cancel = why;
	switch (t->state) {
	case T_FETCH:
		task_fail(t, why == C_WINDOW ? "availability window closed" : "cancelled");
		break;
	case T_UNPACK:
		break; /* start_task sees the cancel */
	case T_RUN:
		if (!t->cancel_sent) {
			int r = sup_cancel(t->sup);

			t->cancel_sent = true;
			if (r < 0 && r != -EALREADY)
				log_errno(LOG_LVL_WARN, r, "task %s: cancel", t->offer->task_id);
		}
		break;
	case T_END:
		break; /* build_done sees the cancel */
	case T_REPORT:
		if (why == C_KILLED) {
			t->has_result = false; /* the record still goes out */
			report_step(t);
		}
		break;
	}
}

static int on_status(struct net_conn *c, const struct proto_msg *m, void *ud)
{
	struct agent *a = ud;
	const char *id = NULL, *state = NULL;
	struct task *t;

	(void)c;
	if (canon_get_str(m->root, "task_id", &id) < 0 ||
	    canon_get_str(m->root, "state", &state) < 0)
		return 0;
	if (strcmp(state, "killed") != 0)
		return 0;
	t = task_find(a, id);
	if (!t) {
		log_debug("coordinator kills task %s, which is not here", id);
		return 0;
	}
	log_info("task %s: killed by the coordinator", id);
	task_cancel(t, C_KILLED);
	return 0;
}

/* ---- connection ------------------------------------------------------------------- */

static void on_ready(struct net_client *cl, struct net_conn *c, void *ud)
{
	struct agent *a = ud;

	(void)cl;
	a->conn = AGENT_CONN_REGISTERED;
	log_info("registered with the coordinator at %s", net_conn_addr(c));
	outbox_on_ready(a->ob, c);
	for (size_t i = 0; i < a->n_lost; i++) {
		send_status_id(a, a->lost_ids[i], "failed",
			       "agent restarted before the task started");
		free(a->lost_ids[i]);
	}
	free(a->lost_ids);
	a->lost_ids = NULL;
	a->n_lost = 0;
	for (struct task *t = a->tasks; t; t = t->next) {
		if (t->dropped)
			continue;
		if (t->state == T_FETCH && t->fetch_fd >= 0 && !t->fetch_inflight)
			fetch_request(t);
		if (t->state == T_RUN)
			send_status(t, "running", NULL);
		report_step(t);
	}
	send_heartbeat(a);
}

static void on_down(struct net_client *cl, const char *reason, int was_ready, void *ud)
{
	struct agent *a = ud;

	(void)cl;
	if (was_ready)
		log_warn("coordinator connection lost: %s", reason);
	else
		log_debug("coordinator connection attempt failed: %s", reason);
	a->conn = AGENT_CONN_CONNECTING;
	for (struct task *t = a->tasks; t; t = t->next) {
		t->fetch_inflight = false;
		if (t->up_inflight) {
			t->up_inflight = false;
			t->up_off = 0; /* chunks go in order on one connection: start over */
		}
		t->result_inflight = false;
	}
}

/* ---- periodic work ------------------------------------------------------------- */

static void tick_task(struct task *t, uint64_t now)
{
	struct agent *a = t->a;

	if (t->state == T_RUN) {
		int fd = sup_fd(t->sup);
		struct pollfd p = {.fd = fd, .events = POLLIN};

		if (fd < 0 || poll(&p, 1, 0) == 1 || sup_status(t->sup)->kind != SUP_RUNNING) {
			if (sup_refresh(t->sup) < 0 || sup_status(t->sup)->kind != SUP_RUNNING) {
				task_ended(t);
				return;
			}
		}
		if (t->tracked) {
			struct meter_usage u;

			if (meter_read(a->meter, t->cg_id, &u) == 0)
				t->cpu_ns = u.cpu_ns;
		}
		if (t->cpu_ns > t->offer->max_cpu_ns && t->cancel == C_NONE) {
			log_info("task %s: CPU budget of %llu ns used up", t->offer->task_id,
				 (unsigned long long)t->offer->max_cpu_ns);
			task_cancel(t, C_CPU);
		}
		if (now - t->last_status_ms >= STATUS_EVERY_MS) {
			t->last_status_ms = now;
			send_status(t, "running", NULL);
		}
		if (now - t->last_interval_ms >= INTERVAL_EVERY_MS) {
			t->last_interval_ms = now;
			interval_record(t);
		}
	} else if (t->state == T_REPORT && !t->result_inflight && t->retry_at_ms &&
		   now >= t->retry_at_ms) {
		t->retry_at_ms = 0;
		report_step(t);
	}
}

static void on_tick(struct loop_timer *tm, void *ud)
{
	struct agent *a = ud;
	uint64_t now = now_ms();
	bool inside = window_inside(&a->cfg->window, time(NULL));
	struct task *t, *next;

	if (inside != a->in_window) {
		log_info("availability window %s", inside ? "opened" : "closed");
		a->in_window = inside;
		if (!inside && a->cfg->on_window_close == AGENT_WINDOW_CANCEL)
			for (t = a->tasks; t; t = next) {
				next = t->next;
				if (!t->dropped && t->state <= T_RUN)
					task_cancel(t, C_WINDOW);
			}
	}
	for (t = a->tasks; t; t = next) {
		next = t->next;
		if (!t->dropped && !t->busy)
			tick_task(t, now);
	}
	if (now - a->last_hb_ms >= HEARTBEAT_EVERY_MS && net_client_conn(a->cl))
		send_heartbeat(a);
	if (now - a->last_logtick_ms >= LOGTICK_EVERY_MS) {
		int r = meterlog_tick(a->ml);

		if (r < 0)
			log_errno(LOG_LVL_ERR, r, "meter log");
		a->last_logtick_ms = now;
	}
	loop_timer_arm(tm, TICK_MS);
}

static void on_signal(int signo, void *ud)
{
	struct agent *a = ud;

	log_info("%s: stopping; tasks keep running under their supervisors", strsignal(signo));
	loop_stop(a->loop);
}

/* ---- /metrics ------------------------------------------------------------------- */

static int render_metrics(struct agent *a, char **ret, size_t *ret_len)
{
	struct agent_metrics m = {
		.version = AICN_VERSION,
		.conn = a->conn,
		.records_pending_ack = outbox_pending(a->ob),
		.cores_offered_milli = a->cfg->max_millicores,
	};
	struct agent_metrics_counter ended[SUP_KIND_N], drops[4];
	struct agent_metrics_task *cpu = NULL;
	struct meter_drops d = {0};
	size_t n = 0, k = 0;
	int r;

	for (struct task *t = a->tasks; t; t = t->next)
		n++;
	cpu = calloc(n ? n : 1, sizeof(*cpu));
	if (!cpu)
		return -ENOMEM;
	for (struct task *t = a->tasks; t; t = t->next) {
		if (t->dropped)
			continue;
		switch (t->state) {
		case T_FETCH:
		case T_UNPACK:
			m.tasks[AGENT_TASK_FETCHING]++;
			break;
		case T_RUN:
			m.tasks[sup_status(t->sup)->pid ? AGENT_TASK_RUNNING
							: AGENT_TASK_STARTING]++;
			cpu[k++] = (struct agent_metrics_task){t->offer->task_id, t->cpu_ns};
			break;
		case T_END:
		case T_REPORT:
			m.tasks[AGENT_TASK_REPORTING]++;
			cpu[k++] = (struct agent_metrics_task){t->offer->task_id, t->cpu_ns};
			break;
		}
	}
	for (int i = SUP_EXITED; i < SUP_KIND_N; i++)
		ended[i - SUP_EXITED] =
			(struct agent_metrics_counter){sup_kind_name(i), a->ended[i]};
	meter_drops(a->meter, &d);
	drops[0] = (struct agent_metrics_counter){"task_storage", d.task_storage};
	drops[1] = (struct agent_metrics_counter){"depth", d.depth};
	drops[2] = (struct agent_metrics_counter){"stats_missing", d.stats_missing};
	drops[3] = (struct agent_metrics_counter){"dying_full", d.dying_full};
	m.tasks_ended = ended;
	m.n_tasks_ended = SUP_KIND_N - SUP_EXITED;
	m.task_cpu = cpu;
	m.n_task_cpu = k;
	m.meter_drops = drops;
	m.n_meter_drops = ARRAY_SIZE(drops);
	r = agent_metrics_render(&m, ret, ret_len);
	free(cpu);
	return r;
}

static void http_close(struct http_conn *h, bool after_send)
{
	if (after_send)
		loop_sock_close_after_send(h->s);
	else
		loop_sock_close(h->s);
	if (h->next)
		h->next->pprev = h->pprev;
	*h->pprev = h->next;
	h->a->n_http--;
	free(h);
}

static void http_reply(struct http_conn *h, const char *status, const char *type, const char *body,
		       size_t len)
{
	char head[256];
	int n = fmt(head, sizeof(head),
		    "HTTP/1.0 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
		    "Connection: close\r\n\r\n",
		    status, type, len);

	if (loop_sock_send(h->s, head, (size_t)n) == 0 && len)
		loop_sock_send(h->s, body, len);
	http_close(h, true);
}

static void http_data(struct loop_sock *s, const uint8_t *data, size_t len, void *ud)
{
	struct http_conn *h = ud;
	_cleanup_free_ char *page = NULL;
	size_t plen = 0;

	(void)s;
	if (len > sizeof(h->buf) - 1 - h->len) {
		http_reply(h, "431 Request Header Fields Too Large", "text/plain", "", 0);
		return;
	}
	memcpy(h->buf + h->len, data, len);
	h->len += len;
	h->buf[h->len] = '\0';
	if (!strstr(h->buf, "\r\n\r\n") && !strstr(h->buf, "\n\n"))
		return;
	if (strncmp(h->buf, "GET ", 4) != 0) {
		http_reply(h, "405 Method Not Allowed", "text/plain", "GET only\n", 9);
		return;
	}
	if (strncmp(h->buf + 4, "/metrics ", 9) != 0 && strncmp(h->buf + 4, "/metrics?", 9) != 0) {
		http_reply(h, "404 Not Found", "text/plain", "try /metrics\n", 13);
		return;
	}
	if (render_metrics(h->a, &page, &plen) < 0) {
		http_reply(h, "500 Internal Server Error", "text/plain", "", 0);
		return;
	}
	http_reply(h, "200 OK", MX_CONTENT_TYPE, page, plen);
}

static void http_closed(struct loop_sock *s, int err, void *ud)
{
	(void)s;
	(void)err;
	http_close(ud, false);
}

static void http_accept(int fd, void *ud)
{
	static const struct loop_sock_ops ops = {.on_data = http_data, .on_close = http_closed};
	struct agent *a = ud;
	struct http_conn *h;

	if (fd < 0)
		return;
	if (a->n_http >= HTTP_CONNS_MAX || !(h = calloc(1, sizeof(*h)))) {
		close(fd);
		return;
	}
	h->a = a;
	if (loop_sock_new(a->loop, fd, &ops, h, &h->s) < 0) {
		free(h);
		return;
	}
	h->next = a->http_conns;
	if (h->next)
		h->next->pprev = &h->next;
	h->pprev = &a->http_conns;
	a->http_conns = h;
	a->n_http++;
}

static int split_hostport(const char *s, char *host, size_t hlen, uint16_t *ret_port)
{
	const char *colon;
	char *end;
	unsigned long p;
	size_t n;

	if (s[0] == '[') {
		const char *rb = strchr(s, ']');

		if (!rb || rb[1] != ':')
			return -EINVAL;
		n = (size_t)(rb - s - 1);
		if (n >= hlen)
			return -EINVAL;
		memcpy(host, s + 1, n);
		host[n] = '\0';
		colon = rb + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || (size_t)(colon - s) >= hlen)
			return -EINVAL;
		n = (size_t)(colon - s);
		memcpy(host, s, n);
		host[n] = '\0';
	}
	errno = 0;
	p = strtoul(colon + 1, &end, 10);
	if (errno || *end || p > 65535)
		return -EINVAL;
	*ret_port = (uint16_t)p;
	return 0;
}

static int start_metrics(struct agent *a)
{
	char host[256], state[PATH_MAX], text[300];
	uint16_t port = 0, bound = 0;
	int fd, r;

	if (!a->cfg->metrics_listen[0])
		return 0;
	r = split_hostport(a->cfg->metrics_listen, host, sizeof(host), &port);
	if (r < 0)
		return log_errno(LOG_LVL_ERR, r, "metrics_listen %s", a->cfg->metrics_listen);
	fd = loop_tcp_listen(host, port, 64, &bound);
	if (fd < 0)
		return log_errno(LOG_LVL_ERR, fd, "cannot listen on %s for /metrics",
				 a->cfg->metrics_listen);
	r = loop_listen_new(a->loop, fd, http_accept, a, &a->http);
	if (r < 0)
		return log_errno(LOG_LVL_ERR, r, "metrics listener");
	fmt(text, sizeof(text), strchr(host, ':') ? "[%s]:%u\n" : "%s:%u\n", host, bound);
	fmt(state, sizeof(state), "%s/metrics.addr", a->cfg->state_dir);
	{
		_cleanup_close_ int dfd =
			open(a->cfg->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (dfd >= 0)
			write_atomic(dfd, "metrics.addr", text, strlen(text));
	}
	log_info("/metrics on http://%.*s/metrics", (int)strlen(text) - 1, text);
	return 0;
}

/* ---- reconciling tasks left by a previous run ----------------------------------------- */

static int load_task(struct agent *a, const char *name, struct task **ret)
{
	_cleanup_free_ char *text = NULL;
	struct task *t;
	cJSON *root = NULL;
	size_t len = 0;
	char why[OFFER_REASON_MAX];
	int r;

	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->a = a;
	t->dirfd = t->fetch_fd = -1;
	fmt(t->dir, sizeof(t->dir), "%s/%s", a->tasks_dir, name);
	t->dirfd = open(t->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (t->dirfd < 0) {
		r = -errno;
		goto fail;
	}
	r = read_small(t->dirfd, "offer.json", 4 << 20, &t->offer_json, &len);
	if (r == 0)
		r = canon_parse(t->offer_json, len, PROTO_MAX_DEPTH, &root, NULL);
	if (r == 0)
		r = offer_parse(root, why, sizeof(why), &t->offer);
	cJSON_Delete(root);
	if (r < 0)
		goto fail;
	if (strcmp(t->offer->task_id, name) != 0) {
		r = -EBADMSG;
		goto fail;
	}
	if (read_small(t->dirfd, "agent.json", 8192, &text, &len) == 0 &&
	    canon_parse(text, len, 4, &root, NULL) == 0) {
		const char *s;

		canon_get_u64(root, "cgroup_id", &t->cg_id);
		if (canon_get_str(root, "manifest", &s) == 0)
			fmt(t->manifest, sizeof(t->manifest), "%s", s);
		if (canon_get_str(root, "rootfs", &s) == 0)
			fmt(t->rootfs, sizeof(t->rootfs), "%s", s);
		cJSON_Delete(root);
	}
	*ret = t;
	return 0;
fail:
	task_free(t);
	return r;
}

/* A final record was logged before the restart: pick up reporting from report.json. */
static int resume_report(struct task *t)
{
	_cleanup_free_ char *text = NULL;
	const char *s;
	cJSON *root = NULL;
	int64_t code = 0;
	size_t len = 0;
	int r;

	r = read_small(t->dirfd, "report.json", 8192, &text, &len);
	if (r < 0)
		return r;
	r = canon_parse(text, len, 4, &root, NULL);
	if (r < 0)
		return r;
	r = -EBADMSG;
	if (canon_get_u64(root, "seq", &t->seq) < 0 ||
	    canon_get_i64(root, "exit_code", &code) < 0 ||
	    canon_get_str(root, "record_hash", &s) < 0 ||
	    hex_decode(s, strlen(s), t->rec_hash, SHA256_LEN) < 0)
		goto out;
	canon_get_u64(root, "result_size", &t->res.size);
	canon_get_u64(root, "cpu_ns", &t->cpu_ns);
	t->exit_code = (int)code;
	t->has_result =
		canon_get_str(root, "result", &s) == 0 && digest_parse(s, t->res.digest) == 0;
	r = 0;
out:
	cJSON_Delete(root);
	if (r == 0) {
		t->state = T_REPORT;
		t->record_acked = !outbox_has(t->a->ob, t->seq);
	}
	return r;
}

static void remember_lost(struct agent *a, const char *id)
{
	char **v = realloc(a->lost_ids, (a->n_lost + 1) * sizeof(*v));

	if (!v)
		return;
	a->lost_ids = v;
	v[a->n_lost] = strdup(id);
	if (v[a->n_lost])
		a->n_lost++;
}

static void reconcile(struct agent *a)
{
	DIR *d = opendir(a->tasks_dir);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		char path[PATH_MAX];
		struct task *t = NULL;
		struct stat st;
		int r;

		if (de->d_name[0] == '.')
			continue;
		fmt(path, sizeof(path), "%s/%s", a->tasks_dir, de->d_name);
		if (lstat(path, &st) < 0 || !S_ISDIR(st.st_mode))
			continue;
		r = load_task(a, de->d_name, &t);
		if (r < 0 || !t) {
			log_errno(LOG_LVL_WARN, r, "task directory %s is unusable; removed", path);
			rm_rf(path);
			continue;
		}
		t->next = a->tasks;
		a->tasks = t;
		if (resume_report(t) == 0) {
			log_info("task %s: resuming its report (record seq %llu%s)",
				 t->offer->task_id, (unsigned long long)t->seq,
				 t->record_acked ? ", acknowledged" : "");
			continue;
		}
		r = sup_adopt(t->dir, &t->sup);
		if (r < 0) {
			/* never started (fetching, unpacking, or the supervisor never wrote) */
			log_info("task %s: had not started before the restart; given up",
				 t->offer->task_id);
			remember_lost(a, t->offer->task_id);
			{
				struct cg *cg = NULL;

				if (cg_open(&a->cgh, a->cap_name, t->offer->task_id,
					    a->cgh.layout == CG_LAYOUT_HYBRID, &cg) == 0) {
					uint64_t id = 0;

					if (cg_id_of_path(cg->v2_path, &id) == 0)
						meter_untrack(a->meter, id);
					cg_destroy(cg);
				}
			}
			task_drop(t);
			continue;
		}
		r = cg_open(&a->cgh, a->cap_name, t->offer->task_id,
			    a->cgh.layout == CG_LAYOUT_HYBRID, &t->cg);
		if (r < 0)
			log_errno(LOG_LVL_WARN, r, "task %s: its cgroup", t->offer->task_id);
		if (t->cg && !t->cg_id)
			t->cg_id = t->cg->id;
		if (t->cg_id) {
			uint64_t ids[4096];
			int n = meter_list(a->meter, ids, ARRAY_SIZE(ids));

			for (int i = 0; i < n && i < (int)ARRAY_SIZE(ids); i++)
				if (ids[i] == t->cg_id)
					t->tracked = true;
		}
		if (!t->manifest[0])
			fmt(t->manifest, sizeof(t->manifest), "%s", t->offer->image);
		if (t->pinned == false && cache_pin(a->cache, t->offer->image) == 0)
			t->pinned = true;
		t->state = T_RUN;
		t->last_status_ms = t->last_interval_ms = now_ms();
		if (sup_status(t->sup)->kind == SUP_RUNNING) {
			log_info("task %s: re-adopted (supervisor %d, task pid %d)",
				 t->offer->task_id, (int)sup_status(t->sup)->supervisor_pid,
				 (int)sup_status(t->sup)->pid);
		} else {
			/* its record is signed by the first tick, once the connection machinery exists */
			log_info("task %s: ended while the agent was away (%s)", t->offer->task_id,
				 sup_kind_name(sup_status(t->sup)->kind));
		}
	}
	closedir(d);
}

/* ---- start and stop ------------------------------------------------------------- */

static void libbpf_quiet(void)
{
}

static int open_state(struct agent *a)
{
	const struct agent_config *c = a->cfg;
	char path[PATH_MAX], reason[256] = "";
	struct meterlog_recovery rec;
	const char *err = NULL;
	int r;

	fmt(a->tasks_dir, sizeof(a->tasks_dir), "%s/tasks", c->state_dir);
	fmt(a->blobs_dir, sizeof(a->blobs_dir), "%s/blobs", c->state_dir);
	fmt(a->images_dir, sizeof(a->images_dir), "%s/images", c->state_dir);
	if ((r = mkdir_p(a->tasks_dir, 0700)) < 0 || (r = mkdir_p(a->blobs_dir, 0700)) < 0 ||
	    (r = mkdir_p(a->images_dir, 0711)) < 0)
		return log_errno(LOG_LVL_ERR, r, "state directory %s", c->state_dir);
	/* leftovers of interrupted downloads */
	{
		DIR *d = opendir(a->blobs_dir);
		struct dirent *de;

		while (d && (de = readdir(d)))
			if (de->d_name[0] == '.' && strstr(de->d_name, ".tmp"))
				unlinkat(dirfd(d), de->d_name, 0);
		if (d)
			closedir(d);
	}
	fmt(path, sizeof(path), "%s/meter.log", c->state_dir);
	r = meterlog_open(path, a->key, NULL, &a->ml, &rec, &err);
	if (r < 0)
		return log_errno(LOG_LVL_ERR, r, "meter log %s%s%s", path, err ? ": " : "",
				 err ? err : "");
	if (rec.torn_bytes)
		log_warn("meter log: dropped a torn last line of %llu bytes",
			 (unsigned long long)rec.torn_bytes);
	log_info("meter log %s: %llu records, %llu checkpoints", path,
		 (unsigned long long)rec.records, (unsigned long long)rec.checkpoints);
	fmt(path, sizeof(path), "%s/outbox", c->state_dir);
	r = outbox_open(path, OUTBOX_MAX, &a->ob);
	if (r < 0)
		return log_errno(LOG_LVL_ERR, r, "outbox %s", path);
	if (outbox_bad(a->ob))
		log_warn("outbox: %zu unreadable records set aside", outbox_bad(a->ob));
	outbox_on_acked(a->ob, on_outbox_acked, a);
	r = cache_open(c->state_dir, c->image_cache_size, &a->cache);
	if (r < 0)
		return log_errno(LOG_LVL_ERR, r, "image cache index in %s", c->state_dir);
	r = cache_set_capacity(a->cache, c->image_cache_size, evict_image, a);
	if (r < 0 && r != -ENOSPC)
		log_errno(LOG_LVL_WARN, r, "image cache");
	r = meter_open(meter_default_pin_dir(), METER_CREATE | METER_PERSIST, &a->meter, reason,
		       sizeof(reason));
	if (r < 0)
		return log_errno(LOG_LVL_ERR, r, "eBPF meter in %s%s%s", meter_default_pin_dir(),
				 reason[0] ? ": " : "", reason);
	r = cg_host_detect(&a->cgh);
	if (r < 0)
		return log_errno(LOG_LVL_ERR, r, "cgroup layout");
	/* pure v2: our service cgroup may hold no processes if task cgroups are to get controllers */
	r = cg_host_make_room(&a->cgh, "agent");
	if (r < 0)
		return log_errno(LOG_LVL_ERR, r, "moving the agent into a leaf cgroup");
	{
		uint8_t h[SHA256_LEN];
		char hex[SHA256_HEX_LEN + 1];

		/* one parent cgroup per agent instance (state_dir), stable across restarts */
		sha256(c->state_dir, strlen(c->state_dir), h);
		hex_encode(h, SHA256_LEN, hex);
		fmt(a->cap_name, sizeof(a->cap_name), "aicn-tasks-%.12s", hex);
	}
	r = sup_cap_create(&a->cgh, a->cap_name, c->max_millicores, c->max_memory, &a->cap);
	if (r < 0)
		return log_errno(LOG_LVL_ERR, r, "parent cgroup %s (cap %u millicores, %llu bytes)",
				 a->cap_name, c->max_millicores, (unsigned long long)c->max_memory);
	r = sup_default_binary(a->sup_bin, sizeof(a->sup_bin));
	if (r == 0 && access(a->sup_bin, X_OK) < 0)
		r = -errno;
	if (r < 0)
		return log_errno(LOG_LVL_ERR, r, "%s beside aicn-agent", SUP_BIN_NAME);
	log_info("tasks run in cgroup %s%s (cap %u.%03u cores, %llu MiB)", a->cgh.v2_mount,
		 a->cap->v2_path + strlen(a->cgh.v2_mount), c->max_millicores / 1000,
		 c->max_millicores % 1000, (unsigned long long)(c->max_memory / MIB));
	(void)libbpf_quiet;
	return 0;
}

static int open_identity(struct agent *a)
{
	const struct agent_config *c = a->cfg;
	struct tls_config tc = {
		.ca_file = c->ca,
		.cert_file = c->cert,
		.key_file = c->key,
		.server = 0,
		.peer_roles = ROLE_COORDINATOR,
	};
	char err[TLS_ERR_LEN] = "";
	const struct tls_peer *self;
	int r;

	r = key_load_private(c->key, &a->key);
	if (r < 0)
		return log_errno(LOG_LVL_ERR, r, "node key %s%s", c->key,
				 r == -EPERM ? " (readable by group or others: chmod 600 it)" : "");
	r = key_node_id(a->key, a->node_id);
	if (r < 0)
		return log_errno(LOG_LVL_ERR, r, "node id");
	r = tls_ctx_new(&tc, &a->tls, err);
	if (r < 0) {
		log_err("TLS: %s", err[0] ? err : strerror(-r));
		return r;
	}
	self = tls_ctx_self(a->tls);
	if (!self || self->role != ROLE_AGENT) {
		log_err("%s is not an agent certificate (its role: %s)", c->cert,
			self ? role_name(self->role) : "none");
		return -EINVAL;
	}
	if (strcmp(self->node_id, a->node_id) != 0) {
		log_err("%s certifies node %s but the node key %s is node %s: the certificate must "
			"be issued for this node's key",
			c->cert, self->node_id, c->key, a->node_id);
		return -EINVAL;
	}
	log_info("node %s (%s)", a->node_id, self->name);
	return 0;
}

static int start_client(struct agent *a)
{
	char host[256];
	uint16_t port;
	struct net_client_config nc = {
		.tls = a->tls,
		.software = "aicn-agent " AICN_VERSION,
		.log = net_log,
		.on_ready = on_ready,
		.on_down = on_down,
		.ud = a,
	};
	int r;

	r = split_hostport(a->cfg->coordinator, host, sizeof(host), &port);
	if (r < 0)
		return log_errno(LOG_LVL_ERR, r, "coordinator address %s", a->cfg->coordinator);
	nc.host = host;
	nc.port = port;
	r = net_client_new(a->loop, &nc, &a->cl);
	if (r < 0)
		return log_errno(LOG_LVL_ERR, r, "coordinator %s", a->cfg->coordinator);
	if ((r = net_client_handle(a->cl, PROTO_TASK_OFFER, on_offer, a)) < 0 ||
	    (r = net_client_handle(a->cl, PROTO_BLOB_PUT, on_blob_put, a)) < 0 ||
	    (r = net_client_handle(a->cl, PROTO_TASK_STATUS, on_status, a)) < 0 ||
	    (r = net_client_handle(a->cl, PROTO_ERROR, on_error, a)) < 0 ||
	    (r = outbox_bind(a->ob, a->cl, on_ack, a)) < 0)
		return log_errno(LOG_LVL_ERR, r, "message handlers");
	update_register(a);
	a->conn = AGENT_CONN_CONNECTING;
	r = net_client_start(a->cl);
	if (r < 0)
		return log_errno(LOG_LVL_ERR, r, "connecting to %s", a->cfg->coordinator);
	return 0;
}

static void agent_close(struct agent *a, bool clean)
{
	struct task *t, *next;
	int r;

	if (clean && !a->tasks && a->cap) {
		/* nothing runs under it: leave no empty cgroup behind (re-created at start) */
		r = cg_destroy(a->cap);
		a->cap = NULL;
		if (r < 0 && r != -EBUSY)
			log_errno(LOG_LVL_WARN, r, "removing the parent cgroup %s", a->cap_name);
	}
	net_client_free(a->cl);
	while (a->http_conns)
		http_close(a->http_conns, false);
	loop_listen_free(a->http);
	loop_timer_free(a->tick);
	loop_pool_free(a->pool);
	for (t = a->tasks; t; t = next) {
		next = t->next;
		task_free(t);
	}
	for (size_t i = 0; i < a->n_lost; i++)
		free(a->lost_ids[i]);
	free(a->lost_ids);
	for (size_t i = 0; i < IMG_TABLE; i++)
		sbx_image_free(a->imgs[i].img);
	loop_free(a->loop);
	if (a->ml) {
		r = meterlog_close(a->ml);
		if (r < 0)
			log_errno(LOG_LVL_ERR, r, "closing the meter log");
	}
	outbox_free(a->ob);
	cache_free(a->cache);
	meter_free(a->meter);
	cg_free(a->cap);
	tls_ctx_free(a->tls);
	EVP_PKEY_free(a->key);
}

int agent_daemon_run(const struct agent_config *cfg, const struct agent_host_facts *host)
{
	struct agent a = {.cfg = cfg, .host = host, .conn = AGENT_CONN_DISCONNECTED};
	uint32_t threads;
	int r;

	signal(SIGPIPE, SIG_IGN);
	r = loop_new(NULL, &a.loop);
	if (r < 0) {
		log_errno(LOG_LVL_ERR, r, "io_uring loop");
		goto out;
	}
	/* signals before any thread, so every thread inherits the mask */
	if ((r = loop_signal(a.loop, SIGTERM, on_signal, &a)) < 0 ||
	    (r = loop_signal(a.loop, SIGINT, on_signal, &a)) < 0) {
		log_errno(LOG_LVL_ERR, r, "signals");
		goto out;
	}
	r = open_identity(&a);
	if (r < 0)
		goto out;
	r = open_state(&a);
	if (r < 0)
		goto out;
	a.in_window = window_inside(&cfg->window, time(NULL));
	reconcile(&a);
	threads = MAX(1U, (cfg->max_millicores + 999) / 1000);
	r = perf_measure((const uint8_t *)a.node_id, strlen(a.node_id), MIN(threads, host->ncpus),
			 &a.perf);
	if (r < 0) {
		log_errno(LOG_LVL_ERR, r, "performance benchmark");
		goto out;
	}
	log_info("perf: %llu KiB/s on one core, %llu KiB/s on %u (hash %.16s...)",
		 (unsigned long long)a.perf.single_kib_s, (unsigned long long)a.perf.multi_kib_s,
		 a.perf.threads, a.perf.hash_hex);
	r = loop_pool_new(a.loop, 1, &a.pool);
	if (r < 0) {
		log_errno(LOG_LVL_ERR, r, "worker pool");
		goto out;
	}
	r = start_metrics(&a);
	if (r < 0)
		goto out;
	r = start_client(&a);
	if (r < 0)
		goto out;
	r = loop_timer_new(a.loop, on_tick, &a, &a.tick);
	if (r < 0) {
		log_errno(LOG_LVL_ERR, r, "timer");
		goto out;
	}
	loop_timer_arm(a.tick, TICK_MS);
	log_info(
		"aicn-agent %s started: coordinator %s, %u.%03u cores, %llu MiB, %u tasks at most%s",
		AICN_VERSION, cfg->coordinator, cfg->max_millicores / 1000,
		cfg->max_millicores % 1000, (unsigned long long)(cfg->max_memory / MIB),
		cfg->max_tasks, a.in_window ? "" : " (outside its windows now)");
	r = loop_run(a.loop);
	if (r < 0)
		log_errno(LOG_LVL_ERR, r, "event loop");
out:
	agent_close(&a, r == 0);
	return r;
}
