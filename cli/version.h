// netcell CLI: the version and the source revision the binary was built from.
#pragma once

#include <string>

namespace netcell::cli {

// The project version of CMakeLists.txt, e.g. "0.1.0".
extern const char kVersion[];
// `git describe --tags --always --dirty --abbrev=12` of the source tree at the last build (a tag or
// an abbreviated commit hash, "-dirty" when the tree had uncommitted changes), the revision a
// packager passed as -DNETCELL_REVISION=..., or "unknown" when built from outside git (a
// tarball). Defined in the file cmake/revision.cmake generates at every build.
extern const char kRevision[];

// What `netcell --version` prints: "netcell 0.1.0 (revision v0.1.0-3-g0123456789ab)".
inline std::string version_line() {
  return std::string("netcell ") + kVersion + " (revision " + kRevision + ")";
}

}  // namespace netcell::cli
