/* fuzz_oci_index.c -- libFuzzer target: the OCI image index parser (outside bytes from renters' images). */
#include "../../sandbox/internal.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct oci_index *x = NULL;
	struct sbx_err err;

	if (oci_index_parse((const char *)data, size, &x, &err) == 0)
		oci_index_free(x);
	return 0;
}
