#include "rootless/session.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <vector>

#include "core/files.h"
#include "core/unique_fd.h"
#include "core/validate.h"
#include "netcell/rootless.h"

namespace netcell::rootless {
namespace {

using json = nlohmann::json;

// Whether this process joined a session's namespaces (process-wide, as joining is).
std::atomic<bool> joined{false};

constexpr int kLifeFd = 3;    // the holder's end of the pipe the helper's --exit-fd reads
constexpr int kReadyFd = 4;   // where the holder reports
constexpr int kCommitFd = 5;  // end of file before a byte: the starter died before recording it

// What the holder reports once: the step that failed (0: none) and its errno, and its pid.
struct HolderReport {
  std::int32_t step = 0;
  std::int32_t err = 0;
  std::int32_t pid = 0;
};

enum HolderStep : std::int32_t {
  kOk = 0,
  kUnshare,
  kSetgroups,
  kUidMap,
  kGidMap,
  kSlave,
  kMountNetns,
  kMountEtc,
};

const char* holder_step_name(std::int32_t step) {
  switch (step) {
    case kUnshare: return "create a user, mount and network namespace";
    case kSetgroups: return "write /proc/self/setgroups";
    case kUidMap: return "write its uid_map";
    case kGidMap: return "write its gid_map";
    case kSlave: return "make its mounts private";
    case kMountNetns: return "mount a tmpfs on the netns dir";
    case kMountEtc: return "mount a tmpfs on the etc-netns dir";
    default: return "start";
  }
}

// ---- holder side: async-signal-safe only (the caller may have threads) ----------------------

[[noreturn]] void holder_fail(std::int32_t step) {
  HolderReport r{step, errno, static_cast<std::int32_t>(::getpid())};
  (void)!::write(kReadyFd, &r, sizeof r);
  ::_exit(1);
}

bool write_proc(const char* path, const char* text) {
  int fd = ::open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = ::write(fd, text, std::strlen(text)) == static_cast<ssize_t>(std::strlen(text));
  ::close(fd);
  return ok;
}

struct HolderPlan {
  std::string uid_map, gid_map, netns_dir, etc_dir;
  int null_fd = -1, life_fd = -1, ready_fd = -1, commit_fd = -1;
};

[[noreturn]] void holder_main(const HolderPlan& plan) {
  ::dup2(plan.null_fd, 0);
  ::dup2(plan.null_fd, 1);
  ::dup2(plan.null_fd, 2);
  ::dup2(plan.life_fd, kLifeFd);
  ::dup2(plan.ready_fd, kReadyFd);
  ::dup2(plan.commit_fd, kCommitFd);
  ::close_range(kCommitFd + 1, ~0U, 0);  // not the run dir's lock, not the caller's sockets
  ::prctl(PR_SET_NAME, "netcell-holder", 0, 0, 0);
  sigset_t all;
  ::sigfillset(&all);
  ::sigprocmask(SIG_SETMASK, &all, nullptr);
  if (::unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET) != 0) holder_fail(kUnshare);
  if (!write_proc("/proc/self/setgroups", "deny")) holder_fail(kSetgroups);
  if (!write_proc("/proc/self/uid_map", plan.uid_map.c_str())) holder_fail(kUidMap);
  if (!write_proc("/proc/self/gid_map", plan.gid_map.c_str())) holder_fail(kGidMap);
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) != 0) holder_fail(kSlave);
  if (::mount("netcell", plan.netns_dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
              "mode=0755") != 0) {
    holder_fail(kMountNetns);
  }
  if (::mount("netcell", plan.etc_dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") != 0) {
    holder_fail(kMountEtc);
  }
  HolderReport r{kOk, 0, static_cast<std::int32_t>(::getpid())};
  (void)!::write(kReadyFd, &r, sizeof r);
  ::close(kReadyFd);
  // A holder nobody recorded would never be found again: it lives on only once its starter has
  // written the record (a byte), and ends if the starter dies first (end of file).
  char committed = 0;
  ssize_t got;
  while ((got = ::read(kCommitFd, &committed, 1)) < 0 && errno == EINTR) {
  }
  if (got != 1) ::_exit(0);
  ::close(kCommitFd);
  sigset_t ending;
  ::sigemptyset(&ending);
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) ::sigaddset(&ending, sig);
  for (;;) {
    if (::sigwaitinfo(&ending, nullptr) > 0) ::_exit(0);
  }
}

// ---- caller side ----------------------------------------------------------------------------

// Reads exactly `size` bytes from `fd` within `ms`; false on timeout or end of file.
bool read_within(int fd, void* out, std::size_t size, int ms) {
  auto* p = static_cast<char*>(out);
  std::size_t got = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (got < size) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) return false;
    pollfd pfd{fd, POLLIN, 0};
    int n = ::poll(&pfd, 1, static_cast<int>(left));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    ssize_t r = ::read(fd, p + got, size - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    got += static_cast<std::size_t>(r);
  }
  return true;
}

void end_process(const Process& process) {
  netcell::end_process(process.pid, process.start_time, 1000);
}

std::string last_line(const std::string& path) {
  auto text = read_file(path, 1 << 16);
  if (!text) return "";
  std::string s = *text;
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  auto nl = s.rfind('\n');
  return nl == std::string::npos ? s : s.substr(nl + 1);
}

Result<void> make_dir(const std::string& dir, mode_t mode) {
  if (::mkdir(dir.c_str(), mode) != 0 && errno != EEXIST) return fail_errno("mkdir " + dir, errno);
  return ok();
}

// The holder, waiting for `commit` (a byte on `commit`'s pipe) before it stays for good.
Result<Process> start_holder(const Paths& paths, UniqueFd& commit) {
  NETCELL_TRY(make_dir(paths.dir, 0700));
  NETCELL_TRY(make_dir(paths.netns_dir, 0755));
  NETCELL_TRY(make_dir(paths.etc_dir, 0755));
  HolderPlan plan;
  plan.uid_map = "0 " + std::to_string(::geteuid()) + " 1\n";
  plan.gid_map = "0 " + std::to_string(::getegid()) + " 1\n";
  plan.netns_dir = paths.netns_dir;
  plan.etc_dir = paths.etc_dir;
  UniqueFd null_fd(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!null_fd) return fail_errno("open /dev/null", errno);
  int life[2], ready[2];
  if (::pipe2(life, O_CLOEXEC) != 0) return fail_errno("pipe", errno);
  UniqueFd life_read(life[0]), life_write(life[1]);
  if (::pipe2(ready, O_CLOEXEC) != 0) return fail_errno("pipe", errno);
  UniqueFd ready_read(ready[0]), ready_write(ready[1]);
  int commit_pipe[2];
  if (::pipe2(commit_pipe, O_CLOEXEC) != 0) return fail_errno("pipe", errno);
  UniqueFd commit_read(commit_pipe[0]);
  commit.reset(commit_pipe[1]);
  plan.null_fd = null_fd.get();
  plan.life_fd = life_write.get();
  plan.ready_fd = ready_write.get();
  plan.commit_fd = commit_read.get();
  auto detached = fork_detached();
  if (!detached) return fail(detached.error());
  if (*detached) holder_main(plan);
  ready_write.reset();
  life_write.reset();
  commit_read.reset();
  HolderReport report;
  if (!read_within(ready_read.get(), &report, sizeof report, 5000)) {
    return fail(ErrorCode::kSystem, "rootless: the namespace holder did not start within 5 s");
  }
  if (report.step != kOk) {
    std::string why = std::strerror(report.err);
    if (report.step == kUnshare && (report.err == ENOSPC || report.err == EPERM)) {
      why += " (are user namespaces disabled? see user.max_user_namespaces; netcell doctor)";
    }
    return fail(ErrorCode::kPermissionDenied,
                std::string("rootless: the namespace holder could not ") +
                    holder_step_name(report.step) + ": " + why);
  }
  Process holder{report.pid, 0};
  auto start = process_start_time(holder.pid);
  if (!start) return fail(ErrorCode::kSystem, "rootless: the namespace holder exited at once");
  holder.start_time = *start;
  return holder;
}

Result<Process> start_helper(const Paths& paths, const Process& holder) {
  std::string binary = helper_binary();
  if (binary.empty()) {
    return fail(ErrorCode::kUnsupported,
                "rootless: slirp4netns is not installed (the uplink helper; apt-get install "
                "slirp4netns)");
  }
  // The holder's end of its pipe, opened anew: the helper exits when the holder does.
  std::string life_path = "/proc/" + std::to_string(holder.pid) + "/fd/" + std::to_string(kLifeFd);
  UniqueFd life(::open(life_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!life) return fail_errno("rootless: open " + life_path, errno);
  if (!alive(holder)) return fail(ErrorCode::kNotFound, "rootless: the namespace holder is gone");
  UniqueFd log_fd(::open(paths.helper_log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!log_fd) return fail_errno("open " + paths.helper_log, errno);
  UniqueFd null_fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!null_fd) return fail_errno("open /dev/null", errno);
  int ready[2], pid_pipe[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) return fail_errno("pipe", errno);
  UniqueFd ready_read(ready[0]), ready_write(ready[1]);
  if (::pipe2(pid_pipe, O_CLOEXEC) != 0) return fail_errno("pipe", errno);
  UniqueFd pid_read(pid_pipe[0]), pid_write(pid_pipe[1]);
  // The helper's own DNS and its 10.0.2.2 -> host 127.0.0.1 mapping are closed: the host's
  // loopback is never reachable (docs/ROOTLESS.md).
  // Its API socket (published ports: rootless/hostfwd.h) is made anew; one a killed helper left
  // would make it fail.
  if (paths.api_socket.size() >= sizeof(sockaddr_un{}.sun_path)) {
    return fail(ErrorCode::kInvalidArgument,
                "rootless: the run dir's path is too long for the uplink helper's API socket (" +
                    paths.api_socket + ")");
  }
  if (::unlink(paths.api_socket.c_str()) != 0 && errno != ENOENT) {
    return fail_errno("unlink " + paths.api_socket, errno);
  }
  std::vector<std::string> args = {binary,
                                   "--configure",
                                   "--mtu=" + std::to_string(kHelperMtu),
                                   "--disable-host-loopback",
                                   "--disable-dns",
                                   "--exit-fd=3",
                                   "--ready-fd=4",
                                   "--api-socket=" + paths.api_socket,
                                   std::to_string(holder.pid),
                                   "tap0"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  auto detached = fork_detached();
  if (!detached) return fail(detached.error());
  if (*detached) {
    std::int32_t self = static_cast<std::int32_t>(::getpid());
    (void)!::write(pid_write.get(), &self, sizeof self);
    ::dup2(null_fd.get(), 0);
    ::dup2(log_fd.get(), 1);
    ::dup2(log_fd.get(), 2);
    ::dup2(life.get(), 3);
    ::dup2(ready_write.get(), 4);
    ::close_range(5, ~0U, 0);
    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ready_write.reset();
  pid_write.reset();
  life.reset();
  std::int32_t helper_pid = 0;
  if (!read_within(pid_read.get(), &helper_pid, sizeof helper_pid, 5000) || helper_pid <= 0) {
    return fail(ErrorCode::kSystem, "rootless: the uplink helper did not start");
  }
  Process helper{helper_pid, process_start_time(helper_pid).value_or(0)};
  char ready_byte = 0;
  if (!read_within(ready_read.get(), &ready_byte, 1, 5000) || ready_byte != '1') {
    if (helper.start_time != 0) end_process(helper);
    std::string why = last_line(paths.helper_log);
    return fail(ErrorCode::kSystem, "rootless: the uplink helper (" + binary + ") did not come up" +
                                        (why.empty() ? std::string() : ": " + why));
  }
  return helper;
}

Result<void> write_record(const Paths& paths, const Session& s) {
  return write_atomically(
      paths.record, json{{"holder", {{"pid", s.holder.pid}, {"start_time", s.holder.start_time}}},
                         {"helper", {{"pid", s.helper.pid}, {"start_time", s.helper.start_time}}}}
                        .dump());
}

}  // namespace

Paths::Paths(std::string dir_of_run)
    : run_dir(std::move(dir_of_run)),
      dir(run_dir + "/rootless"),
      record(dir + "/session.json"),
      helper_log(dir + "/slirp4netns.log"),
      api_socket(dir + "/slirp4netns.sock"),
      ports_dir(dir + "/ports"),
      networks_dir(dir + "/networks"),
      netns_dir(run_dir + "/netns"),
      etc_dir(run_dir + "/etc-netns"),
      lock(run_dir + "/rootless.lock"),
      members(run_dir + "/rootless.members") {}

namespace {

// `path` (made if missing) opened and flock()ed with `operation`, waiting for it.
Result<UniqueFd> locked_file(const std::string& path, int operation) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) return fail_errno("open " + path, errno);
  while (::flock(fd.get(), operation) != 0) {
    if (errno != EINTR) return fail_errno("lock " + path, errno);
  }
  return fd;
}

}  // namespace

Result<UniqueFd> lock_session(const Paths& paths) {
  return locked_file(paths.lock, LOCK_EX);
}

Result<UniqueFd> member(const Paths& paths) {
  return locked_file(paths.members, LOCK_SH);
}

bool other_members(int mine) {
  // A conversion is not atomic (flock(2)): the shared lock is dropped first, and taken again
  // whether or not an exclusive one could be had; no one else takes one meanwhile (the session's
  // lock is held).
  (void)::flock(mine, LOCK_UN);
  const bool others = ::flock(mine, LOCK_EX | LOCK_NB) != 0;
  while (::flock(mine, LOCK_SH) != 0 && errno == EINTR) {
  }
  return others;
}

bool alive(const Process& process) {
  return process.pid > 0 && process_running(process.pid, process.start_time);
}

std::optional<Session> read_session(const Paths& paths) {
  auto text = read_file(paths.record, 4096);
  if (!text) return std::nullopt;
  try {
    json j = json::parse(*text);
    Session s;
    s.holder.pid = j.at("holder").at("pid").get<pid_t>();
    s.holder.start_time = j.at("holder").at("start_time").get<std::uint64_t>();
    s.helper.pid = j.at("helper").at("pid").get<pid_t>();
    s.helper.start_time = j.at("helper").at("start_time").get<std::uint64_t>();
    if (s.holder.pid <= 0) return std::nullopt;
    return s;
  } catch (const json::exception&) {
    return std::nullopt;
  }
}

Result<Session> start_session(const Paths& paths) {
  if (helper_binary().empty()) {
    return fail(ErrorCode::kUnsupported,
                "rootless: slirp4netns is not installed (the uplink helper; apt-get install "
                "slirp4netns)");
  }
  UniqueFd commit;
  auto holder = start_holder(paths, commit);
  if (!holder) return fail(holder.error());
  Session session{*holder, {}};
  auto helper = start_helper(paths, session.holder);
  if (!helper) {
    end_process(session.holder);
    return fail(helper.error());
  }
  session.helper = *helper;
  if (auto written = write_record(paths, session); !written) {
    end_process(session.helper);
    end_process(session.holder);
    return fail(written.error());
  }
  char byte = 1;
  if (::write(commit.get(), &byte, 1) != 1) {
    end_process(session.helper);
    end_process(session.holder);
    return fail_errno("rootless: commit the namespace holder", errno);
  }
  return session;
}

Result<Session> restart_helper(const Paths& paths, const Session& session) {
  Session out = session;
  end_process(out.helper);
  auto helper = start_helper(paths, out.holder);
  if (!helper) return fail(helper.error());
  out.helper = *helper;
  if (auto written = write_record(paths, out); !written) {
    end_process(out.helper);
    return fail(written.error());
  }
  return out;
}

Result<void> stop_session(const Paths& paths, const Session& session) {
  end_process(session.helper);
  end_process(session.holder);
  std::error_code ignored;
  std::filesystem::remove_all(paths.ports_dir, ignored);
  for (const std::string& path : {paths.record, paths.helper_log, paths.api_socket}) {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) return fail_errno("unlink " + path, errno);
  }
  ::rmdir(paths.networks_dir.c_str());  // journaled networks outlive the session
  ::rmdir(paths.dir.c_str());
  return ok();
}

void forget_unrecorded(const Paths& paths) {
  struct stat st {};
  if (::stat(paths.record.c_str(), &st) == 0) return;
  ::unlink(paths.helper_log.c_str());
  ::unlink(paths.api_socket.c_str());
  ::rmdir(paths.dir.c_str());
}

Result<void> join(const Process& holder) {
  const std::string base = "/proc/" + std::to_string(holder.pid) + "/ns/";
  std::array<UniqueFd, 3> ns;
  const std::array<const char*, 3> names = {"user", "mnt", "net"};
  const std::array<int, 3> types = {CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWNET};
  for (std::size_t i = 0; i < ns.size(); ++i) {
    ns[i].reset(::open((base + names[i]).c_str(), O_RDONLY | O_CLOEXEC));
    if (!ns[i]) return fail_errno("rootless: open " + base + names[i], errno);
  }
  // Opened first, checked after: the fds are then that holder's, not a later process's.
  if (!alive(holder)) return fail(ErrorCode::kNotFound, "rootless: the namespace holder is gone");
  struct stat mine {
  }, theirs{};
  if (::stat("/proc/self/ns/user", &mine) == 0 && ::fstat(ns[0].get(), &theirs) == 0 &&
      mine.st_ino == theirs.st_ino) {
    return ok();  // joined already
  }
  if (joined_before()) return fail(ErrorCode::kConflict, kJoinedBefore);
  auto status = read_file("/proc/self/status", 1 << 16);
  if (status && status->find("\nThreads:\t1\n") == std::string::npos) {
    return fail(ErrorCode::kUnsupported,
                "rootless: joining the user's namespaces needs a single-threaded process");
  }
  UniqueFd cwd(::open(".", O_PATH | O_DIRECTORY | O_CLOEXEC));
  for (std::size_t i = 0; i < ns.size(); ++i) {
    if (::setns(ns[i].get(), types[i]) != 0) {
      return fail_errno(std::string("rootless: join the holder's ") + names[i] + " namespace",
                        errno);
    }
  }
  if (cwd) (void)!::fchdir(cwd.get());
  joined.store(true);
  return ok();
}

bool joined_before() {
  return joined.load();
}

SessionPlace session_place(const std::string& run_dir) {
  SessionPlace place;
  auto session = read_session(Paths(run_dir));
  if (!session) return place;
  place.rootless = true;
  if (!alive(session->holder)) return place;
  place.holder_pid = session->holder.pid;
  place.inside = true;
  for (const char* ns : {"user", "net"}) {
    struct stat mine {
    }, theirs{};
    const std::string path = "/proc/" + std::to_string(session->holder.pid) + "/ns/" + ns;
    if (::stat((std::string("/proc/self/ns/") + ns).c_str(), &mine) != 0 ||
        ::stat(path.c_str(), &theirs) != 0 || mine.st_dev != theirs.st_dev ||
        mine.st_ino != theirs.st_ino) {
      place.inside = false;
    }
  }
  return place;
}

std::string helper_binary() {
  if (const char* env = std::getenv("NETCELL_SLIRP4NETNS"); env != nullptr && *env != '\0') {
    return ::access(env, X_OK) == 0 ? env : "";
  }
  const char* env_path = std::getenv("PATH");
  std::string path = env_path != nullptr ? env_path : "/usr/local/bin:/usr/bin:/bin";
  std::size_t start = 0;
  for (;;) {
    std::size_t end = path.find(':', start);
    std::string dir = path.substr(start, end == std::string::npos ? end : end - start);
    if (!dir.empty()) {
      std::string candidate = dir + "/slirp4netns";
      if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    }
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return "";
}

}  // namespace netcell::rootless
