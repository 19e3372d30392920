// netcell-service's relay of published ports on the host's IPv6 loopback (netcell/relay.h): for
// every ready namespace with routes, a listener on [::1]:HOSTPORT (TCP, UDP or both) whose
// traffic goes to the namespace's IPv6 address. One thread, one epoll, for all namespaces. It
// reads the records without the run dir's lock (NamespaceManager::snapshot), at start and when
// one changes (inotify), so a restarted service relays again what the records name; and it
// answers each namespace it read in RUN_DIR/relayed/NAME.answer ("ok" or "error: WHY"), which is
// what a create waits for.
//
// TCP: each accepted connection gets a connection of its own to the target, relayed both ways
// with splice(2) through a pipe per direction (no copy to user space), half-closes passed on.
// UDP: each client address is a flow with a connected socket of its own to the target; replies go
// back from the listener; a flow idle for Limits::udp_idle_seconds goes. Both are bounded: beyond
// Limits::connections (TCP) or Limits::udp_flows a new one is refused (closed, or its datagram
// dropped); a pipe holds at most Limits::pipe_bytes.
//
// The namespace sees the relay's connections come from the host end of its link (its IPv6
// gateway), not from ::1: a packet from ::1 leaves the host's veth end, but the namespace's kernel
// does not take it (IPv6 accepts a loopback source only on the loopback device), so no relay can
// keep that source.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "netcell/manager.h"
#include "netcell/result.h"

namespace netcell::service {

class LoopbackRelay {
 public:
  struct Limits {
    std::size_t connections = 4096;
    std::size_t udp_flows = 4096;
    int udp_idle_seconds = 60;
    std::size_t pipe_bytes = 1 << 18;
  };
  // `mgr` must outlive the relay and be used by no other thread. Starts its thread.
  static Result<std::unique_ptr<LoopbackRelay>> start(NamespaceManager& mgr, Limits limits);
  // Stops the thread and closes every socket.
  ~LoopbackRelay();

  struct Impl;

 private:
  explicit LoopbackRelay(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace netcell::service
