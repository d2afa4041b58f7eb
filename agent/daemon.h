/* daemon.h -- aicn-agent's daemon (agent/daemon.c), started by agent/main.c once the configuration is checked. */
#ifndef AICN_AGENT_DAEMON_H
#define AICN_AGENT_DAEMON_H

#include "config.h"

/*
 * Run the agent until SIGTERM/SIGINT: node key, meter, meter log, outbox, image
 * cache, parent cgroup cap, reconcile of tasks left by a previous run, perf
 * score, then the coordinator connection and /metrics.  Tasks keep running
 * under their supervisors when it returns.  Returns 0 on a clean stop, a
 * negative errno (already logged) when it could not start.
 */
int agent_daemon_run(const struct agent_config *cfg, const struct agent_host_facts *host);

#endif /* AICN_AGENT_DAEMON_H */
