// netcell: sandboxes — namespaces made only with the capabilities they were granted — and the
// named profiles that bundle a mode, its defaults and the capabilities it grants.
//
//   auto sandboxes = SandboxManager::with_namespaces();          // NamespaceManager::create({})
//   auto config = SandboxConfig::privileged(pid);                // full isolation, nothing granted
//   config.capabilities.insert(Capability::kNetworkNamespace);
//   sandboxes->create(config);                                   // a full namespace
//   config.network.mode = IsolationMode::kPrivate;
//   sandboxes->create(config);   // kPermissionDenied: outbound-access is not granted (private
//                                // mode's outbound NAT needs it)
//
// A capability is something a namespace can do or reach; capability_needs() says which ones a
// NamespaceConfig uses, each with what uses it, and SandboxManager::create refuses a config that
// uses one its SandboxConfig was not granted, before anything is made. The grants only ever gate
// what NamespaceManager would do; they enforce nothing themselves: the kernel enforces the mode
// and the egress policy the config describes (netcell/types.h, netcell/policy.h).
#pragma once

#include <sys/types.h>

#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "netcell/manager.h"
#include "netcell/result.h"
#include "netcell/types.h"

namespace netcell {

enum class Capability {
  // "network-namespace": to have a namespace at all (every mode, shared's record included).
  kNetworkNamespace,
  // "outbound-access": to reach addresses beyond the host: private mode's NAT (unless an egress
  // policy denies everything), a bridged network with NAT, shared mode.
  kOutboundAccess,
  // "host-network": shared mode, the host's own network.
  kHostNetwork,
  // "publish-ports": port forwards from the host into the namespace.
  kPublishPorts,
  // "host-access": to reach the host's own services: a bridged network with host access, shared
  // mode. Private mode never reaches them (an egress allow rule does not open them either).
  kHostAccess,
  // "peer-access": to reach other namespaces: a bridged network's other ports.
  kPeerAccess,
  // "adopt-netns": to adopt the network namespace a process already lives in. What was in it
  // stays (its links, addresses and routes), so it may reach more than its mode says.
  kAdoptNamespace,
};
// Every capability, in the order above.
std::span<const Capability> all_capabilities();
std::string_view to_string(Capability capability);
// The names above ("outbound-access"); kInvalidArgument for any other.
Result<Capability> parse_capability(std::string_view text);

using Capabilities = std::set<Capability>;

// A capability a config uses and what uses it ("private mode's outbound NAT").
struct CapabilityNeed {
  Capability capability;
  std::string reason;
  friend bool operator==(const CapabilityNeed&, const CapabilityNeed&) = default;
};

// Every capability a namespace made from `config` would use, once each, in the order of
// all_capabilities(). Pure: `network` is the bridged network the config joins (its NAT and host
// access decide); without it a bridged config is taken to have both. Works on any config, valid
// or not (validation is create's).
std::vector<CapabilityNeed> capability_needs(const NamespaceConfig& config,
                                             const NetworkInfo* network = nullptr);

// What to create and what it may use. `network` is the namespace (its name and owner among it);
// `capabilities` what it was granted; `profile` the profile it came from, named in errors (empty
// for none).
struct SandboxConfig {
  // A sandbox owned by `pid`, made by a manager that holds the privileges network namespaces need:
  // full isolation, and nothing granted yet (insert what it may use).
  static SandboxConfig privileged(pid_t pid);
  // The named profile's config for `pid` and its grants (Profile::apply on an empty config).
  static Result<SandboxConfig> from_profile(std::string_view profile, pid_t pid);

  Capabilities capabilities;
  NamespaceConfig network;
  std::string profile;
};

// A named bundle: a mode, its defaults and the capabilities it grants.
//   untrusted         full isolation: loopback only
//   egress-allowlist  private, egress default deny: reaches only what its allow rules name
//   service           private with published ports and outbound NAT
struct Profile {
  // What the profile does with an egress policy.
  enum class Egress {
    kNone,         // takes none (full isolation reaches nothing)
    kDefaultDeny,  // always has one, default deny: the caller's rules are the allow-list
    kOptional,     // the caller's, if any, as given
  };

  std::string_view name;
  std::string_view description;  // one line
  IsolationMode mode;
  Egress egress;
  Capabilities grants;

  // `config` (what the caller adds: a name, an owner, rules, published ports, DNS...) made into
  // the profile's: its mode becomes the profile's (a front-end that lets its user choose a mode
  // compares it with `mode` first, to name that conflict), and egress-allowlist's policy gets
  // its default deny (a policy given without one is deny-all). kInvalidArgument, one line naming
  // the conflict, for a network to join (these profiles join none), a policy the profile does not
  // take or whose default contradicts it, and anything that needs a capability the profile does
  // not grant (a published port under untrusted, adoption under any).
  Result<SandboxConfig> apply(NamespaceConfig config) const;
};
// The named profiles, in the order above.
const std::vector<Profile>& profiles();
// kInvalidArgument naming the profiles for an unknown name.
Result<Profile> find_profile(std::string_view name);

// Creates namespaces through a NamespaceManager, each only if its config uses nothing it was not
// granted. Thread-safe as the NamespaceManager is.
class SandboxManager {
 public:
  // Over NamespaceManager::create(options): with the default options, the Linux backend (or an
  // error without the privileges).
  static Result<SandboxManager> with_namespaces(const ManagerOptions& options = {});
  // Over a manager the caller made (tests, embedding).
  static SandboxManager with_namespaces(NamespaceManager manager);

  // The refusal create() would give `config`, without creating anything: kInvalidArgument (and
  // the like) when the namespace config itself is invalid; kPermissionDenied, one line naming
  // each missing capability and what needs it, when it uses one that was not granted.
  Result<void> check(const SandboxConfig& config);
  // check(), then NamespaceManager::create. A bridged network's NAT and host access are read
  // again once the namespace is on it (a network in use cannot be replaced): should they have
  // changed in between, the namespace is destroyed and the refusal returned.
  Result<NamespaceInfo> create(const SandboxConfig& config);

  // The manager underneath, for everything else (info, spawn, destroy...).
  NamespaceManager& namespaces() { return namespaces_; }

 private:
  explicit SandboxManager(NamespaceManager manager) : namespaces_(std::move(manager)) {}
  NamespaceManager namespaces_;
};

}  // namespace netcell
