#!/usr/bin/env bash
# README command 1: set up, build, then show pat at work.
# Starts patd on a private runtime directory, creates a group, runs two
# pat-python members in parallel on CPU-bound work, shows that they are two
# processes in one address space, prints their results; then runs a
# pat.Executor as a member (a CPU-bound map on 1 and 2 workers, a 256 MiB
# numpy array returned by a worker without a copy) and stops everything.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

./scripts/setup.sh
BUILD_DIR="$root/build" ./scripts/build.sh >/dev/null
bin="$root/build/bin"

runtime="$(mktemp -d /tmp/pat-demo-XXXXXX)"
patd_pid=""
cleanup() {
  # Only what this script started, by PID: the demo group (its host and
  # members), then patd.
  "$bin/patctl" group destroy demo --force --grace-ms 1000 >/dev/null 2>&1 || true
  if [ -n "$patd_pid" ]; then
    kill -TERM "$patd_pid" 2>/dev/null || true
    wait "$patd_pid" 2>/dev/null || true
  fi
  rm -rf "$runtime"
}
trap cleanup EXIT

echo "== starting patd on $runtime"
"$bin/patd" --runtime-dir "$runtime" 2>"$runtime/patd.log" &
patd_pid=$!
export PATD_SOCKET="$runtime/patd.sock"
for _ in $(seq 200); do "$bin/patctl" status >/dev/null 2>&1 && break; sleep 0.05; done
"$bin/patctl" status

echo
echo "== patctl group create demo"
"$bin/patctl" group create demo

cat > "$runtime/count.py" <<'PY'
# CPU-bound pure Python: one interpreter per member, each with its own GIL.
import os, sys, time
start = time.perf_counter()
total = sum(i * i % 7 for i in range(int(sys.argv[1])))
print(f"member {os.getpid()}: sum={total} in {time.perf_counter() - start:.2f}s", flush=True)
PY
cat > "$runtime/same_mm.py" <<'PY'
# Are the members one address space? kcmp(2) KCMP_VM compares two processes' mm.
import ctypes, json, os, sys
members = [m["pid"] for m in json.load(sys.stdin)["members"]]
syscall = ctypes.CDLL(None, use_errno=True).syscall
SYS_kcmp, KCMP_VM, KCMP_FILES = 312, 1, 2
a, b = members[:2]
print(f"members {a} and {b}: same address space: {syscall(SYS_kcmp, a, b, KCMP_VM, 0, 0) == 0}, "
      f"same fd table: {syscall(SYS_kcmp, a, b, KCMP_FILES, 0, 0) == 0}")
print(f"an ordinary process ({os.getpid()}) shares it: {syscall(SYS_kcmp, os.getpid(), a, KCMP_VM, 0, 0) == 0}")
PY

echo
echo "== two pat-python members of 'demo', CPU-bound, in parallel"
started_ns=$(date +%s%N)
"$bin/patctl" run --group demo -- "$bin/pat-python" "$runtime/count.py" 25000000 > "$runtime/a.out" &
first=$!
"$bin/patctl" run --group demo -- "$bin/pat-python" "$runtime/count.py" 25000000 > "$runtime/b.out" &
second=$!
for _ in $(seq 100); do
  [ "$("$bin/patctl" group show demo --json | grep -c '"pid"')" -ge 2 ] && break
  sleep 0.05
done
echo "-- patctl group show demo, while they run:"
"$bin/patctl" group show demo
echo
"$bin/patctl" group show demo --json | "$bin/pat-python" "$runtime/same_mm.py"
wait "$first" "$second"
echo
echo "== results (wall time for both: $(( ($(date +%s%N) - started_ns) / 1000000 )) ms)"
cat "$runtime/a.out" "$runtime/b.out"
echo
echo "== one member alone, for comparison"
"$bin/patctl" run --group demo -- "$bin/pat-python" "$runtime/count.py" 25000000
echo
echo "== patctl group show demo, afterwards: the members' memory went back to the group"
"$bin/patctl" group show demo

cat > "$runtime/executor_demo.py" <<'PY'
# pat.Executor in a member: its workers are more members of this group.
import os, time
import numpy as np
import pat

def count(n):
    return sum(i * i % 7 for i in range(n))

def make_array(nbytes):
    array = np.full(nbytes // 8, 3.0)
    return array, array.ctypes.data, os.getpid(), time.perf_counter()

if __name__ == "__main__":
    calls = [1_500_000] * 8
    seconds = {}
    for workers in (1, 2):
        with pat.Executor(workers) as executor:
            executor.submit(count, 1).result()  # workers up before the clock starts
            started = time.perf_counter()
            results = list(executor.map(count, calls))
            seconds[workers] = time.perf_counter() - started
        print(f"CPU-bound map, 8 calls, {workers} worker{'s' if workers > 1 else ''}: {seconds[workers]:.2f} s")
    print(f"speed-up with 2 workers: {seconds[1] / seconds[2]:.2f}x")

    with pat.Executor(1) as executor:
        array, address_there, worker, made = executor.submit(make_array, 256 << 20).result()
        arrived = time.perf_counter()
        buffer = pat.buffer_of(array)
        print(f"a 256 MiB array made by worker {worker} at 0x{address_there:x}; here at 0x{array.ctypes.data:x}: "
              f"{'the same memory' if address_there == array.ctypes.data else 'a copy'}")
        print(f"  a view of the worker's own pages: {buffer is not None and buffer.zero_copy}; "
              f"sum {array.sum():.0f}; from the worker's return to here: {(arrived - made) * 1000:.2f} ms "
              f"(copying 256 MiB takes tens of ms)")
PY

echo
echo "== pat.Executor, run as a member of 'demo': a CPU-bound map on 1 and 2 workers, then a large array returned"
"$bin/patctl" run --group demo -- "$bin/pat-python" "$runtime/executor_demo.py"
