// libFuzzer target: the state-record reader. Any bytes on disk must give a record or a kCorrupt
// error — never a crash, an exception or a record naming a path outside the netns dir's rules.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "core/serialize.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;
  if (auto info = netcell::namespace_info_from_json(j)) {
    if (!netcell::NamespaceId::parse(info->name)) std::abort();
    // What was read must serialise and read back to the same value.
    auto again = netcell::namespace_info_from_json(netcell::to_json(*info));
    if (!again || *again != *info) std::abort();
  } else if (info.error().code() != netcell::ErrorCode::kCorrupt) {
    std::abort();
  }
  if (auto net = netcell::network_info_from_json(j)) {
    auto again = netcell::network_info_from_json(netcell::to_json(*net));
    if (!again || *again != *net) std::abort();
  }
  return 0;
}
