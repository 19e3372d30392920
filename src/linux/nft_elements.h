// netcell: per-namespace set and map elements of the `ip netcell` table, written as one nfnetlink
// transaction through libnftnl (notes §3.7). libnftables, which owns the table's text form (rules,
// chains, set declarations), first reads the table back into its cache before every command — with
// N namespaces that is every element of every set, so a fresh context (one per CLI process) paid
// O(N) per create. An element batch needs no cache: the set declarations in create_table() fix each
// element's byte layout, which the encoders below reproduce exactly as nft encodes it.
//
// Layout (nft's datatype encodings; every field of a concatenation is padded to 4 bytes):
//   ifname              16 bytes, NUL-padded          ipv4_addr      4 bytes, network order
//   inet_service        2 bytes, network order        concatenation  fields in order, each padded
//
//   ns_ifs    ifname                        src_ok    ifname . ipv4_addr   (16 + 4)
//   hairpin   ifname . ifname (16 + 16)     nat_src   ipv4_addr
//   pf_tcp / pf_udp        inet_service (2)              : ipv4_addr . inet_service (4 + 4)
//   pf_tcp_ip / pf_udp_ip  ipv4_addr . inet_service (8)  : ipv4_addr . inet_service (4 + 4)
//   pol_ns, pol_open       ipv4_addr
//   bridge_ports (table bridge netcell)   ifname
//   port_src (table bridge netcell)       ifname . ipv4_addr (16 + 4)
//   pol_routed (table bridge netcell)     ipv4_addr
//   port_src6, port_nd6 (bridge netcell)  ifname . ipv6_addr (16 + 16; port_nd6's second field is
//                                         the raw 128 bits of the advertisement's target)
//   pol_routed6 (table bridge netcell)    ipv6_addr
//   ns_ifs6 (table ip6 netcell) ifname     src_ok6  ifname . ipv6_addr (16 + 16)
//   nat_src6 (table ip6 netcell) ipv6_addr (16)   hairpin6  ifname . ifname (16 + 16)
//   pf6_tcp / pf6_udp        inet_service (2)              : ipv6_addr . inet_service (16 + 4)
//   pf6_tcp_ip / pf6_udp_ip  ipv6_addr . inet_service (20) : ipv6_addr . inet_service (16 + 4)
//   pol_*_tp_K ipv4_addr . ipv4_addr . inet_proto . inet_service (4 + 4 + 4 + 4), a range: KEY
//              and KEY_END (the kernel's concatenated-interval sets take every field as a range)
//   pol_*_ip_K, pol_*_icmp_K   ipv4_addr . ipv4_addr (4 + 4), a range likewise (K: the shard,
//              policy_shard below); pol_learned_ip, pol_learned_icmp the same keys, no range
//   pol6_* (table ip6 netcell)  the same sets for IPv6 (pol6_ns, pol6_open, pol6_default
//              ipv6_addr; pol6_*_tp_K ipv6_addr . ipv6_addr . inet_proto . inet_service
//              (16 + 16 + 4 + 4); pol6_*_ip_K, pol6_*_icmp_K ipv6_addr . ipv6_addr (16 + 16);
//              K: policy_shard6), keyed by the namespace's IPv6 address
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "linux/firewall.h"
#include "linux/netlink.h"
#include "netcell/result.h"

namespace netcell::kernel {

// The set of live bridge ports, in netcell's bridge-family table (`bridge netcell`).
inline constexpr char kBridgePortsSet[] = "bridge_ports";
// The bridge-family table's other sets (firewall.h): each live port with its namespace's address,
// and the addresses of bridged namespaces with an egress policy.
inline constexpr char kPortSourceSet[] = "port_src";
inline constexpr char kRoutedSet[] = "pol_routed";
// Their IPv6 twins (dual-stack bridged namespaces): port . its IPv6 address as the source, and as
// the target of its neighbour advertisements; the IPv6 addresses of those with a policy.
inline constexpr char kPortSource6Set[] = "port_src6";
inline constexpr char kPortNd6Set[] = "port_nd6";
inline constexpr char kRouted6Set[] = "pol_routed6";
// The IPv6 table's sets (`ip6 netcell`, firewall.h): dual-stack host ends, each with its
// namespace's IPv6 address, and the masqueraded IPv6 sources.
inline constexpr char kIfs6Set[] = "ns_ifs6";
inline constexpr char kSourceOk6Set[] = "src_ok6";
inline constexpr char kNat6Set[] = "nat_src6";
inline constexpr char kHairpin6Set[] = "hairpin6";
// Published ports over IPv6: by port (any IPv6 address of the host) and by address . port.
inline constexpr char kPf6Tcp[] = "pf6_tcp";
inline constexpr char kPf6Udp[] = "pf6_udp";
inline constexpr char kPf6TcpIp[] = "pf6_tcp_ip";
inline constexpr char kPf6UdpIp[] = "pf6_udp_ip";
// The rate limits' dynamic sets (firewall.cc): the refused-flow log's per source, IPv4 and IPv6,
// and the resolver's per-source query limit. The kernel adds a source's element (its bucket) at
// its first packet; netcell takes it out when the namespace goes.
inline constexpr char kLogRateSet[] = "log_rate";
inline constexpr char kLogRate6Set[] = "log_rate6";
inline constexpr char kDnsRateSet[] = "dns_rate";
// The IPv6 egress policy's sets all start with this (pol6_ns, pol6_allow_tp_5, ...).
inline constexpr char kPolicy6Prefix[] = "pol6_";
// Whether set `name` is in `bridge netcell` / `ip6 netcell` (every other set is in `ip netcell`).
// Set names are unique across the tables.
bool in_bridge_table(const std::string& name);
bool in_ip6_table(const std::string& name);
// The family (NFPROTO_*) of the table that holds set `name`.
std::uint16_t table_family(const std::string& name);

// One element of a named set or map: its key and, for a map, its data, as the kernel stores them.
struct SetElement {
  std::string set;
  std::vector<std::uint8_t> key;
  std::vector<std::uint8_t> data;     // empty for a plain set
  std::vector<std::uint8_t> key_end;  // a range's last key (concatenated interval sets); or empty
  std::uint64_t timeout_ms = 0;       // sets with timeouts: how long it stays (0: for ever)
  friend bool operator==(const SetElement&, const SetElement&) = default;
};

namespace nft_encode {
std::vector<std::uint8_t> ifname(const std::string& name);
std::vector<std::uint8_t> ipv4(const IpAddress& address);
std::vector<std::uint8_t> ipv6(const IpAddress& address);  // 16 bytes, network order
std::vector<std::uint8_t> service(std::uint16_t port);
std::vector<std::uint8_t> proto(std::uint8_t ip_protocol);
// Concatenation: each field padded to a multiple of 4 bytes.
std::vector<std::uint8_t> concat(const std::vector<std::vector<std::uint8_t>>& fields);
}  // namespace nft_encode

// The policy sets with intervals (pol_{allow,deny}_{tp,ip,icmp}, pol_learned_tp) are sharded:
// kPolicyShards sets of each kind, named BASE_K, and the namespace at address A uses shard
// policy_shard(A), address bits 2-7 (firewall.cc, create_table: the egress chain maps
// `ip saddr & kPolicyShardMask` to the shard's chain). Private namespaces take consecutive /30
// blocks and bridged ones consecutive addresses, so namespaces made one after another spread
// over all shards and each set holds about 1/kPolicyShards of the namespaces' elements.
inline constexpr unsigned kPolicyShards = 64;
inline constexpr char kPolicyShardMask[] = "0.0.0.252";
unsigned policy_shard(const IpAddress& source);
// The masked address that selects shard `k`, as nft writes it ("0.0.0.4" for 1).
std::string policy_shard_key(unsigned k);
// The IPv6 twin (pol6_* sets, chains pol6_0 .. pol6_63): bits 56-63 of the address, the low
// bits of its /64's number (each private namespace has the /64 of its IPv4 block's number, so
// namespaces spread over the shards as they do for IPv4); the chain maps `ip6 saddr &
// kPolicyShardMask6` to the shard's chain.
inline constexpr char kPolicyShardMask6[] = "0:0:0:3f::";
unsigned policy_shard6(const IpAddress& source);
std::string policy_shard_key6(unsigned k);  // "::" for 0, "0:0:0:1::" for 1
// The name of the shard of set `base` that the namespace at `source` uses: policy_shard for an
// IPv4 source, policy_shard6 for an IPv6 one ("pol_allow_tp" -> "pol_allow_tp_5").
std::string policy_set(const char* base, const IpAddress& source);

// The elements one namespace adds to the tables (its policy's included).
Result<std::vector<SetElement>> namespace_elements(const NamespaceRules& rules);
// The rate limits' elements of the namespace (kLogRateSet ...): keyed by its addresses, present
// only once it sent something the limits count. firewall.cc removes them with an add first (a
// no-op where the kernel made one), so a destroy needs no listing and no second transaction.
std::vector<SetElement> rate_elements(const NamespaceRules& rules);
// The element that hands the traffic of the bridged namespace at `source` to the host's IP stack
// while it has an egress policy (pol_routed).
// An IPv6 source (a dual-stack namespace's) goes to pol_routed6.
SetElement routed_element(const IpAddress& source);

// An address as a number (host order): IPv4 in the low 32 bits, IPv6 in all 128.
__extension__ typedef unsigned __int128 PolicyAddress;
// A destination box of a policy set: addresses × ports, both inclusive.
struct PolicyBox {
  PolicyAddress first_address = 0, last_address = 0;
  std::uint16_t first_port = 0, last_port = 0;
  friend bool operator==(const PolicyBox&, const PolicyBox&) = default;
};
// Boxes that do not overlap and cover exactly what `boxes` cover together. With `origins`, also
// the index in `boxes` each piece was cut from.
std::vector<PolicyBox> disjoint_boxes(const std::vector<PolicyBox>& boxes,
                                      std::vector<std::size_t>* origins = nullptr);
// The most elements one namespace's policy may become.
inline constexpr std::size_t kMaxPolicyElements = 4096;
// Appends the elements of the egress policy of the namespace whose address is `source`;
// kInvalidArgument when its overlapping rules would need more than kMaxPolicyElements. With
// `rule_of`, also each appended element's rule (its index in policy.rules; kDefaultElement for
// the element that counts the default, kNoRule for the others).
inline constexpr int kNoRule = -1;
inline constexpr int kDefaultElement = -2;
Result<void> policy_elements(const PolicySource& source, const EgressPolicy& policy,
                             std::vector<SetElement>& out, std::vector<int>* rule_of = nullptr);
// The elements of destinations learned for the namespace at `source`, each with the time left
// until its expiry as of `now_unix_ms`, rounded up to whole seconds (at least 1 s). IPv6
// destinations go to the pol6_learned_* sets, keyed by source.v6 (none without it).
std::vector<SetElement> learned_elements(const PolicySource& source,
                                         const std::vector<LearnedDestination>& destinations,
                                         std::int64_t now_unix_ms);
// The resolver redirect's elements: resolver_port 53 -> `port` and resolver_ports `port`.
std::vector<SetElement> resolver_port_elements(std::uint16_t port);
// One element as the kernel lists it, with its counter.
struct CountedElement {
  std::vector<std::uint8_t> key, key_end;
  PolicyCounter counter;
};

enum class ElementOp { kAdd, kDelete };

// One nfnetlink batch: BATCH_BEGIN, one NEWSETELEM (create, no exclusive flag: re-adding an
// identical element is a no-op, as with `nft add element`) or DELSETELEM per set with its
// elements, BATCH_END. Only the last set message asks for an ACK (the kernel reports every
// failing message anyway, see NetlinkSocket::send_batch). Pure: no socket. Sequence numbers start
// at `seq`; the one of the message that asks for the ACK is stored in `ack_seq`. `elements` must
// not be empty.
std::vector<std::uint8_t> build_element_batch(ElementOp op, const std::vector<SetElement>& elements,
                                              std::uint32_t seq, std::uint32_t& ack_seq);
// The same with several steps in one transaction, in order (e.g. delete these, then add those):
// all of it or nothing. Steps may be empty, not all of them.
struct ElementStep {
  ElementOp op;
  std::vector<SetElement> elements;
};
std::vector<std::uint8_t> build_element_batch(const std::vector<ElementStep>& steps,
                                              std::uint32_t seq, std::uint32_t& ack_seq);

// An NETLINK_NETFILTER socket bound to the network namespace of the thread that opened it.
// Not thread-safe.
class NftSocket {
 public:
  static Result<NftSocket> open();

  // Whether `table ip NAME` exists (one GETTABLE request, no dump).
  Result<bool> table_exists(const std::string& name);
  // The comment of `table ip NAME` (empty when it has none); nullopt when there is no such table.
  // One GETTABLE request.
  Result<std::optional<std::string>> table_comment(const std::string& name);
  // Whether netcell's set `name` exists (in the table its name belongs to: in_ip6_table,
  // in_bridge_table). One GETSET request, no dump.
  Result<bool> set_exists(const std::string& name);
  // Applies the elements as one transaction: all or nothing. kNotFound when a set (or, for a
  // delete, an element) does not exist, kAlreadyExists when a map key exists with other data.
  Result<void> apply(ElementOp op, const std::vector<SetElement>& elements);
  // Every element of set `name` with its counter (one GETSETELEM dump).
  Result<std::vector<CountedElement>> list_counted(const std::string& name);
  // The steps in one transaction, in order: all or nothing. Empty steps are skipped.
  Result<void> apply_steps(const std::vector<ElementStep>& steps);
  // Deletes `remove` and adds `add` in one transaction: all or nothing.
  Result<void> replace(const std::vector<SetElement>& remove, const std::vector<SetElement>& add);
  // Deletes what of `elements` exists: one transaction, or, when some are already gone, one per
  // element (missing ones ignored). Returns the first other error.
  Result<void> remove_present(const std::vector<SetElement>& elements);

 private:
  explicit NftSocket(NetlinkSocket socket) : socket_(std::move(socket)) {}
  NetlinkSocket socket_;
  std::uint32_t seq_ = 1;
};

}  // namespace netcell::kernel
