#include "linux/link.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <string_view>
#include <utility>

#include "core/unique_fd.h"
#include "netcell/host.h"

namespace netcell::kernel {
namespace {

// Room for the fixed parts of any message built here (headers, nests, integers); strings are
// added on top, so an overlong name cannot overrun the buffer (the kernel rejects it instead).
constexpr std::size_t kFixedRoom = 256;

// One request under construction: nlmsghdr, a zeroed family header, then attributes.
class MessageBuilder {
 public:
  MessageBuilder(std::uint16_t type, std::uint16_t flags, std::size_t family_size,
                 std::size_t string_bytes = 0)
      : buf_(kFixedRoom + 2 * MNL_ALIGN(string_bytes + 1)) {
    nlh_ = mnl_nlmsg_put_header(buf_.data());
    nlh_->nlmsg_type = type;
    nlh_->nlmsg_flags = flags;
    family_ = mnl_nlmsg_put_extra_header(nlh_, family_size);
  }
  // Moving keeps the vector's heap buffer, so nlh_ and family_ stay valid; a copy would not.
  MessageBuilder(MessageBuilder&&) = default;
  MessageBuilder(const MessageBuilder&) = delete;
  MessageBuilder& operator=(const MessageBuilder&) = delete;

  template <typename T>
  T* family() {
    return static_cast<T*>(family_);
  }
  nlmsghdr* nlh() { return nlh_; }

  NlMessage finish() && {
    buf_.resize(nlh_->nlmsg_len);
    return std::move(buf_);
  }

 private:
  NlMessage buf_;
  nlmsghdr* nlh_;
  void* family_;
};

// RTM_NEWLINK (or another link request) addressed by name: ifi_index 0 + IFLA_IFNAME.
MessageBuilder link_by_name(std::uint16_t type, std::uint16_t flags, const std::string& name,
                            std::uint8_t family = AF_UNSPEC) {
  MessageBuilder b(type, flags, sizeof(ifinfomsg), name.size());
  b.family<ifinfomsg>()->ifi_family = family;
  mnl_attr_put_strz(b.nlh(), IFLA_IFNAME, name.c_str());
  return b;
}

std::size_t address_length(const IpAddress& address) {
  return address.is_v4() ? 4 : 16;
}

std::uint8_t family_of(const IpAddress& address) {
  return address.is_v4() ? AF_INET : AF_INET6;
}

void put_address(nlmsghdr* nlh, std::uint16_t type, const IpAddress& address) {
  mnl_attr_put(nlh, type, address_length(address), address.bytes().data());
}

tl::unexpected<Error> malformed(std::string_view why) {
  return fail(ErrorCode::kSystem, "malformed RTM_NEWROUTE: " + std::string(why));
}

IpAddress address_from(const nlattr* attr, bool v4) {
  if (v4) {
    std::uint32_t net = 0;
    std::memcpy(&net, mnl_attr_get_payload(attr), sizeof net);
    return IpAddress::v4(ntohl(net));
  }
  std::array<std::uint8_t, 16> bytes{};
  std::memcpy(bytes.data(), mnl_attr_get_payload(attr), bytes.size());
  return IpAddress::v6(bytes);
}

// "net.ipv4.ip_forward" -> "/proc/sys/net/ipv4/ip_forward"; refuses anything that could leave
// /proc/sys.
Result<std::string> sysctl_path(const std::string& key) {
  if (key.empty() || key.find('/') != std::string::npos || key.find("..") != std::string::npos ||
      key.front() == '.' || key.back() == '.') {
    return fail(ErrorCode::kInvalidArgument, "invalid sysctl key \"" + key + "\"");
  }
  std::string path = "/proc/sys/" + key;
  std::replace(path.begin() + 10, path.end(), '.', '/');
  return path;
}

}  // namespace

namespace rtnl {

// veth_create's message; the peer's request is nested whole inside the host's:
//
//   nlmsghdr RTM_NEWLINK CREATE|EXCL
//   ifinfomsg { ifi_index = host_ifindex }
//   IFLA_IFNAME host_name
//   IFLA_MTU mtu                                   (mtu != 0)
//   IFLA_LINKINFO
//     IFLA_INFO_KIND "veth"
//     IFLA_INFO_DATA
//       VETH_INFO_PEER
//         ifinfomsg { ifi_index = peer_ifindex }   (a full header, not an attribute)
//         IFLA_IFNAME peer_name
//         IFLA_NET_NS_FD peer_netns_fd
//         IFLA_MTU mtu                             (mtu != 0)
NlMessage veth_create(const std::string& host_name, const std::string& peer_name, int peer_netns_fd,
                      std::uint32_t mtu, int host_ifindex, int peer_ifindex,
                      const std::array<std::uint8_t, 6>* host_mac,
                      const std::array<std::uint8_t, 6>* peer_mac, bool peer_noarp) {
  MessageBuilder b(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL, sizeof(ifinfomsg),
                   host_name.size() + peer_name.size());
  b.family<ifinfomsg>()->ifi_index = host_ifindex;
  nlmsghdr* nlh = b.nlh();
  mnl_attr_put_strz(nlh, IFLA_IFNAME, host_name.c_str());
  if (mtu != 0) mnl_attr_put_u32(nlh, IFLA_MTU, mtu);
  if (host_mac != nullptr) mnl_attr_put(nlh, IFLA_ADDRESS, host_mac->size(), host_mac->data());
  nlattr* linkinfo = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
  mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "veth");
  nlattr* data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
  nlattr* peer = mnl_attr_nest_start(nlh, VETH_INFO_PEER);
  auto* peer_ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  peer_ifi->ifi_family = AF_UNSPEC;
  peer_ifi->ifi_index = peer_ifindex;
  if (peer_noarp) {
    peer_ifi->ifi_flags = IFF_NOARP;
    peer_ifi->ifi_change = IFF_NOARP;
  }
  mnl_attr_put_strz(nlh, IFLA_IFNAME, peer_name.c_str());
  mnl_attr_put_u32(nlh, IFLA_NET_NS_FD, static_cast<std::uint32_t>(peer_netns_fd));
  if (mtu != 0) mnl_attr_put_u32(nlh, IFLA_MTU, mtu);
  if (peer_mac != nullptr) mnl_attr_put(nlh, IFLA_ADDRESS, peer_mac->size(), peer_mac->data());
  mnl_attr_nest_end(nlh, peer);
  mnl_attr_nest_end(nlh, data);
  mnl_attr_nest_end(nlh, linkinfo);
  return std::move(b).finish();
}

NlMessage bridge_create(const std::string& name, std::uint32_t mtu) {
  MessageBuilder b = link_by_name(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL, name);
  nlmsghdr* nlh = b.nlh();
  if (mtu != 0) mnl_attr_put_u32(nlh, IFLA_MTU, mtu);
  nlattr* linkinfo = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
  mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "bridge");
  nlattr* data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
  mnl_attr_put_u8(nlh, IFLA_BR_MCAST_SNOOPING, 0);
  mnl_attr_nest_end(nlh, data);
  mnl_attr_nest_end(nlh, linkinfo);
  return std::move(b).finish();
}

NlMessage link_set(const std::string& name, bool up, std::uint32_t mtu) {
  MessageBuilder b = link_by_name(RTM_NEWLINK, NLM_F_REQUEST, name);
  auto* ifi = b.family<ifinfomsg>();
  ifi->ifi_flags = up ? static_cast<unsigned>(IFF_UP) : 0u;
  ifi->ifi_change = IFF_UP;
  if (mtu != 0) mnl_attr_put_u32(b.nlh(), IFLA_MTU, mtu);
  return std::move(b).finish();
}

NlMessage link_set_master(const std::string& name, int master_ifindex) {
  MessageBuilder b = link_by_name(RTM_NEWLINK, NLM_F_REQUEST, name);
  mnl_attr_put_u32(b.nlh(), IFLA_MASTER, static_cast<std::uint32_t>(master_ifindex));
  return std::move(b).finish();
}

NlMessage link_delete(const std::string& name) {
  return link_by_name(RTM_DELLINK, NLM_F_REQUEST, name).finish();
}

NlMessage link_get(const std::string& name) {
  return link_by_name(RTM_GETLINK, NLM_F_REQUEST, name).finish();
}

// `bridge link set` sends RTM_SETLINK{AF_BRIDGE} with IFLA_PROTINFO, but that path looks the
// port up by ifindex only, and RTM_NEWLINK ignores IFLA_PROTINFO. Slave data reaches the same
// br_setport() by name (what `ip link set NAME type bridge_slave hairpin on` does):
//
//   ifinfomsg { ifi_index = 0 }, IFLA_IFNAME name
//   IFLA_LINKINFO
//     IFLA_INFO_SLAVE_KIND "bridge"
//     IFLA_INFO_SLAVE_DATA
//       IFLA_BRPORT_MODE u8 hairpin
//       IFLA_BRPORT_ISOLATED u8 isolated
NlMessage bridge_port_set(const std::string& name, bool hairpin, bool isolated) {
  MessageBuilder b = link_by_name(RTM_NEWLINK, NLM_F_REQUEST, name);
  nlmsghdr* nlh = b.nlh();
  nlattr* linkinfo = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
  mnl_attr_put_strz(nlh, IFLA_INFO_SLAVE_KIND, "bridge");
  nlattr* data = mnl_attr_nest_start(nlh, IFLA_INFO_SLAVE_DATA);
  mnl_attr_put_u8(nlh, IFLA_BRPORT_MODE, hairpin ? 1 : 0);
  mnl_attr_put_u8(nlh, IFLA_BRPORT_ISOLATED, isolated ? 1 : 0);
  mnl_attr_nest_end(nlh, data);
  mnl_attr_nest_end(nlh, linkinfo);
  return std::move(b).finish();
}

std::array<std::uint8_t, 6> random_mac() {
  std::array<std::uint8_t, 6> mac{};
  std::size_t got = 0;
  while (got < mac.size()) {
    ssize_t n = ::getrandom(mac.data() + got, mac.size() - got, 0);
    if (n > 0) got += static_cast<std::size_t>(n);
  }
  mac[0] = static_cast<std::uint8_t>((mac[0] & 0xfe) | 0x02);  // unicast, locally administered
  return mac;
}

NlMessage neigh_add_permanent(int ifindex, const IpAddress& address,
                              const std::array<std::uint8_t, 6>& mac) {
  MessageBuilder b(RTM_NEWNEIGH, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_REPLACE, sizeof(ndmsg));
  auto* ndm = b.family<ndmsg>();
  ndm->ndm_family = family_of(address);
  ndm->ndm_ifindex = ifindex;
  ndm->ndm_state = NUD_PERMANENT;
  ndm->ndm_type = RTN_UNICAST;
  put_address(b.nlh(), NDA_DST, address);
  mnl_attr_put(b.nlh(), NDA_LLADDR, mac.size(), mac.data());
  return std::move(b).finish();
}

NlMessage bridge_fdb_add_local(int bridge_ifindex, const std::array<std::uint8_t, 6>& mac) {
  MessageBuilder b(RTM_NEWNEIGH, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_REPLACE, sizeof(ndmsg));
  auto* ndm = b.family<ndmsg>();
  ndm->ndm_family = AF_BRIDGE;
  ndm->ndm_ifindex = bridge_ifindex;
  ndm->ndm_state = NUD_PERMANENT;  // a bridge's own (source-less) entry must be permanent: local
  ndm->ndm_flags = NTF_SELF;
  mnl_attr_put(b.nlh(), NDA_LLADDR, mac.size(), mac.data());
  return std::move(b).finish();
}

// Inside IFLA_INET_CONF the attribute type is the devconf index itself (the kernel stores it at
// cnf.data[type - 1]).
NlMessage set_link_af(const std::string& name,
                      const std::vector<std::pair<int, std::uint32_t>>& ipv4_conf,
                      bool ipv6_addr_gen_none) {
  MessageBuilder b = link_by_name(RTM_NEWLINK, NLM_F_REQUEST, name);
  nlmsghdr* nlh = b.nlh();
  nlattr* af_spec = mnl_attr_nest_start(nlh, IFLA_AF_SPEC);
  if (!ipv4_conf.empty()) {
    nlattr* inet = mnl_attr_nest_start(nlh, AF_INET);
    nlattr* conf = mnl_attr_nest_start(nlh, IFLA_INET_CONF);
    for (const auto& [index, value] : ipv4_conf) {
      mnl_attr_put_u32(nlh, static_cast<std::uint16_t>(index), value);
    }
    mnl_attr_nest_end(nlh, conf);
    mnl_attr_nest_end(nlh, inet);
  }
  if (ipv6_addr_gen_none) {
    nlattr* inet6 = mnl_attr_nest_start(nlh, AF_INET6);
    mnl_attr_put_u8(nlh, IFLA_INET6_ADDR_GEN_MODE, IN6_ADDR_GEN_MODE_NONE);
    mnl_attr_nest_end(nlh, inet6);
  }
  mnl_attr_nest_end(nlh, af_spec);
  return std::move(b).finish();
}

NlMessage set_ipv4_conf(const std::string& name,
                        const std::vector<std::pair<int, std::uint32_t>>& values) {
  return set_link_af(name, values, false);
}

NlMessage set_route_localnet(const std::string& name, bool on) {
  return set_ipv4_conf(name, {{IPV4_DEVCONF_ROUTE_LOCALNET, on ? 1u : 0u}});
}

NlMessage set_ipv6_addr_gen_none(const std::string& name) {
  return set_link_af(name, {}, true);
}

NlMessage addr_add(int ifindex, const IpPrefix& prefix, std::optional<IpAddress> peer,
                   std::uint32_t flags) {
  MessageBuilder b(RTM_NEWADDR, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL, sizeof(ifaddrmsg));
  auto* ifa = b.family<ifaddrmsg>();
  ifa->ifa_family = family_of(prefix.address);
  ifa->ifa_flags = static_cast<std::uint8_t>(flags & 0xFF);
  ifa->ifa_prefixlen = prefix.prefix_len;
  ifa->ifa_scope = RT_SCOPE_UNIVERSE;
  ifa->ifa_index = static_cast<std::uint32_t>(ifindex);
  put_address(b.nlh(), IFA_LOCAL, prefix.address);
  put_address(b.nlh(), IFA_ADDRESS, peer ? *peer : prefix.address);
  if (flags > 0xFF)
    mnl_attr_put_u32(b.nlh(), IFA_FLAGS, flags);  // the kernel takes it over ifa_flags
  return std::move(b).finish();
}

NlMessage addr_delete(int ifindex, const IpPrefix& prefix) {
  MessageBuilder b(RTM_DELADDR, NLM_F_REQUEST, sizeof(ifaddrmsg));
  auto* ifa = b.family<ifaddrmsg>();
  ifa->ifa_family = family_of(prefix.address);
  ifa->ifa_prefixlen = prefix.prefix_len;
  ifa->ifa_index = static_cast<std::uint32_t>(ifindex);
  put_address(b.nlh(), IFA_LOCAL, prefix.address);
  return std::move(b).finish();
}

namespace {

NlMessage route_message(std::uint16_t flags, const IpPrefix& dst, std::optional<IpAddress> gateway,
                        int oif, bool onlink = false) {
  MessageBuilder b(RTM_NEWROUTE, flags, sizeof(rtmsg));
  auto* rtm = b.family<rtmsg>();
  if (onlink) rtm->rtm_flags = RTNH_F_ONLINK;
  rtm->rtm_family = family_of(dst.address);
  rtm->rtm_dst_len = dst.prefix_len;
  rtm->rtm_table = RT_TABLE_MAIN;
  rtm->rtm_protocol = RTPROT_STATIC;
  rtm->rtm_scope = gateway ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
  rtm->rtm_type = RTN_UNICAST;
  if (dst.prefix_len != 0) put_address(b.nlh(), RTA_DST, dst.address);
  if (gateway) put_address(b.nlh(), RTA_GATEWAY, *gateway);
  if (oif != 0) mnl_attr_put_u32(b.nlh(), RTA_OIF, static_cast<std::uint32_t>(oif));
  return std::move(b).finish();
}

}  // namespace

NlMessage route_add(const IpPrefix& dst, std::optional<IpAddress> gateway, int oif, bool onlink) {
  return route_message(NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL, dst, gateway, oif, onlink);
}

NlMessage route_replace(const IpPrefix& dst, std::optional<IpAddress> gateway, int oif) {
  return route_message(NLM_F_REQUEST | NLM_F_CREATE | NLM_F_REPLACE, dst, gateway, oif);
}

NlMessage route_delete_multicast6(int oif) {
  MessageBuilder b(RTM_DELROUTE, NLM_F_REQUEST, sizeof(rtmsg));
  auto* rtm = b.family<rtmsg>();
  rtm->rtm_family = AF_INET6;
  rtm->rtm_dst_len = 8;
  rtm->rtm_table = RT_TABLE_LOCAL;
  rtm->rtm_type = RTN_MULTICAST;
  std::array<std::uint8_t, 16> ff00{};
  ff00[0] = 0xff;
  put_address(b.nlh(), RTA_DST, IpAddress::v6(ff00));
  mnl_attr_put_u32(b.nlh(), RTA_OIF, static_cast<std::uint32_t>(oif));
  return std::move(b).finish();
}

// rtm_table only filters on sockets with NETLINK_GET_STRICT_CHK; list_routes filters anyway.
NlMessage route_dump(int family) {
  MessageBuilder b(RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, sizeof(rtmsg));
  auto* rtm = b.family<rtmsg>();
  rtm->rtm_family = static_cast<std::uint8_t>(family);
  rtm->rtm_table = RT_TABLE_MAIN;
  return std::move(b).finish();
}

}  // namespace rtnl

Result<RouteRecord> parse_route(const nlmsghdr* nlh) {
  if (nlh->nlmsg_type != RTM_NEWROUTE) {
    return malformed("unexpected message type " + std::to_string(nlh->nlmsg_type));
  }
  if (nlh->nlmsg_len < MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(rtmsg))) {
    return malformed("shorter than rtmsg");
  }
  rtmsg rtm{};
  std::memcpy(&rtm, mnl_nlmsg_get_payload(nlh), sizeof rtm);
  if (rtm.rtm_family != AF_INET && rtm.rtm_family != AF_INET6) {
    return fail(ErrorCode::kUnsupported,
                "RTM_NEWROUTE: address family " + std::to_string(rtm.rtm_family));
  }
  const bool v4 = rtm.rtm_family == AF_INET;
  const std::size_t addr_len = v4 ? 4 : 16;
  if (rtm.rtm_dst_len > addr_len * 8) {
    return malformed("prefix length " + std::to_string(rtm.rtm_dst_len));
  }
  RouteRecord record;
  record.dst.address = v4 ? IpAddress() : IpAddress::v6({});
  record.dst.prefix_len = rtm.rtm_dst_len;
  record.table = rtm.rtm_table;
  NETCELL_TRY(
      for_each_attr(nlh, sizeof(rtmsg), "RTM_NEWROUTE", [&](const nlattr* attr) -> Result<void> {
        const std::uint16_t type = mnl_attr_get_type(attr);
        switch (type) {
          case RTA_DST:
          case RTA_GATEWAY:
            if (mnl_attr_get_payload_len(attr) != addr_len) {
              return malformed((type == RTA_DST ? "RTA_DST length " : "RTA_GATEWAY length ") +
                               std::to_string(mnl_attr_get_payload_len(attr)));
            }
            if (type == RTA_DST) {
              record.dst.address = address_from(attr, v4);
            } else {
              record.gateway = address_from(attr, v4);
            }
            break;
          case RTA_OIF:
            if (mnl_attr_validate(attr, MNL_TYPE_U32) < 0) return malformed("RTA_OIF");
            record.oif = static_cast<int>(mnl_attr_get_u32(attr));
            break;
          case RTA_TABLE:
            if (mnl_attr_validate(attr, MNL_TYPE_U32) < 0) return malformed("RTA_TABLE");
            record.table = mnl_attr_get_u32(attr);
            break;
          default: break;
        }
        return ok();
      }));
  return record;
}

Result<std::vector<RouteRecord>> list_routes(NetlinkSocket& socket, int family) {
  std::vector<RouteRecord> routes;
  NETCELL_TRY(socket.dump(rtnl::route_dump(family), [&](const nlmsghdr* nlh) -> Result<void> {
    // Local, broadcast and multicast routes (table local, or other types) are not ours to list.
    if (nlh->nlmsg_len < MNL_NLMSG_HDRLEN + sizeof(rtmsg)) return malformed("shorter than rtmsg");
    const auto* rtm = static_cast<const rtmsg*>(mnl_nlmsg_get_payload(nlh));
    if (rtm->rtm_type != RTN_UNICAST || (rtm->rtm_flags & RTM_F_CLONED) != 0) return ok();
    Result<RouteRecord> route = parse_route(nlh);
    if (!route) return fail(std::move(route).error());
    if (route->table == RT_TABLE_MAIN) routes.push_back(std::move(*route));
    return ok();
  }));
  return routes;
}

Result<LinkRecord> link_get(NetlinkSocket& socket, const std::string& name) {
  std::optional<LinkRecord> record;
  Result<void> sent =
      socket.request(rtnl::link_get(name), [&](const nlmsghdr* nlh) -> Result<void> {
        Result<LinkRecord> link = parse_link(nlh);
        if (!link) return fail(std::move(link).error());
        record = std::move(*link);
        return ok();
      });
  if (!sent) {
    if (sent.error().sys_errno() == ENODEV) return fail(ErrorCode::kNotFound, "no link " + name);
    return fail(std::move(sent).error().with_context("link " + name));
  }
  if (!record) return fail(ErrorCode::kSystem, "RTM_GETLINK " + name + ": no reply");
  return std::move(*record);
}

Result<int> link_index(NetlinkSocket& socket, const std::string& name) {
  auto link = link_get(socket, name);
  if (!link) return fail(std::move(link).error());
  return link->ifindex;
}

Result<bool> ipv6_disabled_on(NetlinkSocket& socket, const std::string& name) {
  std::optional<bool> disabled;
  Result<void> sent =
      socket.request(rtnl::link_get(name), [&](const nlmsghdr* nlh) -> Result<void> {
        if (nlh->nlmsg_type != RTM_NEWLINK) return ok();
        bool off = true;  // no AF_INET6 part: no IPv6 on it at all
        constexpr std::string_view kWhat = "RTM_NEWLINK IFLA_AF_SPEC";
        auto inet6_part = [&](const nlattr* part) -> Result<void> {
          if (mnl_attr_get_type(part) != IFLA_INET6_CONF) return ok();
          const std::size_t count = mnl_attr_get_payload_len(part) / sizeof(std::int32_t);
          off = false;
          if (count > DEVCONF_DISABLE_IPV6) {
            std::int32_t value = 0;
            std::memcpy(&value,
                        static_cast<const char*>(mnl_attr_get_payload(part)) +
                            DEVCONF_DISABLE_IPV6 * sizeof(std::int32_t),
                        sizeof value);
            off = value != 0;
          }
          return ok();
        };
        auto family = [&](const nlattr* f) -> Result<void> {
          if (mnl_attr_get_type(f) != AF_INET6) return ok();
          return for_each_nested(f, kWhat, inet6_part);
        };
        NETCELL_TRY(
            for_each_attr(nlh, sizeof(ifinfomsg), kWhat, [&](const nlattr* attr) -> Result<void> {
              if (mnl_attr_get_type(attr) != IFLA_AF_SPEC) return ok();
              return for_each_nested(attr, kWhat, family);
            }));
        disabled = off;
        return ok();
      });
  if (!sent) {
    if (sent.error().sys_errno() == ENODEV) return fail(ErrorCode::kNotFound, "no link " + name);
    return fail(std::move(sent).error().with_context("link " + name));
  }
  if (!disabled) return fail(ErrorCode::kSystem, "RTM_GETLINK " + name + ": no reply");
  return *disabled;
}

Result<void> write_sysctl(const std::string& key, const std::string& value) {
  Result<std::string> path = sysctl_path(key);
  if (!path) return fail(std::move(path).error());
  UniqueFd fd(::open(path->c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return fail_errno("sysctl " + key, errno);
  // /proc/sys takes the whole value in one write.
  ssize_t n = -1;
  do {
    n = ::write(fd.get(), value.data(), value.size());
  } while (n < 0 && errno == EINTR);
  if (n < 0) return fail_errno("sysctl " + key, errno);
  if (static_cast<std::size_t>(n) != value.size()) {
    return fail(ErrorCode::kSystem, "sysctl " + key + ": short write");
  }
  return ok();
}

Result<std::string> read_sysctl(const std::string& key) {
  Result<std::string> path = sysctl_path(key);
  if (!path) return fail(std::move(path).error());
  UniqueFd fd(::open(path->c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return fail_errno("sysctl " + key, errno);
  std::string value;
  std::array<char, 512> chunk{};
  for (;;) {
    ssize_t n = ::read(fd.get(), chunk.data(), chunk.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_errno("sysctl " + key, errno);
    if (n == 0) break;
    value.append(chunk.data(), static_cast<std::size_t>(n));
  }
  while (!value.empty() && value.back() == '\n') value.pop_back();
  return value;
}

}  // namespace netcell::kernel

namespace netcell {

Result<int> link_master_index(const std::string& name) {
  auto socket = kernel::NetlinkSocket::open();
  if (!socket) return fail(socket.error());
  auto link = kernel::link_get(*socket, name);
  if (!link) return fail(link.error());
  return link->master;
}

}  // namespace netcell
