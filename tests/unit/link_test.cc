// Golden tests of the link, address and route builders and of parse_route: no sockets, no
// privileges.
#include "linux/link.h"

#include <arpa/inet.h>
#include <errno.h>
#include <gtest/gtest.h>
#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/ip.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <sys/socket.h>

#include <array>
#include <cstring>
#include <string>
#include <vector>

#include "support/nl_attrs.h"

namespace netcell::kernel {
namespace {

constexpr std::uint16_t kCreate = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL;

const nlmsghdr* header(const NlMessage& msg) {
  return reinterpret_cast<const nlmsghdr*>(msg.data());
}

using testing::attrs_in;

// The top-level attributes after a family header of `family_size` bytes.
std::vector<const nlattr*> top_attrs(const NlMessage& msg, std::size_t family_size) {
  const auto* base = msg.data();
  return attrs_in(base + MNL_NLMSG_HDRLEN + MNL_ALIGN(family_size), base + msg.size());
}

// The attributes nested in `nest`, after `skip` bytes of fixed header.
std::vector<const nlattr*> nested(const nlattr* nest, std::size_t skip = 0) {
  const auto* payload = static_cast<const std::uint8_t*>(mnl_attr_get_payload(nest));
  return attrs_in(payload + MNL_ALIGN(skip), payload + mnl_attr_get_payload_len(nest));
}

std::vector<std::uint16_t> types(const std::vector<const nlattr*>& attrs) {
  std::vector<std::uint16_t> out;
  for (const nlattr* attr : attrs) out.push_back(mnl_attr_get_type(attr));
  return out;
}

std::string str(const nlattr* attr) {
  EXPECT_EQ(mnl_attr_validate(attr, MNL_TYPE_NUL_STRING), 0);
  return mnl_attr_get_str(attr);
}

std::uint32_t u32(const nlattr* attr) {
  EXPECT_EQ(mnl_attr_get_payload_len(attr), 4u);
  return mnl_attr_get_u32(attr);
}

std::uint8_t u8(const nlattr* attr) {
  EXPECT_EQ(mnl_attr_get_payload_len(attr), 1u);
  return mnl_attr_get_u8(attr);
}

std::vector<std::uint8_t> bytes(const nlattr* attr) {
  const auto* p = static_cast<const std::uint8_t*>(mnl_attr_get_payload(attr));
  return {p, p + mnl_attr_get_payload_len(attr)};
}

const ifinfomsg* ifi_of(const NlMessage& msg) {
  return static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(header(msg)));
}

void expect_header(const NlMessage& msg, std::uint16_t type, std::uint16_t flags) {
  ASSERT_GE(msg.size(), sizeof(nlmsghdr));
  const nlmsghdr* nlh = header(msg);
  EXPECT_EQ(nlh->nlmsg_len, msg.size());
  EXPECT_EQ(nlh->nlmsg_type, type);
  EXPECT_EQ(nlh->nlmsg_flags, flags);
  EXPECT_EQ(nlh->nlmsg_seq, 0u);
}

// Checks the by-name addressing every link request here uses: ifi_index 0 + IFLA_IFNAME first.
void expect_by_name(const NlMessage& msg, const std::string& name,
                    std::uint8_t family = AF_UNSPEC) {
  const ifinfomsg* ifi = ifi_of(msg);
  EXPECT_EQ(ifi->ifi_family, family);
  EXPECT_EQ(ifi->ifi_index, 0);
  auto attrs = top_attrs(msg, sizeof(ifinfomsg));
  ASSERT_FALSE(attrs.empty());
  EXPECT_EQ(mnl_attr_get_type(attrs[0]), IFLA_IFNAME);
  EXPECT_EQ(str(attrs[0]), name);
}

TEST(LinkBuilders, VethCreateNestsThePeerWithItsOwnIfinfomsg) {
  NlMessage msg = rtnl::veth_create("vh-web", "eth0", 42, 1400, 500, 77);
  expect_header(msg, RTM_NEWLINK, kCreate);
  const ifinfomsg* ifi = ifi_of(msg);
  EXPECT_EQ(ifi->ifi_family, AF_UNSPEC);
  EXPECT_EQ(ifi->ifi_index, 500);
  EXPECT_EQ(ifi->ifi_flags, 0u);
  EXPECT_EQ(ifi->ifi_change, 0u);

  auto top = top_attrs(msg, sizeof(ifinfomsg));
  ASSERT_EQ(types(top), (std::vector<std::uint16_t>{IFLA_IFNAME, IFLA_MTU, IFLA_LINKINFO}));
  EXPECT_EQ(str(top[0]), "vh-web");
  EXPECT_EQ(u32(top[1]), 1400u);

  auto linkinfo = nested(top[2]);
  ASSERT_EQ(types(linkinfo), (std::vector<std::uint16_t>{IFLA_INFO_KIND, IFLA_INFO_DATA}));
  EXPECT_EQ(str(linkinfo[0]), "veth");
  auto data = nested(linkinfo[1]);
  ASSERT_EQ(types(data), (std::vector<std::uint16_t>{VETH_INFO_PEER}));

  // VETH_INFO_PEER: a whole ifinfomsg, then the peer's own attributes.
  const nlattr* peer = data[0];
  ASSERT_GE(mnl_attr_get_payload_len(peer), sizeof(ifinfomsg));
  ifinfomsg peer_ifi{};
  std::memcpy(&peer_ifi, mnl_attr_get_payload(peer), sizeof peer_ifi);
  EXPECT_EQ(peer_ifi.ifi_family, AF_UNSPEC);
  EXPECT_EQ(peer_ifi.ifi_index, 77);
  EXPECT_EQ(peer_ifi.ifi_flags, 0u);
  auto peer_attrs = nested(peer, sizeof(ifinfomsg));
  ASSERT_EQ(types(peer_attrs), (std::vector<std::uint16_t>{IFLA_IFNAME, IFLA_NET_NS_FD, IFLA_MTU}));
  EXPECT_EQ(str(peer_attrs[0]), "eth0");
  EXPECT_EQ(u32(peer_attrs[1]), 42u);
  EXPECT_EQ(u32(peer_attrs[2]), 1400u);
}

TEST(LinkBuilders, VethCreateWithoutMtuOrIndexes) {
  NlMessage msg = rtnl::veth_create("vh0", "eth0", 5, 0);
  expect_header(msg, RTM_NEWLINK, kCreate);
  EXPECT_EQ(ifi_of(msg)->ifi_index, 0);
  auto top = top_attrs(msg, sizeof(ifinfomsg));
  ASSERT_EQ(types(top), (std::vector<std::uint16_t>{IFLA_IFNAME, IFLA_LINKINFO}));
  auto data = nested(nested(top[1])[1]);
  ASSERT_EQ(data.size(), 1u);
  ifinfomsg peer_ifi{};
  std::memcpy(&peer_ifi, mnl_attr_get_payload(data[0]), sizeof peer_ifi);
  EXPECT_EQ(peer_ifi.ifi_index, 0);
  auto peer_attrs = nested(data[0], sizeof(ifinfomsg));
  EXPECT_EQ(types(peer_attrs), (std::vector<std::uint16_t>{IFLA_IFNAME, IFLA_NET_NS_FD}));
}

TEST(LinkBuilders, BridgeCreate) {
  NlMessage msg = rtnl::bridge_create("ncbr0", 1500);
  expect_header(msg, RTM_NEWLINK, kCreate);
  expect_by_name(msg, "ncbr0");
  auto top = top_attrs(msg, sizeof(ifinfomsg));
  ASSERT_EQ(types(top), (std::vector<std::uint16_t>{IFLA_IFNAME, IFLA_MTU, IFLA_LINKINFO}));
  EXPECT_EQ(u32(top[1]), 1500u);
  auto linkinfo = nested(top[2]);
  ASSERT_EQ(types(linkinfo), (std::vector<std::uint16_t>{IFLA_INFO_KIND, IFLA_INFO_DATA}));
  EXPECT_EQ(str(linkinfo[0]), "bridge");
  auto data = nested(linkinfo[1]);
  ASSERT_EQ(types(data), (std::vector<std::uint16_t>{IFLA_BR_MCAST_SNOOPING}));
  EXPECT_EQ(u8(data[0]), 0) << "multicast snooping off";

  NlMessage no_mtu = rtnl::bridge_create("ncbr1", 0);
  EXPECT_EQ(types(top_attrs(no_mtu, sizeof(ifinfomsg))),
            (std::vector<std::uint16_t>{IFLA_IFNAME, IFLA_LINKINFO}));
}

TEST(LinkBuilders, LinkSetUpWithMtuAndDown) {
  NlMessage up = rtnl::link_set("eth0", true, 9000);
  expect_header(up, RTM_NEWLINK, NLM_F_REQUEST);  // an existing link: no CREATE/EXCL
  expect_by_name(up, "eth0");
  EXPECT_EQ(ifi_of(up)->ifi_flags, static_cast<unsigned>(IFF_UP));
  EXPECT_EQ(ifi_of(up)->ifi_change, static_cast<unsigned>(IFF_UP));
  auto top = top_attrs(up, sizeof(ifinfomsg));
  ASSERT_EQ(types(top), (std::vector<std::uint16_t>{IFLA_IFNAME, IFLA_MTU}));
  EXPECT_EQ(u32(top[1]), 9000u);

  NlMessage down = rtnl::link_set("eth0", false);
  EXPECT_EQ(ifi_of(down)->ifi_flags, 0u);
  EXPECT_EQ(ifi_of(down)->ifi_change, static_cast<unsigned>(IFF_UP));
  EXPECT_EQ(types(top_attrs(down, sizeof(ifinfomsg))), (std::vector<std::uint16_t>{IFLA_IFNAME}));
}

TEST(LinkBuilders, LinkSetMasterDeleteGet) {
  NlMessage master = rtnl::link_set_master("vh0", 12);
  expect_header(master, RTM_NEWLINK, NLM_F_REQUEST);
  expect_by_name(master, "vh0");
  auto top = top_attrs(master, sizeof(ifinfomsg));
  ASSERT_EQ(types(top), (std::vector<std::uint16_t>{IFLA_IFNAME, IFLA_MASTER}));
  EXPECT_EQ(u32(top[1]), 12u);
  EXPECT_EQ(u32(top_attrs(rtnl::link_set_master("vh0", 0), sizeof(ifinfomsg))[1]), 0u);

  NlMessage del = rtnl::link_delete("vh0");
  expect_header(del, RTM_DELLINK, NLM_F_REQUEST);
  expect_by_name(del, "vh0");
  EXPECT_EQ(top_attrs(del, sizeof(ifinfomsg)).size(), 1u);

  NlMessage get = rtnl::link_get("vh0");
  expect_header(get, RTM_GETLINK, NLM_F_REQUEST);  // one link, not a dump
  expect_by_name(get, "vh0");
  EXPECT_EQ(top_attrs(get, sizeof(ifinfomsg)).size(), 1u);
}

TEST(LinkBuilders, BridgePortSetUsesSlaveData) {
  NlMessage msg = rtnl::bridge_port_set("vh0", true, false);
  expect_header(msg, RTM_NEWLINK, NLM_F_REQUEST);
  expect_by_name(msg, "vh0");
  auto top = top_attrs(msg, sizeof(ifinfomsg));
  ASSERT_EQ(types(top), (std::vector<std::uint16_t>{IFLA_IFNAME, IFLA_LINKINFO}));
  auto linkinfo = nested(top[1]);
  ASSERT_EQ(types(linkinfo),
            (std::vector<std::uint16_t>{IFLA_INFO_SLAVE_KIND, IFLA_INFO_SLAVE_DATA}));
  EXPECT_EQ(str(linkinfo[0]), "bridge");
  auto data = nested(linkinfo[1]);
  ASSERT_EQ(types(data), (std::vector<std::uint16_t>{IFLA_BRPORT_MODE, IFLA_BRPORT_ISOLATED}));
  EXPECT_EQ(u8(data[0]), 1);
  EXPECT_EQ(u8(data[1]), 0);

  auto flipped =
      nested(nested(top_attrs(rtnl::bridge_port_set("vh0", false, true), sizeof(ifinfomsg))[1])[1]);
  ASSERT_EQ(flipped.size(), 2u);
  EXPECT_EQ(u8(flipped[0]), 0);
  EXPECT_EQ(u8(flipped[1]), 1);
}

TEST(LinkBuilders, BridgeFdbAddLocalIsAPermanentSelfEntry) {
  const std::array<std::uint8_t, 6> mac{0x02, 0x6e, 0x63, 0x00, 0x00, 0x01};
  NlMessage msg = rtnl::bridge_fdb_add_local(7, mac);
  expect_header(msg, RTM_NEWNEIGH, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_REPLACE);
  const auto* ndm = static_cast<const ndmsg*>(mnl_nlmsg_get_payload(header(msg)));
  EXPECT_EQ(ndm->ndm_family, AF_BRIDGE);
  EXPECT_EQ(ndm->ndm_ifindex, 7);
  EXPECT_EQ(ndm->ndm_state, NUD_PERMANENT);
  EXPECT_EQ(ndm->ndm_flags, NTF_SELF);
  auto top = top_attrs(msg, sizeof(ndmsg));
  ASSERT_EQ(types(top), (std::vector<std::uint16_t>{NDA_LLADDR}));
  ASSERT_EQ(mnl_attr_get_payload_len(top[0]), 6u);
  EXPECT_EQ(std::memcmp(mnl_attr_get_payload(top[0]), mac.data(), 6), 0);
}

TEST(LinkBuilders, SetRouteLocalnetNestsTheDevconfIndex) {
  NlMessage msg = rtnl::set_route_localnet("vh0", true);
  expect_header(msg, RTM_NEWLINK, NLM_F_REQUEST);
  expect_by_name(msg, "vh0");
  auto top = top_attrs(msg, sizeof(ifinfomsg));
  ASSERT_EQ(types(top), (std::vector<std::uint16_t>{IFLA_IFNAME, IFLA_AF_SPEC}));
  auto af = nested(top[1]);
  ASSERT_EQ(types(af), (std::vector<std::uint16_t>{AF_INET}));
  auto inet = nested(af[0]);
  ASSERT_EQ(types(inet), (std::vector<std::uint16_t>{IFLA_INET_CONF}));
  auto conf = nested(inet[0]);
  ASSERT_EQ(types(conf), (std::vector<std::uint16_t>{IPV4_DEVCONF_ROUTE_LOCALNET}));
  EXPECT_EQ(u32(conf[0]), 1u);

  auto off = nested(nested(
      nested(top_attrs(rtnl::set_route_localnet("vh0", false), sizeof(ifinfomsg))[1])[0])[0]);
  ASSERT_EQ(off.size(), 1u);
  EXPECT_EQ(u32(off[0]), 0u);
}

TEST(LinkBuilders, SetIpv4ConfPutsEverySettingInOneNest) {
  NlMessage msg =
      rtnl::set_ipv4_conf("vh1", {{IPV4_DEVCONF_ARP_IGNORE, 2}, {IPV4_DEVCONF_ROUTE_LOCALNET, 1}});
  expect_header(msg, RTM_NEWLINK, NLM_F_REQUEST);
  expect_by_name(msg, "vh1");
  auto top = top_attrs(msg, sizeof(ifinfomsg));
  ASSERT_EQ(types(top), (std::vector<std::uint16_t>{IFLA_IFNAME, IFLA_AF_SPEC}));
  auto conf = nested(nested(nested(top[1])[0])[0]);
  ASSERT_EQ(types(conf),
            (std::vector<std::uint16_t>{IPV4_DEVCONF_ARP_IGNORE, IPV4_DEVCONF_ROUTE_LOCALNET}));
  EXPECT_EQ(u32(conf[0]), 2u);
  EXPECT_EQ(u32(conf[1]), 1u);
}

TEST(LinkBuilders, SetLinkAfPutsIpv4AndIpv6InOneMessage) {
  NlMessage msg = rtnl::set_link_af("vh2", {{IPV4_DEVCONF_ARP_IGNORE, 2}}, true);
  expect_header(msg, RTM_NEWLINK, NLM_F_REQUEST);
  expect_by_name(msg, "vh2");
  auto top = top_attrs(msg, sizeof(ifinfomsg));
  ASSERT_EQ(types(top), (std::vector<std::uint16_t>{IFLA_IFNAME, IFLA_AF_SPEC}));
  auto af = nested(top[1]);
  ASSERT_EQ(types(af), (std::vector<std::uint16_t>{AF_INET, AF_INET6}));
  auto conf = nested(nested(af[0])[0]);
  ASSERT_EQ(types(conf), (std::vector<std::uint16_t>{IPV4_DEVCONF_ARP_IGNORE}));
  EXPECT_EQ(u32(conf[0]), 2u);
  auto inet6 = nested(af[1]);
  ASSERT_EQ(types(inet6), (std::vector<std::uint16_t>{IFLA_INET6_ADDR_GEN_MODE}));
  EXPECT_EQ(u8(inet6[0]), IN6_ADDR_GEN_MODE_NONE);
}

TEST(LinkBuilders, SetIpv6AddrGenNone) {
  NlMessage msg = rtnl::set_ipv6_addr_gen_none("ncbr0");
  expect_header(msg, RTM_NEWLINK, NLM_F_REQUEST);
  expect_by_name(msg, "ncbr0");
  auto top = top_attrs(msg, sizeof(ifinfomsg));
  ASSERT_EQ(types(top), (std::vector<std::uint16_t>{IFLA_IFNAME, IFLA_AF_SPEC}));
  auto af = nested(top[1]);
  ASSERT_EQ(types(af), (std::vector<std::uint16_t>{AF_INET6}));
  auto inet6 = nested(af[0]);
  ASSERT_EQ(types(inet6), (std::vector<std::uint16_t>{IFLA_INET6_ADDR_GEN_MODE}));
  EXPECT_EQ(u8(inet6[0]), IN6_ADDR_GEN_MODE_NONE);
}

TEST(LinkBuilders, AddrAddV4) {
  Result<IpPrefix> prefix = IpPrefix::parse("10.99.0.2/30");
  ASSERT_TRUE(prefix);
  NlMessage msg = rtnl::addr_add(7, *prefix);
  expect_header(msg, RTM_NEWADDR, kCreate);
  const auto* ifa = static_cast<const ifaddrmsg*>(mnl_nlmsg_get_payload(header(msg)));
  EXPECT_EQ(ifa->ifa_family, AF_INET);
  EXPECT_EQ(ifa->ifa_prefixlen, 30);
  EXPECT_EQ(ifa->ifa_index, 7u);
  EXPECT_EQ(ifa->ifa_scope, RT_SCOPE_UNIVERSE);
  EXPECT_EQ(ifa->ifa_flags, 0);
  auto top = top_attrs(msg, sizeof(ifaddrmsg));
  ASSERT_EQ(types(top), (std::vector<std::uint16_t>{IFA_LOCAL, IFA_ADDRESS}));
  const std::vector<std::uint8_t> own{10, 99, 0, 2};
  EXPECT_EQ(bytes(top[0]), own);
  EXPECT_EQ(bytes(top[1]), own);
}

TEST(LinkBuilders, AddrAddWithPeerAndV6) {
  Result<IpPrefix> local = IpPrefix::parse("10.99.0.1/32");
  Result<IpAddress> peer = IpAddress::parse("10.99.0.9");
  ASSERT_TRUE(local && peer);
  NlMessage msg = rtnl::addr_add(3, *local, *peer);
  auto top = top_attrs(msg, sizeof(ifaddrmsg));
  ASSERT_EQ(types(top), (std::vector<std::uint16_t>{IFA_LOCAL, IFA_ADDRESS}));
  EXPECT_EQ(bytes(top[0]), (std::vector<std::uint8_t>{10, 99, 0, 1}));
  EXPECT_EQ(bytes(top[1]), (std::vector<std::uint8_t>{10, 99, 0, 9}));

  Result<IpPrefix> v6 = IpPrefix::parse("fd00::2/64");
  ASSERT_TRUE(v6);
  NlMessage msg6 = rtnl::addr_add(4, *v6);
  const auto* ifa = static_cast<const ifaddrmsg*>(mnl_nlmsg_get_payload(header(msg6)));
  EXPECT_EQ(ifa->ifa_family, AF_INET6);
  EXPECT_EQ(ifa->ifa_prefixlen, 64);
  auto top6 = top_attrs(msg6, sizeof(ifaddrmsg));
  ASSERT_EQ(top6.size(), 2u);
  EXPECT_EQ(mnl_attr_get_payload_len(top6[0]), 16u);
  EXPECT_EQ(bytes(top6[0]).back(), 2);
}

// Flags of 8 bits ride in ifa_flags alone; noprefixroute (0x200) needs IFA_FLAGS, which the kernel
// takes over ifa_flags, so it carries them all.
TEST(LinkBuilders, AddrAddPutsFlagsPastEightBitsInIfaFlags) {
  Result<IpPrefix> v6 = IpPrefix::parse("fd00::1/128");
  ASSERT_TRUE(v6);
  NlMessage nodad = rtnl::addr_add(4, *v6, {}, IFA_F_NODAD);
  EXPECT_EQ(static_cast<const ifaddrmsg*>(mnl_nlmsg_get_payload(header(nodad)))->ifa_flags,
            IFA_F_NODAD);
  EXPECT_EQ(types(top_attrs(nodad, sizeof(ifaddrmsg))),
            (std::vector<std::uint16_t>{IFA_LOCAL, IFA_ADDRESS}));

  NlMessage both = rtnl::addr_add(4, *v6, {}, IFA_F_NODAD | IFA_F_NOPREFIXROUTE);
  EXPECT_EQ(static_cast<const ifaddrmsg*>(mnl_nlmsg_get_payload(header(both)))->ifa_flags,
            IFA_F_NODAD);
  auto top = top_attrs(both, sizeof(ifaddrmsg));
  ASSERT_EQ(types(top), (std::vector<std::uint16_t>{IFA_LOCAL, IFA_ADDRESS, IFA_FLAGS}));
  EXPECT_EQ(u32(top[2]), static_cast<std::uint32_t>(IFA_F_NODAD | IFA_F_NOPREFIXROUTE));
}

const rtmsg* rtm_of(const NlMessage& msg) {
  return static_cast<const rtmsg*>(mnl_nlmsg_get_payload(header(msg)));
}

TEST(LinkBuilders, RouteAddDefaultViaGateway) {
  Result<IpAddress> gw = IpAddress::parse("10.99.0.1");
  ASSERT_TRUE(gw);
  NlMessage msg = rtnl::route_add(IpPrefix{}, *gw, 9);
  expect_header(msg, RTM_NEWROUTE, kCreate);
  const rtmsg* rtm = rtm_of(msg);
  EXPECT_EQ(rtm->rtm_family, AF_INET);
  EXPECT_EQ(rtm->rtm_dst_len, 0);
  EXPECT_EQ(rtm->rtm_src_len, 0);
  EXPECT_EQ(rtm->rtm_table, RT_TABLE_MAIN);
  EXPECT_EQ(rtm->rtm_protocol, RTPROT_STATIC);
  EXPECT_EQ(rtm->rtm_scope, RT_SCOPE_UNIVERSE);
  EXPECT_EQ(rtm->rtm_type, RTN_UNICAST);
  auto top = top_attrs(msg, sizeof(rtmsg));
  // No RTA_DST for /0.
  ASSERT_EQ(types(top), (std::vector<std::uint16_t>{RTA_GATEWAY, RTA_OIF}));
  EXPECT_EQ(bytes(top[0]), (std::vector<std::uint8_t>{10, 99, 0, 1}));
  EXPECT_EQ(u32(top[1]), 9u);
}

TEST(LinkBuilders, RouteAddConnectedIsScopeLink) {
  Result<IpPrefix> dst = IpPrefix::parse("192.168.7.0/24");
  ASSERT_TRUE(dst);
  NlMessage msg = rtnl::route_add(*dst, std::nullopt, 4);
  expect_header(msg, RTM_NEWROUTE, kCreate);
  const rtmsg* rtm = rtm_of(msg);
  EXPECT_EQ(rtm->rtm_dst_len, 24);
  EXPECT_EQ(rtm->rtm_scope, RT_SCOPE_LINK);
  EXPECT_EQ(rtm->rtm_type, RTN_UNICAST);
  auto top = top_attrs(msg, sizeof(rtmsg));
  ASSERT_EQ(types(top), (std::vector<std::uint16_t>{RTA_DST, RTA_OIF}));
  EXPECT_EQ(bytes(top[0]), (std::vector<std::uint8_t>{192, 168, 7, 0}));
  EXPECT_EQ(u32(top[1]), 4u);

  Result<IpPrefix> dst6 = IpPrefix::parse("fd00:1::/48");
  ASSERT_TRUE(dst6);
  NlMessage msg6 = rtnl::route_add(*dst6, std::nullopt, 4);
  EXPECT_EQ(rtm_of(msg6)->rtm_family, AF_INET6);
  EXPECT_EQ(mnl_attr_get_payload_len(top_attrs(msg6, sizeof(rtmsg))[0]), 16u);
}

// The host end of a private dual-stack namespace: its kernel-made ff00::/8 route in the local
// table goes ("ip -6 route del multicast ff00::/8 dev IF table local").
TEST(LinkBuilders, RouteDeleteMulticast6) {
  NlMessage msg = rtnl::route_delete_multicast6(12);
  expect_header(msg, RTM_DELROUTE, NLM_F_REQUEST);
  const rtmsg* rtm = rtm_of(msg);
  EXPECT_EQ(rtm->rtm_family, AF_INET6);
  EXPECT_EQ(rtm->rtm_dst_len, 8);
  EXPECT_EQ(rtm->rtm_table, RT_TABLE_LOCAL);
  EXPECT_EQ(rtm->rtm_type, RTN_MULTICAST);
  auto top = top_attrs(msg, sizeof(rtmsg));
  ASSERT_EQ(types(top), (std::vector<std::uint16_t>{RTA_DST, RTA_OIF}));
  std::vector<std::uint8_t> ff00(16, 0);
  ff00[0] = 0xff;
  EXPECT_EQ(bytes(top[0]), ff00);
  EXPECT_EQ(u32(top[1]), 12u);
}

// The shared IPv6 gateway leaves lo with the last namespace ("ip addr del PREFIX dev lo").
TEST(LinkBuilders, AddrDelete) {
  Result<IpPrefix> gw = IpPrefix::parse("fd00:1::1/128");
  ASSERT_TRUE(gw);
  NlMessage msg = rtnl::addr_delete(1, *gw);
  expect_header(msg, RTM_DELADDR, NLM_F_REQUEST);
  const auto* ifa = static_cast<const ifaddrmsg*>(mnl_nlmsg_get_payload(header(msg)));
  EXPECT_EQ(ifa->ifa_family, AF_INET6);
  EXPECT_EQ(ifa->ifa_prefixlen, 128);
  EXPECT_EQ(ifa->ifa_index, 1u);
  auto top = top_attrs(msg, sizeof(ifaddrmsg));
  ASSERT_EQ(types(top), (std::vector<std::uint16_t>{IFA_LOCAL}));
  EXPECT_EQ(bytes(top[0]).back(), 1);
}

// A private namespace's end is NOARP; the host end keeps its flags.
TEST(LinkBuilders, VethCreateWithANoarpPeer) {
  NlMessage msg = rtnl::veth_create("vh0", "eth0", 5, 0, 0, 0, nullptr, nullptr, true);
  EXPECT_EQ(ifi_of(msg)->ifi_flags, 0u);
  EXPECT_EQ(ifi_of(msg)->ifi_change, 0u);
  auto data = nested(nested(top_attrs(msg, sizeof(ifinfomsg))[1])[1]);
  ASSERT_EQ(data.size(), 1u);
  ifinfomsg peer_ifi{};
  std::memcpy(&peer_ifi, mnl_attr_get_payload(data[0]), sizeof peer_ifi);
  EXPECT_EQ(peer_ifi.ifi_flags, static_cast<unsigned>(IFF_NOARP));
  EXPECT_EQ(peer_ifi.ifi_change, static_cast<unsigned>(IFF_NOARP));
}

TEST(LinkBuilders, RouteDump) {
  NlMessage msg = rtnl::route_dump(AF_INET);
  expect_header(msg, RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP);
  ASSERT_EQ(msg.size(), NLMSG_LENGTH(sizeof(rtmsg)));
  EXPECT_EQ(rtm_of(msg)->rtm_family, AF_INET);
  EXPECT_EQ(rtm_of(msg)->rtm_table, RT_TABLE_MAIN);
  EXPECT_EQ(rtm_of(rtnl::route_dump(AF_INET6))->rtm_family, AF_INET6);
}

// A route reply the way the kernel builds it, in a buffer owned by the test.
class RouteReply {
 public:
  explicit RouteReply(std::uint8_t family, std::uint8_t dst_len) : buf_(4096) {
    nlh_ = mnl_nlmsg_put_header(buf_.data());
    nlh_->nlmsg_type = RTM_NEWROUTE;
    auto* rtm = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(nlh_, sizeof(rtmsg)));
    rtm->rtm_family = family;
    rtm->rtm_dst_len = dst_len;
    rtm->rtm_table = RT_TABLE_MAIN;
    rtm->rtm_protocol = RTPROT_STATIC;
    rtm->rtm_type = RTN_UNICAST;
  }
  nlmsghdr* nlh() { return nlh_; }
  rtmsg* rtm() { return static_cast<rtmsg*>(mnl_nlmsg_get_payload(nlh_)); }

 private:
  std::vector<std::uint8_t> buf_;
  nlmsghdr* nlh_;
};

TEST(LinkParse, DefaultRouteWithGateway) {
  RouteReply r(AF_INET, 0);
  mnl_attr_put_u32(r.nlh(), RTA_TABLE, RT_TABLE_MAIN);
  mnl_attr_put_u32(r.nlh(), RTA_GATEWAY, htonl(0x0a630001));  // 10.99.0.1
  mnl_attr_put_u32(r.nlh(), RTA_OIF, 2);
  mnl_attr_put_u32(r.nlh(), RTA_PRIORITY, 100);  // unrelated attributes are skipped
  Result<RouteRecord> route = parse_route(r.nlh());
  ASSERT_TRUE(route) << route.error().to_string();
  EXPECT_EQ(route->dst.to_string(), "0.0.0.0/0");
  ASSERT_TRUE(route->gateway);
  EXPECT_EQ(route->gateway->to_string(), "10.99.0.1");
  EXPECT_EQ(route->oif, 2);
  EXPECT_EQ(route->table, static_cast<std::uint32_t>(RT_TABLE_MAIN));
}

TEST(LinkParse, ConnectedRouteWithOifOnly) {
  RouteReply r(AF_INET, 24);
  r.rtm()->rtm_scope = RT_SCOPE_LINK;
  r.rtm()->rtm_table = 200;                               // no RTA_TABLE: the header's table counts
  mnl_attr_put_u32(r.nlh(), RTA_DST, htonl(0xc0a80700));  // 192.168.7.0
  mnl_attr_put_u32(r.nlh(), RTA_OIF, 5);
  Result<RouteRecord> route = parse_route(r.nlh());
  ASSERT_TRUE(route) << route.error().to_string();
  EXPECT_EQ(route->dst.to_string(), "192.168.7.0/24");
  EXPECT_FALSE(route->gateway);
  EXPECT_EQ(route->oif, 5);
  EXPECT_EQ(route->table, 200u);
}

TEST(LinkParse, TableAttributeOverridesHeader) {
  RouteReply r(AF_INET, 0);
  r.rtm()->rtm_table = RT_TABLE_COMPAT;  // what the header says for tables above 255
  mnl_attr_put_u32(r.nlh(), RTA_TABLE, 1000);
  Result<RouteRecord> route = parse_route(r.nlh());
  ASSERT_TRUE(route) << route.error().to_string();
  EXPECT_EQ(route->table, 1000u);
}

TEST(LinkParse, V6Route) {
  RouteReply r(AF_INET6, 64);
  std::array<std::uint8_t, 16> dst{0xfd, 0, 0, 1};
  std::array<std::uint8_t, 16> gw{0xfe, 0x80};
  gw[15] = 1;
  mnl_attr_put(r.nlh(), RTA_DST, dst.size(), dst.data());
  mnl_attr_put(r.nlh(), RTA_GATEWAY, gw.size(), gw.data());
  Result<RouteRecord> route = parse_route(r.nlh());
  ASSERT_TRUE(route) << route.error().to_string();
  EXPECT_EQ(route->dst.to_string(), "fd00:1::/64");
  ASSERT_TRUE(route->gateway);
  EXPECT_EQ(route->gateway->to_string(), "fe80::1");

  RouteReply def(AF_INET6, 0);
  Result<RouteRecord> default6 = parse_route(def.nlh());
  ASSERT_TRUE(default6);
  EXPECT_EQ(default6->dst.to_string(), "::/0");
}

TEST(LinkParse, TruncatedAttributeIsAnError) {
  RouteReply r(AF_INET, 24);
  mnl_attr_put_u32(r.nlh(), RTA_OIF, 5);
  mnl_attr_put_u32(r.nlh(), RTA_DST, htonl(0xc0a80700));
  r.nlh()->nlmsg_len -= 4;  // cuts into RTA_DST: its nla_len now overruns the message
  Result<RouteRecord> route = parse_route(r.nlh());
  ASSERT_FALSE(route);
  EXPECT_NE(route.error().message().find("truncated attribute"), std::string::npos)
      << route.error().to_string();
}

TEST(LinkParse, BadLengthsFamiliesAndTypesAreErrors) {
  {
    RouteReply r(AF_INET, 24);
    std::array<std::uint8_t, 16> v6{};
    mnl_attr_put(r.nlh(), RTA_DST, v6.size(), v6.data());  // v6-sized in a v4 route
    EXPECT_FALSE(parse_route(r.nlh()));
  }
  {
    RouteReply r(AF_INET, 24);
    mnl_attr_put_u8(r.nlh(), RTA_OIF, 1);
    EXPECT_FALSE(parse_route(r.nlh()));
  }
  {
    RouteReply r(AF_INET, 33);
    EXPECT_FALSE(parse_route(r.nlh()));
  }
  {
    RouteReply r(AF_BRIDGE, 0);
    Result<RouteRecord> route = parse_route(r.nlh());
    ASSERT_FALSE(route);
    EXPECT_EQ(route.error().code(), ErrorCode::kUnsupported);
  }
  {
    RouteReply r(AF_INET, 0);
    r.nlh()->nlmsg_type = RTM_NEWLINK;
    EXPECT_FALSE(parse_route(r.nlh()));
    r.nlh()->nlmsg_type = RTM_NEWROUTE;
    r.nlh()->nlmsg_len = MNL_NLMSG_HDRLEN + 4;  // shorter than rtmsg
    EXPECT_FALSE(parse_route(r.nlh()));
  }
}

TEST(Sysctl, KeysThatLeaveProcSysAreRefused) {
  for (const char* key : {"net.ipv4.../../x", "net/ipv4/ip_forward", "..", "", ".net.ipv4",
                          "net.ipv4.", "net..ipv4"}) {
    Result<void> written = write_sysctl(key, "1");
    ASSERT_FALSE(written) << key;
    EXPECT_EQ(written.error().code(), ErrorCode::kInvalidArgument) << key;
    Result<std::string> read = read_sysctl(key);
    ASSERT_FALSE(read) << key;
    EXPECT_EQ(read.error().code(), ErrorCode::kInvalidArgument) << key;
  }
}

TEST(Sysctl, ReadsWithoutTrailingNewline) {
  // Readable by anyone and the same on every kernel.
  Result<std::string> value = read_sysctl("kernel.ostype");
  ASSERT_TRUE(value) << value.error().to_string();
  EXPECT_EQ(*value, "Linux");
  Result<std::string> missing = read_sysctl("net.ipv4.no_such_setting");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().sys_errno(), ENOENT);
}

}  // namespace
}  // namespace netcell::kernel
