#!/bin/sh
# Real-runtime remote fork across two hosts sharing one CXL pool (busybox
# sh, run in both guests of `qemu/run --hosts 2`):
#   host 0 starts each runtime's function (tests/runtimes/pyfunc.py,
#     plfunc.pl), checkpoints it by pid as image "rt-RT", sends the original
#     requests 1..3 and publishes their digests through the pool: the name
#     of a second, tiny image "RT=D1:D2:D3" (64-bit prefixes), or
#     "RT=failed";
#   host 1 waits for that name in `cxlfork-ctl ls`, restores one clone of
#     "rt-RT" per policy here and compares its answers to requests 1..3 with
#     the original's on host 0; then publishes "host1-done", which host 0
#     waits for before it stops its originals.
# Both hosts have the same runtime trees (qemu/run --root), so the clones
# reopen the interpreter's files at the same paths.
#
#   qemu/run --hosts 2 --pool-size 1G --root build/runtimes/python3 \
#            --root build/runtimes/perl --include build/runtimes/tests \
#            -- /cxlfork/bin/runtime_2host_test.sh
#
# Output: KTAP on each host. Environment as for runtime_test.sh, and
# RT_WAIT (seconds host 1 waits for host 0's answers, default 900).
BIN=$(cd "$(dirname "$0")" && pwd)
. "$BIN/runtime_lib.sh"
ME=${CXLFORK_HOST_ID:-0}
TAG="host $ME: "
WAIT=${RT_WAIT:-900}

# Image names and ids from `cxlfork-ctl ls --json` ("id" comes before
# "name" in each object).
image_list() {
	cxlfork-ctl ls --json 2> /dev/null | awk '
		/"id":/ { id = $2; gsub(/[",]/, "", id) }
		/"name":/ { n = $0; sub(/^[^:]*: *"/, "", n); sub(/",? *$/, "", n); print id, n }'
}
image_id() { image_list | awk -v want="$1" '$2 == want { print $1; exit }'; }
image_named_like() { image_list | awk -v p="$1" 'index($2, p) == 1 { print $2; exit }'; }

# publish NAME: an image whose name is the message (a checkpointed sleep).
publish() {
	sleep 100000 &
	_m=$!
	if ! cxlfork-ctl checkpoint --pid $_m --name "$1" --kill > "$RT/publish.out" 2>&1; then
		diag "host $ME: could not publish \"$1\":"
		diag_file "$RT/publish.out"
		kill $_m 2> /dev/null
		return 1
	fi
}

peer_attached() { cxlfork-ctl pool status --json | grep -q '"hosts_in_use": 2'; }
if ! wait_until 120 peer_attached; then
	echo "TAP version 13"
	echo "1..1"
	not_ok "host $ME: the other host attached to the pool"
	exit 1
fi
diag "host $ME: pool $(cxlfork-ctl pool status | sed -n 's/^pool *//p'), two hosts attached"

if [ "$ME" = 0 ]; then
	echo "TAP version 13"
	echo "1..$(($(count_words $RUNTIMES_ALL) * 4))"
	ORIGINALS=
	for rt in $RUNTIMES_ALL; do
		if ! runtime_present "$rt"; then
			for t in 1 2 3 4; do ok "host 0: $rt: test $t # SKIP $rt is not in this guest"; done
			continue
		fi
		if start_function "$rt"; then
			ok "host 0: $rt: the function starts and builds its warm state (pid $FPID)"
			ORIGINALS="$ORIGINALS $FPID"
		else
			not_ok "host 0: $rt: the function starts and builds its warm state"
		fi
		ID=
		if [ -n "$FPID" ] && checkpoint_function "$rt" "$FPID" "rt-$rt"; then
			ok "host 0: $rt: checkpoint by pid (image $ID)"
		else
			not_ok "host 0: $rt: checkpoint by pid"
		fi
		EXPECT=
		if [ -n "$ID" ] && original_answers "$rt" "$FPID"; then
			ok "host 0: $rt: the original serves requests 1-3 after the checkpoint"
		else
			not_ok "host 0: $rt: the original serves requests 1-3 after the checkpoint"
		fi
		msg="$rt=failed"
		if [ -n "$EXPECT" ]; then
			msg="$rt=$(for d in $EXPECT; do echo "$d" | cut -c1-16; done | tr '\n' ':' | sed 's/:$//')"
		fi
		if publish "$msg"; then
			ok "host 0: $rt: published \"$msg\""
		else
			not_ok "host 0: $rt: published \"$msg\""
		fi
	done
	# Keep the originals (and the images) until host 1 is done with them.
	wait_until "$WAIT" eval '[ -n "$(image_id host1-done)" ]' || diag "host 0: host 1 did not say it was done"
	for p in $ORIGINALS; do stop_process "$p"; done
	diag "host 0: $N tests, $FAILED failed"
	[ $FAILED -eq 0 ]
	exit
fi

# Host 1 (and any other): remote-fork host 0's functions here.
PER_RT=$((1 + 2 * $(count_words $POLICIES)))
echo "TAP version 13"
echo "1..$(($(count_words $RUNTIMES_ALL) * PER_RT))"
for rt in $RUNTIMES_ALL; do
	if ! runtime_present "$rt"; then
		for t in $(seq $PER_RT); do ok "host $ME: $rt: test $t # SKIP $rt is not in this guest"; done
		continue
	fi
	_t0=$(now_ms)
	if ! wait_until "$WAIT" eval '[ -n "$(image_named_like "$rt=")" ]'; then
		diag "host $ME: $rt: no answers from host 0 after $WAIT s; images:"
		image_list | sed 's/^/#   /' >&2
		not_ok "host $ME: $rt: host 0's image and the original's answers are in the pool"
		for pol in $POLICIES; do
			not_ok "host $ME: $rt: $pol clone answers request 1 like the original # nothing to restore"
			not_ok "host $ME: $rt: $pol clone answers requests 2 and 3 like the original # nothing to restore"
		done
		continue
	fi
	msg=$(image_named_like "$rt=")
	ID=$(image_id "rt-$rt")
	EXPECT=$(echo "${msg#*=}" | tr ':' ' ')
	diag "host $ME: $rt: \"$msg\" after $(($(now_ms) - _t0)) ms; image rt-$rt is ${ID:-missing}"
	if [ -n "$ID" ] && [ "$EXPECT" != failed ]; then
		ok "host $ME: $rt: host 0's image and the original's answers are in the pool"
		for pol in $POLICIES; do
			clone_requests "$rt" "$pol" "$ID" "$EXPECT"
		done
	else
		not_ok "host $ME: $rt: host 0's image and the original's answers are in the pool"
		for pol in $POLICIES; do
			not_ok "host $ME: $rt: $pol clone answers request 1 like the original # nothing to restore"
			not_ok "host $ME: $rt: $pol clone answers requests 2 and 3 like the original # nothing to restore"
		done
	fi
done
publish host1-done
diag "host $ME: $N tests, $FAILED failed"
[ $FAILED -eq 0 ]
