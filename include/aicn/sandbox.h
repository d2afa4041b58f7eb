/* sandbox.h -- libaicn-sandbox: OCI images to cached rootfs, and one task run in namespaces, cgroup limits and seccomp. */
#ifndef AICN_SANDBOX_H
#define AICN_SANDBOX_H

#include <stdint.h>
#include <sys/types.h>

#include <aicn/cgroup.h>

/*
 * Host ids the task's ids map to: task uid/gid N (0 <= N < SBX_ID_COUNT) is host
 * SBX_ID_BASE + N.  Task root is therefore an ordinary, unprivileged host user; host
 * root (0) is never mapped.  Unpacked rootfs files are owned by the shifted ids.
 */
#define SBX_ID_BASE 1879048192u /* 0x70000000, like a /etc/subuid range "aicn:1879048192:65536" */
#define SBX_ID_COUNT 65536u

/* A reason for the renter or operator when something fails: what and which path. */
struct sbx_err {
	char msg[512]; /* empty when no reason was recorded */
};

/* An image flattened into a read-only rootfs, with the config's process defaults. */
struct sbx_image {
	char *rootfs;	   /* absolute path of the flattened rootfs directory */
	char digest[72];   /* "sha256:<hex>" of the manifest, "" for a plain rootfs directory */
	char **entrypoint; /* NULL-terminated; NULL if the config has none */
	char **cmd;	   /* NULL-terminated; NULL if none */
	char **env;	   /* NULL-terminated "K=V" list; NULL if none */
	char *workdir;	   /* NULL if none */
	char *user;	   /* "uid[:gid]" or names as in the config; NULL if none */
	int unpacked;	   /* 1 if this call unpacked it, 0 if it came from the cache */
};

/*
 * Open IMAGE: an OCI image layout directory, an OCI layout tar archive, or a plain
 * rootfs directory (one with no index.json).  Layouts are unpacked once into
 * CACHE_DIR/rootfs/<manifest hex>; concurrent callers for the same digest wait for
 * one another.  Every blob's size and sha256 are checked.  On error, err says why
 * and nothing is left behind outside CACHE_DIR's temporary area (which is cleaned).
 */
int sbx_image_open(const char *cache_dir, const char *image, struct sbx_image **ret_img,
		   struct sbx_err *err);
struct sbx_image *sbx_image_free(struct sbx_image *img);

/* How a task ended. */
enum sbx_end {
	SBX_END_EXITED,	      /* exit() with exit_code */
	SBX_END_SIGNALED,     /* killed by signal (not by us, not OOM) */
	SBX_END_OOM,	      /* the memory limit's OOM killer ended it */
	SBX_END_TIMEOUT,      /* wall-clock limit reached; whole cgroup killed */
	SBX_END_CANCELED,     /* sbx_task_cancel(); whole cgroup killed */
	SBX_END_OUTPUT_LIMIT, /* stdout+stderr exceeded output_bytes; whole cgroup killed */
	SBX_END_SETUP_FAILED, /* the sandbox could not be set up or the command not started */
};
const char *sbx_end_name(enum sbx_end end);

/* What one task may use; 0 means the library default (see docs/sandbox.md). */
struct sbx_limits {
	double cores;	       /* cpu.max quota in cores; 0 = unlimited CPU */
	uint64_t memory_bytes; /* memory.max, swap 0; 0 = default 512 MiB */
	uint64_t pids;	       /* pids.max; 0 = default 256 */
	uint64_t timeout_ms;   /* wall clock; 0 = none */
	uint64_t output_bytes; /* stdout + stderr; 0 = default 16 MiB */
	uint64_t tmp_bytes;    /* /tmp tmpfs size; 0 = default 64 MiB */
	uint64_t work_bytes;   /* private /work tmpfs size (when no work_dir); 0 = 64 MiB */
	uint64_t inodes;       /* nr_inodes of each tmpfs; 0 = default 16384 */
	uint64_t nofile;       /* RLIMIT_NOFILE; 0 = 1024 */
	uint64_t fsize_bytes;  /* RLIMIT_FSIZE; 0 = 1 GiB */
};

/*
 * A task's network (loopback only, up), IPC and user (ids mapped from id_base;
 * 0 = SBX_ID_BASE) namespaces, made on a thread of their own, kept off the caller's
 * CPU: the ~0.7 ms the kernel takes overlaps whatever the caller does before
 * sbx_task_start (opening the image, creating cgroups) and then the task's own
 * set-up, which receives them only after its mounts.  Start them first, give them as
 * cfg->ns, free them after sbx_task_start; one per task, never shared.  Without
 * cfg->ns, sbx_task_start makes its own the same way.
 */
struct sbx_ns;
int sbx_ns_start(uint32_t id_base, struct sbx_ns **ret_ns);
struct sbx_ns *sbx_ns_free(struct sbx_ns *ns);

struct sbx_config {
	const char *rootfs;	  /* directory to pivot_root into (mounted read-only) */
	char *const *argv;	  /* command, argv[0] looked up in the task's PATH */
	char *const *envp;	  /* environment; NULL = PATH only */
	const char *cwd;	  /* inside the rootfs; NULL = /work */
	const char *user;	  /* "uid[:gid]" or user[:group] names of the rootfs; NULL = 0:0 */
	const char *hostname;	  /* NULL = "aicn" */
	const char *work_dir;	  /* host directory bound at /work; NULL = private tmpfs */
	int net_loopback;	  /* 1: private net namespace with lo up (the only mode) */
	struct sbx_ns *ns;	  /* made by sbx_ns_start; NULL = sbx_task_start makes them */
	int stdin_fd;		  /* host fd given as stdin; -1 = /dev/null */
	int stdout_fd;		  /* host fd the task's stdout is copied to; -1 = discard */
	int stderr_fd;		  /* same for stderr */
	struct sbx_limits limits; /* resource limits */
	const struct cg_host *host; /* cgroup layout (cg_host_detect) */
	const char *cg_parent;	    /* parent (relative to our own cgroup) for a created cgroup */
	struct cg *cg;	  /* an existing cgroup to run in (the meter's); NULL = create one */
	uint32_t id_base; /* host id of task uid 0; 0 = SBX_ID_BASE */
	int no_seccomp;	  /* tests only: skip the seccomp filter */
};

struct sbx_result {
	enum sbx_end end;      /* how it ended */
	int exit_code;	       /* SBX_END_EXITED: the status */
	int signal;	       /* SBX_END_SIGNALED / OOM / killed: the signal */
	uint64_t wall_ns;      /* from start to the end of the cgroup */
	uint64_t cpu_ns;       /* kernel's CPU usage of the task's cgroup */
	uint64_t memory_peak;  /* bytes, 0 if unknown */
	uint64_t oom_kills;    /* OOM kills in the task's cgroup */
	uint64_t output_bytes; /* stdout + stderr bytes seen (copied up to the limit) */
	uint64_t cgroup_id;    /* v2 id of the task's cgroup (the meter's key) */
	char setup_error[256]; /* SBX_END_SETUP_FAILED: why */
};

struct sbx_task;

/*
 * Start a task.  Creates the task cgroup (unless cfg->cg is given) and applies every
 * limit, refusing (-EOPNOTSUPP, err says which) if one cannot be enforced.  Returns once
 * the task's process exists; the command's own exec failure shows as SBX_END_SETUP_FAILED.
 */
int sbx_task_start(const struct sbx_config *cfg, struct sbx_task **ret_task, struct sbx_err *err);
/* Pump output and enforce the timeout until the task's cgroup is empty; fills ret. */
int sbx_task_wait(struct sbx_task *task, struct sbx_result *ret);
/* Ask a running task to be killed (async-signal-safe, callable from another thread). */
void sbx_task_cancel(struct sbx_task *task);
pid_t sbx_task_pid(const struct sbx_task *task);
/* The task's cgroup (created or given). */
const struct cg *sbx_task_cgroup(const struct sbx_task *task);
/* Kill what is left, remove a created cgroup and the task's temporary files. */
struct sbx_task *sbx_task_free(struct sbx_task *task);

/* sbx_task_start + sbx_task_wait + sbx_task_free. */
int sbx_run(const struct sbx_config *cfg, struct sbx_result *ret, struct sbx_err *err);

/* The seccomp policy, for docs and tests: one row per named syscall rule. */
enum sbx_sc_action {
	SBX_SC_ALLOW,
	SBX_SC_DENY,   /* EPERM */
	SBX_SC_ENOSYS, /* ENOSYS, so programs fall back (clone3) */
	SBX_SC_ARGS,   /* allowed only for some arguments; denied (EPERM) otherwise */
};
struct sbx_sc_rule {
	const char *name;	   /* syscall name as libseccomp knows it */
	enum sbx_sc_action action; /* what it gets */
	const char *why;	   /* for denials: what it would let a task do */
};
const struct sbx_sc_rule *sbx_seccomp_policy(size_t *ret_n);
/* Build (once per process) the filter; returns 0 or a negative errno. */
int sbx_seccomp_prepare(void);

#endif /* AICN_SANDBOX_H */
