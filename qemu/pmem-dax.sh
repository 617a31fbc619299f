#!/bin/sh
# Set up the shared NVDIMM (qemu/run --pool-backend nvdimm) as device-dax,
# from sysfs alone (no ndctl). Prints the dax device node on success.
#
# QEMU's NVDIMM has no label area, so its region holds one namespace
# (namespaceR.0) spanning the whole device. Its region's dax seed is given
# that namespace, a 2 MiB alignment and its page map in RAM ("ram": every
# guest keeps its own struct pages; "pmem" would put them in the shared
# file, where guests would overwrite each other's), then probed: the first
# probe writes an info block at 4 KiB into the namespace and the data
# starts at 2 MiB. Every guest uses the same uuid and settings, so a guest
# that probes after another finds that guest's info block valid and uses
# it as it is; two guests probing at once write the same layout.
set -e
N=/sys/bus/nd/devices
UUID=c71f0a11-0000-4c3f-8000-00000000d1a0
ALIGN=2097152
fail() { echo "pmem-dax: $*" >&2; exit 1; }

# NFIT devices are probed asynchronously: wait for a region with a dax seed.
i=0
while :; do
	R=$(for r in $N/region*; do [ -e "$r/dax_seed" ] && basename "$r"; done | head -1)
	[ -n "$R" ] && break
	i=$((i + 1)); [ $i -gt 200 ] && fail "no NVDIMM region after 20 s (is the nvdimm device present?)"
	sleep 0.1
done
# The region's namespace and dax seed come from asynchronous probes that
# the boot does not wait for: wait_probe does (as ndctl does).
cat $N/ndbus*/wait_probe >/dev/null
NS=$(basename "$(ls -d $N/$R/namespace*.0 2>/dev/null | head -1)")
[ -n "$NS" ] && [ "$NS" != '*' ] || fail "region $R has no namespace"
D=$(cat $N/$R/dax_seed)
[ -n "$D" ] || fail "region $R has no dax seed"

echo "$UUID" > $N/$D/uuid
echo ram > $N/$D/mode
echo $ALIGN > $N/$D/align || fail "$D: alignment $ALIGN refused"
echo "$NS" > $N/$D/namespace || fail "$D: namespace $NS is claimed"
echo "$D" > /sys/bus/nd/drivers_probe
[ -e $N/$D/driver ] || fail "$D did not bind (see the kernel log)"

i=0
while :; do
	X=$(basename "$(ls -d $N/$D/dax*.* 2>/dev/null | head -1)")
	[ -n "$X" ] && [ -c "/dev/$X" ] && break
	i=$((i + 1)); [ $i -gt 100 ] && fail "no device-dax node under $D"
	sleep 0.1
done
echo "/dev/$X"
