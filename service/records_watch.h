// netcell-service: what its epoll loops (the resolver, the [::1] relay) share: adding a
// descriptor, and watching a run dir's namespace records (RUN_DIR/namespaces/NAME.json) with
// inotify.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>

#include "netcell/result.h"

namespace netcell::service {

// Adds `fd` to `epoll` for `events`, with the descriptor as the event's data.
void epoll_add(int epoll, int fd, std::uint32_t events);

// A non-blocking, close-on-exec inotify descriptor watching `run_dir`'s records for replacement,
// writing and removal.
Result<int> watch_records(const std::string& run_dir);
// The names of the records whose events are queued on `inotify` now (read once); nullopt when the
// queue overflowed, so that any record may have changed.
std::optional<std::set<std::string>> changed_records(int inotify);

}  // namespace netcell::service
