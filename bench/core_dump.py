#!/usr/bin/python3.11
"""core_dump: how long a crashing program takes to die with a core, and how
big the core is, as a member and as an ordinary process.
  native:  the program run directly (fork+exec), RLIMIT_CORE unlimited
  pat:     `patctl run --group core ...`, in a group where a pat-python
           member idles too, RLIMIT_CORE unlimited (the kernel writes a core
           without memory, the host completes the member's own:
           tracer/core_file.h)
and each of them with RLIMIT_CORE 0, so that the difference is the cost of
the core. The program (bench/programs/crash_after_touch.c) touches
--megabytes of heap, then writes through NULL. Every sample: spawn, wait,
with the working directory a scratch directory where core_pattern "core"
puts the file; the core is measured (size, blocks) and removed, outside
the timed part for every variant (removing a freshly written core costs
ext4 tens of milliseconds here). The variants take turns, the order
rotating every round; the cost of the core is the difference of the
medians (and of the p90s) with and without one, sizes are the medians.

Target to report against: pat's core costs no more time than the ordinary
process's, and holds only the member (far smaller than the group).

Run: /usr/bin/python3.11 bench/core_dump.py [--build-dir build] [--rounds 20] [--megabytes 64]
"""

import os
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import patbench


def crash_and_wait(argv, cwd, core_limit):
    """Wall time of spawn + wait of a command that must die of SIGSEGV (the
    patctl variants exit 139), with RLIMIT_CORE `core_limit` and `cwd`; then
    the core's apparent and allocated sizes, and it is removed."""
    def limits():
        resource.setrlimit(resource.RLIMIT_CORE, (core_limit, resource.RLIM_INFINITY))
    start = time.perf_counter()
    process = subprocess.Popen([str(a) for a in argv], cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, preexec_fn=limits)
    status = process.wait()
    took = time.perf_counter() - start
    if status not in (-11, 139):
        raise RuntimeError(f"{' '.join(map(str, argv))}: status {status}, expected SIGSEGV")
    core = Path(cwd) / "core"
    sizes = (0, 0)
    if core.exists():
        st = core.stat()
        sizes = (st.st_size, st.st_blocks * 512)
        core.unlink()
    elif core_limit != 0:
        raise RuntimeError(f"{' '.join(map(str, argv))}: no core in {cwd} (core_pattern must be \"core\")")
    return {"seconds": took, "apparent": sizes[0], "allocated": sizes[1]}


def main():
    parser = patbench.argument_parser(__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20, help="samples per variant (default 20)")
    parser.add_argument("--megabytes", type=int, default=64, help="heap the crasher touches (default 64)")
    args = parser.parse_args()
    if Path("/proc/sys/kernel/core_pattern").read_text() != "core\n":
        raise SystemExit("core_dump: needs core_pattern \"core\" (cores in the working directory)")
    build = patbench.Build(args.build_dir)
    crasher = [build.bench_program("crash_after_touch"), str(args.megabytes)]
    start_info = patbench.machine()
    print(f"core_dump: {args.rounds} interleaved rounds, the crasher touches {args.megabytes} MiB")

    scratch = Path(tempfile.mkdtemp(prefix="pat-bench-core-"))
    try:
        with patbench.PrivatePatd(build) as patd:
            patd.create_group("core")
            patd.patctl("run", "--detach", "--output", os.devnull, "--group", "core", "--", build.pat_python, "-c",
                        "import time; time.sleep(100000)")
            in_group = patd.patctl_argv("run", "--group", "core", "--", *crasher)
            variants = {
                "native": lambda: crash_and_wait(crasher, scratch, resource.RLIM_INFINITY),
                "native, no core": lambda: crash_and_wait(crasher, scratch, 0),
                "pat": lambda: crash_and_wait(in_group, scratch, resource.RLIM_INFINITY),
                "pat, no core": lambda: crash_and_wait(in_group, scratch, 0),
            }
            patbench.interleaved(variants, 2)  # warm-up: page cache, the host's first launch
            samples = patbench.interleaved(variants, args.rounds, patbench.progress("core_dump"))
            group = patd.show("core")
            # The host logs how long each completion took (event=member.core),
            # relayed by patd inside an event=host.log line's quoted text.
            writer = [float(line.rsplit("seconds=", 1)[1].split()[0].rstrip('"')) * 1e3
                      for line in patd.log().splitlines() if "event=member.core " in line]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    ms = {name: patbench.summary([s["seconds"] * 1e3 for s in values]) for name, values in samples.items()}
    # The median size over the samples: apparent (st_size) and allocated (st_blocks).
    size = {name: {kind: statistics.median(s[kind] for s in values) for kind in ("apparent", "allocated")}
            for name, values in samples.items()}
    rows = []
    for name in samples:
        rows.append([name, f"{ms[name]['median']:.1f}", f"{ms[name]['p90']:.1f}", f"{size[name]['apparent'] / 2**20:.2f}",
                     f"{size[name]['allocated'] / 2**20:.2f}"])
    patbench.print_table(f"Crash with and without a core, milliseconds ({args.rounds} interleaved rounds)",
                         ["variant", "median", "p90", "core MiB (apparent)", "core MiB (on disk)"], rows)
    native_cost = ms["native"]["median"] - ms["native, no core"]["median"]
    pat_cost = ms["pat"]["median"] - ms["pat, no core"]["median"]
    # Each round's own difference: the two samples ran close together, under
    # much the same load from the rest of the machine.
    def paired(with_core, without):
        return statistics.median((a["seconds"] - b["seconds"]) * 1e3 for a, b in zip(samples[with_core], samples[without]))
    native_paired, pat_paired = paired("native", "native, no core"), paired("pat", "pat, no core")
    native_cost_p90 = ms["native"]["p90"] - ms["native, no core"]["p90"]
    pat_cost_p90 = ms["pat"]["p90"] - ms["pat, no core"]["p90"]
    group_size = group["memory"].get("size_bytes", 0) / 2**30
    patbench.print_table("Against the target", ["measure", "value", "target", "verdict"], [
        ["core cost, native (median with - without)", f"{native_cost:.1f} ms", "-", "-"],
        ["core cost, pat (median with - without)", f"{pat_cost:.1f} ms", f"<= {native_cost:.1f} ms",
         patbench.verdict(pat_cost, native_cost, False)],
        ["core cost, native (median of each round's difference)", f"{native_paired:.1f} ms", "-", "-"],
        ["core cost, pat (median of each round's difference)", f"{pat_paired:.1f} ms", "-", "-"],
        ["core cost, native (p90 with - without)", f"{native_cost_p90:.1f} ms", "-", "-"],
        ["core cost, pat (p90 with - without)", f"{pat_cost_p90:.1f} ms", "-", "-"],
        ["pat core vs native core (apparent size)", f"{size['pat']['apparent'] / max(1, size['native']['apparent']):.2f}x",
         "-", "-"],
        ["pat core vs native core (allocated blocks)", f"{size['pat']['allocated'] / max(1, size['native']['allocated']):.2f}x",
         "-", "-"],
        ["pat's core writer alone (host log), median", f"{patbench.summary(writer)['median']:.1f} ms", "-", "-"],
        ["the group's address space (apparent)", f"{group_size:.1f} GiB", "-", "-"],
    ])
    patbench.print_load(start_info)
    if not args.no_json:
        patbench.write_results("core_dump", {"rounds": args.rounds, "megabytes": args.megabytes},
                               {"samples": samples, "milliseconds": ms, "core_bytes": size, "writer_milliseconds": writer,
                                "group_size_bytes": group["memory"].get("size_bytes")},
                               start_info)


if __name__ == "__main__":
    main()
