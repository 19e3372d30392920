#include "service/records_watch.h"

#include <sys/epoll.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>

namespace netcell::service {

void epoll_add(int epoll, int fd, std::uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  ::epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &ev);
}

Result<int> watch_records(const std::string& run_dir) {
  int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) return fail_errno("inotify_init1", errno);
  const std::string records = run_dir + "/namespaces";
  if (::inotify_add_watch(fd, records.c_str(), IN_MOVED_TO | IN_DELETE | IN_CLOSE_WRITE) < 0) {
    const int err = errno;
    ::close(fd);
    return fail_errno("inotify_add_watch " + records, err);
  }
  return fd;
}

std::optional<std::set<std::string>> changed_records(int inotify) {
  alignas(inotify_event) char buf[8192];
  std::set<std::string> names;
  ssize_t n = ::read(inotify, buf, sizeof buf);
  if (n <= 0) return names;
  for (char* at = buf; at < buf + n;) {
    auto* ev = reinterpret_cast<inotify_event*>(at);
    if ((ev->mask & IN_Q_OVERFLOW) != 0) return std::nullopt;
    if (ev->len > 0) {
      std::string file = ev->name;
      if (file.ends_with(".json")) names.insert(file.substr(0, file.size() - 5));
    }
    at += sizeof(inotify_event) + ev->len;
  }
  return names;
}

}  // namespace netcell::service
