# tests/agent/module.mk -- tests of the agent's own parts (config, supervisor, perf, metrics, cache) and the config fuzzer.
$(eval $(call aicn_test,test_agent_config,tests/agent/test_config.c,aicn-agent aicn))
$(eval $(call aicn_fuzz,fuzz_agent_config,tests/agent/fuzz_config.c agent/config.c lib/window.c))
$(eval $(call aicn_test,test_agent_supervisor,tests/agent/test_supervisor.c,aicn-agent aicn))
$(eval $(call aicn_test,test_agent_perf,tests/agent/test_perf.c,aicn-agent aicn))
$(eval $(call aicn_test,test_agent_metrics,tests/agent/test_metrics.c,aicn-agent aicn))
$(eval $(call aicn_test,test_agent_cache,tests/agent/test_cache.c,aicn-agent aicn))
$(eval $(call aicn_fuzz,fuzz_agent_state,tests/agent/fuzz_state.c agent/supervisor.c lib/cgroup.c lib/fileio.c))
$(eval $(call aicn_fuzz,fuzz_agent_cache_index,tests/agent/fuzz_cache_index.c agent/cache.c lib/hash.c))
