// netcell log NAME: a namespace's denied-flow log (netcell/flowlog.h), as lines for people or as
// the JSON lines it keeps; --follow goes on printing what is appended (and what a rotation moves
// aside) until SIGINT or SIGTERM, or until the namespace is destroyed.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <deque>

#include "cli.h"
#include "netcell/flowlog.h"

namespace netcell::cli {
namespace {

// Prints one log line as asked.
void print_line(const std::string& line, bool json_out) {
  if (json_out) {
    std::printf("%s\n", line.c_str());
    return;
  }
  auto record = parse_flow_log_line(line);
  std::printf("%s\n", record ? to_text(*record).c_str() : line.c_str());
}

// An open log file being followed from `offset` on.
struct Followed {
  int fd = -1;
  ino_t inode = 0;
  std::string partial;  // a line not yet ended
  ~Followed() {
    if (fd >= 0) ::close(fd);
  }
  // Prints every complete line appended since the last call.
  void print_new(bool json_out) {
    if (fd < 0) return;
    char buf[8192];
    for (;;) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      partial.append(buf, static_cast<std::size_t>(n));
    }
    std::size_t start = 0;
    for (std::size_t nl; (nl = partial.find('\n', start)) != std::string::npos; start = nl + 1) {
      print_line(partial.substr(start, nl - start), json_out);
    }
    partial.erase(0, start);
    std::fflush(stdout);
  }
  // (Re)opens `path` when it names another file than the one open: the old one is read to its
  // end first (a rotation renamed it), the new one from its start.
  void reopen_if_rotated(const std::string& path, bool json_out) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || (fd >= 0 && st.st_ino == inode)) return;
    print_new(json_out);
    if (fd >= 0) ::close(fd);
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    inode = st.st_ino;
    partial.clear();
  }
};

// Waits for appends, rotations and signals; returns when SIGINT or SIGTERM arrives or the
// namespace is gone.
int follow(NamespaceManager& mgr, const std::string& name, const std::string& path, Followed& file,
           bool json_out) {
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  if (::sigprocmask(SIG_BLOCK, &stop, nullptr) != 0) {
    return report(Error::from_errno("log: block signals", errno));
  }
  const int signals = ::signalfd(-1, &stop, SFD_CLOEXEC);
  const int watch = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  if (signals < 0 || watch < 0) return report(Error::from_errno("log: follow", errno));
  const std::string dir = path.substr(0, path.rfind('/'));
  (void)::mkdir(dir.c_str(), 0700);  // no log yet: its directory may not exist either
  (void)::inotify_add_watch(watch, dir.c_str(),
                            IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE);
  for (;;) {
    pollfd fds[2] = {{signals, POLLIN, 0}, {watch, POLLIN, 0}};
    // A tick now and then even without events: the namespace may be gone, the watch may have
    // missed the directory's creation.
    const int ready = ::poll(fds, 2, 1000);
    if (ready < 0 && errno != EINTR) return report(Error::from_errno("log: poll", errno));
    if (fds[0].revents != 0) break;
    if (fds[1].revents != 0) {
      char events[4096];
      while (::read(watch, events, sizeof events) > 0) {
      }
    }
    file.print_new(json_out);
    file.reopen_if_rotated(path, json_out);
    file.print_new(json_out);
    if (ready == 0 && !mgr.exists(name)) break;
  }
  ::close(watch);
  ::close(signals);
  return kExitOk;
}

}  // namespace

int cmd_log(const GlobalOptions& g, const std::string& name, bool follow_on, bool json_out,
            std::optional<long> lines) {
  if (auto id = NamespaceId::parse(name); !id) return report(id.error());
  if (lines && *lines < 0) {
    return report(Error(ErrorCode::kInvalidArgument, "-n: a number of lines, 0 or more"));
  }
  auto mgr = open_manager(g);
  if (!mgr) return report(mgr.error());
  if (auto info = mgr->info(name); !info) return report(info.error().with_context("log " + name));
  const std::string path = flow_log_path(mgr->options().run_dir, name);
  // The file followed is opened before the lines already there are read, so that nothing
  // appended in between is missed (at worst a line shows twice).
  Followed file;
  if (follow_on) {
    file.reopen_if_rotated(path, json_out);
    struct stat st {};
    if (file.fd >= 0 && ::fstat(file.fd, &st) == 0) (void)::lseek(file.fd, st.st_size, SEEK_SET);
  }
  std::optional<std::size_t> last;
  if (lines) last = static_cast<std::size_t>(*lines);
  auto shown = read_flow_log(mgr->options().run_dir, name, last);
  if (!shown) return report(shown.error().with_context("log " + name));
  for (const auto& line : *shown) print_line(line, json_out);
  std::fflush(stdout);
  if (!follow_on) return kExitOk;
  return follow(*mgr, name, path, file, json_out);
}

}  // namespace netcell::cli
