// Small helpers shared by the library benchmarks (netcell-bench, netcell-bench-policy).
#pragma once

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>

namespace netcell_bench {

using Clock = std::chrono::steady_clock;

inline double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// User + system CPU time of this process, in seconds.
inline double cpu_seconds() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// This process's resident memory now, in KiB.
inline long rss_kib() {
  std::ifstream statm("/proc/self/statm");
  long pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * (::sysconf(_SC_PAGESIZE) / 1024);
}

// Runs the shell command in $NETCELL_BENCH_VERIFY (the untimed check while all namespaces exist):
// its exit status, 128 when it did not exit, -1 when there is none.
inline int run_verify_command() {
  const char* command = std::getenv("NETCELL_BENCH_VERIFY");
  if (command == nullptr) return -1;
  std::fflush(nullptr);
  const int status = std::system(command);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

}  // namespace netcell_bench
