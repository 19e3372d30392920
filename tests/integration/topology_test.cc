// Topology files through the CLI, checked with real traffic and `ip -j` / `nft` / `tc -j`:
// chains and routers, idempotent `up`, `down` after an `up` killed at every step, conflicts,
// malformed files, commands.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <string>

#include "support/host_state.h"
#include "support/process.h"

namespace netcell {
namespace {

using testing::cli;
using testing::diff;
using testing::host_state;
using testing::settles_to;
using testing::sh;

std::string write_file(const std::string& name, const std::string& text) {
  std::string path = "/run/" + name;
  std::ofstream(path) << text;
  return path;
}

bool ping(const std::string& ns, const std::string& address) {
  return sh("ip netns exec " + ns + " ping -c1 -W1 " + address + " >/dev/null 2>&1").exit_code == 0;
}

// Everything inside the namespaces of a topology plus the host, for "nothing changed".
std::string full_state(const std::vector<std::string>& spaces) {
  std::string out = host_state();
  for (const auto& ns : spaces) {
    out += ns + " links " + sh("ip -n " + ns + " -j link show").out;
    out += ns + " addrs " + sh("ip -n " + ns + " -4 -j addr show").out;
    out += ns + " routes " + sh("ip -n " + ns + " -4 -j route show table all").out;
    out += ns + " qdiscs " + sh("tc -n " + ns + " -j qdisc show").out;
    out +=
        ns + " forwarding " + sh("ip netns exec " + ns + " cat /proc/sys/net/ipv4/ip_forward").out;
  }
  out += "nft " + sh("nft -j list ruleset").out;
  return out;
}

const char* kChain = R"(name: chain
namespaces:
  a:
    routes: [{to: 10.0.2.0/24, via: 10.0.1.2}]
  b: {forwarding: false}
  c:
    routes: [{to: 10.0.1.0/24, via: 10.0.2.1}]
links:
  - ends:
      - {namespace: a, device: to-b, address: 10.0.1.1/24}
      - {namespace: b, device: to-a, address: 10.0.1.2/24}
  - ends:
      - {namespace: b, device: to-c, address: 10.0.2.1/24}
      - {namespace: c, device: to-b, address: 10.0.2.2/24}
)";

TEST(TopologyTest, ChainReachesNeighboursButNotAcrossARouterThatDoesNotForward) {
  if (!testing::in_world()) GTEST_FAIL() << "run through tests/support/world.sh";
  std::string file = write_file("chain.yaml", kChain);
  auto t0 = std::chrono::steady_clock::now();
  auto up = cli({"up", file});
  auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  ASSERT_EQ(up.exit_code, 0) << up.err;
  std::printf("up of a 3-namespace chain: %lld ms\n", static_cast<long long>(ms));
  // Independent view: the links and addresses as the kernel has them.
  auto addrs = testing::ip_json({"-n", "b", "-4", "addr", "show"});
  std::string text = addrs.dump();
  EXPECT_NE(text.find("10.0.1.2"), std::string::npos) << text;
  EXPECT_NE(text.find("10.0.2.1"), std::string::npos) << text;
  EXPECT_TRUE(ping("a", "10.0.1.2"));
  EXPECT_TRUE(ping("b", "10.0.1.1"));
  EXPECT_TRUE(ping("b", "10.0.2.2"));
  EXPECT_TRUE(ping("c", "10.0.2.1"));
  EXPECT_FALSE(ping("a", "10.0.2.2"));  // routed to b, which does not forward
  EXPECT_FALSE(ping("c", "10.0.1.1"));
  // The route is there; only b's forwarding is missing: turn it on and a reaches c.
  ASSERT_EQ(sh("ip netns exec b sysctl -qw net.ipv4.ip_forward=1").exit_code, 0);
  EXPECT_TRUE(ping("a", "10.0.2.2"));
  // `up` converges: b's forwarding goes back to what the file says.
  ASSERT_EQ(cli({"up", file}).exit_code, 0);
  EXPECT_EQ(sh("ip netns exec b cat /proc/sys/net/ipv4/ip_forward").out, "0\n");
  EXPECT_FALSE(ping("a", "10.0.2.2"));
  auto down = cli({"down", file});
  ASSERT_EQ(down.exit_code, 0) << down.err;
  EXPECT_EQ(sh("ip netns list").out, "");
}

// The IPv6 twin of the chain: a and c route to each other over IPv6 via b; b forwards IPv6 only
// while its sysctl says so. The addresses are usable at once (no duplicate address detection).
const char* kChain6 = R"(name: chain6
namespaces:
  a:
    routes: [{to: "2001:db8:72::/64", via: "2001:db8:71::2"}]
  b:
    sysctls: {net.ipv6.conf.all.forwarding: 0}
  c:
    routes: [{to: "2001:db8:71::/64", via: "2001:db8:72::1"}]
links:
  - ends:
      - {namespace: a, device: to-b, address: "2001:db8:71::1/64"}
      - {namespace: b, device: to-a, address: "2001:db8:71::2/64"}
  - ends:
      - {namespace: b, device: to-c, address: "2001:db8:72::1/64"}
      - {namespace: c, device: to-b, address: "2001:db8:72::2/64"}
)";

bool ping6(const std::string& ns, const std::string& address) {
  return sh("ip netns exec " + ns + " ping -6 -c1 -W1 " + address + " >/dev/null 2>&1").exit_code ==
         0;
}

TEST(TopologyTest, AnIpv6ChainReachesNeighboursAndAcrossARouterOnlyWhileItForwards) {
  if (!testing::in_world()) GTEST_FAIL() << "run through tests/support/world.sh";
  std::string file = write_file("chain6.yaml", kChain6);
  auto up = cli({"up", file});
  ASSERT_EQ(up.exit_code, 0) << up.err;
  // Independent view: b's addresses as the kernel has them, none of them tentative.
  const std::string addrs = sh("ip -n b -6 addr show").out;
  EXPECT_NE(addrs.find("2001:db8:71::2/64"), std::string::npos) << addrs;
  EXPECT_NE(addrs.find("2001:db8:72::1/64"), std::string::npos) << addrs;
  EXPECT_EQ(addrs.find("tentative"), std::string::npos) << addrs;
  EXPECT_TRUE(ping6("a", "2001:db8:71::2"));
  EXPECT_TRUE(ping6("c", "2001:db8:72::1"));
  EXPECT_FALSE(ping6("a", "2001:db8:72::2"));  // routed to b, which does not forward
  ASSERT_EQ(sh("ip netns exec b sysctl -qw net.ipv6.conf.all.forwarding=1").exit_code, 0);
  EXPECT_TRUE(ping6("a", "2001:db8:72::2"));
  EXPECT_TRUE(ping6("c", "2001:db8:71::1"));
  // `up` converges: b's IPv6 forwarding goes back to what the file says.
  ASSERT_EQ(cli({"up", file}).exit_code, 0);
  EXPECT_EQ(sh("ip netns exec b cat /proc/sys/net/ipv6/conf/all/forwarding").out, "0\n");
  EXPECT_FALSE(ping6("a", "2001:db8:72::2"));
  ASSERT_EQ(cli({"down", file}).exit_code, 0);
  EXPECT_EQ(sh("ip netns list").out, "");
}

const char* kRich = R"(name: rich
networks:
  lan: {subnet: 10.61.0.0/24, nat: true}
namespaces:
  router:
    mode: bridged
    network: lan
    ip: 10.61.0.2/24
    forwarding: true
  inner:
    routes: [{to: default, via: 10.62.0.1}]
    addresses: [{device: lo, address: 10.255.0.7/32}]
  web:
    mode: private
    publish: ["18080:80"]
    rate: {egress: 20mbit, ingress: 30mbit}
    commands: ["exec sleep 300"]
links:
  - ends:
      - {namespace: router, device: down0, address: 10.62.0.1/24}
      - {namespace: inner, device: up0, address: 10.62.0.2/24}
    rate: 50mbit
)";

TEST(TopologyTest, MultiHomedRouterForwardsBetweenItsNetworkAndItsLink) {
  if (!testing::in_world()) GTEST_FAIL() << "run through tests/support/world.sh";
  std::string file = write_file("rich.yaml", kRich);
  auto up = cli({"up", file});
  ASSERT_EQ(up.exit_code, 0) << up.err;
  // router sits on the bridge (eth0) and on the link (down0); inner reaches the bridge's gateway
  // (the host end of lan, 10.61.0.1) only through router.
  auto links = testing::link_names("router");
  EXPECT_NE(std::find(links.begin(), links.end(), "eth0"), links.end());
  EXPECT_NE(std::find(links.begin(), links.end(), "down0"), links.end());
  EXPECT_TRUE(ping("inner", "10.62.0.1"));
  EXPECT_TRUE(ping("inner", "10.61.0.2"));  // router's other leg
  EXPECT_EQ(sh("ip netns exec router cat /proc/sys/net/ipv4/ip_forward").out, "1\n");
  // Link rate: a tbf on each end, as tc reads it back.
  auto qdisc = sh("tc -n inner -j qdisc show dev up0").out;
  EXPECT_NE(qdisc.find("\"tbf\""), std::string::npos) << qdisc;
  EXPECT_NE(sh("tc -n router -j qdisc show dev down0").out.find("\"tbf\""), std::string::npos);
  // The command runs inside web's namespace.
  std::string pids = sh("ip netns pids web").out;
  ASSERT_NE(pids, "");
  int pid = std::stoi(pids);
  EXPECT_EQ(sh("cat /proc/" + std::to_string(pid) + "/comm").out, "sleep\n");
  auto down = cli({"down", file});
  ASSERT_EQ(down.exit_code, 0) << down.err;
  EXPECT_EQ(sh("ip netns list").out, "");
  EXPECT_EQ(sh("ip -j link show | grep -c ncbr || true").out, "0\n");
  EXPECT_NE(sh("cat /proc/" + std::to_string(pid) + "/comm 2>/dev/null").out, "sleep\n");
}

TEST(TopologyTest, UpTwiceChangesNothingTheSecondTime) {
  if (!testing::in_world()) GTEST_FAIL() << "run through tests/support/world.sh";
  std::string file = write_file("rich.yaml", kRich);
  ASSERT_EQ(cli({"up", file}).exit_code, 0);
  std::string pids = sh("ip netns pids web").out;
  std::string before = full_state({"router", "inner", "web"});
  auto again = cli({"up", file, "--json"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  auto report = nlohmann::json::parse(again.out);
  EXPECT_EQ(report["changed"], 0) << again.out;
  EXPECT_EQ(full_state({"router", "inner", "web"}), before)
      << diff(before, full_state({"router", "inner", "web"}));
  EXPECT_EQ(sh("ip netns pids web").out, pids);  // the command was left running
  // A changed declaration replaces only what it touches.
  std::string changed = kRich;
  changed.replace(changed.find("rate: 50mbit"), 12, "rate: 40mbit");
  write_file("rich.yaml", changed);
  auto plan = cli({"up", file, "--dry-run", "--json"});
  ASSERT_EQ(plan.exit_code, 0) << plan.err;
  auto steps = nlohmann::json::parse(plan.out)["steps"];
  int replaced = 0;
  for (const auto& s : steps) {
    if (s["action"] == "replace") {
      ++replaced;
      EXPECT_NE(s["object"], "web") << plan.out;
    }
  }
  EXPECT_EQ(replaced, 2) << plan.out;                         // router and inner
  EXPECT_EQ(full_state({"router", "inner", "web"}), before);  // a dry run changes nothing
  ASSERT_EQ(cli({"up", file}).exit_code, 0);
  EXPECT_TRUE(ping("inner", "10.61.0.2"));
  EXPECT_EQ(sh("ip netns pids web").out, pids);
  ASSERT_EQ(cli({"down", file}).exit_code, 0);
}

TEST(TopologyTest, DownAfterAnUpKilledAtEveryStepLeavesNothing) {
  if (!testing::in_world()) GTEST_FAIL() << "run through tests/support/world.sh";
  std::string file = write_file("rich.yaml", kRich);
  // The run dir's skeleton and the shared /run/netns mount stay from the first namespace on.
  ASSERT_EQ(cli({"create", "warm-up", "--mode", "full"}).exit_code, 0);
  ASSERT_EQ(cli({"destroy", "warm-up"}).exit_code, 0);
  // The host service's log outlives the service by design (web's publish starts it for its [::1]
  // relay): part of the baseline, as in the crash test.
  ASSERT_EQ(sh("touch /run/netcell/service.log").exit_code, 0);
  std::string before = host_state();
  int kills = 0;
  for (int step = 1; step <= 80; ++step) {
    int code = sh("NETCELL_FAULT_AT=" + std::to_string(step) + " " + NETCELL_CLI_PATH + " up " +
                  file + " >/dev/null 2>&1")
                   .exit_code;
    if (code == 0) break;  // the whole `up` ran before step N
    ASSERT_EQ(code, 128 + 9) << "step " << step;
    ++kills;
    // Every other time, `up` runs again first and must complete what the killed one began.
    if (step % 2 == 0) {
      auto again = cli({"up", file});
      ASSERT_EQ(again.exit_code, 0) << "step " << step << ": " << again.err;
      EXPECT_TRUE(ping("inner", "10.61.0.2")) << "step " << step;
    }
    auto down = cli({"down", file});
    ASSERT_EQ(down.exit_code, 0) << "step " << step << ": " << down.err;
    std::string now;
    ASSERT_TRUE(settles_to(before, now)) << "step " << step << "\n" << diff(before, now);
    EXPECT_EQ(sh("ip netns list").out, "") << "step " << step;
  }
  std::printf("up killed at %d steps, each undone by down\n", kills);
  EXPECT_GT(kills, 20);
  ASSERT_EQ(cli({"down", file}).exit_code, 0);
  std::string now;
  EXPECT_TRUE(settles_to(before, now)) << diff(before, now);
}

TEST(TopologyTest, RefusesNamesItDoesNotOwnAndDownLeavesThemAlone) {
  if (!testing::in_world()) GTEST_FAIL() << "run through tests/support/world.sh";
  ASSERT_EQ(cli({"create", "b", "--mode", "full"}).exit_code, 0);
  std::string file = write_file("chain.yaml", kChain);
  std::string before = host_state();
  auto up = cli({"up", file});
  EXPECT_EQ(up.exit_code, 1);
  EXPECT_NE(up.err.find("namespace 'b' already exists and it was made outside any topology"),
            std::string::npos)
      << up.err;
  EXPECT_EQ(host_state(), before);  // refused before anything was made
  auto down = cli({"down", file});
  EXPECT_EQ(down.exit_code, 0) << down.err;
  EXPECT_TRUE(cli({"info", "b"}).exit_code == 0);  // not the file's to remove
}

TEST(TopologyTest, MalformedFilesChangeNothing) {
  if (!testing::in_world()) GTEST_FAIL() << "run through tests/support/world.sh";
  std::string before = host_state();
  struct Case {
    std::string yaml;
    std::string expect;
  };
  std::vector<Case> cases = {
      {"namespaces: [a\n", "bad.yaml:2: invalid YAML"},
      {"namespaces:\n  a: {mode: full, colour: red}\n", "bad.yaml:2: namespaces.a.colour"},
      {"namespaces:\n  a: {mode: bridged, network: nope}\n", "is not declared under networks"},
      {"networks:\n  n: {subnet: 10.0.0.0/24}\n  n: {subnet: 10.1.0.0/24}\nnamespaces: {a: {}}\n",
       "bad.yaml:3: networks.n: duplicate key"},
      {"networks:\n  n: {subnet: 10.0.0.0/33}\nnamespaces: {a: {}}\n", "networks.n.subnet"},
      {"namespaces:\n  a: {}\nlinks:\n  - ends: [{namespace: a, device: x}, {namespace: q, "
       "device: y}]\n",
       "namespace 'q' is not declared"},
  };
  for (const auto& c : cases) {
    std::string file = write_file("bad.yaml", c.yaml);
    for (const char* verb : {"up", "down"}) {
      auto r = cli({verb, file});
      EXPECT_EQ(r.exit_code, 2) << c.yaml;
      EXPECT_NE(r.err.find(c.expect), std::string::npos) << r.err;
      EXPECT_EQ(r.err.rfind("netcell: /run/bad.yaml:", 0), 0u) << r.err;
    }
  }
  EXPECT_EQ(cli({"up", "/run/missing.yaml"}).exit_code, 2);
  EXPECT_EQ(host_state(), before);
}

// A topology's egress block is enforced like create's options: the allowed server answers, the
// other is refused; down removes the policy's elements with the namespace.
TEST(TopologyTest, AnEgressBlockIsEnforcedAndGoesWithDown) {
  if (!testing::in_world()) GTEST_FAIL() << "run through tests/support/world.sh";
  ASSERT_EQ(testing::make_internet(), "");
  ASSERT_EQ(sh("ip -n wan addr add 198.51.100.5/32 dev lo").exit_code, 0);
  testing::TcpResponder a("wan", "203.0.113.2", 8000, "a\n"), b("wan", "198.51.100.5", 8000, "b\n");
  ASSERT_TRUE(a.ready() && b.ready());
  std::string file = write_file("policy.yaml", R"(namespaces:
  job:
    mode: private
    egress: {allow: ["203.0.113.2:8000/tcp"]}
)");
  auto up = cli({"up", file});
  ASSERT_EQ(up.exit_code, 0) << up.err;
  auto got = testing::tcp_probe("job", {"203.0.113.2:8000", "198.51.100.5:8000"});
  EXPECT_EQ(got["203.0.113.2:8000"], "open");
  EXPECT_EQ(got["198.51.100.5:8000"], "closed");
  EXPECT_NE(sh("nft list table ip netcell").out.find("203.0.113.2 . tcp . 8000"),
            std::string::npos);
  ASSERT_EQ(cli({"down", file}).exit_code, 0);
  EXPECT_EQ(sh("nft list table ip netcell 2>/dev/null | grep -c 203.0.113.2; true").out, "0\n");
}

// A bridged namespace's egress block covers its peers on the bridge too.
TEST(TopologyTest, ABridgedNamespacesEgressBlockCoversItsPeers) {
  if (!testing::in_world()) GTEST_FAIL() << "run through tests/support/world.sh";
  std::string file = write_file("bridged-policy.yaml", R"(networks:
  lan: {subnet: 10.62.0.0/24}
namespaces:
  peer: {mode: bridged, network: lan, ip: 10.62.0.5/24, gateway: 10.62.0.1}
  job:
    mode: bridged
    network: lan
    ip: 10.62.0.6/24
    gateway: 10.62.0.1
    egress: {allow: ["10.62.0.5:9000/tcp"]}
)");
  auto up = cli({"up", file});
  ASSERT_EQ(up.exit_code, 0) << up.err;
  testing::TcpResponder a("peer", "0.0.0.0", 9000, "a\n"), b("peer", "0.0.0.0", 9001, "b\n");
  ASSERT_TRUE(a.ready() && b.ready());
  auto got = testing::tcp_probe("job", {"10.62.0.5:9000", "10.62.0.5:9001"});
  EXPECT_EQ(got["10.62.0.5:9000"], "open");
  EXPECT_EQ(got["10.62.0.5:9001"], "closed");
  EXPECT_TRUE(ping("peer", "10.62.0.6")) << "its peer still reaches it";
  EXPECT_NE(sh("nft list set bridge netcell pol_routed").out.find("10.62.0.6"), std::string::npos);
  ASSERT_EQ(cli({"down", file}).exit_code, 0);
  EXPECT_EQ(sh("nft list ruleset 2>/dev/null | grep -c 10.62.0.6; true").out, "0\n");
}

}  // namespace
}  // namespace netcell
