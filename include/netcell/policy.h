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
//   PATTERN[:PORTS][/PROTO]  a domain rule (DomainRule below): "pypi.org:443/tcp", "*.example.com"
//
// Names. A namespace with a policy resolves names only through netcell's resolver (its resolv.conf
// names the gateway; DNS to anywhere else is refused). The resolver answers a name only when the
// policy allows it (DomainRule, EgressPolicy::name_allowed) and refuses every other one without
// sending it upstream. Every address of an allowed answer (A records of the name and of the CNAME
// chain inside that one answer) is added to the namespace's allowed destinations, for the ports
// and protocol of the rules that allowed the name, before the answer is released; it stays for
// EgressPolicy::learn_seconds(TTL) and then only established connections to it go on.
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

// A rule by domain name: what a name matching `pattern` resolves to (through netcell's resolver,
// the namespace's only DNS) may be reached on `protocol` × `ports`; a deny rule makes the resolver
// refuse matching names instead (deny beats allow, as for addresses). Text form
// PATTERN[:PORTS][/PROTO], e.g. "pypi.org:443/tcp", "*.example.com", "api.test:8000-8100".
struct DomainRule {
  PolicyAction action = PolicyAction::kAllow;
  DomainPattern pattern;
  PolicyProtocol protocol = PolicyProtocol::kAny;
  PortRange ports;

  static Result<DomainRule> parse(PolicyAction action, std::string_view text);
  std::string to_string() const;
  friend bool operator==(const DomainRule&, const DomainRule&) = default;
};

// How netcell's resolver answers a name the policy does not allow.
enum class DnsRefusal { kRefused, kNxDomain };
std::string_view to_string(DnsRefusal refusal);
Result<DnsRefusal> parse_dns_refusal(std::string_view text);

// How long an address learned from an answer stays allowed: max(TTL, min_ttl) + grace seconds.
inline constexpr std::uint32_t kDefaultLearnMinTtl = 30;
inline constexpr std::uint32_t kDefaultLearnGrace = 30;
inline constexpr std::uint32_t kMaxLearnSeconds = 7 * 24 * 3600;

// The most rules one namespace's policy may have.
inline constexpr std::size_t kMaxEgressRules = 256;

struct EgressPolicy {
  PolicyAction default_action = PolicyAction::kAllow;
  std::vector<EgressRule> rules;
  // Rules by domain name (DomainRule below). A policy with any of them, or with a deny default,
  // resolves names only through netcell's resolver; see DomainRule.
  std::vector<DomainRule> domains;
  DnsRefusal refuse_with = DnsRefusal::kRefused;
  std::uint32_t learn_min_ttl = kDefaultLearnMinTtl;  // seconds
  std::uint32_t learn_grace = kDefaultLearnGrace;     // seconds

  // Whether netcell's resolver answers `name`: no deny domain rule matches it, and an allow domain
  // rule does or the default is allow.
  bool name_allowed(std::string_view name) const;
  // The indexes (in `domains`) of the allow rules that match `name` (empty when it is refused).
  std::vector<std::size_t> allowing_domain_rules(std::string_view name) const;
  // Seconds an address from an answer with this TTL stays allowed.
  std::uint32_t learn_seconds(std::uint32_t ttl) const;

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
  std::vector<PolicyCounter> rules;    // in the order of EgressPolicy::rules
  std::vector<PolicyCounter> domains;  // in the order of EgressPolicy::domains: what reached the
                                       // addresses their names resolved to
  PolicyCounter by_default;            // what no rule matched (allowed or refused by the default)
};

// A destination netcell's resolver let a namespace reach: an address, on a protocol and ports,
// until `expires_unix_ms`, because an answer for `name` held it and the allow domain rules `rules`
// (indexes in EgressPolicy::domains) matched that name.
struct LearnedDestination {
  IpAddress address;
  // kAny: every protocol and port (ports unused); kTcp, kUdp: the ports; kIcmp: ICMP.
  PolicyProtocol protocol = PolicyProtocol::kAny;
  PortRange ports;  // tcp, udp: first..last, 0..65535 for every port
  std::int64_t expires_unix_ms = 0;
  std::string name;  // the last name that resolved to it
  std::vector<std::size_t> rules;
  friend bool operator==(const LearnedDestination&, const LearnedDestination&) = default;
};
// The most addresses one answer, and one namespace in all, may add.
inline constexpr std::size_t kMaxLearnedPerAnswer = 32;
inline constexpr std::size_t kMaxLearnedPerNamespace = 4096;

// A number of seconds, 0..kMaxLearnSeconds ("30").
Result<std::uint32_t> parse_seconds(std::string_view text);

// Parses one --allow / --deny entry (or an egress: list item): a domain pattern when the
// destination is a name ("*.example.com:443"), else an address rule; appends it to `policy`.
Result<void> add_egress_entry(EgressPolicy& policy, PolicyAction action, std::string_view text);

}  // namespace netcell
