# tests/coord/module.mk -- coordinator core tests: windows, store, scheduler, task lifecycle, blobs.
$(eval $(call aicn_test,test_window,tests/coord/test_window.c,aicn))
$(eval $(call aicn_test,test_sched,tests/coord/test_sched.c,aicn-coord aicn))
$(eval $(call aicn_test,test_store,tests/coord/test_store.c,aicn-coord aicn))
$(eval $(call aicn_test,test_coord,tests/coord/test_coord.c,aicn-coord aicn))
$(eval $(call aicn_test,test_crash,tests/coord/test_crash.c,aicn-coord aicn))
# Benchmark: placements per second (make bench).
$(eval $(call aicn_link,$(B)/bench/sched_bench,tests/bench/sched_bench.c,aicn-coord aicn))
BENCHES += tests/bench/sched.sh
bench: $(B)/bench/sched_bench
# Fuzz targets: the window grammar and the SUBMIT/REGISTER validation.
$(eval $(call aicn_fuzz,fuzz_window,tests/coord/fuzz_window.c lib/window.c))
$(eval $(call aicn_fuzz,fuzz_submit,tests/coord/fuzz_submit.c coordinator/task.c coordinator/sched.c coordinator/store.c coordinator/blobs.c lib/canon.c lib/errmsg.c lib/hash.c lib/hex.c lib/window.c))
# The network front through the real daemon: a protocol-level agent driver and wire tests.
$(eval $(call aicn_link,$(B)/bin/aicn-coord-agent-driver,tests/coord/agent_driver.c,aicn))
BINS += $(B)/bin/aicn-coord-agent-driver
TEST_SCRIPTS += tests/coord/front_wire.sh
TEST_SCRIPTS += tests/coord/front_restart.sh
TEST_SCRIPTS += tests/coord/check_config.sh
TEST_SCRIPTS += tests/coord/no_quorum.sh
BENCHES += tests/bench/submit_start.sh
# Fuzz target: coordinator.conf (INI text and every key's checks).
$(eval $(call aicn_fuzz,fuzz_coord_conf,tests/coord/fuzz_coord_conf.c coordinator/conf.c lib/confval.c lib/log.c lib/fileio.c))
