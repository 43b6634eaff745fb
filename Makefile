# natsplice: top-level build. `make`, `make check`, `make demo`, `make install`.
# V=1 shows full commands; SAN=1 builds with ASan/UBSan.
TOP := $(CURDIR)
export TOP V SAN

SUBDIRS := lib bpf ctl broker agent

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
ctl: lib bpf
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
	@for d in $(SUBDIRS) test; do $(MAKE) --no-print-directory -C $$d clean; done

help:
	@echo "make            build everything (installs missing Debian packages as root)"
	@echo "make check      run all tests (unit, BPF, network namespaces); TESTS=unit|bpf|integration"
	@echo "make demo       the whole system in namespaces: broker, relay, two NATs, agents"
	@echo "make demo-relay the relay alone: two namespaces talking through a splice"
	@echo "make install    install into PREFIX (/usr/local) under DESTDIR"
	@echo "V=1 verbose, SAN=1 sanitizers"

# Benchmarks (test/bench/, DESIGN §6): the BPF fast path's cost per packet and
# throughput through a splice against plain forwarding, in one run; the output
# is also kept in bench/results/. bench-quick takes under 3 minutes.
.PHONY: bench bench-quick
bench bench-quick: deps-test all
	@$(MAKE) --no-print-directory -C test
	@$(MAKE) --no-print-directory -C test/bench
	@test/bench/run $(if $(filter bench-quick,$@),quick,full)

# make fuzz: libFuzzer on the control protocol codec and framing
# (test/fuzz/), seeded with valid messages, for FUZZ_SECONDS (default 60).
# Needs clang's libFuzzer runtime (Debian: libclang-rt-14-dev). Findings go
# to test/fuzz/artifacts/.
FUZZ_SECONDS ?= 60
.PHONY: fuzz
fuzz: deps
	@$(MAKE) --no-print-directory -C test/fuzz run FUZZ_SECONDS=$(FUZZ_SECONDS)
