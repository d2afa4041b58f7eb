/* fuzz_econ_params.c -- the genesis parameters file parser on arbitrary bytes: never crashes, and what it accepts is a valid parameter set. */
#include "../../coordinator/econ.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct econ_params p;
	const char *why = NULL;
	char err[160];

	if (econ_params_parse((const char *)data, size, &p, err, sizeof(err)) == 0 &&
	    econ_params_validate(&p, &why) != 0)
		abort();
	return 0;
}
