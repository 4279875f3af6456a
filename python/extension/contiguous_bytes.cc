#include "python/extension/contiguous_bytes.h"

namespace pat::python {

ContiguousBytes::ContiguousBytes(pybind11::handle object, Access access) {
  int flags = PyBUF_ANY_CONTIGUOUS | (access == Access::Writable ? PyBUF_WRITABLE : 0);
  if (PyObject_GetBuffer(object.ptr(), &view_, flags) != 0) throw pybind11::error_already_set();
}

ContiguousBytes::~ContiguousBytes() {
  // Always called with the GIL held: every owner lives in a bound function's
  // frame, outside its gil_scoped_release.
  PyBuffer_Release(&view_);
}

}  // namespace pat::python
