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
# aicn-sandbox reports the eBPF meter's exact CPU time when the meter (libaicn-agent) is there.
# Its start is on the clock of every task, so it maps nothing but libc, libz and libcjson:
# libbpf and libelf (for the meter) are linked in statically, libcrypto and libarchive are
# loaded only to unpack an image (sha_dl.c, archive_dl.c).  zlib stays shared (lintian:
# embedded-library; it is small).  Debian ships the .a files in libbpf-dev and libelf-dev;
# where one is missing (Fedora keeps them in -static packages) the program links them as
# shared libraries and starts ~0.7 ms slower.
SBX_BIN := $(B)/bin/aicn-sandbox
SBX_BIN_LIBS := $(call libs,aicn-sandbox aicn-agent aicn)
SBX_STATIC_A := $(foreach l,bpf elf,$(shell $(CC) -print-file-name=lib$(l).a))
SBX_STATIC_LIBS := $(if $(filter-out /%,$(SBX_STATIC_A)),,-Wl,-Bstatic -lbpf -lelf -Wl,-Bdynamic -lz)
$(SBX_BIN): $(call objs,sandbox/main.c) $(SBX_BIN_LIBS)
	$(call msg,LINK,$@)mkdir -p $(@D) && $(CC) $(LDFLAGS) -o $@ $(call objs,sandbox/main.c) \
		-Wl,--start-group $(SBX_BIN_LIBS) -Wl,--end-group $(SBX_STATIC_LIBS) $(PKG_LIBS) \
		-ldl -lpthread -lm
ALL_OBJS += $(call objs,sandbox/main.c)
BINS += $(SBX_BIN)
