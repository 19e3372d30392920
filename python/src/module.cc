// netcell's Python binding, the extension module netcell._netcell: the lifecycle API of
// NamespaceManager (include/netcell/manager.h) with its configs and results. The package
// netcell (python/netcell/__init__.py) re-exports it and defines netcell.Error, which every
// failing call raises with the ErrorCode, the message, the errno and the context of the
// netcell::Error it came from. Addresses cross as ipaddress objects (an address with its prefix
// as ipaddress.ip_interface); a str is accepted wherever an address is set.
#include <pybind11/operators.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <sys/types.h>

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

// The class netcell.Error, set once by the package's __init__ (never released: the interpreter
// may still raise it while the module is torn down).
PyObject* g_error_class = nullptr;

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

py::object py_address(const IpAddress& address) {
  return py::module_::import("ipaddress").attr("ip_address")(address.to_string());
}

py::object py_prefix(const IpPrefix& prefix) {
  return py::module_::import("ipaddress").attr("ip_interface")(prefix.to_string());
}

py::object py_optional_address(const std::optional<IpAddress>& address) {
  return address ? py_address(*address) : py::none();
}

// Accepts a str or anything whose str() is an address (ipaddress.IPv4Address, ...).
IpAddress to_address(const py::handle& value) {
  return unwrap(IpAddress::parse(py::str(value).cast<std::string>()));
}

std::optional<IpAddress> to_optional_address(const py::handle& value) {
  if (value.is_none()) return std::nullopt;
  return to_address(value);
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

std::string str(std::string_view text) {
  return std::string(text);
}

std::optional<std::string> optional_str(const std::string& text) {
  if (text.empty()) return std::nullopt;
  return text;
}

std::string repr_string(const std::string& text) {
  return py::repr(py::str(text)).cast<std::string>();
}

void bind_error_codes(py::module_& m) {
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
      "_set_error_class", [](py::object cls) { g_error_class = cls.release().ptr(); },
      "Internal: the class failing calls raise (netcell.Error).");
  py::register_exception_translator([](std::exception_ptr pending) {
    if (!pending) return;
    try {
      std::rethrow_exception(pending);
    } catch (const ErrorException& e) {
      const Error& error = e.error;
      if (g_error_class == nullptr) {
        PyErr_SetString(PyExc_RuntimeError, error.to_string().c_str());
        return;
      }
      py::list context;
      for (const auto& layer : error.context()) context.append(layer);
      py::object instance = py::reinterpret_borrow<py::object>(g_error_class)(
          error.code(), error.message(), error.sys_errno(), context, error.to_string());
      PyErr_SetObject(g_error_class, instance.ptr());
    }
  });
}

void bind_configs(py::module_& m) {
  py::class_<InterfaceConfig>(m, "InterfaceConfig",
                              "The namespace-side interface of a private or bridged namespace.")
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
           py::arg("gateway") = py::none(), py::arg("mtu") = 1500)
      .def_readwrite("name", &InterfaceConfig::name, "Interface name inside the namespace.")
      .def_property(
          "ip", [](const InterfaceConfig& c) { return py_address(c.ip); },
          [](InterfaceConfig& c, py::object v) { c.ip = to_address(v); },
          "Its address (0.0.0.0: one from the network's pool).")
      .def_readwrite("prefix_len", &InterfaceConfig::prefix_len)
      .def_property(
          "gateway", [](const InterfaceConfig& c) { return py_optional_address(c.gateway); },
          [](InterfaceConfig& c, py::object v) { c.gateway = to_optional_address(v); },
          "The default route's gateway, or None.")
      .def_readwrite("mtu", &InterfaceConfig::mtu, "68..65535.")
      .def("__repr__", [](const InterfaceConfig& c) {
        return "InterfaceConfig(name=" + repr_string(c.name) + ", ip='" + c.ip.to_string() +
               "', prefix_len=" + std::to_string(c.prefix_len) + ", gateway=" +
               (c.gateway ? '\'' + c.gateway->to_string() + '\'' : std::string("None")) +
               ", mtu=" + std::to_string(c.mtu) + ')';
      });

  py::class_<PortForward>(
      m, "PortForward",
      "A published port: connections to HOST_IP:host_port reach the namespace's container_port.")
      .def(py::init([](std::uint16_t host_port, std::uint16_t container_port,
                       const std::string& protocol, py::object host_ip) {
             PortForward forward;
             forward.host_port = host_port;
             forward.container_port = container_port;
             forward.protocol = unwrap(parse_protocol(protocol));
             forward.host_ip = to_optional_address(host_ip);
             return forward;
           }),
           py::arg("host_port"), py::arg("container_port"), py::arg("protocol") = "tcp",
           py::arg("host_ip") = py::none())
      .def_static(
          "parse", [](const std::string& text) { return unwrap(PortForward::parse(text)); },
          py::arg("text"), "Parses \"[HOSTIP:]HPORT:PORT[/udp|/tcp]\" (the CLI's --publish).")
      .def_readwrite("host_port", &PortForward::host_port)
      .def_readwrite("container_port", &PortForward::container_port)
      .def_property(
          "protocol", [](const PortForward& f) { return str(to_string(f.protocol)); },
          [](PortForward& f, const std::string& v) { f.protocol = unwrap(parse_protocol(v)); },
          "\"tcp\" or \"udp\".")
      .def_property(
          "host_ip", [](const PortForward& f) { return py_optional_address(f.host_ip); },
          [](PortForward& f, py::object v) { f.host_ip = to_optional_address(v); },
          "The host address it listens on; None: all of them.")
      .def(py::self == py::self)
      .def("__str__", &PortForward::to_string)
      .def("__repr__",
           [](const PortForward& f) { return "PortForward.parse('" + f.to_string() + "')"; });

  py::class_<NamespaceConfig>(m, "NamespaceConfig",
                              "What to create: build it with a named constructor, then adjust "
                              "fields; the manager validates it as a whole in create().")
      .def_static("full_isolation", &NamespaceConfig::full_isolation, py::arg("pid") = 0,
                  "A new network namespace with only lo: nothing is reachable.")
      .def_static("private_network", &NamespaceConfig::private_network, py::arg("pid") = 0,
                  "A veth to the host, NAT, DNS and published ports.")
      .def_static("shared", &NamespaceConfig::shared, py::arg("pid") = 0,
                  "The host's own network, recorded and tracked.")
      .def_static("bridged", &NamespaceConfig::bridged, py::arg("pid"), py::arg("network"),
                  "A port on a named network's bridge.")
      .def_readwrite("name", &NamespaceConfig::name,
                     "Empty: derived from the owner pid (\"pid-1234\"), else \"ns-<random>\".")
      .def_property(
          "mode", [](const NamespaceConfig& c) { return str(to_string(c.mode)); },
          [](NamespaceConfig& c, const std::string& v) {
            c.mode = unwrap(parse_isolation_mode(v));
          },
          "\"full\", \"private\", \"shared\" or \"bridged\".")
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
          [](NamespaceConfig& c, std::optional<std::uint64_t> v) { c.rate.egress_bps = v; },
          "Upload limit in bits per second, or None.")
      .def_property(
          "ingress_bps", [](const NamespaceConfig& c) { return c.rate.ingress_bps; },
          [](NamespaceConfig& c, std::optional<std::uint64_t> v) { c.rate.ingress_bps = v; },
          "Download limit in bits per second, or None.")
      .def("__repr__", [](const NamespaceConfig& c) {
        return "<NamespaceConfig " + str(to_string(c.mode)) + " name=" + repr_string(c.name) +
               " pid=" + std::to_string(c.pid) + ">";
      });
}

void bind_results(py::module_& m) {
  py::class_<InterfaceInfo>(m, "InterfaceInfo", "An interface inside a namespace.")
      .def_readonly("name", &InterfaceInfo::name)
      .def_property_readonly(
          "addresses",
          [](const InterfaceInfo& i) {
            py::list out;
            for (const auto& prefix : i.addresses) out.append(py_prefix(prefix));
            return out;
          },
          "ipaddress.IPv4Interface / IPv6Interface objects (address with prefix).")
      .def_readonly("mtu", &InterfaceInfo::mtu)
      .def("__repr__", [](const InterfaceInfo& i) {
        std::string out = "InterfaceInfo(name=" + repr_string(i.name) + ", addresses=[";
        for (std::size_t k = 0; k < i.addresses.size(); ++k) {
          if (k > 0) out += ", ";
          out += '\'' + i.addresses[k].to_string() + '\'';
        }
        return out + "], mtu=" + std::to_string(i.mtu) + ')';
      });

  py::class_<NamespaceInfo>(m, "NamespaceInfo", "Everything known about one namespace.")
      .def_readonly("name", &NamespaceInfo::name)
      .def_property_readonly("mode", [](const NamespaceInfo& i) { return str(to_string(i.mode)); })
      .def_property_readonly("backend",
                             [](const NamespaceInfo& i) { return str(to_string(i.backend)); })
      .def_readonly("enforced", &NamespaceInfo::enforced,
                    "True only when the kernel enforces the isolation (Linux backend).")
      .def_readonly("owner_pid", &NamespaceInfo::owner_pid)
      .def_property_readonly("network",
                             [](const NamespaceInfo& i) { return optional_str(i.network); })
      .def_property_readonly(
          "netns_path", [](const NamespaceInfo& i) { return optional_str(i.netns_path); },
          "The bind-mounted nsfs file (Linux, not shared), else None.")
      .def_property_readonly(
          "host_interface", [](const NamespaceInfo& i) { return optional_str(i.host_interface); },
          "Private and bridged: the host-side end of the veth, else None.")
      .def_readonly("interfaces", &NamespaceInfo::interfaces)
      .def_property_readonly("gateway",
                             [](const NamespaceInfo& i) { return py_optional_address(i.gateway); })
      .def_property_readonly("dns", [](const NamespaceInfo& i) { return py_addresses(i.dns); })
      .def_readonly("port_forwards", &NamespaceInfo::port_forwards)
      .def_readonly("created_unix_ms", &NamespaceInfo::created_unix_ms)
      .def_property_readonly("egress_bps", [](const NamespaceInfo& i) { return i.rate.egress_bps; })
      .def_property_readonly("ingress_bps",
                             [](const NamespaceInfo& i) { return i.rate.ingress_bps; })
      .def_readonly("adopted_from_pid", &NamespaceInfo::adopted_from_pid)
      .def_property_readonly(
          "addresses",
          [](const NamespaceInfo& i) {
            py::list out;
            for (const auto& interface : i.interfaces) {
              for (const auto& prefix : interface.addresses) out.append(py_prefix(prefix));
            }
            return out;
          },
          "Every interface's addresses (ipaddress interface objects).")
      .def(py::self == py::self)
      .def("__repr__", [](const NamespaceInfo& i) {
        return "<NamespaceInfo " + repr_string(i.name) + " mode=" + str(to_string(i.mode)) +
               " backend=" + str(to_string(i.backend)) +
               " enforced=" + (i.enforced ? "True" : "False") + ">";
      });

  py::class_<InterfaceStats>(m, "InterfaceStats", "One interface's counters.")
      .def_readonly("name", &InterfaceStats::name)
      .def_readonly("rx_bytes", &InterfaceStats::rx_bytes)
      .def_readonly("tx_bytes", &InterfaceStats::tx_bytes)
      .def_readonly("rx_packets", &InterfaceStats::rx_packets)
      .def_readonly("tx_packets", &InterfaceStats::tx_packets)
      .def_readonly("rx_errors", &InterfaceStats::rx_errors)
      .def_readonly("tx_errors", &InterfaceStats::tx_errors)
      .def_readonly("rx_dropped", &InterfaceStats::rx_dropped)
      .def_readonly("tx_dropped", &InterfaceStats::tx_dropped)
      .def("__repr__", [](const InterfaceStats& s) {
        return "<InterfaceStats " + repr_string(s.name) +
               " rx_bytes=" + std::to_string(s.rx_bytes) +
               " tx_bytes=" + std::to_string(s.tx_bytes) + ">";
      });

  py::class_<NamespaceStats>(m, "NamespaceStats", "A namespace's interface counters.")
      .def_readonly("name", &NamespaceStats::name)
      .def_readonly("interfaces", &NamespaceStats::interfaces)
      .def_readonly("total", &NamespaceStats::total, "The sum over interfaces.")
      .def("__repr__", [](const NamespaceStats& s) {
        return "<NamespaceStats " + repr_string(s.name) +
               " interfaces=" + std::to_string(s.interfaces.size()) + ">";
      });

  py::class_<NetworkInfo>(m, "NetworkInfo",
                          "A network namespaces attach to: \"private\" or a bridged one.")
      .def_readonly("name", &NetworkInfo::name)
      .def_readonly("bridged", &NetworkInfo::bridged)
      .def_property_readonly(
          "subnet",
          [](const NetworkInfo& n) {
            return py::module_::import("ipaddress").attr("ip_network")(n.subnet.to_string());
          })
      .def_property_readonly("gateway",
                             [](const NetworkInfo& n) { return py_optional_address(n.gateway); })
      .def_readonly("nat", &NetworkInfo::nat)
      .def_readonly("host_access", &NetworkInfo::host_access)
      .def_property_readonly("bridge", [](const NetworkInfo& n) { return optional_str(n.bridge); })
      .def_readonly("created_unix_ms", &NetworkInfo::created_unix_ms)
      .def("__repr__", [](const NetworkInfo& n) {
        return "<NetworkInfo " + repr_string(n.name) + " subnet=" + n.subnet.to_string() + ">";
      });
}

using Manager = NamespaceManager;
using ReleaseGil = py::call_guard<py::gil_scoped_release>;

std::unique_ptr<Manager> open_manager(const std::string& backend,
                                      std::optional<std::string> run_dir,
                                      std::optional<std::string> netns_dir,
                                      std::optional<std::string> etc_netns_dir,
                                      std::optional<std::string> private_subnet,
                                      bool allow_simulation) {
  ManagerOptions options;
  options.backend = unwrap(parse_backend_choice(backend));
  options.allow_simulation = allow_simulation;
  if (run_dir) options.run_dir = *run_dir;
  if (netns_dir) options.netns_dir = *netns_dir;
  if (etc_netns_dir) options.etc_netns_dir = *etc_netns_dir;
  if (private_subnet) options.private_subnet = *private_subnet;
  py::gil_scoped_release release;
  return std::make_unique<Manager>(unwrap(Manager::create(options)));
}

constexpr const char* kOpenDoc =
    "Opens a manager (NamespaceManager(...) and NamespaceManager.open(...) are the same). "
    "backend: \"auto\" (Linux with CAP_NET_ADMIN, else an error unless allow_simulation), "
    "\"linux\" or \"simulation\". None keeps a default: run_dir /run/netcell "
    "(/run/netcell-sim for the simulation), netns_dir /run/netns, etc_netns_dir /etc/netns, "
    "private_subnet 10.209.0.0/16.";

void bind_manager(py::module_& m) {
  py::class_<Manager>(m, "NamespaceManager",
                      "Drives one backend over one state store. Thread-safe; every call "
                      "releases the GIL while it works.")
      .def(py::init(&open_manager), py::arg("backend") = "auto", py::arg("run_dir") = py::none(),
           py::arg("netns_dir") = py::none(), py::arg("etc_netns_dir") = py::none(),
           py::arg("private_subnet") = py::none(), py::arg("allow_simulation") = false, kOpenDoc)
      .def_static("open", &open_manager, py::arg("backend") = "auto",
                  py::arg("run_dir") = py::none(), py::arg("netns_dir") = py::none(),
                  py::arg("etc_netns_dir") = py::none(), py::arg("private_subnet") = py::none(),
                  py::arg("allow_simulation") = false, kOpenDoc)
      .def_property_readonly(
          "backend", [](const Manager& mgr) { return str(to_string(mgr.backend())); },
          "\"linux\" or \"simulation\".")
      .def_property_readonly(
          "run_dir", [](const Manager& mgr) { return mgr.options().run_dir; },
          "The state directory as given (empty: the backend's default).")
      .def(
          "create",
          [](Manager& mgr, const NamespaceConfig& config) { return unwrap(mgr.create(config)); },
          py::arg("config"), ReleaseGil(),
          "Validates config, reserves its name and creates the namespace; on failure nothing is "
          "left behind.")
      .def("exists", &Manager::exists, py::arg("name"), ReleaseGil())
      .def(
          "info", [](Manager& mgr, const std::string& name) { return unwrap(mgr.info(name)); },
          py::arg("name"), ReleaseGil())
      .def(
          "stats", [](Manager& mgr, const std::string& name) { return unwrap(mgr.stats(name)); },
          py::arg("name"), ReleaseGil())
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
          "create_network",
          [](Manager& mgr, const std::string& name, const std::string& subnet, bool nat,
             bool host_access) {
            NetworkConfig config;
            config.name = name;
            config.subnet = unwrap(IpPrefix::parse(subnet));
            config.nat = nat;
            config.host_access = host_access;
            return unwrap(mgr.create_network(config));
          },
          py::arg("name"), py::arg("subnet"), py::arg("nat") = false,
          py::arg("host_access") = false, ReleaseGil(),
          "A bridged network (subnet like \"10.50.0.0/24\") for NamespaceConfig.bridged.")
      .def("list_networks", &Manager::list_networks, ReleaseGil())
      .def(
          "remove_network",
          [](Manager& mgr, const std::string& name) { unwrap(mgr.remove_network(name)); },
          py::arg("name"), ReleaseGil(), "Refused while a namespace uses the network.");
}

}  // namespace

PYBIND11_MODULE(_netcell, m) {
  m.doc() = "netcell's lifecycle API (the extension behind the netcell package).";
  bind_error_codes(m);
  bind_configs(m);
  bind_results(m);
  bind_manager(m);
}
