#include "core/ipam.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace netcell {
namespace {

namespace fs = std::filesystem;

Subnet subnet(std::string_view text) {
  auto s = Subnet::parse(text);
  EXPECT_TRUE(s) << s.error().to_string();
  return s ? *s : Subnet();
}

IpAddress ip(std::string_view text) {
  auto a = IpAddress::parse(text);
  EXPECT_TRUE(a) << text;
  return a ? *a : IpAddress();
}

TEST(SubnetTest, ParsesNetworks) {
  auto s = Subnet::parse("10.209.0.0/16");
  ASSERT_TRUE(s) << s.error().to_string();
  EXPECT_EQ(s->base(), ip("10.209.0.0"));
  EXPECT_EQ(s->prefix_len(), 16);
  EXPECT_EQ(s->to_string(), "10.209.0.0/16");
  EXPECT_TRUE(Subnet::parse("10.0.0.0/8"));
  EXPECT_TRUE(Subnet::parse("10.0.0.4/30"));
  auto v6 = Subnet::parse("fd00:1::/64");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->to_string(), "fd00:1::/64");
  EXPECT_TRUE(Subnet::parse("fd00::/16"));
  EXPECT_TRUE(Subnet::parse("fd00::4/126"));
}

TEST(SubnetTest, RefusesHostBitsWithAHint) {
  auto s = Subnet::parse("10.0.0.1/24");
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(s.error().message(),
            "invalid subnet '10.0.0.1/24': host bits set (did you mean 10.0.0.0/24?)");
  auto v6 = Subnet::parse("fd00::1/64");
  ASSERT_FALSE(v6);
  EXPECT_NE(v6.error().message().find("did you mean fd00::/64?"), std::string::npos);
  auto from = Subnet::from(IpPrefix{ip("192.168.1.130"), 25});
  ASSERT_FALSE(from);
  EXPECT_NE(from.error().message().find("192.168.1.128/25"), std::string::npos);
}

TEST(SubnetTest, RefusesLengthsOutsideThePoolRange) {
  auto s = Subnet::parse("10.0.0.0/31");
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(s.error().message(),
            "invalid subnet '10.0.0.0/31': prefix length must be 8..30 for IPv4");
  for (const char* text :
       {"10.0.0.0/32", "10.0.0.0/7", "0.0.0.0/0", "fd00::/127", "fd00::/128", "fd00::/8"}) {
    auto r = Subnet::parse(text);
    ASSERT_FALSE(r) << text;
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument) << text;
    EXPECT_NE(r.error().message().find("prefix length must be"), std::string::npos) << text;
  }
  auto v6 = Subnet::parse("fd00::/127");
  EXPECT_NE(v6.error().message().find("16..126 for IPv6"), std::string::npos);
}

TEST(SubnetTest, RefusesGarbage) {
  for (const char* text :
       {"", "10.0.0.0", "10.0.0.0/", "/24", "10.0.0/24", "abc/24", "10.0.0.0/24x", "10.0.0.0/33",
        "10.0.0.0/-1", "fd00::/129", "10.0.0.0/24/1", " 10.0.0.0/24"}) {
    auto r = Subnet::parse(text);
    ASSERT_FALSE(r) << text;
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument) << text;
    EXPECT_EQ(r.error().message().rfind("invalid subnet '", 0), 0U) << r.error().message();
    EXPECT_EQ(r.error().message().find('\n'), std::string::npos);
  }
}

TEST(SubnetTest, Contains) {
  Subnet s = subnet("10.209.0.0/16");
  EXPECT_TRUE(s.contains(ip("10.209.0.0")));
  EXPECT_TRUE(s.contains(ip("10.209.255.255")));
  EXPECT_FALSE(s.contains(ip("10.208.255.255")));
  EXPECT_FALSE(s.contains(ip("10.210.0.0")));
  EXPECT_FALSE(s.contains(ip("::ffff:10.209.0.1")));
  Subnet v6 = subnet("fd00:1::/64");
  EXPECT_TRUE(v6.contains(ip("fd00:1::ffff:ffff:ffff:ffff")));
  EXPECT_FALSE(v6.contains(ip("fd00:1:0:1::")));
  EXPECT_FALSE(v6.contains(ip("10.209.0.1")));
}

TEST(SubnetTest, Overlaps) {
  Subnet big = subnet("10.0.0.0/8");
  Subnet inner = subnet("10.209.0.0/16");
  Subnet low = subnet("10.209.0.0/24");
  Subnet adjacent = subnet("10.209.1.0/24");
  Subnet other = subnet("192.168.0.0/16");
  EXPECT_TRUE(big.overlaps(inner));  // nested, both ways
  EXPECT_TRUE(inner.overlaps(big));
  EXPECT_TRUE(inner.overlaps(inner));  // equal
  EXPECT_FALSE(low.overlaps(adjacent));
  EXPECT_FALSE(adjacent.overlaps(low));
  EXPECT_FALSE(big.overlaps(other));
  EXPECT_FALSE(other.overlaps(big));
  Subnet v6 = subnet("fd00::/16");
  EXPECT_TRUE(v6.overlaps(subnet("fd00:1::/64")));
  EXPECT_FALSE(subnet("fd00::/64").overlaps(subnet("fd00:0:0:1::/64")));
  // Never across families, even when the bytes match.
  EXPECT_FALSE(subnet("10.0.0.0/8").overlaps(subnet("a00::/16")));
  EXPECT_FALSE(subnet("a00::/16").overlaps(subnet("10.0.0.0/8")));
}

TEST(SubnetTest, SizeAtAndOffsetRoundTrip) {
  Subnet s = subnet("10.209.0.0/16");
  EXPECT_EQ(s.size(), 65536U);
  EXPECT_EQ(subnet("10.0.0.0/8").size(), 1U << 24);
  EXPECT_EQ(subnet("10.0.0.4/30").size(), 4U);
  EXPECT_EQ(s.at(0), ip("10.209.0.0"));
  EXPECT_EQ(s.at(258), ip("10.209.1.2"));
  EXPECT_EQ(s.at(65535), ip("10.209.255.255"));
  for (std::uint64_t offset : {0ULL, 1ULL, 255ULL, 256ULL, 40000ULL, 65535ULL}) {
    EXPECT_EQ(s.offset_of(s.at(offset)), offset);
  }
  EXPECT_EQ(s.offset_of(ip("10.210.0.0")), std::nullopt);
  EXPECT_EQ(s.offset_of(ip("fd00::1")), std::nullopt);
}

TEST(SubnetTest, Ipv6Arithmetic) {
  Subnet s = subnet("fd00:1::/120");
  EXPECT_EQ(s.size(), 256U);
  EXPECT_EQ(s.at(255), ip("fd00:1::ff"));
  Subnet wide = subnet("fd00:1::/64");
  EXPECT_EQ(wide.size(), std::uint64_t{1} << 63);  // saturated
  EXPECT_EQ(wide.at(0x10002), ip("fd00:1::1:2"));
  EXPECT_EQ(wide.offset_of(ip("fd00:1::1:2")), 0x10002U);
  Subnet mid = subnet("fd00:1::/96");
  EXPECT_EQ(mid.size(), std::uint64_t{1} << 32);
  EXPECT_EQ(mid.offset_of(mid.at(0xfffffffe)), 0xfffffffeU);
  // Shorter than /64: offsets index from the base through the low 64 bits only.
  Subnet huge = subnet("fd00::/48");
  EXPECT_EQ(huge.size(), std::uint64_t{1} << 63);
  EXPECT_EQ(huge.at(7), ip("fd00::7"));
  EXPECT_EQ(huge.offset_of(ip("fd00::7")), 7U);
  EXPECT_TRUE(huge.contains(ip("fd00:0:0:1::7")));
  EXPECT_EQ(huge.offset_of(ip("fd00:0:0:1::7")), std::nullopt);  // beyond 64-bit offsets
}

class PoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/netcell-ipam-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  IpPool pool(std::string_view cidr, std::uint32_t block_size, std::uint64_t first_block = 0) {
    auto p = IpPool::open(dir_ + "/pools/p", subnet(cidr), block_size, first_block);
    EXPECT_TRUE(p) << p.error().to_string();
    return std::move(*p);
  }

  // A claim's value, read back without netcell: the target of the symbolic link.
  static std::string claim(const std::string& path) {
    std::error_code ec;
    auto target = fs::read_symlink(path, ec);
    return ec ? "(" + ec.message() + ")" : target.string();
  }
  // A hint or claim file as an earlier netcell wrote it (a regular file, replacing a claim).
  void write_old_file(const std::string& path, const std::string& text) {
    fs::remove(path);
    std::ofstream(path) << text;
  }

  std::string dir_;
};

TEST_F(PoolTest, OpenCreatesThePrivateDirectoryAndChecksItsArguments) {
  IpPool p = pool("10.209.0.0/16", 4);
  EXPECT_EQ(p.capacity(), 16384U);
  EXPECT_EQ(p.subnet(), subnet("10.209.0.0/16"));
  auto st = fs::status(dir_ + "/pools/p");
  EXPECT_TRUE(fs::is_directory(st));
  EXPECT_EQ(st.permissions() & fs::perms::all, fs::perms::owner_all);
  Subnet s = subnet("10.0.0.0/28");
  for (auto [block, first] : {std::pair{0U, 0ULL}, {32U, 0ULL}, {4U, 4ULL}}) {
    auto r = IpPool::open(dir_ + "/bad", s, block, first);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  }
  EXPECT_TRUE(IpPool::open(dir_ + "/again/p", s, 4, 3));  // existing parents are fine
  EXPECT_TRUE(IpPool::open(dir_ + "/again/p", s, 4, 3));
}

TEST_F(PoolTest, HandsOutBlocksFromFirstBlockWithTheirAddresses) {
  IpPool p = pool("10.209.0.0/16", 4, 1);
  auto a = p.allocate("web");
  ASSERT_TRUE(a) << a.error().to_string();
  EXPECT_EQ(*a, 1U);
  EXPECT_EQ(p.block_address(*a), ip("10.209.0.4"));
  EXPECT_EQ(p.block_address(*a, 1), ip("10.209.0.5"));
  EXPECT_EQ(p.block_address(*a, 2), ip("10.209.0.6"));
  EXPECT_EQ(p.owner_of(*a), "web");
  EXPECT_EQ(claim(dir_ + "/pools/p/1"), "web");
  auto b = p.allocate("db");
  ASSERT_TRUE(b);
  EXPECT_EQ(*b, 2U);
  EXPECT_EQ(p.block_address(*b, 1), ip("10.209.0.9"));
  EXPECT_EQ(p.block_of(ip("10.209.0.10")), 2U);
  EXPECT_EQ(p.block_of(ip("10.209.255.255")), 16383U);
  EXPECT_EQ(p.block_of(ip("10.209.0.2")), std::nullopt);  // block 0 is below first_block
  EXPECT_EQ(p.block_of(ip("10.210.0.1")), std::nullopt);
  EXPECT_EQ(p.owner_of(3), std::nullopt);
}

TEST_F(PoolTest, NeverHandsOutABlockTwiceAndNamesTheSubnetWhenExhausted) {
  IpPool p = pool("10.0.0.0/28", 4);
  ASSERT_EQ(p.capacity(), 4U);
  std::set<std::uint64_t> seen;
  for (int i = 0; i < 4; ++i) {
    auto b = p.allocate("ns" + std::to_string(i));
    ASSERT_TRUE(b) << b.error().to_string();
    EXPECT_TRUE(seen.insert(*b).second) << *b;
  }
  auto fifth = p.allocate("ns4");
  ASSERT_FALSE(fifth);
  EXPECT_EQ(fifth.error().code(), ErrorCode::kExhausted);
  EXPECT_EQ(fifth.error().message(), "address pool 10.0.0.0/28 is exhausted (4 blocks in use)");
  // Only block files and the hint are left: no temp files.
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(dir_ + "/pools/p")) {
    names.insert(e.path().filename().string());
  }
  EXPECT_EQ(names, (std::set<std::string>{"0", "1", "2", "3", "next"}));
}

TEST_F(PoolTest, ExhaustionOfALargePoolCountsItsBlocks) {
  IpPool p = pool("10.209.0.0/16", 4);
  for (std::uint64_t b = 0; b < p.capacity(); ++b) {
    std::ofstream(dir_ + "/pools/p/" + std::to_string(b)) << "x";
  }
  auto r = p.allocate("late");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "address pool 10.209.0.0/16 is exhausted (16384 blocks in use)");
}

TEST_F(PoolTest, ReleasedBlocksAreReusedRoundRobin) {
  IpPool p = pool("10.0.0.0/28", 4);
  ASSERT_EQ(*p.allocate("a"), 0U);
  ASSERT_EQ(*p.allocate("b"), 1U);
  ASSERT_EQ(*p.allocate("c"), 2U);
  ASSERT_TRUE(p.release(1, "b"));
  EXPECT_EQ(p.owner_of(1), std::nullopt);
  EXPECT_EQ(*p.allocate("d"), 3U);  // not the just-released 1 while 3 is free
  EXPECT_EQ(*p.allocate("e"), 1U);  // after the wrap
  ASSERT_TRUE(p.release(3, "d"));
  ASSERT_TRUE(p.release(0, "a"));
  EXPECT_EQ(*p.allocate("f"), 3U);  // the hint moved past 1: 3 comes before 0
  EXPECT_EQ(*p.allocate("g"), 0U);
}

TEST_F(PoolTest, ReserveTakesAGivenBlockOrReportsItsOwner) {
  IpPool p = pool("10.0.0.0/24", 1, 2);
  auto five = p.block_of(ip("10.0.0.5"));
  ASSERT_EQ(five, 5U);
  ASSERT_TRUE(p.reserve(*five, "web"));
  EXPECT_EQ(p.owner_of(5), "web");
  auto again = p.reserve(5, "db");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), ErrorCode::kConflict);
  EXPECT_EQ(again.error().message(), "address 10.0.0.5 is already in use by web");
  EXPECT_EQ(p.owner_of(5), "web");
  for (std::uint64_t outside : {0ULL, 1ULL, 256ULL}) {
    auto r = p.reserve(outside, "x");
    ASSERT_FALSE(r) << outside;
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  }
  EXPECT_FALSE(p.reserve(7, ""));  // an owner needs a name
  // allocate skips a reserved block.
  ASSERT_TRUE(p.reserve(2, "gw"));
  EXPECT_EQ(*p.allocate("a"), 3U);
}

TEST_F(PoolTest, ClaimsAreAtomicValuesAndOldClaimFilesStillCount) {
  IpPool p = pool("10.0.0.0/24", 1, 2);
  ASSERT_TRUE(p.reserve(9, "web"));
  EXPECT_TRUE(fs::is_symlink(dir_ + "/pools/p/9"));
  EXPECT_EQ(claim(dir_ + "/pools/p/9"), "web");
  // A block file as an earlier netcell wrote it: read, respected and released like a claim.
  write_old_file(dir_ + "/pools/p/5", "db");
  EXPECT_EQ(p.owner_of(5), "db");
  auto taken = p.reserve(5, "web");
  ASSERT_FALSE(taken);
  EXPECT_EQ(taken.error().message(), "address 10.0.0.5 is already in use by db");
  EXPECT_EQ(p.release(5, "web").error().code(), ErrorCode::kConflict);
  EXPECT_TRUE(p.release(5, "db"));
  EXPECT_FALSE(fs::exists(dir_ + "/pools/p/5"));
  // An owner is what a claim can hold: 1 to 4095 bytes, no NUL.
  EXPECT_TRUE(p.reserve(10, std::string(4095, 'a')));
  EXPECT_EQ(p.owner_of(10), std::string(4095, 'a'));
  for (const std::string& bad : {std::string(4096, 'a'), std::string("w\0b", 3)}) {
    auto r = p.reserve(11, bad);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  }
  EXPECT_FALSE(fs::exists(dir_ + "/pools/p/11"));
}

TEST_F(PoolTest, ReleaseOnlyByTheOwner) {
  IpPool p = pool("10.0.0.0/28", 4);
  ASSERT_EQ(*p.allocate("web"), 0U);
  auto wrong = p.release(0, "db");
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code(), ErrorCode::kConflict);
  EXPECT_EQ(p.owner_of(0), "web");
  EXPECT_TRUE(p.release(0, "web"));
  EXPECT_EQ(p.owner_of(0), std::nullopt);
  EXPECT_TRUE(p.release(0, "web"));     // idempotent
  EXPECT_TRUE(p.release(2, "anyone"));  // never taken
  EXPECT_FALSE(p.release(4, "web"));    // outside
}

TEST_F(PoolTest, ToleratesACorruptOrStaleHint) {
  IpPool p = pool("10.0.0.0/28", 4, 1);
  for (const char* hint : {"garbage", "", "99\n", "0", "-1", "2x", "18446744073709551616"}) {
    write_old_file(dir_ + "/pools/p/next", hint);
    auto b = p.allocate(std::string("owner-") + hint);
    ASSERT_TRUE(b) << hint << ": " << b.error().to_string();
    EXPECT_EQ(*b, 1U) << hint;
    ASSERT_TRUE(p.release(*b, std::string("owner-") + hint));
  }
  write_old_file(dir_ + "/pools/p/next", "3\n");
  EXPECT_EQ(*p.allocate("x"), 3U);
  EXPECT_EQ(claim(dir_ + "/pools/p/next"), "4");
  EXPECT_EQ(*p.allocate("y"), 1U);  // from the hint as this netcell writes it, past the end
  EXPECT_EQ(claim(dir_ + "/pools/p/next"), "2");
}

TEST_F(PoolTest, ConcurrentProcessesNeverShareABlock) {
  constexpr int kProcs = 8, kEach = 50;
  // Exactly 400 usable blocks: every one must be taken, none twice, and a 401st is refused.
  const std::string pool_dir = dir_ + "/pools/p";
  auto opened = IpPool::open(pool_dir, subnet("10.1.0.0/23"), 1, 112);
  ASSERT_TRUE(opened);
  ASSERT_EQ(opened->capacity() - 112, std::uint64_t{kProcs * kEach});
  std::vector<pid_t> children;
  for (int c = 0; c < kProcs; ++c) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      auto p = IpPool::open(pool_dir, subnet("10.1.0.0/23"), 1, 112);
      if (!p) ::_exit(2);
      std::ofstream out(dir_ + "/out-" + std::to_string(c));
      for (int i = 0; i < kEach; ++i) {
        auto b = p->allocate("child-" + std::to_string(c));
        if (!b) ::_exit(3);
        out << *b << "\n";
      }
      out.close();
      ::_exit(out ? 0 : 4);
    }
    children.push_back(pid);
  }
  for (pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  }
  std::set<std::uint64_t> all;
  for (int c = 0; c < kProcs; ++c) {
    std::ifstream in(dir_ + "/out-" + std::to_string(c));
    std::uint64_t b = 0;
    int count = 0;
    while (in >> b) {
      ++count;
      EXPECT_TRUE(all.insert(b).second) << "block " << b << " handed out twice";
      EXPECT_EQ(opened->owner_of(b), "child-" + std::to_string(c)) << b;
    }
    EXPECT_EQ(count, kEach);
  }
  EXPECT_EQ(all.size(), std::size_t{kProcs * kEach});
  EXPECT_EQ(*all.begin(), 112U);
  auto extra = opened->allocate("late");
  ASSERT_FALSE(extra);
  EXPECT_EQ(extra.error().code(), ErrorCode::kExhausted);
}

}  // namespace
}  // namespace netcell
