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

#include "support/host_state.h"
#include "support/process.h"

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
