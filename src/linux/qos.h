// netcell: bandwidth limits with tc over rtnetlink (notes §4). A link's egress is capped by a tbf
// (token bucket) root qdisc; a namespace's two directions are the egress of the two ends of its
// veth: the namespace end's egress is its upload, the host end's egress its download. No IFB or
// ingress policing is needed.
//
// The builders are pure (golden-tested without privileges); set_egress_rate sends them.
#pragma once

#include <cstdint>
#include <optional>

#include "linux/netlink.h"
#include "netcell/result.h"

namespace netcell::kernel {

// The parameters of one tbf qdisc, in the units the kernel takes.
struct TbfParams {
  std::uint64_t rate_bytes_per_second = 0;
  // Bucket size: how much may leave back to back. At least one full frame (the kernel drops a
  // non-GSO packet bigger than the bucket), and large enough for the rate that the qdisc
  // watchdog's wake-ups do not leave the link idle (notes §4: too small a burst costs 15% at
  // 2 Gbit/s).
  std::uint32_t burst_bytes = 0;
  // Bytes that may wait in the qdisc's FIFO before it drops.
  std::uint32_t limit_bytes = 0;
};

// The sizing netcell uses for `bits_per_second` on a link with this MTU:
//   burst = max(4 ms at the rate, 2 frames of MTU + Ethernet header)
//   limit = burst + max(50 ms at the rate, 4 frames)
// Measured with iperf3 over veth (TCP, 2 s runs, local and forwarded senders): 1 Mbit/s to
// 1 Gbit/s reach within 2% of the goodput a link of that rate can carry (about 95% of the rate:
// tbf counts Ethernet and IP/TCP headers); a 1 ms burst lost 8% at 1 Gbit/s, and a queue of only
// 20 ms lost 15% at 1 Mbit/s. Values are clamped to what the kernel's u32 fields hold.
TbfParams tbf_params_for(std::uint64_t bits_per_second, std::uint32_t mtu);

// The largest GSO packet the shaped device may build, so that tbf never has to split one:
// min(default_max, 15/16 of the burst); the 1/16 covers the headers tbf counts per segment.
//
// Why: tbf segments a GSO packet larger than its bucket and enqueues the pieces one by one. When
// the queue is full part-way, some pieces are dropped but the sender is told the packet went out,
// so a local TCP sender (the TSO packets are up to 64 KiB) must detect the loss and retransmit.
// Measured at 10 Mbit/s: up to 15,000 retransmits in 2 s and stalls of half a second (goodput
// down to 70%). With packets no larger than the bucket, a full queue refuses the whole packet,
// TCP sees local congestion and backs off: no retransmits, no stalls.
std::uint32_t gso_max_size_for(const TbfParams& params, std::uint32_t default_max);
// The kernel's default GSO limit for a device whose TSO limit is `tso_max_size` (0 = unknown).
std::uint32_t default_gso_max_size(std::uint32_t tso_max_size);

namespace rtnl {

// RTM_NEWQDISC NLM_F_CREATE|NLM_F_REPLACE: a tbf as the root qdisc of `ifindex`, handle 1:.
// Idempotent: it replaces whatever root qdisc is there, or changes netcell's own in place.
//
//   nlmsghdr RTM_NEWQDISC CREATE|REPLACE
//   tcmsg { AF_UNSPEC, ifindex, handle 1:0, parent TC_H_ROOT }
//   TCA_KIND "tbf"
//   TCA_OPTIONS {
//     TCA_TBF_PARMS  tc_tbf_qopt { rate { linklayer ethernet, rate = min(B/s, 2^32-1) },
//                                  limit, buffer = burst as time in ticks (64 ns) }
//     TCA_TBF_RATE64 u64 B/s       (only when the rate does not fit the u32)
//     TCA_TBF_BURST  u32 bytes     (the kernel then derives the bucket time itself)
//   }
//
// No rate table (TCA_TBF_RTAB): the kernel computes transmission times itself since 3.8 and only
// reads a table for TC_LINKLAYER_UNAWARE.
NlMessage tbf_replace(int ifindex, const TbfParams& params);
// RTM_DELQDISC of the root qdisc of `ifindex` (handle 0: whatever is there), which gives the
// device its default qdisc back.
NlMessage root_qdisc_delete(int ifindex);
// RTM_GETLINK by ifindex (reply parsed with parse_link_limits).
NlMessage link_get_by_index(int ifindex);
// RTM_NEWLINK by ifindex: IFLA_GSO_MAX_SIZE.
NlMessage link_set_gso_max_size(int ifindex, std::uint32_t bytes);

}  // namespace rtnl

// What set_egress_rate needs to know about a link, from an RTM_NEWLINK reply (pure, tested on
// built bytes). gso/tso_max_size are 0 when the kernel did not report them.
struct LinkLimits {
  std::uint32_t mtu = 0;
  std::uint32_t gso_max_size = 0;
  std::uint32_t tso_max_size = 0;
};
Result<LinkLimits> parse_link_limits(const nlmsghdr* nlh);

// Caps the egress of link `ifindex` in the socket's namespace at `bits_per_second` with a tbf
// sized by tbf_params_for (the link's MTU is read first), and lowers the link's GSO limit to
// gso_max_size_for (see there why). Unset or 0 removes the limit: the root qdisc is deleted (none
// there is fine) and the GSO limit goes back to the kernel's default. Idempotent; calling it
// again with another rate changes the limit in place.
//
// To limit both directions of a veth, call it for each end, each with a socket of its own end's
// namespace (notes §2.5). Rates outside [kMinRateBps, kMaxRateBps] are kInvalidArgument; kernel
// refusals carry the errno and the extended-ack text ("RTM_NEWQDISC: ...").
Result<void> set_egress_rate(NetlinkSocket& nl, int ifindex,
                             std::optional<std::uint64_t> bits_per_second);

}  // namespace netcell::kernel
