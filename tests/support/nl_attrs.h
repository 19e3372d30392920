// netcell tests: walking the attributes of a netlink message built by a request builder, so that
// unit tests can check its wire format attribute by attribute.
#pragma once

#include <gtest/gtest.h>
#include <libmnl/libmnl.h>

#include <cstdint>
#include <vector>

namespace netcell::testing {

// The attributes in [begin, end), in order; the test fails on any that overruns the range.
inline std::vector<const nlattr*> attrs_in(const std::uint8_t* begin, const std::uint8_t* end) {
  std::vector<const nlattr*> out;
  const std::uint8_t* pos = begin;
  while (pos < end) {
    const auto* attr = reinterpret_cast<const nlattr*>(pos);
    const int left = static_cast<int>(end - pos);
    EXPECT_TRUE(left >= static_cast<int>(sizeof(nlattr)) && mnl_attr_ok(attr, left))
        << "bad attribute at offset " << (pos - begin);
    if (!mnl_attr_ok(attr, left)) break;
    out.push_back(attr);
    pos += MNL_ALIGN(attr->nla_len);
  }
  EXPECT_EQ(pos, end) << "attributes do not fill their container exactly";
  return out;
}

}  // namespace netcell::testing
