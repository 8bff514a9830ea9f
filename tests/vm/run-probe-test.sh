#!/bin/bash
# run-probe-test.sh [CACHE_DIR]
# End-to-end check of the VM harness with the placeholder BPF probe:
#   1. fetch-kernel.sh (cached after the first run)
#   2. probe/build.sh
#   3. the probe on the host: tp_btf, raw_tp and tracepoint must work (fentry/kprobe are reported only)
#   4. the probe in the Debian 6.1 guest: all five attach modes must work
# Exit 0 when both pass. The exporters themselves run in the guest in test_kernel_matrix.py
# (ctest vm.kernel_matrix); this stays as the harness self-test and the only proof that kprobe and
# raw_tp attach in the guest (the exporters pick fentry/tp_btf there first).
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${1:-$repo/build/vm-cache}
passed=0 failed=0
now() { date +%s.%N; }
el() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }

t=$(now)
"$here/fetch-kernel.sh" "$cache" >/dev/null || { echo "vm-probe: fetch-kernel failed"; echo "0 passed, 1 failed"; exit 1; }
echo "vm-probe: fetch-kernel $(el "$t")s"
t=$(now)
probe=$("$here/probe/build.sh" "$cache/probe") || { echo "vm-probe: probe build failed"; echo "0 passed, 1 failed"; exit 1; }
echo "vm-probe: probe build $(el "$t")s"

grep -q '^[^ ]* /sys/kernel/tracing tracefs' /proc/mounts || mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null || true
t=$(now)
echo "--- host $(uname -r)"
if "$probe" -r tp_btf,raw_tp,tracepoint; then passed=$((passed+1)); else failed=$((failed+1)); echo "vm-probe: host FAILED"; fi
echo "vm-probe: host probe $(el "$t")s"

t=$(now)
echo "--- guest (Debian 6.1 cloud kernel, qemu tcg)"
if "$here/run-guest.py" --cache-dir "$cache" --bin "$probe:/usr/local/bin/probe" \
        --cmd 'uname -r; probe -r all'; then
    passed=$((passed+1))
else
    failed=$((failed+1)); echo "vm-probe: guest FAILED"
fi
echo "vm-probe: guest run (build initramfs + boot + probe + poweroff) $(el "$t")s"
echo "vm-probe: $passed passed, $failed failed"
[ $failed = 0 ]
