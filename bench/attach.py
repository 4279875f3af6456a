#!/usr/bin/python3.11
"""attach: moving a running process into a group (tracer/attach/,
docs/attach.md), at the tracer level: attach_driver (tests/tracer/attach/, a
minimal group host run as an unprivileged user, as pat-host runs) attaches
targets run by the same user under their own parent.

Part 1, a large busy target: attach_churn with 1 GiB of dirty private memory
that keeps writing about 10 MiB/s. Each round first copies the target's own
pages into fresh memory with process_vm_readv (bench/programs/vm_readv_copy.c,
the peer), then attaches it, and checks afterwards that every page came
through. Targets: stopped at most 100 ms; the whole attach at most 1.5x the
peer's copy, measured on the same target in the same round.

Part 2, a small target: attach_churn with 3 MiB of private memory (about 4.5
MiB resident in all), attached end to end. Target: at most 20 ms. These
rounds run first, on their own.

The patd and patctl parts of an attach (the request, the reply) are not in
these figures: that integration comes with the daemon work.

Run as root: /usr/bin/python3.11 bench/attach.py [--build-dir build] [--large-rounds 3] [--small-rounds 15]
"""

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import patbench

USER = "nobody"


class Lab:
    """Copies of the programs where the unprivileged user may run them."""

    def __init__(self, build):
        self.dir = Path(tempfile.mkdtemp(prefix="pat-bench-attach-"))
        os.chmod(self.dir, 0o755)
        self.work = self.dir / "work"
        self.work.mkdir()
        user = pwd.getpwnam(USER)
        self.uid, self.gid = user.pw_uid, user.pw_gid
        os.chown(self.work, self.uid, self.gid)
        attach_dir = build.dir / "tests" / "tracer" / "attach"
        for name in ("attach_driver", "attach_parent", "attach_churn"):
            shutil.copy(attach_dir / name, self.dir / name)
        shutil.copy(build.dir / "libexec" / "pat" / "pat-attach-stub", self.dir / "pat-attach-stub")
        for p in self.dir.iterdir():
            if p.is_file():
                os.chmod(p, 0o755)

    def as_user(self):
        def demote():
            os.setgroups([])
            os.setresgid(self.gid, self.gid, self.gid)
            os.setresuid(self.uid, self.uid, self.uid)
        return demote

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class Driver:
    def __init__(self, lab):
        self.process = subprocess.Popen(
            [lab.dir / "attach_driver", "--stub", lab.dir / "pat-attach-stub", "--uid", str(lab.uid), "--gid", str(lab.gid)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if not self.process.stdout.readline().startswith("ready"):
            raise SystemExit("attach_driver did not start")

    def attach(self, pid):
        self.process.stdin.write(f"attach {pid}\n")
        self.process.stdin.flush()
        while True:
            line = self.process.stdout.readline()
            if not line:
                raise SystemExit("attach_driver ended")
            if line.startswith(("attached ", "refused ", "failed ")):
                break
        if not line.startswith("attached "):
            raise SystemExit(f"attach failed: {line.strip()}")
        return dict(word.split("=", 1) for word in line.split()[1:] if "=" in word)

    def close(self):
        self.process.stdin.close()
        self.process.kill()
        self.process.wait()


class Churn:
    """attach_churn under attach_parent, as the unprivileged user."""

    def __init__(self, lab, name, mib, rate):
        self.socket = str(lab.work / f"{name}.sock")
        self.parent = subprocess.Popen([lab.dir / "attach_parent", lab.dir / "attach_churn", self.socket, str(mib), str(rate)],
                                       stdout=subprocess.PIPE, text=True, preexec_fn=lab.as_user())
        self.pid = int(self.parent.stdout.readline().split()[1])
        if self.parent.stdout.readline().strip() != "pipe ready":
            raise SystemExit("attach_churn did not start")

    def ask(self, command):
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(30)
            s.connect(self.socket)
            s.sendall(command.encode() + b"\n")
            return s.recv(4096).decode().strip()

    def rss_kib(self):
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def finish(self):
        try:
            self.ask("exit 0")
        except OSError:
            pass
        self.parent.wait(timeout=30)


def large_round(lab, driver, copier, mib, rate):
    churn = Churn(lab, "large", mib, rate)
    time.sleep(0.5)  # writing at its rate, not just started
    out = subprocess.run([copier, str(churn.pid)], check=True, capture_output=True, text=True).stdout.split()
    peer_ms = int(out[3]) / 1000
    attached = driver.attach(churn.pid)
    check = churn.ask("check")
    if not check.startswith("ok "):
        raise SystemExit(f"pages lost in the attach: {check}")
    churn.finish()
    return {"peer_copy_ms": peer_ms, "peer_bytes": int(out[1]), "total_ms": int(attached["total_us"]) / 1000,
            "stopped_ms": int(attached["stopped_us"]) / 1000, "precopied": int(attached["precopied"]),
            "copied_stopped": int(attached["copied_stopped"]), "final_copy_ms": int(attached["final_copy_us"]) / 1000}


def small_round(lab, driver):
    churn = Churn(lab, "small", 3, 0.5)
    time.sleep(0.05)
    rss = churn.rss_kib()
    attached = driver.attach(churn.pid)
    check = churn.ask("check")
    if not check.startswith("ok "):
        raise SystemExit(f"pages lost in the attach: {check}")
    churn.finish()
    steps = {k[:-3]: int(v) / 1000 for k, v in attached.items() if k.endswith("_us") and k not in ("total_us", "stopped_us")}
    return {"total_ms": int(attached["total_us"]) / 1000, "stopped_ms": int(attached["stopped_us"]) / 1000, "rss_kib": rss,
            "steps_ms": steps}


def main():
    parser = patbench.argument_parser(__doc__.splitlines()[0])
    parser.add_argument("--large-rounds", type=int, default=3)
    parser.add_argument("--small-rounds", type=int, default=15)
    parser.add_argument("--large-mib", type=int, default=1024)
    parser.add_argument("--rate", type=float, default=10.0, help="MiB/s the large target writes (default 10)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: the targets and the host run as the unprivileged user nobody")
    build = patbench.Build(args.build_dir)
    copier = build.bench_program("vm_readv_copy")
    start_info = patbench.machine()
    lab = Lab(build)
    driver = Driver(lab)
    try:
        # The small rounds first, on their own: after a large round, freeing
        # its 1 GiB twice (the old address space, and the member's copy when
        # it exits) keeps a CPU busy for a while.
        small = [small_round(lab, driver) for _ in range(args.small_rounds)]
        print(f"  {len(small)} small rounds done", flush=True)
        large = []
        for r in range(args.large_rounds):
            large.append(large_round(lab, driver, copier, args.large_mib, args.rate))
            print(f"  large round {r + 1}/{args.large_rounds} done", flush=True)
            time.sleep(2)
    finally:
        driver.close()
        lab.close()

    def stats(rows, key):
        return patbench.summary([row[key] for row in rows])

    ratio = patbench.summary([row["total_ms"] / row["peer_copy_ms"] for row in large])
    stopped, total, peer = stats(large, "stopped_ms"), stats(large, "total_ms"), stats(large, "peer_copy_ms")
    patbench.print_table(
        f"{args.large_mib} MiB target writing {args.rate:g} MiB/s ({len(large)} rounds, milliseconds)",
        ["", "median", "p90", "min", "max", "target", "verdict"],
        [["stopped", f"{stopped['median']:.1f}", f"{stopped['p90']:.1f}", f"{stopped['min']:.1f}", f"{stopped['max']:.1f}", "<= 100",
          patbench.verdict(stopped["p90"], 100, False)],
         ["whole attach", f"{total['median']:.0f}", f"{total['p90']:.0f}", f"{total['min']:.0f}", f"{total['max']:.0f}", "", ""],
         ["peer: process_vm_readv copy", f"{peer['median']:.0f}", f"{peer['p90']:.0f}", f"{peer['min']:.0f}", f"{peer['max']:.0f}", "", ""],
         ["attach / peer (ratio)", f"{ratio['median']:.2f}", f"{ratio['p90']:.2f}", f"{ratio['min']:.2f}", f"{ratio['max']:.2f}", "<= 1.5",
          patbench.verdict(ratio["median"], 1.5, False)]])
    print(f"bytes: peer copied {large[0]['peer_bytes'] / 2**20:.0f} MiB; attach pre-copied {large[0]['precopied'] / 2**20:.0f} MiB "
          f"and copied {large[0]['copied_stopped'] / 1024:.0f} KiB while stopped (first round)")
    small_total, small_stopped = stats(small, "total_ms"), stats(small, "stopped_ms")
    patbench.print_table(
        f"small target, {small[0]['rss_kib'] / 1024:.1f} MiB resident ({len(small)} rounds, milliseconds)",
        ["", "median", "p90", "min", "max", "target", "verdict"],
        [["whole attach", f"{small_total['median']:.1f}", f"{small_total['p90']:.1f}", f"{small_total['min']:.1f}",
          f"{small_total['max']:.1f}", "<= 20", patbench.verdict(small_total["median"], 20, False)],
         ["stopped", f"{small_stopped['median']:.1f}", f"{small_stopped['p90']:.1f}", f"{small_stopped['min']:.1f}",
          f"{small_stopped['max']:.1f}", "", ""]])
    step_names = list(small[0]["steps_ms"])
    patbench.print_table("small target, median per step (milliseconds)", ["step", "median", "p90"],
                         [[name, f"{patbench.summary([r['steps_ms'][name] for r in small])['median']:.2f}",
                           f"{patbench.summary([r['steps_ms'][name] for r in small])['p90']:.2f}"] for name in step_names])
    patbench.print_load(start_info)
    if not args.no_json:
        patbench.write_results("attach", vars(args) | {"build_dir": str(args.build_dir)},
                               {"large": large, "small": small}, start_info)


if __name__ == "__main__":
    main()
