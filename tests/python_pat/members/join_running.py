"""pat.join() from a running interpreter that is not a member (Debian's
/usr/bin/python3.11 with PYTHONPATH=<build>/lib/pat/python, or pat-python
outside any group), with a second thread counting all along. Joins
$PAT_GROUP when set, else a new group. Prints one JSON line once inside
({"original_pid", "pid", "group"}), checks that the thread still counts and
that a pat.Executor worker takes a numpy array by reference, prints "ok",
then waits for a line on stdin (the test's kcmp checks run meanwhile) and
exits 0."""
import json
import os
import signal
import sys
import threading
import time

import numpy as np

import pat


def address_and_sum(array):
    return array.__array_interface__["data"][0], float(array.sum())


def double_in_place(array):
    array *= 2  # the caller's own pages, if this is a reference
    return None


class Counter(threading.Thread):
    def __init__(self):
        super().__init__(daemon=True)
        self.count = 0

    def run(self):
        while True:
            self.count += 1
            time.sleep(0.0005)


def advances(counter):
    before = counter.count
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if counter.count > before + 10:
            return True
        time.sleep(0.01)
    return False


def main():
    counter = Counter()
    counter.start()
    assert advances(counter), "the counting thread does not run before the join"
    original = os.getpid()
    array = np.arange(1 << 20, dtype=np.float64)  # 8 MiB of the interpreter's own heap
    assert not pat.in_group()
    group = pat.join()
    print(json.dumps({"original_pid": original, "pid": os.getpid(), "group": group}), flush=True)
    assert os.getpid() != original, "still the original process"
    assert pat.in_group() and pat.group() == group, (pat.in_group(), group)
    assert os.environ.get("PAT_GROUP") == group, os.environ.get("PAT_GROUP")
    assert pat.join() == group, "joining the group one is in again must return it"
    assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == set(), "join() left signals blocked"
    assert counter.is_alive() and advances(counter), "the counting thread stopped at the join"
    with pat.Executor(max_workers=1) as executor:
        address, total = executor.submit(address_and_sum, array).result(timeout=120)
        assert address == array.ctypes.data, f"the worker saw a copy at {address:#x}, not {array.ctypes.data:#x}"
        assert total == float(array.sum()), (total, float(array.sum()))
        executor.submit(double_in_place, array).result(timeout=120)
    assert array[12345] == 2 * 12345.0, "the worker's write did not reach the caller's array"
    assert advances(counter), "the counting thread stopped"
    print("ok", flush=True)
    sys.stdin.readline()


if __name__ == "__main__":
    main()
