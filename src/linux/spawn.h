// netcell: starting a process inside a network namespace (notes §5.1, §6).
#pragma once

#include <string>
#include <vector>

#include "netcell/child.h"
#include "netcell/result.h"

namespace netcell::kernel {

struct SpawnRequest {
  // The namespace to join (borrowed fd of its nsfs file); -1 stays in the caller's namespace.
  int netns_fd = -1;
  // Its name, for /etc/netns/NAME/* bind mounts and the sysfs mount; empty for none.
  std::string netns_name;
  // Directory whose files are bind-mounted over /etc/<file> (as `ip netns exec` does with
  // /etc/netns/NAME); empty for none. Only files whose target exists in /etc are bound.
  std::string etc_dir;
  std::vector<std::string> argv;  // argv[0] is looked up in PATH
  bool new_pid_namespace = false;
  bool init = false;         // see SpawnOptions
  bool new_session = false;  // setsid() before exec
  int stdin_fd = -1;         // dup2'ed to 0 when >= 0 (borrowed)
  int stdout_fd = -1;        // dup2'ed to 1 when >= 0 (borrowed)
  int stderr_fd = -1;        // dup2'ed to 2 when >= 0 (borrowed)
  // Rootless: after the mounts, the child enters a user namespace of its own (nested in the
  // caller's) whose only uid and gid are these, mapped to the caller's root: it then holds no
  // capability over any namespace the caller's user namespace owns, so it cannot change links,
  // addresses, routes or nftables rules there. -1: no nested user namespace.
  int nested_uid = -1;
  int nested_gid = -1;
};

// clone3(CLONE_PIDFD [| CLONE_NEWPID | CLONE_NEWNS]). In the child, only async-signal-safe calls:
// setns(net), unshare(CLONE_NEWNS) + mount / MS_SLAVE|MS_REC, fresh /sys (and /proc with a PID
// namespace), bind mounts from etc_dir, then execvp. A failure before exec is reported over a
// close-on-exec pipe and becomes the returned Error (e.g. "exec nosuch: No such file or
// directory"), with the child reaped.
// Details: the child starts with an empty signal mask and default dispositions whatever the
// caller blocked or ignored; without a netns, a PID namespace or binds it stays in the caller's
// mount namespace; a sysfs mount failure is tolerated (as `ip netns exec` does), a failed bind is
// not; argv[0] is searched in the caller's PATH before cloning (no /bin/sh retry on ENOEXEC).
Result<Child> spawn(const SpawnRequest& request);

}  // namespace netcell::kernel
