// The persistent_id hook pat's pickling uses (python/pat/_wire.py) to send
// large bytes and bytearray objects, and memoryviews, as separate buffers:
// pickle protocol 5 hands only PickleBuffer objects (numpy arrays, ...) to
// buffer_callback, and never calls reducer_override for bytes. persistent_id
// is called for every object pickled, so it is written in C: for anything
// else it returns None at the cost of one C call.
#pragma once

#include <pybind11/pybind11.h>

namespace pat::python {

// out_of_band_hook(threshold, on_match, also=None) -> callable(obj):
// on_match(obj) for an exact bytes or bytearray of at least `threshold`
// bytes, for any memoryview and for instances of the type `also` (pat.Buffer),
// else None.
void define_out_of_band_hook(pybind11::module_& module);

}  // namespace pat::python
