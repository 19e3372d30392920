// netcell: the command-line interface. Parses arguments (CLI11), then hands typed options to the
// command implementations in commands.cc.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>

#include "cli.h"

namespace {

using netcell::cli::CreateOptions;
using netcell::cli::GlobalOptions;
using netcell::cli::RunOptions;

void add_create_options(CLI::App* sub, CreateOptions& o) {
  sub->add_option("--mode", o.mode,
                  "Isolation mode: full (default), private, shared or bridged (default with "
                  "--network)");
  sub->add_option("--network", o.network, "Bridged network to join");
  sub->add_option("--ip", o.ip,
                  "Static address with prefix length (private: a .1 or .2 of a /30 in the pool; "
                  "bridged: a host address of the network)");
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
}

void add_run_options(CLI::App* sub, RunOptions& r) {
  sub->add_flag("--pid-ns", r.pid_ns, "Also give the command a new PID namespace (it is PID 1)");
  sub->add_flag("--init", r.init,
                "With --pid-ns: run netcell's minimal init as PID 1 (reaps orphans, forwards "
                "signals); the command is PID 2");
  sub->add_option("command", r.command, "The command and its arguments, after --")->required();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "netcell gives a process exactly the network it should have: none (full), a private NATed\n"
      "one, the host's (shared), or a bridged one; and removes it again without a trace.",
      "netcell"};
  app.set_version_flag("--version", "netcell 0.1.0");
  app.require_subcommand(1);
  GlobalOptions g;
  app.add_option("--backend", g.backend, "Backend: auto, linux or simulation")->default_str("auto");
  app.add_option("--run-dir", g.run_dir, "State directory (default /run/netcell)");
  app.add_option("--netns-dir", g.netns_dir, "Where namespaces are bind-mounted")
      ->default_str("/run/netns");
  app.add_option("--private-subnet", g.private_subnet,
                 "Address pool of private namespaces, one /30 each (takes effect while none exist)")
      ->default_str("10.209.0.0/16");
  app.add_flag("-v,--verbose", g.verbose, "Say more");
  app.add_flag("-q,--quiet", g.quiet, "Say less");

  bool json = false;
  CreateOptions create_opts;
  auto* create = app.add_subcommand("create", "Create a named namespace");
  create->add_option("name", create_opts.name, "Namespace name")->required();
  add_create_options(create, create_opts);
  create->add_option("--netns-of", create_opts.netns_of,
                     "Adopt the network namespace process PID already lives in instead of making "
                     "a new one (not with --mode shared)");
  create->add_flag("--json", json, "Print the namespace as JSON");

  CreateOptions run_create;
  RunOptions run_opts;
  auto* run = app.add_subcommand(
      "run",
      "Run a command in a new namespace that is destroyed when it ends; exit code passes "
      "through");
  run->add_option("--name", run_create.name, "Namespace name (default run-<pid>)");
  add_create_options(run, run_create);
  add_run_options(run, run_opts);

  std::string exec_name;
  RunOptions exec_opts;
  auto* exec = app.add_subcommand("exec", "Run a command inside an existing namespace");
  exec->add_option("name", exec_name, "Namespace name")->required();
  add_run_options(exec, exec_opts);

  auto* list = app.add_subcommand("list", "List namespaces");
  list->add_flag("--json", json, "Print JSON");

  std::string name;
  auto* info = app.add_subcommand("info", "Show a namespace");
  info->add_option("name", name, "Namespace name")->required();
  info->add_flag("--json", json, "Print JSON");

  auto* stats = app.add_subcommand("stats", "Show a namespace's interface counters");
  stats->add_option("name", name, "Namespace name")->required();
  stats->add_flag("--json", json, "Print JSON");

  std::string pid;
  auto* find_pid = app.add_subcommand("find-pid", "Find the namespace a process owns or lives in");
  find_pid->add_option("pid", pid, "Process id")->required();
  find_pid->add_flag("--json", json, "Print JSON");

  std::vector<std::string> names;
  auto* destroy = app.add_subcommand("destroy", "Destroy namespaces and everything made for them");
  destroy->add_option("names", names, "Namespace names")->required();

  auto* gc = app.add_subcommand("gc", "Remove what interrupted runs and ended owners left behind");
  gc->add_flag("--json", json, "Print JSON");

  auto* network =
      app.add_subcommand("network", "Manage networks (bridged, and the implicit private)");
  network->require_subcommand(1);
  std::string net_name, net_subnet;
  bool net_nat = false, net_host = false;
  auto* net_create = network->add_subcommand("create", "Create a bridged network");
  net_create->add_option("name", net_name, "Network name")->required();
  net_create->add_option("--subnet", net_subnet, "IPv4 subnet, e.g. 10.50.0.0/24")->required();
  net_create->add_flag("--nat", net_nat, "Masquerade traffic leaving the host");
  net_create->add_flag("--host-access", net_host, "Let namespaces reach the host's addresses");
  net_create->add_flag("--json", json, "Print JSON");
  auto* net_list = network->add_subcommand("list", "List networks");
  net_list->add_flag("--json", json, "Print JSON");
  std::vector<std::string> net_names;
  auto* net_rm = network->add_subcommand("rm", "Remove networks (refused while in use)");
  net_rm->add_option("names", net_names, "Network names")->required();

  std::string guard_name;
  auto* guard = app.add_subcommand("guard", "Internal: destroy NAME when its owner exits");
  guard->group("");  // hidden from --help; started by `create --owner`
  guard->add_option("name", guard_name)->required();

  std::string topology_file;
  bool dry_run = false;
  auto* up = app.add_subcommand(
      "up", "Bring up a topology file (YAML); running it again changes only what differs");
  up->add_option("file", topology_file, "Topology file")->required();
  up->add_flag("--dry-run", dry_run, "Print the plan and change nothing");
  up->add_flag("--json", json, "Print JSON");
  auto* down = app.add_subcommand(
      "down", "Remove what a topology file made (also after a failed or killed up)");
  down->add_option("file", topology_file, "Topology file")->required();
  down->add_flag("--dry-run", dry_run, "Print the plan and change nothing");
  down->add_flag("--json", json, "Print JSON");

  auto* doctor = app.add_subcommand("doctor", "Check privileges, kernel features and state");
  doctor->add_flag("--json", json, "Print JSON");

  // CLI11 reports an unknown command only as "a subcommand is required"; name it instead.
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--backend" || arg == "--run-dir" || arg == "--netns-dir" ||
        arg == "--private-subnet") {
      ++i;
      continue;
    }
    if (arg.empty() || arg[0] == '-') continue;
    const auto subs =
        app.get_subcommands([&](const CLI::App* sub) { return sub->check_name(arg); });
    if (subs.empty()) {
      std::fprintf(stderr, "netcell: unknown command '%s' (see netcell --help)\n", arg.c_str());
      return netcell::cli::kExitUsage;
    }
    break;
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

  using namespace netcell::cli;
  if (*create) return cmd_create(g, create_opts, json);
  if (*run) return cmd_run(g, run_create, run_opts);
  if (*exec) return cmd_exec(g, exec_name, exec_opts);
  if (*list) return cmd_list(g, json);
  if (*info) return cmd_info(g, name, json);
  if (*stats) return cmd_stats(g, name, json);
  if (*find_pid) return cmd_find_pid(g, pid, json);
  if (*destroy) return cmd_destroy(g, names);
  if (*gc) return cmd_gc(g, json);
  if (*guard) return cmd_guard(g, guard_name);
  if (*net_create) return cmd_network_create(g, net_name, net_subnet, net_nat, net_host, json);
  if (*net_list) return cmd_network_list(g, json);
  if (*net_rm) return cmd_network_rm(g, net_names);
  if (*doctor) return cmd_doctor(g, json);
  if (*up) return cmd_topology(g, topology_file, true, dry_run, json);
  if (*down) return cmd_topology(g, topology_file, false, dry_run, json);
  return kExitUsage;
}
