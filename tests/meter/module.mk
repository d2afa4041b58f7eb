# tests/meter/module.mk -- the meter's tests (real eBPF, real cgroups) and its workload helper.
$(eval $(call aicn_link,$(B)/tests/meter-work,tests/meter/meter-work.c,aicn))
all: $(B)/tests/meter-work
$(eval $(call aicn_test,test_meter_api,tests/meter/test_meter_api.c,aicn-agent aicn))
TEST_SCRIPTS += tests/meter/accuracy.sh tests/meter/forkstorm.sh tests/meter/daemon_nested.sh \
	tests/meter/restart.sh tests/meter/net.sh tests/meter/bad_input.sh
BENCHES += tests/bench/meter.sh
