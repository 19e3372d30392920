// netcell: what rootless mode needs from the machine, checked one by one (netcell doctor,
// docs/ROOTLESS.md).
#pragma once

#include <string>
#include <vector>

namespace netcell::rootless {

struct Prerequisite {
  std::string what;  // "user namespaces", "/dev/net/tun", "slirp4netns", "subuid range"
  bool ok = false;
  std::string detail;  // what was found, or exactly what is missing and who can fix it
};

// Each check, in that order. A subordinate uid range is reported but never required: netcell maps
// only the user's own uid.
std::vector<Prerequisite> check_prerequisites();

// The first missing prerequisite as one line ("rootless mode unavailable: WHAT: DETAIL"); empty
// when all are there.
std::string first_missing(const std::vector<Prerequisite>& checks);

// Whether a run dir is a rootless session's, and whether the calling process is inside it.
struct SessionPlace {
  bool rootless = false;  // the run dir records a session (RUN_DIR/rootless/session.json)
  bool inside = false;    // this process is in its holder's user and network namespaces
  int holder_pid = 0;     // that session's holder (0 when none is running)
};
// netcell's host service serves a rootless run dir only from inside its session: it is started
// by a netcell command that has joined the session, and drives the session's network namespace
// with the Linux backend's code (there it is root of the session's user namespace).
SessionPlace session_place(const std::string& run_dir);

}  // namespace netcell::rootless
