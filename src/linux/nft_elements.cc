#include "linux/nft_elements.h"

#include <libmnl/libmnl.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <net/if.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <map>
#include <memory>

namespace netcell::kernel {
namespace {

constexpr char kTableName[] = "netcell";
// Room for a message without elements: headers and two names of at most 256 bytes each.
constexpr std::size_t kSmallMessage = 1024;

struct SetDeleter {
  void operator()(nftnl_set* set) const { nftnl_set_free(set); }
};
struct TableDeleter {
  void operator()(nftnl_table* table) const { nftnl_table_free(table); }
};

// Appends one netlink message built by `build` (which gets a buffer of `room` bytes and returns
// the header it wrote) to `out`.
template <typename Build>
void append(std::vector<std::uint8_t>& out, std::size_t room, Build build) {
  // Built in place at the end of `out`; the builders write every byte of the message, headers
  // and padding included, so what is cut back off was never part of it.
  const std::size_t at = out.size();
  out.resize(at + room);
  nlmsghdr* nlh = build(reinterpret_cast<char*>(out.data() + at));
  out.resize(at + MNL_ALIGN(nlh->nlmsg_len));
}

}  // namespace

namespace nft_encode {

std::vector<std::uint8_t> ifname(const std::string& name) {
  std::vector<std::uint8_t> out(IFNAMSIZ, 0);
  std::memcpy(out.data(), name.data(), std::min(name.size(), std::size_t{IFNAMSIZ - 1}));
  return out;
}

std::vector<std::uint8_t> ipv4(const IpAddress& address) {
  const auto& b = address.bytes();
  return {b[0], b[1], b[2], b[3]};
}

std::vector<std::uint8_t> ipv6(const IpAddress& address) {
  const auto& b = address.bytes();
  return {b.begin(), b.end()};
}

std::vector<std::uint8_t> service(std::uint16_t port) {
  return {static_cast<std::uint8_t>(port >> 8), static_cast<std::uint8_t>(port & 0xff)};
}

std::vector<std::uint8_t> proto(std::uint8_t ip_protocol) {
  return {ip_protocol};
}

std::vector<std::uint8_t> concat(const std::vector<std::vector<std::uint8_t>>& fields) {
  std::vector<std::uint8_t> out;
  for (const auto& field : fields) {
    out.insert(out.end(), field.begin(), field.end());
    out.resize((out.size() + 3) / 4 * 4, 0);
  }
  return out;
}

}  // namespace nft_encode

std::vector<PolicyBox> disjoint_boxes(const std::vector<PolicyBox>& boxes,
                                      std::vector<std::size_t>* origins) {
  // Each box minus every box kept so far, in pieces (at most four per subtraction: the addresses
  // below and above the other box, and within its addresses the ports below and above it).
  std::vector<PolicyBox> kept;
  for (const auto& box : boxes) {
    std::vector<PolicyBox> pieces{box};
    for (const auto& other : kept) {
      std::vector<PolicyBox> next;
      for (const auto& p : pieces) {
        bool overlap = p.first_address <= other.last_address &&
                       other.first_address <= p.last_address && p.first_port <= other.last_port &&
                       other.first_port <= p.last_port;
        if (!overlap) {
          next.push_back(p);
          continue;
        }
        if (p.first_address < other.first_address) {
          next.push_back({p.first_address, other.first_address - 1, p.first_port, p.last_port});
        }
        if (p.last_address > other.last_address) {
          next.push_back({other.last_address + 1, p.last_address, p.first_port, p.last_port});
        }
        PolicyAddress lo = std::max(p.first_address, other.first_address);
        PolicyAddress hi = std::min(p.last_address, other.last_address);
        if (p.first_port < other.first_port) {
          next.push_back({lo, hi, p.first_port, static_cast<std::uint16_t>(other.first_port - 1)});
        }
        if (p.last_port > other.last_port) {
          next.push_back({lo, hi, static_cast<std::uint16_t>(other.last_port + 1), p.last_port});
        }
      }
      pieces = std::move(next);
    }
    kept.insert(kept.end(), pieces.begin(), pieces.end());
    if (origins != nullptr)
      origins->resize(kept.size(), static_cast<std::size_t>(&box - boxes.data()));
  }
  return kept;
}

unsigned policy_shard(const IpAddress& source) {
  return (source.v4_host_order() >> 2) % kPolicyShards;
}

std::string policy_shard_key(unsigned k) {
  return "0.0.0." + std::to_string((k % kPolicyShards) << 2);
}

unsigned policy_shard6(const IpAddress& source) {
  return source.bytes()[7] % kPolicyShards;
}

std::string policy_shard_key6(unsigned k) {
  static constexpr char kHex[] = "0123456789abcdef";
  k %= kPolicyShards;
  if (k == 0) return "::";
  std::string out = "0:0:0:";
  if (k >= 16) out += kHex[k >> 4];
  out += kHex[k & 0xF];
  return out + "::";
}

std::string policy_set(const char* base, const IpAddress& source) {
  return std::string(base) + "_" +
         std::to_string(source.is_v4() ? policy_shard(source) : policy_shard6(source));
}

namespace {

PolicyAddress address_number(const IpAddress& address) {
  if (address.is_v4()) return address.v4_host_order();
  PolicyAddress n = 0;
  for (std::uint8_t b : address.bytes()) n = (n << 8) | b;
  return n;
}

IpAddress number_address(PolicyAddress n, bool v4) {
  if (v4) return IpAddress::v4(static_cast<std::uint32_t>(n));
  std::array<std::uint8_t, 16> bytes{};
  for (int i = 15; i >= 0; --i, n >>= 8) bytes[i] = static_cast<std::uint8_t>(n & 0xFF);
  return IpAddress::v6(bytes);
}

std::vector<std::uint8_t> address_key(const IpAddress& address) {
  return address.is_v4() ? nft_encode::ipv4(address) : nft_encode::ipv6(address);
}

// The set names of one family: "pol_" (ip netcell) or "pol6_" (ip6 netcell) and the rest.
std::string family_set(bool v4, const char* rest) {
  return (v4 ? std::string("pol_") : std::string(kPolicy6Prefix)) + rest;
}

}  // namespace

Result<void> policy_elements(const PolicySource& source, const EgressPolicy& policy,
                             std::vector<SetElement>& out, std::vector<int>* rule_of) {
  using namespace nft_encode;
  auto push = [&](SetElement e, int rule) {
    out.push_back(std::move(e));
    if (rule_of != nullptr) rule_of->push_back(rule);
  };
  // Per family with a source: the namespace's mark, and the default's element (pol_open lets an
  // allow default through, pol_default refuses, and counts, what a deny default refuses).
  std::vector<IpAddress> sources{source.v4};
  if (source.v6) sources.push_back(*source.v6);
  for (const IpAddress& from : sources) {
    const bool v4 = from.is_v4();
    const auto src = address_key(from);
    push({family_set(v4, "ns"), src, {}, {}}, kNoRule);
    push({family_set(v4, policy.default_action == PolicyAction::kAllow ? "open" : "default"),
          src,
          {},
          {}},
         kDefaultElement);
  }
  // The kernel's concatenated-interval sets refuse an element whose first or last key falls in
  // another element: the rules of one set are first cut into boxes that do not overlap (same
  // union). Sets: pol_{allow,deny}_{tp,ip,icmp} (pol6_ for IPv6 rules); tp boxes per transport
  // protocol.
  std::map<std::pair<std::string, std::uint8_t>, std::vector<PolicyBox>> sets;
  std::map<std::pair<std::string, std::uint8_t>, std::vector<int>> rules_of_boxes;
  for (std::size_t index = 0; index < policy.rules.size(); ++index) {
    const auto& rule = policy.rules[index];
    const bool v4 = rule.destination.address.is_v4();
    if (!v4 && !source.v6) continue;  // no IPv6 to filter
    const IpAddress& from = v4 ? source.v4 : *source.v6;
    auto add = [&](std::pair<std::string, std::uint8_t> key, const PolicyBox& b) {
      sets[key].push_back(b);
      rules_of_boxes[key].push_back(static_cast<int>(index));
    };
    const std::string kind = rule.action == PolicyAction::kAllow ? "allow" : "deny";
    auto shard = [&](const char* suffix) {
      return policy_set(family_set(v4, (kind + suffix).c_str()).c_str(), from);
    };
    const unsigned bits = v4 ? 32 : 128;
    const PolicyAddress first = address_number(rule.destination.address);
    const PolicyAddress host_mask =
        rule.destination.prefix_len >= bits
            ? 0
            : (~PolicyAddress{0} >> (128 - bits + rule.destination.prefix_len));
    const PolicyAddress last = first | host_mask;
    const std::uint16_t lo = rule.ports.any() ? 0 : rule.ports.first;
    const std::uint16_t hi = rule.ports.any() ? 65535 : rule.ports.last;
    const PolicyBox box{first, last, lo, hi};
    switch (rule.protocol) {
      case PolicyProtocol::kIcmp: add({shard("_icmp"), 0}, box); break;
      case PolicyProtocol::kTcp: add({shard("_tp"), IPPROTO_TCP}, box); break;
      case PolicyProtocol::kUdp: add({shard("_tp"), IPPROTO_UDP}, box); break;
      case PolicyProtocol::kAny:  // with ports: tcp and udp; without: every protocol
        if (rule.ports.any()) {
          add({shard("_ip"), 0}, box);
        } else {
          add({shard("_tp"), IPPROTO_TCP}, box);
          add({shard("_tp"), IPPROTO_UDP}, box);
        }
        break;
    }
  }
  std::size_t count = 0;
  for (const auto& [key, boxes] : sets) {
    const auto& [set, protocol] = key;
    const bool v4 = set.rfind(kPolicy6Prefix, 0) != 0;
    const auto src = address_key(v4 ? source.v4 : *source.v6);
    const bool ports = set.find("_tp_") != std::string::npos;
    std::vector<PolicyBox> flat = boxes;
    if (!ports) {
      for (auto& b : flat) b.first_port = 0, b.last_port = 65535;  // addresses only
    }
    std::vector<std::size_t> origins;
    const auto pieces = disjoint_boxes(flat, &origins);
    for (std::size_t n = 0; n < pieces.size(); ++n) {
      const PolicyBox& b = pieces[n];
      const int rule = rules_of_boxes[key][origins[n]];
      const auto a = address_key(number_address(b.first_address, v4));
      const auto z = address_key(number_address(b.last_address, v4));
      if (ports) {
        push({set,
              concat({src, a, proto(protocol), service(b.first_port)}),
              {},
              concat({src, z, proto(protocol), service(b.last_port)})},
             rule);
      } else {
        push({set, concat({src, a}), {}, concat({src, z})}, rule);
      }
      if (++count > kMaxPolicyElements) {
        return fail(ErrorCode::kInvalidArgument,
                    "the egress policy's rules overlap into more than " +
                        std::to_string(kMaxPolicyElements) +
                        " pieces; merge or simplify overlapping rules");
      }
    }
  }
  return ok();
}

std::vector<SetElement> learned_elements(const PolicySource& source,
                                         const std::vector<LearnedDestination>& destinations,
                                         std::int64_t now_unix_ms) {
  using namespace nft_encode;
  std::vector<SetElement> out;
  for (const auto& d : destinations) {
    const bool v4 = d.address.is_v4();
    if (!v4 && !source.v6) continue;  // no IPv6 to filter
    const IpAddress& from = v4 ? source.v4 : *source.v6;
    const auto src = address_key(from);
    const auto dst = address_key(d.address);
    // Whole seconds, rounded up: a fresh element lasts exactly what the policy says, however long
    // the way from the answer to the kernel took.
    const std::int64_t left =
        std::max<std::int64_t>((d.expires_unix_ms - now_unix_ms + 999) / 1000 * 1000, 1000);
    SetElement e;
    switch (d.protocol) {
      case PolicyProtocol::kAny:
        e = {family_set(v4, "learned_ip"), concat({src, dst}), {}, {}};
        break;
      case PolicyProtocol::kIcmp:
        e = {family_set(v4, "learned_icmp"), concat({src, dst}), {}, {}};
        break;
      case PolicyProtocol::kTcp:
      case PolicyProtocol::kUdp: {
        const std::uint8_t p = d.protocol == PolicyProtocol::kTcp ? IPPROTO_TCP : IPPROTO_UDP;
        e = {policy_set(family_set(v4, "learned_tp").c_str(), from),
             concat({src, dst, proto(p), service(d.ports.first)}),
             {},
             concat({src, dst, proto(p), service(d.ports.last)})};
        break;
      }
    }
    e.timeout_ms = static_cast<std::uint64_t>(left);
    out.push_back(std::move(e));
  }
  return out;
}

std::vector<SetElement> resolver_port_elements(std::uint16_t port) {
  using namespace nft_encode;
  return {{"resolver_port", service(53), service(port), {}},
          {"resolver_ports", service(port), {}, {}}};
}

bool in_bridge_table(const std::string& name) {
  return name == kBridgePortsSet || name == kPortSourceSet || name == kRoutedSet ||
         name == kPortSource6Set || name == kPortNd6Set || name == kRouted6Set;
}

bool in_ip6_table(const std::string& name) {
  return name == kIfs6Set || name == kSourceOk6Set || name == kNat6Set || name == kHairpin6Set ||
         name == kPf6Tcp || name == kPf6Udp || name == kPf6TcpIp || name == kPf6UdpIp ||
         name == kLogRate6Set || name.rfind(kPolicy6Prefix, 0) == 0;
}

std::uint16_t table_family(const std::string& name) {
  return in_bridge_table(name) ? NFPROTO_BRIDGE : in_ip6_table(name) ? NFPROTO_IPV6 : NFPROTO_IPV4;
}

std::vector<SetElement> rate_elements(const NamespaceRules& rules) {
  using namespace nft_encode;
  std::vector<SetElement> out{{kLogRateSet, ipv4(rules.address), {}, {}},
                              {kDnsRateSet, ipv4(rules.address), {}, {}}};
  if (rules.address6) out.push_back({kLogRate6Set, ipv6(*rules.address6), {}, {}});
  return out;
}

SetElement routed_element(const IpAddress& source) {
  if (source.is_v6()) return {kRouted6Set, nft_encode::ipv6(source), {}, {}};
  return {kRoutedSet, nft_encode::ipv4(source), {}, {}};
}

Result<std::vector<SetElement>> namespace_elements(const NamespaceRules& rules) {
  using namespace nft_encode;
  std::vector<SetElement> out;
  const auto ip = ipv4(rules.address);
  if (!rules.host_if.empty()) {
    const auto dev = ifname(rules.host_if);
    out.push_back({"ns_ifs", dev, {}, {}});
    out.push_back({"src_ok", concat({dev, ip}), {}, {}});
    out.push_back({"hairpin", concat({dev, dev}), {}, {}});
    if (rules.masquerade) out.push_back({"nat_src", ip, {}, {}});
    if (rules.address6) {
      // The same transaction: a dual-stack namespace costs one batch, as an IPv4-only one does.
      const auto ip6 = ipv6(*rules.address6);
      out.push_back({kIfs6Set, dev, {}, {}});
      out.push_back({kSourceOk6Set, concat({dev, ip6}), {}, {}});
      if (rules.masquerade6) out.push_back({kNat6Set, ip6, {}, {}});
      if (!rules.forwards.empty()) out.push_back({kHairpin6Set, concat({dev, dev}), {}, {}});
    }
  }
  if (!rules.bridge_port.empty()) {
    const auto port = ifname(rules.bridge_port);
    out.push_back({kBridgePortsSet, port, {}, {}});
    out.push_back({kPortSourceSet, concat({port, ip}), {}, {}});
    if (rules.egress) out.push_back(routed_element(rules.address));
    if (rules.address6) {
      // Its only IPv6 source, and the only target its neighbour advertisements may name.
      const auto ip6 = ipv6(*rules.address6);
      out.push_back({kPortSource6Set, concat({port, ip6}), {}, {}});
      out.push_back({kPortNd6Set, concat({port, ip6}), {}, {}});
      if (rules.egress) out.push_back(routed_element(*rules.address6));
    }
  }
  if (rules.egress) {
    NETCELL_TRY(policy_elements({rules.address, rules.address6}, *rules.egress, out));
  }
  for (const auto& f : rules.forwards) {
    const bool tcp = f.protocol == Protocol::kTcp;
    // IPv6: with no host address a publish covers both families; "::" is every IPv6 address of
    // the host; ::1 is relayed by the host service, not DNATed (firewall.cc, ipv6_table).
    if (rules.address6 && (!f.host_ip || f.host_ip->is_v6()) &&
        !(f.host_ip && f.host_ip->is_ipv6_loopback())) {
      auto target6 = concat({ipv6(*rules.address6), service(f.container_port)});
      if (f.host_ip && !f.host_ip->is_unspecified()) {
        out.push_back({tcp ? kPf6TcpIp : kPf6UdpIp,
                       concat({ipv6(*f.host_ip), service(f.host_port)}),
                       std::move(target6),
                       {}});
      } else {
        out.push_back({tcp ? kPf6Tcp : kPf6Udp, service(f.host_port), std::move(target6), {}});
      }
    }
    if (f.host_ip && f.host_ip->is_v6()) continue;
    auto target = concat({ip, service(f.container_port)});
    if (f.host_ip) {
      out.push_back({tcp ? "pf_tcp_ip" : "pf_udp_ip",
                     concat({ipv4(*f.host_ip), service(f.host_port)}),
                     std::move(target),
                     {}});
    } else {
      out.push_back({tcp ? "pf_tcp" : "pf_udp", service(f.host_port), std::move(target), {}});
    }
  }
  return out;
}

std::vector<std::uint8_t> build_element_batch(ElementOp op, const std::vector<SetElement>& elements,
                                              std::uint32_t seq, std::uint32_t& ack_seq) {
  return build_element_batch({{op, elements}}, seq, ack_seq);
}

std::vector<std::uint8_t> build_element_batch(const std::vector<ElementStep>& steps,
                                              std::uint32_t seq, std::uint32_t& ack_seq) {
  std::vector<std::uint8_t> out;
  append(out, kSmallMessage, [&](char* buf) { return nftnl_batch_begin(buf, seq++); });
  std::size_t last_step = 0;
  for (std::size_t k = 0; k < steps.size(); ++k) {
    if (!steps[k].elements.empty()) last_step = k;
  }
  for (std::size_t k = 0; k < steps.size(); ++k) {
    const ElementOp op = steps[k].op;
    const std::vector<SetElement>& elements = steps[k].elements;
    // One message per set, its elements in the order given.
    std::map<std::string, std::vector<const SetElement*>> by_set;
    std::vector<std::string> order;
    for (const auto& e : elements) {
      auto [it, fresh] = by_set.try_emplace(e.set);
      if (fresh) order.push_back(e.set);
      it->second.push_back(&e);
    }

    for (const auto& name : order) {
      std::unique_ptr<nftnl_set, SetDeleter> set(nftnl_set_alloc());
      nftnl_set_set_str(set.get(), NFTNL_SET_TABLE, kTableName);
      nftnl_set_set_str(set.get(), NFTNL_SET_NAME, name.c_str());
      std::size_t room = kSmallMessage;
      for (const SetElement* e : by_set[name]) {
        nftnl_set_elem* elem = nftnl_set_elem_alloc();
        nftnl_set_elem_set(elem, NFTNL_SET_ELEM_KEY, e->key.data(),
                           static_cast<std::uint32_t>(e->key.size()));
        if (!e->data.empty()) {
          nftnl_set_elem_set(elem, NFTNL_SET_ELEM_DATA, e->data.data(),
                             static_cast<std::uint32_t>(e->data.size()));
        }
        if (!e->key_end.empty()) {
          nftnl_set_elem_set(elem, NFTNL_SET_ELEM_KEY_END, e->key_end.data(),
                             static_cast<std::uint32_t>(e->key_end.size()));
        }
        if (e->timeout_ms != 0 && op == ElementOp::kAdd) {
          nftnl_set_elem_set_u64(elem, NFTNL_SET_ELEM_TIMEOUT, e->timeout_ms);
        }
        nftnl_set_elem_add(set.get(), elem);  // the set owns it now
        // Nests, attribute headers, padding.
        room += 128 + e->key.size() + e->data.size() + e->key_end.size();
      }
      const std::uint16_t type = op == ElementOp::kAdd ? NFT_MSG_NEWSETELEM : NFT_MSG_DELSETELEM;
      std::uint16_t flags = op == ElementOp::kAdd ? NLM_F_CREATE : 0;
      if (k == last_step && name == order.back()) flags |= NLM_F_ACK;
      ack_seq = seq;
      append(out, room, [&](char* buf) {
        nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buf, type, table_family(name), flags, seq++);
        nftnl_set_elems_nlmsg_build_payload(nlh, set.get());
        return nlh;
      });
    }
  }
  append(out, kSmallMessage, [&](char* buf) { return nftnl_batch_end(buf, seq++); });
  return out;
}

Result<NftSocket> NftSocket::open() {
  auto socket = NetlinkSocket::open(NETLINK_NETFILTER);
  if (!socket) return fail(std::move(socket).error().with_context("nftables"));
  return NftSocket(std::move(*socket));
}

Result<bool> NftSocket::table_exists(const std::string& name) {
  auto comment = table_comment(name);
  if (!comment) return fail(comment.error());
  return comment->has_value();
}

Result<std::optional<std::string>> NftSocket::table_comment(const std::string& name) {
  std::unique_ptr<nftnl_table, TableDeleter> table(nftnl_table_alloc());
  nftnl_table_set_str(table.get(), NFTNL_TABLE_NAME, name.c_str());
  NlMessage message;
  append(message, kSmallMessage, [&](char* buf) {
    nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETTABLE, NFPROTO_IPV4, 0, 0);
    nftnl_table_nlmsg_build_payload(nlh, table.get());
    return nlh;
  });
  std::string comment;
  auto on_reply = [&](const nlmsghdr* nlh) -> Result<void> {
    std::unique_ptr<nftnl_table, TableDeleter> got(nftnl_table_alloc());
    if (nftnl_table_nlmsg_parse(nlh, got.get()) < 0) return ok();
    std::uint32_t len = 0;
    const void* udata = nftnl_table_get_data(got.get(), NFTNL_TABLE_USERDATA, &len);
    if (udata == nullptr) return ok();
    // The user data is a list of type-length-value attributes; nft keeps the comment in one.
    auto on_attr = [](const nftnl_udata* attr, void* out) -> int {
      if (nftnl_udata_type(attr) != NFTNL_UDATA_TABLE_COMMENT) return MNL_CB_OK;
      const char* text = static_cast<const char*>(nftnl_udata_get(attr));
      static_cast<std::string*>(out)->assign(text, ::strnlen(text, nftnl_udata_len(attr)));
      return MNL_CB_OK;
    };
    nftnl_udata_parse(udata, len, on_attr, &comment);
    return ok();
  };
  auto got = socket_.request(std::move(message), on_reply);
  if (got) return std::optional<std::string>(std::move(comment));
  if (got.error().code() == ErrorCode::kNotFound) return std::optional<std::string>();
  return fail(std::move(got).error().with_context("nftables: look up table ip " + name));
}

namespace {
// A GETSET (the set) or GETSETELEM (its elements, a dump) request for netcell's set `name`.
NlMessage set_request(std::uint16_t type, const std::string& name, std::uint32_t seq) {
  std::unique_ptr<nftnl_set, SetDeleter> set(nftnl_set_alloc());
  nftnl_set_set_str(set.get(), NFTNL_SET_TABLE, kTableName);
  nftnl_set_set_str(set.get(), NFTNL_SET_NAME, name.c_str());
  NlMessage message;
  append(message, kSmallMessage, [&](char* buf) {
    nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buf, type, table_family(name), 0, seq);
    if (type == NFT_MSG_GETSET) {
      nftnl_set_nlmsg_build_payload(nlh, set.get());
    } else {
      nftnl_set_elems_nlmsg_build_payload(nlh, set.get());
    }
    return nlh;
  });
  return message;
}
}  // namespace

Result<bool> NftSocket::set_exists(const std::string& name) {
  auto got = socket_.request(set_request(NFT_MSG_GETSET, name, seq_++),
                             [](const nlmsghdr*) -> Result<void> { return ok(); });
  if (got) return true;
  if (got.error().code() == ErrorCode::kNotFound) return false;
  return fail(std::move(got).error().with_context("nftables: look up set " + name));
}

Result<void> NftSocket::apply(ElementOp op, const std::vector<SetElement>& elements) {
  if (elements.empty()) return ok();
  std::uint32_t ack_seq = 0;
  auto batch = build_element_batch(op, elements, seq_, ack_seq);
  seq_ = ack_seq + 2;  // past BATCH_END
  auto sent = socket_.send_batch(batch, ack_seq);
  if (!sent) {
    return fail(std::move(sent).error().with_context(
        op == ElementOp::kAdd ? "nftables: add elements" : "nftables: delete elements"));
  }
  return ok();
}

Result<std::vector<CountedElement>> NftSocket::list_counted(const std::string& name) {
  NlMessage message = set_request(NFT_MSG_GETSETELEM, name, seq_++);
  std::vector<CountedElement> out;
  auto on_message = [&](const nlmsghdr* nlh) -> Result<void> {
    std::unique_ptr<nftnl_set, SetDeleter> got(nftnl_set_alloc());
    if (nftnl_set_elems_nlmsg_parse(nlh, got.get()) < 0) return ok();
    nftnl_set_elems_iter* iter = nftnl_set_elems_iter_create(got.get());
    for (nftnl_set_elem* e = nftnl_set_elems_iter_next(iter); e != nullptr;
         e = nftnl_set_elems_iter_next(iter)) {
      CountedElement c;
      std::uint32_t len = 0;
      auto bytes = [&](std::uint16_t attr) {
        const auto* p = static_cast<const std::uint8_t*>(nftnl_set_elem_get(e, attr, &len));
        return p == nullptr ? std::vector<std::uint8_t>() : std::vector<std::uint8_t>(p, p + len);
      };
      c.key = bytes(NFTNL_SET_ELEM_KEY);
      if (nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_KEY_END))
        c.key_end = bytes(NFTNL_SET_ELEM_KEY_END);
      // The set's counter is the element's expression (one, or a list of them).
      auto take = [](nftnl_expr* expr, void* into) -> int {
        const char* kind = nftnl_expr_get_str(expr, NFTNL_EXPR_NAME);
        if (kind != nullptr && std::strcmp(kind, "counter") == 0) {
          auto* counter = static_cast<PolicyCounter*>(into);
          counter->packets += nftnl_expr_get_u64(expr, NFTNL_EXPR_CTR_PACKETS);
          counter->bytes += nftnl_expr_get_u64(expr, NFTNL_EXPR_CTR_BYTES);
        }
        return 0;
      };
      nftnl_set_elem_expr_foreach(e, take, &c.counter);
      out.push_back(std::move(c));
    }
    nftnl_set_elems_iter_destroy(iter);
    return ok();
  };
  auto listed = socket_.dump(std::move(message), on_message);
  if (!listed) return fail(std::move(listed).error().with_context("nftables: list set " + name));
  return out;
}

Result<void> NftSocket::apply_steps(const std::vector<ElementStep>& steps) {
  std::vector<ElementStep> kept;
  for (const auto& step : steps) {
    if (!step.elements.empty()) kept.push_back(step);
  }
  if (kept.empty()) return ok();
  std::uint32_t ack_seq = 0;
  auto batch = build_element_batch(kept, seq_, ack_seq);
  seq_ = ack_seq + 2;
  auto sent = socket_.send_batch(batch, ack_seq);
  if (!sent) return fail(std::move(sent).error().with_context("nftables: change elements"));
  return ok();
}

Result<void> NftSocket::replace(const std::vector<SetElement>& remove,
                                const std::vector<SetElement>& add) {
  if (remove.empty()) return apply(ElementOp::kAdd, add);
  if (add.empty()) return apply(ElementOp::kDelete, remove);
  auto done = apply_steps({{ElementOp::kDelete, remove}, {ElementOp::kAdd, add}});
  if (!done) return fail(std::move(done).error().with_context("replace"));
  return ok();
}

Result<void> NftSocket::remove_present(const std::vector<SetElement>& elements) {
  auto all = apply(ElementOp::kDelete, elements);
  if (all || all.error().code() != ErrorCode::kNotFound) return all;
  // Some are gone (an interrupted destroy): the batch was refused as a whole, so go one by one.
  for (const auto& e : elements) {
    auto one = apply(ElementOp::kDelete, {e});
    if (!one && one.error().code() != ErrorCode::kNotFound) return one;
  }
  return ok();
}

}  // namespace netcell::kernel
