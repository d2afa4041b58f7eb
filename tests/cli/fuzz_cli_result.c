/* fuzz_cli_result.c -- libFuzzer target: a result tar from a provider, checked and extracted by `aicnctl result`. */
#include "../../cli/tarball.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char base[] = "/tmp/aicn-fuzz-result-XXXXXX";
static int ready;

static void cleanup(void)
{
	char cmd[96];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", base);
}

/* Only "in.tar" and "out" may exist next to each other: nothing escaped. */
static void check_base(void)
{
	DIR *d = opendir(base);
	struct dirent *de;

	if (!d)
		abort();
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0 &&
		    strcmp(de->d_name, "in.tar") != 0 && strcmp(de->d_name, "out") != 0) {
			fprintf(stderr, "escaped: %s/%s\n", base, de->d_name);
			abort();
		}
	closedir(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char tar[96], out[96], cmd[128], err[IMAGE_ERR_LEN];
	int fd, dfd;

	if (!ready) {
		if (!mkdtemp(base))
			abort();
		atexit(cleanup);
		ready = 1;
	}
	snprintf(tar, sizeof(tar), "%s/in.tar", base);
	snprintf(out, sizeof(out), "%s/out", base);
	fd = open(tar, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, data, size) != (ssize_t)size)
		abort();
	close(fd);
	if (mkdir(out, 0700) < 0)
		abort();
	dfd = open(out, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		abort();
	(void)image_extract_result(tar, dfd, 1000, 16 << 20, err);
	close(dfd);
	check_base();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", out);
	if (system(cmd) != 0)
		abort();
	return 0;
}
