// Golden tests of the rtnetlink builders and parsers: no sockets, no privileges.
#include "linux/netlink.h"

#include <arpa/inet.h>
#include <errno.h>
#include <gtest/gtest.h>
#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/socket.h>

#include <cstring>

namespace netcell::kernel {
namespace {

const nlmsghdr* header(const NlMessage& msg) {
  return reinterpret_cast<const nlmsghdr*>(msg.data());
}

// Builds a reply the way the kernel would, with libmnl, in a buffer owned by the test.
class MessageWriter {
 public:
  MessageWriter(std::uint16_t type, std::size_t family_header_size) : buf_(8192) {
    nlh_ = mnl_nlmsg_put_header(buf_.data());
    nlh_->nlmsg_type = type;
    family_ = mnl_nlmsg_put_extra_header(nlh_, family_header_size);
  }
  // Moving keeps the vector's heap buffer, so the pointers stay valid; a copy would not.
  MessageWriter(MessageWriter&&) = default;
  MessageWriter(const MessageWriter&) = delete;
  MessageWriter& operator=(const MessageWriter&) = delete;
  template <typename T>
  T* family() {
    return static_cast<T*>(family_);
  }
  nlmsghdr* nlh() { return nlh_; }

 private:
  std::vector<std::uint8_t> buf_;
  nlmsghdr* nlh_;
  void* family_;
};

TEST(NetlinkBuilders, LinkSetUp) {
  NlMessage msg = rtnl::link_set_up(7, true);
  ASSERT_EQ(msg.size(), NLMSG_LENGTH(sizeof(ifinfomsg)));
  const nlmsghdr* nlh = header(msg);
  EXPECT_EQ(nlh->nlmsg_len, msg.size());
  EXPECT_EQ(nlh->nlmsg_type, RTM_NEWLINK);
  // No CREATE/EXCL/REPLACE: this changes an existing link. The socket adds ACK and the seq.
  EXPECT_EQ(nlh->nlmsg_flags, NLM_F_REQUEST);
  EXPECT_EQ(nlh->nlmsg_seq, 0u);
  const auto* ifi = static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(nlh));
  EXPECT_EQ(ifi->ifi_family, AF_UNSPEC);
  EXPECT_EQ(ifi->ifi_index, 7);
  EXPECT_EQ(ifi->ifi_flags, static_cast<unsigned>(IFF_UP));
  EXPECT_EQ(ifi->ifi_change, static_cast<unsigned>(IFF_UP));
  EXPECT_EQ(ifi->ifi_type, 0);
}

TEST(NetlinkBuilders, LinkSetDownClearsOnlyUp) {
  NlMessage msg = rtnl::link_set_up(1, false);
  const auto* ifi = static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(header(msg)));
  EXPECT_EQ(ifi->ifi_index, 1);
  EXPECT_EQ(ifi->ifi_flags, 0u);
  EXPECT_EQ(ifi->ifi_change, static_cast<unsigned>(IFF_UP));
}

TEST(NetlinkBuilders, LinkDump) {
  NlMessage msg = rtnl::link_dump();
  ASSERT_EQ(msg.size(), NLMSG_LENGTH(sizeof(ifinfomsg)));
  const nlmsghdr* nlh = header(msg);
  EXPECT_EQ(nlh->nlmsg_type, RTM_GETLINK);
  EXPECT_EQ(nlh->nlmsg_flags, NLM_F_REQUEST | NLM_F_DUMP);
  const auto* ifi = static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(nlh));
  EXPECT_EQ(ifi->ifi_family, AF_UNSPEC);
  EXPECT_EQ(ifi->ifi_index, 0);
}

TEST(NetlinkBuilders, AddrDump) {
  for (int family : {AF_INET, AF_INET6, AF_UNSPEC}) {
    NlMessage msg = rtnl::addr_dump(family);
    ASSERT_EQ(msg.size(), NLMSG_LENGTH(sizeof(ifaddrmsg)));
    const nlmsghdr* nlh = header(msg);
    EXPECT_EQ(nlh->nlmsg_type, RTM_GETADDR);
    EXPECT_EQ(nlh->nlmsg_flags, NLM_F_REQUEST | NLM_F_DUMP);
    const auto* ifa = static_cast<const ifaddrmsg*>(mnl_nlmsg_get_payload(nlh));
    EXPECT_EQ(ifa->ifa_family, family);
    EXPECT_EQ(ifa->ifa_index, 0u);
  }
}

MessageWriter link_message() {
  MessageWriter w(RTM_NEWLINK, sizeof(ifinfomsg));
  auto* ifi = w.family<ifinfomsg>();
  ifi->ifi_index = 3;
  ifi->ifi_flags = IFF_UP | IFF_BROADCAST | IFF_RUNNING;
  mnl_attr_put_strz(w.nlh(), IFLA_IFNAME, "veth0");
  mnl_attr_put_u32(w.nlh(), IFLA_MTU, 1400);
  mnl_attr_put_u8(w.nlh(), IFLA_OPERSTATE, 6);  // unrelated attributes are skipped
  rtnl_link_stats64 stats{};
  stats.rx_packets = 11;
  stats.tx_packets = 12;
  stats.rx_bytes = 1ull << 40;  // 64-bit counters must survive
  stats.tx_bytes = 14;
  stats.rx_errors = 15;
  stats.tx_errors = 16;
  stats.rx_dropped = 17;
  stats.tx_dropped = 18;
  stats.multicast = 99;
  mnl_attr_put(w.nlh(), IFLA_STATS64, sizeof stats, &stats);
  return w;
}

TEST(NetlinkParse, Link) {
  MessageWriter w = link_message();
  Result<LinkRecord> link = parse_link(w.nlh());
  ASSERT_TRUE(link) << link.error().to_string();
  EXPECT_EQ(link->ifindex, 3);
  EXPECT_EQ(link->name, "veth0");
  EXPECT_EQ(link->mtu, 1400u);
  EXPECT_EQ(link->flags, static_cast<std::uint32_t>(IFF_UP | IFF_BROADCAST | IFF_RUNNING));
  EXPECT_EQ(link->stats.name, "veth0");
  EXPECT_EQ(link->stats.rx_packets, 11u);
  EXPECT_EQ(link->stats.tx_packets, 12u);
  EXPECT_EQ(link->stats.rx_bytes, 1ull << 40);
  EXPECT_EQ(link->stats.tx_bytes, 14u);
  EXPECT_EQ(link->stats.rx_errors, 15u);
  EXPECT_EQ(link->stats.tx_errors, 16u);
  EXPECT_EQ(link->stats.rx_dropped, 17u);
  EXPECT_EQ(link->stats.tx_dropped, 18u);
}

TEST(NetlinkParse, LinkWithoutStatsHasZeroCounters) {
  MessageWriter w(RTM_NEWLINK, sizeof(ifinfomsg));
  w.family<ifinfomsg>()->ifi_index = 1;
  mnl_attr_put_strz(w.nlh(), IFLA_IFNAME, "lo");
  Result<LinkRecord> link = parse_link(w.nlh());
  ASSERT_TRUE(link) << link.error().to_string();
  EXPECT_EQ(link->name, "lo");
  EXPECT_EQ(link->mtu, 0u);
  EXPECT_EQ(link->master, 0);
  EXPECT_EQ(link->stats.rx_packets, 0u);
}

// A bridge port names its bridge (IFLA_MASTER); a link without one has master 0 (above: lo), and
// a master attribute of the wrong size is an error.
TEST(NetlinkParse, LinkMaster) {
  MessageWriter w(RTM_NEWLINK, sizeof(ifinfomsg));
  w.family<ifinfomsg>()->ifi_index = 7;
  mnl_attr_put_strz(w.nlh(), IFLA_IFNAME, "ncb0");
  mnl_attr_put_u32(w.nlh(), IFLA_MASTER, 5);
  Result<LinkRecord> link = parse_link(w.nlh());
  ASSERT_TRUE(link) << link.error().to_string();
  EXPECT_EQ(link->master, 5);
  MessageWriter bad(RTM_NEWLINK, sizeof(ifinfomsg));
  mnl_attr_put_strz(bad.nlh(), IFLA_IFNAME, "ncb0");
  mnl_attr_put_u16(bad.nlh(), IFLA_MASTER, 5);
  EXPECT_FALSE(parse_link(bad.nlh()));
}

TEST(NetlinkParse, TruncatedAttributeIsAnError) {
  MessageWriter w = link_message();
  // Cut the message inside the last attribute (IFLA_STATS64): its nla_len now overruns.
  w.nlh()->nlmsg_len -= 8;
  Result<LinkRecord> link = parse_link(w.nlh());
  ASSERT_FALSE(link);
  EXPECT_NE(link.error().message().find("truncated attribute"), std::string::npos)
      << link.error().to_string();
}

TEST(NetlinkParse, AttributeLengthBelowHeaderIsAnError) {
  MessageWriter w(RTM_NEWLINK, sizeof(ifinfomsg));
  mnl_attr_put_strz(w.nlh(), IFLA_IFNAME, "eth0");
  auto* bogus = static_cast<nlattr*>(mnl_nlmsg_get_payload_tail(w.nlh()));
  mnl_attr_put_u32(w.nlh(), IFLA_MTU, 1500);
  bogus->nla_len = 2;  // would make a naive walker loop forever or read garbage
  EXPECT_FALSE(parse_link(w.nlh()));
}

TEST(NetlinkParse, ShortStatsAndBadNameAreErrors) {
  {
    MessageWriter w(RTM_NEWLINK, sizeof(ifinfomsg));
    mnl_attr_put_strz(w.nlh(), IFLA_IFNAME, "eth0");
    std::uint64_t only_two[2] = {1, 2};
    mnl_attr_put(w.nlh(), IFLA_STATS64, sizeof only_two, only_two);
    EXPECT_FALSE(parse_link(w.nlh()));
  }
  {
    MessageWriter w(RTM_NEWLINK, sizeof(ifinfomsg));
    mnl_attr_put(w.nlh(), IFLA_IFNAME, 4, "eth0");  // no NUL terminator
    EXPECT_FALSE(parse_link(w.nlh()));
  }
  {
    MessageWriter w(RTM_NEWLINK, sizeof(ifinfomsg));  // no name at all
    EXPECT_FALSE(parse_link(w.nlh()));
  }
}

TEST(NetlinkParse, WrongTypeOrShortHeaderIsAnError) {
  MessageWriter w = link_message();
  w.nlh()->nlmsg_type = RTM_NEWADDR;
  EXPECT_FALSE(parse_link(w.nlh()));

  MessageWriter short_msg(RTM_NEWLINK, 0);
  EXPECT_FALSE(parse_link(short_msg.nlh()));
  short_msg.nlh()->nlmsg_type = RTM_NEWADDR;
  EXPECT_FALSE(parse_addr(short_msg.nlh()));
}

TEST(NetlinkParse, AddrV4PrefersLocal) {
  MessageWriter w(RTM_NEWADDR, sizeof(ifaddrmsg));
  auto* ifa = w.family<ifaddrmsg>();
  ifa->ifa_family = AF_INET;
  ifa->ifa_prefixlen = 30;
  ifa->ifa_index = 4;
  // Point-to-point style: IFA_ADDRESS is the peer and comes first; IFA_LOCAL is ours.
  mnl_attr_put_u32(w.nlh(), IFA_ADDRESS, htonl(0x0a000001));  // 10.0.0.1
  mnl_attr_put_u32(w.nlh(), IFA_LOCAL, htonl(0x0a000002));    // 10.0.0.2
  mnl_attr_put_strz(w.nlh(), IFA_LABEL, "eth0");
  Result<AddrRecord> addr = parse_addr(w.nlh());
  ASSERT_TRUE(addr) << addr.error().to_string();
  EXPECT_EQ(addr->ifindex, 4);
  EXPECT_EQ(addr->prefix.prefix_len, 30);
  EXPECT_TRUE(addr->prefix.address.is_v4());
  EXPECT_EQ(addr->prefix.address, IpAddress::v4(0x0a000002));
  EXPECT_EQ(addr->prefix.to_string(), "10.0.0.2/30");
}

TEST(NetlinkParse, AddrV6FallsBackToAddress) {
  MessageWriter w(RTM_NEWADDR, sizeof(ifaddrmsg));
  auto* ifa = w.family<ifaddrmsg>();
  ifa->ifa_family = AF_INET6;
  ifa->ifa_prefixlen = 64;
  ifa->ifa_index = 2;
  std::array<std::uint8_t, 16> bytes{0xfd, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01};
  mnl_attr_put(w.nlh(), IFA_ADDRESS, bytes.size(), bytes.data());
  Result<AddrRecord> addr = parse_addr(w.nlh());
  ASSERT_TRUE(addr) << addr.error().to_string();
  EXPECT_EQ(addr->ifindex, 2);
  EXPECT_EQ(addr->prefix.prefix_len, 64);
  EXPECT_FALSE(addr->prefix.address.is_v4());
  EXPECT_EQ(addr->prefix.address, IpAddress::v6(bytes));
  EXPECT_EQ(addr->prefix.to_string(), "fd00::1/64");
}

TEST(NetlinkParse, AddrErrors) {
  {
    MessageWriter w(RTM_NEWADDR, sizeof(ifaddrmsg));
    w.family<ifaddrmsg>()->ifa_family = AF_INET;
    mnl_attr_put(w.nlh(), IFA_LOCAL, 16, std::array<std::uint8_t, 16>{}.data());  // v6-sized
    EXPECT_FALSE(parse_addr(w.nlh()));
  }
  {
    MessageWriter w(RTM_NEWADDR, sizeof(ifaddrmsg));
    w.family<ifaddrmsg>()->ifa_family = AF_INET;  // no address attribute
    EXPECT_FALSE(parse_addr(w.nlh()));
  }
  {
    MessageWriter w(RTM_NEWADDR, sizeof(ifaddrmsg));
    w.family<ifaddrmsg>()->ifa_family = AF_PACKET;
    mnl_attr_put_u32(w.nlh(), IFA_LOCAL, 0);
    Result<AddrRecord> addr = parse_addr(w.nlh());
    ASSERT_FALSE(addr);
    EXPECT_EQ(addr.error().code(), ErrorCode::kUnsupported);
  }
}

// An NLMSG_ERROR as a NETLINK_CAP_ACK + NETLINK_EXT_ACK socket receives it.
MessageWriter error_message(int error, std::uint16_t request_type, const char* text) {
  MessageWriter w(NLMSG_ERROR, sizeof(nlmsgerr));
  auto* err = w.family<nlmsgerr>();
  err->error = error;
  err->msg.nlmsg_type = request_type;
  err->msg.nlmsg_len = NLMSG_LENGTH(sizeof(ifaddrmsg) + 16);  // the (not echoed) request
  err->msg.nlmsg_seq = 5;
  w.nlh()->nlmsg_flags = NLM_F_CAPPED;
  if (text != nullptr) {
    w.nlh()->nlmsg_flags |= NLM_F_ACK_TLVS;
    mnl_attr_put_strz(w.nlh(), NLMSGERR_ATTR_MSG, text);
    mnl_attr_put_u32(w.nlh(), NLMSGERR_ATTR_OFFS, 36);
  }
  return w;
}

TEST(NetlinkAck, ZeroErrorIsSuccess) {
  MessageWriter w = error_message(0, RTM_NEWLINK, nullptr);
  EXPECT_TRUE(parse_ack(w.nlh()));
}

TEST(NetlinkAck, ErrorCarriesErrnoAndExtAckText) {
  MessageWriter w = error_message(-EEXIST, RTM_NEWADDR, "ipv4: Address already assigned");
  Result<void> ack = parse_ack(w.nlh());
  ASSERT_FALSE(ack);
  EXPECT_EQ(ack.error().sys_errno(), EEXIST);
  EXPECT_EQ(ack.error().code(), ErrorCode::kAlreadyExists);
  EXPECT_EQ(ack.error().message(), "RTM_NEWADDR: ipv4: Address already assigned");
}

TEST(NetlinkAck, ErrorWithoutTextNamesTheRequest) {
  MessageWriter w = error_message(-EINVAL, RTM_NEWLINK, nullptr);
  Result<void> ack = parse_ack(w.nlh());
  ASSERT_FALSE(ack);
  EXPECT_EQ(ack.error().sys_errno(), EINVAL);
  EXPECT_EQ(ack.error().message(), "RTM_NEWLINK");
}

TEST(NetlinkAck, UncappedAckSkipsTheEchoedRequest) {
  // Without NETLINK_CAP_ACK the whole request is echoed before the TLVs.
  NlMessage request = rtnl::link_set_up(9, true);
  MessageWriter w(NLMSG_ERROR, sizeof(nlmsgerr) + request.size() - sizeof(nlmsghdr));
  auto* err = w.family<nlmsgerr>();
  err->error = -ENODEV;
  std::memcpy(&err->msg, request.data(), request.size());
  w.nlh()->nlmsg_flags = NLM_F_ACK_TLVS;
  mnl_attr_put_strz(w.nlh(), NLMSGERR_ATTR_MSG, "no such device");
  Result<void> ack = parse_ack(w.nlh());
  ASSERT_FALSE(ack);
  EXPECT_EQ(ack.error().sys_errno(), ENODEV);
  EXPECT_EQ(ack.error().message(), "RTM_NEWLINK: no such device");
}

TEST(NetlinkAck, TruncatedErrorIsRejected) {
  MessageWriter w(NLMSG_ERROR, 4);  // shorter than nlmsgerr
  EXPECT_FALSE(parse_ack(w.nlh()));
}

}  // namespace
}  // namespace netcell::kernel
