// kernel::spawn and Child, privileged: every test runs in its own world (tests/support/world.sh),
// with a named netns "t1" holding a veth pair d0/d1 (veth rather than dummy: the dummy module may
// be missing), and a scratch directory on the world's /run.
#include "linux/spawn.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "core/unique_fd.h"
#include "netcell/child.h"
#include "support/process.h"

namespace netcell {
namespace {

namespace fs = std::filesystem;
using kernel::SpawnRequest;
using testing::sh;

constexpr char kScratch[] = "/run/spawn-test";

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Waits at most `timeout_ms` for the child to exit; nullopt if it is still running (the Child's
// destructor then kills and reaps it).
std::optional<int> wait_for(Child& child, int timeout_ms = 10000) {
  pollfd pfd{child.pidfd(), POLLIN, 0};
  if (::poll(&pfd, 1, timeout_ms) != 1) return std::nullopt;
  auto code = child.wait();
  if (!code) return std::nullopt;
  return *code;
}

// True when the test process has no child left, zombie or alive.
bool no_children() {
  return ::waitpid(-1, nullptr, WNOHANG | __WALL) < 0 && errno == ECHILD;
}

class SpawnTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::in_world()) GTEST_FAIL() << "run through tests/support/world.sh";
    ASSERT_EQ(sh("ip netns add t1 && ip -n t1 link add d0 type veth peer name d1").exit_code, 0);
    netns_ = UniqueFd(::open("/run/netns/t1", O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(netns_.valid()) << "open /run/netns/t1";
    fs::create_directories(kScratch);
  }

  void TearDown() override {
    netns_.reset();
    if (testing::in_world()) {
      sh("ip netns del t1");
      fs::remove_all(kScratch);
    }
  }

  SpawnRequest request(std::vector<std::string> argv) const {
    SpawnRequest req;
    req.netns_fd = netns_.get();
    req.netns_name = "t1";
    req.argv = std::move(argv);
    return req;
  }
  SpawnRequest shell(const std::string& script) const { return request({"sh", "-c", script}); }

  // Spawns and waits (bounded); -1 if spawning failed or it did not exit in time.
  int run_to_exit(const SpawnRequest& req) {
    auto child = kernel::spawn(req);
    EXPECT_TRUE(child) << child.error().to_string();
    if (!child) return -1;
    return wait_for(*child).value_or(-1);
  }

  static std::string scratch(const std::string& name) { return std::string(kScratch) + "/" + name; }

  UniqueFd netns_;
};

TEST_F(SpawnTest, ExitCodePassesThrough) {
  EXPECT_EQ(run_to_exit(shell("exit 7")), 7);
  SpawnRequest here = shell("exit 3");
  here.netns_fd = -1;  // stays in the caller's namespaces, no mount work at all
  EXPECT_EQ(run_to_exit(here), 3);
  EXPECT_TRUE(no_children());
}

TEST_F(SpawnTest, KilledBySignalIs128PlusSignal) {
  auto child = kernel::spawn(request({"sleep", "30"}));
  ASSERT_TRUE(child) << child.error().to_string();
  ASSERT_TRUE(child->signal(SIGKILL));
  EXPECT_EQ(wait_for(*child), 128 + SIGKILL);
  EXPECT_EQ(child->wait().value_or(-1), 128 + SIGKILL) << "a second wait repeats the code";
}

TEST_F(SpawnTest, RunsInTargetNetworkNamespaceWithItsOwnSysfs) {
  std::string want = sh("ip netns exec t1 readlink /proc/self/ns/net").out;
  std::string world = sh("readlink /proc/self/ns/net").out;
  ASSERT_FALSE(want.empty());
  ASSERT_NE(want, world);
  std::string ns_file = scratch("ns"), sys_file = scratch("sys");
  ASSERT_EQ(run_to_exit(shell("readlink /proc/self/ns/net > " + ns_file +
                              " && ls /sys/class/net > " + sys_file)),
            0);
  EXPECT_EQ(read_file(ns_file), want);
  EXPECT_EQ(read_file(sys_file), "d0\nd1\nlo\n") << "a fresh sysfs shows t1's links";
  EXPECT_FALSE(fs::exists("/sys/class/net/d0")) << "the world's /sys is untouched";
}

TEST_F(SpawnTest, NewPidNamespaceMakesCommandPid1WithFreshProc) {
  SpawnRequest req =
      shell("echo $$ > " + scratch("pids") + "; readlink /proc/self >> " + scratch("pids"));
  req.new_pid_namespace = true;
  ASSERT_EQ(run_to_exit(req), 0);
  // The shell is PID 1; its child readlink is PID 2 in the /proc it sees.
  EXPECT_EQ(read_file(scratch("pids")), "1\n2\n");
  EXPECT_TRUE(fs::exists("/proc/self")) << "the world's /proc is untouched";
}

TEST_F(SpawnTest, InitForwardsSigtermToCommand) {
  SpawnRequest req = request({"sleep", "30"});
  req.new_pid_namespace = true;
  req.init = true;
  auto child = kernel::spawn(req);
  ASSERT_TRUE(child) << child.error().to_string();
  ASSERT_TRUE(child->signal(SIGTERM));
  EXPECT_EQ(wait_for(*child, 5000), 128 + SIGTERM);
}

TEST_F(SpawnTest, InitReapsOrphansAndExitsWithCommandStatus) {
  // An orphan that exits at once (re-parented to init), a process list taken after it is gone,
  // then a background sleep left running when the command exits.
  std::string stat_file = scratch("stat");
  SpawnRequest req = shell("(sleep 0.1 &); sleep 0.6; cat /proc/[0-9]*/stat > " + stat_file +
                           "; sleep 30 & exit 5");
  req.new_pid_namespace = true;
  req.init = true;
  auto child = kernel::spawn(req);
  ASSERT_TRUE(child) << child.error().to_string();
  std::error_code ec;
  fs::path pid_ns = fs::read_symlink("/proc/" + std::to_string(child->pid()) + "/ns/pid", ec);
  ASSERT_FALSE(ec);

  EXPECT_EQ(wait_for(*child, 5000), 5) << "init exits with the command, not with its leftovers";
  std::istringstream stats(read_file(stat_file));
  int processes = 0;
  for (std::string line; std::getline(stats, line); ++processes) {
    // "pid (comm) state ..."
    size_t close = line.rfind(')');
    ASSERT_NE(close, std::string::npos) << line;
    EXPECT_NE(line.substr(close + 2, 1), "Z") << "zombie left: " << line;
    EXPECT_EQ(line.find("(sleep)"), std::string::npos) << "orphan still there: " << line;
  }
  EXPECT_GE(processes, 2) << "init and sh (sh expands the glob before cat starts)";

  // The kernel killed the background sleep with init: nothing is left in that PID namespace.
  for (const auto& entry : fs::directory_iterator("/proc")) {
    fs::path ns = fs::read_symlink(entry.path() / "ns" / "pid", ec);
    if (!ec) {
      EXPECT_NE(ns, pid_ns) << "left in the namespace: " << entry.path();
    }
  }
}

TEST_F(SpawnTest, EtcDirFilesAreBoundOverEtc) {
  if (!fs::exists("/etc/resolv.conf")) GTEST_SKIP() << "no /etc/resolv.conf to bind over";
  std::string before = read_file("/etc/resolv.conf");
  fs::create_directories(scratch("etc"));
  std::ofstream(scratch("etc/resolv.conf")) << "nameserver 192.0.2.53\n";
  std::ofstream(scratch("etc/netcell-not-in-etc")) << "skipped: /etc has no such file\n";
  ASSERT_NE(before, "nameserver 192.0.2.53\n");

  SpawnRequest req = shell("cat /etc/resolv.conf > " + scratch("seen") +
                           "; test -e /etc/netcell-not-in-etc; echo $? >> " + scratch("seen"));
  req.etc_dir = scratch("etc");
  ASSERT_EQ(run_to_exit(req), 0);
  EXPECT_EQ(read_file(scratch("seen")), "nameserver 192.0.2.53\n1\n");
  EXPECT_EQ(read_file("/etc/resolv.conf"), before) << "the bind mount stays in the child";
}

TEST_F(SpawnTest, NonexistentCommandIsNotFoundAndLeavesNoChild) {
  auto plain = kernel::spawn(request({"netcell-no-such-cmd", "arg"}));
  ASSERT_FALSE(plain);
  EXPECT_EQ(plain.error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(plain.error().sys_errno(), ENOENT);
  EXPECT_EQ(plain.error().to_string(), "exec netcell-no-such-cmd: No such file or directory");
  EXPECT_TRUE(no_children());

  // Under init the command's exec fails in a grandchild; the report still comes through.
  SpawnRequest req = request({"netcell-no-such-cmd"});
  req.new_pid_namespace = true;
  req.init = true;
  auto with_init = kernel::spawn(req);
  ASSERT_FALSE(with_init);
  EXPECT_EQ(with_init.error().code(), ErrorCode::kNotFound);
  EXPECT_TRUE(no_children());

  auto absolute = kernel::spawn(request({"/nonexistent/bin/true"}));
  ASSERT_FALSE(absolute);
  EXPECT_EQ(absolute.error().code(), ErrorCode::kNotFound);
}

TEST_F(SpawnTest, SetupFailureIsReported) {
  // A regular file is no namespace: setns fails in the child, before exec.
  UniqueFd not_a_netns(::open("/proc/self/status", O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(not_a_netns.valid());
  SpawnRequest req = shell("exit 0");
  req.netns_fd = not_a_netns.get();
  auto child = kernel::spawn(req);
  ASSERT_FALSE(child);
  EXPECT_EQ(child.error().sys_errno(), EINVAL);
  EXPECT_EQ(child.error().message(), "join network namespace for sh");
  EXPECT_TRUE(no_children());
}

// Restores the calling thread's signal mask and SIGINT disposition on every path.
class SignalStateGuard {
 public:
  SignalStateGuard() {
    ::pthread_sigmask(SIG_SETMASK, nullptr, &mask_);
    ::sigaction(SIGINT, nullptr, &sigint_);
  }
  ~SignalStateGuard() {
    ::pthread_sigmask(SIG_SETMASK, &mask_, nullptr);
    ::sigaction(SIGINT, &sigint_, nullptr);
  }
  SignalStateGuard(const SignalStateGuard&) = delete;
  SignalStateGuard& operator=(const SignalStateGuard&) = delete;

 private:
  sigset_t mask_;
  struct sigaction sigint_ {};
};

TEST_F(SpawnTest, CallerSignalMaskAndIgnoresDoNotLeak) {
  SignalStateGuard guard;
  // As the CLI does: block the signals it forwards. Also ignore SIGINT, which exec would keep.
  sigset_t forwarded;
  ::sigemptyset(&forwarded);
  ::sigaddset(&forwarded, SIGTERM);
  ::sigaddset(&forwarded, SIGHUP);
  ::pthread_sigmask(SIG_BLOCK, &forwarded, nullptr);
  ::signal(SIGINT, SIG_IGN);

  std::string file = scratch("status");
  ASSERT_EQ(run_to_exit(shell("exec grep -E '^Sig(Blk|Ign):' /proc/self/status > " + file)), 0);
  std::istringstream status(read_file(file));
  std::string blk_line, ign_line;
  std::getline(status, blk_line);
  std::getline(status, ign_line);
  EXPECT_EQ(blk_line, "SigBlk:\t0000000000000000");
  ASSERT_EQ(ign_line.rfind("SigIgn:\t", 0), 0U) << ign_line;
  unsigned long long ignored = std::stoull(ign_line.substr(8), nullptr, 16);
  EXPECT_EQ(ignored & (1ULL << (SIGINT - 1)), 0U) << ign_line;

  auto child = kernel::spawn(request({"sleep", "30"}));
  ASSERT_TRUE(child) << child.error().to_string();
  ASSERT_TRUE(child->signal(SIGTERM));
  EXPECT_EQ(wait_for(*child, 5000), 128 + SIGTERM);
}

TEST_F(SpawnTest, DestroyingChildKillsAndReaps) {
  pid_t first = -1, second = -1;
  {
    auto a = kernel::spawn(request({"sleep", "30"}));
    auto b = kernel::spawn(request({"sleep", "30"}));
    ASSERT_TRUE(a && b);
    first = a->pid();
    second = b->pid();
    Child moved(std::move(*a));
    EXPECT_EQ(moved.pid(), first);
    EXPECT_FALSE(a->wait()) << "a moved-from Child owns nothing";
    moved = std::move(*b);  // kills and reaps `first`
    EXPECT_EQ(::kill(first, 0), -1);
    EXPECT_EQ(moved.pid(), second);
  }
  // ESRCH, not a zombie: both were reaped.
  EXPECT_EQ(::kill(second, 0), -1);
  EXPECT_EQ(errno, ESRCH);
  EXPECT_TRUE(no_children());
}

}  // namespace
}  // namespace netcell
