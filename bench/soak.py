#!/usr/bin/python3.11
"""soak: many member spawn/exit cycles through one real patd, and whether
anything grows (issue 13, section 3).

A private patd (its own runtime directory) and one group; --clients threads
each run `patctl run` in a closed loop until --cycles members have come and
gone. The cycles rotate over four kinds:
  true      /bin/true
  python    pat-python -c pass (the build's bin/pat-python)
  self      /bin/sh -c 'kill -SIG $$': the member kills itself
  killed    /bin/sleep 60 started detached (patctl run -d), then killed
            from outside by its pid; the cycle ends once its host reaped it
The signals rotate over TERM, KILL, INT, HUP, USR1.

Sampled from /proc (VmRSS of /proc/PID/status, entries of /proc/PID/fd) and
Group.Show (the group's RSS): at the start, after --warmup cycles (the
baseline: first runs load programs and fill caches once), every
cycles/--samples cycles while the clients run, and at the end once the
group has no members. Targets, end against the baseline: patd's and the
host's RSS grow by at most 1 MiB and their fd counts by 0, the group's RSS
is back to its baseline (within 1 MiB), and no cycle ended unexpectedly.

Run: nice /usr/bin/python3.11 bench/soak.py [--build-dir build] [--cycles 10000] [--clients 4] [--quick]
"""

import itertools
import json
import os
import signal
import threading
import time

import patbench

KINDS = ("true", "python", "self", "killed")
SIGNALS = (signal.SIGTERM, signal.SIGKILL, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1)
GROUP = "soak"
GROWTH_LIMIT_KIB = 1024


class Cycles:
    """Hands out cycle numbers to the client threads and keeps what went
    wrong."""

    def __init__(self, patd, build):
        self.patd = patd
        self.build = build
        self.counter = itertools.count()
        self.lock = threading.Lock()
        self.done = 0
        self.failures = []

    def next(self, limit):
        with self.lock:
            number = next(self.counter)
        return number if number < limit else None

    def run_one(self, number):
        kind = KINDS[number % len(KINDS)]
        sig = SIGNALS[(number // len(KINDS)) % len(SIGNALS)]
        try:
            problem = getattr(self, f"cycle_{kind}")(sig)
        except Exception as error:  # a hang or an unexpected exception is a result, not a crash
            problem = f"{type(error).__name__}: {error}"
        with self.lock:
            self.done += 1
            if problem:
                self.failures.append(f"cycle {number} ({kind}, {sig.name}): {problem}")

    def expect(self, argv, exit_code):
        result = self.patd.patctl("run", "--group", GROUP, "--", *argv, check=False)
        if result.returncode != exit_code:
            return f"exit {result.returncode}, expected {exit_code}: {result.stderr.strip()}"
        return None

    def cycle_true(self, _sig):
        return self.expect(["/bin/true"], 0)

    def cycle_python(self, _sig):
        return self.expect([self.build.pat_python, "-c", "pass"], 0)

    def cycle_self(self, sig):
        return self.expect(["/bin/sh", "-c", f"kill -{sig.name[3:]} $$"], 128 + sig)

    def cycle_killed(self, sig):
        # --output: the member must not hold patctl's stdout pipe open.
        started = self.patd.patctl("run", "--detach", "--json", "--output", "/dev/null", "--group", GROUP, "--",
                                   "/bin/sleep", "60", check=False)
        if started.returncode != 0:
            return f"detached run: exit {started.returncode}: {started.stderr.strip()}"
        pid = json.loads(started.stdout)["pid"]
        os.kill(pid, sig)
        deadline = time.monotonic() + 30
        while os.path.exists(f"/proc/{pid}"):
            if time.monotonic() > deadline:
                return f"member {pid} still there 30 s after {sig.name}"
            time.sleep(0.005)
        return None


def sample(patd, label, cycles_done):
    group = patd.show(GROUP)
    host = group["host_pid"]
    # The Show itself opens a connection to patd and one from patd to the
    # host; let both close before counting descriptors.
    time.sleep(0.3)
    return {
        "label": label,
        "cycles": cycles_done,
        "patd_rss_kib": patbench.rss_kib(patd.process.pid),
        "patd_fds": patbench.fd_count(patd.process.pid),
        "host_rss_kib": patbench.rss_kib(host),
        "host_fds": patbench.fd_count(host),
        "group_rss_kib": group["memory"]["rss_bytes"] // 1024,
        "members": len(group["members"]),
        "time": time.monotonic(),
    }


def quiesce(patd):
    """Waits until the group has no members and the host has reaped them."""
    deadline = time.monotonic() + 60
    while patd.show(GROUP)["members"] or patbench.children(patd.show(GROUP)["host_pid"]):
        if time.monotonic() > deadline:
            raise SystemExit("the group still has members a minute after the last cycle")
        time.sleep(0.1)
    time.sleep(0.5)


def run_cycles(cycles, limit, clients, on_progress=None, every=None):
    """Runs cycles up to number `limit` on `clients` threads; calls
    on_progress(done) from this thread about every `every` cycles."""
    def client():
        while (number := cycles.next(limit)) is not None:
            cycles.run_one(number)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    next_report = every
    while any(thread.is_alive() for thread in threads):
        time.sleep(0.2)
        if on_progress and cycles.done >= next_report:
            on_progress(cycles.done)
            next_report += every
    for thread in threads:
        thread.join()


def main():
    parser = patbench.argument_parser(__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=10_000, help="member spawn/exit cycles after the warm-up (default 10000)")
    parser.add_argument("--warmup", type=int, default=200, help="cycles before the baseline (default 200)")
    parser.add_argument("--clients", type=int, default=4, help="concurrent patctl loops (default 4)")
    parser.add_argument("--samples", type=int, default=10, help="samples while the cycles run (default 10)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 400 cycles after 40 of warm-up")
    args = parser.parse_args()
    if args.quick:
        args.cycles, args.warmup = 400, 40
    build = patbench.Build(args.build_dir)
    start_info = patbench.machine()
    print(f"soak: {args.warmup} + {args.cycles} member cycles ({', '.join(KINDS)}), {args.clients} clients; "
          f"load average {patbench.load_average()}", flush=True)

    with patbench.PrivatePatd(build) as patd:
        patd.create_group(GROUP)
        cycles = Cycles(patd, build)
        samples = [sample(patd, "start", 0)]
        run_cycles(cycles, args.warmup, args.clients)
        quiesce(patd)
        samples.append(sample(patd, "baseline", cycles.done))
        started = time.monotonic()

        def periodic(done):
            samples.append(sample(patd, "running", done))
            print(f"  {done - args.warmup}/{args.cycles} cycles, "
                  f"{(done - args.warmup) / (time.monotonic() - started):.0f}/s", flush=True)

        run_cycles(cycles, args.warmup + args.cycles, args.clients, periodic,
                   every=max(1, args.cycles // args.samples))
        took = time.monotonic() - started
        quiesce(patd)
        samples.append(sample(patd, "end", cycles.done))

    columns = ["patd_rss_kib", "patd_fds", "host_rss_kib", "host_fds", "group_rss_kib", "members"]
    patbench.print_table("Samples (RSS in KiB; 'running' samples are taken while members come and go)",
                         ["sample", "cycles"] + columns,
                         [[s["label"], s["cycles"]] + [s[c] for c in columns] for s in samples])
    baseline, end = samples[1], samples[-1]
    growth = {c: end[c] - baseline[c] for c in columns}
    print(f"\n{args.cycles} cycles in {took:.0f} s ({args.cycles / took:.0f}/s); {len(cycles.failures)} unexpected")
    for failure in cycles.failures[:20]:
        print(f"  {failure}")
    print("Growth, end against baseline:")
    results = [
        patbench.passed(f"patd RSS {growth['patd_rss_kib']:+d} KiB (at most +{GROWTH_LIMIT_KIB})",
                        growth["patd_rss_kib"] <= GROWTH_LIMIT_KIB),
        patbench.passed(f"patd fds {growth['patd_fds']:+d} (at most 0)", growth["patd_fds"] <= 0),
        patbench.passed(f"host RSS {growth['host_rss_kib']:+d} KiB (at most +{GROWTH_LIMIT_KIB})",
                        growth["host_rss_kib"] <= GROWTH_LIMIT_KIB),
        patbench.passed(f"host fds {growth['host_fds']:+d} (at most 0)", growth["host_fds"] <= 0),
        patbench.passed(f"group RSS {growth['group_rss_kib']:+d} KiB (back to baseline, within {GROWTH_LIMIT_KIB})",
                        growth["group_rss_kib"] <= GROWTH_LIMIT_KIB),
        patbench.passed(f"unexpected cycle results: {len(cycles.failures)}", not cycles.failures),
    ]
    patbench.print_load(start_info)
    if not args.no_json:
        patbench.write_results("soak", vars(args) | {"build_dir": str(args.build_dir)},
                               {"samples": samples, "growth": growth, "seconds": took,
                                "failures": cycles.failures}, start_info)
    raise SystemExit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
