// netcell: backend-neutral validation of what callers ask for.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>

#include "netcell/result.h"
#include "netcell/types.h"

namespace netcell {

// Checks `config` as a whole and returns the namespace's final name (derived from the owner pid
// when the config leaves it empty). Every error is kInvalidArgument, kNotFound (owner pid does not
// exist) or kUnsupported (a mode this version does not implement yet).
// An egress policy for a namespace of `mode`: only private ones take one, and it must validate.
Result<void> validate_egress(IsolationMode mode, const std::optional<EgressPolicy>& policy);
Result<NamespaceId> validate_config(const NamespaceConfig& config);

// A pid's identity over time: its start time in clock ticks since boot (/proc/PID/stat field 22),
// so that a reused pid is not mistaken for the original process. nullopt if it does not exist.
std::optional<std::uint64_t> process_start_time(pid_t pid);
// Whether pid still names the process that had `start_time` and it has not ended (a zombie that
// nobody reaped yet counts as ended).
bool process_running(pid_t pid, std::uint64_t start_time);
// Ends that process if it is still running: SIGTERM, then SIGKILL after `grace_ms` (through a
// pidfd, so a pid reused meanwhile is never signalled), waiting up to `grace_ms` for each.
void end_process(pid_t pid, std::uint64_t start_time, int grace_ms);
// Forks a process detached from the caller: in a session of its own and reparented away (a
// grandchild; the child in between is reaped here). Returns true in that process, which may then
// make only async-signal-safe calls (the caller may have threads) and must end with exec or
// _exit; false in the caller.
Result<bool> fork_detached();

// Checks a pid given by a user: positive and an existing process.
Result<void> validate_pid(pid_t pid);

}  // namespace netcell
