/* fuzz_cli_metrics.c -- libFuzzer target: an agent's /metrics page as `aicnctl agent status` reads it. */
#include "../../cli/agentmx.h"

#include <aicn/canon.h>

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cJSON *o = NULL;
	char *s = NULL;
	size_t len;

	if (agent_metrics_summary((const char *)data, size, &o) == 0) {
		/* whatever was read must print as canonical JSON */
		if (canon_print(o, &s, &len) < 0)
			abort();
		free(s);
		cJSON_Delete(o);
	}
	return 0;
}
