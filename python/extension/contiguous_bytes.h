// ContiguousBytes: the bytes behind any Python object with the buffer
// protocol (bytes, bytearray, memoryview, numpy arrays, pickle.PickleBuffer),
// held through PyObject_GetBuffer for as long as this object lives. While the
// export is held the object cannot be resized (bytearray refuses), so the
// address stays valid even with the GIL released.
#pragma once

#include <pybind11/pybind11.h>

#include <cstddef>

namespace pat::python {

class ContiguousBytes {
 public:
  enum class Access { ReadOnly, Writable };

  // Raises BufferError (through pybind11::error_already_set) when `object`
  // has no buffer, is not contiguous in C or Fortran order, or is read-only
  // and Writable was asked for.
  ContiguousBytes(pybind11::handle object, Access access);
  ~ContiguousBytes();
  ContiguousBytes(const ContiguousBytes&) = delete;
  ContiguousBytes& operator=(const ContiguousBytes&) = delete;

  std::byte* data() const { return static_cast<std::byte*>(view_.buf); }
  std::size_t size() const { return static_cast<std::size_t>(view_.len); }
  bool readonly() const { return view_.readonly != 0; }

 private:
  Py_buffer view_{};
};

}  // namespace pat::python
