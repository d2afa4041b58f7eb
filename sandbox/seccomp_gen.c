/* seccomp_gen.c -- build-time generator: compiles the policy table with libseccomp and prints the BPF program as C. */
#include "internal.h"

#include <errno.h>
#include <linux/filter.h>
#include <linux/netlink.h>
#include <sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#define NS_FLAGS                                                                                   \
	(CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | \
	 CLONE_NEWCGROUP)

/* Address families a task may open (with the type and protocol checks below). */
static int family_allowed(int af)
{
	return af == AF_UNIX || af == AF_INET || af == AF_INET6 || af == AF_NETLINK;
}

/*
 * The largest aligned power-of-two block starting at v whose values in [v, hi] all
 * satisfy denied(): a rule "(arg & ~(size - 1)) == v" covers it at once.  Sixty rules of
 * one value each made the socket checks most of the filter, and the kernel compiles
 * every instruction of it at each task start.
 */
static unsigned block_at(unsigned v, unsigned hi, int (*denied)(unsigned))
{
	unsigned size = 1;

	for (;;) {
		unsigned next = size * 2, ok = v % next == 0 && v + next - 1 <= hi;

		for (unsigned x = v; ok && x < v + next; x++)
			ok = denied(x);
		if (!ok)
			return size;
		size = next;
	}
}

static int family_denied(unsigned af)
{
	return !family_allowed((int)af);
}

/* raw and packet-like types of inet sockets (SOCK_RAW and above, but SOCK_SEQPACKET) */
static int inet_type_denied(unsigned t)
{
	return t >= SOCK_RAW && t != SOCK_SEQPACKET;
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
		/* raw and packet-type sockets of inet families: the type's low 4 bits */
		for (unsigned t = SOCK_RAW, n; r == 0 && t <= 15; t += n) {
			n = inet_type_denied(t) ? block_at(t, 15, inet_type_denied) : 1;
			if (!inet_type_denied(t))
				continue;
			r = seccomp_rule_add(ctx, eperm, SCMP_SYS(socket), 2,
					     SCMP_A0(SCMP_CMP_EQ, AF_INET),
					     SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf & ~(n - 1), t));
			if (r == 0)
				r = seccomp_rule_add(
					ctx, eperm, SCMP_SYS(socket), 2,
					SCMP_A0(SCMP_CMP_EQ, AF_INET6),
					SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf & ~(n - 1), t));
		}
		if (r == 0)
			r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 2,
					     SCMP_A0(SCMP_CMP_EQ, AF_NETLINK),
					     SCMP_A2(SCMP_CMP_EQ, NETLINK_ROUTE));
		if (r == 0)
			r = seccomp_rule_add(ctx, eperm, SCMP_SYS(socket), 2,
					     SCMP_A0(SCMP_CMP_EQ, AF_NETLINK),
					     SCMP_A2(SCMP_CMP_GT, NETLINK_ROUTE));
		/*
		 * every other family: AF_PACKET, AF_ALG, AF_VSOCK, AF_KEY, bluetooth ...
		 * as aligned blocks up to the last allowed family, then all above it
		 */
		unsigned last = 0;

		for (unsigned af = 0; af < 64; af++)
			if (family_allowed((int)af))
				last = af;
		for (unsigned af = 0, n; r == 0 && af <= last; af += n) {
			n = family_denied(af) ? block_at(af, last, family_denied) : 1;
			if (family_denied(af))
				r = seccomp_rule_add(
					ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), 1,
					SCMP_A0(SCMP_CMP_MASKED_EQ, ~(uint64_t)(n - 1), af));
		}
		if (r == 0)
			r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), 1,
					     SCMP_A0(SCMP_CMP_GE, last + 1));
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

/* Compile the table (seccomp_policy.c) into a BPF program in memory. */
static int build(struct sock_filter **ret_insns, size_t *ret_n)
{
	size_t n_policy;
	const struct sbx_sc_rule *policy = sbx_seccomp_policy(&n_policy);
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(ENOSYS));
	_cleanup_close_ int fd = -1;
	struct sock_filter *insns;
	off_t size;
	int r = 0;

	if (!ctx)
		return -ENOMEM;
	/*
	 * 32-bit and x32 entry points are not part of the policy: kill.  A binary tree
	 * over syscall numbers instead of a linear list: fewer instructions per syscall,
	 * and a cheaper filter cache set-up in the kernel at each task start.
	 */
	if (seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS) < 0 ||
	    seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0) < 0 ||
	    seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2) < 0) {
		r = -EINVAL;
		goto out;
	}
	for (size_t i = 0; r == 0 && i < n_policy; i++) {
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
	/* BPF_MAXINSNS: the kernel refuses longer programs */
	if (size <= 0 || size % sizeof(struct sock_filter) ||
	    size > BPF_MAXINSNS * (off_t)sizeof(struct sock_filter)) {
		r = -E2BIG;
		goto out;
	}
	insns = malloc((size_t)size);
	if (!insns) {
		r = -ENOMEM;
		goto out;
	}
	if (pread(fd, insns, (size_t)size, 0) != size) {
		free(insns);
		r = -EIO;
		goto out;
	}
	*ret_insns = insns;
	*ret_n = (size_t)size / sizeof(struct sock_filter);
out:
	seccomp_release(ctx);
	return r;
}

int main(void)
{
	const struct scmp_version *v = seccomp_version();
	struct utsname u;
	struct sock_filter *insns = NULL;
	size_t n = 0;
	int r = build(&insns, &n);

	if (r == 0 && uname(&u) < 0)
		r = -errno;
	if (r < 0) {
		fprintf(stderr, "seccomp_gen: cannot compile the policy: %s\n", strerror(-r));
		return 1;
	}
	printf("/* Generated by sandbox/seccomp_gen.c from the table in sandbox/seccomp_policy.c\n"
	       " * with libseccomp %u.%u.%u for %s: do not edit. */\n",
	       v->major, v->minor, v->micro, u.machine);
	printf("#include <linux/filter.h>\n\n");
	printf("extern const struct sock_fprog sbx_seccomp_fprog;\n\n");
	printf("static const struct sock_filter insns[%zu] = {\n", n);
	for (size_t i = 0; i < n; i++)
		printf("\t{0x%04x, %u, %u, 0x%08x},\n", insns[i].code, insns[i].jt, insns[i].jf,
		       insns[i].k);
	printf("};\n\n");
	/* the kernel copies the program and never writes through .filter */
	printf("const struct sock_fprog sbx_seccomp_fprog = {\n");
	printf("\t.len = %zu,\n", n);
	printf("\t.filter = (struct sock_filter *)insns,\n");
	printf("};\n");
	free(insns);
	return fflush(stdout) == 0 ? 0 : 1;
}
