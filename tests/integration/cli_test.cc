// The CLI end to end on the Linux backend, each test in its own throwaway world. Results are
// checked through an independent view: `ip -j`, the mount table, the netns dir and real traffic.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/unique_fd.h"
#include "support/process.h"

namespace netcell {
namespace {

namespace fs = std::filesystem;
using testing::cli;
using testing::ip_json;
using testing::link_names;
using testing::sh;

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A TCP server in the world's own network namespace that accepts and counts connections.
class TcpServer {
 public:
  explicit TcpServer(std::uint16_t port) {
    fd_.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    int one = 1;
    ::setsockopt(fd_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_ANY);
    ok_ = ::bind(fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
          ::listen(fd_.get(), 16) == 0;
    thread_ = std::thread([this] {
      while (!stop_) {
        pollfd p{fd_.get(), POLLIN, 0};
        if (::poll(&p, 1, 50) == 1) {
          netcell::UniqueFd c(::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
          if (c) ++accepted_;
        }
      }
    });
  }
  ~TcpServer() {
    stop_ = true;
    thread_.join();
  }
  bool ok() const { return ok_; }
  int accepted() const { return accepted_; }

 private:
  netcell::UniqueFd fd_;
  bool ok_ = false;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::thread thread_;
};

// Polls `pred` every 20 ms for at most `ms`.
template <typename Pred>
bool eventually(Pred pred, int ms = 5000) {
  for (int waited = 0; waited < ms; waited += 20) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return pred();
}

// Starts the CLI in the background (stdio to /dev/null); returns its pid.
pid_t start_cli(const std::vector<std::string>& args) {
  std::vector<std::string> argv{NETCELL_CLI_PATH};
  argv.insert(argv.end(), args.begin(), args.end());
  pid_t pid = ::fork();
  if (pid == 0) {
    std::vector<char*> cargv;
    for (auto& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    ::freopen("/dev/null", "w", stdout);
    ::execv(cargv[0], cargv.data());
    ::_exit(127);
  }
  return pid;
}

// Waits at most `ms` for a child to exit; its exit code, 128+signal, or -1 on timeout.
int wait_exit(pid_t pid, int ms = 10000) {
  int status = 0;
  for (int waited = 0; waited <= ms; waited += 20) {
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  return -1;
}

std::vector<std::string> netns_dir_entries() {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator("/run/netns")) out.push_back(e.path().filename());
  return out;
}

bool mounted(const std::string& path) {
  return read_file("/proc/self/mountinfo").find(" " + path + " ") != std::string::npos;
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::in_world()) GTEST_FAIL() << "run through tests/support/world.sh";
  }
  // ctest gives every test a world of its own; this keeps a by-hand run of the whole binary in
  // one world independent too.
  void TearDown() override {
    for (const auto& ns : nlohmann::json::parse(cli({"list", "--json"}).out)) {
      cli({"destroy", ns["name"].get<std::string>()});
    }
    sh("ip -all netns delete");
  }
};

TEST_F(CliTest, FullModeHasOnlyLoopbackAndReachesNothing) {
  // The world gets an address of its own besides loopback, and a server on every address.
  ASSERT_EQ(sh("ip addr add 192.0.2.1/32 dev lo").exit_code, 0);
  TcpServer server(18080);
  ASSERT_TRUE(server.ok());
  ASSERT_EQ(sh("nc -z -w 2 127.0.0.1 18080 && nc -z -w 2 192.0.2.1 18080").exit_code, 0);
  // The server thread accepts asynchronously: wait (bounded) for both connections to register.
  ASSERT_TRUE(eventually([&] { return server.accepted() == 2; }));

  ASSERT_EQ(cli({"create", "iso"}).exit_code, 0);
  auto links = ip_json({"-n", "iso", "link"});
  ASSERT_EQ(links.size(), 1U);
  EXPECT_EQ(links[0]["ifname"], "lo");
  auto flags = links[0]["flags"];
  EXPECT_NE(std::find(flags.begin(), flags.end(), "UP"), flags.end());
  EXPECT_TRUE(ip_json({"-n", "iso", "route", "show", "table", "all"}).size() <= 4U);
  EXPECT_TRUE(ip_json({"-n", "iso", "-4", "route"}).empty());

  for (const char* target : {"127.0.0.1", "192.0.2.1"}) {
    auto r = cli({"exec", "iso", "--", "nc", "-z", "-w", "1", target, "18080"});
    EXPECT_NE(r.exit_code, 0) << target << " was reachable from full isolation";
  }
  // Same through iproute2's view of the namespace.
  EXPECT_NE(sh("ip netns exec iso nc -z -w 1 192.0.2.1 18080").exit_code, 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(server.accepted(), 2);
  ASSERT_EQ(cli({"destroy", "iso"}).exit_code, 0);
}

TEST_F(CliTest, Iproute2SeesAndEntersTheNamespace) {
  ASSERT_EQ(cli({"create", "web"}).exit_code, 0);
  auto list = ip_json({"netns", "list"});
  ASSERT_EQ(list.size(), 1U);
  EXPECT_EQ(list[0]["name"], "web");
  auto r = sh("ip netns exec web readlink /proc/self/ns/net");
  ASSERT_EQ(r.exit_code, 0);
  auto ours = cli({"exec", "web", "--", "readlink", "/proc/self/ns/net"});
  ASSERT_EQ(ours.exit_code, 0);
  EXPECT_EQ(r.out, ours.out);
  EXPECT_NE(r.out, read_file("/dev/null") + sh("readlink /proc/self/ns/net").out);
  ASSERT_EQ(cli({"destroy", "web"}).exit_code, 0);
}

TEST_F(CliTest, DestroyLeavesNoMountFileLinkOrRecord) {
  auto world_links = link_names();
  ASSERT_EQ(cli({"create", "gone"}).exit_code, 0);
  ASSERT_EQ(cli({"create", "host", "--mode", "shared"}).exit_code, 0);
  EXPECT_TRUE(mounted("/run/netns/gone"));
  ASSERT_EQ(cli({"destroy", "gone", "host"}).exit_code, 0);
  EXPECT_FALSE(mounted("/run/netns/gone"));
  EXPECT_TRUE(netns_dir_entries().empty());
  EXPECT_TRUE(ip_json({"netns", "list"}).empty());
  EXPECT_TRUE(fs::is_empty("/run/netcell/namespaces"));
  EXPECT_EQ(link_names(), world_links);
  auto list = cli({"list", "--json"});
  EXPECT_EQ(nlohmann::json::parse(list.out), nlohmann::json::array());
}

TEST_F(CliTest, PidNamespaceMakesTheCommandPid1) {
  auto r = cli({"run", "--pid-ns", "--", "sh", "-c", "echo $$"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "1\n");
  auto with_init = cli({"run", "--pid-ns", "--init", "--", "sh", "-c", "echo $$; ps -o pid= -p 1"});
  ASSERT_EQ(with_init.exit_code, 0) << with_init.err;
  EXPECT_EQ(with_init.out.substr(0, 2), "2\n");
  auto plain = cli({"run", "--", "sh", "-c", "echo $$"});
  EXPECT_NE(plain.out, "1\n");
  EXPECT_TRUE(netns_dir_entries().empty());
}

TEST_F(CliTest, ExitCodesPassThrough) {
  EXPECT_EQ(cli({"run", "--", "sh", "-c", "exit 42"}).exit_code, 42);
  EXPECT_EQ(cli({"run", "--pid-ns", "--", "sh", "-c", "exit 43"}).exit_code, 43);
  EXPECT_EQ(cli({"run", "--pid-ns", "--init", "--", "sh", "-c", "exit 44"}).exit_code, 44);
  EXPECT_EQ(cli({"run", "--", "sh", "-c", "kill -TERM $$"}).exit_code, 128 + SIGTERM);
  ASSERT_EQ(cli({"create", "x"}).exit_code, 0);
  EXPECT_EQ(cli({"exec", "x", "--", "sh", "-c", "exit 9"}).exit_code, 9);
  EXPECT_EQ(cli({"exec", "x", "--pid-ns", "--", "true"}).exit_code, 0);
  auto missing = cli({"exec", "x", "--", "netcell-no-such-command"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("netcell-no-such-command"), std::string::npos);
  EXPECT_TRUE(netns_dir_entries() == std::vector<std::string>{"x"});
}

// The reproduction on the Linux backend: a repeatable option placed last before `--`
// (--publish, --dns, also in their `=` forms) leaves the command its own flags; so do the flags
// of run and exec themselves.
TEST_F(CliTest, CommandKeepsItsFlagsAfterARepeatableOption) {
  const std::vector<std::vector<std::string>> run_options = {
      {"--mode", "private", "--publish", "9000:80"},
      {"--mode", "private", "--publish=9000:80"},
      {"--mode", "private", "--dns", "192.0.2.53"},
      {"--mode", "private", "--dns=192.0.2.53"},
      {"--pid-ns", "--init"},
  };
  for (const auto& options : run_options) {
    std::vector<std::string> args = {"run"};
    args.insert(args.end(), options.begin(), options.end());
    args.insert(args.end(), {"--", "sh", "-c", "echo hi \"$@\"", "sh", "--help", "--json", "-c"});
    auto r = cli(args);
    EXPECT_EQ(r.exit_code, 0) << options[0] << " " << options[1] << ": " << r.err;
    EXPECT_EQ(r.out, "hi --help --json -c\n") << options[0] << " " << options[1];
  }
  ASSERT_EQ(cli({"create", "x", "--mode", "private"}).exit_code, 0);
  auto r = cli({"exec", "x", "--pid-ns", "--", "sh", "-c", "echo $$ \"$@\"", "sh", "--mode", "-c"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "1 --mode -c\n");
  EXPECT_TRUE(netns_dir_entries() == std::vector<std::string>{"x"});
}

TEST_F(CliTest, RunCleansUpWhenSignalled) {
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) {
    pid_t pid = start_cli({"run", "--name", "sig", "--", "sleep", "30"});
    ASSERT_TRUE(eventually([] { return fs::exists("/run/netns/sig"); }));
    // Let the command start, then signal the supervisor: it forwards the signal and cleans up.
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ::kill(pid, sig);
    EXPECT_EQ(wait_exit(pid), 128 + sig) << "signal " << sig;
    EXPECT_TRUE(netns_dir_entries().empty()) << "signal " << sig;
    EXPECT_FALSE(mounted("/run/netns/sig"));
  }
  // A PID 1 without handlers ignores SIGTERM: the supervisor escalates after its grace period.
  pid_t pid = start_cli({"run", "--name", "pid1", "--pid-ns", "--", "sleep", "30"});
  ASSERT_TRUE(eventually([] { return fs::exists("/run/netns/pid1"); }));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ::kill(pid, SIGTERM);
  EXPECT_EQ(wait_exit(pid, 15000), 128 + SIGKILL);
  EXPECT_TRUE(netns_dir_entries().empty());
}

TEST_F(CliTest, GcRemovesTheNamespaceOfAKilledRun) {
  pid_t pid = start_cli({"run", "--name", "crashed", "--", "sleep", "30"});
  ASSERT_TRUE(eventually([] { return fs::exists("/run/netns/crashed"); }));
  std::string children_file =
      "/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children";
  ASSERT_TRUE(eventually([&] { return !read_file(children_file).empty(); }));
  pid_t sleeper = std::stoi(read_file(children_file));
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  ::kill(sleeper, SIGKILL);  // the orphaned command, started by this test
  EXPECT_TRUE(fs::exists("/run/netns/crashed"));
  auto gc = cli({"gc", "--json"});
  ASSERT_EQ(gc.exit_code, 0) << gc.err;
  auto report = nlohmann::json::parse(gc.out);
  ASSERT_EQ(report["removed"].size(), 1U);
  EXPECT_TRUE(netns_dir_entries().empty());
  EXPECT_FALSE(mounted("/run/netns/crashed"));
  EXPECT_EQ(nlohmann::json::parse(cli({"gc", "--json"}).out)["removed"].size(), 0U);
}

TEST_F(CliTest, NamespaceGoesWithinASecondOfItsOwner) {
  for (const char* mode : {"full", "private"}) {
    pid_t owner = ::fork();
    if (owner == 0) {
      ::pause();
      ::_exit(0);
    }
    auto r = cli({"create", "owned", "--mode", mode, "--owner", std::to_string(owner)});
    ASSERT_EQ(r.exit_code, 0) << r.err;  // the CLI that created it is gone from here on
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    ASSERT_TRUE(fs::exists("/run/netns/owned"));
    ::kill(owner, SIGKILL);
    ::waitpid(owner, nullptr, 0);
    auto gone_at = std::chrono::steady_clock::now();
    ASSERT_TRUE(eventually([] { return !fs::exists("/run/netns/owned"); }, 3000)) << mode;
    auto took = std::chrono::steady_clock::now() - gone_at;
    EXPECT_LT(took, std::chrono::seconds(1)) << mode;
    EXPECT_TRUE(eventually([] { return fs::is_empty("/run/netcell/namespaces"); }, 1000));
    EXPECT_FALSE(mounted("/run/netns/owned"));
  }
  EXPECT_NE(sh("nft list table ip netcell").exit_code, 0);
}

TEST_F(CliTest, OwnerGuardLeavesANamespaceDestroyedByHandAlone) {
  pid_t owner = ::fork();
  if (owner == 0) {
    ::pause();
    ::_exit(0);
  }
  ASSERT_EQ(cli({"create", "a", "--owner", std::to_string(owner)}).exit_code, 0);
  ASSERT_EQ(cli({"destroy", "a"}).exit_code, 0);
  // A new namespace of the same name, not owned: the old guard must not touch it.
  ASSERT_EQ(cli({"create", "a"}).exit_code, 0);
  ::kill(owner, SIGKILL);
  ::waitpid(owner, nullptr, 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_TRUE(fs::exists("/run/netns/a"));
}

TEST_F(CliTest, FindPidByOwnerAndByNamespace) {
  ASSERT_EQ(cli({"create", "owned", "--owner", std::to_string(::getpid())}).exit_code, 0);
  auto by_owner = cli({"find-pid", std::to_string(::getpid()), "--json"});
  ASSERT_EQ(by_owner.exit_code, 0) << by_owner.err;
  EXPECT_EQ(nlohmann::json::parse(by_owner.out)["name"], "owned");

  ASSERT_EQ(cli({"create", "home"}).exit_code, 0);
  // A process started inside by iproute2, not by netcell: found through its network namespace.
  auto started = sh("ip netns exec home sleep 5 >/dev/null 2>&1 & echo $!");
  pid_t inside = std::stoi(started.out);
  // `ip netns exec` enters the namespace after the fork: wait (at most 2 s) until it has.
  const std::string own = sh("readlink /proc/self/ns/net").out;
  for (int i = 0; i < 100; ++i) {
    const std::string now = sh("readlink /proc/" + std::to_string(inside) + "/ns/net").out;
    if (!now.empty() && now != own) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  auto found = cli({"find-pid", std::to_string(inside)});
  EXPECT_EQ(found.out, "home\n") << found.err;
  ::kill(inside, SIGKILL);
  auto outside = cli({"find-pid", "1"});
  EXPECT_EQ(outside.exit_code, 1);
}

TEST_F(CliTest, StatsAndInfoMatchTheKernel) {
  ASSERT_EQ(cli({"create", "s"}).exit_code, 0);
  ASSERT_EQ(
      cli({"exec", "s", "--", "ping", "-c", "3", "-i", "0.2", "-W", "1", "127.0.0.1"}).exit_code,
      0);
  auto stats = nlohmann::json::parse(cli({"stats", "s", "--json"}).out);
  auto kernel = ip_json({"-n", "s", "-s", "link", "show", "lo"});
  ASSERT_EQ(kernel.size(), 1U);
  EXPECT_EQ(stats["interface_count"], 1);
  EXPECT_GE(stats["total"]["rx_packets"].get<int>(), 6);  // 3 requests + 3 replies on lo
  EXPECT_EQ(stats["interfaces"][0]["rx_packets"], kernel[0]["stats64"]["rx"]["packets"]);
  EXPECT_EQ(stats["interfaces"][0]["tx_bytes"], kernel[0]["stats64"]["tx"]["bytes"]);

  auto info = nlohmann::json::parse(cli({"info", "s", "--json"}).out);
  EXPECT_EQ(info["backend"], "linux");
  EXPECT_EQ(info["enforced"], true);
  EXPECT_EQ(info["netns_path"], "/run/netns/s");
  auto addrs = ip_json({"-n", "s", "-4", "addr"});
  ASSERT_EQ(addrs.size(), 1U);
  EXPECT_EQ(info["interfaces"][0]["addresses"][0],
            addrs[0]["addr_info"][0]["local"].get<std::string>() + "/" +
                std::to_string(addrs[0]["addr_info"][0]["prefixlen"].get<int>()));
}

TEST_F(CliTest, NameClashWithAForeignNamespaceLeavesItAlone) {
  ASSERT_EQ(sh("ip netns add theirs").exit_code, 0);
  auto r = cli({"create", "theirs"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("already exists"), std::string::npos);
  EXPECT_EQ(ip_json({"netns", "list"}).size(), 1U);
  EXPECT_EQ(sh("ip netns exec theirs true").exit_code, 0);
  EXPECT_TRUE(fs::is_empty("/run/netcell/namespaces"));
}

TEST_F(CliTest, SeedApiExampleRuns) {
  auto r = testing::run({NETCELL_EXAMPLE_SEED_PATH});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("find_by_pid"), std::string::npos);
  EXPECT_TRUE(netns_dir_entries().empty());
}

}  // namespace
}  // namespace netcell
