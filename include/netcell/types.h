// netcell: value types of the public API (configs, identities, info and stats).
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "netcell/address.h"
#include "netcell/policy.h"
#include "netcell/result.h"

namespace netcell {

enum class IsolationMode {
  kFull,     // a new netns with only lo, up: nothing is reachable
  kPrivate,  // a veth to the host, NAT, DNS and published ports
  kShared,   // the host's own network, recorded and tracked
  kBridged,  // a port on a named network's bridge
};
std::string_view to_string(IsolationMode mode);
// Accepts "full", "private", "shared", "bridged".
Result<IsolationMode> parse_isolation_mode(std::string_view text);

enum class Protocol { kTcp, kUdp };
std::string_view to_string(Protocol protocol);
Result<Protocol> parse_protocol(std::string_view text);

// kRootless: the Linux backend run inside the calling user's own user namespace (docs/ROOTLESS.md).
enum class BackendKind { kLinux, kSimulation, kRootless };
std::string_view to_string(BackendKind kind);

// How destroy treats processes still inside a namespace. Either way none of them keeps a network
// path: the namespace's links are deleted when it outlives its unmount.
struct DestroyOptions {
  bool kill_processes = false;  // end every process inside with SIGKILL first
};

// A namespace's name: 1 to 64 bytes of [A-Za-z0-9_.-], not starting with '.' or '-', and never
// "." or "..". It is also the file name under the netns dir, so iproute2 can use it.
class NamespaceId {
 public:
  static Result<NamespaceId> parse(std::string_view name);
  const std::string& str() const { return name_; }
  friend bool operator==(const NamespaceId&, const NamespaceId&) = default;
  friend auto operator<=>(const NamespaceId&, const NamespaceId&) = default;

 private:
  explicit NamespaceId(std::string name) : name_(std::move(name)) {}
  std::string name_;
};

// Checks an interface name the way the kernel does: 1 to 15 bytes, no '/', ':' or whitespace,
// not "." or "..".
Result<void> validate_interface_name(std::string_view name);

// A hardware address written "aa:bb:cc:dd:ee:ff" (hex digits of either case); kInvalidArgument
// for anything else. format_mac writes lower case.
Result<std::array<std::uint8_t, 6>> parse_mac(std::string_view text);
std::string format_mac(const std::array<std::uint8_t, 6>& mac);

// The namespace-side interface of a private or bridged namespace.
struct InterfaceConfig {
  std::string name = "eth0";
  IpAddress ip;
  std::uint8_t prefix_len = 24;
  std::optional<IpAddress> gateway;
  // 68..65535; 0: the backend's default (Backend::default_mtu: 1500, rootless: its uplink
  // helper's 65520). NamespaceInfo's interfaces say which one it got.
  std::uint32_t mtu = 0;
  // The interface's hardware address, "02:00:00:00:00:01" (a unicast address); empty: the kernel
  // picks a random one.
  std::string mac;
  // With no `ip`: the address to take if it is usable and free, else the pool's next one (a CNI
  // attachment's address stays the same across a container's restarts).
  std::optional<IpAddress> preferred_ip;
  // Private, dual stack: a static IPv6 address, the ::2/64 of one of the IPv6 pool's /64s. It
  // names the namespace's block: with `ip` too, both must be that block's; without, the IPv4
  // address is the block's .2.
  std::optional<IpPrefix> ip6;
};

// A published port: connections to HOST_IP:host_port reach the namespace's container_port.
struct PortForward {
  std::uint16_t host_port = 0;
  std::uint16_t container_port = 0;
  Protocol protocol = Protocol::kTcp;
  std::optional<IpAddress> host_ip;  // all host addresses when unset

  // "[HOSTIP:]HPORT:PORT[/udp|/tcp]" as the CLI's --publish takes it.
  static Result<PortForward> parse(std::string_view text);
  std::string to_string() const;
  // Whether it covers the host's ::1 (no host address, [::] or [::1]): for a dual-stack
  // namespace the host service relays those (the kernel cannot DNAT ::1 to another host).
  bool covers_ipv6_loopback() const {
    return !host_ip ||
           (host_ip->is_v6() && (host_ip->is_unspecified() || host_ip->is_ipv6_loopback()));
  }
  friend bool operator==(const PortForward&, const PortForward&) = default;
};

// What a CNI runtime calls an attachment netcell-cni made (netcell-cni(8)): the network (the
// conflist's name), the container's id and the interface's name inside it. Empty for namespaces
// made otherwise.
struct CniAttachment {
  std::string network;
  std::string container_id;
  std::string ifname;
  bool empty() const { return container_id.empty(); }
  friend bool operator==(const CniAttachment&, const CniAttachment&) = default;
};

// Membership in a topology file (netcell up): the topology's name and a digest of what the file
// declares for this object. Empty for objects made outside a topology.
struct TopologyTag {
  std::string name;
  std::string digest;
  bool empty() const { return name.empty(); }
  friend bool operator==(const TopologyTag&, const TopologyTag&) = default;
};

// Bandwidth limits, in bits per second, accepted from kMinRateBps (1 kbit/s) to kMaxRateBps
// (1 Tbit/s).
inline constexpr std::uint64_t kMinRateBps = 1'000;
inline constexpr std::uint64_t kMaxRateBps = 1'000'000'000'000;
// A human rate: a decimal number with an optional unit, case-insensitive: bit (the default),
// kbit, mbit, gbit, tbit (powers of 1000; k, m, g, t for short) or kibit, mibit, gibit, tibit
// (powers of 1024). "500kbit", "10Mbit", "2.5mbit", "1gbit", "1000000". Byte units such as
// "mbps" are refused as ambiguous (tc reads "bps" as bytes per second). The result must be a whole
// number of bits per second within [kMinRateBps, kMaxRateBps].
Result<std::uint64_t> parse_rate(std::string_view text);
// The shortest exact form in decimal units: 1000000 -> "1mbit", 2500000 -> "2.5mbit".
std::string format_rate(std::uint64_t bits_per_second);
// kInvalidArgument outside [kMinRateBps, kMaxRateBps].
Result<void> validate_rate(std::uint64_t bits_per_second);

// A namespace's bandwidth limits, each direction on its own; unset = unlimited. Only private and
// bridged namespaces have a link to limit: the Linux backend puts a token bucket (tbf) on the
// egress of each end of the namespace's veth.
struct RateLimit {
  std::optional<std::uint64_t> egress_bps;   // leaving the namespace (its upload)
  std::optional<std::uint64_t> ingress_bps;  // entering the namespace (its download)
  bool empty() const { return !egress_bps && !ingress_bps; }
  friend bool operator==(const RateLimit&, const RateLimit&) = default;
};

// What to create. Build it with a named constructor, then adjust fields:
//   auto cfg = NamespaceConfig::full_isolation(getpid());
//   cfg.name = "sandbox";
// The manager validates it as a whole in create().
struct NamespaceConfig {
  static NamespaceConfig full_isolation(pid_t pid);
  static NamespaceConfig private_network(pid_t pid);
  static NamespaceConfig shared(pid_t pid);
  static NamespaceConfig bridged(pid_t pid, std::string network);

  // Empty: derived from the owner pid ("pid-1234"), or "ns-<random>" without one.
  std::string name;
  IsolationMode mode = IsolationMode::kFull;
  // The owner. 0 = none; otherwise the process must exist when the namespace is created.
  pid_t pid = 0;
  std::string network;  // bridged: the network's name
  std::optional<InterfaceConfig> interface;
  std::vector<PortForward> port_forwards;
  std::vector<IpAddress> dns;
  RateLimit rate;  // private and bridged only
  // Adopt the network namespace that process `adopt_netns_of` already lives in instead of making
  // a new one: netcell names it (a bind mount under the netns dir, so iproute2 sees it) and sets
  // it up for the mode. destroy() removes what netcell added and the name; the namespace itself
  // stays with the process. Refused for shared mode, for the caller's own namespace and for one
  // netcell already manages.
  std::optional<pid_t> adopt_netns_of;
  // Adopt the network namespace at this path instead (an nsfs file: a bind mount such as
  // /run/netns/X, or /proc/PID/ns/net), the way a CNI runtime hands one over: netcell mounts
  // nothing, it records the path and the namespace's identity, so that a namespace that is gone,
  // or another one at the same path, counts as vanished (gc). destroy() removes what netcell
  // added; the namespace stays with its owner. Absolute; not with adopt_netns_of; refused for
  // shared mode, the caller's own namespace and one netcell already manages.
  std::string adopt_netns_path;
  // Recorded as it is (the CNI plugin's names for this attachment).
  CniAttachment cni{};
  TopologyTag topology{};
  // What the namespace may reach (netcell/policy.h); none = everything its mode allows. Private
  // namespaces only for now; refused for full (nothing to allow) and shared (the host's own
  // network is not netcell's to filter).
  std::optional<EgressPolicy> egress;
  // Private: an IPv6 address too (dual stack), from the private network's IPv6 pool. False: IPv4
  // only (`--no-ipv6`). A namespace is IPv4-only anyway where IPv6 cannot be had whole
  // (NamespaceInfo::ipv4_only says why).
  bool ipv6 = true;
};

struct InterfaceInfo {
  std::string name;
  std::vector<IpPrefix> addresses;
  std::uint32_t mtu = 0;
  std::string mac;  // "aa:bb:cc:dd:ee:ff" where the backend knows it
  friend bool operator==(const InterfaceInfo&, const InterfaceInfo&) = default;
};

// Everything known about one namespace.
struct NamespaceInfo {
  std::string name;
  IsolationMode mode = IsolationMode::kFull;
  BackendKind backend = BackendKind::kSimulation;
  // True only when the kernel enforces the mode's isolation (Linux backend). Simulation: false.
  bool enforced = false;
  pid_t owner_pid = 0;
  std::string network;
  // The bind-mounted nsfs file (Linux, not shared); empty otherwise.
  std::string netns_path;
  // Private and bridged: the host-side end of the namespace's veth.
  std::string host_interface;
  std::vector<InterfaceInfo> interfaces;
  std::optional<IpAddress> gateway;
  std::vector<IpAddress> dns;
  std::vector<PortForward> port_forwards;
  std::int64_t created_unix_ms = 0;
  RateLimit rate;
  // The process whose network namespace was adopted (NamespaceConfig::adopt_netns_of); 0 when
  // netcell made the namespace.
  pid_t adopted_from_pid = 0;
  // The path of a namespace adopted by path (NamespaceConfig::adopt_netns_path; the Linux backend
  // also has it as netns_path) and the identity (nsfs inode) it had then; empty and 0 otherwise.
  std::string adopted_netns_path;
  std::uint64_t adopted_netns_inode = 0;
  CniAttachment cni{};
  TopologyTag topology{};
  std::optional<EgressPolicy> egress;
  // With an egress policy: the servers netcell's resolver asks for this namespace (its `dns`
  // is then the gateway, where the resolver answers); empty otherwise.
  std::vector<IpAddress> upstream_dns;
  // Dual stack: the host end's IPv6 address, the namespace's IPv6 default gateway (its IPv6
  // address is the first interface's IPv6 one).
  std::optional<IpAddress> gateway6;
  // A private or bridged namespace without IPv6: why ("--no-ipv6", "the host has IPv6
  // disabled", ...). Empty for a dual-stack one and for the modes without a link.
  std::string ipv4_only;

  friend bool operator==(const NamespaceInfo&, const NamespaceInfo&) = default;
};

// The namespace's own address: the first of its first interface other than loopback (private and
// bridged: its veth end's); nullopt when it has none.
std::optional<IpAddress> primary_address(const NamespaceInfo& info);

// A network namespaces attach to: the implicit routed "private" network (one point-to-point /30
// per namespace, no bridge) or a named bridged network.
struct NetworkConfig {
  std::string name;
  IpPrefix subnet;           // network address / length, e.g. 10.50.0.0/24
  bool nat = false;          // bridged: masquerade traffic leaving the host (IPv6: a ULA subnet6's)
  bool host_access = false;  // bridged: namespaces may reach the host's own addresses
  // Removed with the last namespace that uses it (the networks netcell-cni makes for a CNI
  // configuration); otherwise it stays until `netcell network rm`.
  bool remove_when_unused = false;
  TopologyTag topology{};
  // Bridged, dual stack: the network's IPv6 prefix (a /64 is the usual one; /48 to /120), which
  // must hold as many addresses as `subnet` (a namespace's IPv6 address is the one at the same
  // offset as its IPv4 one); nullopt: IPv4 only.
  std::optional<IpPrefix> subnet6{};
};

// The IPv6 address of a dual-stack namespace (its first interface's IPv6 one); nullopt otherwise.
std::optional<IpPrefix> ipv6_address(const NamespaceInfo& info);

struct NetworkInfo {
  std::string name;
  bool bridged = true;  // false only for the implicit "private" network
  IpPrefix subnet;
  std::optional<IpAddress> gateway;  // bridged: the bridge's address (first host address)
  bool nat = false;
  bool host_access = false;
  std::string bridge;  // bridged: the bridge device
  bool remove_when_unused = false;
  std::int64_t created_unix_ms = 0;
  TopologyTag topology{};
  // The implicit private network: its IPv6 pool (one /64 per namespace); a bridged one: its IPv6
  // prefix (NetworkConfig::subnet6). nullopt when it has none (IPv4 only, a record of an earlier
  // netcell, or a host without IPv6).
  std::optional<IpPrefix> subnet6;
  // Bridged, dual stack: the bridge's IPv6 address (the prefix's first host address).
  std::optional<IpAddress> gateway6{};
  friend bool operator==(const NetworkInfo&, const NetworkInfo&) = default;
};

struct InterfaceStats {
  std::string name;
  std::uint64_t rx_bytes = 0;
  std::uint64_t tx_bytes = 0;
  std::uint64_t rx_packets = 0;
  std::uint64_t tx_packets = 0;
  std::uint64_t rx_errors = 0;
  std::uint64_t tx_errors = 0;
  std::uint64_t rx_dropped = 0;
  std::uint64_t tx_dropped = 0;

  InterfaceStats& operator+=(const InterfaceStats& other);
};

struct NamespaceStats {
  std::string name;
  std::vector<InterfaceStats> interfaces;
  InterfaceStats total;  // the sum over `interfaces`, named "total"
  std::size_t interface_count() const { return interfaces.size(); }
};

}  // namespace netcell
