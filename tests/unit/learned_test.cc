// What netcell's resolver learns for a namespace (core/learned.h): merging answers into pieces
// that never overlap (the kernel's interval sets refuse overlaps), keeping pieces that last long
// enough, and the record's text form.
#include "core/learned.h"

#include <gtest/gtest.h>

namespace netcell {
namespace {

EgressPolicy policy_of(std::vector<std::string> allow) {
  EgressPolicy p;
  p.default_action = PolicyAction::kDeny;
  for (const auto& text : allow) EXPECT_TRUE(add_egress_entry(p, PolicyAction::kAllow, text));
  return p;
}

IpAddress ip(const char* text) {
  return *IpAddress::parse(text);
}

TEST(LearnedMerge, OneRuleOneAddress) {
  auto p = policy_of({"a.test:443/tcp"});
  auto out = learned::merge({}, p, "a.test", {0}, {ip("192.0.2.1")}, 10'000, 0);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].address, ip("192.0.2.1"));
  EXPECT_EQ(out[0].protocol, PolicyProtocol::kTcp);
  EXPECT_EQ(out[0].ports, (PortRange{443, 443}));
  EXPECT_EQ(out[0].expires_unix_ms, 10'000);
  EXPECT_EQ(out[0].name, "a.test");
  EXPECT_EQ(out[0].rules, (std::vector<std::size_t>{0}));
}

TEST(LearnedMerge, AnyProtocolWithPortsIsTcpAndUdpWithoutPortsEverything) {
  auto p = policy_of({"a.test:53", "b.test"});
  auto out = learned::merge({}, p, "a.test", {0}, {ip("192.0.2.1")}, 10'000, 0);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].protocol, PolicyProtocol::kTcp);
  EXPECT_EQ(out[1].protocol, PolicyProtocol::kUdp);
  out = learned::merge({}, p, "b.test", {1}, {ip("192.0.2.1")}, 10'000, 0);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].protocol, PolicyProtocol::kAny);
}

TEST(LearnedMerge, OverlappingRulesOfOneAddressAreCutApart) {
  // Two names on one address (a CDN), rules with overlapping ports: the pieces cover the union,
  // never overlap, and each carries every rule that covers it.
  auto p = policy_of({"a.test:80-90/tcp", "b.test:85-100/tcp"});
  auto first = learned::merge({}, p, "a.test", {0}, {ip("192.0.2.1")}, 10'000, 0);
  auto out = learned::merge(first, p, "b.test", {1}, {ip("192.0.2.1")}, 20'000, 1);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].ports, (PortRange{80, 84}));
  EXPECT_EQ(out[0].rules, (std::vector<std::size_t>{0}));
  EXPECT_EQ(out[0].expires_unix_ms, 10'000);
  EXPECT_EQ(out[1].ports, (PortRange{85, 90}));
  EXPECT_EQ(out[1].rules, (std::vector<std::size_t>{0, 1}));
  EXPECT_EQ(out[1].expires_unix_ms, 20'000);
  EXPECT_EQ(out[2].ports, (PortRange{91, 100}));
  EXPECT_EQ(out[2].rules, (std::vector<std::size_t>{1}));
  for (std::size_t i = 0; i + 1 < out.size(); ++i) {
    EXPECT_LT(out[i].ports.last, out[i + 1].ports.first);
  }
}

TEST(LearnedMerge, ARepeatedAnswerKeepsAPieceThatLastsLongEnough) {
  auto p = policy_of({"a.test:443/tcp"});
  auto first = learned::merge({}, p, "a.test", {0}, {ip("192.0.2.1")}, 60'000, 0);
  // 10 s later the same answer would last until 70 s: 50 s are left of 60, more than half.
  auto again = learned::merge(first, p, "a.test", {0}, {ip("192.0.2.1")}, 70'000, 10'000);
  EXPECT_EQ(again, first);
  // 40 s later only 20 s are left: the piece is renewed.
  auto renewed = learned::merge(first, p, "a.test", {0}, {ip("192.0.2.1")}, 100'000, 40'000);
  ASSERT_EQ(renewed.size(), 1u);
  EXPECT_EQ(renewed[0].expires_unix_ms, 100'000);
}

TEST(LearnedMerge, ExpiredPiecesGoAndAnswersAreBounded) {
  auto p = policy_of({"a.test:443/tcp"});
  auto first = learned::merge({}, p, "a.test", {0}, {ip("192.0.2.1")}, 1'000, 0);
  auto later = learned::merge(first, p, "a.test", {0}, {ip("192.0.2.2")}, 9'000, 2'000);
  ASSERT_EQ(later.size(), 1u);
  EXPECT_EQ(later[0].address, ip("192.0.2.2"));
  std::vector<IpAddress> many;
  for (std::uint32_t i = 0; i < 100; ++i) many.push_back(IpAddress::v4(0xC6336400u + i));
  many.push_back(many.front());       // duplicates count once
  many.push_back(ip("2001:db8::1"));  // past the bound: an AAAA answer's address counts alike
  auto bounded = learned::merge({}, p, "a.test", {0}, many, 9'000, 0);
  EXPECT_EQ(bounded.size(), kMaxLearnedPerAnswer);
  auto six = learned::merge({}, p, "a.test", {0}, {ip("2001:db8::1")}, 9'000, 0);
  ASSERT_EQ(six.size(), 1u);
  EXPECT_EQ(six[0].address, ip("2001:db8::1"));
}

TEST(LearnedMerge, OnlyAllowRulesGrant) {
  EgressPolicy p = policy_of({"a.test:443/tcp"});
  ASSERT_TRUE(add_egress_entry(p, PolicyAction::kDeny, "evil.test"));
  auto out = learned::merge({}, p, "evil.test", {1, 7}, {ip("192.0.2.1")}, 9'000, 0);
  EXPECT_TRUE(out.empty());
}

TEST(LearnedState, TextRoundTripsAndBadTextIsRefused) {
  auto p = policy_of({"a.test:80-90/tcp", "b.test"});
  learned::State state;
  state.source = ip("10.209.0.2");
  state.created_unix_ms = 1234;
  state.destinations = learned::merge({}, p, "a.test", {0, 1}, {ip("192.0.2.1")}, 9'000, 0);
  auto back = learned::from_text(learned::to_text(state));
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ(back->source, state.source);
  EXPECT_EQ(back->created_unix_ms, 1234);
  EXPECT_EQ(back->destinations, state.destinations);
  EXPECT_FALSE(back->source6);
  // Dual stack: the IPv6 source and AAAA destinations too; the elements' keys come back from it.
  state.source6 = ip("fd00:1:2:5::2");
  state.destinations =
      learned::merge({}, p, "a.test", {0, 1}, {ip("192.0.2.1"), ip("2001:db8::1")}, 9'000, 0);
  back = learned::from_text(learned::to_text(state));
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ(back->source6, state.source6);
  EXPECT_EQ(back->destinations, state.destinations);
  const auto keyed = learned::keyed_as_recorded(NamespaceInfo{}, *back);
  EXPECT_EQ(primary_address(keyed), state.source);
  ASSERT_TRUE(ipv6_address(keyed));
  EXPECT_EQ(ipv6_address(keyed)->address, *state.source6);
  for (const char* bad : {"", "[]", "{\"source\":\"x\"}",
                          "{\"source\":\"10.0.0.1\",\"source6\":\"10.0.0.2\",\"created_unix_ms\":1,"
                          "\"destinations\":[]}",
                          "{\"source\":\"10.0.0.1\",\"created_unix_ms\":1,\"destinations\":[{}]}",
                          "{\"source\":\"10.0.0.1\",\"created_unix_ms\":1,\"destinations\":[{"
                          "\"address\":\"1.2.3.4\",\"protocol\":\"tcp\",\"first\":9,\"last\":8,"
                          "\"expires_unix_ms\":1,\"name\":\"a\",\"rules\":[]}]}"}) {
    auto parsed = learned::from_text(bad);
    ASSERT_FALSE(parsed) << bad;
    EXPECT_EQ(parsed.error().code(), ErrorCode::kCorrupt);
  }
}

}  // namespace
}  // namespace netcell
