/* proto_util.h -- for the protocol tests: a message body encoded as a frame and parsed back, as a peer would receive it. */
#ifndef AICN_TEST_PROTO_UTIL_H
#define AICN_TEST_PROTO_UTIL_H

#include <aicn/canon.h>
#include <aicn/frame.h>
#include <aicn/proto.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PROTO_TEST_ID 42 /* the id every round-tripped message carries */

/*
 * BODY (a JSON object without v, id and type) as a message of TYPE: encoded into a
 * frame with id PROTO_TEST_ID, then parsed from the frame's payload into *ret (err
 * says why when it is refused).  Returns what proto_parse returns.
 */
static inline int proto_roundtrip(int type, const char *body, struct proto_msg *ret, char *err)
{
	cJSON *o = NULL;
	uint8_t *buf = NULL;
	size_t len;
	int r;

	r = canon_parse(body, strlen(body), 16, &o, NULL);
	if (r < 0)
		return r;
	cJSON_AddStringToObject(o, "type", proto_type_name(type));
	r = proto_encode(o, 1, PROTO_TEST_ID, &buf, &len);
	cJSON_Delete(o);
	if (r < 0)
		return r;
	r = proto_parse((char *)buf + FRAME_HDR_LEN, len - FRAME_HDR_LEN, ret, err);
	free(buf);
	return r;
}

#endif /* AICN_TEST_PROTO_UTIL_H */
