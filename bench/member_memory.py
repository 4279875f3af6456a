#!/usr/bin/python3.11
"""member_memory: the costs of memory ownership (docs/memory.md), pat and
its peers side by side, interleaved, medians:

1. start-up: `pat-python -c pass` as a member (its lifetime as the host saw
   it, from the spawn request to the reap) against an ordinary process
   (spawn to exit), and end to end through `patctl run`;
2. a numpy workload allocating and freeing 1-48 MiB arrays: one member
   against one process (with glibc's defaults, and with the tunables pat
   gives members); two members of one group against two processes;
3. allocation churn, the cost of one shared address space: two workers
   cycling mmap/touch/munmap of 64 KiB, as members, processes and threads;
   malloc/free of 4 MiB and 48 MiB as members with glibc's defaults (before)
   and with pat's default GLIBC_TUNABLES (after), and as processes;
4. the mechanism choice: a rerouted mmap+munmap pair inside a member, a
   trapped one (SIGSYS handler in the process) and a native one.

Targets to report against: start-up <= 1.15x; the numpy workload <= 1.05x
with one member.

Run: /usr/bin/python3.11 bench/member_memory.py [--build-dir build] [--rounds 5]
"""
import json
import os
import subprocess
import time

import patbench

NUMPY_WORKLOAD = """
import json, time, numpy as np
sizes = [1 << 20, 8 << 20, 24 << 20, 48 << 20]
start = time.perf_counter()
total = 0.0
for i in range(40):
    for n in sizes:
        a = np.ones(n // 8)
        b = a * 2.0
        total += float(b[::4096].sum())
        del a, b
print(json.dumps({"seconds": time.perf_counter() - start}))
"""

GLIBC_DEFAULTS = "GLIBC_TUNABLES="  # set, but empty: pat leaves glibc's defaults alone
PAT_TUNABLES = "glibc.malloc.top_pad=67108864"  # what pat-host gives members (daemon/host/group_host.cc)


def seconds_of(output):
    return json.loads(output.strip().splitlines()[-1])["seconds"]


def mean_churn_us(outputs):
    return sum(json.loads(o)["us_per_cycle"] for o in outputs) / len(outputs)


def medians(samples):
    return {name: patbench.summary(values)["median"] for name, values in samples.items()}


def startup(build, patd, rounds):
    argv = [build.pat_python, "-c", "pass"]

    def member():
        patd.run_member("bench", argv)
        return patd.show("bench")["recent_exits"][0]["duration_seconds"]

    def end_to_end():
        start = time.perf_counter()
        patd.run_member("bench", argv)
        return time.perf_counter() - start

    samples = patbench.interleaved({"member": member, "patctl run, end to end": end_to_end,
                                    "ordinary process": lambda: patbench.spawn_and_wait(argv)}, rounds)
    result = medians(samples)
    base = result["ordinary process"]
    patbench.print_table(f"1. pat-python -c pass (ms, median of {rounds})", ["variant", "ms", "x process"],
                         [[name, f"{m * 1000:.2f}", f"{m / base:.3f}"] for name, m in result.items()])
    ratio = result["member"] / base
    print(f"member / process: {ratio:.3f} (target <= 1.15: {patbench.verdict(ratio, 1.15, False)})")
    return result


def numpy_workload(build, patd, rounds):
    argv = [build.pat_python, "-c", NUMPY_WORKLOAD]
    member = patd.member_argv("bench", argv)
    tuned_env = dict(os.environ, GLIBC_TUNABLES=PAT_TUNABLES)
    variants = {
        "1 member": lambda: seconds_of(patd.run_member("bench", argv)),
        "1 member, glibc defaults": lambda: seconds_of(patd.run_member("bench", argv, [GLIBC_DEFAULTS])),
        "1 process": lambda: seconds_of(patbench.outputs_of_all([argv])[0]),
        "1 process, pat's tunables": lambda: seconds_of(patbench.outputs_of_all([argv], tuned_env)[0]),
        "2 members": lambda: max(map(seconds_of, patbench.outputs_of_all([member, member]))),
        "2 processes": lambda: max(map(seconds_of, patbench.outputs_of_all([argv, argv]))),
    }
    result = medians(patbench.interleaved(variants, rounds))
    patbench.print_table(f"2. numpy: allocate and free 1-48 MiB arrays (s, median of {rounds})",
                         ["variant", "seconds"], [[name, f"{m:.3f}"] for name, m in result.items()])
    same_settings = result["1 member"] / result["1 process, pat's tunables"]
    print(f"1 member / 1 process, same glibc settings: {same_settings:.3f} "
          f"(target <= 1.05: {patbench.verdict(same_settings, 1.05, False)})")
    print(f"1 member / 1 process, each with its defaults: {result['1 member'] / result['1 process']:.3f}")
    print(f"2 members / 2 processes: {result['2 members'] / result['2 processes']:.3f}")
    return result


def churn(build, patd, rounds):
    churn_bin = build.bench_program("alloc_churn")
    cases = {
        "mmap 64 KiB": ["mmap", str(64 << 10), "20000"],
        "malloc 4 MiB": ["malloc", str(4 << 20), "200"],
        "malloc 48 MiB": ["malloc", str(48 << 20), "16"],
    }
    results, rows = {}, []
    for case, args in cases.items():
        before = patd.member_argv("bench", [churn_bin, *args], [GLIBC_DEFAULTS])
        after = patd.member_argv("bench", [churn_bin, *args])
        variants = {
            "2 members, glibc defaults (before)": lambda b=before: mean_churn_us(patbench.outputs_of_all([b, b])),
            "2 members, pat's default (after)": lambda a=after: mean_churn_us(patbench.outputs_of_all([a, a])),
            "2 processes": lambda a=args: mean_churn_us(patbench.outputs_of_all([[churn_bin, *a]] * 2)),
        }
        if case.startswith("mmap"):
            variants["2 threads"] = lambda a=args: mean_churn_us(patbench.outputs_of_all([[churn_bin, *a, "threads"]]))
        result = medians(patbench.interleaved(variants, rounds))
        for name, us in result.items():
            rows.append([f"{case}: {name}", f"{us:.1f}", f"{us / result['2 processes']:.2f}"])
        results[case] = result
    patbench.print_table(f"3. two workers churning allocations (us per cycle, median of {rounds})",
                         ["cycle and variant", "us", "x processes"], rows)
    return results


def mechanisms(build, patd, rounds):
    probe = build.bench_program("sigsys_trap_cost")

    def native_run(key):
        return lambda: json.loads(subprocess.run([probe, "50000"], check=True, capture_output=True,
                                                 text=True).stdout)[key]

    variants = {
        "native": native_run("native_pair_ns"),
        "trapped (SIGSYS handler in the process)": native_run("trapped_pair_ns"),
        "rerouted to the host (pat)": lambda: json.loads(patd.run_member("bench", [probe, "50000", "plain"]))["pair_ns"],
    }
    result = medians(patbench.interleaved(variants, rounds))
    patbench.print_table(f"4. one mmap + munmap pair of 64 KiB, untouched (us, median of {rounds})",
                         ["mechanism", "us", "x native"],
                         [[name, f"{ns / 1000:.2f}", f"{ns / result['native']:.2f}"] for name, ns in result.items()])
    return result


def main():
    parser = patbench.argument_parser(__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    build = patbench.Build(args.build_dir)
    start_info = patbench.machine()
    with patbench.PrivatePatd(build) as patd:
        patd.create_group("bench")
        results = {
            "startup": startup(build, patd, args.rounds * 4),
            "numpy": numpy_workload(build, patd, args.rounds),
            "churn": churn(build, patd, args.rounds),
            "mechanisms": mechanisms(build, patd, args.rounds),
        }
    patbench.print_load(start_info)
    if not args.no_json:
        patbench.write_results("member_memory", {"rounds": args.rounds}, results, start_info)


if __name__ == "__main__":
    main()
