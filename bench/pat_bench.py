"""Shared pieces of pat's benchmarks: a private patd, running members and
ordinary processes, interleaved repetitions, medians, JSON results.

Benchmarks are programs, not tests: they print tables with absolute numbers
and ratios, and write bench/results/<name>.json. They start their own patd on
a private runtime directory and stop everything they started, by pid.
Run them with Debian's /usr/bin/python3.11 (pat targets it).
"""
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("PAT_BUILD_DIR", os.path.join(ROOT, "build"))
BIN = os.path.join(BUILD, "bin")
PATD = os.path.join(BIN, "patd")
PATCTL = os.path.join(BIN, "patctl")
PAT_PYTHON = os.path.join(BIN, "pat-python")
BENCH_BIN = os.path.join(BUILD, "bench")
RESULTS = os.path.join(ROOT, "bench", "results")


class Patd:
    """A patd on a private runtime directory, with one group per name asked."""

    def __init__(self):
        self.runtime = tempfile.mkdtemp(prefix="pat-bench-")
        self.log = open(os.path.join(self.runtime, "patd.log"), "w")
        self.process = subprocess.Popen([PATD, "--runtime-dir", self.runtime], stderr=self.log,
                                        stdout=subprocess.DEVNULL)
        self.socket = os.path.join(self.runtime, "patd.sock")
        self.groups = []
        for _ in range(500):
            if self.patctl("status", check=False).returncode == 0:
                return
            time.sleep(0.01)
        raise RuntimeError("patd did not start; see " + self.log.name)

    def patctl(self, *args, check=True, **kwargs):
        kwargs.setdefault("stdout", subprocess.PIPE)
        kwargs.setdefault("stderr", subprocess.PIPE)
        result = subprocess.run([PATCTL, "--socket", self.socket, *args], text=True, **kwargs)
        if check and result.returncode != 0:
            raise RuntimeError(f"patctl {' '.join(args)}: {result.returncode} {result.stderr}")
        return result

    def create_group(self, name, *options):
        self.patctl("group", "create", name, *options)
        self.groups.append(name)

    def run(self, group, argv, env=()):
        """Runs argv as a member; returns its stdout."""
        env_args = [arg for pair in env for arg in ("--env", pair)]
        return self.patctl("run", "--group", group, *env_args, "--", *argv).stdout

    def show(self, group):
        return json.loads(self.patctl("group", "show", group, "--json").stdout)

    def close(self):
        for name in self.groups:
            self.patctl("group", "destroy", name, "--force", "--grace-ms", "500", check=False)
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()
        shutil.rmtree(self.runtime, ignore_errors=True)


@contextlib.contextmanager
def patd():
    instance = Patd()
    try:
        yield instance
    finally:
        instance.close()


def run_native(argv, env=None):
    """Runs argv as an ordinary process; returns its stdout."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(argv, check=True, stdout=subprocess.PIPE, text=True, env=full_env).stdout


def parallel(commands):
    """Starts every command (a list of argv) at once; returns their stdouts."""
    processes = [subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) for argv in commands]
    outputs = [p.communicate()[0] for p in processes]
    for p, argv in zip(processes, commands):
        if p.returncode != 0:
            raise RuntimeError(f"{argv}: exit {p.returncode}")
    return outputs


def interleaved(variants, repeats):
    """Runs each variant's callable `repeats` times, round-robin, so that the
    machine's noise hits all of them alike. Each call returns a number;
    returns {name: [numbers]}."""
    samples = {name: [] for name in variants}
    for _ in range(repeats):
        for name, fn in variants.items():
            samples[name].append(fn())
    return samples


def median(values):
    return statistics.median(values)


def table(rows, headings):
    widths = [max(len(str(row[i])) for row in [headings] + rows) for i in range(len(headings))]
    lines = ["  ".join(str(cell).ljust(widths[i]) for i, cell in enumerate(row)) for row in [headings] + rows]
    return "\n".join(lines)


def save(name, data):
    os.makedirs(RESULTS, exist_ok=True)
    path = os.path.join(RESULTS, name + ".json")
    with open(path, "w") as out:
        json.dump(data, out, indent=2)
    return path


def require_built(*paths):
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        sys.exit("build first (./scripts/build.sh); missing: " + ", ".join(missing))
