#!/usr/bin/python3.11
"""daemon_throughput: patd's control plane.

1. Group life cycle: `patctl group create` and `patctl group destroy`
   (a host process started, its socket served, then shut down and reaped),
   timed as posix_spawn + waitpid of each command, interleaved with
     - `patctl status` twice (the two client round trips, no host), and
     - spawning /bin/sleep and killing + reaping it (a process's life cycle
       without any protocol: the kernel's floor for starting a host).
2. Status requests per second: 8 concurrent clients, each its own process
   with one connection, speaking the protocol directly (JSON + NUL frames,
   {"method":"io.pat.Daemon.Status"}), closed loop, for --seconds, against
     - patd, and
     - frame_echo (bench/programs/frame_echo.c): the same framing with a
       fixed reply and no JSON, the ceiling for these clients on this box.
   Rounds alternate between the two servers.

Run: /usr/bin/python3.11 bench/daemon_throughput.py [--build-dir build]
"""

import json
import multiprocessing
import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import patbench

STATUS_CALL = json.dumps({"method": "io.pat.Daemon.Status"}).encode() + b"\0"


def lifecycle_variants(patd, iterations):
    """{variant: callable -> {measure: seconds}} for the group life cycle."""
    counter = iter(range(iterations * 4))

    def pat_group():
        name = f"bench-{next(counter)}"
        create = patbench.spawn_and_wait(patd.patctl_argv("group", "create", name))
        destroy = patbench.spawn_and_wait(patd.patctl_argv("group", "destroy", name))
        return {"create": create, "destroy": destroy, "total": create + destroy}

    def client_floor():
        first = patbench.spawn_and_wait(patd.patctl_argv("status"))
        second = patbench.spawn_and_wait(patd.patctl_argv("status"))
        return {"total": first + second}

    def process_floor():
        start = time.perf_counter()
        pid = os.posix_spawn("/bin/sleep", ["sleep", "100"], os.environ)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        return {"total": time.perf_counter() - start}

    return {"pat_group": pat_group, "client_floor": client_floor, "process_floor": process_floor}


def status_client(socket_path, barrier, deadline_box, results):
    """One client: connect, wait for the others, then call until the deadline."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(socket_path)
        barrier.wait()
        deadline = time.monotonic() + deadline_box.value
        calls = 0
        first_reply = None
        pending = b""
        while time.monotonic() < deadline:
            sock.sendall(STATUS_CALL)
            while b"\0" not in pending:
                chunk = sock.recv(65536)
                if not chunk:
                    raise RuntimeError("server closed the connection")
                pending += chunk
            reply, _, pending = pending.partition(b"\0")
            if first_reply is None:
                first_reply = reply
            calls += 1
        results.put((calls, first_reply.decode()))


def status_rate(socket_path, clients, seconds):
    """Calls per second summed over `clients` concurrent clients."""
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(clients + 1)
    duration = context.Value("d", seconds)
    results = context.Queue()
    workers = [context.Process(target=status_client, args=(socket_path, barrier, duration, results))
               for _ in range(clients)]
    for worker in workers:
        worker.start()
    barrier.wait()
    collected = [results.get(timeout=seconds + 30) for _ in workers]
    for worker in workers:
        worker.join()
        if worker.exitcode != 0:
            raise RuntimeError(f"a status client failed (exit {worker.exitcode})")
    for _, reply in collected:
        parsed = json.loads(reply)
        if "parameters" not in parsed or "version" not in parsed["parameters"]:
            raise RuntimeError(f"unexpected reply: {reply}")
    return sum(calls for calls, _ in collected) / seconds


class FrameEcho:
    """bench/frame_echo on a socket in a private directory; killed by pid."""

    def __init__(self, build):
        self.dir = tempfile.mkdtemp(prefix="pat-bench-echo-")
        self.socket = os.path.join(self.dir, "echo.sock")
        self.process = subprocess.Popen([str(build.bench_program("frame_echo")), self.socket],
                                        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
        if self.process.stdout.readline().strip() != b"ready":
            self.close()
            raise SystemExit("frame_echo did not start")

    def close(self):
        self.process.kill()
        self.process.wait()
        self.process.stdout.close()
        for leftover in Path(self.dir).iterdir():
            leftover.unlink()
        os.rmdir(self.dir)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def main():
    parser = patbench.argument_parser(__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=50, help="group create+destroy samples (default 50)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent status clients (default 8)")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of one status round (default 3)")
    parser.add_argument("--rounds", type=int, default=3, help="status rounds per server (default 3)")
    args = parser.parse_args()
    build = patbench.Build(args.build_dir)
    start_info = patbench.machine()
    print(f"daemon_throughput: {args.iterations} group life cycles; {args.rounds} rounds of {args.clients} "
          f"status clients for {args.seconds} s per server")

    with patbench.PrivatePatd(build) as patd, FrameEcho(build) as echo:
        lifecycle = patbench.interleaved(lifecycle_variants(patd, args.iterations), args.iterations)
        rates = patbench.interleaved({
            "patd": lambda: status_rate(str(patd.socket), args.clients, args.seconds),
            "frame_echo": lambda: status_rate(echo.socket, args.clients, args.seconds),
        }, args.rounds, patbench.progress("status"))

    lifecycle_ms = {variant: {measure: [sample[measure] * 1e3 for sample in samples] for measure in samples[0]}
                    for variant, samples in lifecycle.items()}
    lifecycle_stats = {variant: {measure: patbench.summary(values) for measure, values in measures.items()}
                       for variant, measures in lifecycle_ms.items()}
    rows = []
    for label, variant, measure in [
        ("patctl group create", "pat_group", "create"),
        ("patctl group destroy", "pat_group", "destroy"),
        ("create + destroy", "pat_group", "total"),
        ("patctl status x2 (client floor)", "client_floor", "total"),
        ("spawn + kill a process (floor)", "process_floor", "total"),
    ]:
        s = lifecycle_stats[variant][measure]
        rows.append([label, f"{s['median']:.2f}", f"{s['p90']:.2f}", f"{s['min']:.2f}", f"{s['max']:.2f}"])
    patbench.print_table(f"Group life cycle, milliseconds ({args.iterations} interleaved samples)",
                         ["operation", "median", "p90", "min", "max"], rows)

    rate_stats = {server: patbench.summary(values) for server, values in rates.items()}
    ceiling = rate_stats["frame_echo"]["median"]
    rows = [[server, f"{s['median']:.0f}", f"{s['min']:.0f}", f"{s['max']:.0f}",
             f"{1e6 * args.clients / s['median']:.0f}", f"{s['median'] / ceiling:.2f}"]
            for server, s in rate_stats.items()]
    patbench.print_table(f"io.pat.Daemon.Status, {args.clients} clients, calls/s (median of {args.rounds} rounds "
                         f"of {args.seconds} s)",
                         ["server", "median/s", "min/s", "max/s", "us/call/client", "vs ceiling"], rows)

    patbench.print_load(start_info)
    if not args.no_json:
        patbench.write_results(
            "daemon_throughput",
            {"iterations": args.iterations, "clients": args.clients, "seconds": args.seconds, "rounds": args.rounds},
            {"lifecycle_milliseconds": lifecycle_ms, "lifecycle_stats": lifecycle_stats,
             "status_calls_per_second": rates, "status_stats": rate_stats},
            start_info)


if __name__ == "__main__":
    main()
