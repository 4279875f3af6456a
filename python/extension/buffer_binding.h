// pat.Buffer: one reference to a buffer in the group's shared memory
// (pat::Buffer), with the buffer protocol, so memoryview(b) and
// numpy.frombuffer(b) read and write the shared bytes in place. Every
// memoryview (and so every numpy array made from one) holds the Buffer
// object, so the group reference lives as long as any view of it.
#pragma once

#include <pybind11/pybind11.h>

namespace pat::python {

void define_buffer(pybind11::module_& module);

}  // namespace pat::python
