/* hex.c -- the codecs of hash.h that need no OpenSSL, so digest parsers do not map libcrypto. */
#include <aicn/hash.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void hex_encode(const uint8_t *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0xf];
	}
	out[2 * len] = '\0';
}

static int hex_val(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int hex_decode(const char *in, size_t inlen, uint8_t *out, size_t outlen)
{
	if (inlen != 2 * outlen)
		return -EINVAL;
	for (size_t i = 0; i < outlen; i++) {
		int hi = hex_val(in[2 * i]), lo = hex_val(in[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

int digest_parse(const char *s, uint8_t out[SHA256_LEN])
{
	static const char prefix[] = "sha256:";

	if (!s || strncmp(s, prefix, sizeof(prefix) - 1) != 0)
		return -EINVAL;
	s += sizeof(prefix) - 1;
	if (strlen(s) != SHA256_HEX_LEN)
		return -EINVAL;
	for (const char *p = s; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return -EINVAL; /* OCI digests are lowercase */
	return hex_decode(s, SHA256_HEX_LEN, out, SHA256_LEN);
}

static int b64_val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int base64_decode(const char *in, size_t len, uint8_t **ret, size_t *ret_len)
{
	size_t pad = 0, n = 0;
	uint8_t *out;

	if (len % 4 != 0)
		return -EINVAL;
	if (len >= 1 && in[len - 1] == '=')
		pad++;
	if (len >= 2 && in[len - 2] == '=')
		pad++;
	out = malloc(len / 4 * 3 + 1);
	if (!out)
		return -ENOMEM;
	for (size_t i = 0; i < len; i += 4) {
		int v[4];
		int last = i + 4 == len;

		for (int k = 0; k < 4; k++) {
			v[k] = b64_val(in[i + k]);
			if (v[k] < 0 && !(last && in[i + k] == '=' && k >= 4 - (int)pad))
				goto fail;
			if (v[k] < 0)
				v[k] = 0;
		}
		out[n++] = (uint8_t)(v[0] << 2 | v[1] >> 4);
		if (!(last && pad == 2))
			out[n++] = (uint8_t)(v[1] << 4 | v[2] >> 2);
		if (!(last && pad >= 1))
			out[n++] = (uint8_t)(v[2] << 6 | v[3]);
		/* canonical: bits dropped by padding must be zero */
		if (last && pad == 2 && (v[1] & 0xf))
			goto fail;
		if (last && pad == 1 && (v[2] & 0x3))
			goto fail;
	}
	*ret = out;
	*ret_len = n;
	return 0;
fail:
	free(out);
	return -EINVAL;
}
