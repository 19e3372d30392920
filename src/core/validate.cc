#include "core/validate.h"

#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <tuple>

#include "core/unique_fd.h"

namespace netcell {
namespace {

Result<void> validate_interface(const InterfaceConfig& iface) {
  NETCELL_TRY(validate_interface_name(iface.name));
  if (iface.mtu != 0 && (iface.mtu < 68 || iface.mtu > 65535)) {
    return fail(ErrorCode::kInvalidArgument,
                "invalid MTU " + std::to_string(iface.mtu) + " (expected 68..65535)");
  }
  int max = iface.ip.is_v4() ? 32 : 128;
  if (iface.prefix_len < 1 || iface.prefix_len > max) {
    return fail(ErrorCode::kInvalidArgument, "invalid prefix length " +
                                                 std::to_string(iface.prefix_len) +
                                                 " (expected 1.." + std::to_string(max) + ")");
  }
  if (!iface.mac.empty()) {
    auto mac = parse_mac(iface.mac);
    if (!mac) return fail(mac.error());
    if (((*mac)[0] & 1) != 0 || *mac == std::array<std::uint8_t, 6>{}) {
      return fail(ErrorCode::kInvalidArgument,
                  "MAC address " + iface.mac + " is not a unicast address of an interface");
    }
  }
  if (iface.ip6 && iface.ip6->address.is_v4()) {
    return fail(ErrorCode::kInvalidArgument,
                "the IPv6 address " + iface.ip6->to_string() + " is an IPv4 one");
  }
  if (iface.gateway && iface.gateway->family() != iface.ip.family()) {
    return fail(ErrorCode::kInvalidArgument, "gateway " + iface.gateway->to_string() +
                                                 " is not of the address family of " +
                                                 iface.ip.to_string());
  }
  return ok();
}

Result<void> validate_forwards(const std::vector<PortForward>& forwards) {
  std::set<std::tuple<std::uint16_t, Protocol, std::string>> seen;
  for (const auto& f : forwards) {
    if (f.host_port == 0 || f.container_port == 0) {
      return fail(ErrorCode::kInvalidArgument, "port 0 in '" + f.to_string() + "'");
    }
    auto key = std::tuple(f.host_port, f.protocol, f.host_ip ? f.host_ip->to_string() : "");
    if (!seen.insert(key).second) {
      return fail(ErrorCode::kInvalidArgument, "host port published twice: " + f.to_string());
    }
  }
  return ok();
}

// A process whose network namespace is to be adopted. Every refusal is invalid input: the caller
// named a process that cannot serve (whether its namespace is the caller's own or already managed
// is checked later, against the backend).
Result<void> validate_adoption(pid_t pid, IsolationMode mode) {
  const std::string what = "cannot adopt the network namespace of process " + std::to_string(pid);
  if (pid <= 0) {
    return fail(ErrorCode::kInvalidArgument,
                "invalid pid " + std::to_string(pid) + " to adopt (expected a positive number)");
  }
  if (mode == IsolationMode::kShared) {
    return fail(ErrorCode::kInvalidArgument,
                what + ": shared mode is the host's own network, not a namespace of its own");
  }
  if (::kill(pid, 0) != 0 && errno == ESRCH) {
    return fail(ErrorCode::kInvalidArgument, what + ": no such process");
  }
  return ok();
}

// A namespace to adopt by path: an absolute path to something that exists; whether it is a
// network namespace is the backend's to check.
Result<void> validate_adoption_path(const NamespaceConfig& config) {
  const std::string& path = config.adopt_netns_path;
  const std::string what = "cannot adopt the network namespace at '" + path + "'";
  if (config.adopt_netns_of) {
    return fail(ErrorCode::kInvalidArgument,
                what + ": a namespace is adopted from a process or from a path, not both");
  }
  if (path.front() != '/' || path.find('\0') != std::string::npos) {
    return fail(ErrorCode::kInvalidArgument, what + ": not an absolute path");
  }
  if (config.mode == IsolationMode::kShared) {
    return fail(ErrorCode::kInvalidArgument,
                what + ": shared mode is the host's own network, not a namespace of its own");
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return fail(errno == ENOENT ? ErrorCode::kNotFound : ErrorCode::kInvalidArgument,
                what + ": " + std::strerror(errno));
  }
  return ok();
}

}  // namespace

std::optional<std::uint64_t> process_start_time(pid_t pid) {
  if (pid <= 0) return std::nullopt;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return std::nullopt;
  // The command name (field 2) may contain spaces and ')': parse after the last ')'.
  auto close = line.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream fields(line.substr(close + 2));
  std::string field;
  // Field 3 is the first after the name; the start time is field 22.
  for (int i = 3; i <= 22; ++i) {
    if (!(fields >> field)) return std::nullopt;
  }
  try {
    return std::stoull(field);
  } catch (...) {
    return std::nullopt;
  }
}

bool process_running(pid_t pid, std::uint64_t start_time) {
  auto start = process_start_time(pid);
  if (!start || *start != start_time) return false;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return false;
  auto close = line.rfind(')');
  return close == std::string::npos || close + 2 >= line.size() ||
         (line[close + 2] != 'Z' && line[close + 2] != 'X');
}

void end_process(pid_t pid, std::uint64_t start_time, int grace_ms) {
  if (!process_running(pid, start_time)) return;
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd || !process_running(pid, start_time)) return;  // the pidfd holds that same process
  ::syscall(SYS_pidfd_send_signal, pidfd.get(), SIGTERM, nullptr, 0);
  pollfd p{pidfd.get(), POLLIN, 0};
  if (::poll(&p, 1, grace_ms) == 0) {
    ::syscall(SYS_pidfd_send_signal, pidfd.get(), SIGKILL, nullptr, 0);
    ::poll(&p, 1, grace_ms);
  }
}

Result<bool> fork_detached() {
  pid_t child = ::fork();
  if (child < 0) return fail_errno("fork", errno);
  if (child == 0) {
    ::setsid();
    if (::fork() != 0) ::_exit(0);
    return true;
  }
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  return false;
}

Result<void> validate_pid(pid_t pid) {
  if (pid <= 0) {
    return fail(ErrorCode::kInvalidArgument,
                "invalid pid " + std::to_string(pid) + " (expected a positive number)");
  }
  if (::kill(pid, 0) != 0 && errno == ESRCH) {
    return fail(ErrorCode::kNotFound, "process " + std::to_string(pid) + " does not exist");
  }
  return ok();
}

Result<void> validate_egress(IsolationMode mode, const std::optional<EgressPolicy>& policy) {
  if (!policy) return ok();
  if (mode == IsolationMode::kFull) {
    return fail(ErrorCode::kInvalidArgument,
                "full mode reaches nothing, so it needs no egress policy");
  }
  if (mode == IsolationMode::kShared) {
    return fail(ErrorCode::kInvalidArgument,
                "shared mode is the host's own network, which netcell does not filter");
  }
  return policy->validate();
}

Result<NamespaceId> validate_config(const NamespaceConfig& config) {
  if (config.pid < 0) {
    return fail(ErrorCode::kInvalidArgument, "invalid owner pid " + std::to_string(config.pid) +
                                                 " (expected a positive number)");
  }
  if (config.pid > 0) NETCELL_TRY(validate_pid(config.pid));
  std::string name = config.name;
  if (name.empty()) {
    if (config.pid == 0) {
      return fail(ErrorCode::kInvalidArgument, "a namespace needs a name or an owner pid");
    }
    name = "pid-" + std::to_string(config.pid);
  }
  auto id = NamespaceId::parse(name);
  if (!id) return fail(id.error());
  if (!config.topology.empty()) {
    if (auto topology = NamespaceId::parse(config.topology.name); !topology) {
      return fail(ErrorCode::kInvalidArgument,
                  "invalid topology name: " + topology.error().message());
    }
  }

  if (config.adopt_netns_of) NETCELL_TRY(validate_adoption(*config.adopt_netns_of, config.mode));
  if (!config.adopt_netns_path.empty()) NETCELL_TRY(validate_adoption_path(config));

  bool networked = config.mode == IsolationMode::kPrivate || config.mode == IsolationMode::kBridged;
  if (config.interface) NETCELL_TRY(validate_interface(*config.interface));
  NETCELL_TRY(validate_forwards(config.port_forwards));
  for (const auto& [direction, bps] : {std::pair{"egress", config.rate.egress_bps},
                                       std::pair{"ingress", config.rate.ingress_bps}}) {
    if (!bps) continue;
    if (auto valid = validate_rate(*bps); !valid) {
      return fail(std::move(valid).error().with_context(std::string(direction) + " rate"));
    }
  }
  if (!networked) {
    std::string mode(to_string(config.mode));
    if (config.interface) {
      return fail(ErrorCode::kInvalidArgument, mode + " mode takes no interface or address");
    }
    if (!config.port_forwards.empty()) {
      return fail(ErrorCode::kInvalidArgument,
                  mode + " mode cannot publish ports (use private or bridged)");
    }
    if (!config.dns.empty()) {
      return fail(ErrorCode::kInvalidArgument, mode + " mode takes no DNS servers");
    }
    if (!config.network.empty()) {
      return fail(ErrorCode::kInvalidArgument, mode + " mode takes no network (use bridged)");
    }
    if (!config.rate.empty()) {
      return fail(ErrorCode::kInvalidArgument,
                  mode + " mode has no link to rate-limit (use private or bridged)");
    }
  }
  NETCELL_TRY(validate_egress(config.mode, config.egress));
  if (config.mode == IsolationMode::kBridged) {
    if (config.network.empty()) {
      return fail(ErrorCode::kInvalidArgument, "bridged mode needs a network name");
    }
    auto net = NamespaceId::parse(config.network);
    if (!net)
      return fail(ErrorCode::kInvalidArgument, "invalid network name '" + config.network + "'");
  }
  return *id;
}

}  // namespace netcell
