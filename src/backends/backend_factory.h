// netcell: choosing and making a backend (ManagerOptions::backend), beside the backends.
#pragma once

#include <memory>
#include <string>

#include "netcell/backend.h"
#include "netcell/manager.h"

namespace netcell {

// The backend `options` asks for, given what this process may do: Linux with CAP_NET_ADMIN and
// CAP_SYS_ADMIN; else rootless when every rootless prerequisite holds (kAuto, kRootless); the
// simulation only when asked for (or allowed). Otherwise one line naming what is missing.
Result<BackendKind> choose_backend(const ManagerOptions& options);

// The run dir a backend uses when none is given: /run/netcell, $XDG_RUNTIME_DIR/netcell
// (rootless; an error without XDG_RUNTIME_DIR), /run/netcell-sim or the user's own for the
// simulation.
Result<std::string> default_run_dir(BackendKind kind);

// Makes the backend of `kind` over `run_dir` (already resolved).
std::unique_ptr<Backend> make_backend(BackendKind kind, const ManagerOptions& options,
                                      const std::string& run_dir);

}  // namespace netcell
