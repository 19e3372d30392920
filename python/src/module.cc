// netcell's Python binding, the extension module netcell._netcell: NamespaceManager
// (include/netcell/manager.h) with its configs and results, processes run inside namespaces
// (child.h), egress policies (policy.h) and topologies (topology.h). The package netcell
// (python/netcell/__init__.py) re-exports it and defines netcell.Error and its subclasses, one per
// ErrorCode, which every failing call raises with the code, the message, the errno and the
// context of the netcell::Error it came from. Addresses cross as ipaddress objects (an address
// with its prefix as ipaddress.ip_interface, a rule's destination as ipaddress.ip_network); a str
// is accepted wherever an address is set. Modes, protocols and actions come back as the str enums
// of netcell._enums and are accepted as those or as their str values.
#include <poll.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <signal.h>
#include <sys/types.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "netcell/netcell.h"

namespace py = pybind11;
using namespace netcell;

namespace {

// A netcell::Error on its way to Python; the translator turns it into a netcell.Error.
struct ErrorException {
  Error error;
};
// A topology file's problems on their way to Python (a netcell.TopologyError).
struct TopologyException {
  std::vector<TopologyError> errors;
};

// netcell._make_error, set once by the package's __init__ (never released: the interpreter may
// still raise through it while the module is torn down).
PyObject* g_error_factory = nullptr;

[[noreturn]] void raise(Error error) {
  throw ErrorException{std::move(error)};
}

template <typename T>
T unwrap(Result<T>&& result) {
  if (!result) raise(std::move(result).error());
  return std::move(*result);
}

void unwrap(Result<void>&& result) {
  if (!result) raise(std::move(result).error());
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

// Sets each keyword argument as an attribute of `self` (an unknown one is an AttributeError).
py::object with_fields(py::object self, const py::kwargs& fields) {
  for (const auto& [key, value] : fields) py::setattr(self, key, value);
  return self;
}

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

void bind_configs(py::module_& m) {
  py::class_<InterfaceConfig> interface(
      m, "InterfaceConfig", "The namespace-side interface of a private or bridged namespace.");
  interface
      .def(py::init([](std::string name, py::object ip, std::uint8_t prefix_len, py::object gateway,
                       std::uint32_t mtu) {
             InterfaceConfig config;
             config.name = std::move(name);
             if (!ip.is_none()) config.ip = to_address(ip);
             config.prefix_len = prefix_len;
             config.gateway = to_optional_address(gateway);
             config.mtu = mtu;
             return config;
           }),
           py::arg("name") = "eth0", py::arg("ip") = py::none(), py::arg("prefix_len") = 24,
           py::arg("gateway") = py::none(), py::arg("mtu") = 1500,
           "An interface config; ip None (0.0.0.0) takes one from the network's pool.")
      .def_readwrite("name", &InterfaceConfig::name, "Interface name inside the namespace.")
      .def_property(
          "ip", [](const InterfaceConfig& c) { return py_address(c.ip); },
          [](InterfaceConfig& c, py::object v) { c.ip = to_address(v); },
          "Its address (0.0.0.0: one from the network's pool).")
      .def_readwrite("prefix_len", &InterfaceConfig::prefix_len, "The address's prefix length.")
      .def_property(
          "gateway", [](const InterfaceConfig& c) { return py_optional_address(c.gateway); },
          [](InterfaceConfig& c, py::object v) { c.gateway = to_optional_address(v); },
          "The default route's gateway, or None.")
      .def_readwrite("mtu", &InterfaceConfig::mtu, "68..65535.");
  dataclass_like(interface, {"name", "ip", "prefix_len", "gateway", "mtu"});

  py::class_<PortForward> forward(
      m, "PortForward",
      "A published port: connections to HOST_IP:host_port reach the namespace's container_port.");
  forward
      .def(py::init([](std::uint16_t host_port, std::uint16_t container_port,
                       const py::object& protocol, py::object host_ip) {
             PortForward f;
             f.host_port = host_port;
             f.container_port = container_port;
             f.protocol = unwrap(parse_protocol(text_of(protocol, "protocol")));
             f.host_ip = to_optional_address(host_ip);
             return f;
           }),
           py::arg("host_port"), py::arg("container_port"), py::arg("protocol") = "tcp",
           py::arg("host_ip") = py::none(), "A published port (protocol \"tcp\" or \"udp\").")
      .def_static(
          "parse", [](const std::string& text) { return unwrap(PortForward::parse(text)); },
          py::arg("text"), "Parses \"[HOSTIP:]HPORT:PORT[/udp|/tcp]\" (the CLI's --publish).")
      .def_readwrite("host_port", &PortForward::host_port, "The port on the host.")
      .def_readwrite("container_port", &PortForward::container_port,
                     "The port inside the namespace.")
      .def_property(
          "protocol",
          [](const PortForward& f) { return py_enum("Protocol", to_string(f.protocol)); },
          [](PortForward& f, const py::object& v) {
            f.protocol = unwrap(parse_protocol(text_of(v, "protocol")));
          },
          "Protocol.TCP or Protocol.UDP.")
      .def_property(
          "host_ip", [](const PortForward& f) { return py_optional_address(f.host_ip); },
          [](PortForward& f, py::object v) { f.host_ip = to_optional_address(v); },
          "The host address it listens on; None: all of them.")
      .def("__str__", &PortForward::to_string, "The --publish form, \"8080:80/tcp\".");
  dataclass_like(forward, {"host_port", "container_port", "protocol", "host_ip"});

  py::class_<NamespaceConfig> config(
      m, "NamespaceConfig",
      "What to create: build it with a named constructor (fields as keyword arguments), then "
      "adjust fields; the manager validates it as a whole in create().");
  config
      .def(py::init([](const py::object& mode, const py::kwargs& fields) {
             NamespaceConfig c;
             c.mode = unwrap(parse_isolation_mode(text_of(mode, "mode")));
             if (fields.empty()) return c;
             return with_fields(py::cast(c), fields).cast<NamespaceConfig>();
           }),
           py::arg("mode") = "full",
           "A config of the given mode; the keyword arguments set fields (name=..., pid=...).")
      .def_static(
          "full_isolation",
          [](pid_t pid, const py::kwargs& fields) {
            return with_fields(py::cast(NamespaceConfig::full_isolation(pid)), fields);
          },
          py::arg("pid") = 0, "A new network namespace with only lo: nothing is reachable.")
      .def_static(
          "private_network",
          [](pid_t pid, const py::kwargs& fields) {
            return with_fields(py::cast(NamespaceConfig::private_network(pid)), fields);
          },
          py::arg("pid") = 0, "A veth to the host, NAT, DNS and published ports.")
      .def_static(
          "shared",
          [](pid_t pid, const py::kwargs& fields) {
            return with_fields(py::cast(NamespaceConfig::shared(pid)), fields);
          },
          py::arg("pid") = 0, "The host's own network, recorded and tracked.")
      .def_static(
          "bridged",
          [](pid_t pid, std::string network, const py::kwargs& fields) {
            return with_fields(py::cast(NamespaceConfig::bridged(pid, std::move(network))), fields);
          },
          py::arg("pid"), py::arg("network"), "A port on a named network's bridge.")
      .def_readwrite("name", &NamespaceConfig::name,
                     "Empty: derived from the owner pid (\"pid-1234\"), else \"ns-<random>\".")
      .def_property(
          "mode",
          [](const NamespaceConfig& c) { return py_enum("IsolationMode", to_string(c.mode)); },
          [](NamespaceConfig& c, const py::object& v) {
            c.mode = unwrap(parse_isolation_mode(text_of(v, "mode")));
          },
          "An IsolationMode (or its str: \"full\", \"private\", \"shared\", \"bridged\").")
      .def_readwrite("pid", &NamespaceConfig::pid, "The owner process; 0: none.")
      .def_readwrite("network", &NamespaceConfig::network, "Bridged: the network's name.")
      .def_readwrite("interface", &NamespaceConfig::interface,
                     "An InterfaceConfig, or None for the defaults.")
      .def_readwrite("port_forwards", &NamespaceConfig::port_forwards,
                     "A list of PortForward (assign a new list: it is copied).")
      .def_property(
          "dns", [](const NamespaceConfig& c) { return py_addresses(c.dns); },
          [](NamespaceConfig& c, const py::iterable& v) { c.dns = to_addresses(v); },
          "DNS servers written to the namespace's resolv.conf (a copied list).")
      .def_property(
          "egress_bps", [](const NamespaceConfig& c) { return c.rate.egress_bps; },
          [](NamespaceConfig& c, const py::object& v) { c.rate.egress_bps = to_rate(v); },
          "Upload limit in bits per second (an int, or a str such as \"10mbit\"), or None.")
      .def_property(
          "ingress_bps", [](const NamespaceConfig& c) { return c.rate.ingress_bps; },
          [](NamespaceConfig& c, const py::object& v) { c.rate.ingress_bps = to_rate(v); },
          "Download limit in bits per second (an int, or a str such as \"10mbit\"), or None.")
      .def_readwrite("adopt_netns_of", &NamespaceConfig::adopt_netns_of,
                     "A pid whose network namespace is adopted instead of making one, or None.")
      .def_readwrite("egress", &NamespaceConfig::egress,
                     "An EgressPolicy (a copy), or None: everything the mode allows.");
  dataclass_like(config, {"name", "mode", "pid", "network", "interface", "port_forwards", "dns",
                          "egress_bps", "ingress_bps", "adopt_netns_of", "egress"});
}

// What address and domain rules share: parsing from the text form, action, protocol, ports.
template <typename Rule>
void bind_rule(py::class_<Rule>& cls, const char* init_doc) {
  cls.def(
         py::init([](const std::string& text, const py::object& action) {
           return unwrap(Rule::parse(unwrap(parse_policy_action(text_of(action, "action"))), text));
         }),
         py::arg("text"), py::arg("action") = "allow", init_doc)
      .def_property_readonly(
          "action", [](const Rule& r) { return py_enum("PolicyAction", to_string(r.action)); },
          "PolicyAction.ALLOW or PolicyAction.DENY.")
      .def_property_readonly(
          "protocol",
          [](const Rule& r) { return py_enum("PolicyProtocol", to_string(r.protocol)); },
          "A PolicyProtocol.")
      .def_property_readonly(
          "ports", [](const Rule& r) { return py_ports(r.ports); },
          "(first, last), inclusive, or None for every port.")
      .def("__str__", &Rule::to_string, "The normalised text form, without the action.");
}

void bind_policy(py::module_& m) {
  py::class_<EgressRule> rule(
      m, "EgressRule",
      "An address rule: allow or deny DEST[:PORTS][/PROTO] (a CIDR, ports, tcp/udp/icmp/any).");
  bind_rule(rule,
            "Parses \"10.99.0.5:5432/tcp\", \"192.0.2.0/24/icmp\", ... as an allow or deny rule.");
  rule.def_property_readonly(
      "destination", [](const EgressRule& r) { return py_network(r.destination); },
      "An ipaddress network.");
  dataclass_like(rule, {"action", "destination", "protocol", "ports"});

  py::class_<DomainRule> domain(
      m, "DomainRule",
      "A rule by domain name: what PATTERN[:PORTS][/PROTO] resolves to (\"pypi.org:443/tcp\", "
      "\"*.example.com\") may be reached; a deny rule makes the resolver refuse the name.");
  bind_rule(domain,
            "Parses \"pypi.org:443/tcp\", \"*.example.com\", ... as an allow or deny rule.");
  domain.def_property_readonly(
      "pattern", [](const DomainRule& r) { return r.pattern.str(); },
      "The normalised pattern (\"*.example.com\").");
  dataclass_like(domain, {"action", "pattern", "protocol", "ports"});

  py::class_<EgressPolicy> policy(
      m, "EgressPolicy",
      "What a namespace may reach: a default (allow or deny) and unordered rules; deny beats "
      "allow. Entries are address rules or domain rules in their text forms.");
  policy
      .def(py::init([](const py::object& default_action, const py::iterable& allow,
                       const py::iterable& deny, const py::object& refuse_with,
                       std::uint32_t learn_min_ttl, std::uint32_t learn_grace) {
             EgressPolicy p;
             p.default_action =
                 unwrap(parse_policy_action(text_of(default_action, "default_action")));
             for (const auto& entry : allow) {
               unwrap(add_egress_entry(p, PolicyAction::kAllow, text_of(entry, "an entry")));
             }
             for (const auto& entry : deny) {
               unwrap(add_egress_entry(p, PolicyAction::kDeny, text_of(entry, "an entry")));
             }
             p.refuse_with = unwrap(parse_dns_refusal(text_of(refuse_with, "refuse_with")));
             p.learn_min_ttl = learn_min_ttl;
             p.learn_grace = learn_grace;
             unwrap(p.validate());
             return p;
           }),
           py::arg("default_action") = "allow", py::arg("allow") = py::tuple(),
           py::arg("deny") = py::tuple(), py::arg("refuse_with") = "refused",
           py::arg("learn_min_ttl") = kDefaultLearnMinTtl,
           py::arg("learn_grace") = kDefaultLearnGrace,
           "A policy: EgressPolicy(\"deny\", allow=[\"10.99.0.5:5432/tcp\", \"pypi.org:443\"]).")
      .def_static(
          "load", [](const std::string& path) { return unwrap(load_policy_file(path)); },
          py::arg("path"), "Reads a policy file (YAML or JSON, as `netcell policy set --file`).")
      .def_static(
          "parse",
          [](const std::string& text, const std::string& file) {
            return unwrap(parse_policy_file(text, file));
          },
          py::arg("text"), py::arg("file") = "<string>", "Parses a policy file's text.")
      .def(
          "allow",
          [](py::object self, const std::string& entry) {
            unwrap(add_egress_entry(self.cast<EgressPolicy&>(), PolicyAction::kAllow, entry));
            return self;
          },
          py::arg("entry"), "Adds an allow entry (address or domain rule); returns the policy.")
      .def(
          "deny",
          [](py::object self, const std::string& entry) {
            unwrap(add_egress_entry(self.cast<EgressPolicy&>(), PolicyAction::kDeny, entry));
            return self;
          },
          py::arg("entry"), "Adds a deny entry (address or domain rule); returns the policy.")
      .def_property(
          "default_action",
          [](const EgressPolicy& p) {
            return py_enum("PolicyAction", to_string(p.default_action));
          },
          [](EgressPolicy& p, const py::object& v) {
            p.default_action = unwrap(parse_policy_action(text_of(v, "default_action")));
          },
          "What a flow no rule matches gets: PolicyAction.ALLOW or PolicyAction.DENY.")
      .def_readwrite("rules", &EgressPolicy::rules, "The address rules (a copied list).")
      .def_readwrite("domains", &EgressPolicy::domains, "The domain rules (a copied list).")
      .def_property(
          "refuse_with",
          [](const EgressPolicy& p) { return py_enum("DnsRefusal", to_string(p.refuse_with)); },
          [](EgressPolicy& p, const py::object& v) {
            p.refuse_with = unwrap(parse_dns_refusal(text_of(v, "refuse_with")));
          },
          "How the resolver answers a name the policy does not allow.")
      .def_readwrite("learn_min_ttl", &EgressPolicy::learn_min_ttl,
                     "Seconds: the least TTL a learned address is kept for.")
      .def_readwrite("learn_grace", &EgressPolicy::learn_grace,
                     "Seconds a learned address is kept beyond its TTL.")
      .def("name_allowed", &EgressPolicy::name_allowed, py::arg("name"),
           "Whether netcell's resolver answers the name.")
      .def("learn_seconds", &EgressPolicy::learn_seconds, py::arg("ttl"),
           "Seconds an address from an answer with this TTL stays allowed.")
      .def(
          "validate", [](const EgressPolicy& p) { unwrap(p.validate()); },
          "Checks every rule and the count; raises InvalidArgumentError.");
  dataclass_like(policy, {"default_action", "rules", "domains", "refuse_with", "learn_min_ttl",
                          "learn_grace"});

  py::class_<PolicyCounter> counter(m, "PolicyCounter",
                                    "What the kernel counted for one rule: packets and bytes.");
  counter.def_readonly("packets", &PolicyCounter::packets, "Packets decided on.")
      .def_readonly("bytes", &PolicyCounter::bytes, "Their bytes.");
  dataclass_like(counter, {"packets", "bytes"});

  py::class_<EgressCounters> counters(m, "EgressCounters",
                                      "A policy's counters: per rule, per domain rule, default.");
  counters.def_readonly("rules", &EgressCounters::rules, "In the order of EgressPolicy.rules.")
      .def_readonly("domains", &EgressCounters::domains, "In the order of EgressPolicy.domains.")
      .def_readonly("by_default", &EgressCounters::by_default, "What no rule matched.");
  dataclass_like(counters, {"rules", "domains", "by_default"});

  py::class_<LearnedDestination> learned(m, "LearnedDestination",
                                         "A destination netcell's resolver let a namespace reach.");
  learned
      .def_property_readonly(
          "address", [](const LearnedDestination& d) { return py_address(d.address); },
          "The address an answer held.")
      .def_property_readonly(
          "protocol",
          [](const LearnedDestination& d) {
            return py_enum("PolicyProtocol", to_string(d.protocol));
          },
          "A PolicyProtocol.")
      .def_property_readonly(
          "ports",
          [](const LearnedDestination& d) { return py::make_tuple(d.ports.first, d.ports.last); },
          "(first, last), inclusive.")
      .def_readonly("expires_unix_ms", &LearnedDestination::expires_unix_ms,
                    "When it stops being allowed.")
      .def_readonly("name", &LearnedDestination::name, "The last name that resolved to it.")
      .def_readonly("rules", &LearnedDestination::rules,
                    "Indexes in EgressPolicy.domains of the rules that allowed the name.");
  dataclass_like(learned, {"address", "protocol", "ports", "expires_unix_ms", "name", "rules"});

  m.def(
      "parse_rate", [](const std::string& text) { return unwrap(parse_rate(text)); },
      py::arg("text"), "\"10mbit\", \"500kbit\", \"1gbit\", \"1000000\" -> bits per second.");
  m.def("format_rate", &format_rate, py::arg("bits_per_second"),
        "The shortest exact form: 2500000 -> \"2.5mbit\".");
}

void bind_results(py::module_& m) {
  py::class_<InterfaceInfo> interface(m, "InterfaceInfo", "An interface inside a namespace.");
  interface.def_readonly("name", &InterfaceInfo::name, "Its name inside the namespace.")
      .def_property_readonly(
          "addresses", [](const InterfaceInfo& i) { return py_interfaces(i.addresses); },
          "ipaddress.IPv4Interface / IPv6Interface objects (address with prefix).")
      .def_readonly("mtu", &InterfaceInfo::mtu, "Its MTU.");
  dataclass_like(interface, {"name", "addresses", "mtu"});

  py::class_<NamespaceInfo> info(m, "NamespaceInfo", "Everything known about one namespace.");
  info.def_readonly("name", &NamespaceInfo::name, "Its name (also its file under /run/netns).")
      .def_property_readonly(
          "mode",
          [](const NamespaceInfo& i) { return py_enum("IsolationMode", to_string(i.mode)); },
          "An IsolationMode.")
      .def_property_readonly(
          "backend",
          [](const NamespaceInfo& i) { return py_enum("Backend", to_string(i.backend)); },
          "Backend.LINUX or Backend.SIMULATION.")
      .def_readonly("enforced", &NamespaceInfo::enforced,
                    "True only when the kernel enforces the isolation (Linux backend).")
      .def_readonly("owner_pid", &NamespaceInfo::owner_pid, "The owner process; 0: none.")
      .def_property_readonly(
          "network", [](const NamespaceInfo& i) { return optional_str(i.network); },
          "The network it is on (\"private\" or a bridged one), or None.")
      .def_property_readonly(
          "netns_path", [](const NamespaceInfo& i) { return optional_str(i.netns_path); },
          "The bind-mounted nsfs file (Linux, not shared), else None.")
      .def_property_readonly(
          "host_interface", [](const NamespaceInfo& i) { return optional_str(i.host_interface); },
          "Private and bridged: the host-side end of the veth, else None.")
      .def_readonly("interfaces", &NamespaceInfo::interfaces, "A list of InterfaceInfo.")
      .def_property_readonly(
          "gateway", [](const NamespaceInfo& i) { return py_optional_address(i.gateway); },
          "The default route's gateway, or None.")
      .def_property_readonly(
          "dns", [](const NamespaceInfo& i) { return py_addresses(i.dns); },
          "The DNS servers of its resolv.conf.")
      .def_readonly("port_forwards", &NamespaceInfo::port_forwards, "A list of PortForward.")
      .def_readonly("created_unix_ms", &NamespaceInfo::created_unix_ms,
                    "When it was created (milliseconds since the epoch).")
      .def_property_readonly(
          "egress_bps", [](const NamespaceInfo& i) { return i.rate.egress_bps; },
          "Upload limit in bits per second, or None.")
      .def_property_readonly(
          "ingress_bps", [](const NamespaceInfo& i) { return i.rate.ingress_bps; },
          "Download limit in bits per second, or None.")
      .def_readonly("adopted_from_pid", &NamespaceInfo::adopted_from_pid,
                    "The process whose namespace was adopted; 0 when netcell made it.")
      .def_property_readonly(
          "topology", [](const NamespaceInfo& i) { return optional_str(i.topology.name); },
          "The topology that made it, or None.")
      .def_readonly("egress", &NamespaceInfo::egress, "Its EgressPolicy, or None.")
      .def_property_readonly(
          "upstream_dns", [](const NamespaceInfo& i) { return py_addresses(i.upstream_dns); },
          "With an egress policy: the servers netcell's resolver asks for it.")
      .def_property_readonly(
          "addresses",
          [](const NamespaceInfo& i) {
            py::list out;
            for (const auto& iface : i.interfaces) {
              for (const auto& prefix : iface.addresses) out.append(py_interface(prefix));
            }
            return out;
          },
          "Every interface's addresses (ipaddress interface objects).")
      .def_property_readonly(
          "address", [](const NamespaceInfo& i) { return py_optional_address(primary_address(i)); },
          "Its own address: the first of its first interface other than lo, or None.");
  dataclass_like(info, {"name", "mode", "backend", "enforced", "owner_pid", "network", "netns_path",
                        "host_interface", "interfaces", "gateway", "dns", "port_forwards",
                        "created_unix_ms", "egress_bps", "ingress_bps", "adopted_from_pid",
                        "topology", "egress", "upstream_dns"});

  py::class_<InterfaceStats> istats(m, "InterfaceStats", "One interface's counters.");
  istats.def_readonly("name", &InterfaceStats::name, "The interface (\"total\": the sum).")
      .def_readonly("rx_bytes", &InterfaceStats::rx_bytes, "Bytes received.")
      .def_readonly("tx_bytes", &InterfaceStats::tx_bytes, "Bytes sent.")
      .def_readonly("rx_packets", &InterfaceStats::rx_packets, "Packets received.")
      .def_readonly("tx_packets", &InterfaceStats::tx_packets, "Packets sent.")
      .def_readonly("rx_errors", &InterfaceStats::rx_errors, "Receive errors.")
      .def_readonly("tx_errors", &InterfaceStats::tx_errors, "Transmit errors.")
      .def_readonly("rx_dropped", &InterfaceStats::rx_dropped, "Received packets dropped.")
      .def_readonly("tx_dropped", &InterfaceStats::tx_dropped, "Packets to send dropped.");
  dataclass_like(istats, {"name", "rx_bytes", "tx_bytes", "rx_packets", "tx_packets", "rx_errors",
                          "tx_errors", "rx_dropped", "tx_dropped"});

  py::class_<NamespaceStats> nstats(m, "NamespaceStats", "A namespace's interface counters.");
  nstats.def_readonly("name", &NamespaceStats::name, "The namespace.")
      .def_readonly("interfaces", &NamespaceStats::interfaces, "A list of InterfaceStats.")
      .def_readonly("total", &NamespaceStats::total, "The sum over interfaces.");
  dataclass_like(nstats, {"name", "interfaces", "total"});

  py::class_<NetworkInfo> network(m, "NetworkInfo",
                                  "A network namespaces attach to: \"private\" or a bridged one.");
  network.def_readonly("name", &NetworkInfo::name, "Its name.")
      .def_readonly("bridged", &NetworkInfo::bridged,
                    "False only for the implicit \"private\" network.")
      .def_property_readonly(
          "subnet", [](const NetworkInfo& n) { return py_network(n.subnet); },
          "An ipaddress network.")
      .def_property_readonly(
          "gateway", [](const NetworkInfo& n) { return py_optional_address(n.gateway); },
          "Bridged: the bridge's address.")
      .def_readonly("nat", &NetworkInfo::nat, "Whether traffic leaving the host is masqueraded.")
      .def_readonly("host_access", &NetworkInfo::host_access,
                    "Whether namespaces may reach the host's own addresses.")
      .def_property_readonly(
          "bridge", [](const NetworkInfo& n) { return optional_str(n.bridge); },
          "Bridged: the bridge device, else None.")
      .def_readonly("created_unix_ms", &NetworkInfo::created_unix_ms,
                    "When it was created (milliseconds since the epoch).")
      .def_property_readonly(
          "topology", [](const NetworkInfo& n) { return optional_str(n.topology.name); },
          "The topology that made it, or None.");
  dataclass_like(network, {"name", "bridged", "subnet", "gateway", "nat", "host_access", "bridge",
                           "created_unix_ms", "topology"});

  py::class_<ServiceStatus> service(m, "ServiceStatus",
                                    "The host service (netcell-service) of a run dir.");
  service.def_readonly("running", &ServiceStatus::running, "Whether it runs.")
      .def_readonly("pid", &ServiceStatus::pid, "Its pid; 0 when there is no record.")
      .def_readonly("port", &ServiceStatus::port, "The resolver's port.")
      .def_readonly("log_path", &ServiceStatus::log_path, "Where it writes its log.");
  dataclass_like(service, {"running", "pid", "port", "log_path"});

  py::class_<NamespaceManager::GcReport> gc(m, "GcReport", "What gc() did.");
  gc.def_readonly("removed", &NamespaceManager::GcReport::removed,
                  "Records whose creation or owner was gone.")
      .def_readonly("errors", &NamespaceManager::GcReport::errors, "One line each.");
  dataclass_like(gc, {"removed", "errors"});
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
  std::optional<int> wait_for(std::optional<double> timeout) {
    if (returncode) return returncode;
    Child& c = live();
    auto deadline = std::chrono::steady_clock::now();
    if (timeout) {
      if (std::isnan(*timeout)) throw py::value_error("timeout is NaN");
      deadline += std::chrono::duration_cast<std::chrono::steady_clock::duration>(
          std::chrono::duration<double>(std::max(0.0, std::min(*timeout, 1e9))));
    }
    for (;;) {
      int slice = 100;
      if (timeout) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                        deadline - std::chrono::steady_clock::now())
                        .count();
        slice = static_cast<int>(std::clamp<long long>(left, 0, 100));
      }
      int ready;
      {
        py::gil_scoped_release release;
        pollfd fd{c.pidfd(), POLLIN, 0};
        ready = ::poll(&fd, 1, slice);
      }
      if (ready < 0 && errno != EINTR) raise(Error::from_errno("poll pidfd", errno));
      if (ready > 0) {
        py::gil_scoped_release release;
        returncode = unwrap(c.wait());
        return returncode;
      }
      if (PyErr_CheckSignals() != 0) throw py::error_already_set();
      if (timeout && std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    }
  }
};

void bind_child(py::module_& m) {
  py::class_<PyChild>(m, "Child",
                      "A process run inside a namespace (NamespaceManager.spawn), owned through a "
                      "pidfd. A context manager: leaving the block kills and reaps it if it still "
                      "runs; so does its collection, unless it was released.")
      .def_property_readonly(
          "pid", [](const PyChild& c) { return c.pid; }, "Its pid (as the caller sees it).")
      .def_property_readonly(
          "returncode", [](const PyChild& c) { return c.returncode; },
          "None while it runs (or before wait/poll saw it end); then its exit code, or 128 + the "
          "signal that killed it.")
      .def(
          "wait",
          [](PyChild& c, std::optional<double> timeout) {
            auto code = c.wait_for(timeout);
            if (!code) {
              PyErr_SetString(
                  PyExc_TimeoutError,
                  ("child " + std::to_string(c.pid) + " still runs after the timeout").c_str());
              throw py::error_already_set();
            }
            return *code;
          },
          py::arg("timeout") = py::none(),
          "Waits for it to end and reaps it: its exit code, or 128 + the signal that killed it. "
          "TimeoutError when timeout (seconds) passes first.")
      .def(
          "poll", [](PyChild& c) { return c.wait_for(0.0); },
          "Its return code when it has ended (reaping it), else None.")
      .def(
          "send_signal",
          [](PyChild& c, int sig) {
            if (c.returncode) return;
            unwrap(c.live().signal(sig));
          },
          py::arg("signal"), "Sends a signal through the pidfd (no pid-reuse race).")
      .def(
          "terminate",
          [](PyChild& c) {
            if (!c.returncode) unwrap(c.live().signal(SIGTERM));
          },
          "Sends SIGTERM.")
      .def(
          "kill",
          [](PyChild& c) {
            if (!c.returncode) unwrap(c.live().signal(SIGKILL));
          },
          "Sends SIGKILL.")
      .def(
          "release",
          [](PyChild& c) {
            pid_t pid = c.live().release();
            c.released = true;
            return pid;
          },
          "Gives the process up without killing or reaping it (a detached child that should "
          "outlive this object); returns its pid.")
      .def(
          "__enter__", [](py::object self) { return self; }, "Returns the child.")
      .def(
          "__exit__",
          [](PyChild& c, const py::object&, const py::object&, const py::object&) {
            if (c.released || c.returncode) return false;
            (void)c.live().signal(SIGKILL);
            c.wait_for(std::nullopt);
            return false;
          },
          py::arg("type"), py::arg("value"), py::arg("traceback"),
          "Kills and reaps it when it still runs.")
      .def(
          "__repr__",
          [](const PyChild& c) {
            std::string state = c.released     ? "released"
                                : c.returncode ? "returncode=" + std::to_string(*c.returncode)
                                               : "running";
            return "<Child pid=" + std::to_string(c.pid) + " " + state + ">";
          },
          "Its pid and state.");
}

void bind_topology(py::module_& m) {
  py::class_<TopologyError> issue(m, "TopologyIssue",
                                  "One problem in a topology file (TopologyError.issues).");
  issue.def_readonly("file", &TopologyError::file, "The file.")
      .def_readonly("line", &TopologyError::line, "1-based; 0 when unknown.")
      .def_readonly("field", &TopologyError::field, "The field at fault.")
      .def_readonly("message", &TopologyError::message, "What is wrong.")
      .def("__str__", &TopologyError::to_string, "\"FILE:LINE: FIELD: MESSAGE\".");
  dataclass_like(issue, {"file", "line", "field", "message"});

  auto checked = [](TopologyParse parse) {
    if (!parse.topology) throw TopologyException{std::move(parse.errors)};
    return std::move(*parse.topology);
  };
  py::class_<Topology>(m, "Topology",
                       "Namespaces, networks and links declared together (netcell-topology(5)): "
                       "load or parse one, then NamespaceManager.up() / down().")
      .def_static(
          "load", [checked](const std::string& path) { return checked(load_topology(path)); },
          py::arg("path"), "Reads and validates a topology file; TopologyError lists every issue.")
      .def_static(
          "parse",
          [checked](const std::string& text, const std::string& file) {
            return checked(parse_topology(text, file));
          },
          py::arg("text"), py::arg("file") = "<string>", "Parses a topology file's YAML text.")
      .def_static(
          "from_dict",
          [checked](const py::dict& declaration, const std::string& file) {
            // JSON is YAML: the dict's JSON form is a topology file.
            std::string text =
                py::module_::import("json").attr("dumps")(declaration).cast<std::string>();
            return checked(parse_topology(text, file));
          },
          py::arg("declaration"), py::arg("name") = "<dict>",
          "A topology from a dict shaped like the file ({\"name\": ..., \"namespaces\": {...}}).")
      .def_readonly("name", &Topology::name, "The file's name:, else the file name.")
      .def_readonly("source", &Topology::source, "The file it came from.")
      .def_property_readonly(
          "namespaces",
          [](const Topology& t) {
            std::vector<std::string> out;
            for (const auto& ns : t.namespaces) out.push_back(ns.config.name);
            return out;
          },
          "The namespaces' names, in file order.")
      .def_property_readonly(
          "networks",
          [](const Topology& t) {
            std::vector<std::string> out;
            for (const auto& network : t.networks) out.push_back(network.config.name);
            return out;
          },
          "The networks' names.")
      .def_property_readonly(
          "links",
          [](const Topology& t) {
            std::vector<std::string> out;
            for (const auto& l : t.links) {
              out.push_back(l.a.ns + ":" + l.a.device + "-" + l.b.ns + ":" + l.b.device);
            }
            return out;
          },
          "The links, as \"a:eth1-b:eth1\".")
      .def(
          "config",
          [](const Topology& t, const std::string& name) {
            for (const auto& ns : t.namespaces) {
              if (ns.config.name == name) return ns.config;
            }
            raise(Error(ErrorCode::kNotFound,
                        "topology '" + t.name + "' declares no namespace '" + name + "'"));
          },
          py::arg("name"), "The NamespaceConfig a namespace of it is made from (a copy).")
      .def(
          "__repr__",
          [](const Topology& t) {
            return "<Topology " + py::repr(py::str(t.name)).cast<std::string>() + ": " +
                   std::to_string(t.namespaces.size()) + " namespaces, " +
                   std::to_string(t.networks.size()) + " networks, " +
                   std::to_string(t.links.size()) + " links>";
          },
          "Its name and size.");

  py::class_<TopologyStep> step(m, "TopologyStep", "One step of up() or down().");
  step.def_readonly("action", &TopologyStep::action, "\"create\", \"keep\", \"remove\", ...")
      .def_readonly("kind", &TopologyStep::kind, "\"network\", \"namespace\", \"link\", ...")
      .def_readonly("object", &TopologyStep::object, "Its name (\"a\", \"a:eth1-b:eth1\").")
      .def_readonly("detail", &TopologyStep::detail, "More about it.");
  dataclass_like(step, {"action", "kind", "object", "detail"});

  py::class_<TopologyReport> report(m, "TopologyReport", "What up() or down() did (or plans).");
  report.def_readonly("steps", &TopologyReport::steps, "A list of TopologyStep.")
      .def_readonly("changed", &TopologyReport::changed, "Steps that changed something.");
  dataclass_like(report, {"steps", "changed"});
}

using Manager = NamespaceManager;
using ReleaseGil = py::call_guard<py::gil_scoped_release>;

std::unique_ptr<Manager> open_manager(const py::object& backend, std::optional<std::string> run_dir,
                                      std::optional<std::string> netns_dir,
                                      std::optional<std::string> etc_netns_dir,
                                      std::optional<std::string> private_subnet,
                                      bool allow_simulation,
                                      std::optional<std::string> service_path) {
  ManagerOptions options;
  options.backend = unwrap(parse_backend_choice(text_of(backend, "backend")));
  options.allow_simulation = allow_simulation;
  if (run_dir) options.run_dir = *run_dir;
  if (netns_dir) options.netns_dir = *netns_dir;
  if (etc_netns_dir) options.etc_netns_dir = *etc_netns_dir;
  if (private_subnet) options.private_subnet = *private_subnet;
  if (service_path) options.service_path = *service_path;
  py::gil_scoped_release release;
  return std::make_unique<Manager>(unwrap(Manager::create(options)));
}

constexpr const char* kOpenDoc =
    "Opens a manager (NamespaceManager(...) and NamespaceManager.open(...) are the same). "
    "backend: \"auto\" (Linux with CAP_NET_ADMIN, else an error unless allow_simulation), "
    "\"linux\" or \"simulation\". None keeps a default: run_dir /run/netcell "
    "(/run/netcell-sim for the simulation), netns_dir /run/netns, etc_netns_dir /etc/netns, "
    "private_subnet 10.209.0.0/16, service_path $NETCELL_SERVICE or the installed "
    "netcell-service (the resolver of namespaces with an egress policy).";

TopologyOptions topology_options(bool dry_run, std::optional<std::string> log_dir) {
  TopologyOptions options;
  options.dry_run = dry_run;
  if (log_dir) options.log_dir = *log_dir;
  return options;
}

void bind_manager(py::module_& m) {
  py::class_<Manager>(m, "NamespaceManager",
                      "Drives one backend over one state store. Thread-safe; every call "
                      "releases the GIL while it works.")
      .def(py::init(&open_manager), py::arg("backend") = "auto", py::arg("run_dir") = py::none(),
           py::arg("netns_dir") = py::none(), py::arg("etc_netns_dir") = py::none(),
           py::arg("private_subnet") = py::none(), py::arg("allow_simulation") = false,
           py::arg("service_path") = py::none(), kOpenDoc)
      .def_static("open", &open_manager, py::arg("backend") = "auto",
                  py::arg("run_dir") = py::none(), py::arg("netns_dir") = py::none(),
                  py::arg("etc_netns_dir") = py::none(), py::arg("private_subnet") = py::none(),
                  py::arg("allow_simulation") = false, py::arg("service_path") = py::none(),
                  kOpenDoc)
      .def_property_readonly(
          "backend",
          [](const Manager& mgr) { return py_enum("Backend", to_string(mgr.backend())); },
          "Backend.LINUX or Backend.SIMULATION.")
      .def_property_readonly(
          "run_dir", [](const Manager& mgr) { return mgr.options().run_dir; },
          "The state directory as given (empty: the backend's default).")
      .def(
          "create",
          [](Manager& mgr, const NamespaceConfig& config) { return unwrap(mgr.create(config)); },
          py::arg("config"), ReleaseGil(),
          "Validates config, reserves its name and creates the namespace; on failure nothing is "
          "left behind.")
      .def("exists", &Manager::exists, py::arg("name"), ReleaseGil(),
           "Whether the namespace exists.")
      .def(
          "info", [](Manager& mgr, const std::string& name) { return unwrap(mgr.info(name)); },
          py::arg("name"), ReleaseGil(), "The namespace's NamespaceInfo; NotFoundError if none.")
      .def(
          "stats", [](Manager& mgr, const std::string& name) { return unwrap(mgr.stats(name)); },
          py::arg("name"), ReleaseGil(), "Its interfaces' counters, as the kernel has them.")
      .def("list", &Manager::list, ReleaseGil(), "Every namespace, sorted by name.")
      .def(
          "find_by_pid", [](Manager& mgr, pid_t pid) { return unwrap(mgr.find_by_pid(pid)); },
          py::arg("pid"), ReleaseGil(),
          "The namespace owned by pid, else the one whose network namespace pid lives in.")
      .def(
          "destroy",
          [](Manager& mgr, const std::string& name, bool kill_processes) {
            unwrap(mgr.destroy(name, DestroyOptions{.kill_processes = kill_processes}));
          },
          py::arg("name"), py::arg("kill_processes") = false, ReleaseGil(),
          "Removes the namespace and everything made for it; with kill_processes, every "
          "process inside is ended with SIGKILL first.")
      .def(
          "spawn",
          [](Manager& mgr, const std::string& name, const std::vector<std::string>& argv,
             bool new_pid_namespace, bool init, bool detach, std::optional<std::string> output,
             const py::object& in, const py::object& out, const py::object& err) {
            SpawnOptions options;
            options.new_pid_namespace = new_pid_namespace;
            options.init = init;
            options.detach = detach;
            if (output) options.output_path = *output;
            options.stdin_fd = to_fd(in);
            options.stdout_fd = to_fd(out);
            options.stderr_fd = to_fd(err);
            if (init && !new_pid_namespace) {
              raise(Error(ErrorCode::kInvalidArgument, "init needs new_pid_namespace"));
            }
            if (output && !detach) {
              raise(Error(ErrorCode::kInvalidArgument, "output_path needs detach"));
            }
            auto child = std::make_unique<PyChild>();
            {
              py::gil_scoped_release release;
              child->child.emplace(unwrap(mgr.spawn(name, argv, options)));
            }
            child->pid = child->child->pid();
            return child;
          },
          py::arg("name"), py::arg("argv"), py::kw_only(), py::arg("new_pid_namespace") = false,
          py::arg("init") = false, py::arg("detach") = false, py::arg("output_path") = py::none(),
          py::arg("stdin") = py::none(), py::arg("stdout") = py::none(),
          py::arg("stderr") = py::none(),
          "Runs argv (a list; argv[0] is looked up in PATH) inside the namespace, as `netcell "
          "exec` does; returns a Child. new_pid_namespace: also a new PID namespace with a fresh "
          "/proc, the command its PID 1 (with init, netcell's init is PID 1 and the command PID "
          "2). detach: a session of its own and stdin from /dev/null; output_path (with detach): "
          "stdout and stderr appended there. stdin, stdout, stderr: a file descriptor or file "
          "(e.g. an os.pipe() end) the child gets as 0, 1, 2; None inherits this process's.")
      .def(
          "set_egress",
          [](Manager& mgr, const std::string& name, const std::optional<EgressPolicy>& policy) {
            return unwrap(mgr.set_egress(name, policy));
          },
          py::arg("name"), py::arg("policy"), ReleaseGil(),
          "Replaces the namespace's egress policy (None: back to what its mode allows) in one "
          "kernel change; new connections follow it at once. Returns the NamespaceInfo.")
      .def(
          "egress_counters",
          [](Manager& mgr, const std::string& name) { return unwrap(mgr.egress_counters(name)); },
          py::arg("name"), ReleaseGil(),
          "What the kernel counted for the namespace's policy (NotFoundError without one).")
      .def(
          "learned",
          [](Manager& mgr, const std::string& name) { return unwrap(mgr.learned(name)); },
          py::arg("name"), ReleaseGil(),
          "The destinations the resolver let the namespace reach, not yet expired.")
      .def("service_status", &Manager::service_status, ReleaseGil(),
           "The host service: whether it runs, its pid and port.")
      .def("gc", &Manager::gc, ReleaseGil(),
           "Completes or rolls back interrupted operations and removes namespaces whose owner "
           "ended; a GcReport.")
      .def(
          "create_network",
          [](Manager& mgr, const std::string& name, const py::object& subnet, bool nat,
             bool host_access) {
            NetworkConfig config;
            config.name = name;
            config.subnet = to_prefix(subnet);
            config.nat = nat;
            config.host_access = host_access;
            py::gil_scoped_release release;
            return unwrap(mgr.create_network(config));
          },
          py::arg("name"), py::arg("subnet"), py::arg("nat") = false,
          py::arg("host_access") = false,
          "A bridged network (subnet \"10.50.0.0/24\" or an ipaddress network) for "
          "NamespaceConfig.bridged; its NetworkInfo.")
      .def("list_networks", &Manager::list_networks, ReleaseGil(),
           "The private network and every bridged one.")
      .def(
          "remove_network",
          [](Manager& mgr, const std::string& name) { unwrap(mgr.remove_network(name)); },
          py::arg("name"), ReleaseGil(), "Refused (ConflictError) while a namespace uses it.")
      .def(
          "up",
          [](Manager& mgr, const Topology& topology, bool dry_run,
             std::optional<std::string> log_dir) {
            return unwrap(topology_up(mgr, topology, topology_options(dry_run, log_dir)));
          },
          py::arg("topology"), py::kw_only(), py::arg("dry_run") = false,
          py::arg("log_dir") = py::none(), ReleaseGil(),
          "Converges the system to the topology (as `netcell up`): idempotent; when a step fails "
          "everything this call created is removed again.")
      .def(
          "down",
          [](Manager& mgr, const Topology& topology, bool dry_run,
             std::optional<std::string> log_dir) {
            return unwrap(topology_down(mgr, topology, topology_options(dry_run, log_dir)));
          },
          py::arg("topology"), py::kw_only(), py::arg("dry_run") = false,
          py::arg("log_dir") = py::none(), ReleaseGil(),
          "Stops the topology's commands and removes its namespaces and networks (only objects "
          "it made).");
}

}  // namespace

PYBIND11_MODULE(_netcell, m) {
  m.doc() = "netcell's C++ API (the extension behind the netcell package).";
  bind_errors(m);
  bind_policy(m);
  bind_configs(m);
  bind_results(m);
  bind_child(m);
  bind_topology(m);
  bind_manager(m);
}
