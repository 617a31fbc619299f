#!/bin/sh
# Runs in each demo guest (qemu/run --hosts 2, both attached to one pool).
# Host 0 initialises a function and checkpoints it into the pool; host 1
# remote-forks clones of it, serves a request with each, and shows what
# each clone cost.
me=$CXLFORK_HOST_ID
CLONES=3
wait_for() { # what, command
	i=0
	until sh -c "$2" >/dev/null 2>&1; do
		i=$((i + 1)); [ $i -gt 300 ] && { echo "host $me: gave up waiting for $1"; cat /tmp/clones/* 2>/dev/null; exit 1; }
		sleep 0.2
	done
}
echo "host $me: CXL region bound as $CXLFORK_DAX, $(grep -m1 'CXL Window' /proc/iomem | sed 's/^ *//')"
wait_for "the peer host" "cxlfork-ctl pool status --json | grep -q '\"hosts_in_use\": 2'"
if [ "$me" = 0 ]; then
	func > /tmp/func.out &
	pid=$!
	wait_for "the function to initialise" "grep -q initialised /tmp/func.out"
	cat /tmp/func.out
	echo "host 0: checkpointing the warm function (pid $pid) into the pool"
	cxlfork-ctl checkpoint --pid "$pid" --name func
	cxlfork-ctl ls
	# Keep the image until host 1's clones are gone (their leases say so).
	wait_for "host 1's clones" "cxlfork-ctl ls --json | grep -q '\"leases\": 1'"
	id=$(cxlfork-ctl ls --json | sed -n 's/.*"id": "\(0:[0-9]*\)".*/\1/p' | head -1)
	echo "host 0: host 1 holds a lease on image $id; deleting it now is refused:"
	cxlfork-ctl rm "$id" 2>&1 | sed 's/^/  /'
	# Host 1 keeps its clones until it sees this marker image (a
	# checkpoint of a sleep): else they could be gone before the refusal.
	sleep 1000 </dev/null >/dev/null 2>&1 &
	marker=$(cxlfork-ctl checkpoint --pid $! --name rm-tried --kill --json | sed -n 's/.*"id": "\([0-9:]*\)".*/\1/p')
	wait_for "host 1's clones to exit" "cxlfork-ctl rm $id"
	echo "host 0: host 1's clones are gone (their leases with them): image $id deleted"
	cxlfork-ctl rm "$marker" >/dev/null
else
	# The function's files are on every host (as its container image would
	# provide them, with the same mtime): a restore reopens its executable
	# and any file it still has open or mapped here.
	func --install
	wait_for "host 0's image" "cxlfork-ctl ls | grep -q ' func '"
	id=$(cxlfork-ctl ls --json | sed -n 's/.*"id": "\(0:[0-9]*\)".*/\1/p' | head -1)
	size=$(cxlfork-ctl ls --json | sed -n 's/.*"size": \([0-9]*\).*/\1/p' | head -1)
	echo "host 1: remote-forking $CLONES clones of image $id ($((size / 1024)) KiB in the pool) here"
	# The clones write to files (so the pid list can be captured here).
	cxlfork-ctl restore "$id" --count $CLONES --json --output /tmp/clones > /tmp/pids.json
	pids=$(sed -n 's/.*"pids":\[\(.*\)\].*/\1/p' /tmp/pids.json | tr ',' ' ')
	# A request only once each has become a clone (the stub would die of it).
	for p in $pids; do wait_for "clone $p" "cxlfork-ctl stat $p"; done
	for p in $pids; do kill -USR1 "$p"; done
	for n in $(seq 1 $CLONES); do wait_for "clone $n's answer" "grep -q served /tmp/clones/clone-$n.out"; done
	echo "host 1: what each clone cost (restore time, local memory; the function holds 8 MiB of decoded model):"
	for p in $pids; do cxlfork-ctl stat "$p" | sed 's/^/  /'; done
	for n in $(seq 1 $CLONES); do sed "s/^/  clone-$n output: /" /tmp/clones/clone-$n.out; done
	wait_for "host 0's refused delete" "cxlfork-ctl ls | grep -q ' rm-tried '"
	for p in $pids; do kill "$p"; done
fi
