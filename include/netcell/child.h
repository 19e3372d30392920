// netcell: a process started inside a namespace, owned through a pidfd.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "netcell/result.h"

namespace netcell {

struct SpawnOptions {
  // Also give the child a new PID namespace (and a mount namespace with a fresh /proc). Without
  // `init`, the command itself is PID 1: it sees itself as PID 1, and everything it leaves behind
  // is killed by the kernel when it exits. A PID 1 ignores signals it has no handler for, so the
  // caller forwarding SIGTERM should escalate to SIGKILL after a grace period (the CLI does).
  bool new_pid_namespace = false;
  // With new_pid_namespace: run netcell's minimal init as PID 1, the command as PID 2. The init
  // reaps every orphan, forwards SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 and SIGWINCH
  // to the command, and exits with the command's status (128 + signal if it was killed). Ignored
  // without new_pid_namespace.
  bool init = false;
  // Detached: the command gets a session of its own (setsid) and stdin from /dev/null, so it
  // outlives the caller's terminal; call Child::release() to let it outlive the Child too.
  bool detach = false;
  // With detach: stdout and stderr are appended to this file (created 0640). Empty: inherited.
  std::string output_path;
  // The child's stdin, stdout and stderr: a file descriptor of the caller's (borrowed: it is
  // dup2'ed in the child and stays the caller's to close), or -1 for what detach gives, else the
  // caller's own. Each takes precedence over detach's /dev/null and output_path. Use descriptors
  // above 2 (one of 0..2 may be replaced before it is read).
  int stdin_fd = -1;
  int stdout_fd = -1;
  int stderr_fd = -1;
};

// A running child. Move-only; destroying a Child that was not waited for kills it (SIGKILL) and
// reaps it, so no zombie or stray process outlives its owner.
class Child {
 public:
  // Takes ownership of `pidfd` (this class is its one owner and closes it).
  Child(pid_t pid, int pidfd) : pid_(pid), pidfd_(pidfd) {}
  Child(Child&& other) noexcept;
  Child& operator=(Child&& other) noexcept;
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child();

  pid_t pid() const { return pid_; }
  int pidfd() const { return pidfd_; }

  // Sends a signal through the pidfd (no PID-reuse race).
  Result<void> signal(int sig) const;
  // Waits for exit and reaps. Returns the exit code, or 128 + signal number if it was killed.
  // Calling it again returns the same code.
  Result<int> wait();
  // Gives the process up without killing or reaping it (for detached children that should
  // outlive the caller); returns its pid. The Child is empty afterwards.
  pid_t release();

 private:
  pid_t pid_ = -1;
  int pidfd_ = -1;
  bool reaped_ = false;
  int exit_code_ = -1;  // valid once reaped_
};

}  // namespace netcell
