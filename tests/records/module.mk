# tests/records/module.mk -- node key, usage records, Merkle tree, checkpoints and the meter log.
$(eval $(call aicn_test,test_key,tests/records/test_key.c,aicn))
$(eval $(call aicn_test,test_merkle,tests/records/test_merkle.c,aicn))
$(eval $(call aicn_test,test_tamper,tests/records/test_tamper.c,aicn))
$(eval $(call aicn_test,test_meterlog,tests/records/test_meterlog.c,aicn))
TEST_SCRIPTS += tests/records/audit_cli.sh
RECORDS_FUZZ_SRCS := lib/record.c lib/canon.c lib/hash.c lib/hex.c lib/key.c lib/fileio.c lib/merkle.c lib/checkpoint.c \
	lib/meterlog.c lib/meterlog_verify.c lib/meterlog_proof.c
$(eval $(call aicn_fuzz,fuzz_record,tests/records/fuzz_record.c $(RECORDS_FUZZ_SRCS)))
$(eval $(call aicn_fuzz,fuzz_meterlog,tests/records/fuzz_meterlog.c $(RECORDS_FUZZ_SRCS)))
BENCHES += tests/bench/records.sh
