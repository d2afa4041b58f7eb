# tests/module.mk -- the foundation's own tests (each module.mk adds its tests beside its code).
$(eval $(call aicn_test,test_log,tests/unit/test_log.c,aicn))
$(eval $(call aicn_test,test_compiler,tests/unit/test_compiler.c,aicn))
TEST_SCRIPTS += tests/runner_selftest.sh tests/sys/host_features.sh tests/sys/versions.sh tests/fuzz/smoke.sh
$(eval $(call aicn_test,test_hash,tests/unit/test_hash.c,aicn))
$(eval $(call aicn_test,test_canon,tests/unit/test_canon.c,aicn))
$(eval $(call aicn_fuzz,fuzz_canon,tests/fuzz/fuzz_canon.c lib/canon.c))
$(eval $(call aicn_test,test_cgroup,tests/unit/test_cgroup.c,aicn))
$(eval $(call aicn_test,test_fileio,tests/unit/test_fileio.c,aicn))
$(eval $(call aicn_test,test_confval,tests/unit/test_confval.c,aicn))
