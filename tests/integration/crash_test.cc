// Crash safety: the CLI is killed with SIGKILL at every step of a private-mode create with a
// published port and of a destroy (NETCELL_FAULT_AT, see src/core/fault.h), then `netcell gc`
// runs, and the host must be exactly as before: links, addresses, routes, the nftables ruleset,
// ip_forward, mounts and files in the netns dir, files in the run dir and /etc/netns.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "support/process.h"

namespace netcell {
namespace {

namespace fs = std::filesystem;
using testing::cli;
using testing::sh;

std::string files_under(const std::string& dir) {
  std::string out;
  if (!fs::exists(dir)) return out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) out += e.path().string() + "\n";
  return out;
}

// Everything a crashed operation could leave behind, as the kernel and file system show it.
std::string host_state() {
  std::ostringstream s;
  s << "links " << sh("ip -j link show | sed 's/\"operstate\":\"[A-Z]*\",//g'").out;
  // IPv4 only: the world's own IPv6 link-local address finishes DAD on its own schedule, and
  // netcell configures no IPv6.
  s << "addrs " << sh("ip -4 -j addr show | sed 's/\"operstate\":\"[A-Z]*\",//g'").out;
  s << "routes " << sh("ip -4 -j route show table all").out;
  s << "nft " << sh("nft list ruleset").out;
  s << "ip_forward " << sh("cat /proc/sys/net/ipv4/ip_forward").out;
  s << "mounts " << sh("grep ' /run/netns' /proc/self/mountinfo | cut -d' ' -f5").out;
  s << "netns " << files_under("/run/netns");
  s << "run " << files_under("/run/netcell");
  s << "etc " << files_under("/etc/netns");
  return s.str();
}

// The state settles asynchronously (the kernel reaps a veth after its netns is unmounted).
bool settles_to(const std::string& expected, std::string& last) {
  for (int i = 0; i < 60; ++i) {
    last = host_state();
    if (last == expected) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

// The lines of `a` and `b` that differ, for a readable failure.
std::string diff(const std::string& a, const std::string& b) {
  std::istringstream x(a), y(b);
  std::string l1, l2, out;
  while (true) {
    bool g1 = static_cast<bool>(std::getline(x, l1)), g2 = static_cast<bool>(std::getline(y, l2));
    if (!g1 && !g2) break;
    if (!g1) l1.clear();
    if (!g2) l2.clear();
    if (l1 != l2) out += "- " + l1.substr(0, 400) + "\n+ " + l2.substr(0, 400) + "\n";
  }
  return out;
}

int faulted(int step, const std::string& args) {
  return sh("NETCELL_FAULT_AT=" + std::to_string(step) + " " + NETCELL_CLI_PATH + " " + args +
            " >/dev/null 2>&1")
      .exit_code;
}

TEST(CrashTest, KillsAtEveryStepAreUndoneByGc) {
  if (!testing::in_world()) GTEST_FAIL() << "run through tests/support/world.sh";
  ASSERT_EQ(testing::make_internet(), "");
  ASSERT_EQ(cli({"list"}).exit_code, 0);  // the run dir and its lock exist from here on
  const std::string baseline = host_state();
  const char* rounds_env = std::getenv("NETCELL_KILL_ROUNDS");
  const int rounds = rounds_env ? std::atoi(rounds_env) : 19;  // 11 kills a round
  const std::string create = "create web --mode private --publish 8080:80";
  int kills = 0, create_steps = 0, destroy_steps = 0;
  std::string last;
  for (int round = 0; round < rounds; ++round) {
    for (int step = 1;; ++step) {
      int code = faulted(step, create);
      if (code == 0) {  // past the last step: the create completed
        create_steps = step - 1;
        ASSERT_EQ(cli({"destroy", "web"}).exit_code, 0);
        ASSERT_TRUE(settles_to(baseline, last)) << last;
        break;
      }
      ASSERT_EQ(code, 128 + 9) << "create step " << step;
      ++kills;
      auto gc = cli({"gc"});
      ASSERT_EQ(gc.exit_code, 0) << "create step " << step << ": " << gc.err;
      ASSERT_TRUE(settles_to(baseline, last)) << "after a kill at create step " << step << "\n"
                                              << diff(baseline, last);
      ASSERT_LT(step, 50);
    }
    for (int step = 1;; ++step) {
      ASSERT_EQ(cli({"create", "web", "--mode", "private", "--publish", "8080:80"}).exit_code, 0);
      int code = faulted(step, "destroy web");
      if (code == 0) {
        destroy_steps = step - 1;
        ASSERT_TRUE(settles_to(baseline, last)) << last;
        break;
      }
      ASSERT_EQ(code, 128 + 9) << "destroy step " << step;
      ++kills;
      auto gc = cli({"gc"});
      ASSERT_EQ(gc.exit_code, 0) << "destroy step " << step << ": " << gc.err;
      ASSERT_TRUE(settles_to(baseline, last)) << "after a kill at destroy step " << step << "\n"
                                              << diff(baseline, last);
      ASSERT_LT(step, 50);
    }
  }
  std::printf("killed %d times (create has %d steps, destroy %d), host restored every time\n",
              kills, create_steps, destroy_steps);
  EXPECT_GE(create_steps, 7);
  EXPECT_GE(destroy_steps, 3);
  if (rounds >= 19) {
    EXPECT_GE(kills, 200);
  }
}

}  // namespace
}  // namespace netcell
