#include "linux/spawn.h"

#include <fcntl.h>
#include <linux/sched.h>  // struct clone_args: glibc 2.36 has no clone3 wrapper
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "core/unique_fd.h"

extern char** environ;

namespace netcell::kernel {
namespace {

// What the child was doing when it failed; sent to the parent with the errno.
enum class Step : std::int32_t {
  kSetns,
  kUnshareMounts,
  kMakeSlave,
  kMountProc,
  kBindEtc,
  kForkCommand,
  kNestUser,
  kExec,
};

const char* step_name(Step step) {
  switch (step) {
    case Step::kSetns: return "join network namespace for";
    case Step::kUnshareMounts: return "unshare mount namespace for";
    case Step::kMakeSlave: return "make / a slave mount for";
    case Step::kMountProc: return "mount /proc for";
    case Step::kBindEtc: return "bind-mount /etc files for";
    case Step::kForkCommand: return "fork command under init for";
    case Step::kNestUser: return "enter a nested user namespace for";
    case Step::kExec: return "exec";
  }
  return "spawn";
}

// Written once to the report pipe; 8 bytes, so the write is atomic even with init and command
// both holding the write end.
struct Failure {
  std::int32_t step;
  std::int32_t err;
};

// Everything the child needs, built before clone3: after it the child may make only
// async-signal-safe calls, so no allocation happens there (it only reads these vectors).
struct Plan {
  int netns_fd = -1;
  const char* sysfs_source = "sysfs";
  bool mount_work = false;      // anything to mount at all (else stay in the caller's mount ns)
  bool unshare_mounts = false;  // false when clone3 already made a new mount namespace
  bool mount_proc = false;
  bool init = false;
  std::vector<std::pair<std::string, std::string>> binds;  // (source, /etc target)
  std::vector<std::string> exec_paths;                     // execvp's PATH search, done up front
  std::vector<char*> argv;
  char** envp = nullptr;
  int report_fd = -1;
  bool new_session = false;
  int stdin_fd = -1;
  int stdout_fd = -1;
  int stderr_fd = -1;
  bool nest_user = false;
  std::string uid_map, gid_map;  // "INNER 0 1\n"
};

// The signals netcell's init passes on to the command.
constexpr int kForwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};

long raw_clone3(clone_args& args) {
  return ::syscall(SYS_clone3, &args, sizeof args);
}

// ---- child side: async-signal-safe only ----------------------------------------------------

[[noreturn]] void report(int fd, Step step, int err) {
  Failure failure{static_cast<std::int32_t>(step), err};
  while (::write(fd, &failure, sizeof failure) < 0 && errno == EINTR) {
  }
  ::_exit(127);
}

// Handlers do not survive exec, but SIG_IGN does; and a handler of the parent must not run in the
// child before exec. The mask is still fully blocked here (the parent blocked it around clone3).
void reset_signal_dispositions() {
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  ::sigemptyset(&dfl.sa_mask);
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    ::sigaction(sig, &dfl, nullptr);  // fails harmlessly for glibc's reserved signals
  }
}

void unblock_all_signals() {
  sigset_t none;
  ::sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
}

// Mirrors `ip netns exec` (notes §5.1) so /sys and /etc/resolv.conf match the namespace.
void set_up_mounts(const Plan& plan) {
  if (!plan.mount_work) return;
  if (plan.unshare_mounts && ::unshare(CLONE_NEWNS) != 0) {
    report(plan.report_fd, Step::kUnshareMounts, errno);
  }
  // Our mounts must not propagate back to the caller's namespace.
  if (::mount("", "/", nullptr, MS_SLAVE | MS_REC, nullptr) != 0) {
    report(plan.report_fd, Step::kMakeSlave, errno);
  }
  if (plan.netns_fd >= 0) {
    // A fresh sysfs lists this namespace's devices. Like ip, a sysfs failure is not fatal: if the
    // old /sys cannot be detached it may be read-only, and then only a read-only overlay works.
    ::umount2("/sys", MNT_DETACH);
    if (::mount(plan.sysfs_source, "/sys", "sysfs", 0, nullptr) != 0) {
      ::mount(plan.sysfs_source, "/sys", "sysfs", MS_RDONLY, nullptr);
    }
  }
  if (plan.mount_proc) {
    // Mounted over the old /proc rather than after detaching it: the kernel only allows a new
    // proc where a fully visible one already is.
    if (::mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
      report(plan.report_fd, Step::kMountProc, errno);
    }
  }
  for (const auto& [source, target] : plan.binds) {
    if (::mount(source.c_str(), target.c_str(), nullptr, MS_BIND, nullptr) != 0) {
      report(plan.report_fd, Step::kBindEtc, errno);
    }
  }
}

bool write_file_once(const char* path, const std::string& text) {
  int fd = ::open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  return ok;
}

// After this the child (and the command) hold no capability over the caller's namespaces.
void enter_nested_user_namespace(const Plan& plan) {
  if (::unshare(CLONE_NEWUSER) != 0) report(plan.report_fd, Step::kNestUser, errno);
  (void)write_file_once("/proc/self/setgroups", "deny");  // already denied by the caller's: fine
  if (!write_file_once("/proc/self/uid_map", plan.uid_map) ||
      !write_file_once("/proc/self/gid_map", plan.gid_map)) {
    report(plan.report_fd, Step::kNestUser, errno);
  }
}

// execvp without its allocations: the PATH candidates were joined in the parent. Same errno
// rules as glibc: keep looking past ENOENT-like errors, remember EACCES, stop on anything else.
[[noreturn]] void exec_command(const Plan& plan) {
  int err = ENOENT;
  bool saw_eacces = false;
  for (const std::string& path : plan.exec_paths) {
    ::execve(path.c_str(), plan.argv.data(), plan.envp);
    err = errno;
    if (err == EACCES) {
      saw_eacces = true;
    } else if (err != ENOENT && err != ENOTDIR && err != ESTALE && err != ENODEV &&
               err != ETIMEDOUT) {
      break;
    }
  }
  report(plan.report_fd, Step::kExec, saw_eacces ? EACCES : err);
}

int status_to_code(int status) {
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// netcell's init, PID 1 of the new PID namespace. All signals stay blocked and are taken
// synchronously with sigwaitinfo, so no handler ever runs and none can be lost before the loop.
[[noreturn]] void run_init(const Plan& plan) {
  // A raw clone rather than fork(): glibc's fork takes locks another thread of the parent may
  // have held at clone3 time.
  clone_args args{};
  args.exit_signal = SIGCHLD;
  long command = raw_clone3(args);
  if (command < 0) report(plan.report_fd, Step::kForkCommand, errno);
  if (command == 0) {
    unblock_all_signals();
    exec_command(plan);
  }
  // The parent reads the pipe until EOF; only the command's copy (close-on-exec) may keep it open.
  ::close(plan.report_fd);

  sigset_t watched;
  ::sigemptyset(&watched);
  ::sigaddset(&watched, SIGCHLD);
  for (int sig : kForwarded) ::sigaddset(&watched, sig);
  for (;;) {
    siginfo_t info;
    int sig = ::sigwaitinfo(&watched, &info);
    if (sig < 0) continue;  // EINTR
    if (sig != SIGCHLD) {
      ::kill(static_cast<pid_t>(command), sig);
      continue;
    }
    // SIGCHLD does not queue: one may stand for many exits, orphans included.
    int status = 0;
    for (pid_t pid; (pid = ::waitpid(-1, &status, WNOHANG)) > 0;) {
      // When PID 1 exits, the kernel kills whatever else is left in the namespace.
      if (pid == command) ::_exit(status_to_code(status));
    }
  }
}

[[noreturn]] void child_main(const Plan& plan) {
  reset_signal_dispositions();
  // dup2 clears close-on-exec on the targets; the sources stay close-on-exec.
  if (plan.new_session) ::setsid();
  if (plan.stdin_fd >= 0) ::dup2(plan.stdin_fd, STDIN_FILENO);
  if (plan.stdout_fd >= 0) ::dup2(plan.stdout_fd, STDOUT_FILENO);
  if (plan.stderr_fd >= 0) ::dup2(plan.stderr_fd, STDERR_FILENO);
  if (plan.netns_fd >= 0 && ::setns(plan.netns_fd, CLONE_NEWNET) != 0) {
    report(plan.report_fd, Step::kSetns, errno);
  }
  set_up_mounts(plan);
  if (plan.nest_user) enter_nested_user_namespace(plan);
  if (plan.init) run_init(plan);
  unblock_all_signals();
  exec_command(plan);
}

// ---- parent side ---------------------------------------------------------------------------

// The candidates execvp would try for argv0, in order.
std::vector<std::string> exec_candidates(const std::string& argv0) {
  if (argv0.find('/') != std::string::npos) return {argv0};
  const char* env_path = std::getenv("PATH");
  std::string path = env_path != nullptr ? env_path : "/usr/local/bin:/usr/bin:/bin";
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t end = path.find(':', start);
    std::string dir = path.substr(start, end == std::string::npos ? end : end - start);
    out.push_back(dir.empty() ? argv0 : dir + "/" + argv0);  // empty entry: current directory
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return out;
}

// The files of etc_dir whose /etc counterpart exists: `ip netns exec` semantics. A missing
// etc_dir means nothing to bind.
Result<std::vector<std::pair<std::string, std::string>>> etc_binds(const std::string& etc_dir) {
  std::vector<std::pair<std::string, std::string>> binds;
  if (etc_dir.empty()) return binds;
  std::error_code ec;
  std::filesystem::directory_iterator it(etc_dir, ec);
  if (ec == std::errc::no_such_file_or_directory) return binds;
  for (; !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    std::string name = it->path().filename().string();
    std::string target = "/etc/" + name;
    struct stat st {};
    if (::stat(target.c_str(), &st) != 0) continue;  // follows symlinks, as the bind will
    binds.emplace_back(it->path().string(), std::move(target));
  }
  if (ec) return fail_errno("list " + etc_dir, ec.value());
  return binds;
}

// Reads the child's report. Nothing before EOF means exec succeeded (the close-on-exec write end
// went away); a Failure means the child reported and is exiting with 127.
Result<std::optional<Failure>> read_report(int fd, const std::string& argv0) {
  Failure failure{};
  ssize_t n;
  do {
    n = ::read(fd, &failure, sizeof failure);
  } while (n < 0 && errno == EINTR);
  if (n == 0) return std::nullopt;
  if (n < 0) return fail_errno("spawn " + argv0 + ": read child status", errno);
  if (n != sizeof failure) return fail(ErrorCode::kSystem, "spawn " + argv0 + ": short report");
  return failure;
}

}  // namespace

Result<Child> spawn(const SpawnRequest& request) {
  if (request.argv.empty()) return fail(ErrorCode::kInvalidArgument, "spawn: empty argv");
  const std::string& argv0 = request.argv.front();

  Plan plan;
  plan.netns_fd = request.netns_fd;
  if (!request.netns_name.empty()) plan.sysfs_source = request.netns_name.c_str();
  auto binds = etc_binds(request.etc_dir);
  if (!binds) return fail(std::move(binds).error().with_context("spawn " + argv0));
  plan.binds = std::move(*binds);
  plan.mount_work = request.netns_fd >= 0 || request.new_pid_namespace || !plan.binds.empty();
  plan.unshare_mounts = !request.new_pid_namespace;
  plan.mount_proc = request.new_pid_namespace;
  plan.init = request.new_pid_namespace && request.init;
  plan.exec_paths = exec_candidates(argv0);
  for (const std::string& arg : request.argv) plan.argv.push_back(const_cast<char*>(arg.c_str()));
  plan.argv.push_back(nullptr);
  plan.envp = environ;
  plan.new_session = request.new_session;
  plan.stdin_fd = request.stdin_fd;
  plan.stdout_fd = request.stdout_fd;
  plan.stderr_fd = request.stderr_fd;
  if (request.nested_uid >= 0 && request.nested_gid >= 0) {
    plan.nest_user = true;
    plan.uid_map = std::to_string(request.nested_uid) + " 0 1\n";
    plan.gid_map = std::to_string(request.nested_gid) + " 0 1\n";
  }

  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return fail_errno("spawn " + argv0 + ": pipe", errno);
  UniqueFd report_read(fds[0]);
  UniqueFd report_write(fds[1]);
  plan.report_fd = report_write.get();

  int pidfd = -1;
  clone_args args{};
  args.flags = CLONE_PIDFD;
  if (request.new_pid_namespace) args.flags |= CLONE_NEWPID | CLONE_NEWNS;
  args.pidfd = reinterpret_cast<std::uintptr_t>(&pidfd);
  args.exit_signal = SIGCHLD;

  // Block every signal across clone3 so no handler of ours runs in the child before it resets
  // them (glibc's posix_spawn does the same).
  sigset_t all, saved;
  ::sigfillset(&all);
  ::pthread_sigmask(SIG_BLOCK, &all, &saved);
  long pid = raw_clone3(args);
  if (pid == 0) child_main(plan);
  int clone_errno = errno;
  ::pthread_sigmask(SIG_SETMASK, &saved, nullptr);
  if (pid < 0) return fail_errno("spawn " + argv0 + ": clone3", clone_errno);

  Child child(static_cast<pid_t>(pid), pidfd);
  report_write.reset();  // else our own copy would keep the pipe from reaching EOF
  auto reported = read_report(report_read.get(), argv0);
  if (!reported) return fail(std::move(reported).error());  // ~Child kills and reaps it
  if (*reported) {
    (void)child.wait();  // it is already on its way to _exit(127)
    std::string what = step_name(static_cast<Step>((*reported)->step));
    return fail_errno(what + " " + argv0, (*reported)->err);
  }
  return child;
}

}  // namespace netcell::kernel
