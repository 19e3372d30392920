#include "service/loopback_relay.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>
#include <thread>
#include <vector>

#include "netcell/relay.h"
#include "service/records_watch.h"

namespace netcell::service {
namespace {

using Clock = std::chrono::steady_clock;

enum class Kind { kStop, kInotify, kTimer, kTcpListen, kUdpListen, kClient, kUpstream, kFlow };

struct Ref {
  Kind kind = Kind::kStop;
  std::uint64_t id = 0;  // the listener, connection or flow
};

struct Listener {
  int fd = -1;
  std::string owner;  // the namespace
  LoopbackRoute route;
};

// One direction of a TCP connection: bytes spliced from `from` into the pipe, then to `to`.
struct Direction {
  int pipe_r = -1, pipe_w = -1;
  std::size_t held = 0;  // bytes in the pipe
  bool eof = false;      // `from` has no more
  bool shut = false;     // `to` was told (shutdown SHUT_WR)
};

struct Connection {
  int client = -1, upstream = -1;
  bool connected = false;
  Direction up, down;  // client -> upstream, upstream -> client
};

struct Flow {
  int fd = -1;  // connected to the target
  std::uint64_t listener = 0;
  sockaddr_in6 client{};
  Clock::time_point last{};
};

sockaddr_in6 v6_address(const IpAddress& ip, std::uint16_t port) {
  sockaddr_in6 sa{};
  sa.sin6_family = AF_INET6;
  std::memcpy(&sa.sin6_addr, ip.bytes().data(), 16);
  sa.sin6_port = htons(port);
  return sa;
}

}  // namespace

struct LoopbackRelay::Impl {
  NamespaceManager& mgr;
  Limits limits;
  int epoll = -1, stop = -1, inotify = -1, timer = -1;
  std::thread thread;
  std::uint64_t next_id = 1;
  std::map<int, Ref> refs;
  std::map<std::uint64_t, Listener> listeners;
  std::map<std::string, std::vector<std::uint64_t>> by_owner;
  std::map<std::uint64_t, Connection> connections;
  std::map<std::uint64_t, Flow> flows;
  std::map<std::pair<std::uint64_t, std::string>, std::uint64_t> flow_of;  // listener, client

  Impl(NamespaceManager& m, Limits l) : mgr(m), limits(l) {}
  ~Impl() {
    for (auto& [id, c] : connections) close_connection_fds(c);
    for (auto& [id, f] : flows) ::close(f.fd);
    for (auto& [id, l] : listeners) ::close(l.fd);
    for (int fd : {stop, inotify, timer, epoll}) {
      if (fd >= 0) ::close(fd);
    }
  }

  void watch(int fd, Ref ref, std::uint32_t events = EPOLLIN) {
    epoll_add(epoll, fd, events);
    refs[fd] = ref;
  }
  void unwatch(int fd) {
    if (fd < 0) return;
    ::epoll_ctl(epoll, EPOLL_CTL_DEL, fd, nullptr);
    refs.erase(fd);
    ::close(fd);
  }

  // ---- the records

  void answer(const std::string& name, const std::string& line) {
    const std::string dir = mgr.options().run_dir + "/relayed";
    ::mkdir(dir.c_str(), 0700);
    const std::string path = relay_answer_path(mgr.options().run_dir, name);
    const std::string tmp = path + ".tmp";
    FILE* f = std::fopen(tmp.c_str(), "we");
    if (f == nullptr) return;
    std::fprintf(f, "%s\n", line.c_str());
    if (std::fclose(f) == 0) ::rename(tmp.c_str(), path.c_str());
  }

  std::vector<LoopbackRoute> routes_of(const std::string& owner) const {
    std::vector<LoopbackRoute> out;
    auto it = by_owner.find(owner);
    if (it == by_owner.end()) return out;
    for (auto id : it->second) out.push_back(listeners.at(id).route);
    return out;
  }

  void close_owner(const std::string& owner) {
    auto it = by_owner.find(owner);
    if (it == by_owner.end()) return;
    for (auto id : it->second) {
      std::vector<std::uint64_t> gone;
      for (auto& [fid, f] : flows) {
        if (f.listener == id) gone.push_back(fid);
      }
      for (auto fid : gone) close_flow(fid);
      unwatch(listeners[id].fd);
      listeners.erase(id);
    }
    by_owner.erase(it);
  }

  // Listens for every route of `owner`, all or none; "" or why not.
  std::string open_routes(const std::string& owner, const std::vector<LoopbackRoute>& routes) {
    std::vector<std::uint64_t> opened;
    for (const auto& r : routes) {
      const bool tcp = r.protocol == Protocol::kTcp;
      int fd =
          ::socket(AF_INET6, (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      std::string why;
      if (fd < 0) {
        why = std::string("socket: ") + std::strerror(errno);
      } else {
        int one = 1;
        ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
        if (tcp) ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_in6 sa = v6_address(
            IpAddress::v6({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}), r.host_port);
        if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
            (tcp && ::listen(fd, 512) != 0)) {
          why = "cannot listen on " + to_string(r) + ": " + std::strerror(errno);
          ::close(fd);
        }
      }
      if (!why.empty()) {
        by_owner[owner] = opened;
        close_owner(owner);
        return why;
      }
      const std::uint64_t id = next_id++;
      listeners[id] = Listener{fd, owner, r};
      watch(fd, Ref{tcp ? Kind::kTcpListen : Kind::kUdpListen, id});
      opened.push_back(id);
    }
    by_owner[owner] = opened;
    return "";
  }

  void reconcile(const std::string& name) {
    auto info = mgr.snapshot(name);
    std::vector<LoopbackRoute> wanted;
    if (info && *info) wanted = loopback_routes(**info);
    if (wanted == routes_of(name)) {
      if (!wanted.empty()) answer(name, "ok");
      return;
    }
    close_owner(name);
    if (wanted.empty()) return;
    const std::string why = open_routes(name, wanted);
    if (!why.empty()) {
      std::fprintf(stderr, "netcell-service: relay for '%s': %s\n", name.c_str(), why.c_str());
    }
    answer(name, why.empty() ? "ok" : "error: " + why);
  }

  void reload_all() {
    std::set<std::string> names;
    for (const auto& info : mgr.snapshot()) names.insert(info.name);
    for (const auto& [owner, ids] : by_owner) names.insert(owner);
    for (const auto& name : names) reconcile(name);
  }

  void on_inotify() {
    auto names = changed_records(inotify);
    if (!names) {
      reload_all();
      return;
    }
    for (const auto& name : *names) reconcile(name);
  }

  // ---- TCP

  static void close_connection_fds(Connection& c) {
    for (int fd : {c.client, c.upstream, c.up.pipe_r, c.up.pipe_w, c.down.pipe_r, c.down.pipe_w}) {
      if (fd >= 0) ::close(fd);
    }
  }

  void close_connection(std::uint64_t id) {
    auto it = connections.find(id);
    if (it == connections.end()) return;
    Connection& c = it->second;
    for (int fd : {c.client, c.upstream}) {
      if (fd >= 0) {
        ::epoll_ctl(epoll, EPOLL_CTL_DEL, fd, nullptr);
        refs.erase(fd);
      }
    }
    close_connection_fds(c);
    connections.erase(it);
  }

  static bool make_pipe(Direction& d, std::size_t bytes) {
    int p[2];
    if (::pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0) return false;
    d.pipe_r = p[0];
    d.pipe_w = p[1];
    ::fcntl(d.pipe_w, F_SETPIPE_SZ, static_cast<int>(bytes));
    return true;
  }

  void on_tcp_listen(const Listener& l) {
    for (int accepted = 0; accepted < 64; ++accepted) {
      int client = ::accept4(l.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (client < 0) return;
      if (connections.size() >= limits.connections) {
        ::close(client);  // bounded: refused
        continue;
      }
      Connection c;
      c.client = client;
      c.upstream = ::socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (c.upstream < 0 || !make_pipe(c.up, limits.pipe_bytes) ||
          !make_pipe(c.down, limits.pipe_bytes)) {
        close_connection_fds(c);
        continue;
      }
      sockaddr_in6 target = v6_address(l.route.target, l.route.target_port);
      if (::connect(c.upstream, reinterpret_cast<sockaddr*>(&target), sizeof target) != 0 &&
          errno != EINPROGRESS) {
        close_connection_fds(c);
        continue;
      }
      const std::uint64_t id = next_id++;
      connections[id] = c;
      watch(c.client, Ref{Kind::kClient, id}, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET);
      watch(c.upstream, Ref{Kind::kUpstream, id}, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET);
    }
  }

  // Moves what it can one way; false on an error that ends the connection.
  static bool pump(Direction& d, int from, int to, std::size_t room) {
    for (;;) {
      bool moved = false;
      if (!d.eof && d.held < room) {
        ssize_t n = ::splice(from, nullptr, d.pipe_w, nullptr, room - d.held,
                             SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n > 0) {
          d.held += static_cast<std::size_t>(n);
          moved = true;
        } else if (n == 0) {
          d.eof = true;
        } else if (errno != EAGAIN && errno != EINTR) {
          return false;
        }
      }
      if (d.held > 0) {
        ssize_t n =
            ::splice(d.pipe_r, nullptr, to, nullptr, d.held, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n > 0) {
          d.held -= static_cast<std::size_t>(n);
          moved = true;
        } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
          return false;
        }
      }
      if (!moved) break;
    }
    if (d.eof && d.held == 0 && !d.shut) {
      ::shutdown(to, SHUT_WR);
      d.shut = true;
    }
    return true;
  }

  // Both sockets are edge-triggered for reading and writing: any event of either moves what it
  // can both ways, until the kernel says EAGAIN or a pipe is full (then the other end's next
  // edge, when it has taken some, moves more).
  void on_connection(std::uint64_t id, bool from_upstream) {
    auto it = connections.find(id);
    if (it == connections.end()) return;
    Connection& c = it->second;
    if (!c.connected) {
      // A connecting socket's first edge is the end of its connect (SO_ERROR says how it went).
      if (!from_upstream) return;
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(c.upstream, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        close_connection(id);
        return;
      }
      c.connected = true;
    }
    const std::size_t room = limits.pipe_bytes;
    if (!pump(c.up, c.client, c.upstream, room) || !pump(c.down, c.upstream, c.client, room)) {
      close_connection(id);
      return;
    }
    if (c.up.shut && c.down.shut) close_connection(id);
  }

  // ---- UDP

  void close_flow(std::uint64_t id) {
    auto it = flows.find(id);
    if (it == flows.end()) return;
    char key[sizeof(sockaddr_in6)];
    std::memcpy(key, &it->second.client, sizeof key);
    flow_of.erase({it->second.listener, std::string(key, sizeof key)});
    unwatch(it->second.fd);
    flows.erase(it);
  }

  void on_udp_listen(std::uint64_t lid, const Listener& l) {
    static thread_local char buf[65536];
    for (int got = 0; got < 256; ++got) {
      sockaddr_in6 from{};
      socklen_t len = sizeof from;
      ssize_t n = ::recvfrom(l.fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
      if (n < 0) return;
      char raw[sizeof(sockaddr_in6)];
      std::memcpy(raw, &from, sizeof raw);
      const auto key = std::make_pair(lid, std::string(raw, sizeof raw));
      auto known = flow_of.find(key);
      std::uint64_t fid = 0;
      if (known != flow_of.end()) {
        fid = known->second;
      } else {
        if (flows.size() >= limits.udp_flows) continue;  // bounded: dropped
        int fd = ::socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) continue;
        sockaddr_in6 target = v6_address(l.route.target, l.route.target_port);
        if (::connect(fd, reinterpret_cast<sockaddr*>(&target), sizeof target) != 0) {
          ::close(fd);
          continue;
        }
        fid = next_id++;
        flows[fid] = Flow{fd, lid, from, Clock::now()};
        flow_of[key] = fid;
        watch(fd, Ref{Kind::kFlow, fid});
      }
      Flow& f = flows[fid];
      f.last = Clock::now();
      (void)::send(f.fd, buf, static_cast<std::size_t>(n), MSG_DONTWAIT | MSG_NOSIGNAL);
    }
  }

  void on_flow(std::uint64_t id) {
    auto it = flows.find(id);
    if (it == flows.end()) return;
    Flow& f = it->second;
    auto l = listeners.find(f.listener);
    if (l == listeners.end()) {
      close_flow(id);
      return;
    }
    static thread_local char buf[65536];
    for (int got = 0; got < 256; ++got) {
      ssize_t n = ::recv(f.fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n < 0) {
        if (errno != EAGAIN && errno != EINTR) close_flow(id);  // e.g. port unreachable
        return;
      }
      f.last = Clock::now();
      (void)::sendto(l->second.fd, buf, static_cast<std::size_t>(n), MSG_DONTWAIT | MSG_NOSIGNAL,
                     reinterpret_cast<const sockaddr*>(&f.client), sizeof f.client);
    }
  }

  void on_timer() {
    std::uint64_t ticks = 0;
    (void)!::read(timer, &ticks, sizeof ticks);
    const auto idle = Clock::now() - std::chrono::seconds(limits.udp_idle_seconds);
    std::vector<std::uint64_t> gone;
    for (const auto& [id, f] : flows) {
      if (f.last < idle) gone.push_back(id);
    }
    for (auto id : gone) close_flow(id);
  }

  void run() {
    reload_all();
    for (;;) {
      epoll_event events[64];
      int n = ::epoll_wait(epoll, events, 64, -1);
      if (n < 0) {
        if (errno == EINTR) continue;
        std::perror("netcell-service: relay: epoll_wait");
        return;
      }
      for (int i = 0; i < n; ++i) {
        auto ref = refs.find(events[i].data.fd);
        if (ref == refs.end()) continue;  // closed by an earlier event of this round
        const Ref r = ref->second;
        switch (r.kind) {
          case Kind::kStop: return;
          case Kind::kInotify: on_inotify(); break;
          case Kind::kTimer: on_timer(); break;
          case Kind::kTcpListen: on_tcp_listen(listeners.at(r.id)); break;
          case Kind::kUdpListen: on_udp_listen(r.id, listeners.at(r.id)); break;
          case Kind::kClient: on_connection(r.id, false); break;
          case Kind::kUpstream: on_connection(r.id, true); break;
          case Kind::kFlow: on_flow(r.id); break;
        }
      }
    }
  }
};

LoopbackRelay::LoopbackRelay(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

LoopbackRelay::~LoopbackRelay() {
  if (impl_->thread.joinable()) {
    std::uint64_t one = 1;
    (void)!::write(impl_->stop, &one, sizeof one);
    impl_->thread.join();
  }
}

Result<std::unique_ptr<LoopbackRelay>> LoopbackRelay::start(NamespaceManager& mgr, Limits limits) {
  auto impl = std::make_unique<Impl>(mgr, limits);
  impl->epoll = ::epoll_create1(EPOLL_CLOEXEC);
  if (impl->epoll < 0) return fail_errno("epoll_create1", errno);
  impl->stop = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (impl->stop < 0) return fail_errno("eventfd", errno);
  impl->watch(impl->stop, Ref{Kind::kStop, 0});
  auto watching = watch_records(mgr.options().run_dir);
  if (!watching) return fail(watching.error());
  impl->inotify = *watching;
  impl->watch(impl->inotify, Ref{Kind::kInotify, 0});
  impl->timer = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (impl->timer < 0) return fail_errno("timerfd_create", errno);
  itimerspec every{{1, 0}, {1, 0}};
  ::timerfd_settime(impl->timer, 0, &every, nullptr);
  impl->watch(impl->timer, Ref{Kind::kTimer, 0});
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->run(); });
  return std::unique_ptr<LoopbackRelay>(new LoopbackRelay(std::move(impl)));
}

}  // namespace netcell::service
