#include "core/networking.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <fstream>
#include <set>
#include <sstream>

#include "core/files.h"
#include "core/unique_fd.h"

namespace netcell {
namespace {

constexpr char kBroadcastOwner[] = "(broadcast)";

std::int64_t now_unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::vector<std::string> dir_entries(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") out.push_back(name);
  }
  ::closedir(d);
  return out;
}

// A claim's owner; empty when it cannot be read.
std::string claim_owner(const std::string& path) {
  return read_claim(path).value_or("");
}

bool is_number(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// A port claim is a directory per protocol and host port ("tcp-8080") holding one claim per
// claimed host address ("any" for every address) whose value is the owner. Checking a claim reads
// only that port's directory, so its cost does not grow with the number of published ports.
std::string port_dir_name(const PortForward& f) {
  return std::string(to_string(f.protocol)) + "-" + std::to_string(f.host_port);
}
std::string port_entry_name(const PortForward& f) {
  return f.host_ip ? f.host_ip->to_string() : "any";
}

// The address a namespace holds in `subnet`, if any.
std::optional<IpAddress> address_in(const NamespaceInfo& info, const Subnet& subnet) {
  for (const auto& iface : info.interfaces) {
    for (const auto& a : iface.addresses) {
      if (iface.name != "lo" && subnet.contains(a.address)) return a.address;
    }
  }
  return std::nullopt;
}

// Whether two prefixes of any length share an address (IPv4; different families never do).
bool overlaps(const IpPrefix& a, const IpPrefix& b) {
  if (!a.address.is_v4() || !b.address.is_v4()) return false;
  int len = std::min(a.prefix_len, b.prefix_len);
  std::uint32_t mask = len == 0 ? 0 : ~std::uint32_t{0} << (32 - len);
  return (a.address.v4_host_order() & mask) == (b.address.v4_host_order() & mask);
}

// Whether two IPv6 prefixes share an address.
bool overlaps6(const IpPrefix& a, const IpPrefix& b) {
  auto sa = Subnet::from(a);
  auto sb = Subnet::from(b);
  return sa && sb && sa->overlaps(*sb);
}

// The host route (the default routes aside) that shares an address with `prefix`, if any.
std::optional<IpPrefix> host_route_over(const std::vector<IpPrefix>& routes,
                                        const IpPrefix& prefix) {
  for (const auto& route : routes) {
    if (route.prefix_len > 0 &&
        (prefix.address.is_v4() ? overlaps(route, prefix) : overlaps6(route, prefix))) {
      return route;
    }
  }
  return std::nullopt;
}

}  // namespace

void point_dns_at_resolver(NamespaceInfo& info) {
  if (info.egress && info.gateway) {
    if (info.upstream_dns.empty()) info.upstream_dns = info.dns;
    info.dns = {*info.gateway};
  } else if (!info.upstream_dns.empty()) {
    info.dns = std::move(info.upstream_dns);
    info.upstream_dns.clear();
  }
}

std::vector<IpAddress> default_dns_servers(const std::string& resolv_conf) {
  std::vector<IpAddress> out;
  std::ifstream in(resolv_conf);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string keyword, value;
    if (!(words >> keyword >> value) || keyword != "nameserver") continue;
    auto address = IpAddress::parse(value);
    if (!address) continue;
    bool loopback = address->is_v4() ? (address->v4_host_order() >> 24) == 127
                                     : *address == *IpAddress::parse("::1");
    if (!loopback) out.push_back(*address);
  }
  return out;
}

NetworkInfo Networking::private_network() const {
  NetworkInfo n;
  n.name = kPrivateNetwork;
  n.bridged = false;
  if (auto subnet = IpPrefix::parse(private_subnet_)) n.subnet = *subnet;
  n.nat = true;
  return n;
}

Result<IpPrefix> Networking::private_pool6(const Subnet& subnet4) const {
  std::string text = private_subnet6_;
  if (text.empty()) {
    // Generated once (RFC 4193: fd00::/8 and 40 random bits) and kept, so a host's namespaces
    // have the same prefix from one use to the next.
    const std::string path = store_.run_dir() + "/" + kPrivateSubnet6File;
    if (auto kept = read_file(path, 256)) {
      text = *kept;
      while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    } else {
      std::array<std::uint8_t, 16> bytes{};
      bytes[0] = 0xfd;
      for (std::size_t got = 1; got < 6;) {
        ssize_t n = ::getrandom(bytes.data() + got, 6 - got, 0);
        if (n < 0 && errno != EINTR) return fail_errno("getrandom", errno);
        if (n > 0) got += static_cast<std::size_t>(n);
      }
      text = IpPrefix{IpAddress::v6(bytes), 48}.to_string();
      NETCELL_TRY(write_atomically(path, text + "\n"));
    }
  }
  auto subnet = Subnet::parse(text);
  if (!subnet) return fail(std::move(subnet).error().with_context("private IPv6 subnet"));
  if (subnet->base().is_v4()) {
    return fail(ErrorCode::kInvalidArgument,
                "private IPv6 subnet " + text + " is not an IPv6 prefix");
  }
  // One /64 for each /30 block of the IPv4 pool: the namespace in block N has the Nth /64.
  const std::uint64_t blocks4 = subnet4.size() / 4;
  const int bits = kPrivatePrefix6 - subnet->prefix_len();
  if (bits < 0 || (bits < 63 && (std::uint64_t{1} << bits) < blocks4)) {
    int need = 0;
    while ((std::uint64_t{1} << need) < blocks4) ++need;
    return fail(ErrorCode::kInvalidArgument,
                "private IPv6 subnet " + subnet->to_string() + " is too small: each of the " +
                    std::to_string(blocks4) + " namespaces of the IPv4 pool " +
                    subnet4.to_string() + " takes a /64, so it must be a /" +
                    std::to_string(kPrivatePrefix6 - need) + " or shorter");
  }
  return IpPrefix{subnet->base(), subnet->prefix_len()};
}

Result<std::uint64_t> Networking::static_block6(const NamespaceConfig& config,
                                                const NetworkInfo& network, const IpPrefix& ip6,
                                                std::uint64_t blocks) {
  if (const std::string why = ipv4_only_reason(config, network); !why.empty()) {
    return fail(ErrorCode::kInvalidArgument, "static IPv6 address " + ip6.to_string() +
                                                 ": this namespace is IPv4-only (" + why + ")");
  }
  if (network.bridged) {
    // The address at the same offset as the namespace's IPv4 one: that offset is the block.
    auto pool6 = Subnet::from(*network.subnet6);
    auto offset = pool6 ? pool6->offset_of(ip6.address) : std::nullopt;
    if (!offset || *offset < 2 || *offset >= blocks || ip6.prefix_len != pool6->prefix_len()) {
      return fail(ErrorCode::kInvalidArgument,
                  ip6.to_string() + " is not a usable IPv6 address of network '" + network.name +
                      "' (" + network.subnet6->to_string() + ", gateway " +
                      network.gateway6->to_string() + ")");
    }
    return *offset;
  }
  const auto& pool = *network.subnet6;
  const auto& want = ip6.address.bytes();
  const auto& base = pool.address.bytes();
  std::uint64_t upper = 0, base_upper = 0, lower = 0;
  for (int i = 0; i < 8; ++i) {
    upper = (upper << 8) | want[i];
    base_upper = (base_upper << 8) | base[i];
    lower = (lower << 8) | want[8 + i];
  }
  const std::uint64_t block = upper - base_upper;
  auto pool_subnet = Subnet::from(pool);
  const bool inside = pool_subnet && pool_subnet->contains(ip6.address) && block < blocks;
  if (!inside || lower != 2 || ip6.prefix_len != kPrivatePrefix6) {
    return fail(ErrorCode::kInvalidArgument,
                ip6.to_string() + " is not a usable IPv6 address of the private pool " +
                    pool.to_string() + " (each namespace gets a /64 of it and is its ::2/64)");
  }
  return block;
}

std::string Networking::ipv4_only_reason(const NamespaceConfig& config,
                                         const NetworkInfo& network) {
  if (network.bridged && !network.subnet6) {
    return "network '" + network.name + "' has no IPv6 prefix (network create --subnet6)";
  }
  if (!config.ipv6) return "--no-ipv6";
  if (const std::string why = backend_.ipv6_unavailable(); !why.empty()) return why;
  if (!network.subnet6) return "the private network has no IPv6 pool";  // not reached (network_for)
  return {};
}

Result<IpPool> Networking::pool_for(const NetworkInfo& network) const {
  auto subnet = Subnet::from(network.subnet);
  if (!subnet) return fail(subnet.error());
  if (!network.bridged) return IpPool::open(ipam_dir(network.name), *subnet, 4, 0);
  // Bridged: block 0 is the network address, 1 the gateway, the last the broadcast address.
  auto pool = IpPool::open(ipam_dir(network.name), *subnet, 1, 2);
  if (!pool) return fail(pool.error());
  if (subnet->base().is_v4() && !pool->owner_of(pool->capacity() - 1)) {
    (void)pool->reserve(pool->capacity() - 1, kBroadcastOwner);
  }
  return pool;
}

Result<NetworkInfo> Networking::network_for(const NamespaceConfig& config) {
  if (config.mode == IsolationMode::kBridged) {
    auto record = store_.read_network(config.network);
    if (!record) return fail(record.error());
    if (!*record || (*record)->phase != Phase::kReady) {
      return fail(ErrorCode::kNotFound, "network '" + config.network +
                                            "' does not exist (create it with `netcell network "
                                            "create " +
                                            config.network + " --subnet CIDR`)");
    }
    if (!(*record)->info.bridged) {
      return fail(ErrorCode::kInvalidArgument,
                  "network '" + config.network + "' is not a bridged network");
    }
    return (*record)->info;
  }
  auto record = store_.read_network(kPrivateNetwork);
  if (!record) return fail(record.error());
  NetworkInfo wanted = private_network();
  auto subnet = Subnet::parse(private_subnet_);
  // The IPv6 pool is taken (and, the first time, made) only for a namespace that gets IPv6, so a
  // run dir of IPv4-only namespaces never has one.
  NetworkInfo with_pool = wanted;
  with_pool.subnet6 = IpPrefix{};
  const bool wants_ipv6 = ipv4_only_reason(config, with_pool).empty();
  if (*record && (*record)->phase == Phase::kReady && !unused()) {
    // The recorded pools hold while any private namespace uses them; an IPv6 pool can be added
    // to them at any time (a namespace's /64 follows from its IPv4 block, nothing else).
    NetworkInfo in_use = (*record)->info;
    if (in_use.subnet6 || !wants_ipv6) return in_use;
    auto subnet4 = Subnet::from(in_use.subnet);
    if (!subnet4) return fail(subnet4.error());
    auto pool6 = private_pool6(*subnet4);
    if (!pool6) return fail(pool6.error());
    in_use.subnet6 = *pool6;
    auto routes = backend_.host_routes();
    if (auto route = routes ? host_route_over(*routes, *pool6) : std::nullopt) {
      return fail(ErrorCode::kConflict, "private IPv6 subnet " + pool6->to_string() +
                                            " overlaps the host route to " + route->to_string());
    }
    NETCELL_TRY(store_.write_network({in_use, Phase::kReady}));
    return in_use;
  }
  if (!subnet) return fail(std::move(subnet).error().with_context("private subnet"));
  if (wants_ipv6) {
    auto pool6 = private_pool6(*subnet);
    if (!pool6) return fail(pool6.error());
    wanted.subnet6 = *pool6;
  }
  if (*record && (*record)->phase == Phase::kReady && (*record)->info.subnet == wanted.subnet &&
      (*record)->info.subnet6 == wanted.subnet6) {
    return (*record)->info;
  }
  for (const auto& other : store_.list_networks().records) {
    auto other_subnet = Subnet::from(other.info.subnet);
    if (other.info.bridged && other_subnet && subnet->overlaps(*other_subnet)) {
      return fail(ErrorCode::kConflict, "private subnet " + subnet->to_string() +
                                            " overlaps network '" + other.info.name + "' (" +
                                            other_subnet->to_string() + ")");
    }
    // A dual-stack bridged network's IPv6 prefix is not the private pool's either.
    if (other.info.bridged && other.info.subnet6 && wanted.subnet6 &&
        overlaps6(*wanted.subnet6, *other.info.subnet6)) {
      return fail(ErrorCode::kConflict, "private IPv6 subnet " + wanted.subnet6->to_string() +
                                            " overlaps network '" + other.info.name + "' (" +
                                            other.info.subnet6->to_string() + ")");
    }
  }
  if (auto routes = backend_.host_routes()) {
    if (auto route = host_route_over(*routes, wanted.subnet)) {
      return fail(ErrorCode::kConflict, "private subnet " + subnet->to_string() +
                                            " overlaps the host route to " + route->to_string());
    }
    if (auto route = wanted.subnet6 ? host_route_over(*routes, *wanted.subnet6) : std::nullopt) {
      return fail(ErrorCode::kConflict, "private IPv6 subnet " + wanted.subnet6->to_string() +
                                            " overlaps the host route to " + route->to_string());
    }
  }
  wanted.created_unix_ms = now_unix_ms();
  NETCELL_TRY(store_.write_network({wanted, Phase::kReady}));
  return wanted;
}

namespace {

// The block of a static address `ip`/`prefix_len` on `network`, if it is one a namespace may
// have there (kInvalidArgument otherwise).
Result<std::uint64_t> static_block(const IpPool& pool, const NetworkInfo& network,
                                   const IpAddress& ip, std::uint8_t prefix_len) {
  const Subnet& subnet = pool.subnet();
  auto b = pool.block_of(ip);
  if (network.bridged) {
    if (!b || *b < 2 || pool.owner_of(*b) == kBroadcastOwner) {
      return fail(ErrorCode::kInvalidArgument,
                  ip.to_string() + " is not a host address of network '" + network.name + "' (" +
                      subnet.to_string() + ", gateway " + network.gateway->to_string() + ")");
    }
    if (prefix_len != subnet.prefix_len()) {
      return fail(ErrorCode::kInvalidArgument, "network '" + network.name + "' has prefix length " +
                                                   std::to_string(subnet.prefix_len()) + ", not " +
                                                   std::to_string(prefix_len));
    }
    return *b;
  }
  auto offset = subnet.offset_of(ip);
  if (!b || !offset || (*offset % 4 != 1 && *offset % 4 != 2)) {
    return fail(ErrorCode::kInvalidArgument,
                ip.to_string() + " is not a usable address of the private pool " +
                    subnet.to_string() + " (each namespace gets a /30: host .1, namespace .2)");
  }
  if (prefix_len != 30) {
    return fail(ErrorCode::kInvalidArgument,
                "private namespaces use a /30, not /" + std::to_string(prefix_len));
  }
  return *b;
}

// A preferred address's block, reserved for `owner`, when it is usable and free (its old host link
// gone too); nullopt otherwise, and nothing is taken.
std::optional<std::uint64_t> reserve_preferred(
    IpPool& pool, const NetworkInfo& network, const IpAddress& ip, const std::string& owner,
    const std::function<bool(std::uint64_t)>& link_gone) {
  const std::uint8_t len = network.bridged ? pool.subnet().prefix_len() : 30;
  auto b = static_block(pool, network, ip, len);
  if (!b || !pool.reserve(*b, owner)) return std::nullopt;
  if (link_gone(*b)) return *b;
  (void)pool.release(*b, owner);
  return std::nullopt;
}

}  // namespace

Result<void> Networking::assign(const NamespaceConfig& config, const NetworkInfo& network,
                                NamespaceInfo& info) {
  auto pool = pool_for(network);
  if (!pool) return fail(pool.error());
  const Subnet& subnet = pool->subnet();
  InterfaceConfig iface = config.interface.value_or(InterfaceConfig{});
  bool static_ip = config.interface && iface.ip != IpAddress();
  const std::uint8_t prefix_len = network.bridged ? subnet.prefix_len() : 30;
  if (iface.ip6) {
    // A static IPv6 address names the block; the IPv4 address is that block's.
    auto block6 = static_block6(config, network, *iface.ip6, pool->capacity());
    if (!block6) return fail(block6.error());
    // Bridged: the IPv4 address at the same offset; private: the block's namespace end.
    const IpAddress own4 = pool->block_address(*block6, network.bridged ? 0 : 2);
    const std::uint8_t len4 = network.bridged ? subnet.prefix_len() : 30;
    if (static_ip && iface.ip != own4 &&
        (network.bridged || iface.ip != pool->block_address(*block6, 1))) {
      return fail(ErrorCode::kInvalidArgument,
                  iface.ip.to_string() + " and " + iface.ip6->to_string() +
                      " are not one namespace's addresses (" + iface.ip6->to_string() +
                      " goes with " + own4.to_string() + "/" + std::to_string(len4) + ")");
    }
    if (!static_ip) {
      static_ip = true;
      iface.ip = own4;
      iface.prefix_len = len4;
    }
  }
  IpAddress address, gateway;
  auto host_name = [&](std::uint64_t b) {
    return network.bridged ? "nc" + network.bridge.substr(4) + "p" + std::to_string(b)
                           : "ncp" + std::to_string(b);
  };
  std::optional<std::uint64_t> preferred;
  if (!static_ip && iface.preferred_ip) {
    preferred =
        reserve_preferred(*pool, network, *iface.preferred_ip, info.name, [&](std::uint64_t b) {
          auto exists = backend_.host_link_exists(host_name(b));
          return exists && !*exists;
        });
    if (preferred) {
      static_ip = true;
      iface.ip = *iface.preferred_ip;
    }
  }
  std::uint64_t block = 0;
  if (preferred) {
    block = *preferred;
  } else if (static_ip) {
    auto b = static_block(*pool, network, iface.ip, iface.prefix_len);
    if (!b) return fail(b.error());
    block = *b;
    auto reserved = pool->reserve(block, info.name);
    if (!reserved) return fail(reserved.error());
    if (auto free = wait_host_link_gone(host_name(block)); !free) {
      (void)pool->release(block, info.name);
      return fail(free.error());
    }
  } else {
    auto allocated = allocate_unshadowed(*pool, info.name, host_name);
    if (!allocated) return fail(allocated.error());
    block = *allocated;
  }
  info.host_interface = host_name(block);
  if (network.bridged) {
    address = static_ip ? iface.ip : pool->block_address(block);
    gateway = *network.gateway;
  } else {
    address = static_ip ? iface.ip : pool->block_address(block, 2);
    gateway = pool->block_address(block, address == pool->block_address(block, 2) ? 1 : 2);
  }
  if (config.interface && config.interface->gateway && *config.interface->gateway != gateway) {
    (void)pool->release(block, info.name);
    return fail(ErrorCode::kInvalidArgument, "the gateway of this namespace is " +
                                                 gateway.to_string() + ", not " +
                                                 config.interface->gateway->to_string());
  }
  if (const std::string why = ipv4_only_reason(config, network); !why.empty()) {
    for (const auto& f : config.port_forwards) {
      if (f.host_ip && f.host_ip->is_v6()) {
        (void)pool->release(block, info.name);
        return fail(ErrorCode::kInvalidArgument, "cannot publish " + f.to_string() +
                                                     ": this namespace is IPv4-only (" + why + ")");
      }
    }
  }
  if (auto claimed = claim_ports(config.port_forwards, info.name); !claimed) {
    (void)pool->release(block, info.name);
    return fail(claimed.error());
  }
  info.network = network.name;
  info.interfaces = {InterfaceInfo{iface.name,
                                   {IpPrefix{address, prefix_len}},
                                   iface.mtu != 0 ? iface.mtu : backend_.default_mtu(),
                                   iface.mac}};
  info.gateway = gateway;
  info.gateway6.reset();
  info.ipv4_only = ipv4_only_reason(config, network);
  if (info.ipv4_only.empty() && network.bridged) {
    // Dual stack on a bridge: the IPv6 address at the IPv4 one's offset (the block), on the
    // network's prefix; the bridge's address is the gateway. One claim holds both.
    auto pool6 = Subnet::from(*network.subnet6);
    if (!pool6) {
      (void)pool->release(block, info.name);
      return fail(pool6.error());
    }
    info.interfaces[0].addresses.push_back(IpPrefix{pool6->at(block), pool6->prefix_len()});
    info.gateway6 = network.gateway6;
  } else if (info.ipv4_only.empty()) {
    // Dual stack: the /64 of the block's number, the namespace end ::2. The host routes the whole
    // /64 via it (a gateway with a permanent neighbour entry), never onto the link: traffic to the
    // prefix's other addresses goes to the namespace's MAC without a neighbour solicitation, so it
    // cannot fill the host's neighbour table (linux_backend.cc, connect). The gateway is the
    // pool's ::1 (in block 0's /64), one address of the host for every namespace.
    std::array<std::uint8_t, 16> bytes = network.subnet6->address.bytes();
    info.gateway6 = shared_gateway6(*network.subnet6);
    std::uint64_t upper = 0;
    for (int i = 0; i < 8; ++i) upper = (upper << 8) | bytes[i];
    upper += block;
    for (int i = 7; i >= 0; --i, upper >>= 8) bytes[i] = static_cast<std::uint8_t>(upper & 0xff);
    bytes[15] = 2;
    info.interfaces[0].addresses.push_back(IpPrefix{IpAddress::v6(bytes), kPrivatePrefix6});
  }
  info.dns = config.dns.empty() ? default_dns_servers() : config.dns;
  point_dns_at_resolver(info);
  info.port_forwards = config.port_forwards;
  return ok();
}

Result<std::uint64_t> Networking::allocate_unshadowed(
    IpPool& pool, const std::string& owner,
    const std::function<std::string(std::uint64_t)>& host_name) {
  // A block whose host-side link still exists (an earlier namespace's veth the kernel is still
  // freeing) is held while the next is tried, then given back: its name and addresses are not
  // handed out until the old link is gone.
  constexpr int kMaxSkipped = 64;
  std::vector<std::uint64_t> skipped;
  auto give_back = [&] {
    for (auto b : skipped) (void)pool.release(b, owner);
  };
  for (int i = 0; i <= kMaxSkipped; ++i) {
    auto block = pool.allocate(owner);
    if (!block && block.error().code() == ErrorCode::kExhausted && !skipped.empty()) {
      // Every free block is one whose old link the kernel is still freeing: wait for the first.
      const std::uint64_t first = skipped.front();
      skipped.erase(skipped.begin());
      if (auto gone = wait_host_link_gone(host_name(first)); !gone) {
        skipped.push_back(first);
        give_back();
        return fail(gone.error());
      }
      give_back();
      return first;
    }
    if (!block) {
      give_back();
      return fail(block.error());
    }
    auto exists = backend_.host_link_exists(host_name(*block));
    if (!exists) {
      skipped.push_back(*block);
      give_back();
      return fail(exists.error());
    }
    if (!*exists) {
      give_back();
      return *block;
    }
    skipped.push_back(*block);
  }
  give_back();
  return fail(ErrorCode::kExhausted, "the host links of " + std::to_string(kMaxSkipped + 1) +
                                         " free address blocks of " + pool.subnet().to_string() +
                                         " still exist; try again when the kernel has freed them");
}

Result<void> Networking::wait_host_link_gone(const std::string& name) {
  // The kernel frees an unreferenced namespace's veth within ~40-120 ms (notes §1.4).
  constexpr int kTries = 100;
  for (int i = 0; i < kTries; ++i) {
    auto exists = backend_.host_link_exists(name);
    if (!exists) return fail(exists.error());
    if (!*exists) return ok();
    ::usleep(20 * 1000);
  }
  return fail(ErrorCode::kConflict, "host link " + name + " of an earlier namespace at this " +
                                        "address still exists; try again later");
}

void Networking::release(const NamespaceInfo& info, std::vector<std::string>& errors) {
  if (info.network.empty()) return;
  release_ports(info.port_forwards, info.name, errors);
  auto record = store_.read_network(info.network);
  if (!record || !*record) return;  // the network (and its pool) is gone already
  auto pool = pool_for((*record)->info);
  if (!pool) {
    errors.push_back(pool.error().to_string());
    return;
  }
  auto address = address_in(info, pool->subnet());
  if (!address) return;
  auto block = pool->block_of(*address);
  if (!block) return;
  if (auto released = pool->release(*block, info.name); !released) {
    errors.push_back(released.error().to_string());
  }
}

Result<void> Networking::claim_ports(const std::vector<PortForward>& forwards,
                                     const std::string& owner) {
  std::vector<PortForward> taken;
  auto undo = [&] {
    std::vector<std::string> ignored;
    release_ports(taken, owner, ignored);
  };
  for (const auto& f : forwards) {
    std::string dir = ports_dir() + "/" + port_dir_name(f);
    // A directory made just now has no claims to check (netcell processes hold the run-dir lock).
    const bool fresh = ::mkdir(dir.c_str(), 0700) == 0;
    if (auto made = fresh ? ok() : mkdir_parents(dir); !made) {
      undo();
      return fail(made.error());
    }
    // A claim on every address conflicts with any claim on the port, and any claim conflicts
    // with one on every address or on the same address; "::" (every IPv6 address) conflicts
    // with every IPv6 one.
    const bool v6 = f.host_ip && f.host_ip->is_v6();
    const bool all_v6 = v6 && f.host_ip->is_unspecified();
    for (const auto& e : fresh ? std::vector<std::string>{} : dir_entries(dir)) {
      if (e.front() == '.') continue;
      const bool entry_v6 = e.find(':') != std::string::npos;
      if (!f.host_ip || e == "any" || e == port_entry_name(f) || (all_v6 && entry_v6) ||
          (v6 && e == "::")) {
        undo();
        return fail(ErrorCode::kConflict, "host port " + f.to_string() +
                                              " is already published by '" +
                                              claim_owner(dir + "/" + e) + "'");
      }
    }
    if (auto claimed = create_claim(dir + "/" + port_entry_name(f), owner); !claimed) {
      undo();
      if (claimed.error().sys_errno() == EEXIST) {
        return fail(ErrorCode::kConflict, "host port " + f.to_string() + " is already published");
      }
      return fail(claimed.error());
    }
    taken.push_back(f);
  }
  return ok();
}

void Networking::release_ports(const std::vector<PortForward>& forwards, const std::string& owner,
                               std::vector<std::string>& errors) {
  for (const auto& f : forwards) {
    std::string dir = ports_dir() + "/" + port_dir_name(f);
    std::string path = dir + "/" + port_entry_name(f);
    std::string holder = claim_owner(path);
    if (holder.empty()) continue;
    if (holder != owner) {
      errors.push_back("port " + f.to_string() + " is held by '" + holder + "', not '" + owner +
                       "'; left alone");
      continue;
    }
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      errors.push_back(Error::from_errno("release " + path, errno).to_string());
    }
    ::rmdir(dir.c_str());  // fails harmlessly while other claims on the port remain
  }
}

Result<IpAddress> Networking::check_subnet6(const IpPrefix& prefix6, const Subnet& subnet4,
                                            const std::vector<NetworkRecord>& networks) {
  const std::string text = prefix6.to_string();
  if (prefix6.address.is_v4()) {
    return fail(ErrorCode::kInvalidArgument, "subnet6 " + text + " is not an IPv6 prefix");
  }
  if (prefix6.prefix_len < kMinBridgedPrefix6 || prefix6.prefix_len > kMaxBridgedPrefix6) {
    return fail(ErrorCode::kInvalidArgument, "subnet6 " + text + ": the prefix length must be " +
                                                 std::to_string(kMinBridgedPrefix6) + " to " +
                                                 std::to_string(kMaxBridgedPrefix6) +
                                                 " (a /64 is the usual one)");
  }
  auto subnet6 = Subnet::from(prefix6);
  if (!subnet6) return fail(std::move(subnet6).error().with_context("subnet6"));
  // Each namespace's IPv6 address is the one at its IPv4 address's offset.
  const int bits6 = 128 - prefix6.prefix_len, bits4 = 32 - subnet4.prefix_len();
  if (bits6 < bits4) {
    return fail(ErrorCode::kInvalidArgument,
                "subnet6 " + text + " holds fewer addresses than subnet " + subnet4.to_string() +
                    ": it must be a /" + std::to_string(128 - bits4) + " or shorter");
  }
  if (const std::string why = backend_.ipv6_unavailable(); !why.empty()) {
    return fail(ErrorCode::kUnsupported, "subnet6 " + text + ": " + why);
  }
  // Other networks' IPv6 prefixes, the private pool's included (recorded, configured or kept).
  std::vector<std::pair<std::string, IpPrefix>> taken;
  for (const auto& other : networks) {
    if (other.info.subnet6) taken.emplace_back(other.info.name, *other.info.subnet6);
  }
  std::string private6 = private_subnet6_;
  if (private6.empty())
    private6 = read_file(store_.run_dir() + "/" + kPrivateSubnet6File, 256).value_or("");
  while (!private6.empty() && (private6.back() == '\n' || private6.back() == ' '))
    private6.pop_back();
  if (auto p = IpPrefix::parse(private6); p && !p->address.is_v4()) {
    taken.emplace_back(kPrivateNetwork, *p);
  }
  for (const auto& [name, other] : taken) {
    if (overlaps6(prefix6, other)) {
      return fail(ErrorCode::kConflict, "subnet6 " + text + " overlaps network '" + name + "' (" +
                                            other.to_string() + ")");
    }
  }
  return subnet6->at(1);
}

Result<NetworkInfo> Networking::create_network(const NetworkConfig& config) {
  if (auto id = NamespaceId::parse(config.name); !id) {
    return fail(ErrorCode::kInvalidArgument,
                "invalid network name '" + config.name + "': " + id.error().message());
  }
  if (config.name == kPrivateNetwork) {
    return fail(ErrorCode::kInvalidArgument,
                "'private' is the implicit network of private namespaces; choose another name");
  }
  auto subnet = Subnet::from(config.subnet);
  if (!subnet) return fail(subnet.error());
  if (!subnet->base().is_v4()) {
    return fail(ErrorCode::kInvalidArgument,
                "subnet " + subnet->to_string() +
                    " is not an IPv4 prefix (give an IPv6 prefix as --subnet6, with an IPv4 "
                    "--subnet)");
  }
  auto existing = store_.read_network(config.name);
  if (!existing) return fail(existing.error());
  if (*existing) {
    return fail(ErrorCode::kAlreadyExists, "network '" + config.name + "' already exists");
  }
  std::set<int> ids;
  auto networks = store_.list_networks().records;
  networks.push_back({private_network(), Phase::kReady});
  for (const auto& other : networks) {
    auto other_subnet = Subnet::from(other.info.subnet);
    if (other_subnet && subnet->overlaps(*other_subnet)) {
      return fail(ErrorCode::kConflict, "subnet " + subnet->to_string() + " overlaps network '" +
                                            other.info.name + "' (" + other_subnet->to_string() +
                                            ")");
    }
    if (other.info.bridge.rfind("ncbr", 0) == 0)
      ids.insert(std::atoi(other.info.bridge.c_str() + 4));
  }
  auto routes = backend_.host_routes();
  if (!routes) return fail(routes.error());
  if (auto route = host_route_over(*routes, config.subnet)) {
    return fail(ErrorCode::kConflict, "subnet " + subnet->to_string() +
                                          " overlaps the host route to " + route->to_string());
  }
  std::optional<IpAddress> gateway6;
  if (config.subnet6) {
    auto checked = check_subnet6(*config.subnet6, *subnet, networks);
    if (!checked) return fail(checked.error());
    gateway6 = *checked;
    if (auto route = host_route_over(*routes, *config.subnet6)) {
      return fail(ErrorCode::kConflict, "subnet6 " + config.subnet6->to_string() +
                                            " overlaps the host route to " + route->to_string());
    }
  }
  // An id whose bridge name is taken by a link in the kernel (another instance's, or anyone's) is
  // skipped, as address blocks are.
  int id = 0;
  for (;; ++id) {
    if (ids.count(id) != 0) continue;
    auto taken = backend_.host_link_exists("ncbr" + std::to_string(id));
    if (!taken) return fail(taken.error());
    if (!*taken) break;
  }
  NetworkRecord record;
  record.info.name = config.name;
  record.info.bridged = true;
  record.info.subnet = config.subnet;
  record.info.gateway = subnet->at(1);
  record.info.subnet6 = config.subnet6;
  record.info.gateway6 = gateway6;
  record.info.nat = config.nat;
  record.info.host_access = config.host_access;
  record.info.remove_when_unused = config.remove_when_unused;
  record.info.bridge = "ncbr" + std::to_string(id);
  record.info.created_unix_ms = now_unix_ms();
  record.info.topology = config.topology;
  record.phase = Phase::kCreating;
  NETCELL_TRY(store_.write_network(record));
  if (auto made = backend_.create_network(record.info); !made) {
    // The backend removed what it made; anything else by that name is not ours to remove.
    (void)store_.remove_network(config.name);
    return fail(std::move(made).error().with_context("network create " + config.name));
  }
  record.phase = Phase::kReady;
  NETCELL_TRY(store_.write_network(record));
  return record.info;
}

Result<void> Networking::remove_network(const std::string& name) {
  if (name == kPrivateNetwork) {
    return fail(ErrorCode::kInvalidArgument, "the implicit 'private' network cannot be removed");
  }
  auto record = store_.read_network(name);
  if (!record) return fail(record.error());
  if (!*record) return fail(ErrorCode::kNotFound, "network '" + name + "' does not exist");
  std::vector<std::string> users;
  for (const auto& ns : store_.list().records) {
    if (ns.info.network == name) users.push_back(ns.info.name);
  }
  if (!users.empty()) {
    std::string list;
    for (const auto& u : users) list += (list.empty() ? "" : ", ") + u;
    return fail(ErrorCode::kConflict, "network '" + name + "' is in use by " +
                                          std::to_string(users.size()) + " namespace(s): " + list);
  }
  NetworkRecord r = std::move(**record);
  r.phase = Phase::kDestroying;
  NETCELL_TRY(store_.write_network(r));
  NETCELL_TRY(backend_.destroy_network(r.info));
  for (const auto& e : dir_entries(ipam_dir(name))) ::unlink((ipam_dir(name) + "/" + e).c_str());
  ::rmdir(ipam_dir(name).c_str());
  return store_.remove_network(name);
}

std::vector<NetworkInfo> Networking::list_networks() {
  std::vector<NetworkInfo> out;
  auto listing = store_.list_networks();
  auto is_private = [](const NetworkRecord& r) { return r.info.name == kPrivateNetwork; };
  auto it = std::find_if(listing.records.begin(), listing.records.end(), is_private);
  out.push_back(it != listing.records.end() ? it->info : private_network());
  for (const auto& r : listing.records) {
    if (!is_private(r) && r.phase == Phase::kReady) out.push_back(r.info);
  }
  return out;
}

bool Networking::unused() const {
  // This runs on every destroy and must not grow with N: read the directory a few entries at a
  // time (readdir would fill a 32 KiB buffer, hundreds of names) and stop at the first block.
  UniqueFd dir(::open(ipam_dir(kPrivateNetwork).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir) {
    alignas(8) char buf[1024];
    for (;;) {
      long n = ::syscall(SYS_getdents64, dir.get(), buf, sizeof buf);
      if (n <= 0) break;
      for (long at = 0; at < n;) {
        const auto* entry = reinterpret_cast<const struct dirent64*>(buf + at);
        if (is_number(entry->d_name)) return false;
        at += entry->d_reclen;
      }
    }
  }
  for (const auto& r : store_.list_networks().records) {
    if (r.info.bridged) return false;
  }
  return true;
}

void Networking::forget_unused_state() {
  std::string pool = ipam_dir(kPrivateNetwork);
  for (const auto& e : dir_entries(pool)) {
    if (!is_number(e)) ::unlink((pool + "/" + e).c_str());
  }
  ::rmdir(pool.c_str());
  ::rmdir((store_.run_dir() + "/ipam").c_str());
  for (const auto& port : dir_entries(ports_dir())) ::rmdir((ports_dir() + "/" + port).c_str());
  ::rmdir(ports_dir().c_str());
  (void)store_.remove_network(kPrivateNetwork);
}

std::vector<std::string> Networking::sweep_orphans() {
  std::vector<std::string> removed;
  std::set<std::string> names;
  for (const auto& r : store_.list().records) names.insert(r.info.name);
  auto sweep = [&](const std::string& dir, bool numbers_only) {
    for (const auto& e : dir_entries(dir)) {
      if (numbers_only && !is_number(e)) continue;
      std::string owner = claim_owner(dir + "/" + e);
      if (owner.empty() || owner.front() == '(' || names.count(owner) != 0) continue;
      if (::unlink((dir + "/" + e).c_str()) == 0) {
        removed.push_back(dir.substr(store_.run_dir().size() + 1) + "/" + e + " of '" + owner +
                          "'");
      }
    }
  };
  for (const auto& network : dir_entries(store_.run_dir() + "/ipam")) {
    sweep(ipam_dir(network), true);
  }
  for (const auto& port : dir_entries(ports_dir())) {
    sweep(ports_dir() + "/" + port, false);
    ::rmdir((ports_dir() + "/" + port).c_str());
  }
  return removed;
}

std::vector<std::string> Networking::sweep_interrupted_networks() {
  std::vector<std::string> lines;
  for (const auto& record : store_.list_networks().records) {
    if (record.phase == Phase::kReady || !record.info.bridged) continue;
    std::string what = "network " + record.info.name + " (interrupted " +
                       (record.phase == Phase::kCreating ? "create" : "removal") + ")";
    if (auto r = backend_.destroy_network(record.info); !r) {
      lines.push_back(what + ": " + r.error().to_string());
      continue;
    }
    for (const auto& e : dir_entries(ipam_dir(record.info.name))) {
      ::unlink((ipam_dir(record.info.name) + "/" + e).c_str());
    }
    ::rmdir(ipam_dir(record.info.name).c_str());
    (void)store_.remove_network(record.info.name);
    lines.push_back(what);
  }
  return lines;
}

}  // namespace netcell
