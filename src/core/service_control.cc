#include "core/service_control.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "core/files.h"
#include "core/unique_fd.h"
#include "core/validate.h"

#ifndef NETCELL_SERVICE_PATH
#define NETCELL_SERVICE_PATH "/usr/libexec/netcell/netcell-service"
#endif

namespace netcell::service {
namespace {

using nlohmann::json;

std::string last_log_line(const std::string& run_dir) {
  auto text = read_file(log_path(run_dir), 1 << 20);
  if (!text || text->empty()) return "";
  std::string s = *text;
  while (!s.empty() && s.back() == '\n') s.pop_back();
  auto nl = s.rfind('\n');
  return nl == std::string::npos ? s : s.substr(nl + 1);
}

}  // namespace

std::string record_path(const std::string& run_dir) {
  return run_dir + "/service.json";
}
std::string log_path(const std::string& run_dir) {
  return run_dir + "/service.log";
}

std::optional<Record> read(const std::string& run_dir) {
  auto text = read_file(record_path(run_dir), 4096);
  if (!text) return std::nullopt;
  json j = json::parse(*text, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  try {
    Record r;
    r.pid = j.at("pid").get<pid_t>();
    r.start_time = j.at("start_time").get<std::uint64_t>();
    r.port = j.at("port").get<std::uint16_t>();
    r.on_demand = j.value("on_demand", true);
    if (r.pid <= 0) return std::nullopt;
    return r;
  } catch (const json::exception&) {
    return std::nullopt;
  }
}

Result<void> write(const std::string& run_dir, const Record& r) {
  return write_atomically(record_path(run_dir), json{{"pid", r.pid},
                                                     {"start_time", r.start_time},
                                                     {"port", r.port},
                                                     {"on_demand", r.on_demand}}
                                                    .dump());
}

Result<void> remove(const std::string& run_dir) {
  const std::string path = record_path(run_dir);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return fail_errno("unlink " + path, errno);
  return ok();
}

bool alive(const Record& record) {
  return process_running(record.pid, record.start_time);
}

std::string binary(const std::string& configured) {
  if (!configured.empty()) return configured;
  if (const char* env = std::getenv("NETCELL_SERVICE"); env != nullptr && *env != '\0') return env;
  // Run from a build tree (or any directory holding both): the service beside the program.
  char self[4096];
  if (ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1); n > 0) {
    std::string dir(self, static_cast<std::size_t>(n));
    dir.resize(dir.rfind('/') + 1);
    if (::access((dir + "netcell-service").c_str(), X_OK) == 0) return dir + "netcell-service";
  }
  return NETCELL_SERVICE_PATH;
}

Result<Record> start(const StartOptions& o) {
  if (::access(o.binary.c_str(), X_OK) != 0) {
    return fail(ErrorCode::kUnsupported,
                "cannot start the host service: " + o.binary + ": " + std::strerror(errno));
  }
  int ready[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) return fail_errno("pipe", errno);
  UniqueFd read_end(ready[0]), write_end(ready[1]);
  const std::string log = log_path(o.run_dir);
  UniqueFd log_fd(::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
  if (!log_fd) return fail_errno("open " + log, errno);
  UniqueFd null_fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!null_fd) return fail_errno("open /dev/null", errno);
  std::vector<std::string> args = {o.binary,    "--run-dir",        o.run_dir,        "--netns-dir",
                                   o.netns_dir, "--private-subnet", o.private_subnet, "--ready-fd",
                                   "3",         "--on-demand"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  auto detached = fork_detached();
  if (!detached) return fail(detached.error());
  if (*detached) {
    ::dup2(null_fd.get(), 0);
    ::dup2(log_fd.get(), 1);
    ::dup2(log_fd.get(), 2);
    ::dup2(write_end.get(), 3);  // dup2 clears close-on-exec on the copy
    ::close_range(4, ~0U, 0);    // nothing else: not the run dir's lock, not the caller's sockets
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  write_end.reset();
  // The service writes one line, "ready" or why it could not start, then keeps the pipe open
  // until it has closed it (end of file = it exited).
  std::string line;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (line.find('\n') == std::string::npos) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) break;
    pollfd p{read_end.get(), POLLIN, 0};
    int n = ::poll(&p, 1, static_cast<int>(left));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    char buf[256];
    ssize_t got = ::read(read_end.get(), buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    line.append(buf, static_cast<std::size_t>(got));
  }
  if (line.rfind("ready", 0) == 0) {
    if (auto record = read(o.run_dir)) return *record;
    return fail(ErrorCode::kSystem, "the host service started but wrote no record");
  }
  // It said why, exited, or is stuck: whatever of it runs is ended.
  if (auto record = read(o.run_dir); record && alive(*record)) ::kill(record->pid, SIGKILL);
  std::string why = line.substr(0, line.find('\n'));
  if (why.empty()) why = last_log_line(o.run_dir);
  if (why.empty()) why = "it did not say it was ready within 5 s";
  return fail(ErrorCode::kSystem, "the host service did not start: " + why);
}

Result<void> stop(const std::string& run_dir) {
  if (auto record = read(run_dir)) end_process(record->pid, record->start_time, 2000);
  return remove(run_dir);
}

}  // namespace netcell::service
