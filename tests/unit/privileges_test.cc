// has_capability against the kernel's own text view of the same set (/proc/self/status CapEff).
#include <gtest/gtest.h>
#include <linux/capability.h>

#include <cstdint>
#include <fstream>
#include <string>

#include "netcell/host.h"

namespace netcell {
namespace {

std::uint64_t cap_eff_from_proc() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("CapEff:", 0) == 0) return std::stoull(line.substr(7), nullptr, 16);
  }
  ADD_FAILURE() << "no CapEff line in /proc/self/status";
  return 0;
}

TEST(Privileges, EveryCapabilityMatchesProcStatus) {
  const std::uint64_t eff = cap_eff_from_proc();
  for (int cap = 0; cap <= CAP_LAST_CAP; ++cap) {
    EXPECT_EQ(has_capability(cap), ((eff >> cap) & 1U) != 0) << "capability " << cap;
  }
  EXPECT_FALSE(has_capability(-1));
  EXPECT_FALSE(has_capability(64));
}

}  // namespace
}  // namespace netcell
