# Shared build settings, included by every per-directory Makefile.
# TOP is the project root; each Makefile sets it before including this file.
.DELETE_ON_ERROR:

CC      ?= gcc
CLANG   ?= clang
BPFTOOL ?= bpftool
AR      ?= ar
PREFIX  ?= /usr/local

ARCH_INC := /usr/include/$(shell uname -m)-linux-gnu

CFLAGS  ?= -O2 -g
CFLAGS  += -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers \
	   -std=gnu11 -D_GNU_SOURCE -I$(TOP)/include -I$(TOP)/lib
LDLIBS  += $(shell pkg-config --libs libbpf libxdp 2>/dev/null || echo -lbpf -lxdp) \
	   -lelf -lz -lyaml -lssl -lcrypto

# make SAN=1: AddressSanitizer + UndefinedBehaviorSanitizer, used by the tests.
ifeq ($(SAN),1)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer
LDFLAGS += -fsanitize=address,undefined
endif

BPF_CFLAGS := -O2 -g -target bpf -Wall -Wno-unused-function \
	      -I$(TOP)/include -I$(TOP)/bpf -I$(ARCH_INC)

# Quiet kernel-style output; V=1 shows the commands.
ifeq ($(V),1)
Q =
msg =
else
Q = @
msg = @printf '  %-4s %s\n' "$(1)" "$(2)";
endif

LIBNS := $(TOP)/lib/libnatsplice.a

%.o: %.c
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<
