#!/bin/sh
# Runs in each demo guest (qemu/run --hosts 2): show this host's view of the
# shared pool once both hosts are attached.
me=$CXLFORK_HOST_ID
echo "host $me: CXL region bound as $CXLFORK_DAX, $(grep -m1 'CXL Window' /proc/iomem | sed 's/^ *//')"
i=0
until cxlfork-ctl pool status --json | grep -q '"hosts_in_use": 2'; do
	i=$((i + 1)); [ $i -gt 600 ] && { echo "host $me: peer never attached"; exit 1; }
	sleep 0.2
done
# Host 1 waits for host 0 to print first, so the two views do not interleave.
[ "$me" = 1 ] && sleep 2
echo "host $me: pool status (both hosts attached; each slot written by its own host):"
cxlfork-ctl pool status
