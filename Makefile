# natsplice: top-level build. `make`, `make check`, `make demo`, `make install`.
# V=1 shows full commands; SAN=1 builds with ASan/UBSan.
TOP := $(CURDIR)
export TOP V SAN

# make install: PREFIX (/usr/local), DESTDIR; the configuration is always
# under /etc/natsplice (SYSCONFDIR), the state under /var/lib/natsplice.
PREFIX      ?= /usr/local
SBINDIR     ?= $(PREFIX)/sbin
MANDIR      ?= $(PREFIX)/share/man
DOCDIR      ?= $(PREFIX)/share/doc/natsplice
SYSCONFDIR  ?= /etc
UNITDIR     ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d

SUBDIRS := lib bpf relay ctl broker agent

.PHONY: all deps deps-check deps-test $(SUBDIRS) check check-unit check-bpf \
	check-integration demo demo-relay man units install deb deps-package clean help

all: $(SUBDIRS) man units

# `make` only checks the Debian packages (and says what is missing);
# `make deps` installs them, and so do the targets that run something
# (check, demo, bench, vmtest: deps-test), before the build checks.
deps: deps-test
deps-test:
	@mk/deps.sh test
deps-check: $(if $(filter-out all deps-check $(SUBDIRS) man units install deb clean help,\
		$(MAKECMDGOALS)),deps-test)
	@[ "$(DEPS_CHECK)" = 0 ] || mk/deps.sh --check build

lib: deps-check
	@$(MAKE) --no-print-directory -C lib
bpf: deps-check
	@$(MAKE) --no-print-directory -C bpf
relay: lib bpf
	@$(MAKE) --no-print-directory -C relay
ctl: lib bpf relay
	@$(MAKE) --no-print-directory -C ctl
broker: lib
	@if ls broker/*.c >/dev/null 2>&1; then $(MAKE) --no-print-directory -C broker; fi
agent: lib
	@if ls agent/*.c >/dev/null 2>&1; then $(MAKE) --no-print-directory -C agent; fi

# Tests: unit (cmocka), BPF (BPF_PROG_TEST_RUN), integration (network
# namespaces). test/run prints the closing line "N passed, N failed".
check: deps-test all
	@$(MAKE) --no-print-directory -C test
	@test/run $(TESTS)

check-unit check-bpf check-integration: deps-test all
	@$(MAKE) --no-print-directory -C test
	@test/run $(subst check-,,$@)

demo: deps-test all
	@$(MAKE) --no-print-directory -C test
	@test/integration/demo.sh

demo-relay: deps-test all
	@$(MAKE) --no-print-directory -C test
	@test/integration/demo_relay.sh

# Man pages (man/*.in + each daemon's settings table, mk/man.sh) and the
# systemd units (systemd/*.in with SBINDIR), under build/.
MAN8 := natsplice natsplice-broker natsplice-agent
MAN5 := natsplice-broker.yaml natsplice-agent.yaml natsplice-relay.yaml
MANPAGES := $(MAN8:%=build/man/%.8) $(MAN5:%=build/man/%.5)
UNITS := natsplice-broker.service natsplice-agent.service natsplice-relay@.service
man: $(MANPAGES)
build/man/natsplice.8 build/man/natsplice-relay.yaml.5: ctl
	@mkdir -p build/man
	@printf '  %-4s %s\n' GEN $@
	@mk/man.sh man/$(@F).in ctl/natsplice relay run > $@
build/man/natsplice-broker.8 build/man/natsplice-broker.yaml.5: broker
	@mkdir -p build/man
	@printf '  %-4s %s\n' GEN $@
	@mk/man.sh man/$(@F).in broker/natsplice-broker > $@
build/man/natsplice-agent.8 build/man/natsplice-agent.yaml.5: agent
	@mkdir -p build/man
	@printf '  %-4s %s\n' GEN $@
	@mk/man.sh man/$(@F).in agent/natsplice-agent > $@

units: $(UNITS:%=build/systemd/%)
build/systemd/%: systemd/%.in
	@mkdir -p build/systemd
	@sed 's|@SBINDIR@|$(SBINDIR)|g' $< > $@

# Binaries, man pages, units, the sysusers.d entry of the natsplice user,
# the examples in DOCDIR and, where none is there yet, as the configuration
# in SYSCONFDIR/natsplice (mode 0640; group natsplice when it exists: the
# broker and the agent run as that user). Installed into / as root, the user
# is created (systemd-sysusers) and systemd reloaded.
install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(DOCDIR)/examples \
		$(DESTDIR)$(SYSCONFDIR)/natsplice
	install -m 0755 ctl/natsplice broker/natsplice-broker agent/natsplice-agent \
		$(DESTDIR)$(SBINDIR)/
	install -m 0644 $(MAN8:%=build/man/%.8) $(DESTDIR)$(MANDIR)/man8/
	install -m 0644 $(MAN5:%=build/man/%.5) $(DESTDIR)$(MANDIR)/man5/
	install -m 0644 $(UNITS:%=build/systemd/%) $(DESTDIR)$(UNITDIR)/
	install -m 0644 systemd/natsplice.sysusers $(DESTDIR)$(SYSUSERSDIR)/natsplice.conf
	install -m 0644 examples/*.yaml $(DESTDIR)$(DOCDIR)/examples/
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ] && command -v systemd-sysusers >/dev/null; \
	then systemd-sysusers $(SYSUSERSDIR)/natsplice.conf; fi
	@for f in examples/*.yaml; do \
		t=$(DESTDIR)$(SYSCONFDIR)/natsplice/$${f#examples/}; \
		if [ -e "$$t" ]; then echo "  KEEP $$t (exists)"; continue; fi; \
		install -m 0640 "$$f" "$$t" && echo "  INSTALL $$t"; \
		if [ -z "$(DESTDIR)" ] && getent group natsplice >/dev/null; then \
			chgrp natsplice "$$t"; fi; \
	done
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi

# A Debian package (debian/, dpkg-buildpackage), checked by lintian: build/deb/.
deb: deps-package
	@mk/deb.sh

deps-package:
	@mk/deps.sh package

clean:
	@for d in $(SUBDIRS) test test/bench; do $(MAKE) --no-print-directory -C $$d clean; done
	rm -rf build/man build/systemd build/deb

help:
	@echo "make            build everything (checks the Debian packages it needs, says what is missing)"
	@echo "make deps       install the Debian packages that building and testing need (root)"
	@echo "make check      run all tests (unit, BPF, network namespaces); TESTS=unit|bpf|fuzz|integration"
	@echo "make demo       the whole system in namespaces: broker, relay, two NATs, agents"
	@echo "make demo-relay the relay alone: two namespaces talking through a splice"
	@echo "make bench      benchmarks (make bench-quick: under 3 minutes); results in bench/results/"
	@echo "make bench-tunnels  only tunnel vs port forward vs ssh -R (PROFILE=full: 30 s runs)"
	@echo "make bench-apps     FTP and UDP through natsplice vs a port forward (bench/apps.sh)"
	@echo "make bench-crypt    encrypted tunnels (user space, kTLS) vs plain vs ssh -L (bench/crypt.sh)"
	@echo "make fuzz       run every fuzz target (test/fuzz/) for FUZZ_SECONDS (60) each"
	@echo "make install    binaries, man pages, systemd units into PREFIX (/usr/local) under DESTDIR;"
	@echo "                example configs to /etc/natsplice (existing ones kept)"
	@echo "make deb        a Debian package in build/deb/ (debhelper), checked by lintian"
	@echo "V=1 verbose, SAN=1 sanitizers"

# Benchmarks (bench/, DESIGN §6; how to read them: bench/README.md): every
# path between the same two hosts in one run (direct, forwarding, nftables
# NAT, haproxy, socat, natsplice userspace/XDP/TC, passive and pure, the full
# product path), throughput, latency, UDP loss, CPU per GB, the fast path and
# the control plane; a table, a CSV and PNG plots under bench/results/.
# bench-quick takes under 3 minutes. bench-relay: only the relay's fast path
# and one-stream throughput (test/bench/run). bench-tunnels: only the
# tunnels section (a client behind one NAT, a server behind another: tunnel
# vs port forward vs haproxy vs ssh -R; PROFILE=full for the long runs).
.PHONY: bench bench-quick bench-relay bench-tunnels bench-apps bench-crypt
bench bench-quick: deps-test all
	@$(MAKE) --no-print-directory -C test
	@$(MAKE) --no-print-directory -C test/bench
	@bench/run $(if $(filter bench-quick,$@),quick,full)

bench-relay: deps-test all
	@$(MAKE) --no-print-directory -C test
	@$(MAKE) --no-print-directory -C test/bench
	@test/bench/run quick

bench-tunnels: deps-test all
	@$(MAKE) --no-print-directory -C test
	@PATHS=tunnels NO_CONTROL=1 bench/run $(or $(PROFILE),quick)

# bench-apps: real applications of multi-connection services and ALGs (FTP,
# UDP) through natsplice against a port forward through the same NATs.
bench-apps: deps-test all
	@$(MAKE) --no-print-directory -C test
	@bench/apps.sh

# bench-crypt: what sealing a tunnel costs: throughput and CPU s/GB of a
# download through a port forward, a plain tunnel, a sealed one in user
# space and with kTLS (where the kernel has it: make vmtest-bench), ssh -L.
bench-crypt: deps-test all
	@$(MAKE) --no-print-directory -C test
	@bench/crypt.sh

# make fuzz: every libFuzzer target in test/fuzz/ (the control protocol, the
# three daemons' YAML loaders, the FTP/SIP ALGs, the packet parser, the
# broker's session machine, the BPF programs through BPF_PROG_TEST_RUN) for
# FUZZ_SECONDS (default 60) each, from the seeds in test/fuzz/corpus/<target>/.
# Needs clang's libFuzzer runtime (Debian: libclang-rt-14-dev). Findings go
# to test/fuzz/artifacts/<target>/; `make check` runs each for 8 s.
FUZZ_SECONDS ?= 60
.PHONY: fuzz
fuzz: deps
	@$(MAKE) --no-print-directory -C test/fuzz run FUZZ_SECONDS=$(FUZZ_SECONDS)

# VM tests (vmtest/, matrix in vmtest/kernels): the BPF and namespace tests
# inside qemu on Debian's kernels, with and without the kernel module shim.
# Downloads and caches under build/vm/; `make check` needs none of it.
vmtest: deps-test all
	@$(MAKE) --no-print-directory -C test
	@vmtest/run.sh -s full

# The CI subset: boot, load the programs, one splice (a few minutes).
vmtest-smoke: deps-test all
	@$(MAKE) --no-print-directory -C test
	@vmtest/run.sh -s smoke

# Splices/s and SYN-to-established latency in the VM, without and with the
# shim; bench/crypt.sh on 6.1 (kTLS), its CSV in build/vm/runs/*/crypt.csv.
vmtest-bench: deps-test all
	@vmtest/run.sh -s bench

# The kernel module shim (bpf/kmod/) for the vmtest kernel: build/vm/ABI/kmod/.
kmod:
	@vmtest/kernel.sh kmod

.PHONY: vmtest vmtest-smoke vmtest-bench kmod
