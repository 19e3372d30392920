#include "netcell/sandbox.h"

#include <algorithm>
#include <array>
#include <optional>

#include "core/validate.h"

namespace netcell {
namespace {

constexpr std::array<Capability, 7> kCapabilities = {
    Capability::kNetworkNamespace, Capability::kOutboundAccess, Capability::kHostNetwork,
    Capability::kPublishPorts,     Capability::kHostAccess,     Capability::kPeerAccess,
    Capability::kAdoptNamespace};
constexpr std::array<std::string_view, kCapabilities.size()> kCapabilityNames = {
    "network-namespace", "outbound-access", "host-network", "publish-ports",
    "host-access",       "peer-access",     "adopt-netns"};
static_assert(kCapabilities.back() == Capability::kAdoptNamespace, "every capability, in order");

// The first allow rule by domain name, if any.
std::optional<std::string> first_allowed_name(const EgressPolicy& policy) {
  for (const auto& rule : policy.domains) {
    if (rule.action == PolicyAction::kAllow) return rule.to_string();
  }
  return std::nullopt;
}

// Whether no connection can leave under `policy`: nothing is allowed by address or by name, or a
// deny rule covers every destination, protocol and port (deny beats allow) and no name is allowed
// either (a name's learned addresses are counted as reachable, to err on the side of needing the
// capability).
bool denies_everything(const EgressPolicy& policy) {
  if (first_allowed_name(policy)) return false;
  bool addresses_allowed =
      std::any_of(policy.rules.begin(), policy.rules.end(),
                  [](const EgressRule& r) { return r.action == PolicyAction::kAllow; });
  if (policy.default_action == PolicyAction::kDeny && !addresses_allowed) return true;
  return std::any_of(policy.rules.begin(), policy.rules.end(), [](const EgressRule& r) {
    return r.action == PolicyAction::kDeny && r.destination.prefix_len == 0 &&
           r.protocol == PolicyProtocol::kAny && r.ports.any();
  });
}

// What lets a namespace under `policy` reach beyond the host, for the refusal's reason.
std::string outbound_reason(const EgressPolicy& policy) {
  for (const auto& rule : policy.rules) {
    if (rule.action == PolicyAction::kAllow) return "egress allow rule " + rule.to_string();
  }
  if (auto name = first_allowed_name(policy)) return "egress allow rule " + *name;
  return "an egress policy that allows by default";
}

std::string joined_forwards(const std::vector<PortForward>& forwards) {
  std::string out = forwards.size() == 1 ? "published port " : "published ports ";
  for (std::size_t i = 0; i < forwards.size(); ++i) {
    if (i > 0) out += ", ";
    out += forwards[i].to_string();
  }
  return out;
}

// "capability outbound-access is not granted (needed by ...)", or several joined by "; ".
std::string missing_text(const std::vector<CapabilityNeed>& missing) {
  std::string out;
  for (const auto& need : missing) {
    if (!out.empty()) out += "; ";
    out += "capability " + std::string(to_string(need.capability)) + " is not granted (needed by " +
           need.reason + ")";
  }
  return out;
}

std::vector<CapabilityNeed> missing_from(const std::vector<CapabilityNeed>& needs,
                                         const Capabilities& granted) {
  std::vector<CapabilityNeed> missing;
  for (const auto& need : needs) {
    if (!granted.contains(need.capability)) missing.push_back(need);
  }
  return missing;
}

std::string sandbox_context(const SandboxConfig& config) {
  // The namespace's name, or the one create() derives from the owner.
  std::string out = "sandbox";
  if (!config.network.name.empty()) {
    out += ' ' + config.network.name;
  } else if (config.network.pid > 0) {
    out += " pid-" + std::to_string(config.network.pid);
  }
  if (!config.profile.empty()) out += " (profile " + config.profile + ")";
  return out;
}

}  // namespace

std::span<const Capability> all_capabilities() {
  return kCapabilities;
}

std::string_view to_string(Capability capability) {
  return kCapabilityNames[static_cast<std::size_t>(capability)];
}

Result<Capability> parse_capability(std::string_view text) {
  for (Capability c : kCapabilities) {
    if (to_string(c) == text) return c;
  }
  std::string names;
  for (std::string_view name : kCapabilityNames) {
    names += names.empty() ? "" : ", ";
    names += name;
  }
  return fail(ErrorCode::kInvalidArgument,
              "unknown capability '" + std::string(text) + "' (expected one of " + names + ")");
}

std::vector<CapabilityNeed> capability_needs(const NamespaceConfig& config,
                                             const NetworkInfo* network) {
  std::vector<CapabilityNeed> needs;
  auto need = [&](Capability c, std::string reason) {
    auto has = [c](const CapabilityNeed& n) { return n.capability == c; };
    if (std::none_of(needs.begin(), needs.end(), has)) needs.push_back({c, std::move(reason)});
  };
  const std::string mode(to_string(config.mode));
  need(Capability::kNetworkNamespace, "a " + mode + " namespace");
  switch (config.mode) {
    case IsolationMode::kFull: break;
    case IsolationMode::kPrivate:
      if (!config.egress) need(Capability::kOutboundAccess, "private mode's outbound NAT");
      break;
    case IsolationMode::kShared:
      need(Capability::kOutboundAccess, "shared mode (the host's own network)");
      need(Capability::kHostNetwork, "shared mode");
      need(Capability::kHostAccess, "shared mode (the host's own network)");
      break;
    case IsolationMode::kBridged: {
      const std::string net = "network '" + config.network + "'";
      const bool known = network != nullptr && network->name == config.network;
      if (!known || network->nat) {
        need(Capability::kOutboundAccess, known ? net + "'s NAT" : net + ", which may have NAT");
      }
      if (!known || network->host_access) {
        need(Capability::kHostAccess,
             known ? net + "'s host access" : net + ", which may have host access");
      }
      need(Capability::kPeerAccess, net + "'s other namespaces");
      break;
    }
  }
  // Any mode: a policy that lets something out (only private ones take one; validation refuses
  // it elsewhere, but a profile names the conflict by capability).
  if (config.egress && !denies_everything(*config.egress)) {
    need(Capability::kOutboundAccess, outbound_reason(*config.egress));
  }
  if (!config.port_forwards.empty()) {
    need(Capability::kPublishPorts, joined_forwards(config.port_forwards));
  }
  if (config.adopt_netns_of) {
    need(Capability::kAdoptNamespace,
         "adopting the network namespace of process " + std::to_string(*config.adopt_netns_of));
  }
  std::sort(needs.begin(), needs.end(), [](const CapabilityNeed& a, const CapabilityNeed& b) {
    return a.capability < b.capability;
  });
  return needs;
}

SandboxConfig SandboxConfig::privileged(pid_t pid) {
  SandboxConfig config;
  config.network = NamespaceConfig::full_isolation(pid);
  return config;
}

Result<SandboxConfig> SandboxConfig::from_profile(std::string_view profile, pid_t pid) {
  auto found = find_profile(profile);
  if (!found) return fail(found.error());
  NamespaceConfig config;
  config.pid = pid;
  return found->apply(std::move(config));
}

Result<SandboxConfig> Profile::apply(NamespaceConfig config) const {
  const std::string profile = "profile " + std::string(name);
  if (!config.network.empty() && mode != IsolationMode::kBridged) {
    return fail(ErrorCode::kInvalidArgument, profile + " makes a " + std::string(to_string(mode)) +
                                                 " namespace, which joins no network (not '" +
                                                 config.network + "')");
  }
  config.mode = mode;
  switch (egress) {
    case Egress::kNone:
      if (config.egress) {
        return fail(ErrorCode::kInvalidArgument,
                    profile + " reaches nothing: it takes no egress policy");
      }
      break;
    case Egress::kDefaultDeny:
      if (!config.egress) {
        config.egress.emplace();
        config.egress->default_action = PolicyAction::kDeny;
      }
      if (config.egress->default_action != PolicyAction::kDeny) {
        return fail(ErrorCode::kInvalidArgument,
                    profile +
                        " denies egress by default; a policy that allows by default "
                        "contradicts it");
      }
      break;
    case Egress::kOptional: break;
  }
  for (const auto& need : capability_needs(config)) {
    if (grants.contains(need.capability)) continue;
    return fail(ErrorCode::kInvalidArgument, profile + " does not grant " +
                                                 std::string(to_string(need.capability)) +
                                                 ", which " + need.reason + " needs");
  }
  SandboxConfig sandbox;
  sandbox.capabilities = grants;
  sandbox.network = std::move(config);
  sandbox.profile = name;
  return sandbox;
}

const std::vector<Profile>& profiles() {
  using C = Capability;
  static const std::vector<Profile> kProfiles = {
      {"untrusted",
       "Full isolation: only loopback, nothing is reachable and nothing reaches in",
       IsolationMode::kFull,
       Profile::Egress::kNone,
       {C::kNetworkNamespace}},
      {"egress-allowlist",
       "A private network that reaches only what its allow rules name (egress default deny)",
       IsolationMode::kPrivate,
       Profile::Egress::kDefaultDeny,
       {C::kNetworkNamespace, C::kOutboundAccess}},
      {"service",
       "A private network with published ports and outbound NAT",
       IsolationMode::kPrivate,
       Profile::Egress::kOptional,
       {C::kNetworkNamespace, C::kOutboundAccess, C::kPublishPorts}},
  };
  return kProfiles;
}

Result<Profile> find_profile(std::string_view name) {
  std::string names;
  for (const auto& profile : profiles()) {
    if (profile.name == name) return profile;
    names += names.empty() ? "" : ", ";
    names += profile.name;
  }
  return fail(ErrorCode::kInvalidArgument,
              "unknown profile '" + std::string(name) + "' (expected " + names + ")");
}

Result<SandboxManager> SandboxManager::with_namespaces(const ManagerOptions& options) {
  auto manager = NamespaceManager::create(options);
  if (!manager) return fail(manager.error());
  return SandboxManager(std::move(*manager));
}

SandboxManager SandboxManager::with_namespaces(NamespaceManager manager) {
  return SandboxManager(std::move(manager));
}

namespace {

// The bridged network `config` joins as the manager records it now; nullopt when it has none.
std::optional<NetworkInfo> joined_network(NamespaceManager& manager,
                                          const NamespaceConfig& config) {
  if (config.mode != IsolationMode::kBridged) return std::nullopt;
  for (auto& network : manager.list_networks()) {
    if (network.name == config.network) return std::move(network);
  }
  return std::nullopt;
}

Result<void> refuse_missing(const SandboxConfig& config, const NetworkInfo* network) {
  auto missing = missing_from(capability_needs(config.network, network), config.capabilities);
  if (missing.empty()) return ok();
  return fail(Error(ErrorCode::kPermissionDenied, missing_text(missing))
                  .with_context(sandbox_context(config)));
}

}  // namespace

Result<void> SandboxManager::check(const SandboxConfig& config) {
  if (auto valid = validate_config(config.network); !valid) {
    return fail(std::move(valid).error().with_context(sandbox_context(config)));
  }
  auto network = joined_network(namespaces_, config.network);
  if (config.network.mode == IsolationMode::kBridged && !network) {
    // No such network: create() says so, or, should it be made meanwhile, checks it once the
    // namespace is on it. Until then only what joining any network needs.
    NetworkInfo plain;
    plain.name = config.network.network;
    return refuse_missing(config, &plain);
  }
  return refuse_missing(config, network ? &*network : nullptr);
}

Result<NamespaceInfo> SandboxManager::create(const SandboxConfig& config) {
  NETCELL_TRY(check(config));
  auto created = namespaces_.create(config.network);
  if (!created) return fail(std::move(created).error().with_context(sandbox_context(config)));
  if (config.network.mode == IsolationMode::kBridged) {
    // On the network now, so it cannot be removed and made again with other flags: the flags
    // read here are the ones it has. Not found (unreadable): taken to have NAT and host access.
    auto network = joined_network(namespaces_, config.network);
    auto refused = refuse_missing(config, network ? &*network : nullptr);
    if (!refused) {
      Error error = std::move(refused).error();
      if (auto removed = namespaces_.destroy(created->name); !removed) {
        error =
            Error(error.code(),
                  error.message() + "; removing it again failed: " + removed.error().to_string());
        error.with_context(sandbox_context(config));
      }
      return fail(std::move(error));
    }
  }
  return created;
}

}  // namespace netcell
