// Topology files: parsing and validation (yaml-cpp). `up` and `down` are in topology.cc.
#include <sys/stat.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>

#include "core/files.h"
#include "core/ipam.h"
#include "core/validate.h"
#include "netcell/topology.h"

namespace netcell {
namespace {

constexpr std::size_t kMaxTopologyBytes = 1 << 20;

// FNV-1a, 64 bits, as hex: a stable digest of a declaration (not a security boundary: it only
// tells whether the file changed).
std::string digest_of(const std::string& text) {
  std::uint64_t h = 14695981039346656037ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char out[17];
  std::snprintf(out, sizeof out, "%016llx", static_cast<unsigned long long>(h));
  return out;
}

std::string file_stem(const std::string& path) {
  std::string base = std::filesystem::path(path).filename().string();
  auto dot = base.find('.');
  return dot == std::string::npos ? base : base.substr(0, dot);
}

// ---- parsing ---------------------------------------------------------------------------------

class Parser {
 public:
  explicit Parser(std::string file) : file_(std::move(file)) {}

  // A policy file: the egress: block of a topology file's namespace, on its own.
  std::optional<EgressPolicy> run_policy(std::string_view text) {
    YAML::Node root;
    try {
      root = YAML::Load(std::string(text));
      TopologyNamespace ns;
      ns.config.mode = IsolationMode::kPrivate;
      if (!root.IsMap()) {
        add(root, "", "a policy file is a mapping {default, allow, deny, dns}");
      } else {
        parse_egress(root, "egress", ns);
      }
      if (errors_.empty()) return ns.config.egress;
    } catch (const YAML::Exception& e) {
      add(e.mark.line + 1, "", "invalid YAML: " + e.msg);
    }
    return std::nullopt;
  }
  const std::vector<TopologyError>& errors() const { return errors_; }

  TopologyParse run(std::string_view text) {
    TopologyParse out;
    YAML::Node root;
    try {
      root = YAML::Load(std::string(text));
    } catch (const YAML::Exception& e) {
      add(e.mark.line + 1, "", "invalid YAML: " + e.msg);
      out.errors = std::move(errors_);
      return out;
    }
    try {
      parse_root(root);
    } catch (const YAML::Exception& e) {
      add(e.mark.line + 1, "", "invalid YAML: " + e.msg);
    }
    if (errors_.empty()) {
      out.topology = std::move(topology_);
    }
    out.errors = std::move(errors_);
    return out;
  }

 private:
  struct Known {
    std::set<std::string> devices;  // lo, eth0, link ends
  };

  void add(int line, std::string field, std::string message) {
    errors_.push_back({file_, std::max(line, 0), std::move(field), std::move(message)});
  }
  void add(const YAML::Node& node, std::string field, std::string message) {
    add(node.Mark().line + 1, std::move(field), std::move(message));
  }

  // A scalar's text; an error (and nullopt) for maps, lists and null.
  std::optional<std::string> scalar(const YAML::Node& node, const std::string& field) {
    if (!node.IsScalar()) {
      add(node, field, "expected a single value");
      return std::nullopt;
    }
    return node.Scalar();
  }

  std::optional<bool> boolean(const YAML::Node& node, const std::string& field) {
    auto text = scalar(node, field);
    if (!text) return std::nullopt;
    bool value = false;
    if (!YAML::convert<bool>::decode(node, value)) {
      add(node, field, "expected true or false, got '" + *text + "'");
      return std::nullopt;
    }
    return value;
  }

  template <typename T>
  std::optional<T> number(const YAML::Node& node, const std::string& field, T lo, T hi) {
    auto text = scalar(node, field);
    if (!text) return std::nullopt;
    T value{};
    auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
    if (ec != std::errc() || end != text->data() + text->size() || value < lo || value > hi) {
      add(node, field,
          "expected a number from " + std::to_string(lo) + " to " + std::to_string(hi) + ", got '" +
              *text + "'");
      return std::nullopt;
    }
    return value;
  }

  // Checks a mapping: every key a scalar, none repeated, each in `allowed` (empty = any).
  bool mapping(const YAML::Node& node, const std::string& field,
               std::initializer_list<const char*> allowed) {
    if (!node.IsMap()) {
      add(node, field, "expected a mapping (key: value)");
      return false;
    }
    std::set<std::string> seen;
    for (auto it = node.begin(); it != node.end(); ++it) {
      if (!it->first.IsScalar()) {
        add(it->first, field, "keys must be plain names");
        continue;
      }
      const std::string& key = it->first.Scalar();
      if (!seen.insert(key).second) add(it->first, join(field, key), "duplicate key");
      if (allowed.size() != 0 &&
          std::none_of(allowed.begin(), allowed.end(), [&](const char* a) { return key == a; })) {
        std::string list;
        for (const char* a : allowed) list += std::string(list.empty() ? "" : ", ") + a;
        add(it->first, join(field, key), "unknown key (expected one of: " + list + ")");
      }
    }
    return true;
  }

  bool sequence(const YAML::Node& node, const std::string& field) {
    if (!node.IsSequence()) {
      add(node, field, "expected a list");
      return false;
    }
    return true;
  }

  static std::string join(const std::string& a, const std::string& b) {
    return a.empty() ? b : a + "." + b;
  }

  void parse_root(const YAML::Node& root) {
    if (!root.IsDefined() || root.IsNull()) {
      add(1, "",
          "the file is empty (expected namespaces:, and optionally name:, networks:, links:)");
      return;
    }
    if (!mapping(root, "", {"name", "networks", "namespaces", "links"})) return;
    topology_.source = file_;
    if (auto n = root["name"]) {
      if (auto text = scalar(n, "name")) {
        topology_.name = *text;
        if (auto id = NamespaceId::parse(*text); !id) add(n, "name", id.error().message());
      }
    } else {
      topology_.name = file_stem(file_);
      if (auto id = NamespaceId::parse(topology_.name); !id) {
        add(1, "name",
            "the file name does not make a valid topology name ('" + topology_.name +
                "'); set name:");
      }
    }
    if (auto nets = root["networks"]; nets && !nets.IsNull()) parse_networks(nets);
    auto spaces = root["namespaces"];
    if (!spaces || spaces.IsNull()) {
      add(1, "namespaces", "missing: a topology declares at least one namespace");
    } else {
      parse_namespaces(spaces);
    }
    if (auto links = root["links"]; links && !links.IsNull()) parse_links(links);
    check_devices();
    compute_digests();
  }

  void parse_networks(const YAML::Node& nets) {
    if (!mapping(nets, "networks", {})) return;
    std::vector<std::pair<Subnet, std::string>> subnets;
    for (auto it = nets.begin(); it != nets.end(); ++it) {
      if (!it->first.IsScalar()) continue;
      std::string name = it->first.Scalar();
      std::string field = "networks." + name;
      TopologyNetwork net;
      net.line = it->first.Mark().line + 1;
      net.config.name = name;
      if (auto id = NamespaceId::parse(name); !id) {
        add(it->first, field, "invalid network name: " + id.error().message());
      } else if (name == "private") {
        add(it->first, field, "'private' is the implicit network of private namespaces");
      }
      YAML::Node spec = it->second;
      if (!mapping(spec, field, {"subnet", "subnet6", "nat", "host_access"})) continue;
      if (auto s = spec["subnet"]) {
        if (auto text = scalar(s, field + ".subnet")) {
          auto subnet = Subnet::parse(*text);
          if (!subnet) {
            add(s, field + ".subnet", subnet.error().message());
          } else if (!subnet->base().is_v4()) {
            add(s, field + ".subnet", "IPv6 networks are not supported yet");
          } else {
            for (const auto& [other, other_name] : subnets) {
              if (subnet->overlaps(other)) {
                add(s, field + ".subnet",
                    subnet->to_string() + " overlaps network '" + other_name + "' (" +
                        other.to_string() + ")");
              }
            }
            subnets.emplace_back(*subnet, name);
            net.config.subnet = IpPrefix{subnet->base(), subnet->prefix_len()};
          }
        }
      } else {
        add(spec, field + ".subnet", "missing: a network needs a subnet (e.g. 10.50.0.0/24)");
      }
      // Dual stack: the rest of its checks (length, size, overlaps) are network create's.
      if (auto s6 = spec["subnet6"]) {
        if (auto text = scalar(s6, field + ".subnet6")) {
          auto subnet6 = Subnet::parse(*text);
          if (!subnet6) {
            add(s6, field + ".subnet6", subnet6.error().message());
          } else if (subnet6->base().is_v4()) {
            add(s6, field + ".subnet6", "not an IPv6 prefix (subnet takes the IPv4 one)");
          } else {
            net.config.subnet6 = IpPrefix{subnet6->base(), subnet6->prefix_len()};
          }
        }
      }
      if (auto n = spec["nat"]) net.config.nat = boolean(n, field + ".nat").value_or(false);
      if (auto h = spec["host_access"]) {
        net.config.host_access = boolean(h, field + ".host_access").value_or(false);
      }
      net.config.topology.name = topology_.name;
      network_nodes_[name] = spec;
      topology_.networks.push_back(std::move(net));
    }
  }

  const TopologyNetwork* network(const std::string& name) const {
    for (const auto& n : topology_.networks) {
      if (n.config.name == name) return &n;
    }
    return nullptr;
  }

  void parse_namespaces(const YAML::Node& spaces) {
    if (!mapping(spaces, "namespaces", {})) return;
    if (spaces.size() == 0) add(spaces, "namespaces", "a topology declares at least one namespace");
    for (auto it = spaces.begin(); it != spaces.end(); ++it) {
      if (!it->first.IsScalar()) continue;
      parse_namespace(it->first, it->second);
    }
  }

  void parse_namespace(const YAML::Node& key, const YAML::Node& spec) {
    std::string name = key.Scalar();
    std::string field = "namespaces." + name;
    TopologyNamespace ns;
    ns.line = key.Mark().line + 1;
    ns.config.name = name;
    ns.config.topology.name = topology_.name;
    namespace_nodes_[name] = spec;
    bool name_ok = true;
    if (auto id = NamespaceId::parse(name); !id) {
      add(key, field, "invalid namespace name: " + id.error().message());
      name_ok = false;
    }
    YAML::Node body = spec.IsNull() ? YAML::Node(YAML::NodeType::Map) : spec;
    if (!mapping(body, field,
                 {"mode", "network", "ip", "gateway", "mtu", "dns", "publish", "rate", "egress",
                  "forwarding", "sysctls", "addresses", "routes", "commands"})) {
      return;
    }
    std::size_t errors_before = errors_.size();
    if (auto m = body["mode"]) {
      if (auto text = scalar(m, field + ".mode")) {
        auto mode = parse_isolation_mode(*text);
        if (!mode) {
          add(m, field + ".mode", mode.error().message());
        } else {
          ns.config.mode = *mode;
        }
      }
    }
    bool networked =
        ns.config.mode == IsolationMode::kPrivate || ns.config.mode == IsolationMode::kBridged;
    if (auto n = body["network"]) {
      if (auto text = scalar(n, field + ".network")) {
        ns.config.network = *text;
        if (ns.config.mode != IsolationMode::kBridged) {
          add(n, field + ".network", "only bridged namespaces join a network (mode: bridged)");
        } else if (!network(*text)) {
          add(n, field + ".network", "network '" + *text + "' is not declared under networks:");
        }
      }
    } else if (ns.config.mode == IsolationMode::kBridged) {
      add(body, field + ".network", "missing: a bridged namespace needs a network");
    }
    auto need_networked = [&](const YAML::Node& node, const std::string& f) {
      if (networked) return true;
      add(node, f, std::string(to_string(ns.config.mode)) + " mode has no interface to configure");
      return false;
    };
    if (auto ip = body["ip"]; ip && need_networked(ip, field + ".ip")) {
      if (auto text = scalar(ip, field + ".ip")) {
        auto prefix = IpPrefix::parse(*text);
        if (!prefix) {
          add(ip, field + ".ip", prefix.error().message());
        } else {
          InterfaceConfig iface;
          iface.ip = prefix->address;
          iface.prefix_len = prefix->prefix_len;
          ns.config.interface = iface;
          const TopologyNetwork* net = network(ns.config.network);
          if (net) {
            auto subnet = Subnet::from(net->config.subnet);
            if (subnet && !subnet->contains(prefix->address)) {
              add(ip, field + ".ip",
                  prefix->address.to_string() + " is outside network '" + net->config.name + "' (" +
                      subnet->to_string() + ")");
            }
          }
        }
      }
    }
    auto iface = [&]() -> InterfaceConfig& {
      if (!ns.config.interface) {
        ns.config.interface = InterfaceConfig{};
        ns.config.interface->prefix_len = 0;  // "pick an address"
      }
      return *ns.config.interface;
    };
    if (auto gw = body["gateway"]; gw && need_networked(gw, field + ".gateway")) {
      if (auto text = scalar(gw, field + ".gateway")) {
        auto address = IpAddress::parse(*text);
        if (!address) {
          add(gw, field + ".gateway", address.error().message());
        } else if (!body["ip"]) {
          add(gw, field + ".gateway", "a gateway needs ip: as well");
        } else {
          iface().gateway = *address;
        }
      }
    }
    if (auto mtu = body["mtu"]; mtu && need_networked(mtu, field + ".mtu")) {
      if (auto value = number<std::uint32_t>(mtu, field + ".mtu", 68, 65535)) {
        if (!body["ip"]) {
          add(mtu, field + ".mtu", "set ip: too when setting mtu:");
        } else {
          iface().mtu = *value;
        }
      }
    }
    if (auto dns = body["dns"]; dns && sequence(dns, field + ".dns")) {
      for (const auto& d : dns) {
        if (auto text = scalar(d, field + ".dns")) {
          auto address = IpAddress::parse(*text);
          if (!address) {
            add(d, field + ".dns", address.error().message());
          } else {
            ns.config.dns.push_back(*address);
          }
        }
      }
    }
    if (auto publish = body["publish"]; publish && sequence(publish, field + ".publish")) {
      for (const auto& p : publish) {
        if (auto text = scalar(p, field + ".publish")) {
          auto forward = PortForward::parse(*text);
          if (!forward) {
            add(p, field + ".publish", forward.error().message());
            continue;
          }
          std::string claim = std::string(to_string(forward->protocol)) + ":" +
                              (forward->host_ip ? forward->host_ip->to_string() : "*") + ":" +
                              std::to_string(forward->host_port);
          auto [at, fresh] = published_.emplace(
              std::to_string(forward->host_port) + "/" + std::string(to_string(forward->protocol)),
              name);
          if (!fresh) {
            add(p, field + ".publish",
                "host port " + at->first + " is already published by namespace '" + at->second +
                    "'");
          }
          ns.config.port_forwards.push_back(*forward);
        }
      }
    }
    if (auto rate = body["rate"]; rate && need_networked(rate, field + ".rate")) {
      parse_namespace_rate(rate, field + ".rate", ns);
    }
    if (auto egress = body["egress"]) parse_egress(egress, field + ".egress", ns);
    if (auto fwd = body["forwarding"]) {
      if (auto on = boolean(fwd, field + ".forwarding")) {
        ns.extras.sysctls.push_back({"net.ipv4.ip_forward", *on ? "1" : "0"});
      }
    }
    if (auto sysctls = body["sysctls"]; sysctls && mapping(sysctls, field + ".sysctls", {})) {
      for (auto it = sysctls.begin(); it != sysctls.end(); ++it) {
        if (!it->first.IsScalar()) continue;
        std::string sysctl = it->first.Scalar();
        std::string f = field + ".sysctls." + sysctl;
        if (!valid_sysctl_key(sysctl)) {
          add(it->first, f,
              "only network sysctls (net.*) with letters, digits, '_', '-' and '.' are allowed");
          continue;
        }
        if (auto value = scalar(it->second, f)) {
          if (value->empty() || value->size() > 64 ||
              value->find_first_of("\n\r\t/") != std::string::npos) {
            add(it->second, f, "invalid sysctl value");
            continue;
          }
          ns.extras.sysctls.push_back({sysctl, *value});
        }
      }
    }
    if (auto addrs = body["addresses"]; addrs && sequence(addrs, field + ".addresses")) {
      if (ns.config.mode == IsolationMode::kShared)
        add(addrs, field + ".addresses",
            "shared mode is the host's network; netcell does not change it");
      for (const auto& a : addrs) {
        std::string f = field + ".addresses";
        if (!mapping(a, f, {"device", "address"})) continue;
        ExtraAddress extra;
        if (!a["device"] || !a["address"]) {
          add(a, f, "each address needs device: and address:");
          continue;
        }
        auto dev = scalar(a["device"], f + ".device");
        auto text = scalar(a["address"], f + ".address");
        if (!dev || !text) continue;
        if (auto valid = validate_interface_name(*dev); !valid) {
          add(a["device"], f + ".device", valid.error().message());
          continue;
        }
        auto prefix = IpPrefix::parse(*text);
        if (!prefix) {
          add(a["address"], f + ".address", prefix.error().message());
          continue;
        }
        extra.device = *dev;
        extra.address = *prefix;
        device_refs_.push_back({name, *dev, a["device"].Mark().line + 1, f + ".device"});
        ns.extras.addresses.push_back(extra);
      }
    }
    if (auto routes = body["routes"]; routes && sequence(routes, field + ".routes")) {
      if (ns.config.mode == IsolationMode::kShared)
        add(routes, field + ".routes",
            "shared mode is the host's network; netcell does not change it");
      for (const auto& r : routes) parse_route(r, field + ".routes", name, ns);
    }
    if (auto commands = body["commands"]; commands && sequence(commands, field + ".commands")) {
      for (const auto& c : commands) {
        TopologyCommand command;
        if (c.IsScalar()) {
          if (c.Scalar().empty()) {
            add(c, field + ".commands", "empty command");
            continue;
          }
          command.argv = {"/bin/sh", "-c", c.Scalar()};
        } else if (c.IsSequence() && c.size() > 0) {
          for (const auto& arg : c) {
            if (auto text = scalar(arg, field + ".commands")) command.argv.push_back(*text);
          }
          if (command.argv.empty() || command.argv[0].empty()) {
            add(c, field + ".commands", "empty command");
            continue;
          }
        } else {
          add(c, field + ".commands", "a command is a string (run by /bin/sh -c) or a list");
          continue;
        }
        ns.commands.push_back(std::move(command));
      }
    }
    if (name_ok && errors_.size() == errors_before) {
      if (auto valid = validate_config(ns.config); !valid) {
        add(key, field, valid.error().message());
      }
    }
    topology_.namespaces.push_back(std::move(ns));
  }

  // egress: {default: allow|deny, allow: [RULE...], deny: [RULE...]}, rules as --allow takes
  // them; the default is deny when allow: is given, else allow (as on the command line).
  void parse_egress(const YAML::Node& node, const std::string& field, TopologyNamespace& ns) {
    if (ns.config.mode != IsolationMode::kPrivate && ns.config.mode != IsolationMode::kBridged) {
      add(node, field,
          "only private and bridged namespaces take an egress policy (mode: private or bridged)");
      return;
    }
    if (!mapping(node, field, {"default", "allow", "deny", "dns"})) return;
    EgressPolicy policy;
    policy.default_action = node["allow"] ? PolicyAction::kDeny : PolicyAction::kAllow;
    if (auto d = node["default"]) {
      if (auto text = scalar(d, field + ".default")) {
        auto action = parse_policy_action(*text);
        if (!action) {
          add(d, field + ".default", action.error().message());
        } else {
          policy.default_action = *action;
        }
      }
    }
    for (auto kind : {PolicyAction::kAllow, PolicyAction::kDeny}) {
      const std::string key(to_string(kind));
      auto list = node[key];
      if (!list || !sequence(list, field + "." + key)) continue;
      for (const auto& r : list) {
        if (auto text = scalar(r, field + "." + key)) {
          if (auto added = add_egress_entry(policy, kind, *text); !added) {
            add(r, field + "." + key, added.error().message());
          }
        }
      }
    }
    if (auto dns = node["dns"];
        dns && mapping(dns, field + ".dns", {"refuse", "min_ttl", "grace"})) {
      if (auto r = dns["refuse"]) {
        if (auto text = scalar(r, field + ".dns.refuse")) {
          if (auto refusal = parse_dns_refusal(*text); !refusal) {
            add(r, field + ".dns.refuse", refusal.error().message());
          } else {
            policy.refuse_with = *refusal;
          }
        }
      }
      for (auto [key, target] :
           {std::pair{"min_ttl", &policy.learn_min_ttl}, std::pair{"grace", &policy.learn_grace}}) {
        if (auto v = dns[key]) {
          if (auto text = scalar(v, field + ".dns." + key)) {
            if (auto seconds = parse_seconds(*text); !seconds) {
              add(v, field + ".dns." + key, seconds.error().message());
            } else {
              *target = *seconds;
            }
          }
        }
      }
    }
    if (auto valid = policy.validate(); !valid) {
      add(node, field, valid.error().message());
      return;
    }
    ns.config.egress = std::move(policy);
  }

  void parse_namespace_rate(const YAML::Node& rate, const std::string& field,
                            TopologyNamespace& ns) {
    if (rate.IsScalar()) {
      auto bps = rate_of(rate, field);
      ns.config.rate.egress_bps = bps;
      ns.config.rate.ingress_bps = bps;
    } else if (mapping(rate, field, {"egress", "ingress"})) {
      if (auto e = rate["egress"]) ns.config.rate.egress_bps = rate_of(e, field + ".egress");
      if (auto i = rate["ingress"]) ns.config.rate.ingress_bps = rate_of(i, field + ".ingress");
    }
  }

  std::optional<std::uint64_t> rate_of(const YAML::Node& node, const std::string& field) {
    auto text = scalar(node, field);
    if (!text) return std::nullopt;
    auto bps = parse_rate(*text);
    if (!bps) {
      add(node, field, bps.error().message());
      return std::nullopt;
    }
    return *bps;
  }

  static bool valid_sysctl_key(const std::string& key) {
    if (!key.starts_with("net.") || key.size() > 128 || key.ends_with(".")) return false;
    if (key.find("..") != std::string::npos) return false;
    return std::all_of(key.begin(), key.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
    });
  }

  void parse_route(const YAML::Node& r, const std::string& field, const std::string& ns_name,
                   TopologyNamespace& ns) {
    if (!mapping(r, field, {"to", "via", "device"})) return;
    StaticRoute route;
    auto to = r["to"];
    if (!to) {
      add(r, field + ".to", "missing: a route needs to: (a CIDR or default)");
      return;
    }
    auto text = scalar(to, field + ".to");
    if (!text) return;
    if (*text == "default") {
      route.destination = IpPrefix{IpAddress::v4(0), 0};
    } else {
      auto prefix = IpPrefix::parse(*text);
      if (!prefix) {
        add(to, field + ".to", prefix.error().message());
        return;
      }
      route.destination = *prefix;
    }
    if (auto via = r["via"]) {
      auto v = scalar(via, field + ".via");
      if (!v) return;
      auto address = IpAddress::parse(*v);
      if (!address) {
        add(via, field + ".via", address.error().message());
        return;
      }
      route.via = *address;
    }
    if (auto dev = r["device"]) {
      auto d = scalar(dev, field + ".device");
      if (!d) return;
      if (auto valid = validate_interface_name(*d); !valid) {
        add(dev, field + ".device", valid.error().message());
        return;
      }
      route.device = *d;
      device_refs_.push_back({ns_name, *d, dev.Mark().line + 1, field + ".device"});
    }
    if (!route.via && route.device.empty()) {
      add(r, field, "a route needs via:, device: or both");
      return;
    }
    ns.extras.routes.push_back(route);
  }

  TopologyNamespace* find_namespace(const std::string& name) {
    for (auto& n : topology_.namespaces) {
      if (n.config.name == name) return &n;
    }
    return nullptr;
  }

  std::optional<LinkEnd> parse_end(const YAML::Node& e, const std::string& field) {
    if (!mapping(e, field, {"namespace", "device", "address", "addresses"})) return std::nullopt;
    if (!e["namespace"] || !e["device"]) {
      add(e, field, "a link end needs namespace: and device:");
      return std::nullopt;
    }
    LinkEnd end;
    auto ns = scalar(e["namespace"], field + ".namespace");
    auto dev = scalar(e["device"], field + ".device");
    if (!ns || !dev) return std::nullopt;
    end.ns = *ns;
    end.device = *dev;
    bool ok = true;
    TopologyNamespace* target = find_namespace(*ns);
    if (!target) {
      add(e["namespace"], field + ".namespace",
          "namespace '" + *ns + "' is not declared under namespaces:");
      ok = false;
    } else if (target->config.mode == IsolationMode::kShared) {
      add(e["namespace"], field + ".namespace",
          "namespace '" + *ns + "' shares the host's network and cannot be linked");
      ok = false;
    }
    if (auto valid = validate_interface_name(*dev); !valid) {
      add(e["device"], field + ".device", valid.error().message());
      ok = false;
    } else if (*dev == "lo" || (*dev == "eth0" && target &&
                                (target->config.mode == IsolationMode::kPrivate ||
                                 target->config.mode == IsolationMode::kBridged))) {
      add(e["device"], field + ".device", "'" + *dev + "' is taken in namespace '" + *ns + "'");
      ok = false;
    } else if (target && !link_devices_[*ns].insert(*dev).second) {
      add(e["device"], field + ".device",
          "namespace '" + *ns + "' already has a link named '" + *dev + "'");
      ok = false;
    }
    auto add_address = [&](const YAML::Node& node, const std::string& f) {
      auto text = scalar(node, f);
      if (!text) {
        ok = false;
        return;
      }
      auto prefix = IpPrefix::parse(*text);
      if (!prefix) {
        add(node, f, prefix.error().message());
        ok = false;
        return;
      }
      end.addresses.push_back(*prefix);
    };
    if (auto a = e["address"]) add_address(a, field + ".address");
    if (auto list = e["addresses"]; list && sequence(list, field + ".addresses")) {
      for (const auto& a : list) add_address(a, field + ".addresses");
    }
    if (!ok) return std::nullopt;
    return end;
  }

  void parse_links(const YAML::Node& links) {
    if (!sequence(links, "links")) return;
    int index = 0;
    for (const auto& l : links) {
      std::string field = "links[" + std::to_string(index++) + "]";
      if (!mapping(l, field, {"ends", "mtu", "rate"})) continue;
      auto ends = l["ends"];
      if (!ends || !ends.IsSequence() || ends.size() != 2) {
        add(ends ? ends : YAML::Node(l), field + ".ends",
            "a link needs ends: with exactly two ends");
        continue;
      }
      auto a = parse_end(ends[0], field + ".ends[0]");
      auto b = parse_end(ends[1], field + ".ends[1]");
      LinkConfig link;
      if (auto mtu = l["mtu"]) {
        link.mtu = number<std::uint32_t>(mtu, field + ".mtu", 68, 65535).value_or(0);
      }
      if (auto rate = l["rate"]) {
        if (rate.IsScalar()) {
          link.a_to_b_bps = link.b_to_a_bps = rate_of(rate, field + ".rate").value_or(0);
        } else if (mapping(rate, field + ".rate", {"a_to_b", "b_to_a"})) {
          if (auto x = rate["a_to_b"]) {
            link.a_to_b_bps = rate_of(x, field + ".rate.a_to_b").value_or(0);
          }
          if (auto x = rate["b_to_a"]) {
            link.b_to_a_bps = rate_of(x, field + ".rate.b_to_a").value_or(0);
          }
        }
      }
      if (!a || !b) continue;
      if (a->ns == b->ns) {
        add(ends, field + ".ends", "both ends are in namespace '" + a->ns + "'");
        continue;
      }
      link.a = *a;
      link.b = *b;
      link_nodes_.push_back(l);
      topology_.links.push_back(std::move(link));
    }
  }

  // Devices named by addresses and routes must exist in their namespace: lo, eth0 (private and
  // bridged) or one of its link ends.
  void check_devices() {
    for (const auto& ref : device_refs_) {
      const TopologyNamespace* ns = find_namespace(ref.ns);
      if (!ns) continue;
      bool networked =
          ns->config.mode == IsolationMode::kPrivate || ns->config.mode == IsolationMode::kBridged;
      bool known = ref.device == "lo" || (networked && ref.device == "eth0") ||
                   link_devices_[ref.ns].count(ref.device) != 0;
      if (!known) {
        add(ref.line, ref.field,
            "namespace '" + ref.ns + "' has no device '" + ref.device +
                "' (lo, eth0 in private and bridged mode, or a link end)");
      }
    }
  }

  // A namespace's digest covers its own declaration, the network it joins and every link that
  // touches it, so a change to any of them replaces it.
  void compute_digests() {
    if (!errors_.empty()) return;
    for (auto& net : topology_.networks) {
      net.config.topology.digest = digest_of(YAML::Dump(network_nodes_[net.config.name]));
    }
    for (auto& ns : topology_.namespaces) {
      std::string text = YAML::Dump(namespace_nodes_[ns.config.name]);
      if (!ns.config.network.empty()) {
        text += "\nnetwork:" + YAML::Dump(network_nodes_[ns.config.network]);
      }
      for (std::size_t i = 0; i < topology_.links.size(); ++i) {
        const auto& link = topology_.links[i];
        if (link.a.ns == ns.config.name || link.b.ns == ns.config.name) {
          text += "\nlink:" + YAML::Dump(link_nodes_[i]);
        }
      }
      ns.config.topology.digest = digest_of(text);
    }
  }

  struct DeviceRef {
    std::string ns;
    std::string device;
    int line = 0;
    std::string field;
  };

  std::string file_;
  Topology topology_;
  std::vector<TopologyError> errors_;
  std::map<std::string, YAML::Node> network_nodes_;
  std::map<std::string, YAML::Node> namespace_nodes_;
  std::vector<YAML::Node> link_nodes_;
  std::map<std::string, std::set<std::string>> link_devices_;
  std::vector<DeviceRef> device_refs_;
  std::map<std::string, std::string> published_;
};

}  // namespace

std::string TopologyError::to_string() const {
  std::string out = file;
  if (line > 0) out += ':' + std::to_string(line);
  out += ": ";
  if (!field.empty()) out += field + ": ";
  return out + message;
}

Result<EgressPolicy> parse_policy_file(std::string_view yaml, const std::string& file) {
  Parser parser(file);
  auto policy = parser.run_policy(yaml);
  if (policy) return std::move(*policy);
  const auto& errors = parser.errors();
  return fail(ErrorCode::kInvalidArgument,
              errors.empty() ? file + ": not a policy" : errors.front().to_string());
}

TopologyParse parse_topology(std::string_view yaml, const std::string& file) {
  if (yaml.size() > kMaxTopologyBytes) {
    return {std::nullopt, {{file, 0, "", "the file is larger than 1 MiB"}}};
  }
  return Parser(file).run(yaml);
}

TopologyParse load_topology(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return {std::nullopt, {{path, 0, "", std::string("cannot read: ") + std::strerror(errno)}}};
  }
  if (!S_ISREG(st.st_mode)) return {std::nullopt, {{path, 0, "", "not a regular file"}}};
  auto text = read_file(path, kMaxTopologyBytes);
  if (!text) return {std::nullopt, {{path, 0, "", text.error().message()}}};
  return parse_topology(*text, path);
}

Result<EgressPolicy> load_policy_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return fail(ErrorCode::kInvalidArgument, path + ": cannot read: " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) return fail(ErrorCode::kInvalidArgument, path + ": not a regular file");
  auto text = read_file(path, kMaxTopologyBytes);
  if (!text) return fail(std::move(text).error().with_context(path));
  return parse_policy_file(*text, path);
}

}  // namespace netcell
