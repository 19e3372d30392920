#include "support/escape_tally.h"

#include <gtest/gtest.h>

#include <cstdio>

namespace netcell::testing {
namespace {

class Summary : public ::testing::Environment {
 public:
  void TearDown() override {
    EscapeCount all;
    std::string by_mode;
    for (const auto& [mode, c] : escape_totals()) {
      all.tried += c.tried;
      all.blocked += c.blocked;
      if (!by_mode.empty()) by_mode += ", ";
      by_mode += mode + ' ' + std::to_string(c.tried);
    }
    if (all.tried > 0) {
      std::printf("escape attempts: tried=%d blocked=%d escaped=%d (%s)\n", all.tried, all.blocked,
                  all.tried - all.blocked, by_mode.c_str());
    }
  }
};
[[maybe_unused]] ::testing::Environment* const kSummary =
    ::testing::AddGlobalTestEnvironment(new Summary);

}  // namespace

std::map<std::string, EscapeCount>& escape_totals() {
  static std::map<std::string, EscapeCount> counts;
  return counts;
}

void report_escape_attempts(const std::string& mode, const EscapeCount& count) {
  if (count.tried + count.controls == 0) return;
  std::printf("escape-attempts %s tried=%d blocked=%d escaped=%d controls=%d\n", mode.c_str(),
              count.tried, count.blocked, count.tried - count.blocked, count.controls);
  ::testing::Test::RecordProperty("escape_attempts_" + mode, count.tried);
  ::testing::Test::RecordProperty("escapes_" + mode, count.tried - count.blocked);
  EscapeCount& total = escape_totals()[mode];
  total.tried += count.tried;
  total.blocked += count.blocked;
  total.controls += count.controls;
}

}  // namespace netcell::testing
