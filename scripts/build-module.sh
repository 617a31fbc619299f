#!/usr/bin/env bash
# Build cxlfork.ko against the cached kernel build (CLIPPY=1 to lint it).
source "$(dirname "$0")/lib.sh"
KB=${KDIR:-$(kernel_build)}
step "module: cxlfork.ko${CLIPPY:+ (clippy)}"
make -s -C "$KB" M="$ROOT" RUST_LIB_SRC="$(rust_lib_src)" ${CLIPPY:+CLIPPY=1} modules \
	|| die "module build failed"
