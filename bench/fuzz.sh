#!/usr/bin/env bash
# Runs every libFuzzer target (tests/fuzz) for DURATION seconds each (default
# 60), one after another at nice 19, from the seed corpora, and prints per
# target the executions, the coverage (cov: edges, ft: features) and the
# corpus size, then the total. Any crash, sanitizer report, leak or hang
# stops that target with a non-zero status, keeps the input under
# FUZZ_BUILD_DIR/fuzz-bench/<target>/artifacts/, and makes this script fail.
#
#   bench/fuzz.sh 120                           # 2 minutes per target
#   FUZZ_TARGETS="fuzz_frames fuzz_host_api" bench/fuzz.sh 600
#   FUZZ_BUILD_DIR=/tmp/f bench/fuzz.sh         # another build tree
#
# Builds with Debian's clang-14 (-DPAT_FUZZ=ON: ASan, UBSan and libFuzzer's
# coverage in everything); scripts/setup.sh installs it. Results also go to
# bench/results/fuzz.json.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
duration="${1:-60}"
build="${FUZZ_BUILD_DIR:-$root/build-fuzz}"

CC=clang-14 CXX=clang++-14 cmake -S "$root" -B "$build" -DPAT_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
nice -n 19 cmake --build "$build" --target fuzzers -j "$(nproc)" >/dev/null

targets="${FUZZ_TARGETS:-$(cd "$build/fuzz" && ls fuzz_*)}"
summary="$build/fuzz-bench/summary.txt"
mkdir -p "$build/fuzz-bench"
: >"$summary"
failed=0
for target in $targets; do
  nice -n 19 "$root/tests/fuzz/run_fuzzer.sh" "$build/fuzz/$target" "$root/tests/fuzz/corpus/$target" \
    "$build/fuzz-bench/$target" "$duration" | tee -a "$summary" || failed=1
done

/usr/bin/python3.11 - "$summary" "$root/bench/results/fuzz.json" "$duration" <<'PY'
import json, re, sys
rows = []
for line in open(sys.argv[1]):
    m = re.match(r"(\S+): (.*)", line.strip())
    if not m or "execs=" not in line:
        continue
    fields = dict(kv.split("=", 1) for kv in m.group(2).split())
    rows.append({"target": m.group(1), **{k: (int(v) if v.lstrip("-").isdigit() else v) for k, v in fields.items()}})
total = sum(r["execs"] for r in rows if isinstance(r.get("execs"), int))
print()
print(f"{'target':<24}{'execs':>14}{'exec/s':>10}{'cov':>8}{'ft':>8}{'corpus':>8}  status")
for r in rows:
    print(f"{r['target']:<24}{r['execs']:>14,}{r['exec/s']:>10}{r['cov']:>8}{r['ft']:>8}{r['corpus']:>8}  {r['status']}")
print(f"{'total':<24}{total:>14,}   ({len(rows)} targets, {sys.argv[3]} s each)")
json.dump({"seconds_per_target": int(sys.argv[3]), "total_execs": total, "targets": rows},
          open(sys.argv[2], "w"), indent=2)
PY
exit $failed
