# bpf/module.mk -- the meter's eBPF object and skeleton (CO-RE, against bpf/vmlinux/<arch>/vmlinux.h).
# -mcpu=v3: the probes use atomic exchange and compare-and-swap (Linux 5.12+).
BPF_CFLAGS += -mcpu=v3
$(eval $(call aicn_bpf,meter))
$(B)/obj/agent/meter.o: $(B)/bpf/meter.skel.h
