/* fuzz_cache_index.c -- libFuzzer target: a damaged image-cache index is refused, never misread or crashed on. */
#include "../../agent/cache.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t used = 0;
	size_t n = 0;

	if (cache_index_check((const char *)data, size, &n, &used) == 0 && n > CACHE_MAX_ENTRIES)
		abort();
	return 0;
}
