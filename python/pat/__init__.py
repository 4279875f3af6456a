"""pat: the Python side of pat ("processes as threads").

Nothing is implemented yet. This package will let Python programs running as
members of a pat group use the group's zero-copy data plane: shared buffers
with a reference count that outlive the member that made them, named channels
that pass references to them, and ``pat.Executor``, a
``concurrent.futures.Executor`` whose workers are other members of the group
and whose arguments and results travel as pickle protocol 5 out-of-band
buffers, i.e. as views of shared memory instead of copies (see DESIGN.md,
"Zero-copy data plane").

It is imported under ``pat-python``, which finds it in ``<prefix>/lib/pat/python``
without adding that directory to ``sys.path``.
"""

__version__ = "0.1.0"
