#include <fcntl.h>
#include <pwd.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>

#include "core/files.h"
#include "netcell/rootless.h"
#include "rootless/session.h"

namespace netcell::rootless {
namespace {

// The first line of a /proc/sys file, trimmed; empty when it cannot be read.
std::string sysctl_value(const std::string& path) {
  auto text = read_file(path, 256);
  if (!text) return "";
  std::string v = *text;
  while (!v.empty() && (v.back() == '\n' || v.back() == ' ')) v.pop_back();
  return v;
}

// Whether this process can make a user namespace: tried in a child (errno 0 = yes).
int try_user_namespace() {
  pid_t child = ::fork();
  if (child < 0) return errno;
  if (child == 0) ::_exit(::unshare(CLONE_NEWUSER) == 0 ? 0 : (errno & 0xff));
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : EINVAL;
}

Prerequisite user_namespaces() {
  Prerequisite p{"user namespaces", false, ""};
  std::string max = sysctl_value("/proc/sys/user/max_user_namespaces");
  if (max == "0") {
    p.detail = "disabled: user.max_user_namespaces is 0 (an administrator sets it above 0)";
    return p;
  }
  if (sysctl_value("/proc/sys/kernel/unprivileged_userns_clone") == "0") {
    p.detail = "disabled: kernel.unprivileged_userns_clone is 0 (an administrator sets it to 1)";
    return p;
  }
  if (int err = try_user_namespace(); err != 0) {
    p.detail = std::string("cannot create one: ") + std::strerror(err) +
               (err == ENOSPC ? " (user.max_user_namespaces reached)" : "");
    return p;
  }
  p.ok = true;
  p.detail = "available (user.max_user_namespaces = " + (max.empty() ? "?" : max) + ")";
  return p;
}

Prerequisite tun() {
  Prerequisite p{"/dev/net/tun", false, ""};
  int fd = ::open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  if (fd >= 0) {
    ::close(fd);
    p.ok = true;
    p.detail = "usable";
    return p;
  }
  int err = errno;
  if (err == ENOENT) {
    p.detail = "missing (an administrator loads the tun module)";
  } else if (err == EACCES || err == EPERM) {
    p.detail =
        "not usable by this user (an administrator makes it mode 0666, as Debian's udev "
        "rule does)";
  } else {
    p.detail = std::string("cannot be opened: ") + std::strerror(err);
  }
  return p;
}

Prerequisite helper() {
  Prerequisite p{"slirp4netns", false, ""};
  std::string binary = helper_binary();
  if (binary.empty()) {
    p.detail = "not installed (the uplink helper: apt-get install slirp4netns)";
    return p;
  }
  p.ok = true;
  p.detail = binary;
  return p;
}

// Reported for the record: nothing of rootless mode needs a range today.
Prerequisite subuid() {
  Prerequisite p{"subuid range", true, ""};
  std::string uid = std::to_string(::geteuid());
  auto text = read_file("/etc/subuid", 1 << 20);
  bool found = false;
  if (text) {
    std::istringstream in(*text);
    std::string line;
    while (std::getline(in, line)) {
      std::string who = line.substr(0, line.find(':'));
      if (who == uid) found = true;
      if (const passwd* pw = ::getpwuid(::geteuid()); pw != nullptr && who == pw->pw_name) {
        found = true;
      }
    }
  }
  p.detail = std::string(found ? "present" : "none") +
             " (not needed: netcell maps only the user's own uid)";
  return p;
}

}  // namespace

std::vector<Prerequisite> check_prerequisites() {
  return {user_namespaces(), tun(), helper(), subuid()};
}

std::string first_missing(const std::vector<Prerequisite>& checks) {
  for (const auto& c : checks) {
    if (!c.ok) return "rootless mode unavailable: " + c.what + ": " + c.detail;
  }
  return "";
}

}  // namespace netcell::rootless
