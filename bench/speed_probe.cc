// netcell-bench-probe: how fast this machine's CPU is right now. Prints the milliseconds that
// 200 million dependent additions take (no system calls, no memory beyond one cache line). On a
// VM whose vCPUs change speed with the host's load, bench/run takes it before every run so that
// the report can show in which state each run was measured.
#include <chrono>
#include <cstdint>
#include <cstdio>

int main() {
  const auto start = std::chrono::steady_clock::now();
  volatile std::uint64_t sum = 0;
  for (std::uint64_t i = 0; i < 200'000'000; ++i) sum = sum + i;
  const std::chrono::duration<double, std::milli> took = std::chrono::steady_clock::now() - start;
  std::printf("%.0f\n", took.count());
  return sum == 0 ? 1 : 0;
}
