// Copies between this process and another one's memory with
// process_vm_readv(2)/process_vm_writev(2): the one copy pat.Executor makes
// when its caller is not a member of the workers' group (the two are then
// separate address spaces). The caller needs ptrace access to the other
// process (same uid and a dumpable target, or CAP_SYS_PTRACE; see
// ptrace(2) "Ptrace access mode checking").
#pragma once

#include <pybind11/pybind11.h>

namespace pat::python {

// address_of(obj) -> (address, nbytes); read_remote(pid, address, into);
// write_remote(pid, address, source).
void define_remote_memory(pybind11::module_& module);

}  // namespace pat::python
