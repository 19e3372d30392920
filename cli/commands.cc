#include <fcntl.h>
#include <linux/capability.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli.h"
#include "netcell/host.h"
#include "netcell/json.h"
#include "netcell/rootless.h"
#include "version.h"

namespace netcell::cli {
namespace {

using nlohmann::json;

void print_json(const json& j) {
  std::cout << j.dump(2) << std::endl;
}

// The JSON forms (netcell/json.h) of `items`, as one array.
template <typename T>
json json_array(const std::vector<T>& items) {
  json arr = json::array();
  for (const auto& item : items) arr.push_back(json::parse(to_json_text(item)));
  return arr;
}

Result<pid_t> parse_pid(std::string_view text) {
  long long value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value <= 0 ||
      value > 4194304) {
    return fail(ErrorCode::kInvalidArgument,
                "invalid pid '" + std::string(text) + "' (expected a positive number)");
  }
  return static_cast<pid_t>(value);
}

// The signals `run` and `exec` forward to the child; blocked so that they arrive on a signalfd.
sigset_t forwarded_signals() {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2}) sigaddset(&set, sig);
  return set;
}

// Waits for the child, forwarding the signals above. A child that is still alive 5 s after a
// forwarded signal is killed: a PID 1 without handlers ignores SIGTERM (notes §6).
Result<int> supervise(Child& child, int signal_fd) {
  constexpr auto kGrace = std::chrono::seconds(5);
  // No deadline yet. (Not a std::optional: GCC 12 at -Os wrongly says it may be read
  // uninitialized, -Wmaybe-uninitialized.)
  constexpr auto kNever = std::chrono::steady_clock::time_point::max();
  auto kill_at = kNever;
  for (;;) {
    pollfd fds[2] = {{child.pidfd(), POLLIN, 0}, {signal_fd, POLLIN, 0}};
    int timeout = -1;
    if (kill_at != kNever) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          kill_at - std::chrono::steady_clock::now());
      timeout = static_cast<int>(std::max<long long>(0, left.count()));
    }
    int n = ::poll(fds, 2, timeout);
    if (n < 0 && errno != EINTR) return fail_errno("poll", errno);
    if (fds[0].revents & POLLIN) return child.wait();
    if (fds[1].revents & POLLIN) {
      signalfd_siginfo si{};
      if (::read(signal_fd, &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
        (void)child.signal(static_cast<int>(si.ssi_signo));
        if (kill_at == kNever) kill_at = std::chrono::steady_clock::now() + kGrace;
      }
    }
    if (std::chrono::steady_clock::now() >= kill_at) {
      (void)child.signal(SIGKILL);
      kill_at = kNever;
    }
  }
}

// Blocks the forwarded signals for the life of a run/exec and hands them out on a signalfd.
class SignalGuard {
 public:
  SignalGuard() {
    sigset_t set = forwarded_signals();
    ::sigprocmask(SIG_BLOCK, &set, &old_);
    fd_ = ::signalfd(-1, &set, SFD_CLOEXEC);
  }
  ~SignalGuard() {
    if (fd_ >= 0) ::close(fd_);
    ::sigprocmask(SIG_SETMASK, &old_, nullptr);
  }
  int fd() const { return fd_; }
  SignalGuard(const SignalGuard&) = delete;
  SignalGuard& operator=(const SignalGuard&) = delete;

 private:
  sigset_t old_{};
  int fd_ = -1;
};

int run_in(NamespaceManager& mgr, const std::string& name, const RunOptions& r,
           const SignalGuard& signals) {
  SpawnOptions options;
  options.new_pid_namespace = r.pid_ns;
  options.init = r.init;
  if (r.init && !r.pid_ns) {
    return report(Error(ErrorCode::kInvalidArgument, "--init needs --pid-ns"));
  }
  auto child = mgr.spawn(name, r.command, options);
  if (!child) return report(child.error());
  auto code = supervise(*child, signals.fd());
  if (!code) return report(code.error());
  return *code;
}

}  // namespace

int report(const Error& error) {
  std::fprintf(stderr, "netcell: %s\n", error.to_string().c_str());
  return error.code() == ErrorCode::kInvalidArgument ? kExitUsage : kExitFailed;
}

Result<NamespaceConfig> build_config(const CreateOptions& o) {
  std::string mode_text = o.mode.empty() ? (o.network.empty() ? "full" : "bridged") : o.mode;
  auto mode = parse_isolation_mode(mode_text);
  if (!mode) return fail(mode.error());
  NamespaceConfig config;
  config.mode = *mode;
  config.name = o.name;
  config.network = o.network;
  if (o.owner) {
    if (*o.owner <= 0 || *o.owner > 4194304) {
      return fail(ErrorCode::kInvalidArgument, "invalid owner pid " + std::to_string(*o.owner) +
                                                   " (expected a positive number)");
    }
    config.pid = static_cast<pid_t>(*o.owner);
  }
  if (o.netns_of) {
    if (*o.netns_of <= 0 || *o.netns_of > 4194304) {
      return fail(ErrorCode::kInvalidArgument, "invalid pid " + std::to_string(*o.netns_of) +
                                                   " for --netns-of (expected a positive number)");
    }
    config.adopt_netns_of = static_cast<pid_t>(*o.netns_of);
  }
  if (!o.ip.empty() || !o.gateway.empty() || o.mtu) {
    InterfaceConfig iface;
    bool have_v4 = false;
    for (const auto& text : o.ip) {
      auto prefix = IpPrefix::parse(text);
      if (!prefix) return fail(prefix.error());
      const bool v4 = prefix->address.is_v4();
      if (v4 ? have_v4 : iface.ip6.has_value()) {
        return fail(
            ErrorCode::kInvalidArgument,
            std::string("--ip takes one address per family; ") + (v4 ? "IPv4" : "IPv6") + " twice");
      }
      if (v4) {
        have_v4 = true;
        iface.ip = prefix->address;
        iface.prefix_len = prefix->prefix_len;
      } else {
        iface.ip6 = *prefix;
      }
    }
    if (!o.gateway.empty()) {
      auto gw = IpAddress::parse(o.gateway);
      if (!gw) return fail(gw.error());
      iface.gateway = *gw;
    }
    if (o.mtu) {
      if (*o.mtu < 68 || *o.mtu > 65535) {
        return fail(ErrorCode::kInvalidArgument,
                    "invalid MTU " + std::to_string(*o.mtu) + " (expected 68..65535)");
      }
      iface.mtu = static_cast<std::uint32_t>(*o.mtu);
    }
    config.interface = iface;
  }
  for (const auto& d : o.dns) {
    auto a = IpAddress::parse(d);
    if (!a) return fail(a.error());
    config.dns.push_back(*a);
  }
  for (const auto& p : o.publish) {
    auto f = PortForward::parse(p);
    if (!f) return fail(f.error());
    config.port_forwards.push_back(*f);
  }
  // --rate sets both directions; --egress-rate and --ingress-rate then override one each.
  struct RateOption {
    const char* flag;
    const std::optional<std::string>& text;
    bool egress, ingress;
  };
  for (const RateOption& r : {RateOption{"--rate", o.rate, true, true},
                              RateOption{"--egress-rate", o.egress_rate, true, false},
                              RateOption{"--ingress-rate", o.ingress_rate, false, true}}) {
    if (!r.text) continue;
    auto bps = parse_rate(*r.text);
    if (!bps) return fail(std::move(bps).error().with_context(r.flag));
    if (r.egress) config.rate.egress_bps = *bps;
    if (r.ingress) config.rate.ingress_bps = *bps;
  }
  auto policy = build_policy(o.policy);
  if (!policy) return fail(policy.error());
  config.egress = std::move(*policy);
  config.ipv6 = !o.no_ipv6;
  return config;
}

Result<NamespaceManager> open_manager(const GlobalOptions& g) {
  auto choice = parse_backend_choice(g.backend);
  if (!choice) return fail(choice.error());
  ManagerOptions options;
  options.backend = *choice;
  options.run_dir = g.run_dir;
  options.netns_dir = g.netns_dir;
  options.private_subnet = g.private_subnet;
  options.private_subnet6 = g.private_subnet6;
  return NamespaceManager::create(options);
}

namespace {

// Starts `netcell guard NAME` as a detached process (its own session, reparented away from the
// caller, stdio on /dev/null), so the namespace goes when its owner does even after this CLI has
// exited. Everything the child needs is prepared before fork; between fork and exec only
// async-signal-safe calls.
// The backend is the one the caller has (not "auto"): a rootless caller has joined the user's
// namespaces, where the guard, its child, would hold the capabilities that make auto pick linux.
Result<void> start_guard(const GlobalOptions& g, BackendKind backend, const std::string& run_dir,
                         const std::string& name) {
  std::string chosen(to_string(backend));
  std::vector<std::string> args = {"netcell",        "--backend",   chosen,      "--run-dir",
                                   run_dir,          "--netns-dir", g.netns_dir, "--private-subnet",
                                   g.private_subnet, "guard",       name};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t child = ::fork();
  if (child < 0) return fail_errno("fork guard", errno);
  if (child == 0) {
    ::setsid();
    if (::fork() != 0) ::_exit(0);
    int devnull = ::open("/dev/null", O_RDWR);
    ::dup2(devnull, 0);
    ::dup2(devnull, 1);
    ::dup2(devnull, 2);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execv("/proc/self/exe", argv.data());
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  return ok();
}

}  // namespace

int cmd_guard(const GlobalOptions& g, const std::string& name) {
  auto mgr = open_manager(g);
  if (!mgr) return report(mgr.error());
  if (auto r = mgr->destroy_when_owner_exits(name); !r) return report(r.error());
  return kExitOk;
}

int cmd_create(const GlobalOptions& g, const CreateOptions& o, bool json_out) {
  // A name given on the command line is checked as typed (the API derives one when it is empty).
  if (auto id = NamespaceId::parse(o.name); !id) return report(id.error());
  auto config = build_sandbox(o);
  if (!config) return report(config.error());
  auto opened = open_manager(g);
  if (!opened) return report(opened.error());
  auto sandboxes = SandboxManager::with_namespaces(std::move(*opened));
  NamespaceManager* mgr = &sandboxes.namespaces();
  auto info = create_sandbox(sandboxes, *config);
  if (!info) return report(info.error());
  if (info->owner_pid > 0) {
    if (auto guarded = start_guard(g, mgr->backend(), mgr->options().run_dir, info->name);
        !guarded) {
      (void)mgr->destroy(info->name);
      return report(guarded.error());
    }
  }
  if (json_out) {
    print_json(json::parse(to_json_text(*info)));
  } else if (!g.quiet) {
    std::string adopted = info->adopted_from_pid > 0
                              ? ", adopted from pid " + std::to_string(info->adopted_from_pid)
                              : "";
    std::printf("created %s (%s, %s%s%s)\n", info->name.c_str(),
                std::string(to_string(info->mode)).c_str(),
                std::string(to_string(info->backend)).c_str(), adopted.c_str(),
                info->enforced ? "" : ", isolation NOT enforced");
  }
  return kExitOk;
}

int cmd_run(const GlobalOptions& g, CreateOptions o, const RunOptions& r) {
  // The run supervisor owns the namespace: if it is killed, `netcell gc` removes it.
  o.owner = ::getpid();
  if (o.name.empty()) o.name = "run-" + std::to_string(::getpid());
  auto config = build_sandbox(o);
  if (!config) return report(config.error());
  auto opened = open_manager(g);
  if (!opened) return report(opened.error());
  auto sandboxes = SandboxManager::with_namespaces(std::move(*opened));
  NamespaceManager* mgr = &sandboxes.namespaces();
  // Block the forwarded signals before creating, so that a signal during setup is not lost and
  // the namespace is still destroyed.
  SignalGuard signals;
  auto info = create_sandbox(sandboxes, *config);
  if (!info) return report(info.error());
  int code = run_in(*mgr, info->name, r, signals);
  // The namespace is the command's alone: what it left running inside goes with it.
  if (auto destroyed = mgr->destroy(info->name, DestroyOptions{.kill_processes = true});
      !destroyed) {
    report(destroyed.error());
    if (code == kExitOk) code = kExitFailed;
  }
  return code;
}

int cmd_exec(const GlobalOptions& g, const std::string& name, const RunOptions& r) {
  auto mgr = open_manager(g);
  if (!mgr) return report(mgr.error());
  SignalGuard signals;
  return run_in(*mgr, name, r, signals);
}

int cmd_list(const GlobalOptions& g, bool json_out) {
  auto mgr = open_manager(g);
  if (!mgr) return report(mgr.error());
  auto infos = mgr->list();
  if (json_out) {
    print_json(json_array(infos));
  } else {
    print_list(infos);
  }
  return kExitOk;
}

int cmd_info(const GlobalOptions& g, const std::string& name, bool json_out) {
  auto mgr = open_manager(g);
  if (!mgr) return report(mgr.error());
  auto info = mgr->info(name);
  if (!info) return report(info.error());
  const auto relay = mgr->relay_state(*info);
  if (json_out) {
    json j = json::parse(to_json_text(*info));
    if (relay) {
      json routes = json::array();
      for (const auto& r : loopback_routes(*info)) {
        std::string target = r.target.to_string();
        target.insert(0, 1, '[').append("]:").append(std::to_string(r.target_port));
        routes.push_back({{"listen", to_string(r)}, {"target", target}});
      }
      j["loopback_relay"] = {{"state", to_string(relay->kind)}, {"routes", routes}};
      if (!relay->error.empty()) j["loopback_relay"]["error"] = relay->error;
    }
    print_json(j);
  } else {
    print_info(*info, relay);
  }
  return kExitOk;
}

int cmd_stats(const GlobalOptions& g, const std::string& name, bool json_out) {
  auto mgr = open_manager(g);
  if (!mgr) return report(mgr.error());
  auto stats = mgr->stats(name);
  if (!stats) return report(stats.error());
  if (json_out) {
    json j = json::parse(to_json_text(*stats));
    // A namespace with an egress policy: what the kernel counted for each rule and the default.
    if (auto info = mgr->info(name); info && info->egress) {
      if (auto counters = mgr->egress_counters(name)) {
        j["egress"] = counters_json(*info->egress, *counters);
      }
    }
    print_json(j);
  } else {
    print_stats(*stats);
  }
  return kExitOk;
}

int cmd_find_pid(const GlobalOptions& g, const std::string& pid_text, bool json_out) {
  auto pid = parse_pid(pid_text);
  if (!pid) return report(pid.error());
  auto mgr = open_manager(g);
  if (!mgr) return report(mgr.error());
  auto info = mgr->find_by_pid(*pid);
  if (!info) return report(info.error());
  if (json_out) {
    print_json(json::parse(to_json_text(*info)));
  } else {
    std::printf("%s\n", info->name.c_str());
  }
  return kExitOk;
}

int cmd_destroy(const GlobalOptions& g, const std::vector<std::string>& names,
                const DestroyOptions& how) {
  auto mgr = open_manager(g);
  if (!mgr) return report(mgr.error());
  int code = kExitOk;
  Progress progress(g);
  for (std::size_t i = 0; i < names.size(); ++i) {
    const std::string& name = names[i];
    progress.show(i + 1, names.size(), "destroying", name);
    if (auto r = mgr->destroy(name, how); !r) {
      progress.clear();
      code = std::max(code, report(r.error()));
    } else if (g.verbose) {
      progress.clear();
      std::printf("destroyed %s\n", name.c_str());
    }
  }
  return code;
}

int cmd_gc(const GlobalOptions& g, bool json_out) {
  auto mgr = open_manager(g);
  if (!mgr) return report(mgr.error());
  auto report_gc = mgr->gc();
  if (json_out) {
    print_json(json{{"removed", report_gc.removed}, {"errors", report_gc.errors}});
  } else {
    for (const auto& r : report_gc.removed) std::printf("removed %s\n", r.c_str());
    for (const auto& e : report_gc.errors) std::fprintf(stderr, "netcell: gc: %s\n", e.c_str());
    if (report_gc.removed.empty() && report_gc.errors.empty() && !g.quiet) {
      std::printf("nothing to clean up\n");
    }
  }
  return report_gc.errors.empty() ? kExitOk : kExitFailed;
}

int cmd_network_create(const GlobalOptions& g, const std::string& name, const std::string& subnet,
                       const std::string& subnet6, bool nat, bool host_access, bool json_out) {
  auto prefix = IpPrefix::parse(subnet);
  if (!prefix) return report(std::move(prefix).error().with_context("--subnet"));
  NetworkConfig config{name, *prefix, nat, host_access, {}};
  if (!subnet6.empty()) {
    auto prefix6 = IpPrefix::parse(subnet6);
    if (!prefix6) return report(std::move(prefix6).error().with_context("--subnet6"));
    config.subnet6 = *prefix6;
  }
  auto mgr = open_manager(g);
  if (!mgr) return report(mgr.error());
  auto network = mgr->create_network(config);
  if (!network) return report(network.error());
  if (json_out) {
    print_json(json::parse(to_json_text(*network)));
  } else if (!g.quiet) {
    const std::string v6 = network->subnet6 ? ", " + network->subnet6->to_string() + " gateway " +
                                                  network->gateway6->to_string()
                                            : std::string();
    std::printf("created network %s (%s, bridge %s, gateway %s%s%s%s)\n", network->name.c_str(),
                network->subnet.to_string().c_str(), network->bridge.c_str(),
                network->gateway->to_string().c_str(), v6.c_str(), network->nat ? ", NAT" : "",
                network->host_access ? ", host access" : "");
  }
  return kExitOk;
}

int cmd_network_list(const GlobalOptions& g, bool json_out) {
  auto mgr = open_manager(g);
  if (!mgr) return report(mgr.error());
  auto networks = mgr->list_networks();
  if (json_out) {
    print_json(json_array(networks));
  } else {
    print_networks(networks);
  }
  return kExitOk;
}

int cmd_network_rm(const GlobalOptions& g, const std::vector<std::string>& names) {
  auto mgr = open_manager(g);
  if (!mgr) return report(mgr.error());
  int code = kExitOk;
  for (const auto& name : names) {
    if (auto r = mgr->remove_network(name); !r) code = std::max(code, report(r.error()));
  }
  return code;
}

int cmd_doctor(const GlobalOptions& g, bool json_out) {
  json checks = json::array();
  bool healthy = true;
  auto check = [&](const std::string& what, bool ok_value, const std::string& detail) {
    checks.push_back(json{{"check", what}, {"ok", ok_value}, {"detail", detail}});
    if (!ok_value) healthy = false;
  };
  check("netcell", true, std::string(kVersion) + ", revision " + kRevision);
  utsname u{};
  ::uname(&u);
  check("kernel", true, std::string(u.sysname) + " " + u.release);
  bool net_admin = has_capability(CAP_NET_ADMIN);
  bool sys_admin = has_capability(CAP_SYS_ADMIN);
  bool privileged = net_admin && sys_admin;
  // Without the capabilities, rootless mode is the enforcing backend: its prerequisites decide.
  std::string rootless_hint = privileged ? "" : " (not needed in rootless mode)";
  check("CAP_NET_ADMIN", net_admin || g.backend != "linux",
        net_admin ? "held" : "missing: run as root" + rootless_hint);
  check("CAP_SYS_ADMIN", sys_admin || g.backend != "linux",
        sys_admin ? "held" : "missing: run as root" + rootless_hint);
  if (!privileged || g.backend == "rootless") {
    for (const auto& p : rootless::check_prerequisites()) {
      check("rootless: " + p.what, p.ok, p.detail);
    }
  }
  struct stat st {};
  bool have_netns = ::stat("/proc/self/ns/net", &st) == 0;
  check("network namespaces", have_netns, have_netns ? "/proc/self/ns/net present" : "missing");
  struct statfs fs {};
  bool dir_ok = ::statfs(g.netns_dir.c_str(), &fs) == 0;
  check("netns dir", true, g.netns_dir + (dir_ok ? " exists" : " will be created"));
  auto nft = probe_firewall_library();
  check("libnftables", nft.has_value(), nft ? *nft : nft.error().to_string());
  auto mgr = open_manager(g);
  if (mgr) {
    check("backend", true,
          std::string(to_string(mgr->backend())) + (mgr->backend() != BackendKind::kSimulation
                                                        ? " (isolation enforced)"
                                                        : " (NOT enforced)"));
    check("run dir", true, mgr->options().run_dir);
    check("namespaces", true, std::to_string(mgr->list().size()) + " recorded");
    // Not a failure: private namespaces are then IPv4-only, and `info` says so.
    const std::string no_ipv6 = mgr->ipv6_unavailable();
    check("ipv6", true,
          no_ipv6.empty() ? "available: private namespaces are dual-stack (--no-ipv6: IPv4 only)"
                          : no_ipv6 + ": private namespaces are IPv4-only");
  } else {
    check("backend", false, mgr.error().to_string());
  }
  if (json_out) {
    print_json(json{{"healthy", healthy},
                    {"version", std::string(kVersion)},
                    {"revision", std::string(kRevision)},
                    {"checks", checks}});
  } else {
    for (const auto& c : checks) {
      std::printf("%-4s %-20s %s\n", c["ok"].get<bool>() ? "ok" : "FAIL",
                  c["check"].get<std::string>().c_str(), c["detail"].get<std::string>().c_str());
    }
  }
  return healthy ? kExitOk : kExitFailed;
}

}  // namespace netcell::cli
