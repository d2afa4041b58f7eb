# tests/records/module.mk -- node key, usage records, Merkle tree, checkpoints and the meter log.
$(eval $(call aicn_test,test_key,tests/records/test_key.c,aicn))
$(eval $(call aicn_test,test_merkle,tests/records/test_merkle.c,aicn))
