# coordinator/module.mk -- libaicn-coord (every coordinator/*.c but the main) and aicn-coordinator.
COORD_MAIN := coordinator/main.c
$(eval $(call aicn_lib,aicn-coord,$(filter-out $(COORD_MAIN),$(wildcard coordinator/*.c))))
ifneq ($(wildcard $(COORD_MAIN)),)
$(eval $(call aicn_bin,aicn-coordinator,$(COORD_MAIN),aicn-coord aicn))
endif
