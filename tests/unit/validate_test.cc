#include "core/validate.h"

#include <gtest/gtest.h>
#include <unistd.h>

namespace netcell {
namespace {

TEST(ValidateTest, DerivesNameFromOwner) {
  auto id = validate_config(NamespaceConfig::full_isolation(::getpid()));
  ASSERT_TRUE(id);
  EXPECT_EQ(id->str(), "pid-" + std::to_string(::getpid()));
}

TEST(ValidateTest, NeedsNameOrOwner) {
  auto r = validate_config(NamespaceConfig::full_isolation(0));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
}

TEST(ValidateTest, OwnerMustExist) {
  auto cfg = NamespaceConfig::full_isolation(0x3fffff);  // above any pid_max in use here
  cfg.name = 'x';
  auto r = validate_config(cfg);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kNotFound);
  cfg.pid = -5;
  EXPECT_EQ(validate_config(cfg).error().code(), ErrorCode::kInvalidArgument);
}

TEST(ValidateTest, FullAndSharedTakeNoNetworkSettings) {
  for (auto mode : {IsolationMode::kFull, IsolationMode::kShared}) {
    NamespaceConfig cfg;
    cfg.mode = mode;
    cfg.name = "n";
    EXPECT_TRUE(validate_config(cfg));
    auto with_port = cfg;
    with_port.port_forwards.push_back({8080, 80, Protocol::kTcp, {}});
    EXPECT_EQ(validate_config(with_port).error().code(), ErrorCode::kInvalidArgument);
    auto with_dns = cfg;
    with_dns.dns.push_back(IpAddress::v4(0x08080808));
    EXPECT_EQ(validate_config(with_dns).error().code(), ErrorCode::kInvalidArgument);
    auto with_iface = cfg;
    with_iface.interface = InterfaceConfig{};
    EXPECT_EQ(validate_config(with_iface).error().code(), ErrorCode::kInvalidArgument);
  }
}

TEST(ValidateTest, InterfaceFieldsAreChecked) {
  auto cfg = NamespaceConfig::private_network(0);
  cfg.name = 'p';
  InterfaceConfig iface;
  iface.ip = *IpAddress::parse("10.0.0.2");
  iface.mtu = 67;
  cfg.interface = iface;
  EXPECT_EQ(validate_config(cfg).error().code(), ErrorCode::kInvalidArgument);
  cfg.interface->mtu = 65536;
  EXPECT_EQ(validate_config(cfg).error().code(), ErrorCode::kInvalidArgument);
  cfg.interface->mtu = 0;  // the backend's default
  EXPECT_TRUE(validate_config(cfg));
  cfg.interface->mtu = 1500;
  EXPECT_TRUE(validate_config(cfg));
  cfg.interface->name = "sixteen-bytes-xx";
  EXPECT_EQ(validate_config(cfg).error().code(), ErrorCode::kInvalidArgument);
  cfg.interface->name = "eth0";
  cfg.interface->gateway = *IpAddress::parse("2001:db8::1");
  EXPECT_EQ(validate_config(cfg).error().code(), ErrorCode::kInvalidArgument);
}

TEST(ValidateTest, MacAddressesAreUnicast) {
  auto cfg = NamespaceConfig::private_network(0);
  cfg.name = 'p';
  cfg.interface = InterfaceConfig{};
  for (const char* good : {"02:00:00:00:00:01", "aa:bb:cc:dd:ee:f0"}) {
    cfg.interface->mac = good;
    EXPECT_TRUE(validate_config(cfg)) << good;
  }
  for (const char* bad : {"01:00:5e:00:00:01", "ff:ff:ff:ff:ff:ff", "00:00:00:00:00:00", "x"}) {
    cfg.interface->mac = bad;
    auto r = validate_config(cfg);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument) << bad;
  }
}

TEST(ValidateTest, AdoptionByPathNeedsAnAbsolutePathThatExists) {
  auto cfg = NamespaceConfig::private_network(0);
  cfg.name = 'p';
  cfg.adopt_netns_path = "/proc/self/ns/net";
  EXPECT_TRUE(validate_config(cfg));  // whether it is a namespace is the backend's to say
  cfg.adopt_netns_path = "run/netns/x";
  EXPECT_EQ(validate_config(cfg).error().code(), ErrorCode::kInvalidArgument);
  cfg.adopt_netns_path = "/nonexistent/netns/x";
  EXPECT_EQ(validate_config(cfg).error().code(), ErrorCode::kNotFound);
  cfg.adopt_netns_path = "/proc/self/ns/net";
  cfg.adopt_netns_of = ::getpid();
  EXPECT_EQ(validate_config(cfg).error().code(), ErrorCode::kInvalidArgument);
  auto shared = NamespaceConfig::shared(0);
  shared.name = 's';
  shared.adopt_netns_path = "/proc/self/ns/net";
  EXPECT_EQ(validate_config(shared).error().code(), ErrorCode::kInvalidArgument);
}

TEST(ValidateTest, DuplicatePublishedPortsAreRefused) {
  auto cfg = NamespaceConfig::private_network(0);
  cfg.name = 'p';
  cfg.port_forwards = {*PortForward::parse("8080:80"), *PortForward::parse("8080:81")};
  auto r = validate_config(cfg);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("published twice"), std::string::npos);
  cfg.port_forwards = {*PortForward::parse("8080:80"), *PortForward::parse("8080:80/udp")};
  // The same port over TCP and UDP is two different forwards.
  EXPECT_TRUE(validate_config(cfg));
}

TEST(ValidateTest, BridgedNeedsANetwork) {
  auto cfg = NamespaceConfig::bridged(0, "");
  cfg.name = 'b';
  EXPECT_EQ(validate_config(cfg).error().code(), ErrorCode::kInvalidArgument);
  cfg.network = "lan/1";
  EXPECT_EQ(validate_config(cfg).error().code(), ErrorCode::kInvalidArgument);
}

TEST(ValidateTest, RateNeedsAVethAndARateInRange) {
  for (auto mode : {IsolationMode::kFull, IsolationMode::kShared}) {
    NamespaceConfig cfg;
    cfg.mode = mode;
    cfg.name = "n";
    for (auto limit : {RateLimit{1'000'000, std::nullopt}, RateLimit{std::nullopt, 1'000'000}}) {
      cfg.rate = limit;
      auto r = validate_config(cfg);
      ASSERT_FALSE(r) << to_string(mode);
      EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
      EXPECT_NE(r.error().message().find("no link to rate-limit"), std::string::npos)
          << r.error().message();
    }
  }
  auto priv = NamespaceConfig::private_network(0);
  priv.name = 'p';
  priv.rate = {10'000'000, 1'000'000};
  EXPECT_TRUE(validate_config(priv));
  auto bridged = NamespaceConfig::bridged(0, "lan");
  bridged.name = 'b';
  bridged.rate.ingress_bps = 1'000'000;
  EXPECT_TRUE(validate_config(bridged));
  // The library takes numbers: the range is checked there too, per direction.
  for (std::uint64_t bad : {std::uint64_t{0}, kMinRateBps - 1, kMaxRateBps + 1}) {
    priv.rate = {bad, std::nullopt};
    auto r = validate_config(priv);
    ASSERT_FALSE(r) << bad;
    EXPECT_NE(r.error().to_string().find("egress rate"), std::string::npos);
    priv.rate = {std::nullopt, bad};
    r = validate_config(priv);
    ASSERT_FALSE(r) << bad;
    EXPECT_NE(r.error().to_string().find("ingress rate"), std::string::npos);
  }
}

TEST(ValidateTest, ProcessStartTimeIdentifiesProcesses) {
  auto self = process_start_time(::getpid());
  ASSERT_TRUE(self);
  EXPECT_EQ(process_start_time(::getpid()), self);
  EXPECT_FALSE(process_start_time(0x3fffff));
  EXPECT_FALSE(process_start_time(-1));
}

// Private and bridged namespaces take an egress policy; full and shared ones refuse it.
TEST(ValidateTest, EgressPoliciesForPrivateAndBridgedOnly) {
  EgressPolicy policy;
  policy.default_action = PolicyAction::kDeny;
  auto bridged = NamespaceConfig::bridged(0, "lan");
  bridged.name = 'b';
  bridged.egress = policy;
  EXPECT_TRUE(validate_config(bridged));
  EXPECT_TRUE(validate_egress(IsolationMode::kPrivate, policy));
  EXPECT_TRUE(validate_egress(IsolationMode::kBridged, policy));
  auto full = validate_egress(IsolationMode::kFull, policy);
  ASSERT_FALSE(full);
  EXPECT_EQ(full.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(full.error().message().find("full mode reaches nothing"), std::string::npos);
  auto shared = validate_egress(IsolationMode::kShared, policy);
  ASSERT_FALSE(shared);
  EXPECT_NE(shared.error().message().find("shared mode is the host's own network"),
            std::string::npos);
  EXPECT_TRUE(validate_egress(IsolationMode::kShared, std::nullopt));
}

}  // namespace
}  // namespace netcell
