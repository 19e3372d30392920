// netcell metrics: every namespace's interface counters and the state of namespaces and networks,
// in the Prometheus text exposition format (version 0.0.4, which OpenMetrics parsers read too).
// A front-end over the public API (NamespaceManager::list, stats, list_networks). The names and
// labels are a stable interface, documented in docs/METRICS.md: add new ones, never rename.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "cli.h"
#include "version.h"

namespace netcell::cli {
namespace {

// What one collection read: the namespaces with their counters (those that could be read),
// the networks, and how many namespaces' counters could not be read.
struct Snapshot {
  BackendKind backend = BackendKind::kSimulation;
  std::vector<NamespaceInfo> namespaces;
  std::vector<NamespaceStats> stats;  // parallel to `namespaces`
  std::vector<NetworkInfo> networks;
  int errors = 0;
};

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
  const std::string& text() const { return out_; }

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

std::string render(const Snapshot& s) {
  Writer w;
  w.family("netcell_info", "gauge",
           "netcell's version, the source revision it was built from and its backend; always 1.");
  w.sample("netcell_info",
           {{"version", kVersion},
            {"revision", kRevision},
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

  for (const Counter& counter : kCounters) {
    w.family(counter.name, "counter", counter.help);
    for (std::size_t i = 0; i < s.stats.size(); ++i) {
      for (const auto& iface : s.stats[i].interfaces) {
        w.sample(counter.name, interface_labels(s.namespaces[i], iface), iface.*counter.field);
      }
    }
  }

  w.family("netcell_metrics_errors", "gauge",
           "Namespaces whose counters this collection could not read (named on stderr).");
  w.sample("netcell_metrics_errors", {}, static_cast<std::uint64_t>(s.errors));
  return w.text();
}

Snapshot collect(NamespaceManager& mgr) {
  Snapshot s;
  s.backend = mgr.backend();
  s.networks = mgr.list_networks();
  for (auto& ns : mgr.list()) {
    auto stats = mgr.stats(ns.name);
    if (!stats) {
      // Destroyed since list(): not an error, just gone.
      if (stats.error().code() == ErrorCode::kNotFound && !mgr.exists(ns.name)) continue;
      std::fprintf(stderr, "netcell: metrics: %s\n", stats.error().to_string().c_str());
      ++s.errors;
      stats = NamespaceStats{};  // the namespace still counts; it has no counters this time
    }
    s.namespaces.push_back(std::move(ns));
    s.stats.push_back(std::move(*stats));
  }
  return s;
}

// Writes `text` to DIR/netcell.prom atomically: a temporary file in DIR (a name node_exporter's
// textfile collector skips, since it does not end in .prom), flushed to disk, then renamed over
// the old one, so a scrape never reads half a file.
Result<void> write_textfile(const std::string& dir, const std::string& text) {
  std::string tmp = dir + "/.netcell.prom.XXXXXX";
  int fd = ::mkostemp(tmp.data(), O_CLOEXEC);
  if (fd < 0) return fail_errno("create a temporary file in " + dir, errno);
  auto fail_with = [&](const std::string& what) {
    int saved = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    return fail_errno(what + " " + tmp, saved);
  };
  for (std::size_t done = 0; done < text.size();) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_with("write");
    done += static_cast<std::size_t>(n);
  }
  if (::fchmod(fd, 0644) != 0) return fail_with("chmod");
  if (::fsync(fd) != 0) return fail_with("fsync");
  if (::close(fd) != 0) {
    int saved = errno;
    ::unlink(tmp.c_str());
    return fail_errno("close " + tmp, saved);
  }
  const std::string target = dir + "/netcell.prom";
  if (::rename(tmp.c_str(), target.c_str()) != 0) {
    int saved = errno;
    ::unlink(tmp.c_str());
    return fail_errno("rename " + tmp + " to " + target, saved);
  }
  return ok();
}

}  // namespace

int cmd_metrics(const GlobalOptions& g, const std::string& textfile_dir) {
  auto mgr = open_manager(g);
  if (!mgr) return report(mgr.error());
  const Snapshot snapshot = collect(*mgr);
  const std::string text = render(snapshot);
  if (textfile_dir.empty()) {
    std::fwrite(text.data(), 1, text.size(), stdout);
  } else if (auto written = write_textfile(textfile_dir, text); !written) {
    return report(std::move(written).error().with_context("metrics --textfile"));
  }
  return snapshot.errors == 0 ? kExitOk : kExitFailed;
}

}  // namespace netcell::cli
