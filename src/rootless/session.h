// netcell: a user's rootless session — the holder process and its uplink helper.
//
// One session per run dir. The holder is a process of the user that owns, for as long as it lives,
// a user namespace (the user is its root, mapped to their own uid only, so no /etc/subuid range is
// needed), a mount namespace (where netcell's namespaces are bind-mounted, on tmpfs over
// RUN_DIR/netns and RUN_DIR/etc-netns, so none of it is visible outside or outlives the holder)
// and the user's "host" network namespace. The helper (slirp4netns) gives that namespace its
// uplink (tap0, 10.0.2.100/24, default route) with the paths to the host's loopback closed
// (--disable-host-loopback, --disable-dns) and exits when the holder does (--exit-fd on a pipe
// only the holder writes to). Both are recorded in RUN_DIR/rootless/session.json (pid and start
// time each), started on demand and ended by netcell once no namespace and no member (member())
// needs them.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

#include "core/unique_fd.h"
#include "netcell/result.h"

namespace netcell::rootless {

// The MTU of the helper's link (tap0, its --mtu), and so of the session's namespaces unless their
// config names one: the helper's cost is per packet.
constexpr std::uint32_t kHelperMtu = 65520;

struct Process {
  pid_t pid = 0;
  std::uint64_t start_time = 0;  // process_start_time(pid)
};

struct Session {
  Process holder{};
  Process helper{};
};

// Where a run dir keeps a session's parts.
struct Paths {
  explicit Paths(std::string run_dir);
  std::string run_dir;
  std::string dir;           // RUN_DIR/rootless
  std::string record;        // RUN_DIR/rootless/session.json
  std::string helper_log;    // RUN_DIR/rootless/slirp4netns.log
  std::string api_socket;    // RUN_DIR/rootless/slirp4netns.sock (the helper's --api-socket)
  std::string ports_dir;     // RUN_DIR/rootless/ports (rootless/hostfwd.h: published ports)
  std::string networks_dir;  // RUN_DIR/rootless/networks (bridged networks, made in each session)
  std::string netns_dir;     // RUN_DIR/netns (a tmpfs in the holder's mount namespace)
  std::string etc_dir;       // RUN_DIR/etc-netns (likewise)
  std::string lock;          // RUN_DIR/rootless.lock (outlives the session: never removed)
  std::string members;       // RUN_DIR/rootless.members (likewise: member()'s locks)
};

// Waits for the session's lock (flock(LOCK_EX) on paths.lock, released when the fd closes). A
// process holds it while it finds, starts, repairs, joins or ends the session, so concurrent
// netcell invocations of one user never start two holders or two helpers. Taken after the run
// dir's own lock by those that hold both, and never the other way round.
Result<UniqueFd> lock_session(const Paths& paths);

// Whether the recorded process is still that process (same pid and start time, not a zombie).
bool alive(const Process& process);

// The recorded session, or nullopt without a (readable) record.
std::optional<Session> read_session(const Paths& paths);

// Starts the holder and then the helper, waits until the helper says the uplink is up (at most
// 5 s) and records both. On failure nothing of the start is left running, and the error says why
// (the helper's last log line). A holder stays only once the record is written: if the caller
// dies before, the holder ends, and the helper with it.
Result<Session> start_session(const Paths& paths);

// Starts a new helper for a live holder whose helper died, and records it.
Result<Session> restart_helper(const Paths& paths, const Session& session);

// Ends the helper and the holder (SIGTERM, then SIGKILL after a second) if they are still the
// recorded processes, and removes the record, the helper's log and API socket and the journals
// of published ports (the forwards went with the helper).
Result<void> stop_session(const Paths& paths, const Session& session);

// Removes what a start killed before it recorded the session left (the helper's log), when there
// is no record.
void forget_unrecorded(const Paths& paths);

// Makes the calling process a member of the holder's user, mount and network namespaces (the
// working directory is kept). Process-wide and for good: the process must be single-threaded,
// and one that joined a session before cannot join another (kConflict, kJoinedBefore).
Result<void> join(const Process& holder);

// Whether this process has joined a session (then it can join no other).
bool joined_before();

// What a process that joined a session that has ended is told when it needs one again: it is
// root in the old session's user namespace, which gives it nothing in a new one.
inline constexpr char kJoinedBefore[] =
    "rootless: this process joined a session that has ended, and a process joins one session "
    "only: run netcell again, or keep the library's NamespaceManager while the process needs its "
    "namespaces";

// A process that joined the session says so for as long as it needs it: a shared flock on
// paths.members, which goes with the fd (close-on-exec, so nothing the process starts holds it)
// and with the process, however it ends. Taken under the session's lock.
Result<UniqueFd> member(const Paths& paths);

// Whether a process other than the holder of `mine` (member()'s fd) is a member: its shared lock
// keeps this one from becoming exclusive. Asked under the session's lock, which every new member
// takes first, so the answer holds until that lock is released; `mine` is shared again after.
bool other_members(int mine);

// The helper binary: $NETCELL_SLIRP4NETNS, else slirp4netns found on PATH; empty when none is.
std::string helper_binary();

}  // namespace netcell::rootless
