#!/bin/sh
# Real-runtime test of cxlfork, run in one guest (busybox sh): a real,
# dynamically linked Debian interpreter (python3.11, perl) runs a FaaS-like
# function with tens of MiB of warm state (tests/runtimes/pyfunc.py,
# plfunc.pl); it is checkpointed by pid while it waits for requests, and
# clones restored under each policy must answer requests exactly like the
# original (same digest over the whole warm state for request 1, 2, 3).
#
#   qemu/run --root build/runtimes/python3 --root build/runtimes/perl \
#            --include build/runtimes/tests -- /cxlfork/bin/runtime_test.sh
#
# A runtime whose tree is not in the guest is skipped. Output: KTAP.
# Environment: RT_POLICIES (default "mow moa ht"), RT_RUNTIMES (default
# "python3 perl pythreads"), RT_TIMEOUT (seconds to wait for the function or a
# request, default 300), PYFUNC_MIB, PLFUNC_MIB.
BIN=$(cd "$(dirname "$0")" && pwd)
. "$BIN/runtime_lib.sh"

PER_RT=$((3 + 2 * $(count_words $POLICIES)))
echo "TAP version 13"
echo "1..$(($(count_words $RUNTIMES_ALL) * PER_RT))"

for rt in $RUNTIMES_ALL; do
	if ! runtime_present "$rt"; then
		for t in $(seq $PER_RT); do
			ok "$rt: test $t # SKIP $rt is not in this guest (qemu/run --root build/runtimes/$rt)"
		done
		continue
	fi

	# The original: started, warm, checkpointed by pid while it waits.
	if start_function "$rt"; then
		ok "$rt: the function starts and builds its warm state (pid $FPID)"
	else
		not_ok "$rt: the function starts and builds its warm state"
	fi
	ID=
	if [ -n "$FPID" ] && checkpoint_function "$rt" "$FPID" "rt-$rt"; then
		ok "$rt: checkpoint by pid (image $ID)"
	else
		not_ok "$rt: checkpoint by pid"
	fi
	# Its answers to requests 1..3 after the checkpoint: the reference.
	EXPECT=
	if [ -n "$ID" ] && original_answers "$rt" "$FPID"; then
		ok "$rt: the original serves requests 1-3 after the checkpoint"
	else
		not_ok "$rt: the original serves requests 1-3 after the checkpoint"
	fi

	for pol in $POLICIES; do
		if [ -z "$EXPECT" ]; then
			not_ok "$rt: $pol clone answers request 1 like the original # no reference (see above)"
			not_ok "$rt: $pol clone answers requests 2 and 3 like the original # no reference"
			continue
		fi
		clone_requests "$rt" "$pol" "$ID" "$EXPECT"
	done

	[ -z "$FPID" ] || stop_process "$FPID"
	# Free the pool for the next runtime (the clones' leases are gone).
	if [ -n "$ID" ]; then
		i=0
		until cxlfork-ctl rm "$ID" > /dev/null 2>&1; do
			i=$((i + 1)); [ $i -le 25 ] || { diag "could not delete image $ID"; break; }
			sleep 0.2
		done
	fi
done
diag "$N tests, $FAILED failed"
[ $FAILED -eq 0 ]
