#include "netcell/rootless.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "core/files.h"
#include "core/serialize.h"
#include "core/validate.h"
#include "netcell/manager.h"
#include "rootless/hostfwd.h"
#include "rootless/session.h"

namespace netcell {
namespace {

TEST(RootlessTest, BackendChoiceAndKindHaveNames) {
  auto choice = parse_backend_choice("rootless");
  ASSERT_TRUE(choice);
  EXPECT_EQ(*choice, BackendChoice::kRootless);
  EXPECT_EQ(to_string(BackendChoice::kRootless), "rootless");
  EXPECT_EQ(to_string(BackendKind::kRootless), "rootless");
}

TEST(RootlessTest, RecordOfARootlessNamespaceRoundTrips) {
  NamespaceInfo info;
  info.name = "c1";
  info.backend = BackendKind::kRootless;
  info.enforced = true;
  info.netns_path = "/run/user/1000/netcell/netns/c1";
  auto back = namespace_info_from_json(to_json(info));
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ(back->backend, BackendKind::kRootless);
  EXPECT_EQ(*back, info);
}

TEST(RootlessTest, FirstMissingNamesTheFirstFailedCheck) {
  std::vector<rootless::Prerequisite> checks = {
      {"user namespaces", true, "available"},
      {"/dev/net/tun", false, "not usable by this user"},
      {"slirp4netns", false, "not installed"},
  };
  EXPECT_EQ(rootless::first_missing(checks),
            "rootless mode unavailable: /dev/net/tun: not usable by this user");
  checks[1].ok = checks[2].ok = true;
  EXPECT_EQ(rootless::first_missing(checks), "");
}

TEST(RootlessTest, SessionPathsLiveInTheRunDir) {
  rootless::Paths paths("/run/user/1000/netcell");
  EXPECT_EQ(paths.record, "/run/user/1000/netcell/rootless/session.json");
  EXPECT_EQ(paths.netns_dir, "/run/user/1000/netcell/netns");
  EXPECT_EQ(paths.etc_dir, "/run/user/1000/netcell/etc-netns");
  EXPECT_EQ(paths.lock, "/run/user/1000/netcell/rootless.lock");
  EXPECT_EQ(paths.members, "/run/user/1000/netcell/rootless.members");
  EXPECT_EQ(paths.api_socket, "/run/user/1000/netcell/rootless/slirp4netns.sock");
  EXPECT_EQ(paths.ports_dir, "/run/user/1000/netcell/rootless/ports");
}

TEST(RootlessTest, HostForwardOfAPublishedPortKeepsItsHostAddressAndPort) {
  auto any = PortForward::parse("8080:80");
  ASSERT_TRUE(any);
  EXPECT_EQ(rootless::host_forward_of(*any),
            (rootless::HostForward{Protocol::kTcp, "0.0.0.0", 8080}));
  auto one = PortForward::parse("127.0.0.1:5353:53/udp");
  ASSERT_TRUE(one);
  EXPECT_EQ(rootless::host_forward_of(*one),
            (rootless::HostForward{Protocol::kUdp, "127.0.0.1", 5353}));
}

TEST(RootlessTest, HelperApiRequestsForwardToTheGuestAtTheHostPort) {
  EXPECT_EQ(rootless::add_request({Protocol::kUdp, "127.0.0.1", 5353}),
            R"({"arguments":{"guest_addr":"10.0.2.100","guest_port":5353,"host_addr":"127.0.0.1",)"
            R"("host_port":5353,"proto":"udp"},"execute":"add_hostfwd"})");
  EXPECT_EQ(rootless::list_request(), R"({"execute":"list_hostfwd"})");
  EXPECT_EQ(rootless::remove_request(7), R"({"arguments":{"id":7},"execute":"remove_hostfwd"})");
}

TEST(RootlessTest, HelperApiRepliesAreParsedAndItsErrorsKept) {
  auto id = rootless::parse_add_reply(R"({"return":{"id":3}})");
  ASSERT_TRUE(id) << id.error().to_string();
  EXPECT_EQ(*id, 3);
  auto refused = rootless::parse_add_reply(
      R"({"error":{"desc":"bad request: add_hostfwd: slirp_add_hostfwd failed"}})");
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message().find("slirp_add_hostfwd failed"), std::string::npos);
  EXPECT_FALSE(rootless::parse_add_reply("not json"));
  EXPECT_FALSE(rootless::parse_add_reply(R"({"return":{}})"));
  auto listed = rootless::parse_list_reply(
      R"({"entries":[{"id":1,"proto":"tcp","host_addr":"0.0.0.0","host_port":8080,)"
      R"("guest_addr":"10.0.2.100","guest_port":8080},{"id":2,"proto":"udp",)"
      R"("host_addr":"127.0.0.1","host_port":5353,"guest_addr":"10.0.2.100","guest_port":53}]})");
  ASSERT_TRUE(listed) << listed.error().to_string();
  ASSERT_EQ(listed->size(), 2U);
  EXPECT_EQ((*listed)[0].id, 1);
  EXPECT_EQ((*listed)[0].forward, (rootless::HostForward{Protocol::kTcp, "0.0.0.0", 8080}));
  EXPECT_EQ((*listed)[1].forward, (rootless::HostForward{Protocol::kUdp, "127.0.0.1", 5353}));
  EXPECT_FALSE(rootless::parse_list_reply(R"({"return":{}})"));
  EXPECT_FALSE(rootless::parse_list_reply(R"({"entries":[{"id":"x"}]})"));
  EXPECT_TRUE(rootless::parse_remove_reply(R"({"return":{}})"));
  EXPECT_FALSE(rootless::parse_remove_reply(R"({"error":{"desc":"bad arguments.id"}})"));
}

TEST(RootlessTest, PublishedPortsJournalRoundTrips) {
  char dir_template[] = "/tmp/netcell-rootless-XXXXXX";
  ASSERT_NE(::mkdtemp(dir_template), nullptr);
  std::string run_dir = dir_template;
  rootless::Paths paths(run_dir);
  ASSERT_EQ(::mkdir(paths.dir.c_str(), 0700), 0);
  auto a = PortForward::parse("8080:80");
  auto b = PortForward::parse("127.0.0.1:5353:53/udp");
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(rootless::journal_ports(paths, "w1", {*a, *b}));
  EXPECT_EQ(rootless::journaled_ports(paths, "w1"), (std::vector<PortForward>{*a, *b}));
  EXPECT_EQ(rootless::journaled_names(paths), std::vector<std::string>{"w1"});
  EXPECT_TRUE(rootless::journaled_ports(paths, "w2").empty());
  rootless::forget_ports(paths, "w1");
  EXPECT_TRUE(rootless::journaled_names(paths).empty());
  std::filesystem::remove_all(run_dir);
}

TEST(RootlessTest, NoRecordIsNoSession) {
  rootless::Paths paths("/nonexistent/netcell");
  EXPECT_FALSE(rootless::read_session(paths).has_value());
  EXPECT_FALSE(rootless::alive(rootless::Process{}));
}

// Where netcell-service finds itself: no session record, a record whose holder is gone, and one
// whose "holder" is this process (so the same namespaces: inside).
TEST(RootlessTest, SessionPlaceTellsWhetherThisProcessIsInsideTheSession) {
  char dir_template[] = "/tmp/netcell-rootless-XXXXXX";
  ASSERT_NE(::mkdtemp(dir_template), nullptr);
  const std::string run_dir = dir_template;
  rootless::Paths paths(run_dir);
  auto none = rootless::session_place(run_dir);
  EXPECT_FALSE(none.rootless);
  EXPECT_FALSE(none.inside);
  ASSERT_EQ(::mkdir(paths.dir.c_str(), 0700), 0);
  auto record = [&](pid_t pid, std::uint64_t start) {
    const std::string text = R"({"holder":{"pid":)" + std::to_string(pid) + R"(,"start_time":)" +
                             std::to_string(start) + R"(},"helper":{"pid":0,"start_time":0}})";
    ASSERT_TRUE(write_atomically(paths.record, text));
  };
  auto self_start = process_start_time(::getpid());
  ASSERT_TRUE(self_start);
  record(::getpid(), *self_start + 1);  // a pid whose start time is not the recorded one
  auto gone = rootless::session_place(run_dir);
  EXPECT_TRUE(gone.rootless);
  EXPECT_FALSE(gone.inside);
  EXPECT_EQ(gone.holder_pid, 0);
  record(::getpid(), *self_start);
  auto inside = rootless::session_place(run_dir);
  EXPECT_TRUE(inside.rootless);
  EXPECT_TRUE(inside.inside);
  EXPECT_EQ(inside.holder_pid, ::getpid());
  std::filesystem::remove_all(run_dir);
}

}  // namespace
}  // namespace netcell
