/* frame.c -- length-prefixed frame decoder with hard caps, fed from whatever TLS hands us. */
#include <aicn/frame.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void frame_dec_init(struct frame_dec *d, uint32_t max)
{
	memset(d, 0, sizeof(*d));
	d->max = max ? max : FRAME_MAX_DEFAULT;
}

void frame_dec_reset(struct frame_dec *d)
{
	free(d->buf);
	frame_dec_init(d, d->max);
}

int frame_dec_partial(const struct frame_dec *d)
{
	return d->hdr_have > 0;
}

size_t frame_dec_mem(const struct frame_dec *d)
{
	return d->buf ? (size_t)d->need + 1 : 0;
}

void frame_hdr(uint8_t hdr[FRAME_HDR_LEN], uint32_t len)
{
	hdr[0] = (uint8_t)(len >> 24);
	hdr[1] = (uint8_t)(len >> 16);
	hdr[2] = (uint8_t)(len >> 8);
	hdr[3] = (uint8_t)len;
}

int frame_dec_feed(struct frame_dec *d, const uint8_t *data, size_t len, uint64_t now_ms,
		   frame_fn fn, void *ud)
{
	while (len > 0) {
		if (d->hdr_have == 0)
			d->started_ms = now_ms;
		if (d->hdr_have < FRAME_HDR_LEN) {
			size_t n = FRAME_HDR_LEN - d->hdr_have;

			n = n < len ? n : len;
			memcpy(d->hdr + d->hdr_have, data, n);
			d->hdr_have += (uint32_t)n;
			data += n;
			len -= n;
			if (d->hdr_have < FRAME_HDR_LEN)
				return 0;
			d->need = (uint32_t)d->hdr[0] << 24 | (uint32_t)d->hdr[1] << 16 |
				  (uint32_t)d->hdr[2] << 8 | d->hdr[3];
			if (d->need == 0)
				return -EBADMSG;
			if (d->need > d->max)
				return -EMSGSIZE;
			d->buf = malloc((size_t)d->need + 1);
			if (!d->buf)
				return -ENOMEM;
			d->have = 0;
		}
		size_t n = d->need - d->have;

		n = n < len ? n : len;
		memcpy(d->buf + d->have, data, n);
		d->have += (uint32_t)n;
		data += n;
		len -= n;
		if (d->have == d->need) {
			char *buf = d->buf;
			size_t flen = d->need;
			int r;

			buf[flen] = '\0';
			d->buf = NULL;
			d->hdr_have = 0;
			d->need = d->have = 0;
			d->started_ms = 0;
			r = fn(ud, buf, flen);
			free(buf);
			if (r < 0)
				return r;
		}
	}
	return 0;
}
