#!/usr/bin/env bash
# make demo: boot two CXL guests sharing one pool; host 0 formats it, host 1
# attaches to it; each prints its view of the pool.
source "$(dirname "$0")/lib.sh"
"$ROOT/scripts/build-initramfs.sh"
step "demo: two QEMU guests (TCG), one shared CXL Type-3 device backing file"
T0=$SECONDS
"$ROOT/qemu/run" --hosts 2 --include "$ROOT/demo" -- /cxlfork/bin/pool-demo.sh
info "demo finished in $((SECONDS - T0)) s (two guests booted, CXL regions created, module loaded, pool formatted and attached)"
