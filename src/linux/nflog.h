// netcell: refused packets from the kernel's log (NFLOG, nfnetlink_log) through libnetfilter_log,
// and the pure parser that turns one into a DeniedFlow (netcell/flowlog.h).
//
// The firewall's refuse chain (firewall.cc) logs every refused packet, within a per-source rate
// limit, to group log_group(owner tag) with prefix kLogPrefixRule (a deny rule matched),
// kLogPrefixDefault (the default refused it) or kLogPrefixDns (DNS to another server than
// netcell's resolver). A log message carries the packet from its IP header
// on, cut to kLogCopyBytes: enough for an IPv4 header with options and the ports or ICMP type.
//
//   payload  | IPv4 header (IHL × 4 bytes, 20..60) | TCP/UDP: sport(2) dport(2) ... |
//                                                  | ICMP:    type(1) code(1) ...   |
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "netcell/flowlog.h"
#include "netcell/result.h"

struct nflog_handle;
struct nflog_g_handle;

namespace netcell::kernel {

inline constexpr char kLogPrefixRule[] = "netcell:deny";
inline constexpr char kLogPrefixDefault[] = "netcell:default";
inline constexpr char kLogPrefixDns[] = "netcell:dns";
inline constexpr std::uint32_t kLogCopyBytes = 128;

// The NFLOG group of the instance whose firewall table carries `owner_tag` (owner_tag() in
// firewall.h): 4096..65535 (lower groups are left to hand-written rules), an FNV-1a hash of it.
std::uint16_t log_group(const std::string& owner_tag);

// The flow of one logged packet: protocol, addresses, port or ICMP type and code, and `by` from
// the prefix; time, namespace and rule are left for the caller. kInvalidArgument for a prefix
// that is not netcell's and for anything but a whole IPv4 header (version 4, IHL 5..15 within
// the bytes and the total length) or IPv6 header (with its extension headers, at most 8)
// followed, in a first fragment, by the 4 bytes of a TCP or UDP port pair or the 2 of an ICMP or
// ICMPv6 type and code. Never reads past `payload`.
Result<DeniedFlow> parse_logged_packet(std::span<const std::uint8_t> payload,
                                       std::string_view prefix);

// One log message as the kernel sent it.
struct LoggedPacket {
  std::string prefix;
  std::span<const std::uint8_t> payload;     // valid during the callback only
  std::optional<std::int64_t> time_unix_ms;  // the packet's timestamp, when the kernel had one
};

// A socket bound to one NFLOG group in the network namespace of the thread that opened it:
// non-blocking, close-on-exec. Not thread-safe.
class NflogSocket {
 public:
  // kConflict when another socket already reads the group; kPermissionDenied without
  // CAP_NET_ADMIN.
  static Result<NflogSocket> open(std::uint16_t group);
  NflogSocket(NflogSocket&&) noexcept;
  NflogSocket& operator=(NflogSocket&&) noexcept;
  ~NflogSocket();

  int fd() const;
  // Hands every message queued now to `on_packet`, reading at most `max_datagrams` datagrams
  // (each may hold several messages); never blocks. Returns the number of messages.
  Result<std::size_t> drain(const std::function<void(const LoggedPacket&)>& on_packet,
                            std::size_t max_datagrams = 64);
  // How often the kernel dropped messages because the socket's buffer was full (ENOBUFS).
  std::uint64_t lost() const { return lost_; }

  struct Handles;  // libnetfilter_log's handles, opaque

 private:
  explicit NflogSocket(std::unique_ptr<Handles> handles);
  std::unique_ptr<Handles> handles_;
  std::uint64_t lost_ = 0;
};

}  // namespace netcell::kernel
