# tests/meter/module.mk -- the meter's tests (real eBPF, real cgroups) and its workload helper.
# The workload helper is built without sanitizers: LeakSanitizer's exit-time tracer is a
# process of its own and would change the exact fork/exit counts the tests assert.
$(eval $(call aicn_link,$(B)/tests/meter-work,tests/meter/meter-work.c,))
$(B)/obj/tests/meter/meter-work.o: CFLAGS := $(filter-out $(SANFLAGS),$(CFLAGS))
$(B)/tests/meter-work: LDFLAGS := $(filter-out $(SANFLAGS),$(LDFLAGS))
all: $(B)/tests/meter-work
$(eval $(call aicn_test,test_meter_api,tests/meter/test_meter_api.c,aicn-agent aicn))
TEST_SCRIPTS += tests/meter/accuracy.sh tests/meter/forkstorm.sh tests/meter/daemon_nested.sh \
	tests/meter/restart.sh tests/meter/net.sh tests/meter/bad_input.sh tests/meter/tools.sh
BENCHES += tests/bench/meter.sh tests/bench/meter_paired.sh
