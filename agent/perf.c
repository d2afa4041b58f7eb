/* perf.c -- a short fixed CPU benchmark (chained SHA-256) whose result hash proves the work was done. */
#include "perf.h"

#include <aicn/compiler.h>

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

void perf_chain(const uint8_t *seed, size_t seed_len, uint32_t index, uint8_t out[SHA256_LEN])
{
	uint8_t buf[PERF_BLOCK], in[PERF_SEED_MAX + 8], d[SHA256_LEN];
	size_t n = MIN(seed_len, (size_t)PERF_SEED_MAX);

	memcpy(in, seed, n);
	in[n] = (uint8_t)index;
	in[n + 1] = (uint8_t)(index >> 8);
	in[n + 2] = (uint8_t)(index >> 16);
	in[n + 3] = (uint8_t)(index >> 24);
	for (uint32_t ctr = 0; ctr < PERF_BLOCK / SHA256_LEN; ctr++) {
		in[n + 4] = (uint8_t)ctr;
		in[n + 5] = (uint8_t)(ctr >> 8);
		in[n + 6] = 0;
		in[n + 7] = 0;
		sha256(in, n + 8, buf + ctr * SHA256_LEN);
	}
	for (uint32_t step = 0; step < PERF_STEPS; step++) {
		sha256(buf, sizeof(buf), d);
		memcpy(buf + (step * SHA256_LEN) % PERF_BLOCK, d, SHA256_LEN);
	}
	memcpy(out, d, SHA256_LEN);
}

/* All threads start together: they wait for go (or abort, when not all could be created). */
struct perf_gate {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int go;
	int abort;
};

struct perf_job {
	const uint8_t *seed;
	size_t seed_len;
	uint32_t index;
	struct perf_gate *gate;
	uint8_t out[SHA256_LEN];
};

static void *perf_thread(void *arg)
{
	struct perf_job *j = arg;
	int abort_run;

	pthread_mutex_lock(&j->gate->lock);
	while (!j->gate->go && !j->gate->abort)
		pthread_cond_wait(&j->gate->cond, &j->gate->lock);
	abort_run = j->gate->abort;
	pthread_mutex_unlock(&j->gate->lock);
	if (!abort_run)
		perf_chain(j->seed, j->seed_len, j->index, j->out);
	return NULL;
}

static void gate_open(struct perf_gate *g, int abort_run)
{
	pthread_mutex_lock(&g->lock);
	if (abort_run)
		g->abort = 1;
	else
		g->go = 1;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Run chains 0..n-1 on n threads at once; wall time from the common start to the last end. */
static int run_parallel(const uint8_t *seed, size_t seed_len, uint32_t n,
			uint8_t (*outs)[SHA256_LEN], uint64_t *ret_ns)
{
	struct perf_job *jobs = calloc(n, sizeof(*jobs));
	pthread_t *tids = calloc(n, sizeof(*tids));
	struct perf_gate gate = {
		.lock = PTHREAD_MUTEX_INITIALIZER,
		.cond = PTHREAD_COND_INITIALIZER,
	};
	uint32_t started = 0;
	uint64_t t0 = 0;
	int r = 0;

	if (!jobs || !tids) {
		free(jobs);
		free(tids);
		return -ENOMEM;
	}
	for (; started < n; started++) {
		jobs[started] = (struct perf_job){
			.seed = seed, .seed_len = seed_len, .index = started, .gate = &gate};
		r = -pthread_create(&tids[started], NULL, perf_thread, &jobs[started]);
		if (r < 0)
			break;
	}
	t0 = mono_ns();
	gate_open(&gate, r < 0);
	for (uint32_t i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	if (r == 0) {
		*ret_ns = mono_ns() - t0;
		for (uint32_t i = 0; i < n; i++)
			memcpy(outs[i], jobs[i].out, SHA256_LEN);
	}
	free(jobs);
	free(tids);
	return r;
}

static void combine(uint32_t threads, uint8_t (*outs)[SHA256_LEN], uint8_t out[SHA256_LEN])
{
	struct sha256_ctx *ctx = NULL;
	uint8_t le[4] = {(uint8_t)threads, (uint8_t)(threads >> 8), (uint8_t)(threads >> 16),
			 (uint8_t)(threads >> 24)};

	if (sha256_new(&ctx) < 0)
		abort(); /* only out of memory */
	sha256_update(ctx, le, sizeof(le));
	for (uint32_t i = 0; i < threads; i++)
		sha256_update(ctx, outs[i], SHA256_LEN);
	sha256_final(ctx, out);
	sha256_free(ctx);
}

static uint64_t kib_per_s(uint64_t chains, uint64_t ns)
{
	uint64_t kib = chains * (uint64_t)PERF_STEPS * (PERF_BLOCK / 1024);

	return ns ? (uint64_t)((double)kib * 1e9 / (double)ns) : 0;
}

int perf_measure(const uint8_t *seed, size_t seed_len, uint32_t threads,
		 struct perf_result *ret_result)
{
	uint8_t one[1][SHA256_LEN];
	uint8_t(*outs)[SHA256_LEN];
	struct perf_result res = {.threads = threads};
	int r;

	if (!threads || threads > PERF_MAX_THREADS || seed_len > PERF_SEED_MAX)
		return -EINVAL;
	outs = calloc(threads, SHA256_LEN);
	if (!outs)
		return -ENOMEM;
	r = run_parallel(seed, seed_len, 1, one, &res.single_ns);
	if (r == 0)
		r = run_parallel(seed, seed_len, threads, outs, &res.multi_ns);
	if (r == 0 && memcmp(one[0], outs[0], SHA256_LEN) != 0)
		r = -EIO; /* the same work gave two answers: this CPU cannot be trusted */
	if (r == 0) {
		combine(threads, outs, res.hash);
		hex_encode(res.hash, SHA256_LEN, res.hash_hex);
		res.single_kib_s = kib_per_s(1, res.single_ns);
		res.multi_kib_s = kib_per_s(threads, res.multi_ns);
		*ret_result = res;
	}
	free(outs);
	return r;
}

int perf_expected_hash(const uint8_t *seed, size_t seed_len, uint32_t threads,
		       uint8_t out[SHA256_LEN])
{
	uint8_t(*outs)[SHA256_LEN];

	if (!threads || threads > PERF_MAX_THREADS || seed_len > PERF_SEED_MAX)
		return -EINVAL;
	outs = calloc(threads, SHA256_LEN);
	if (!outs)
		return -ENOMEM;
	for (uint32_t i = 0; i < threads; i++)
		perf_chain(seed, seed_len, i, outs[i]);
	combine(threads, outs, out);
	free(outs);
	return 0;
}
