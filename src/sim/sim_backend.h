// netcell: the simulation backend — the same API, validation and errors as Linux, with no OS
// changes. Its namespaces exist only as records; it never pretends to isolate (enforced = false),
// and commands it spawns run in the caller's own network.
#pragma once

#include <memory>

#include "netcell/backend.h"

namespace netcell {

std::unique_ptr<Backend> make_simulation_backend();

}  // namespace netcell
