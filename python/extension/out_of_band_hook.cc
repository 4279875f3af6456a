#include "python/extension/out_of_band_hook.h"

namespace py = pybind11;

namespace pat::python {

namespace {

// `state` is the tuple (threshold, on_match, also) the hook was made with.
PyObject* persistent_id(PyObject* state, PyObject* object) {
  Py_ssize_t threshold = PyLong_AsSsize_t(PyTuple_GET_ITEM(state, 0));
  if (threshold == -1 && PyErr_Occurred()) return nullptr;
  PyObject* also = PyTuple_GET_ITEM(state, 2);
  bool matches = PyMemoryView_Check(object) ||
                 (also != Py_None && PyObject_TypeCheck(object, reinterpret_cast<PyTypeObject*>(also))) ||
                 (PyBytes_CheckExact(object) && PyBytes_GET_SIZE(object) >= threshold) ||
                 (PyByteArray_CheckExact(object) && PyByteArray_GET_SIZE(object) >= threshold);
  if (!matches) Py_RETURN_NONE;
  return PyObject_CallOneArg(PyTuple_GET_ITEM(state, 1), object);
}

PyMethodDef persistent_id_definition = {"persistent_id", persistent_id, METH_O,
                                        "pat's out-of-band hook for pickle.Pickler.persistent_id"};

}  // namespace

void define_out_of_band_hook(py::module_& module) {
  module.def(
      "out_of_band_hook",
      [](py::ssize_t threshold, py::object on_match, py::object also) {
        if (!also.is_none() && !PyType_Check(also.ptr())) throw py::type_error("also must be a type or None");
        py::tuple state = py::make_tuple(threshold, std::move(on_match), std::move(also));
        PyObject* hook = PyCFunction_New(&persistent_id_definition, state.ptr());
        if (hook == nullptr) throw py::error_already_set();
        return py::reinterpret_steal<py::object>(hook);
      },
      py::arg("threshold"), py::arg("on_match"), py::arg("also") = py::none(),
      "A persistent_id function: on_match(obj) for bytes/bytearray of at least `threshold` bytes, for "
      "memoryviews and for instances of the type `also`; None for everything else.");
}

}  // namespace pat::python
