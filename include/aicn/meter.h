/* meter.h -- the eBPF meter: load or re-open its pinned state, track task cgroups, read their exact figures. */
#ifndef AICN_METER_H
#define AICN_METER_H

#include <stddef.h>
#include <stdint.h>

/*
 * The meter's programs, maps and links live pinned in a directory of a BPF
 * filesystem, so they keep metering while no process holds them: an agent that
 * crashes or restarts re-opens them and loses nothing.  A task is a cgroup
 * subtree: once its cgroup v2 id is tracked, every thread below it counts
 * toward it (the nearest tracked ancestor wins for nested tracked cgroups).
 *
 * Typical life of a task:
 *   meter_open(dir, METER_CREATE, &m, ...)     once per process
 *   meter_track(m, cg->v2_path, &id)          before the first process enters it
 *   ... start the task inside it (clone3 CLONE_INTO_CGROUP, or cg_attach) ...
 *   meter_read(m, id, &u)                     any time: live figures
 *   ... when the cgroup is empty: meter_settle(m, id, ms), meter_read(...) ...
 *   meter_crosscheck(u.cpu_ns, cpu.stat usage) and record both
 *   meter_untrack(m, id)
 *   meter_free(m) (or meter_release(m) in short-lived tools)
 * All functions return 0 (or a count) on success and a negative errno on error.
 */

#define METER_PIN_DIR_DEFAULT "/sys/fs/bpf/aicn"
/* Environment variable that overrides the default pin directory. */
#define METER_PIN_DIR_ENV "AICN_METER_PIN_DIR"

enum meter_open_flags {
	METER_CREATE = 1 << 0,	/* load and pin the programs if not pinned yet */
	METER_PERSIST = 1 << 1, /* a daemon owns the pins: meter_release() keeps them */
};

struct meter;

/* Figures of one tracked cgroup (its whole subtree) since tracking began. */
struct meter_usage {
	uint64_t cgroup_id; /* cgroup v2 id */
	uint64_t
		cpu_ns; /* exact CPU time (scheduler's sum_exec_runtime), running slices included */
	uint64_t rq_wait_ns;	 /* time runnable but waiting for a CPU (sched_info.run_delay) */
	uint64_t vol_switches;	 /* voluntary context switches */
	uint64_t invol_switches; /* involuntary context switches (preemptions) */
	uint64_t procs_forked;	 /* processes born inside */
	uint64_t threads_born;	 /* further threads born inside */
	uint64_t procs_execed;	 /* successful execve()s */
	uint64_t procs_exited;	 /* processes that ended */
	int64_t threads_live;	 /* threads counting toward it now */
	uint64_t threads_peak;	 /* most threads alive at once */
	uint64_t threads_lost;	 /* threads that could not be metered (should be 0) */
	uint64_t net_rx_bytes;	 /* IP bytes received by its sockets */
	uint64_t net_rx_packets; /* IP packets received */
	uint64_t net_tx_bytes;	 /* IP bytes sent */
	uint64_t net_tx_packets; /* IP packets sent */
	uint64_t tracked_at_ns;	 /* CLOCK_MONOTONIC when tracking began */
	int consistent;		 /* 1 unless threads kept ending during every retry of the read */
};

/* Accounting the probes could not do, over all cgroups; tests assert these stay 0. */
struct meter_drops {
	uint64_t task_storage;	/* a tracked thread got no per-thread storage */
	uint64_t depth;		/* a cgroup nested deeper than the walk limit */
	uint64_t stats_missing; /* a tracked id resolved but its entry was gone */
	uint64_t dying_full;	/* an exited thread found the "dying" map full: it is committed
				   when the kernel frees it, later and only if it does */
};

/* Pin directory: $AICN_METER_PIN_DIR, else METER_PIN_DIR_DEFAULT. */
const char *meter_default_pin_dir(void);

/*
 * Open the meter pinned in pin_dir.  With METER_CREATE, mount the BPF
 * filesystem at /sys/fs/bpf if needed, load and attach the programs and pin them
 * when they are not pinned yet.  On error, reason (if not NULL) says what was
 * missing: the kernel feature, the privilege, or the path.
 * -ENOENT: not pinned and no METER_CREATE; -EPROTO: pinned by another meter version.
 */
int meter_open(const char *pin_dir, unsigned flags, struct meter **ret_meter, char *reason,
	       size_t reason_size);
/* Close our handles; the pins (and metering) stay.  Accepts NULL, returns NULL. */
struct meter *meter_free(struct meter *m);
/*
 * Close, and remove the pins if nothing is tracked, no other process has the
 * meter open and no daemon opened it with METER_PERSIST.  Returns 1 if removed.
 */
int meter_release(struct meter *m);
/* Remove every pin under pin_dir and the directory (uninstall); metering stops. */
int meter_cleanup(const char *pin_dir);

/* Start metering the cgroup at cg_v2_path (a cgroup v2 directory).  -EEXIST if tracked, -ENOSPC if full. */
int meter_track(struct meter *m, const char *cg_v2_path, uint64_t *ret_id);
/* Stop metering a cgroup and detach its network programs. -ENOENT if not tracked. */
int meter_untrack(struct meter *m, uint64_t cg_id);
/* Current figures: ended threads exactly, live threads up to this instant. */
int meter_read(struct meter *m, uint64_t cg_id, struct meter_usage *ret_usage);
/*
 * Once the cgroup has no processes left, wait (at most timeout_ms) until every
 * thread's final switch-out has been accounted, so meter_read() is final.
 */
int meter_settle(struct meter *m, uint64_t cg_id, unsigned timeout_ms);
/* Tracked cgroup ids, at most max of them into ids; the total count is returned. */
int meter_list(struct meter *m, uint64_t *ids, size_t max);
int meter_drops(struct meter *m, struct meter_drops *ret_drops);
/* The pin directory this meter was opened from. */
const char *meter_pin_dir(const struct meter *m);

/*
 * Compare the meter with the kernel's cpu.stat usage (both ns): 1 when
 * |meter - kernel| <= kernel * 0.01% + 2 us, else 0.  ret_diff gets meter - kernel.
 */
int meter_crosscheck(uint64_t meter_ns, uint64_t kernel_ns, int64_t *ret_diff);

#endif /* AICN_METER_H */
