/* proto_util.h -- for the protocol tests and test peers: a message round-tripped through a frame; a REGISTER. */
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

/* What a test agent says about itself in REGISTER (the fields proto.c requires). */
struct proto_test_register {
	int64_t cores, mem_mb, cores_offered, ask_price;
	const char *location;
	int64_t renewable_pm, perf_score;
	const char *agent_version;
};

/* A REGISTER message with those fields, or NULL when out of memory. */
static inline cJSON *proto_test_register_new(const struct proto_test_register *f)
{
	cJSON *m = proto_new(PROTO_REGISTER);

	if (!m || canon_add_i64(m, "cores", f->cores) < 0 ||
	    canon_add_i64(m, "mem_mb", f->mem_mb) < 0 ||
	    canon_add_i64(m, "cores_offered", f->cores_offered) < 0 ||
	    canon_add_i64(m, "ask_price", f->ask_price) < 0 ||
	    !cJSON_AddStringToObject(m, "location", f->location) ||
	    canon_add_i64(m, "renewable_pm", f->renewable_pm) < 0 ||
	    canon_add_i64(m, "perf_score", f->perf_score) < 0 ||
	    !cJSON_AddStringToObject(m, "agent_version", f->agent_version)) {
		cJSON_Delete(m);
		return NULL;
	}
	return m;
}

#endif /* AICN_TEST_PROTO_UTIL_H */
