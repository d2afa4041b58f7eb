/* fuzz_state.c -- libFuzzer target: a task's supervise.state is parsed strictly, whatever is on disk. */
#include "../../agent/supervisor.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sup_status st;

	if (sup_state_parse((const char *)data, size, &st) == 0) {
		if ((unsigned)st.kind >= SUP_KIND_N || st.kind == SUP_LOST ||
		    strlen(st.task_id) > SUP_TASK_ID_MAX || strlen(st.error) >= SUP_ERROR_MAX ||
		    st.pid < 0 || st.supervisor_pid < 0 || st.exit_code > 255 || st.signal > 64)
			abort();
		for (const char *c = st.error; *c; c++)
			if ((unsigned char)*c < 0x20)
				abort();
	}
	return 0;
}
