/* checkpoint.h -- C2SP tlog-checkpoint bodies signed as C2SP signed notes with an Ed25519 key. */
#ifndef AICN_CHECKPOINT_H
#define AICN_CHECKPOINT_H

#include <aicn/hash.h>
#include <aicn/key.h>

#include <stddef.h>
#include <stdint.h>

#define CHECKPOINT_ORIGIN_MAX 255
#define NOTE_MAX 8192	  /* bytes in a signed note we accept */
#define NOTE_MAX_SIGS 64  /* signature lines we look at */
#define NOTE_KEY_ID_LEN 4 /* C2SP key ID: SHA-256(name || "\n" || 0x01 || pubkey)[:4] */
#define CHECKPOINT_EXT_MAX 255

/*
 * Body (the signed text):          Signature line after a blank line:
 *   <origin>\n                        \u2014 <key name> <base64(key ID || Ed25519 signature)>\n
 *   <size, decimal>\n
 *   <base64 root hash>\n
 * The key name is the origin.  One optional extension line after the root is
 * kept (the meter log writes "prev <size of the previous checkpoint>"); more are refused.
 */
struct checkpoint {
	char origin[CHECKPOINT_ORIGIN_MAX + 1]; /* the log's identity, e.g. aicn/meter/<node id> */
	uint64_t size;				/* number of leaves */
	uint8_t root[SHA256_LEN];		/* RFC 6962 root of the first size leaves */
	char ext[CHECKPOINT_EXT_MAX + 1];	/* the extension line, or "" */
};

/* The signed note of c, signed by key under the name c->origin; free() *ret_note. */
int checkpoint_sign(const struct checkpoint *c, EVP_PKEY *key, char **ret_note);
/*
 * Parse a signed note and check that it carries a valid signature by pub under
 * the name of its origin (and that the origin is want_origin, unless NULL).
 * Other signature lines (witness cosignatures) are ignored.  -EBADMSG with a
 * reason for a note that does not verify, -EINVAL for one that does not parse.
 */
int checkpoint_verify(const char *note, size_t len, EVP_PKEY *pub, const char *want_origin,
		      struct checkpoint *ret, const char **ret_err);

/* Parse the body only, checking no signature (for provers, which hold no key). */
int checkpoint_parse(const char *note, size_t len, struct checkpoint *ret, const char **ret_err);

/* C2SP key ID of an Ed25519 key under a name. */
void note_key_id(const char *name, const uint8_t pub[KEY_PUB_LEN], uint8_t ret[NOTE_KEY_ID_LEN]);
/* The verifier key string "<name>+<hex key ID>+<base64(0x01 || pubkey)>" (Go's sumdb/note format). */
int note_verifier_key(const char *name, EVP_PKEY *pub, char **ret);

#endif /* AICN_CHECKPOINT_H */
