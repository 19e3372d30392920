// netcell-service: the resolver of namespaces with an egress policy (netcell/policy.h, "Names").
//
// One process for all namespaces of a run dir. Policy namespaces' DNS (UDP and TCP port 53 to any
// host address, their gateway in resolv.conf) is redirected by netcell's firewall to this
// resolver's port; it tells namespaces apart by the source address (anti-spoofed by the firewall's
// guard) and, for UDP, checks the packet came in on that namespace's own link. A name the policy
// allows is forwarded to the namespace's upstream servers; every address of the answer is made
// reachable for the namespace (NamespaceManager::learn) before the answer is released. Any other
// name is answered REFUSED (or NXDOMAIN) and never leaves the host. Each namespace has its own rate
// limit, so one flooding it cannot starve the others.
#pragma once

#include <netinet/in.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "netcell/manager.h"
#include "netcell/metrics.h"
#include "service/dns_wire.h"

namespace netcell::service {

struct ResolverOptions {
  std::uint16_t port = 0;            // 0: one the kernel picks
  double queries_per_second = 1000;  // per namespace, with a burst of twice that
  std::chrono::milliseconds upstream_timeout{2000};
};

class Resolver {
 public:
  static Result<std::unique_ptr<Resolver>> open(NamespaceManager& mgr, const ResolverOptions& o);
  ~Resolver();
  std::uint16_t port() const;
  // Runs until SIGTERM or SIGINT (returns 0) or a fatal error (returns 1).
  int run(int ready_fd);
  // What it answered each namespace with a policy since it started (a namespace that goes, or
  // loses its policy, goes from here too). Safe to call from any thread while run() runs.
  std::map<std::string, ResolverCounts> counts() const;

  struct Impl;

 private:
  explicit Resolver(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace netcell::service
