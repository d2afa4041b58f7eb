/* seccomp.c -- the task's syscall policy as one table, compiled once by libseccomp into a BPF program. */
#include "internal.h"

#include <linux/filter.h>
#include <linux/netlink.h>
#include <pthread.h>
#include <sched.h>
#include <seccomp.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>

#define A SBX_SC_ALLOW
#define D SBX_SC_DENY

/*
 * The policy.  Anything not named here gets ENOSYS, so unknown and future syscalls
 * look unimplemented and programs fall back.  Denied calls (EPERM) are at least what
 * Docker's default profile refuses to an unprivileged container, plus ptrace and
 * process_vm_*.  ARGS rows are allowed for safe arguments only (see add_arg_rules).
 */
static const struct sbx_sc_rule policy[] = {
	/* denied: kernel and host state */
	{"reboot", D, "reboot or halt the host"},
	{"kexec_load", D, "replace the running kernel"},
	{"kexec_file_load", D, "replace the running kernel"},
	{"init_module", D, "load kernel code"},
	{"finit_module", D, "load kernel code"},
	{"delete_module", D, "unload kernel code"},
	{"create_module", D, "obsolete module call"},
	{"query_module", D, "obsolete module call"},
	{"get_kernel_syms", D, "obsolete module call"},
	{"swapon", D, "change host swap"},
	{"swapoff", D, "change host swap"},
	{"syslog", D, "read the kernel log (addresses)"},
	{"iopl", D, "raw I/O port access"},
	{"ioperm", D, "raw I/O port access"},
	{"acct", D, "host process accounting"},
	{"settimeofday", D, "set the host clock"},
	{"clock_settime", D, "set the host clock"},
	{"clock_adjtime", D, "set the host clock"},
	{"adjtimex", D, "set the host clock"},
	{"quotactl", D, "filesystem quotas"},
	{"quotactl_fd", D, "filesystem quotas"},
	{"nfsservctl", D, "obsolete NFS server control"},
	{"lookup_dcookie", D, "kernel profiling cookies"},
	{"uselib", D, "obsolete loader call"},
	{"ustat", D, "obsolete filesystem statistics"},
	{"sysfs", D, "obsolete filesystem type list"},
	{"_sysctl", D, "obsolete sysctl"},
	{"vhangup", D, "hang up the terminal"},
	{"sethostname", D, "hostname is set by the sandbox"},
	{"setdomainname", D, "domain name is set by the sandbox"},
	/* denied: attack surface with a history of exploits */
	{"bpf", D, "load BPF programs"},
	{"perf_event_open", D, "kernel profiling (side channels, exploits)"},
	{"userfaultfd", D, "page-fault handling used to win kernel races"},
	{"io_uring_setup", D, "io_uring (bypasses seccomp for its operations)"},
	{"io_uring_enter", D, "io_uring"},
	{"io_uring_register", D, "io_uring"},
	{"keyctl", D, "kernel keyrings are not namespaced"},
	{"add_key", D, "kernel keyrings are not namespaced"},
	{"request_key", D, "kernel keyrings are not namespaced"},
	{"open_by_handle_at", D, "open files by handle outside the root (shocker)"},
	{"name_to_handle_at", D, "file handles"},
	{"fanotify_init", D, "filesystem-wide notification"},
	{"kcmp", D, "compare other processes' kernel objects"},
	{"pidfd_getfd", D, "steal another process's file descriptor"},
	{"process_madvise", D, "act on another process's memory"},
	{"mbind", D, "NUMA policy of the host"},
	{"set_mempolicy", D, "NUMA policy of the host"},
	{"get_mempolicy", D, "NUMA policy of the host"},
	{"migrate_pages", D, "move another process's pages"},
	{"move_pages", D, "move another process's pages"},
	{"vm86", D, "virtual 8086 mode"},
	{"vm86old", D, "virtual 8086 mode"},
	/* denied: other processes */
	{"ptrace", D, "trace or tamper with processes"},
	{"process_vm_readv", D, "read another process's memory"},
	{"process_vm_writev", D, "write another process's memory"},
	/* denied: mounts and namespaces */
	{"mount", D, "mount filesystems"},
	{"umount2", D, "unmount the sandbox's masks"},
	{"umount", D, "unmount the sandbox's masks"},
	{"pivot_root", D, "change the root mount"},
	{"chroot", D, "escape helpers rely on chroot"},
	{"fsopen", D, "new mount API"},
	{"fsconfig", D, "new mount API"},
	{"fsmount", D, "new mount API"},
	{"fspick", D, "new mount API"},
	{"move_mount", D, "new mount API"},
	{"open_tree", D, "new mount API"},
	{"mount_setattr", D, "new mount API"},
	{"unshare", D, "new namespaces"},
	{"setns", D, "enter other namespaces"},
	/* ENOSYS so that glibc falls back to clone(), whose flags we can check */
	{"clone3", SBX_SC_ENOSYS, "flags are behind a pointer"},
	/* allowed for some arguments only */
	{"clone", SBX_SC_ARGS, "no namespace flags"},
	{"socket", SBX_SC_ARGS, "unix, inet/inet6 stream/dgram, netlink route only"},
	{"ioctl", SBX_SC_ARGS, "not TIOCSTI or TIOCLINUX"},
	{"personality", SBX_SC_ARGS, "Linux personalities only"},
	/* allowed */
	{"accept", A, NULL},
	{"accept4", A, NULL},
	{"access", A, NULL},
	{"alarm", A, NULL},
	{"arch_prctl", A, NULL},
	{"bind", A, NULL},
	{"brk", A, NULL},
	{"capget", A, NULL},
	{"capset", A, NULL},
	{"chdir", A, NULL},
	{"chmod", A, NULL},
	{"chown", A, NULL},
	{"clock_getres", A, NULL},
	{"clock_gettime", A, NULL},
	{"clock_nanosleep", A, NULL},
	{"close", A, NULL},
	{"close_range", A, NULL},
	{"connect", A, NULL},
	{"copy_file_range", A, NULL},
	{"creat", A, NULL},
	{"dup", A, NULL},
	{"dup2", A, NULL},
	{"dup3", A, NULL},
	{"epoll_create", A, NULL},
	{"epoll_create1", A, NULL},
	{"epoll_ctl", A, NULL},
	{"epoll_pwait", A, NULL},
	{"epoll_pwait2", A, NULL},
	{"epoll_wait", A, NULL},
	{"eventfd", A, NULL},
	{"eventfd2", A, NULL},
	{"execve", A, NULL},
	{"execveat", A, NULL},
	{"exit", A, NULL},
	{"exit_group", A, NULL},
	{"faccessat", A, NULL},
	{"faccessat2", A, NULL},
	{"fadvise64", A, NULL},
	{"fallocate", A, NULL},
	{"fchdir", A, NULL},
	{"fchmod", A, NULL},
	{"fchmodat", A, NULL},
	{"fchown", A, NULL},
	{"fchownat", A, NULL},
	{"fcntl", A, NULL},
	{"fdatasync", A, NULL},
	{"fgetxattr", A, NULL},
	{"flistxattr", A, NULL},
	{"flock", A, NULL},
	{"fork", A, NULL},
	{"fremovexattr", A, NULL},
	{"fsetxattr", A, NULL},
	{"fstat", A, NULL},
	{"fstatfs", A, NULL},
	{"fsync", A, NULL},
	{"ftruncate", A, NULL},
	{"futex", A, NULL},
	{"futex_waitv", A, NULL},
	{"futimesat", A, NULL},
	{"getcpu", A, NULL},
	{"getcwd", A, NULL},
	{"getdents", A, NULL},
	{"getdents64", A, NULL},
	{"getegid", A, NULL},
	{"geteuid", A, NULL},
	{"getgid", A, NULL},
	{"getgroups", A, NULL},
	{"getitimer", A, NULL},
	{"getpeername", A, NULL},
	{"getpgid", A, NULL},
	{"getpgrp", A, NULL},
	{"getpid", A, NULL},
	{"getppid", A, NULL},
	{"getpriority", A, NULL},
	{"getrandom", A, NULL},
	{"getresgid", A, NULL},
	{"getresuid", A, NULL},
	{"getrlimit", A, NULL},
	{"get_robust_list", A, NULL},
	{"getrusage", A, NULL},
	{"getsid", A, NULL},
	{"getsockname", A, NULL},
	{"getsockopt", A, NULL},
	{"get_thread_area", A, NULL},
	{"gettid", A, NULL},
	{"gettimeofday", A, NULL},
	{"getuid", A, NULL},
	{"getxattr", A, NULL},
	{"inotify_add_watch", A, NULL},
	{"inotify_init", A, NULL},
	{"inotify_init1", A, NULL},
	{"inotify_rm_watch", A, NULL},
	{"io_cancel", A, NULL},
	{"io_destroy", A, NULL},
	{"io_getevents", A, NULL},
	{"io_pgetevents", A, NULL},
	{"ioprio_get", A, NULL},
	{"ioprio_set", A, NULL},
	{"io_setup", A, NULL},
	{"io_submit", A, NULL},
	{"kill", A, NULL},
	{"landlock_add_rule", A, NULL},
	{"landlock_create_ruleset", A, NULL},
	{"landlock_restrict_self", A, NULL},
	{"lchown", A, NULL},
	{"lgetxattr", A, NULL},
	{"link", A, NULL},
	{"linkat", A, NULL},
	{"listen", A, NULL},
	{"listxattr", A, NULL},
	{"llistxattr", A, NULL},
	{"lremovexattr", A, NULL},
	{"lseek", A, NULL},
	{"lsetxattr", A, NULL},
	{"lstat", A, NULL},
	{"madvise", A, NULL},
	{"membarrier", A, NULL},
	{"memfd_create", A, NULL},
	{"mincore", A, NULL},
	{"mkdir", A, NULL},
	{"mkdirat", A, NULL},
	{"mknod", A, NULL},
	{"mknodat", A, NULL},
	{"mlock", A, NULL},
	{"mlock2", A, NULL},
	{"mlockall", A, NULL},
	{"mmap", A, NULL},
	{"mprotect", A, NULL},
	{"mq_getsetattr", A, NULL},
	{"mq_notify", A, NULL},
	{"mq_open", A, NULL},
	{"mq_timedreceive", A, NULL},
	{"mq_timedsend", A, NULL},
	{"mq_unlink", A, NULL},
	{"mremap", A, NULL},
	{"msgctl", A, NULL},
	{"msgget", A, NULL},
	{"msgrcv", A, NULL},
	{"msgsnd", A, NULL},
	{"msync", A, NULL},
	{"munlock", A, NULL},
	{"munlockall", A, NULL},
	{"munmap", A, NULL},
	{"nanosleep", A, NULL},
	{"newfstatat", A, NULL},
	{"open", A, NULL},
	{"openat", A, NULL},
	{"openat2", A, NULL},
	{"pause", A, NULL},
	{"pidfd_open", A, NULL},
	{"pidfd_send_signal", A, NULL},
	{"pipe", A, NULL},
	{"pipe2", A, NULL},
	{"pkey_alloc", A, NULL},
	{"pkey_free", A, NULL},
	{"pkey_mprotect", A, NULL},
	{"poll", A, NULL},
	{"ppoll", A, NULL},
	{"prctl", A, NULL},
	{"pread64", A, NULL},
	{"preadv", A, NULL},
	{"preadv2", A, NULL},
	{"prlimit64", A, NULL},
	{"pselect6", A, NULL},
	{"pwrite64", A, NULL},
	{"pwritev", A, NULL},
	{"pwritev2", A, NULL},
	{"read", A, NULL},
	{"readahead", A, NULL},
	{"readlink", A, NULL},
	{"readlinkat", A, NULL},
	{"readv", A, NULL},
	{"recvfrom", A, NULL},
	{"recvmmsg", A, NULL},
	{"recvmsg", A, NULL},
	{"remap_file_pages", A, NULL},
	{"removexattr", A, NULL},
	{"rename", A, NULL},
	{"renameat", A, NULL},
	{"renameat2", A, NULL},
	{"restart_syscall", A, NULL},
	{"rmdir", A, NULL},
	{"rseq", A, NULL},
	{"rt_sigaction", A, NULL},
	{"rt_sigpending", A, NULL},
	{"rt_sigprocmask", A, NULL},
	{"rt_sigqueueinfo", A, NULL},
	{"rt_sigreturn", A, NULL},
	{"rt_sigsuspend", A, NULL},
	{"rt_sigtimedwait", A, NULL},
	{"rt_tgsigqueueinfo", A, NULL},
	{"sched_getaffinity", A, NULL},
	{"sched_getattr", A, NULL},
	{"sched_getparam", A, NULL},
	{"sched_get_priority_max", A, NULL},
	{"sched_get_priority_min", A, NULL},
	{"sched_getscheduler", A, NULL},
	{"sched_rr_get_interval", A, NULL},
	{"sched_setaffinity", A, NULL},
	{"sched_setattr", A, NULL},
	{"sched_setparam", A, NULL},
	{"sched_setscheduler", A, NULL},
	{"sched_yield", A, NULL},
	{"seccomp", A, NULL},
	{"select", A, NULL},
	{"semctl", A, NULL},
	{"semget", A, NULL},
	{"semop", A, NULL},
	{"semtimedop", A, NULL},
	{"sendfile", A, NULL},
	{"sendmmsg", A, NULL},
	{"sendmsg", A, NULL},
	{"sendto", A, NULL},
	{"setfsgid", A, NULL},
	{"setfsuid", A, NULL},
	{"setgid", A, NULL},
	{"setgroups", A, NULL},
	{"setitimer", A, NULL},
	{"setpgid", A, NULL},
	{"setpriority", A, NULL},
	{"setregid", A, NULL},
	{"setresgid", A, NULL},
	{"setresuid", A, NULL},
	{"setreuid", A, NULL},
	{"setrlimit", A, NULL},
	{"set_robust_list", A, NULL},
	{"setsid", A, NULL},
	{"setsockopt", A, NULL},
	{"set_thread_area", A, NULL},
	{"set_tid_address", A, NULL},
	{"setuid", A, NULL},
	{"setxattr", A, NULL},
	{"shmat", A, NULL},
	{"shmctl", A, NULL},
	{"shmdt", A, NULL},
	{"shmget", A, NULL},
	{"shutdown", A, NULL},
	{"sigaltstack", A, NULL},
	{"signalfd", A, NULL},
	{"signalfd4", A, NULL},
	{"socketpair", A, NULL},
	{"splice", A, NULL},
	{"stat", A, NULL},
	{"statfs", A, NULL},
	{"statx", A, NULL},
	{"symlink", A, NULL},
	{"symlinkat", A, NULL},
	{"sync", A, NULL},
	{"sync_file_range", A, NULL},
	{"syncfs", A, NULL},
	{"sysinfo", A, NULL},
	{"tee", A, NULL},
	{"tgkill", A, NULL},
	{"time", A, NULL},
	{"timer_create", A, NULL},
	{"timer_delete", A, NULL},
	{"timer_getoverrun", A, NULL},
	{"timer_gettime", A, NULL},
	{"timer_settime", A, NULL},
	{"timerfd_create", A, NULL},
	{"timerfd_gettime", A, NULL},
	{"timerfd_settime", A, NULL},
	{"times", A, NULL},
	{"tkill", A, NULL},
	{"truncate", A, NULL},
	{"umask", A, NULL},
	{"uname", A, NULL},
	{"unlink", A, NULL},
	{"unlinkat", A, NULL},
	{"utime", A, NULL},
	{"utimensat", A, NULL},
	{"utimes", A, NULL},
	{"vfork", A, NULL},
	{"vmsplice", A, NULL},
	{"wait4", A, NULL},
	{"waitid", A, NULL},
	{"write", A, NULL},
	{"writev", A, NULL},
	{"mseal", A, NULL},
	{"cachestat", A, NULL},
	{"fchmodat2", A, NULL},
	{"map_shadow_stack", A, NULL},
	{"process_mrelease", A, NULL},
	{"memfd_secret", A, NULL},
	{"epoll_ctl_old", D, "obsolete"},
	{"epoll_wait_old", D, "obsolete"},
};

#undef A
#undef D

const struct sbx_sc_rule *sbx_seccomp_policy(size_t *ret_n)
{
	*ret_n = ARRAY_SIZE(policy);
	return policy;
}

#define NS_FLAGS                                                                                   \
	(CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | \
	 CLONE_NEWCGROUP)

/* Address families a task may open (with the type and protocol checks below). */
static int family_allowed(int af)
{
	return af == AF_UNIX || af == AF_INET || af == AF_INET6 || af == AF_NETLINK;
}

static int add_arg_rules(scmp_filter_ctx ctx, const char *name)
{
	const uint32_t eperm = SCMP_ACT_ERRNO(EPERM);
	int r = 0;

	if (strcmp(name, "clone") == 0) {
		static const unsigned long ns[] = {CLONE_NEWNS,	   CLONE_NEWUTS, CLONE_NEWIPC,
						   CLONE_NEWUSER,  CLONE_NEWPID, CLONE_NEWNET,
						   CLONE_NEWCGROUP};

		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
				     SCMP_A0(SCMP_CMP_MASKED_EQ, NS_FLAGS, 0));
		for (size_t i = 0; r == 0 && i < ARRAY_SIZE(ns); i++)
			r = seccomp_rule_add(ctx, eperm, SCMP_SYS(clone), 1,
					     SCMP_A0(SCMP_CMP_MASKED_EQ, ns[i], ns[i]));
	} else if (strcmp(name, "socket") == 0) {
		static const int types[] = {SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET};

		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
				     SCMP_A0(SCMP_CMP_EQ, AF_UNIX));
		for (size_t i = 0; r == 0 && i < ARRAY_SIZE(types); i++) {
			r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 2,
					     SCMP_A0(SCMP_CMP_EQ, AF_INET),
					     SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, types[i]));
			if (r == 0)
				r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 2,
						     SCMP_A0(SCMP_CMP_EQ, AF_INET6),
						     SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, types[i]));
		}
		/* raw and packet-type sockets of inet families */
		for (int t = SOCK_RAW; r == 0 && t <= 15; t++) {
			if (t == SOCK_SEQPACKET)
				continue;
			r = seccomp_rule_add(ctx, eperm, SCMP_SYS(socket), 2,
					     SCMP_A0(SCMP_CMP_EQ, AF_INET),
					     SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, t));
			if (r == 0)
				r = seccomp_rule_add(ctx, eperm, SCMP_SYS(socket), 2,
						     SCMP_A0(SCMP_CMP_EQ, AF_INET6),
						     SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, t));
		}
		if (r == 0)
			r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 2,
					     SCMP_A0(SCMP_CMP_EQ, AF_NETLINK),
					     SCMP_A2(SCMP_CMP_EQ, NETLINK_ROUTE));
		if (r == 0)
			r = seccomp_rule_add(ctx, eperm, SCMP_SYS(socket), 2,
					     SCMP_A0(SCMP_CMP_EQ, AF_NETLINK),
					     SCMP_A2(SCMP_CMP_GT, NETLINK_ROUTE));
		/* every other family: AF_PACKET, AF_ALG, AF_VSOCK, AF_KEY, bluetooth ... */
		for (int af = 0; r == 0 && af < 64; af++)
			if (!family_allowed(af))
				r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT),
						     SCMP_SYS(socket), 1, SCMP_A0(SCMP_CMP_EQ, af));
		if (r == 0)
			r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), 1,
					     SCMP_A0(SCMP_CMP_GE, 64));
	} else if (strcmp(name, "ioctl") == 0) {
		/* the command is an unsigned int: compare the low 32 bits only */
		r = seccomp_rule_add(ctx, eperm, SCMP_SYS(ioctl), 1,
				     SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, TIOCSTI));
		if (r == 0)
			r = seccomp_rule_add(ctx, eperm, SCMP_SYS(ioctl), 1,
					     SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, TIOCLINUX));
		/* "fd >= 0" as unsigned is always true: allows the rest without overriding */
		if (r == 0)
			r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
					     SCMP_A0(SCMP_CMP_GE, 0));
	} else if (strcmp(name, "personality") == 0) {
		static const unsigned long ok[] = {0x0, 0x8, 0x20000, 0x20008, 0xffffffff};

		for (size_t i = 0; r == 0 && i < ARRAY_SIZE(ok); i++)
			r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(personality), 1,
					     SCMP_A0(SCMP_CMP_EQ, ok[i]));
		if (r == 0)
			r = seccomp_rule_add(ctx, eperm, SCMP_SYS(personality), 1,
					     SCMP_A0(SCMP_CMP_GT, 0xffffffffu));
	} else {
		r = -EINVAL;
	}
	return r;
}

static struct sock_filter *prog_insns;
static struct sock_fprog prog;
static int prog_err;
static pthread_once_t prog_once = PTHREAD_ONCE_INIT;

static int build(void)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(ENOSYS));
	_cleanup_close_ int fd = -1;
	off_t size;
	int r = 0;

	if (!ctx)
		return -ENOMEM;
	/* 32-bit and x32 entry points are not part of the policy: kill */
	if (seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS) < 0 ||
	    seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0) < 0) {
		r = -EINVAL;
		goto out;
	}
	for (size_t i = 0; r == 0 && i < ARRAY_SIZE(policy); i++) {
		int nr = seccomp_syscall_resolve_name(policy[i].name);

		if (nr == __NR_SCMP_ERROR)
			continue; /* not known to this libseccomp: default ENOSYS */
		if (nr < 0)
			continue; /* not on this architecture */
		switch (policy[i].action) {
		case SBX_SC_ALLOW:
			r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
			break;
		case SBX_SC_DENY:
			r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
			break;
		case SBX_SC_ENOSYS:
			break; /* the default action already */
		case SBX_SC_ARGS:
			r = add_arg_rules(ctx, policy[i].name);
			break;
		}
	}
	if (r < 0)
		goto out;
	fd = memfd_create("aicn-seccomp", MFD_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	r = seccomp_export_bpf(ctx, fd);
	if (r < 0)
		goto out;
	size = lseek(fd, 0, SEEK_END);
	if (size <= 0 || size % sizeof(struct sock_filter) || size > 65536 * 8) {
		r = -EINVAL;
		goto out;
	}
	prog_insns = malloc((size_t)size);
	if (!prog_insns) {
		r = -ENOMEM;
		goto out;
	}
	if (pread(fd, prog_insns, (size_t)size, 0) != size) {
		free(prog_insns);
		prog_insns = NULL;
		r = -EIO;
		goto out;
	}
	prog.len = (unsigned short)(size / sizeof(struct sock_filter));
	prog.filter = prog_insns;
out:
	seccomp_release(ctx);
	return r;
}

static void build_once(void)
{
	prog_err = build();
}

int sbx_seccomp_prepare(void)
{
	pthread_once(&prog_once, build_once);
	return prog_err;
}

const struct sock_fprog *sbx_seccomp_prog(void)
{
	return prog_err == 0 && prog.filter ? &prog : NULL;
}
