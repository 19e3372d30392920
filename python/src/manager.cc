// NamespaceManager: the lifecycle, processes, policies, networks and topologies (manager.h).
#include <memory>

#include "binding.h"

namespace netcell::python {

namespace {

using Manager = NamespaceManager;
using ReleaseGil = py::call_guard<py::gil_scoped_release>;

std::unique_ptr<Manager> open_manager(const py::object& backend, std::optional<std::string> run_dir,
                                      std::optional<std::string> netns_dir,
                                      std::optional<std::string> etc_netns_dir,
                                      std::optional<std::string> private_subnet,
                                      bool allow_simulation,
                                      std::optional<std::string> service_path) {
  ManagerOptions options;
  options.backend = unwrap(parse_backend_choice(text_of(backend, "backend")));
  options.allow_simulation = allow_simulation;
  if (run_dir) options.run_dir = *run_dir;
  if (netns_dir) options.netns_dir = *netns_dir;
  if (etc_netns_dir) options.etc_netns_dir = *etc_netns_dir;
  if (private_subnet) options.private_subnet = *private_subnet;
  if (service_path) options.service_path = *service_path;
  py::gil_scoped_release release;
  return std::make_unique<Manager>(unwrap(Manager::create(options)));
}

constexpr const char* kOpenDoc =
    "Opens a manager (NamespaceManager(...) and NamespaceManager.open(...) are the same). "
    "backend: \"auto\" (Linux with CAP_NET_ADMIN, else an error unless allow_simulation), "
    "\"linux\" or \"simulation\". None keeps a default: run_dir /run/netcell "
    "(/run/netcell-sim for the simulation), netns_dir /run/netns, etc_netns_dir /etc/netns, "
    "private_subnet 10.209.0.0/16, service_path $NETCELL_SERVICE or the installed "
    "netcell-service (the resolver of namespaces with an egress policy).";

TopologyOptions topology_options(bool dry_run, std::optional<std::string> log_dir) {
  TopologyOptions options;
  options.dry_run = dry_run;
  if (log_dir) options.log_dir = *log_dir;
  return options;
}

// Opening a manager, and create, inspect, list, find and destroy namespaces.
void bind_lifecycle(py::class_<Manager>& cls) {
  cls.def(py::init(&open_manager), py::arg("backend") = "auto", py::arg("run_dir") = py::none(),
          py::arg("netns_dir") = py::none(), py::arg("etc_netns_dir") = py::none(),
          py::arg("private_subnet") = py::none(), py::arg("allow_simulation") = false,
          py::arg("service_path") = py::none(), kOpenDoc)
      .def_static("open", &open_manager, py::arg("backend") = "auto",
                  py::arg("run_dir") = py::none(), py::arg("netns_dir") = py::none(),
                  py::arg("etc_netns_dir") = py::none(), py::arg("private_subnet") = py::none(),
                  py::arg("allow_simulation") = false, py::arg("service_path") = py::none(),
                  kOpenDoc)
      .def_property_readonly(
          "backend",
          [](const Manager& mgr) { return py_enum("Backend", to_string(mgr.backend())); },
          "Backend.LINUX or Backend.SIMULATION.")
      .def_property_readonly(
          "run_dir", [](const Manager& mgr) { return mgr.options().run_dir; },
          "The state directory as given (empty: the backend's default).")
      .def(
          "create",
          [](Manager& mgr, const NamespaceConfig& config) { return unwrap(mgr.create(config)); },
          py::arg("config"), ReleaseGil(),
          "Validates config, reserves its name and creates the namespace; on failure nothing is "
          "left behind.")
      .def("exists", &Manager::exists, py::arg("name"), ReleaseGil(),
           "Whether the namespace exists.")
      .def(
          "info", [](Manager& mgr, const std::string& name) { return unwrap(mgr.info(name)); },
          py::arg("name"), ReleaseGil(), "The namespace's NamespaceInfo; NotFoundError if none.")
      .def(
          "stats", [](Manager& mgr, const std::string& name) { return unwrap(mgr.stats(name)); },
          py::arg("name"), ReleaseGil(), "Its interfaces' counters, as the kernel has them.")
      .def("list", &Manager::list, ReleaseGil(), "Every namespace, sorted by name.")
      .def(
          "find_by_pid", [](Manager& mgr, pid_t pid) { return unwrap(mgr.find_by_pid(pid)); },
          py::arg("pid"), ReleaseGil(),
          "The namespace owned by pid, else the one whose network namespace pid lives in.")
      .def(
          "destroy",
          [](Manager& mgr, const std::string& name, bool kill_processes) {
            unwrap(mgr.destroy(name, DestroyOptions{.kill_processes = kill_processes}));
          },
          py::arg("name"), py::arg("kill_processes") = false, ReleaseGil(),
          "Removes the namespace and everything made for it; with kill_processes, every "
          "process inside is ended with SIGKILL first.");
}

// spawn: a process inside a namespace, a Child.
void bind_processes(py::class_<Manager>& cls) {
  cls.def(
      "spawn",
      [](Manager& mgr, const std::string& name, const std::vector<std::string>& argv,
         bool new_pid_namespace, bool init, bool detach, std::optional<std::string> output,
         const py::object& in, const py::object& out, const py::object& err) {
        SpawnOptions options;
        options.new_pid_namespace = new_pid_namespace;
        options.init = init;
        options.detach = detach;
        if (output) options.output_path = *output;
        options.stdin_fd = to_fd(in);
        options.stdout_fd = to_fd(out);
        options.stderr_fd = to_fd(err);
        if (init && !new_pid_namespace) {
          raise(Error(ErrorCode::kInvalidArgument, "init needs new_pid_namespace"));
        }
        if (output && !detach) {
          raise(Error(ErrorCode::kInvalidArgument, "output_path needs detach"));
        }
        auto child = std::make_unique<PyChild>();
        {
          py::gil_scoped_release release;
          child->child.emplace(unwrap(mgr.spawn(name, argv, options)));
        }
        child->pid = child->child->pid();
        return child;
      },
      py::arg("name"), py::arg("argv"), py::kw_only(), py::arg("new_pid_namespace") = false,
      py::arg("init") = false, py::arg("detach") = false, py::arg("output_path") = py::none(),
      py::arg("stdin") = py::none(), py::arg("stdout") = py::none(), py::arg("stderr") = py::none(),
      "Runs argv (a list; argv[0] is looked up in PATH) inside the namespace, as `netcell "
      "exec` does; returns a Child. new_pid_namespace: also a new PID namespace with a fresh "
      "/proc, the command its PID 1 (with init, netcell's init is PID 1 and the command PID "
      "2). detach: a session of its own and stdin from /dev/null; output_path (with detach): "
      "stdout and stderr appended there. stdin, stdout, stderr: a file descriptor or file "
      "(e.g. an os.pipe() end) the child gets as 0, 1, 2; None inherits this process's.");
}

// Egress policies of live namespaces, the host service, gc.
void bind_policies(py::class_<Manager>& cls) {
  cls.def(
         "set_egress",
         [](Manager& mgr, const std::string& name, const std::optional<EgressPolicy>& policy) {
           return unwrap(mgr.set_egress(name, policy));
         },
         py::arg("name"), py::arg("policy"), ReleaseGil(),
         "Replaces the namespace's egress policy (None: back to what its mode allows) in one "
         "kernel change; new connections follow it at once. Returns the NamespaceInfo.")
      .def(
          "egress_counters",
          [](Manager& mgr, const std::string& name) { return unwrap(mgr.egress_counters(name)); },
          py::arg("name"), ReleaseGil(),
          "What the kernel counted for the namespace's policy (NotFoundError without one).")
      .def(
          "learned",
          [](Manager& mgr, const std::string& name) { return unwrap(mgr.learned(name)); },
          py::arg("name"), ReleaseGil(),
          "The destinations the resolver let the namespace reach, not yet expired.")
      .def("service_status", &Manager::service_status, ReleaseGil(),
           "The host service: whether it runs, its pid and port.")
      .def("gc", &Manager::gc, ReleaseGil(),
           "Completes or rolls back interrupted operations and removes namespaces whose owner "
           "ended; a GcReport.");
}

// Bridged networks.
void bind_networks(py::class_<Manager>& cls) {
  cls.def(
         "create_network",
         [](Manager& mgr, const std::string& name, const py::object& subnet, bool nat,
            bool host_access, const py::object& subnet6) {
           NetworkConfig config;
           config.name = name;
           config.subnet = to_prefix(subnet);
           config.nat = nat;
           config.host_access = host_access;
           if (!subnet6.is_none()) config.subnet6 = to_prefix(subnet6);
           py::gil_scoped_release release;
           return unwrap(mgr.create_network(config));
         },
         py::arg("name"), py::arg("subnet"), py::arg("nat") = false, py::arg("host_access") = false,
         py::arg("subnet6") = py::none(),
         "A bridged network (subnet \"10.50.0.0/24\" or an ipaddress network) for "
         "NamespaceConfig.bridged; its NetworkInfo. subnet6 (\"fd00:50::/64\"): dual stack, each "
         "namespace also gets the IPv6 address at its IPv4 address's offset.")
      .def("list_networks", &Manager::list_networks, ReleaseGil(),
           "The private network and every bridged one.")
      .def(
          "remove_network",
          [](Manager& mgr, const std::string& name) { unwrap(mgr.remove_network(name)); },
          py::arg("name"), ReleaseGil(), "Refused (ConflictError) while a namespace uses it.");
}

// topology_up or topology_down as a method: (topology, *, dry_run, log_dir) -> TopologyReport.
using TopologyCall = Result<TopologyReport> (*)(NamespaceManager&, const Topology&,
                                                const TopologyOptions&);
void bind_topology_call(py::class_<Manager>& cls, const char* name, TopologyCall call,
                        const char* doc) {
  cls.def(
      name,
      [call](Manager& mgr, const Topology& topology, bool dry_run,
             std::optional<std::string> log_dir) {
        return unwrap(call(mgr, topology, topology_options(dry_run, log_dir)));
      },
      py::arg("topology"), py::kw_only(), py::arg("dry_run") = false,
      py::arg("log_dir") = py::none(), ReleaseGil(), doc);
}

// up and down of a Topology.
void bind_topologies(py::class_<Manager>& cls) {
  bind_topology_call(cls, "up", &topology_up,
                     "Converges the system to the topology (as `netcell up`): idempotent; when a "
                     "step fails everything this call created is removed again.");
  bind_topology_call(cls, "down", &topology_down,
                     "Stops the topology's commands and removes its namespaces and networks (only "
                     "objects it made).");
}

}  // namespace

void bind_manager(py::module_& m) {
  py::class_<Manager> cls(m, "NamespaceManager",
                          "Drives one backend over one state store. Thread-safe; every call "
                          "releases the GIL while it works.");
  bind_lifecycle(cls);
  bind_processes(cls);
  bind_policies(cls);
  bind_networks(cls);
  bind_topologies(cls);
}

}  // namespace netcell::python
