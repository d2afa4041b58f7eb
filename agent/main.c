/* main.c -- aicn-agent: the provider daemon's command line (options, config check), then agent/daemon.c. */
#include "config.h"
#include "daemon.h"

#include <aicn/compiler.h>
#include <aicn/log.h>
#include <aicn/version.h>

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static void usage(FILE *out)
{
	fprintf(out,
		"NAME\n"
		"    aicn-agent - lend this machine's CPU to the aicn compute network\n"
		"\n"
		"SYNOPSIS\n"
		"    aicn-agent [--config FILE]\n"
		"    aicn-agent --check-config [--config FILE]\n"
		"    aicn-agent --version | --help\n"
		"\n"
		"DESCRIPTION\n"
		"    The provider agent. It connects to the coordinator over mutually authenticated\n"
		"    TLS 1.3 with this node's agent certificate, registers the node (cores and memory\n"
		"    offered, ask price, location, availability windows and a measured performance\n"
		"    score with its result hash) and then accepts or rejects each TASK_OFFER against\n"
		"    the operator's limits and windows. An accepted task's image and inputs are\n"
		"    fetched from the coordinator, and the task runs in a sandbox (namespaces, seccomp,\n"
		"    cgroup limits) inside a cgroup the eBPF meter tracks from its first instruction,\n"
		"    under a per-task supervisor (aicn-supervise) that outlives the agent. While it runs\n"
		"    the agent streams its metered CPU time; when it ends it signs the usage record into\n"
		"    the node's meter log, delivers it exactly once, uploads the result archive, stamps\n"
		"    the result with Proof-of-Work and reports it, then wipes the task directory.\n"
		"    Prometheus metrics are served on metrics_listen.\n"
		"\n"
		"OPTIONS\n"
		"    -c, --config FILE   configuration file (default " AGENT_CONFIG_PATH ")\n"
		"    --check-config      parse the configuration, check that cert, key, CA and\n"
		"                        state_dir are usable, print the effective configuration\n"
		"                        (every key, defaults included) and exit\n"
		"    -V, --version       print the version and exit\n"
		"    -h, --help          show this text\n"
		"\n"
		"FILES\n"
		"    " AGENT_CONFIG_PATH "    the configuration (see docs/agent.md for every key)\n"
		"    state_dir/tasks/ID/       one directory per task: offer, supervisor spec and state,\n"
		"                              stdout, stderr, /work, result archive\n"
		"    state_dir/meter.log       the signed, hash-chained meter log of this node\n"
		"    state_dir/outbox/         signed usage records not yet acknowledged\n"
		"    state_dir/blobs/          image archives; state_dir/images/ their unpacked rootfs\n"
		"    state_dir/image-cache.index   the image cache's LRU index\n"
		"    /sys/fs/bpf/aicn          the pinned eBPF meter ($AICN_METER_PIN_DIR overrides)\n"
		"\n"
		"SIGNALS\n"
		"    SIGTERM, SIGINT   stop the agent; running tasks keep running under their\n"
		"                      supervisors and are re-adopted at the next start\n"
		"\n"
		"ENVIRONMENT\n"
		"    AICN_LOG_LEVEL       err, warn, info (default) or debug\n"
		"    AICN_METER_PIN_DIR   where the eBPF meter is pinned\n"
		"\n"
		"EXIT STATUS\n"
		"    0  stopped by a signal, or --check-config found the configuration good\n"
		"    1  the configuration or a file it names is unusable (the message says which)\n"
		"    2  bad command line\n"
		"    3  the agent could not start (key, meter, cgroups, state directory)\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"check-config", no_argument, NULL, 'k'},
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{},
	};
	const char *path = AGENT_CONFIG_PATH;
	struct agent_host_facts host;
	struct agent_config *cfg = NULL;
	char err[AGENT_CONFIG_ERR_MAX];
	bool check = false;
	int c, r;

	while ((c = getopt_long(argc, argv, "c:Vh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			path = optarg;
			break;
		case 'k':
			check = true;
			break;
		case 'V':
			printf("aicn-agent %s\n", AICN_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			fprintf(stderr, "Try 'aicn-agent --help'.\n");
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "aicn-agent: unexpected argument '%s'\nTry 'aicn-agent --help'.\n",
			argv[optind]);
		return 2;
	}
	log_setup("aicn-agent");
	r = agent_host_probe(&host);
	if (r < 0) {
		log_errno(LOG_LVL_ERR, r, "cannot read this host's CPUs and memory");
		return 3;
	}
	r = agent_config_load(path, &host, err, sizeof(err), &cfg);
	if (r == 0)
		r = agent_config_check_files(cfg, err, sizeof(err));
	if (r < 0) {
		log_err("%s", err[0] ? err : strerror(-r));
		agent_config_free(cfg);
		return 1;
	}
	if (check) {
		r = agent_config_write(cfg, stdout);
		agent_config_free(cfg);
		return r < 0 ? 1 : 0;
	}
	r = agent_daemon_run(cfg, &host);
	agent_config_free(cfg);
	return r < 0 ? 3 : 0;
}
