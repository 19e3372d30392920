// Golden tests of the tbf qdisc builders and of the burst/limit sizing: no sockets, no privileges.
#include "linux/qos.h"

#include <gtest/gtest.h>
#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <cstring>
#include <utility>
#include <vector>

#include "support/nl_attrs.h"

namespace netcell::kernel {
namespace {

const nlmsghdr* header(const NlMessage& msg) {
  return reinterpret_cast<const nlmsghdr*>(msg.data());
}

tcmsg tc_header(const NlMessage& msg) {
  tcmsg tcm{};
  EXPECT_GE(msg.size(), MNL_NLMSG_HDRLEN + sizeof(tcmsg));
  std::memcpy(&tcm, msg.data() + MNL_NLMSG_HDRLEN, sizeof tcm);
  return tcm;
}

using testing::attrs_in;

std::vector<const nlattr*> top_attrs(const NlMessage& msg) {
  return attrs_in(msg.data() + MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(tcmsg)),
                  msg.data() + msg.size());
}

std::vector<const nlattr*> nested(const nlattr* nest) {
  const auto* payload = static_cast<const std::uint8_t*>(mnl_attr_get_payload(nest));
  return attrs_in(payload, payload + mnl_attr_get_payload_len(nest));
}

std::vector<std::uint16_t> types(const std::vector<const nlattr*>& attrs) {
  std::vector<std::uint16_t> out;
  for (const nlattr* attr : attrs) out.push_back(mnl_attr_get_type(attr));
  return out;
}

tc_tbf_qopt qopt_of(const nlattr* attr) {
  tc_tbf_qopt q{};
  EXPECT_EQ(mnl_attr_get_payload_len(attr), sizeof q);
  std::memcpy(&q, mnl_attr_get_payload(attr), sizeof q);
  return q;
}

TEST(QosTest, TbfReplaceIsOneIdempotentRootQdiscMessage) {
  TbfParams params{125'000, 3028, 9278};  // 1 Mbit/s
  NlMessage msg = rtnl::tbf_replace(7, params);
  const nlmsghdr* nlh = header(msg);
  EXPECT_EQ(nlh->nlmsg_len, msg.size());
  EXPECT_EQ(nlh->nlmsg_type, RTM_NEWQDISC);
  EXPECT_EQ(nlh->nlmsg_flags, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_REPLACE);
  tcmsg tcm = tc_header(msg);
  EXPECT_EQ(tcm.tcm_family, AF_UNSPEC);
  EXPECT_EQ(tcm.tcm_ifindex, 7);
  EXPECT_EQ(tcm.tcm_parent, TC_H_ROOT);
  EXPECT_EQ(tcm.tcm_handle, 0x10000U);  // 1:

  auto top = top_attrs(msg);
  ASSERT_EQ(types(top), (std::vector<std::uint16_t>{TCA_KIND, TCA_OPTIONS}));
  EXPECT_EQ(mnl_attr_validate(top[0], MNL_TYPE_NUL_STRING), 0);
  EXPECT_STREQ(mnl_attr_get_str(top[0]), "tbf");
  auto options = nested(top[1]);
  // No TCA_TBF_RATE64 below 2^32 B/s, no rate table.
  ASSERT_EQ(types(options), (std::vector<std::uint16_t>{TCA_TBF_PARMS, TCA_TBF_BURST}));
  tc_tbf_qopt q = qopt_of(options[0]);
  EXPECT_EQ(q.rate.rate, 125'000U);
  EXPECT_EQ(q.rate.linklayer, TC_LINKLAYER_ETHERNET);
  EXPECT_EQ(q.rate.cell_log, 0);
  EXPECT_EQ(q.peakrate.rate, 0U);
  EXPECT_EQ(q.limit, 9278U);
  // 3028 B at 125000 B/s = 24.224 ms = 378500 ticks of 64 ns.
  EXPECT_EQ(q.buffer, 378'500U);
  EXPECT_EQ(q.mtu, 0U);
  EXPECT_EQ(mnl_attr_get_payload_len(options[1]), 4U);
  EXPECT_EQ(mnl_attr_get_u32(options[1]), 3028U);
}

TEST(QosTest, RatesBeyondU32BytesGoInRate64) {
  TbfParams params{125'000'000'000, 500'000'000, 4'000'000'000};  // 1 Tbit/s
  NlMessage msg = rtnl::tbf_replace(3, params);
  auto options = nested(top_attrs(msg)[1]);
  ASSERT_EQ(types(options),
            (std::vector<std::uint16_t>{TCA_TBF_PARMS, TCA_TBF_RATE64, TCA_TBF_BURST}));
  EXPECT_EQ(qopt_of(options[0]).rate.rate, 0xffffffffU);
  EXPECT_EQ(mnl_attr_get_payload_len(options[1]), 8U);
  EXPECT_EQ(mnl_attr_get_u64(options[1]), 125'000'000'000U);
  EXPECT_EQ(mnl_attr_get_u32(options[2]), 500'000'000U);
  // Exactly 2^32 - 1 B/s still fits the u32 field.
  params.rate_bytes_per_second = 0xffffffffU;
  EXPECT_EQ(types(nested(top_attrs(rtnl::tbf_replace(3, params))[1])),
            (std::vector<std::uint16_t>{TCA_TBF_PARMS, TCA_TBF_BURST}));
}

TEST(QosTest, RootQdiscDeleteAndLinkGet) {
  NlMessage del = rtnl::root_qdisc_delete(9);
  EXPECT_EQ(header(del)->nlmsg_type, RTM_DELQDISC);
  EXPECT_EQ(header(del)->nlmsg_flags, NLM_F_REQUEST);
  EXPECT_EQ(del.size(), MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(tcmsg)));
  tcmsg tcm = tc_header(del);
  EXPECT_EQ(tcm.tcm_ifindex, 9);
  EXPECT_EQ(tcm.tcm_parent, TC_H_ROOT);
  EXPECT_EQ(tcm.tcm_handle, 0U);

  NlMessage get = rtnl::link_get_by_index(9);
  EXPECT_EQ(header(get)->nlmsg_type, RTM_GETLINK);
  EXPECT_EQ(header(get)->nlmsg_flags, NLM_F_REQUEST);
  ASSERT_EQ(get.size(), MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(ifinfomsg)));
  ifinfomsg ifi{};
  std::memcpy(&ifi, get.data() + MNL_NLMSG_HDRLEN, sizeof ifi);
  EXPECT_EQ(ifi.ifi_index, 9);
}

TEST(QosTest, BurstAndQueueScaleWithTheRateAndNeverGoBelowFrames) {
  // 1 Mbit/s on a 1500-byte link: two frames of burst, 50 ms of queue.
  TbfParams slow = tbf_params_for(1'000'000, 1500);
  EXPECT_EQ(slow.rate_bytes_per_second, 125'000U);
  EXPECT_EQ(slow.burst_bytes, 2U * 1514);
  EXPECT_EQ(slow.limit_bytes, 2U * 1514 + 6250);
  // 1 Kbit/s: the queue floor of four frames.
  TbfParams slowest = tbf_params_for(1'000, 1500);
  EXPECT_EQ(slowest.burst_bytes, 2U * 1514);
  EXPECT_EQ(slowest.limit_bytes, 6U * 1514);
  // Jumbo frames need a bigger bucket: a frame larger than the bucket could never be sent.
  EXPECT_EQ(tbf_params_for(1'000'000, 9000).burst_bytes, 2U * 9014);
  // 1 Gbit/s: 4 ms of burst, 50 ms of queue on top.
  TbfParams fast = tbf_params_for(1'000'000'000, 1500);
  EXPECT_EQ(fast.burst_bytes, 500'000U);
  EXPECT_EQ(fast.limit_bytes, 500'000U + 6'250'000);
  // 1 Tbit/s: the u32 fields are clamped, not wrapped.
  TbfParams huge = tbf_params_for(1'000'000'000'000, 1500);
  EXPECT_EQ(huge.rate_bytes_per_second, 125'000'000'000U);
  EXPECT_EQ(huge.burst_bytes, 500'000'000U);
  EXPECT_EQ(huge.limit_bytes, 0xffffffffU);
}

TEST(QosTest, GsoLimitKeepsEveryPacketWithinTheBucket) {
  // 10 Mbit/s: a 5000-byte bucket, so GSO packets of at most 4687 bytes (3 segments of 1514 on
  // the wire, as tbf counts them).
  TbfParams ten = tbf_params_for(10'000'000, 1500);
  ASSERT_EQ(ten.burst_bytes, 5000U);
  EXPECT_EQ(gso_max_size_for(ten, 65536), 4687U);
  // 1 Gbit/s: the bucket is bigger than any GSO packet; the default stays.
  EXPECT_EQ(gso_max_size_for(tbf_params_for(1'000'000'000, 1500), 65536), 65536U);
  EXPECT_EQ(default_gso_max_size(0), 65536U);
  EXPECT_EQ(default_gso_max_size(524280), 65536U);
  EXPECT_EQ(default_gso_max_size(16384), 16384U);

  NlMessage msg = rtnl::link_set_gso_max_size(4, 4687);
  EXPECT_EQ(header(msg)->nlmsg_type, RTM_NEWLINK);
  EXPECT_EQ(header(msg)->nlmsg_flags, NLM_F_REQUEST);
  ifinfomsg ifi{};
  std::memcpy(&ifi, msg.data() + MNL_NLMSG_HDRLEN, sizeof ifi);
  EXPECT_EQ(ifi.ifi_index, 4);
  EXPECT_EQ(ifi.ifi_change, 0U);  // no flags touched
  auto attrs = attrs_in(msg.data() + MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(ifinfomsg)),
                        msg.data() + msg.size());
  ASSERT_EQ(types(attrs), (std::vector<std::uint16_t>{IFLA_GSO_MAX_SIZE}));
  EXPECT_EQ(mnl_attr_get_u32(attrs[0]), 4687U);
}

// An RTM_NEWLINK reply as the kernel sends it, with the attributes given.
NlMessage link_reply(const std::vector<std::pair<std::uint16_t, std::uint32_t>>& u32s) {
  NlMessage buf(512);
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = RTM_NEWLINK;
  mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg));
  mnl_attr_put_strz(nlh, IFLA_IFNAME, "eth0");
  for (const auto& [type, value] : u32s) mnl_attr_put_u32(nlh, type, value);
  buf.resize(nlh->nlmsg_len);
  return buf;
}

TEST(QosTest, ParsesTheLinkLimits) {
  auto reply =
      link_reply({{IFLA_MTU, 1500}, {IFLA_GSO_MAX_SIZE, 65536}, {IFLA_TSO_MAX_SIZE, 524280}});
  auto limits = parse_link_limits(header(reply));
  ASSERT_TRUE(limits) << limits.error().to_string();
  EXPECT_EQ(limits->mtu, 1500U);
  EXPECT_EQ(limits->gso_max_size, 65536U);
  EXPECT_EQ(limits->tso_max_size, 524280U);
  // Older kernels report no TSO limit: 0.
  auto old_kernel = link_reply({{IFLA_MTU, 9000}, {IFLA_GSO_MAX_SIZE, 65536}});
  ASSERT_TRUE(parse_link_limits(header(old_kernel)));
  EXPECT_EQ(parse_link_limits(header(old_kernel))->tso_max_size, 0U);
  // No MTU, a truncated message, a wrongly sized attribute: errors, never garbage.
  EXPECT_FALSE(parse_link_limits(header(link_reply({}))));
  auto truncated = reply;
  reinterpret_cast<nlmsghdr*>(truncated.data())->nlmsg_len -= 2;
  EXPECT_FALSE(parse_link_limits(header(truncated)));
  NlMessage bad(512);
  nlmsghdr* nlh = mnl_nlmsg_put_header(bad.data());
  nlh->nlmsg_type = RTM_NEWLINK;
  mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg));
  mnl_attr_put_u16(nlh, IFLA_MTU, 1500);
  bad.resize(nlh->nlmsg_len);
  EXPECT_FALSE(parse_link_limits(header(bad)));
  auto wrong_type = reply;
  reinterpret_cast<nlmsghdr*>(wrong_type.data())->nlmsg_type = RTM_NEWADDR;
  EXPECT_FALSE(parse_link_limits(header(wrong_type)));
}

}  // namespace
}  // namespace netcell::kernel
