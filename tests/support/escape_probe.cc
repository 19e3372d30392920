// netcell-escape-probe: the packet side of the escape tests, run inside a namespace. Every probe is
// bounded in count and time and prints one line per target, so a test can tell a blocked attempt
// from a probe that never sent anything. HOST:PORT is "192.0.2.1:80" or "[2001:db8::1]:80"; SRC
// may carry a scope ("fe80::a%eth0").
//
//   tcp TIMEOUT_MS [-s SRC] HOST:PORT...
//       parallel connects; "HOST:PORT open|closed|silent|error"
//   udp [-s SRC] [-t TAG] HOST:PORT...
//       3 datagrams each, payload "netcell-escape udp TAG HOST:PORT"; "HOST:PORT sent|error"
//   icmp TIMEOUT_MS HOST...
//       echo over a raw socket; "HOST reply|none"
//   spoof-udp SRC DST PORT COUNT
//       hand-made IPv4/UDP with any source, payload "netcell-escape spoof SRC>DST:PORT"; "sent N"
//   arp IFACE request|reply COUNT SENDER_IP[+N] TARGET_IP
//       ARP frames from this interface's MAC claiming SENDER_IP (cycling over N consecutive
//       addresses with +N); "sent N replies M ms T", replies being ARP replies from TARGET_IP
//       to this MAC seen within 100 ms after the last frame
//   ra IFACE PREFIX
//       one IPv6 router advertisement to ff02::1 offering a default route and PREFIX/64 (the
//       interface needs a link-local address); "sent N"
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netdb.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <netinet/udp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

constexpr int kMaxTargets = 256;
constexpr int kMaxCount = 20000;
constexpr int kMaxTimeoutMs = 3000;

int usage() {
  std::fprintf(stderr,
               "usage: netcell-escape-probe tcp|udp|icmp|spoof-udp|arp ... (see the source)\n");
  return 2;
}

bool parse_ip(const std::string& text, in_addr* out) {
  return ::inet_pton(AF_INET, text.c_str(), out) == 1;
}

// A numeric address (with an optional %scope) and port.
struct Endpoint {
  sockaddr_storage addr{};
  socklen_t len = 0;
};

bool resolve(const std::string& host, const char* port, Endpoint* out) {
  addrinfo hints{};
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (::getaddrinfo(host.c_str(), port, &hints, &found) != 0 || found == nullptr) return false;
  std::memcpy(&out->addr, found->ai_addr, found->ai_addrlen);
  out->len = found->ai_addrlen;
  ::freeaddrinfo(found);
  return true;
}

// "192.0.2.1:80" or "[2001:db8::1]:80".
bool parse_target(const std::string& text, Endpoint* out) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos) return false;
  std::string host = text.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return resolve(host, text.c_str() + colon + 1, out);
}

long elapsed_ms(Clock::time_point since) {
  return static_cast<long>(
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - since).count());
}

bool bind_source(int fd, const std::string& source) {
  if (source.empty()) return true;
  Endpoint src;
  if (!resolve(source, "0", &src)) return false;
  return ::bind(fd, reinterpret_cast<sockaddr*>(&src.addr), src.len) == 0;
}

// Splits "[-s SRC] [-t TAG] ARGS..." starting at argv[first].
std::vector<std::string> rest(int argc, char** argv, int first, std::string* source,
                              std::string* tag) {
  std::vector<std::string> out;
  for (int i = first; i < argc; ++i) {
    if (std::string(argv[i]) == "-s" && i + 1 < argc) {
      *source = argv[++i];
    } else if (std::string(argv[i]) == "-t" && i + 1 < argc) {
      *tag = argv[++i];
    } else {
      out.emplace_back(argv[i]);
    }
  }
  return out;
}

int tcp_connect(int timeout_ms, const std::string& source,
                const std::vector<std::string>& targets) {
  struct Probe {
    std::string name;
    int fd = -1;
    std::string result;
  };
  std::vector<Probe> probes;
  for (const auto& t : targets) {
    Probe p;
    p.name = t;
    Endpoint to;
    if (!parse_target(t, &to)) return usage();
    p.fd = ::socket(to.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (p.fd < 0 || !bind_source(p.fd, source)) {
      p.result = "error";
    } else if (::connect(p.fd, reinterpret_cast<sockaddr*>(&to.addr), to.len) == 0) {
      p.result = "open";
    } else if (errno != EINPROGRESS) {
      p.result = errno == ECONNREFUSED ? "closed" : "error";
    }
    probes.push_back(std::move(p));
  }
  auto start = Clock::now();
  for (;;) {
    std::vector<pollfd> fds;
    std::vector<Probe*> waiting;
    for (auto& p : probes) {
      if (p.result.empty()) {
        fds.push_back({p.fd, POLLOUT, 0});
        waiting.push_back(&p);
      }
    }
    long left = timeout_ms - elapsed_ms(start);
    if (fds.empty() || left <= 0) break;
    if (::poll(fds.data(), fds.size(), static_cast<int>(left)) < 0) break;
    for (size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(fds[i].fd, SOL_SOCKET, SO_ERROR, &err, &len);
      waiting[i]->result = err == 0 ? "open" : err == ECONNREFUSED ? "closed" : "error";
    }
  }
  for (auto& p : probes) {
    std::printf("%s %s\n", p.name.c_str(), p.result.empty() ? "silent" : p.result.c_str());
    if (p.fd >= 0) ::close(p.fd);
  }
  return 0;
}

int udp_send(const std::string& source, const std::string& tag,
             const std::vector<std::string>& targets) {
  for (const auto& t : targets) {
    Endpoint to;
    if (!parse_target(t, &to)) return usage();
    int fd = ::socket(to.addr.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0) ::setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof one);
    bool sent = fd >= 0 && bind_source(fd, source);
    const std::string payload = "netcell-escape udp " + tag + " " + t;
    for (int i = 0; sent && i < 3; ++i) {
      sent = ::sendto(fd, payload.data(), payload.size(), 0, reinterpret_cast<sockaddr*>(&to.addr),
                      to.len) == static_cast<ssize_t>(payload.size());
    }
    std::printf("%s %s\n", t.c_str(), sent ? "sent" : "error");
    if (fd >= 0) ::close(fd);
  }
  return 0;
}

std::uint16_t checksum(const void* data, size_t len) {
  const auto* p = static_cast<const std::uint8_t*>(data);
  std::uint32_t sum = 0;
  for (size_t i = 0; i + 1 < len; i += 2) sum += (p[i] << 8) | p[i + 1];
  if (len % 2) sum += p[len - 1] << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return htons(static_cast<std::uint16_t>(~sum));
}

int icmp_echo(int timeout_ms, const std::vector<std::string>& targets) {
  int fd = ::socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP);
  if (fd < 0) {
    std::perror("icmp socket");
    return 1;
  }
  const std::uint16_t id = static_cast<std::uint16_t>(::getpid());
  std::vector<in_addr> addrs(targets.size());
  std::vector<bool> replied(targets.size(), false);
  for (size_t i = 0; i < targets.size(); ++i) {
    if (!parse_ip(targets[i], &addrs[i])) return usage();
    icmphdr h{};
    h.type = ICMP_ECHO;
    h.un.echo.id = htons(id);
    h.un.echo.sequence = htons(static_cast<std::uint16_t>(i));
    h.checksum = checksum(&h, sizeof h);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_addr = addrs[i];
    (void)::sendto(fd, &h, sizeof h, 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
  }
  auto start = Clock::now();
  for (;;) {
    long left = timeout_ms - elapsed_ms(start);
    if (left <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) break;
    std::uint8_t buf[1500];
    sockaddr_in from{};
    socklen_t len = sizeof from;
    ssize_t n = ::recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
    if (n < static_cast<ssize_t>(sizeof(iphdr) + sizeof(icmphdr))) continue;
    const auto* ip = reinterpret_cast<const iphdr*>(buf);
    const auto* h = reinterpret_cast<const icmphdr*>(buf + ip->ihl * 4);
    if (h->type != ICMP_ECHOREPLY || ntohs(h->un.echo.id) != id) continue;
    size_t seq = ntohs(h->un.echo.sequence);
    if (seq < targets.size() && from.sin_addr.s_addr == addrs[seq].s_addr) replied[seq] = true;
    bool all = true;
    for (bool r : replied) all = all && r;
    if (all) break;
  }
  for (size_t i = 0; i < targets.size(); ++i) {
    std::printf("%s %s\n", targets[i].c_str(), replied[i] ? "reply" : "none");
  }
  ::close(fd);
  return 0;
}

int spoof_udp(const std::string& source, const std::string& dest, int port, int count) {
  int fd = ::socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);  // implies IP_HDRINCL
  if (fd < 0) {
    std::perror("raw socket");
    return 1;
  }
  struct Packet {
    iphdr ip;
    udphdr udp;
    char payload[64];
  } __attribute__((packed)) pkt{};
  const std::string payload =
      "netcell-escape spoof " + source + ">" + dest + ":" + std::to_string(port);
  if (payload.size() > sizeof pkt.payload) return usage();
  std::memcpy(pkt.payload, payload.data(), payload.size());
  const size_t size = sizeof pkt.ip + sizeof pkt.udp + payload.size();
  pkt.ip.version = 4;
  pkt.ip.ihl = 5;
  pkt.ip.ttl = 64;
  pkt.ip.protocol = IPPROTO_UDP;
  pkt.ip.tot_len = htons(static_cast<std::uint16_t>(size));
  in_addr src{}, dst{};
  if (!parse_ip(source, &src) || !parse_ip(dest, &dst)) return usage();
  pkt.ip.saddr = src.s_addr;
  pkt.ip.daddr = dst.s_addr;
  pkt.ip.check = checksum(&pkt.ip, sizeof pkt.ip);
  pkt.udp.source = htons(40000);
  pkt.udp.dest = htons(static_cast<std::uint16_t>(port));
  pkt.udp.len = htons(static_cast<std::uint16_t>(sizeof pkt.udp + payload.size()));
  pkt.udp.check = 0;  // optional over IPv4
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_addr = dst;
  int sent = 0;
  auto start = Clock::now();
  for (int i = 0; i < count && elapsed_ms(start) < kMaxTimeoutMs; ++i) {
    if (::sendto(fd, &pkt, size, 0, reinterpret_cast<sockaddr*>(&to), sizeof to) ==
        static_cast<ssize_t>(size)) {
      ++sent;
    }
  }
  std::printf("sent %d\n", sent);
  ::close(fd);
  return 0;
}

struct ArpFrame {
  ether_header eth;
  arphdr arp;
  std::uint8_t sha[6];
  std::uint8_t spa[4];
  std::uint8_t tha[6];
  std::uint8_t tpa[4];
} __attribute__((packed));

int arp_frames(const std::string& ifname, const std::string& op, int count,
               const std::string& sender, const std::string& target) {
  int fd = ::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ARP));
  if (fd < 0) {
    std::perror("packet socket");
    return 1;
  }
  ifreq ifr{};
  std::snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname.c_str());
  if (::ioctl(fd, SIOCGIFHWADDR, &ifr) != 0 || ::ioctl(fd, SIOCGIFINDEX, &ifr) != 0) {
    std::perror(ifname.c_str());
    return 1;
  }
  int ifindex = ifr.ifr_ifindex;
  ::ioctl(fd, SIOCGIFHWADDR, &ifr);
  std::uint8_t mac[6];
  std::memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
  sockaddr_ll ll{};
  ll.sll_family = AF_PACKET;
  ll.sll_protocol = htons(ETH_P_ARP);
  ll.sll_ifindex = ifindex;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ll), sizeof ll) != 0) {
    std::perror("bind");
    return 1;
  }
  // SENDER_IP+N cycles the claimed address over N consecutive addresses.
  std::string first = sender;
  int spread = 1;
  if (auto plus = sender.find('+'); plus != std::string::npos) {
    first = sender.substr(0, plus);
    spread = std::max(1, std::atoi(sender.c_str() + plus + 1));
  }
  in_addr sip{}, tip{};
  if (!parse_ip(first, &sip) || !parse_ip(target, &tip)) return usage();
  ArpFrame f{};
  std::memset(f.eth.ether_dhost, 0xff, 6);
  std::memcpy(f.eth.ether_shost, mac, 6);
  f.eth.ether_type = htons(ETH_P_ARP);
  f.arp.ar_hrd = htons(ARPHRD_ETHER);
  f.arp.ar_pro = htons(ETH_P_IP);
  f.arp.ar_hln = 6;
  f.arp.ar_pln = 4;
  f.arp.ar_op = htons(op == "reply" ? ARPOP_REPLY : ARPOP_REQUEST);
  std::memcpy(f.sha, mac, 6);
  if (op == "reply") std::memset(f.tha, 0xff, 6);
  std::memcpy(f.tpa, &tip, 4);
  int sent = 0;
  auto start = Clock::now();
  for (int i = 0; i < count && elapsed_ms(start) < kMaxTimeoutMs; ++i) {
    std::uint32_t claimed = htonl(ntohl(sip.s_addr) + static_cast<std::uint32_t>(i % spread));
    std::memcpy(f.spa, &claimed, 4);
    if (::send(fd, &f, sizeof f, 0) == static_cast<ssize_t>(sizeof f)) ++sent;
  }
  long send_ms = elapsed_ms(start);
  int replies = 0;
  auto listen = Clock::now();
  for (;;) {
    long left = 100 - elapsed_ms(listen);
    if (left <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) break;
    ArpFrame in{};
    if (::recv(fd, &in, sizeof in, 0) < static_cast<ssize_t>(sizeof in)) continue;
    if (ntohs(in.arp.ar_op) == ARPOP_REPLY && std::memcmp(in.spa, &tip, 4) == 0 &&
        std::memcmp(in.tha, mac, 6) == 0) {
      ++replies;
    }
  }
  std::printf("sent %d replies %d ms %ld\n", sent, replies, send_ms);
  ::close(fd);
  return 0;
}

int router_advertisement(const std::string& ifname, const std::string& prefix) {
  int fd = ::socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMPV6);  // kernel sums ICMPv6
  if (fd < 0) {
    std::perror("icmpv6 socket");
    return 1;
  }
  unsigned index = ::if_nametoindex(ifname.c_str());
  int hops = 255;
  ::setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &hops, sizeof hops);
  ::setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &index, sizeof index);
  struct Advert {
    nd_router_advert ra;
    nd_opt_prefix_info pio;
  } __attribute__((packed)) adv{};
  adv.ra.nd_ra_type = ND_ROUTER_ADVERT;
  adv.ra.nd_ra_curhoplimit = 64;
  adv.ra.nd_ra_router_lifetime = htons(1800);
  adv.pio.nd_opt_pi_type = ND_OPT_PREFIX_INFORMATION;
  adv.pio.nd_opt_pi_len = 4;
  adv.pio.nd_opt_pi_prefix_len = 64;
  adv.pio.nd_opt_pi_flags_reserved = ND_OPT_PI_FLAG_ONLINK | ND_OPT_PI_FLAG_AUTO;
  adv.pio.nd_opt_pi_valid_time = htonl(86400);
  adv.pio.nd_opt_pi_preferred_time = htonl(14400);
  if (index == 0 || ::inet_pton(AF_INET6, prefix.c_str(), &adv.pio.nd_opt_pi_prefix) != 1) {
    return usage();
  }
  sockaddr_in6 to{};
  to.sin6_family = AF_INET6;
  to.sin6_scope_id = index;
  ::inet_pton(AF_INET6, "ff02::1", &to.sin6_addr);
  int sent = ::sendto(fd, &adv, sizeof adv, 0, reinterpret_cast<sockaddr*>(&to), sizeof to) ==
                     static_cast<ssize_t>(sizeof adv)
                 ? 1
                 : 0;
  if (sent == 0) std::perror("sendto");
  std::printf("sent %d\n", sent);
  ::close(fd);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage();
  std::string mode = argv[1];
  std::string source;
  std::string tag = "-";
  auto bounded = [](const char* text, int max) {
    int v = std::atoi(text);
    return v < 1 ? 1 : v > max ? max : v;
  };
  if (mode == "tcp" && argc >= 4) {
    auto targets = rest(argc, argv, 3, &source, &tag);
    if (targets.size() > kMaxTargets) return usage();
    return tcp_connect(bounded(argv[2], kMaxTimeoutMs), source, targets);
  }
  if (mode == "udp" && argc >= 3) {
    auto targets = rest(argc, argv, 2, &source, &tag);
    if (targets.size() > kMaxTargets) return usage();
    return udp_send(source, tag, targets);
  }
  if (mode == "icmp" && argc >= 4) {
    auto targets = rest(argc, argv, 3, &source, &tag);
    if (targets.size() > kMaxTargets) return usage();
    return icmp_echo(bounded(argv[2], kMaxTimeoutMs), targets);
  }
  if (mode == "spoof-udp" && argc == 6) {
    return spoof_udp(argv[2], argv[3], std::atoi(argv[4]), bounded(argv[5], kMaxCount));
  }
  if (mode == "arp" && argc == 7) {
    return arp_frames(argv[2], argv[3], bounded(argv[4], kMaxCount), argv[5], argv[6]);
  }
  if (mode == "ra" && argc == 4) return router_advertisement(argv[2], argv[3]);
  return usage();
}
