#include "sim/sim_backend.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "core/unique_fd.h"

namespace netcell {
namespace {

class SimulationBackend final : public Backend {
 public:
  BackendKind kind() const override { return BackendKind::kSimulation; }
  bool enforces_isolation() const override { return false; }

  Result<NamespaceInfo> plan(const NamespaceInfo& info) override { return info; }

  Result<NamespaceInfo> create(const NamespaceInfo& info, const NetworkInfo*) override {
    // Adopting only records which process's namespace it would be; the process must exist.
    if (info.adopted_from_pid > 0 && ::kill(info.adopted_from_pid, 0) != 0 && errno == ESRCH) {
      return fail(ErrorCode::kInvalidArgument, "cannot adopt the network namespace of process " +
                                                   std::to_string(info.adopted_from_pid) +
                                                   ": no such process");
    }
    NamespaceInfo out = info;
    out.netns_path.clear();
    // The model of a new netns: lo, as the kernel makes it and netcell brings it up, then the
    // interface the manager planned for a networked mode.
    if (info.mode != IsolationMode::kShared) {
      out.interfaces.insert(
          out.interfaces.begin(),
          InterfaceInfo{"lo", {IpPrefix{IpAddress::v4(0x7f000001), 8}}, 65536, ""});
    }
    return out;
  }

  Result<void> create_network(const NetworkInfo&) override { return ok(); }
  Result<void> destroy_network(const NetworkInfo&) override { return ok(); }
  Result<void> release_shared_state() override { return ok(); }
  // The model has no host routes of its own.
  Result<std::vector<IpPrefix>> host_routes() override { return std::vector<IpPrefix>{}; }
  Result<bool> host_link_exists(const std::string&) override { return false; }
  Result<void> change_egress(const NamespaceInfo&, const std::optional<EgressPolicy>&) override {
    return ok();
  }
  // The simulation enforces nothing, so it learns nothing either: the resolver runs only for
  // namespaces whose isolation the kernel enforces.
  Result<void> change_learned(const NamespaceInfo&, const std::vector<LearnedDestination>&,
                              const std::vector<LearnedDestination>&) override {
    return ok();
  }
  Result<std::vector<PolicyCounter>> learned_counters(
      const NamespaceInfo&, const std::vector<LearnedDestination>& destinations) override {
    return std::vector<PolicyCounter>(destinations.size());
  }
  Result<void> set_resolver_port(std::optional<std::uint16_t>,
                                 std::optional<std::uint16_t>) override {
    return fail(ErrorCode::kUnsupported, "the simulation backend has no resolver");
  }
  Result<EgressCounters> egress_counters(const NamespaceInfo&) override {
    return fail(ErrorCode::kUnsupported, "the simulation backend counts no traffic");
  }

  Result<void> destroy(const NamespaceInfo&, const DestroyOptions&) override { return ok(); }
  bool alive(const NamespaceInfo&) override { return true; }
  // The model holds what its records say.
  Result<void> verify(const NamespaceInfo&) override { return ok(); }

  Result<NamespaceStats> stats(const NamespaceInfo& info) override {
    // No packets flow in a model: every counter is zero.
    NamespaceStats stats;
    stats.name = info.name;
    for (const auto& iface : info.interfaces) stats.interfaces.push_back({.name = iface.name});
    stats.total.name = "total";
    return stats;
  }

  Result<Child> spawn(const NamespaceInfo&, const std::vector<std::string>& argv,
                      const SpawnOptions& options) override {
    if (options.new_pid_namespace) {
      return fail(ErrorCode::kUnsupported, "the simulation backend cannot make PID namespaces");
    }
    return spawn_plain(argv, options);
  }

  // A model has no devices: links and extras are accepted as declared (info says enforced =
  // false), and nothing is created.
  Result<bool> connect(const NamespaceInfo&, const NamespaceInfo&, const LinkConfig&) override {
    return false;
  }
  Result<void> configure(const NamespaceInfo& info, const NamespaceExtras&) override {
    if (info.mode == IsolationMode::kShared) {
      return fail(ErrorCode::kInvalidArgument, "namespace '" + info.name +
                                                   "' shares the host's network; netcell does not "
                                                   "configure it");
    }
    return ok();
  }

  Result<std::uint64_t> netns_of_pid(pid_t) override {
    return fail(ErrorCode::kUnsupported, "the simulation backend has no network namespaces");
  }
  Result<std::uint64_t> netns_of(const NamespaceInfo&) override {
    return fail(ErrorCode::kUnsupported, "the simulation backend has no network namespaces");
  }

 private:
  // fork + exec in the caller's own network; exec errors come back over a close-on-exec pipe.
  static Result<Child> spawn_plain(const std::vector<std::string>& argv,
                                   const SpawnOptions& options) {
    if (argv.empty()) return fail(ErrorCode::kInvalidArgument, "no command to run");
    UniqueFd null_in, output;
    if (options.detach) {
      null_in.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
      if (!null_in) return fail_errno("open /dev/null", errno);
      if (!options.output_path.empty()) {
        output.reset(
            ::open(options.output_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640));
        if (!output) return fail_errno("open " + options.output_path, errno);
      }
    }
    std::vector<char*> cargv;
    for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
    cargv.push_back(nullptr);
    int pipefd[2];
    if (::pipe2(pipefd, O_CLOEXEC) != 0) return fail_errno("pipe", errno);
    UniqueFd rd(pipefd[0]), wr(pipefd[1]);
    pid_t pid = ::fork();
    if (pid < 0) return fail_errno("fork", errno);
    if (pid == 0) {
      // The CLI blocks the signals it forwards; the command starts with none blocked.
      sigset_t none;
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      if (options.detach) {
        ::setsid();
        ::dup2(null_in.get(), STDIN_FILENO);
        if (output) {
          ::dup2(output.get(), STDOUT_FILENO);
          ::dup2(output.get(), STDERR_FILENO);
        }
      }
      if (options.stdin_fd >= 0) ::dup2(options.stdin_fd, STDIN_FILENO);
      if (options.stdout_fd >= 0) ::dup2(options.stdout_fd, STDOUT_FILENO);
      if (options.stderr_fd >= 0) ::dup2(options.stderr_fd, STDERR_FILENO);
      ::execvp(cargv[0], cargv.data());
      int err = errno;
      (void)!::write(wr.get(), &err, sizeof err);
      ::_exit(127);
    }
    wr.reset();
    int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    Child child(pid, pidfd);
    int err = 0;
    ssize_t n = ::read(rd.get(), &err, sizeof err);
    if (n == static_cast<ssize_t>(sizeof err)) {
      (void)child.wait();
      return fail_errno("exec " + argv[0], err);
    }
    if (pidfd < 0) return fail_errno("pidfd_open", errno);
    return child;
  }
};

}  // namespace

std::unique_ptr<Backend> make_simulation_backend() {
  return std::make_unique<SimulationBackend>();
}

}  // namespace netcell
