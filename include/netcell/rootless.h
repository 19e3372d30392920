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

}  // namespace netcell::rootless
