// netcell-service: netcell's host service — the resolver of namespaces with an egress policy and
// the reader of their denied-flow log (service/resolver.h), and the relay of published ports on
// the host's [::1] (service/loopback_relay.h). netcell starts it when the first namespace that
// needs it is made and stops it when the last one goes; see netcell-service(8).
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <thread>

#include "cli/version.h"
#include "netcell/manager.h"
#include "netcell/metrics.h"
#include "netcell/rootless.h"
#include "service/loopback_relay.h"
#include "service/metrics_http.h"
#include "service/resolver.h"

namespace {

constexpr char kUsage[] =
    "usage: netcell-service [--run-dir DIR] [--netns-dir DIR] [--private-subnet CIDR]\n"
    "                       [--port N] [--rate QPS] [--metrics-listen ADDRESS:PORT]\n"
    "                       [--ready-fd FD] [--on-demand]\n"
    "netcell's host service: the DNS resolver of namespaces with an egress policy, the\n"
    "reader of their denied-flow log and the relay of ports published on [::1]. netcell\n"
    "starts and stops it on demand; run it yourself only under a supervisor (see\n"
    "netcell-service(8)).\n"
    "  --run-dir DIR          the netcell instance's state (default /run/netcell)\n"
    "  --netns-dir DIR        where its namespaces are named (default /run/netns)\n"
    "  --private-subnet CIDR  its private pool (default 10.209.0.0/16)\n"
    "  --port N               the resolver's port on the host (default: one the kernel picks)\n"
    "  --rate QPS             queries a second each namespace may ask (default 1000)\n"
    "  --metrics-listen ADDRESS:PORT\n"
    "                         serve netcell's metrics over HTTP there (GET /metrics;\n"
    "                         IPv6 as [ADDRESS]:PORT)\n"
    "  --ready-fd FD          write \"ready\" to FD once serving, then close it\n"
    "  --on-demand            started by netcell, which stops it when no namespace needs it\n"
    "                         (without: netcell uses it but never stops it)\n";

int usage_error(const std::string& why) {
  std::fprintf(stderr, "netcell-service: %s\n%s", why.c_str(), kUsage);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  netcell::ManagerOptions options;
  options.backend = netcell::BackendChoice::kLinux;
  options.restart_service = false;  // this is the service
  netcell::service::ResolverOptions resolver;
  int ready_fd = -1;
  bool on_demand = false;
  std::optional<netcell::service::ListenAddress> metrics_listen;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (arg == "--on-demand") {
      on_demand = true;
      continue;
    }
    if (i + 1 >= argc) return usage_error("unknown option or missing value: " + arg);
    std::string value = argv[++i];
    char* end = nullptr;
    if (arg == "--run-dir") {
      options.run_dir = value;
    } else if (arg == "--netns-dir") {
      options.netns_dir = value;
    } else if (arg == "--private-subnet") {
      options.private_subnet = value;
    } else if (arg == "--port") {
      long port = std::strtol(value.c_str(), &end, 10);
      if (*end != '\0' || port < 0 || port > 65535) return usage_error("bad --port " + value);
      resolver.port = static_cast<std::uint16_t>(port);
    } else if (arg == "--rate") {
      double qps = std::strtod(value.c_str(), &end);
      if (*end != '\0' || !(qps >= 1 && qps <= 1e7)) return usage_error("bad --rate " + value);
      resolver.queries_per_second = qps;
    } else if (arg == "--metrics-listen") {
      auto parsed = netcell::service::parse_listen_address(value);
      if (!parsed) {
        std::fprintf(stderr, "netcell-service: %s\n", parsed.error().message().c_str());
        return 2;
      }
      metrics_listen = std::move(*parsed);
    } else if (arg == "--ready-fd") {
      long fd = std::strtol(value.c_str(), &end, 10);
      if (*end != '\0' || fd < 0 || fd > 1 << 20) return usage_error("bad --ready-fd " + value);
      ready_fd = static_cast<int>(fd);
    } else {
      return usage_error("unknown option " + arg);
    }
  }
  auto say = [&](const std::string& line) {
    std::fprintf(stderr, "netcell-service: %s\n", line.c_str());
    if (ready_fd >= 0) {
      std::string text = line + "\n";
      (void)!::write(ready_fd, text.data(), text.size());
    }
  };
  // A socket per query waiting for an upstream and per TCP client: as many descriptors as the
  // system lets it have, not what the command that started it happened to have.
  if (rlimit files{}; ::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &files);
  }
  // A rootless run dir is served only from inside its session (netcell starts the service from a
  // process that joined it), where this process is root of the session's user namespace and the
  // Linux backend's code drives the session's network namespace directly: the rootless backend
  // would try to join the session again. It ends when the session's holder does.
  const netcell::rootless::SessionPlace place =
      netcell::rootless::session_place(options.run_dir.empty() ? "/run/netcell" : options.run_dir);
  if (place.rootless && !place.inside) {
    say("the run dir is a rootless session's, and this process is not inside that session (" +
        std::string(place.holder_pid == 0 ? "it has ended" : "netcell starts its service there") +
        ")");
    return 1;
  }
  auto mgr = netcell::NamespaceManager::create(options);
  if (!mgr) {
    say(mgr.error().to_string());
    return 1;
  }
  auto server = netcell::service::Resolver::open(*mgr, resolver);
  if (!server) {
    say(server.error().to_string());
    return 1;
  }
  if (place.inside) {
    // Started after the resolver blocked the signals it reads, so they never come to this thread.
    int holder = static_cast<int>(::syscall(SYS_pidfd_open, place.holder_pid, 0));
    if (holder < 0) {
      say("cannot watch the rootless session's holder: " + std::string(std::strerror(errno)));
      return 1;
    }
    // Opened first, checked after: the pidfd is then that holder's, not a later process's.
    if (netcell::rootless::session_place(mgr->options().run_dir).holder_pid != place.holder_pid) {
      say("the rootless session ended");
      return 1;
    }
    std::thread([holder] {
      pollfd p{holder, POLLIN, 0};
      while (::poll(&p, 1, -1) < 0 && errno == EINTR) {
      }
      std::fprintf(stderr, "netcell-service: the rootless session ended\n");
      ::kill(::getpid(), SIGTERM);
    }).detach();
  }
  // The metrics endpoint reads namespaces with a manager of its own, on a thread of its own, so
  // a scrape never waits for the resolver's manager or delays an answer.
  std::optional<netcell::NamespaceManager> metrics_mgr;
  std::unique_ptr<netcell::service::MetricsServer> metrics;
  if (metrics_listen) {
    auto opened = netcell::NamespaceManager::create(options);
    if (!opened) {
      say(opened.error().to_string());
      return 1;
    }
    metrics_mgr.emplace(std::move(*opened));
    netcell::service::Resolver& resolver_ref = **server;
    auto served = netcell::service::MetricsServer::open(*metrics_listen, [&]() {
      auto snapshot = netcell::collect_metrics(*metrics_mgr);
      for (const auto& e : snapshot.errors) {
        std::fprintf(stderr, "netcell-service: metrics: %s\n", e.c_str());
      }
      return netcell::render_metrics(snapshot, {.version = netcell::cli::kVersion,
                                                .revision = netcell::cli::kRevision,
                                                .resolver = resolver_ref.counts()});
    });
    if (!served) {
      say(served.error().to_string());
      return 1;
    }
    metrics = std::move(*served);
  }
  // The [::1] relay reads the records with a manager of its own, on a thread of its own (started
  // after the resolver blocked the signals it reads, so they never go to the relay's thread).
  auto relay_opened = netcell::NamespaceManager::create(options);
  if (!relay_opened) {
    say(relay_opened.error().to_string());
    return 1;
  }
  netcell::NamespaceManager relay_mgr(std::move(*relay_opened));
  auto relay = netcell::service::LoopbackRelay::start(relay_mgr, {});
  if (!relay) {
    say(relay.error().to_string());
    return 1;
  }
  // The last service started serves the instance: one recorded before (netcell's on-demand one
  // when systemd starts this) is ended once the redirect points here.
  const netcell::ServiceStatus before = mgr->service_status();
  if (auto registered = mgr->register_service((*server)->port(), on_demand); !registered) {
    say(registered.error().to_string());
    return 1;
  }
  if (before.running && before.pid != ::getpid()) {
    std::fprintf(stderr, "netcell-service: replacing the service of pid %d\n", before.pid);
    ::kill(before.pid, SIGTERM);
  }
  std::fprintf(stderr, "netcell-service: pid %d resolving on port %u for %s\n", ::getpid(),
               (*server)->port(), mgr->options().run_dir.c_str());
  if (metrics) {
    metrics->start();
    std::fprintf(stderr, "netcell-service: serving metrics on http://%s/metrics\n",
                 metrics_listen->text.c_str());
  }
  return (*server)->run(ready_fd);
}
