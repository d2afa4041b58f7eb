# tests/econ/module.mk -- settlement core tests: economics, proof of work, ledger, governance.
$(eval $(call aicn_test,test_econ,tests/econ/test_econ.c,aicn-coord aicn))
$(eval $(call aicn_test,test_pow,tests/econ/test_pow.c,aicn))
$(eval $(call aicn_test,test_ledger,tests/econ/test_ledger.c,aicn-coord aicn))
$(eval $(call aicn_test,test_ledger_crash,tests/econ/test_ledger_crash.c,aicn-coord aicn))
$(eval $(call aicn_test,test_ledger_prop,tests/econ/test_ledger_prop.c,aicn-coord aicn))
$(eval $(call aicn_test,test_ledger_cli,tests/econ/test_ledger_cli.c,aicn-coord aicn))
$(eval $(call aicn_test,test_ledger_bench,tests/econ/test_ledger_bench.c,aicn-coord aicn))
BENCHES += tests/bench/ledger.sh
$(eval $(call aicn_fuzz,fuzz_ledger,tests/econ/fuzz_ledger.c coordinator/ledger.c coordinator/settle.c coordinator/econ.c lib/canon.c lib/hash.c lib/hex.c lib/merkle.c lib/record.c lib/key.c lib/fileio.c lib/checkpoint.c))
$(eval $(call aicn_test,test_pay,tests/econ/test_pay.c,aicn-coord aicn))
# kill -9 during settlement: a driver settling tasks through a real coordinator, killed by a script.
$(eval $(call aicn_link,$(B)/bin/aicn-pay-driver,tests/econ/pay_driver.c,aicn-coord aicn))
BINS += $(B)/bin/aicn-pay-driver
TEST_SCRIPTS += tests/econ/pay_kill9.sh
TEST_SCRIPTS += tests/econ/admin_audit.sh
$(eval $(call aicn_fuzz,fuzz_econ_params,tests/econ/fuzz_econ_params.c coordinator/econ_file.c coordinator/econ.c lib/canon.c lib/errmsg.c))
BENCHES += tests/bench/pay.sh
