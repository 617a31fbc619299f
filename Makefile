# cxlfork top-level Makefile.
#
#   make demo    boot the CXL guest(s) and show cxlfork at work
#   make check   host tests + kselftests in the QEMU CXL guests
#   make bench   benchmarks (ratios against baselines in the same run)
#
# Kernel module alone, against a built kernel tree:
#   make module KDIR=<kernel build dir> [CLIPPY=1]

ifneq ($(KERNELRELEASE),)
include $(src)/Kbuild
else

SHELL := /bin/bash
ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))

.PHONY: all setup kernel module tools tests initramfs check demo bench clippy clean

all: module tools

setup:
	@scripts/bootstrap.sh

# KERNEL=distro (default) or debug: the guest kernel flavour to build for.
KERNEL ?= distro
export CXLFORK_KERNEL := $(KERNEL)

kernel: setup
	@scripts/build-kernel.sh $(KERNEL)

module: kernel
	@scripts/build-module.sh $(KERNEL)

tools:
	@scripts/build-tools.sh

# make check builds the tools and tests and both kernel flavours itself.
check: setup
	@scripts/check.sh

demo: module tools
	@scripts/demo.sh

# make bench builds its own kernel flavour (bench), module, tools and trees.
bench: setup
	@scripts/bench.sh

clippy: kernel
	@CLIPPY=1 scripts/build-module.sh $(KERNEL)
	@cargo clippy --all-targets -- -D warnings

clean:
	rm -rf target build
	rm -f src/*.o src/.*.cmd *.o .*.cmd *.ko *.mod *.mod.c modules.order Module.symvers

endif
