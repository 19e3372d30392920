// The Prometheus exposition of netcell's state (netcell/metrics.h): a reader of the public API
// and a writer of the text format, shared by `netcell metrics` and netcell-service.
#include "netcell/metrics.h"

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace netcell {
namespace {

// A label value as the text format wants it: backslash, double quote and newline escaped.
std::string escape(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

using Labels = std::vector<std::pair<const char*, std::string>>;

class Writer {
 public:
  // Starts a metric family: its HELP and TYPE lines. All its samples must follow.
  void family(const char* name, const char* type, const char* help) {
    out_ += std::string("# HELP ") + name + ' ' + help + "\n# TYPE " + name + ' ' + type + '\n';
  }
  void sample(const char* name, const Labels& labels, std::uint64_t value) {
    out_ += name;
    if (!labels.empty()) {
      out_ += '{';
      for (std::size_t i = 0; i < labels.size(); ++i) {
        if (i > 0) out_ += ',';
        out_ += std::string(labels[i].first) + "=\"" + escape(labels[i].second) + '"';
      }
      out_ += '}';
    }
    out_ += ' ' + std::to_string(value) + '\n';
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

Labels interface_labels(const NamespaceInfo& ns, const InterfaceStats& iface) {
  return {{"namespace", ns.name},
          {"interface", iface.name},
          {"mode", std::string(to_string(ns.mode))},
          {"network", ns.network}};
}

// The eight interface counters, in the order of `netcell stats`.
struct Counter {
  const char* name;
  const char* help;
  std::uint64_t InterfaceStats::*field;
};
constexpr Counter kCounters[] = {
    {"netcell_interface_receive_bytes_total", "Bytes received by a namespace's interface.",
     &InterfaceStats::rx_bytes},
    {"netcell_interface_receive_packets_total", "Packets received by a namespace's interface.",
     &InterfaceStats::rx_packets},
    {"netcell_interface_receive_errors_total", "Receive errors of a namespace's interface.",
     &InterfaceStats::rx_errors},
    {"netcell_interface_receive_drops_total", "Received packets a namespace's interface dropped.",
     &InterfaceStats::rx_dropped},
    {"netcell_interface_transmit_bytes_total", "Bytes sent by a namespace's interface.",
     &InterfaceStats::tx_bytes},
    {"netcell_interface_transmit_packets_total", "Packets sent by a namespace's interface.",
     &InterfaceStats::tx_packets},
    {"netcell_interface_transmit_errors_total", "Transmit errors of a namespace's interface.",
     &InterfaceStats::tx_errors},
    {"netcell_interface_transmit_drops_total",
     "Packets to send that a namespace's interface dropped.", &InterfaceStats::tx_dropped},
};

void render_state(Writer& w, const MetricsSnapshot& s, const MetricsContext& c) {
  w.family("netcell_info", "gauge",
           "netcell's version, the source revision it was built from and its backend; always 1.");
  w.sample("netcell_info",
           {{"version", c.version},
            {"revision", c.revision},
            {"backend", std::string(to_string(s.backend))}},
           1);

  w.family("netcell_namespaces", "gauge", "Namespaces netcell manages, by isolation mode.");
  std::map<std::string, std::uint64_t> by_mode;
  for (IsolationMode mode : {IsolationMode::kFull, IsolationMode::kPrivate, IsolationMode::kShared,
                             IsolationMode::kBridged}) {
    by_mode[std::string(to_string(mode))] = 0;
  }
  for (const auto& ns : s.namespaces) ++by_mode[std::string(to_string(ns.mode))];
  for (const auto& [mode, count] : by_mode) w.sample("netcell_namespaces", {{"mode", mode}}, count);

  w.family("netcell_namespace_info", "gauge",
           "A namespace netcell manages, with its mode, network and owner; always 1.");
  for (const auto& ns : s.namespaces) {
    w.sample("netcell_namespace_info",
             {{"namespace", ns.name},
              {"mode", std::string(to_string(ns.mode))},
              {"network", ns.network},
              {"backend", std::string(to_string(ns.backend))},
              {"enforced", ns.enforced ? "true" : "false"},
              {"owner_pid", ns.owner_pid > 0 ? std::to_string(ns.owner_pid) : ""}},
             1);
  }
  w.family("netcell_namespace_created_timestamp_seconds", "gauge",
           "When the namespace was made, in seconds since the Unix epoch.");
  for (const auto& ns : s.namespaces) {
    w.sample("netcell_namespace_created_timestamp_seconds", {{"namespace", ns.name}},
             static_cast<std::uint64_t>(ns.created_unix_ms / 1000));
  }

  w.family("netcell_network_info", "gauge",
           "A network namespaces attach to (the implicit private one and bridged ones); always 1.");
  std::map<std::string, std::uint64_t> members;
  for (const auto& n : s.networks) members[n.name] = 0;
  for (const auto& ns : s.namespaces) {
    if (!ns.network.empty()) ++members[ns.network];
  }
  for (const auto& n : s.networks) {
    w.sample("netcell_network_info",
             {{"network", n.name},
              {"kind", n.bridged ? "bridged" : "private"},
              {"subnet", n.subnet.to_string()},
              {"bridge", n.bridge},
              {"nat", n.nat ? "true" : "false"},
              {"host_access", n.host_access ? "true" : "false"}},
             1);
  }
  w.family("netcell_network_namespaces", "gauge", "Namespaces attached to a network.");
  for (const auto& [network, count] : members) {
    w.sample("netcell_network_namespaces", {{"network", network}}, count);
  }
}

void render_interfaces(Writer& w, const MetricsSnapshot& s) {
  for (const Counter& counter : kCounters) {
    w.family(counter.name, "counter", counter.help);
    for (std::size_t i = 0; i < s.stats.size(); ++i) {
      for (const auto& iface : s.stats[i].interfaces) {
        w.sample(counter.name, interface_labels(s.namespaces[i], iface), iface.*counter.field);
      }
    }
  }
}

// The address rules' and the default's counters of every namespace with a policy. The domain
// rules' are left out: they are sums over learned destinations, which expire with their counts,
// so they can go down, which a counter must not.
void render_policies(Writer& w, const MetricsSnapshot& s) {
  struct Row {
    const NamespaceInfo& ns;
    std::string rule, action, match;
    PolicyCounter counter;
  };
  std::vector<Row> rows;
  std::vector<std::pair<const NamespaceInfo*, std::uint64_t>> denied;
  for (std::size_t i = 0; i < s.egress.size(); ++i) {
    const auto& counters = s.egress[i];
    const NamespaceInfo& ns = s.namespaces[i];
    if (!counters || !ns.egress) continue;
    std::uint64_t refused = 0;
    for (std::size_t r = 0; r < counters->rules.size() && r < ns.egress->rules.size(); ++r) {
      const EgressRule& rule = ns.egress->rules[r];
      rows.push_back({ns, std::to_string(r), std::string(to_string(rule.action)), rule.to_string(),
                      counters->rules[r]});
      if (rule.action == PolicyAction::kDeny) refused += counters->rules[r].packets;
    }
    rows.push_back({ns, "default", std::string(to_string(ns.egress->default_action)), "",
                    counters->by_default});
    if (ns.egress->default_action == PolicyAction::kDeny) refused += counters->by_default.packets;
    denied.emplace_back(&ns, refused);
  }
  for (auto [name, help, bytes] :
       {std::tuple{"netcell_policy_packets_total",
                   "Packets an egress policy rule (or its default) decided on: the first of each "
                   "new connection.",
                   false},
        std::tuple{"netcell_policy_bytes_total", "The bytes of those packets.", true}}) {
    w.family(name, "counter", help);
    for (const auto& row : rows) {
      w.sample(name,
               {{"namespace", row.ns.name},
                {"rule", row.rule},
                {"action", row.action},
                {"match", row.match}},
               bytes ? row.counter.bytes : row.counter.packets);
    }
  }
  w.family("netcell_policy_denied_packets_total", "counter",
           "Packets an egress policy refused (deny rules and a deny default): denied flows.");
  for (const auto& [ns, count] : denied) {
    w.sample("netcell_policy_denied_packets_total", {{"namespace", ns->name}}, count);
  }
}

void render_resolver(Writer& w, const std::map<std::string, ResolverCounts>& resolver) {
  w.family("netcell_resolver_queries_total", "counter",
           "DNS queries netcell's resolver handled for a namespace since it started, by result.");
  for (const auto& [ns, counts] : resolver) {
    for (auto [result, value] :
         {std::pair{"answered", counts.answered}, std::pair{"refused", counts.refused},
          std::pair{"failed", counts.failed}, std::pair{"limited", counts.limited}}) {
      w.sample("netcell_resolver_queries_total", {{"namespace", ns}, {"result", result}}, value);
    }
  }
}

}  // namespace

MetricsSnapshot collect_metrics(NamespaceManager& mgr) {
  MetricsSnapshot s;
  s.backend = mgr.backend();
  s.networks = mgr.list_networks();
  for (auto& ns : mgr.list()) {
    auto stats = mgr.stats(ns.name);
    if (!stats) {
      // Destroyed since list(): not an error, just gone.
      if (stats.error().code() == ErrorCode::kNotFound && !mgr.exists(ns.name)) continue;
      s.errors.push_back(ns.name + ": " + stats.error().to_string());
      stats = NamespaceStats{};  // the namespace still counts; it has no counters this time
    }
    std::optional<EgressCounters> egress;
    if (ns.egress && ns.enforced) {
      if (auto counted = mgr.egress_counters(ns.name)) {
        egress = std::move(*counted);
      } else if (counted.error().code() != ErrorCode::kUnsupported && mgr.exists(ns.name)) {
        s.errors.push_back(ns.name + ": " + counted.error().to_string());
      }
    }
    s.namespaces.push_back(std::move(ns));
    s.stats.push_back(std::move(*stats));
    s.egress.push_back(std::move(egress));
  }
  return s;
}

std::string render_metrics(const MetricsSnapshot& s, const MetricsContext& c) {
  Writer w;
  render_state(w, s, c);
  render_interfaces(w, s);
  render_policies(w, s);
  if (c.resolver) render_resolver(w, *c.resolver);
  w.family("netcell_metrics_errors", "gauge",
           "Namespaces whose counters this collection could not read.");
  w.sample("netcell_metrics_errors", {}, static_cast<std::uint64_t>(s.errors.size()));
  return w.take();
}

}  // namespace netcell
