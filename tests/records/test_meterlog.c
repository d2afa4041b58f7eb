/* test_meterlog.c -- record format, checkpoints, heartbeats, torn-tail recovery at every byte, and kill -9 during appends. */
#include <aicn/canon.h>
#include <aicn/compiler.h>
#include <aicn/meterlog.h>

#include "harness.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

static char dir[] = "/tmp/aicn-test-meterlog-XXXXXX";
static EVP_PKEY *key;
static uint64_t fake_now;

static uint64_t fake_clock(void)
{
	return fake_now;
}

static void fill(struct usage_record *r, int i)
{
	memset(r, 0, sizeof(*r));
	r->type = RECORD_INTERVAL;
	snprintf(r->task, sizeof(r->task), "task-%d", i);
	snprintf(r->renter, sizeof(r->renter), "renter@example");
	memset(r->image, 0x11, sizeof(r->image));
	r->cgroup_id = 77;
	r->start_ns = 1000;
	r->end_ns = 2000 + (uint64_t)i;
	r->cpu_ns = 500 + (uint64_t)i;
	r->limits.cpu_period_us = 100000;
}

static void path_of(char *buf, size_t n, const char *name)
{
	snprintf(buf, n, "%s/%s", dir, name);
}

static int verify_path(const char *path, struct meterlog_verify_result *res)
{
	struct meterlog_verify_opts o = {.pub = key, .threads = 2, .strict = 1};

	return meterlog_verify_file(path, &o, res);
}

static void test_record_format(void)
{
	struct usage_record r, back;
	struct key_signer *s = NULL;
	struct key_verifier *v = NULL;
	char *line = NULL, *unsigned_bytes = NULL, buf[RECORD_LINE_MAX];
	size_t len, ulen;
	const char *why = NULL;

	fill(&r, 1);
	r.version = RECORD_VERSION;
	CHECK_EQ(key_node_id(key, r.node), 0);
	r.seq = 5;
	r.time_ns = 1767225600123456789ULL; /* beyond 2^53: must stay exact */
	r.type = RECORD_FINAL;
	r.exit_kind = RECORD_EXIT_SIGNALED;
	r.exit_status = 9;
	r.has_result = 1;
	memset(r.result, 0xee, sizeof(r.result));
	CHECK_EQ(key_signer_new(key, &s), 0);
	CHECK_EQ(key_verifier_new(key, &v), 0);
	CHECK_EQ(record_sign(&r, s, &line, &len), 0);
	CHECK_EQ(canon_is_canonical(line, len), 1);
	CHECK(strstr(line, "\"time\":1767225600123456789"));
	CHECK(strstr(line, "\"exit_kind\":\"signaled\""));
	CHECK_EQ(record_parse(line, len, &back, &why), 0);
	{
		char *again = NULL;
		size_t alen;

		/* everything survived the round trip */
		CHECK_EQ(record_format(&back, &again, &alen), 0);
		CHECK_EQ(alen, len);
		CHECK(memcmp(again, line, len) == 0);
		free(again);
		CHECK(back.time_ns == r.time_ns && back.exit_status == 9 && back.has_result);
	}
	CHECK_EQ(record_verify(&back, v), 0);
	CHECK_EQ(record_verify_line(line, len, &back, v), 0);
	/* the signed bytes are the line without its sig member */
	CHECK_EQ(record_unsigned_bytes(&r, &unsigned_bytes, &ulen), 0);
	CHECK_EQ(record_unsigned_from_line(line, len, buf), ulen);
	CHECK(memcmp(buf, unsigned_bytes, ulen) == 0);
	/* a changed figure no longer verifies */
	back.cpu_ns++;
	CHECK_EQ(record_verify(&back, v), -EBADMSG);
	free(unsigned_bytes);
	free(line);
	/* heartbeat: only the log fields */
	memset(&r, 0, sizeof(r));
	r.version = RECORD_VERSION;
	r.type = RECORD_HEARTBEAT;
	CHECK_EQ(key_node_id(key, r.node), 0);
	CHECK_EQ(record_sign(&r, s, &line, &len), 0);
	CHECK(!strstr(line, "task"));
	CHECK_EQ(record_parse(line, len, &back, &why), 0);
	free(line);
	/* invalid ids are refused when writing */
	fill(&r, 1);
	r.version = RECORD_VERSION;
	CHECK_EQ(key_node_id(key, r.node), 0);
	snprintf(r.task, sizeof(r.task), "bad id with spaces");
	CHECK_EQ(record_sign(&r, s, &line, &len), -EINVAL);
	key_signer_free(s);
	key_verifier_free(v);
}

static void test_record_parse_rejects(void)
{
	struct usage_record r, back;
	struct key_signer *s = NULL;
	char *line = NULL, *bad;
	size_t len;
	const char *why;

	fill(&r, 2);
	r.version = RECORD_VERSION;
	CHECK_EQ(key_node_id(key, r.node), 0);
	CHECK_EQ(key_signer_new(key, &s), 0);
	CHECK_EQ(record_sign(&r, s, &line, &len), 0);
	key_signer_free(s);
	static const struct {
		const char *from, *to;
	} edits[] = {
		{"{\"cgroup\":", "{ \"cgroup\":"},		 /* whitespace */
		{"\"v\":1", "\"v\":2"},				 /* version */
		{"\"v\":1", "\"v\":1.0"},			 /* float */
		{"\"v\":1", "\"v\":1,\"x\":1"},			 /* unknown field */
		{"\"cpu_ns\":502,", ""},			 /* missing field */
		{"\"cpu_ns\":502", "\"cpu_ns\":-1"},		 /* negative */
		{"\"cpu_ns\":502", "\"cpu_ns\":0502"},		 /* leading zero */
		{"\"type\":\"interval\"", "\"type\":\"final\""}, /* kind "running" in a final */
		{"\"image\":\"sha256:", "\"image\":\"sha512:"},
		{"\"result\":null", "\"result\":\"x\""},
		{"\"task\":\"task-2\"", "\"task\":\"task 2\""},
		{"\"cgroup\":77,\"cpu_kernel_ns\":0",
		 "\"cpu_kernel_ns\":0,\"cgroup\":77"}, /* order */
	};
	for (size_t i = 0; i < ARRAY_SIZE(edits); i++) {
		const char *p = strstr(line, edits[i].from);
		size_t fl = strlen(edits[i].from), tl = strlen(edits[i].to);

		CHECK(p);
		bad = malloc(len + tl + 1);
		CHECK(bad);
		memcpy(bad, line, (size_t)(p - line));
		memcpy(bad + (p - line), edits[i].to, tl);
		strcpy(bad + (p - line) + tl, p + fl);
		why = NULL;
		if (record_parse(bad, strlen(bad), &back, &why) != -EINVAL) {
			fprintf(stderr, "accepted: %s\n", bad);
			harness_failed++;
		}
		CHECK(why);
		free(bad);
	}
	CHECK_EQ(record_parse(line, len - 1, &back, &why), -EINVAL);
	CHECK_EQ(record_parse("", 0, &back, &why), -EINVAL);
	CHECK_EQ(record_parse("[]", 2, &back, &why), -EINVAL);
	free(line);
}

static void test_checkpoint_note(void)
{
	struct checkpoint c = {.size = 42}, back;
	char *note = NULL, *vk = NULL;
	const char *why;
	EVP_PKEY *k2 = NULL;

	snprintf(c.origin, sizeof(c.origin), "example.org/log");
	memset(c.root, 0x5a, sizeof(c.root));
	CHECK_EQ(checkpoint_sign(&c, key, &note), 0);
	/* C2SP form: body, blank line, em dash signature line */
	CHECK(strncmp(note, "example.org/log\n42\nWlpa", 23) == 0);
	CHECK(strstr(note, "\n\n\xe2\x80\x94 example.org/log "));
	CHECK_EQ(checkpoint_verify(note, strlen(note), key, "example.org/log", &back, &why), 0);
	CHECK_EQ(back.size, 42);
	CHECK(memcmp(back.root, c.root, 32) == 0);
	CHECK_EQ(checkpoint_verify(note, strlen(note), key, "other", &back, &why), -EBADMSG);
	CHECK_EQ(key_generate(&k2), 0);
	CHECK_EQ(checkpoint_verify(note, strlen(note), k2, NULL, &back, &why), -EBADMSG);
	note[16] = '3'; /* size 43 */
	CHECK_EQ(checkpoint_verify(note, strlen(note), key, NULL, &back, &why), -EBADMSG);
	CHECK_EQ(note_verifier_key("example.org/log", key, &vk), 0);
	CHECK(strncmp(vk, "example.org/log+", 16) == 0);
	EVP_PKEY_free(k2);
	free(vk);
	free(note);
}

static void test_checkpoints_and_heartbeats(void)
{
	char path[256];
	struct meterlog_opts o = {.checkpoint_every = 5,
				  .checkpoint_interval_ns = 60000000000ULL,
				  .heartbeat_interval_ns = 120000000000ULL,
				  .clock_ns = fake_clock};
	struct meterlog *ml = NULL;
	struct meterlog_verify_result res;
	struct usage_record r;

	path_of(path, sizeof(path), "hb.log");
	fake_now = 1767225600000000000ULL;
	CHECK_EQ(meterlog_open(path, key, &o, &ml, NULL, NULL), 0);
	for (int i = 0; i < 7; i++) {
		fill(&r, i);
		CHECK_EQ(meterlog_append(ml, &r), 0);
		CHECK_EQ(r.seq, (uint64_t)i);
	}
	CHECK_EQ(meterlog_sealed(ml), 5); /* every N records */
	CHECK_EQ(meterlog_flush(ml), 0);
	CHECK_EQ(meterlog_durable(ml), 7);
	/* T seconds later the 2 unsealed ones get sealed */
	fake_now += 30000000000ULL;
	CHECK_EQ(meterlog_tick(ml), 0);
	CHECK_EQ(meterlog_sealed(ml), 5);
	fake_now += 31000000000ULL;
	CHECK_EQ(meterlog_tick(ml), 0);
	CHECK_EQ(meterlog_sealed(ml), 7);
	/* idle: a heartbeat, sealed at once */
	fake_now += 60000000000ULL;
	CHECK_EQ(meterlog_tick(ml), 0);
	CHECK_EQ(meterlog_size(ml), 8);
	CHECK_EQ(meterlog_sealed(ml), 8);
	/* time never goes backwards in the log, even when the clock does */
	fake_now -= 3600000000000ULL;
	fill(&r, 9);
	CHECK_EQ(meterlog_append(ml, &r), 0);
	CHECK(r.time_ns >= 1767225600000000000ULL + 121000000000ULL);
	/* a second writer is refused */
	{
		struct meterlog *ml2 = NULL;

		CHECK_EQ(meterlog_open(path, key, &o, &ml2, NULL, NULL), -EBUSY);
	}
	CHECK_EQ(meterlog_close(ml), 0);
	CHECK_EQ(verify_path(path, &res), 0);
	CHECK_EQ(res.records, 9);
	/* reopened: the sequence continues */
	CHECK_EQ(meterlog_open(path, key, &o, &ml, NULL, NULL), 0);
	CHECK_EQ(meterlog_size(ml), 9);
	fill(&r, 10);
	CHECK_EQ(meterlog_append(ml, &r), 0);
	CHECK_EQ(r.seq, 9);
	CHECK_EQ(meterlog_close(ml), 0);
	CHECK_EQ(verify_path(path, &res), 0);
	/* a log of another node is not continued */
	{
		EVP_PKEY *k2 = NULL;

		CHECK_EQ(key_generate(&k2), 0);
		CHECK_EQ(meterlog_open(path, k2, &o, &ml, NULL, NULL), -EBADMSG);
		EVP_PKEY_free(k2);
	}
}

static off_t file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? st.st_size : -1;
}

static int copy_prefix(const char *from, const char *to, off_t n, const char *junk, size_t jl)
{
	char buf[1 << 16];
	int in = open(from, O_RDONLY | O_CLOEXEC), out;
	ssize_t r;

	if (in < 0)
		return -1;
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (out < 0) {
		close(in);
		return -1;
	}
	while (n > 0 && (r = read(in, buf, (size_t)MIN((off_t)sizeof(buf), n))) > 0) {
		if (write(out, buf, (size_t)r) != r)
			break;
		n -= r;
	}
	if (jl && write(out, junk, jl) != (ssize_t)jl)
		n = 1;
	close(in);
	close(out);
	return n == 0 ? 0 : -1;
}

/* Cut the log inside its last line at every byte offset: recovered every time. */
static void torn_at_every_offset(int last_is_checkpoint)
{
	char path[256], cut[256], torn[300];
	struct meterlog_opts o = {.checkpoint_every = 1000, .clock_ns = fake_clock};
	struct meterlog *ml = NULL;
	struct meterlog_recovery rec;
	struct meterlog_verify_result res;
	struct usage_record r;
	off_t before, full;

	path_of(path, sizeof(path), "torn.log");
	path_of(cut, sizeof(cut), "torn-cut.log");
	snprintf(torn, sizeof(torn), "%s.torn", cut);
	unlink(path);
	fake_now = 1767225600000000000ULL;
	CHECK_EQ(meterlog_open(path, key, &o, &ml, NULL, NULL), 0);
	for (int i = 0; i < 5; i++) {
		fill(&r, i);
		CHECK_EQ(meterlog_append(ml, &r), 0);
	}
	CHECK_EQ(meterlog_checkpoint(ml), 0);
	fill(&r, 5);
	CHECK_EQ(meterlog_append(ml, &r), 0);
	CHECK_EQ(meterlog_flush(ml), 0);
	before = file_size(path);
	if (last_is_checkpoint) {
		CHECK_EQ(meterlog_checkpoint(ml), 0);
	} else {
		fill(&r, 6);
		CHECK_EQ(meterlog_append(ml, &r), 0);
		CHECK_EQ(meterlog_flush(ml), 0);
	}
	meterlog_free(ml); /* a crash: no shutdown checkpoint */
	full = file_size(path);
	CHECK(full > before);
	for (off_t n = before; n < full; n++) {
		uint64_t want = 6; /* records surviving the cut */

		unlink(torn);
		CHECK_EQ(copy_prefix(path, cut, n, NULL, 0), 0);
		CHECK_EQ(meterlog_open(cut, key, &o, &ml, &rec, NULL), 0);
		CHECK_EQ(rec.records, want);
		CHECK_EQ(rec.torn_bytes, (uint64_t)(n - before));
		CHECK_EQ(file_size(torn), n > before ? n - before : -1);
		/* the sequence continues after the dropped line */
		fill(&r, 100);
		CHECK_EQ(meterlog_append(ml, &r), 0);
		CHECK_EQ(r.seq, want);
		CHECK_EQ(meterlog_close(ml), 0);
		CHECK_EQ(verify_path(cut, &res), 0);
		CHECK_EQ(res.records, want + 1);
	}
	/* the complete file: nothing dropped */
	CHECK_EQ(copy_prefix(path, cut, full, NULL, 0), 0);
	CHECK_EQ(meterlog_open(cut, key, &o, &ml, &rec, NULL), 0);
	CHECK_EQ(rec.torn_bytes, 0);
	CHECK_EQ(rec.records, last_is_checkpoint ? 6 : 7);
	CHECK_EQ(meterlog_close(ml), 0);
	/* zeros a crash left after the last line (size updated, data not) are dropped too */
	{
		static const char zeros[300];

		unlink(torn);
		CHECK_EQ(copy_prefix(path, cut, full, zeros, sizeof(zeros)), 0);
		CHECK_EQ(meterlog_open(cut, key, &o, &ml, &rec, NULL), 0);
		CHECK_EQ(rec.torn_bytes, sizeof(zeros));
		CHECK_EQ(meterlog_close(ml), 0);
		CHECK_EQ(verify_path(cut, &res), 0);
	}
	/* damage before the last line is not silently dropped: refused */
	{
		char junk[] = "garbage\n";

		CHECK_EQ(copy_prefix(path, cut, before, junk, sizeof(junk) - 1), 0);
		CHECK_EQ(meterlog_open(cut, key, &o, &ml, &rec, NULL), -EBADMSG);
	}
}

static void test_torn_record_line(void)
{
	torn_at_every_offset(0);
}

static void test_torn_checkpoint_line(void)
{
	torn_at_every_offset(1);
}

/*
 * kill -9 during appends, 1000 times: every record the writer reported durable
 * (after meterlog_flush returned) is there after recovery, and the log verifies.
 */
static void test_kill9_loop(void)
{
	char path[256];
	struct meterlog_opts o = {.checkpoint_every = 7};
	struct meterlog_verify_result res;
	uint64_t durable = 0;
	unsigned seed = (unsigned)getpid();
	int iterations = 1000, segment = 0, kills = 0;

	for (int it = 0; it < iterations; it++) {
		int pfd[2];
		pid_t pid;
		uint64_t got = durable;
		struct meterlog *ml = NULL;
		struct meterlog_recovery rec;
		char line[32];
		FILE *f;

		if (it % 100 == 0) {
			/* a fresh log now and then keeps each recovery short */
			if (it > 0) {
				CHECK_EQ(verify_path(path, &res), 0);
				CHECK(res.records >= durable);
			}
			snprintf(path, sizeof(path), "%s/kill-%d.log", dir, segment++);
			got = 0;
		}
		CHECK(pipe2(pfd, O_CLOEXEC) == 0);
		pid = fork();
		CHECK(pid >= 0);
		if (pid == 0) {
			struct meterlog *cml = NULL;

			close(pfd[0]);
			if (meterlog_open(path, key, &o, &cml, NULL, NULL) < 0)
				_exit(3);
			for (int i = 0;; i++) {
				struct usage_record r;
				char msg[32];
				int n;

				fill(&r, i);
				if (meterlog_append(cml, &r) < 0 || meterlog_flush(cml) < 0)
					_exit(4);
				n = snprintf(msg, sizeof(msg), "%llu\n",
					     (unsigned long long)meterlog_durable(cml));
				if (write(pfd[1], msg, (size_t)n) != n)
					_exit(5);
			}
		}
		close(pfd[1]);
		/* let it run for 0..3 ms, then kill it wherever it is */
		{
			struct timespec ts = {0, (long)(rand_r(&seed) % 3000) * 1000};

			nanosleep(&ts, NULL);
		}
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		kills++;
		f = fdopen(pfd[0], "r");
		CHECK(f);
		while (fgets(line, sizeof(line), f))
			got = MAX(got, strtoull(line, NULL, 10));
		fclose(f);
		durable = got;
		CHECK_EQ(meterlog_open(path, key, &o, &ml, &rec, NULL), 0);
		if (rec.records < durable) {
			fprintf(stderr,
				"iteration %d: %llu records after recovery, %llu were durable\n",
				it, (unsigned long long)rec.records, (unsigned long long)durable);
			harness_failed++;
			meterlog_free(ml);
			return;
		}
		durable = rec.records;
		CHECK_EQ(meterlog_close(ml), 0);
	}
	CHECK_EQ(verify_path(path, &res), 0);
	CHECK_EQ(kills, iterations);
}

static const struct test_case cases[] = {
	TEST(test_record_format),    TEST(test_record_parse_rejects),
	TEST(test_checkpoint_note),  TEST(test_checkpoints_and_heartbeats),
	TEST(test_torn_record_line), TEST(test_torn_checkpoint_line),
	TEST(test_kill9_loop),	     {NULL, NULL},
};

int main(void)
{
	char cmd[300];
	int r;

	if (!mkdtemp(dir) || key_generate(&key) < 0)
		return 1;
	r = harness_run(cases);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0 && r == 0)
		r = 1;
	EVP_PKEY_free(key);
	return r;
}
