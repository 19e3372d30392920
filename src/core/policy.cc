#include "netcell/policy.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <set>
#include <type_traits>

namespace netcell {
namespace {

constexpr char kRuleForm[] = "expected DEST[:PORTS][/tcp|udp|icmp|any], e.g. 10.99.0.5:5432/tcp";

Result<std::uint16_t> parse_port(std::string_view text) {
  unsigned value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    return fail(ErrorCode::kInvalidArgument, '\'' + std::string(text) + "' is not a port number");
  }
  if (value < 1 || value > 65535) {
    return fail(ErrorCode::kInvalidArgument, "port " + std::string(text) + " is outside 1..65535");
  }
  return static_cast<std::uint16_t>(value);
}

Result<PortRange> parse_ports(std::string_view text) {
  auto dash = text.find('-');
  auto first = parse_port(text.substr(0, dash));
  if (!first) return fail(first.error());
  if (dash == std::string_view::npos) return PortRange{*first, *first};
  auto last = parse_port(text.substr(dash + 1));
  if (!last) return fail(last.error());
  if (*last < *first) {
    return fail(ErrorCode::kInvalidArgument,
                "port range " + std::string(text) + " is reversed (first > last)");
  }
  return PortRange{*first, *last};
}

// An IPv4 or IPv6 network with every host bit zero, or an address (a /32 or /128).
Result<IpPrefix> parse_destination(std::string_view text) {
  IpPrefix prefix;
  if (text.find('/') == std::string_view::npos) {
    auto address = IpAddress::parse(text);
    if (!address) return fail(address.error());
    prefix = IpPrefix{*address, static_cast<std::uint8_t>(address->is_v4() ? 32 : 128)};
  } else {
    auto parsed = IpPrefix::parse(text);
    if (!parsed) return fail(parsed.error());
    prefix = *parsed;
  }
  if (!prefix.address.is_v4()) {
    auto bytes = prefix.address.bytes();
    bool host_bits = false;
    for (unsigned i = 0; i < 16; ++i) {
      const unsigned keep = prefix.prefix_len >= 8 * (i + 1) ? 8
                            : prefix.prefix_len <= 8 * i     ? 0
                                                             : prefix.prefix_len - 8 * i;
      const auto mask = static_cast<std::uint8_t>(keep == 0 ? 0 : 0xFF << (8 - keep));
      host_bits = host_bits || (bytes[i] & ~mask & 0xFF) != 0;
      bytes[i] = static_cast<std::uint8_t>(bytes[i] & mask);
    }
    if (host_bits) {
      IpPrefix network{IpAddress::v6(bytes), prefix.prefix_len};
      return fail(ErrorCode::kInvalidArgument, "host bits set in " + std::string(text) +
                                                   " (did you mean " + network.to_string() + "?)");
    }
    return prefix;
  }
  std::uint32_t host_bits = prefix.prefix_len >= 32 ? 0 : (~std::uint32_t{0} >> prefix.prefix_len);
  if ((prefix.address.v4_host_order() & host_bits) != 0) {
    IpPrefix network{IpAddress::v4(prefix.address.v4_host_order() & ~host_bits), prefix.prefix_len};
    return fail(ErrorCode::kInvalidArgument, "host bits set in " + std::string(text) +
                                                 " (did you mean " + network.to_string() + "?)");
  }
  return prefix;
}

// Splits "REST[:PORTS][/PROTO]" (REST may be a bracketed IPv6 address) into its parts.
Result<std::string_view> split_rule(std::string_view text, PolicyProtocol& protocol,
                                    PortRange& ports) {
  std::string_view rest = text;
  // The protocol is a suffix "/NAME" (a CIDR's "/LEN" is digits).
  if (auto slash = rest.rfind('/'); slash != std::string_view::npos) {
    std::string_view last = rest.substr(slash + 1);
    if (!last.empty() && !std::isdigit(static_cast<unsigned char>(last.front()))) {
      auto parsed = parse_policy_protocol(last);
      if (!parsed) return fail(parsed.error());
      protocol = *parsed;
      rest = rest.substr(0, slash);
    }
  }
  // Ports follow the last ':' of an IPv4 destination or a name, or the ']' of a bracketed IPv6
  // one; a bare IPv6 destination (two ':' or more) has none.
  std::size_t colon = std::string_view::npos;
  if (!rest.empty() && rest.front() == '[') {
    auto close = rest.find(']');
    if (close == std::string_view::npos) return fail(ErrorCode::kInvalidArgument, "no ']'");
    if (close + 1 < rest.size() && rest[close + 1] != ':') {
      return fail(ErrorCode::kInvalidArgument, "expected ':' after ']'");
    }
    if (close + 1 < rest.size()) colon = close + 1;
  } else if (std::count(rest.begin(), rest.end(), ':') == 1) {
    colon = rest.find(':');
  }
  if (colon != std::string_view::npos) {
    auto parsed = parse_ports(rest.substr(colon + 1));
    if (!parsed) return fail(parsed.error());
    ports = *parsed;
    rest = rest.substr(0, colon);
  }
  if (rest.size() >= 2 && rest.front() == '[' && rest.back() == ']') {
    rest = rest.substr(1, rest.size() - 2);
  }
  if (rest.empty()) return fail(ErrorCode::kInvalidArgument, "no destination");
  if (!ports.any() && protocol == PolicyProtocol::kIcmp) {
    return fail(ErrorCode::kInvalidArgument, "icmp has no ports");
  }
  return rest;
}

std::string ports_and_protocol(const PortRange& ports, PolicyProtocol protocol) {
  std::string out;
  if (!ports.any()) {
    out += ':' + std::to_string(ports.first);
    if (ports.last != ports.first) out += '-' + std::to_string(ports.last);
  }
  out += '/';
  out += netcell::to_string(protocol);
  return out;
}

// Whether an entry's destination is a name rather than an address: it is not an address and
// has a letter or '*' (an IPv6 address without brackets has ':').
bool names_a_domain(std::string_view rest) {
  if (IpAddress::parse(rest.substr(0, rest.find('/')))) return false;
  if (rest.find(':') != std::string_view::npos || rest.find('/') != std::string_view::npos) {
    return false;
  }
  return std::any_of(rest.begin(), rest.end(), [](char c) {
    return c == '*' || std::isalpha(static_cast<unsigned char>(c)) != 0;
  });
}

bool valid_label(std::string_view label) {
  if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
    return false;
  }
  return std::all_of(label.begin(), label.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
  });
}

std::string lower_without_dot(std::string_view name) {
  std::string out(name);
  if (!out.empty() && out.back() == '.') out.pop_back();
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

std::string_view to_string(PolicyAction action) {
  return action == PolicyAction::kAllow ? "allow" : "deny";
}

Result<PolicyAction> parse_policy_action(std::string_view text) {
  if (text == "allow") return PolicyAction::kAllow;
  if (text == "deny") return PolicyAction::kDeny;
  return fail(ErrorCode::kInvalidArgument,
              "unknown egress default '" + std::string(text) + "' (expected allow or deny)");
}

std::string_view to_string(PolicyProtocol protocol) {
  switch (protocol) {
    case PolicyProtocol::kAny: return "any";
    case PolicyProtocol::kTcp: return "tcp";
    case PolicyProtocol::kUdp: return "udp";
    case PolicyProtocol::kIcmp: return "icmp";
  }
  return "any";
}

Result<PolicyProtocol> parse_policy_protocol(std::string_view text) {
  if (text == "any") return PolicyProtocol::kAny;
  if (text == "tcp") return PolicyProtocol::kTcp;
  if (text == "udp") return PolicyProtocol::kUdp;
  if (text == "icmp") return PolicyProtocol::kIcmp;
  return fail(ErrorCode::kInvalidArgument,
              "unknown protocol '" + std::string(text) + "' (expected tcp, udp, icmp or any)");
}

Result<EgressRule> EgressRule::parse(PolicyAction action, std::string_view text) {
  auto bad = [&](const Error& why) {
    return fail(why.code(), "invalid egress rule '" + std::string(text) + "': " + why.message() +
                                " (" + kRuleForm + ")");
  };
  EgressRule rule;
  rule.action = action;
  auto rest = split_rule(text, rule.protocol, rule.ports);
  if (!rest) return bad(rest.error());
  auto destination = parse_destination(*rest);
  if (!destination) return bad(destination.error());
  rule.destination = *destination;
  return rule;
}

std::string EgressRule::to_string() const {
  // An IPv6 destination with ports is bracketed, so that the text parses back the same.
  if (!destination.address.is_v4() && !ports.any()) {
    std::string out(1, '[');
    out.append(destination.to_string()).append(1, ']');
    return out + ports_and_protocol(ports, protocol);
  }
  return destination.to_string() + ports_and_protocol(ports, protocol);
}

Result<DomainRule> DomainRule::parse(PolicyAction action, std::string_view text) {
  auto bad = [&](const Error& why) {
    return fail(why.code(), "invalid domain rule '" + std::string(text) + "': " + why.message() +
                                " (expected PATTERN[:PORTS][/tcp|udp|icmp|any], e.g. "
                                "*.example.com:443/tcp)");
  };
  DomainRule rule;
  rule.action = action;
  auto rest = split_rule(text, rule.protocol, rule.ports);
  if (!rest) return bad(rest.error());
  if (IpAddress::parse(*rest)) {
    return bad(Error(ErrorCode::kInvalidArgument, "an address is not a name (use --allow)"));
  }
  auto pattern = DomainPattern::parse(*rest);
  if (!pattern) return bad(pattern.error());
  rule.pattern = std::move(*pattern);
  if (action == PolicyAction::kDeny &&
      (!rule.ports.any() || rule.protocol != PolicyProtocol::kAny)) {
    return bad(Error(ErrorCode::kInvalidArgument,
                     "a denied name is refused as a whole: it takes no ports or protocol"));
  }
  return rule;
}

std::string DomainRule::to_string() const {
  return pattern.str() + ports_and_protocol(ports, protocol);
}

std::string_view to_string(DnsRefusal refusal) {
  return refusal == DnsRefusal::kRefused ? "refused" : "nxdomain";
}

Result<DnsRefusal> parse_dns_refusal(std::string_view text) {
  if (text == "refused") return DnsRefusal::kRefused;
  if (text == "nxdomain") return DnsRefusal::kNxDomain;
  return fail(ErrorCode::kInvalidArgument,
              "unknown DNS refusal '" + std::string(text) + "' (expected refused or nxdomain)");
}

Result<std::uint32_t> parse_seconds(std::string_view text) {
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() ||
      value > kMaxLearnSeconds) {
    return fail(ErrorCode::kInvalidArgument, '\'' + std::string(text) +
                                                 "' is not a number of seconds in 0.." +
                                                 std::to_string(kMaxLearnSeconds));
  }
  return static_cast<std::uint32_t>(value);
}

Result<void> add_egress_entry(EgressPolicy& policy, PolicyAction action, std::string_view text) {
  PolicyProtocol protocol = PolicyProtocol::kAny;
  PortRange ports;
  auto rest = split_rule(text, protocol, ports);
  if (rest && names_a_domain(*rest)) {
    auto rule = DomainRule::parse(action, text);
    if (!rule) return fail(rule.error());
    policy.domains.push_back(std::move(*rule));
    return ok();
  }
  auto rule = EgressRule::parse(action, text);
  if (!rule) return fail(rule.error());
  policy.rules.push_back(std::move(*rule));
  return ok();
}

bool EgressPolicy::name_allowed(std::string_view name) const {
  bool allowed = default_action == PolicyAction::kAllow;
  for (const auto& rule : domains) {
    if (!rule.pattern.matches(name)) continue;
    if (rule.action == PolicyAction::kDeny) return false;
    allowed = true;
  }
  return allowed;
}

std::vector<std::size_t> EgressPolicy::allowing_domain_rules(std::string_view name) const {
  std::vector<std::size_t> out;
  if (!name_allowed(name)) return out;
  for (std::size_t i = 0; i < domains.size(); ++i) {
    if (domains[i].action == PolicyAction::kAllow && domains[i].pattern.matches(name)) {
      out.push_back(i);
    }
  }
  return out;
}

std::uint32_t EgressPolicy::learn_seconds(std::uint32_t ttl) const {
  std::uint64_t seconds = std::uint64_t{std::max(ttl, learn_min_ttl)} + learn_grace;
  return static_cast<std::uint32_t>(std::min<std::uint64_t>(seconds, kMaxLearnSeconds));
}

Result<void> EgressPolicy::validate() const {
  if (rules.size() + domains.size() > kMaxEgressRules) {
    return fail(ErrorCode::kInvalidArgument, "an egress policy has at most " +
                                                 std::to_string(kMaxEgressRules) + " rules, not " +
                                                 std::to_string(rules.size() + domains.size()));
  }
  if (learn_min_ttl > kMaxLearnSeconds || learn_grace > kMaxLearnSeconds) {
    return fail(ErrorCode::kInvalidArgument, "the DNS minimum TTL and grace are at most " +
                                                 std::to_string(kMaxLearnSeconds) + " seconds");
  }
  std::set<std::string> seen;
  // Every rule is re-read from its text form: a value made in code is checked as the CLI's is.
  auto check = [&](const auto& rule, const char* what) -> Result<void> {
    const std::string text = rule.to_string();
    auto again = std::decay_t<decltype(rule)>::parse(rule.action, text);
    if (!again) return fail(again.error());
    if (!(*again == rule)) {
      return fail(ErrorCode::kInvalidArgument, std::string("invalid ") + what + " " + text);
    }
    std::string key = std::string(netcell::to_string(rule.action)) + " " + text;
    if (!seen.insert(key).second) {
      return fail(ErrorCode::kInvalidArgument, "egress rule given twice: " + key);
    }
    return ok();
  };
  for (const auto& rule : rules) NETCELL_TRY(check(rule, "egress rule"));
  for (const auto& rule : domains) NETCELL_TRY(check(rule, "domain rule"));
  return ok();
}

Result<DomainPattern> DomainPattern::parse(std::string_view text) {
  auto bad = [&](const std::string& why) {
    return fail(ErrorCode::kInvalidArgument,
                "invalid domain pattern '" + std::string(text) + "': " + why);
  };
  std::string name = lower_without_dot(text);
  DomainPattern out;
  if (name.rfind("*.", 0) == 0) {
    out.wildcard_ = true;
    name = name.substr(2);
  }
  if (name.empty()) return bad("empty");
  if (name.size() > 253) return bad("longer than 253 bytes");
  std::size_t labels = 0;
  for (std::size_t start = 0;;) {
    auto dot = name.find('.', start);
    std::string_view label = std::string_view(name).substr(start, dot - start);
    if (label == "*") return bad("'*' is allowed only as the whole first label");
    if (!valid_label(label)) return bad('\'' + std::string(label) + "' is not a valid label");
    ++labels;
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  if (out.wildcard_ && labels < 2) return bad("a wildcard needs a name of two labels or more");
  out.text_ = out.wildcard_ ? std::string("*.").append(name) : name;
  return out;
}

bool DomainPattern::matches(std::string_view query) const {
  std::string name = lower_without_dot(query);
  if (!wildcard_) return name == text_;
  std::string_view suffix = std::string_view(text_).substr(1);  // ".example.com"
  return name.size() > suffix.size() &&
         name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0 &&
         name[name.size() - suffix.size() - 1] != '.';
}

}  // namespace netcell
