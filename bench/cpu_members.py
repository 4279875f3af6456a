#!/usr/bin/python3.11
"""cpu_members: two units of CPU-bound pure Python, done
  (a) by 2 pat-python members of one group, in parallel,
  (b) by 2 threads of one /usr/bin/python3.11 (one GIL),
  (c) by 2 ordinary /usr/bin/python3.11 processes, in parallel,
  (d) by 1 /usr/bin/python3.11 process doing one unit (the baseline),
  (e) by 1 pat-python member doing one unit,
  (f) by 1 pat-python process outside pat doing one unit, and
  (g) by 2 pat-python processes outside pat, in parallel, and
  (h) by 2 threads of one pat-python process outside pat.
(f), (g) and (h) separate what pat costs from what pat-python's interpreter
build costs: pat-python runs Debian's shared libpython3.11.so, position-independent
code, while /usr/bin/python3.11 has the interpreter linked in statically.
Each is the wall time from launching to the end of the last process, measured
from outside the same way for every variant (so start-up counts for all).
The unit is sized to take --seconds in (d) on this machine.

Targets to report against: members >= 1.8x faster than threads, and members
no slower than processes (ratio <= 1.00).

Run: /usr/bin/python3.11 bench/cpu_members.py [--build-dir build] [--rounds 5]
"""

import time
from pathlib import Path

import patbench

WORK = Path(__file__).resolve().parent / "programs" / "cpu_work.py"
PYTHON = patbench.DEBIAN_PYTHON


def wall_time_of_all(commands):
    """Starts every command at once, waits for all; seconds. Each must exit 0
    and print its result."""
    start = time.perf_counter()
    outputs = patbench.outputs_of_all(commands)
    took = time.perf_counter() - start
    for command, out in zip(commands, outputs):
        if not out.strip():
            raise RuntimeError(f"{' '.join(map(str, command))}: printed nothing")
    return took


def calibrate(seconds):
    """Rounds of cpu_work.spin that take `seconds` in one plain process."""
    probe = 2_000_000
    took = min(wall_time_of_all([[PYTHON, WORK, str(probe)]]) for _ in range(3))
    startup = min(wall_time_of_all([[PYTHON, "-c", "print(0)"]]) for _ in range(3))
    return int(probe * seconds / max(took - startup, 1e-3))


def main():
    parser = patbench.argument_parser(__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds of all variants (default 5)")
    parser.add_argument("--seconds", type=float, default=1.5, help="one unit of work in one process (default 1.5)")
    args = parser.parse_args()
    build = patbench.Build(args.build_dir)
    start_info = patbench.machine()

    rounds_of_work = calibrate(args.seconds)
    unit = str(rounds_of_work)
    print(f"cpu_members: one unit = {rounds_of_work} rounds of integer arithmetic (~{args.seconds} s alone), "
          f"{args.rounds} interleaved rounds")

    with patbench.PrivatePatd(build) as patd:
        patd.patctl("group", "create", "cpu")
        member = patd.patctl_argv("run", "--group", "cpu", "--", str(build.pat_python), str(WORK), unit)
        pat_python = [build.pat_python, WORK, unit]
        variants = {
            "members": lambda: wall_time_of_all([member, member]),
            "threads": lambda: wall_time_of_all([[PYTHON, WORK, unit, "2"]]),
            "processes": lambda: wall_time_of_all([[PYTHON, WORK, unit], [PYTHON, WORK, unit]]),
            "single_process": lambda: wall_time_of_all([[PYTHON, WORK, unit]]),
            "single_member": lambda: wall_time_of_all([member]),
            "single_pat_python": lambda: wall_time_of_all([pat_python]),
            "pat_python_processes": lambda: wall_time_of_all([pat_python, pat_python]),
            "pat_python_threads": lambda: wall_time_of_all([[*pat_python, "2"]]),
        }
        samples = patbench.interleaved(variants, args.rounds, patbench.progress("cpu_members"))

    stats = {name: patbench.summary(values) for name, values in samples.items()}
    median = {name: s["median"] for name, s in stats.items()}
    descriptions = {
        "members": "(a) 2 pat-python members, one group",
        "threads": "(b) 2 threads, one python3.11",
        "processes": "(c) 2 python3.11 processes",
        "single_process": "(d) 1 python3.11 process, 1 unit",
        "single_member": "(e) 1 pat-python member, 1 unit",
        "single_pat_python": "(f) 1 pat-python process (no pat), 1 unit",
        "pat_python_processes": "(g) 2 pat-python processes (no pat)",
        "pat_python_threads": "(h) 2 threads, one pat-python (no pat)",
    }
    rows = []
    for name, description in descriptions.items():
        s = stats[name]
        rows.append([description, f"{s['median']:.3f}", f"{s['min']:.3f}", f"{s['max']:.3f}",
                     f"{s['median'] / median['single_process']:.2f}"])
    patbench.print_table(f"Wall time, seconds (median of {args.rounds} interleaved rounds)",
                         ["variant", "median", "min", "max", "vs (d)"], rows)

    speedup = median["threads"] / median["members"]
    vs_processes = median["members"] / median["processes"]
    overhead = median["single_member"] / median["single_process"]
    shared_mm = median["members"] / median["pat_python_processes"]
    interpreter = median["single_pat_python"] / median["single_process"]
    same_interpreter_speedup = median["pat_python_threads"] / median["members"]
    patbench.print_table("Ratios (of medians)", ["ratio", "value", "target", "verdict"], [
        ["(b)/(a) threads / members (speed-up)", f"{speedup:.2f}x", ">= 1.80x", patbench.verdict(speedup, 1.8, True)],
        ["(a)/(c) members / processes", f"{vs_processes:.2f}", "<= 1.00",
         patbench.verdict(vs_processes, 1.0, False)],
        ["(h)/(a) threads / members, same interpreter", f"{same_interpreter_speedup:.2f}x", ">= 1.80x",
         patbench.verdict(same_interpreter_speedup, 1.8, True)],
        ["(a)/(g) members / processes, same interpreter", f"{shared_mm:.2f}", "<= 1.00",
         patbench.verdict(shared_mm, 1.0, False)],
        ["(e)/(d) 1 member / 1 process", f"{overhead:.2f}", "-", "-"],
        ["(f)/(d) pat-python / python3.11, no pat", f"{interpreter:.2f}", "-", "-"],
    ])

    patbench.print_load(start_info)
    if not args.no_json:
        patbench.write_results(
            "cpu_members",
            {"rounds": args.rounds, "unit_seconds": args.seconds, "unit_rounds_of_work": rounds_of_work},
            {"seconds": samples, "stats": stats,
             "ratios": {"threads_over_members": speedup, "members_over_processes": vs_processes,
                        "members_over_pat_python_processes": shared_mm,
                        "pat_python_threads_over_members": same_interpreter_speedup,
                        "single_member_over_single_process": overhead,
                        "single_pat_python_over_single_process": interpreter}},
            start_info)


if __name__ == "__main__":
    main()
