// libFuzzer target: the parsers of everything a user types — names, addresses, prefixes and
// --publish specs. Nothing may crash, and whatever parses must print back to something that
// parses to the same value.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "netcell/types.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  using namespace netcell;
  if (auto a = IpAddress::parse(text)) {
    if (*IpAddress::parse(a->to_string()) != *a) std::abort();
  }
  if (auto p = IpPrefix::parse(text)) {
    if (*IpPrefix::parse(p->to_string()) != *p) std::abort();
  }
  if (auto f = PortForward::parse(text)) {
    auto again = PortForward::parse(f->to_string());
    if (!again || *again != *f || f->host_port == 0 || f->container_port == 0) std::abort();
  }
  if (auto id = NamespaceId::parse(text)) {
    if (id->str().find('/') != std::string::npos || id->str() == "..") std::abort();
  }
  (void)validate_interface_name(text);
  (void)parse_isolation_mode(text);
  return 0;
}
