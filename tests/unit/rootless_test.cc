#include "netcell/rootless.h"

#include <gtest/gtest.h>

#include "core/serialize.h"
#include "netcell/manager.h"
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
}

TEST(RootlessTest, NoRecordIsNoSession) {
  rootless::Paths paths("/nonexistent/netcell");
  EXPECT_FALSE(rootless::read_session(paths).has_value());
  EXPECT_FALSE(rootless::alive(rootless::Process{}));
}

}  // namespace
}  // namespace netcell
