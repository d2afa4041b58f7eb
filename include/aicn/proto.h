/* proto.h -- the message catalogue: types, per-type field schemas, role permissions, versions. */
#ifndef AICN_PROTO_H
#define AICN_PROTO_H

#include <aicn/tls.h>

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Every message is one canonical JSON object {"v", "type", "id", ...fields}
 * (docs/protocol.md).  "v" is the version agreed in HELLO, "id" a per-sender
 * request number that ACK and ERROR refer to as "ref".  Fields not in a type's
 * schema are ignored (so newer peers may add optional fields within a version);
 * the fields of the schema are checked for type and range before any handler
 * sees the message.
 */

#define PROTO_VERSION_MIN 1
#define PROTO_VERSION_MAX 1
#define PROTO_MAX_DEPTH 8	      /* JSON nesting accepted on the wire */
#define PROTO_MAX_TYPES 64	      /* built-in + proto_define()d */
#define PROTO_BLOB_CHUNK (256 * 1024) /* largest BLOB_PUT chunk, before base64 */

enum proto_type {
	PROTO_UNKNOWN = 0,
	PROTO_HELLO,
	PROTO_REGISTER,
	PROTO_HEARTBEAT,
	PROTO_TASK_OFFER,
	PROTO_TASK_ACCEPT,
	PROTO_TASK_REJECT,
	PROTO_BLOB_GET,
	PROTO_BLOB_PUT,
	PROTO_TASK_STATUS,
	PROTO_USAGE_RECORD,
	PROTO_TASK_RESULT,
	PROTO_ACK,
	PROTO_ERROR,
	PROTO_BUILTIN_COUNT,
};

enum proto_kind {
	PK_INT,	     /* integer within [min, max] */
	PK_STR,	     /* string, length in [min, max] bytes */
	PK_BOOL,     /* true / false */
	PK_DIGEST,   /* "sha256:<64 hex>" */
	PK_ENUM,     /* string among values[] */
	PK_OBJ,	     /* object; checked against sub[] when given */
	PK_ARR_STR,  /* array of [min, max] strings, each at most 256 bytes */
	PK_ARR_OBJ,  /* array of [min, max] objects, each checked against sub[] */
	PK_ARR_TEXT, /* array of [min, max] strings, each at most 8192 bytes (commands, env) */
};

struct proto_field {
	const char *name;
	enum proto_kind kind;
	int required;
	int64_t min, max;
	const struct proto_field *sub; /* PK_OBJ / PK_ARR_OBJ: NULL-name terminated */
	const char *const *values;     /* PK_ENUM: NULL terminated */
};

struct proto_def {
	const char *name;		  /* wire name, e.g. "HEARTBEAT" */
	unsigned from_roles;		  /* roles allowed to send it (mask of enum aicn_role) */
	const struct proto_field *fields; /* NULL-name terminated */
};

/* A parsed, validated message; root is owned. */
struct proto_msg {
	int type;   /* enum proto_type or a proto_define()d id */
	int64_t id; /* sender's request id */
	int64_t v;  /* protocol version */
	cJSON *root;
};

/*
 * Add a message type (the coordinator's renter and auditor messages, for
 * example) before any connection starts; returns its type id.  The def and
 * its tables must stay valid.  -EEXIST for a taken name, -ENOSPC when full.
 */
int proto_define(const struct proto_def *def);
const struct proto_def *proto_def_of(int type);
/* Type id from a wire name; PROTO_UNKNOWN when none. */
int proto_type_from_name(const char *name);
const char *proto_type_name(int type);
/* 0 when role may send type, -EPERM when not. */
int proto_allowed(int type, enum aicn_role role);

/*
 * Parse and validate one frame's payload.  -EINVAL with *ret_err (static text
 * or a field name in errbuf) for bad JSON or fields; -ENOENT for a well-formed
 * message of an unknown type (ret_msg->type = PROTO_UNKNOWN, id filled, so an
 * ERROR can refer to it).  ret_msg is filled on 0 and on -ENOENT.
 */
#define PROTO_ERR_LEN 160
int proto_parse(const char *buf, size_t len, struct proto_msg *ret_msg, char *errbuf);
/* Check a tree against a type's schema (for messages built locally, and tests). */
int proto_validate(int type, const cJSON *root, char *errbuf);
void proto_msg_done(struct proto_msg *m);

/* A new message object {"type": NAME}; fields are added by the caller. */
cJSON *proto_new(int type);
/*
 * Canonical JSON of msg with "v" and "id" set (replacing any), prefixed with
 * the 4-byte frame header; *ret is malloc'd.
 */
int proto_encode(cJSON *msg, int64_t v, int64_t id, uint8_t **ret, size_t *ret_len);

/* Choose the version for a peer offering [min_v, max_v]; -EPROTONOSUPPORT when none. */
int proto_negotiate(int64_t min_v, int64_t max_v, int64_t *ret_v);

#endif /* AICN_PROTO_H */
