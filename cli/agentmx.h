/* agentmx.h -- read the local agent's Prometheus text page into a summary for `aicnctl agent status`. */
#ifndef AICN_CLI_AGENTMX_H
#define AICN_CLI_AGENTMX_H

#include <cjson/cJSON.h>
#include <stddef.h>

/*
 * Summarise an aicn-agent /metrics page (text format 0.0.4) as
 * {version, coordinator (the connection state whose gauge is 1), tasks {state: n},
 * tasks_ended {kind: n}, task_cpu_ns {task: ns}, meter_drops {reason: n},
 * cores_offered_milli, records_pending_ack}.  Lines it does not know, comments
 * and malformed lines are skipped; at most AGENTMX_MAX_SERIES labelled samples
 * are kept.  text need not be NUL-terminated.
 */
#define AGENTMX_MAX_SERIES 4096
int agent_metrics_summary(const char *text, size_t len, cJSON **ret);

#endif /* AICN_CLI_AGENTMX_H */
