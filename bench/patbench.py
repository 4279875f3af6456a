"""Shared by pat's Python benchmarks (bench/*.py): a private patd, variants
run interleaved, statistics, the printed table and the JSON results file.

The benchmarks are programs, not tests: they measure and report; those
with targets (soak.py, control_load.py, fault_injection.py) print PASS or
FAIL per target and exit non-zero on a failed one. Run them with Debian's interpreter, named explicitly
(/usr/bin/python3.11 bench/NAME.py): a pyenv python3 may be first on PATH.

Machines here are shared and noisy, so every benchmark runs its variants
interleaved (each round runs every variant once, in a rotating order) and
reports medians over the rounds, never a single run or a best case.
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "support"))
import private_patd  # noqa: E402  (tests/support/private_patd.py)

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO / "bench" / "results"
DEBIAN_PYTHON = "/usr/bin/python3.11"


def argument_parser(description):
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--build-dir", type=Path,
                        default=Path(os.environ.get("BUILD_DIR", REPO / "build")),
                        help="pat's build tree (default: $BUILD_DIR or ./build)")
    parser.add_argument("--no-json", action="store_true", help="do not write bench/results/<name>.json")
    return parser


class Build:
    """Where the binaries of one build tree are."""

    def __init__(self, build_dir):
        self.dir = Path(build_dir).resolve()
        self.patd = self.dir / "bin" / "patd"
        self.patctl = self.dir / "bin" / "patctl"
        self.pat_python = self.dir / "bin" / "pat-python"
        for binary in (self.patd, self.patctl):
            if not binary.exists():
                raise SystemExit(f"{binary} is missing: build pat first (bench/run_all.sh does)")

    def bench_program(self, name):
        path = self.dir / "bench" / name
        if not path.exists():
            raise SystemExit(f"{path} is missing: build pat first (bench/run_all.sh does)")
        return path


class PrivatePatd(private_patd.PrivatePatd):
    """tests/support/private_patd.py's daemon, with the calls benchmarks use."""

    def __init__(self, build, extra_args=()):
        self.build = build
        try:
            super().__init__(build.dir / "bin", prefix="pat-bench-", timeout=None, extra_args=extra_args)
        except RuntimeError as error:
            raise SystemExit(str(error))

    def create_group(self, name, *options):
        self.patctl("group", "create", name, *options)

    def run_member(self, group, argv, env=()):
        """Runs argv as a member of `group` through patctl; its stdout."""
        env_args = [arg for pair in env for arg in ("--env", pair)]
        return self.patctl("run", "--group", group, *env_args, "--", *map(str, argv)).stdout

    def member_argv(self, group, argv, env=()):
        """The patctl command line that runs argv as a member of `group`."""
        env_args = [arg for pair in env for arg in ("--env", pair)]
        return self.patctl_argv("run", "--group", group, *env_args, "--", *map(str, argv))


# Benchmarks that measure inside a member print their samples as one line
# starting with this, as JSON (print_results), for the outer run to read.
RESULTS_MARK = "RESULTS "


def print_results(samples):
    print(RESULTS_MARK + json.dumps(samples), flush=True)


def results_in(stdout):
    """The object a print_results line in ``stdout`` carries."""
    for line in stdout.splitlines():
        if line.startswith(RESULTS_MARK):
            return json.loads(line[len(RESULTS_MARK):])
    raise SystemExit(f"no results in:\n{stdout}")


def run_inside_member(build, group, argv):
    """Starts a private patd, creates ``group`` and runs ``argv`` (a
    pat-python command line) as its member, in the directory of argv[1];
    the object its print_results line carries."""
    with PrivatePatd(build) as patd:
        patd.create_group(group)
        env = dict(os.environ, PATD_SOCKET=str(patd.socket))
        member = subprocess.run(patd.member_argv(group, argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                text=True, env=env, cwd=os.path.dirname(str(argv[1])))
        if member.returncode != 0:
            raise SystemExit(f"the benchmark member failed (exit {member.returncode}); patd's log:\n"
                             f"{patd.log_path.read_text(errors='replace')[-4000:]}")
    return results_in(member.stdout)


def member_benchmark(script, description, default_rounds):
    """The outer half of a benchmark that measures inside a member
    (executor.py, dask_schedulers.py): parses the command line (with
    --rounds), notes the machine, and runs ``pat-python script --inner
    --rounds N`` as a member of a group named after the script. Returns
    (args, build, start_info, samples), samples being what the member's
    print_results line carries."""
    parser = argument_parser(description)
    parser.add_argument("--rounds", type=int, default=default_rounds)
    args = parser.parse_args()
    build = Build(args.build_dir)
    start_info = machine()
    script = os.path.abspath(script)
    group = Path(script).stem.replace("_", "-") + "-bench"
    samples = run_inside_member(build, group, [build.pat_python, script, "--inner", "--rounds", str(args.rounds)])
    return args, build, start_info, samples


def spawn_and_wait(argv, env=None):
    """Wall time in seconds of posix_spawn(argv) with stdio on /dev/null and
    waiting for it; the exit status must be 0. The same measurement serves
    pat and its peers."""
    actions = [(os.POSIX_SPAWN_OPEN, fd, os.devnull, os.O_RDWR, 0) for fd in (0, 1, 2)]
    start = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, os.environ if env is None else env, file_actions=actions)
    _, status = os.waitpid(pid, 0)
    took = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(map(str, argv))}: exit {os.waitstatus_to_exitcode(status)}")
    return took


def outputs_of_all(commands, env=None):
    """Starts every command at once and waits for all; their stdouts. Each
    must exit 0."""
    processes = [subprocess.Popen([str(a) for a in c], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=env) for c in commands]
    outputs = [p.communicate() for p in processes]
    for command, process, (out, err) in zip(commands, processes, outputs):
        if process.returncode != 0:
            raise RuntimeError(f"{' '.join(map(str, command))}: exit {process.returncode}: {err.strip()}")
    return [out for out, _ in outputs]


def interleaved(variants, rounds, on_round=None):
    """Runs every variant once per round, the order rotating from round to
    round so that no variant always follows the same neighbour. `variants`
    maps a name to a callable returning one sample (or a dict of samples).
    Returns {name: [sample, ...]}."""
    names = list(variants)
    samples = {name: [] for name in names}
    for round_number in range(rounds):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(variants[name]())
        if on_round:
            on_round(round_number + 1, rounds)
    return samples


def percentile(values, fraction):
    """Nearest-rank percentile (fraction in [0, 1])."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(fraction * len(ordered) + 0.5)))
    return ordered[rank - 1]


def summary(values):
    return {
        "n": len(values),
        "median": statistics.median(values),
        "p90": percentile(values, 0.9),
        "min": min(values),
        "max": max(values),
        "mean": statistics.fmean(values),
    }


def print_table(title, headers, rows):
    """A plain-text table: the first column left-aligned, the rest right."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row):
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))

    print(f"\n{title}")
    print(line(cells[0]))
    print("  ".join("-" * w for w in widths))
    for row in cells[1:]:
        print(line(row))


def verdict(value, target, higher_is_better):
    met = value >= target if higher_is_better else value <= target
    return "met" if met else "NOT met"


def machine():
    """What the numbers were measured on, for the results file."""
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip() != ""
    return {
        "hostname": platform.node(),
        "kernel": platform.release(),
        "cpus": os.cpu_count(),
        "loadavg_at_start": os.getloadavg(),
        "git_commit": commit + ("-dirty" if dirty else ""),
    }


def print_load(start_info):
    """The 1-minute load average before and after: other work on a shared
    machine shows up here, and in the spread of the samples."""
    start_info["loadavg_at_end"] = os.getloadavg()
    print(f"\nload average (1/5/15 min): at start {'/'.join(f'{x:.2f}' for x in start_info['loadavg_at_start'])}, "
          f"at end {'/'.join(f'{x:.2f}' for x in start_info['loadavg_at_end'])} ({os.cpu_count()} CPUs)")


def write_results(name, parameters, results, start_info):
    """bench/results/<name>.json: what was run, on what, and every sample."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    document = {
        "benchmark": name,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": start_info,
        "parameters": parameters,
        "results": results,
    }
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\nresults written to {path.relative_to(REPO)}")


def progress(label):
    def report(done, total):
        print(f"  {label}: round {done}/{total}", flush=True)
    return report


# What /proc says about one process, for the soak, load and fault-injection
# benchmarks (bench/soak.py, bench/control_load.py, bench/fault_injection.py).

def rss_kib(pid):
    """VmRSS of a process in KiB (/proc/PID/status; 0 for a kernel thread
    or a zombie, which have no memory)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def children(pid):
    """pids of a process's children (/proc/PID/task/*/children: every
    thread's, since a child belongs to the thread that forked it)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(word) for word in (task / "children").read_text().split()]
        except FileNotFoundError:
            pass
    return found


def load_average():
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def call_frame(method, parameters=None):
    """One call of patd's protocol: JSON and its terminating NUL."""
    call = {"method": method}
    if parameters is not None:
        call["parameters"] = parameters
    return json.dumps(call).encode() + b"\0"


def passed(label, ok):
    """Prints a target's verdict; returns ok."""
    print(f"  {label}: {'PASS' if ok else 'FAIL'}")
    return ok
