// netcell: what the host service relays from the host's IPv6 loopback. IPv6 has no
// route_localnet, and a DNAT of [::1]:PORT to a namespace never completes a connection, so a
// published port cannot be DNATed from [::1] to a namespace the way 127.0.0.1 is: netcell-service
// listens on
// [::1]:HOSTPORT itself and relays TCP and UDP to the namespace's IPv6 address
// (netcell-service(8)).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "netcell/address.h"
#include "netcell/types.h"

namespace netcell {

// One relayed publish: [::1]:host_port -> [target]:target_port.
struct LoopbackRoute {
  Protocol protocol = Protocol::kTcp;
  std::uint16_t host_port = 0;
  IpAddress target;
  std::uint16_t target_port = 0;
  friend bool operator==(const LoopbackRoute&, const LoopbackRoute&) = default;
};
// Where it listens: "[::1]:8080/tcp".
std::string to_string(const LoopbackRoute& route);

// The publishes of `info` that the host service relays: those of a dual-stack private or bridged
// namespace that cover ::1 (PortForward::covers_ipv6_loopback); empty for every other namespace.
std::vector<LoopbackRoute> loopback_routes(const NamespaceInfo& info);

// Where the host service answers, once it has read namespace `name`'s ready record, whether it
// relays its routes: one line, "ok" or "error: WHY".
std::string relay_answer_path(const std::string& run_dir, const std::string& name);

// What the host service says of a namespace's relay (NamespaceManager::relay_state): pending
// until it has read the ready record (a moment after create returns; create does not wait for
// it), then listening on every route (loopback_routes), or failed (another program took a port
// meanwhile, say) with the reason. All routes or none.
struct RelayState {
  enum class Kind { kPending, kListening, kFailed };
  Kind kind = Kind::kPending;
  std::string error;  // kFailed: why
};
// "pending", "listening", "failed".
const char* to_string(RelayState::Kind kind);
// The answer file's text as a state: "ok" listening, "error: WHY" failed, anything else (none
// yet, a torn read) pending.
RelayState relay_state_of_answer(const std::string& answer);

}  // namespace netcell
