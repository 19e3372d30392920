// netcell: which part of an egress policy decides a flow — the kernel's sets (nft_elements.cc,
// policy_elements) computed again in user space, for the denied-flow log (flowlog.h).
#include <netinet/in.h>

#include "netcell/policy.h"

namespace netcell {

bool EgressRule::matches(const IpAddress& to, std::uint8_t ip_protocol, std::uint16_t port) const {
  if (to.is_v4() != destination.address.is_v4()) return false;
  const unsigned len = destination.prefix_len;
  if (to.is_v4()) {
    const std::uint32_t mask = len == 0    ? 0
                               : len >= 32 ? ~std::uint32_t{0}
                                           : ~std::uint32_t{0} << (32 - len);
    if (((to.v4_host_order() ^ destination.address.v4_host_order()) & mask) != 0) return false;
  } else {
    const auto& a = to.bytes();
    const auto& b = destination.address.bytes();
    for (unsigned i = 0; i < 16 && 8 * i < len; ++i) {
      const unsigned keep = len >= 8 * (i + 1) ? 8 : len - 8 * i;
      const auto mask = static_cast<std::uint8_t>(0xFF << (8 - keep));
      if (((a[i] ^ b[i]) & mask) != 0) return false;
    }
  }
  const bool transport = ip_protocol == IPPROTO_TCP || ip_protocol == IPPROTO_UDP;
  const bool in_ports = ports.any() || (port >= ports.first && port <= ports.last);
  switch (protocol) {
    case PolicyProtocol::kTcp: return ip_protocol == IPPROTO_TCP && in_ports;
    case PolicyProtocol::kUdp: return ip_protocol == IPPROTO_UDP && in_ports;
    case PolicyProtocol::kIcmp:  // ICMPv6 for an IPv6 destination
      return to.is_v4() ? ip_protocol == IPPROTO_ICMP : ip_protocol == IPPROTO_ICMPV6;
    case PolicyProtocol::kAny: return ports.any() || (transport && in_ports);
  }
  return false;
}

EgressDecision EgressPolicy::decide(const IpAddress& destination, std::uint8_t ip_protocol,
                                    std::uint16_t port) const {
  std::optional<std::size_t> allowed_by;
  for (std::size_t i = 0; i < rules.size(); ++i) {
    if (!rules[i].matches(destination, ip_protocol, port)) continue;
    if (rules[i].action == PolicyAction::kDeny) return {PolicyAction::kDeny, i};
    if (!allowed_by) allowed_by = i;
  }
  if (allowed_by) return {PolicyAction::kAllow, allowed_by};
  return {default_action, std::nullopt};
}

}  // namespace netcell
