#!/usr/bin/python3.11
"""run_latency: end-to-end latency of launching /bin/true and waiting for it,
  pat:    `patctl run --group lat /bin/true` (patctl -> patd -> pat-host ->
          the member, and the exit status back the same way),
  native: /bin/true itself (fork+exec, the kernel's own),
  floor:  `patctl status` (patctl's start-up and one round trip to patd: the
          part of pat's number that is not launching anything).
Every sample is measured the same way: posix_spawn of the command with stdio
on /dev/null, then waitpid, timed around both. Variants are interleaved
sample by sample after a warm-up.

Target to report against: median <= 10 ms for patctl run.

Run: /usr/bin/python3.11 bench/run_latency.py [--build-dir build] [--iterations 300]
"""

import patbench


def main():
    parser = patbench.argument_parser(__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=300, help="samples per variant (default 300)")
    parser.add_argument("--warmup", type=int, default=20, help="discarded samples per variant (default 20)")
    args = parser.parse_args()
    build = patbench.Build(args.build_dir)
    start_info = patbench.machine()
    print(f"run_latency: {args.iterations} interleaved samples per variant after {args.warmup} warm-up")

    with patbench.PrivatePatd(build) as patd:
        patd.patctl("group", "create", "lat")
        commands = {
            "patctl_run": patd.patctl_argv("run", "--group", "lat", "/bin/true"),
            "native": ["/bin/true"],
            "patctl_status": patd.patctl_argv("status"),
        }
        variants = {name: (lambda c=command: patbench.spawn_and_wait(c)) for name, command in commands.items()}
        patbench.interleaved(variants, args.warmup)
        samples = patbench.interleaved(variants, args.iterations)

    ms = {name: [s * 1e3 for s in values] for name, values in samples.items()}
    stats = {name: patbench.summary(values) for name, values in ms.items()}
    native = stats["native"]["median"]
    descriptions = {
        "patctl_run": "patctl run --group lat /bin/true",
        "native": "/bin/true (fork+exec)",
        "patctl_status": "patctl status (client floor)",
    }
    rows = [[descriptions[name], f"{s['median']:.2f}", f"{s['p90']:.2f}", f"{s['min']:.2f}", f"{s['max']:.2f}",
             f"{s['median'] / native:.1f}x"] for name, s in stats.items()]
    patbench.print_table(f"Launch and wait, milliseconds ({args.iterations} interleaved samples each)",
                         ["variant", "median", "p90", "min", "max", "vs native"], rows)
    run_median = stats["patctl_run"]["median"]
    launch_share = run_median - stats["patctl_status"]["median"]
    patbench.print_table("Against the target", ["measure", "value", "target", "verdict"], [
        ["patctl run median", f"{run_median:.2f} ms", "<= 10 ms", patbench.verdict(run_median, 10.0, False)],
        ["patctl run p90", f"{stats['patctl_run']['p90']:.2f} ms", "-", "-"],
        ["run minus status (launch share)", f"{launch_share:.2f} ms", "-", "-"],
    ])

    patbench.print_load(start_info)
    if not args.no_json:
        patbench.write_results("run_latency", {"iterations": args.iterations, "warmup": args.warmup},
                               {"milliseconds": ms, "stats": stats}, start_info)


if __name__ == "__main__":
    main()
