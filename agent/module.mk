# agent/module.mk -- libaicn-agent (every agent/*.c but the mains), aicn-agent, aicn-meter, aicn-supervise.
AGENT_MAINS := agent/main.c agent/daemon.c agent/meter-tool.c agent/aicn-supervise.c
$(eval $(call aicn_lib,aicn-agent,$(filter-out $(AGENT_MAINS),$(wildcard agent/*.c))))
ifneq ($(wildcard agent/main.c),)
$(eval $(call aicn_bin,aicn-agent,agent/main.c agent/daemon.c,aicn-agent aicn-sandbox aicn))
endif
ifneq ($(wildcard agent/meter-tool.c),)
$(eval $(call aicn_bin,aicn-meter,agent/meter-tool.c,aicn-agent aicn))
endif
$(eval $(call aicn_bin,aicn-supervise,agent/aicn-supervise.c,aicn-agent aicn-sandbox aicn))
