#include "netcell/types.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

namespace netcell {
namespace {

TEST(IpAddressTest, ParsesAndPrintsBothFamilies) {
  auto v4 = IpAddress::parse("192.0.2.7");
  ASSERT_TRUE(v4);
  EXPECT_TRUE(v4->is_v4());
  EXPECT_EQ(v4->to_string(), "192.0.2.7");
  EXPECT_EQ(v4->v4_host_order(), 0xc0000207U);
  auto v6 = IpAddress::parse("2001:db8::1");
  ASSERT_TRUE(v6);
  EXPECT_FALSE(v6->is_v4());
  EXPECT_EQ(v6->to_string(), "2001:db8::1");
  EXPECT_EQ(IpAddress::v4(0x7f000001).to_string(), "127.0.0.1");
}

// IPv4 is printed by hand: every width of every octet, against inet_ntop.
TEST(IpAddressTest, PrintsEveryIpv4OctetAsInetNtopDoes) {
  for (unsigned b = 0; b < 256; ++b) {
    for (std::uint32_t a : {b << 24 | 0x00010A64U, 0x0A000000U | b << 8, 0xFF00FF00U | b}) {
      const std::uint32_t net = htonl(a);
      char want[INET_ADDRSTRLEN] = {};
      ASSERT_NE(::inet_ntop(AF_INET, &net, want, sizeof want), nullptr);
      EXPECT_EQ(IpAddress::v4(a).to_string(), want);
    }
  }
  EXPECT_EQ(IpAddress::v4(0).to_string(), "0.0.0.0");
  EXPECT_EQ(IpAddress::v4(0xFFFFFFFFU).to_string(), "255.255.255.255");
}

// fe80::/10 at its edges, and what only looks like it.
TEST(IpAddressTest, KnowsIpv6LinkLocalAddresses) {
  for (const char* inside : {"fe80::", "fe80::1", "fe80:1::5", "febf:ffff::1"}) {
    EXPECT_TRUE(IpAddress::parse(inside)->is_ipv6_link_local()) << inside;
  }
  for (const char* outside : {"fe7f:ffff::1", "fec0::1", "fd00::1", "::1", "::ffff:254.128.0.1",
                              "254.128.0.1", "2001:db8::fe80"}) {
    EXPECT_FALSE(IpAddress::parse(outside)->is_ipv6_link_local()) << outside;
  }
}

TEST(IpAddressTest, RejectsGarbage) {
  for (const char* bad : {"", "1.2.3", "1.2.3.256", "10.0.0.1/24", "abc", "1.2.3.4 ", "::g"}) {
    auto r = IpAddress::parse(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  }
}

TEST(IpPrefixTest, ChecksLengthPerFamily) {
  EXPECT_EQ(IpPrefix::parse("10.0.0.2/30")->prefix_len, 30);
  EXPECT_TRUE(IpPrefix::parse("2001:db8::2/64"));
  EXPECT_FALSE(IpPrefix::parse("10.0.0.2/33"));
  EXPECT_FALSE(IpPrefix::parse("10.0.0.2"));
  EXPECT_FALSE(IpPrefix::parse("10.0.0.2/"));
  EXPECT_FALSE(IpPrefix::parse("10.0.0.2/-1"));
  EXPECT_FALSE(IpPrefix::parse("2001:db8::2/129"));
}

TEST(NamespaceIdTest, AcceptsSaneNames) {
  for (const std::string& good :
       std::vector<std::string>{"web", "a", "pid-1234", "x.y_z-1", std::string(64, 'n')}) {
    EXPECT_TRUE(NamespaceId::parse(good)) << good;
  }
}

TEST(NamespaceIdTest, RejectsDangerousNames) {
  for (std::string bad :
       {std::string(""), std::string("a/b"), std::string(".."), std::string("."),
        std::string(".hidden"), std::string("-flag"), std::string("with space"),
        std::string("tab\t"), std::string("nul\0x", 5), std::string(65, 'n'), std::string("é")}) {
    auto r = NamespaceId::parse(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  }
  EXPECT_NE(NamespaceId::parse("a/b").error().message().find("'/'"), std::string::npos);
}

TEST(InterfaceNameTest, FollowsKernelRules) {
  EXPECT_TRUE(validate_interface_name("eth0"));
  EXPECT_TRUE(validate_interface_name(std::string(15, 'e')));
  EXPECT_FALSE(validate_interface_name(std::string(16, 'e')));
  EXPECT_FALSE(validate_interface_name(""));
  EXPECT_FALSE(validate_interface_name("a/b"));
  EXPECT_FALSE(validate_interface_name("a:b"));
  EXPECT_FALSE(validate_interface_name("a b"));
  EXPECT_FALSE(validate_interface_name(".."));
}

TEST(PortForwardTest, ParsesEveryForm) {
  auto a = PortForward::parse("8080:80");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host_port, 8080);
  EXPECT_EQ(a->container_port, 80);
  EXPECT_EQ(a->protocol, Protocol::kTcp);
  EXPECT_FALSE(a->host_ip);
  auto b = PortForward::parse("127.0.0.1:5353:53/udp");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->host_ip->to_string(), "127.0.0.1");
  EXPECT_EQ(b->protocol, Protocol::kUdp);
  EXPECT_EQ(b->to_string(), "127.0.0.1:5353:53/udp");
  auto c = PortForward::parse("[::1]:8443:443/tcp");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->to_string(), "[::1]:8443:443/tcp");
  EXPECT_EQ(*PortForward::parse(c->to_string()), *c);
}

TEST(PortForwardTest, SaysWhetherItCoversTheIpv6Loopback) {
  for (const char* yes : {"8080:80", "[::]:8080:80", "[::1]:8080:80/udp"}) {
    EXPECT_TRUE(PortForward::parse(yes)->covers_ipv6_loopback()) << yes;
  }
  for (const char* no : {"127.0.0.1:8080:80", "0.0.0.0:8080:80", "[2001:db8::1]:8080:80"}) {
    EXPECT_FALSE(PortForward::parse(no)->covers_ipv6_loopback()) << no;
  }
  EXPECT_EQ(PortForward::parse("[::]:8080:80")->to_string(), "[::]:8080:80/tcp");
}

TEST(PortForwardTest, RejectsOutOfRangeAndMalformed) {
  for (const char* bad : {"0:80", "8080:0", "65536:80", "80:65536", "-1:80", "80", "a:b",
                          "1.2.3.4:80", "80:80/sctp", "999.1.1.1:80:80", ":80", "80:", ""}) {
    auto r = PortForward::parse(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument) << bad;
  }
}

TEST(ModeTest, RoundTrips) {
  for (auto m : {IsolationMode::kFull, IsolationMode::kPrivate, IsolationMode::kShared,
                 IsolationMode::kBridged}) {
    EXPECT_EQ(parse_isolation_mode(to_string(m)), m);
  }
  auto bad = parse_isolation_mode("isolated");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("unknown mode 'isolated'"), std::string::npos);
}

TEST(ErrorTest, PrintsContextOutermostFirst) {
  Error e = Error::from_errno("RTM_NEWLINK", EEXIST);
  e.with_context("veth").with_context("create web");
  EXPECT_EQ(e.code(), ErrorCode::kAlreadyExists);
  EXPECT_EQ(e.to_string(), "create web: veth: RTM_NEWLINK: File exists");
  EXPECT_EQ(Error::from_errno("x", EPERM).code(), ErrorCode::kPermissionDenied);
  EXPECT_EQ(Error::from_errno("x", ENOENT).code(), ErrorCode::kNotFound);
}

TEST(StatsTest, SumsCounters) {
  InterfaceStats a{.name = "a",
                   .rx_bytes = 1,
                   .tx_bytes = 2,
                   .rx_packets = 3,
                   .tx_packets = 4,
                   .rx_errors = 5,
                   .tx_errors = 6,
                   .rx_dropped = 7,
                   .tx_dropped = 8};
  InterfaceStats total{.name = "total"};
  total += a;
  total += a;
  EXPECT_EQ(total.rx_bytes, 2U);
  EXPECT_EQ(total.tx_dropped, 16U);
  EXPECT_EQ(total.name, "total");
}

TEST(RateTest, ParsesHumanRates) {
  const std::vector<std::pair<std::string, std::uint64_t>> cases = {
      {"1mbit", 1'000'000},
      {"10Mbit", 10'000'000},
      {"100MBIT", 100'000'000},
      {"1gbit", 1'000'000'000},
      {"500kbit", 500'000},
      {"2.5mbit", 2'500'000},
      {"0.5mbit", 500'000},
      {".25gbit", 250'000'000},
      {"2.50mbit", 2'500'000},
      {"1000000", 1'000'000},
      {"1000bit", 1'000},
      {"1k", 1'000},
      {"3m", 3'000'000},
      {"1g", 1'000'000'000},
      {"1tbit", 1'000'000'000'000},
      {"1kibit", 1'024},
      {"1mibit", 1'048'576},
      {"1.5kibit", 1'536},
      {"0.001tbit", 1'000'000'000},
      {"1.000001mbit", 1'000'001},
  };
  for (const auto& [text, bps] : cases) {
    auto r = parse_rate(text);
    ASSERT_TRUE(r) << text << ": " << r.error().to_string();
    EXPECT_EQ(*r, bps) << text;
  }
}

TEST(RateTest, RefusesBadRatesWithAReason) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "empty"},
      {"0", "zero"},
      {"0mbit", "zero"},
      {"0.0kbit", "zero"},
      {"-1mbit", "negative"},
      {"-5", "negative"},
      {"999", "less than 1kbit"},
      {"0.5kbit", "less than 1kbit"},
      {"1.0001kbit", "whole number"},
      {"2.5bit", "whole number"},
      {"1.1tbit", "more than 1tbit"},
      {"2tbit", "more than 1tbit"},
      {"1000001mbit", "more than 1tbit"},
      {"99999999999999999999999", "more than 1tbit"},
      {"18446744073709551616", "more than 1tbit"},
      {"1.0000000000001gbit", "more than 12 decimals"},
      {std::string(41, '1'), "too long"},
      {"fast", "no number"},
      {"mbit", "no number"},
      {".", "no number"},
      {"1 mbit", "unknown unit ' mbit'"},
      {"1mbit ", "unknown unit"},
      {"10mb", "unknown unit 'mb'"},
      {"1e6", "unknown unit 'e6'"},
      {"1.2.3mbit", "unknown unit"},
      {"10mbps", "ambiguous"},
      {"10Mbps", "ambiguous"},
      {"100bps", "ambiguous"},
      {"0x10", "unknown unit"},
      {"+1mbit", "no number"},
  };
  for (const auto& [text, why] : cases) {
    auto r = parse_rate(text);
    ASSERT_FALSE(r) << text << " gave " << *r;
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument) << text;
    EXPECT_NE(r.error().message().find("invalid rate '" + text + "'"), std::string::npos)
        << r.error().message();
    EXPECT_NE(r.error().message().find(why), std::string::npos)
        << text << ": " << r.error().message();
  }
}

TEST(RateTest, FormatsExactlyAndRoundTrips) {
  EXPECT_EQ(format_rate(1'000), "1kbit");
  EXPECT_EQ(format_rate(1'000'000), "1mbit");
  EXPECT_EQ(format_rate(2'500'000), "2.5mbit");
  EXPECT_EQ(format_rate(1'048'576), "1.048576mbit");
  EXPECT_EQ(format_rate(1'000'000'001), "1.000000001gbit");
  EXPECT_EQ(format_rate(1'000'000'000'000), "1tbit");
  EXPECT_EQ(format_rate(999), "999bit");
  for (std::uint64_t bps :
       {std::uint64_t{1'000}, std::uint64_t{1'234'567}, std::uint64_t{10'000'000},
        std::uint64_t{999'999'999'999}, kMaxRateBps}) {
    auto back = parse_rate(format_rate(bps));
    ASSERT_TRUE(back) << format_rate(bps);
    EXPECT_EQ(*back, bps);
  }
}

TEST(RateTest, ValidateChecksTheRange) {
  EXPECT_TRUE(validate_rate(kMinRateBps));
  EXPECT_TRUE(validate_rate(kMaxRateBps));
  EXPECT_FALSE(validate_rate(0));
  EXPECT_FALSE(validate_rate(kMinRateBps - 1));
  EXPECT_FALSE(validate_rate(kMaxRateBps + 1));
  EXPECT_EQ(validate_rate(0).error().code(), ErrorCode::kInvalidArgument);
}

TEST(MacTest, ParsesAndFormats) {
  auto mac = parse_mac("02:AB:cd:00:10:ff");
  ASSERT_TRUE(mac) << mac.error().to_string();
  EXPECT_EQ(format_mac(*mac), "02:ab:cd:00:10:ff");
  for (const char* bad : {"", "02:ab:cd:00:10", "02:ab:cd:00:10:ff:", "02-ab-cd-00-10-ff",
                          "02:ab:cd:00:10:fg", "2:ab:cd:00:10:ff0", "02:ab:cd:00:10:+f"}) {
    auto r = parse_mac(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument) << bad;
  }
}

}  // namespace
}  // namespace netcell
