#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The process-state suite's driver (busybox sh, in a guest whose pool is
# attached; the test programs next to this script). Emits KTAP.
#
#   run.sh [-t TEST...] [-m MODE...] [-p POLICY...] [--one-each] [--two-hosts]
#
# For each test x mode (pid, self) x policy (mow, moa, ht) (with --one-each:
# one case per test, the modes and the policies taken in turn):
#   pid   start TEST pid, wait for "ready", checkpoint it with cxlfork-ctl
#         checkpoint --pid (regs: after a random 1-40 ms), restore a clone,
#         wait until `cxlfork-ctl stat` knows it as a clone, send it SIGUSR1;
#   self  start TEST self: it checkpoints itself and prints "ckpt ID";
#         restore a clone, which verifies at once;
# then wait for the clone's verdict (DIR/clone-1.out), send the original
# SIGUSR1 and wait for its verdict, wait for the clone to exit and delete
# the image. A case passes when both say PASS; SKIP when the test cannot run
# here. Every test program verifies its own state (see ps.h).
#
# --two-hosts (under qemu/run --hosts 2): host 0 (CXLFORK_HOST_ID=0) runs
# the originals and checkpoints them; host 1 waits for each image in the
# pool listing, restores and verifies it. They go in lockstep through image
# names: host 0 publishes "ps/TEST/MODE/POLICY" (or, when it has no image
# for the case, a marker image "nack/..." or "skip/..."); host 1 publishes
# a marker image "ack/..." once its clone has exited, then deletes it when
# host 0 has deleted its image. Both hosts emit KTAP: host 0 for the
# originals, host 1 for the clones. Marker images are checkpoints of a
# `sleep` (killed at once).
#
# Options take one or more values each (or a comma-separated list):
#   -t TEST     tests (default: all)
#   -m MODE     pid, self (default both)
#   -p POLICY   mow, moa, ht (default all)
#   -v          time every step of every case (as "# " lines)
# Env: PS_WORK (default /tmp/ps-run) holds each case's outputs.
set -u
BIN=$(cd "$(dirname "$0")" && pwd)
ALL_TESTS="anon manyvmas privfile sharedfile sharedanon mmops stack thp fpu regs vdso tls rseq rseq_v2 signals timers rlimits auxv forkexec tid robust pkru threads threadfork events"
TESTS= MODES= POLICIES= TWO=0 VERBOSE=0 ONE_EACH=0
WORK=${PS_WORK:-/tmp/ps-run}
POLL=50000		# us between polls

usage() { sed -n '3,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit "${1:-2}"; }
while [ $# -gt 0 ]; do
	case $1 in
	-t|-m|-p)
		opt=$1; shift
		while [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; do
			v=$(echo "$1" | tr ',' ' ')
			case $opt in -t) TESTS="$TESTS $v" ;; -m) MODES="$MODES $v" ;; -p) POLICIES="$POLICIES $v" ;; esac
			shift
		done ;;
	--two-hosts) TWO=1; shift ;;
	--one-each) ONE_EACH=1; shift ;;
	-v) VERBOSE=1; shift ;;
	-h|--help) usage 0 ;;
	*) echo "run.sh: unknown argument $1" >&2; usage 2 ;;
	esac
done
TESTS=${TESTS:-$ALL_TESTS}
MODES=${MODES:-pid self}
POLICIES=${POLICIES:-mow moa ht}
for t in $TESTS; do [ -x "$BIN/$t" ] || { echo "run.sh: no test program $BIN/$t" >&2; exit 2; }; done
for m in $MODES; do case $m in pid|self) ;; *) echo "run.sh: mode $m: pid or self" >&2; exit 2 ;; esac; done
for p in $POLICIES; do case $p in mow|moa|ht) ;; *) echo "run.sh: policy $p: mow, moa or ht" >&2; exit 2 ;; esac; done
HOST=${CXLFORK_HOST_ID:-0}
if [ $TWO = 1 ] && [ "${CXLFORK_HOSTS:-1}" -lt 2 ]; then
	echo "run.sh: --two-hosts needs two guests (qemu/run --hosts 2)" >&2; exit 2
fi
mkdir -p "$WORK"

# NOW: milliseconds since boot (builtins only: polling must not fork much).
set_now() {
	read -r _up _ < /proc/uptime
	_c=${_up#*.}
	NOW=$((${_up%.*} * 1000 + ${_c#0} * 10))
}

# Is PID running (not gone, not a zombie)?
alive() {
	_st=
	{ read -r _st < "/proc/$1/stat"; } 2>/dev/null || return 1
	_st=${_st##*) }
	case ${_st%% *} in Z|X|"") return 1 ;; esac
	return 0
}

# wait_line FILE REGEX SECONDS [PID]: 0 once a line of FILE matches; 1 on
# timeout; 2 if PID is gone without it.
wait_line() {
	set_now
	_end=$((NOW + $3 * 1000))
	while :; do
		grep -qE "$2" "$1" 2>/dev/null && return 0
		if [ -n "${4:-}" ] && ! alive "$4"; then
			grep -qE "$2" "$1" 2>/dev/null && return 0
			return 2
		fi
		set_now
		[ $NOW -ge $_end ] && return 1
		usleep $POLL
	done
}

# wait_cmd SECONDS COMMAND...: until COMMAND succeeds; 1 on timeout.
wait_cmd() {
	set_now
	_end=$((NOW + $1 * 1000))
	shift
	until "$@" > /dev/null 2>&1; do
		set_now
		[ $NOW -ge $_end ] && return 1
		usleep $POLL
	done
}

# Has PID become a clone, its restore call done (signals now reach the
# clone's handlers, not the stub or the restore in progress)?
restored() { cxlfork-ctl stat "$1" --json 2>/dev/null | grep -q '"restore_ns": [1-9]'; }
gone() { ! alive "$1"; }

T_CASE=0
step() { [ $VERBOSE = 1 ] && set_now && echo "#   $((NOW - T_CASE)) ms: $*"; return 0; }

verdict() { grep -E '^(PASS|FAIL|SKIP)' "$1" 2>/dev/null | tail -1; }

# Diagnostics of the current case (printed as "# " lines before its result).
DIAG=
diag() { DIAG="$DIAG
# $*"; }
diag_file() { # prefix file: its "# FAIL" lines but the first (the verdict has it), other output
	[ -s "$2" ] || { diag "$1: (no output)"; return; }
	{ grep '^# FAIL' "$2" | tail -n +2 | head -8
	  grep -vE '^(# FAIL|ready|ckpt|PASS|FAIL|SKIP|cxlfork-restore:)' "$2" | tail -4; } |
		while IFS= read -r l; do echo "# $1: ${l#\# }"; done > "$WORK/.d"
	[ -s "$WORK/.d" ] && DIAG="$DIAG
$(cat "$WORK/.d")"
	return 0
}
diag_stuck() { # who pid: where a process that gave no verdict is
	[ -d "/proc/$2" ] || return 0
	diag "$1 (pid $2) state $(sed -n 's/^.*) \(.\).*/\1/p' "/proc/$2/stat") wchan $(cat "/proc/$2/wchan" 2>/dev/null)" \
		"syscall $(cut -d' ' -f1 "/proc/$2/syscall" 2>/dev/null) threads $(ls "/proc/$2/task" | wc -l)"
	diag "$1: $(grep -E '^(SigPnd|ShdPnd|SigBlk)' "/proc/$2/status" | tr '\t\n' '  ')"
	for _k in "/proc/$2"/task/*; do
		[ -r "$_k/stack" ] && diag "$1 task ${_k##*/} kernel stack: $(head -4 "$_k/stack" | sed 's/^\[<[0-9a-f]*>\] //; s/+0x[0-9a-f/x]*//' | tr '\n' ' ')"
	done
	return 0
}
diag_dmesg() { # lines of the kernel log since mark $1 (the module's, faults)
	dmesg | tail -n +$(($1 + 1)) | grep -iE 'cxlfork|segfault|traps:|general protection|BUG|WARNING|Oops|killed' |
		tail -10 > "$WORK/.d"
	[ -s "$WORK/.d" ] && DIAG="$DIAG
$(sed 's/^/# dmesg: /' "$WORK/.d")"
	return 0
}

N=0
FAILED=0
result() { # ok|fail|skip name [reason]
	N=$((N + 1))
	[ -n "$DIAG" ] && echo "${DIAG#?}"
	case $1 in
	ok) echo "ok $N - $2" ;;
	skip) echo "ok $N - $2 # SKIP ${3:-}" ;;
	*) FAILED=$((FAILED + 1)); echo "not ok $N - $2" ;;
	esac
	DIAG=
}

# The image id (HOST:SEQ) of the published image named $1, or nothing.
image_id() {
	cxlfork-ctl ls --json 2>/dev/null | awk -v want="\"name\": \"$1\"" '
		/"id":/ { id = $2; gsub(/[",]/, "", id) }
		index($0, want) { print id; exit }'
}
has_image() { [ -n "$(image_id "$1")" ]; }
no_image() { [ -z "$(image_id "$1")" ]; }

# A marker image: a checkpoint of a throw-away sleep, named $1.
publish_marker() {
	sleep 1000 < /dev/null > /dev/null 2>&1 &
	_sp=$!
	cxlfork-ctl checkpoint --pid $_sp --name "$1" --kill > "$WORK/.marker" 2>&1
	_rc=$?
	kill -9 $_sp 2>/dev/null
	wait $_sp 2>/dev/null
	[ $_rc = 0 ] || diag "publishing marker $1: $(cat "$WORK/.marker")"
	return $_rc
}
rm_image() { # id: delete, retrying while leases drain
	[ -n "$1" ] || return 0
	wait_cmd 10 cxlfork-ctl rm "$1" || diag "cxlfork-ctl rm $1: $(cxlfork-ctl rm "$1" 2>&1)"
}

# ---- the original's side: start it and get an image ------------------------
# start_original test mode name dir remote: sets OPID, ID (empty if none),
# OSTATE: image | skip | fail.
start_original() {
	_t=$1 _m=$2 _name=$3 _d=$4
	ID=
	PS_IMAGE_NAME="ps/$_name" PS_REMOTE=$5 "$BIN/$_t" "$_m" > "$_d/orig.out" 2>&1 &
	OPID=$!
	step "original $OPID started"
	if [ "$_m" = pid ]; then
		wait_line "$_d/orig.out" '^(ready|SKIP|FAIL)' 30 $OPID
	else
		wait_line "$_d/orig.out" '^(ckpt|SKIP|FAIL)' 120 $OPID
	fi
	step "original: $(grep -E '^(ready|ckpt|SKIP|FAIL)' "$_d/orig.out" | head -1)"
	case $(grep -E '^(ready|ckpt|SKIP|FAIL)' "$_d/orig.out" | head -1) in
	SKIP*) OSTATE=skip; return ;;
	ready*)
		if [ "$_t" = regs ]; then usleep $(($(shuf -i 1-40 -n 1) * 1000)); fi
		if ! cxlfork-ctl checkpoint --pid $OPID --name "ps/$_name" --json > "$_d/ckpt.json" 2>&1; then
			diag "checkpoint --pid $OPID failed: $(cat "$_d/ckpt.json")"
			OSTATE=fail; return
		fi
		ID=$(sed -n 's/.*"id": *"\([0-9]*:[0-9]*\)".*/\1/p' "$_d/ckpt.json")
		step "checkpointed: $ID"
		if [ "$_t" = regs ]; then
			diag "regs: $(cxlfork-ctl inspect "$ID" --json 2>/dev/null | grep '"origin"' | sed 's/^ *//')"
		fi ;;
	ckpt*) ID=$(sed -n 's/^ckpt //p' "$_d/orig.out" | head -1) ;;
	*)	diag "the original did not get to the checkpoint"
		diag_file orig "$_d/orig.out"
		OSTATE=fail; return ;;
	esac
	OSTATE=image
	[ -n "$ID" ] || { diag "no image id"; OSTATE=fail; }
}

# finish_original dir: SIGUSR1, then its verdict (sets OVERDICT).
finish_original() {
	kill -USR1 $OPID 2>/dev/null
	wait_line "$1/orig.out" '^(PASS|FAIL|SKIP)' 60 $OPID || diag_stuck original $OPID
	OVERDICT=$(verdict "$1/orig.out")
	step "original: $OVERDICT"
	if alive $OPID; then kill -9 $OPID 2>/dev/null; fi
	wait $OPID 2>/dev/null
	[ -n "$OVERDICT" ] || OVERDICT="FAIL the original gave no verdict"
}

# ---- the clone's side --------------------------------------------------------
# run_clone id mode policy dir: restore, verify; sets CVERDICT.
run_clone() {
	_id=$1 _m=$2 _p=$3 _d=$4
	CVERDICT=
	if ! cxlfork-ctl restore "$_id" --policy "$_p" --output "$_d" --json > "$_d/restore.json" 2>&1; then
		CVERDICT="FAIL cxlfork-ctl restore: $(cat "$_d/restore.json")"
		return
	fi
	CPID=$(sed -n 's/.*"pids":\[\([0-9]*\).*/\1/p' "$_d/restore.json")
	step "restoring into $CPID"
	if [ "$_m" = pid ]; then
		# Until it is a clone (SIGUSR1 would kill the restore stub).
		if ! wait_cmd 30 restored "$CPID"; then
			CVERDICT="FAIL the clone (pid $CPID) never became a clone"
		else
			step "it is a clone"
			kill -USR1 "$CPID"
		fi
	fi
	if [ -z "$CVERDICT" ]; then
		wait_line "$_d/clone-1.out" '^(PASS|FAIL|SKIP)' 60 "$CPID"
		case $? in
		1) CVERDICT="FAIL no verdict from the clone in 60 s"; diag_stuck clone "$CPID" ;;
		2) CVERDICT=$(verdict "$_d/clone-1.out")
		   [ -n "$CVERDICT" ] || CVERDICT="FAIL the clone (pid $CPID) died without a verdict" ;;
		*) CVERDICT=$(verdict "$_d/clone-1.out") ;;
		esac
	fi
	# The stub says why a restore failed.
	_why=$(grep -m1 '^cxlfork-restore:' "$_d/clone-1.out" 2>/dev/null)
	[ "${CVERDICT%% *}" = FAIL ] && [ -n "$_why" ] && CVERDICT="FAIL $_why"
	step "clone: $CVERDICT"
	# Its exit drops the lease.
	if ! wait_cmd 15 gone "$CPID"; then
		diag "the clone (pid $CPID) did not exit: killed"
		kill -9 "$CPID" 2>/dev/null
		wait_cmd 10 gone "$CPID"
	fi
}

# ---- one host ------------------------------------------------------------------
case_single() { # test mode policy
	name="$1/$2/$3" d="$WORK/$1.$2.$3"
	rm -rf "$d"; mkdir -p "$d"
	mark=$(dmesg | wc -l)
	CPID=
	set_now
	T_CASE=$NOW
	start_original "$1" "$2" "$name" "$d" 0
	case $OSTATE in
	skip) finish_original "$d"; result skip "$name" "$(verdict "$d/orig.out" | sed 's/^SKIP //')"; return ;;
	fail) finish_original "$d"; rm_image "$ID"; diag_dmesg "$mark"; result fail "$name"; return ;;
	esac
	run_clone "$ID" "$2" "$3" "$d"
	finish_original "$d"
	rm_image "$ID"
	step "image deleted"
	if [ "$CVERDICT" = PASS ] && [ "$OVERDICT" = PASS ]; then
		result ok "$name"
	elif [ "${CVERDICT%% *}" = SKIP ] && [ "$OVERDICT" = PASS ]; then
		result skip "$name" "clone: ${CVERDICT#SKIP }"
	else
		[ "$CVERDICT" = PASS ] || { diag "clone: $CVERDICT"; diag_file clone "$d/clone-1.out"; }
		[ "$OVERDICT" = PASS ] || { diag "original: $OVERDICT"; diag_file orig "$d/orig.out"; }
		diag_dmesg "$mark"
		result fail "$name"
	fi
}

# ---- two hosts -------------------------------------------------------------------
case_host0() {
	name="$1/$2/$3" d="$WORK/$1.$2.$3"
	rm -rf "$d"; mkdir -p "$d"
	set_now
	T_CASE=$NOW
	mark=$(dmesg | wc -l)
	start_original "$1" "$2" "$name" "$d" 1
	case $OSTATE in
	image) offer=$ID ;;
	skip) publish_marker "skip/$name"; offer=$(image_id "skip/$name") ;;
	*) publish_marker "nack/$name"; offer=$(image_id "nack/$name") ;;
	esac
	# Host 1 restores, verifies, and says so.
	if ! wait_cmd 300 has_image "ack/$name"; then diag "host 1 never acknowledged $name"; ACKED=0; else ACKED=1; fi
	finish_original "$d"
	rm_image "$offer"
	case $OSTATE in
	skip) result skip "$name" "$(verdict "$d/orig.out" | sed 's/^SKIP //')" ;;
	image)
		if [ "$OVERDICT" = PASS ] && [ $ACKED = 1 ]; then result ok "$name"
		else diag "original: $OVERDICT"; diag_file orig "$d/orig.out"; diag_dmesg "$mark"; result fail "$name"; fi ;;
	*) diag_dmesg "$mark"; result fail "$name" ;;
	esac
}

# aim_pid id: sets AIM to the pid the image's original had on host 0 and,
# when that number is free here, has this host hand it out to the next
# clone. Each host numbers its own pids, so a clone on another host may get
# its original's number by chance; here it gets it whenever it can, and a
# clone must still know itself from its original (ps.h: by its node name).
# The restore forks cxlfork-ctl, which spawns cxlfork-restore, which
# becomes the clone: the second pid after ns_last_pid (if that changes, it
# just misses: SAME_PID counts the hits, printed at the end).
SAME_PID=0
aim_pid() {
	AIM=$(cxlfork-ctl inspect "$1" --json 2>/dev/null | sed -n 's/^ *"pid": *\([0-9]*\).*/\1/p' | head -1)
	[ -n "$AIM" ] && [ "$AIM" -gt 2 ] && [ ! -e "/proc/$AIM" ] &&
		[ -w /proc/sys/kernel/ns_last_pid ] && echo $((AIM - 2)) > /proc/sys/kernel/ns_last_pid
}

case_host1() {
	name="$1/$2/$3" d="$WORK/$1.$2.$3"
	rm -rf "$d"; mkdir -p "$d"
	set_now
	T_CASE=$NOW
	mark=$(dmesg | wc -l)
	"$BIN/$1" install
	if ! wait_cmd 600 sh -c "cxlfork-ctl ls --json | grep -qE '\"name\": \"(ps|nack|skip)/$name\"'"; then
		diag "host 0 published nothing for $name"
		result fail "$name"
		return
	fi
	ID=$(image_id "ps/$name")
	if [ -n "$ID" ]; then
		CPID= AIM=
		aim_pid "$ID"
		run_clone "$ID" "$2" "$3" "$d"
		[ -z "$AIM" ] || [ "$CPID" != "$AIM" ] || SAME_PID=$((SAME_PID + 1))
	elif has_image "skip/$name"; then
		CVERDICT="SKIP on host 0"
	else
		CVERDICT="FAIL host 0 has no image of $name"
	fi
	publish_marker "ack/$name"
	wait_cmd 300 sh -c "! cxlfork-ctl ls --json | grep -qE '\"name\": \"(ps|nack|skip)/$name\"'" ||
		diag "host 0 did not delete its image of $name"
	rm_image "$(image_id "ack/$name")"
	case $CVERDICT in
	PASS) result ok "$name" ;;
	SKIP*) result skip "$name" "${CVERDICT#SKIP }" ;;
	*) diag "clone: $CVERDICT"; diag_file clone "$d/clone-1.out"; diag_dmesg "$mark"; result fail "$name" ;;
	esac
}

# ---- main ----------------------------------------------------------------------
# The cases, as TEST:MODE:POLICY.
nth() { shift "$(($1 % ($# - 1) + 1))"; echo "$1"; } # i words... -> word i mod count
CASES= i=0
for t in $TESTS; do
	if [ $ONE_EACH = 1 ]; then
		CASES="$CASES $t:$(nth $i $MODES):$(nth $i $POLICIES)"
		i=$((i + 1))
		continue
	fi
	for m in $MODES; do for p in $POLICIES; do CASES="$CASES $t:$m:$p"; done; done
done
set -- $CASES
total=$#
echo "TAP version 13"
echo "1..$total"
role="one host"
if [ $TWO = 1 ]; then
	[ "$HOST" = 0 ] && role="two hosts: this is host 0 (originals)" || role="two hosts: this is host $HOST (clones)"
	wait_cmd 120 sh -c "cxlfork-ctl pool status --json | grep -q '\"hosts_in_use\": [2-9]'" ||
		echo "# the other host never attached"
fi
echo "# cxlfork process-state suite ($role): tests:$(echo $TESTS | sed 's/^/ /') modes: $MODES policies: $POLICIES"
set_now
T0=$NOW
for c in $CASES; do
	t=${c%%:*} p=${c##*:}
	m=${c#*:}
	m=${m%:*}
	if [ $TWO = 0 ]; then case_single "$t" "$m" "$p"
	elif [ "$HOST" = 0 ]; then case_host0 "$t" "$m" "$p"
	else case_host1 "$t" "$m" "$p"
	fi
done
set_now
[ $TWO = 0 ] || [ "$HOST" = 0 ] || echo "# $SAME_PID clones had their original's pid (its number on host 0)"
echo "# $N cases, $FAILED failed, in $(((NOW - T0) / 1000)) s"
[ $FAILED = 0 ]
