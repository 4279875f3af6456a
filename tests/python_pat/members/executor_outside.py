"""Not a member: pat.Executor makes an ephemeral group of its own, and moves
buffers with one process_vm_* copy. Run with PATD_SOCKET set, under
/usr/bin/python3.11 (PYTHONPATH=<build>/lib/pat/python) or pat-python
outside any group. Prints "group NAME", then "ok"."""
import os
import signal

import numpy as np

import pat


def square(x):
    return x * x


def total(array):
    return float(array.sum())


def make(n, value):
    return np.full(n, value, dtype=np.float64)


def explode():
    raise ValueError("from the worker")


def kill_myself():
    os.kill(os.getpid(), signal.SIGKILL)


def in_group_there():
    return pat.in_group(), pat.group()


def main():
    assert not pat.in_group()
    try:
        pat.group()
        raise AssertionError("pat.group() outside a group")
    except pat.NotInGroup:
        pass
    with pat.Executor(max_workers=2) as executor:
        assert executor.submit(square, 9).result(timeout=60) == 81
        there, group = executor.submit(in_group_there).result(timeout=60)
        assert there, "workers are members of a group"
        print(f"group {group}", flush=True)
        assert list(executor.map(square, range(30), chunksize=4)) == [x * x for x in range(30)]
        big = np.arange(8 << 20, dtype=np.float64)  # 64 MiB there
        assert executor.submit(total, big).result(timeout=60) == float(big.sum())
        back = executor.submit(make, 8 << 20, 1.5).result(timeout=60)  # and back
        assert back.shape == (8 << 20,) and back[0] == 1.5 and back[-1] == 1.5 and float(back.sum()) == 1.5 * (8 << 20)
        small = executor.submit(make, 100, 2.0).result(timeout=60)
        assert float(small.sum()) == 200.0
        try:
            executor.submit(explode).result(timeout=60)
            raise AssertionError("no exception")
        except ValueError as error:
            assert isinstance(error.__cause__, pat.RemoteTraceback) and "in explode" in str(error.__cause__)
        assert [executor.submit(square, i).result(timeout=60) for i in range(10)] == [i * i for i in range(10)]
        try:
            executor.submit(kill_myself).result(timeout=60)
            raise AssertionError("no WorkerDied")
        except pat.WorkerDied as error:
            assert error.signal == signal.SIGKILL, str(error)
    print("ok")


if __name__ == "__main__":
    main()
