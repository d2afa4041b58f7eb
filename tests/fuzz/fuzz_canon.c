/* fuzz_canon.c -- libFuzzer target: the strict canonical-JSON parser and printer on arbitrary bytes. */
#include <aicn/canon.h>

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cJSON *v = NULL, *again = NULL;
	char *out = NULL, *out2 = NULL;
	size_t n, n2;

	if (canon_parse((const char *)data, size, CANON_MAX_DEPTH_DEFAULT, &v, NULL) < 0)
		return 0;
	/* whatever parses must print, re-parse, and print to the same bytes */
	if (canon_print(v, &out, &n) < 0)
		abort();
	if (canon_parse(out, n, CANON_MAX_DEPTH_DEFAULT, &again, NULL) < 0)
		abort();
	if (canon_print(again, &out2, &n2) < 0 || n != n2 || memcmp(out, out2, n) != 0)
		abort();
	if (canon_is_canonical(out, n) != 1)
		abort();
	free(out);
	free(out2);
	cJSON_Delete(v);
	cJSON_Delete(again);
	return 0;
}
