#include "python/extension/buffer_binding.h"

#include "python/extension/contiguous_bytes.h"
#include "python/extension/without_gil.h"

#include "pat/pat.hpp"

#include <cstdint>
#include <sstream>

namespace py = pybind11;

namespace pat::python {

namespace {

// Copying, pinning and zero-filling large buffers take time: never with the
// GIL held. The source stays exported (ContiguousBytes) meanwhile.
pat::Buffer share(py::handle source) {
  ContiguousBytes bytes(source, ContiguousBytes::Access::ReadOnly);
  return without_gil([&] { return pat::Buffer::share(bytes.data(), bytes.size()); });
}

pat::Buffer copy_of(py::handle source) {
  ContiguousBytes bytes(source, ContiguousBytes::Access::ReadOnly);
  return without_gil([&] { return pat::Buffer::copy_of(bytes.data(), bytes.size()); });
}

pat::Buffer allocate(std::size_t size, bool zero) {
  return without_gil(
      [&] { return pat::Buffer::allocate(size, zero ? pat::Buffer::Fill::Zero : pat::Buffer::Fill::Uninitialized); });
}

std::uintptr_t address_of(const pat::Buffer& buffer) { return reinterpret_cast<std::uintptr_t>(buffer.data()); }

std::string describe(const pat::Buffer& buffer) {
  std::ostringstream out;
  if (!buffer) return "<pat.Buffer empty>";
  out << "<pat.Buffer " << buffer.size() << " bytes at 0x" << std::hex << address_of(buffer) << std::dec
      << (buffer.zero_copy() ? ", a member's own pages" : ", in the arena") << ", handle " << buffer.handle()
      << ">";
  return out.str();
}

}  // namespace

void define_buffer(py::module_& module) {
  py::class_<pat::Buffer> buffer(module, "Buffer", py::buffer_protocol(), R"doc(
One reference to a buffer in the pat group's shared memory, at the same address
in every member. Supports the buffer protocol, writable: ``memoryview(b)``,
``numpy.frombuffer(b, dtype)``, ``b[...]`` through a memoryview. The group-wide
reference is held while this object, or any view made from it, is alive.

Made by :func:`pat.buffer` or received from a channel; the static methods
``allocate``, ``share`` and ``copy_of`` are the low-level constructors.
)doc");
  buffer
      .def_buffer([](pat::Buffer& self) {
        // A zero-length buffer may have no address; a memoryview still wants one.
        static std::byte empty;
        void* data = self && self.size() != 0 ? static_cast<void*>(self.data()) : static_cast<void*>(&empty);
        return py::buffer_info(data, 1, py::format_descriptor<unsigned char>::format(), 1,
                               {static_cast<py::ssize_t>(self.size())}, {1}, /*readonly=*/false);
      })
      .def_static("allocate", &allocate, py::arg("size"), py::arg("zero") = true,
                  "A new buffer of `size` bytes in the group's arena, zero-filled unless zero=False.")
      .def_static("share", &share, py::arg("source"),
                  "The bytes of `source` (any contiguous buffer) as a group buffer: without a copy when they are "
                  "at least ZERO_COPY_MINIMUM bytes of this member's own mapped memory (its pages are then pinned "
                  "for the group), otherwise copied. Without a copy, the caller must keep `source` alive and "
                  "unchanged in size while others hold the buffer (see references()).")
      .def_static("copy_of", &copy_of, py::arg("source"), "A copy of `source`'s bytes in a new arena buffer.")
      .def_property_readonly("size", &pat::Buffer::size, "Length in bytes.")
      .def("__len__", &pat::Buffer::size)
      .def_property_readonly("address", &address_of, "The buffer's address, the same in every member.")
      .def_property_readonly("handle", &pat::Buffer::handle, "The buffer's id in the group.")
      .def_property_readonly("zero_copy", &pat::Buffer::zero_copy,
                             "True when the bytes are a member's own pinned pages rather than an arena block.")
      .def("references", &pat::Buffer::references,
           "How many holders the buffer has across the group now (a member counts once; so does each "
           "message still queued in a channel).")
      .def("__repr__", &describe);
  buffer.attr("__module__") = "pat";
  module.attr("ZERO_COPY_MINIMUM") = pat::Buffer::kZeroCopyMinimum;
}

}  // namespace pat::python
