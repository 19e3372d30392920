#include "core/fault.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace netcell {
namespace {

long fault_at() {
  static const long at = [] {
    const char* text = std::getenv("NETCELL_FAULT_AT");
    long value = 0;
    if (text != nullptr) std::from_chars(text, text + std::strlen(text), value);
    return value;
  }();
  return at;
}

}  // namespace

void fault_point(std::string_view where) {
  static std::atomic<long> reached{0};
  long at = fault_at();
  if (at <= 0) return;
  if (++reached == at) {
    if (std::getenv("NETCELL_FAULT_VERBOSE") != nullptr) {
      std::fprintf(stderr, "netcell: fault injected at step %ld (%.*s)\n", at,
                   static_cast<int>(where.size()), where.data());
    }
    ::kill(::getpid(), SIGKILL);
  }
}

}  // namespace netcell
