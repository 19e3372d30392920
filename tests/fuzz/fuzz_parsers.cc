// libFuzzer target: the parsers of everything a user types — names, addresses, prefixes and
// --publish specs — and of what others write: packets from the kernel's log (the same bytes as an
// IPv4 or IPv6 packet) and lines of the denied-flow log. Nothing may crash, and whatever parses
// must print back to something that parses to the same value.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "linux/nflog.h"
#include "netcell/flowlog.h"
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
  if (auto flow = kernel::parse_logged_packet({data, size}, kernel::kLogPrefixRule)) {
    // Only a whole header of IPv4 or IPv6 parses, and the fields are the header's.
    if (size == 0) std::abort();
    if ((data[0] >> 4) == 4) {
      const std::size_t header = static_cast<std::size_t>(data[0] & 0x0F) * 4;
      if (size < 20 || header < 20 || header > size || flow->ip_protocol != data[9] ||
          !flow->source.is_v4() ||
          flow->source.v4_host_order() !=
              (std::uint32_t{data[12]} << 24 | data[13] << 16 | data[14] << 8 | data[15])) {
        std::abort();
      }
      if (flow->port != 0 &&
          (header + 4 > size || flow->port != (data[header + 2] << 8 | data[header + 3]))) {
        std::abort();
      }
    } else if ((data[0] >> 4) == 6) {
      // The source is bytes 8-23 of the fixed header; the protocol follows extension headers.
      if (size < 40 || flow->source.is_v4() ||
          std::memcmp(flow->source.bytes().data(), data + 8, 16) != 0) {
        std::abort();
      }
    } else {
      std::abort();
    }
  }
  if (auto record = parse_flow_log_line(text)) {
    auto again = parse_flow_log_line(to_json_line(*record));
    if (!again || !(*again == *record)) std::abort();
    (void)to_text(*record);
  }
  return 0;
}
