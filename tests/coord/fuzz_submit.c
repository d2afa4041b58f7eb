/* fuzz_submit.c -- libFuzzer target: SUBMIT and REGISTER bodies through the coordinator's validation. */
#include "../../coordinator/blobs.h"
#include "../../coordinator/task.h"

#include <aicn/canon.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOW 1704110400LL

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct coord *c;
static int64_t renter;
static unsigned runs;

static char dir[] = "/tmp/aicn-fuzz-submit-XXXXXX";

static void cleanup(void)
{
	char cmd[96];

	c = coord_free(c);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
}

static void setup(void)
{
	char db[128], blobs[128], digest[80], node[65], err[256];
	struct coord_params p;
	cJSON *reg;
	int64_t id;

	if (!mkdtemp(dir))
		abort();
	snprintf(db, sizeof(db), "%s/coord.db", dir);
	snprintf(blobs, sizeof(blobs), "%s/blobs", dir);
	coord_params_default(&p);
	if (coord_open(db, blobs, &p, NOW, &c) < 0 ||
	    store_account_ensure(coord_store(c), "renter", "renter", &renter) < 0 ||
	    blobs_put(coord_blobs(c), "img", 3, renter, BLOB_INPUT, NOW, 86400, digest) < 0)
		abort();
	memset(node, 'a', 64);
	node[64] = '\0';
	reg = cJSON_Parse("{\"cores\": 8, \"memory\": 1073741824, \"price\": 10}");
	if (!reg || coord_node_register(c, renter, node, reg, NOW, &id, NULL, err, sizeof(err)) < 0)
		abort();
	cJSON_Delete(reg);
	if (coord_flush(c) < 0)
		abort();
	atexit(cleanup);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct coord_actions a = {0};
	cJSON *req = NULL, *reply = NULL;
	char err[256];
	int64_t id = 0;

	if (!c)
		setup();
	/* A leading 'R' fuzzes node registration, anything else SUBMIT. */
	if (size && data[0] == 'R') {
		char node[65];

		if (canon_parse((const char *)data + 1, size - 1, 8, &req, NULL) < 0)
			return 0;
		memset(node, 'b', 64);
		node[64] = '\0';
		if (coord_node_register(c, renter, node, req, NOW, &id, &a, err, sizeof(err)) < 0 &&
		    !err[0])
			abort(); /* refusals always say why */
	} else {
		if (canon_parse((const char *)data, size, 8, &req, NULL) < 0)
			return 0;
		err[0] = '\0';
		if (coord_submit(c, renter, req, NOW, &reply, err, sizeof(err)) == 0) {
			if (canon_get_i64(reply, "task_id", &id) < 0)
				abort();
			coord_cancel(c, renter, id, NOW, &a, err, sizeof(err));
		} else if (!err[0]) {
			abort();
		}
	}
	if (++runs % 512 == 0 && coord_flush(c) < 0)
		abort();
	cJSON_Delete(reply);
	cJSON_Delete(req);
	coord_actions_clear(&a);
	return 0;
}
