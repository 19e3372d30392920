// netcell-cni: a CNI runtime executes it with CNI_COMMAND and friends in the environment and the
// network configuration on stdin; it answers on stdout (netcell-cni(8)).
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "cni.h"

namespace {

// Stdin, at most one byte more than the configuration may be (so that too long is seen as such).
std::string read_stdin() {
  std::string text;
  char buf[65536];
  while (text.size() <= netcell::cni::kMaxConfigBytes) {
    ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buf, static_cast<std::size_t>(n));
  }
  return text;
}

int answer(const netcell::cni::json& j, int status) {
  std::string out = j.dump();
  out += '\n';
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fflush(stdout);
  return status;
}

}  // namespace

int main() {
  using namespace netcell::cni;
  // A delegated ipam plugin that exits before reading its stdin is an error, not a signal.
  std::signal(SIGPIPE, SIG_IGN);
  const std::string input = read_stdin();
  auto env = parse_environment([](const char* name) -> const char* { return std::getenv(name); });
  // The version errors are reported in: the configuration's, when it says one this plugin speaks.
  auto version_only = parse_config(input, Verb::kVersion);
  const std::string version = version_only ? version_only->cni_version : "";
  if (!env) return answer(error_json(version, env.error()), 1);
  if (env->verb == Verb::kVersion) {
    // The fast path: podman runs it for every plugin of every network in every process.
    return answer(version_json(version), 0);
  }
  auto config = parse_config(input, env->verb);
  if (!config) return answer(error_json(version, config.error()), 1);
  auto result = run(*env, *config);
  if (!result) return answer(error_json(version, result.error()), 1);
  if (*result) return answer(**result, 0);
  return 0;
}
