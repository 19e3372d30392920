// netcell-bench-dns: DNS lookups over UDP from inside many network namespaces, from one process:
// the resolver benchmarks (bench/lib/resolver.sh). A socket is made inside each path's namespace
// (setns there and straight back on this, the only thread) and connected to the path's server;
// the loop then drives every socket from here.
//
//   netcell-bench-dns once|latency|load [options] PATHS
// PATHS: one path a line, "LABEL NETNS SERVER NAME": the namespace (a name under /run/netns, or
// "-" for this one), the server's IPv4 address (port 53) and the name asked (type A); a "%u" in
// NAME is replaced by a count, so that every query asks a new name.
//   once     one lookup per path, one after the other (every namespace's first lookup); with
//            --tries=K a lookup unanswered after the timeout is asked again, up to K times in all,
//            as a stub resolver would (its latency then runs from the first try; "retried" counts
//            them)
//   latency  --count=K rounds, each one query per path in turn, one outstanding at a time (all
//            paths measured under the same conditions), a round starting --round-us=U after the
//            one before at the earliest (so that no namespace outruns a per-namespace rate limit);
//            --warmup=W rounds first, not recorded
//   load     --seconds=S of closed-loop load per LABEL group, one group after the other: every
//            socket keeps --window=W queries outstanding, at most --rate=R a second (0: no cap)
// Options: --timeout-ms=T (a query unanswered by then is lost; default 1000), --tries=K (once),
// --out=CSV (every answered query: label,path,us). Prints one JSON object: per label sent, ok
// (NOERROR with an answer), error (any other answer), lost, retried, p50/p95/p99 latency (µs)
// and, for load, seconds and qps (ok answers a second). Exits 1 when a path could not be set up.
#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Path {
  std::string label, netns, server, name;
  int fd = -1;
  std::uint16_t next_id = 1;
  std::uint64_t count = 0;  // for "%u"
  struct Slot {
    std::uint16_t id;
    Clock::time_point sent;
  };
  std::vector<Slot> out;  // outstanding queries
};

struct Tally {
  std::uint64_t sent = 0, ok = 0, error = 0, lost = 0, retried = 0;
  std::uint64_t ok_in_time = 0;  // load: the answers that came back within the S seconds
  std::vector<float> us;
  double seconds = 0;
};

struct Options {
  int count = 1000, warmup = 20, window = 4, tries = 1;
  double seconds = 10, rate = 0;
  int timeout_ms = 1000;
  long round_us = 0;
  std::string out;
};

// Makes a UDP socket inside `netns` (this thread enters it and comes straight back) connected to
// server:53; -1 with a message on failure.
int open_socket(const Path& p) {
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(53);
  if (::inet_pton(AF_INET, p.server.c_str(), &to.sin_addr) != 1) {
    std::fprintf(stderr, "netcell-bench-dns: bad server %s\n", p.server.c_str());
    return -1;
  }
  int home = -1, there = -1;
  if (p.netns != "-") {
    home = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    there = ::open(("/run/netns/" + p.netns).c_str(), O_RDONLY | O_CLOEXEC);
    if (home < 0 || there < 0 || ::setns(there, CLONE_NEWNET) != 0) {
      std::fprintf(stderr, "netcell-bench-dns: enter %s: %s\n", p.netns.c_str(),
                   std::strerror(errno));
      if (home >= 0) ::close(home);
      if (there >= 0) ::close(there);
      return -1;
    }
  }
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  const int err = errno;
  if (home >= 0) {
    // Every later socket would be made in the wrong namespace: give up at once.
    if (::setns(home, CLONE_NEWNET) != 0) {
      std::perror("netcell-bench-dns: setns back");
      std::abort();
    }
    ::close(home);
    ::close(there);
  }
  if (fd < 0) {
    std::fprintf(stderr, "netcell-bench-dns: socket in %s: %s\n", p.netns.c_str(),
                 std::strerror(err));
    return -1;
  }
  if (::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
    std::fprintf(stderr, "netcell-bench-dns: connect %s: %s\n", p.server.c_str(),
                 std::strerror(errno));
    ::close(fd);
    return -1;
  }
  return fd;
}

// A standard query (RD set) for `name`, type A, class IN.
std::vector<std::uint8_t> query(std::uint16_t id, std::string_view name) {
  std::vector<std::uint8_t> q = {static_cast<std::uint8_t>(id >> 8),
                                 static_cast<std::uint8_t>(id & 0xFF),
                                 0x01,
                                 0x00,
                                 0,
                                 1,
                                 0,
                                 0,
                                 0,
                                 0,
                                 0,
                                 0};
  std::size_t at = 0;
  while (at <= name.size()) {
    std::size_t dot = name.find('.', at);
    if (dot == std::string_view::npos) dot = name.size();
    if (dot > at) {
      q.push_back(static_cast<std::uint8_t>(std::min<std::size_t>(dot - at, 63)));
      q.insert(q.end(), name.begin() + static_cast<long>(at),
               name.begin() + static_cast<long>(at + std::min<std::size_t>(dot - at, 63)));
    }
    at = dot + 1;
  }
  q.insert(q.end(), {0, 0, 1, 0, 1});
  return q;
}

std::string name_of(Path& p) {
  auto pos = p.name.find("%u");
  if (pos == std::string::npos) return p.name;
  return p.name.substr(0, pos) + std::to_string(p.count++) + p.name.substr(pos + 2);
}

bool send_one(Path& p, Tally& t) {
  const std::uint16_t id = p.next_id++;
  auto q = query(id, name_of(p));
  // The clock starts before the send: the kernel may carry the query all the way to a server in
  // another namespace, and the answer back, before send() returns.
  const auto sent = Clock::now();
  if (::send(p.fd, q.data(), q.size(), MSG_DONTWAIT) != static_cast<ssize_t>(q.size())) {
    return false;
  }
  p.out.push_back({id, sent});
  ++t.sent;
  return true;
}

// Reads every datagram waiting on p's socket and matches it to an outstanding query.
void receive(Path& p, Tally& t, std::ofstream* csv, std::size_t index) {
  std::uint8_t buf[4096];
  for (;;) {
    ssize_t n = ::recv(p.fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if (errno == EINTR) continue;
      return;  // ECONNREFUSED and the like: the query stays outstanding until its timeout
    }
    if (n < 12 || (buf[2] & 0x80) == 0) continue;
    const std::uint16_t id = static_cast<std::uint16_t>((buf[0] << 8) | buf[1]);
    auto it =
        std::find_if(p.out.begin(), p.out.end(), [&](const Path::Slot& s) { return s.id == id; });
    if (it == p.out.end()) continue;  // late (already counted lost) or stray
    const float us = std::chrono::duration<float, std::micro>(Clock::now() - it->sent).count();
    p.out.erase(it);
    const int rcode = buf[3] & 0x0F;
    const int answers = (buf[6] << 8) | buf[7];
    if (rcode == 0 && answers > 0) {
      ++t.ok;
      t.us.push_back(us);
      if (csv != nullptr) *csv << p.label << ',' << index << ',' << us << '\n';
    } else {
      ++t.error;
    }
  }
}

void expire(Path& p, Tally& t, Clock::time_point now, std::chrono::milliseconds timeout) {
  auto late = std::remove_if(p.out.begin(), p.out.end(),
                             [&](const Path::Slot& s) { return now - s.sent >= timeout; });
  t.lost += static_cast<std::uint64_t>(p.out.end() - late);
  p.out.erase(late, p.out.end());
}

// One lookup on path p, answered or given up after `tries` timeouts, before the next.
void one_query(Path& p, Tally& t, std::ofstream* csv, std::size_t index,
               std::chrono::milliseconds timeout, int tries = 1) {
  std::optional<Clock::time_point> first;
  for (int attempt = 0; attempt < tries; ++attempt) {
    if (!send_one(p, t)) continue;
    if (!first) first = p.out.back().sent;
    // An answer to this try counts from the first one (what the asking program waited).
    p.out.back().sent = *first;
    const auto deadline = Clock::now() + timeout;
    const std::uint64_t answered = t.ok + t.error;
    while (!p.out.empty()) {
      const auto now = Clock::now();
      if (now >= deadline) break;
      pollfd pfd{p.fd, POLLIN, 0};
      const int left =
          static_cast<int>(
              std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count()) +
          1;
      if (::poll(&pfd, 1, left) > 0) receive(p, t, csv, index);
    }
    p.out.clear();
    if (t.ok + t.error > answered) {
      if (attempt > 0) ++t.retried;
      return;
    }
  }
  ++t.lost;
}

// Closed-loop load on the paths `group` (indexes into paths) for o.seconds.
void load(std::vector<Path>& paths, const std::vector<std::size_t>& group, const Options& o,
          Tally& t, std::ofstream* csv) {
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  for (std::size_t i : group) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = i;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, paths[i].fd, &ev);
  }
  const auto timeout = std::chrono::milliseconds(o.timeout_ms);
  const auto start = Clock::now();
  const auto stop =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.seconds));
  std::vector<std::uint64_t> sent(paths.size(), 0);
  auto last_expire = start;
  const std::uint64_t ok_before = t.ok;
  for (auto now = start; now < stop; now = Clock::now()) {
    const double elapsed = std::chrono::duration<double>(now - start).count();
    for (std::size_t i : group) {
      Path& p = paths[i];
      while (static_cast<int>(p.out.size()) < o.window &&
             (o.rate <= 0 || static_cast<double>(sent[i]) < o.rate * elapsed + 1)) {
        if (!send_one(p, t)) break;
        ++sent[i];
      }
    }
    epoll_event events[256];
    const int n = ::epoll_wait(ep, events, 256, 1);
    for (int k = 0; k < n; ++k) {
      const std::size_t i = events[k].data.u64;
      receive(paths[i], t, csv, i);
    }
    if (now - last_expire > std::chrono::milliseconds(10)) {
      for (std::size_t i : group) expire(paths[i], t, now, timeout);
      last_expire = now;
    }
  }
  t.ok_in_time = t.ok - ok_before;
  t.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  // What is still outstanding gets its timeout to come back; it does not count towards qps.
  const auto drain_until = Clock::now() + timeout;
  for (auto now = Clock::now(); now < drain_until; now = Clock::now()) {
    bool any = false;
    for (std::size_t i : group) any = any || !paths[i].out.empty();
    if (!any) break;
    epoll_event events[256];
    const int n = ::epoll_wait(ep, events, 256, 10);
    for (int k = 0; k < n; ++k) receive(paths[events[k].data.u64], t, csv, events[k].data.u64);
  }
  for (std::size_t i : group) {
    t.lost += paths[i].out.size();
    paths[i].out.clear();
  }
  ::close(ep);
}

double pct(std::vector<float>& v, double p) {
  if (v.empty()) return -1;
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(p * static_cast<double>(v.size() - 1))];
}

int usage() {
  std::fprintf(stderr,
               "usage: netcell-bench-dns once|latency|load [--count=K] [--warmup=W] "
               "[--seconds=S] [--window=W] [--rate=R] [--timeout-ms=T] [--tries=K] [--round-us=U] "
               "[--out=CSV] "
               "PATHS\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return usage();
  const std::string mode = argv[1];
  if (mode != "once" && mode != "latency" && mode != "load") return usage();
  Options o;
  std::string paths_file;
  for (int i = 2; i < argc; ++i) {
    std::string_view arg = argv[i];
    auto value = [&](std::string_view flag) -> const char* {
      return arg.substr(0, flag.size()) == flag ? argv[i] + flag.size() : nullptr;
    };
    if (const char* v = value("--count=")) {
      o.count = std::atoi(v);
    } else if (const char* v2 = value("--warmup=")) {
      o.warmup = std::atoi(v2);
    } else if (const char* v3 = value("--seconds=")) {
      o.seconds = std::atof(v3);
    } else if (const char* v4 = value("--window=")) {
      o.window = std::atoi(v4);
    } else if (const char* v5 = value("--rate=")) {
      o.rate = std::atof(v5);
    } else if (const char* v6 = value("--timeout-ms=")) {
      o.timeout_ms = std::atoi(v6);
    } else if (const char* v9 = value("--round-us=")) {
      o.round_us = std::atol(v9);
    } else if (const char* v8 = value("--tries=")) {
      o.tries = std::atoi(v8);
    } else if (const char* v7 = value("--out=")) {
      o.out = v7;
    } else if (arg.substr(0, 2) != "--" && paths_file.empty()) {
      paths_file = argv[i];
    } else {
      return usage();
    }
  }
  if (paths_file.empty() || o.count < 1 || o.count > 1000000 || o.warmup < 0 || o.window < 1 ||
      o.window > 64 || !(o.seconds > 0 && o.seconds <= 600) || o.timeout_ms < 1 ||
      o.timeout_ms > 10000 || o.tries < 1 || o.tries > 10 || o.round_us < 0 ||
      o.round_us > 1000000) {
    return usage();
  }
  std::vector<Path> paths;
  {
    std::ifstream in(paths_file);
    for (std::string line; std::getline(in, line);) {
      std::istringstream f(line);
      Path p;
      if (f >> p.label >> p.netns >> p.server >> p.name) paths.push_back(std::move(p));
    }
  }
  if (paths.empty() || paths.size() > 4096) {
    std::fprintf(stderr, "netcell-bench-dns: %s: 1..4096 paths needed\n", paths_file.c_str());
    return 2;
  }
  std::ofstream csv_file;
  std::ofstream* csv = nullptr;
  if (!o.out.empty()) {
    csv_file.open(o.out);
    csv_file << "label,path,us\n";
    csv = &csv_file;
  }
  std::vector<std::string> labels;  // in the order they first appear
  std::map<std::string, Tally> tallies;
  for (const auto& p : paths) {
    if (!tallies.count(p.label)) labels.push_back(p.label);
    tallies[p.label];
  }
  const auto timeout = std::chrono::milliseconds(o.timeout_ms);
  int failed = 0;
  if (mode == "once") {
    // A socket at a time: a thousand namespaces need no thousand descriptors.
    for (std::size_t i = 0; i < paths.size(); ++i) {
      Path& p = paths[i];
      p.fd = open_socket(p);
      if (p.fd < 0) {
        failed = 1;
        ++tallies[p.label].lost;
        continue;
      }
      one_query(p, tallies[p.label], csv, i, timeout, o.tries);
      ::close(p.fd);
      p.fd = -1;
    }
  } else {
    for (auto& p : paths) {
      p.fd = open_socket(p);
      if (p.fd < 0) failed = 1;
    }
    if (failed) return 1;
    if (mode == "latency") {
      Tally discard;
      const auto round = std::chrono::microseconds(o.round_us);
      auto next = Clock::now();
      for (int r = 0; r < o.warmup + o.count; ++r) {
        std::this_thread::sleep_until(next);
        next = std::max(next + round, Clock::now());
        for (std::size_t i = 0; i < paths.size(); ++i) {
          if (r < o.warmup) {
            one_query(paths[i], discard, nullptr, 0, timeout);
          } else {
            one_query(paths[i], tallies[paths[i].label], csv, i, timeout);
          }
        }
      }
    } else {
      for (const auto& label : labels) {
        std::vector<std::size_t> group;
        for (std::size_t i = 0; i < paths.size(); ++i) {
          if (paths[i].label == label) group.push_back(i);
        }
        load(paths, group, o, tallies[label], csv);
      }
    }
  }
  std::printf("{");
  for (std::size_t k = 0; k < labels.size(); ++k) {
    Tally& t = tallies[labels[k]];
    std::printf(
        "%s\"%s\": {\"paths\": %zu, \"sent\": %llu, \"ok\": %llu, \"error\": %llu, "
        "\"lost\": %llu, \"retried\": %llu, \"p50_us\": %.1f, \"p95_us\": %.1f, \"p99_us\": %.1f",
        k ? ", " : "", labels[k].c_str(),
        static_cast<std::size_t>(std::count_if(
            paths.begin(), paths.end(), [&](const Path& p) { return p.label == labels[k]; })),
        static_cast<unsigned long long>(t.sent), static_cast<unsigned long long>(t.ok),
        static_cast<unsigned long long>(t.error), static_cast<unsigned long long>(t.lost),
        static_cast<unsigned long long>(t.retried), pct(t.us, 0.5), pct(t.us, 0.95),
        pct(t.us, 0.99));
    if (mode == "load") {
      std::printf(", \"seconds\": %.3f, \"qps\": %.1f", t.seconds,
                  t.seconds > 0 ? static_cast<double>(t.ok_in_time) / t.seconds : 0.0);
    }
    std::printf("}");
  }
  std::printf("}\n");
  return failed;
}
