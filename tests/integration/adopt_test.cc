// Adopting the network namespace of a process that already runs (`netcell create NAME --netns-of
// PID`), end to end through the CLI in a throwaway world. Checked from outside through `ip -j`,
// `nsenter -t PID -n` (the process's own view), the mount table and real traffic.
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include "support/process.h"

namespace netcell {
namespace {

namespace fs = std::filesystem;
using testing::cli;
using testing::ip_json;
using testing::sh;

std::string netns_link(pid_t pid) {
  std::error_code ec;
  return fs::read_symlink("/proc/" + std::to_string(pid) + "/ns/net", ec).string();
}

// A process in a network namespace of its own that nobody has named: `sleep 600` after
// unshare(CLONE_NEWNET), as a container runtime's child would be. Killed (by pid) at the end.
class LoneProcess {
 public:
  LoneProcess() {
    const char* sleep_path =
        ::access("/usr/bin/sleep", X_OK) == 0 ? "/usr/bin/sleep" : "/bin/sleep";
    char* const argv[] = {const_cast<char*>("sleep"), const_cast<char*>("600"), nullptr};
    pid_ = ::fork();
    if (pid_ == 0) {
      if (::unshare(CLONE_NEWNET) != 0) ::_exit(126);
      ::execv(sleep_path, argv);
      ::_exit(127);
    }
    const std::string own = netns_link(::getpid());
    for (int i = 0; i < 250 && pid_ > 0; ++i) {
      std::string theirs = netns_link(pid_);
      if (!theirs.empty() && theirs != own) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    pid_ = -1;  // never got there: the tests fail on pid() <= 0
  }
  ~LoneProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  LoneProcess(const LoneProcess&) = delete;
  LoneProcess& operator=(const LoneProcess&) = delete;

  pid_t pid() const { return pid_; }
  std::string pid_text() const { return std::to_string(pid_); }
  // Running, not a zombie: it is our child, so waitpid tells.
  bool alive() const { return pid_ > 0 && ::waitpid(pid_, nullptr, WNOHANG) == 0; }
  // A command run in the process's network namespace, from outside.
  testing::CommandResult inside(const std::string& command) const {
    return sh("nsenter -t " + pid_text() + " -n " + command);
  }
  nlohmann::json inside_json(const std::string& ip_args) const {
    auto r = inside("ip -j " + ip_args);
    if (r.exit_code != 0 || r.out.empty()) return nlohmann::json::array();
    return nlohmann::json::parse(r.out, nullptr, false);
  }
  std::vector<std::string> links() const {
    std::vector<std::string> out;
    for (const auto& l : inside_json("link")) out.push_back(l.value("ifname", ""));
    return out;
  }

 private:
  pid_t pid_ = -1;
};

bool has_link(const nlohmann::json& links, const std::string& name) {
  for (const auto& l : links) {
    if (l.value("ifname", "") == name) return true;
  }
  return false;
}

// The IPv4 addresses of `name` in an `ip -j addr` listing, as "ADDR/LEN".
std::vector<std::string> v4_of(const nlohmann::json& addrs, const std::string& name) {
  std::vector<std::string> out;
  for (const auto& l : addrs) {
    if (l.value("ifname", "") != name) continue;
    for (const auto& a : l["addr_info"]) {
      if (a.value("family", "") == "inet") {
        out.push_back(a.value("local", "") + "/" + std::to_string(a.value("prefixlen", 0)));
      }
    }
  }
  return out;
}

std::vector<std::string> records() {
  std::vector<std::string> out;
  if (!fs::exists("/run/netcell/namespaces")) return out;
  for (const auto& e : fs::directory_iterator("/run/netcell/namespaces")) {
    out.push_back(e.path().filename());
  }
  return out;
}

// Everything netcell could leave in the world or in the adopted namespace, one line each.
std::string state_of(const LoneProcess& p) {
  const std::string no_operstate = " | sed 's/\"operstate\":\"[A-Z]*\",//g'";
  std::string s;
  s += "world links " + sh("ip -j link show" + no_operstate).out + "\n";
  s += "world addrs " + sh("ip -4 -j addr show" + no_operstate).out + "\n";
  s += "world routes " + sh("ip -4 -j route show table all").out + "\n";
  s += "nft " + sh("nft list ruleset").out + "\n";
  s += "mounts " + sh("grep ' /run/netns' /proc/self/mountinfo | cut -d' ' -f5").out + "\n";
  s += "files " + sh("ls -AR /run/netns /run/netcell/namespaces /etc/netns 2>&1").out + "\n";
  s += "their links " + p.inside("ip -j link show" + no_operstate).out + "\n";
  s += "their addrs " + p.inside("ip -4 -j addr show" + no_operstate).out + "\n";
  s += "their routes " + p.inside("ip -4 -j route show table all").out + "\n";
  return s;
}

class AdoptTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::in_world()) GTEST_FAIL() << "run through tests/support/world.sh";
    ASSERT_GT(process_.pid(), 0) << "could not start a process in a namespace of its own";
  }
  LoneProcess process_;
};

TEST_F(AdoptTest, PrivateModeWiresTheProcesssNamespaceAndDestroyLeavesItRunning) {
  ASSERT_EQ(testing::make_internet(), "");
  testing::TcpResponder internet("wan", "203.0.113.2", 80, "hello from the internet\n");
  ASSERT_TRUE(internet.ready());
  const std::string their_netns = netns_link(process_.pid());

  auto made = cli({"create", "app", "--netns-of", process_.pid_text(), "--mode", "private",
                   "--publish", "8080:80", "--json"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  auto info = nlohmann::json::parse(made.out);
  EXPECT_EQ(info["adopted_from_pid"], process_.pid());
  EXPECT_EQ(info["netns_path"], "/run/netns/app");
  const std::string host_if = info["host_interface"];
  std::string address;
  for (const auto& i : info["interfaces"]) {
    if (i["name"] == "eth0") address = i["addresses"][0];
  }
  ASSERT_FALSE(address.empty()) << made.out;

  // The name is the process's own namespace, not a new one.
  EXPECT_EQ(netns_link(process_.pid()), their_netns);
  EXPECT_EQ(sh("ip netns identify " + process_.pid_text()).out, "app\n");
  EXPECT_EQ(v4_of(ip_json({"-n", "app", "addr"}), "eth0"), std::vector<std::string>{address});
  EXPECT_EQ(v4_of(process_.inside_json("addr"), "eth0"), std::vector<std::string>{address});
  EXPECT_TRUE(has_link(ip_json({"link", "show", host_if}), host_if));

  // Out through NAT: the internet sees the world's address, not the namespace's.
  EXPECT_EQ(process_.inside("ping -c1 -W1 203.0.113.2").exit_code, 0);
  auto fetched = process_.inside("nc -w 2 203.0.113.2 80");
  EXPECT_EQ(fetched.out, "hello from the internet\n") << fetched.err;
  ASSERT_FALSE(internet.peers().empty());
  EXPECT_EQ(internet.peers().back(), "203.0.113.1");

  auto text = cli({"info", "app"});
  EXPECT_NE(text.out.find("adopted from pid " + process_.pid_text()), std::string::npos)
      << text.out;
  EXPECT_EQ(cli({"find-pid", process_.pid_text()}).out, "app\n");

  auto destroyed = cli({"destroy", "app"});
  ASSERT_EQ(destroyed.exit_code, 0) << destroyed.err;
  EXPECT_TRUE(process_.alive());
  EXPECT_EQ(netns_link(process_.pid()), their_netns);
  EXPECT_EQ(process_.links(), std::vector<std::string>{"lo"});
  EXPECT_FALSE(fs::exists("/run/netns/app"));
  EXPECT_EQ(sh("grep -c ' /run/netns/app ' /proc/self/mountinfo").out, "0\n");
  EXPECT_FALSE(has_link(ip_json({"link"}), host_if));
  EXPECT_NE(sh("nft list table ip netcell").exit_code, 0) << "the table outlived its last user";
  EXPECT_TRUE(records().empty());
}

// The global IPv6 addresses of `name` in an `ip -j addr` listing, as "ADDR/LEN".
std::vector<std::string> v6_of(const nlohmann::json& addrs, const std::string& name) {
  std::vector<std::string> out;
  for (const auto& l : addrs) {
    if (l.value("ifname", "") != name) continue;
    for (const auto& a : l["addr_info"]) {
      if (a.value("family", "") == "inet6" && a.value("scope", "") == "global") {
        out.push_back(a.value("local", "") + "/" + std::to_string(a.value("prefixlen", 0)));
      }
    }
  }
  return out;
}

// An adopted namespace is dual-stack like one netcell makes: its IPv6 address and route, NAT66
// to the IPv6 internet, all gone again with destroy. One whose IPv6 is off (a runtime's
// disable_ipv6) is IPv4-only, says why, and its host end has no IPv6 either.
TEST_F(AdoptTest, AnAdoptedNamespaceIsDualStackUnlessItsIpv6IsOff) {
  ASSERT_EQ(testing::make_internet(), "");
  ASSERT_EQ(testing::make_internet6(), "");
  testing::TcpResponder internet("wan", "2001:db8:1::2", 80, "hello over IPv6\n");
  ASSERT_TRUE(internet.ready());
  auto made =
      cli({"create", "app", "--netns-of", process_.pid_text(), "--mode", "private", "--json"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  auto info = nlohmann::json::parse(made.out);
  ASSERT_TRUE(info.contains("gateway6")) << made.out;
  EXPECT_FALSE(info.contains("ipv4_only")) << made.out;
  std::string address6;
  for (const auto& i : info["interfaces"]) {
    if (i["name"] != "eth0") continue;
    for (const auto& a : i["addresses"]) {
      if (a.get<std::string>().find(':') != std::string::npos) address6 = a;
    }
  }
  ASSERT_FALSE(address6.empty()) << made.out;
  EXPECT_EQ(v6_of(process_.inside_json("addr"), "eth0"), std::vector<std::string>{address6});
  auto fetched = process_.inside("nc -6 -w 2 2001:db8:1::2 80");
  EXPECT_EQ(fetched.out, "hello over IPv6\n") << fetched.err;
  ASSERT_EQ(internet.peers().size(), 1U);
  EXPECT_EQ(internet.peers()[0], "2001:db8:1::1") << "NAT66: the host's address";
  ASSERT_EQ(cli({"destroy", "app"}).exit_code, 0);
  EXPECT_EQ(process_.links(), std::vector<std::string>{"lo"});

  ASSERT_EQ(process_.inside("sysctl -qw net.ipv6.conf.all.disable_ipv6=1").exit_code, 0);
  made = cli({"create", "app", "--netns-of", process_.pid_text(), "--mode", "private", "--json"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  info = nlohmann::json::parse(made.out);
  EXPECT_FALSE(info.contains("gateway6")) << made.out;
  EXPECT_EQ(info.value("ipv4_only", ""), "IPv6 is disabled inside the namespace") << made.out;
  const std::string host_if = info["host_interface"];
  auto host6 = ip_json({"-6", "addr", "show", "dev", host_if});
  EXPECT_TRUE(host6.empty() || host6[0]["addr_info"].empty()) << host6.dump();
  EXPECT_TRUE(v6_of(process_.inside_json("addr"), "eth0").empty());
  EXPECT_EQ(process_.inside("ping -c1 -W1 203.0.113.2").exit_code, 0) << "IPv4 still works";
  ASSERT_EQ(cli({"destroy", "app"}).exit_code, 0);
  EXPECT_EQ(process_.links(), std::vector<std::string>{"lo"});
}

TEST_F(AdoptTest, FullModeBringsLoUpAndBridgedModeJoinsTheNetwork) {
  auto full = cli({"create", "quiet", "--netns-of", process_.pid_text()});
  ASSERT_EQ(full.exit_code, 0) << full.err;
  EXPECT_NE(full.out.find("adopted from pid"), std::string::npos) << full.out;
  EXPECT_EQ(process_.links(), std::vector<std::string>{"lo"});
  EXPECT_EQ(process_.inside("ping -c1 -W1 127.0.0.1").exit_code, 0);
  ASSERT_EQ(cli({"destroy", "quiet"}).exit_code, 0);
  EXPECT_TRUE(process_.alive());
  EXPECT_FALSE(fs::exists("/run/netns/quiet"));

  // The same process again, now as a port of a bridged network next to a netcell-made namespace.
  ASSERT_EQ(cli({"network", "create", "lab", "--subnet", "10.50.0.0/24"}).exit_code, 0);
  ASSERT_EQ(cli({"create", "peer", "--network", "lab", "--ip", "10.50.0.10/24"}).exit_code, 0);
  auto bridged = cli({"create", "app", "--network", "lab", "--netns-of", process_.pid_text(),
                      "--ip", "10.50.0.20/24"});
  ASSERT_EQ(bridged.exit_code, 0) << bridged.err;
  EXPECT_EQ(v4_of(process_.inside_json("addr"), "eth0"), std::vector<std::string>{"10.50.0.20/24"});
  EXPECT_EQ(process_.inside("ping -c1 -W1 10.50.0.10").exit_code, 0);
  ASSERT_EQ(cli({"destroy", "app"}).exit_code, 0);
  EXPECT_TRUE(process_.alive());
  EXPECT_EQ(process_.links(), std::vector<std::string>{"lo"});
  EXPECT_EQ(ip_json({"link", "show", "master", "ncbr0"}).size(), 1U) << "only peer's port is left";
  ASSERT_EQ(cli({"destroy", "peer"}).exit_code, 0);
  ASSERT_EQ(cli({"network", "rm", "lab"}).exit_code, 0);
}

TEST_F(AdoptTest, RefusalsAreOneLineAndChangeNothing) {
  ASSERT_EQ(cli({"create", "first", "--netns-of", process_.pid_text()}).exit_code, 0);
  const auto before = records();
  const std::string mounts = sh("grep ' /run/netns' /proc/self/mountinfo").out;
  struct Case {
    std::vector<std::string> args;
    int exit_code;
    std::string expect;
  };
  const std::vector<Case> cases = {
      // The CLI's own namespace is the world's: adopting it would rewire the host's network.
      {{"create", "x", "--netns-of", std::to_string(::getpid()), "--mode", "private"},
       2,
       "host's network"},
      {{"create", "x", "--netns-of", "4194303"}, 2, "no such process"},
      {{"create", "x", "--netns-of", "0"}, 2, "invalid pid"},
      {{"create", "x", "--netns-of", "-4"}, 2, ""},
      {{"create", "x", "--netns-of", process_.pid_text(), "--mode", "shared"}, 2, "shared"},
      // Already named by netcell, under another name.
      {{"create", "x", "--netns-of", process_.pid_text()}, 1, "already manages it as 'first'"},
  };
  for (const auto& c : cases) {
    auto r = cli(c.args);
    std::string shown;
    for (const auto& a : c.args) shown += a + " ";
    EXPECT_EQ(r.exit_code, c.exit_code) << shown << r.err;
    EXPECT_EQ(r.err.rfind("netcell: ", 0), 0U) << shown << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << shown << r.err;
    EXPECT_NE(r.err.find(c.expect), std::string::npos) << shown << r.err;
    EXPECT_EQ(records(), before) << shown;
    EXPECT_EQ(sh("grep ' /run/netns' /proc/self/mountinfo").out, mounts) << shown;
    EXPECT_FALSE(fs::exists("/run/netns/x")) << shown;
  }
  EXPECT_TRUE(has_link(ip_json({"link"}), "lo"));
  EXPECT_EQ(ip_json({"link"}).size(), 1U) << "a refused create left a link in the world";
  ASSERT_EQ(cli({"destroy", "first"}).exit_code, 0);
}

// netcell run from a child network namespace must not adopt the namespace of PID 1, the machine's
// own network. Safe to try here: in a new PID namespace, PID 1 is a sleep of ours in a network
// namespace of its own, and netcell joins only that PID namespace (and its /proc), not the network.
TEST_F(AdoptTest, RefusesTheNamespaceOfPid1) {
  const std::string script =
      "unshare --pid --fork --mount-proc unshare --net sleep 30 & outer=$!; s=; "
      "for i in $(seq 50); do s=$(pgrep -P $outer); "
      "  [ -n \"$s\" ] && [ \"$(readlink /proc/$s/ns/net)\" != \"$(readlink /proc/self/ns/net)\" ]"
      "  && break; sleep 0.1; done; "
      "nsenter -t $s -p -m " NETCELL_CLI_PATH
      " create x --mode private --netns-of 1; "
      "echo \"exit=$?\"; kill -KILL $s; wait $outer";
  auto r = sh(script);
  EXPECT_NE(r.out.find("exit=2"), std::string::npos) << r.out << r.err;
  EXPECT_NE(r.err.find("network namespace of PID 1"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists("/run/netns/x"));
  EXPECT_TRUE(records().empty());
}

// A kill at any step of an adopted create or destroy is rolled back by gc like any other record:
// the world and the process's namespace are as before, and the process still runs.
TEST_F(AdoptTest, GcUndoesAKillAtEveryStep) {
  // One create and destroy first: it leaves lo up in the process's namespace (netcell does not
  // take it down again) and the run and netns dirs made, which are meant to stay.
  ASSERT_EQ(cli({"create", "app", "--netns-of", process_.pid_text()}).exit_code, 0);
  ASSERT_EQ(cli({"destroy", "app"}).exit_code, 0);
  const std::string before = state_of(process_);
  const std::string create = std::string(NETCELL_CLI_PATH) +
                             " create app --mode private --netns-of " + process_.pid_text() +
                             " --publish 8080:80 >/dev/null 2>&1";
  int kills = 0;
  for (int step = 1; step <= 30; ++step) {
    int code = sh("NETCELL_FAULT_AT=" + std::to_string(step) + " " + create).exit_code;
    if (code == 0) {
      ASSERT_EQ(cli({"destroy", "app"}).exit_code, 0);
      break;
    }
    ASSERT_EQ(code, 128 + SIGKILL) << "step " << step;
    ++kills;
    auto gc = cli({"gc"});
    EXPECT_EQ(gc.exit_code, 0) << "step " << step << ": " << gc.err;
    EXPECT_EQ(state_of(process_), before) << "after a kill at create step " << step;
    EXPECT_TRUE(process_.alive());
  }
  EXPECT_GE(kills, 5);
  for (int step = 1; step <= 30; ++step) {
    ASSERT_EQ(sh(create).exit_code, 0) << "step " << step;
    int code = sh("NETCELL_FAULT_AT=" + std::to_string(step) + " " + NETCELL_CLI_PATH +
                  " destroy app >/dev/null 2>&1")
                   .exit_code;
    if (code != 0) {
      ASSERT_EQ(code, 128 + SIGKILL) << "step " << step;
      ++kills;
      // Killed inside the write of its journal (it left that write's temporary file), the
      // destroy had not begun: gc keeps the namespace whole, and a destroy removes it.
      bool in_journal = !sh("find /run/netcell/namespaces -name 'app.json.tmp-*'").out.empty();
      EXPECT_EQ(cli({"gc"}).exit_code, 0) << "step " << step;
      if (cli({"info", "app"}).exit_code == 0) {
        EXPECT_TRUE(in_journal) << "step " << step << ": the namespace outlived gc";
        ASSERT_EQ(cli({"destroy", "app"}).exit_code, 0) << "step " << step;
      }
    }
    EXPECT_EQ(state_of(process_), before) << "after a kill at destroy step " << step;
    EXPECT_TRUE(process_.alive());
    if (code == 0) break;
  }
  std::printf("adopt crash test: %d kills\n", kills);
}

}  // namespace
}  // namespace netcell
