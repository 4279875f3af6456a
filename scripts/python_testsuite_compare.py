#!/usr/bin/python3.11
"""python_testsuite_compare: CPython's regression suite (Debian's
libpython3.11-testsuite) run by pat-python as members of a group owned by an
ordinary user, against pat-python run as ordinary processes by the same user;
the verdict of every test module and every test case must be the same.

Each test module runs on its own, once each way, the two side by side (so
both see the same load):

  member:   setpriv --reuid=USER ... patctl run --group G -- pat-python -m test ... MODULE
  process:  setpriv --reuid=USER ... pat-python -m test ... MODULE

with the same environment, working directory and resources (-u below);
each writes regrtest's --junit-xml. Both runs are pat-python, so the only
difference is pat: the member runs pat-python's non-PIC build inside the
group's address space. Modules run one at a time in each way, not with
regrtest's -j: its workers would be subprocesses, which leave the group.

A module's verdict is regrtest's (passed, failed, env changed, skipped,
resource denied, no tests ran, timed out); a test case's is passed,
skipped, failed or error, from the XML. Printed: the counts, and every
module or test case whose verdicts differ. The exclusions (EXCLUDED,
DENIED_RESOURCES) are docs/pat-python.md's list, each with its reason.

It takes hours for the whole suite on this machine class: a program to run
by hand, not a test (CTest runs a subset, --tests FILE, in minutes). Needs
root: it creates the user and runs a private patd. To keep building while
it runs, point --build-dir at an install (cmake --install build --prefix
DIR): it needs DIR/bin and what pat installs beside it.

Run: /usr/bin/python3.11 scripts/python_testsuite_compare.py [--build-dir build] [--tests NAMES_FILE]
     [--jobs 2] [--output DIR] [--minutes N] [--expect-pass]
Exit status: 0 when every verdict matched, 1 otherwise.
"""

import argparse
import collections
import contextlib
import json
import concurrent.futures
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "support"))
import private_patd  # noqa: E402  (tests/support/private_patd.py)

USER = "pat-testsuite"
GROUP = "testsuite"

# Resources regrtest may use (-u): everything but what this machine cannot
# offer or what would take hours more (docs/pat-python.md lists them).
DENIED_RESOURCES = {
    "network": "no network here, beyond Debian's package archive",
    "urlfetch": "downloads test data from the internet",
    "gui": "no display (Tk)",
    "audio": "no sound device",
    "largefile": "writes files of several GiB",
    "cpu": "CPU-heavy variants of tests that run anyway; hours on 2 shared CPUs",
}

# Modules not run at all, with the reason.
EXCLUDED = {
}

# How long one module may take, in one way.
MODULE_TIMEOUT = 3600
# regrtest's own per-test limit (faulthandler dumps the stacks, then the
# module fails as timed out).
TEST_TIMEOUT = 1200


def default_signal_dispositions():
    """Ignored signals stay ignored across exec, and a shell starts
    background jobs with SIGINT and SIGQUIT ignored. pat starts every member
    with default dispositions; the processes compared with them must start
    the same way, or tests that send themselves SIGINT fail in them only."""
    for number in signal.valid_signals():
        if number in (signal.SIGKILL, signal.SIGSTOP) or signal.getsignal(number) != signal.SIG_IGN:
            continue
        signal.signal(number, signal.default_int_handler if number == signal.SIGINT else signal.SIG_DFL)


def ensure_user(name):
    """The ordinary user who owns the group and runs both ways."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "--user-group",
                        name], check=True)
        return pwd.getpwnam(name)


def as_user(user, argv):
    return ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--init-groups", *map(str, argv)]


def module_verdict(returncode, output, timed_out):
    """regrtest's verdict for one module, from its exit status and summary."""
    if timed_out:
        return "timed out"
    if "resource denied" in output or re.search(r"\bskipped \(resource denied\)", output):
        return "resource denied"
    if re.search(r"^\d+ tests? skipped:", output, re.M) or " skipped -- " in output:
        return "skipped"
    results = {0: "passed", 2: "failed", 3: "env changed", 4: "no tests ran", 130: "interrupted"}
    return results.get(returncode, f"crashed (exit {returncode})")


def case_verdicts(xml_path):
    """{test case name: passed | skipped | failed | error} from regrtest's --junit-xml."""
    verdicts = {}
    if not xml_path.exists():
        return verdicts
    try:
        root = ElementTree.parse(xml_path).getroot()
    except ElementTree.ParseError:
        return verdicts
    for case in root.iter("testcase"):
        kinds = {child.tag for child in case}
        verdict = ("error" if "error" in kinds else "failed" if "failure" in kinds
                   else "skipped" if "skipped" in kinds else "passed")
        verdicts[case.get("name")] = verdict
    return verdicts


class Runner:
    def __init__(self, args, user, patd, workdir):
        self.args = args
        self.user = user
        self.patd = patd
        self.workdir = workdir
        self.pat_python = Path(args.build_dir).resolve() / "bin" / "pat-python"
        self.home = workdir / "home"
        self.env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.home),
            "LANG": "C.UTF-8",
            "TMPDIR": str(workdir / "tmp"),
            # What pat gives every member (README "How run behaves"); the
            # processes get it too, so the environments are the same.
            "GLIBC_TUNABLES": "glibc.malloc.top_pad=67108864",
        }
        self.running = set()  # the runs under way, killed if we are interrupted
        self.lock = threading.Lock()
        self.stopped = False  # set by kill_all: a run starting after it is killed at once
        resources = ",".join(["all"] + [f"-{r}" for r in DENIED_RESOURCES])
        self.regrtest = ["-m", "test", "-u", resources, "--timeout", str(TEST_TIMEOUT)]

    @staticmethod
    def kill(process):
        """The run's whole session: setpriv's child, and for a member patctl,
        whose end sends the member SIGHUP."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def kill_all(self):
        with self.lock:
            self.stopped = True
            running = list(self.running)
        for process in running:
            self.kill(process)

    def command(self, way, module, xml):
        regrtest = [self.pat_python, *self.regrtest, "--junit-xml", xml, module]
        if way == "member":
            return as_user(self.user, [*self.patd.patctl_argv("run", "--group", GROUP, "--"), *regrtest])
        return as_user(self.user, regrtest)

    def run(self, module, way):
        out_dir = self.workdir / way
        xml = out_dir / f"{module}.xml"
        start = time.monotonic()
        timed_out = False
        with open(out_dir / f"{module}.log", "w") as log:
            process = subprocess.Popen(self.command(way, module, xml), stdin=subprocess.DEVNULL, stdout=log,
                                       stderr=subprocess.STDOUT, env=self.env, cwd=self.home,
                                       start_new_session=True)
            with self.lock:
                self.running.add(process)
                stopped = self.stopped
            if stopped:
                self.kill(process)
            try:
                process.wait(timeout=MODULE_TIMEOUT)
            except subprocess.TimeoutExpired:
                timed_out = True
                self.kill(process)
            finally:
                with self.lock:
                    self.running.discard(process)
        output = (out_dir / f"{module}.log").read_text(errors="replace")
        return {"verdict": module_verdict(process.returncode, output, timed_out), "cases": case_verdicts(xml),
                "seconds": time.monotonic() - start}


def list_modules(pat_python):
    out = subprocess.run([pat_python, "-m", "test", "--list-tests"], capture_output=True, text=True, check=True,
                         cwd=tempfile.gettempdir()).stdout
    return [line.strip() for line in out.splitlines() if line.strip().startswith("test_")]


def compare(modules, results):
    """Counts and differences between the two ways."""
    report = {"modules": collections.Counter(), "cases": collections.Counter(), "module_differences": [],
              "case_differences": []}
    for module in modules:
        member, process = results[module]["member"], results[module]["process"]
        if member["verdict"] == process["verdict"]:
            report["modules"][f"same: {member['verdict']}"] += 1
        else:
            report["modules"]["different"] += 1
            report["module_differences"].append((module, member["verdict"], process["verdict"]))
        for case in sorted(set(member["cases"]) | set(process["cases"])):
            ours, theirs = member["cases"].get(case, "absent"), process["cases"].get(case, "absent")
            if ours == theirs:
                report["cases"][f"same: {ours}"] += 1
            else:
                report["cases"]["different"] += 1
                report["case_differences"].append((case, ours, theirs))
    return report


def print_report(report, modules, results, elapsed):
    print(f"\n{len(modules)} test modules compared in {elapsed / 60:.1f} min")
    for title, counter in (("modules", report["modules"]), ("test cases", report["cases"])):
        print(f"\n{title}: {sum(counter.values())}")
        for key, count in sorted(counter.items()):
            print(f"  {count:6d}  {key}")
    if report["module_differences"]:
        print("\nmodules whose verdicts differ (member / process):")
        for module, ours, theirs in report["module_differences"]:
            print(f"  {module}: {ours} / {theirs}")
    if report["case_differences"]:
        print("\ntest cases whose verdicts differ (member / process):")
        for case, ours, theirs in report["case_differences"]:
            print(f"  {case}: {ours} / {theirs}")
    slowest = sorted(modules, key=lambda m: -results[m]["process"]["seconds"])[:10]
    print("\nslowest modules (process, member seconds): " +
          ", ".join(f"{m} {results[m]['process']['seconds']:.0f}/{results[m]['member']['seconds']:.0f}"
                    for m in slowest))


def collect(futures, results, started, deadline):
    """Results as runs end, until all have or the deadline passes."""
    done = 0
    pending = set(futures)
    while pending:
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        finished, pending = concurrent.futures.wait(pending, timeout=timeout,
                                                    return_when=concurrent.futures.FIRST_COMPLETED)
        if not finished:
            print(f"  time limit: {len(pending)} runs not done", flush=True)
            return
        for future in finished:
            done += 1
            module, way = futures[future]
            results[module][way] = future.result()
            if len(results[module]) == 2 and results[module]["member"]["verdict"] != results[module]["process"]["verdict"]:
                print(f"  differs: {module}: member {results[module]['member']['verdict']}, "
                      f"process {results[module]['process']['verdict']}", flush=True)
            if done % 20 == 0:
                print(f"  {done}/{len(futures)} runs done, {(time.monotonic() - started) / 60:.1f} min", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", type=Path, default=Path(os.environ.get("BUILD_DIR", REPO / "build")))
    parser.add_argument("--tests", type=Path, help="a file naming the modules to run, one per line (# comments)")
    parser.add_argument("--jobs", type=int, default=2, help="runs at once; each module's two run side by side")
    parser.add_argument("--output", type=Path, help="keep the logs, XML and results.json (verdicts and seconds per "
                        "module and way) here (default: a temporary directory)")
    parser.add_argument("--minutes", type=float,
                        help="start no run after this many minutes, end those under way, and report the "
                             "modules that ran both ways (the report says how many did not)")
    parser.add_argument("--expect-pass", action="store_true",
                        help="also fail unless every module passed both ways (CTest's subset: agreeing "
                             "because pat-python is broken both ways must not pass)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("python_testsuite_compare: run as root (it creates a user and runs a private patd)")
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # cleaned up like Ctrl-C
    default_signal_dispositions()

    user = ensure_user(USER)
    workdir = Path(args.output or tempfile.mkdtemp(prefix="pat-testsuite-"))
    for sub in ("member", "process", "home", "tmp"):
        (workdir / sub).mkdir(parents=True, exist_ok=True)
    for sub in ("home", "tmp"):
        shutil.chown(workdir / sub, user.pw_uid, user.pw_gid)
    workdir.chmod(0o755)
    for sub in ("member", "process"):
        shutil.chown(workdir / sub, user.pw_uid, user.pw_gid)

    pat_python = Path(args.build_dir).resolve() / "bin" / "pat-python"
    if args.tests:
        modules = [line.split("#")[0].strip() for line in args.tests.read_text().splitlines()]
        modules = [m for m in modules if m]
    else:
        modules = [m for m in list_modules(pat_python) if m not in EXCLUDED]
    print(f"python_testsuite_compare: {len(modules)} modules, as {USER} (uid {user.pw_uid}), "
          f"{len(EXCLUDED)} excluded, resources denied: {', '.join(DENIED_RESOURCES)}; output in {workdir}")

    started = time.monotonic()
    results = collections.defaultdict(dict)
    with private_patd.PrivatePatd(Path(args.build_dir).resolve() / "bin", prefix="pat-testsuite-patd-",
                                  timeout=None, socket_mode="0666") as patd:
        subprocess.run(as_user(user, patd.patctl_argv("group", "create", GROUP)), check=True, capture_output=True)
        runner = Runner(args, user, patd, workdir)
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs)
        futures = {pool.submit(runner.run, module, way): (module, way)
                   for module in modules for way in ("member", "process")}
        deadline = started + args.minutes * 60 if args.minutes else None
        try:
            collect(futures, results, started, deadline)
        except KeyboardInterrupt:
            print("  interrupted: reporting the modules that ran both ways", flush=True)
        finally:
            # On Ctrl-C, SIGTERM or the time limit start nothing more and end what runs.
            pool.shutdown(wait=False, cancel_futures=True)
            runner.kill_all()
        host_log = [line for line in patd.log().splitlines() if "warn" in line or "error" in line]
    not_run = [m for m in modules if len(results[m]) < 2]
    modules = [m for m in modules if len(results[m]) == 2]
    report = compare(modules, results)
    print_report(report, modules, results, time.monotonic() - started)
    if args.output:
        (workdir / "results.json").write_text(json.dumps({m: results[m] for m in modules}, indent=1))
    if not_run:
        print(f"\n{len(not_run)} modules not compared (time limit or interrupted), first: {', '.join(not_run[:10])}")
    if host_log:
        print("\nwarnings in patd's and the host's log:\n  " + "\n  ".join(host_log[:50]))
    same = not report["module_differences"] and not report["case_differences"] and not not_run
    if args.expect_pass:
        not_passed = [m for m in modules if {results[m][w]["verdict"] for w in ("member", "process")} != {"passed"}]
        if not_passed:
            print("\nexpected to pass both ways, did not: " + ", ".join(not_passed))
            same = False
    if not args.output:
        if not same:  # the logs say why; they go with the temporary directory
            for module, _, _ in report["module_differences"]:
                for way in ("member", "process"):
                    print(f"\n--- {module}, {way}:\n" + (workdir / way / f"{module}.log").read_text(errors="replace")[-3000:])
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
