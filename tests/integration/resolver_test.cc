// netcell's resolver for namespaces with an egress policy (netcell-service, policy.h "Names"), in a
// world. "The internet" is namespace `wan`: a stub authoritative DNS server (dnsmasq, which logs
// every query it gets) on 192.0.2.53 and TCP servers on addresses of 198.51.100.0/24. Results are
// checked with real lookups (dig) and connections, `nft -j` and the stub's own log. An IPv6 twin
// asks for allowed.test's AAAA record (2001:db8:5::10) and connects over IPv6.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "support/process.h"

namespace netcell {
namespace {

using testing::cli;
using testing::sh;
using testing::tcp_probe;
using testing::TcpResponder;

constexpr char kStub[] = "192.0.2.53";
constexpr char kStubLog[] = "/run/stub-dns.log";
constexpr char kAllowed6[] = "2001:db8:5::10";  // allowed.test's AAAA (on wan once internet6())

std::string info_field(const std::string& ns, const std::string& field) {
  auto j = nlohmann::json::parse(cli({"info", ns, "--json"}).out, nullptr, false);
  if (!j.is_object() || !j.contains(field) || !j[field].is_string()) return "";
  return j[field];
}

// A TCP connect from `ns` to `address`:`port` (IPv4, or IPv6 when it has a ':'): open, closed...
std::string connect(const std::string& ns, const std::string& address, int port) {
  if (address.find(':') == std::string::npos) {
    const std::string t = address + ":" + std::to_string(port);
    return tcp_probe(ns, {t})[t];
  }
  const std::string t = std::string(1, '[') + address + "]:" + std::to_string(port);
  return testing::probe6(ns, "tcp", {t})[t];
}

// `dig +short` from inside `ns` at `server`: the answer's lines, or "status: X" for an error.
std::string lookup(const std::string& ns, const std::string& server, const std::string& name,
                   const std::string& extra = "") {
  auto r = sh("ip netns exec " + ns + " dig +time=1 +tries=1 " + extra + " @" + server + " " +
                  name + " 2>&1",
              5000);
  std::string out = r.out;
  if (auto at = out.find("status: "); at != std::string::npos) {
    std::string status = out.substr(at + 8, out.find(',', at) - at - 8);
    if (status != "NOERROR") return "status: " + status;
  } else {
    return "no answer";
  }
  std::string answers;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line[0] == ';') continue;
    std::istringstream f(line);
    std::string owner, ttl, cls, type, data;
    f >> owner >> ttl >> cls >> type >> data;
    if (type == "A" || type == "AAAA") answers += (answers.empty() ? "" : " ") + data;
  }
  return answers;
}

bool stub_saw(const std::string& name) {
  std::ifstream in(kStubLog);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return text.find("] " + name + " from") != std::string::npos;
}

int learned_elements(const std::string& needle, const std::string& family = "ip") {
  auto j = testing::nft_sets(family == "ip6" ? "pol6_learned_tp" : "pol_learned_tp", family);
  if (j.is_discarded()) return 0;
  int n = 0;
  for (const auto& item : j["nftables"]) {
    if (!item.contains("set") || !item["set"].contains("elem")) continue;
    for (const auto& e : item["set"]["elem"]) n += e.dump().find(needle) != std::string::npos;
  }
  return n;
}

// Gone or a zombie: the service is reparented away from its starter, and whoever reaps it may
// take a while.
bool ended(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto close = stat.rfind(')');
  return stat.empty() || (close != std::string::npos && close + 2 < stat.size() &&
                          (stat[close + 2] == 'Z' || stat[close + 2] == 'X'));
}

pid_t service_pid() {
  std::ifstream in("/run/netcell/service.json");
  auto j = nlohmann::json::parse(in, nullptr, false);
  if (!j.is_object()) return 0;
  return j["pid"].get<pid_t>();
}

class ResolverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::in_world()) GTEST_SKIP() << "needs a world (tests/support/world.sh)";
    ASSERT_EQ(testing::make_internet(), "");
    std::string addrs;
    for (const char* a : {"198.51.100.10", "198.51.100.11", "198.51.100.20", "198.51.100.30",
                          "198.51.100.40", kStub}) {
      addrs += std::string("ip -n wan addr add ") + a + "/32 dev lo && ";
    }
    ASSERT_EQ(sh(addrs + "true").exit_code, 0);
    // allowed.test and its "CDN" neighbour .11 (never in an answer); other.test; a CNAME chain
    // www.allowed.test -> edge.cdn.test; everything under x.test.
    auto started =
        sh(std::string("ip netns exec wan dnsmasq --no-resolv --no-hosts "
                       "--bind-interfaces --listen-address=") +
           kStub + " --pid-file=/run/stub-dns.pid --user=root --log-queries " +
           "--log-facility=" + kStubLog + " --host-record=allowed.test,198.51.100.10," + kAllowed6 +
           " "
           "--host-record=other.test,198.51.100.20 "
           "--host-record=edge.cdn.test,198.51.100.30 "
           "--cname=www.allowed.test,edge.cdn.test "
           "--address=/x.test/198.51.100.40");
    ASSERT_EQ(started.exit_code, 0) << started.err;
    for (const char* a :
         {"198.51.100.10", "198.51.100.11", "198.51.100.20", "198.51.100.30", "198.51.100.40"}) {
      servers_.push_back(std::make_unique<TcpResponder>("wan", a, 80, "hello\n"));
    }
  }
  void TearDown() override {
    sh("kill $(cat /run/stub-dns.pid 2>/dev/null) 2>/dev/null; true");
    (void)cli({"destroy", "p1"});
    (void)cli({"destroy", "p2"});
    // The stub's log and the internet go too, so that the next test of the same run starts anew.
    sh(std::string("rm -f ") + kStubLog +
       "; ip netns delete wan 2>/dev/null; ip link del wan0 2>/dev/null; true");
  }
  void make_p1() {
    auto made = cli({"create", "p1", "--mode", "private", "--egress", "deny", "--allow",
                     "allowed.test:80/tcp", "--allow", "www.allowed.test:80/tcp", "--allow",
                     "*.x.test:80/tcp", "--dns", kStub});
    ASSERT_EQ(made.exit_code, 0) << made.err;
    gateway_ = info_field("p1", "gateway");
    ASSERT_FALSE(gateway_.empty());
  }
  // The body of ExpiryRefusesNewConnectionsAndKeepsEstablishedOnes and its IPv6 twin.
  void expiry(const std::string& qtype, const std::string& address, const std::string& family);

  std::vector<std::unique_ptr<TcpResponder>> servers_;
  std::string gateway_;
};

TEST_F(ResolverTest, AllowedNamesOnlyAndNothingElseGoesUpstream) {
  make_p1();
  // Positive control: the stub answers everything asked directly from the host.
  EXPECT_NE(sh(std::string("dig +short +time=1 +tries=1 @") + kStub + " www.allowed.test")
                .out.find("198.51.100.30"),
            std::string::npos);
  EXPECT_EQ(lookup("p1", gateway_, "allowed.test"), "198.51.100.10");
  EXPECT_EQ(lookup("p1", gateway_, "ALLOWED.test."), "198.51.100.10") << "case and root dot";
  // Learned before the answer came back: the connect right after it works, and only to it.
  auto got = tcp_probe("p1", {"198.51.100.10:80", "198.51.100.11:80", "198.51.100.20:80"});
  EXPECT_EQ(got["198.51.100.10:80"], "open");
  EXPECT_EQ(got["198.51.100.11:80"], "closed") << "an address the resolver never returned";
  EXPECT_EQ(got["198.51.100.20:80"], "closed");
  EXPECT_GE(learned_elements("198.51.100.10"), 1);

  // Names the policy does not allow are refused and never leave the host.
  sh("rm -f /run/stub-dns.log.seen");
  EXPECT_EQ(lookup("p1", gateway_, "other.test"), "status: REFUSED");
  EXPECT_EQ(lookup("p1", gateway_, "edge.cdn.test"), "status: REFUSED")
      << "a CNAME target asked on its own is not allowed";
  for (const char* name : {"x.test", "badx.test", "x.test.evil"}) {
    EXPECT_EQ(lookup("p1", gateway_, name), "status: REFUSED") << name;
  }
  EXPECT_FALSE(stub_saw("other.test"));
  EXPECT_FALSE(stub_saw("edge.cdn.test"));
  EXPECT_FALSE(stub_saw("badx.test"));
  EXPECT_FALSE(stub_saw("x.test.evil"));
  EXPECT_TRUE(stub_saw("allowed.test")) << "positive control of the stub's log";

  // The wildcard takes one label or more in front, and a CNAME chain within one answer counts.
  EXPECT_EQ(lookup("p1", gateway_, "a.x.test"), "198.51.100.40");
  EXPECT_EQ(lookup("p1", gateway_, "a.b.x.test"), "198.51.100.40");
  EXPECT_EQ(lookup("p1", gateway_, "www.allowed.test"), "198.51.100.30");
  got = tcp_probe("p1", {"198.51.100.30:80", "198.51.100.40:80"});
  EXPECT_EQ(got["198.51.100.30:80"], "open");
  EXPECT_EQ(got["198.51.100.40:80"], "open");

  // Over TCP too.
  EXPECT_EQ(lookup("p1", gateway_, "allowed.test", "+tcp"), "198.51.100.10");
  EXPECT_EQ(lookup("p1", gateway_, "other.test", "+tcp"), "status: REFUSED");

  // The refused names are in the namespace's log.
  auto log = cli({"log", "p1", "--json"});
  EXPECT_NE(log.out.find("\"name\":\"other.test\""), std::string::npos) << log.out << log.err;
}

TEST_F(ResolverTest, OtherResolversAndPortsAreUnreachable) {
  make_p1();
  // DNS straight to the stub (UDP and TCP), DoT: refused at once; the namespace's only DNS is
  // netcell's resolver.
  EXPECT_EQ(lookup("p1", kStub, "allowed.test"), "no answer");
  EXPECT_EQ(lookup("p1", kStub, "allowed.test", "+tcp"), "no answer");
  EXPECT_FALSE(stub_saw("allowed.test")) << "nothing reached the stub from the namespace";
  EXPECT_EQ(tcp_probe("p1", {std::string(kStub) + ":853"})[std::string(kStub) + ":853"], "closed");
  // The resolver answers on the gateway only for namespaces with a policy: another namespace
  // without one gets nothing there (its DNS is the stub, directly).
  ASSERT_EQ(cli({"create", "p2", "--mode", "private", "--dns", kStub}).exit_code, 0);
  EXPECT_NE(lookup("p2", info_field("p2", "gateway"), "allowed.test"), "198.51.100.10");
  EXPECT_EQ(lookup("p2", kStub, "other.test"), "198.51.100.20") << "positive control";
}

TEST_F(ResolverTest, DestroyLeavesNothingAndStopsTheService) {
  make_p1();
  ASSERT_EQ(lookup("p1", gateway_, "allowed.test"), "198.51.100.10");
  ASSERT_GE(learned_elements("198.51.100.10"), 1);
  // The query's rate-limit bucket (set dns_rate, keyed by the namespace's address) goes too.
  const std::string p1 = nlohmann::json(testing::namespace_address("p1")).dump();  // quoted
  ASSERT_EQ(testing::elements_mentioning("dns_rate", p1), 1)
      << testing::nft_sets("dns_rate").dump();
  const pid_t pid = service_pid();
  ASSERT_GT(pid, 0);
  ASSERT_EQ(::kill(pid, 0), 0);
  ASSERT_EQ(cli({"destroy", "p1"}).exit_code, 0);
  EXPECT_EQ(learned_elements("198.51.100.10"), 0);
  EXPECT_LE(testing::elements_mentioning("dns_rate", p1), 0) << "none, or no table any more";
  EXPECT_NE(::access("/run/netcell/service.json", F_OK), 0);
  EXPECT_NE(::access("/run/netcell/learned/p1.lock", F_OK), 0);
  bool gone = false;
  for (int i = 0; i < 50 && !gone; ++i) {
    gone = ended(pid);
    if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(gone) << "the service ends with the last namespace that needs it";
}

TEST_F(ResolverTest, AKilledResolverFailsClosedAndTheNextInvocationRestartsIt) {
  make_p1();
  ASSERT_EQ(lookup("p1", gateway_, "allowed.test"), "198.51.100.10");
  const pid_t pid = service_pid();
  ASSERT_GT(pid, 0);
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  // Fails closed: no answer from anywhere, and the stub still sees nothing of other names.
  EXPECT_EQ(lookup("p1", gateway_, "other.test"), "no answer");
  EXPECT_EQ(lookup("p1", kStub, "other.test"), "no answer");
  EXPECT_FALSE(stub_saw("other.test"));
  // Any next invocation starts it again, from the records.
  ASSERT_EQ(cli({"list"}).exit_code, 0);
  const pid_t again = service_pid();
  EXPECT_GT(again, 0);
  EXPECT_NE(again, pid);
  EXPECT_EQ(lookup("p1", gateway_, "a.x.test"), "198.51.100.40");
  EXPECT_EQ(tcp_probe("p1", {"198.51.100.40:80"})["198.51.100.40:80"], "open");
  EXPECT_EQ(lookup("p1", gateway_, "other.test"), "status: REFUSED");
}

TEST_F(ResolverTest, APolicyChangeTakesTheLearnedAddressesOfRemovedNames) {
  make_p1();
  ASSERT_EQ(lookup("p1", gateway_, "allowed.test"), "198.51.100.10");
  ASSERT_EQ(tcp_probe("p1", {"198.51.100.10:80"})["198.51.100.10:80"], "open");
  auto set = cli({"policy", "set", "p1", "--egress", "deny", "--allow", "other.test:80/tcp"});
  ASSERT_EQ(set.exit_code, 0) << set.err;
  EXPECT_EQ(learned_elements("198.51.100.10"), 0);
  EXPECT_EQ(tcp_probe("p1", {"198.51.100.10:80"})["198.51.100.10:80"], "closed");
  EXPECT_EQ(lookup("p1", gateway_, "allowed.test"), "status: REFUSED");
  EXPECT_EQ(lookup("p1", gateway_, "other.test"), "198.51.100.20");
  EXPECT_EQ(tcp_probe("p1", {"198.51.100.20:80"})["198.51.100.20:80"], "open");
  // Back again: the name is learned anew (nothing of what the resolver knew before is trusted).
  set = cli({"policy", "set", "p1", "--egress", "deny", "--allow", "allowed.test:80/tcp"});
  ASSERT_EQ(set.exit_code, 0) << set.err;
  EXPECT_EQ(tcp_probe("p1", {"198.51.100.20:80"})["198.51.100.20:80"], "closed");
  EXPECT_EQ(lookup("p1", gateway_, "allowed.test"), "198.51.100.10");
  EXPECT_EQ(tcp_probe("p1", {"198.51.100.10:80"})["198.51.100.10:80"], "open");
}

// policy set on a namespace made without a policy points its resolv.conf at the resolver (the
// gateway), so that names asked as usual (`ip netns exec`, which binds /etc/netns/NAME) follow
// the policy; policy clear gives it its own servers back.
TEST_F(ResolverTest, PolicySetAndClearRewriteTheNamespacesResolvConf) {
  ASSERT_EQ(cli({"create", "p2", "--mode", "private", "--dns", kStub}).exit_code, 0);
  const std::string gateway = info_field("p2", "gateway");
  auto resolv = [] { return sh("grep ^nameserver /etc/netns/p2/resolv.conf").out; };
  auto ask = [](const std::string& name) {
    return sh("ip netns exec p2 dig +short +time=2 +tries=1 " + name).out;
  };
  EXPECT_EQ(resolv(), std::string("nameserver ") + kStub + "\n");
  EXPECT_EQ(ask("other.test"), "198.51.100.20\n") << "positive control: its own server answers";
  auto set = cli({"policy", "set", "p2", "--egress", "deny", "--allow", "allowed.test:80/tcp"});
  ASSERT_EQ(set.exit_code, 0) << set.err;
  EXPECT_EQ(resolv(), "nameserver " + gateway + "\n");
  EXPECT_EQ(ask("allowed.test"), "198.51.100.10\n");
  EXPECT_EQ(ask("other.test"), "") << "REFUSED by the resolver";
  EXPECT_EQ(tcp_probe("p2", {"198.51.100.10:80"})["198.51.100.10:80"], "open");
  ASSERT_EQ(cli({"policy", "clear", "p2"}).exit_code, 0);
  EXPECT_EQ(resolv(), std::string("nameserver ") + kStub + "\n");
  EXPECT_EQ(ask("other.test"), "198.51.100.20\n");
}

// Learned addresses stay max(TTL 0, 1 s) + 1 s here: a connection made right after the answer,
// held open across the expiry, still carries data after it; new ones are refused until asked
// again. `qtype` A or AAAA, `address` allowed.test's address of that type.
void ResolverTest::expiry(const std::string& qtype, const std::string& address,
                          const std::string& family) {
  ASSERT_EQ(cli({"create", "p1", "--mode", "private", "--egress", "deny", "--allow",
                 "allowed.test/tcp", "--dns", kStub, "--dns-min-ttl", "1", "--dns-grace", "1"})
                .exit_code,
            0);
  gateway_ = info_field("p1", "gateway");
  ASSERT_EQ(lookup("p1", gateway_, "allowed.test", qtype), address);
  ASSERT_GE(learned_elements(address, family), 1);
  auto held = sh("(ip netns exec wan timeout 10 nc -l -s " + address +
                     " -p 81 > /run/held.out &) ; sleep 0.3; ip netns exec p1 timeout 8 bash -c "
                     "'exec 3<>/dev/tcp/" +
                     address +
                     "/81 && echo before >&3 && sleep 3.5 && echo after >&3' && sleep 0.3 && "
                     "cat /run/held.out",
                 15000);
  EXPECT_EQ(held.out, "before\nafter\n") << held.err;
  // New connections to the expired address are refused; asking again allows them again.
  EXPECT_EQ(learned_elements(address, family), 0);
  EXPECT_EQ(connect("p1", address, 80), "closed");
  ASSERT_EQ(lookup("p1", gateway_, "allowed.test", qtype), address);
  EXPECT_EQ(connect("p1", address, 80), "open");
}
TEST_F(ResolverTest, ExpiryRefusesNewConnectionsAndKeepsEstablishedOnes) {
  expiry("A", "198.51.100.10", "ip");
}
// The same over IPv6: an AAAA answer, the IPv6 learned set, IPv6 connections.
TEST_F(ResolverTest, ExpiryOfAnAaaaAnswerRefusesNewConnectionsAndKeepsEstablishedOnes) {
  ASSERT_EQ(testing::make_internet6(), "");
  ASSERT_EQ(sh(std::string("ip -n wan addr add ") + kAllowed6 + "/128 dev lo nodad").exit_code, 0);
  servers_.push_back(std::make_unique<TcpResponder>("wan", kAllowed6, 80, "hello\n"));
  ASSERT_TRUE(servers_.back()->ready());
  expiry("AAAA", kAllowed6, "ip6");
}

TEST_F(ResolverTest, ThousandConnectsRightAfterTheirAnswers) {
  ASSERT_EQ(cli({"create", "p1", "--mode", "private", "--egress", "deny", "--allow",
                 "*.x.test:80/tcp", "--dns", kStub})
                .exit_code,
            0);
  gateway_ = info_field("p1", "gateway");
  // Each lookup of a fresh name is followed at once by a connect to its answer (dnsmasq answers
  // with TTL 0): every one must succeed, bounded to 60 s in all.
  auto r =
      sh("ip netns exec p1 bash -c 'ok=0; for i in $(seq 1 1000); do "
         "a=$(dig +short +time=1 +tries=1 @" +
             gateway_ +
             " n$i.x.test); "
             "[ \"$a\" = 198.51.100.40 ] && timeout 1 bash -c \"exec 3<>/dev/tcp/$a/80\" "
             "2>/dev/null && ok=$((ok+1)); done; echo $ok'",
         120000);
  EXPECT_EQ(r.out, "1000\n") << r.err;
}

}  // namespace
}  // namespace netcell
