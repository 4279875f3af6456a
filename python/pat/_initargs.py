"""Pickling an executor's initializer and initargs as multiprocessing
pickles a child's arguments when it spawns one, so that what
ProcessPoolExecutor accepts in initargs works here too: a
multiprocessing.Queue (the usual QueueHandler log set-up), Lock, Event,
Semaphore, Value or Array.

multiprocessing lets those objects be pickled only "through inheritance",
that is while a spawning Popen is registered (context.assert_spawning):
this registers one for the duration of the pickling. What they need then:

- file descriptors (a Queue's pipe, a heap arena): our stand-in hands each
  to multiprocessing's resource sharer (multiprocessing.resource_sharer),
  whose listener gives it to the one worker that unpickles it, after
  checking the caller's authkey (which the worker gets with the
  preparation data);
- semaphores: a named one (the 'spawn' and 'forkserver' contexts) is
  reopened by name; an unnamed one (the 'fork' context unlinks the name at
  once) is rebuilt from its address, which is only valid in the same
  address space: fine for a member caller, whose workers share it, and
  refused with a clear error otherwise.
"""

import io


class _SpawningStandIn:
    """What multiprocessing.reduction.DupFd asks of a spawning Popen."""

    @staticmethod
    def duplicate_for_child(fd):
        return fd

    @staticmethod
    def DupFd(fd):  # noqa: N802 - multiprocessing's name
        from multiprocessing import resource_sharer
        return resource_sharer.DupFd(fd)


def pickle_as_spawning(obj, shared_address_space):
    """``obj`` pickled as multiprocessing pickles a spawned child's
    arguments; raises ValueError for a 'fork'-context semaphore bound for
    another address space."""
    from multiprocessing import context, synchronize
    from multiprocessing.reduction import ForkingPickler

    # ForkingPickler: multiprocessing's reducers (a Connection as a DupFd,
    # not as its fd number) are in its dispatch table only.
    class Pickler(ForkingPickler):
        def reducer_override(self, value):
            if (not shared_address_space and isinstance(value, synchronize.SemLock)
                    and value._semlock.name is None):
                raise ValueError(
                    f"{type(value).__name__} was made with the 'fork' multiprocessing context: it cannot reach "
                    "pat.Executor workers in another address space (the caller is not a member of a group); "
                    "make it with multiprocessing.get_context('spawn')")
            return NotImplemented

    stream = io.BytesIO()
    previous = context.get_spawning_popen()
    context.set_spawning_popen(_SpawningStandIn())
    try:
        Pickler(stream, 5).dump(obj)
    finally:
        context.set_spawning_popen(previous)
    return stream.getvalue()
