/* fuzz_ledger.c -- libFuzzer target: ledger replay and audit of an arbitrary entry body (an auditor reads untrusted copies). */
#include "../../coordinator/ledger.h"
#include "../../coordinator/settle.h"

#include <aicn/canon.h>
#include <aicn/hash.h>

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static sqlite3 *db;
static sqlite3_stmt *ins;

static void setup(void)
{
	if (sqlite3_open(":memory:", &db) != SQLITE_OK || ledger_migrate(db) < 0 ||
	    sqlite3_prepare_v2(db,
			       "INSERT INTO ledger_entries(seq, hash, kind, cause, body) "
			       "VALUES(1, ?1, ?2, ?3, ?4)",
			       -1, &ins, NULL) != SQLITE_OK)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ledger_report rep;
	struct settle_audit *au = NULL;
	cJSON *v = NULL;
	const char *kind = "mint", *cause = "x";
	uint8_t h[32];

	if (!db)
		setup();
	if (size > 65536)
		return 0;
	sqlite3_exec(db, "DELETE FROM ledger_entries; DELETE FROM ledger_balances", NULL, NULL,
		     NULL);
	/* index columns as the body says, so replay gets past them to the postings */
	if (canon_parse((const char *)data, size, 8, &v, NULL) == 0) {
		canon_get_str(v, "kind", &kind);
		canon_get_str(v, "cause", &cause);
	}
	sha256(data, size, h);
	sqlite3_reset(ins);
	sqlite3_bind_blob(ins, 1, h, 32, SQLITE_TRANSIENT);
	sqlite3_bind_text(ins, 2, kind, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(ins, 3, cause, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(ins, 4, (const char *)data, (int)size, SQLITE_TRANSIENT);
	sqlite3_step(ins);
	cJSON_Delete(v);
	if (settle_audit_new(&au) < 0)
		abort();
	ledger_verify(db, settle_audit_visit, au, &rep);
	if (strlen(rep.reason) >= sizeof(rep.reason))
		abort();
	settle_audit_free(au);
	return 0;
}
