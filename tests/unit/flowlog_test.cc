// The denied-flow log without privileges: which rule a policy names for a flow (checked against
// the kernel's own elements, emulated), the parser of logged packets (crafted and hostile bytes),
// the JSON lines, the files (rotation, concurrent writers, removal) and the firewall's refuse path
// as the table script writes it.
#include "netcell/flowlog.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <random>
#include <set>
#include <thread>

#include "linux/firewall.h"
#include "linux/nflog.h"
#include "linux/nft_elements.h"
#include "support/process.h"

namespace netcell {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<std::uint8_t>;

EgressRule rule(PolicyAction action, const std::string& text) {
  auto parsed = EgressRule::parse(action, text);
  EXPECT_TRUE(parsed) << text;
  return parsed ? *parsed : EgressRule{};
}

IpAddress ip(const std::string& text) {
  return *IpAddress::parse(text);
}

EgressPolicy sample_policy() {
  EgressPolicy p;
  p.default_action = PolicyAction::kDeny;
  p.rules = {rule(PolicyAction::kAllow, "192.0.2.0/24:80/tcp"),   // 0
             rule(PolicyAction::kAllow, "198.51.100.0/24"),       // 1
             rule(PolicyAction::kDeny, "198.51.100.7:22/tcp"),    // 2
             rule(PolicyAction::kDeny, "198.51.100.0/24:20-25"),  // 3
             rule(PolicyAction::kAllow, "203.0.113.9/icmp"),      // 4
             rule(PolicyAction::kDeny, "203.0.113.0/24/udp")};    // 5
  return p;
}

TEST(EgressDecideTest, DenyBeatsAllowAndTheFirstMatchingRuleIsNamed) {
  const EgressPolicy p = sample_policy();
  using D = EgressDecision;
  const auto deny = PolicyAction::kDeny, allow = PolicyAction::kAllow;
  EXPECT_EQ(p.decide(ip("192.0.2.5"), IPPROTO_TCP, 80), (D{allow, 0}));
  EXPECT_EQ(p.decide(ip("192.0.2.5"), IPPROTO_TCP, 81), (D{deny, std::nullopt}));
  EXPECT_EQ(p.decide(ip("192.0.2.5"), IPPROTO_UDP, 80), (D{deny, std::nullopt}));
  // 198.51.100.7:22/tcp matches allow 1 and deny 2 and 3: the first deny names it.
  EXPECT_EQ(p.decide(ip("198.51.100.7"), IPPROTO_TCP, 22), (D{deny, 2}));
  EXPECT_EQ(p.decide(ip("198.51.100.8"), IPPROTO_TCP, 22), (D{deny, 3}));
  EXPECT_EQ(p.decide(ip("198.51.100.8"), IPPROTO_UDP, 21), (D{deny, 3}));  // any = tcp and udp
  EXPECT_EQ(p.decide(ip("198.51.100.8"), IPPROTO_UDP, 26), (D{allow, 1}));
  EXPECT_EQ(p.decide(ip("198.51.100.8"), IPPROTO_ICMP, 0), (D{allow, 1}));  // any, no ports
  EXPECT_EQ(p.decide(ip("198.51.100.8"), 47, 0), (D{allow, 1}));            // GRE too
  EXPECT_EQ(p.decide(ip("203.0.113.9"), IPPROTO_ICMP, 0), (D{allow, 4}));
  EXPECT_EQ(p.decide(ip("203.0.113.9"), IPPROTO_TCP, 443), (D{deny, std::nullopt}));
  EXPECT_EQ(p.decide(ip("203.0.113.9"), IPPROTO_UDP, 53), (D{deny, 5}));
  EXPECT_EQ(p.decide(ip("2001:db8::1"), IPPROTO_TCP, 80), (D{deny, std::nullopt}));
  EgressPolicy open;
  EXPECT_EQ(open.decide(ip("192.0.2.1"), IPPROTO_TCP, 1), (D{allow, std::nullopt}));
  open.rules = {rule(PolicyAction::kDeny, "0.0.0.0/0:443")};
  EXPECT_EQ(open.decide(ip("192.0.2.1"), IPPROTO_TCP, 443), (D{deny, 0}));
  EXPECT_EQ(open.decide(ip("192.0.2.1"), IPPROTO_ICMP, 0), (D{allow, std::nullopt}));
}

// The kernel's view, from the elements netcell gives it: the egress chain's lookups in the order
// it makes them (deny sets, then allow sets, then the default), over per-field ranges.
PolicyAction kernel_decides(const std::vector<kernel::SetElement>& elements,
                            const IpAddress& source, const IpAddress& to, std::uint8_t protocol,
                            std::uint16_t port) {
  using namespace kernel::nft_encode;
  auto key_tp = concat({ipv4(source), ipv4(to), proto(protocol), service(port)});
  auto key_ip = concat({ipv4(source), ipv4(to)});
  auto in = [](const kernel::SetElement& e, const Bytes& key) {
    // Every field is 4 bytes (padded); compare field by field, bytes big-endian.
    for (std::size_t at = 0; at < key.size(); at += 4) {
      Bytes k(key.begin() + at, key.begin() + at + 4);
      Bytes lo(e.key.begin() + at, e.key.begin() + at + 4);
      Bytes hi = e.key_end.empty() ? lo : Bytes(e.key_end.begin() + at, e.key_end.begin() + at + 4);
      if (k < lo || k > hi) return false;
    }
    return true;
  };
  auto hit = [&](const std::string& set) {
    for (const auto& e : elements) {
      // The interval sets are sharded (BASE_K, nft_elements.h): one namespace uses one shard.
      if (e.set != set && !e.set.starts_with(set + "_")) continue;
      if (set.ends_with("_tp") ? in(e, key_tp) : in(e, key_ip)) return true;
    }
    return false;
  };
  const bool transport = protocol == IPPROTO_TCP || protocol == IPPROTO_UDP;
  const bool icmp = protocol == IPPROTO_ICMP;
  if ((transport && hit("pol_deny_tp")) || hit("pol_deny_ip") || (icmp && hit("pol_deny_icmp"))) {
    return PolicyAction::kDeny;
  }
  if ((transport && hit("pol_allow_tp")) || hit("pol_allow_ip") ||
      (icmp && hit("pol_allow_icmp"))) {
    return PolicyAction::kAllow;
  }
  for (const auto& e : elements) {
    if (e.set == "pol_open") return PolicyAction::kAllow;
  }
  return PolicyAction::kDeny;
}

TEST(EgressDecideTest, AgreesWithTheKernelsElementsOnRandomPolicies) {
  std::mt19937 rng(20250501);
  const IpAddress source = ip("10.209.0.2");
  const std::uint8_t protocols[] = {IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP, 47};
  const char* protocol_names[] = {"tcp", "udp", "icmp", "any"};
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  int denied_by_rule = 0, denied_by_default = 0, allowed = 0;
  for (int round = 0; round < 200; ++round) {
    EgressPolicy p;
    p.default_action = pick(2) != 0 ? PolicyAction::kDeny : PolicyAction::kAllow;
    for (int n = pick(6) + 1; n > 0; --n) {
      const int len = 24 + pick(9);
      const std::uint32_t base = (192u << 24 | 0u << 16 | 2u << 8) | (rng() & 0xFF);
      const std::uint32_t net = len == 32 ? base : base & ~((1u << (32 - len)) - 1);
      std::string text = IpAddress::v4(net).to_string() + '/' + std::to_string(len);
      const std::string proto = protocol_names[pick(4)];
      if (proto != "icmp" && pick(2) != 0) {
        const int first = 20 + pick(10);
        text += ':' + std::to_string(first) + '-' + std::to_string(first + pick(5));
      }
      text += '/' + proto;
      auto r = EgressRule::parse(pick(2) != 0 ? PolicyAction::kDeny : PolicyAction::kAllow, text);
      ASSERT_TRUE(r) << text;
      if (std::find(p.rules.begin(), p.rules.end(), *r) == p.rules.end()) p.rules.push_back(*r);
    }
    std::vector<kernel::SetElement> elements;
    ASSERT_TRUE(kernel::policy_elements(source, p, elements));
    for (int flow = 0; flow < 50; ++flow) {
      const IpAddress to = IpAddress::v4(192u << 24 | 2u << 8 | (rng() & 0xFF));
      const std::uint8_t protocol = protocols[pick(4)];
      const bool ports = protocol == IPPROTO_TCP || protocol == IPPROTO_UDP;
      const auto port = static_cast<std::uint16_t>(ports ? 18 + pick(20) : 0);
      const EgressDecision d = p.decide(to, protocol, port);
      ASSERT_EQ(d.action, kernel_decides(elements, source, to, protocol, port))
          << to.to_string() << " proto " << int(protocol) << " port " << port;
      if (d.rule) {
        ASSERT_LT(*d.rule, p.rules.size());
        EXPECT_EQ(p.rules[*d.rule].action, d.action);
        EXPECT_TRUE(p.rules[*d.rule].matches(to, protocol, port));
        // The named rule is the first of its action that matches.
        for (std::size_t i = 0; i < *d.rule; ++i) {
          EXPECT_FALSE(p.rules[i].action == d.action && p.rules[i].matches(to, protocol, port));
        }
      } else {
        EXPECT_EQ(d.action, p.default_action);
      }
      (d.action == PolicyAction::kAllow ? allowed : d.rule ? denied_by_rule : denied_by_default)++;
    }
  }
  // The random policies exercised every outcome.
  EXPECT_GT(allowed, 100);
  EXPECT_GT(denied_by_rule, 100);
  EXPECT_GT(denied_by_default, 100);
}

// An IPv4 packet: header of `ihl` words from 10.209.0.2 to 192.0.2.7, then `transport`.
Bytes packet(std::uint8_t protocol, const Bytes& transport, int ihl = 5) {
  Bytes p(static_cast<std::size_t>(ihl) * 4, 0);
  p[0] = static_cast<std::uint8_t>(0x40 | ihl);
  const std::size_t total = p.size() + transport.size();
  p[2] = static_cast<std::uint8_t>(total >> 8);
  p[3] = static_cast<std::uint8_t>(total);
  p[8] = 64;
  p[9] = protocol;
  const std::uint8_t addresses[] = {10, 209, 0, 2, 192, 0, 2, 7};
  std::copy(std::begin(addresses), std::end(addresses), p.begin() + 12);
  p.insert(p.end(), transport.begin(), transport.end());
  return p;
}

const Bytes kTcp = {0xC3, 0x50, 0x00, 0x16, 0,    0,    0, 1, 0, 0,
                    0,    0,    0x50, 0x02, 0xFF, 0xFF, 0, 0, 0, 0};  // 50000 -> 22, SYN
const Bytes kUdp = {0x9C, 0x40, 0x00, 0x35, 0x00, 0x10, 0, 0};        // 40000 -> 53
const Bytes kIcmp = {8, 0, 0xF7, 0xFF, 0, 1, 0, 1};                   // echo request

// An IPv6 packet from fd00:1:2:5::2 to 2001:db8:5::7 whose next header is `next`, then `rest`.
Bytes packet6(std::uint8_t next, const Bytes& rest) {
  Bytes p(40, 0);
  p[0] = 0x60;
  p[4] = static_cast<std::uint8_t>(rest.size() >> 8);
  p[5] = static_cast<std::uint8_t>(rest.size());
  p[6] = next;
  p[7] = 64;
  const auto from = ip("fd00:1:2:5::2").bytes(), to = ip("2001:db8:5::7").bytes();
  std::copy(from.begin(), from.end(), p.begin() + 8);
  std::copy(to.begin(), to.end(), p.begin() + 24);
  p.insert(p.end(), rest.begin(), rest.end());
  return p;
}

TEST(NflogParseTest, ReadsIpv6WithItsExtensionHeaders) {
  auto tcp = kernel::parse_logged_packet(packet6(IPPROTO_TCP, kTcp), kernel::kLogPrefixRule);
  ASSERT_TRUE(tcp) << tcp.error().to_string();
  EXPECT_EQ(tcp->ip_protocol, IPPROTO_TCP);
  EXPECT_EQ(tcp->source, ip("fd00:1:2:5::2"));
  EXPECT_EQ(tcp->destination, ip("2001:db8:5::7"));
  EXPECT_EQ(tcp->port, 22);
  EXPECT_EQ(tcp->source_port, 50000);
  const Bytes echo6 = {128, 0, 0, 0, 0, 1, 0, 1};
  auto icmp =
      kernel::parse_logged_packet(packet6(IPPROTO_ICMPV6, echo6), kernel::kLogPrefixDefault);
  ASSERT_TRUE(icmp);
  EXPECT_EQ(icmp->ip_protocol, IPPROTO_ICMPV6);
  EXPECT_EQ(icmp->icmp_type, 128);
  EXPECT_EQ(icmp->by, DeniedBy::kDefault);
  // Hop-by-hop options (8 bytes), then UDP: the ports are found after them.
  Bytes hop = {IPPROTO_UDP, 0, 1, 4, 0, 0, 0, 0};
  hop.insert(hop.end(), kUdp.begin(), kUdp.end());
  auto udp = kernel::parse_logged_packet(packet6(IPPROTO_HOPOPTS, hop), kernel::kLogPrefixDns);
  ASSERT_TRUE(udp) << udp.error().to_string();
  EXPECT_EQ(udp->ip_protocol, IPPROTO_UDP);
  EXPECT_EQ(udp->port, 53);
  // A later fragment: the protocol, no ports.
  Bytes later = {IPPROTO_TCP, 0, 0x05, 0x00, 0, 0, 0, 1};  // offset 160
  later.insert(later.end(), kTcp.begin(), kTcp.end());
  auto frag = kernel::parse_logged_packet(packet6(IPPROTO_FRAGMENT, later), kernel::kLogPrefixRule);
  ASSERT_TRUE(frag);
  EXPECT_EQ(frag->ip_protocol, IPPROTO_TCP);
  EXPECT_EQ(frag->port, 0);
  // As a log line: protocol icmpv6 with its type and code.
  DeniedFlow f = *icmp;
  f.ns = "p1";
  auto line = nlohmann::json::parse(to_json_line(f));
  EXPECT_EQ(line["protocol"], "icmpv6");
  EXPECT_EQ(line["icmp_type"], 128);
  EXPECT_EQ(line["source"], "fd00:1:2:5::2");
  auto back = parse_flow_log_line(to_json_line(f));
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ(std::get<DeniedFlow>(*back).icmp_type, 128);
  EXPECT_NE(to_text(*back).find("icmpv6 fd00:1:2:5::2 -> 2001:db8:5::7 echo-request"),
            std::string::npos)
      << to_text(*back);
}

TEST(NflogParseTest, ReadsTcpUdpIcmpAndThePrefix) {
  auto tcp = kernel::parse_logged_packet(packet(IPPROTO_TCP, kTcp), kernel::kLogPrefixRule);
  ASSERT_TRUE(tcp) << tcp.error().to_string();
  EXPECT_EQ(tcp->ip_protocol, IPPROTO_TCP);
  EXPECT_EQ(tcp->source, ip("10.209.0.2"));
  EXPECT_EQ(tcp->destination, ip("192.0.2.7"));
  EXPECT_EQ(tcp->port, 22);
  EXPECT_EQ(tcp->source_port, 50000);
  EXPECT_EQ(tcp->by, DeniedBy::kRule);
  auto udp = kernel::parse_logged_packet(packet(IPPROTO_UDP, kUdp), kernel::kLogPrefixDns);
  ASSERT_TRUE(udp);
  EXPECT_EQ(udp->port, 53);
  EXPECT_EQ(udp->by, DeniedBy::kDns);
  auto icmp = kernel::parse_logged_packet(packet(IPPROTO_ICMP, kIcmp), kernel::kLogPrefixDefault);
  ASSERT_TRUE(icmp);
  EXPECT_EQ(icmp->icmp_type, 8);
  EXPECT_EQ(icmp->port, 0);
  EXPECT_EQ(icmp->by, DeniedBy::kDefault);
  // Options (IHL 7): the ports are found after them.
  auto options = kernel::parse_logged_packet(packet(IPPROTO_TCP, kTcp, 7), kernel::kLogPrefixRule);
  ASSERT_TRUE(options);
  EXPECT_EQ(options->port, 22);
  // A protocol without ports: addresses only.
  auto gre = kernel::parse_logged_packet(packet(47, {0, 0, 0x08, 0}), kernel::kLogPrefixDefault);
  ASSERT_TRUE(gre);
  EXPECT_EQ(gre->ip_protocol, 47);
  EXPECT_EQ(gre->port, 0);
  // A copy cut at 128 bytes of a longer packet still has its header and ports.
  Bytes big = packet(IPPROTO_UDP, Bytes(1400, 0xAB));
  big[22] = 0x01, big[23] = 0xBB;  // dport 443
  big.resize(kernel::kLogCopyBytes);
  auto cut = kernel::parse_logged_packet(big, kernel::kLogPrefixDefault);
  ASSERT_TRUE(cut);
  EXPECT_EQ(cut->port, 443);
}

TEST(NflogParseTest, RefusesHostilePacketsWithoutReadingPastThem) {
  auto refused = [](const Bytes& bytes, std::string_view prefix, const char* why) {
    // A copy of exactly its size on the heap: ASan sees any read past it.
    auto exact = std::make_unique<std::uint8_t[]>(bytes.size() + 1);
    std::copy(bytes.begin(), bytes.end(), exact.get());
    auto r = kernel::parse_logged_packet({exact.get(), bytes.size()}, prefix);
    ASSERT_FALSE(r) << why;
    EXPECT_NE(r.error().message().find(why), std::string::npos) << r.error().message();
  };
  const Bytes tcp = packet(IPPROTO_TCP, kTcp);
  refused(tcp, "someone else's", "prefixes");
  refused(tcp, "", "prefixes");
  refused({}, kernel::kLogPrefixRule, "shorter than");
  refused(Bytes(tcp.begin(), tcp.begin() + 19), kernel::kLogPrefixRule, "shorter than");
  Bytes v5 = tcp;
  v5[0] = 0x55;
  refused(v5, kernel::kLogPrefixRule, "neither IPv4 nor IPv6");
  // IPv6: a fixed header cut short, an extension header running past the packet.
  const Bytes six = packet6(IPPROTO_TCP, kTcp);
  refused(Bytes(six.begin(), six.begin() + 39), kernel::kLogPrefixRule, "IPv6 header");
  Bytes hop = packet6(IPPROTO_HOPOPTS, {IPPROTO_TCP, 200, 0, 0, 0, 0, 0, 0});  // 1608 bytes long
  refused(hop, kernel::kLogPrefixRule, "IPv6 extension header cut short");
  refused(packet6(IPPROTO_TCP, {1, 2, 3}), kernel::kLogPrefixRule, "transport header cut short");
  Bytes small_ihl = tcp;
  small_ihl[0] = 0x44;
  refused(small_ihl, kernel::kLogPrefixRule, "IHL below 5");
  Bytes big_ihl = tcp;
  big_ihl[0] = 0x4F;  // 60 bytes of header, 40 there
  refused(big_ihl, kernel::kLogPrefixRule, "cut short");
  Bytes short_total = tcp;
  short_total[2] = 0, short_total[3] = 12;
  refused(short_total, kernel::kLogPrefixRule, "total length");
  // The total length says the transport header is not there, whatever bytes follow.
  Bytes lying = tcp;
  lying[2] = 0, lying[3] = 22;
  refused(lying, kernel::kLogPrefixRule, "transport header cut short");
  refused(packet(IPPROTO_UDP, {0x9C, 0x40, 0x00}), kernel::kLogPrefixRule, "cut short");
  refused(packet(IPPROTO_ICMP, {8}), kernel::kLogPrefixRule, "ICMP header cut short");
  // Every cut of a valid packet parses or is refused; never more.
  for (std::size_t n = 0; n <= tcp.size(); ++n) {
    auto exact = std::make_unique<std::uint8_t[]>(n + 1);
    std::copy(tcp.begin(), tcp.begin() + static_cast<std::ptrdiff_t>(n), exact.get());
    auto r = kernel::parse_logged_packet({exact.get(), n}, kernel::kLogPrefixRule);
    EXPECT_EQ(r.has_value(), n >= 24) << n;
  }
  // A later fragment: addresses, no ports.
  Bytes fragment = tcp;
  fragment[6] = 0x00, fragment[7] = 0x10;
  auto f = kernel::parse_logged_packet(fragment, kernel::kLogPrefixRule);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->port, 0);
}

DeniedFlow sample_flow() {
  DeniedFlow f;
  f.time_unix_ms = 1746100800123;  // 2025-05-01T12:00:00.123Z
  f.ns = "web";
  f.ip_protocol = IPPROTO_TCP;
  f.source = ip("10.209.0.2");
  f.destination = ip("198.51.100.7");
  f.port = 22;
  f.source_port = 50000;
  f.by = DeniedBy::kRule;
  f.rule_index = 2;
  f.rule = "deny 198.51.100.7/32:22/tcp";
  f.name = "db.example";
  return f;
}

TEST(FlowLogLineTest, RoundTripsAndReadsAsDocumented) {
  const DeniedFlow f = sample_flow();
  const std::string line = to_json_line(f);
  EXPECT_EQ(line,
            R"({"by":"rule","destination":"198.51.100.7","kind":"flow","name":"db.example",)"
            R"("namespace":"web","port":22,"protocol":"tcp","rule":"deny 198.51.100.7/32:22/tcp",)"
            R"("rule_index":2,"source":"10.209.0.2","source_port":50000,)"
            R"("time":"2025-05-01T12:00:00.123Z"})");
  auto back = parse_flow_log_line(line);
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ(std::get<DeniedFlow>(*back), f);
  EXPECT_EQ(to_text(f),
            "2025-05-01T12:00:00.123Z tcp 10.209.0.2 -> 198.51.100.7:22 (db.example) refused by "
            "deny 198.51.100.7/32:22/tcp");
  DeniedFlow ping;
  ping.time_unix_ms = 1000;
  ping.ns = "a";
  ping.ip_protocol = IPPROTO_ICMP;
  ping.source = ip("10.209.0.6");
  ping.destination = ip("192.0.2.1");
  ping.icmp_type = 8;
  auto ping_back = parse_flow_log_line(to_json_line(ping));
  ASSERT_TRUE(ping_back);
  EXPECT_EQ(std::get<DeniedFlow>(*ping_back), ping);
  EXPECT_EQ(to_text(ping),
            "1970-01-01T00:00:01.000Z icmp 10.209.0.6 -> 192.0.2.1 echo-request refused by the "
            "default");
  DeniedQuery q{1746100800123, "web", ip("10.209.0.2"), "evil.example", 28, 5};
  auto q_back = parse_flow_log_line(to_json_line(q));
  ASSERT_TRUE(q_back);
  EXPECT_EQ(std::get<DeniedQuery>(*q_back), q);
  EXPECT_EQ(to_text(q),
            "2025-05-01T12:00:00.123Z dns 10.209.0.2 asked evil.example AAAA: refused (REFUSED)");
}

TEST(FlowLogLineTest, RefusesWhatIsNotALogLine) {
  for (const char* bad :
       {"", "{", "[]", "42", R"({"kind":"flow"})", R"({"kind":"other"})",
        R"({"kind":"dns","time":"2025-05-01T12:00:00.123Z","namespace":"a","client":"x",)"
        R"("name":"n","qtype":1,"rcode":5})",
        R"({"kind":"dns","time":"yesterday","namespace":"a","client":"10.0.0.1",)"
        R"("name":"n","qtype":1,"rcode":5})",
        R"({"kind":"dns","time":"2025-05-01T12:00:00.123Z","namespace":"a","client":"10.0.0.1",)"
        R"("name":"n","qtype":70000,"rcode":5})",
        R"({"kind":"flow","time":"2025-05-01T12:00:00.123Z","namespace":"a","protocol":"tcp",)"
        R"("source":"10.0.0.1","destination":"10.0.0.2","by":"nobody"})",
        R"({"kind":"flow","time":"2025-05-01T12:00:00.123Z","namespace":"a","protocol":"999",)"
        R"("source":"10.0.0.1","destination":"10.0.0.2","by":"default"})"}) {
    auto r = parse_flow_log_line(bad);
    EXPECT_FALSE(r) << bad;
    if (!r) {
      EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
    }
  }
}

class FlowLogFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/netcell-flowlog-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string dir_;
};

TEST_F(FlowLogFileTest, RotatesToOneOlderFileAndReadsTheLastLines) {
  constexpr std::size_t kMax = 4096;
  DeniedFlow f = sample_flow();
  const std::size_t line_size = to_json_line(f).size() + 1;
  const int count = static_cast<int>(3 * kMax / line_size);  // three files' worth
  for (int i = 0; i < count; ++i) {
    f.time_unix_ms = 1746100800000 + i;
    ASSERT_TRUE(append_flow_log(dir_, "web", f, kMax));
  }
  const std::string path = flow_log_path(dir_, "web");
  EXPECT_EQ(path, dir_ + "/log/web.jsonl");
  ASSERT_TRUE(fs::exists(path));
  ASSERT_TRUE(fs::exists(path + ".1"));
  EXPECT_LE(fs::file_size(path), kMax);
  EXPECT_LE(fs::file_size(path + ".1"), kMax);
  EXPECT_GT(fs::file_size(path + ".1"), kMax - line_size);  // rotated when the next did not fit
  EXPECT_FALSE(fs::exists(path + ".2"));
  auto all = read_flow_log(dir_, "web");
  ASSERT_TRUE(all);
  // The newest lines, in order, none torn, ending with the last one written.
  ASSERT_GT(all->size(), kMax / line_size);
  std::int64_t previous = 0;
  for (const auto& line : *all) {
    auto r = parse_flow_log_line(line);
    ASSERT_TRUE(r) << line;
    const std::int64_t t = std::get<DeniedFlow>(*r).time_unix_ms;
    EXPECT_GT(t, previous);
    previous = t;
  }
  EXPECT_EQ(previous, 1746100800000 + count - 1);
  auto last3 = read_flow_log(dir_, "web", 3);
  ASSERT_TRUE(last3);
  ASSERT_EQ(last3->size(), 3u);
  EXPECT_EQ(last3->back(), all->back());
  EXPECT_EQ((*last3)[0], (*all)[all->size() - 3]);
  EXPECT_EQ(flow_log_names(dir_), std::vector<std::string>{"web"});
  ASSERT_TRUE(remove_flow_log(dir_, "web"));
  EXPECT_FALSE(fs::exists(path));
  EXPECT_FALSE(fs::exists(path + ".1"));
  EXPECT_TRUE(remove_flow_log(dir_, "web"));  // gone counts as removed
  auto none = read_flow_log(dir_, "web");
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
}

TEST_F(FlowLogFileTest, ConcurrentWritersNeverTearALineOrLoseTheOlderFile) {
  // ~190 bytes a line, 1600 lines: room for all of them in the two files, so a rotation done
  // twice (a writer renaming the fresh file over the full one) would show as lost lines.
  constexpr std::size_t kMax = 200 * 1024;
  constexpr int kThreads = 4, kLines = 400;
  std::vector<std::thread> writers;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&, t] {
      DeniedFlow f = sample_flow();
      for (int i = 0; i < kLines; ++i) {
        f.time_unix_ms = t * 1000000 + i;
        f.port = static_cast<std::uint16_t>(t);
        if (!append_flow_log(dir_, "web", f, kMax)) ++failures;
      }
    });
  }
  for (auto& w : writers) w.join();
  EXPECT_EQ(failures.load(), 0);
  ASSERT_TRUE(fs::exists(flow_log_path(dir_, "web") + ".1")) << "no rotation happened";
  auto lines = read_flow_log(dir_, "web");
  ASSERT_TRUE(lines);
  std::vector<int> last(kThreads, -1);
  for (const auto& line : *lines) {
    auto r = parse_flow_log_line(line);
    ASSERT_TRUE(r) << line;
    const auto& f = std::get<DeniedFlow>(*r);
    ASSERT_LT(f.port, kThreads);
    const int i = static_cast<int>(f.time_unix_ms % 1000000);
    EXPECT_EQ(i, last[f.port] + 1) << "a line of writer " << f.port << " is missing";
    last[f.port] = i;
  }
  EXPECT_EQ(lines->size(), std::size_t{kThreads * kLines});
  // Writers that found room at the same moment may each add their line.
  EXPECT_LE(fs::file_size(flow_log_path(dir_, "web")), kMax + kThreads * 256);
  EXPECT_LE(fs::file_size(flow_log_path(dir_, "web") + ".1"), kMax + kThreads * 256);
}

TEST_F(FlowLogFileTest, RefusesNamesThatAreNotNamespaceNames) {
  for (const char* bad : {"", "..", "a/b", "../../etc/passwd"}) {
    auto r = append_flow_log(dir_, bad, sample_flow());
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_FALSE(remove_flow_log(dir_, bad));
    EXPECT_FALSE(read_flow_log(dir_, bad));
  }
  EXPECT_FALSE(fs::exists(dir_ + "/etc"));
}

TEST(FlowLogGroupTest, EachRunDirHasItsOwnGroupInTheTable) {
  const std::uint16_t a = flow_log_group("/run/netcell");
  const std::uint16_t b = flow_log_group("/tmp/other-instance");
  EXPECT_NE(a, b);
  EXPECT_EQ(flow_log_group("/run/netcell/"), a);  // as the backend names the instance
  std::set<std::uint16_t> groups;
  for (int i = 0; i < 1000; ++i) {
    const std::uint16_t g = flow_log_group("/run/netcell-" + std::to_string(i));
    EXPECT_GE(g, 4096);
    groups.insert(g);
  }
  EXPECT_GE(groups.size(), 985u);  // a hash: few collisions among 1000 in 61440
  // The table logs to that group, before every reject, limited per source.
  const std::string tag = kernel::owner_tag("/run/netcell");
  const std::string table = kernel::nft_script::create_table(tag);
  const std::string group = " group " + std::to_string(a) + " goto reject_now";
  for (const char* prefix :
       {kernel::kLogPrefixRule, kernel::kLogPrefixDefault, kernel::kLogPrefixDns}) {
    EXPECT_NE(table.find(std::string("log prefix \"") + prefix + '"' + group), std::string::npos)
        << prefix;
  }
  EXPECT_NE(table.find("add @log_rate { ip saddr limit rate over 10/second burst 20 packets } "
                       "counter name \"log_suppressed\" goto reject_now"),
            std::string::npos);
  // The policy's shards come with the first namespace that has a policy, and log the same way.
  EXPECT_EQ(table.find("@pol_deny_tp_0 "), std::string::npos);
  const std::string shards = kernel::nft_script::policy_shards_script(/*v4=*/true);
  EXPECT_NE(shards.find("@pol_deny_tp_0 goto refuse_rule"), std::string::npos);
  EXPECT_NE(shards.find("@pol_deny_tp_63 goto refuse_rule"), std::string::npos);
  EXPECT_NE(table.find("chain reject_now {\n    meta l4proto tcp reject with tcp reset\n"
                       "    reject with icmp type admin-prohibited\n  }"),
            std::string::npos);
}

}  // namespace
}  // namespace netcell

namespace netcell {
namespace {

// `netcell log` on the simulation backend: its errors, its two formats, -n, and --follow (new
// lines, a rotation, SIGTERM, the namespace's end).
class FlowLogCliTest : public FlowLogFileTest {
 protected:
  std::vector<std::string> sim(std::vector<std::string> args) {
    args.insert(args.begin(), {"--backend", "simulation", "--run-dir", dir_});
    return args;
  }
};

TEST_F(FlowLogCliTest, ErrorsAreOneLineWithTheRightExitCode) {
  ASSERT_EQ(testing::cli(sim({"create", "web"})).exit_code, 0);
  struct Case {
    std::vector<std::string> args;
    int exit_code;
    const char* why;
  };
  for (const Case& c : {Case{{"log", "nosuch"}, 1, "namespace 'nosuch' does not exist"},
                        Case{{"log", "a/b"}, 2, "'/'"}, Case{{"log"}, 2, "name is required"},
                        Case{{"log", "web", "-n", "-1"}, 2, "0 or more"},
                        Case{{"log", "web", "-n", "x"}, 2, "--lines"},
                        Case{{"log", "web", "--since", "1h"}, 2, "--since"}}) {
    auto r = testing::cli(sim(c.args));
    EXPECT_EQ(r.exit_code, c.exit_code) << c.args.back() << ": " << r.err;
    EXPECT_NE(r.err.find(c.why), std::string::npos) << r.err;
    EXPECT_EQ(r.err.rfind("netcell: ", 0), 0u) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_TRUE(r.out.empty());
  }
}

TEST_F(FlowLogCliTest, PrintsLinesForPeopleOrAsKeptAndTheLastN) {
  ASSERT_EQ(testing::cli(sim({"create", "web"})).exit_code, 0);
  auto empty = testing::cli(sim({"log", "web"}));
  EXPECT_EQ(empty.exit_code, 0) << empty.err;
  EXPECT_EQ(empty.out, "");
  const DeniedFlow f = sample_flow();
  const DeniedQuery q{1746100801000, "web", ip("10.209.0.2"), "evil.example", 1, 5};
  ASSERT_TRUE(append_flow_log(dir_, "web", f));
  ASSERT_TRUE(append_flow_log(dir_, "web", q));
  auto human = testing::cli(sim({"log", "web"}));
  ASSERT_EQ(human.exit_code, 0) << human.err;
  EXPECT_EQ(human.out, to_text(f) + '\n' + to_text(q) + '\n');
  auto json = testing::cli(sim({"log", "web", "--json"}));
  EXPECT_EQ(json.out, to_json_line(f) + '\n' + to_json_line(q) + '\n');
  auto last = testing::cli(sim({"log", "web", "--json", "-n", "1"}));
  EXPECT_EQ(last.out, to_json_line(q) + '\n');
  auto none = testing::cli(sim({"log", "web", "-n", "0"}));
  EXPECT_EQ(none.out, "");
}

// `netcell log --follow` in a child whose standard output the test reads as it comes, so that
// each step waits for what the follower printed instead of for a guessed time.
class Follower {
 public:
  explicit Follower(const std::vector<std::string>& args) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(fds[1], 1);
      std::vector<char*> argv;
      std::string cli = NETCELL_CLI_PATH;
      argv.push_back(cli.data());
      std::vector<std::string> copy = args;
      for (auto& a : copy) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(fds[1]);
    out_ = fds[0];
  }
  ~Follower() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (out_ >= 0) ::close(out_);
  }
  // Reads until the output holds `lines` lines (at most 10 s); returns what it read in all.
  const std::string& read_lines(std::size_t lines) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (static_cast<std::size_t>(std::count(text_.begin(), text_.end(), '\n')) < lines &&
           std::chrono::steady_clock::now() < deadline) {
      pollfd p{out_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      char buf[4096];
      const ssize_t n = ::read(out_, buf, sizeof buf);
      if (n <= 0) break;
      text_.append(buf, static_cast<std::size_t>(n));
    }
    return text_;
  }
  // Its exit status once it ended by itself or after `signal` (at most 10 s; -1 when it did not).
  int wait(int signal = 0) {
    if (signal != 0) ::kill(pid_, signal);
    for (int i = 0; i < 1000; ++i) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return -1;
  }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  std::string text_;
};

TEST_F(FlowLogCliTest, FollowPrintsAppendsAcrossARotationUntilSigterm) {
  ASSERT_EQ(testing::cli(sim({"create", "web"})).exit_code, 0);
  DeniedFlow f = sample_flow();
  ASSERT_TRUE(append_flow_log(dir_, "web", f));  // before: shown by -n 1
  Follower follower(sim({"log", "web", "--json", "--follow", "-n", "1"}));
  std::string want = to_json_line(f) + '\n';
  ASSERT_EQ(follower.read_lines(1), want);  // it follows from here on
  // Enough lines to rotate a small log several times while it is followed.
  for (int i = 1; i <= 30; ++i) {
    f.time_unix_ms += 1;
    ASSERT_TRUE(append_flow_log(dir_, "web", f, 2000));
    want += to_json_line(f) + '\n';
    if (i % 10 == 0) {
      EXPECT_EQ(follower.read_lines(static_cast<std::size_t>(i) + 1), want);
    }
  }
  EXPECT_EQ(follower.read_lines(31), want);
  EXPECT_EQ(follower.wait(SIGTERM), 0);  // SIGTERM ends it cleanly
  EXPECT_TRUE(fs::exists(flow_log_path(dir_, "web") + ".1"));
}

TEST_F(FlowLogCliTest, FollowEndsWhenTheNamespaceIsDestroyedAndDestroyRemovesTheLog) {
  ASSERT_EQ(testing::cli(sim({"create", "web"})).exit_code, 0);
  ASSERT_TRUE(append_flow_log(dir_, "web", sample_flow(), 300));
  ASSERT_TRUE(append_flow_log(dir_, "web", sample_flow(), 300));  // rotated: both files exist
  ASSERT_TRUE(fs::exists(flow_log_path(dir_, "web") + ".1"));
  Follower follower(sim({"log", "web", "-f"}));
  const std::string& shown = follower.read_lines(2);
  ASSERT_EQ(std::count(shown.begin(), shown.end(), '\n'), 2) << shown;
  ASSERT_EQ(testing::cli(sim({"destroy", "web"})).exit_code, 0);
  EXPECT_EQ(follower.wait(), 0) << "it ends by itself within a few seconds";
  EXPECT_FALSE(fs::exists(flow_log_path(dir_, "web")));
  EXPECT_FALSE(fs::exists(flow_log_path(dir_, "web") + ".1"));
  // A log written for a namespace that is gone (a reader's late line) is gc's to remove.
  ASSERT_TRUE(append_flow_log(dir_, "gone", sample_flow()));
  auto gc = testing::cli(sim({"gc"}));
  EXPECT_EQ(gc.exit_code, 0) << gc.err;
  EXPECT_NE(gc.out.find("gone.jsonl"), std::string::npos) << gc.out;
  EXPECT_FALSE(fs::exists(flow_log_path(dir_, "gone")));
}

}  // namespace
}  // namespace netcell
