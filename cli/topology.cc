// netcell CLI: `up FILE` and `down FILE` (declarative topologies, netcell/topology.h).
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli.h"

namespace netcell::cli {
namespace {

using nlohmann::json;

json to_json(const TopologyReport& report) {
  json steps = json::array();
  for (const auto& s : report.steps) {
    steps.push_back(
        {{"action", s.action}, {"kind", s.kind}, {"object", s.object}, {"detail", s.detail}});
  }
  return json{{"steps", steps}, {"changed", report.changed}};
}

void print(const TopologyReport& report, const TopologyOptions& options, const Topology& topology,
           const char* verb) {
  for (const auto& s : report.steps) {
    std::printf("%-8s %-9s %s%s%s\n", s.action.c_str(), s.kind.c_str(), s.object.c_str(),
                s.detail.empty() ? "" : "  ", s.detail.c_str());
  }
  if (options.dry_run) {
    std::printf("dry run: nothing was changed (topology %s)\n", topology.name.c_str());
  } else {
    std::printf("topology %s %s: %d change%s\n", topology.name.c_str(), verb, report.changed,
                report.changed == 1 ? "" : "s");
  }
}

}  // namespace

int cmd_topology(const GlobalOptions& g, const std::string& file, bool up, bool dry_run,
                 bool json_out) {
  auto parsed = load_topology(file);
  if (!parsed.topology) {
    // Every problem on a line of its own; control bytes escaped like every other error.
    for (const auto& e : parsed.errors) {
      std::fprintf(stderr, "netcell: %s\n",
                   Error(ErrorCode::kInvalidArgument, e.to_string()).to_string().c_str());
    }
    return kExitUsage;
  }
  auto mgr = open_manager(g);
  if (!mgr) return report(mgr.error());
  TopologyOptions options;
  options.dry_run = dry_run;
  Progress progress(g);
  options.progress = [&progress](const TopologyProgress& p) {
    const char* verb = p.action == "create"    ? "creating"
                       : p.action == "replace" ? "replacing"
                                               : "removing";
    progress.show(p.done, p.total, verb, p.object);
  };
  auto result = up ? topology_up(*mgr, *parsed.topology, options)
                   : topology_down(*mgr, *parsed.topology, options);
  progress.clear();
  if (!result) {
    return report(std::move(result).error().with_context(std::string(up ? "up " : "down ") + file));
  }
  if (json_out) {
    json j = to_json(*result);
    j["topology"] = parsed.topology->name;
    j["dry_run"] = dry_run;
    std::cout << j.dump(2) << std::endl;
  } else if (!g.quiet) {
    print(*result, options, *parsed.topology, up ? "is up" : "is down");
  }
  return kExitOk;
}

}  // namespace netcell::cli
