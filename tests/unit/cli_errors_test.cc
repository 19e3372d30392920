// The CLI's handling of bad input, against the simulation backend (no privileges, no OS changes):
// each case must give one line on stderr, the right exit code, and change no state.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "support/process.h"
#include "support/sim_cli.h"

namespace netcell {
namespace {

using testing::cli;

class CliErrorsTest : public testing::SimCliTest {};

struct BadCase {
  std::vector<std::string> args;
  int exit_code;
  const char* expect_in_error;
};

TEST_F(CliErrorsTest, BadInputGivesOneLineErrorAndChangesNothing) {
  ASSERT_EQ(sim({"create", "keep"}).exit_code, 0);
  const std::vector<std::string> before = records();
  ASSERT_EQ(before, std::vector<std::string>{"keep.json"});
  std::string pid_max_plus = std::to_string(4194304 - 1);
  const std::vector<BadCase> cases = {
      {{"create", ""}, 2, "empty"},
      {{"create", "a/b"}, 2, "'/'"},
      {{"create", ".."}, 2, "invalid namespace name"},
      {{"create", "with space"}, 2, "invalid namespace name"},
      {{"create", std::string(65, 'x')}, 2, "longer than 64"},
      {{"create", "keep"}, 1, "already exists"},
      {{"create", "m", "--mode", "isolated"}, 2, "unknown mode 'isolated'"},
      {{"create", "m", "--owner", "-3"}, 2, "pid"},
      {{"create", "m", "--owner", pid_max_plus}, 1, "does not exist"},
      {{"create", "m", "--publish", "8080:80"}, 2, "cannot publish"},
      {{"create", "m", "--mode", "private", "--publish", "0:80"}, 2, "port"},
      {{"create", "m", "--mode", "private", "--publish", "65536:80"}, 2, "port"},
      {{"create", "m", "--mode", "private", "--mtu", "67"}, 2, "MTU"},
      {{"create", "m", "--mode", "private", "--ip", "10.0.0.1/33"}, 2, "prefix length"},
      {{"create", "m", "--mode", "private", "--ip", "10.0.0.300/24"}, 2, "invalid IP"},
      {{"create", "m", "--mode", "bridged"}, 2, "network"},
      {{"info", "nosuch"}, 1, "does not exist"},
      {{"stats", "nosuch"}, 1, "does not exist"},
      {{"destroy", "nosuch"}, 1, "does not exist"},
      {{"exec", "nosuch", "--", "true"}, 1, "does not exist"},
      {{"find-pid", "0"}, 2, "invalid pid"},
      {{"find-pid", "abc"}, 2, "invalid pid"},
      {{"find-pid", pid_max_plus}, 1, "does not exist"},
      {{"create", std::string("ctl\x01byte")}, 2, "invalid namespace name"},
      {{"create", "new\nline"}, 2, "invalid namespace name"},
      {{"create", "-leading-dash"}, 2, ""},
      {{"create", "m", "--mode", "private", "--mtu", "65536"}, 2, "MTU"},
      {{"create", "m", "--mode", "private", "--mtu", "abc"}, 2, "mtu"},
      {{"create", "m", "--mode", "private", "--ip", "10.0.0.1"}, 2, "prefix length"},
      {{"create", "m", "--mode", "private", "--ip", "10.0.0.1/-1"}, 2, "prefix length"},
      {{"create", "m", "--mode", "private", "--gateway", "10.0.0.256"}, 2, "invalid IP"},
      {{"create", "m", "--mode", "private", "--dns", "not-an-ip"}, 2, "invalid IP"},
      {{"create", "m", "--mode", "private", "--publish", "80"}, 2, "missing ':'"},
      {{"create", "m", "--mode", "private", "--publish", "80:80/sctp"}, 2, "protocol"},
      {{"create", "m", "--mode", "private", "--publish", "1.2.3.4:5:80:80"}, 2, "invalid"},
      {{"create", "m", "--mode", "private", "--publish", "8080:80", "--publish", "8080:81"},
       2,
       "published twice"},
      {{"create", "m", "--owner", "0"}, 2, "pid"},
      {{"create", "m", "--owner", "abc"}, 2, "owner"},
      {{"create", "m", "--netns-of", pid_max_plus}, 2, "no such process"},
      {{"create", "m", "--netns-of", "0"}, 2, "invalid pid"},
      {{"create", "m", "--netns-of", "abc"}, 2, "netns-of"},
      {{"create", "m", "--mode", "shared", "--netns-of", std::to_string(::getpid())},
       2,
       "shared mode"},
      {{"network", "create", "a/b", "--subnet", "10.70.0.0/24"}, 2, "invalid network name"},
      {{"network", "create", "n", "--subnet", "10.70.0.0/31"}, 2, "prefix length"},
      {{"network", "create", "n", "--subnet", "10.70.0.0/33"}, 2, "prefix length"},
      {{"network", "create", "n", "--subnet", "2001:db8::/64"}, 2, "is not an IPv4 prefix"},
      {{"network", "create", "n"}, 2, "subnet"},
      {{"network", "rm", "nosuch"}, 1, "does not exist"},
      {{"exec", "keep"}, 2, "command"},
      {{"destroy"}, 2, "names"},
      {{"find-pid", "-5"}, 2, ""},
      {{"frobnicate"}, 2, "frobnicate"},
      {{"create"}, 2, "name"},
      {{"create", "m", "--mode", "private", "--rate", "0"}, 2, "--rate: invalid rate '0': zero"},
      {{"create", "m", "--mode", "private", "--rate=-1mbit"}, 2, "negative"},
      {{"create", "m", "--mode", "private", "--rate", "fast"}, 2, "invalid rate 'fast'"},
      {{"create", "m", "--mode", "private", "--rate", "10mbps"}, 2, "ambiguous"},
      {{"create", "m", "--mode", "private", "--rate", "2tbit"}, 2, "more than 1tbit"},
      {{"create", "m", "--mode", "private", "--rate", "999999999999999999999"}, 2, "more than"},
      {{"create", "m", "--mode", "private", "--rate", "500bit"}, 2, "less than 1kbit"},
      {{"create", "m", "--mode", "private", "--rate", "1.5"}, 2, "whole number"},
      {{"create", "m", "--mode", "private", "--egress-rate", ""}, 2, "--egress-rate: invalid"},
      {{"create", "m", "--mode", "private", "--ingress-rate", "1 mbit"}, 2, "unknown unit"},
      {{"create", "m", "--rate", "1mbit"}, 2, "full mode has no link to rate-limit"},
      {{"create", "m", "--mode", "shared", "--egress-rate", "1mbit"}, 2, "shared mode has no link"},
      {{"run", "--mode", "private", "--rate", "x", "--", "true"}, 2, "invalid rate 'x'"},
      {{"run", "--rate", "1mbit", "--", "true"}, 2, "full mode has no link to rate-limit"},
      {{"run", "--mode", "private", "--publish", "9000:80", "--"}, 2, "command is required"},
      {{"exec", "keep", "--"}, 2, "command is required"},
  };
  EXPECT_GE(cases.size(), 40U);
  for (const auto& c : cases) {
    auto r = sim(c.args);
    std::string shown;
    for (const auto& a : c.args) shown += "'" + a + "' ";
    EXPECT_EQ(r.exit_code, c.exit_code) << shown << "\nstderr: " << r.err;
    EXPECT_EQ(r.err.rfind("netcell: ", 0), 0U) << shown << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << shown << r.err;
    EXPECT_NE(r.err.find(c.expect_in_error), std::string::npos) << shown << r.err;
    EXPECT_EQ(records(), before) << shown;
  }
}

TEST_F(CliErrorsTest, UnknownBackendIsUsageError) {
  auto r = cli({"--backend", "qemu", "--run-dir", dir_, "list"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err,
            "netcell: unknown backend 'qemu' (expected auto, linux, rootless or simulation)\n");
}

TEST_F(CliErrorsTest, HelpAndVersionSucceed) {
  auto help = cli({"--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("create"), std::string::npos);
  EXPECT_NE(help.out.find("find-pid"), std::string::npos);
  for (const char* command : {"run", "exec"}) {
    auto sub = cli({command, "--help"});
    EXPECT_EQ(sub.exit_code, 0) << command;
    EXPECT_NE(sub.out.find("--pid-ns"), std::string::npos) << command;
    EXPECT_NE(sub.out.find("Everything after the first -- is the command"), std::string::npos)
        << command << ": " << sub.out;
  }
  EXPECT_EQ(cli({"--version"}).exit_code, 0);
}

// Everything after the first `--` is the command's, whatever netcell option comes last before it
// (a repeatable one such as --publish and --dns used to take the `--` and leave the command's own
// flags to netcell's parser): the command gets its arguments exactly, netcell reads none of them.
TEST_F(CliErrorsTest, EverythingAfterTheFirstDoubleDashIsTheCommands) {
  // Prints its arguments as "a|b|...|"; they look like options of netcell's, one is a second --.
  const std::vector<std::string> command = {
      "sh",     "-c",   "printf '%s|' \"$@\"", "sh",  "-c", "--help", "--json", "-v",
      "--mode", "full", "--publish",           "1:2", "--", "--dns=x"};
  const std::string printed = "-c|--help|--json|-v|--mode|full|--publish|1:2|--|--dns=x|";
  const std::vector<std::vector<std::string>> run_options = {
      {},
      {"--mode", "private"},
      {"--mode", "private", "--publish", "9000:80"},
      {"--mode", "private", "--publish=9000:80"},
      {"--mode", "private", "--publish", "9000:80", "9001:81"},
      {"--mode", "private", "--publish", "9000:80", "--publish", "9001:81/udp"},
      {"--mode", "private", "--dns", "192.0.2.53"},
      {"--mode", "private", "--dns=192.0.2.53"},
      {"--mode", "private", "--dns", "192.0.2.53", "192.0.2.54"},
      {"--mode", "private", "--publish", "9000:80", "--dns", "192.0.2.53"},
      {"--mode", "private", "--dns", "192.0.2.53", "--publish=9000:80"},
      {"--mode=private", "--name", "named", "--rate", "10mbit", "--mtu", "1400"},
  };
  auto shown = [](const std::vector<std::string>& args) {
    std::string out;
    for (const auto& a : args) out += "'" + a + "' ";
    return out;
  };
  for (const auto& options : run_options) {
    std::vector<std::string> args = {"run"};
    args.insert(args.end(), options.begin(), options.end());
    args.push_back("--");
    args.insert(args.end(), command.begin(), command.end());
    auto r = sim(args);
    EXPECT_EQ(r.exit_code, 0) << shown(args) << "\nstderr: " << r.err;
    EXPECT_EQ(r.out, printed) << shown(args);
    EXPECT_TRUE(records().empty()) << shown(args);  // run destroyed its namespace
  }
  // The exit code passes through a repeatable option placed last, too.
  EXPECT_EQ(sim({"run", "--mode", "private", "--publish", "9000:80", "--", "sh", "-c", "exit 7"})
                .exit_code,
            7);

  ASSERT_EQ(sim({"create", "keep"}).exit_code, 0);
  std::vector<std::string> exec = {"exec", "keep", "--"};
  exec.insert(exec.end(), command.begin(), command.end());
  auto r = sim(exec);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, printed);
  // Words before the `--` are the command's first ones; netcell's flags there stay netcell's.
  auto split = sim({"exec", "keep", "sh", "--", "-c", "echo \"$0|$1\"", "--json", "-c"});
  EXPECT_EQ(split.exit_code, 0) << split.err;
  EXPECT_EQ(split.out, "--json|-c\n");
  auto init = sim({"exec", "keep", "--init", "--", "sh", "-c", "--pid-ns"});
  EXPECT_EQ(init.exit_code, 2);
  EXPECT_EQ(init.err, "netcell: --init needs --pid-ns\n");
}

TEST_F(CliErrorsTest, SimulationSaysItDoesNotEnforce) {
  auto r = sim({"create", "s", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["backend"], "simulation");
  EXPECT_EQ(j["enforced"], false);
  auto text = sim({"info", "s"});
  EXPECT_NE(text.out.find("NOT enforced"), std::string::npos);
}

}  // namespace
}  // namespace netcell
