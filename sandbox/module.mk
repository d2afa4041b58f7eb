# sandbox/module.mk -- libaicn-sandbox (OCI images, namespaces, limits, seccomp) and the aicn-sandbox CLI.
# The seccomp filter is compiled at build time: seccomp_gen (libseccomp) turns the policy
# table of seccomp_policy.c into $(B)/gen/sandbox/seccomp_filter.c, a BPF program the
# library loads as is.
SBX_SECCOMP_GEN := $(B)/gen/sandbox/seccomp_gen
SBX_SECCOMP_FILTER := $(B)/gen/sandbox/seccomp_filter.c
$(eval $(call aicn_link,$(SBX_SECCOMP_GEN),sandbox/seccomp_gen.c sandbox/seccomp_policy.c,))
$(SBX_SECCOMP_FILTER): $(SBX_SECCOMP_GEN)
	$(call msg,GEN,$@)$< > $@.tmp && mv $@.tmp $@

SANDBOX_LIB_SRCS := $(filter-out sandbox/main.c sandbox/seccomp_gen.c,$(wildcard sandbox/*.c)) \
	$(SBX_SECCOMP_FILTER)
$(eval $(call aicn_lib,aicn-sandbox,$(SANDBOX_LIB_SRCS)))
# aicn-sandbox reports the eBPF meter's exact CPU time when the meter (libaicn-agent) is there
$(eval $(call aicn_bin,aicn-sandbox,sandbox/main.c,aicn-sandbox aicn-agent aicn))
