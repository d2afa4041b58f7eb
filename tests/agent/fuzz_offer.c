/* fuzz_offer.c -- libFuzzer target: a TASK_OFFER from a hostile coordinator is validated or refused with a reason, never trusted. */
#include "../../agent/offer.h"

#include <aicn/canon.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char why[OFFER_REASON_MAX] = "";
	struct offer *o = NULL;
	cJSON *root = NULL;
	int r;

	if (canon_parse((const char *)data, size, 8, &root, NULL) < 0)
		return 0;
	r = offer_parse(root, why, sizeof(why), &o);
	if (r == 0) {
		/* what the agent then uses as names, paths and sizes must hold its promises */
		if (!o->task_id[0] || strchr(o->task_id, '/') || o->task_id[0] == '.' || !o->cmd ||
		    !o->cmd[0] || o->cmd[o->n_cmd] || o->env[o->n_env] || !o->cores ||
		    o->n_inputs > OFFER_INPUTS_MAX || o->inputs_bytes > OFFER_INPUTS_BYTES_MAX ||
		    o->pow_bits > OFFER_POW_BITS_MAX)
			abort();
		for (size_t i = 0; i < o->n_inputs; i++)
			if (!offer_path_ok(o->inputs[i].path) || o->inputs[i].path[0] == '/')
				abort();
		offer_free(o);
	} else if (r == -EINVAL && !why[0]) {
		abort(); /* every refusal has a reason for TASK_REJECT */
	}
	cJSON_Delete(root);
	return 0;
}
