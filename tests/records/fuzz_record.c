/* fuzz_record.c -- libFuzzer target: the usage record parser on arbitrary bytes; accepted lines must print back byte for byte. */
#include <aicn/record.h>

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct usage_record r;
	const char *why = NULL;
	char buf[RECORD_LINE_MAX];

	if (record_parse((const char *)data, size, &r, &why) == 0) {
		char *line = NULL;
		size_t len;

		/* what we accept is exactly what we would write */
		if (record_format(&r, &line, &len) < 0 || len != size ||
		    memcmp(line, data, size) != 0)
			abort();
		free(line);
		if (record_unsigned_from_line((const char *)data, size, buf) >= size)
			abort(); /* a parsed record always has a "sig" member to remove */
	} else if (!why) {
		abort(); /* every refusal says why */
	}
	if (size <= sizeof(buf))
		(void)record_unsigned_from_line((const char *)data, size, buf);
	return 0;
}
