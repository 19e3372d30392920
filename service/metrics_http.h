// netcell-service's metrics endpoint (--metrics-listen ADDRESS:PORT): a minimal HTTP/1.1 server
// of one resource, GET /metrics, the exposition of netcell/metrics.h.
//
// It runs on a thread of its own with its own epoll loop, so a scrape (which reads every
// namespace's counters) never delays a DNS answer of the resolver's loop. Every socket is
// non-blocking; a request is at most kMaxRequest bytes and a connection lasts at most
// kConnectionTime, so no client can hold it. Requests that arrive together share one collection.
// Every response closes its connection.
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "netcell/result.h"

namespace netcell::service {

inline constexpr std::size_t kMaxRequest = 8192;
inline constexpr std::size_t kMaxConnections = 128;
inline constexpr auto kConnectionTime = std::chrono::seconds(10);

struct ListenAddress {
  sockaddr_storage address{};
  socklen_t length = 0;
  std::string text;  // as given, normalised: "127.0.0.1:9464", "[::1]:9464"
};
// "IPV4:PORT" or "[IPV6]:PORT", PORT 1..65535; kInvalidArgument with a one-line reason.
Result<ListenAddress> parse_listen_address(std::string_view text);

// What the server answers a request with: the status line's code and reason, headers and body.
struct HttpResponse {
  int status = 200;
  std::string text;  // the whole response, as sent
};
// The response to `request` (a complete head: request line and headers, up to the blank line);
// `body` is called for a GET or HEAD of /metrics.
HttpResponse respond(std::string_view request, const std::function<std::string()>& body);

class MetricsServer {
 public:
  // Binds and listens on `where`; `render` makes the body of each collection (on the server's
  // thread).
  static Result<std::unique_ptr<MetricsServer>> open(const ListenAddress& where,
                                                     std::function<std::string()> render);
  ~MetricsServer();  // stops the thread and closes every socket
  // Starts serving on a thread of its own.
  void start();

  struct Impl;

 private:
  explicit MetricsServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace netcell::service
