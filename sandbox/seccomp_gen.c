/* seccomp_gen.c -- build-time generator: compiles the policy table with libseccomp, compacts its syscall dispatch into ranges, checks the result against libseccomp's program and prints it as C. */
#include "internal.h"

#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <linux/netlink.h>
#include <sched.h>
#include <stddef.h>
#include <seccomp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
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

/*
 * Compile the table (seccomp_policy.c) into a BPF program in memory; with args_only,
 * only the rows whose action depends on the arguments (the rest get the default).
 */
static int build(int args_only, struct sock_filter **ret_insns, size_t *ret_n)
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
		if (args_only && policy[i].action != SBX_SC_ARGS)
			continue;
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

/* ---- compaction ---- */

#define NR_SCAN 1100u	   /* every syscall number below this is classified one by one */
#define A_EXIT 0xffffffffu /* "continue in the argument program" (never a real action) */
#define MAX_INSNS 4096

/*
 * Run a classic BPF seccomp program on d, as the kernel would; the action, or 0 and
 * *bad = 1 on an instruction this generator does not know (so it can check nothing).
 */
static uint32_t emulate(const struct sock_filter *p, size_t n, const struct seccomp_data *d,
			int *bad)
{
	uint32_t acc = 0, mem[BPF_MEMWORDS] = {0};
	unsigned char raw[sizeof(*d)];

	memcpy(raw, d, sizeof(raw));
	for (size_t pc = 0; pc < n; pc++) {
		const struct sock_filter *f = &p[pc];
		uint32_t k = f->k;

		switch (f->code) {
		case BPF_LD | BPF_W | BPF_ABS:
			if (k % 4 || k + 4 > sizeof(raw))
				goto bad;
			memcpy(&acc, raw + k, 4);
			break;
		case BPF_LD | BPF_IMM:
			acc = k;
			break;
		case BPF_LD | BPF_MEM:
			if (k >= BPF_MEMWORDS)
				goto bad;
			acc = mem[k];
			break;
		case BPF_ST:
			if (k >= BPF_MEMWORDS)
				goto bad;
			mem[k] = acc;
			break;
		case BPF_ALU | BPF_AND | BPF_K:
			acc &= k;
			break;
		case BPF_JMP | BPF_JA:
			pc += k;
			break;
		case BPF_JMP | BPF_JEQ | BPF_K:
			pc += acc == k ? f->jt : f->jf;
			break;
		case BPF_JMP | BPF_JGT | BPF_K:
			pc += acc > k ? f->jt : f->jf;
			break;
		case BPF_JMP | BPF_JGE | BPF_K:
			pc += acc >= k ? f->jt : f->jf;
			break;
		case BPF_JMP | BPF_JSET | BPF_K:
			pc += acc & k ? f->jt : f->jf;
			break;
		case BPF_RET | BPF_K:
			return k;
		default:
			goto bad;
		}
	}
bad:
	*bad = 1;
	return 0;
}

struct range {
	uint32_t start;	 /* first syscall number */
	uint32_t action; /* seccomp action, or A_EXIT */
};

struct prog {
	struct sock_filter insn[MAX_INSNS];
	size_t n;
	size_t a_jumps[MAX_INSNS]; /* JA instructions whose target is the argument program */
	size_t n_a;
};

static int emit(struct prog *p, uint16_t code, uint8_t jt, uint8_t jf, uint32_t k)
{
	if (p->n >= MAX_INSNS)
		return -E2BIG;
	p->insn[p->n++] = (struct sock_filter){code, jt, jf, k};
	return 0;
}

static int emit_to_args(struct prog *p)
{
	if (p->n_a >= MAX_INSNS)
		return -E2BIG;
	p->a_jumps[p->n_a++] = p->n;
	return emit(p, BPF_JMP | BPF_JA, 0, 0, 0);
}

/* Instructions tree(lo, hi) emits: a binary search over ranges[lo..hi]. */
static size_t tree_size(const struct range *r, size_t lo, size_t hi)
{
	size_t mid = (lo + hi + 1) / 2, left;

	if (lo == hi)
		return 1;
	left = tree_size(r, lo, mid - 1);
	return 1 + (left > 255 ? 1 : 0) + left + tree_size(r, mid, hi);
}

/* Leaves return the range's action or jump to the argument program. */
static int tree(struct prog *p, const struct range *r, size_t lo, size_t hi)
{
	size_t mid = (lo + hi + 1) / 2, left;
	int e;

	if (lo == hi)
		return r[lo].action == A_EXIT ? emit_to_args(p)
					      : emit(p, BPF_RET | BPF_K, 0, 0, r[lo].action);
	left = tree_size(r, lo, mid - 1);
	if (left <= 255) {
		e = emit(p, BPF_JMP | BPF_JGE | BPF_K, (uint8_t)left, 0, r[mid].start);
	} else {
		/* too far for a conditional jump: over an unconditional one */
		e = emit(p, BPF_JMP | BPF_JGE | BPF_K, 0, 1, r[mid].start);
		if (e == 0)
			e = emit(p, BPF_JMP | BPF_JA, 0, 0, (uint32_t)left);
	}
	if (e == 0)
		e = tree(p, r, lo, mid - 1);
	if (e == 0)
		e = tree(p, r, mid, hi);
	return e;
}

static int is_args_nr(int nr)
{
	size_t n;
	const struct sbx_sc_rule *policy = sbx_seccomp_policy(&n);

	for (size_t i = 0; i < n; i++)
		if (policy[i].action == SBX_SC_ARGS &&
		    seccomp_syscall_resolve_name(policy[i].name) == nr)
			return 1;
	return 0;
}

static uint64_t rnd_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

/* Argument values worth trying: each rule's constants, their neighbours, high bits. */
static const uint64_t interesting[] = {
	0,
	1,
	2,
	3,
	4,
	5,
	6,
	7,
	8,
	9,
	10,
	15,
	16,
	17,
	31,
	32,
	38,
	39,
	40,
	63,
	64,
	0x80,
	0x800,
	0x80000,
	0x80001,
	0x80002,
	0x80003,
	0x80005,
	0x20000,
	0x20008,
	0x5412,
	0x541c,
	0x100,
	0x200,
	0x400,
	0x20000000,
	0x4000000,
	0x8000000,
	0x2000000,
	0x10000000,
	0x40000000,
	0x7fffffff,
	0x80000000,
	0xfffffffe,
	0xffffffff,
	0x100000000ull,
	0x100005412ull,
	0xffffffff00000000ull,
	0xffffffffffffffffull,
};

/*
 * The compacted program must answer exactly as libseccomp's: every syscall number up
 * to NR_SCAN and some far beyond, both architectures' and x32's, with argument
 * vectors made of the rules' constants (all pairs for the first three arguments of
 * the argument-checked calls) and random ones.
 */
static int verify(const struct sock_filter *ref, size_t n_ref, const struct sock_filter *c,
		  size_t n_c)
{
	static const uint32_t arches[] = {AUDIT_ARCH_X86_64, AUDIT_ARCH_I386, 0};
	static const uint32_t far[] = {NR_SCAN,	   0x3ffffffe, 0x3fffffff, 0x40000000, 0x40000001,
				       0x40000100, 0x7fffffff, 0xfffffffe, 0xffffffff};
	const size_t ni = sizeof(interesting) / sizeof(interesting[0]);
	unsigned long checked = 0;

	for (size_t ai = 0; ai < sizeof(arches) / sizeof(arches[0]); ai++) {
		for (uint32_t i = 0; i < NR_SCAN + sizeof(far) / sizeof(far[0]); i++) {
			uint32_t nr = i < NR_SCAN ? i : far[i - NR_SCAN];
			int args = is_args_nr((int)nr), tries = args ? (int)(ni * ni * 2) : 16;

			for (int t = 0; t < tries; t++) {
				struct seccomp_data d = {.nr = (int)nr, .arch = arches[ai]};
				int bad = 0;
				uint32_t want, got;

				if (args && t < (int)(ni * ni)) {
					d.args[0] = interesting[t % ni];
					d.args[1] = interesting[t / ni];
					d.args[2] = interesting[(t * 7) % ni];
				} else if (t > 0) {
					for (int k = 0; k < 6; k++)
						d.args[k] = t % 2 ? rnd() : interesting[rnd() % ni];
				}
				want = emulate(ref, n_ref, &d, &bad);
				got = emulate(c, n_c, &d, &bad);
				if (bad) {
					fprintf(stderr,
						"seccomp_gen: cannot emulate the programs\n");
					return -EINVAL;
				}
				if (want != got) {
					fprintf(stderr,
						"seccomp_gen: compacted filter differs for arch %#x nr %u args %#llx %#llx %#llx: %#x != %#x\n",
						d.arch, nr, (unsigned long long)d.args[0],
						(unsigned long long)d.args[1],
						(unsigned long long)d.args[2], got, want);
					return -EINVAL;
				}
				checked++;
			}
		}
	}
	fprintf(stderr, "seccomp_gen: %lu inputs checked against libseccomp's program\n", checked);
	return 0;
}

/*
 * libseccomp's program tests each syscall number on its own (one jeq per named
 * call, 583 instructions for our table), and the kernel converts, JIT-compiles and
 * pre-evaluates every instruction at each task start (~0.1-0.2 ms here).  Most
 * neighbouring numbers share an action, so the dispatch on the number is rebuilt
 * as a binary search over runs of equal actions, with the actions read from
 * libseccomp's own program; the calls whose action depends on their arguments
 * (clone, socket, ioctl, personality) jump to a second libseccomp program holding
 * only their rules, which also handles foreign architectures and x32.
 */
static int compact(const struct sock_filter *ref, size_t n_ref, const struct sock_filter *argp,
		   size_t n_argp, struct prog *p)
{
	static struct range r[NR_SCAN + 1];
	size_t nr_ranges = 0;
	int e;

	for (uint32_t nr = 0; nr <= NR_SCAN; nr++) {
		struct seccomp_data d = {.nr = (int)nr, .arch = AUDIT_ARCH_X86_64};
		int bad = 0, args = is_args_nr((int)nr);
		uint32_t act = args ? A_EXIT : emulate(ref, n_ref, &d, &bad);

		if (bad || (!args && act == A_EXIT))
			return -EINVAL; /* A_EXIT is no action the kernel knows, but be sure */
		if (!nr_ranges || r[nr_ranges - 1].action != act)
			r[nr_ranges++] = (struct range){nr, act};
	}
	/* above NR_SCAN: whatever libseccomp answers there (its default), checked below */
	p->n = p->n_a = 0;
	e = emit(p, BPF_LD | BPF_W | BPF_ABS, 0, 0, offsetof(struct seccomp_data, arch));
	if (e == 0)
		e = emit(p, BPF_JMP | BPF_JEQ | BPF_K, 1, 0, AUDIT_ARCH_X86_64);
	if (e == 0)
		e = emit_to_args(p);
	if (e == 0)
		e = emit(p, BPF_LD | BPF_W | BPF_ABS, 0, 0, offsetof(struct seccomp_data, nr));
	/* x32 numbers (bit 30) are the argument program's to refuse */
	if (e == 0)
		e = emit(p, BPF_JMP | BPF_JGE | BPF_K, 0, 1, 0x40000000);
	if (e == 0)
		e = emit_to_args(p);
	if (e == 0)
		e = tree(p, r, 0, nr_ranges - 1);
	if (e == 0 && p->n + n_argp > BPF_MAXINSNS)
		e = -E2BIG;
	if (e < 0)
		return e;
	for (size_t i = 0; i < p->n_a; i++)
		p->insn[p->a_jumps[i]].k = (uint32_t)(p->n - p->a_jumps[i] - 1);
	memcpy(p->insn + p->n, argp, n_argp * sizeof(*argp));
	p->n += n_argp;
	return verify(ref, n_ref, p->insn, p->n);
}

int main(void)
{
	const struct scmp_version *v = seccomp_version();
	struct utsname u;
	struct sock_filter *ref = NULL, *argp = NULL, *insns;
	static struct prog p;
	size_t n_ref = 0, n_argp = 0, n;
	int r = build(0, &ref, &n_ref);

	if (r == 0)
		r = build(1, &argp, &n_argp);
	if (r == 0)
		r = compact(ref, n_ref, argp, n_argp, &p);
	if (r == 0 && uname(&u) < 0)
		r = -errno;
	if (r < 0) {
		fprintf(stderr, "seccomp_gen: cannot compile the policy: %s\n", strerror(-r));
		return 1;
	}
	insns = p.insn;
	n = p.n;
	printf("/* Generated by sandbox/seccomp_gen.c from the table in sandbox/seccomp_policy.c\n"
	       " * with libseccomp %u.%u.%u for %s: do not edit.\n"
	       " * %zu instructions: a range search over syscall numbers, then libseccomp's\n"
	       " * program for the argument-checked calls (%zu); libseccomp's whole program has %zu. */\n",
	       v->major, v->minor, v->micro, u.machine, n, n_argp, n_ref);
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
	free(ref);
	free(argp);
	return fflush(stdout) == 0 ? 0 : 1;
}
