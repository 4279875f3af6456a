"""A patd of our own on a fresh runtime directory, for the Python test
drivers and the benchmarks (the C++ tests have tests/support/patd_instance).

close() stops everything it started, by pid: first the group hosts found
through groups/*/host.sock (their members die with them, PR_SET_PDEATHSIG),
then patd, then the directory goes. Use it as a context manager so that an
exception or Ctrl-C still cleans up.
"""
import contextlib
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
from pathlib import Path


def listener_pid(path):
    """pid of the process serving a Unix socket (SO_PEERCRED), or None."""
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(str(path))
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        return struct.unpack("3i", creds)[0]
    return None


class PrivatePatd:
    def __init__(self, bin_dir, prefix="pat-private-", timeout=60, socket_mode="0600", extra_args=()):
        """socket_mode other than 0600 also opens the runtime directory to
        other users (mkdtemp makes it 0700), so that they can reach the socket.
        extra_args go to patd's command line (--metrics-listen ADDR, say)."""
        self.bin_dir = Path(bin_dir)
        self.timeout = timeout
        self.runtime_dir = Path(tempfile.mkdtemp(prefix=prefix))
        if socket_mode != "0600":
            self.runtime_dir.chmod(0o755)
        self.socket = self.runtime_dir / "patd.sock"
        self.log_path = self.runtime_dir / "patd.log"
        self.socket_mode = socket_mode
        self.extra_args = extra_args
        self.start()

    def start(self):
        """Starts patd on the runtime directory and waits until it answers;
        again after it died (a restarted patd rediscovers the groups there)."""
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [str(self.bin_dir / "patd"), "--runtime-dir", str(self.runtime_dir), "--socket-mode", self.socket_mode,
                 *self.extra_args],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = time.monotonic() + 10
        while self.patctl("status", check=False).returncode != 0:
            if self.process.poll() is not None or time.monotonic() > deadline:
                log_text = self.log()
                self.close()
                raise RuntimeError(f"patd did not come up; its log:\n{log_text}")
            time.sleep(0.02)

    def patctl_argv(self, *args):
        return [str(self.bin_dir / "patctl"), "--socket", str(self.socket), *map(str, args)]

    def patctl(self, *args, check=True):
        result = subprocess.run(self.patctl_argv(*args), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                timeout=self.timeout)
        if check and result.returncode != 0:
            raise RuntimeError(f"patctl {' '.join(map(str, args))}: exit {result.returncode}: {result.stderr.strip()}")
        return result

    def show(self, group):
        return json.loads(self.patctl("group", "show", group, "--json").stdout)

    def groups(self):
        return [g["name"] for g in json.loads(self.patctl("group", "list", "--json").stdout)]

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def host_pids(self):
        groups = self.runtime_dir / "groups"
        return [pid for entry in (groups.iterdir() if groups.is_dir() else [])
                if (pid := listener_pid(entry / "host.sock"))]

    def close(self):
        for pid in self.host_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.runtime_dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
