#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "netcell/host.h"

namespace netcell {

// capget(2) directly (glibc has no wrapper, and libcap would be a dependency for one call):
// reading CapEff from /proc/self/status makes the kernel format the whole file.
bool has_capability(int cap) {
  if (cap < 0 || cap >= 64) return false;
  __user_cap_header_struct header{};
  header.version = _LINUX_CAPABILITY_VERSION_3;
  header.pid = 0;  // this thread
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (::syscall(SYS_capget, &header, data) != 0) return false;
  return (data[cap / 32].effective >> (cap % 32)) & 1U;
}

}  // namespace netcell
