#!/usr/bin/python3.11
"""fault_injection: kill -9 patd, a host or a member in the middle of each
operation, or stop a host for seconds, and check that nothing leaks
(issue 13, section 3).

Operations, each through patctl against a private patd:
  create    patctl group create NAME
  run       patctl run --group NAME -- /bin/sleep 0.3
  destroy   patctl group destroy --force NAME (the group has a sleeping member)
  attach    patctl group attach NAME PID (a /bin/sleep this script started)
Victims: patd, host (the group's pat-host, or while it is being started),
member (run, destroy: the member; attach: the process being attached), and
stop (SIGSTOP of the host for 1 to --stop-seconds seconds, then SIGCONT).

Each round starts the operation and waits a uniform random delay between 0
and the operation's unperturbed duration (measured first), so that across
rounds every step is hit; then it finds the victim (polling for it if it
does not exist yet) and kills it. After each round it restarts patd if it
was killed (the restarted patd must rediscover or clean up), destroys what
patd still lists, and checks:
  - patctl ended (no hang) with 0 or with a clear error: a non-zero exit and
    one line on stderr (the distinct messages are listed);
  - no stray process: every host and member pid seen in the round is gone
    (a zombie counts when its parent is patd), and no pat-host or patd whose
    command line names this run's runtime directory or groups is left;
  - the attach target, if alive, is neither stopped nor traced;
  - no runtime files left: the groups directory is empty, only patd.sock and
    patd.log beside it;
  - patd's fd count is back to its baseline;
  - the next request works: group create, run /bin/true, destroy.

Run: nice /usr/bin/python3.11 bench/fault_injection.py [--build-dir build] [--rounds 6] [--quick]
"""

import contextlib
import os
import random
import re
import signal
import statistics
import subprocess
import time
from pathlib import Path

import patbench

OPERATIONS = {
    "create": ("patd", "host", "stop"),
    "run": ("patd", "host", "member", "stop"),
    "destroy": ("patd", "host", "member", "stop"),
    "attach": ("patd", "host", "member", "stop"),
}
PATCTL_TIMEOUT = 60


def process_state(pid):
    """(state letter, ppid, tracer pid) from /proc/PID/status, or None."""
    try:
        fields = dict(line.split(":\t", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                      if ":\t" in line)
    except (FileNotFoundError, ProcessLookupError):
        return None
    return fields["State"][0], int(fields["PPid"]), int(fields["TracerPid"])


class Round:
    """One operation with one victim: set-up, the operation, the kill."""

    def __init__(self, lab, operation, victim, name):
        self.lab, self.operation, self.victim, self.name = lab, operation, victim, name
        self.pids = set()  # hosts and members seen
        self.target = None  # attach's process
        self.member = None

    def set_up(self):
        patd = self.lab.patd
        if self.operation != "create":
            patd.create_group(self.name)
            self.pids.add(patd.show(self.name)["host_pid"])
        if self.operation == "destroy":
            self.member = int(patd.patctl("run", "--detach", "--output", "/dev/null", "--group", self.name, "--",
                                          "/bin/sleep", "1000").stdout.strip())
            self.pids.add(self.member)
        if self.operation == "attach":
            # Without capabilities: the group owner (root here) has none in
            # its host, and a process with more privilege is not attachable.
            self.target = subprocess.Popen(["setpriv", "--inh-caps=-all", "--bounding-set=-all", "/bin/sleep", "1000"],
                                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)

    def argv(self):
        patd = self.lab.patd
        return {
            "create": lambda: patd.patctl_argv("group", "create", self.name),
            "run": lambda: patd.patctl_argv("run", "--group", self.name, "--", "/bin/sleep", "0.3"),
            "destroy": lambda: patd.patctl_argv("group", "destroy", "--force", self.name),
            "attach": lambda: patd.patctl_argv("group", "attach", self.name, self.target.pid),
        }[self.operation]()

    def hosts(self):
        patd_pid = self.lab.patd.process.pid
        return [pid for pid in self.lab.children_safe(patd_pid) if self.lab.is_host(pid)]

    def find_victim(self, client):
        """The victim's pid, polling while the operation runs; None if the
        operation ended first."""
        while True:
            if self.victim == "patd":
                return self.lab.patd.process.pid
            hosts = self.hosts()
            self.pids.update(hosts)
            if self.victim in ("host", "stop") and hosts:
                return hosts[0]
            if self.victim == "member":
                if self.operation == "destroy":
                    return self.member
                if self.operation == "attach":
                    return self.target.pid
                members = [m for h in hosts for m in self.lab.children_safe(h)]
                self.pids.update(members)
                if members:
                    return members[0]
            if client.poll() is not None:
                return None
            time.sleep(0.001)

    def strike(self, client, pid):
        if self.victim == "stop":
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
                time.sleep(random.uniform(1, self.lab.stop_seconds))
                os.kill(pid, signal.SIGCONT)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            if self.victim == "patd":
                self.lab.patd.process.wait()  # the kill is asynchronous; finish() restarts it

    def play(self):
        """Runs the round; (patctl's exit code or None for a hang, stderr,
        whether the victim was hit)."""
        self.set_up()
        client = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True)
        time.sleep(random.uniform(0, self.lab.durations[self.operation]))
        pid = self.find_victim(client)
        if pid is not None:
            self.strike(client, pid)
        try:
            _, stderr = client.communicate(timeout=PATCTL_TIMEOUT)
            code = client.returncode
        except subprocess.TimeoutExpired:
            client.kill()
            _, stderr = client.communicate()
            code = None
        self.pids.update(self.hosts())
        return code, stderr.strip(), pid is not None


class Lab:
    def __init__(self, build, stop_seconds):
        self.build = build
        self.stop_seconds = stop_seconds
        self.patd = patbench.PrivatePatd(build)
        self.prefix = f"fi{os.getpid()}-"
        self.counter = 0
        self.durations = {}
        self.fd_baseline = None

    def next_name(self):
        self.counter += 1
        return f"{self.prefix}{self.counter}"

    @staticmethod
    def children_safe(pid):
        try:
            return patbench.children(pid)
        except FileNotFoundError:
            return []

    @staticmethod
    def is_host(pid):
        with contextlib.suppress(OSError):
            return os.readlink(f"/proc/{pid}/exe").split(" ")[0].endswith("/pat-host")
        return False

    def ours(self):
        """pat-host and patd processes of this run other than the live patd:
        by their command line (the runtime directory, or a host's title with
        this run's group prefix)."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == self.patd.process.pid:
                continue
            try:
                exe = os.readlink(entry / "exe")
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if Path(exe.split(" ")[0]).name in ("pat-host", "patd") and \
                    (str(self.patd.runtime_dir) in cmdline or f"pat: group {self.prefix}" in cmdline):
                found.append(int(entry.name))
        return found

    def clean_up(self):
        """Destroys every group patd lists; problems met on the way."""
        problems = []
        try:
            groups = self.patd.groups()
        except RuntimeError as error:
            return [f"group list after the round: {error}"]
        for group in groups:
            result = self.patd.patctl("group", "destroy", "--force", group, check=False)
            if result.returncode != 0:
                problems.append(f"destroy after the round: {result.stderr.strip()}")
        return problems

    def leaks(self, round_):
        """What the round left behind, waiting a few seconds for it to go."""
        deadline = time.monotonic() + 5
        while True:
            found = []
            patd_pid = self.patd.process.pid
            for pid in sorted(round_.pids):
                state = process_state(pid)
                if state and (state[0] != "Z" or state[1] == patd_pid):
                    found.append(f"process {pid} left ({'zombie' if state[0] == 'Z' else 'running'})")
            found += [f"stray {pid}" for pid in self.ours() if pid not in round_.pids]
            groups = self.patd.runtime_dir / "groups"
            found += [f"runtime file groups/{p.name}" for p in groups.iterdir()] if groups.is_dir() else []
            found += [f"runtime file {p.name}" for p in self.patd.runtime_dir.iterdir()
                      if p.name not in ("patd.sock", "patd.log", "groups")]
            fds = patbench.fd_count(patd_pid)
            if fds > self.fd_baseline:
                found.append(f"patd fds {fds} (baseline {self.fd_baseline})")
            if not found or time.monotonic() > deadline:
                return found
            time.sleep(0.2)

    def next_request_works(self):
        name = self.next_name()
        for args in (("group", "create", name), ("run", "--group", name, "--", "/bin/true"),
                     ("group", "destroy", name)):
            result = self.patd.patctl(*args, check=False)
            if result.returncode != 0:
                return f"next request `patctl {' '.join(args[:2])}` failed: {result.stderr.strip()}"
        return None

    def calibrate(self):
        """Each operation's unperturbed duration (median of 3)."""
        for operation in OPERATIONS:
            times = []
            for _ in range(3):
                round_ = Round(self, operation, None, self.next_name())
                round_.set_up()
                started = time.monotonic()
                result = subprocess.run(round_.argv(), stdin=subprocess.DEVNULL, capture_output=True, text=True)
                times.append(time.monotonic() - started)
                if result.returncode != 0:
                    raise SystemExit(f"{operation} failed unperturbed: {result.stderr.strip()}")
                self.finish(round_)
            self.durations[operation] = statistics.median(times)
        self.fd_baseline = patbench.fd_count(self.patd.process.pid)

    def finish(self, round_):
        if self.patd.process.poll() is not None:
            self.patd.start()
        problems = self.clean_up()
        if round_.target is not None:
            state = process_state(round_.target.pid)
            if state and (state[0] in "tT" or state[2] != 0):
                problems.append(f"attach target left {'traced' if state[2] else 'stopped'}")
            round_.target.kill()
            round_.target.wait()
        return problems

    def close(self):
        self.patd.close()
        for pid in self.ours():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def normalized(message, prefix):
    """A message with group names and numbers replaced, to count distinct ones."""
    return re.sub(r"\d+", "N", re.sub(re.escape(prefix) + r"\d+", "NAME", message))


def main():
    parser = patbench.argument_parser(__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6, help="rounds per operation and victim (default 6)")
    parser.add_argument("--stop-seconds", type=float, default=4, help="longest SIGSTOP of a host (default 4)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: from the clock, printed)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1 round each, stops of at most 2 s")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.stop_seconds = 1, 2
    seed = args.seed if args.seed is not None else int(time.time())
    random.seed(seed)
    build = patbench.Build(args.build_dir)
    start_info = patbench.machine()
    print(f"fault_injection: {args.rounds} rounds per operation and victim, seed {seed}; "
          f"load average {patbench.load_average()}", flush=True)

    table = {}
    lab = Lab(build, args.stop_seconds)
    try:
        lab.calibrate()
        print("unperturbed: " + ", ".join(f"{k} {v * 1e3:.0f} ms" for k, v in lab.durations.items()), flush=True)
        for round_number in range(args.rounds):
            for operation, victims in OPERATIONS.items():
                for victim in victims:
                    cell = table.setdefault((operation, victim), {"rounds": 0, "hit": 0, "leaks": [], "errors": set(),
                                                                  "unclear": [], "next_failed": []})
                    round_ = Round(lab, operation, victim, lab.next_name())
                    code, stderr, hit = round_.play()
                    problems = lab.finish(round_) + lab.leaks(round_)
                    cell["rounds"] += 1
                    cell["hit"] += hit
                    cell["leaks"] += problems
                    if code is None:
                        cell["unclear"].append("patctl hung")
                    elif code != 0:
                        cell["errors"].add(f"exit {code}: {normalized(stderr, lab.prefix)}")
                        if not stderr or len(stderr.splitlines()) != 1:
                            cell["unclear"].append(f"exit {code} with stderr {stderr!r}")
                    failure = lab.next_request_works()
                    if failure:
                        cell["next_failed"].append(failure)
            print(f"  round {round_number + 1}/{args.rounds}", flush=True)
    finally:
        lab.close()

    rows = [[f"{op} x {victim}", c["rounds"], c["hit"], len(c["leaks"]), len(c["unclear"]), len(c["next_failed"]),
             len(c["errors"])] for (op, victim), c in table.items()]
    patbench.print_table("Rounds per operation x victim (hit: the victim existed and was struck)",
                         ["operation x victim", "rounds", "hit", "leaks", "unclear", "next failed", "distinct errors"],
                         rows)
    print("\nDistinct patctl errors:")
    for (op, victim), c in table.items():
        for error in sorted(c["errors"]):
            print(f"  {op} x {victim}: {error}")
    problems = [(op, victim, p) for (op, victim), c in table.items()
                for p in c["leaks"] + c["unclear"] + c["next_failed"]]
    print(f"\nProblems: {len(problems)}")
    for op, victim, problem in problems[:40]:
        print(f"  {op} x {victim}: {problem}")
    patbench.print_load(start_info)
    if not args.no_json:
        patbench.write_results("fault_injection", vars(args) | {"build_dir": str(args.build_dir), "seed": seed},
                               {f"{op} x {victim}": c | {"errors": sorted(c["errors"])}
                                for (op, victim), c in table.items()}, start_info)
    raise SystemExit(0 if patbench.passed("no leak, no unclear error, next request works", not problems) else 1)


if __name__ == "__main__":
    main()
