// Escape attempts: from inside each isolation mode, try every way out we know of and require each
// to be blocked. Every test runs in its own throwaway world where "the internet" is namespace `wan`
// (203.0.113.2; the world is 203.0.113.1). Each probe method also runs against a target it is
// allowed to reach (a positive control), so a broken probe fails the test instead of passing it.
//
// What the product guarantees, and so what counts as an escape:
//   full      nothing outside the namespace, by any protocol.
//   private   the internet (NAT) and published ports only: no other namespace, no host address or
//             host service (loopback-only ones included), no spoofed source, no poisoning of the
//             host's neighbour table, no IPv6 at all.
//   bridged   its own network (one L2 segment whose members reach each other), the internet with
//             --nat, the host with --host-access; never another network, the host otherwise, the
//             host's loopback, or any address but its own as its source (IPv4 or ARP: not even
//             a peer's), and nothing but IPv4 and ARP on the segment; with an egress policy,
//             nothing the policy does not allow, its peers included.
// ICMP echo to the host's own addresses is answered by design (pinging the gateway works); it is
// used as a control, not counted as an attempt.
//
// Each test prints "escape-attempts MODE tried=N blocked=N escaped=N controls=N"; a run of several
// tests in one process also prints the sum as "escape attempts: tried=N blocked=N escaped=N".
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <sstream>
#include <thread>
#include <tuple>

#include "support/escape_tally.h"
#include "support/net_helpers.h"
#include "support/process.h"

namespace netcell {
namespace {

using testing::address_of;
using testing::cli;
using testing::host_if_of;
using testing::info;
using testing::ip_json;
using testing::mac_of;
using testing::run;
using testing::sh;
using testing::TcpResponder;
using testing::UdpRecorder;
using Strings = std::vector<std::string>;

constexpr char kProbe[] = NETCELL_ESCAPE_PROBE_PATH;
constexpr char kHost[] = "203.0.113.1";  // the world's address towards the internet
constexpr char kWan[] = "203.0.113.2";   // the internet

using Count = testing::EscapeCount;

using testing::probe;

std::map<std::string, std::string> tcp(const std::string& ns, const Strings& targets,
                                       const std::string& source = "") {
  Strings args{"tcp", "300"};
  if (!source.empty()) args.insert(args.end(), {"-s", source});
  args.insert(args.end(), targets.begin(), targets.end());
  return probe(ns, args);
}

// Sends tagged datagrams ("netcell-escape udp TAG TARGET"); see seen().
void udp(const std::string& ns, const std::string& tag, const Strings& targets,
         const std::string& source = "") {
  Strings args{"udp", "-t", tag};
  if (!source.empty()) args.insert(args.end(), {"-s", source});
  args.insert(args.end(), targets.begin(), targets.end());
  probe(ns, args);
}

std::map<std::string, std::string> icmp(const std::string& ns, const Strings& targets) {
  Strings args{"icmp", "300"};
  args.insert(args.end(), targets.begin(), targets.end());
  return probe(ns, args);
}

void spoof(const std::string& ns, const std::string& source, const std::string& dest, int port) {
  probe(ns, {"spoof-udp", source, dest, std::to_string(port), "3"});
}
std::string spoof_tag(const std::string& source, const std::string& dest, int port) {
  return "spoof " + source + ">" + dest + ":" + std::to_string(port);
}

// The source of the first datagram any recorder got with payload "netcell-escape TAG", or "".
std::string seen(const std::vector<const UdpRecorder*>& recorders, const std::string& tag) {
  const std::string payload = " netcell-escape " + tag;
  for (const auto* r : recorders) {
    for (const auto& line : r->records()) {
      if (line.size() > payload.size() &&
          line.compare(line.size() - payload.size(), payload.size(), payload) == 0) {
        return line.substr(0, line.size() - payload.size());
      }
    }
  }
  return "";
}

void settle() {
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
}

std::string gateway_of(const std::string& ns) {
  return info(ns).value("gateway", "");
}
std::string bridge_of(const std::string& network) {
  auto nets = nlohmann::json::parse(cli({"network", "list", "--json"}).out, nullptr, false);
  for (const auto& n : nets) {
    if (n.value("name", "") == network) return n.value("bridge", "");
  }
  return "";
}
// The last address of the namespace's own subnet (its broadcast address).
std::string broadcast_of(const std::string& ns) {
  auto j = ip_json({"-n", ns, "-4", "addr", "show", "eth0"});
  if (j.empty()) return "";
  in_addr a{};
  ::inet_pton(AF_INET, j[0]["addr_info"][0]["local"].get<std::string>().c_str(), &a);
  int len = j[0]["addr_info"][0]["prefixlen"];
  std::uint32_t host_bits = len >= 32 ? 0 : (0xffffffffu >> len);
  a.s_addr = htonl(ntohl(a.s_addr) | host_bits);
  char out[INET_ADDRSTRLEN];
  return ::inet_ntop(AF_INET, &a, out, sizeof out);
}

struct ArpRun {
  int sent = -1;
  int replies = -1;
  int ms = -1;
};
ArpRun arp(const std::string& ns, const std::string& op, int count, const std::string& sender,
           const std::string& target) {
  auto r = run(
      {"ip", "netns", "exec", ns, kProbe, "arp", "eth0", op, std::to_string(count), sender, target},
      10000);
  ArpRun out;
  std::sscanf(r.out.c_str(), "sent %d replies %d ms %d", &out.sent, &out.replies, &out.ms);
  return out;
}

// Makes `ns` send 127.0.0.0/8 out of eth0 to its gateway (root in the namespace can): the trick
// that route_localnet on the host side would otherwise turn into access to the host's loopback.
bool route_loopback_via_gateway(const std::string& ns, const std::string& gateway) {
  auto r =
      sh("ip netns exec " + ns +
         " sh -c 'echo 1 > /proc/sys/net/ipv4/conf/all/route_localnet && "
         "echo 1 > /proc/sys/net/ipv4/conf/eth0/route_localnet && ip rule del pref 0 && "
         "ip rule add pref 100 lookup local && ip rule add pref 10 to 127.0.0.0/8 lookup 77 && "
         "ip route add 127.0.0.0/8 via " +
         gateway + " dev eth0 table 77'");
  auto route = ip_json({"-n", ns, "route", "get", "127.0.0.1"});
  return r.exit_code == 0 && !route.empty() && route[0].value("dev", "") == "eth0";
}

// An nftables counter in a table of the test's own: packets for 127.0.0.0/8 arriving on `ifname`,
// counted before netcell's chains see them.
void watch_loopback(const std::string& ifname) {
  sh("nft add table ip escape_watch && nft add chain ip escape_watch pre "
     "'{ type filter hook prerouting priority -400; }'");
  sh("nft add rule ip escape_watch pre iifname " + ifname + " ip daddr 127.0.0.0/8 counter");
}
long watched_packets(const std::string& ifname) {
  auto j = nlohmann::json::parse(sh("nft -j list table ip escape_watch").out, nullptr, false);
  if (j.is_discarded()) return -1;
  for (const auto& item : j["nftables"]) {
    if (!item.contains("rule")) continue;
    const auto& expr = item["rule"]["expr"];
    if (expr.dump().find("\"" + ifname + "\"") == std::string::npos) continue;
    for (const auto& e : expr) {
      if (e.contains("counter")) return e["counter"]["packets"].get<long>();
    }
  }
  return -1;
}

// What `after` holds that `before` did not.
Strings added(const Strings& before, const Strings& after) {
  Strings out;
  for (const auto& a : after) {
    if (std::find(before.begin(), before.end(), a) == before.end()) out.push_back(a);
  }
  return out;
}

std::string join(const Strings& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
  return out;
}

// One ARP flood: `count` packets of `op` ("request" or "reply") claiming `sender` is at the
// attacker's MAC, sent to `target`.
struct ArpClaim {
  const char* op;
  std::string sender;
  std::string target;
  int count = 500;
};

class EscapeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::in_world()) GTEST_FAIL() << "run through tests/support/world.sh";
    // ctest gives each test its own world; a by-hand run of several in one world cleans up first.
    static bool first = true;
    if (!first) clean_world();
    first = false;
    ASSERT_EQ(testing::make_internet(), "");
  }

  static void clean_world() {
    for (const auto& ns : nlohmann::json::parse(cli({"list", "--json"}).out, nullptr, false)) {
      cli({"destroy", ns["name"].get<std::string>()});
    }
    for (const auto& net :
         nlohmann::json::parse(cli({"network", "list", "--json"}).out, nullptr, false)) {
      if (net["kind"] == "bridged") cli({"network", "rm", net["name"].get<std::string>()});
    }
    sh("ip -all netns delete; ip link del wan0; nft delete table ip escape_watch; true");
    // The kernel removes the host ends once the namespaces are gone; names get reused.
    for (int i = 0; i < 50; ++i) {
      bool left = false;
      for (const auto& name : testing::link_names()) left = left || name.rfind("nc", 0) == 0;
      if (!left) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

  void TearDown() override {
    for (const auto& [mode, c] : counts_) testing::report_escape_attempts(mode, c);
  }

  // The neighbours of a private namespace: private a (the attacker) and b, and n1 on the
  // bridged network lan (10.50.0.0/24).
  static void create_neighbours() {
    ASSERT_EQ(cli({"create", "a", "--mode", "private"}).exit_code, 0);
    ASSERT_EQ(cli({"create", "b", "--mode", "private"}).exit_code, 0);
    ASSERT_EQ(cli({"network", "create", "lan", "--subnet", "10.50.0.0/24"}).exit_code, 0);
    ASSERT_EQ(cli({"create", "n1", "--network", "lan"}).exit_code, 0);
  }

  // One escape attempt from `mode`; `escaped` says it got through.
  void attempt(const std::string& mode, const std::string& what, bool escaped) {
    Count& c = counts_[mode];
    ++c.tried;
    if (escaped) {
      ADD_FAILURE() << "ESCAPE from " << mode << ": " << what;
    } else {
      ++c.blocked;
    }
  }
  // The same method against an allowed target must work, or its "blocked" proves nothing.
  void control(const std::string& mode, const std::string& what, bool worked) {
    ++counts_[mode].controls;
    EXPECT_TRUE(worked) << "positive control failed, the probe cannot be trusted: " << what;
  }

  // TCP to each target from `ns`: every one must be blocked.
  void tcp_attempts(const std::string& mode, const std::string& ns, const Strings& targets,
                    const std::string& label = "") {
    auto got = tcp(ns, targets);
    for (const auto& t : targets) {
      attempt(mode, label + "tcp " + t + " (" + got[t] + ")", got[t] == "open");
    }
  }
  void tcp_controls(const std::string& mode, const std::string& ns, const Strings& targets) {
    auto got = tcp(ns, targets);
    for (const auto& t : targets) control(mode, ns + " tcp " + t + " " + got[t], got[t] == "open");
  }
  // UDP to each target from `ns`; blocked unless one of `watchers` records it.
  void udp_attempts(const std::string& mode, const std::string& ns, const Strings& targets,
                    const std::vector<const UdpRecorder*>& watchers) {
    udp(ns, ns, targets);
    settle();
    for (const auto& t : targets) {
      attempt(mode, "udp " + t, !seen(watchers, "udp " + ns + " " + t).empty());
    }
  }
  void icmp_attempts(const std::string& mode, const std::string& ns, const Strings& targets) {
    auto got = icmp(ns, targets);
    for (const auto& t : targets) attempt(mode, "icmp echo " + t, got[t] == "reply");
  }
  void icmp_controls(const std::string& mode, const std::string& ns, const Strings& targets) {
    auto got = icmp(ns, targets);
    for (const auto& t : targets) control(mode, ns + " icmp echo " + t, got[t] == "reply");
  }

  // Neighbour entries in the world that point at `mac` for an address other than `allowed`.
  static Strings poisoned(const std::string& mac, const std::string& allowed) {
    Strings out;
    for (const auto& n : ip_json({"-4", "neigh"})) {
      if (n.value("lladdr", "") == mac && n.value("dst", "") != allowed) {
        out.push_back(n.value("dst", "") + " dev " + n.value("dev", ""));
      }
    }
    return out;
  }

  // Each of `claims` flooded from `ns`, whose eth0 has MAC `mac` and address `own`: every flood
  // is sent in full and bounded in time, and is an escape when the world's neighbour table now
  // points at `mac` for an address it did not before (each flood answers for what it added).
  void arp_claim_attempts(const std::string& mode, const std::string& ns, const std::string& mac,
                          const std::string& own, const std::vector<ArpClaim>& claims) {
    Strings so_far = poisoned(mac, own);
    for (const auto& c : claims) {
      auto got = arp(ns, c.op, c.count, c.sender, c.target);
      EXPECT_EQ(got.sent, c.count) << c.sender;
      EXPECT_GE(got.ms, 0);
      EXPECT_LT(got.ms, 3000) << "the flood must stay bounded in time";
      Strings now = poisoned(mac, own), bad = added(so_far, now);
      so_far = now;
      attempt(mode, std::string("ARP ") + c.op + " claiming " + c.sender + ": " + join(bad),
              !bad.empty());
    }
  }

  std::map<std::string, Count> counts_;
};

TEST_F(EscapeTest, FullModeReachesNothing) {
  const std::string m = "full";
  ASSERT_EQ(cli({"create", "f", "--mode", "full"}).exit_code, 0);
  ASSERT_EQ(cli({"create", "p", "--mode", "private"}).exit_code, 0);  // a neighbour to look for
  const std::string p = address_of("p"), gw_p = gateway_of("p");
  EXPECT_EQ(testing::link_names("f"), Strings{"lo"});
  EXPECT_TRUE(ip_json({"-n", "f", "-4", "route"}).empty());
  TcpResponder host_any("", "0.0.0.0", 9000, "host\n"), host_lo("", "127.0.0.1", 9001, "lo\n"),
      wan("wan", kWan, 9000, "wan\n"), own("f", "127.0.0.1", 9002, "own\n"),
      p_svc("p", "0.0.0.0", 9000, "p\n");
  UdpRecorder host_udp("", "0.0.0.0", 9100), wan_udp("wan", kWan, 9100),
      p_udp("p", "0.0.0.0", 9100);
  ASSERT_TRUE(host_any.ready() && host_lo.ready() && wan.ready() && own.ready() && p_svc.ready());
  ASSERT_TRUE(host_udp.ready() && wan_udp.ready() && p_udp.ready());
  // Controls: the same probes work from the world, and inside f against f's own loopback.
  tcp_controls(m, "", {"127.0.0.1:9000", "127.0.0.1:9001", std::string(kWan) + ":9000"});
  tcp_controls(m, "f", {"127.0.0.1:9002"});
  icmp_controls(m, "", {kWan});
  udp("", "world", {"127.0.0.1:9100", std::string(kWan) + ":9100"});
  spoof("", "198.51.100.9", kWan, 9100);  // the world may send from any source
  settle();
  control(m, "udp world->host", !seen({&host_udp}, "udp world 127.0.0.1:9100").empty());
  control(m, "udp world->wan",
          !seen({&wan_udp}, std::string("udp world ") + kWan + ":9100").empty());
  control(m, "raw udp world->wan",
          seen({&wan_udp}, spoof_tag("198.51.100.9", kWan, 9100)) == "198.51.100.9");

  tcp_controls(m, "", {p + ":9000"});

  const std::vector<const UdpRecorder*> all{&host_udp, &wan_udp, &p_udp};
  tcp_attempts(
      m, "f",
      {"127.0.0.1:9000", "127.0.0.1:9001", std::string(kHost) + ":9000",
       std::string(kHost) + ":9001", std::string(kWan) + ":9000", p + ":9000", gw_p + ":9000"});
  udp_attempts(m, "f",
               {"127.0.0.1:9100", std::string(kHost) + ":9100", std::string(kWan) + ":9100",
                p + ":9100", "255.255.255.255:9100"},
               all);
  icmp_attempts(m, "f", {kHost, kWan, p});
  spoof("f", kHost, kWan, 9100);
  settle();
  attempt(m, "raw udp from the world's address", !seen(all, spoof_tag(kHost, kWan, 9100)).empty());
  // Root inside f gives itself the world's subnet and a default route: still no link out.
  ASSERT_EQ(
      sh("ip -n f addr add 203.0.113.9/24 dev lo && ip -n f route add default dev lo").exit_code,
      0);
  tcp_attempts(m, "f", {std::string(kWan) + ":9000", std::string(kHost) + ":9000"}, "own route: ");
  EXPECT_EQ(host_any.peers().size(), 1U);  // the control only
  EXPECT_EQ(wan.peers().size(), 1U);
  EXPECT_EQ(p_svc.peers().size(), 1U);
}

// A private attacker `a` among: `b` (private, publishes 8082), `l` (publishes only on the host's
// 127.0.0.1:8081), `n1` (bridged), the world's services on 0.0.0.0 and 127.0.0.1, the internet.
TEST_F(EscapeTest, PrivateReachesOnlyTheInternetAndPublishedPorts) {
  const std::string m = "private";
  ASSERT_EQ(cli({"create", "a", "--mode", "private", "--publish", "8080:80"}).exit_code, 0);
  ASSERT_EQ(cli({"create", "b", "--mode", "private", "--publish", "8082:80"}).exit_code, 0);
  ASSERT_EQ(cli({"create", "l", "--mode", "private", "--publish", "127.0.0.1:8081:80"}).exit_code,
            0);
  ASSERT_EQ(cli({"network", "create", "lan", "--subnet", "10.50.0.0/24"}).exit_code, 0);
  ASSERT_EQ(cli({"create", "n1", "--network", "lan"}).exit_code, 0);
  const std::string b = address_of("b"), l = address_of("l"), n1 = address_of("n1");
  const std::string gw = gateway_of("a"), gw_b = gateway_of("b");
  ASSERT_FALSE(b.empty() || l.empty() || n1.empty() || gw.empty() || gw_b.empty());
  TcpResponder a_web("a", "0.0.0.0", 80, "a\n"), b_svc("b", "0.0.0.0", 9000, "b\n"),
      b_web("b", "0.0.0.0", 80, "b web\n"), l_web("l", "0.0.0.0", 80, "l web\n"),
      n1_svc("n1", "0.0.0.0", 9000, "n1\n"), host_any("", "0.0.0.0", 9000, "host\n"),
      host_lo("", "127.0.0.1", 9001, "lo\n"), wan("wan", kWan, 9000, "wan\n");
  UdpRecorder host_udp("", "0.0.0.0", 9100), host_lo_udp("", "127.0.0.1", 9101),
      b_udp("b", "0.0.0.0", 9100), l_udp("l", "0.0.0.0", 9100), n1_udp("n1", "0.0.0.0", 9100),
      wan_udp("wan", kWan, 9100);
  for (const auto* r : {&a_web, &b_svc, &b_web, &l_web, &n1_svc, &host_any, &host_lo, &wan}) {
    ASSERT_TRUE(r->ready());
  }
  for (const auto* r : {&host_udp, &host_lo_udp, &b_udp, &l_udp, &n1_udp, &wan_udp}) {
    ASSERT_TRUE(r->ready());
  }

  tcp_controls(
      m, "a",
      {std::string(kWan) + ":9000", gw + ":8080", gw + ":8082", std::string(kHost) + ":8082"});
  tcp_controls(m, "", {"127.0.0.1:8081"});  // the loopback-only publication works for the host
  icmp_controls(m, "a", {gw, kWan});
  udp("a", "a", {std::string(kWan) + ":9100"});
  settle();
  control(m, "udp a->wan, masqueraded",
          seen({&wan_udp}, std::string("udp a ") + kWan + ":9100") == kHost);

  tcp_attempts(
      m, "a",
      {b + ":9000", b + ":80", gw_b + ":9000", gw + ":9000", std::string(kHost) + ":9000",
       gw + ":9001", std::string(kHost) + ":9001", gw + ":8081", std::string(kHost) + ":8081",
       l + ":80", "10.50.0.1:9000", n1 + ":9000", "10.50.0.1:8081"});
  udp_attempts(m, "a",
               {b + ":9100", gw_b + ":9100", gw + ":9100", std::string(kHost) + ":9100",
                gw + ":9101", "10.50.0.1:9100", n1 + ":9100", l + ":9100", "255.255.255.255:9100",
                broadcast_of("a") + ":9100"},
               {&host_udp, &host_lo_udp, &b_udp, &l_udp, &n1_udp});
  icmp_attempts(m, "a", {b, l, n1});
  // Root in `a` declares b's address on-link, so it asks the host's end for it by ARP.
  ASSERT_EQ(sh("ip -n a route add " + b + "/32 dev eth0").exit_code, 0);
  tcp_attempts(m, "a", {b + ":9000"}, "on-link route: ");
  EXPECT_TRUE(b_svc.peers().empty());
  EXPECT_TRUE(host_any.peers().empty());
  EXPECT_TRUE(host_lo.peers().empty());
}

// route_localnet is on for the host end (publishing on 127.0.0.1 needs it), so a namespace that
// routes 127.0.0.0/8 to its gateway gets its packets into the host's loopback routing.
// A process left inside after destroy (a daemon the workload forked, a shell entered with `ip
// netns exec`): it had the network before, and after destroy it reaches nothing at all: not the
// internet, not the gateway address it had, not the host, by TCP, UDP or ICMP.
TEST_F(EscapeTest, PrivateProcessLeftBehindAfterDestroyReachesNothing) {
  const std::string m = "private-left-behind";
  ASSERT_EQ(cli({"create", "keep", "--mode", "private"}).exit_code, 0);  // the table stays
  ASSERT_EQ(cli({"create", "a", "--mode", "private"}).exit_code, 0);
  const std::string gw = gateway_of("a");
  ASSERT_FALSE(gw.empty());
  TcpResponder wan("wan", kWan, 9000, "wan\n"), host_gw("", gw, 9002, "gw\n"),
      host_any("", "0.0.0.0", 9003, "host\n");
  UdpRecorder wan_udp("wan", kWan, 9100), host_udp("", "0.0.0.0", 9101);
  ASSERT_TRUE(wan.ready() && host_gw.ready() && host_any.ready() && wan_udp.ready() &&
              host_udp.ready());
  auto pid = sh("ip netns exec a setsid sleep 120 </dev/null >/dev/null 2>&1 & echo $!").out;
  ASSERT_FALSE(pid.empty());
  pid.pop_back();
  const std::string left = "pid:" + pid;
  tcp_controls(m, left, {std::string(kWan) + ":9000"});
  icmp_controls(m, left, {kWan, gw});

  ASSERT_EQ(cli({"destroy", "a"}).exit_code, 0);
  tcp_attempts(m, left,
               {std::string(kWan) + ":9000", gw + ":9002", gw + ":9003",
                std::string(kHost) + ":9003", "10.209.0.1:9003"});
  udp_attempts(m, left, {std::string(kWan) + ":9100", std::string(kHost) + ":9101"},
               {&wan_udp, &host_udp});
  icmp_attempts(m, left, {kWan, gw, kHost});
  sh("kill -9 " + pid);
}

// The same for a bridged namespace: before destroy the leftover reaches its network's other
// member, after it nothing (its port is gone from the bridge).
TEST_F(EscapeTest, BridgedProcessLeftBehindAfterDestroyReachesNothing) {
  const std::string m = "bridged-left-behind";
  ASSERT_EQ(cli({"network", "create", "lan", "--subnet", "10.50.0.0/24", "--nat"}).exit_code, 0);
  ASSERT_EQ(cli({"create", "n1", "--network", "lan"}).exit_code, 0);
  ASSERT_EQ(cli({"create", "n2", "--network", "lan"}).exit_code, 0);
  const std::string n2 = address_of("n2");
  TcpResponder n2_svc("n2", "0.0.0.0", 9000, "n2\n"), wan("wan", kWan, 9001, "wan\n");
  ASSERT_TRUE(n2_svc.ready() && wan.ready());
  auto pid = sh("ip netns exec n1 setsid sleep 120 </dev/null >/dev/null 2>&1 & echo $!").out;
  ASSERT_FALSE(pid.empty());
  pid.pop_back();
  const std::string left = "pid:" + pid;
  tcp_controls(m, left, {n2 + ":9000", std::string(kWan) + ":9001"});

  ASSERT_EQ(cli({"destroy", "n1"}).exit_code, 0);
  tcp_attempts(m, left, {n2 + ":9000", std::string(kWan) + ":9001", "10.50.0.1:9001"});
  icmp_attempts(m, left, {n2, "10.50.0.1", kWan});
  sh("kill -9 " + pid);
}

// A command that daemonizes under `run`: the daemon had the network while the command ran; once
// run returns it must not be running at all (nor, if it were, reach anything).
TEST_F(EscapeTest, PrivateDaemonLeftBehindAfterRunIsGone) {
  const std::string m = "run-left-behind";
  TcpResponder wan("wan", kWan, 9000, "wan\n");
  ASSERT_TRUE(wan.ready());
  const std::string target = std::string(kWan) + ":9000";
  auto r = cli({"run", "--mode", "private", "--", "sh", "-c",
                "setsid sh -c 'sleep 120' </dev/null >/dev/null 2>&1 & echo $!; " +
                    std::string(kProbe) + " tcp 300 " + target});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string pid = r.out.substr(0, r.out.find('\n'));
  ASSERT_FALSE(pid.empty());
  control(m, "the daemon's namespace reached " + target + " during run",
          r.out.find(target + " open") != std::string::npos);
  bool alive = sh("test -e /proc/" + pid + "/ns/net").exit_code == 0;
  attempt(m, "daemon " + pid + " still running after run returned", alive);
  if (alive) {
    tcp_attempts(m, "pid:" + pid, {target});
    sh("kill -9 " + pid);
  }
}

// A default-deny namespace allowed one HTTPS server tries every way around its policy: other
// resolvers over UDP and TCP 53, DNS over TLS (853), HTTPS to other addresses (DoH), ICMP, the
// cloud metadata address, the gateway and host addresses, spoofed sources, IPv6, and flushing its
// own firewall as root. A namespace without a policy reaches every target (the controls).
TEST_F(EscapeTest, EgressPolicyBypassAttemptsAllFail) {
  const std::string m = "egress-policy";
  ASSERT_EQ(testing::wan_answers_for({"198.51.100.5", "198.51.100.53", "169.254.169.254"}), "");
  ASSERT_EQ(sh("ip route add 169.254.169.254/32 via " + std::string(kWan)).exit_code, 0);
  ASSERT_EQ(cli({"create", "open", "--mode", "private"}).exit_code, 0);
  ASSERT_EQ(cli({"create", "a", "--mode", "private", "--allow", "198.51.100.5:443/tcp"}).exit_code,
            0);
  const std::string gw = gateway_of("a");
  TcpResponder https("wan", "198.51.100.5", 443, "ok\n"),
      dns_tcp("wan", "198.51.100.53", 53, "d\n"), dot("wan", "198.51.100.53", 853, "t\n"),
      doh("wan", "198.51.100.53", 443, "h\n"), other_port("wan", "198.51.100.5", 8443, "o\n"),
      metadata("wan", "169.254.169.254", 80, "m\n"), host("", "0.0.0.0", 9000, "host\n");
  UdpRecorder dns_udp("wan", "198.51.100.53", 53), host_udp("", "0.0.0.0", 9100);
  for (const auto* r : {&https, &dns_tcp, &dot, &doh, &other_port, &metadata, &host}) {
    ASSERT_TRUE(r->ready());
  }
  ASSERT_TRUE(dns_udp.ready() && host_udp.ready());
  const Strings targets{"198.51.100.53:53", "198.51.100.53:853", "198.51.100.53:443",
                        "198.51.100.5:8443", "169.254.169.254:80"};
  tcp_controls(m, "open", targets);
  tcp_controls(m, "a", {"198.51.100.5:443"});
  icmp_controls(m, "open", {"198.51.100.53"});
  udp("open", "open", {"198.51.100.53:53"});
  settle();
  control(m, "udp open->198.51.100.53:53", !seen({&dns_udp}, "udp open 198.51.100.53:53").empty());

  tcp_attempts(m, "a", targets);
  tcp_attempts(m, "a", {gw + ":9000", std::string(kHost) + ":9000"});
  udp_attempts(m, "a", {"198.51.100.53:53", gw + ":9100", std::string(kHost) + ":9100"},
               {&dns_udp, &host_udp});
  icmp_attempts(m, "a", {"198.51.100.53", "198.51.100.5", kWan});
  // A spoofed source: another namespace's address (the guard drops it before the policy).
  const std::string other = address_of("open");
  spoof("a", other, "198.51.100.53", 53);
  settle();
  attempt(m, "udp spoofed as " + other,
          !seen({&dns_udp}, spoof_tag(other, "198.51.100.53", 53)).empty());
  // IPv6: the namespace has none, and gets none by adding an address itself.
  sh("ip netns exec a ip -6 addr add 2001:db8:1::2/64 dev eth0 nodad; ip netns exec a ip -6 route "
     "add default dev eth0");
  auto v6 = tcp("a", {"[2001:db8:1::1]:443"});
  attempt(m, "tcp over IPv6 (" + v6["[2001:db8:1::1]:443"] + ")",
          v6["[2001:db8:1::1]:443"] == "open");
  // Root inside flushes its own rules: the policy is the host's.
  sh("ip netns exec a sh -c 'nft flush ruleset; iptables -F; iptables -P OUTPUT ACCEPT'");
  tcp_attempts(m, "a", {"198.51.100.53:853", "169.254.169.254:80"}, "after flushing inside: ");
  tcp_controls(m, "a", {"198.51.100.5:443"});
}

TEST_F(EscapeTest, PrivateCannotReachTheHostsLoopback) {
  const std::string m = "private";
  auto made = cli({"create", "a", "--mode", "private"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  ASSERT_EQ(cli({"create", "l", "--mode", "private", "--publish", "127.0.0.1:8081:80"}).exit_code,
            0);
  const std::string gw = gateway_of("a"), host_if = host_if_of("a");
  TcpResponder l_web("l", "0.0.0.0", 80, "l web\n"), host_lo("", "127.0.0.1", 9001, "lo\n"),
      host_any("", "0.0.0.0", 9000, "host\n");
  UdpRecorder host_lo_udp("", "127.0.0.1", 9101), host_udp("", "0.0.0.0", 9100);
  ASSERT_TRUE(l_web.ready() && host_lo.ready() && host_any.ready());
  ASSERT_TRUE(host_lo_udp.ready() && host_udp.ready());
  tcp_controls(m, "", {"127.0.0.1:8081", "127.0.0.1:9001", "127.0.0.1:9000"});

  // The loopback services' ports on the gateway's address.
  tcp_attempts(m, "a", {gw + ":9001", gw + ":8081"});
  udp_attempts(m, "a", {gw + ":9101"}, {&host_lo_udp, &host_udp});

  watch_loopback(host_if);
  control(m, "127.0.0.0/8 routed out of a's eth0", route_loopback_via_gateway("a", gw));
  tcp_attempts(m, "a", {"127.0.0.1:9001", "127.0.0.1:9000", "127.0.0.1:8081"}, "via gateway: ");
  udp_attempts(m, "a", {"127.0.0.1:9101", "127.0.0.1:9100"}, {&host_lo_udp, &host_udp});
  icmp_attempts(m, "a", {"127.0.0.1"});
  control(m, "the host saw a's packets for 127.0.0.0/8", watched_packets(host_if) > 0);
  EXPECT_EQ(host_lo.peers(), Strings{"127.0.0.1"});  // the host's own control only
  EXPECT_EQ(l_web.peers().size(), 1U);
}

TEST_F(EscapeTest, PrivateCannotSpoofItsSource) {
  const std::string m = "private";
  ASSERT_NO_FATAL_FAILURE(create_neighbours());
  const std::string a = address_of("a"), b = address_of("b"), n1 = address_of("n1");
  const std::string gw = gateway_of("a"), gw_b = gateway_of("b");
  UdpRecorder wan_udp("wan", kWan, 9100), host_udp("", "0.0.0.0", 9100),
      b_udp("b", "0.0.0.0", 9100);
  TcpResponder wan("wan", kWan, 9000, "wan\n");
  ASSERT_TRUE(wan_udp.ready() && host_udp.ready() && b_udp.ready() && wan.ready());
  const std::vector<const UdpRecorder*> all{&wan_udp, &host_udp, &b_udp};

  spoof("a", a, kWan, 9100);  // its own address through the same raw socket
  settle();
  control(m, "raw udp with a's own source", seen({&wan_udp}, spoof_tag(a, kWan, 9100)) == kHost);
  const std::vector<std::pair<std::string, std::string>> spoofs{{b, kWan},
                                                                {kHost, kWan},
                                                                {gw, kWan},
                                                                {broadcast_of("a"), kWan},
                                                                {"198.51.100.7", kWan},
                                                                {n1, kWan},
                                                                {"127.0.0.1", kWan},
                                                                {b, gw},
                                                                {kWan, gw},
                                                                {gw_b, b}};
  for (const auto& [src, dst] : spoofs) spoof("a", src, dst, 9100);
  settle();
  for (const auto& [src, dst] : spoofs) {
    attempt(m, "raw udp " + src + " -> " + dst, !seen(all, spoof_tag(src, dst, 9100)).empty());
  }
  // Root in `a` gives itself an unassigned address and b's, then binds to them.
  ASSERT_EQ(sh("ip -n a addr add 10.209.255.9/32 dev eth0 && ip -n a addr add " + b +
               "/32 dev eth0 nodad")
                .exit_code,
            0);
  for (const std::string& src : {std::string("10.209.255.9"), b}) {
    udp("a", "a-as-" + src, {std::string(kWan) + ":9100"}, src);
    auto got = tcp("a", {std::string(kWan) + ":9000"}, src);
    attempt(m, "tcp bound to " + src, got[std::string(kWan) + ":9000"] == "open");
  }
  settle();
  for (const std::string& src : {std::string("10.209.255.9"), b}) {
    attempt(m, "udp bound to " + src,
            !seen(all, "udp a-as-" + src + " " + std::string(kWan) + ":9100").empty());
  }
  EXPECT_TRUE(wan.peers().empty());
}

TEST_F(EscapeTest, PrivateArpFloodPoisonsNothing) {
  const std::string m = "private";
  ASSERT_NO_FATAL_FAILURE(create_neighbours());
  const std::string a = address_of("a"), b = address_of("b"), n1 = address_of("n1");
  const std::string gw = gateway_of("a"), gw_b = gateway_of("b"), mac = mac_of("a", "eth0");
  ASSERT_FALSE(mac.empty());
  TcpResponder wan("wan", kWan, 9000, "wan\n");
  ASSERT_TRUE(wan.ready());
  icmp_controls(m, "", {b, n1, kWan});  // the world now holds neighbour entries for them
  icmp_controls(m, "b", {gw_b});
  const size_t entries_before = ip_json({"-4", "neigh"}).size();

  auto own = arp("a", "request", 5, a, gw);
  control(m, "ARP from a's own address is answered", own.sent == 5 && own.replies >= 1);
  arp_claim_attempts(
      m, "a", mac, a,
      {{"request", b, gw},
       {"reply", b, b},
       {"reply", kWan, kWan},
       {"reply", gw_b, gw_b},
       {"request", n1, gw},
       {"request", "10.50.0.1", gw},
       {"request", "10.70.0.1+32", gw, 2000}});  // 32 made-up senders, well under any table limit
  EXPECT_LE(ip_json({"-4", "neigh"}).size(), entries_before + 2);
  // The others still work, and a namespace made after the flood gets its neighbour entries.
  icmp_controls(m, "", {b, n1});
  tcp_controls(m, "b", {std::string(kWan) + ":9000"});
  ASSERT_EQ(cli({"create", "c", "--mode", "private"}).exit_code, 0);
  icmp_controls(m, "", {address_of("c")});
  tcp_controls(m, "c", {std::string(kWan) + ":9000"});
}

// Bridged attacker n1 on `lan` (--nat) next to n2; `out` (--nat) holds o1, which publishes only
// on the host's 127.0.0.1:8081; `mgmt` (--host-access) holds h1; p is private and publishes 8082.
class BridgedEscapeTest : public EscapeTest, public ::testing::WithParamInterface<const char*> {
 protected:
  void SetUp() override {
    EscapeTest::SetUp();
    // Isolation must not depend on whether bridged frames pass the IP hooks (br_netfilter).
    ASSERT_EQ(
        sh(std::string("echo ") + GetParam() + " > /proc/sys/net/bridge/bridge-nf-call-iptables")
            .exit_code,
        0);
    ASSERT_EQ(cli({"network", "create", "lan", "--subnet", "10.50.0.0/24", "--nat"}).exit_code, 0);
    ASSERT_EQ(cli({"network", "create", "out", "--subnet", "10.51.0.0/24", "--nat"}).exit_code, 0);
    ASSERT_EQ(
        cli({"network", "create", "mgmt", "--subnet", "10.52.0.0/24", "--host-access"}).exit_code,
        0);
    ASSERT_EQ(cli({"create", "n1", "--network", "lan"}).exit_code, 0);
    ASSERT_EQ(cli({"create", "n2", "--network", "lan"}).exit_code, 0);
    ASSERT_EQ(cli({"create", "o1", "--network", "out", "--publish", "127.0.0.1:8081:80"}).exit_code,
              0);
    ASSERT_EQ(cli({"create", "h1", "--network", "mgmt"}).exit_code, 0);
    ASSERT_EQ(cli({"create", "p", "--mode", "private", "--publish", "8082:80"}).exit_code, 0);
    n1_ = address_of("n1");
    n2_ = address_of("n2");
    o1_ = address_of("o1");
    h1_ = address_of("h1");
    p_ = address_of("p");
    gw_p_ = gateway_of("p");
    ASSERT_EQ(n1_, "10.50.0.2");
    ASSERT_FALSE(n2_.empty() || o1_.empty() || h1_.empty() || p_.empty() || gw_p_.empty());
  }
  std::string n1_, n2_, o1_, h1_, p_, gw_p_;
};

INSTANTIATE_TEST_SUITE_P(BrNetfilter, BridgedEscapeTest, ::testing::Values("0", "1"),
                         [](const auto& param) {
                           return std::string("call_iptables_") + param.param;
                         });

TEST_P(BridgedEscapeTest, ReachesOnlyItsNetworkAndTheInternet) {
  const std::string m = "bridged";
  TcpResponder n2_svc("n2", "0.0.0.0", 9000, "n2\n"), o1_svc("o1", "0.0.0.0", 9000, "o1\n"),
      o1_web("o1", "0.0.0.0", 80, "o1 web\n"), h1_svc("h1", "0.0.0.0", 9000, "h1\n"),
      p_svc("p", "0.0.0.0", 9000, "p\n"), p_web("p", "0.0.0.0", 80, "p web\n"),
      host_any("", "0.0.0.0", 9000, "host\n"), host_lo("", "127.0.0.1", 9001, "lo\n"),
      wan("wan", kWan, 9000, "wan\n");
  UdpRecorder n2_udp("n2", "0.0.0.0", 9100), o1_udp("o1", "0.0.0.0", 9100),
      h1_udp("h1", "0.0.0.0", 9100), p_udp("p", "0.0.0.0", 9100), host_udp("", "0.0.0.0", 9100),
      wan_udp("wan", kWan, 9100);
  for (const auto* r :
       {&n2_svc, &o1_svc, &o1_web, &h1_svc, &p_svc, &p_web, &host_any, &host_lo, &wan}) {
    ASSERT_TRUE(r->ready());
  }
  for (const auto* r : {&n2_udp, &o1_udp, &h1_udp, &p_udp, &host_udp, &wan_udp}) {
    ASSERT_TRUE(r->ready());
  }

  tcp_controls(m, "n1", {n2_ + ":9000", std::string(kWan) + ":9000", "10.50.0.1:8082"});
  tcp_controls(m, "h1", {"10.52.0.1:9000"});  // host access exists, so n1's failure is isolation
  tcp_controls(m, "", {"127.0.0.1:8081"});
  icmp_controls(m, "n1", {n2_, "10.50.0.1", kWan});
  udp("n1", "n1", {n2_ + ":9100", std::string(kWan) + ":9100"});
  settle();
  control(m, "udp n1->n2", !seen({&n2_udp}, "udp n1 " + n2_ + ":9100").empty());
  control(m, "udp n1->wan, masqueraded",
          seen({&wan_udp}, std::string("udp n1 ") + kWan + ":9100") == kHost);

  tcp_attempts(m, "n1",
               {"10.50.0.1:9000", std::string(kHost) + ":9000", "10.50.0.1:9001", "10.51.0.1:9000",
                o1_ + ":9000", o1_ + ":80", "10.52.0.1:9000", h1_ + ":9000", p_ + ":9000",
                gw_p_ + ":9000", "10.50.0.1:8081", std::string(kHost) + ":8081"});
  // Broadcasts may reach n2 (same network); nothing else may hear them.
  udp_attempts(m, "n1",
               {"10.50.0.1:9100", std::string(kHost) + ":9100", "10.51.0.1:9100", o1_ + ":9100",
                "10.52.0.1:9100", h1_ + ":9100", p_ + ":9100", gw_p_ + ":9100", "10.50.0.255:9100",
                "255.255.255.255:9100"},
               {&o1_udp, &h1_udp, &p_udp, &host_udp});
  icmp_attempts(m, "n1", {o1_, h1_, p_});
  EXPECT_EQ(host_any.peers(), Strings{h1_});  // h1's control only
  EXPECT_TRUE(o1_svc.peers().empty());
  EXPECT_TRUE(h1_svc.peers().empty());
}

TEST_P(BridgedEscapeTest, CannotUseAnotherNetworksAddresses) {
  const std::string m = "bridged";
  UdpRecorder wan_udp("wan", kWan, 9100), host_udp("", "0.0.0.0", 9100),
      o1_udp("o1", "0.0.0.0", 9100), h1_udp("h1", "0.0.0.0", 9100), p_udp("p", "0.0.0.0", 9100),
      n2_udp("n2", "0.0.0.0", 9100);
  TcpResponder host_any("", "0.0.0.0", 9000, "host\n"), o1_svc("o1", "0.0.0.0", 9000, "o1\n");
  for (const auto* r : {&wan_udp, &host_udp, &o1_udp, &h1_udp, &p_udp, &n2_udp}) {
    ASSERT_TRUE(r->ready());
  }
  ASSERT_TRUE(host_any.ready() && o1_svc.ready());
  const std::vector<const UdpRecorder*> all{&wan_udp, &host_udp, &o1_udp, &h1_udp, &p_udp, &n2_udp};

  spoof("n1", n1_, kWan, 9100);
  spoof("n1", n1_, n2_, 9100);
  settle();
  control(m, "raw udp with n1's own source", seen({&wan_udp}, spoof_tag(n1_, kWan, 9100)) == kHost);
  control(m, "raw udp with n1's own source to its peer",
          seen({&n2_udp}, spoof_tag(n1_, n2_, 9100)) == n1_);
  // A peer's address and an unused one of its own subnet are not n1's either.
  const std::vector<std::pair<std::string, std::string>> spoofs{{n2_, kWan},
                                                                {n2_, "10.50.0.1"},
                                                                {"10.50.0.77", kWan},
                                                                {"10.50.0.77", n2_},
                                                                {o1_, kWan},
                                                                {"10.51.0.1", kWan},
                                                                {p_, kWan},
                                                                {kHost, kWan},
                                                                {"198.51.100.7", kWan},
                                                                {h1_, kWan},
                                                                {"10.50.0.1", o1_},
                                                                {"10.51.0.1", o1_},
                                                                {h1_, "10.50.0.1"},
                                                                {"127.0.0.1", "10.50.0.1"},
                                                                {gw_p_, p_},
                                                                {h1_, "10.52.0.1"}};
  for (const auto& [src, dst] : spoofs) spoof("n1", src, dst, 9100);
  settle();
  for (const auto& [src, dst] : spoofs) {
    attempt(m, "raw udp " + src + " -> " + dst, !seen(all, spoof_tag(src, dst, 9100)).empty());
  }
  // Root in n1 takes addresses of the host-access network and of out's bridge, then binds to them.
  ASSERT_EQ(sh("ip -n n1 addr add 10.52.0.9/32 dev eth0 && ip -n n1 addr add 10.51.0.1/32 dev eth0")
                .exit_code,
            0);
  auto as_mgmt = tcp("n1", {"10.50.0.1:9000", "10.52.0.1:9000"}, "10.52.0.9");
  attempt(m, "tcp to the host from a host-access address", as_mgmt["10.50.0.1:9000"] == "open");
  attempt(m, "tcp to mgmt's bridge from its address", as_mgmt["10.52.0.1:9000"] == "open");
  auto as_gateway = tcp("n1", {o1_ + ":9000"}, "10.51.0.1");
  attempt(m, "tcp to o1 as its gateway", as_gateway[o1_ + ":9000"] == "open");
  EXPECT_TRUE(host_any.peers().empty());
  EXPECT_TRUE(o1_svc.peers().empty());
}

TEST_P(BridgedEscapeTest, CannotReachTheHostsLoopback) {
  const std::string m = "bridged";
  TcpResponder o1_web("o1", "0.0.0.0", 80, "o1 web\n"), host_lo("", "127.0.0.1", 9001, "lo\n"),
      host_any("", "0.0.0.0", 9000, "host\n");
  UdpRecorder host_lo_udp("", "127.0.0.1", 9101);
  ASSERT_TRUE(o1_web.ready() && host_lo.ready() && host_any.ready() && host_lo_udp.ready());
  tcp_controls(m, "", {"127.0.0.1:8081", "127.0.0.1:9001"});
  tcp_controls(m, "h1", {"10.52.0.1:9000"});
  // n1 has no host access, h1 has: neither reaches what is bound to the host's loopback.
  for (const auto& [ns, gw, bridge] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"n1", "10.50.0.1", bridge_of("lan")}, {"h1", "10.52.0.1", bridge_of("mgmt")}}) {
    tcp_attempts(m, ns, {gw + ":9001", gw + ":8081"});
    watch_loopback(bridge);
    control(m, "127.0.0.0/8 routed out of " + ns + "'s eth0", route_loopback_via_gateway(ns, gw));
    tcp_attempts(m, ns, {"127.0.0.1:9001", "127.0.0.1:8081", "127.0.0.1:9000"},
                 ns + " via gateway: ");
    udp_attempts(m, ns, {"127.0.0.1:9101"}, {&host_lo_udp});
    icmp_attempts(m, ns, {"127.0.0.1"});
    control(m, "the host saw " + ns + "'s packets for 127.0.0.0/8", watched_packets(bridge) > 0);
  }
  EXPECT_TRUE(host_lo.peers().size() == 1U);  // the host's own control
  EXPECT_TRUE(o1_web.peers().size() == 1U);
}

TEST_P(BridgedEscapeTest, ArpSpoofingStaysInsideItsNetwork) {
  const std::string m = "bridged";
  const std::string mac = mac_of("n1", "eth0");
  TcpResponder host_any("", "0.0.0.0", 9000, "host\n"), o1_svc("o1", "0.0.0.0", 9000, "o1\n"),
      p_svc("p", "0.0.0.0", 9000, "p\n"), wan("wan", kWan, 9000, "wan\n");
  ASSERT_TRUE(host_any.ready() && o1_svc.ready() && p_svc.ready() && wan.ready());
  icmp_controls(m, "", {n2_, o1_, p_, h1_, kWan});
  icmp_controls(m, "n2", {"10.50.0.1"});
  auto own = arp("n1", "request", 5, n1_, "10.50.0.1");
  control(m, "ARP from n1's own address is answered", own.sent == 5 && own.replies >= 1);

  arp_claim_attempts(m, "n1", mac, n1_,
                     {{"reply", "10.50.0.1", "10.50.0.1"},  // its own gateway, the bridge's address
                      {"reply", "10.51.0.1", "10.51.0.1"},
                      {"reply", o1_, o1_},
                      {"reply", h1_, h1_},
                      {"reply", p_, p_},
                      {"reply", gw_p_, gw_p_},
                      {"reply", kWan, kWan},
                      {"request", o1_, "10.50.0.1"},
                      {"request", kHost, "10.50.0.1"},
                      {"request", "10.70.0.1+32", "10.50.0.1"},
                      {"request", "10.50.0.1", n2_},  // the gateway's address, to its peer
                      {"reply", n2_, "10.50.0.1"}});
  // Claiming the gateway's address gives n1 nothing beyond its network.
  tcp_attempts(m, "n1",
               {"10.50.0.1:9000", std::string(kHost) + ":9000", o1_ + ":9000", p_ + ":9000"},
               "after impersonating the gateway: ");
  // Other networks' namespaces still work.
  icmp_controls(m, "", {o1_, p_, h1_});
  tcp_controls(m, "o1", {std::string(kWan) + ":9000"});
  tcp_controls(m, "p", {std::string(kWan) + ":9000"});
  // Nor does its peer on the same bridge take n1 for anyone else: n2's gateway entry included.
  Strings peer_poisoned;
  for (const auto& n : ip_json({"-n", "n2", "-4", "neigh"})) {
    if (n.value("lladdr", "") == mac && n.value("dst", "") != n1_) {
      peer_poisoned.push_back(n.value("dst", ""));
    }
  }
  attempt(m, "ARP claims poisoning peer n2: " + join(peer_poisoned), !peer_poisoned.empty());
  icmp_controls(m, "n2", {"10.50.0.1", kWan});
}

// n1 gets an egress policy (n2's 9000/tcp only) and tries every way around it on its bridge:
// other ports of its peer, UDP, ICMP, broadcasts, a published port through the gateway, the
// internet, its peer's and an unused address as its source, IPv6 (UDP) with a peer that has it
// too, and flushing its own firewall. Its peer, without a policy, reaches everything (the
// controls).
TEST_P(BridgedEscapeTest, EgressPolicyHasNoWayAroundOnTheBridge) {
  const std::string m = "bridged-policy";
  TcpResponder n2_ok("n2", "0.0.0.0", 9000, "ok\n"), n2_other("n2", "0.0.0.0", 9001, "o\n"),
      n1_svc("n1", "0.0.0.0", 9000, "n1\n"), p_web("p", "0.0.0.0", 80, "p\n"),
      wan("wan", kWan, 9000, "wan\n");
  UdpRecorder n2_udp("n2", "0.0.0.0", 9100), n2_v6("n2", "::", 9103), wan_udp("wan", kWan, 9100);
  for (const auto* r : {&n2_ok, &n2_other, &n1_svc, &p_web, &wan}) ASSERT_TRUE(r->ready());
  ASSERT_TRUE(n2_udp.ready() && n2_v6.ready() && wan_udp.ready());
  auto set = cli({"policy", "set", "n1", "--allow", n2_ + ":9000/tcp"});
  ASSERT_EQ(set.exit_code, 0) << set.err;
  // IPv6 on both ends, by their roots (netcell configures none).
  ASSERT_EQ(sh("ip -n n1 addr add fd00:50::1/64 dev eth0 nodad && "
               "ip -n n2 addr add fd00:50::2/64 dev eth0 nodad")
                .exit_code,
            0);

  const Strings other_ports{n2_ + ":9001", std::string(kWan) + ":9000", "10.50.0.1:8082"};
  tcp_controls(m, "n2", other_ports);
  tcp_controls(m, "n2", {n1_ + ":9000"});
  tcp_controls(m, "n1", {n2_ + ":9000"});
  icmp_controls(m, "n2", {n1_, kWan});
  udp("n2", "n2", {std::string(kWan) + ":9100", "[fd00:50::2]:9103"});
  settle();
  control(m, "udp n2->wan", !seen({&wan_udp}, std::string("udp n2 ") + kWan + ":9100").empty());
  control(m, "udp over IPv6 to n2's own address",
          !seen({&n2_v6}, "udp n2 [fd00:50::2]:9103").empty());

  tcp_attempts(m, "n1", other_ports);
  udp_attempts(m, "n1",
               {n2_ + ":9100", std::string(kWan) + ":9100", "10.50.0.255:9100",
                "255.255.255.255:9100", "[fd00:50::2]:9103"},
               {&n2_udp, &wan_udp, &n2_v6});
  icmp_attempts(m, "n1", {n2_, kWan, "10.50.0.1"});
  for (const auto& src : {n2_, std::string("10.50.0.77")}) {
    spoof("n1", src, n2_, 9100);
    spoof("n1", src, kWan, 9100);
  }
  settle();
  for (const auto& src : {n2_, std::string("10.50.0.77")}) {
    attempt(m, "raw udp as " + src + " to n2", !seen({&n2_udp}, spoof_tag(src, n2_, 9100)).empty());
    attempt(m, "raw udp as " + src + " to wan",
            !seen({&wan_udp}, spoof_tag(src, kWan, 9100)).empty());
  }
  sh("ip netns exec n1 sh -c 'nft flush ruleset; iptables -F; iptables -P OUTPUT ACCEPT'");
  tcp_attempts(m, "n1", {n2_ + ":9001"}, "after flushing inside: ");
  tcp_controls(m, "n1", {n2_ + ":9000"});
  EXPECT_EQ(n2_other.peers(), Strings{n2_}) << "n2's own control only";
}

// IPv6 is off on every host-side link: nothing the IPv4 firewall does not see reaches the host,
// and router advertisements from a namespace configure nothing there.
// IPv4-only namespaces (a private one with --no-ipv6, a bridged one): their host-side links carry
// no IPv6 at all.
TEST_F(EscapeTest, Ipv6NeitherReachesNorConfiguresTheHost) {
  ASSERT_EQ(cli({"create", "a", "--mode", "private", "--no-ipv6"}).exit_code, 0);
  ASSERT_EQ(cli({"network", "create", "lan", "--subnet", "10.50.0.0/24"}).exit_code, 0);
  ASSERT_EQ(cli({"create", "n1", "--network", "lan"}).exit_code, 0);
  // A ready link-local address on wan0 to send the control advertisement from.
  ASSERT_EQ(sh("ip -6 addr add fe80::1/64 dev wan0 nodad && "
               "ip -6 addr add 2001:db8::1/64 dev wan0 nodad && "
               "ip -n wan -6 addr add 2001:db8::2/64 dev eth0 nodad")
                .exit_code,
            0);
  UdpRecorder host_udp("", "::", 9200);
  ASSERT_TRUE(host_udp.ready());
  // Controls: the same datagram and the same advertisement work where IPv6 is on (world <-> wan).
  udp("wan", "wan", {"[2001:db8::1]:9200"});
  settle();
  control("private", "udp over IPv6 wan->world",
          !seen({&host_udp}, "udp wan [2001:db8::1]:9200").empty());
  probe("", {"ra", "wan0", "2001:db8:c0::"});
  settle();
  control("private", "an advertisement from the world configures wan",
          !ip_json({"-n", "wan", "-6", "route", "show", "default"}).empty());

  for (const auto& [ns, mode, host_side, port] :
       std::vector<std::tuple<std::string, std::string, std::string, std::string>>{
           {"a", "private", host_if_of("a"), host_if_of("a")},
           {"n1", "bridged", bridge_of("lan"), host_if_of("n1")}}) {
    const std::string mac = mac_of("", host_side);
    ASSERT_EQ(sh("ip netns exec " + ns +
                 " sh -c 'ip -6 addr add fe80::a/64 dev eth0 nodad && "
                 "ip -6 addr add 2001:db8:ff::2/64 dev eth0 nodad && "
                 "ip -6 route add 2001:db8::1/128 dev eth0 && "
                 "ip -6 neigh add 2001:db8::1 lladdr " +
                 mac + " dev eth0'")
                  .exit_code,
              0);
    auto rx = [&] {
      return ip_json({"-s", "link", "show", port})[0]["stats64"]["rx"]["packets"].get<long>();
    };
    long before = rx();
    udp(ns, ns, {"[2001:db8::1]:9200"}, "2001:db8:ff::2");
    probe(ns, {"ra", "eth0", "2001:db8:" + std::string(ns == "a" ? "aa" : "bb") + "::"});
    settle();
    control(mode, "the host side received " + ns + "'s IPv6 frames", rx() >= before + 4);
    attempt(mode, "udp over IPv6 to the host",
            !seen({&host_udp}, "udp " + ns + " [2001:db8::1]:9200").empty());
    bool routed = false;
    for (const auto& r : ip_json({"-6", "route"}))
      routed = routed || r.value("dev", "") == host_side;
    attempt(mode, "a router advertisement adds a host route into " + ns, routed);
    attempt(
        mode, "a router advertisement adds a host address on " + host_side,
        !ip_json({"-6", "addr", "show", "dev", host_side, "scope", "global"}).empty() &&
            !ip_json({"-6", "addr", "show", "dev", host_side, "scope", "global"})[0]["addr_info"]
                 .empty());
  }
}

// A dual-stack private namespace: over IPv6 it reaches the internet (NAT66) and nothing else: not
// another namespace, not the host's services at its global, host-end or link-local addresses, not
// with a spoofed source, and its router advertisements change nothing on the host.
TEST_F(EscapeTest, DualStackIpv6ReachesOnlyTheInternet) {
  const std::string m = "private";
  ASSERT_EQ(cli({"create", "d", "--mode", "private"}).exit_code, 0);
  ASSERT_EQ(cli({"create", "e", "--mode", "private"}).exit_code, 0);
  ASSERT_EQ(sh("ip -6 addr add 2001:db8::1/64 dev wan0 nodad && "
               "ip -n wan -6 addr add 2001:db8::2/64 dev eth0 nodad")
                .exit_code,
            0);
  auto address6 = [](const std::string& ns) {
    auto j = nlohmann::json::parse(cli({"info", ns, "--json"}).out);
    for (const auto& i : j["interfaces"]) {
      if (i["name"] == "lo") continue;
      for (const auto& a : i["addresses"]) {
        std::string text = a;
        if (text.find(':') != std::string::npos) return text.substr(0, text.find('/'));
      }
    }
    return std::string();
  };
  const std::string d6 = address6("d"), e6 = address6("e");
  ASSERT_FALSE(d6.empty());
  ASSERT_FALSE(e6.empty());
  const std::string gw6 = nlohmann::json::parse(cli({"info", "d", "--json"}).out)["gateway6"];
  std::string wan0_ll;
  for (const auto& l : ip_json({"-6", "addr", "show", "dev", "wan0", "scope", "link"})) {
    for (const auto& a : l["addr_info"]) wan0_ll = a.value("local", "");
  }
  ASSERT_FALSE(wan0_ll.empty());
  UdpRecorder host_udp("", "::", 9200);
  UdpRecorder wan_udp("wan", "::", 9200);
  UdpRecorder e_udp("e", "::", 9200);
  ASSERT_TRUE(host_udp.ready() && wan_udp.ready() && e_udp.ready());
  // Controls: the internet over IPv6, seen from the host's address (NAT66); the host reaches e.
  udp("d", "d", {"[2001:db8::2]:9200"});
  settle();
  control(m, "udp over IPv6 d->internet",
          seen({&wan_udp}, "udp d [2001:db8::2]:9200") == "2001:db8::1");
  udp("", "world", {"[" + e6 + "]:9200", "[::1]:9200"});
  settle();
  control(m, "udp over IPv6 world->e", !seen({&e_udp}, "udp world [" + e6 + "]:9200").empty());
  control(m, "udp over IPv6 world->host ::1", !seen({&host_udp}, "udp world [::1]:9200").empty());
  // The probe's echo is IPv4's: ping -6 for these.
  auto ping6 = [](const std::string& ns, const std::string& ip) {
    return cli({"exec", ns, "--", "ping", "-6", "-c", "1", "-W", "1", ip}).exit_code == 0;
  };
  control(m, "d icmpv6 echo to its host end " + gw6, ping6("d", gw6));
  const Strings targets{"[" + e6 + "]:9200", "[" + gw6 + "]:9200", "[2001:db8::1]:9200",
                        "[::1]:9200"};
  udp("d", "d", targets);
  settle();
  for (const auto& t : targets) {
    attempt(m, "udp over IPv6 " + t, !seen({&host_udp, &e_udp}, "udp d " + t).empty());
  }
  attempt(m, "icmpv6 echo to e " + e6, ping6("d", e6));
  // Spoofed sources: another address of its /64, e's address, a foreign global one.
  const std::string mine_too = d6.substr(0, d6.size() - 1) + "99";
  for (const std::string& spoofed : {mine_too, e6, std::string("2001:db8:ff::2")}) {
    ASSERT_EQ(sh("ip -n d -6 addr add " + spoofed + "/128 dev eth0 nodad").exit_code, 0);
    udp("d", "spoofed-" + spoofed, {"[2001:db8::2]:9200"}, spoofed);
    settle();
    attempt(m, "udp over IPv6 from spoofed " + spoofed,
            !seen({&wan_udp}, "udp spoofed-" + spoofed + " [2001:db8::2]:9200").empty());
  }
  // Link-local: the host's on another link, through d's own link, from a link-local address.
  ASSERT_EQ(sh("ip -n d -6 addr add fe80::d/64 dev eth0 nodad").exit_code, 0);
  udp("d", "ll", {"[" + wan0_ll + "%eth0]:9200", "[fe80::1%eth0]:9200", "[ff02::1%eth0]:9200"});
  settle();
  attempt(m, "udp to the host's link-local address",
          !seen({&host_udp}, "udp ll [" + wan0_ll + "%eth0]:9200").empty());
  attempt(m, "udp to a link-local address on its link",
          !seen({&host_udp}, "udp ll [fe80::1%eth0]:9200").empty());
  attempt(m, "udp to all nodes on its link",
          !seen({&host_udp}, "udp ll [ff02::1%eth0]:9200").empty());
  // Router advertisements from d (its own link-local source) change no route or address.
  const std::string routes = ip_json({"-6", "route"}).dump();
  const std::string addrs = ip_json({"-6", "addr"}).dump();
  probe("d", {"ra", "eth0", "2001:db8:dd::"});
  settle();
  attempt(m, "a router advertisement changes the host's routes",
          ip_json({"-6", "route"}).dump() != routes);
  attempt(m, "a router advertisement changes the host's addresses",
          ip_json({"-6", "addr"}).dump() != addrs);
}

// The IPv6 twin of PrivateReachesOnlyTheInternetAndPublishedPorts: over IPv6 a dual-stack
// namespace reaches the internet and published ports (its own by hairpin, another's at the host's
// addresses) and nothing else: not its neighbours' other ports, not the host's services, not a
// port published on [::1] only (that is the host's loopback, relayed by the host service).
TEST_F(EscapeTest, DualStackReachesOnlyPublishedPortsOverIpv6) {
  const std::string m = "private";
  ASSERT_EQ(cli({"create", "a", "--mode", "private", "--publish", "8080:80"}).exit_code, 0);
  ASSERT_EQ(cli({"create", "b", "--mode", "private", "--publish", "8082:80"}).exit_code, 0);
  ASSERT_EQ(cli({"create", "l", "--mode", "private", "--publish", "[::1]:8081:80"}).exit_code, 0);
  ASSERT_EQ(sh("ip -6 addr add 2001:db8::1/64 dev wan0 nodad && "
               "ip -n wan -6 addr add 2001:db8::2/64 dev eth0 nodad")
                .exit_code,
            0);
  auto info_of = [](const std::string& ns) {
    return nlohmann::json::parse(cli({"info", ns, "--json"}).out);
  };
  auto address6 = [&](const std::string& ns) {
    const auto j = info_of(ns);
    for (const auto& i : j["interfaces"]) {
      if (i["name"] == "lo") continue;
      for (const auto& a : i["addresses"]) {
        std::string text = a;
        if (text.find(':') != std::string::npos)
          return std::string("[") + text.substr(0, text.find('/')) + "]";
      }
    }
    return std::string();
  };
  const std::string b6 = address6("b"), l6 = address6("l");
  const std::string gw6 = std::string("[") + info_of("a").value("gateway6", "") + "]";
  const std::string gw6_b = std::string("[") + info_of("b").value("gateway6", "") + "]";
  const std::string host6 = "[2001:db8::1]";
  ASSERT_FALSE(b6.empty() || l6.empty() || gw6 == "[]" || gw6_b == "[]");
  TcpResponder a_web("a", "::", 80, "a\n"), b_svc("b", "::", 9000, "b\n"),
      b_web("b", "::", 80, "b web\n"), l_web("l", "::", 80, "l web\n"),
      host_any("", "::", 9000, "host\n"), host_lo("", "::1", 9001, "lo\n"),
      wan("wan", "2001:db8::2", 9000, "wan\n");
  UdpRecorder host_udp("", "::", 9100), b_udp("b", "::", 9100), wan_udp("wan", "::", 9100);
  for (const auto* r : {&a_web, &b_svc, &b_web, &l_web, &host_any, &host_lo, &wan}) {
    ASSERT_TRUE(r->ready());
  }
  ASSERT_TRUE(host_udp.ready() && b_udp.ready() && wan_udp.ready());

  tcp_controls(m, "a", {"[2001:db8::2]:9000", gw6 + ":8080", gw6 + ":8082", host6 + ":8082"});
  tcp_controls(m, "", {"[::1]:8081"});  // the loopback-only publication works for the host
  udp("a", "a", {"[2001:db8::2]:9100"});
  settle();
  control(m, "udp over IPv6 a->wan", !seen({&wan_udp}, "udp a [2001:db8::2]:9100").empty());

  tcp_attempts(m, "a",
               {b6 + ":9000", b6 + ":80", gw6_b + ":9000", gw6 + ":9000", host6 + ":9000",
                gw6 + ":9001", host6 + ":9001", gw6 + ":8081", host6 + ":8081", l6 + ":80"});
  udp_attempts(m, "a", {b6 + ":9100", gw6_b + ":9100", gw6 + ":9100", host6 + ":9100"},
               {&host_udp, &b_udp});
  EXPECT_TRUE(b_svc.peers().empty());
  EXPECT_TRUE(host_any.peers().empty());
  EXPECT_TRUE(host_lo.peers().empty());
  EXPECT_TRUE(l_web.peers().size() == 1U) << "only the host's control reached l";
}

}  // namespace
}  // namespace netcell
