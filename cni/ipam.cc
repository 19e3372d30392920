// A delegated IPAM plugin, run the way a main plugin of the reference set runs one (SPEC.md "IP
// Allocation"): found by its name in CNI_PATH, given the runtime's CNI_* environment with the
// verb and the same network configuration on stdin; its answer (a result or an error object) on
// stdout. netcell then uses the address it gave like a static one.
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>

#include "cni.h"

extern char** environ;

namespace netcell::cni {
namespace {

const char* verb_name(Verb verb) {
  switch (verb) {
    case Verb::kAdd: return "ADD";
    case Verb::kDel: return "DEL";
    case Verb::kCheck: return "CHECK";
    case Verb::kStatus: return "STATUS";
    case Verb::kGc: return "GC";
    case Verb::kVersion: return "VERSION";
  }
  return "VERSION";
}

// The plugin's path: the first CNI_PATH directory with an executable file of that name.
std::string find_plugin(const std::string& name, const std::string& path) {
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t end = path.find(':', start);
    if (end == std::string::npos) end = path.size();
    std::string dir = path.substr(start, end - start);
    if (!dir.empty()) {
      std::string file = dir + "/" + name;
      struct stat st {};
      if (::stat(file.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
          ::access(file.c_str(), X_OK) == 0)
        return file;
    }
    start = end + 1;
  }
  return "";
}

struct Pipe {
  int fd[2] = {-1, -1};
  ~Pipe() {
    for (int f : fd) {
      if (f >= 0) ::close(f);
    }
  }
  void close_end(int i) {
    if (fd[i] >= 0) ::close(fd[i]);
    fd[i] = -1;
  }
};

}  // namespace

CniResult<json> run_ipam(Verb verb, const Environment& env, const PluginConfig& config) {
  const std::string& name = config.ipam_type;
  const std::string file = find_plugin(name, env.path);
  if (file.empty()) {
    return cni_fail(kInvalidConfig,
                    "ipam plugin '" + name + "' is not in CNI_PATH (" + env.path + ")");
  }
  // The runtime's environment, but the CNI_* variables, which are this call's.
  std::vector<std::string> vars;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, "CNI_", 4) != 0) vars.emplace_back(*e);
  }
  vars.push_back(std::string("CNI_COMMAND=") + verb_name(verb));
  vars.push_back("CNI_CONTAINERID=" + env.container_id);
  if (!env.netns.empty()) vars.push_back("CNI_NETNS=" + env.netns);
  vars.push_back("CNI_IFNAME=" + env.ifname);
  if (!env.args.empty()) vars.push_back("CNI_ARGS=" + env.args);
  vars.push_back("CNI_PATH=" + env.path);
  std::vector<char*> envp;
  for (auto& v : vars) envp.push_back(v.data());
  envp.push_back(nullptr);

  Pipe in, out;
  if (::pipe2(in.fd, O_CLOEXEC) != 0 || ::pipe2(out.fd, O_CLOEXEC) != 0) {
    return cni_fail(kIoFailure, std::string("ipam: pipe: ") + std::strerror(errno));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in.fd[0], STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out.fd[1], STDOUT_FILENO);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF);
  std::string arg0 = file;
  char* argv[] = {arg0.data(), nullptr};
  pid_t pid = -1;
  const int spawned = ::posix_spawn(&pid, file.c_str(), &actions, &attr, argv, envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (spawned != 0) {
    return cni_fail(kIoFailure, "ipam plugin " + file + ": " + std::strerror(spawned));
  }
  in.close_end(0);
  out.close_end(1);
  // Its stdin, then its stdout, within the time it is given (ipamTimeout): a plugin that hangs,
  // or answers more than a configuration's worth, is killed, and the call fails. A plugin that
  // exits without reading all of its stdin is seen by its exit status (EPIPE here, not SIGPIPE:
  // main ignores the signal).
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(config.ipam_timeout_s);
  auto left_ms = [&] {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    return static_cast<int>(std::max<std::int64_t>(0, left.count()));
  };
  ::fcntl(in.fd[1], F_SETFL, O_NONBLOCK);
  ::fcntl(out.fd[0], F_SETFL, O_NONBLOCK);
  const std::string& text = config.text;
  std::size_t written = 0;
  std::string answer;
  const char* why_killed = nullptr;
  if (text.empty()) in.close_end(1);
  while (out.fd[0] >= 0) {
    pollfd fds[2] = {{out.fd[0], POLLIN, 0}, {in.fd[1], POLLOUT, 0}};
    const int n = ::poll(fds, in.fd[1] >= 0 ? 2 : 1, left_ms());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      why_killed = "did not answer in time";
      break;
    }
    if (in.fd[1] >= 0 && fds[1].revents != 0) {
      ssize_t w = ::write(in.fd[1], text.data() + written, text.size() - written);
      if (w > 0) written += static_cast<std::size_t>(w);
      if ((w < 0 && errno != EAGAIN && errno != EINTR) || written == text.size()) {
        in.close_end(1);
      }
    }
    if (fds[0].revents != 0) {
      char buf[65536];
      ssize_t r = ::read(out.fd[0], buf, sizeof buf);
      if (r > 0) answer.append(buf, static_cast<std::size_t>(r));
      if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) out.close_end(0);
      if (answer.size() > kMaxConfigBytes) {
        why_killed = "answered more than 1 MiB";
        break;
      }
    }
  }
  in.close_end(1);
  out.close_end(0);
  int status = 0;
  if (why_killed == nullptr) {
    // Its stdout is closed: it has exited, or is about to (or closed it and hangs on).
    while (true) {
      const pid_t done = ::waitpid(pid, &status, WNOHANG);
      if (done == pid || (done < 0 && errno != EINTR)) break;
      if (left_ms() == 0) {
        why_killed = "did not exit in time";
        break;
      }
      ::usleep(1000);
    }
  }
  if (why_killed != nullptr) {
    ::kill(pid, SIGKILL);
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return cni_fail(kInternal, "ipam plugin " + name + " " + why_killed + " (" + verb_name(verb) +
                                   ", ipamTimeout " + std::to_string(config.ipam_timeout_s) +
                                   " s); killed");
  }
  json parsed = json::parse(answer, nullptr, false);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    if (parsed.is_object() && parsed.contains("msg") && parsed["msg"].is_string()) {
      int code = parsed.value("code", static_cast<int>(kInternal));
      std::string details = parsed.contains("details") && parsed["details"].is_string()
                                ? parsed["details"].get<std::string>()
                                : "";
      return cni_fail(code, "ipam plugin " + name + ": " + parsed["msg"].get<std::string>(),
                      details);
    }
    return cni_fail(kInternal,
                    "ipam plugin " + name + " failed (" +
                        (WIFEXITED(status) ? "exit status " + std::to_string(WEXITSTATUS(status))
                                           : "signal " + std::to_string(WTERMSIG(status))) +
                        ")");
  }
  if (verb != Verb::kAdd) return json();
  if (parsed.is_discarded()) {
    return cni_fail(kDecodeFailure, "ipam plugin " + name + " answered ADD with no JSON");
  }
  return parsed;
}

}  // namespace netcell::cni
