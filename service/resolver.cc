#include "service/resolver.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <random>
#include <set>

#include "netcell/flowlog.h"
#include "netcell/host.h"
#include "service/records_watch.h"

namespace netcell::service {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t kMaxMessage = 65535;
constexpr std::size_t kMaxPending = 4096;
// Of those, one namespace's: a namespace whose upstream does not answer cannot take the room (or
// the descriptors, one socket each) the others need.
constexpr std::size_t kMaxPendingPerNamespace = 256;
constexpr std::size_t kMaxTcpClients = 512;
constexpr auto kTcpIdle = std::chrono::seconds(10);
constexpr std::uint16_t kRcodeFormErr = 1, kRcodeServFail = 2, kRcodeNxDomain = 3,
                        kRcodeRefused = 5;

std::uint32_t host_order(const in_addr& a) {
  return ntohl(a.s_addr);
}

}  // namespace

enum class Kind { kUdp, kTcpListen, kTcpClient, kUpstream, kSignal, kInotify, kTimer, kFlowLog };

struct Entry {
  NamespaceInfo info;
  int ifindex = 0;  // the link its queries come in on (private: its veth's host end)
  double tokens = 0;
  Clock::time_point refilled{};
};

struct Client {
  bool tcp = false;
  int conn = -1;                  // tcp: the connection's fd
  std::uint64_t conn_serial = 0;  // tcp: which connection (fds are reused)
  sockaddr_in peer{};
  in_addr local{};  // udp: the address it was sent to (the reply comes from it)
};

struct Pending {
  Client client;
  std::vector<std::uint8_t> query;  // as the client sent it
  Question question;
  std::string ns;
  std::uint16_t upstream_id = 0;
  std::size_t upstream = 0;  // index in the namespace's upstreams
  bool over_tcp = false;
  int fd = -1;
  std::vector<std::uint8_t> tcp_in;
  bool tcp_connected = false;
  Clock::time_point deadline{};
};

struct TcpClient {
  std::uint64_t serial = 0;
  sockaddr_in peer{};
  std::vector<std::uint8_t> in;
  Clock::time_point idle_deadline{};
};

struct Resolver::Impl {
  NamespaceManager& mgr;
  ResolverOptions options;
  int epoll = -1, udp = -1, tcp = -1, signals = -1, inotify = -1, timer = -1;
  std::uint16_t port = 0;
  std::map<int, Kind> kinds;
  std::map<std::uint32_t, Entry> by_source;
  std::map<std::string, std::uint32_t> source_of;
  std::map<int, std::unique_ptr<Pending>> pending;  // by upstream fd
  std::map<std::string, std::size_t> waiting;       // pending, per namespace
  std::map<int, TcpClient> clients;
  std::uint64_t next_serial = 1;
  bool listen_paused = false;
  Clock::time_point last_full_reload{};
  std::mt19937 random{std::random_device{}()};
  // Learned answers: (namespace, name, addresses) -> when to tell the kernel again, as long as the
  // namespace's learned record is the one it was then (a policy change, a restart or another
  // learner rewrites it, and what it says then is asked again).
  struct Learned {
    Clock::time_point until;
    std::pair<ino_t, std::int64_t> record;
  };
  std::map<std::string, Learned> learned_until;
  std::optional<FlowLogReader> flow_log;
  // The last name answered with an address, per namespace (for the denied-flow log).
  std::map<std::string, std::map<std::string, std::string>> last_name;  // ns -> address -> name
  // What each namespace was answered (Resolver::counts), read by the metrics endpoint's thread.
  mutable std::mutex counts_mutex;
  std::map<std::string, ResolverCounts> counts;

  void count(const std::string& ns, std::uint64_t ResolverCounts::*what) {
    std::lock_guard lock(counts_mutex);
    ++(counts[ns].*what);
  }

  explicit Impl(NamespaceManager& m, ResolverOptions o) : mgr(m), options(o) {}
  ~Impl() {
    for (auto& [fd, p] : pending) ::close(fd);
    for (auto& [fd, c] : clients) ::close(fd);
    for (int fd : {udp, tcp, signals, inotify, timer, epoll}) {
      if (fd >= 0) ::close(fd);
    }
  }

  void watch(int fd, Kind kind, std::uint32_t events = EPOLLIN) {
    epoll_add(epoll, fd, events);
    kinds[fd] = kind;
  }
  void unwatch(int fd) {
    ::epoll_ctl(epoll, EPOLL_CTL_DEL, fd, nullptr);
    kinds.erase(fd);
    ::close(fd);
  }

  Result<void> bind_sockets() {
    for (int attempt = 0; attempt < 16; ++attempt) {
      udp = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      tcp = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (udp < 0 || tcp < 0) return fail_errno("socket", errno);
      int one = 1;
      ::setsockopt(udp, IPPROTO_IP, IP_PKTINFO, &one, sizeof one);
      ::setsockopt(tcp, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      int big = 4 << 20;
      // Room for every namespace's burst (the firewall lets each send at most 200 queries at
      // once); FORCE, as root, past net.core.rmem_max.
      if (::setsockopt(udp, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big) != 0) {
        ::setsockopt(udp, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
      }
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(options.port);
      if (::bind(udp, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        return fail_errno("bind udp port " + std::to_string(options.port), errno);
      }
      socklen_t len = sizeof a;
      ::getsockname(udp, reinterpret_cast<sockaddr*>(&a), &len);
      // TCP on the same port number: the redirect maps port 53 of both to one port.
      if (::bind(tcp, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 && ::listen(tcp, 128) == 0) {
        port = ntohs(a.sin_port);
        return ok();
      }
      const int err = errno;
      ::close(udp);
      ::close(tcp);
      udp = tcp = -1;
      if (options.port != 0)
        return fail_errno("bind tcp port " + std::to_string(options.port), err);
    }
    return fail(ErrorCode::kConflict, "no port free for both UDP and TCP after 16 tries");
  }

  // The link a namespace's queries come in on: its veth's host end (private) or the bridge that
  // end is a port of (bridged), asked of the kernel over netlink (not sysfs: netcell/host.h).
  static int ingress_of(const NamespaceInfo& info) {
    if (info.host_interface.empty()) return 0;
    if (info.mode == IsolationMode::kPrivate) {
      return static_cast<int>(::if_nametoindex(info.host_interface.c_str()));
    }
    return link_master_index(info.host_interface).value_or(0);
  }

  static std::optional<std::uint32_t> source_address(const NamespaceInfo& info) {
    auto address = primary_address(info);
    if (!address || !address->is_v4()) return std::nullopt;
    return address->v4_host_order();
  }

  // `keep_counts`: the namespace is read again, not gone.
  void forget(const std::string& name, bool keep_counts = false) {
    if (!keep_counts) {
      std::lock_guard lock(counts_mutex);
      counts.erase(name);
    }
    auto it = source_of.find(name);
    if (it == source_of.end()) return;
    by_source.erase(it->second);
    source_of.erase(it);
    last_name.erase(name);
  }

  void remember(NamespaceInfo info) {
    forget(info.name, /*keep_counts=*/true);
    auto source = info.egress ? source_address(info) : std::nullopt;
    if (!source) {
      forget(info.name);
      return;
    }
    Entry e;
    e.ifindex = ingress_of(info);
    e.tokens = options.queries_per_second * 2;
    e.refilled = Clock::now();
    e.info = std::move(info);
    source_of[e.info.name] = *source;
    by_source[*source] = std::move(e);
  }

  void reload_all() {
    last_full_reload = Clock::now();
    std::set<std::string> seen;
    for (auto& info : mgr.snapshot()) {
      seen.insert(info.name);
      remember(std::move(info));
    }
    for (auto it = source_of.begin(); it != source_of.end();) {
      auto next = std::next(it);
      if (!seen.count(it->first)) forget(it->first);
      it = next;
    }
  }

  void reload_one(const std::string& name) {
    auto info = mgr.snapshot(name);
    if (info && *info) {
      remember(std::move(**info));
    } else {
      forget(name);
    }
  }

  Entry* lookup(std::uint32_t source) {
    auto it = by_source.find(source);
    if (it != by_source.end()) return &it->second;
    // Unknown: maybe made since the last change we saw. First the records' changes queued now
    // (a namespace made a moment ago: its record's event may wait behind this query).
    on_inotify();
    it = by_source.find(source);
    if (it != by_source.end()) return &it->second;
    // Then a full read, at most 10 times a second.
    if (Clock::now() - last_full_reload > std::chrono::milliseconds(100)) {
      reload_all();
      it = by_source.find(source);
      if (it != by_source.end()) return &it->second;
    }
    return nullptr;
  }

  bool take_token(Entry& e) {
    const auto now = Clock::now();
    const double elapsed = std::chrono::duration<double>(now - e.refilled).count();
    e.refilled = now;
    e.tokens =
        std::min(options.queries_per_second * 2, e.tokens + elapsed * options.queries_per_second);
    if (e.tokens < 1) return false;
    e.tokens -= 1;
    return true;
  }

  void reply(const Client& c, const std::vector<std::uint8_t>& data) {
    if (data.empty()) return;
    if (c.tcp) {
      auto it = clients.find(c.conn);
      if (it == clients.end() || it->second.serial != c.conn_serial) return;  // it went away
      std::vector<std::uint8_t> framed = {static_cast<std::uint8_t>(data.size() >> 8),
                                          static_cast<std::uint8_t>(data.size() & 0xFF)};
      framed.insert(framed.end(), data.begin(), data.end());
      ssize_t n = ::send(c.conn, framed.data(), framed.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n != static_cast<ssize_t>(framed.size())) drop_client(c.conn);
      return;
    }
    // From the address the query went to, so the kernel's NAT maps the reply back to port 53.
    iovec iov{const_cast<std::uint8_t*>(data.data()), data.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(in_pktinfo))] = {};
    msghdr msg{};
    msg.msg_name = const_cast<sockaddr_in*>(&c.peer);
    msg.msg_namelen = sizeof c.peer;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = IPPROTO_IP;
    cm->cmsg_type = IP_PKTINFO;
    cm->cmsg_len = CMSG_LEN(sizeof(in_pktinfo));
    in_pktinfo info{};
    info.ipi_spec_dst = c.local;
    std::memcpy(CMSG_DATA(cm), &info, sizeof info);
    ::sendmsg(udp, &msg, MSG_DONTWAIT);
  }

  void refuse(const Client& c, const std::vector<std::uint8_t>& query, const Question& q,
              const Entry& e) {
    const std::uint16_t rcode =
        e.info.egress->refuse_with == DnsRefusal::kNxDomain ? kRcodeNxDomain : kRcodeRefused;
    reply(c, error_reply(query.data(), query.size(), rcode));
    count(e.info.name, &ResolverCounts::refused);
    DeniedQuery record;
    record.time_unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
    record.ns = e.info.name;
    record.client = IpAddress::v4(host_order(c.peer.sin_addr));
    record.name = q.name;
    record.qtype = q.qtype;
    record.rcode = rcode;
    if (auto logged = append_flow_log(mgr.options().run_dir, e.info.name, record); !logged) {
      std::fprintf(stderr, "netcell-service: log: %s\n", logged.error().to_string().c_str());
    }
  }

  void handle_query(const Client& c, std::vector<std::uint8_t> query) {
    Entry* e = lookup(host_order(c.peer.sin_addr));
    if (e == nullptr) return;  // not a namespace of this instance's: no answer at all
    if (!take_token(*e)) {
      count(e->info.name, &ResolverCounts::limited);
      return;
    }
    auto q = parse_query(query.data(), query.size());
    if (!q) {
      reply(c, error_reply(query.data(), query.size(), kRcodeFormErr));
      count(e->info.name, &ResolverCounts::failed);
      return;
    }
    if (!e->info.egress->name_allowed(q->name) || q->qclass != kClassIn) {
      // The policy may have changed since this process read it: ask the record once more.
      reload_one(e->info.name);
      e = lookup(host_order(c.peer.sin_addr));
      if (e == nullptr) return;
      if (!e->info.egress->name_allowed(q->name) || q->qclass != kClassIn) {
        refuse(c, query, *q, *e);
        return;
      }
    }
    if (pending.size() >= kMaxPending || waiting[e->info.name] >= kMaxPendingPerNamespace ||
        e->info.upstream_dns.empty()) {
      reply(c, error_reply(query.data(), query.size(), kRcodeServFail));
      count(e->info.name, &ResolverCounts::failed);
      return;
    }
    auto p = std::make_unique<Pending>();
    p->client = c;
    p->query = std::move(query);
    p->question = *q;
    p->ns = e->info.name;
    send_upstream(std::move(p));
  }

  // Sends the query to upstream p->upstream (over UDP, or TCP when p->over_tcp) with an id of its
  // own; SERVFAIL when no upstream is left.
  void send_upstream(std::unique_ptr<Pending> p) {
    Entry* e = nullptr;
    if (auto it = source_of.find(p->ns); it != source_of.end()) e = &by_source[it->second];
    std::vector<IpAddress> upstreams;
    if (e != nullptr) {
      for (const auto& a : e->info.upstream_dns) {
        if (a.is_v4()) upstreams.push_back(a);
      }
    }
    int fd =
        p->upstream < upstreams.size()
            ? ::socket(AF_INET,
                       (p->over_tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)
            : -1;
    if (fd < 0) {  // no upstream left, or no socket for the next one
      reply(p->client, error_reply(p->query.data(), p->query.size(), kRcodeServFail));
      count(p->ns, &ResolverCounts::failed);
      return;
    }
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(53);
    to.sin_addr.s_addr = htonl(upstreams[p->upstream].v4_host_order());
    p->upstream_id = static_cast<std::uint16_t>(random());
    p->deadline = Clock::now() + options.upstream_timeout;
    p->fd = fd;
    p->tcp_in.clear();
    p->tcp_connected = false;
    int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to);
    if (rc != 0 && errno != EINPROGRESS) {
      ::close(fd);
      ++p->upstream;
      send_upstream(std::move(p));
      return;
    }
    if (!p->over_tcp) {
      std::vector<std::uint8_t> out = p->query;
      out[0] = static_cast<std::uint8_t>(p->upstream_id >> 8);
      out[1] = static_cast<std::uint8_t>(p->upstream_id & 0xFF);
      ::send(fd, out.data(), out.size(), MSG_DONTWAIT);
      watch(fd, Kind::kUpstream, EPOLLIN);
    } else {
      watch(fd, Kind::kUpstream, EPOLLIN | EPOLLOUT);
    }
    ++waiting[p->ns];
    pending[fd] = std::move(p);
  }

  std::unique_ptr<Pending> take_pending(std::map<int, std::unique_ptr<Pending>>::iterator it) {
    auto p = std::move(it->second);
    pending.erase(it);
    if (auto w = waiting.find(p->ns); w != waiting.end() && --w->second == 0) waiting.erase(w);
    return p;
  }

  void retry_next(int fd, bool over_tcp) {
    auto p = take_pending(pending.find(fd));
    unwatch(fd);
    if (over_tcp) {
      p->over_tcp = true;
    } else {
      ++p->upstream;
      p->over_tcp = false;
    }
    send_upstream(std::move(p));
  }

  void on_upstream(int fd, std::uint32_t events) {
    auto it = pending.find(fd);
    if (it == pending.end()) return;
    Pending& p = *it->second;
    std::vector<std::uint8_t> message;
    if (!p.over_tcp) {
      std::uint8_t buf[kMaxMessage];
      ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
        retry_next(fd, false);  // refused (ICMP) or gone: the next upstream
        return;
      }
      message.assign(buf, buf + n);
    } else {
      if ((events & EPOLLOUT) != 0 && !p.tcp_connected) {
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
          p.over_tcp = false;
          retry_next(fd, false);
          return;
        }
        p.tcp_connected = true;
        std::vector<std::uint8_t> out = {static_cast<std::uint8_t>(p.query.size() >> 8),
                                         static_cast<std::uint8_t>(p.query.size() & 0xFF)};
        out.insert(out.end(), p.query.begin(), p.query.end());
        out[2] = static_cast<std::uint8_t>(p.upstream_id >> 8);
        out[3] = static_cast<std::uint8_t>(p.upstream_id & 0xFF);
        ::send(fd, out.data(), out.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = fd;
        ::epoll_ctl(epoll, EPOLL_CTL_MOD, fd, &ev);
        return;
      }
      std::uint8_t buf[16384];
      ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
      if (n <= 0) {
        p.over_tcp = false;
        retry_next(fd, false);
        return;
      }
      p.tcp_in.insert(p.tcp_in.end(), buf, buf + n);
      if (p.tcp_in.size() > kMaxMessage + 2) {
        p.over_tcp = false;
        retry_next(fd, false);
        return;
      }
      if (p.tcp_in.size() < 2) return;
      const std::size_t want = (std::size_t{p.tcp_in[0]} << 8) | p.tcp_in[1];
      if (p.tcp_in.size() < want + 2) return;
      message.assign(p.tcp_in.begin() + 2, p.tcp_in.begin() + 2 + static_cast<long>(want));
    }
    Question asked = p.question;
    asked.id = p.upstream_id;
    auto answer = read_answer(message.data(), message.size(), asked);
    if (!answer) {
      if (p.over_tcp) {
        p.over_tcp = false;
        retry_next(fd, false);
      }
      return;  // not the answer (spoofed or stray): keep waiting until the deadline
    }
    if (answer->truncated && !p.over_tcp) {
      // Learn from the whole answer: asked again over TCP. A TCP client gets the full one; a UDP
      // client too if it fits in its UDP size, else the truncated one (and asks over TCP itself).
      retry_next(fd, true);
      return;
    }
    auto done = take_pending(it);
    unwatch(fd);
    finish(*done, std::move(message), *answer);
  }

  void finish(Pending& p, std::vector<std::uint8_t> message, const Answer& answer) {
    message[0] = static_cast<std::uint8_t>(p.question.id >> 8);
    message[1] = static_cast<std::uint8_t>(p.question.id & 0xFF);
    if (!p.client.tcp && message.size() > 512) {
      // Over UDP a client takes what it said it can (EDNS) or 512 bytes; past that it gets the
      // answer truncated and asks over TCP. The addresses learned are all of them either way.
      const std::size_t limit = udp_size_of(p.query.data(), p.query.size());
      if (message.size() > limit) {
        message = error_reply(p.query.data(), p.query.size(), 0);
        if (message.size() > 2) message[2] |= 0x02;  // TC
      }
    }
    if (answer.rcode != 0 || answer.addresses.empty()) {
      reply(p.client, message);
      count(p.ns, &ResolverCounts::answered);
      return;
    }
    auto it = source_of.find(p.ns);
    if (it == source_of.end()) {
      reply(p.client, error_reply(p.query.data(), p.query.size(), kRcodeServFail));
      count(p.ns, &ResolverCounts::failed);
      return;
    }
    Entry& e = by_source[it->second];
    // Keyed by what learn takes from this answer (its first kMaxLearnedPerAnswer addresses), so
    // a round-robin upstream's next order is learned too.
    std::vector<IpAddress> sorted;
    for (const auto& a : answer.addresses) {
      if (sorted.size() == kMaxLearnedPerAnswer) break;
      if (std::find(sorted.begin(), sorted.end(), a) == sorted.end()) sorted.push_back(a);
    }
    std::sort(sorted.begin(), sorted.end(),
              [](const IpAddress& a, const IpAddress& b) { return a.to_string() < b.to_string(); });
    std::string key = p.ns;
    key.append(1, '\n').append(p.question.name);
    for (const auto& a : sorted) key.append(1, '\n').append(a.to_string());
    const auto now = Clock::now();
    const auto record = learned_record(p.ns);
    auto cached = learned_until.find(key);
    if (cached == learned_until.end() || cached->second.until <= now ||
        cached->second.record != record || record.first == 0) {
      auto learned = mgr.learn(e.info, p.question.name, answer.addresses, answer.ttl);
      if (!learned) {
        // Gone, replaced, or no longer allowed: fail closed, and read the record again.
        reload_one(p.ns);
        const bool refused = learned.error().code() == ErrorCode::kPermissionDenied;
        if (refused && source_of.count(p.ns)) {
          refuse(p.client, p.query, p.question, by_source[source_of[p.ns]]);
        } else {
          reply(p.client, error_reply(p.query.data(), p.query.size(), kRcodeServFail));
          count(p.ns, &ResolverCounts::failed);
        }
        return;
      }
      // Told again once half its time is gone (learn keeps an element that lasts that long).
      const auto seconds = e.info.egress->learn_seconds(answer.ttl);
      learned_until[key] = {now + std::chrono::milliseconds(std::int64_t{seconds} * 500),
                            learned_record(p.ns)};
      if (learned_until.size() > 100000) learned_until.clear();
      auto& names = last_name[p.ns];
      for (const auto& a : answer.addresses) {
        names[a.to_string()] = p.question.name;
      }
      if (names.size() > kMaxLearnedPerNamespace) names.clear();
    }
    reply(p.client, message);
    count(p.ns, &ResolverCounts::answered);
  }

  // Which version of the namespace's learned record is on disk: its inode and change time.
  std::pair<ino_t, std::int64_t> learned_record(const std::string& ns) const {
    struct stat st {};
    const std::string path = mgr.options().run_dir + "/learned/" + ns + ".json";
    if (::stat(path.c_str(), &st) != 0) return {0, 0};
    return {st.st_ino, std::int64_t{st.st_ctim.tv_sec} * 1'000'000'000 + st.st_ctim.tv_nsec};
  }

  void on_udp() {
    for (int i = 0; i < 256; ++i) {
      std::uint8_t buf[kMaxMessage];
      sockaddr_in peer{};
      iovec iov{buf, sizeof buf};
      alignas(cmsghdr) char control[CMSG_SPACE(sizeof(in_pktinfo))];
      msghdr msg{};
      msg.msg_name = &peer;
      msg.msg_namelen = sizeof peer;
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      ssize_t n = ::recvmsg(udp, &msg, MSG_DONTWAIT);
      if (n < 0) return;
      Client c;
      c.peer = peer;
      int ifindex = 0;
      for (cmsghdr* cm = CMSG_FIRSTHDR(&msg); cm != nullptr; cm = CMSG_NXTHDR(&msg, cm)) {
        if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO) {
          in_pktinfo info;
          std::memcpy(&info, CMSG_DATA(cm), sizeof info);
          ifindex = info.ipi_ifindex;
          c.local = info.ipi_addr;
        }
      }
      Entry* e = lookup(host_order(peer.sin_addr));
      // Only from the namespace's own link: the firewall's guard makes the source address
      // trustworthy there, and nowhere else.
      if (e == nullptr || e->ifindex == 0 || ifindex != e->ifindex) continue;
      handle_query(c, std::vector<std::uint8_t>(buf, buf + n));
    }
  }

  void drop_client(int fd) {
    clients.erase(fd);
    unwatch(fd);
  }

  void on_tcp_listen() {
    for (int i = 0; i < 64; ++i) {
      sockaddr_in peer{};
      socklen_t len = sizeof peer;
      int fd =
          ::accept4(tcp, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE) {
          // Out of descriptors: the pending connection stays queued and the socket readable;
          // stop asking until the next tick instead of spinning.
          epoll_event ev{};
          ev.data.fd = tcp;
          ::epoll_ctl(epoll, EPOLL_CTL_MOD, tcp, &ev);
          listen_paused = true;
        }
        return;
      }
      if (clients.size() >= kMaxTcpClients || lookup(host_order(peer.sin_addr)) == nullptr) {
        ::close(fd);
        continue;
      }
      TcpClient c;
      c.serial = next_serial++;
      c.peer = peer;
      c.idle_deadline = Clock::now() + kTcpIdle;
      clients[fd] = std::move(c);
      watch(fd, Kind::kTcpClient);
    }
  }

  void on_tcp_client(int fd) {
    auto it = clients.find(fd);
    if (it == clients.end()) return;
    std::uint8_t buf[16384];
    ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0) {
      drop_client(fd);
      return;
    }
    TcpClient& c = it->second;
    c.in.insert(c.in.end(), buf, buf + n);
    c.idle_deadline = Clock::now() + kTcpIdle;
    while (c.in.size() >= 2) {
      const std::size_t want = (std::size_t{c.in[0]} << 8) | c.in[1];
      if (c.in.size() < want + 2) break;
      std::vector<std::uint8_t> query(c.in.begin() + 2, c.in.begin() + 2 + static_cast<long>(want));
      c.in.erase(c.in.begin(), c.in.begin() + 2 + static_cast<long>(want));
      Client client;
      client.tcp = true;
      client.conn = fd;
      client.conn_serial = c.serial;
      client.peer = c.peer;
      const std::uint64_t serial = c.serial;
      handle_query(client, std::move(query));
      auto again = clients.find(fd);
      if (again == clients.end() || again->second.serial != serial) return;  // dropped meanwhile
    }
  }

  void on_timer() {
    std::uint64_t ticks;
    (void)!::read(timer, &ticks, sizeof ticks);
    if (listen_paused) {
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.fd = tcp;
      ::epoll_ctl(epoll, EPOLL_CTL_MOD, tcp, &ev);
      listen_paused = false;
    }
    const auto now = Clock::now();
    std::vector<int> late;
    for (auto& [fd, p] : pending) {
      if (p->deadline <= now) late.push_back(fd);
    }
    for (int fd : late) {
      auto& p = pending[fd];
      p->over_tcp = false;
      retry_next(fd, false);
    }
    std::vector<int> idle;
    for (auto& [fd, c] : clients) {
      if (c.idle_deadline <= now) idle.push_back(fd);
    }
    for (int fd : idle) drop_client(fd);
  }

  void on_inotify() {
    auto names = changed_records(inotify);
    if (!names) {
      reload_all();
      return;
    }
    for (const auto& name : *names) reload_one(name);
  }

  void on_flow_log() {
    if (!flow_log) return;
    auto drained = flow_log->drain(
        [&](const DeniedFlow& flow) {
          if (flow.ns.empty()) return;
          (void)append_flow_log(mgr.options().run_dir, flow.ns, flow);
        },
        [&](const std::string& ns, const IpAddress& dst) -> std::optional<std::string> {
          auto names = last_name.find(ns);
          if (names == last_name.end()) return std::nullopt;
          auto it = names->second.find(dst.to_string());
          if (it == names->second.end()) return std::nullopt;
          return it->second;
        });
    if (!drained) {
      std::fprintf(stderr, "netcell-service: flow log: %s\n", drained.error().to_string().c_str());
    }
  }
};

Result<std::unique_ptr<Resolver>> Resolver::open(NamespaceManager& mgr, const ResolverOptions& o) {
  auto impl = std::make_unique<Impl>(mgr, o);
  impl->epoll = ::epoll_create1(EPOLL_CLOEXEC);
  if (impl->epoll < 0) return fail_errno("epoll_create1", errno);
  NETCELL_TRY(impl->bind_sockets());
  impl->watch(impl->udp, Kind::kUdp);
  impl->watch(impl->tcp, Kind::kTcpListen);
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGHUP);
  sigaddset(&mask, SIGPIPE);
  ::sigprocmask(SIG_BLOCK, &mask, nullptr);
  impl->signals = ::signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  if (impl->signals < 0) return fail_errno("signalfd", errno);
  impl->watch(impl->signals, Kind::kSignal);
  auto watching = watch_records(mgr.options().run_dir);
  if (!watching) return fail(watching.error());
  impl->inotify = *watching;
  impl->watch(impl->inotify, Kind::kInotify);
  impl->timer = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (impl->timer < 0) return fail_errno("timerfd_create", errno);
  itimerspec every{{0, 100'000'000}, {0, 100'000'000}};
  ::timerfd_settime(impl->timer, 0, &every, nullptr);
  impl->watch(impl->timer, Kind::kTimer);
  if (auto reader = FlowLogReader::open(mgr); reader) {
    impl->flow_log.emplace(std::move(*reader));
    impl->watch(impl->flow_log->fd(), Kind::kFlowLog);
  } else {
    std::fprintf(stderr, "netcell-service: no denied-flow log: %s\n",
                 reader.error().to_string().c_str());
  }
  impl->reload_all();
  return std::unique_ptr<Resolver>(new Resolver(std::move(impl)));
}

Resolver::Resolver(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Resolver::~Resolver() = default;

std::uint16_t Resolver::port() const {
  return impl_->port;
}

std::map<std::string, ResolverCounts> Resolver::counts() const {
  std::lock_guard lock(impl_->counts_mutex);
  return impl_->counts;
}

int Resolver::run(int ready_fd) {
  if (ready_fd >= 0) {
    (void)!::write(ready_fd, "ready\n", 6);
    ::close(ready_fd);
  }
  Impl& s = *impl_;
  for (;;) {
    epoll_event events[64];
    int n = ::epoll_wait(s.epoll, events, 64, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      std::perror("netcell-service: epoll_wait");
      return 1;
    }
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      auto kind = s.kinds.find(fd);
      if (kind == s.kinds.end()) continue;  // closed by an earlier event of this round
      switch (kind->second) {
        case Kind::kUdp: s.on_udp(); break;
        case Kind::kTcpListen: s.on_tcp_listen(); break;
        case Kind::kTcpClient: s.on_tcp_client(fd); break;
        case Kind::kUpstream: s.on_upstream(fd, events[i].events); break;
        case Kind::kTimer: s.on_timer(); break;
        case Kind::kInotify: s.on_inotify(); break;
        case Kind::kFlowLog: s.on_flow_log(); break;
        case Kind::kSignal: {
          signalfd_siginfo si{};
          if (::read(s.signals, &si, sizeof si) != sizeof si) break;
          if (si.ssi_signo == SIGHUP) {
            s.reload_all();
            break;
          }
          if (si.ssi_signo == SIGPIPE) break;
          return 0;
        }
      }
    }
  }
}

}  // namespace netcell::service
