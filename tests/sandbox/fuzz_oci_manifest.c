/* fuzz_oci_manifest.c -- libFuzzer target: the OCI image manifest parser (outside bytes from renters' images). */
#include "../../sandbox/internal.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct oci_manifest *x = NULL;
	struct sbx_err err;

	if (oci_manifest_parse((const char *)data, size, &x, &err) == 0)
		oci_manifest_free(x);
	return 0;
}
