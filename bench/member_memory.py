#!/usr/bin/python3.11
"""Memory benchmarks of issue "memory ownership" (docs/memory.md), pat and
its peers side by side in one run, interleaved, medians:

1. start-up: `pat-python -c pass` as a member (its lifetime as the host saw
   it) against an ordinary process (spawn to exit), and end to end through
   `patctl run`;
2. a numpy workload allocating and freeing large arrays: one member against
   one process; two members of one group against two processes;
3. allocation churn, the cost of one shared address space: two workers
   cycling mmap/touch/munmap of 64 KiB, as members, processes and threads;
   and malloc/free of 4 MiB and 48 MiB as members with glibc's defaults
   (before) and with pat's default GLIBC_TUNABLES (after), and as processes;
4. the mechanism choice: a rerouted mmap+munmap pair inside a member, a
   trapped one (SIGSYS in-process handler) and a native one.

Usage: bench/member_memory.py [--repeats N]
"""
import argparse
import json
import os
import subprocess
import time

import pat_bench as pb

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

GLIBC_DEFAULTS = "GLIBC_TUNABLES="  # set but empty: pat leaves glibc's own defaults
PAT_TUNABLES = "glibc.malloc.top_pad=67108864"  # pat's default (daemon/host/group_host.cc)


def seconds_of(output):
    return json.loads(output.strip().splitlines()[-1])["seconds"]


def churn_us(outputs):
    return sum(json.loads(o)["us_per_cycle"] for o in outputs) / len(outputs)


def startup(patd, repeats):
    def member():
        patd.run("bench", [pb.PAT_PYTHON, "-c", "pass"])
        return patd.show("bench")["recent_exits"][0]["duration_seconds"]

    def end_to_end():
        start = time.perf_counter()
        patd.run("bench", [pb.PAT_PYTHON, "-c", "pass"])
        return time.perf_counter() - start

    def native():
        start = time.perf_counter()
        subprocess.run([pb.PAT_PYTHON, "-c", "pass"], check=True)
        return time.perf_counter() - start

    samples = pb.interleaved({"member": member, "patctl run (end to end)": end_to_end, "process": native}, repeats)
    base = pb.median(samples["process"])
    rows = [[name, f"{pb.median(v) * 1000:.2f}", f"{pb.median(v) / base:.3f}"] for name, v in samples.items()]
    print("\n1. pat-python -c pass (ms, median of %d)" % repeats)
    print(pb.table(rows, ["variant", "ms", "x process"]))
    return {name: pb.median(v) for name, v in samples.items()}


def numpy_workload(patd, repeats):
    argv = [pb.PAT_PYTHON, "-c", NUMPY_WORKLOAD]
    member_cmd = [pb.PATCTL, "--socket", patd.socket, "run", "--group", "bench", "--", *argv]
    variants = {
        "1 member": lambda: seconds_of(patd.run("bench", argv)),
        "1 member, glibc defaults": lambda: seconds_of(patd.run("bench", argv, env=[GLIBC_DEFAULTS])),
        "1 process": lambda: seconds_of(pb.run_native(argv)),
        "1 process, pat's tunables": lambda: seconds_of(pb.run_native(argv, {"GLIBC_TUNABLES": PAT_TUNABLES})),
        "2 members": lambda: max(seconds_of(o) for o in pb.parallel([member_cmd, member_cmd])),
        "2 processes": lambda: max(seconds_of(o) for o in pb.parallel([argv, argv])),
    }
    samples = pb.interleaved(variants, repeats)
    medians = {name: pb.median(v) for name, v in samples.items()}
    rows = [[name, f"{m:.3f}"] for name, m in medians.items()]
    print("\n2. numpy: allocate and free 1-48 MiB arrays (s, median of %d)" % repeats)
    print(pb.table(rows, ["variant", "seconds"]))
    print(f"   1 member / 1 process: {medians['1 member'] / medians['1 process']:.3f}")
    print(f"   1 member / 1 process with the same tunables: "
          f"{medians['1 member'] / medians['1 process, pat' + chr(39) + 's tunables']:.3f}")
    print(f"   2 members / 2 processes: {medians['2 members'] / medians['2 processes']:.3f}")
    return medians


def churn(patd, repeats):
    churn_bin = os.path.join(pb.BENCH_BIN, "alloc_churn")

    def members(args, env=()):
        env_args = [a for e in env for a in ("--env", e)]
        cmd = [pb.PATCTL, "--socket", patd.socket, "run", "--group", "bench", *env_args, "--", churn_bin, *args]
        return lambda: churn_us(pb.parallel([cmd, cmd]))

    def processes(args):
        return lambda: churn_us(pb.parallel([[churn_bin, *args], [churn_bin, *args]]))

    cases = {
        "mmap 64 KiB": ["mmap", str(64 << 10), "20000"],
        "malloc 4 MiB": ["malloc", str(4 << 20), "200"],
        "malloc 48 MiB": ["malloc", str(48 << 20), "16"],
    }
    results = {}
    print("\n3. two workers churning allocations (us per cycle, median of %d)" % repeats)
    rows = []
    for case, args in cases.items():
        variants = {
            "2 members (glibc defaults: before)": members(args, [GLIBC_DEFAULTS]),
            "2 members (pat's default: after)": members(args),
            "2 processes": processes(args),
        }
        if case.startswith("mmap"):
            variants["2 threads"] = lambda: churn_us([subprocess.run([churn_bin, *args, "threads"], check=True,
                                                                      stdout=subprocess.PIPE, text=True).stdout])
        medians = {name: pb.median(v) for name, v in pb.interleaved(variants, repeats).items()}
        processes_us = medians["2 processes"]
        for name, us in medians.items():
            rows.append([case, name, f"{us:.1f}", f"{us / processes_us:.2f}"])
        results[case] = medians
    print(pb.table(rows, ["cycle", "variant", "us", "x processes"]))
    return results


def mechanisms(patd, repeats):
    probe = os.path.join(pb.BENCH_BIN, "sigsys_trap_cost")
    variants = {
        "native": lambda: json.loads(pb.run_native([probe, "50000"]))["native_pair_ns"],
        "trapped (SIGSYS handler)": lambda: json.loads(pb.run_native([probe, "50000"]))["trapped_pair_ns"],
        "rerouted to the host (pat)": lambda: json.loads(patd.run("bench", [probe, "50000", "plain"]))["pair_ns"],
    }
    medians = {name: pb.median(v) for name, v in pb.interleaved(variants, repeats).items()}
    base = medians["native"]
    rows = [[name, f"{ns / 1000:.2f}", f"{ns / base:.2f}"] for name, ns in medians.items()]
    print("\n4. one mmap + munmap pair of 64 KiB, untouched (us, median of %d)" % repeats)
    print(pb.table(rows, ["mechanism", "us", "x native"]))
    return medians


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    pb.require_built(pb.PATD, pb.PAT_PYTHON, os.path.join(pb.BENCH_BIN, "alloc_churn"))
    with pb.patd() as patd:
        patd.create_group("bench")
        results = {
            "startup": startup(patd, args.repeats * 4),
            "numpy": numpy_workload(patd, args.repeats),
            "churn": churn(patd, args.repeats),
            "mechanisms": mechanisms(patd, args.repeats),
        }
    print("\nresults:", pb.save("member_memory", results))


if __name__ == "__main__":
    main()
