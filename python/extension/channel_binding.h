// _pat.Channel: one attachment of this member to a named channel
// (pat::Channel), sending and receiving raw messages: (bytes, [pat.Buffer]).
// The pickling layer is pat.Channel, in Python (python/pat/channel.py).
#pragma once

#include <pybind11/pybind11.h>

namespace pat::python {

void define_channel(pybind11::module_& module);

}  // namespace pat::python
