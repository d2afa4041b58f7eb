/* test_result.c -- the result archive: round trip through libarchive, stream tails, links never followed, determinism. */
#include "../../agent/result.h"

#include <aicn/compiler.h>
#include <aicn/hash.h>

#include "harness.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[] = "/tmp/aicn-result-XXXXXX";

static void put(const char *rel, const void *data, size_t len, mode_t mode)
{
	char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	if (fd < 0 || write(fd, data, len) != (ssize_t)len)
		abort();
	close(fd);
}

static void mk(const char *rel)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	mkdir(path, 0755);
}

struct member {
	char *data;
	size_t len;
	int type;
	unsigned mode;
	char name[256];
	char link[256];
};

/* Read every member of a tar; returns the count. */
static int read_tar(const char *path, struct member *m, int max)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	int n = 0;

	archive_read_support_format_tar(a);
	if (archive_read_open_filename(a, path, 65536) != ARCHIVE_OK)
		return -1;
	while (n < max && archive_read_next_header(a, &e) == ARCHIVE_OK) {
		la_int64_t size = archive_entry_size(e);

		snprintf(m[n].name, sizeof(m[n].name), "%s", archive_entry_pathname(e));
		m[n].type = (int)archive_entry_filetype(e);
		m[n].mode = (unsigned)archive_entry_perm(e);
		if (archive_entry_symlink(e))
			snprintf(m[n].link, sizeof(m[n].link), "%s", archive_entry_symlink(e));
		m[n].len = (size_t)size;
		m[n].data = malloc((size_t)size + 1);
		if (size && archive_read_data(a, m[n].data, (size_t)size) != size)
			return -1;
		m[n].data[size] = '\0';
		if (archive_entry_uid(e) != 0 || archive_entry_mtime(e) != 0)
			return -1;
		n++;
	}
	archive_read_free(a);
	return n;
}

static void free_members(struct member *m, int n)
{
	for (int i = 0; i < n; i++)
		free(m[i].data);
}

static void test_round_trip(void)
{
	struct result_info info, again;
	struct member m[32];
	char why[RESULT_WHY_MAX] = "", out[512], big_path[512];
	uint8_t digest[SHA256_LEN];
	char *big = malloc(RESULT_STREAM_MAX + 100);
	int dfd, n;

	CHECK(big);
	/* stdout longer than the bound: only its last 1 MiB is kept */
	for (size_t i = 0; i < RESULT_STREAM_MAX + 100; i++)
		big[i] = (char)('a' + i % 26);
	put("stdout", big, RESULT_STREAM_MAX + 100, 0600);
	put("stderr", "oops\n", 5, 0600);
	mk("work");
	mk("work/out");
	mk("work/out/sub");
	put("work/out/b.txt", "bee\n", 4, 0600);
	put("work/out/a.sh", "#!/bin/sh\n", 10, 0700);
	put("work/out/sub/c", "", 0, 0600);
	snprintf(big_path, sizeof(big_path), "%s/work/out/link", dir);
	CHECK_EQ(symlink("/etc/shadow", big_path), 0); /* stored as a link, never read through */
	snprintf(big_path, sizeof(big_path), "%s/work/out/fifo", dir);
	CHECK_EQ(mkfifo(big_path, 0600), 0); /* would block a reader: left out */
	put("work/not-out.txt", "x", 1, 0600);
	dfd = open(dir, O_RDONLY | O_DIRECTORY);
	CHECK(dfd >= 0);
	snprintf(out, sizeof(out), "%s/result.tar", dir);
	CHECK_EQ(result_build(dfd, "work", 7, out, &info, why, sizeof(why)), 0);
	CHECK_EQ(sha256_file(AT_FDCWD, out, digest), 0);
	CHECK(memcmp(digest, info.digest, SHA256_LEN) == 0);
	{
		struct stat st;

		CHECK_EQ(stat(out, &st), 0);
		CHECK_EQ((uint64_t)st.st_size, info.size);
		CHECK_EQ(st.st_size % 512, 0); /* a tar of whole blocks */
	}
	CHECK_EQ(info.out_files, 4);
	CHECK_EQ(info.out_skipped, 1);
	n = read_tar(out, m, 32);
	CHECK_EQ(n, 9);
	CHECK_STREQ(m[0].name, "exit_code");
	CHECK_STREQ(m[0].data, "7\n");
	CHECK_STREQ(m[1].name, "stdout");
	CHECK_EQ(m[1].len, RESULT_STREAM_MAX);
	CHECK(memcmp(m[1].data, big + 100, RESULT_STREAM_MAX) == 0);
	CHECK_STREQ(m[2].name, "stderr");
	CHECK_STREQ(m[2].data, "oops\n");
	CHECK_STREQ(m[3].name, "out/");
	CHECK_EQ(m[3].type, AE_IFDIR);
	CHECK_STREQ(m[4].name, "out/a.sh"); /* sorted */
	CHECK_EQ(m[4].mode, 0755);
	CHECK_STREQ(m[5].name, "out/b.txt");
	CHECK_EQ(m[5].mode, 0644);
	CHECK_STREQ(m[5].data, "bee\n");
	CHECK_STREQ(m[6].name, "out/link");
	CHECK_EQ(m[6].type, AE_IFLNK);
	CHECK_STREQ(m[6].link, "/etc/shadow");
	CHECK_EQ(m[6].len, 0);
	CHECK_STREQ(m[7].name, "out/sub/");
	CHECK_STREQ(m[8].name, "out/sub/c");
	free_members(m, n);
	/* the same output gives the same digest: the record can be re-signed after a crash */
	CHECK_EQ(result_build(dfd, "work", 7, out, &again, why, sizeof(why)), 0);
	CHECK(memcmp(again.digest, info.digest, SHA256_LEN) == 0);
	CHECK_EQ(result_build(dfd, "work", 8, out, &again, why, sizeof(why)), 0);
	CHECK(memcmp(again.digest, info.digest, SHA256_LEN) != 0);
	close(dfd);
	free(big);
}

static void test_no_output(void)
{
	char sub[600], out[700], why[RESULT_WHY_MAX] = "";
	struct result_info info;
	struct member m[8];
	int dfd, n;

	snprintf(sub, sizeof(sub), "%s/empty", dir);
	CHECK_EQ(mkdir(sub, 0700), 0);
	dfd = open(sub, O_RDONLY | O_DIRECTORY);
	CHECK(dfd >= 0);
	snprintf(out, sizeof(out), "%s/r.tar", sub);
	/* no stdout, stderr or work/out at all: empty members, no out/ */
	CHECK_EQ(result_build(dfd, "work", -1, out, &info, why, sizeof(why)), 0);
	n = read_tar(out, m, 8);
	CHECK_EQ(n, 3);
	CHECK_STREQ(m[0].data, "-1\n");
	CHECK_EQ(m[1].len, 0);
	CHECK_EQ(m[2].len, 0);
	free_members(m, n);
	/* out is a symlink to a directory elsewhere: not followed */
	CHECK_EQ(mkdir(strcat(sub, "/work"), 0755), 0);
	CHECK_EQ(symlink("/etc", strcat(sub, "/out")), 0);
	CHECK_EQ(result_build(dfd, "work", 0, out, &info, why, sizeof(why)), 0);
	CHECK_EQ(info.out_files, 0);
	n = read_tar(out, m, 8);
	CHECK_EQ(n, 3);
	free_members(m, n);
	/* an unwritable destination is an error with a reason */
	CHECK_EQ(result_build(dfd, "work", 0, "/nonexistent-dir/r.tar", &info, why, sizeof(why)),
		 -ENOENT);
	CHECK(why[0]);
	close(dfd);
}

int main(void)
{
	static const struct test_case cases[] = {
		TEST(test_round_trip),
		TEST(test_no_output),
		{NULL, NULL},
	};
	int r;

	if (!mkdtemp(dir))
		return 1;
	r = harness_run(cases);
	{
		char cmd[600];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd) != 0)
			r = r ? r : 1;
	}
	return r;
}
