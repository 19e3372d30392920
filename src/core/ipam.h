// netcell: address management — subnets, and pools that hand out blocks of addresses exactly once,
// also across concurrent processes, at a cost that does not grow with the number handed out.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "netcell/result.h"
#include "netcell/types.h"

namespace netcell {

// An IPv4 or IPv6 network: "10.209.0.0/16".
class Subnet {
 public:
  // Requires ADDR/LEN with every host bit zero: "10.0.0.1/24" is refused with a hint naming
  // "10.0.0.0/24". IPv4 lengths 8..30 (a pool needs room), IPv6 lengths 16..126.
  static Result<Subnet> parse(std::string_view text);
  static Result<Subnet> from(const IpPrefix& prefix);  // same rules

  const IpAddress& base() const { return base_; }
  std::uint8_t prefix_len() const { return prefix_len_; }
  bool contains(const IpAddress& address) const;
  bool overlaps(const Subnet& other) const;
  // Number of addresses (saturates at 2^63 for IPv6).
  std::uint64_t size() const;
  // base + offset; offset must be < size().
  IpAddress at(std::uint64_t offset) const;
  // The offset of `address` inside the subnet; nullopt if outside (or, for IPv6, if the offset
  // does not fit the 64-bit offsets or reaches past the saturated size()).
  std::optional<std::uint64_t> offset_of(const IpAddress& address) const;
  std::string to_string() const;
  friend bool operator==(const Subnet&, const Subnet&) = default;

 private:
  IpAddress base_;
  std::uint8_t prefix_len_ = 0;
};

// A pool of equal blocks of `block_size` addresses in `subnet`, numbered 0..capacity()-1, each
// handed out at most once. Blocks below `first_block` are never handed out (e.g. the gateway).
// State is one file per taken block in `dir`, named by the block's number and holding the owner's
// name (created exclusively: a hard link of a filled temp file, which fails with EEXIST like
// O_CREAT|O_EXCL but never shows an empty file), plus a `next` hint file, so allocate/release cost
// O(1) whatever the number taken, and two processes can never take the same block even without
// the run-dir lock. `dir` is created (mode 0700, with its parents) by open().
class IpPool {
 public:
  static Result<IpPool> open(std::string dir, Subnet subnet, std::uint32_t block_size,
                             std::uint64_t first_block = 0);

  // The next free block at or after the hint (wrapping once around); kExhausted when none.
  // Allocation moves round-robin, so a just-released block is reused as late as possible (its
  // host-side link may still be disappearing, notes §1.4).
  Result<std::uint64_t> allocate(const std::string& owner);
  // Takes a specific block (a static address); kConflict if taken, kInvalidArgument if outside.
  Result<void> reserve(std::uint64_t block, const std::string& owner);
  // Frees a block taken by `owner`; a block that is free or owned by someone else is left as it
  // is (success for the former, kConflict for the latter).
  Result<void> release(std::uint64_t block, const std::string& owner);
  // Who holds a block, if anyone.
  std::optional<std::string> owner_of(std::uint64_t block) const;

  std::uint64_t capacity() const { return capacity_; }
  const Subnet& subnet() const { return subnet_; }
  // First address of a block.
  IpAddress block_address(std::uint64_t block, std::uint64_t offset_in_block = 0) const;
  // The block containing `address`; nullopt if outside the pool (blocks below first_block are
  // not part of it).
  std::optional<std::uint64_t> block_of(const IpAddress& address) const;

 private:
  IpPool(std::string dir, Subnet subnet, std::uint32_t block_size, std::uint64_t first_block,
         std::uint64_t capacity)
      : dir_(std::move(dir)),
        subnet_(subnet),
        block_size_(block_size),
        first_block_(first_block),
        capacity_(capacity) {}
  std::string block_path(std::uint64_t block) const;
  Result<void> check_block(std::uint64_t block) const;
  static Result<void> check_owner(const std::string& owner);
  std::uint64_t read_hint() const;
  void write_hint(std::uint64_t next) const;

  std::string dir_;
  Subnet subnet_;
  std::uint32_t block_size_;
  std::uint64_t first_block_;
  std::uint64_t capacity_;
};

}  // namespace netcell
