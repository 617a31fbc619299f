#!/usr/bin/env bash
# make bench: the paper's comparison (bench/faas_bench.c) in one guest run
# per pool backend, each figure next to its baseline from the same run:
# cold start, fork(), CRIU (trixie's criu 4.x: build/runtimes/criu) and
# cxlfork, on the bench kernel (distro + kernel/bench.config, what CRIU
# needs; criu's feature probe also wants the loopback interface up).
#
#   BENCH_BACKENDS="nvdimm cxl"   which backends (default both)
#   BENCH_SIZES="16 64 256 512"   footprints in MiB
#   BENCH_CONC="1,10,50"          concurrent clones (at the smallest footprint)
#   BENCH_PY_MB=64                the real function's warm state (python3.11)
#
# Writes build/bench/<backend>.log (the guest's output), build/bench/results.json
# (every figure), build/bench/bench.svg (latency and local memory per method)
# and prints the table (bench/report.py). `bench/report.py --readme` puts
# the table and the plot into the README.
source "$(dirname "$0")/lib.sh"
OUT=$ROOT/build/bench
BACKENDS=${BENCH_BACKENDS:-nvdimm cxl}
SIZES=${BENCH_SIZES:-16 64 256 512}
CONC=${BENCH_CONC:-1,10,50}
PY_MB=${BENCH_PY_MB:-64}
mkdir -p "$OUT/bin"
# The bench kernel: distro + what CRIU needs (kernel/bench.config).
"$ROOT/scripts/build-kernel.sh" bench
"$ROOT/scripts/build-module.sh" bench
"$ROOT/scripts/build-tools.sh"
"$ROOT/scripts/build-runtimes.sh" python3 criu
run_step "bench: build" make -s -C "$ROOT/bench" ROOT="$ROOT" OUTPUT="$OUT/bin"

# One root tree for the guest: bookworm's python3.11 (the real function)
# and trixie's criu. glibc runs older programs, not newer ones, and the
# loader looks in /lib/x86_64-linux-gnu first, where bookworm's packages
# put their libraries (libc6's among them): each of those that trixie's
# unpacked packages also have (the same soname, a newer build) is replaced
# by trixie's.
compose_root() {
	local r=$OUT/root u=$CACHE/runtimes/unpacked/criu f
	rm -rf "$r"
	mkdir -p "$r"
	cp -a "$ROOT/build/runtimes/python3/." "$r/"
	cp -a "$ROOT/build/runtimes/criu/." "$r/"
	for f in "$r"/lib/x86_64-linux-gnu/*; do
		[ -e "$u/usr/lib/x86_64-linux-gnu/${f##*/}" ] || continue
		rm -f "$f"
		cp -L "$u/usr/lib/x86_64-linux-gnu/${f##*/}" "$f"
	done
}
run_step "bench: guest root (python3.11, criu)" compose_root
"$ROOT/scripts/build-initramfs.sh" bench
for b in $BACKENDS; do
	# The CXL window holds at most 4 GiB; two host slots leave room for a
	# 512 MiB image in host 0's and for the plain copy in host 1's.
	size=4G; [ "$b" = nvdimm ] && size=6G
	step "bench: pool backend $b (footprints $SIZES MiB; THP on, then off)"
	"$ROOT/qemu/run" --kernel bench --pool-backend "$b" --pool-size $size --mem 3G --timeout 5400 \
		--root "$OUT/root" --include "$OUT/bin" -- \
		"ip link set lo up && cxlfork-ctl pool detach && cxlfork-ctl pool attach --dax \$CXLFORK_DAX --host-id 0 --format --max-hosts 2 >/dev/null && faas_bench -n $CONC -y $PY_MB $SIZES && copy_probe 64" |
		tee "$OUT/$b.log"
	[ "${PIPESTATUS[0]}" = 0 ] || die "bench on $b failed (log: $OUT/$b.log)"
done
python3 "$ROOT/bench/report.py" --machine "$(nproc) CPUs, $(lscpu | sed -n 's/^Model name: *//p' | head -1)" "$OUT"/*.log
info "results in $OUT (results.json, bench.svg); bench/report.py --readme $OUT/*.log updates the README"
