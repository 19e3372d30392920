#include "linux/nflog.h"

#include <fcntl.h>
#include <libnetfilter_log/libnetfilter_log.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

namespace netcell::kernel {

std::uint16_t log_group(const std::string& owner_tag) {
  std::uint32_t hash = 2166136261U;  // FNV-1a, 32 bits
  for (unsigned char c : owner_tag) hash = (hash ^ c) * 16777619U;
  constexpr std::uint32_t kFirst = 4096, kCount = 65536 - kFirst;
  return static_cast<std::uint16_t>(kFirst + hash % kCount);
}

namespace {

Result<void> bad_packet(const char* why) {
  return fail(ErrorCode::kInvalidArgument, std::string("logged packet: ") + why);
}

// The ports (tcp, udp) or the type and code (icmp, icmpv6) from the `have` bytes at `transport`.
Result<void> read_transport(const std::uint8_t* transport, std::size_t have, DeniedFlow& flow) {
  switch (flow.ip_protocol) {
    case IPPROTO_TCP:
    case IPPROTO_UDP:
      if (have < 4) return bad_packet("transport header cut short");
      flow.source_port = static_cast<std::uint16_t>(transport[0] << 8 | transport[1]);
      flow.port = static_cast<std::uint16_t>(transport[2] << 8 | transport[3]);
      break;
    case IPPROTO_ICMP:
    case IPPROTO_ICMPV6:
      if (have < 2) return bad_packet("ICMP header cut short");
      flow.icmp_type = transport[0];
      flow.icmp_code = transport[1];
      break;
    default: break;
  }
  return ok();
}

// An IPv6 packet: the fixed header, then extension headers (hop-by-hop, routing, destination
// options, fragment; at most 8 of them) up to the transport header, whose protocol is the flow's.
Result<DeniedFlow> parse_ipv6(std::span<const std::uint8_t> p, DeniedFlow& flow) {
  constexpr std::size_t kFixed = 40;
  if (p.size() < kFixed) return fail(bad_packet("shorter than an IPv6 header").error());
  const std::size_t total = kFixed + (static_cast<std::size_t>(p[4]) << 8 | p[5]);
  auto address = [&](std::size_t at) {
    std::array<std::uint8_t, 16> bytes{};
    std::copy(p.begin() + static_cast<std::ptrdiff_t>(at),
              p.begin() + static_cast<std::ptrdiff_t>(at + 16), bytes.begin());
    return IpAddress::v6(bytes);
  };
  flow.source = address(8);
  flow.destination = address(24);
  const std::size_t end = std::min(p.size(), total);
  std::uint8_t next = p[6];
  std::size_t at = kFixed;
  for (int hops = 0; hops < 8; ++hops) {
    const bool extension = next == IPPROTO_HOPOPTS || next == IPPROTO_ROUTING ||
                           next == IPPROTO_DSTOPTS || next == IPPROTO_FRAGMENT;
    if (!extension) break;
    if (at + 8 > end) return fail(bad_packet("IPv6 extension header cut short").error());
    const std::uint8_t following = p[at];
    if (next == IPPROTO_FRAGMENT) {
      const bool first = ((static_cast<unsigned>(p[at + 2]) << 8 | p[at + 3]) & 0xFFF8) == 0;
      flow.ip_protocol = following;
      if (!first) return flow;  // no transport header in a later fragment
      at += 8;
    } else {
      at += (static_cast<std::size_t>(p[at + 1]) + 1) * 8;
    }
    next = following;
  }
  flow.ip_protocol = next;
  if (at > end) return fail(bad_packet("IPv6 extension header cut short").error());
  NETCELL_TRY(read_transport(p.data() + at, end - at, flow));
  return flow;
}

}  // namespace

Result<DeniedFlow> parse_logged_packet(std::span<const std::uint8_t> p, std::string_view prefix) {
  auto bad = [](const char* why) {
    return fail(ErrorCode::kInvalidArgument, std::string("logged packet: ") + why);
  };
  DeniedFlow flow;
  if (prefix == kLogPrefixRule) {
    flow.by = DeniedBy::kRule;
  } else if (prefix == kLogPrefixDefault) {
    flow.by = DeniedBy::kDefault;
  } else if (prefix == kLogPrefixDns) {
    flow.by = DeniedBy::kDns;
  } else {
    return bad("not one of netcell's prefixes");
  }
  if (p.empty()) return bad("shorter than any IP header");
  if ((p[0] >> 4) == 6) return parse_ipv6(p, flow);
  if (p.size() < 20) return bad("shorter than an IPv4 header");
  if ((p[0] >> 4) != 4) return bad("neither IPv4 nor IPv6");
  const std::size_t header = static_cast<std::size_t>(p[0] & 0x0F) * 4;
  const std::size_t total = static_cast<std::size_t>(p[2]) << 8 | p[3];
  if (header < 20) return bad("IHL below 5");
  if (header > p.size()) return bad("IPv4 header cut short");
  if (total < header) return bad("total length inside the header");
  flow.ip_protocol = p[9];
  auto address = [&](std::size_t at) {
    return IpAddress::v4(static_cast<std::uint32_t>(p[at]) << 24 |
                         static_cast<std::uint32_t>(p[at + 1]) << 16 |
                         static_cast<std::uint32_t>(p[at + 2]) << 8 | p[at + 3]);
  };
  flow.source = address(12);
  flow.destination = address(16);
  // A later fragment has no transport header; the kernel's reassembly (conntrack) means only
  // whole packets reach the policy, but the parser does not rely on it.
  const bool first_fragment = ((static_cast<unsigned>(p[6]) << 8 | p[7]) & 0x1FFF) == 0;
  // What the packet itself says it holds, and what the log copied of it.
  const std::size_t have = std::min(p.size(), total) - header;
  if (!first_fragment) return flow;
  NETCELL_TRY(read_transport(p.data() + header, have, flow));
  return flow;
}

struct NflogSocket::Handles {
  nflog_handle* handle = nullptr;
  nflog_g_handle* group = nullptr;
  const std::function<void(const LoggedPacket&)>* on_packet = nullptr;
  std::size_t messages = 0;
  ~Handles() {
    if (group != nullptr) nflog_unbind_group(group);
    if (handle != nullptr) nflog_close(handle);
  }
};

namespace {

int on_message(nflog_g_handle*, nfgenmsg*, nflog_data* data, void* arg) {
  auto* handles = static_cast<NflogSocket::Handles*>(arg);
  char* payload = nullptr;
  const int length = nflog_get_payload(data, &payload);
  const char* prefix = nflog_get_prefix(data);
  LoggedPacket packet;
  packet.prefix = prefix == nullptr ? "" : prefix;
  if (length > 0 && payload != nullptr) {
    packet.payload = {reinterpret_cast<const std::uint8_t*>(payload),
                      static_cast<std::size_t>(length)};
  }
  timeval tv{};
  if (nflog_get_timestamp(data, &tv) == 0 && tv.tv_sec > 0) {
    packet.time_unix_ms = static_cast<std::int64_t>(tv.tv_sec) * 1000 + tv.tv_usec / 1000;
  }
  ++handles->messages;
  if (handles->on_packet != nullptr) (*handles->on_packet)(packet);
  return 0;
}

}  // namespace

NflogSocket::NflogSocket(std::unique_ptr<Handles> handles) : handles_(std::move(handles)) {}
NflogSocket::NflogSocket(NflogSocket&&) noexcept = default;
NflogSocket& NflogSocket::operator=(NflogSocket&&) noexcept = default;
NflogSocket::~NflogSocket() = default;

Result<NflogSocket> NflogSocket::open(std::uint16_t group) {
  const std::string what = "NFLOG group " + std::to_string(group);
  auto handles = std::make_unique<Handles>();
  handles->handle = nflog_open();
  if (handles->handle == nullptr) return fail_errno(what + ": open a netlink socket", errno);
  handles->group = nflog_bind_group(handles->handle, group);
  if (handles->group == nullptr) {
    const int err = errno;
    // nfnetlink_log gives a group to one socket: EPERM (or EBUSY) names the one already there.
    if (err == EPERM || err == EBUSY) {
      return fail(ErrorCode::kConflict,
                  what +
                      " is read by another process already (a running reader of this "
                      "instance, or another program using that group)",
                  err);
    }
    return fail_errno(what + ": bind", err);
  }
  if (nflog_set_mode(handles->group, NFULNL_COPY_PACKET, kLogCopyBytes) < 0) {
    return fail_errno(what + ": set copy mode", errno);
  }
  // Sent in batches of up to 32 messages, or after 0.1 s: a flood costs few wake-ups, a single
  // refusal shows up at once.
  (void)nflog_set_qthresh(handles->group, 32);
  (void)nflog_set_timeout(handles->group, 10);
  nflog_callback_register(handles->group, on_message, handles.get());
  const int fd = nflog_fd(handles->handle);
  const int buffer = 1 << 20;
  (void)::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buffer, sizeof buffer);
  if (::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK) != 0 ||
      ::fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
    return fail_errno(what + ": fcntl", errno);
  }
  return NflogSocket(std::move(handles));
}

int NflogSocket::fd() const {
  return nflog_fd(handles_->handle);
}

Result<std::size_t> NflogSocket::drain(const std::function<void(const LoggedPacket&)>& on_packet,
                                       std::size_t max_datagrams) {
  alignas(8) static thread_local char buffer[1 << 16];
  handles_->on_packet = &on_packet;
  handles_->messages = 0;
  for (std::size_t i = 0; i < max_datagrams; ++i) {
    const ssize_t n = ::recv(fd(), buffer, sizeof buffer, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (errno == ENOBUFS) {  // the kernel dropped some: go on with what is queued
        ++lost_;
        continue;
      }
      handles_->on_packet = nullptr;
      return fail_errno("NFLOG: receive", errno);
    }
    nflog_handle_packet(handles_->handle, buffer, static_cast<int>(n));
  }
  handles_->on_packet = nullptr;
  return handles_->messages;
}

}  // namespace netcell::kernel
