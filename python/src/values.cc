// The value types: configs (types.h) and what the manager reports (infos, stats, networks).
#include "binding.h"

namespace netcell::python {

namespace {

void bind_interface_config(py::module_& m) {
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
           py::arg("gateway") = py::none(), py::arg("mtu") = 0,
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
      .def_readwrite("mtu", &InterfaceConfig::mtu, "68..65535; 0: the backend's default (1500; rootless: 65520).");
  dataclass_like(interface, {"name", "ip", "prefix_len", "gateway", "mtu"});
}

void bind_port_forward(py::module_& m) {
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
}

void bind_namespace_config(py::module_& m) {
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
                     "An EgressPolicy (a copy), or None: everything the mode allows.")
      .def_readwrite("ipv6", &NamespaceConfig::ipv6,
                     "Private: dual stack where the host has IPv6 (False: IPv4 only).");
  dataclass_like(config, {"name", "mode", "pid", "network", "interface", "port_forwards", "dns",
                          "egress_bps", "ingress_bps", "adopt_netns_of", "egress"});
}

void bind_interface_info(py::module_& m) {
  py::class_<InterfaceInfo> interface(m, "InterfaceInfo", "An interface inside a namespace.");
  interface.def_readonly("name", &InterfaceInfo::name, "Its name inside the namespace.")
      .def_property_readonly(
          "addresses", [](const InterfaceInfo& i) { return py_interfaces(i.addresses); },
          "ipaddress.IPv4Interface / IPv6Interface objects (address with prefix).")
      .def_readonly("mtu", &InterfaceInfo::mtu, "Its MTU.");
  dataclass_like(interface, {"name", "addresses", "mtu"});
}

void bind_namespace_info(py::module_& m) {
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
          "Its own address: the first of its first interface other than lo, or None.")
      .def_property_readonly(
          "address6",
          [](const NamespaceInfo& i) {
            auto v6 = ipv6_address(i);
            return py_optional_address(v6 ? std::optional<IpAddress>(v6->address) : std::nullopt);
          },
          "Dual stack: its own IPv6 address, else None.")
      .def_property_readonly(
          "gateway6", [](const NamespaceInfo& i) { return py_optional_address(i.gateway6); },
          "Dual stack: the IPv6 default route's gateway (the host end), else None.")
      .def_property_readonly(
          "ipv4_only", [](const NamespaceInfo& i) { return optional_str(i.ipv4_only); },
          "A private or bridged namespace without IPv6: why (\"--no-ipv6\", ...), else None.");
  dataclass_like(info, {"name", "mode", "backend", "enforced", "owner_pid", "network", "netns_path",
                        "host_interface", "interfaces", "gateway", "dns", "port_forwards",
                        "created_unix_ms", "egress_bps", "ingress_bps", "adopted_from_pid",
                        "topology", "egress", "upstream_dns"});
}

void bind_interface_stats(py::module_& m) {
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
}

void bind_namespace_stats(py::module_& m) {
  py::class_<NamespaceStats> nstats(m, "NamespaceStats", "A namespace's interface counters.");
  nstats.def_readonly("name", &NamespaceStats::name, "The namespace.")
      .def_readonly("interfaces", &NamespaceStats::interfaces, "A list of InterfaceStats.")
      .def_readonly("total", &NamespaceStats::total, "The sum over interfaces.");
  dataclass_like(nstats, {"name", "interfaces", "total"});
}

void bind_network_info(py::module_& m) {
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
      .def_property_readonly(
          "subnet6",
          [](const NetworkInfo& n) -> py::object {
            return n.subnet6 ? py_network(*n.subnet6) : py::none();
          },
          "Its IPv6 prefix (an ipaddress network): the private pool's, or a dual-stack bridged "
          "network's; None when it has none.")
      .def_property_readonly(
          "gateway6", [](const NetworkInfo& n) { return py_optional_address(n.gateway6); },
          "Dual-stack bridged: the bridge's IPv6 address, else None.")
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
                           "created_unix_ms", "topology", "subnet6", "gateway6"});
}

void bind_service_status(py::module_& m) {
  py::class_<ServiceStatus> service(m, "ServiceStatus",
                                    "The host service (netcell-service) of a run dir.");
  service.def_readonly("running", &ServiceStatus::running, "Whether it runs.")
      .def_readonly("pid", &ServiceStatus::pid, "Its pid; 0 when there is no record.")
      .def_readonly("port", &ServiceStatus::port, "The resolver's port.")
      .def_readonly("log_path", &ServiceStatus::log_path, "Where it writes its log.");
  dataclass_like(service, {"running", "pid", "port", "log_path"});
}

void bind_gc_report(py::module_& m) {
  py::class_<NamespaceManager::GcReport> gc(m, "GcReport", "What gc() did.");
  gc.def_readonly("removed", &NamespaceManager::GcReport::removed,
                  "Records whose creation or owner was gone.")
      .def_readonly("errors", &NamespaceManager::GcReport::errors, "One line each.");
  dataclass_like(gc, {"removed", "errors"});
}

}  // namespace

void bind_configs(py::module_& m) {
  bind_interface_config(m);
  bind_port_forward(m);
  bind_namespace_config(m);
}

void bind_results(py::module_& m) {
  bind_interface_info(m);
  bind_namespace_info(m);
  bind_interface_stats(m);
  bind_namespace_stats(m);
  bind_network_info(m);
  bind_service_status(m);
  bind_gc_report(m);
}

}  // namespace netcell::python
