/* cmd_audit.c -- `aicnctl audit`: offline verification of a node's meter log, proofs, and CPU-hour summaries. */
#include <aicn/compiler.h>
#include <aicn/key.h>
#include <aicn/log.h>
#include <aicn/meterlog.h>

#include "cmd.h"

#include <fcntl.h>
#include <getopt.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>

int cmd_audit(int argc, char **argv);

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY, EVP_PKEY_free)

#define NOTE_FILE_MAX NOTE_MAX
#define MAX_EXTERNAL 64

static void audit_usage(FILE *f)
{
	fprintf(f,
		"Usage: aicnctl audit COMMAND [OPTIONS]\n"
		"\n"
		"Check a node's meter log offline, with the node's public key alone, or the\n"
		"coordinator's exported AICN ledger with the coordinator's public key.\n"
		"\n"
		"Commands:\n"
		"  verify LOG --key NODE.pub [--checkpoints-only|--strict] [--checkpoint NOTE]...\n"
		"      Check every record signature, chain link, sequence number and timestamp,\n"
		"      every checkpoint's signature and Merkle root, and the consistency between\n"
		"      checkpoints.  Exit 0 only when all hold and every record is sealed by a\n"
		"      checkpoint; otherwise print the first bad line and why, and exit 1.\n"
		"      --checkpoints-only  check hashes and checkpoint signatures, not every\n"
		"                          record signature (the signed Merkle roots vouch for them)\n"
		"      --strict            also parse every record fully (schema, canonical form)\n"
		"      --checkpoint NOTE   a signed checkpoint you hold (e.g. from the coordinator):\n"
		"                          the log must contain it (catches truncation and rewrites)\n"
		"      --threads N         worker threads (default: one per CPU)\n"
		"      --quiet             print nothing on success\n"
		"  summarize LOG [--by task|renter|day] [--json|--csv]\n"
		"      CPU-hours per task, renter or UTC day (default: task), from the\n"
		"      cumulative interval and final records.  Run verify first.\n"
		"  prove LOG SEQ [-o FILE]\n"
		"      An inclusion proof of record SEQ against the log's latest checkpoint.\n"
		"  prove LOG --consistency OLD_SIZE NEW_SIZE [-o FILE]\n"
		"      A consistency proof between two checkpoints of the log.\n"
		"  check-proof PROOF --key NODE.pub\n"
		"      Check a proof file: checkpoint signature, record signature, and the\n"
		"      inclusion or consistency proof.\n"
		"  ledger DIR --key COORDINATOR.pub [--origin ORIGIN] [--json] [--allow-unsigned]\n"
		"      Audit an exported AICN ledger (aicn-coordinator ledger-export): DIR/ledger.db\n"
		"      replayed from its first entry (hash chain, double entry, no overdraft,\n"
		"      balances, every charge, fee, reward and staking payout recomputed) and\n"
		"      checked against the coordinator-signed DIR/checkpoint.  Every charge must\n"
		"      carry the agent-signed usage record it pays for, whose Ed25519 signature\n"
		"      verifies with the key whose SHA-256 is the node id (--allow-unsigned\n"
		"      relaxes this for old ledgers).  Same checks as 'aicnctl ledger verify'.\n"
		"  task DIR TASK\n"
		"      A renter's trail in an exported ledger: the escrow, each settled usage\n"
		"      record (hash, node, sequence, CPU) and the refund, each proven included.\n"
		"\n"
		"Exit status: 0 verified, 1 failed check or error, 2 usage error.\n"
		"See docs/auditing.md for the formats and for checking a record with openssl alone.\n");
}

static EVP_PKEY *load_pub(const char *path)
{
	EVP_PKEY *k = NULL;
	int r = key_load_public(path, &k);

	if (r < 0) {
		log_errno(LOG_LVL_ERR, r, "cannot load public key %s", path);
		return NULL;
	}
	return k;
}

static int read_file(const char *path, size_t max, char **ret, size_t *ret_len)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;

	if (fd < 0)
		return -errno;
	buf = malloc(max + 1);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n = read(fd, buf + len, max + 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > max)
			return -EFBIG;
	}
	buf[len] = '\0';
	*ret = TAKE_PTR(buf);
	*ret_len = len;
	return 0;
}

/* Print line number ln of the file (for the report), shortened. */
static void show_line(const char *path, uint64_t ln)
{
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	_cleanup_free_ char *line = NULL;
	size_t cap = 0;
	uint64_t i = 0;
	ssize_t n;

	if (!f || ln == 0)
		return;
	while ((n = getline(&line, &cap, f)) >= 0) {
		if (++i == ln) {
			if (n > 0 && line[n - 1] == '\n')
				line[--n] = '\0';
			printf("  line %llu: %.*s%s\n", (unsigned long long)ln, (int)MIN(n, 400),
			       line, n > 400 ? "..." : "");
			return;
		}
	}
}

static int audit_verify(int argc, char **argv)
{
	static const struct option opts[] = {
		{"key", required_argument, NULL, 'k'},
		{"checkpoints-only", no_argument, NULL, 'c'},
		{"strict", no_argument, NULL, 's'},
		{"checkpoint", required_argument, NULL, 'C'},
		{"threads", required_argument, NULL, 't'},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *keypath = NULL;
	char *ext[MAX_EXTERNAL + 1] = {NULL};
	size_t next = 0;
	struct meterlog_verify_opts vo = {0};
	struct meterlog_verify_result res;
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *pub = NULL;
	struct timespec t0, t1;
	int quiet = 0, c, r, rc = 2;

	while ((c = getopt_long(argc, argv, "k:csC:t:qh", opts, NULL)) != -1) {
		switch (c) {
		case 'k':
			keypath = optarg;
			break;
		case 'c':
			vo.checkpoints_only = 1;
			break;
		case 's':
			vo.strict = 1;
			break;
		case 'C': {
			size_t len;

			if (next == MAX_EXTERNAL) {
				fprintf(stderr, "aicnctl audit verify: too many --checkpoint\n");
				goto out;
			}
			r = read_file(optarg, NOTE_FILE_MAX, &ext[next], &len);
			if (r < 0) {
				log_errno(LOG_LVL_ERR, r, "cannot read checkpoint %s", optarg);
				rc = 1;
				goto out;
			}
			next++;
			break;
		}
		case 't': {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);

			if (*end || v == 0 || v > 64) {
				fprintf(stderr, "aicnctl audit verify: --threads takes 1..64\n");
				goto out;
			}
			vo.threads = (unsigned)v;
			break;
		}
		case 'q':
			quiet = 1;
			break;
		case 'h':
			audit_usage(stdout);
			rc = 0;
			goto out;
		default:
			audit_usage(stderr);
			goto out;
		}
	}
	if (optind + 1 != argc || !keypath) {
		fprintf(stderr, "aicnctl audit verify: need LOG and --key NODE.pub\n");
		goto out;
	}
	rc = 1;
	pub = load_pub(keypath);
	if (!pub)
		goto out;
	vo.pub = pub;
	vo.external = (const char *const *)ext;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	r = meterlog_verify_file(argv[optind], &vo, &res);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (r < 0 && r != -EBADMSG) {
		log_errno(LOG_LVL_ERR, r, "cannot verify %s", argv[optind]);
		goto out;
	}
	if (r == 0) {
		char root[SHA256_HEX_LEN + 1];
		double secs =
			(double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;

		hex_encode(res.root, SHA256_LEN, root);
		if (!quiet)
			printf("PASS %s: %llu records, %llu checkpoints, all sealed; %s; root %s (%.3f s, %.0f records/s)\n",
			       argv[optind], (unsigned long long)res.records,
			       (unsigned long long)res.checkpoints,
			       vo.checkpoints_only ? "hashes and checkpoint signatures checked"
						   : "every signature, link and root checked",
			       root, secs, secs > 0 ? (double)res.records / secs : 0.0);
		rc = 0;
		goto out;
	}
	printf("FAIL %s: %s: %s\n", argv[optind], meterlog_fail_name(res.fail), res.reason);
	show_line(argv[optind], res.fail_line);
	if (res.lying)
		printf("LYING LOG: %s\n", res.lying_detail);
	printf("%llu problem(s) in %llu lines (%llu records, %llu valid checkpoints; %llu records sealed)\n",
	       (unsigned long long)res.failures, (unsigned long long)res.lines,
	       (unsigned long long)res.records, (unsigned long long)res.checkpoints,
	       (unsigned long long)res.sealed);
out:
	for (size_t i = 0; i < next; i++)
		free(ext[i]);
	return rc;
}

/* ---- summarize ------------------------------------------------------------ */

struct sum_group {
	char *key;
	uint64_t cpu_ns, records, tasks;
	char hours[32]; /* cpu_ns as decimal CPU-hours */
};

struct sum_task {
	char *key;	 /* task/replica */
	uint64_t cpu_ns; /* cumulative so far */
	size_t group;	 /* for --by task/renter: the task's group */
};

/* A small open-addressing string map: key -> index. */
struct smap {
	char **keys;
	size_t *vals;
	size_t cap, n;
};

static uint64_t str_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static int smap_grow(struct smap *m)
{
	size_t cap = m->cap ? m->cap * 2 : 1024;
	char **keys = calloc(cap, sizeof(*keys));
	size_t *vals = calloc(cap, sizeof(*vals));

	if (!keys || !vals) {
		free(keys);
		free(vals);
		return -ENOMEM;
	}
	for (size_t i = 0; i < m->cap; i++) {
		size_t j;

		if (!m->keys[i])
			continue;
		for (j = str_hash(m->keys[i]) & (cap - 1); keys[j]; j = (j + 1) & (cap - 1))
			;
		keys[j] = m->keys[i];
		vals[j] = m->vals[i];
	}
	free(m->keys);
	free(m->vals);
	m->keys = keys;
	m->vals = vals;
	m->cap = cap;
	return 0;
}

/* Index of key; *created set when inserted with value next. */
static int smap_get(struct smap *m, const char *key, size_t next, size_t *ret, int *created)
{
	size_t j;

	if ((m->n + 1) * 2 > m->cap && smap_grow(m) < 0)
		return -ENOMEM;
	for (j = str_hash(key) & (m->cap - 1); m->keys[j]; j = (j + 1) & (m->cap - 1)) {
		if (strcmp(m->keys[j], key) == 0) {
			*ret = m->vals[j];
			*created = 0;
			return 0;
		}
	}
	m->keys[j] = strdup(key);
	if (!m->keys[j])
		return -ENOMEM;
	m->vals[j] = next;
	m->n++;
	*ret = next;
	*created = 1;
	return 0;
}

static void smap_free(struct smap *m)
{
	for (size_t i = 0; i < m->cap; i++)
		free(m->keys[i]);
	free(m->keys);
	free(m->vals);
}

static int cmp_group(const void *a, const void *b)
{
	return strcmp(((const struct sum_group *)a)->key, ((const struct sum_group *)b)->key);
}

static void fmt_hours(char buf[32], uint64_t ns)
{
	/* exact decimal CPU-hours with 6 places, no floating point */
	const uint64_t per_hour = 3600ULL * 1000000000ULL;
	uint64_t whole = ns / per_hour, frac = ns % per_hour;
	uint64_t micro = (frac * 1000000ULL + per_hour / 2) / per_hour;

	if (micro == 1000000ULL) {
		whole++;
		micro = 0;
	}
	snprintf(buf, 32, "%llu.%06llu", (unsigned long long)whole, (unsigned long long)micro);
}

static int audit_summarize(int argc, char **argv)
{
	static const struct option opts[] = {
		{"by", required_argument, NULL, 'b'},
		{"json", no_argument, NULL, 'j'},
		{"csv", no_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	enum {
		BY_TASK,
		BY_RENTER,
		BY_DAY
	} by = BY_TASK;
	enum {
		OUT_TABLE,
		OUT_JSON,
		OUT_CSV
	} out = OUT_TABLE;
	struct smap groups_map = {0}, tasks_map = {0};
	struct sum_group *groups = NULL;
	struct sum_task *tasks = NULL;
	size_t ngroups = 0, ntasks = 0, gcap = 0, tcap = 0;
	_cleanup_fclose_ FILE *f = NULL;
	_cleanup_free_ char *line = NULL;
	size_t cap = 0;
	uint64_t ln = 0, total = 0;
	ssize_t n;
	int c, rc = 2;

	while ((c = getopt_long(argc, argv, "b:jch", opts, NULL)) != -1) {
		switch (c) {
		case 'b':
			if (strcmp(optarg, "task") == 0)
				by = BY_TASK;
			else if (strcmp(optarg, "renter") == 0)
				by = BY_RENTER;
			else if (strcmp(optarg, "day") == 0)
				by = BY_DAY;
			else {
				fprintf(stderr,
					"aicnctl audit summarize: --by task, renter or day\n");
				return 2;
			}
			break;
		case 'j':
			out = OUT_JSON;
			break;
		case 'c':
			out = OUT_CSV;
			break;
		case 'h':
			audit_usage(stdout);
			return 0;
		default:
			audit_usage(stderr);
			return 2;
		}
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "aicnctl audit summarize: need LOG\n");
		return 2;
	}
	rc = 1;
	f = fopen(argv[optind], "re");
	if (!f) {
		log_errno(LOG_LVL_ERR, -errno, "cannot open %s", argv[optind]);
		return 1;
	}
	while ((n = getline(&line, &cap, f)) >= 0) {
		struct usage_record rec;
		const char *why = NULL;
		char tkey[RECORD_ID_MAX + 16], gkey[RECORD_ID_MAX + 16];
		size_t ti, gi;
		int created;
		uint64_t delta;

		ln++;
		if (n == 0 || line[n - 1] != '\n')
			break; /* torn tail */
		line[--n] = '\0';
		if (strncmp(line, "{\"note\":", 8) == 0)
			continue;
		if (record_parse(line, (size_t)n, &rec, &why) < 0) {
			log_err("%s:%llu: %s", argv[optind], (unsigned long long)ln,
				why ? why : "bad record");
			goto out;
		}
		if (rec.type == RECORD_HEARTBEAT)
			continue;
		snprintf(tkey, sizeof(tkey), "%s/%u", rec.task, rec.replica);
		if (by == BY_TASK)
			snprintf(gkey, sizeof(gkey), "%s", rec.task);
		else if (by == BY_RENTER)
			snprintf(gkey, sizeof(gkey), "%s", rec.renter);
		else {
			time_t secs = (time_t)(rec.end_ns / 1000000000ULL);
			struct tm tm;

			gmtime_r(&secs, &tm);
			strftime(gkey, sizeof(gkey), "%Y-%m-%d", &tm);
		}
		if (smap_get(&tasks_map, tkey, ntasks, &ti, &created) < 0)
			goto oom;
		if (created) {
			if (ntasks == tcap) {
				size_t nc = tcap ? tcap * 2 : 256;
				struct sum_task *nt = realloc(tasks, nc * sizeof(*nt));

				if (!nt)
					goto oom;
				tasks = nt;
				tcap = nc;
			}
			tasks[ntasks++] = (struct sum_task){NULL, 0, SIZE_MAX};
		}
		if (smap_get(&groups_map, gkey, ngroups, &gi, &created) < 0)
			goto oom;
		if (created) {
			if (ngroups == gcap) {
				size_t nc = gcap ? gcap * 2 : 64;
				struct sum_group *ng = realloc(groups, nc * sizeof(*ng));

				if (!ng)
					goto oom;
				groups = ng;
				gcap = nc;
			}
			groups[ngroups] = (struct sum_group){.key = strdup(gkey)};
			if (!groups[ngroups].key)
				goto oom;
			ngroups++;
		}
		if (ti >= ntasks || gi >= ngroups)
			goto oom; /* not reached: the maps only hold indexes handed out above */
		/* figures are cumulative per task replica: count what is new */
		delta = rec.cpu_ns > tasks[ti].cpu_ns ? rec.cpu_ns - tasks[ti].cpu_ns : 0;
		tasks[ti].cpu_ns = MAX(tasks[ti].cpu_ns, rec.cpu_ns);
		groups[gi].cpu_ns += delta;
		groups[gi].records++;
		if (tasks[ti].group != gi) {
			/* a task counts once per group (a day group sees every task active that day) */
			if (by == BY_DAY || tasks[ti].group == SIZE_MAX)
				groups[gi].tasks++;
			tasks[ti].group = gi;
		}
		total += delta;
	}
	if (ngroups > 0)
		qsort(groups, ngroups, sizeof(*groups), cmp_group);
	for (size_t i = 0; i < ngroups; i++)
		fmt_hours(groups[i].hours, groups[i].cpu_ns);
	if (out == OUT_JSON) {
		printf("[");
		for (size_t i = 0; i < ngroups; i++) {
			printf("%s{\"%s\":\"%s\",\"tasks\":%llu,\"records\":%llu,\"cpu_ns\":%llu,\"cpu_hours\":",
			       i ? "," : "",
			       by == BY_TASK	 ? "task"
			       : by == BY_RENTER ? "renter"
						 : "day",
			       groups[i].key, (unsigned long long)groups[i].tasks,
			       (unsigned long long)groups[i].records,
			       (unsigned long long)groups[i].cpu_ns);
			printf("%s}", groups[i].hours);
		}
		printf("]\n");
	} else if (out == OUT_CSV) {
		printf("%s,tasks,records,cpu_ns,cpu_hours\n", by == BY_TASK	? "task"
							      : by == BY_RENTER ? "renter"
										: "day");
		for (size_t i = 0; i < ngroups; i++) {
			printf("%s,%llu,%llu,%llu,%s\n", groups[i].key,
			       (unsigned long long)groups[i].tasks,
			       (unsigned long long)groups[i].records,
			       (unsigned long long)groups[i].cpu_ns, groups[i].hours);
		}
	} else {
		printf("%-40s %8s %9s %14s\n",
		       by == BY_TASK	 ? "TASK"
		       : by == BY_RENTER ? "RENTER"
					 : "DAY (UTC)",
		       "TASKS", "RECORDS", "CPU-HOURS");
		for (size_t i = 0; i < ngroups; i++) {
			printf("%-40s %8llu %9llu %14s\n", groups[i].key,
			       (unsigned long long)groups[i].tasks,
			       (unsigned long long)groups[i].records, groups[i].hours);
		}
		{
			char th[32];

			fmt_hours(th, total);
			printf("%-40s %8zu %9s %14s\n", "TOTAL", ntasks, "", th);
		}
	}
	rc = 0;
	goto out;
oom:
	log_err("out of memory");
out:
	for (size_t i = 0; i < ngroups; i++)
		free(groups[i].key);
	free(groups);
	free(tasks);
	smap_free(&groups_map);
	smap_free(&tasks_map);
	return rc;
}

/* ---- proofs --------------------------------------------------------------- */

static int parse_u64_arg(const char *s, uint64_t *ret)
{
	char *end;
	unsigned long long v;

	if (!*s || *s == '-')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end)
		return -EINVAL;
	*ret = v;
	return 0;
}

static int write_out(const char *path, const char *s)
{
	_cleanup_fclose_ FILE *f = NULL;

	if (!path) {
		printf("%s\n", s);
		return 0;
	}
	f = fopen(path, "we");
	if (!f || fprintf(f, "%s\n", s) < 0 || fflush(f) != 0)
		return log_errno(LOG_LVL_ERR, -errno, "cannot write %s", path);
	return 0;
}

static int audit_prove(int argc, char **argv)
{
	static const struct option opts[] = {
		{"output", required_argument, NULL, 'o'},
		{"consistency", no_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *outpath = NULL, *why = NULL;
	_cleanup_free_ char *json = NULL;
	int consistency = 0, c, r;
	uint64_t a, b = 0;

	while ((c = getopt_long(argc, argv, "o:ch", opts, NULL)) != -1) {
		switch (c) {
		case 'o':
			outpath = optarg;
			break;
		case 'c':
			consistency = 1;
			break;
		case 'h':
			audit_usage(stdout);
			return 0;
		default:
			audit_usage(stderr);
			return 2;
		}
	}
	if (optind + (consistency ? 3 : 2) != argc || parse_u64_arg(argv[optind + 1], &a) < 0 ||
	    (consistency && parse_u64_arg(argv[optind + 2], &b) < 0)) {
		fprintf(stderr,
			"aicnctl audit prove: need LOG SEQ, or LOG --consistency OLD NEW\n");
		return 2;
	}
	if (consistency)
		r = meterlog_prove_consistency_file(argv[optind], a, b, &json, &why);
	else
		r = meterlog_prove_file(argv[optind], a, &json, &why);
	if (r < 0) {
		if (why)
			log_err("cannot prove from %s: %s", argv[optind], why);
		else
			log_errno(LOG_LVL_ERR, r, "cannot prove from %s", argv[optind]);
		return 1;
	}
	return write_out(outpath, json) < 0 ? 1 : 0;
}

static int audit_check_proof(int argc, char **argv)
{
	static const struct option opts[] = {
		{"key", required_argument, NULL, 'k'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *pub = NULL;
	_cleanup_free_ char *buf = NULL, *summary = NULL;
	const char *keypath = NULL, *why = NULL;
	size_t len = 0;
	int c, r;

	while ((c = getopt_long(argc, argv, "k:h", opts, NULL)) != -1) {
		switch (c) {
		case 'k':
			keypath = optarg;
			break;
		case 'h':
			audit_usage(stdout);
			return 0;
		default:
			audit_usage(stderr);
			return 2;
		}
	}
	if (optind + 1 != argc || !keypath) {
		fprintf(stderr, "aicnctl audit check-proof: need PROOF and --key NODE.pub\n");
		return 2;
	}
	pub = load_pub(keypath);
	if (!pub)
		return 1;
	r = read_file(argv[optind], 64 * 1024, &buf, &len);
	if (r < 0) {
		log_errno(LOG_LVL_ERR, r, "cannot read %s", argv[optind]);
		return 1;
	}
	while (len > 0 && buf[len - 1] == '\n')
		buf[--len] = '\0';
	r = meterlog_check_proof(buf, len, pub, &summary, &why);
	if (r < 0) {
		printf("FAIL %s: %s\n", argv[optind], why ? why : strerror(-r));
		return 1;
	}
	printf("PASS %s: %s\n", argv[optind], summary);
	return 0;
}

/* ---- test logs (hidden: tests and benchmarks) --------------------------------- */

static uint64_t gen_clock_now;

static uint64_t gen_clock(void)
{
	return gen_clock_now;
}

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

/*
 * gen-test-log OUT --key KEY [--pub PUB] [--records N] [--tasks T] [--checkpoint-every N]
 * [--batch N] [--seed S] [--no-seal]: a log of N plausible records from T concurrent
 * tasks, written through the real meter log (signing, chain, tree, checkpoints).
 */
static int audit_gen(int argc, char **argv)
{
	static const struct option opts[] = {
		{"key", required_argument, NULL, 'k'},
		{"pub", required_argument, NULL, 'p'},
		{"records", required_argument, NULL, 'n'},
		{"tasks", required_argument, NULL, 't'},
		{"checkpoint-every", required_argument, NULL, 'e'},
		{"batch", required_argument, NULL, 'b'},
		{"seed", required_argument, NULL, 's'},
		{"no-seal", no_argument, NULL, 'u'},
		{"stats", no_argument, NULL, 'S'},
		{NULL, 0, NULL, 0},
	};
	const char *keypath = NULL, *pubpath = NULL, *why = NULL;
	uint64_t nrec = 100, ntasks = 4, every = 1000, batch = 64, seed = 1;
	int seal = 1, stats = 0, c, r;
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
	struct meterlog *ml = NULL;
	struct timespec t0, t1;
	struct meterlog_opts mo = {0};
	struct {
		char task[32];
		uint64_t start, cpu, n;
	} *slot = NULL;

	while ((c = getopt_long(argc, argv, "k:p:n:t:e:b:s:uS", opts, NULL)) != -1) {
		uint64_t *dst = NULL;

		switch (c) {
		case 'k':
			keypath = optarg;
			continue;
		case 'p':
			pubpath = optarg;
			continue;
		case 'u':
			seal = 0;
			continue;
		case 'S':
			stats = 1;
			continue;
		case 'n':
			dst = &nrec;
			break;
		case 't':
			dst = &ntasks;
			break;
		case 'e':
			dst = &every;
			break;
		case 'b':
			dst = &batch;
			break;
		case 's':
			dst = &seed;
			break;
		default:
			return 2;
		}
		if (parse_u64_arg(optarg, dst) < 0) {
			fprintf(stderr, "aicnctl audit gen-test-log: bad number '%s'\n", optarg);
			return 2;
		}
	}
	if (optind + 1 != argc || !keypath || ntasks == 0 || ntasks > 100000 || every == 0 ||
	    batch == 0 || batch > UINT32_MAX || seed == 0) {
		fprintf(stderr,
			"aicnctl audit gen-test-log OUT --key KEY [--pub PUB] [--records N] [--tasks T]\n"
			"  [--checkpoint-every N] [--batch N] [--seed S] [--no-seal]\n");
		return 2;
	}
	r = key_load_or_create(keypath, &key);
	if (r < 0)
		return log_errno(LOG_LVL_ERR, r, "cannot load or create %s", keypath), 1;
	if (pubpath && (r = key_write_public_pem(key, pubpath)) < 0)
		return log_errno(LOG_LVL_ERR, r, "cannot write %s", pubpath), 1;
	gen_clock_now = 1767225600ULL * 1000000000ULL; /* 2026-01-01T00:00:00Z */
	mo.checkpoint_every = every;
	mo.sync_batch = (uint32_t)batch;
	mo.clock_ns = gen_clock;
	mo.checkpoint_interval_ns = UINT64_MAX / 2;
	mo.heartbeat_interval_ns = UINT64_MAX / 2;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	r = meterlog_open(argv[optind], key, &mo, &ml, NULL, &why);
	if (r < 0) {
		log_err("cannot open %s: %s", argv[optind], why ? why : strerror(-r));
		return 1;
	}
	slot = calloc(ntasks, sizeof(*slot));
	if (!slot) {
		meterlog_free(ml);
		return 1;
	}
	for (uint64_t i = 0; i < nrec; i++) {
		uint64_t s = i % ntasks, rnd = xorshift(&seed);
		struct usage_record rec = {0};

		gen_clock_now += 1000000000ULL / ntasks + rnd % 1000;
		if (slot[s].n == 0) {
			snprintf(slot[s].task, sizeof(slot[s].task), "t-%08llx",
				 (unsigned long long)(xorshift(&seed) & 0xffffffffULL));
			slot[s].start = gen_clock_now - 1000000000ULL;
			slot[s].cpu = 0;
		}
		slot[s].n++;
		slot[s].cpu += 500000000ULL + rnd % 1500000000ULL;
		rec.type = (slot[s].n >= 8 || i + ntasks >= nrec) ? RECORD_FINAL : RECORD_INTERVAL;
		snprintf(rec.task, sizeof(rec.task), "%s", slot[s].task);
		snprintf(rec.renter, sizeof(rec.renter), "renter-%llu",
			 (unsigned long long)(s % 3));
		rec.replica = (uint32_t)(s % 2);
		for (int k = 0; k < SHA256_LEN; k++)
			rec.image[k] = (uint8_t)(s * 31 + (uint64_t)k);
		rec.cgroup_id = 4096 + s;
		rec.start_ns = slot[s].start;
		rec.end_ns = gen_clock_now;
		rec.wall_ns = rec.end_ns - rec.start_ns;
		rec.cpu_ns = slot[s].cpu;
		rec.cpu_kernel_ns = slot[s].cpu + rnd % 1000;
		rec.runq_wait_ns = rnd % 50000000ULL;
		rec.switches = 100 * slot[s].n + rnd % 100;
		rec.procs = 1 + rnd % 4;
		rec.net_rx_bytes = 0;
		rec.net_tx_bytes = 0;
		rec.mem_peak_bytes = (64ULL << 20) + rnd % (1ULL << 24);
		rec.limits.cpu_quota_us = 200000;
		rec.limits.cpu_period_us = 100000;
		rec.limits.mem_bytes = 1ULL << 30;
		rec.limits.pids = 256;
		rec.limits.timeout_ns = 3600ULL * 1000000000ULL;
		if (rec.type == RECORD_FINAL) {
			rec.exit_kind = RECORD_EXIT_EXITED;
			rec.has_result = 1;
			for (int k = 0; k < SHA256_LEN; k++)
				rec.result[k] = (uint8_t)(rnd >> (k % 8));
			slot[s].n = 0;
		}
		r = meterlog_append(ml, &rec);
		if (r < 0) {
			log_errno(LOG_LVL_ERR, r, "append failed");
			free(slot);
			meterlog_free(ml);
			return 1;
		}
	}
	free(slot);
	if (seal)
		r = meterlog_close(ml);
	else {
		r = meterlog_flush(ml);
		meterlog_free(ml);
	}
	if (r < 0)
		return log_errno(LOG_LVL_ERR, r, "closing %s", argv[optind]), 1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (stats) {
		double secs =
			(double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;

		printf("%llu records in %.3f s (batches of %llu): %.0f records/s\n",
		       (unsigned long long)nrec, secs, (unsigned long long)batch,
		       secs > 0 ? (double)nrec / secs : 0.0);
	}
	return 0;
}

/* bench-keys [--seconds S]: our Ed25519 sign and verify ops/s on one core, as `openssl speed ed25519` measures them (20-byte messages). */
static int audit_bench_keys(int argc, char **argv)
{
	_cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
	struct key_signer *s = NULL;
	struct key_verifier *v = NULL;
	uint8_t msg[20] = "aicn bench message..", sig[KEY_SIG_LEN];
	double secs = 3, rate[2];

	if (argc == 3 && strcmp(argv[1], "--seconds") == 0)
		secs = strtod(argv[2], NULL);
	if (secs <= 0 || key_generate(&key) < 0 || key_signer_new(key, &s) < 0 ||
	    key_verifier_new(key, &v) < 0 || key_signer_sign(s, msg, sizeof(msg), sig) < 0) {
		key_signer_free(s);
		key_verifier_free(v);
		return 1;
	}
	for (int op = 0; op < 2; op++) {
		struct timespec a, b;
		uint64_t n = 0;
		double el;

		clock_gettime(CLOCK_MONOTONIC, &a);
		do {
			for (int i = 0; i < 64; i++) {
				if (op == 0 ? key_signer_sign(s, msg, sizeof(msg), sig) < 0
					    : key_verifier_check(v, msg, sizeof(msg), sig) < 0) {
					key_signer_free(s);
					key_verifier_free(v);
					return 1;
				}
			}
			n += 64;
			clock_gettime(CLOCK_MONOTONIC, &b);
			el = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
		} while (el < secs);
		rate[op] = (double)n / el;
	}
	printf("%.1f %.1f\n", rate[0], rate[1]);
	key_signer_free(s);
	key_verifier_free(v);
	return 0;
}

int cmd_ledger(int argc, char **argv);

/* `audit ledger DIR --key PUB ...`: `ledger verify` on an export (DIR/ledger.db, DIR/checkpoint). */
static int audit_ledger(int argc, char **argv)
{
	static const struct option opts[] = {
		{"key", required_argument, NULL, 'k'}, {"origin", required_argument, NULL, 'o'},
		{"json", no_argument, NULL, 'j'},      {"allow-unsigned", no_argument, NULL, 'u'},
		{"help", no_argument, NULL, 'h'},      {NULL, 0, NULL, 0},
	};
	const char *key = NULL, *origin = NULL;
	_cleanup_free_ char *db = NULL, *note = NULL;
	bool json = false, unsigned_ok = false;
	char *args[12];
	int n = 0, c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'k':
			key = optarg;
			break;
		case 'o':
			origin = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'u':
			unsigned_ok = true;
			break;
		case 'h':
			audit_usage(stdout);
			return 0;
		default:
			audit_usage(stderr);
			return 2;
		}
	}
	if (optind + 1 != argc || !key) {
		audit_usage(stderr);
		return 2;
	}
	if (asprintf(&db, "%s/ledger.db", argv[optind]) < 0 ||
	    asprintf(&note, "%s/checkpoint", argv[optind]) < 0)
		return 1;
	args[n++] = (char *)"ledger";
	args[n++] = (char *)"verify";
	args[n++] = (char *)"--checkpoint";
	args[n++] = note;
	args[n++] = (char *)"--key";
	args[n++] = (char *)key;
	if (origin) {
		args[n++] = (char *)"--origin";
		args[n++] = (char *)origin;
	}
	if (json)
		args[n++] = (char *)"--json";
	if (unsigned_ok)
		args[n++] = (char *)"--allow-unsigned";
	args[n++] = db;
	args[n] = NULL;
	return cmd_ledger(n, args);
}

/* `audit task DIR TASK`: `ledger task` on an export. */
static int audit_task(int argc, char **argv)
{
	_cleanup_free_ char *db = NULL;
	char *args[4];

	if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		audit_usage(stdout);
		return 0;
	}
	if (argc != 3) {
		audit_usage(stderr);
		return 2;
	}
	if (asprintf(&db, "%s/ledger.db", argv[1]) < 0)
		return 1;
	args[0] = (char *)"ledger";
	args[1] = (char *)"task";
	args[2] = db;
	args[3] = argv[2];
	return cmd_ledger(4, args);
}

int cmd_audit(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*run)(int argc, char **argv);
	} subs[] = {
		{"verify", audit_verify},    {"summarize", audit_summarize},
		{"prove", audit_prove},	     {"check-proof", audit_check_proof},
		{"gen-test-log", audit_gen}, {"bench-keys", audit_bench_keys},
		{"ledger", audit_ledger},    {"task", audit_task},
	};

	if (argc < 2) {
		audit_usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		audit_usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(subs); i++)
		if (strcmp(argv[1], subs[i].name) == 0) {
			optind = 1;
			return subs[i].run(argc - 1, argv + 1);
		}
	fprintf(stderr, "aicnctl audit: unknown command '%s' (see 'aicnctl audit --help')\n",
		argv[1]);
	return 2;
}
