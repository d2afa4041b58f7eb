/* test_frame.c -- the frame decoder: splits, caps, hostile lengths, bounded memory. */
#include <aicn/frame.h>

#include "harness.h"

#include <errno.h>

struct got {
	int n;
	size_t total;
	char last[64];
};

static int collect(void *ud, char *payload, size_t len)
{
	struct got *g = ud;

	g->n++;
	g->total += len;
	snprintf(g->last, sizeof(g->last), "%.*s", (int)len, payload);
	return payload[len] == '\0' ? 0 : -EINVAL;
}

static size_t put(uint8_t *out, const char *s)
{
	size_t n = strlen(s);

	frame_hdr(out, (uint32_t)n);
	for (size_t i = 0; i < n; i++)
		out[FRAME_HDR_LEN + i] = (uint8_t)s[i];
	return FRAME_HDR_LEN + n;
}

static void every_split(void)
{
	uint8_t buf[256];
	size_t len = put(buf, "{\"a\":1}");

	len += put(buf + len, "{\"type\":\"HEARTBEAT\"}");
	for (size_t cut = 0; cut <= len; cut++) {
		struct frame_dec d;
		struct got g = {0};

		frame_dec_init(&d, 1024);
		CHECK_EQ(frame_dec_feed(&d, buf, cut, 1, collect, &g), 0);
		CHECK_EQ(frame_dec_feed(&d, buf + cut, len - cut, 2, collect, &g), 0);
		CHECK_EQ(g.n, 2);
		CHECK_STREQ(g.last, "{\"type\":\"HEARTBEAT\"}");
		CHECK(!frame_dec_partial(&d));
		CHECK_EQ(frame_dec_mem(&d), 0);
		frame_dec_reset(&d);
	}
}

static void byte_by_byte(void)
{
	uint8_t buf[64];
	size_t len = put(buf, "{\"x\":\"y\"}");
	struct frame_dec d;
	struct got g = {0};

	frame_dec_init(&d, 1024);
	for (size_t i = 0; i < len; i++) {
		CHECK_EQ(frame_dec_feed(&d, buf + i, 1, 100 + i, collect, &g), 0);
		if (i + 1 < len) {
			CHECK(frame_dec_partial(&d));
			CHECK_EQ(d.started_ms, 100); /* slowloris clock starts at the first byte */
		}
	}
	CHECK_EQ(g.n, 1);
	frame_dec_reset(&d);
}

static void huge_length_refused_without_allocating(void)
{
	uint8_t hdr[4] = {0xff, 0xff, 0xff, 0xff}; /* 4 GiB - 1 */
	struct frame_dec d;
	struct got g = {0};

	frame_dec_init(&d, FRAME_MAX_DEFAULT);
	CHECK_EQ(frame_dec_feed(&d, hdr, 4, 1, collect, &g), -EMSGSIZE);
	CHECK_EQ(frame_dec_mem(&d), 0);
	CHECK_EQ(g.n, 0);
	frame_dec_reset(&d);
}

static void cap_is_inclusive(void)
{
	static uint8_t buf[FRAME_HDR_LEN + 1000];
	struct frame_dec d;
	struct got g = {0};

	memset(buf, 'a', sizeof(buf));
	frame_hdr(buf, 1000);
	frame_dec_init(&d, 1000);
	CHECK_EQ(frame_dec_feed(&d, buf, sizeof(buf), 1, collect, &g), 0);
	CHECK_EQ(g.n, 1);
	frame_dec_reset(&d);
	frame_hdr(buf, 1001);
	frame_dec_init(&d, 1000);
	CHECK_EQ(frame_dec_feed(&d, buf, 4, 1, collect, &g), -EMSGSIZE);
	frame_dec_reset(&d);
}

static void empty_frame_refused(void)
{
	uint8_t hdr[4] = {0, 0, 0, 0};
	struct frame_dec d;
	struct got g = {0};

	frame_dec_init(&d, 1024);
	CHECK_EQ(frame_dec_feed(&d, hdr, 4, 1, collect, &g), -EBADMSG);
	frame_dec_reset(&d);
}

static int stop_cb(void *ud, char *payload, size_t len)
{
	(void)payload;
	(void)len;
	(*(int *)ud)++;
	return -ECONNABORTED;
}

static void callback_stops_feeding(void)
{
	uint8_t buf[64];
	size_t len = put(buf, "{}");
	struct frame_dec d;
	int n = 0;

	len += put(buf + len, "{}");
	frame_dec_init(&d, 1024);
	CHECK_EQ(frame_dec_feed(&d, buf, len, 1, stop_cb, &n), -ECONNABORTED);
	CHECK_EQ(n, 1);
	frame_dec_reset(&d);
}

static void truncated_frame_is_partial(void)
{
	uint8_t buf[64];
	size_t len = put(buf, "{\"abc\":1}");
	struct frame_dec d;
	struct got g = {0};

	frame_dec_init(&d, 1024);
	CHECK_EQ(frame_dec_feed(&d, buf, len - 3, 7, collect, &g), 0);
	CHECK_EQ(g.n, 0);
	CHECK(frame_dec_partial(&d));
	CHECK_EQ(frame_dec_mem(&d), 10);
	frame_dec_reset(&d);
	CHECK_EQ(frame_dec_mem(&d), 0);
}

int main(void)
{
	static const struct test_case cases[] = {
		TEST(every_split),
		TEST(byte_by_byte),
		TEST(huge_length_refused_without_allocating),
		TEST(cap_is_inclusive),
		TEST(empty_frame_refused),
		TEST(callback_stops_feeding),
		TEST(truncated_frame_is_partial),
		{NULL, NULL},
	};
	return harness_run(cases);
}
