// Private and bridged namespaces end to end, each test in its own throwaway world where "the
// internet" is a namespace `wan` on TEST-NET-3 (203.0.113.0/24). Every result is checked with real
// traffic or the kernel's own view (`ip -j`, `nft -j`), never through netcell's records alone.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "support/process.h"

namespace netcell {
namespace {

namespace fs = std::filesystem;
using testing::cli;
using testing::ip_json;
using testing::sh;
using testing::TcpResponder;

// Connects from inside namespace `ns` (through netcell exec) or from the world (ns empty) and
// returns what the server sent; empty when the connection failed.
std::string fetch(const std::string& ns, const std::string& ip, int port) {
  std::string cmd = "nc -w 2 " + ip + " " + std::to_string(port) + " </dev/null";
  auto r = ns.empty() ? sh(cmd) : cli({"exec", ns, "--", "sh", "-c", cmd});
  return r.exit_code == 0 ? r.out : "";
}

bool ping(const std::string& ns, const std::string& ip) {
  std::string cmd = "ping -c 1 -W 1 " + ip + " >/dev/null";
  return (ns.empty() ? sh(cmd) : cli({"exec", ns, "--", "sh", "-c", cmd})).exit_code == 0;
}

std::string info_field(const std::string& ns, const std::string& key) {
  auto j = nlohmann::json::parse(cli({"info", ns, "--json"}).out);
  return j[key].is_string() ? j[key].get<std::string>() : j[key].dump();
}

// The namespace's address as the kernel shows it.
std::string kernel_address(const std::string& ns) {
  for (const auto& link : ip_json({"-n", ns, "-4", "addr"})) {
    if (link["ifname"] == "eth0") return link["addr_info"][0]["local"];
  }
  return "";
}

class NetworkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::in_world()) GTEST_FAIL() << "run through tests/support/world.sh";
    ASSERT_EQ(testing::make_internet(), "");
  }
  void TearDown() override {
    for (const auto& ns : nlohmann::json::parse(cli({"list", "--json"}).out)) {
      cli({"destroy", ns["name"].get<std::string>()});
    }
    for (const auto& net : nlohmann::json::parse(cli({"network", "list", "--json"}).out)) {
      if (net["kind"] == "bridged") cli({"network", "rm", net["name"].get<std::string>()});
    }
    // ctest gives each test its own world; this keeps a by-hand run in one world independent.
    sh("ip -all netns delete; ip link del wan0 2>/dev/null; true");
  }
};

TEST_F(NetworkTest, PrivateVethPingsBothWays) {
  auto r = cli({"create", "p", "--mode", "private"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(kernel_address("p"), "10.209.0.2");
  auto links = ip_json({"-n", "p", "link"});
  ASSERT_EQ(links.size(), 2U);
  auto routes = ip_json({"-n", "p", "route", "show", "default"});
  ASSERT_EQ(routes.size(), 1U);
  EXPECT_EQ(routes[0]["gateway"], "10.209.0.1");
  EXPECT_EQ(sh("cat /proc/sys/net/ipv4/ip_forward").out, "1\n");
  EXPECT_TRUE(ping("", "10.209.0.2"));
  EXPECT_TRUE(ping("p", "10.209.0.1"));
  // No shared L2 segment: the host end is a plain veth, not a bridge port.
  auto host = ip_json({"-d", "link", "show", info_field("p", "host_interface")});
  ASSERT_EQ(host.size(), 1U);
  EXPECT_FALSE(host[0].contains("master"));
}

// Both ends of a private namespace's veth know each other from the start: a permanent neighbour
// entry on each (the kernel's neighbour table is one for the host, and permanent entries are
// outside its limit), with the other end's real MAC; traffic both ways adds no other entry.
// A minimal system has no /etc/protocols (Debian's netbase is not essential): netcell's tables
// name no protocol that nft would have to look up there. Hidden here by a bind mount in the
// world's mount namespace; both tables made, a policy's too, and traffic through them.
TEST_F(NetworkTest, TheTablesNeedNoEtcProtocols) {
  ASSERT_EQ(sh("mount --bind /dev/null /etc/protocols").exit_code, 0);
  auto made =
      cli({"create", "p", "--mode", "private", "--egress", "deny", "--allow", "203.0.113.2/32"});
  EXPECT_EQ(made.exit_code, 0) << made.err;
  EXPECT_EQ(sh("nft -j list table ip6 netcell >/dev/null").exit_code, 0);
  EXPECT_EQ(cli({"exec", "p", "--", "ping", "-c1", "-W1", "203.0.113.2"}).exit_code, 0);
  EXPECT_NE(cli({"exec", "p", "--", "ping", "-c1", "-W1", "203.0.113.1"}).exit_code, 0);
  sh("umount /etc/protocols");
}

TEST_F(NetworkTest, PrivateVethEndsKnowEachOtherWithoutArp) {
  ASSERT_EQ(cli({"create", "p", "--mode", "private"}).exit_code, 0);
  const std::string host_if = info_field("p", "host_interface");
  auto mac_of = [](const nlohmann::json& links, const std::string& name) {
    for (const auto& l : links) {
      if (l.value("ifname", "") == name) return l.value("address", "");
    }
    return std::string();
  };
  const std::string host_mac = mac_of(ip_json({"link"}), host_if);
  const std::string ns_mac = mac_of(ip_json({"-n", "p", "link"}), "eth0");
  ASSERT_FALSE(host_mac.empty());
  ASSERT_FALSE(ns_mac.empty());
  // One MAC for both ends; the namespace end is NOARP: without its entry it would still send to
  // its own MAC, which is the host end's.
  EXPECT_EQ(host_mac, ns_mac);
  const nlohmann::json flags = ip_json({"-n", "p", "link", "show", "dev", "eth0"})[0]["flags"];
  EXPECT_NE(std::find(flags.begin(), flags.end(), "NOARP"), flags.end()) << flags.dump();
  // Positive control: traffic both ways, to the gateway and through it.
  EXPECT_TRUE(ping("", "10.209.0.2"));
  EXPECT_TRUE(ping("p", "10.209.0.1"));
  EXPECT_TRUE(ping("p", "203.0.113.2"));
  auto host_side = ip_json({"-4", "neigh", "show", "dev", host_if});
  ASSERT_EQ(host_side.size(), 1U) << host_side.dump();
  EXPECT_EQ(host_side[0].value("dst", ""), "10.209.0.2");
  EXPECT_EQ(host_side[0].value("lladdr", ""), ns_mac);
  EXPECT_EQ(host_side[0]["state"], nlohmann::json::array({"PERMANENT"})) << host_side.dump();
  auto inside = ip_json({"-n", "p", "-4", "neigh", "show", "dev", "eth0"});
  ASSERT_EQ(inside.size(), 1U) << inside.dump();
  EXPECT_EQ(inside[0].value("dst", ""), "10.209.0.1");
  EXPECT_EQ(inside[0].value("lladdr", ""), host_mac);
  EXPECT_EQ(inside[0]["state"], nlohmann::json::array({"PERMANENT"})) << inside.dump();
  // Locally administered unicast addresses.
  for (const auto& mac : {host_mac, ns_mac}) {
    const int first = std::stoi(mac.substr(0, 2), nullptr, 16);
    EXPECT_EQ(first & 0x03, 0x02) << mac;
  }
}

TEST_F(NetworkTest, NatReachesTheInternetWithTheHostsAddress) {
  TcpResponder server("wan", "203.0.113.2", 8000, "hello from the internet\n");
  ASSERT_TRUE(server.ready());
  ASSERT_EQ(cli({"create", "p", "--mode", "private"}).exit_code, 0);
  EXPECT_EQ(fetch("p", "203.0.113.2", 8000), "hello from the internet\n");
  ASSERT_EQ(server.peers().size(), 1U);
  EXPECT_EQ(server.peers()[0], "203.0.113.1");  // masqueraded, not 10.209.0.2
}

TEST_F(NetworkTest, PublishedPortIsReachableFromEverywhere) {
  auto r = cli({"create", "web", "--mode", "private", "--publish", "8080:80"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  TcpResponder http("web", "0.0.0.0", 80, "HTTP/1.0 200 OK\r\n\r\nhello from web\n");
  ASSERT_TRUE(http.ready());
  const std::string body = "HTTP/1.0 200 OK\r\n\r\nhello from web\n";
  EXPECT_EQ(fetch("", "127.0.0.1", 8080), body) << "from the host's 127.0.0.1";
  EXPECT_EQ(fetch("", "203.0.113.1", 8080), body) << "from the host at its own address";
  auto from_wan = sh("ip netns exec wan nc -w 2 203.0.113.1 8080 </dev/null");
  EXPECT_EQ(from_wan.out, body) << "from another host";
  std::string gateway = nlohmann::json::parse(cli({"info", "web", "--json"}).out)["gateway"];
  EXPECT_EQ(fetch("web", gateway, 8080), body) << "hairpin via the gateway";
  EXPECT_EQ(fetch("web", "203.0.113.1", 8080), body) << "hairpin via the host address";
  ASSERT_EQ(cli({"create", "other", "--mode", "private"}).exit_code, 0);
  EXPECT_EQ(fetch("other", "203.0.113.1", 8080), body) << "from another namespace";
  auto peers = http.peers();
  ASSERT_EQ(peers.size(), 6U);
  EXPECT_EQ(peers[2], "203.0.113.2");  // a remote client keeps its address (DNAT only)
  // Unpublished ports stay closed.
  TcpResponder hidden("web", "0.0.0.0", 81, "hidden\n");
  EXPECT_EQ(fetch("", "203.0.113.1", 81), "");
  EXPECT_EQ(sh("ip netns exec wan nc -w 1 10.209.0.2 81 </dev/null").out, "");
}

TEST_F(NetworkTest, HostIpPublishingBindsOnlyThatAddress) {
  ASSERT_EQ(cli({"create", "web", "--mode", "private", "--publish", "127.0.0.1:8081:80"}).exit_code,
            0);
  TcpResponder http("web", "0.0.0.0", 80, "ok\n");
  ASSERT_TRUE(http.ready());
  EXPECT_EQ(fetch("", "127.0.0.1", 8081), "ok\n");
  EXPECT_EQ(fetch("", "203.0.113.1", 8081), "");
}

TEST_F(NetworkTest, PrivateNamespacesCannotReachEachOtherOrTheHost) {
  ASSERT_EQ(cli({"create", "a", "--mode", "private"}).exit_code, 0);
  ASSERT_EQ(cli({"create", "b", "--mode", "private"}).exit_code, 0);
  std::string b_ip = kernel_address("b");
  TcpResponder in_b("b", "0.0.0.0", 9000, "b\n");
  TcpResponder on_host("", "0.0.0.0", 9000, "host\n");
  TcpResponder host_loopback("", "127.0.0.1", 9001, "loopback\n");
  TcpResponder internet("wan", "203.0.113.2", 9000, "wan\n");
  ASSERT_TRUE(in_b.ready() && on_host.ready() && internet.ready() && host_loopback.ready());
  int tried = 0;
  // Control: the internet is reachable, so the failures below are isolation, not breakage.
  ASSERT_EQ(fetch("a", "203.0.113.2", 9000), "wan\n");
  for (const auto& [ip, port] : std::vector<std::pair<std::string, int>>{{b_ip, 9000},
                                                                         {"10.209.0.5", 9000},
                                                                         {"10.209.0.1", 9000},
                                                                         {"203.0.113.1", 9000},
                                                                         {"127.0.0.1", 9000},
                                                                         {"10.209.0.1", 9001}}) {
    ++tried;
    EXPECT_EQ(fetch("a", ip, port), "") << ip << ":" << port << " reached from a";
  }
  ++tried;
  EXPECT_FALSE(ping("a", b_ip));
  EXPECT_EQ(tried, 7);
  EXPECT_TRUE(in_b.peers().empty());
  EXPECT_TRUE(on_host.peers().empty());
}

TEST_F(NetworkTest, SpoofedSourceAddressesAreDropped) {
  ASSERT_EQ(cli({"create", "a", "--mode", "private"}).exit_code, 0);
  TcpResponder internet("wan", "203.0.113.2", 9000, "wan\n");
  ASSERT_TRUE(internet.ready());
  ASSERT_TRUE(ping("a", "203.0.113.2"));
  // Root inside the namespace adds an address it was not given and sends from it.
  ASSERT_EQ(sh("ip -n a addr add 10.209.0.6/32 dev eth0").exit_code, 0);
  EXPECT_NE(
      cli({"exec", "a", "--", "ping", "-c", "1", "-W", "1", "-I", "10.209.0.6", "203.0.113.2"})
          .exit_code,
      0);
  EXPECT_EQ(
      cli({"exec", "a", "--", "sh", "-c", "nc -w 2 -s 10.209.0.6 203.0.113.2 9000 </dev/null"}).out,
      "");
  EXPECT_TRUE(internet.peers().empty());
}

// Bridged isolation must hold whether or not bridged frames pass the IP hooks (br_netfilter's
// bridge-nf-call-iptables, a per-namespace setting on this kernel).
void check_bridged_isolation(const char* bridge_nf_call_iptables) {
  ASSERT_EQ(sh(std::string("echo ") + bridge_nf_call_iptables +
               " > /proc/sys/net/bridge/bridge-nf-call-iptables")
                .exit_code,
            0);
  ASSERT_EQ(cli({"network", "create", "lan", "--subnet", "10.50.0.0/24"}).exit_code, 0);
  ASSERT_EQ(cli({"network", "create", "out", "--subnet", "10.51.0.0/24", "--nat"}).exit_code, 0);
  ASSERT_EQ(cli({"create", "n1", "--network", "lan"}).exit_code, 0);
  ASSERT_EQ(cli({"create", "n2", "--network", "lan"}).exit_code, 0);
  ASSERT_EQ(cli({"create", "o1", "--network", "out"}).exit_code, 0);
  EXPECT_EQ(kernel_address("n1"), "10.50.0.2");
  EXPECT_EQ(kernel_address("n2"), "10.50.0.3");
  TcpResponder in_n2("n2", "0.0.0.0", 9000, "n2\n");
  TcpResponder in_o1("o1", "0.0.0.0", 9000, "o1\n");
  TcpResponder on_host("", "0.0.0.0", 9000, "host\n");
  TcpResponder internet("wan", "203.0.113.2", 9000, "wan\n");
  ASSERT_TRUE(in_n2.ready() && in_o1.ready() && on_host.ready() && internet.ready());
  EXPECT_EQ(fetch("n1", "10.50.0.3", 9000), "n2\n") << "same network";
  EXPECT_TRUE(ping("n1", "10.50.0.3"));
  EXPECT_EQ(fetch("n1", "10.50.0.1", 9000), "") << "the host via its bridge address";
  EXPECT_EQ(fetch("n1", "203.0.113.1", 9000), "") << "the host via another address";
  EXPECT_EQ(fetch("n1", "203.0.113.2", 9000), "") << "the internet without --nat";
  EXPECT_EQ(fetch("n1", "10.51.0.2", 9000), "") << "another network";
  EXPECT_EQ(fetch("o1", "10.50.0.3", 9000), "") << "another network, the other way";
  EXPECT_EQ(fetch("o1", "203.0.113.2", 9000), "wan\n") << "the internet with --nat";
  EXPECT_EQ(internet.peers(), std::vector<std::string>{"203.0.113.1"});
  EXPECT_TRUE(on_host.peers().empty());
  // The bridge's ports: both namespaces' host ends, no IPv6 link-local chatter.
  auto ports = ip_json({"-j", "link", "show", "master", "ncbr0"});
  EXPECT_EQ(ports.size(), 2U);
}

TEST_F(NetworkTest, BridgedIsolationWithBrNetfilter) {
  check_bridged_isolation("1");
}
TEST_F(NetworkTest, BridgedIsolationWithoutBrNetfilter) {
  check_bridged_isolation("0");
}

TEST_F(NetworkTest, BridgedNamespacesPublishPortsToo) {
  ASSERT_EQ(cli({"network", "create", "lan", "--subnet", "10.50.0.0/24"}).exit_code, 0);
  ASSERT_EQ(cli({"create", "b1", "--network", "lan", "--publish", "8090:80"}).exit_code, 0);
  ASSERT_EQ(cli({"create", "b2", "--network", "lan"}).exit_code, 0);
  TcpResponder http("b1", "0.0.0.0", 80, "bridged web\n");
  ASSERT_TRUE(http.ready());
  EXPECT_EQ(fetch("", "127.0.0.1", 8090), "bridged web\n") << "from the host's 127.0.0.1";
  EXPECT_EQ(sh("ip netns exec wan nc -w 2 203.0.113.1 8090 </dev/null").out, "bridged web\n")
      << "from another host";
  EXPECT_EQ(fetch("b2", "10.50.0.2", 80), "bridged web\n") << "from its network, directly";
  EXPECT_EQ(http.peers().size(), 3U);
}

TEST_F(NetworkTest, GcRollsBackAnInterruptedNetworkCreate) {
  ASSERT_EQ(cli({"network", "create", "lan", "--subnet", "10.50.0.0/24"}).exit_code, 0);
  // What a `network create` killed after making the bridge leaves: a record still "creating".
  std::string path = "/run/netcell/networks/lan.json";
  auto record = nlohmann::json::parse(sh("cat " + path).out);
  record["phase"] = "creating";
  std::ofstream(path) << record.dump();
  auto gc = cli({"gc", "--json"});
  ASSERT_EQ(gc.exit_code, 0) << gc.err;
  EXPECT_EQ(nlohmann::json::parse(gc.out)["removed"].size(), 1U);
  EXPECT_TRUE(ip_json({"link", "show", "ncbr0"}).empty());
  EXPECT_FALSE(fs::exists(path));
  EXPECT_NE(sh("nft list table ip netcell").exit_code, 0);
}

TEST_F(NetworkTest, HostAccessLetsABridgedNetworkReachTheHost) {
  ASSERT_EQ(
      cli({"network", "create", "mgmt", "--subnet", "10.52.0.0/24", "--host-access"}).exit_code, 0);
  ASSERT_EQ(cli({"create", "m", "--network", "mgmt"}).exit_code, 0);
  TcpResponder on_host("", "0.0.0.0", 9000, "host\n");
  ASSERT_TRUE(on_host.ready());
  EXPECT_EQ(fetch("m", "10.52.0.1", 9000), "host\n");
}

TEST_F(NetworkTest, FirewallStateIsElementsAndGoesAwayWithTheLast) {
  auto rules_and_elements = [] {
    auto j = nlohmann::json::parse(sh("nft -j list table ip netcell").out, nullptr, false);
    std::pair<int, int> counts{0, 0};
    if (j.is_discarded()) return std::pair<int, int>{-1, -1};
    for (const auto& item : j["nftables"]) {
      if (item.contains("rule")) ++counts.first;
      if (item.contains("set") && item["set"]["name"] == "ns_ifs" && item["set"].contains("elem")) {
        counts.second = static_cast<int>(item["set"]["elem"].size());
      }
    }
    return counts;
  };
  ASSERT_EQ(cli({"create", "a", "--mode", "private", "--publish", "8080:80"}).exit_code, 0);
  auto one = rules_and_elements();
  ASSERT_EQ(cli({"create", "b", "--mode", "private", "--publish", "8081:80"}).exit_code, 0);
  ASSERT_EQ(cli({"create", "c", "--mode", "private"}).exit_code, 0);
  auto three = rules_and_elements();
  EXPECT_EQ(one.second, 1);
  EXPECT_EQ(three.second, 3);
  EXPECT_EQ(three.first, one.first) << "a namespace must add elements, not rules";
  auto pf = nlohmann::json::parse(sh("nft -j list map ip netcell pf_tcp").out);
  EXPECT_EQ(pf["nftables"][1]["map"]["elem"].size(), 2U);
  ASSERT_EQ(cli({"destroy", "a", "b", "c"}).exit_code, 0);
  EXPECT_NE(sh("nft list table ip netcell").exit_code, 0) << "the table outlived its users";
  EXPECT_EQ(sh("nft -j list ruleset").out.find("netcell"), std::string::npos);
}

// netcell writes a namespace's elements as raw nfnetlink (libnftnl), not as nft text: nft itself
// must read them back as the values meant, and adding the same values again as nft text must find
// them already there (an element encoded differently would be a second element, or for a map a
// clash), so the byte layout is exactly nft's.
TEST_F(NetworkTest, ElementsReadBackAsNftWritesThem) {
  ASSERT_EQ(cli({"create", "a", "--mode", "private", "--publish", "8080:80", "--publish",
                 "127.0.0.1:8090:81/udp"})
                .exit_code,
            0);
  const std::string host_if = info_field("a", "host_interface");
  const std::string ip = kernel_address("a");
  ASSERT_FALSE(host_if.empty());
  ASSERT_FALSE(ip.empty());
  auto elements = [] {
    std::map<std::string, std::string> out;
    auto j = nlohmann::json::parse(sh("nft -j list table ip netcell").out);
    for (const auto& item : j["nftables"]) {
      for (const char* kind : {"set", "map"}) {
        if (item.contains(kind) && item[kind].contains("elem")) {
          out[item[kind]["name"]] = item[kind]["elem"].dump();
        }
      }
    }
    return out;
  };
  auto before = elements();
  auto q = [](const std::string& s) { return "\"" + s + "\""; };
  EXPECT_EQ(before["ns_ifs"], '[' + q(host_if) + "]");
  EXPECT_EQ(before["nat_src"], '[' + q(ip) + "]");
  EXPECT_EQ(before["src_ok"], "[{\"concat\":[" + q(host_if) + "," + q(ip) + "]}]");
  EXPECT_EQ(before["hairpin"], "[{\"concat\":[" + q(host_if) + "," + q(host_if) + "]}]");
  EXPECT_EQ(before["pf_tcp"], "[[8080,{\"concat\":[" + q(ip) + ",80]}]]");
  EXPECT_EQ(before["pf_udp_ip"],
            "[[{\"concat\":[\"127.0.0.1\",8090]},{\"concat\":[" + q(ip) + ",81]}]]");
  const std::string again =
      "add element ip netcell ns_ifs { \"" + host_if + "\" }\n" +
      "add element ip netcell nat_src { " + ip + " }\n" + "add element ip netcell src_ok { \"" +
      host_if + "\" . " + ip + " }\n" + "add element ip netcell hairpin { \"" + host_if +
      "\" . \"" + host_if + "\" }\n" + "add element ip netcell pf_tcp { 8080 : " + ip +
      " . 80 }\n" + "add element ip netcell pf_udp_ip { 127.0.0.1 . 8090 : " + ip + " . 81 }\n";
  auto added = sh("nft -f - <<'EOF'\n" + again + "EOF");
  EXPECT_EQ(added.exit_code, 0) << added.err;
  EXPECT_EQ(elements(), before) << "nft encodes these values differently from netcell";
  ASSERT_EQ(cli({"destroy", "a"}).exit_code, 0);
  EXPECT_NE(sh("nft list table ip netcell").exit_code, 0);
}

TEST_F(NetworkTest, ConflictsAndBadInputLeaveNothingBehind) {
  ASSERT_EQ(cli({"create", "a", "--mode", "private", "--publish", "8080:80"}).exit_code, 0);
  auto links_before = ip_json({"link"}).size();
  struct Case {
    std::vector<std::string> args;
    int code;
    std::string message;
  };
  std::vector<Case> cases = {
      {{"create", "b", "--mode", "private", "--publish", "8080:81"}, 1, "already published"},
      {{"create", "b", "--mode", "private", "--publish", "127.0.0.1:8080:81"},
       1,
       "already published"},
      {{"create", "b", "--mode", "private", "--publish", "70000:80"}, 2, "port"},
      {{"create", "b", "--mode", "private", "--ip", kernel_address("a") + "/30"}, 1, "in use"},
      {{"create", "b", "--mode", "private", "--ip", "192.0.2.9/30"}, 2, "private pool"},
      {{"create", "b", "--network", "nosuch"}, 1, "does not exist"},
      {{"network", "create", "x", "--subnet", "10.60.0.1/24"}, 2, "10.60.0.0/24"},
      {{"network", "create", "x", "--subnet", "10.209.128.0/24"}, 1, "overlaps"},
      {{"network", "create", "x", "--subnet", "203.0.113.0/25"}, 1, "host route"},
      {{"network", "create", "x", "--subnet", "not-a-cidr"}, 2, "--subnet"},
      {{"network", "rm", "private"}, 2, "cannot be removed"},
  };
  for (const auto& c : cases) {
    auto r = cli(c.args);
    std::string shown;
    for (const auto& a : c.args) shown += a + " ";
    EXPECT_EQ(r.exit_code, c.code) << shown << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << shown << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << shown << r.err;
  }
  EXPECT_EQ(nlohmann::json::parse(cli({"list", "--json"}).out).size(), 1U);
  EXPECT_EQ(ip_json({"netns", "list"}).size(), 2U);  // a and wan
  EXPECT_EQ(ip_json({"link"}).size(), links_before);
  EXPECT_EQ(nlohmann::json::parse(cli({"network", "list", "--json"}).out).size(), 1U);
}

TEST_F(NetworkTest, ConcurrentInvocationsNeverShareAnAddressOrPort) {
  // 12 CLI processes at once: distinct names, and all of them racing for one host port.
  std::string script;
  for (int i = 0; i < 12; ++i) {
    script += std::string(NETCELL_CLI_PATH) + " create c" + std::to_string(i) +
              " --mode private --publish 9999:80 >/dev/null 2>&1 || " + NETCELL_CLI_PATH +
              " create c" + std::to_string(i) + " --mode private >/dev/null 2>&1 & ";
  }
  ASSERT_EQ(sh(script + "wait", 60000).exit_code, 0);
  std::set<std::string> addresses;
  int publishers = 0;
  for (int i = 0; i < 12; ++i) {
    std::string ns = 'c' + std::to_string(i);
    addresses.insert(kernel_address(ns));  // read back from the kernel, not from netcell
    auto info = nlohmann::json::parse(cli({"info", ns, "--json"}).out);
    publishers += static_cast<int>(info["port_forwards"].size());
  }
  EXPECT_EQ(addresses.size(), 12U);
  EXPECT_EQ(addresses.count(""), 0U);
  EXPECT_EQ(publishers, 1) << "host port 9999 went to more than one namespace";
  auto pf = nlohmann::json::parse(sh("nft -j list map ip netcell pf_tcp").out);
  EXPECT_EQ(pf["nftables"][1]["map"]["elem"].size(), 1U);
}

TEST_F(NetworkTest, PoolExhaustionIsAClearError) {
  // A /29 holds two /30 blocks.
  auto small = [](std::vector<std::string> args) {
    args.insert(args.begin(), {"--private-subnet", "10.77.0.0/29"});
    return cli(args);
  };
  ASSERT_EQ(small({"create", "a", "--mode", "private"}).exit_code, 0);
  ASSERT_EQ(small({"create", "b", "--mode", "private"}).exit_code, 0);
  auto r = small({"create", "c", "--mode", "private"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("exhausted"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists("/run/netns/c"));
  ASSERT_EQ(cli({"destroy", "a"}).exit_code, 0);
  EXPECT_EQ(small({"create", "c", "--mode", "private"}).exit_code, 0);
}

TEST_F(NetworkTest, DnsServersAreWrittenAndUsed) {
  auto dir = "/run/dns-test";
  fs::create_directories(dir);
  std::string dnsmasq =
      "ip netns exec wan timeout 60 dnsmasq --keep-in-foreground --no-resolv --no-hosts "
      "--bind-interfaces --listen-address=203.0.113.2 --address=/example.test/198.51.100.7 "
      "--pid-file=/run/dns-test/pid --user=root >/dev/null 2>&1 &";
  ASSERT_EQ(sh(dnsmasq).exit_code, 0);
  ASSERT_EQ(cli({"create", "d", "--mode", "private", "--dns", "203.0.113.2"}).exit_code, 0);
  auto conf = cli({"exec", "d", "--", "cat", "/etc/resolv.conf"});
  EXPECT_NE(conf.out.find("nameserver 203.0.113.2"), std::string::npos) << conf.out;
  EXPECT_EQ(sh("ip netns exec d cat /etc/resolv.conf").out, conf.out);
  std::string answer;
  for (int i = 0; i < 20 && answer.empty(); ++i) {
    answer = cli({"exec", "d", "--", "getent", "hosts", "example.test"}).out;
    if (answer.empty()) ::usleep(100000);
  }
  EXPECT_NE(answer.find("198.51.100.7"), std::string::npos) << answer;
  sh("kill $(cat /run/dns-test/pid)");
  ASSERT_EQ(cli({"destroy", "d"}).exit_code, 0);
  EXPECT_FALSE(fs::exists("/etc/netns/d"));
}

TEST_F(NetworkTest, NetworkRemovalIsRefusedWhileInUse) {
  ASSERT_EQ(cli({"network", "create", "lan", "--subnet", "10.50.0.0/24"}).exit_code, 0);
  ASSERT_EQ(cli({"create", "n1", "--network", "lan"}).exit_code, 0);
  auto r = cli({"network", "rm", "lan"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("in use by 1 namespace(s): n1"), std::string::npos) << r.err;
  EXPECT_EQ(ip_json({"link", "show", "ncbr0"}).size(), 1U);
  ASSERT_EQ(cli({"destroy", "n1"}).exit_code, 0);
  ASSERT_EQ(cli({"network", "rm", "lan"}).exit_code, 0);
  EXPECT_TRUE(ip_json({"link", "show", "ncbr0"}).empty());
  EXPECT_NE(sh("nft list table ip netcell").exit_code, 0);
}

TEST_F(NetworkTest, StatsCountTheNamespaceSideInterfaces) {
  ASSERT_EQ(cli({"create", "s", "--mode", "private"}).exit_code, 0);
  ASSERT_TRUE(ping("s", "203.0.113.2"));
  auto tx = [] { return ip_json({"-n", "s", "-s", "link", "show", "eth0"})[0]["stats64"]["tx"]; };
  auto before = tx()["packets"].get<int>();
  auto stats = nlohmann::json::parse(cli({"stats", "s", "--json"}).out);
  auto after = tx()["packets"].get<int>();
  EXPECT_EQ(stats["interface_count"], 2);
  int seen = 0;
  for (const auto& iface : stats["interfaces"]) {
    if (iface["name"] != "eth0") continue;
    ++seen;
    EXPECT_GE(iface["tx_packets"].get<int>(), 1);
    EXPECT_GE(iface["tx_packets"].get<int>(), before);
    EXPECT_LE(iface["tx_packets"].get<int>(), after);
  }
  EXPECT_EQ(seen, 1);
}

}  // namespace
}  // namespace netcell
