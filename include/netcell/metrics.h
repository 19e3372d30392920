// netcell: the metrics of a netcell instance in the Prometheus text exposition format (version
// 0.0.4, which OpenMetrics parsers read too). One generator for every front-end that shows them:
// `netcell metrics` prints it, netcell-service serves it over HTTP (--metrics-listen). The names
// and labels are a stable interface, documented in docs/METRICS.md: add new ones, never rename.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "netcell/manager.h"
#include "netcell/policy.h"
#include "netcell/types.h"

namespace netcell {

// What one collection read (collect_metrics).
struct MetricsSnapshot {
  BackendKind backend = BackendKind::kSimulation;
  std::vector<NamespaceInfo> namespaces;  // sorted by name
  std::vector<NamespaceStats> stats;      // parallel to `namespaces` (empty when unreadable)
  // Parallel to `namespaces`: what the kernel counted for the namespace's egress policy (none
  // without a policy, or on a backend that does not enforce policies).
  std::vector<std::optional<EgressCounters>> egress;
  std::vector<NetworkInfo> networks;
  // One line per namespace whose counters could not be read ("NAME: why"); it still counts, with
  // no counters this time.
  std::vector<std::string> errors;
};

// Reads every namespace's interface counters (one netlink dump inside each), its policy's
// counters, and the networks. A namespace destroyed meanwhile is left out.
MetricsSnapshot collect_metrics(NamespaceManager& manager);

// What a resolver (netcell-service) answered one namespace since it started.
struct ResolverCounts {
  std::uint64_t answered = 0;  // an upstream's answer, released to the namespace
  std::uint64_t refused = 0;   // a name its policy does not allow (REFUSED or NXDOMAIN)
  std::uint64_t failed = 0;    // SERVFAIL: no upstream answered, too many waiting, ...
  std::uint64_t limited = 0;   // dropped unanswered: beyond the namespace's query rate
};

struct MetricsContext {
  // netcell_info's labels: the program that serves the metrics.
  std::string version;
  std::string revision;
  // The resolver's counters by namespace; its metric families appear only when set (the
  // resolver's process has them, `netcell metrics` does not).
  std::optional<std::map<std::string, ResolverCounts>> resolver;
};

// The exposition text of `snapshot`.
std::string render_metrics(const MetricsSnapshot& snapshot, const MetricsContext& context);

// The Content-Type of that text over HTTP.
inline constexpr char kMetricsContentType[] = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace netcell
