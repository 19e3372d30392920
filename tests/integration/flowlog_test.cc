// The denied-flow log end to end: a FlowLogReader in the test process reads the kernel's log while
// namespaces with egress policies make real TCP, UDP and ICMP traffic to "the internet" (namespace
// `wan`, TEST-NET addresses); what it reads is appended to the namespaces' logs and read back
// through `netcell log --json` (parsed here as plain JSON). Allowed flows and a namespace without
// a policy are the positive controls: they reach their servers and log nothing. A port scan
// logs at most what the per-namespace rate limit lets through, its every port is still refused at
// once, and the kernel counts what was held back, while another namespace's refusal is logged.
#include "netcell/flowlog.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "support/process.h"

namespace netcell {
namespace {

using testing::cli;
using testing::sh;
using testing::tcp_probe;
using testing::TcpResponder;
using testing::UdpRecorder;
using Clock = std::chrono::steady_clock;

// The index of the rule with this action and text among the counters of `policy show --json`,
// which lists every rule in the policy's order.
int rule_index(const std::string& ns, const std::string& action, const std::string& text) {
  auto j = nlohmann::json::parse(cli({"policy", "show", ns, "--json"}).out, nullptr, false);
  if (!j.is_object() || !j.contains("counters")) return -1;
  const auto& rules = j["counters"]["rules"];
  for (std::size_t i = 0; i < rules.size(); ++i) {
    if (rules[i]["action"] == action && rules[i]["rule"] == text) return static_cast<int>(i);
  }
  return -1;
}

// `netcell log NS --json`, each line parsed as JSON.
std::vector<nlohmann::json> log_lines(const std::string& ns) {
  std::vector<nlohmann::json> out;
  auto r = cli({"log", ns, "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    out.push_back(nlohmann::json::parse(line, nullptr, false));
    EXPECT_TRUE(out.back().is_object()) << line;
  }
  return out;
}

class FlowLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::in_world()) GTEST_FAIL() << "run through tests/support/world.sh";
    ASSERT_EQ(testing::make_internet(), "");
    ASSERT_EQ(testing::wan_answers_for({"198.51.100.5", "198.51.100.6"}), "");
    auto mgr = NamespaceManager::create(ManagerOptions{});
    ASSERT_TRUE(mgr) << mgr.error().to_string();
    mgr_ = std::make_unique<NamespaceManager>(std::move(*mgr));
    auto reader = FlowLogReader::open(*mgr_);
    ASSERT_TRUE(reader) << reader.error().to_string();
    reader_ = std::make_unique<FlowLogReader>(std::move(*reader));
    // The control: a private namespace without a policy.
    ASSERT_EQ(cli({"create", "open", "--mode", "private"}).exit_code, 0);
  }

  // Reads the log for `quiet_ms` after the last packet (at most 5 s in all), appending every
  // flow to its namespace's log as the host service does.
  std::vector<DeniedFlow> drain(int quiet_ms = 400) {
    std::vector<DeniedFlow> flows;
    const auto deadline = Clock::now() + std::chrono::seconds(5);
    auto last = Clock::now();
    while (Clock::now() < deadline && Clock::now() - last < std::chrono::milliseconds(quiet_ms)) {
      pollfd p{reader_->fd(), POLLIN, 0};
      ::poll(&p, 1, 50);
      auto got = reader_->drain([&](const DeniedFlow& f) {
        flows.push_back(f);
        if (!f.ns.empty()) {
          EXPECT_TRUE(append_flow_log("/run/netcell", f.ns, f));
        }
      });
      EXPECT_TRUE(got) << got.error().to_string();
      if (got && *got > 0) last = Clock::now();
    }
    return flows;
  }

  std::unique_ptr<NamespaceManager> mgr_;
  std::unique_ptr<FlowLogReader> reader_;
};

TEST_F(FlowLogTest, EachRefusedFlowIsOneLineNamingItsRuleOrTheDefault) {
  const std::string deny_text = "198.51.100.5/32:8001/tcp";
  auto made = cli({"create", "p1", "--mode", "private", "--egress", "deny", "--allow",
                   "198.51.100.5:8000/tcp", "--allow", "198.51.100.6:9000/udp", "--deny",
                   "198.51.100.5:8001/tcp"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  TcpResponder allowed("wan", "198.51.100.5", 8000, "a\n"),
      denied("wan", "198.51.100.5", 8001, "b\n");
  UdpRecorder udp_ok("wan", "198.51.100.6", 9000), udp_denied("wan", "198.51.100.6", 9001);
  ASSERT_TRUE(allowed.ready() && denied.ready() && udp_ok.ready() && udp_denied.ready());
  const std::string p1 = testing::namespace_address("p1");
  ASSERT_FALSE(p1.empty());

  // Positive controls: the namespace without a policy reaches everything, and p1 its allowed
  // destinations; none of that is logged.
  auto control = tcp_probe("open", {"198.51.100.5:8000", "198.51.100.5:8001"});
  EXPECT_EQ(control["198.51.100.5:8000"], "open");
  EXPECT_EQ(control["198.51.100.5:8001"], "open");
  EXPECT_EQ(testing::probe("open", {"icmp", "300", "198.51.100.5"})["198.51.100.5"], "reply");
  testing::probe("open", {"udp", "-t", "control", "198.51.100.6:9001"});
  EXPECT_EQ(tcp_probe("p1", {"198.51.100.5:8000"})["198.51.100.5:8000"], "open");
  testing::probe("p1", {"udp", "-t", "allowed", "198.51.100.6:9000"});
  EXPECT_TRUE(drain(300).empty()) << "allowed flows were logged";

  // Refused: a TCP connect by the deny rule, a datagram and a ping by the default.
  EXPECT_EQ(tcp_probe("p1", {"198.51.100.5:8001"})["198.51.100.5:8001"], "closed");
  testing::probe("p1", {"udp", "-t", "refused", "198.51.100.6:9001"});
  EXPECT_NE(testing::probe("p1", {"icmp", "300", "198.51.100.5"})["198.51.100.5"], "reply");
  const auto flows = drain();
  std::string got;
  for (const auto& f : flows) got += to_json_line(f) + '\n';
  ASSERT_EQ(flows.size(), 3u) << got;
  EXPECT_EQ(reader_->lost(), 0u);
  // The datagrams' fate, seen by the servers: the allowed one and the control's arrived.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::string seen_ok, seen_denied;
  for (const auto& l : udp_ok.records()) seen_ok += l;
  for (const auto& l : udp_denied.records()) seen_denied += l;
  EXPECT_NE(seen_ok.find("allowed"), std::string::npos);
  EXPECT_NE(seen_denied.find("control"), std::string::npos);
  EXPECT_EQ(seen_denied.find("refused"), std::string::npos);

  // The log as `netcell log --json` shows it.
  const auto lines = log_lines("p1");
  ASSERT_EQ(lines.size(), 3u);
  const int index = rule_index("p1", "deny", deny_text);
  ASSERT_GE(index, 0);
  const auto& tcp = lines[0];
  EXPECT_EQ(tcp["kind"], "flow");
  EXPECT_EQ(tcp["namespace"], "p1");
  EXPECT_EQ(tcp["protocol"], "tcp");
  EXPECT_EQ(tcp["source"], p1);
  EXPECT_EQ(tcp["destination"], "198.51.100.5");
  EXPECT_EQ(tcp["port"], 8001);
  EXPECT_EQ(tcp["by"], "rule");
  EXPECT_EQ(tcp["rule_index"], index);
  EXPECT_EQ(tcp["rule"], "deny " + deny_text);
  const auto& udp = lines[1];
  EXPECT_EQ(udp["protocol"], "udp");
  EXPECT_EQ(udp["destination"], "198.51.100.6");
  EXPECT_EQ(udp["port"], 9001);
  EXPECT_EQ(udp["by"], "default");
  EXPECT_FALSE(udp.contains("rule_index"));
  const auto& ping = lines[2];
  EXPECT_EQ(ping["protocol"], "icmp");
  EXPECT_EQ(ping["destination"], "198.51.100.5");
  EXPECT_EQ(ping["icmp_type"], 8);
  EXPECT_EQ(ping["by"], "default");
  for (const auto& l : lines) {
    EXPECT_EQ(l["source"], p1);
    EXPECT_EQ(std::string(l["time"]).size(), 24u);
  }
  EXPECT_TRUE(log_lines("open").empty());
  // For people: one line each, naming the rule.
  auto human = cli({"log", "p1"});
  EXPECT_NE(human.out.find("tcp " + p1 + " -> 198.51.100.5:8001 refused by deny " + deny_text),
            std::string::npos)
      << human.out;

  // The kernel's view: the refuse path logs to this instance's group before it rejects.
  auto ruleset = sh("nft list chain ip netcell refuse_rule").out;
  EXPECT_NE(ruleset.find("group " + std::to_string(reader_->group())), std::string::npos)
      << ruleset;
  EXPECT_EQ(reader_->group(), flow_log_group("/run/netcell"));

  // Destroy removes the log.
  ASSERT_EQ(cli({"destroy", "p1"}).exit_code, 0);
  EXPECT_EQ(sh("test -e /run/netcell/log/p1.jsonl").exit_code, 1);
  auto gone = cli({"log", "p1"});
  EXPECT_EQ(gone.exit_code, 1);
  EXPECT_NE(gone.err.find("does not exist"), std::string::npos) << gone.err;
}

TEST_F(FlowLogTest, APortScanLogsWithinItsRateLimitAndAnotherNamespaceIsStillLogged) {
  ASSERT_EQ(cli({"create", "scan", "--mode", "private", "--egress", "deny"}).exit_code, 0);
  ASSERT_EQ(cli({"create", "other", "--mode", "private", "--egress", "deny"}).exit_code, 0);
  auto before = reader_->suppressed();
  ASSERT_TRUE(before) << before.error().to_string();
  constexpr int kPorts = 2000, kBatch = 250;
  const auto start = Clock::now();
  int refused = 0;
  for (int first = 1; first <= kPorts; first += kBatch) {
    std::vector<std::string> targets;
    for (int port = first; port < first + kBatch && port <= kPorts; ++port) {
      targets.push_back("198.51.100.5:" + std::to_string(port));
    }
    for (const auto& [target, result] : tcp_probe("scan", targets, 2000)) {
      refused += result == "closed";  // refused at once, logged or not
    }
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  // Meanwhile another namespace makes one refused connect.
  EXPECT_EQ(tcp_probe("other", {"198.51.100.6:443"})["198.51.100.6:443"], "closed");
  const auto flows = drain();
  EXPECT_EQ(refused, kPorts) << "every port is refused, logged or not";
  int from_scan = 0, from_other = 0;
  for (const auto& f : flows) {
    from_scan += f.ns == "scan";
    from_other += f.ns == "other" && f.port == 443;
  }
  EXPECT_EQ(from_other, 1);
  // At most the burst and the rate over the scan's time (and a second for the log's timing).
  const int bound = static_cast<int>(kFlowLogBurst + kFlowLogRate * (seconds + 1.0));
  EXPECT_GE(from_scan, static_cast<int>(kFlowLogBurst));
  EXPECT_LE(from_scan, bound) << "scan took " << seconds << " s";
  EXPECT_EQ(reader_->lost(), 0u);
  // The kernel counted what it held back: with nothing lost, logged + held back = refused.
  auto after = reader_->suppressed();
  ASSERT_TRUE(after);
  EXPECT_EQ(static_cast<int>(*after - *before) + from_scan, kPorts);
  EXPECT_EQ(log_lines("other").size(), 1u);
  EXPECT_EQ(static_cast<int>(log_lines("scan").size()), from_scan);
  std::printf("scan of %d ports in %.2f s: %d lines logged, %llu held back\n", kPorts, seconds,
              from_scan, static_cast<unsigned long long>(*after - *before));
}

// The log's rate limit keeps a bucket per source in the kernel (sets log_rate, log_rate6): a
// destroyed namespace's buckets go with it, IPv6 too, and another namespace's stay. A namespace
// that never sent anything the limit counted has none, and its destroy is not troubled by that.
TEST_F(FlowLogTest, ADestroyedNamespacesRateBucketsGoWithIt) {
  for (const char* ns : {"a", "b", "quiet"}) {
    ASSERT_EQ(cli({"create", ns, "--mode", "private", "--egress", "deny"}).exit_code, 0);
  }
  const auto info = nlohmann::json::parse(cli({"info", "a", "--json"}).out, nullptr, false);
  ASSERT_TRUE(info.is_object() && info.contains("gateway6")) << info.dump();
  std::string a6;  // the kernel's view of a's IPv6 address
  for (const auto& link : testing::ip_json({"-n", "a", "-6", "addr", "show", "dev", "eth0"})) {
    for (const auto& addr : link["addr_info"]) {
      if (addr.value("scope", "") == "global") a6 = addr["local"];
    }
  }
  ASSERT_FALSE(a6.empty());
  const std::string a = nlohmann::json(testing::namespace_address("a")).dump();
  const std::string b = nlohmann::json(testing::namespace_address("b")).dump();
  const std::string quiet = nlohmann::json(testing::namespace_address("quiet")).dump();
  const std::string a_v6 = nlohmann::json(a6).dump();  // quoted, as nft -j writes it
  EXPECT_EQ(tcp_probe("a", {"198.51.100.5:80"})["198.51.100.5:80"], "closed");
  EXPECT_EQ(tcp_probe("b", {"198.51.100.6:80"})["198.51.100.6:80"], "closed");
  const std::string to_host6 = "[" + std::string(info["gateway6"]) + "]:7000";
  EXPECT_EQ(testing::probe6("a", "tcp", {to_host6})[to_host6], "closed");
  drain();
  ASSERT_EQ(testing::elements_mentioning("log_rate", a), 1) << testing::nft_sets("log_rate").dump();
  ASSERT_EQ(testing::elements_mentioning("log_rate", b), 1);
  ASSERT_EQ(testing::elements_mentioning("log_rate6", a_v6, "ip6"), 1)
      << testing::nft_sets("log_rate6", "ip6").dump();
  EXPECT_EQ(testing::elements_mentioning("log_rate", quiet), 0);

  ASSERT_EQ(cli({"destroy", "a"}).exit_code, 0);
  EXPECT_EQ(testing::elements_mentioning("log_rate", a), 0);
  EXPECT_EQ(testing::elements_mentioning("log_rate6", a_v6, "ip6"), 0);
  EXPECT_EQ(testing::elements_mentioning("log_rate", b), 1) << "another namespace's bucket stays";
  auto gone = cli({"destroy", "quiet"});
  EXPECT_EQ(gone.exit_code, 0) << gone.err;
  EXPECT_NE(::access("/run/netns/quiet", F_OK), 0) << "quiet is gone";
  ASSERT_EQ(cli({"destroy", "b"}).exit_code, 0);
  EXPECT_EQ(testing::elements_mentioning("log_rate", b), 0);
}

TEST_F(FlowLogTest, OneReaderPerInstanceAndAnotherInstanceHasItsOwnGroup) {
  auto second = FlowLogReader::open(*mgr_);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code(), ErrorCode::kConflict) << second.error().to_string();
  ManagerOptions other;
  other.run_dir = "/run/netcell-other";
  auto other_mgr = NamespaceManager::create(other);
  ASSERT_TRUE(other_mgr);
  auto other_reader = FlowLogReader::open(*other_mgr);
  ASSERT_TRUE(other_reader) << other_reader.error().to_string();
  EXPECT_NE(other_reader->group(), reader_->group());
}

}  // namespace
}  // namespace netcell
