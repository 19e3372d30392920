// netcell-bench-steps: where the time of a library create/destroy goes. Creates N private
// namespaces (one published port each, all kept alive), then destroys them, and writes the time
// between consecutive steps of every operation to a CSV (i,op,step,ms).
//
// The steps are netcell's own crash-safety checkpoints, timestamped by steps_hook.cc.
//
//   netcell-bench-steps N CSV     (inside a throwaway world)
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "netcell/netcell.h"
#include "steps_hook.h"

using netcell_bench::marks;
using netcell_bench::realtime_ns;
using netcell_bench::write_steps;

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: netcell-bench-steps N CSV\n");
    return 2;
  }
  const int n = std::atoi(argv[1]);
  if (n < 1 || n > 16000) {
    std::fprintf(stderr, "netcell-bench-steps: N must be 1..16000\n");
    return 2;
  }
  auto mgr = netcell::NamespaceManager::create(netcell::ManagerOptions{});
  if (!mgr) {
    std::fprintf(stderr, "netcell: %s\n", mgr.error().to_string().c_str());
    return 1;
  }
  std::FILE* csv = std::fopen(argv[2], "w");
  if (csv == nullptr) {
    std::perror(argv[2]);
    return 1;
  }
  std::fprintf(csv, "i,op,step,ms\n");
  for (int i = 1; i <= n; ++i) {
    auto cfg = netcell::NamespaceConfig::private_network(0);
    cfg.name = 's' + std::to_string(i);
    cfg.port_forwards.push_back(
        {static_cast<std::uint16_t>(20000 + i), 80, netcell::Protocol::kTcp, {}});
    marks().clear();
    const std::int64_t start = realtime_ns();
    auto made = mgr->create(cfg);
    write_steps(csv, i, "create", start, realtime_ns());
    if (!made) {
      std::fprintf(stderr, "netcell: %s\n", made.error().to_string().c_str());
      return 1;
    }
  }
  for (int i = 1; i <= n; ++i) {
    marks().clear();
    const std::int64_t start = realtime_ns();
    auto gone = mgr->destroy('s' + std::to_string(i));
    write_steps(csv, i, "destroy", start, realtime_ns());
    if (!gone) {
      std::fprintf(stderr, "netcell: %s\n", gone.error().to_string().c_str());
      return 1;
    }
  }
  std::fclose(csv);
  return 0;
}
