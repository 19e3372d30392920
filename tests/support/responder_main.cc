// netcell-responder: a TCP server for demos and tests. Answers every connection with REPLY and
// appends each client's address to LOG. Ends by itself after 120 s.
//   netcell-responder ADDRESS PORT REPLY [LOG]
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
  int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(std::atoi(argv[2])));
  if (::inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1 ||
      ::bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(s, 64) != 0) {
    std::perror("netcell-responder");
    return 1;
  }
  for (;;) {
    sockaddr_in peer{};
    socklen_t len = sizeof peer;
    int c = ::accept4(s, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC);
    if (c < 0) continue;
    if (argc > 4) {
      char ip[INET_ADDRSTRLEN] = {};
      ::inet_ntop(AF_INET, &peer.sin_addr, ip, sizeof ip);
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
