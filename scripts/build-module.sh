#!/usr/bin/env bash
# Build cxlfork.ko against a cached kernel build (CLIPPY=1 to lint it).
#   scripts/build-module.sh [distro|debug|bench]    -> build/<flavour>/module/cxlfork.ko
# KDIR=<kernel build dir> builds against another kernel tree (output in the
# checkout, as a plain out-of-tree build).
source "$(dirname "$0")/lib.sh"
FL=${1:-$FLAVOUR}
if [ -n "${KDIR:-}" ]; then
	KB=$KDIR MO=()
else
	KB=$(kernel_build "$FL")
	mkdir -p "$(flavour_out "$FL")/module"
	MO=(MO="$(flavour_out "$FL")/module")
fi
step "module ($FL): cxlfork.ko${CLIPPY:+ (clippy)}"
# shellcheck disable=SC2046
make -s -C "$KB" M="$ROOT" "${MO[@]}" RUST_LIB_SRC="$(rust_lib_src)" $(kernel_cc_flags "$FL") ${CLIPPY:+CLIPPY=1} modules \
	|| die "module build failed"
