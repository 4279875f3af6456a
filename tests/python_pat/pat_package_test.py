"""The `pat` Python package (python/pat/, docs/python.md), end to end.

Each TestCase class is one CTest test (tests/python_pat/CMakeLists.txt).
`Wire` needs no daemon; every other class starts a patd of its own on a
fresh runtime directory, runs the scripts in members/ as real members of
real groups (patctl run ... pat-python SCRIPT) and checks what they print
and how they exit. Everything started is stopped by pid at the end: the
groups' hosts (found through their sockets; members die with them), then
patd.

Run by CTest:
  /usr/bin/python3.11 -I pat_package_test.py --build-dir DIR --programs DIR [unittest args, e.g. a class]
"""

import argparse
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "support"))
import private_patd  # noqa: E402  (tests/support/private_patd.py)

HERE = pathlib.Path(__file__).resolve().parent
MEMBERS = HERE / "members"
DEBIAN_PYTHON = "/usr/bin/python3.11"
TIMEOUT = 300
SKIPPED = 77  # CTest's SKIP_RETURN_CODE for these tests (CMakeLists.txt)

# Set from the command line in main().
BUILD_DIR = pathlib.Path()
PROGRAMS_DIR = pathlib.Path()


def package_root():
    return BUILD_DIR / "lib" / "pat" / "python"


class PrivatePatd(private_patd.PrivatePatd):
    """tests/support/private_patd.py's daemon, with what these tests need."""

    def __init__(self, socket_mode="0600"):
        super().__init__(BUILD_DIR / "bin", prefix="pat-python-pkg-", timeout=TIMEOUT, socket_mode=socket_mode)
        self.patctl_path = BUILD_DIR / "bin" / "patctl"
        self.pat_python = BUILD_DIR / "bin" / "pat-python"

    def env(self, **extra):
        """The environment members and callers get: PATD_SOCKET names ours;
        no PYTHON* variables of the caller's; no bytecode in the build tree."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON") and not k.startswith("PAT_")}
        env["PATD_SOCKET"] = str(self.socket)
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env.update(extra)
        return env

    def member_argv(self, group, script, *args):
        return [str(self.patctl_path), "--socket", str(self.socket), "run", "--group", group, "--",
                str(self.pat_python), str(MEMBERS / script), *map(str, args)]

    def run_member(self, group, script, *args, timeout=TIMEOUT):
        return subprocess.run(self.member_argv(group, script, *args), stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, env=self.env(), cwd=MEMBERS, timeout=timeout)

    def start_member(self, group, script, *args, stdin=subprocess.DEVNULL):
        return subprocess.Popen(self.member_argv(group, script, *args), stdin=stdin, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=self.env(), cwd=MEMBERS)


class WithPatd(unittest.TestCase):
    """A private patd for the whole class; each test makes its own group."""

    patd = None

    @classmethod
    def setUpClass(cls):
        cls.patd = PrivatePatd()

    @classmethod
    def tearDownClass(cls):
        cls.patd.close()

    def setUp(self):
        self.tmp = pathlib.Path(tempfile.mkdtemp(prefix="pat-python-pkg-test-"))
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.group = self.id().rsplit(".", 1)[-1].replace("_", "-")[:60]
        self.patd.patctl("group", "create", self.group)
        self.addCleanup(self.patd.patctl, "group", "destroy", self.group, "--force", "--grace-ms", "500", check=False)

    def assertMemberOk(self, result, what=""):
        """The member exited 0 and printed "ok..." last."""
        details = f"{what}\nexit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        self.assertEqual(result.returncode, 0, details)
        lines = result.stdout.strip().splitlines()
        self.assertTrue(lines and lines[-1].startswith("ok"), details)
        return lines

    def finish(self, process, timeout=TIMEOUT):
        """(returncode, stdout, stderr) of a started member; killed (by pid)
        if it overruns."""
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
            self.fail(f"{process.args} did not finish within {timeout} s:\n{out}\n{err}")
        return process.returncode, out, err


class Wire(unittest.TestCase):
    """pat._wire and pat._stream without a daemon: what goes out of band and
    how it comes back (these need only the extension's pure helpers)."""

    @classmethod
    def setUpClass(cls):
        sys.path.insert(0, str(package_root()))
        global np, _wire, _stream, pat, _pat
        import numpy as np
        import _pat
        import pat
        from pat import _stream, _wire

    @classmethod
    def tearDownClass(cls):
        sys.path.remove(str(package_root()))

    def round_trip(self, value):
        pickled = _wire.dumps(value)
        views = [memoryview(bytearray(b.raw() if hasattr(b, "raw") else memoryview(b).cast("B")))
                 for b in pickled.buffers]
        return pickled, _wire.loads(pickled.data, pickled.kinds, views)

    def test_what_goes_out_of_band(self):
        big = bytes(range(256)) * 1024  # 256 KiB
        value = {"bytes": big, "bytearray": bytearray(big), "small": b"x" * 100,
                 "array": np.arange(100000, dtype=np.int32), "fortran": np.asfortranarray(np.ones((300, 400))),
                 "strided": np.arange(200000)[::2], "view": memoryview(np.arange(50000, dtype=np.float64)),
                 "smallview": memoryview(b"abc"), "text": "hello"}
        pickled, back = self.round_trip(value)
        # bytes, bytearray, 2 contiguous numpy arrays, the memoryview, and the
        # strided array's bytes (numpy pickles a non-contiguous array as a copy
        # in a bytes object, large enough to go out of band itself)
        self.assertEqual(pickled.kinds, b"xxppxx")
        self.assertEqual(back["bytes"], big)
        self.assertIs(type(back["bytes"]), bytes)
        self.assertEqual(back["bytearray"], bytearray(big))
        self.assertIs(type(back["bytearray"]), bytearray)
        self.assertTrue(np.array_equal(back["array"], value["array"]))
        self.assertTrue(np.array_equal(back["fortran"], value["fortran"]) and back["fortran"].flags.f_contiguous)
        self.assertTrue(np.array_equal(back["strided"], value["strided"]))
        self.assertEqual(back["view"].format, "d")
        self.assertEqual(back["view"].shape, (50000,))
        self.assertEqual(back["view"].tolist(), value["view"].tolist())
        self.assertEqual(bytes(back["smallview"]), b"abc")
        self.assertTrue(back["smallview"].readonly)
        self.assertEqual(back["text"], "hello")

    def test_received_arrays_are_views_of_the_buffers(self):
        array = np.arange(100000, dtype=np.int64)
        pickled = _wire.dumps(array)
        target = bytearray(pickled.buffers[0].raw())
        back = _wire.loads(pickled.data, pickled.kinds, [memoryview(target)])
        target[:8] = (12345).to_bytes(8, "little")
        self.assertEqual(back[0], 12345)  # no copy: the array is the buffer

    def test_in_band_only(self):
        value = {"view": memoryview(bytes(100000)), "array": np.ones(10000)}
        pickled = _wire.dumps(value, out_of_band=False)
        self.assertEqual(pickled.buffers, [])
        back = _wire.loads(pickled.data, pickled.kinds, [])
        self.assertEqual(bytes(back["view"]), bytes(100000))
        self.assertTrue(np.array_equal(back["array"], np.ones(10000)))

    def test_stream_frames_copy_large_buffers_by_address(self):
        value = {"big": np.arange(1 << 20, dtype=np.float64), "small": np.arange(10, dtype=np.float64)}
        frame, sources = _stream.encode_object(12, 7, value)
        self.assertEqual(len(sources), 1)  # the 8 MiB array; the small one is in band
        self.assertLess(len(frame), 64 * 1024)
        reader = _stream.FrameReader()
        reader.feed(frame)
        (kind, tag, body), = list(reader.frames())
        self.assertEqual((kind, tag), (12, 7))
        received = _stream.Body(body)
        for index, address, length in received.remote:
            view = _stream.fresh_memory(length)
            _pat.read_remote(os.getpid(), address, view)  # ourselves, as the caller reads a worker
            received.fill(index, view)
        back = received.load()
        self.assertTrue(np.array_equal(back["big"], value["big"]))
        self.assertTrue(np.array_equal(back["small"], value["small"]))

    def test_not_in_group(self):
        self.assertFalse(pat.in_group())
        with self.assertRaises(pat.NotInGroup):
            pat.group()
        with self.assertRaises(pat.NotInGroup):
            pat.Channel("x")
        with self.assertRaises(pat.NotInGroup):
            pat.buffer(10)
        self.assertTrue(issubclass(pat.PeerDied, pat.Error) and issubclass(pat.WorkerDied, pat.Error))

    def test_import_pat_registers_with_joblib_and_dask_in_either_order(self):
        registered = {
            "joblib": "import joblib.parallel; assert 'pat' in joblib.parallel.BACKENDS, 'not registered'",
            "dask": "import dask.base, pat.dask; "
                    "assert dask.base.named_schedulers.get('pat') is pat.dask.get, 'not registered'",
        }
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        env["PYTHONPATH"] = str(package_root())
        for library, check in registered.items():
            with self.subTest(library=library):
                if subprocess.run([DEBIAN_PYTHON, "-c", f"import {library}"], capture_output=True).returncode != 0:
                    self.skipTest(f"python3-{library} not installed (scripts/setup.sh installs it)")
                submodule = {"joblib": "joblib.parallel", "dask": "dask.base"}[library]
                programs = {
                    "pat first": f"import sys, pat; assert '{library}' not in sys.modules, 'pat imported it'; "
                                 f"import {library}; " + check,
                    f"{library} first": f"import {library}, pat; " + check,
                    "a submodule first": f"import pat, {submodule}; " + check,
                }
                for order, program in programs.items():
                    result = subprocess.run([DEBIAN_PYTHON, "-c", program], capture_output=True, text=True, env=env)
                    self.assertEqual(result.returncode, 0, f"{library}, {order}: {result.stderr}")

    def test_executor_without_patd(self):
        previous = os.environ.get("PATD_SOCKET")
        os.environ["PATD_SOCKET"] = "/nonexistent/patd.sock"
        try:
            executor = pat.Executor(1)
            with self.assertRaisesRegex(ConnectionError, "cannot reach patd"):
                executor.submit(abs, -1)
            executor.shutdown()
        finally:
            if previous is None:
                del os.environ["PATD_SOCKET"]
            else:
                os.environ["PATD_SOCKET"] = previous


class Executor(WithPatd):
    """pat.Executor called by a member: workers in the caller's group."""

    def test_results_exceptions_map_wait_and_zero_copy(self):
        self.assertMemberOk(self.patd.run_member(self.group, "executor_basics.py"))

    def test_cancel_and_shutdown(self):
        self.assertMemberOk(self.patd.run_member(self.group, "executor_cancel.py", self.tmp))

    def test_worker_crash(self):
        lines = self.assertMemberOk(self.patd.run_member(self.group, "executor_crash.py"))
        self.assertIn("SIGKILL", lines[-2])
        # Every worker (the dead ones and their replacements) is gone after
        # shutdown; only the caller ran in the group at the end.
        shown = self.patd.show(self.group)
        self.assertEqual(shown["members"], [])


class ExecutorFailures(WithPatd):
    """Every way a task can fail, before, during and after it reaches a
    worker, ends its future, and leaving the executor's with-block returns
    (members/executor_failures.py: each case is bounded by faulthandler,
    the whole run by FAILURES_TIMEOUT)."""

    FAILURES_TIMEOUT = 240

    def test_as_member(self):
        result = self.patd.run_member(self.group, "executor_failures.py", timeout=self.FAILURES_TIMEOUT)
        self.assertMemberOk(result)

    def test_outside_any_group(self):
        env = self.patd.env(PYTHONPATH=str(package_root()))
        result = subprocess.run([DEBIAN_PYTHON, str(MEMBERS / "executor_failures.py")], capture_output=True,
                                text=True, env=env, cwd=MEMBERS, timeout=self.FAILURES_TIMEOUT)
        self.assertMemberOk(result)


class CPythonConformance(WithPatd):
    """CPython's own test_concurrent_futures with pat.Executor in
    ProcessPoolExecutor's place (cpython_conformance.py, --quick: the spawn
    context whole and every initializer test), as a member and from
    /usr/bin/python3.11 outside any group. Skipped, visibly, where Debian's
    libpython3.11-testsuite is not installed."""

    CONFORMANCE_TIMEOUT = 600

    def setUp(self):
        if not pathlib.Path("/usr/lib/python3.11/test/test_concurrent_futures.py").exists():
            self.skipTest("libpython3.11-testsuite is not installed (scripts/setup.sh installs it)")
        super().setUp()

    def check(self, result):
        summary = next((line for line in result.stdout.splitlines() if line.startswith("pat.Executor in CPython")),
                       None)
        details = f"exit {result.returncode}\nstdout (end):\n{result.stdout[-6000:]}\nstderr (end):\n" \
                  f"{result.stderr[-3000:]}"
        self.assertEqual(result.returncode, 0, details)
        self.assertIsNotNone(summary, details)
        print(f"\n  {summary}", file=sys.stderr)

    def test_as_member(self):
        argv = self.patd.member_argv(self.group, "../cpython_conformance.py", "--quick")
        self.check(subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                  env=self.patd.env(), cwd=self.tmp, timeout=self.CONFORMANCE_TIMEOUT))

    def test_outside_any_group(self):
        env = self.patd.env(PYTHONPATH=str(package_root()))
        self.check(subprocess.run([DEBIAN_PYTHON, str(HERE / "cpython_conformance.py"), "--outside", "--quick"],
                                  stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env, cwd=self.tmp,
                                  timeout=self.CONFORMANCE_TIMEOUT))


class Buffers(WithPatd):
    def test_buffer_outlives_its_sender(self):
        sent = self.patd.run_member(self.group, "buffer_handoff.py", "send", "handoff")
        self.assertEqual(sent.returncode, 0, sent.stderr)
        self.assertEqual(sent.stdout.strip(), "sent")
        sender_pids = [e["pid"] for e in self.patd.show(self.group)["recent_exits"]]
        self.assertEqual(len(sender_pids), 1)
        received = self.patd.run_member(self.group, "buffer_handoff.py", "receive", "handoff")
        lines = self.assertMemberOk(received)
        self.assertEqual(lines[-1], f"ok sender={sender_pids[0]}")

    def test_cpp_member_exchanges_buffers_with_python(self):
        echo = subprocess.Popen(
            [str(self.patd.patctl_path), "--socket", str(self.patd.socket), "run", "--group", self.group, "--",
             str(PROGRAMS_DIR / "buffer_echo"), "cpp.requests", "cpp.replies"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        python = self.patd.run_member(self.group, "cpp_exchange.py", "cpp.requests", "cpp.replies")
        code, out, err = self.finish(echo)
        self.assertMemberOk(python)
        self.assertEqual((code, out.strip()), (0, "served 2"), err)


class Channels(WithPatd):
    def test_four_producers_four_consumers_every_message_once(self):
        count = 1500
        closer = self.patd.start_member(self.group, "channel_stress.py", "close", "stress", stdin=subprocess.PIPE)
        self.assertEqual(closer.stdout.readline().strip(), "attached")
        consumers = [self.patd.start_member(self.group, "channel_stress.py", "consume", "stress") for _ in range(4)]
        producers = [self.patd.start_member(self.group, "channel_stress.py", "produce", "stress", i, count)
                     for i in range(4)]
        for producer in producers:
            code, out, err = self.finish(producer)
            self.assertEqual((code, out.strip()), (0, "produced"), err)
        closer.stdin.write("close\n")
        closer.stdin.flush()
        self.assertEqual(self.finish(closer)[0], 0)
        received = []
        per_consumer = []
        for consumer in consumers:
            code, out, err = self.finish(consumer)
            self.assertEqual(code, 0, err)
            mine = [tuple(x) for x in json.loads(out.strip().splitlines()[-1])]
            per_consumer.append(len(mine))
            received.extend(mine)
        expected = {(p, s) for p in range(4) for s in range(count)}
        self.assertEqual(len(received), len(expected), f"duplicates or losses; per consumer {per_consumer}")
        self.assertEqual(set(received), expected)
        print(f"\n  messages per consumer: {per_consumer}", file=sys.stderr)

    def test_peer_died(self):
        waiter = self.patd.start_member(self.group, "peer_died.py", "wait", "dying")
        holder = self.patd.start_member(self.group, "peer_died.py", "hold", "dying")
        self.assertEqual(holder.stdout.readline().strip(), "holding")
        # The holder's pid: the member running "hold".
        pid = next(m["pid"] for m in self.patd.show(self.group)["members"] if "hold" in m["argv"])
        os.kill(pid, signal.SIGKILL)
        code, out, err = self.finish(waiter)
        self.assertEqual(code, 0, err)
        self.assertTrue(out.startswith("ok PeerDied:"), out)
        self.finish(holder)

    def test_a_signal_handler_ends_a_blocked_recv(self):
        lines = self.assertMemberOk(self.patd.run_member(self.group, "peer_died.py", "interrupt", "quiet"))
        seconds = float(lines[-1].split()[-2])
        self.assertLess(seconds, 5.0)

    def test_exit_while_daemon_threads_wake_from_recv(self):
        # Five times: the abort this guards against depended on a thread
        # waking during finalization, which is likely but not certain.
        for _ in range(5):
            result = self.patd.run_member(self.group, "peer_died.py", "exit", "waking")
            self.assertMemberOk(result)
            self.assertEqual(result.stderr, "")


class GroupMemory(WithPatd):
    def test_no_rss_growth_over_2000_tasks_with_1_mib_buffers(self):
        result = self.patd.run_member(self.group, "rss_tasks.py", 2000, 200, timeout=600)
        self.assertEqual(result.returncode, 0, result.stderr)
        figures = json.loads(result.stdout.strip().splitlines()[-1])
        growth = figures["after_all"] - figures["after_warmup"]
        print(f"\n  group RSS after 200 tasks {figures['after_warmup'] >> 20} MiB, after 2000 "
              f"{figures['after_all'] >> 20} MiB, after shutdown {figures['after_shutdown'] >> 20} MiB",
              file=sys.stderr)
        # 1,800 more tasks moved 3.5 GiB through the group; what stays must
        # not depend on how many there were.
        self.assertLess(growth, 16 << 20, figures)
        self.assertEqual(figures["zero_copy_results"], 1000, "half the results should travel as pinned pages")


class Libraries(WithPatd):
    """joblib's "pat" backend with scikit-learn (members/joblib_backend.py)
    and the Dask scheduler pat.dask.get (members/dask_scheduler.py), each as
    a member and from /usr/bin/python3.11 outside any group. Skipped,
    visibly, where Debian's python3-joblib, python3-sklearn or python3-dask
    is missing (scripts/setup.sh installs them)."""

    LIBRARY_TIMEOUT = 600

    def run_script(self, script, outside, *modules):
        missing = [m for m in modules if subprocess.run([DEBIAN_PYTHON, "-c", f"import {m}"],
                                                        capture_output=True).returncode != 0]
        if missing:
            self.skipTest(f"{', '.join(missing)} not installed (scripts/setup.sh installs it)")
        if outside:
            env = self.patd.env(PYTHONPATH=str(package_root()))
            result = subprocess.run([DEBIAN_PYTHON, str(MEMBERS / script), "--outside"], capture_output=True,
                                    text=True, env=env, cwd=MEMBERS, timeout=self.LIBRARY_TIMEOUT)
        else:
            result = self.patd.run_member(self.group, script, timeout=self.LIBRARY_TIMEOUT)
        lines = self.assertMemberOk(result)
        print("\n  " + "\n  ".join(lines[:-1]), file=sys.stderr)

    def test_joblib_and_scikit_learn_as_member(self):
        self.run_script("joblib_backend.py", False, "joblib", "sklearn")

    def test_joblib_and_scikit_learn_outside_any_group(self):
        self.run_script("joblib_backend.py", True, "joblib", "sklearn")

    def test_dask_as_member(self):
        self.run_script("dask_scheduler.py", False, "dask")

    def test_dask_outside_any_group(self):
        self.run_script("dask_scheduler.py", True, "dask")


class OutsideGroup(WithPatd):
    """pat.Executor called by a process that is not a member."""

    def check_outside(self, argv, env):
        before = set(self.patd.groups())
        result = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=MEMBERS, timeout=TIMEOUT)
        lines = self.assertMemberOk(result)
        group = next(line.split()[1] for line in lines if line.startswith("group "))
        self.assertNotIn(group, before)
        self.assertEqual(set(self.patd.groups()), before, "the executor's own group must be gone after shutdown")

    def test_debian_python3_caller(self):
        env = self.patd.env(PYTHONPATH=str(package_root()))
        self.check_outside([DEBIAN_PYTHON, str(MEMBERS / "executor_outside.py")], env)

    def test_pat_python_caller_outside_any_group(self):
        self.check_outside([str(self.patd.pat_python), str(MEMBERS / "executor_outside.py")], self.patd.env())

    def test_killed_caller_leaves_no_group(self):
        script = self.tmp / "killed.py"
        script.write_text(
            "import os, signal, time, pat\n"
            "def nap(s):\n    time.sleep(s)\n"
            "if __name__ == '__main__':\n"
            "    ex = pat.Executor(2)\n    ex.submit(nap, 0).result(timeout=60)\n"
            "    print('started', flush=True)\n    ex.submit(nap, 5)\n"
            "    os.kill(os.getpid(), signal.SIGKILL)\n")
        before = set(self.patd.groups())
        result = subprocess.run([str(self.patd.pat_python), str(script)], capture_output=True, text=True,
                                env=self.patd.env(), timeout=TIMEOUT)
        self.assertEqual(result.returncode, -signal.SIGKILL, result.stderr)
        self.assertIn("started", result.stdout)
        # Its workers see the connection end and exit (the busy one after its
        # task): the ephemeral group ends with the last of them.
        deadline = time.monotonic() + 60
        while set(self.patd.groups()) != before and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertEqual(set(self.patd.groups()), before)


JOIN_USER = "pat-attach"  # the user tests/integration/attach_test.cc runs its programs as


def ensure_user(name):
    """The uid of a system user made for the tests (as tests/support's
    ensure_test_user)."""
    import pwd
    try:
        return pwd.getpwnam(name).pw_uid
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "--user-group",
                        name], check=True, capture_output=True)
        return pwd.getpwnam(name).pw_uid


def kcmp_vm(pid1, pid2):
    """kcmp(pid1, pid2, KCMP_VM): 0 when the two share one address space.
    SYS_kcmp is 312 on x86-64 (arch/x86/entry/syscalls/syscall_64.tbl),
    KCMP_VM 1 (include/uapi/linux/kcmp.h)."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    result = libc.syscall(312, pid1, pid2, 1, 0, 0)
    if result < 0:
        raise OSError(ctypes.get_errno(), f"kcmp({pid1}, {pid2}, KCMP_VM)")
    return result


class Join(unittest.TestCase):
    """pat.join(): a running interpreter of an unprivileged user (not started
    by pat, with a second thread) moves into a group and goes on there
    (members/join_running.py). The test, as root, checks it from outside:
    kcmp(KCMP_VM) with the group's host, the original PID kept by the stub,
    the exit status its parent sees."""

    patd = None

    @classmethod
    def setUpClass(cls):
        ensure_user(JOIN_USER)
        cls.patd = PrivatePatd(socket_mode="0666")

    @classmethod
    def tearDownClass(cls):
        cls.patd.close()

    def setUp(self):
        # A copy of the script the user can read, wherever the source tree is.
        self.tmp = pathlib.Path(tempfile.mkdtemp(prefix="pat-join-test-"))
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.tmp.chmod(0o755)
        self.script = self.tmp / "join_running.py"
        shutil.copyfile(MEMBERS / "join_running.py", self.script)
        self.script.chmod(0o644)

    def as_user(self, argv):
        return ["setpriv", f"--reuid={JOIN_USER}", f"--regid={JOIN_USER}", "--init-groups", *map(str, argv)]

    def patctl_as_user(self, *args):
        result = subprocess.run(self.as_user(self.patd.patctl_argv(*args)), stdin=subprocess.DEVNULL,
                                capture_output=True, text=True, timeout=TIMEOUT)
        self.assertEqual(result.returncode, 0, f"patctl {args}: {result.stderr}")
        return result.stdout

    def join_and_check(self, python, **env):
        environment = self.patd.env(PYTHONPATH=str(package_root()), **env)
        process = subprocess.Popen(self.as_user([python, self.script]), stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment,
                                   cwd=self.tmp)
        self.addCleanup(lambda: process.poll() is None and process.kill())
        joined = json.loads(process.stdout.readline() or "null")
        if joined is None:
            process.kill()
            self.fail(f"no join report; stderr:\n{process.stderr.read()}")
        # setpriv execs the interpreter: the PID the test started is the original.
        self.assertEqual(joined["original_pid"], process.pid)
        group = json.loads(self.patctl_as_user("group", "show", joined["group"], "--json"))
        self.assertEqual(kcmp_vm(joined["pid"], group["host_pid"]), 0, "the interpreter is not in the group's mm")
        self.assertNotEqual(kcmp_vm(process.pid, group["host_pid"]), 0)
        member = next((m for m in group["members"] if m.get("original_pid") == process.pid), None)
        self.assertIsNotNone(member, group["members"])
        self.assertEqual((member["pid"], member["origin"], member["stub_pid"]),
                         (joined["pid"], "attached", process.pid))
        out, err = process.communicate("done\n", timeout=TIMEOUT)
        self.assertEqual(process.returncode, 0, f"stdout:\n{out}\nstderr:\n{err}")
        self.assertEqual(out.strip().splitlines()[-1:], ["ok"], err)
        return joined

    def test_debian_python3_joins_a_new_group(self):
        joined = self.join_and_check(DEBIAN_PYTHON)
        self.assertTrue(joined["group"].startswith("run-"), joined)
        # The new group ends with its last member.
        deadline = time.monotonic() + 60
        while joined["group"] in self.patd.groups() and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertNotIn(joined["group"], self.patd.groups())

    def test_pat_python_joins_its_pat_group(self):
        self.patctl_as_user("group", "create", "joined")
        self.addCleanup(self.patd.patctl, "group", "destroy", "joined", "--force", "--grace-ms", "500", check=False)
        joined = self.join_and_check(self.patd.pat_python, PAT_GROUP="joined")
        self.assertEqual(joined["group"], "joined")

    def test_destroying_the_group_ends_the_joined_interpreter_as_its_parent_sees(self):
        # The original parent sees the member's end (SIGTERM from the
        # destroy), not the host's exit killing the stub.
        self.patctl_as_user("group", "create", "destroyed")
        script = self.tmp / "waits.py"
        script.write_text("import sys, pat\nprint(pat.join(), flush=True)\nsys.stdin.readline()\n")
        script.chmod(0o644)
        process = subprocess.Popen(self.as_user([DEBIAN_PYTHON, script]), stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   env=self.patd.env(PYTHONPATH=str(package_root()), PAT_GROUP="destroyed"),
                                   cwd=self.tmp)
        self.addCleanup(lambda: process.poll() is None and process.kill())
        self.assertEqual(process.stdout.readline().strip(), "destroyed")
        self.patctl_as_user("group", "destroy", "destroyed", "--force", "--grace-ms", "5000")
        _, err = process.communicate(timeout=TIMEOUT)
        self.assertEqual(process.returncode, -signal.SIGTERM, err)

    def test_refused_join_leaves_the_interpreter_running(self):
        script = self.tmp / "refused.py"
        script.write_text(
            "import subprocess, sys, pat\n"
            "child = subprocess.Popen(['sleep', '60'])\n"
            "try:\n    pat.join()\nexcept pat.JoinRefused as error:\n"
            "    print(error.name, error.reason, flush=True)\n"
            "child.kill(); child.wait()\n"
            "print('ok', pat.in_group(), flush=True)\n")
        script.chmod(0o644)
        result = subprocess.run(self.as_user([DEBIAN_PYTHON, script]), capture_output=True, text=True,
                                env=self.patd.env(PYTHONPATH=str(package_root())), cwd=self.tmp, timeout=TIMEOUT)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.splitlines(), ["io.pat.NotAttachable has_children", "ok False"],
                         result.stderr)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build-dir", required=True, type=pathlib.Path)
    parser.add_argument("--programs", required=True, type=pathlib.Path)
    args, rest = parser.parse_known_args()
    global BUILD_DIR, PROGRAMS_DIR
    BUILD_DIR = args.build_dir.resolve()
    PROGRAMS_DIR = args.programs.resolve()
    result = unittest.main(argv=[sys.argv[0], "-v", *rest], exit=False).result
    if result.testsRun and len(result.skipped) == result.testsRun and result.wasSuccessful():
        sys.exit(SKIPPED)  # every test skipped: CTest shows it (SKIP_RETURN_CODE)
    sys.exit(0 if result.wasSuccessful() else 1)


if __name__ == "__main__":
    main()
