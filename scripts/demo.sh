#!/usr/bin/env bash
# README command 1: set up, build, then show pat at work.
# Starts patd on a private runtime directory, creates a group, runs two
# pat-python members in parallel on CPU-bound work, shows that they are two
# processes in one address space, prints their results and stops everything.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

./scripts/setup.sh
BUILD_DIR="$root/build" ./scripts/build.sh
bin="$root/build/bin"

runtime="$(mktemp -d /tmp/pat-demo-XXXXXX)"
patd_pid=""
cleanup() {
  # Destroy the demo's group (its host and members), then stop patd: only
  # what this script started, by PID.
  "$bin/patctl" --socket "$runtime/patd.sock" group destroy demo --force --grace-ms 1000 >/dev/null 2>&1 || true
  [ -n "$patd_pid" ] && kill -TERM "$patd_pid" 2>/dev/null && wait "$patd_pid" 2>/dev/null || true
  rm -rf "$runtime"
}
trap cleanup EXIT

echo "== starting patd on $runtime"
"$bin/patd" --runtime-dir "$runtime" 2>"$runtime/patd.log" &
patd_pid=$!
export PATD_SOCKET="$runtime/patd.sock"
for _ in $(seq 100); do "$bin/patctl" status >/dev/null 2>&1 && break; sleep 0.05; done
"$bin/patctl" status

echo
echo "== creating group 'demo'"
"$bin/patctl" group create demo

work=$(cat <<'PY'
import os, sys, time
n = int(sys.argv[1])
start = time.perf_counter()
total = sum(i * i % 7 for i in range(n))
print(f"member pid {os.getpid()}: sum={total} in {time.perf_counter() - start:.2f}s", flush=True)
PY
)

echo
echo "== two pat-python members, CPU-bound, in parallel"
start=$(date +%s.%N)
"$bin/patctl" run --group demo -- "$bin/pat-python" -c "$work" 6000000 > "$runtime/a.out" &
a=$!
"$bin/patctl" run --group demo -- "$bin/pat-python" -c "$work" 6000000 > "$runtime/b.out" &
b=$!
sleep 0.5
echo "-- patctl group show demo (while they run):"
"$bin/patctl" group show demo
echo "-- the same address space? kcmp(KCMP_VM) on the two members:"
members=$("$bin/patctl" group show demo --json | "$bin/pat-python" -c 'import json,sys; print(" ".join(str(m["pid"]) for m in json.load(sys.stdin)["members"]))')
"$bin/pat-python" - $members <<'PY'
import ctypes, os, sys
pids = [int(p) for p in sys.argv[1:]]
kcmp = ctypes.CDLL(None, use_errno=True).syscall
SYS_kcmp, KCMP_VM, KCMP_FILES = 312, 1, 2
if len(pids) == 2:
    a, b = pids
    same_vm = kcmp(SYS_kcmp, a, b, KCMP_VM, 0, 0) == 0
    same_files = kcmp(SYS_kcmp, a, b, KCMP_FILES, 0, 0) == 0
    print(f"members {a} and {b}: same address space: {same_vm}; same fd table: {same_files}")
    print(f"this checker (pid {os.getpid()}) shares it: {kcmp(SYS_kcmp, os.getpid(), a, KCMP_VM, 0, 0) == 0}")
PY
wait $a $b
end=$(date +%s.%N)
echo
echo "== results"
cat "$runtime/a.out" "$runtime/b.out"
printf 'both done in %.2fs of wall time\n' "$(echo "$end - $start" | bc -l 2>/dev/null || "$bin/pat-python" -c "print($end-$start)")"
echo
echo "== patctl group show demo (after)"
"$bin/patctl" group show demo
