#include "netcell/types.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstdio>
#include <cstring>
#include <numeric>

namespace netcell {
namespace {

// Parses a decimal integer that must fill all of `text` and lie in [lo, hi].
template <typename T>
Result<T> parse_number(std::string_view text, long long lo, long long hi, std::string_view what) {
  long long value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value < lo ||
      value > hi) {
    return fail(ErrorCode::kInvalidArgument, std::string(what) + " '" + std::string(text) +
                                                 "' is not a number in " + std::to_string(lo) +
                                                 ".." + std::to_string(hi));
  }
  return static_cast<T>(value);
}

}  // namespace

Result<std::array<std::uint8_t, 6>> parse_mac(std::string_view text) {
  std::array<std::uint8_t, 6> mac{};
  auto bad = [&] {
    return fail(ErrorCode::kInvalidArgument,
                "invalid MAC address '" + std::string(text) + "' (expected aa:bb:cc:dd:ee:ff)");
  };
  if (text.size() != 17) return bad();
  for (std::size_t i = 0; i < mac.size(); ++i) {
    const char* first = text.data() + i * 3;
    if (i > 0 && first[-1] != ':') return bad();
    auto [end, ec] = std::from_chars(first, first + 2, mac[i], 16);
    if (ec != std::errc() || end != first + 2) return bad();
  }
  return mac;
}

std::string format_mac(const std::array<std::uint8_t, 6>& mac) {
  char buf[18];
  std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3],
                mac[4], mac[5]);
  return buf;
}

std::string_view to_string(IsolationMode mode) {
  switch (mode) {
    case IsolationMode::kFull: return "full";
    case IsolationMode::kPrivate: return "private";
    case IsolationMode::kShared: return "shared";
    case IsolationMode::kBridged: return "bridged";
  }
  return "unknown";
}

Result<IsolationMode> parse_isolation_mode(std::string_view text) {
  if (text == "full") return IsolationMode::kFull;
  if (text == "private") return IsolationMode::kPrivate;
  if (text == "shared") return IsolationMode::kShared;
  if (text == "bridged") return IsolationMode::kBridged;
  return fail(ErrorCode::kInvalidArgument, "unknown mode '" + std::string(text) +
                                               "' (expected full, private, shared or bridged)");
}

std::string_view to_string(Protocol protocol) {
  return protocol == Protocol::kTcp ? "tcp" : "udp";
}

Result<Protocol> parse_protocol(std::string_view text) {
  if (text == "tcp") return Protocol::kTcp;
  if (text == "udp") return Protocol::kUdp;
  return fail(ErrorCode::kInvalidArgument,
              "unknown protocol '" + std::string(text) + "' (expected tcp or udp)");
}

std::string_view to_string(BackendKind kind) {
  switch (kind) {
    case BackendKind::kLinux: return "linux";
    case BackendKind::kSimulation: return "simulation";
    case BackendKind::kRootless: return "rootless";
  }
  return "unknown";
}

Result<IpAddress> IpAddress::parse(std::string_view text) {
  std::string s(text);
  IpAddress out;
  if (s.find(':') == std::string::npos) {
    in_addr a{};
    if (::inet_pton(AF_INET, s.c_str(), &a) == 1) {
      std::memcpy(out.bytes_.data(), &a, 4);
      return out;
    }
  } else {
    in6_addr a{};
    if (::inet_pton(AF_INET6, s.c_str(), &a) == 1) {
      out.family_ = Family::kV6;
      std::memcpy(out.bytes_.data(), &a, 16);
      return out;
    }
  }
  return fail(ErrorCode::kInvalidArgument, "invalid IP address '" + s + "'");
}

IpAddress IpAddress::v4(std::uint32_t host_order) {
  IpAddress out;
  std::uint32_t net = htonl(host_order);
  std::memcpy(out.bytes_.data(), &net, 4);
  return out;
}

IpAddress IpAddress::v6(const std::array<std::uint8_t, 16>& bytes) {
  IpAddress out;
  out.family_ = Family::kV6;
  out.bytes_ = bytes;
  return out;
}

std::uint32_t IpAddress::v4_host_order() const {
  std::uint32_t net = 0;
  std::memcpy(&net, bytes_.data(), 4);
  return ntohl(net);
}

std::string IpAddress::to_string() const {
  if (is_v4()) {
    // By hand: glibc's inet_ntop formats IPv4 with sprintf, and records and policies write many.
    std::string out;
    out.reserve(15);
    for (int i = 0; i < 4; ++i) {
      if (i != 0) out.push_back('.');
      const unsigned b = bytes_[i];
      if (b >= 100) out.push_back(static_cast<char>('0' + b / 100));
      if (b >= 10) out.push_back(static_cast<char>('0' + b / 10 % 10));
      out.push_back(static_cast<char>('0' + b % 10));
    }
    return out;
  }
  char buf[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET6, bytes_.data(), buf, sizeof buf);
  return buf;
}

Result<IpPrefix> IpPrefix::parse(std::string_view text) {
  auto slash = text.find('/');
  if (slash == std::string_view::npos) {
    return fail(ErrorCode::kInvalidArgument,
                '\'' + std::string(text) + "' needs a prefix length (ADDR/LEN)");
  }
  auto address = IpAddress::parse(text.substr(0, slash));
  if (!address) return fail(address.error());
  int max = address->is_v4() ? 32 : 128;
  auto len = parse_number<std::uint8_t>(text.substr(slash + 1), 0, max, "prefix length");
  if (!len) return fail(len.error());
  return IpPrefix{*address, *len};
}

std::string IpPrefix::to_string() const {
  return address.to_string() + "/" + std::to_string(prefix_len);
}

Result<NamespaceId> NamespaceId::parse(std::string_view name) {
  auto bad = [&](std::string why) {
    return fail(ErrorCode::kInvalidArgument,
                "invalid namespace name '" + std::string(name) + "': " + std::move(why));
  };
  if (name.empty()) return bad("empty");
  if (name.size() > 64) return bad("longer than 64 bytes");
  if (name.front() == '.' || name.front() == '-') return bad("must not start with '.' or '-'");
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.';
    if (!ok) {
      if (c == '/') return bad("contains '/'");
      return bad("only letters, digits, '_', '-' and '.' are allowed");
    }
  }
  return NamespaceId(std::string(name));
}

Result<void> validate_interface_name(std::string_view name) {
  auto bad = [&](std::string why) {
    return fail(ErrorCode::kInvalidArgument,
                "invalid interface name '" + std::string(name) + "': " + std::move(why));
  };
  if (name.empty()) return bad("empty");
  if (name.size() > 15) return bad("longer than 15 bytes");
  if (name == "." || name == "..") return bad("reserved");
  for (char c : name) {
    if (c == '/') return bad("contains '/'");
    if (c == ':' || c <= ' ' || c == 0x7f) return bad("contains ':', whitespace or a control byte");
  }
  return ok();
}

Result<PortForward> PortForward::parse(std::string_view text) {
  auto bad = [&](std::string why) {
    return fail(ErrorCode::kInvalidArgument, "invalid port mapping '" + std::string(text) +
                                                 "': " + std::move(why) +
                                                 " (expected [HOSTIP:]HOSTPORT:PORT[/tcp|/udp])");
  };
  PortForward out;
  std::string_view rest = text;
  if (auto slash = rest.rfind('/'); slash != std::string_view::npos) {
    auto proto = parse_protocol(rest.substr(slash + 1));
    if (!proto) return bad("unknown protocol");
    out.protocol = *proto;
    rest = rest.substr(0, slash);
  }
  auto last = rest.rfind(':');
  if (last == std::string_view::npos) return bad("missing ':'");
  auto container = parse_number<std::uint16_t>(rest.substr(last + 1), 1, 65535, "port");
  if (!container) return bad(container.error().message());
  rest = rest.substr(0, last);
  std::string_view host_port_text = rest;
  if (auto colon = rest.rfind(':'); colon != std::string_view::npos) {
    std::string_view ip = rest.substr(0, colon);
    if (ip.size() >= 2 && ip.front() == '[' && ip.back() == ']') ip = ip.substr(1, ip.size() - 2);
    auto host_ip = IpAddress::parse(ip);
    if (!host_ip) return bad(host_ip.error().message());
    out.host_ip = *host_ip;
    host_port_text = rest.substr(colon + 1);
  }
  auto host = parse_number<std::uint16_t>(host_port_text, 1, 65535, "host port");
  if (!host) return bad(host.error().message());
  out.host_port = *host;
  out.container_port = *container;
  return out;
}

std::string PortForward::to_string() const {
  std::string out;
  if (host_ip)
    out += host_ip->is_v4() ? host_ip->to_string() + ":" : '[' + host_ip->to_string() + "]:";
  out += std::to_string(host_port) + ":" + std::to_string(container_port) + "/" +
         std::string(netcell::to_string(protocol));
  return out;
}

namespace {

struct RateUnit {
  std::string_view name;
  std::uint64_t bits;
};

// Longest names first within each family, so "kbit" is not read as "k" + "bit".
constexpr RateUnit kRateUnits[] = {
    {"tibit", 1ULL << 40},
    {"gibit", 1ULL << 30},
    {"mibit", 1ULL << 20},
    {"kibit", 1ULL << 10},
    {"tbit", 1'000'000'000'000},
    {"gbit", 1'000'000'000},
    {"mbit", 1'000'000},
    {"kbit", 1'000},
    {"bit", 1},
    {"t", 1'000'000'000'000},
    {"g", 1'000'000'000},
    {"m", 1'000'000},
    {"k", 1'000},
};

}  // namespace

Result<void> validate_rate(std::uint64_t bits_per_second) {
  if (bits_per_second < kMinRateBps || bits_per_second > kMaxRateBps) {
    return fail(ErrorCode::kInvalidArgument,
                "rate " + std::to_string(bits_per_second) + " bit/s is out of range (expected " +
                    format_rate(kMinRateBps) + ".." + format_rate(kMaxRateBps) + ")");
  }
  return ok();
}

Result<std::uint64_t> parse_rate(std::string_view text) {
  auto bad = [&](const std::string& why) {
    return fail(ErrorCode::kInvalidArgument,
                "invalid rate '" + std::string(text) + "': " + why +
                    " (expected e.g. 500kbit, 10mbit, 2.5mbit, 1gbit or bits per second)");
  };
  if (text.empty()) return bad("empty");
  if (text.size() > 40) return bad("too long");
  if (text.front() == '-') return bad("negative");
  std::size_t pos = 0;
  auto digits = [&] {
    std::size_t start = pos;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') ++pos;
    return text.substr(start, pos - start);
  };
  std::string_view whole = digits();
  std::string_view fraction;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    fraction = digits();
  }
  if (whole.empty() && fraction.empty()) return bad("no number");
  std::string unit;
  for (char c : text.substr(pos)) {
    unit += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  }
  std::uint64_t multiplier = 0;
  if (unit.empty()) multiplier = 1;
  for (const auto& u : kRateUnits) {
    if (unit == u.name) multiplier = u.bits;
  }
  if (multiplier == 0) {
    if (unit.size() >= 3 && unit.compare(unit.size() - 3, 3, "bps") == 0) {
      return bad("'" + unit + "' is ambiguous (tc reads bps as bytes per second); write bit units");
    }
    return bad("unknown unit '" + unit + "'");
  }
  // Exact arithmetic: value = whole * multiplier + F * multiplier / 10^L, where F is the
  // fraction's L digits without trailing zeros; it must come out whole.
  while (!fraction.empty() && fraction.back() == '0') fraction.remove_suffix(1);
  const std::string too_large = "more than " + format_rate(kMaxRateBps);
  std::uint64_t value = 0;
  for (char c : whole) {
    value = value * 10 + static_cast<std::uint64_t>(c - '0');
    if (value > kMaxRateBps) return bad(too_large);
  }
  if (value > kMaxRateBps / multiplier) return bad(too_large);
  value *= multiplier;
  if (!fraction.empty()) {
    if (fraction.size() > 12) return bad("more than 12 decimals");
    std::uint64_t f = 0;
    std::uint64_t pow10 = 1;
    for (char c : fraction) {
      f = f * 10 + static_cast<std::uint64_t>(c - '0');
      pow10 *= 10;
    }
    // multiplier * f / pow10 is whole exactly when pow10 / gcd divides f.
    const std::uint64_t g = std::gcd(multiplier, pow10);
    const std::uint64_t m = multiplier / g;
    const std::uint64_t p = pow10 / g;
    if (f % p != 0) return bad("not a whole number of bits per second");
    if (f / p > (kMaxRateBps - value) / m) return bad(too_large);
    value += f / p * m;
  }
  if (value == 0) return bad("zero (leave the rate out for no limit)");
  if (value < kMinRateBps) return bad("less than " + format_rate(kMinRateBps));
  return value;
}

std::string format_rate(std::uint64_t bits_per_second) {
  constexpr RateUnit kUnits[] = {
      {"tbit", 1'000'000'000'000}, {"gbit", 1'000'000'000}, {"mbit", 1'000'000}, {"kbit", 1'000}};
  for (const auto& u : kUnits) {
    if (bits_per_second < u.bits) continue;
    std::string out = std::to_string(bits_per_second / u.bits);
    std::uint64_t rest = bits_per_second % u.bits;
    if (rest != 0) {
      std::string digits = std::to_string(rest);
      std::string frac(std::to_string(u.bits).size() - 1 - digits.size(), '0');
      frac += digits;
      while (frac.back() == '0') frac.pop_back();
      out += "." + frac;
    }
    return out + std::string(u.name);
  }
  return std::to_string(bits_per_second) + "bit";
}

NamespaceConfig NamespaceConfig::full_isolation(pid_t pid) {
  NamespaceConfig c;
  c.mode = IsolationMode::kFull;
  c.pid = pid;
  return c;
}

NamespaceConfig NamespaceConfig::private_network(pid_t pid) {
  NamespaceConfig c;
  c.mode = IsolationMode::kPrivate;
  c.pid = pid;
  return c;
}

NamespaceConfig NamespaceConfig::shared(pid_t pid) {
  NamespaceConfig c;
  c.mode = IsolationMode::kShared;
  c.pid = pid;
  return c;
}

NamespaceConfig NamespaceConfig::bridged(pid_t pid, std::string network) {
  NamespaceConfig c;
  c.mode = IsolationMode::kBridged;
  c.pid = pid;
  c.network = std::move(network);
  return c;
}

InterfaceStats& InterfaceStats::operator+=(const InterfaceStats& o) {
  rx_bytes += o.rx_bytes;
  tx_bytes += o.tx_bytes;
  rx_packets += o.rx_packets;
  tx_packets += o.tx_packets;
  rx_errors += o.rx_errors;
  tx_errors += o.tx_errors;
  rx_dropped += o.rx_dropped;
  tx_dropped += o.tx_dropped;
  return *this;
}

std::optional<IpAddress> primary_address(const NamespaceInfo& info) {
  for (const auto& iface : info.interfaces) {
    if (iface.name != "lo" && !iface.addresses.empty()) return iface.addresses.front().address;
  }
  return std::nullopt;
}

std::optional<IpPrefix> ipv6_address(const NamespaceInfo& info) {
  if (!info.gateway6) return std::nullopt;
  for (const auto& iface : info.interfaces) {
    if (iface.name == "lo") continue;
    for (const auto& a : iface.addresses) {
      if (!a.address.is_v4()) return a;
    }
  }
  return std::nullopt;
}

}  // namespace netcell
