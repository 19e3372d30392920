// One lifecycle suite, run against the simulation, the Linux backend and the rootless one: all
// must accept and refuse the same things with the same error codes. The Linux cases run only
// inside a throwaway world (ctest wraps every test in tests/support/world.sh) and fail loudly
// anywhere else; the rootless ones (a build of this file with NETCELL_CONFORMANCE_ROOTLESS, the
// conformance_rootless_tests target) only as the world's throwaway unprivileged user
// (tests/support/rootless_run.sh), each test in a process of its own, as ctest runs them: a
// process joins one rootless session for good.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "core/state_store.h"
#include "linux/linux_backend.h"
#include "netcell/netcell.h"
#include "sim/sim_backend.h"
#include "support/process.h"

namespace netcell {
namespace {

namespace fs = std::filesystem;

class LifecycleTest : public ::testing::TestWithParam<BackendKind> {
 protected:
  void SetUp() override {
    if (GetParam() != BackendKind::kSimulation && !testing::in_world()) {
      GTEST_FAIL() << "the Linux and rootless cases must run inside tests/support/world.sh";
    }
    if (GetParam() == BackendKind::kRootless) {
      static bool joined = false;  // a session, for good: it is root in the session's namespaces
      if (joined) GTEST_FAIL() << "one rootless case per process, as ctest runs them";
      joined = true;
      if (::geteuid() == 0) {
        GTEST_FAIL() << "the rootless cases must run as tests/support/rootless_run.sh's user";
      }
    }
    // The rootless user's home, on the world's own /run: its session's mounts stay in this
    // process's mount namespace, and the world takes them.
    std::string tmpl = GetParam() == BackendKind::kRootless ? "/run/ncrootless/netcell-conf-XXXXXX"
                                                            : "/tmp/netcell-conf-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr) << tmpl;
    dir_ = tmpl;
    ManagerOptions options;
    options.run_dir = dir_ + "/run";
    Result<NamespaceManager> mgr = fail(ErrorCode::kInvalidArgument, "no backend");
    if (GetParam() == BackendKind::kRootless) {
      options.backend = BackendChoice::kRootless;  // its namespaces are mounted in RUN_DIR/netns
      mgr = NamespaceManager::create(options);
    } else {
      options.netns_dir = netns_dir();
      auto backend = GetParam() == BackendKind::kLinux
                         ? make_linux_backend({.netns_dir = netns_dir(),
                                               .etc_netns_dir = "/etc/netns",
                                               .state_dir = dir_ + "/run"})
                         : make_simulation_backend();
      mgr = NamespaceManager::create(options, std::move(backend));
    }
    ASSERT_TRUE(mgr) << mgr.error().to_string();
    mgr_.emplace(std::move(*mgr));
  }
  void TearDown() override {
    if (mgr_) {
      for (const auto& info : mgr_->list()) (void)mgr_->destroy(info.name);
    }
    mgr_.reset();  // rootless: the session ends with the manager, while its run dir is there
    // A rootless session mounts RUN_DIR/netns and RUN_DIR/etc-netns in its mount namespace,
    // which this process joined.
    if (GetParam() == BackendKind::kRootless) {
      for (const auto& mounted : {netns_dir(), dir_ + "/run/etc-netns"}) {
        (void)::umount2(mounted.c_str(), MNT_DETACH);
      }
    }
    fs::remove_all(dir_);
  }

  std::string netns_dir() const {
    return GetParam() == BackendKind::kRootless ? dir_ + "/run/netns" : "/run/netns";
  }
  // The Linux backend, as root or inside the user's rootless session: isolation enforced.
  bool is_linux() const { return GetParam() != BackendKind::kSimulation; }
  NamespaceManager& mgr() { return *mgr_; }

  static NamespaceConfig named(std::string name, IsolationMode mode = IsolationMode::kFull) {
    NamespaceConfig c;
    c.name = std::move(name);
    c.mode = mode;
    return c;
  }

  // A rootless session stays while a manager of a process that joined it lives (it ends with the
  // last namespace once no such manager is left), and a process that joined one cannot join
  // another (docs/ROOTLESS.md).
  bool rootless() const { return GetParam() == BackendKind::kRootless; }
  // Rootless: the user's session, started by this (still single-threaded) process with a
  // namespace: a case that makes its first namespace from several threads at once needs one (a
  // process with threads cannot join). 0 or 1: how many namespaces it adds to list().
  std::size_t keep_session() {
    if (!rootless()) return 0;
    auto keeper = mgr().create(named("keeper"));
    EXPECT_TRUE(keeper) << keeper.error().to_string();
    return 1;
  }

  std::string dir_;
  std::optional<NamespaceManager> mgr_;
};

TEST_P(LifecycleTest, FullIsolationForAPidAnsweredEveryWay) {
  auto created = mgr().create(NamespaceConfig::full_isolation(::getpid()));
  ASSERT_TRUE(created) << created.error().to_string();
  const std::string id = created->name;
  EXPECT_EQ(id, "pid-" + std::to_string(::getpid()));
  EXPECT_EQ(created->backend, GetParam());
  EXPECT_EQ(created->enforced, is_linux());
  EXPECT_EQ(created->owner_pid, ::getpid());
  ASSERT_EQ(created->interfaces.size(), 1U);
  EXPECT_EQ(created->interfaces[0].name, "lo");
  EXPECT_NE(std::find(created->interfaces[0].addresses.begin(),
                      created->interfaces[0].addresses.end(), *IpPrefix::parse("127.0.0.1/8")),
            created->interfaces[0].addresses.end());

  EXPECT_TRUE(mgr().exists(id));
  auto info = mgr().info(id);
  ASSERT_TRUE(info);
  EXPECT_EQ(*info, *created);
  auto stats = mgr().stats(id);
  ASSERT_TRUE(stats) << stats.error().to_string();
  EXPECT_EQ(stats->interface_count(), 1U);
  EXPECT_EQ(stats->interfaces[0].name, "lo");
  auto all = mgr().list();
  ASSERT_EQ(all.size(), 1U);
  EXPECT_EQ(all[0].name, id);
  auto found = mgr().find_by_pid(::getpid());
  ASSERT_TRUE(found) << found.error().to_string();
  EXPECT_EQ(found->name, id);

  ASSERT_TRUE(mgr().destroy(id));
  EXPECT_FALSE(mgr().exists(id));
  EXPECT_EQ(mgr().info(id).error().code(), ErrorCode::kNotFound);
  EXPECT_TRUE(mgr().list().empty());
  if (is_linux()) {
    EXPECT_FALSE(fs::exists(netns_dir() + "/" + id));
  }
}

TEST_P(LifecycleTest, DuplicateNameIsRefusedAndTheFirstStays) {
  ASSERT_TRUE(mgr().create(named("dup")));
  auto again = mgr().create(named("dup", IsolationMode::kShared));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), ErrorCode::kAlreadyExists);
  auto info = mgr().info("dup");
  ASSERT_TRUE(info);
  EXPECT_EQ(info->mode, IsolationMode::kFull);
  EXPECT_EQ(mgr().list().size(), 1U);
}

TEST_P(LifecycleTest, MissingNamespacesAreNotFound) {
  EXPECT_FALSE(mgr().exists("ghost"));
  EXPECT_EQ(mgr().info("ghost").error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(mgr().stats("ghost").error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(mgr().destroy("ghost").error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(mgr().spawn("ghost", {"true"}).error().code(), ErrorCode::kNotFound);
}

TEST_P(LifecycleTest, InvalidInputIsRefusedAndLeavesNothing) {
  for (const std::string& bad :
       std::vector<std::string>{"", "a/b", "..", "x y", std::string(65, 'x')}) {
    auto r = mgr().create(named(bad));
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument) << bad;
  }
  auto cfg = NamespaceConfig::full_isolation(0x3fffff);
  cfg.name = "orphan";
  EXPECT_EQ(mgr().create(cfg).error().code(), ErrorCode::kNotFound);
  auto with_port = named("p");
  with_port.port_forwards.push_back({8080, 80, Protocol::kTcp, {}});
  EXPECT_EQ(mgr().create(with_port).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(mgr().find_by_pid(0).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(mgr().find_by_pid(0x3fffff).error().code(), ErrorCode::kNotFound);
  EXPECT_TRUE(mgr().list().empty());
  if (is_linux()) {  // rootless: no session was started, so there is no netns dir at all
    EXPECT_TRUE(!fs::exists(netns_dir()) || fs::is_empty(netns_dir()));
  }
}

// The address of a namespace's eth0, as its info reports it.
std::string eth0_address(const NamespaceInfo& info) {
  for (const auto& iface : info.interfaces) {
    if (iface.name == "eth0" && !iface.addresses.empty()) return iface.addresses[0].to_string();
  }
  return "";
}

TEST_P(LifecycleTest, PrivateNamespacesGetPoolAddressesOnce) {
  auto a = mgr().create(named("a", IsolationMode::kPrivate));
  ASSERT_TRUE(a) << a.error().to_string();
  auto b = mgr().create(named("b", IsolationMode::kPrivate));
  ASSERT_TRUE(b) << b.error().to_string();
  EXPECT_EQ(eth0_address(*a), "10.209.0.2/30");
  EXPECT_EQ(a->gateway->to_string(), "10.209.0.1");
  EXPECT_EQ(eth0_address(*b), "10.209.0.6/30");
  EXPECT_EQ(a->network, "private");
  EXPECT_EQ(a->host_interface, "ncp0");
  ASSERT_EQ(a->interfaces.size(), 2U);
  EXPECT_EQ(a->interfaces[0].name, "lo");
  // No MTU asked for: the backend's default (rootless: the uplink helper's, its cost being per
  // packet).
  EXPECT_EQ(a->interfaces[1].mtu, rootless() ? 65520U : 1500U);
  ASSERT_TRUE(mgr().destroy("a"));
  // A freed block is not handed out again at once (its host link may still be going away).
  auto c = mgr().create(named("c", IsolationMode::kPrivate));
  ASSERT_TRUE(c);
  EXPECT_EQ(eth0_address(*c), "10.209.0.10/30");
  auto stats = mgr().stats("c");
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->interface_count(), 2U);
  // An MTU asked for wins, the default's included.
  auto asked = named("d", IsolationMode::kPrivate);
  asked.interface = InterfaceConfig{};
  asked.interface->mtu = 1500;
  auto d = mgr().create(asked);
  ASSERT_TRUE(d) << d.error().to_string();
  EXPECT_EQ(d->interfaces[1].mtu, 1500U);
  auto info = mgr().info("d");
  ASSERT_TRUE(info);
  EXPECT_EQ(info->interfaces[1].mtu, 1500U);
}

TEST_P(LifecycleTest, StaticAddressesAndPortsAreCheckedAndNeverShared) {
  auto cfg = named("web", IsolationMode::kPrivate);
  cfg.interface =
      InterfaceConfig{"eth0", *IpAddress::parse("10.209.1.2"), 30, {}, 1400, "", {}, {}};
  cfg.port_forwards = {*PortForward::parse("8080:80")};
  auto web = mgr().create(cfg);
  ASSERT_TRUE(web) << web.error().to_string();
  EXPECT_EQ(eth0_address(*web), "10.209.1.2/30");
  EXPECT_EQ(web->interfaces[1].mtu, 1400U);
  auto same_ip = named("x", IsolationMode::kPrivate);
  same_ip.interface = cfg.interface;
  EXPECT_EQ(mgr().create(same_ip).error().code(), ErrorCode::kConflict);
  auto same_port = named("y", IsolationMode::kPrivate);
  same_port.port_forwards = {*PortForward::parse("127.0.0.1:8080:81")};
  EXPECT_EQ(mgr().create(same_port).error().code(), ErrorCode::kConflict);
  auto outside = named("z", IsolationMode::kPrivate);
  outside.interface =
      InterfaceConfig{"eth0", *IpAddress::parse("192.0.2.2"), 30, {}, 1500, "", {}, {}};
  EXPECT_EQ(mgr().create(outside).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(mgr().list().size(), 1U);
  ASSERT_TRUE(mgr().destroy("web"));     // rootless: the last namespace, and the session stays
  EXPECT_TRUE(mgr().create(same_port));  // the port is free again
}

TEST_P(LifecycleTest, BridgedNamespacesNeedTheirNetwork) {
  // Rootless: the network's session stays for the namespaces made on it next.
  auto cfg = NamespaceConfig::bridged(0, "lan");
  cfg.name = "n1";
  EXPECT_EQ(mgr().create(cfg).error().code(), ErrorCode::kNotFound);
  auto lan = mgr().create_network({"lan", *IpPrefix::parse("10.50.0.0/24"), false, false});
  ASSERT_TRUE(lan) << lan.error().to_string();
  EXPECT_EQ(lan->gateway->to_string(), "10.50.0.1");
  EXPECT_EQ(mgr().create_network({"lan", *IpPrefix::parse("10.51.0.0/24")}).error().code(),
            ErrorCode::kAlreadyExists);
  EXPECT_EQ(mgr().create_network({"x", *IpPrefix::parse("10.50.0.128/25")}).error().code(),
            ErrorCode::kConflict);
  EXPECT_EQ(mgr().create_network({"y", *IpPrefix::parse("10.209.5.0/24")}).error().code(),
            ErrorCode::kConflict);
  auto n1 = mgr().create(cfg);
  ASSERT_TRUE(n1) << n1.error().to_string();
  EXPECT_EQ(eth0_address(*n1), "10.50.0.2/24");
  EXPECT_EQ(n1->gateway->to_string(), "10.50.0.1");
  EXPECT_EQ(mgr().remove_network("lan").error().code(), ErrorCode::kConflict);
  ASSERT_TRUE(mgr().destroy("n1"));
  EXPECT_TRUE(mgr().remove_network("lan"));
  auto networks = mgr().list_networks();
  ASSERT_EQ(networks.size(), 1U);
  EXPECT_EQ(networks[0].name, "private");
}

TEST_P(LifecycleTest, SharedModeIsTrackedLikeTheOthers) {
  auto created = mgr().create(named("host", IsolationMode::kShared));
  ASSERT_TRUE(created) << created.error().to_string();
  EXPECT_TRUE(created->netns_path.empty());
  EXPECT_TRUE(mgr().exists("host"));
  EXPECT_TRUE(mgr().stats("host"));
  EXPECT_EQ(mgr().list().size(), 1U);
  ASSERT_TRUE(mgr().destroy("host"));
  EXPECT_FALSE(mgr().exists("host"));
}

TEST_P(LifecycleTest, SpawnPassesExitCodesThrough) {
  ASSERT_TRUE(mgr().create(named("run")));
  auto child = mgr().spawn("run", {"sh", "-c", "exit 3"});
  ASSERT_TRUE(child) << child.error().to_string();
  EXPECT_EQ(child->wait(), 3);
  auto killed = mgr().spawn("run", {"sh", "-c", "kill -9 $$"});
  ASSERT_TRUE(killed);
  EXPECT_EQ(killed->wait(), 128 + 9);
  auto missing = mgr().spawn("run", {"netcell-no-such-command"});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(mgr().spawn("run", {}).error().code(), ErrorCode::kInvalidArgument);
}

TEST_P(LifecycleTest, GcRemovesNamespacesOfEndedOwners) {
  pid_t owner = ::fork();
  if (owner == 0) {
    ::pause();
    ::_exit(0);
  }
  auto cfg = NamespaceConfig::full_isolation(owner);
  auto created = mgr().create(cfg);
  ASSERT_TRUE(created) << created.error().to_string();
  ASSERT_TRUE(mgr().create(named("keeper")));
  EXPECT_TRUE(mgr().gc().removed.empty());  // the owner is alive
  ::kill(owner, SIGKILL);
  ::waitpid(owner, nullptr, 0);
  auto report = mgr().gc();
  ASSERT_EQ(report.removed.size(), 1U);
  EXPECT_TRUE(report.errors.empty());
  EXPECT_FALSE(mgr().exists(created->name));
  EXPECT_TRUE(mgr().exists("keeper"));
  if (is_linux()) {
    EXPECT_FALSE(fs::exists(created->netns_path));
  }
}

TEST_P(LifecycleTest, GcRollsBackAnInterruptedCreate) {
  auto created = mgr().create(named("half"));
  ASSERT_TRUE(created);
  // What a create killed after making the namespace leaves: a record still in "creating".
  auto store = StateStore::open(dir_ + "/run");
  ASSERT_TRUE(store);
  auto record = store->read("half");
  ASSERT_TRUE(record && *record);
  (*record)->phase = Phase::kCreating;
  ASSERT_TRUE(store->write(**record));
  EXPECT_FALSE(mgr().exists("half"));
  auto report = mgr().gc();
  ASSERT_EQ(report.removed.size(), 1U) << (report.errors.empty() ? "" : report.errors[0]);
  EXPECT_FALSE(*store->read("half"));
  if (is_linux()) {
    EXPECT_FALSE(fs::exists(netns_dir() + "/half"));
  }
}

TEST_P(LifecycleTest, CorruptRecordsAreLeftAloneByGc) {
  ASSERT_TRUE(mgr().create(named("good")));
  {
    std::FILE* f = std::fopen((dir_ + "/run/namespaces/evil.json").c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs("{\"phase\":\"creating\",\"owner_start_time\":0,\"namespace\":{\"name\":\"evil\"",
               f);
    std::fclose(f);
  }
  auto report = mgr().gc();
  EXPECT_TRUE(report.removed.empty());
  ASSERT_EQ(report.errors.size(), 1U);
  EXPECT_NE(report.errors[0].find("evil"), std::string::npos);
  EXPECT_TRUE(mgr().exists("good"));
  EXPECT_TRUE(fs::exists(dir_ + "/run/namespaces/evil.json"));
}

TEST_P(LifecycleTest, ConcurrentThreadsNeverCollide) {
  const std::size_t kept = keep_session();
  constexpr int kThreads = 6;
  constexpr int kRounds = 5;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kRounds; ++i) {
        std::string name = 't' + std::to_string(t) + '-' + std::to_string(i);
        if (!mgr().create(named(name))) ++failures;
        // Every thread also races for one shared name: exactly one create may win each round.
        (void)mgr().create(named("contested"));
        if (!mgr().destroy(name)) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  auto all = mgr().list();
  std::erase_if(all, [](const NamespaceInfo& info) { return info.name == "keeper"; });
  ASSERT_EQ(all.size(), 1U);
  EXPECT_EQ(all[0].name, "contested");
  EXPECT_EQ(mgr().list().size(), 1U + kept);
}

TEST_P(LifecycleTest, TopologyUpIsIdempotentAndDownRemovesOnlyItsOwn) {
  auto parsed = parse_topology(R"(name: lab
networks:
  lan: {subnet: 10.77.0.0/24}
namespaces:
  a: {mode: bridged, network: lan, ip: 10.77.0.10/24}
  b:
    mode: full
    routes: [{to: 10.9.0.0/24, device: to-a}]
  c: {mode: private, publish: ["18081:80"]}
links:
  - ends:
      - {namespace: a, device: to-b, address: 10.9.0.1/24}
      - {namespace: b, device: to-a, address: 10.9.0.2/24}
)",
                               "lab.yaml");
  ASSERT_TRUE(parsed.topology) << parsed.errors.front().to_string();
  ASSERT_TRUE(mgr().create(named("outsider")));
  auto up = topology_up(mgr(), *parsed.topology, {});
  ASSERT_TRUE(up) << up.error().to_string();
  EXPECT_EQ(up->changed, 1 + 3 + (is_linux() ? 1 : 0));  // network, namespaces, link (Linux)
  auto a = mgr().info("a");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->topology.name, "lab");
  EXPECT_FALSE(a->topology.digest.empty());
  EXPECT_EQ(a->enforced, is_linux());
  auto again = topology_up(mgr(), *parsed.topology, {});
  ASSERT_TRUE(again) << again.error().to_string();
  EXPECT_EQ(again->changed, 0);
  auto down = topology_down(mgr(), *parsed.topology, {});
  ASSERT_TRUE(down) << down.error().to_string();
  EXPECT_FALSE(mgr().exists("a"));
  EXPECT_FALSE(mgr().exists("b"));
  EXPECT_FALSE(mgr().exists("c"));
  EXPECT_TRUE(mgr().exists("outsider"));
  for (const auto& n : mgr().list_networks()) EXPECT_NE(n.name, "lan");
  // A name taken outside the topology is refused before anything is made.
  ASSERT_TRUE(mgr().create(named("b")));
  auto refused = topology_up(mgr(), *parsed.topology, {});
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), ErrorCode::kConflict);
  EXPECT_FALSE(mgr().exists("a"));
  for (const auto& n : mgr().list_networks()) EXPECT_NE(n.name, "lan");
}

#ifdef NETCELL_CONFORMANCE_ROOTLESS
// This case's processes other than this one: the same program with the same arguments (a session's
// holder is a fork of its process) or naming `dir` (its helper's API socket is in it). Other
// cases of this suite may run at once as the same user, in worlds beside this one.
std::vector<pid_t> processes_of_this_case(const std::string& dir) {
  auto cmdline = [](const std::string& pid) {
    std::ifstream in("/proc/" + pid + "/cmdline", std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  };
  const std::string mine = cmdline("self");
  std::vector<pid_t> out;
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = std::stoi(name);
    if (pid == ::getpid()) continue;
    const std::string theirs = cmdline(name);
    if (theirs == mine || theirs.find(dir) != std::string::npos) out.push_back(pid);
  }
  return out;
}

// A library process goes on after its last namespace, and makes a network and then a namespace on
// it: its session stays while its manager lives, and goes with it; a process that joined a session
// cannot join another, and a manager made after the session ended says so in one line and starts
// none.
TEST_P(LifecycleTest, ALibraryProcessKeepsItsSessionWhileItsManagerLives) {
  ASSERT_TRUE(mgr().create(named("a", IsolationMode::kPrivate)));
  ASSERT_TRUE(mgr().destroy("a"));
  EXPECT_TRUE(fs::exists(dir_ + "/run/rootless/session.json")) << "the session stays";
  auto b = mgr().create(named("b", IsolationMode::kPrivate));
  ASSERT_TRUE(b) << b.error().to_string();
  ASSERT_TRUE(mgr().destroy("b"));
  auto lan = mgr().create_network({"lan", *IpPrefix::parse("10.51.0.0/24"), false, false});
  ASSERT_TRUE(lan) << lan.error().to_string();
  auto cfg = NamespaceConfig::bridged(0, "lan");
  cfg.name = "n1";
  auto n1 = mgr().create(cfg);
  ASSERT_TRUE(n1) << n1.error().to_string();
  ASSERT_TRUE(mgr().destroy("n1"));
  ASSERT_TRUE(mgr().remove_network("lan"));
  const std::string run_dir = dir_ + "/run";
  mgr_.reset();
  EXPECT_FALSE(fs::exists(run_dir + "/rootless/session.json")) << "it ends with the manager";
  std::vector<pid_t> left;
  for (int i = 0; i < 100 && !(left = processes_of_this_case(dir_)).empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(left.empty()) << left.size() << " processes left, the first " << left.front();
  ManagerOptions options;
  options.run_dir = run_dir;
  options.backend = BackendChoice::kRootless;
  auto again = NamespaceManager::create(options);
  ASSERT_TRUE(again) << again.error().to_string();
  mgr_.emplace(std::move(*again));
  auto refused = mgr().create(named("c", IsolationMode::kPrivate));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), ErrorCode::kConflict);
  const std::string line = refused.error().to_string();
  EXPECT_NE(line.find("joins one session only"), std::string::npos) << line;
  EXPECT_EQ(line.find('\n'), std::string::npos) << line;
  EXPECT_FALSE(mgr().exists("c"));
  EXPECT_FALSE(fs::exists(run_dir + "/rootless/session.json"));
  for (int i = 0; i < 100 && !(left = processes_of_this_case(dir_)).empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(left.empty()) << "the session started for it went: " << left.size() << " left";
}

// A process with threads cannot join the user's session (a user namespace is joined by a
// single-threaded process only): its first create fails with one line, and the session it
// started for it goes with it (it left the holder and the helper running).
TEST_P(LifecycleTest, AThreadedProcessCannotJoinAndLeavesNoSession) {
  ASSERT_TRUE(processes_of_this_case(dir_).empty());
  std::atomic<bool> done{false};
  std::thread other([&] {
    while (!done) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  });
  auto made = mgr().create(named("t"));
  done = true;
  other.join();
  ASSERT_FALSE(made);
  EXPECT_EQ(made.error().code(), ErrorCode::kUnsupported);
  EXPECT_NE(made.error().to_string().find("single-threaded"), std::string::npos)
      << made.error().to_string();
  EXPECT_FALSE(mgr().exists("t"));
  EXPECT_FALSE(fs::exists(dir_ + "/run/rootless/session.json"));
  std::vector<pid_t> left;
  for (int i = 0; i < 100 && !(left = processes_of_this_case(dir_)).empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the helper is being reaped
  }
  EXPECT_TRUE(left.empty()) << left.size() << " processes left, the first " << left.front();
}
#endif

#ifdef NETCELL_CONFORMANCE_ROOTLESS
INSTANTIATE_TEST_SUITE_P(Backends, LifecycleTest, ::testing::Values(BackendKind::kRootless),
                         [](const auto& param) { return std::string(to_string(param.param)); });
#else
INSTANTIATE_TEST_SUITE_P(Backends, LifecycleTest,
                         ::testing::Values(BackendKind::kSimulation, BackendKind::kLinux),
                         [](const auto& param) { return std::string(to_string(param.param)); });
#endif

}  // namespace
}  // namespace netcell
