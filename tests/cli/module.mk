# tests/cli/module.mk -- aicnctl: option parsing, result extraction safety, image archives, the renter's round trip.
$(eval $(call aicn_test,test_cli_opt,tests/cli/test_cli_opt.c cli/opt.c,aicn))
$(eval $(call aicn_test,test_cli_result,tests/cli/test_cli_result.c cli/tarball.c,aicn))
TEST_SCRIPTS += tests/cli/image.sh tests/cli/errors.sh tests/cli/roundtrip.sh
$(eval $(call aicn_fuzz,fuzz_cli_metrics,tests/cli/fuzz_cli_metrics.c cli/agentmx.c lib/canon.c))
$(eval $(call aicn_fuzz,fuzz_cli_result,tests/cli/fuzz_cli_result.c cli/tarball.c lib/canon.c lib/hash.c lib/hex.c))
