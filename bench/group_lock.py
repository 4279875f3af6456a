#!/usr/bin/python3.11
"""group_lock: does watching a group slow its members down? Every rerouted
mmap and munmap of every member is answered under the group lock, so
nothing slow may run under it (issue 9: `group show` measured each
member's memory with mincore while holding it). One member holds
--hold-mib of touched memory and maps and unmaps 64 KiB in a loop for
--seconds (bench/programs/map_loop.c), measured
  alone:     with nothing else asking about the group,
  with_top:  with `patctl top --interval 0.2` running beside it (a Group.Show
             with usage figures five times a second).
The two are interleaved round by round; the table gives medians over the
rounds of each round's mean, median and p99 time per mmap+munmap pair, and
with_top / alone. The target: a ratio within noise (the spread of `alone`
itself, shown as its max/min of the round means).

Run: /usr/bin/python3.11 bench/group_lock.py [--build-dir build] [--rounds 10]
"""

import json
import subprocess
import time

import patbench


def main():
    parser = patbench.argument_parser(__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10, help="rounds, each running both variants (default 10)")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of one member's loop (default 3)")
    parser.add_argument("--hold-mib", type=int, default=512, help="touched memory the member holds (default 512)")
    parser.add_argument("--interval", type=float, default=0.2, help="patctl top's --interval (default 0.2)")
    args = parser.parse_args()
    build = patbench.Build(args.build_dir)
    map_loop = build.bench_program("map_loop")
    start_info = patbench.machine()
    print(f"group_lock: {args.rounds} interleaved rounds of {args.seconds} s, the member holding "
          f"{args.hold_mib} MiB, patctl top every {args.interval} s")

    with patbench.PrivatePatd(build) as patd:
        patd.create_group("locked")
        member = patd.member_argv("locked", [map_loop, args.hold_mib, args.seconds])
        looks = []

        def alone():
            return json.loads(subprocess.run(member, check=True, capture_output=True, text=True).stdout)

        def with_top():
            top = subprocess.Popen(patd.patctl_argv("top", "--interval", args.interval, "--json"),
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True)
            try:
                time.sleep(2 * args.interval)  # top has looked at least once
                sample = alone()
            finally:
                top.terminate()
                out, err = top.communicate(timeout=30)
            if top.returncode not in (0, -15):
                raise RuntimeError(f"patctl top: exit {top.returncode}: {err.strip()}")
            looks.append(len(out.splitlines()))
            return sample

        samples = patbench.interleaved({"alone": alone, "with_top": with_top}, args.rounds,
                                       patbench.progress("rounds"))

    measures = ("mean_us", "median_us", "p99_us")
    stats = {name: {m: patbench.summary([s[m] for s in values]) for m in measures}
             for name, values in samples.items()}
    rows = []
    for name in ("alone", "with_top"):
        rows.append([name] + [f"{stats[name][m]['median']:.2f}" for m in measures] +
                    [f"{patbench.summary([s['iterations'] for s in samples[name]])['median']:.0f}"])
    rows.append(["with_top / alone"] +
                [f"{stats['with_top'][m]['median'] / stats['alone'][m]['median']:.3f}" for m in measures] + ["-"])
    patbench.print_table(f"Microseconds per mmap+munmap of 64 KiB (medians over {args.rounds} rounds)",
                         ["variant", "mean", "median", "p99", "iterations"], rows)
    spread = stats["alone"]["mean_us"]["max"] / stats["alone"]["mean_us"]["min"]
    print(f"\nnoise: round means of `alone` range over {spread:.3f}x (max/min); "
          f"patctl top looked {min(looks)}-{max(looks)} times per round")

    patbench.print_load(start_info)
    if not args.no_json:
        patbench.write_results("group_lock",
                               {"rounds": args.rounds, "seconds": args.seconds, "hold_mib": args.hold_mib,
                                "interval": args.interval},
                               {"samples": samples, "stats": stats, "top_looks_per_round": looks,
                                "ratio_mean": stats["with_top"]["mean_us"]["median"] /
                                stats["alone"]["mean_us"]["median"]},
                               start_info)


if __name__ == "__main__":
    main()
