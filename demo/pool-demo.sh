#!/bin/sh
# Runs in each demo guest (qemu/run --hosts 2, both attached to one pool).
# Host 0 initialises a function and checkpoints it into the pool; host 1
# finds the image in host 0's directory and decodes it from the pool.
me=$CXLFORK_HOST_ID
wait_for() { # what, command
	i=0
	until sh -c "$2" >/dev/null 2>&1; do
		i=$((i + 1)); [ $i -gt 900 ] && { echo "host $me: gave up waiting for $1"; exit 1; }
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
	echo "host 0: checkpointing pid $pid into the pool"
	cxlfork-ctl checkpoint --pid "$pid" --name func
	kill -USR1 "$pid"; sleep 0.5; tail -1 /tmp/func.out
	echo "host 0: (the original keeps running after the checkpoint)"
	cxlfork-ctl pool status
else
	wait_for "host 0's image" "cxlfork-ctl ls | grep -q ' func '"
	sleep 1
	echo "host 1: images in the pool, as seen from host 1:"
	cxlfork-ctl ls
	id=$(cxlfork-ctl ls --json | sed -n 's/.*"id": "\(0:[0-9]*\)".*/\1/p' | head -1)
	echo "host 1: decoding image $id from the pool (validated with the shared validator):"
	cxlfork-ctl inspect "$id" | head -30
fi
