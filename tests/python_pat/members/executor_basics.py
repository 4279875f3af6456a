"""Member: pat.Executor results, exceptions with the worker's traceback,
map with chunksize and timeout, wait/as_completed, callbacks, and buffers
by reference in both directions. Prints "ok" last; any failure raises."""
import concurrent.futures as cf
import gc
import logging
import logging.handlers
import multiprocessing
import os
import time
import weakref

import numpy as np

import pat


def square(x):
    return x * x


def add(a, b=0):
    return a + b


def explode(message):
    raise KeyError(message)


def whoami():
    return os.getpid()


def make_array(nbytes, value):
    return np.full(nbytes // 8, value, dtype=np.float64)


def fill(array, value):
    array[:] = value  # in the caller's memory: the argument arrived as a view
    return float(array.sum())


def view_back(view):
    return view  # a received buffer sent back: the same memory again


def unpicklable_result():
    return lambda: None


SETTING = None


def remember(value):
    global SETTING
    SETTING = value


def setting():
    return SETTING


def slow(seconds):
    time.sleep(seconds)
    return seconds


def main():
    assert pat.in_group()
    with pat.Executor(max_workers=2) as executor:
        assert executor.submit(square, 12).result(timeout=60) == 144
        assert executor.submit(add, 1, b=2).result() == 3
        assert list(executor.map(square, range(50), chunksize=7)) == [x * x for x in range(50)]
        assert list(executor.map(add, range(5), range(5))) == [0, 2, 4, 6, 8]

        future = executor.submit(explode, "no such key")
        try:
            future.result()
            raise AssertionError("no exception")
        except KeyError as error:
            cause = error.__cause__
            assert isinstance(cause, pat.RemoteTraceback), type(cause)
            assert "in explode" in str(cause) and "raise KeyError(message)" in str(cause), str(cause)
        assert isinstance(future.exception(), KeyError)

        # A result that cannot be pickled becomes the task's exception.
        try:
            executor.submit(unpicklable_result).result()
            raise AssertionError("an unpicklable result was returned")
        except Exception as error:  # pickle's own error: AttributeError or PicklingError
            assert "pickle" in str(error).lower() or "pickle" in str(error.__cause__).lower(), repr(error)

        # map raises at the failing element; timeout raises TimeoutError
        try:
            list(executor.map(slow, [5.0], timeout=0.2))
            raise AssertionError("map timeout not raised")
        except cf.TimeoutError:
            pass

        futures = [executor.submit(square, i) for i in range(20)]
        done, not_done = cf.wait(futures, timeout=60)
        assert len(done) == 20 and not not_done
        assert sorted(f.result() for f in cf.as_completed([executor.submit(square, i) for i in range(10)])) == \
            [i * i for i in range(10)]
        called = []
        callback_future = executor.submit(square, 3)
        callback_future.add_done_callback(lambda f: called.append(f.result()))
        callback_future.result()
        for _ in range(100):
            if called:
                break
            time.sleep(0.01)
        assert called == [9], called

        pids = {executor.submit(whoami).result() for _ in range(20)}
        assert pids <= set(executor.worker_pids()) and os.getpid() not in pids, (pids, executor.worker_pids())
        members = {m.pid for m in pat.members()}
        assert set(executor.worker_pids()) <= members, (executor.worker_pids(), members)

        # A large result arrives as a view of the worker's own pages.
        result = executor.submit(make_array, 64 << 20, 2.5).result()
        owner = pat.buffer_of(result)
        assert isinstance(owner, pat.Buffer) and owner.zero_copy and owner.address == result.ctypes.data, owner
        assert not result.flags.owndata and result.flags.writeable
        assert result.shape == (8 << 20,) and float(result[::4096].sum()) == 2.5 * 2048

        # A large argument is the caller's memory: the worker's writes show here.
        mine = np.zeros(8 << 20)  # 64 MiB: its own mapping, shared without a copy
        assert executor.submit(fill, mine, 1.0).result() == float(8 << 20)
        assert mine[0] == 1.0 and mine[-1] == 1.0
        # ...and a view sent back is the same memory, not a copy.
        back = executor.submit(view_back, memoryview(mine)).result()
        assert isinstance(back, memoryview) and back.format == "d" and back.shape == mine.shape
        assert pat.buffer_of(back).address == mine.ctypes.data, (pat.buffer_of(back), hex(mine.ctypes.data))
        del back, result, owner
    try:
        executor.submit(square, 1)
        raise AssertionError("submit after shutdown")
    except RuntimeError:
        pass
    with pat.Executor(max_workers=2, initializer=remember, initargs=("set by the initializer",)) as executor:
        assert {executor.submit(setting).result(timeout=60) for _ in range(6)} == {"set by the initializer"}
    process_pool_behaviour()
    print("ok")


def log_from_worker(text):
    logging.getLogger("pat.test").warning(text)
    return os.getpid()


def set_up_logging(queue):
    handler = logging.handlers.QueueHandler(queue)
    logging.getLogger("pat.test").addHandler(handler)


class Collected:
    pass


def make_collectable(_):
    return Collected()


def process_pool_behaviour():
    """What pat.Executor does as ProcessPoolExecutor does (the reads of
    private attributes that CPython's own tests make are replaced by
    worker_pids())."""
    # Workers start as work arrives, and an idle one is reused.
    with pat.Executor(max_workers=4) as executor:
        assert executor.worker_pids() == []
        pids = {executor.submit(whoami).result(timeout=60) for _ in range(3)}
        assert len(pids) == 1 and len(executor.worker_pids()) == 1, (pids, executor.worker_pids())
    # max_tasks_per_child: a worker is replaced after that many tasks.
    with pat.Executor(max_workers=1, max_tasks_per_child=2) as executor:
        pids = [executor.submit(whoami).result(timeout=60) for _ in range(5)]
        assert pids[0] == pids[1] != pids[2] == pids[3] != pids[4], pids
    for bad, error in ((0, ValueError), ("3", TypeError)):
        try:
            pat.Executor(1, max_tasks_per_child=bad)
            raise AssertionError(f"max_tasks_per_child={bad!r} accepted")
        except error:
            pass
    try:
        pat.Executor(1, mp_context=multiprocessing.get_context("fork"), max_tasks_per_child=1)
        raise AssertionError("fork with max_tasks_per_child accepted (ProcessPoolExecutor refuses it)")
    except ValueError:
        pass
    # A multiprocessing.Queue in initargs: the usual QueueHandler set-up.
    queue = multiprocessing.get_context("spawn").Queue()
    with pat.Executor(max_workers=2, mp_context=multiprocessing.get_context("spawn"),
                      initializer=set_up_logging, initargs=(queue,)) as executor:
        workers = {executor.submit(log_from_worker, f"record {i}").result(timeout=60) for i in range(4)}
    records = sorted(queue.get(timeout=30).getMessage() for _ in range(4))
    assert records == [f"record {i}" for i in range(4)], records
    assert workers
    # map() keeps no result once it has been yielded.
    with pat.Executor(max_workers=2) as executor:
        for result in executor.map(make_collectable, range(6)):
            reference = weakref.ref(result)
            del result
            gc.collect()
            assert reference() is None, "map kept a result it had yielded"
    # shutdown(cancel_futures=True) right after submit: the tasks already
    # given to a worker (one per worker, as ProcessPoolExecutor hands out
    # its call queue's) run; the rest are cancelled.
    executor = pat.Executor(max_workers=2)
    futures = [executor.submit(slow, 0.2) for _ in range(10)]
    executor.shutdown(wait=True, cancel_futures=True)
    ran = [f for f in futures if not f.cancelled()]
    assert len(ran) == 2 and all(f.result() == 0.2 for f in ran), [f._state for f in futures]


if __name__ == "__main__":
    main()
