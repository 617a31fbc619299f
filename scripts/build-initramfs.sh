#!/usr/bin/env bash
# Build the guest's base initramfs: busybox, the module, cxlfork-ctl, the
# kselftests and the guest init. qemu/run appends a per-run overlay to it.
source "$(dirname "$0")/lib.sh"
# scripts/build-initramfs.sh [distro|debug|bench]: the module of that kernel flavour.
FL=${1:-$FLAVOUR}
OUT=$ROOT/build
KO=$(flavour_out "$FL")/module/cxlfork.ko
STAGE=$(flavour_out "$FL")/initramfs
IMG=$(flavour_out "$FL")/initramfs.cpio.gz
[ -f "$KO" ] || die "cxlfork.ko ($FL) not built (make module)"
[ -x "$OUT/bin/cxlfork-ctl" ] || die "cxlfork-ctl not built (make tools)"

build() {
	rm -rf "$STAGE"
	mkdir -p "$STAGE"/{bin,sbin,dev,proc,sys,tmp,run,etc,root,cxlfork/bin,cxlfork/tests}
	install -m 0755 /bin/busybox "$STAGE/bin/busybox"
	ln -s busybox "$STAGE/bin/sh"
	install -m 0755 "$ROOT/qemu/guest-init" "$STAGE/init"
	install -m 0755 "$ROOT/qemu/cxl-region.sh" "$STAGE/cxlfork/cxl-region.sh"
	install -m 0755 "$ROOT/qemu/pmem-dax.sh" "$STAGE/cxlfork/pmem-dax.sh"
	install -m 0644 "$KO" "$STAGE/cxlfork/cxlfork.ko"
	install -m 0755 "$OUT/bin/cxlfork-ctl" "$OUT/bin/cxlfork-restore" "$OUT/bin/fork_like" "$OUT/bin/fork_like_rs" "$STAGE/cxlfork/bin/"
	if compgen -G "$OUT/tests/*_test" >/dev/null; then
		install -m 0755 "$OUT"/tests/*_test "$STAGE/cxlfork/tests/"
	fi
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$STAGE/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' > "$STAGE/etc/group"
	(cd "$STAGE" && find . | cpio -o -H newc --quiet -R 0:0 | gzip -1) > "$IMG.tmp"
	mv "$IMG.tmp" "$IMG"
	info "$(du -h "$IMG" | cut -f1) $IMG"
}
run_step "initramfs ($FL)" build
