# tests/transport/module.mk -- transport tests, the test server, aicn-loadgen and the fuzz targets.
$(eval $(call aicn_link,$(B)/bin/aicn-transport-testd,tests/transport/testd.c,aicn))
BINS += $(B)/bin/aicn-transport-testd
$(eval $(call aicn_link,$(B)/bin/aicn-tlsmem,tests/transport/tlsmem.c,aicn))
BINS += $(B)/bin/aicn-tlsmem
$(eval $(call aicn_bin,aicn-loadgen,tests/bench/loadgen.c,aicn))
$(eval $(call aicn_test,test_frame,tests/transport/test_frame.c,aicn))
$(eval $(call aicn_test,test_proto,tests/transport/test_proto.c,aicn))
$(eval $(call aicn_test,test_market_proto,tests/transport/test_market_proto.c,aicn))
$(eval $(call aicn_test,test_loop,tests/transport/test_loop.c,aicn))
TEST_SCRIPTS += tests/transport/tls_refusals.sh
$(eval $(call aicn_link,$(B)/bin/aicn-outbox-agent,tests/transport/outbox_agent.c,aicn-agent aicn))
BINS += $(B)/bin/aicn-outbox-agent
$(eval $(call aicn_test,test_outbox,tests/transport/test_outbox.c,aicn-agent aicn))
TEST_SCRIPTS += tests/transport/outbox_kill9.sh
TEST_SCRIPTS += tests/transport/hostile_frames.sh
TEST_SCRIPTS += tests/transport/conns_2000.sh
TEST_SCRIPTS += tests/transport/testssl.sh
TRANSPORT_FUZZ_SRCS := lib/frame.c lib/proto.c lib/canon.c lib/hash.c lib/hex.c
$(eval $(call aicn_fuzz,fuzz_frame,tests/transport/fuzz_frame.c $(TRANSPORT_FUZZ_SRCS)))
$(eval $(call aicn_fuzz,fuzz_proto,tests/transport/fuzz_proto.c $(TRANSPORT_FUZZ_SRCS)))
BENCHES += tests/bench/transport.sh
TEST_SCRIPTS += tests/transport/openssl_ca.sh
$(eval $(call aicn_link,$(B)/bin/aicn-tls-records,tests/transport/tls_records.c,aicn))
BINS += $(B)/bin/aicn-tls-records
TEST_SCRIPTS += tests/transport/tls_records.sh
$(eval $(call aicn_fuzz,fuzz_tls_records,tests/transport/fuzz_tls_records.c lib/tls.c lib/key.c lib/hash.c lib/hex.c lib/fileio.c))
