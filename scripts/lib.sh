# Common settings for cxlfork's scripts: sourced, not run.
#
# Every cached artefact (downloads, the kernel build, tools) lives under
# $CXLFORK_CACHE (default: .cache/ in the checkout, git-ignored).

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${CXLFORK_CACHE:-$ROOT/.cache}
mkdir -p "$CACHE"

# The Debian mirror the system already uses (platform.md: reuse it).
MIRROR=$(sed -n 's/^URIs: *\(http[^ ]*\/debian\)\/\?$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
MIRROR=${MIRROR:-http://deb.debian.org/debian}

LLVM_DIR=/usr/lib/llvm-19
export LIBCLANG_PATH=$LLVM_DIR/lib
export PATH=$CACHE/tools/bin:$HOME/.cargo/bin:$PATH

step() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
info() { printf '    %s\n' "$*" >&2; }
die()  { printf '\033[31mERROR: %s\033[0m\n' "$*" >&2; exit 1; }

# Run "$@" as a named step; on failure say which step failed. The step runs
# in a subshell with errexit on: a `cmd || die` context would switch errexit
# off inside the step's functions, so a failing command there would be missed.
run_step() {
	local name=$1 rc; shift
	step "$name"
	set +e
	(set -e; "$@")
	rc=$?
	set -e
	[ $rc -eq 0 ] || die "step '$name' failed (exit $rc)"
}

# The kernel source tree (extracted) and the kernel build directory.
# Their locations are written by bootstrap.sh / build-kernel.sh.
kernel_src()   { cat "$CACHE/kernel-src.path" 2>/dev/null || die "kernel source not prepared: run scripts/bootstrap.sh"; }
# The guest kernel flavour: distro (default) or debug (scripts/build-kernel.sh).
FLAVOUR=${CXLFORK_KERNEL:-distro}
kernel_build() { cat "$CACHE/kernel-build-${1:-$FLAVOUR}.path" 2>/dev/null || die "kernel (${1:-$FLAVOUR}) not built: run scripts/build-kernel.sh ${1:-$FLAVOUR}"; }
# Compiler settings of a flavour, for the kernel and its modules alike.
# (debug: the C side with clang, which Rust-enabled KASAN needs; GNU binutils
# as the distro flavour, which the x32 ABI needs.)
kernel_cc_flags() { [ "${1:-$FLAVOUR}" = debug ] && echo "CC=clang-19" || true; }
# Where a flavour's module, initramfs and logs go.
flavour_out() { echo "$ROOT/build/${1:-$FLAVOUR}"; }
rust_lib_src() { cat "$CACHE/rust-src.path" 2>/dev/null || die "rust-src not prepared: run scripts/bootstrap.sh"; }

# A private apt state for a Debian suite newer than the system's (trixie,
# trixie-backports), under .cache/: downloads only, never installs. The
# system's sources never see it: an install from trixie would replace the
# system libc.
papt_dir() { # suite
	case $1 in
		trixie-backports) echo "$CACHE/apt-trixie" ;;
		*) echo "$CACHE/apt-$1-main" ;;
	esac
}
papt_opts() { # suite
	local d
	d=$(papt_dir "$1")
	echo "-o Dir::Etc::SourceList=$d/sources.list -o Dir::Etc::SourceParts=$d/empty" \
	     "-o Dir::State::Lists=$d/lists -o Dir::Etc::Preferences=/dev/null" \
	     "-o Dir::Etc::PreferencesParts=$d/empty -o Dir::Cache=$d/cache" \
	     "-o APT::Sandbox::User=root"
}
papt_update() { # suite
	local d
	d=$(papt_dir "$1")
	mkdir -p "$d/lists/partial" "$d/cache/archives/partial" "$d/empty"
	echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR $1 main" > "$d/sources.list"
	if [ -z "$(ls "$d/lists" 2>/dev/null | grep -v partial)" ] || [ -n "${REFRESH:-}" ]; then
		# shellcheck disable=SC2046
		apt-get $(papt_opts "$1") update -qq
	fi
}
