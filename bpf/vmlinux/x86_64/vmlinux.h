/* vmlinux.h -- the few kernel types bpf/meter.bpf.c reads, hand-kept for CO-RE (not from the build host's kernel). */
/*
 * Only the members the probes use are declared.  preserve_access_index makes
 * clang record every member access as a CO-RE relocation, so libbpf fixes the
 * offsets against the running kernel's BTF at load time; the layout here need
 * not match any kernel.  `make vmlinux` may replace this file with a full dump
 * of a kernel's BTF: the probes build against either.
 */
#ifndef __VMLINUX_H__
#define __VMLINUX_H__

typedef unsigned char __u8;
typedef short unsigned int __u16;
typedef unsigned int __u32;
typedef long long unsigned int __u64;
typedef signed char __s8;
typedef short int __s16;
typedef int __s32;
typedef long long int __s64;
typedef __u8 u8;
typedef __u16 u16;
typedef __u32 u32;
typedef __u64 u64;
typedef __s64 s64;
typedef __s32 s32;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;
typedef int pid_t;
typedef _Bool bool;
enum { false = 0, true = 1 };

/* UAPI values (include/uapi/linux/bpf.h): stable numbers, no relocation needed. */
enum bpf_map_type {
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_ARRAY = 2,
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_CGROUP_STORAGE = 19,
	BPF_MAP_TYPE_QUEUE = 22,
	BPF_MAP_TYPE_TASK_STORAGE = 29,
	BPF_MAP_TYPE_CGRP_STORAGE = 32,
};

enum {
	BPF_ANY = 0,
	BPF_NOEXIST = 1,
	BPF_EXIST = 2,
	BPF_F_NO_PREALLOC = 1,
	BPF_F_MMAPABLE = 1024,
	BPF_LOCAL_STORAGE_GET_F_CREATE = 1,
};

/* Program context of cgroup_skb programs: a UAPI mirror, rewritten by the verifier. */
struct __sk_buff {
	__u32 len;
};

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

typedef struct {
	int counter;
} atomic_t;

struct sched_entity {
	u64 exec_start;
	u64 sum_exec_runtime;
};

struct sched_info {
	long unsigned int pcount;
	long long unsigned int run_delay;
};

struct kernfs_node {
	u64 id;
};

struct cgroup {
	struct kernfs_node *kn;
	int level;
	struct cgroup *ancestors[0];
};

struct css_set {
	struct cgroup *dfl_cgrp;
};

struct signal_struct {
	atomic_t live;
	int nr_threads;
};

struct bpf_local_storage;

struct thread_info {
	u32 cpu;
};

struct task_struct {
	struct thread_info thread_info;
	unsigned int __state;
	unsigned int flags;
	int on_cpu;
	struct sched_entity se;
	struct sched_info sched_info;
	pid_t pid;
	pid_t tgid;
	long unsigned int nvcsw;
	long unsigned int nivcsw;
	struct signal_struct *signal;
	struct css_set *cgroups;
	struct bpf_local_storage *bpf_storage;
};

struct linux_binprm;

struct bpf_map;

struct hrtimer {
	void *function;
};

struct seq_file;

struct bpf_iter_meta {
	struct seq_file *seq;
	u64 session_id;
	u64 seq_num;
};

struct bpf_iter__task {
	struct bpf_iter_meta *meta;
	struct task_struct *task;
};

#pragma clang attribute pop

/* Open-coded task iterator (kfuncs bpf_iter_task_*, Linux 6.7+): opaque to programs. */
struct bpf_iter_task {
	__u64 __opaque[3];
} __attribute__((aligned(8)));

#endif /* __VMLINUX_H__ */
