"""A Dask scheduler whose tasks run on pat.Executor workers, numpy blocks
passed by reference:

    import dask, pat
    dask.compute(x, scheduler="pat")            # or scheduler=pat.dask.get
    dask.config.set(scheduler="pat")            # or for everything

``import pat`` names the scheduler "pat" in Dask (:func:`register`), as it
registers joblib's "pat" backend: at once if Dask is imported already,
otherwise right after Dask's import (pat._after_import).

It is Dask's processes scheduler (dask.multiprocessing.get) with one
difference that matters: Dask pickles every task and every block into
bytes itself (cloudpickle.dumps) before its pool sees them, so nothing can
travel by reference. Here the same loop (dask.local.get_async: the graph
culled and fused, tasks fired as they become ready, ``chunksize`` of them
per submission) gives pat.Executor the tasks as objects: cloudpickle still
handles the functions (lambdas work, as with Dask's processes scheduler),
but the blocks' buffers stay out of its stream (pat._by_value) and go
through pat's zero-copy path — by reference between members, so a block a
worker made is read in place by the next worker that needs it, and by the
caller that gets the result.

Options, as dask.multiprocessing.get's: ``num_workers`` (default: Dask's
``num_workers`` setting, else the CPU count), ``pool`` (a pat.Executor of
your own; default: one kept between calls, pat._reusable), ``chunksize``
(tasks per submission; default Dask's ``chunksize`` setting, else
DEFAULT_CHUNKSIZE), ``optimize_graph``. As Dask does for its processes,
workers get PYTHONHASHSEED=6640 unless the caller sets another seed, so
that every worker hashes alike (bag's groupby, foldby).

Exceptions are re-raised in the caller with the worker's traceback, as
Dask's processes scheduler does (dask.multiprocessing.pack_exception and
reraise).
"""

import os

from dask import config
from dask.local import get_async
from dask.multiprocessing import _process_get_id, pack_exception, reraise
from dask.optimization import cull, fuse
from dask.system import CPU_COUNT
from dask.utils import ensure_dict

from ._by_value import ByValue
from ._reusable import ReusableExecutor

NAME = "pat"
DEFAULT_CHUNKSIZE = 6  # dask.multiprocessing's
# dask.multiprocessing's seed, for the same reason: one hash for all.
HASH_SEED = "6640"

_executors = ReusableExecutor()


def register():
    """Names this scheduler "pat" for Dask (``scheduler="pat"`` in compute()
    and in dask.config), beside "threads" and "processes"; ``import pat``
    already does, lazily. Returns the name."""
    from dask.base import named_schedulers
    named_schedulers[NAME] = get
    return NAME


def get(dsk, keys, num_workers=None, pool=None, chunksize=None, optimize_graph=True, **kwargs):
    """Computes ``keys`` of the graph ``dsk`` on pat.Executor workers; the
    signature of dask.multiprocessing.get (``func_dumps``/``func_loads`` are
    not taken: pat decides how tasks travel)."""
    for unsupported in ("func_dumps", "func_loads", "initializer"):
        if kwargs.pop(unsupported, None) is not None:
            raise TypeError(f"pat.dask.get does not take {unsupported}: pat decides how tasks travel; give a "
                            "pat.Executor with its initializer as pool= instead")
    chunksize = chunksize or config.get("chunksize", DEFAULT_CHUNKSIZE)
    pool = pool or config.get("pool", None)
    if pool is None:
        num_workers = num_workers or config.get("num_workers", None) or CPU_COUNT
        pool = _executors.get(num_workers, _worker_environment())
    dsk = ensure_dict(dsk)
    dsk, dependencies = cull(dsk, keys)
    if optimize_graph:
        dsk, dependencies = fuse(dsk, keys, dependencies)
    submit = _InCompletionOrder(pool).submit if hasattr(pool, "_wait_for_any") else pool.submit
    return get_async(submit, pool._max_workers, dsk, keys, get_id=_process_get_id, dumps=dumps, loads=loads,
                     pack_exception=pack_exception, raise_exception=reraise, chunksize=chunksize, **kwargs)


class _InCompletionOrder:
    """get_async's submit(), made so that get_async's own thread receives
    the workers' results.

    get_async puts each future in a queue from its done-callback and takes
    them out with queue.get().result(). With pat.Executor's futures, the
    callback would run in pat's reader thread, which then wakes get_async's
    thread: two threads taking turns at the GIL for every batch, a cost
    that dominated a graph of small tasks (cProfile: 2 ms per submit,
    waiting for the GIL, on a loaded machine). So submit() returns a
    _Ticket whose add_done_callback runs the callback at once, and whose
    result() waits (pat.Executor._wait_for_any: receiving in this thread)
    for whichever submitted batch finishes first and returns that batch's
    result. get_async calls result() once per submission, in queue order,
    so it still gets every batch once, in the order they finish."""

    def __init__(self, executor):
        self._executor = executor
        self._running = []  # futures submitted, not yet handed to get_async

    def submit(self, function, *args):
        self._running.append(self._executor.submit(function, *args))
        return _Ticket(self)

    def next_finished(self):
        """The first submitted future to finish, removed from the running."""
        running = self._running
        self._executor._wait_for_any(running)
        for i, future in enumerate(running):
            if future.done():
                return running.pop(i)
        raise AssertionError("_wait_for_any returned with nothing done")


class _Ticket:
    """What get_async holds for one submission (see _InCompletionOrder)."""

    __slots__ = ("_batches",)

    def __init__(self, batches):
        self._batches = batches

    def add_done_callback(self, callback):
        callback(self)

    def result(self, timeout=None):
        return self._batches.next_finished().result(timeout)


def dumps(obj):
    """get_async's serialiser: nothing is serialised here; the object is
    wrapped so that pat.Executor sends it with cloudpickle, buffers out of
    band (pat._by_value)."""
    return ByValue(obj)


def loads(obj):
    """Inverse of dumps: what arrives through pat is the object already."""
    return obj.load() if isinstance(obj, ByValue) else obj


def _worker_environment():
    seed = os.environ.get("PYTHONHASHSEED")
    return {"PYTHONHASHSEED": HASH_SEED} if seed in (None, "0") else {}
