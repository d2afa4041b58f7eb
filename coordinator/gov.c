/* gov.c -- governance on the ledger: stake, unbonding, proposals, stake-weighted votes and their application. */
#include "gov.h"

#include <aicn/canon.h>
#include <aicn/compiler.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int acct_of(char *buf, size_t len, const char *prefix, const char *owner)
{
	int n;

	if (!ledger_account_valid(owner) || strcmp(owner, LEDGER_MINT) == 0 || strchr(owner, ':'))
		return -EINVAL;
	n = snprintf(buf, len, "%s%s", prefix, owner);
	return n < 0 || (size_t)n >= len ? -EINVAL : 0;
}

int gov_params(struct ledger *l, struct econ_params *ret)
{
	static const char sql[] = "SELECT name, value FROM ledger_params";
	sqlite3_stmt *st = ledger_stmt(l, sql);
	struct econ_params p = {0};
	int rc;

	if (!st)
		return -EIO;
	econ_params_default(&p);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);

		/* applied values were valid together; load them field by field */
		if (name)
			econ_param_set_field(&p, name, sqlite3_column_int64(st, 1));
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return ledger_sql_errno(rc);
	*ret = p;
	return 0;
}

int gov_stake(struct ledger *l, const char *owner, int64_t amount, const char *cause,
	      int64_t time_ns, uint64_t epoch)
{
	char acct[LEDGER_ACCOUNT_MAX + 1];
	struct ledger_posting ps[2];
	struct ledger_append_args a;

	if (amount <= 0 || amount > ECON_MAX_AMOUNT || acct_of(acct, sizeof(acct), "stake:", owner))
		return -EINVAL;
	ps[0] = (struct ledger_posting){owner, -amount};
	ps[1] = (struct ledger_posting){acct, amount};
	a = (struct ledger_append_args){.kind = "stake",
					.cause = cause,
					.time_ns = time_ns,
					.epoch = epoch,
					.postings = ps,
					.n_postings = 2};
	return ledger_append(l, &a, NULL);
}

int gov_unstake(struct ledger *l, const char *owner, int64_t amount, const char *cause,
		int64_t time_ns, uint64_t epoch, int64_t *ret_release_ns)
{
	static const char sql[] = "INSERT INTO ledger_unbond(owner, amount, release_ns, released) "
				  "VALUES(?1, ?2, ?3, 0)";
	_cleanup_json_ cJSON *data = NULL;
	char stake[LEDGER_ACCOUNT_MAX + 1], unbond[LEDGER_ACCOUNT_MAX + 1];
	struct ledger_posting ps[2];
	struct ledger_append_args a;
	struct econ_params p = {0};
	struct ledger_unit u;
	sqlite3_stmt *st;
	int64_t release = 0;
	int r;

	if (amount <= 0 || amount > ECON_MAX_AMOUNT ||
	    acct_of(stake, sizeof(stake), "stake:", owner) ||
	    acct_of(unbond, sizeof(unbond), "unbond:", owner))
		return -EINVAL;
	r = ledger_unit_begin(l, &u);
	if (r < 0)
		return r;
	r = gov_params(l, &p);
	if (r < 0)
		goto out;
	release = time_ns + p.unbonding_ns;
	data = cJSON_CreateObject();
	if (!data || canon_add_i64(data, "release_ns", release) < 0) {
		r = -ENOMEM;
		goto out;
	}
	ps[0] = (struct ledger_posting){stake, -amount};
	ps[1] = (struct ledger_posting){unbond, amount};
	a = (struct ledger_append_args){.kind = "unstake",
					.cause = cause,
					.time_ns = time_ns,
					.epoch = epoch,
					.postings = ps,
					.n_postings = 2,
					.data = data};
	r = ledger_append(l, &a, NULL);
	if (r < 0)
		goto out;
	st = ledger_stmt(l, sql);
	if (!st) {
		r = -EIO;
		goto out;
	}
	sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, amount);
	sqlite3_bind_int64(st, 3, release);
	r = ledger_stmt_run(st);
out:
	r = ledger_unit_end(l, &u, r);
	if (r >= 0 && ret_release_ns)
		*ret_release_ns = release;
	return r;
}

struct due {
	int64_t id, amount;
	char owner[LEDGER_ACCOUNT_MAX + 1];
};

int gov_release(struct ledger *l, int64_t now_ns, uint64_t epoch)
{
	static const char sql_due[] =
		"SELECT id, owner, amount FROM ledger_unbond "
		"WHERE released = 0 AND release_ns <= ?1 ORDER BY id LIMIT 256";
	static const char sql_done[] = "UPDATE ledger_unbond SET released = 1 WHERE id = ?1";
	struct due d[256];
	size_t n = 0;
	struct ledger_unit u;
	sqlite3_stmt *st;
	int r;

	r = ledger_unit_begin(l, &u);
	if (r < 0)
		return r;
	st = ledger_stmt(l, sql_due);
	if (!st) {
		r = -EIO;
		goto out;
	}
	sqlite3_bind_int64(st, 1, now_ns);
	while (n < ARRAY_SIZE(d) && sqlite3_step(st) == SQLITE_ROW) {
		const char *o = (const char *)sqlite3_column_text(st, 1);

		d[n].id = sqlite3_column_int64(st, 0);
		snprintf(d[n].owner, sizeof(d[n].owner), "%s", o ? o : "");
		d[n].amount = sqlite3_column_int64(st, 2);
		n++;
	}
	sqlite3_reset(st);
	for (size_t i = 0; i < n && r >= 0; i++) {
		char unbond[LEDGER_ACCOUNT_MAX + 1], cause[48];
		struct ledger_posting ps[2];
		struct ledger_append_args a;

		r = acct_of(unbond, sizeof(unbond), "unbond:", d[i].owner);
		if (r < 0)
			break;
		snprintf(cause, sizeof(cause), "unbond:%" PRId64, d[i].id);
		ps[0] = (struct ledger_posting){unbond, -d[i].amount};
		ps[1] = (struct ledger_posting){d[i].owner, d[i].amount};
		a = (struct ledger_append_args){.kind = "release",
						.cause = cause,
						.time_ns = now_ns,
						.epoch = epoch,
						.postings = ps,
						.n_postings = 2};
		r = ledger_append(l, &a, NULL);
		if (r < 0)
			break;
		st = ledger_stmt(l, sql_done);
		if (!st) {
			r = -EIO;
			break;
		}
		sqlite3_bind_int64(st, 1, d[i].id);
		r = ledger_stmt_run(st);
	}
out:
	r = ledger_unit_end(l, &u, r);
	return r < 0 ? r : (int)n;
}

static int stake_of(struct ledger *l, const char *owner, int64_t *ret)
{
	char acct[LEDGER_ACCOUNT_MAX + 1];

	if (acct_of(acct, sizeof(acct), "stake:", owner))
		return -EINVAL;
	return ledger_balance(l, acct, ret);
}

int gov_propose(struct ledger *l, const char *proposer, const char *param, int64_t value,
		const char *text, int64_t time_ns, uint64_t epoch, int64_t *ret_id)
{
	static const char sql_next[] = "SELECT coalesce(max(id), 0) + 1 FROM ledger_proposals";
	static const char sql_ins[] = "INSERT INTO ledger_proposals(id, proposer, param, value, "
				      "end_ns, state) VALUES(?1, ?2, ?3, ?4, ?5, 0)";
	_cleanup_json_ cJSON *data = NULL;
	struct econ_params p = {0}, q;
	struct ledger_append_args a;
	struct ledger_unit u;
	int64_t stake = 0, id = 0, end;
	sqlite3_stmt *st;
	char cause[48];
	int r;

	if (!param || strlen(param) > 64 || (text && strlen(text) > GOV_TEXT_MAX))
		return -EINVAL;
	r = ledger_unit_begin(l, &u);
	if (r < 0)
		return r;
	r = gov_params(l, &p);
	if (r < 0)
		goto out;
	q = p;
	r = econ_param_set(&q, param, value);
	if (r < 0)
		goto out;
	r = stake_of(l, proposer, &stake);
	if (r < 0)
		goto out;
	if (stake < p.gov_min_stake || stake == 0) {
		r = -EPERM;
		goto out;
	}
	st = ledger_stmt(l, sql_next);
	if (!st || sqlite3_step(st) != SQLITE_ROW) {
		if (st)
			sqlite3_reset(st);
		r = -EIO;
		goto out;
	}
	id = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	end = time_ns + p.gov_voting_ns;
	data = cJSON_CreateObject();
	if (!data || !cJSON_AddStringToObject(data, "proposer", proposer) ||
	    !cJSON_AddStringToObject(data, "param", param) ||
	    canon_add_i64(data, "value", value) < 0 || canon_add_i64(data, "end_ns", end) < 0 ||
	    (text && !cJSON_AddStringToObject(data, "text", text))) {
		r = -ENOMEM;
		goto out;
	}
	snprintf(cause, sizeof(cause), "proposal:%" PRId64, id);
	a = (struct ledger_append_args){.kind = "propose",
					.cause = cause,
					.time_ns = time_ns,
					.epoch = epoch,
					.data = data};
	r = ledger_append(l, &a, NULL);
	if (r < 0)
		goto out;
	st = ledger_stmt(l, sql_ins);
	if (!st) {
		r = -EIO;
		goto out;
	}
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text(st, 2, proposer, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, param, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, value);
	sqlite3_bind_int64(st, 5, end);
	r = ledger_stmt_run(st);
out:
	r = ledger_unit_end(l, &u, r);
	if (r >= 0 && ret_id)
		*ret_id = id;
	return r;
}

struct proposal {
	int64_t id, value, end_ns, state;
	char param[72];
};

static int proposal_get(struct ledger *l, int64_t id, struct proposal *ret)
{
	static const char sql[] =
		"SELECT param, value, end_ns, state FROM ledger_proposals WHERE id = ?1";
	sqlite3_stmt *st = ledger_stmt(l, sql);
	int rc;

	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *s = (const char *)sqlite3_column_text(st, 0);

		ret->id = id;
		snprintf(ret->param, sizeof(ret->param), "%s", s ? s : "");
		ret->value = sqlite3_column_int64(st, 1);
		ret->end_ns = sqlite3_column_int64(st, 2);
		ret->state = sqlite3_column_int64(st, 3);
	}
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : ledger_sql_errno(rc);
}

int gov_proposal_state(struct ledger *l, int64_t proposal, enum gov_state *ret)
{
	struct proposal pr = {0};
	int r = proposal_get(l, proposal, &pr);

	if (r < 0)
		return r;
	*ret = (enum gov_state)pr.state;
	return 0;
}

int gov_vote(struct ledger *l, int64_t proposal, const char *voter, bool yes, int64_t time_ns,
	     uint64_t epoch)
{
	static const char sql[] =
		"INSERT INTO ledger_votes(proposal, voter, yes, weight) VALUES(?1, ?2, ?3, ?4)";
	_cleanup_json_ cJSON *data = NULL;
	struct ledger_append_args a;
	struct ledger_unit u;
	struct proposal pr = {0};
	int64_t weight = 0;
	sqlite3_stmt *st;
	char cause[LEDGER_CAUSE_MAX + 1];
	int r;

	if (!ledger_account_valid(voter))
		return -EINVAL;
	r = ledger_unit_begin(l, &u);
	if (r < 0)
		return r;
	r = proposal_get(l, proposal, &pr);
	if (r >= 0 && (pr.state != GOV_OPEN || time_ns >= pr.end_ns))
		r = -ESTALE;
	if (r >= 0)
		r = stake_of(l, voter, &weight);
	if (r >= 0 && weight <= 0)
		r = -EPERM;
	if (r < 0)
		goto out;
	data = cJSON_CreateObject();
	if (!data || !cJSON_AddStringToObject(data, "voter", voter) ||
	    !cJSON_AddBoolToObject(data, "yes", yes) || canon_add_i64(data, "weight", weight) < 0) {
		r = -ENOMEM;
		goto out;
	}
	snprintf(cause, sizeof(cause), "proposal:%" PRId64 ":%s", proposal, voter);
	a = (struct ledger_append_args){
		.kind = "vote", .cause = cause, .time_ns = time_ns, .epoch = epoch, .data = data};
	r = ledger_append(l, &a, NULL);
	if (r < 0)
		goto out;
	st = ledger_stmt(l, sql);
	if (!st) {
		r = -EIO;
		goto out;
	}
	sqlite3_bind_int64(st, 1, proposal);
	sqlite3_bind_text(st, 2, voter, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, yes);
	sqlite3_bind_int64(st, 4, weight);
	r = ledger_stmt_run(st);
out:
	return ledger_unit_end(l, &u, r);
}

static int total_stake(struct ledger *l, int64_t *ret)
{
	static const char sql[] = "SELECT coalesce(sum(balance), 0) FROM ledger_balances "
				  "WHERE account >= 'stake:' AND account < 'stake;'";
	sqlite3_stmt *st = ledger_stmt(l, sql);
	int rc;

	if (!st)
		return -EIO;
	rc = sqlite3_step(st);
	*ret = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? 0 : ledger_sql_errno(rc);
}

struct ballot {
	char voter[LEDGER_ACCOUNT_MAX + 1];
	int yes;
	int64_t weight;
};

static int tally_one(struct ledger *l, const struct proposal *pr, int64_t now_ns, uint64_t epoch)
{
	static const char sql_votes[] =
		"SELECT voter, yes, weight FROM ledger_votes WHERE proposal = ?1 ORDER BY voter";
	static const char sql_state[] = "UPDATE ledger_proposals SET state = ?2 WHERE id = ?1";
	static const char sql_param[] = "INSERT INTO ledger_params(name, value) VALUES(?1, ?2) "
					"ON CONFLICT(name) DO UPDATE SET value = excluded.value";
	_cleanup_free_ struct ballot *b = NULL;
	_cleanup_json_ cJSON *data = NULL;
	size_t n = 0, cap = 0;
	__int128 yes = 0, no = 0;
	int64_t total = 0, old = 0;
	struct econ_params p = {0}, q;
	struct ledger_append_args a;
	enum gov_state state;
	bool quorum, passed;
	sqlite3_stmt *st = ledger_stmt(l, sql_votes);
	char cause[48];
	int rc, r;

	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, pr->id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *v = (const char *)sqlite3_column_text(st, 0);

		if (n == cap) {
			size_t nc = cap ? cap * 2 : 16;
			void *np = realloc(b, nc * sizeof(*b));

			if (!np) {
				sqlite3_reset(st);
				return -ENOMEM;
			}
			b = np;
			cap = nc;
		}
		snprintf(b[n].voter, sizeof(b[n].voter), "%s", v ? v : "");
		b[n].yes = sqlite3_column_int(st, 1);
		b[n].weight = sqlite3_column_int64(st, 2);
		n++;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return ledger_sql_errno(rc);
	for (size_t i = 0; i < n; i++) {
		int64_t now_stake = 0, w;

		r = stake_of(l, b[i].voter, &now_stake);
		if (r < 0)
			return r;
		w = MIN(now_stake, b[i].weight);
		if (b[i].yes)
			yes += w;
		else
			no += w;
	}
	r = total_stake(l, &total);
	if (r < 0)
		return r;
	r = gov_params(l, &p);
	if (r < 0)
		return r;
	quorum = total > 0 && (yes + no) * ECON_BPS >= (__int128)p.gov_quorum_bps * total;
	passed = quorum && yes * ECON_BPS > (__int128)p.gov_threshold_bps * (yes + no);
	q = p;
	state = !passed						? GOV_FAILED
		: econ_param_set(&q, pr->param, pr->value) == 0 ? GOV_PASSED
								: GOV_NOT_APPLIED;
	data = cJSON_CreateObject();
	if (!data || canon_add_i64(data, "yes", (int64_t)yes) < 0 ||
	    canon_add_i64(data, "no", (int64_t)no) < 0 ||
	    canon_add_i64(data, "total_stake", total) < 0 ||
	    canon_add_i64(data, "quorum_bps", p.gov_quorum_bps) < 0 ||
	    canon_add_i64(data, "threshold_bps", p.gov_threshold_bps) < 0 ||
	    !cJSON_AddBoolToObject(data, "quorum", quorum) ||
	    canon_add_i64(data, "state", state) < 0)
		return -ENOMEM;
	snprintf(cause, sizeof(cause), "proposal:%" PRId64, pr->id);
	a = (struct ledger_append_args){
		.kind = "tally", .cause = cause, .time_ns = now_ns, .epoch = epoch, .data = data};
	r = ledger_append(l, &a, NULL);
	if (r < 0)
		return r;
	if (state == GOV_PASSED) {
		cJSON_Delete(data);
		econ_param_get(&p, pr->param, &old);
		data = cJSON_CreateObject();
		if (!data || !cJSON_AddStringToObject(data, "name", pr->param) ||
		    canon_add_i64(data, "value", pr->value) < 0 ||
		    canon_add_i64(data, "old", old) < 0)
			return -ENOMEM;
		a.kind = "param";
		a.data = data;
		r = ledger_append(l, &a, NULL);
		if (r < 0)
			return r;
		st = ledger_stmt(l, sql_param);
		if (!st)
			return -EIO;
		sqlite3_bind_text(st, 1, pr->param, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, pr->value);
		r = ledger_stmt_run(st);
		if (r < 0)
			return r;
	}
	st = ledger_stmt(l, sql_state);
	if (!st)
		return -EIO;
	sqlite3_bind_int64(st, 1, pr->id);
	sqlite3_bind_int64(st, 2, state);
	return ledger_stmt_run(st);
}

int gov_tick(struct ledger *l, int64_t now_ns, uint64_t epoch)
{
	static const char sql[] =
		"SELECT id FROM ledger_proposals WHERE state = 0 AND end_ns <= ?1 "
		"ORDER BY id LIMIT 64";
	int64_t ids[64];
	size_t n = 0;
	struct ledger_unit u;
	sqlite3_stmt *st;
	int r;

	r = ledger_unit_begin(l, &u);
	if (r < 0)
		return r;
	st = ledger_stmt(l, sql);
	if (!st) {
		r = -EIO;
		goto out;
	}
	sqlite3_bind_int64(st, 1, now_ns);
	while (n < ARRAY_SIZE(ids) && sqlite3_step(st) == SQLITE_ROW)
		ids[n++] = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	for (size_t i = 0; i < n && r >= 0; i++) {
		struct proposal pr = {0};

		r = proposal_get(l, ids[i], &pr);
		if (r >= 0)
			r = tally_one(l, &pr, now_ns, epoch);
	}
out:
	r = ledger_unit_end(l, &u, r);
	return r < 0 ? r : (int)n;
}
