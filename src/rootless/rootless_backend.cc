#include "rootless/rootless_backend.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/nsfs.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <system_error>

#include "core/files.h"
#include "core/serialize.h"
#include "core/service_control.h"
#include "core/unique_fd.h"
#include "linux/firewall.h"
#include "linux/linux_backend.h"
#include "rootless/hostfwd.h"
#include "rootless/session.h"

namespace netcell {
namespace {

Error not_yet(const std::string& what) {
  return Error(ErrorCode::kUnsupported, what + " not supported in rootless mode yet");
}

// The IPv4 addresses of the calling process's network namespace (the user's own network: the
// host's addresses), read before the process joins the session.
std::vector<std::string> own_ipv4_addresses() {
  std::vector<std::string> out;
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return out;
  for (ifaddrs* a = list; a != nullptr; a = a->ifa_next) {
    if (a->ifa_addr == nullptr || a->ifa_addr->sa_family != AF_INET) continue;
    char text[INET_ADDRSTRLEN] = {};
    const auto* in = reinterpret_cast<const sockaddr_in*>(a->ifa_addr);
    if (::inet_ntop(AF_INET, &in->sin_addr, text, sizeof text) != nullptr) out.emplace_back(text);
  }
  ::freeifaddrs(list);
  return out;
}

// Rootless private and bridged namespaces reach the internet through the helper, which connects
// from the host: the host's own addresses would be reachable too (only loopback is closed by the
// helper's flags), so the session's network namespace refuses forwarded traffic to them, and to the
// helper's own 10.0.2.0/24 (its gateway and DNS), in a table of its own: made when the session
// starts (the addresses the starting command saw), renewed by gc, gone with the session. Only
// connections the namespace opens are refused: the replies of one made to a published port go
// back to its client, which may be the host itself or come through the gateway.
std::string guard_script(const std::vector<std::string>& host_addresses) {
  std::string elements = "10.0.2.0/24, 127.0.0.0/8";
  for (const auto& a : host_addresses) {
    if (a.rfind("127.", 0) != 0) elements += ", " + a;
  }
  return "add table ip netcell_rootless\n"
         "add set ip netcell_rootless host_addrs { type ipv4_addr; flags interval; auto-merge; }\n"
         "flush set ip netcell_rootless host_addrs\n"
         "add element ip netcell_rootless host_addrs { " +
         elements +
         " }\n"
         "add chain ip netcell_rootless forward { type filter hook forward priority -10; }\n"
         "flush chain ip netcell_rootless forward\n"
         "add rule ip netcell_rootless forward iifname != \"tap0\" ct direction original ip daddr "
         "@host_addrs reject with icmp type admin-prohibited\n";
}

// The lowest port an unprivileged process may listen on in the calling process's network
// namespace (the user's own network), read before the process joins the session.
std::uint16_t unprivileged_port_start() {
  std::ifstream in("/proc/sys/net/ipv4/ip_unprivileged_port_start");
  long value = 1024;
  if (!(in >> value) || value < 0) value = 1024;
  return static_cast<std::uint16_t>(value > 65535 ? 65535 : value);
}

// What the Linux backend inside the session is given: a published port arrives at the session's
// own address (the helper's guest address), whatever host address the helper listens on.
NamespaceInfo inside_session(const NamespaceInfo& info) {
  NamespaceInfo inner = info;
  for (auto& f : inner.port_forwards) f.host_ip.reset();
  return inner;
}

class RootlessBackend final : public Backend {
 public:
  explicit RootlessBackend(const std::string& run_dir)
      : paths_(run_dir),
        host_addresses_(own_ipv4_addresses()),
        port_start_(unprivileged_port_start()) {
    LinuxBackendOptions options;
    options.netns_dir = paths_.netns_dir;
    options.etc_netns_dir = paths_.etc_dir;
    options.state_dir = run_dir;
    // The user's own ids, as their commands see them inside the nested user namespace.
    options.nested_uid = static_cast<int>(::geteuid());
    options.nested_gid = static_cast<int>(::getegid());
    inner_ = make_linux_backend(options);
  }

  // The session is this process's while it holds this backend (its NamespaceManager): it ends
  // here, when no namespace and no other member needs it, rather than with the last namespace,
  // so that the process may go on (a process joins one session only).
  ~RootlessBackend() override { (void)stop_if_unused(); }

  BackendKind kind() const override { return BackendKind::kRootless; }
  bool enforces_isolation() const override { return true; }

  Result<NamespaceInfo> plan(const NamespaceInfo& info) override {
    if (info.mode == IsolationMode::kShared) return inner_->plan(info);
    NETCELL_TRY(check_supported(info));
    NETCELL_TRY(enter(/*start=*/true));
    auto allowed = info.adopted_from_pid > 0 ? adoptable_in_session(info.adopted_from_pid) : ok();
    if (allowed) allowed = rootless::check_ports_free(paths_, info);
    auto planned =
        allowed ? inner_->plan(inside_session(info)) : Result<NamespaceInfo>(fail(allowed.error()));
    if (!planned) return planned;
    planned->port_forwards = info.port_forwards;
    return planned;
  }

  Result<NamespaceInfo> create(const NamespaceInfo& info, const NetworkInfo* network) override {
    if (info.mode == IsolationMode::kShared) return inner_->create(info, network);
    NETCELL_TRY(check_supported(info));
    NETCELL_TRY(enter(/*start=*/true));
    // The helper's forwards first: a host port someone else holds fails before anything else is
    // made.
    auto published = rootless::publish(paths_, info);
    auto made = published ? inner_->create(inside_session(info), network)
                          : Result<NamespaceInfo>(fail(published.error()));
    if (!made) {
      if (published) (void)rootless::unpublish(paths_, info.name);
      return made;
    }
    made->port_forwards = info.port_forwards;
    return made;
  }

  Result<void> destroy(const NamespaceInfo& info, const DestroyOptions& options) override {
    if (info.mode == IsolationMode::kShared) return inner_->destroy(info, options);
    auto in = enter(/*start=*/false);
    if (!in) return fail(in.error());
    if (!*in) return ok();  // everything it had went with the holder's namespaces
    auto unpublished = rootless::unpublish(paths_, info.name);
    auto removed = inner_->destroy(inside_session(info), options);
    if (removed && !unpublished) removed = fail(unpublished.error());
    return removed;
  }

  bool alive(const NamespaceInfo& info) override {
    if (info.mode == IsolationMode::kShared) return inner_->alive(info);
    auto in = enter(/*start=*/false);
    return in && *in && inner_->alive(info);
  }

  Result<NamespaceStats> stats(const NamespaceInfo& info) override {
    NETCELL_TRY(need_session(info));
    return inner_->stats(info);
  }

  Result<void> verify(const NamespaceInfo& info) override {
    NETCELL_TRY(need_session(info));
    return inner_->verify(info);
  }

  Result<Child> spawn(const NamespaceInfo& info, const std::vector<std::string>& argv,
                      const SpawnOptions& options) override {
    NETCELL_TRY(need_session(info));
    return inner_->spawn(info, argv, options);
  }

  // A bridged network's bridge lives in the session's network namespace, which goes with the
  // last namespace: the network is journaled (RUN_DIR/rootless/networks/NAME) and its bridge made
  // again whenever a session starts.
  Result<void> create_network(const NetworkInfo& network) override {
    NETCELL_TRY(enter(/*start=*/true));
    auto made = inner_->create_network(network);
    if (made) {
      made = journal_network(network);
      if (!made) (void)inner_->destroy_network(network);
    }
    return made;
  }
  Result<void> destroy_network(const NetworkInfo& network) override {
    auto in = enter(/*start=*/false);
    if (!in) return fail(in.error());
    auto removed = *in ? inner_->destroy_network(network) : ok();
    if (removed) {
      ::unlink(network_journal(network.name).c_str());
      ::rmdir(paths_.networks_dir.c_str());  // each fails while anything else is there
      ::rmdir(paths_.dir.c_str());
    }
    return removed;
  }

  Result<void> release_shared_state() override {
    auto in = enter(/*start=*/false);
    if (!in) return fail(in.error());
    if (!*in) return ok();  // the firewall table lived in the holder's network namespace
    return inner_->release_shared_state();
  }

  // Asked only while a private namespace is being made: the holder's routes are the ones its
  // addresses must not overlap.
  Result<std::vector<IpPrefix>> host_routes() override {
    NETCELL_TRY(enter(/*start=*/true));
    return inner_->host_routes();
  }

  Result<bool> host_link_exists(const std::string& name) override {
    auto in = enter(/*start=*/false);
    if (!in) return fail(in.error());
    if (!*in) return false;
    return inner_->host_link_exists(name);
  }

  Result<std::uint64_t> netns_of_pid(pid_t pid) override {
    auto netns = inner_->netns_of_pid(pid);
    if (!netns && netns.error().sys_errno() == EACCES) {
      return fail(ErrorCode::kPermissionDenied, "it is not one of the user's processes");
    }
    return netns;
  }
  Result<std::uint64_t> netns_of(const NamespaceInfo& info) override {
    NETCELL_TRY(need_session(info));
    return inner_->netns_of(info);
  }

  // Topology links and settings are the Linux backend's, between and in the session's
  // namespaces.
  Result<bool> connect(const NamespaceInfo& a, const NamespaceInfo& b,
                       const LinkConfig& link) override {
    NETCELL_TRY(need_session(a));
    NETCELL_TRY(need_session(b));
    return inner_->connect(a, b, link);
  }
  // A policy is the Linux backend's elements in the session's network namespace, where the
  // workload has no capability; its domain rules are learned there by netcell's resolver, which
  // runs inside the session (prepare_service).
  Result<void> change_egress(const NamespaceInfo& info,
                             const std::optional<EgressPolicy>& previous) override {
    if (!info.egress && !previous) return ok();
    NETCELL_TRY(need_session(info));
    return inner_->change_egress(info, previous);
  }
  Result<EgressCounters> egress_counters(const NamespaceInfo& info) override {
    NETCELL_TRY(need_session(info));
    return inner_->egress_counters(info);
  }
  // What the resolver learned, and its port, are elements of the session's `ip netcell` table:
  // without a session they went with its network namespace.
  Result<void> change_learned(const NamespaceInfo& info,
                              const std::vector<LearnedDestination>& removed,
                              const std::vector<LearnedDestination>& added) override {
    if (removed.empty() && added.empty()) return ok();
    auto in = enter(/*start=*/false);
    if (!in) return fail(in.error());
    if (!*in) {
      if (added.empty()) return ok();
      return fail(ErrorCode::kNotFound,
                  "the user's rootless session is gone, and namespace '" + info.name + "' with it");
    }
    return inner_->change_learned(info, removed, added);
  }
  Result<std::vector<PolicyCounter>> learned_counters(
      const NamespaceInfo& info, const std::vector<LearnedDestination>& learned) override {
    if (learned.empty()) return std::vector<PolicyCounter>{};
    NETCELL_TRY(need_session(info));
    return inner_->learned_counters(info, learned);
  }
  Result<void> set_resolver_port(std::optional<std::uint16_t> previous,
                                 std::optional<std::uint16_t> port) override {
    auto in = enter(/*start=*/false);
    if (!in) return fail(in.error());
    if (!*in) {
      if (!port) return ok();
      return fail(ErrorCode::kNotFound, "the user's rootless session is gone");
    }
    return inner_->set_resolver_port(previous, port);
  }
  // netcell's resolver serves the session's namespaces from inside it: it is started by this
  // process once it has joined, and inherits the session's user, mount and network namespaces
  // (its learned elements and DNS redirect are then the session's table's).
  Result<void> prepare_service() override {
    auto in = enter(/*start=*/false);
    if (!in) return fail(in.error());
    if (!*in) {
      return fail(ErrorCode::kNotFound,
                  "rootless: no session to start netcell's resolver in (its namespaces are gone; "
                  "netcell gc removes their records)");
    }
    return ok();
  }
  Result<void> configure(const NamespaceInfo& info, const NamespaceExtras& extras) override {
    NETCELL_TRY(need_session(info));
    return inner_->configure(info, extras);
  }

  // The helper is started without IPv6: private namespaces are IPv4-only for now.
  std::string ipv6_unavailable() override { return "rootless mode has no IPv6 uplink yet"; }
  // The helper's cost is per packet: namespaces get its link's MTU unless they name one.
  std::uint32_t default_mtu() const override { return rootless::kHelperMtu; }

  void collect_garbage(std::vector<std::string>& removed,
                       std::vector<std::string>& errors) override {
    std::optional<rootless::Session> before = session_;
    // A process that was using the session before it asked keeps it while its manager lives.
    const bool member_before = session_.has_value();
    if (!before) before = rootless::read_session(paths_);
    if (auto in = enter(/*start=*/false); !in) errors.push_back(in.error().to_string());
    if (before && !member_before && stop_if_unused()) {
      notes_.push_back("rootless session of holder " + std::to_string(before->holder.pid) +
                       " (no namespace uses it)");
    } else if (session_ && rootless::alive(session_->holder)) {
      // The host's addresses may have changed since the session started.
      if (auto guarded = guard_host_addresses(); !guarded) {
        errors.push_back(guarded.error().to_string());
      }
      if (auto locked = rootless::lock_session(paths_); locked)
        rootless::reconcile_ports(paths_, notes_, errors);
    }
    if (!session_ || !rootless::alive(session_->holder)) {
      // A start killed before it wrote the record leaves the helper's log (its holder and helper
      // end by themselves: holder.h, commit). Not while another invocation starts one.
      if (auto locked = rootless::lock_session(paths_); locked) rootless::forget_unrecorded(paths_);
    }
    removed.insert(removed.end(), notes_.begin(), notes_.end());
    notes_.clear();
    errors.insert(errors.end(), errors_.begin(), errors_.end());
    errors_.clear();
  }

 private:
  // What this phase of rootless mode does not do, refused before anything is made.
  Result<void> check_supported(const NamespaceInfo& info) const {
    for (const auto& f : info.port_forwards) {
      if (f.host_ip && !f.host_ip->is_v4()) {
        return fail(ErrorCode::kUnsupported, "rootless: cannot publish " + f.to_string() +
                                                 ": rootless mode has no IPv6 uplink yet");
      }
      if (f.host_port < port_start_) {
        return fail(ErrorCode::kPermissionDenied,
                    "rootless: cannot publish host port " + std::to_string(f.host_port) +
                        ": ports below " + std::to_string(port_start_) +
                        " (net.ipv4.ip_unprivileged_port_start) need root; an administrator may "
                        "lower that sysctl");
      }
    }
    if (!info.adopted_netns_path.empty()) return fail(not_yet("adopting a namespace by path is"));
    return ok();
  }

  std::string network_journal(const std::string& name) const {
    return paths_.networks_dir + "/" + name;
  }

  Result<void> journal_network(const NetworkInfo& network) {
    if (::mkdir(paths_.networks_dir.c_str(), 0700) != 0 && errno != EEXIST) {
      return fail_errno("mkdir " + paths_.networks_dir, errno);
    }
    return write_atomically(network_journal(network.name), to_json(network).dump());
  }

  // The bridges of the journaled networks, made in a session that has just started.
  void restore_networks() {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(paths_.networks_dir, ec)) {
      const std::string name = e.path().filename().string();
      if (temp_file_writer(name)) continue;
      auto text = read_file(e.path().string(), 1 << 16);
      if (!text) continue;
      auto j = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
      auto network = j.is_discarded() ? Result<NetworkInfo>(fail(ErrorCode::kCorrupt, "not JSON"))
                                      : network_info_from_json(j);
      auto made = network ? inner_->create_network(*network) : Result<void>(fail(network.error()));
      if (!made) errors_.push_back("rootless: network " + name + ": " + made.error().to_string());
    }
  }

  // Ends a session that is unused or whose holder is gone: its namespaces, bridges, firewall and
  // forwarding go (or went) with the holder's namespaces, so what the Linux backend remembered of
  // the "host" goes too.
  Result<void> end_session(const rootless::Session& session) {
    // netcell's resolver lives in the session's namespaces (and would keep them): it goes first.
    if (auto service = service::read(paths_.run_dir); service && service::alive(*service)) {
      (void)service::stop(paths_.run_dir);
    }
    for (const char* saved : {"/ip_forward.saved", "/send_redirects.saved"}) {
      ::unlink((paths_.run_dir + saved).c_str());
    }
    return rootless::stop_session(paths_, session);
  }

  Result<void> need_session(const NamespaceInfo& info) {
    if (info.mode == IsolationMode::kShared) return ok();
    auto in = enter(/*start=*/false);
    if (!in) return fail(in.error());
    if (!*in) {
      return fail(ErrorCode::kNotFound, "the user's rootless session is gone, and namespace '" +
                                            info.name +
                                            "' with it (netcell gc removes its record)");
    }
    return ok();
  }

  // Makes this process a member of the user's session, starting one when `start` and there is
  // none. A dead helper of a live holder is started again first: it must run in the user's own
  // network, which this process leaves when it joins. False: there is no session (and none was
  // started).
  Result<bool> enter(bool start) {
    if (session_) {
      if (rootless::alive(session_->holder)) return true;
      // This process lives in namespaces whose holder is gone, and cannot join another's.
      if (!start) return false;
      return fail(ErrorCode::kConflict, rootless::kJoinedBefore);
    }
    // Found, repaired, started and joined under the session's lock: another invocation (an
    // exec, which holds no run dir lock) may be doing the same right now.
    auto locked = rootless::lock_session(paths_);
    if (!locked) return fail(locked.error());
    auto found = rootless::read_session(paths_);
    bool helper_restarted = false;
    if (found && !rootless::alive(found->holder)) {
      if (end_session(*found)) {
        notes_.push_back("rootless session of holder " + std::to_string(found->holder.pid) +
                         " (holder exited)");
      }
      found.reset();
    }
    if (found && !rootless::alive(found->helper)) {
      auto restarted = rootless::restart_helper(paths_, *found);
      if (!restarted) return fail(restarted.error());
      notes_.push_back("rootless uplink helper " + std::to_string(found->helper.pid) +
                       " (exited; started again as " + std::to_string(restarted->helper.pid) + ")");
      found = *restarted;
      helper_restarted = true;
    }
    if (!found) {
      if (!start) return false;
      // It could not join the one it would start.
      if (rootless::joined_before()) return fail(ErrorCode::kConflict, rootless::kJoinedBefore);
      auto started = rootless::start_session(paths_);
      if (!started) return fail(started.error());
      found = *started;
      // A session this process cannot join (one with threads) is of no use to anyone: it goes.
      if (auto joined = rootless::join(found->holder); !joined) {
        (void)end_session(*found);
        return fail(joined.error());
      }
      session_ = *found;
      if (auto joined = become_member(); !joined) {
        (void)end_session(*session_);
        return fail(joined.error());
      }
      // Before any namespace exists: a session is never without its guard.
      if (auto guarded = guard_host_addresses(); !guarded) {
        (void)end_session(*session_);
        return fail(guarded.error());
      }
      restore_networks();
      return true;
    }
    NETCELL_TRY(rootless::join(found->holder));
    session_ = *found;
    NETCELL_TRY(become_member());
    // A new helper has none of the published ports yet.
    if (helper_restarted) rootless::reconcile_ports(paths_, notes_, errors_);
    return true;
  }

  // Ends the session once no namespace of netcell's is mounted in it and no other process is a
  // member (a library process that goes on after its last namespace, an exec). True when it did.
  bool stop_if_unused() {
    if (!session_ || !rootless::alive(session_->holder)) return false;
    auto locked = rootless::lock_session(paths_);
    if (!locked) return false;
    std::error_code ec;
    std::filesystem::directory_iterator it(paths_.netns_dir, ec);
    if (ec || it != std::filesystem::directory_iterator()) return false;
    if (member_ && rootless::other_members(member_.get())) return false;
    (void)end_session(*session_);
    return true;
  }

  // Called under the session's lock, once this process has joined.
  Result<void> become_member() {
    if (member_) return ok();
    auto fd = rootless::member(paths_);
    if (!fd) return fail(fd.error());
    member_ = std::move(*fd);
    return ok();
  }

  // The network namespace of `pid` can be adopted only when it belongs to the session's user
  // namespace or one nested in it (a process started by `netcell exec` or `run`, or a child of
  // one): only there does the session hold CAP_NET_ADMIN. A namespace the user made elsewhere,
  // even with their own uid, belongs to a user namespace beside the session's; another user's
  // process cannot even be looked at.
  static Result<void> adoptable_in_session(pid_t pid) {
    const std::string what =
        "rootless: cannot adopt the network namespace of process " + std::to_string(pid);
    const std::string path = "/proc/" + std::to_string(pid) + "/ns/net";
    const std::string outside =
        what +
        ": it was made outside the user's rootless session (only the namespaces of "
        "processes started by netcell exec or run, or made by them, can be adopted)";
    UniqueFd net(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!net && (errno == EACCES || errno == EPERM)) {
      // From inside the session, a process of a user namespace beside it cannot be looked at
      // either (its capabilities are not a subset of the session's); the owner tells which.
      struct stat self {
      }, theirs{};
      bool same_user = ::stat("/proc/self", &self) == 0 &&
                       ::stat(("/proc/" + std::to_string(pid)).c_str(), &theirs) == 0 &&
                       self.st_uid == theirs.st_uid;
      return fail(ErrorCode::kPermissionDenied,
                  same_user ? outside : what + ": it is not one of the user's processes");
    }
    if (!net) return fail_errno(what + ": open " + path, errno);
    struct stat mine {};
    if (::stat("/proc/self/ns/user", &mine) != 0) return fail_errno(what, errno);
    // Up from the namespace's owner: NS_GET_PARENT fails (EPERM) past this process's own user
    // namespace, so the walk ends there at the latest.
    UniqueFd owner(::ioctl(net.get(), NS_GET_USERNS));
    for (int depth = 0; owner && depth < 33; ++depth) {
      struct stat st {};
      if (::fstat(owner.get(), &st) != 0) break;
      if (st.st_dev == mine.st_dev && st.st_ino == mine.st_ino) return ok();
      owner.reset(::ioctl(owner.get(), NS_GET_PARENT));
    }
    return fail(ErrorCode::kPermissionDenied, outside);
  }

  Result<void> guard_host_addresses() {
    if (!guard_) {
      auto fw = kernel::Firewall::open("netcell:" + paths_.run_dir);
      if (!fw) return fail(fw.error());
      guard_.emplace(std::move(*fw));
    }
    auto applied = guard_->apply(guard_script(host_addresses_));
    if (!applied) return fail(std::move(applied).error().with_context("rootless host guard"));
    return ok();
  }

  rootless::Paths paths_;
  std::vector<std::string> host_addresses_;
  std::uint16_t port_start_ = 1024;  // net.ipv4.ip_unprivileged_port_start of the user's network
  std::optional<kernel::Firewall> guard_;
  std::unique_ptr<Backend> inner_;
  std::optional<rootless::Session> session_;
  UniqueFd member_;                  // rootless::member(): this process needs the session
  std::vector<std::string> notes_;   // what enter() repaired or ended, for gc's report
  std::vector<std::string> errors_;  // what enter() failed to repair, likewise
};

}  // namespace

std::unique_ptr<Backend> make_rootless_backend(const std::string& run_dir) {
  return std::make_unique<RootlessBackend>(run_dir);
}

}  // namespace netcell
