#include "backends/backend_factory.h"

#include <linux/capability.h>
#include <unistd.h>

#include <cstdlib>

#include "linux/linux_backend.h"
#include "netcell/host.h"
#include "netcell/rootless.h"
#include "rootless/rootless_backend.h"
#include "sim/sim_backend.h"

namespace netcell {

Result<BackendKind> choose_backend(const ManagerOptions& options) {
  bool privileged = has_capability(CAP_NET_ADMIN) && has_capability(CAP_SYS_ADMIN);
  switch (options.backend) {
    case BackendChoice::kSimulation: return BackendKind::kSimulation;
    case BackendChoice::kLinux:
      if (privileged) return BackendKind::kLinux;
      return fail(ErrorCode::kPermissionDenied,
                  "the Linux backend needs CAP_NET_ADMIN and CAP_SYS_ADMIN (run as root); "
                  "without them use --backend rootless (netcell doctor says what it needs)");
    case BackendChoice::kRootless: {
      std::string missing = rootless::first_missing(rootless::check_prerequisites());
      if (missing.empty()) return BackendKind::kRootless;
      return fail(ErrorCode::kPermissionDenied, missing);
    }
    case BackendChoice::kAuto: {
      if (privileged) return BackendKind::kLinux;
      std::string missing = rootless::first_missing(rootless::check_prerequisites());
      if (missing.empty()) return BackendKind::kRootless;
      if (options.allow_simulation) return BackendKind::kSimulation;
      return fail(ErrorCode::kPermissionDenied,
                  "no enforcing backend: the Linux backend needs CAP_NET_ADMIN and CAP_SYS_ADMIN "
                  "(run as root), and " +
                      missing + "; use --backend simulation for an unenforced model");
    }
  }
  return fail(ErrorCode::kInvalidArgument, "unknown backend choice");
}

Result<std::string> default_run_dir(BackendKind kind) {
  const char* xdg = std::getenv("XDG_RUNTIME_DIR");
  bool have_xdg = xdg != nullptr && *xdg != '\0';
  switch (kind) {
    case BackendKind::kLinux: return std::string("/run/netcell");
    case BackendKind::kRootless:
      if (!have_xdg || *xdg != '/') {
        return fail(ErrorCode::kInvalidArgument,
                    "rootless mode keeps its state in $XDG_RUNTIME_DIR/netcell, and "
                    "XDG_RUNTIME_DIR is not set: set it or give --run-dir");
      }
      return std::string(xdg) + "/netcell";
    case BackendKind::kSimulation:
      if (::geteuid() == 0) return std::string("/run/netcell-sim");
      if (have_xdg) return std::string(xdg) + "/netcell-sim";
      return "/tmp/netcell-sim-" + std::to_string(::geteuid());
  }
  return std::string("/run/netcell");
}

std::unique_ptr<Backend> make_backend(BackendKind kind, const ManagerOptions& options,
                                      const std::string& run_dir) {
  switch (kind) {
    case BackendKind::kLinux: {
      LinuxBackendOptions linux_options;
      linux_options.netns_dir = options.netns_dir;
      linux_options.etc_netns_dir = options.etc_netns_dir;
      linux_options.state_dir = run_dir;
      return make_linux_backend(linux_options);
    }
    case BackendKind::kRootless: return make_rootless_backend(run_dir);
    case BackendKind::kSimulation: break;
  }
  return make_simulation_backend();
}

}  // namespace netcell
