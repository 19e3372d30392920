// netcell: FlowLogReader (netcell/flowlog.h) — refused packets from the instance's NFLOG group
// (nflog.h), named: the namespace from the source address, the rule from its policy.
#include <libnftnl/object.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>

#include <chrono>
#include <map>
#include <tuple>
#include <unordered_map>

#include "linux/firewall.h"
#include "linux/netlink.h"
#include "linux/nflog.h"
#include "netcell/flowlog.h"

namespace netcell {
namespace {

using Clock = std::chrono::steady_clock;
using ObjPtr = std::unique_ptr<nftnl_obj, void (*)(const nftnl_obj*)>;

// How long a namespace's policy is trusted before it is read again (policy set changes it).
constexpr auto kPolicyFresh = std::chrono::seconds(1);
// The least time between two full re-reads of the namespaces for unknown sources (a source whose
// namespace is gone would otherwise make every packet read them all).
constexpr auto kListInterval = std::chrono::milliseconds(200);
// The most flows remembered for kFlowQuietSeconds (the rate limit keeps them few).
constexpr std::size_t kMaxRecentFlows = 4096;

std::int64_t now_unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string instance_run_dir(std::string run_dir) {
  while (run_dir.size() > 1 && run_dir.back() == '/') run_dir.pop_back();  // as the backend does
  return run_dir;
}

// Whether `decision` is what the kernel's prefix says refused the flow.
bool agrees(const EgressDecision& decision, DeniedBy by) {
  if (decision.action != PolicyAction::kDeny) return false;
  return by == DeniedBy::kRule ? decision.rule.has_value() : !decision.rule.has_value();
}

}  // namespace

std::uint16_t flow_log_group(const std::string& run_dir) {
  return kernel::log_group(kernel::owner_tag(instance_run_dir(run_dir)));
}

struct FlowLogReader::Impl {
  struct Known {
    std::string name;
    std::optional<EgressPolicy> policy;
    Clock::time_point read;
  };

  Impl(NamespaceManager& m, kernel::NflogSocket s, std::uint16_t g)
      : manager(m), socket(std::move(s)), group(g) {}

  // Re-reads every namespace: who has which address, with which policy.
  void relist() {
    const auto now = Clock::now();
    if (listed && now - *listed < kListInterval) return;
    listed = now;
    known.clear();
    for (auto& info : manager.list()) {
      for (const auto& interface : info.interfaces) {
        for (const auto& prefix : interface.addresses) {
          known[prefix.address.to_string()] = Known{info.name, info.egress, now};
        }
      }
    }
  }

  // The namespace at `source`, its policy read again when it is older than kPolicyFresh or
  // `stale` says the kernel decided otherwise than it does.
  const Known* lookup(const IpAddress& source, bool stale) {
    auto it = known.find(source.to_string());
    if (it == known.end()) {
      relist();
      it = known.find(source.to_string());
      if (it == known.end()) return nullptr;
    }
    if (stale || Clock::now() - it->second.read > kPolicyFresh) {
      auto info = manager.info(it->second.name);
      if (!info) {  // destroyed, or another namespace has the address now
        known.erase(it);
        relist();
        it = known.find(source.to_string());
        return it == known.end() ? nullptr : &it->second;
      }
      it->second.policy = info->egress;
      it->second.read = Clock::now();
    }
    return &it->second;
  }

  void name(DeniedFlow& flow) {
    const Known* ns = lookup(flow.source, false);
    auto decide = [&](const Known& k) {
      return k.policy ? k.policy->decide(flow.destination, flow.ip_protocol, flow.port)
                      : EgressDecision{PolicyAction::kAllow, std::nullopt};
    };
    if (ns != nullptr && flow.by != DeniedBy::kDns && !agrees(decide(*ns), flow.by)) {
      ns = lookup(flow.source, true);  // the policy changed since it was read
    }
    if (ns == nullptr) return;
    flow.ns = ns->name;
    if (flow.by != DeniedBy::kRule) return;
    auto decision = decide(*ns);
    if (!agrees(decision, flow.by)) return;  // changed again since the packet: rule unknown
    flow.rule_index = *decision.rule;
    const EgressRule& rule = ns->policy->rules[*decision.rule];
    flow.rule = std::string(to_string(rule.action)) + ' ' + rule.to_string();
  }

  // Whether the flow was reported in the last kFlowQuietSeconds (and its packets kept coming).
  bool seen_recently(const DeniedFlow& f) {
    const auto now = Clock::now();
    const auto quiet = std::chrono::seconds(kFlowQuietSeconds);
    const FlowKey key{f.source.to_string(),
                      f.destination.to_string(),
                      f.ip_protocol,
                      f.source_port,
                      f.port,
                      static_cast<std::uint16_t>(f.icmp_type << 8 | f.icmp_code)};
    auto [it, added] = recent.try_emplace(key, now);
    const bool seen = !added && now - it->second < quiet;
    it->second = now;
    if (recent.size() > kMaxRecentFlows) {  // bounded: forget the quiet ones, or all
      std::erase_if(recent, [&](const auto& e) { return now - e.second >= quiet; });
      if (recent.size() > kMaxRecentFlows) recent.clear();
    }
    return seen;
  }

  NamespaceManager& manager;
  kernel::NflogSocket socket;
  std::uint16_t group;
  std::unordered_map<std::string, Known> known;  // by address, either family
  using FlowKey = std::tuple<std::string, std::string, std::uint8_t, std::uint16_t, std::uint16_t,
                             std::uint16_t>;
  std::map<FlowKey, Clock::time_point> recent;
  std::optional<Clock::time_point> listed;
  std::optional<kernel::NetlinkSocket> nft;  // for the counter, opened on first use
};

FlowLogReader::FlowLogReader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
FlowLogReader::FlowLogReader(FlowLogReader&&) noexcept = default;
FlowLogReader& FlowLogReader::operator=(FlowLogReader&&) noexcept = default;
FlowLogReader::~FlowLogReader() = default;

Result<FlowLogReader> FlowLogReader::open(NamespaceManager& manager) {
  if (manager.backend() != BackendKind::kLinux) {
    return fail(ErrorCode::kUnsupported,
                "the denied-flow log needs the Linux backend (the simulation refuses nothing)");
  }
  const std::uint16_t group = flow_log_group(manager.options().run_dir);
  auto socket = kernel::NflogSocket::open(group);
  if (!socket) return fail(std::move(socket).error().with_context("denied-flow log"));
  return FlowLogReader(std::make_unique<Impl>(manager, std::move(*socket), group));
}

int FlowLogReader::fd() const {
  return impl_->socket.fd();
}
std::uint16_t FlowLogReader::group() const {
  return impl_->group;
}
std::uint64_t FlowLogReader::lost() const {
  return impl_->socket.lost();
}

Result<std::size_t> FlowLogReader::drain(const std::function<void(const DeniedFlow&)>& on_flow,
                                         const NameLookup& lookup) {
  std::size_t count = 0;
  auto got = impl_->socket.drain([&](const kernel::LoggedPacket& packet) {
    auto flow = kernel::parse_logged_packet(packet.payload, packet.prefix);
    if (!flow) return;  // another rule's log in the same group, or a packet cut short
    if (impl_->seen_recently(*flow)) return;
    flow->time_unix_ms = packet.time_unix_ms.value_or(now_unix_ms());
    impl_->name(*flow);
    if (lookup && !flow->ns.empty()) flow->name = lookup(flow->ns, flow->destination);
    ++count;
    if (on_flow) on_flow(*flow);
  });
  if (!got) return fail(got.error());
  return count;
}

Result<std::uint64_t> FlowLogReader::suppressed() {
  if (!impl_->nft) {
    auto nl = kernel::NetlinkSocket::open(NETLINK_NETFILTER);
    if (!nl) return fail(std::move(nl).error().with_context("nftables"));
    impl_->nft.emplace(std::move(*nl));
  }
  // The ip table's counter, and the ip6 table's where there is one (a host with IPv6).
  std::uint64_t total = 0;
  for (const std::uint16_t family : {std::uint16_t{NFPROTO_IPV4}, std::uint16_t{NFPROTO_IPV6}}) {
    const char* table = family == NFPROTO_IPV4 ? "ip" : "ip6";
    ObjPtr obj(nftnl_obj_alloc(), nftnl_obj_free);
    nftnl_obj_set_str(obj.get(), NFTNL_OBJ_TABLE, "netcell");
    nftnl_obj_set_str(obj.get(), NFTNL_OBJ_NAME, "log_suppressed");
    nftnl_obj_set_u32(obj.get(), NFTNL_OBJ_TYPE, NFT_OBJECT_COUNTER);
    kernel::NlMessage message(1024);
    nlmsghdr* nlh = nftnl_nlmsg_build_hdr(reinterpret_cast<char*>(message.data()), NFT_MSG_GETOBJ,
                                          family, 0, 0);
    nftnl_obj_nlmsg_build_payload(nlh, obj.get());
    message.resize(nlh->nlmsg_len);
    std::optional<std::uint64_t> packets;
    auto got = impl_->nft->request(std::move(message), [&](const nlmsghdr* reply) -> Result<void> {
      ObjPtr o(nftnl_obj_alloc(), nftnl_obj_free);
      if (nftnl_obj_nlmsg_parse(reply, o.get()) == 0) {
        packets = nftnl_obj_get_u64(o.get(), NFTNL_OBJ_CTR_PKTS);
      }
      return ok();
    });
    if (!got && family == NFPROTO_IPV6 && got.error().code() == ErrorCode::kNotFound) break;
    if (!got) {
      return fail(std::move(got).error().with_context(
          std::string("nftables: read counter log_suppressed of table ") + table + " netcell"));
    }
    if (!packets) {
      return fail(ErrorCode::kSystem, "nftables: no counter log_suppressed in the reply");
    }
    total += *packets;
  }
  return total;
}

}  // namespace netcell
