// Python.h first: it sets feature-test macros the C library headers depend on.
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "python/launcher/package_finder.h"

#include <memory>

namespace pat::python {

namespace {

// Runs once, after site and before the user's code, so .pth files and
// sitecustomize cannot import pat yet (known hole). `install` is called with
// the package root.
constexpr const char* kFinderSource = R"py(
import sys
# importlib.machinery.PathFinder under its bootstrap name: always loaded, while
# importing importlib.machinery would add modules python3.11 may not have yet.
from _frozen_importlib_external import PathFinder

class PatPackageFinder:
    """Finds the top-level modules `pat` and `_pat*` in pat-python's own
    lib/pat/python. Submodules of pat resolve through pat.__path__ as usual."""

    def __init__(self, root):
        self.root = root

    def find_spec(self, name, path=None, target=None):
        # A non-None path means a submodule: not ours to answer.
        if path is not None or not (name == "pat" or name.startswith("_pat")):
            return None
        return PathFinder.find_spec(name, [self.root], target)

    def __repr__(self):
        return f"PatPackageFinder({self.root!r})"

def install(root):
    # Ahead of PathFinder: the package belongs to this pat-python build, and a
    # stray `pat` on sys.path (a script dir, site-packages) must not shadow it.
    meta_path = sys.meta_path
    position = meta_path.index(PathFinder) if PathFinder in meta_path else len(meta_path)
    meta_path.insert(position, PatPackageFinder(root))
)py";

struct PyObjectRelease {
  void operator()(PyObject* object) const { Py_XDECREF(object); }
};
using PyObjectRef = std::unique_ptr<PyObject, PyObjectRelease>;

}  // namespace

bool install_pat_package_finder(const std::filesystem::path& package_root) {
  // The classes get __module__ "_pat_bootstrap"; no module of that name is
  // registered, so sys.modules stays as python3.11 has it.
  PyObjectRef globals(Py_BuildValue("{s:O,s:s}", "__builtins__", PyEval_GetBuiltins(), "__name__", "_pat_bootstrap"));
  // The path as the file system encoding decodes it, undecodable bytes
  // surrogate-escaped, exactly as os.fsdecode would.
  PyObjectRef root(PyUnicode_DecodeFSDefault(package_root.c_str()));
  if (globals && root) {
    PyObjectRef defined(PyRun_String(kFinderSource, Py_file_input, globals.get(), globals.get()));
    PyObject* install = defined ? PyDict_GetItemString(globals.get(), "install") : nullptr;  // borrowed
    if (install != nullptr) {
      PyObjectRef installed(PyObject_CallOneArg(install, root.get()));
      if (installed) return true;
    }
  }
  PyErr_Print();
  return false;
}

}  // namespace pat::python
