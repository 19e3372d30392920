// libFuzzer target: the topology file parser (YAML -> validated Topology). Property: it never
// crashes, and a file it accepts parses to the same topology again (digests included).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "netcell/topology.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = netcell::parse_topology(text, "fuzz.yaml");
  if (parsed.topology.has_value() == !parsed.errors.empty()) __builtin_trap();
  for (const auto& e : parsed.errors) {
    if (e.to_string().empty()) __builtin_trap();
  }
  if (parsed.topology) {
    auto again = netcell::parse_topology(text, "fuzz.yaml");
    if (!again.topology || again.topology->namespaces.size() != parsed.topology->namespaces.size())
      __builtin_trap();
    for (std::size_t i = 0; i < again.topology->namespaces.size(); ++i) {
      if (again.topology->namespaces[i].config.topology.digest !=
          parsed.topology->namespaces[i].config.topology.digest)
        __builtin_trap();
    }
  }
  return 0;
}
