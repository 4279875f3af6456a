#!/usr/bin/python3.11
"""patd --metrics-listen, checked by hand and by a real Prometheus server.

  prometheus_test.py BIN_DIR

Starts a private patd serving metrics on a free loopback port and on a Unix
socket, puts a group with a running member, an exit and a refusal in it,
and checks the page: the series and their values, the text format, 404 and
405, and that a non-loopback address is refused at start-up. Then starts
Debian's prometheus on loopback with a generated configuration and a
temporary storage directory, lets it scrape patd, and reads the series back
through its HTTP query API. Everything started is stopped by pid. Exits 77
(a CTest skip) when prometheus is not installed.
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
from private_patd import PrivatePatd  # noqa: E402

SKIP = 77


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http(request_bytes, address):
    """Sends raw bytes to (host, port) or a Unix path; returns the raw reply."""
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(address)
        sock.sendall(request_bytes)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode()


def scrape(address):
    reply = http(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", address)
    head, _, body = reply.partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 200 "), head
    assert "text/plain; version=0.0.4" in head, head
    return body


def sample(body, name, **labels):
    """The value of the one sample of `name` having at least `labels`."""
    found = []
    for line in body.splitlines():
        match = re.fullmatch(r'([a-z_:]+)(?:\{(.*)\})? (\S+)', line)
        if not match or match.group(1) != name:
            continue
        have = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(2) or ""))
        if all(have.get(k) == str(v) for k, v in labels.items()):
            found.append(float(match.group(3)))
    assert len(found) == 1, f"{name} {labels}: {found}\n{body}"
    return found[0]


def check_rerouted_syscalls(body):
    """The member's loader mapped its libraries through the host: mmap is
    counted, and its histogram is Prometheus-shaped (cumulative buckets
    ending in +Inf, which equals _count)."""
    calls = sample(body, "pat_rerouted_syscalls_total", group="m", syscall="mmap")
    assert calls > 0
    assert sample(body, "pat_rerouted_syscall_duration_seconds_count", group="m", syscall="mmap") == calls
    assert sample(body, "pat_rerouted_syscall_duration_seconds_sum", group="m", syscall="mmap") > 0
    buckets = []
    for line in body.splitlines():
        match = re.fullmatch(r'pat_rerouted_syscall_duration_seconds_bucket\{group="m",syscall="mmap",le="([^"]+)"\} (\S+)',
                             line)
        if match:
            buckets.append((float(match.group(1)), float(match.group(2))))
    assert len(buckets) > 2 and buckets[-1] == (float("inf"), calls), buckets
    assert all(a[0] < b[0] and a[1] <= b[1] for a, b in zip(buckets, buckets[1:])), buckets


def check_page(patd, tcp, unix_path):
    body = scrape(tcp)
    assert sample(body, "pat_groups") == 1
    assert sample(body, "pat_group_members", group="m") == 1
    pid = json.loads(patd.patctl("group", "show", "m", "--json").stdout)["members"][0]["pid"]
    assert sample(body, "pat_member_threads", group="m", pid=pid, program="/usr/bin/sleep") == 1
    assert sample(body, "pat_member_resident_bytes", group="m", pid=pid) > 0
    assert sample(body, "pat_member_cpu_seconds_total", group="m", pid=pid) >= 0
    assert sample(body, "pat_group_resident_bytes", group="m") > 0
    assert sample(body, "pat_group_proportional_bytes", group="m") > 0
    assert sample(body, "pat_dataplane_buffers", group="m") == 0
    assert sample(body, "pat_dataplane_channels", group="m") == 0
    check_rerouted_syscalls(body)
    assert sample(body, "pat_member_starts_total", reason="run") == 2
    assert sample(body, "pat_member_exits_total", reason="exit", code="3") == 1
    assert sample(body, "pat_member_refusals_total", error="io.pat.ProgramNotFound") == 1
    assert sample(body, "pat_daemon_requests_total", method="io.pat.Group.Create", error="") == 1
    assert sample(body, "pat_daemon_requests_total", method="io.pat.Member.Run",
                  error="io.pat.ProgramNotFound") == 1
    assert sample(body, "pat_daemon_requests_total", method="io.pat.Group.Show", error="io.pat.GroupNotFound") == 1
    assert sample(body, "pat_daemon_connections") >= 0
    # Every family has HELP and TYPE once, before its samples.
    types = re.findall(r"^# TYPE (\S+) (\S+)$", body, re.M)
    assert len(types) == len({name for name, _ in types}), types
    assert all(kind in ("counter", "gauge", "histogram") for _, kind in types)
    assert all(name.endswith("_total") for name, kind in types if kind == "counter"), types
    assert all(name.endswith("_seconds") for name, kind in types if kind == "histogram"), types
    # The same page on the Unix socket; other paths and methods refused.
    assert sample(scrape(unix_path), "pat_group_members", group="m") == 1
    assert http(b"GET /other HTTP/1.1\r\n\r\n", tcp).startswith("HTTP/1.1 404 ")
    assert http(b"POST /metrics HTTP/1.1\r\n\r\n", tcp).startswith("HTTP/1.1 405 ")
    # A request head over 8 KiB is refused without being read further.
    assert http(b"GET /metrics HTTP/1.1\r\n" + b"X: y\r\n" * 4000, tcp).startswith("HTTP/1.1 431 ")
    head = http(b"HEAD /metrics HTTP/1.1\r\n\r\n", tcp)
    assert head.startswith("HTTP/1.1 200 ") and head.endswith("\r\n\r\n"), head[:300]
    patd.patctl("status")  # and patd serves on


def query(prometheus_port, expression):
    url = f"http://127.0.0.1:{prometheus_port}/api/v1/query?" + urllib.parse.urlencode({"query": expression})
    with urllib.request.urlopen(url, timeout=10) as reply:
        answer = json.load(reply)
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def check_with_prometheus(workdir, metrics_port):
    prometheus_port = free_port()
    config = workdir / "prometheus.yml"
    config.write_text(f"""global:
  scrape_interval: 1s
scrape_configs:
  - job_name: patd
    static_configs:
      - targets: ["127.0.0.1:{metrics_port}"]
""")
    log = open(workdir / "prometheus.log", "wb")
    process = subprocess.Popen(
        ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={workdir / 'data'}",
         f"--web.listen-address=127.0.0.1:{prometheus_port}"],
        stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 90
        wanted = {
            'up{job="patd"}': 1,
            'pat_group_members{group="m"}': 1,
            'pat_member_exits_total{reason="exit",code="3"}': 1,
            'pat_member_refusals_total{error="io.pat.ProgramNotFound"}': 1,
            'count(pat_member_resident_bytes{group="m"} > 0)': 1,
            'pat_rerouted_syscall_duration_seconds_count{group="m",syscall="mmap"} > bool 0': 1,
            'histogram_quantile(0.5, pat_rerouted_syscall_duration_seconds_bucket{group="m",syscall="mmap"}) > bool 0': 1,
        }
        seen = {}
        while time.monotonic() < deadline and seen != wanted:
            if process.poll() is not None:
                raise AssertionError("prometheus exited:\n" + (workdir / "prometheus.log").read_text())
            try:
                for expression in wanted:
                    result = query(prometheus_port, expression)
                    if result:
                        seen[expression] = float(result[0]["value"][1])
            except OSError:
                pass  # not listening yet
            time.sleep(0.5)
        assert seen == wanted, f"read back {seen}, wanted {wanted}\n" + (workdir / "prometheus.log").read_text()
        print("prometheus read back:", seen)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def check_refused_addresses(bin_dir):
    """patd refuses to start on an address that is not loopback, or not an
    address, and says why."""
    for address, why in [("0.0.0.0:9464", "only loopback"), ("192.0.2.1:9464", "only loopback"),
                         ("[::]:9464", "only loopback"), ("localhost:9464", "not an IP address"),
                         ("127.0.0.1:0", "port must be"), ("127.0.0.1:65536", "port must be"),
                         ("127.0.0.1:94x", "port must be"), ("metrics.sock", "expected HOST:PORT")]:
        runtime = tempfile.mkdtemp(prefix="pat-metrics-bad-")
        try:
            refused = subprocess.run([f"{bin_dir}/patd", "--runtime-dir", runtime, "--metrics-listen", address],
                                     capture_output=True, text=True, timeout=30)
        finally:
            shutil.rmtree(runtime, ignore_errors=True)
        assert refused.returncode == 1 and why in refused.stderr, (address, refused)


def main():
    bin_dir = sys.argv[1]
    if shutil.which("prometheus") is None:
        print("SKIP: prometheus is not installed (scripts/setup.sh installs it)")
        return SKIP
    check_refused_addresses(bin_dir)

    workdir = Path(tempfile.mkdtemp(prefix="pat-metrics-test-"))
    metrics_port = free_port()
    unix_path = str(workdir / "metrics.sock")
    try:
        with PrivatePatd(bin_dir, extra_args=["--metrics-listen", f"127.0.0.1:{metrics_port}"]) as patd:
            # patd takes one --metrics-listen: a second daemon, with a
            # runtime directory of its own, serves the Unix-socket form.
            with PrivatePatd(bin_dir, extra_args=["--metrics-listen", unix_path]) as unix_patd:
                unix_patd.patctl("group", "create", "m")
                unix_patd.patctl("run", "--detach", "--output", os.devnull, "-g", "m", "--", "/bin/sleep", "300")
                patd.patctl("group", "create", "m")
                patd.patctl("run", "--detach", "--output", os.devnull, "-g", "m", "--", "/bin/sleep", "300")
                assert patd.patctl("run", "-g", "m", "--", "/bin/sh", "-c", "exit 3", check=False).returncode == 3
                assert patd.patctl("run", "-g", "m", "--", "/nonexistent", check=False).returncode == 127
                assert patd.patctl("group", "show", "absent", check=False).returncode != 0
                check_page(patd, ("127.0.0.1", metrics_port), unix_path)
                check_with_prometheus(workdir, metrics_port)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
