// What destroy leaves behind, and what it may never touch. Processes left inside a destroyed
// namespace (a daemon the workload forked, a shell someone entered with `ip netns exec`), a
// failed create next to live namespaces, a second netcell instance (another run dir) on the same
// host, host links with netcell's naming that belong to no namespace. Each test in its own world;
// results read back with `ip -j`, `nft -j`, /proc and real traffic.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "support/host_state.h"
#include "support/process.h"

namespace netcell {
namespace {

using testing::cli;
using testing::sh;
using testing::TcpResponder;
using Strings = std::vector<std::string>;

constexpr char kProbe[] = NETCELL_ESCAPE_PROBE_PATH;  // run inside a namespace by `run`
constexpr char kWan[] = "203.0.113.2";

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// A process that stays in namespace `ns` (as `ip netns exec NS sleep` does) in a session of its
// own; its pid. The test ends it by that pid.
pid_t leave_process_in(const std::string& ns) {
  auto r = sh("ip netns exec " + ns + " setsid sleep 120 </dev/null >/dev/null 2>&1 & echo $!");
  return static_cast<pid_t>(std::atol(r.out.c_str()));
}

// Whether `pid` is a running (not zombie) process.
bool running(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z';
}

// The number of links named ncp* in the world, once it is 0 or after `ms` (the kernel frees an
// unreferenced namespace's veth in the background, ~40 ms after the unmount).
int ncp_links_after(int ms) {
  int count = 0;
  for (int i = 0; i <= ms / 20; ++i) {
    count = std::atoi(sh("ip -j link show | grep -o '\"ifname\":\"ncp' | wc -l").out.c_str());
    if (count == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return count;
}

bool ends_within(pid_t pid, int ms) {
  for (int i = 0; i < ms / 20 && running(pid); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return !running(pid);
}

void end_process(pid_t pid) {
  if (pid > 0) ::kill(pid, SIGKILL);
}

// The links the process `pid` sees in its network namespace (`nsenter -t PID -n ip -j link`).
Strings links_seen_by(pid_t pid) {
  Strings out;
  auto j = nlohmann::json::parse(
      sh("nsenter -t " + std::to_string(pid) + " -n ip -j link show").out, nullptr, false);
  if (!j.is_array()) return {"(unreadable)"};
  for (const auto& link : j) out.push_back(link.value("ifname", ""));
  return out;
}

// "open|closed|silent|error" for a TCP connect from `where` (see testing::probe).
std::string tcp_from(const std::string& where, const std::string& target) {
  auto got = testing::tcp_probe(where, {target});
  return got.count(target) ? got[target] : "none";
}

std::string info_field(const std::string& ns, const std::string& field,
                       const Strings& global = {}) {
  Strings args = global;
  args.insert(args.end(), {"info", ns, "--json"});
  auto j = nlohmann::json::parse(cli(args).out, nullptr, false);
  return j.is_object() ? j.value(field, "") : "";
}

// What of the world's network mentions `needle`: links, addresses, routes, the ruleset.
std::string mentions(const std::string& needle) {
  std::string out;
  for (const auto& view : {"ip -j link show", "ip -j addr show", "ip -j route show table all",
                           "nft -j list ruleset"}) {
    std::string text = sh(view).out;
    if (text.find(needle) != std::string::npos) out += std::string(view) + "; ";
  }
  return out;
}

class LeftoverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::in_world()) GTEST_FAIL() << "run through tests/support/world.sh";
    ASSERT_EQ(testing::make_internet(), "");
  }
  void TearDown() override {
    for (pid_t pid : started_) end_process(pid);
  }
  pid_t leave(const std::string& ns) {
    pid_t pid = leave_process_in(ns);
    started_.push_back(pid);
    return pid;
  }

  // A process stays inside p1 while it is destroyed: when destroy returns, the world's network
  // is exactly what it was before p1 (another namespace keeps the firewall table in place), the
  // process is still running with only loopback, and 100 private creates in a row succeed.
  void destroy_with_process_inside() {
    // keep holds the firewall table and the published-ports directory in place.
    ASSERT_EQ(cli({"create", "keep", "--mode", "private", "--publish", "9100:80"}).exit_code, 0);
    const std::string before = testing::host_state();
    ASSERT_EQ(cli({"create", "p1", "--mode", "private", "--publish", "9000:80"}).exit_code, 0);
    const std::string host_if = info_field("p1", "host_interface");
    const std::string gateway = info_field("p1", "gateway");
    ASSERT_FALSE(host_if.empty());
    pid_t pid = leave("p1");
    ASSERT_TRUE(running(pid));
    // Positive control: from inside, before destroy, the internet answers.
    TcpResponder wan("wan", kWan, 8080, "wan\n");
    ASSERT_TRUE(wan.ready());
    EXPECT_EQ(tcp_from("pid:" + std::to_string(pid), std::string(kWan) + ":8080"), "open");

    auto destroyed = cli({"destroy", "p1"});
    ASSERT_EQ(destroyed.exit_code, 0) << destroyed.err;
    // No settling: all of it is gone when destroy returns.
    const std::string after = testing::host_state();
    EXPECT_EQ(before, after) << testing::diff(before, after);
    EXPECT_EQ(mentions('"' + host_if + '"'), "");
    EXPECT_EQ(mentions(gateway + "\""), "");
    EXPECT_EQ(mentions("9000"), "");
    EXPECT_TRUE(running(pid)) << "destroy without --kill leaves processes running";
    EXPECT_EQ(links_seen_by(pid), Strings{"lo"});
    EXPECT_NE(tcp_from("pid:" + std::to_string(pid), std::string(kWan) + ":8080"), "open");

    int failed = 0;
    std::string first_error;
    for (int i = 0; i < 100; ++i) {
      auto r = cli({"create", 'c' + std::to_string(i), "--mode", "private"});
      if (r.exit_code != 0 && failed++ == 0) first_error = r.err;
    }
    EXPECT_EQ(failed, 0) << first_error;
    EXPECT_TRUE(running(pid));
    Strings all{"destroy"};
    for (int i = 0; i < 100; ++i) all.push_back('c' + std::to_string(i));
    EXPECT_EQ(cli(all).exit_code, 0);
  }

  std::vector<pid_t> started_;
};

TEST_F(LeftoverTest, DestroyCutsTheNetworkOfAProcessLeftInside) {
  destroy_with_process_inside();
}

// Kernels before 6.18 have no nsfs file handles: destroy then finds what holds the namespace by
// looking for processes and threads inside.
TEST_F(LeftoverTest, DestroyCutsTheNetworkOfAProcessLeftInsideWithoutNetnsHandles) {
  ::setenv("NETCELL_NETNS_HANDLES", "off", 1);
  destroy_with_process_inside();
  ::unsetenv("NETCELL_NETNS_HANDLES");
}

// A socket made inside keeps the namespace alive after its process left for another namespace:
// no process is inside any more, yet the namespace lives on. Its links must still go.
TEST_F(LeftoverTest, DestroyCutsANamespaceHeldOnlyByASocket) {
  ASSERT_EQ(cli({"create", "keep", "--mode", "private"}).exit_code, 0);
  ASSERT_EQ(cli({"create", "p1", "--mode", "private"}).exit_code, 0);
  const std::string host_if = info_field("p1", "host_interface");
  // python3 opens a UDP socket inside p1, then moves itself to a fresh namespace of its own
  // (unshare) and sleeps holding the socket.
  auto r =
      sh("ip netns exec p1 python3 -c '"
         "import ctypes,os,socket,time\n"
         "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
         "assert ctypes.CDLL(None,use_errno=True).unshare(0x40000000)==0\n"
         "print(os.getpid(),flush=True)\n"
         "time.sleep(120)' </dev/null 2>&1 & sleep 1; true",
         5000);
  pid_t pid = static_cast<pid_t>(std::atol(trimmed(r.out).c_str()));
  ASSERT_GT(pid, 0) << r.out;
  started_.push_back(pid);
  ASSERT_EQ(cli({"destroy", "p1"}).exit_code, 0);
  EXPECT_EQ(mentions('"' + host_if + '"'), "") << "the host end of p1 outlived destroy";
}

TEST_F(LeftoverTest, DestroyKillEndsEveryProcessInside) {
  ASSERT_EQ(cli({"create", "p1", "--mode", "private"}).exit_code, 0);
  pid_t a = leave("p1");
  pid_t b = leave("p1");
  ASSERT_TRUE(running(a) && running(b));
  pid_t outside = static_cast<pid_t>(std::atol(sh("setsid sleep 120 </dev/null >/dev/null 2>&1 "
                                                  "& echo $!")
                                                   .out.c_str()));
  started_.push_back(outside);
  auto r = cli({"destroy", "--kill", "p1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(ends_within(a, 2000));
  EXPECT_TRUE(ends_within(b, 2000));
  EXPECT_TRUE(running(outside)) << "a process outside the namespace was ended";
  EXPECT_EQ(ncp_links_after(2000), 0);
}

// `run` of a command that daemonizes: the daemon had the network while the command ran, and when
// run returns it is gone and so is everything of the namespace.
TEST_F(LeftoverTest, RunLeavesNoDaemonBehind) {
  TcpResponder wan("wan", kWan, 8080, "wan\n");
  ASSERT_TRUE(wan.ready());
  std::string script = "setsid sleep 120 </dev/null >/dev/null 2>&1 & echo $!; " +
                       std::string(kProbe) + " tcp 500 " + kWan + ":8080";
  auto r = cli({"run", "--mode", "private", "--", "sh", "-c", script});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  pid_t daemon = static_cast<pid_t>(std::atol(r.out.c_str()));
  ASSERT_GT(daemon, 0);
  started_.push_back(daemon);
  EXPECT_NE(r.out.find(std::string(kWan) + ":8080 open"), std::string::npos) << r.out;
  EXPECT_FALSE(running(daemon)) << "the daemon the command forked outlived run";
  EXPECT_EQ(ncp_links_after(2000), 0);
}

// Defence in depth: a link with a private namespace's host-side name that is no namespace's (here
// one the test makes itself) gets nothing through; the same link under another name does.
TEST_F(LeftoverTest, TrafficFromAStrayHostSideLinkIsDropped) {
  ASSERT_EQ(cli({"create", "keep", "--mode", "private"}).exit_code, 0);  // the table exists
  // 198.51.100.HOST/30 on the world's end, HOST+1 inside.
  auto make = [](const std::string& ns, const std::string& ifname, int host) {
    const std::string h = "198.51.100." + std::to_string(host);
    const std::string n = "198.51.100." + std::to_string(host + 1);
    return sh("ip netns add " + ns + " && ip link add " + ifname +
              " type veth peer name eth0 netns " + ns + " && ip addr add " + h + "/30 dev " +
              ifname + " && ip link set " + ifname + " up && ip -n " + ns + " addr add " + n +
              "/30 dev eth0 && ip -n " + ns + " link set eth0 up && ip -n " + ns +
              " route add default via " + h)
        .exit_code;
  };
  ASSERT_EQ(make("stray", "ncp77", 1), 0);
  ASSERT_EQ(make("plain", "tst77", 5), 0);
  TcpResponder host("", "0.0.0.0", 8080, "host\n");
  TcpResponder wan("wan", kWan, 8081, "wan\n");
  ASSERT_TRUE(host.ready() && wan.ready());
  // The wan namespace routes its replies back through the world.
  ASSERT_EQ(sh("ip -n wan route add 198.51.100.0/24 via 203.0.113.1").exit_code, 0);
  EXPECT_EQ(tcp_from("plain", "198.51.100.5:8080"), "open") << "positive control";
  EXPECT_EQ(tcp_from("plain", std::string(kWan) + ":8081"), "open") << "positive control";
  EXPECT_NE(tcp_from("stray", "198.51.100.1:8080"), "open");
  EXPECT_NE(tcp_from("stray", std::string(kWan) + ":8081"), "open");
}

// The same for a bridged network: a port named like a bridged namespace's host end that belongs
// to no namespace reaches nobody on the bridge; under another name it does.
TEST_F(LeftoverTest, TrafficFromAStrayBridgePortIsDropped) {
  ASSERT_EQ(cli({"network", "create", "lan", "--subnet", "10.50.0.0/24"}).exit_code, 0);
  ASSERT_EQ(cli({"create", "n1", "--network", "lan"}).exit_code, 0);
  const std::string bridge = "ncbr0";
  auto port = [&](const std::string& ns, const std::string& ifname, const std::string& address) {
    return sh("ip netns add " + ns + " && ip link add " + ifname +
              " type veth peer name eth0 netns " + ns + " && ip link set " + ifname + " master " +
              bridge + " up && ip -n " + ns + " addr add " + address + "/24 dev eth0 && ip -n " +
              ns + " link set eth0 up")
        .exit_code;
  };
  ASSERT_EQ(port("stray", "nc0p77", "10.50.0.77"), 0);
  ASSERT_EQ(port("plain", "tst77", "10.50.0.78"), 0);
  TcpResponder n1("n1", "0.0.0.0", 8080, "n1\n");
  ASSERT_TRUE(n1.ready());
  auto j = nlohmann::json::parse(cli({"info", "n1", "--json"}).out);
  std::string n1_address;
  for (const auto& iface : j["interfaces"]) {
    if (iface["name"] == "eth0") n1_address = iface["addresses"][0];
  }
  n1_address = n1_address.substr(0, n1_address.find('/'));
  ASSERT_FALSE(n1_address.empty());
  EXPECT_EQ(tcp_from("plain", n1_address + ":8080"), "open") << "positive control";
  EXPECT_NE(tcp_from("stray", n1_address + ":8080"), "open");
}

// A host link left with the name of an address block (here a dummy the test makes) is skipped by
// a dynamic create and waited for by a static one; a create never fails because of it.
TEST_F(LeftoverTest, ABlockWhoseHostLinkStillExistsIsNotHandedOut) {
  ASSERT_EQ(sh("ip link add ncp0 type veth peer name tst0").exit_code, 0);
  auto r = cli({"create", "p1", "--mode", "private"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(info_field("p1", "host_interface"), "ncp1");
  // Static, on block 0: refused with a clear error while ncp0 stays, leaving nothing.
  auto refused = cli({"create", "p2", "--mode", "private", "--ip", "10.209.0.2/30"});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.err.find("ncp0"), std::string::npos) << refused.err;
  EXPECT_EQ(std::count(refused.err.begin(), refused.err.end(), '\n'), 1) << refused.err;
  EXPECT_FALSE(std::filesystem::exists("/run/netns/p2"));
  // ...and made once it goes.
  sh("(sleep 0.5; ip link del ncp0) >/dev/null 2>&1 &");
  auto made = cli({"create", "p2", "--mode", "private", "--ip", "10.209.0.2/30"});
  EXPECT_EQ(made.exit_code, 0) << made.err;
  EXPECT_EQ(info_field("p2", "host_interface"), "ncp0");
}

// A create that fails midway (here at its resolv.conf, after its veth and firewall elements were
// made) leaves every other namespace exactly as it was, and nothing of itself.
TEST_F(LeftoverTest, AFailedCreateLeavesOtherNamespacesAlone) {
  ASSERT_EQ(cli({"create", "p1", "--mode", "private", "--publish", "9001:80"}).exit_code, 0);
  TcpResponder inside("p1", "0.0.0.0", 80, "p1\n");
  TcpResponder wan("wan", kWan, 8080, "wan\n");
  ASSERT_TRUE(inside.ready() && wan.ready());
  ASSERT_EQ(sh("touch /etc/netns/p2").exit_code, 0);  // a file where p2's directory would go
  const std::string before = testing::host_state();
  auto r = cli({"create", "p2", "--mode", "private", "--publish", "9002:80"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("resolv.conf"), std::string::npos) << r.err;
  std::string after;
  EXPECT_TRUE(testing::settles_to(before, after)) << testing::diff(before, after);
  EXPECT_EQ(tcp_from("p1", std::string(kWan) + ":8080"), "open");
  EXPECT_EQ(tcp_from("", "127.0.0.1:9001"), "open");
}

// A table an earlier netcell made (layout v1: the owner tag alone, unsharded policy sets) for a
// namespace that still exists (old, its table swapped for a v1 one holding its link): a create
// that needs the firewall refuses with one line and changes nothing, a full namespace, which
// needs none, still works; destroying old takes the old table with it, and the next create makes
// the current one.
TEST_F(LeftoverTest, ATableOfAnEarlierLayoutIsNeverWrittenInto) {
  ASSERT_EQ(cli({"create", "old", "--mode", "private"}).exit_code, 0);
  const std::string old_if = info_field("old", "host_interface");
  ASSERT_FALSE(old_if.empty());
  ASSERT_EQ(sh("nft 'delete table ip netcell; add table ip netcell { comment "
               "\"netcell:/run/netcell\"; }; add set ip netcell ns_ifs { type ifname; }; "
               "add set ip netcell pol_allow_tp { type ipv4_addr . ipv4_addr . inet_proto . "
               "inet_service; flags interval; }; add element ip netcell ns_ifs { \"" +
               old_if + "\" }'")
                .exit_code,
            0);
  const std::string before = testing::host_state();
  for (const Strings& args : {Strings{"create", "p1", "--mode", "private"},
                              Strings{"create", "p2", "--mode", "private", "--egress", "deny",
                                      "--allow", "203.0.113.2:80/tcp"}}) {
    auto r = cli(args);
    EXPECT_EQ(r.exit_code, 1) << args[1];
    EXPECT_NE(r.err.find("table layout v1, this one uses v7"), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  std::string after;
  EXPECT_TRUE(testing::settles_to(before, after)) << testing::diff(before, after);
  // Positive controls: what needs no firewall works, and everything does once the old table's
  // last namespace is gone.
  auto full = cli({"create", "f1", "--mode", "full"});
  EXPECT_EQ(full.exit_code, 0) << full.err;
  auto destroyed = cli({"destroy", "old"});
  EXPECT_EQ(destroyed.exit_code, 0) << destroyed.err;
  auto made = cli(
      {"create", "p1", "--mode", "private", "--egress", "deny", "--allow", "203.0.113.2:80/tcp"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  const std::string table = sh("nft list table ip netcell").out;
  EXPECT_NE(table.find("comment \"netcell:/run/netcell v7\""), std::string::npos) << table;
  EXPECT_EQ(table.find("set pol_allow_tp {"), std::string::npos) << "the old set went with it";
  EXPECT_NE(table.find("203.0.113.2 . tcp . 80"), std::string::npos);
  EXPECT_EQ(cli({"destroy", "p1", "f1"}).exit_code, 0);
}

// A table of an earlier layout that nothing uses any more (no link, no network in it): the first
// create replaces it, in one transaction, and works.
TEST_F(LeftoverTest, AnUnusedTableOfAnEarlierLayoutIsReplaced) {
  ASSERT_EQ(sh("nft 'add table ip netcell { comment \"netcell:/run/netcell\"; }; "
               "add set ip netcell ns_ifs { type ifname; }; add set ip netcell pol_allow_tp { "
               "type ipv4_addr . ipv4_addr . inet_proto . inet_service; flags interval; }'")
                .exit_code,
            0);
  auto made = cli(
      {"create", "p1", "--mode", "private", "--egress", "deny", "--allow", "203.0.113.2:80/tcp"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  const std::string table = sh("nft list table ip netcell").out;
  EXPECT_NE(table.find("comment \"netcell:/run/netcell v7\""), std::string::npos) << table;
  EXPECT_EQ(table.find("set pol_allow_tp {"), std::string::npos);
  TcpResponder wan("wan", kWan, 80, "wan\n");
  ASSERT_TRUE(wan.ready());
  EXPECT_EQ(tcp_from("p1", std::string(kWan) + ":80"), "open");
  EXPECT_EQ(cli({"destroy", "p1"}).exit_code, 0);
}

// Two run dirs on one host: the second instance sees the first through the firewall table's owner
// tag and refuses with one line, changing nothing; what does not touch the shared host network
// (full namespaces) it may still do; once the first is done, the second may take over.
TEST_F(LeftoverTest, ASecondRunDirRefusesAndNeverHarmsTheFirst) {
  const Strings a{"--run-dir", "/run/nca"};
  const Strings b{"--run-dir", "/run/ncb"};
  auto with = [](Strings global, const Strings& args) {
    global.insert(global.end(), args.begin(), args.end());
    return cli(global);
  };
  ASSERT_EQ(with(a, {"create", "p1", "--mode", "private", "--publish", "9001:80"}).exit_code, 0);
  ASSERT_EQ(with(a, {"network", "create", "lan", "--subnet", "10.50.0.0/24"}).exit_code, 0);
  TcpResponder inside("p1", "0.0.0.0", 80, "p1\n");
  TcpResponder wan("wan", kWan, 8080, "wan\n");
  ASSERT_TRUE(inside.ready() && wan.ready());
  const std::string before = testing::host_state();

  for (const auto& args :
       std::vector<Strings>{{"create", "p2", "--mode", "private"},
                            {"create", "p1", "--mode", "private"},
                            {"network", "create", "lan", "--subnet", "10.60.0.0/24"}}) {
    auto r = with(b, args);
    EXPECT_EQ(r.exit_code, 1) << args[0] << " " << args[1] << ": " << r.err;
    EXPECT_NE(r.err.find("/run/nca"), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  EXPECT_EQ(with(b, {"gc"}).exit_code, 0);
  ASSERT_EQ(with(b, {"create", "f1", "--mode", "full"}).exit_code, 0);
  ASSERT_EQ(with(b, {"destroy", "f1"}).exit_code, 0);
  std::string after;
  EXPECT_TRUE(testing::settles_to(before, after)) << testing::diff(before, after);
  EXPECT_EQ(tcp_from("p1", std::string(kWan) + ":8080"), "open");
  EXPECT_EQ(tcp_from("", "127.0.0.1:9001"), "open");

  ASSERT_EQ(with(a, {"destroy", "p1"}).exit_code, 0);
  ASSERT_EQ(with(a, {"network", "rm", "lan"}).exit_code, 0);
  auto taken = with(b, {"create", "p2", "--mode", "private"});
  EXPECT_EQ(taken.exit_code, 0) << taken.err;
  EXPECT_NE(sh("nft list table ip netcell").out.find("comment \"netcell:/run/ncb v7\""),
            std::string::npos);
}

}  // namespace
}  // namespace netcell
