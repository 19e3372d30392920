// Dual-stack private namespaces end to end: the IPv6 twins of network_test.cc's private tests,
// each in its own world whose "internet" (`wan`) has 2001:db8:1::2 and the world (the "host")
// 2001:db8:1::1. Results are read back with `ip -j`, `nft -j`, /proc/sys and real traffic.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "netcell/manager.h"
#include "support/net_helpers.h"
#include "support/process.h"

namespace netcell {
namespace {

using testing::cli;
using testing::fetch6;
using testing::info;
using testing::ip_json;
using testing::kernel_address6;
using testing::ping6;
using testing::run_in;
using testing::sh;
using testing::TcpResponder;
using testing::UdpRecorder;

constexpr char kWan6[] = "2001:db8:1::2";
constexpr char kHost6[] = "2001:db8:1::1";

std::string sysctl(const std::string& ns, const std::string& path) {
  auto r = ns.empty() ? sh("cat /proc/sys/" + path)
                      : sh("ip netns exec " + ns + " cat /proc/sys/" + path);
  return r.exit_code == 0 ? r.out : "(absent)";
}

// The elements of a set (or, with kind "map", a map) of `ip6 netcell`, as nft lists them (JSON
// text; "" when none or no such set).
std::string ip6_elements(const std::string& set, const std::string& kind = "set") {
  auto j =
      nlohmann::json::parse(sh("nft -j list " + kind + " ip6 netcell " + set).out, nullptr, false);
  if (j.is_discarded()) return "";
  for (const auto& item : j["nftables"]) {
    if (item.contains(kind) && item[kind].contains("elem")) return item[kind]["elem"].dump();
  }
  return "";
}

std::string ip6_map_elements(const std::string& map) {
  return ip6_elements(map, "map");
}

// What a UDP server at [ip]:port answered to "ping" from `ns` (the world when empty).
std::string ask_udp6(const std::string& ns, const std::string& ip, int port) {
  return run_in(ns, "echo ping | nc -6 -u -w 1 " + ip + " " + std::to_string(port));
}

// The pid netcell recorded for its host service (0 when none).
int service_pid() {
  std::ifstream in("/run/netcell/service.json");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto j = nlohmann::json::parse(text, nullptr, false);
  return j.is_object() ? j.value("pid", 0) : 0;
}

// Whether the host service says it relays namespace `name`'s [::1] publishes ("ok" in its
// answer file), waiting at most 5 s: create returns before the relay listens (manager.cc), so a
// test that goes to [::1] at once waits for this first. What the tests assert is the traffic.
bool relay_listens(const std::string& name) {
  for (int i = 0; i < 250; ++i) {
    std::ifstream answer("/run/netcell/relayed/" + name + ".answer");
    std::string line;
    if (std::getline(answer, line) && line == "ok") return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

// Whether namespace `ns` (the world when empty) has a route a router advertisement made.
bool ra_route(const std::string& ns) {
  std::vector<std::string> args{"-6", "route", "show"};
  if (!ns.empty()) args.insert(args.begin(), {"-n", ns});
  for (const auto& r : ip_json(args)) {
    if (r.value("protocol", "") == "ra") return true;
  }
  return false;
}

// Starts radvd (in namespace `ns`, the world when empty) advertising `prefix` and itself as a
// default router every 3 to 4 s on each of `devices`, its files at /run/radvd-TAG.{conf,pid,log}.
// stop_radvd(TAG) ends it.
void start_radvd(const std::string& tag, const std::string& ns,
                 const std::vector<std::string>& devices, const std::string& prefix) {
  const std::string base = "/run/radvd-" + tag;
  {
    std::ofstream conf(base + ".conf");
    for (const auto& dev : devices) {
      conf << "interface " << dev
           << " { AdvSendAdvert on; MinRtrAdvInterval 3; MaxRtrAdvInterval 4;\n"
              "  AdvDefaultLifetime 600;\n  prefix "
           << prefix << " { };\n};\n";
    }
  }
  auto radvd = sh((ns.empty() ? "" : "ip netns exec " + ns + " ") + "radvd -C " + base +
                  ".conf -p " + base + ".pid -m logfile -l " + base + ".log");
  ASSERT_EQ(radvd.exit_code, 0) << radvd.err;
}

// start_radvd, then up to 10 s for namespace `control` to take a route from it: the positive
// control, without which no advertisement reaching a namespace proves anything.
void run_radvd(const std::string& tag, const std::string& ns,
               const std::vector<std::string>& devices, const std::string& prefix,
               const std::string& control) {
  ASSERT_NO_FATAL_FAILURE(start_radvd(tag, ns, devices, prefix));
  bool taken = false;
  for (int i = 0; i < 100 && !(taken = ra_route(control)); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(taken) << "radvd configured nothing: this test proves nothing\n"
                     << sh("ip -n " + control + " -6 route; cat /run/radvd-" + tag + ".log").out;
}

void stop_radvd(const std::string& tag) {
  sh("kill $(cat /run/radvd-" + tag + ".pid); true");
}

class Ipv6Test : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::in_world()) GTEST_FAIL() << "run through tests/support/world.sh";
    ASSERT_EQ(testing::make_internet(), "");
    ASSERT_EQ(testing::make_internet6(), "");
  }
  void TearDown() override {
    for (const auto& ns : nlohmann::json::parse(cli({"list", "--json"}).out)) {
      cli({"destroy", ns["name"].get<std::string>()});
    }
    sh("ip -all netns delete; ip link del wan0 2>/dev/null; true");
  }
};

TEST_F(Ipv6Test, PrivateNamespaceIsDualStack) {
  auto made = cli({"create", "p", "--mode", "private"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  const auto j = info("p");
  const std::string host_if = j["host_interface"];
  const std::string gateway6 = j.value("gateway6", "");
  ASSERT_FALSE(gateway6.empty()) << j.dump();
  EXPECT_FALSE(j.contains("ipv4_only"));
  // The pool: a ULA /48 generated once and kept in the run dir; block 0 is its first /64.
  std::ifstream kept("/run/netcell/private-subnet6");
  std::string pool;
  ASSERT_TRUE(std::getline(kept, pool));
  ASSERT_EQ(pool.substr(0, 2), "fd") << pool;
  ASSERT_EQ(pool.substr(pool.size() - 5), "::/48") << pool;
  const std::string prefix = pool.substr(0, pool.size() - 5);  // "fdxx:xxxx:xxxx"
  EXPECT_EQ(gateway6, prefix + "::1");
  const std::string address6 = kernel_address6("p");
  EXPECT_EQ(address6, prefix + "::2");
  // The namespace end: its address (no DAD pending), no link-local address, the default route.
  auto addrs = ip_json({"-n", "p", "-6", "addr", "show", "dev", "eth0"});
  ASSERT_EQ(addrs.size(), 1U);
  ASSERT_EQ(addrs[0]["addr_info"].size(), 1U) << addrs.dump();
  EXPECT_EQ(addrs[0]["addr_info"][0]["prefixlen"], 64);
  EXPECT_FALSE(addrs[0]["addr_info"][0].contains("tentative")) << addrs.dump();
  auto routes = ip_json({"-n", "p", "-6", "route", "show", "default"});
  ASSERT_EQ(routes.size(), 1U) << routes.dump();
  EXPECT_EQ(routes[0]["gateway"], gateway6);
  // The gateway is not in the namespace's /64 (except in block 0's): a link route to it.
  auto to_gateway = ip_json({"-n", "p", "-6", "route", "show", gateway6 + "/128"});
  ASSERT_EQ(to_gateway.size(), 1U) << to_gateway.dump();
  EXPECT_EQ(to_gateway[0].value("dev", ""), "eth0");
  EXPECT_FALSE(to_gateway[0].contains("gateway"));
  // The host end: no IPv6 address; the namespace's /64 routed via the namespace end. The
  // gateway is the host's, on lo, one address for every namespace (no prefix route for it).
  auto host_addrs = ip_json({"-6", "addr", "show", "dev", host_if});
  EXPECT_TRUE(host_addrs.empty() || host_addrs[0]["addr_info"].empty()) << host_addrs.dump();
  bool on_lo = false;
  for (const auto& l : ip_json({"-6", "addr", "show", "dev", "lo"})) {
    for (const auto& a : l["addr_info"]) {
      if (a.value("local", "") != gateway6) continue;
      on_lo = a.value("prefixlen", 0) == 128 && a.value("noprefixroute", false);
    }
  }
  EXPECT_TRUE(on_lo) << ip_json({"-6", "addr", "show", "dev", "lo"}).dump();
  bool routed = false;
  for (const auto& r : ip_json({"-6", "route", "show", "dev", host_if})) {
    if (r.value("dst", "") == prefix + "::/64") routed = r.value("gateway", "") == address6;
  }
  EXPECT_TRUE(routed) << ip_json({"-6", "route", "show", "dev", host_if}).dump();
  // One IPv6 route of the host's per namespace, walked by every later create (the host end's
  // carrier coming up): that /64. No local route (no address), and the kernel's ff00::/8
  // multicast route of the host end is deleted (the link carries no neighbour discovery).
  auto all_routes = ip_json({"-6", "route", "show", "table", "all", "dev", host_if});
  std::vector<std::string> kinds;
  for (const auto& r : all_routes) {
    kinds.push_back(r.value("type", "unicast") + " " + r.value("dst", ""));
  }
  EXPECT_EQ(kinds, (std::vector<std::string>{"unicast " + prefix + "::/64"})) << all_routes.dump();
  // One MAC for both ends, the namespace end NOARP, and permanent neighbours both ways: the link
  // needs no neighbour discovery.
  auto host_link = ip_json({"link", "show", "dev", host_if});
  auto inner_link = ip_json({"-n", "p", "link", "show", "dev", "eth0"});
  ASSERT_EQ(host_link.size(), 1U);
  ASSERT_EQ(inner_link.size(), 1U);
  EXPECT_EQ(host_link[0]["address"], inner_link[0]["address"]);
  const auto& flags = inner_link[0]["flags"];
  EXPECT_NE(std::find(flags.begin(), flags.end(), "NOARP"), flags.end()) << inner_link.dump();
  auto host_neigh = ip_json({"-6", "neigh", "show", "dev", host_if});
  ASSERT_EQ(host_neigh.size(), 1U) << host_neigh.dump();
  EXPECT_EQ(host_neigh[0]["dst"], address6);
  EXPECT_EQ(host_neigh[0]["state"], nlohmann::json::array({"PERMANENT"}));
  auto inner_neigh = ip_json({"-n", "p", "-6", "neigh", "show", "dev", "eth0"});
  ASSERT_EQ(inner_neigh.size(), 1U) << inner_neigh.dump();
  EXPECT_EQ(inner_neigh[0]["dst"], gateway6);
  EXPECT_EQ(inner_neigh[0]["state"], nlohmann::json::array({"PERMANENT"}));
  // The host end takes no router advertisement; the host forwards IPv6. (None reaches the
  // namespace end either: ARouterAdvertisementOnTheHostEndNeverReachesTheNamespace.)
  EXPECT_EQ(sysctl("", "net/ipv6/conf/" + host_if + "/accept_ra"), "0\n");
  EXPECT_EQ(sysctl("", "net/ipv6/conf/all/forwarding"), "1\n");
  // Traffic both ways over the link.
  EXPECT_TRUE(ping6("", address6));
  EXPECT_TRUE(ping6("p", gateway6));
  // info, list and --json carry the address.
  bool listed = false;
  for (const auto& i : j["interfaces"]) {
    for (const auto& a : i["addresses"]) listed = listed || a == address6 + "/64";
  }
  EXPECT_TRUE(listed) << j.dump();
  EXPECT_NE(cli({"list"}).out.find(address6), std::string::npos);
  auto text = cli({"info", "p"}).out;
  EXPECT_NE(text.find("gateway6:   " + gateway6), std::string::npos) << text;
}

// The one IPv6 gateway (an address of the host's lo) serves every private namespace and goes
// with the last of them, as the other shared state does. A root workload that deletes its
// permanent neighbour entries still reaches it in both families (NOARP link, one MAC).
TEST_F(Ipv6Test, TheSharedIpv6GatewayGoesWithTheLastPrivateNamespace) {
  auto gateway_on_lo = [&](const std::string& gateway) {
    for (const auto& l : ip_json({"-6", "addr", "show", "dev", "lo"})) {
      for (const auto& a : l["addr_info"]) {
        if (a.value("local", "") == gateway) return true;
      }
    }
    return false;
  };
  ASSERT_EQ(cli({"create", "a", "--mode", "private"}).exit_code, 0);
  ASSERT_EQ(cli({"create", "b", "--mode", "private"}).exit_code, 0);
  const std::string gw6 = info("a")["gateway6"];
  const std::string gw4 = info("b")["gateway"];
  EXPECT_EQ(info("b")["gateway6"], gw6);
  ASSERT_TRUE(gateway_on_lo(gw6));
  ASSERT_EQ(sh("ip -n b neigh flush dev eth0 nud permanent").exit_code, 0);
  EXPECT_TRUE(sh("ip -n b neigh show dev eth0 nud permanent").out.empty());
  EXPECT_TRUE(ping6("b", gw6)) << "IPv6 to the gateway without b's permanent entries";
  EXPECT_EQ(sh("ip netns exec b ping -c1 -W2 " + gw4).exit_code, 0) << "IPv4 likewise";
  ASSERT_EQ(cli({"destroy", "a"}).exit_code, 0);
  EXPECT_TRUE(gateway_on_lo(gw6)) << "b still uses it";
  EXPECT_TRUE(ping6("b", gw6));
  ASSERT_EQ(cli({"destroy", "b"}).exit_code, 0);
  EXPECT_FALSE(gateway_on_lo(gw6)) << ip_json({"-6", "addr", "show", "dev", "lo"}).dump();
  EXPECT_NE(sh("ls /run/netcell/gateway6.added").exit_code, 0);
  // An IPv4-only namespace never adds it.
  ASSERT_EQ(cli({"create", "v4", "--mode", "private", "--no-ipv6"}).exit_code, 0);
  EXPECT_FALSE(gateway_on_lo(gw6));
}

// A long-lived process (the library in a daemon, the Python binding) whose namespaces another
// process destroyed, taking the host's shared state with the last of them (the IPv6 gateway on
// lo, forwarding, the firewall table): its next create puts all of it back, first time, as a
// new process would. Checked with /proc/sys, `ip -j`, `nft` and traffic in both families.
TEST_F(Ipv6Test, ALongLivedProcessCreatesAgainAfterAnotherReleasedTheSharedState) {
  TcpResponder web4("wan", "203.0.113.2", 8000, "v4\n");
  TcpResponder web6("wan", kWan6, 8000, "v6\n");
  ASSERT_TRUE(web4.ready() && web6.ready());
  auto mgr = NamespaceManager::create(ManagerOptions{});
  ASSERT_TRUE(mgr) << mgr.error().to_string();
  auto config = NamespaceConfig::private_network(0);
  config.name = "a";
  ASSERT_TRUE(mgr->create(config));
  const std::string gw6 = info("a")["gateway6"];
  ASSERT_EQ(fetch6("a", kWan6, 8000), "v6\n") << "the control, before";
  ASSERT_EQ(cli({"destroy", "a"}).exit_code, 0);  // another process, the last user
  ASSERT_EQ(sysctl("", "net/ipv4/ip_forward"), "0\n") << "released";
  ASSERT_EQ(sysctl("", "net/ipv6/conf/all/forwarding"), "0\n");
  ASSERT_NE(sh("nft list table ip netcell").exit_code, 0);
  config.name = "b";
  auto again = mgr->create(config);
  ASSERT_TRUE(again) << again.error().to_string();
  EXPECT_EQ(sysctl("", "net/ipv4/ip_forward"), "1\n");
  EXPECT_EQ(sysctl("", "net/ipv6/conf/all/forwarding"), "1\n");
  EXPECT_EQ(sh("ip -6 -o addr show dev lo | grep -c ' " + gw6 + "/128 '").out, "1\n");
  EXPECT_EQ(
      sh("nft list table ip netcell >/dev/null && nft list table ip6 netcell >/dev/null").exit_code,
      0);
  EXPECT_EQ(run_in("b", "nc -w 2 203.0.113.2 8000"), "v4\n");
  EXPECT_EQ(fetch6("b", kWan6, 8000), "v6\n");
  auto verified = mgr->verify("b");
  EXPECT_TRUE(verified) << verified.error().to_string();
  ASSERT_TRUE(mgr->destroy("b"));
  EXPECT_EQ(sysctl("", "net/ipv4/ip_forward"), "0\n") << "and the same process releases it";
  EXPECT_EQ(sh("ip -6 -o addr show dev lo | grep -c ' " + gw6 + "/128 '").out, "0\n");
}

TEST_F(Ipv6Test, Nat66ReachesTheInternetWithTheHostsAddress) {
  TcpResponder server("wan", kWan6, 8000, "hello over IPv6\n");
  ASSERT_TRUE(server.ready());
  ASSERT_EQ(cli({"create", "p", "--mode", "private"}).exit_code, 0);
  EXPECT_EQ(fetch6("p", kWan6, 8000), "hello over IPv6\n");
  ASSERT_EQ(server.peers().size(), 1U);
  EXPECT_EQ(server.peers()[0], kHost6) << "masqueraded, not " << kernel_address6("p");
  EXPECT_TRUE(ping6("p", kWan6));
  // Unsolicited traffic from the internet does not reach the namespace (wan is given a route to
  // the ULA pool through the host, so only the firewall stands in the way).
  TcpResponder inside("p", "::", 8001, "inside\n");
  ASSERT_TRUE(inside.ready());
  ASSERT_EQ(sh("ip -n wan -6 route add fc00::/7 via " + std::string(kHost6)).exit_code, 0);
  EXPECT_EQ(run_in("", "ip netns exec wan nc -6 -w 2 " + kernel_address6("p") + " 8001"), "");
  EXPECT_TRUE(inside.peers().empty());
  // Positive control: the host itself reaches the namespace's service.
  EXPECT_EQ(fetch6("", kernel_address6("p"), 8001), "inside\n");
}

// Packet too big: a smaller MTU on the way out reaches the namespace as an ICMPv6 error it acts on.
// With and without an egress policy (one that allows ICMPv6 to wan only).
TEST_F(Ipv6Test, PacketTooBigReachesTheNamespace) {
  ASSERT_EQ(cli({"create", "p", "--mode", "private"}).exit_code, 0);
  ASSERT_EQ(cli({"create", "pol", "--mode", "private", "--egress", "deny", "--allow",
                 std::string(kWan6) + "/icmp"})
                .exit_code,
            0);
  ASSERT_EQ(sh("ip link set wan0 mtu 1280 && ip -n wan link set eth0 mtu 1280").exit_code, 0);
  for (const char* ns : {"p", "pol"}) {
    ASSERT_TRUE(ping6(ns, kWan6)) << ns;
    // Too big for the uplink, with fragmentation forbidden: the host answers packet too big.
    EXPECT_NE(
        cli({"exec", ns, "--", "ping", "-6", "-c", "1", "-W", "1", "-M", "do", "-s", "1400", kWan6})
            .exit_code,
        0)
        << ns;
    auto route = ip_json({"-n", ns, "-6", "route", "get", kWan6});
    ASSERT_EQ(route.size(), 1U) << ns;
    int mtu = 0;
    for (const auto& metric : route[0].value("metrics", nlohmann::json::array())) {
      mtu = metric.value("mtu", mtu);
    }
    EXPECT_EQ(mtu, 1280) << ns << ": " << route.dump();
    // And the namespace then gets through with what fits.
    EXPECT_EQ(
        cli({"exec", ns, "--", "ping", "-6", "-c", "1", "-W", "1", "-s", "1400", kWan6}).exit_code,
        0)
        << ns;
  }
}

TEST_F(Ipv6Test, SpoofedSourceAddressesAreDropped) {
  ASSERT_EQ(cli({"create", "a", "--mode", "private"}).exit_code, 0);
  ASSERT_EQ(cli({"create", "b", "--mode", "private"}).exit_code, 0);
  TcpResponder internet("wan", kWan6, 9000, "wan\n");
  ASSERT_TRUE(internet.ready());
  const std::string own = kernel_address6("a");
  const std::string other = kernel_address6("b");
  // Root inside the namespace adds addresses it was not given: another of its /64, another
  // namespace's, a link-local one, a global one from elsewhere.
  const std::string mine_too = own.substr(0, own.size() - 1) + "99";
  for (const std::string& spoofed :
       {mine_too, other, std::string("fe80::99"), std::string("2001:db8:1::77")}) {
    ASSERT_EQ(sh("ip -n a addr add " + spoofed + "/128 dev eth0 nodad").exit_code, 0) << spoofed;
    if (spoofed.rfind("fe80", 0) == 0) continue;  // a link-local source cannot go far anyway
    EXPECT_EQ(fetch6("a", kWan6, 9000, spoofed), "") << "from " << spoofed;
    EXPECT_NE(cli({"exec", "a", "--", "ping", "-6", "-c", "1", "-W", "1", "-I", spoofed, kWan6})
                  .exit_code,
              0)
        << spoofed;
  }
  EXPECT_TRUE(internet.peers().empty());
  // Positive control: its own address still gets out.
  EXPECT_EQ(fetch6("a", kWan6, 9000, own), "wan\n");
}

TEST_F(Ipv6Test, NamespacesCannotReachEachOtherOrTheHostsServices) {
  ASSERT_EQ(cli({"create", "a", "--mode", "private"}).exit_code, 0);
  ASSERT_EQ(cli({"create", "b", "--mode", "private"}).exit_code, 0);
  const std::string b6 = kernel_address6("b");
  const std::string gw6 = info("a")["gateway6"];
  std::string wan0_ll;
  for (const auto& l : ip_json({"-6", "addr", "show", "dev", "wan0", "scope", "link"})) {
    for (const auto& a : l["addr_info"]) wan0_ll = a.value("local", "");
  }
  TcpResponder in_b("b", "::", 9000, "b\n");
  TcpResponder on_host("", "::", 9000, "host\n");
  TcpResponder host_loopback("", "::1", 9001, "loopback\n");
  TcpResponder internet("wan", kWan6, 9000, "wan\n");
  ASSERT_TRUE(in_b.ready() && on_host.ready() && host_loopback.ready() && internet.ready());
  // Controls: the internet is reachable from a, b's service and the host's from the host.
  ASSERT_EQ(fetch6("a", kWan6, 9000), "wan\n");
  ASSERT_EQ(fetch6("", b6, 9000), "b\n");
  ASSERT_EQ(fetch6("", "::1", 9001), "loopback\n");
  ASSERT_EQ(fetch6("", kHost6, 9000), "host\n");
  ASSERT_TRUE(ping6("a", gw6)) << "echo requests to the host end are allowed";
  const auto host_peers = on_host.peers().size();
  const auto b_peers = in_b.peers().size();
  int tried = 0;
  for (const auto& [ip, port] : std::vector<std::pair<std::string, int>>{
           {b6, 9000}, {gw6, 9000}, {kHost6, 9000}, {"::1", 9001}, {gw6, 9001}}) {
    ++tried;
    EXPECT_EQ(fetch6("a", ip, port), "") << "[" << ip << "]:" << port << " reached from a";
  }
  ++tried;
  EXPECT_FALSE(ping6("a", b6));
  // The host's link-local address on another link, asked for on a's own link: a has no
  // link-local address of its own, and one it adds is not its namespace's source.
  ASSERT_FALSE(wan0_ll.empty());
  ASSERT_EQ(sh("ip -n a addr add fe80::99/64 dev eth0 nodad").exit_code, 0);
  ++tried;
  EXPECT_EQ(fetch6("a", wan0_ll + "%eth0", 9000), "") << "link-local " << wan0_ll;
  ++tried;
  EXPECT_FALSE(ping6("a", "fe80::1%eth0")) << "the host end has no link-local address";
  EXPECT_EQ(tried, 8);
  EXPECT_EQ(in_b.peers().size(), b_peers);
  EXPECT_EQ(on_host.peers().size(), host_peers);
}

// A namespace's root sends router advertisements (radvd on its link, from a link-local address
// it adds itself): the host's routes and addresses stay as they were.
TEST_F(Ipv6Test, RouterAdvertisementsFromANamespaceChangeNothingOnTheHost) {
  ASSERT_EQ(cli({"create", "a", "--mode", "private"}).exit_code, 0);
  const std::string host_if = info("a")["host_interface"];
  const auto routes_before = ip_json({"-6", "route", "show"}).dump();
  const auto addrs_before = ip_json({"-6", "addr", "show", "scope", "global"}).dump();
  ASSERT_EQ(sh("ip -n a addr add fe80::99/64 dev eth0 nodad").exit_code, 0);
  {
    std::ofstream conf("/run/radvd-a.conf");
    conf << "interface eth0 { AdvSendAdvert on; MinRtrAdvInterval 3; MaxRtrAdvInterval 4;\n"
            "  AdvDefaultLifetime 1800;\n"
            "  prefix 2001:db8:66::/64 { AdvOnLink on; AdvAutonomous on; };\n"
            "  route 2001:db8:77::/48 { };\n};\n";
  }
  auto started =
      sh("ip netns exec a sysctl -qw net.ipv6.conf.all.forwarding=1 && "
         "ip netns exec a radvd -C /run/radvd-a.conf -p /run/radvd-a.pid -m logfile "
         "-l /run/radvd-a.log");
  ASSERT_EQ(started.exit_code, 0) << started.err;
  // radvd sends a few advertisements at start-up, a few seconds apart.
  std::this_thread::sleep_for(std::chrono::seconds(5));
  auto sent =
      sh("ip netns exec a cat /proc/net/snmp6 | awk '$1==\"Icmp6OutRouterAdvertisements\""
         "{print $2}'");
  sh("kill $(cat /run/radvd-a.pid) 2>/dev/null; true");
  EXPECT_GT(std::atoi(sent.out.c_str()), 0) << "radvd sent no advertisement: " << sent.err;
  EXPECT_EQ(ip_json({"-6", "route", "show"}).dump(), routes_before);
  EXPECT_EQ(ip_json({"-6", "addr", "show", "scope", "global"}).dump(), addrs_before);
  EXPECT_EQ(sh("ip -6 route show default").out.find(host_if), std::string::npos);
}

// Traffic to many unused addresses of a namespace's /64 (here from the host itself, which no
// firewall rule filters): the host resolves none of them, its neighbour table keeps the one
// permanent entry of the link.
TEST_F(Ipv6Test, NeighbourDiscoveryFloodDoesNotFillTheHostsTable) {
  ASSERT_EQ(cli({"create", "a", "--mode", "private"}).exit_code, 0);
  const std::string host_if = info("a")["host_interface"];
  const std::string own = kernel_address6("a");
  const std::string prefix = own.substr(0, own.size() - 1);  // "fdxx:...::"
  auto flood = [](const std::string& base) {
    // 200 UDP datagrams to 200 addresses, one process, bounded.
    return sh(
        "timeout 20 python3 -c 'import socket,sys\n"
        "s=socket.socket(socket.AF_INET6,socket.SOCK_DGRAM)\n"
        "s.setblocking(False)\n"
        "for i in range(256,456):\n"
        "  try: s.sendto(b\"x\",(sys.argv[1]+format(i,\"x\"),9))\n"
        "  except OSError: pass\n' " +
        base);
  };
  // Every state ("nud all"), so that entries without neighbour discovery (NOARP ones, which
  // `ip neigh` leaves out by default) count too: they take room in the host-wide table as
  // incomplete ones do.
  // Multicast entries (the host's own MLD reports out of the link) are not neighbours.
  auto entries = [](const std::string& dev) {
    std::size_t n = 0;
    for (const auto& e : ip_json({"-6", "neigh", "show", "nud", "all", "dev", dev})) {
      n += e.value("dst", "").rfind("ff", 0) == 0 ? 0 : 1;
    }
    return n;
  };
  ASSERT_EQ(flood(prefix).exit_code, 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(entries(host_if), 1U)
      << ip_json({"-6", "neigh", "show", "nud", "all", "dev", host_if}).dump();
  // Positive control: the same flood at a prefix on the link itself fills the table.
  ASSERT_EQ(sh("ip -6 route add fd99:99::/64 dev " + host_if).exit_code, 0);
  ASSERT_EQ(flood("fd99:99::").exit_code, 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_GT(entries(host_if), 50U);
  sh("ip -6 route del fd99:99::/64 dev " + host_if + "; ip -6 neigh flush dev " + host_if);
}

TEST_F(Ipv6Test, DualStackAndIpv4OnlySideBySide) {
  ASSERT_EQ(cli({"create", "d", "--mode", "private"}).exit_code, 0);
  auto v4 = cli({"create", "v4", "--mode", "private", "--no-ipv6"});
  ASSERT_EQ(v4.exit_code, 0) << v4.err;
  const auto jv4 = info("v4");
  EXPECT_EQ(jv4.value("ipv4_only", ""), "--no-ipv6");
  EXPECT_FALSE(jv4.contains("gateway6"));
  EXPECT_NE(cli({"info", "v4"}).out.find("ipv6:       none (--no-ipv6)"), std::string::npos);
  EXPECT_EQ(kernel_address6("v4"), "");
  EXPECT_TRUE(ip_json({"-n", "v4", "-6", "route", "show"}).empty());
  const std::string v4_if = jv4["host_interface"];
  const std::string d_if = info("d")["host_interface"];
  EXPECT_EQ(sysctl("", "net/ipv6/conf/" + v4_if + "/disable_ipv6"), "1\n");
  EXPECT_EQ(sysctl("", "net/ipv6/conf/" + d_if + "/disable_ipv6"), "0\n");
  EXPECT_EQ(ip6_elements("ns_ifs6"), "[\"" + d_if + "\"]");
  TcpResponder server6("wan", kWan6, 8000, "six\n");
  TcpResponder server4("wan", "203.0.113.2", 8000, "four\n");
  ASSERT_TRUE(server6.ready() && server4.ready());
  EXPECT_EQ(fetch6("d", kWan6, 8000), "six\n");
  EXPECT_EQ(run_in("d", "nc -w 2 203.0.113.2 8000 </dev/null"), "four\n");
  EXPECT_EQ(run_in("v4", "nc -w 2 203.0.113.2 8000 </dev/null"), "four\n");
  EXPECT_EQ(fetch6("v4", kWan6, 8000), "");
  EXPECT_EQ(server6.peers().size(), 1U);
}

// What a dual-stack namespace adds on the host (addresses, routes, neighbours, firewall elements,
// sysctls) is gone after its destroy, and the last destroy restores IPv6 forwarding.
TEST_F(Ipv6Test, DestroyLeavesNoIpv6Behind) {
  auto snapshot = [] {
    return ip_json({"-6", "addr"}).dump() + "\n" + ip_json({"-6", "route"}).dump() + "\n" +
           sh("ip -6 neigh show nud permanent").out + sh("nft list tables").out +
           sysctl("", "net/ipv6/conf/all/forwarding") +
           sysctl("", "net/ipv6/conf/default/accept_ra") +
           sysctl("", "net/ipv6/conf/wan0/accept_ra");
  };
  const std::string before = snapshot();
  ASSERT_EQ(cli({"create", "a", "--mode", "private"}).exit_code, 0);
  ASSERT_EQ(cli({"create", "b", "--mode", "private"}).exit_code, 0);
  EXPECT_NE(snapshot(), before);
  const std::string a_if = info("a")["host_interface"];
  ASSERT_EQ(cli({"destroy", "a"}).exit_code, 0);
  EXPECT_EQ(ip6_elements("ns_ifs6").find(a_if), std::string::npos);
  EXPECT_EQ(ip6_elements("src_ok6").find(a_if), std::string::npos);
  ASSERT_EQ(cli({"destroy", "b"}).exit_code, 0);
  std::string after;
  for (int i = 0; i < 30 && (after = snapshot()) != before; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // veths are freed async
  }
  EXPECT_EQ(after, before);
  EXPECT_NE(sh("nft list table ip6 netcell").exit_code, 0);
}

// Egress policies cover both families (policy6_test.cc for what they allow): a namespace made
// with a policy is dual-stack, and a dual-stack one keeps its IPv6 through policy set and clear.
TEST_F(Ipv6Test, PolicyNamespacesStayDualStack) {
  auto pol = cli({"create", "pol", "--mode", "private", "--egress", "deny", "--allow",
                  std::string(kWan6) + "/icmp"});
  ASSERT_EQ(pol.exit_code, 0) << pol.err;
  EXPECT_FALSE(info("pol").contains("ipv4_only")) << info("pol").dump();
  EXPECT_FALSE(kernel_address6("pol").empty());
  EXPECT_TRUE(ping6("pol", kWan6));
  EXPECT_FALSE(ping6("pol", kHost6)) << "the host is not allowed";
  ASSERT_EQ(cli({"create", "d", "--mode", "private"}).exit_code, 0);
  const std::string d6 = kernel_address6("d");
  ASSERT_TRUE(ping6("d", kWan6)) << "positive control: dual-stack before its policy";
  auto set = cli({"policy", "set", "d", "--egress", "allow"});
  ASSERT_EQ(set.exit_code, 0) << set.err;
  EXPECT_FALSE(info("d").contains("ipv4_only"));
  EXPECT_TRUE(info("d").contains("gateway6"));
  EXPECT_EQ(kernel_address6("d"), d6);
  EXPECT_NE(ip6_elements("ns_ifs6"), "");
  EXPECT_NE(ip6_elements("pol6_ns").find(d6), std::string::npos) << ip6_elements("pol6_ns");
  EXPECT_TRUE(ping6("d", kWan6)) << "an allow default holds for IPv6";
  set = cli({"policy", "set", "d", "--egress", "deny"});
  ASSERT_EQ(set.exit_code, 0) << set.err;
  EXPECT_FALSE(ping6("d", kWan6)) << "a deny default holds for IPv6";
  ASSERT_EQ(cli({"policy", "clear", "d"}).exit_code, 0);
  EXPECT_EQ(ip6_elements("pol6_ns").find(d6), std::string::npos);
  EXPECT_TRUE(ping6("d", kWan6));
}

// A host with IPv6 disabled (here the world's): private namespaces are IPv4-only, and doctor and
// info say why.
TEST_F(Ipv6Test, AHostWithoutIpv6GivesIpv4OnlyNamespaces) {
  ASSERT_EQ(sh("sysctl -qw net.ipv6.conf.all.disable_ipv6=1").exit_code, 0);
  auto made = cli({"create", "p", "--mode", "private"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  const std::string why = info("p").value("ipv4_only", "");
  EXPECT_NE(why.find("the host has IPv6 disabled"), std::string::npos) << why;
  EXPECT_EQ(kernel_address6("p"), "");
  auto doctor = cli({"doctor"});
  EXPECT_NE(doctor.out.find("the host has IPv6 disabled"), std::string::npos) << doctor.out;
  EXPECT_EQ(run_in("p", "nc -w 2 203.0.113.2 9 </dev/null; echo reached"), "reached\n");
  ASSERT_EQ(cli({"destroy", "p"}).exit_code, 0);
  ASSERT_EQ(sh("sysctl -qw net.ipv6.conf.all.disable_ipv6=0").exit_code, 0);
  auto doctor6 = cli({"doctor"});
  EXPECT_NE(doctor6.out.find("private namespaces are dual-stack"), std::string::npos)
      << doctor6.out;
}

// Host safety: turning IPv6 forwarding on deletes every default route learned from a router
// advertisement, and stops taking new ones, on links with accept_ra=1 (the kernel's
// rt6_purge_dflt_routers; checked below as the positive control). The world's uplink `up0` gets
// its IPv6 default route from radvd in an "upstream router" namespace: it survives creates and
// destroys, and after the last destroy every setting netcell changed is as it was.
TEST_F(Ipv6Test, TheHostKeepsItsRouterAdvertisedDefaultRoute) {
  ASSERT_EQ(sh("ip -6 route del default via " + std::string(kWan6)).exit_code, 0);
  auto up =
      sh("ip netns add rtr && ip link add up0 type veth peer name eth0 netns rtr && "
         "ip link set up0 up && ip -n rtr link set lo up && ip -n rtr link set eth0 up && "
         "ip -n rtr addr add 2001:db8:2::1/64 dev eth0 nodad && "
         "ip netns exec rtr sysctl -qw net.ipv6.conf.all.forwarding=1");
  ASSERT_EQ(up.exit_code, 0) << up.err;
  ASSERT_NO_FATAL_FAILURE(start_radvd("rtr", "rtr", {"eth0"}, "2001:db8:2::/64"));
  auto ra_default = [] {
    for (const auto& r : ip_json({"-6", "route", "show", "default"})) {
      if (r.value("dev", "") == "up0" && r.value("protocol", "") == "ra") return true;
    }
    return false;
  };
  bool learned = false;
  for (int i = 0; i < 100 && !(learned = ra_default()); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ASSERT_TRUE(learned) << "no default route from radvd: " << sh("ip -6 route").out;
  ASSERT_EQ(sysctl("", "net/ipv6/conf/up0/accept_ra"), "1\n");
  ASSERT_EQ(sysctl("", "net/ipv6/conf/all/forwarding"), "0\n");
  // What the kernel does, without netcell (the positive control): forwarding on deletes the
  // route at once, and no advertisement brings it back while forwarding stays on.
  ASSERT_EQ(sh("sysctl -qw net.ipv6.conf.all.forwarding=1").exit_code, 0);
  EXPECT_FALSE(ra_default()) << "the kernel kept the route: this test proves nothing";
  std::this_thread::sleep_for(std::chrono::seconds(5));  // more than one advertisement interval
  EXPECT_FALSE(ra_default()) << "advertisements are taken with forwarding on and accept_ra=1";
  ASSERT_EQ(sh("sysctl -qw net.ipv6.conf.all.forwarding=0").exit_code, 0);
  for (int i = 0; i < 100 && !(learned = ra_default()); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(learned) << "the route did not come back after forwarding went off";
  const std::string default_ra = sysctl("", "net/ipv6/conf/default/accept_ra");

  ASSERT_EQ(cli({"create", "p", "--mode", "private"}).exit_code, 0);
  EXPECT_EQ(sysctl("", "net/ipv6/conf/all/forwarding"), "1\n");
  EXPECT_EQ(sysctl("", "net/ipv6/conf/up0/accept_ra"), "2\n") << "RAs still taken";
  EXPECT_TRUE(ra_default()) << "forwarding on deleted the RA default route";
  ASSERT_EQ(cli({"create", "q", "--mode", "private"}).exit_code, 0);
  ASSERT_EQ(cli({"destroy", "p"}).exit_code, 0);
  // A few advertisements later (at most 4 s apart) it is still there, refreshed.
  std::this_thread::sleep_for(std::chrono::seconds(5));
  EXPECT_TRUE(ra_default());
  ASSERT_EQ(cli({"destroy", "q"}).exit_code, 0);
  EXPECT_TRUE(ra_default());
  EXPECT_EQ(sysctl("", "net/ipv6/conf/all/forwarding"), "0\n");
  EXPECT_EQ(sysctl("", "net/ipv6/conf/up0/accept_ra"), "1\n");
  EXPECT_EQ(sysctl("", "net/ipv6/conf/default/accept_ra"), default_ra);
  EXPECT_NE(sh("ls /run/netcell/accept_ra.saved").exit_code, 0);
  stop_radvd("rtr");
}

// A router advertisement daemon on the host that serves every link (here radvd on the namespace's
// host end, given a link-local address as such a daemon needs) configures nothing inside: the ip6
// table drops advertisements toward netcell's links. The namespace's own accept_ra is left as the
// kernel made it (netns.cc says why). Positive control: the same radvd, on a plain veth into a
// plain namespace whose end is set up like netcell's (no link-local address), gives it a default
// route.
TEST_F(Ipv6Test, ARouterAdvertisementOnTheHostEndNeverReachesTheNamespace) {
  ASSERT_EQ(cli({"create", "p", "--mode", "private"}).exit_code, 0);
  const std::string host_if = info("p")["host_interface"];
  auto up =
      sh("ip addr add fe80::1/64 dev " + host_if +
         " nodad && ip netns add ctl && ip link add rav0 type veth peer name eth0 netns ctl && "
         "ip addr add fe80::1/64 dev rav0 nodad && ip link set rav0 up && "
         "ip -n ctl link set eth0 addrgenmode none && ip -n ctl link set eth0 up");
  ASSERT_EQ(up.exit_code, 0) << up.err;
  ASSERT_NO_FATAL_FAILURE(run_radvd("host", "", {host_if, "rav0"}, "2001:db8:77::/64", "ctl"));
  std::this_thread::sleep_for(std::chrono::seconds(5));  // more than one advertisement interval
  EXPECT_FALSE(ra_route("p")) << sh("ip -n p -6 route").out;
  EXPECT_EQ(sh("ip -n p -6 addr show; ip -n p -6 route show").out.find("2001:db8:77"),
            std::string::npos);
  stop_radvd("host");
}

// A namespace that is root in itself sends router advertisements from its bridge port (radvd on
// its eth0): its peers on the bridge take nothing from them — no route, no address — though
// their eth0 would accept one. The control: the same radvd's advertisements on a plain veth out
// of that namespace configure the namespace at its other end. (Bridged networks are IPv4-only:
// the bridge table passes only IPv4 and ARP from a port. Flushing netcell's bridge chains in a
// world did not let IPv6 across either, for a reason not found yet; this test guards the day a
// bridged network carries IPv6.)
TEST_F(Ipv6Test, ARouterAdvertisementFromABridgedPeerNeverReachesTheOthers) {
  ASSERT_EQ(cli({"network", "create", "lab", "--subnet", "10.50.0.0/24"}).exit_code, 0);
  for (const char* ns : {"b1", "b2"}) {
    ASSERT_EQ(cli({"create", ns, "--network", "lab"}).exit_code, 0) << ns;
  }
  auto up =
      sh("ip -n b1 addr add fe80::1/64 dev eth0 nodad && ip netns add ctl && "
         "ip -n b1 link add rav0 type veth peer name eth0 netns ctl && "
         "ip -n b1 addr add fe80::1/64 dev rav0 nodad && ip -n b1 link set rav0 up && "
         "ip -n ctl link set eth0 addrgenmode none && ip -n ctl link set eth0 up && "
         "ip netns exec b1 sysctl -qw net.ipv6.conf.all.forwarding=1");
  ASSERT_EQ(up.exit_code, 0) << up.err;
  ASSERT_NO_FATAL_FAILURE(run_radvd("b1", "b1", {"eth0", "rav0"}, "2001:db8:78::/64", "ctl"));
  EXPECT_EQ(sh("ip netns exec b2 cat /proc/sys/net/ipv6/conf/eth0/accept_ra").out, "1\n")
      << "b2 would take an advertisement that reached it";
  std::this_thread::sleep_for(std::chrono::seconds(5));  // more than one advertisement interval
  EXPECT_FALSE(ra_route("b2")) << sh("ip -n b2 -6 route").out;
  EXPECT_EQ(sh("ip -n b2 -6 addr show; ip -n b2 -6 route show").out.find("2001:db8:78"),
            std::string::npos);
  EXPECT_FALSE(ra_route("")) << "nor does the host";
  stop_radvd("b1");
}

TEST_F(Ipv6Test, APrivateSubnet6OptionIsValidatedAndUsed) {
  cli({"list"});  // the run dir as any command leaves it
  const std::string state = sh("ls /run/netcell; nft list tables").out;
  for (const char* bad : {"fd00:1::/56", "10.1.0.0/16", "fd00:1::1/48", "nonsense"}) {
    auto r = cli({"--private-subnet6", bad, "create", "p", "--mode", "private"});
    EXPECT_NE(r.exit_code, 0) << bad;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_EQ(sh("ls /run/netcell; nft list tables").out, state) << bad;
  }
  // A pool the host already routes somewhere (its uplink's prefix, or a route of its own) is
  // refused as an IPv4 pool is.
  ASSERT_EQ(sh("ip -6 route add 2001:db8:77::/48 dev wan0").exit_code, 0);
  for (const char* routed : {"2001:db8:77::/48", "2001:db8:1::/48"}) {
    auto r = cli({"--private-subnet6", routed, "create", "p", "--mode", "private"});
    EXPECT_EQ(r.exit_code, 1) << routed;
    EXPECT_NE(r.err.find("overlaps the host route to 2001:db8:"), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_EQ(sh("ls /run/netcell; nft list tables").out, state) << routed;
  }
  auto made = cli({"--private-subnet6", "2001:db8:aa::/48", "create", "p", "--mode", "private"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  EXPECT_EQ(kernel_address6("p"), "2001:db8:aa::2");
  // A routable pool is routed, not masqueraded: wan sees the namespace's own address.
  ASSERT_EQ(sh("ip -n wan -6 route add 2001:db8:aa::/48 via " + std::string(kHost6)).exit_code, 0);
  TcpResponder server("wan", kWan6, 8000, "routed\n");
  ASSERT_TRUE(server.ready());
  EXPECT_EQ(fetch6("p", kWan6, 8000), "routed\n");
  EXPECT_EQ(server.peers(), std::vector<std::string>{"2001:db8:aa::2"});
  EXPECT_EQ(ip6_elements("nat_src6"), "");
}

// The IPv6 twin of network_test.cc's PublishedPortIsReachableFromEverywhere: a publish with no
// host address covers both families; over IPv6 it is reached at [::1] (through the host service's
// relay), at the host's global address, from another host, by hairpin (via the gateway and via
// the host's address) and from another namespace.
TEST_F(Ipv6Test, PublishedPortIsReachableOverIpv6FromEverywhere) {
  auto r = cli({"create", "web", "--mode", "private", "--publish", "8080:80"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string body = "hello from web\n";
  TcpResponder http("web", "::", 80, body);
  ASSERT_TRUE(http.ready());
  const std::string gw6 = info("web")["gateway6"];
  const std::string web6 = kernel_address6("web");
  ASSERT_TRUE(relay_listens("web"));
  EXPECT_EQ(fetch6("", "::1", 8080), body) << "from the host's [::1]";
  EXPECT_EQ(fetch6("", kHost6, 8080), body) << "from the host at its own address";
  EXPECT_EQ(run_in("", "ip netns exec wan nc -6 -w 2 " + std::string(kHost6) + " 8080 </dev/null"),
            body)
      << "from another host";
  EXPECT_EQ(fetch6("web", gw6, 8080), body) << "hairpin via the gateway";
  EXPECT_EQ(fetch6("web", kHost6, 8080), body) << "hairpin via the host address";
  ASSERT_EQ(cli({"create", "other", "--mode", "private"}).exit_code, 0);
  const std::string other6 = kernel_address6("other");
  EXPECT_EQ(fetch6("other", kHost6, 8080), body) << "from another namespace";
  EXPECT_EQ(run_in("", "nc -4 -w 2 127.0.0.1 8080 </dev/null"), body) << "and IPv4 still";
  // What the namespace sees: the relay's connections come from its gateway (the kernel sends
  // nothing from ::1 off the loopback device); DNAT keeps every other client's address but the
  // hairpin's, which is masqueraded to the gateway.
  const std::vector<std::string> want{gw6, kHost6, kWan6, gw6, gw6, other6, "::ffff:10.209.0.1"};
  EXPECT_EQ(http.peers(), want);
  // The kernel's view: one element per family, not a rule.
  EXPECT_NE(ip6_map_elements("pf6_tcp").find(web6), std::string::npos)
      << ip6_map_elements("pf6_tcp");
  EXPECT_NE(sh("nft list chain ip6 netcell dnat_pre6").out.find("@pf6_tcp"), std::string::npos);
  // Unpublished ports stay closed, from the host and from the internet (given a route).
  TcpResponder hidden("web", "::", 81, "hidden\n");
  ASSERT_TRUE(hidden.ready());
  ASSERT_EQ(sh("ip -n wan -6 route add fc00::/7 via " + std::string(kHost6)).exit_code, 0);
  EXPECT_EQ(fetch6("", kHost6, 81), "");
  EXPECT_EQ(fetch6("", "::1", 81), "");
  EXPECT_EQ(run_in("", "ip netns exec wan nc -6 -w 1 " + web6 + " 81 </dev/null"), "");
  EXPECT_TRUE(hidden.peers().empty());
}

// The same over UDP: answers come back through the relay and the DNAT alike.
TEST_F(Ipv6Test, PublishedUdpPortAnswersOverIpv6) {
  auto r = cli({"create", "dns", "--mode", "private", "--publish", "5300:53/udp"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  UdpRecorder server("dns", "::", 53, "pong\n");
  ASSERT_TRUE(server.ready());
  const std::string gw6 = info("dns")["gateway6"];
  ASSERT_EQ(cli({"create", "other", "--mode", "private"}).exit_code, 0);
  ASSERT_TRUE(relay_listens("dns"));
  EXPECT_EQ(ask_udp6("", "::1", 5300), "pong\n") << "from the host's [::1]";
  EXPECT_EQ(ask_udp6("", kHost6, 5300), "pong\n") << "from the host at its own address";
  EXPECT_EQ(
      run_in("", "echo ping | ip netns exec wan nc -6 -u -w 1 " + std::string(kHost6) + " 5300"),
      "pong\n")
      << "from another host";
  EXPECT_EQ(ask_udp6("dns", kHost6, 5300), "pong\n") << "hairpin";
  EXPECT_EQ(ask_udp6("other", kHost6, 5300), "pong\n") << "from another namespace";
  std::vector<std::string> sources;
  for (const auto& line : server.records()) sources.push_back(line.substr(0, line.find(' ')));
  const std::vector<std::string> want{gw6, kHost6, kWan6, gw6, kernel_address6("other")};
  EXPECT_EQ(sources, want);
  EXPECT_NE(ip6_map_elements("pf6_udp"), "");
}

// A host address names one address: [2001:db8:1::1] only that one (a DNAT element by address and
// port), [::1] only the host's loopback (the relay, no element), [::] every IPv6 address, [::1]
// included; none of them IPv4.
TEST_F(Ipv6Test, Ipv6HostAddressPublishingBindsOnlyThatAddress) {
  const std::string global = std::string("[") + kHost6 + "]:8081:80";
  ASSERT_EQ(cli({"create", "g", "--mode", "private", "--publish", global}).exit_code, 0);
  ASSERT_EQ(cli({"create", "l", "--mode", "private", "--publish", "[::1]:8082:80"}).exit_code, 0);
  ASSERT_EQ(cli({"create", "a", "--mode", "private", "--publish", "[::]:8083:80"}).exit_code, 0);
  TcpResponder g("g", "::", 80, "g\n"), l("l", "::", 80, "l\n"), a("a", "::", 80, "a\n");
  ASSERT_TRUE(g.ready() && l.ready() && a.ready());
  ASSERT_TRUE(relay_listens("l") && relay_listens("a"));
  const std::string wan = "ip netns exec wan nc -6 -w 1 " + std::string(kHost6) + " ";
  EXPECT_EQ(fetch6("", kHost6, 8081), "g\n");
  EXPECT_EQ(run_in("", wan + "8081 </dev/null"), "g\n");
  EXPECT_EQ(fetch6("", "::1", 8081), "");
  EXPECT_EQ(run_in("", "nc -4 -w 1 127.0.0.1 8081 </dev/null"), "");
  EXPECT_EQ(fetch6("", "::1", 8082), "l\n");
  EXPECT_EQ(fetch6("", kHost6, 8082), "");
  EXPECT_EQ(run_in("", wan + "8082 </dev/null"), "");
  EXPECT_EQ(run_in("", "nc -4 -w 1 127.0.0.1 8082 </dev/null"), "");
  EXPECT_EQ(fetch6("", kHost6, 8083), "a\n");
  EXPECT_EQ(fetch6("", "::1", 8083), "a\n");
  EXPECT_EQ(run_in("", "nc -4 -w 1 127.0.0.1 8083 </dev/null"), "");
  EXPECT_NE(ip6_map_elements("pf6_tcp_ip").find(kHost6), std::string::npos);
  auto by_port = nlohmann::json::parse(ip6_map_elements("pf6_tcp"), nullptr, false);
  ASSERT_TRUE(by_port.is_array()) << ip6_map_elements("pf6_tcp");
  EXPECT_EQ(by_port.size(), 1U) << by_port.dump();  // [::]:8083 only; [::1] has none
  // The ip table has none of them.
  EXPECT_EQ(testing::nft_sets("pf_tcp").dump().find("8081"), std::string::npos);
  // An IPv4-only namespace cannot publish on an IPv6 address: one line, nothing made.
  auto v4 = cli({"create", "v4", "--mode", "private", "--no-ipv6", "--publish", "[::1]:8084:80"});
  EXPECT_NE(v4.exit_code, 0);
  EXPECT_EQ(std::count(v4.err.begin(), v4.err.end(), '\n'), 1) << v4.err;
  EXPECT_NE(v4.err.find("IPv4-only"), std::string::npos) << v4.err;
  EXPECT_FALSE(cli({"info", "v4"}).exit_code == 0);
}

// A host port on [::1] that another program holds: the create fails with one line and leaves
// nothing (no namespace, link, port claim or element); the same create works once it is free.
// netcell's own claims: [::] conflicts with an IPv6 address on the same port, not with IPv4.
TEST_F(Ipv6Test, ATakenIpv6LoopbackPortFailsCleanly) {
  cli({"list"});
  auto state = [] {
    return sh("ls /run/netcell/ports 2>/dev/null; ip -all netns list; ip -o link | grep -c ncp; "
              "nft list map ip6 netcell pf6_tcp 2>/dev/null | grep -c :; "
              "nft list map ip netcell pf_tcp 2>/dev/null | grep -c :")
        .out;
  };
  const std::string before = state();
  {
    TcpResponder squatter("", "::1", 8090, "squatter\n");
    ASSERT_TRUE(squatter.ready());
    auto r = cli({"create", "web", "--mode", "private", "--publish", "8090:80"});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find("[::1]:8090/tcp"), std::string::npos) << r.err;
    EXPECT_EQ(state(), before);
    EXPECT_NE(cli({"info", "web"}).exit_code, 0);
    EXPECT_EQ(fetch6("", "::1", 8090), "squatter\n") << "the program keeps its port";
  }
  {
    UdpRecorder squatter("", "::1", 5390);
    ASSERT_TRUE(squatter.ready());
    auto r = cli({"create", "dns", "--mode", "private", "--publish", "5390:53/udp"});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_EQ(state(), before);
  }
  // Positive control: free again, the same create works and serves [::1].
  auto made = cli({"create", "web", "--mode", "private", "--publish", "8090:80"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  TcpResponder http("web", "::", 80, "web\n");
  ASSERT_TRUE(http.ready());
  ASSERT_TRUE(relay_listens("web"));
  EXPECT_EQ(fetch6("", "::1", 8090), "web\n");
  ASSERT_EQ(cli({"create", "a", "--mode", "private", "--publish", "[::]:8091:80"}).exit_code, 0);
  const std::string global = std::string("[") + kHost6 + "]:8091:80";
  auto clash = cli({"create", "b", "--mode", "private", "--publish", global});
  EXPECT_NE(clash.exit_code, 0);
  EXPECT_NE(clash.err.find("already published by 'a'"), std::string::npos) << clash.err;
  auto v4 = cli({"create", "c", "--mode", "private", "--publish", "203.0.113.1:8091:80"});
  EXPECT_EQ(v4.exit_code, 0) << v4.err;
}

// The relay is the host service's: started with the first namespace that needs it (not for an
// IPv4-only one), started again from the records after it was killed, stopped with the last.
TEST_F(Ipv6Test, TheIpv6LoopbackRelayFollowsTheRecords) {
  ASSERT_EQ(
      cli({"create", "v4", "--mode", "private", "--no-ipv6", "--publish", "8070:80"}).exit_code, 0);
  EXPECT_EQ(service_pid(), 0) << "an IPv4-only publish needs no relay";
  ASSERT_EQ(cli({"create", "web", "--mode", "private", "--publish", "8080:80"}).exit_code, 0);
  TcpResponder http("web", "::", 80, "web\n");
  ASSERT_TRUE(http.ready());
  const int first = service_pid();
  ASSERT_GT(first, 0);
  ASSERT_TRUE(relay_listens("web"));
  EXPECT_EQ(fetch6("", "::1", 8080), "web\n");
  ASSERT_EQ(::kill(first, SIGKILL), 0);
  for (int i = 0; i < 50 && ::kill(first, 0) == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(fetch6("", "::1", 8080), "") << "nothing relays while no service runs";
  ASSERT_EQ(cli({"list"}).exit_code, 0);  // the next netcell command starts it again
  bool back = false;
  for (int i = 0; i < 50 && !back; ++i) {
    back = fetch6("", "::1", 8080) == "web\n";
    if (!back) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(back);
  const int second = service_pid();
  EXPECT_GT(second, 0);
  EXPECT_NE(second, first);
  ASSERT_EQ(cli({"destroy", "web"}).exit_code, 0);
  EXPECT_EQ(service_pid(), 0);
  for (int i = 0; i < 100 && ::kill(second, 0) == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_NE(::kill(second, 0), 0) << "the service is stopped with the last relayed namespace";
  EXPECT_EQ(fetch6("", "::1", 8080), "");
  EXPECT_NE(sh("ls /run/netcell/relayed").exit_code, 0) << "no marks directory without a mark";
  // Marks a kill could leave (one of a namespace gone, one of a namespace that needs no relay):
  // gc removes them and starts no service for them.
  ASSERT_EQ(sh("mkdir -p /run/netcell/relayed && touch /run/netcell/relayed/ghost.mark "
               "/run/netcell/relayed/v4.mark")
                .exit_code,
            0);
  auto gc = cli({"gc"});
  ASSERT_EQ(gc.exit_code, 0) << gc.err;
  EXPECT_NE(gc.out.find("ghost: [::1] relay mark"), std::string::npos) << gc.out;
  EXPECT_NE(gc.out.find("v4: [::1] relay mark"), std::string::npos) << gc.out;
  EXPECT_NE(sh("ls /run/netcell/relayed").exit_code, 0);
  EXPECT_EQ(service_pid(), 0);
}

// `info` says what the host service does with a namespace's [::1] publishes: listening (and the
// port answers, the control), failed with the reason when another program holds the port as the
// service starts (it was checked free at create; here the service is killed and a program takes
// the port before the next netcell command starts the service again), and nothing for a namespace
// with no relay.
TEST_F(Ipv6Test, InfoSaysWhetherTheIpv6LoopbackRelayListens) {
  ASSERT_EQ(cli({"create", "web", "--mode", "private", "--publish", "8081:80"}).exit_code, 0);
  ASSERT_EQ(
      cli({"create", "v4", "--mode", "private", "--no-ipv6", "--publish", "8082:80"}).exit_code, 0);
  TcpResponder http("web", "::", 80, "web\n");
  ASSERT_TRUE(http.ready());
  nlohmann::json relay;
  for (int i = 0; i < 250; ++i) {
    relay = info("web").value("loopback_relay", nlohmann::json());
    if (relay.value("state", "") == "listening") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(relay.value("state", ""), "listening") << relay.dump();
  ASSERT_EQ(relay["routes"].size(), 1u) << relay.dump();
  EXPECT_EQ(relay["routes"][0].value("listen", ""), "[::1]:8081/tcp");
  EXPECT_EQ(relay["routes"][0].value("target", ""),
            std::string("[") + kernel_address6("web") + "]:80");
  EXPECT_FALSE(relay.contains("error"));
  EXPECT_EQ(fetch6("", "::1", 8081), "web\n");
  auto text = cli({"info", "web"});
  EXPECT_NE(text.out.find("relay:      [::1]:8081/tcp listening"), std::string::npos) << text.out;
  EXPECT_FALSE(info("v4").contains("loopback_relay"));
  EXPECT_EQ(cli({"info", "v4"}).out.find("relay:"), std::string::npos);

  const int pid = service_pid();
  ASSERT_GT(pid, 0);
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  for (int i = 0; i < 50 && ::kill(pid, 0) == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  TcpResponder squatter("", "::1", 8081, "squatter\n");
  ASSERT_TRUE(squatter.ready());
  for (int i = 0; i < 250; ++i) {  // info itself starts the service again
    relay = info("web").value("loopback_relay", nlohmann::json());
    if (relay.value("state", "") == "failed") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(relay.value("state", ""), "failed") << relay.dump();
  EXPECT_NE(relay.value("error", "").find("[::1]:8081/tcp"), std::string::npos) << relay.dump();
  EXPECT_EQ(fetch6("", "::1", 8081), "squatter\n") << "the other program's port is left alone";
  text = cli({"info", "web"});
  EXPECT_EQ(text.exit_code, 0);
  EXPECT_NE(text.out.find("relay:      [::1]:8081/tcp failed: cannot listen on [::1]:8081/tcp"),
            std::string::npos)
      << text.out;
}

}  // namespace
}  // namespace netcell
