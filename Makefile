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

kernel: setup
	@scripts/build-kernel.sh

module: kernel
	@scripts/build-module.sh

tools:
	@scripts/build-tools.sh

check: module tools
	@scripts/check.sh

demo: module tools
	@scripts/demo.sh

bench: module tools
	@scripts/bench.sh

clippy: kernel
	@CLIPPY=1 scripts/build-module.sh
	@cargo clippy --all-targets -- -D warnings

clean:
	rm -rf target build
	rm -f src/*.o src/.*.cmd *.o .*.cmd *.ko *.mod *.mod.c modules.order Module.symvers

endif
