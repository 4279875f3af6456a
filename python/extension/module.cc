// _pat: the thin native layer of the `pat` Python package, over libpat
// (pat/pat.hpp): group buffers with the buffer protocol, raw channels,
// the group's identity, and the cross-process copies pat.Executor uses when
// its caller is not a member. The public API is the pure-Python package
// (python/pat/); docs/python.md describes both.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "python/extension/buffer_binding.h"
#include "python/extension/channel_binding.h"
#include "python/extension/errors.h"
#include "python/extension/out_of_band_hook.h"
#include "python/extension/remote_memory.h"

#include "pat/pat.hpp"

namespace py = pybind11;

PYBIND11_MODULE(_pat, module) {
  module.doc() = "Native layer of the pat package (libpat bindings). Import `pat` instead.";
  pat::python::define_exceptions(module);
  pat::python::define_buffer(module);
  pat::python::define_channel(module);
  pat::python::define_remote_memory(module);
  pat::python::define_out_of_band_hook(module);

  module.def("in_group", &pat::in_group, "Whether this process is a member of a pat group with a data plane.");
  module.def("look_for_group", &pat::look_for_group,
             "in_group() after looking again, for a process moved into a group while it runs (pat.join()).");
  module.def("group_name", &pat::group_name, "The group's name; raises pat.NotInGroup outside one.");
  module.def(
      "members",
      [] {
        py::list out;
        for (const auto& member : pat::members()) {
          out.append(py::make_tuple(member.pid, member.argv, member.argv_truncated));
        }
        return out;
      },
      "The members running now: [(pid, argv, argv_truncated)], in no particular order.");
}
