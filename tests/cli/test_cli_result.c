/* test_cli_result.c -- `aicnctl result` extraction: a good result tar lands intact, hostile ones are refused whole. */
#include "harness.h"

#include "../../cli/tarball.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

static char tmpdir[] = "/tmp/aicn-cli-result.XXXXXX";

struct member {
	const char *name;
	const char *data; /* file contents, symlink or hard link target */
	int type;	  /* AE_IFREG, AE_IFDIR, AE_IFLNK, AE_IFCHR, or 0 for a hard link */
	int mode;
};

static int write_tar(const char *path, const struct member *m)
{
	struct archive *a = archive_write_new();
	int r = 0;

	archive_write_set_format_pax_restricted(a);
	if (archive_write_open_filename(a, path) != ARCHIVE_OK)
		return -1;
	for (; m->name; m++) {
		struct archive_entry *e = archive_entry_new();

		archive_entry_set_pathname(e, m->name);
		archive_entry_set_mtime(e, 0, 0);
		if (m->type == 0) {
			archive_entry_set_filetype(e, AE_IFREG);
			archive_entry_set_hardlink(e, m->data);
		} else {
			archive_entry_set_filetype(e, (unsigned)m->type);
		}
		archive_entry_set_perm(e, m->mode ? m->mode : 0644);
		if (m->type == AE_IFLNK)
			archive_entry_set_symlink(e, m->data);
		if (m->type == AE_IFCHR)
			archive_entry_set_rdev(e, makedev(1, 3));
		if (m->type == AE_IFREG)
			archive_entry_set_size(e, (la_int64_t)strlen(m->data));
		if (archive_write_header(a, e) != ARCHIVE_OK)
			r = -1;
		if (m->type == AE_IFREG && *m->data)
			archive_write_data(a, m->data, strlen(m->data));
		archive_entry_free(e);
	}
	archive_write_close(a);
	archive_write_free(a);
	return r;
}

/* A fresh empty output directory; returns its fd. */
static int fresh_dir(const char *name, char *path, size_t len)
{
	snprintf(path, len, "%s/%s", tmpdir, name);
	if (mkdir(path, 0755) < 0)
		return -1;
	return open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

static int count_entries(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

static void test_good_result(void)
{
	static const struct member good[] = {
		{"exit_code", "3\n", AE_IFREG, 0},
		{"stdout", "hello\n", AE_IFREG, 0},
		{"stderr", "", AE_IFREG, 0},
		{"out/", NULL, AE_IFDIR, 0755},
		{"out/sub/deep.txt", "deep", AE_IFREG, 04755}, /* parent made; suid dropped */
		{"out/link", "/etc/passwd", AE_IFLNK, 0},      /* kept as a link, never followed */
		{NULL, NULL, 0, 0},
	};
	char tar[256], dir[256], err[IMAGE_ERR_LEN], buf[64] = {0};
	struct stat st;
	int dfd, fd;

	snprintf(tar, sizeof(tar), "%s/good.tar", tmpdir);
	CHECK_EQ(write_tar(tar, good), 0);
	dfd = fresh_dir("good", dir, sizeof(dir));
	CHECK(dfd >= 0);
	CHECK_EQ(image_extract_result(tar, dfd, 100, 1 << 20, err), 0);
	fd = openat(dfd, "stdout", O_RDONLY);
	CHECK(fd >= 0);
	CHECK_EQ(read(fd, buf, sizeof(buf) - 1), 6);
	close(fd);
	CHECK_STREQ(buf, "hello\n");
	CHECK_EQ(fstatat(dfd, "out/sub/deep.txt", &st, 0), 0);
	CHECK_EQ(st.st_size, 4);
	CHECK_EQ(st.st_mode & 07000, 0);
	CHECK_EQ(fstatat(dfd, "out/link", &st, AT_SYMLINK_NOFOLLOW), 0);
	CHECK(S_ISLNK(st.st_mode));
	close(dfd);
}

/* Each hostile archive is refused with -EPERM and nothing is extracted. */
static void refused(const char *label, const struct member *m, int want)
{
	char tar[256], dir[256], err[IMAGE_ERR_LEN], outside[256];
	struct stat st;
	int dfd, r;

	snprintf(tar, sizeof(tar), "%s/%s.tar", tmpdir, label);
	if (write_tar(tar, m) != 0) {
		fprintf(stderr, "cannot write %s\n", tar);
		harness_failed++;
		return;
	}
	dfd = fresh_dir(label, dir, sizeof(dir));
	if (dfd < 0) {
		harness_failed++;
		return;
	}
	r = image_extract_result(tar, dfd, 100, 1 << 20, err);
	close(dfd);
	printf("  %-12s -> %d: %s\n", label, r, err);
	if (r != want || !err[0] || (want == -EPERM && count_entries(dir) != 0)) {
		fprintf(stderr, "%s: got %d (%s), %d entries extracted\n", label, r, err,
			count_entries(dir));
		harness_failed++;
	}
	snprintf(outside, sizeof(outside), "%s/escaped", tmpdir);
	if (stat(outside, &st) == 0) {
		fprintf(stderr, "%s: a file escaped to %s\n", label, outside);
		harness_failed++;
		unlink(outside);
	}
}

static void test_hostile_results(void)
{
	static const struct member dotdot[] = {
		{"stdout", "x", AE_IFREG, 0}, {"../escaped", "x", AE_IFREG, 0}, {NULL, NULL, 0, 0}};
	static const struct member dotdot2[] = {{"out/../../escaped", "x", AE_IFREG, 0},
						{NULL, NULL, 0, 0}};
	static const struct member absolute[] = {{"stdout", "x", AE_IFREG, 0},
						 {"/tmp/escaped", "x", AE_IFREG, 0},
						 {NULL, NULL, 0, 0}};
	static const struct member hardlink[] = {
		{"stdout", "x", AE_IFREG, 0}, {"out/pw", "/etc/passwd", 0, 0}, {NULL, NULL, 0, 0}};
	static const struct member device[] = {
		{"stdout", "x", AE_IFREG, 0}, {"out/null", NULL, AE_IFCHR, 0}, {NULL, NULL, 0, 0}};
	static const struct member too_many[] = {{"a", "", AE_IFREG, 0},
						 {"b", "", AE_IFREG, 0},
						 {"c", "", AE_IFREG, 0},
						 {NULL, NULL, 0, 0}};

	refused("dotdot", dotdot, -EPERM);
	refused("dotdot2", dotdot2, -EPERM);
	refused("absolute", absolute, -EPERM);
	refused("hardlink", hardlink, -EPERM);
	refused("device", device, -EPERM);
	{
		/* the entry bound */
		char tar[256], dir[256], err[IMAGE_ERR_LEN];
		int dfd, r;

		snprintf(tar, sizeof(tar), "%s/many.tar", tmpdir);
		CHECK_EQ(write_tar(tar, too_many), 0);
		dfd = fresh_dir("many", dir, sizeof(dir));
		CHECK(dfd >= 0);
		r = image_extract_result(tar, dfd, 2, 1 << 20, err);
		close(dfd);
		CHECK_EQ(r, -EPERM);
		CHECK_EQ(count_entries(dir), 0);
	}
}

/* A symlink member followed by a file through it: the file must not land outside. */
static void test_symlink_then_file(void)
{
	static char target[300];
	struct member m[] = {
		{"out", target, AE_IFLNK, 0},
		{"out/escaped", "through the link", AE_IFREG, 0},
		{NULL, NULL, 0, 0},
	};
	char tar[256], dir[256], err[IMAGE_ERR_LEN], outside[300];
	struct stat st;
	int dfd, r;

	snprintf(target, sizeof(target), "%s", tmpdir);
	snprintf(tar, sizeof(tar), "%s/symlink.tar", tmpdir);
	CHECK_EQ(write_tar(tar, m), 0);
	dfd = fresh_dir("symlink", dir, sizeof(dir));
	CHECK(dfd >= 0);
	r = image_extract_result(tar, dfd, 100, 1 << 20, err);
	close(dfd);
	printf("  symlink      -> %d: %s\n", r, err);
	CHECK(r < 0);
	snprintf(outside, sizeof(outside), "%s/escaped", tmpdir);
	CHECK(stat(outside, &st) < 0);
}

static void test_not_a_tar(void)
{
	char path[256], dir[256], err[IMAGE_ERR_LEN];
	int fd, dfd;

	snprintf(path, sizeof(path), "%s/garbage.tar", tmpdir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0);
	CHECK_EQ(write(fd, "this is not a tar archive at all, not even close ......", 55), 55);
	close(fd);
	dfd = fresh_dir("garbage", dir, sizeof(dir));
	CHECK(dfd >= 0);
	CHECK(image_extract_result(path, dfd, 100, 1 << 20, err) < 0);
	close(dfd);
	CHECK(err[0] != '\0');
}

int main(void)
{
	static const struct test_case cases[] = {
		TEST(test_good_result),
		TEST(test_hostile_results),
		TEST(test_symlink_then_file),
		TEST(test_not_a_tar),
		{NULL, NULL},
	};
	char cmd[300];
	int r;

	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	r = harness_run(cases);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", tmpdir);
	return r;
}
