/* main.c -- aicn-coordinator: configuration, state directory, TLS server, event loop, signals. */
#include "admin.h"
#include "conf.h"
#include "front.h"
#include "ledger.h"
#include "pay.h"
#include "task.h"

#include <aicn/compiler.h>
#include <aicn/log.h>
#include <aicn/loop.h>
#include <aicn/market_proto.h>
#include <aicn/tls.h>
#include <aicn/version.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define EXIT_USAGE 2
#define LISTEN_RETRIES 100 /* x 100 ms */

struct daemon {
	struct loop *loop;
	struct tls_ctx *tls;
	bool stopping;
};

static void usage(FILE *f)
{
	fprintf(f,
		"NAME\n"
		"    aicn-coordinator - the aicn marketplace: matches renters' tasks to providers\n"
		"\n"
		"SYNOPSIS\n"
		"    aicn-coordinator [--config FILE]\n"
		"    aicn-coordinator --check-config [--config FILE]\n"
		"    aicn-coordinator --version | --help\n"
		"    aicn-coordinator mint | ledger-export | params ...  (offline admin, see below)\n"
		"\n"
		"DESCRIPTION\n"
		"    Listens for agents, renters and auditors over TLS 1.3 with mutual\n"
		"    authentication against the network CA (docs/protocol.md).  Agents register\n"
		"    their offered cores, windows and prices; renters upload images and submit\n"
		"    tasks; the scheduler places each task on a provider, the agent runs it and\n"
		"    sends its signed usage record and result.  All state is one SQLite file\n"
		"    (WAL, synchronous=FULL) committed before any reply or offer goes out, so a\n"
		"    restart, kill -9 included, loses no submitted task and runs none twice.\n"
		"\n"
		"OPTIONS\n"
		"    -c, --config FILE   configuration file (default " COORD_CONF_DEFAULT ")\n"
		"    -t, --check-config  parse the configuration, check that the certificate, key,\n"
		"                        CA and CRL load and the state directory is usable, print\n"
		"                        the effective configuration and exit (0 valid, 1 not)\n"
		"    -V, --version       print the version and exit\n"
		"    -h, --help          print this help and exit\n"
		"\n"
		"CONFIGURATION\n"
		"    INI, keys optionally under [coordinator]; unknown keys are errors\n"
		"    (docs/coordinator.md, \"Configuration\"):\n"
		"    listen = ADDR:PORT      address to listen on (0.0.0.0:7443; [::]:7443)\n"
		"    cert, key, ca = PATH    coordinator certificate, its key, the network CA\n"
		"    crl = PATH              certificate revocation list (re-read on SIGHUP)\n"
		"    state_dir = PATH        database, blobs and checkpoints (" COORD_STATE_DEFAULT
		")\n"
		"    network = NAME          network name (ledger checkpoint origin; aicn)\n"
		"    params = PATH           genesis economic parameters (default: built in)\n"
		"    heartbeat_timeout = DUR node lost after this silence (30s)\n"
		"    retry_cap = N           requeues before a task fails (3)\n"
		"    blob_retention = DUR    uploaded blobs kept this long (7d)\n"
		"    result_grace = DUR      a result kept after the renter fetched it (0)\n"
		"    max_active = N          unfinished tasks before SUBMIT is refused (1000000)\n"
		"    tick_ms = MS            periodic scheduling and housekeeping (1000)\n"
		"    max_connections = N     open connections (100000)\n"
		"    log_level = LEVEL       err, warn, info, debug (info; AICN_LOG_LEVEL wins)\n"
		"    port_file = PATH        write the bound port there (for listen = ...:0)\n"
		"    settlement = on|off     escrow, Proof of Compute, payment, ledger (on)\n"
		"    Durations are seconds or a number with s, m, h or d.\n"
		"\n"
		"ADMIN SUBCOMMANDS\n"
		"    mint takes the state's lock (run it while the coordinator is stopped):\n"
		"    mint --config FILE NAME BASE_UNITS    the operator's faucet (ledger entry)\n"
		"    ledger-export --config FILE --out DIR export the ledger for auditors\n"
		"    params [--config FILE] [--json]       the economic parameters in force\n"
		"\n"
		"FILES\n"
		"    " COORD_CONF_DEFAULT "               configuration\n"
		"    " COORD_STATE_DEFAULT "/coordinator.db  state (SQLite)\n"
		"    " COORD_STATE_DEFAULT "/blobs/          images, inputs and results\n"
		"    " COORD_STATE_DEFAULT "/checkpoints/    signed ledger checkpoints\n"
		"\n"
		"SIGNALS\n"
		"    SIGTERM, SIGINT  stop: commit, close connections, exit 0\n"
		"    SIGHUP           re-read the CRL (the previous one stays if it is bad)\n"
		"\n"
		"ENVIRONMENT\n"
		"    AICN_LOG_LEVEL   err, warn, info or debug; overrides log_level\n"
		"\n"
		"EXIT STATUS\n"
		"    0  stopped by a signal, or the configuration is valid (--check-config)\n"
		"    1  a runtime failure (cannot listen, open or commit the state), or an\n"
		"       invalid configuration with --check-config\n"
		"    2  bad command line or configuration\n");
}

static void log_line(void *ud _unused_, enum log_level lvl, const char *line)
{
	log_msg(lvl, "%s", line);
}

static void on_term(int signo, void *ud)
{
	struct daemon *d = ud;

	log_info("signal %d: stopping", signo);
	d->stopping = true;
	loop_stop(d->loop);
}

static void on_hup(int signo _unused_, void *ud)
{
	struct daemon *d = ud;
	char err[TLS_ERR_LEN];

	if (tls_ctx_reload_crl(d->tls, err) < 0)
		log_err("CRL reload failed, keeping the previous one: %s", err);
	else
		log_info("CRL reloaded");
}

static int make_dir(const char *path)
{
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int tls_load(const struct coord_conf *cf, struct tls_ctx **ret, char *err)
{
	struct tls_config tc = {
		.ca_file = cf->ca,
		.cert_file = cf->cert,
		.key_file = cf->key,
		.crl_file = cf->crl,
		.server = 1,
		.peer_roles = ROLE_AGENT | ROLE_RENTER | ROLE_AUDITOR,
	};
	int r = tls_ctx_new(&tc, ret, err);

	if (r >= 0 && tls_ctx_self(*ret)->role != ROLE_COORDINATOR) {
		snprintf(err, TLS_ERR_LEN, "%s: not a coordinator certificate (role %s)", cf->cert,
			 role_name(tls_ctx_self(*ret)->role));
		*ret = tls_ctx_free(*ret);
		return -EINVAL;
	}
	return r;
}

static int write_port(const char *path, uint16_t port)
{
	_cleanup_free_ char *tmp = NULL;
	FILE *f;

	if (asprintf(&tmp, "%s.tmp", path) < 0)
		return -ENOMEM;
	f = fopen(tmp, "we");
	if (!f)
		return -errno;
	fprintf(f, "%u\n", port);
	if (fclose(f) != 0 || rename(tmp, path) < 0)
		return -errno;
	return 0;
}

static int run(struct coord_conf *cf)
{
	struct daemon d = {0};
	struct coord_params cp;
	struct coord *c = NULL;
	struct front *fr = NULL;
	struct front_config fc = {0};
	struct pay *pay = NULL;
	struct pay_config pc = {0};
	_cleanup_free_ char *origin = NULL;
	char perr[512] = "";
	_cleanup_free_ char *db = NULL, *blobs = NULL, *ckpt = NULL;
	char err[TLS_ERR_LEN];
	struct rlimit rl;
	uint16_t port = cf->listen_port;
	int r, fd, ret = 1;
	bool fatal;

	if (asprintf(&db, "%s/coordinator.db", cf->state_dir) < 0 ||
	    asprintf(&blobs, "%s/blobs", cf->state_dir) < 0 ||
	    asprintf(&ckpt, "%s/checkpoints", cf->state_dir) < 0)
		return 1;
	if ((r = make_dir(cf->state_dir)) < 0 || (r = make_dir(blobs)) < 0 ||
	    (r = make_dir(ckpt)) < 0) {
		log_errno(LOG_LVL_ERR, r, "cannot create the state directory %s", cf->state_dir);
		return 1;
	}
	rl.rlim_cur = rl.rlim_max = 262144;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0 && getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGPIPE, SIG_IGN);
	if (tls_load(cf, &d.tls, err) < 0) {
		log_err("%s", err);
		return 1;
	}
	coord_params_default(&cp);
	cp.heartbeat_timeout = cf->heartbeat_timeout;
	cp.retry_cap = cf->retry_cap;
	cp.blob_retention = cf->blob_retention;
	cp.result_grace = cf->result_grace;
	cp.max_active = cf->max_active;
	r = coord_open(db, blobs, &cp, (int64_t)time(NULL), &c);
	if (r == -EBUSY) {
		log_err("%s is in use by another coordinator", db);
		goto out;
	}
	if (r < 0) {
		log_errno(LOG_LVL_ERR, r, "cannot open the state in %s", cf->state_dir);
		goto out;
	}
	if (cf->settlement) {
		if (asprintf(&origin, "%s%s", LEDGER_ORIGIN_PREFIX, cf->network) < 0)
			goto out;
		pc.key_file = cf->key;
		pc.origin = origin;
		pc.checkpoint_dir = ckpt;
		pc.params_file = cf->params;
		r = pay_open(c, &pc, (int64_t)time(NULL) * 1000000000LL, &pay, perr, sizeof(perr));
		if (r < 0) {
			log_err("cannot open settlement (ledger in %s): %s", db,
				perr[0] ? perr : strerror(-r));
			goto out;
		}
	} else {
		log_warn("settlement = off: tasks run without escrow, validation or payment");
	}
	r = loop_new(NULL, &d.loop);
	if (r < 0) {
		log_errno(LOG_LVL_ERR, r, "cannot set up io_uring");
		goto out;
	}
	if ((r = loop_signal(d.loop, SIGTERM, on_term, &d)) < 0 ||
	    (r = loop_signal(d.loop, SIGINT, on_term, &d)) < 0 ||
	    (r = loop_signal(d.loop, SIGHUP, on_hup, &d)) < 0) {
		log_errno(LOG_LVL_ERR, r, "cannot set up signals");
		goto out;
	}
	/*
	 * After a kill -9 the previous process's io_uring may hold its listening
	 * socket for a moment while the kernel tears the ring down: retry briefly.
	 */
	for (int i = 0;; i++) {
		struct timespec ts = {0, 100 * 1000000L};

		fd = loop_tcp_listen(cf->listen_host, port, 4096, &port);
		if (fd != -EADDRINUSE || i >= LISTEN_RETRIES)
			break;
		if (i == 0)
			log_info("%s is still in use; retrying for up to %d s", cf->listen,
				 LISTEN_RETRIES / 10);
		nanosleep(&ts, NULL);
	}
	if (fd < 0) {
		log_errno(LOG_LVL_ERR, fd, "cannot listen on %s", cf->listen);
		goto out;
	}
	fc.loop = d.loop;
	fc.tls = d.tls;
	fc.listen_fd = fd;
	fc.max_conns = cf->max_conns;
	fc.tick_ms = cf->tick_ms;
	fc.blob_retention = cf->blob_retention;
	fc.result_grace = cf->result_grace;
	fc.heartbeat_timeout = cf->heartbeat_timeout;
	fc.coord = c;
	fc.pay = pay;
	fc.log = log_line;
	r = front_new(&fc, &fr);
	if (r < 0) {
		log_errno(LOG_LVL_ERR, r, "cannot start the server");
		goto out;
	}
	if (cf->port_file && (r = write_port(cf->port_file, port)) < 0)
		log_errno(LOG_LVL_WARN, r, "cannot write %s", cf->port_file);
	if (cf->heartbeat_timeout < 15)
		log_warn(
			"heartbeat_timeout %llds is shorter than 15 s: agents send HEARTBEAT every 10 s, "
			"so idle nodes will be marked lost between heartbeats",
			(long long)cf->heartbeat_timeout);
	log_info("aicn-coordinator %s listening on %s port %u as %s, state in %s", AICN_VERSION,
		 cf->listen_host, port, tls_ctx_self(d.tls)->name, cf->state_dir);
	r = loop_run(d.loop);
	if (r < 0)
		log_errno(LOG_LVL_ERR, r, "event loop failed");
	else if (front_fatal(fr))
		log_err("stopped: the state could not be committed");
	else
		ret = 0;
out:
	fatal = fr && front_fatal(fr);
	fr = front_free(fr);
	/* What the last round queued is committed; after a failed commit nothing more is tried. */
	if (c && !fatal && coord_flush(c) < 0) {
		log_err("cannot commit the state at exit");
		ret = 1;
	}
	pay_free(pay);
	coord_free(c);
	loop_free(d.loop);
	tls_ctx_free(d.tls);
	if (ret == 0)
		log_info("stopped");
	return ret;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"check-config", no_argument, NULL, 't'},
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	const char *path = COORD_CONF_DEFAULT;
	struct coord_conf cf;
	bool check = false;
	char err[512] = "";
	int o, r;

	log_setup("aicn-coordinator");
	/* Offline admin subcommands (mint, ledger-export, params) come first. */
	o = coord_admin_main(argc, argv);
	if (o >= 0)
		return o;
	while ((o = getopt_long(argc, argv, "c:tVh", opts, NULL)) != -1) {
		switch (o) {
		case 'c':
			path = optarg;
			break;
		case 't':
			check = true;
			break;
		case 'V':
			printf("aicn-coordinator %s\n", AICN_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			fprintf(stderr, "Try 'aicn-coordinator --help'.\n");
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "aicn-coordinator: unexpected argument '%s'; try --help\n",
			argv[optind]);
		return EXIT_USAGE;
	}
	if (coord_conf_init(&cf) < 0)
		return 1;
	r = coord_conf_load(&cf, path, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "aicn-coordinator: %s\n", err);
		coord_conf_done(&cf);
		return check ? 1 : EXIT_USAGE;
	}
	if (!getenv("AICN_LOG_LEVEL"))
		log_set_level(cf.log_level);
	if (check) {
		struct tls_ctx *tls = NULL;
		char terr[TLS_ERR_LEN];

		r = coord_conf_check_files(&cf, err, sizeof(err));
		if (r >= 0 && tls_load(&cf, &tls, terr) < 0) {
			snprintf(err, sizeof(err), "%s", terr);
			r = -EINVAL;
		}
		tls_ctx_free(tls);
		if (r < 0) {
			fprintf(stderr, "aicn-coordinator: %s: %s\n", path, err);
			coord_conf_done(&cf);
			return 1;
		}
		printf("# %s: valid\n", path);
		coord_conf_print(&cf, stdout);
		coord_conf_done(&cf);
		return 0;
	}
	r = run(&cf);
	coord_conf_done(&cf);
	return r;
}
