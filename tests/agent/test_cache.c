/* test_cache.c -- image cache accounting: LRU eviction order, pins, all-or-nothing eviction, the index on disk. */
#include "../../agent/cache.h"

#include "harness.h"

#include <errno.h>
#include <fcntl.h>

static char dir[] = "/tmp/aicn-cache-XXXXXX";
static char evicted[16][80];
static int nevicted, fail_evict;

static const char *dg(char c)
{
	static char d[8][CACHE_DIGEST_LEN + 1];
	static int slot;
	char *p = d[slot++ % 8];

	memcpy(p, "sha256:", 7);
	memset(p + 7, c, 64);
	p[71] = '\0';
	return p;
}

static int on_evict(const char *digest, void *userdata)
{
	(void)userdata;
	if (fail_evict)
		return -EBUSY;
	snprintf(evicted[nevicted++ % 16], 80, "%s", digest);
	return 0;
}

static void reset_dir(void)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/%s", dir, CACHE_INDEX_FILE);
	unlink(path);
	nevicted = 0;
	fail_evict = 0;
}

static void test_lru_order(void)
{
	struct cache *c = NULL;
	uint64_t size = 0;

	reset_dir();
	CHECK_EQ(cache_open(dir, 100, &c), 0);
	CHECK_EQ(cache_insert(c, dg('a'), 30, on_evict, NULL), 0);
	CHECK_EQ(cache_insert(c, dg('b'), 30, on_evict, NULL), 0);
	CHECK_EQ(cache_insert(c, dg('c'), 30, on_evict, NULL), 0);
	CHECK_EQ(cache_used(c), 90);
	CHECK_EQ(cache_lookup(c, dg('a'), &size), 0); /* a is now the most recent */
	CHECK_EQ(size, 30);
	CHECK_EQ(cache_lookup(c, dg('z'), &size), -ENOENT);
	CHECK_EQ(cache_insert(c, dg('d'), 30, on_evict, NULL), 0);
	CHECK_EQ(nevicted, 1);
	CHECK_STREQ(evicted[0], dg('b'));
	CHECK_EQ(cache_insert(c, dg('e'), 40, on_evict, NULL), 0);
	CHECK_EQ(nevicted, 2);
	CHECK_STREQ(evicted[1], dg('c'));
	CHECK_EQ(cache_used(c), 100);
	/* order now: a, d, e */
	CHECK_STREQ(cache_nth(c, 0), dg('a'));
	CHECK_STREQ(cache_nth(c, 1), dg('d'));
	CHECK_STREQ(cache_nth(c, 2), dg('e'));
	CHECK(cache_nth(c, 3) == NULL);
	CHECK_EQ(cache_insert(c, dg('e'), 1, on_evict, NULL), -EEXIST);
	CHECK_EQ(cache_insert(c, dg('f'), 101, on_evict, NULL), -EFBIG);
	CHECK_EQ(cache_insert(c, "sha256:XYZ", 1, on_evict, NULL), -EINVAL);
	CHECK_EQ(cache_insert(c, "md5:0123", 1, on_evict, NULL), -EINVAL);
	cache_free(c);
}

static void test_pins(void)
{
	struct cache *c = NULL;

	reset_dir();
	CHECK_EQ(cache_open(dir, 100, &c), 0);
	CHECK_EQ(cache_insert(c, dg('a'), 40, on_evict, NULL), 0);
	CHECK_EQ(cache_insert(c, dg('b'), 40, on_evict, NULL), 0);
	CHECK_EQ(cache_pin(c, dg('a')), 0);
	CHECK_EQ(cache_pin(c, dg('a')), 0);
	/* 'a' is oldest but pinned: 'b' goes instead */
	CHECK_EQ(cache_insert(c, dg('c'), 50, on_evict, NULL), 0);
	CHECK_EQ(nevicted, 1);
	CHECK_STREQ(evicted[0], dg('b'));
	CHECK_EQ(cache_pin(c, dg('c')), 0);
	/* 40 + 50 pinned: 20 more cannot fit; nothing is evicted for nothing */
	CHECK_EQ(cache_insert(c, dg('d'), 20, on_evict, NULL), -ENOSPC);
	CHECK_EQ(nevicted, 1);
	CHECK_EQ(cache_count(c), 2);
	CHECK_EQ(cache_remove(c, dg('a')), -EBUSY);
	CHECK_EQ(cache_unpin(c, dg('a')), 0);
	CHECK_EQ(cache_remove(c, dg('a')), -EBUSY); /* pinned twice */
	CHECK_EQ(cache_unpin(c, dg('a')), 0);
	CHECK_EQ(cache_unpin(c, dg('a')), -EINVAL);
	CHECK_EQ(cache_insert(c, dg('d'), 20, on_evict, NULL), 0);
	CHECK_EQ(nevicted, 2);
	CHECK_STREQ(evicted[1], dg('a'));
	CHECK_EQ(cache_pin(c, dg('q')), -ENOENT);
	cache_free(c);
}

static void test_evict_failure_keeps_entry(void)
{
	struct cache *c = NULL;

	reset_dir();
	CHECK_EQ(cache_open(dir, 100, &c), 0);
	CHECK_EQ(cache_insert(c, dg('a'), 60, on_evict, NULL), 0);
	fail_evict = 1;
	CHECK_EQ(cache_insert(c, dg('b'), 60, on_evict, NULL), -EBUSY);
	CHECK_EQ(cache_count(c), 1);
	CHECK_STREQ(cache_nth(c, 0), dg('a'));
	CHECK_EQ(cache_used(c), 60);
	cache_free(c);
}

static void test_persisted(void)
{
	struct cache *c = NULL;

	reset_dir();
	CHECK_EQ(cache_open(dir, 1000, &c), 0);
	CHECK_EQ(cache_insert(c, dg('1'), 100, on_evict, NULL), 0);
	CHECK_EQ(cache_insert(c, dg('2'), 200, on_evict, NULL), 0);
	CHECK_EQ(cache_insert(c, dg('3'), 300, on_evict, NULL), 0);
	CHECK_EQ(cache_lookup(c, dg('1'), NULL), 0);
	CHECK_EQ(cache_pin(c, dg('2')), 0);
	cache_free(c);
	/* the agent restarts: same images, same order, no pins */
	CHECK_EQ(cache_open(dir, 1000, &c), 0);
	CHECK_EQ(cache_count(c), 3);
	CHECK_EQ(cache_used(c), 600);
	CHECK_STREQ(cache_nth(c, 0), dg('2'));
	CHECK_STREQ(cache_nth(c, 1), dg('3'));
	CHECK_STREQ(cache_nth(c, 2), dg('1'));
	CHECK_EQ(cache_remove(c, dg('2')), 0);
	/* a smaller capacity from a config change evicts down to it, oldest first */
	CHECK_EQ(cache_set_capacity(c, 150, on_evict, NULL), 0);
	CHECK_EQ(cache_count(c), 1);
	CHECK_STREQ(evicted[0], dg('3'));
	CHECK_EQ(cache_capacity(c), 150);
	cache_free(c);
	CHECK_EQ(cache_open(dir, 150, &c), 0);
	CHECK_EQ(cache_count(c), 1);
	CHECK_STREQ(cache_nth(c, 0), dg('1'));
	cache_free(c);
}

static void write_index(const char *text)
{
	char path[128];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, CACHE_INDEX_FILE);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd >= 0) {
		if (write(fd, text, strlen(text)) < 0)
			perror("write");
		close(fd);
	}
}

static void test_damaged_index(void)
{
	static const char *const bad[] = {
		"",
		"something else\n",
		"aicn-image-cache 1\n12 sha256:abc\n",
		"aicn-image-cache 1\nx sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
		"aicn-image-cache 1\n-1 sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
		"aicn-image-cache 1\n1 sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"
		"2 sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
		"aicn-image-cache 1\n18446744073709551615 "
		"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n1 "
		"sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\n",
		"aicn-image-cache 1\n1 sha256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n",
		"aicn-image-cache 1\n1 sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	};
	struct cache *c = NULL;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		write_index(bad[i]);
		if (cache_open(dir, 100, &c) != -EBADMSG) {
			fprintf(stderr, "accepted index %zu\n", i);
			cache_free(c);
			CHECK(0);
		}
	}
	write_index("aicn-image-cache 1\n");
	CHECK_EQ(cache_open(dir, 100, &c), 0);
	CHECK_EQ(cache_count(c), 0);
	cache_free(c);
	CHECK_EQ(cache_open("/nonexistent/aicn", 100, &c), -ENOENT);
	{
		static const char good[] =
			"aicn-image-cache 1\n100 "
			"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n200 "
			"sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\n";
		size_t n = 0;
		uint64_t used = 0;

		CHECK_EQ(cache_index_check(good, strlen(good), &n, &used), 0);
		CHECK_EQ(n, 2);
		CHECK_EQ(used, 300);
		CHECK_EQ(cache_index_check(bad[5], strlen(bad[5]), &n, &used), -EBADMSG);
	}
}

int main(void)
{
	static const struct test_case cases[] = {
		TEST(test_lru_order),
		TEST(test_pins),
		TEST(test_evict_failure_keeps_entry),
		TEST(test_persisted),
		TEST(test_damaged_index),
		{NULL, NULL},
	};
	char cmd[64];
	int r;

	if (!mkdtemp(dir))
		return 1;
	r = harness_run(cases);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		return 1;
	return r;
}
