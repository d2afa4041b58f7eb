/* bpf/meter.h -- the maps and records shared by bpf/meter.bpf.c and the meter loader (agent/meter.c). */
#ifndef AICN_BPF_METER_H
#define AICN_BPF_METER_H

#ifndef __bpf__
#include <linux/types.h>
#endif

/* Bumped whenever a struct below or the set of pinned objects changes. */
#define METER_ABI_VERSION 2
#define METER_MAGIC 0x6d65746572616963ULL /* "meteraic" */

/* At most this many cgroups are tracked at once (fixed-size map, never evicted). */
#define METER_MAX_TRACKED 4096
/* Deepest cgroup ancestry walked to find a thread's tracked ancestor. */
#define METER_MAX_DEPTH 32

/*
 * Value of the "tracked" hash map, keyed by cgroup v2 id (__u64).  Holds the
 * figures of threads that have ended (or left the subtree); live threads' own
 * figures are added at read time by the "live" task iterator.
 */
struct meter_cg_stats {
	__u64 cpu_ns;	      /* sum of se.sum_exec_runtime deltas of ended threads */
	__u64 rq_wait_ns;     /* sum of sched_info.run_delay deltas of ended threads */
	__u64 vol_switches;   /* nvcsw deltas of ended threads */
	__u64 invol_switches; /* nivcsw deltas of ended threads */
	__u64 procs_forked;   /* processes born inside the subtree */
	__u64 threads_born;   /* threads (not processes) born inside the subtree */
	__u64 procs_execed;   /* successful execve()s inside the subtree */
	__u64 procs_exited;   /* thread groups that ended inside the subtree */
	__s64 threads_live;   /* threads accounted here right now */
	__u64 threads_peak;   /* highest threads_live seen */
	__u64 threads_ending; /* commits begun: readers retry while != threads_ended */
	__u64 threads_ended;  /* threads committed here (died or left) */
	__u64 threads_lost;   /* threads seen here that could not be accounted (no storage) */
	__u64 net_rx_bytes;   /* cgroup_skb ingress, bytes (IP packets, headers included) */
	__u64 net_rx_packets; /* cgroup_skb ingress, packets */
	__u64 net_tx_bytes;   /* cgroup_skb egress, bytes (IP packets, headers included) */
	__u64 net_tx_packets; /* cgroup_skb egress, packets */
	__u64 tracked_at_ns;  /* CLOCK_MONOTONIC when tracking began (set by user space) */
};

/* Per-thread state (task local storage) of a thread accounted to a tracked cgroup. */
struct meter_task {
	__u64 cg;      /* tracked cgroup id it counts toward; 0 once committed */
	__u64 cpu0;    /* se.sum_exec_runtime when accounting began */
	__u64 wait0;   /* sched_info.run_delay when accounting began */
	__u64 nvcsw0;  /* nvcsw when accounting began */
	__u64 nivcsw0; /* nivcsw when accounting began */
	__u64 css;     /* task->cgroups (a css_set address) when cg was resolved */
	__u64 gen;     /* meter_globals.gen when cg was resolved */
};

/*
 * Per-CPU "cpuclock" array: the CPU's scheduler clock against CLOCK_MONOTONIC,
 * sampled at every tick of a busy CPU, for live readings of running slices.
 */
struct meter_cpuclock {
	__u64 seq;     /* odd while being written */
	__u64 jiffies; /* jiffies at the sample */
	__u64 mono_ns; /* bpf_ktime_get_ns() at the sample */
	__u64 task_ns; /* the CPU's rq clock_task then (the running thread's se.exec_start) */
};

/* Per-cgroup cache (cgroup local storage): the cgroup's tracked ancestor, valid for one generation. */
struct meter_cg_cache {
	__u64 gen;     /* meter_globals.gen this was resolved under */
	__u64 tracked; /* id of the nearest tracked ancestor-or-self, 0 for none */
};

/*
 * The single element of the "globals" array map (BPF_F_MMAPABLE: user space
 * updates gen and ntracked with atomics on the mapping, BPF adds to the drop
 * counters).  Drop counters are accounting that could not be done; tests assert
 * they stay zero.
 */
struct meter_globals {
	__u64 magic;		  /* METER_MAGIC once initialised by the loader */
	__u64 abi;		  /* METER_ABI_VERSION of the loader that created the pins */
	__u64 gen;		  /* bumped by user space after every change of "tracked" */
	__u64 ntracked;		  /* entries in "tracked"; 0 lets the probes return at once */
	__u64 persistent;	  /* 1: a daemon owns the pins; tools never remove them */
	__u64 drop_task_storage;  /* a tracked thread got no task storage: not metered */
	__u64 drop_depth;	  /* a cgroup deeper than METER_MAX_DEPTH levels */
	__u64 drop_stats_missing; /* a tracked id resolved but its stats were gone */
	__u64 pending_adopt; /* unused since threads are settled at the move (kept for the ABI) */
	__u64 ndying;	  /* entries in "dying": exited threads held until their final switch-out */
	__u64 dying_full; /* exits that found "dying" full: committed when the kernel frees them */
	__u64 pad[5];	  /* room for more counters within one ABI */
};

/* One record of the "live" task iterator: a thread's figures so far. */
struct meter_live_rec {
	__u64 cg;	      /* tracked cgroup id */
	__u64 cpu_ns;	      /* CPU so far, running slice included */
	__u64 rq_wait_ns;     /* run-queue wait so far */
	__u64 vol_switches;   /* voluntary switches so far */
	__u64 invol_switches; /* involuntary switches so far */
	__u64 tid;	      /* thread id (in the initial pid namespace) */
};

/* Exited threads held at once until their final switch-out is seen (then committed). */
#define METER_MAX_DYING 1024

#ifndef __bpf__
_Static_assert(sizeof(struct meter_cpuclock) == 4 * 8, "meter_cpuclock layout");
_Static_assert(sizeof(struct meter_cg_stats) == 18 * 8, "meter_cg_stats layout");
_Static_assert(sizeof(struct meter_task) == 7 * 8, "meter_task layout");
_Static_assert(sizeof(struct meter_cg_cache) == 2 * 8, "meter_cg_cache layout");
_Static_assert(sizeof(struct meter_globals) == 16 * 8, "meter_globals layout");
_Static_assert(sizeof(struct meter_live_rec) == 6 * 8, "meter_live_rec layout");
#endif

#endif /* AICN_BPF_METER_H */
