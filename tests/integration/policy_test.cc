// Egress policies end to end: what a private namespace with a policy reaches, checked with real
// TCP, UDP and ICMP next to a namespace without one (the positive control) and read back from the
// kernel's ruleset (`nft -j`). "The internet" is namespace `wan`, which also answers for a few
// addresses of TEST-NET-2 (198.51.100.0/24).
#include "netcell/policy.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "netcell/manager.h"
#include "support/process.h"

namespace netcell {
namespace {

using testing::cli;
using testing::sh;
using testing::tcp_probe;
using testing::TcpResponder;
using testing::UdpRecorder;
using Strings = std::vector<std::string>;

constexpr char kWan[] = "203.0.113.2";
constexpr char kHost[] = "203.0.113.1";

std::string address_of(const std::string& ns) {
  auto j = nlohmann::json::parse(cli({"info", ns, "--json"}).out, nullptr, false);
  if (!j.is_object()) return "";
  for (const auto& iface : j["interfaces"]) {
    if (iface["name"] == "eth0") {
      std::string a = iface["addresses"][0];
      return a.substr(0, a.find('/'));
    }
  }
  return "";
}

using testing::elements_mentioning;

// Datagrams from `ns` to each target, then whether `recorder` saw them (by payload tag).
bool udp_arrives(const std::string& ns, const std::string& target, const UdpRecorder& recorder) {
  const std::string tag = ns + "-" + target;
  testing::probe(ns, {"udp", "-t", tag, target});
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  for (const auto& line : recorder.records()) {
    if (line.find("netcell-escape udp " + tag) != std::string::npos) return true;
  }
  return false;
}

bool icmp_answered(const std::string& ns, const std::string& target) {
  return testing::probe(ns, {"icmp", "300", target})[target] == "reply";
}

class PolicyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::in_world()) GTEST_FAIL() << "run through tests/support/world.sh";
    ASSERT_EQ(testing::make_internet(), "");
    // wan also answers for 198.51.100.5 and .6.
    ASSERT_EQ(testing::wan_answers_for({"198.51.100.5", "198.51.100.6"}), "");
    // The control: a private namespace without a policy (IPv4-only: these are the IPv4 cases;
    // policy6_test.cc has their IPv6 twins).
    ASSERT_EQ(cli({"create", "open", "--mode", "private", "--no-ipv6"}).exit_code, 0);
  }
};

TEST_F(PolicyTest, DefaultDenyReachesOnlyWhatItsRulesAllowAtTheRangesEdges) {
  auto made = cli({"create", "p1", "--mode", "private", "--allow", "198.51.100.5:8000-8002/tcp",
                   "--allow", "198.51.100.5:9000/udp", "--allow", std::string(kWan) + "/icmp"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  std::vector<std::unique_ptr<TcpResponder>> tcp;
  for (const char* target : {"198.51.100.5:7999", "198.51.100.5:8000", "198.51.100.5:8002",
                             "198.51.100.5:8003", "198.51.100.6:8000"}) {
    std::string t = target;
    auto colon = t.find(':');
    tcp.push_back(std::make_unique<TcpResponder>("wan", t.substr(0, colon),
                                                 std::stoi(t.substr(colon + 1)), "x\n"));
    ASSERT_TRUE(tcp.back()->ready()) << t;
  }
  UdpRecorder udp_ok("wan", "198.51.100.5", 9000), udp_other("wan", "198.51.100.5", 9001);
  ASSERT_TRUE(udp_ok.ready() && udp_other.ready());

  const Strings all{"198.51.100.5:7999", "198.51.100.5:8000", "198.51.100.5:8002",
                    "198.51.100.5:8003", "198.51.100.6:8000"};
  auto control = tcp_probe("open", all);
  for (const auto& t : all) EXPECT_EQ(control[t], "open") << "positive control " << t;
  auto got = tcp_probe("p1", all);
  EXPECT_EQ(got["198.51.100.5:8000"], "open");
  EXPECT_EQ(got["198.51.100.5:8002"], "open");
  // Refused at once with a reset, not left to time out.
  EXPECT_EQ(got["198.51.100.5:7999"], "closed");
  EXPECT_EQ(got["198.51.100.5:8003"], "closed");
  EXPECT_EQ(got["198.51.100.6:8000"], "closed");

  EXPECT_TRUE(udp_arrives("open", "198.51.100.5:9001", udp_other)) << "positive control";
  EXPECT_TRUE(udp_arrives("p1", "198.51.100.5:9000", udp_ok));
  EXPECT_FALSE(udp_arrives("p1", "198.51.100.5:9001", udp_other));

  EXPECT_TRUE(icmp_answered("open", "198.51.100.5")) << "positive control";
  EXPECT_TRUE(icmp_answered("p1", kWan));
  EXPECT_FALSE(icmp_answered("p1", "198.51.100.5"));

  // The kernel's view: p1's address keys its elements.
  const std::string p1 = address_of("p1");
  EXPECT_EQ(elements_mentioning("pol_ns", p1), 1);
  EXPECT_EQ(elements_mentioning("pol_allow_tp", p1), 2);  // the tcp range, the udp port
  EXPECT_EQ(elements_mentioning("pol_allow_icmp", p1), 1);
  EXPECT_EQ(elements_mentioning("pol_open", p1), 0);

  // Destroy takes every element of the policy with it.
  ASSERT_EQ(cli({"destroy", "p1"}).exit_code, 0);
  for (const char* set : {"pol_ns", "pol_allow_tp", "pol_allow_icmp"}) {
    EXPECT_EQ(elements_mentioning(set, p1 + "\""), 0) << set;
  }
}

TEST_F(PolicyTest, DenyBeatsAllowWhateverTheOrder) {
  TcpResponder a("wan", "198.51.100.5", 8000, "a\n"), b("wan", "198.51.100.5", 8001, "b\n");
  ASSERT_TRUE(a.ready() && b.ready());
  ASSERT_EQ(cli({"create", "p1", "--mode", "private", "--deny", "198.51.100.5:8001/tcp", "--allow",
                 "198.51.100.0/24/tcp"})
                .exit_code,
            0);
  ASSERT_EQ(
      cli({"create", "p2", "--mode", "private", "--egress", "allow", "--deny", "198.51.100.5:8001"})
          .exit_code,
      0);
  for (const std::string ns : {"p1", "p2"}) {
    auto got = tcp_probe(ns, {"198.51.100.5:8000", "198.51.100.5:8001"});
    EXPECT_EQ(got["198.51.100.5:8000"], "open") << ns;
    EXPECT_EQ(got["198.51.100.5:8001"], "closed") << ns;
  }
  // p2's default is allow: the rest of the internet is open to it, not to p1.
  TcpResponder other("wan", kWan, 8002, "o\n");
  ASSERT_TRUE(other.ready());
  EXPECT_EQ(tcp_probe("p2", {std::string(kWan) + ":8002"})[std::string(kWan) + ":8002"], "open");
  EXPECT_EQ(tcp_probe("p1", {std::string(kWan) + ":8002"})[std::string(kWan) + ":8002"], "closed");
}

// An allow rule never opens what the mode closes: other namespaces, the host's own services on the
// gateway and host addresses, another namespace's published port reached through the host.
TEST_F(PolicyTest, AnAllowRuleNeverWidensTheMode) {
  ASSERT_EQ(cli({"create", "p1", "--mode", "private", "--egress", "deny", "--allow", "0.0.0.0/0"})
                .exit_code,
            0);
  ASSERT_EQ(cli({"create", "web", "--mode", "private", "--publish", "8080:80"}).exit_code, 0);
  const std::string web = address_of("web");
  auto info = nlohmann::json::parse(cli({"info", "p1", "--json"}).out);
  const std::string gw = info["gateway"];
  TcpResponder web_srv("web", "0.0.0.0", 80, "web\n"), host("", "0.0.0.0", 9000, "host\n"),
      wan("wan", kWan, 9000, "wan\n");
  ASSERT_TRUE(web_srv.ready() && host.ready() && wan.ready());
  const std::string to_wan = std::string(kWan) + ":9000";
  EXPECT_EQ(tcp_probe("p1", {to_wan})[to_wan], "open") << "positive control";
  auto got = tcp_probe("p1", {web + ":80", gw + ":9000", std::string(kHost) + ":9000"});
  EXPECT_NE(got[web + ":80"], "open");
  EXPECT_NE(got[gw + ":9000"], "open");
  EXPECT_NE(got[std::string(kHost) + ":9000"], "open");
}

// Default deny also closes another namespace's published port reached through the host's
// address (a DNAT path), which a namespace without a policy may use; and the namespace's own
// published port still serves the outside (replies are not egress).
TEST_F(PolicyTest, DefaultDenyCoversPublishedPortsAndKeepsItsOwnWorking) {
  ASSERT_EQ(cli({"create", "web", "--mode", "private", "--publish", "8080:80"}).exit_code, 0);
  ASSERT_EQ(cli({"create", "p1", "--mode", "private", "--egress", "deny", "--publish", "8081:80"})
                .exit_code,
            0);
  TcpResponder web_srv("web", "0.0.0.0", 80, "web\n"), p1_srv("p1", "0.0.0.0", 80, "p1\n");
  ASSERT_TRUE(web_srv.ready() && p1_srv.ready());
  const std::string published = std::string(kHost) + ":8080";
  EXPECT_EQ(tcp_probe("open", {published})[published], "open") << "positive control";
  EXPECT_EQ(tcp_probe("p1", {published})[published], "closed");
  EXPECT_EQ(tcp_probe("", {"127.0.0.1:8081"})["127.0.0.1:8081"], "open");
  EXPECT_EQ(tcp_probe("wan", {std::string(kHost) + ":8081"})[std::string(kHost) + ":8081"], "open");
}

// Root inside the namespace flushes its own firewall and adds routes: the policy is in the host's
// namespace and does not move.
TEST_F(PolicyTest, RootInsideTheNamespaceCannotLoosenIt) {
  ASSERT_EQ(
      cli({"create", "p1", "--mode", "private", "--allow", "198.51.100.5:8000/tcp"}).exit_code, 0);
  TcpResponder a("wan", "198.51.100.5", 8000, "a\n"), b("wan", "198.51.100.6", 8000, "b\n");
  ASSERT_TRUE(a.ready() && b.ready());
  const std::string gw =
      nlohmann::json::parse(cli({"info", "p1", "--json"}).out).value("gateway", "");
  ASSERT_EQ(sh("ip netns exec p1 sh -c 'nft flush ruleset; iptables -P OUTPUT ACCEPT; "
               "iptables -F; ip route add 198.51.100.0/24 via " +
               gw + "'")
                .exit_code,
            0);
  auto got = tcp_probe("p1", {"198.51.100.5:8000", "198.51.100.6:8000"});
  EXPECT_EQ(got["198.51.100.5:8000"], "open") << "positive control";
  EXPECT_EQ(got["198.51.100.6:8000"], "closed");
}

TEST_F(PolicyTest, BadPoliciesAreRefusedWithOneLineAndChangeNothing) {
  const std::string before = sh("nft list ruleset; ip -j link; ls /run/netns").out;
  const std::vector<Strings> bad{
      {"--mode", "private", "--allow", "10.0.0.1/8"},
      {"--mode", "private", "--allow", "10.0.0.0/8:0"},
      {"--mode", "private", "--allow", "10.0.0.0/8:65536"},
      {"--mode", "private", "--allow", "10.0.0.0/8:90-80"},
      {"--mode", "private", "--allow", "10.0.0.0/8:80/icmp"},
      {"--mode", "private", "--allow", "10.0.0.0/8/sctp"},
      {"--mode", "private", "--allow", "example..com:443"},
      {"--mode", "private", "--allow", "*.com"},
      {"--mode", "private", "--allow-domain", "10.0.0.1"},
      {"--mode", "private", "--deny-domain", "evil.test:443"},
      {"--mode", "private", "--allow", "a.test", "--refuse-dns", "drop"},
      {"--mode", "private", "--allow", "a.test", "--dns-min-ttl", "x"},
      {"--mode", "private", "--policy", "/nonexistent/policy.yaml"},
      {"--mode", "private", "--allow", "2001:db8::1/32"},
      {"--mode", "private", "--allow", "[2001:db8::1]:0/tcp"},
      {"--mode", "private", "--egress", "maybe"},
      {"--mode", "private", "--allow", "10.0.0.0/8", "--allow", "10.0.0.0/8"},
      {"--mode", "full", "--egress", "deny"},
      {"--mode", "shared", "--egress", "deny"},
  };
  for (const auto& args : bad) {
    Strings argv{"create", "bad"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = cli(argv);
    EXPECT_EQ(r.exit_code, 2) << args.back() << ": " << r.err;  // invalid input
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  Strings many{"create", "bad", "--mode", "private"};
  for (int i = 0; i < 300; ++i) {
    many.insert(many.end(), {"--allow", "10.0." + std::to_string(i / 250) + "." +
                                            std::to_string(i % 250) + ":80/tcp"});
  }
  auto r = cli(many);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("at most 256"), std::string::npos) << r.err;
  EXPECT_EQ(sh("nft list ruleset; ip -j link; ls /run/netns").out, before);
}

// Every rule and the default count what they decided on, as the kernel's own listing shows; an
// overlap counts for the first rule that covers it.
TEST_F(PolicyTest, RulesAndTheDefaultCountWhatTheyDecided) {
  ASSERT_EQ(cli({"create", "p1", "--mode", "private", "--allow", "198.51.100.5:8000/tcp", "--allow",
                 "198.51.100.0/24/tcp", "--deny", "198.51.100.6/icmp"})
                .exit_code,
            0);
  TcpResponder a("wan", "198.51.100.5", 8000, "a\n"), b("wan", "198.51.100.6", 8000, "b\n");
  ASSERT_TRUE(a.ready() && b.ready());
  for (int i = 0; i < 3; ++i) tcp_probe("p1", {"198.51.100.5:8000"});
  tcp_probe("p1", {"198.51.100.6:8000"});
  icmp_answered("p1", "198.51.100.6");  // denied by the rule
  icmp_answered("p1", kWan);            // denied by the default
  auto shown = nlohmann::json::parse(cli({"policy", "show", "p1", "--json"}).out, nullptr, false);
  ASSERT_TRUE(shown.contains("counters")) << shown.dump();
  const auto& rules = shown["counters"]["rules"];
  ASSERT_EQ(rules.size(), 3u);
  EXPECT_EQ(rules[0]["packets"], 3) << rules.dump();  // one SYN per connection
  EXPECT_EQ(rules[1]["packets"], 1) << rules.dump();
  EXPECT_GE(rules[2]["packets"].get<int>(), 1) << rules.dump();
  EXPECT_GE(shown["counters"]["default"]["packets"].get<int>(), 1);
  // The kernel's own view: the sum over p1's pol_allow_tp elements is the two rules' sum.
  auto j = testing::nft_sets("pol_allow_tp");
  long kernel = 0;
  for (const auto& item : j["nftables"]) {
    if (!item.contains("set") || !item["set"].contains("elem")) continue;
    for (const auto& e : item["set"]["elem"]) kernel += e["elem"]["counter"]["packets"].get<long>();
  }
  EXPECT_EQ(kernel, rules[0]["packets"].get<long>() + rules[1]["packets"].get<long>());
  auto stats = nlohmann::json::parse(cli({"stats", "p1", "--json"}).out, nullptr, false);
  EXPECT_EQ(stats["egress"]["rules"][0]["packets"], 3) << stats.dump();
}

// policy set replaces the whole policy as one change, new connections follow it at once; policy
// clear goes back to what the mode allows; a bad set changes nothing.
TEST_F(PolicyTest, SetAndClearChangeALiveNamespaceAtOnce) {
  ASSERT_EQ(
      cli({"create", "p1", "--mode", "private", "--allow", "198.51.100.5:8000/tcp"}).exit_code, 0);
  TcpResponder a("wan", "198.51.100.5", 8000, "a\n"), b("wan", "198.51.100.6", 8000, "b\n");
  ASSERT_TRUE(a.ready() && b.ready());
  const Strings both{"198.51.100.5:8000", "198.51.100.6:8000"};
  auto got = tcp_probe("p1", both);
  EXPECT_EQ(got[both[0]], "open");
  EXPECT_EQ(got[both[1]], "closed");

  auto set = cli({"policy", "set", "p1", "--allow", "198.51.100.6:8000/tcp"});
  ASSERT_EQ(set.exit_code, 0) << set.err;
  got = tcp_probe("p1", both);
  EXPECT_EQ(got[both[0]], "closed");
  EXPECT_EQ(got[both[1]], "open");
  const std::string p1 = address_of("p1");
  EXPECT_EQ(elements_mentioning("pol_allow_tp", p1), 1) << "the old rule's element is gone";
  auto shown = nlohmann::json::parse(cli({"policy", "show", "p1", "--json"}).out, nullptr, false);
  EXPECT_EQ(shown["allow"], nlohmann::json::array({"198.51.100.6/32:8000/tcp"}));

  const std::string before = sh("nft list ruleset").out;
  EXPECT_EQ(cli({"policy", "set", "p1", "--allow", "10.0.0.1/8"}).exit_code, 2);
  EXPECT_EQ(cli({"policy", "set", "open", "--egress", "deny", "--deny", "0.0.0.0/0"}).exit_code, 0);
  EXPECT_EQ(cli({"policy", "clear", "open"}).exit_code, 0);
  EXPECT_EQ(sh("nft list ruleset").out, before) << "a refused set or a set undone changes nothing";

  ASSERT_EQ(cli({"policy", "clear", "p1"}).exit_code, 0);
  got = tcp_probe("p1", both);
  EXPECT_EQ(got[both[0]], "open");
  EXPECT_EQ(got[both[1]], "open");
  EXPECT_EQ(elements_mentioning("pol_ns", p1), 0);
  EXPECT_TRUE(nlohmann::json::parse(cli({"policy", "show", "p1", "--json"}).out).is_null());
}

// A policy change killed at every step it takes (journal, kernel, record): after gc the kernel
// holds exactly the policy the record names, and traffic follows it.
TEST_F(PolicyTest, AKillAtAnyStepOfASetIsFinishedByGc) {
  ASSERT_EQ(
      cli({"create", "p1", "--mode", "private", "--allow", "198.51.100.5:8000/tcp"}).exit_code, 0);
  TcpResponder a("wan", "198.51.100.5", 8000, "a\n"), b("wan", "198.51.100.6", 8000, "b\n");
  ASSERT_TRUE(a.ready() && b.ready());
  const std::string p1 = address_of("p1");
  const Strings both{"198.51.100.5:8000", "198.51.100.6:8000"};
  int kills = 0;
  for (int step = 1; step <= 20; ++step) {
    const std::string target = step % 2 ? "198.51.100.6:8000/tcp" : "198.51.100.5:8000/tcp";
    auto r = testing::sh("NETCELL_FAULT_AT=" + std::to_string(step) +
                         " " NETCELL_CLI_PATH " policy set p1 --allow " + target);
    if (r.exit_code == 0) break;  // past the last step
    ASSERT_EQ(r.exit_code, 128 + 9) << r.err;
    ++kills;
    ASSERT_EQ(cli({"gc"}).exit_code, 0);
    auto shown = nlohmann::json::parse(cli({"policy", "show", "p1", "--json"}).out);
    const std::string allowed = shown["allow"][0];
    const bool to_six = allowed.find("198.51.100.6") == 0;
    EXPECT_EQ(elements_mentioning("pol_allow_tp", p1), 1) << "step " << step;
    EXPECT_EQ(elements_mentioning("pol_ns", p1), 1) << "step " << step;
    auto got = tcp_probe("p1", both);
    EXPECT_EQ(got[both[0]], to_six ? "closed" : "open") << "step " << step << " " << allowed;
    EXPECT_EQ(got[both[1]], to_six ? "open" : "closed") << "step " << step << " " << allowed;
  }
  EXPECT_GE(kills, 3) << "the change has a journal write, a kernel change and a record write";
  ASSERT_EQ(cli({"destroy", "p1"}).exit_code, 0);
  EXPECT_EQ(elements_mentioning("pol_allow_tp", p1 + "\""), 0);
  EXPECT_EQ(elements_mentioning("pol_ns", p1 + "\""), 0);
}

// What `nft -j list table FAMILY netcell` holds: how many sets and chains are named pol_N /
// pol_KIND_N (pol6_ for ip6), and the egress chain's rules that pick a shard (a vmap).
struct Shards {
  int sets = 0, chains = 0, picks = 0;
};
Shards shards_of(const std::string& family) {
  Shards out;
  const std::string prefix = family == "ip" ? "pol_" : "pol6_";
  const std::string egress = family == "ip" ? "egress" : "egress6";
  auto j =
      nlohmann::json::parse(sh("nft -j list table " + family + " netcell").out, nullptr, false);
  if (j.is_discarded()) return out;
  auto sharded = [&](const std::string& name) {
    if (name.rfind(prefix, 0) != 0) return false;
    const auto last = name.rfind('_');
    return last != std::string::npos && last + 1 < name.size() &&
           name.find_first_not_of("0123456789", last + 1) == std::string::npos;
  };
  for (const auto& item : j["nftables"]) {
    if (item.contains("set") && sharded(item["set"].value("name", ""))) ++out.sets;
    if (item.contains("chain") && sharded(item["chain"].value("name", ""))) ++out.chains;
    if (item.contains("rule") && item["rule"].value("chain", "") == egress &&
        item["rule"].dump().find("\"vmap\"") != std::string::npos) {
      ++out.picks;
    }
  }
  return out;
}

// The policy's shard sets and chains come with the first element that goes into one (a rule's, or
// a learned destination of a rule with ports), once, in each family the namespace has; namespaces
// without a policy, or whose policy puts nothing there (a domain rule nothing was learned for),
// never make them. (The resolver tests learn into them first.)
TEST_F(PolicyTest, TheShardsComeWithTheFirstPolicyNamespaceOnce) {
  ASSERT_EQ(cli({"create", "plain", "--mode", "private"}).exit_code, 0);  // dual-stack
  ASSERT_EQ(cli({"create", "p1", "--mode", "private", "--egress", "deny", "--allow-domain",
                 "a.example:443/tcp"})
                .exit_code,
            0);
  for (const char* family : {"ip", "ip6"}) {
    const Shards none = shards_of(family);
    EXPECT_EQ(none.sets + none.chains + none.picks, 0) << family;
  }
  ASSERT_EQ(cli({"create", "p4", "--mode", "private", "--no-ipv6", "--egress", "deny", "--allow",
                 std::string(kWan) + ":7000/tcp"})
                .exit_code,
            0);
  Shards v4 = shards_of("ip");
  EXPECT_EQ(v4.sets, 64 * 7);
  EXPECT_EQ(v4.chains, 64);
  EXPECT_EQ(v4.picks, 1);
  EXPECT_EQ(shards_of("ip6").sets, 0) << "an IPv4-only policy namespace needs no IPv6 shards";
  // A dual-stack one with an IPv6 rule makes the ip6 shards; later ones change neither family's.
  for (const char* name : {"p2", "p3"}) {
    ASSERT_EQ(cli({"create", name, "--mode", "private", "--egress", "deny", "--allow",
                   std::string(kWan) + ":7000/tcp", "--allow", "[2001:db8:5::1]:7000/tcp"})
                  .exit_code,
              0);
  }
  for (const char* family : {"ip", "ip6"}) {
    const Shards s = shards_of(family);
    EXPECT_EQ(s.sets, 64 * 7) << family;
    EXPECT_EQ(s.chains, 64) << family;
    EXPECT_EQ(s.picks, 1) << family;
  }
  // They work: p2's rule lets it through, p3's default refuses what p2's rule does not cover.
  TcpResponder web("wan", kWan, 7000, "internet\n"), other("wan", kWan, 7001, "internet\n");
  const std::string allowed = std::string(kWan) + ":7000", refused = std::string(kWan) + ":7001";
  auto p2 = tcp_probe("p2", {allowed, refused});
  EXPECT_EQ(p2[allowed], "open");
  EXPECT_EQ(p2[refused], "closed") << "refused at once (a reset)";
  EXPECT_EQ(tcp_probe("plain", {refused})[refused], "open");
}

// The first policy with rules can come by a change too: `policy set` on a namespace made without
// a policy, while no shard exists, makes them and the policy holds (what the rule allows gets
// through, what it does not is refused at once); a namespace without a policy beside it is
// untouched (the control).
TEST_F(PolicyTest, APolicySetMakesTheShardsWhenNoneExistYet) {
  ASSERT_EQ(cli({"create", "plain", "--mode", "private"}).exit_code, 0);
  ASSERT_EQ(cli({"create", "later", "--mode", "private"}).exit_code, 0);
  EXPECT_EQ(shards_of("ip").sets, 0);
  auto set = cli(
      {"policy", "set", "later", "--egress", "deny", "--allow", std::string(kWan) + ":7000/tcp"});
  ASSERT_EQ(set.exit_code, 0) << set.err;
  const Shards v4 = shards_of("ip");
  EXPECT_EQ(v4.sets, 64 * 7);
  EXPECT_EQ(v4.chains, 64);
  EXPECT_EQ(v4.picks, 1);
  EXPECT_EQ(elements_mentioning("pol_allow_tp", address_of("later")), 1);
  TcpResponder web("wan", kWan, 7000, "internet\n"), other("wan", kWan, 7001, "internet\n");
  ASSERT_TRUE(web.ready() && other.ready());
  const std::string allowed = std::string(kWan) + ":7000", refused = std::string(kWan) + ":7001";
  auto got = tcp_probe("later", {allowed, refused});
  EXPECT_EQ(got[allowed], "open");
  EXPECT_EQ(got[refused], "closed");
  EXPECT_EQ(tcp_probe("plain", {refused})[refused], "open");
}

// A table deleted under a process that made it (by nft here, as an administrator's flush would)
// is not made again headless by the first policy namespace's shards (a table with those sets
// alone, and no owner): that create fails with one line, leaves no table, and the same process's
// next create makes the whole table again. The control: the same create works once it is there.
TEST_F(PolicyTest, AGoneTableIsNotMadeAgainByThePolicysShards) {
  auto mgr = NamespaceManager::create(ManagerOptions{});
  ASSERT_TRUE(mgr) << mgr.error().to_string();
  auto plain = NamespaceConfig::private_network(0);
  plain.name = "plain";
  ASSERT_TRUE(mgr->create(plain));
  ASSERT_EQ(sh("nft delete table ip netcell && nft delete table ip6 netcell").exit_code, 0);
  auto rule = EgressRule::parse(PolicyAction::kAllow, std::string(kWan) + ":7000/tcp");
  ASSERT_TRUE(rule) << rule.error().to_string();
  auto guarded = NamespaceConfig::private_network(0);
  guarded.name = "guarded";
  guarded.egress = EgressPolicy{};
  guarded.egress->default_action = PolicyAction::kDeny;
  guarded.egress->rules.push_back(*rule);
  auto failed = mgr->create(guarded);
  ASSERT_FALSE(failed);
  EXPECT_NE(failed.error().to_string().find("is gone"), std::string::npos)
      << failed.error().to_string();
  EXPECT_NE(sh("nft list table ip netcell").exit_code, 0) << "no table, headless or whole";
  EXPECT_FALSE(mgr->exists("guarded"));
  auto again = mgr->create(guarded);
  ASSERT_TRUE(again) << again.error().to_string();
  auto comment = sh("nft list table ip netcell | grep -m1 comment");  // nft -j omits it
  EXPECT_NE(comment.out.find("netcell:/run/netcell v"), std::string::npos) << comment.out;
  EXPECT_EQ(shards_of("ip").sets, 64 * 7);
  TcpResponder web("wan", kWan, 7000, "internet\n");
  const std::string allowed = std::string(kWan) + ":7000";
  EXPECT_EQ(tcp_probe("guarded", {allowed})[allowed], "open");
}

}  // namespace
}  // namespace netcell
