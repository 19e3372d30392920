// netcell: the seam between the backend-neutral core and an operating system.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "netcell/child.h"
#include "netcell/result.h"
#include "netcell/topology.h"
#include "netcell/types.h"

namespace netcell {

// A backend turns validated namespace descriptions into OS objects. The manager validates input,
// serialises operations (thread mutex + run-dir lock), journals them in the state store and rolls
// back on failure; a backend only acts. Implementations: LinuxBackend, SimulationBackend.
class Backend {
 public:
  virtual ~Backend() = default;

  virtual BackendKind kind() const = 0;
  // Whether namespaces of this backend have their isolation enforced by the kernel.
  virtual bool enforces_isolation() const = 0;

  // Fills in the names of the OS objects create() will make (netns_path) and checks they are free
  // (kAlreadyExists otherwise), so that the manager can journal them before anything is made.
  virtual Result<NamespaceInfo> plan(const NamespaceInfo& info) = 0;
  // Creates the OS objects for `info` (as returned by plan); `network` is the network a private or
  // bridged namespace attaches to (null for full and shared) (name, mode and addresses are final)
  // and returns it with what the backend filled in (netns_path, interfaces). On failure nothing is
  // left behind.
  virtual Result<NamespaceInfo> create(const NamespaceInfo& info, const NetworkInfo* network) = 0;
  // Removes everything `info` describes. Idempotent: objects already gone count as removed. Keeps
  // going after an error and reports the first one with the count of failures. When it returns,
  // nothing left inside the namespace has a path to anywhere (manager.h, destroy).
  virtual Result<void> destroy(const NamespaceInfo& info, const DestroyOptions& options) = 0;
  // Whether the OS object behind `info` still exists (for gc and list).
  virtual bool alive(const NamespaceInfo& info) = 0;
  virtual Result<NamespaceStats> stats(const NamespaceInfo& info) = 0;
  // Whether the OS holds everything `info` describes: the namespace (the same one, when adopted
  // by path), its interface up with its addresses and default route, the host end up, its
  // firewall elements. kNotFound naming the first thing missing.
  virtual Result<void> verify(const NamespaceInfo& info) = 0;
  // Whether the OS has what networked namespaces need (for the Linux backend: libnftables loads
  // and the kernel's nf_tables answers). kUnsupported naming the first thing missing. Changes
  // nothing.
  virtual Result<void> ready() { return ok(); }
  virtual Result<Child> spawn(const NamespaceInfo& info, const std::vector<std::string>& argv,
                              const SpawnOptions& options) = 0;

  // Creates / removes a bridged network's bridge and firewall state. A failed create leaves
  // nothing and never takes over a link that exists already; removal is idempotent.
  virtual Result<void> create_network(const NetworkInfo& network) = 0;
  virtual Result<void> destroy_network(const NetworkInfo& network) = 0;
  // Removes state shared by all networked namespaces (netcell's firewall table) once the manager
  // knows nothing uses it any more.
  virtual Result<void> release_shared_state() = 0;
  // The destinations of the host's routes, so new address pools can be checked for overlaps.
  virtual Result<std::vector<IpPrefix>> host_routes() = 0;
  // Whether a host-side link of this name exists, e.g. the veth end of an earlier namespace that
  // the kernel has not finished freeing: its name and address block are not handed out again.
  virtual Result<bool> host_link_exists(const std::string& name) = 0;

  // Identity of the network namespace a process lives in, and of a managed namespace, so that
  // find_by_pid can match them. kUnsupported where the backend has no such notion.
  virtual Result<std::uint64_t> netns_of_pid(pid_t pid) = 0;
  virtual Result<std::uint64_t> netns_of(const NamespaceInfo& info) = 0;
  // Where the backend keeps the network namespace of the namespace `name` that it made (not one
  // adopted by path), so that the manager finds which of its namespaces a path names by name
  // alone; empty where it has no such place (the manager then reads every record).
  virtual std::string owned_netns_path(const std::string& /*name*/) const { return ""; }

  // Topologies. Both are idempotent: what already exists as asked is left as it is.
  // A veth pair between two ready namespaces, each end named, addressed, up and rate-limited as
  // `link` says. Returns true when it was created, false when it already existed.
  virtual Result<bool> connect(const NamespaceInfo& a, const NamespaceInfo& b,
                               const LinkConfig& link) = 0;
  // Makes the kernel enforce `info.egress` instead of `previous` (either may be none), as one
  // change: new connections follow the new policy at once, established ones are kept. Also right
  // when the kernel already holds part or all of `info.egress` (a change a crash interrupted).
  virtual Result<void> change_egress(const NamespaceInfo& info,
                                     const std::optional<EgressPolicy>& previous) = 0;
  // The kernel's counters of the namespace's egress policy (it has one). kUnsupported where the
  // backend counts nothing.
  virtual Result<EgressCounters> egress_counters(const NamespaceInfo& info) = 0;
  // Replaces destinations netcell's resolver learned for the namespace (its egress policy's
  // pol_learned_* elements, policy.h LearnedDestination): `remove`'s go and `add`'s come, each
  // until its expiry, as one change; removes what of `remove` is there when some are gone already
  // (expired). kUnsupported where the backend enforces nothing.
  virtual Result<void> change_learned(const NamespaceInfo& info,
                                      const std::vector<LearnedDestination>& remove,
                                      const std::vector<LearnedDestination>& add) = 0;
  // The kernel's counters of learned destinations, in the order given (zero for one not there).
  virtual Result<std::vector<PolicyCounter>> learned_counters(
      const NamespaceInfo& info, const std::vector<LearnedDestination>& destinations) = 0;
  // Points the redirect of policy namespaces' DNS (port 53 to a host address) at the resolver's
  // port, or removes it (nullopt): `previous` is the port it pointed at before, if any.
  virtual Result<void> set_resolver_port(std::optional<std::uint16_t> previous,
                                         std::optional<std::uint16_t> port) = 0;
  // Makes this process the place the host service (the resolver) is started from: it inherits
  // the namespaces it must serve in. Nothing for the Linux backend (the host's); rootless: a
  // member of the user's session (kNotFound when there is none: its namespaces are gone).
  virtual Result<void> prepare_service() { return ok(); }
  // Sysctls, addresses and routes inside a ready namespace (in that order).
  virtual Result<void> configure(const NamespaceInfo& info, const NamespaceExtras& extras) = 0;
  // Why namespaces cannot have IPv6 on this host ("the host has IPv6 disabled"), or empty when
  // they can. Private namespaces are then IPv4-only, and NamespaceInfo::ipv4_only says so.
  virtual std::string ipv6_unavailable() { return {}; }
  // The MTU of a private or bridged namespace's interface when its config names none.
  virtual std::uint32_t default_mtu() const { return 1500; }

  // For gc, after the records: repairs or ends the backend's own long-running helpers (rootless:
  // the user's namespace holder and uplink helper), one line per thing done in `removed`, one per
  // failure in `errors`. Nothing for backends without helpers.
  virtual void collect_garbage(std::vector<std::string>& removed,
                               std::vector<std::string>& errors) {
    (void)removed;
    (void)errors;
  }
};

}  // namespace netcell
