/* settle.c -- settlement on the ledger: mint, escrow, charge validated usage, refund, slash, epoch rewards, trust, ratings. */
#include "settle.h"

#include <aicn/canon.h>
#include <aicn/compiler.h>
#include <aicn/hash.h>
#include <aicn/key.h>
#include <aicn/record.h>
#include <openssl/evp.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int name2(char *buf, size_t len, const char *prefix, const char *s)
{
	int n = snprintf(buf, len, "%s%s", prefix, s);

	if (n < 0 || (size_t)n >= len)
		return -EINVAL;
	return 0;
}

static int trust_update(struct ledger *l, const char *node, bool valid)
{
	static const char sql_valid[] =
		"INSERT INTO ledger_trust(node, valid_total, valid_streak, invalid_total) "
		"VALUES(?1, 1, 1, 0) ON CONFLICT(node) DO UPDATE SET "
		"valid_total = valid_total + 1, valid_streak = valid_streak + 1";
	static const char sql_invalid[] =
		"INSERT INTO ledger_trust(node, valid_total, valid_streak, invalid_total) "
		"VALUES(?1, 0, 0, 1) ON CONFLICT(node) DO UPDATE SET "
		"invalid_total = invalid_total + 1, valid_streak = 0";
	sqlite3_stmt *st = ledger_stmt(l, valid ? sql_valid : sql_invalid);

	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, node, -1, SQLITE_STATIC);
	return ledger_stmt_run(st);
}

int settle_trust(struct ledger *l, const char *node, struct econ_trust *ret)
{
	static const char sql[] =
		"SELECT valid_total, valid_streak, invalid_total FROM ledger_trust WHERE node = ?1";
	sqlite3_stmt *st = ledger_stmt(l, sql);
	int rc;

	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, node, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	*ret = (struct econ_trust){0, 0, 0};
	if (rc == SQLITE_ROW) {
		ret->valid_total = (uint64_t)sqlite3_column_int64(st, 0);
		ret->valid_streak = (uint64_t)sqlite3_column_int64(st, 1);
		ret->invalid_total = (uint64_t)sqlite3_column_int64(st, 2);
	}
	sqlite3_reset(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : ledger_sql_errno(rc);
}

/* ---- mint, transfer ---- */

int settle_mint(struct ledger *l, const char *account, int64_t amount, const char *cause,
		int64_t time_ns, uint64_t epoch)
{
	struct ledger_posting ps[2] = {{LEDGER_MINT, -amount}, {account, amount}};
	struct ledger_append_args a = {.kind = "mint",
				       .cause = cause,
				       .time_ns = time_ns,
				       .epoch = epoch,
				       .postings = ps,
				       .n_postings = 2};

	if (amount <= 0 || amount > ECON_MAX_AMOUNT || !ledger_account_valid(account) ||
	    strcmp(account, LEDGER_MINT) == 0)
		return -EINVAL;
	return ledger_append(l, &a, NULL);
}

int settle_transfer(struct ledger *l, const char *from, const char *to, int64_t amount,
		    const char *cause, int64_t time_ns, uint64_t epoch)
{
	struct ledger_posting ps[2] = {{from, -amount}, {to, amount}};
	struct ledger_append_args a = {.kind = "transfer",
				       .cause = cause,
				       .time_ns = time_ns,
				       .epoch = epoch,
				       .postings = ps,
				       .n_postings = 2};

	if (amount <= 0 || amount > ECON_MAX_AMOUNT || !from || !to || strcmp(from, to) == 0 ||
	    strcmp(from, LEDGER_MINT) == 0 || strcmp(to, LEDGER_MINT) == 0)
		return -EINVAL;
	return ledger_append(l, &a, NULL);
}

/* ---- escrow ---- */

static bool task_valid(const char *task)
{
	return task && strlen(task) <= SETTLE_TASK_MAX && ledger_account_valid(task);
}

int settle_escrow_open(struct ledger *l, const struct settle_escrow_req *req, int64_t *ret_amount)
{
	static const char sql[] = "INSERT INTO ledger_escrow(task, renter, price, max_cpu_ns, "
				  "replicas, settled, closed) VALUES(?1, ?2, ?3, ?4, ?5, 0, 0)";
	_cleanup_json_ cJSON *data = NULL;
	char acct[LEDGER_ACCOUNT_MAX + 1], cause[LEDGER_CAUSE_MAX + 1];
	struct ledger_posting ps[2];
	struct ledger_append_args a;
	struct ledger_unit u;
	sqlite3_stmt *st;
	int64_t amount;
	int r;

	if (!task_valid(req->task) || !ledger_account_valid(req->renter) ||
	    strncmp(req->renter, "escrow:", 7) == 0 || strcmp(req->renter, LEDGER_MINT) == 0)
		return -EINVAL;
	r = econ_escrow_amount(req->max_cpu_ns, req->price_per_cpu_hour, req->replicas, &amount);
	if (r < 0)
		return -EINVAL;
	if (name2(acct, sizeof(acct), "escrow:", req->task) < 0 ||
	    name2(cause, sizeof(cause), "task:", req->task) < 0)
		return -EINVAL;
	data = cJSON_CreateObject();
	if (!data || canon_add_i64(data, "price", req->price_per_cpu_hour) < 0 ||
	    canon_add_i64(data, "max_cpu_ns", req->max_cpu_ns) < 0 ||
	    canon_add_u64(data, "replicas", req->replicas) < 0 ||
	    !cJSON_AddStringToObject(data, "renter", req->renter))
		return -ENOMEM;
	ps[0] = (struct ledger_posting){req->renter, -amount};
	ps[1] = (struct ledger_posting){acct, amount};
	a = (struct ledger_append_args){.kind = "escrow",
					.cause = cause,
					.time_ns = req->time_ns,
					.epoch = req->epoch,
					.postings = ps,
					.n_postings = amount ? 2 : 0,
					.data = data};
	r = ledger_unit_begin(l, &u);
	if (r < 0)
		return r;
	r = ledger_append(l, &a, NULL);
	if (r >= 0) {
		st = ledger_stmt(l, sql);
		if (!st) {
			r = -EIO;
		} else {
			sqlite3_bind_text(st, 1, req->task, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 2, req->renter, -1, SQLITE_STATIC);
			sqlite3_bind_int64(st, 3, req->price_per_cpu_hour);
			sqlite3_bind_int64(st, 4, req->max_cpu_ns);
			sqlite3_bind_int64(st, 5, req->replicas);
			r = ledger_stmt_run(st);
		}
	}
	r = ledger_unit_end(l, &u, r);
	if (r >= 0 && ret_amount)
		*ret_amount = amount;
	return r;
}

struct escrow_row {
	char renter[LEDGER_ACCOUNT_MAX + 1];
	int64_t price, max_cpu_ns, replicas, settled, closed;
};

static int escrow_get(struct ledger *l, const char *task, struct escrow_row *e)
{
	static const char sql[] = "SELECT renter, price, max_cpu_ns, replicas, settled, closed "
				  "FROM ledger_escrow WHERE task = ?1";
	sqlite3_stmt *st = ledger_stmt(l, sql);
	int rc, r = 0;

	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, task, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *s = (const char *)sqlite3_column_text(st, 0);

		snprintf(e->renter, sizeof(e->renter), "%s", s ? s : "");
		e->price = sqlite3_column_int64(st, 1);
		e->max_cpu_ns = sqlite3_column_int64(st, 2);
		e->replicas = sqlite3_column_int64(st, 3);
		e->settled = sqlite3_column_int64(st, 4);
		e->closed = sqlite3_column_int64(st, 5);
	} else {
		r = rc == SQLITE_DONE ? -ENOENT : ledger_sql_errno(rc);
	}
	sqlite3_reset(st);
	return r;
}

int settle_usage(struct ledger *l, const struct econ_params *p, const struct settle_usage_req *u,
		 struct econ_fee_split *ret_split)
{
	static const char sql_esc[] =
		"UPDATE ledger_escrow SET settled = settled + 1 WHERE task = ?1";
	static const char sql_work[] =
		"INSERT INTO ledger_work(epoch, node, provider, cpu_ns, renewable_ppm) "
		"VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(epoch, node) DO UPDATE SET "
		"cpu_ns = cpu_ns + excluded.cpu_ns, provider = excluded.provider, "
		"renewable_ppm = excluded.renewable_ppm";
	_cleanup_json_ cJSON *data = NULL;
	char acct[LEDGER_ACCOUNT_MAX + 1], cause[8 + SHA256_HEX_LEN];
	char hex[SHA256_HEX_LEN + 1];
	struct ledger_posting ps[5];
	struct ledger_usage_ref ref;
	struct ledger_append_args a;
	struct econ_fee_split fs;
	struct escrow_row e = {0};
	struct ledger_unit unit;
	int64_t charge, escrow_left, work_ns, price;
	const char *payer;
	bool treasury;
	size_t n = 0;
	sqlite3_stmt *st;
	int r;

	if (u->record_line) {
		uint8_t h[SHA256_LEN];

		if (!u->node_pubkey || u->record_len == 0 || u->record_len > RECORD_LINE_MAX ||
		    memchr(u->record_line, '\0', u->record_len))
			return -EINVAL;
		sha256(u->record_line, u->record_len, h);
		if (memcmp(h, u->record_hash, SHA256_LEN) != 0)
			return -EINVAL;
	}
	treasury = u->payer && strcmp(u->payer, LEDGER_TREASURY) == 0;
	if ((u->payer && !treasury) || (u->price < 0 && u->price != SETTLE_PRICE_ESCROW) ||
	    u->price > ECON_MAX_AMOUNT)
		return -EINVAL;
	if (!task_valid(u->task) || !ledger_account_valid(u->node) ||
	    !ledger_account_valid(u->provider) || u->cpu_ns < 0 || u->cpu_ns > ECON_MAX_CPU_NS ||
	    u->renewable_ppm < 0 || u->renewable_ppm > ECON_PPM || u->node_seq > INT64_MAX ||
	    u->epoch > INT64_MAX)
		return -EINVAL;
	if (name2(acct, sizeof(acct), "escrow:", u->task) < 0)
		return -EINVAL;
	hex_encode(u->record_hash, SHA256_LEN, hex);
	snprintf(cause, sizeof(cause), "record:%s", hex);

	r = ledger_unit_begin(l, &unit);
	if (r < 0)
		return r;
	/* a replayed record is refused before anything else is looked at */
	r = ledger_usage_seen(l, u->record_hash, u->node, u->node_seq);
	if (r > 0)
		r = -EEXIST;
	if (r >= 0)
		r = escrow_get(l, u->task, &e);
	if (r >= 0 && e.closed)
		r = -ESTALE;
	if (r >= 0 && !treasury && e.settled >= e.replicas)
		r = -ENOSPC;
	price = u->price == SETTLE_PRICE_ESCROW || u->price > e.price ? e.price : u->price;
	payer = treasury ? LEDGER_TREASURY : acct;
	if (r >= 0)
		r = econ_charge(u->cpu_ns, e.max_cpu_ns, price, &charge) < 0 ? -EINVAL : 0;
	if (r >= 0)
		r = ledger_balance(l, payer, &escrow_left);
	if (r >= 0 && charge > escrow_left)
		r = -ENOSPC; /* escrow: cannot happen (rounds up, charges round down) */
	if (r >= 0)
		r = econ_fee_split(p, charge, &fs) < 0 ? -EINVAL : 0;
	if (r < 0)
		goto out;

	if (charge)
		ps[n++] = (struct ledger_posting){payer, -charge};
	if (fs.provider)
		ps[n++] = (struct ledger_posting){u->provider, fs.provider};
	if (fs.maintenance)
		ps[n++] = (struct ledger_posting){LEDGER_FEE_MAINT, fs.maintenance};
	if (fs.development)
		ps[n++] = (struct ledger_posting){LEDGER_FEE_DEV, fs.development};
	if (fs.staking)
		ps[n++] = (struct ledger_posting){LEDGER_FEE_STAKING, fs.staking};
	work_ns = u->cpu_ns < e.max_cpu_ns ? u->cpu_ns : e.max_cpu_ns;
	data = cJSON_CreateObject();
	if (!data || canon_add_i64(data, "cpu_ns", work_ns) < 0 ||
	    canon_add_i64(data, "price", price) < 0 || canon_add_i64(data, "charge", charge) < 0 ||
	    canon_add_i64(data, "renewable_ppm", u->renewable_ppm) < 0 ||
	    canon_add_i64(data, "fee_bps", p->fee_bps) < 0 ||
	    !cJSON_AddStringToObject(data, "provider", u->provider) ||
	    (treasury && !cJSON_AddStringToObject(data, "payer", LEDGER_TREASURY))) {
		r = -ENOMEM;
		goto out;
	}
	if (u->record_line) {
		char line[RECORD_LINE_MAX + 1], key_hex[2 * KEY_PUB_LEN + 1];

		memcpy(line, u->record_line, u->record_len);
		line[u->record_len] = '\0';
		hex_encode(u->node_pubkey, KEY_PUB_LEN, key_hex);
		if (!cJSON_AddStringToObject(data, "record_line", line) ||
		    !cJSON_AddStringToObject(data, "node_key", key_hex)) {
			r = -ENOMEM;
			goto out;
		}
	}
	memcpy(ref.record_hash, u->record_hash, SHA256_LEN);
	ref.node = u->node;
	ref.node_seq = u->node_seq;
	ref.task = u->task;
	a = (struct ledger_append_args){.kind = "settle",
					.cause = cause,
					.time_ns = u->time_ns,
					.epoch = u->epoch,
					.postings = ps,
					.n_postings = n,
					.usage = &ref,
					.data = data};
	r = ledger_append(l, &a, NULL);
	if (r < 0)
		goto out;
	if (!treasury) {
		st = ledger_stmt(l, sql_esc);
		if (!st) {
			r = -EIO;
			goto out;
		}
		sqlite3_bind_text(st, 1, u->task, -1, SQLITE_STATIC);
		r = ledger_stmt_run(st);
		if (r < 0)
			goto out;
	}
	st = ledger_stmt(l, sql_work);
	if (!st) {
		r = -EIO;
		goto out;
	}
	sqlite3_bind_int64(st, 1, (int64_t)u->epoch);
	sqlite3_bind_text(st, 2, u->node, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, u->provider, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, work_ns);
	sqlite3_bind_int64(st, 5, u->renewable_ppm);
	r = ledger_stmt_run(st);
	if (r >= 0)
		r = trust_update(l, u->node, true);
out:
	r = ledger_unit_end(l, &unit, r);
	if (r >= 0 && ret_split)
		*ret_split = fs;
	return r;
}

int settle_escrow_close(struct ledger *l, const char *task, int64_t time_ns, uint64_t epoch,
			int64_t *ret_refund)
{
	static const char sql[] = "UPDATE ledger_escrow SET closed = 1 WHERE task = ?1";
	char acct[LEDGER_ACCOUNT_MAX + 1], cause[LEDGER_CAUSE_MAX + 1];
	struct ledger_posting ps[2];
	struct ledger_append_args a;
	struct escrow_row e = {0};
	struct ledger_unit u;
	int64_t left = 0;
	sqlite3_stmt *st;
	int r;

	if (!task_valid(task) || name2(acct, sizeof(acct), "escrow:", task) < 0 ||
	    name2(cause, sizeof(cause), "task:", task) < 0)
		return -EINVAL;
	r = ledger_unit_begin(l, &u);
	if (r < 0)
		return r;
	r = escrow_get(l, task, &e);
	if (r >= 0 && e.closed)
		r = -EEXIST;
	if (r >= 0)
		r = ledger_balance(l, acct, &left);
	if (r >= 0) {
		ps[0] = (struct ledger_posting){acct, -left};
		ps[1] = (struct ledger_posting){e.renter, left};
		a = (struct ledger_append_args){.kind = "refund",
						.cause = cause,
						.time_ns = time_ns,
						.epoch = epoch,
						.postings = ps,
						.n_postings = left ? 2 : 0};
		r = ledger_append(l, &a, NULL);
	}
	if (r >= 0) {
		st = ledger_stmt(l, sql);
		if (!st) {
			r = -EIO;
		} else {
			sqlite3_bind_text(st, 1, task, -1, SQLITE_STATIC);
			r = ledger_stmt_run(st);
		}
	}
	r = ledger_unit_end(l, &u, r);
	if (r >= 0 && ret_refund)
		*ret_refund = left;
	return r;
}

/* ---- refusals and slashing ---- */

int settle_refuse(struct ledger *l, const char *node, const uint8_t record_hash[32],
		  const char *reason, int64_t time_ns, uint64_t epoch)
{
	_cleanup_json_ cJSON *data = NULL;
	char cause[8 + SHA256_HEX_LEN], hex[SHA256_HEX_LEN + 1];
	struct ledger_append_args a;
	struct ledger_unit u;
	int r;

	if (!ledger_account_valid(node) || !reason || strlen(reason) > 200)
		return -EINVAL;
	hex_encode(record_hash, SHA256_LEN, hex);
	snprintf(cause, sizeof(cause), "record:%s", hex);
	data = cJSON_CreateObject();
	if (!data || !cJSON_AddStringToObject(data, "node", node) ||
	    !cJSON_AddStringToObject(data, "reason", reason))
		return -ENOMEM;
	a = (struct ledger_append_args){
		.kind = "refuse", .cause = cause, .time_ns = time_ns, .epoch = epoch, .data = data};
	r = ledger_unit_begin(l, &u);
	if (r < 0)
		return r;
	r = ledger_append(l, &a, NULL);
	if (r >= 0)
		r = trust_update(l, node, false);
	return ledger_unit_end(l, &u, r);
}

int settle_slash(struct ledger *l, const struct econ_params *p, const char *node, const char *owner,
		 const char *cause, int64_t time_ns, uint64_t epoch, int64_t *ret_amount)
{
	_cleanup_json_ cJSON *data = NULL;
	char acct[LEDGER_ACCOUNT_MAX + 1];
	struct ledger_posting ps[2];
	struct ledger_append_args a;
	struct ledger_unit u;
	int64_t stake = 0, cut = 0;
	int r;

	if (!ledger_account_valid(node) || !ledger_account_valid(owner) ||
	    name2(acct, sizeof(acct), "stake:", owner) < 0)
		return -EINVAL;
	r = ledger_unit_begin(l, &u);
	if (r < 0)
		return r;
	r = ledger_balance(l, acct, &stake);
	if (r >= 0) {
		cut = (int64_t)((unsigned __int128)stake * (uint64_t)p->slash_bps / ECON_BPS);
		data = cJSON_CreateObject();
		if (!data || !cJSON_AddStringToObject(data, "node", node) ||
		    canon_add_i64(data, "slash_bps", p->slash_bps) < 0 ||
		    canon_add_i64(data, "stake", stake) < 0)
			r = -ENOMEM;
	}
	if (r >= 0) {
		ps[0] = (struct ledger_posting){acct, -cut};
		ps[1] = (struct ledger_posting){LEDGER_TREASURY, cut};
		a = (struct ledger_append_args){.kind = "slash",
						.cause = cause,
						.time_ns = time_ns,
						.epoch = epoch,
						.postings = ps,
						.n_postings = cut ? 2 : 0,
						.data = data};
		r = ledger_append(l, &a, NULL);
	}
	if (r >= 0)
		r = trust_update(l, node, false);
	r = ledger_unit_end(l, &u, r);
	if (r >= 0 && ret_amount)
		*ret_amount = cut;
	return r;
}

/* ---- epochs ---- */

struct contrib_row {
	char node[LEDGER_ACCOUNT_MAX + 1];
	char provider[LEDGER_ACCOUNT_MAX + 1];
};

static int epoch_rewards(struct ledger *l, const struct econ_params *p, uint64_t epoch,
			 int64_t time_ns, struct settle_epoch_result *res)
{
	static const char sql[] = "SELECT node, provider, cpu_ns, renewable_ppm FROM ledger_work "
				  "WHERE epoch = ?1 ORDER BY node";
	_cleanup_free_ struct econ_contrib *c = NULL;
	_cleanup_free_ struct contrib_row *rows = NULL;
	_cleanup_free_ struct ledger_posting *ps = NULL;
	_cleanup_json_ cJSON *data = NULL;
	char cause[32];
	size_t n = 0, cap = 0, np = 0;
	struct ledger_append_args a;
	int64_t rem = 0, paid = 0;
	sqlite3_stmt *st = ledger_stmt(l, sql);
	cJSON *list;
	int rc, r;

	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, (int64_t)epoch);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *node = (const char *)sqlite3_column_text(st, 0);
		const char *prov = (const char *)sqlite3_column_text(st, 1);

		if (n == cap) {
			size_t nc = cap ? cap * 2 : 64;
			void *a1 = realloc(c, nc * sizeof(*c)), *a2;

			if (!a1) {
				sqlite3_reset(st);
				return -ENOMEM;
			}
			c = a1;
			a2 = realloc(rows, nc * sizeof(*rows));
			if (!a2) {
				sqlite3_reset(st);
				return -ENOMEM;
			}
			rows = a2;
			cap = nc;
		}
		snprintf(rows[n].node, sizeof(rows[n].node), "%s", node ? node : "");
		snprintf(rows[n].provider, sizeof(rows[n].provider), "%s", prov ? prov : "");
		c[n].cpu_ns = sqlite3_column_int64(st, 2);
		c[n].renewable_ppm = sqlite3_column_int64(st, 3);
		n++;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return ledger_sql_errno(rc);
	if (n > LEDGER_MAX_POSTINGS - 2)
		return -E2BIG;
	r = econ_rewards(p->reward_pool, p, c, n, &rem);
	if (r < 0)
		return r;
	ps = calloc(n + 2, sizeof(*ps));
	data = cJSON_CreateObject();
	if (!ps || !data || canon_add_i64(data, "pool", p->reward_pool) < 0 ||
	    canon_add_i64(data, "renewable_bonus_ppm", p->renewable_bonus_ppm) < 0)
		return -ENOMEM;
	list = cJSON_AddArrayToObject(data, "work");
	if (!list)
		return -ENOMEM;
	if (p->reward_pool)
		ps[np++] = (struct ledger_posting){LEDGER_MINT, -p->reward_pool};
	for (size_t i = 0; i < n; i++) {
		cJSON *w = cJSON_CreateObject();

		if (!w)
			return -ENOMEM;
		cJSON_AddItemToArray(list, w);
		if (!cJSON_AddStringToObject(w, "node", rows[i].node) ||
		    !cJSON_AddStringToObject(w, "provider", rows[i].provider) ||
		    canon_add_i64(w, "cpu_ns", c[i].cpu_ns) < 0 ||
		    canon_add_i64(w, "renewable_ppm", c[i].renewable_ppm) < 0 ||
		    canon_add_i64(w, "reward", c[i].reward) < 0)
			return -ENOMEM;
		if (c[i].reward) {
			ps[np++] = (struct ledger_posting){rows[i].provider, c[i].reward};
			paid += c[i].reward;
			res->providers++;
		}
	}
	if (rem)
		ps[np++] = (struct ledger_posting){LEDGER_TREASURY, rem};
	snprintf(cause, sizeof(cause), "epoch:%" PRIu64, epoch);
	a = (struct ledger_append_args){.kind = "reward",
					.cause = cause,
					.time_ns = time_ns,
					.epoch = epoch,
					.postings = ps,
					.n_postings = np,
					.data = data};
	r = ledger_append(l, &a, NULL);
	if (r < 0)
		return r;
	res->rewards_paid = paid;
	res->reward_remainder = rem;
	return 0;
}

struct staker {
	char owner[LEDGER_ACCOUNT_MAX + 1];
	int64_t stake;
};

static int epoch_staking(struct ledger *l, uint64_t epoch, int64_t time_ns,
			 struct settle_epoch_result *res)
{
	/* stake:* accounts in name order: 'stake;' is the first string after the prefix */
	static const char sql[] =
		"SELECT account, balance FROM ledger_balances "
		"WHERE account >= 'stake:' AND account < 'stake;' AND balance > 0 "
		"ORDER BY account";
	_cleanup_free_ struct staker *sk = NULL;
	_cleanup_free_ int64_t *w = NULL, *share = NULL;
	_cleanup_free_ struct ledger_posting *ps = NULL;
	struct ledger_append_args a;
	size_t n = 0, cap = 0, np = 0;
	int64_t pot = 0, rem = 0;
	sqlite3_stmt *st = ledger_stmt(l, sql);
	char cause[32];
	int rc, r;

	if (!st)
		return -EIO;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *acct = (const char *)sqlite3_column_text(st, 0);

		if (n == cap) {
			size_t nc = cap ? cap * 2 : 64;
			void *p = realloc(sk, nc * sizeof(*sk));

			if (!p) {
				sqlite3_reset(st);
				return -ENOMEM;
			}
			sk = p;
			cap = nc;
		}
		snprintf(sk[n].owner, sizeof(sk[n].owner), "%s", acct ? acct + 6 : "");
		sk[n].stake = sqlite3_column_int64(st, 1);
		n++;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return ledger_sql_errno(rc);
	if (n > LEDGER_MAX_POSTINGS - 1)
		return -E2BIG;
	r = ledger_balance(l, LEDGER_FEE_STAKING, &pot);
	if (r < 0)
		return r;
	w = calloc(n + 1, sizeof(*w));
	share = calloc(n + 1, sizeof(*share));
	ps = calloc(n + 1, sizeof(*ps));
	if (!w || !share || !ps)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		w[i] = sk[i].stake;
	r = econ_pro_rata(pot, w, share, n, &rem);
	if (r < 0)
		return r;
	if (pot - rem)
		ps[np++] = (struct ledger_posting){LEDGER_FEE_STAKING, -(pot - rem)};
	for (size_t i = 0; i < n; i++) {
		if (!share[i])
			continue;
		ps[np++] = (struct ledger_posting){sk[i].owner, share[i]};
		res->stakers++;
	}
	snprintf(cause, sizeof(cause), "epoch:%" PRIu64, epoch);
	a = (struct ledger_append_args){.kind = "stake_reward",
					.cause = cause,
					.time_ns = time_ns,
					.epoch = epoch,
					.postings = ps,
					.n_postings = np};
	r = ledger_append(l, &a, NULL);
	if (r >= 0)
		res->staking_paid = pot - rem;
	return r;
}

int settle_epoch_close(struct ledger *l, const struct econ_params *p, uint64_t epoch,
		       int64_t time_ns, struct settle_epoch_result *ret)
{
	struct settle_epoch_result res = {0};
	struct ledger_unit u;
	int r;

	if (epoch > INT64_MAX)
		return -EINVAL;
	r = ledger_unit_begin(l, &u);
	if (r < 0)
		return r;
	r = epoch_rewards(l, p, epoch, time_ns, &res);
	if (r >= 0)
		r = epoch_staking(l, epoch, time_ns, &res);
	r = ledger_unit_end(l, &u, r);
	if (r >= 0 && ret)
		*ret = res;
	return r;
}

int settle_current_mult(struct ledger *l, int64_t *ret_mult_ppm)
{
	static const char sql[] = "SELECT v FROM ledger_meta WHERE k = 'price_mult_ppm'";
	sqlite3_stmt *st = ledger_stmt(l, sql);
	int rc;

	if (!st)
		return -EIO;
	rc = sqlite3_step(st);
	*ret_mult_ppm = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : ECON_PPM;
	sqlite3_reset(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : ledger_sql_errno(rc);
}

int settle_epoch_price(struct ledger *l, const struct econ_params *p, uint64_t epoch,
		       uint64_t demand_millicores, uint64_t supply_millicores, int64_t time_ns,
		       int64_t *ret_mult_ppm, unsigned *ret_pow_bits)
{
	static const char sql[] = "INSERT INTO ledger_meta(k, v) VALUES('price_mult_ppm', ?1) "
				  "ON CONFLICT(k) DO UPDATE SET v = excluded.v";
	_cleanup_json_ cJSON *data = NULL;
	struct ledger_append_args a;
	struct ledger_unit u;
	int64_t prev, raw, mult = 0;
	unsigned bits = 0;
	sqlite3_stmt *st;
	char cause[32];
	int r;

	if (epoch > INT64_MAX || demand_millicores > INT64_MAX || supply_millicores > INT64_MAX)
		return -EINVAL;
	r = ledger_unit_begin(l, &u);
	if (r < 0)
		return r;
	r = settle_current_mult(l, &prev);
	if (r < 0)
		goto out;
	raw = econ_demand_mult_raw(p, demand_millicores, supply_millicores);
	mult = econ_demand_mult_smooth(p, prev, raw);
	bits = econ_pow_bits(p, mult);
	data = cJSON_CreateObject();
	if (!data || canon_add_u64(data, "demand_millicores", demand_millicores) < 0 ||
	    canon_add_u64(data, "supply_millicores", supply_millicores) < 0 ||
	    canon_add_i64(data, "prev_mult_ppm", prev) < 0 ||
	    canon_add_i64(data, "raw_mult_ppm", raw) < 0 ||
	    canon_add_i64(data, "mult_ppm", mult) < 0 ||
	    canon_add_u64(data, "pow_bits", bits) < 0) {
		r = -ENOMEM;
		goto out;
	}
	snprintf(cause, sizeof(cause), "epoch:%" PRIu64, epoch);
	a = (struct ledger_append_args){
		.kind = "price", .cause = cause, .time_ns = time_ns, .epoch = epoch, .data = data};
	r = ledger_append(l, &a, NULL);
	if (r < 0)
		goto out;
	st = ledger_stmt(l, sql);
	if (!st) {
		r = -EIO;
		goto out;
	}
	sqlite3_bind_int64(st, 1, mult);
	r = ledger_stmt_run(st);
out:
	r = ledger_unit_end(l, &u, r);
	if (r >= 0) {
		if (ret_mult_ppm)
			*ret_mult_ppm = mult;
		if (ret_pow_bits)
			*ret_pow_bits = bits;
	}
	return r;
}

/* ---- ratings ---- */

int settle_rate(struct ledger *l, const char *task, const char *renter, const char *node, int stars)
{
	static const char sql_check[] =
		"SELECT 1 FROM ledger_escrow e JOIN ledger_usage u ON u.task = e.task "
		"WHERE e.task = ?1 AND e.renter = ?2 AND u.node = ?3 LIMIT 1";
	static const char sql_ins[] =
		"INSERT INTO ledger_ratings(task, node, stars) VALUES(?1, ?2, ?3)";
	sqlite3_stmt *st;
	int rc, r;

	if (!task_valid(task) || !ledger_account_valid(renter) || !ledger_account_valid(node) ||
	    stars < 1 || stars > 5)
		return -EINVAL;
	st = ledger_stmt(l, sql_check);
	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, task, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, renter, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, node, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return -EPERM;
	if (rc != SQLITE_ROW)
		return ledger_sql_errno(rc);
	st = ledger_stmt(l, sql_ins);
	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, task, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, node, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, stars);
	r = ledger_stmt_run(st);
	return r;
}

int settle_rating(struct ledger *l, const struct econ_params *p, const char *node,
		  int64_t *ret_milli, uint64_t *ret_count)
{
	static const char sql[] =
		"SELECT count(*), coalesce(sum(stars), 0) FROM ledger_ratings WHERE node = ?1";
	sqlite3_stmt *st = ledger_stmt(l, sql);
	uint64_t n = 0, sum = 0;
	int rc;

	if (!st)
		return -EIO;
	sqlite3_bind_text(st, 1, node, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		n = (uint64_t)sqlite3_column_int64(st, 0);
		sum = (uint64_t)sqlite3_column_int64(st, 1);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return ledger_sql_errno(rc);
	*ret_milli = econ_rating_bayes(p, n, sum);
	if (ret_count)
		*ret_count = n;
	return 0;
}

/* ---- the auditor's recomputation ---- */

struct amap_slot {
	char *key;	/* "E\nnode" for work, account name for balances */
	int64_t a;	/* cpu ns, or balance */
	int64_t b;	/* renewable ppm */
	char *provider; /* work: account paid */
};

struct amap {
	struct amap_slot *slots;
	size_t cap, n;
};

struct settle_audit {
	struct econ_params p; /* in force at the entry being checked */
	struct amap work;     /* (epoch, node) -> settled work */
	struct amap stakes;   /* stake:* and fee:staking balances */
	struct amap escrows;  /* task -> price escrowed (the most a charge may use) */
	uint64_t checked;
	uint64_t settled;   /* settle entries */
	uint64_t signed_ok; /* ... carrying a record whose signature verified */
	bool require_records;
};

void settle_audit_require_records(struct settle_audit *a, bool require)
{
	a->require_records = require;
}

void settle_audit_records(const struct settle_audit *a, uint64_t *ret_settled, uint64_t *ret_signed)
{
	*ret_settled = a->settled;
	*ret_signed = a->signed_ok;
}

static uint64_t amap_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
	return h;
}

static void amap_done(struct amap *m)
{
	for (size_t i = 0; i < m->cap; i++) {
		free(m->slots[i].key);
		free(m->slots[i].provider);
	}
	free(m->slots);
	*m = (struct amap){NULL, 0, 0};
}

static struct amap_slot *amap_find(struct amap *m, const char *key)
{
	size_t i;

	if (!m->cap)
		return NULL;
	i = amap_hash(key) & (m->cap - 1);
	while (m->slots[i].key && strcmp(m->slots[i].key, key) != 0)
		i = (i + 1) & (m->cap - 1);
	return &m->slots[i];
}

static int amap_get(struct amap *m, const char *key, struct amap_slot **ret)
{
	struct amap_slot *s;

	if ((m->n + 1) * 2 > m->cap) {
		struct amap g = {NULL, m->cap ? m->cap * 2 : 256, m->n};

		g.slots = calloc(g.cap, sizeof(*g.slots));
		if (!g.slots)
			return -ENOMEM;
		for (size_t i = 0; i < m->cap; i++)
			if (m->slots[i].key)
				*amap_find(&g, m->slots[i].key) = m->slots[i];
		free(m->slots);
		*m = g;
	}
	s = amap_find(m, key);
	if (!s->key) {
		s->key = strdup(key);
		if (!s->key)
			return -ENOMEM;
		m->n++;
	}
	*ret = s;
	return 0;
}

int settle_audit_new(struct settle_audit **ret)
{
	struct settle_audit *a = calloc(1, sizeof(*a));

	if (!a)
		return -ENOMEM;
	econ_params_default(&a->p);
	*ret = a;
	return 0;
}

struct settle_audit *settle_audit_free(struct settle_audit *a)
{
	if (!a)
		return NULL;
	amap_done(&a->work);
	amap_done(&a->stakes);
	amap_done(&a->escrows);
	free(a);
	return NULL;
}

uint64_t settle_audit_checked(const struct settle_audit *a)
{
	return a->checked;
}

static int bad(char *reason, size_t len, uint64_t seq, const char *why)
{
	snprintf(reason, len, "entry %" PRIu64 ": %s", seq, why);
	return -EBADMSG;
}

/* postings == expected (same order, zero amounts left out of expected) */
static bool postings_are(const cJSON *ps, const struct ledger_posting *want, size_t n)
{
	const cJSON *p;
	size_t i = 0;

	cJSON_ArrayForEach (p, ps) {
		const char *acct;
		int64_t d;

		if (i >= n || canon_get_str(p, "a", &acct) < 0 || canon_get_i64(p, "d", &d) < 0 ||
		    strcmp(acct, want[i].account) != 0 || d != want[i].delta)
			return false;
		i++;
	}
	return i == n;
}

static void pkey_freep(EVP_PKEY **k)
{
	EVP_PKEY_free(*k);
}

static void verifier_freep(struct key_verifier **v)
{
	key_verifier_free(*v);
}

/* The agent-signed record behind a charge: hash, signature, and that it says what was paid. */
static int audit_record(struct settle_audit *a, uint64_t seq, const cJSON *usage, const cJSON *d,
			int64_t cpu, char *reason, size_t len)
{
	_cleanup_(pkey_freep) EVP_PKEY *pub = NULL;
	_cleanup_(verifier_freep) struct key_verifier *v = NULL;
	const char *line, *key_hex, *rec_hex, *node, *task, *err = NULL;
	uint8_t raw[KEY_PUB_LEN], h[SHA256_LEN], want[SHA256_LEN];
	char node_id[NODE_ID_HEX_LEN + 1];
	struct usage_record rec;
	uint64_t node_seq;
	size_t n;

	if (canon_get_str(d, "record_line", &line) < 0) {
		if (a->require_records)
			return bad(reason, len, seq, "a charge without its agent-signed record");
		return 0;
	}
	n = strlen(line);
	if (canon_get_str(d, "node_key", &key_hex) < 0 ||
	    hex_decode(key_hex, strlen(key_hex), raw, KEY_PUB_LEN) < 0 ||
	    canon_get_str(usage, "record", &rec_hex) < 0 ||
	    hex_decode(rec_hex, strlen(rec_hex), want, SHA256_LEN) < 0 ||
	    canon_get_str(usage, "node", &node) < 0 || canon_get_str(usage, "task", &task) < 0 ||
	    canon_get_u64(usage, "node_seq", &node_seq) < 0)
		return bad(reason, len, seq, "record reference malformed");
	sha256(line, n, h);
	if (memcmp(h, want, SHA256_LEN) != 0)
		return bad(reason, len, seq, "the record does not hash to the charged record hash");
	if (n > RECORD_LINE_MAX || record_parse(line, n, &rec, &err) < 0)
		return bad(reason, len, seq, "the charged record does not parse");
	if (key_from_raw_public(raw, &pub) < 0 || key_node_id(pub, node_id) < 0 ||
	    key_verifier_new(pub, &v) < 0)
		return bad(reason, len, seq, "the node key is not an Ed25519 key");
	if (strcmp(node_id, node) != 0 || strcmp(rec.node, node) != 0)
		return bad(reason, len, seq, "the record or key belongs to another node");
	if (record_verify_line(line, n, &rec, v) < 0)
		return bad(reason, len, seq, "the record's signature does not verify");
	if (rec.seq != node_seq || strcmp(rec.task, task) != 0)
		return bad(reason, len, seq, "the record names another sequence or task");
	if (rec.cpu_ns < (uint64_t)cpu)
		return bad(reason, len, seq, "more CPU charged than the record measured");
	a->signed_ok++;
	return 0;
}

/* Remember the price each task escrowed: no charge may use a higher one. */
static int audit_escrow(struct settle_audit *a, uint64_t seq, const cJSON *body, char *reason,
			size_t len)
{
	const cJSON *d = cJSON_GetObjectItemCaseSensitive(body, "data");
	const char *cause;
	struct amap_slot *s;
	int64_t price;
	int r;

	if (!d || canon_get_i64(d, "price", &price) < 0 ||
	    canon_get_str(body, "cause", &cause) < 0 || strncmp(cause, "task:", 5) != 0)
		return bad(reason, len, seq, "escrow figures missing");
	r = amap_get(&a->escrows, cause + 5, &s);
	if (r < 0)
		return r;
	s->a = price;
	return 0;
}

static int audit_settle(struct settle_audit *a, uint64_t seq, uint64_t epoch, const cJSON *body,
			char *reason, size_t len)
{
	const cJSON *u = cJSON_GetObjectItemCaseSensitive(body, "usage");
	const cJSON *d = cJSON_GetObjectItemCaseSensitive(body, "data");
	const char *task, *node, *provider, *payer = NULL;
	int64_t cpu, price, charge, fee_bps, renew, want;
	struct amap_slot *esc;
	char escrow[LEDGER_ACCOUNT_MAX + 1], key[LEDGER_ACCOUNT_MAX + 32];
	struct ledger_posting ps[5];
	struct econ_fee_split fs;
	struct amap_slot *w;
	size_t n = 0;
	int r;

	if (!u || canon_get_str(u, "task", &task) < 0 || canon_get_str(u, "node", &node) < 0)
		return bad(reason, len, seq, "a charge without a usage record");
	if (!d || canon_get_i64(d, "cpu_ns", &cpu) < 0 || canon_get_i64(d, "price", &price) < 0 ||
	    canon_get_i64(d, "charge", &charge) < 0 || canon_get_i64(d, "fee_bps", &fee_bps) < 0 ||
	    canon_get_i64(d, "renewable_ppm", &renew) < 0 ||
	    canon_get_str(d, "provider", &provider) < 0 || cpu < 0 || cpu > ECON_MAX_CPU_NS)
		return bad(reason, len, seq, "settlement figures missing");
	if (econ_charge(cpu, cpu, price, &want) < 0 || want != charge)
		return bad(reason, len, seq, "charge is not cpu x price");
	esc = amap_find(&a->escrows, task);
	if (!esc || !esc->key)
		return bad(reason, len, seq, "a charge for a task without an escrow");
	if (price > esc->a)
		return bad(reason, len, seq, "charged above the price escrowed for the task");
	if (cJSON_GetObjectItemCaseSensitive(d, "payer") &&
	    (canon_get_str(d, "payer", &payer) < 0 || strcmp(payer, LEDGER_TREASURY) != 0))
		return bad(reason, len, seq,
			   "a charge paid by neither the escrow nor the treasury");
	if (fee_bps != a->p.fee_bps)
		return bad(reason, len, seq, "fee differs from the fee_bps in force");
	if (econ_fee_split(&a->p, charge, &fs) < 0 ||
	    name2(escrow, sizeof(escrow), "escrow:", task) < 0)
		return bad(reason, len, seq, "charge out of range");
	if (charge)
		ps[n++] = (struct ledger_posting){payer ? payer : escrow, -charge};
	if (fs.provider)
		ps[n++] = (struct ledger_posting){provider, fs.provider};
	if (fs.maintenance)
		ps[n++] = (struct ledger_posting){LEDGER_FEE_MAINT, fs.maintenance};
	if (fs.development)
		ps[n++] = (struct ledger_posting){LEDGER_FEE_DEV, fs.development};
	if (fs.staking)
		ps[n++] = (struct ledger_posting){LEDGER_FEE_STAKING, fs.staking};
	if (!postings_are(cJSON_GetObjectItemCaseSensitive(body, "postings"), ps, n))
		return bad(reason, len, seq, "postings differ from the fee split in force");
	a->settled++;
	r = audit_record(a, seq, u, d, cpu, reason, len);
	if (r < 0)
		return r;
	snprintf(key, sizeof(key), "%" PRIu64 "\n%s", epoch, node);
	r = amap_get(&a->work, key, &w);
	if (r < 0)
		return r;
	w->a += cpu;
	w->b = renew;
	free(w->provider);
	w->provider = strdup(provider);
	return w->provider ? 0 : -ENOMEM;
}

struct work_item {
	const char *node;
	struct amap_slot *slot;
};

static int work_cmp(const void *x, const void *y)
{
	return strcmp(((const struct work_item *)x)->node, ((const struct work_item *)y)->node);
}

static int audit_reward(struct settle_audit *a, uint64_t seq, uint64_t epoch, const cJSON *body,
			char *reason, size_t len)
{
	const cJSON *d = cJSON_GetObjectItemCaseSensitive(body, "data");
	_cleanup_free_ struct work_item *items = NULL;
	_cleanup_free_ struct econ_contrib *c = NULL;
	_cleanup_free_ struct ledger_posting *ps = NULL;
	char prefix[32];
	size_t n = 0, np = 0, plen;
	int64_t pool, bonus, rem;
	int r;

	if (!d || canon_get_i64(d, "pool", &pool) < 0 ||
	    canon_get_i64(d, "renewable_bonus_ppm", &bonus) < 0)
		return bad(reason, len, seq, "reward figures missing");
	if (pool != a->p.reward_pool || bonus != a->p.renewable_bonus_ppm)
		return bad(reason, len, seq, "reward pool or bonus differ from the parameters");
	plen = (size_t)snprintf(prefix, sizeof(prefix), "%" PRIu64 "\n", epoch);
	items = calloc(a->work.n + 1, sizeof(*items));
	c = calloc(a->work.n + 1, sizeof(*c));
	ps = calloc(a->work.n + 2, sizeof(*ps));
	if (!items || !c || !ps)
		return -ENOMEM;
	for (size_t i = 0; i < a->work.cap; i++) {
		struct amap_slot *s = &a->work.slots[i];

		if (s->key && s->provider && strncmp(s->key, prefix, plen) == 0) {
			items[n].node = s->key + plen;
			items[n].slot = s;
			n++;
		}
	}
	qsort(items, n, sizeof(*items), work_cmp);
	for (size_t i = 0; i < n; i++) {
		c[i].cpu_ns = items[i].slot->a;
		c[i].renewable_ppm = items[i].slot->b;
	}
	r = econ_rewards(pool, &a->p, c, n, &rem);
	if (r < 0)
		return bad(reason, len, seq, "reward out of range");
	if (pool)
		ps[np++] = (struct ledger_posting){LEDGER_MINT, -pool};
	for (size_t i = 0; i < n; i++)
		if (c[i].reward)
			ps[np++] = (struct ledger_posting){items[i].slot->provider, c[i].reward};
	if (rem)
		ps[np++] = (struct ledger_posting){LEDGER_TREASURY, rem};
	if (!postings_are(cJSON_GetObjectItemCaseSensitive(body, "postings"), ps, np))
		return bad(reason, len, seq, "rewards differ from T x P m / sum(P m)");
	/* the epoch is paid: its work no longer counts (entries stay until the map is freed) */
	for (size_t i = 0; i < n; i++)
		items[i].slot->a = 0;
	return 0;
}

struct staker_item {
	const char *account;
	int64_t stake;
};

static int staker_cmp(const void *x, const void *y)
{
	return strcmp(((const struct staker_item *)x)->account,
		      ((const struct staker_item *)y)->account);
}

static int audit_stake_reward(struct settle_audit *a, uint64_t seq, const cJSON *body, char *reason,
			      size_t len)
{
	_cleanup_free_ struct staker_item *items = NULL;
	_cleanup_free_ int64_t *w = NULL, *share = NULL;
	_cleanup_free_ struct ledger_posting *ps = NULL;
	struct amap_slot *pot = amap_find(&a->stakes, LEDGER_FEE_STAKING);
	int64_t amount = pot && pot->key ? pot->a : 0, rem;
	size_t n = 0, np = 0;

	items = calloc(a->stakes.n + 1, sizeof(*items));
	w = calloc(a->stakes.n + 1, sizeof(*w));
	share = calloc(a->stakes.n + 1, sizeof(*share));
	ps = calloc(a->stakes.n + 2, sizeof(*ps));
	if (!items || !w || !share || !ps)
		return -ENOMEM;
	for (size_t i = 0; i < a->stakes.cap; i++) {
		struct amap_slot *s = &a->stakes.slots[i];

		if (s->key && strncmp(s->key, "stake:", 6) == 0 && s->a > 0) {
			items[n].account = s->key;
			items[n].stake = s->a;
			n++;
		}
	}
	qsort(items, n, sizeof(*items), staker_cmp);
	for (size_t i = 0; i < n; i++)
		w[i] = items[i].stake;
	if (econ_pro_rata(amount, w, share, n, &rem) < 0)
		return bad(reason, len, seq, "staking pot out of range");
	if (amount - rem)
		ps[np++] = (struct ledger_posting){LEDGER_FEE_STAKING, -(amount - rem)};
	for (size_t i = 0; i < n; i++)
		if (share[i])
			ps[np++] = (struct ledger_posting){items[i].account + 6, share[i]};
	if (!postings_are(cJSON_GetObjectItemCaseSensitive(body, "postings"), ps, np))
		return bad(reason, len, seq, "staking payout is not pro rata to stake");
	return 0;
}

/* Follow the balances the staking payout depends on. */
static int audit_track(struct settle_audit *a, const cJSON *body)
{
	const cJSON *p;

	cJSON_ArrayForEach (p, cJSON_GetObjectItemCaseSensitive(body, "postings")) {
		const char *acct;
		int64_t d;
		struct amap_slot *s;
		int r;

		if (canon_get_str(p, "a", &acct) < 0 || canon_get_i64(p, "d", &d) < 0)
			return -EBADMSG;
		if (strncmp(acct, "stake:", 6) != 0 && strcmp(acct, LEDGER_FEE_STAKING) != 0)
			continue;
		r = amap_get(&a->stakes, acct, &s);
		if (r < 0)
			return r;
		s->a += d; /* replay already checked the range */
	}
	return 0;
}

int settle_audit_visit(void *ctx, uint64_t seq, const cJSON *body, char *reason, size_t reason_len)
{
	struct settle_audit *a = ctx;
	const char *kind, *name;
	uint64_t epoch;
	int64_t value;
	int r = 0;

	if (canon_get_str(body, "kind", &kind) < 0 || canon_get_u64(body, "epoch", &epoch) < 0)
		return bad(reason, reason_len, seq, "kind or epoch missing");
	if (strcmp(kind, "param") == 0) {
		const cJSON *d = cJSON_GetObjectItemCaseSensitive(body, "data");

		if (!d || canon_get_str(d, "name", &name) < 0 ||
		    canon_get_i64(d, "value", &value) < 0 ||
		    econ_param_set_field(&a->p, name, value) < 0)
			return bad(reason, reason_len, seq, "parameter change not applicable");
		a->checked++;
	} else if (strcmp(kind, "escrow") == 0) {
		r = audit_escrow(a, seq, body, reason, reason_len);
	} else if (strcmp(kind, "settle") == 0) {
		r = audit_settle(a, seq, epoch, body, reason, reason_len);
		a->checked++;
	} else if (strcmp(kind, "reward") == 0) {
		r = audit_reward(a, seq, epoch, body, reason, reason_len);
		a->checked++;
	} else if (strcmp(kind, "stake_reward") == 0) {
		r = audit_stake_reward(a, seq, body, reason, reason_len);
		a->checked++;
	} else if (cJSON_GetObjectItemCaseSensitive(body, "usage")) {
		r = bad(reason, reason_len, seq, "a usage record referenced outside a settlement");
	}
	if (r < 0)
		return r;
	return audit_track(a, body);
}
