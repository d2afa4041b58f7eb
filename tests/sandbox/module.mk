# tests/sandbox/module.mk -- sandbox tests: seccomp table, images (good and bad), hostile tasks, limits.
# sbx-probe is linked statically: it runs inside busybox images that have no libc.
$(B)/tests/sandbox/sbx-probe: tests/sandbox/probe.c
	$(call msg,LINK,$@)mkdir -p $(@D) && $(CC) -static -O2 -D_GNU_SOURCE $(WARN) -o $@ $<
$(eval $(call aicn_test,test_sbx_seccomp,tests/sandbox/test_sbx_seccomp.c,aicn-sandbox aicn))
$(eval $(call aicn_test,test_sbx_oci,tests/sandbox/test_sbx_oci.c,aicn-sandbox aicn))
$(eval $(call aicn_test,test_sbx_ns,tests/sandbox/test_sbx_ns.c,aicn-sandbox aicn))
$(B)/tests/test_sbx_seccomp: $(B)/tests/sandbox/sbx-probe
TEST_SCRIPTS += tests/sandbox/images.sh tests/sandbox/hostile.sh tests/sandbox/limits.sh
$(eval $(call aicn_fuzz,fuzz_oci_index,tests/sandbox/fuzz_oci_index.c sandbox/oci.c lib/hash.c lib/hex.c,))
$(eval $(call aicn_fuzz,fuzz_oci_manifest,tests/sandbox/fuzz_oci_manifest.c sandbox/oci.c lib/hash.c lib/hex.c,))
$(eval $(call aicn_fuzz,fuzz_oci_config,tests/sandbox/fuzz_oci_config.c sandbox/oci.c lib/hash.c lib/hex.c,))
BENCHES += tests/bench/sandbox_start.sh tests/bench/sandbox_unpack.sh
