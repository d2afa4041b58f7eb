/* test_fileio.c -- bounded whole-file reads: exact limit accepted, one byte more refused, pipes and empty files. */
#include <aicn/fileio.h>

#include "harness.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int tmpfile_with(size_t n)
{
	char path[] = "/tmp/aicn-fileio-XXXXXX";
	int fd = mkstemp(path);
	char *data;

	if (fd < 0)
		return -1;
	unlink(path);
	data = malloc(n + 1);
	memset(data, 'x', n);
	if (n && write(fd, data, n) != (ssize_t)n) {
		free(data);
		close(fd);
		return -1;
	}
	free(data);
	lseek(fd, 0, SEEK_SET);
	return fd;
}

static void limits(void)
{
	static const size_t sizes[] = {0, 1, 4095, 4096, 4097, 10000};

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t n = sizes[i], len = 99;
		char *buf = NULL;
		int fd = tmpfile_with(n);

		CHECK(fd >= 0);
		CHECK(read_fd_all(fd, n, &buf, &len) == 0); /* exactly max: accepted */
		CHECK(len == n && buf[n] == '\0');
		CHECK(n == 0 || (buf[0] == 'x' && buf[n - 1] == 'x'));
		free(buf);
		buf = NULL;
		if (n > 0) {
			lseek(fd, 0, SEEK_SET);
			CHECK(read_fd_all(fd, n - 1, &buf, &len) == -EFBIG); /* one byte over */
			CHECK(buf == NULL);
		}
		close(fd);
	}
}

static void pipe_and_into(void)
{
	int p[2];
	char small[8], *buf = NULL;
	size_t len;

	CHECK(pipe(p) == 0);
	CHECK(write(p[1], "hello world", 11) == 11);
	close(p[1]);
	CHECK(read_fd_into(p[0], small, sizeof(small)) == 7); /* truncated, NUL-terminated */
	CHECK(strcmp(small, "hello w") == 0);
	CHECK(read_fd_all(p[0], 100, &buf, &len) == 0); /* the rest */
	CHECK(len == 4 && strcmp(buf, "orld") == 0);
	free(buf);
	close(p[0]);
	CHECK(read_fd_into(0, small, 0) == -EINVAL);
}

int main(void)
{
	static const struct test_case cases[] = {
		TEST(limits),
		TEST(pipe_and_into),
		{NULL, NULL},
	};
	return harness_run(cases);
}
