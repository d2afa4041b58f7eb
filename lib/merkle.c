/* merkle.c -- RFC 6962 Merkle tree: complete subtree hashes per level, roots and proofs for any past size. */
#include <aicn/compiler.h>
#include <aicn/merkle.h>

#include <string.h>

#define MERKLE_LEVELS 64

typedef uint8_t mhash[MERKLE_HASH_LEN];

struct merkle_level {
	mhash *h;   /* h[i] = hash of leaves [i << level, (i + 1) << level) */
	size_t n;   /* complete subtrees at this level */
	size_t cap; /* allocated entries */
};

struct merkle_tree {
	struct merkle_level lv[MERKLE_LEVELS];
	uint64_t size;
};

void merkle_hash_leaf(const void *leaf, size_t len, uint8_t ret[MERKLE_HASH_LEN])
{
	uint8_t buf[1024];

	if (len < sizeof(buf)) {
		buf[0] = 0x00;
		memcpy(buf + 1, leaf, len);
		sha256(buf, len + 1, ret);
	} else {
		struct sha256_ctx *ctx = NULL;
		static const uint8_t zero;

		if (sha256_new(&ctx) < 0)
			abort(); /* out of memory for a few bytes: nothing sensible left to do */
		sha256_update(ctx, &zero, 1);
		sha256_update(ctx, leaf, len);
		sha256_final(ctx, ret);
		sha256_free(ctx);
	}
}

void merkle_hash_children(const uint8_t left[MERKLE_HASH_LEN], const uint8_t right[MERKLE_HASH_LEN],
			  uint8_t ret[MERKLE_HASH_LEN])
{
	uint8_t buf[1 + 2 * MERKLE_HASH_LEN];

	buf[0] = 0x01;
	memcpy(buf + 1, left, MERKLE_HASH_LEN);
	memcpy(buf + 1 + MERKLE_HASH_LEN, right, MERKLE_HASH_LEN);
	sha256(buf, sizeof(buf), ret);
}

void merkle_empty_root(uint8_t ret[MERKLE_HASH_LEN])
{
	sha256("", 0, ret);
}

int merkle_new(struct merkle_tree **ret_tree)
{
	struct merkle_tree *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	*ret_tree = t;
	return 0;
}

struct merkle_tree *merkle_free(struct merkle_tree *t)
{
	if (t) {
		for (int k = 0; k < MERKLE_LEVELS; k++)
			free(t->lv[k].h);
		free(t);
	}
	return NULL;
}

uint64_t merkle_size(const struct merkle_tree *t)
{
	return t->size;
}

static int level_push(struct merkle_level *l, const uint8_t h[MERKLE_HASH_LEN])
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		mhash *nh;

		if (cap > SIZE_MAX / sizeof(mhash))
			return -ENOMEM;
		nh = realloc(l->h, cap * sizeof(mhash));
		if (!nh)
			return -ENOMEM;
		l->h = nh;
		l->cap = cap;
	}
	memcpy(l->h[l->n++], h, MERKLE_HASH_LEN);
	return 0;
}

int merkle_append_hash(struct merkle_tree *t, const uint8_t leaf_hash[MERKLE_HASH_LEN])
{
	mhash h;
	int climb, r;

	if (t->size == UINT64_MAX)
		return -EOVERFLOW;
	/*
	 * Appending leaf number size completes one subtree per trailing one bit of
	 * size; reserve room on all those levels first, so a failed allocation
	 * leaves the tree as it was.
	 */
	climb = __builtin_ctzll(~t->size);
	for (int k = 0; k <= climb && k < MERKLE_LEVELS; k++) {
		struct merkle_level *l = &t->lv[k];

		if (l->n == l->cap) {
			size_t cap = l->cap ? l->cap * 2 : 64;
			mhash *nh;

			if (cap > SIZE_MAX / sizeof(mhash))
				return -ENOMEM;
			nh = realloc(l->h, cap * sizeof(mhash));
			if (!nh)
				return -ENOMEM;
			l->h = nh;
			l->cap = cap;
		}
	}
	r = level_push(&t->lv[0], leaf_hash);
	if (r < 0)
		return r;
	memcpy(h, leaf_hash, MERKLE_HASH_LEN);
	for (int k = 0; k < MERKLE_LEVELS - 1 && t->lv[k].n % 2 == 0; k++) {
		const struct merkle_level *l = &t->lv[k];

		merkle_hash_children(l->h[l->n - 2], l->h[l->n - 1], h);
		r = level_push(&t->lv[k + 1], h);
		if (r < 0)
			return r; /* not reached: space was reserved above */
	}
	t->size++;
	return 0;
}

int merkle_append(struct merkle_tree *t, const void *leaf, size_t len)
{
	mhash h;

	merkle_hash_leaf(leaf, len, h);
	return merkle_append_hash(t, h);
}

int merkle_leaf_hash_at(const struct merkle_tree *t, uint64_t i, uint8_t ret[MERKLE_HASH_LEN])
{
	if (i >= t->size)
		return -ERANGE;
	memcpy(ret, t->lv[0].h[i], MERKLE_HASH_LEN);
	return 0;
}

int merkle_truncate(struct merkle_tree *t, uint64_t size)
{
	if (size > t->size)
		return -ERANGE;
	for (int k = 0; k < MERKLE_LEVELS; k++)
		t->lv[k].n = (size_t)(size >> k);
	t->size = size;
	return 0;
}

/* Largest power of two strictly below n (n >= 2). */
static uint64_t split_point(uint64_t n)
{
	return UINT64_C(1) << (63 - __builtin_clzll(n - 1));
}

/*
 * MTH(D[a:b]) for 0 <= a < b <= size.  Every range the RFC's recursions visit
 * starts at a multiple of its own largest power of two, so complete pieces are
 * always stored subtrees.
 */
static void range_hash(const struct merkle_tree *t, uint64_t a, uint64_t b,
		       uint8_t ret[MERKLE_HASH_LEN])
{
	uint64_t n = b - a;

	if ((n & (n - 1)) == 0 && (a & (n - 1)) == 0) {
		int k = __builtin_ctzll(n);

		memcpy(ret, t->lv[k].h[a >> k], MERKLE_HASH_LEN);
		return;
	}
	{
		uint64_t s = split_point(n);
		mhash l, r;

		range_hash(t, a, a + s, l);
		range_hash(t, a + s, b, r);
		merkle_hash_children(l, r, ret);
	}
}

int merkle_root(const struct merkle_tree *t, uint64_t size, uint8_t ret[MERKLE_HASH_LEN])
{
	if (size > t->size)
		return -ERANGE;
	if (size == 0)
		merkle_empty_root(ret);
	else
		range_hash(t, 0, size, ret);
	return 0;
}

/* PATH(m, D[a:b]) appended leaf-side first. */
static void path(const struct merkle_tree *t, uint64_t m, uint64_t a, uint64_t b,
		 uint8_t out[][MERKLE_HASH_LEN], size_t *n)
{
	uint64_t s;

	if (b - a <= 1)
		return;
	s = split_point(b - a);
	if (m < s) {
		path(t, m, a, a + s, out, n);
		range_hash(t, a + s, b, out[(*n)++]);
	} else {
		path(t, m - s, a + s, b, out, n);
		range_hash(t, a, a + s, out[(*n)++]);
	}
}

int merkle_inclusion_proof(const struct merkle_tree *t, uint64_t index, uint64_t size,
			   uint8_t ret_proof[][MERKLE_HASH_LEN], size_t *ret_n)
{
	size_t n = 0;

	if (size > t->size || index >= size)
		return -ERANGE;
	path(t, index, 0, size, ret_proof, &n);
	*ret_n = n;
	return 0;
}

/* SUBPROOF(m, D[a:b], complete) of RFC 6962 §2.1.2. */
static void subproof(const struct merkle_tree *t, uint64_t m, uint64_t a, uint64_t b, int complete,
		     uint8_t out[][MERKLE_HASH_LEN], size_t *n)
{
	uint64_t s;

	if (m == b - a) {
		if (!complete)
			range_hash(t, a, b, out[(*n)++]);
		return;
	}
	s = split_point(b - a);
	if (m <= s) {
		subproof(t, m, a, a + s, complete, out, n);
		range_hash(t, a + s, b, out[(*n)++]);
	} else {
		subproof(t, m - s, a + s, b, 0, out, n);
		range_hash(t, a, a + s, out[(*n)++]);
	}
}

int merkle_consistency_proof(const struct merkle_tree *t, uint64_t old_size, uint64_t new_size,
			     uint8_t ret_proof[][MERKLE_HASH_LEN], size_t *ret_n)
{
	size_t n = 0;

	if (new_size > t->size || old_size > new_size)
		return -ERANGE;
	if (old_size > 0 && old_size < new_size)
		subproof(t, old_size, 0, new_size, 1, ret_proof, &n);
	*ret_n = n;
	return 0;
}

int merkle_verify_inclusion(const uint8_t leaf_hash[MERKLE_HASH_LEN], uint64_t index, uint64_t size,
			    const uint8_t proof[][MERKLE_HASH_LEN], size_t n,
			    const uint8_t root[MERKLE_HASH_LEN])
{
	uint64_t fn = index, sn;
	mhash r;

	if (index >= size || n > MERKLE_MAX_PROOF)
		return -EBADMSG;
	sn = size - 1;
	memcpy(r, leaf_hash, MERKLE_HASH_LEN);
	for (size_t i = 0; i < n; i++) {
		if (sn == 0)
			return -EBADMSG;
		if ((fn & 1) || fn == sn) {
			merkle_hash_children(proof[i], r, r);
			if (!(fn & 1))
				while (fn != 0 && !(fn & 1)) {
					fn >>= 1;
					sn >>= 1;
				}
		} else {
			merkle_hash_children(r, proof[i], r);
		}
		fn >>= 1;
		sn >>= 1;
	}
	return sn == 0 && memcmp(r, root, MERKLE_HASH_LEN) == 0 ? 0 : -EBADMSG;
}

int merkle_verify_consistency(uint64_t old_size, uint64_t new_size,
			      const uint8_t old_root[MERKLE_HASH_LEN],
			      const uint8_t new_root[MERKLE_HASH_LEN],
			      const uint8_t proof[][MERKLE_HASH_LEN], size_t n)
{
	uint64_t fn, sn;
	mhash fr, sr;
	size_t i = 0;

	if (old_size > new_size || n > MERKLE_MAX_PROOF)
		return -EBADMSG;
	if (old_size == new_size)
		return n == 0 && memcmp(old_root, new_root, MERKLE_HASH_LEN) == 0 ? 0 : -EBADMSG;
	if (old_size == 0)
		return n == 0 ? 0 : -EBADMSG; /* the empty tree is a prefix of every tree */
	if (n == 0)
		return -EBADMSG;
	fn = old_size - 1;
	sn = new_size - 1;
	/* an old tree that is a complete subtree is its own first proof node */
	if ((old_size & (old_size - 1)) == 0) {
		memcpy(fr, old_root, MERKLE_HASH_LEN);
	} else {
		memcpy(fr, proof[0], MERKLE_HASH_LEN);
		i = 1;
	}
	memcpy(sr, fr, MERKLE_HASH_LEN);
	while (fn & 1) {
		fn >>= 1;
		sn >>= 1;
	}
	for (; i < n; i++) {
		if (sn == 0)
			return -EBADMSG;
		if ((fn & 1) || fn == sn) {
			merkle_hash_children(proof[i], fr, fr);
			merkle_hash_children(proof[i], sr, sr);
			if (!(fn & 1))
				while (fn != 0 && !(fn & 1)) {
					fn >>= 1;
					sn >>= 1;
				}
		} else {
			merkle_hash_children(sr, proof[i], sr);
		}
		fn >>= 1;
		sn >>= 1;
	}
	if (sn != 0 || memcmp(fr, old_root, MERKLE_HASH_LEN) != 0 ||
	    memcmp(sr, new_root, MERKLE_HASH_LEN) != 0)
		return -EBADMSG;
	return 0;
}
