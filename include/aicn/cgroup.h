/* cgroup.h -- task cgroups under our own cgroup, on pure v2 and on hybrid (v1 controllers + v2) hosts. */
#ifndef AICN_CGROUP_H
#define AICN_CGROUP_H

#include <stdint.h>
#include <sys/types.h>

enum cg_layout {
	CG_LAYOUT_UNIFIED, /* pure cgroup v2: controllers and ids in one tree */
	CG_LAYOUT_HYBRID,  /* v1 controllers; v2 (ids, cpu.stat) at e.g. /sys/fs/cgroup/unified */
};

enum cg_v1_ctrl {
	CG_V1_CPU,
	CG_V1_CPUACCT,
	CG_V1_MEMORY,
	CG_V1_PIDS,
	CG_V1_FREEZER,
	CG_V1_N,
};

/* Where the hierarchies are mounted and where this process sits in each. */
struct cg_host {
	enum cg_layout layout;
	char v2_mount[256];	     /* e.g. /sys/fs/cgroup or /sys/fs/cgroup/unified */
	char v2_self[512];	     /* our own v2 cgroup, relative to v2_mount ("/" at root) */
	char v1_mount[CG_V1_N][256]; /* empty when that v1 controller is not mounted */
	char v1_self[CG_V1_N][512];  /* our own cgroup in that v1 hierarchy */
};

/* Resource limits; 0 means "not set" for each field. */
struct cg_limits {
	uint64_t cpu_quota_us;	/* with cpu_period_us: cores = quota / period */
	uint64_t cpu_period_us; /* default 100000 */
	uint64_t memory_bytes;	/* memory.max; swap is set to 0 alongside */
	uint64_t pids;		/* pids.max */
};

/* One cgroup (a task's, or the agent's parent cap) in every hierarchy we use. */
struct cg {
	char *v2_path;		/* absolute path in the v2 tree */
	uint64_t id;		/* cgroup v2 id (inode of v2_path): what the meter keys on */
	char *v1_path[CG_V1_N]; /* absolute paths on hybrid hosts, NULL if unused */
};

/* Inspect /proc/self/mountinfo and /proc/self/cgroup. */
int cg_host_detect(struct cg_host *ret_host);

/*
 * Create cgroup NAME under PARENT (relative to our own cgroup in each hierarchy;
 * NULL or "" for directly under it).  With want_v1 on hybrid hosts, also in the
 * cpu, memory and pids v1 hierarchies, and in cpuacct and freezer where the v2
 * cgroup has no cpu.stat or cgroup.kill to stand in for them.  On a pure v2 host, the
 * cpu/memory/pids controllers are enabled in the parent's subtree_control as
 * needed.  -EEXIST if it exists; on error nothing is left behind.
 */
int cg_create(const struct cg_host *host, const char *parent, const char *name, int want_v1,
	      struct cg **ret_cg);
/*
 * The same with the v1 hierarchies chosen: bit (1u << CG_V1_x) of v1_mask for each
 * one wanted (CG_V1_ALL: what cg_create's want_v1 gives).  Every v1 cgroup costs a
 * mkdir and an rmdir: a task without a CPU limit needs no v1 cpu cgroup.
 */
#define CG_V1_ALL ((1u << CG_V1_N) - 1)
int cg_create_v1(const struct cg_host *host, const char *parent, const char *name, unsigned v1_mask,
		 struct cg **ret_cg);
/*
 * Move the calling thread into cg's v1 cgroups (hybrid hosts; nothing on pure v2) by
 * writing "0" to each hierarchy's `tasks` file: unlike a pid written to cgroup.procs
 * (cg_attach), that takes no cgroup_threadgroup_rwsem for writing, whose RCU grace
 * period costs 2-36 ms per hierarchy.  A single-threaded process moves whole.  The v2
 * cgroup is not joined here: be born in it (clone3 CLONE_INTO_CGROUP).
 */
int cg_join_v1_self(const struct cg *cg);
/* Open an existing one (re-adoption after a restart). */
int cg_open(const struct cg_host *host, const char *parent, const char *name, int want_v1,
	    struct cg **ret_cg);
/* Free the struct only (the cgroup stays). Accepts NULL, returns NULL. */
struct cg *cg_free(struct cg *cg);

/*
 * Pure v2 keeps processes and enabled controllers apart: a cgroup whose
 * children get cpu/memory/pids limits may hold no process itself.  A daemon
 * started in its own cgroup (a systemd service with Delegate=yes) therefore
 * moves every process of that cgroup into the child LEAF (created if needed)
 * before creating task cgroups; host->v2_self stays the delegated root, so
 * task cgroups become siblings of LEAF.  No-op on hybrid hosts and at the root.
 */
int cg_host_make_room(const struct cg_host *host, const char *leaf);

/* Move a process into the cgroup in every hierarchy. */
int cg_attach(const struct cg *cg, pid_t pid);
/* Apply limits; a limit that cannot be enforced is an error (-EOPNOTSUPP), never ignored. */
int cg_set_limits(const struct cg *cg, const struct cg_limits *lim);
/* Kernel's own CPU usage of the subtree in ns (v2 cpu.stat usage_usec * 1000, or v1 cpuacct.usage). */
int cg_cpu_usage_ns(const struct cg *cg, uint64_t *ret_ns);
/* Peak memory in bytes (memory.peak / memory.max_usage_in_bytes), -ENOENT if unknown. */
int cg_memory_peak(const struct cg *cg, uint64_t *ret_bytes);
/* Number of OOM kills in the subtree (memory.events oom_kill / memory.oom_control). */
int cg_oom_kills(const struct cg *cg, uint64_t *ret_count);
/* Number of processes in the subtree. */
int cg_nprocs(const struct cg *cg, uint64_t *ret_count);
/* SIGKILL every process of the subtree (cgroup.kill, or freeze + kill + thaw on v1) and wait until empty. */
int cg_kill(const struct cg *cg);
/*
 * Remove the cgroup in every hierarchy, killing (cg_kill) whatever is still in it and
 * removing any sub-cgroups first when it is not an empty leaf; frees cg.
 */
int cg_destroy(struct cg *cg);

/* cgroup v2 id of a v2 path (the directory's inode number). */
int cg_id_of_path(const char *path, uint64_t *ret_id);

#endif /* AICN_CGROUP_H */
