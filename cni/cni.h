// netcell-cni: the CNI plugin (CNI spec 1.1). CNI JSON in, library calls, CNI JSON out.
// The parsing and rendering here are pure (unit-tested without privileges); verbs.cc drives the
// library.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "netcell/policy.h"
#include "netcell/types.h"

namespace netcell::cni {

using json = nlohmann::json;

// The spec's well-known error codes (SPEC.md, "Error") and the generic one libcni uses.
enum Code : int {
  kIncompatibleVersion = 1,
  kUnsupportedField = 2,
  kUnknownContainer = 3,
  kInvalidEnvironment = 4,
  kIoFailure = 5,
  kDecodeFailure = 6,
  kInvalidConfig = 7,
  kTryAgainLater = 11,
  kPluginNotAvailable = 50,
  kInternal = 999,
};

// A CNI error object: {"cniVersion","code","msg","details"}.
struct CniError {
  int code = kInternal;
  std::string msg;
  std::string details;
};

template <typename T>
using CniResult = tl::expected<T, CniError>;
inline tl::unexpected<CniError> cni_fail(int code, std::string msg, std::string details = "") {
  return tl::unexpected(CniError{code, std::move(msg), std::move(details)});
}

// The versions this plugin speaks, oldest first; the last is what it answers in by default.
inline const std::vector<std::string> kSupportedVersions = {"0.3.0", "0.3.1", "0.4.0", "1.0.0",
                                                            "1.1.0"};
bool version_supported(std::string_view version);
// a < b for versions of the form MAJOR.MINOR.PATCH (anything else compares as 0.0.0).
bool version_less(std::string_view a, std::string_view b);

enum class Verb { kAdd, kDel, kCheck, kStatus, kGc, kVersion };
std::optional<Verb> parse_verb(std::string_view text);

// The CNI_* environment a runtime sets.
struct Environment {
  Verb verb = Verb::kVersion;
  std::string container_id;
  std::string netns;
  std::string ifname;
  std::string path;
  std::string args;
};
// Checks what the verb needs (the reference plugins' skel: CNI_CONTAINERID, CNI_NETNS and
// CNI_IFNAME for ADD and CHECK, CNI_CONTAINERID and CNI_IFNAME for DEL, CNI_PATH for every verb
// but VERSION). `get` reads a variable (null when unset).
CniResult<Environment> parse_environment(const char* (*get)(const char*));

// CNI_ARGS: "K1=V1;K2=V2". Of what netcell reads, IP= and MAC= (podman's --ip, --mac-address);
// an unknown key is an error unless IgnoreUnknown=1 (or true) is given.
struct CniArgs {
  std::optional<IpAddress> ip;
  std::string mac;
};
CniResult<CniArgs> parse_cni_args(std::string_view text);

// The network configuration on stdin, with what netcell reads of it.
// How long a delegated IPAM plugin may take for one call by default (ipamTimeout), and at most.
inline constexpr std::uint32_t kDefaultIpamTimeoutS = 60;
inline constexpr std::uint32_t kMaxIpamTimeoutS = 3600;
struct PluginConfig {
  std::string cni_version;
  std::string name;  // the network's (conflist's) name
  IsolationMode mode = IsolationMode::kPrivate;
  std::string network;  // bridged: netcell's network (default: the conflist's name)
  std::optional<IpPrefix> subnet;
  std::optional<IpPrefix> subnet6;  // bridged: the network's IPv6 prefix (dual stack)
  bool nat = true;
  bool host_access = false;
  std::uint32_t mtu = 1500;
  std::vector<IpAddress> dns;          // dns.nameservers
  json dns_json;                       // dns as given, echoed in the result
  RateLimit rate;                      // runtimeConfig.bandwidth
  std::optional<EgressPolicy> egress;  // egress: address rules and a default
  std::vector<PortForward> port_mappings;
  std::vector<IpPrefix> ips;  // runtimeConfig.ips, args.cni.ips
  std::string mac;            // runtimeConfig.mac, args.cni.mac
  std::string run_dir;        // where netcell's state lives (default /run/netcell)
  std::string ipam_type;      // ipam.type: a delegated IPAM plugin, run from CNI_PATH
  // ipamTimeout: seconds a delegated IPAM plugin may take for one call before it is killed.
  std::uint32_t ipam_timeout_s = kDefaultIpamTimeoutS;
  std::string text;  // the configuration as given (with ipam_type: the ipam's stdin)
  std::optional<json> prev_result;
  // GC: cni.dev/valid-attachments, (container id, ifname) pairs.
  std::optional<std::vector<std::pair<std::string, std::string>>> valid_attachments;
};
// Stdin is at most this long: a longer one is refused (kDecodeFailure) without being parsed.
inline constexpr std::size_t kMaxConfigBytes = 1 << 20;
// Parses and checks the configuration for `verb` (VERSION reads only cniVersion).
CniResult<PluginConfig> parse_config(std::string_view text, Verb verb);

// What an attachment is (netcell's record of it) as a CNI result, in the 1.x shape.
struct Attachment {
  std::string host_interface;
  std::string ifname;
  std::string mac;
  std::string sandbox;
  std::vector<IpPrefix> addresses;
  std::optional<IpAddress> gateway;   // of the IPv4 address
  std::optional<IpAddress> gateway6;  // of the IPv6 address (dual stack)
};
// The result of an ADD: prevResult's interfaces, ips and routes (chaining after another plugin)
// followed by this attachment's, rendered for `version` (0.3.x and 0.4.0 carry "version" in ips).
json make_result(const std::string& version, const std::optional<json>& prev_result,
                 const Attachment& attachment, const json& dns);
// An error object for `version` (1.1.0 when it is none the plugin speaks).
json error_json(const std::string& version, const CniError& error);
// The VERSION answer.
json version_json(const std::string& requested);

// The netcell namespace name of an attachment: derived only from what every verb is given (the
// network's name, CNI_CONTAINERID, CNI_IFNAME), so that DEL finds what ADD made.
std::string attachment_name(const std::string& network, const std::string& container_id,
                            const std::string& ifname);

// A delegated IPAM plugin (SPEC.md "IP Allocation"): config.ipam_type found in env.path and run
// for `verb` with the runtime's environment (CNI_CONTAINERID and CNI_IFNAME from `env`) and the
// configuration on stdin. Its result for ADD; null for the other verbs. Its error object, its
// code kept, when it fails.
CniResult<json> run_ipam(Verb verb, const Environment& env, const PluginConfig& config);
// The first IPv4 address of an IPAM result (any version's shape), and its first IPv6 one if it
// has one (host-local with a range of each family): an attachment has one of each at most. An
// error when it has no IPv4 address.
struct IpamAddresses {
  std::optional<IpPrefix> ip;  // always set on success
  std::optional<IpPrefix> ip6;
};
CniResult<IpamAddresses> ipam_addresses(const json& result);

// Runs a verb; the output (empty for DEL, CHECK, STATUS and GC) or an error.
CniResult<std::optional<json>> run(const Environment& env, const PluginConfig& config);

}  // namespace netcell::cni
