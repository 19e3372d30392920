// netcell-bench-policy: what an egress policy adds to creating a private namespace (issue 14).
// Creates N private namespaces n1..nN through the library (each with one published port
// FIRST_PORT+i-1 -> 80 and the stub's DNS server, all kept alive), every create timed, either
// without a policy or with policy_entries(i): default deny, 20 address rules and 5 domain rules,
// distinct per namespace. While all N exist it runs $NETCELL_BENCH_VERIFY (untimed, a shell
// command; its exit status is verify_status), then destroys them one by one (timed).
//
//   netcell-bench-policy --n=N --policy=none|rules|alternate --csv=FILE [--summary=FILE.json]
//                        [--first-port=P] [--setup-cap=S] [--teardown-cap=S]
//                        [--no-ipv6 | --alternate-ipv6] [--bridged]
//                        [--steps=FILE]   (--steps: netcell-bench-policy-steps only)
//                        [--pace=RFD,WFD]
//   netcell-bench-policy --print-cli-args=N
// --no-ipv6: IPv4-only namespaces (without it they are dual-stack where the host has IPv6).
// --alternate-ipv6: odd-numbered namespaces dual-stack, even-numbered ones IPv4-only, so that the
// two kinds are timed side by side under the same conditions (this VM's speed drifts between
// runs); the csv's ipv6 column says which a row is.
// --policy=alternate: odd-numbered namespaces with the policy, even-numbered ones without, timed
// side by side in one run as --alternate-ipv6 does for the families; the csv's policy column says
// which a row is.
// --bridged: the namespaces are bridged ones on one network, bnet (10.224.0.0/16, NAT; with IPv6
// also subnet6 fd00:b0::/64), made before the first create and removed after the last destroy,
// both untimed. --csv: i,setup_ms,teardown_ms,ipv6,policy (ipv6 1: dual-stack; policy 1: with
// the policy). --print-cli-args: the `netcell create` options of namespaces 1..N's policies, one
// line each, so that the CLI runs the same policies.
// --pace: lockstep with another run (bench/lib/lockstep.py): before each create and each destroy
// it waits for a byte on file descriptor RFD, after it writes one to WFD; the end of RFD ends
// the run as a cap does. Two runs in two worlds paced in turn meet the same machine, however its
// speed drifts, while each keeps its own N namespaces alive.
// --steps (the build linked with steps_hook.cc): every create/destroy's checkpoints,
// i,op,step,ms. Run it inside a throwaway world: it changes the network of the namespace it runs
// in.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bench_util.h"
#include "netcell/netcell.h"
#ifdef NETCELL_BENCH_STEPS_BUILD
#include "steps_hook.h"
#endif

namespace {

using netcell::PolicyAction;
using netcell_bench::Clock;
using netcell_bench::cpu_seconds;
using netcell_bench::ms_since;
using netcell_bench::rss_kib;

constexpr char kStub[] = "192.0.2.53";
constexpr char kNetwork[] = "bnet";
constexpr int kMaxN = 2000;  // the rules' 10.x.y.0/24 blocks stay below 10.200.0.0/16

// Namespace i's policy entries: 20 address rules (19 blocks of 10.0.0.0/8 with tcp ports, udp port
// ranges or every protocol, every sixth one a deny; and TCP port 30000+i of the internet, the one
// the data-plane check uses) and 5 domain rules, among them *.n<i>.test (what the lookups ask).
std::vector<std::pair<PolicyAction, std::string>> policy_entries(int i) {
  std::vector<std::pair<PolicyAction, std::string>> out;
  for (int k = 0; k < 19; ++k) {
    const int j = (i - 1) * 19 + k;
    std::string text = "10." + std::to_string(j / 256) + '.' + std::to_string(j % 256) + ".0/24";
    if (k % 3 == 0) text += ':' + std::to_string(1000 + k) + "/tcp";
    if (k % 3 == 1) {
      text += ':' + std::to_string(2000 + 10 * k) + '-' + std::to_string(2009 + 10 * k) + "/udp";
    }
    out.emplace_back(k % 6 == 5 ? PolicyAction::kDeny : PolicyAction::kAllow, text);
  }
  out.emplace_back(PolicyAction::kAllow, "203.0.113.0/24:" + std::to_string(30000 + i) + "/tcp");
  const std::string n = std::to_string(i);
  out.emplace_back(PolicyAction::kAllow, "*.n" + n + ".test");
  out.emplace_back(PolicyAction::kAllow, "a.n" + n + ".example:443/tcp");
  out.emplace_back(PolicyAction::kAllow, "b.n" + n + ".example:80/tcp");
  out.emplace_back(PolicyAction::kAllow, "*.c.n" + n + ".example:8000-8100/tcp");
  out.emplace_back(PolicyAction::kDeny, "bad.n" + n + ".test");
  return out;
}

// --pace's descriptors: -1 when not paced.
struct Pace {
  int in = -1, out = -1;
  // False when the driver is gone or ended the run; unpaced from then on.
  bool wait() {
    if (in < 0) return true;
    char c = 0;
    for (;;) {
      const ssize_t n = ::read(in, &c, 1);
      if (n == 1) return true;
      if (n < 0 && errno == EINTR) continue;
      in = -1;
      out = -1;
      return false;
    }
  }
  void done() const {
    if (out < 0) return;
    const char c = '.';
    while (::write(out, &c, 1) < 0 && errno == EINTR) {
    }
  }
};

int usage() {
  std::fprintf(
      stderr,
      "usage: netcell-bench-policy --n=N --policy=none|rules|alternate --csv=FILE [--summary=FILE] "
      "[--first-port=P] [--setup-cap=S] [--teardown-cap=S] "
      "[--no-ipv6 | --alternate-ipv6] [--bridged] [--steps=FILE] [--pace=RFD,WFD]\n"
      "       netcell-bench-policy --print-cli-args=N\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  int n = 0, first_port = 20001, print_n = 0;
  double setup_cap = 600, teardown_cap = 600;
  std::string policy, csv_path, summary_path, steps_path;
  bool ipv6 = true, alternate = false, bridged = false;
  Pace pace;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    auto value = [&](std::string_view flag) -> const char* {
      return arg.substr(0, flag.size()) == flag ? argv[i] + flag.size() : nullptr;
    };
    if (const char* v = value("--n=")) {
      n = std::atoi(v);
    } else if (const char* v2 = value("--policy=")) {
      policy = v2;
    } else if (const char* v3 = value("--csv=")) {
      csv_path = v3;
    } else if (const char* v4 = value("--summary=")) {
      summary_path = v4;
    } else if (const char* v6 = value("--first-port=")) {
      first_port = std::atoi(v6);
    } else if (const char* v7 = value("--setup-cap=")) {
      setup_cap = std::atof(v7);
    } else if (const char* v8 = value("--teardown-cap=")) {
      teardown_cap = std::atof(v8);
    } else if (const char* v9 = value("--steps=")) {
      steps_path = v9;
    } else if (const char* v10 = value("--print-cli-args=")) {
      print_n = std::atoi(v10);
    } else if (const char* v11 = value("--pace=")) {
      if (std::sscanf(v11, "%d,%d", &pace.in, &pace.out) != 2 || pace.in < 0 || pace.out < 0) {
        return usage();
      }
      std::signal(SIGPIPE, SIG_IGN);  // a driver gone: the write fails instead
    } else if (arg == "--no-ipv6") {
      ipv6 = false;
    } else if (arg == "--alternate-ipv6") {
      alternate = true;
    } else if (arg == "--bridged") {
      bridged = true;
    } else {
      return usage();
    }
  }
  if (print_n > 0) {
    if (print_n > kMaxN) return usage();
    for (int i = 1; i <= print_n; ++i) {
      std::string line;
      for (const auto& [action, text] : policy_entries(i)) {
        line += action == PolicyAction::kAllow ? " --allow " : " --deny ";
        line += text;
      }
      std::printf("--egress deny%s\n", line.c_str());
    }
    return 0;
  }
  if (n < 1 || n > kMaxN || (policy != "none" && policy != "rules" && policy != "alternate") ||
      csv_path.empty() || first_port < 1 || first_port + n > 65536 || (alternate && !ipv6) ||
      (alternate && policy == "alternate")) {
    return usage();
  }
#ifndef NETCELL_BENCH_STEPS_BUILD
  if (!steps_path.empty()) {
    std::fprintf(stderr, "netcell-bench-policy: --steps needs netcell-bench-policy-steps\n");
    return 2;
  }
#else
  std::FILE* steps = steps_path.empty() ? nullptr : std::fopen(steps_path.c_str(), "w");
  if (!steps_path.empty() && steps == nullptr) {
    std::perror(steps_path.c_str());
    return 1;
  }
  if (steps != nullptr) std::fprintf(steps, "i,op,step,ms\n");
#endif
  auto stub = netcell::IpAddress::parse(kStub);
  if (!stub) return 1;
  // The configs first (parsing the rules is the caller's work, not the create's).
  std::vector<netcell::NamespaceConfig> configs;
  for (int i = 1; i <= n; ++i) {
    auto cfg = bridged ? netcell::NamespaceConfig::bridged(0, kNetwork)
                       : netcell::NamespaceConfig::private_network(0);
    cfg.name = 'n' + std::to_string(i);
    cfg.port_forwards.push_back(
        {static_cast<std::uint16_t>(first_port + i - 1), 80, netcell::Protocol::kTcp, {}});
    cfg.dns.push_back(*stub);
    cfg.ipv6 = ipv6 && (!alternate || i % 2 == 1);
    if (policy == "rules" || (policy == "alternate" && i % 2 == 1)) {
      netcell::EgressPolicy p;
      p.default_action = PolicyAction::kDeny;
      for (const auto& [action, text] : policy_entries(i)) {
        if (auto added = netcell::add_egress_entry(p, action, text); !added) {
          std::fprintf(stderr, "netcell-bench-policy: %s: %s\n", text.c_str(),
                       added.error().to_string().c_str());
          return 1;
        }
      }
      cfg.egress = std::move(p);
    }
    configs.push_back(std::move(cfg));
  }
  auto mgr = netcell::NamespaceManager::create(netcell::ManagerOptions{});
  if (!mgr) {
    std::fprintf(stderr, "netcell: %s\n", mgr.error().to_string().c_str());
    return 1;
  }
  if (bridged) {
    netcell::NetworkConfig net;
    net.name = kNetwork;
    net.nat = true;
    auto subnet = netcell::IpPrefix::parse("10.224.0.0/16");
    auto subnet6 = netcell::IpPrefix::parse("fd00:b0::/64");
    if (!subnet || !subnet6) return 1;
    net.subnet = *subnet;
    if (ipv6) net.subnet6 = *subnet6;
    if (auto made = mgr->create_network(net); !made) {
      std::fprintf(stderr, "netcell: network %s: %s\n", kNetwork, made.error().to_string().c_str());
      return 1;
    }
  }

  std::vector<double> setup_ms;
  const long rss_before = rss_kib();
  const double cpu0 = cpu_seconds();
  const auto setup_start = Clock::now();
  int failed = 0;
  for (const auto& cfg : configs) {
    if (ms_since(setup_start) > setup_cap * 1000 || !pace.wait()) break;
#ifdef NETCELL_BENCH_STEPS_BUILD
    netcell_bench::marks().clear();
    const std::int64_t t0 = netcell_bench::realtime_ns();
#endif
    const auto start = Clock::now();
    auto made = mgr->create(cfg);
    setup_ms.push_back(ms_since(start));
    pace.done();
#ifdef NETCELL_BENCH_STEPS_BUILD
    if (steps != nullptr) {
      netcell_bench::write_steps(steps, static_cast<int>(setup_ms.size()), "create", t0,
                                 netcell_bench::realtime_ns());
    }
#endif
    if (!made) {
      std::fprintf(stderr, "netcell: create %s: %s\n", cfg.name.c_str(),
                   made.error().to_string().c_str());
      setup_ms.pop_back();
      failed = 1;
      break;
    }
  }
  const double setup_cpu = cpu_seconds() - cpu0;
  const double setup_wall = ms_since(setup_start) / 1000;
  const long rss_after = rss_kib();
  const int created = static_cast<int>(setup_ms.size());

  const int verify = netcell_bench::run_verify_command();

  std::vector<double> teardown_ms;
  const double cpu1 = cpu_seconds();
  const auto teardown_start = Clock::now();
  for (int i = 0; i < created; ++i) {
    if (ms_since(teardown_start) > teardown_cap * 1000) break;
    (void)pace.wait();  // the namespaces go even when the driver is gone
#ifdef NETCELL_BENCH_STEPS_BUILD
    netcell_bench::marks().clear();
    const std::int64_t t0 = netcell_bench::realtime_ns();
#endif
    const auto start = Clock::now();
    auto gone = mgr->destroy(configs[static_cast<std::size_t>(i)].name);
    teardown_ms.push_back(ms_since(start));
    pace.done();
#ifdef NETCELL_BENCH_STEPS_BUILD
    if (steps != nullptr) {
      netcell_bench::write_steps(steps, i + 1, "destroy", t0, netcell_bench::realtime_ns());
    }
#endif
    if (!gone) {
      std::fprintf(stderr, "netcell: destroy: %s\n", gone.error().to_string().c_str());
      teardown_ms.pop_back();
      failed = 1;
      break;
    }
  }
  const double teardown_cpu = cpu_seconds() - cpu1;
  const double teardown_wall = ms_since(teardown_start) / 1000;
  if (bridged && !failed) {
    if (auto gone = mgr->remove_network(kNetwork); !gone) {
      std::fprintf(stderr, "netcell: network rm %s: %s\n", kNetwork,
                   gone.error().to_string().c_str());
      failed = 1;
    }
  }
#ifdef NETCELL_BENCH_STEPS_BUILD
  if (steps != nullptr) std::fclose(steps);
#endif

  {
    std::ofstream csv(csv_path);
    csv << "i,setup_ms,teardown_ms,ipv6,policy\n";
    for (std::size_t i = 0; i < setup_ms.size(); ++i) {
      csv << i + 1 << ',' << setup_ms[i] << ',' << (i < teardown_ms.size() ? teardown_ms[i] : -1.0)
          << ',' << (configs[i].ipv6 ? 1 : 0) << ',' << (configs[i].egress ? 1 : 0) << '\n';
    }
  }
  if (!summary_path.empty()) {
    rusage ru{};
    ::getrusage(RUSAGE_SELF, &ru);
    std::ofstream out(summary_path);
    out << "{\"policy\": \"" << policy << "\", \"bridged\": " << (bridged ? "true" : "false")
        << ", \"requested\": " << n << ", \"created\": " << created
        << ", \"destroyed\": " << teardown_ms.size() << ", \"setup_wall_s\": " << setup_wall
        << ", \"teardown_wall_s\": " << teardown_wall << ", \"setup_cpu_s\": " << setup_cpu
        << ", \"teardown_cpu_s\": " << teardown_cpu << ", \"rss_kib_before\": " << rss_before
        << ", \"rss_kib_after\": " << rss_after << ", \"maxrss_kib\": " << ru.ru_maxrss
        << ", \"failed\": " << failed << ", \"verify_status\": " << verify << "}\n";
  }
  std::printf("%s%s: %d created, %zu destroyed, check status %d\n", policy.c_str(),
              bridged ? " (bridged)" : "", created, teardown_ms.size(), verify);
  return failed;
}
