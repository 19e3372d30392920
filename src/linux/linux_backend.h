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
};

std::unique_ptr<Backend> make_linux_backend(const LinuxBackendOptions& options);

}  // namespace netcell
