#include "service/metrics_http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <optional>
#include <thread>

#include "netcell/metrics.h"

namespace netcell::service {
namespace {

using Clock = std::chrono::steady_clock;

Error bad_address(std::string_view text, const std::string& why) {
  return Error(ErrorCode::kInvalidArgument,
               "bad metrics listen address '" + std::string(text) + "': " + why +
                   " (expected ADDRESS:PORT, e.g. 127.0.0.1:9464 or [::1]:9464)");
}

std::string response(int status, const char* reason, std::string_view extra_headers,
                     std::string_view content_type, std::string_view body, bool with_body) {
  std::string out = "HTTP/1.1 " + std::to_string(status) + ' ' + reason + "\r\n";
  out += "Content-Type: ";
  out += content_type;
  out += "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  out += extra_headers;
  out += "Connection: close\r\n\r\n";
  if (with_body) out += body;
  return out;
}

HttpResponse plain(int status, const char* reason, std::string_view extra_headers = "",
                   bool with_body = true) {
  std::string body = std::to_string(status) + ' ' + reason + '\n';
  return {status,
          response(status, reason, extra_headers, "text/plain; charset=utf-8", body, with_body)};
}

// Whether `in` holds a whole request head (up to its blank line) of at most kMaxRequest bytes.
bool complete(std::string_view in) {
  const auto end = std::min(in.find("\r\n\r\n"), in.find("\n\n"));
  return end != std::string_view::npos && end < kMaxRequest;
}

}  // namespace

Result<ListenAddress> parse_listen_address(std::string_view text) {
  ListenAddress out;
  std::string host;
  std::string_view port_text;
  if (text.starts_with('[')) {
    auto close = text.find("]:");
    if (close == std::string_view::npos) return fail(bad_address(text, "no ']:PORT'"));
    host = std::string(text.substr(1, close - 1));
    port_text = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return fail(bad_address(text, "no ':PORT'"));
    host = std::string(text.substr(0, colon));
    port_text = text.substr(colon + 1);
  }
  unsigned long port = 0;
  if (port_text.empty() || port_text.size() > 5 ||
      port_text.find_first_not_of("0123456789") != std::string_view::npos ||
      (port = std::stoul(std::string(port_text))) == 0 || port > 65535) {
    return fail(bad_address(text, "the port is not a number from 1 to 65535"));
  }
  if (in_addr a{}; !text.starts_with('[') && ::inet_pton(AF_INET, host.c_str(), &a) == 1) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&out.address);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(static_cast<std::uint16_t>(port));
    sin->sin_addr = a;
    out.length = sizeof(sockaddr_in);
  } else if (in6_addr a6{};
             text.starts_with('[') && ::inet_pton(AF_INET6, host.c_str(), &a6) == 1) {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&out.address);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(static_cast<std::uint16_t>(port));
    sin6->sin6_addr = a6;
    out.length = sizeof(sockaddr_in6);
  } else {
    return fail(bad_address(text, "'" + host + "' is not an IPv4 address or a bracketed IPv6 one"));
  }
  char buf[INET6_ADDRSTRLEN] = {};
  if (out.address.ss_family == AF_INET) {
    ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&out.address)->sin_addr, buf, sizeof buf);
    out.text = std::string(buf) + ':' + std::to_string(port);
  } else {
    ::inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&out.address)->sin6_addr, buf,
                sizeof buf);
    out.text = '[' + std::string(buf) + "]:" + std::to_string(port);
  }
  return out;
}

HttpResponse respond(std::string_view request, const std::function<std::string()>& body) {
  const auto eol = request.find('\n');
  std::string_view line = request.substr(0, eol);
  if (line.ends_with('\r')) line.remove_suffix(1);
  const auto sp1 = line.find(' ');
  const auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp1 == 0 || sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != line.npos) {
    return plain(400, "Bad Request");
  }
  const std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (!version.starts_with("HTTP/") || target.empty()) return plain(400, "Bad Request");
  if (version != "HTTP/1.1" && version != "HTTP/1.0") {
    return plain(505, "HTTP Version Not Supported");
  }
  const bool head = method == "HEAD";
  if (auto query = target.find('?'); query != std::string_view::npos) {
    target = target.substr(0, query);
  }
  if (target != "/metrics") return plain(404, "Not Found", "", !head);
  if (method != "GET" && !head) return plain(405, "Method Not Allowed", "Allow: GET, HEAD\r\n");
  return {200, response(200, "OK", "", kMetricsContentType, body(), !head)};
}

struct MetricsServer::Impl {
  struct Connection {
    std::string in;
    std::string out;
    std::size_t sent = 0;
    enum class State { kReading, kWriting, kDraining } state = State::kReading;
    Clock::time_point deadline;
  };

  std::function<std::string()> render;
  int listener = -1, epoll = -1, wake = -1;
  std::map<int, Connection> connections;
  bool listen_paused = false;
  std::thread thread;

  ~Impl() {
    if (thread.joinable()) {
      std::uint64_t one = 1;
      (void)!::write(wake, &one, sizeof one);
      thread.join();
    }
    for (auto& [fd, c] : connections) ::close(fd);
    for (int fd : {listener, epoll, wake}) {
      if (fd >= 0) ::close(fd);
    }
  }

  void set_events(int fd, std::uint32_t events, int op = EPOLL_CTL_MOD) {
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    ::epoll_ctl(epoll, op, fd, &ev);
  }

  void drop(int fd) {
    ::epoll_ctl(epoll, EPOLL_CTL_DEL, fd, nullptr);
    ::close(fd);
    connections.erase(fd);
  }

  void accept_all() {
    for (int i = 0; i < 64; ++i) {
      int fd = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE) {  // stop asking until the next sweep
          set_events(listener, 0);
          listen_paused = true;
        }
        return;
      }
      if (connections.size() >= kMaxConnections) {
        ::close(fd);  // busy: closed at once, never queued without bound
        continue;
      }
      connections[fd].deadline = Clock::now() + kConnectionTime;
      set_events(fd, EPOLLIN, EPOLL_CTL_ADD);
    }
  }

  // Reads what came; true when the connection's request head is complete (or too long).
  bool read_request(int fd, Connection& c) {
    char buf[4096];
    for (;;) {
      ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) return false;
      if (n <= 0) {
        drop(fd);  // closed or failed before a whole request
        return false;
      }
      if (c.state == Connection::State::kDraining) continue;  // after the response: discarded
      c.in.append(buf, static_cast<std::size_t>(n));
      if (complete(c.in) || c.in.size() > kMaxRequest) return true;
    }
  }

  void write_response(int fd, Connection& c) {
    while (c.sent < c.out.size()) {
      ssize_t n =
          ::send(fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) return;  // EPOLLOUT tells when there is room
      if (n < 0) {
        drop(fd);
        return;
      }
      c.sent += static_cast<std::size_t>(n);
    }
    // All sent: end our side, and read (discarding) until the client closes, so that what it
    // still sends does not make the kernel reset the connection before it read the response.
    ::shutdown(fd, SHUT_WR);
    c.state = Connection::State::kDraining;
    c.in.clear();
    c.out.clear();
    set_events(fd, EPOLLIN);
  }

  void sweep() {
    const auto now = Clock::now();
    std::vector<int> late;
    for (auto& [fd, c] : connections) {
      if (c.deadline <= now) late.push_back(fd);
    }
    for (int fd : late) drop(fd);
    if (listen_paused) {
      set_events(listener, EPOLLIN);
      listen_paused = false;
    }
  }

  void run() {
    for (;;) {
      epoll_event events[64];
      int n = ::epoll_wait(epoll, events, 64, 250);
      if (n < 0 && errno != EINTR) return;
      std::vector<int> ready;
      for (int i = 0; i < n; ++i) {
        const int fd = events[i].data.fd;
        if (fd == wake) return;
        if (fd == listener) {
          accept_all();
          continue;
        }
        auto it = connections.find(fd);
        if (it == connections.end()) continue;
        Connection& c = it->second;
        if (c.state == Connection::State::kWriting) {
          write_response(fd, c);
        } else if (read_request(fd, c) && c.state == Connection::State::kReading) {
          ready.push_back(fd);
        }
      }
      // Every request of this round gets the same collection, made once.
      std::optional<std::string> body;
      auto collect = [&]() -> std::string {
        if (!body) body = render();
        return *body;
      };
      for (int fd : ready) {
        auto it = connections.find(fd);
        if (it == connections.end()) continue;
        Connection& c = it->second;
        c.out = complete(c.in) ? respond(c.in, collect).text
                               : plain(431, "Request Header Fields Too Large").text;
        c.state = Connection::State::kWriting;
        set_events(fd, EPOLLOUT);
        write_response(fd, c);
      }
      sweep();
    }
  }
};

Result<std::unique_ptr<MetricsServer>> MetricsServer::open(const ListenAddress& where,
                                                           std::function<std::string()> render) {
  auto impl = std::make_unique<Impl>();
  impl->render = std::move(render);
  impl->listener = ::socket(where.address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (impl->listener < 0) return fail_errno("metrics endpoint: socket", errno);
  int one = 1;
  ::setsockopt(impl->listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(impl->listener, reinterpret_cast<const sockaddr*>(&where.address), where.length) !=
          0 ||
      ::listen(impl->listener, 128) != 0) {
    return fail_errno("metrics endpoint: listen on " + where.text, errno);
  }
  impl->epoll = ::epoll_create1(EPOLL_CLOEXEC);
  impl->wake = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (impl->epoll < 0 || impl->wake < 0) return fail_errno("metrics endpoint: epoll", errno);
  impl->set_events(impl->listener, EPOLLIN, EPOLL_CTL_ADD);
  impl->set_events(impl->wake, EPOLLIN, EPOLL_CTL_ADD);
  return std::unique_ptr<MetricsServer>(new MetricsServer(std::move(impl)));
}

MetricsServer::MetricsServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
MetricsServer::~MetricsServer() = default;

void MetricsServer::start() {
  // Signals are the resolver's loop's (its signalfd): none of them for this thread.
  sigset_t all, saved;
  sigfillset(&all);
  ::pthread_sigmask(SIG_BLOCK, &all, &saved);
  impl_->thread = std::thread([impl = impl_.get()] { impl->run(); });
  ::pthread_sigmask(SIG_SETMASK, &saved, nullptr);
}

}  // namespace netcell::service
