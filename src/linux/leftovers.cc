#include "linux/leftovers.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>

#include "linux/link.h"
#include "linux/netlink.h"
#include "linux/netns.h"

namespace netcell::kernel {
namespace {

// struct file_handle is a header followed by the handle's bytes; nsfs handles are 16 bytes today.
constexpr std::size_t kMaxHandleBytes = 128;
// How long one round of end_processes_in waits for the processes it signalled to exit.
constexpr int kExitWaitMs = 2000;

bool is_pid(const char* name) {
  if (*name == '\0') return false;
  for (const char* c = name; *c != '\0'; ++c) {
    if (*c < '0' || *c > '9') return false;
  }
  return true;
}

// Whether /proc/<path>/ns/net, relative to `dir_fd`, is namespace `id`. A zombie or an ended
// process has no namespace links left, so it never matches.
bool in_netns(int dir_fd, const std::string& path, const NetnsId& id) {
  struct stat st {};
  if (::fstatat(dir_fd, (path + "/ns/net").c_str(), &st, 0) != 0) return false;
  return static_cast<std::uint64_t>(st.st_dev) == id.dev &&
         static_cast<std::uint64_t>(st.st_ino) == id.ino;
}

template <typename Fn>
void for_each_pid_entry(int dir_fd, Fn&& fn) {
  int dup_fd = ::fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
  if (dup_fd < 0) return;
  DIR* dir = ::fdopendir(dup_fd);  // owns dup_fd from here on
  if (dir == nullptr) {
    ::close(dup_fd);
    return;
  }
  while (dirent* entry = ::readdir(dir)) {
    if (is_pid(entry->d_name)) fn(entry->d_name);
  }
  ::closedir(dir);
}

// Waits until every process behind `pidfds` has exited, at most `budget_ms` in all.
void wait_for_exit(const std::vector<UniqueFd>& pidfds, int budget_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(budget_ms);
  for (const auto& pidfd : pidfds) {
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                      deadline - std::chrono::steady_clock::now())
                      .count();
      if (left <= 0) return;
      pollfd p{pidfd.get(), POLLIN, 0};
      int n = ::poll(&p, 1, static_cast<int>(left));
      if (n != 0 && !(n < 0 && errno == EINTR)) break;
    }
  }
}

}  // namespace

Result<NetnsId> netns_id_of_fd(int netns_fd) {
  struct stat st {};
  if (::fstat(netns_fd, &st) != 0) return fail_errno("fstat network namespace", errno);
  return NetnsId{static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino)};
}

Result<NetnsHandle> NetnsHandle::of(int netns_fd) {
  if (const char* knob = std::getenv("NETCELL_NETNS_HANDLES");
      knob && std::strcmp(knob, "off") == 0) {
    return fail(ErrorCode::kUnsupported, "file handles for namespaces turned off");
  }
  NetnsHandle out;
  out.handle_.resize(sizeof(file_handle) + kMaxHandleBytes);
  auto* fh = reinterpret_cast<file_handle*>(out.handle_.data());
  fh->handle_bytes = kMaxHandleBytes;
  int mount_id = 0;
  if (::name_to_handle_at(netns_fd, "", fh, &mount_id, AT_EMPTY_PATH) != 0) {
    if (errno == EOPNOTSUPP || errno == ENOSYS || errno == EOVERFLOW) {
      return fail(ErrorCode::kUnsupported, "this kernel has no file handles for namespaces");
    }
    return fail_errno("name_to_handle_at network namespace", errno);
  }
  out.handle_.resize(sizeof(file_handle) + fh->handle_bytes);
  return out;
}

Result<std::optional<UniqueFd>> NetnsHandle::reopen() const {
  // open_by_handle_at needs an fd on the file system the handle is of: any nsfs file will do.
  UniqueFd nsfs(::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC));
  if (!nsfs) return fail_errno("open /proc/self/ns/net", errno);
  std::vector<unsigned char> copy = handle_;  // the call takes a non-const handle
  int fd = ::open_by_handle_at(nsfs.get(), reinterpret_cast<file_handle*>(copy.data()),
                               O_RDONLY | O_CLOEXEC);
  if (fd >= 0) return std::optional<UniqueFd>(UniqueFd(fd));
  if (errno == ESTALE || errno == ENOENT) return std::optional<UniqueFd>();
  return fail_errno("open_by_handle_at network namespace", errno);
}

std::vector<pid_t> processes_in(const NetnsId& id, bool threads_too) {
  std::vector<pid_t> out;
  UniqueFd proc(::open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!proc) return out;
  for_each_pid_entry(proc.get(), [&](const char* pid) {
    bool found = in_netns(proc.get(), pid, id);
    if (!found && threads_too) {
      UniqueFd tasks(::openat(proc.get(), (std::string(pid) + "/task").c_str(),
                              O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      if (tasks) {
        for_each_pid_entry(tasks.get(), [&](const char* tid) {
          if (!found && in_netns(tasks.get(), tid, id)) found = true;
        });
      }
    }
    if (found) out.push_back(static_cast<pid_t>(std::stol(pid)));
  });
  return out;
}

int end_processes_in(const NetnsId& id, int max_rounds) {
  int signalled = 0;
  const pid_t self = ::getpid();
  UniqueFd proc(::open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!proc) return 0;
  for (int round = 0; round < max_rounds; ++round) {
    std::vector<pid_t> pids = processes_in(id, /*threads_too=*/false);
    pids.erase(std::remove(pids.begin(), pids.end(), self), pids.end());
    if (pids.empty()) break;
    std::vector<UniqueFd> ending;
    for (pid_t pid : pids) {
      // The pidfd pins the process the pid names now; checking its namespace after opening it
      // means a pid reused since the scan is never signalled.
      UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
      if (!pidfd || !in_netns(proc.get(), std::to_string(pid), id)) continue;
      if (::syscall(SYS_pidfd_send_signal, pidfd.get(), SIGKILL, nullptr, 0U) == 0) {
        ++signalled;
        ending.push_back(std::move(pidfd));
      }
    }
    // A pidfd turns readable once its process has exited, which is after the process dropped its
    // namespaces: waiting lets an unreferenced namespace be freed by the kernel, not cut.
    wait_for_exit(ending, kExitWaitMs);
  }
  return signalled;
}

Result<void> cut_links(int netns_fd) {
  auto socket = open_netlink_in(netns_fd);
  if (!socket) return fail(std::move(socket).error().with_context("cut links"));
  auto links = list_links(*socket);
  if (!links) return fail(std::move(links).error().with_context("cut links"));
  for (const auto& link : *links) {
    if (link.name == "lo") continue;
    auto deleted = socket->request(rtnl::link_delete(link.name));
    // A veth whose other end was deleted first is already gone with it.
    if (!deleted && deleted.error().code() != ErrorCode::kNotFound) {
      return fail(std::move(deleted).error().with_context("cut link " + link.name));
    }
  }
  return ok();
}

}  // namespace netcell::kernel
