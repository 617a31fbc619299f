#!/usr/bin/env bash
# make check: host tests, lint, then the kselftests in QEMU CXL guests, on
# each guest kernel flavour (distro, then debug). Ends with
# "N passed, N failed, N skipped"; exits non-zero on any failure, on any
# kernel report (WARN, BUG, lockdep, KASAN, kmemleak, hung task...) and on
# any guest that dies or times out.
#
#   CHECK_FLAVOURS="distro debug"   kernel flavours to test (default both)
#   CHECK_SUITES="restore_test ..." only these guest suites (default all)
source "$(dirname "$0")/lib.sh"
LOG=$ROOT/build/check
rm -rf "$LOG"; mkdir -p "$LOG"
PASS=0 FAIL=0 SKIP=0
T0=$SECONDS
FLAVOURS=${CHECK_FLAVOURS:-distro debug}

record() { # name pass fail skip
	PASS=$((PASS + $2)); FAIL=$((FAIL + $3)); SKIP=$((SKIP + $4))
	local mark=ok; [ "$3" -eq 0 ] || { mark=FAILED; echo "$1: $3 failed" >> "$LOG/failed.txt"; }
	printf '    %-40s %4d passed, %d failed, %d skipped  [%s]\n' "$1" "$2" "$3" "$4" "$mark" >&2
}

# A pass/fail check counted as one test.
check_one() { # name command...
	local name=$1; shift
	if "$@" > "$LOG/$name.log" 2>&1; then record "$name" 1 0 0
	else record "$name" 0 1 0; tail -30 "$LOG/$name.log" >&2; fi
}

# Every flavour after the first builds in the background (niced, in its
# own session) from the start: it takes the cores the host tests, the first
# kernel's serial stretches (the Rust crates, the link) and its one-host
# guests leave idle, and is usually ready when the first flavour's suites end.
BG_PID= BG_FL=
stop_background() { [ -z "$BG_PID" ] || kill -- "-$BG_PID" 2>/dev/null || true; }
trap stop_background EXIT
trap 'exit 143' TERM INT
# Its own session is its own scheduler autogroup, where nice alone would
# not lower its share against ours (autogroups share the CPU equally):
# the group itself is niced.
start_background() { # flavour
	info "kernel ($1): building in the background (log: $LOG/kernel-$1.log)"
	setsid bash -c 'echo 19 > /proc/self/autogroup 2>/dev/null; exec nice -n 19 "$@"' - \
		"$ROOT/scripts/build-kernel.sh" "$1" > "$LOG/kernel-$1.log" 2>&1 < /dev/null &
	BG_PID=$! BG_FL=$1
}
kernel_for() { # flavour
	if [ "$BG_FL" = "$1" ]; then
		step "kernel ($1): waiting for its background build (log: $LOG/kernel-$1.log)"
		local rc=0 t=$SECONDS
		wait "$BG_PID" || rc=$?
		BG_PID= BG_FL=
		sed 's/^/    /' "$LOG/kernel-$1.log" >&2
		[ $rc -eq 0 ] || die "building the $1 kernel failed (log: $LOG/kernel-$1.log)"
		info "waited $((SECONDS - t)) s for it"
	else
		"$ROOT/scripts/build-kernel.sh" "$1"
	fi
	# The next flavour's build, unless it is already under way.
	local next
	next=$(tr ' ' '\n' <<< "$FLAVOURS" | grep -A1 -xF "$1" | sed -n 2p)
	[ -z "$next" ] || [ -n "$BG_PID" ] || start_background "$next"
}

second=$(tr ' ' '\n' <<< "$FLAVOURS" | sed -n 2p)
[ -z "$second" ] || start_background "$second"

# The tools, kselftests, process-state tests and fuzzers (cached by cargo
# and make): here rather than as a make prerequisite, so that the background
# kernel build has started.
"$ROOT/scripts/build-tools.sh" || die "building the tools and tests failed"

step "host tests: cargo test"
rc=0
cargo test --quiet --workspace > "$LOG/cargo-test.log" 2>&1 || rc=$?
read -r p f < <(awk '/^test result:/ { gsub(";", ""); p += $4; f += $6 } END { print p + 0, f + 0 }' "$LOG/cargo-test.log")
# A build failure, a crashed test binary or any non-zero exit is a failure
# even when every "test result" line that did print says ok.
if [ $rc -ne 0 ] || ! grep -q '^test result:' "$LOG/cargo-test.log"; then
	[ "$f" -ne 0 ] || f=1
	tail -40 "$LOG/cargo-test.log" >&2
fi
record "cargo test" "$p" "$f" 0

step "lint: cargo clippy (user space)"
check_one "cargo clippy" cargo clippy --quiet --workspace --all-targets -- -D warnings

# Every process-state test asserts fork(2)'s semantics: each must pass as
# a fork child here, and fail when its state is perturbed.
step "host tests: tests/ps fork semantics"
"$ROOT/build/ps/selftest.sh" > "$LOG/ps-selftest.log" 2>&1 || true
read -r p f s < <(awk -f "$ROOT/scripts/ktap-count.awk" "$LOG/ps-selftest.log")
record "ps selftest (host)" "$p" "$f" "$s"

step "real runtimes: python3 (also threaded), perl, node, go guest trees"
"$ROOT/scripts/build-runtimes.sh" > "$LOG/build-runtimes.log" 2>&1 || { tail -20 "$LOG/build-runtimes.log" >&2; die "building the runtime trees failed"; }
RT=(--root "$ROOT/build/runtimes/python3" --root "$ROOT/build/runtimes/perl" --root "$ROOT/build/runtimes/node"
    --root "$ROOT/build/runtimes/go" --include "$ROOT/build/runtimes/tests")

# A kselftest program run in the guest(s): counts its KTAP results per host;
# a guest that failed, died, timed out or logged a kernel report adds a
# failure even if every result it printed passed.
# Guest suites run one at a time (LANES=1), or LANES at once with their
# results reported in order afterwards (flush_suites): a debug-kernel
# guest keeps about one core busy, so two fill the machine.
LANES=1 QUEUE=() LANE_PIDS=()
suite_title() { echo "$1${FL_TAG} ($2 guest$([ "$2" = 1 ] || echo s))"; } # name hosts
suite() { # name hosts runner-args... -- command
	local name=$1 hosts=$2; shift 2
	if [ -n "${CHECK_SUITES:-}" ] && ! [[ " $CHECK_SUITES " == *" $name "* ]]; then return 0; fi
	local out=$LOG/$FL/$name
	if [ "$LANES" -le 1 ]; then
		step "kselftest: $(suite_title "$name" "$hosts")"
		run_suite "$out" "$hosts" "$@"
		report_suite "$name" "$hosts"
		return 0
	fi
	local pid
	while :; do # wait for a free lane
		local live=()
		for pid in "${LANE_PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && live+=("$pid"); done
		LANE_PIDS=("${live[@]}")
		[ "${#LANE_PIDS[@]}" -lt "$LANES" ] && break
		sleep 1
	done
	info "started $(suite_title "$name" "$hosts")"
	run_suite "$out" "$hosts" "$@" &
	LANE_PIDS+=($!) QUEUE+=("$name $hosts")
}
run_suite() { # out hosts runner-args... -- command
	local out=$1 hosts=$2 rc=0; shift 2
	"$ROOT/qemu/run" --kernel "$FL" --hosts "$hosts" --out "$out" "$@" > "$out.log" 2>&1 || rc=$?
	echo "$rc" > "$out.rc"
}
flush_suites() {
	local pid q
	for pid in "${LANE_PIDS[@]}"; do wait "$pid" || true; done
	for q in "${QUEUE[@]}"; do
		step "kselftest: $(suite_title "${q% *}" "${q#* }")"
		report_suite "${q% *}" "${q#* }"
	done
	LANE_PIDS=() QUEUE=()
}
report_suite() { # name hosts
	local name=$1 hosts=$2 h p f s rc
	local tag="$name${FL_TAG}" out=$LOG/$FL/$name
	rc=$(cat "$out.rc" 2>/dev/null || echo 1)
	grep -F 'qemu/run: ' "$out.log" | grep -F ' guest(s), ' >&2 || true
	for ((h = 0; h < hosts; h++)); do
		read -r p f s < <(awk -f "$ROOT/scripts/ktap-count.awk" "$out/out$h.log" 2>/dev/null || echo "0 1 0")
		if [ "$f" -ne 0 ]; then
			grep -E '^(not ok|# .*(FAIL|Expected|ERROR|timed out))' "$out/out$h.log" | tee -a "$LOG/failed.txt" >&2 || true
		fi
		record "$tag$([ "$hosts" = 1 ] || echo " [host$h]")" "$p" "$f" "$s"
	done
	if [ "$rc" -ne 0 ]; then
		record "$tag: guest and kernel clean" 0 1 0
		grep -E '^qemu/run' -A40 "$out.log" | head -60 >&2 || tail -20 "$out.log" >&2
	fi
}

# Both guests of a two-host suite must have seen the same pool.
same_uuid() { # dir
	local u0 u1
	u0=$(sed -n 's/^# pool-uuid: //p' "$1/out0.log")
	u1=$(sed -n 's/^# pool-uuid: //p' "$1/out1.log")
	echo "host0 $u0 host1 $u1"
	[ -n "$u0" ] && [ "$u0" = "$u1" ]
}

# The debug kernel's guests are ~10x slower than the distro kernel's under
# TCG. When both kernels run, the debug kernel runs the one-host programs
# but perm_test (debug_suites) with the matrices (the same code paths,
# other inputs) cut: the process-state suite each aspect once (--one-each:
# the modes and the policies taken in turn; THP always only), the fuzzers 2% of
# their totals (fuzz_share), restore_test without its 40,000-VMA case
# (~4 ms a VMA there), on a 512 MiB pool (KASAN_VMALLOC shadows the whole
# pool at each attach: 4-5 s for 2 GiB). The distro kernel runs everything
# in full; CHECK_FLAVOURS=debug alone runs everything in full on the debug
# kernel (with CHECK_REDUCED=1: the cut set, as make check runs it).
reduced() { [ "$FL" = debug ] && { [ "$(wc -w <<< "$FLAVOURS")" -gt 1 ] || [ -n "${CHECK_REDUCED:-}" ]; }; }
# Fuzz iterations: 98% of each total on the distro kernel and 2% on the
# debug kernel (an image costs ~10x more there); one flavour alone runs the
# whole total.
fuzz_share() { # total
	if reduced; then echo $(($1 / 50))
	elif [ "$(wc -w <<< "$FLAVOURS")" -le 1 ]; then echo "$1"
	else echo $(($1 - $1 / 50)); fi
}
IOCTLS=100000 IMAGES=10000

# Longest first (on the debug kernel they share two lanes).
guest_suites() {
	if reduced; then
		debug_suites
		return
	fi
	# Across hosts the threaded runtimes: python3, Node.js, Go (python3's
	# and perl's restore is the same path without threads: one host covers
	# them).
	local rt2="RT_RUNTIMES='pythreads node go' " small=()
	local ps2="anon manyvmas privfile sharedfile sharedanon mmops stack vdso regs fpu signals rlimits forkexec tid rseq rseq_v2 pkru threads events"
	[ "$FL" != debug ] || small=(--pool-size 512M)
	# The process-state suite: every aspect x by pid and by self x every
	# policy in one guest (THP always, the distro default), a subset with
	# the clones on a second host (checkpointed by pid: the mode only
	# changes how host 0 checkpoints, which the one-host cells cover; the
	# restore on host 1 is the same), and a subset with THP off.
	suite ps_2host 2 "${small[@]}" --timeout 1800 --include "$ROOT/build/ps" -- \
		"/cxlfork/bin/run.sh --two-hosts -m pid -t $ps2"
	# Real, dynamically linked runtimes (python3.11, perl, node 18; a static
	# Go program) with warm state.
	suite runtime_2host 2 --mem 2G --timeout 1800 "${RT[@]}" -- "${rt2}/cxlfork/bin/runtime_2host_test.sh"
	suite restore_test 1 "${small[@]}" -- /cxlfork/tests/restore_test
	# Fuzzers (tests/fuzz/README.md), a new seed each run (printed, with
	# the command that replays it).
	suite image_fuzz 1 "${small[@]}" --timeout 2400 --include "$ROOT/build/fuzz" -- "IMAGE_FUZZ_STUB=10 image_fuzz $RANDOM$RANDOM $(fuzz_share $IMAGES)"
	suite pool_2host_test 2 "${small[@]}" -- /cxlfork/tests/pool_2host_test
	# The bench's RAM-speed backend (a shared NVDIMM as device-dax): the
	# same pool code on another physical range, remote fork included.
	suite pool_2host_nvdimm 2 "${small[@]}" --pool-backend nvdimm -- /cxlfork/tests/pool_2host_test
	suite perm_test 1 "${small[@]}" -- /cxlfork/tests/perm_test
	suite pool_test 1 "${small[@]}" --no-attach -- /cxlfork/tests/pool_test
	suite runtime 1 --mem 2G --timeout 1800 "${RT[@]}" -- /cxlfork/bin/runtime_test.sh
	suite ps 1 "${small[@]}" --timeout 1800 --include "$ROOT/build/ps" -- /cxlfork/bin/run.sh
	suite race_test 1 "${small[@]}" -- /cxlfork/tests/race_test -T restore_against_delete_across_hosts
	suite race_2host 2 "${small[@]}" -- /cxlfork/tests/race_test -t restore_against_delete_across_hosts
	suite ioctl_fuzz 1 "${small[@]}" --timeout 1800 --include "$ROOT/build/fuzz" -- "ioctl_fuzz $RANDOM$RANDOM $(fuzz_share $IOCTLS)"
	suite ps_thp_never 1 "${small[@]}" --timeout 900 --include "$ROOT/build/ps" -- \
		"echo never > /sys/kernel/mm/transparent_hugepage/enabled && /cxlfork/bin/run.sh -t anon mmops stack thp regs -m pid self"
	suite refusal_test 1 "${small[@]}" -- /cxlfork/tests/refusal_test
	suite checkpoint_test 1 "${small[@]}" -- /cxlfork/tests/checkpoint_test
}

# The debug kernel's reduced set (see above). A debug guest costs ~50 s
# before and after its tests (boot, KASAN set-up, kmemleak's scans after
# rmmod), so programs share guests (a guest's kernel-report check then
# covers them all), in two lanes of about equal length. The two-host
# suites and the real runtimes run on the distro kernel only: the debug
# kernel is built from nothing in every CI run, and its build and these
# guests are what CI's 90 minutes hold.
debug_suites() {
	local small=(--pool-size 512M) t=/cxlfork/tests
	suite ps_fuzz 1 "${small[@]}" --timeout 1800 --include "$ROOT/build/ps" --include "$ROOT/build/fuzz" -- \
		"/cxlfork/bin/run.sh --one-each; ioctl_fuzz $RANDOM$RANDOM $(fuzz_share $IOCTLS); IMAGE_FUZZ_STUB=10 image_fuzz $RANDOM$RANDOM $(fuzz_share $IMAGES)"
	suite kselftests_a 1 "${small[@]}" --timeout 1800 -- \
		"$t/restore_test -T forty_thousand_vmas; $t/checkpoint_test"
	suite kselftests_b 1 "${small[@]}" --timeout 1800 -- \
		"$t/race_test -T restore_against_delete_across_hosts; $t/refusal_test"
	suite pool_test 1 "${small[@]}" --no-attach -- $t/pool_test
}

for FL in $FLAVOURS; do
	FL_TAG=" ($FL)"
	mkdir -p "$LOG/$FL"
	t0=$SECONDS
	kernel_for "$FL"
	"$ROOT/scripts/build-module.sh" "$FL"
	if [ "$FL" = distro ]; then
		step "lint: module clippy (CLIPPY=1)"
		check_one "module clippy" bash -c "touch '$ROOT/src/cxlfork_main.rs' && CLIPPY=1 '$ROOT/scripts/build-module.sh' distro 2>&1 | tee /dev/stderr | (! grep -E '^(warning|error)')"
	fi
	"$ROOT/scripts/build-initramfs.sh" "$FL"
	# The debug kernel's guests (after its build): two lanes.
	LANES=1; [ "$FL" = debug ] && LANES=${CHECK_LANES:-2}
	guest_suites
	flush_suites
	if [ -d "$LOG/$FL/pool_2host_test" ]; then
		check_one "two hosts see one uuid$FL_TAG" same_uuid "$LOG/$FL/pool_2host_test"
	fi
	info "$FL kernel: $((SECONDS - t0)) s"
done

info "logs: $LOG ($((SECONDS - T0)) s)"
# Repeated last, where a log cut to its tail (as CI keeps it) still shows it.
if [ -s "$LOG/failed.txt" ]; then echo "failed:" >&2; sed 's/^/    /' "$LOG/failed.txt" >&2; fi
echo "$PASS passed, $FAIL failed, $SKIP skipped"
[ "$FAIL" -eq 0 ]
