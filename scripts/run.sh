#!/usr/bin/env bash
# Installs what is missing, builds, and runs every exporter in the foreground until Ctrl-C.
# Needs root (or CAP_BPF + CAP_PERFMON) to load BPF programs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh

declare -A ports=([net]=9651 [block]=9652 [sched-sli]=9653 [mem-sli]=9654 [l7]=9655 [jvm]=9656 [kafka]=9657 [lb]=9658)
exporters=()
for e in net block sched-sli mem-sli l7 jvm kafka lb; do
  [[ -x build/bin/scry-$e ]] && exporters+=("$e")
done
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait' INT TERM EXIT
for e in "${exporters[@]}"; do
  build/bin/scry-"$e" --web.listen-address=":${ports[$e]}" "$@" &
  pids+=($!)
  echo "scry-$e: metrics at http://localhost:${ports[$e]}/metrics" >&2
done
wait -n "${pids[@]}"
