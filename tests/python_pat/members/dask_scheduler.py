"""pat.dask.get, Dask's scheduler on pat.Executor workers, as a member or,
with --outside, from a process that is not one: dask.array and dask.bag
results equal the threaded scheduler's (lambdas, a groupby whose string
keys every worker must hash alike), exceptions re-raised in the caller,
the work done in the workers, and blocks by reference (member): a block a
worker made reaches the caller as a view of the worker's pages. Prints
"ok" last; any failure raises."""
import os
import sys

import numpy as np

import pat

OUTSIDE = "--outside" in sys.argv


def explode(x):
    if x == 5:
        raise KeyError("five")
    return x


def address_of(array):
    return array.__array_interface__["data"][0], float(array.sum())


def pid_of(_):
    return os.getpid()


def check_array():
    import dask
    import dask.array as da

    x = da.from_array(np.arange(1_000_000, dtype=np.float64).reshape(1000, 1000), chunks=(250, 250))
    y = (x + x.T) * 2 - x.mean(axis=0)
    expressions = [y.sum(axis=1), (y @ y.T)[:10, :10], da.sqrt(abs(y)).std(), y.max()]
    expected = dask.compute(*expressions, scheduler="threads")
    got = dask.compute(*expressions, scheduler=pat.dask.get)
    for want, have in zip(expected, got):
        assert np.allclose(want, have, rtol=1e-12, atol=0), (want, have)
    # By name ("pat", registered by `import pat`), also through the config.
    pids = {pid_of(None)}
    with dask.config.set(scheduler="pat"):
        assert np.allclose(y.sum().compute(), y.sum().compute(scheduler="threads"), rtol=1e-12)
        pids.update(da.arange(8, chunks=1).map_blocks(lambda b: np.array([os.getpid()]), dtype=np.int64).compute())
    assert len(pids) > 1, "scheduler='pat' ran the tasks in the caller"
    # A 64 MiB block made in a worker, read by another task and by the
    # caller: the worker's own pages, by reference all the way (a graph of
    # two tasks, not fused, so they may run in different workers).
    graph = {"block": (np.ones, 8 << 20), "seen": (address_of, "block")}
    block, seen = pat.dask.get(graph, ["block", "seen"], optimize_graph=False)
    assert block.shape == (8 << 20,) and seen[1] == float(8 << 20)
    if not OUTSIDE:
        buffer = pat.buffer_of(block)
        assert buffer is not None and buffer.zero_copy, "the block was copied"
        assert seen[0] == block.__array_interface__["data"][0], "the next task got a copy"
    print("dask.array: same results as the threaded scheduler", flush=True)


def check_bag():
    import dask
    import dask.bag as db

    numbers = db.from_sequence(range(2000), npartitions=12)
    words = numbers.map(lambda n: f"w{n % 37}")
    expressions = [numbers.map(lambda n: n * n).filter(lambda n: n % 3).sum(),
                   words.frequencies(sort=True),
                   numbers.groupby(lambda n: f"k{n % 11}").map(lambda kv: (kv[0], sum(kv[1]))),
                   numbers.foldby(lambda n: str(n % 5), lambda total, n: total + n, 0, lambda a, b: a + b, 0)]
    expected = dask.compute(*expressions, scheduler="threads")
    got = dask.compute(*expressions, scheduler=pat.dask.get)
    assert got[0] == expected[0]
    assert list(got[1]) == list(expected[1])
    assert sorted(got[2]) == sorted(expected[2]) and len(got[2]) == 11, got[2]
    assert sorted(got[3]) == sorted(expected[3])
    pids = set(numbers.map(pid_of).compute(scheduler=pat.dask.get))
    assert os.getpid() not in pids, "the tasks ran in the caller"
    try:
        numbers.map(explode).compute(scheduler=pat.dask.get)
        raise AssertionError("no exception")
    except KeyError as error:
        assert "five" in str(error), error
    # And the scheduler is usable after a failure.
    assert numbers.count().compute(scheduler=pat.dask.get) == 2000
    print("dask.bag: same results as the threaded scheduler, exceptions re-raised", flush=True)


def main():
    assert pat.in_group() != OUTSIDE
    check_array()
    check_bag()
    print("ok")


if __name__ == "__main__":
    main()
