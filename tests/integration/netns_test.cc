// Named network namespaces and rtnetlink against the real kernel, checked through iproute2 and
// /proc. PRIVILEGED: every test runs in its own throwaway world (tests/support/world.sh).
#include "linux/netns.h"

#include <gtest/gtest.h>
#include <net/if.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <optional>
#include <sstream>

#include "linux/netlink.h"
#include "support/process.h"

namespace netcell::kernel {
namespace {

using netcell::testing::in_world;
using netcell::testing::ip_json;
using netcell::testing::link_names;
using netcell::testing::run;

constexpr char kDir[] = "/run/netns";  // in a world, /run is a private tmpfs

// Whether `ip netns list` shows `name`. Tests look only at their own names, so they also pass when
// run one after another in a single world.
bool iproute2_lists(const std::string& name) {
  for (const auto& ns : ip_json({"netns", "list"})) {
    if (ns.value("name", "") == name) return true;
  }
  return false;
}

// Mount points from /proc/self/mountinfo (field 5), each with its optional fields.
std::vector<std::pair<std::string, std::string>> mounts() {
  std::vector<std::pair<std::string, std::string>> out;
  std::ifstream in("/proc/self/mountinfo");
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string id, parent, dev, root, mount_point, options, optional;
    fields >> id >> parent >> dev >> root >> mount_point >> options;
    for (std::string field; fields >> field && field != "-";) optional += field + " ";
    out.emplace_back(mount_point, optional);
  }
  return out;
}

int mount_count(const std::string& path) {
  auto all = mounts();
  return static_cast<int>(
      std::count_if(all.begin(), all.end(), [&](const auto& m) { return m.first == path; }));
}

std::uint64_t own_netns_inode() {
  Result<std::uint64_t> inode = netns_inode_of_path("/proc/thread-self/ns/net");
  EXPECT_TRUE(inode);
  return inode ? *inode : 0;
}

// Opens an rtnetlink socket inside the namespace at `path`; it stays bound there (notes §2.5).
Result<NetlinkSocket> socket_in(const std::string& path) {
  Result<UniqueFd> fd = open_netns(path);
  if (!fd) return fail(std::move(fd).error());
  return open_netlink_in(fd->get());
}

const LinkRecord* find_link(const std::vector<LinkRecord>& links, const std::string& name) {
  for (const auto& link : links) {
    if (link.name == name) return &link;
  }
  return nullptr;
}

TEST(NetnsTest, PrepareDirMakesOneSharedMountIdempotently) {
  if (!in_world()) GTEST_FAIL() << "run through tests/support/world.sh";
  ASSERT_TRUE(prepare_netns_dir(kDir));
  ASSERT_TRUE(prepare_netns_dir(kDir));
  EXPECT_EQ(mount_count(kDir), 1);
  for (const auto& [point, optional] : mounts()) {
    if (point == kDir) {
      EXPECT_NE(optional.find("shared:"), std::string::npos) << optional;
    }
  }
  // A nested directory that does not exist yet is created (mkdir -p).
  ASSERT_TRUE(prepare_netns_dir("/run/netcell/deep/ns"));
  EXPECT_EQ(mount_count("/run/netcell/deep/ns"), 1);
}

TEST(NetnsTest, CreatedNamespaceIsVisibleToIproute2WithLoUp) {
  if (!in_world()) GTEST_FAIL() << "run through tests/support/world.sh";
  ASSERT_TRUE(prepare_netns_dir(kDir));
  // A link only the world has: the returned socket must not see it.
  ASSERT_EQ(run({"ip", "link", "add", "worldonly", "type", "veth", "peer", "name", "worldpeer"})
                .exit_code,
            0);
  auto created = create_named_netns(kDir, "alpha");
  ASSERT_TRUE(created) << created.error().to_string();
  // The socket it returns is bound inside the new namespace, not the caller's.
  auto seen = list_links(*created);
  ASSERT_TRUE(seen);
  ASSERT_EQ(seen->size(), 1u);
  EXPECT_EQ((*seen)[0].name, "lo");

  EXPECT_TRUE(iproute2_lists("alpha"));
  EXPECT_TRUE(is_netns_mount("/run/netns/alpha"));
  auto links = ip_json({"-n", "alpha", "link"});
  ASSERT_EQ(links.size(), 1u) << links.dump();
  EXPECT_EQ(links[0].value("ifname", ""), "lo");
  auto flags = links[0].value("flags", std::vector<std::string>{});
  EXPECT_NE(std::find(flags.begin(), flags.end(), "UP"), flags.end()) << links.dump();
  EXPECT_EQ(run({"ip", "netns", "exec", "alpha", "true"}).exit_code, 0);

  // A different namespace from the world's, and the creating thread did not stay in it.
  Result<std::uint64_t> inode = netns_inode_of_path("/run/netns/alpha");
  ASSERT_TRUE(inode);
  EXPECT_NE(*inode, own_netns_inode());
  EXPECT_NE(*inode, *netns_inode_of_path("/proc/self/ns/net"));
}

TEST(NetnsTest, WorksInAnyPreparedDirectory) {
  if (!in_world()) GTEST_FAIL() << "run through tests/support/world.sh";
  const std::string dir = "/run/netcell/ns";
  ASSERT_TRUE(prepare_netns_dir(dir));
  ASSERT_TRUE(create_named_netns(dir, "beta"));
  EXPECT_TRUE(is_netns_mount(dir + "/beta"));
  EXPECT_FALSE(iproute2_lists("beta"));  // iproute2 only looks in /run/netns
  EXPECT_EQ(run({"nsenter", "--net=" + dir + "/beta", "true"}).exit_code, 0);
  EXPECT_TRUE(remove_named_netns(dir, "beta"));
}

TEST(NetnsTest, DuplicateNameIsAlreadyExistsAndLeavesTheFirstAlone) {
  if (!in_world()) GTEST_FAIL() << "run through tests/support/world.sh";
  ASSERT_TRUE(prepare_netns_dir(kDir));
  ASSERT_TRUE(create_named_netns(kDir, "dup"));
  Result<std::uint64_t> before = netns_inode_of_path("/run/netns/dup");
  ASSERT_TRUE(before);

  auto again = create_named_netns(kDir, "dup");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), ErrorCode::kAlreadyExists);
  EXPECT_NE(again.error().message().find("dup"), std::string::npos);

  EXPECT_TRUE(is_netns_mount("/run/netns/dup"));
  EXPECT_EQ(*netns_inode_of_path("/run/netns/dup"), *before);
  EXPECT_EQ(mount_count("/run/netns/dup"), 1);
  EXPECT_EQ(link_names("dup"), std::vector<std::string>{"lo"});
}

TEST(NetnsTest, InvalidNamesAreRejected) {
  if (!in_world()) GTEST_FAIL() << "run through tests/support/world.sh";
  ASSERT_TRUE(prepare_netns_dir(kDir));
  for (const char* name : {"", ".", "..", "a/b"}) {
    auto created = create_named_netns(kDir, name);
    ASSERT_FALSE(created) << name;
    EXPECT_EQ(created.error().code(), ErrorCode::kInvalidArgument);
  }
  EXPECT_NE(::access("/run/netns/a", F_OK), 0);
}

TEST(NetnsTest, RemoveLeavesNoFileNoMountAndIsIdempotent) {
  if (!in_world()) GTEST_FAIL() << "run through tests/support/world.sh";
  ASSERT_TRUE(prepare_netns_dir(kDir));
  ASSERT_TRUE(create_named_netns(kDir, "gone"));
  ASSERT_EQ(mount_count("/run/netns/gone"), 1);
  ASSERT_TRUE(iproute2_lists("gone"));

  Result<void> removed = remove_named_netns(kDir, "gone");
  ASSERT_TRUE(removed) << removed.error().to_string();
  EXPECT_NE(::access("/run/netns/gone", F_OK), 0);
  EXPECT_FALSE(iproute2_lists("gone"));
  EXPECT_EQ(mount_count("/run/netns/gone"), 0);
  EXPECT_FALSE(is_netns_mount("/run/netns/gone"));

  Result<void> twice = remove_named_netns(kDir, "gone");
  EXPECT_TRUE(twice) << twice.error().to_string();
  // The name can be reused at once (notes §1.4).
  EXPECT_TRUE(create_named_netns(kDir, "gone"));
  EXPECT_TRUE(remove_named_netns(kDir, "gone"));
}

TEST(NetnsTest, RemoveCleansAStalePlaceholder) {
  if (!in_world()) GTEST_FAIL() << "run through tests/support/world.sh";
  ASSERT_TRUE(prepare_netns_dir(kDir));
  ASSERT_EQ(netcell::testing::sh("touch /run/netns/stale").exit_code, 0);
  EXPECT_FALSE(is_netns_mount("/run/netns/stale"));  // a plain file is not a namespace
  EXPECT_FALSE(is_netns_mount("/run/netns/missing"));
  ASSERT_TRUE(remove_named_netns(kDir, "stale"));
  EXPECT_NE(::access("/run/netns/stale", F_OK), 0);
}

TEST(NetnsTest, RunInNetnsSeesOnlyLoAndLeavesTheCallerAlone) {
  if (!in_world()) GTEST_FAIL() << "run through tests/support/world.sh";
  ASSERT_TRUE(prepare_netns_dir(kDir));
  ASSERT_TRUE(create_named_netns(kDir, "inner"));
  Result<UniqueFd> fd = open_netns("/run/netns/inner");
  ASSERT_TRUE(fd) << fd.error().to_string();
  const std::uint64_t caller_before = own_netns_inode();

  std::vector<LinkRecord> links;
  std::uint64_t inside_inode = 0;
  Result<void> ran = run_in_netns(fd->get(), [&]() -> Result<void> {
    inside_inode = own_netns_inode();
    Result<NetlinkSocket> socket = NetlinkSocket::open();
    if (!socket) return fail(std::move(socket).error());
    Result<std::vector<LinkRecord>> listed = list_links(*socket);
    if (!listed) return fail(std::move(listed).error());
    links = std::move(*listed);
    return ok();
  });
  ASSERT_TRUE(ran) << ran.error().to_string();

  EXPECT_EQ(inside_inode, *netns_inode_of_path("/run/netns/inner"));
  EXPECT_EQ(own_netns_inode(), caller_before);
  ASSERT_EQ(links.size(), 1u);
  EXPECT_EQ(links[0].name, "lo");
  EXPECT_EQ(links[0].ifindex, 1);
  EXPECT_NE(links[0].flags & IFF_UP, 0u);
  EXPECT_EQ(links[0].mtu, 65536u);

  // The world itself still has its own links, seen from the caller's thread.
  Result<NetlinkSocket> outside = NetlinkSocket::open();
  ASSERT_TRUE(outside);
  Result<std::vector<LinkRecord>> world_links = list_links(*outside);
  ASSERT_TRUE(world_links);
  EXPECT_EQ(world_links->size(), link_names().size());
}

TEST(NetnsTest, RunInNetnsPassesErrorsBackAndRejectsNonNamespaces) {
  if (!in_world()) GTEST_FAIL() << "run through tests/support/world.sh";
  Result<void> failed = run_in_netns(-1, [] { return ok(); });
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().sys_errno(), EBADF);

  Result<UniqueFd> fd = open_netns("/proc/thread-self/ns/net");
  ASSERT_TRUE(fd);
  Result<void> inner_error = run_in_netns(
      fd->get(), [] { return Result<void>(fail(ErrorCode::kConflict, "from inside")); });
  ASSERT_FALSE(inner_error);
  EXPECT_EQ(inner_error.error().message(), "from inside");

  Result<UniqueFd> missing = open_netns("/run/netns/nope");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
}

// create_named_netns visits the new namespace from the calling thread: afterwards that thread is
// back in its own namespace with its own signal mask, and a signal raised meanwhile waits for it.
TEST(NetnsTest, CreateReturnsTheCallingThreadWithItsSignalMask) {
  if (!in_world()) GTEST_FAIL() << "run through tests/support/world.sh";
  ASSERT_TRUE(prepare_netns_dir(kDir));
  const std::uint64_t before = own_netns_inode();
  sigset_t mask, saved;
  ::sigemptyset(&mask);
  ::sigaddset(&mask, SIGUSR2);
  ASSERT_EQ(::pthread_sigmask(SIG_BLOCK, &mask, &saved), 0);
  ASSERT_TRUE(create_named_netns(kDir, "masked"));
  sigset_t after;
  ASSERT_EQ(::pthread_sigmask(SIG_SETMASK, nullptr, &after), 0);
  EXPECT_EQ(::sigismember(&after, SIGUSR2), 1);  // the caller's mask, not "everything blocked"
  EXPECT_EQ(::sigismember(&after, SIGUSR1), ::sigismember(&saved, SIGUSR1));
  ASSERT_EQ(::pthread_sigmask(SIG_SETMASK, &saved, nullptr), 0);
  EXPECT_EQ(own_netns_inode(), before);
  EXPECT_NE(*netns_inode_of_path("/run/netns/masked"), before);
}

// A job on the namespace thread that itself enters a namespace runs on a fresh thread rather
// than waiting for itself; both see their own namespace and the caller stays where it was.
TEST(NetnsTest, NestedRunInNetnsUsesAFreshThread) {
  if (!in_world()) GTEST_FAIL() << "run through tests/support/world.sh";
  ASSERT_TRUE(prepare_netns_dir(kDir));
  ASSERT_TRUE(create_named_netns(kDir, "outer1"));
  ASSERT_TRUE(create_named_netns(kDir, "inner1"));
  Result<UniqueFd> outer = open_netns("/run/netns/outer1");
  Result<UniqueFd> inner = open_netns("/run/netns/inner1");
  ASSERT_TRUE(outer && inner);
  const std::uint64_t caller = own_netns_inode();
  std::uint64_t seen_outer_before = 0, seen_inner = 0, seen_outer_after = 0;
  Result<void> ran = run_in_netns(outer->get(), [&]() -> Result<void> {
    seen_outer_before = own_netns_inode();
    NETCELL_TRY(run_in_netns(inner->get(), [&]() -> Result<void> {
      seen_inner = own_netns_inode();
      return ok();
    }));
    seen_outer_after = own_netns_inode();
    return ok();
  });
  ASSERT_TRUE(ran) << ran.error().to_string();
  EXPECT_EQ(seen_outer_before, *netns_inode_of_path("/run/netns/outer1"));
  EXPECT_EQ(seen_inner, *netns_inode_of_path("/run/netns/inner1"));
  EXPECT_EQ(seen_outer_after, seen_outer_before);
  EXPECT_EQ(own_netns_inode(), caller);
}

TEST(NetnsTest, ListAddressesShowsLoopback) {
  if (!in_world()) GTEST_FAIL() << "run through tests/support/world.sh";
  ASSERT_TRUE(prepare_netns_dir(kDir));
  ASSERT_TRUE(create_named_netns(kDir, "addr"));
  Result<NetlinkSocket> socket = socket_in("/run/netns/addr");
  ASSERT_TRUE(socket) << socket.error().to_string();
  Result<std::vector<AddrRecord>> addresses = list_addresses(*socket);
  ASSERT_TRUE(addresses) << addresses.error().to_string();

  Result<IpPrefix> v4 = IpPrefix::parse("127.0.0.1/8");
  Result<IpPrefix> v6 = IpPrefix::parse("::1/128");
  ASSERT_TRUE(v4 && v6);
  bool saw_v4 = false;
  bool saw_v6 = false;
  for (const auto& addr : *addresses) {
    EXPECT_EQ(addr.ifindex, 1) << addr.prefix.to_string();
    saw_v4 |= addr.prefix == *v4;
    saw_v6 |= addr.prefix == *v6;
  }
  EXPECT_TRUE(saw_v4);
  // ::1 exists only when IPv6 is enabled in this kernel.
  if (run({"test", "-e", "/proc/sys/net/ipv6"}).exit_code == 0) {
    EXPECT_TRUE(saw_v6);
  }
}

TEST(NetnsTest, RequestErrorsCarryErrnoAndRequestName) {
  if (!in_world()) GTEST_FAIL() << "run through tests/support/world.sh";
  ASSERT_TRUE(prepare_netns_dir(kDir));
  ASSERT_TRUE(create_named_netns(kDir, "err"));
  Result<NetlinkSocket> socket = socket_in("/run/netns/err");
  ASSERT_TRUE(socket);
  Result<void> bad = socket->request(rtnl::link_set_up(4242, true));
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().sys_errno(), ENODEV);
  EXPECT_EQ(bad.error().message().rfind("RTM_NEWLINK", 0), 0u) << bad.error().to_string();
  // The socket is still in sync afterwards.
  EXPECT_TRUE(socket->request(rtnl::link_set_up(1, true)));
  EXPECT_TRUE(list_links(*socket));
}

TEST(NetnsTest, StatsCountRealTraffic) {
  if (!in_world()) GTEST_FAIL() << "run through tests/support/world.sh";
  ASSERT_TRUE(prepare_netns_dir(kDir));
  ASSERT_TRUE(create_named_netns(kDir, "traffic"));
  // Opened inside, then driven from this thread: it keeps reading the namespace's counters.
  Result<NetlinkSocket> socket = socket_in("/run/netns/traffic");
  ASSERT_TRUE(socket) << socket.error().to_string();

  Result<std::vector<LinkRecord>> before = list_links(*socket);
  ASSERT_TRUE(before) << before.error().to_string();
  const LinkRecord* lo_before = find_link(*before, "lo");
  ASSERT_NE(lo_before, nullptr);

  auto ping = run({"ip", "netns", "exec", "traffic", "ping", "-c", "3", "-i", "0.2", "127.0.0.1"});
  ASSERT_EQ(ping.exit_code, 0) << ping.out << ping.err;

  Result<std::vector<LinkRecord>> after = list_links(*socket);
  ASSERT_TRUE(after) << after.error().to_string();
  const LinkRecord* lo_after = find_link(*after, "lo");
  ASSERT_NE(lo_after, nullptr);
  EXPECT_EQ(lo_after->stats.name, "lo");
  EXPECT_GE(lo_after->stats.rx_packets, lo_before->stats.rx_packets + 3);
  EXPECT_GE(lo_after->stats.tx_packets, lo_before->stats.tx_packets + 3);
  EXPECT_GT(lo_after->stats.rx_bytes, lo_before->stats.rx_bytes);
  EXPECT_EQ(lo_after->stats.rx_errors, 0u);

  // The world's own lo saw none of it.
  Result<NetlinkSocket> outside = NetlinkSocket::open();
  ASSERT_TRUE(outside);
  Result<std::vector<LinkRecord>> world_links = list_links(*outside);
  ASSERT_TRUE(world_links);
  const LinkRecord* world_lo = find_link(*world_links, "lo");
  ASSERT_NE(world_lo, nullptr);
  EXPECT_LT(world_lo->stats.rx_packets, 3u);
}

}  // namespace
}  // namespace netcell::kernel
