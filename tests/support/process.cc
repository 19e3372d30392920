#include "support/process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace netcell::testing {
namespace {

void drain(int fd, std::string& into) {
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) return;
    into.append(buf, static_cast<size_t>(n));
  }
}

}  // namespace

CommandResult run(const std::vector<std::string>& argv, int timeout_ms) {
  CommandResult result;
  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) return result;
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, 0);
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    ::execvp(cargv[0], cargv.data());
    ::_exit(127);
  }
  ::close(out[1]);
  ::close(err[1]);
  ::fcntl(out[0], F_SETFL, O_NONBLOCK);
  ::fcntl(err[0], F_SETFL, O_NONBLOCK);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  bool killed = false;
  int open_fds = 2;
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  while (open_fds > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) {
      if (!killed) ::kill(pid, SIGKILL);
      killed = true;
      break;
    }
    if (::poll(fds, 2, static_cast<int>(left)) < 0) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd >= 0 && (fds[i].revents & (POLLIN | POLLHUP | POLLERR))) {
        std::string& into = i == 0 ? result.out : result.err;
        char buf[4096];
        ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
        if (n > 0) {
          into.append(buf, static_cast<size_t>(n));
        } else if (n == 0) {
          fds[i].fd = -1;
          --open_fds;
        }
      }
    }
  }
  drain(out[0], result.out);
  drain(err[0], result.err);
  ::close(out[0]);
  ::close(err[0]);
  int status = 0;
  if (!killed) {
    // Output closed; the process may still run briefly (or forever if it closed its stdio).
    for (int i = 0; i < timeout_ms / 10 + 1; ++i) {
      pid_t r = ::waitpid(pid, &status, WNOHANG);
      if (r == pid) break;
      if (std::chrono::steady_clock::now() > deadline) {
        ::kill(pid, SIGKILL);
        killed = true;
        break;
      }
      ::usleep(10000);
    }
  }
  if (killed) ::waitpid(pid, &status, 0);
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.exit_code = 128 + WTERMSIG(status);
  return result;
}

CommandResult sh(const std::string& script, int timeout_ms) {
  return run({"sh", "-c", script}, timeout_ms);
}

CommandResult cli(std::vector<std::string> args, int timeout_ms) {
  args.insert(args.begin(), NETCELL_CLI_PATH);
  return run(args, timeout_ms);
}

nlohmann::json ip_json(const std::vector<std::string>& args) {
  std::vector<std::string> argv{"ip", "-j"};
  argv.insert(argv.end(), args.begin(), args.end());
  CommandResult r = run(argv);
  if (r.exit_code != 0 || r.out.empty()) return nlohmann::json::array();
  return nlohmann::json::parse(r.out, nullptr, false);
}

std::map<std::string, std::string> probe6(const std::string& ns, const std::string& mode,
                                          const std::vector<std::string>& targets, int timeout_ms) {
  std::string cmd = "ip netns exec " + ns + " python3 " + NETCELL_TEST_SUPPORT_DIR + "/probe6.py " +
                    mode + " " + std::to_string(timeout_ms);
  for (const auto& t : targets) cmd += " '" + t + "'";
  auto r = sh(cmd, timeout_ms + 4000);
  std::map<std::string, std::string> out;
  std::istringstream lines(r.out);
  for (std::string t, state; lines >> t >> state;) out[t] = state;
  return out;
}

int elements_mentioning(const std::string& base, const std::string& needle,
                        const std::string& family) {
  auto j = nft_sets(base, family);
  if (j.is_discarded()) return -1;
  int n = 0;
  for (const auto& item : j["nftables"]) {
    if (!item.contains("set") || !item["set"].contains("elem")) continue;
    for (const auto& e : item["set"]["elem"]) n += e.dump().find(needle) != std::string::npos;
  }
  return n;
}

nlohmann::json nft_sets(const std::string& base, const std::string& family) {
  CommandResult r = run({"nft", "-j", "list", "table", family, "netcell"});
  auto table = nlohmann::json::parse(r.out, nullptr, false);
  if (r.exit_code != 0 || !table.is_object() || !table.contains("nftables")) {
    return nlohmann::json(nlohmann::json::value_t::discarded);
  }
  auto out = nlohmann::json::object();
  out["nftables"] = nlohmann::json::array();
  for (const auto& item : table["nftables"]) {
    const bool map = item.contains("map");
    if (!item.contains("set") && !map) continue;
    const auto& set = map ? item["map"] : item["set"];
    const std::string name = set.value("name", "");
    const bool shard = name.size() > base.size() + 1 && name.compare(0, base.size(), base) == 0 &&
                       name[base.size()] == '_' &&
                       name.find_first_not_of("0123456789", base.size() + 1) == std::string::npos;
    if (name != base && !shard) continue;
    auto copy = set;
    if (map && copy.contains("elem")) {
      // A map's element is [key, data]: the key (with its counter), its data under "data".
      auto elems = nlohmann::json::array();
      for (const auto& pair : copy["elem"]) {
        auto e = pair.at(0);
        if (!e.is_object()) e = nlohmann::json{{"val", e}};
        e["data"] = pair.at(1);
        elems.push_back(std::move(e));
      }
      copy["elem"] = std::move(elems);
    }
    out["nftables"].push_back(nlohmann::json{{"set", std::move(copy)}});
  }
  return out;
}

std::vector<std::string> link_names(const std::string& netns) {
  std::vector<std::string> args;
  if (!netns.empty()) args = {"-n", netns};
  args.push_back("link");
  std::vector<std::string> names;
  for (const auto& link : ip_json(args)) names.push_back(link.value("ifname", ""));
  return names;
}

std::map<std::string, std::string> probe(const std::string& where,
                                         const std::vector<std::string>& args) {
  std::vector<std::string> argv;
  if (where.rfind("pid:", 0) == 0) {
    argv = {"nsenter", "-t", where.substr(4), "-n"};
  } else if (!where.empty()) {
    argv = {"ip", "netns", "exec", where};
  }
  argv.push_back(NETCELL_ESCAPE_PROBE_PATH);
  argv.insert(argv.end(), args.begin(), args.end());
  std::map<std::string, std::string> out;
  std::istringstream lines(run(argv, 10000).out);
  for (std::string line; std::getline(lines, line);) {
    auto space = line.find(' ');
    if (space != std::string::npos) out[line.substr(0, space)] = line.substr(space + 1);
  }
  return out;
}

std::map<std::string, std::string> tcp_probe(const std::string& where,
                                             const std::vector<std::string>& targets,
                                             int timeout_ms) {
  std::vector<std::string> args{"tcp", std::to_string(timeout_ms)};
  args.insert(args.end(), targets.begin(), targets.end());
  return probe(where, args);
}

std::string namespace_address(const std::string& ns) {
  auto j = nlohmann::json::parse(cli({"info", ns, "--json"}).out, nullptr, false);
  if (!j.is_object() || !j.contains("interfaces")) return "";
  for (const auto& iface : j["interfaces"]) {
    if (iface.value("name", "") == "eth0" && !iface["addresses"].empty()) {
      std::string a = iface["addresses"][0];
      return a.substr(0, a.find('/'));
    }
  }
  return "";
}

bool in_world() {
  return std::getenv("NETCELL_TEST_WORLD") != nullptr;
}

std::string make_internet() {
  auto r =
      sh("ip netns add wan && ip link add wan0 type veth peer name eth0 netns wan && "
         "ip addr add 203.0.113.1/24 dev wan0 && ip link set wan0 up && "
         "ip -n wan addr add 203.0.113.2/24 dev eth0 && ip -n wan link set eth0 up && "
         "ip -n wan link set lo up && ip route add default via 203.0.113.2");
  return r.exit_code == 0 ? "" : "make_internet: " + r.err;
}

std::string wan_answers_for(const std::vector<std::string>& addresses) {
  std::string script = "true";
  for (const auto& a : addresses) script += " && ip -n wan addr add " + a + "/32 dev lo";
  auto r = sh(script);
  return r.exit_code == 0 ? "" : "wan_answers_for: " + r.err;
}

std::string make_internet6() {
  auto r =
      sh("ip addr add 2001:db8:1::1/64 dev wan0 nodad && "
         "ip -n wan addr add 2001:db8:1::2/64 dev eth0 nodad && "
         "ip -6 route add default via 2001:db8:1::2 && "
         // Both ends' link-local addresses past duplicate address detection (bounded, 5 s): until
         // then neighbour discovery on the link is not reliable.
         "for i in $(seq 50); do [ -z \"$(ip -6 addr show dev wan0 tentative)$(ip -n wan -6 addr "
         "show dev eth0 tentative)\" ] && break; sleep 0.1; done && "
         "ping -6 -c 1 -W 2 2001:db8:1::2 >/dev/null");
  return r.exit_code == 0 ? "" : "make_internet6: " + r.err;
}

RecordingServer::RecordingServer(const char* kind, const std::string& netns,
                                 const std::string& address, int port, const std::string& reply,
                                 Bind bind, Serve serve) {
  static int counter = 0;
  log_ = std::string("/run/") + kind + "-" + std::to_string(::getpid()) + "-" +
         std::to_string(++counter);
  int ready_pipe[2];
  if (::pipe2(ready_pipe, O_CLOEXEC) != 0) return;
  pid_ = ::fork();
  if (pid_ == 0) {
    ::close(ready_pipe[0]);
    ::alarm(120);
    if (!netns.empty()) {
      int fd = ::open(("/run/netns/" + netns).c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0 || ::setns(fd, CLONE_NEWNET) != 0) ::_exit(1);
    }
    int s = bind(address, port);
    if (s < 0) ::_exit(1);
    (void)!::write(ready_pipe[1], "r", 1);
    ::close(ready_pipe[1]);
    serve(s, reply, [this](const std::string& line) {
      int log = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
      (void)!::write(log, line.data(), line.size());
      ::close(log);
    });
    ::_exit(0);
  }
  ::close(ready_pipe[1]);
  pollfd p{ready_pipe[0], POLLIN, 0};
  char b = 0;
  ready_ = ::poll(&p, 1, 5000) == 1 && ::read(ready_pipe[0], &b, 1) == 1;
  ::close(ready_pipe[0]);
}

RecordingServer::~RecordingServer() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  ::unlink(log_.c_str());
}

std::vector<std::string> RecordingServer::lines() const {
  std::vector<std::string> out;
  std::ifstream in(log_);
  std::string line;
  while (std::getline(in, line)) out.push_back(line);
  return out;
}

namespace {

// A socket of `type` bound to `addr_text` (IPv4, or IPv6 when it has a ':') and `port`; -1 when
// the bind fails.
int bound_socket(int type, const std::string& addr_text, int port) {
  const bool v6 = addr_text.find(':') != std::string::npos;
  int s = ::socket(v6 ? AF_INET6 : AF_INET, type | SOCK_CLOEXEC, 0);
  int one = 1;
  if (type == SOCK_STREAM) ::setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_storage addr{};
  socklen_t len = 0;
  if (v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&addr);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(static_cast<std::uint16_t>(port));
    ::inet_pton(AF_INET6, addr_text.c_str(), &a->sin6_addr);
    len = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&addr);
    a->sin_family = AF_INET;
    a->sin_port = htons(static_cast<std::uint16_t>(port));
    ::inet_pton(AF_INET, addr_text.c_str(), &a->sin_addr);
    len = sizeof *a;
  }
  if (::bind(s, reinterpret_cast<sockaddr*>(&addr), len) != 0) {
    ::close(s);
    return -1;
  }
  return s;
}

// The address of a peer, as inet_ntop writes it.
std::string peer_text(const sockaddr_storage& peer) {
  char ip[INET6_ADDRSTRLEN] = {};
  if (peer.ss_family == AF_INET6) {
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&peer)->sin6_addr, ip, sizeof ip);
  } else {
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&peer)->sin_addr, ip, sizeof ip);
  }
  return ip;
}

}  // namespace

TcpResponder::TcpResponder(const std::string& netns, const std::string& address, int port,
                           std::string reply)
    : RecordingServer(
          "tcp-responder", netns, address, port, reply,
          [](const std::string& addr_text, int port_number) {
            int s = bound_socket(SOCK_STREAM, addr_text, port_number);
            if (s < 0 || ::listen(s, 64) != 0) return -1;
            return s;
          },
          [](int s, const std::string& answer,
             const std::function<void(const std::string&)>& record) {
            for (;;) {
              sockaddr_storage peer{};
              socklen_t len = sizeof peer;
              int c = ::accept4(s, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC);
              if (c < 0) continue;
              record(peer_text(peer) + "\n");
              (void)!::write(c, answer.data(), answer.size());
              ::shutdown(c, SHUT_WR);
              char buf[256];
              pollfd p{c, POLLIN, 0};
              if (::poll(&p, 1, 200) == 1) (void)!::read(c, buf, sizeof buf);
              ::close(c);
            }
          }) {}

UdpRecorder::UdpRecorder(const std::string& netns, const std::string& address, int port,
                         const std::string& reply)
    : RecordingServer(
          "udp-recorder", netns, address, port, reply,
          [](const std::string& addr_text, int port_number) {
            return bound_socket(SOCK_DGRAM, addr_text, port_number);
          },
          [](int s, const std::string& answer,
             const std::function<void(const std::string&)>& record) {
            for (;;) {
              char buf[201];
              sockaddr_storage peer{};
              socklen_t peer_len = sizeof peer;
              ssize_t n = ::recvfrom(s, buf, sizeof buf - 1, 0, reinterpret_cast<sockaddr*>(&peer),
                                     &peer_len);
              if (n < 0) continue;
              std::string line = peer_text(peer) + " " + std::string(buf, static_cast<size_t>(n));
              for (char& c : line) {
                if (c == '\n') c = ' ';
              }
              record(line + "\n");
              if (!answer.empty()) {
                ::sendto(s, answer.data(), answer.size(), 0, reinterpret_cast<sockaddr*>(&peer),
                         peer_len);
              }
            }
          }) {}

}  // namespace netcell::testing
