#!/usr/bin/python3.11
"""python_members: many pat-python members of one group, each at the speed of
pat-python's non-PIC build, against processes (docs/pat-python.md).

The machine has 2 CPUs, so 64 members cannot run at once, and wall time
would only measure the scheduler. What "64 members at the fixed builds'
speed" means here is CPU efficiency: every member runs the same unit of
pure-Python work and reports the CPU time that unit took in its own process
(time.process_time around the loop: start-up and time spent waiting for a
CPU excluded), and which file it ran from. The variants, run side by side
in interleaved rounds, 64 at once or alone:

  members      pat-python members of one group (the loader moves the
               non-PIC build into a free slot for all but the first)
  nonpic       pat-python's non-PIC build run directly as processes, each at
               its link address in its own address space: the speed the
               fixed-address builds had
  python3.11   Debian's /usr/bin/python3.11 processes (PGO and LTO)
  pie          the position-independent pat-python as processes (what
               members beyond the free slots run)

Reported: median and p90 of the CPU seconds per unit, and the ratios of
medians. Then, with --memory N, the group's RSS and PSS per idle member
for N members of each kind, against N python3.11 processes; the host's
cost of moving the build (bench_relocation); start-up latency of one
member, unmoved, moved and position-independent; and with --capacity N, N
members started in one group (which build each got).

Run: /usr/bin/python3.11 bench/python_members.py [--build-dir build] [--rounds 3] [--members 64]
"""

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import patbench

UNIT = Path(__file__).resolve().parent / "programs" / "python_unit.py"
PYTHON = patbench.DEBIAN_PYTHON
IDLE = "import time; time.sleep(3600)"


def unit_samples(commands):
    """Starts every command at once; each prints 'EXE CPU_SECONDS RESULT'.
    Returns [(exe, cpu_seconds)]."""
    samples = []
    for out in patbench.outputs_of_all(commands):
        exe, seconds, _ = out.split()
        samples.append((exe, float(seconds)))
    return samples


def calibrate(seconds):
    """Rounds of the loop that take about `seconds` of CPU in python3.11."""
    probe = 2_000_000
    took = min(unit_samples([[PYTHON, UNIT, probe]])[0][1] for _ in range(3))
    return max(int(probe * seconds / took), 1)


def pie_only_copy(build, directory):
    """pat-python copied without its non-PIC build beside it: members of it
    run the position-independent program (the loader logs the missing build
    once)."""
    (directory / "bin").mkdir(parents=True)
    copy = directory / "bin" / "pat-python"
    shutil.copy2(build.pat_python, copy)
    return copy


def speed(patd, build, args):
    rounds_of_work = calibrate(args.unit_seconds)
    unit = str(rounds_of_work)
    n = args.members
    nonpic = build.dir / "lib" / "pat" / "pat-python-nonpic"
    print(f"speed: one unit = {rounds_of_work} rounds (~{args.unit_seconds} s of CPU in python3.11), "
          f"{n} at once and alone, {args.rounds} interleaved rounds")
    patd.create_group("speed")
    member = patd.member_argv("speed", [build.pat_python, UNIT, unit])
    variants = {
        f"members x{n}": lambda: unit_samples([member] * n),
        f"nonpic x{n}": lambda: unit_samples([[nonpic, UNIT, unit]] * n),
        f"python3.11 x{n}": lambda: unit_samples([[PYTHON, UNIT, unit]] * n),
        f"pie x{n}": lambda: unit_samples([[build.pat_python, UNIT, unit]] * n),
        "member alone": lambda: unit_samples([member]),
        "nonpic alone": lambda: unit_samples([[nonpic, UNIT, unit]]),
        "python3.11 alone": lambda: unit_samples([[PYTHON, UNIT, unit]]),
        "pie alone": lambda: unit_samples([[build.pat_python, UNIT, unit]]),
    }
    raw = patbench.interleaved(variants, args.rounds, patbench.progress("speed"))
    seconds = {name: [s for batch in batches for _, s in batch] for name, batches in raw.items()}
    builds = {}
    for exe, _ in [pair for batch in raw[f"members x{n}"] for pair in batch]:
        builds[exe] = builds.get(exe, 0) + 1

    stats = {name: patbench.summary(values) for name, values in seconds.items()}
    base = stats["nonpic alone"]["median"]
    patbench.print_table(f"CPU seconds per unit of work (all samples of {args.rounds} rounds)",
                         ["variant", "samples", "median", "p90", "vs nonpic alone"],
                         [[name, s["n"], f"{s['median']:.3f}", f"{s['p90']:.3f}", f"{s['median'] / base:.2f}"]
                          for name, s in stats.items()])
    print(f"\nwhich build the {n} concurrent members ran ({args.rounds} rounds):")
    for exe, count in sorted(builds.items()):
        print(f"  {count:5d}  {exe}")

    def ratio(a, b):
        return stats[a]["median"] / stats[b]["median"]

    ratios = {
        f"members x{n} / nonpic x{n}": ratio(f"members x{n}", f"nonpic x{n}"),
        f"members x{n} / member alone": ratio(f"members x{n}", "member alone"),
        f"members x{n} / python3.11 x{n}": ratio(f"members x{n}", f"python3.11 x{n}"),
        f"members x{n} / pie x{n}": ratio(f"members x{n}", f"pie x{n}"),
        "member alone / nonpic alone": ratio("member alone", "nonpic alone"),
        "nonpic alone / python3.11 alone": ratio("nonpic alone", "python3.11 alone"),
        "pie alone / python3.11 alone": ratio("pie alone", "python3.11 alone"),
    }
    patbench.print_table("Ratios of medians (CPU per unit; lower is faster)", ["ratio", "value"],
                         [[name, f"{value:.3f}"] for name, value in ratios.items()])
    return {"rounds_of_work": rounds_of_work, "cpu_seconds": seconds, "stats": stats, "ratios": ratios,
            "member_builds": builds}


def group_memory(patd, group):
    memory = patd.show(group)["memory"]
    return memory["rss_bytes"], memory["pss_bytes"]


def pss_of(pid):
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024
    return 0


def wait_until(condition, timeout=120):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out")
        time.sleep(0.2)


def start_idle_members(patd, group, program, count):
    for _ in range(count):
        patd.patctl("run", "--group", group, "--detach", "--output", os.devnull, "--", program, "-c", IDLE)
    # Idle once every member is asleep: its CPU time stops moving.
    wait_until(lambda: len(patd.show(group)["members"]) == count)
    time.sleep(2)


def memory(patd, build, args, scratch):
    n = args.memory
    print(f"\nmemory: {n} idle members of each kind ({IDLE!r}), group RSS and PSS per member")
    rows, results = [], {}
    pie = pie_only_copy(build, scratch / "pie")
    for name, program in (("pat-python members", build.pat_python), ("position-independent members", pie)):
        group = re.sub(r"[^a-z]", "-", name)[:20]
        patd.create_group(group)
        empty_rss, empty_pss = group_memory(patd, group)
        start_idle_members(patd, group, program, n)
        rss, pss = group_memory(patd, group)
        exes = {}
        for member in patd.show(group)["members"]:
            exes[member["program"]] = exes.get(member["program"], 0) + 1
        results[name] = {"rss_per_member": (rss - empty_rss) / n, "pss_per_member": (pss - empty_pss) / n,
                         "builds": exes}
        rows.append([name, f"{(rss - empty_rss) / n / 2**20:.1f}", f"{(pss - empty_pss) / n / 2**20:.1f}"])
        patd.patctl("group", "destroy", group, "--force", "--grace-ms", "100")
    processes = [subprocess.Popen([PYTHON, "-c", IDLE]) for _ in range(n)]
    try:
        time.sleep(3)
        pss = sum(pss_of(p.pid) for p in processes)
        rss = sum(int(Path(f"/proc/{p.pid}/statm").read_text().split()[1]) * 4096 for p in processes)
    finally:
        for p in processes:
            p.kill()
            p.wait()
    results["python3.11 processes"] = {"rss_per_member": rss / n, "pss_per_member": pss / n}
    rows.append(["python3.11 processes", f"{rss / n / 2**20:.1f}", f"{pss / n / 2**20:.1f}"])
    patbench.print_table(f"MiB per idle interpreter ({n} of each; for groups: the group's growth / {n})",
                         ["kind", "RSS", "PSS"], rows)
    return results


def relocation_cost(build):
    out = subprocess.run([str(build.bench_program("bench_relocation")),
                          str(build.dir / "lib" / "pat" / "pat-python-nonpic"), "50"],
                         check=True, capture_output=True, text=True).stdout
    print("\nthe host's cost of moving the build (bench_relocation, 50 runs):")
    print("  " + out.strip().replace("\n", "\n  "))
    return out


def startup_latency(patd, build, args, scratch):
    """Wall time of `patctl run pat-python -c pass`: the member unmoved (the
    group is otherwise empty), moved (one member holds the build's own
    addresses), and position-independent."""
    pie = (scratch / "pie" / "bin" / "pat-python") if (scratch / "pie").exists() else pie_only_copy(build, scratch / "pie")
    for group in ("alone", "beside", "pie"):
        patd.create_group(group)
    patd.patctl("run", "--group", "beside", "--detach", "--output", os.devnull, "--", build.pat_python, "-c", IDLE)
    variants = {
        "unmoved": lambda: patbench.spawn_and_wait(patd.member_argv("alone", [build.pat_python, "-c", "pass"])),
        "moved": lambda: patbench.spawn_and_wait(patd.member_argv("beside", [build.pat_python, "-c", "pass"])),
        "position-independent": lambda: patbench.spawn_and_wait(patd.member_argv("pie", [pie, "-c", "pass"])),
        "python3.11 process": lambda: patbench.spawn_and_wait([PYTHON, "-c", "pass"]),
    }
    samples = patbench.interleaved(variants, args.latency_rounds)
    stats = {name: patbench.summary(values) for name, values in samples.items()}
    patbench.print_table(f"Start-up to exit of `-c pass`, ms (median/p90 of {args.latency_rounds} interleaved rounds)",
                         ["variant", "median", "p90"],
                         [[name, f"{s['median'] * 1e3:.1f}", f"{s['p90'] * 1e3:.1f}"] for name, s in stats.items()])
    return stats


def capacity(patd, build, count):
    print(f"\ncapacity: {count} idle pat-python members in one group")
    patd.create_group("capacity")
    start = time.perf_counter()
    start_idle_members(patd, "capacity", build.pat_python, count)
    took = time.perf_counter() - start
    group = patd.show("capacity")
    exes = {}
    for member in group["members"]:
        exes[member["program"]] = exes.get(member["program"], 0) + 1
    alive = sum(1 for member in group["members"] if Path(f"/proc/{member['pid']}").exists())
    print(f"  {len(group['members'])} members ({alive} alive) started in {took:.1f} s; group RSS "
          f"{group['memory']['rss_bytes'] / 2**20:.0f} MiB, PSS {group['memory']['pss_bytes'] / 2**20:.0f} MiB")
    for exe, n in sorted(exes.items()):
        print(f"  {n:5d}  {exe}")
    patd.patctl("group", "destroy", "capacity", "--force", "--grace-ms", "100")
    return {"members": len(group["members"]), "alive": alive, "builds": exes, "seconds": took,
            "rss_bytes": group["memory"]["rss_bytes"], "pss_bytes": group["memory"]["pss_bytes"]}


def main():
    parser = patbench.argument_parser(__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the speed variants (default 3)")
    parser.add_argument("--members", type=int, default=64, help="members (and processes) at once (default 64)")
    parser.add_argument("--unit-seconds", type=float, default=0.25, help="CPU seconds of one unit (default 0.25)")
    parser.add_argument("--memory", type=int, default=16, help="idle members per kind for memory; 0 skips")
    parser.add_argument("--latency-rounds", type=int, default=10, help="rounds of start-up latency; 0 skips")
    parser.add_argument("--capacity", type=int, default=0, help="also start this many members in one group")
    args = parser.parse_args()
    build = patbench.Build(args.build_dir)
    start_info = patbench.machine()
    results = {}
    scratch = Path(tempfile.mkdtemp(prefix="pat-bench-python-"))
    try:
        with patbench.PrivatePatd(build) as patd:
            results["speed"] = speed(patd, build, args)
            if args.memory:
                results["memory"] = memory(patd, build, args, scratch)
            results["relocation"] = relocation_cost(build)
            if args.latency_rounds:
                results["startup"] = startup_latency(patd, build, args, scratch)
            if args.capacity:
                results["capacity"] = capacity(patd, build, args.capacity)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    patbench.print_load(start_info)
    if not args.no_json:
        patbench.write_results("python_members", vars(args) | {"build_dir": str(args.build_dir)}, results, start_info)


if __name__ == "__main__":
    main()
