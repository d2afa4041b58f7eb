# tests/e2e/module.mk -- end-to-end scripts: a whole network on loopback (real binaries, certificates,
# eBPF meter and sandboxes), one scenario per script; lib.sh builds and tears down the network, and
# demo-network.sh is the network part of `make demo` (tests/demo.sh), not a test.
TEST_SCRIPTS += $(filter-out tests/e2e/lib.sh tests/e2e/demo-network.sh,$(sort $(wildcard tests/e2e/*.sh)))
