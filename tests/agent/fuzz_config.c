/* fuzz_config.c -- libFuzzer target: agent.conf parsing never crashes, leaks or accepts what it can't write back. */
#include "../../agent/config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct agent_host_facts host = {.ncpus = 8, .mem_bytes = 16ULL << 30};
	struct agent_config *c = NULL, *again = NULL;
	char err[AGENT_CONFIG_ERR_MAX];
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	if (agent_config_parse((const char *)data, size, "fuzz.conf", &host, err, sizeof(err), &c) <
	    0) {
		if (!err[0] || !memchr(err, '\0', sizeof(err)))
			abort(); /* every refusal says why */
		return 0;
	}
	/* What was accepted is written back and must parse again. */
	f = open_memstream(&buf, &len);
	if (!f)
		abort();
	agent_config_write(c, f);
	fclose(f);
	if (agent_config_parse(buf, len, "fuzz.conf", &host, err, sizeof(err), &again) < 0)
		abort();
	agent_config_free(again);
	agent_config_free(c);
	free(buf);
	return 0;
}
