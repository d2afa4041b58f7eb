# tests/cli/module.mk -- aicnctl: option parsing, result extraction safety, image archives, the renter's round trip.
$(eval $(call aicn_test,test_cli_opt,tests/cli/test_cli_opt.c cli/opt.c,aicn))
$(eval $(call aicn_test,test_cli_result,tests/cli/test_cli_result.c cli/tarball.c,aicn))
TEST_SCRIPTS += tests/cli/image.sh tests/cli/errors.sh
