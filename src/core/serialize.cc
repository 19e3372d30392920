#include "core/serialize.h"

#include <limits>

namespace netcell {
namespace {

using nlohmann::json;

Error corrupt(const std::string& what) {
  return Error(ErrorCode::kCorrupt, what);
}

Result<const json*> field(const json& j, const char* key, json::value_t type) {
  if (!j.is_object()) return fail(corrupt("expected an object"));
  auto it = j.find(key);
  if (it == j.end()) return fail(corrupt(std::string("missing field '") + key + "'"));
  bool ok =
      it->type() == type || (type == json::value_t::number_integer && it->is_number_unsigned());
  if (!ok) return fail(corrupt(std::string("field '") + key + "' has the wrong type"));
  return &*it;
}

Result<std::string> string_field(const json& j, const char* key) {
  auto f = field(j, key, json::value_t::string);
  if (!f) return fail(f.error());
  return (*f)->get<std::string>();
}

Result<std::int64_t> int_field(const json& j, const char* key, std::int64_t lo, std::int64_t hi) {
  auto f = field(j, key, json::value_t::number_integer);
  if (!f) return fail(f.error());
  if ((*f)->is_number_unsigned() && (*f)->get<std::uint64_t>() > static_cast<std::uint64_t>(hi)) {
    return fail(corrupt(std::string("field '") + key + "' is out of range"));
  }
  auto v = (*f)->get<std::int64_t>();
  if (v < lo || v > hi) return fail(corrupt(std::string("field '") + key + "' is out of range"));
  return v;
}

Result<IpAddress> address_from(const json& j) {
  if (!j.is_string()) return fail(corrupt("address is not a string"));
  auto a = IpAddress::parse(j.get<std::string>());
  if (!a) return fail(corrupt(a.error().message()));
  return *a;
}

Result<PortForward> forward_from(const json& j) {
  auto text = string_field(j, "spec");
  if (!text) return fail(text.error());
  auto f = PortForward::parse(*text);
  if (!f) return fail(corrupt(f.error().message()));
  return *f;
}

Result<InterfaceInfo> interface_from(const json& j) {
  InterfaceInfo out;
  auto name = string_field(j, "name");
  if (!name) return fail(name.error());
  if (auto valid = validate_interface_name(*name); !valid)
    return fail(corrupt(valid.error().message()));
  out.name = *name;
  auto mtu = int_field(j, "mtu", 0, std::numeric_limits<std::uint32_t>::max());
  if (!mtu) return fail(mtu.error());
  out.mtu = static_cast<std::uint32_t>(*mtu);
  auto addrs = field(j, "addresses", json::value_t::array);
  if (!addrs) return fail(addrs.error());
  for (const auto& a : **addrs) {
    if (!a.is_string()) return fail(corrupt("address is not a string"));
    auto p = IpPrefix::parse(a.get<std::string>());
    if (!p) return fail(corrupt(p.error().message()));
    out.addresses.push_back(*p);
  }
  // Optional: where the backend knows it.
  if (j.contains("mac")) {
    auto mac = string_field(j, "mac");
    if (!mac) return fail(mac.error());
    if (auto valid = parse_mac(*mac); !valid) return fail(corrupt(valid.error().message()));
    out.mac = *mac;
  }
  return out;
}

json to_json(const RateLimit& rate) {
  auto bps = [](const std::optional<std::uint64_t>& v) { return v ? json(*v) : json(nullptr); };
  return json{{"egress_bps", bps(rate.egress_bps)}, {"ingress_bps", bps(rate.ingress_bps)}};
}

// "rate" may be missing (records written before netcell had rate limits: no limit); when present
// both directions must be there, each null or a rate validate_rate accepts.
Result<RateLimit> rate_from(const json& j) {
  auto it = j.find("rate");
  if (it == j.end()) return RateLimit{};
  if (!it->is_object()) return fail(corrupt("field 'rate' has the wrong type"));
  RateLimit rate;
  for (auto [key, target] :
       {std::pair{"egress_bps", &rate.egress_bps}, std::pair{"ingress_bps", &rate.ingress_bps}}) {
    auto value = it->find(key);
    if (value == it->end()) return fail(corrupt(std::string("missing field 'rate.") + key + "'"));
    if (value->is_null()) continue;
    auto bps = int_field(*it, key, static_cast<std::int64_t>(kMinRateBps),
                         static_cast<std::int64_t>(kMaxRateBps));
    if (!bps) return fail(bps.error().with_context("rate"));
    *target = static_cast<std::uint64_t>(*bps);
  }
  return rate;
}

}  // namespace

json to_json(const EgressPolicy& policy) {
  json allow = json::array(), deny = json::array();
  for (const auto& rule : policy.rules) {
    (rule.action == PolicyAction::kAllow ? allow : deny).push_back(rule.to_string());
  }
  for (const auto& rule : policy.domains) {
    (rule.action == PolicyAction::kAllow ? allow : deny).push_back(rule.to_string());
  }
  json j{
      {"default", std::string(to_string(policy.default_action))}, {"allow", allow}, {"deny", deny}};
  j["dns"] = json{{"refuse", std::string(to_string(policy.refuse_with))},
                  {"min_ttl", policy.learn_min_ttl},
                  {"grace", policy.learn_grace}};
  return j;
}

namespace {

// "egress" is optional (no policy); when present it is read back through the same parser as the
// CLI's rules, and must validate.
Result<std::optional<EgressPolicy>> egress_from(const json& j) {
  auto it = j.find("egress");
  if (it == j.end()) return std::optional<EgressPolicy>();
  return egress_policy_from_json(*it);
}

}  // namespace

Result<std::optional<EgressPolicy>> egress_policy_from_json(const json& policy_json) {
  const json* it = &policy_json;
  if (it->is_null()) return std::optional<EgressPolicy>();
  if (!it->is_object()) return fail(corrupt("field 'egress' has the wrong type"));
  EgressPolicy policy;
  auto def = it->find("default");
  if (def == it->end() || !def->is_string()) return fail(corrupt("field 'egress.default'"));
  auto action = parse_policy_action(def->get<std::string>());
  if (!action) return fail(corrupt(action.error().message()));
  policy.default_action = *action;
  for (auto kind : {PolicyAction::kAllow, PolicyAction::kDeny}) {
    auto list = it->find(std::string(to_string(kind)));
    if (list == it->end() || !list->is_array()) {
      return fail(corrupt("field 'egress." + std::string(to_string(kind)) + "'"));
    }
    for (const auto& text : *list) {
      if (!text.is_string()) return fail(corrupt("an egress rule is not a string"));
      auto added = add_egress_entry(policy, kind, text.get<std::string>());
      if (!added) return fail(corrupt(added.error().message()));
    }
  }
  // "dns" is optional (records from before domain rules have none: the defaults).
  if (auto dns = it->find("dns"); dns != it->end()) {
    if (!dns->is_object()) return fail(corrupt("field 'egress.dns' has the wrong type"));
    auto refuse = dns->find("refuse");
    if (refuse == dns->end() || !refuse->is_string()) {
      return fail(corrupt("field 'egress.dns.refuse'"));
    }
    auto refusal = parse_dns_refusal(refuse->get<std::string>());
    if (!refusal) return fail(corrupt(refusal.error().message()));
    policy.refuse_with = *refusal;
    for (auto [key, target] :
         {std::pair{"min_ttl", &policy.learn_min_ttl}, std::pair{"grace", &policy.learn_grace}}) {
      auto v = dns->find(key);
      if (v == dns->end() || !v->is_number_unsigned() ||
          v->get<std::uint64_t>() > kMaxLearnSeconds) {
        return fail(corrupt("field 'egress.dns." + std::string(key) + "'"));
      }
      *target = v->get<std::uint32_t>();
    }
  }
  if (auto valid = policy.validate(); !valid) return fail(corrupt(valid.error().message()));
  return std::optional<EgressPolicy>(std::move(policy));
}

namespace {

json to_json(const TopologyTag& tag) {
  return json{{"name", tag.name}, {"digest", tag.digest}};
}

// "topology" is optional: objects made outside a topology file have none.
Result<TopologyTag> topology_from(const json& j) {
  auto it = j.find("topology");
  if (it == j.end()) return TopologyTag{};
  TopologyTag tag;
  auto name = string_field(*it, "name");
  if (!name) return fail(name.error());
  if (auto id = NamespaceId::parse(*name); !id) return fail(corrupt(id.error().message()));
  auto digest = string_field(*it, "digest");
  if (!digest) return fail(digest.error());
  tag.name = *name;
  tag.digest = *digest;
  return tag;
}

// Optional: only attachments made by the CNI plugin have it.
Result<CniAttachment> cni_from(const json& j) {
  auto it = j.find("cni");
  if (it == j.end()) return CniAttachment{};
  CniAttachment cni;
  for (auto [key, out] :
       {std::pair{"network", &cni.network}, std::pair{"container_id", &cni.container_id},
        std::pair{"ifname", &cni.ifname}}) {
    auto value = string_field(*it, key);
    if (!value) return fail(value.error());
    *out = *value;
  }
  if (cni.container_id.empty()) return fail(corrupt("field 'cni' has no container id"));
  return cni;
}

}  // namespace

json to_json(const PortForward& f) {
  json j{{"spec", f.to_string()},
         {"host_port", f.host_port},
         {"port", f.container_port},
         {"protocol", std::string(to_string(f.protocol))}};
  if (f.host_ip) j["host_ip"] = f.host_ip->to_string();
  return j;
}

json to_json(const InterfaceInfo& iface) {
  json addrs = json::array();
  for (const auto& a : iface.addresses) addrs.push_back(a.to_string());
  json j{{"name", iface.name}, {"mtu", iface.mtu}, {"addresses", addrs}};
  if (!iface.mac.empty()) j["mac"] = iface.mac;
  return j;
}

json to_json(const NamespaceInfo& info) {
  json ifaces = json::array();
  for (const auto& i : info.interfaces) ifaces.push_back(to_json(i));
  json dns = json::array();
  for (const auto& d : info.dns) dns.push_back(d.to_string());
  json forwards = json::array();
  for (const auto& f : info.port_forwards) forwards.push_back(to_json(f));
  json j{{"name", info.name},
         {"mode", std::string(to_string(info.mode))},
         {"backend", std::string(to_string(info.backend))},
         {"enforced", info.enforced},
         {"owner_pid", info.owner_pid},
         {"network", info.network},
         {"netns_path", info.netns_path},
         {"host_interface", info.host_interface},
         {"interfaces", ifaces},
         {"gateway", info.gateway ? json(info.gateway->to_string()) : json(nullptr)},
         {"dns", dns},
         {"port_forwards", forwards},
         {"created_unix_ms", info.created_unix_ms},
         {"rate", to_json(info.rate)}};
  if (!info.topology.empty()) j["topology"] = to_json(info.topology);
  if (info.adopted_from_pid > 0) j["adopted_from_pid"] = info.adopted_from_pid;
  if (!info.adopted_netns_path.empty()) {
    j["adopted_netns_path"] = info.adopted_netns_path;
    j["adopted_netns_inode"] = info.adopted_netns_inode;
  }
  if (!info.cni.empty()) {
    j["cni"] = json{{"network", info.cni.network},
                    {"container_id", info.cni.container_id},
                    {"ifname", info.cni.ifname}};
  }
  if (info.egress) j["egress"] = to_json(*info.egress);
  if (!info.upstream_dns.empty()) {
    json upstream = json::array();
    for (const auto& d : info.upstream_dns) upstream.push_back(d.to_string());
    j["upstream_dns"] = upstream;
  }
  if (info.gateway6) j["gateway6"] = info.gateway6->to_string();
  if (!info.ipv4_only.empty()) j["ipv4_only"] = info.ipv4_only;
  return j;
}

json to_json(const InterfaceStats& s) {
  return json{{"name", s.name},
              {"rx_bytes", s.rx_bytes},
              {"tx_bytes", s.tx_bytes},
              {"rx_packets", s.rx_packets},
              {"tx_packets", s.tx_packets},
              {"rx_errors", s.rx_errors},
              {"tx_errors", s.tx_errors},
              {"rx_dropped", s.rx_dropped},
              {"tx_dropped", s.tx_dropped}};
}

json to_json(const NamespaceStats& stats) {
  json ifaces = json::array();
  for (const auto& i : stats.interfaces) ifaces.push_back(to_json(i));
  return json{{"name", stats.name},
              {"interface_count", stats.interface_count()},
              {"interfaces", ifaces},
              {"total", to_json(stats.total)}};
}

json to_json(const NetworkInfo& n) {
  json j{{"name", n.name},
         {"kind", n.bridged ? "bridged" : "private"},
         {"subnet", n.subnet.to_string()},
         {"gateway", n.gateway ? json(n.gateway->to_string()) : json(nullptr)},
         {"nat", n.nat},
         {"host_access", n.host_access},
         {"bridge", n.bridge},
         {"created_unix_ms", n.created_unix_ms}};
  if (!n.topology.empty()) j["topology"] = to_json(n.topology);
  if (n.remove_when_unused) j["remove_when_unused"] = true;
  if (n.subnet6) j["subnet6"] = n.subnet6->to_string();
  if (n.gateway6) j["gateway6"] = n.gateway6->to_string();
  return j;
}

Result<NetworkInfo> network_info_from_json(const json& j) {
  NetworkInfo n;
  auto name = string_field(j, "name");
  if (!name) return fail(name.error());
  if (auto id = NamespaceId::parse(*name); !id) return fail(corrupt(id.error().message()));
  n.name = *name;
  auto kind = string_field(j, "kind");
  if (!kind) return fail(kind.error());
  if (*kind != "bridged" && *kind != "private")
    return fail(corrupt("unknown kind '" + *kind + "'"));
  n.bridged = *kind == "bridged";
  auto subnet = string_field(j, "subnet");
  if (!subnet) return fail(subnet.error());
  auto prefix = IpPrefix::parse(*subnet);
  if (!prefix) return fail(corrupt(prefix.error().message()));
  n.subnet = *prefix;
  if (auto it = j.find("gateway"); it != j.end() && !it->is_null()) {
    auto gw = address_from(*it);
    if (!gw) return fail(gw.error());
    n.gateway = *gw;
  }
  for (auto [key, target] : {std::pair{"nat", &n.nat}, std::pair{"host_access", &n.host_access}}) {
    auto f = field(j, key, json::value_t::boolean);
    if (!f) return fail(f.error());
    *target = (*f)->get<bool>();
  }
  // Optional: only networks removed with their last namespace have it.
  if (j.contains("remove_when_unused")) {
    auto f = field(j, "remove_when_unused", json::value_t::boolean);
    if (!f) return fail(f.error());
    n.remove_when_unused = (*f)->get<bool>();
  }
  // Optional: the private network's IPv6 pool.
  if (j.contains("subnet6")) {
    auto text = string_field(j, "subnet6");
    if (!text) return fail(text.error());
    auto prefix6 = IpPrefix::parse(*text);
    if (!prefix6 || prefix6->address.is_v4()) return fail(corrupt("bad subnet6 '" + *text + "'"));
    n.subnet6 = *prefix6;
  }
  // Optional: a dual-stack bridged network's IPv6 gateway.
  if (auto it = j.find("gateway6"); it != j.end() && !it->is_null()) {
    auto gw = address_from(*it);
    if (!gw) return fail(gw.error());
    if (gw->is_v4()) return fail(corrupt("gateway6 is not an IPv6 address"));
    n.gateway6 = *gw;
  }
  auto bridge = string_field(j, "bridge");
  if (!bridge) return fail(bridge.error());
  if (n.bridged) {
    if (auto valid = validate_interface_name(*bridge); !valid) {
      return fail(corrupt(valid.error().message()));
    }
  }
  n.bridge = *bridge;
  auto created = int_field(j, "created_unix_ms", 0, std::numeric_limits<std::int64_t>::max());
  if (!created) return fail(created.error());
  n.created_unix_ms = *created;
  auto topology = topology_from(j);
  if (!topology) return fail(topology.error());
  n.topology = *topology;
  return n;
}

Result<NamespaceInfo> namespace_info_from_json(const json& j) {
  NamespaceInfo info;
  auto name = string_field(j, "name");
  if (!name) return fail(name.error());
  if (auto id = NamespaceId::parse(*name); !id) return fail(corrupt(id.error().message()));
  info.name = *name;
  auto mode_text = string_field(j, "mode");
  if (!mode_text) return fail(mode_text.error());
  auto mode = parse_isolation_mode(*mode_text);
  if (!mode) return fail(corrupt(mode.error().message()));
  info.mode = *mode;
  auto backend = string_field(j, "backend");
  if (!backend) return fail(backend.error());
  if (*backend == "linux") {
    info.backend = BackendKind::kLinux;
  } else if (*backend == "simulation") {
    info.backend = BackendKind::kSimulation;
  } else if (*backend == "rootless") {
    info.backend = BackendKind::kRootless;
  } else {
    return fail(corrupt("unknown backend '" + *backend + "'"));
  }
  auto enforced = field(j, "enforced", json::value_t::boolean);
  if (!enforced) return fail(enforced.error());
  info.enforced = (*enforced)->get<bool>();
  auto owner = int_field(j, "owner_pid", 0, std::numeric_limits<pid_t>::max());
  if (!owner) return fail(owner.error());
  info.owner_pid = static_cast<pid_t>(*owner);
  auto network = string_field(j, "network");
  if (!network) return fail(network.error());
  info.network = *network;
  auto path = string_field(j, "netns_path");
  if (!path) return fail(path.error());
  info.netns_path = *path;
  auto host_if = string_field(j, "host_interface");
  if (!host_if) return fail(host_if.error());
  if (!host_if->empty()) {
    if (auto valid = validate_interface_name(*host_if); !valid) {
      return fail(corrupt(valid.error().message()));
    }
  }
  info.host_interface = *host_if;
  auto ifaces = field(j, "interfaces", json::value_t::array);
  if (!ifaces) return fail(ifaces.error());
  for (const auto& i : **ifaces) {
    auto iface = interface_from(i);
    if (!iface) return fail(iface.error());
    info.interfaces.push_back(*iface);
  }
  if (auto it = j.find("gateway"); it != j.end() && !it->is_null()) {
    auto gw = address_from(*it);
    if (!gw) return fail(gw.error());
    info.gateway = *gw;
  }
  // Optional: dual-stack namespaces only.
  if (auto it = j.find("gateway6"); it != j.end() && !it->is_null()) {
    auto gw = address_from(*it);
    if (!gw) return fail(gw.error());
    if (gw->is_v4()) return fail(corrupt("gateway6 is not an IPv6 address"));
    info.gateway6 = *gw;
  }
  if (j.contains("ipv4_only")) {
    auto why = string_field(j, "ipv4_only");
    if (!why) return fail(why.error());
    info.ipv4_only = *why;
  }
  auto dns = field(j, "dns", json::value_t::array);
  if (!dns) return fail(dns.error());
  for (const auto& d : **dns) {
    auto a = address_from(d);
    if (!a) return fail(a.error());
    info.dns.push_back(*a);
  }
  auto forwards = field(j, "port_forwards", json::value_t::array);
  if (!forwards) return fail(forwards.error());
  for (const auto& f : **forwards) {
    auto pf = forward_from(f);
    if (!pf) return fail(pf.error());
    info.port_forwards.push_back(*pf);
  }
  auto created = int_field(j, "created_unix_ms", 0, std::numeric_limits<std::int64_t>::max());
  if (!created) return fail(created.error());
  info.created_unix_ms = *created;
  auto rate = rate_from(j);
  if (!rate) return fail(rate.error());
  info.rate = *rate;
  auto topology = topology_from(j);
  if (!topology) return fail(topology.error());
  info.topology = *topology;
  auto egress = egress_from(j);
  if (!egress) return fail(egress.error());
  info.egress = std::move(*egress);
  // Optional: only namespaces with an egress policy have it.
  if (auto it = j.find("upstream_dns"); it != j.end()) {
    if (!it->is_array()) return fail(corrupt("field 'upstream_dns' has the wrong type"));
    for (const auto& d : *it) {
      auto a = address_from(d);
      if (!a) return fail(a.error());
      info.upstream_dns.push_back(*a);
    }
  }
  // Optional: only namespaces adopted from a running process have it.
  if (j.contains("adopted_from_pid")) {
    auto adopted = int_field(j, "adopted_from_pid", 1, std::numeric_limits<pid_t>::max());
    if (!adopted) return fail(adopted.error());
    info.adopted_from_pid = static_cast<pid_t>(*adopted);
  }
  // Optional: only namespaces adopted by path have them.
  if (j.contains("adopted_netns_path")) {
    auto adopted = string_field(j, "adopted_netns_path");
    if (!adopted) return fail(adopted.error());
    if (adopted->empty() || adopted->front() != '/') {
      return fail(corrupt("field 'adopted_netns_path' is not an absolute path"));
    }
    auto inode = int_field(j, "adopted_netns_inode", 0, std::numeric_limits<std::int64_t>::max());
    if (!inode) return fail(inode.error());
    info.adopted_netns_path = *adopted;
    info.adopted_netns_inode = static_cast<std::uint64_t>(*inode);
  }
  auto cni = cni_from(j);
  if (!cni) return fail(cni.error());
  info.cni = std::move(*cni);
  return info;
}

std::string to_json_text(const NamespaceInfo& info) {
  return to_json(info).dump();
}
std::string to_json_text(const NetworkInfo& network) {
  return to_json(network).dump();
}
std::string to_json_text(const NamespaceStats& stats) {
  return to_json(stats).dump();
}
std::string to_json_text(const EgressPolicy& policy) {
  return to_json(policy).dump();
}

}  // namespace netcell
