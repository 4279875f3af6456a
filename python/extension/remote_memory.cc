#include "python/extension/remote_memory.h"

#include "python/extension/contiguous_bytes.h"
#include "python/extension/without_gil.h"

#include <sys/uio.h>

#include <cerrno>
#include <cstdint>
#include <utility>

namespace py = pybind11;

namespace pat::python {

namespace {

enum class Direction { FromRemote, ToRemote };

// Moves `size` bytes between `local` and `remote` in `pid`, looping over
// partial transfers (the kernel stops at a page it cannot access, or after a
// signal). Returns 0 or an errno value; called without the GIL.
int transfer(pid_t pid, std::byte* local, std::uintptr_t remote, std::size_t size, Direction direction) {
  std::size_t done = 0;
  while (done < size) {
    iovec local_iov{local + done, size - done};
    iovec remote_iov{reinterpret_cast<void*>(remote + done), size - done};
    ssize_t moved = direction == Direction::FromRemote ? ::process_vm_readv(pid, &local_iov, 1, &remote_iov, 1, 0)
                                                       : ::process_vm_writev(pid, &local_iov, 1, &remote_iov, 1, 0);
    if (moved < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (moved == 0) return EFAULT;  // nothing moved: the next page is not accessible
    done += static_cast<std::size_t>(moved);
  }
  return 0;
}

void transfer_or_raise(pid_t pid, py::handle local_object, std::uintptr_t remote, Direction direction) {
  ContiguousBytes local(local_object, direction == Direction::FromRemote ? ContiguousBytes::Access::Writable
                                                                          : ContiguousBytes::Access::ReadOnly);
  int error = without_gil([&] { return transfer(pid, local.data(), remote, local.size(), direction); });
  if (error != 0) {
    errno = error;
    PyErr_SetFromErrno(PyExc_OSError);
    throw py::error_already_set();
  }
}

py::tuple address_of(py::handle object) {
  ContiguousBytes bytes(object, ContiguousBytes::Access::ReadOnly);
  return py::make_tuple(reinterpret_cast<std::uintptr_t>(bytes.data()), bytes.size());
}

}  // namespace

void define_remote_memory(py::module_& module) {
  module.def("address_of", &address_of, py::arg("object"),
             "(address, nbytes) of a contiguous buffer's bytes. Valid while the object lives and is not resized.");
  module.def(
      "read_remote",
      [](pid_t pid, std::uintptr_t address, py::handle into) { transfer_or_raise(pid, into, address, Direction::FromRemote); },
      py::arg("pid"), py::arg("address"), py::arg("into"),
      "Fills the writable buffer `into` from `address` in process `pid` (process_vm_readv), without the GIL.");
  module.def(
      "write_remote",
      [](pid_t pid, std::uintptr_t address, py::handle source) { transfer_or_raise(pid, source, address, Direction::ToRemote); },
      py::arg("pid"), py::arg("address"), py::arg("source"),
      "Copies the buffer `source` to `address` in process `pid` (process_vm_writev), without the GIL.");
}

}  // namespace pat::python
