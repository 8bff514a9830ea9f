#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test: unit, BPF integration (as root on this
# kernel), shipped files, end-to-end with Prometheus, and the second-kernel matrix.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
cd build
ctest --output-on-failure --timeout 1200 "$@"
