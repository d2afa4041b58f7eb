/* test_outbox.c -- the durable outbox: put, ack, reopen, leftovers of interrupted puts, bad files set aside. */
#include <aicn/outbox.h>

#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>

static char dir[64];

static void fresh_dir(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (dir[0] && system(cmd) != 0)
		abort();
	snprintf(dir, sizeof(dir), "/tmp/aicn-outbox.XXXXXX");
	if (!mkdtemp(dir))
		abort();
}

#define REC "{\"a\":1}"

static void put_ack_reopen(void)
{
	struct outbox *o = NULL;

	fresh_dir();
	CHECK_EQ(outbox_open(dir, 10, &o), 0);
	CHECK_EQ(outbox_put(o, 5, REC, strlen(REC)), 0);
	CHECK_EQ(outbox_put(o, 2, REC, strlen(REC)), 0);
	CHECK_EQ(outbox_put(o, 9, REC, strlen(REC)), 0);
	CHECK_EQ(outbox_put(o, 5, REC, strlen(REC)), -EEXIST);
	CHECK_EQ(outbox_first(o), 2);
	CHECK_EQ(outbox_ack(o, 2), 0);
	CHECK_EQ(outbox_ack(o, 2), 0); /* a duplicate ACK is harmless */
	CHECK_EQ(outbox_pending(o), 2);
	outbox_free(o);
	/* what a kill -9 leaves is exactly what was put and not acked */
	CHECK_EQ(outbox_open(dir, 10, &o), 0);
	CHECK_EQ(outbox_pending(o), 2);
	CHECK_EQ(outbox_first(o), 5);
	outbox_free(o);
}

static void refuses_bad_input(void)
{
	struct outbox *o = NULL;

	fresh_dir();
	CHECK_EQ(outbox_open(dir, 2, &o), 0);
	CHECK_EQ(outbox_put(o, 1, "[1]", 3), -EINVAL);
	CHECK_EQ(outbox_put(o, 1, "{\"a\":", 5), -EINVAL);
	CHECK_EQ(outbox_put(o, 1, REC, strlen(REC)), 0);
	CHECK_EQ(outbox_put(o, 2, REC, strlen(REC)), 0);
	CHECK_EQ(outbox_put(o, 3, REC, strlen(REC)), -ENOSPC);
	outbox_free(o);
}

static void interrupted_put_is_cleaned(void)
{
	struct outbox *o = NULL;
	char p[128];
	struct stat st;
	int fd;

	fresh_dir();
	snprintf(p, sizeof(p), "%s/.tmp-7", dir);
	fd = open(p, O_WRONLY | O_CREAT, 0600);
	CHECK(fd >= 0);
	CHECK_EQ(write(fd, "{\"a\"", 4), 4);
	close(fd);
	CHECK_EQ(outbox_open(dir, 10, &o), 0);
	CHECK_EQ(outbox_pending(o), 0);
	CHECK(stat(p, &st) < 0);
	outbox_free(o);
}

static void files_are_private(void)
{
	struct outbox *o = NULL;
	char p[128];
	struct stat st;

	fresh_dir();
	rmdir(dir);
	CHECK_EQ(outbox_open(dir, 10, &o), 0);
	CHECK_EQ(stat(dir, &st), 0);
	CHECK_EQ(st.st_mode & 0777, 0700);
	CHECK_EQ(outbox_put(o, 3, REC, strlen(REC)), 0);
	snprintf(p, sizeof(p), "%s/00000000000000000003.rec", dir);
	CHECK_EQ(stat(p, &st), 0);
	CHECK_EQ(st.st_mode & 0777, 0600);
	outbox_free(o);
}

int main(void)
{
	static const struct test_case cases[] = {
		TEST(put_ack_reopen),
		TEST(refuses_bad_input),
		TEST(interrupted_put_is_cleaned),
		TEST(files_are_private),
		{NULL, NULL},
	};
	int r = harness_run(cases);

	fresh_dir();
	rmdir(dir);
	return r;
}
