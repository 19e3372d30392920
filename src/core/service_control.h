// netcell: starting, finding and stopping the host service (netcell-service) of a run dir.
//
// The service records itself in RUN_DIR/service.json ({"pid", "start_time", "port", "on_demand"})
// once its
// sockets are bound and the kernel redirects policy namespaces' DNS to its port. The record stays
// when the service dies, which is how the next netcell invocation knows to start it again; an
// orderly stop removes it. Its standard output and error go to RUN_DIR/service.log.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

#include "netcell/result.h"

namespace netcell::service {

struct Record {
  pid_t pid = 0;
  std::uint64_t start_time = 0;  // process_start_time(pid)
  std::uint16_t port = 0;
  // Started by netcell (start below, which passes --on-demand), which stops it again when no
  // namespace needs it; false for one an administrator runs (under systemd, with a metrics
  // endpoint), which netcell uses but never stops. Records without the field: true.
  bool on_demand = true;
};

std::string record_path(const std::string& run_dir);
std::string log_path(const std::string& run_dir);
// nullopt when there is none (or it cannot be read: a service that never finished starting).
std::optional<Record> read(const std::string& run_dir);
Result<void> write(const std::string& run_dir, const Record& record);
Result<void> remove(const std::string& run_dir);
// Whether the recorded process is still the service (same pid and start time).
bool alive(const Record& record);

// The binary to start: `configured`, else $NETCELL_SERVICE, else the installed one.
std::string binary(const std::string& configured);

struct StartOptions {
  std::string binary;
  std::string run_dir, netns_dir, private_subnet;
};
// Starts the service detached (its own session, stdio to the log, no inherited descriptors) and
// waits until it says it is ready (at most 5 s). On failure the error carries the last line it
// logged, and no service of this start is left running.
Result<Record> start(const StartOptions& options);
// Ends the recorded service (SIGTERM; SIGKILL after 2 s) and removes its record. Callers leave a
// service that is not on demand alone.
Result<void> stop(const std::string& run_dir);

}  // namespace netcell::service
