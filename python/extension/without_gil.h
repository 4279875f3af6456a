// without_gil(fn): runs fn() with the GIL released, and takes the GIL back
// outside any destructor.
//
// Why not pybind11::gil_scoped_release: it takes the GIL back in its
// destructor. While the interpreter finalizes, CPython 3.11 ends any other
// thread that asks for the GIL with pthread_exit (take_gil ->
// PyThread_exit_thread), which unwinds that thread's stack. Unwinding out of
// a destructor is std::terminate: a daemon thread still blocked in
// pat.Channel.recv() when the main thread returned aborted the whole process
// ("terminate called without an active exception", exit 134). Taken back
// here, the unwinding passes through ordinary frames and pybind11's
// dispatcher (which rethrows abi::__forced_unwind), and the thread ends as a
// pure-Python thread would.
#pragma once

#include <Python.h>

#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

namespace pat::python {

template <class Fn>
auto without_gil(Fn&& fn) -> std::invoke_result_t<Fn&> {
  using Result = std::invoke_result_t<Fn&>;
  std::exception_ptr failure;
  PyThreadState* state = PyEval_SaveThread();
  if constexpr (std::is_void_v<Result>) {
    try {
      fn();
    } catch (...) {  // fn is C++ without Python: no forced unwinding comes from it
      failure = std::current_exception();
    }
    PyEval_RestoreThread(state);  // may end this thread (see above)
    if (failure) std::rethrow_exception(failure);
  } else {
    std::optional<Result> result;
    try {
      result.emplace(fn());
    } catch (...) {
      failure = std::current_exception();
    }
    PyEval_RestoreThread(state);
    if (failure) std::rethrow_exception(failure);
    return std::move(*result);
  }
}

}  // namespace pat::python
