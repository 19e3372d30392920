// netcell: rtnetlink over libmnl. Message builders are pure functions (golden-tested without
// privileges); NetlinkSocket sends them and turns NLMSG_ERROR into netcell::Error with the
// kernel's extended-ack text.
#pragma once

#include <libmnl/libmnl.h>
#include <linux/netlink.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/unique_fd.h"
#include "netcell/result.h"
#include "netcell/types.h"

namespace netcell::kernel {

// One complete netlink message (nlmsghdr + payload). nlmsg_seq is 0; the socket assigns it (and
// adds NLM_F_ACK to requests).
using NlMessage = std::vector<std::uint8_t>;

// Walks the attributes that follow the family header (`offset` bytes after the nlmsghdr), calling
// fn(const nlattr*) -> Result<void> on each. mnl_attr_for_each stops silently at a malformed
// attribute; kernel replies are trusted less than that, so a truncated or overlong attribute is
// an error here ("malformed WHAT: ...").
template <typename Fn>
Result<void> for_each_attr(const nlmsghdr* nlh, std::size_t offset, std::string_view what,
                           Fn&& fn) {
  auto malformed = [&](const std::string& why) {
    return fail(ErrorCode::kSystem, "malformed " + std::string(what) + ": " + why);
  };
  const std::size_t start = MNL_NLMSG_HDRLEN + MNL_ALIGN(offset);
  if (nlh->nlmsg_len < start) return malformed("header longer than the message");
  const auto* base = reinterpret_cast<const std::uint8_t*>(nlh);
  std::size_t pos = start;
  while (pos < nlh->nlmsg_len) {
    const std::size_t left = nlh->nlmsg_len - pos;
    const auto* attr = reinterpret_cast<const nlattr*>(base + pos);
    if (left < sizeof(nlattr) || !mnl_attr_ok(attr, static_cast<int>(left))) {
      return malformed("truncated attribute at offset " + std::to_string(pos));
    }
    NETCELL_TRY(fn(attr));
    pos += MNL_ALIGN(attr->nla_len);
  }
  return ok();
}

// The same over the attributes nested in `nest` (its payload), checked the same way.
template <typename Fn>
Result<void> for_each_nested(const nlattr* nest, std::string_view what, Fn&& fn) {
  const auto* base = static_cast<const std::uint8_t*>(mnl_attr_get_payload(nest));
  const std::size_t len = mnl_attr_get_payload_len(nest);
  std::size_t pos = 0;
  while (pos < len) {
    const std::size_t left = len - pos;
    const auto* attr = reinterpret_cast<const nlattr*>(base + pos);
    if (left < sizeof(nlattr) || !mnl_attr_ok(attr, static_cast<int>(left))) {
      return fail(ErrorCode::kSystem, "malformed " + std::string(what) +
                                          ": truncated nested attribute at offset " +
                                          std::to_string(pos));
    }
    NETCELL_TRY(fn(attr));
    pos += MNL_ALIGN(attr->nla_len);
  }
  return ok();
}

namespace rtnl {
// RTM_NEWLINK{ifindex}: set IFF_UP (or clear it).
NlMessage link_set_up(int ifindex, bool up);
// RTM_GETLINK dump of every link in the socket's namespace.
NlMessage link_dump();
// RTM_GETADDR dump for one family (AF_INET, AF_INET6 or AF_UNSPEC).
NlMessage addr_dump(int family);
}  // namespace rtnl

// Parsed from an RTM_NEWLINK reply: what stats and info need.
struct LinkRecord {
  int ifindex = 0;
  std::string name;
  std::uint32_t mtu = 0;
  std::uint32_t flags = 0;  // IFF_*
  InterfaceStats stats;     // from IFLA_STATS64 (name filled in)
  std::string mac;          // IFLA_ADDRESS of a 6-byte (Ethernet) address, else empty
  int master = 0;           // IFLA_MASTER: the bridge it is a port of; 0 for none
};
struct AddrRecord {
  int ifindex = 0;
  IpPrefix prefix;
};
// Pure parsers (tested on captured bytes).
Result<LinkRecord> parse_link(const nlmsghdr* nlh);
Result<AddrRecord> parse_addr(const nlmsghdr* nlh);
// An NLMSG_ERROR reply: success for an ACK (error 0), otherwise the Error it carries, named after
// the echoed request type plus the extended-ack text, e.g. "RTM_NEWADDR: ipv4: Address already
// assigned" with errno EEXIST.
Result<void> parse_ack(const nlmsghdr* nlh);

// An NETLINK_ROUTE socket, bound to the network namespace of the thread that opened it
// (notes §2.5) for its whole life. Not thread-safe; one user at a time.
class NetlinkSocket {
 public:
  // Opens, binds, enables NETLINK_EXT_ACK and NETLINK_CAP_ACK.
  static Result<NetlinkSocket> open(int protocol = NETLINK_ROUTE);

  // Sends one request with NLM_F_ACK and waits for its ACK. An error reply becomes an Error with
  // the errno and the extended-ack message, e.g. "RTM_NEWADDR: ipv4: Address already assigned".
  Result<void> request(NlMessage message);
  // The same, calling `on_reply` for every reply that precedes the ACK (the answer of an
  // RTM_GET* for one object, e.g. rtnl::link_get).
  Result<void> request(NlMessage message,
                       const std::function<Result<void>(const nlmsghdr*)>& on_reply);
  // Sends a dump request and calls `on_message` for every reply message until NLMSG_DONE.
  Result<void> dump(NlMessage message,
                    const std::function<Result<void>(const nlmsghdr*)>& on_message);

  // Sends `messages` in one write and waits until the kernel has run them all: the kernel runs
  // them in order, one after another (not as a transaction), answers each one that fails and
  // ACKs the last. The first error wins. For a sequence of dependent configuration steps that is
  // all undone together on failure.
  Result<void> request_all(std::vector<NlMessage> messages);
  // Sends several messages in one write (an nfnetlink batch, say) and reads answers until the
  // one for sequence number `ack_seq` (a message the caller gave NLM_F_ACK) arrived, or the
  // kernel has nothing more to say after an error. Sequence numbers are the caller's. The first
  // error wins.
  Result<void> send_batch(const NlMessage& messages, std::uint32_t ack_seq);

  int fd() const { return fd_.get(); }

 private:
  NetlinkSocket(UniqueFd fd, std::uint32_t port_id) : fd_(std::move(fd)), port_id_(port_id) {}
  // Sends `message` with `extra_flags` and reads replies until the ACK or NLMSG_DONE.
  Result<void> transact(NlMessage message, std::uint16_t extra_flags,
                        const std::function<Result<void>(const nlmsghdr*)>* on_message);
  // Sends `request` in one write, then hands every datagram that comes back to `on_datagram`
  // until it returns true. When nothing is queued, stops if `enough_when_dry` says so, and
  // otherwise waits for more, at most 5 s at a time.
  Result<void> exchange(
      const NlMessage& request, const std::string& what,
      const std::function<Result<bool>(const std::uint8_t*, std::size_t)>& on_datagram,
      const std::function<bool()>& enough_when_dry = nullptr);

  // The receive buffer, made on first use and kept.
  std::uint8_t* receive_buffer();

  UniqueFd fd_;
  std::uint32_t port_id_ = 0;
  std::uint32_t seq_ = 0;
  std::unique_ptr<std::uint8_t[]> receive_buffer_;
};

// Every link of the socket's namespace, with counters.
Result<std::vector<LinkRecord>> list_links(NetlinkSocket& socket);
// Every address of the socket's namespace.
Result<std::vector<AddrRecord>> list_addresses(NetlinkSocket& socket);

}  // namespace netcell::kernel
