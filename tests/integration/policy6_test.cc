// Egress policies over IPv6: the IPv6 twins of policy_test.cc, flowlog_test.cc and
// resolver_attack_test.cc, in a world whose "internet" (`wan`) has 2001:db8:1::2 and the
// addresses 2001:db8:5::N on its loopback, and an authoritative stub (dns_stub.py, on 192.0.2.53)
// that serves AAAA records. Dual-stack private namespaces with a policy are checked with real TCP,
// UDP and ICMPv6 next to a namespace without one (the positive control), and read back from the
// kernel (`nft -j list table ip6 netcell`), `policy show --json` and `netcell log --json`.
//
// The attacks count in the escape suite's tally as mode "policy6" (tests/support/escape_tally.h).
#include <gtest/gtest.h>

#include <chrono>
#include <sstream>
#include <thread>

#include "support/dns_world.h"
#include "support/escape_tally.h"
#include "support/process.h"

namespace netcell {
namespace {

using testing::cli;
using testing::sh;
using testing::TcpResponder;
using testing::UdpRecorder;
using Strings = std::vector<std::string>;
using Clock = std::chrono::steady_clock;

constexpr char kWan6[] = "2001:db8:1::2";
constexpr char kHost6[] = "2001:db8:1::1";  // the world's ("the host's") global address
constexpr char kStub[] = "192.0.2.53";

std::string web6(const char* last) {
  return std::string("2001:db8:5::") + last;
}
std::string target(const std::string& address, int port) {
  return std::string(1, '[') + address + "]:" + std::to_string(port);
}

nlohmann::json info(const std::string& ns) {
  auto j = nlohmann::json::parse(cli({"info", ns, "--json"}).out, nullptr, false);
  return j.is_object() ? j : nlohmann::json::object();
}

// The namespace's global IPv6 address on eth0 as the kernel shows it ("" when none).
std::string address6_of(const std::string& ns) {
  for (const auto& link : testing::ip_json({"-n", ns, "-6", "addr", "show", "dev", "eth0"})) {
    for (const auto& a : link["addr_info"]) {
      if (a.value("scope", "") == "global") return a["local"];
    }
  }
  return "";
}

using testing::probe6;

std::map<std::string, std::string> tcp6(const std::string& ns, const Strings& targets,
                                        int timeout_ms = 1000) {
  return probe6(ns, "tcp", targets, timeout_ms);
}

// A datagram tagged `tag` from `ns` to `to`, then whether `recorder` saw it.
bool udp6_arrives(const std::string& ns, const std::string& to, const UdpRecorder& recorder) {
  const std::string tag = ns + "-" + std::to_string(Clock::now().time_since_epoch().count());
  sh("ip netns exec " + ns + " python3 " + testing::support_file("probe6.py") + " udp " + tag +
     " '" + to + "'");
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  for (const auto& line : recorder.records()) {
    if (line.find("netcell-probe6 " + tag) != std::string::npos) return true;
  }
  return false;
}

bool ping6(const std::string& ns, const std::string& ip) {
  return sh("ip netns exec " + ns + " ping -6 -c 1 -W 1 " + ip + " >/dev/null").exit_code == 0;
}

// The elements of ip6 netcell's set `base` (or its shards) that mention `needle`.
int elements6(const std::string& base, const std::string& needle) {
  return testing::elements_mentioning(base, needle, "ip6");
}

nlohmann::json counters(const std::string& ns) {
  auto j = nlohmann::json::parse(cli({"policy", "show", ns, "--json"}).out, nullptr, false);
  return j.is_object() && j.contains("counters") ? j["counters"] : nlohmann::json::object();
}

// `netcell log NS --json` lines about `destination`, waiting (at most 4 s) for at least `want`.
std::vector<nlohmann::json> logged(const std::string& ns, const std::string& destination,
                                   std::size_t want = 1) {
  std::vector<nlohmann::json> out;
  const auto deadline = Clock::now() + std::chrono::seconds(4);
  do {
    out.clear();
    std::istringstream lines(cli({"log", ns, "--json"}).out);
    for (std::string line; std::getline(lines, line);) {
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_object() && j.value("destination", "") == destination) out.push_back(j);
    }
    if (out.size() >= want) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  } while (Clock::now() < deadline);
  return out;
}

class Policy6Test : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::in_world()) GTEST_FAIL() << "run through tests/support/world.sh";
    ASSERT_EQ(testing::make_internet(), "");
    ASSERT_EQ(testing::make_internet6(), "");
    std::string batch = "addr add 192.0.2.53/32 dev lo\naddr add 198.51.100.5/32 dev lo\n";
    for (const char* last : {"5", "6", "7", "8", "b", "c", "10", "11", "30", "53"}) {
      batch += "addr add " + web6(last) + "/128 dev lo nodad\n";
    }
    ASSERT_EQ(sh("printf '" + batch + "' | ip -n wan -batch -").exit_code, 0);
    // The control: a dual-stack private namespace without a policy.
    ASSERT_EQ(cli({"create", "open", "--mode", "private"}).exit_code, 0);
    ASSERT_FALSE(address6_of("open").empty());
  }
  void TearDown() override {
    stub_.reset();
    for (const auto& ns : nlohmann::json::parse(cli({"list", "--json"}).out, nullptr, false)) {
      cli({"destroy", ns["name"].get<std::string>()});
    }
    sh("ip -all netns delete; ip link del wan0 2>/dev/null; true");
    testing::report_escape_attempts("policy6", {tried_, blocked_, controls_});
  }

  // One attack; `escaped` says it got through.
  void attempt(const std::string& what, bool escaped) {
    ++tried_;
    if (escaped) {
      ADD_FAILURE() << "ATTACK SUCCEEDED over IPv6: " << what;
    } else {
      ++blocked_;
    }
  }
  // The same probe against what may be reached must work, or its "blocked" proves nothing.
  void control(const std::string& what, bool worked) {
    ++controls_;
    EXPECT_TRUE(worked) << "positive control failed, the probe cannot be trusted: " << what;
  }

  void start_stub() {
    stub_ = std::make_unique<testing::DnsStub>(
        "wan", kStub,
        nlohmann::json{
            {"allowed.test", {{"a", {"198.51.100.5"}}, {"aaaa", {web6("10")}}}},
            {"other.test", {{"aaaa", {web6("30")}}}},
            // The chain within one answer.
            {"www.x.test", {{"cname", "edge.cdn.test"}}},
            {"edge.cdn.test", {{"aaaa", {web6("b")}}}},
            // A record of a name outside the chain slipped into an allowed answer.
            {"poison.x.test", {{"aaaa", {web6("c")}}, {"extra", {{"evil.cdn.test", web6("8")}}}}},
        });
    ASSERT_EQ(stub_->error(), "");
  }

  std::unique_ptr<testing::DnsStub> stub_;
  int tried_ = 0, blocked_ = 0, controls_ = 0;
};

// The IPv6 twin of PolicyTest.DefaultDenyReachesOnlyWhatItsRulesAllowAtTheRangesEdges: a
// default-deny namespace stays dual-stack and reaches over IPv6 exactly what its IPv6 rules allow,
// at the ranges' edges, refused at once (a reset) otherwise; its IPv6 rules' counters move.
TEST_F(Policy6Test, DefaultDenyReachesOnlyWhatItsIpv6RulesAllowAtTheRangesEdges) {
  auto made =
      cli({"create", "p1", "--mode", "private", "--allow", target(web6("5"), 8000) + "-8002/tcp",
           "--allow", "2001:db8:5::8/127/tcp", "--allow", target(web6("5"), 9000) + "/udp",
           "--allow", std::string(kWan6) + "/icmp"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  EXPECT_FALSE(info("p1").contains("ipv4_only")) << info("p1").dump();
  const std::string p1 = address6_of("p1");
  ASSERT_FALSE(p1.empty()) << "a namespace with a policy is dual-stack";
  std::vector<std::unique_ptr<TcpResponder>> servers;
  const Strings all{target(web6("5"), 7999), target(web6("5"), 8000), target(web6("5"), 8002),
                    target(web6("5"), 8003), target(web6("6"), 8000), target(web6("7"), 80),
                    target(web6("8"), 80),   target(web6("b"), 80)};
  for (const auto& t : all) {
    const auto close = t.find(']');
    servers.push_back(std::make_unique<TcpResponder>("wan", t.substr(1, close - 1),
                                                     std::stoi(t.substr(close + 2)), "x\n"));
    ASSERT_TRUE(servers.back()->ready()) << t;
  }
  UdpRecorder udp_ok("wan", web6("5"), 9000), udp_other("wan", web6("5"), 9001);
  ASSERT_TRUE(udp_ok.ready() && udp_other.ready());

  auto control = tcp6("open", all);
  for (const auto& t : all) EXPECT_EQ(control[t], "open") << "positive control " << t;
  const auto started = Clock::now();
  auto got = tcp6("p1", all);
  EXPECT_LT(Clock::now() - started, std::chrono::milliseconds(900)) << "refusals wait for nothing";
  EXPECT_EQ(got[target(web6("5"), 8000)], "open");
  EXPECT_EQ(got[target(web6("5"), 8002)], "open");
  EXPECT_EQ(got[target(web6("8"), 80)], "open");  // 2001:db8:5::8/127: ::8 and ::9
  EXPECT_EQ(got[target(web6("5"), 7999)], "closed");
  EXPECT_EQ(got[target(web6("5"), 8003)], "closed");
  EXPECT_EQ(got[target(web6("6"), 8000)], "closed");
  EXPECT_EQ(got[target(web6("7"), 80)], "closed");
  EXPECT_EQ(got[target(web6("b"), 80)], "closed");

  EXPECT_TRUE(udp6_arrives("open", target(web6("5"), 9001), udp_other)) << "positive control";
  EXPECT_TRUE(udp6_arrives("p1", target(web6("5"), 9000), udp_ok));
  EXPECT_FALSE(udp6_arrives("p1", target(web6("5"), 9001), udp_other));
  EXPECT_TRUE(ping6("open", web6("5"))) << "positive control";
  EXPECT_TRUE(ping6("p1", kWan6));
  EXPECT_FALSE(ping6("p1", web6("5")));

  // The kernel's view: p1's IPv6 address keys its elements in the ip6 table.
  EXPECT_EQ(elements6("pol6_ns", p1), 1);
  EXPECT_EQ(elements6("pol6_default", p1), 1);
  EXPECT_EQ(elements6("pol6_allow_tp", p1), 3);  // the tcp range, the /127, the udp port
  EXPECT_EQ(elements6("pol6_allow_icmp", p1), 1);
  EXPECT_EQ(elements6("pol6_open", p1), 0);
  // The IPv6 rules' counters: one SYN per connection that the rule let through.
  const auto c = counters("p1");
  ASSERT_EQ(c["rules"].size(), 4u) << c.dump();
  EXPECT_EQ(c["rules"][0]["packets"], 2) << c.dump();
  EXPECT_EQ(c["rules"][1]["packets"], 1) << c.dump();
  EXPECT_GE(c["rules"][3]["packets"].get<int>(), 1) << c.dump();
  EXPECT_GE(c["default"]["packets"].get<int>(), 5) << c.dump();

  // Destroy takes every IPv6 element of the policy with it.
  ASSERT_EQ(cli({"destroy", "p1"}).exit_code, 0);
  for (const char* set : {"pol6_ns", "pol6_default", "pol6_allow_tp", "pol6_allow_icmp"}) {
    EXPECT_EQ(elements6(set, p1 + "\""), 0) << set;
  }
}

// Deny beats allow over IPv6 whatever the order, and an allow default holds for IPv6 too; an
// IPv4-only policy (no IPv6 rule) refuses IPv6 at once (reset, ICMPv6 admin-prohibited) instead
// of leaving it open. Every refusal is one line of the namespace's log; `policy set` changes both
// families in one go.
TEST_F(Policy6Test, DenyBeatsAllowAndAnIpv4OnlyPolicyRefusesIpv6AtOnce) {
  TcpResponder a("wan", web6("5"), 8000, "a\n"), b("wan", web6("5"), 8001, "b\n"),
      v4("wan", "198.51.100.5", 8000, "4\n");
  UdpRecorder udp("wan", web6("6"), 9000);
  ASSERT_TRUE(a.ready() && b.ready() && v4.ready() && udp.ready());
  ASSERT_EQ(cli({"create", "p1", "--mode", "private", "--deny", target(web6("5"), 8001) + "/tcp",
                 "--allow", "2001:db8:5::/64/tcp"})
                .exit_code,
            0);
  ASSERT_EQ(cli({"create", "p2", "--mode", "private", "--egress", "allow", "--deny",
                 target(web6("5"), 8001)})
                .exit_code,
            0);
  ASSERT_EQ(
      cli({"create", "p3", "--mode", "private", "--allow", "198.51.100.5:8000/tcp"}).exit_code, 0);
  const Strings both{target(web6("5"), 8000), target(web6("5"), 8001)};
  auto open_got = tcp6("open", both);
  control("tcp over IPv6 from a namespace without a policy",
          open_got[both[0]] == "open" && open_got[both[1]] == "open");
  for (const char* ns : {"p1", "p2"}) {
    auto got = tcp6(ns, both);
    EXPECT_EQ(got[both[0]], "open") << ns;
    attempt(std::string(ns) + ": a denied IPv6 port inside an allowed /64",
            got[both[1]] != "closed");
  }
  // p3 allows IPv4 only: its IPv4 works, its IPv6 is refused at once, TCP, UDP and ICMPv6.
  control("p3's IPv4 rule",
          testing::tcp_probe("p3", {"198.51.100.5:8000"})["198.51.100.5:8000"] == "open");
  const auto started = Clock::now();
  auto got = tcp6("p3", both, 3000);
  EXPECT_LT(Clock::now() - started, std::chrono::milliseconds(1500)) << "not left to time out";
  attempt("IPv6 from a namespace whose policy allows IPv4 only",
          got[both[0]] != "closed" || got[both[1]] != "closed");
  attempt("UDP over IPv6 under an IPv4-only policy",
          udp6_arrives("p3", target(web6("6"), 9000), udp));
  control("UDP over IPv6 without a policy", udp6_arrives("open", target(web6("6"), 9000), udp));
  attempt("ICMPv6 echo under an IPv4-only policy", ping6("p3", web6("5")));
  // ICMPv6 admin-prohibited, at once: ping says so rather than waiting for its timeout.
  auto why = sh("ip netns exec p3 ping -6 -c 1 -W 3 " + web6("5") + " 2>&1");
  EXPECT_NE(why.out.find("Administratively prohibited"), std::string::npos) << why.out;

  // The log: the refused IPv6 flows, by the rule or by the default.
  const auto p1_log = logged("p1", web6("5"));
  ASSERT_EQ(p1_log.size(), 1u);
  EXPECT_EQ(p1_log[0]["protocol"], "tcp");
  EXPECT_EQ(p1_log[0]["source"], address6_of("p1"));
  EXPECT_EQ(p1_log[0]["port"], 8001);
  EXPECT_EQ(p1_log[0]["by"], "rule");
  EXPECT_EQ(p1_log[0]["rule"], "deny [2001:db8:5::5/128]:8001/tcp");
  const auto p3_log = logged("p3", web6("5"), 3);
  std::string kinds;
  for (const auto& l : p3_log) {
    kinds += std::string(l["protocol"]) + " ";
    EXPECT_EQ(l["by"], "default") << l.dump();
  }
  EXPECT_NE(kinds.find("tcp"), std::string::npos) << kinds;
  EXPECT_NE(kinds.find("icmpv6"), std::string::npos) << kinds;
  auto human = cli({"log", "p3"});
  EXPECT_NE(human.out.find("icmpv6 " + address6_of("p3") + " -> " + web6("5") + " echo-request"),
            std::string::npos)
      << human.out;
  // The rule counters include the IPv6 hits (p1: the /64 allowed one SYN, the deny one).
  const auto c = counters("p1");
  ASSERT_EQ(c["rules"].size(), 2u) << c.dump();
  for (const auto& rule : c["rules"]) EXPECT_EQ(rule["packets"], 1) << c.dump();
  auto stats = nlohmann::json::parse(cli({"stats", "p1", "--json"}).out, nullptr, false);
  EXPECT_EQ(stats["egress"]["rules"], c["rules"]) << stats.dump();

  // policy set on p3 opens IPv6 port 8001 and closes IPv4 in one change, and keeps it dual-stack.
  auto set = cli({"policy", "set", "p3", "--allow", target(web6("5"), 8001) + "/tcp"});
  ASSERT_EQ(set.exit_code, 0) << set.err;
  EXPECT_FALSE(info("p3").contains("ipv4_only"));
  got = tcp6("p3", both);
  EXPECT_EQ(got[both[0]], "closed");
  EXPECT_EQ(got[both[1]], "open");
  EXPECT_EQ(testing::tcp_probe("p3", {"198.51.100.5:8000"})["198.51.100.5:8000"], "closed");
  ASSERT_EQ(cli({"policy", "clear", "p3"}).exit_code, 0);
  EXPECT_EQ(elements6("pol6_ns", address6_of("p3")), 0);
  EXPECT_EQ(tcp6("p3", both)[both[0]], "open") << "no policy: the mode's own rules";
}

// The host over IPv6 — its end of the link (the gateway), its link-local address on that link,
// its global address — is refused to a namespace with a policy, as over IPv4; DNS to any IPv6
// address (53, and DoT's 853 under a deny default) is refused; the namespace's neighbour discovery
// with the host still works, and its DNS goes to netcell's resolver (on the IPv4 gateway).
TEST_F(Policy6Test, TheHostAndOtherResolversOverIpv6AreRefused) {
  ASSERT_NO_FATAL_FAILURE(start_stub());
  ASSERT_EQ(cli({"create", "p1", "--mode", "private", "--allow", kWan6, "--allow",
                 "allowed.test:80/tcp", "--dns", kStub})
                .exit_code,
            0);
  const auto j = info("p1");
  const std::string gateway6 = j.value("gateway6", "");
  ASSERT_FALSE(gateway6.empty()) << j.dump();
  const std::string host_if = j["host_interface"];
  // A link-local address of the host (its uplink's), made reachable on the namespace's link by
  // its root: a permanent neighbour entry with the host end's MAC.
  std::string link_local, host_mac;
  for (const auto& l : testing::ip_json({"-6", "addr", "show", "dev", "wan0"})) {
    for (const auto& a : l["addr_info"]) {
      if (a.is_object() && a.value("scope", "") == "link") link_local = a.value("local", "");
    }
  }
  for (const auto& l : testing::ip_json({"link", "show", "dev", host_if})) host_mac = l["address"];
  ASSERT_FALSE(link_local.empty() || host_mac.empty());
  ASSERT_EQ(
      sh("ip -n p1 neigh replace " + link_local + " lladdr " + host_mac + " dev eth0 nud permanent")
          .exit_code,
      0);
  // The host's services, on every address; the internet's DNS and DoT on IPv6.
  TcpResponder host_tcp("", "::", 7000, "host\n"), dns_tcp("wan", web6("53"), 53, "d\n"),
      dot("wan", web6("53"), 853, "t\n");
  UdpRecorder dns_udp("wan", web6("53"), 53);
  ASSERT_TRUE(host_tcp.ready() && dns_tcp.ready() && dot.ready() && dns_udp.ready());
  const Strings host{target(gateway6, 7000), target(kHost6, 7000),
                     target(link_local + "%eth0", 7000)};

  control("the host's service from the internet",
          tcp6("wan", {target(kHost6, 7000)})[target(kHost6, 7000)] == "open");
  const auto host_got = tcp6("p1", host);
  for (const auto& t : host) attempt("the host over IPv6 at " + t, host_got.at(t) == "open");
  // Refused, not dropped: the client fails at once.
  EXPECT_EQ(host_got.at(target(gateway6, 7000)), "closed");
  EXPECT_EQ(host_got.at(target(kHost6, 7000)), "closed");

  const Strings dns{target(web6("53"), 53), target(web6("53"), 853), target(gateway6, 53)};
  control(
      "DNS and DoT over IPv6 without a policy",
      tcp6("open", {dns[0], dns[1]})[dns[0]] == "open" && udp6_arrives("open", dns[0], dns_udp));
  const auto dns_got = tcp6("p1", dns);
  for (const auto& t : dns) attempt("DNS over TCP/IPv6 to " + t, dns_got.at(t) == "open");
  attempt("DNS over UDP/IPv6 to another resolver", udp6_arrives("p1", dns[0], dns_udp));
  EXPECT_EQ(probe6("p1", "dns", {target(gateway6, 53)})[target(gateway6, 53)], "unreachable");
  // DNS (53) is refused as DNS, DoT (853) by the default; the log's order is the kernel's.
  const auto refused = logged("p1", web6("53"), 2);
  bool dns_logged = false;
  for (const auto& r : refused) {
    const int port = r.value("port", 0);
    if (port == 53) dns_logged = true;
    EXPECT_EQ(r["by"], port == 53 ? "dns" : "default") << r.dump();
  }
  EXPECT_TRUE(dns_logged) << "the refused DNS query is logged";

  // What IPv6 needs keeps working: the namespace's entry for its gateway, and the allowed
  // internet over IPv6; DNS through netcell's resolver, which learns the AAAA answer.
  // Without its permanent entry for the gateway, the namespace still reaches the host end: its
  // end is NOARP and has the host end's MAC, so the entry comes back (naming that MAC) without
  // neighbour discovery.
  ASSERT_EQ(sh("ip -n p1 neigh del " + gateway6 + " dev eth0").exit_code, 0);
  control("the allowed internet over IPv6 after the gateway's entry was deleted",
          ping6("p1", kWan6));
  bool resolved = false;
  const auto entries =
      testing::ip_json({"-n", "p1", "-6", "neigh", "show", "nud", "all", "dev", "eth0"});
  for (const auto& n : entries) {
    resolved = resolved || (n.value("dst", "") == gateway6 && n.value("lladdr", "") == host_mac);
  }
  EXPECT_TRUE(resolved) << "the gateway's entry came back, naming the host end: " << entries.dump();
  auto lookup = testing::dig("p1", j.value("gateway", ""), "allowed.test", "AAAA");
  control("DNS through netcell's resolver over the IPv4 gateway",
          lookup.status == "NOERROR" && lookup.joined() == web6("10"));
}

// The resolver learns AAAA answers (a CNAME chain within one answer included) into the namespace's
// IPv6 learned set before it answers: the allowed name's address opens at once and its domain
// rule's counter moves; an address of the same "CDN" that no answer gave (`nc` to it directly), a
// record outside the chain, and another namespace's learned address stay refused and are logged;
// a spoofed source gets nothing through.
TEST_F(Policy6Test, AaaaAnswersOpenOnlyTheirAddressesForTheirNamespace) {
  ASSERT_NO_FATAL_FAILURE(start_stub());
  TcpResponder web("wan", "::", 80, "hello\n");
  ASSERT_TRUE(web.ready());
  for (const char* ns : {"p1", "p2"}) {
    auto made = cli({"create", ns, "--mode", "private", "--allow", "allowed.test:80/tcp", "--allow",
                     "*.x.test:80/tcp", "--dns", kStub});
    ASSERT_EQ(made.exit_code, 0) << made.err;
  }
  const std::string p1 = address6_of("p1"), p2 = address6_of("p2");
  ASSERT_FALSE(p1.empty() || p2.empty());
  const Strings cdn{target(web6("10"), 80), target(web6("11"), 80)};
  auto before = tcp6("p1", cdn);
  EXPECT_EQ(before[cdn[0]], "closed") << "nothing learned yet";
  control("the CDN from a namespace without a policy", tcp6("open", cdn)[cdn[1]] == "open");

  auto answer = testing::dig("p1", info("p1").value("gateway", ""), "allowed.test", "AAAA");
  ASSERT_EQ(answer.status, "NOERROR");
  ASSERT_EQ(answer.joined(), web6("10"));
  // Right after the answer: learned already.
  auto after = tcp6("p1", cdn);
  control("the answered address right after the answer", after[cdn[0]] == "open");
  attempt("another address of the same CDN, never answered", after[cdn[1]] != "closed");
  EXPECT_GE(elements6("pol6_learned_tp", web6("10")), 1);
  EXPECT_EQ(elements6("pol6_learned_tp", web6("11")), 0);
  const auto c = counters("p1");
  ASSERT_EQ(c["domains"].size(), 2u) << c.dump();
  EXPECT_GE(c["domains"][0]["packets"].get<int>(), 1) << c.dump();
  const auto never = logged("p1", web6("11"), 2);  // before the answer, and after it
  ASSERT_EQ(never.size(), 2u);
  for (const auto& l : never) {
    EXPECT_EQ(l["by"], "default");
    EXPECT_EQ(l["source"], p1);
    EXPECT_EQ(l["port"], 80);
  }

  // The CNAME chain within one answer; a record outside the chain opens nothing.
  auto chained = testing::dig("p1", info("p1").value("gateway", ""), "www.x.test", "AAAA");
  EXPECT_EQ(chained.joined(), web6("b"));
  EXPECT_EQ(tcp6("p1", {target(web6("b"), 80)})[target(web6("b"), 80)], "open");
  auto poisoned = testing::dig("p1", info("p1").value("gateway", ""), "poison.x.test", "AAAA");
  EXPECT_EQ(poisoned.status, "NOERROR");
  attempt("an AAAA record outside the answer's chain",
          tcp6("p1", {target(web6("8"), 80)})[target(web6("8"), 80)] != "closed");
  control("poison.x.test's own address",
          tcp6("p1", {target(web6("c"), 80)})[target(web6("c"), 80)] == "open");

  // p2 never asked: p1's learned IPv6 addresses open nothing there.
  attempt("another namespace's learned IPv6 address", tcp6("p2", {cdn[0]})[cdn[0]] != "closed");
  // p2 claiming p1's address as its source (its root adds it): dropped before any policy.
  sh("ip -n p2 addr add " + p1 + "/128 dev eth0 nodad");
  auto spoofed =
      sh("ip netns exec p2 python3 -c \"import socket; s = socket.socket(socket.AF_INET6); "
         "s.settimeout(1); s.bind(('" +
         p1 + "', 0)); s.connect(('" + web6("10") + "', 80)); print('open')\" 2>&1");
  attempt("a spoofed IPv6 source (p1's address from p2)",
          spoofed.out.find("open") != std::string::npos);
  EXPECT_EQ(elements6("pol6_learned_tp", p2), 0);
  // Destroy takes what the namespace learned with it.
  ASSERT_GE(elements6("pol6_learned_tp", p1), 1);
  ASSERT_EQ(cli({"destroy", "p1"}).exit_code, 0);
  EXPECT_EQ(elements6("pol6_learned_tp", p1), 0);
}

}  // namespace
}  // namespace netcell
