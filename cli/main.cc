// netcell: the command-line interface. Parses arguments (CLI11), then hands typed options to the
// command implementations in commands.cc.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "cli.h"
#include "version.h"

namespace {

using netcell::cli::CreateOptions;
using netcell::cli::GlobalOptions;
using netcell::cli::PolicyOptions;
using netcell::cli::RunOptions;

void add_policy_options(CLI::App* sub, PolicyOptions& o) {
  sub->add_option("--egress", o.egress,
                  "Egress default for new connections leaving the namespace: allow or deny "
                  "(private or bridged; default deny when --allow is given, else allow)");
  sub->add_option("--allow", o.allow,
                  "Egress rule DEST[:PORTS][/tcp|udp|icmp|any]: may reach DEST, a CIDR or an "
                  "address, e.g. 10.99.0.5:5432/tcp (repeatable)");
  sub->add_option("--deny", o.deny,
                  "Egress rule, same form: may not reach DEST; deny beats allow (repeatable)");
  sub->add_option("--allow-domain", o.allow_domain,
                  "Domain rule PATTERN[:PORTS][/PROTO]: what a name matching PATTERN (pypi.org, "
                  "*.example.com) resolves to through netcell's resolver may be reached "
                  "(repeatable; --allow takes names too)");
  sub->add_option("--deny-domain", o.deny_domain,
                  "Name pattern netcell's resolver refuses to resolve (repeatable)");
  sub->add_option("--policy", o.file,
                  "Egress policy file (YAML or JSON: default, allow, deny, dns); the other policy "
                  "options add to it");
  sub->add_option("--refuse-dns", o.refuse_dns,
                  "How netcell's resolver answers a name the policy does not allow: refused "
                  "(default) or nxdomain");
  sub->add_option("--dns-min-ttl", o.dns_min_ttl,
                  "Seconds an address learned from an answer stays allowed at least (default 30)");
  sub->add_option("--dns-grace", o.dns_grace,
                  "Seconds added to that (default 30); then only established connections go on");
}

void add_create_options(CLI::App* sub, CreateOptions& o) {
  sub->add_option("--mode", o.mode,
                  "Isolation mode: full (default), private, shared or bridged (default with "
                  "--network)");
  sub->add_option("--network", o.network, "Bridged network to join");
  sub->add_option("--ip", o.ip,
                  "Static address with prefix length, once per family (private: a .1 or .2 of a "
                  "/30 in the pool, and the ::2/64 of a /64 of the IPv6 pool; bridged: a host "
                  "address of the network)")
      ->allow_extra_args(false);  // each --ip one address: a name after it stays the name
  sub->add_option("--gateway", o.gateway, "Default gateway of the namespace");
  sub->add_option("--mtu", o.mtu, "MTU of the namespace interface (68..65535)");
  sub->add_option("--dns", o.dns, "DNS server for the namespace (repeatable)");
  sub->add_option("--publish", o.publish,
                  "Publish a port: [HOSTIP:]HOSTPORT:PORT[/tcp|/udp] (repeatable)");
  sub->add_option("--rate", o.rate,
                  "Bandwidth limit in both directions (private and bridged), e.g. 500kbit, "
                  "10mbit, 1gbit");
  sub->add_option("--egress-rate", o.egress_rate,
                  "Bandwidth limit of traffic leaving the namespace (overrides --rate)");
  sub->add_option("--ingress-rate", o.ingress_rate,
                  "Bandwidth limit of traffic entering the namespace (overrides --rate)");
  sub->add_option("--owner", o.owner, "Owner pid: the namespace belongs to this process");
  sub->add_flag("--no-ipv6", o.no_ipv6,
                "Private: IPv4 only (by default a private namespace is dual-stack where the host "
                "has IPv6)");
  add_policy_options(sub, o.policy);
  sub->add_option("--profile", o.profile,
                  "Named profile: untrusted, egress-allowlist or service (netcell profile list). "
                  "It sets the mode and its defaults and grants what the namespace may use; "
                  "options that contradict it are refused");
}

// `command_given`: the command line has words after its first `--` (split off before parsing,
// see split_command), so the positional may stay empty. `example` shows the command in --help.
void add_run_options(CLI::App* sub, RunOptions& r, bool command_given, const char* example) {
  sub->add_flag("--pid-ns", r.pid_ns, "Also give the command a new PID namespace (it is PID 1)");
  sub->add_flag("--init", r.init,
                "With --pid-ns: run netcell's minimal init as PID 1 (reaps orphans, forwards "
                "signals); the command is PID 2");
  auto* command =
      sub->add_option("command", r.command, "The command and its arguments, after the first --");
  if (!command_given) command->required();
  sub->footer(std::string("Everything after the first -- is the command and its own arguments, "
                          "never netcell's options,\nwhatever comes before it:\n  ") +
              example);
}

// The command word: the index of the first argument that is neither an option nor the value of
// a global option that takes one. 0 when there is none (netcell --help, --version).
int command_word_at(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--backend" || arg == "--run-dir" || arg == "--netns-dir" ||
        arg == "--private-subnet" || arg == "--private-subnet6") {
      ++i;
      continue;
    }
    if (arg.empty() || arg[0] == '-') continue;
    return i;
  }
  return 0;
}

// `run` and `exec`: everything after the first `--` that follows the command word is the
// command's. It is taken off the end of argv here (argc shrinks to the `--`) and never reaches
// CLI11, which would otherwise let a repeatable option placed last (--publish, --dns) take the
// `--` and read the command's own flags as netcell's.
std::vector<std::string> split_command(int& argc, char** argv, int word_at) {
  for (int i = word_at + 1; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--") {
      std::vector<std::string> command(argv + i + 1, argv + argc);
      argc = i;
      return command;
    }
  }
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "netcell gives a process exactly the network it should have: none (full), a private NATed\n"
      "one, the host's (shared), or a bridged one; and removes it again without a trace.",
      "netcell"};
  app.set_version_flag("--version", netcell::cli::version_line());
  app.require_subcommand(1);
  GlobalOptions g;
  app.add_option("--backend", g.backend, "Backend: auto, linux, rootless or simulation")
      ->default_str("auto");
  app.add_option("--run-dir", g.run_dir,
                 "State directory (default /run/netcell; rootless: $XDG_RUNTIME_DIR/netcell)");
  app.add_option("--netns-dir", g.netns_dir, "Where namespaces are bind-mounted")
      ->default_str("/run/netns");
  app.add_option("--private-subnet", g.private_subnet,
                 "Address pool of private namespaces, one /30 each (takes effect while none exist)")
      ->default_str("10.209.0.0/16");
  app.add_option("--private-subnet6", g.private_subnet6,
                 "IPv6 pool of private namespaces, one /64 each (default: a ULA /48 made once "
                 "and kept in the run dir; takes effect while none exist)");
  app.add_flag("-v,--verbose", g.verbose, "Say more");
  app.add_flag("-q,--quiet", g.quiet, "Say less");

  // Only the command named on the command line is built (every one when none is named, for
  // --help). CLI11 makes a sizeable object per command and per option, and in a process that
  // lives a few milliseconds the memory they take is paid for page by page.
  const int word_at = command_word_at(argc, argv);
  const std::string word = word_at > 0 ? argv[word_at] : "";
  std::vector<std::string> command_words;
  if (word == "run" || word == "exec") command_words = split_command(argc, argv, word_at);
  auto sub = [&](const char* command, const char* description) -> CLI::App* {
    return word.empty() || word == command ? app.add_subcommand(command, description) : nullptr;
  };

  bool json = false;
  CreateOptions create_opts;
  auto* create = sub("create", "Create a named namespace");
  if (create != nullptr) {
    create->add_option("name", create_opts.name, "Namespace name")->required();
    add_create_options(create, create_opts);
    create->add_option("--netns-of", create_opts.netns_of,
                       "Adopt the network namespace process PID already lives in instead of "
                       "making a new one (not with --mode shared)");
    create->add_flag("--json", json, "Print the namespace as JSON");
  }

  CreateOptions run_create;
  RunOptions run_opts;
  auto* run =
      sub("run",
          "Run a command in a new namespace that is destroyed when it ends; exit code passes "
          "through. Processes the command leaves behind (daemons, background jobs) are ended "
          "with SIGKILL when it ends");
  if (run != nullptr) {
    run->add_option("--name", run_create.name, "Namespace name (default run-<pid>)");
    add_create_options(run, run_create);
    add_run_options(
        run, run_opts, !command_words.empty(),
        "netcell run --mode private --publish 8000:8000 -- python3 -m http.server 8000");
  }

  std::string exec_name;
  RunOptions exec_opts;
  auto* exec = sub("exec", "Run a command inside an existing namespace");
  if (exec != nullptr) {
    exec->add_option("name", exec_name, "Namespace name")->required();
    add_run_options(exec, exec_opts, !command_words.empty(),
                    "netcell exec web -- sh -c 'ip -j addr'");
  }

  auto* list = sub("list", "List namespaces");
  if (list != nullptr) list->add_flag("--json", json, "Print JSON");

  std::string name;
  auto* info = sub("info", "Show a namespace");
  if (info != nullptr) {
    info->add_option("name", name, "Namespace name")->required();
    info->add_flag("--json", json, "Print JSON");
  }

  auto* stats = sub("stats", "Show a namespace's interface counters");
  if (stats != nullptr) {
    stats->add_option("name", name, "Namespace name")->required();
    stats->add_flag("--json", json, "Print JSON");
  }

  std::string pid;
  auto* find_pid = sub("find-pid", "Find the namespace a process owns or lives in");
  if (find_pid != nullptr) {
    find_pid->add_option("pid", pid, "Process id")->required();
    find_pid->add_flag("--json", json, "Print JSON");
  }

  std::vector<std::string> names;
  bool kill_inside = false;
  auto* destroy = sub("destroy",
                      "Destroy namespaces and everything made for them. Processes still inside "
                      "keep running with loopback only (no link, address or route of the "
                      "namespace survives); --kill ends them");
  if (destroy != nullptr) {
    destroy->add_option("names", names, "Namespace names")->required();
    destroy->add_flag("--kill", kill_inside,
                      "End every process still inside each namespace (SIGKILL) first");
  }

  auto* gc = sub("gc", "Remove what interrupted runs and ended owners left behind");
  if (gc != nullptr) gc->add_flag("--json", json, "Print JSON");

  auto* network = sub("network", "Manage networks (bridged, and the implicit private)");
  std::string net_name, net_subnet, net_subnet6;
  bool net_nat = false, net_host = false;
  std::vector<std::string> net_names;
  CLI::App *net_create = nullptr, *net_list = nullptr, *net_rm = nullptr;
  if (network != nullptr) {
    network->require_subcommand(1);
    net_create = network->add_subcommand("create", "Create a bridged network");
    net_create->add_option("name", net_name, "Network name")->required();
    net_create->add_option("--subnet", net_subnet, "IPv4 subnet, e.g. 10.50.0.0/24")->required();
    net_create->add_option("--subnet6", net_subnet6,
                           "IPv6 prefix for dual stack, e.g. fd00:50::/64 (/48 to /120)");
    net_create->add_flag("--nat", net_nat, "Masquerade traffic leaving the host");
    net_create->add_flag("--host-access", net_host, "Let namespaces reach the host's addresses");
    net_create->add_flag("--json", json, "Print JSON");
    net_list = network->add_subcommand("list", "List networks");
    net_list->add_flag("--json", json, "Print JSON");
    net_rm = network->add_subcommand("rm", "Remove networks (refused while in use)");
    net_rm->add_option("names", net_names, "Network names")->required();
  }

  std::string guard_name;
  auto* guard = sub("guard", "Internal: destroy NAME when its owner exits");
  if (guard != nullptr) {
    guard->group("");  // hidden from --help; started by `create --owner`
    guard->add_option("name", guard_name)->required();
  }

  std::string topology_file;
  bool dry_run = false;
  auto* up =
      sub("up", "Bring up a topology file (YAML); running it again changes only what differs");
  if (up != nullptr) {
    up->add_option("file", topology_file, "Topology file")->required();
    up->add_flag("--dry-run", dry_run, "Print the plan and change nothing");
    up->add_flag("--json", json, "Print JSON");
  }
  auto* down = sub("down", "Remove what a topology file made (also after a failed or killed up)");
  if (down != nullptr) {
    down->add_option("file", topology_file, "Topology file")->required();
    down->add_flag("--dry-run", dry_run, "Print the plan and change nothing");
    down->add_flag("--json", json, "Print JSON");
  }

  auto* policy = sub("policy", "Show or change a private or bridged namespace's egress policy");
  std::string policy_name;
  PolicyOptions policy_opts;
  CLI::App *policy_show = nullptr, *policy_set = nullptr, *policy_clear = nullptr;
  if (policy != nullptr) {
    policy->require_subcommand(1);
    policy_show = policy->add_subcommand("show", "Show the egress policy");
    policy_set = policy->add_subcommand(
        "set", "Replace the egress policy as one change (new connections follow it at once)");
    policy_clear = policy->add_subcommand("clear", "Remove the egress policy");
    for (auto* s : {policy_show, policy_set, policy_clear}) {
      s->add_option("name", policy_name, "Namespace name")->required();
      s->add_flag("--json", json, "Print the policy as JSON");
    }
    add_policy_options(policy_set, policy_opts);
  }

  auto* profile = sub("profile", "Show the named profiles of create and run (--profile)");
  CLI::App* profile_list = nullptr;
  if (profile != nullptr) {
    profile->require_subcommand(1);
    profile_list = profile->add_subcommand("list", "List the profiles and what each grants");
    profile_list->add_flag("--json", json, "Print JSON");
  }

  std::string log_name;
  bool log_follow = false;
  std::optional<long> log_lines;
  auto* log_cmd = sub("log",
                      "Show a namespace's denied-flow log: the flows its egress policy refused and "
                      "the names netcell's resolver refused");
  if (log_cmd != nullptr) {
    log_cmd->add_option("name", log_name, "Namespace name")->required();
    log_cmd->add_flag("-f,--follow", log_follow,
                      "Go on printing what is logged until interrupted (SIGINT, SIGTERM) or the "
                      "namespace is destroyed");
    log_cmd->add_option("-n,--lines", log_lines, "Show only the last N lines")->type_name("N");
    log_cmd->add_flag("--json", json, "Print the log's JSON lines as they are kept");
  }

  auto* doctor = sub("doctor", "Check privileges, kernel features and state");
  if (doctor != nullptr) doctor->add_flag("--json", json, "Print JSON");

  std::string textfile_dir;
  auto* metrics = sub("metrics",
                      "Print every namespace's interface counters and the namespaces and networks "
                      "in the Prometheus text format");
  if (metrics != nullptr) {
    metrics
        ->add_option("--textfile", textfile_dir,
                     "Write them atomically to DIR/netcell.prom instead (for node_exporter's "
                     "textfile collector)")
        ->type_name("DIR");
  }

  // CLI11 reports an unknown command only as "a subcommand is required"; name it instead (a word
  // that names a command has built it).
  if (!word.empty() && app.get_subcommands({}).empty()) {
    std::fprintf(stderr, "netcell: unknown command '%s' (see netcell --help)\n", word.c_str());
    return netcell::cli::kExitUsage;
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "netcell: %s (see netcell --help)\n", e.what());
    return netcell::cli::kExitUsage;
  }

  // Words before the `--` (if any) came through the positional; the command's follow them.
  RunOptions& command_of = word == "run" ? run_opts : exec_opts;
  command_of.command.insert(command_of.command.end(), command_words.begin(), command_words.end());

  using namespace netcell::cli;
  auto chosen = [](const CLI::App* command) { return command != nullptr && command->parsed(); };
  if (chosen(create)) return cmd_create(g, create_opts, json);
  if (chosen(run)) return cmd_run(g, run_create, run_opts);
  if (chosen(exec)) return cmd_exec(g, exec_name, exec_opts);
  if (chosen(list)) return cmd_list(g, json);
  if (chosen(info)) return cmd_info(g, name, json);
  if (chosen(stats)) return cmd_stats(g, name, json);
  if (chosen(find_pid)) return cmd_find_pid(g, pid, json);
  if (chosen(destroy))
    return cmd_destroy(g, names, netcell::DestroyOptions{.kill_processes = kill_inside});
  if (chosen(gc)) return cmd_gc(g, json);
  if (chosen(guard)) return cmd_guard(g, guard_name);
  if (chosen(net_create))
    return cmd_network_create(g, net_name, net_subnet, net_subnet6, net_nat, net_host, json);
  if (chosen(net_list)) return cmd_network_list(g, json);
  if (chosen(net_rm)) return cmd_network_rm(g, net_names);
  if (chosen(doctor)) return cmd_doctor(g, json);
  if (chosen(log_cmd)) return cmd_log(g, log_name, log_follow, json, log_lines);
  if (chosen(profile_list)) return cmd_profile_list(json);
  if (chosen(policy_show)) return cmd_policy_show(g, policy_name, json);
  if (chosen(policy_set)) return cmd_policy_set(g, policy_name, policy_opts, json);
  if (chosen(policy_clear)) return cmd_policy_clear(g, policy_name, json);
  if (chosen(metrics)) return cmd_metrics(g, textfile_dir);
  if (chosen(up)) return cmd_topology(g, topology_file, true, dry_run, json);
  if (chosen(down)) return cmd_topology(g, topology_file, false, dry_run, json);
  return kExitUsage;
}
