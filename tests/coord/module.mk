# tests/coord/module.mk -- coordinator core tests: windows, store, scheduler, task lifecycle, blobs.
$(eval $(call aicn_test,test_window,tests/coord/test_window.c,aicn))
$(eval $(call aicn_test,test_sched,tests/coord/test_sched.c,aicn-coord aicn))
$(eval $(call aicn_test,test_store,tests/coord/test_store.c,aicn-coord aicn))
$(eval $(call aicn_test,test_coord,tests/coord/test_coord.c,aicn-coord aicn))
$(eval $(call aicn_test,test_crash,tests/coord/test_crash.c,aicn-coord aicn))
