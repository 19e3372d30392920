#include "linux/linux_backend.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <map>
#include <mutex>

#include "linux/netlink.h"
#include "linux/netns.h"
#include "linux/spawn.h"

namespace netcell {
namespace {

using kernel::NetlinkSocket;

// Interfaces and counters of one network namespace, read over a socket opened inside it.
struct NetnsSnapshot {
  std::vector<kernel::LinkRecord> links;
  std::vector<kernel::AddrRecord> addresses;
};

Result<NetnsSnapshot> snapshot(NetlinkSocket& socket, bool with_addresses) {
  NetnsSnapshot snap;
  auto links = kernel::list_links(socket);
  if (!links) return fail(links.error());
  snap.links = std::move(*links);
  if (with_addresses) {
    auto addrs = kernel::list_addresses(socket);
    if (!addrs) return fail(addrs.error());
    snap.addresses = std::move(*addrs);
  }
  return snap;
}

// Reads the namespace at `path` (or the caller's own when empty).
Result<NetnsSnapshot> snapshot_of(const std::string& path, bool with_addresses) {
  if (path.empty()) {
    auto socket = NetlinkSocket::open();
    if (!socket) return fail(socket.error());
    return snapshot(*socket, with_addresses);
  }
  auto fd = kernel::open_netns(path);
  if (!fd) return fail(fd.error());
  NetnsSnapshot snap;
  NETCELL_TRY(kernel::run_in_netns(fd->get(), [&]() -> Result<void> {
    auto socket = NetlinkSocket::open();
    if (!socket) return fail(socket.error());
    auto s = snapshot(*socket, with_addresses);
    if (!s) return fail(s.error());
    snap = std::move(*s);
    return ok();
  }));
  return snap;
}

std::vector<InterfaceInfo> interfaces_of(const NetnsSnapshot& snap) {
  std::vector<InterfaceInfo> out;
  for (const auto& link : snap.links) {
    InterfaceInfo iface{link.name, {}, link.mtu};
    for (const auto& a : snap.addresses) {
      if (a.ifindex == link.ifindex) iface.addresses.push_back(a.prefix);
    }
    out.push_back(std::move(iface));
  }
  return out;
}

class LinuxBackend final : public Backend {
 public:
  explicit LinuxBackend(LinuxBackendOptions options) : options_(std::move(options)) {}

  BackendKind kind() const override { return BackendKind::kLinux; }
  bool enforces_isolation() const override { return true; }

  Result<NamespaceInfo> plan(const NamespaceInfo& info) override {
    NamespaceInfo out = info;
    if (info.mode == IsolationMode::kShared) return out;  // the host's own network
    if (info.mode != IsolationMode::kFull) {
      return fail(ErrorCode::kUnsupported,
                  std::string(to_string(info.mode)) + " mode is not implemented yet");
    }
    out.netns_path = path_of(info.name);
    struct stat st {};
    if (::lstat(out.netns_path.c_str(), &st) == 0) {
      return fail(ErrorCode::kAlreadyExists,
                  out.netns_path + " already exists (a network namespace netcell does not manage)");
    }
    return out;
  }

  Result<NamespaceInfo> create(const NamespaceInfo& info) override {
    NamespaceInfo out = info;
    if (info.mode == IsolationMode::kShared) return out;
    NETCELL_TRY(prepare_dir());
    NETCELL_TRY(kernel::create_named_netns(options_.netns_dir, info.name));
    auto snap = snapshot_of(out.netns_path, /*with_addresses=*/true);
    if (!snap) {
      (void)kernel::remove_named_netns(options_.netns_dir, info.name);
      return fail(std::move(snap).error().with_context("read back"));
    }
    out.interfaces = interfaces_of(*snap);
    return out;
  }

  Result<void> destroy(const NamespaceInfo& info) override {
    if (info.mode == IsolationMode::kShared) return ok();
    // Only a path netcell itself recorded for this name is ever unmounted: a hand-edited record
    // pointing elsewhere is refused rather than obeyed.
    if (info.netns_path.empty()) return ok();  // creation never got that far
    if (info.netns_path != path_of(info.name)) {
      return fail(ErrorCode::kCorrupt, "record points at " + info.netns_path + ", not " +
                                           path_of(info.name) + "; refusing to remove it");
    }
    return kernel::remove_named_netns(options_.netns_dir, info.name);
  }

  bool alive(const NamespaceInfo& info) override {
    if (info.mode == IsolationMode::kShared) return true;
    return !info.netns_path.empty() && kernel::is_netns_mount(info.netns_path);
  }

  Result<NamespaceStats> stats(const NamespaceInfo& info) override {
    std::string path = info.mode == IsolationMode::kShared ? "" : info.netns_path;
    if (!path.empty() && !kernel::is_netns_mount(path)) {
      return fail(ErrorCode::kNotFound, "network namespace " + path + " is gone");
    }
    auto snap = snapshot_of(path, /*with_addresses=*/false);
    if (!snap) return fail(snap.error());
    NamespaceStats stats;
    stats.name = info.name;
    stats.total.name = "total";
    for (const auto& link : snap->links) {
      stats.interfaces.push_back(link.stats);
      stats.total += link.stats;
    }
    return stats;
  }

  Result<Child> spawn(const NamespaceInfo& info, const std::vector<std::string>& argv,
                      const SpawnOptions& options) override {
    kernel::SpawnRequest request;
    request.argv = argv;
    request.new_pid_namespace = options.new_pid_namespace;
    request.init = options.init;
    UniqueFd netns;
    if (info.mode != IsolationMode::kShared) {
      auto fd = kernel::open_netns(info.netns_path);
      if (!fd) return fail(fd.error());
      netns = std::move(*fd);
      request.netns_fd = netns.get();
      request.netns_name = info.name;
      std::string etc = options_.etc_netns_dir + "/" + info.name;
      struct stat st {};
      if (::stat(etc.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) request.etc_dir = etc;
    }
    return kernel::spawn(request);
  }

  Result<std::uint64_t> netns_of_pid(pid_t pid) override {
    return kernel::netns_inode_of_path("/proc/" + std::to_string(pid) + "/ns/net");
  }

  Result<std::uint64_t> netns_of(const NamespaceInfo& info) override {
    if (info.mode == IsolationMode::kShared)
      return kernel::netns_inode_of_path("/proc/self/ns/net");
    return kernel::netns_inode_of_path(info.netns_path);
  }

 private:
  std::string path_of(const std::string& name) const { return options_.netns_dir + "/" + name; }

  Result<void> prepare_dir() {
    std::lock_guard lock(mu_);
    if (dir_ready_) return ok();
    NETCELL_TRY(kernel::prepare_netns_dir(options_.netns_dir));
    dir_ready_ = true;
    return ok();
  }

  LinuxBackendOptions options_;
  std::mutex mu_;
  bool dir_ready_ = false;
};

}  // namespace

std::unique_ptr<Backend> make_linux_backend(const LinuxBackendOptions& options) {
  return std::make_unique<LinuxBackend>(options);
}

}  // namespace netcell
