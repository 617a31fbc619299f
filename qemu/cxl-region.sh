#!/bin/sh
# Create a RAM region on the CXL Type-3 device and bind it as device-dax,
# from sysfs alone (no ndctl). Prints the dax device node on success.
# Usage: cxl-region.sh [SIZE_BYTES]   (default: the whole device)
set -e
C=/sys/bus/cxl/devices
fail() { echo "cxl-region: $*" >&2; exit 1; }

# The CXL topology is probed asynchronously: wait for the endpoint decoder.
i=0
while ! ls -d $C/endpoint*/decoder*.0 >/dev/null 2>&1; do
	i=$((i + 1)); [ $i -gt 200 ] && fail "no CXL endpoint decoder after 20 s (is the cxl-type3 device present?)"
	sleep 0.1
done
RD=decoder0.0
[ -e $C/$RD/create_ram_region ] || fail "root decoder $RD has no create_ram_region"
EP=$(basename "$(ls -d $C/endpoint* | tail -1)")
ED=$(basename "$(ls -d $C/$EP/decoder*.0 | head -1)")
MEM=$(basename "$(readlink -f $C/$EP/uport)")
SZ=${1:-$(cat $C/$MEM/ram/size)}
[ "$((SZ))" -gt 0 ] || fail "device $MEM has no volatile capacity"

R=$(cat $C/$RD/create_ram_region)
echo "$R" > $C/$RD/create_ram_region
echo 1 > $C/$R/interleave_ways
echo 256 > $C/$R/interleave_granularity
echo ram > $C/$ED/mode
echo "$SZ" > $C/$ED/dpa_size
echo "$SZ" > $C/$R/size
echo "$ED" > $C/$R/target0
echo 1 > $C/$R/commit || fail "commit of $R failed"
echo "$R" > /sys/bus/cxl/drivers/cxl_region/bind 2>/dev/null || true

i=0
while [ ! -c /dev/dax0.0 ]; do
	i=$((i + 1)); [ $i -gt 100 ] && fail "no /dev/dax0.0 after binding $R"
	sleep 0.1
done
echo /dev/dax0.0
