/* perf.h -- the measured performance score a provider reports in REGISTER: fixed SHA-256 work, 1 and N threads. */
#ifndef AICN_AGENT_PERF_H
#define AICN_AGENT_PERF_H

#include <aicn/hash.h>

#include <stddef.h>
#include <stdint.h>

#define PERF_BLOCK 4096	 /* bytes hashed per step */
#define PERF_STEPS 65536 /* steps per chain: 256 MiB of SHA-256 input */
#define PERF_MAX_THREADS 1024
#define PERF_SEED_MAX 256

/*
 * One chain: a 4 KiB buffer filled from SHA-256(seed || le32 index) in counter
 * mode; each step hashes the buffer and writes the digest back into it at offset
 * (step * 32) mod 4096; the chain's result is the last digest.  Nothing can be
 * skipped: every step depends on the one before.
 */
void perf_chain(const uint8_t *seed, size_t seed_len, uint32_t index, uint8_t out[SHA256_LEN]);

struct perf_result {
	uint32_t threads;	  /* threads of the all-core run */
	uint64_t single_kib_s;	  /* KiB of SHA-256 input per second, one thread */
	uint64_t multi_kib_s;	  /* the same, all threads together */
	uint64_t single_ns;	  /* wall time of the one-thread run */
	uint64_t multi_ns;	  /* wall time of the all-core run */
	uint8_t hash[SHA256_LEN]; /* SHA-256(le32 threads || chain 0 || ... || chain threads-1) */
	char hash_hex[SHA256_HEX_LEN + 1];
};

/*
 * Run chain 0 on one thread, then chains 0..THREADS-1 on THREADS threads at once
 * (both runs must agree on chain 0), and report the rates and the result hash.
 * About 175 ms per run on a 2020s x86 core with SHA extensions, more without.
 */
int perf_measure(const uint8_t *seed, size_t seed_len, uint32_t threads,
		 struct perf_result *ret_result);
/* Recompute the result hash a node must report for SEED and THREADS (costs the node's work). */
int perf_expected_hash(const uint8_t *seed, size_t seed_len, uint32_t threads,
		       uint8_t out[SHA256_LEN]);

#endif /* AICN_AGENT_PERF_H */
