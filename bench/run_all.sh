#!/usr/bin/env bash
# Builds pat (Release, into BUILD_DIR, default ./build) and runs every
# benchmark in turn, each printing its table and writing
# bench/results/<name>.json. They run one after another, never at once: each
# would be the others' noise. Extra arguments go to every benchmark
# (e.g. --no-json).
#
#   bench/run_all.sh                      # build ./build, run all
#   BUILD_DIR=/tmp/b bench/run_all.sh     # another build tree
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${BUILD_DIR:-$root/build}"
# Debian's interpreter, by path: a pyenv python3 may be first on PATH, and the
# benchmarks compare against /usr/bin/python3.11 itself.
python=/usr/bin/python3.11

BUILD_DIR="$build_dir" "$root/scripts/build.sh"

for bench in cpu_members brk_reroute run_latency daemon_throughput member_memory group_lock dataplane executor dask_schedulers core_dump attach; do
  echo
  echo "== $bench"
  "$python" "$root/bench/$bench.py" --build-dir "$build_dir" "$@"
done
