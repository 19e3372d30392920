// Dual-stack bridged networks (`network create --subnet6`) end to end: the IPv6 twins of
// network_test.cc's and escape_test.cc's bridged tests, each in its own world whose "internet"
// (`wan`) has 2001:db8:1::2 and the world (the "host") 2001:db8:1::1. Every result is read back
// with real traffic, `ip -j` and `nft -j`. The escape attempts count in the suite's tally as mode
// "bridged6" (escape_tally.h); each kind of attempt comes with a control that succeeds.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "support/escape_tally.h"
#include "support/net_helpers.h"
#include "support/process.h"

namespace netcell {
namespace {

using testing::cli;
using testing::fetch6;
using testing::info;
using testing::ip_json;
using testing::kernel_address6;
using testing::mac_of;
using testing::ping6;
using testing::run_in;
using testing::sh;
using testing::TcpResponder;
using testing::UdpRecorder;
using Strings = std::vector<std::string>;

constexpr char kWan6[] = "2001:db8:1::2";
constexpr char kHost6[] = "2001:db8:1::1";
constexpr char kMode[] = "bridged6";

// One UDP datagram "tag" from `ns` to [dst]:port, from source `src` (an address of the namespace).
void udp6(const std::string& ns, const std::string& src, const std::string& dst, int port,
          const std::string& tag) {
  run_in(ns, "echo " + tag + " | nc -6 -u -w 1 -s " + src + " " + dst + " " + std::to_string(port) +
                 " >/dev/null 2>&1; true");
}

// The MAC the neighbour table of `ns` (the world when empty) has for `address` ("" when none).
std::string neighbour_mac(const std::string& ns, const std::string& address) {
  Strings args{"-6", "neigh", "show", address};
  if (!ns.empty()) args.insert(args.begin(), {"-n", ns});
  for (const auto& n : ip_json(args)) return n.value("lladdr", "");
  return "";
}

// Sends COUNT unsolicited neighbour advertisements (override flag) from `ns`'s own address `src`
// claiming `target` is at `mac`, to all nodes and to `unicast`: ICMPv6 through a raw socket, hop
// limit 255 as ND requires. Bounded: COUNT <= 20.
void advertise(const std::string& ns, const std::string& src, const std::string& target,
               const std::string& mac, const std::string& unicast, int count = 5) {
  const std::string path = "/run/netcell-na.py";
  std::ofstream(path) << R"(import socket, struct, sys
src, target, mac, unicast, count = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 255)
index = socket.if_nametoindex("eth0")
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
s.bind((src, 0))
na = struct.pack("!BBHI16sBB6s", 136, 0, 0, 0x20000000, socket.inet_pton(socket.AF_INET6, target),
                 2, 1, bytes.fromhex(mac.replace(":", "")))
for _ in range(min(count, 20)):
    s.sendto(na, ("ff02::1", 0, 0, index))
    s.sendto(na, (unicast, 0, 0, index))
)";
  sh("ip netns exec " + ns + " timeout 5 python3 " + path + " " + src + " " + target + " " + mac +
     " " + unicast + " " + std::to_string(count));
}

void settle() {
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
}

bool heard(const UdpRecorder& r, const std::string& tag) {
  for (const auto& line : r.records()) {
    if (line.find(tag) != std::string::npos) return true;
  }
  return false;
}

// n1 and n2 on `lan` (10.50.0.0/24, fd00:50::/64, --nat), o1 on `out` (fd00:51::/64, no NAT), h1
// on `mgmt` (fd00:52::/64, --host-access), p private (dual stack).
class Bridged6Test : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    if (!testing::in_world()) GTEST_FAIL() << "run through tests/support/world.sh";
    ASSERT_EQ(testing::make_internet(), "");
    ASSERT_EQ(testing::make_internet6(), "");
    // Isolation must not depend on whether bridged frames pass the IP hooks (br_netfilter).
    for (const char* family : {"iptables", "ip6tables"}) {
      ASSERT_EQ(
          sh(std::string("echo ") + GetParam() + " > /proc/sys/net/bridge/bridge-nf-call-" + family)
              .exit_code,
          0);
    }
    for (const Strings& args :
         {Strings{"network", "create", "lan", "--subnet", "10.50.0.0/24", "--subnet6",
                  "fd00:50::/64", "--nat"},
          Strings{"network", "create", "out", "--subnet", "10.51.0.0/24", "--subnet6",
                  "fd00:51::/64"},
          Strings{"network", "create", "mgmt", "--subnet", "10.52.0.0/24", "--subnet6",
                  "fd00:52::/64", "--host-access"},
          Strings{"create", "n1", "--network", "lan"}, Strings{"create", "n2", "--network", "lan"},
          Strings{"create", "o1", "--network", "out"}, Strings{"create", "h1", "--network", "mgmt"},
          Strings{"create", "p", "--mode", "private"}}) {
      auto r = cli(args);
      ASSERT_EQ(r.exit_code, 0) << r.err;
    }
    p6_ = kernel_address6("p");
    ASSERT_FALSE(p6_.empty());
  }
  void TearDown() override {
    testing::report_escape_attempts(kMode, count_);
    for (const auto& ns : nlohmann::json::parse(cli({"list", "--json"}).out)) {
      cli({"destroy", ns["name"].get<std::string>()});
    }
    for (const auto& net : nlohmann::json::parse(cli({"network", "list", "--json"}).out)) {
      if (net["kind"] == "bridged") cli({"network", "rm", net["name"].get<std::string>()});
    }
    sh("ip -all netns delete; ip link del wan0 2>/dev/null; true");
  }
  void attempt(const std::string& what, bool escaped) {
    ++count_.tried;
    if (!escaped) ++count_.blocked;
    EXPECT_FALSE(escaped) << "escaped: " << what;
  }
  void control(const std::string& what, bool worked) {
    ++count_.controls;
    EXPECT_TRUE(worked) << "control failed: " << what;
  }
  std::string p6_;
  testing::EscapeCount count_;
};

INSTANTIATE_TEST_SUITE_P(BrNetfilter, Bridged6Test, ::testing::Values("0", "1"),
                         [](const auto& param) {
                           return std::string("call_iptables_") + param.param;
                         });

TEST_P(Bridged6Test, NamespacesAreDualStackWithTheBridgeAsGateway) {
  EXPECT_EQ(kernel_address6("n1"), "fd00:50::2");
  EXPECT_EQ(kernel_address6("n2"), "fd00:50::3");
  EXPECT_EQ(info("n1")["gateway6"], "fd00:50::1");
  EXPECT_FALSE(info("n1").contains("ipv4_only"));
  auto routes = ip_json({"-n", "n1", "-6", "route", "show", "default"});
  ASSERT_EQ(routes.size(), 1U);
  EXPECT_EQ(routes[0].value("gateway", ""), "fd00:50::1");
  // The bridge has the gateway's address, without duplicate address detection, and fe80::1 (to
  // solicit neighbours for what it forwards); no generated link-local address on it, its ports
  // or the namespace end, and no router advertisement taken.
  Strings bridge_addresses;
  for (const auto& link : ip_json({"-6", "addr", "show", "dev", "ncbr0"})) {
    for (const auto& a : link["addr_info"]) {
      bridge_addresses.push_back(a["local"].get<std::string>() + "/" +
                                 std::to_string(a["prefixlen"].get<int>()));
    }
  }
  std::sort(bridge_addresses.begin(), bridge_addresses.end());
  EXPECT_EQ(bridge_addresses, (Strings{"fd00:50::1/64", "fe80::1/64"}));
  for (const auto& link : ip_json({"-6", "addr", "show", "dev", "nc0p2"})) {
    EXPECT_TRUE(link["addr_info"].empty()) << link.dump();
  }
  EXPECT_EQ(sh("cat /proc/sys/net/ipv6/conf/ncbr0/accept_ra").out, "0\n");
  for (const auto& link : ip_json({"-n", "n1", "-6", "addr", "show", "dev", "eth0"})) {
    for (const auto& a : link["addr_info"]) EXPECT_NE(a.value("scope", ""), "link");
  }
  auto net = nlohmann::json::parse(cli({"network", "list", "--json"}).out);
  bool listed = false;
  for (const auto& n : net) {
    if (n["name"] == "lan") {
      listed = n["subnet6"] == "fd00:50::/64" && n["gateway6"] == "fd00:50::1";
    }
  }
  EXPECT_TRUE(listed) << net.dump();
  EXPECT_NE(cli({"network", "list"}).out.find("fd00:50::/64"), std::string::npos);
  // --no-ipv6 on a dual-stack network: IPv4 only, and its port passes no IPv6.
  ASSERT_EQ(cli({"create", "v4", "--network", "lan", "--no-ipv6"}).exit_code, 0);
  EXPECT_EQ(kernel_address6("v4"), "");
  EXPECT_EQ(info("v4")["ipv4_only"], "--no-ipv6");
  // A static IPv6 address names the IPv4 one at the same offset.
  ASSERT_EQ(cli({"create", "st", "--network", "lan", "--ip", "fd00:50::40/64"}).exit_code, 0);
  EXPECT_EQ(kernel_address6("st"), "fd00:50::40");
  bool paired = false;
  const auto st = info("st");
  for (const auto& i : st["interfaces"]) {
    paired = paired || (i["name"] == "eth0" && i["addresses"][0] == "10.50.0.64/24");
  }
  EXPECT_TRUE(paired) << st.dump();
  EXPECT_NE(cli({"create", "bad", "--network", "lan", "--ip", "fd00:51::9/64"}).exit_code, 0);
}

TEST_P(Bridged6Test, PeersReachEachOtherAndNothingElse) {
  TcpResponder n2_svc("n2", "::", 9000, "n2\n"), o1_svc("o1", "::", 9000, "o1\n"),
      h1_svc("h1", "::", 9000, "h1\n"), p_svc("p", "::", 9000, "p\n"),
      host_svc("", "::", 9000, "host\n"), wan("wan", kWan6, 9000, "wan\n");
  for (const auto* r : {&n2_svc, &o1_svc, &h1_svc, &p_svc, &host_svc, &wan}) {
    ASSERT_TRUE(r->ready());
  }
  control("tcp n1 -> n2 over IPv6", fetch6("n1", "fd00:50::3", 9000) == "n2\n");
  control("ping6 n1 -> n2", ping6("n1", "fd00:50::3"));
  control("ping6 n1 -> its gateway", ping6("n1", "fd00:50::1"));
  control("tcp h1 -> the host (--host-access)", fetch6("h1", "fd00:52::1", 9000) == "host\n");
  control("tcp h1 -> the host's other address", fetch6("h1", kHost6, 9000) == "host\n");
  // NAT66: the internet sees the world's address.
  control("tcp n1 -> the internet, masqueraded", fetch6("n1", kWan6, 9000) == "wan\n");
  EXPECT_EQ(wan.peers(), Strings{kHost6});
  for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
           {"n1", "fd00:50::1"},  // the host through its bridge address
           {"n1", kHost6},        // the host through another of its addresses
           {"n1", "fd00:51::1"},  // another network's bridge
           {"n1", "fd00:51::2"},  // another network's namespace
           {"n1", "fd00:52::2"},
           {"n1", p6_},  // a private namespace
           {"o1", "fd00:50::3"},
           {"o1", kWan6},  // out has no --nat: no way out
           {"p", "fd00:50::2"}}) {
    attempt("tcp " + from + " -> [" + to + "]:9000", !fetch6(from, to, 9000).empty());
  }
  for (const std::string& to : {std::string("fd00:51::2"), p6_, std::string("fd00:52::2")}) {
    attempt("ping6 n1 -> " + to, ping6("n1", to));
  }
  EXPECT_EQ(host_svc.peers().size(), 2U);  // h1's controls only
  EXPECT_TRUE(o1_svc.peers().empty());
  EXPECT_TRUE(h1_svc.peers().empty());
  EXPECT_TRUE(p_svc.peers().empty());
}

TEST_P(Bridged6Test, SpoofedIpv6SourcesAreDropped) {
  UdpRecorder wan_udp("wan", kWan6, 9100), n2_udp("n2", "::", 9100), host_udp("", "::", 9100),
      o1_udp("o1", "::", 9100);
  for (const auto* r : {&wan_udp, &n2_udp, &host_udp, &o1_udp}) ASSERT_TRUE(r->ready());
  udp6("n1", "fd00:50::2", kWan6, 9100, "own-wan");
  udp6("n1", "fd00:50::2", "fd00:50::3", 9100, "own-n2");
  settle();
  control("udp from n1's own address to the internet", heard(wan_udp, "own-wan"));
  control("udp from n1's own address to its peer", heard(n2_udp, "own-n2"));
  // Root in n1 takes addresses that are not its own (no duplicate address detection) and sends.
  const Strings sources{"fd00:50::77", "fd00:50::3", "fd00:50::1",   "fd00:51::2",
                        "fd00:52::2",  p6_,          "2001:db8:9::1"};
  for (const auto& src : sources) {
    ASSERT_EQ(sh("ip -n n1 addr add " + src + "/128 dev eth0 nodad").exit_code, 0) << src;
  }
  for (std::size_t i = 0; i < sources.size(); ++i) {
    udp6("n1", sources[i], kWan6, 9100, "spoof-wan-" + std::to_string(i));
    udp6("n1", sources[i], "fd00:50::3", 9100, "spoof-n2-" + std::to_string(i));
    udp6("n1", sources[i], "fd00:51::2", 9100, "spoof-o1-" + std::to_string(i));
    udp6("n1", sources[i], kHost6, 9100, "spoof-host-" + std::to_string(i));
  }
  settle();
  for (std::size_t i = 0; i < sources.size(); ++i) {
    for (const auto& [where, r] : std::vector<std::pair<std::string, const UdpRecorder*>>{
             {"wan", &wan_udp}, {"n2", &n2_udp}, {"o1", &o1_udp}, {"host", &host_udp}}) {
      attempt("udp from " + sources[i] + " to " + where,
              heard(*r, "spoof-" + where + "-" + std::to_string(i)));
    }
  }
  EXPECT_TRUE(host_udp.records().empty());
}

TEST_P(Bridged6Test, NeighbourAdvertisementsClaimOnlyTheSendersOwnAddress) {
  const std::string mac1 = mac_of("n1", "eth0"), mac2 = mac_of("n2", "eth0");
  ASSERT_FALSE(mac1.empty() || mac2.empty());
  // Entries to poison: the host's for n2, n2's for its gateway.
  ASSERT_TRUE(ping6("", "fd00:50::3"));
  ASSERT_TRUE(ping6("n2", "fd00:50::1"));
  ASSERT_EQ(neighbour_mac("", "fd00:50::3"), mac2);
  const std::string bridge_mac = mac_of("", "ncbr0");
  ASSERT_EQ(neighbour_mac("n2", "fd00:50::1"), bridge_mac);
  // Control: an advertisement for n1's own address, with another MAC, is taken by the host.
  ASSERT_TRUE(ping6("", "fd00:50::2"));
  advertise("n1", "fd00:50::2", "fd00:50::2", "02:00:00:00:00:99", "fd00:50::1");
  settle();
  control("n1's advertisement of its own address",
          neighbour_mac("", "fd00:50::2") == "02:00:00:00:00:99");
  advertise("n1", "fd00:50::2", "fd00:50::2", mac1, "fd00:50::1");
  // Attempts: n1 claims its peer's address (to the host) and the gateway's (to its peer).
  advertise("n1", "fd00:50::2", "fd00:50::3", mac1, "fd00:50::1");
  advertise("n1", "fd00:50::2", "fd00:50::1", mac1, "fd00:50::3");
  advertise("n1", "fd00:50::2", "fd00:51::1", mac1, "fd00:50::1");
  settle();
  attempt("NA claiming n2's address, to the host", neighbour_mac("", "fd00:50::3") == mac1);
  attempt("NA claiming the gateway's address, to n2", neighbour_mac("n2", "fd00:50::1") == mac1);
  attempt("NA claiming another network's gateway", neighbour_mac("", "fd00:51::1") == mac1);
  // Still working: n2's traffic goes where it should.
  TcpResponder wan("wan", kWan6, 9000, "wan\n");
  ASSERT_TRUE(wan.ready());
  control("n2 still reaches the internet", fetch6("n2", kWan6, 9000) == "wan\n");
  control("the host still reaches n2", ping6("", "fd00:50::3"));
  // Router advertisements from a port reach neither its peer nor the host.
  auto before = ip_json({"-n", "n2", "-6", "route"}).dump();
  sh("ip -n n1 addr add fe80::99/64 dev eth0 nodad");
  testing::probe("n1", {"ra", "eth0", "2001:db8:77::"});
  settle();
  attempt("router advertisement to n2", ip_json({"-n", "n2", "-6", "route"}).dump() != before);
}

// An egress policy on a dual-stack bridged namespace covers its IPv6 (pol6_ sets; its traffic,
// peer traffic included, routed through the host's egress6 chain), and a policy without IPv6
// rules refuses IPv6 at once.
TEST_P(Bridged6Test, EgressPolicyCoversIpv6OnTheBridge) {
  TcpResponder n2_ok("n2", "::", 9000, "ok\n"), n2_other("n2", "::", 9001, "other\n"),
      wan("wan", kWan6, 9000, "wan\n");
  UdpRecorder n2_udp("n2", "::", 9100);
  ASSERT_TRUE(n2_ok.ready() && n2_other.ready() && wan.ready() && n2_udp.ready());
  ASSERT_EQ(
      cli({"create", "pol", "--network", "lan", "--allow", "[fd00:50::3]:9000/tcp"}).exit_code, 0);
  ASSERT_EQ(cli({"create", "pol4", "--network", "lan", "--allow", "10.50.0.3:9000/tcp"}).exit_code,
            0);
  const std::string pol6 = kernel_address6("pol");
  ASSERT_FALSE(pol6.empty());
  control("pol -> n2 [::]:9000, allowed", fetch6("pol", "fd00:50::3", 9000) == "ok\n");
  control("pol4 -> n2 10.50.0.3:9000, allowed", !run_in("pol4", "nc -w 2 10.50.0.3 9000").empty());
  control("n1 (no policy) -> n2 9001", fetch6("n1", "fd00:50::3", 9001) == "other\n");
  attempt("pol -> n2 9001", !fetch6("pol", "fd00:50::3", 9001).empty());
  attempt("pol -> the internet", !fetch6("pol", kWan6, 9000).empty());
  udp6("pol", pol6, "fd00:50::3", 9100, "pol-udp");
  settle();
  attempt("pol udp -> n2", heard(n2_udp, "pol-udp"));
  // Refused at once (a reset or an ICMPv6 error), not left to time out.
  const auto started = std::chrono::steady_clock::now();
  attempt("pol4 -> n2 over IPv6", !fetch6("pol4", "fd00:50::3", 9000).empty());
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(1500));
  EXPECT_EQ(n2_other.peers().size(), 1U);  // n1's control only
}

// A dual-stack bridged namespace's published port over IPv6: from the host's [::1] (the host
// service's relay), from the host's own address, from another host, from a peer on its bridge by
// way of the host's address (hairpin) and directly, and over IPv4 still; an unpublished port stays
// closed from the host and from the internet, even given a route to the prefix.
TEST_P(Bridged6Test, PublishedPortsReachADualStackBridgedNamespaceOverIpv6) {
  auto made = cli({"create", "web", "--network", "lan", "--publish", "8090:80"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  const std::string body = "bridged web\n";
  TcpResponder http("web", "::", 80, body), hidden("web", "::", 81, "hidden\n");
  ASSERT_TRUE(http.ready() && hidden.ready());
  const std::string web6 = kernel_address6("web");
  ASSERT_FALSE(web6.empty());
  control("from the host's [::1]", fetch6("", "::1", 8090) == body);
  control("from the host's own address", fetch6("", kHost6, 8090) == body);
  control("from another host", run_in("", "ip netns exec wan nc -6 -w 2 " + std::string(kHost6) +
                                              " 8090 </dev/null") == body);
  control("from a peer on its bridge, by the host's address", fetch6("n1", kHost6, 8090) == body);
  control("from a peer on its bridge, directly", fetch6("n1", web6, 80) == body);
  control("over IPv4 still", run_in("", "nc -4 -w 2 127.0.0.1 8090 </dev/null") == body);
  ASSERT_EQ(sh("ip -n wan -6 route add fc00::/7 via " + std::string(kHost6)).exit_code, 0);
  attempt("the host -> [::1]:81 (not published)", !fetch6("", "::1", 81).empty());
  attempt("the host -> [host]:81 (not published)", !fetch6("", kHost6, 81).empty());
  attempt("the internet -> [web]:81 directly",
          !run_in("", "ip netns exec wan nc -6 -w 1 " + web6 + " 81 </dev/null").empty());
  attempt("the internet -> [web]:80 directly, not through the published port",
          !run_in("", "ip netns exec wan nc -6 -w 1 " + web6 + " 80 </dev/null").empty());
  EXPECT_TRUE(hidden.peers().empty());
  EXPECT_EQ(http.peers().size(), 6U);
}

// policy set and clear on a live dual-stack bridged namespace: both families change at once (an
// IPv6 rule's policy refuses the rest over IPv6 and IPv4 alike), the kernel's bridge table routes
// its IPv6 to the host only while it has a policy, and clear leaves its port pinned to its own
// addresses.
TEST_P(Bridged6Test, PolicySetAndClearChangeALiveDualStackBridgedNamespace) {
  TcpResponder allowed("n2", "::", 9000, "ok\n"), other("n2", "::", 9001, "other\n");
  ASSERT_TRUE(allowed.ready() && other.ready());
  auto routed6 = [] { return sh("nft list set bridge netcell pol_routed6").out; };
  control("n1 -> n2 [::]:9001 before any policy", fetch6("n1", "fd00:50::3", 9001) == "other\n");
  auto set = cli({"policy", "set", "n1", "--allow", "[fd00:50::3]:9000/tcp"});
  ASSERT_EQ(set.exit_code, 0) << set.err;
  EXPECT_NE(routed6().find("fd00:50::2"), std::string::npos) << routed6();
  control("n1 -> n2 [::]:9000, allowed", fetch6("n1", "fd00:50::3", 9000) == "ok\n");
  attempt("n1 -> n2 [::]:9001 under the policy", !fetch6("n1", "fd00:50::3", 9001).empty());
  attempt("n1 -> n2 10.50.0.3:9001 under the policy",
          !run_in("n1", "nc -w 2 10.50.0.3 9001 </dev/null").empty());
  ASSERT_EQ(cli({"policy", "clear", "n1"}).exit_code, 0);
  EXPECT_EQ(routed6().find("fd00:50::2"), std::string::npos) << routed6();
  control("n1 -> n2 [::]:9001 after clear", fetch6("n1", "fd00:50::3", 9001) == "other\n");
  EXPECT_NE(sh("nft list set bridge netcell port_src6").out.find("fd00:50::2"), std::string::npos)
      << "the port stays pinned to its own IPv6 address";
  EXPECT_EQ(other.peers().size(), 2U);  // the two controls
}

// A topology file's network takes subnet6 too; down leaves none of its IPv6.
TEST_P(Bridged6Test, ATopologysNetworkIsDualStackWithSubnet6) {
  const std::string file = "/run/dual.yaml";
  std::ofstream(file) << "networks:\n  topo: {subnet: 10.53.0.0/24, subnet6: 'fd00:53::/64'}\n"
                         "namespaces:\n  t1: {mode: bridged, network: topo}\n"
                         "  t2: {mode: bridged, network: topo}\n";
  auto up = cli({"up", file});
  ASSERT_EQ(up.exit_code, 0) << up.err;
  EXPECT_EQ(kernel_address6("t1"), "fd00:53::2");
  control("t1 -> t2 over IPv6 (topology)", ping6("t1", "fd00:53::3"));
  attempt("t1 -> lan's n1 over IPv6", ping6("t1", "fd00:50::2"));
  ASSERT_EQ(cli({"down", file}).exit_code, 0);
  EXPECT_EQ(ip_json({"-6", "addr"}).dump().find("fd00:53"), std::string::npos);
}

TEST_P(Bridged6Test, DestroyAndNetworkRmLeaveNoIpv6Behind) {
  auto elements = [](const std::string& family, const std::string& set) {
    auto j = nlohmann::json::parse(sh("nft -j list set " + family + " netcell " + set).out, nullptr,
                                   false);
    if (j.is_discarded()) return std::string();
    for (const auto& item : j["nftables"]) {
      if (item.contains("set") && item["set"].contains("elem")) return item["set"]["elem"].dump();
    }
    return std::string();
  };
  EXPECT_NE(elements("bridge", "port_src6").find("fd00:50::2"), std::string::npos);
  EXPECT_NE(elements("bridge", "port_nd6"), "");
  EXPECT_NE(elements("ip6", "bridges6").find("ncbr0"), std::string::npos);
  EXPECT_NE(elements("ip6", "nat_nets6").find("fd00:50::"), std::string::npos);
  EXPECT_EQ(elements("ip6", "nat_nets6").find("fd00:51::"), std::string::npos);  // no --nat
  ASSERT_EQ(cli({"create", "pol", "--network", "lan", "--egress", "deny"}).exit_code, 0);
  EXPECT_NE(elements("bridge", "pol_routed6").find("fd00:50::4"), std::string::npos);
  for (const char* ns : {"n1", "n2", "o1", "h1", "pol"}) {
    ASSERT_EQ(cli({"destroy", ns}).exit_code, 0);
  }
  for (const char* set : {"port_src6", "port_nd6", "pol_routed6"}) {
    EXPECT_EQ(elements("bridge", set), "") << set;
  }
  for (const char* net : {"lan", "out", "mgmt"})
    ASSERT_EQ(cli({"network", "rm", net}).exit_code, 0);
  for (const char* set :
       {"bridges6", "bridges_nat6", "bridges_host6", "src_ok_net6", "nat_nets6", "hairpin6"}) {
    EXPECT_EQ(elements("ip6", set), "") << set;
  }
  // (The private namespace p's random ULA prefix may start like them: the networks' own.)
  const auto routes = ip_json({"-6", "route"}).dump(), addrs = ip_json({"-6", "addr"}).dump();
  for (const char* prefix : {"\"fd00:50::", "\"fd00:51::", "\"fd00:52::"}) {
    EXPECT_EQ(routes.find(prefix), std::string::npos) << routes;
    EXPECT_EQ(addrs.find(prefix), std::string::npos) << addrs;
  }
  EXPECT_EQ(sh("ls /run/netcell/ipam/lan 2>/dev/null").out, "");
  // Bad --subnet6 input: one line, exit 2, nothing made.
  for (const Strings& bad :
       {Strings{"--subnet6", "10.9.0.0/24"}, Strings{"--subnet6", "fd00:60::/40"},
        Strings{"--subnet6", "fd00:60::/124"}, Strings{"--subnet6", "fd00:60::1/64"},
        Strings{"--subnet6", "nonsense"},
        Strings{"--subnet6", p6_.substr(0, p6_.size() - 1) + "/64"}}) {
    Strings args{"network", "create", "bad", "--subnet", "10.60.0.0/24"};
    args.insert(args.end(), bad.begin(), bad.end());
    auto r = cli(args);
    EXPECT_NE(r.exit_code, 0) << bad[1];
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_EQ(r.err.rfind("netcell: ", 0), 0U) << r.err;
    EXPECT_TRUE(ip_json({"link", "show", "type", "bridge"}).empty()) << bad[1];
    EXPECT_FALSE(std::ifstream("/run/netcell/networks/bad.json").good()) << bad[1];
  }
  // A prefix the host routes elsewhere (its uplink's, or a route of its own) is refused; the
  // control: a prefix beside them is taken.
  ASSERT_EQ(sh("ip -6 route add 2001:db8:77::/48 dev wan0").exit_code, 0);
  for (const char* routed : {"2001:db8:77:5::/64", "2001:db8:1::/64"}) {
    auto r = cli({"network", "create", "bad", "--subnet", "10.60.0.0/24", "--subnet6", routed});
    EXPECT_EQ(r.exit_code, 1) << routed;
    EXPECT_NE(r.err.find("overlaps the host route to 2001:db8:"), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_TRUE(ip_json({"link", "show", "type", "bridge"}).empty()) << routed;
    EXPECT_FALSE(std::ifstream("/run/netcell/networks/bad.json").good()) << routed;
  }
  auto beside = cli(
      {"network", "create", "good", "--subnet", "10.60.0.0/24", "--subnet6", "2001:db8:78::/64"});
  EXPECT_EQ(beside.exit_code, 0) << beside.err;
  EXPECT_EQ(ip_json({"link", "show", "type", "bridge"}).size(), 1U);
  EXPECT_EQ(cli({"network", "rm", "good"}).exit_code, 0);
}

}  // namespace
}  // namespace netcell
