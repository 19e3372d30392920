// The conversions between netcell's values and Python's (binding.h).
#include "binding.h"

namespace netcell::python {

[[noreturn]] void raise(Error error) {
  throw ErrorException{std::move(error)};
}

py::object ipaddress(const char* function, const std::string& text) {
  return py::module_::import("ipaddress").attr(function)(text);
}

py::object py_address(const IpAddress& address) {
  return ipaddress("ip_address", address.to_string());
}

py::object py_interface(const IpPrefix& prefix) {
  return ipaddress("ip_interface", prefix.to_string());
}

py::object py_network(const IpPrefix& prefix) {
  return ipaddress("ip_network", prefix.to_string());
}

py::object py_optional_address(const std::optional<IpAddress>& address) {
  return address ? py_address(*address) : py::none();
}

// One of netcell._enums' str enums, by its value.
py::object py_enum(const char* type, std::string_view value) {
  return py::module_::import("netcell._enums").attr(type)(std::string(value));
}

// A str (a str enum included: its value), else TypeError.
std::string text_of(const py::handle& value, const char* what) {
  if (!py::isinstance<py::str>(value)) {
    throw py::type_error(std::string(what) + " must be a str, not " +
                         py::str(py::type::of(value).attr("__name__")).cast<std::string>());
  }
  return value.cast<std::string>();
}

// Accepts a str or anything whose str() is an address (ipaddress.IPv4Address, ...).
IpAddress to_address(const py::handle& value) {
  return unwrap(IpAddress::parse(py::str(value).cast<std::string>()));
}

std::optional<IpAddress> to_optional_address(const py::handle& value) {
  if (value.is_none()) return std::nullopt;
  return to_address(value);
}

// "10.0.0.0/24", or an ipaddress network or interface object.
IpPrefix to_prefix(const py::handle& value) {
  return unwrap(IpPrefix::parse(py::str(value).cast<std::string>()));
}

py::list py_addresses(const std::vector<IpAddress>& addresses) {
  py::list out;
  for (const auto& address : addresses) out.append(py_address(address));
  return out;
}

std::vector<IpAddress> to_addresses(const py::iterable& values) {
  std::vector<IpAddress> out;
  for (const auto& value : values) out.push_back(to_address(value));
  return out;
}

py::list py_interfaces(const std::vector<IpPrefix>& prefixes) {
  py::list out;
  for (const auto& prefix : prefixes) out.append(py_interface(prefix));
  return out;
}

py::object optional_str(const std::string& text) {
  if (text.empty()) return py::none();
  return py::str(text);
}

// A rate in bits per second: None, an int, or a str such as "10mbit" (parse_rate).
std::optional<std::uint64_t> to_rate(const py::handle& value) {
  if (value.is_none()) return std::nullopt;
  if (py::isinstance<py::str>(value)) return unwrap(parse_rate(value.cast<std::string>()));
  if (!py::isinstance<py::int_>(value) || py::isinstance<py::bool_>(value)) {
    throw py::type_error("a rate is an int (bits per second), a str such as \"10mbit\" or None");
  }
  if (value.cast<py::int_>() < py::int_(0)) {
    raise(Error(ErrorCode::kInvalidArgument, "invalid rate " + py::str(value).cast<std::string>()));
  }
  std::uint64_t bps = value.cast<std::uint64_t>();
  unwrap(validate_rate(bps));
  return bps;
}

// A file descriptor for a child's stdio: None (-1), an int, or an object with fileno().
int to_fd(const py::handle& value) {
  if (value.is_none()) return -1;
  if (py::isinstance<py::int_>(value)) return value.cast<int>();
  if (py::hasattr(value, "fileno")) return value.attr("fileno")().cast<int>();
  throw py::type_error("stdin, stdout and stderr take a file descriptor, a file or None");
}

py::object py_ports(const PortRange& ports) {
  if (ports.any()) return py::none();
  return py::make_tuple(ports.first, ports.last);
}

// Sets each keyword argument as an attribute of `self` (an unknown one is an AttributeError).
py::object with_fields(py::object self, const py::kwargs& fields) {
  for (const auto& [key, value] : fields) py::setattr(self, key, value);
  return self;
}

}  // namespace netcell::python
