// netcell: the destinations netcell's resolver learned for a namespace (policy.h,
// LearnedDestination), and the file that records them.
//
// Each namespace with an egress policy has, in RUN_DIR/learned/, a lock file NAME.lock and a
// record NAME.json of what the kernel holds for it in the pol_learned_* sets. The lock file exists
// exactly while the namespace may learn: create makes it, destroy and a policy change take it,
// remove the kernel's elements the record lists and delete it (destroy) or empty the record
// (policy change). A learner that gets the lock after a destroy finds the file unlinked and adds
// nothing, so no element outlives its namespace, and none is ever keyed by a later namespace's
// address. The record names the namespace's address and creation time, so a learner holding a
// stale view of a namespace of the same name is refused.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/unique_fd.h"
#include "netcell/policy.h"
#include "netcell/result.h"
#include "netcell/types.h"

namespace netcell::learned {

// The grant of one answer: what `rules` allow, for `addresses`, until `expires_unix_ms`.
// Merges it into `current` (pieces that do not overlap: per address and protocol, port ranges)
// and returns the new pieces. Expired pieces (expires_unix_ms <= now_unix_ms) are dropped.
std::vector<LearnedDestination> merge(const std::vector<LearnedDestination>& current,
                                      const EgressPolicy& policy, const std::string& name,
                                      const std::vector<std::size_t>& rules,
                                      const std::vector<IpAddress>& addresses,
                                      std::int64_t expires_unix_ms, std::int64_t now_unix_ms);

struct State {
  IpAddress source;                  // the namespace's address
  std::optional<IpAddress> source6;  // and its IPv6 address (dual stack): AAAA elements' key
  std::int64_t created_unix_ms = 0;  // the namespace's creation time
  std::vector<LearnedDestination> destinations;
};
// `info` with the addresses `state` was recorded for as its own (the kernel's learned elements
// are keyed by them), for removing those elements whatever the namespace has now.
NamespaceInfo keyed_as_recorded(NamespaceInfo info, const State& state);
std::string to_text(const State& state);
Result<State> from_text(const std::string& text);

// The learned/ directory of a run dir.
std::string directory(const std::string& run_dir);

// A namespace's record, held under its lock.
class Locked {
 public:
  // Opens and locks NAME.lock; kNotFound when the namespace may not learn (no lock file, or it
  // was removed while waiting for the lock).
  static Result<Locked> open(const std::string& run_dir, const std::string& name);
  Result<State> read() const;
  Result<void> write(const State& state) const;
  // Deletes the record and the lock file (the lock is held until this object goes).
  Result<void> remove() const;

 private:
  Locked(std::string dir, std::string name, UniqueFd fd)
      : dir_(std::move(dir)), name_(std::move(name)), fd_(std::move(fd)) {}
  std::string dir_, name_;
  UniqueFd fd_;
};

// Makes the lock file and an empty record for a namespace that may learn from now on.
Result<void> prepare(const std::string& run_dir, const NamespaceInfo& info);
// The names of the namespaces that have a lock file.
std::vector<std::string> listed(const std::string& run_dir);
// Whether any namespace has one (stops at the first: a destroy asks it, with thousands there).
bool any_listed(const std::string& run_dir);

}  // namespace netcell::learned
