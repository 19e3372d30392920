// netcell: persistent named network namespaces, interoperable with iproute2 (notes §1).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>

#include "core/unique_fd.h"
#include "linux/netlink.h"
#include "netcell/result.h"

namespace netcell::kernel {

// Makes `dir` exist and be a shared mount point, the way `ip netns add` does (mkdir, flock, make
// MS_SHARED|MS_REC, bind-to-self fallback on EINVAL), so bind mounts propagate to other mount
// namespaces. Idempotent.
Result<void> prepare_netns_dir(const std::string& dir);

// Creates dir/name as a persistent network namespace: placeholder file (O_EXCL: kAlreadyExists if
// the name is taken), unshare(CLONE_NEWNET) on the calling thread with every signal blocked, bind
// mount of /proc/thread-self/ns/net, lo brought up inside, setns back (the process aborts in the
// practically impossible case that the thread cannot return). Returns the rtnetlink socket opened
// inside the namespace, which stays bound to it (notes §2.5): the caller configures the namespace
// from outside through it, with no thread or further setns. On failure removes what it made.
// RouterAdverts::kRefuse also sets the namespace's conf.default.accept_ra to 0, so that links made
// inside later take no router advertisement; kNoneCanArrive skips it, for a namespace whose only
// link will be its host end or bridge port, where the host's ip6 table drops every advertisement
// toward netcell's links and the bridge table every IPv6 frame from a port (firewall.cc). The write
// is not free: every network namespace that once looked a name up under /proc/sys/net/ipv6 keeps
// its own dentries of that path, which share hash chains with every other namespace's, so each
// later lookup of such a path, on the host too, walks one entry per such namespace (notes §8:
// measured 0.0015 -> 0.064 ms per lookup after 800 namespaces).
enum class RouterAdverts { kRefuse, kNoneCanArrive };
Result<NetlinkSocket> create_named_netns(const std::string& dir, const std::string& name,
                                         RouterAdverts adverts = RouterAdverts::kRefuse);

// Names the network namespace process `pid` already lives in as dir/name: placeholder file (O_EXCL:
// kAlreadyExists if the name is taken), bind mount of the nsfs file of /proc/PID/ns/net (through an
// fd opened first, so the namespace checked is the one mounted), lo brought up inside. Refuses
// (kInvalidArgument) the caller's own network namespace and that of PID 1. On failure removes what
// it made; the namespace itself always stays with the process.
Result<void> adopt_named_netns(const std::string& dir, const std::string& name, pid_t pid);

// umount2(MNT_DETACH) then unlink. A name that is already gone is success.
Result<void> remove_named_netns(const std::string& dir, const std::string& name);

// True when `path` is a live nsfs mount (statfs f_type == NSFS_MAGIC), not a stale placeholder.
bool is_netns_mount(const std::string& path);

Result<UniqueFd> open_netns(const std::string& path);
// The inode that identifies a network namespace: of an nsfs file, or /proc/PID/ns/net.
Result<std::uint64_t> netns_inode_of_path(const std::string& path);

// Runs `fn` on the process's namespace thread after it joined the network namespace `netns_fd`;
// the thread returns to its own namespace afterwards (or ends if it cannot), so no other thread
// ever changes namespace. One job at a time. Sockets `fn` opens stay bound to that namespace
// (notes §2.5).
Result<void> run_in_netns(int netns_fd, const std::function<Result<void>()>& fn);

// An rtnetlink socket opened inside the network namespace `netns_fd` (on the namespace thread)
// and bound to it for its whole life: the caller drives that namespace from its own thread.
Result<NetlinkSocket> open_netlink_in(int netns_fd);

}  // namespace netcell::kernel
