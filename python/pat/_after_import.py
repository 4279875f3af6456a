"""Running code once a module has been imported, without importing it.

``import pat`` registers pat's joblib backend (pat.joblib) so that
``joblib.parallel_backend("pat")`` works with nothing else to call. Importing
joblib for that would cost every user of pat its import time (loky,
multiprocessing, and more), so the registration waits: if joblib is already
imported it happens at once, otherwise a finder at the head of
``sys.meta_path`` watches for joblib's import and runs the registration
right after joblib's module has executed. The finder answers no other
name, and removes itself once it has fired.
"""

import sys
import warnings


def when_imported(name, action):
    """Calls ``action(module)`` once the top-level module ``name`` is
    imported: now if it already is, else right after its import. A failing
    action is reported as a warning; the import itself never fails because
    of it."""
    module = sys.modules.get(name)
    if module is not None:
        _run(action, module)
        return
    sys.meta_path.insert(0, _ImportWatcher(name, action))


def _run(action, module):
    try:
        action(module)
    except Exception as error:  # noqa: BLE001 - the user's import must go on
        warnings.warn(f"pat could not hook into {module.__name__}: {error!r}", RuntimeWarning, stacklevel=3)


class _ImportWatcher:
    """A meta path finder for one name: finds the module's spec through the
    finders behind it and wraps its loader, so that ``action`` runs after
    the module has executed."""

    def __init__(self, name, action):
        self._name = name
        self._action = action

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self._name or path is not None:
            return None
        self._withdraw()
        for finder in list(sys.meta_path):
            find_spec = getattr(finder, "find_spec", None)
            if find_spec is None:
                continue
            spec = find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _NotifyingLoader(spec.loader, self._action)
        return spec

    def _withdraw(self):
        try:
            sys.meta_path.remove(self)
        except ValueError:
            pass  # withdrawn already (two threads importing at once)


class _NotifyingLoader:
    """Another loader, which also runs ``action`` after exec_module. Every
    other attribute is the wrapped loader's."""

    def __init__(self, loader, action):
        self._loader = loader
        self._action = action

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        _run(self._action, module)

    def __getattr__(self, name):
        return getattr(self._loader, name)
