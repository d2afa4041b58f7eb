/* fuzz_meterlog.c -- libFuzzer target: the meter log reader/verifier and the proof checker on arbitrary bytes. */
#include <aicn/meterlog.h>

#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The public key of the seed logs in tests/fuzz/corpus/fuzz_meterlog (a throwaway test key). */
static const uint8_t seed_pub[KEY_PUB_LEN] = {
	0xb3, 0xb7, 0x8e, 0x4e, 0x33, 0x16, 0x7b, 0x78, 0x46, 0xe8, 0x9b,
	0x2c, 0x4c, 0xae, 0xc1, 0xc7, 0xd6, 0x4e, 0xaf, 0x8b, 0xde, 0x1b,
	0x02, 0xa5, 0x9c, 0x93, 0x19, 0x51, 0x9d, 0xe0, 0xcd, 0x94,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static EVP_PKEY *pub;
	struct meterlog_verify_result res;
	struct meterlog_verify_opts o = {.threads = 1};
	char *summary = NULL;
	const char *why = NULL;
	int r;

	if (!pub && key_from_raw_public(seed_pub, &pub) < 0)
		abort();
	o.pub = pub;
	/* one mode per input (signature checks dominate the cost of a run) */
	{
		int mode = (int)(size % 3);

		o.checkpoints_only = mode == 1;
		o.strict = mode == 2;
		r = meterlog_verify((const char *)data, size, &o, &res);
		if (r == 0 && (res.fail != ML_OK || res.records == 0 || res.sealed != res.records))
			abort(); /* PASS means everything sealed and nothing failed */
		if (r == -EBADMSG && (res.fail == ML_OK || !res.reason[0]))
			abort(); /* a failure always names itself */
		if (r < 0 && r != -EBADMSG && r != -ENOMEM)
			abort();
	}
	r = meterlog_check_proof((const char *)data, size, pub, &summary, &why);
	if (r == 0)
		free(summary);
	return 0;
}
