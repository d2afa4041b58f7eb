/* ledger_util.h -- helpers shared by the ledger tests: a fresh database in a temp dir, fake record hashes, conservation check. */
#ifndef AICN_TEST_LEDGER_UTIL_H
#define AICN_TEST_LEDGER_UTIL_H

#include "../../coordinator/gov.h"
#include "../../coordinator/ledger.h"
#include "../../coordinator/settle.h"

#include <aicn/hash.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char tu_dir[256];

/* A temp dir for this test process (removed by tu_cleanup). */
static inline const char *tu_tmpdir(void)
{
	if (!tu_dir[0]) {
		const char *t = getenv("TMPDIR");

		snprintf(tu_dir, sizeof(tu_dir), "%s/aicn-ledger-XXXXXX", t ? t : "/tmp");
		if (!mkdtemp(tu_dir))
			abort();
	}
	return tu_dir;
}

static inline void tu_cleanup(void)
{
	char cmd[300];

	if (tu_dir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tu_dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", tu_dir);
	}
}

static inline sqlite3 *tu_open(const char *name)
{
	char path[512];
	sqlite3 *db = NULL;

	snprintf(path, sizeof(path), "%s/%s", tu_tmpdir(), name);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
	    SQLITE_OK)
		abort();
	sqlite3_busy_timeout(db, 5000);
	sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
	if (ledger_migrate(db) < 0)
		abort();
	return db;
}

static inline void tu_hash(const char *s, uint64_t n, uint8_t out[32])
{
	char buf[256];

	snprintf(buf, sizeof(buf), "%s/%llu", s, (unsigned long long)n);
	sha256(buf, strlen(buf), out);
}

/* Sum of every balance but mint, and the amount minted, straight from the table. */
static inline int tu_sums(sqlite3 *db, long long *ret_total, long long *ret_minted)
{
	sqlite3_stmt *st;
	int ok = 0;

	if (sqlite3_prepare_v2(
		    db,
		    "SELECT coalesce(sum(CASE WHEN account != 'mint' THEN balance END), 0), "
		    "coalesce(-sum(CASE WHEN account = 'mint' THEN balance END), 0), "
		    "coalesce(min(CASE WHEN account != 'mint' THEN balance END), 0) "
		    "FROM ledger_balances",
		    -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW) {
		*ret_total = sqlite3_column_int64(st, 0);
		*ret_minted = sqlite3_column_int64(st, 1);
		ok = sqlite3_column_int64(st, 2) >= 0 ? 0 : -2;
	} else {
		ok = -1;
	}
	sqlite3_finalize(st);
	return ok;
}

#endif /* AICN_TEST_LEDGER_UTIL_H */
