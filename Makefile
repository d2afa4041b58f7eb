# Makefile -- builds aicn out of tree into $(B)/; `make help` lists the targets.
#
# Each top-level folder has a module.mk that declares what it builds with the
# aicn_lib / aicn_bin / aicn_test / aicn_fuzz / aicn_bpf macros below.

.DELETE_ON_ERROR:
.SUFFIXES:
SHELL := /bin/bash
.DEFAULT_GOAL := all

SAN ?=
B ?= build$(if $(filter 1,$(SAN)),-san)
V ?= 0
ifeq ($(V),1)
Q :=
msg :=
else
Q := @
msg = @printf '  %-6s %s\n' '$(1)' '$(2)';
endif

ifeq ($(origin CC),default)
CC := gcc
endif
CLANG ?= clang
BPFTOOL ?= bpftool
AR ?= ar
# The release, from include/aicn/version.h (packages and --version agree).
VERSION := $(shell sed -n 's/^\#define AICN_VERSION "\(.*\)"/\1/p' include/aicn/version.h)
ARCH := $(shell uname -m)
BPF_ARCH := $(patsubst x86_64,x86,$(patsubst aarch64,arm64,$(ARCH)))

# External libraries, all through pkg-config; resolved once into $(B)/config.mk.
PKGS := libbpf liburing openssl libseccomp libcjson inih sqlite3 libarchive

WARN := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes -Wundef
CPPFLAGS := -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -Iinclude -I$(B)/bpf -Itests
CFLAGS := -std=gnu17 -O2 -g -pipe -fno-strict-aliasing -fstack-protector-strong $(WARN)
LDFLAGS := -Wl,--as-needed -Wl,-z,relro -Wl,-z,now
ifeq ($(SAN),1)
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
CFLAGS += $(SANFLAGS)
LDFLAGS += $(SANFLAGS)
else
CPPFLAGS += -D_FORTIFY_SOURCE=2
endif
CFLAGS += $(EXTRA_CFLAGS)

# libFuzzer targets are always built by clang, with ASan and UBSan.
FUZZ_CFLAGS := -std=gnu17 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	-D_GNU_SOURCE -DAICN_FUZZ -Iinclude -I$(B)/bpf -Itests

BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(BPF_ARCH) -Ibpf -Ibpf/vmlinux/$(ARCH) -Iinclude \
	-Wall -Werror -Wno-unused-function

objs = $(patsubst %.c,$(B)/obj/%.o,$(1))
libs = $(foreach l,$(1),$(B)/lib$(l).a)

ALL_OBJS :=
LIB_TARGETS :=
BINS :=
TEST_BINS :=
TEST_SCRIPTS :=
FUZZERS :=
BENCHES :=
BPF_SKELS :=

# $(call aicn_lib,NAME,SRCS): static library $(B)/libNAME.a
define aicn_lib
$(B)/lib$(1).a: $(call objs,$(2))
	$$(call msg,AR,$$@)mkdir -p $$(@D) && rm -f $$@ && $(AR) rcs $$@ $$^
ALL_OBJS += $(call objs,$(2))
LIB_TARGETS += $(B)/lib$(1).a
endef

# $(call aicn_link,OUT,SRCS,LIBS): one program from objects and internal libraries
define aicn_link
$(1): $(call objs,$(2)) $(call libs,$(3))
	$$(call msg,LINK,$$@)mkdir -p $$(@D) && $$(CC) $$(LDFLAGS) -o $$@ $(call objs,$(2)) \
		-Wl,--start-group $(call libs,$(3)) -Wl,--end-group $$(PKG_LIBS) -lpthread -lm
ALL_OBJS += $(call objs,$(2))
endef

# $(call aicn_bin,NAME,SRCS,LIBS): installed program $(B)/bin/NAME
define aicn_bin
$(call aicn_link,$(B)/bin/$(1),$(2),$(3))
BINS += $(B)/bin/$(1)
endef

# $(call aicn_test,NAME,SRCS,LIBS): test program $(B)/tests/NAME, run by `make check`
define aicn_test
$(call aicn_link,$(B)/tests/$(1),$(2),$(3))
TEST_BINS += $(B)/tests/$(1)
endef

# $(call aicn_fuzz,NAME,SRCS): libFuzzer target $(B)/fuzz/NAME; corpus in tests/fuzz/corpus/NAME/
define aicn_fuzz
$(B)/fuzz/$(1): $(2) | $(B)/config.mk
	$$(call msg,FUZZ,$$@)mkdir -p $$(@D) && $(CLANG) $(FUZZ_CFLAGS) $$(PKG_CFLAGS) -o $$@ $(2) $$(PKG_LIBS) -lpthread -lm
FUZZERS += $(B)/fuzz/$(1)
endef

# $(call aicn_bpf,NAME): bpf/NAME.bpf.c -> $(B)/bpf/NAME.bpf.o -> $(B)/bpf/NAME.skel.h
define aicn_bpf
$(B)/bpf/$(1).bpf.o: bpf/$(1).bpf.c $(wildcard bpf/*.h bpf/vmlinux/$(ARCH)/*.h include/aicn/bpf/*.h)
	$$(call msg,BPF,$$@)mkdir -p $$(@D) && $(CLANG) $(BPF_CFLAGS) -c $$< -o $$@
$(B)/bpf/$(1).skel.h: $(B)/bpf/$(1).bpf.o
	$$(call msg,SKEL,$$@)$(BPFTOOL) gen skeleton $$< name $(1)_bpf > $$@
BPF_SKELS += $(B)/bpf/$(1).skel.h
endef

NOCONFIG_GOALS := clean deps help format lint-format
ifneq ($(filter-out $(NOCONFIG_GOALS),$(or $(MAKECMDGOALS),all)),)
include $(B)/config.mk
endif

include $(sort $(wildcard */module.mk */*/module.mk))

$(B)/config.mk: packaging/deps.txt packaging/deps.sh
	@packaging/deps.sh
	@mkdir -p $(@D)
	@{ echo 'PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)'; \
	   echo 'PKG_LIBS := '"$$(pkg-config --libs $(PKGS))"; } > $@.tmp && \
	 pkg-config --exists $(PKGS) && mv $@.tmp $@

$(B)/obj/%.o: %.c $(B)/config.mk
	$(call msg,CC,$<)mkdir -p $(@D) && $(CC) $(CPPFLAGS) $(PKG_CFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

-include $(ALL_OBJS:.o=.d)

.PHONY: all deps check bench fuzz fuzzers demo lint format lint-format clean help vmlinux
all: deps $(BPF_SKELS) $(LIB_TARGETS) $(BINS) $(TEST_BINS)

deps:
	@packaging/deps.sh

fuzzers: $(FUZZERS)

RUN_ENV = AICN_BUILD=$(abspath $(B)) AICN_SRC=$(CURDIR) AICN_BIN=$(abspath $(B))/bin
check: all fuzzers
	@$(RUN_ENV) tests/run $(TEST_BINS) $(TEST_SCRIPTS)

bench: all
	@$(RUN_ENV) tests/bench/run $(BENCHES)

FUZZ_TIME ?= 60
fuzz: fuzzers
	@$(RUN_ENV) AICN_FUZZ_TIME=$(FUZZ_TIME) tests/fuzz/run $(FUZZERS)

demo: all
	@$(RUN_ENV) tests/demo.sh

# Lint: formatting, cppcheck and clang-tidy over our own C (not generated or vendored headers).
# cppcheck does not model __attribute__((cleanup)), so its leak checks are off; leaks are
# caught by clang-analyzer, LeakSanitizer (SAN=1) and valgrind instead.
C_SOURCES = $(shell find agent bpf cli coordinator include lib sandbox tests -name '*.[ch]' \
	-not -path 'bpf/vmlinux/*' 2>/dev/null | sort)
HOST_C = $(filter-out bpf/%,$(filter %.c,$(C_SOURCES)))
lint-format:
	$(call msg,FORMAT,check)clang-format --dry-run -Werror $(C_SOURCES)
format:
	clang-format -i $(C_SOURCES)
lint: lint-format all
	$(call msg,CPPCHK,sources)cppcheck --quiet --error-exitcode=1 --inline-suppr \
		--enable=warning,performance,portability --std=c11 \
		--suppress=missingIncludeSystem --suppress=unknownMacro \
		--suppress=memleak --suppress=resourceLeak --suppress=unusedStructMember \
		-D__GNUC__ -D_GNU_SOURCE -Iinclude -Itests $(HOST_C)
	$(call msg,TIDY,sources)printf '%s\n' $(HOST_C) | xargs -P$$(nproc) -n4 sh -c \
		'clang-tidy --quiet "$$@" -- $(filter-out -D_FORTIFY_SOURCE%,$(CPPFLAGS)) $(PKG_CFLAGS) -std=gnu17 2>/dev/null' _ \
		| { ! grep -E -A6 'warning:|error:' ; }

# Regenerate the committed CO-RE kernel types from this host's BTF (not part of the build).
vmlinux:
	mkdir -p bpf/vmlinux/$(ARCH)
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > bpf/vmlinux/$(ARCH)/vmlinux.h

clean:
	rm -rf build build-san $(if $(filter-out build build-san,$(B)),$(B))

help:
	@echo 'make            build everything into $$(B) (default build/, build-san/ with SAN=1)'
	@echo 'make check      build and run all tests (AICN_TEST_MUST_WORK=1: skips fail)'
	@echo 'make check SAN=1  the same with ASan+UBSan'
	@echo 'make demo       run the network on loopback and show what it did'
	@echo 'make bench      benchmarks, side by side with peers (see docs/benchmarks.md)'
	@echo 'make fuzz       run every libFuzzer target for FUZZ_TIME seconds (default 60)'
	@echo 'make lint       clang-format check, cppcheck, clang-tidy'
	@echo 'make format     apply clang-format'
	@echo 'make deps       install missing Debian packages (packaging/deps.txt)'
	@echo 'V=1 shows commands; B=DIR chooses the build directory.'
