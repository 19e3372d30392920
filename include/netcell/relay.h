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

// The publishes of `info` that the host service relays: those of a dual-stack private or bridged
// namespace that cover ::1 (PortForward::covers_ipv6_loopback); empty for every other namespace.
std::vector<LoopbackRoute> loopback_routes(const NamespaceInfo& info);

// Where the host service answers, once it has read namespace `name`'s ready record, whether it
// relays its routes: one line, "ok" or "error: WHY".
std::string relay_answer_path(const std::string& run_dir, const std::string& name);

}  // namespace netcell
