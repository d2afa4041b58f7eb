/* fuzz_oci_config.c -- libFuzzer target: the OCI image config parser (outside bytes from renters' images). */
#include "../../sandbox/internal.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct oci_config *x = NULL;
	struct sbx_err err;

	if (oci_config_parse((const char *)data, size, &x, &err) == 0)
		oci_config_free(x);
	return 0;
}
