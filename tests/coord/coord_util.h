/* coord_util.h -- helpers shared by the coordinator-core tests: temp dirs, nodes, images, submissions. */
#ifndef AICN_TEST_COORD_UTIL_H
#define AICN_TEST_COORD_UTIL_H

#include "../../coordinator/blobs.h"
#include "../../coordinator/task.h"

#include <aicn/canon.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 2024-01-01 (a Monday) 12:00 UTC. */
#define T0 1704110400LL

struct tdir {
	char dir[64];
	char db[128];
	char blobs[128];
};

static inline void tdir_make(struct tdir *d)
{
	snprintf(d->dir, sizeof(d->dir), "/tmp/aicn-coord-XXXXXX");
	if (!mkdtemp(d->dir))
		abort();
	snprintf(d->db, sizeof(d->db), "%s/coord.db", d->dir);
	snprintf(d->blobs, sizeof(d->blobs), "%s/blobs", d->dir);
}

static inline void tdir_remove(const struct tdir *d)
{
	char cmd[160];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup of %s failed\n", d->dir);
}

static inline cJSON *json(const char *text)
{
	cJSON *v = NULL;

	if (canon_parse(text, strlen(text), CANON_MAX_DEPTH_DEFAULT, &v, NULL) < 0)
		return NULL;
	return v;
}

/* Node id "aaaa...a" style: 64 copies of c (a hex digit). */
static inline const char *node_hex(char c)
{
	static char buf[8][65];
	static unsigned k;
	char *b = buf[k++ % 8];

	memset(b, c, 64);
	b[64] = '\0';
	return b;
}

/* Register a node with CORES and extra JSON members (", \"price\": 5" style, may be ""). */
static inline int64_t reg_node(struct coord *c, char hex, unsigned cores, const char *extra,
			       int64_t now, struct coord_actions *a)
{
	char body[8192], err[256];
	cJSON *req;
	int64_t id = 0, acc = 0;
	int r;

	snprintf(body, sizeof(body), "{\"cores\": %u, \"memory\": 68719476736, \"price\": 10%s}",
		 cores, extra ? extra : "");
	req = json(body);
	if (!req)
		return -1;
	if (store_account_ensure(coord_store(c), node_hex(hex), "agent", &acc) < 0)
		return -1;
	r = coord_node_register(c, acc, node_hex(hex), req, now, &id, a, err, sizeof(err));
	cJSON_Delete(req);
	if (r < 0) {
		fprintf(stderr, "register: %s\n", err);
		return -1;
	}
	return id;
}

/* Store a small image blob; its digest goes to digest. */
static inline int put_image(struct coord *c, int64_t owner, int64_t now, char digest[80])
{
	static const char img[] = "not really an OCI image, but content-addressed bytes";

	return blobs_put(coord_blobs(c), img, sizeof(img), owner, BLOB_INPUT, now, 3600, digest);
}

/* SUBMIT from TEXT; returns the task id, or the negative error (err filled). */
static inline int64_t submit(struct coord *c, int64_t account, const char *text, int64_t now,
			     char *err, size_t errlen)
{
	cJSON *req = json(text), *reply = NULL;
	int64_t id = 0;
	int r;

	if (!req) {
		snprintf(err, errlen, "test: bad JSON");
		return -1000;
	}
	r = coord_submit(c, account, req, now, &reply, err, errlen);
	cJSON_Delete(req);
	if (r < 0)
		return r;
	canon_get_i64(reply, "task_id", &id);
	cJSON_Delete(reply);
	return id;
}

#endif /* AICN_TEST_COORD_UTIL_H */
