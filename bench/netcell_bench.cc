// netcell-bench: netcell through the library, under Google Benchmark. One benchmark,
// private_namespace/N: each iteration creates one private namespace (veth, address, default
// route, forwarding, NAT, one published TCP port HPORT -> 80) and keeps it; after the timed loop
// the optional check command runs while all N exist, then all N are destroyed one by one (timed
// too, reported as counters). Per-namespace times go to a CSV so that percentiles and growth
// with N can be computed; Google Benchmark's own output (console, or --benchmark_out=FILE.json)
// carries the same summary as counters.
//
//   netcell-bench --n=N --csv=FILE [--summary=FILE.json] [--first-port=20000] [benchmark flags]
// Environment: NETCELL_BENCH_VERIFY, a shell command run (untimed) while all namespaces exist;
// its exit status is the counter verify_status.
// Run it inside a throwaway world: it changes the network of the namespace it runs in.
#include <benchmark/benchmark.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "bench_util.h"
#include "netcell/netcell.h"

namespace {

using netcell_bench::Clock;
using netcell_bench::cpu_seconds;
using netcell_bench::ms_since;
using netcell_bench::rss_kib;

struct Options {
  int n = 100;
  int first_port = 20000;
  std::string csv;
  std::string summary;
};
Options g_options;

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(p * static_cast<double>(v.size() - 1))];
}

void BM_PrivateNamespace(benchmark::State& state) {
  auto mgr = netcell::NamespaceManager::create(netcell::ManagerOptions{});
  if (!mgr) {
    state.SkipWithError(("netcell: " + mgr.error().to_string()).c_str());
    for (auto _ : state) {
    }
    return;
  }
  std::vector<double> setup_ms;
  setup_ms.reserve(static_cast<std::size_t>(g_options.n));
  const long rss_before = rss_kib();
  const double cpu0 = cpu_seconds();
  const auto setup_start = Clock::now();
  for (auto _ : state) {
    const int i = static_cast<int>(setup_ms.size());
    auto cfg = netcell::NamespaceConfig::private_network(0);
    cfg.name = "l" + std::to_string(i + 1);
    cfg.port_forwards.push_back(
        {static_cast<std::uint16_t>(g_options.first_port + i), 80, netcell::Protocol::kTcp, {}});
    const auto start = Clock::now();
    auto made = mgr->create(cfg);
    setup_ms.push_back(ms_since(start));
    if (!made) {
      state.SkipWithError(("create " + cfg.name + ": " + made.error().to_string()).c_str());
      break;
    }
  }
  const double setup_cpu = cpu_seconds() - cpu0;
  const double setup_wall = ms_since(setup_start) / 1000;
  const long rss_after = rss_kib();
  const int created = static_cast<int>(setup_ms.size());

  const int verify = netcell_bench::run_verify_command();

  std::vector<double> teardown_ms;
  const double cpu1 = cpu_seconds();
  const auto teardown_start = Clock::now();
  for (int i = 0; i < created; ++i) {
    const auto start = Clock::now();
    auto gone = mgr->destroy("l" + std::to_string(i + 1));
    teardown_ms.push_back(ms_since(start));
    if (!gone) {
      state.SkipWithError(("destroy: " + gone.error().to_string()).c_str());
      break;
    }
  }
  const double teardown_cpu = cpu_seconds() - cpu1;
  const double teardown_wall = ms_since(teardown_start) / 1000;

  if (!g_options.csv.empty()) {
    std::ofstream csv(g_options.csv);
    csv << "i,setup_ms,teardown_ms\n";
    for (std::size_t i = 0; i < setup_ms.size(); ++i) {
      csv << i + 1 << ',' << setup_ms[i] << ',' << (i < teardown_ms.size() ? teardown_ms[i] : -1.0)
          << '\n';
    }
  }
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  const double per = created > 0 ? 1.0 / created : 0;
  state.counters["setup_p50_ms"] = percentile(setup_ms, 0.5);
  state.counters["setup_p95_ms"] = percentile(setup_ms, 0.95);
  state.counters["teardown_p50_ms"] = percentile(teardown_ms, 0.5);
  state.counters["teardown_p95_ms"] = percentile(teardown_ms, 0.95);
  state.counters["setup_cpu_ms"] = setup_cpu * 1000 * per;
  state.counters["teardown_cpu_ms"] = teardown_cpu * 1000 * per;
  state.counters["rss_kib_per_ns"] = static_cast<double>(rss_after - rss_before) * per;
  state.counters["maxrss_kib"] = static_cast<double>(ru.ru_maxrss);
  state.counters["verify_status"] = verify;
  if (!g_options.summary.empty()) {
    std::ofstream out(g_options.summary);
    out << "{\"requested\": " << g_options.n << ", \"created\": " << created
        << ", \"destroyed\": " << teardown_ms.size() << ", \"setup_wall_s\": " << setup_wall
        << ", \"teardown_wall_s\": " << teardown_wall << ", \"setup_cpu_s\": " << setup_cpu
        << ", \"teardown_cpu_s\": " << teardown_cpu << ", \"rss_kib_before\": " << rss_before
        << ", \"rss_kib_after\": " << rss_after << ", \"maxrss_kib\": " << ru.ru_maxrss
        << ", \"verify_status\": " << verify << "}\n";
  }
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    auto value = [&](std::string_view flag) -> const char* {
      return arg.substr(0, flag.size()) == flag ? argv[i] + flag.size() : nullptr;
    };
    if (const char* v = value("--n=")) {
      g_options.n = std::atoi(v);
    } else if (const char* v2 = value("--csv=")) {
      g_options.csv = v2;
    } else if (const char* v3 = value("--summary=")) {
      g_options.summary = v3;
    } else if (const char* v4 = value("--first-port=")) {
      g_options.first_port = std::atoi(v4);
    } else {
      std::fprintf(stderr,
                   "usage: netcell-bench --n=N --csv=FILE [--summary=FILE] [--first-port=P] "
                   "[benchmark flags]\n");
      return 2;
    }
  }
  if (g_options.n < 1 || g_options.n > 16000 || g_options.first_port < 1 ||
      g_options.first_port + g_options.n > 65536) {
    std::fprintf(stderr, "netcell-bench: N must be 1..16000 and the ports fit below 65536\n");
    return 2;
  }
  benchmark::RegisterBenchmark(("private_namespace/" + std::to_string(g_options.n)).c_str(),
                               BM_PrivateNamespace)
      ->Iterations(g_options.n)
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime()
      ->MeasureProcessCPUTime();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
