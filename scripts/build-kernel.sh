#!/usr/bin/env bash
# Build a guest kernel flavour (Rust enabled):
#
#   scripts/build-kernel.sh [distro|debug|bench]   (default: distro)
#
#   distro  tinyconfig + kernel/base.config + kernel/distro.config, gcc: a
#           kernel whose process and security semantics are Debian's own
#           (every line of distro.config is checked against Debian's .config)
#   debug   the same + kernel/debug.config (lockdep, KASAN, kmemleak, kfence,
#           DEBUG_VM, page-table check...), built with clang (Rust + KASAN
#           needs CC_IS_CLANG)
#   bench   distro + kernel/bench.config (what CRIU needs: make bench runs it
#           beside cxlfork)
#
# The build directory is keyed by flavour, kernel version and rustc version;
# a stamp holds the hash of the fragments. With all unchanged and a bzImage
# present, nothing is run at all.
source "$(dirname "$0")/lib.sh"

FLAVOUR=${1:-distro}
case $FLAVOUR in distro|debug|bench) ;; *) die "unknown kernel flavour '$FLAVOUR' (distro, debug or bench)" ;; esac
KSRC=$(kernel_src)
KV=$(cat "$CACHE/kernel-version")
RV=$(rustc --version | awk '{print $2}')
FRAGS=("$ROOT/kernel/base.config" "$ROOT/kernel/distro.config")
[ "$FLAVOUR" = debug ] && FRAGS+=("$ROOT/kernel/debug.config")
[ "$FLAVOUR" = bench ] && FRAGS+=("$ROOT/kernel/bench.config")
KB=$CACHE/kbuild-$FLAVOUR-$KV-rustc$RV
KEY="$FLAVOUR $KV rustc-$RV $(cat "${FRAGS[@]}" | sha256sum | cut -c1-16)"
JOBS=${JOBS:-$(( $(nproc) + 1 ))}
KMAKE=(make -C "$KSRC" O="$KB" ARCH=x86_64 RUST_LIB_SRC="$(rust_lib_src)" $(kernel_cc_flags "$FLAVOUR"))

echo "$KB" > "$CACHE/kernel-build-$FLAVOUR.path"
if [ -f "$KB/arch/x86/boot/bzImage" ] && [ "$(cat "$KB/.cxlfork-stamp" 2>/dev/null)" = "$KEY" ]; then
	info "kernel ($FLAVOUR) cached in $KB (inputs unchanged: $KEY)"
	exit 0
fi
rm -f "$KB/.cxlfork-stamp"
mkdir -p "$KB"

# Debian's own .config (from linux-headers, fetched by bootstrap.sh): every
# option distro.config sets must be set the same way there.
distro_check() {
	local deb=$CACHE/debian-kernel.config bad=0 line opt
	[ -f "$deb" ] || die "Debian's kernel config not downloaded: run scripts/bootstrap.sh"
	while read -r line; do
		if [[ $line =~ ^(CONFIG_[A-Z0-9_]+)= ]]; then
			grep -qxF "$line" "$deb" || { echo "    distro.config: '$line' but Debian has '$(grep -E "^(# )?${BASH_REMATCH[1]}[= ]" "$deb")'" >&2; bad=1; }
		elif [[ $line =~ ^#\ (CONFIG_[A-Z0-9_]+)\ is\ not\ set ]]; then
			opt=${BASH_REMATCH[1]}
			grep -q "^$opt=" "$deb" && { echo "    distro.config: $opt off but Debian has it on" >&2; bad=1; }
		fi
	done < "$ROOT/kernel/distro.config"
	[ $bad -eq 0 ]
}

configure() {
	"${KMAKE[@]}" -s tinyconfig
	KCONFIG_CONFIG=$KB/.config "$KSRC/scripts/kconfig/merge_config.sh" -m -O "$KB" "$KB/.config" "${FRAGS[@]}" >/dev/null
	"${KMAKE[@]}" -s olddefconfig
	# Every option the fragments ask for (a later fragment overrides an
	# earlier one) must have survived olddefconfig.
	local bad=0 line opt
	declare -A want=()
	while read -r line; do
		if [[ $line =~ ^(CONFIG_[A-Z0-9_]+)= ]]; then want[${BASH_REMATCH[1]}]=$line
		elif [[ $line =~ ^#\ (CONFIG_[A-Z0-9_]+)\ is\ not\ set ]]; then want[${BASH_REMATCH[1]}]=off; fi
	done < <(cat "${FRAGS[@]}")
	for opt in "${!want[@]}"; do
		if [ "${want[$opt]}" = off ]; then
			grep -q "^$opt=" "$KB/.config" && { echo "    config: $opt must be off but is set" >&2; bad=1; }
		else
			grep -qxF "${want[$opt]}" "$KB/.config" || { echo "    config: ${want[$opt]} requested but not set (missing dependency?)" >&2; bad=1; }
		fi
	done
	[ $bad -eq 0 ]
}

rust_available() { "${KMAKE[@]}" -s rustavailable; }

build() {
	info "make -j$JOBS bzImage modules ($FLAVOUR: 6-15 min on 2 cores the first time; log: $KB/build.log)"
	local t0=$SECONDS
	if ! "${KMAKE[@]}" -j"$JOBS" bzImage modules > "$KB/build.log" 2>&1; then
		tail -40 "$KB/build.log" >&2
		return 1
	fi
	info "built in $((SECONDS - t0)) s: $KB/arch/x86/boot/bzImage"
}

run_step "kernel config: distro.config matches Debian's kernel" distro_check
run_step "kernel config ($FLAVOUR): tinyconfig + ${FRAGS[*]##*/}" configure
run_step "kernel ($FLAVOUR): make rustavailable" rust_available
run_step "kernel ($FLAVOUR): build $KV" build
echo "$KEY" > "$KB/.cxlfork-stamp"
