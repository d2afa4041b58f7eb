# tests/module.mk -- the foundation's own tests (each module.mk adds its tests beside its code).
$(eval $(call aicn_test,test_log,tests/unit/test_log.c,aicn))
$(eval $(call aicn_test,test_compiler,tests/unit/test_compiler.c,aicn))
TEST_SCRIPTS += tests/runner_selftest.sh tests/sys/host_features.sh tests/fuzz/smoke.sh
