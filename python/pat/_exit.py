"""What the pat package does when the interpreter exits, in order. Every
exit hook of the package is registered here, nowhere else.

1. Before CPython joins the non-daemon threads (threading._register_atexit,
   as concurrent.futures' own executors do since 3.9, so the order does not
   depend on what was imported first):
   a. executors refuse new tasks ("cannot schedule new futures after
      interpreter shutdown", RuntimeError);
   b. every executor whose pool still runs — not shut down, or shut down
      without waiting — finishes its tasks: its workers exit, its threads
      end. Results still arrive in futures, and their callbacks run.
2. CPython joins the non-daemon threads.
3. atexit handlers run, the latest registered first. The program's own
   handlers may still send on channels.
4. The data plane's handler, registered when pat._dataplane is first
   imported (usually before the program's, so it runs after them): objects
   whose pages other members still read are leaked on purpose, never freed
   (pat._dataplane.ExportTable.leak_at_exit).
5. Finalization: channels still referenced are detached by their
   destructors (a channel member that exits counts as detached).
"""

import atexit
import threading
import weakref

_exiting = False
# Executors whose pools run: added when a pool starts, removed when it has
# stopped. Weak: an executor nobody references is not kept alive for this.
_running_executors = weakref.WeakSet()
_lock = threading.Lock()


def interpreter_exiting():
    return _exiting


def executor_started(executor):
    with _lock:
        _running_executors.add(executor)


def executor_stopped(executor):
    with _lock:
        _running_executors.discard(executor)


def _before_threads_join():
    global _exiting
    with _lock:
        _exiting = True                              # 1a
        executors = list(_running_executors)
    for executor in executors:                       # 1b
        executor._finish_at_exit()


def leak_at_exit(exports):
    """Step 4, for pat._dataplane's export table."""
    atexit.register(exports.leak_at_exit)


try:
    threading._register_atexit(_before_threads_join)
except RuntimeError:
    # Imported while the interpreter is already exiting: step 1 has run.
    _exiting = True
