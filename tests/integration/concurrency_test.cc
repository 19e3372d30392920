// 32 CLI processes creating and destroying private namespaces (with published ports) in parallel
// for a bounded time: no address or port is ever held twice, every operation is fully done or
// fully undone, and nothing leaks at the end. Checked against the kernel and nftables.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <thread>

#include "support/process.h"

namespace netcell {
namespace {

namespace fs = std::filesystem;
using testing::cli;
using testing::sh;

TEST(ConcurrencyTest, ThirtyTwoProcessesNeverCollideAndLeaveNothing) {
  if (!testing::in_world()) GTEST_FAIL() << "run through tests/support/world.sh";
  constexpr int kWorkers = 32;
  constexpr auto kDuration = std::chrono::seconds(8);
  // Each worker loops: create (with a port from a small shared range, so claims collide), then
  // destroy. Its counts go to a file.
  std::string dir = "/run/concurrency";
  fs::create_directories(dir);
  std::vector<pid_t> workers;
  for (int w = 0; w < kWorkers; ++w) {
    pid_t pid = ::fork();
    if (pid == 0) {
      auto deadline = std::chrono::steady_clock::now() + kDuration;
      int created = 0, refused = 0, failed = 0;
      for (int i = 0; (i < 3 || std::chrono::steady_clock::now() < deadline) && i < 200; ++i) {
        std::string name = 'w' + std::to_string(w) + '-' + std::to_string(i);
        std::string port = std::to_string(9000 + (w * 7 + i) % 48);
        auto r = cli({"create", name, "--mode", "private", "--publish", port + ":80", "--json"});
        if (r.exit_code != 0) {
          // A port held by another worker is the only acceptable refusal.
          (r.err.find("already published") != std::string::npos ? refused : failed)++;
          continue;
        }
        ++created;
        if (cli({"destroy", name}).exit_code != 0) ++failed;
      }
      std::FILE* out = std::fopen((dir + "/w" + std::to_string(w)).c_str(), "w");
      std::fprintf(out, "%d %d %d\n", created, refused, failed);
      std::fclose(out);
      ::_exit(0);
    }
    workers.push_back(pid);
  }
  // Meanwhile, sample the kernel: the host end of every private namespace holds its block's
  // gateway address, so a block handed out twice shows as one address on two links.
  int samples = 0, duplicates = 0, most = 0;
  for (auto end = std::chrono::steady_clock::now() + kDuration;
       std::chrono::steady_clock::now() < end; ++samples) {
    std::map<std::string, int> seen;
    int held = 0;
    for (const auto& link : testing::ip_json({"-4", "addr"})) {
      if (link.value("ifname", "").rfind("ncp", 0) != 0) continue;
      for (const auto& a : link["addr_info"]) {
        ++held;
        if (++seen[a["local"].get<std::string>()] == 2) ++duplicates;
      }
    }
    most = std::max(most, held);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  for (pid_t pid : workers) ::waitpid(pid, nullptr, 0);
  std::printf("%d kernel samples, up to %d namespaces alive at once, %d duplicate addresses\n",
              samples, most, duplicates);
  EXPECT_EQ(duplicates, 0);
  EXPECT_GT(samples, 10);
  int created = 0, refused = 0, failed = 0;
  for (int w = 0; w < kWorkers; ++w) {
    int c = 0, r = 0, f = 0;
    std::FILE* in = std::fopen((dir + "/w" + std::to_string(w)).c_str(), "r");
    ASSERT_NE(in, nullptr);
    ASSERT_EQ(std::fscanf(in, "%d %d %d", &c, &r, &f), 3);
    std::fclose(in);
    created += c;
    refused += r;
    failed += f;
  }
  std::printf(
      "%d processes: %d creates and %d destroys completed, %d port conflicts refused, "
      "%d failures\n",
      kWorkers, created, created, refused, failed);
  EXPECT_EQ(failed, 0);
  EXPECT_GE(created + refused, 3 * kWorkers);  // every worker made at least 3 attempts
  EXPECT_GT(created, kWorkers);
  // Nothing left: no namespace, no record, no host veth, no nftables table, ip_forward restored.
  EXPECT_TRUE(testing::ip_json({"netns", "list"}).empty());
  EXPECT_TRUE(fs::is_empty("/run/netcell/namespaces"));
  // The kernel reaps the host ends of unmounted namespaces asynchronously (notes §1.4).
  auto no_host_ends = [] {
    for (const auto& link : testing::link_names()) {
      if (link.rfind("ncp", 0) == 0) return false;
    }
    return true;
  };
  bool reaped = false;
  for (int i = 0; i < 100 && !(reaped = no_host_ends()); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(reaped) << "host-side veths left behind";
  EXPECT_NE(sh("nft list table ip netcell").exit_code, 0);
  EXPECT_EQ(sh("cat /proc/sys/net/ipv4/ip_forward").out, "0\n");
  EXPECT_FALSE(fs::exists("/run/netcell/ipam"));
}

}  // namespace
}  // namespace netcell
