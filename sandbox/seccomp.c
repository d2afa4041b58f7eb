/* seccomp.c -- the task's seccomp filter: the BPF program generated at build time from the policy table. */
#include "internal.h"

#include <linux/filter.h>

/*
 * $(B)/gen/sandbox/seccomp_filter.c, printed by seccomp_gen (libseccomp) from the table
 * in seccomp_policy.c: the filter is compiled once per build, never at run time.
 */
extern const struct sock_fprog sbx_seccomp_fprog;

int sbx_seccomp_prepare(void)
{
	return sbx_seccomp_fprog.len > 0 && sbx_seccomp_fprog.filter ? 0 : -ENOEXEC;
}

const struct sock_fprog *sbx_seccomp_prog(void)
{
	return sbx_seccomp_prepare() == 0 ? &sbx_seccomp_fprog : NULL;
}
