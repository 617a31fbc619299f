#!/usr/bin/env bash
# make check: host tests, lint, then the kselftests in QEMU CXL guests.
# Ends with "N passed, N failed"; exits non-zero on any failure.
source "$(dirname "$0")/lib.sh"
LOG=$ROOT/build/check
rm -rf "$LOG"; mkdir -p "$LOG"
PASS=0 FAIL=0 SKIP=0
T0=$SECONDS

record() { # name pass fail skip
	PASS=$((PASS + $2)); FAIL=$((FAIL + $3)); SKIP=$((SKIP + $4))
	local mark=ok; [ "$3" -eq 0 ] || mark=FAILED
	printf '    %-28s %3d passed, %d failed, %d skipped  [%s]\n' "$1" "$2" "$3" "$4" "$mark" >&2
}

# A pass/fail check counted as one test.
check_one() { # name command...
	local name=$1; shift
	if "$@" > "$LOG/$name.log" 2>&1; then record "$name" 1 0 0
	else record "$name" 0 1 0; tail -30 "$LOG/$name.log" >&2; fi
}

"$ROOT/scripts/build-initramfs.sh"

step "host tests: cargo test"
if cargo test --quiet --workspace > "$LOG/cargo-test.log" 2>&1; then :; else tail -40 "$LOG/cargo-test.log" >&2; fi
read -r p f < <(awk '/^test result:/ { gsub(";", ""); p += $4; f += $6 } END { print p + 0, f + 0 }' "$LOG/cargo-test.log")
grep -q '^test result:' "$LOG/cargo-test.log" || f=$((f + 1))
record "cargo test" "$p" "$f" 0

step "lint: clippy (user space and module)"
check_one "cargo clippy" cargo clippy --quiet --workspace --all-targets -- -D warnings
check_one "module clippy" bash -c "touch '$ROOT/src/cxlfork_main.rs' && CLIPPY=1 '$ROOT/scripts/build-module.sh' 2>&1 | tee /dev/stderr | (! grep -E '^(warning|error)')"

# A kselftest program run in the guest(s): counts its KTAP results per host.
suite() { # name hosts runner-args... -- command
	local name=$1 hosts=$2; shift 2
	step "kselftest: $name ($hosts guest$([ "$hosts" = 1 ] || echo s))"
	local rc=0
	"$ROOT/qemu/run" --hosts "$hosts" --out "$LOG/$name" "$@" > "$LOG/$name.log" 2>&1 || rc=$?
	local h p f s
	for ((h = 0; h < hosts; h++)); do
		read -r p f s < <(awk -f "$ROOT/scripts/ktap-count.awk" "$LOG/$name/out$h.log" 2>/dev/null || echo "0 1 0")
		if [ "$f" -ne 0 ] || { [ $rc -ne 0 ] && [ "$p" -eq 0 ]; }; then
			[ "$f" -ne 0 ] || f=1
			grep -E '^(not ok|# .*(FAIL|Expected|ERROR|timed out))' "$LOG/$name/out$h.log" >&2 || true
			tail -20 "$LOG/$name.log" >&2
		fi
		record "$name$([ "$hosts" = 1 ] || echo " [host$h]")" "$p" "$f" "$s"
	done
}

suite pool_test 1 --no-attach -- /cxlfork/tests/pool_test
suite checkpoint_test 1 -- /cxlfork/tests/checkpoint_test
suite restore_test 1 -- /cxlfork/tests/restore_test
suite pool_2host_test 2 -- /cxlfork/tests/pool_2host_test

# Both guests must have seen the same pool (uuid printed by each).
same_uuid() {
	local u0 u1
	u0=$(sed -n 's/^# pool-uuid: //p' "$LOG/pool_2host_test/out0.log")
	u1=$(sed -n 's/^# pool-uuid: //p' "$LOG/pool_2host_test/out1.log")
	echo "host0 $u0 host1 $u1"
	[ -n "$u0" ] && [ "$u0" = "$u1" ]
}
check_one "two hosts see one uuid" same_uuid

info "logs: $LOG ($((SECONDS - T0)) s)"
echo "$PASS passed, $FAIL failed, $SKIP skipped"
[ "$FAIL" -eq 0 ]
