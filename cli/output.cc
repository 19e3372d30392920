#include <algorithm>
#include <cstdio>
#include <ctime>
#include <string>

#include "cli.h"

namespace netcell::cli {
namespace {

std::string join(const std::vector<std::string>& parts, const char* sep) {
  std::string out;
  for (const auto& p : parts) {
    if (!out.empty()) out += sep;
    out += p;
  }
  return out;
}

std::string format_time(std::int64_t unix_ms) {
  std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// The OWNER column: the owner pid, or the container of a CNI attachment.
std::string owner(const NamespaceInfo& info) {
  if (info.owner_pid > 0) return std::to_string(info.owner_pid);
  if (!info.cni.empty()) return "cni:" + info.cni.container_id.substr(0, 12);
  return "-";
}

}  // namespace

void print_info(const NamespaceInfo& info, const std::optional<RelayState>& relay) {
  std::printf("name:       %s\n", info.name.c_str());
  std::printf("mode:       %s\n", std::string(to_string(info.mode)).c_str());
  std::printf("backend:    %s (isolation %s)\n", std::string(to_string(info.backend)).c_str(),
              info.enforced ? "enforced" : "NOT enforced");
  std::printf("owner pid:  %s\n",
              info.owner_pid > 0 ? std::to_string(info.owner_pid).c_str() : "-");
  if (!info.network.empty()) std::printf("network:    %s\n", info.network.c_str());
  if (!info.topology.empty()) std::printf("topology:   %s\n", info.topology.name.c_str());
  const char* netns = info.netns_path.c_str();
  if (info.backend == BackendKind::kSimulation) {
    netns = "(simulated: no network namespace exists)";
  } else if (info.netns_path.empty()) {
    netns = "(the host's)";
  }
  if (info.adopted_from_pid > 0) {
    std::printf("netns:      %s (adopted from pid %d)\n", netns, info.adopted_from_pid);
  } else if (!info.adopted_netns_path.empty()) {
    std::printf("netns:      %s (adopted)\n", info.adopted_netns_path.c_str());
  } else {
    std::printf("netns:      %s\n", netns);
  }
  if (!info.host_interface.empty()) {
    std::printf("host side:  %s\n", info.host_interface.c_str());
  }
  if (!info.cni.empty()) {
    std::printf("cni:        network %s, container %s, interface %s\n", info.cni.network.c_str(),
                info.cni.container_id.c_str(), info.cni.ifname.c_str());
  }
  for (const auto& iface : info.interfaces) {
    std::vector<std::string> addrs;
    for (const auto& a : iface.addresses) addrs.push_back(a.to_string());
    std::printf("interface:  %s mtu %u %s\n", iface.name.c_str(), iface.mtu,
                join(addrs, " ").c_str());
  }
  if (info.gateway) std::printf("gateway:    %s\n", info.gateway->to_string().c_str());
  if (info.gateway6) std::printf("gateway6:   %s\n", info.gateway6->to_string().c_str());
  if (!info.ipv4_only.empty()) std::printf("ipv6:       none (%s)\n", info.ipv4_only.c_str());
  if (!info.dns.empty()) {
    std::vector<std::string> dns;
    for (const auto& d : info.dns) dns.push_back(d.to_string());
    std::printf("dns:        %s\n", join(dns, " ").c_str());
  }
  for (const auto& f : info.port_forwards) std::printf("publish:    %s\n", f.to_string().c_str());
  if (relay) {
    // [::1] publishes are the host service's sockets, not the kernel's DNAT.
    std::vector<std::string> routes;
    for (const auto& r : loopback_routes(info)) routes.push_back(to_string(r));
    std::string state = to_string(relay->kind);
    if (!relay->error.empty()) state += ": " + relay->error;
    std::printf("relay:      %s %s (netcell-service)\n", join(routes, " ").c_str(), state.c_str());
  }
  if (!info.rate.empty()) {
    auto shown = [](const std::optional<std::uint64_t>& bps) {
      return bps ? format_rate(*bps) : std::string("unlimited");
    };
    std::printf("rate:       egress %s, ingress %s\n", shown(info.rate.egress_bps).c_str(),
                shown(info.rate.ingress_bps).c_str());
  }
  if (info.egress) {
    std::printf("egress:     default %s\n",
                std::string(to_string(info.egress->default_action)).c_str());
    for (const auto& rule : info.egress->rules) {
      std::printf("            %s %s\n", std::string(to_string(rule.action)).c_str(),
                  rule.to_string().c_str());
    }
  }
  std::printf("created:    %s\n", format_time(info.created_unix_ms).c_str());
}

void print_list(const std::vector<NamespaceInfo>& infos) {
  if (infos.empty()) {
    std::printf("no namespaces\n");
    return;
  }
  // The name column is as wide as the longest name (CNI attachments' names are long), at least 24.
  int width = 24;
  for (const auto& info : infos) width = std::max(width, static_cast<int>(info.name.size()));
  std::printf("%-*s %-8s %-10s %-9s %-8s %-10s %s\n", width, "NAME", "MODE", "BACKEND", "ENFORCED",
              "OWNER", "INTERFACES", "ADDRESSES");
  for (const auto& info : infos) {
    std::vector<std::string> ifaces;
    for (const auto& i : info.interfaces) ifaces.push_back(i.name);
    // The namespace's own addresses: IPv4, and IPv6 when it is dual-stack.
    std::vector<std::string> addresses;
    if (auto v4 = primary_address(info)) addresses.push_back(v4->to_string());
    if (auto v6 = ipv6_address(info)) addresses.push_back(v6->address.to_string());
    std::printf("%-*s %-8s %-10s %-9s %-8s %-10s %s\n", width, info.name.c_str(),
                std::string(to_string(info.mode)).c_str(),
                std::string(to_string(info.backend)).c_str(), info.enforced ? "yes" : "no",
                owner(info).c_str(), ifaces.empty() ? "(host)" : join(ifaces, ",").c_str(),
                addresses.empty() ? "-" : join(addresses, ",").c_str());
  }
}

void print_stats(const NamespaceStats& stats) {
  auto row = [](const InterfaceStats& s) {
    std::printf(
        "%-16s %14llu %12llu %8llu %8llu %14llu %12llu %8llu %8llu\n", s.name.c_str(),
        static_cast<unsigned long long>(s.rx_bytes), static_cast<unsigned long long>(s.rx_packets),
        static_cast<unsigned long long>(s.rx_errors), static_cast<unsigned long long>(s.rx_dropped),
        static_cast<unsigned long long>(s.tx_bytes), static_cast<unsigned long long>(s.tx_packets),
        static_cast<unsigned long long>(s.tx_errors),
        static_cast<unsigned long long>(s.tx_dropped));
  };
  std::printf("%-16s %14s %12s %8s %8s %14s %12s %8s %8s\n", "INTERFACE", "RX_BYTES", "RX_PACKETS",
              "RX_ERRS", "RX_DROP", "TX_BYTES", "TX_PACKETS", "TX_ERRS", "TX_DROP");
  for (const auto& s : stats.interfaces) row(s);
  row(stats.total);
  std::printf("%zu interface(s)\n", stats.interface_count());
}

void print_networks(const std::vector<NetworkInfo>& networks) {
  std::printf("%-16s %-8s %-18s %-15s %-8s %-4s %s\n", "NAME", "KIND", "SUBNET", "GATEWAY",
              "BRIDGE", "NAT", "HOST-ACCESS");
  for (const auto& n : networks) {
    std::printf("%-16s %-8s %-18s %-15s %-8s %-4s %s\n", n.name.c_str(),
                n.bridged ? "bridged" : "private", n.subnet.to_string().c_str(),
                n.gateway ? n.gateway->to_string().c_str() : "(per ns)",
                n.bridge.empty() ? "-" : n.bridge.c_str(), n.nat ? "yes" : "no",
                n.host_access ? "yes" : "no");
    // A dual-stack bridged network's IPv6 prefix and gateway, on a line of their own under it,
    // so the columns stay as scripts read them.
    if (n.bridged && n.subnet6) {
      std::printf("%-16s %-8s %-18s %s\n", "", "", n.subnet6->to_string().c_str(),
                  n.gateway6 ? n.gateway6->to_string().c_str() : "(per ns)");
    }
  }
}

}  // namespace netcell::cli
