/* harness.h -- a tiny unit-test harness: a table of cases, CHECK macros, exit 0 pass / 1 fail / 77 skip. */
#ifndef AICN_TEST_HARNESS_H
#define AICN_TEST_HARNESS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct test_case {
	const char *name;
	void (*fn)(void);
};

#define TEST(fn)                                                                                   \
	{                                                                                          \
#fn, fn                                                                            \
	}

static int harness_failed;	 /* checks failed in the current case */
static const char *harness_skip; /* reason the current case skipped, or NULL */
static char harness_skip_buf[256] __attribute__((unused));

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);   \
			harness_failed++;                                                          \
			return;                                                                    \
		}                                                                                  \
	} while (0)

#define CHECK_EQ(a, b)                                                                             \
	do {                                                                                       \
		long long _a = (long long)(a), _b = (long long)(b);                                \
		if (_a != _b) {                                                                    \
			fprintf(stderr, "%s:%d: CHECK_EQ(%s, %s) failed: %lld != %lld\n",          \
				__FILE__, __LINE__, #a, #b, _a, _b);                               \
			harness_failed++;                                                          \
			return;                                                                    \
		}                                                                                  \
	} while (0)

#define CHECK_STREQ(a, b)                                                                          \
	do {                                                                                       \
		const char *_a = (a), *_b = (b);                                                   \
		if (!_a || !_b || strcmp(_a, _b) != 0) {                                           \
			fprintf(stderr, "%s:%d: CHECK_STREQ(%s, %s) failed: \"%s\" != \"%s\"\n",   \
				__FILE__, __LINE__, #a, #b, _a ? _a : "(null)",                    \
				_b ? _b : "(null)");                                               \
			harness_failed++;                                                          \
			return;                                                                    \
		}                                                                                  \
	} while (0)

/* Skip the current case (with a reason) and return from it. */
#define SKIP(...)                                                                                  \
	do {                                                                                       \
		snprintf(harness_skip_buf, sizeof(harness_skip_buf), __VA_ARGS__);                 \
		harness_skip = harness_skip_buf;                                                   \
		return;                                                                            \
	} while (0)

/* Skip unless running as root; privileged cases call this first. */
#define REQUIRE_ROOT()                                                                             \
	do {                                                                                       \
		if (geteuid() != 0)                                                                \
			SKIP("needs root");                                                        \
	} while (0)

/*
 * Run every case of a NULL-terminated table.  Returns 1 if any failed, 77 if all
 * skipped, else 0; with AICN_TEST_MUST_WORK=1 any skip is a failure.
 */
static inline int harness_run(const struct test_case *cases)
{
	const char *mw = getenv("AICN_TEST_MUST_WORK");
	int must_work = mw && strcmp(mw, "1") == 0;
	int failed = 0, skipped = 0, total = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (const struct test_case *t = cases; t->name; t++) {
		total++;
		harness_failed = 0;
		harness_skip = NULL;
		t->fn();
		if (harness_failed) {
			failed++;
			printf("FAIL %s\n", t->name);
		} else if (harness_skip) {
			skipped++;
			printf("SKIP %s: %s\n", t->name, harness_skip);
		} else {
			printf("ok   %s\n", t->name);
		}
	}
	if (failed || (skipped && must_work))
		return 1;
	return skipped == total && total ? 77 : 0;
}

#endif /* AICN_TEST_HARNESS_H */
