/* pow.c -- hashcash stamps binding a proof of work to a task, its result and its usage record. */
#include <aicn/hash.h>
#include <aicn/pow.h>

#include <errno.h>
#include <openssl/evp.h>
#include <string.h>

static const char pow_domain[] = "aicn-pow-v1"; /* hashed with its NUL as separator */

/* Everything but the nonce is the same for every try: hash it once, then copy the state. */
struct pow_prefix {
	EVP_MD_CTX *prefix; /* state after the domain, task id and digests */
	EVP_MD_CTX *work;   /* scratch copy per nonce */
};

static void prefix_done(struct pow_prefix *p)
{
	EVP_MD_CTX_free(p->prefix);
	EVP_MD_CTX_free(p->work);
}

static int prefix_init(struct pow_prefix *p, const char *task_id, const uint8_t result_digest[32],
		       const uint8_t record_hash[32])
{
	size_t len;
	uint8_t l[2];

	*p = (struct pow_prefix){NULL, NULL};
	if (!task_id || !result_digest || !record_hash)
		return -EINVAL;
	len = strnlen(task_id, POW_MAX_TASK_ID_LEN + 1);
	if (len == 0 || len > POW_MAX_TASK_ID_LEN)
		return -EINVAL;
	l[0] = (uint8_t)(len >> 8);
	l[1] = (uint8_t)len;
	p->prefix = EVP_MD_CTX_new();
	p->work = EVP_MD_CTX_new();
	if (!p->prefix || !p->work || !EVP_DigestInit_ex(p->prefix, EVP_sha256(), NULL) ||
	    !EVP_DigestUpdate(p->prefix, pow_domain, sizeof(pow_domain)) ||
	    !EVP_DigestUpdate(p->prefix, l, 2) || !EVP_DigestUpdate(p->prefix, task_id, len) ||
	    !EVP_DigestUpdate(p->prefix, result_digest, 32) ||
	    !EVP_DigestUpdate(p->prefix, record_hash, 32)) {
		prefix_done(p);
		return -ENOMEM;
	}
	return 0;
}

static int leading_zero_bits(const uint8_t d[SHA256_LEN])
{
	int bits = 0;

	for (int i = 0; i < SHA256_LEN; i++) {
		if (d[i])
			return bits + __builtin_clz((unsigned)d[i]) - 24;
		bits += 8;
	}
	return bits;
}

static int prefix_bits(struct pow_prefix *p, uint64_t nonce)
{
	uint8_t n[8], d[SHA256_LEN];
	unsigned int dl = SHA256_LEN;

	for (int i = 0; i < 8; i++)
		n[i] = (uint8_t)(nonce >> (56 - 8 * i));
	if (!EVP_MD_CTX_copy_ex(p->work, p->prefix) || !EVP_DigestUpdate(p->work, n, 8) ||
	    !EVP_DigestFinal_ex(p->work, d, &dl))
		return -ENOMEM;
	return leading_zero_bits(d);
}

int pow_stamp_bits(const char *task_id, const uint8_t result_digest[32],
		   const uint8_t record_hash[32], uint64_t nonce)
{
	struct pow_prefix p;
	int r = prefix_init(&p, task_id, result_digest, record_hash);

	if (r < 0)
		return r;
	r = prefix_bits(&p, nonce);
	prefix_done(&p);
	return r;
}

int pow_mint(const char *task_id, const uint8_t result_digest[32], const uint8_t record_hash[32],
	     unsigned bits, uint64_t start_nonce, uint64_t max_tries, uint64_t *ret_nonce)
{
	struct pow_prefix p;
	int r;

	if (bits > POW_MAX_BITS)
		return -EINVAL;
	r = prefix_init(&p, task_id, result_digest, record_hash);
	if (r < 0)
		return r;
	r = -EAGAIN;
	for (uint64_t i = 0, n = start_nonce; max_tries == 0 || i < max_tries; i++, n++) {
		int b = prefix_bits(&p, n);

		if (b < 0) {
			r = b;
			break;
		}
		if (b >= (int)bits) {
			*ret_nonce = n;
			r = 0;
			break;
		}
	}
	prefix_done(&p);
	return r;
}

int pow_verify(const char *task_id, const uint8_t result_digest[32], const uint8_t record_hash[32],
	       uint64_t nonce, unsigned bits)
{
	int r;

	if (bits > POW_MAX_BITS)
		return -EINVAL;
	r = pow_stamp_bits(task_id, result_digest, record_hash, nonce);
	if (r < 0)
		return r;
	return r >= (int)bits ? 0 : -EBADMSG;
}
