// Topology files: parsing, validation with file:line:field errors, digests. No privileges.
#include "netcell/topology.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace netcell {
namespace {

const char* kChain = R"(name: chain
networks:
  lan: {subnet: 10.60.0.0/24, nat: true}
namespaces:
  a:
    mode: full
    routes: [{to: 10.0.2.0/24, via: 10.0.1.2}]
  b:
    mode: bridged
    network: lan
    ip: 10.60.0.10/24
    forwarding: true
    sysctls: {net.ipv4.conf.all.rp_filter: 0}
    addresses: [{device: lo, address: 10.255.0.1/32}]
    publish: ["8080:80"]
    rate: {egress: 10mbit, ingress: 20mbit}
    commands: ["sleep 5", [sleep, "6"]]
  c:
    mode: full
links:
  - ends:
      - {namespace: a, device: to-b, address: 10.0.1.1/24}
      - {namespace: b, device: to-a, addresses: [10.0.1.2/24]}
    rate: 1mbit
  - ends:
      - {namespace: b, device: to-c, address: 10.0.2.1/24}
      - {namespace: c, device: to-b, address: 10.0.2.2/24}
    rate: {a_to_b: 2mbit, b_to_a: 3mbit}
    mtu: 1400
)";

const TopologyNamespace* find(const Topology& t, const std::string& name) {
  for (const auto& ns : t.namespaces) {
    if (ns.config.name == name) return &ns;
  }
  return nullptr;
}

TEST(TopologyParse, ReadsEverySection) {
  auto parsed = parse_topology(kChain, "chain.yaml");
  ASSERT_TRUE(parsed.topology) << parsed.errors.front().to_string();
  const Topology& t = *parsed.topology;
  EXPECT_EQ(t.name, "chain");
  ASSERT_EQ(t.networks.size(), 1u);
  EXPECT_EQ(t.networks[0].config.subnet.to_string(), "10.60.0.0/24");
  EXPECT_TRUE(t.networks[0].config.nat);
  EXPECT_EQ(t.networks[0].config.topology.name, "chain");
  ASSERT_EQ(t.namespaces.size(), 3u);
  const auto* b = find(t, "b");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->config.mode, IsolationMode::kBridged);
  EXPECT_EQ(b->config.network, "lan");
  ASSERT_TRUE(b->config.interface);
  EXPECT_EQ(b->config.interface->ip.to_string(), "10.60.0.10");
  EXPECT_EQ(b->config.rate.egress_bps, 10'000'000u);
  EXPECT_EQ(b->config.rate.ingress_bps, 20'000'000u);
  ASSERT_EQ(b->config.port_forwards.size(), 1u);
  EXPECT_EQ(b->config.port_forwards[0].host_port, 8080);
  ASSERT_EQ(b->extras.sysctls.size(), 2u);
  EXPECT_EQ(b->extras.sysctls[0], (Sysctl{"net.ipv4.ip_forward", "1"}));
  EXPECT_EQ(b->extras.sysctls[1], (Sysctl{"net.ipv4.conf.all.rp_filter", "0"}));
  ASSERT_EQ(b->extras.addresses.size(), 1u);
  EXPECT_EQ(b->extras.addresses[0].device, "lo");
  ASSERT_EQ(b->commands.size(), 2u);
  EXPECT_EQ(b->commands[0].argv, (std::vector<std::string>{"/bin/sh", "-c", "sleep 5"}));
  EXPECT_EQ(b->commands[1].argv, (std::vector<std::string>{"sleep", "6"}));
  const auto* a = find(t, "a");
  ASSERT_EQ(a->extras.routes.size(), 1u);
  EXPECT_EQ(a->extras.routes[0].destination.to_string(), "10.0.2.0/24");
  EXPECT_EQ(a->extras.routes[0].via->to_string(), "10.0.1.2");
  ASSERT_EQ(t.links.size(), 2u);
  EXPECT_EQ(t.links[0].a.ns, "a");
  EXPECT_EQ(t.links[0].b.addresses[0].to_string(), "10.0.1.2/24");
  EXPECT_EQ(t.links[0].a_to_b_bps, 1'000'000u);
  EXPECT_EQ(t.links[0].b_to_a_bps, 1'000'000u);
  EXPECT_EQ(t.links[1].a_to_b_bps, 2'000'000u);
  EXPECT_EQ(t.links[1].b_to_a_bps, 3'000'000u);
  EXPECT_EQ(t.links[1].mtu, 1400u);
}

TEST(TopologyParse, ANetworkTakesASubnet6) {
  auto parsed = parse_topology(
      "networks: {lan: {subnet: 10.60.0.0/24, subnet6: 'fd00:60::/64'}}\n"
      "namespaces: {a: {mode: bridged, network: lan}}\n",
      "t.yaml");
  ASSERT_TRUE(parsed.topology);
  ASSERT_TRUE(parsed.topology->networks[0].config.subnet6);
  EXPECT_EQ(parsed.topology->networks[0].config.subnet6->to_string(), "fd00:60::/64");
}

TEST(TopologyParse, NameDefaultsToTheFileName) {
  auto parsed = parse_topology("namespaces: {a: {mode: full}}\n", "/x/y/three-hosts.yaml");
  ASSERT_TRUE(parsed.topology);
  EXPECT_EQ(parsed.topology->name, "three-hosts");
}

TEST(TopologyParse, DigestsFollowTheDeclarationOfEachNamespace) {
  auto one = parse_topology(kChain, "chain.yaml");
  std::string changed_link = kChain;
  changed_link.replace(changed_link.find("mtu: 1400"), 9, "mtu: 1300");
  auto two = parse_topology(changed_link, "chain.yaml");
  ASSERT_TRUE(one.topology && two.topology);
  auto digest = [](const Topology& t, const char* n) { return find(t, n)->config.topology.digest; };
  EXPECT_EQ(digest(*one.topology, "a"), digest(*two.topology, "a"));  // not on that link
  EXPECT_NE(digest(*one.topology, "b"), digest(*two.topology, "b"));
  EXPECT_NE(digest(*one.topology, "c"), digest(*two.topology, "c"));
  EXPECT_NE(digest(*one.topology, "a"), digest(*one.topology, "c"));
  // Comments and layout do not count.
  auto three = parse_topology(std::string("# comment\n") + kChain, "chain.yaml");
  EXPECT_EQ(digest(*one.topology, "b"), digest(*three.topology, "b"));
}

struct BadFile {
  const char* what;
  std::string yaml;
  int line;            // of the first error
  const char* expect;  // in its text
};

class TopologyHostile : public ::testing::TestWithParam<BadFile> {};

TEST_P(TopologyHostile, GivesAPreciseError) {
  const BadFile& bad = GetParam();
  auto parsed = parse_topology(bad.yaml, "t.yaml");
  ASSERT_FALSE(parsed.topology) << bad.what;
  ASSERT_FALSE(parsed.errors.empty());
  const auto& e = parsed.errors.front();
  std::string text = e.to_string();
  EXPECT_EQ(e.line, bad.line) << text;
  EXPECT_NE(text.find(bad.expect), std::string::npos) << text;
  EXPECT_EQ(text.rfind("t.yaml", 0), 0u) << text;
  EXPECT_EQ(text.find('\n'), std::string::npos) << text;
}

const std::string kNs = "namespaces:\n  a:\n    mode: full\n";

INSTANTIATE_TEST_SUITE_P(
    Files, TopologyHostile,
    ::testing::Values(
        BadFile{"bad yaml", "namespaces: [a\n", 2, "invalid YAML"},
        BadFile{"tab indentation", "namespaces:\n\ta: {}\n", 2, "invalid YAML"},
        BadFile{"empty file", "", 1, "empty"},
        BadFile{"not a mapping", "- a\n- b\n", 1, "expected a mapping"},
        BadFile{"unknown top key", "namespace:\n  a: {}\n", 1, "namespace: unknown key"},
        BadFile{"no namespaces", "name: x\n", 1, "namespaces: missing"},
        BadFile{"unknown namespace key", "namespaces:\n  a:\n    mdoe: full\n", 3,
                "namespaces.a.mdoe: unknown key"},
        BadFile{"unknown mode", "namespaces:\n  a:\n    mode: isolated\n", 3, "mode"},
        BadFile{"duplicate namespace", "namespaces:\n  a: {}\n  a: {}\n", 3, "duplicate key"},
        BadFile{"name with slash", "namespaces:\n  a/b: {}\n", 2, "invalid namespace name"},
        BadFile{"name dot dot", "namespaces:\n  ..: {}\n", 2, "invalid namespace name"},
        BadFile{"name with space", "namespaces:\n  'a b': {}\n", 2, "invalid namespace name"},
        BadFile{"name control byte", "namespaces:\n  \"a\\x01\": {}\n", 2,
                "invalid namespace name"},
        BadFile{"name too long", "namespaces:\n  " + std::string(300, 'a') + ": {}\n", 2,
                "invalid namespace name"},
        BadFile{"bad topology name", "name: '../x'\n" + kNs, 1, "name"},
        BadFile{"network host bits", "networks:\n  lan: {subnet: 10.0.0.1/24}\n" + kNs, 2,
                "networks.lan.subnet"},
        BadFile{"subnet6 not IPv6",
                "networks:\n  lan: {subnet: 10.0.0.0/24, subnet6: 10.1.0.0/24}\n" + kNs, 2,
                "networks.lan.subnet6: not an IPv6 prefix"},
        BadFile{"subnet6 host bits",
                "networks:\n  lan: {subnet: 10.0.0.0/24, subnet6: 'fd00::1/64'}\n" + kNs, 2,
                "networks.lan.subnet6"},
        BadFile{"prefix too long", "networks:\n  lan: {subnet: 10.0.0.0/33}\n" + kNs, 2,
                "networks.lan.subnet"},
        BadFile{"not a cidr", "networks:\n  lan: {subnet: banana}\n" + kNs, 2,
                "networks.lan.subnet"},
        BadFile{"missing subnet", "networks:\n  lan: {nat: true}\n" + kNs, 2, "missing"},
        BadFile{"overlapping networks",
                "networks:\n  x: {subnet: 10.0.0.0/16}\n  y: {subnet: 10.0.5.0/24}\n" + kNs, 3,
                "overlaps network 'x'"},
        BadFile{"nat not a bool", "networks:\n  lan: {subnet: 10.0.0.0/24, nat: maybe}\n" + kNs, 2,
                "expected true or false"},
        BadFile{"dangling network", "namespaces:\n  a: {mode: bridged, network: nope}\n", 2,
                "network 'nope' is not declared"},
        BadFile{"bridged without network", "namespaces:\n  a: {mode: bridged}\n", 2,
                "needs a network"},
        BadFile{"ip outside network",
                "networks:\n  lan: {subnet: 10.0.0.0/24}\nnamespaces:\n  a: {mode: bridged, "
                "network: lan, ip: 10.9.0.5/24}\n",
                4, "outside network 'lan'"},
        BadFile{"ip on full mode", "namespaces:\n  a: {mode: full, ip: 10.0.0.2/24}\n", 2,
                "full mode has no interface"},
        BadFile{"port 0", "namespaces:\n  a: {mode: private, publish: ['0:80']}\n", 2, "publish"},
        BadFile{"port 65536", "namespaces:\n  a: {mode: private, publish: ['65536:80']}\n", 2,
                "publish"},
        BadFile{"duplicate port",
                "namespaces:\n  a: {mode: private, publish: ['80:80']}\n  b: {mode: private, "
                "publish: ['80:81']}\n",
                3, "already published by namespace 'a'"},
        BadFile{"mtu 67", "namespaces:\n  a: {mode: private, ip: 10.209.0.2/30, mtu: 67}\n", 2,
                "68 to 65535"},
        BadFile{"mtu 65536", "namespaces:\n  a: {mode: private, ip: 10.209.0.2/30, mtu: 65536}\n",
                2, "68 to 65535"},
        BadFile{"bad rate", "namespaces:\n  a: {mode: private, rate: fast}\n", 2, "rate"},
        BadFile{"rate on full", "namespaces:\n  a: {mode: full, rate: 1mbit}\n", 2,
                "full mode has no interface"},
        BadFile{"host sysctl", "namespaces:\n  a:\n    sysctls: {kernel.panic: 1}\n", 3,
                "only network sysctls"},
        BadFile{"sysctl path escape", "namespaces:\n  a:\n    sysctls: {net.ipv4..x: 1}\n", 3,
                "only network sysctls"},
        BadFile{"route without via or device", "namespaces:\n  a:\n    routes: [{to: default}]\n",
                3, "needs via:, device: or both"},
        BadFile{"route bad cidr",
                "namespaces:\n  a:\n    routes: [{to: 10.0.0.0/40, via: 10.0.0.1}]\n", 3,
                "routes.to"},
        BadFile{"route unknown device",
                "namespaces:\n  a:\n    routes: [{to: default, device: eth7}]\n", 3,
                "has no device 'eth7'"},
        BadFile{"address on eth0 in full mode",
                "namespaces:\n  a:\n    addresses: [{device: eth0, address: 10.1.1.1/24}]\n", 3,
                "has no device 'eth0'"},
        BadFile{"empty command", "namespaces:\n  a:\n    commands: ['']\n", 3, "empty command"},
        BadFile{"command not a string", "namespaces:\n  a:\n    commands: [{x: 1}]\n", 3,
                "a command is a string"},
        BadFile{"link dangling namespace",
                kNs + "links:\n  - ends:\n      - {namespace: a, device: x0}\n      - {namespace: "
                      "zz, device: x1}\n",
                7, "namespace 'zz' is not declared"},
        BadFile{"link one end", kNs + "links:\n  - ends: [{namespace: a, device: x0}]\n", 5,
                "exactly two ends"},
        BadFile{"link same namespace",
                kNs + "links:\n  - ends:\n      - {namespace: a, device: x0}\n      - {namespace: "
                      "a, device: x1}\n",
                6, "both ends are in namespace 'a'"},
        BadFile{"link device reused",
                "namespaces: {a: {}, b: {}}\nlinks:\n  - ends: [{namespace: a, device: x}, "
                "{namespace: b, device: x}]\n  - ends: [{namespace: a, device: x}, {namespace: "
                "b, device: y}]\n",
                4, "already has a link named 'x'"},
        BadFile{"link to shared",
                "namespaces: {a: {}, h: {mode: shared}}\nlinks:\n  - ends: [{namespace: a, "
                "device: x}, {namespace: h, device: y}]\n",
                3, "shares the host's network"},
        BadFile{"link device lo",
                "namespaces: {a: {}, b: {}}\nlinks:\n  - ends: [{namespace: a, device: lo}, "
                "{namespace: b, device: y}]\n",
                3, "'lo' is taken"},
        BadFile{"link bad address",
                "namespaces: {a: {}, b: {}}\nlinks:\n  - ends: [{namespace: a, device: x, "
                "address: 300.1.1.1/24}, {namespace: b, device: y}]\n",
                3, "address"},
        BadFile{"link unknown key",
                "namespaces: {a: {}, b: {}}\nlinks:\n  - ends: [{namespace: a, device: x}, "
                "{namespace: b, device: y}]\n    colour: red\n",
                4, "unknown key"},
        BadFile{"namespaces is a list", "namespaces: [a, b]\n", 1, "expected a mapping"}),
    [](const ::testing::TestParamInfo<BadFile>& param_info) {
      std::string name;
      for (char c : std::string(param_info.param.what)) name += std::isalnum(c) ? c : '_';
      return name;
    });

TEST(TopologyParse, ReportsEveryErrorNotOnlyTheFirst) {
  auto parsed = parse_topology(
      "namespaces:\n  a: {mode: nope}\n  b: {colour: red}\n  c: {mode: bridged, network: x}\n",
      "t.yaml");
  ASSERT_FALSE(parsed.topology);
  ASSERT_EQ(parsed.errors.size(), 3u);
  EXPECT_EQ(parsed.errors[0].line, 2);
  EXPECT_EQ(parsed.errors[1].line, 3);
  EXPECT_EQ(parsed.errors[2].line, 4);
}

TEST(TopologyParse, ReadsEgressPoliciesAndRefusesBadOnesWhereTheyAre) {
  auto parsed = parse_topology(R"(namespaces:
  job:
    mode: private
    egress:
      allow: ["10.99.0.5:5432/tcp", "192.0.2.0/24:443/tcp"]
      deny: [192.0.2.66]
  open:
    mode: private
    egress: {deny: [198.51.100.0/24]}
)",
                               "t.yaml");
  ASSERT_TRUE(parsed.topology) << (parsed.errors.empty() ? "" : parsed.errors[0].message);
  const auto* job = find(*parsed.topology, "job");
  ASSERT_TRUE(job && job->config.egress);
  EXPECT_EQ(job->config.egress->default_action, PolicyAction::kDeny);
  ASSERT_EQ(job->config.egress->rules.size(), 3u);
  EXPECT_EQ(job->config.egress->rules[2].action, PolicyAction::kDeny);
  const auto* open = find(*parsed.topology, "open");
  ASSERT_TRUE(open && open->config.egress);
  EXPECT_EQ(open->config.egress->default_action, PolicyAction::kAllow);
  // The policy is part of the declaration: changing it changes the digest.
  auto changed = parse_topology(R"(namespaces:
  job:
    mode: private
    egress: {allow: ["10.99.0.5:5433/tcp"]}
)",
                                "t.yaml");
  ASSERT_TRUE(changed.topology);
  EXPECT_NE(find(*changed.topology, "job")->config.topology.digest, job->config.topology.digest);

  auto bad = parse_topology(R"(namespaces:
  a:
    mode: private
    egress: {allow: ["10.0.0.1/8"], colour: red}
  b:
    mode: private
    egress: {default: maybe, deny: ["10.0.0.0/8:90-80"]}
  c:
    mode: full
    egress: {default: deny}
)",
                            "t.yaml");
  ASSERT_FALSE(bad.topology);
  std::vector<std::string> where;
  for (const auto& e : bad.errors) where.push_back(std::to_string(e.line) + " " + e.field);
  EXPECT_EQ(where,
            (std::vector<std::string>{"4 namespaces.a.egress.colour", "4 namespaces.a.egress.allow",
                                      "7 namespaces.b.egress.default", "7 namespaces.b.egress.deny",
                                      "10 namespaces.c.egress"}))
      << ::testing::PrintToString(where);
}

TEST(TopologyParse, BridgedNamespacesTakeAnEgressBlockSharedOnesDoNot) {
  auto parsed = parse_topology(R"(networks:
  lan: {subnet: 10.60.0.0/24}
namespaces:
  job:
    mode: bridged
    network: lan
    egress: {allow: ["10.60.0.5:9000/tcp"]}
)",
                               "t.yaml");
  ASSERT_TRUE(parsed.topology && find(*parsed.topology, "job")->config.egress)
      << (parsed.errors.empty() ? "" : parsed.errors[0].message);
  EXPECT_EQ(find(*parsed.topology, "job")->config.egress->rules.size(), 1u);
  auto shared = parse_topology(R"(namespaces:
  host:
    mode: shared
    egress: {default: deny}
)",
                               "t.yaml");
  ASSERT_FALSE(shared.topology);
  ASSERT_EQ(shared.errors.size(), 1u);
  EXPECT_EQ(shared.errors[0].field, "namespaces.host.egress");
  EXPECT_NE(shared.errors[0].message.find("only private and bridged"), std::string::npos);
}

TEST(TopologyParse, RefusesHugeAndDeepFiles) {
  std::string huge = "namespaces:\n  a: {}\n# " + std::string(2 << 20, 'x') + "\n";
  auto parsed = parse_topology(huge, "t.yaml");
  ASSERT_FALSE(parsed.topology);
  EXPECT_NE(parsed.errors.front().message.find("larger than 1 MiB"), std::string::npos);
  std::string deep = "namespaces: " + std::string(5000, '[') + std::string(5000, ']') + "\n";
  parsed = parse_topology(deep, "t.yaml");
  EXPECT_FALSE(parsed.topology);
}

TEST(TopologyParse, LoadReportsMissingFiles) {
  auto parsed = load_topology("/nonexistent/t.yaml");
  ASSERT_FALSE(parsed.topology);
  EXPECT_NE(parsed.errors.front().to_string().find("/nonexistent/t.yaml"), std::string::npos);
  parsed = load_topology("/");
  ASSERT_FALSE(parsed.topology);
  EXPECT_NE(parsed.errors.front().message.find("not a regular file"), std::string::npos);
}

}  // namespace
}  // namespace netcell
