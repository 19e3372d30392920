#include "netcell/manager.h"

#include <linux/capability.h>
#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <mutex>

#include "backends/backend_factory.h"
#include "core/fault.h"
#include "core/files.h"
#include "core/learned.h"
#include "core/networking.h"
#include "core/relayed.h"
#include "core/service_control.h"
#include "core/state_store.h"
#include "core/unique_fd.h"
#include "core/validate.h"
#include "netcell/flowlog.h"

namespace netcell {
namespace {

// How long a create waits for the host service to listen on [::1] for its publishes.

std::int64_t now_unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Whether the process that owned a namespace is gone (or its pid now names another process).
bool owner_gone(const Record& record) {
  if (record.info.owner_pid <= 0) return false;
  auto start = process_start_time(record.info.owner_pid);
  return !start || (record.owner_start_time != 0 && *start != record.owner_start_time);
}

}  // namespace

std::string_view to_string(BackendChoice choice) {
  switch (choice) {
    case BackendChoice::kAuto: return "auto";
    case BackendChoice::kLinux: return "linux";
    case BackendChoice::kRootless: return "rootless";
    case BackendChoice::kSimulation: return "simulation";
  }
  return "unknown";
}

Result<BackendChoice> parse_backend_choice(std::string_view text) {
  if (text == "auto") return BackendChoice::kAuto;
  if (text == "linux") return BackendChoice::kLinux;
  if (text == "rootless") return BackendChoice::kRootless;
  if (text == "simulation") return BackendChoice::kSimulation;
  return fail(ErrorCode::kInvalidArgument, "unknown backend '" + std::string(text) +
                                               "' (expected auto, linux, rootless or simulation)");
}

struct NamespaceManager::Impl {
  Impl(ManagerOptions o, std::unique_ptr<Backend> b, StateStore s)
      : options(std::move(o)),
        backend(std::move(b)),
        store(std::move(s)),
        networking(store, *backend, options.private_subnet, options.private_subnet6) {}

  ManagerOptions options;
  std::unique_ptr<Backend> backend;
  StateStore store;
  Networking networking;
  std::mutex mu;

  // Both locks: threads of this process, then other processes sharing the run dir.
  struct Held {
    std::unique_lock<std::mutex> thread_lock;
    StateStore::Lock file_lock;
  };
  Result<Held> lock() {
    std::unique_lock<std::mutex> guard(mu);
    auto file = store.lock();
    if (!file) return fail(file.error());
    return Held{std::move(guard), std::move(*file)};
  }

  Result<Record> ready_record(const std::string& name) {
    if (auto id = NamespaceId::parse(name); !id) return fail(id.error());
    auto record = store.read(name);
    if (!record) return fail(record.error());
    if (!*record || (*record)->phase != Phase::kReady) {
      return fail(ErrorCode::kNotFound, "namespace '" + name + "' does not exist");
    }
    return std::move(**record);
  }

  // Removes the OS objects, then gives back addresses and ports, then the record; the record
  // stays (phase destroying) if the OS part fails, so gc can try again.
  Result<void> remove(Record record, const DestroyOptions& how = {}) {
    if (record.phase != Phase::kDestroying) {
      record.phase = Phase::kDestroying;
      NETCELL_TRY(store.write(record));
    }
    fault_point("destroy: journaled");
    if (record.changing_egress && record.previous_egress) {
      // An interrupted policy change: the kernel may hold the old policy's elements too. Going
      // from the old one to none removes what is there of them; destroy removes the rest.
      NamespaceInfo without = record.info;
      without.egress.reset();
      NETCELL_TRY(backend->change_egress(without, record.previous_egress));
    }
    // Learned destinations go before the namespace does: none may outlive it (learned.h).
    NETCELL_TRY(forget_learned(record.info, /*remove=*/true));
    NETCELL_TRY(backend->destroy(record.info, how));
    fault_point("destroy: OS objects removed");
    std::vector<std::string> errors;
    networking.release(record.info, errors);
    fault_point("destroy: addresses and ports released");
    NETCELL_TRY(store.remove(record.info.name));
    remove_network_if_done(record.info.network, errors);
    if (auto log = remove_flow_log(options.run_dir, record.info.name); !log) {
      errors.push_back(log.error().to_string());  // gc removes it later (sweep_flow_logs)
    }
    release_shared_state_if_unused(record.info);
    const bool relay = relays(record.info);
    if (relay) relayed::unmark(options.run_dir, record.info.name);
    if (record.info.egress || relay) stop_service_if_unused();
    if (!errors.empty()) return fail(ErrorCode::kSystem, errors.front());
    return ok();
  }

  // The host service: the backends that enforce policies (Linux, and rootless, which runs the
  // service inside the user's session) need a resolver; it relays the [::1] publishes of the
  // Linux backend's dual-stack namespaces (rootless mode has no IPv6 uplink).
  bool needs_service(const NamespaceInfo& info) const {
    return info.egress.has_value() &&
           (backend->kind() == BackendKind::kLinux || backend->kind() == BackendKind::kRootless);
  }
  bool relays(const NamespaceInfo& info) const {
    return backend->kind() == BackendKind::kLinux && !loopback_routes(info).empty();
  }

  // Starts the host service unless it runs. Called with the run dir's lock held.
  Result<void> ensure_service() {
    if (auto record = service::read(options.run_dir); record && service::alive(*record)) {
      // An administrator's service outlives netcell's table (which goes with the last private or
      // bridged namespace): point the new table's DNS redirect at it again.
      if (!record->on_demand) return backend->set_resolver_port(std::nullopt, record->port);
      return ok();
    }
    // Started from where it must serve (rootless: inside the user's session).
    NETCELL_TRY(backend->prepare_service());
    service::StartOptions start;
    start.binary = service::binary(options.service_path);
    start.run_dir = options.run_dir;
    start.netns_dir = options.netns_dir;
    start.private_subnet = options.private_subnet;
    auto started = service::start(start);
    if (!started) return fail(started.error());
    return ok();
  }

  // Learned destinations of namespaces without a record (a destroy a crash interrupted after the
  // record went), then the host service: running if a namespace needs it, else stopped.
  void sweep_learned(GcReport& report) {
    bool needed = false;
    for (const auto& name : relayed::listed(options.run_dir)) {
      auto record = store.read(name);
      if (record && *record && relays((*record)->info)) {
        needed = true;
      } else if (record && (!*record || (*record)->phase == Phase::kReady)) {
        relayed::unmark(options.run_dir, name);
        report.removed.push_back(name + ": [::1] relay mark of a namespace that needs none");
      }
    }
    for (const auto& name : learned::listed(options.run_dir)) {
      auto record = store.read(name);
      if (record && *record) {
        needed = needed || needs_service((*record)->info);
        continue;
      }
      auto locked = learned::Locked::open(options.run_dir, name);
      if (!locked) continue;
      NamespaceInfo gone;
      gone.name = name;
      if (auto state = locked->read(); state) {
        gone = learned::keyed_as_recorded(std::move(gone), *state);
        if (auto removed = backend->change_learned(gone, state->destinations, {}); !removed) {
          report.errors.push_back(name + ": " + removed.error().to_string());
          continue;
        }
      }
      if (auto removed = locked->remove(); removed) {
        report.removed.push_back(name + ": learned destinations of a removed namespace");
      }
    }
    auto record = service::read(options.run_dir);
    if (needed && !(record && service::alive(*record))) {
      if (auto started = ensure_service(); started) {
        report.removed.push_back("host service: restarted");
      } else {
        report.errors.push_back(started.error().to_string());
      }
    } else if (!needed && record && record->on_demand) {
      stop_service();
      report.removed.push_back("host service: stopped (no namespace needs it)");
    }
  }

  // Stops the host service when no namespace may learn any more (learned/ has no lock file).
  void stop_service_if_unused() {
    if (learned::any_listed(options.run_dir) || relayed::any_listed(options.run_dir)) return;
    if (auto record = service::read(options.run_dir); record && !record->on_demand) return;
    stop_service();
  }

  // Ends the recorded service and takes its port out of the redirect (the table may be gone).
  void stop_service() {
    auto record = service::read(options.run_dir);
    if (!record) return;
    (void)service::stop(options.run_dir);
    (void)backend->set_resolver_port(record->port, std::nullopt);
  }

  // Removes what the namespace learned from the kernel; with `remove`, its learned files too
  // (it may learn no more), else it starts again from nothing (a policy change).
  Result<void> forget_learned(const NamespaceInfo& info, bool remove) {
    auto locked = learned::Locked::open(options.run_dir, info.name);
    if (!locked) {
      if (locked.error().code() == ErrorCode::kNotFound) return ok();
      return fail(locked.error());
    }
    auto state = locked->read();
    if (state && !state->destinations.empty()) {
      // The elements are keyed by the addresses the record names (the ones they were made for).
      NETCELL_TRY(backend->change_learned(learned::keyed_as_recorded(info, *state),
                                          state->destinations, {}));
    }
    if (remove) return locked->remove();
    if (!state) return fail(state.error());
    state->destinations.clear();
    return locked->write(*state);
  }

  // The namespace of a process to adopt must be neither the caller's own (the host's network, which
  // private or full mode would rewire), nor that of PID 1 (the machine's own network, when the
  // caller itself runs in a child namespace), nor one netcell already manages under some name.
  // Backends without network namespaces (simulation) have nothing to compare.
  Result<void> check_adoptable(pid_t pid) {
    const std::string what = "cannot adopt the network namespace of process " + std::to_string(pid);
    auto checked = check_adoptable_netns(backend->netns_of_pid(pid), what, /*by_path=*/false);
    if (!checked) return fail(checked.error());
    return ok();
  }

  // The same for a namespace adopted by path; returns its identity (0 where the backend has none).
  // A namespace may carry several attachments adopted by path (a container on two CNI networks).
  Result<std::uint64_t> check_adoptable_path(const std::string& path) {
    NamespaceInfo at;
    at.mode = IsolationMode::kPrivate;
    at.netns_path = at.adopted_netns_path = path;
    return check_adoptable_netns(backend->netns_of(at),
                                 "cannot adopt the network namespace at " + path, /*by_path=*/true);
  }

  Result<std::uint64_t> check_adoptable_netns(Result<std::uint64_t> target, const std::string& what,
                                              bool by_path) {
    if (!target && target.error().code() == ErrorCode::kUnsupported) return std::uint64_t{0};
    if (!target) return fail(std::move(target).error().with_context(what));
    auto own = backend->netns_of_pid(::getpid());
    if (own && *own == *target) {
      return fail(ErrorCode::kInvalidArgument,
                  what + ": it is netcell's own, the host's network, not a namespace of its own");
    }
    auto init = backend->netns_of_pid(1);
    if (init && *init == *target) {
      return fail(ErrorCode::kInvalidArgument,
                  what + ": it is the network namespace of PID 1, the machine's own network");
    }
    auto conflict = [&](const NamespaceInfo& info) -> Result<void> {
      if (info.mode == IsolationMode::kShared || info.netns_path.empty()) return ok();
      if (by_path && !info.adopted_netns_path.empty()) return ok();
      auto netns = backend->netns_of(info);
      if (netns && *netns == *target) {
        return fail(ErrorCode::kAlreadyExists,
                    what + ": netcell already manages it as '" + info.name + "'");
      }
      return ok();
    };
    // By path, only a namespace netcell made can conflict (several attachments may share an
    // adopted one): among those only, found by the place its backend keeps it, so that an ADD on
    // a host with thousands of CNI attachments costs what the first did.
    if (by_path && !backend->owned_netns_path("x").empty()) {
      for (const auto& name : store.owned_names()) {
        NamespaceInfo probe;
        probe.mode = IsolationMode::kPrivate;
        probe.name = name;
        probe.netns_path = backend->owned_netns_path(name);
        auto netns = backend->netns_of(probe);
        if (!netns || *netns != *target) continue;
        auto record = store.read(name);
        if (record && *record) NETCELL_TRY(conflict((*record)->info));
      }
      return *target;
    }
    for (const auto& record : store.list().records) NETCELL_TRY(conflict(record.info));
    return *target;
  }

  // The denied-flow logs of namespaces without a record: what a destroy could not remove, and
  // lines a reader wrote for a namespace's last flows after it was gone.
  void sweep_flow_logs(GcReport& report) {
    for (const auto& name : flow_log_names(options.run_dir)) {
      auto record = store.read(name);
      if (!record || *record) continue;  // a corrupt record is left alone, and its log with it
      if (auto removed = remove_flow_log(options.run_dir, name); removed) {
        report.removed.push_back(flow_log_path(options.run_dir, name) + " (namespace gone)");
      } else {
        report.errors.push_back(removed.error().to_string());
      }
    }
  }

  // A network made to be removed with its last namespace goes when `network` has none left.
  void remove_network_if_done(const std::string& network, std::vector<std::string>& errors) {
    if (network.empty()) return;
    auto record = store.read_network(network);
    if (!record || !*record || !(*record)->info.remove_when_unused) return;
    for (const auto& other : store.list().records) {
      if (other.info.network == network) return;
    }
    if (auto removed = networking.remove_network(network); !removed) {
      errors.push_back(removed.error().to_string());
    }
  }

  void release_shared_state_if_unused(const NamespaceInfo& removed) {
    if (!removed.network.empty() && networking.unused()) {
      (void)backend->release_shared_state();
      networking.forget_unused_state();
    }
  }
};

NamespaceManager::NamespaceManager(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
NamespaceManager::NamespaceManager(NamespaceManager&&) noexcept = default;
NamespaceManager& NamespaceManager::operator=(NamespaceManager&&) noexcept = default;
NamespaceManager::~NamespaceManager() = default;

Result<NamespaceManager> NamespaceManager::create(const ManagerOptions& options) {
  auto kind = choose_backend(options);
  if (!kind) return fail(kind.error());
  ManagerOptions resolved = options;
  if (resolved.run_dir.empty()) {
    auto dir = default_run_dir(*kind);
    if (!dir) return fail(dir.error());
    resolved.run_dir = *dir;
  }
  if (*kind == BackendKind::kRootless) {
    if (resolved.netns_dir != ManagerOptions{}.netns_dir) {
      return fail(ErrorCode::kInvalidArgument,
                  "--netns-dir does not apply in rootless mode (namespaces are mounted at "
                  "RUN_DIR/netns, inside the user's own mount namespace)");
    }
    resolved.netns_dir = resolved.run_dir + "/netns";
  }
  auto backend = make_backend(*kind, resolved, resolved.run_dir);
  return create(resolved, std::move(backend));
}

Result<NamespaceManager> NamespaceManager::create(const ManagerOptions& options,
                                                  std::unique_ptr<Backend> backend) {
  if (!backend) return fail(ErrorCode::kInvalidArgument, "no backend");
  ManagerOptions resolved = options;
  if (resolved.run_dir.empty()) {
    auto dir = default_run_dir(backend->kind());
    if (!dir) return fail(dir.error());
    resolved.run_dir = *dir;
  }
  if (resolved.netns_dir.empty() || resolved.netns_dir.front() != '/') {
    return fail(ErrorCode::kInvalidArgument, "the netns dir must be an absolute path");
  }
  auto store = StateStore::open(resolved.run_dir);
  if (!store) return fail(std::move(store).error().with_context("state store"));
  auto impl = std::make_unique<Impl>(std::move(resolved), std::move(backend), std::move(*store));
  // A host service that died is started again by the next invocation, with its state rebuilt
  // from the records (until then, policy namespaces' DNS fails closed).
  if (auto record = service::read(impl->options.run_dir);
      impl->options.restart_service && record && !service::alive(*record)) {
    if (auto held = impl->lock(); held) {
      record = service::read(impl->options.run_dir);
      if (record && !service::alive(*record)) {
        if (!learned::any_listed(impl->options.run_dir) &&
            !relayed::any_listed(impl->options.run_dir)) {
          (void)service::remove(impl->options.run_dir);
        } else {
          (void)impl->ensure_service();
        }
      }
    }
  }
  return NamespaceManager(std::move(impl));
}

BackendKind NamespaceManager::backend() const {
  return impl_->backend->kind();
}
const ManagerOptions& NamespaceManager::options() const {
  return impl_->options;
}

std::string NamespaceManager::ipv6_unavailable() const {
  return impl_->backend->ipv6_unavailable();
}

Result<NamespaceInfo> NamespaceManager::create(const NamespaceConfig& config) {
  auto id = validate_config(config);
  if (!id) return fail(id.error());
  const std::string& name = id->str();
  auto held = impl_->lock();
  if (!held) return fail(held.error());
  auto existing = impl_->store.read(name);
  if (!existing) return fail(existing.error());
  if (*existing) {
    return fail(ErrorCode::kAlreadyExists, "namespace '" + name + "' already exists");
  }

  Record record;
  record.info.name = name;
  record.info.mode = config.mode;
  record.info.backend = impl_->backend->kind();
  record.info.enforced = impl_->backend->enforces_isolation();
  record.info.owner_pid = config.pid;
  record.info.network = config.network;
  record.info.created_unix_ms = now_unix_ms();
  record.info.topology = config.topology;
  record.info.rate = config.rate;
  record.info.egress = config.egress;
  if (config.pid > 0) {
    auto start = process_start_time(config.pid);
    if (!start)
      return fail(ErrorCode::kNotFound,
                  "process " + std::to_string(config.pid) + " does not exist");
    record.owner_start_time = *start;
  }
  if (config.adopt_netns_of) {
    NETCELL_TRY(impl_->check_adoptable(*config.adopt_netns_of));
    record.info.adopted_from_pid = *config.adopt_netns_of;
  }
  if (!config.adopt_netns_path.empty()) {
    auto inode = impl_->check_adoptable_path(config.adopt_netns_path);
    if (!inode) return fail(inode.error());
    record.info.adopted_netns_path = config.adopt_netns_path;
    record.info.adopted_netns_inode = *inode;
  }
  record.info.cni = config.cni;
  // A create that fails leaves the implicit private network's record and pool as they were:
  // gone again when nothing else uses them.
  // So does a network made to go with its last namespace (a CNI network its first ADD made).
  auto forget_if_unused = [&] {
    if (config.mode == IsolationMode::kBridged) {
      std::vector<std::string> ignored;
      impl_->remove_network_if_done(config.network, ignored);
    }
    if (!impl_->networking.unused()) return;
    (void)impl_->backend->release_shared_state();
    impl_->networking.forget_unused_state();
  };
  std::optional<NetworkInfo> network;
  if (config.mode == IsolationMode::kPrivate || config.mode == IsolationMode::kBridged) {
    auto found = impl_->networking.network_for(config);
    if (!found) return fail(std::move(found).error().with_context("create " + name));
    network = std::move(*found);
    if (auto assigned = impl_->networking.assign(config, *network, record.info); !assigned) {
      forget_if_unused();
      return fail(std::move(assigned).error().with_context("create " + name));
    }
  }
  // Gives back what assign took when a later step fails before the record is journaled.
  auto unassign = [&] {
    std::vector<std::string> ignored;
    impl_->networking.release(record.info, ignored);
    forget_if_unused();
  };
  fault_point("create: addresses and ports taken");
  // [::1] publishes are the host service's sockets: one another program holds fails here, before
  // anything is made.
  if (impl_->relays(record.info)) {
    if (auto free = relayed::probe(loopback_routes(record.info)); !free) {
      unassign();
      return fail(std::move(free).error().with_context("create " + name));
    }
  }
  auto planned = impl_->backend->plan(record.info);
  if (!planned) {
    unassign();
    return fail(std::move(planned).error().with_context("create " + name));
  }
  record.info = std::move(*planned);
  // Journal first: a crash from here on leaves a "creating" record for gc to roll back.
  record.phase = Phase::kCreating;
  if (auto journaled = impl_->store.write(record); !journaled) {
    unassign();
    return fail(journaled.error());
  }
  fault_point("create: journaled");
  auto made = impl_->backend->create(record.info, network ? &*network : nullptr);
  if (!made) {
    (void)impl_->store.remove(name);
    unassign();
    return fail(std::move(made).error().with_context("create " + name));
  }
  record.info = std::move(*made);
  const bool relay = impl_->relays(record.info);
  if (impl_->needs_service(record.info) || relay) {
    // Its DNS is netcell's resolver: the namespace may learn, and the service runs, before it is
    // ready. The relay's mark comes first too: a service that starts now keeps running.
    Result<void> prepared = ok();
    if (impl_->needs_service(record.info)) {
      prepared = learned::prepare(impl_->options.run_dir, record.info);
    }
    if (prepared && relay) prepared = relayed::mark(impl_->options.run_dir, name);
    if (prepared) prepared = impl_->ensure_service();
    if (!prepared) {
      (void)impl_->remove(record);
      return fail(std::move(prepared).error().with_context("create " + name));
    }
  }
  fault_point("create: made, not yet ready");
  record.phase = Phase::kReady;
  if (auto saved = impl_->store.write(record); !saved) {
    (void)impl_->remove(record);
    return fail(std::move(saved).error().with_context("create " + name));
  }
  // The relay listens on [::1] once it has read the ready record, a moment after this returns:
  // create does not wait for it (waiting made every create with a publish about 3 ms slower, a
  // CNI ADD included), and the port was checked free above. RUN_DIR/relayed/NAME.answer says
  // whether it does.
  return record.info;
}

bool NamespaceManager::exists(const std::string& name) {
  auto held = impl_->lock();
  return held && impl_->ready_record(name).has_value();
}

Result<NamespaceInfo> NamespaceManager::info(const std::string& name) {
  auto held = impl_->lock();
  if (!held) return fail(held.error());
  auto record = impl_->ready_record(name);
  if (!record) return fail(record.error());
  return record->info;
}

Result<NamespaceStats> NamespaceManager::stats(const std::string& name) {
  auto found = info(name);  // the lock is not held while the kernel is asked
  if (!found) return fail(found.error());
  auto stats = impl_->backend->stats(*found);
  if (!stats) return fail(std::move(stats).error().with_context("stats " + name));
  return stats;
}

Result<void> NamespaceManager::ready() {
  return impl_->backend->ready();
}

Result<void> NamespaceManager::verify(const std::string& name) {
  auto found = info(name);  // the lock is not held while the kernel is asked
  if (!found) return fail(found.error());
  auto verified = impl_->backend->verify(*found);
  if (!verified) return fail(std::move(verified).error().with_context("verify " + name));
  return ok();
}

std::vector<NamespaceInfo> NamespaceManager::list() {
  std::vector<NamespaceInfo> out;
  auto held = impl_->lock();
  if (!held) return out;
  for (auto& record : impl_->store.list().records) {
    if (record.phase == Phase::kReady) out.push_back(std::move(record.info));
  }
  return out;
}

Result<NamespaceInfo> NamespaceManager::find_by_pid(pid_t pid) {
  NETCELL_TRY(validate_pid(pid));
  std::vector<NamespaceInfo> all = list();
  for (const auto& info : all) {
    if (info.owner_pid == pid) return info;
  }
  auto target = impl_->backend->netns_of_pid(pid);
  if (target) {
    for (const auto& info : all) {
      // A shared namespace is the host's: every host process would match it.
      if (info.mode == IsolationMode::kShared) continue;
      auto netns = impl_->backend->netns_of(info);
      if (netns && *netns == *target) return info;
    }
  } else if (target.error().code() != ErrorCode::kUnsupported) {
    return fail(target.error());
  }
  return fail(ErrorCode::kNotFound,
              "process " + std::to_string(pid) + " is not in or owner of any netcell namespace");
}

Result<void> NamespaceManager::destroy(const std::string& name, const DestroyOptions& options) {
  auto held = impl_->lock();
  if (!held) return fail(held.error());
  if (auto id = NamespaceId::parse(name); !id) return fail(id.error());
  auto record = impl_->store.read(name);
  if (!record) return fail(record.error());
  if (!*record) return fail(ErrorCode::kNotFound, "namespace '" + name + "' does not exist");
  auto removed = impl_->remove(std::move(**record), options);
  if (!removed) return fail(std::move(removed).error().with_context("destroy " + name));
  return ok();
}

Result<Child> NamespaceManager::spawn(const std::string& name, const std::vector<std::string>& argv,
                                      const SpawnOptions& options) {
  if (argv.empty()) return fail(ErrorCode::kInvalidArgument, "no command to run");
  auto found = info(name);  // the lock is not held while the command starts
  if (!found) return fail(found.error());
  return impl_->backend->spawn(*found, argv, options);
}

Result<bool> NamespaceManager::connect(const LinkConfig& link) {
  auto held = impl_->lock();
  if (!held) return fail(held.error());
  auto a = impl_->ready_record(link.a.ns);
  if (!a) return fail(a.error());
  auto b = impl_->ready_record(link.b.ns);
  if (!b) return fail(b.error());
  for (const auto* end : {&link.a, &link.b}) {
    NETCELL_TRY(validate_interface_name(end->device));
  }
  if (link.a.ns == link.b.ns) {
    return fail(ErrorCode::kInvalidArgument, "a link needs two different namespaces");
  }
  for (const auto* info : {&a->info, &b->info}) {
    if (info->mode == IsolationMode::kShared) {
      return fail(ErrorCode::kInvalidArgument,
                  "namespace '" + info->name + "' shares the host's network and cannot be linked");
    }
  }
  return impl_->backend->connect(a->info, b->info, link);
}

Result<NamespaceInfo> NamespaceManager::set_egress(const std::string& name,
                                                   const std::optional<EgressPolicy>& policy) {
  auto held = impl_->lock();
  if (!held) return fail(held.error());
  auto record = impl_->ready_record(name);
  if (!record) return fail(record.error());
  NETCELL_TRY(validate_egress(record->info.mode, policy));
  if (record->changing_egress) {
    return fail(ErrorCode::kConflict,
                "an earlier policy change of '" + name + "' was interrupted; run netcell gc first");
  }
  // Journal first: a crash from here on leaves the change for gc to finish.
  Record changing = *record;
  changing.changing_egress = true;
  changing.previous_egress = record->info.egress;
  changing.info.egress = policy;
  point_dns_at_resolver(changing.info);
  // What the old policy let it learn goes first: a removed domain's addresses go with it.
  NETCELL_TRY(impl_->forget_learned(record->info, /*remove=*/!impl_->needs_service(changing.info)));
  if (impl_->needs_service(changing.info)) {
    NETCELL_TRY(learned::prepare(impl_->options.run_dir, changing.info));
    NETCELL_TRY(impl_->ensure_service());
  }
  NETCELL_TRY(impl_->store.write(changing));
  fault_point("policy: journaled");
  if (auto changed = impl_->backend->change_egress(changing.info, record->info.egress); !changed) {
    (void)impl_->store.write(*record);  // the kernel kept the old policy: so does the record
    return fail(std::move(changed).error().with_context("policy set " + name));
  }
  fault_point("policy: applied");
  changing.changing_egress = false;
  changing.previous_egress.reset();
  NETCELL_TRY(impl_->store.write(changing));
  if (!changing.info.egress) impl_->stop_service_if_unused();
  return changing.info;
}

std::optional<RelayState> NamespaceManager::relay_state(const NamespaceInfo& info) const {
  if (!impl_->relays(info)) return std::nullopt;
  // The service replaces the answer whole (a rename); missing: not read yet.
  auto answer = read_file(relay_answer_path(impl_->options.run_dir, info.name), 4096);
  return relay_state_of_answer(answer.value_or(""));
}

Result<EgressCounters> NamespaceManager::egress_counters(const std::string& name) {
  auto found = info(name);  // the lock is not held while the kernel is asked
  if (!found) return fail(found.error());
  if (!found->egress) {
    return fail(ErrorCode::kNotFound, "namespace '" + name + "' has no egress policy");
  }
  auto counters = impl_->backend->egress_counters(*found);
  if (!counters) return counters;
  counters->domains.resize(found->egress->domains.size());
  if (auto now = learned(name); now && !now->empty()) {
    auto counted = impl_->backend->learned_counters(*found, *now);
    if (!counted) return fail(counted.error());
    for (std::size_t i = 0; i < now->size(); ++i) {
      for (std::size_t rule : (*now)[i].rules) {
        if (rule >= counters->domains.size()) continue;
        counters->domains[rule].packets += (*counted)[i].packets;
        counters->domains[rule].bytes += (*counted)[i].bytes;
      }
    }
  }
  return counters;
}

Result<void> NamespaceManager::destroy_when_owner_exits(const std::string& name) {
  if (auto id = NamespaceId::parse(name); !id) return fail(id.error());
  auto record = impl_->store.read(name);
  if (!record) return fail(record.error());
  if (!*record) return fail(ErrorCode::kNotFound, "namespace '" + name + "' does not exist");
  if ((*record)->info.owner_pid <= 0) {
    return fail(ErrorCode::kInvalidArgument, "namespace '" + name + "' has no owner process");
  }
  const Record owned = **record;
  // The same namespace, still owned by the same process (a pid alone may have been reused).
  auto still_ours = [&] {
    auto now = impl_->store.read(name);
    return now && *now && (*now)->info.created_unix_ms == owned.info.created_unix_ms &&
           (*now)->info.owner_pid == owned.info.owner_pid;
  };
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, owned.info.owner_pid, 0)));
  auto start = process_start_time(owned.info.owner_pid);
  bool owner_alive = pidfd && start && *start == owned.owner_start_time;
  while (owner_alive) {
    pollfd p{pidfd.get(), POLLIN, 0};
    int n = ::poll(&p, 1, 1000);
    if (n == 1) break;               // the owner exited
    if (!still_ours()) return ok();  // destroyed by someone else meanwhile
  }
  if (!still_ours()) return ok();
  return destroy(name);
}

std::vector<NamespaceInfo> NamespaceManager::snapshot() {
  std::vector<NamespaceInfo> out;
  for (auto& record : impl_->store.list().records) {
    if (record.phase == Phase::kReady) out.push_back(std::move(record.info));
  }
  return out;
}

Result<std::optional<NamespaceInfo>> NamespaceManager::snapshot(const std::string& name) {
  if (auto id = NamespaceId::parse(name); !id) return fail(id.error());
  auto record = impl_->store.read(name);
  if (!record) return fail(record.error());
  if (!*record || (*record)->phase != Phase::kReady) return std::optional<NamespaceInfo>();
  return std::optional<NamespaceInfo>(std::move((*record)->info));
}

Result<std::vector<LearnedDestination>> NamespaceManager::learn(
    const NamespaceInfo& info, std::string_view name, const std::vector<IpAddress>& addresses,
    std::uint32_t ttl) {
  if (!info.egress) {
    return fail(ErrorCode::kInvalidArgument, "namespace '" + info.name + "' has no egress policy");
  }
  const auto rules = info.egress->allowing_domain_rules(name);
  const std::string qname = DomainPattern::parse(name) ? DomainPattern::parse(name)->str() : "";
  if (rules.empty() || qname.empty()) {
    return fail(ErrorCode::kPermissionDenied, "the egress policy of '" + info.name +
                                                  "' does not allow the name " + std::string(name));
  }
  auto locked = learned::Locked::open(impl_->options.run_dir, info.name);
  if (!locked) return fail(locked.error());
  auto state = locked->read();
  if (!state) return fail(state.error());
  const auto source = primary_address(info);
  if (state->created_unix_ms != info.created_unix_ms || !source || !(*source == state->source)) {
    return fail(ErrorCode::kNotFound, "namespace '" + info.name + "' was replaced");
  }
  const std::int64_t now = now_unix_ms();
  const std::int64_t expires = now + std::int64_t{info.egress->learn_seconds(ttl)} * 1000;
  auto merged =
      learned::merge(state->destinations, *info.egress, qname, rules, addresses, expires, now);
  if (merged.size() > kMaxLearnedPerNamespace) {
    return fail(ErrorCode::kExhausted, "namespace '" + info.name + "' learned " +
                                           std::to_string(kMaxLearnedPerNamespace) +
                                           " destinations already");
  }
  std::vector<LearnedDestination> remove, add;
  auto contains = [](const std::vector<LearnedDestination>& list, const LearnedDestination& d) {
    return std::find(list.begin(), list.end(), d) != list.end();
  };
  for (const auto& d : state->destinations) {
    if (d.expires_unix_ms > now && !contains(merged, d)) remove.push_back(d);
  }
  for (const auto& d : merged) {
    if (!contains(state->destinations, d)) add.push_back(d);
  }
  if (!add.empty() || !remove.empty()) {
    // Recorded before the kernel has them (what is there then is a subset), so that a destroy
    // after a crash here still finds every element.
    learned::State intent = *state;
    intent.destinations = merged;
    for (const auto& d : remove) intent.destinations.push_back(d);
    NETCELL_TRY(locked->write(intent));
    NETCELL_TRY(impl_->backend->change_learned(info, remove, add));
    state->destinations = merged;
    NETCELL_TRY(locked->write(*state));
  }
  std::vector<LearnedDestination> out;
  for (const auto& d : merged) {
    if (std::find(addresses.begin(), addresses.end(), d.address) != addresses.end()) {
      out.push_back(d);
    }
  }
  return out;
}

Result<std::vector<LearnedDestination>> NamespaceManager::learned(const std::string& name) {
  auto locked = learned::Locked::open(impl_->options.run_dir, name);
  if (!locked) {
    if (locked.error().code() == ErrorCode::kNotFound) return std::vector<LearnedDestination>();
    return fail(locked.error());
  }
  auto state = locked->read();
  if (!state) return fail(state.error());
  std::vector<LearnedDestination> out;
  const std::int64_t now = now_unix_ms();
  for (auto& d : state->destinations) {
    if (d.expires_unix_ms > now) out.push_back(std::move(d));
  }
  return out;
}

ServiceStatus NamespaceManager::service_status() {
  ServiceStatus status;
  status.log_path = service::log_path(impl_->options.run_dir);
  if (auto record = service::read(impl_->options.run_dir)) {
    status.pid = record->pid;
    status.port = record->port;
    status.running = service::alive(*record);
  }
  return status;
}

Result<void> NamespaceManager::register_service(std::uint16_t port, bool on_demand) {
  auto start = process_start_time(::getpid());
  if (!start) return fail(ErrorCode::kSystem, "cannot read this process's start time");
  std::optional<std::uint16_t> previous;
  if (auto record = service::read(impl_->options.run_dir)) previous = record->port;
  NETCELL_TRY(impl_->backend->set_resolver_port(previous, port));
  return service::write(impl_->options.run_dir,
                        service::Record{::getpid(), *start, port, on_demand});
}

Result<void> NamespaceManager::configure(const std::string& name, const NamespaceExtras& extras) {
  auto held = impl_->lock();
  if (!held) return fail(held.error());
  auto record = impl_->ready_record(name);
  if (!record) return fail(record.error());
  return impl_->backend->configure(record->info, extras);
}

NamespaceManager::GcReport NamespaceManager::gc() {
  GcReport report;
  auto held = impl_->lock();
  if (!held) {
    report.errors.push_back(held.error().to_string());
    return report;
  }
  auto listing = impl_->store.list();
  for (const auto& bad : listing.corrupt) {
    // Never act on what a corrupt record says: it might point at something netcell does not own.
    report.errors.push_back("left alone: " + bad);
  }
  for (auto& p : impl_->store.sweep_temp_files()) {
    report.removed.push_back(p + " (temporary file of an interrupted write)");
  }
  for (auto& p : impl_->store.sweep_markers()) {
    report.removed.push_back(p + " (marker of an interrupted create)");
  }
  for (const auto& line : impl_->networking.sweep_interrupted_networks()) {
    report.removed.push_back(line);
  }
  for (const auto& line : impl_->networking.sweep_orphans()) {
    report.removed.push_back(line + " (taken by an interrupted create)");
  }
  for (auto& record : listing.records) {
    std::string why;
    if (record.phase == Phase::kReady && record.changing_egress && !owner_gone(record) &&
        impl_->backend->alive(record.info)) {
      // A policy change a crash interrupted: finish it (the record already says the new one).
      auto done = impl_->backend->change_egress(record.info, record.previous_egress);
      if (done) {
        record.changing_egress = false;
        record.previous_egress.reset();
        done = impl_->store.write(record);
      }
      if (done) {
        report.removed.push_back(record.info.name + ": interrupted policy change finished");
      } else {
        report.errors.push_back(record.info.name + ": " + done.error().to_string());
      }
      continue;
    }
    if (record.phase == Phase::kCreating) {
      why = "interrupted create";
    } else if (record.phase == Phase::kDestroying) {
      why = "interrupted destroy";
    } else if (owner_gone(record)) {
      why = "owner " + std::to_string(record.info.owner_pid) + " exited";
    } else if (!impl_->backend->alive(record.info)) {
      why = "network namespace vanished";
    } else {
      continue;
    }
    std::string name = record.info.name;
    if (auto removed = impl_->remove(std::move(record)); removed) {
      report.removed.push_back(name + " (" + why + ")");
    } else {
      report.errors.push_back(name + ": " + removed.error().to_string());
    }
  }
  impl_->sweep_flow_logs(report);
  impl_->sweep_learned(report);
  if (impl_->networking.unused()) {
    if (auto released = impl_->backend->release_shared_state(); !released) {
      report.errors.push_back(released.error().to_string());
    }
    impl_->networking.forget_unused_state();
  }
  impl_->backend->collect_garbage(report.removed, report.errors);
  return report;
}

NamespaceManager::GcReport NamespaceManager::remove_matching(
    const std::function<bool(const NamespaceInfo&)>& doomed) {
  GcReport report;
  auto held = impl_->lock();
  if (!held) {
    report.errors.push_back(held.error().to_string());
    return report;
  }
  for (auto& record : impl_->store.list().records) {
    if (!doomed(record.info)) continue;
    std::string name = record.info.name;
    if (auto removed = impl_->remove(std::move(record)); removed) {
      report.removed.push_back(name);
    } else {
      report.errors.push_back(name + ": " + removed.error().to_string());
    }
  }
  // What a create killed before it wrote its record left, nobody's now: the addresses and ports it
  // took, the temporary file of a record it was writing, and the pool and firewall table once
  // nothing uses them.
  for (const auto& line : impl_->networking.sweep_orphans()) {
    report.removed.push_back(line + " (taken by an interrupted create)");
  }
  for (auto& p : impl_->store.sweep_temp_files()) {
    report.removed.push_back(p + " (temporary file of an interrupted write)");
  }
  for (auto& p : impl_->store.sweep_markers()) {
    report.removed.push_back(p + " (marker of an interrupted create)");
  }
  if (impl_->networking.unused()) {
    if (auto released = impl_->backend->release_shared_state(); !released) {
      report.errors.push_back(released.error().to_string());
    }
    impl_->networking.forget_unused_state();
  }
  return report;
}

Result<NetworkInfo> NamespaceManager::create_network(const NetworkConfig& config) {
  auto held = impl_->lock();
  if (!held) return fail(held.error());
  return impl_->networking.create_network(config);
}

std::vector<NetworkInfo> NamespaceManager::list_networks() {
  auto held = impl_->lock();
  if (!held) return {};
  return impl_->networking.list_networks();
}

Result<void> NamespaceManager::remove_network(const std::string& name) {
  auto held = impl_->lock();
  if (!held) return fail(held.error());
  auto removed = impl_->networking.remove_network(name);
  if (!removed) return fail(std::move(removed).error().with_context("network rm " + name));
  if (impl_->networking.unused()) {
    (void)impl_->backend->release_shared_state();
    impl_->networking.forget_unused_state();
  }
  return ok();
}

}  // namespace netcell
