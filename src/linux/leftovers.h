// netcell: what can outlive a network namespace's unmount, and how destroy makes sure nothing of
// its network does.
//
// Unmounting a named namespace drops netcell's reference only. The kernel frees the namespace, and
// with it the veth whose host end carries the namespace's gateway address and routes, once the
// last reference is gone (notes §1.4): a process or thread inside, an open nsfs file, a socket
// made inside (which keeps its namespace even after its process moved elsewhere), another bind
// mount. Any of these would keep a live path from the namespace to the host. So destroy:
//   1. (optionally) ends every process inside with SIGKILL (end_processes_in);
//   2. unmounts, then asks the kernel whether the namespace is still referenced, without taking a
//      reference itself: an nsfs file handle (Linux 6.18+) opens only while the namespace lives
//      (NetnsHandle). On kernels without nsfs handles it looks for processes and threads inside
//      instead (processes_in), which misses fds and sockets held from outside;
//   3. if it lives on, deletes every link inside but lo (cut_links) synchronously, which deletes
//      the veth's host end with its address and routes: what is left inside has only loopback.
// Only the namespace's own links are deleted, through a socket opened inside it, so nothing of
// anyone else's is ever touched.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/unique_fd.h"
#include "netcell/result.h"

namespace netcell::kernel {

// The identity of a network namespace: device and inode of its nsfs file.
struct NetnsId {
  std::uint64_t dev = 0;
  std::uint64_t ino = 0;
  friend bool operator==(const NetnsId&, const NetnsId&) = default;
};
Result<NetnsId> netns_id_of_fd(int netns_fd);

// A handle that names a network namespace without keeping it alive.
class NetnsHandle {
 public:
  // kUnsupported when the kernel cannot make file handles of namespaces (before Linux 6.18), or
  // when NETCELL_NETNS_HANDLES=off is in the environment (to exercise the older kernels' way).
  static Result<NetnsHandle> of(int netns_fd);
  // An fd of the namespace while anything still holds it; nullopt once it has no references left
  // (the kernel is freeing it, or has).
  Result<std::optional<UniqueFd>> reopen() const;

 private:
  NetnsHandle() = default;
  std::vector<unsigned char> handle_;  // struct file_handle, header included
};

// Processes with a thread in namespace `id` (each process once), read from /proc. With
// `threads_too` false only the main thread's namespace counts (what a process "is in").
std::vector<pid_t> processes_in(const NetnsId& id, bool threads_too);

// Sends SIGKILL (through a pidfd, after checking again that the pid is still in `id`) to every
// process whose main thread is in namespace `id`, and repeats until a scan finds none (forks that
// race the scan are found by the next one), at most `max_rounds` times; each round waits (up to 2
// s) for the processes it signalled to exit. Returns how many it signalled; never signals a process
// outside the namespace, nor the caller.
int end_processes_in(const NetnsId& id, int max_rounds = 50);

// Deletes every link of the namespace `netns_fd` but lo, through a socket opened inside it. For a
// veth this deletes its peer outside as well, with the peer's addresses and routes. Synchronous:
// when it returns, those links are gone.
Result<void> cut_links(int netns_fd);

}  // namespace netcell::kernel
