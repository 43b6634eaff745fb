# natsplice: top-level build. `make`, `make check`, `make demo`, `make install`.
# V=1 shows full commands; SAN=1 builds with ASan/UBSan.
TOP := $(CURDIR)
export TOP V SAN

SUBDIRS := lib bpf relay ctl broker agent

.PHONY: all deps deps-test $(SUBDIRS) check check-unit check-bpf check-integration \
	demo demo-relay install clean help

all: $(SUBDIRS)

deps:
	@mk/deps.sh build
deps-test:
	@mk/deps.sh test

lib: deps
	@$(MAKE) --no-print-directory -C lib
bpf: deps
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

install: all
	install -d $(DESTDIR)$(PREFIX)/sbin
	install -m 0755 ctl/natsplice $(DESTDIR)$(PREFIX)/sbin/natsplice
	install -m 0755 broker/natsplice-broker $(DESTDIR)$(PREFIX)/sbin/natsplice-broker
	install -m 0755 agent/natsplice-agent $(DESTDIR)$(PREFIX)/sbin/natsplice-agent

clean:
	@for d in $(SUBDIRS) test test/bench; do $(MAKE) --no-print-directory -C $$d clean; done

help:
	@echo "make            build everything (installs missing Debian packages as root)"
	@echo "make check      run all tests (unit, BPF, network namespaces); TESTS=unit|bpf|integration"
	@echo "make demo       the whole system in namespaces: broker, relay, two NATs, agents"
	@echo "make demo-relay the relay alone: two namespaces talking through a splice"
	@echo "make bench      benchmarks (make bench-quick: under 3 minutes); results in bench/results/"
	@echo "make bench-tunnels  only tunnel vs port forward vs ssh -R (PROFILE=full: 30 s runs)"
	@echo "make bench-apps     FTP and UDP through natsplice vs a port forward (bench/apps.sh)"
	@echo "make bench-crypt    encrypted tunnels (user space, kTLS) vs plain vs ssh -L (bench/crypt.sh)"
	@echo "make fuzz       fuzz the protocol decoder for FUZZ_SECONDS (60)"
	@echo "make install    install into PREFIX (/usr/local) under DESTDIR"
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

# make fuzz: libFuzzer on the control protocol codec and framing
# (test/fuzz/), seeded with valid messages, for FUZZ_SECONDS (default 60).
# Needs clang's libFuzzer runtime (Debian: libclang-rt-14-dev). Findings go
# to test/fuzz/artifacts/.
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
