# cli/module.mk -- aicnctl: cli/aicnctl.c dispatches to the cli/cmd_*.c families.
$(eval $(call aicn_bin,aicnctl,$(wildcard cli/*.c),aicn-coord aicn))
