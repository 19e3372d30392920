// The egress policy model (netcell/policy.h) and its nftables elements (nft_elements.h): parsing,
// normalisation, refusals, domain patterns, and the cutting of overlapping rules into the disjoint
// ranges the kernel's concatenated-interval sets accept.
#include "netcell/policy.h"

#include <gtest/gtest.h>
#include <netinet/in.h>

#include <random>

#include "linux/nft_elements.h"
#include "netcell/topology.h"

namespace netcell {
namespace {

using kernel::PolicyBox;
using Bytes = std::vector<std::uint8_t>;

EgressRule allow(const std::string& text) {
  auto rule = EgressRule::parse(PolicyAction::kAllow, text);
  EXPECT_TRUE(rule) << text << ": " << rule.error().to_string();
  return rule ? *rule : EgressRule{};
}

TEST(EgressRuleTest, ParsesEveryFormAndNormalises) {
  EXPECT_EQ(allow("10.99.0.5:5432/tcp").to_string(), "10.99.0.5/32:5432/tcp");
  EXPECT_EQ(allow("10.99.0.0/16").to_string(), "10.99.0.0/16/any");
  EXPECT_EQ(allow("192.0.2.0/24/icmp").to_string(), "192.0.2.0/24/icmp");
  EXPECT_EQ(allow("0.0.0.0/0:53/udp").to_string(), "0.0.0.0/0:53/udp");
  EXPECT_EQ(allow("198.51.100.7:8000-8100").to_string(), "198.51.100.7/32:8000-8100/any");
  EXPECT_EQ(allow("198.51.100.7:1-65535/tcp").ports, (PortRange{1, 65535}));
  auto rule = allow("10.0.0.0/8:443/tcp");
  EXPECT_EQ(rule.destination.prefix_len, 8);
  EXPECT_EQ(rule.protocol, PolicyProtocol::kTcp);
  EXPECT_EQ(rule.ports, (PortRange{443, 443}));
  // The text form reads back to the same rule.
  EXPECT_EQ(*EgressRule::parse(PolicyAction::kAllow, rule.to_string()), rule);
  // IPv6: bracketed with ports (and so written back), bare without.
  EXPECT_EQ(allow("[2001:db8::5]:443/tcp").to_string(), "[2001:db8::5/128]:443/tcp");
  EXPECT_EQ(allow("[2001:db8::/32]:8000-8100").to_string(), "[2001:db8::/32]:8000-8100/any");
  EXPECT_EQ(allow("2001:db8::/32").to_string(), "2001:db8::/32/any");
  EXPECT_EQ(allow("2001:db8:1::2/icmp").to_string(), "2001:db8:1::2/128/icmp");
  EXPECT_EQ(allow("::/0").to_string(), "::/0/any");
  for (const char* text : {"[2001:db8::5]:443/tcp", "2001:db8::/32", "[fd00::/8]:1-65535/udp"}) {
    auto six = allow(text);
    EXPECT_EQ(*EgressRule::parse(PolicyAction::kAllow, six.to_string()), six) << text;
  }
}

TEST(EgressRuleTest, RefusesBadRulesWithAReason) {
  struct Case {
    const char* text;
    const char* why;
  };
  for (const Case& c : {Case{"10.0.0.1/8", "host bits set"},
                        Case{"10.0.0.0/8:0", "outside"},
                        Case{"10.0.0.0/8:65536", "outside"},
                        Case{"10.0.0.0/8:90-80", "reversed"},
                        Case{"10.0.0.0/8:80/icmp", "icmp has no ports"},
                        Case{"10.0.0.0/8/sctp", "unknown protocol"},
                        Case{"10.0.0.0/33", "prefix length"},
                        Case{"example.com", ""},
                        Case{"", "no destination"},
                        Case{":80/tcp", "no destination"},
                        Case{"10.0.0.0/8:", "not a port"},
                        Case{"10.0.0.0/8:8a", "not a port"},
                        Case{"10.0.0.0/8:80-", "not a port"},
                        Case{"[10.0.0.1", "no ']'"},
                        Case{"2001:db8::1/32", "host bits set"},
                        Case{"2001:db8:0:1::/48", "did you mean 2001:db8::/48"},
                        Case{"[2001:db8::1]:0", "outside"},
                        Case{"[2001:db8::1]:80/icmp", "icmp has no ports"},
                        Case{"2001:db8::/129", "prefix length"},
                        Case{"[2001:db8::1", "no ']'"}}) {
    auto rule = EgressRule::parse(PolicyAction::kDeny, c.text);
    ASSERT_FALSE(rule) << c.text;
    EXPECT_NE(rule.error().message().find(c.why), std::string::npos)
        << c.text << ": " << rule.error().message();
    EXPECT_EQ(rule.error().message().find('\n'), std::string::npos);
  }
}

TEST(EgressPolicyTest, ValidatesCountDuplicatesAndHandMadeRules) {
  EgressPolicy policy;
  policy.default_action = PolicyAction::kDeny;
  policy.rules = {allow("10.0.0.0/8"), allow("10.0.0.0/8:443/tcp")};
  EXPECT_TRUE(policy.validate());
  policy.rules.push_back(allow("10.0.0.0/8"));
  EXPECT_FALSE(policy.validate());
  policy.rules.pop_back();
  EgressRule hand;  // made in code, host bits set
  hand.destination = IpPrefix{*IpAddress::parse("10.0.0.1"), 8};
  policy.rules.push_back(hand);
  EXPECT_FALSE(policy.validate());
  policy.rules.pop_back();
  EgressRule icmp_port = allow("10.1.0.0/16/icmp");
  icmp_port.ports = {1, 2};
  policy.rules.push_back(icmp_port);
  EXPECT_FALSE(policy.validate());
  policy.rules.clear();
  for (std::size_t i = 0; i <= kMaxEgressRules; ++i) {
    policy.rules.push_back(allow("10.0.0.0/8:" + std::to_string(i + 1) + "/tcp"));
  }
  auto too_many = policy.validate();
  ASSERT_FALSE(too_many);
  EXPECT_NE(too_many.error().message().find("at most 256"), std::string::npos);
}

TEST(DomainPatternTest, ExactAndWildcardNamesWithTheirSemantics) {
  auto exact = DomainPattern::parse("PyPI.org.");
  ASSERT_TRUE(exact);
  EXPECT_EQ(exact->str(), "pypi.org");
  EXPECT_TRUE(exact->matches("pypi.org"));
  EXPECT_TRUE(exact->matches("PYPI.ORG."));
  EXPECT_FALSE(exact->matches("www.pypi.org"));
  auto wild = DomainPattern::parse("*.x.test");
  ASSERT_TRUE(wild);
  for (const char* yes : {"a.x.test", "a.b.x.test", "A.X.TEST."}) {
    EXPECT_TRUE(wild->matches(yes)) << yes;
  }
  for (const char* no : {"x.test", "badx.test", "x.test.evil", ".x.test", "a.x.testing"}) {
    EXPECT_FALSE(wild->matches(no)) << no;
  }
  for (const char* bad : {"", "*", "*.", "*.test", "a.*.test", "-a.test", "a-.test", "a..test",
                          "a b.test", "*x.test"}) {
    EXPECT_FALSE(DomainPattern::parse(bad)) << bad;
  }
  EXPECT_FALSE(DomainPattern::parse(std::string(64, 'a') + ".test"));
  EXPECT_FALSE(DomainPattern::parse(std::string(250, 'a') + ".test"));
}

bool covers(const std::vector<PolicyBox>& boxes, std::uint32_t a, std::uint16_t p) {
  for (const auto& b : boxes) {
    if (a >= b.first_address && a <= b.last_address && p >= b.first_port && p <= b.last_port) {
      return true;
    }
  }
  return false;
}

TEST(PolicyBoxTest, OverlappingBoxesBecomeDisjointWithTheSameUnion) {
  std::mt19937 rng(7);  // result_type is 32 bits wide
  auto next = [&](std::uint32_t n) { return static_cast<std::uint32_t>(rng() % n); };
  for (int round = 0; round < 200; ++round) {
    std::vector<PolicyBox> boxes;
    for (int i = 0; i < 6; ++i) {
      std::uint32_t a = next(40), b = a + next(20);
      std::uint16_t p = static_cast<std::uint16_t>(next(40)),
                    q = static_cast<std::uint16_t>(p + next(20));
      boxes.push_back({a, b, p, q});
    }
    auto out = kernel::disjoint_boxes(boxes);
    for (std::size_t i = 0; i < out.size(); ++i) {
      for (std::size_t j = i + 1; j < out.size(); ++j) {
        bool overlap = out[i].first_address <= out[j].last_address &&
                       out[j].first_address <= out[i].last_address &&
                       out[i].first_port <= out[j].last_port &&
                       out[j].first_port <= out[i].last_port;
        ASSERT_FALSE(overlap) << "round " << round;
      }
    }
    for (std::uint32_t a = 0; a < 62; ++a) {
      for (std::uint16_t p = 0; p < 62; ++p) ASSERT_EQ(covers(boxes, a, p), covers(out, a, p));
    }
  }
}

TEST(PolicyElementsTest, KeysFollowTheSetDeclarations) {
  EgressPolicy policy;
  policy.default_action = PolicyAction::kDeny;
  policy.rules = {allow("198.51.100.0/24:8000-8002/tcp"), allow("203.0.113.2/icmp"),
                  *EgressRule::parse(PolicyAction::kDeny, "198.51.100.7"), allow("192.0.2.1:53")};
  std::vector<kernel::SetElement> out;
  ASSERT_TRUE(kernel::policy_elements(*IpAddress::parse("10.209.0.2"), policy, out));
  std::map<std::string, int> per_set;
  for (const auto& e : out) ++per_set[e.set];
  // "any" with a port is tcp and udp; a deny default: pol_default, no pol_open.
  EXPECT_EQ(per_set, (std::map<std::string, int>{{"pol_ns", 1},
                                                 {"pol_default", 1},
                                                 {"pol_allow_tp_0", 3},
                                                 {"pol_allow_icmp_0", 1},
                                                 {"pol_deny_ip_0", 1}}));
  const auto& tcp = *std::find_if(out.begin(), out.end(), [](const auto& e) {
    return e.set == "pol_allow_tp_0" && e.key[8] == IPPROTO_TCP && e.key[4] == 198;
  });
  EXPECT_EQ(tcp.key, (Bytes{10, 209, 0, 2, 198, 51, 100, 0, 6, 0, 0, 0, 0x1f, 0x40, 0, 0}));
  EXPECT_EQ(tcp.key_end, (Bytes{10, 209, 0, 2, 198, 51, 100, 255, 6, 0, 0, 0, 0x1f, 0x42, 0, 0}));
  const auto& deny =
      *std::find_if(out.begin(), out.end(), [](const auto& e) { return e.set == "pol_deny_ip_0"; });
  EXPECT_EQ(deny.key, (Bytes{10, 209, 0, 2, 198, 51, 100, 7}));
  EXPECT_EQ(deny.key_end, deny.key);
  policy.default_action = PolicyAction::kAllow;
  out.clear();
  ASSERT_TRUE(kernel::policy_elements(*IpAddress::parse("10.209.0.2"), policy, out));
  EXPECT_EQ(
      std::count_if(out.begin(), out.end(), [](const auto& e) { return e.set == "pol_open"; }), 1);
}

TEST(PolicyElementsTest, ANamespaceUsesTheShardItsAddressSelects) {
  EgressPolicy policy;
  policy.default_action = PolicyAction::kDeny;
  policy.rules = {allow("198.51.100.0/24:443/tcp"), allow("203.0.113.2/icmp")};
  std::map<unsigned, int> used;
  // 256 consecutive private /30 blocks: every shard is used, each by the same number of them.
  for (std::uint32_t block = 0; block < 256; ++block) {
    const auto source = IpAddress::v4(0x0AD10000u + block * 4 + 2);
    const unsigned k = kernel::policy_shard(source);
    ASSERT_LT(k, kernel::kPolicyShards);
    ++used[k];
    // The chain's map key is the address under the mask (firewall.cc): the same shard.
    const auto masked = IpAddress::v4(source.v4_host_order() & 0xfcu);
    EXPECT_EQ(masked.to_string(), kernel::policy_shard_key(k));
    std::vector<kernel::SetElement> out;
    ASSERT_TRUE(kernel::policy_elements(source, policy, out));
    for (const auto& e : out) {
      if (e.set == "pol_ns" || e.set == "pol_default") continue;
      EXPECT_TRUE(e.set.ends_with(std::string(1, '_').append(std::to_string(k))))
          << e.set << " for " << source.to_string();
    }
    LearnedDestination learned_one;
    learned_one.address = *IpAddress::parse("198.51.100.9");
    learned_one.protocol = PolicyProtocol::kTcp;
    learned_one.ports = {443, 443};
    learned_one.expires_unix_ms = 5000;
    const auto learned = kernel::learned_elements(source, {learned_one}, 0);
    ASSERT_EQ(learned.size(), 1u);
    EXPECT_EQ(learned[0].set, "pol_learned_tp_" + std::to_string(k));
  }
  EXPECT_EQ(used.size(), kernel::kPolicyShards);
  for (const auto& [k, n] : used) EXPECT_EQ(n, 4) << "shard " << k;
}

TEST(PolicyElementsTest, EveryPieceKnowsItsRuleAndTheDefaultHasOneElement) {
  EgressPolicy policy;
  policy.default_action = PolicyAction::kDeny;
  // The second rule overlaps the first: its pieces exclude what the first covers.
  policy.rules = {allow("198.51.100.5:80/tcp"), allow("198.51.100.0/24/tcp")};
  std::vector<kernel::SetElement> out;
  std::vector<int> rule_of;
  ASSERT_TRUE(kernel::policy_elements(*IpAddress::parse("10.209.0.2"), policy, out, &rule_of));
  ASSERT_EQ(rule_of.size(), out.size());
  std::map<int, int> pieces;
  for (std::size_t i = 0; i < out.size(); ++i) {
    ++pieces[rule_of[i]];
    if (rule_of[i] == kernel::kDefaultElement) {
      EXPECT_EQ(out[i].set, "pol_default");
    }
    if (rule_of[i] == kernel::kNoRule) {
      EXPECT_EQ(out[i].set, "pol_ns");
    }
  }
  EXPECT_EQ(pieces[0], 1);
  EXPECT_EQ(pieces[1], 4);  // the /24 minus one address and port: four boxes
  EXPECT_EQ(pieces[kernel::kDefaultElement], 1);
  EXPECT_EQ(pieces[kernel::kNoRule], 1);
}

}  // namespace
}  // namespace netcell

namespace netcell {
namespace {

TEST(DomainRules, ParsedFromAllowEntriesThatNameADomain) {
  EgressPolicy p;
  ASSERT_TRUE(add_egress_entry(p, PolicyAction::kAllow, "PyPI.org.:443/tcp"));
  ASSERT_TRUE(add_egress_entry(p, PolicyAction::kAllow, "*.example.com"));
  ASSERT_TRUE(add_egress_entry(p, PolicyAction::kAllow, "10.0.0.0/8:22/tcp"));
  ASSERT_EQ(p.domains.size(), 2u);
  ASSERT_EQ(p.rules.size(), 1u);
  EXPECT_EQ(p.domains[0].to_string(), "pypi.org:443/tcp");
  EXPECT_EQ(p.domains[1].to_string(), "*.example.com/any");
  EXPECT_TRUE(p.validate());
  for (const char* bad : {"*.com", "a..b", "-a.test", "a.test:0", "a.test:70000", "a.test:9-8",
                          "a.test/icmp:80", "*x.test", "a.*.test", "a.test/sctp"}) {
    EgressPolicy q;
    auto added = add_egress_entry(q, PolicyAction::kAllow, bad);
    EXPECT_FALSE(added) << bad;
    if (!added) {
      EXPECT_EQ(added.error().code(), ErrorCode::kInvalidArgument) << bad;
    }
  }
  EgressPolicy denied;
  EXPECT_FALSE(add_egress_entry(denied, PolicyAction::kDeny, "evil.test:443/tcp"))
      << "a denied name takes no ports";
  EXPECT_TRUE(add_egress_entry(denied, PolicyAction::kDeny, "evil.test"));
}

TEST(DomainRules, NamesAllowedDenyBeatsAllowAndTheDefaultDecidesTheRest) {
  EgressPolicy p;
  p.default_action = PolicyAction::kDeny;
  ASSERT_TRUE(add_egress_entry(p, PolicyAction::kAllow, "*.x.test:80/tcp"));
  ASSERT_TRUE(add_egress_entry(p, PolicyAction::kAllow, "a.x.test:443/tcp"));
  ASSERT_TRUE(add_egress_entry(p, PolicyAction::kDeny, "bad.x.test"));
  EXPECT_TRUE(p.name_allowed("a.x.test"));
  EXPECT_TRUE(p.name_allowed("A.B.X.TEST."));
  EXPECT_FALSE(p.name_allowed("x.test"));
  EXPECT_FALSE(p.name_allowed("badx.test"));
  EXPECT_FALSE(p.name_allowed("x.test.evil"));
  EXPECT_FALSE(p.name_allowed("bad.x.test"));
  EXPECT_EQ(p.allowing_domain_rules("a.x.test"), (std::vector<std::size_t>{0, 1}));
  EXPECT_TRUE(p.allowing_domain_rules("bad.x.test").empty());
  p.default_action = PolicyAction::kAllow;
  EXPECT_TRUE(p.name_allowed("anything.test"));
  EXPECT_TRUE(p.allowing_domain_rules("anything.test").empty()) << "allowed, nothing learned";
  EXPECT_FALSE(p.name_allowed("bad.x.test"));
}

TEST(DomainRules, LearnSecondsAndBounds) {
  EgressPolicy p;
  EXPECT_EQ(p.learn_seconds(0), kDefaultLearnMinTtl + kDefaultLearnGrace);
  EXPECT_EQ(p.learn_seconds(3600), 3600 + kDefaultLearnGrace);
  EXPECT_EQ(p.learn_seconds(UINT32_MAX), kMaxLearnSeconds);
  p.learn_min_ttl = kMaxLearnSeconds + 1;
  EXPECT_FALSE(p.validate());
  EXPECT_FALSE(parse_seconds("-1"));
  EXPECT_FALSE(parse_seconds("1x"));
  EXPECT_EQ(*parse_seconds("0"), 0u);
  EXPECT_EQ(*parse_dns_refusal("nxdomain"), DnsRefusal::kNxDomain);
  EXPECT_FALSE(parse_dns_refusal("drop"));
}

TEST(DomainRules, PolicyFiles) {
  auto p = parse_policy_file(
      "default: deny\nallow: ['pypi.org:443/tcp', '10.0.0.5:5432/tcp']\ndeny: [evil.test]\n"
      "dns: {refuse: nxdomain, min_ttl: 5, grace: 1}\n",
      "p.yaml");
  ASSERT_TRUE(p) << p.error().to_string();
  EXPECT_EQ(p->default_action, PolicyAction::kDeny);
  EXPECT_EQ(p->domains.size(), 2u);
  EXPECT_EQ(p->rules.size(), 1u);
  EXPECT_EQ(p->refuse_with, DnsRefusal::kNxDomain);
  EXPECT_EQ(p->learn_min_ttl, 5u);
  EXPECT_EQ(p->learn_grace, 1u);
  for (const char* bad :
       {"[]", "allow: [x..y]", "colour: red", "dns: {refuse: drop}", "dns: {min_ttl: -3}", "{"}) {
    auto parsed = parse_policy_file(bad, "p.yaml");
    EXPECT_FALSE(parsed) << bad;
    if (!parsed) {
      EXPECT_EQ(parsed.error().message().rfind("p.yaml", 0), 0u) << parsed.error().message();
    }
  }
}

// The IPv6 twin of KeysFollowTheSetDeclarations: a dual-stack namespace's IPv6 rules go to the
// ip6 table's pol6_ sets, keyed by its IPv6 address (16 + 16 + 4 + 4 bytes for _tp), its IPv4 ones
// to the ip table's; both families get the namespace's mark and the default's element.
TEST(PolicyElementsTest, Ipv6RulesGoToTheIp6TablesSetsKeyedByTheIpv6Address) {
  EgressPolicy policy;
  policy.default_action = PolicyAction::kDeny;
  policy.rules = {allow("[2001:db8:5::/120]:8000-8002/tcp"), allow("2001:db8:1::2/icmp"),
                  *EgressRule::parse(PolicyAction::kDeny, "2001:db8:5::7"),
                  allow("198.51.100.0/24:443/tcp")};
  const auto v4 = *IpAddress::parse("10.209.0.2");
  const auto v6 = *IpAddress::parse("fd00:1:2:5::2");  // the /64 of block 5: shard 5
  ASSERT_EQ(kernel::policy_shard6(v6), 5u);
  std::vector<kernel::SetElement> out;
  std::vector<int> rule_of;
  ASSERT_TRUE(kernel::policy_elements({v4, v6}, policy, out, &rule_of));
  std::map<std::string, int> per_set;
  for (const auto& e : out) ++per_set[e.set];
  EXPECT_EQ(per_set, (std::map<std::string, int>{{"pol_ns", 1},
                                                 {"pol_default", 1},
                                                 {"pol_allow_tp_0", 1},
                                                 {"pol6_ns", 1},
                                                 {"pol6_default", 1},
                                                 {"pol6_allow_tp_5", 1},
                                                 {"pol6_allow_icmp_5", 1},
                                                 {"pol6_deny_ip_5", 1}}));
  for (const auto& e : out) {
    EXPECT_EQ(kernel::in_ip6_table(e.set), e.set.rfind("pol6_", 0) == 0) << e.set;
  }
  const auto& tcp = *std::find_if(out.begin(), out.end(),
                                  [](const auto& e) { return e.set == "pol6_allow_tp_5"; });
  Bytes key = kernel::nft_encode::ipv6(v6);
  const Bytes first{0x20, 0x01, 0x0d, 0xb8, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  key.insert(key.end(), first.begin(), first.end());
  Bytes key_end = key;
  key_end[31] = 0xff;  // the /120's last address
  for (Bytes* k : {&key, &key_end}) k->insert(k->end(), {6, 0, 0, 0, 0x1f, 0x40, 0, 0});
  key_end[37] = 0x42;  // port 8002
  EXPECT_EQ(tcp.key, key);
  EXPECT_EQ(tcp.key_end, key_end);
  const auto& deny = *std::find_if(out.begin(), out.end(),
                                   [](const auto& e) { return e.set == "pol6_deny_ip_5"; });
  ASSERT_EQ(deny.key.size(), 32u);
  EXPECT_EQ(deny.key, deny.key_end);
  EXPECT_EQ(deny.key[31], 7);
  // Both defaults count as the default.
  int defaults = 0;
  for (std::size_t i = 0; i < out.size(); ++i) defaults += rule_of[i] == kernel::kDefaultElement;
  EXPECT_EQ(defaults, 2);
  // An IPv4-only namespace: its IPv6 rules add nothing (it has no IPv6 to filter).
  out.clear();
  ASSERT_TRUE(kernel::policy_elements(v4, policy, out));
  for (const auto& e : out) EXPECT_EQ(e.set.rfind("pol6_", 0), std::string::npos) << e.set;
  EXPECT_EQ(out.size(), 3u);
}

TEST(PolicyElementsTest, Ipv6ShardsFollowTheSlash64AndLearnedAaaaGoesToThem) {
  std::map<unsigned, int> used;
  auto base = IpAddress::parse("fd12:3456:789a::")->bytes();
  for (unsigned block = 0; block < 256; ++block) {
    auto bytes = base;
    bytes[6] = static_cast<std::uint8_t>(block >> 8);
    bytes[7] = static_cast<std::uint8_t>(block & 0xff);
    bytes[15] = 2;
    const auto source = IpAddress::v6(bytes);
    const unsigned k = kernel::policy_shard6(source);
    ASSERT_LT(k, kernel::kPolicyShards);
    ++used[k];
    // The chain's map key is the address under kPolicyShardMask6 (0:0:0:3f::).
    std::array<std::uint8_t, 16> masked{};
    masked[7] = static_cast<std::uint8_t>(bytes[7] & 0x3f);
    EXPECT_EQ(IpAddress::v6(masked).to_string(), kernel::policy_shard_key6(k));
    LearnedDestination tcp, any;
    tcp.address = *IpAddress::parse("2001:db8:5::10");
    tcp.protocol = PolicyProtocol::kTcp;
    tcp.ports = {443, 443};
    tcp.expires_unix_ms = 5000;
    any = tcp;
    any.protocol = PolicyProtocol::kAny;
    LearnedDestination four = tcp;
    four.address = *IpAddress::parse("198.51.100.9");
    const auto source4 = IpAddress::v4(0x0AD10000u + block * 4 + 2);
    const auto learned = kernel::learned_elements({source4, source}, {tcp, any, four}, 0);
    ASSERT_EQ(learned.size(), 3u);
    EXPECT_EQ(learned[0].set, "pol6_learned_tp_" + std::to_string(k));
    EXPECT_EQ(learned[0].key.size(), 40u);
    EXPECT_EQ(learned[1].set, "pol6_learned_ip");
    EXPECT_EQ(learned[1].key.size(), 32u);
    EXPECT_EQ(learned[2].set, "pol_learned_tp_" + std::to_string(kernel::policy_shard(source4)));
    EXPECT_EQ(learned[0].timeout_ms, 5000u);
    // Without an IPv6 source the AAAA destinations are left out.
    EXPECT_EQ(kernel::learned_elements(source4, {tcp, any, four}, 0).size(), 1u);
  }
  EXPECT_EQ(used.size(), kernel::kPolicyShards);
  for (const auto& [k, n] : used) EXPECT_EQ(n, 4) << "shard " << k;
}

}  // namespace
}  // namespace netcell
