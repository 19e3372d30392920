// netcell: the backend-neutral half of networked namespaces — networks, address assignment and
// published-port claims. The simulation and Linux backends get the same addresses and the same
// conflicts from here.
//
//   RUN_DIR/ipam/NETWORK/BLOCK   one file per address block in use (see IpPool)
//   RUN_DIR/ports/tcp-8080/any   a published host port on every address, holding the owner
//   RUN_DIR/ports/tcp-8080/IP    a published host port on one host address
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/ipam.h"
#include "core/state_store.h"
#include "netcell/backend.h"
#include "netcell/types.h"

namespace netcell {

inline constexpr char kPrivateNetwork[] = "private";
inline constexpr char kDefaultPrivateSubnet[] = "10.209.0.0/16";
// A private namespace's IPv6 prefix is the /64 of its IPv4 block's number in the IPv6 pool, the
// namespace end ::2/64 (networking.cc, assign); its gateway is shared_gateway6.
inline constexpr std::uint8_t kPrivatePrefix6 = 64;
// The IPv6 gateway of every private namespace of the pool `subnet6`: its ::1, an address of the
// host's lo (linux_backend.cc, ensure_gateway6).
inline IpAddress shared_gateway6(const IpPrefix& subnet6) {
  auto bytes = subnet6.address.bytes();
  bytes[15] = 1;
  return IpAddress::v6(bytes);
}
// The file that keeps the generated ULA pool, in the run dir.
inline constexpr char kPrivateSubnet6File[] = "private-subnet6";
// A bridged network's IPv6 prefix lengths (NetworkConfig::subnet6).
inline constexpr std::uint8_t kMinBridgedPrefix6 = 48;
inline constexpr std::uint8_t kMaxBridgedPrefix6 = 120;

class Networking {
 public:
  // `private_subnet6`: the private network's IPv6 pool; empty: the run dir's generated ULA /48
  // (RUN_DIR/private-subnet6, made once from random bits and kept).
  Networking(const StateStore& store, Backend& backend, std::string private_subnet,
             std::string private_subnet6 = {})
      : store_(store),
        backend_(backend),
        private_subnet_(std::move(private_subnet)),
        private_subnet6_(std::move(private_subnet6)) {}

  // The network `config` attaches to. The implicit private network is recorded on first use with
  // the configured private subnet; a bridged network must exist (kNotFound otherwise).
  Result<NetworkInfo> network_for(const NamespaceConfig& config);

  // Takes an address block and the published ports for `info` (named, mode set) and fills in its
  // interfaces, gateway, host interface and DNS. On failure takes nothing.
  Result<void> assign(const NamespaceConfig& config, const NetworkInfo& network,
                      NamespaceInfo& info);
  // Gives back what assign took; missing pieces are fine. Errors are appended to `errors`.
  void release(const NamespaceInfo& info, std::vector<std::string>& errors);

  // Validates, checks for overlaps with the host's routes and other networks, journals and
  // creates a bridged network.
  Result<NetworkInfo> create_network(const NetworkConfig& config);
  // Refused while a namespace uses it.
  Result<void> remove_network(const std::string& name);
  // Every network, the implicit private one first (shown even before first use).
  std::vector<NetworkInfo> list_networks();

  // True when no namespace holds an address and no bridged network exists: the backend's shared
  // state (the firewall table) can go.
  bool unused() const;
  // With unused() true: forgets the implicit private network's record, pool and port claims, so
  // the run dir is as it was before the first networked namespace.
  void forget_unused_state();
  // Address blocks and port claims whose owner has no namespace record (a create killed between
  // taking them and journaling). Removed; returns one line per removal.
  std::vector<std::string> sweep_orphans();
  // Rolls back network creates and removals that were interrupted (records not "ready"); one
  // line per network, errors included.
  std::vector<std::string> sweep_interrupted_networks();

 private:
  Result<IpPool> pool_for(const NetworkInfo& network) const;
  NetworkInfo private_network() const;
  // The private network's IPv6 pool: the configured one, validated against the IPv4 pool
  // `subnet4` (a /64 for each of its blocks), or the run dir's generated ULA /48.
  Result<IpPrefix> private_pool6(const Subnet& subnet4) const;
  // The block (of `blocks`) whose /64 holds the static IPv6 address `ip6` of `config`;
  // kInvalidArgument when it is not a namespace end's (::2/64 of a block of the pool) or the
  // namespace gets no IPv6.
  Result<std::uint64_t> static_block6(const NamespaceConfig& config, const NetworkInfo& network,
                                      const IpPrefix& ip6, std::uint64_t blocks);
  // A bridged network's IPv6 prefix, checked against its IPv4 subnet (as many addresses) and the
  // other networks' IPv6 prefixes (`networks`, and the private pool): the bridge's IPv6 address.
  Result<IpAddress> check_subnet6(const IpPrefix& prefix6, const Subnet& subnet4,
                                  const std::vector<NetworkRecord>& networks);
  // Why a namespace of `config` on `network` gets no IPv6 address; empty when it gets one.
  std::string ipv4_only_reason(const NamespaceConfig& config, const NetworkInfo& network);
  Result<void> claim_ports(const std::vector<PortForward>& forwards, const std::string& owner);
  // A free block whose host-side link (named by `host_name`) does not exist in the kernel.
  Result<std::uint64_t> allocate_unshadowed(
      IpPool& pool, const std::string& owner,
      const std::function<std::string(std::uint64_t)>& host_name);
  // Waits, bounded, until the host link `name` of an earlier namespace is gone (kConflict if not).
  Result<void> wait_host_link_gone(const std::string& name);
  void release_ports(const std::vector<PortForward>& forwards, const std::string& owner,
                     std::vector<std::string>& errors);
  std::string ports_dir() const { return store_.run_dir() + "/ports"; }
  std::string ipam_dir(const std::string& network) const {
    return store_.run_dir() + "/ipam/" + network;
  }

  const StateStore& store_;
  Backend& backend_;
  std::string private_subnet_;
  std::string private_subnet6_;
};

// The DNS servers a namespace gets when the caller names none: the nameservers of `resolv_conf`
// that a namespace can reach (loopback ones, such as a local stub resolver, cannot be).
std::vector<IpAddress> default_dns_servers(const std::string& resolv_conf = "/etc/resolv.conf");
// Makes `info.dns` follow its egress policy: with one, the namespace's DNS is netcell's resolver at
// its gateway and the servers it had become the resolver's upstreams (upstream_dns); without one,
// back to those servers.
void point_dns_at_resolver(NamespaceInfo& info);

}  // namespace netcell
