#!/usr/bin/env bash
# make demo: boot two CXL guests sharing one pool; host 0 formats it and
# checkpoints a warm toy function into it; host 1 remote-forks clones of it,
# serves a request with each and shows what each clone cost.
source "$(dirname "$0")/lib.sh"
OUT=$ROOT/build/demo
mkdir -p "$OUT"
run_step "demo: build the function" make -s -C "$ROOT/demo" OUTPUT="$OUT"
cp "$ROOT/demo/pool-demo.sh" "$OUT/"
"$ROOT/scripts/build-initramfs.sh"
step "demo: two QEMU guests (TCG), one shared CXL Type-3 device backing file"
T0=$SECONDS
"$ROOT/qemu/run" --hosts 2 --include "$OUT" -- /cxlfork/bin/pool-demo.sh
info "demo finished in $((SECONDS - T0)) s: two guests booted, CXL regions created, module loaded, pool attached; a function checkpointed on host 0 and remote-forked into 3 clones on host 1"
