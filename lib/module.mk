# lib/module.mk -- libaicn: everything two or more sides share (every lib/*.c).
$(eval $(call aicn_lib,aicn,$(wildcard lib/*.c)))
