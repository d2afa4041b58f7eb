# sandbox/module.mk -- libaicn-sandbox (OCI images, namespaces, limits, seccomp) and the aicn-sandbox CLI.
SANDBOX_LIB_SRCS := $(filter-out sandbox/main.c,$(wildcard sandbox/*.c))
$(eval $(call aicn_lib,aicn-sandbox,$(SANDBOX_LIB_SRCS)))
# aicn-sandbox reports the eBPF meter's exact CPU time when the meter (libaicn-agent) is there
$(eval $(call aicn_bin,aicn-sandbox,sandbox/main.c,aicn-sandbox aicn-agent aicn))
