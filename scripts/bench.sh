#!/usr/bin/env bash
# make bench: benchmarks in one guest run, each next to its baseline, as ratios.
source "$(dirname "$0")/lib.sh"
OUT=$ROOT/build/bench
mkdir -p "$OUT/bin"
run_step "bench: build" make -s -C "$ROOT/bench" ROOT="$ROOT" OUTPUT="$OUT/bin"
"$ROOT/scripts/build-initramfs.sh"
step "bench: checkpoint throughput vs plain copy into the pool (footprints in MiB)"
"$ROOT/qemu/run" --include "$OUT/bin" --pool-size 2G --timeout 1200 -- ckpt_bench 16 64 96 | tee "$OUT/ckpt_bench.txt"
step "bench: restore latency per policy vs fork(), clone local memory vs parent (footprints in MiB)"
"$ROOT/qemu/run" --include "$OUT/bin" --pool-size 4G --mem 2G --timeout 2400 -- restore_bench 16 64 256 | tee "$OUT/restore_bench.txt"
info "results in $OUT"
