#include "steps_hook.h"

#include <time.h>

#include <cstdio>
#include <cstdlib>

namespace netcell_bench {

std::vector<Mark>& marks() {
  static std::vector<Mark> all;
  return all;
}

std::int64_t realtime_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

void write_steps(std::FILE* csv, int i, const char* op, std::int64_t start, std::int64_t end) {
  std::string_view previous = "start";
  std::int64_t at = start;
  marks().push_back({"end", end});
  for (const auto& [where, when] : marks()) {
    std::fprintf(csv, "%d,%s,\"%.*s -> %.*s\",%.4f\n", i, op, static_cast<int>(previous.size()),
                 previous.data(), static_cast<int>(where.size()), where.data(),
                 static_cast<double>(when - at) / 1e6);
    previous = where;
    at = when;
  }
  marks().clear();
}

namespace {

// With NETCELL_BENCH_STEPS=FILE, every checkpoint of the process is appended to FILE at exit as
// "WHERE<TAB>REALTIME_NS" (the CLI's own process start included), then an empty line.
void write_marks() {
  const char* path = std::getenv("NETCELL_BENCH_STEPS");
  if (path == nullptr) return;
  std::FILE* out = std::fopen(path, "a");
  if (out == nullptr) return;
  for (const Mark& m : marks()) {
    std::fprintf(out, "%.*s\t%lld\n", static_cast<int>(m.where.size()), m.where.data(),
                 static_cast<long long>(m.realtime_ns));
  }
  std::fprintf(out, "exit\t%lld\n\n", static_cast<long long>(realtime_ns()));
  std::fclose(out);
}

// Runs after the dynamic linker has loaded every library, just before main.
__attribute__((constructor)) void process_started() {
  marks().reserve(64);
  marks().push_back({"process started", realtime_ns()});
  std::atexit(write_marks);
}

}  // namespace
}  // namespace netcell_bench

namespace netcell {
void fault_point(std::string_view where) {
  netcell_bench::marks().push_back({where, netcell_bench::realtime_ns()});
}
}  // namespace netcell
