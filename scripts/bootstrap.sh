#!/usr/bin/env bash
# Install and download everything cxlfork needs to build, on a fresh Debian 12
# machine. Idempotent: each step checks whether it is already done.
#
#   - bookworm packages (build tools, libclang 19) and QEMU >= 8 from
#     bookworm-backports (bookworm's 7.2 has no volatile CXL memory);
#   - linux-source-7.3 and the rust-src matching `rustc --version`, from
#     trixie-backports through a PRIVATE apt state (never the system's sources:
#     an install from trixie would replace the system libc);
#   - bindgen-cli, built with cargo into the cache.
source "$(dirname "$0")/lib.sh"

APT_PKGS=(bc flex bison libelf-dev cpio busybox-static libclang-19-dev clang-19 llvm-19 lld-19 xz-utils make gcc python3 jq)

need_root() {
	if [ "$(id -u)" -ne 0 ]; then
		command -v sudo >/dev/null || die "installing packages needs root (or sudo)"
		SUDO=sudo
	else
		SUDO=
	fi
}

apt_packages() {
	local missing=()
	for p in "${APT_PKGS[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	if [ ${#missing[@]} -eq 0 ]; then info "all present"; return 0; fi
	need_root
	info "installing: ${missing[*]}"
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
}

qemu_version_ok() {
	command -v qemu-system-x86_64 >/dev/null || return 1
	local v; v=$(qemu-system-x86_64 --version | sed -n 's/.*version \([0-9]*\)\..*/\1/p' | head -1)
	[ "${v:-0}" -ge 8 ]
}

qemu() {
	if qemu_version_ok; then info "$(qemu-system-x86_64 --version | head -1)"; return 0; fi
	need_root
	local src=/etc/apt/sources.list.d/bookworm-backports.sources
	if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
		info "adding bookworm-backports (pinned low by default; safe)"
		printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
			"$MIRROR" | $SUDO tee "$src" >/dev/null
	fi
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq -t bookworm-backports qemu-system-x86 >/dev/null
	qemu_version_ok || die "QEMU >= 8 still not available after install"
	info "$(qemu-system-x86_64 --version | head -1)"
}

downloads() {
	local dl=$CACHE/downloads rv ver deb
	mkdir -p "$dl"
	rv=$(rustc --version | awk '{print $2}')
	# rust-src for exactly this rustc.
	if [ ! -d "$CACHE/rust-src-$rv/usr/lib/rustlib/src/rust/library" ]; then
		papt_update trixie-backports
		# shellcheck disable=SC2046
		ver=$(apt-cache $(papt_opts trixie-backports) madison rust-src | awk -F'|' '{gsub(/ /,"",$2); print $2}' | grep "^${rv}+" | head -1)
		[ -n "$ver" ] || die "no rust-src ${rv}+* in trixie-backports (rustc is $rv)"
		info "rust-src $ver"
		# shellcheck disable=SC2046
		(cd "$dl" && apt-get $(papt_opts trixie-backports) download -qq "rust-src=$ver")
		deb=$(ls "$dl"/rust-src_*"${rv}"*.deb | head -1)
		rm -rf "$CACHE/rust-src-$rv.tmp" && dpkg -x "$deb" "$CACHE/rust-src-$rv.tmp"
		mv "$CACHE/rust-src-$rv.tmp" "$CACHE/rust-src-$rv"
	fi
	echo "$CACHE/rust-src-$rv/usr/lib/rustlib/src/rust/library" > "$CACHE/rust-src.path"
	info "rust-src for rustc $rv ready"

	# linux-source-7.3: the newest the mirror offers, downloaded once.
	deb=$(ls "$dl"/linux-source-7.3_*.deb 2>/dev/null | sort -V | tail -1 || true)
	if [ -z "$deb" ]; then
		papt_update trixie-backports
		# shellcheck disable=SC2046
		(cd "$dl" && apt-get $(papt_opts trixie-backports) download -qq linux-source-7.3)
		deb=$(ls "$dl"/linux-source-7.3_*.deb | sort -V | tail -1)
	fi
	info "$(basename "$deb")"
	local kv; kv=$(basename "$deb" | sed 's/^linux-source-7.3_\([^_]*\)_.*/\1/')
	local ksrc=$CACHE/linux-$kv
	if [ ! -f "$ksrc/Makefile" ]; then
		info "extracting kernel source into $ksrc"
		local tmp=$CACHE/linux-$kv.tmp
		rm -rf "$tmp" && mkdir -p "$tmp"
		dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" --wildcards './usr/src/linux-source-7.3.tar.xz'
		tar -xJf "$tmp/usr/src/linux-source-7.3.tar.xz" -C "$tmp"
		rm -rf "$ksrc" && mv "$tmp/linux-source-7.3" "$ksrc" && rm -rf "$tmp"
	fi
	echo "$ksrc" > "$CACHE/kernel-src.path"
	echo "$kv" > "$CACHE/kernel-version"

	# Debian's own .config for this kernel (from its amd64 headers package,
	# 2 MB): the distro flavour is checked against it.
	if [ ! -f "$CACHE/debian-kernel.config" ]; then
		papt_update trixie-backports
		local pkg
		# shellcheck disable=SC2046
		pkg=$(apt-cache $(papt_opts trixie-backports) search '^linux-headers-7\.3\..*-amd64$' | awk '{print $1}' | grep -v -e cloud -e rt- | sort -V | tail -1)
		[ -n "$pkg" ] || die "no linux-headers-7.3.*-amd64 in trixie-backports"
		info "$pkg (Debian's kernel config)"
		# shellcheck disable=SC2046
		(cd "$dl" && apt-get $(papt_opts trixie-backports) download -qq "$pkg")
		rm -rf "$CACHE/deb-headers.tmp" && dpkg -x "$(ls "$dl/${pkg}"_*.deb | tail -1)" "$CACHE/deb-headers.tmp"
		cp "$(find "$CACHE/deb-headers.tmp" -name .config | head -1)" "$CACHE/debian-kernel.config"
		rm -rf "$CACHE/deb-headers.tmp"
	fi
}

bindgen() {
	if [ -x "$CACHE/tools/bin/bindgen" ]; then info "$("$CACHE/tools/bin/bindgen" --version)"; return 0; fi
	info "cargo install bindgen-cli 0.73.2 (a few minutes, once)"
	cargo install --quiet --locked bindgen-cli --version 0.73.2 --root "$CACHE/tools"
}

run_step "system packages (bookworm)" apt_packages
run_step "QEMU >= 8 (bookworm-backports)" qemu
run_step "trixie-backports downloads: rust-src, linux-source-7.3 (private apt state)" downloads
run_step "bindgen-cli" bindgen
