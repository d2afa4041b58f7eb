/* test_tamper.c -- every field of every record changed, lines deleted/duplicated/swapped/truncated, forgeries, lying checkpoints: all detected. */
#include <aicn/canon.h>
#include <aicn/compiler.h>
#include <aicn/meterlog.h>

#include "harness.h"

#include <openssl/evp.h>
#include <sys/stat.h>

static char dir[] = "/tmp/aicn-test-tamper-XXXXXX";
static EVP_PKEY *key, *other;
static uint64_t fake_now;

static uint64_t fake_clock(void)
{
	return fake_now;
}

/* A log of n task records from three tasks, checkpoint every `every`, sealed; returns its bytes. */
static char *make_log(EVP_PKEY *k, const char *name, int n, int every, uint64_t seed,
		      size_t *ret_len)
{
	char path[256];
	struct meterlog_opts o = {.checkpoint_every = (uint64_t)every,
				  .clock_ns = fake_clock,
				  .heartbeat_interval_ns = UINT64_MAX / 2,
				  .checkpoint_interval_ns = UINT64_MAX / 2};
	struct meterlog *ml = NULL;
	FILE *f;
	char *buf;
	long len;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	unlink(path);
	fake_now = 1767225600ULL * 1000000000ULL + seed;
	if (meterlog_open(path, k, &o, &ml, NULL, NULL) < 0)
		return NULL;
	for (int i = 0; i < n; i++) {
		struct usage_record r = {0};

		fake_now += 1000000000ULL;
		r.type = i % 5 == 4 ? RECORD_FINAL : RECORD_INTERVAL;
		snprintf(r.task, sizeof(r.task), "task-%d", i / 5);
		snprintf(r.renter, sizeof(r.renter), "renter-%d", i % 3);
		r.replica = (uint32_t)(i % 2);
		memset(r.image, 0xab, sizeof(r.image));
		r.cgroup_id = 1000 + (uint64_t)i / 5;
		r.start_ns = fake_now - 5000000000ULL;
		r.end_ns = fake_now;
		r.wall_ns = 5000000000ULL;
		r.cpu_ns = 1000000ULL * (uint64_t)(i + 1) + seed;
		r.cpu_kernel_ns = r.cpu_ns + 7;
		r.runq_wait_ns = 12345;
		r.switches = 10 + (uint64_t)i;
		r.procs = 2;
		r.net_rx_bytes = 100;
		r.net_tx_bytes = 200;
		r.mem_peak_bytes = 1 << 20;
		r.limits.cpu_quota_us = 100000;
		r.limits.cpu_period_us = 100000;
		r.limits.mem_bytes = 1 << 30;
		r.limits.pids = 64;
		r.limits.timeout_ns = 60000000000ULL;
		if (r.type == RECORD_FINAL) {
			r.exit_kind = RECORD_EXIT_EXITED;
			r.exit_status = 0;
			r.has_result = 1;
			memset(r.result, 0xcd, sizeof(r.result));
		}
		if (meterlog_append(ml, &r) < 0) {
			meterlog_free(ml);
			return NULL;
		}
	}
	if (meterlog_close(ml) < 0)
		return NULL;
	f = fopen(path, "re");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	buf = malloc((size_t)len + 1);
	if (!buf || fread(buf, 1, (size_t)len, f) != (size_t)len) {
		fclose(f);
		free(buf);
		return NULL;
	}
	fclose(f);
	buf[len] = '\0';
	*ret_len = (size_t)len;
	return buf;
}

/* Lines of a buffer (pointers into a copy). */
struct lines {
	char *copy;
	char *l[256];
	int n;
};

static void split(const char *buf, struct lines *ls)
{
	char *save = NULL, *t;

	ls->copy = strdup(buf);
	ls->n = 0;
	for (t = strtok_r(ls->copy, "\n", &save); t && ls->n < 256; t = strtok_r(NULL, "\n", &save))
		ls->l[ls->n++] = t;
}

/* Join lines (each with its newline), with line `skip` left out and `dup` written twice. */
static char *join(const struct lines *ls, int skip, int dup, int swap, int upto, size_t *ret_len)
{
	size_t total = 0, off = 0;
	char *out;
	int n = upto >= 0 ? upto : ls->n;

	for (int i = 0; i < ls->n; i++)
		total += 2 * (strlen(ls->l[i]) + 1);
	out = malloc(total + 1);
	if (!out)
		abort();
	for (int i = 0; i < n; i++) {
		int src = i;

		if (i == skip)
			continue;
		if (swap >= 0 && i == swap)
			src = swap + 1;
		else if (swap >= 0 && i == swap + 1)
			src = swap;
		off += (size_t)sprintf(out + off, "%s\n", ls->l[src]);
		if (i == dup)
			off += (size_t)sprintf(out + off, "%s\n", ls->l[src]);
	}
	out[off] = '\0';
	*ret_len = off;
	return out;
}

static int verify_buf(const char *buf, size_t len, int cp_only, const char *const *ext,
		      struct meterlog_verify_result *res)
{
	struct meterlog_verify_opts o = {
		.pub = key, .checkpoints_only = cp_only, .threads = 2, .external = ext};

	return meterlog_verify(buf, len, &o, res);
}

static void test_clean_log_passes(void)
{
	struct meterlog_verify_result res;
	size_t len;
	char *buf = make_log(key, "clean.log", 30, 7, 0, &len);

	CHECK(buf);
	CHECK_EQ(verify_buf(buf, len, 0, NULL, &res), 0);
	CHECK_EQ(res.records, 30);
	CHECK_EQ(res.checkpoints, 5); /* at 7, 14, 21, 28 and 30 (shutdown) */
	CHECK_EQ(res.sealed, 30);
	CHECK_EQ(res.fail, ML_OK);
	CHECK_EQ(verify_buf(buf, len, 1, NULL, &res), 0);
	{
		struct meterlog_verify_opts o = {.pub = key, .strict = 1, .threads = 1};

		CHECK_EQ(meterlog_verify(buf, len, &o, &res), 0);
	}
	/* with another node's key nothing verifies */
	{
		struct meterlog_verify_opts o = {.pub = other, .threads = 2};

		CHECK_EQ(meterlog_verify(buf, len, &o, &res), -EBADMSG);
		CHECK(res.fail == ML_WRONG_NODE || res.fail == ML_BAD_SIGNATURE);
	}
	free(buf);
}

/* Change one member's value in a parsed record so it stays well-formed. */
static int mutate(cJSON *item)
{
	if (cJSON_IsRaw(item)) {
		char buf[32];
		unsigned long long v = strtoull(item->valuestring, NULL, 10);

		snprintf(buf, sizeof(buf), "%llu", v + 1);
		free(item->valuestring);
		item->valuestring = strdup(buf);
		return 1;
	}
	if (cJSON_IsString(item)) {
		char *s = item->valuestring;
		size_t n = strlen(s);

		if (n == 0)
			return 0;
		/* change the last character to another of the same class */
		s[n - 1] = s[n - 1] == 'a' ? 'b' : s[n - 1] == '=' ? '=' : 'a';
		if (s[n - 1] == '=') /* base64 signature: change a data character */
			s[n - 3] = s[n - 3] == 'A' ? 'B' : 'A';
		return 1;
	}
	if (cJSON_IsNull(item))
		return 2; /* the caller puts a digest in its place */
	return 0;
}

static void test_every_field_of_every_record(void)
{
	struct meterlog_verify_result res;
	struct lines ls;
	size_t len;
	char *buf = make_log(key, "fields.log", 25, 6, 0, &len);
	int tried = 0;

	CHECK(buf);
	split(buf, &ls);
	for (int i = 0; i < ls.n; i++) {
		cJSON *o = NULL;
		int nfields;

		if (strncmp(ls.l[i], "{\"note\"", 7) == 0)
			continue;
		CHECK_EQ(canon_parse(ls.l[i], strlen(ls.l[i]), 4, &o, NULL), 0);
		nfields = cJSON_GetArraySize(o);
		for (int f = 0; f < nfields; f++) {
			int nsub = cJSON_IsObject(cJSON_GetArrayItem(o, f))
					   ? cJSON_GetArraySize(cJSON_GetArrayItem(o, f))
					   : 1;

			for (int sub = 0; sub < nsub; sub++) {
				cJSON *copy = cJSON_Duplicate(o, 1),
				      *item = cJSON_GetArrayItem(copy, f);
				char *line = NULL, *saved = ls.l[i], *joined;
				size_t ll, jl;
				int m;

				if (cJSON_IsObject(item))
					item = cJSON_GetArrayItem(item, sub);
				m = mutate(item);
				if (m == 2)
					cJSON_ReplaceItemInObjectCaseSensitive(
						copy, item->string,
						cJSON_CreateString(
							"sha256:0000000000000000000000000000000000000000000000000000000000000000"));
				CHECK(m > 0);
				CHECK_EQ(canon_print(copy, &line, &ll), 0);
				cJSON_Delete(copy);
				ls.l[i] = line;
				joined = join(&ls, -1, -1, -1, -1, &jl);
				ls.l[i] = saved;
				/* full mode and checkpoints-only mode both catch it */
				if (verify_buf(joined, jl, 0, NULL, &res) != -EBADMSG) {
					fprintf(stderr,
						"undetected (full): line %d field %d.%d: %s\n",
						i + 1, f, sub, line);
					harness_failed++;
				}
				if (verify_buf(joined, jl, 1, NULL, &res) != -EBADMSG) {
					fprintf(stderr,
						"undetected (checkpoints-only): line %d field %d.%d\n",
						i + 1, f, sub);
					harness_failed++;
				}
				tried++;
				free(joined);
				free(line);
			}
		}
		cJSON_Delete(o);
	}
	CHECK(tried >= 25 * 27);
	free(ls.copy);
	free(buf);
}

static void test_resigned_change_detected(void)
{
	/* a changed record signed again with the node key (only the node could) still breaks chain and root */
	struct meterlog_verify_result res;
	struct lines ls;
	struct key_signer *s = NULL;
	size_t len;
	char *buf = make_log(key, "resign.log", 20, 5, 0, &len);

	CHECK(buf);
	split(buf, &ls);
	CHECK_EQ(key_signer_new(key, &s), 0);
	for (int i = 0; i < ls.n; i++) {
		struct usage_record r;
		char *line = NULL, *saved = ls.l[i], *joined;
		size_t ll, jl;

		if (strncmp(ls.l[i], "{\"note\"", 7) == 0)
			continue;
		CHECK_EQ(record_parse(ls.l[i], strlen(ls.l[i]), &r, NULL), 0);
		r.cpu_ns += 3600000000000ULL; /* an extra CPU-hour */
		CHECK_EQ(record_sign(&r, s, &line, &ll), 0);
		ls.l[i] = line;
		joined = join(&ls, -1, -1, -1, -1, &jl);
		ls.l[i] = saved;
		CHECK_EQ(verify_buf(joined, jl, 0, NULL, &res), -EBADMSG);
		CHECK(res.fail == ML_BROKEN_CHAIN || res.fail == ML_CP_ROOT);
		CHECK_EQ(verify_buf(joined, jl, 1, NULL, &res), -EBADMSG);
		free(joined);
		free(line);
	}
	key_signer_free(s);
	free(ls.copy);
	free(buf);
}

static void test_lines_deleted_duplicated_swapped(void)
{
	struct meterlog_verify_result res;
	struct lines ls;
	size_t len, jl;
	char *buf = make_log(key, "lines.log", 24, 5, 0, &len), *j;

	CHECK(buf);
	split(buf, &ls);
	for (int i = 0; i < ls.n; i++) {
		j = join(&ls, i, -1, -1, -1, &jl);
		if (verify_buf(j, jl, 0, NULL, &res) != -EBADMSG) {
			fprintf(stderr, "deleting line %d not detected\n", i + 1);
			harness_failed++;
		}
		free(j);
		j = join(&ls, -1, i, -1, -1, &jl);
		if (verify_buf(j, jl, 0, NULL, &res) != -EBADMSG) {
			fprintf(stderr, "duplicating line %d not detected\n", i + 1);
			harness_failed++;
		}
		free(j);
		if (i + 1 < ls.n) {
			j = join(&ls, -1, -1, i, -1, &jl);
			if (verify_buf(j, jl, 0, NULL, &res) != -EBADMSG) {
				fprintf(stderr, "swapping lines %d and %d not detected\n", i + 1,
					i + 2);
				harness_failed++;
			}
			free(j);
		}
	}
	/* the kinds are named */
	j = join(&ls, 2, -1, -1, -1, &jl);
	CHECK_EQ(verify_buf(j, jl, 0, NULL, &res), -EBADMSG);
	CHECK_EQ(res.fail, ML_SEQ_GAP);
	CHECK_EQ(res.fail_line, 3);
	free(j);
	j = join(&ls, -1, 1, -1, -1, &jl);
	CHECK_EQ(verify_buf(j, jl, 0, NULL, &res), -EBADMSG);
	CHECK_EQ(res.fail, ML_SEQ_REORDER);
	free(j);
	free(ls.copy);
	free(buf);
}

static char *note_of_line(const char *line)
{
	cJSON *o = NULL;
	const char *s;
	char *n;

	if (!line || canon_parse(line, strlen(line), 2, &o, NULL) < 0)
		return NULL;
	if (canon_get_str(o, "note", &s) < 0) {
		cJSON_Delete(o);
		return NULL;
	}
	n = strdup(s);
	cJSON_Delete(o);
	return n;
}

static void test_truncation(void)
{
	struct meterlog_verify_result res;
	struct lines ls;
	size_t len, jl;
	char *buf = make_log(key, "trunc.log", 24, 5, 0, &len), *note = NULL;
	const char *ext[2] = {NULL, NULL};

	CHECK(buf);
	split(buf, &ls);
	/* the auditor holds the latest checkpoint, as sent to the coordinator */
	CHECK(strncmp(ls.l[ls.n - 1], "{\"note\"", 7) == 0);
	note = note_of_line(ls.l[ls.n - 1]);
	CHECK(note);
	ext[0] = note;
	CHECK_EQ(verify_buf(buf, len, 0, ext, &res), 0);
	for (int k = 0; k < ls.n; k++) {
		char *j = join(&ls, -1, -1, -1, k, &jl);
		int sealed_boundary = k > 0 && strncmp(ls.l[k - 1], "{\"note\"", 7) == 0;
		int r = verify_buf(j, jl, 0, NULL, &res);

		/* cut inside a sealed period: an unsealed tail, never PASS */
		if (!sealed_boundary && r != -EBADMSG) {
			fprintf(stderr, "truncation to %d lines not detected\n", k);
			harness_failed++;
		}
		if (!sealed_boundary && k > 0)
			CHECK_EQ(res.fail, ML_UNSEALED_TAIL);
		/* cut at a checkpoint: the checkpoint the auditor holds shows it */
		r = verify_buf(j, jl, 0, ext, &res);
		if (r != -EBADMSG) {
			fprintf(stderr,
				"truncation to %d lines not detected with the held checkpoint\n",
				k);
			harness_failed++;
		}
		if (sealed_boundary)
			CHECK_EQ(res.fail, ML_TRUNCATED);
		free(j);
	}
	/* a torn last line is never PASS either */
	{
		char *torn = strndup(buf, len - 10);

		CHECK_EQ(verify_buf(torn, len - 10, 0, NULL, &res), -EBADMSG);
		CHECK_EQ(res.fail, ML_TORN_TAIL);
		free(torn);
	}
	free(note);
	free(ls.copy);
	free(buf);
}

static void test_forged_records(void)
{
	struct meterlog_verify_result res;
	struct lines ls;
	struct key_signer *s = NULL;
	size_t len, jl;
	char *buf = make_log(key, "forge.log", 12, 4, 0, &len);

	CHECK(buf);
	split(buf, &ls);
	CHECK_EQ(key_signer_new(other, &s), 0);
	for (int i = 0; i < ls.n; i++) {
		struct usage_record r;
		char *line = NULL, *saved = ls.l[i], *j;
		size_t ll;

		if (strncmp(ls.l[i], "{\"note\"", 7) == 0)
			continue;
		/* same content, signed by another key */
		CHECK_EQ(record_parse(ls.l[i], strlen(ls.l[i]), &r, NULL), 0);
		CHECK_EQ(record_sign(&r, s, &line, &ll), 0);
		ls.l[i] = line;
		j = join(&ls, -1, -1, -1, -1, &jl);
		ls.l[i] = saved;
		CHECK_EQ(verify_buf(j, jl, 0, NULL, &res), -EBADMSG);
		CHECK_EQ(res.fail, ML_BAD_SIGNATURE);
		CHECK_EQ(res.fail_seq, r.seq);
		free(j);
		free(line);
	}
	/* a checkpoint signed by another key */
	{
		char *fake = make_log(other, "forge-other.log", 12, 4, 0, &len);
		struct lines lo;

		CHECK(fake);
		split(fake, &lo);
		for (int i = 0; i < ls.n; i++)
			if (strncmp(ls.l[i], "{\"note\"", 7) == 0 &&
			    strncmp(lo.l[i], "{\"note\"", 7) == 0) {
				char *saved = ls.l[i], *j;

				ls.l[i] = lo.l[i];
				j = join(&ls, -1, -1, -1, -1, &jl);
				ls.l[i] = saved;
				CHECK_EQ(verify_buf(j, jl, 0, NULL, &res), -EBADMSG);
				CHECK_EQ(res.fail, ML_CP_BAD_SIGNATURE);
				free(j);
			}
		free(lo.copy);
		free(fake);
	}
	key_signer_free(s);
	free(ls.copy);
	free(buf);
}

static void test_lying_log(void)
{
	/* the node's key signs two histories: both sealed, they cannot both be true */
	struct meterlog_verify_result res;
	struct lines la = {0}, lb = {0};
	size_t lena = 0, lenb = 0, jl;
	char *a = make_log(key, "lie-a.log", 10, 10, 0, &lena);
	char *b = make_log(key, "lie-b.log", 20, 10, 99, &lenb);
	char *held, *j;
	const char *ext[2] = {NULL, NULL};

	CHECK(a && b);
	split(a, &la);
	CHECK(la.n == 11);
	split(b, &lb);
	CHECK_EQ(verify_buf(a, lena, 0, NULL, &res), 0);
	CHECK_EQ(verify_buf(b, lenb, 0, NULL, &res), 0);
	/* the auditor holds A's checkpoint at size 10; the node now shows B */
	held = note_of_line(la.l[10]);
	CHECK(held);
	ext[0] = held;
	CHECK_EQ(verify_buf(b, lenb, 0, ext, &res), -EBADMSG);
	CHECK(res.lying);
	CHECK(strstr(res.lying_detail, "lying log"));
	/* the same inside one file: A's checkpoint where B's was */
	CHECK(strncmp(lb.l[10], "{\"note\"", 7) == 0);
	lb.l[10] = la.l[10];
	j = join(&lb, -1, -1, -1, -1, &jl);
	CHECK_EQ(verify_buf(j, jl, 0, NULL, &res), -EBADMSG);
	CHECK(res.lying);
	free(j);
	free(held);
	free(la.copy);
	free(lb.copy);
	free(a);
	free(b);
}

static void test_proofs(void)
{
	char path[256], *json = NULL, *sum = NULL;
	const char *why = NULL;
	size_t len;
	char *buf = make_log(key, "proof.log", 40, 8, 0, &len);

	CHECK(buf);
	free(buf);
	snprintf(path, sizeof(path), "%s/proof.log", dir);
	for (uint64_t seq = 0; seq < 40; seq += 7) {
		CHECK_EQ(meterlog_prove_file(path, seq, &json, &why), 0);
		CHECK_EQ(meterlog_check_proof(json, strlen(json), key, &sum, &why), 0);
		free(sum);
		/* the wrong key, or a changed proof, fails */
		CHECK_EQ(meterlog_check_proof(json, strlen(json), other, &sum, &why), -EBADMSG);
		{
			char *p = strstr(json, "\"proof\":[\"");

			CHECK(p);
			p += 10;
			*p = *p == 'A' ? 'B' : 'A';
			CHECK_EQ(meterlog_check_proof(json, strlen(json), key, &sum, &why),
				 -EBADMSG);
		}
		free(json);
	}
	CHECK_EQ(meterlog_prove_file(path, 40, &json, &why), -ENOENT);
	CHECK_EQ(meterlog_prove_consistency_file(path, 8, 40, &json, &why), 0);
	CHECK_EQ(meterlog_check_proof(json, strlen(json), key, &sum, &why), 0);
	free(sum);
	free(json);
	CHECK_EQ(meterlog_prove_consistency_file(path, 9, 40, &json, &why), -ENOENT);
}

static const struct test_case cases[] = {
	TEST(test_clean_log_passes),
	TEST(test_every_field_of_every_record),
	TEST(test_resigned_change_detected),
	TEST(test_lines_deleted_duplicated_swapped),
	TEST(test_truncation),
	TEST(test_forged_records),
	TEST(test_lying_log),
	TEST(test_proofs),
	{NULL, NULL},
};

int main(void)
{
	char cmd[300];
	int r;

	if (!mkdtemp(dir) || key_generate(&key) < 0 || key_generate(&other) < 0)
		return 1;
	r = harness_run(cases);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0 && r == 0)
		r = 1;
	EVP_PKEY_free(key);
	EVP_PKEY_free(other);
	return r;
}
