# tests/agent/module.mk -- tests of the agent (config, supervisor, perf, metrics, cache, offers, result archive, end to end) and its fuzzers.
$(eval $(call aicn_test,test_agent_config,tests/agent/test_config.c,aicn-agent aicn))
$(eval $(call aicn_fuzz,fuzz_agent_config,tests/agent/fuzz_config.c agent/config.c lib/confval.c lib/window.c))
$(eval $(call aicn_test,test_agent_supervisor,tests/agent/test_supervisor.c,aicn-agent aicn))
$(eval $(call aicn_test,test_agent_perf,tests/agent/test_perf.c,aicn-agent aicn))
$(eval $(call aicn_test,test_agent_metrics,tests/agent/test_metrics.c,aicn-agent aicn))
$(eval $(call aicn_test,test_agent_cache,tests/agent/test_cache.c,aicn-agent aicn))
$(eval $(call aicn_fuzz,fuzz_agent_state,tests/agent/fuzz_state.c agent/supervisor.c lib/cgroup.c lib/fileio.c))
$(eval $(call aicn_fuzz,fuzz_agent_cache_index,tests/agent/fuzz_cache_index.c agent/cache.c lib/hash.c lib/hex.c lib/fileio.c))
$(eval $(call aicn_test,test_agent_offer,tests/agent/test_offer.c,aicn-agent aicn))
$(eval $(call aicn_test,test_agent_result,tests/agent/test_result.c,aicn-agent aicn))
$(eval $(call aicn_fuzz,fuzz_agent_offer,tests/agent/fuzz_offer.c agent/offer.c lib/canon.c lib/errmsg.c lib/hash.c lib/hex.c))
# end to end against the real binaries (smoke and reconcile need aicn-coordinator; hostile plays a hostile one)
TEST_SCRIPTS += tests/agent/hostile.sh tests/agent/smoke.sh tests/agent/reconcile.sh
BENCHES += tests/agent/latency.sh
