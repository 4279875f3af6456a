// _pat's exceptions: the Python classes pat.Error and its subclasses, and the
// one translation from pat::Error (libpat) to them. Everything that reaches
// Python from libpat goes through translate_pat_errors().
#pragma once

#include <pybind11/pybind11.h>

#include "pat/pat.hpp"

namespace pat::python {

// Creates pat.Error, pat.NotInGroup, pat.ChannelClosed, pat.PeerDied,
// pat.TooLarge, pat.OutOfMemory, pat.LimitReached, pat.ArenaDamaged and
// pat.InvalidArgument as attributes of `module`, and registers the translator.
void define_exceptions(pybind11::module_& module);

// Sets the Python exception for `error` (the translator uses it; so do the
// few places that catch pat::Error themselves).
void set_python_error(const pat::Error& error);

}  // namespace pat::python
