// netcell tests: the CLI on the simulation backend over a scratch run dir (no privileges, no OS
// changes), for tests of the command line's behaviour.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "support/process.h"

namespace netcell::testing {

class SimCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/netcell-cli-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // netcell --backend simulation --run-dir DIR ARGS...
  CommandResult sim(std::vector<std::string> args) {
    args.insert(args.begin(), {"--backend", "simulation", "--run-dir", dir_});
    return cli(args);
  }
  // The file names of the namespace records in the run dir, sorted.
  std::vector<std::string> records() {
    std::vector<std::string> out;
    if (!std::filesystem::exists(dir_ + "/namespaces")) return out;
    for (const auto& e : std::filesystem::directory_iterator(dir_ + "/namespaces")) {
      out.push_back(e.path().filename());
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  std::string dir_;
};

}  // namespace netcell::testing
