/* pay.c -- settlement wired into the coordinator: escrow at submit, Proof of Compute, quorum and payment of results, epochs, governance requests. */
#include "pay.h"

#include "blobs.h"
#include "gov.h"
#include "ledger.h"
#include "sched.h"
#include "settle.h"
#include "store.h"

#include <aicn/canon.h>
#include <aicn/compiler.h>
#include <aicn/errmsg.h>
#include <aicn/fileio.h>
#include <aicn/hash.h>
#include <aicn/key.h>
#include <aicn/pow.h>
#include <aicn/record.h>
#include <openssl/evp.h>

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define PAY_CLOCK_SLACK_NS (5 * 1000000000LL) /* node vs coordinator realtime clocks */
#define PAY_MAX_EXTRA 2	   /* network replicas beyond the renter's before "no quorum" */
#define PAY_MAX_RESULTS 16 /* results of one task considered for a quorum */
#define PAY_PARAMS_FILE_MAX ECON_PARAMS_TEXT_MAX
#define NS_PER_S 1000000000LL
#define PAY_INDEX_MAX (1 << 20) /* bytes of an image archive's index.json */
#define PAY_IMAGES 16		/* image archive -> manifest digests remembered */

struct pay {
	struct coord *c;
	struct store *st;
	sqlite3 *db;
	struct ledger *l;
	struct econ_params p; /* in force */
	EVP_PKEY *key;	      /* signs checkpoints; NULL = none */
	char *origin;
	char *cp_dir;
	uint64_t epoch;	     /* current reward epoch */
	int64_t epoch_start; /* realtime ns it began */
	int64_t mult_ppm;    /* demand multiplier in force */
	unsigned pow_bits;   /* PoW difficulty in force */
	uint64_t cp_size;    /* ledger size of the last checkpoint written */
	uint64_t rnd;	     /* xorshift state: adaptive replication draws */
	struct {
		uint8_t archive[SHA256_LEN];  /* the task's image blob (what SUBMIT names) */
		uint8_t manifest[SHA256_LEN]; /* its OCI manifest (what the agent's record names) */
		bool known;
	} images[PAY_IMAGES]; /* a small cache, replaced round robin */
	unsigned next_image;
};

/* Pay's own tables: results waiting for (or decided by) a quorum. */
static const struct store_migration pay_steps[] = {
	{1, "CREATE TABLE pay_results(\n"
	    "  id INTEGER PRIMARY KEY,         -- order of arrival\n"
	    "  record_hash BLOB NOT NULL UNIQUE, -- SHA-256 of the agent-signed final record\n"
	    "  task INTEGER NOT NULL,          -- tasks.id\n"
	    "  replica INTEGER NOT NULL,       -- replica slot\n"
	    "  node TEXT NOT NULL,             -- node id that signed it\n"
	    "  provider TEXT NOT NULL,         -- account paid\n"
	    "  node_seq INTEGER NOT NULL,      -- the record's sequence in the node's meter log\n"
	    "  node_key BLOB NOT NULL,         -- node's raw Ed25519 public key\n"
	    "  record TEXT NOT NULL,           -- the record line as signed\n"
	    "  cpu_ns INTEGER NOT NULL,        -- metered CPU ns\n"
	    "  renewable_ppm INTEGER NOT NULL, -- node's declared renewable share\n"
	    "  price INTEGER NOT NULL,         -- price agreed in the offer\n"
	    "  digest BLOB NOT NULL,           -- result digest (32 bytes)\n"
	    "  state INTEGER NOT NULL,         -- 0 waiting for a quorum, 1 paid, 2 refused\n"
	    "  paid INTEGER NOT NULL,          -- base units the provider received\n"
	    "  UNIQUE(node, node_seq),\n"
	    "  UNIQUE(task, node)\n"
	    ");\n"
	    "CREATE INDEX pay_results_task ON pay_results(task, state);\n"
	    "CREATE INDEX pay_results_node ON pay_results(node, state);\n"},
};

enum {
	RES_WAITING = 0,
	RES_PAID = 1,
	RES_REFUSED = 2
};

/* An owner account: a certificate CN that can hold tokens (no network-reserved names). */
static bool owner_ok(const char *a)
{
	return a && ledger_account_valid(a) && !strchr(a, ':') && strcmp(a, LEDGER_MINT) != 0 &&
	       strcmp(a, LEDGER_TREASURY) != 0;
}

static uint64_t rnd64(struct pay *p)
{
	uint64_t x = p->rnd;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	p->rnd = x;
	return x;
}

/* ---- one pay operation = one savepoint in the coordinator's open batch ---- */

static int op_begin(struct pay *p, struct ledger_unit *u)
{
	int r = store_op_begin(p->st);

	if (r < 0)
		return r;
	r = ledger_join(p->l);
	if (r < 0)
		return store_op_end(p->st, r);
	r = ledger_unit_begin(p->l, u);
	if (r < 0) {
		ledger_leave(p->l);
		return store_op_end(p->st, r);
	}
	return 0;
}

static int op_end(struct pay *p, struct ledger_unit *u, int r)
{
	r = ledger_unit_end(p->l, u, r);
	ledger_leave(p->l);
	return store_op_end(p->st, r);
}

/* ---- settings kept in ledger_meta ---- */

static int meta_get(struct pay *p, const char *k, int64_t *ret)
{
	static const char sql[] = "SELECT v FROM ledger_meta WHERE k = ?1";
	sqlite3_stmt *st = ledger_stmt(p->l, sql);
	int rc;

	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, k, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*ret = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : ledger_sql_errno(rc);
}

static int meta_set(struct pay *p, const char *k, int64_t v)
{
	static const char sql[] = "INSERT INTO ledger_meta(k, v) VALUES(?1, ?2) "
				  "ON CONFLICT(k) DO UPDATE SET v = excluded.v";
	sqlite3_stmt *st = ledger_stmt(p->l, sql);

	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, k, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, v);
	return ledger_stmt_run(st);
}

/* ---- genesis parameters from a file ---- */

static int params_file_load(const char *path, struct econ_params *ret, char *err, size_t errlen)
{
	_cleanup_free_ char *buf = NULL;
	char why[160];
	size_t n = 0;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errmsg(err, errlen, -errno, "params: cannot open %.200s: %s", path,
			      strerror(errno));
	r = read_fd_all(fd, PAY_PARAMS_FILE_MAX, &buf, &n);
	close(fd);
	if (r == -EFBIG)
		return errmsg(err, errlen, r, "params: %.200s: larger than %d bytes", path,
			      PAY_PARAMS_FILE_MAX);
	if (r < 0)
		return errmsg(err, errlen, r, "params: reading %.200s: %s", path, strerror(-r));
	r = econ_params_parse(buf, n, ret, why, sizeof(why));
	if (r < 0)
		return errmsg(err, errlen, r, "params: %.200s: %s", path, why);
	return 0;
}

/* Record genesis values that differ from the defaults as "param" entries (auditors replay them). */
static int genesis(struct pay *p, const struct econ_params *want, int64_t now_ns)
{
	static const char sql[] = "INSERT INTO ledger_params(name, value) VALUES(?1, ?2) "
				  "ON CONFLICT(name) DO UPDATE SET value = excluded.value";
	struct econ_params def;
	int r = 0;

	econ_params_default(&def);
	for (size_t i = 0; i < econ_param_count() && r >= 0; i++) {
		const char *name = econ_param_name(i);
		char cause[LEDGER_CAUSE_MAX + 1];
		struct ledger_append_args a;
		int64_t v = 0, old = 0;
		sqlite3_stmt *st;
		cJSON *data;

		econ_param_get(want, name, &v);
		econ_param_get(&def, name, &old);
		if (v == old)
			continue;
		data = cJSON_CreateObject();
		if (!data || !cJSON_AddStringToObject(data, "name", name) ||
		    canon_add_i64(data, "value", v) < 0 || canon_add_i64(data, "old", old) < 0) {
			cJSON_Delete(data);
			return -ENOMEM;
		}
		snprintf(cause, sizeof(cause), "genesis:%s", name);
		a = (struct ledger_append_args){
			.kind = "param", .cause = cause, .time_ns = now_ns, .data = data};
		r = ledger_append(p->l, &a, NULL);
		cJSON_Delete(data);
		if (r < 0)
			break;
		st = ledger_stmt(p->l, sql);
		if (!st)
			return -EIO;
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, v);
		r = ledger_stmt_run(st);
	}
	return r;
}

/* ---- open, free ---- */

static int load_state(struct pay *p)
{
	int64_t v = 0;
	int r;

	r = gov_params(p->l, &p->p);
	if (r < 0)
		return r;
	r = meta_get(p, "pay_epoch", &v);
	if (r < 0)
		return r;
	p->epoch = r > 0 && v > 0 ? (uint64_t)v : 1;
	r = meta_get(p, "pay_epoch_start_ns", &v);
	if (r < 0)
		return r;
	p->epoch_start = r > 0 ? v : 0;
	r = settle_current_mult(p->l, &p->mult_ppm);
	if (r < 0)
		return r;
	p->pow_bits = econ_pow_bits(&p->p, p->mult_ppm);
	return 0;
}

int pay_open(struct coord *c, const struct pay_config *cfg, int64_t now_ns, struct pay **ret,
	     char *err, size_t errlen)
{
	struct econ_params gen;
	struct ledger_unit u;
	struct pay *p;
	int64_t v = 0;
	int r;

	if (!c || !cfg || now_ns < 0)
		return -EINVAL;
	if (cfg->key_file && (!cfg->origin || strncmp(cfg->origin, LEDGER_ORIGIN_PREFIX,
						      strlen(LEDGER_ORIGIN_PREFIX)) != 0))
		return errmsg(err, errlen, -EINVAL, "ledger origin must start with %s",
			      LEDGER_ORIGIN_PREFIX);
	econ_params_default(&gen);
	if (cfg->params_file) {
		r = params_file_load(cfg->params_file, &gen, err, errlen);
		if (r < 0)
			return r;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->c = c;
	p->st = coord_store(c);
	p->db = store_db(p->st);
	if (getrandom(&p->rnd, sizeof(p->rnd), 0) != sizeof(p->rnd) || !p->rnd)
		p->rnd = (uint64_t)now_ns | 1;
	r = store_flush(p->st); /* migrations run outside any batch */
	if (r >= 0)
		r = ledger_migrate(p->db);
	if (r >= 0)
		r = store_migrate(p->st, "pay", pay_steps, ARRAY_SIZE(pay_steps));
	if (r >= 0)
		r = ledger_new(p->db, &p->l);
	if (r < 0) {
		errmsg(err, errlen, r, "ledger tables: %s", strerror(-r));
		goto fail;
	}
	if (cfg->key_file) {
		r = key_load_private(cfg->key_file, &p->key);
		if (r < 0) {
			errmsg(err, errlen, r, "cannot load the coordinator key %.200s: %s",
			       cfg->key_file, strerror(-r));
			goto fail;
		}
		p->origin = strdup(cfg->origin);
		if (!p->origin) {
			r = -ENOMEM;
			goto fail;
		}
	}
	if (cfg->checkpoint_dir) {
		p->cp_dir = strdup(cfg->checkpoint_dir);
		if (!p->cp_dir) {
			r = -ENOMEM;
			goto fail;
		}
		if (mkdir(p->cp_dir, 0755) < 0 && errno != EEXIST) {
			r = errmsg(err, errlen, -errno, "checkpoint directory %.200s: %s",
				   p->cp_dir, strerror(errno));
			goto fail;
		}
	}
	/* first start: genesis parameters and epoch 1 */
	r = op_begin(p, &u);
	if (r < 0)
		goto fail;
	r = meta_get(p, "pay_genesis", &v);
	if (r == 0) {
		r = genesis(p, &gen, now_ns);
		if (r >= 0)
			r = meta_set(p, "pay_genesis", 1);
		if (r >= 0)
			r = meta_set(p, "pay_epoch", 1);
		if (r >= 0)
			r = meta_set(p, "pay_epoch_start_ns", now_ns);
	}
	r = op_end(p, &u, r);
	if (r >= 0)
		r = store_flush(p->st);
	if (r >= 0)
		r = load_state(p);
	if (r < 0) {
		errmsg(err, errlen, r, "ledger genesis: %s", strerror(-r));
		goto fail;
	}
	*ret = p;
	return 0;
fail:
	pay_free(p);
	return r;
}

struct pay *pay_free(struct pay *p)
{
	if (!p)
		return NULL;
	ledger_free(p->l);
	EVP_PKEY_free(p->key);
	free(p->origin);
	free(p->cp_dir);
	free(p);
	return NULL;
}

const struct econ_params *pay_params(const struct pay *p)
{
	return &p->p;
}

/* ---- submit ---- */

struct spec_fig {
	int64_t cores, memory, wall_s, cpu_s, max_price, replicas;
};

/* The figures of a SUBMIT spec that settlement needs, with coord_submit's defaults. */
static int spec_figures(const cJSON *spec, struct spec_fig *f, char *err, size_t errlen)
{
	const cJSON *it;

	*f = (struct spec_fig){0};
	if (!cJSON_IsObject(spec) || canon_get_i64(spec, "cores", &f->cores) < 0 || f->cores < 1 ||
	    canon_get_i64(spec, "max_wall_seconds", &f->wall_s) < 0 || f->wall_s < 1 ||
	    canon_get_i64(spec, "max_price", &f->max_price) < 0 || f->max_price < 0 ||
	    f->max_price > ECON_MAX_AMOUNT || f->cores > INT32_MAX || f->wall_s > INT32_MAX)
		return errmsg(err, errlen, -EINVAL,
			      "spec: cores, max_wall_seconds and max_price must be integers");
	f->cpu_s = f->cores * f->wall_s;
	it = cJSON_GetObjectItemCaseSensitive(spec, "max_cpu_seconds");
	if (it && (canon_number_i64(it, &f->cpu_s) < 0 || f->cpu_s < 1))
		return errmsg(err, errlen, -EINVAL,
			      "spec: max_cpu_seconds must be a positive integer");
	if (f->cpu_s > ECON_MAX_CPU_NS / NS_PER_S)
		return errmsg(err, errlen, -EINVAL, "spec: max_cpu_seconds too large");
	f->replicas = 1;
	it = cJSON_GetObjectItemCaseSensitive(spec, "replicas");
	if (it && (canon_number_i64(it, &f->replicas) < 0 || f->replicas < 1 ||
		   f->replicas > SCHED_MAX_REPLICAS))
		return errmsg(err, errlen, -EINVAL, "spec: replicas must be 1..%d",
			      SCHED_MAX_REPLICAS);
	it = cJSON_GetObjectItemCaseSensitive(spec, "memory");
	if (it && canon_number_i64(it, &f->memory) < 0)
		return errmsg(err, errlen, -EINVAL, "spec: memory must be an integer");
	return 0;
}

static int spec_escrow(const struct spec_fig *f, int64_t *ret)
{
	return econ_escrow_amount(f->cpu_s * NS_PER_S, f->max_price, (unsigned)f->replicas, ret);
}

/* 1 when ACCOUNT already submitted a task with the spec's client_ref (and it is escrowed). */
static int submit_repeated(struct pay *p, const char *account, const cJSON *spec)
{
	static const char sql[] = "SELECT 1 FROM tasks t JOIN accounts a ON a.id = t.account_id "
				  "JOIN ledger_escrow e ON e.task = CAST(t.id AS TEXT) "
				  "WHERE a.name = ?1 AND t.client_ref = ?2";
	const char *ref = NULL;
	sqlite3_stmt *st;
	int rc;

	if (canon_get_str(spec, "client_ref", &ref) < 0 || !ref[0])
		return 0;
	st = ledger_stmt(p->l, sql);
	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, account, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, ref, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : ledger_sql_errno(rc);
}

int pay_submit_check(struct pay *p, const char *account, const cJSON *spec, int64_t *ret_escrow,
		     char *err, size_t errlen)
{
	char a1[ECON_AICN_STR], a2[ECON_AICN_STR];
	struct spec_fig f;
	int64_t need = 0, bal = 0;
	int r;

	if (!owner_ok(account))
		return errmsg(err, errlen, -EPERM, "account %.64s cannot hold AICN", account);
	r = spec_figures(spec, &f, err, errlen);
	if (r < 0)
		return r;
	if (spec_escrow(&f, &need) < 0)
		return errmsg(err, errlen, -EINVAL,
			      "max_price x max_cpu_seconds x replicas: too large");
	/* a repeated SUBMIT (same client_ref) returns the earlier task: escrowed already */
	r = submit_repeated(p, account, spec);
	if (r < 0)
		return errmsg(err, errlen, r, "ledger: %s", strerror(-r));
	if (r > 0) {
		*ret_escrow = need;
		return 0;
	}
	r = ledger_balance(p->l, account, &bal);
	if (r < 0)
		return errmsg(err, errlen, r, "ledger: %s", strerror(-r));
	if (bal < need)
		return errmsg(err, errlen, -ENOSPC,
			      "insufficient funds: balance %s AICN, escrow needs %s AICN",
			      econ_format_aicn(bal, a1), econ_format_aicn(need, a2));
	*ret_escrow = need;
	return 0;
}

static void task_name(char buf[24], int64_t task_id)
{
	snprintf(buf, 24, "%" PRId64, task_id);
}

int pay_submit_commit(struct pay *p, const char *account, int64_t task_id, const cJSON *spec,
		      int64_t now_ns, cJSON *reply)
{
	struct settle_escrow_req req;
	struct ledger_unit u;
	struct spec_fig f;
	char task[24];
	int64_t amount = 0;
	int r;

	if (!owner_ok(account) || task_id <= 0 || now_ns < 0)
		return -EINVAL;
	r = spec_figures(spec, &f, NULL, 0);
	if (r < 0)
		return r;
	task_name(task, task_id);
	req = (struct settle_escrow_req){.task = task,
					 .renter = account,
					 .price_per_cpu_hour = f.max_price,
					 .max_cpu_ns = f.cpu_s * NS_PER_S,
					 .replicas = (unsigned)f.replicas,
					 .time_ns = now_ns,
					 .epoch = p->epoch};
	r = op_begin(p, &u);
	if (r < 0)
		return r;
	r = settle_escrow_open(p->l, &req, &amount);
	if (r == -EEXIST) /* the same task again: already escrowed */
		r = spec_escrow(&f, &amount);
	r = op_end(p, &u, r);
	if (r < 0)
		return r;
	if (reply) {
		cJSON_DeleteItemFromObjectCaseSensitive(reply, "escrow");
		if (canon_add_i64(reply, "escrow", amount) < 0)
			return -ENOMEM;
	}
	return 0;
}

int pay_offer_terms(struct pay *p, int64_t ask_price, int64_t max_price, int64_t *ret_price,
		    unsigned *ret_pow_bits)
{
	int64_t price;
	int r;

	if (ask_price < 0 || max_price < 0)
		return -EINVAL;
	r = econ_effective_price(ask_price, p->mult_ppm, &price);
	if (r < 0)
		return r;
	*ret_price = price < max_price ? price : max_price;
	*ret_pow_bits = p->pow_bits;
	return 0;
}

/* ---- results: Proof of Compute ---- */

static void pkey_freep(EVP_PKEY **k)
{
	EVP_PKEY_free(*k);
}

static void verifier_freep(struct key_verifier **v)
{
	key_verifier_free(*v);
}

/* Bytes rounded up to whole MiB, as offers carry memory (mem_mb). */
static uint64_t mib_round_up(uint64_t bytes)
{
	const uint64_t mib = 1ULL << 20;

	return bytes > UINT64_MAX - (mib - 1) ? bytes : (bytes + mib - 1) / mib * mib;
}

/*
 * The OCI manifest digest of an image archive in the blob store: manifests[0] of the
 * layout's index.json.  -ENOENT when the archive has none (a plain rootfs archive:
 * the agent then names the archive digest itself).
 */
static int archive_manifest(struct pay *p, const char *image, uint8_t ret[SHA256_LEN])
{
	struct archive *a = NULL;
	struct archive_entry *e;
	_cleanup_free_ char *buf = NULL;
	const cJSON *m, *d;
	cJSON *idx = NULL;
	uint64_t size = 0;
	ssize_t n = 0;
	int fd = -1, r = -ENOENT;

	if (blobs_open_read(coord_blobs(p->c), image, &fd, &size) < 0)
		return -ENOENT;
	a = archive_read_new();
	if (!a) {
		close(fd);
		return -ENOMEM;
	}
	archive_read_support_format_tar(a);
	if (archive_read_open_fd(a, fd, 64 << 10) != ARCHIVE_OK)
		goto out;
	while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
		const char *name = archive_entry_pathname(e);

		if (!name || (strcmp(name, "index.json") != 0 && strcmp(name, "./index.json") != 0))
			continue;
		if (archive_entry_size(e) <= 0 || archive_entry_size(e) > PAY_INDEX_MAX)
			break;
		buf = malloc((size_t)archive_entry_size(e));
		if (!buf) {
			r = -ENOMEM;
			break;
		}
		n = archive_read_data(a, buf, (size_t)archive_entry_size(e));
		if (n != archive_entry_size(e))
			break;
		idx = cJSON_ParseWithLength(buf, (size_t)n);
		m = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(idx, "manifests"), 0);
		d = cJSON_GetObjectItemCaseSensitive(m, "digest");
		if (cJSON_IsString(d) && digest_parse(d->valuestring, ret) == 0)
			r = 0;
		break;
	}
out:
	cJSON_Delete(idx);
	archive_read_free(a);
	close(fd);
	return r;
}

/* Whether the record's image is the task's: the archive digest itself or its manifest's. */
static bool image_matches(struct pay *p, const char *image, const uint8_t archive[SHA256_LEN],
			  const uint8_t rec_image[SHA256_LEN])
{
	unsigned i;

	if (memcmp(archive, rec_image, SHA256_LEN) == 0)
		return true;
	for (i = 0; i < PAY_IMAGES; i++)
		if (p->images[i].known && memcmp(p->images[i].archive, archive, SHA256_LEN) == 0)
			return memcmp(p->images[i].manifest, rec_image, SHA256_LEN) == 0;
	i = p->next_image++ % PAY_IMAGES;
	if (archive_manifest(p, image, p->images[i].manifest) < 0)
		return false;
	memcpy(p->images[i].archive, archive, SHA256_LEN);
	p->images[i].known = true;
	return memcmp(p->images[i].manifest, rec_image, SHA256_LEN) == 0;
}

/* 0 valid, 1 refused (why says it), < 0 internal error. */
static int poc_check(struct pay *p, const struct pay_result *r, const struct usage_record *rec,
		     const uint8_t digest[32], const uint8_t rec_hash[32], char *why, size_t len)
{
	_cleanup_(pkey_freep) EVP_PKEY *pub = NULL;
	_cleanup_(verifier_freep) struct key_verifier *v = NULL;
	char node_id[NODE_ID_HEX_LEN + 1], task[24];
	const char *image = NULL;
	uint8_t img[SHA256_LEN];
	struct econ_task_window w;
	struct econ_usage use;
	enum econ_usage_fault fault;
	struct spec_fig f;
	int rc;

	task_name(task, r->task_id);
	if (key_from_raw_public(r->node_pubkey, &pub) < 0 || key_node_id(pub, node_id) < 0 ||
	    key_verifier_new(pub, &v) < 0)
		return errmsg(why, len, 1, "the node's certificate key is not an Ed25519 key");
	if (strcmp(node_id, r->node_id) != 0)
		return errmsg(why, len, 1, "the certificate's key is not node %.16s...",
			      r->node_id);
	if (strcmp(rec->node, r->node_id) != 0)
		return errmsg(why, len, 1, "the record is signed for another node");
	if (record_verify_line(r->record_line, r->record_len, rec, v) < 0)
		return errmsg(why, len, 1,
			      "the record's signature does not verify with the node's key");
	if (rec->type != RECORD_FINAL)
		return errmsg(why, len, 1, "not a final usage record");
	if (strcmp(rec->task, task) != 0 || rec->replica != r->replica)
		return errmsg(why, len, 1,
			      "the record is for task %.32s replica %" PRIu32
			      ", not task %s replica %" PRIu32,
			      rec->task, rec->replica, task, r->replica);
	if (r->renter && rec->renter[0] && strcmp(rec->renter, r->renter) != 0)
		return errmsg(why, len, 1, "the record names another renter");
	if (spec_figures(r->spec, &f, NULL, 0) < 0 || canon_get_str(r->spec, "image", &image) < 0 ||
	    digest_parse(image, img) < 0)
		return errmsg(why, len, 1, "the task's spec lacks its figures");
	if (!image_matches(p, image, img, rec->image))
		return errmsg(why, len, 1, "the record ran another image");
	/*
	 * The sandbox may be stricter than the spec, never looser.  Offers carry memory
	 * in whole MiB (mem_mb, rounded up), so the agent's limit is the spec's rounded up.
	 */
	if ((rec->limits.cpu_period_us &&
	     (unsigned __int128)rec->limits.cpu_quota_us >
		     (unsigned __int128)rec->limits.cpu_period_us * (uint64_t)f.cores) ||
	    (f.memory > 0 && rec->limits.mem_bytes > mib_round_up((uint64_t)f.memory)) ||
	    (rec->limits.timeout_ns > (uint64_t)f.wall_s * NS_PER_S))
		return errmsg(why, len, 1, "the record's limits are looser than the task's");
	if (rec->has_result && memcmp(rec->result, digest, SHA256_LEN) != 0)
		return errmsg(why, len, 1, "the result digest differs from the signed record's");
	if (rec->cpu_ns > INT64_MAX || rec->cpu_kernel_ns > INT64_MAX ||
	    rec->start_ns > INT64_MAX || rec->end_ns > INT64_MAX)
		return errmsg(why, len, 1, "impossible usage: figures out of range");
	w = (struct econ_task_window){.millicores = f.cores * 1000,
				      .max_cpu_ns = f.cpu_s * NS_PER_S,
				      .start_ns = r->dispatched_ns,
				      .end_ns = r->now_ns,
				      .clock_slack_ns = PAY_CLOCK_SLACK_NS};
	use = (struct econ_usage){.cpu_ns = (int64_t)rec->cpu_ns,
				  .kernel_cpu_ns = (int64_t)rec->cpu_kernel_ns,
				  .start_ns = (int64_t)rec->start_ns,
				  .end_ns = (int64_t)rec->end_ns};
	fault = econ_check_usage(&p->p, &w, &use);
	if (fault != ECON_USAGE_OK)
		return errmsg(why, len, 1, "impossible usage: %s", econ_usage_fault_str(fault));
	rc = pow_verify(task, digest, rec_hash, r->pow_nonce, r->pow_bits);
	if (rc == -EBADMSG)
		return errmsg(why, len, 1, "proof-of-work stamp below difficulty %u", r->pow_bits);
	if (rc < 0)
		return errmsg(why, len, 1, "proof-of-work stamp malformed");
	return 0;
}

/* A refused record: a decision entry, and the node's trust falls (-EEXIST: refused before). */
static int refuse(struct pay *p, const char *node, const uint8_t h[32], const char *why,
		  int64_t now_ns)
{
	int r = settle_refuse(p->l, node, h, why, now_ns, p->epoch);

	return r == -EEXIST ? 0 : r;
}

struct res_row {
	int64_t id;
	uint8_t hash[SHA256_LEN];
	char node[LEDGER_ACCOUNT_MAX + 1];
	char provider[LEDGER_ACCOUNT_MAX + 1];
	int64_t seq, cpu_ns, renew, price;
	uint8_t key[KEY_PUB_LEN];
	char *record;
	size_t record_len;
	uint8_t digest[SHA256_LEN];
};

static void rows_free(struct res_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(rows[i].record);
}

static void blob_copy(sqlite3_stmt *st, int col, uint8_t *out, size_t len)
{
	if ((size_t)sqlite3_column_bytes(st, col) == len)
		memcpy(out, sqlite3_column_blob(st, col), len);
	else
		memset(out, 0, len);
}

static int rows_load(struct pay *p, int64_t task_id, struct res_row *rows, size_t *ret_n)
{
	static const char sql[] =
		"SELECT id, record_hash, node, provider, node_seq, cpu_ns, renewable_ppm, price, "
		"node_key, record, digest FROM pay_results WHERE task = ?1 AND state = 0 "
		"ORDER BY id LIMIT 16";
	sqlite3_stmt *st = ledger_stmt(p->l, sql);
	size_t n = 0;
	int rc = SQLITE_DONE;

	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, task_id);
	while (n < PAY_MAX_RESULTS && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct res_row *x = &rows[n];
		const char *s;

		memset(x, 0, sizeof(*x));
		x->id = sqlite3_column_int64(st, 0);
		blob_copy(st, 1, x->hash, SHA256_LEN);
		s = (const char *)sqlite3_column_text(st, 2);
		snprintf(x->node, sizeof(x->node), "%s", s ? s : "");
		s = (const char *)sqlite3_column_text(st, 3);
		snprintf(x->provider, sizeof(x->provider), "%s", s ? s : "");
		x->seq = sqlite3_column_int64(st, 4);
		x->cpu_ns = sqlite3_column_int64(st, 5);
		x->renew = sqlite3_column_int64(st, 6);
		x->price = sqlite3_column_int64(st, 7);
		blob_copy(st, 8, x->key, KEY_PUB_LEN);
		s = (const char *)sqlite3_column_text(st, 9);
		x->record_len = (size_t)sqlite3_column_bytes(st, 9);
		x->record = strndup(s ? s : "", x->record_len);
		blob_copy(st, 10, x->digest, SHA256_LEN);
		n++;
		if (!x->record) {
			sqlite3_reset(st);
			rows_free(rows, n);
			return -ENOMEM;
		}
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		rows_free(rows, n);
		return ledger_sql_errno(rc);
	}
	*ret_n = n;
	return 0;
}

static int row_state(struct pay *p, int64_t id, int state, int64_t paid)
{
	static const char sql[] = "UPDATE pay_results SET state = ?2, paid = ?3 WHERE id = ?1";
	sqlite3_stmt *st = ledger_stmt(p->l, sql);

	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int(st, 2, state);
	sqlite3_bind_int64(st, 3, paid);
	return ledger_stmt_run(st);
}

/* Digest of the task's results already paid (the quorum's), 1 if there is one. */
static int paid_digest(struct pay *p, int64_t task_id, uint8_t ret[SHA256_LEN])
{
	static const char sql[] =
		"SELECT digest FROM pay_results WHERE task = ?1 AND state = 1 LIMIT 1";
	sqlite3_stmt *st = ledger_stmt(p->l, sql);
	int rc;

	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, task_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		blob_copy(st, 0, ret, SHA256_LEN);
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : ledger_sql_errno(rc);
}

/* The renter's replicas (what the escrow pays for); 0 without an escrow. */
static int escrow_replicas(struct pay *p, const char *task, int64_t *ret)
{
	static const char sql[] = "SELECT replicas FROM ledger_escrow WHERE task = ?1";
	sqlite3_stmt *st = ledger_stmt(p->l, sql);
	int rc;

	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, task, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	*ret = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : ledger_sql_errno(rc);
}

/*
 * Pay one winning result: out of the escrow while the renter's replicas last, then
 * (validation replicas the network added) out of the treasury, at price 0 when the
 * treasury cannot pay (the work still counts toward the epoch's rewards).
 * Returns 1 paid, 0 not payable (task closed, no escrow: *why says so).
 */
static int pay_row(struct pay *p, const char *task, const struct res_row *x, int64_t now_ns,
		   int64_t *ret_paid, const char **why)
{
	struct settle_usage_req u = {.task = task,
				     .node = x->node,
				     .node_seq = (uint64_t)x->seq,
				     .provider = x->provider,
				     .cpu_ns = x->cpu_ns,
				     .renewable_ppm = x->renew,
				     .time_ns = now_ns,
				     .epoch = p->epoch,
				     .price = x->price,
				     .record_line = x->record,
				     .record_len = x->record_len,
				     .node_pubkey = x->key};
	struct econ_fee_split fs = {0};
	int r;

	memcpy(u.record_hash, x->hash, SHA256_LEN);
	r = settle_usage(p->l, &p->p, &u, &fs);
	if (r == -ENOSPC) {
		u.payer = LEDGER_TREASURY;
		r = settle_usage(p->l, &p->p, &u, &fs);
	}
	if (r == -ENOSPC) {
		u.price = 0;
		r = settle_usage(p->l, &p->p, &u, &fs);
	}
	if (r == -ESTALE || r == -ENOENT || r == -EEXIST) {
		*why = r == -ESTALE   ? "the task's escrow was already closed"
		       : r == -ENOENT ? "the task has no escrow"
				      : "already settled";
		return 0;
	}
	if (r < 0)
		return r;
	*ret_paid = fs.provider;
	return 1;
}

/*
 * Decide the task's waiting results when they are all in (or final): quorum,
 * payment of the winners, slashing of the losers.  *ret is the verdict for the
 * result whose hash is cur (NULL: none wanted); err gets its reason.
 */
static int decide(struct pay *p, int64_t task_id, int64_t now_ns, bool final, const uint8_t *cur,
		  enum pay_verdict *ret, char *err, size_t errlen)
{
	struct res_row rows[PAY_MAX_RESULTS];
	uint8_t digests[PAY_MAX_RESULTS][SHA256_LEN], win[SHA256_LEN];
	struct store_task t = {0};
	char task[24], cause[8 + SHA256_HEX_LEN + 1];
	int64_t renter_reps = 0, expected = 1;
	size_t n = 0, wi = 0;
	bool no_quorum = false;
	int r, q;

	*ret = PAY_WAIT;
	task_name(task, task_id);
	r = rows_load(p, task_id, rows, &n);
	if (r < 0)
		return r;
	if (n == 0)
		return 0;
	r = paid_digest(p, task_id, win);
	if (r < 0)
		goto out;
	if (r == 0) {
		r = escrow_replicas(p, task, &renter_reps);
		if (r < 0)
			goto out;
		if (store_task_get(p->st, task_id, &t) >= 0)
			expected = t.replicas;
		store_task_clear(&t);
		if (!final && (int64_t)n < expected) {
			r = 0;
			goto out; /* other replicas still running */
		}
		for (size_t i = 0; i < n; i++)
			memcpy(digests[i], rows[i].digest, SHA256_LEN);
		q = n == 1 ? ECON_QUORUM_SINGLE : econ_quorum(digests, n, &wi);
		if (q < 0) {
			r = q;
			goto out;
		}
		if (q == ECON_QUORUM_NEED_MORE) {
			if (!final && expected < renter_reps + PAY_MAX_EXTRA &&
			    expected < SCHED_MAX_REPLICAS) {
				*ret = PAY_NEED_REPLICA;
				r = 0;
				goto out;
			}
			no_quorum = true;
		}
		memcpy(win, digests[wi], SHA256_LEN);
	}
	r = 0;
	for (size_t i = 0; i < n && r >= 0; i++) {
		const struct res_row *x = &rows[i];
		bool is_cur = cur && memcmp(cur, x->hash, SHA256_LEN) == 0;
		char hex[SHA256_HEX_LEN + 1];
		const char *why = NULL;
		int64_t paid = 0, cut = 0;

		if (no_quorum) {
			r = refuse(p, x->node, x->hash, "no quorum among the task's results",
				   now_ns);
			if (r >= 0)
				r = row_state(p, x->id, RES_REFUSED, 0);
			if (is_cur) {
				*ret = PAY_REFUSED;
				errmsg(err, errlen, 0, "no quorum among the task's %zu results", n);
			}
			continue;
		}
		if (memcmp(x->digest, win, SHA256_LEN) != 0) {
			/* outvoted: slashed; the entry names the record */
			hex_encode(x->hash, SHA256_LEN, hex);
			snprintf(cause, sizeof(cause), "record:%s", hex);
			r = settle_slash(p->l, &p->p, x->node, x->provider, cause, now_ns, p->epoch,
					 &cut);
			if (r == -EEXIST)
				r = 0;
			if (r >= 0)
				r = row_state(p, x->id, RES_REFUSED, 0);
			if (is_cur) {
				*ret = PAY_REFUSED;
				errmsg(err, errlen, 0, "outvoted by the quorum: result differs");
			}
			continue;
		}
		r = pay_row(p, task, x, now_ns, &paid, &why);
		if (r < 0)
			break;
		r = row_state(p, x->id, r == 1 ? RES_PAID : RES_REFUSED, paid);
		if (is_cur) {
			*ret = why ? PAY_REFUSED : PAY_SETTLED;
			if (why)
				errmsg(err, errlen, 0, "%s", why);
		}
	}
out:
	rows_free(rows, n);
	return r;
}

static int result_known(struct pay *p, const uint8_t h[32], const char *node, uint64_t seq,
			int64_t task_id)
{
	static const char sql[] = "SELECT 1 FROM pay_results WHERE record_hash = ?1 "
				  "OR (node = ?2 AND node_seq = ?3) OR (task = ?4 AND node = ?2)";
	sqlite3_stmt *st = ledger_stmt(p->l, sql);
	int rc;

	if (!st)
		return -EIO;
	sqlite3_bind_blob(st, 1, h, SHA256_LEN, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, node, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (int64_t)seq);
	sqlite3_bind_int64(st, 4, task_id);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : ledger_sql_errno(rc);
}

static int result_insert(struct pay *p, const struct pay_result *r, const struct usage_record *rec,
			 const uint8_t h[32], const uint8_t digest[32])
{
	static const char sql[] =
		"INSERT INTO pay_results(record_hash, task, replica, node, provider, node_seq, "
		"node_key, record, cpu_ns, renewable_ppm, price, digest, state, paid) "
		"VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 0, 0)";
	sqlite3_stmt *st = ledger_stmt(p->l, sql);

	if (!st)
		return -EIO;
	sqlite3_bind_blob(st, 1, h, SHA256_LEN, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, r->task_id);
	sqlite3_bind_int64(st, 3, r->replica);
	sqlite3_bind_text(st, 4, r->node_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, r->provider, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, (int64_t)rec->seq);
	sqlite3_bind_blob(st, 7, r->node_pubkey, KEY_PUB_LEN, SQLITE_STATIC);
	sqlite3_bind_text(st, 8, r->record_line, (int)r->record_len, SQLITE_STATIC);
	sqlite3_bind_int64(st, 9, (int64_t)rec->cpu_ns);
	sqlite3_bind_int64(st, 10, r->renewable_ppm);
	sqlite3_bind_int64(st, 11, r->price);
	sqlite3_bind_blob(st, 12, digest, SHA256_LEN, SQLITE_STATIC);
	return ledger_stmt_run(st);
}

int pay_on_result(struct pay *p, const struct pay_result *r, enum pay_verdict *ret, char *err,
		  size_t errlen)
{
	uint8_t h[SHA256_LEN], digest[SHA256_LEN] = {0};
	struct usage_record rec;
	struct ledger_unit u;
	enum pay_verdict v = PAY_REFUSED;
	const char *perr = NULL;
	char why[200];
	int rc;

	if (!r || !ret || r->task_id <= 0 || !r->record_line || r->record_len == 0 ||
	    r->record_len > RECORD_LINE_MAX || memchr(r->record_line, '\0', r->record_len) ||
	    !r->node_pubkey || !r->node_id || !ledger_account_valid(r->node_id) ||
	    strchr(r->node_id, ':') || !owner_ok(r->provider) || r->renewable_ppm < 0 ||
	    r->renewable_ppm > ECON_PPM || r->price < 0 || r->price > ECON_MAX_AMOUNT ||
	    r->pow_bits > POW_MAX_BITS || !r->spec)
		return errmsg(err, errlen, -EINVAL, "settlement: malformed result");
	if (r->result_digest && digest_parse(r->result_digest, digest) < 0)
		return errmsg(err, errlen, -EINVAL, "settlement: malformed result digest");
	sha256(r->record_line, r->record_len, h);

	rc = op_begin(p, &u);
	if (rc < 0)
		return rc;
	if (record_parse(r->record_line, r->record_len, &rec, &perr) < 0) {
		snprintf(why, sizeof(why), "the usage record does not parse: %s",
			 perr ? perr : "malformed");
		rc = refuse(p, r->node_id, h, why, r->now_ns);
		errmsg(err, errlen, 0, "%s", why);
		goto out;
	}
	/* replays pay nothing and cost the node nothing: the front may retry */
	rc = ledger_usage_seen(p->l, h, rec.node, rec.seq);
	if (rc > 0) {
		errmsg(err, errlen, 0, "the usage record was already settled");
		rc = 0;
		goto out;
	}
	if (rc >= 0)
		rc = result_known(p, h, rec.node, rec.seq, r->task_id);
	if (rc > 0) {
		errmsg(err, errlen, 0,
		       "a result with this record, sequence or node was already received");
		rc = 0;
		goto out;
	}
	if (rc < 0)
		goto out;
	rc = poc_check(p, r, &rec, digest, h, why, sizeof(why));
	if (rc < 0)
		goto out;
	if (rc > 0) {
		rc = refuse(p, r->node_id, h, why, r->now_ns);
		errmsg(err, errlen, 0, "%s", why);
		goto out;
	}
	rc = result_insert(p, r, &rec, h, digest);
	if (rc >= 0)
		rc = decide(p, r->task_id, r->now_ns, false, h, &v, err, errlen);
out:
	rc = op_end(p, &u, rc);
	if (rc < 0)
		return errmsg(err, errlen, rc, "settlement: %s", strerror(-rc));
	*ret = v;
	return 0;
}

bool pay_want_replica(struct pay *p, const char *node_id)
{
	struct econ_trust t;

	if (!node_id || settle_trust(p->l, node_id, &t) < 0)
		return true; /* unknown: validate */
	return econ_should_replicate(&p->p, &t, rnd64(p));
}

int pay_on_task_end(struct pay *p, int64_t task_id, int64_t now_ns, int64_t *ret_refund)
{
	enum pay_verdict v;
	struct ledger_unit u;
	char task[24];
	int64_t refund = 0;
	int r;

	if (task_id <= 0 || now_ns < 0)
		return -EINVAL;
	task_name(task, task_id);
	r = op_begin(p, &u);
	if (r < 0)
		return r;
	r = decide(p, task_id, now_ns, true, NULL, &v, NULL, 0);
	if (r >= 0) {
		r = settle_escrow_close(p->l, task, now_ns, p->epoch, &refund);
		if (r == -EEXIST || r == -ENOENT) /* closed before, or never escrowed */
			r = 0;
	}
	r = op_end(p, &u, r);
	if (r >= 0 && ret_refund)
		*ret_refund = refund;
	return r;
}

/* ---- epochs and checkpoints ---- */

static int write_file_atomic(const char *dir, const char *name, const char *text)
{
	_cleanup_free_ char *tmp = NULL, *path = NULL;
	size_t len = strlen(text), off = 0;
	int fd, r = 0;

	if (asprintf(&tmp, "%s/.%s.tmp", dir, name) < 0 || asprintf(&path, "%s/%s", dir, name) < 0)
		return -ENOMEM;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return -errno;
	while (off < len && r == 0) {
		ssize_t k = write(fd, text + off, len - off);

		if (k < 0 && errno != EINTR)
			r = -errno;
		else if (k > 0)
			off += (size_t)k;
	}
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	close(fd);
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0)
		unlink(tmp);
	return r;
}

static int checkpoint_write(struct pay *p)
{
	_cleanup_free_ char *note = NULL;
	char name[48];
	uint64_t size = 0;
	uint8_t head[SHA256_LEN];
	int r;

	if (!p->key)
		return 0;
	ledger_head(p->l, &size, head);
	if (size == p->cp_size)
		return 0;
	r = ledger_checkpoint(p->l, p->key, p->origin, &note);
	if (r < 0)
		return r;
	if (p->cp_dir) {
		snprintf(name, sizeof(name), "checkpoint.%020" PRIu64, size);
		r = write_file_atomic(p->cp_dir, name, note);
		if (r >= 0)
			r = write_file_atomic(p->cp_dir, "checkpoint", note);
		if (r < 0)
			return r;
	}
	p->cp_size = size;
	return 0;
}

int pay_tick(struct pay *p, int64_t now_ns, uint64_t demand_millicores, uint64_t supply_millicores)
{
	struct settle_epoch_result res;
	struct econ_params np = p->p;
	struct ledger_unit u;
	uint64_t epoch = p->epoch;
	int64_t start = p->epoch_start, mult = p->mult_ppm;
	bool closed = false;
	int r, n = 0;

	if (now_ns < 0)
		return -EINVAL;
	r = op_begin(p, &u);
	if (r < 0)
		return r;
	r = gov_release(p->l, now_ns, epoch);
	if (r >= 0 && now_ns >= start + p->p.epoch_ns) {
		r = settle_epoch_close(p->l, &p->p, epoch, now_ns, &res);
		if (r >= 0)
			r = settle_epoch_price(p->l, &p->p, epoch + 1, demand_millicores,
					       supply_millicores, now_ns, &mult, NULL);
		if (r >= 0) {
			epoch++;
			start = now_ns;
			closed = true;
			r = meta_set(p, "pay_epoch", (int64_t)epoch);
		}
		if (r >= 0)
			r = meta_set(p, "pay_epoch_start_ns", start);
	}
	if (r >= 0)
		r = n = gov_tick(p->l, now_ns, epoch);
	if (r >= 0 && n > 0)
		r = gov_params(p->l, &np);
	r = op_end(p, &u, r);
	if (r < 0)
		return r;
	p->epoch = epoch;
	p->epoch_start = start;
	p->mult_ppm = mult;
	p->p = np;
	p->pow_bits = econ_pow_bits(&p->p, mult);
	r = coord_flush(p->c);
	if (r < 0)
		return r;
	r = checkpoint_write(p);
	if (r < 0)
		return r;
	return closed ? 1 : 0;
}

/* ---- requests ---- */

static int balance_of(struct pay *p, const char *prefix, const char *owner, int64_t *ret)
{
	char acct[LEDGER_ACCOUNT_MAX + 16];

	snprintf(acct, sizeof(acct), "%s%s", prefix, owner);
	*ret = 0;
	return ledger_balance(p->l, acct, ret);
}

int pay_balance(struct pay *p, const char *account, cJSON **ret)
{
	static const char sql[] =
		"SELECT coalesce(sum(b.balance), 0) FROM ledger_escrow e JOIN ledger_balances b "
		"ON b.account = 'escrow:' || e.task WHERE e.renter = ?1 AND e.closed = 0";
	int64_t bal = 0, esc = 0, stake = 0, unb = 0;
	sqlite3_stmt *st;
	cJSON *o;
	int r, rc;

	if (!owner_ok(account))
		return -EINVAL;
	r = balance_of(p, "", account, &bal);
	if (r >= 0)
		r = balance_of(p, "stake:", account, &stake);
	if (r >= 0)
		r = balance_of(p, "unbond:", account, &unb);
	if (r < 0)
		return r;
	st = ledger_stmt(p->l, sql);
	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, account, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		esc = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return ledger_sql_errno(rc);
	o = cJSON_CreateObject();
	if (!o || !cJSON_AddStringToObject(o, "account", account) ||
	    canon_add_i64(o, "balance", bal) < 0 || canon_add_i64(o, "escrow", esc) < 0 ||
	    canon_add_i64(o, "stake", stake) < 0 || canon_add_i64(o, "unbonding", unb) < 0) {
		cJSON_Delete(o);
		return -ENOMEM;
	}
	*ret = o;
	return 0;
}

/* The node's decided results, newest first: what each paid (or that it was refused). */
static int node_earnings(struct pay *p, const char *node_id, cJSON *arr)
{
	static const char sql[] =
		"SELECT task, replica, cpu_ns, price, paid, state FROM pay_results "
		"WHERE node = ?1 AND state != 0 ORDER BY id DESC LIMIT ?2";
	sqlite3_stmt *st = ledger_stmt(p->l, sql);
	int rc, r = 0;

	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, node_id, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, PAY_NODE_EARNINGS);
	while (r >= 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		cJSON *e = cJSON_CreateObject();
		char task[24];

		if (!e || !cJSON_AddItemToArray(arr, e)) {
			cJSON_Delete(e);
			r = -ENOMEM;
			break;
		}
		snprintf(task, sizeof(task), "%lld", (long long)sqlite3_column_int64(st, 0));
		if (!cJSON_AddStringToObject(e, "task_id", task) ||
		    canon_add_i64(e, "replica", sqlite3_column_int64(st, 1)) < 0 ||
		    canon_add_i64(e, "cpu_ns", sqlite3_column_int64(st, 2)) < 0 ||
		    canon_add_i64(e, "price", sqlite3_column_int64(st, 3)) < 0 ||
		    canon_add_i64(e, "paid", sqlite3_column_int64(st, 4)) < 0 ||
		    !cJSON_AddStringToObject(e, "state",
					     sqlite3_column_int64(st, 5) == RES_PAID ? "paid"
										     : "refused"))
			r = -ENOMEM;
	}
	if (r >= 0 && rc != SQLITE_DONE)
		r = ledger_sql_errno(rc);
	sqlite3_reset(st);
	return r;
}

int pay_node(struct pay *p, const char *node_id, cJSON **ret)
{
	static const char sql[] =
		"SELECT coalesce(sum(paid), 0), coalesce(sum(cpu_ns), 0), count(*), "
		"coalesce(sum(state = 2), 0) FROM pay_results WHERE node = ?1 AND state != 0";
	int64_t earned = 0, cpu = 0, results = 0, refused = 0, milli = 0;
	uint64_t nrat = 0;
	struct econ_trust t;
	sqlite3_stmt *st;
	cJSON *o, *tr, *arr;
	int r, rc;

	if (!node_id || !ledger_account_valid(node_id))
		return -EINVAL;
	r = settle_trust(p->l, node_id, &t);
	if (r >= 0)
		r = settle_rating(p->l, &p->p, node_id, &milli, &nrat);
	if (r < 0)
		return r;
	st = ledger_stmt(p->l, sql);
	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, node_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		earned = sqlite3_column_int64(st, 0);
		cpu = sqlite3_column_int64(st, 1);
		results = sqlite3_column_int64(st, 2);
		refused = sqlite3_column_int64(st, 3);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return ledger_sql_errno(rc);
	o = cJSON_CreateObject();
	tr = cJSON_CreateObject();
	if (!o || !tr || !cJSON_AddItemToObject(o, "trust", tr)) {
		cJSON_Delete(o);
		cJSON_Delete(tr);
		return -ENOMEM;
	}
	if (!cJSON_AddStringToObject(o, "node", node_id) ||
	    canon_add_i64(o, "earned", earned) < 0 || canon_add_i64(o, "cpu_ns", cpu) < 0 ||
	    canon_add_i64(o, "results", results) < 0 || canon_add_i64(o, "refused", refused) < 0 ||
	    canon_add_i64(o, "rating_milli", milli) < 0 || canon_add_u64(o, "ratings", nrat) < 0 ||
	    canon_add_u64(tr, "valid", t.valid_total) < 0 ||
	    canon_add_u64(tr, "streak", t.valid_streak) < 0 ||
	    canon_add_u64(tr, "invalid", t.invalid_total) < 0 ||
	    canon_add_i64(tr, "reputation_ppm", econ_reputation_ppm(&t)) < 0) {
		cJSON_Delete(o);
		return -ENOMEM;
	}
	arr = cJSON_AddArrayToObject(o, "earnings");
	r = arr ? node_earnings(p, node_id, arr) : -ENOMEM;
	if (r < 0) {
		cJSON_Delete(o);
		return r;
	}
	*ret = o;
	return 0;
}

int pay_rate(struct pay *p, int64_t task_id, const char *renter, const char *node_id, int stars,
	     char *err, size_t errlen)
{
	struct ledger_unit u;
	char task[24];
	int r;

	if (task_id <= 0 || !owner_ok(renter) || !node_id || !ledger_account_valid(node_id) ||
	    stars < 1 || stars > 5)
		return errmsg(err, errlen, -EINVAL, "rate: 1 to 5 stars for a task and a node");
	task_name(task, task_id);
	r = op_begin(p, &u);
	if (r < 0)
		return r;
	r = settle_rate(p->l, task, renter, node_id, stars);
	r = op_end(p, &u, r);
	if (r == -EPERM)
		return errmsg(err, errlen, r,
			      "rate: task %s is not yours or nothing of it was settled "
			      "on that node",
			      task);
	if (r == -EEXIST)
		return errmsg(err, errlen, r, "rate: already rated");
	if (r < 0)
		return errmsg(err, errlen, r, "rate: %s", strerror(-r));
	return 0;
}

int pay_rating(struct pay *p, const char *node_id, int64_t *ret_milli, uint64_t *ret_count)
{
	if (!node_id || !ledger_account_valid(node_id))
		return -EINVAL;
	return settle_rating(p->l, &p->p, node_id, ret_milli, ret_count);
}

/* A cause unique to this request: the ledger entry number it will get. */
static void req_cause(struct pay *p, const char *what, const char *account, char *buf, size_t len)
{
	uint64_t size = 0;
	uint8_t head[SHA256_LEN];

	ledger_head(p->l, &size, head);
	snprintf(buf, len, "%s:%s@%" PRIu64, what, account, size + 1);
}

int pay_stake(struct pay *p, const char *account, int64_t amount, int64_t now_ns, char *err,
	      size_t errlen)
{
	char cause[LEDGER_CAUSE_MAX + 1], a1[ECON_AICN_STR], a2[ECON_AICN_STR];
	struct ledger_unit u;
	int64_t bal = 0;
	int r;

	if (!owner_ok(account) || amount <= 0 || amount > ECON_MAX_AMOUNT)
		return errmsg(err, errlen, -EINVAL, "stake: a positive amount");
	req_cause(p, "stake", account, cause, sizeof(cause));
	r = op_begin(p, &u);
	if (r < 0)
		return r;
	r = gov_stake(p->l, account, amount, cause, now_ns, p->epoch);
	r = op_end(p, &u, r);
	if (r == -ENOSPC) {
		ledger_balance(p->l, account, &bal);
		return errmsg(err, errlen, r,
			      "insufficient funds: balance %s AICN, stake needs %s AICN",
			      econ_format_aicn(bal, a1), econ_format_aicn(amount, a2));
	}
	if (r < 0)
		return errmsg(err, errlen, r, "stake: %s", strerror(-r));
	return 0;
}

int pay_unstake(struct pay *p, const char *account, int64_t amount, int64_t now_ns, char *err,
		size_t errlen, int64_t *ret_release_ns)
{
	char cause[LEDGER_CAUSE_MAX + 1], a1[ECON_AICN_STR];
	struct ledger_unit u;
	int64_t st = 0;
	int r;

	if (!owner_ok(account) || amount <= 0 || amount > ECON_MAX_AMOUNT)
		return errmsg(err, errlen, -EINVAL, "unstake: a positive amount");
	req_cause(p, "unstake", account, cause, sizeof(cause));
	r = op_begin(p, &u);
	if (r < 0)
		return r;
	r = gov_unstake(p->l, account, amount, cause, now_ns, p->epoch, ret_release_ns);
	r = op_end(p, &u, r);
	if (r == -ENOSPC) {
		balance_of(p, "stake:", account, &st);
		return errmsg(err, errlen, r, "unstake: only %s AICN staked",
			      econ_format_aicn(st, a1));
	}
	if (r < 0)
		return errmsg(err, errlen, r, "unstake: %s", strerror(-r));
	return 0;
}

int pay_propose(struct pay *p, const char *account, const char *param, int64_t value,
		const char *text, int64_t now_ns, cJSON **ret, char *err, size_t errlen)
{
	struct ledger_unit u;
	char a1[ECON_AICN_STR];
	int64_t id = 0;
	cJSON *o;
	int r;

	if (!owner_ok(account) || !param)
		return errmsg(err, errlen, -EINVAL, "propose: a parameter and a value");
	if (text && (strlen(text) > GOV_TEXT_MAX || !ledger_cause_valid(text)))
		return errmsg(err, errlen, -EINVAL,
			      "propose: text: at most %d printable ASCII bytes", GOV_TEXT_MAX);
	r = op_begin(p, &u);
	if (r < 0)
		return r;
	r = gov_propose(p->l, account, param, value, text, now_ns, p->epoch, &id);
	r = op_end(p, &u, r);
	switch (r) {
	case 0:
		break;
	case -ENOENT:
		return errmsg(err, errlen, r, "propose: unknown parameter %.64s", param);
	case -ERANGE:
		return errmsg(err, errlen, r, "propose: %.64s: value out of range", param);
	case -EINVAL:
		return errmsg(err, errlen, r, "propose: %.64s: value inconsistent with the others",
			      param);
	case -EPERM:
		return errmsg(err, errlen, r, "propose: needs at least %s AICN staked",
			      econ_format_aicn(p->p.gov_min_stake ? p->p.gov_min_stake : 1, a1));
	default:
		return errmsg(err, errlen, r, "propose: %s", strerror(-r));
	}
	o = cJSON_CreateObject();
	if (!o || canon_add_i64(o, "proposal", id) < 0 ||
	    !cJSON_AddStringToObject(o, "param", param) || canon_add_i64(o, "value", value) < 0 ||
	    canon_add_i64(o, "ends_ns", now_ns + p->p.gov_voting_ns) < 0) {
		cJSON_Delete(o);
		return -ENOMEM;
	}
	*ret = o;
	return 0;
}

int pay_vote(struct pay *p, const char *account, int64_t proposal, bool yes, int64_t now_ns,
	     char *err, size_t errlen)
{
	struct ledger_unit u;
	int r;

	if (!owner_ok(account))
		return errmsg(err, errlen, -EINVAL, "vote: account %.64s cannot vote", account);
	r = op_begin(p, &u);
	if (r < 0)
		return r;
	r = gov_vote(p->l, proposal, account, yes, now_ns, p->epoch);
	r = op_end(p, &u, r);
	switch (r) {
	case 0:
		return 0;
	case -EEXIST:
		return errmsg(err, errlen, r, "vote: already voted on proposal %" PRId64, proposal);
	case -ESTALE:
		return errmsg(err, errlen, r, "vote: proposal %" PRId64 " is closed", proposal);
	case -EPERM:
		return errmsg(err, errlen, r, "vote: only stakers vote");
	case -ENOENT:
		return errmsg(err, errlen, r, "vote: no proposal %" PRId64, proposal);
	default:
		return errmsg(err, errlen, r, "vote: %s", strerror(-r));
	}
}

int pay_proposals(struct pay *p, cJSON **ret)
{
	static const char *const states[] = {"open", "passed", "failed", "not_applied"};
	static const char sql[] =
		"SELECT p.id, p.proposer, p.param, p.value, p.end_ns, p.state, "
		"coalesce(sum(CASE WHEN v.yes THEN v.weight END), 0), "
		"coalesce(sum(CASE WHEN v.yes THEN 0 ELSE v.weight END), 0) "
		"FROM ledger_proposals p LEFT JOIN ledger_votes v ON v.proposal = p.id "
		"GROUP BY p.id ORDER BY p.id DESC LIMIT 256";
	sqlite3_stmt *st = ledger_stmt(p->l, sql);
	cJSON *arr;
	int rc;

	if (!st)
		return -EIO;
	arr = cJSON_CreateArray();
	if (!arr)
		return -ENOMEM;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *who = (const char *)sqlite3_column_text(st, 1);
		const char *par = (const char *)sqlite3_column_text(st, 2);
		int64_t s = sqlite3_column_int64(st, 5);
		cJSON *o = cJSON_CreateObject();

		if (!o || !cJSON_AddItemToArray(arr, o) ||
		    canon_add_i64(o, "proposal", sqlite3_column_int64(st, 0)) < 0 ||
		    !cJSON_AddStringToObject(o, "proposer", who ? who : "") ||
		    !cJSON_AddStringToObject(o, "param", par ? par : "") ||
		    canon_add_i64(o, "value", sqlite3_column_int64(st, 3)) < 0 ||
		    canon_add_i64(o, "ends_ns", sqlite3_column_int64(st, 4)) < 0 ||
		    !cJSON_AddStringToObject(o, "state", s >= 0 && s < 4 ? states[s] : "unknown") ||
		    canon_add_i64(o, "yes", sqlite3_column_int64(st, 6)) < 0 ||
		    canon_add_i64(o, "no", sqlite3_column_int64(st, 7)) < 0) {
			cJSON_Delete(o);
			rc = SQLITE_NOMEM;
			break;
		}
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		cJSON_Delete(arr);
		return rc == SQLITE_NOMEM ? -ENOMEM : -EIO;
	}
	*ret = arr;
	return 0;
}

int pay_mint(struct pay *p, const char *account, int64_t amount, const char *cause, int64_t now_ns)
{
	char c[LEDGER_CAUSE_MAX + 1];
	struct ledger_unit u;
	int r;

	if (!owner_ok(account) || amount <= 0 || amount > ECON_MAX_AMOUNT ||
	    (cause && !ledger_cause_valid(cause)))
		return -EINVAL;
	if (!cause) {
		req_cause(p, "faucet", account, c, sizeof(c));
		cause = c;
	}
	r = op_begin(p, &u);
	if (r < 0)
		return r;
	r = settle_mint(p->l, account, amount, cause, now_ns, p->epoch);
	return op_end(p, &u, r);
}
