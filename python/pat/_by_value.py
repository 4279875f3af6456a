"""Objects pickled by value with cloudpickle, their buffers still out of
band: how pat.joblib and pat.dask send what plain pickle cannot (lambdas,
functions of an interactive ``__main__`` or of a script's main block,
closures), as loky and Dask's processes scheduler do, without giving up
pat's zero-copy path for the arrays inside.

cloudpickle writes protocol 5 and hands each large buffer (a numpy
array's data) to a buffer callback instead of copying it into its stream.
A :class:`ByValue` keeps those ``pickle.PickleBuffer`` objects beside the
stream; when pat pickles the ByValue for a worker, pat's own pickler sends
each PickleBuffer out of band (pat._wire: by reference between members),
and the worker rebuilds the object on the views it receives.
"""

import pickle


def _cloudpickle():
    try:
        import cloudpickle
    except ImportError:  # joblib ships its own copy
        from joblib.externals import cloudpickle
    return cloudpickle


class ByValue:
    """``obj`` pickled with cloudpickle; ``load()`` gives it back (here or,
    once pickled and sent, in a worker)."""

    __slots__ = ("data", "buffers")

    def __init__(self, obj):
        self.buffers = []
        self.data = _cloudpickle().dumps(obj, protocol=5, buffer_callback=self.buffers.append)

    def load(self):
        return pickle.loads(self.data, buffers=self.buffers)

    def __reduce__(self):
        return _rebuild, (self.data, self.buffers)


def _rebuild(data, buffers):
    # cloudpickle's stream is plain pickle naming cloudpickle's own
    # reconstructors; pickle.loads imports them as it needs them.
    return pickle.loads(data, buffers=buffers)


def needs_value(function):
    """Whether plain pickle cannot send ``function`` by reference to a
    worker: a lambda or nested function, or one from ``__main__`` (a
    worker re-imports a main script as ``__mp_main__``, but not what its
    ``if __name__ == "__main__":`` block defined, and not an interactive
    session's functions). Callables that are not functions (a
    functools.partial, a class) pickle as their type says."""
    import sys
    import types
    if not isinstance(function, types.FunctionType):
        return False
    module_name = getattr(function, "__module__", None)
    if module_name in (None, "__main__", "__mp_main__"):
        return True
    module = sys.modules.get(module_name)
    found = module
    for part in function.__qualname__.split("."):
        found = getattr(found, part, None)
    return found is not function
