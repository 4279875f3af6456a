#!/usr/bin/python3.11
"""control_load: patd's control API under load (issue 13, section 3).

A private patd with 16 groups of 2 sleeping members each. Clients speak the
protocol directly (JSON + NUL frames, as bench/daemon_throughput.py), closed
loop, each call chosen in turn among io.pat.Daemon.Status, io.pat.Group.List
and io.pat.Group.Show of one of the groups. The connections are spread over
--workers processes, each driving its share with a selector, so that the
clients' own interpreter is not what is measured.

1. Throughput: --rounds rounds, interleaved, of
     one      one client in a loop, --single-seconds per round
     many     --clients concurrent clients, --seconds/--rounds per round
   Targets: 0 errors, p99 of `many` at most 20 ms, and `many`'s calls/s at
   least half of `one`'s.
2. A stopped host: the same clients, 8 of which now call Show of one group
   (the victim); --stop-seconds with the victim's host running, then
   --stop-seconds with it stopped (kill -STOP by pid; CONT afterwards), and
   meanwhile `patctl group show VICTIM` from the command line.
   Targets: the calls about the other groups get no errors and a p99 at most
   20 ms or at most 1.5 times their p99 with the host running; the patctl
   show fails within 15 s with a one-line error.

Run: nice /usr/bin/python3.11 bench/control_load.py [--build-dir build] [--clients 200] [--seconds 60] [--quick]
"""

import json
import multiprocessing
import os
import selectors
import signal
import socket
import subprocess
import threading
import time

import patbench

GROUPS = 16
MEMBERS_PER_GROUP = 2
VICTIM_CLIENTS = 8
P99_LIMIT_MS = 20.0
METHODS = ("io.pat.Daemon.Status", "io.pat.Group.List", "io.pat.Group.Show")


class Connection:
    """One client: a socket, the calls it makes in turn, its pending reply."""

    def __init__(self, socket_path, index, groups):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(socket_path)
        self.sock.setblocking(False)
        self.index = index
        self.groups = groups
        self.turn = index
        self.pending = b""
        self.sent_at = None
        self.method = None

    def next_call(self):
        self.method = METHODS[self.turn % len(METHODS)] if len(self.groups) > 1 else METHODS[2]
        parameters = {"name": self.groups[(self.turn // len(METHODS)) % len(self.groups)]} \
            if self.method.endswith("Show") else None
        self.turn += 1
        return patbench.call_frame(self.method, parameters)


def drive(socket_path, plans, seconds, barrier, results):
    """A worker process: one Connection per plan (a list of group names its
    Show calls go to), closed loop for `seconds`. Puts {kind: {"latencies_ms":
    [...], "errors": {name: count}}} on `results`, kind being "victim" for a
    connection whose plan is a single group, else "others"."""
    selector = selectors.DefaultSelector()
    connections = [Connection(socket_path, i, groups) for i, groups in enumerate(plans)]
    stats = {"others": {"latencies_ms": [], "errors": {}}, "victim": {"latencies_ms": [], "errors": {}}}
    barrier.wait()
    deadline = time.monotonic() + seconds
    for conn in connections:
        conn.sock.sendall(conn.next_call())
        conn.sent_at = time.perf_counter()
        selector.register(conn.sock, selectors.EVENT_READ, conn)
    open_connections = len(connections)
    # Replies still owed after the deadline get this long (a stopped host's
    # Show takes patd's host-call timeout to fail).
    drain_deadline = deadline + 30
    while open_connections and time.monotonic() < drain_deadline:
        for key, _ in selector.select(timeout=0.5):
            conn = key.data
            kind = "victim" if len(conn.groups) == 1 else "others"
            try:
                chunk = conn.sock.recv(1 << 20)
            except BlockingIOError:
                continue
            if not chunk:
                stats[kind]["errors"]["connection closed"] = stats[kind]["errors"].get("connection closed", 0) + 1
                selector.unregister(conn.sock)
                open_connections -= 1
                continue
            conn.pending += chunk
            if b"\0" not in conn.pending:
                continue
            reply, _, conn.pending = conn.pending.partition(b"\0")
            stats[kind]["latencies_ms"].append((time.perf_counter() - conn.sent_at) * 1e3)
            error = json.loads(reply).get("error")
            if error:
                stats[kind]["errors"][error] = stats[kind]["errors"].get(error, 0) + 1
            if time.monotonic() >= deadline:
                selector.unregister(conn.sock)
                open_connections -= 1
                continue
            conn.sock.sendall(conn.next_call())
            conn.sent_at = time.perf_counter()
    for conn in connections:
        conn.sock.close()
    stats["unanswered"] = open_connections
    results.put(stats)


def load(socket_path, plans, seconds, workers):
    """Runs the connections of `plans` over `workers` processes; merged stats."""
    context = multiprocessing.get_context("fork")
    workers = max(1, min(workers, len(plans)))
    shares = [plans[i::workers] for i in range(workers)]
    barrier = context.Barrier(workers + 1)
    results = context.Queue()
    processes = [context.Process(target=drive, args=(socket_path, share, seconds, barrier, results))
                 for share in shares]
    for process in processes:
        process.start()
    barrier.wait()
    started = time.monotonic()
    collected = [results.get(timeout=seconds + 60) for _ in processes]
    took = time.monotonic() - started
    for process in processes:
        process.join()
    merged = {"seconds": took, "unanswered": sum(c["unanswered"] for c in collected)}
    for kind in ("others", "victim"):
        latencies = [x for c in collected for x in c[kind]["latencies_ms"]]
        errors = {}
        for c in collected:
            for name, count in c[kind]["errors"].items():
                errors[name] = errors.get(name, 0) + count
        merged[kind] = {"latencies_ms": latencies, "errors": errors}
    return merged


def figures(stats, seconds, kind="others"):
    latencies = stats[kind]["latencies_ms"]
    return {
        "calls": len(latencies),
        "calls_per_second": len(latencies) / seconds,
        "errors": sum(stats[kind]["errors"].values()),
        "error_names": stats[kind]["errors"],
        "p50_ms": patbench.percentile(latencies, 0.5) if latencies else float("nan"),
        "p99_ms": patbench.percentile(latencies, 0.99) if latencies else float("nan"),
        "max_ms": max(latencies) if latencies else float("nan"),
    }


def row(label, f):
    return [label, f["calls"], f"{f['calls_per_second']:.0f}", f["errors"], f"{f['p50_ms']:.2f}",
            f"{f['p99_ms']:.2f}", f"{f['max_ms']:.1f}"]


def set_up_groups(patd):
    names = [f"load-{i:02d}" for i in range(GROUPS)]
    for name in names:
        patd.create_group(name)
        for _ in range(MEMBERS_PER_GROUP):
            patd.patctl("run", "--detach", "--output", "/dev/null", "--group", name, "--", "/bin/sleep", "100000")
    return names


def show_stopped(patd, victim):
    """`patctl group show VICTIM` while its host is stopped: exit code,
    seconds, stderr."""
    started = time.monotonic()
    try:
        result = subprocess.run(patd.patctl_argv("group", "show", victim), stdin=subprocess.DEVNULL,
                                capture_output=True, text=True, timeout=60)
        return result.returncode, time.monotonic() - started, result.stderr.strip()
    except subprocess.TimeoutExpired:
        return None, time.monotonic() - started, "(no answer in 60 s)"


def stopped_host_phase(patd, names, args):
    victim, others = names[0], names[1:]
    plans = [[victim]] * VICTIM_CLIENTS + [others] * (args.clients - VICTIM_CLIENTS)
    running = load(str(patd.socket), plans, args.stop_seconds, args.workers)
    host = patd.show(victim)["host_pid"]
    os.kill(host, signal.SIGSTOP)
    try:
        # A thread: subprocess.run waits without the interpreter's lock.
        show_result = []
        show = threading.Thread(target=lambda: show_result.append(show_stopped(patd, victim)))
        show.start()
        stopped = load(str(patd.socket), plans, args.stop_seconds, args.workers)
        show.join()
    finally:
        os.kill(host, signal.SIGCONT)
    return running, stopped, show_result[0]


def main():
    parser = patbench.argument_parser(__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200, help="concurrent clients (default 200)")
    parser.add_argument("--seconds", type=float, default=60, help="seconds of concurrent load in all (default 60)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of one client and of many (default 3)")
    parser.add_argument("--single-seconds", type=float, default=5, help="seconds of the lone client per round (default 5)")
    parser.add_argument("--stop-seconds", type=float, default=15, help="seconds with the victim's host running, then stopped (default 15)")
    parser.add_argument("--workers", type=int, default=4, help="client processes (default 4)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1 round of 10 s, 2 s alone, 8 s per stop phase")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.rounds, args.single_seconds, args.stop_seconds = 10, 1, 2, 12
    build = patbench.Build(args.build_dir)
    start_info = patbench.machine()
    print(f"control_load: {args.clients} clients for {args.seconds:.0f} s in {args.rounds} rounds, against one "
          f"client; {GROUPS} groups of {MEMBERS_PER_GROUP} members; load average {patbench.load_average()}", flush=True)

    with patbench.PrivatePatd(build) as patd:
        names = set_up_groups(patd)
        socket_path = str(patd.socket)
        round_seconds = args.seconds / args.rounds
        samples = patbench.interleaved({
            "one": lambda: load(socket_path, [names], args.single_seconds, 1),
            "many": lambda: load(socket_path, [names] * args.clients, round_seconds, args.workers),
        }, args.rounds, patbench.progress("load"))
        running, stopped, (show_code, show_seconds, show_error) = stopped_host_phase(patd, names, args)

    def merged(runs):
        return {"seconds": sum(r["seconds"] for r in runs), "unanswered": sum(r["unanswered"] for r in runs),
                "others": {"latencies_ms": [x for r in runs for x in r["others"]["latencies_ms"]],
                           "errors": {k: v for r in runs for k, v in r["others"]["errors"].items()}}}

    one, many = (merged(samples[k]) for k in ("one", "many"))
    one_f, many_f = figures(one, one["seconds"]), figures(many, many["seconds"])
    running_f, stopped_f = figures(running, running["seconds"]), figures(stopped, stopped["seconds"])
    victim_f = figures(stopped, stopped["seconds"], "victim")
    headers = ["phase", "calls", "calls/s", "errors", "p50 ms", "p99 ms", "max ms"]
    patbench.print_table("Status, List and Show mixed, closed loop", headers,
                         [row("one client", one_f), row(f"{args.clients} clients", many_f)])
    patbench.print_table(f"Calls about the other groups ({args.clients - VICTIM_CLIENTS} clients; "
                         f"{VICTIM_CLIENTS} more call Show of the victim)", headers,
                         [row("victim's host running", running_f), row("victim's host stopped", stopped_f),
                          row("(victim Show, stopped)", victim_f)])
    print(f"\nvictim's Show errors while stopped: {victim_f['error_names']}; "
          f"unanswered at the end: {stopped['unanswered']}")
    print(f"patctl group show of the stopped group: exit {show_code} after {show_seconds:.1f} s: {show_error}")
    for label, f in (("many", many_f), ("running", running_f), ("stopped", stopped_f)):
        if f["errors"]:
            print(f"errors ({label}): {f['error_names']}")

    ratio = many_f["calls_per_second"] / one_f["calls_per_second"]
    print("\nTargets:")
    results = [
        patbench.passed(f"errors under load {many_f['errors'] + one_f['errors']} (0)",
                        many_f["errors"] + one_f["errors"] == 0 and many["unanswered"] == 0),
        patbench.passed(f"p99 with {args.clients} clients {many_f['p99_ms']:.2f} ms (at most {P99_LIMIT_MS:.0f})",
                        many_f["p99_ms"] <= P99_LIMIT_MS),
        patbench.passed(f"throughput {ratio:.2f} of one client's (at least 0.5)", ratio >= 0.5),
        patbench.passed(f"other groups' errors with a stopped host {stopped_f['errors']} (0)", stopped_f["errors"] == 0),
        patbench.passed(f"other groups' p99 with a stopped host {stopped_f['p99_ms']:.2f} ms against "
                        f"{running_f['p99_ms']:.2f} ms (at most {P99_LIMIT_MS:.0f} or 1.5x)",
                        stopped_f["p99_ms"] <= max(P99_LIMIT_MS, 1.5 * running_f["p99_ms"])),
        patbench.passed(f"show of the stopped group failed in {show_seconds:.1f} s with one line (at most 15 s)",
                        show_code not in (None, 0) and show_seconds <= 15 and len(show_error.splitlines()) == 1),
    ]
    patbench.print_load(start_info)
    if not args.no_json:
        patbench.write_results("control_load", vars(args) | {"build_dir": str(args.build_dir)},
                               {"one": one_f, "many": many_f, "ratio": ratio, "host_running": running_f,
                                "host_stopped": stopped_f, "victim_show": victim_f,
                                "patctl_show_stopped": {"exit": show_code, "seconds": show_seconds,
                                                        "stderr": show_error}}, start_info)
    raise SystemExit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
