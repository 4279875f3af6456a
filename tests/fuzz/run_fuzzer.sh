#!/usr/bin/env bash
# Runs one libFuzzer target for SECONDS from its seed corpus (read only) into
# a scratch corpus, and prints one summary line:
#   fuzz_frames: execs=1234567 exec/s=41152 cov=812 ft=2950 corpus=120 seconds=30
# Exit status: the fuzzer's (non-zero on a crash, a sanitizer report, a leak
# or a timeout); the crashing input stays in WORK/artifacts/.
# Usage: run_fuzzer.sh TARGET SEED_DIR WORK_DIR SECONDS [extra libFuzzer flags...]
set -uo pipefail
target="$1" seeds="$2" work="$3" seconds="$4"
shift 4
name="$(basename "$target")"
rm -rf "$work"
mkdir -p "$work/corpus" "$work/artifacts"
log="$work/fuzz.log"
# -timeout: a single input running 10 s is a hang; -rss_limit_mb: leaks that
# grow without bound; detect_leaks: LeakSanitizer checks after every input
# that allocated. The seed directory is read only: new units go to corpus/.
ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}" \
UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
  "$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$work/artifacts/" "$@" "$work/corpus" "$seeds" >"$log" 2>&1
status=$?
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
last=$(grep -E '^#[0-9]+' "$log" | tail -1)
cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
corpus=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$last")
echo "$name: execs=${execs:-0} exec/s=${rate:-0} cov=${cov:-?} ft=${ft:-?} corpus=${corpus:-?} seconds=$seconds status=$status"
if [ $status -ne 0 ]; then
  echo "--- $name failed; the last 60 lines of $log:"
  tail -60 "$log"
  ls -l "$work/artifacts"
fi
exit $status
