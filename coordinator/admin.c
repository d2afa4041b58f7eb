/* admin.c -- aicn-coordinator's offline admin subcommands on the ledger: mint (the operator's faucet), ledger-export, params. */
#include "admin.h"

#include "gov.h"
#include "ledger.h"
#include "settle.h"
#include "store.h"

#include <aicn/compiler.h>
#include <aicn/hash.h>
#include <aicn/key.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <ini.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ADMIN_NAME "aicn-coordinator"
#define ADMIN_CONF_DEFAULT "/etc/aicn/coordinator.conf"

static void usage_mint(FILE *f)
{
	fprintf(f,
		"Usage: " ADMIN_NAME " mint [--db FILE | --config CONF] --account NAME\n"
		"                        --amount AICN[.FRACTION] [--cause ID]\n"
		"       " ADMIN_NAME
		" mint [--db FILE | --config CONF] [--cause ID] NAME BASE_UNITS\n"
		"\n"
		"The operator's faucet: create AMOUNT new AICN in account NAME, as one \"mint\"\n"
		"entry of the coordinator's ledger in the state file FILE (created if missing).\n"
		"Tokens exist only through the ledger; an auditor sees every mint, and the sum\n"
		"of all balances always equals what was minted.\n"
		"\n"
		"The coordinator must not be running: mint takes the store's lock and refuses\n"
		"(exit 1) while a coordinator holds it.  Minting is idempotent by cause: the\n"
		"same --cause twice mints once (exit 1 the second time).\n"
		"\n"
		"Options:\n"
		"  --db FILE        the coordinator's SQLite state file\n"
		"  --config CONF    or the one of this coordinator configuration (its state_dir;\n"
		"                   " ADMIN_CONF_DEFAULT " when neither is given)\n"
		"  --account NAME   a renter's or provider's account (its certificate CN), or\n"
		"                   'treasury' (which pays validation replicas)\n"
		"  --amount AICN    e.g. 100 or 0.5 (at most 9 decimals: 1 AICN = 10^9 base units)\n"
		"  --cause ID       request id recorded as the entry's cause (default: a new one)\n"
		"  NAME BASE_UNITS  the same as --account and --amount, in integer base units\n"
		"  -h, --help       this text\n"
		"\n"
		"Exit status: 0 minted, 1 failure, 2 usage error.\n");
}

static void usage_export(FILE *f)
{
	fprintf(f,
		"Usage: " ADMIN_NAME " ledger-export --out DIR [--config CONF]\n"
		"                        [--db FILE] [--key KEY] [--origin ORIGIN]\n"
		"\n"
		"Copy the ledger (every ledger_* table, nothing of the tasks, nodes or blobs)\n"
		"out of the coordinator's state file FILE into DIR/ledger.db, as one consistent\n"
		"snapshot (it may run while the coordinator runs), and sign a C2SP checkpoint\n"
		"of it (size and RFC 6962 root) with the coordinator's Ed25519 private KEY\n"
		"under ORIGIN into DIR/checkpoint.  Auditors then run\n"
		"  aicnctl audit ledger DIR --key coordinator.pub\n"
		"with the coordinator's public key obtained out of band.\n"
		"\n"
		"Options:\n"
		"  --out DIR       created if missing; DIR/ledger.db must not exist yet\n"
		"  --config CONF   take the state file, key and network from this coordinator\n"
		"                  configuration (" ADMIN_CONF_DEFAULT " when none of\n"
		"                  --db, --key, --origin is given); the options below override it\n"
		"  --db FILE       the coordinator's SQLite state file (opened read-only)\n"
		"  --key KEY       the coordinator's private key (PEM)\n"
		"  --origin NAME   the checkpoint origin, aicn/ledger/<network name>\n"
		"  -h, --help      this text\n"
		"\n"
		"Exit status: 0 exported, 1 failure, 2 usage error.\n");
}

static void usage_params(FILE *f)
{
	fprintf(f, "Usage: " ADMIN_NAME " params [--db FILE | --config CONF] [--json]\n"
		   "\n"
		   "Print the network's economic parameters, one 'name value' line each: the\n"
		   "built-in genesis defaults, or with --db those in force in that coordinator's\n"
		   "ledger (defaults overridden by genesis and governance \"param\" entries).\n"
		   "Amounts are base units (1 AICN = 10^9), _ppm parts per million, _bps basis\n"
		   "points, _ns nanoseconds.  See docs/economics.md for each.\n"
		   "\n"
		   "Options:\n"
		   "  --db FILE      the coordinator's SQLite state file (opened read-only)\n"
		   "  --config CONF  the state file of this coordinator configuration\n"
		   "  --json         one JSON object instead of lines\n"
		   "  -h, --help     this text\n"
		   "\n"
		   "Exit status: 0 printed, 1 failure, 2 usage error.\n");
}

/* "12.5" -> 12500000000 base units; -EINVAL malformed, -ERANGE too large or zero. */
static int parse_aicn(const char *s, int64_t *ret)
{
	int64_t whole = 0, frac = 0;
	int fd = 0;
	const char *p = s;

	if (!*p || *p == '.')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (whole > (ECON_MAX_AMOUNT / ECON_UNIT))
			return -ERANGE;
		whole = whole * 10 + (*p - '0');
	}
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++) {
			if (++fd > 9)
				return -EINVAL;
			frac = frac * 10 + (*p - '0');
		}
		if (fd == 0)
			return -EINVAL;
		for (; fd < 9; fd++)
			frac *= 10;
	}
	if (*p)
		return -EINVAL;
	if (whole > ECON_MAX_AMOUNT / ECON_UNIT || whole * ECON_UNIT > ECON_MAX_AMOUNT - frac ||
	    whole * ECON_UNIT + frac == 0)
		return -ERANGE;
	*ret = whole * ECON_UNIT + frac;
	return 0;
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* What the admin commands take from the coordinator's config file (coordinator.conf). */
struct admin_conf {
	char *state_dir; /* state_dir: holds coordinator.db */
	char *key;	 /* key: the coordinator's Ed25519 private key */
	char *network;	 /* network: the ledger origin is aicn/ledger/<network> */
	char *db;	 /* state_dir/coordinator.db */
	char *origin;	 /* aicn/ledger/<network> */
};

static void admin_conf_done(struct admin_conf *c)
{
	free(c->state_dir);
	free(c->key);
	free(c->network);
	free(c->db);
	free(c->origin);
	*c = (struct admin_conf){0};
}

static int conf_cb(void *user, const char *section, const char *name, const char *value)
{
	struct admin_conf *c = user;
	char **slot = NULL;

	if (section[0] && strcmp(section, "coordinator") != 0)
		return 1; /* the coordinator checks its own file; we read three keys */
	if (strcmp(name, "state_dir") == 0)
		slot = &c->state_dir;
	else if (strcmp(name, "key") == 0)
		slot = &c->key;
	else if (strcmp(name, "network") == 0)
		slot = &c->network;
	if (slot) {
		free(*slot);
		*slot = strdup(value);
		return *slot != NULL;
	}
	return 1;
}

static int conf_read(const char *path, struct admin_conf *c)
{
	int r = ini_parse(path, conf_cb, c);

	if (r < 0) {
		fprintf(stderr, ADMIN_NAME ": cannot read %s\n", path);
		return -EIO;
	}
	if (r > 0) {
		fprintf(stderr, ADMIN_NAME ": %s:%d: syntax error\n", path, r);
		return -EINVAL;
	}
	if (!c->state_dir) {
		fprintf(stderr, ADMIN_NAME ": %s has no state_dir\n", path);
		return -EINVAL;
	}
	if (asprintf(&c->db, "%s/coordinator.db", c->state_dir) < 0 ||
	    (c->network && asprintf(&c->origin, LEDGER_ORIGIN_PREFIX "%s", c->network) < 0)) {
		fprintf(stderr, ADMIN_NAME ": out of memory\n");
		return -ENOMEM;
	}
	return 0;
}

/*
 * Read state_dir (so the store, state_dir/coordinator.db), key and network from
 * the coordinator's config file, PATH or else the default one; on failure the
 * reason is printed and *c is left empty.
 */
static int admin_conf_load(const char *path, struct admin_conf *c)
{
	int r = conf_read(path ? path : ADMIN_CONF_DEFAULT, c);

	if (r < 0)
		admin_conf_done(c);
	return r;
}

/* An amount in integer base units, as in the protocol and the ledger. */
static int parse_base_units(const char *s, int64_t *ret)
{
	char *end = NULL;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v <= 0 || v > ECON_MAX_AMOUNT)
		return -EINVAL;
	*ret = v;
	return 0;
}

static int mint_in(const char *db, const char *account, int64_t amount, const char *cause)
{
	char gen[LEDGER_CAUSE_MAX + 1], a1[ECON_AICN_STR], a2[ECON_AICN_STR];
	struct store *st = NULL;
	struct ledger *l = NULL;
	int64_t bal = 0, epoch = 0;
	uint64_t size = 0;
	uint8_t head[SHA256_LEN];
	sqlite3_stmt *q = NULL;
	int r;

	r = store_open(db, 0, &st);
	if (r == -EBUSY) {
		fprintf(stderr,
			ADMIN_NAME " mint: %s is in use by a running coordinator; stop it first "
				   "(one writer per store)\n",
			db);
		return 1;
	}
	if (r < 0) {
		fprintf(stderr, ADMIN_NAME " mint: cannot open %s: %s\n", db, strerror(-r));
		return 1;
	}
	r = ledger_migrate(store_db(st));
	if (r >= 0)
		r = ledger_new(store_db(st), &l);
	if (r >= 0 &&
	    sqlite3_prepare_v2(store_db(st), "SELECT v FROM ledger_meta WHERE k = 'pay_epoch'", -1,
			       &q, NULL) == SQLITE_OK) {
		if (sqlite3_step(q) == SQLITE_ROW)
			epoch = sqlite3_column_int64(q, 0);
		sqlite3_finalize(q);
	}
	if (r >= 0 && !cause) {
		ledger_head(l, &size, head);
		snprintf(gen, sizeof(gen), "faucet:%s@%" PRIu64, account, size + 1);
		cause = gen;
	}
	if (r >= 0)
		r = settle_mint(l, account, amount, cause, now_ns(),
				epoch > 0 ? (uint64_t)epoch : 0);
	if (r >= 0)
		r = ledger_balance(l, account, &bal);
	if (l)
		ledger_head(l, &size, head);
	ledger_free(l);
	store_free(st);
	if (r == -EEXIST) {
		fprintf(stderr, ADMIN_NAME " mint: cause '%s' was minted before; nothing done\n",
			cause);
		return 1;
	}
	if (r < 0) {
		fprintf(stderr, ADMIN_NAME " mint: %s\n", strerror(-r));
		return 1;
	}
	econ_format_aicn(amount, a1);
	econ_format_aicn(bal, a2);
	printf("minted %s AICN to %s (ledger entry %" PRIu64 "); balance %s AICN\n", a1, account,
	       size, a2);
	return 0;
}

static int admin_mint(int argc, char **argv)
{
	static const struct option opts[] = {
		{"db", required_argument, NULL, 'd'},
		{"config", required_argument, NULL, 'C'},
		{"account", required_argument, NULL, 'a'},
		{"amount", required_argument, NULL, 'm'},
		{"cause", required_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *db = NULL, *conf_path = NULL, *account = NULL, *amount_s = NULL;
	const char *cause = NULL;
	struct admin_conf conf = {0};
	int64_t amount = 0;
	int c, r;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			db = optarg;
			break;
		case 'C':
			conf_path = optarg;
			break;
		case 'a':
			account = optarg;
			break;
		case 'm':
			amount_s = optarg;
			break;
		case 'c':
			cause = optarg;
			break;
		case 'h':
			usage_mint(stdout);
			return 0;
		default:
			usage_mint(stderr);
			return 2;
		}
	}
	/* ACCOUNT BASE_UNITS as operands: the form scripts use */
	if (optind + 2 == argc && !account && !amount_s) {
		account = argv[optind];
		if (parse_base_units(argv[optind + 1], &amount) < 0) {
			fprintf(stderr,
				ADMIN_NAME " mint: '%s': a positive integer of base units\n",
				argv[optind + 1]);
			return 2;
		}
		optind += 2;
	} else if (amount_s) {
		r = parse_aicn(amount_s, &amount);
		if (r < 0) {
			fprintf(stderr,
				ADMIN_NAME
				" mint: --amount '%s': a positive number of AICN with at "
				"most 9 decimals%s\n",
				amount_s, r == -ERANGE ? ", below 2^62 base units" : "");
			return 2;
		}
	}
	if (optind != argc || (db && conf_path) || !account || !amount) {
		usage_mint(stderr);
		return 2;
	}
	if (!ledger_account_valid(account) || strcmp(account, LEDGER_MINT) == 0 ||
	    strchr(account, ':')) {
		fprintf(stderr, ADMIN_NAME " mint: '%s' is not an account that can hold AICN\n",
			account);
		return 2;
	}
	if (cause && !ledger_cause_valid(cause)) {
		fprintf(stderr, ADMIN_NAME " mint: --cause: 1 to %d printable ASCII characters\n",
			LEDGER_CAUSE_MAX);
		return 2;
	}
	if (!db) {
		if (admin_conf_load(conf_path, &conf) < 0)
			return 1;
		db = conf.db;
	}
	r = mint_in(db, account, amount, cause);
	admin_conf_done(&conf);
	return r;
}

static void db_closep(sqlite3 **db)
{
	sqlite3_close(*db);
}

static int exec_sql(sqlite3 *db, const char *sql)
{
	return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -EIO;
}

static int copy_ledger(sqlite3 *out, const char *src_path, char *why, size_t len)
{
	_cleanup_free_ char *uri = NULL;
	sqlite3_stmt *st = NULL;
	char *names[64];
	size_t n = 0;
	int r = 0, rc;

	if (asprintf(&uri, "file:%s?mode=ro", src_path) < 0)
		return -ENOMEM;
	if (sqlite3_prepare_v2(out, "ATTACH DATABASE ?1 AS src", -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_text(st, 1, uri, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		snprintf(why, len, "cannot open %s: %s", src_path, sqlite3_errmsg(out));
		return -EIO;
	}
	/* one read transaction: a consistent snapshot even while the coordinator writes */
	if (exec_sql(out, "BEGIN") < 0)
		return -EIO;
	if (sqlite3_prepare_v2(out,
			       "SELECT name FROM src.sqlite_master WHERE type = 'table' AND "
			       "name LIKE 'ledger\\_%' ESCAPE '\\' ORDER BY name",
			       -1, &st, NULL) != SQLITE_OK) {
		r = -EIO;
		goto out;
	}
	while (n < ARRAY_SIZE(names) && sqlite3_step(st) == SQLITE_ROW) {
		names[n] = strdup((const char *)sqlite3_column_text(st, 0));
		if (!names[n])
			break;
		n++;
	}
	sqlite3_finalize(st);
	if (n == 0) {
		snprintf(why, len, "%s holds no ledger", src_path);
		r = -ENOENT;
	}
	for (size_t i = 0; i < n && r >= 0; i++) {
		_cleanup_free_ char *sql = NULL;

		if (asprintf(&sql, "INSERT OR REPLACE INTO main.\"%s\" SELECT * FROM src.\"%s\"",
			     names[i], names[i]) < 0) {
			r = -ENOMEM;
			break;
		}
		if (exec_sql(out, sql) < 0) {
			snprintf(why, len, "copying %s: %s", names[i], sqlite3_errmsg(out));
			r = -EIO;
		}
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
out:
	if (r >= 0)
		r = exec_sql(out, "COMMIT");
	else
		exec_sql(out, "ROLLBACK");
	exec_sql(out, "DETACH DATABASE src");
	return r;
}

static int export_to(const char *db, const char *dir, const char *key_path, const char *origin);

static int admin_export(int argc, char **argv)
{
	static const struct option opts[] = {
		{"db", required_argument, NULL, 'd'},
		{"out", required_argument, NULL, 'o'},
		{"key", required_argument, NULL, 'k'},
		{"origin", required_argument, NULL, 'O'},
		{"config", required_argument, NULL, 'C'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *db = NULL, *dir = NULL, *key_path = NULL, *origin = NULL;
	struct admin_conf conf = {0};
	const char *conf_path = NULL;
	int c, r;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			db = optarg;
			break;
		case 'o':
			dir = optarg;
			break;
		case 'k':
			key_path = optarg;
			break;
		case 'O':
			origin = optarg;
			break;
		case 'C':
			conf_path = optarg;
			break;
		case 'h':
			usage_export(stdout);
			return 0;
		default:
			usage_export(stderr);
			return 2;
		}
	}
	if (conf_path || (!db && !key_path && !origin)) {
		if (admin_conf_load(conf_path, &conf) < 0)
			return 1;
		db = db ? db : conf.db;
		key_path = key_path ? key_path : conf.key;
		origin = origin ? origin : conf.origin;
	}
	if (optind != argc || !db || !dir || !key_path || !origin) {
		usage_export(stderr);
		r = 2;
	} else {
		r = export_to(db, dir, key_path, origin);
	}
	admin_conf_done(&conf);
	return r;
}

static int export_to(const char *db, const char *dir, const char *key_path, const char *origin)
{
	_cleanup_(db_closep) sqlite3 *out = NULL;
	_cleanup_free_ char *out_path = NULL, *cp_path = NULL, *note = NULL;
	char why[512] = "", hex[SHA256_HEX_LEN + 1];
	struct ledger *l = NULL;
	EVP_PKEY *key = NULL;
	uint64_t size = 0;
	uint8_t root[SHA256_LEN];
	FILE *f;
	int r;

	if (strncmp(origin, LEDGER_ORIGIN_PREFIX, strlen(LEDGER_ORIGIN_PREFIX)) != 0) {
		fprintf(stderr, ADMIN_NAME " ledger-export: --origin must start with %s\n",
			LEDGER_ORIGIN_PREFIX);
		return 2;
	}
	r = key_load_private(key_path, &key);
	if (r < 0) {
		fprintf(stderr, ADMIN_NAME " ledger-export: cannot load key %s: %s\n", key_path,
			strerror(-r));
		return 1;
	}
	if ((mkdir(dir, 0755) < 0 && errno != EEXIST) ||
	    asprintf(&out_path, "%s/ledger.db", dir) < 0 ||
	    asprintf(&cp_path, "%s/checkpoint", dir) < 0) {
		fprintf(stderr, ADMIN_NAME " ledger-export: %s: %s\n", dir, strerror(errno));
		EVP_PKEY_free(key);
		return 1;
	}
	if (access(out_path, F_OK) == 0) {
		fprintf(stderr, ADMIN_NAME " ledger-export: %s exists; remove it first\n",
			out_path);
		EVP_PKEY_free(key);
		return 1;
	}
	if (sqlite3_open_v2(out_path, &out,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_URI |
				    SQLITE_OPEN_NOFOLLOW,
			    NULL) != SQLITE_OK) {
		fprintf(stderr, ADMIN_NAME " ledger-export: cannot create %s\n", out_path);
		EVP_PKEY_free(key);
		return 1;
	}
	sqlite3_busy_timeout(out, 10000);
	r = ledger_migrate(out);
	if (r >= 0)
		r = copy_ledger(out, db, why, sizeof(why));
	if (r >= 0)
		r = ledger_new(out, &l);
	if (r >= 0)
		r = ledger_checkpoint(l, key, origin, &note);
	if (r >= 0)
		r = ledger_tree_head(l, &size, root);
	ledger_free(l);
	EVP_PKEY_free(key);
	if (r >= 0) {
		f = fopen(cp_path, "we");
		if (!f || fputs(note, f) < 0 || fflush(f) != 0 || fsync(fileno(f)) < 0)
			r = -errno ? -errno : -EIO;
		if (f && fclose(f) != 0 && r >= 0)
			r = -EIO;
	}
	if (r < 0) {
		fprintf(stderr, ADMIN_NAME " ledger-export: %s\n", why[0] ? why : strerror(-r));
		unlink(out_path);
		return 1;
	}
	hex_encode(root, SHA256_LEN, hex);
	printf("exported %" PRIu64 " ledger entries to %s, root %s\n"
	       "checkpoint signed under %s in %s\n",
	       size, out_path, hex, origin, cp_path);
	return 0;
}

static int admin_params(int argc, char **argv)
{
	static const struct option opts[] = {
		{"db", required_argument, NULL, 'd'},
		{"config", required_argument, NULL, 'C'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	_cleanup_(db_closep) sqlite3 *db = NULL;
	struct admin_conf conf = {0};
	const char *path = NULL, *conf_path = NULL;
	struct econ_params p;
	struct ledger *l = NULL;
	bool json = false;
	int c, r;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			path = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'C':
			conf_path = optarg;
			break;
		case 'h':
			usage_params(stdout);
			return 0;
		default:
			usage_params(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage_params(stderr);
		return 2;
	}
	econ_params_default(&p);
	if (conf_path && !path) {
		if (admin_conf_load(conf_path, &conf) < 0)
			return 1;
		path = conf.db;
	}
	if (path) {
		if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
			fprintf(stderr, ADMIN_NAME " params: cannot open %s\n", path);
			admin_conf_done(&conf);
			return 1;
		}
		sqlite3_busy_timeout(db, 10000);
		r = ledger_new(db, &l);
		if (r >= 0)
			r = gov_params(l, &p);
		ledger_free(l);
		if (r < 0) {
			fprintf(stderr, ADMIN_NAME " params: %s holds no ledger\n", path);
			admin_conf_done(&conf);
			return 1;
		}
	}
	admin_conf_done(&conf);
	if (json)
		putchar('{');
	for (size_t i = 0; i < econ_param_count(); i++) {
		int64_t v = 0;

		econ_param_get(&p, econ_param_name(i), &v);
		if (json)
			printf("%s\"%s\":%" PRId64, i ? "," : "", econ_param_name(i), v);
		else
			printf("%s %" PRId64 "\n", econ_param_name(i), v);
	}
	if (json)
		printf("}\n");
	return 0;
}

int coord_admin_main(int argc, char **argv)
{
	if (argc < 2)
		return -1;
	if (strcmp(argv[1], "mint") == 0)
		return admin_mint(argc - 1, argv + 1);
	if (strcmp(argv[1], "ledger-export") == 0)
		return admin_export(argc - 1, argv + 1);
	if (strcmp(argv[1], "params") == 0)
		return admin_params(argc - 1, argv + 1);
	return -1;
}
