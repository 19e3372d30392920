// netcell: what this host and process offer netcell, read without changing anything (for
// `netcell doctor` and programs that want to say why netcell cannot run).
#pragma once

#include <string>

#include "netcell/result.h"

namespace netcell {

// Whether the calling thread holds capability `cap` (CAP_NET_ADMIN, CAP_SYS_ADMIN, ...) in its
// effective set.
bool has_capability(int cap);

// Loads libnftables (netcell loads it on first use, not at start) and makes a context, as the
// Linux backend's firewall does: its file name on success, else why it cannot be used.
Result<std::string> probe_firewall_library();

// The ifindex of the link (a bridge) that link `name` of this process's network namespace is a
// port of; 0 when it is nobody's port, kNotFound when there is no such link. Read over netlink:
// /sys/class/net shows the network namespace sysfs was mounted in, which inside a rootless
// session (rootless.h) is the user's own, not the session's.
Result<int> link_master_index(const std::string& name);

}  // namespace netcell
