// netcell: the Linux backend — real network namespaces, enforced by the kernel.
#pragma once

#include <memory>
#include <string>

#include "netcell/backend.h"

namespace netcell {

struct LinuxBackendOptions {
  std::string netns_dir = "/run/netns";      // bind mounts; iproute2 reads /run/netns
  std::string etc_netns_dir = "/etc/netns";  // per-namespace /etc files, as `ip netns exec` uses
  // Where the host settings netcell changed are remembered, to be restored (the run dir).
  std::string state_dir = "/run/netcell";
  // Rootless (the backend runs inside the user's own user namespace): commands started in a
  // namespace enter a nested user namespace as this uid and gid (SpawnRequest::nested_uid), so
  // they hold no capability over the namespaces netcell made. -1: commands stay as they are.
  int nested_uid = -1;
  int nested_gid = -1;
};

std::unique_ptr<Backend> make_linux_backend(const LinuxBackendOptions& options);

}  // namespace netcell
