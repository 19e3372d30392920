// Crash safety: the CLI is killed with SIGKILL at every step of a private-mode create with a
// published port and of a destroy (NETCELL_FAULT_AT, see src/core/fault.h), then `netcell gc`
// runs, and the host must be exactly as before: links, addresses, routes, the nftables ruleset,
// ip_forward, mounts and files in the netns dir, files in the run dir and /etc/netns. The steps
// include the inside of every write of a file (between its temporary file and the rename), so
// some kills leave a temporary file, which gc must remove.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "support/host_state.h"
#include "support/process.h"

// Kill rounds of 17 kills each; NETCELL_KILL_ROUNDS overrides (the sanitizer build compiles in 3).
#ifndef NETCELL_DEFAULT_KILL_ROUNDS
#define NETCELL_DEFAULT_KILL_ROUNDS 12
#endif

namespace netcell {
namespace {

namespace fs = std::filesystem;
using testing::cli;
using testing::diff;
using testing::host_state;
using testing::settles_to;
using testing::sh;

int faulted(int step, const std::string& args) {
  return sh("NETCELL_FAULT_AT=" + std::to_string(step) + " " + NETCELL_CLI_PATH + " " + args +
            " >/dev/null 2>&1")
      .exit_code;
}

// The temporary files of interrupted writes in the run dir (files.h names them), seen by find.
std::string temp_files() {
  return sh("find /run/netcell -name '*.tmp-*' -o -name '*.new-*' -o -name '*.tmp'").out;
}

// After a kill: gc succeeds, removes any temporary file the kill left (counted in
// `left_temp_files`), and the host settles back to `baseline`. A create is always rolled back; a
// destroy killed before its journal was written (inside that write) has not begun, so the
// namespace must still be there, whole, and a destroy then removes it.
void gc_restores(const std::string& baseline, const std::string& where, bool destroying,
                 int& left_temp_files) {
  const bool left = !temp_files().empty();
  auto gc = cli({"gc"});
  ASSERT_EQ(gc.exit_code, 0) << where << ": " << gc.err;
  ASSERT_EQ(temp_files(), "") << where;
  if (left) {
    ++left_temp_files;
    EXPECT_NE(gc.out.find("(temporary file of an interrupted write)"), std::string::npos)
        << where << ": " << gc.out;
  }
  if (cli({"info", "web"}).exit_code == 0) {
    ASSERT_TRUE(destroying && left) << where << ": the namespace outlived gc";
    ASSERT_EQ(sh("ip netns exec web ping -c 1 -W 1 10.209.0.1 >/dev/null").exit_code, 0) << where;
    ASSERT_EQ(cli({"destroy", "web"}).exit_code, 0) << where;
  }
  std::string last;
  ASSERT_TRUE(settles_to(baseline, last)) << "after a kill at " << where << "\n"
                                          << diff(baseline, last);
}

TEST(CrashTest, KillsAtEveryStepAreUndoneByGc) {
  if (!testing::in_world()) GTEST_FAIL() << "run through tests/support/world.sh";
  ASSERT_EQ(testing::make_internet(), "");
  ASSERT_EQ(cli({"list"}).exit_code, 0);  // the run dir and its lock exist from here on
  // The published port covers [::1], which the host service relays: the service runs while the
  // namespace exists, and its log outlives it by design (netcell-service(8)).
  ASSERT_EQ(sh("touch /run/netcell/service.log").exit_code, 0);
  const std::string baseline = host_state();
  const char* rounds_env = std::getenv("NETCELL_KILL_ROUNDS");
  const int rounds = rounds_env ? std::atoi(rounds_env) : NETCELL_DEFAULT_KILL_ROUNDS;
  const std::string create = "create web --mode private --publish 8080:80";
  int kills = 0, create_steps = 0, destroy_steps = 0, left_temp_files = 0;
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
      gc_restores(baseline, "create step " + std::to_string(step), false, left_temp_files);
      if (::testing::Test::HasFatalFailure()) return;
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
      gc_restores(baseline, "destroy step " + std::to_string(step), true, left_temp_files);
      if (::testing::Test::HasFatalFailure()) return;
      ASSERT_LT(step, 50);
    }
  }
  std::printf(
      "killed %d times (create has %d steps, destroy %d), %d inside a write; host restored every "
      "time\n",
      kills, create_steps, destroy_steps, left_temp_files);
  EXPECT_GE(create_steps, 11);
  EXPECT_GE(destroy_steps, 6);
  // Each round kills inside the writes of the create's records and address hint and of the
  // destroy's journal at least.
  EXPECT_GE(left_temp_files, 5 * rounds);
  if (rounds >= 12) {
    EXPECT_GE(kills, 200);
  }
}

}  // namespace
}  // namespace netcell
