/* sched_bench.c -- placements per second: 1,000 simulated agents, 100,000 queued tiny tasks, real store and scheduler. */
#include "../coord/coord_util.h"

#include <aicn/compiler.h>

#include <errno.h>
#include <getopt.h>
#include <time.h>

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: sched_bench [--agents N] [--tasks N] [--dir DIR]\n"
		   "Submit N tiny tasks to an in-process coordinator core (SQLite store in DIR,\n"
		   "synchronous=FULL), then place them on simulated agents that finish half of\n"
		   "what runs after every pass, until every task has been placed.  Prints the\n"
		   "submit rate, placements per second of the scheduling passes (placement and\n"
		   "commit) and end to end (with completions), and per CPU-second (what a\n"
		   "shared machine's load does not distort).\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"agents", required_argument, NULL, 'a'},
					     {"tasks", required_argument, NULL, 't'},
					     {"dir", required_argument, NULL, 'd'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	unsigned agents = 1000, tasks = 100000, seed = 42;
	const char *base = NULL;
	struct tdir d;
	struct coord *c = NULL;
	struct coord_params p;
	struct coord_actions a = {0};
	int64_t renter, *running = NULL;
	size_t nrun = 0;
	char image[80], err[256], req[512];
	double t0, t_submit, t_place = 0, t_all, c_place = 0;
	uint64_t placed = 0, passes = 0, cores = 0;
	int opt, r;

	while ((opt = getopt_long(argc, argv, "a:t:d:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'a':
			agents = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 't':
			tasks = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'd':
			base = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!agents || agents > 4095 || !tasks || tasks > 10000000) {
		usage(stderr);
		return 2;
	}
	if (base) {
		snprintf(d.dir, sizeof(d.dir), "%s/sched-bench-XXXXXX", base);
		if (!mkdtemp(d.dir))
			return 1;
		snprintf(d.db, sizeof(d.db), "%s/coord.db", d.dir);
		snprintf(d.blobs, sizeof(d.blobs), "%s/blobs", d.dir);
	} else {
		tdir_make(&d);
	}
	coord_params_default(&p);
	p.max_active = tasks + 1;
	running = calloc(tasks, sizeof(*running));
	if (!running || coord_open(d.db, d.blobs, &p, T0, &c) < 0 ||
	    store_account_ensure(coord_store(c), "renter", "renter", &renter) < 0 ||
	    put_image(c, renter, T0, image) < 0)
		return 1;
	/* Agents: 2..32 cores, asks 5..50, a few locations; node ids from their index. */
	for (unsigned i = 0; i < agents; i++) {
		char extra[128], hex[65], body[512];
		unsigned nc = 2 + rand_r(&seed) % 31;
		cJSON *j;
		int64_t id;

		snprintf(hex, sizeof(hex), "%064x", i + 1);
		snprintf(extra, sizeof(extra), "\"location\": \"%s\", \"perf\": %u",
			 (const char *[]){"eu-west", "eu-north", "us-east", "ap-south"}[i % 4],
			 rand_r(&seed) % 1000);
		snprintf(body, sizeof(body),
			 "{\"cores\": %u, \"memory\": 68719476736, \"price\": %u, %s}", nc,
			 5 + rand_r(&seed) % 46, extra);
		j = json(body);
		r = coord_node_register(c, renter, hex, j, T0, &id, &a, err, sizeof(err));
		cJSON_Delete(j);
		if (r < 0) {
			fprintf(stderr, "register: %s\n", err);
			return 1;
		}
		cores += nc;
	}
	if (coord_flush(c) < 0)
		return 1;

	t0 = now_s();
	for (unsigned i = 0; i < tasks; i++) {
		snprintf(req, sizeof(req),
			 "{\"image\": \"%s\", \"command\": [\"true\"], \"cores\": 1, "
			 "\"memory\": 1048576, \"max_wall_seconds\": 60, \"max_price\": 100%s}",
			 image, i % 10 == 0 ? ", \"policy\": \"cheapest\"" : "");
		if (submit(c, renter, req, T0, err, sizeof(err)) <= 0) {
			fprintf(stderr, "submit: %s\n", err);
			return 1;
		}
		if (i % 1000 == 999 && coord_flush(c) < 0)
			return 1;
	}
	if (coord_flush(c) < 0)
		return 1;
	t_submit = now_s() - t0;

	t0 = now_s();
	while (placed < tasks) {
		double tp = now_s(), cp = cpu_s();

		a.n = 0;
		r = coord_schedule(c, T0, 1000000, &a);
		if (r < 0 || coord_flush(c) < 0)
			return 1;
		t_place += now_s() - tp;
		c_place += cpu_s() - cp;
		placed += (uint64_t)r;
		passes++;
		for (size_t k = 0; k < a.n; k++)
			running[nrun++] = a.v[k].task_id | (a.v[k].node << 32);
		if (r == 0 && nrun == 0) {
			fprintf(stderr, "stuck: nothing placed and nothing running\n");
			return 1;
		}
		/* Agents finish about half of what runs before the next pass. */
		for (size_t k = 0; k < nrun;) {
			if (rand_r(&seed) % 2) {
				int64_t task = running[k] & 0xffffffff, node = running[k] >> 32;

				if (coord_task_event(c, node, task, COORD_EV_FINISHED, 0, "", NULL,
						     T0, NULL) < 0)
					return 1;
				running[k] = running[--nrun];
			} else {
				k++;
			}
		}
		if (coord_flush(c) < 0)
			return 1;
	}
	t_all = now_s() - t0;
	printf("agents %u (%llu cores), tasks %u, passes %llu\n", agents, (unsigned long long)cores,
	       tasks, (unsigned long long)passes);
	printf("submit: %.0f tasks/s\n", tasks / t_submit);
	printf("placements: %.0f /s in scheduling passes (place + commit), %.0f /s end to end "
	       "(with completions)\n",
	       placed / t_place, placed / t_all);
	printf("placements per CPU-second of the passes: %.0f (wall %.2fs, cpu %.2fs)\n",
	       placed / c_place, t_place, c_place);
	coord_actions_clear(&a);
	coord_free(c);
	free(running);
	tdir_remove(&d);
	return 0;
}
