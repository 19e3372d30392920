#include "core/privileges.h"

#include <cstdint>
#include <fstream>
#include <string>

namespace netcell {

bool has_capability(int cap) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("CapEff:", 0) != 0) continue;
    std::uint64_t mask = std::stoull(line.substr(7), nullptr, 16);
    return (mask >> cap) & 1U;
  }
  return false;
}

}  // namespace netcell
