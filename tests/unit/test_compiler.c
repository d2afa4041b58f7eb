/* test_compiler.c -- cleanup helpers run on scope exit, TAKE_* hand ownership out, RET_NERRNO. */
#include <aicn/compiler.h>

#include "harness.h"

#include <fcntl.h>
#include <sys/stat.h>

static int fd_is_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

static int open_null_scoped(int take)
{
	_cleanup_close_ int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	if (take)
		return TAKE_FD(fd);
	return fd;
}

static void test_cleanup_close(void)
{
	int fd = open_null_scoped(0);

	CHECK(fd >= 0);
	CHECK(!fd_is_open(fd));
	fd = open_null_scoped(1);
	CHECK(fd_is_open(fd));
	close(fd);
}

static int frees;
static void counted_free(int *p)
{
	frees++;
	free(p);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(int, counted_free)

static int *alloc_scoped(int take)
{
	_cleanup_(counted_freep) int *p = malloc(sizeof(*p));

	if (take)
		return TAKE_PTR(p);
	return NULL;
}

static void test_cleanup_ptr(void)
{
	int *kept;

	frees = 0;
	CHECK(!alloc_scoped(0));
	CHECK_EQ(frees, 1);
	kept = alloc_scoped(1);
	CHECK(kept);
	CHECK_EQ(frees, 1);
	counted_free(kept);
	{
		_cleanup_(counted_freep) int *none = NULL;
		(void)none;
	}
	CHECK_EQ(frees, 2); /* NULL is not passed to the destructor */
}

static void test_cleanup_free_and_fclose(void)
{
	_cleanup_free_ char *s = strdup("x");
	_cleanup_fclose_ FILE *f = fopen("/dev/null", "re");

	CHECK(s && f);
}

static void test_ret_nerrno(void)
{
	CHECK_EQ(RET_NERRNO(open("/nonexistent/aicn", O_RDONLY | O_CLOEXEC)), -ENOENT);
	CHECK_EQ(RET_NERRNO(close(-1)), -EBADF);
	CHECK_EQ(RET_NERRNO(getpid()), getpid());
}

static void test_macros(void)
{
	int a[7];

	CHECK_EQ(ARRAY_SIZE(a), 7);
	CHECK_EQ(MIN(3, -1), -1);
	CHECK_EQ(MAX(3, -1), 3);
}

int main(void)
{
	static const struct test_case tests[] = {
		TEST(test_cleanup_close),
		TEST(test_cleanup_ptr),
		TEST(test_cleanup_free_and_fclose),
		TEST(test_ret_nerrno),
		TEST(test_macros),
		{0},
	};

	return harness_run(tests);
}
