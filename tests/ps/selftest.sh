#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Checks the process-state tests themselves, without the module (on the
# build machine or in a guest): emits KTAP.
#
#   selftest.sh [TEST...]
#
# For each test:
#   fork          TEST fork: fork() where the checkpoint would be: the child
#                 (as the clone) and the parent (as the original) must both
#                 say PASS (or SKIP): the test asserts fork(2)'s semantics;
#   fork+tamper   PS_TAMPER=1 TEST fork: the child perturbs its state the
#                 way a faulty restore would: it must say FAIL (the test can
#                 fail);
# and for regs and fpu, whose pid mode holds registers in a loop:
#   pid           TEST pid, SIGUSR1 after 0.3 s: PASS;
#   pid+tamper    PS_TAMPER=1: SIGUSR1's handler corrupts a saved register:
#                 FAIL.
set -u
BIN=$(cd "$(dirname "$0")" && pwd)
ALL="anon manyvmas privfile sharedfile sharedanon mmops stack thp fpu regs vdso tls rseq rseq_v2 signals timers rlimits auxv forkexec tid robust pkru threads threadfork"
TESTS=${*:-$ALL}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/ps-selftest.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
N=0 FAILED=0

total=0
for t in $TESTS; do
	total=$((total + 2))
	case $t in regs|fpu) total=$((total + 2)) ;; esac
done
echo "TAP version 13"
echo "1..$total"

report() { # ok? name file
	N=$((N + 1))
	if [ "$1" = 1 ]; then
		if grep -q '^SKIP' "$3"; then echo "ok $N - $2 # SKIP $(grep -m1 '^SKIP' "$3" | cut -c6-)"
		else echo "ok $N - $2"; fi
	else
		FAILED=$((FAILED + 1))
		sed 's/^/# /' "$3" | tail -12
		echo "not ok $N - $2"
	fi
}

count() { grep -c "^$1" "$2"; }

pid_run() { # test tamper out
	PS_TAMPER=$2 "$BIN/$1" pid > "$3" 2>&1 &
	p=$!
	i=0
	until grep -q '^ready' "$3" 2>/dev/null || [ $i -ge 100 ]; do sleep 0.1; i=$((i + 1)); done
	sleep 0.3
	kill -USR1 $p
	i=0
	while kill -0 $p 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
	kill -9 $p 2>/dev/null
	wait $p 2>/dev/null
}

for t in $TESTS; do
	out=$TMP/$t
	PS_TAMPER=0 timeout 120 "$BIN/$t" fork > "$out" 2>&1
	ok=0
	if grep -q '^SKIP' "$out" || { [ "$(count PASS "$out")" = 2 ] && [ "$(count FAIL "$out")" = 0 ]; }; then ok=1; fi
	report $ok "$t/fork" "$out"
	if [ "$t" = regs ]; then
		pid_run regs 1 "$out.t"
		ok=0; grep -q '^FAIL' "$out.t" && ok=1
		report $ok "$t/pid+tamper" "$out.t"
	else
		PS_TAMPER=1 timeout 120 "$BIN/$t" fork > "$out.t" 2>&1
		ok=0
		if grep -q '^SKIP' "$out.t" || grep -q '^FAIL' "$out.t"; then ok=1; fi
		report $ok "$t/fork+tamper" "$out.t"
	fi
	case $t in
	regs|fpu)
		pid_run "$t" 0 "$out.p"
		ok=0; [ "$(count PASS "$out.p")" = 1 ] && [ "$(count FAIL "$out.p")" = 0 ] && ok=1
		grep -q '^SKIP' "$out.p" && ok=1
		report $ok "$t/pid" "$out.p"
		if [ "$t" = fpu ]; then
			pid_run fpu 1 "$out.pt"
			ok=0; grep -q '^FAIL' "$out.pt" && ok=1
			report $ok "$t/pid+tamper" "$out.pt"
		else
			# regs has no fork+tamper: a second plain pid run instead.
			pid_run regs 0 "$out.p2"
			ok=0; [ "$(count PASS "$out.p2")" = 1 ] && ok=1
			report $ok "$t/pid (again)" "$out.p2"
		fi ;;
	esac
done
echo "# $N checks, $FAILED failed"
[ $FAILED = 0 ]
