#!/usr/bin/env bash
# Build guest root trees of real, dynamically linked Debian runtimes, for the
# real-runtime tests (qemu/run --root build/runtimes/NAME).
#
#   scripts/build-runtimes.sh [NAME...]     NAME: python3 perl node go criu
#                                           (default: all but criu)
#
# For each runtime: the bookworm .debs of the runtime and of every library
# package it depends on (Depends/PreDepends, first alternatives, lib*
# packages only) are downloaded with `apt-get download` into
# .cache/runtimes/debs/ (kept, reused), unpacked with `dpkg -x` into
# .cache/runtimes/unpacked/NAME/, and a minimal root is put together in
# build/runtimes/NAME/ with every file at its real path:
#   - the runtime's own files (runtime_files_NAME: tar paths and excludes);
#   - the shared-library closure of every ELF file in the tree (the
#     interpreter and its extension modules), found by walking DT_NEEDED
#     inside the unpacked .debs (never the host's libraries), with the
#     symlinks that lead to each library;
#   - /lib64/ld-linux-x86-64.so.2.
# A tree is rebuilt only when its .debs or this script changed.
# build/runtimes/tests/ gets the guest scripts and functions of tests/
# (qemu/run --include build/runtimes/tests).
#
# Adding a runtime: a runtime_pkgs_NAME variable (its root packages) and a
# runtime_files_NAME function, listed in ALL_RUNTIMES (or, for the bench's
# tools, BENCH_TREES); runtime_suite_NAME takes its packages from a newer
# Debian suite through a private apt state (scripts/lib.sh: papt_opts). go is different: its
# tree is one static program (tests/runtimes/gofunc.go) built here with
# Debian's Go toolchain (golang-1.19-go and -src, unpacked in the cache).
source "$(dirname "$0")/lib.sh"

ALL_RUNTIMES="python3 perl node go"
BENCH_TREES="criu"
RT_CACHE=$CACHE/runtimes
DEBS=$RT_CACHE/debs
OUT=$ROOT/build/runtimes
ARCH_LIB=usr/lib/x86_64-linux-gnu
APT_OPTS=	# the system's apt state, or a private one (runtime_suite_NAME)
mkdir -p "$DEBS" "$OUT"

# --- the runtimes ------------------------------------------------------------
# runtime_files_NAME prints "path" lines (relative to /) to copy from the
# unpacked tree and "-pattern" lines to exclude (tar --exclude patterns).

runtime_pkgs_python3="python3.11-minimal libpython3.11-minimal libpython3.11-stdlib"
runtime_files_python3() {
	echo usr/bin/python3.11
	echo usr/lib/python3.11
	echo etc/python3.11
	# Not needed by a program: tests, GUI, bundled wheels, the build config.
	local x
	for x in test tests idlelib tkinter turtledemo ensurepip 'config-3.11-*' \
		lib2to3/tests ctypes/test distutils/tests unittest/test sqlite3/test; do
		echo "-usr/lib/python3.11/$x"
	done
}

runtime_pkgs_perl="perl-base libperl5.36 perl-modules-5.36"
runtime_files_perl() {
	echo usr/bin/perl
	echo "$ARCH_LIB/perl-base"
	echo "$ARCH_LIB/perl/5.36"
	echo "$ARCH_LIB/perl/5.36.0"
	echo usr/share/perl/5.36
	echo usr/share/perl/5.36.0
	# Headers (C and h2ph), documentation, the CJK encodings, collation,
	# Berkeley DB, the toolchain and test modules, and the Unicode tables
	# perl-base already has.
	local x a=$ARCH_LIB/perl/5.36.0
	for x in "$a/"{CORE,asm,asm-generic,bits,gnu,linux,machine,sys,'*.ph',Devel/PPPort.pm} \
		"$a/"{auto/,}Encode/{JP,KR,CN,TW} "$a/"{auto/,}Unicode/Collate "$a/"{auto/,}DB_File{,.pm} \
		usr/share/perl/5.36.0/{pod,CPAN,CPAN.pm,ExtUtils,TAP,Test2,Test2.pm,Pod,perl5db.pl} \
		usr/share/perl/5.36.0/Module/CoreList* usr/share/perl/5.36.0/Unicode/Collate \
		usr/share/perl/5.36.0/unicore/{lib,To} \
		'*.pod'; do
		echo "-$x"
	done
}

# Debian's Node.js 18 (libnode108: libuv, V8, OpenSSL, ICU) and the JS
# modules Debian unbundled from it. Pinned to the newest version from a
# Debian archive: another repository's nodejs (NodeSource's) may be the
# candidate on a developer's machine.
debian_version() { apt-cache madison "$1" 2>/dev/null | awk -F'|' '$3 ~ /debian/ { gsub(/ /, "", $2); print $2; exit }'; }
runtime_pkgs_node="nodejs=$(debian_version nodejs) node-acorn node-cjs-module-lexer node-undici"
runtime_files_node() {
	echo usr/bin/node
	echo usr/share/nodejs
}

# CRIU, the bench's peer (make bench): trixie's criu 4.x, which knows 7.x's
# [vvar_vclock] (bookworm's 3.17 needs the vdso turned off). Its tree has
# trixie's libc: put it after any bookworm tree (glibc runs older programs).
runtime_pkgs_criu="criu"
runtime_suite_criu=trixie
runtime_files_criu() {
	echo usr/sbin/criu
}

# Go: the toolchain that builds gofunc (not part of the guest tree).
GO_PKGS="golang-1.19-go golang-1.19-src"

# --- packages ----------------------------------------------------------------

# The root packages and their library dependencies, recursively (packages
# named lib* or zlib*: what a DT_NEEDED entry can resolve to; no dpkg,
# debconf, tzdata...).
package_closure() { # pkgs...
	local todo=("$@") seen=" " p
	while [ ${#todo[@]} -gt 0 ]; do
		local next=()
		for p in "${todo[@]}"; do seen+="$p "; done
		# First alternative of each Depends/PreDepends; only library packages.
		while read -r p; do
			[[ $p == lib* || $p == zlib* ]] && [[ $seen != *" $p "* ]] && [[ " ${next[*]} " != *" $p "* ]] && next+=("$p")
		done < <(apt-cache $APT_OPTS depends --no-recommends --no-suggests --no-conflicts --no-breaks \
				--no-replaces --no-enhances "${todo[@]}" 2>/dev/null |
			awk '/^[^ ]/ { alt = 0; next }
			     /^ *\|?(Pre)?Depends:/ {
				 orline = ($1 ~ /^\|/); name = $2
				 if (!alt && name !~ /^</) print name
				 alt = orline; next }')
		todo=("${next[@]}")
	done
	echo "$seen" | tr ' ' '\n' | sed '/^$/d' | sort
}

# The .deb file names of the candidate versions (no download).
deb_files() { # pkgs...
	apt-get $APT_OPTS download --print-uris "$@" 2>/dev/null | awk '{ print $2 }' | sort
}

# Download the .debs (file names as deb_files prints them) not yet cached,
# each at its file's version (NAME_VERSION_ARCH.deb, an epoch's colon as
# %3a): the candidate may be another version, even one installed from
# another repository (NodeSource's nodejs), that apt cannot download.
fetch_debs() { # deb files...
	local f v missing=()
	for f in "$@"; do
		v=${f#*_}
		v=${v%_*}
		[ -f "$DEBS/$f" ] || missing+=("${f%%_*}=${v//%3a/:}")
	done
	[ ${#missing[@]} -gt 0 ] || return 0
	info "downloading: ${missing[*]}"
	local opt=()
	[ "$(id -u)" != 0 ] || opt=(-o APT::Sandbox::User=root)
	(cd "$DEBS" && apt-get $APT_OPTS "${opt[@]}" download -q "${missing[@]}" >/dev/null) ||
		die "apt-get download failed"
}

# Unpack the .debs into DIR (again) when their set changed (DIR.debs
# lists the set unpacked there).
unpack_debs() { # dir deb files...
	local u=$1 want d
	shift
	want=$(printf '%s\n' "$@")
	if [ ! -f "$u.debs" ] || [ "$(cat "$u.debs")" != "$want" ]; then
		rm -rf "$u" "$u.debs"
		mkdir -p "$u"
		for d in "$@"; do dpkg -x "$DEBS/$d" "$u"; done
		echo "$want" > "$u.debs"
	fi
}

# --- the root tree -------------------------------------------------------------

# ELF files of a tree (executables and shared objects).
elf_files() { # dir
	find "$1" -type f \( -path '*/bin/*' -o -path '*/sbin/*' -o -name '*.so' -o -name '*.so.*' \) -print0 |
		while IFS= read -r -d '' f; do
			[ "$(head -c4 "$f" | od -An -c | tr -d ' ')" = '177ELF' ] && echo "$f"
		done
}

needed() { readelf -d "$1" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; }

# Copy a path (relative to /) from the unpacked tree U into the tree T,
# following symlinks and copying their targets too.
copy_path() { # rel
	local rel=$1 t
	[ -e "$T/$rel" ] || [ -L "$T/$rel" ] && return 0
	[ -e "$U/$rel" ] || [ -L "$U/$rel" ] || die "$rel: not in the unpacked packages"
	mkdir -p "$T/$(dirname "$rel")"
	cp -a "$U/$rel" "$T/$rel"
	if [ -L "$U/$rel" ]; then
		t=$(readlink "$U/$rel")
		case $t in
			/*) t=${t#/} ;;
			*) t=$(dirname "$rel")/$t ;;
		esac
		copy_path "$(realpath -m -s --relative-to=/ "/$t")"
	fi
}

# The directory (relative to /) where the dynamic linker finds a soname.
LIB_DIRS="lib/x86_64-linux-gnu $ARCH_LIB lib usr/lib"
find_lib() { # soname
	local d
	for d in $LIB_DIRS; do
		if [ -e "$U/$d/$1" ]; then echo "$d/$1"; return 0; fi
	done
	return 1
}

build_tree() { # name
	local name=$1 pkgs_var=runtime_pkgs_$1
	[ -n "${!pkgs_var:-}" ] || die "unknown runtime $name (known: $ALL_RUNTIMES $BENCH_TREES)"
	local pkgs debs stamp=$OUT/.$name.stamp suite_var=runtime_suite_$1
	U=$RT_CACHE/unpacked/$name T=$OUT/$name APT_OPTS=
	if [ -n "${!suite_var:-}" ]; then
		papt_update "${!suite_var}"
		APT_OPTS=$(papt_opts "${!suite_var}")
	fi
	mapfile -t pkgs < <(package_closure ${!pkgs_var})
	mapfile -t debs < <(deb_files "${pkgs[@]}")
	[ ${#debs[@]} -eq ${#pkgs[@]} ] && [ ${#debs[@]} -gt 0 ] ||
		die "$name: no download candidate for some of: ${pkgs[*]} (apt-get update first?)"
	local want
	want=$(printf '%s\n' "${debs[@]}")
	if [ -d "$T" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ "$stamp" -nt "$0" ]; then
		info "$name: up to date ($(du -sh "$T" | cut -f1), ${#debs[@]} packages)"
		return 0
	fi
	fetch_debs "${debs[@]}"

	unpack_debs "$U" "${debs[@]}"

	rm -rf "$T" "$stamp"
	mkdir -p "$T"
	local paths=() excludes=() l
	while read -r l; do
		case $l in
			-*) excludes+=("--exclude=${l#-}") ;;
			*) paths+=("$l") ;;
		esac
	done < <("runtime_files_$name")
	tar -C "$U" -cf - "${excludes[@]}" "${paths[@]}" | tar -C "$T" -xf -

	# The shared-library closure: every ELF file's DT_NEEDED, resolved in
	# the unpacked packages, until nothing new is added.
	local done_libs=" " so f rel added=1 missing=()
	while [ $added = 1 ]; do
		added=0
		while read -r f; do
			while read -r so; do
				[[ $done_libs == *" $so "* ]] && continue
				done_libs+="$so "
				if rel=$(find_lib "$so"); then
					copy_path "$rel"; added=1
				else
					missing+=("$so (needed by ${f#"$T"/})")
				fi
			done < <(needed "$f")
		done < <(elf_files "$T")
	done
	[ ${#missing[@]} -eq 0 ] || die "$name: libraries not in the packages: ${missing[*]}"
	# The program interpreter, /lib64/ld-linux-x86-64.so.2: a link in
	# bookworm's libc6; trixie's (merged /usr) ships /usr/lib64's only.
	if [ -e "$U/lib64/ld-linux-x86-64.so.2" ]; then
		copy_path lib64/ld-linux-x86-64.so.2
	else
		copy_path usr/lib64/ld-linux-x86-64.so.2
		mkdir -p "$T/lib64"
		ln -sfn /usr/lib64/ld-linux-x86-64.so.2 "$T/lib64/ld-linux-x86-64.so.2"
	fi

	if declare -F "runtime_post_$name" >/dev/null; then "runtime_post_$name"; fi
	echo "$want" > "$stamp"
	info "$name: $(du -sh "$T" | cut -f1) in $(find "$T" -type f | wc -l) files ($(find "$T" -name '*.so*' -type f | wc -l) shared objects), from ${#debs[@]} packages"
}

# The guest side of the tests: scripts and functions, for --include.
stage_tests() {
	local t=$OUT/tests
	rm -rf "$t"; mkdir -p "$t"
	install -m 0755 "$ROOT/tests/runtime_test.sh" "$ROOT/tests/runtime_2host_test.sh" "$t/"
	install -m 0644 "$ROOT/tests/runtime_lib.sh" "$t/"
	install -m 0644 "$ROOT"/tests/runtimes/* "$t/"
}

# go: gofunc, static, built with Debian's toolchain, as the whole tree
# (build/runtimes/go/usr/local/bin/gofunc).
build_go() {
	local debs want U=$RT_CACHE/unpacked/go T=$OUT/go stamp=$OUT/.go.stamp
	mapfile -t debs < <(deb_files $GO_PKGS)
	[ ${#debs[@]} -eq 2 ] || die "go: no download candidate for $GO_PKGS (apt-get update first?)"
	want="$(printf '%s\n' "${debs[@]}")
$(sha256sum "$ROOT/tests/runtimes/gofunc.go" | cut -d' ' -f1)"
	if [ -x "$T/usr/local/bin/gofunc" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ "$stamp" -nt "$0" ]; then
		info "go: up to date"
		return 0
	fi
	fetch_debs "${debs[@]}"
	unpack_debs "$U" "${debs[@]}"
	rm -rf "$T" "$stamp"
	mkdir -p "$T/usr/local/bin"
	(cd "$ROOT/tests/runtimes" &&
		GOROOT=$U/usr/lib/go-1.19 GOCACHE=$RT_CACHE/gocache GOPATH=$RT_CACHE/gopath GO111MODULE=off \
		CGO_ENABLED=0 GOFLAGS=-trimpath "$U/usr/lib/go-1.19/bin/go" build -o "$T/usr/local/bin/gofunc" gofunc.go) ||
		die "go: building gofunc failed"
	echo "$want" > "$stamp"
	info "go: gofunc $(du -h "$T/usr/local/bin/gofunc" | cut -f1), $("$U/usr/lib/go-1.19/bin/go" version 2>/dev/null | cut -d' ' -f3)"
}

NAMES=("$@")
[ ${#NAMES[@]} -gt 0 ] || read -r -a NAMES <<< "$ALL_RUNTIMES"
for n in "${NAMES[@]}"; do
	if [ "$n" = go ]; then
		run_step "runtime root: go (gofunc)" build_go
	else
		run_step "runtime root: $n" build_tree "$n"
	fi
done
run_step "runtime tests" stage_tests
