// Egress policies of bridged namespaces end to end: namespace a with a policy on network lan
// (--nat) next to peers b and c without one, checked with real TCP, UDP and ICMP, each refusal
// next to a positive control, and read back from the kernel (`nft -j`, `ip -j`). Peer traffic on
// one bridge passes the IP hooks only where br_netfilter is active, so the traffic tests run both
// ways (bridge-nf-call-iptables 0 and 1). "The internet" is namespace `wan` (203.0.113.2), which
// also answers for 198.51.100.5 and .6 (TEST-NET-2).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <thread>
#include <tuple>

#include "support/net_helpers.h"
#include "support/process.h"

namespace netcell {
namespace {

using testing::address_of;
using testing::cli;
using testing::host_if_of;
using testing::ip_json;
using testing::mac_of;
using testing::probe;
using testing::sh;
using testing::tcp_probe;
using testing::TcpResponder;
using testing::UdpRecorder;
using Strings = std::vector<std::string>;

constexpr char kProbe[] = NETCELL_ESCAPE_PROBE_PATH;
constexpr char kWan[] = "203.0.113.2";
constexpr char kWorld[] = "203.0.113.1";  // the world's address towards the internet

// The elements of every set and map of netcell's table `family` (ip or bridge), as nft -j
// prints them.
Strings elements_of(const std::string& family) {
  auto j =
      nlohmann::json::parse(sh("nft -j list table " + family + " netcell").out, nullptr, false);
  Strings out;
  if (!j.is_object()) return out;
  for (const auto& item : j["nftables"]) {
    for (const char* kind : {"set", "map"}) {
      if (!item.contains(kind) || !item[kind].contains("elem")) continue;
      for (const auto& e : item[kind]["elem"]) {
        out.push_back(item[kind].value("name", "") + " " + e.dump());
      }
    }
  }
  return out;
}

// How many elements of set `set` in netcell's table `family` mention `needle`.
int mentions(const std::string& family, const std::string& set, const std::string& needle) {
  const Strings all = elements_of(family);
  return static_cast<int>(std::count_if(all.begin(), all.end(), [&](const std::string& e) {
    // The policy's interval sets are sharded (set_K, src/linux/nft_elements.h).
    const std::string name = e.substr(0, e.find(' '));
    const bool named =
        name == set || (name.rfind(set + "_", 0) == 0 &&
                        name.find_first_not_of("0123456789", set.size() + 1) == std::string::npos);
    return named && e.find(needle) != std::string::npos;
  }));
}

void settle() {
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
}

// The source address `recorder` saw on datagrams tagged `tag`, or "".
std::string source_seen(const UdpRecorder& recorder, const std::string& tag) {
  for (const auto& line : recorder.records()) {
    auto at = line.find(" netcell-escape " + tag);
    if (at != std::string::npos) return line.substr(0, at);
  }
  return "";
}

// Datagrams from `ns` to `target`: the source `recorder` saw them from, or "".
std::string udp_from(const std::string& ns, const std::string& target,
                     const UdpRecorder& recorder) {
  const std::string tag = ns + "-" + target;
  probe(ns, {"udp", "-t", tag, target});
  settle();
  return source_seen(recorder, "udp " + tag + " " + target);
}

// Hand-made UDP from `ns` with any source (root inside can): the source seen, or "".
std::string spoofed_udp(const std::string& ns, const std::string& source, const std::string& dest,
                        int port, const UdpRecorder& recorder) {
  probe(ns, {"spoof-udp", source, dest, std::to_string(port), "3"});
  settle();
  return source_seen(recorder, "spoof " + source + ">" + dest + ":" + std::to_string(port));
}

// One echo request: "reply", "filtered" (an ICMP administratively-prohibited error came back) or
// "none".
std::string ping(const std::string& ns, const std::string& address) {
  auto r = sh("ip netns exec " + ns + " ping -n -c1 -W1 " + address);
  if (r.exit_code == 0) return "reply";
  return r.out.find("Packet filtered") != std::string::npos ? "filtered" : "none";
}

// TCP from `ns` bound to `source`: open | closed | silent | error.
std::string tcp_from(const std::string& ns, const std::string& source, const std::string& target) {
  return probe(ns, {"tcp", "500", "-s", source, target})[target];
}

std::string policy_json(const std::string& ns) {
  return cli({"policy", "show", ns, "--json"}).out;
}

class BridgedPolicyTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    if (!testing::in_world()) GTEST_FAIL() << "run through tests/support/world.sh";
    ASSERT_EQ(
        sh(std::string("echo ") + GetParam() + " > /proc/sys/net/bridge/bridge-nf-call-iptables")
            .exit_code,
        0);
    ASSERT_EQ(testing::make_internet(), "");
    ASSERT_EQ(testing::wan_answers_for({"198.51.100.5", "198.51.100.6"}), "");
    ASSERT_EQ(cli({"network", "create", "lan", "--subnet", "10.60.0.0/24", "--nat"}).exit_code, 0);
    ASSERT_EQ(cli({"create", "b", "--network", "lan"}).exit_code, 0);
    ASSERT_EQ(cli({"create", "c", "--network", "lan"}).exit_code, 0);
    b_ = address_of("b");
    c_ = address_of("c");
    ASSERT_FALSE(b_.empty() || c_.empty());
    // a may reach one internet server, b's 9000/tcp and 9100/udp, and ping b; nothing else.
    auto made =
        cli({"create", "a", "--network", "lan", "--allow", "198.51.100.5:8000/tcp", "--allow",
             b_ + ":9000/tcp", "--allow", b_ + ":9100/udp", "--allow", b_ + "/icmp"});
    ASSERT_EQ(made.exit_code, 0) << made.err;
    a_ = address_of("a");
    ASSERT_FALSE(a_.empty());
  }
  std::string a_, b_, c_;
};

INSTANTIATE_TEST_SUITE_P(BrNetfilter, BridgedPolicyTest, ::testing::Values("0", "1"),
                         [](const auto& param) {
                           return std::string("call_iptables_") + param.param;
                         });

// The internet with NAT and the peers on the bridge follow a's policy; peers without a policy are
// unaffected; what a serves still answers its peers (replies are not egress); refusals are at
// once (a reset, an admin-prohibited error), not timeouts.
TEST_P(BridgedPolicyTest, InternetAndPeersFollowThePolicy) {
  std::vector<std::unique_ptr<TcpResponder>> servers;
  for (const auto& [ns, address, port] :
       std::vector<std::tuple<std::string, std::string, int>>{{"wan", "198.51.100.5", 8000},
                                                              {"wan", "198.51.100.5", 8001},
                                                              {"wan", "198.51.100.6", 8000},
                                                              {"b", "0.0.0.0", 9000},
                                                              {"b", "0.0.0.0", 9001},
                                                              {"c", "0.0.0.0", 9000},
                                                              {"a", "0.0.0.0", 9000}}) {
    servers.push_back(std::make_unique<TcpResponder>(ns, address, port, "x\n"));
    ASSERT_TRUE(servers.back()->ready()) << ns << " " << port;
  }
  UdpRecorder b_udp("b", "0.0.0.0", 9100), c_udp("c", "0.0.0.0", 9100), wan_udp("wan", kWan, 9100);
  ASSERT_TRUE(b_udp.ready() && c_udp.ready() && wan_udp.ready());

  const std::string internet_ok = "198.51.100.5:8000", other_port = "198.51.100.5:8001",
                    other_host = "198.51.100.6:8000", b_ok = b_ + ":9000", b_other = b_ + ":9001",
                    c_svc = c_ + ":9000", a_svc = a_ + ":9000";
  const Strings all{internet_ok, other_port, other_host, b_ok, b_other};
  auto control = tcp_probe("c", all);
  for (const auto& t : all) EXPECT_EQ(control[t], "open") << "positive control c -> " << t;
  EXPECT_EQ(tcp_probe("b", {c_svc})[c_svc], "open") << "positive control b -> c";
  // Connections into a are answered: its replies are not egress.
  EXPECT_EQ(tcp_probe("b", {a_svc})[a_svc], "open");
  EXPECT_EQ(tcp_probe("c", {a_svc})[a_svc], "open");

  auto got = tcp_probe("a", {internet_ok, other_port, other_host, b_ok, b_other, c_svc});
  EXPECT_EQ(got[internet_ok], "open");
  EXPECT_EQ(got[b_ok], "open");
  // "closed" within the probe's 500 ms: a reset, not a timeout.
  EXPECT_EQ(got[other_port], "closed");
  EXPECT_EQ(got[other_host], "closed");
  EXPECT_EQ(got[b_other], "closed");
  EXPECT_EQ(got[c_svc], "closed");

  // ICMP: allowed to b; refused with admin-prohibited to c and the internet, at once. (First: the
  // kernel sends a source at most 6 ICMP errors in a burst, and each denied datagram below gets
  // one.)
  EXPECT_EQ(ping("c", kWan), "reply") << "positive control";
  EXPECT_EQ(ping("a", b_), "reply");
  EXPECT_EQ(ping("a", c_), "filtered");
  EXPECT_EQ(ping("a", kWan), "filtered");

  // UDP: the allowed peer port arrives with a's own address (bridged: no NAT between peers).
  EXPECT_EQ(udp_from("c", b_ + ":9100", b_udp), c_) << "positive control";
  EXPECT_EQ(udp_from("b", c_ + ":9100", c_udp), b_) << "positive control";
  EXPECT_EQ(udp_from("c", std::string(kWan) + ":9100", wan_udp), kWorld) << "positive control";
  EXPECT_EQ(udp_from("a", b_ + ":9100", b_udp), a_);
  EXPECT_EQ(udp_from("a", c_ + ":9100", c_udp), "");
  EXPECT_EQ(udp_from("a", std::string(kWan) + ":9100", wan_udp), "");
  // Broadcasts from a reach no peer: the policy allows no broadcast address.
  EXPECT_EQ(udp_from("c", "10.60.0.255:9100", b_udp), c_) << "positive control";
  EXPECT_EQ(udp_from("a", "10.60.0.255:9100", b_udp), "");
  EXPECT_EQ(udp_from("a", "255.255.255.255:9100", c_udp), "");

  // The kernel counted each decision once: one SYN for the one connection to b:9000 (rule 1).
  auto shown = nlohmann::json::parse(policy_json("a"), nullptr, false);
  ASSERT_TRUE(shown.contains("counters")) << shown.dump();
  EXPECT_EQ(shown["counters"]["rules"][1]["packets"], 1) << shown.dump();
  EXPECT_EQ(shown["counters"]["rules"][0]["packets"], 1) << shown.dump();
}

// Root inside a takes a peer's address (c may reach b:9001, a may not) or writes raw packets and
// ARP claiming it: the bridge drops all of it, while a's own traffic still works. A peer without a
// policy cannot claim another's address either.
TEST_P(BridgedPolicyTest, NoNamespaceCanClaimAPeersAddress) {
  TcpResponder b_ok("b", "0.0.0.0", 9000, "ok\n"), b_other("b", "0.0.0.0", 9001, "o\n"),
      wan_svc("wan", kWan, 9000, "w\n");
  UdpRecorder b_udp("b", "0.0.0.0", 9100), wan_udp("wan", kWan, 9100);
  ASSERT_TRUE(b_ok.ready() && b_other.ready() && wan_svc.ready() && b_udp.ready() &&
              wan_udp.ready());
  const std::string target = b_ + ":9001", wan_target = std::string(kWan) + ":9000";
  EXPECT_EQ(tcp_probe("c", {target})[target], "open") << "positive control: c may";
  ASSERT_EQ(sh("ip -n a addr add " + c_ + "/32 dev eth0").exit_code, 0);
  EXPECT_EQ(tcp_from("a", a_, b_ + ":9000"), "open") << "positive control: a's own address";
  EXPECT_NE(tcp_from("a", c_, target), "open");
  EXPECT_NE(tcp_from("a", c_, wan_target), "open");
  EXPECT_EQ(b_other.peers(), Strings{c_}) << "only c's control reached b:9001";

  EXPECT_EQ(spoofed_udp("a", a_, b_, 9100, b_udp), a_) << "positive control: raw, own address";
  EXPECT_EQ(spoofed_udp("a", c_, b_, 9100, b_udp), "");
  EXPECT_EQ(spoofed_udp("a", c_, kWan, 9100, wan_udp), "");
  EXPECT_EQ(spoofed_udp("a", "10.60.0.77", b_, 9100, b_udp), "") << "an unused address of lan";
  // b has no policy: it may not claim c's address either.
  EXPECT_EQ(spoofed_udp("b", b_, kWan, 9100, wan_udp), kWorld) << "positive control";
  EXPECT_EQ(spoofed_udp("b", c_, kWan, 9100, wan_udp), "");
  EXPECT_EQ(spoofed_udp("b", a_, kWan, 9100, wan_udp), "");

  // ARP: a's own claims are answered; claiming c's address changes no peer's neighbour entry.
  ASSERT_EQ(ping("b", c_), "reply");  // b has an entry for c now
  const std::string a_mac = mac_of("a", "eth0"), c_mac = mac_of("c", "eth0");
  auto own = sh(std::string("ip netns exec a ") + kProbe + " arp eth0 request 3 " + a_ + " " + b_);
  int sent = -1, replies = -1, ms = -1;
  std::sscanf(own.out.c_str(), "sent %d replies %d ms %d", &sent, &replies, &ms);
  EXPECT_GE(replies, 1) << "positive control: ARP from a's own address is answered: " << own.out;
  for (const char* op : {"reply", "request"}) {
    auto r =
        sh(std::string("ip netns exec a ") + kProbe + " arp eth0 " + op + " 200 " + c_ + " " + b_);
    EXPECT_EQ(r.out.rfind("sent 200", 0), 0U) << r.out;
  }
  for (const auto& n : ip_json({"-n", "b", "-4", "neigh", "show", c_})) {
    EXPECT_NE(n.value("lladdr", ""), a_mac) << "b's entry for c points at a";
  }
  EXPECT_EQ(ping("b", c_), "reply");
}

// A network with host access: a reaches the host's services its policy allows, no others.
TEST_P(BridgedPolicyTest, HostAccessFollowsThePolicy) {
  ASSERT_EQ(
      cli({"network", "create", "mgmt", "--subnet", "10.61.0.0/24", "--host-access"}).exit_code, 0);
  ASSERT_EQ(cli({"create", "h", "--network", "mgmt", "--allow", "10.61.0.1:9000/tcp"}).exit_code,
            0);
  ASSERT_EQ(cli({"create", "h2", "--network", "mgmt"}).exit_code, 0);
  TcpResponder ok("", "0.0.0.0", 9000, "ok\n"), other("", "0.0.0.0", 9001, "o\n");
  UdpRecorder host_udp("", "0.0.0.0", 9100);
  ASSERT_TRUE(ok.ready() && other.ready() && host_udp.ready());
  const Strings both{"10.61.0.1:9000", "10.61.0.1:9001"};
  auto control = tcp_probe("h2", both);
  EXPECT_EQ(control[both[0]], "open") << "positive control";
  EXPECT_EQ(control[both[1]], "open") << "positive control";
  auto got = tcp_probe("h", both);
  EXPECT_EQ(got[both[0]], "open");
  EXPECT_EQ(got[both[1]], "closed");
  EXPECT_EQ(udp_from("h2", "10.61.0.1:9100", host_udp), address_of("h2")) << "positive control";
  EXPECT_EQ(udp_from("h", "10.61.0.1:9100", host_udp), "");
}

// policy set and clear on a live bridged namespace: peer traffic follows at once, and the bridge
// table's element comes and goes with the policy.
TEST_P(BridgedPolicyTest, SetAndClearChangePeerTrafficAtOnce) {
  ASSERT_EQ(cli({"create", "d", "--network", "lan"}).exit_code, 0);
  const std::string d = address_of("d");
  TcpResponder b_svc("b", "0.0.0.0", 9000, "b\n"), c_svc("c", "0.0.0.0", 9000, "c\n");
  ASSERT_TRUE(b_svc.ready() && c_svc.ready());
  const Strings both{b_ + ":9000", c_ + ":9000"};
  auto got = tcp_probe("d", both);
  EXPECT_EQ(got[both[0]], "open");
  EXPECT_EQ(got[both[1]], "open");
  EXPECT_EQ(mentions("bridge", "pol_routed", "\"" + d + "\""), 0);

  auto set = cli({"policy", "set", "d", "--allow", b_ + ":9000/tcp"});
  ASSERT_EQ(set.exit_code, 0) << set.err;
  got = tcp_probe("d", both);
  EXPECT_EQ(got[both[0]], "open");
  EXPECT_EQ(got[both[1]], "closed");
  EXPECT_EQ(mentions("bridge", "pol_routed", "\"" + d + "\""), 1);
  EXPECT_EQ(mentions("ip", "pol_ns", "\"" + d + "\""), 1);

  ASSERT_EQ(cli({"policy", "set", "d", "--allow", c_ + ":9000/tcp"}).exit_code, 0);
  got = tcp_probe("d", both);
  EXPECT_EQ(got[both[0]], "closed");
  EXPECT_EQ(got[both[1]], "open");
  EXPECT_EQ(mentions("bridge", "pol_routed", "\"" + d + "\""), 1);

  ASSERT_EQ(cli({"policy", "clear", "d"}).exit_code, 0);
  got = tcp_probe("d", both);
  EXPECT_EQ(got[both[0]], "open");
  EXPECT_EQ(got[both[1]], "open");
  EXPECT_EQ(mentions("bridge", "pol_routed", "\"" + d + "\""), 0);
  EXPECT_EQ(mentions("ip", "pol_ns", "\"" + d + "\""), 0);
  EXPECT_EQ(mentions("bridge", "port_src", "\"" + d + "\""), 1) << "the port stays pinned";
}

// destroy takes every element of a bridged namespace with a policy out of both tables.
TEST_P(BridgedPolicyTest, DestroyLeavesNoElement) {
  const std::string port = host_if_of("a"), needle = "\"" + a_ + "\"";
  ASSERT_FALSE(port.empty());
  // nft reads netcell's encodings back as the values meant.
  const Strings bridge = elements_of("bridge");
  const std::string pinned = "port_src {\"concat\":[\"" + port + "\"," + needle + "]}";
  EXPECT_EQ(std::count(bridge.begin(), bridge.end(), pinned), 1)
      << ::testing::PrintToString(bridge);
  EXPECT_EQ(std::count(bridge.begin(), bridge.end(), "pol_routed " + needle), 1);
  EXPECT_EQ(mentions("bridge", "bridge_ports", "\"" + port + "\""), 1);
  EXPECT_GE(mentions("ip", "pol_allow_tp", needle), 3);
  ASSERT_EQ(cli({"destroy", "a"}).exit_code, 0);
  for (const std::string family : {"bridge", "ip"}) {
    for (const auto& e : elements_of(family)) {
      EXPECT_EQ(e.find(needle), std::string::npos) << family << ": " << e;
      EXPECT_EQ(e.find("\"" + port + "\""), std::string::npos) << family << ": " << e;
    }
  }
  // The peers keep theirs.
  EXPECT_EQ(mentions("bridge", "port_src", "\"" + b_ + "\""), 1);
}

}  // namespace
}  // namespace netcell
