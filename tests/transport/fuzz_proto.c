/* fuzz_proto.c -- libFuzzer: every message type's parser (the first byte picks the schema) and proto_parse. */
#include <aicn/canon.h>
#include <aicn/proto.h>

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proto_msg m = {0};
	char err[PROTO_ERR_LEN];
	cJSON *tree = NULL;
	int type;

	if (size < 1)
		return 0;
	type = 1 + data[0] % (PROTO_BUILTIN_COUNT - 1);
	data++;
	size--;
	if (canon_parse((const char *)data, size, PROTO_MAX_DEPTH, &tree, NULL) == 0) {
		(void)proto_validate(type, tree, err);
		cJSON_Delete(tree);
	}
	if (proto_parse((const char *)data, size, &m, err) >= 0 || m.root) {
		uint8_t *out = NULL;
		size_t len;

		/* what parses re-encodes canonically */
		if (m.root && proto_encode(m.root, m.v, m.id, &out, &len) == 0)
			free(out);
		proto_msg_done(&m);
	}
	return 0;
}
