/* pow.h -- the Proof-of-Work stamp: a hashcash nonce over (task id, result digest, record hash). */
#ifndef AICN_POW_H
#define AICN_POW_H

#include <stdint.h>

#define POW_MAX_BITS 64		/* difficulty is a count of leading zero bits of a SHA-256 */
#define POW_MAX_TASK_ID_LEN 256 /* bytes of task id hashed into a stamp */

/*
 * stamp digest = SHA-256("aicn-pow-v1" 0x00 || u16be(len(task_id)) || task_id ||
 *                        result_digest[32] || record_hash[32] || u64be(nonce))
 * A stamp meets difficulty d when its digest begins with at least d zero bits.
 * The agent mints it after writing the usage record; the coordinator verifies it
 * against the difficulty of the epoch the task was dispatched in.
 */

/* Leading zero bits of the stamp digest for this nonce (0..256); -EINVAL on a bad task id. */
int pow_stamp_bits(const char *task_id, const uint8_t result_digest[32],
		   const uint8_t record_hash[32], uint64_t nonce);

/*
 * Search nonces from start_nonce for at most max_tries (0 = until found) for one that
 * meets bits.  -EINVAL bad arguments, -EAGAIN when max_tries ran out.  Expected work
 * is 2^bits digests.
 */
int pow_mint(const char *task_id, const uint8_t result_digest[32], const uint8_t record_hash[32],
	     unsigned bits, uint64_t start_nonce, uint64_t max_tries, uint64_t *ret_nonce);

/* 0 when the stamp meets bits, -EBADMSG when it is below difficulty, -EINVAL bad input. */
int pow_verify(const char *task_id, const uint8_t result_digest[32], const uint8_t record_hash[32],
	       uint64_t nonce, unsigned bits);

#endif /* AICN_POW_H */
