#!/bin/bash
# fetch-kernel.sh [CACHE_DIR]
#
# Downloads Debian's linux-image-6.1.0-*-cloud-amd64-unsigned package once into
# CACHE_DIR (default: <repo>/build/vm-cache), extracts it, and makes sure the host
# has qemu-system-x86 and busybox-static. A second run with a complete cache does
# nothing (no network).
#
# Result (when done):
#   CACHE_DIR/kernel/current      -> symlink to the extracted package root
#   CACHE_DIR/kernel/kernel.env   shell-sourceable facts: KPKG KPKG_VERSION KVER VMLINUZ CONFIG MODDIR
#
# Environment:
#   SCRY_VM_KERNEL_PKG   pin an exact package name instead of the newest one found
#
# Exit status: 0 ok; 1 any failure (one "fetch-kernel: error: ..." line on stderr).
set -euo pipefail

die() { echo "fetch-kernel: error: $*" >&2; exit 1; }
log() { echo "fetch-kernel: $*" >&2; }

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${1:-$repo/build/vm-cache}
mkdir -p "$cache/kernel" || die "cannot create cache dir $cache"
cache=$(cd "$cache" && pwd)
kdir=$cache/kernel

[ "$(id -u)" = 0 ] || die "must run as root (apt-get)"

apt_updated=0
apt_update() {
    [ $apt_updated = 1 ] && return 0
    log "apt-get update"
    # apt-get update only warns for unreachable mirrors; the lookups after it decide.
    if ! timeout 300 apt-get update -qq >"$kdir/apt-update.log" 2>&1; then
        die "apt-get update failed (no network?): $(tail -n 3 "$kdir/apt-update.log" | tr '\n' ' ')"
    fi
    apt_updated=1
}

# --- host tools -------------------------------------------------------------
need=()
for p in qemu-system-x86 busybox-static; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        need+=("$p")
    fi
done
if [ ${#need[@]} -gt 0 ]; then
    apt_update
    log "apt-get install ${need[*]}"
    DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq --no-install-recommends \
        "${need[@]}" >"$kdir/apt-install.log" 2>&1 \
        || die "apt-get install ${need[*]} failed: $(tail -n 3 "$kdir/apt-install.log" | tr '\n' ' ')"
fi
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 not found after installing qemu-system-x86"
[ -x /bin/busybox ] || die "/bin/busybox not found after installing busybox-static"

# --- cached? ----------------------------------------------------------------
if [ -f "$kdir/kernel.env" ] && [ -L "$kdir/current" ]; then
    # shellcheck disable=SC1091
    . "$kdir/kernel.env"
    if [ -z "${SCRY_VM_KERNEL_PKG:-}" ] || [ "$SCRY_VM_KERNEL_PKG" = "$KPKG" ]; then
        if [ -f "$VMLINUZ" ] && [ -d "$MODDIR" ]; then
            log "cached: $KPKG $KPKG_VERSION ($VMLINUZ)"
            echo "$kdir/current"
            exit 0
        fi
    fi
fi

# --- find the package -------------------------------------------------------
pkg=${SCRY_VM_KERNEL_PKG:-}
if [ -z "$pkg" ]; then
    apt_update
    pkg=$(apt-cache search '^linux-image-6\.1\.0-' 2>/dev/null | awk '{print $1}' \
          | grep -E '^linux-image-6\.1\.0-[0-9]+-cloud-amd64-unsigned$' | sort -V | tail -n 1 || true)
    [ -n "$pkg" ] || die "no linux-image-6.1.0-*-cloud-amd64-unsigned package found by apt-cache search (no network, or not a Debian 12 apt source?)"
fi
ver=$(apt-cache show --no-all-versions "$pkg" 2>/dev/null | awk '/^Version:/{print $2; exit}' || true)
if [ -z "$ver" ]; then
    apt_update
    ver=$(apt-cache show --no-all-versions "$pkg" 2>/dev/null | awk '/^Version:/{print $2; exit}' || true)
    [ -n "$ver" ] || die "package $pkg is unknown to apt"
fi
log "package: $pkg $ver"

# --- download + extract -----------------------------------------------------
deb=$(ls "$kdir/${pkg}_"*.deb 2>/dev/null | head -n 1 || true)
if [ -z "$deb" ]; then
    log "apt-get download $pkg (~27 MB)"
    (cd "$kdir" && timeout 900 apt-get download -qq "$pkg" >"$kdir/apt-download.log" 2>&1) \
        || die "apt-get download $pkg failed (no network?): $(grep -v '^W: Download is performed unsandboxed' "$kdir/apt-download.log" | tail -n 3 | tr '\n' ' ')"
    deb=$(ls "$kdir/${pkg}_"*.deb 2>/dev/null | head -n 1 || true)
    [ -n "$deb" ] || die "apt-get download $pkg produced no .deb in $kdir"
fi

root=$kdir/$pkg
rm -rf "$root.tmp"
mkdir -p "$root.tmp"
dpkg-deb -x "$deb" "$root.tmp" || die "dpkg-deb -x $deb failed"

vmlinuz=$(ls "$root.tmp"/boot/vmlinuz-* 2>/dev/null | head -n 1 || true)
[ -n "$vmlinuz" ] || die "no /boot/vmlinuz-* in $deb"
kver=${vmlinuz##*/vmlinuz-}
[ -f "$root.tmp/boot/config-$kver" ] || die "no /boot/config-$kver in $deb"
[ -d "$root.tmp/lib/modules/$kver" ] || die "no /lib/modules/$kver in $deb"
# The package ships no modules.dep (depmod runs in postinst); generate it so the
# guest builder can resolve module dependencies.
if [ ! -f "$root.tmp/lib/modules/$kver/modules.dep" ]; then
    command -v depmod >/dev/null || PATH=$PATH:/sbin:/usr/sbin
    depmod -b "$root.tmp" "$kver" 2>"$kdir/depmod.log" || die "depmod for $kver failed: $(tail -n 2 "$kdir/depmod.log")"
fi
rm -rf "$root"
mv "$root.tmp" "$root"

cat >"$kdir/kernel.env.tmp" <<ENV
KPKG=$pkg
KPKG_VERSION=$ver
KVER=$kver
VMLINUZ=$root/boot/vmlinuz-$kver
CONFIG=$root/boot/config-$kver
MODDIR=$root/lib/modules/$kver
ENV
ln -sfn "$pkg" "$kdir/current"
mv "$kdir/kernel.env.tmp" "$kdir/kernel.env"

cfg=$root/boot/config-$kver
for o in BPF BPF_SYSCALL BPF_JIT DEBUG_INFO_BTF KPROBES KPROBE_EVENTS FTRACE FUNCTION_TRACER DYNAMIC_FTRACE_WITH_DIRECT_CALLS \
         TRACING BPF_EVENTS BLK_DEV_LOOP CGROUP_BPF SCHEDSTATS SERIAL_8250_CONSOLE DEVTMPFS TMPFS RD_GZIP; do
    v=$(grep -E "^CONFIG_$o=" "$cfg" | cut -d= -f2 || true)
    log "  CONFIG_$o=${v:-n}"
done
log "ready: $root"
echo "$kdir/current"
