#!/bin/bash
# build.sh [OUTDIR]  -- builds the placeholder BPF probe into OUTDIR (default <repo>/build/vm-cache/probe).
# Installs libbpf-dev libelf-dev zlib1g-dev clang llvm bpftool with apt-get if any is missing.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../../.." && pwd)
out=${1:-$repo/build/vm-cache/probe}
die() { echo "probe/build: error: $*" >&2; exit 1; }

need=()
for p in libbpf-dev libelf-dev zlib1g-dev clang llvm bpftool; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || die "missing packages ${need[*]} and not root"
    apt-get update -qq >/dev/null 2>&1 || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
        || die "apt-get install ${need[*]} failed"
fi
bpftool=$(command -v bpftool || echo /usr/sbin/bpftool)
[ -x "$bpftool" ] || die "bpftool not found"

mkdir -p "$out"
clang -g -O2 -Wall -Werror -target bpf -D__TARGET_ARCH_x86 -I"$repo/bpf/include" \
    -c "$here/probe.bpf.c" -o "$out/probe.bpf.o"
"$bpftool" gen skeleton "$out/probe.bpf.o" name probe_bpf >"$out/probe.skel.h"
cc -O2 -g -Wall -Werror -I"$out" "$here/probe.c" -o "$out/probe" -lbpf -lelf -lz
echo "$out/probe"
