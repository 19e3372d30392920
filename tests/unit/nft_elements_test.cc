// Golden tests of the nftables element encodings and of the element batch: no sockets, no
// privileges. That the kernel and nft read the elements back as the values meant is checked by
// NetworkTest.ElementsReadBackAsNftWritesThem.
#include "linux/nft_elements.h"

#include <gtest/gtest.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>

#include <cstring>
#include <string>
#include <vector>

namespace netcell::kernel {
namespace {

using Bytes = std::vector<std::uint8_t>;

IpAddress ip(const char* text) {
  return *IpAddress::parse(text);
}

TEST(NftEncodeTest, FieldsHaveNftsLayout) {
  Bytes name = nft_encode::ifname("nc1a2b");
  ASSERT_EQ(name.size(), 16U);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(name.data())), "nc1a2b");
  EXPECT_EQ(name[6], 0);
  EXPECT_EQ(name[15], 0);
  EXPECT_EQ(nft_encode::ipv4(ip("10.209.0.2")), (Bytes{10, 209, 0, 2}));
  EXPECT_EQ(nft_encode::service(8080), (Bytes{0x1f, 0x90}));
  // Each field of a concatenation takes a multiple of 4 bytes.
  EXPECT_EQ(nft_encode::concat({nft_encode::ipv4(ip("10.0.0.2")), nft_encode::service(80)}),
            (Bytes{10, 0, 0, 2, 0, 80, 0, 0}));
  EXPECT_EQ(nft_encode::concat({name, nft_encode::ipv4(ip("10.0.0.2"))}).size(), 20U);
}

TEST(NftEncodeTest, NamespaceElementsFollowTheSetDeclarations) {
  NamespaceRules rules;
  rules.host_if = "nc1";
  rules.address = ip("10.209.0.2");
  rules.forwards = {{8080, 80, Protocol::kTcp, std::nullopt},
                    {53, 5353, Protocol::kUdp, ip("127.0.0.1")}};
  auto elements = *namespace_elements(rules);
  std::vector<std::string> sets;
  for (const auto& e : elements) sets.push_back(e.set);
  EXPECT_EQ(sets, (std::vector<std::string>{"ns_ifs", "src_ok", "hairpin", "nat_src", "pf_tcp",
                                            "pf_udp_ip"}));
  EXPECT_EQ(elements[4].key, (Bytes{0x1f, 0x90}));
  EXPECT_EQ(elements[4].data, (Bytes{10, 209, 0, 2, 0, 80, 0, 0}));
  EXPECT_EQ(elements[5].key, (Bytes{127, 0, 0, 1, 0, 53, 0, 0}));
  EXPECT_EQ(elements[5].data, (Bytes{10, 209, 0, 2, 0x14, 0xe9, 0, 0}));
  EXPECT_EQ(elements[3].key, (Bytes{10, 209, 0, 2}));
  EXPECT_TRUE(elements[0].data.empty());

  rules.masquerade = false;
  rules.host_if.clear();  // bridged: only the published ports
  rules.forwards.resize(1);
  EXPECT_EQ(namespace_elements(rules)->size(), 1U);
}

// A bridged namespace: its port and address go to the bridge table (port_src pins the address to
// the port); with a policy also pol_routed, then the ip table's policy elements.
TEST(NftEncodeTest, BridgedNamespaceElementsPinTheAddressToThePort) {
  NamespaceRules rules;
  rules.bridge_port = "nc0p2";
  rules.address = ip("10.60.0.2");
  rules.masquerade = false;
  auto plain = *namespace_elements(rules);
  ASSERT_EQ(plain.size(), 2U);
  EXPECT_EQ(plain[0].set, kBridgePortsSet);
  EXPECT_EQ(plain[1].set, kPortSourceSet);
  Bytes key = nft_encode::ifname("nc0p2");
  key.insert(key.end(), {10, 60, 0, 2});
  EXPECT_EQ(plain[1].key, key);  // ifname (16) . ipv4_addr (4)
  EXPECT_TRUE(plain[1].data.empty() && plain[1].key_end.empty());

  EgressPolicy policy;
  policy.default_action = PolicyAction::kDeny;
  policy.rules.push_back(*EgressRule::parse(PolicyAction::kAllow, "10.60.0.3:9000/tcp"));
  rules.egress = policy;
  auto with_policy = *namespace_elements(rules);
  std::vector<std::string> sets;
  for (const auto& e : with_policy) sets.push_back(e.set);
  EXPECT_EQ(sets, (std::vector<std::string>{"bridge_ports", "port_src", "pol_routed", "pol_ns",
                                            "pol_default", "pol_allow_tp_0"}));
  EXPECT_EQ(with_policy[2], routed_element(rules.address));
  EXPECT_EQ(with_policy[2].key, (Bytes{10, 60, 0, 2}));
  // A private namespace's policy never touches the bridge table.
  rules.bridge_port.clear();
  rules.host_if = "ncp0";
  const auto private_elements = *namespace_elements(rules);
  for (const auto& e : private_elements) EXPECT_FALSE(in_bridge_table(e.set)) << e.set;
}

TEST(NftEncodeTest, OnlyTheBridgeTablesSetsAreInIt) {
  for (const char* set : {kBridgePortsSet, kPortSourceSet, kRoutedSet}) {
    EXPECT_TRUE(in_bridge_table(set)) << set;
  }
  for (const char* set : {"ns_ifs", "src_ok", "src_ok_net", "pol_ns", "pol_allow_tp", "hairpin"}) {
    EXPECT_FALSE(in_bridge_table(set)) << set;
  }
}

// The attributes in `len` bytes from `payload`.
std::vector<const nlattr*> attrs(const void* payload, std::size_t len) {
  std::vector<const nlattr*> out;
  const auto* attr = static_cast<const nlattr*>(payload);
  int rest = static_cast<int>(len);
  while (mnl_attr_ok(attr, rest)) {
    out.push_back(attr);
    rest -= static_cast<int>(MNL_ALIGN(attr->nla_len));
    attr = mnl_attr_next(attr);
  }
  EXPECT_EQ(rest, 0);
  return out;
}

std::vector<const nlattr*> nested(const nlattr* attr) {
  return attrs(mnl_attr_get_payload(attr), mnl_attr_get_payload_len(attr));
}

struct Parsed {
  std::uint16_t type;
  std::uint16_t flags;
  std::uint32_t seq;
  std::string set;
  std::vector<Bytes> keys;
};

std::vector<Parsed> parse(const Bytes& batch) {
  std::vector<Parsed> out;
  int len = static_cast<int>(batch.size());
  for (auto* nlh = reinterpret_cast<const nlmsghdr*>(batch.data()); mnl_nlmsg_ok(nlh, len);
       nlh = mnl_nlmsg_next(nlh, &len)) {
    Parsed p{nlh->nlmsg_type, nlh->nlmsg_flags, nlh->nlmsg_seq, "", {}};
    if (nlh->nlmsg_type >> 8 == NFNL_SUBSYS_NFTABLES) {
      // Walked by hand: libnftnl's own parser expects every list entry to be typed
      // NFTA_LIST_ELEM, while its builder numbers them 1, 2, ... (the kernel takes either).
      for (const nlattr* attr : attrs(mnl_nlmsg_get_payload_offset(nlh, sizeof(nfgenmsg)),
                                      nlh->nlmsg_len - MNL_NLMSG_HDRLEN - sizeof(nfgenmsg))) {
        switch (mnl_attr_get_type(attr)) {
          case NFTA_SET_ELEM_LIST_TABLE: EXPECT_STREQ(mnl_attr_get_str(attr), "netcell"); break;
          case NFTA_SET_ELEM_LIST_SET: p.set = mnl_attr_get_str(attr); break;
          case NFTA_SET_ELEM_LIST_ELEMENTS:
            for (const nlattr* elem : nested(attr)) {
              for (const nlattr* field : nested(elem)) {
                if (mnl_attr_get_type(field) != NFTA_SET_ELEM_KEY) continue;
                for (const nlattr* value : nested(field)) {
                  const auto* bytes = static_cast<const std::uint8_t*>(mnl_attr_get_payload(value));
                  p.keys.emplace_back(bytes, bytes + mnl_attr_get_payload_len(value));
                }
              }
            }
            break;
          default: break;
        }
      }
    }
    out.push_back(std::move(p));
  }
  EXPECT_EQ(len, 0) << "trailing bytes after the last message";
  return out;
}

TEST(NftBatchTest, OneMessagePerSetBetweenBeginAndEnd) {
  std::vector<SetElement> elements = {{"ns_ifs", nft_encode::ifname("a"), {}, {}},
                                      {"nat_src", {10, 0, 0, 2}, {}, {}},
                                      {"ns_ifs", nft_encode::ifname("b"), {}, {}}};
  std::uint32_t ack_seq = 0;
  auto batch = build_element_batch(ElementOp::kAdd, elements, 40, ack_seq);
  auto msgs = parse(batch);
  ASSERT_EQ(msgs.size(), 4U);
  EXPECT_EQ(ack_seq, 42U);  // the last set message
  EXPECT_EQ(msgs[0].type, NFNL_MSG_BATCH_BEGIN);
  EXPECT_EQ(msgs[3].type, NFNL_MSG_BATCH_END);
  for (std::size_t i = 0; i < msgs.size(); ++i) EXPECT_EQ(msgs[i].seq, 40 + i);
  EXPECT_EQ(msgs[1].type, NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWSETELEM);
  EXPECT_EQ(msgs[1].set, "ns_ifs");
  EXPECT_EQ(msgs[1].keys, (std::vector<Bytes>{nft_encode::ifname("a"), nft_encode::ifname("b")}));
  EXPECT_EQ(msgs[2].set, "nat_src");
  EXPECT_FALSE(msgs[1].flags & NLM_F_ACK) << "errors come anyway; only the last is acked";
  EXPECT_TRUE(msgs[2].flags & NLM_F_ACK);
  for (int i : {1, 2}) {
    EXPECT_TRUE(msgs[i].flags & NLM_F_CREATE);
    EXPECT_FALSE(msgs[i].flags & NLM_F_EXCL) << "re-adding an identical element is not an error";
  }

  batch = build_element_batch(ElementOp::kDelete, elements, 1, ack_seq);
  msgs = parse(batch);
  ASSERT_EQ(msgs.size(), 4U);
  EXPECT_EQ(msgs[1].type, NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_DELSETELEM);
  EXPECT_FALSE(msgs[1].flags & NLM_F_CREATE);
}

// One transaction may hold both tables: each message names its set's family.
TEST(NftBatchTest, BridgeTableSetsGoToTheBridgeFamily) {
  const std::vector<SetElement> remove{{"pol_ns", {10, 60, 0, 2}, {}, {}},
                                       routed_element(ip("10.60.0.2"))};
  const std::vector<SetElement> add{routed_element(ip("10.60.0.2")),
                                    {"pol_open", {10, 60, 0, 2}, {}, {}}};
  std::uint32_t ack_seq = 0;
  auto batch =
      build_element_batch({{ElementOp::kDelete, remove}, {ElementOp::kAdd, add}}, 1, ack_seq);
  std::vector<std::pair<std::string, int>> families;
  int len = static_cast<int>(batch.size());
  for (auto* nlh = reinterpret_cast<const nlmsghdr*>(batch.data()); mnl_nlmsg_ok(nlh, len);
       nlh = mnl_nlmsg_next(nlh, &len)) {
    if (nlh->nlmsg_type >> 8 != NFNL_SUBSYS_NFTABLES) continue;
    const auto* gen = static_cast<const nfgenmsg*>(mnl_nlmsg_get_payload(nlh));
    families.emplace_back(std::to_string(nlh->nlmsg_type & 0xff), gen->nfgen_family);
  }
  const std::string del = std::to_string(NFT_MSG_DELSETELEM),
                    add_msg = std::to_string(NFT_MSG_NEWSETELEM);
  EXPECT_EQ(families, (std::vector<std::pair<std::string, int>>{{del, NFPROTO_IPV4},
                                                                {del, NFPROTO_BRIDGE},
                                                                {add_msg, NFPROTO_BRIDGE},
                                                                {add_msg, NFPROTO_IPV4}}));
  auto msgs = parse(batch);
  ASSERT_EQ(msgs.size(), 6U);
  EXPECT_EQ(msgs[2].set, "pol_routed");
  EXPECT_EQ(msgs[3].set, "pol_routed");
}

// A dual-stack namespace: its IPv6 elements go to the ip6 table, in the same batch (one
// transaction) as its IPv4 ones.
TEST(NftBatchTest, Ipv6ElementsGoToTheIp6TableInTheSameBatch) {
  NamespaceRules rules;
  rules.host_if = "ncp3";
  rules.address = ip("10.209.0.14");
  rules.address6 = ip("fd00:1:2:3::2");
  rules.masquerade6 = true;
  auto elements = *namespace_elements(rules);
  std::vector<std::string> sets;
  for (const auto& e : elements) sets.push_back(e.set);
  EXPECT_EQ(sets, (std::vector<std::string>{"ns_ifs", "src_ok", "hairpin", "nat_src", "ns_ifs6",
                                            "src_ok6", "nat_src6"}));
  const Bytes v6{0xfd, 0, 0, 1, 0, 2, 0, 3, 0, 0, 0, 0, 0, 0, 0, 2};
  EXPECT_EQ(elements[6].key, v6);
  EXPECT_EQ(elements[5].key.size(), 32U);  // ifname . ipv6_addr
  EXPECT_EQ(Bytes(elements[5].key.begin() + 16, elements[5].key.end()), v6);
  rules.masquerade6 = false;  // a routable pool
  EXPECT_EQ(namespace_elements(rules)->size(), 6U);
  std::uint32_t ack_seq = 0;
  auto batch = build_element_batch(ElementOp::kAdd, elements, 1, ack_seq);
  std::vector<int> families;
  int len = static_cast<int>(batch.size());
  for (auto* nlh = reinterpret_cast<const nlmsghdr*>(batch.data()); mnl_nlmsg_ok(nlh, len);
       nlh = mnl_nlmsg_next(nlh, &len)) {
    if (nlh->nlmsg_type >> 8 != NFNL_SUBSYS_NFTABLES) continue;
    families.push_back(static_cast<const nfgenmsg*>(mnl_nlmsg_get_payload(nlh))->nfgen_family);
  }
  EXPECT_EQ(families, (std::vector<int>{NFPROTO_IPV4, NFPROTO_IPV4, NFPROTO_IPV4, NFPROTO_IPV4,
                                        NFPROTO_IPV6, NFPROTO_IPV6, NFPROTO_IPV6}));
  EXPECT_TRUE(in_ip6_table("src_ok6"));
  EXPECT_FALSE(in_ip6_table("src_ok"));
}

// A dual-stack namespace's publishes: one with no host address covers both families (pf_tcp and
// pf6_tcp), [::] only IPv6 (pf6_*), an IPv6 address only that address (pf6_*_ip), an IPv4 one
// only IPv4, and [::1] none (the host service relays it); hairpin6 for the hairpin's masquerade.
TEST(NftEncodeTest, Ipv6PublishesGoToTheIp6TablesMaps) {
  NamespaceRules rules;
  rules.host_if = "ncp3";
  rules.address = ip("10.209.0.14");
  rules.address6 = ip("fd00:1:2:3::2");
  rules.forwards = {{8080, 80, Protocol::kTcp, std::nullopt},
                    {5353, 53, Protocol::kUdp, ip("::")},
                    {8443, 443, Protocol::kTcp, ip("2001:db8::1")},
                    {8081, 81, Protocol::kTcp, ip("::1")},
                    {8082, 82, Protocol::kTcp, ip("127.0.0.1")}};
  auto elements = *namespace_elements(rules);
  std::vector<std::string> sets;
  for (const auto& e : elements) sets.push_back(e.set);
  EXPECT_EQ(sets, (std::vector<std::string>{"ns_ifs", "src_ok", "hairpin", "nat_src", "ns_ifs6",
                                            "src_ok6", "hairpin6", "pf6_tcp", "pf_tcp", "pf6_udp",
                                            "pf6_tcp_ip", "pf_tcp_ip"}));
  const Bytes v6{0xfd, 0, 0, 1, 0, 2, 0, 3, 0, 0, 0, 0, 0, 0, 0, 2};
  auto with_port = [](Bytes address, std::uint8_t hi, std::uint8_t lo) {
    address.insert(address.end(), {hi, lo, 0, 0});
    return address;
  };
  EXPECT_EQ(elements[7].key, (Bytes{0x1f, 0x90}));
  EXPECT_EQ(elements[7].data, with_port(v6, 0, 80));
  EXPECT_EQ(elements[9].key, (Bytes{0x14, 0xe9}));
  EXPECT_EQ(elements[9].data, with_port(v6, 0, 53));
  const Bytes doc{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  EXPECT_EQ(elements[10].key, with_port(doc, 0x20, 0xfb));
  EXPECT_EQ(elements[10].data, with_port(v6, 0x01, 0xbb));
  for (const char* set : {"hairpin6", "pf6_tcp", "pf6_udp", "pf6_tcp_ip", "pf6_udp_ip"}) {
    EXPECT_TRUE(in_ip6_table(set)) << set;
  }
  // An IPv4-only namespace: IPv4 elements only.
  rules.address6.reset();
  const auto v4_only = *namespace_elements(rules);
  for (const auto& e : v4_only) EXPECT_FALSE(in_ip6_table(e.set)) << e.set;
}

}  // namespace
}  // namespace netcell::kernel
