// ErrorCode, and the translator that raises netcell.Error's subclasses for netcell's errors.
#include "binding.h"

namespace netcell::python {

namespace {

// netcell._make_error, set once by the package's __init__ (never released: the interpreter may
// still raise through it while the module is torn down).
PyObject* g_error_factory = nullptr;

}  // namespace

void bind_errors(py::module_& m) {
  py::enum_<ErrorCode>(m, "ErrorCode", "What kind of failure a netcell.Error is.")
      .value("INVALID_ARGUMENT", ErrorCode::kInvalidArgument,
             "The caller's input is malformed or out of range.")
      .value("NOT_FOUND", ErrorCode::kNotFound,
             "A named namespace, network or process does not exist.")
      .value("ALREADY_EXISTS", ErrorCode::kAlreadyExists, "A name or resource is taken.")
      .value("CONFLICT", ErrorCode::kConflict, "The request collides with existing state.")
      .value("PERMISSION_DENIED", ErrorCode::kPermissionDenied,
             "Missing privilege (CAP_NET_ADMIN, CAP_SYS_ADMIN).")
      .value("UNSUPPORTED", ErrorCode::kUnsupported,
             "Not available with this backend, kernel or build.")
      .value("EXHAUSTED", ErrorCode::kExhausted, "An address pool or similar is used up.")
      .value("SYSTEM", ErrorCode::kSystem, "A system call or kernel request failed.")
      .value("CORRUPT", ErrorCode::kCorrupt, "A state record could not be read back.");

  m.def(
      "_set_error_factory", [](py::object factory) { g_error_factory = factory.release().ptr(); },
      py::arg("factory"),
      "Internal: what makes the exception a failing call raises (netcell._make_error).");
  py::register_exception_translator([](std::exception_ptr pending) {
    if (!pending) return;
    auto raise_instance = [](py::object instance) {
      PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(instance.ptr())), instance.ptr());
    };
    try {
      std::rethrow_exception(pending);
    } catch (const ErrorException& e) {
      const Error& error = e.error;
      if (g_error_factory == nullptr) {
        PyErr_SetString(PyExc_RuntimeError, error.to_string().c_str());
        return;
      }
      py::list context;
      for (const auto& layer : error.context()) context.append(layer);
      raise_instance(py::reinterpret_borrow<py::object>(g_error_factory)(
          error.code(), error.message(), error.sys_errno(), context, error.to_string()));
    } catch (const TopologyException& e) {
      std::string text;
      for (const auto& error : e.errors) text += (text.empty() ? "" : "\n") + error.to_string();
      if (g_error_factory == nullptr) {
        PyErr_SetString(PyExc_RuntimeError, text.c_str());
        return;
      }
      py::list issues;
      for (const auto& error : e.errors) issues.append(error);
      std::string first =
          e.errors.empty() ? std::string("invalid topology") : e.errors.front().to_string();
      raise_instance(py::reinterpret_borrow<py::object>(g_error_factory)(
          ErrorCode::kInvalidArgument, first, 0, py::list(), text, issues));
    }
  });
}

}  // namespace netcell::python
