#!/usr/bin/env bash
# Build the guest kernel (tinyconfig + kernel/cxlfork.config, Rust enabled).
#
# The build directory is keyed by kernel version and rustc version; a stamp
# holds the hash of the config fragment. With all three unchanged and a
# bzImage present, nothing is run at all.
source "$(dirname "$0")/lib.sh"

KSRC=$(kernel_src)
KV=$(cat "$CACHE/kernel-version")
RV=$(rustc --version | awk '{print $2}')
FRAG=$ROOT/kernel/cxlfork.config
KB=$CACHE/kbuild-$KV-rustc$RV
KEY="$KV rustc-$RV $(sha256sum "$FRAG" | cut -c1-16)"
JOBS=${JOBS:-$(( $(nproc) + 1 ))}
KMAKE=(make -C "$KSRC" O="$KB" ARCH=x86_64 RUST_LIB_SRC="$(rust_lib_src)" LLVM_IAS=0)

echo "$KB" > "$CACHE/kernel-build.path"
if [ -f "$KB/arch/x86/boot/bzImage" ] && [ "$(cat "$KB/.cxlfork-stamp" 2>/dev/null)" = "$KEY" ]; then
	info "kernel $KV cached in $KB (inputs unchanged: $KEY)"
	exit 0
fi
rm -f "$KB/.cxlfork-stamp"
mkdir -p "$KB"

configure() {
	"${KMAKE[@]}" -s tinyconfig
	KCONFIG_CONFIG=$KB/.config "$KSRC/scripts/kconfig/merge_config.sh" -m -O "$KB" "$KB/.config" "$FRAG" >/dev/null
	"${KMAKE[@]}" -s olddefconfig
	# Every option the fragment asks for must have survived olddefconfig.
	local bad=0 opt
	while read -r opt; do
		grep -qx "$opt" "$KB/.config" || { echo "    config: $opt requested but not set (missing dependency?)" >&2; bad=1; }
	done < <(grep -E '^CONFIG_[A-Z0-9_]+=' "$FRAG")
	while read -r opt; do
		grep -q "^$opt=" "$KB/.config" && { echo "    config: $opt must be off but is set" >&2; bad=1; }
	done < <(sed -n 's/^# \(CONFIG_[A-Z0-9_]*\) is not set$/\1/p' "$FRAG")
	[ $bad -eq 0 ]
}

rust_available() { "${KMAKE[@]}" -s rustavailable; }

build() {
	info "make -j$JOBS bzImage modules (about 5-6 min on 2 cores the first time; log: $KB/build.log)"
	local t0=$SECONDS
	if ! "${KMAKE[@]}" -j"$JOBS" bzImage modules > "$KB/build.log" 2>&1; then
		tail -40 "$KB/build.log" >&2
		return 1
	fi
	info "built in $((SECONDS - t0)) s: $KB/arch/x86/boot/bzImage"
}

run_step "kernel config: tinyconfig + kernel/cxlfork.config" configure
run_step "kernel: make rustavailable" rust_available
run_step "kernel: build $KV" build
echo "$KEY" > "$KB/.cxlfork-stamp"
