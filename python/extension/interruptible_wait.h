// How every blocking libpat call runs under Python: with the GIL released,
// ended by a signal (Wait::ReturnOnSignal) so that Python's handlers run —
// Ctrl-C raises KeyboardInterrupt in the waiting thread — and then resumed
// with whatever time is left.
#pragma once

#include <pybind11/pybind11.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>

#include "pat/pat.hpp"
#include "python/extension/without_gil.h"

namespace pat::python {

// A timeout in seconds from Python (None: wait forever; negative: do not wait).
using TimeoutSeconds = std::optional<double>;

// Calls attempt(std::optional<std::chrono::nanoseconds> time_left) with the
// GIL released, which must pass pat::Wait::ReturnOnSignal to libpat. When
// libpat reports Errc::Interrupted, the signal's Python handler runs here (in
// the main thread; other threads' PyErr_CheckSignals does nothing) and its
// exception, if any, propagates; otherwise the wait resumes.
template <class Attempt>
auto wait_interruptibly(TimeoutSeconds timeout, Attempt attempt) {
  using Clock = std::chrono::steady_clock;
  std::optional<Clock::time_point> deadline;
  if (timeout) {
    if (std::isnan(*timeout)) throw pybind11::value_error("timeout must be a number or None, not NaN");
    double seconds = std::clamp(*timeout, 0.0, 1e9);  // about 31 years: "forever" without overflow
    deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  }
  for (;;) {
    std::optional<std::chrono::nanoseconds> time_left;
    if (deadline) time_left = std::max(std::chrono::nanoseconds(0), *deadline - Clock::now());
    try {
      return without_gil([&] { return attempt(time_left); });
    } catch (const pat::Error& error) {
      // The GIL is back here: without_gil took it before rethrowing.
      if (error.code() != pat::Errc::Interrupted) throw;
    }
    if (PyErr_CheckSignals() != 0) throw pybind11::error_already_set();
  }
}

}  // namespace pat::python
