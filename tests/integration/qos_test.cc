// Bandwidth limits end to end, each test in its own throwaway world: the qdiscs as `tc -j` shows
// them on both ends of the veth, real throughput measured with iperf3 in both directions, and
// nothing left behind by destroy or by a create that fails after the limits were set.
#include "linux/qos.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "linux/link.h"
#include "linux/netlink.h"
#include "support/process.h"

namespace netcell {
namespace {

using testing::cli;
using testing::run;
using testing::sh;

constexpr int kIperfPort = 5201;

// The root qdisc of `dev` (in namespace `ns`, or the world when empty) as `tc -j` shows it; null
// when tc shows none.
nlohmann::json root_qdisc(const std::string& ns, const std::string& dev) {
  std::vector<std::string> argv = {"tc", "-j"};
  if (!ns.empty()) argv.insert(argv.end(), {"-n", ns});
  argv.insert(argv.end(), {"qdisc", "show", "dev", dev});
  auto r = run(argv);
  if (r.exit_code != 0) return nullptr;
  auto parsed = nlohmann::json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_array()) return nullptr;
  for (const auto& q : parsed) {
    if (q.value("root", false)) return q;
  }
  return nullptr;
}

// tc shows a tbf's rate in bytes per second.
std::uint64_t tbf_rate_bits(const nlohmann::json& qdisc) {
  if (!qdisc.is_object() || qdisc.value("kind", "") != "tbf") return 0;
  return qdisc["options"].value("rate", std::uint64_t{0}) * 8;
}

// The GSO limit of `dev` as `ip -d` shows it; 0 when unreadable.
std::uint64_t gso_max_size(const std::string& ns, const std::string& dev) {
  std::vector<std::string> args = {"-d", "link", "show", "dev", dev};
  if (!ns.empty()) args.insert(args.begin(), {"-n", ns});
  auto links = testing::ip_json(args);
  if (links.size() != 1) return 0;
  return links[0].value("gso_max_size", std::uint64_t{0});
}

// True when no GSO packet of `dev` can be larger than its tbf bucket.
bool gso_fits_bucket(const std::string& ns, const std::string& dev, const nlohmann::json& qdisc) {
  const std::uint64_t gso = gso_max_size(ns, dev);
  const std::uint64_t burst = qdisc.is_object() ? qdisc["options"].value("burst", 0ULL) : 0;
  return gso > 0 && (gso <= burst || (burst >= 65536 && gso == 65536));
}

// Every tbf qdisc left in the world, as "dev:kind".
std::vector<std::string> tbf_qdiscs_in_world() {
  std::vector<std::string> out;
  auto r = run({"tc", "-j", "qdisc", "show"});
  auto parsed = nlohmann::json::parse(r.out, nullptr, false);
  if (!parsed.is_array()) return {"unreadable: " + r.out + r.err};
  for (const auto& q : parsed) {
    if (q.value("kind", "") == "tbf") out.push_back(q.value("dev", "?") + ":tbf");
  }
  return out;
}

nlohmann::json info_json(const std::string& ns) {
  return nlohmann::json::parse(cli({"info", ns, "--json"}).out, nullptr, false);
}

// An iperf3 server inside namespace `ns`, bound to `address`; killed by its pid when the test
// ends, and by an alarm after 60 s should the test die first.
class Iperf3Server {
 public:
  Iperf3Server(const std::string& ns, const std::string& address) : ns_(ns) {
    std::fflush(nullptr);  // or the child would print what the parent buffered
    pid_ = ::fork();
    if (pid_ == 0) {
      ::alarm(60);  // survives exec
      std::freopen("/dev/null", "w", stdout);
      std::freopen("/dev/null", "w", stderr);
      std::string port = std::to_string(kIperfPort);
      ::execlp("ip", "ip", "netns", "exec", ns.c_str(), "iperf3", "-s", "-B", address.c_str(), "-p",
               port.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
  }
  ~Iperf3Server() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 100; ++i) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  Iperf3Server(const Iperf3Server&) = delete;
  Iperf3Server& operator=(const Iperf3Server&) = delete;

  // Waits (at most 2 s) until the server listens.
  bool wait_ready() const {
    for (int i = 0; i < 100 && pid_ > 0; ++i) {
      auto r =
          sh("ip netns exec " + ns_ + " ss -Hltn 'sport = :" + std::to_string(kIperfPort) + "'");
      if (r.exit_code == 0 && !r.out.empty()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

 private:
  std::string ns_;
  pid_t pid_ = -1;
};

// Throughput in bit/s as the receiving side counted it over a 2 s run from the world to
// `address` (reverse: from the server at `address` to the world); 0 with a message on failure.
double measure(const std::string& address, bool reverse, std::string& error) {
  std::vector<std::string> argv = {
      "timeout", "10", "iperf3", "-c", address, "-p", std::to_string(kIperfPort), "-t", "2", "-J"};
  if (reverse) argv.push_back("-R");
  auto r = run(argv, 15000);
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  if (r.exit_code != 0 || !j.is_object() || !j.contains("end")) {
    error = "iperf3 exit " + std::to_string(r.exit_code) + ": " + r.out.substr(0, 300) + r.err;
    return 0;
  }
  return j["end"]["sum_received"].value("bits_per_second", 0.0);
}

class QosTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::in_world()) GTEST_FAIL() << "run through tests/support/world.sh";
  }
  void TearDown() override {
    auto list = nlohmann::json::parse(cli({"list", "--json"}).out, nullptr, false);
    if (list.is_array()) {
      for (const auto& ns : list) cli({"destroy", ns["name"].get<std::string>()});
    }
    for (const auto& net :
         nlohmann::json::parse(cli({"network", "list", "--json"}).out, nullptr, false)) {
      if (net.is_object() && net["kind"] == "bridged") {
        cli({"network", "rm", net["name"].get<std::string>()});
      }
    }
  }

  // Waits (at most 2 s) for the kernel's asynchronous teardown, then says what is left.
  static std::vector<std::string> leftovers(const std::vector<std::string>& host_ends) {
    std::vector<std::string> left;
    for (int i = 0; i < 100; ++i) {
      left = tbf_qdiscs_in_world();
      for (const auto& dev : host_ends) {
        if (run({"ip", "link", "show", "dev", dev}).exit_code == 0) left.push_back(dev);
      }
      if (left.empty()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return left;
  }
};

struct Limits {
  std::string name;
  std::vector<std::string> flags;
  double egress_bps;
  double ingress_bps;
};

TEST_F(QosTest, ThroughputFollowsTheLimitsInBothDirections) {
  // 1, 10 and 100 Mbit/s each way; two namespaces are asymmetric, so swapped directions fail.
  const std::vector<Limits> cases = {
      {"r1", {"--rate", "1mbit"}, 1e6, 1e6},
      {"r10", {"--egress-rate", "10mbit", "--ingress-rate", "100Mbit"}, 10e6, 100e6},
      {"r100", {"--rate", "10mbit", "--egress-rate", "100mbit"}, 100e6, 10e6},
  };
  std::vector<std::string> host_ends;
  for (const auto& c : cases) {
    std::vector<std::string> args = {"create", c.name, "--mode", "private"};
    args.insert(args.end(), c.flags.begin(), c.flags.end());
    auto r = cli(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto info = info_json(c.name);
    ASSERT_TRUE(info.is_object());
    EXPECT_EQ(info["rate"]["egress_bps"], static_cast<std::uint64_t>(c.egress_bps));
    EXPECT_EQ(info["rate"]["ingress_bps"], static_cast<std::uint64_t>(c.ingress_bps));
    const std::string host_end = info["host_interface"];
    host_ends.push_back(host_end);
    // The kernel's view: the namespace end shapes egress, the host end ingress.
    auto inside = root_qdisc(c.name, "eth0");
    auto outside = root_qdisc("", host_end);
    EXPECT_EQ(inside.value("kind", ""), "tbf") << inside.dump();
    EXPECT_EQ(outside.value("kind", ""), "tbf") << outside.dump();
    EXPECT_EQ(tbf_rate_bits(inside), static_cast<std::uint64_t>(c.egress_bps)) << inside.dump();
    EXPECT_EQ(tbf_rate_bits(outside), static_cast<std::uint64_t>(c.ingress_bps)) << outside.dump();
    // Local TCP senders build no GSO packet larger than the bucket.
    EXPECT_TRUE(gso_fits_bucket(c.name, "eth0", inside)) << gso_max_size(c.name, "eth0");
    EXPECT_TRUE(gso_fits_bucket("", host_end, outside)) << gso_max_size("", host_end);
  }
  auto human = cli({"info", "r10"});
  EXPECT_NE(human.out.find("rate:       egress 10mbit, ingress 100mbit"), std::string::npos)
      << human.out;

  for (const auto& c : cases) {
    std::string ip;
    const auto info = info_json(c.name);
    for (const auto& iface : info["interfaces"]) {
      if (iface["name"] == "eth0") ip = iface["addresses"][0];
    }
    ip = ip.substr(0, ip.find('/'));
    ASSERT_FALSE(ip.empty()) << c.name;
    Iperf3Server server(c.name, ip);
    ASSERT_TRUE(server.wait_ready()) << c.name;
    for (bool reverse : {false, true}) {
      // Forward: the world sends to the namespace (its ingress); reverse: it sends (egress).
      const double want = reverse ? c.egress_bps : c.ingress_bps;
      std::string error;
      const double got = measure(ip, reverse, error);
      std::printf("[ rate     ] %s %s: configured %.0f Mbit/s, measured %.3f Mbit/s (%.1f%%)\n",
                  c.name.c_str(),
                  reverse ? "egress (namespace -> world)" : "ingress (world -> namespace)",
                  want / 1e6, got / 1e6, 100.0 * got / want);
      EXPECT_TRUE(error.empty()) << error;
      EXPECT_GE(got, want * 0.85) << c.name << (reverse ? " egress" : " ingress");
      EXPECT_LE(got, want * 1.15) << c.name << (reverse ? " egress" : " ingress");
    }
  }

  for (const auto& c : cases) {
    auto r = cli({"destroy", c.name});
    EXPECT_EQ(r.exit_code, 0) << r.err;
  }
  EXPECT_EQ(leftovers(host_ends), std::vector<std::string>{});
  EXPECT_EQ(testing::link_names(), std::vector<std::string>{"lo"});
}

TEST_F(QosTest, BridgedNamespacesAreLimitedOnTheirPort) {
  ASSERT_EQ(cli({"network", "create", "lan", "--subnet", "10.77.0.0/24"}).exit_code, 0);
  auto r = cli({"create", "b", "--network", "lan", "--egress-rate", "2.5mbit"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto info = info_json("b");
  EXPECT_EQ(info["rate"]["egress_bps"], 2'500'000);
  EXPECT_TRUE(info["rate"]["ingress_bps"].is_null());
  EXPECT_EQ(tbf_rate_bits(root_qdisc("b", "eth0")), 2'500'000U);
  // No ingress limit: the bridge port keeps the kernel's default qdisc.
  auto port = root_qdisc("", info["host_interface"]);
  EXPECT_NE(port.value("kind", ""), "tbf") << port.dump();
  ASSERT_EQ(cli({"destroy", "b"}).exit_code, 0);
  EXPECT_EQ(leftovers({info["host_interface"]}), std::vector<std::string>{});
}

TEST_F(QosTest, RunLimitsTheCommandsNamespace) {
  auto r = cli({"run", "--mode", "private", "--ingress-rate", "20mbit", "--", "tc", "-j", "qdisc",
                "show", "dev", "eth0"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // Only the ingress is limited: the namespace end keeps its default qdisc.
  EXPECT_EQ(r.out.find("tbf"), std::string::npos) << r.out;
  r = cli({"run", "--mode", "private", "--rate", "20mbit", "--", "tc", "-j", "qdisc", "show", "dev",
           "eth0"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto shown = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_TRUE(shown.is_array() && !shown.empty()) << r.out;
  EXPECT_EQ(tbf_rate_bits(shown[0]), 20'000'000U) << r.out;
  EXPECT_EQ(leftovers({}), std::vector<std::string>{});
}

TEST_F(QosTest, ACreateThatFailsAfterTheLimitsLeavesNothing) {
  // A read-only /etc/netns makes the last step (resolv.conf) fail after both qdiscs are set.
  ASSERT_EQ(sh("mount -o remount,ro /etc/netns").exit_code, 0);
  auto r = cli({"create", "doomed", "--mode", "private", "--rate", "5mbit"});
  sh("mount -o remount,rw /etc/netns");
  ASSERT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("doomed"), std::string::npos) << r.err;
  EXPECT_EQ(nlohmann::json::parse(cli({"list", "--json"}).out), nlohmann::json::array());
  EXPECT_EQ(run({"ip", "netns", "list"}).out, "");
  EXPECT_EQ(leftovers({}), std::vector<std::string>{});
  EXPECT_EQ(testing::link_names(), std::vector<std::string>{"lo"});
}

// set_egress_rate on its own, as topology links use it: idempotent, changes in place, removes.
TEST_F(QosTest, SetEgressRateIsIdempotentAndRemovable) {
  ASSERT_EQ(sh("ip link add qa type veth peer name qb && ip link set qa up && ip link set qb up")
                .exit_code,
            0);
  auto nl = kernel::NetlinkSocket::open();
  ASSERT_TRUE(nl) << nl.error().to_string();
  auto index = kernel::link_index(*nl, "qa");
  ASSERT_TRUE(index);
  ASSERT_TRUE(kernel::set_egress_rate(*nl, *index, 1'000'000));
  ASSERT_TRUE(kernel::set_egress_rate(*nl, *index, 1'000'000));  // again: no error
  EXPECT_EQ(tbf_rate_bits(root_qdisc("", "qa")), 1'000'000U);
  ASSERT_TRUE(kernel::set_egress_rate(*nl, *index, 40'000'000'000));  // rate64 (> 34 Gbit/s)
  EXPECT_EQ(tbf_rate_bits(root_qdisc("", "qa")), 40'000'000'000U);
  EXPECT_EQ(gso_max_size("", "qa"), 65536U);  // the bucket holds any GSO packet
  ASSERT_TRUE(kernel::set_egress_rate(*nl, *index, 3'000'000));
  auto q = root_qdisc("", "qa");
  EXPECT_TRUE(gso_fits_bucket("", "qa", q)) << gso_max_size("", "qa");
  EXPECT_LT(gso_max_size("", "qa"), 65536U);
  EXPECT_EQ(tbf_rate_bits(q), 3'000'000U);
  EXPECT_EQ(q.value("handle", ""), "1:");
  EXPECT_EQ(tbf_qdiscs_in_world(), std::vector<std::string>{"qa:tbf"});
  // Unset and 0 both remove; removing what is not there is fine.
  ASSERT_TRUE(kernel::set_egress_rate(*nl, *index, std::nullopt));
  EXPECT_NE(root_qdisc("", "qa").value("kind", ""), "tbf");
  EXPECT_EQ(gso_max_size("", "qa"), 65536U);  // back to the kernel's default
  EXPECT_TRUE(kernel::set_egress_rate(*nl, *index, 0));
  auto bad = kernel::set_egress_rate(*nl, *index, 10);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidArgument);
  auto missing = kernel::set_egress_rate(*nl, 99999, 1'000'000);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound) << missing.error().to_string();
  EXPECT_EQ(tbf_qdiscs_in_world(), std::vector<std::string>{});
  sh("ip link del qa");
}

}  // namespace
}  // namespace netcell
