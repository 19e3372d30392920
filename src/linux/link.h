// netcell: links, addresses, routes and per-device settings over rtnetlink (notes §2.1, §2.2).
// Every builder is pure (golden-tested without privileges); send with NetlinkSocket::request.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "linux/netlink.h"
#include "netcell/types.h"

namespace netcell::kernel {

namespace rtnl {

// RTM_NEWLINK NLM_F_CREATE|NLM_F_EXCL: a veth pair whose host end `host_name` stays in the
// socket's namespace and whose peer `peer_name` is created directly inside the namespace
// `peer_netns_fd` (never created and then moved: that is ~100x slower, notes §2.1). Both ends
// get `mtu` (0 = kernel default). `host_ifindex` / `peer_ifindex` choose the indexes (0 = kernel
// picks).
// `host_mac` / `peer_mac`, when given, are the ends' MAC addresses (else the kernel picks random
// ones). `peer_noarp`: the peer is IFF_NOARP ("ip link set NAME arp off"): it sends no ARP or
// IPv6 neighbour solicitation, and a neighbour on its link that has no entry (or lost its
// permanent one) is its own MAC address, so with the host end's MAC the same, the peer never needs
// neighbour discovery to reach the host end. DAD is skipped on it too.
NlMessage veth_create(const std::string& host_name, const std::string& peer_name, int peer_netns_fd,
                      std::uint32_t mtu, int host_ifindex = 0, int peer_ifindex = 0,
                      const std::array<std::uint8_t, 6>* host_mac = nullptr,
                      const std::array<std::uint8_t, 6>* peer_mac = nullptr,
                      bool peer_noarp = false);
// A random locally administered unicast MAC address.
std::array<std::uint8_t, 6> random_mac();
// RTM_NEWNEIGH NLM_F_CREATE|NLM_F_REPLACE {AF_INET or AF_INET6, ifindex, NUD_PERMANENT} with
// NDA_DST `address` and NDA_LLADDR `mac`: `ip neigh replace ADDRESS lladdr MAC dev IF nud
// permanent`. The kernel's neighbour table is one for the whole host (gc_thresh3, 1,024 by
// default, counts the entries of every network namespace); permanent entries are not counted
// (kernel 4.19+: they are exempt from its garbage collection), and the link's own traffic then
// needs no ARP. Both ends of a private namespace's veth get one for the other end.
NlMessage neigh_add_permanent(int ifindex, const IpAddress& address,
                              const std::array<std::uint8_t, 6>& mac);
// RTM_NEWLINK NLM_F_CREATE|NLM_F_EXCL of kind "bridge". Kernel quirk: an MTU given here does not
// count as set by the user, so the bridge's MTU follows the smallest MTU of its ports once they
// join (an MTU set later with link_set sticks). Multicast snooping off (IFLA_BR_MCAST_SNOOPING 0):
// with it on, every port coming up or getting carrier walks all ports of the bridge and re-arms
// each one's multicast timers (br_port_state_selection, br_multicast_enable_port), so a create on a
// network of 1,000 namespaces cost ~0.6 ms more than on an empty one (docs/BENCHMARKS.md). Off,
// multicast (IPv6 neighbour discovery among them) is flooded to the network's ports as IPv4's ARP
// broadcasts are; snooping was no boundary anyway: a port that joins more groups than the bridge's
// multicast table holds makes the kernel turn it off for the whole bridge.
NlMessage bridge_create(const std::string& name, std::uint32_t mtu);
// RTM_NEWLINK on an existing link by name (ifi_index 0 + IFLA_IFNAME): up/down, optional MTU.
NlMessage link_set(const std::string& name, bool up, std::uint32_t mtu = 0);
// RTM_NEWLINK by name: IFLA_MASTER = master_ifindex (0 releases).
NlMessage link_set_master(const std::string& name, int master_ifindex);
// RTM_DELLINK by name.
NlMessage link_delete(const std::string& name);
// RTM_GETLINK by name (reply parsed with parse_link).
NlMessage link_get(const std::string& name);
// RTM_NEWLINK by name: hairpin (IFLA_BRPORT_MODE) and isolated (IFLA_BRPORT_ISOLATED) of a
// bridge port, the effect of `bridge link set dev NAME hairpin on isolated on`. Sent as
// IFLA_LINKINFO { IFLA_INFO_SLAVE_KIND "bridge", IFLA_INFO_SLAVE_DATA {...} }: the
// IFLA_PROTINFO form `bridge` uses needs RTM_SETLINK{AF_BRIDGE} by ifindex, and RTM_NEWLINK
// silently ignores IFLA_PROTINFO.
NlMessage bridge_port_set(const std::string& name, bool hairpin, bool isolated);
// RTM_NEWNEIGH NLM_F_CREATE|NLM_F_REPLACE {AF_BRIDGE, bridge_ifindex, NUD_PERMANENT, NTF_SELF}
// with NDA_LLADDR `mac`: a local entry in the bridge's forwarding database, the effect of
// `bridge fdb replace MAC dev BRIDGE self permanent`. The bridge then hands frames to `mac` to the
// host as it does frames to its own address. Applying it twice changes nothing.
NlMessage bridge_fdb_add_local(int bridge_ifindex, const std::array<std::uint8_t, 6>& mac);
// RTM_NEWLINK by name with IFLA_AF_SPEC { AF_INET { IFLA_INET_CONF { index = value, ... } },
// AF_INET6 { IFLA_INET6_ADDR_GEN_MODE = NONE } } (each part only when asked for): IPv4 device
// settings (IPV4_DEVCONF_*, the /proc/sys/net/ipv4/conf/NAME files) and no IPv6 link-local
// address, in one message and so one link notification. (Describing a veth end whose peer is in
// another namespace makes the kernel look the peer up among every namespace id its own namespace
// holds, one by one: with N namespaces, each notification of a host end costs O(N).)
NlMessage set_link_af(const std::string& name,
                      const std::vector<std::pair<int, std::uint32_t>>& ipv4_conf,
                      bool ipv6_addr_gen_none);
// set_link_af with IPv4 settings only.
NlMessage set_ipv4_conf(const std::string& name,
                        const std::vector<std::pair<int, std::uint32_t>>& values);
// set_ipv4_conf with ROUTE_LOCALNET = on.
NlMessage set_route_localnet(const std::string& name, bool on);
// set_link_af with IFLA_INET6_ADDR_GEN_MODE = NONE only: no link-local address, so no router
// solicitations or DAD floods on shared bridges (notes §8).
NlMessage set_ipv6_addr_gen_none(const std::string& name);
// RTM_NEWADDR NLM_F_CREATE|NLM_F_EXCL on ifindex: IFA_LOCAL and IFA_ADDRESS = prefix.address.
// With `peer`, IFA_ADDRESS = peer (a point-to-point address, "ip addr add A peer P/32").
// `flags`: IFA_F_*, e.g. IFA_F_NODAD (an IPv6 address usable at once, "nodad"); those past the
// 8 bits of ifa_flags (IFA_F_NOPREFIXROUTE, "noprefixroute") go in IFA_FLAGS, with the rest.
NlMessage addr_add(int ifindex, const IpPrefix& prefix, std::optional<IpAddress> peer = {},
                   std::uint32_t flags = 0);
// RTM_DELADDR of `prefix` on ifindex ("ip addr del PREFIX dev IF").
NlMessage addr_delete(int ifindex, const IpPrefix& prefix);
// RTM_NEWROUTE NLM_F_CREATE|NLM_F_EXCL, main table, proto static: to `dst` (0.0.0.0/0 for the
// default route) via `gateway` (optional) out of `oif`; scope link when there is no gateway.
// `onlink`: RTNH_F_ONLINK, the gateway is on `oif`'s link without a route saying so ("onlink").
NlMessage route_add(const IpPrefix& dst, std::optional<IpAddress> gateway, int oif,
                    bool onlink = false);
// The same with NLM_F_CREATE|NLM_F_REPLACE: sets the route to `dst` whatever was there (applying
// it twice changes nothing). `oif` 0 leaves the device to the kernel (from `gateway`).
NlMessage route_replace(const IpPrefix& dst, std::optional<IpAddress> gateway, int oif);
// RTM_DELROUTE of the kernel's IPv6 multicast route of a link (`ip -6 route del multicast ff00::/8
// dev IF table local`), which addrconf adds when the link comes up with IPv6 on.
NlMessage route_delete_multicast6(int oif);
// RTM_GETROUTE dump of the main table for one family.
NlMessage route_dump(int family);

}  // namespace rtnl

struct RouteRecord {
  IpPrefix dst;  // 0.0.0.0/0 for default routes
  std::optional<IpAddress> gateway;
  int oif = 0;
  std::uint32_t table = 0;
};
// Pure parser of an RTM_NEWROUTE reply.
Result<RouteRecord> parse_route(const nlmsghdr* nlh);
// Routes of the main table of the socket's namespace.
Result<std::vector<RouteRecord>> list_routes(NetlinkSocket& socket, int family);
// Link `name` of the socket's namespace; kNotFound when there is none.
Result<LinkRecord> link_get(NetlinkSocket& socket, const std::string& name);
// The ifindex of `name` in the socket's namespace; kNotFound when there is none.
Result<int> link_index(NetlinkSocket& socket, const std::string& name);
// Whether IPv6 is off on link `name` of the socket's namespace: its IFLA_AF_SPEC has no AF_INET6
// part (no IPv6 in the kernel) or its IFLA_INET6_CONF has DEVCONF_DISABLE_IPV6 set (the
// namespace's conf.all or conf.default.disable_ipv6 was 1 when the link came). Read over netlink,
// not /proc/sys (netns.h says why).
Result<bool> ipv6_disabled_on(NetlinkSocket& socket, const std::string& name);

// Writes `value` to /proc/sys/<key with dots as slashes>, e.g. "net.ipv4.ip_forward". /proc/sys/net
// resolves to the network namespace of the calling thread (notes §2.2). A key containing '/' or
// "..", or starting or ending with '.', is kInvalidArgument.
Result<void> write_sysctl(const std::string& key, const std::string& value);
// The value without its trailing newline, e.g. "1".
Result<std::string> read_sysctl(const std::string& key);

}  // namespace netcell::kernel
