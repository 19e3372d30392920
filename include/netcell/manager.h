// netcell: the lifecycle API. One NamespaceManager drives one backend over one state store.
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "netcell/backend.h"
#include "netcell/child.h"
#include "netcell/relay.h"
#include "netcell/result.h"
#include "netcell/topology.h"
#include "netcell/types.h"

namespace netcell {

enum class BackendChoice {
  kAuto,      // Linux when the process holds CAP_NET_ADMIN (and CAP_SYS_ADMIN), else rootless when
              // the user can have a user namespace and an uplink helper (docs/ROOTLESS.md), else an
              // error (never the simulation unless allow_simulation)
  kLinux,     // Linux, or an error without the privileges
  kRootless,  // Linux inside the user's own user namespace, or an error naming what is missing
  kSimulation,  // in-memory model, no OS changes; every info says enforced = false
};
std::string_view to_string(BackendChoice choice);
Result<BackendChoice> parse_backend_choice(std::string_view text);

struct ManagerOptions {
  BackendChoice backend = BackendChoice::kAuto;
  // With kAuto and no privileges, fall back to the simulation instead of failing.
  bool allow_simulation = false;
  // State records, lock and journal. Empty: /run/netcell (Linux), $XDG_RUNTIME_DIR/netcell
  // (rootless), /run/netcell-sim (simulation).
  std::string run_dir;
  // Where named namespaces are bind-mounted; /run/netns is what iproute2 reads.
  std::string netns_dir = "/run/netns";
  // Per-namespace /etc files (resolv.conf), where `ip netns exec` also finds them.
  std::string etc_netns_dir = "/etc/netns";
  // The pool of the implicit "private" network: one /30 per private namespace, so a /16 holds
  // 16,384. Takes effect when no private namespace exists.
  std::string private_subnet = "10.209.0.0/16";
  // Its IPv6 pool, one /64 per private namespace: a prefix of length 48 or shorter (so that it
  // holds a /64 for every block of any IPv4 pool up to a /16), e.g. fd00:1:2::/48. Empty: a ULA
  // /48 made from random bits the first time it is needed and kept in the run dir
  // (RUN_DIR/private-subnet6). Takes effect when no private namespace exists.
  std::string private_subnet6;
  // The host service (netcell-service: the resolver of namespaces with an egress policy), started
  // when the first such namespace is made. Empty: $NETCELL_SERVICE, else a netcell-service beside
  // the running program, else the installed one.
  std::string service_path;
  // Whether this manager starts the service again when it finds it dead (false in the service).
  bool restart_service = true;
};

// The host service of a run dir, as its record (RUN_DIR/service.json) and the kernel say.
struct ServiceStatus {
  bool running = false;
  pid_t pid = 0;           // 0 when there is no record
  std::uint16_t port = 0;  // the resolver's port (DNS to a gateway's port 53 is redirected there)
  std::string log_path;    // where it writes its log
};

// Thread-safe: every operation holds the manager's mutex and the run dir's lock, so threads and
// concurrent processes sharing a run dir see each operation whole.
class NamespaceManager {
 public:
  // Picks and opens the backend and the state store.
  static Result<NamespaceManager> create(const ManagerOptions& options);
  // With an explicit backend (tests, embedding).
  static Result<NamespaceManager> create(const ManagerOptions& options,
                                         std::unique_ptr<Backend> backend);

  NamespaceManager(NamespaceManager&&) noexcept;
  NamespaceManager& operator=(NamespaceManager&&) noexcept;
  ~NamespaceManager();

  BackendKind backend() const;
  const ManagerOptions& options() const;
  // Why private namespaces are IPv4-only on this host (Backend::ipv6_unavailable); empty when
  // they are dual-stack by default.
  std::string ipv6_unavailable() const;

  // Validates `config`, reserves its name, creates it. On failure nothing is left behind.
  Result<NamespaceInfo> create(const NamespaceConfig& config);
  bool exists(const std::string& name);
  Result<NamespaceInfo> info(const std::string& name);
  Result<NamespaceStats> stats(const std::string& name);
  // Whether the kernel still holds everything the namespace's record describes (Backend::verify):
  // kNotFound naming the first thing missing.
  Result<void> verify(const std::string& name);
  // Whether the backend can make networked namespaces now (Backend::ready): kUnsupported naming
  // what is missing. Changes nothing.
  Result<void> ready();
  // Every namespace in the store, sorted by name.
  std::vector<NamespaceInfo> list();
  // The namespace owned by `pid`, else the one whose network namespace `pid` lives in.
  Result<NamespaceInfo> find_by_pid(pid_t pid);
  // Removes the namespace and everything made for it. When it returns, nothing that is still
  // inside the namespace (a process left behind, a daemon it forked) has any network path left:
  // if the namespace outlives its unmount, its links are deleted (the veth's host end with its
  // address and routes), leaving only loopback inside. With `kill_processes`, every process
  // inside is ended with SIGKILL first.
  Result<void> destroy(const std::string& name, const DestroyOptions& options = {});
  // Replaces the egress policy of a ready private or bridged namespace (none: back to what its
  // mode allows) as one change in the kernel: new connections follow it at once, established ones
  // are kept.
  // Journaled: a crash midway is finished by gc. Returns the namespace as it now is.
  Result<NamespaceInfo> set_egress(const std::string& name,
                                   const std::optional<EgressPolicy>& policy);
  // What the kernel counted for the namespace's egress policy, per rule and for the default
  // (kNotFound when it has no policy; kUnsupported on the simulation backend).
  Result<EgressCounters> egress_counters(const std::string& name);
  // Whether the host service relays the [::1] publishes (loopback_routes) of `info`, a namespace
  // of this manager, yet (netcell/relay.h): nullopt when it has none to relay.
  std::optional<RelayState> relay_state(const NamespaceInfo& info) const;

  // For long-running readers (the host service): every ready namespace, read without the run
  // dir's lock (each record is replaced whole, so each is consistent), never waiting for an
  // operation in progress.
  std::vector<NamespaceInfo> snapshot();
  // The same for one namespace: nullopt when it has no ready record.
  Result<std::optional<NamespaceInfo>> snapshot(const std::string& name);
  // The resolver's call for an answer it is about to release to namespace `info` (as it read it):
  // lets the namespace reach `addresses` for the ports and protocols of the allow domain rules that
  // match `name`, until EgressPolicy::learn_seconds(ttl), and returns what it now may reach of
  // them. kPermissionDenied when the policy does not allow the name; kNotFound when the namespace
  // is gone or was replaced by another of the same name (refresh `info`). Takes no run-dir lock: a
  // lock of its own per namespace, so that destroy never leaves a learned destination behind.
  Result<std::vector<LearnedDestination>> learn(const NamespaceInfo& info, std::string_view name,
                                                const std::vector<IpAddress>& addresses,
                                                std::uint32_t ttl);
  // What the namespace learned and may still reach (not yet expired).
  Result<std::vector<LearnedDestination>> learned(const std::string& name);
  // The host service: whether it runs, its pid and port.
  ServiceStatus service_status();
  // The service's own call once its sockets are bound: points policy namespaces' DNS at `port`
  // and records the service (pid = the caller). `on_demand`: netcell started it and stops it when
  // no namespace needs it; else it is an administrator's (systemd's), which netcell never stops.
  // On error nothing changed.
  Result<void> register_service(std::uint16_t port, bool on_demand = true);
  // Runs argv inside the namespace.
  Result<Child> spawn(const std::string& name, const std::vector<std::string>& argv,
                      const SpawnOptions& options = {});

  // Networks: the implicit "private" one and bridged ones made here.
  Result<NetworkInfo> create_network(const NetworkConfig& config);
  std::vector<NetworkInfo> list_networks();
  // Refused while a namespace uses the network.
  Result<void> remove_network(const std::string& name);

  // Topologies (netcell/topology.h; see topology_up). Both are idempotent.
  // A veth pair between two ready namespaces; true when it was created, false when it existed.
  Result<bool> connect(const LinkConfig& link);
  // Sysctls, addresses and routes inside a ready namespace.
  Result<void> configure(const std::string& name, const NamespaceExtras& extras);

  // Blocks while the owner process recorded for `name` (NamespaceConfig::owner_pid) lives, then
  // destroys the namespace (kInvalidArgument at once when it has no owner); returns without
  // destroying anything when someone else destroyed it (or a later namespace took its name)
  // meanwhile. The owner is the
  // process that was recorded, not a later one that reuses its pid. What `netcell guard` runs.
  Result<void> destroy_when_owner_exits(const std::string& name);

  struct GcReport {
    std::vector<std::string> removed;  // records whose creation or owner was gone
    std::vector<std::string> errors;   // one line each
  };
  // Completes or rolls back what interrupted invocations left (records not "ready"), and removes
  // namespaces whose owner process has ended or whose OS object disappeared.
  GcReport gc();
  // Removes every namespace, ready or left by an interrupted create or destroy, that `doomed`
  // picks, and of the rest only what is nobody's: what a create killed before it wrote its record
  // left (addresses, ports, a temporary file) and shared state nothing uses any more. A CNI
  // runtime's DEL of one attachment, its GC of those it no longer knows.
  GcReport remove_matching(const std::function<bool(const NamespaceInfo&)>& doomed);

 private:
  struct Impl;
  explicit NamespaceManager(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace netcell
