// netcell CLI: shared pieces of the command implementations.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "netcell/netcell.h"

namespace netcell::cli {

// Exit codes (DESIGN.md §1): 0 ok, 1 operation failed, 2 bad usage or invalid input.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;

struct GlobalOptions {
  std::string backend = "auto";
  std::string run_dir;
  std::string netns_dir = "/run/netns";
  std::string private_subnet = "10.209.0.0/16";
  std::string private_subnet6;  // empty: the run dir's generated ULA /48
  bool verbose = false;
  bool quiet = false;
};

// A counter on stderr for operations over many namespaces ("[37/200] creating web-37"),
// rewritten in place; only when stderr is a terminal, never with --quiet, and only when there are
// at least two steps. clear() (and the destructor) erases it, so that what follows (an error, the
// summary) starts on a clean line.
class Progress {
 public:
  explicit Progress(const GlobalOptions& g);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;
  void show(std::size_t done, std::size_t total, std::string_view verb, std::string_view object);
  void clear();

 private:
  bool enabled_ = false;
  bool shown_ = false;
};

// Options shared by `create` and `run`, as typed on the command line.
// An egress policy as the command line gives it (create, run, policy set).
struct PolicyOptions {
  std::optional<std::string> egress;  // allow | deny; unset: deny with --allow, else allow
  std::vector<std::string> allow;     // egress rules DEST[:PORTS][/PROTO]
  std::vector<std::string> deny;
  std::vector<std::string> allow_domain;  // PATTERN[:PORTS][/PROTO], a name whatever it looks like
  std::vector<std::string> deny_domain;
  std::optional<std::string> file;  // --policy FILE: the base the other options add to
  std::optional<std::string> refuse_dns;
  std::optional<std::string> dns_min_ttl, dns_grace;
  bool given() const {
    return egress || !allow.empty() || !deny.empty() || !allow_domain.empty() ||
           !deny_domain.empty() || file || refuse_dns || dns_min_ttl || dns_grace;
  }
};
// {"rules": [{"action", "rule", "packets", "bytes"}...], "default": {"packets", "bytes"}}.
nlohmann::json counters_json(const EgressPolicy& policy, const EgressCounters& counters);
// The policy the options describe; nullopt when none of them is given.
Result<std::optional<EgressPolicy>> build_policy(const PolicyOptions& options);

struct CreateOptions {
  std::string name;
  std::string mode;  // empty: bridged with --network, else full
  std::string network;
  std::vector<std::string> ip;  // at most one per family
  std::string gateway;
  std::optional<long> mtu;
  std::vector<std::string> dns;
  std::vector<std::string> publish;
  std::optional<std::string> rate;  // both directions; the two below override it
  std::optional<std::string> egress_rate;
  std::optional<std::string> ingress_rate;
  std::optional<long> owner;
  std::optional<long> netns_of;  // create: adopt this process's network namespace
  bool no_ipv6 = false;          // private: IPv4 only
  PolicyOptions policy;
  std::string profile;  // a named profile (netcell/sandbox.h); empty: none
};

struct RunOptions {
  bool pid_ns = false;
  bool init = false;
  std::vector<std::string> command;
};

// Prints "netcell: <what>" to stderr and returns the exit code for the error's kind.
int report(const Error& error);
// Turns typed options into a config; every problem is kInvalidArgument.
Result<NamespaceConfig> build_config(const CreateOptions& options);
Result<NamespaceManager> open_manager(const GlobalOptions& global);
// build_config, and with --profile the profile applied: its mode and defaults, and its grants
// (options that contradict it are kInvalidArgument, naming the conflict). Without a profile
// everything is granted.
Result<SandboxConfig> build_sandbox(const CreateOptions& options);
// Creates the namespace; with a profile through SandboxManager::create, which checks the grants.
Result<NamespaceInfo> create_sandbox(SandboxManager& sandboxes, const SandboxConfig& config);

int cmd_create(const GlobalOptions& g, const CreateOptions& o, bool json);
int cmd_run(const GlobalOptions& g, CreateOptions o, const RunOptions& r);
int cmd_exec(const GlobalOptions& g, const std::string& name, const RunOptions& r);
int cmd_list(const GlobalOptions& g, bool json);
int cmd_info(const GlobalOptions& g, const std::string& name, bool json);
int cmd_stats(const GlobalOptions& g, const std::string& name, bool json);
int cmd_find_pid(const GlobalOptions& g, const std::string& pid, bool json);
int cmd_destroy(const GlobalOptions& g, const std::vector<std::string>& names,
                const DestroyOptions& how);
int cmd_gc(const GlobalOptions& g, bool json);
// The owner guard behind `create --owner`: waits for the owner to exit, then destroys NAME.
int cmd_guard(const GlobalOptions& g, const std::string& name);
int cmd_network_create(const GlobalOptions& g, const std::string& name, const std::string& subnet,
                       const std::string& subnet6, bool nat, bool host_access, bool json);
int cmd_network_list(const GlobalOptions& g, bool json);
int cmd_network_rm(const GlobalOptions& g, const std::vector<std::string>& names);
int cmd_doctor(const GlobalOptions& g, bool json);
// netcell profile list: the named profiles and what they grant.
int cmd_profile_list(bool json);
// netcell policy show|set|clear NAME (set: `o` replaces the whole policy).
int cmd_policy_show(const GlobalOptions& g, const std::string& name, bool json_out);
int cmd_policy_set(const GlobalOptions& g, const std::string& name, const PolicyOptions& o,
                   bool json_out);
int cmd_policy_clear(const GlobalOptions& g, const std::string& name, bool json_out);
// netcell log NAME: the denied-flow log, the last `lines` lines (all without it), then with
// `follow` what is appended until SIGINT/SIGTERM or the namespace's end.
int cmd_log(const GlobalOptions& g, const std::string& name, bool follow, bool json_out,
            std::optional<long> lines);
// Prometheus text format on stdout, or written atomically to TEXTFILE_DIR/netcell.prom.
int cmd_metrics(const GlobalOptions& g, const std::string& textfile_dir);
// `up FILE` (up = true) or `down FILE`.
int cmd_topology(const GlobalOptions& g, const std::string& file, bool up, bool dry_run, bool json);

// Human-readable output.
// With the [::1] relay's state when the namespace has one (NamespaceManager::relay_state).
void print_info(const NamespaceInfo& info, const std::optional<RelayState>& relay = {});
void print_list(const std::vector<NamespaceInfo>& infos);
void print_stats(const NamespaceStats& stats);
void print_networks(const std::vector<NetworkInfo>& networks);

}  // namespace netcell::cli
