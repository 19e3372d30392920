// netcell: topologies — several namespaces, networks and links declared in one YAML file.
//
//   auto topology = load_topology("three-hosts.yaml");          // every error, with file:line
//   auto report = topology_up(manager, *topology, {});           // converge; idempotent
//   auto gone = topology_down(manager, *topology);               // remove what the file made
//
// Everything a topology adds beyond its namespaces and networks (links between namespaces, extra
// addresses, routes, sysctls, link rate limits) lives inside its namespaces, so it goes with
// them. Objects are tagged with the topology's name and a digest of their declaration: `up` keeps
// what matches, replaces what changed, refuses to touch objects it did not make, and `down`
// removes only objects carrying the tag.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "netcell/result.h"
#include "netcell/types.h"

namespace netcell {

class NamespaceManager;

// An address added to a device inside a namespace.
struct ExtraAddress {
  std::string device;
  IpPrefix address;
  friend bool operator==(const ExtraAddress&, const ExtraAddress&) = default;
};

// A static route inside a namespace: to `destination` via `via` and/or out of `device`.
struct StaticRoute {
  IpPrefix destination;  // 0.0.0.0/0 for "default"
  std::optional<IpAddress> via;
  std::string device;  // empty: the kernel picks it from `via`
  friend bool operator==(const StaticRoute&, const StaticRoute&) = default;
};

// A network sysctl inside a namespace ("net.ipv4.ip_forward" = "1"). Only net.* keys.
struct Sysctl {
  std::string key;
  std::string value;
  friend bool operator==(const Sysctl&, const Sysctl&) = default;
};

// What a topology adds inside one ready namespace; applying it twice changes nothing.
struct NamespaceExtras {
  std::vector<Sysctl> sysctls;
  std::vector<ExtraAddress> addresses;
  std::vector<StaticRoute> routes;
};

// One end of a link between two namespaces.
struct LinkEnd {
  std::string ns;      // namespace name
  std::string device;  // interface name inside it
  std::vector<IpPrefix> addresses;
  friend bool operator==(const LinkEnd&, const LinkEnd&) = default;
};

// A veth pair between two namespaces. Rates shape the egress of each end: `a_to_b_bps` on end a,
// `b_to_a_bps` on end b (0 = unlimited).
struct LinkConfig {
  LinkEnd a;
  LinkEnd b;
  std::uint32_t mtu = 0;  // 0 = kernel default
  std::uint64_t a_to_b_bps = 0;
  std::uint64_t b_to_a_bps = 0;
  friend bool operator==(const LinkConfig&, const LinkConfig&) = default;
};

// A command started inside a namespace once the topology is up. A single string runs through
// /bin/sh -c; a list is an argv.
struct TopologyCommand {
  std::vector<std::string> argv;
  friend bool operator==(const TopologyCommand&, const TopologyCommand&) = default;
};

struct TopologyNamespace {
  NamespaceConfig config;  // config.topology is filled in by the parser
  NamespaceExtras extras;
  std::vector<TopologyCommand> commands;
  int line = 0;  // where it is declared
};

struct TopologyNetwork {
  NetworkConfig config;
  int line = 0;
};

struct Topology {
  std::string name;    // the file's `name:`, else the file name without extension
  std::string source;  // the file it came from, for messages
  std::vector<TopologyNetwork> networks;
  std::vector<TopologyNamespace> namespaces;  // in file order
  std::vector<LinkConfig> links;
};

// One problem in a topology file: "FILE:LINE: FIELD: MESSAGE".
struct TopologyError {
  std::string file;
  int line = 0;  // 1-based; 0 when unknown
  std::string field;
  std::string message;
  std::string to_string() const;
};

// Parses and validates a whole file, collecting every error (not only the first). Checks syntax,
// unknown keys, types, names, CIDRs, ports, rates, references between objects (networks, link
// ends, route devices), duplicates and overlaps. Does not look at the system.
struct TopologyParse {
  std::optional<Topology> topology;  // set only when errors is empty
  std::vector<TopologyError> errors;
};
TopologyParse parse_topology(std::string_view yaml, const std::string& file);
// A policy file (`--policy FILE`): what a namespace's egress: block holds, on its own, in YAML or
// JSON: {default: allow|deny, allow: [RULE...], deny: [RULE...], dns: {refuse, min_ttl, grace}}.
// The first error, located ("FILE:LINE: FIELD: MESSAGE").
Result<EgressPolicy> parse_policy_file(std::string_view yaml, const std::string& file);
// Reads `path` (at most 1 MiB) and parses it.
Result<EgressPolicy> load_policy_file(const std::string& path);
// Reads `path` (at most 1 MiB) and parses it.
TopologyParse load_topology(const std::string& path);

// One step of `up` or `down`, for --dry-run and reports.
struct TopologyStep {
  std::string action;  // "create", "replace", "keep", "remove", "link", "configure", "start", ...
  std::string kind;    // "network", "namespace", "link", "command"
  std::string object;  // its name ("a", "a:eth1-b:eth1", "a#0")
  std::string detail;
};

// Where a long `up` or `down` is: the namespace it is about to change, and how many of them it
// changes in all (for a progress display).
struct TopologyProgress {
  std::string action;     // "create", "replace" (its removal, then its creation) or "remove"
  std::string object;     // the namespace's name
  std::size_t done = 0;   // 1 for the first namespace change, `total` for the last
  std::size_t total = 0;  // namespace changes this call makes
};

struct TopologyOptions {
  bool dry_run = false;  // plan only: check against the system, change nothing
  // Where command output goes: RUN_DIR/topologies/NAME/ (empty = the manager's run dir).
  std::string log_dir;
  // Called before each namespace change (not on a dry run), on the calling thread.
  std::function<void(const TopologyProgress&)> progress;
};

struct TopologyReport {
  std::vector<TopologyStep> steps;
  int changed = 0;  // steps that changed something
};

// Converges the system to `topology`: creates missing networks and namespaces, replaces ones
// whose declaration changed (and their links), keeps the rest, then applies links, extras, rate
// limits and starts commands that are not running. Refuses, before changing anything, when a
// name is taken by an object that is not part of this topology. When a step fails, everything
// this call created is removed again and the error says which step failed.
Result<TopologyReport> topology_up(NamespaceManager& manager, const Topology& topology,
                                   const TopologyOptions& options);
// Stops the topology's commands, destroys its namespaces and removes its networks: only objects
// tagged with this topology's name. Works after a partial or killed `up` (it first lets gc roll
// back interrupted creates). Objects already gone are fine.
Result<TopologyReport> topology_down(NamespaceManager& manager, const Topology& topology,
                                     const TopologyOptions& options);

}  // namespace netcell
