#include "linux/netlink.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <optional>
#include <string_view>
#include <utility>

namespace netcell::kernel {
namespace {

// Large enough for any rtnetlink reply: the kernel sizes dump skbs to at most 32 KiB, and a
// datagram that does not fit would be silently truncated (we check MSG_TRUNC anyway).
constexpr std::size_t kReceiveBufferSize = 64 * 1024;

std::string rtm_name(std::uint16_t type) {
  switch (type) {
    case RTM_NEWLINK: return "RTM_NEWLINK";
    case RTM_DELLINK: return "RTM_DELLINK";
    case RTM_GETLINK: return "RTM_GETLINK";
    case RTM_NEWADDR: return "RTM_NEWADDR";
    case RTM_DELADDR: return "RTM_DELADDR";
    case RTM_GETADDR: return "RTM_GETADDR";
    case RTM_NEWROUTE: return "RTM_NEWROUTE";
    case RTM_DELROUTE: return "RTM_DELROUTE";
    case RTM_GETROUTE: return "RTM_GETROUTE";
    case RTM_NEWNEIGH: return "RTM_NEWNEIGH";
    case RTM_DELNEIGH: return "RTM_DELNEIGH";
    case RTM_NEWQDISC: return "RTM_NEWQDISC";
    case RTM_DELQDISC: return "RTM_DELQDISC";
    case RTM_NEWTCLASS: return "RTM_NEWTCLASS";
    case RTM_DELTCLASS: return "RTM_DELTCLASS";
    case RTM_NEWTFILTER: return "RTM_NEWTFILTER";
    case RTM_DELTFILTER: return "RTM_DELTFILTER";
    case NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_GETTABLE: return "NFT_MSG_GETTABLE";
    case NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWSETELEM: return "NFT_MSG_NEWSETELEM";
    case NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_DELSETELEM: return "NFT_MSG_DELSETELEM";
    default: return "netlink message type " + std::to_string(type);
  }
}

tl::unexpected<Error> malformed(std::string_view what, std::string_view why) {
  return fail(ErrorCode::kSystem, "malformed " + std::string(what) + ": " + std::string(why));
}

// Starts a message in `buf` (zeroed, big enough) with a zeroed family header of `extra` bytes.
nlmsghdr* start_message(NlMessage& buf, std::uint16_t type, std::uint16_t flags) {
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = type;
  nlh->nlmsg_flags = flags;
  return nlh;
}

void finish_message(NlMessage& buf, const nlmsghdr* nlh) {
  buf.resize(nlh->nlmsg_len);
}

// The text of NLMSGERR_ATTR_MSG in an NLMSG_ERROR or NLMSG_DONE reply, if the kernel sent one.
// `tlv_offset` is where the TLVs start relative to the payload.
std::string ext_ack_text(const nlmsghdr* nlh, std::size_t tlv_offset) {
  if ((nlh->nlmsg_flags & NLM_F_ACK_TLVS) == 0) return {};
  std::string text;
  // Best effort: a malformed TLV area must not hide the errno, so its error is dropped.
  (void)for_each_attr(nlh, tlv_offset, "extended ack", [&](const nlattr* attr) -> Result<void> {
    if (mnl_attr_get_type(attr) == NLMSGERR_ATTR_MSG &&
        mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) == 0) {
      text = mnl_attr_get_str(attr);
    }
    return ok();
  });
  return text;
}

Error kernel_error(std::string what, int err, const std::string& text) {
  if (!text.empty()) what += ": " + text;
  return Error::from_errno(std::move(what), err < 0 ? -err : err);
}

// State shared with the libmnl callbacks of one request or dump.
struct RunContext {
  const std::function<Result<void>(const nlmsghdr*)>* on_message = nullptr;
  std::uint16_t request_type = 0;
  std::optional<Error> error;
};

int on_data(const nlmsghdr* nlh, void* data) {
  auto* ctx = static_cast<RunContext*>(data);
  // After the first failure keep reading to NLMSG_DONE so the socket stays in sync.
  if (ctx->on_message == nullptr || ctx->error) return MNL_CB_OK;
  Result<void> result = (*ctx->on_message)(nlh);
  if (!result) ctx->error = std::move(result).error();
  return MNL_CB_OK;
}

int on_error(const nlmsghdr* nlh, void* data) {
  auto* ctx = static_cast<RunContext*>(data);
  Result<void> result = parse_ack(nlh);
  if (!result && !ctx->error) ctx->error = std::move(result).error();
  return MNL_CB_STOP;
}

int on_done(const nlmsghdr* nlh, void* data) {
  auto* ctx = static_cast<RunContext*>(data);
  // A dump that fails part-way ends with NLMSG_DONE carrying a negative errno (and ext-ack TLVs
  // after it); an older kernel may send an empty payload.
  if (nlh->nlmsg_len >= MNL_NLMSG_HDRLEN + sizeof(int)) {
    int err = 0;
    std::memcpy(&err, mnl_nlmsg_get_payload(nlh), sizeof err);
    if (err != 0 && !ctx->error) {
      ctx->error = kernel_error(rtm_name(ctx->request_type), err, ext_ack_text(nlh, sizeof(int)));
    }
  }
  return MNL_CB_STOP;
}

int on_ignore(const nlmsghdr*, void*) {
  return MNL_CB_OK;
}

// Control callbacks for every type below NLMSG_MIN_TYPE, so libmnl never falls back to its own
// NLMSG_ERROR handler (which would drop the extended-ack text).
// Not const: mnl_cb_run2 takes a non-const array it never writes.
std::array<mnl_cb_t, NLMSG_MIN_TYPE> control_callbacks = [] {
  std::array<mnl_cb_t, NLMSG_MIN_TYPE> callbacks{};
  callbacks.fill(on_ignore);
  callbacks[NLMSG_ERROR] = on_error;
  callbacks[NLMSG_DONE] = on_done;
  return callbacks;
}();

}  // namespace

namespace rtnl {

NlMessage link_set_up(int ifindex, bool up) {
  NlMessage buf(MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(ifinfomsg)));
  nlmsghdr* nlh = start_message(buf, RTM_NEWLINK, NLM_F_REQUEST);
  auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = ifindex;
  ifi->ifi_flags = up ? static_cast<unsigned>(IFF_UP) : 0u;
  ifi->ifi_change = IFF_UP;
  finish_message(buf, nlh);
  return buf;
}

NlMessage link_dump() {
  NlMessage buf(MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(ifinfomsg)));
  nlmsghdr* nlh = start_message(buf, RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP);
  auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifi->ifi_family = AF_UNSPEC;
  finish_message(buf, nlh);
  return buf;
}

NlMessage addr_dump(int family) {
  NlMessage buf(MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(ifaddrmsg)));
  nlmsghdr* nlh = start_message(buf, RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP);
  auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifaddrmsg)));
  ifa->ifa_family = static_cast<std::uint8_t>(family);
  finish_message(buf, nlh);
  return buf;
}

}  // namespace rtnl

Result<LinkRecord> parse_link(const nlmsghdr* nlh) {
  constexpr std::string_view kWhat = "RTM_NEWLINK";
  if (nlh->nlmsg_type != RTM_NEWLINK) {
    return malformed(kWhat, "unexpected message type " + std::to_string(nlh->nlmsg_type));
  }
  if (nlh->nlmsg_len < MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(ifinfomsg))) {
    return malformed(kWhat, "shorter than ifinfomsg");
  }
  ifinfomsg ifi{};
  std::memcpy(&ifi, mnl_nlmsg_get_payload(nlh), sizeof ifi);
  LinkRecord record;
  record.ifindex = ifi.ifi_index;
  record.flags = ifi.ifi_flags;
  bool have_name = false;
  NETCELL_TRY(for_each_attr(nlh, sizeof(ifinfomsg), kWhat, [&](const nlattr* attr) -> Result<void> {
    switch (mnl_attr_get_type(attr)) {
      case IFLA_IFNAME:
        if (mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) < 0)
          return malformed(kWhat, "IFLA_IFNAME");
        record.name = mnl_attr_get_str(attr);
        have_name = true;
        break;
      case IFLA_MTU:
        if (mnl_attr_validate(attr, MNL_TYPE_U32) < 0) return malformed(kWhat, "IFLA_MTU");
        record.mtu = mnl_attr_get_u32(attr);
        break;
      case IFLA_MASTER:
        if (mnl_attr_validate(attr, MNL_TYPE_U32) < 0) return malformed(kWhat, "IFLA_MASTER");
        record.master = static_cast<int>(mnl_attr_get_u32(attr));
        break;
      case IFLA_ADDRESS:
        if (mnl_attr_get_payload_len(attr) == 6) {
          std::array<std::uint8_t, 6> mac{};
          std::memcpy(mac.data(), mnl_attr_get_payload(attr), mac.size());
          record.mac = format_mac(mac);
        }
        break;
      case IFLA_STATS64: {
        // The struct has grown over kernel versions (rx_otherhost_dropped, 5.19); the eight
        // counters read here have been its head since the start. The payload may be only 4-byte
        // aligned, hence the copy.
        rtnl_link_stats64 s{};
        const std::size_t len = mnl_attr_get_payload_len(attr);
        if (len < 8 * sizeof(std::uint64_t)) return malformed(kWhat, "IFLA_STATS64 too short");
        std::memcpy(&s, mnl_attr_get_payload(attr), std::min(len, sizeof s));
        record.stats.rx_bytes = s.rx_bytes;
        record.stats.tx_bytes = s.tx_bytes;
        record.stats.rx_packets = s.rx_packets;
        record.stats.tx_packets = s.tx_packets;
        record.stats.rx_errors = s.rx_errors;
        record.stats.tx_errors = s.tx_errors;
        record.stats.rx_dropped = s.rx_dropped;
        record.stats.tx_dropped = s.tx_dropped;
        break;
      }
      default: break;
    }
    return ok();
  }));
  if (!have_name) return malformed(kWhat, "no IFLA_IFNAME");
  record.stats.name = record.name;
  return record;
}

Result<AddrRecord> parse_addr(const nlmsghdr* nlh) {
  constexpr std::string_view kWhat = "RTM_NEWADDR";
  if (nlh->nlmsg_type != RTM_NEWADDR) {
    return malformed(kWhat, "unexpected message type " + std::to_string(nlh->nlmsg_type));
  }
  if (nlh->nlmsg_len < MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(ifaddrmsg))) {
    return malformed(kWhat, "shorter than ifaddrmsg");
  }
  ifaddrmsg ifa{};
  std::memcpy(&ifa, mnl_nlmsg_get_payload(nlh), sizeof ifa);
  std::size_t addr_len = 0;
  if (ifa.ifa_family == AF_INET) {
    addr_len = 4;
  } else if (ifa.ifa_family == AF_INET6) {
    addr_len = 16;
  } else {
    return fail(ErrorCode::kUnsupported,
                "RTM_NEWADDR: address family " + std::to_string(ifa.ifa_family));
  }
  // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer on point-to-point links
  // and the only one present for IPv6.
  const nlattr* local = nullptr;
  const nlattr* address = nullptr;
  NETCELL_TRY(for_each_attr(nlh, sizeof(ifaddrmsg), kWhat, [&](const nlattr* attr) -> Result<void> {
    const std::uint16_t type = mnl_attr_get_type(attr);
    if (type != IFA_LOCAL && type != IFA_ADDRESS) return ok();
    if (mnl_attr_get_payload_len(attr) != addr_len) {
      return malformed(kWhat, "address length " + std::to_string(mnl_attr_get_payload_len(attr)));
    }
    (type == IFA_LOCAL ? local : address) = attr;
    return ok();
  }));
  const nlattr* chosen = local != nullptr ? local : address;
  if (chosen == nullptr) return malformed(kWhat, "no IFA_LOCAL or IFA_ADDRESS");

  AddrRecord record;
  record.ifindex = static_cast<int>(ifa.ifa_index);
  record.prefix.prefix_len = ifa.ifa_prefixlen;
  if (addr_len == 4) {
    std::uint32_t net = 0;
    std::memcpy(&net, mnl_attr_get_payload(chosen), sizeof net);
    record.prefix.address = IpAddress::v4(ntohl(net));
  } else {
    std::array<std::uint8_t, 16> bytes{};
    std::memcpy(bytes.data(), mnl_attr_get_payload(chosen), bytes.size());
    record.prefix.address = IpAddress::v6(bytes);
  }
  return record;
}

Result<void> parse_ack(const nlmsghdr* nlh) {
  if (nlh->nlmsg_type != NLMSG_ERROR) {
    return malformed("NLMSG_ERROR", "unexpected message type " + std::to_string(nlh->nlmsg_type));
  }
  if (nlh->nlmsg_len < MNL_NLMSG_HDRLEN + sizeof(nlmsgerr)) {
    return malformed("NLMSG_ERROR", "shorter than nlmsgerr");
  }
  nlmsgerr err{};
  std::memcpy(&err, mnl_nlmsg_get_payload(nlh), sizeof err);
  if (err.error == 0) return ok();
  // The TLVs follow the echoed request: its header only when NLM_F_CAPPED (NETLINK_CAP_ACK),
  // otherwise the whole request.
  std::size_t tlv_offset = sizeof(nlmsgerr);
  if ((nlh->nlmsg_flags & NLM_F_CAPPED) == 0 && err.msg.nlmsg_len > sizeof(nlmsghdr)) {
    tlv_offset += err.msg.nlmsg_len - sizeof(nlmsghdr);
  }
  return tl::unexpected<Error>(
      kernel_error(rtm_name(err.msg.nlmsg_type), err.error, ext_ack_text(nlh, tlv_offset)));
}

Result<NetlinkSocket> NetlinkSocket::open(int protocol) {
  // A plain socket rather than mnl_socket_open: the fd then has exactly one owner (UniqueFd) and
  // libmnl is used only to build and walk messages.
  UniqueFd fd(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol));
  if (!fd) return fail_errno("netlink socket", errno);
  sockaddr_nl addr{};
  addr.nl_family = AF_NETLINK;
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return fail_errno("netlink bind", errno);
  }
  socklen_t addr_len = sizeof addr;
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &addr_len) != 0) {
    return fail_errno("netlink getsockname", errno);
  }
  const int one = 1;
  for (int option : {NETLINK_EXT_ACK, NETLINK_CAP_ACK}) {
    if (::setsockopt(fd.get(), SOL_NETLINK, option, &one, sizeof one) != 0) {
      return fail_errno("netlink setsockopt " + std::to_string(option), errno);
    }
  }
  return NetlinkSocket(std::move(fd), addr.nl_pid);
}

std::uint8_t* NetlinkSocket::receive_buffer() {
  // Not zeroed: only the bytes the kernel writes are ever read, so only the pages it writes are
  // touched (a page fault is costly in a short-lived CLI process).
  if (!receive_buffer_) receive_buffer_.reset(new std::uint8_t[kReceiveBufferSize]);
  return receive_buffer_.get();
}

Result<void> NetlinkSocket::request(NlMessage message) {
  return transact(std::move(message), NLM_F_ACK, nullptr);
}

Result<void> NetlinkSocket::request(NlMessage message,
                                    const std::function<Result<void>(const nlmsghdr*)>& on_reply) {
  return transact(std::move(message), NLM_F_ACK, &on_reply);
}

Result<void> NetlinkSocket::dump(NlMessage message,
                                 const std::function<Result<void>(const nlmsghdr*)>& on_message) {
  return transact(std::move(message), NLM_F_DUMP, &on_message);
}

Result<void> NetlinkSocket::transact(
    NlMessage message, std::uint16_t extra_flags,
    const std::function<Result<void>(const nlmsghdr*)>* on_message) {
  if (message.size() < sizeof(nlmsghdr)) {
    return fail(ErrorCode::kInvalidArgument, "netlink: message shorter than nlmsghdr");
  }
  auto* nlh = reinterpret_cast<nlmsghdr*>(message.data());
  if (nlh->nlmsg_len != message.size()) {
    return fail(ErrorCode::kInvalidArgument, "netlink: nlmsg_len does not match message size");
  }
  RunContext ctx;
  ctx.on_message = on_message;
  ctx.request_type = nlh->nlmsg_type;
  const std::string what = rtm_name(nlh->nlmsg_type);
  nlh->nlmsg_flags = static_cast<std::uint16_t>(nlh->nlmsg_flags | NLM_F_REQUEST | extra_flags);
  nlh->nlmsg_seq = ++seq_;
  nlh->nlmsg_pid = 0;

  NETCELL_TRY(
      exchange(message, what, [&](const std::uint8_t* buf, std::size_t len) -> Result<bool> {
        int rc = mnl_cb_run2(buf, len, seq_, port_id_, on_data, &ctx, control_callbacks.data(),
                             static_cast<unsigned int>(control_callbacks.size()));
        if (rc == MNL_CB_ERROR) {
          // Our callbacks never return MNL_CB_ERROR: this is libmnl rejecting the reply itself
          // (wrong sequence number or port, malformed header).
          return fail_errno(what + ": bad reply", errno);
        }
        return rc == MNL_CB_STOP;
      }));
  if (ctx.error) return tl::unexpected<Error>(std::move(*ctx.error));
  return ok();
}

Result<void> NetlinkSocket::exchange(
    const NlMessage& request, const std::string& what,
    const std::function<Result<bool>(const std::uint8_t*, std::size_t)>& on_datagram,
    const std::function<bool()>& enough_when_dry) {
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  ssize_t sent = -1;
  do {
    sent = ::sendto(fd_.get(), request.data(), request.size(), 0,
                    reinterpret_cast<const sockaddr*>(&kernel), sizeof kernel);
  } while (sent < 0 && errno == EINTR);
  if (sent < 0) return fail_errno(what + ": send", errno);

  std::uint8_t* buf = receive_buffer();
  for (;;) {
    // The kernel handles a request inside sendto, so its answers are queued by now (a dump makes
    // its next part as the previous one is read): no poll before each read.
    ssize_t n = ::recv(fd_.get(), buf, kReceiveBufferSize, MSG_DONTWAIT | MSG_TRUNC);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (enough_when_dry && enough_when_dry()) return ok();
      // Not expected; bounded all the same.
      pollfd p{fd_.get(), POLLIN, 0};
      int ready = ::poll(&p, 1, 5000);
      if (ready < 0 && errno != EINTR) return fail_errno(what + ": poll", errno);
      if (ready == 0) {
        return fail(ErrorCode::kSystem, what + ": no answer from the kernel within 5 s");
      }
      continue;
    }
    if (n < 0) return fail_errno(what + ": receive", errno);
    if (static_cast<std::size_t>(n) > kReceiveBufferSize) return malformed(what, "reply truncated");
    Result<bool> done = on_datagram(buf, static_cast<std::size_t>(n));
    if (!done) return fail(std::move(done).error());
    if (*done) return ok();
  }
}

Result<void> NetlinkSocket::request_all(std::vector<NlMessage> messages) {
  NlMessage all;
  for (std::size_t i = 0; i < messages.size(); ++i) {
    auto& message = messages[i];
    if (message.size() < sizeof(nlmsghdr)) {
      return fail(ErrorCode::kInvalidArgument, "netlink: message shorter than nlmsghdr");
    }
    auto* nlh = reinterpret_cast<nlmsghdr*>(message.data());
    // Only the last asks for an ACK: the kernel answers a failing request whether asked or not.
    const std::uint16_t ack = i + 1 == messages.size() ? NLM_F_ACK : 0;
    nlh->nlmsg_flags = static_cast<std::uint16_t>(nlh->nlmsg_flags | NLM_F_REQUEST | ack);
    nlh->nlmsg_seq = ++seq_;
    nlh->nlmsg_pid = 0;
    all.insert(all.end(), message.begin(), message.end());
    all.resize(MNL_ALIGN(all.size()), 0);
  }
  if (messages.empty()) return ok();
  return send_batch(all, seq_);
}

Result<void> NetlinkSocket::send_batch(const NlMessage& messages, std::uint32_t ack_seq) {
  std::optional<Error> first;
  auto read = [&](const std::uint8_t* buf, std::size_t len) -> Result<bool> {
    bool acked = false;
    int left = static_cast<int>(len);
    for (auto* nlh = reinterpret_cast<const nlmsghdr*>(buf); mnl_nlmsg_ok(nlh, left);
         nlh = mnl_nlmsg_next(nlh, &left)) {
      if (nlh->nlmsg_type != NLMSG_ERROR) continue;
      if (nlh->nlmsg_seq == ack_seq) acked = true;
      auto answer = parse_ack(nlh);
      if (!answer && !first) first = std::move(answer).error();
    }
    return acked;
  };
  // Dry after an error: the kernel stopped early (a batch it refused as a whole) and has said
  // all it will.
  NETCELL_TRY(exchange(messages, "netlink batch", read, [&] { return first.has_value(); }));
  if (first) return tl::unexpected<Error>(std::move(*first));
  return ok();
}

Result<std::vector<LinkRecord>> list_links(NetlinkSocket& socket) {
  std::vector<LinkRecord> links;
  NETCELL_TRY(socket.dump(rtnl::link_dump(), [&](const nlmsghdr* nlh) -> Result<void> {
    Result<LinkRecord> link = parse_link(nlh);
    if (!link) return fail(std::move(link).error());
    links.push_back(std::move(*link));
    return ok();
  }));
  return links;
}

Result<std::vector<AddrRecord>> list_addresses(NetlinkSocket& socket) {
  std::vector<AddrRecord> addresses;
  NETCELL_TRY(socket.dump(rtnl::addr_dump(AF_UNSPEC), [&](const nlmsghdr* nlh) -> Result<void> {
    // An AF_UNSPEC dump could include families netcell does not model; skip them.
    if (nlh->nlmsg_len >= MNL_NLMSG_HDRLEN + sizeof(ifaddrmsg)) {
      const auto* ifa = static_cast<const ifaddrmsg*>(mnl_nlmsg_get_payload(nlh));
      if (ifa->ifa_family != AF_INET && ifa->ifa_family != AF_INET6) return ok();
    }
    Result<AddrRecord> addr = parse_addr(nlh);
    if (!addr) return fail(std::move(addr).error());
    addresses.push_back(std::move(*addr));
    return ok();
  }));
  return addresses;
}

}  // namespace netcell::kernel
