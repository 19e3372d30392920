// netcell-scale: does creating a private namespace get slower as more exist? Creates N private
// namespaces through the library (each with one published port, all kept alive), times every
// create, prints p50/p95 for the first and last 100 and their ratio, then destroys them all.
// Run it inside a throwaway world:  tests/support/world.sh build/bench/netcell-scale 1000
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "netcell/netcell.h"

namespace {

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(p * static_cast<double>(v.size() - 1))];
}

}  // namespace

int main(int argc, char** argv) {
  using Clock = std::chrono::steady_clock;
  int n = argc > 1 ? std::atoi(argv[1]) : 1000;
  if (n < 200 || n > 16000) {
    std::fprintf(stderr, "usage: netcell-scale N   (200 <= N <= 16000)\n");
    return 2;
  }
  auto mgr = netcell::NamespaceManager::create(netcell::ManagerOptions{});
  if (!mgr) {
    std::fprintf(stderr, "netcell: %s\n", mgr.error().to_string().c_str());
    return 1;
  }
  std::vector<double> create_ms;
  for (int i = 0; i < n; ++i) {
    auto cfg = netcell::NamespaceConfig::private_network(0);
    cfg.name = 's' + std::to_string(i);
    cfg.port_forwards.push_back(
        {static_cast<std::uint16_t>(20000 + i), 80, netcell::Protocol::kTcp, {}});
    auto start = Clock::now();
    auto made = mgr->create(cfg);
    create_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
    if (!made) {
      std::fprintf(stderr, "netcell: namespace %d: %s\n", i, made.error().to_string().c_str());
      return 1;
    }
  }
  std::vector<double> first(create_ms.begin(), create_ms.begin() + 100);
  std::vector<double> last(create_ms.end() - 100, create_ms.end());
  std::printf("private namespaces created: %d (each with NAT and one published port)\n", n);
  std::printf("create, namespaces 1-100:      p50 %.3f ms  p95 %.3f ms\n", percentile(first, 0.5),
              percentile(first, 0.95));
  std::printf("create, namespaces %d-%d: p50 %.3f ms  p95 %.3f ms\n", n - 99, n,
              percentile(last, 0.5), percentile(last, 0.95));
  std::printf("ratio of p50 (last 100 / first 100): %.2f\n",
              percentile(last, 0.5) / percentile(first, 0.5));
  std::vector<double> destroy_ms;
  for (int i = 0; i < n; ++i) {
    auto start = Clock::now();
    auto gone = mgr->destroy('s' + std::to_string(i));
    destroy_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
    if (!gone) {
      std::fprintf(stderr, "netcell: destroy %d: %s\n", i, gone.error().to_string().c_str());
      return 1;
    }
  }
  std::printf("destroy: p50 %.3f ms  p95 %.3f ms\n", percentile(destroy_ms, 0.5),
              percentile(destroy_ms, 0.95));
  return 0;
}
