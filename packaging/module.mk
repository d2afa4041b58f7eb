# packaging/module.mk -- make programs / man / install / deb / rpm: the three packages from the programs in $(B)/bin.
#
# The shipped programs (tests' helper daemons in $(B)/bin are not shipped).  The two
# daemons are listed once their mains exist, so packaging works at every stage of the tree.
PKG_AGENT_PROGS := $(if $(wildcard agent/main.c),aicn-agent) aicn-supervise aicn-meter aicn-sandbox
PKG_COORD_PROGS := $(if $(wildcard coordinator/main.c),aicn-coordinator)
PKG_CLI_PROGS := aicnctl
PKG_PROGS := $(PKG_AGENT_PROGS) $(PKG_COORD_PROGS) $(PKG_CLI_PROGS)

# Man pages come from each program's own --help and --version text (help2man), plus the
# FILES / SEE ALSO sections in packaging/man/NAME.h2m.  Section 1 for aicnctl, 8 for the rest.
pkg_man_section = $(if $(filter aicnctl,$(1)),1,8)
PKG_MANS := $(foreach p,$(PKG_PROGS),$(B)/man/$(p).$(call pkg_man_section,$(p)))
# programs without a --version flag get the release number from include/aicn/version.h
PKG_NO_VERSION_FLAG :=

# A --help laid out like a man page (NAME, SYNOPSIS, OPTIONS ... headings) goes through
# manstyle-help.awk first, and its NAME line becomes the page's name.
define pkg_man_rule
$(B)/man/$(1).$(call pkg_man_section,$(1)): $(B)/bin/$(1) packaging/man/$(1).h2m packaging/man/manstyle-help.awk include/aicn/version.h
	$$(call msg,MAN,$$@)mkdir -p $$(@D)/help && \
	printf '#!/bin/sh\n"%s" "$$$$@" 2>&1 | awk -f "%s"\n' $$(abspath $$<) $$(abspath packaging/man/manstyle-help.awk) \
		>$$(@D)/help/$(1) && chmod +x $$(@D)/help/$(1) && \
	name=$$$$($$< --help 2>&1 | awk 'f { sub(/^ *[^ ]+ +- +/, ""); print; exit } /^NAME$$$$/ { f = 1 }') && \
	help2man --no-info --no-discard-stderr --section=$(call pkg_man_section,$(1)) \
		--include=packaging/man/$(1).h2m $$$${name:+--name="$$$$name"} \
		$(if $(filter $(1),$(PKG_NO_VERSION_FLAG)),--version-string='$(1) $(VERSION)') \
		--output=$$@.tmp $$(@D)/help/$(1) && mv $$@.tmp $$@
endef
$(foreach p,$(PKG_PROGS),$(eval $(call pkg_man_rule,$(p))))

.PHONY: programs man install install-agent install-coordinator install-cli deb rpm
programs: $(addprefix $(B)/bin/,$(PKG_PROGS))
man: $(PKG_MANS)

# install: DESTDIR and PREFIX as usual; units in UNITDIR (Debian 12: /lib/systemd/system).
PREFIX ?= /usr
UNITDIR ?= /lib/systemd/system
PKG_INSTALL = $(MAKE) --no-print-directory -f packaging/install.mk SRC_BIN=$(abspath $(B))/bin \
	SRC_MAN=$(abspath $(B))/man DESTDIR=$(DESTDIR) PREFIX=$(PREFIX) UNITDIR=$(UNITDIR)
install: install-agent install-coordinator install-cli
install-agent install-coordinator install-cli: install-%: programs man
	$(PKG_INSTALL) $@

# make deb / make rpm build from a copy of the source tree (tracked and untracked files,
# no build directories), so they work from a dirty worktree and never write into it.
# The copy builds with the release flags: this make's variables (SAN=1, B=...) stay here.
# PKG_PREBUILT=1 packages the programs already built in $(B) instead of building them
# again in the copy (the fast path tests/pkg/packages.sh uses).
PKG_DIR := $(B)/pkg
PKG_SRC := $(PKG_DIR)/src/aicn-$(VERSION)
PKG_PREBUILT ?=
pkg_files = { if [ -e .git ]; then git ls-files -co --exclude-standard; else \
	find . -path ./.git -prune -o -path './build*' -prune -o -type f -print | sed 's,^\./,,'; fi; } \
	| grep -v -e '^build' -e '^packaging/debian/\.debhelper/' | sort -u
# The packages' version must be the one in include/aicn/version.h.
pkg_check_versions = v=$$(sed -n '1s/^aicn (\([^)]*\)).*/\1/p' packaging/debian/changelog); \
	[ "$$v" = "$(VERSION)" ] || { echo "packaging/debian/changelog is at $$v but include/aicn/version.h says $(VERSION): add a changelog entry" >&2; exit 1; }; \
	v=$$(sed -n 's/^Version:[[:space:]]*//p' packaging/rpm/aicn.spec); \
	[ "$$v" = "$(VERSION)" ] || { echo "packaging/rpm/aicn.spec is at $$v but include/aicn/version.h says $(VERSION)" >&2; exit 1; }

deb: $(if $(PKG_PREBUILT),programs man)
	$(call msg,DEB,$(PKG_DIR))$(pkg_check_versions)
	$(Q)rm -rf $(PKG_DIR)/src && mkdir -p $(PKG_SRC) && \
	 $(pkg_files) | tar -c -T - -f - | tar -x -C $(PKG_SRC) -f - && \
	 rm -rf $(PKG_SRC)/debian && cp -a packaging/debian $(PKG_SRC)/debian && \
	 rm -f $(PKG_DIR)/*.deb $(PKG_DIR)/*.ddeb $(PKG_DIR)/*.changes $(PKG_DIR)/*.buildinfo
	$(Q)cd $(PKG_SRC) && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
	 $(if $(PKG_PREBUILT),AICN_PREBUILT=$(abspath $(B))) dpkg-buildpackage -us -uc -b $(if $(filter 1,$(V)),,>$(abspath $(PKG_DIR))/build.log 2>&1) || \
	 { echo "dpkg-buildpackage failed; log: $(PKG_DIR)/build.log" >&2; tail -n 30 $(abspath $(PKG_DIR))/build.log >&2; exit 1; }
	$(Q)mv $(PKG_DIR)/src/*.deb $(PKG_DIR)/src/*.changes $(PKG_DIR)/src/*.buildinfo $(PKG_DIR)/ && \
	 { mv $(PKG_DIR)/src/*.ddeb $(PKG_DIR)/ 2>/dev/null || true; } && rm -rf $(PKG_DIR)/src && \
	 ls -1 $(PKG_DIR)/*.deb

RPM_TOP := $(abspath $(B))/rpm
rpm: $(if $(PKG_PREBUILT),programs man)
	$(call msg,RPM,$(RPM_TOP))$(pkg_check_versions)
	$(Q)rm -rf $(RPM_TOP) && mkdir -p $(RPM_TOP)/SOURCES $(RPM_TOP)/SPECS && \
	 $(pkg_files) | tar -c --transform 's,^,aicn-$(VERSION)/,' -T - -zf $(RPM_TOP)/SOURCES/aicn-$(VERSION).tar.gz && \
	 cp packaging/rpm/aicn.spec $(RPM_TOP)/SPECS/
	$(Q)env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL rpmbuild -bb --nodeps --define '_topdir $(RPM_TOP)' \
	 $(if $(PKG_PREBUILT),--define 'aicn_prebuilt $(abspath $(B))') \
	 $(RPM_TOP)/SPECS/aicn.spec $(if $(filter 1,$(V)),,>$(RPM_TOP)/build.log 2>&1) || \
	 { echo "rpmbuild failed; log: $(RPM_TOP)/build.log" >&2; tail -n 30 $(RPM_TOP)/build.log >&2; exit 1; }
	$(Q)ls -1 $(RPM_TOP)/RPMS/*/*.rpm

TEST_SCRIPTS += tests/pkg/packages.sh tests/pkg/auditor_openssl.sh
