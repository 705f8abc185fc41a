#!/usr/bin/env bash
# Fetches Debian's amd64 kernel for the emulated-machine tests (tests/emulated/)
# and lays it out under target/linux/:
#
#   target/linux/vmlinux        the ELF kernel (PVH entry), from the package's bzImage
#   target/linux/modules/*.ko   the modules the tests load, uncompressed
#   target/linux/busybox        busybox-static's binary, for initramfs images
#   target/linux/STAMP          what was fetched; a matching stamp makes a rerun a no-op
#
# The package is pinned by name, version and SHA-256: a kernel nobody chose
# never reaches the tests. When Debian drops this version (security updates
# replace it), the script fails and says so; pick the new one with
# `apt-cache depends linux-image-amd64` and update the three values below.
#
#   bash scripts/fetch-linux.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PKG=linux-image-6.1.0-56-amd64
VERSION=6.1.192-2
SHA256=a86e2049672f52354c4536a089203b6c82639420424d31c91cf31a181fd4d8f1
# Dependencies first: an initramfs insmods them in this order.
MODULES="virtio_ring virtio virtio_mmio virtio_blk virtio_console virtio-rng irqbypass kvm ccp kvm-amd"

OUT=target/linux
DEB="$OUT/cache/${PKG}_${VERSION}_amd64.deb"
STAMP_TEXT="$PKG $VERSION $SHA256 modules: $MODULES"

die() {
    echo "fetch-linux: $*" >&2
    exit 1
}

if [ -f "$OUT/STAMP" ] && [ "$(cat "$OUT/STAMP")" = "$STAMP_TEXT" ] &&
    [ -f "$OUT/vmlinux" ] && [ -x "$OUT/busybox" ]; then
    echo "fetch-linux: $PKG $VERSION already in $OUT"
    exit 0
fi
for tool in apt-get dpkg-deb xz readelf; do
    command -v "$tool" >/dev/null || die "$tool is missing (scripts/test.sh installs it)"
done

# apt-cache show exits 0 for a version it does not know; madison lists them.
offered() {
    apt-cache madison "$PKG" | awk -F' *[|] *' '{print $2}' | grep -qxF "$VERSION"
}

fetch_deb() {
    mkdir -p "$OUT/cache"
    if [ -f "$DEB" ] && echo "$SHA256  $DEB" | sha256sum --check --status; then
        return
    fi
    rm -f "$DEB"
    if ! offered; then
        apt-get update -qq
        offered || die "Debian no longer offers $PKG $VERSION.
Pin the current kernel: \`apt-cache depends linux-image-amd64\` names the package,
\`apt-cache show PACKAGE | grep -E '^(Version|SHA256)'\` its version and hash;
update PKG, VERSION and SHA256 in scripts/fetch-linux.sh."
    fi
    (cd "$OUT/cache" && apt-get download -qq -o APT::Sandbox::User=root "$PKG=$VERSION") ||
        die "apt-get download $PKG=$VERSION failed"
    echo "$SHA256  $DEB" | sha256sum --check --status ||
        die "$DEB does not have the pinned SHA-256 $SHA256"
}

# The bzImage's payload is one xz stream (CONFIG_KERNEL_XZ). Like the kernel's
# scripts/extract-vmlinux: find each xz magic (FD 37 7A 58 5A 00) and keep the
# first offset that decompresses to an ELF file. --single-stream ignores the
# bytes the kernel appends after the stream (and tail dies of SIGPIPE then,
# so the pipeline's status is not the test: the ELF magic is).
extract_vmlinux() {
    local vmlinuz="$1" dest="$2" offset
    for offset in $(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$vmlinuz" | cut -d: -f1); do
        (tail -c "+$((offset + 1))" "$vmlinuz" | xz -dc --single-stream >"$dest") 2>/dev/null || true
        if [ "$(head -c 4 "$dest" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ]; then
            return
        fi
    done
    die "no xz-compressed ELF kernel found in $vmlinuz"
}

# PVH boot needs the XEN_ELFNOTE_PHYS32_ENTRY note (type 18 = 0x12, owner "Xen").
check_pvh() {
    readelf -n "$1" | grep -Eq '^ +Xen +0x[0-9a-f]+.*\(0x00000012\)' ||
        die "$1 has no PVH entry note (Xen note type 0x12)"
}

collect_modules() {
    local tree="$1" mod found
    rm -rf "$OUT/modules"
    mkdir -p "$OUT/modules"
    for mod in $MODULES; do
        found=$(find "$tree/lib/modules" -name "$mod.ko" -o -name "$mod.ko.xz" | head -n 1)
        [ -n "$found" ] || die "module $mod is not in $PKG"
        case "$found" in
        *.xz) xz -dc "$found" >"$OUT/modules/$mod.ko" ;;
        *) cp "$found" "$OUT/modules/$mod.ko" ;;
        esac
    done
}

# busybox-static's binary, checked to be static: the initramfs has no loader.
collect_busybox() {
    [ -x /bin/busybox ] || die "/bin/busybox is missing: apt-get install busybox-static"
    ! readelf -l /bin/busybox | grep -q INTERP ||
        die "/bin/busybox is dynamically linked: install busybox-static, not busybox"
    cp /bin/busybox "$OUT/busybox"
}

fetch_deb
rm -f "$OUT/STAMP"
tree="$OUT/extract"
rm -rf "$tree"
mkdir -p "$tree"
# Only the kernel and the modules above: the whole package unpacks to 400 MB.
members=('./boot/vmlinuz-*')
for mod in $MODULES; do
    members+=("./lib/modules/*/$mod.ko*")
done
dpkg-deb --fsys-tarfile "$DEB" | tar -x -C "$tree" --wildcards "${members[@]}"
extract_vmlinux "$(echo "$tree"/boot/vmlinuz-*)" "$OUT/vmlinux"
check_pvh "$OUT/vmlinux"
collect_modules "$tree"
collect_busybox
rm -rf "$tree"
echo "$STAMP_TEXT" >"$OUT/STAMP"
echo "fetch-linux: $PKG $VERSION -> $OUT/vmlinux, $OUT/modules/ ($MODULES)"
