// Dual-stack addressing of private namespaces on the simulation backend (the Linux backend gets
// the same addresses from the same core): the IPv6 pool, one /64 per namespace by the IPv4
// block's number, static addresses per family, --no-ipv6, and bad input refused with one line.
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "support/process.h"
#include "support/sim_cli.h"

namespace netcell {
namespace {

class DualStackTest : public testing::SimCliTest {
 protected:
  nlohmann::json info(const std::string& name) {
    return nlohmann::json::parse(sim({"info", name, "--json"}).out);
  }
  static std::vector<std::string> addresses(const nlohmann::json& j) {
    std::vector<std::string> out;
    for (const auto& i : j["interfaces"]) {
      if (i["name"] != "eth0") continue;
      for (const auto& a : i["addresses"]) out.push_back(a);
    }
    return out;
  }
};

TEST_F(DualStackTest, EachPrivateNamespaceGetsTheSlash64OfItsBlock) {
  ASSERT_EQ(
      sim({"--private-subnet6", "fd00:1:2::/48", "create", "a", "--mode", "private"}).exit_code, 0);
  ASSERT_EQ(
      sim({"--private-subnet6", "fd00:1:2::/48", "create", "b", "--mode", "private"}).exit_code, 0);
  EXPECT_EQ(addresses(info("a")), (std::vector<std::string>{"10.209.0.2/30", "fd00:1:2::2/64"}));
  EXPECT_EQ(info("a")["gateway6"], "fd00:1:2::1");
  EXPECT_EQ(addresses(info("b")), (std::vector<std::string>{"10.209.0.6/30", "fd00:1:2:1::2/64"}));
  // One IPv6 gateway for all: the pool's ::1 (an address of the host's lo).
  EXPECT_EQ(info("b")["gateway6"], "fd00:1:2::1");
  // The pool is the private network's while namespaces use it: another option changes nothing.
  ASSERT_EQ(sim({"--private-subnet6", "fd00:9::/48", "create", "c", "--mode", "private"}).exit_code,
            0);
  EXPECT_EQ(addresses(info("c"))[1], "fd00:1:2:2::2/64");
}

TEST_F(DualStackTest, TheDefaultPoolIsAUlaSlash48MadeOnceAndKept) {
  ASSERT_EQ(sim({"create", "a", "--mode", "private"}).exit_code, 0);
  std::ifstream in(dir_ + "/private-subnet6");
  std::string pool;
  ASSERT_TRUE(std::getline(in, pool));
  ASSERT_GT(pool.size(), 6U);
  EXPECT_EQ(pool.substr(0, 2), "fd") << pool;
  EXPECT_EQ(pool.substr(pool.size() - 5), "::/48") << pool;
  EXPECT_EQ(addresses(info("a"))[1], pool.substr(0, pool.size() - 5) + "::2/64");
  ASSERT_EQ(sim({"destroy", "a"}).exit_code, 0);
  // Kept after the last namespace: the next one has the same prefix.
  ASSERT_EQ(sim({"create", "b", "--mode", "private"}).exit_code, 0);
  EXPECT_EQ(addresses(info("b"))[1].substr(0, pool.size() - 5), pool.substr(0, pool.size() - 5));
}

TEST_F(DualStackTest, Ipv4OnlyNamespacesSayWhy) {
  ASSERT_EQ(sim({"create", "v4", "--mode", "private", "--no-ipv6"}).exit_code, 0);
  EXPECT_EQ(info("v4")["ipv4_only"], "--no-ipv6");
  EXPECT_EQ(addresses(info("v4")).size(), 1U);
  // A policy covers both families: the namespace stays dual-stack.
  ASSERT_EQ(sim({"create", "pol", "--mode", "private", "--egress", "deny"}).exit_code, 0);
  EXPECT_FALSE(info("pol").contains("ipv4_only"));
  EXPECT_EQ(addresses(info("pol")).size(), 2U);
  ASSERT_EQ(sim({"network", "create", "lan", "--subnet", "10.50.0.0/24"}).exit_code, 0);
  ASSERT_EQ(sim({"create", "br", "--network", "lan"}).exit_code, 0);
  EXPECT_EQ(info("br")["ipv4_only"], "network 'lan' has no IPv6 prefix (network create --subnet6)");
  EXPECT_FALSE(info("br").contains("gateway6"));
  // A dual-stack namespace keeps its IPv6 through a policy set and clear.
  ASSERT_EQ(sim({"create", "d", "--mode", "private"}).exit_code, 0);
  ASSERT_EQ(addresses(info("d")).size(), 2U);
  ASSERT_EQ(sim({"policy", "set", "d", "--egress", "deny"}).exit_code, 0);
  EXPECT_FALSE(info("d").contains("ipv4_only"));
  EXPECT_EQ(addresses(info("d")).size(), 2U);
  EXPECT_TRUE(info("d").contains("gateway6"));
  ASSERT_EQ(sim({"policy", "clear", "d"}).exit_code, 0);
  EXPECT_EQ(addresses(info("d")).size(), 2U);
  EXPECT_EQ(sim({"policy", "set", "v4", "--egress", "deny"}).exit_code, 0);
}

TEST_F(DualStackTest, StaticAddressesOncePerFamily) {
  const std::string pool = "fd00:1:2::/48";
  auto create = [&](const std::string& name, std::vector<std::string> ips) {
    std::vector<std::string> args{"--private-subnet6", pool, "create", name, "--mode", "private"};
    for (const auto& ip : ips) args.insert(args.end(), {"--ip", ip});
    return sim(args);
  };
  ASSERT_EQ(create("six", {"fd00:1:2:7::2/64"}).exit_code, 0);
  EXPECT_EQ(addresses(info("six")),
            (std::vector<std::string>{"10.209.0.30/30", "fd00:1:2:7::2/64"}));
  ASSERT_EQ(create("both", {"10.209.0.34/30", "fd00:1:2:8::2/64"}).exit_code, 0);
  EXPECT_EQ(addresses(info("both"))[1], "fd00:1:2:8::2/64");
  ASSERT_EQ(create("four", {"10.209.0.38/30"}).exit_code, 0);
  EXPECT_EQ(addresses(info("four"))[1], "fd00:1:2:9::2/64");
  const std::vector<std::string> before = records();
  struct Bad {
    std::vector<std::string> ips;
    int exit_code;
    const char* says;
  };
  for (const Bad& bad : std::vector<Bad>{
           {{"10.209.0.42/30", "10.209.0.46/30"}, 2, "one address per family"},
           {{"fd00:1:2:a::2/64", "fd00:1:2:b::2/64"}, 2, "one address per family"},
           {{"10.209.0.42/30", "fd00:1:2:b::2/64"}, 2, "not one namespace's addresses"},
           {{"fd00:1:2:c::3/64"}, 2, "not a usable IPv6 address"},
           {{"fd00:1:2:c::2/80"}, 2, "not a usable IPv6 address"},
           {{"fd00:9::2/64"}, 2, "not a usable IPv6 address"},
           {{"fd00:1:2:7::2/64"}, 1, "already"},
       }) {
    auto r = create("bad", bad.ips);
    EXPECT_EQ(r.exit_code, bad.exit_code) << bad.ips[0] << ": " << r.err;
    EXPECT_NE(r.err.find(bad.says), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  auto v4only =
      sim({"create", "bad", "--mode", "private", "--no-ipv6", "--ip", "fd00:1:2:c::2/64"});
  EXPECT_EQ(v4only.exit_code, 2);
  EXPECT_NE(v4only.err.find("IPv4-only (--no-ipv6)"), std::string::npos) << v4only.err;
  EXPECT_EQ(records(), before);
}

TEST_F(DualStackTest, ABadOrTooSmallPoolIsRefused) {
  for (const auto& [pool, says] :
       std::vector<std::pair<std::string, std::string>>{{"fd00:1::/56", "must be a /50 or shorter"},
                                                        {"10.1.0.0/16", "not an IPv6 prefix"},
                                                        {"fd00:1::1/48", "invalid subnet"},
                                                        {"nonsense", "invalid subnet"}}) {
    auto r = sim({"--private-subnet6", pool, "create", "a", "--mode", "private"});
    EXPECT_NE(r.exit_code, 0) << pool;
    EXPECT_NE(r.err.find(says), std::string::npos) << pool << ": " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_TRUE(records().empty());
  }
}

// Bridged dual stack: the IPv6 address at the IPv4 one's offset on the network's prefix, the
// bridge's first address as gateway, one claim for both (given back on destroy), static addresses
// per family, --no-ipv6, and a bad --subnet6 refused with one line and nothing made.
TEST_F(DualStackTest, BridgedNetworksWithASubnet6AreDualStack) {
  auto made = sim({"network", "create", "lan", "--subnet", "10.50.0.0/24", "--subnet6",
                   "fd00:50::/64", "--json"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  auto net = nlohmann::json::parse(made.out);
  EXPECT_EQ(net["subnet6"], "fd00:50::/64");
  EXPECT_EQ(net["gateway6"], "fd00:50::1");
  ASSERT_EQ(sim({"create", "a", "--network", "lan"}).exit_code, 0);
  ASSERT_EQ(sim({"create", "b", "--network", "lan"}).exit_code, 0);
  EXPECT_EQ(addresses(info("a")), (std::vector<std::string>{"10.50.0.2/24", "fd00:50::2/64"}));
  EXPECT_EQ(addresses(info("b")), (std::vector<std::string>{"10.50.0.3/24", "fd00:50::3/64"}));
  EXPECT_EQ(info("a")["gateway6"], "fd00:50::1");
  ASSERT_EQ(sim({"create", "v4", "--network", "lan", "--no-ipv6"}).exit_code, 0);
  EXPECT_EQ(addresses(info("v4")), (std::vector<std::string>{"10.50.0.4/24"}));
  EXPECT_EQ(info("v4")["ipv4_only"], "--no-ipv6");
  // Static: IPv6 alone names the IPv4 address at its offset; both must agree.
  ASSERT_EQ(sim({"create", "s", "--network", "lan", "--ip", "fd00:50::20/64"}).exit_code, 0);
  EXPECT_EQ(addresses(info("s")), (std::vector<std::string>{"10.50.0.32/24", "fd00:50::20/64"}));
  for (const auto& ip : {"fd00:50::1/64", "fd00:50::21/120", "fd00:51::21/64", "fd00:50::1:0/64"}) {
    auto r = sim({"create", "x", "--network", "lan", "--ip", ip});
    EXPECT_EQ(r.exit_code, 2) << ip;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  auto mismatch =
      sim({"create", "x", "--network", "lan", "--ip", "10.50.0.40/24", "--ip", "fd00:50::41/64"});
  EXPECT_NE(mismatch.err.find("goes with 10.50.0.65/24"), std::string::npos) << mismatch.err;
  // A destroyed namespace's one claim goes: the next one gets its addresses.
  ASSERT_EQ(sim({"destroy", "a"}).exit_code, 0);
  ASSERT_EQ(sim({"create", "c", "--network", "lan", "--ip", "fd00:50::2/64"}).exit_code, 0);
  EXPECT_EQ(addresses(info("c"))[0], "10.50.0.2/24");
  // A network without --subnet6 stays IPv4-only.
  ASSERT_EQ(sim({"network", "create", "v4net", "--subnet", "10.51.0.0/24"}).exit_code, 0);
  ASSERT_EQ(sim({"create", "d", "--network", "v4net"}).exit_code, 0);
  EXPECT_EQ(addresses(info("d")), (std::vector<std::string>{"10.51.0.2/24"}));
}

TEST_F(DualStackTest, ABadSubnet6IsRefusedAndMakesNothing) {
  ASSERT_EQ(
      sim({"network", "create", "lan", "--subnet", "10.50.0.0/24", "--subnet6", "fd00:50::/64"})
          .exit_code,
      0);
  ASSERT_EQ(
      sim({"--private-subnet6", "fd00:1:2::/48", "create", "p", "--mode", "private"}).exit_code, 0);
  for (const auto& [subnet6, says] : std::vector<std::pair<std::string, std::string>>{
           {"10.9.0.0/24", "not an IPv6 prefix"},
           {"fd00:60::/40", "prefix length must be 48 to 120"},
           {"fd00:60::/124", "prefix length must be 48 to 120"},
           {"fd00:60::/121", "prefix length must be 48 to 120"},
           {"fd00:60::1/64", "invalid subnet"},
           {"nonsense", "--subnet6"},
           {"fd00:50::/64", "overlaps network 'lan'"},
           {"fd00:50::/56", "overlaps network 'lan'"},
           {"fd00:1:2:3::/64", "overlaps network 'private'"}}) {
    auto r = sim({"network", "create", "bad", "--subnet", "10.60.0.0/16", "--subnet6", subnet6});
    EXPECT_NE(r.exit_code, 0) << subnet6;
    EXPECT_NE(r.err.find(says), std::string::npos) << subnet6 << ": " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_EQ(sim({"network", "list", "--json"}).out.find("\"bad\""), std::string::npos);
  }
  // Fewer IPv6 addresses than IPv4 ones.
  auto small =
      sim({"network", "create", "bad", "--subnet", "10.60.0.0/16", "--subnet6", "fd00:60::/120"});
  EXPECT_NE(small.err.find("must be a /112 or shorter"), std::string::npos) << small.err;
}

// The private IPv6 pool is refused where a bridged network's prefix is (checked when the first
// private namespace records it).
TEST_F(DualStackTest, APrivatePoolOverlappingABridgedPrefixIsRefused) {
  ASSERT_EQ(
      sim({"network", "create", "lan", "--subnet", "10.51.0.0/24", "--subnet6", "fd00:9:9:1::/64"})
          .exit_code,
      0);
  auto clash = sim({"--private-subnet6", "fd00:9:9::/48", "create", "q", "--mode", "private"});
  EXPECT_NE(clash.exit_code, 0);
  EXPECT_NE(clash.err.find("overlaps network 'lan'"), std::string::npos) << clash.err;
  EXPECT_EQ(std::count(clash.err.begin(), clash.err.end(), '\n'), 1) << clash.err;
  EXPECT_EQ(
      sim({"--private-subnet6", "fd00:9:8::/48", "create", "q", "--mode", "private"}).exit_code, 0);
}

}  // namespace
}  // namespace netcell
