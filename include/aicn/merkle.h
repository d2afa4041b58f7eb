/* merkle.h -- RFC 6962 / RFC 9162 Merkle tree over arbitrary leaf bytes: incremental, with inclusion and consistency proofs. */
#ifndef AICN_MERKLE_H
#define AICN_MERKLE_H

#include <aicn/hash.h>

#include <stddef.h>
#include <stdint.h>

/*
 * Leaf hash = SHA-256(0x00 || leaf bytes), node hash = SHA-256(0x01 || left || right),
 * the root of the empty tree = SHA-256("").  Trees of any size split at the
 * largest power of two below the size (RFC 9162 §2.1.1).
 *
 * The tree keeps every complete subtree hash (about 64 bytes per leaf), so it
 * answers roots, inclusion and consistency proofs for any earlier size as well.
 */

#define MERKLE_HASH_LEN SHA256_LEN
#define MERKLE_MAX_PROOF 128 /* hashes in a proof of a tree with fewer than 2^64 leaves */

struct merkle_tree;

int merkle_new(struct merkle_tree **ret_tree);
struct merkle_tree *merkle_free(struct merkle_tree *t);
/* Number of leaves. */
uint64_t merkle_size(const struct merkle_tree *t);

/* Append one leaf (hashing it) or an already computed leaf hash. */
int merkle_append(struct merkle_tree *t, const void *leaf, size_t len);
int merkle_append_hash(struct merkle_tree *t, const uint8_t leaf_hash[MERKLE_HASH_LEN]);
/* Leaf hash of index i (< size). */
int merkle_leaf_hash_at(const struct merkle_tree *t, uint64_t i, uint8_t ret[MERKLE_HASH_LEN]);
/* Drop every leaf from index size on (size <= current size). */
int merkle_truncate(struct merkle_tree *t, uint64_t size);

/* Root of the tree made of the first size leaves (size <= merkle_size). */
int merkle_root(const struct merkle_tree *t, uint64_t size, uint8_t ret[MERKLE_HASH_LEN]);

/*
 * Inclusion proof of leaf index in the tree of the first size leaves
 * (RFC 9162 §2.1.3.1); ret_proof holds MERKLE_MAX_PROOF hashes, *ret_n is set.
 */
int merkle_inclusion_proof(const struct merkle_tree *t, uint64_t index, uint64_t size,
			   uint8_t ret_proof[][MERKLE_HASH_LEN], size_t *ret_n);
/* Consistency proof between sizes old_size <= new_size (RFC 9162 §2.1.4.1). */
int merkle_consistency_proof(const struct merkle_tree *t, uint64_t old_size, uint64_t new_size,
			     uint8_t ret_proof[][MERKLE_HASH_LEN], size_t *ret_n);

/* Hash helpers, for verifiers and for callers that hash leaves in parallel. */
void merkle_hash_leaf(const void *leaf, size_t len, uint8_t ret[MERKLE_HASH_LEN]);
void merkle_hash_children(const uint8_t left[MERKLE_HASH_LEN], const uint8_t right[MERKLE_HASH_LEN],
			  uint8_t ret[MERKLE_HASH_LEN]);
void merkle_empty_root(uint8_t ret[MERKLE_HASH_LEN]);

/* Verifiers (RFC 9162 §2.1.3.2 and §2.1.4.2): 0 when the proof holds, -EBADMSG when not. */
int merkle_verify_inclusion(const uint8_t leaf_hash[MERKLE_HASH_LEN], uint64_t index, uint64_t size,
			    const uint8_t proof[][MERKLE_HASH_LEN], size_t n,
			    const uint8_t root[MERKLE_HASH_LEN]);
int merkle_verify_consistency(uint64_t old_size, uint64_t new_size,
			      const uint8_t old_root[MERKLE_HASH_LEN],
			      const uint8_t new_root[MERKLE_HASH_LEN],
			      const uint8_t proof[][MERKLE_HASH_LEN], size_t n);

#endif /* AICN_MERKLE_H */
