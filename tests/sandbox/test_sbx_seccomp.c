/* test_sbx_seccomp.c -- every syscall the policy table denies is really denied inside a sandbox. */
#include "harness.h"

#include <aicn/sandbox.h>

#include <errno.h>
#include <fcntl.h>
#include <seccomp.h>
#include <stdint.h>

static char tmpdir[] = "/tmp/aicn-sbx-seccomp.XXXXXX";
static struct sbx_image *img;
static struct cg_host host;

static int setup(void)
{
	const char *src = getenv("AICN_SRC"), *build = getenv("AICN_BUILD");
	char cmd[2048], cache[256];
	struct sbx_err err;
	int r;

	if (!src || !build || !mkdtemp(tmpdir))
		return -1;
	snprintf(
		cmd, sizeof(cmd),
		"python3 %s/tests/sandbox/mkimage.py busybox %s/img --probe %s/tests/sandbox/sbx-probe",
		src, tmpdir, build);
	if (system(cmd) != 0)
		return -1;
	snprintf(cmd, sizeof(cmd), "%s/img", tmpdir);
	snprintf(cache, sizeof(cache), "%s/cache", tmpdir);
	r = sbx_image_open(cache, cmd, &img, &err);
	if (r < 0) {
		fprintf(stderr, "image: %s\n", err.msg);
		return -1;
	}
	return cg_host_detect(&host);
}

/* Run sbx-probe ARGS in the sandbox; its output goes to our stdout. */
static int run_probe(char **argv, int no_seccomp, struct sbx_result *res)
{
	struct sbx_config cfg = {
		.rootfs = img->rootfs,
		.argv = argv,
		.stdin_fd = -1,
		.stdout_fd = 1,
		.stderr_fd = 2,
		.host = &host,
		.no_seccomp = no_seccomp,
		.limits = {.timeout_ms = 20000},
	};
	struct sbx_err err = {{0}};
	int r = sbx_run(&cfg, res, &err);

	if (r < 0)
		fprintf(stderr, "sbx_run: %s (%d)\n", err.msg, r);
	return r;
}

static char **denied_argv(int with_enosys)
{
	size_t n;
	const struct sbx_sc_rule *p = sbx_seccomp_policy(&n);
	char **argv = calloc(n + 8, sizeof(*argv));
	size_t k = 0;

	argv[k++] = strdup("/bin/sbx-probe");
	argv[k++] = strdup("deny-all");
	for (size_t i = 0; i < n; i++) {
		int nr = seccomp_syscall_resolve_name(p[i].name);
		char buf[32];

		if (nr < 0)
			continue; /* not on this architecture or unknown to libseccomp */
		if (p[i].action == SBX_SC_DENY)
			snprintf(buf, sizeof(buf), "%d:%d", nr, EPERM);
		else if (p[i].action == SBX_SC_ENOSYS && with_enosys)
			snprintf(buf, sizeof(buf), "%d:%d", nr, ENOSYS);
		else
			continue;
		argv[k++] = strdup(buf);
	}
	if (with_enosys) {
		/* a number no kernel has yet, and one past anything libseccomp knows */
		argv[k++] = strdup("1023:38");
		argv[k++] = strdup("600:38");
	}
	return argv;
}

static void free_argv(char **argv)
{
	for (char **p = argv; *p; p++)
		free(*p);
	free(argv);
}

static void test_every_denied_call(void)
{
	char **argv;
	struct sbx_result res;
	size_t count = 0;

	REQUIRE_ROOT();
	argv = denied_argv(1);
	for (char **p = argv + 2; *p; p++)
		count++;
	printf("checking %zu denied syscalls\n", count);
	CHECK(count >= 60);
	CHECK(run_probe(argv, 0, &res) == 0);
	free_argv(argv);
	CHECK_EQ(res.end, SBX_END_EXITED);
	CHECK_EQ(res.exit_code, 0);
}

/* The same probe without the filter must notice: the test can fail. */
static void test_probe_notices_missing_filter(void)
{
	char **argv;
	struct sbx_result res;

	REQUIRE_ROOT();
	argv = denied_argv(0);
	CHECK(run_probe(argv, 1, &res) == 0);
	free_argv(argv);
	CHECK_EQ(res.end, SBX_END_EXITED);
	CHECK(res.exit_code != 0);
}

static void test_compiled_once(void)
{
	size_t n;
	const struct sbx_sc_rule *p = sbx_seccomp_policy(&n);

	CHECK_EQ(sbx_seccomp_prepare(), 0);
	CHECK_EQ(sbx_seccomp_prepare(), 0);
	/* every row names a syscall and every denial says why */
	for (size_t i = 0; i < n; i++) {
		CHECK(p[i].name && p[i].name[0]);
		if (p[i].action != SBX_SC_ALLOW)
			CHECK(p[i].why && p[i].why[0]);
	}
}

int main(void)
{
	static const struct test_case cases[] = {
		TEST(test_compiled_once),
		TEST(test_every_denied_call),
		TEST(test_probe_notices_missing_filter),
		{0},
	};
	char cmd[512];
	int r;

	if (geteuid() != 0) {
		printf("SKIP: needs root (namespaces, cgroups)\n");
		return 77;
	}
	if (setup() < 0) {
		fprintf(stderr, "setup failed\n");
		return 1;
	}
	r = harness_run(cases);
	sbx_image_free(img);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	if (system(cmd) != 0)
		r = 1;
	return r;
}
