#include "rootless/rootless_backend.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <unistd.h>

#include <filesystem>
#include <optional>
#include <system_error>

#include "linux/firewall.h"
#include "linux/linux_backend.h"
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

// Rootless private namespaces reach the internet through the helper, which connects from the
// host: the host's own addresses would be reachable too (only loopback is closed by the helper's
// flags), so the session's network namespace refuses forwarded traffic to them, and to the
// helper's own 10.0.2.0/24 (its gateway and DNS), in a table of its own: made when the session
// starts (the addresses the starting command saw), renewed by gc, gone with the session.
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
         "add rule ip netcell_rootless forward iifname \"ncp*\" ip daddr @host_addrs reject with "
         "icmp type admin-prohibited\n";
}

class RootlessBackend final : public Backend {
 public:
  explicit RootlessBackend(const std::string& run_dir)
      : paths_(run_dir), host_addresses_(own_ipv4_addresses()) {
    LinuxBackendOptions options;
    options.netns_dir = paths_.netns_dir;
    options.etc_netns_dir = paths_.etc_dir;
    options.state_dir = run_dir;
    // The user's own ids, as their commands see them inside the nested user namespace.
    options.nested_uid = static_cast<int>(::geteuid());
    options.nested_gid = static_cast<int>(::getegid());
    inner_ = make_linux_backend(options);
  }

  BackendKind kind() const override { return BackendKind::kRootless; }
  bool enforces_isolation() const override { return true; }

  Result<NamespaceInfo> plan(const NamespaceInfo& info) override {
    if (info.mode == IsolationMode::kShared) return inner_->plan(info);
    NETCELL_TRY(check_supported(info));
    NETCELL_TRY(enter(/*start=*/true));
    auto planned = inner_->plan(info);
    if (!planned) stop_if_unused();
    return planned;
  }

  Result<NamespaceInfo> create(const NamespaceInfo& info, const NetworkInfo* network) override {
    if (info.mode == IsolationMode::kShared) return inner_->create(info, network);
    NETCELL_TRY(check_supported(info));
    NETCELL_TRY(enter(/*start=*/true));
    auto made = inner_->create(info, network);
    if (!made) stop_if_unused();
    return made;
  }

  Result<void> destroy(const NamespaceInfo& info, const DestroyOptions& options) override {
    if (info.mode == IsolationMode::kShared) return inner_->destroy(info, options);
    auto in = enter(/*start=*/false);
    if (!in) return fail(in.error());
    if (!*in) return ok();  // everything it had went with the holder's namespaces
    auto removed = inner_->destroy(info, options);
    // A private namespace's last one also releases the firewall and forwarding first
    // (release_shared_state), and that ends the session.
    if (info.network.empty()) stop_if_unused();
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

  Result<void> create_network(const NetworkInfo&) override {
    return fail(not_yet("bridged networks are"));
  }
  Result<void> destroy_network(const NetworkInfo& network) override {
    auto in = enter(/*start=*/false);
    if (!in) return fail(in.error());
    if (!*in) return ok();
    return inner_->destroy_network(network);
  }

  Result<void> release_shared_state() override {
    auto in = enter(/*start=*/false);
    if (!in) return fail(in.error());
    if (!*in) return ok();  // the firewall table lived in the holder's network namespace
    auto released = inner_->release_shared_state();
    stop_if_unused();
    return released;
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

  Result<std::uint64_t> netns_of_pid(pid_t pid) override { return inner_->netns_of_pid(pid); }
  Result<std::uint64_t> netns_of(const NamespaceInfo& info) override {
    NETCELL_TRY(need_session(info));
    return inner_->netns_of(info);
  }

  Result<bool> connect(const NamespaceInfo&, const NamespaceInfo&, const LinkConfig&) override {
    return fail(not_yet("topology links are"));
  }
  Result<void> change_egress(const NamespaceInfo& info,
                             const std::optional<EgressPolicy>& previous) override {
    if (!info.egress && !previous) return ok();
    return fail(not_yet("egress policies are"));
  }
  Result<EgressCounters> egress_counters(const NamespaceInfo&) override {
    return fail(not_yet("egress policies are"));
  }
  Result<void> change_learned(const NamespaceInfo&, const std::vector<LearnedDestination>&,
                              const std::vector<LearnedDestination>&) override {
    return fail(not_yet("egress policies are"));
  }
  Result<std::vector<PolicyCounter>> learned_counters(
      const NamespaceInfo&, const std::vector<LearnedDestination>&) override {
    return fail(not_yet("egress policies are"));
  }
  Result<void> set_resolver_port(std::optional<std::uint16_t>,
                                 std::optional<std::uint16_t>) override {
    return fail(not_yet("egress policies are"));
  }
  Result<void> configure(const NamespaceInfo&, const NamespaceExtras&) override {
    return fail(not_yet("topology files are"));
  }

  // The helper is started without IPv6: private namespaces are IPv4-only for now.
  std::string ipv6_unavailable() override { return "rootless mode has no IPv6 uplink yet"; }
  Result<void> drop_ipv6(const NamespaceInfo& info) override {
    NETCELL_TRY(need_session(info));
    return inner_->drop_ipv6(info);
  }

  void collect_garbage(std::vector<std::string>& removed,
                       std::vector<std::string>& errors) override {
    std::optional<rootless::Session> before = session_;
    if (!before) before = rootless::read_session(paths_);
    if (auto in = enter(/*start=*/false); !in) errors.push_back(in.error().to_string());
    if (before && stop_if_unused()) {
      notes_.push_back("rootless session of holder " + std::to_string(before->holder.pid) +
                       " (no namespace uses it)");
    } else if (session_ && rootless::alive(session_->holder)) {
      // The host's addresses may have changed since the session started.
      if (auto guarded = guard_host_addresses(); !guarded) {
        errors.push_back(guarded.error().to_string());
      }
    }
    if (!session_ || !rootless::alive(session_->holder)) {
      // A start killed before it wrote the record leaves the helper's log (its holder and helper
      // end by themselves: holder.h, commit). Not while another invocation starts one.
      if (auto locked = rootless::lock_session(paths_); locked) rootless::forget_unrecorded(paths_);
    }
    removed.insert(removed.end(), notes_.begin(), notes_.end());
    notes_.clear();
  }

 private:
  // What this phase of rootless mode does not do, refused before anything is made.
  static Result<void> check_supported(const NamespaceInfo& info) {
    if (info.mode == IsolationMode::kBridged) return fail(not_yet("bridged networks are"));
    if (!info.port_forwards.empty()) return fail(not_yet("published ports are"));
    if (!info.rate.empty()) return fail(not_yet("rate limits are"));
    if (info.egress) return fail(not_yet("egress policies are"));
    if (info.adopted_from_pid > 0 || !info.adopted_netns_path.empty()) {
      return fail(not_yet("adopting a namespace is"));
    }
    return ok();
  }

  // A session whose holder is gone: its namespaces, firewall and forwarding went with the
  // holder's namespaces, so what the Linux backend remembered of the "host" goes too.
  Result<void> end_dead_session(const rootless::Session& session) {
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
      return fail(ErrorCode::kConflict,
                  "rootless: the session this process joined has ended; run netcell again");
    }
    // Found, repaired, started and joined under the session's lock: another invocation (an
    // exec, which holds no run dir lock) may be doing the same right now.
    auto locked = rootless::lock_session(paths_);
    if (!locked) return fail(locked.error());
    auto found = rootless::read_session(paths_);
    if (found && !rootless::alive(found->holder)) {
      if (end_dead_session(*found)) {
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
    }
    if (!found) {
      if (!start) return false;
      auto started = rootless::start_session(paths_);
      if (!started) return fail(started.error());
      found = *started;
      NETCELL_TRY(rootless::join(found->holder));
      session_ = *found;
      // Before any namespace exists: a session is never without its guard.
      if (auto guarded = guard_host_addresses(); !guarded) {
        (void)rootless::stop_session(paths_, *session_);
        return fail(guarded.error());
      }
      return true;
    }
    NETCELL_TRY(rootless::join(found->holder));
    session_ = *found;
    return true;
  }

  // Ends the session once no namespace of netcell's is mounted in it. True when it did.
  bool stop_if_unused() {
    if (!session_ || !rootless::alive(session_->holder)) return false;
    auto locked = rootless::lock_session(paths_);
    if (!locked) return false;
    std::error_code ec;
    std::filesystem::directory_iterator it(paths_.netns_dir, ec);
    if (ec || it != std::filesystem::directory_iterator()) return false;
    (void)rootless::stop_session(paths_, *session_);
    return true;
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
  std::optional<kernel::Firewall> guard_;
  std::unique_ptr<Backend> inner_;
  std::optional<rootless::Session> session_;
  std::vector<std::string> notes_;  // what enter() repaired or ended, for gc's report
};

}  // namespace

std::unique_ptr<Backend> make_rootless_backend(const std::string& run_dir) {
  return std::make_unique<RootlessBackend>(run_dir);
}

}  // namespace netcell
