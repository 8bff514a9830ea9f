#!/usr/bin/env bash
# Installs every Debian package scry needs to build, run and test. Idempotent: installs only what is missing.
set -euo pipefail

packages=(
  # build
  build-essential cmake pkg-config clang llvm bpftool
  libbpf-dev libelf-dev zlib1g-dev
  prometheus-cpp-dev libcivetweb-dev libboost-program-options-dev
  libyaml-cpp-dev libcrypt-dev libcap-dev libssl3 dpkg-dev libcurl4-openssl-dev nlohmann-json3-dev
  # tests: unit, integration, e2e (Prometheus, systemd unit sandbox), second kernel under qemu
  googletest libgtest-dev prometheus python3 fio util-linux openssl curl
  systemd libseccomp2 bpftrace qemu-system-x86 busybox-static kmod
  iproute2 nftables iperf3 e2fsprogs linux-perf wrk nginx
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "scry: installing ${missing[*]}" >&2
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
