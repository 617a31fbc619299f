# Helpers of the real-runtime tests (runtime_test.sh, runtime_2host_test.sh),
# sourced after setting BIN to the directory holding the functions. POSIX
# sh (busybox). KTAP results go to stdout; diagnostics ("# ...") to stderr
# (qemu/run puts both in the same stream), so that $(...) captures only
# what a helper means to return.
RT=${RT_DIR:-/tmp/rt}
export RT_DIR=$RT
mkdir -p "$RT"
POLICIES=${RT_POLICIES:-mow moa ht}
# Hang detectors, not timing assertions: the debug kernel (KASAN, lockdep)
# under TCG takes ~115 s to warm python3 up and ~110 s for a MoW clone's
# first request on a 2-core host (distro kernel: ~10 s and ~5 s), and CI
# machines can be slower still.
TIMEOUT=${RT_TIMEOUT:-900}
CLONE_TIMEOUT=${RT_CLONE_TIMEOUT:-600}
RUNTIMES_ALL=${RT_RUNTIMES:-python3 perl pythreads node go}
N=0 FAILED=0

ok() { N=$((N + 1)); echo "ok $N - $*"; }
not_ok() { N=$((N + 1)); FAILED=$((FAILED + 1)); echo "not ok $N - $*"; }
diag() { echo "# $*" >&2; }
diag_file() { [ -s "$1" ] && tail -n "${2:-15}" "$1" | sed 's/^/#   /' >&2; return 0; }
# The kernel log since mark_kernel_log.
mark_kernel_log() { KLOG0=$(dmesg | wc -l); }
diag_kernel() { dmesg | tail -n +$((${KLOG0:-0} + 1)) | tail -n "${1:-10}" | sed 's/^/#   kernel: /' >&2; }
# What a process that does not answer is doing: state, CPU time, where it
# sleeps, its signals, and (a clone) its tiering counters, twice 1 s apart.
diag_proc() {
	for _k in 1 2; do
		[ -r "/proc/$1/stat" ] || { diag "pid $1: gone"; return 0; }
		diag "pid $1: $(cut -d' ' -f3,14,15 "/proc/$1/stat" | awk '{ printf "state %s, utime %s stime %s ticks", $1, $2, $3 }'), wchan $(cat "/proc/$1/wchan" 2>/dev/null), syscall $(cut -d' ' -f1-3 "/proc/$1/syscall" 2>/dev/null)"
		diag "pid $1: $(grep -E '^(SigPnd|ShdPnd|SigBlk|SigCgt)' "/proc/$1/status" | tr -s ' \t' ' ' | tr '\n' ' ')"
		cxlfork-ctl stat --json "$1" 2> /dev/null | tr -d ' \n' | sed 's/^/#   stat: /' >&2 && echo >&2
		[ $_k = 2 ] || sleep 1
	done
}
count_words() { echo $#; }
now_ms() { awk '{ printf "%d\n", $1 * 1000 }' /proc/uptime; }

interp() {
	case $1 in
	python3|pythreads) echo /usr/bin/python3.11 ;;
	perl) echo /usr/bin/perl ;;
	node) echo /usr/bin/node ;;
	go) echo /usr/local/bin/gofunc ;;
	esac
}
# pythreads: pyfunc.py with a pool of 4 worker threads and 2 background
# threads (7 threads in all). go: the program is the function.
function_script() {
	case $1 in
	python3) echo "$BIN/pyfunc.py" ;;
	pythreads) echo "$BIN/pythreads.py" ;;
	perl) echo "$BIN/plfunc.pl" ;;
	node) echo "$BIN/nodefunc.js" ;;
	esac
}
runtime_present() { [ -x "$(interp "$1")" ] && { [ "$1" = go ] || [ -f "$(function_script "$1")" ]; }; }

# A process that exists and is not a zombie.
alive() {
	[ -r "/proc/$1/stat" ] || return 1
	case $(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1) in
		Z|X|"") return 1 ;;
	esac
}

# wait_until SECS CMD...: run CMD every 0.2 s until it succeeds.
wait_until() {
	_limit=$(($1 * 5)) _i=0
	shift
	until "$@"; do
		_i=$((_i + 1))
		[ $_i -lt $_limit ] || return 1
		sleep 0.2
	done
}

stop_process() {
	kill "$1" 2>/dev/null
	wait_until 10 eval "! alive $1" || kill -9 "$1" 2>/dev/null
}

# start_function RT: start the function of runtime RT in the background,
# output to $RT/RT.out, and wait for "ready <pid>". Sets FPID.
ready_or_dead() { grep -q '^ready ' "$2" 2>/dev/null || ! alive "$1"; }
start_function() {
	FPID=
	_out=$RT/$1.out
	_t0=$(now_ms)
	# shellcheck disable=SC2046
	"$(interp "$1")" $(function_script "$1") > "$_out" 2>&1 < /dev/null &
	_p=$!
	if wait_until "$TIMEOUT" ready_or_dead $_p "$_out" && grep -q "^ready $_p\$" "$_out"; then
		FPID=$_p
		grep '^#' "$_out" >&2
		diag "$1: ready after $(($(now_ms) - _t0)) ms; $(grep -E '^(VmRSS|VmHWM)' /proc/$_p/status | tr -s ' \t' ' ' | tr '\n' ' ')"
		return 0
	fi
	diag "$1: the function did not become ready (pid $_p $(alive $_p && echo alive || echo dead))"
	diag_file "$_out"
	stop_process $_p
	return 1
}

# checkpoint_function RT PID NAME: checkpoint PID by pid; sets ID.
checkpoint_function() {
	ID=
	_j=$RT/$1.ckpt.json
	mark_kernel_log
	if ! cxlfork-ctl checkpoint --pid "$2" --name "$3" --json > "$_j" 2> "$_j.err"; then
		diag "$1: cxlfork-ctl checkpoint --pid $2 failed:"
		diag_file "$_j.err"
		diag_kernel
		return 1
	fi
	ID=$(sed -n 's/.*"id": "\([0-9]*:[0-9]*\)".*/\1/p' "$_j")
	diag "$1: image $ID: $(sed -n 's/.*"pages": \([0-9]*\).*/\1/p' "$_j") pages, $(($(sed -n 's/.*"size": \([0-9]*\).*/\1/p' "$_j") >> 20)) MiB of pool, $(($(sed -n 's/.*"duration_ns": \([0-9]*\).*/\1/p' "$_j") / 1000000)) ms"
	[ -n "$ID" ] || { diag "$1: no image id in:"; diag_file "$_j"; return 1; }
	alive "$2" || { diag "$1: the original did not survive its checkpoint"; return 1; }
}

# request PID N [SECS]: send request N (one SIGUSR1), wait for its answer
# (up to SECS, default $TIMEOUT) and print its digest. Fails if the process
# dies or does not answer.
result_or_dead() { grep -q "^result $2 " "$RT/$1.result" 2>/dev/null || ! alive "$1"; }
request() {
	_t0=$(now_ms)
	kill -USR1 "$1" || return 1
	if ! wait_until "${3:-$TIMEOUT}" result_or_dead "$1" "$2"; then
		diag "pid $1: no answer to request $2 in ${3:-$TIMEOUT} s"
		diag_proc "$1"
		return 1
	fi
	_d=$(sed -n "s/^result $2 //p" "$RT/$1.result" 2>/dev/null | head -n 1)
	if [ -z "$_d" ]; then
		diag "pid $1 died before answering request $2"
		return 1
	fi
	diag "pid $1: request $2 answered in $(($(now_ms) - _t0)) ms: $_d"
	echo "$_d"
}

# original_answers RT PID: requests 1..3 to the original; sets EXPECT to
# their digests ("d1 d2 d3").
original_answers() {
	EXPECT=
	for _n in 1 2 3; do
		_d=$(request "$2" $_n) || { EXPECT=; diag_file "$RT/$1.out"; return 1; }
		EXPECT="$EXPECT $_d"
	done
	EXPECT=${EXPECT# }
}

nth() { shift "$1"; echo "$1"; }
# Compare a digest with the expected one (which may be a prefix of it).
same_digest() { # expected got
	[ -n "$2" ] && [ "$(echo "$2" | cut -c1-${#1})" = "$1" ]
}

# clone_requests RT POLICY ID "d1 d2 d3": restore one clone of image ID
# under POLICY, wait until it is a clone (cxlfork-ctl stat succeeds), send
# it requests 1, 2, 3 and compare its digests with the original's. Two
# results: request 1, requests 2 and 3. The clone is killed afterwards.
clone_requests() {
	_rt=$1 _pol=$2 _id=$3 _exp=$4
	_dir=$RT/$_rt-$_pol-clone
	_what="${TAG:-}$_rt: $_pol clone"
	rm -rf "$_dir"
	mark_kernel_log
	if ! cxlfork-ctl restore "$_id" --policy "$_pol" --output "$_dir" --json > "$_dir.json" 2> "$_dir.err"; then
		diag "$_what: cxlfork-ctl restore $_id --policy $_pol failed:"
		diag_file "$_dir.err"
		not_ok "$_what answers request 1 like the original"
		not_ok "$_what answers requests 2 and 3 like the original"
		return
	fi
	_cp=$(sed -n 's/.*"pids":\[\([0-9]*\).*/\1/p' "$_dir.json")
	if ! wait_until "$CLONE_TIMEOUT" eval "cxlfork-ctl stat $_cp > /dev/null 2>&1 || ! alive $_cp" ||
		! cxlfork-ctl stat "$_cp" > "$_dir.stat" 2>&1; then
		if alive "$_cp"; then diag "$_what: pid $_cp never became a clone"
		else diag "$_what: pid $_cp died during its restore"; fi
		diag_file "$_dir/clone-1.out"
		diag_kernel
		not_ok "$_what answers request 1 like the original # the clone died or never became one"
		not_ok "$_what answers requests 2 and 3 like the original # the clone died or never became one"
		stop_process "$_cp"
		return
	fi
	diag "$(head -n 1 "$_dir.stat")"
	_d1=$(request "$_cp" 1 "$CLONE_TIMEOUT")
	if same_digest "$(nth 1 $_exp)" "$_d1"; then
		ok "$_what answers request 1 like the original"
	else
		diag "$_what: request 1: expected $(nth 1 $_exp), got ${_d1:-nothing} (pid $_cp $(alive "$_cp" && echo alive || echo dead))"
		diag_file "$_dir/clone-1.out"
		diag_kernel
		not_ok "$_what answers request 1 like the original"
	fi
	_ok=1
	for _n in 2 3; do
		_d=$(request "$_cp" $_n "$CLONE_TIMEOUT")
		same_digest "$(nth $_n $_exp)" "$_d" && continue
		diag "$_what: request $_n: expected $(nth $_n $_exp), got ${_d:-nothing}"
		_ok=0
		break
	done
	if [ $_ok = 1 ]; then
		ok "$_what answers requests 2 and 3 like the original"
		cxlfork-ctl stat "$_cp" 2>&1 | sed 's/^/#   /' >&2
	else
		diag_file "$_dir/clone-1.out"
		diag_kernel
		not_ok "$_what answers requests 2 and 3 like the original"
	fi
	stop_process "$_cp"
}
