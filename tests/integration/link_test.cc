// Links, addresses, routes and per-device settings against the real kernel, checked through
// iproute2 (`ip -j`), /proc and real traffic. PRIVILEGED: every test runs in its own throwaway
// world (tests/support/world.sh); target namespaces are made with `ip netns add`.
#include "linux/link.h"

#include <errno.h>
#include <gtest/gtest.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <thread>
#include <tuple>

#include "linux/netlink.h"
#include "linux/netns.h"
#include "support/process.h"

namespace netcell::kernel {
namespace {

using netcell::testing::in_world;
using netcell::testing::ip_json;
using netcell::testing::link_names;
using netcell::testing::run;

// `ip netns add NAME`: an independent way to make the target namespace.
void add_netns(const std::string& name) {
  auto r = run({"ip", "netns", "add", name});
  ASSERT_EQ(r.exit_code, 0) << r.err;
}

Result<UniqueFd> netns_fd(const std::string& name) {
  return open_netns("/run/netns/" + name);
}

// An rtnetlink socket opened inside the named namespace; it stays bound there (notes §2.5).
Result<NetlinkSocket> socket_in(const std::string& name) {
  Result<UniqueFd> fd = netns_fd(name);
  if (!fd) return fail(std::move(fd).error());
  return open_netlink_in(fd->get());
}

// `ip -j [-n NS] [-d] link show NAME`, or null when there is no such link.
nlohmann::json link_json(const std::string& name, const std::string& ns = "") {
  std::vector<std::string> args;
  if (!ns.empty()) args = {"-n", ns};
  for (const char* arg : {"-d", "link", "show", "dev"}) args.emplace_back(arg);
  args.push_back(name);
  auto links = ip_json(args);
  return links.size() == 1 ? links[0] : nlohmann::json();
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  std::string text = s.str();
  while (!text.empty() && text.back() == '\n') text.pop_back();
  return text;
}

IpPrefix prefix(const char* text) {
  Result<IpPrefix> p = IpPrefix::parse(text);
  EXPECT_TRUE(p) << text;
  return p ? *p : IpPrefix{};
}

IpAddress address(const char* text) {
  Result<IpAddress> a = IpAddress::parse(text);
  EXPECT_TRUE(a) << text;
  return a ? *a : IpAddress{};
}

// Fixture: a host socket in the world and a veth `host` <-> eth0 in namespace `ns`.
class LinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!in_world()) GTEST_FAIL() << "run through tests/support/world.sh";
    Result<NetlinkSocket> socket = NetlinkSocket::open();
    ASSERT_TRUE(socket) << socket.error().to_string();
    host_.emplace(std::move(*socket));
  }

  // Creates ns (with `ip netns add`) and the veth pair, host end `host`, peer eth0 inside.
  void make_veth(const std::string& host, const std::string& ns, std::uint32_t mtu = 0,
                 int host_index = 0, int peer_index = 0) {
    add_netns(ns);
    Result<UniqueFd> fd = netns_fd(ns);
    ASSERT_TRUE(fd) << fd.error().to_string();
    Result<void> made =
        host_->request(rtnl::veth_create(host, "eth0", fd->get(), mtu, host_index, peer_index));
    ASSERT_TRUE(made) << made.error().to_string();
  }

  void request(NlMessage message) {
    Result<void> r = host_->request(std::move(message));
    ASSERT_TRUE(r) << r.error().to_string();
  }

  int index(const std::string& name) {
    Result<int> i = link_index(*host_, name);
    EXPECT_TRUE(i) << i.error().to_string();
    return i ? *i : 0;
  }

  std::optional<NetlinkSocket> host_;
};

TEST_F(LinkTest, VethPeerIsCreatedInsideTheNamespaceWithMtuAndIndexes) {
  if (!in_world()) GTEST_FAIL() << "run through tests/support/world.sh";
  ASSERT_NO_FATAL_FAILURE(make_veth("vh-x", "x", 1400, 500, 77));

  nlohmann::json host = link_json("vh-x");
  ASSERT_TRUE(host.is_object()) << "no vh-x in the world";
  EXPECT_EQ(host.value("ifindex", 0), 500);
  EXPECT_EQ(host.value("mtu", 0), 1400);
  EXPECT_EQ(host["linkinfo"].value("info_kind", ""), "veth");

  nlohmann::json peer = link_json("eth0", "x");
  ASSERT_TRUE(peer.is_object()) << "no eth0 in x";
  EXPECT_EQ(peer.value("ifindex", 0), 77);
  EXPECT_EQ(peer.value("mtu", 0), 1400);

  // The peer exists only inside x; x has just lo and eth0.
  auto world = link_names();
  EXPECT_EQ(std::count(world.begin(), world.end(), "eth0"), 0);
  auto inside = link_names("x");
  std::sort(inside.begin(), inside.end());
  EXPECT_EQ(inside, (std::vector<std::string>{"eth0", "lo"}));

  EXPECT_EQ(index("vh-x"), 500);
  Result<NetlinkSocket> ns = socket_in("x");
  ASSERT_TRUE(ns) << ns.error().to_string();
  Result<int> eth0 = link_index(*ns, "eth0");
  ASSERT_TRUE(eth0) << eth0.error().to_string();
  EXPECT_EQ(*eth0, 77);

  Result<int> missing = link_index(*host_, "nope0");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(missing.error().message(), "no link nope0");
}

TEST_F(LinkTest, KernelPicksIndexesAndDefaultMtu) {
  if (!in_world()) GTEST_FAIL() << "run through tests/support/world.sh";
  ASSERT_NO_FATAL_FAILURE(make_veth("vh-k", "k"));
  EXPECT_GT(index("vh-k"), 1);
  EXPECT_EQ(link_json("vh-k").value("mtu", 0), 1500);
  EXPECT_EQ(link_json("eth0", "k").value("mtu", 0), 1500);
}

TEST_F(LinkTest, DuplicateVethNameIsAlreadyExists) {
  if (!in_world()) GTEST_FAIL() << "run through tests/support/world.sh";
  ASSERT_NO_FATAL_FAILURE(make_veth("vh-d", "d1"));
  add_netns("d2");
  Result<UniqueFd> fd = netns_fd("d2");
  ASSERT_TRUE(fd);
  Result<void> again = host_->request(rtnl::veth_create("vh-d", "eth0", fd->get(), 0));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), ErrorCode::kAlreadyExists) << again.error().to_string();
  EXPECT_EQ(again.error().sys_errno(), EEXIST);
  // Nothing was half-made in d2.
  EXPECT_EQ(link_names("d2"), std::vector<std::string>{"lo"});

  // A bridge with a taken name, too.
  request(rtnl::bridge_create("ncbr-d", 0));
  Result<void> bridge = host_->request(rtnl::bridge_create("ncbr-d", 0));
  ASSERT_FALSE(bridge);
  EXPECT_EQ(bridge.error().code(), ErrorCode::kAlreadyExists);
}

TEST_F(LinkTest, AddressesAndRoutesShowInIproute2) {
  if (!in_world()) GTEST_FAIL() << "run through tests/support/world.sh";
  ASSERT_NO_FATAL_FAILURE(make_veth("vh-a", "a"));
  Result<NetlinkSocket> ns = socket_in("a");
  ASSERT_TRUE(ns) << ns.error().to_string();
  Result<int> eth0 = link_index(*ns, "eth0");
  ASSERT_TRUE(eth0);

  // Host end: a point-to-point address. Namespace end: a plain /30.
  ASSERT_TRUE(
      host_->request(rtnl::addr_add(index("vh-a"), prefix("10.99.1.1/32"), address("10.99.1.2"))));
  ASSERT_TRUE(ns->request(rtnl::addr_add(*eth0, prefix("10.99.0.2/30"))));
  ASSERT_TRUE(ns->request(rtnl::link_set("eth0", true)));
  ASSERT_TRUE(host_->request(rtnl::link_set("vh-a", true)));
  Result<void> def = ns->request(rtnl::route_add(IpPrefix{}, address("10.99.0.1"), *eth0));
  ASSERT_TRUE(def) << def.error().to_string();
  Result<void> conn = ns->request(rtnl::route_add(prefix("192.168.50.0/24"), std::nullopt, *eth0));
  ASSERT_TRUE(conn) << conn.error().to_string();

  auto host_addrs = ip_json({"-4", "addr", "show", "dev", "vh-a"});
  ASSERT_EQ(host_addrs.size(), 1u);
  ASSERT_EQ(host_addrs[0]["addr_info"].size(), 1u) << host_addrs.dump();
  EXPECT_EQ(host_addrs[0]["addr_info"][0].value("local", ""), "10.99.1.1");
  EXPECT_EQ(host_addrs[0]["addr_info"][0].value("address", ""), "10.99.1.2");
  EXPECT_EQ(host_addrs[0]["addr_info"][0].value("prefixlen", 0), 32);

  auto ns_addrs = ip_json({"-n", "a", "-4", "addr", "show", "dev", "eth0"});
  ASSERT_EQ(ns_addrs.size(), 1u);
  ASSERT_EQ(ns_addrs[0]["addr_info"].size(), 1u) << ns_addrs.dump();
  EXPECT_EQ(ns_addrs[0]["addr_info"][0].value("local", ""), "10.99.0.2");
  EXPECT_EQ(ns_addrs[0]["addr_info"][0].value("prefixlen", 0), 30);

  bool saw_default = false;
  bool saw_connected = false;
  auto routes = ip_json({"-n", "a", "route"});
  for (const auto& r : routes) {
    if (r.value("dst", "") == "default") {
      saw_default = true;
      EXPECT_EQ(r.value("gateway", ""), "10.99.0.1");
      EXPECT_EQ(r.value("dev", ""), "eth0");
      EXPECT_EQ(r.value("protocol", ""), "static");
    }
    if (r.value("dst", "") == "192.168.50.0/24") {
      saw_connected = true;
      EXPECT_FALSE(r.contains("gateway"));
      EXPECT_EQ(r.value("dev", ""), "eth0");
      EXPECT_EQ(r.value("scope", ""), "link");
      EXPECT_EQ(r.value("protocol", ""), "static");
    }
  }
  EXPECT_TRUE(saw_default) << routes.dump();
  EXPECT_TRUE(saw_connected) << routes.dump();

  // A second identical route or address is EEXIST (CREATE|EXCL).
  Result<void> dup = ns->request(rtnl::route_add(IpPrefix{}, address("10.99.0.1"), *eth0));
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().code(), ErrorCode::kAlreadyExists);
  Result<void> dup_addr = ns->request(rtnl::addr_add(*eth0, prefix("10.99.0.2/30")));
  ASSERT_FALSE(dup_addr);
  EXPECT_EQ(dup_addr.error().code(), ErrorCode::kAlreadyExists);
}

bool ping_from(const std::string& ns, const std::string& ip) {
  std::vector<std::string> argv;
  if (!ns.empty()) argv = {"ip", "netns", "exec", ns};
  // Up to three echoes, 0.3 s apart: one answer is enough (a link just brought up may lose the
  // first while a loaded machine finishes bringing the peer's carrier up).
  for (const char* arg : {"ping", "-c", "3", "-i", "0.3", "-W", "1"}) argv.emplace_back(arg);
  argv.push_back(ip);
  return run(argv, 5000).exit_code == 0;
}

TEST_F(LinkTest, PingWorksBothWaysOverTheVeth) {
  if (!in_world()) GTEST_FAIL() << "run through tests/support/world.sh";
  ASSERT_NO_FATAL_FAILURE(make_veth("vh-p", "p", 1400));
  Result<NetlinkSocket> ns = socket_in("p");
  ASSERT_TRUE(ns) << ns.error().to_string();
  Result<int> eth0 = link_index(*ns, "eth0");
  ASSERT_TRUE(eth0);

  request(rtnl::addr_add(index("vh-p"), prefix("10.99.0.1/30")));
  request(rtnl::link_set("vh-p", true));
  ASSERT_TRUE(ns->request(rtnl::addr_add(*eth0, prefix("10.99.0.2/30"))));
  ASSERT_TRUE(ns->request(rtnl::link_set("eth0", true)));
  ASSERT_TRUE(ns->request(rtnl::route_add(IpPrefix{}, address("10.99.0.1"), *eth0)));
  // An address outside the /30 is reachable only through the default route.
  request(rtnl::addr_add(1, prefix("198.51.100.1/32")));

  EXPECT_TRUE(ping_from("", "10.99.0.2"));
  EXPECT_TRUE(ping_from("p", "10.99.0.1"));
  EXPECT_TRUE(ping_from("p", "198.51.100.1"));
}

TEST_F(LinkTest, BridgePortsShowMasterAndFlags) {
  if (!in_world()) GTEST_FAIL() << "run through tests/support/world.sh";
  request(rtnl::bridge_create("ncbr0", 1400));
  EXPECT_EQ(link_json("ncbr0").value("mtu", 0), 1400);
  ASSERT_NO_FATAL_FAILURE(make_veth("vb1", "b1"));
  ASSERT_NO_FATAL_FAILURE(make_veth("vb2", "b2"));
  const int bridge = index("ncbr0");
  ASSERT_GT(bridge, 0);
  request(rtnl::link_set_master("vb1", bridge));
  request(rtnl::link_set_master("vb2", bridge));
  request(rtnl::bridge_port_set("vb1", true, true));
  request(rtnl::bridge_port_set("vb2", true, false));
  request(rtnl::bridge_port_set("vb2", false, false));  // and back

  nlohmann::json br = link_json("ncbr0");
  EXPECT_EQ(br["linkinfo"].value("info_kind", ""), "bridge");
  // No multicast snooping: with it, each port that comes up walks every port (link.h).
  EXPECT_EQ(br["linkinfo"]["info_data"].value("mcast_snooping", -1), 0) << br.dump();
  // An MTU given at creation is not "set by user": the bridge follows its ports' minimum.
  EXPECT_EQ(br.value("mtu", 0), 1500);
  request(rtnl::link_set("ncbr0", true, 1400));
  EXPECT_EQ(link_json("ncbr0").value("mtu", 0), 1400);

  nlohmann::json vb1 = link_json("vb1");
  EXPECT_EQ(vb1.value("master", ""), "ncbr0");
  EXPECT_EQ(vb1["linkinfo"].value("info_slave_kind", ""), "bridge");
  const auto& port1 = vb1["linkinfo"]["info_slave_data"];
  EXPECT_EQ(port1.value("hairpin", false), true) << vb1.dump();
  EXPECT_EQ(port1.value("isolated", false), true) << vb1.dump();

  nlohmann::json vb2 = link_json("vb2");
  EXPECT_EQ(vb2.value("master", ""), "ncbr0");
  const auto& port2 = vb2["linkinfo"]["info_slave_data"];
  EXPECT_EQ(port2.value("hairpin", true), false) << vb2.dump();
  EXPECT_EQ(port2.value("isolated", true), false) << vb2.dump();

  // Master 0 releases the port.
  request(rtnl::link_set_master("vb2", 0));
  EXPECT_FALSE(link_json("vb2").contains("master"));

  // Port flags on a link that is no bridge port are refused, not silently dropped.
  Result<void> not_port = host_->request(rtnl::bridge_port_set("vb2", true, false));
  EXPECT_FALSE(not_port);
}

TEST_F(LinkTest, RouteLocalnetReadsBackFromProc) {
  if (!in_world()) GTEST_FAIL() << "run through tests/support/world.sh";
  ASSERT_NO_FATAL_FAILURE(make_veth("vh-l", "l"));
  const std::string proc = "/proc/sys/net/ipv4/conf/vh-l/route_localnet";
  EXPECT_EQ(read_file(proc), "0");
  request(rtnl::set_route_localnet("vh-l", true));
  EXPECT_EQ(read_file(proc), "1");
  Result<std::string> value = read_sysctl("net.ipv4.conf.vh-l.route_localnet");
  ASSERT_TRUE(value) << value.error().to_string();
  EXPECT_EQ(*value, "1");
  request(rtnl::set_route_localnet("vh-l", false));
  EXPECT_EQ(read_file(proc), "0");

  Result<void> missing = host_->request(rtnl::set_route_localnet("nope0", true));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().sys_errno(), ENODEV);
}

// The link-local addresses of `dev` (`ip -j -6 addr show dev DEV`).
std::size_t addr_info_count(const std::string& dev) {
  auto links = ip_json({"-6", "addr", "show", "dev", dev});
  std::size_t n = 0;
  for (const auto& link : links) n += link.value("addr_info", nlohmann::json::array()).size();
  return n;
}

TEST_F(LinkTest, Ipv6AddrGenNoneLeavesNoLinkLocalAddress) {
  if (!in_world()) GTEST_FAIL() << "run through tests/support/world.sh";
  if (::access("/proc/sys/net/ipv6", F_OK) != 0) GTEST_SKIP() << "no IPv6 in this kernel";
  ASSERT_NO_FATAL_FAILURE(make_veth("vh-n", "n"));  // gen mode none
  ASSERT_NO_FATAL_FAILURE(make_veth("vh-c", "c"));  // control: default eui64
  request(rtnl::set_ipv6_addr_gen_none("vh-n"));
  EXPECT_EQ(link_json("vh-n").value("inet6_addr_gen_mode", ""), "none");
  for (const char* ns : {"n", "c"}) {
    ASSERT_EQ(run({"ip", "-n", ns, "link", "set", "eth0", "up"}).exit_code, 0);
  }
  request(rtnl::link_set("vh-n", true));
  request(rtnl::link_set("vh-c", true));

  // The control gets its fe80:: address as soon as the carrier is up; give it up to 3 s.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (addr_info_count("vh-c") == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_GT(addr_info_count("vh-c"), 0u) << "control link never got a link-local address";
  EXPECT_EQ(addr_info_count("vh-n"), 0u) << ip_json({"-6", "addr", "show", "dev", "vh-n"}).dump();
}

TEST_F(LinkTest, LinkDeleteRemovesBothEnds) {
  if (!in_world()) GTEST_FAIL() << "run through tests/support/world.sh";
  ASSERT_NO_FATAL_FAILURE(make_veth("vh-g", "g"));
  request(rtnl::link_delete("vh-g"));
  EXPECT_TRUE(link_json("vh-g").is_null());
  EXPECT_EQ(link_names("g"), std::vector<std::string>{"lo"});
  Result<int> gone = link_index(*host_, "vh-g");
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code(), ErrorCode::kNotFound);

  Result<void> again = host_->request(rtnl::link_delete("vh-g"));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().sys_errno(), ENODEV);
}

// (dst, gateway, oif) in iproute2's spelling: "default", "A.B.C.D" for /32.
using RouteKey = std::tuple<std::string, std::string, int>;

std::string iproute2_dst(const IpPrefix& dst) {
  if (dst.prefix_len == 0) return "default";
  if (dst.prefix_len == 32 && dst.address.is_v4()) return dst.address.to_string();
  return dst.to_string();
}

TEST_F(LinkTest, ListRoutesMatchesIproute2) {
  if (!in_world()) GTEST_FAIL() << "run through tests/support/world.sh";
  ASSERT_NO_FATAL_FAILURE(make_veth("vh-r", "r"));
  request(rtnl::addr_add(index("vh-r"), prefix("10.99.2.1/24")));
  request(rtnl::link_set("vh-r", true));
  ASSERT_EQ(run({"ip", "-n", "r", "link", "set", "eth0", "up"}).exit_code, 0);
  request(rtnl::route_add(IpPrefix{}, address("10.99.2.2"), index("vh-r")));
  request(rtnl::route_add(prefix("172.31.0.0/16"), address("10.99.2.3"), index("vh-r")));
  request(rtnl::route_add(prefix("192.0.2.7/32"), std::nullopt, index("vh-r")));
  // Routes in other tables are not listed.
  ASSERT_EQ(
      run({"ip", "route", "add", "10.77.0.0/16", "via", "10.99.2.4", "table", "100"}).exit_code, 0);

  // Compared in full on vh-r (other tests may have left routes when they share one world), and
  // by count over the whole main table.
  std::map<std::string, int> indexes;
  for (const auto& link : ip_json({"link"})) indexes[link["ifname"]] = link["ifindex"];
  const int vh_r = index("vh-r");
  std::set<RouteKey> expected;
  auto all = ip_json({"-4", "route"});
  for (const auto& r : all) {
    const int oif = indexes[r.value("dev", "")];
    if (oif == vh_r) expected.emplace(r.value("dst", ""), r.value("gateway", ""), oif);
  }
  ASSERT_EQ(expected.size(), 4u) << all.dump();  // the three above and the /24 of the address

  Result<std::vector<RouteRecord>> routes = list_routes(*host_, AF_INET);
  ASSERT_TRUE(routes) << routes.error().to_string();
  std::set<RouteKey> listed;
  for (const auto& r : *routes) {
    EXPECT_EQ(r.table, static_cast<std::uint32_t>(RT_TABLE_MAIN));
    if (r.oif == vh_r) {
      listed.emplace(iproute2_dst(r.dst), r.gateway ? r.gateway->to_string() : "", r.oif);
    }
  }
  EXPECT_EQ(listed, expected);
  EXPECT_EQ(routes->size(), all.size());
}

TEST_F(LinkTest, WriteSysctlChangesOnlyTheCallingThreadsNamespace) {
  if (!in_world()) GTEST_FAIL() << "run through tests/support/world.sh";
  add_netns("s");
  Result<void> written = write_sysctl("net.ipv4.ip_forward", "1");
  ASSERT_TRUE(written) << written.error().to_string();
  EXPECT_EQ(read_file("/proc/sys/net/ipv4/ip_forward"), "1");
  Result<std::string> value = read_sysctl("net.ipv4.ip_forward");
  ASSERT_TRUE(value);
  EXPECT_EQ(*value, "1");
  // The namespace s has its own, still 0; written from a thread inside s it changes there only.
  auto in_s = [] {
    return run({"ip", "netns", "exec", "s", "cat", "/proc/sys/net/ipv4/ip_forward"});
  };
  EXPECT_EQ(in_s().out, "0\n");
  Result<UniqueFd> fd = netns_fd("s");
  ASSERT_TRUE(fd);
  ASSERT_TRUE(run_in_netns(fd->get(), [] { return write_sysctl("net.ipv4.ip_forward", "1"); }));
  EXPECT_EQ(in_s().out, "1\n");
  ASSERT_TRUE(write_sysctl("net.ipv4.ip_forward", "0"));
  EXPECT_EQ(in_s().out, "1\n");

  Result<void> escape = write_sysctl("net.ipv4.../../x", "1");
  ASSERT_FALSE(escape);
  EXPECT_EQ(escape.error().code(), ErrorCode::kInvalidArgument);
  Result<void> missing = write_sysctl("net.ipv4.no_such_setting", "1");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().sys_errno(), ENOENT);
  EXPECT_NE(missing.error().message().find("sysctl net.ipv4.no_such_setting"), std::string::npos);
}

}  // namespace
}  // namespace netcell::kernel
