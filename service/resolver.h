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

namespace netcell::service {

struct ResolverOptions {
  std::uint16_t port = 0;            // 0: one the kernel picks
  double queries_per_second = 1000;  // per namespace, with a burst of twice that
  std::chrono::milliseconds upstream_timeout{2000};
};

// What a query is, read from its wire form by ldns; nullopt for anything that is not a single
// question standard query.
struct Question {
  std::uint16_t id = 0;
  std::string name;  // lower case, no trailing dot ("" for the root)
  std::uint16_t qtype = 0;
  std::uint16_t qclass = 0;
};
std::optional<Question> parse_query(const std::uint8_t* data, std::size_t size);
// An answer to `query` (its wire form) with `rcode` and no records: REFUSED, NXDOMAIN, SERVFAIL.
std::vector<std::uint8_t> error_reply(const std::uint8_t* query, std::size_t size,
                                      std::uint16_t rcode);
// The addresses an upstream answer gives `name`: A records of the name and of every name the
// CNAME chain inside this one answer leads to, and the least TTL on the way. nullopt when the
// answer is not a response to `question` (id, name, type, class).
struct Answer {
  std::vector<IpAddress> addresses;
  std::uint32_t ttl = 0;
  bool truncated = false;
  std::uint16_t rcode = 0;
};
std::optional<Answer> read_answer(const std::uint8_t* data, std::size_t size,
                                  const Question& question);

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
