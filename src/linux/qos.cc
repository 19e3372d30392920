#include "linux/qos.h"

#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <algorithm>
#include <limits>
#include <string>

#include "netcell/types.h"

namespace netcell::kernel {
namespace {

constexpr std::uint64_t kU32Max = std::numeric_limits<std::uint32_t>::max();
// Room for any message built here: headers, the tbf options and the kind string.
constexpr std::size_t kQdiscMessageRoom = 256;
// A frame on the wire as tbf counts it: the MTU plus the Ethernet header.
constexpr std::uint64_t kEthernetHeader = 14;
// The kernel's scheduler clock tick (PSCHED_SHIFT): 64 ns.
constexpr unsigned kPschedShift = 6;
constexpr std::uint32_t kRootHandle = 1U << 16;  // "1:"

// Bytes that leave in `ms` milliseconds at `bytes_per_second`, without overflowing.
std::uint64_t bytes_in_ms(std::uint64_t bytes_per_second, std::uint64_t ms) {
  return bytes_per_second / 1000 * ms + bytes_per_second % 1000 * ms / 1000;
}

nlmsghdr* put_tcmsg(NlMessage& buf, std::uint16_t type, std::uint16_t flags, int ifindex,
                    std::uint32_t handle) {
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = type;
  nlh->nlmsg_flags = flags;
  auto* tcm = static_cast<tcmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(tcmsg)));
  tcm->tcm_family = AF_UNSPEC;
  tcm->tcm_ifindex = ifindex;
  tcm->tcm_handle = handle;
  tcm->tcm_parent = TC_H_ROOT;
  return nlh;
}

nlmsghdr* put_ifinfomsg(NlMessage& buf, std::uint16_t type, int ifindex) {
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = type;
  nlh->nlmsg_flags = NLM_F_REQUEST;
  auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = ifindex;
  return nlh;
}

}  // namespace

TbfParams tbf_params_for(std::uint64_t bits_per_second, std::uint32_t mtu) {
  const std::uint64_t rate = bits_per_second / 8;
  const std::uint64_t frame = std::uint64_t{mtu} + kEthernetHeader;
  const std::uint64_t burst = std::min(std::max(bytes_in_ms(rate, 4), 2 * frame), kU32Max);
  const std::uint64_t queue = std::max(bytes_in_ms(rate, 50), 4 * frame);
  TbfParams params;
  params.rate_bytes_per_second = rate;
  params.burst_bytes = static_cast<std::uint32_t>(burst);
  params.limit_bytes = static_cast<std::uint32_t>(std::min(burst + queue, kU32Max));
  return params;
}

std::uint32_t gso_max_size_for(const TbfParams& params, std::uint32_t default_max) {
  const std::uint64_t fits = std::uint64_t{params.burst_bytes} * 15 / 16;
  return static_cast<std::uint32_t>(std::min<std::uint64_t>(fits, default_max));
}

std::uint32_t default_gso_max_size(std::uint32_t tso_max_size) {
  // GSO_LEGACY_MAX_SIZE, lowered to what the device can segment (netif_set_tso_max_size).
  constexpr std::uint32_t kLegacyMax = 65536;
  return tso_max_size == 0 ? kLegacyMax : std::min(kLegacyMax, tso_max_size);
}

namespace rtnl {

NlMessage tbf_replace(int ifindex, const TbfParams& params) {
  NlMessage buf(kQdiscMessageRoom);
  nlmsghdr* nlh = put_tcmsg(buf, RTM_NEWQDISC, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_REPLACE,
                            ifindex, kRootHandle);
  mnl_attr_put_strz(nlh, TCA_KIND, "tbf");
  nlattr* options = mnl_attr_nest_start(nlh, TCA_OPTIONS);
  tc_tbf_qopt qopt{};
  qopt.rate.linklayer = TC_LINKLAYER_ETHERNET;
  qopt.rate.rate = static_cast<std::uint32_t>(std::min(params.rate_bytes_per_second, kU32Max));
  qopt.limit = params.limit_bytes;
  // The bucket as the time it takes to fill, in scheduler ticks: what `tc` sends and shows. The
  // kernel recomputes it from TCA_TBF_BURST.
  if (params.rate_bytes_per_second > 0) {
    // burst < 2^32 and 10^9 < 2^30: the product fits in 64 bits.
    const std::uint64_t ns =
        std::uint64_t{params.burst_bytes} * 1'000'000'000U / params.rate_bytes_per_second;
    qopt.buffer = static_cast<std::uint32_t>(std::min(ns >> kPschedShift, kU32Max));
  }
  mnl_attr_put(nlh, TCA_TBF_PARMS, sizeof qopt, &qopt);
  if (params.rate_bytes_per_second > kU32Max) {
    mnl_attr_put_u64(nlh, TCA_TBF_RATE64, params.rate_bytes_per_second);
  }
  mnl_attr_put_u32(nlh, TCA_TBF_BURST, params.burst_bytes);
  mnl_attr_nest_end(nlh, options);
  buf.resize(nlh->nlmsg_len);
  return buf;
}

NlMessage root_qdisc_delete(int ifindex) {
  NlMessage buf(MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(tcmsg)));
  nlmsghdr* nlh = put_tcmsg(buf, RTM_DELQDISC, NLM_F_REQUEST, ifindex, 0);
  buf.resize(nlh->nlmsg_len);
  return buf;
}

NlMessage link_get_by_index(int ifindex) {
  NlMessage buf(MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(ifinfomsg)));
  nlmsghdr* nlh = put_ifinfomsg(buf, RTM_GETLINK, ifindex);
  buf.resize(nlh->nlmsg_len);
  return buf;
}

NlMessage link_set_gso_max_size(int ifindex, std::uint32_t bytes) {
  NlMessage buf(kQdiscMessageRoom);
  nlmsghdr* nlh = put_ifinfomsg(buf, RTM_NEWLINK, ifindex);
  mnl_attr_put_u32(nlh, IFLA_GSO_MAX_SIZE, bytes);
  buf.resize(nlh->nlmsg_len);
  return buf;
}

}  // namespace rtnl

Result<LinkLimits> parse_link_limits(const nlmsghdr* nlh) {
  auto malformed = [](const std::string& why) {
    return fail(ErrorCode::kSystem, "malformed RTM_NEWLINK: " + why);
  };
  if (nlh->nlmsg_type != RTM_NEWLINK) {
    return malformed("unexpected message type " + std::to_string(nlh->nlmsg_type));
  }
  LinkLimits limits;
  NETCELL_TRY(
      for_each_attr(nlh, sizeof(ifinfomsg), "RTM_NEWLINK", [&](const nlattr* attr) -> Result<void> {
        std::uint32_t* target = nullptr;
        switch (mnl_attr_get_type(attr)) {
          case IFLA_MTU: target = &limits.mtu; break;
          case IFLA_GSO_MAX_SIZE: target = &limits.gso_max_size; break;
          case IFLA_TSO_MAX_SIZE: target = &limits.tso_max_size; break;
          default: return ok();
        }
        if (mnl_attr_validate(attr, MNL_TYPE_U32) < 0) {
          return malformed("attribute " + std::to_string(mnl_attr_get_type(attr)) +
                           " is not a u32");
        }
        *target = mnl_attr_get_u32(attr);
        return ok();
      }));
  if (limits.mtu == 0) return malformed("no IFLA_MTU");
  return limits;
}

Result<void> set_egress_rate(NetlinkSocket& nl, int ifindex,
                             std::optional<std::uint64_t> bits_per_second) {
  const bool remove = !bits_per_second || *bits_per_second == 0;
  if (!remove) NETCELL_TRY(validate_rate(*bits_per_second));
  std::optional<LinkLimits> link;
  NETCELL_TRY(
      nl.request(rtnl::link_get_by_index(ifindex), [&](const nlmsghdr* nlh) -> Result<void> {
        auto parsed = parse_link_limits(nlh);
        if (!parsed) return fail(parsed.error());
        link = *parsed;
        return ok();
      }));
  if (!link)
    return fail(ErrorCode::kSystem, "RTM_GETLINK: no reply for link " + std::to_string(ifindex));
  const std::uint32_t default_gso = default_gso_max_size(link->tso_max_size);
  // A kernel that does not report the GSO limit cannot be told one either.
  auto set_gso = [&](std::uint32_t bytes) -> Result<void> {
    if (link->gso_max_size == 0 || link->gso_max_size == bytes) return ok();
    return nl.request(rtnl::link_set_gso_max_size(ifindex, bytes));
  };
  if (remove) {
    auto removed = nl.request(rtnl::root_qdisc_delete(ifindex));
    // ENOENT: the device has only its default qdisc, which is what removing asks for.
    if (!removed && removed.error().code() != ErrorCode::kNotFound) return removed;
    return set_gso(default_gso);
  }
  const TbfParams params = tbf_params_for(*bits_per_second, link->mtu);
  // The GSO limit first: no packet larger than the bucket reaches the new qdisc.
  NETCELL_TRY(set_gso(gso_max_size_for(params, default_gso)));
  return nl.request(rtnl::tbf_replace(ifindex, params));
}

}  // namespace netcell::kernel
