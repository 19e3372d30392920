// netcell tests: running commands and reading the kernel back through an independent view.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace netcell::testing {

struct CommandResult {
  int exit_code = -1;  // 128 + signal when killed
  std::string out;
  std::string err;
};

// Runs argv (PATH lookup) with stdin from /dev/null, capturing stdout and stderr, killing it after
// `timeout_ms`. Never goes through a shell.
CommandResult run(const std::vector<std::string>& argv, int timeout_ms = 20000);
// The same through `sh -c script`.
CommandResult sh(const std::string& script, int timeout_ms = 20000);
// Runs the netcell CLI built with the tests.
CommandResult cli(std::vector<std::string> args, int timeout_ms = 20000);

// `ip -j ARGS...` parsed; an empty array on failure.
nlohmann::json ip_json(const std::vector<std::string>& args);
// Link names in the named netns (`ip -n NAME -j link`), or in the current one when name is empty.
std::vector<std::string> link_names(const std::string& netns = "");

// True inside a world made by tests/support/world.sh.
bool in_world();

}  // namespace netcell::testing
