// netcell: what the calling process is allowed to do.
#pragma once

namespace netcell {

// Whether capability `cap` (CAP_NET_ADMIN, ...) is in the process's effective set.
bool has_capability(int cap);

}  // namespace netcell
