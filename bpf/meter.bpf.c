/* meter.bpf.c -- kernel side of the meter: exact CPU, run-queue wait, switches, process events and network bytes per tracked cgroup. */
/*
 * Every figure is a delta of the kernel's own per-thread counters, taken
 * between the moment a thread starts counting toward a tracked cgroup (born
 * inside it, or moved into it) and the moment it stops (its final switch-out
 * after exit, or a move out):
 *
 *   cpu        task->se.sum_exec_runtime   (what update_curr() also charges to
 *                                            the cgroup's cpu.stat usage_usec)
 *   rq wait    task->sched_info.run_delay  (time runnable but not running)
 *   switches   task->nvcsw / task->nivcsw
 *
 * Ended threads are summed into the "tracked" map; live threads are read by the
 * "live" task iterator, which adds the slice a running thread is in now.
 * Nothing is sampled, nothing is evicted: whatever cannot be accounted is
 * counted in the globals' drop counters.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <aicn/bpf/meter.h>

char LICENSE[] SEC("license") = "GPL";

/* include/linux/sched.h */
#define PF_EXITING 0x00000004 /* task->flags: set in do_exit() before sched_process_exit */
#define TASK_DEAD 0x80	      /* task->__state: set by do_task_dead() for the final switch */

/* Tracked cgroup id -> figures of its ended threads and its process/net counters. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, METER_MAX_TRACKED);
	__type(key, __u64);
	__type(value, struct meter_cg_stats);
} tracked SEC(".maps");

/* Per-thread starting points, for threads that count toward a tracked cgroup. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct meter_task);
} tasks SEC(".maps");

/* Per-cgroup cache of "nearest tracked ancestor", invalidated by globals.gen. */
struct {
	__uint(type, BPF_MAP_TYPE_CGRP_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct meter_cg_cache);
} cgcache SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct meter_globals);
} globals SEC(".maps");

/* Per CPU: its scheduler clock (rq clock_task) against CLOCK_MONOTONIC, for live readings. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct meter_cpuclock);
} cpuclock SEC(".maps");

/*
 * An exited thread whose final switch-out has not been seen yet: its
 * accounting moved here from its task storage at exit.  A sweep (reap) or
 * the kernel freeing it (meter_free), whichever comes first, commits it.
 */
struct meter_dying {
	__u64 task;    /* task_struct address: read by sweeps only while we hold this entry */
	__u64 cg;      /* tracked cgroup id; 0 once committed (whoever swaps it out commits) */
	__u64 cpu0;    /* se.sum_exec_runtime at exit (already counted) */
	__u64 wait0;   /* sched_info.run_delay at exit */
	__u64 nvcsw0;  /* nvcsw at exit */
	__u64 nivcsw0; /* nivcsw at exit */
};

/*
 * Task address -> exited thread.  The task cannot be freed while its entry is
 * here with cg set: meter_free runs before the kernel frees it and takes the
 * entry first.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, METER_MAX_DYING);
	__type(key, __u64);
	__type(value, struct meter_dying);
} dying SEC(".maps");

/* The same threads' task addresses in the order they exited: what a sweep looks at. */
struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, METER_MAX_DYING);
	__type(value, __u64);
} dying_order SEC(".maps");

static __always_inline struct meter_globals *get_globals(void)
{
	__u32 k = 0;

	return bpf_map_lookup_elem(&globals, &k);
}

/* Walk from cgrp up to the root; the first tracked id wins (nearest ancestor-or-self). */
static __always_inline __u64 resolve_slow(struct cgroup *cgrp, struct meter_globals *g)
{
	unsigned long base = (unsigned long)cgrp + bpf_core_field_offset(struct cgroup, ancestors);
	int level = BPF_CORE_READ(cgrp, level);

	for (int i = 0; i < METER_MAX_DEPTH; i++) {
		struct cgroup *anc = NULL;
		int l = level - i;
		__u64 id;

		if (l < 0)
			return 0;
		if (bpf_probe_read_kernel(&anc, sizeof(anc),
					  (void *)(base + (unsigned long)l * 8)) ||
		    !anc)
			return 0;
		id = BPF_CORE_READ(anc, kn, id);
		if (bpf_map_lookup_elem(&tracked, &id))
			return id;
	}
	__sync_fetch_and_add(&g->drop_depth, 1);
	return 0;
}

/* Tracked cgroup a task counts toward now (0: none), cached per cgroup and generation. */
static __always_inline __u64 resolve(struct task_struct *p, struct meter_globals *g)
{
	struct cgroup *cgrp = p->cgroups->dfl_cgrp;
	struct meter_cg_cache *c;
	__u64 gen = g->gen, id;

	if (!cgrp)
		return 0;
	c = bpf_cgrp_storage_get(&cgcache, cgrp, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (c && c->gen == gen)
		return c->tracked;
	id = resolve_slow(cgrp, g);
	if (c) {
		c->tracked = id;
		c->gen = gen;
	}
	return id;
}

static __always_inline void raise_peak(struct meter_cg_stats *st, __s64 live)
{
	for (int i = 0; i < 8; i++) {
		__u64 old = st->threads_peak;

		if ((__s64)old >= live)
			return;
		if (__sync_val_compare_and_swap(&st->threads_peak, old, (__u64)live) == old)
			return;
	}
}

/* Start counting p toward cg from p's current counters. */
static __always_inline void adopt(struct task_struct *p, struct meter_task *t, __u64 cg,
				  struct meter_cg_stats *st, struct meter_globals *g)
{
	__s64 live;

	t->cpu0 = p->se.sum_exec_runtime;
	t->wait0 = p->sched_info.run_delay;
	t->nvcsw0 = p->nvcsw;
	t->nivcsw0 = p->nivcsw;
	t->css = (__u64)p->cgroups;
	t->gen = g->gen;
	t->cg = cg;
	live = __sync_fetch_and_add(&st->threads_live, 1) + 1;
	raise_peak(st, live);
}

/*
 * Add a thread's counters now minus its starting points to a cgroup's figures.
 * base: cpu0, wait0, nvcsw0, nivcsw0 in that order (struct meter_task and
 * struct meter_dying both lay them out so).
 */
_Static_assert(__builtin_offsetof(struct meter_task, nivcsw0) ==
		       __builtin_offsetof(struct meter_task, cpu0) + 3 * 8,
	       "meter_task starting points in add_since() order");
_Static_assert(__builtin_offsetof(struct meter_dying, nivcsw0) ==
		       __builtin_offsetof(struct meter_dying, cpu0) + 3 * 8,
	       "meter_dying starting points in add_since() order");

static __always_inline void add_since(struct meter_cg_stats *st, __u64 cpu, __u64 wait, __u64 nv,
				      __u64 niv, const __u64 *base)
{
	__sync_fetch_and_add(&st->cpu_ns, cpu - base[0]);
	__sync_fetch_and_add(&st->rq_wait_ns, wait - base[1]);
	__sync_fetch_and_add(&st->vol_switches, nv - base[2]);
	__sync_fetch_and_add(&st->invol_switches, niv - base[3]);
}

/* Stop counting p: add its deltas to its cgroup's ended figures.  Runs once per adoption. */
static __always_inline void commit(struct task_struct *p, struct meter_task *t,
				   struct meter_globals *g)
{
	struct meter_cg_stats *st;
	__u64 cg = __sync_lock_test_and_set(&t->cg, 0);

	if (!cg)
		return;
	st = bpf_map_lookup_elem(&tracked, &cg);
	if (!st)
		return; /* untracked meanwhile: its figures were final when it was read */
	/* readers retry while threads_ending != threads_ended (a seqcount) */
	__sync_fetch_and_add(&st->threads_ending, 1);
	add_since(st, p->se.sum_exec_runtime, p->sched_info.run_delay, p->nvcsw, p->nivcsw,
		  &t->cpu0);
	__sync_fetch_and_add(&st->threads_live, -1);
	__sync_fetch_and_add(&st->threads_ended, 1);
}

/* Make p's accounting follow its current cgroup (after a move, or when first seen). */
static __always_inline struct meter_task *reconcile(struct task_struct *p, struct meter_task *t,
						    struct meter_globals *g)
{
	struct meter_cg_stats *st;
	__u64 gen = g->gen, cg = resolve(p, g);

	if (t && t->cg == cg) {
		t->css = (__u64)p->cgroups;
		t->gen = gen;
		return t;
	}
	if (!t && !cg)
		return 0;
	if (t)
		commit(p, t, g);
	if (!cg)
		return t;
	st = bpf_map_lookup_elem(&tracked, &cg);
	if (!st) {
		__sync_fetch_and_add(&g->drop_stats_missing, 1);
		return t;
	}
	if (!t)
		t = bpf_task_storage_get(&tasks, p, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!t) {
		__sync_fetch_and_add(&g->drop_task_storage, 1);
		__sync_fetch_and_add(&st->threads_lost, 1);
		return 0;
	}
	adopt(p, t, cg, st, g);
	return t;
}

/* Add a dead, switched-out thread's figures since exit to its cgroup. */
static __always_inline void commit_dying(struct meter_dying *d, __u64 cpu, __u64 wait, __u64 nv,
					 __u64 niv)
{
	struct meter_cg_stats *st;
	__u64 cg = __sync_lock_test_and_set(&d->cg, 0);

	if (!cg)
		return; /* the other committer got there first */
	st = bpf_map_lookup_elem(&tracked, &cg);
	if (!st)
		return; /* untracked meanwhile */
	__sync_fetch_and_add(&st->threads_ending, 1);
	add_since(st, cpu, wait, nv, niv, &d->cpu0);
	__sync_fetch_and_add(&st->threads_live, -1);
	__sync_fetch_and_add(&st->threads_ended, 1);
}

/*
 * A sweep: commit exited threads whose final switch-out is done, oldest
 * first, at most METER_REAP_BATCH per call.  A thread is read by address: it
 * is alive while its entry holds cg (meter_free, which runs before the kernel
 * frees a task, swaps cg out first), and what is read before winning that swap
 * was read while it was alive.  Each popped address is handled by one CPU; one
 * not yet switched out goes back to the end of the queue and ends the sweep.
 */
#define METER_REAP_BATCH 64

static __always_inline void reap(struct meter_globals *g)
{
	for (int i = 0; i < METER_REAP_BATCH; i++) {
		struct meter_dying *d;
		struct task_struct *p;
		unsigned int state = 0;
		int on_cpu = 1;
		__u64 key, cpu = 0, wait = 0;
		unsigned long nv = 0, niv = 0;

		if (bpf_map_pop_elem(&dying_order, &key))
			return;
		d = bpf_map_lookup_elem(&dying, &key);
		if (!d)
			continue; /* meter_free took it */
		p = (struct task_struct *)d->task;
		if (d->cg && (bpf_core_read(&state, sizeof(state), &p->__state) ||
			      bpf_core_read(&on_cpu, sizeof(on_cpu), &p->on_cpu) ||
			      (state & TASK_DEAD) == 0 || on_cpu)) {
			/* still on its way out: look again at the next sweep */
			if (bpf_map_push_elem(&dying_order, &key, 0))
				__sync_fetch_and_add(&g->dying_full, 1); /* meter_free commits it */
			return;
		}
		if (d->cg && !bpf_core_read(&cpu, sizeof(cpu), &p->se.sum_exec_runtime) &&
		    !bpf_core_read(&wait, sizeof(wait), &p->sched_info.run_delay) &&
		    !bpf_core_read(&nv, sizeof(nv), &p->nvcsw) &&
		    !bpf_core_read(&niv, sizeof(niv), &p->nivcsw))
			commit_dying(d, cpu, wait, nv, niv);
		if (bpf_map_delete_elem(&dying, &key) == 0)
			__sync_fetch_and_add(&g->ndying, -1);
	}
}

/*
 * A thread stops counting after its final switch-out, when sum_exec_runtime
 * holds its last slice.  Nothing runs on context switches.  An exited thread
 * is held in "dying" and committed by the first sweep that finds it switched
 * out (reap).  The kernel fires this before it frees a task: take the
 * thread out of "dying" (committing it if no sweep did yet), and commit a
 * thread that found "dying" full.  (Not the main path: on our VMs the kernel
 * never fires this for a few tasks in ten thousand, and it comes one RCU grace
 * period after the reap.)
 */
SEC("tp_btf/sched_process_free")
int BPF_PROG(meter_free, struct task_struct *p)
{
	struct meter_globals *g;
	struct meter_task *t;

	if (!p->bpf_storage)
		return 0;
	g = get_globals();
	if (!g)
		return 0;
	if (g->ndying) {
		__u64 key = (__u64)p;
		struct meter_dying *d = bpf_map_lookup_elem(&dying, &key);

		if (d) {
			commit_dying(d, p->se.sum_exec_runtime, p->sched_info.run_delay, p->nvcsw,
				     p->nivcsw);
			if (bpf_map_delete_elem(&dying, &key) == 0)
				__sync_fetch_and_add(&g->ndying, -1);
		}
	}
	t = bpf_task_storage_get(&tasks, p, 0, 0);
	if (t && t->cg)
		commit(p, t, g);
	return 0;
}

/* The scheduler tick's hrtimer callback: tick_nohz_handler since Linux 6.9, tick_sched_timer before. */
extern const void tick_nohz_handler __ksym __weak;
extern const void tick_sched_timer __ksym __weak;

/*
 * Every hrtimer expiry sweeps "dying" while it holds threads.  After each
 * scheduler tick of a busy CPU, it also pairs its scheduler clock with
 * CLOCK_MONOTONIC, which lets a reader tell how far a running thread is into a
 * slice the scheduler has not folded in yet (see meter_live).  The tick's
 * update_curr() has just set the running thread's se.exec_start to the CPU's
 * clock_task.  Other hrtimers return at the first comparison.
 */
SEC("tp_btf/hrtimer_expire_exit")
int BPF_PROG(meter_tick, struct hrtimer *timer)
{
	struct meter_globals *g = get_globals();
	void *fn = timer->function;
	struct task_struct *p;
	struct meter_cpuclock *c;
	__u32 k = 0;

	/* exited threads are committed within a tick (or a reader's 1 ms sleep) */
	if (g && g->ndying)
		reap(g);
	if (!fn || (fn != (void *)&tick_nohz_handler && fn != (void *)&tick_sched_timer))
		return 0;
	p = bpf_get_current_task_btf();
	if (!p->pid)
		return 0; /* idle: no running slice to measure here */
	c = bpf_map_lookup_elem(&cpuclock, &k);
	if (!c)
		return 0;
	/* odd while being written; readers check it before and after */
	*(volatile __u64 *)&c->seq = c->seq + 1;
	*(volatile __u64 *)&c->task_ns = p->se.exec_start;
	*(volatile __u64 *)&c->mono_ns = bpf_ktime_get_ns();
	*(volatile __u64 *)&c->jiffies = bpf_jiffies64();
	*(volatile __u64 *)&c->seq = c->seq + 1;
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(meter_fork, struct task_struct *parent, struct task_struct *child)
{
	struct meter_globals *g = get_globals();
	struct meter_cg_stats *st;
	struct meter_task *t;
	__u64 cg;

	if (!g || !g->ntracked)
		return 0;
	cg = resolve(child, g);
	if (!cg)
		return 0;
	st = bpf_map_lookup_elem(&tracked, &cg);
	if (!st) {
		__sync_fetch_and_add(&g->drop_stats_missing, 1);
		return 0;
	}
	if (child->pid == child->tgid)
		__sync_fetch_and_add(&st->procs_forked, 1);
	else
		__sync_fetch_and_add(&st->threads_born, 1);
	t = bpf_task_storage_get(&tasks, child, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!t) {
		__sync_fetch_and_add(&g->drop_task_storage, 1);
		__sync_fetch_and_add(&st->threads_lost, 1);
		return 0;
	}
	adopt(child, t, cg, st, g);
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(meter_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	struct meter_globals *g = get_globals();
	struct meter_cg_stats *st;
	__u64 cg;

	if (!g || !g->ntracked)
		return 0;
	cg = resolve(p, g);
	if (!cg)
		return 0;
	st = bpf_map_lookup_elem(&tracked, &cg);
	if (st)
		__sync_fetch_and_add(&st->procs_execed, 1);
	return 0;
}

/*
 * A thread exits: fold what it ran so far into its cgroup's ended figures and
 * count on from there (it stays adopted until meter_free adds the rest).  The
 * thread owns t->cg meanwhile, so nothing else commits the same interval; if a
 * sync iteration adopted it elsewhere in that instant (it skips exiting threads,
 * so only one that checked just before), the thread ends here.
 */
static __always_inline void settle_exit(struct task_struct *p, struct meter_task *t)
{
	struct meter_cg_stats *st;
	__u64 cpu, wait, nv, niv, cg = __sync_lock_test_and_set(&t->cg, 0);

	if (!cg)
		return;
	st = bpf_map_lookup_elem(&tracked, &cg);
	if (!st)
		return; /* untracked meanwhile: its figures were final when it was read */
	cpu = p->se.sum_exec_runtime;
	wait = p->sched_info.run_delay;
	nv = p->nvcsw;
	niv = p->nivcsw;
	__sync_fetch_and_add(&st->threads_ending, 1);
	add_since(st, cpu, wait, nv, niv, &t->cpu0);
	t->cpu0 = cpu;
	t->wait0 = wait;
	t->nvcsw0 = nv;
	t->nivcsw0 = niv;
	if (__sync_val_compare_and_swap(&t->cg, 0, cg) != 0)
		__sync_fetch_and_add(&st->threads_live, -1);
	__sync_fetch_and_add(&st->threads_ended, 1);
}

/*
 * Hand an exited thread over to "dying" until a sweep sees its final
 * switch-out.  If "dying" is full it stays with t, and meter_free commits it
 * when the kernel frees it.
 */
static __always_inline void hold_dying(struct task_struct *p, struct meter_task *t,
				       struct meter_globals *g)
{
	struct meter_dying d = {};
	__u64 key = (__u64)p;

	d.task = key;
	d.cg = t->cg;
	d.cpu0 = t->cpu0;
	d.wait0 = t->wait0;
	d.nvcsw0 = t->nvcsw0;
	d.nivcsw0 = t->nivcsw0;
	if (!d.cg)
		return;
	/* t stops counting first: nothing else commits the thread from t after this */
	if (__sync_val_compare_and_swap(&t->cg, d.cg, 0) != d.cg)
		return;
	if (bpf_map_update_elem(&dying, &key, &d, BPF_NOEXIST)) {
		t->cg = d.cg; /* full: meter_free commits it from t */
		__sync_fetch_and_add(&g->dying_full, 1);
		return;
	}
	__sync_fetch_and_add(&g->ndying, 1);
	if (bpf_map_push_elem(&dying_order, &key, 0))
		__sync_fetch_and_add(&g->dying_full,
				     1); /* no sweep sees it: meter_free commits it */
}

/* Every thread's exit; a process ends when its thread-group leader exits (one event per process). */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(meter_exit, struct task_struct *p)
{
	struct meter_globals *g = get_globals();
	struct meter_cg_stats *st;
	struct meter_task *t;
	__u64 cg;

	if (!g || !g->ntracked)
		return 0;
	t = p->bpf_storage ? bpf_task_storage_get(&tasks, p, 0, 0) : 0;
	if (t && t->cg) {
		settle_exit(p, t);
		hold_dying(p, t, g);
	}
	if (p->pid != p->tgid)
		return 0;
	cg = t && t->cg ? t->cg : resolve(p, g);
	if (!cg)
		return 0;
	st = bpf_map_lookup_elem(&tracked, &cg);
	if (st)
		__sync_fetch_and_add(&st->procs_exited, 1);
	return 0;
}

extern int bpf_iter_task_new(struct bpf_iter_task *it, struct task_struct *task,
			     unsigned int flags) __ksym;
extern struct task_struct *bpf_iter_task_next(struct bpf_iter_task *it) __ksym;
extern void bpf_iter_task_destroy(struct bpf_iter_task *it) __ksym;
#define METER_ITER_PROC_THREADS 2 /* bpf_iter_task_new(): the threads of one process */

/*
 * A task moved between cgroups (in any hierarchy): settle its accounting at the
 * moment of the move, so time before it counts where it was and time after
 * where it is.  The event names the moved task only (the leader, when a whole
 * process moves): its other threads are settled here too.  A sibling running
 * on another CPU right now has up to one tick not yet folded into its
 * sum_exec_runtime; that slice counts where the thread is after the move.
 */
SEC("tp_btf/cgroup_attach_task")
int BPF_PROG(meter_attach, struct cgroup *dst, const char *path, struct task_struct *task,
	     bool threadgroup)
{
	struct meter_globals *g = get_globals();
	struct bpf_iter_task it;
	struct task_struct *pos;

	if (!g || !g->ntracked)
		return 0;
	reconcile(task, bpf_task_storage_get(&tasks, task, 0, 0), g);
	if (!threadgroup || task->signal->nr_threads < 2)
		return 0;
	bpf_iter_task_new(&it, task, METER_ITER_PROC_THREADS);
	while ((pos = bpf_iter_task_next(&it))) {
		if (pos != task)
			reconcile(pos, bpf_task_storage_get(&tasks, pos, 0, 0), g);
	}
	bpf_iter_task_destroy(&it);
	return 0;
}

/*
 * Run by user space (a read of the pinned "sync" iterator) after the tracked set
 * changed under live threads: every thread follows its nearest tracked
 * ancestor as it is now (adopted, moved on, or let go).
 */
SEC("iter/task")
int meter_sync(struct bpf_iter__task *ctx)
{
	struct task_struct *p = ctx->task;
	struct meter_globals *g;
	struct meter_task *t;

	if (!p)
		return 0;
	g = get_globals();
	if (!g)
		return 0;
	if (p->flags & PF_EXITING)
		return 0; /* its exit settles it where it counts now */
	t = p->bpf_storage ? bpf_task_storage_get(&tasks, p, 0, 0) : 0;
	if (!t || t->gen != g->gen)
		reconcile(p, t, g);
	return 0;
}

/* Live figures: one record per thread currently counting toward a tracked cgroup. */
SEC("iter/task")
int meter_live(struct bpf_iter__task *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct task_struct *p = ctx->task;
	struct meter_live_rec r;
	struct meter_task *t;
	__u64 sum, exec;

	if (!p)
		return 0;
	t = bpf_task_storage_get(&tasks, p, 0, 0);
	if (!t || !t->cg)
		return 0;
	/* sum_exec_runtime and exec_start move together in update_curr(): read a pair */
	exec = p->se.exec_start;
	sum = p->se.sum_exec_runtime;
	for (int i = 0; i < 2 && exec != p->se.exec_start; i++) {
		exec = p->se.exec_start;
		sum = p->se.sum_exec_runtime;
	}
	r.cg = t->cg;
	r.cpu_ns = sum - t->cpu0;
	if (p->on_cpu) {
		/*
		 * Running now: add the part of this slice update_curr() has not
		 * folded in yet, i.e. the CPU's clock_task now minus exec_start.
		 * clock_task now = its value at the CPU's last calibration plus
		 * the CLOCK_MONOTONIC time since (which also runs through IRQs
		 * and steal time, so a busy CPU reads a little ahead, never behind).
		 */
		__u32 k = 0;
		struct meter_cpuclock *c =
			bpf_map_lookup_percpu_elem(&cpuclock, &k, p->thread_info.cpu);

		if (c) {
			__u64 s1 = *(volatile __u64 *)&c->seq;
			__u64 task_ns = *(volatile __u64 *)&c->task_ns;
			__u64 mono_ns = *(volatile __u64 *)&c->mono_ns;
			__u64 s2 = *(volatile __u64 *)&c->seq;

			if (s1 == s2 && !(s1 & 1) && mono_ns) {
				__u64 now_task = task_ns + (bpf_ktime_get_ns() - mono_ns);

				if ((__s64)(now_task - exec) > 0)
					r.cpu_ns += now_task - exec;
			}
		}
	}
	r.rq_wait_ns = p->sched_info.run_delay - t->wait0;
	r.vol_switches = p->nvcsw - t->nvcsw0;
	r.invol_switches = p->nivcsw - t->nivcsw0;
	r.tid = p->pid;
	bpf_seq_write(seq, &r, sizeof(r));
	return 0;
}

/*
 * Network: the same two programs are attached to every tracked cgroup, so a
 * packet of a nested tracked cgroup runs them once per tracked ancestor.  Each
 * attachment's cgroup storage holds the id of the cgroup it is attached to, and
 * only the attachment at the packet's nearest tracked cgroup counts it.
 */
struct {
	__uint(type, BPF_MAP_TYPE_CGROUP_STORAGE);
	__type(key, __u64);
	__type(value, __u64);
} netattach SEC(".maps");

static __always_inline void count_skb(struct __sk_buff *skb, int egress)
{
	__u64 *attached = bpf_get_local_storage(&netattach, 0);
	struct meter_cg_stats *st = 0;
	__u64 nearest = 0;

	for (int l = 0; l < METER_MAX_DEPTH; l++) {
		__u64 id = bpf_skb_ancestor_cgroup_id(skb, l);
		struct meter_cg_stats *s;

		if (!id)
			break;
		s = bpf_map_lookup_elem(&tracked, &id);
		if (s) {
			nearest = id;
			st = s;
		}
	}
	if (!st || nearest != *attached)
		return;
	if (egress) {
		__sync_fetch_and_add(&st->net_tx_bytes, skb->len);
		__sync_fetch_and_add(&st->net_tx_packets, 1);
	} else {
		__sync_fetch_and_add(&st->net_rx_bytes, skb->len);
		__sync_fetch_and_add(&st->net_rx_packets, 1);
	}
}

SEC("cgroup_skb/ingress")
int meter_ingress(struct __sk_buff *skb)
{
	count_skb(skb, 0);
	return 1;
}

SEC("cgroup_skb/egress")
int meter_egress(struct __sk_buff *skb)
{
	count_skb(skb, 1);
	return 1;
}
