#include "core/ipam.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <utility>

#include "core/files.h"

namespace netcell {
namespace {

constexpr std::uint8_t kMinV4 = 8, kMaxV4 = 30, kMinV6 = 16, kMaxV6 = 126;
constexpr std::uint64_t kMaxV6Size = std::uint64_t{1} << 63;

// `address` with every bit after the first `len` cleared.
IpAddress masked(const IpAddress& address, std::uint8_t len) {
  if (address.is_v4()) {
    std::uint32_t mask = len == 0 ? 0 : ~std::uint32_t{0} << (32 - len);
    return IpAddress::v4(address.v4_host_order() & mask);
  }
  std::array<std::uint8_t, 16> bytes = address.bytes();
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    std::size_t bit = i * 8;
    if (bit >= len) {
      bytes[i] = 0;
    } else if (bit + 8 > len) {
      bytes[i] = static_cast<std::uint8_t>(bytes[i] & (0xff << (8 - (len - bit))));
    }
  }
  return IpAddress::v6(bytes);
}

// Bytes [from, from + 8) of an address as a big-endian number.
std::uint64_t load64(const std::array<std::uint8_t, 16>& bytes, std::size_t from) {
  std::uint64_t v = 0;
  for (std::size_t i = from; i < from + 8; ++i) v = (v << 8) | bytes[i];
  return v;
}

void store64(std::array<std::uint8_t, 16>& bytes, std::size_t from, std::uint64_t v) {
  for (std::size_t i = from + 8; i-- > from;) {
    bytes[i] = static_cast<std::uint8_t>(v & 0xff);
    v >>= 8;
  }
}

}  // namespace

Result<Subnet> Subnet::parse(std::string_view text) {
  auto prefix = IpPrefix::parse(text);
  if (!prefix) {
    return fail(ErrorCode::kInvalidArgument,
                "invalid subnet '" + std::string(text) + "': " + prefix.error().message());
  }
  auto subnet = from(*prefix);
  if (!subnet) return fail(subnet.error());
  return subnet;
}

Result<Subnet> Subnet::from(const IpPrefix& prefix) {
  auto bad = [&](const std::string& why) {
    return fail(ErrorCode::kInvalidArgument, "invalid subnet '" + prefix.to_string() + "': " + why);
  };
  bool v4 = prefix.address.is_v4();
  std::uint8_t lo = v4 ? kMinV4 : kMinV6, hi = v4 ? kMaxV4 : kMaxV6;
  if (prefix.prefix_len < lo || prefix.prefix_len > hi) {
    return bad("prefix length must be " + std::to_string(lo) + ".." + std::to_string(hi) +
               (v4 ? " for IPv4" : " for IPv6"));
  }
  IpAddress network = masked(prefix.address, prefix.prefix_len);
  if (network != prefix.address) {
    return bad("host bits set (did you mean " + IpPrefix{network, prefix.prefix_len}.to_string() +
               "?)");
  }
  Subnet out;
  out.base_ = network;
  out.prefix_len_ = prefix.prefix_len;
  return out;
}

bool Subnet::contains(const IpAddress& address) const {
  return address.family() == base_.family() && masked(address, prefix_len_) == base_;
}

bool Subnet::overlaps(const Subnet& other) const {
  if (other.base_.family() != base_.family()) return false;
  std::uint8_t len = std::min(prefix_len_, other.prefix_len_);
  return masked(base_, len) == masked(other.base_, len);
}

std::uint64_t Subnet::size() const {
  int host_bits = (base_.is_v4() ? 32 : 128) - prefix_len_;
  if (host_bits >= 63) return kMaxV6Size;
  return std::uint64_t{1} << host_bits;
}

IpAddress Subnet::at(std::uint64_t offset) const {
  if (base_.is_v4()) {
    return IpAddress::v4(base_.v4_host_order() + static_cast<std::uint32_t>(offset));
  }
  std::array<std::uint8_t, 16> bytes = base_.bytes();
  std::uint64_t low = load64(bytes, 8);
  std::uint64_t sum = low + offset;
  store64(bytes, 8, sum);
  if (sum < low) store64(bytes, 0, load64(bytes, 0) + 1);  // carry; unreachable for valid offsets
  return IpAddress::v6(bytes);
}

std::optional<std::uint64_t> Subnet::offset_of(const IpAddress& address) const {
  if (!contains(address)) return std::nullopt;
  if (base_.is_v4()) return std::uint64_t{address.v4_host_order() - base_.v4_host_order()};
  // Offsets are 64-bit: an address whose host part reaches into the upper 64 bits, or past the
  // saturated size(), has none.
  if (load64(address.bytes(), 0) != load64(base_.bytes(), 0)) return std::nullopt;
  std::uint64_t offset = load64(address.bytes(), 8) - load64(base_.bytes(), 8);
  if (offset >= size()) return std::nullopt;
  return offset;
}

std::string Subnet::to_string() const {
  return base_.to_string() + "/" + std::to_string(prefix_len_);
}

Result<IpPool> IpPool::open(std::string dir, Subnet subnet, std::uint32_t block_size,
                            std::uint64_t first_block) {
  if (dir.empty()) return fail(ErrorCode::kInvalidArgument, "empty address pool directory");
  if (block_size == 0 || block_size > subnet.size()) {
    return fail(ErrorCode::kInvalidArgument, "block size " + std::to_string(block_size) +
                                                 " does not fit in " + subnet.to_string());
  }
  std::uint64_t capacity = subnet.size() / block_size;
  if (first_block >= capacity) {
    return fail(ErrorCode::kInvalidArgument, "first block " + std::to_string(first_block) +
                                                 " is past the " + std::to_string(capacity) +
                                                 " blocks of " + subnet.to_string());
  }
  NETCELL_TRY(mkdir_parents(dir));
  return IpPool(std::move(dir), subnet, block_size, first_block, capacity);
}

Result<std::uint64_t> IpPool::allocate(const std::string& owner) {
  NETCELL_TRY(check_owner(owner));
  std::uint64_t usable = capacity_ - first_block_;
  std::uint64_t start = read_hint();
  // Each candidate's number is claimed with the owner's name (create_claim fails with EEXIST
  // when the block is taken, and a block never exists without its owner).
  for (std::uint64_t i = 0; i < usable; ++i) {
    std::uint64_t block = first_block_ + (start - first_block_ + i) % usable;
    if (auto claimed = create_claim(block_path(block), owner); !claimed) {
      if (claimed.error().sys_errno() == EEXIST) continue;
      return fail(claimed.error());
    }
    write_hint(block + 1);
    return block;
  }
  return fail(ErrorCode::kExhausted, "address pool " + subnet_.to_string() + " is exhausted (" +
                                         std::to_string(usable) + " blocks in use)");
}

Result<void> IpPool::reserve(std::uint64_t block, const std::string& owner) {
  NETCELL_TRY(check_owner(owner));
  NETCELL_TRY(check_block(block));
  if (auto claimed = create_claim(block_path(block), owner); !claimed) {
    if (claimed.error().sys_errno() != EEXIST) return fail(claimed.error());
    std::string holder = owner_of(block).value_or("");
    return fail(ErrorCode::kConflict, "address " + block_address(block).to_string() +
                                          " is already in use" +
                                          (holder.empty() ? std::string() : " by " + holder));
  }
  return ok();
}

Result<void> IpPool::release(std::uint64_t block, const std::string& owner) {
  NETCELL_TRY(check_block(block));
  std::string path = block_path(block);
  auto holder = read_claim(path);
  if (!holder) {
    if (holder.error().sys_errno() == ENOENT) return ok();
    return fail(holder.error());
  }
  if (*holder != owner) {
    return fail(ErrorCode::kConflict, "address " + block_address(block).to_string() +
                                          " is held by " + *holder + ", not " + owner);
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return fail_errno("remove " + path, errno);
  return ok();
}

std::optional<std::string> IpPool::owner_of(std::uint64_t block) const {
  auto holder = read_claim(block_path(block));
  if (!holder) return std::nullopt;
  return std::move(*holder);
}

IpAddress IpPool::block_address(std::uint64_t block, std::uint64_t offset_in_block) const {
  return subnet_.at(block * block_size_ + offset_in_block);
}

std::optional<std::uint64_t> IpPool::block_of(const IpAddress& address) const {
  auto offset = subnet_.offset_of(address);
  if (!offset) return std::nullopt;
  std::uint64_t block = *offset / block_size_;
  if (block < first_block_ || block >= capacity_) return std::nullopt;
  return block;
}

std::string IpPool::block_path(std::uint64_t block) const {
  return dir_ + "/" + std::to_string(block);
}

Result<void> IpPool::check_block(std::uint64_t block) const {
  if (block < first_block_ || block >= capacity_) {
    return fail(ErrorCode::kInvalidArgument, "block " + std::to_string(block) +
                                                 " is outside address pool " + subnet_.to_string());
  }
  return ok();
}

Result<void> IpPool::check_owner(const std::string& owner) {
  if (owner.empty() || owner.size() > kMaxClaimBytes || owner.find('\0') != std::string::npos) {
    return fail(ErrorCode::kInvalidArgument,
                "an address owner needs a name of 1 to 4095 bytes without NUL");
  }
  return ok();
}

std::uint64_t IpPool::read_hint() const {
  auto text = read_claim(dir_ + "/next");
  if (!text) return first_block_;
  std::string_view digits = *text;
  if (digits.ends_with('\n')) digits.remove_suffix(1);
  std::uint64_t hint = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), hint);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() ||
      hint < first_block_ || hint >= capacity_) {
    return first_block_;
  }
  return hint;
}

void IpPool::write_hint(std::uint64_t next) const {
  // Best effort: a lost hint only costs a longer scan, so its failure does not undo the
  // allocation.
  (void)replace_claim(dir_ + "/next", std::to_string(next));
}

}  // namespace netcell
