# packaging/install.mk -- copy built programs, man pages, units and default configs into DESTDIR (no build graph).
#
# Used by `make install*` (packaging/module.mk), debian/rules and the rpm spec:
#   make -f packaging/install.mk SRC_BIN=DIR SRC_MAN=DIR DESTDIR=ROOT install-agent
# A component whose daemon is not built yet installs what exists; the package tests
# require the daemons once their sources are in the tree.
SRC_BIN ?= build/bin
SRC_MAN ?= build/man
DESTDIR ?=
PREFIX ?= /usr
SBINDIR ?= $(PREFIX)/sbin
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
DOCDIR ?= $(PREFIX)/share/doc
UNITDIR ?= /lib/systemd/system
SYSCONFDIR ?= /etc
INSTALL ?= install

AGENT_PROGS := aicn-agent aicn-supervise aicn-meter aicn-sandbox
COORD_PROGS := aicn-coordinator

# $(call inst_progs,DIR,NAMES,SECTION): each existing program and its man page
inst_progs = for p in $(2); do \
	[ -x $(SRC_BIN)/$$p ] || { echo "install: $(SRC_BIN)/$$p not built, skipped" >&2; continue; }; \
	$(INSTALL) -D -m 0755 $(SRC_BIN)/$$p $(DESTDIR)$(1)/$$p; \
	if [ -f $(SRC_MAN)/$$p.$(3) ]; then $(INSTALL) -D -m 0644 $(SRC_MAN)/$$p.$(3) $(DESTDIR)$(MANDIR)/man$(3)/$$p.$(3); fi; \
	done

.PHONY: install install-agent install-coordinator install-cli
install: install-agent install-coordinator install-cli

install-agent:
	$(call inst_progs,$(SBINDIR),$(AGENT_PROGS),8)
	$(INSTALL) -D -m 0644 packaging/etc/agent.conf $(DESTDIR)$(SYSCONFDIR)/aicn/agent.conf
	$(INSTALL) -D -m 0644 packaging/systemd/aicn-agent.service $(DESTDIR)$(UNITDIR)/aicn-agent.service

install-coordinator:
	$(call inst_progs,$(SBINDIR),$(COORD_PROGS),8)
	$(INSTALL) -D -m 0644 packaging/etc/coordinator.conf $(DESTDIR)$(SYSCONFDIR)/aicn/coordinator.conf
	$(INSTALL) -D -m 0644 packaging/systemd/aicn-coordinator.service $(DESTDIR)$(UNITDIR)/aicn-coordinator.service

install-cli:
	$(call inst_progs,$(BINDIR),aicnctl,1)
