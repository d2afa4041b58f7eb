/* checkpoint.c -- C2SP tlog checkpoints as signed notes: sign with the node key, parse and verify strictly. */
#include <aicn/checkpoint.h>
#include <aicn/compiler.h>

#include <stdio.h>
#include <string.h>

#define EM_DASH "\xe2\x80\x94"

void note_key_id(const char *name, const uint8_t pub[KEY_PUB_LEN], uint8_t ret[NOTE_KEY_ID_LEN])
{
	size_t n = strlen(name);
	uint8_t buf[CHECKPOINT_ORIGIN_MAX + 2 + KEY_PUB_LEN], d[SHA256_LEN];

	if (n > CHECKPOINT_ORIGIN_MAX)
		n = CHECKPOINT_ORIGIN_MAX;
	for (size_t i = 0; i < n; i++)
		buf[i] = (uint8_t)name[i];
	buf[n] = '\n';
	buf[n + 1] = 0x01; /* signature type: Ed25519 */
	memcpy(buf + n + 2, pub, KEY_PUB_LEN);
	sha256(buf, n + 2 + KEY_PUB_LEN, d);
	memcpy(ret, d, NOTE_KEY_ID_LEN);
}

int note_verifier_key(const char *name, EVP_PKEY *pub, char **ret)
{
	uint8_t raw[1 + KEY_PUB_LEN], id[NOTE_KEY_ID_LEN];
	_cleanup_free_ char *b64 = NULL;
	char hex[2 * NOTE_KEY_ID_LEN + 1];
	int r;

	raw[0] = 0x01;
	r = key_raw_public(pub, raw + 1);
	if (r < 0)
		return r;
	note_key_id(name, raw + 1, id);
	hex_encode(id, sizeof(id), hex);
	r = base64_encode(raw, sizeof(raw), &b64);
	if (r < 0)
		return r;
	return asprintf(ret, "%s+%s+%s", name, hex, b64) < 0 ? -ENOMEM : 0;
}

static int origin_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > CHECKPOINT_ORIGIN_MAX)
		return 0;
	for (; *s; s++)
		if ((unsigned char)*s <= ' ' || *s == '+' || (unsigned char)*s >= 0x7f)
			return 0;
	return 1;
}

int checkpoint_sign(const struct checkpoint *c, EVP_PKEY *key, char **ret_note)
{
	_cleanup_free_ char *root = NULL, *body = NULL, *sig64 = NULL;
	uint8_t pub[KEY_PUB_LEN], blob[NOTE_KEY_ID_LEN + KEY_SIG_LEN];
	int r, n;

	if (!origin_valid(c->origin))
		return -EINVAL;
	r = key_raw_public(key, pub);
	if (r < 0)
		return r;
	r = base64_encode(c->root, SHA256_LEN, &root);
	if (r < 0)
		return r;
	if (strlen(c->ext) > CHECKPOINT_EXT_MAX || strchr(c->ext, '\n'))
		return -EINVAL;
	n = asprintf(&body, "%s\n%llu\n%s\n%s%s", c->origin, (unsigned long long)c->size, root,
		     c->ext, c->ext[0] ? "\n" : "");
	if (n < 0)
		return -ENOMEM;
	note_key_id(c->origin, pub, blob);
	r = key_sign(key, body, (size_t)n, blob + NOTE_KEY_ID_LEN);
	if (r < 0)
		return r;
	r = base64_encode(blob, sizeof(blob), &sig64);
	if (r < 0)
		return r;
	return asprintf(ret_note, "%s\n" EM_DASH " %s %s\n", body, c->origin, sig64) < 0 ? -ENOMEM
											 : 0;
}

#define FAIL(code, why)                                                                            \
	do {                                                                                       \
		if (ret_err)                                                                       \
			*ret_err = (why);                                                          \
		return (code);                                                                     \
	} while (0)

/* Next line of [p, end) without its newline; 0 when there is no complete line. */
static int next_line(const char **p, const char *end, const char **ret_s, size_t *ret_n)
{
	const char *nl = memchr(*p, '\n', (size_t)(end - *p));

	if (!nl)
		return 0;
	*ret_s = *p;
	*ret_n = (size_t)(nl - *p);
	*p = nl + 1;
	return 1;
}

static int parse_size(const char *s, size_t n, uint64_t *ret)
{
	uint64_t v = 0;

	if (n == 0 || n > 20 || (s[0] == '0' && n > 1))
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		if (v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return -ERANGE;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*ret = v;
	return 0;
}

/* Body of a note: origin, size, root.  *ret_text_len = bytes of the signed text. */
static int parse_body(const char *note, size_t len, struct checkpoint *ret, size_t *ret_text_len,
		      const char **ret_err)
{
	const char *p = note, *end, *text_end, *s;
	struct checkpoint c = {0};
	size_t n, text_len;

	if (len == 0 || len > NOTE_MAX)
		FAIL(-EINVAL, "note empty or too long");
	if (memchr(note, '\0', len))
		FAIL(-EINVAL, "NUL byte in note");
	end = note + len;
	if (end[-1] != '\n')
		FAIL(-EINVAL, "note does not end with a newline");
	text_end = memmem(note, len, "\n\n", 2);
	if (!text_end)
		FAIL(-EINVAL, "note has no signature block");
	text_len = (size_t)(text_end - note) + 1;
	/* body: origin, size, root, then at most one extension line */
	if (!next_line(&p, note + text_len, &s, &n) || n == 0 || n > CHECKPOINT_ORIGIN_MAX)
		FAIL(-EINVAL, "bad origin line");
	memcpy(c.origin, s, n);
	c.origin[n] = '\0';
	if (!origin_valid(c.origin))
		FAIL(-EINVAL, "bad origin line");
	if (!next_line(&p, note + text_len, &s, &n) || parse_size(s, n, &c.size) < 0)
		FAIL(-EINVAL, "bad size line");
	if (!next_line(&p, note + text_len, &s, &n))
		FAIL(-EINVAL, "missing root hash line");
	{
		uint8_t *h = NULL;
		size_t hl = 0;

		if (base64_decode(s, n, &h, &hl) < 0)
			FAIL(-EINVAL, "bad root hash line");
		if (hl != SHA256_LEN) {
			free(h);
			FAIL(-EINVAL, "root hash is not 32 bytes");
		}
		memcpy(c.root, h, SHA256_LEN);
		free(h);
	}
	if (next_line(&p, note + text_len, &s, &n)) {
		if (n == 0 || n > CHECKPOINT_EXT_MAX || memchr(s, '\r', n))
			FAIL(-EINVAL, "bad extension line");
		memcpy(c.ext, s, n);
		c.ext[n] = '\0';
	}
	if (p != note + text_len)
		FAIL(-EINVAL, "more than one extension line");
	*ret = c;
	*ret_text_len = text_len;
	return 0;
}

int checkpoint_parse(const char *note, size_t len, struct checkpoint *ret, const char **ret_err)
{
	size_t text_len;

	return parse_body(note, len, ret, &text_len, ret_err);
}

int checkpoint_verify(const char *note, size_t len, EVP_PKEY *pub, const char *want_origin,
		      struct checkpoint *ret, const char **ret_err)
{
	const char *p, *end, *s;
	uint8_t raw[KEY_PUB_LEN], id[NOTE_KEY_ID_LEN];
	struct checkpoint c;
	size_t n, text_len;
	int found = 0, nsigs = 0, r;

	r = parse_body(note, len, &c, &text_len, ret_err);
	if (r < 0)
		return r;
	end = note + len;
	if (want_origin && strcmp(want_origin, c.origin) != 0)
		FAIL(-EBADMSG, "checkpoint is for another log (origin differs)");
	r = key_raw_public(pub, raw);
	if (r < 0)
		return r;
	note_key_id(c.origin, raw, id);
	/* signature lines */
	p = note + text_len + 1;
	while (p < end) {
		static const char dash[] = EM_DASH " ";
		const char *sp;
		uint8_t *blob = NULL;
		size_t bl = 0;

		if (!next_line(&p, end, &s, &n))
			FAIL(-EINVAL, "bad signature line");
		if (++nsigs > NOTE_MAX_SIGS)
			FAIL(-EINVAL, "too many signature lines");
		if (n < sizeof(dash) - 1 || memcmp(s, dash, sizeof(dash) - 1) != 0)
			FAIL(-EINVAL, "signature line does not start with an em dash");
		s += sizeof(dash) - 1;
		n -= sizeof(dash) - 1;
		sp = memchr(s, ' ', n);
		if (!sp || sp == s)
			FAIL(-EINVAL, "bad signature line");
		if ((size_t)(sp - s) != strlen(c.origin) ||
		    memcmp(s, c.origin, (size_t)(sp - s)) != 0)
			continue; /* another signer (a witness): not ours to check */
		if (base64_decode(sp + 1, n - (size_t)(sp + 1 - s), &blob, &bl) < 0)
			FAIL(-EINVAL, "bad signature encoding");
		if (bl == NOTE_KEY_ID_LEN + KEY_SIG_LEN && memcmp(blob, id, NOTE_KEY_ID_LEN) == 0 &&
		    key_verify(pub, note, text_len, blob + NOTE_KEY_ID_LEN) == 0)
			found = 1;
		free(blob);
	}
	if (!found)
		FAIL(-EBADMSG, "no valid signature by the node key");
	*ret = c;
	return 0;
}
