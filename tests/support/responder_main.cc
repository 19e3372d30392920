// netcell-responder: a TCP server for demos and tests. Answers every connection with REPLY and
// appends each client's address to LOG. Ends by itself after 120 s.
//   netcell-responder ADDRESS PORT REPLY [LOG]     (ADDRESS: IPv4 or IPv6)
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: netcell-responder ADDRESS PORT REPLY [LOG]\n");
    return 2;
  }
  ::alarm(120);
  std::string reply = argv[3];
  for (std::size_t pos; (pos = reply.find("\\n")) != std::string::npos;)
    reply.replace(pos, 2, 1, '\n');
  for (std::size_t pos; (pos = reply.find("\\r")) != std::string::npos;)
    reply.replace(pos, 2, 1, '\r');
  // ADDRESS is IPv4 or IPv6 (an IPv6 listener takes IPv6 only).
  sockaddr_storage addr{};
  socklen_t addr_len = 0;
  const auto port = htons(static_cast<std::uint16_t>(std::atoi(argv[2])));
  auto* v4 = reinterpret_cast<sockaddr_in*>(&addr);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&addr);
  if (::inet_pton(AF_INET, argv[1], &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = port;
    addr_len = sizeof *v4;
  } else if (::inet_pton(AF_INET6, argv[1], &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = port;
    addr_len = sizeof *v6;
  } else {
    std::fprintf(stderr, "netcell-responder: %s is not an IPv4 or IPv6 address\n", argv[1]);
    return 2;
  }
  int s = ::socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (addr.ss_family == AF_INET6) ::setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (::bind(s, reinterpret_cast<sockaddr*>(&addr), addr_len) != 0 || ::listen(s, 64) != 0) {
    std::perror("netcell-responder");
    return 1;
  }
  for (;;) {
    sockaddr_storage peer{};
    socklen_t len = sizeof peer;
    int c = ::accept4(s, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC);
    if (c < 0) continue;
    if (argc > 4) {
      char ip[INET6_ADDRSTRLEN] = {};
      const void* from =
          peer.ss_family == AF_INET6
              ? static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(&peer)->sin6_addr)
              : static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(&peer)->sin_addr);
      ::inet_ntop(peer.ss_family, from, ip, sizeof ip);
      if (std::FILE* log = std::fopen(argv[4], "a")) {
        std::fprintf(log, "%s\n", ip);
        std::fclose(log);
      }
    }
    (void)!::write(c, reply.data(), reply.size());
    ::shutdown(c, SHUT_WR);
    pollfd p{c, POLLIN, 0};
    char buf[512];
    if (::poll(&p, 1, 200) == 1) (void)!::read(c, buf, sizeof buf);
    ::close(c);
  }
}
