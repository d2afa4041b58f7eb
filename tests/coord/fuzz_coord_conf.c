/* fuzz_coord_conf.c -- libFuzzer target: coordinator.conf text (the INI parser and every key's checks). */
#include "../../coordinator/conf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct coord_conf c;
	char err[512];
	FILE *devnull;

	if (coord_conf_init(&c) < 0)
		return 0;
	if (coord_conf_parse(&c, "fuzz.conf", (const char *)data, size, err, sizeof(err)) == 0) {
		/* whatever parsed prints back, and every bound holds */
		if (c.heartbeat_timeout < 1 || c.tick_ms < 10 || c.retry_cap > 100 ||
		    !c.max_active || !c.listen || !c.cert || c.cert[0] != '/' || !c.state_dir)
			abort();
		devnull = fopen("/dev/null", "we");
		if (devnull) {
			coord_conf_print(&c, devnull);
			fclose(devnull);
		}
	} else if (!err[0]) {
		abort(); /* a refusal always says why */
	}
	coord_conf_done(&c);
	return 0;
}
