// The CNI verbs, each a few calls of the library: its validation, state store, journal and
// clean-up are the plugin's. Nothing here touches the kernel itself.
#include <algorithm>
#include <set>

#include "cni.h"
#include "netcell/manager.h"

namespace netcell::cni {
namespace {

CniError from_library(const Error& error, const Environment& env) {
  CniError out{kInternal, error.to_string(), ""};
  // What the library says of the namespace it was handed is what the runtime said in CNI_NETNS.
  if (!env.netns.empty() && error.message().find(env.netns) != std::string::npos) {
    out.code = kInvalidEnvironment;
    return out;
  }
  switch (error.code()) {
    case ErrorCode::kInvalidArgument: out.code = kInvalidConfig; break;
    case ErrorCode::kNotFound: out.code = kUnknownContainer; break;
    case ErrorCode::kSystem:
    case ErrorCode::kCorrupt: out.code = kIoFailure; break;
    case ErrorCode::kPermissionDenied: out.code = kPluginNotAvailable; break;
    default: break;
  }
  return out;
}

CniResult<NamespaceManager> open_manager(const PluginConfig& config, const Environment& env) {
  ManagerOptions options;
  // Only the kernel enforces anything: never the simulation in its place.
  options.backend = BackendChoice::kLinux;
  options.run_dir = config.run_dir;
  auto manager = NamespaceManager::create(options);
  if (!manager) return tl::unexpected(from_library(manager.error(), env));
  return std::move(*manager);
}

CniAttachment identity(const PluginConfig& config, const Environment& env) {
  return CniAttachment{config.name, env.container_id, env.ifname};
}

// A bridged configuration's network: the one netcell has of that name (its subnet must be the
// configuration's, when it gives one), else made from the configuration.
CniResult<NetworkInfo> ensure_network(NamespaceManager& mgr, const PluginConfig& config,
                                      const Environment& env) {
  auto find = [&]() -> std::optional<NetworkInfo> {
    for (auto& n : mgr.list_networks()) {
      if (n.name == config.network) return n;
    }
    return std::nullopt;
  };
  if (auto found = find()) {
    if (config.subnet && !(found->subnet == *config.subnet)) {
      return cni_fail(kInvalidConfig, "network '" + config.network + "' has subnet " +
                                          found->subnet.to_string() + ", not " +
                                          config.subnet->to_string());
    }
    if (config.subnet6 && !(found->subnet6 && *found->subnet6 == *config.subnet6)) {
      return cni_fail(kInvalidConfig, "network '" + config.network + "' has " +
                                          (found->subnet6 ? "subnet6 " + found->subnet6->to_string()
                                                          : std::string("no subnet6")) +
                                          ", not " + config.subnet6->to_string());
    }
    return *found;
  }
  if (!config.subnet) {
    return cni_fail(kInvalidConfig, "network '" + config.network +
                                        "' does not exist and the configuration gives no subnet");
  }
  NetworkConfig wanted;
  wanted.name = config.network;
  wanted.subnet = *config.subnet;
  wanted.subnet6 = config.subnet6;
  wanted.nat = config.nat;
  wanted.host_access = config.host_access;
  // Made for this configuration: it goes with its last attachment.
  wanted.remove_when_unused = true;
  auto made = mgr.create_network(wanted);
  if (made) return *made;
  // Another ADD made it meanwhile.
  if (auto found = find();
      found && found->subnet == *config.subnet && found->subnet6 == config.subnet6) {
    return *found;
  }
  return tl::unexpected(from_library(made.error(), env));
}

// The static addresses asked for (CNI_ARGS IP= first, then ips), if any: at most one IPv4
// address and at most one IPv6 one, the IPv6 address that goes with it (a runtime asks for an
// attachment's earlier addresses again, as podman's `network reload` does). The library refuses
// an IPv6 one where the attachment is IPv4-only (a bridged network without a subnet6).
struct StaticAddresses {
  std::optional<IpPrefix> ip;
  std::optional<IpPrefix> ip6;
};
CniResult<StaticAddresses> static_addresses(const PluginConfig& config, const CniArgs& args) {
  StaticAddresses out;
  if (args.ip) {
    out.ip = IpPrefix{*args.ip, 0};
    return out;
  }
  for (const auto& ip : config.ips) {
    auto& slot = ip.address.is_v4() ? out.ip : out.ip6;
    if (slot) {
      std::string list;
      for (const auto& i : config.ips) {
        if (!list.empty()) list.append(", ");
        list.append(i.to_string());
      }
      return cni_fail(kInvalidConfig,
                      "netcell gives an attachment one IPv4 address and one IPv6 address; ips "
                      "asks for " +
                          list);
    }
    slot = ip;
  }
  return out;
}

// The address an attachment prefers, the same for every ADD of it (a restart DELs and ADDs again,
// and keeps its address if it is still free): a block of the pool picked by the attachment's
// name. IPv4 pools only.
std::optional<IpAddress> preferred_address(NamespaceManager& mgr, const PluginConfig& config,
                                           const std::string& name) {
  const std::string network = config.mode == IsolationMode::kBridged ? config.network : "private";
  std::optional<IpPrefix> subnet;
  for (const auto& n : mgr.list_networks()) {
    if (n.name == network) subnet = n.subnet;
  }
  if (!subnet && config.mode == IsolationMode::kPrivate) {
    if (auto p = IpPrefix::parse(mgr.options().private_subnet)) subnet = *p;
  }
  if (!subnet || !subnet->address.is_v4() || subnet->prefix_len > 29) return std::nullopt;
  const std::uint64_t size = 1ull << (32 - subnet->prefix_len);
  std::uint64_t hash = 0;
  for (unsigned char c : name) hash = hash * 131 + c;
  // Private: namespace .2 of a /30 block; bridged: a host address past the gateway.
  const std::uint64_t offset =
      config.mode == IsolationMode::kPrivate ? (hash % (size / 4)) * 4 + 2 : 2 + hash % (size - 3);
  return IpAddress::v4(subnet->address.v4_host_order() + static_cast<std::uint32_t>(offset));
}

// The attachment as the library makes it: the network (bridged), then the namespace.
CniResult<NamespaceInfo> create_attachment(NamespaceManager& mgr, const Environment& env,
                                           const PluginConfig& config, const CniArgs& args,
                                           const StaticAddresses& wanted) {
  NamespaceConfig cfg = NamespaceConfig::private_network(0);
  std::uint8_t prefix_len = 30;  // the private pool's point-to-point blocks
  std::uint8_t len6 = 64;        // and their /64s
  if (config.mode == IsolationMode::kBridged) {
    auto network = ensure_network(mgr, config, env);
    if (!network) return tl::unexpected(network.error());
    cfg = NamespaceConfig::bridged(0, config.network);
    prefix_len = network->subnet.prefix_len;
    if (network->subnet6) len6 = network->subnet6->prefix_len;
  }
  cfg.name = attachment_name(config.name, env.container_id, env.ifname);
  InterfaceConfig iface;
  iface.name = env.ifname;
  iface.mtu = config.mtu;
  iface.mac = !args.mac.empty() ? args.mac : config.mac;
  if (wanted.ip6) {
    // A runtime may give it without its length (podman does): a private namespace's is a /64,
    // a bridged one's that of its network's subnet6.
    iface.ip6 =
        IpPrefix{wanted.ip6->address, wanted.ip6->prefix_len != 0 ? wanted.ip6->prefix_len : len6};
  }
  if (const auto& wanted_ip = wanted.ip) {
    iface.ip = wanted_ip->address;
    iface.prefix_len = wanted_ip->prefix_len != 0 ? wanted_ip->prefix_len : prefix_len;
  } else if (!wanted.ip6) {
    iface.preferred_ip = preferred_address(mgr, config, cfg.name);
  }
  cfg.interface = iface;
  cfg.port_forwards = config.port_mappings;
  cfg.rate = config.rate;
  cfg.egress = config.egress;
  cfg.dns = config.dns;
  cfg.adopt_netns_path = env.netns;
  cfg.cni = identity(config, env);
  auto info = mgr.create(cfg);
  if (!info) return tl::unexpected(from_library(info.error(), env));
  return std::move(*info);
}

bool delegated(const PluginConfig& config) {
  return !config.ipam_type.empty();
}

CniResult<std::optional<json>> add(const Environment& env, const PluginConfig& config) {
  auto args = parse_cni_args(env.args);
  if (!args) return tl::unexpected(args.error());
  // With a delegated ipam plugin, IP= and ips are its to honour (host-local reads both).
  auto wanted_ip = delegated(config) ? CniResult<StaticAddresses>(StaticAddresses{})
                                     : static_addresses(config, *args);
  if (!wanted_ip) return tl::unexpected(wanted_ip.error());
  auto mgr = open_manager(config, env);
  if (!mgr) return tl::unexpected(mgr.error());
  if (delegated(config)) {
    auto allocated = run_ipam(Verb::kAdd, env, config);
    if (!allocated) return tl::unexpected(allocated.error());
    auto addresses = ipam_addresses(*allocated);
    if (!addresses) {
      (void)run_ipam(Verb::kDel, env, config);  // what it allocated goes back
      return tl::unexpected(addresses.error());
    }
    // Its IPv6 address too (host-local with a range of each family); the library refuses one
    // the network has no subnet6 for, and what was allocated goes back (below).
    wanted_ip->ip = addresses->ip;
    wanted_ip->ip6 = addresses->ip6;
  }
  auto info = create_attachment(*mgr, env, config, *args, *wanted_ip);
  if (!info && info.error().code == kUnknownContainer && config.mode == IsolationMode::kBridged) {
    // The network went with its last attachment's DEL between the two steps: once more.
    info = create_attachment(*mgr, env, config, *args, *wanted_ip);
  }
  if (!info) {
    // A failed ADD leaves nothing: the address goes back to the ipam plugin too.
    if (delegated(config)) (void)run_ipam(Verb::kDel, env, config);
    return tl::unexpected(info.error());
  }
  Attachment attachment;
  attachment.host_interface = info->host_interface;
  attachment.ifname = env.ifname;
  attachment.sandbox = env.netns;
  attachment.gateway = info->gateway;
  attachment.gateway6 = info->gateway6;
  for (const auto& i : info->interfaces) {
    if (i.name != env.ifname) continue;
    attachment.mac = i.mac;
    attachment.addresses = i.addresses;
  }
  json dns = config.dns_json;
  if (config.egress) {
    // With a policy the attachment resolves only through netcell's resolver (the library's
    // resolv.conf names it; DNS to anywhere else is refused): the runtime's resolv.conf must too.
    json servers = json::array();
    for (const auto& server : info->dns) servers.push_back(server.to_string());
    if (!dns.is_object()) dns = json::object();
    dns["nameservers"] = servers;
  }
  return std::optional<json>(make_result(config.cni_version, config.prev_result, attachment, dns));
}

CniResult<std::optional<json>> del(const Environment& env, const PluginConfig& config) {
  auto mgr = open_manager(config, env);
  if (!mgr) return tl::unexpected(mgr.error());
  const std::string name = attachment_name(config.name, env.container_id, env.ifname);
  if (auto info = mgr->info(name); info && info->cni != identity(config, env)) {
    return cni_fail(kInternal, "netcell namespace " + name + " belongs to another attachment");
  }
  // Whatever state it is in (an ADD a crash interrupted included, even before its record), the
  // library removes it; that it does not exist (ADD never happened, DEL ran before) is success.
  auto report = mgr->remove_matching([&](const NamespaceInfo& info) {
    return info.name == name && info.cni == identity(config, env);
  });
  if (!report.errors.empty()) {
    return cni_fail(kIoFailure, "DEL could not remove the attachment", report.errors.front());
  }
  // The ipam plugin's DEL is idempotent too: called whether or not netcell had the attachment
  // (an ADD killed after the allocation has none).
  if (delegated(config)) {
    if (auto released = run_ipam(Verb::kDel, env, config); !released) {
      return tl::unexpected(released.error());
    }
  }
  return std::optional<json>();
}

CniResult<std::optional<json>> check(const Environment& env, const PluginConfig& config) {
  if (!config.prev_result) return cni_fail(kInvalidConfig, "CHECK needs prevResult");
  auto mgr = open_manager(config, env);
  if (!mgr) return tl::unexpected(mgr.error());
  const std::string name = attachment_name(config.name, env.container_id, env.ifname);
  auto info = mgr->info(name);
  if (!info || info->cni != identity(config, env)) {
    return cni_fail(kUnknownContainer, "no attachment of container " + env.container_id +
                                           " with interface " + env.ifname + " on network " +
                                           config.name);
  }
  if (info->adopted_netns_path != env.netns) {
    return cni_fail(kInvalidEnvironment,
                    "the attachment is in " + info->adopted_netns_path + ", not " + env.netns);
  }
  // The runtime's idea of the attachment (prevResult) must be netcell's.
  const json ips = config.prev_result->value("ips", json::array());
  auto address = primary_address(*info);
  bool listed = address && std::any_of(ips.begin(), ips.end(), [&](const json& ip) {
                  auto prefix = ip.is_object() ? IpPrefix::parse(ip.value("address", ""))
                                               : IpPrefix::parse("");
                  return prefix && prefix->address == *address;
                });
  if (!listed) {
    return cni_fail(kInternal, "prevResult does not list the attachment's address " +
                                   (address ? address->to_string() : std::string("(none)")));
  }
  if (auto verified = mgr->verify(name); !verified) {
    return cni_fail(kInternal, verified.error().to_string());
  }
  if (delegated(config)) {
    if (auto checked = run_ipam(Verb::kCheck, env, config); !checked) {
      return tl::unexpected(checked.error());
    }
  }
  return std::optional<json>();
}

// Whether ADDs can be served: the Linux backend and the run dir open, the network exists or can
// be made, its pool has a free address.
CniResult<std::optional<json>> status(const Environment& env, const PluginConfig& config) {
  auto mgr = open_manager(config, env);
  if (!mgr) {
    return cni_fail(kPluginNotAvailable, "netcell cannot serve ADDs: " + mgr.error().msg);
  }
  if (auto ready = mgr->ready(); !ready) {
    return cni_fail(kPluginNotAvailable, "netcell cannot serve ADDs: " + ready.error().message());
  }
  const std::string network = config.mode == IsolationMode::kBridged ? config.network : "private";
  std::optional<NetworkInfo> found;
  for (auto& n : mgr->list_networks()) {
    if (n.name == network) found = n;
  }
  if (delegated(config)) {
    // The addresses are the ipam plugin's: whether it can give one is its STATUS.
    if (auto ready = run_ipam(Verb::kStatus, env, config); !ready) {
      return tl::unexpected(ready.error());
    }
  }
  if (!found) {
    if (config.mode == IsolationMode::kBridged && !config.subnet) {
      return cni_fail(kPluginNotAvailable, "network '" + network +
                                               "' does not exist and the configuration gives "
                                               "no subnet to make it with");
    }
    return std::optional<json>();  // made by the first ADD
  }
  const int host_bits = (found->subnet.address.is_v4() ? 32 : 128) - found->subnet.prefix_len;
  const std::uint64_t size = host_bits >= 40 ? (1ull << 40) : (1ull << host_bits);
  // Private: a /30 per namespace. Bridged: every address but the network's, the gateway's and
  // the broadcast address.
  const std::uint64_t capacity = found->bridged ? (size > 3 ? size - 3 : 0) : size / 4;
  const auto namespaces = mgr->list();
  const auto used = static_cast<std::uint64_t>(
      std::count_if(namespaces.begin(), namespaces.end(),
                    [&](const NamespaceInfo& info) { return info.network == network; }));
  if (used >= capacity) {
    return cni_fail(kPluginNotAvailable, "the address pool of network '" + network + "' (" +
                                             found->subnet.to_string() + ") is exhausted");
  }
  return std::optional<json>();
}

CniResult<std::optional<json>> gc(const Environment& env, const PluginConfig& config) {
  auto mgr = open_manager(config, env);
  if (!mgr) return tl::unexpected(mgr.error());
  const std::set<std::pair<std::string, std::string>> valid(config.valid_attachments->begin(),
                                                            config.valid_attachments->end());
  auto report = mgr->remove_matching([&](const NamespaceInfo& info) {
    return !info.cni.empty() && info.cni.network == config.name &&
           valid.count({info.cni.container_id, info.cni.ifname}) == 0;
  });
  if (!report.errors.empty()) {
    return cni_fail(kIoFailure, "GC could not remove every stale attachment",
                    report.errors.front());
  }
  // The ipam plugin's allocations of stale attachments are its GC's (the same list).
  if (delegated(config)) {
    if (auto collected = run_ipam(Verb::kGc, env, config); !collected) {
      return tl::unexpected(collected.error());
    }
  }
  return std::optional<json>();
}

}  // namespace

CniResult<std::optional<json>> run(const Environment& env, const PluginConfig& config) {
  switch (env.verb) {
    case Verb::kAdd: return add(env, config);
    case Verb::kDel: return del(env, config);
    case Verb::kCheck: return check(env, config);
    case Verb::kStatus: return status(env, config);
    case Verb::kGc: return gc(env, config);
    case Verb::kVersion: return std::optional<json>(version_json(config.cni_version));
  }
  return cni_fail(kInvalidEnvironment, "unknown CNI_COMMAND");
}

}  // namespace netcell::cni
