#include "core/serialize.h"

#include <gtest/gtest.h>

namespace netcell {
namespace {

NamespaceInfo sample() {
  NamespaceInfo info;
  info.name = "web";
  info.mode = IsolationMode::kFull;
  info.backend = BackendKind::kLinux;
  info.enforced = true;
  info.owner_pid = 42;
  info.netns_path = "/run/netns/web";
  info.interfaces = {InterfaceInfo{"lo", {*IpPrefix::parse("127.0.0.1/8")}, 65536, ""}};
  info.gateway = *IpAddress::parse("10.0.0.1");
  info.dns = {*IpAddress::parse("192.0.2.53")};
  info.port_forwards = {*PortForward::parse("8080:80")};
  info.created_unix_ms = 1700000000000;
  return info;
}

TEST(SerializeTest, NamespaceInfoRoundTrips) {
  auto back = namespace_info_from_json(to_json(sample()));
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ(*back, sample());
}

TEST(SerializeTest, CniAttachmentRoundTrips) {
  NamespaceInfo info = sample();
  info.mode = IsolationMode::kPrivate;
  info.interfaces = {
      InterfaceInfo{"net1", {*IpPrefix::parse("10.209.0.2/30")}, 1500, "02:00:00:00:00:2a"}};
  info.netns_path = info.adopted_netns_path = "/run/netns/cni-1234";
  info.adopted_netns_inode = 4026532801;
  info.cni = CniAttachment{"podnet", "0123456789abcdef", "net1"};
  auto back = namespace_info_from_json(to_json(info));
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ(*back, info);
  auto j = to_json(info);
  j["cni"].erase("container_id");
  EXPECT_FALSE(namespace_info_from_json(j));
  j = to_json(info);
  j["interfaces"][0]["mac"] = "02:00:00:00:00";
  EXPECT_FALSE(namespace_info_from_json(j));
}

TEST(SerializeTest, NetworkRemovedWhenUnusedRoundTrips) {
  NetworkInfo n;
  n.name = "podnet";
  n.subnet = *IpPrefix::parse("10.78.0.0/24");
  n.gateway = *IpAddress::parse("10.78.0.1");
  n.bridge = "ncbr3";
  n.remove_when_unused = true;
  auto back = network_info_from_json(to_json(n));
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ(*back, n);
  n.remove_when_unused = false;
  EXPECT_FALSE(to_json(n).contains("remove_when_unused"));  // records as before
  EXPECT_EQ(*network_info_from_json(to_json(n)), n);
}

TEST(SerializeTest, EveryMissingFieldIsCorrupt) {
  auto full = to_json(sample());
  for (const auto& [key, value] : full.items()) {
    if (key == "gateway") continue;  // optional
    if (key == "rate") continue;     // optional: records from before rate limits have none
    auto j = full;
    j.erase(key);
    auto r = namespace_info_from_json(j);
    ASSERT_FALSE(r) << key;
    EXPECT_EQ(r.error().code(), ErrorCode::kCorrupt) << key;
  }
}

TEST(SerializeTest, MistypedOrHostileValuesAreCorrupt) {
  auto base = to_json(sample());
  std::vector<std::pair<std::string, nlohmann::json>> cases = {
      {"name", "../etc"},         {"name", 7},
      {"mode", "isolated"},       {"backend", "qemu"},
      {"enforced", "yes"},        {"owner_pid", -1},
      {"owner_pid", 1e20},        {"interfaces", "lo"},
      {"dns", {"not-an-ip"}},     {"port_forwards", {{{"spec", "0:80"}}}},
      {"created_unix_ms", "now"}, {"gateway", "10.0.0.999"},
  };
  for (const auto& [key, value] : cases) {
    auto j = base;
    j[key] = value;
    auto r = namespace_info_from_json(j);
    ASSERT_FALSE(r) << key << "=" << value.dump();
    EXPECT_EQ(r.error().code(), ErrorCode::kCorrupt);
  }
  EXPECT_FALSE(namespace_info_from_json(nlohmann::json::array()));
  EXPECT_FALSE(namespace_info_from_json(nlohmann::json()));
}

TEST(SerializeTest, RateLimitsRoundTripAndAreChecked) {
  auto info = sample();
  info.rate = {2'500'000, std::nullopt};
  auto j = to_json(info);
  EXPECT_EQ(j["rate"]["egress_bps"], 2'500'000);
  EXPECT_TRUE(j["rate"]["ingress_bps"].is_null());
  auto back = namespace_info_from_json(j);
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ(back->rate, info.rate);
  // A record without the field has no limits.
  j.erase("rate");
  back = namespace_info_from_json(j);
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_TRUE(back->rate.empty());
  const std::vector<nlohmann::json> bad = {
      "1mbit",
      {{"egress_bps", 1000}},                                          // a direction missing
      {{"egress_bps", 0}, {"ingress_bps", nullptr}},                   // below the minimum
      {{"egress_bps", -1}, {"ingress_bps", nullptr}},                  // negative
      {{"egress_bps", 10'000'000'000'000}, {"ingress_bps", nullptr}},  // above the maximum
      {{"egress_bps", 1e6}, {"ingress_bps", nullptr}},                 // not an integer
      {{"egress_bps", "1mbit"}, {"ingress_bps", nullptr}},             // mistyped
      {{"egress_bps", nullptr}, {"ingress_bps", true}},
  };
  for (const auto& rate : bad) {
    auto k = to_json(info);
    k["rate"] = rate;
    auto r = namespace_info_from_json(k);
    ASSERT_FALSE(r) << rate.dump();
    EXPECT_EQ(r.error().code(), ErrorCode::kCorrupt) << rate.dump();
  }
}

TEST(SerializeTest, AdoptedPidRoundTripsAndIsOptional) {
  auto info = sample();
  EXPECT_FALSE(to_json(info).contains("adopted_from_pid"));  // made by netcell: no field
  info.adopted_from_pid = 4321;
  auto j = to_json(info);
  EXPECT_EQ(j["adopted_from_pid"], 4321);
  auto back = namespace_info_from_json(j);
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ(*back, info);
  for (const nlohmann::json& bad :
       {nlohmann::json(0), nlohmann::json(-1), nlohmann::json("4321"), nlohmann::json(1e20)}) {
    auto k = j;
    k["adopted_from_pid"] = bad;
    auto r = namespace_info_from_json(k);
    ASSERT_FALSE(r) << bad.dump();
    EXPECT_EQ(r.error().code(), ErrorCode::kCorrupt) << bad.dump();
  }
}

TEST(SerializeTest, StatsCarryTotalsAndCount) {
  NamespaceStats stats;
  stats.name = "web";
  stats.interfaces = {InterfaceStats{.name = "lo", .rx_bytes = 10}};
  stats.total = InterfaceStats{.name = "total", .rx_bytes = 10};
  auto j = to_json(stats);
  EXPECT_EQ(j["interface_count"], 1);
  EXPECT_EQ(j["total"]["rx_bytes"], 10);
  EXPECT_EQ(j["interfaces"][0]["name"], "lo");
}

}  // namespace
}  // namespace netcell
