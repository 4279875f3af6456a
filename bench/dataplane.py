#!/usr/bin/python3.11
"""dataplane: libpat's channels between two members of one group, against the
same operations over pipes between two ordinary processes (fork):

  round trip: an 8-byte message there and back (two channels, ping-pong;
              two pipes), with both peers on one CPU (PEER_CPU=0) and
              where the scheduler puts them (usually two CPUs: then every
              hand-over that finds the peer asleep wakes another CPU);
  transfer:   a 256 MiB buffer handed over (pat: one reference through a
              channel; pipe: every byte written and read, into a buffer the
              receiver touched beforehand), acknowledged by the receiver;
  transfer+read: the same, and the receiver then reads all 256 MiB, as a
              consumer of the data would.

Both sides of every measurement are bench/programs/dataplane_peer.cc. Each
variant runs in its own process pair per round; rounds are interleaved and
the table shows medians over all samples. Ratios are pipe / pat (above 1:
pat is faster).

Run: /usr/bin/python3.11 bench/dataplane.py [--build-dir build] [--rounds 5]
"""

import json
import os

import patbench

BYTES = 256 << 20


def samples_of(output):
    """The samples (µs) of the one JSON line a dataplane_peer side printed."""
    for line in output.splitlines():
        if line.startswith("{"):
            return json.loads(line)["samples_us"]
    raise RuntimeError(f"no samples in {output!r}")


def main():
    parser = patbench.argument_parser(__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds of every variant (default 5)")
    parser.add_argument("--round-trips", type=int, default=20000, help="timed round trips per round (default 20000)")
    parser.add_argument("--transfers", type=int, default=5, help="timed 256 MiB transfers per round (default 5)")
    args = parser.parse_args()
    build = patbench.Build(args.build_dir)
    peer = build.bench_program("dataplane_peer")
    start_info = patbench.machine()
    print(f"dataplane: {args.rounds} interleaved rounds; {args.round_trips} round trips and "
          f"{args.transfers} transfers of {BYTES >> 20} MiB per round")

    with patbench.PrivatePatd(build) as patd:
        patd.create_group("dp")

        def pat_pair(receiver, sender, env=()):
            outputs = patbench.outputs_of_all([patd.member_argv("dp", receiver, env),
                                               patd.member_argv("dp", sender, env)])
            return samples_of(outputs[1])

        def pipe(*argv, env=None):
            return samples_of(patbench.outputs_of_all([[peer, *argv]], env=env)[0])

        one_cpu = dict(os.environ, PEER_CPU="0")
        variants = {
            "pat_roundtrip": lambda: pat_pair([peer, "pat-pong"], [peer, "pat-ping", args.round_trips]),
            "pipe_roundtrip": lambda: pipe("pipe-pingpong", args.round_trips),
            "pat_roundtrip_one_cpu": lambda: pat_pair([peer, "pat-pong"], [peer, "pat-ping", args.round_trips],
                                                      env=["PEER_CPU=0"]),
            "pipe_roundtrip_one_cpu": lambda: pipe("pipe-pingpong", args.round_trips, env=one_cpu),
            "pat_transfer": lambda: pat_pair([peer, "pat-receive", args.transfers, "ref"],
                                             [peer, "pat-send", BYTES, args.transfers, "ref"]),
            "pipe_transfer": lambda: pipe("pipe-transfer", BYTES, args.transfers, "ref"),
            "pat_transfer_read": lambda: pat_pair([peer, "pat-receive", args.transfers, "read"],
                                                  [peer, "pat-send", BYTES, args.transfers, "read"]),
            "pipe_transfer_read": lambda: pipe("pipe-transfer", BYTES, args.transfers, "read"),
        }
        rounds = patbench.interleaved(variants, args.rounds, patbench.progress("dataplane"))
        arena = patd.show("dp")["memory"].get("arena", {})

    samples = {name: [s for one_round in values for s in one_round] for name, values in rounds.items()}
    stats = {name: patbench.summary(values) for name, values in samples.items()}

    def row(label, pat, pipe_name, unit, scale):
        p, q = stats[pat], stats[pipe_name]
        return [label, f"{p['median'] / scale:.2f} {unit}", f"{q['median'] / scale:.2f} {unit}",
                f"{q['median'] / p['median']:.1f}x"]

    def bandwidth(name):
        return f"{BYTES / (stats[name]['median'] / 1e6) / (1 << 30):.1f} GiB/s"

    patbench.print_table("Medians (ratio: pipe / pat)", ["operation", "pat (members)", "pipe (processes)", "ratio"], [
        row("round trip, 8 bytes, one CPU", "pat_roundtrip_one_cpu", "pipe_roundtrip_one_cpu", "µs", 1),
        row("round trip, 8 bytes, placed freely", "pat_roundtrip", "pipe_roundtrip", "µs", 1),
        row("hand over 256 MiB", "pat_transfer", "pipe_transfer", "µs", 1),
        row("hand over 256 MiB and read it", "pat_transfer_read", "pipe_transfer_read", "ms", 1e3),
    ])
    patbench.print_table("Effective bandwidth (256 MiB / median)", ["operation", "pat", "pipe"], [
        ["hand over and read", bandwidth("pat_transfer_read"), bandwidth("pipe_transfer_read")],
        ["hand over (pipe only: pat copies nothing)", "-", bandwidth("pipe_transfer")],
    ])
    for name in ("pat_roundtrip", "pipe_roundtrip"):
        rt = stats[name]
        print(f"{name} placed freely: p90 {rt['p90']:.2f} µs, min {rt['min']:.2f} µs over {rt['n']} samples")
    patbench.print_load(start_info)
    if not args.no_json:
        patbench.write_results("dataplane", {"rounds": args.rounds, "round_trips": args.round_trips,
                                             "transfers": args.transfers, "bytes": BYTES, "arena_after": arena},
                               {name: {"summary": stats[name], "samples_us": values} for name, values in samples.items()},
                               start_info)


if __name__ == "__main__":
    main()
