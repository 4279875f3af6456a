#!/usr/bin/python3.11
"""The cost of a Prometheus scrape of patd (issue 15: at most 50 ms of patd
CPU for 64 groups of 16 members), and whether scraping delays the control API.

  /usr/bin/python3.11 bench/metrics_scrape.py [--groups 64] [--members 16] [--rounds 10] [--batch 5]

A private patd serves --metrics-listen on a free loopback port; GROUPS
groups each get MEMBERS detached `sleep` members.

Part 1, CPU per call, interleaved rounds. Each round runs every variant once;
a variant is BATCH calls in a row, and patd's CPU time for it is the delta
of utime+stime in /proc/PID/stat (proc(5): fields 14 and 15, in clock ticks,
all of patd's threads) divided by BATCH; the sum over /proc/PID/task/*/
schedstat's first field (nanoseconds on a CPU, Documentation/scheduler/
sched-stats.rst) is printed beside it, since a tick is 10 ms:
  scrape    GET /metrics over HTTP (every host describes its group)
  show_all  io.pat.Group.Show of every group on one connection: the same
            figures through the JSON API, as `patctl top` reads them
  status    io.pat.Daemon.Status, for scale
The hosts' CPU (all of them together, /proc/PID/stat as well) is printed
beside patd's: describing a group costs its host more than it costs patd.

Part 2, the control API during scrapes. Interleaved phases: in a "quiet"
phase nothing scrapes; in a "scraping" phase SCRAPERS other processes
scrape /metrics back to back. In both, this process times CALLS
io.pat.Daemon.Status calls, one at a time. Prints medians and p90s of the
Status latency in each, and their ratio.
"""
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import patbench

TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")

# Run by the scraper processes of part 2: scrape until stdin closes.
SCRAPER = r"""
import select, socket, sys
port = int(sys.argv[1])
while not select.select([sys.stdin], [], [], 0)[0]:
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: bench\r\n\r\n")
        while sock.recv(1 << 20):
            pass
"""


def stat_cpu_ms(pid):
    """utime + stime of the whole process, in ms (proc(5) /proc/PID/stat)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2:].split()  # after "pid (comm) "; field 3 is fields[0]
    return (int(fields[11]) + int(fields[12])) * 1000 / TICKS_PER_SECOND


def schedstat_cpu_ms(pid):
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except FileNotFoundError:
            pass  # a thread that ended meanwhile
    return total / 1e6


def http_get(port):
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: bench\r\n\r\n")
        chunks = []
        while chunk := sock.recv(1 << 20):
            chunks.append(chunk)
    reply = b"".join(chunks)
    assert reply.startswith(b"HTTP/1.1 200 "), reply[:200]
    return reply


class ControlClient:
    """One connection to patd's control socket, a call at a time."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(str(path))
        self.buffer = b""

    def call(self, method, parameters=None):
        self.sock.sendall(json.dumps({"method": method, "parameters": parameters or {}}).encode() + b"\0")
        while b"\0" not in self.buffer:
            chunk = self.sock.recv(1 << 20)
            assert chunk, "patd closed the connection"
            self.buffer += chunk
        frame, self.buffer = self.buffer.split(b"\0", 1)
        reply = json.loads(frame)
        assert "error" not in reply, reply
        return reply["parameters"]


def hosts_cpu_ms(host_pids):
    return sum(stat_cpu_ms(pid) for pid in host_pids)


def batch_cost(pid, host_pids, batch, action):
    """patd's CPU per call over `batch` calls of `action`, the hosts' (all
    together), and the caller's wall time per call."""
    stat_before, sched_before = stat_cpu_ms(pid), schedstat_cpu_ms(pid)
    hosts_before, wall_before = hosts_cpu_ms(host_pids), time.perf_counter()
    for _ in range(batch):
        action()
    return {
        "patd_cpu_ms_stat": (stat_cpu_ms(pid) - stat_before) / batch,
        "patd_cpu_ms_schedstat": (schedstat_cpu_ms(pid) - sched_before) / batch,
        "hosts_cpu_ms_stat": (hosts_cpu_ms(host_pids) - hosts_before) / batch,
        "wall_ms": (time.perf_counter() - wall_before) * 1e3 / batch,
    }


def status_latencies(client, calls):
    out = []
    for _ in range(calls):
        start = time.perf_counter()
        client.call("io.pat.Daemon.Status")
        out.append((time.perf_counter() - start) * 1e3)
        time.sleep(0.002)  # spread the calls over the phase, across scrapes
    return out


def scraping_phase(client, port, scrapers, calls):
    processes = [subprocess.Popen([patbench.DEBIAN_PYTHON, "-I", "-c", SCRAPER, str(port)], stdin=subprocess.PIPE)
                 for _ in range(scrapers)]
    try:
        time.sleep(0.3)  # the scrapes are under way
        return status_latencies(client, calls)
    finally:
        for process in processes:
            process.stdin.close()
        for process in processes:
            process.wait(timeout=120)


def cost_part(patd, port, names, args):
    pid = patd.process.pid
    hosts = patd.host_pids()
    assert len(hosts) == len(names), hosts
    client = ControlClient(patd.socket)
    variants = {
        "scrape": lambda: batch_cost(pid, hosts, args.batch, lambda: http_get(port)),
        "show_all": lambda: batch_cost(pid, hosts, args.batch,
                                       lambda: [client.call("io.pat.Group.Show", {"name": n}) for n in names]),
        "status": lambda: batch_cost(pid, hosts, args.batch, lambda: client.call("io.pat.Daemon.Status")),
    }
    samples = patbench.interleaved(variants, args.rounds, patbench.progress("cost rounds"))
    results = {}
    for name, runs in samples.items():
        results[name] = {key: patbench.summary([run[key] for run in runs]) for key in runs[0]}
        results[name]["samples"] = runs
    rows = []
    for name in variants:
        r = results[name]
        rows.append([name, f"{r['patd_cpu_ms_stat']['median']:.2f}", f"{r['patd_cpu_ms_stat']['p90']:.2f}",
                     f"{r['patd_cpu_ms_schedstat']['median']:.2f}", f"{r['patd_cpu_ms_schedstat']['p90']:.2f}",
                     f"{r['hosts_cpu_ms_stat']['median']:.0f}", f"{r['wall_ms']['median']:.1f}",
                     f"{r['wall_ms']['p90']:.1f}"])
    patbench.print_table(
        f"patd CPU per call (ms; /proc/PID/stat utime+stime over batches of {args.batch}, and schedstat) "
        f"and the caller's wall time per call, {args.rounds} interleaved rounds",
        ["variant", "stat med", "stat p90", "sched med", "sched p90", "hosts med", "wall med", "wall p90"], rows)
    return results


def latency_part(patd, port, args):
    client = ControlClient(patd.socket)
    variants = {
        "quiet": lambda: status_latencies(client, args.calls),
        "scraping": lambda: scraping_phase(client, port, args.scrapers, args.calls),
    }
    samples = patbench.interleaved(variants, args.rounds, patbench.progress("latency rounds"))
    results = {name: patbench.summary([x for phase in phases for x in phase]) for name, phases in samples.items()}
    rows = [[name, str(r["n"]), f"{r['median']:.3f}", f"{r['p90']:.3f}", f"{r['max']:.3f}"]
            for name, r in results.items()]
    patbench.print_table(f"io.pat.Daemon.Status latency (ms), without and with {args.scrapers} back-to-back scrapers, "
                         f"{args.rounds} interleaved phases of {args.calls} calls",
                         ["phase", "calls", "median", "p90", "max"], rows)
    for key in ("median", "p90"):
        print(f"Status latency scraping / quiet, {key}: {results['scraping'][key] / results['quiet'][key]:.2f}")
    return results


def main():
    parser = patbench.argument_parser(__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=64)
    parser.add_argument("--members", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--batch", type=int, default=5, help="calls per measured batch in part 1")
    parser.add_argument("--scrapers", type=int, default=2, help="concurrent scraping processes in part 2")
    parser.add_argument("--calls", type=int, default=100, help="Status calls per phase in part 2")
    args = parser.parse_args()
    build = patbench.Build(args.build_dir)
    start_info = patbench.machine()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with patbench.PrivatePatd(build, extra_args=["--metrics-listen", f"127.0.0.1:{port}"]) as patd:
        progress = patbench.progress("starting members")
        names = [f"g{i:02d}" for i in range(args.groups)]
        for i, name in enumerate(names):
            patd.create_group(name)
            for _ in range(args.members):
                patd.patctl("run", "--detach", "--output", os.devnull, "-g", name, "--", "/bin/sleep", "3600")
            progress(i + 1, len(names))
        page = http_get(port)
        body = page.split(b"\r\n\r\n", 1)[1]
        series = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
        members = sum(1 for line in body.splitlines() if line.startswith(b"pat_member_threads{"))
        print(f"\n{args.groups} groups x {args.members} members ({members} members on the page); "
              f"the page: {len(body)} bytes, {series} samples")
        costs = cost_part(patd, port, names, args)
        latencies = latency_part(patd, port, args)
    scrape = costs["scrape"]["patd_cpu_ms_stat"]
    print(f"\nscrape of {args.groups}x{args.members}: {scrape['median']:.2f} ms patd CPU at the median, "
          f"{scrape['p90']:.2f} ms at p90 (/proc/PID/stat; schedstat: "
          f"{costs['scrape']['patd_cpu_ms_schedstat']['median']:.2f} ms median); target <= 50 ms: "
          f"{patbench.verdict(scrape['p90'], 50, higher_is_better=False)} at p90")
    patbench.print_load(start_info)
    if not args.no_json:
        patbench.write_results("metrics_scrape", vars(args) | {"build_dir": str(args.build_dir)},
                               {"cost": costs, "status_latency": latencies}, start_info)


if __name__ == "__main__":
    sys.exit(main())
