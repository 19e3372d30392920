// netcell: the firewall — one nftables table netcell owns (`ip netcell`), changed by one atomic
// transaction per operation (notes §3): libnftables for the table and networks, libnftnl element
// batches for namespaces (nft_elements.h). Per-namespace and per-network state
// lives in set and map elements, never in rules, so adding the 10,000th namespace costs what the
// first did and each packet's lookups are hash/interval lookups, not rule walks. Per-namespace
// elements go only into hash sets and maps, or into the policy's interval sets, which are sharded
// (below) and written with libnftnl batches (libnftables would read a whole interval set back
// first); the other interval sets (src_ok_net, nat_nets) hold only per-network subnets.
//
// The static rules (written once, when the table is created):
//   raw prerouting   a packet from a netcell interface whose source is not that interface's
//                    address (private) or network (bridged) is dropped: no spoofing; so is
//                    anything from a netcell interface to 127.0.0.0/8 (route_localnet is on
//                    for localhost publishing, and a namespace's root could otherwise route
//                    loopback addresses at its gateway)
//   nat prerouting   to a local address: DNAT by HOSTIP.port (pf_*_ip), then by port (pf_*)
//   nat output       the same for the host's own connections, 127.0.0.1 included
//   nat postrouting  masquerade 127.0.0.0/8 sources of DNATed flows (localhost publishing),
//                    DNATed flows that leave where they came in (hairpin), and sources in
//                    nat_src leaving through a non-netcell interface (outbound NAT)
//   filter forward   established and DNATed flows pass; namespace <-> namespace, namespace <->
//                    other network and network <-> network are dropped; a bridged network gets
//                    out only with NAT; unsolicited traffic into namespaces is dropped
//   filter input     from a private namespace only ICMP echo reaches the host; from a bridged
//                    network nothing but ICMP echo unless the network has host access
//   egress           (jumped to from forward and input, after established flows) a source in
//                    pol_ns, a namespace with an egress policy, is refused (TCP reset, else ICMP
//                    admin-prohibited) when a deny set matches, passed on (`return`: the mode's own
//                    rules still apply, a policy never widens them) when an allow set matches or
//                    its default is allow (pol_open), refused otherwise. The rule sets are
//                    concatenated intervals keyed by the source address (the guard makes it the
//                    namespace's own): pol_{allow,deny}_tp  saddr . daddr . l4proto . dport (tcp,
//                    udp), pol_{allow,deny}_ip  saddr . daddr (any protocol, any port),
//                    pol_{allow,deny}_icmp  saddr . daddr (ICMP). These, and pol_learned_tp, are
//                    sharded: 64 of each (NAME_0 .. NAME_63) and 64 chains pol_0 .. pol_63 with
//                    the rules below, one per shard; egress maps the source's address bits 2-7
//                    (`ip saddr & 0.0.0.252`) to its shard's chain (nft_elements.h,
//                    policy_shard). The kernel copies an interval set's whole lookup table in
//                    each transaction that changes it: with one set for all namespaces, each
//                    create paid for every policy loaded. Before any of them, DNS (tcp or
//                    udp port 53) from a policy namespace is refused wherever it goes: its only
//                    DNS is netcell's resolver. After the allow sets, pol_learned_{tp,ip,icmp}
//                    (same keys, elements with timeouts): what the resolver learned for the
//                    namespace from answers for allowed names (Backend::change_learned).
//   nat prerouting   first of all: tcp and udp from a policy namespace (pol_ns, on a netcell
//                    link: the guard has checked its source there) to any host
//                    address is redirected to the resolver's port when it is port 53
//                    (resolver_port maps 53 to it; no element while no resolver runs, and then
//                    nothing is redirected and the egress chain refuses it: DNS fails closed)
//   filter input     ... and before the egress chain, the redirected DNS of a policy namespace
//                    to the resolver's port (resolver_ports) is accepted; first of all, its UDP
//                    queries beyond 2,000 a second, bursts of 200 (per namespace: dns_rate) are
//                    dropped, so that no namespace fills the resolver's socket for the others
// And in the bridge-family table `bridge netcell` (made and deleted with the ip one):
//   guard (bridge prerouting)  a frame from a port named like a bridged namespace's host end
//                    ("nc" and more) that is not in bridge_ports, a live namespace's port, is
//                    dropped before it is bridged: a port that outlived its namespace reaches no
//                    one. A live port (port_in) passes IPv4, ARP and IPv6 only, and only with its
//                    own namespace's address as the source (port_src: port . address; for ARP the
//                    sender address; port_src6: port . IPv6 address, none for an IPv4-only
//                    namespace, whose port passes no IPv6), its neighbour advertisements only for
//                    that address (port_nd6: port . the advertisement's target), and no router
//                    solicitation, advertisement or redirect: no bridged namespace can claim a
//                    peer's address, so the
//                    ip table's policy sets, keyed by source address, name the right namespace.
//                    IPv4 from or to a bridged namespace with an egress policy (pol_routed) is
//                    handed to the host (to_host: the destination MAC becomes kHostMac, which
//                    every netcell bridge delivers locally): the host routes it, peer traffic
//                    included, through the ip table's forward and input chains, so the egress
//                    chain decides on it and refuses it at once (bridge-family reject and
//                    conntrack are optional kernel parts; this needs neither, nor br_netfilter),
//                    and conntrack sees both directions, so replies to connections into the
//                    namespace pass as established
//                    IPv6 the same with pol_routed6, neighbour solicitations and advertisements
//                    excepted (bridged as they are, so that the namespace resolves its peers)
//   forward_filter (bridge forward)  IPv4 or IPv6 from or to a bridged namespace with a policy
//                    that is bridged port to port anyway (only what to_host missed) is dropped
// And in the IPv6 table `ip6 netcell` (made and deleted with the ip one, on hosts with IPv6), for
// dual-stack private namespaces, whose host ends are in ns_ifs6, and dual-stack bridged networks
// (bridges6, bridges_nat6, bridges_host6, src_ok_net6, nat_nets6: the ip table's network sets):
//   guard6 (raw prerouting)  IPv6 from any other netcell link ("nc*") is dropped (those have IPv6
//                    off anyway); from a namespace, a source that is not its own address
//                    (src_ok6: interface . address; link-local ones included) is dropped, from a
//                    bridge one outside its prefix (src_ok_net6), and so is anything to ::1
//   snat_post6       sources in nat_src6 (a ULA pool) or nat_nets6 (a ULA bridged prefix with
//                    --nat) leaving through a non-netcell link are masqueraded (NAT66); a routable
//                    pool or prefix is routed as it is
//   forward_filter6  established and related flows pass (ICMPv6 errors such as packet too big
//                    among them); neighbour solicitations and advertisements that a bridge
//                    bridges (br_netfilter) pass before the egress chain, as in input_filter6;
//                    a bridge's peers reach each other (hairpin6: bridge . bridge),
//                    a bridged network gets out only with --nat (bridges_nat6); a namespace
//                    reaches no other netcell link, and nothing unsolicited reaches a namespace
//   input_filter6    from a namespace only echo requests and neighbour solicitations and
//                    advertisements reach the host (router advertisements, redirects and every
//                    service of the host are dropped); from a bridge the same unless it has host
//                    access (bridges_host6)
//   output_filter6   the host sends no router advertisement or redirect onto a netcell link
// Host-side links (private veth ends of IPv4-only namespaces, bridges) carry IPv4 only: the
// backend turns IPv6 off on them and sets arp_ignore=2, so a namespace can neither configure the
// host with router advertisements nor fill its neighbour table with foreign addresses
// (linux_backend.cc, host_facing_link_af). A dual-stack host end has accept_ra=0, no IPv6 address
// (the gateway is the host's lo address of ensure_gateway6) and a route for the namespace's /64
// via the namespace's address, which has a permanent neighbour entry; the namespace end is NOARP:
// neither end solicits a neighbour on the link (linux_backend.cc, connect).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "netcell/result.h"
#include "netcell/types.h"

struct nft_ctx;

namespace netcell::kernel {

// What one namespace adds to the table.
struct NamespaceRules {
  std::string host_if;      // private: its host-side veth; bridged: empty
  std::string bridge_port;  // bridged: its host-side veth, a port of the network's bridge
  IpAddress address;        // the namespace's address
  bool masquerade = true;   // private: outbound NAT for this address
  // Dual stack (private and bridged): the namespace's IPv6 address; a private one's is
  // masqueraded when masquerade6 (a bridged network masquerades its whole prefix, NetworkRules).
  std::optional<IpAddress> address6;
  bool masquerade6 = false;
  std::vector<PortForward> forwards;
  std::optional<EgressPolicy> egress;  // private and bridged
};

// The addresses an egress policy's elements are keyed by: the namespace's IPv4 address and, for
// a dual-stack namespace, its IPv6 one (without it, IPv6 rules and destinations add nothing:
// the namespace has no IPv6 to filter).
struct PolicySource {
  // Implicit from an address: an IPv4-only namespace.
  PolicySource(const IpAddress& v4_address,  // NOLINT(google-explicit-constructor)
               std::optional<IpAddress> v6_address = std::nullopt)
      : v4(v4_address), v6(std::move(v6_address)) {}
  IpAddress v4;
  std::optional<IpAddress> v6;
};

// The MAC address every netcell bridge delivers to the host besides its own (a permanent local
// entry of its forwarding database): the bridge-family table sends frames of namespaces with a
// policy there, whatever bridge they are on and whatever its own address is. Locally administered.
inline constexpr std::array<std::uint8_t, 6> kHostMac{0x02, 0x6e, 0x63, 0x00, 0x00, 0x01};

// What one bridged network adds to the table.
struct NetworkRules {
  std::string bridge;
  IpPrefix subnet;  // network address / length
  bool nat = false;
  bool host_access = false;
  std::optional<IpPrefix> subnet6{};  // dual stack: its IPv6 prefix
};

// Which netcell instance (state directory) owns the table: kept as the table's comment, so that
// a second instance on the same host, with another run dir, sees the first and refuses instead of
// sharing (and later deleting) its table, link names and address pool. "netcell:" and the run dir,
// bytes outside [A-Za-z0-9/._+@,=-] written %XX; a run dir too long for a comment (nft keeps 128
// bytes) is named by a hash of it.
std::string owner_tag(const std::string& run_dir);
// The run dir a tag names, for messages ("a run dir with hash H" for a hashed one).
std::string describe_owner(const std::string& tag);

namespace nft_script {
// The table with its sets, maps, chains and static rules, tagged with `owner`, as one transaction
// that fails with "File exists" if the table exists (another process made it first); with
// `ipv6`, the ip6 table too (a host with IPv6).
std::string create_table(const std::string& owner, bool ipv6 = true);
// The egress policy's shard sets and chains of one family (ip; ip6 with !v4) and the egress
// chain's rule that picks them: not in create_table, made when the first element that goes into
// one finds none. Running it again changes nothing.
std::string policy_shards_script(bool v4);
std::string delete_table(bool ipv6 = true);
std::string add_network(const NetworkRules& rules);
std::string delete_network(const NetworkRules& rules);
}  // namespace nft_script

class NftSocket;
struct SetElement;

// Loads libnftables (done on first use, not at start) and makes a context: for `netcell doctor`.
Result<std::string> probe_libnftables();
// What the firewall needs: libnftables loads and the kernel's nf_tables answers a query.
// kUnsupported naming what is missing (Backend::ready). Changes nothing.
Result<void> probe_firewall();

// netcell's table in the network namespace of the thread that opened it (notes §3.2): element
// batches over an nfnetlink socket (nft_elements.h) for namespaces, which are the per-create hot
// path; libnftables, loaded on first use, for the table itself and for networks. Not thread-safe.
// The version of the table's sets and chains, kept in its comment after the owner tag ("v1": an
// earlier netcell, whose comment has the owner alone). A change to the sets or chains that
// elements are written into takes the next version (v3: the ip6 table; v4: its published
// ports, pf6_* and hairpin6; v5: its egress policy, pol6_*; v6: the policy's shard sets and
// chains made when the first element needs them, not with the table; v7: bridged IPv6, the
// bridge table's port_src6, port_nd6 and pol_routed6 and the ip6 table's bridges6 and its kin).
inline constexpr char kTableLayout[] = "v7";

class Firewall {
 public:
  // `owner`: the tag (owner_tag) of the instance this Firewall acts for; `ipv6`: the host has
  // IPv6, so the table comes with its ip6 twin.
  static Result<Firewall> open(std::string owner, bool ipv6 = true);
  Firewall(Firewall&&) noexcept;
  Firewall& operator=(Firewall&&) noexcept;
  ~Firewall();

  // kConflict, with a one-line reason, when the table exists and belongs to another instance;
  // changes nothing. A table without a tag (made by an earlier netcell) counts as this one's.
  Result<void> check_owner();
  // Creates the table unless it exists (checked once per Firewall object); kConflict as
  // check_owner when it belongs to another instance, and when it has another layout than
  // kTableLayout (made by another version of netcell: its namespaces must go first).
  Result<void> ensure_table();
  // The next ensure_table asks the kernel again: the table may have gone since (another process
  // sharing the run dir removed it with the last namespace).
  void forget_table() { table_ready_ = false; }
  // One namespace's elements, added as one transaction (nothing applied on error) / removed,
  // ignoring elements already gone.
  Result<void> add_namespace(const NamespaceRules& rules);
  Result<void> remove_namespace(const NamespaceRules& rules);
  // kNotFound naming the set when one of the namespace's elements is not in the tables (CHECK).
  Result<void> verify_namespace(const NamespaceRules& rules);
  // Replaces the egress policy elements of the namespace at `source`: `from`'s go and `to`'s come
  // in one transaction (a bridged namespace's in both tables). When some of `from`'s are missing
  // already (a change a crash interrupted), what is there of them is removed first and `to`'s are
  // added after.
  Result<void> change_policy(const PolicySource& source, bool bridged,
                             const std::optional<EgressPolicy>& from,
                             const std::optional<EgressPolicy>& to);
  // Replaces learned destinations of the namespace at `source` (Backend::change_learned).
  Result<void> change_learned(const PolicySource& source,
                              const std::vector<LearnedDestination>& remove,
                              const std::vector<LearnedDestination>& add);
  // The counters of learned destinations of the namespace at `source`, in order.
  Result<std::vector<PolicyCounter>> learned_counters(
      const PolicySource& source, const std::vector<LearnedDestination>& destinations);
  // Backend::set_resolver_port.
  Result<void> set_resolver_port(std::optional<std::uint16_t> previous,
                                 std::optional<std::uint16_t> port);
  // The kernel's counters of the policy of the namespace at `source`, per rule and default.
  Result<EgressCounters> policy_counters(const PolicySource& source, const EgressPolicy& policy);
  // Runs `script` as one transaction; on error nothing of it is applied and the Error carries
  // nft's first error line.
  Result<void> apply(const std::string& script);
  // Runs every line of `script` on its own, ignoring "No such file or directory": for teardown
  // that must go on when some elements are already gone. Returns the first other error.
  Result<void> apply_each(const std::string& script);
  // Deletes the table if present and this instance's; another instance's is left alone.
  Result<void> remove_table();
  // `nft -j list table ip netcell` equivalent (for tests and doctor); empty when absent.
  Result<std::string> list_json();

 private:
  struct CtxDeleter {
    void operator()(nft_ctx* ctx) const;
  };
  Firewall(std::unique_ptr<NftSocket> socket, std::string owner, bool ipv6);
  // Makes the policy's shard sets and chains of the ip table (and, `with_ipv6`, of the ip6 one)
  // unless they exist (nft_script::policy_shards_script): the table comes without them. One
  // GETSET request a family. Called when an element add (add_namespace, change_policy,
  // change_learned) finds no shard set (kNotFound).
  Result<void> add_policy_shards(bool with_ipv6);
  // The table's owner tag: nullopt when there is no table, "" when it has no tag.
  Result<std::optional<std::string>> table_owner();
  // The kernel's counter of each element (zero for one not there), listing each set once.
  Result<std::vector<PolicyCounter>> element_counters(const std::vector<SetElement>& elements);
  // The libnftables context, made on first use (in the thread that opened this Firewall's socket,
  // so both act on the same namespace).
  Result<nft_ctx*> context();
  std::unique_ptr<NftSocket> socket_;
  std::string owner_;
  bool ipv6_ = true;
  std::unique_ptr<nft_ctx, CtxDeleter> ctx_;
  bool table_ready_ = false;
  std::string table_layout_ = kTableLayout;  // of the table that exists (table_owner)
};

}  // namespace netcell::kernel
