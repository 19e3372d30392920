// netcell: IP addresses and prefixes of either family.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "netcell/result.h"

namespace netcell {

// An IPv4 or IPv6 address.
class IpAddress {
 public:
  enum class Family { kV4, kV6 };

  IpAddress() = default;  // 0.0.0.0
  static Result<IpAddress> parse(std::string_view text);
  static IpAddress v4(std::uint32_t host_order);
  static IpAddress v6(const std::array<std::uint8_t, 16>& bytes);

  Family family() const { return family_; }
  bool is_v4() const { return family_ == Family::kV4; }
  bool is_v6() const { return family_ == Family::kV6; }
  // 0.0.0.0 or ::
  bool is_unspecified() const { return bytes_ == std::array<std::uint8_t, 16>{}; }
  // ::1 (IPv6 only: the kernel treats 127.0.0.0/8 otherwise, with route_localnet)
  bool is_ipv6_loopback() const {
    return is_v6() &&
           bytes_ == std::array<std::uint8_t, 16>{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  }
  // fe80::/10, IPv6's link-local unicast prefix (every IPv6 link has fe80::/64 on it)
  bool is_ipv6_link_local() const {
    return is_v6() && bytes_[0] == 0xfe && (bytes_[1] & 0xc0) == 0x80;
  }
  // The first 4 bytes for IPv4, all 16 for IPv6, in network order.
  const std::array<std::uint8_t, 16>& bytes() const { return bytes_; }
  std::uint32_t v4_host_order() const;
  std::string to_string() const;

  friend bool operator==(const IpAddress&, const IpAddress&) = default;

 private:
  Family family_ = Family::kV4;
  std::array<std::uint8_t, 16> bytes_{};
};

// An address with its prefix length, "10.0.0.2/30".
struct IpPrefix {
  IpAddress address;
  std::uint8_t prefix_len = 0;

  // Requires the "/LEN" part; the length is checked against the family.
  static Result<IpPrefix> parse(std::string_view text);
  std::string to_string() const;
  friend bool operator==(const IpPrefix&, const IpPrefix&) = default;
};

}  // namespace netcell
