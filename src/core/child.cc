#include "netcell/child.h"

#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <string>
#include <utility>

namespace netcell {
namespace {

// glibc 2.36's <sys/pidfd.h> lacks extern "C" guards, so go through the raw system call.
int pidfd_send_signal(int pidfd, int sig) {
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0U));
}

// Reaps the process behind `pidfd`; returns 0 and fills `info`, or an errno.
int reap(int pidfd, siginfo_t& info) {
  for (;;) {
    info = {};
    if (::waitid(P_PIDFD, static_cast<id_t>(pidfd), &info, WEXITED) == 0) return 0;
    if (errno != EINTR) return errno;
  }
}

}  // namespace

Child::Child(Child&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      pidfd_(std::exchange(other.pidfd_, -1)),
      reaped_(std::exchange(other.reaped_, false)),
      exit_code_(std::exchange(other.exit_code_, -1)) {}

Child& Child::operator=(Child&& other) noexcept {
  if (this != &other) {
    Child old(std::move(*this));  // kills and reaps what this held, if anything
    pid_ = std::exchange(other.pid_, -1);
    pidfd_ = std::exchange(other.pidfd_, -1);
    reaped_ = std::exchange(other.reaped_, false);
    exit_code_ = std::exchange(other.exit_code_, -1);
  }
  return *this;
}

Child::~Child() {
  if (pidfd_ < 0) return;
  if (!reaped_) {
    // SIGKILL cannot be blocked or ignored, even by a PID 1, so the reap below cannot hang.
    pidfd_send_signal(pidfd_, SIGKILL);
    siginfo_t info;
    reap(pidfd_, info);
  }
  ::close(pidfd_);
}

pid_t Child::release() {
  pid_t pid = pid_;
  if (pidfd_ >= 0) ::close(pidfd_);
  pidfd_ = -1;
  pid_ = -1;
  return pid;
}

Result<void> Child::signal(int sig) const {
  if (pidfd_ < 0) return fail(ErrorCode::kInvalidArgument, "signal: child was moved from");
  if (pidfd_send_signal(pidfd_, sig) != 0) {
    return fail_errno("signal " + std::to_string(sig) + " to pid " + std::to_string(pid_), errno);
  }
  return ok();
}

Result<int> Child::wait() {
  if (pidfd_ < 0) return fail(ErrorCode::kInvalidArgument, "wait: child was moved from");
  if (reaped_) return exit_code_;
  siginfo_t info;
  if (int err = reap(pidfd_, info); err != 0) {
    return fail_errno("wait for pid " + std::to_string(pid_), err);
  }
  reaped_ = true;
  exit_code_ = info.si_code == CLD_EXITED ? info.si_status : 128 + info.si_status;
  return exit_code_;
}

}  // namespace netcell
