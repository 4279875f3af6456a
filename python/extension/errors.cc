#include "python/extension/errors.h"


namespace py = pybind11;

namespace pat::python {

namespace {

// Owned by the module for the life of the process (module objects of
// extension modules are never unloaded).
struct ExceptionClasses {
  PyObject* error = nullptr;
  PyObject* not_in_group = nullptr;
  PyObject* channel_closed = nullptr;
  PyObject* peer_died = nullptr;
  PyObject* too_large = nullptr;
  PyObject* out_of_memory = nullptr;
  PyObject* limit_reached = nullptr;
  PyObject* arena_damaged = nullptr;
  PyObject* invalid_argument = nullptr;
};

ExceptionClasses classes;

// A new exception class named pat.<name>, deriving from `bases` (a class or a
// tuple of classes), added to `module` under <name>.
PyObject* new_class(py::module_& module, const char* name, PyObject* bases, const char* doc) {
  std::string qualified = std::string("pat.") + name;
  PyObject* type = PyErr_NewExceptionWithDoc(qualified.c_str(), doc, bases, nullptr);
  if (type == nullptr) throw py::error_already_set();
  module.add_object(name, py::reinterpret_borrow<py::object>(type));
  return type;  // the reference PyErr_NewExceptionWithDoc gave stays ours
}

// A tuple of base classes. PyErr_NewExceptionWithDoc does not steal it; the
// few made at import are left to live as long as the classes built on them.
PyObject* bases(std::initializer_list<PyObject*> types) {
  py::tuple tuple(types.size());
  std::size_t i = 0;
  for (PyObject* type : types) tuple[i++] = py::reinterpret_borrow<py::object>(type);
  return tuple.release().ptr();
}

PyObject* class_for(pat::Errc code) {
  switch (code) {
    case Errc::NotInGroup: return classes.not_in_group;
    case Errc::InvalidArgument: return classes.invalid_argument;
    case Errc::OutOfMemory: return classes.out_of_memory;
    case Errc::TooLarge: return classes.too_large;
    case Errc::Timeout: return PyExc_TimeoutError;
    case Errc::Closed: return classes.channel_closed;
    case Errc::PeerDied: return classes.peer_died;
    case Errc::Interrupted: return PyExc_InterruptedError;  // only if a wait did not handle it itself
    case Errc::LimitReached: return classes.limit_reached;
    case Errc::ArenaDamaged: return classes.arena_damaged;
    case Errc::SystemError: return classes.error;
  }
  return classes.error;
}

}  // namespace

void set_python_error(const pat::Error& error) { PyErr_SetString(class_for(error.code()), error.what()); }

void define_exceptions(py::module_& module) {
  classes.error = new_class(module, "Error", PyExc_Exception,
                            "Base class of pat's errors (a failed system call inside libpat is reported as this).");
  classes.not_in_group = new_class(module, "NotInGroup", classes.error,
                                   "This process is not a member of a pat group (start it with `patctl run`), "
                                   "or it is a fork child of one.");
  classes.channel_closed = new_class(module, "ChannelClosed", classes.error,
                                     "The channel was closed: send() fails at once, recv() after the queue is "
                                     "drained.");
  classes.peer_died = new_class(module, "PeerDied", classes.error,
                                "Every member on the other side of a channel ended without closing it.");
  classes.too_large = new_class(module, "TooLarge", bases({classes.error, PyExc_ValueError}),
                                "A message exceeds the channel's limits.");
  classes.out_of_memory = new_class(module, "OutOfMemory", bases({classes.error, PyExc_MemoryError}),
                                    "The group's arena has no free block that large.");
  classes.limit_reached = new_class(module, "LimitReached", classes.error,
                                    "Too many members, channels or channel attachments in the group.");
  classes.arena_damaged = new_class(module, "ArenaDamaged", classes.error,
                                    "A member died inside the group's allocator and the heap failed its check.");
  classes.invalid_argument = new_class(module, "InvalidArgument", bases({classes.error, PyExc_ValueError}),
                                       "libpat refused an argument.");

  py::register_exception_translator([](std::exception_ptr thrown) {
    try {
      if (thrown) std::rethrow_exception(thrown);
    } catch (const pat::Error& error) {
      set_python_error(error);
    }
  });
}

}  // namespace pat::python
