/* cmd_ledger.c -- `aicnctl ledger`: verify the coordinator's AICN ledger offline, show entries and balances. */
#include "../coordinator/ledger.h"
#include "../coordinator/settle.h"

#include <aicn/checkpoint.h>
#include <aicn/compiler.h>
#include <aicn/hash.h>
#include <aicn/key.h>
#include <aicn/merkle.h>

#include "cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <openssl/evp.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

int cmd_ledger(int argc, char **argv);

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: aicnctl ledger verify [--json] [--no-audit] [--allow-unsigned]\n"
		"                             [--checkpoint NOTE --key PUB [--origin ORIGIN]] DB\n"
		"       aicnctl ledger sign --key KEY --origin ORIGIN DB\n"
		"       aicnctl ledger show [--from SEQ] [--count N] DB\n"
		"       aicnctl ledger balance DB ACCOUNT...\n"
		"       aicnctl ledger task DB TASK\n"
		"\n"
		"Check and read the coordinator's AICN ledger offline, from a copy of its SQLite\n"
		"state file DB (opened read-only; nothing is written).\n"
		"\n"
		"verify   Replay every entry: each body hashes to its recorded hash and names its\n"
		"         predecessor's (the hash chain), postings sum to zero, no account but\n"
		"         'mint' is ever negative, every cause and every usage record (by hash and\n"
		"         by node and sequence) is paid at most once, and the stored balances are\n"
		"         exactly what the replay gives; the sum of all balances equals what was\n"
		"         minted.  Unless --no-audit, also recompute every charge (cpu x price),\n"
		"         fee split, epoch reward (T x P m / sum P m) and staking payout under the\n"
		"         parameters in force at that entry, and that every charge carries the\n"
		"         agent-signed usage record it pays for, whose signature verifies.\n"
		"         Prints the entry count, the head hash and the RFC 6962 Merkle root\n"
		"         over the entry bodies.\n"
		"         With --checkpoint, also check the coordinator's signed checkpoint NOTE\n"
		"         (a C2SP signed note, as the meter log's) with the public key PUB, and\n"
		"         that the ledger's first SIZE entries have exactly its root: the copy\n"
		"         is the ledger the coordinator committed to.\n"
		"sign     Print a signed checkpoint of DB's ledger (size and RFC 6962 root),\n"
		"         signed with the coordinator's private KEY under ORIGIN (which starts\n"
		"         with aicn/ledger/).\n"
		"show     Print entries as canonical JSON lines (the hashed bytes).\n"
		"balance  Print the balance of each ACCOUNT in base units (1 AICN = 10^9).\n"
		"task     A renter's trail for TASK: the escrow, every settled usage record\n"
		"         (record hash, node, sequence, CPU-ns, charge) and the refund, each\n"
		"         with an RFC 6962 inclusion proof checked against the ledger's root.\n"
		"         The record hash names the agent-signed record in the node's meter log.\n"
		"\n"
		"Options:\n"
		"  --json         verify: one JSON object instead of text\n"
		"  --no-audit     verify: bookkeeping checks only\n"
		"  --allow-unsigned  verify: accept charges that carry no agent-signed usage\n"
		"                 record (ledgers written before records were kept).  By default\n"
		"                 every charge must carry one, hashing to the charged record hash,\n"
		"                 signed by the node key whose SHA-256 is the node id, naming the\n"
		"                 task, sequence and at least the CPU charged; records present\n"
		"                 are always checked.  (--signed-records, the old opt-in, is\n"
		"                 accepted and changes nothing.)\n"
		"  --checkpoint NOTE  verify: a signed checkpoint file to check the ledger against\n"
		"  --key FILE     verify: the coordinator's public key (PEM); sign: its private key\n"
		"  --origin NAME  the checkpoint's origin (verify: required match if given)\n"
		"  --from SEQ     show: first entry (default 1)\n"
		"  --count N      show: at most N entries (default all)\n"
		"  -h, --help     this text\n"
		"\n"
		"Exit status: 0 sound, 1 unsound or unreadable, 2 usage error.\n");
}

static void sqlite_closep(sqlite3 **db)
{
	if (*db)
		sqlite3_close(*db);
}

static int open_ro(const char *path, sqlite3 **ret)
{
	sqlite3 *db = NULL;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		fprintf(stderr, "aicnctl ledger: cannot open %s: %s\n", path,
			db ? sqlite3_errmsg(db) : "out of memory");
		sqlite3_close(db);
		return -EIO;
	}
	sqlite3_busy_timeout(db, 10000);
	*ret = db;
	return 0;
}

static int load_checkpoint(const char *note_path, const char *key_path, const char *origin,
			   struct checkpoint *ret);

static int do_verify(int argc, char **argv)
{
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'j'},
		{"no-audit", no_argument, NULL, 'n'},
		{"signed-records", no_argument, NULL, 's'},
		{"allow-unsigned", no_argument, NULL, 'u'},
		{"checkpoint", required_argument, NULL, 'c'},
		{"key", required_argument, NULL, 'k'},
		{"origin", required_argument, NULL, 'o'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	_cleanup_(sqlite_closep) sqlite3 *db = NULL;
	const char *note_path = NULL, *key_path = NULL, *origin = NULL;
	struct checkpoint cp = {0};
	bool cp_ok = false;
	struct settle_audit *audit = NULL;
	struct merkle_tree *tree = NULL;
	struct ledger_report rep;
	char head[SHA256_HEX_LEN + 1], root[SHA256_HEX_LEN + 1];
	bool json = false, do_audit = true, require = true;
	uint64_t checked = 0, settled = 0, signed_ok = 0;
	int c, r;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = true;
			break;
		case 'n':
			do_audit = false;
			break;
		case 's':
			require = true;
			break;
		case 'u':
			require = false;
			break;
		case 'c':
			note_path = optarg;
			break;
		case 'k':
			key_path = optarg;
			break;
		case 'o':
			origin = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind + 1 != argc || !note_path != !key_path) {
		usage(stderr);
		return 2;
	}
	if (note_path) {
		r = load_checkpoint(note_path, key_path, origin, &cp);
		if (r < 0)
			return r == -EINVAL ? 2 : 1;
	}
	if (open_ro(argv[optind], &db) < 0)
		return 1;
	if (merkle_new(&tree) < 0 || (do_audit && settle_audit_new(&audit) < 0)) {
		merkle_free(tree);
		fprintf(stderr, "aicnctl ledger: out of memory\n");
		return 1;
	}
	if (audit)
		settle_audit_require_records(audit, require);
	r = ledger_verify_tree(db, do_audit ? settle_audit_visit : NULL, audit, tree, &rep);
	if (audit) {
		checked = settle_audit_checked(audit);
		settle_audit_records(audit, &settled, &signed_ok);
	}
	settle_audit_free(audit);
	if (r == 0 && note_path) {
		uint8_t at[MERKLE_HASH_LEN];

		if (cp.size > rep.entries) {
			r = -EBADMSG;
			snprintf(rep.reason, sizeof(rep.reason),
				 "checkpoint covers %" PRIu64 " entries, the copy has %" PRIu64,
				 cp.size, rep.entries);
		} else if (merkle_root(tree, cp.size, at) < 0 ||
			   memcmp(at, cp.root, sizeof(at)) != 0) {
			r = -EBADMSG;
			snprintf(rep.reason, sizeof(rep.reason),
				 "the first %" PRIu64 " entries do not have the checkpoint's root",
				 cp.size);
		} else {
			cp_ok = true;
		}
		rep.bad_seq = 0;
	}
	merkle_free(tree);
	hex_encode(rep.head, SHA256_LEN, head);
	hex_encode(rep.root, SHA256_LEN, root);
	if (r < 0 && r != -EBADMSG) {
		fprintf(stderr, "aicnctl ledger: reading %s: %s\n", argv[optind], strerror(-r));
		return 1;
	}
	if (json) {
		printf("{\"sound\":%s,\"entries\":%" PRIu64 ",\"accounts\":%" PRIu64
		       ",\"usage_records\":%" PRIu64 ",\"minted\":%" PRId64 ",\"total\":%" PRId64
		       ",\"audited\":%" PRIu64 ",\"signed_records\":%" PRIu64
		       ",\"head\":\"%s\",\"root\":\"%s\"",
		       r == 0 ? "true" : "false", rep.entries, rep.accounts, rep.usage_records,
		       rep.minted, rep.total, checked, signed_ok, head, root);
		if (cp_ok)
			printf(",\"checkpoint\":{\"origin\":\"%s\",\"size\":%" PRIu64 "}",
			       cp.origin, cp.size);
		if (r < 0) {
			printf(",\"bad_seq\":%" PRIu64 ",\"reason\":\"", rep.bad_seq);
			for (const char *p = rep.reason; *p; p++)
				if (*p == '"' || *p == '\\')
					printf("\\%c", *p);
				else if ((unsigned char)*p >= 0x20)
					putchar(*p);
			putchar('"');
		}
		printf("}\n");
		return r == 0 ? 0 : 1;
	}
	if (r < 0) {
		if (rep.bad_seq)
			printf("UNSOUND at entry %" PRIu64 ": %s\n", rep.bad_seq, rep.reason);
		else
			printf("UNSOUND: %s\n", rep.reason);
		return 1;
	}
	printf("ledger sound: %" PRIu64 " entries, %" PRIu64 " accounts, %" PRIu64
	       " usage records paid once each\n",
	       rep.entries, rep.accounts, rep.usage_records);
	printf("minted %" PRId64 " = sum of balances %" PRId64 " (base units)\n", rep.minted,
	       rep.total);
	if (do_audit) {
		printf("recomputed %" PRIu64 " charges, rewards, payouts and parameter changes\n",
		       checked);
		printf("%" PRIu64 " of %" PRIu64
		       " charges carry an agent-signed usage record whose signature verifies\n",
		       signed_ok, settled);
	}
	printf("head %s\nroot %s (RFC 6962, %" PRIu64 " leaves)\n", head, root, rep.entries);
	if (cp_ok)
		printf("checkpoint of %s signed by the key, size %" PRIu64 ": root matches\n",
		       cp.origin, cp.size);
	return 0;
}

/* Read and check a signed checkpoint file; prints why on failure. */
static int load_checkpoint(const char *note_path, const char *key_path, const char *origin,
			   struct checkpoint *ret)
{
	char buf[NOTE_MAX + 1];
	const char *err = NULL;
	EVP_PKEY *pub = NULL;
	FILE *f;
	size_t n;
	int r;

	f = fopen(note_path, "re");
	if (!f) {
		fprintf(stderr, "aicnctl ledger: cannot open %s: %s\n", note_path, strerror(errno));
		return -EIO;
	}
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	if (n > NOTE_MAX) {
		fprintf(stderr, "aicnctl ledger: %s: larger than a checkpoint can be\n", note_path);
		return -EIO;
	}
	r = key_load_public(key_path, &pub);
	if (r < 0) {
		fprintf(stderr, "aicnctl ledger: cannot load public key %s: %s\n", key_path,
			strerror(-r));
		return -EIO;
	}
	r = checkpoint_verify(buf, n, pub, origin, ret, &err);
	EVP_PKEY_free(pub);
	if (r < 0) {
		printf("UNSOUND: checkpoint %s: %s\n", note_path, err ? err : strerror(-r));
		return -EBADMSG;
	}
	if (strncmp(ret->origin, LEDGER_ORIGIN_PREFIX, strlen(LEDGER_ORIGIN_PREFIX)) != 0) {
		printf("UNSOUND: checkpoint %s is for %s, not a ledger\n", note_path, ret->origin);
		return -EBADMSG;
	}
	return 0;
}

static int do_sign(int argc, char **argv)
{
	static const struct option opts[] = {
		{"key", required_argument, NULL, 'k'},
		{"origin", required_argument, NULL, 'o'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	_cleanup_(sqlite_closep) sqlite3 *db = NULL;
	const char *key_path = NULL, *origin = NULL;
	struct ledger *l = NULL;
	EVP_PKEY *key = NULL;
	char *note = NULL;
	int c, r;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'k':
			key_path = optarg;
			break;
		case 'o':
			origin = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind + 1 != argc || !key_path || !origin) {
		usage(stderr);
		return 2;
	}
	if (strncmp(origin, LEDGER_ORIGIN_PREFIX, strlen(LEDGER_ORIGIN_PREFIX)) != 0) {
		fprintf(stderr, "aicnctl ledger: the origin must start with %s\n",
			LEDGER_ORIGIN_PREFIX);
		return 2;
	}
	r = key_load_private(key_path, &key);
	if (r < 0) {
		fprintf(stderr, "aicnctl ledger: cannot load private key %s: %s\n", key_path,
			strerror(-r));
		return 1;
	}
	if (open_ro(argv[optind], &db) < 0) {
		EVP_PKEY_free(key);
		return 1;
	}
	r = ledger_new(db, &l);
	if (r >= 0)
		r = ledger_checkpoint(l, key, origin, &note);
	ledger_free(l);
	EVP_PKEY_free(key);
	if (r < 0) {
		fprintf(stderr, "aicnctl ledger: cannot sign %s: %s\n", argv[optind], strerror(-r));
		return 1;
	}
	fputs(note, stdout);
	free(note);
	return 0;
}

static int parse_u64(const char *s, uint64_t *ret)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-')
		return -EINVAL;
	*ret = v;
	return 0;
}

static int do_show(int argc, char **argv)
{
	static const struct option opts[] = {
		{"from", required_argument, NULL, 'f'},
		{"count", required_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	_cleanup_(sqlite_closep) sqlite3 *db = NULL;
	uint64_t from = 1, count = INT64_MAX;
	sqlite3_stmt *st = NULL;
	int c, rc;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			if (parse_u64(optarg, &from) < 0 || from > INT64_MAX) {
				fprintf(stderr, "aicnctl ledger: bad --from '%s'\n", optarg);
				return 2;
			}
			break;
		case 'c':
			if (parse_u64(optarg, &count) < 0 || count > INT64_MAX) {
				fprintf(stderr, "aicnctl ledger: bad --count '%s'\n", optarg);
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind + 1 != argc) {
		usage(stderr);
		return 2;
	}
	if (open_ro(argv[optind], &db) < 0)
		return 1;
	if (sqlite3_prepare_v2(db,
			       "SELECT body FROM ledger_entries WHERE seq >= ?1 ORDER BY seq "
			       "LIMIT ?2",
			       -1, &st, NULL) != SQLITE_OK) {
		fprintf(stderr, "aicnctl ledger: %s has no ledger: %s\n", argv[optind],
			sqlite3_errmsg(db));
		return 1;
	}
	sqlite3_bind_int64(st, 1, (int64_t)from);
	sqlite3_bind_int64(st, 2, (int64_t)count);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		printf("%s\n", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		fprintf(stderr, "aicnctl ledger: reading %s: %s\n", argv[optind],
			sqlite3_errmsg(db));
		return 1;
	}
	return 0;
}

static int do_balance(int argc, char **argv)
{
	_cleanup_(sqlite_closep) sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int ret = 0;

	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		usage(stdout);
		return 0;
	}
	if (argc < 3) {
		usage(stderr);
		return 2;
	}
	if (open_ro(argv[1], &db) < 0)
		return 1;
	if (sqlite3_prepare_v2(db, "SELECT balance FROM ledger_balances WHERE account = ?1", -1,
			       &st, NULL) != SQLITE_OK) {
		fprintf(stderr, "aicnctl ledger: %s has no ledger: %s\n", argv[1],
			sqlite3_errmsg(db));
		return 1;
	}
	for (int i = 2; i < argc; i++) {
		int rc;

		if (!ledger_account_valid(argv[i])) {
			fprintf(stderr, "aicnctl ledger: '%s' is not an account name\n", argv[i]);
			ret = 2;
			continue;
		}
		sqlite3_reset(st);
		sqlite3_bind_text(st, 1, argv[i], -1, SQLITE_TRANSIENT);
		rc = sqlite3_step(st);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
			fprintf(stderr, "aicnctl ledger: %s\n", sqlite3_errmsg(db));
			ret = 1;
			break;
		}
		printf("%s %" PRId64 "\n", argv[i],
		       (int64_t)(rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0));
	}
	sqlite3_finalize(st);
	return ret;
}

/* Every entry of a task and its inclusion proof against the root of the whole ledger. */
static int do_task(int argc, char **argv)
{
	static const char sql[] =
		"SELECT seq, body FROM ledger_entries WHERE (kind IN ('escrow', 'refund') AND "
		"cause = 'task:' || ?1) OR seq IN (SELECT entry FROM ledger_usage WHERE task = ?1) "
		"ORDER BY seq";
	_cleanup_(sqlite_closep) sqlite3 *db = NULL;
	struct merkle_tree *tree = NULL;
	struct ledger_report rep;
	uint8_t root[MERKLE_HASH_LEN];
	char hex[SHA256_HEX_LEN + 1];
	sqlite3_stmt *st = NULL;
	int rc, r, n = 0, ret = 0;

	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		usage(stdout);
		return 0;
	}
	if (argc != 3) {
		usage(stderr);
		return 2;
	}
	if (!ledger_account_valid(argv[2])) {
		fprintf(stderr, "aicnctl ledger: '%s' is not a task id\n", argv[2]);
		return 2;
	}
	if (open_ro(argv[1], &db) < 0)
		return 1;
	if (merkle_new(&tree) < 0)
		return 1;
	/* the trail is only worth something if the ledger it sits in is sound */
	r = ledger_verify_tree(db, NULL, NULL, tree, &rep);
	if (r < 0) {
		printf("UNSOUND ledger: %s\n", r == -EBADMSG ? rep.reason : strerror(-r));
		merkle_free(tree);
		return 1;
	}
	memcpy(root, rep.root, sizeof(root));
	hex_encode(root, SHA256_LEN, hex);
	printf("ledger sound, %" PRIu64 " entries, root %s\n", rep.entries, hex);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		fprintf(stderr, "aicnctl ledger: %s\n", sqlite3_errmsg(db));
		merkle_free(tree);
		return 1;
	}
	sqlite3_bind_text(st, 1, argv[2], -1, SQLITE_TRANSIENT);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		uint64_t seq = (uint64_t)sqlite3_column_int64(st, 0);
		const char *body = (const char *)sqlite3_column_text(st, 1);
		size_t len = (size_t)sqlite3_column_bytes(st, 1), np = 0;
		uint8_t proof[MERKLE_MAX_PROOF][MERKLE_HASH_LEN], leaf[MERKLE_HASH_LEN];

		merkle_hash_leaf(body, len, leaf);
		if (merkle_inclusion_proof(tree, seq - 1, rep.entries, proof, &np) < 0 ||
		    merkle_verify_inclusion(leaf, seq - 1, rep.entries, proof, np, root) < 0) {
			printf("entry %" PRIu64 ": NOT INCLUDED in the tree\n", seq);
			ret = 1;
			continue;
		}
		printf("entry %" PRIu64 " (included, proof of %zu hashes): %s\n", seq, np, body);
		n++;
	}
	sqlite3_finalize(st);
	merkle_free(tree);
	if (rc != SQLITE_DONE) {
		fprintf(stderr, "aicnctl ledger: %s\n", sqlite3_errmsg(db));
		return 1;
	}
	if (!n) {
		printf("no entries for task %s\n", argv[2]);
		return 1;
	}
	return ret;
}

int cmd_ledger(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	optind = 1;
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "verify") == 0)
		return do_verify(argc - 1, argv + 1);
	if (strcmp(argv[1], "show") == 0)
		return do_show(argc - 1, argv + 1);
	if (strcmp(argv[1], "balance") == 0)
		return do_balance(argc - 1, argv + 1);
	if (strcmp(argv[1], "task") == 0)
		return do_task(argc - 1, argv + 1);
	if (strcmp(argv[1], "sign") == 0)
		return do_sign(argc - 1, argv + 1);
	fprintf(stderr, "aicnctl ledger: unknown subcommand '%s' (see 'aicnctl ledger --help')\n",
		argv[1]);
	return 2;
}
