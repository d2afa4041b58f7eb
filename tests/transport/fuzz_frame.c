/* fuzz_frame.c -- libFuzzer: the frame decoder fed in random-sized pieces, each frame through proto_parse. */
#include <aicn/frame.h>
#include <aicn/proto.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int on_frame(void *ud, char *payload, size_t len)
{
	struct proto_msg m = {0};
	char err[PROTO_ERR_LEN];

	(void)ud;
	if (payload[len] != '\0')
		abort();
	if (proto_parse(payload, len, &m, err) >= 0 || m.root)
		proto_msg_done(&m);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct frame_dec d;
	size_t off = 0;

	if (size < 1)
		return 0;
	frame_dec_init(&d, 64 * 1024);
	/* the first byte chooses how the stream is cut, as TLS records would */
	unsigned step = data[0] ? data[0] : 1;

	data++;
	size--;
	while (off < size) {
		size_t n = size - off < step ? size - off : step;

		if (frame_dec_feed(&d, data + off, n, off, on_frame, NULL) < 0)
			break;
		if (frame_dec_mem(&d) > 64 * 1024 + 1)
			abort(); /* the cap bounds memory */
		off += n;
	}
	frame_dec_reset(&d);
	return 0;
}
