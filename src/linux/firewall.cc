#include "linux/firewall.h"

#include <dlfcn.h>
#include <linux/netlink.h>
#include <nftables/libnftables.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>

#include "linux/nflog.h"
#include "linux/nft_elements.h"
#include "netcell/host.h"

namespace netcell::kernel {
namespace {

constexpr char kTable[] = "ip netcell";
constexpr char kTableName[] = "netcell";

// libnftables, loaded on first use rather than linked: it brings libxtables, libjansson and libgmp
// with it, which every CLI process would otherwise map and relocate at start, while most
// operations never need them (namespace elements go through libnftnl).
struct NftApi {
  decltype(&nft_ctx_new) ctx_new;
  decltype(&nft_ctx_free) ctx_free;
  decltype(&nft_ctx_buffer_output) buffer_output;
  decltype(&nft_ctx_buffer_error) buffer_error;
  decltype(&nft_ctx_get_output_buffer) output_buffer;
  decltype(&nft_ctx_get_error_buffer) error_buffer;
  decltype(&nft_ctx_output_set_flags) output_set_flags;
  decltype(&nft_run_cmd_from_buffer) run_cmd_from_buffer;
};

constexpr char kLibNftables[] = "libnftables.so.1";

Result<const NftApi*> nft_api() {
  static std::once_flag once;
  static NftApi api{};
  static std::string error;
  std::call_once(once, [] {
    void* lib = ::dlopen(kLibNftables, RTLD_NOW | RTLD_LOCAL);  // never closed
    if (lib == nullptr) {
      error = std::string("cannot load ") + kLibNftables + ": " + ::dlerror();
      return;
    }
    bool complete = true;
    auto bind = [&](auto& fn, const char* symbol) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(::dlsym(lib, symbol));
      if (fn == nullptr) complete = false;
    };
    bind(api.ctx_new, "nft_ctx_new");
    bind(api.ctx_free, "nft_ctx_free");
    bind(api.buffer_output, "nft_ctx_buffer_output");
    bind(api.buffer_error, "nft_ctx_buffer_error");
    bind(api.output_buffer, "nft_ctx_get_output_buffer");
    bind(api.error_buffer, "nft_ctx_get_error_buffer");
    bind(api.output_set_flags, "nft_ctx_output_set_flags");
    bind(api.run_cmd_from_buffer, "nft_run_cmd_from_buffer");
    if (!complete) error = std::string(kLibNftables) + " lacks part of the libnftables 1.0 API";
  });
  if (!error.empty()) return fail(ErrorCode::kUnsupported, "nftables: " + error);
  return &api;
}

std::string quoted(const std::string& ifname) {
  return "\"" + ifname + "\"";
}

std::string network_lines(const char* verb, const NetworkRules& r) {
  std::ostringstream out;
  auto element = [&](const char* set, const std::string& value) {
    out << verb << " element " << kTable << " " << set << " { " << value << " }\n";
  };
  const std::string subnet = r.subnet.to_string();
  element("bridges", quoted(r.bridge));
  element("src_ok_net", quoted(r.bridge) + " . " + subnet);
  element("hairpin", quoted(r.bridge) + " . " + quoted(r.bridge));
  if (r.nat) {
    element("bridges_nat", quoted(r.bridge));
    element("nat_nets", subnet);
  }
  if (r.host_access) element("bridges_host", quoted(r.bridge));
  if (r.subnet6) {
    // Dual stack: the same elements in the ip6 table; NAT66 only for a ULA prefix (fc00::/7), a
    // routable one is routed as it is (as for the private pool).
    auto element6 = [&](const char* set, const std::string& value) {
      out << verb << " element ip6 netcell " << set << " { " << value << " }\n";
    };
    const std::string subnet6 = r.subnet6->to_string();
    element6("bridges6", quoted(r.bridge));
    element6("src_ok_net6", quoted(r.bridge) + " . " + subnet6);
    element6("hairpin6", quoted(r.bridge) + " . " + quoted(r.bridge));
    if (r.nat) {
      element6("bridges_nat6", quoted(r.bridge));
      if ((r.subnet6->address.bytes()[0] & 0xfe) == 0xfc) element6("nat_nets6", subnet6);
    }
    if (r.host_access) element6("bridges_host6", quoted(r.bridge));
  }
  return out.str();
}

// "02:6e:63:00:00:01"
std::string mac_text(const std::array<std::uint8_t, 6>& mac) {
  char text[18];
  std::snprintf(text, sizeof text, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3],
                mac[4], mac[5]);
  return text;
}

std::string first_line(const char* text) {
  std::string s = text == nullptr ? "" : text;
  auto nl = s.find('\n');
  return nl == std::string::npos ? s : s.substr(0, nl);
}

}  // namespace

std::string owner_tag(const std::string& run_dir) {
  static constexpr char kSafe[] = "/._+@,=-";
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string tag = "netcell:";
  for (unsigned char c : run_dir) {
    if (std::isalnum(c) != 0 || std::strchr(kSafe, c) != nullptr) {
      tag += static_cast<char>(c);
    } else {
      tag += '%';
      tag += kHex[c >> 4];
      tag += kHex[c & 0xF];
    }
  }
  constexpr std::size_t kMaxComment = 120;  // nft takes at most 128 bytes
  if (tag.size() <= kMaxComment) return tag;
  std::uint64_t hash = 14695981039346656037ULL;  // FNV-1a
  for (unsigned char c : run_dir) hash = (hash ^ c) * 1099511628211ULL;
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(hash));
  return std::string("netcell:#") + hex;
}

std::string describe_owner(const std::string& tag) {
  constexpr std::string_view kPrefix = "netcell:";
  if (tag.rfind(kPrefix, 0) != 0) return "table comment '" + tag + "'";
  std::string rest = tag.substr(kPrefix.size());
  if (!rest.empty() && rest.front() == '#')
    return "a run dir whose name hashes to " + rest.substr(1);
  std::string dir;
  for (std::size_t i = 0; i < rest.size(); ++i) {
    if (rest[i] == '%' && i + 2 < rest.size() &&
        std::isxdigit(static_cast<unsigned char>(rest[i + 1])) != 0 &&
        std::isxdigit(static_cast<unsigned char>(rest[i + 2])) != 0) {
      dir += static_cast<char>(std::stoi(rest.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      dir += rest[i];
    }
  }
  return "run dir " + dir;
}

namespace nft_script {

// The policy's sharded interval sets of one family (pol_ in ip netcell, pol6_ in ip6 netcell),
// the egress chain's map from the masked source to its shard's chain, and those chains, which
// hold the same rules for their own sets (firewall.h).
struct PolicyShards {
  std::string sets, map, chains;
};

PolicyShards policy_shards(bool v4) {
  const std::string p = v4 ? "pol_" : kPolicy6Prefix;
  const std::string addr = v4 ? "ipv4_addr" : "ipv6_addr";
  const std::string tp = addr + " . " + addr + " . inet_proto . inet_service";
  const std::string ip = addr + " . " + addr;
  const std::string saddr = v4 ? "ip saddr" : "ip6 saddr";
  const std::string pair = saddr + (v4 ? " . ip daddr" : " . ip6 daddr");
  // ICMPv6 by its number: nft resolves the name "ipv6-icmp" through /etc/protocols, which a
  // minimal system (no netbase) does not have ("Could not resolve protocol name").
  const std::string icmp = v4 ? "meta l4proto icmp " : "meta l4proto 58 ";
  const std::string suffix = v4 ? "" : "6";
  PolicyShards out;
  for (unsigned k = 0; k < kPolicyShards; ++k) {
    const std::string n = std::to_string(k);
    auto set = [&](const char* base, const std::string& type, const char* flags) {
      out.sets +=
          "  set " + p + base + "_" + n + " { type " + type + "; flags " + flags + "; counter; }\n";
    };
    set("allow_tp", tp, "interval");
    set("deny_tp", tp, "interval");
    set("allow_ip", ip, "interval");
    set("deny_ip", ip, "interval");
    set("allow_icmp", ip, "interval");
    set("deny_icmp", ip, "interval");
    set("learned_tp", tp, "interval, timeout");
    if (k > 0) out.map += ", ";
    out.map += (v4 ? policy_shard_key(k) : policy_shard_key6(k)) + " : goto " + p + n;
    const std::string rule = " goto refuse_rule" + suffix + "\n";
    out.chains += "  chain " + p + n + " {\n";
    out.chains += "    " + pair + " . meta l4proto . th dport @" + p + "deny_tp_" + n + rule;
    out.chains += "    " + pair + " @" + p + "deny_ip_" + n + rule;
    out.chains += "    " + icmp + pair + " @" + p + "deny_icmp_" + n + rule;
    out.chains +=
        "    " + pair + " . meta l4proto . th dport @" + p + "allow_tp_" + n + " return\n";
    out.chains += "    " + pair + " @" + p + "allow_ip_" + n + " return\n";
    out.chains += "    " + icmp + pair + " @" + p + "allow_icmp_" + n + " return\n";
    out.chains +=
        "    " + pair + " . meta l4proto . th dport @" + p + "learned_tp_" + n + " return\n";
    out.chains += "    " + pair + " @" + p + "learned_ip return\n";
    out.chains += "    " + icmp + pair + " @" + p + "learned_icmp return\n";
    out.chains += "    " + saddr + " @" + p + "open return\n";
    out.chains += "    " + saddr + " @" + p + "default goto refuse" + suffix + "\n";
    out.chains += "    goto refuse" + suffix + "\n  }\n";
  }
  return out;
}

// The rules of the egress chain of one family: namespaces without a policy return; DNS to
// another server than netcell's resolver is refused; the source's shard chain (`map`, the
// PolicyShards' vmap) decides the rest, and what no shard takes is refused. Without `map` (the
// shards are not made yet: no element has needed one) every policy source is refused, as the
// shards' chains end.
std::string egress_rules(bool v4, const std::string& map) {
  const std::string six = v4 ? "" : "6";
  const std::string saddr = v4 ? "ip saddr" : "ip6 saddr";
  std::string out = "    " + saddr + " != @" + (v4 ? "pol_" : kPolicy6Prefix) + "ns return\n" +
                    "    meta l4proto { tcp, udp } th dport 53 goto refuse" + six + "\n";
  if (!map.empty()) {
    out += "    " + saddr + " & " + (v4 ? kPolicyShardMask : kPolicyShardMask6) + " vmap { " + map +
           " }\n";
  }
  return out + "    goto refuse" + six + "\n";
}

// The refusing chains of one family (refuse, refuse_rule, reject_now; "6" appended for IPv6) and
// the egress chain, without the shards (policy_shards_script adds them).
std::string policy_chains(bool v4, const std::string& group, const std::string& log_limit) {
  const std::string six = v4 ? "" : "6";
  const std::string saddr = v4 ? "ip saddr" : "ip6 saddr";
  const std::string reject = " goto reject_now" + six + "\n";
  const std::string limited = "    add @log_rate" + six + " { " + saddr + " limit rate over " +
                              log_limit + " } counter name \"log_suppressed\"" + reject;
  auto logged = [&](const char* prefix) {
    return std::string("log prefix \"") + prefix + "\" group " + group + reject;
  };
  return "  chain refuse" + six + " {\n" + limited + "    meta l4proto { tcp, udp } th dport 53 " +
         logged(kLogPrefixDns) + "    " + logged(kLogPrefixDefault) + "  }\n  chain refuse_rule" +
         six + " {\n" + limited + "    " + logged(kLogPrefixRule) + "  }\n  chain reject_now" +
         six + " {\n    meta l4proto tcp reject with tcp reset\n    reject with " +
         (v4 ? "icmp" : "icmpv6") + " type admin-prohibited\n  }\n  chain egress" + six + " {\n" +
         egress_rules(v4, "") + "  }\n";
}

// The IPv6 table (firewall.h): the same guarantees as the ip table's for private namespaces, the
// only ones with IPv6, and the same egress policy (pol6_ sets and chains, jumped to from forward
// and input as in the ip table). Every other netcell link ("nc*": bridges, bridge ports, the host
// end of an IPv4-only namespace) has IPv6 off; whatever IPv6 comes from one anyway is dropped.
// Published ports: the pf6_* maps as the ip table's pf_* ones, but never for ::1: IPv6 has no
// route_localnet, and a DNAT of [::1]:PORT to a namespace, masquerade included, matches (both
// rules count the packet) but the connection never completes. The host service relays [::1]
// publishes instead (service/loopback_relay.h), and dnat_out6 leaves ::1 to it.
std::string ipv6_table(const std::string& group, const std::string& log_limit) {
  const char* dnat6 = R"(    fib daddr type local dnat ip6 to ip6 daddr . tcp dport map @pf6_tcp_ip
    fib daddr type local dnat ip6 to ip6 daddr . udp dport map @pf6_udp_ip
    fib daddr type local dnat ip6 to tcp dport map @pf6_tcp
    fib daddr type local dnat ip6 to udp dport map @pf6_udp
)";
  return R"(table ip6 netcell {
  set ns_ifs6 { type ifname; }
  set src_ok6 { type ifname . ipv6_addr; }
  set nat_src6 { type ipv6_addr; }
  set hairpin6 { type ifname . ifname; }
  set bridges6 { type ifname; }
  set bridges_nat6 { type ifname; }
  set bridges_host6 { type ifname; }
  set src_ok_net6 { type ifname . ipv6_addr; flags interval; }
  set nat_nets6 { type ipv6_addr; flags interval; }
  map pf6_tcp { type inet_service : ipv6_addr . inet_service; }
  map pf6_udp { type inet_service : ipv6_addr . inet_service; }
  map pf6_tcp_ip { type ipv6_addr . inet_service : ipv6_addr . inet_service; }
  map pf6_udp_ip { type ipv6_addr . inet_service : ipv6_addr . inet_service; }
  set pol6_ns { type ipv6_addr; }
  set pol6_open { type ipv6_addr; counter; }
  set pol6_default { type ipv6_addr; counter; }
  set pol6_learned_ip { type ipv6_addr . ipv6_addr; flags timeout; counter; }
  set pol6_learned_icmp { type ipv6_addr . ipv6_addr; flags timeout; counter; }
  set log_rate6 { type ipv6_addr; size 65536; flags dynamic; }
  counter log_suppressed { }
  chain guard6 {
    type filter hook prerouting priority raw; policy accept;
    iifname "nc*" iifname != @ns_ifs6 iifname != @bridges6 drop
    iifname @ns_ifs6 iifname . ip6 saddr != @src_ok6 drop
    iifname @bridges6 iifname . ip6 saddr != @src_ok_net6 drop
    iifname @ns_ifs6 ip6 daddr ::1 drop
    iifname @bridges6 ip6 daddr ::1 drop
  }
)" + std::string(R"(  chain dnat_pre6 {
    type nat hook prerouting priority dstnat; policy accept;
)") + dnat6 +
         R"(  }
  chain dnat_out6 {
    type nat hook output priority -100; policy accept;
    ip6 daddr ::1 return
)" + dnat6 +
         R"(  }
  chain snat_post6 {
    type nat hook postrouting priority srcnat; policy accept;
    ct status dnat iifname . oifname @hairpin6 masquerade
    oifname != "nc*" ip6 saddr @nat_src6 masquerade
    oifname != "nc*" ip6 saddr @nat_nets6 masquerade
  }
)" + policy_chains(/*v4=*/false, group, log_limit) +
         R"(  chain forward_filter6 {
    type filter hook forward priority filter; policy accept;
    ct state established,related accept
    iifname . oifname @hairpin6 icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept
    jump egress6
    ct status dnat oifname @ns_ifs6 accept
    ct status dnat oifname @bridges6 accept
    iifname . oifname @hairpin6 accept
    iifname @bridges6 iifname != @bridges_nat6 drop
    oifname "nc*" drop
  }
  chain input_filter6 {
    type filter hook input priority filter; policy accept;
    ct state established,related accept
    iifname @ns_ifs6 icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept
    iifname @bridges6 icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept
    jump egress6
    iifname @ns_ifs6 icmpv6 type echo-request accept
    iifname @ns_ifs6 drop
    iifname @bridges_host6 accept
    iifname @bridges6 icmpv6 type echo-request accept
    iifname @bridges6 drop
  }
  chain output_filter6 {
    type filter hook output priority filter; policy accept;
    oifname "nc*" icmpv6 type { nd-router-advert, nd-redirect } drop
  }
}
)";
}

std::string create_table(const std::string& owner, bool ipv6) {
  // Chain names avoid nft keywords (notes §3.3); the output hook needs a numeric priority.
  // route_localnet (needed to publish on the host's 127.0.0.1) also lets a namespace route
  // packets to 127.0.0.0/8 through its gateway; the guard drops them before DNAT and input, or
  // they would reach services bound to the host's loopback (CVE-2020-8558).
  // A private namespace's host end ("ncp" and its block) that is not in ns_ifs belongs to no live
  // namespace (one being made, or a veth destroy could not delete): whatever comes from it is
  // dropped before it is routed or delivered.
  // Every refused packet goes to the instance's NFLOG group (nflog.h) before it is rejected,
  // prefixed by what refused it (refuse_rule: a deny rule; refuse: the default, or DNS to another
  // server than netcell's resolver), at most kFlowLogRate a second per source after a burst (the
  // guard makes the source the namespace's own): a port scan silences its own log only. What the
  // limit holds back is counted in log_suppressed. The reject never depends on the log. The
  // limit's elements do not time out (a listing of the ruleset stays the same while nothing is
  // refused); the set holds more addresses than the pools give out.
  const std::string group = std::to_string(log_group(owner));
  // The policy's sharded sets and their chains are not part of it: policy_shards_script adds
  // them when the first element that goes into one finds none.
  const std::string log_limit =
      std::to_string(kFlowLogRate) + "/second burst " + std::to_string(kFlowLogBurst) + " packets";
  // The bridge table (firewall.h): stale ports, then a live port's own address only, then frames
  // of namespaces with a policy to the host. -300 runs before br_netfilter's hook (0), so the IP
  // hooks it may run see frames that are already on their way to the host.
  return "create table ip netcell { comment \"" + owner + " " + kTableLayout + "\"; }\n" +
         R"(table bridge netcell {
  set bridge_ports { type ifname; }
  set port_src { type ifname . ipv4_addr; }
  set port_src6 { type ifname . ipv6_addr; }
  set port_nd6 { typeof iifname . @th,64,128; }
  set pol_routed { type ipv4_addr; }
  set pol_routed6 { type ipv6_addr; }
  chain guard {
    type filter hook prerouting priority -300; policy accept;
    iifname "nc*" iifname != @bridge_ports drop
    iifname @bridge_ports jump port_in
  }
  chain port_in {
    ether type != { ip, arp, ip6 } drop
    iifname . ip saddr != @port_src drop
    iifname . arp saddr ip != @port_src drop
    iifname . ip6 saddr != @port_src6 drop
    icmpv6 type { nd-router-solicit, nd-router-advert, nd-redirect } drop
    icmpv6 type nd-neighbor-advert iifname . @th,64,128 != @port_nd6 drop
    icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept
    ip saddr @pol_routed goto to_host
    ip daddr @pol_routed goto to_host
    ip6 saddr @pol_routed6 goto to_host
    ip6 daddr @pol_routed6 goto to_host
  }
  chain to_host {
    ether daddr set )" +
         mac_text(kHostMac) + R"( meta pkttype set host
  }
  chain forward_filter {
    type filter hook forward priority filter; policy accept;
    iifname @bridge_ports ip saddr @pol_routed drop
    iifname @bridge_ports ip daddr @pol_routed drop
    icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept
    iifname @bridge_ports ip6 saddr @pol_routed6 drop
    iifname @bridge_ports ip6 daddr @pol_routed6 drop
  }
}
table ip netcell {
  set ns_ifs { type ifname; }
  set src_ok { type ifname . ipv4_addr; }
  set src_ok_net { type ifname . ipv4_addr; flags interval; }
  set nat_src { type ipv4_addr; }
  set nat_nets { type ipv4_addr; flags interval; }
  set hairpin { type ifname . ifname; }
  set bridges { type ifname; }
  set bridges_host { type ifname; }
  set bridges_nat { type ifname; }
  set pol_ns { type ipv4_addr; }
  set pol_open { type ipv4_addr; counter; }
  set pol_default { type ipv4_addr; counter; }
  set pol_learned_ip { type ipv4_addr . ipv4_addr; flags timeout; counter; }
  set pol_learned_icmp { type ipv4_addr . ipv4_addr; flags timeout; counter; }
  map resolver_port { type inet_service : inet_service; }
  set resolver_ports { type inet_service; }
  map pf_tcp { type inet_service : ipv4_addr . inet_service; }
  map pf_udp { type inet_service : ipv4_addr . inet_service; }
  map pf_tcp_ip { type ipv4_addr . inet_service : ipv4_addr . inet_service; }
  map pf_udp_ip { type ipv4_addr . inet_service : ipv4_addr . inet_service; }
  set log_rate { type ipv4_addr; size 65536; flags dynamic; }
  set dns_rate { type ipv4_addr; size 65536; flags dynamic; }
  counter log_suppressed { }
  chain guard {
    type filter hook prerouting priority raw; policy accept;
    iifname "ncp*" iifname != @ns_ifs drop
    iifname @ns_ifs iifname . ip saddr != @src_ok drop
    iifname @bridges iifname . ip saddr != @src_ok_net drop
    iifname @ns_ifs ip daddr 127.0.0.0/8 drop
    iifname @bridges ip daddr 127.0.0.0/8 drop
  }
  chain dnat_pre {
    type nat hook prerouting priority dstnat; policy accept;
    iifname @ns_ifs meta l4proto { tcp, udp } ip saddr @pol_ns fib daddr type local redirect to : th dport map @resolver_port
    iifname @bridges meta l4proto { tcp, udp } ip saddr @pol_ns fib daddr type local redirect to : th dport map @resolver_port
    fib daddr type local dnat ip to ip daddr . tcp dport map @pf_tcp_ip
    fib daddr type local dnat ip to ip daddr . udp dport map @pf_udp_ip
    fib daddr type local dnat ip to tcp dport map @pf_tcp
    fib daddr type local dnat ip to udp dport map @pf_udp
  }
  chain dnat_out {
    type nat hook output priority -100; policy accept;
    fib daddr type local dnat ip to ip daddr . tcp dport map @pf_tcp_ip
    fib daddr type local dnat ip to ip daddr . udp dport map @pf_udp_ip
    fib daddr type local dnat ip to tcp dport map @pf_tcp
    fib daddr type local dnat ip to udp dport map @pf_udp
  }
  chain snat_post {
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr 127.0.0.0/8 ct status dnat masquerade
    ct status dnat iifname . oifname @hairpin masquerade
    oifname != @ns_ifs oifname != @bridges ip saddr @nat_src masquerade
    oifname != @ns_ifs oifname != @bridges ip saddr @nat_nets masquerade
  }
)" + policy_chains(/*v4=*/true, group, log_limit) +
         R"(
  chain forward_filter {
    type filter hook forward priority filter; policy accept;
    ct state established,related accept
    jump egress
    ct status dnat accept
    iifname . oifname @hairpin accept
    iifname @ns_ifs oifname @ns_ifs drop
    iifname @ns_ifs oifname @bridges drop
    iifname @bridges oifname @ns_ifs drop
    iifname @bridges oifname @bridges drop
    iifname @bridges iifname != @bridges_nat drop
    oifname @ns_ifs drop
    oifname @bridges drop
  }
  chain input_filter {
    type filter hook input priority filter; policy accept;
    meta l4proto udp th dport @resolver_ports ip saddr @pol_ns add @dns_rate { ip saddr limit rate over 2000/second burst 200 packets } drop
    ct state established,related accept
    iifname @ns_ifs ct status dnat meta l4proto { tcp, udp } th dport @resolver_ports ip saddr @pol_ns accept
    iifname @bridges ct status dnat meta l4proto { tcp, udp } th dport @resolver_ports ip saddr @pol_ns accept
    jump egress
    iifname @ns_ifs icmp type echo-request accept
    iifname @ns_ifs drop
    iifname @bridges_host accept
    iifname @bridges icmp type echo-request accept
    iifname @bridges drop
  }
}
)" + (ipv6 ? ipv6_table(group, log_limit) : std::string());
}

// The policy sets that hold intervals, sharded by the source address (kPolicyShards sets of each
// kind, nft_elements.h policy_shard), and their chains, for one family, with the egress chain's
// map to them: the kernel copies an interval set's whole lookup table in every transaction that
// changes it, so one set for all namespaces made each create pay for every policy already
// loaded. The egress chain picks the shard's chain with one lookup of the address's shard bits;
// the chain holds the same rules for its own sets. Made when the first element that goes into one
// finds none (Firewall::add_policy_shards), not with the table: they are most of it (448 sets and
// 64 chains a family), and making them took about 25 ms of a first create's 33 ms per family.
// Running it again changes nothing (the chains are flushed before their rules go in).
std::string policy_shards_script(bool v4) {
  const PolicyShards shards = policy_shards(v4);
  const std::string family = v4 ? "ip" : "ip6";
  std::string out = "table " + family + " netcell {\n" + shards.sets + "}\n";
  for (unsigned k = 0; k < kPolicyShards; ++k) {
    const std::string chain =
        (v4 ? std::string("pol_") : std::string(kPolicy6Prefix)) + std::to_string(k);
    out += "add chain " + family + " netcell " + chain + "\nflush chain " + family + " netcell " +
           chain + "\n";
  }
  const std::string egress = v4 ? "egress" : "egress6";
  return out + "table " + family + " netcell {\n" + shards.chains + "}\nflush chain " + family +
         " netcell " + egress + "\ntable " + family + " netcell {\n  chain " + egress + " {\n" +
         egress_rules(v4, shards.map) + "  }\n}\n";
}

std::string delete_table(bool ipv6) {
  // "add" first: a table made by a netcell before the bridge one (or the ip6 one) existed has
  // none to delete.
  return std::string("delete table ip netcell\nadd table bridge netcell\ndelete table bridge ") +
         "netcell\n" + (ipv6 ? "add table ip6 netcell\ndelete table ip6 netcell\n" : "");
}
std::string add_network(const NetworkRules& rules) {
  return network_lines("add", rules);
}
std::string delete_network(const NetworkRules& rules) {
  return network_lines("delete", rules);
}

}  // namespace nft_script

void Firewall::CtxDeleter::operator()(nft_ctx* ctx) const {
  if (auto api = nft_api()) (*api)->ctx_free(ctx);  // a context exists only if the API loaded
}

Result<std::string> probe_libnftables() {
  auto api = nft_api();
  if (!api) return fail(api.error());
  nft_ctx* ctx = (*api)->ctx_new(NFT_CTX_DEFAULT);
  if (ctx == nullptr) return fail(ErrorCode::kSystem, "nftables: nft_ctx_new failed");
  (*api)->ctx_free(ctx);
  return std::string(kLibNftables) + " loaded, context created";
}

Result<void> probe_firewall() {
  auto nft = probe_libnftables();
  if (!nft) return fail(ErrorCode::kUnsupported, nft.error().message());
  auto socket = NftSocket::open();
  if (!socket) return fail(ErrorCode::kUnsupported, "nf_tables: " + socket.error().message());
  auto listed = socket->table_exists(kTableName);
  if (!listed) return fail(ErrorCode::kUnsupported, "nf_tables: " + listed.error().message());
  return ok();
}

Firewall::Firewall(std::unique_ptr<NftSocket> socket, std::string owner, bool ipv6)
    : socket_(std::move(socket)), owner_(std::move(owner)), ipv6_(ipv6) {}
Firewall::Firewall(Firewall&&) noexcept = default;
Firewall& Firewall::operator=(Firewall&&) noexcept = default;
Firewall::~Firewall() = default;

Result<Firewall> Firewall::open(std::string owner, bool ipv6) {
  auto socket = NftSocket::open();
  if (!socket) return fail(socket.error());
  return Firewall(std::make_unique<NftSocket>(std::move(*socket)), std::move(owner), ipv6);
}

namespace {

// libnftables raises its netlink socket's send buffer for a large batch with SO_SNDBUFFORCE only,
// which needs CAP_NET_ADMIN in the initial user namespace: in a user-owned namespace (rootless)
// the table's batch then fails with EMSGSIZE. SO_SNDBUF, which anyone may raise up to
// net.core.wmem_max, is set here on the context's netfilter sockets instead.
void raise_nft_send_buffers() {
  constexpr int kWanted = 4 << 20;
  std::error_code ec;
  for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end;
       it.increment(ec)) {
    int fd = -1;
    const std::string name = it->path().filename().string();
    if (std::from_chars(name.data(), name.data() + name.size(), fd).ec != std::errc()) continue;
    int domain = 0, protocol = 0, size = 0;
    socklen_t len = sizeof domain;
    if (::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0 || domain != AF_NETLINK) {
      continue;
    }
    len = sizeof protocol;
    if (::getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &protocol, &len) != 0 ||
        protocol != NETLINK_NETFILTER) {
      continue;
    }
    len = sizeof size;
    if (::getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, &len) == 0 && size < kWanted) {
      ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &kWanted, sizeof kWanted);
    }
  }
}

}  // namespace

Result<nft_ctx*> Firewall::context() {
  if (!ctx_) {
    auto api = nft_api();
    if (!api) return fail(api.error());
    ctx_.reset((*api)->ctx_new(NFT_CTX_DEFAULT));
    if (!ctx_) return fail(ErrorCode::kSystem, "nftables: cannot create a context");
    raise_nft_send_buffers();
    (*api)->buffer_output(ctx_.get());
    (*api)->buffer_error(ctx_.get());
  }
  return ctx_.get();
}

Result<void> Firewall::apply(const std::string& script) {
  if (script.empty()) return ok();
  auto ctx = context();
  if (!ctx) return fail(ctx.error());
  const NftApi& nft = **nft_api();  // loaded: the context exists
  if (nft.run_cmd_from_buffer(*ctx, script.c_str()) != 0) {
    std::string why = first_line(nft.error_buffer(*ctx));
    if (why.rfind("Error: ", 0) == 0) why = why.substr(7);
    ErrorCode code = why.find("No such file") != std::string::npos  ? ErrorCode::kNotFound
                     : why.find("File exists") != std::string::npos ? ErrorCode::kAlreadyExists
                     : why.find("Operation not permitted") != std::string::npos
                         ? ErrorCode::kPermissionDenied
                         : ErrorCode::kSystem;
    return fail(code, "nftables: " + why);
  }
  return ok();
}

Result<void> Firewall::apply_each(const std::string& script) {
  std::istringstream lines(script);
  std::string line;
  std::optional<Error> first;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    auto r = apply(line + "\n");
    if (!r && r.error().code() != ErrorCode::kNotFound && !first) first = r.error();
  }
  if (first) return fail(*first);
  return ok();
}

Result<void> Firewall::add_namespace(const NamespaceRules& rules) {
  auto elements = namespace_elements(rules);
  if (!elements) return fail(elements.error());
  auto added = socket_->apply(ElementOp::kAdd, *elements);
  // The first namespace whose policy has elements in a shard set finds none: they come now, and
  // its elements after them. Tried first, so that no other create pays for a check.
  if (added || added.error().code() != ErrorCode::kNotFound || !rules.egress) return added;
  NETCELL_TRY(add_policy_shards(rules.address6.has_value()));
  return socket_->apply(ElementOp::kAdd, *elements);
}

Result<void> Firewall::add_policy_shards(bool with_ipv6) {
  for (bool v4 : {true, false}) {
    if (!v4 && !(with_ipv6 && ipv6_)) continue;
    const std::string prefix = v4 ? std::string("pol_") : std::string(kPolicy6Prefix);
    auto present = socket_->set_exists(prefix + "allow_tp_0");
    if (!present) return fail(present.error());
    if (*present) continue;
    // The shards' script would make the table too if it were gone (deleted under this process):
    // a table without the rest of its sets and chains, or its owner. Not here: the element that
    // looked for a shard fails as it would have.
    auto table = socket_->set_exists(prefix + "ns");
    if (!table) return fail(table.error());
    if (!*table) {
      table_ready_ = false;  // the next ensure_table makes it anew
      return fail(ErrorCode::kNotFound, std::string("netcell's firewall (nftables table ") +
                                            (v4 ? "ip" : "ip6") +
                                            " netcell) is gone: run the command again");
    }
    NETCELL_TRY(apply(nft_script::policy_shards_script(v4)));
  }
  return ok();
}

Result<void> Firewall::remove_namespace(const NamespaceRules& rules) {
  auto elements = namespace_elements(rules);
  if (!elements) return fail(elements.error());
  // The rate limits' buckets go in the same transaction: added first (a no-op where the kernel
  // made them), so deleting them cannot fail for their absence.
  const auto rates = rate_elements(rules);
  std::vector<SetElement> remove = *elements;
  remove.insert(remove.end(), rates.begin(), rates.end());
  if (socket_->apply_steps({{ElementOp::kAdd, rates}, {ElementOp::kDelete, remove}})) return ok();
  // Some of the namespace's elements are gone already (an interrupted destroy), or a rate set is
  // full: what is there goes, one by one if need be; the buckets where they can.
  NETCELL_TRY(socket_->remove_present(*elements));
  for (const auto& r : rates)
    (void)socket_->apply_steps({{ElementOp::kAdd, {r}}, {ElementOp::kDelete, {r}}});
  return ok();
}

Result<void> Firewall::verify_namespace(const NamespaceRules& rules) {
  auto elements = namespace_elements(rules);
  if (!elements) return fail(elements.error());
  std::map<std::string, std::vector<CountedElement>> listed;
  for (const auto& e : *elements) {
    auto in = listed.find(e.set);
    if (in == listed.end()) {
      auto got = socket_->list_counted(e.set);
      if (!got) return fail(got.error());
      in = listed.emplace(e.set, std::move(*got)).first;
    }
    const bool present = std::any_of(in->second.begin(), in->second.end(), [&](const auto& c) {
      return c.key == e.key && (e.key_end.empty() || c.key_end == e.key_end);
    });
    if (!present) {
      return fail(ErrorCode::kNotFound, "an element of firewall set " + e.set + " is missing");
    }
  }
  return ok();
}

Result<std::optional<std::string>> Firewall::table_owner() {
  auto comment = socket_->table_comment(kTableName);
  if (!comment || !*comment) return comment;
  // "OWNER LAYOUT" (create_table); an owner tag has no space (owner_tag escapes it). A table of
  // layout v1 has the owner alone.
  const auto space = (*comment)->rfind(' ');
  table_layout_ = space == std::string::npos ? "v1" : (*comment)->substr(space + 1);
  if (space != std::string::npos) (*comment)->resize(space);
  return comment;
}

Result<void> Firewall::check_owner() {
  if (table_ready_) return ok();
  auto owner = table_owner();
  if (!owner) return fail(owner.error());
  if (!*owner) return ok();  // no table yet
  if (!(*owner)->empty() && **owner != owner_) {
    return fail(ErrorCode::kConflict,
                "this host's netcell firewall (nftables table ip netcell) belongs to the netcell "
                "instance with " +
                    describe_owner(**owner) +
                    "; one network namespace holds the private and bridged namespaces of one "
                    "instance: use that --run-dir, or run this one in a network namespace of its "
                    "own");
  }
  table_ready_ = true;
  return ok();
}

Result<void> Firewall::change_policy(const PolicySource& source, bool bridged,
                                     const std::optional<EgressPolicy>& from,
                                     const std::optional<EgressPolicy>& to) {
  std::vector<SetElement> old_elements, new_elements;
  if (from) NETCELL_TRY(policy_elements(source, *from, old_elements));
  if (to) NETCELL_TRY(policy_elements(source, *to, new_elements));
  for (const auto* address : {&source.v4, source.v6 ? &*source.v6 : nullptr}) {
    if (address == nullptr || !bridged) continue;
    if (from) old_elements.push_back(routed_element(*address));
    if (to) new_elements.push_back(routed_element(*address));
  }
  auto replaced = socket_->replace(old_elements, new_elements);
  if (replaced || replaced.error().code() != ErrorCode::kNotFound) return replaced;
  // A shard set the new elements go into is not made yet (as in add_namespace: tried first, so
  // that no other change pays for a check), or some of the old elements are gone. Still one
  // transaction once the shards are there.
  if (to) {
    NETCELL_TRY(add_policy_shards(source.v6.has_value()));
    replaced = socket_->replace(old_elements, new_elements);
    if (replaced || replaced.error().code() != ErrorCode::kNotFound) return replaced;
  }
  NETCELL_TRY(socket_->remove_present(old_elements));
  return socket_->apply(ElementOp::kAdd, new_elements);
}

namespace {
std::int64_t unix_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}
}  // namespace

Result<void> Firewall::change_learned(const PolicySource& source,
                                      const std::vector<LearnedDestination>& remove,
                                      const std::vector<LearnedDestination>& add) {
  const std::int64_t now = unix_ms_now();
  // A delete and an add of the same key in one transaction re-arms the element's timeout.
  const auto old_elements = learned_elements(source, remove, now);
  const auto new_elements = learned_elements(source, add, now);
  if (old_elements.empty() && new_elements.empty()) return ok();
  auto replaced = socket_->replace(old_elements, new_elements);
  if (replaced || replaced.error().code() != ErrorCode::kNotFound) return replaced;
  // Some of the old ones expired in the kernel already, or (the namespace's first destination
  // of a rule with ports) there is no shard set yet.
  NETCELL_TRY(socket_->remove_present(old_elements));
  if (new_elements.empty()) return ok();
  auto added = socket_->apply(ElementOp::kAdd, new_elements);
  if (added || added.error().code() != ErrorCode::kNotFound) return added;
  NETCELL_TRY(add_policy_shards(source.v6.has_value()));
  return socket_->apply(ElementOp::kAdd, new_elements);
}

Result<std::vector<PolicyCounter>> Firewall::learned_counters(
    const PolicySource& source, const std::vector<LearnedDestination>& destinations) {
  return element_counters(learned_elements(source, destinations, unix_ms_now()));
}

Result<std::vector<PolicyCounter>> Firewall::element_counters(
    const std::vector<SetElement>& elements) {
  // Each set is listed once; zero for an element not there.
  std::vector<PolicyCounter> out(elements.size());
  std::map<std::string, std::vector<CountedElement>> listed;
  for (std::size_t i = 0; i < elements.size(); ++i) {
    const SetElement& e = elements[i];
    auto it = listed.find(e.set);
    if (it == listed.end()) {
      auto got = socket_->list_counted(e.set);
      if (!got) return fail(got.error());
      it = listed.emplace(e.set, std::move(*got)).first;
    }
    // The kernel lists a plain set's element without an end.
    const auto& end = e.key_end.empty() ? e.key : e.key_end;
    for (const auto& c : it->second) {
      if (c.key == e.key && (c.key_end.empty() ? c.key : c.key_end) == end) out[i] = c.counter;
    }
  }
  return out;
}

Result<void> Firewall::set_resolver_port(std::optional<std::uint16_t> previous,
                                         std::optional<std::uint16_t> port) {
  std::vector<SetElement> old_elements, new_elements;
  if (previous) old_elements = resolver_port_elements(*previous);
  if (port) new_elements = resolver_port_elements(*port);
  if (old_elements == new_elements) return ok();
  // A service may start before any namespace made the table (one systemd starts at boot), and
  // outlive one a process removed with the last namespace: asked again (a rare change).
  if (port) {
    forget_table();
    NETCELL_TRY(ensure_table());
  }
  auto replaced = socket_->replace(old_elements, new_elements);
  if (replaced || replaced.error().code() != ErrorCode::kNotFound) return replaced;
  // The table does not hold what the record says (a service killed while it changed them): the
  // map's one key goes whatever it maps to (a delete needs only the key), then the new ones come.
  old_elements = resolver_port_elements(previous.value_or(0));
  old_elements.front().data.clear();
  if (!previous) old_elements.pop_back();
  NETCELL_TRY(socket_->remove_present(old_elements));
  if (new_elements.empty()) return ok();
  return socket_->apply(ElementOp::kAdd, new_elements);
}

Result<EgressCounters> Firewall::policy_counters(const PolicySource& source,
                                                 const EgressPolicy& policy) {
  std::vector<SetElement> elements;
  std::vector<int> rule_of;
  NETCELL_TRY(policy_elements(source, policy, elements, &rule_of));
  auto counted = element_counters(elements);
  if (!counted) return fail(counted.error());
  EgressCounters out;
  out.rules.resize(policy.rules.size());
  for (std::size_t i = 0; i < elements.size(); ++i) {
    if (rule_of[i] == kNoRule) continue;
    PolicyCounter& into = rule_of[i] == kDefaultElement ? out.by_default : out.rules[rule_of[i]];
    into.packets += (*counted)[i].packets;
    into.bytes += (*counted)[i].bytes;
  }
  return out;
}

Result<void> Firewall::ensure_table() {
  NETCELL_TRY(check_owner());
  if (table_ready_ && table_layout_ != kTableLayout) {
    // Its sets and chains are not the ones this netcell writes elements into: nothing new goes
    // in (an element would fail, or land where no rule reads it). A table no namespace or
    // network uses any more (its elements say so) is replaced in one transaction; one in use
    // goes with the last of its namespaces (release_shared_state), and the next create makes
    // the table anew.
    bool in_use = false;
    for (const char* set : {"ns_ifs", "bridges"}) {
      auto listed = socket_->list_counted(set);
      if (!listed && listed.error().code() != ErrorCode::kNotFound) return fail(listed.error());
      in_use = in_use || (listed && !listed->empty());
    }
    if (!in_use) {
      NETCELL_TRY(apply(nft_script::delete_table(ipv6_) + nft_script::create_table(owner_, ipv6_)));
      table_layout_ = kTableLayout;
      return ok();
    }
    return fail(ErrorCode::kConflict,
                "this host's netcell firewall (nftables table ip netcell) was made by another "
                "version of netcell (table layout " +
                    table_layout_ + ", this one uses " + kTableLayout +
                    ") and its namespaces still exist: destroy them (netcell destroy NAME...), "
                    "then create again");
  }
  if (table_ready_) return ok();
  auto made = apply(nft_script::create_table(owner_, ipv6_));
  // Another process made it between the check and the create: whose is it?
  if (!made && made.error().code() == ErrorCode::kAlreadyExists) return check_owner();
  if (!made) return made;
  table_ready_ = true;
  return ok();
}

Result<void> Firewall::remove_table() {
  table_ready_ = false;
  auto owner = table_owner();
  if (!owner) return fail(owner.error());
  if (!*owner || (!(*owner)->empty() && **owner != owner_)) return ok();
  return apply(nft_script::delete_table(ipv6_));
}

Result<std::string> Firewall::list_json() {
  auto exists = socket_->table_exists(kTableName);
  if (!exists) return fail(exists.error());
  if (!*exists) return std::string();
  auto ctx = context();
  if (!ctx) return fail(ctx.error());
  const NftApi& nft = **nft_api();
  nft.output_set_flags(*ctx, NFT_CTX_OUTPUT_JSON);
  int rc = nft.run_cmd_from_buffer(*ctx, "list table ip netcell\n");
  nft.output_set_flags(*ctx, 0);
  if (rc != 0) {
    return fail(ErrorCode::kSystem, "nftables: " + first_line(nft.error_buffer(*ctx)));
  }
  return std::string(nft.output_buffer(*ctx));
}

}  // namespace netcell::kernel

namespace netcell {

Result<std::string> probe_firewall_library() {
  return kernel::probe_libnftables();
}

}  // namespace netcell
