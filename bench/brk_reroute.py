#!/usr/bin/python3.11
"""brk_reroute: the rerouted brk against the native one, by running bench_brk
(bench/brk_reroute_bench.cc) --runs times and taking medians. Each run of
bench_brk times brk(0) natively in its own process, then in a member whose
brk goes through seccomp user notification to bench_brk acting as the host,
and reports the best of 5 batches for each; the two are measured back to
back within one run, and the runs are repeated because the machine is noisy.

Run: /usr/bin/python3.11 bench/brk_reroute.py [--build-dir build] [--runs 5]
"""

import re
import subprocess

import patbench

LINE = re.compile(r"brk\(0\) (native|rerouted):\s+([0-9.]+) us/call")


def main():
    parser = patbench.argument_parser(__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of bench_brk (default 5)")
    parser.add_argument("--native-calls", type=int, default=200_000)
    parser.add_argument("--rerouted-calls", type=int, default=5_000)
    args = parser.parse_args()
    build = patbench.Build(args.build_dir)
    bench_brk = build.bench_program("bench_brk")
    start_info = patbench.machine()
    print(f"brk_reroute: {args.runs} runs of bench_brk ({args.native_calls} native, "
          f"{args.rerouted_calls} rerouted calls per batch)")

    samples = {"native": [], "rerouted": []}
    for _ in range(args.runs):
        out = subprocess.run([str(bench_brk), str(args.native_calls), str(args.rerouted_calls)],
                             check=True, capture_output=True, text=True).stdout
        found = dict((kind, float(value)) for kind, value in LINE.findall(out))
        if set(found) != {"native", "rerouted"}:
            raise SystemExit(f"bench_brk printed something unexpected:\n{out}")
        for kind, value in found.items():
            samples[kind].append(value)

    stats = {kind: patbench.summary(values) for kind, values in samples.items()}
    native = stats["native"]["median"]
    rows = [[f"brk(0) {kind}", f"{s['median']:.3f}", f"{s['min']:.3f}", f"{s['max']:.3f}",
             f"{s['median'] / native:.1f}x"] for kind, s in stats.items()]
    patbench.print_table(f"brk(0), microseconds per call (median of {args.runs} runs, each the best of 5 batches)",
                         ["variant", "median", "min", "max", "vs native"], rows)

    patbench.print_load(start_info)
    if not args.no_json:
        patbench.write_results("brk_reroute",
                               {"runs": args.runs, "native_calls": args.native_calls,
                                "rerouted_calls": args.rerouted_calls},
                               {"microseconds_per_call": samples, "stats": stats,
                                "ratio_rerouted_over_native": stats["rerouted"]["median"] / native},
                               start_info)


if __name__ == "__main__":
    main()
