// netcell tests: running commands and reading the kernel back through an independent view.
#pragma once

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace netcell::testing {

struct CommandResult {
  int exit_code = -1;  // 128 + signal when killed
  std::string out;
  std::string err;
};

// Runs argv (PATH lookup) with stdin from /dev/null, capturing stdout and stderr, killing it after
// `timeout_ms`. Never goes through a shell.
CommandResult run(const std::vector<std::string>& argv, int timeout_ms = 20000);
// The same through `sh -c script`.
CommandResult sh(const std::string& script, int timeout_ms = 20000);
// Runs the netcell CLI built with the tests.
CommandResult cli(std::vector<std::string> args, int timeout_ms = 20000);

// `ip -j ARGS...` parsed; an empty array on failure.
nlohmann::json ip_json(const std::vector<std::string>& args);
// The sets and maps of table ip netcell named `base` or, sharded, `base_K`
// (src/linux/nft_elements.h), from `nft -j list table ip netcell`, in the shape `nft -j list
// set` prints: {"nftables": [{"set": {...}}, ...]}, a map's elements as {"elem": {...},
// "data": VERDICT}; discarded json when nft fails. `family` "ip6": the same of table ip6 netcell.
nlohmann::json nft_sets(const std::string& base, const std::string& family = "ip");
// How many elements of nft_sets(base, family) mention `needle` (in their JSON text); -1 when nft
// fails.
int elements_mentioning(const std::string& base, const std::string& needle,
                        const std::string& family = "ip");
// Link names in the named netns (`ip -n NAME -j link`), or in the current one when name is empty.
std::vector<std::string> link_names(const std::string& netns = "");

// Runs netcell-escape-probe ARGS (tests/support/escape_probe.cc) in `where`: a namespace name,
// "pid:N" for the network namespace process N is in (named or not), or "" for the caller's own.
// Its "KEY VALUE" lines, e.g. {"192.0.2.1:80": "open"}.
std::map<std::string, std::string> probe(const std::string& where,
                                         const std::vector<std::string>& args);
// TCP connects from `where` to each HOST:PORT, `timeout_ms` each, in parallel:
// open | closed (refused or reset) | silent (no answer in time) | error.
std::map<std::string, std::string> tcp_probe(const std::string& where,
                                             const std::vector<std::string>& targets,
                                             int timeout_ms = 500);

// tests/support/probe6.py MODE TIMEOUT_MS TARGET... in namespace `ns`, TARGETs "[ADDR]:PORT":
// for "tcp", open | closed (reset) | unreachable (an ICMPv6 error) | silent | error:WHY per target,
// connected in parallel; for "dns" (one UDP query each) answered | unreachable | silent.
std::map<std::string, std::string> probe6(const std::string& ns, const std::string& mode,
                                          const std::vector<std::string>& targets,
                                          int timeout_ms = 1000);

// The address of namespace `ns`'s eth0 as `netcell info --json` gives it ("10.209.0.2"); empty
// when it has none.
std::string namespace_address(const std::string& ns);

// True inside a world made by tests/support/world.sh.
bool in_world();

// Builds "the internet" inside the world: namespace `wan` joined by veth wan0 (world side
// 203.0.113.1/24, wan side 203.0.113.2/24, both TEST-NET-3), with the world's default route via
// 203.0.113.2. Returns an empty string or the error.
std::string make_internet();
// After make_internet: `wan` also answers for each IPv4 address of `addresses` (a /32 on its
// loopback). Returns an empty string or the error.
std::string wan_answers_for(const std::vector<std::string>& addresses);
// After make_internet: the world's uplink and `wan` get IPv6 addresses too (2001:db8:1::1 and
// ::2, /64) and the world an IPv6 default route via wan.
std::string make_internet6();

// A server in a child process inside network namespace `netns` (a name under /run/netns; empty
// for the caller's own) that records one line per thing it sees in a log the parent reads. Lives
// at most 120 s; the destructor ends it.
class RecordingServer {
 public:
  ~RecordingServer();
  RecordingServer(const RecordingServer&) = delete;
  RecordingServer& operator=(const RecordingServer&) = delete;
  // The server is bound and listening.
  bool ready() const { return ready_; }

 protected:
  // Called in the child, inside `netns`: returns a bound socket, or -1.
  using Bind = int (*)(const std::string& address, int port);
  // Called in the child with that socket and forever after: serves it, calling `record` per line.
  using Serve = void (*)(int socket, const std::string& reply,
                         const std::function<void(const std::string&)>& record);
  RecordingServer(const char* kind, const std::string& netns, const std::string& address, int port,
                  const std::string& reply, Bind bind, Serve serve);
  // The recorded lines so far, in order.
  std::vector<std::string> lines() const;

 private:
  int pid_ = -1;
  bool ready_ = false;
  std::string log_;
};

// A TCP server listening on `address`:`port`. Every connection gets `reply` and the peer's address
// is recorded.
class TcpResponder : public RecordingServer {
 public:
  TcpResponder(const std::string& netns, const std::string& address, int port, std::string reply);
  // Peer addresses of the connections so far, in order.
  std::vector<std::string> peers() const { return lines(); }
};

// A UDP receiver bound to `address`:`port`; an IPv6 address such as "::" takes IPv4 too. Each
// datagram is recorded as "SOURCE PAYLOAD" (the payload cut at 200 bytes) and, with a `reply`,
// answered with it.
class UdpRecorder : public RecordingServer {
 public:
  UdpRecorder(const std::string& netns, const std::string& address, int port,
              const std::string& reply = "");
  // The datagrams so far, in order.
  std::vector<std::string> records() const { return lines(); }
};

}  // namespace netcell::testing
