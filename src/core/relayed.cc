#include "core/relayed.h"

#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/files.h"
#include "core/unique_fd.h"

namespace netcell {

std::vector<LoopbackRoute> loopback_routes(const NamespaceInfo& info) {
  std::vector<LoopbackRoute> out;
  if (info.mode != IsolationMode::kPrivate && info.mode != IsolationMode::kBridged) return out;
  auto v6 = ipv6_address(info);
  if (!v6) return out;
  for (const auto& f : info.port_forwards) {
    if (f.covers_ipv6_loopback()) {
      out.push_back({f.protocol, f.host_port, v6->address, f.container_port});
    }
  }
  return out;
}

std::string relay_answer_path(const std::string& run_dir, const std::string& name) {
  return run_dir + "/relayed/" + name + ".answer";
}

std::string to_string(const LoopbackRoute& route) {
  return "[::1]:" + std::to_string(route.host_port) + "/" + std::string(to_string(route.protocol));
}

const char* to_string(RelayState::Kind kind) {
  switch (kind) {
    case RelayState::Kind::kPending: return "pending";
    case RelayState::Kind::kListening: return "listening";
    case RelayState::Kind::kFailed: return "failed";
  }
  return "pending";
}

RelayState relay_state_of_answer(const std::string& answer) {
  std::string line = answer.substr(0, answer.find('\n'));
  RelayState state;
  if (line == "ok") {
    state.kind = RelayState::Kind::kListening;
  } else if (line.rfind("error: ", 0) == 0) {
    state.kind = RelayState::Kind::kFailed;
    state.error = line.substr(7);
  }
  return state;
}

namespace relayed {
namespace {

constexpr char kMark[] = ".mark";

std::string directory(const std::string& run_dir) {
  return run_dir + "/relayed";
}
std::string mark_path(const std::string& run_dir, const std::string& name) {
  return directory(run_dir) + "/" + name + kMark;
}

// Names of marks in the directory, at most `limit`.
std::vector<std::string> marks(const std::string& run_dir, std::size_t limit) {
  std::vector<std::string> out;
  DIR* d = ::opendir(directory(run_dir).c_str());
  if (d == nullptr) return out;
  while (out.size() < limit) {
    dirent* e = ::readdir(d);
    if (e == nullptr) break;
    std::string file = e->d_name;
    if (file.size() > sizeof kMark - 1 && file.ends_with(kMark)) {
      out.push_back(file.substr(0, file.size() - (sizeof kMark - 1)));
    }
  }
  ::closedir(d);
  return out;
}

}  // namespace

Result<void> mark(const std::string& run_dir, const std::string& name) {
  NETCELL_TRY(mkdir_if_missing(directory(run_dir)));
  const std::string answer = relay_answer_path(run_dir, name);
  if (::unlink(answer.c_str()) != 0 && errno != ENOENT)
    return fail_errno("unlink " + answer, errno);
  return write_atomically(mark_path(run_dir, name), name + "\n");
}

void unmark(const std::string& run_dir, const std::string& name) {
  ::unlink(mark_path(run_dir, name).c_str());
  ::unlink(relay_answer_path(run_dir, name).c_str());
  ::rmdir(directory(run_dir).c_str());  // fails harmlessly while other namespaces are marked
}

std::vector<std::string> listed(const std::string& run_dir) {
  return marks(run_dir, static_cast<std::size_t>(-1));
}

bool any_listed(const std::string& run_dir) {
  return !marks(run_dir, 1).empty();
}

Result<void> probe(const std::vector<LoopbackRoute>& routes) {
  for (const auto& r : routes) {
    const bool tcp = r.protocol == Protocol::kTcp;
    UniqueFd fd(::socket(AF_INET6, (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0));
    if (!fd) return fail_errno("socket", errno);
    int one = 1;
    ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    // The relay sets SO_REUSEADDR on TCP listeners; so does the probe, or a listener of the
    // relay's own (a namespace's earlier publish) would not count, and TIME_WAIT would.
    if (tcp) ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in6 sa{};
    sa.sin6_family = AF_INET6;
    sa.sin6_addr = in6addr_loopback;
    sa.sin6_port = htons(r.host_port);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
      const int err = errno;
      return fail(err == EADDRINUSE ? ErrorCode::kConflict : ErrorCode::kSystem,
                  "cannot publish on [::1]:" + std::to_string(r.host_port) + "/" +
                      std::string(to_string(r.protocol)) + ": " + std::strerror(err) +
                      (err == EADDRINUSE ? " (another program on this host uses it)" : ""));
    }
    // A TCP bind without listen() conflicts with no listener, so the probe's is checked by
    // listening too; closing it at once leaves no connection behind.
    if (tcp && ::listen(fd.get(), 1) != 0) {
      const int err = errno;
      return fail(err == EADDRINUSE ? ErrorCode::kConflict : ErrorCode::kSystem,
                  "cannot publish on [::1]:" + std::to_string(r.host_port) +
                      "/tcp: " + std::strerror(err) + " (another program on this host uses it)");
    }
  }
  return ok();
}

}  // namespace relayed
}  // namespace netcell
