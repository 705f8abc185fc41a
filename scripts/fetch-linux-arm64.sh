#!/usr/bin/env bash
# Fetches Debian's arm64 kernel and busybox-static for the emulated arm64
# machine (tests/l1_arm64.rs) and lays them out under target/linux-arm64/:
#
#   target/linux-arm64/Image    the kernel (KVM built in), as QEMU's -kernel takes it
#   target/linux-arm64/busybox  busybox-static's arm64 binary, for the initramfs
#   target/linux-arm64/STAMP    what was fetched; a matching stamp makes a rerun a no-op
#
# Both packages are pinned by name, version and SHA-256 (see
# scripts/fetch-linux.sh for how to move the pins when Debian replaces a
# version). Needs `dpkg --add-architecture arm64` (scripts/test.sh does it).
#
#   bash scripts/fetch-linux-arm64.sh
set -euo pipefail
cd "$(dirname "$0")/.."

KERNEL_PKG=linux-image-6.1.0-56-arm64
KERNEL_VERSION=6.1.192-2
KERNEL_SHA256=6f4ed2d1cb9106bc977c2b1960008f175e2eed5740340634b7894e65ef5acc82
BUSYBOX_PKG=busybox-static
BUSYBOX_VERSION=1:1.35.0-4+deb12u1+b1
BUSYBOX_SHA256=732c9135564fc71337e0e05fb4da4d11e6c28c1834bce3e405e575afef2a52f5

OUT=target/linux-arm64
STAMP_TEXT="$KERNEL_PKG $KERNEL_VERSION $KERNEL_SHA256 $BUSYBOX_PKG $BUSYBOX_VERSION $BUSYBOX_SHA256"

die() {
    echo "fetch-linux-arm64: $*" >&2
    exit 1
}

if [ -f "$OUT/STAMP" ] && [ "$(cat "$OUT/STAMP")" = "$STAMP_TEXT" ] &&
    [ -f "$OUT/Image" ] && [ -x "$OUT/busybox" ]; then
    echo "fetch-linux-arm64: $KERNEL_PKG $KERNEL_VERSION already in $OUT"
    exit 0
fi

# fetch PKG VERSION SHA256: the arm64 .deb's path, downloaded and checked.
fetch() {
    local pkg="$1" version="$2" sha="$3" deb
    deb="$OUT/cache/${pkg}_${version//:/%3a}_arm64.deb"
    mkdir -p "$OUT/cache"
    if [ -f "$deb" ] && echo "$sha  $deb" | sha256sum --check --status; then
        echo "$deb"
        return
    fi
    rm -f "$deb"
    if ! apt-cache madison "$pkg:arm64" | awk -F' *[|] *' '{print $2}' | grep -qxF "$version"; then
        apt-get update -qq
        apt-cache madison "$pkg:arm64" | awk -F' *[|] *' '{print $2}' | grep -qxF "$version" ||
            die "Debian no longer offers $pkg:arm64 $version: update the pins in $0"
    fi
    (cd "$OUT/cache" && apt-get download -qq -o APT::Sandbox::User=root "$pkg:arm64=$version") ||
        die "apt-get download $pkg:arm64=$version failed"
    echo "$sha  $deb" | sha256sum --check --status || die "$deb does not have the pinned SHA-256 $sha"
    echo "$deb"
}

kernel_deb=$(fetch "$KERNEL_PKG" "$KERNEL_VERSION" "$KERNEL_SHA256")
busybox_deb=$(fetch "$BUSYBOX_PKG" "$BUSYBOX_VERSION" "$BUSYBOX_SHA256")
rm -f "$OUT/STAMP"
tree="$OUT/extract"
rm -rf "$tree"
mkdir -p "$tree"
dpkg-deb --fsys-tarfile "$kernel_deb" | tar -x -C "$tree" --wildcards './boot/vmlinuz-*'
# Debian's arm64 vmlinuz is the kernel's uncompressed Image.
image=$(echo "$tree"/boot/vmlinuz-*)
[ "$(head -c 60 "$image" | tail -c 4)" = "ARMd" ] || die "$image is not an arm64 Image"
cp "$image" "$OUT/Image"
dpkg-deb -x "$busybox_deb" "$tree/busybox"
cp "$tree/busybox/bin/busybox" "$OUT/busybox"
rm -rf "$tree"
echo "$STAMP_TEXT" >"$OUT/STAMP"
echo "fetch-linux-arm64: $KERNEL_PKG $KERNEL_VERSION -> $OUT/Image, $OUT/busybox"
