#!/usr/bin/env bash
# Build the user-space tools (static, for the busybox guest) and the kselftests.
source "$(dirname "$0")/lib.sh"
OUT=$ROOT/build
mkdir -p "$OUT/bin" "$OUT/tests"

tools() {
	# Static (crt-static) so they run in the busybox initramfs; the target is
	# given explicitly so proc-macros still build for the host.
	RUSTFLAGS='-C target-feature=+crt-static' cargo build --quiet --release \
		--target x86_64-unknown-linux-gnu --target-dir "$ROOT/target" -p cxlfork-ctl -p cxlfork --bins --example fork_like
	install -m 0755 "$ROOT/target/x86_64-unknown-linux-gnu/release/cxlfork-ctl" "$OUT/bin/"
	install -m 0755 "$ROOT/target/x86_64-unknown-linux-gnu/release/examples/fork_like" "$OUT/bin/fork_like_rs"
	# The restore stub: C, static, non-PIE (its code stays at 0x400000).
	gcc -static -no-pie -O2 -Wall -Werror -I"$ROOT/include/uapi" -o "$OUT/bin/cxlfork-restore" "$ROOT/tools/cxlfork-restore.c"
	# The C example of the fork-like API (run by the restore tests).
	gcc -static -O2 -Wall -Werror -I"$ROOT/include/uapi" -o "$OUT/bin/fork_like" "$ROOT/examples/fork_like.c"
}

kselftests() {
	make -s -C "$ROOT/tests" KSRC="$(kernel_src)" OUTPUT="$OUT/tests" ROOT="$ROOT" all
}

ps_tests() { make -s -C "$ROOT/tests/ps" OUTPUT="$OUT/ps" all; }

# The in-guest fuzzers (tests/fuzz/README.md), static, into build/fuzz.
fuzzers() {
	mkdir -p "$OUT/fuzz"
	gcc -static -O2 -g -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare \
		-I"$ROOT/include/uapi" -o "$OUT/fuzz/ioctl_fuzz" "$ROOT/tests/fuzz/ioctl_fuzz.c"
	RUSTFLAGS='-C target-feature=+crt-static' cargo build --quiet --release --target x86_64-unknown-linux-gnu \
		--manifest-path "$ROOT/tests/fuzz/image-fuzz/Cargo.toml" --target-dir "$ROOT/target/image-fuzz"
	install -m 0755 "$ROOT/target/image-fuzz/x86_64-unknown-linux-gnu/release/image_fuzz" "$OUT/fuzz/"
}

run_step "tools: cxlfork-ctl, cxlfork-restore (static)" tools
run_step "kselftests (against $(basename "$(kernel_src)"))" kselftests
run_step "process-state tests (tests/ps)" ps_tests
run_step "fuzzers (tests/fuzz)" fuzzers
