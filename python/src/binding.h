// netcell's Python binding, the extension module netcell._netcell: what its files share. Each
// file binds one part of the public API (include/netcell/): errors.cc the error codes and the
// translator that raises netcell.Error's subclasses (python/netcell/__init__.py), values.cc the
// configs and results, policy.cc egress policies, child.cc processes, topology.cc topologies,
// manager.cc NamespaceManager; module.cc puts them together. Addresses cross as ipaddress objects
// (an address with its prefix as ipaddress.ip_interface, a rule's destination as
// ipaddress.ip_network); a str is accepted wherever an address is set. Modes, protocols and
// actions come back as the str enums of netcell._enums and are accepted as those or as their str
// values. The binding uses only the public API.
#pragma once

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <sys/types.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "netcell/netcell.h"

namespace netcell::python {

namespace py = pybind11;

// A netcell::Error on its way to Python; the translator (errors.cc) turns it into a netcell.Error.
struct ErrorException {
  Error error;
};
// A topology file's problems on their way to Python (a netcell.TopologyError).
struct TopologyException {
  std::vector<TopologyError> errors;
};

[[noreturn]] void raise(Error error);

template <typename T>
T unwrap(Result<T>&& result) {
  if (!result) raise(std::move(result).error());
  return std::move(*result);
}

inline void unwrap(Result<void>&& result) {
  if (!result) raise(std::move(result).error());
}

// Values to Python.
py::object py_address(const IpAddress& address);
py::object py_optional_address(const std::optional<IpAddress>& address);
py::list py_addresses(const std::vector<IpAddress>& addresses);
py::object py_interface(const IpPrefix& prefix);  // ipaddress.ip_interface
py::list py_interfaces(const std::vector<IpPrefix>& prefixes);
py::object py_network(const IpPrefix& prefix);  // ipaddress.ip_network
// One of netcell._enums' str enums ("IsolationMode", ...), by its value.
py::object py_enum(const char* type, std::string_view value);
py::object optional_str(const std::string& text);  // None for ""
py::object py_ports(const PortRange& ports);       // (first, last), None for every port

// Values from Python. Each raises InvalidArgumentError (or TypeError) for what it cannot take.
// A str (a str enum included: its value), else TypeError naming `what`.
std::string text_of(const py::handle& value, const char* what);
// A str or anything whose str() is an address (ipaddress.IPv4Address, ...).
IpAddress to_address(const py::handle& value);
std::optional<IpAddress> to_optional_address(const py::handle& value);  // None: nullopt
std::vector<IpAddress> to_addresses(const py::iterable& values);
// "10.0.0.0/24", or an ipaddress network or interface object.
IpPrefix to_prefix(const py::handle& value);
// A rate in bits per second: None, an int, or a str such as "10mbit" (parse_rate).
std::optional<std::uint64_t> to_rate(const py::handle& value);
// A file descriptor for a child's stdio: None (-1), an int, or an object with fileno().
int to_fd(const py::handle& value);

// Sets each keyword argument as an attribute of `self` (an unknown one is an AttributeError).
py::object with_fields(py::object self, const py::kwargs& fields);

// The dataclass-like protocol of a value class: a repr naming each field, == comparing them
// (only with the same type), unhashable (the values are mutable or hold lists), __match_args__.
template <typename Class>
void dataclass_like(Class& cls, std::initializer_list<const char*> fields) {
  py::tuple names(fields.size());
  std::size_t k = 0;
  for (const char* field : fields) names[k++] = py::str(field);
  cls.attr("__match_args__") = names;
  cls.def(
      "__repr__",
      [names](const py::object& self) {
        std::string out = py::str(py::type::of(self).attr("__name__")).cast<std::string>() + "(";
        bool first = true;
        for (const auto& name : names) {
          if (!first) out += ", ";
          first = false;
          out += name.cast<std::string>() + "=" +
                 py::repr(self.attr(name.cast<py::str>())).cast<std::string>();
        }
        return out + ")";
      },
      "The type and every field, as a dataclass shows them.");
  cls.def(
      "__eq__",
      [names](const py::object& self, const py::object& other) -> py::object {
        if (!py::type::of(self).is(py::type::of(other))) {
          return py::reinterpret_borrow<py::object>(Py_NotImplemented);
        }
        for (const auto& name : names) {
          py::str field = name.cast<py::str>();
          if (!self.attr(field).equal(other.attr(field))) return py::bool_(false);
        }
        return py::bool_(true);
      },
      py::arg("other"), "Equal when of the same type with equal fields.");
  cls.attr("__hash__") = py::none();
}

// A process started inside a namespace. The Child it holds kills and reaps the process when it
// is destroyed unwaited, so a Python object that is collected leaves no process behind.
struct PyChild {
  std::optional<Child> child;
  pid_t pid = -1;
  std::optional<int> returncode;
  bool released = false;

  Child& live() {
    if (released) raise(Error(ErrorCode::kInvalidArgument, "the child was released"));
    return *child;
  }
  // Waits up to `timeout` seconds (None: for ever); nullopt when it is still running. The GIL is
  // released while waiting, taken back every 100 ms to let a KeyboardInterrupt through.
  std::optional<int> wait_for(std::optional<double> timeout);
};

// The parts of the module, in the order module.cc binds them.
void bind_errors(py::module_& m);
void bind_policy(py::module_& m);
void bind_configs(py::module_& m);
void bind_results(py::module_& m);
void bind_child(py::module_& m);
void bind_topology(py::module_& m);
void bind_manager(py::module_& m);

}  // namespace netcell::python
