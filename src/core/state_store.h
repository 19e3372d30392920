// netcell: the state store — one JSON record per namespace in the run dir, written atomically,
// plus the lock that serialises concurrent invocations.
//
//   RUN_DIR/lock               flock(LOCK_EX) for the length of one operation
//   RUN_DIR/namespaces/N.json  the record of namespace N (temp file + fsync + rename)
//   RUN_DIR/networks/N.json    the record of network N
//
// Every file is replaced by renaming a temporary file of its writer's over it (files.h); a kill
// in between leaves that file, and gc removes it once its writer is gone (sweep_temp_files).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/unique_fd.h"
#include "netcell/result.h"
#include "netcell/types.h"

namespace netcell {

// Where an operation on a namespace stands. A record is written in kCreating before any OS object
// is made and in kDestroying before any is removed: that is the intent journal gc replays.
enum class Phase { kCreating, kReady, kDestroying };
std::string_view to_string(Phase phase);

struct Record {
  NamespaceInfo info;
  Phase phase = Phase::kCreating;
  // The owner's start time (see process_start_time), to tell it from a later process with the
  // same pid. 0 when there is no owner.
  std::uint64_t owner_start_time = 0;
  // While an egress policy change is under way (journaled before the kernel is changed): the
  // policy being replaced (none when `changing_egress` and this is empty). gc finishes the change;
  // destroy removes what either policy put in the kernel.
  bool changing_egress = false;
  std::optional<EgressPolicy> previous_egress;
};

struct NetworkRecord {
  NetworkInfo info;
  Phase phase = Phase::kCreating;
};

class StateStore {
 public:
  // Creates RUN_DIR and RUN_DIR/namespaces (mode 0700) if needed.
  static Result<StateStore> open(const std::string& run_dir);

  // Held for the length of one operation; released on destruction.
  class Lock {
   public:
    explicit Lock(UniqueFd fd) : fd_(std::move(fd)) {}

   private:
    UniqueFd fd_;
  };
  Result<Lock> lock() const;

  // nullopt when there is no record; kCorrupt when it cannot be read back.
  Result<std::optional<Record>> read(const std::string& name) const;
  Result<void> write(const Record& record) const;
  // Missing records count as removed.
  Result<void> remove(const std::string& name) const;

  struct Listing {
    std::vector<Record> records;       // sorted by name
    std::vector<std::string> corrupt;  // "NAME: why", left on disk untouched
  };
  Listing list() const;
  // The names of the namespaces whose network namespace netcell made (neither adopted by path
  // nor shared), sorted, without reading their records: RUN_DIR/owned holds a marker per such
  // record, made before it and removed after it (a marker may outlive its record, never the
  // other way round).
  std::vector<std::string> owned_names() const;
  // Removes the markers of owned_names that have no record (a create killed between the two);
  // the caller holds the lock. Returns their paths.
  std::vector<std::string> sweep_markers() const;

  // The same for networks.
  Result<std::optional<NetworkRecord>> read_network(const std::string& name) const;
  Result<void> write_network(const NetworkRecord& record) const;
  Result<void> remove_network(const std::string& name) const;
  struct NetworkListing {
    std::vector<NetworkRecord> records;
    std::vector<std::string> corrupt;
  };
  NetworkListing list_networks() const;

  // Removes the temporary files that interrupted writes left anywhere under the run dir and
  // returns their paths. A temporary file names its writer (temp_file_writer in files.h) and is
  // removed only once that process is gone; a live writer's is never touched. Call it with the
  // lock held: an `N.json.tmp` of an earlier netcell names no writer, and is removed only from
  // namespaces/ and networks/, whose writers (of every version) write under the lock; elsewhere
  // (topologies/, which `up` writes without it) such a file is left alone.
  std::vector<std::string> sweep_temp_files() const;

  const std::string& run_dir() const { return run_dir_; }

 private:
  explicit StateStore(std::string run_dir) : run_dir_(std::move(run_dir)) {}
  std::string record_path(const std::string& name) const;
  std::string network_path(const std::string& name) const;
  std::string run_dir_;
};

}  // namespace netcell
