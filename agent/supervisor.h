/* supervisor.h -- per-task supervisor processes that outlive the agent, and re-adopting them after a restart. */
#ifndef AICN_AGENT_SUPERVISOR_H
#define AICN_AGENT_SUPERVISOR_H

#include <aicn/cgroup.h>

#include <stdint.h>
#include <sys/types.h>

#define SUP_SPEC_FILE "supervise.spec"	 /* JSON written by the agent, read by aicn-supervise */
#define SUP_STATE_FILE "supervise.state" /* key=value written atomically by aicn-supervise */
#define SUP_LOG_FILE "supervise.log"	 /* the supervisor's own messages */
#define SUP_BIN_NAME "aicn-supervise"
#define SUP_TASK_ID_MAX 64
#define SUP_ARGS_MAX 1024     /* argv and env entries each (image env + offer env) */
#define SUP_ARG_LEN_MAX 65536 /* bytes per argv/env entry (the wire allows 8192; image env more) */
#define SUP_SPEC_MAX (1 << 20)
#define SUP_STATE_MAX 8192
#define SUP_ERROR_MAX 256
#define SUP_DEFAULT_GRACE_MS 5000

/* How a task ended (or that it has not). */
enum sup_kind {
	SUP_RUNNING,  /* the task runs; its supervisor is alive */
	SUP_EXITED,   /* exited by itself: exit_code */
	SUP_SIGNALED, /* killed by a signal nobody of ours sent: signal */
	SUP_CANCELED, /* canceled through sup_cancel (SIGTERM, then SIGKILL after the grace time) */
	SUP_TIMEOUT,  /* ran past its wall-time limit and was killed */
	SUP_OOM,      /* killed by the OOM killer inside its memory limit */
	SUP_FAILED,   /* never started: error says why */
	SUP_LOST,     /* the supervisor died without a final state (killed -9): outcome unknown */
	SUP_KIND_N,
};

/* A task's state as its supervisor last wrote it to SUP_STATE_FILE. */
struct sup_status {
	char task_id[SUP_TASK_ID_MAX + 1]; /* task_id= */
	enum sup_kind kind;		   /* kind= (running, exited, ...) */
	pid_t supervisor_pid;		   /* supervisor_pid= */
	uint64_t supervisor_start;	   /* supervisor_start= /proc starttime, clock ticks */
	pid_t pid;			   /* pid= the task's main process, 0 if none */
	uint64_t pid_start;		   /* pid_start= */
	int exit_code;			   /* exit_code= for SUP_EXITED */
	int signal;		       /* signal= for SUP_SIGNALED (and what killed it otherwise) */
	uint64_t started_realtime_ns;  /* started_realtime_ns= CLOCK_REALTIME at exec */
	uint64_t started_boottime_ns;  /* started_boottime_ns= CLOCK_BOOTTIME at exec */
	uint64_t finished_realtime_ns; /* finished_realtime_ns= 0 while running */
	uint64_t finished_boottime_ns; /* finished_boottime_ns= */
	uint64_t cpu_ns;	       /* cpu_ns= kernel's CPU time of the task cgroup at the end */
	uint64_t oom_kills;	       /* oom_kills= */
	char error[SUP_ERROR_MAX];     /* error= for SUP_FAILED, one line */
};

/*
 * Run the task in the sandbox (include/aicn/sandbox.h) rather than exec'ing argv
 * on the host: argv is then the command inside the image, cwd a directory inside
 * it, and the task cgroup is the sandbox's (the child is born in it).
 */
struct sup_sandbox {
	const char *rootfs;    /* the image's flattened rootfs (read-only) */
	const char *work_dir;  /* host directory bound at /work */
	const char *user;      /* "uid[:gid]" or names of the image; NULL = 0:0 */
	uint32_t millicores;   /* CPU limit of the task; 0 = none (the parent cap holds) */
	uint64_t memory_bytes; /* memory limit; 0 = the sandbox default */
	uint64_t pids;	       /* process limit; 0 = the sandbox default */
	uint64_t output_bytes; /* stdout + stderr; 0 = the sandbox default */
};

/* What to run and how. */
struct sup_spec {
	const char *task_id;		   /* [A-Za-z0-9._-], at most SUP_TASK_ID_MAX */
	const char *const *argv;	   /* NULL-terminated, argv[0] searched in PATH */
	const char *const *envp;	   /* NULL-terminated; NULL for an empty environment */
	const char *cwd;		   /* NULL: the task directory */
	const struct cg *cg;		   /* the task's cgroup (created by the agent), or NULL */
	uint64_t timeout_ms;		   /* wall-time limit, 0 = none */
	uint64_t grace_ms;		   /* SIGTERM-to-SIGKILL on cancel/timeout, 0 = default */
	const struct sup_sandbox *sandbox; /* NULL: exec argv on the host */
};

struct sup;

const char *sup_kind_name(enum sup_kind kind);
int sup_kind_parse(const char *s, enum sup_kind *ret_kind);

/* dirname(/proc/self/exe)/aicn-supervise: where the supervisor is installed beside the agent. */
int sup_default_binary(char *buf, size_t len);

/*
 * Start a supervisor for a task whose directory TASK_DIR exists: writes the spec,
 * forks, double-forks into a new session (so the supervisor is no child of the
 * agent and survives it), execs SUPERVISOR_BIN, and returns once the task was
 * exec'd (or failed to: then the status is SUP_FAILED) and the state is on disk.
 */
int sup_start(const char *supervisor_bin, const char *task_dir, const struct sup_spec *spec,
	      struct sup **ret_sup);
/* Re-adopt the supervisor of TASK_DIR after an agent restart (pid + start time checked, pidfd held). */
int sup_adopt(const char *task_dir, struct sup **ret_sup);
struct sup *sup_free(struct sup *sup);

/* pidfd of the supervisor: readable once it exited; -1 when it is known to be gone. */
int sup_fd(const struct sup *sup);
/* Re-read the state file; a dead supervisor that left "running" becomes SUP_LOST. */
int sup_refresh(struct sup *sup);
const struct sup_status *sup_status(const struct sup *sup);
const char *sup_task_dir(const struct sup *sup);
/* Ask the supervisor to cancel the task (SIGTERM to it; it kills the task and records SUP_CANCELED). */
int sup_cancel(struct sup *sup);
/* Wait up to TIMEOUT_MS (-1 forever) for the task to end; -ETIMEDOUT if still running. */
int sup_wait(struct sup *sup, int timeout_ms);

/* Read a task directory's state file (dirfd of the task directory). */
int sup_state_read(int dirfd, struct sup_status *ret_status);
/* Parse the text of a state file (bounded, strict numbers; unknown keys ignored). */
int sup_state_parse(const char *text, size_t len, struct sup_status *ret_status);
/* Write it atomically (temporary file, fsync, rename, fsync of the directory). */
int sup_state_write(int dirfd, const struct sup_status *st);
/*
 * Names of the task directories below TASKS_DIR that hold a state file, for
 * reconciling after a restart (sup_adopt each).  Free with sup_names_free.
 */
int sup_list_tasks(const char *tasks_dir, char ***ret_names, size_t *ret_n);
void sup_names_free(char **names, size_t n);
/* /proc/PID/stat start time in clock ticks since boot. */
int sup_proc_start_time(pid_t pid, uint64_t *ret_ticks);

/*
 * The agent's parent cgroup of all tasks, NAME directly under the agent's own
 * cgroup, capped at MILLICORES of CPU and MEMORY bytes; opened if it exists.
 */
int sup_cap_create(const struct cg_host *host, const char *name, uint32_t millicores,
		   uint64_t memory, struct cg **ret_cg);

#endif /* AICN_AGENT_SUPERVISOR_H */
