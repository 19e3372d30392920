// netcell: egress policy — what a namespace may reach, as values validated once.
//
// A policy is a default (allow or deny) and unordered rules. Each rule allows or denies one
// destination (an IPv4 CIDR) × protocol (tcp, udp, icmp or any) × port range (tcp and udp only;
// none = every port). A connection is denied when any deny rule matches it, else allowed when any
// allow rule matches it, else it gets the default: deny beats allow, order does not matter.
//
// A policy only ever narrows what the namespace's mode allows: an allow rule never opens a path
// the mode blocks (another namespace, the host's own services). It applies to new connections
// leaving the namespace (and datagrams, and ICMP); replies to connections made *into* the
// namespace (published ports) are not egress. It is enforced in the host's network namespace, so
// nothing inside the namespace, root included, can loosen it; a denied TCP connection gets a
// reset and anything else an ICMP administratively-prohibited error at once, so clients fail fast.
//
// Modes: private and bridged namespaces take a policy (full reaches nothing; shared is the host's
// own network, which netcell does not filter). A bridged namespace's policy covers its peers on
// the same network too, which its mode lets it reach: the host routes that traffic through the
// same rules.
//
// Text forms (the CLI's --allow / --deny):
//   DEST[:PORTS][/PROTO]   DEST a CIDR ("10.99.0.0/16"; host bits must be zero) or an address
//                          ("10.99.0.5", a /32); PORTS "443" or "8000-8100"; PROTO tcp, udp, icmp
//                          or any (the default). Ports need tcp, udp or any (any = tcp and udp).
//   "10.99.0.5:5432/tcp", "192.0.2.0/24/icmp", "0.0.0.0/0:53/udp", "198.51.100.7"
// Domain names ("*.example.com") are not rules yet: they need netcell's own resolver
// (DomainPattern below is the matching they will use).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "netcell/address.h"
#include "netcell/result.h"

namespace netcell {

enum class PolicyAction { kAllow, kDeny };
std::string_view to_string(PolicyAction action);
// "allow" or "deny".
Result<PolicyAction> parse_policy_action(std::string_view text);

enum class PolicyProtocol { kAny, kTcp, kUdp, kIcmp };
std::string_view to_string(PolicyProtocol protocol);
Result<PolicyProtocol> parse_policy_protocol(std::string_view text);

// An inclusive port range; {0, 0} means every port.
struct PortRange {
  std::uint16_t first = 0;
  std::uint16_t last = 0;
  bool any() const { return first == 0 && last == 0; }
  friend bool operator==(const PortRange&, const PortRange&) = default;
};

struct EgressRule {
  PolicyAction action = PolicyAction::kAllow;
  IpPrefix destination;  // network address / length
  PolicyProtocol protocol = PolicyProtocol::kAny;
  PortRange ports;

  // `action` and the text form above; kInvalidArgument with a one-line reason.
  static Result<EgressRule> parse(PolicyAction action, std::string_view text);
  // The text form (without the action), normalised: "10.99.0.5/32:5432/tcp".
  std::string to_string() const;
  // Whether a packet to `destination` with IP protocol number `ip_protocol` (IPPROTO_TCP, ...)
  // and destination port `port` (0 for protocols without ports) falls under this rule, as the
  // kernel's policy sets match it: any without ports is every protocol, any with ports is tcp and
  // udp, icmp is IPv4 ICMP.
  bool matches(const IpAddress& destination, std::uint8_t ip_protocol, std::uint16_t port) const;
  friend bool operator==(const EgressRule&, const EgressRule&) = default;
};

// What a policy decides for one new flow, and which part of it did: the first matching deny rule,
// else the first matching allow rule, else the default (`rule` empty).
struct EgressDecision {
  PolicyAction action = PolicyAction::kAllow;
  std::optional<std::size_t> rule;  // an index into EgressPolicy::rules
  friend bool operator==(const EgressDecision&, const EgressDecision&) = default;
};

// The most rules one namespace's policy may have.
inline constexpr std::size_t kMaxEgressRules = 256;

struct EgressPolicy {
  PolicyAction default_action = PolicyAction::kAllow;
  std::vector<EgressRule> rules;

  // What the address rules and the default decide for a flow (see EgressRule::matches): deny
  // beats allow, so a deny rule is named whenever one matches. Addresses learned from names
  // (domains) are not known here.
  EgressDecision decide(const IpAddress& destination, std::uint8_t ip_protocol,
                        std::uint16_t port) const;
  // Checks every rule again (as parse would) and the count; duplicates are refused too.
  Result<void> validate() const;
  friend bool operator==(const EgressPolicy&, const EgressPolicy&) = default;
};

// What the kernel counted for a policy: the packets it decided on (the first packet of each new
// connection; every packet of a one-way UDP flow) and their bytes, per rule and for the default.
struct PolicyCounter {
  std::uint64_t packets = 0;
  std::uint64_t bytes = 0;
  friend bool operator==(const PolicyCounter&, const PolicyCounter&) = default;
};
struct EgressCounters {
  std::vector<PolicyCounter> rules;  // in the order of EgressPolicy::rules
  PolicyCounter by_default;          // what no rule matched (allowed or refused by the default)
};

// A domain name pattern for allow-lists: an exact name ("pypi.org") or "*." and a name
// ("*.example.com": one or more labels in front of example.com, never example.com itself).
// Normalised to lower case without a trailing dot; labels of 1-63 letters, digits, '-' and '_'
// (not starting or ending with '-'), at most 253 bytes in all, at least two labels after "*.".
class DomainPattern {
 public:
  static Result<DomainPattern> parse(std::string_view text);
  // Whether the name (any case, trailing dot or not) matches.
  bool matches(std::string_view name) const;
  const std::string& str() const { return text_; }
  friend bool operator==(const DomainPattern&, const DomainPattern&) = default;

 private:
  std::string text_;  // normalised, "*." included for a wildcard
  bool wildcard_ = false;
};

}  // namespace netcell
