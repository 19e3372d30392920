// `netcell --version` and `netcell doctor` name the version and the source revision the CLI was
// built from (the simulation backend: no privileges, no OS changes).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>

#include "support/process.h"

namespace netcell {
namespace {

namespace fs = std::filesystem;
using testing::cli;

// The revision part of `netcell --version`, checked for its form; empty on a mismatch.
std::string revision_of_version_line() {
  auto result = cli({"--version"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.err, "");
  std::smatch m;
  const std::regex line(R"(netcell ([0-9.]+) \(revision ([^ ()]+)\)\n)");
  if (!std::regex_match(result.out, m, line)) {
    ADD_FAILURE() << "unexpected --version output: '" << result.out << "'";
    return "";
  }
  EXPECT_EQ(m[1].str(), NETCELL_PROJECT_VERSION);
  return m[2].str();
}

TEST(CliVersionTest, VersionNamesTheProjectVersionAndARevision) {
  const std::string revision = revision_of_version_line();
  ASSERT_FALSE(revision.empty());
  if (revision == "unknown") {
    // Only a build from outside git (a tarball, or no git installed) has no revision.
    EXPECT_FALSE(fs::exists(fs::path(NETCELL_SOURCE_DIR) / ".git") &&
                 testing::run({"git", "--version"}).exit_code == 0);
    return;
  }
  // git describe --always --dirty: [TAG-N-g]HASH[-dirty] (or TAG[-dirty] on a tagged commit),
  // the hash abbreviated to 12 hex digits or more.
  std::smatch m;
  if (std::regex_search(revision, m, std::regex(R"((?:^|-g)([0-9a-f]{12,40})(?:-dirty)?$)")) &&
      testing::run({"git", "--version"}).exit_code == 0) {
    // The hash names a commit of this source tree (the one HEAD was at when the CLI was built).
    auto known =
        testing::run({"git", "-C", NETCELL_SOURCE_DIR, "cat-file", "-e", m[1].str() + "^{commit}"});
    EXPECT_EQ(known.exit_code, 0) << m[1].str() << ": " << known.err;
  }
}

TEST(CliVersionTest, DoctorShowsVersionAndRevision) {
  const std::string revision = revision_of_version_line();
  char tmpl[] = "/tmp/netcell-version-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  const std::vector<std::string> global = {"--backend", "simulation", "--run-dir", dir};

  auto args = global;
  args.insert(args.end(), {"doctor", "--json"});
  auto json_out = cli(args);
  auto text_args = global;
  text_args.push_back("doctor");
  auto text = cli(text_args);
  fs::remove_all(dir);

  ASSERT_EQ(json_out.exit_code, 0) << json_out.err;
  auto doc = nlohmann::json::parse(json_out.out);
  EXPECT_EQ(doc.at("version"), NETCELL_PROJECT_VERSION);
  EXPECT_EQ(doc.at("revision"), revision);
  ASSERT_FALSE(doc.at("checks").empty());
  EXPECT_EQ(doc.at("checks")[0].at("check"), "netcell");
  EXPECT_EQ(doc.at("checks")[0].at("detail"),
            std::string(NETCELL_PROJECT_VERSION) + ", revision " + revision);

  ASSERT_EQ(text.exit_code, 0) << text.err;
  const std::string first_line = text.out.substr(0, text.out.find('\n'));
  EXPECT_TRUE(std::regex_match(first_line, std::regex("ok +netcell +.*")));
  EXPECT_NE(first_line.find(std::string(NETCELL_PROJECT_VERSION) + ", revision " + revision),
            std::string::npos)
      << first_line;
}

}  // namespace
}  // namespace netcell
