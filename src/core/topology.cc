// Topologies: `up` and `down` over the manager. Parsing is in topology_parse.cc.
#include "netcell/topology.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "core/fault.h"
#include "core/files.h"
#include "core/validate.h"
#include "netcell/manager.h"

namespace netcell {

using nlohmann::json;

namespace {

// RUN_DIR/topologies/NAME.json: the commands a topology started, so `up` leaves running ones
// alone and `down` stops them. RUN_DIR/topologies/NAME/ holds their output.
struct CommandEntry {
  std::string ns;
  std::size_t index = 0;
  std::string digest;  // of the namespace when the command was started
  pid_t pid = 0;
  std::uint64_t start_time = 0;
};

class TopologyState {
 public:
  TopologyState(const std::string& run_dir, const std::string& name)
      : dir_(run_dir + "/topologies"),
        path_(dir_ + "/" + name + ".json"),
        log_dir_(dir_ + "/" + name) {}

  Result<std::vector<CommandEntry>> load() const {
    struct stat st {};
    if (::stat(path_.c_str(), &st) != 0) return std::vector<CommandEntry>{};
    auto text = read_file(path_);
    if (!text) return fail(text.error());
    std::vector<CommandEntry> out;
    try {
      json j = json::parse(*text);
      for (const auto& c : j.at("commands")) {
        CommandEntry e;
        e.ns = c.at("namespace").get<std::string>();
        e.index = c.at("index").get<std::size_t>();
        e.digest = c.at("digest").get<std::string>();
        e.pid = c.at("pid").get<pid_t>();
        e.start_time = c.at("start_time").get<std::uint64_t>();
        if (e.pid <= 0) throw std::runtime_error("bad pid");
        out.push_back(std::move(e));
      }
    } catch (const std::exception& e) {
      return fail(ErrorCode::kCorrupt, path_ + ": " + e.what());
    }
    return out;
  }

  Result<void> save(const std::vector<CommandEntry>& entries) const {
    NETCELL_TRY(mkdir_if_missing(dir_));
    json list = json::array();
    for (const auto& e : entries) {
      list.push_back({{"namespace", e.ns},
                      {"index", e.index},
                      {"digest", e.digest},
                      {"pid", e.pid},
                      {"start_time", e.start_time}});
    }
    return write_atomically(path_, json{{"commands", list}}.dump(2) + "\n");
  }

  Result<std::string> log_path(const std::string& ns, std::size_t index) const {
    NETCELL_TRY(mkdir_if_missing(dir_));
    NETCELL_TRY(mkdir_if_missing(log_dir_));
    return log_dir_ + "/" + ns + "." + std::to_string(index) + ".log";
  }

  // Removes the state file and the logs.
  void remove() const {
    std::error_code ignored;
    std::filesystem::remove_all(log_dir_, ignored);
    std::filesystem::remove(path_, ignored);
    ::rmdir(dir_.c_str());  // only when no other topology is left
  }

 private:
  std::string dir_;
  std::string path_;
  std::string log_dir_;
};

bool running(const CommandEntry& e) {
  auto start = process_start_time(e.pid);
  return start && *start == e.start_time;
}

// SIGTERM, up to 2 s, then SIGKILL; through a pidfd checked against the start time, so a recycled
// pid is never signalled.
void stop(const CommandEntry& e) {
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, e.pid, 0));
  if (pidfd < 0) return;
  if (!running(e)) {
    ::close(pidfd);
    return;
  }
  ::syscall(SYS_pidfd_send_signal, pidfd, SIGTERM, nullptr, 0);
  for (int i = 0; i < 100 && running(e); ++i) {
    ::waitpid(e.pid, nullptr, WNOHANG);  // when it is our own child (library callers)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (running(e)) {
    ::syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0);
    for (int i = 0; i < 100 && running(e); ++i) {
      ::waitpid(e.pid, nullptr, WNOHANG);
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  ::waitpid(e.pid, nullptr, WNOHANG);
  ::close(pidfd);
}

// Every process living in the namespace at `netns_path` (commands a killed `up` started before
// it could record them, shells a user left there): SIGTERM, up to 2 s, then SIGKILL. Matched by
// the namespace's nsfs inode, through pidfds.
void stop_processes_in(const std::string& netns_path) {
  struct stat target {};
  if (netns_path.empty() || ::stat(netns_path.c_str(), &target) != 0) return;
  auto members = [&] {
    std::vector<pid_t> pids;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
      const std::string name = entry.path().filename().string();
      if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
      struct stat st {};
      std::string ns = "/proc/" + name + "/ns/net";
      if (::stat(ns.c_str(), &st) == 0 && st.st_ino == target.st_ino &&
          st.st_dev == target.st_dev) {
        pids.push_back(static_cast<pid_t>(std::stol(name)));
      }
    }
    return pids;
  };
  for (int sig : {SIGTERM, SIGKILL}) {
    auto pids = members();
    if (pids.empty()) return;
    for (pid_t pid : pids) {
      int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
      if (pidfd < 0) continue;
      ::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0);
      ::close(pidfd);
    }
    for (int i = 0; i < 100 && !members().empty(); ++i) {
      for (pid_t pid : pids) ::waitpid(pid, nullptr, WNOHANG);  // our own children
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
}

std::string link_name(const LinkConfig& link) {
  return link.a.ns + ":" + link.a.device + "-" + link.b.ns + ":" + link.b.device;
}

std::string owner_of(const TopologyTag& tag) {
  return tag.empty() ? "it was made outside any topology"
                     : "it belongs to topology '" + tag.name + "'";
}

class Converger {
 public:
  Converger(NamespaceManager& manager, const Topology& topology, const TopologyOptions& options)
      : m_(manager),
        t_(topology),
        o_(options),
        state_(options.log_dir.empty() ? manager.options().run_dir : options.log_dir,
               topology.name) {}

  Result<TopologyReport> up() {
    // What an interrupted invocation (a killed `up`) left is rolled back first, so `up` after a
    // crash completes the topology instead of tripping over half-made namespaces.
    if (!o_.dry_run) collect_garbage();
    NETCELL_TRY(survey());
    // Decide, refusing conflicts before anything changes.
    std::set<std::string> replace_nets, create_nets, replace_ns, create_ns, stale_ns, stale_nets;
    for (const auto& net : t_.networks) {
      auto it = networks_.find(net.config.name);
      if (it == networks_.end()) {
        create_nets.insert(net.config.name);
        continue;
      }
      if (it->second.topology.name != t_.name) {
        return fail(ErrorCode::kConflict, "network '" + net.config.name + "' already exists and " +
                                              owner_of(it->second.topology));
      }
      if (it->second.topology.digest != net.config.topology.digest) {
        replace_nets.insert(net.config.name);
        for (const auto& [name, info] : spaces_) {
          if (info.network == net.config.name && info.topology.name != t_.name) {
            return fail(ErrorCode::kConflict, "network '" + net.config.name +
                                                  "' changed, but namespace '" + name +
                                                  "' outside this topology uses it");
          }
        }
      }
    }
    for (const auto& ns : t_.namespaces) {
      auto it = spaces_.find(ns.config.name);
      if (it == spaces_.end()) {
        create_ns.insert(ns.config.name);
      } else if (it->second.topology.name != t_.name) {
        return fail(ErrorCode::kConflict, "namespace '" + ns.config.name + "' already exists and " +
                                              owner_of(it->second.topology));
      } else if (it->second.topology.digest != ns.config.topology.digest ||
                 replace_nets.count(ns.config.network) != 0) {
        replace_ns.insert(ns.config.name);
      }
    }
    for (const auto& [name, info] : spaces_) {
      if (info.topology.name == t_.name && !declared_ns(name)) stale_ns.insert(name);
    }
    for (const auto& [name, info] : networks_) {
      if (info.topology.name == t_.name && !declared_net(name)) stale_nets.insert(name);
    }
    auto commands = state_.load();
    if (!commands) return fail(commands.error());

    progress_total_ = stale_ns.size() + 2 * replace_ns.size() + create_ns.size();
    // 1. Take away what is replaced or no longer declared.
    for (const auto& name : stale_ns) {
      NETCELL_TRY(step("remove", "namespace", name, "no longer in the file", [&]() -> Result<void> {
        stop_commands(*commands, name);
        return m_.destroy(name);
      }));
    }
    for (const auto& name : replace_ns) {
      NETCELL_TRY(
          step("replace", "namespace", name, "its declaration changed", [&]() -> Result<void> {
            stop_commands(*commands, name);
            return m_.destroy(name);
          }));
      create_ns.insert(name);
    }
    for (const auto& name : stale_nets) {
      NETCELL_TRY(step("remove", "network", name, "no longer in the file",
                       [&]() -> Result<void> { return m_.remove_network(name); }));
    }
    for (const auto& name : replace_nets) {
      NETCELL_TRY(step("replace", "network", name, "its declaration changed",
                       [&]() -> Result<void> { return m_.remove_network(name); }));
      create_nets.insert(name);
    }
    // 2. Networks, then namespaces, in file order.
    for (const auto& net : t_.networks) {
      const std::string& name = net.config.name;
      if (create_nets.count(name) == 0) {
        keep("network", name);
        continue;
      }
      auto made =
          step("create", "network", name, net.config.subnet.to_string(),
               [&]() -> Result<void> { return m_.create_network(net.config).map([](auto&&) {}); });
      if (!made) return rollback(made.error());
      if (!o_.dry_run) created_nets_.push_back(name);
    }
    for (const auto& ns : t_.namespaces) {
      const std::string& name = ns.config.name;
      if (create_ns.count(name) == 0) {
        keep("namespace", name);
        continue;
      }
      auto made = step("create", "namespace", name, std::string(to_string(ns.config.mode)),
                       [&]() -> Result<void> { return m_.create(ns.config).map([](auto&&) {}); });
      if (!made) return rollback(made.error());
      if (!o_.dry_run) created_ns_.push_back(name);
    }
    // 3. Links and extras: idempotent, applied every time (a link already there is kept).
    for (const auto& link : t_.links) {
      if (o_.dry_run) {
        bool fresh = create_ns.count(link.a.ns) || create_ns.count(link.b.ns);
        report_.steps.push_back({fresh ? "create" : "ensure", "link", link_name(link), ""});
        continue;
      }
      auto made = m_.connect(link);
      if (!made) return rollback(std::move(made).error().with_context("link " + link_name(link)));
      report_.steps.push_back({*made ? "create" : "keep", "link", link_name(link), ""});
      if (*made) ++report_.changed;
      fault_point("up: link");
    }
    for (const auto& ns : t_.namespaces) {
      const auto& x = ns.extras;
      if (x.sysctls.empty() && x.addresses.empty() && x.routes.empty()) continue;
      std::string detail = std::to_string(x.sysctls.size()) + " sysctls, " +
                           std::to_string(x.addresses.size()) + " addresses, " +
                           std::to_string(x.routes.size()) + " routes";
      if (o_.dry_run) {
        report_.steps.push_back({"ensure", "extras", ns.config.name, detail});
        continue;
      }
      auto done = m_.configure(ns.config.name, x);
      if (!done) return rollback(std::move(done).error().with_context(ns.config.name));
      report_.steps.push_back({"ensure", "extras", ns.config.name, detail});
      fault_point("up: extras");
    }
    // 4. Commands that are not running (as started for this declaration of the namespace).
    std::vector<CommandEntry> kept;
    for (const auto& e : *commands) {
      if (running(e)) kept.push_back(e);
    }
    for (const auto& ns : t_.namespaces) {
      for (std::size_t i = 0; i < ns.commands.size(); ++i) {
        std::string object = ns.config.name + "#" + std::to_string(i);
        auto alive = std::find_if(kept.begin(), kept.end(), [&](const CommandEntry& e) {
          return e.ns == ns.config.name && e.index == i && e.digest == ns.config.topology.digest;
        });
        if (alive != kept.end()) {
          report_.steps.push_back({"keep", "command", object, "pid " + std::to_string(alive->pid)});
          continue;
        }
        if (o_.dry_run) {
          report_.steps.push_back({"start", "command", object, join(ns.commands[i].argv)});
          continue;
        }
        auto started = start(ns, i);
        if (!started) {
          (void)state_.save(kept);
          return rollback(std::move(started).error().with_context("command " + object));
        }
        kept.push_back(*started);
        NETCELL_TRY(state_.save(kept));
        fault_point("up: command started");
        report_.steps.push_back(
            {"start", "command", object, "pid " + std::to_string(started->pid)});
        ++report_.changed;
      }
    }
    if (!o_.dry_run) {
      if (kept.empty()) {
        state_.remove();
      } else {
        NETCELL_TRY(state_.save(kept));
      }
    }
    return report_;
  }

  Result<TopologyReport> down() {
    // Interrupted creates (a killed `up`) are rolled back first, so what is left is whole.
    if (!o_.dry_run) collect_garbage();
    NETCELL_TRY(survey());
    auto commands = state_.load();
    if (!commands) return fail(commands.error());
    for (const auto& e : *commands) {
      std::string object = e.ns + "#" + std::to_string(e.index);
      if (!running(e)) continue;
      if (!o_.dry_run) stop(e);
      report_.steps.push_back({"stop", "command", object, "pid " + std::to_string(e.pid)});
      ++report_.changed;
    }
    int failures = 0;
    std::optional<Error> first;
    auto note = [&](Result<void> r) {
      if (!r) {
        ++failures;
        if (!first) first = r.error();
      }
    };
    // Declared namespaces in reverse order, then tagged ones the file no longer names.
    std::vector<std::string> order;
    for (auto it = t_.namespaces.rbegin(); it != t_.namespaces.rend(); ++it) {
      order.push_back(it->config.name);
    }
    for (const auto& [name, info] : spaces_) {
      if (info.topology.name == t_.name && !declared_ns(name)) order.push_back(name);
    }
    progress_total_ = static_cast<std::size_t>(
        std::count_if(order.begin(), order.end(), [&](const std::string& name) {
          auto it = spaces_.find(name);
          return it != spaces_.end() && it->second.topology.name == t_.name;
        }));
    for (const auto& name : order) {
      auto it = spaces_.find(name);
      if (it == spaces_.end()) continue;
      if (it->second.topology.name != t_.name) {
        report_.steps.push_back({"skip", "namespace", name, owner_of(it->second.topology)});
        continue;
      }
      note(step("remove", "namespace", name, "", [&] {
        stop_processes_in(it->second.netns_path);
        return m_.destroy(name);
      }));
    }
    std::vector<std::string> nets;
    for (auto it = t_.networks.rbegin(); it != t_.networks.rend(); ++it) {
      nets.push_back(it->config.name);
    }
    for (const auto& [name, info] : networks_) {
      if (info.topology.name == t_.name && !declared_net(name)) nets.push_back(name);
    }
    for (const auto& name : nets) {
      auto it = networks_.find(name);
      if (it == networks_.end()) continue;
      if (it->second.topology.name != t_.name) {
        report_.steps.push_back({"skip", "network", name, owner_of(it->second.topology)});
        continue;
      }
      note(step("remove", "network", name, "", [&] { return m_.remove_network(name); }));
    }
    if (failures > 0) {
      return fail(
          first->code(),
          first->message() +
              (failures > 1 ? " (and " + std::to_string(failures - 1) + " more failures)" : ""));
    }
    if (!o_.dry_run) state_.remove();
    return report_;
  }

 private:
  Result<void> survey() {
    for (auto& info : m_.list()) spaces_[info.name] = std::move(info);
    for (auto& info : m_.list_networks()) networks_[info.name] = std::move(info);
    return ok();
  }

  void collect_garbage() {
    auto gc = m_.gc();
    for (const auto& name : gc.removed) {
      report_.steps.push_back({"remove", "namespace", name, "left by an interrupted run (gc)"});
      ++report_.changed;
    }
  }

  bool declared_ns(const std::string& name) const {
    return std::any_of(t_.namespaces.begin(), t_.namespaces.end(),
                       [&](const auto& n) { return n.config.name == name; });
  }
  bool declared_net(const std::string& name) const {
    return std::any_of(t_.networks.begin(), t_.networks.end(),
                       [&](const auto& n) { return n.config.name == name; });
  }

  template <typename Fn>
  Result<void> step(const char* action, const char* kind, const std::string& object,
                    std::string detail, Fn&& fn) {
    if (!o_.dry_run) {
      if (o_.progress && std::string_view(kind) == "namespace") {
        o_.progress({action, object, ++progress_done_, progress_total_});
      }
      Result<void> r = fn();
      if (!r)
        return fail(
            std::move(r).error().with_context(std::string(action) + " " + kind + " " + object));
      ++report_.changed;
    }
    report_.steps.push_back({action, kind, object, std::move(detail)});
    return ok();
  }

  void keep(const char* kind, const std::string& object) {
    report_.steps.push_back({"keep", kind, object, "unchanged"});
  }

  static std::string join(const std::vector<std::string>& argv) {
    std::string out;
    for (const auto& a : argv) out += (out.empty() ? "" : " ") + a;
    return out;
  }

  void stop_commands(std::vector<CommandEntry>& entries, const std::string& ns) {
    if (auto it = spaces_.find(ns); it != spaces_.end()) stop_processes_in(it->second.netns_path);
    for (auto it = entries.begin(); it != entries.end();) {
      if (it->ns == ns) {
        stop(*it);
        it = entries.erase(it);
      } else {
        ++it;
      }
    }
    (void)state_.save(entries);
  }

  Result<CommandEntry> start(const TopologyNamespace& ns, std::size_t index) {
    auto log = state_.log_path(ns.config.name, index);
    if (!log) return fail(log.error());
    SpawnOptions options;
    options.detach = true;
    options.output_path = *log;
    auto child = m_.spawn(ns.config.name, ns.commands[index].argv, options);
    if (!child) return fail(child.error());
    CommandEntry e;
    e.ns = ns.config.name;
    e.index = index;
    e.digest = ns.config.topology.digest;
    auto start_time = process_start_time(child->pid());
    e.start_time = start_time.value_or(0);
    e.pid = child->release();
    return e;
  }

  // Removes what this call created (namespaces, then networks), newest first, and returns `why`.
  Result<TopologyReport> rollback(const Error& why) {
    for (auto it = created_ns_.rbegin(); it != created_ns_.rend(); ++it) (void)m_.destroy(*it);
    for (auto it = created_nets_.rbegin(); it != created_nets_.rend(); ++it) {
      (void)m_.remove_network(*it);
    }
    std::size_t undone = created_ns_.size() + created_nets_.size();
    if (undone == 0) return fail(why);
    return fail(Error(why.code(), why.message() + " (removed the " + std::to_string(undone) +
                                      " objects this run had created)"));
  }

  NamespaceManager& m_;
  const Topology& t_;
  const TopologyOptions& o_;
  TopologyState state_;
  TopologyReport report_;
  std::map<std::string, NamespaceInfo> spaces_;
  std::map<std::string, NetworkInfo> networks_;
  std::vector<std::string> created_ns_;
  std::vector<std::string> created_nets_;
  std::size_t progress_done_ = 0, progress_total_ = 0;
};

}  // namespace

Result<TopologyReport> topology_up(NamespaceManager& manager, const Topology& topology,
                                   const TopologyOptions& options) {
  return Converger(manager, topology, options).up();
}

Result<TopologyReport> topology_down(NamespaceManager& manager, const Topology& topology,
                                     const TopologyOptions& options) {
  return Converger(manager, topology, options).down();
}

}  // namespace netcell
