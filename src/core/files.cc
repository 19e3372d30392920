#include "core/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "core/unique_fd.h"

namespace netcell {

Result<void> mkdir_if_missing(const std::string& path) {
  if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
    return fail_errno("create directory " + path, errno);
  }
  return ok();
}

Result<void> mkdir_parents(const std::string& dir) {
  // Usually the parents exist (often the directory too): one mkdir, and the walk from the root
  // only when it says a parent is missing.
  if (::mkdir(dir.c_str(), 0700) == 0 || errno == EEXIST) return ok();
  if (errno != ENOENT) return fail_errno("create directory " + dir, errno);
  for (std::size_t pos = 1;; ++pos) {
    pos = dir.find('/', pos);
    std::string part = dir.substr(0, pos);
    if (::mkdir(part.c_str(), 0700) != 0 && errno != EEXIST) {
      return fail_errno("create directory " + part, errno);
    }
    if (pos == std::string::npos) return ok();
  }
}

Result<void> write_all(int fd, const std::string& text, const std::string& path) {
  std::size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno("write " + path, errno);
    }
    done += static_cast<std::size_t>(n);
  }
  return ok();
}

Result<std::string> read_file(const std::string& path, std::size_t max_bytes) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return fail_errno("open " + path, errno);
  std::string data;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno("read " + path, errno);
    }
    if (n == 0) break;
    data.append(buf, static_cast<std::size_t>(n));
    if (data.size() > max_bytes) {
      return fail(ErrorCode::kCorrupt,
                  path + " is larger than " + std::to_string(max_bytes / 1024) + " KiB");
    }
  }
  return data;
}

Result<void> write_atomically(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp";
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd) return fail_errno("create " + tmp, errno);
  if (auto written = write_all(fd.get(), text, tmp); !written) {
    ::unlink(tmp.c_str());
    return written;
  }
  if (::fsync(fd.get()) != 0 || ::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return fail_errno("save " + path, err);
  }
  return ok();
}

namespace {

Result<void> check_claim_value(const std::string& path, const std::string& value) {
  if (value.empty() || value.size() > kMaxClaimBytes ||
      std::memchr(value.data(), '\0', value.size()) != nullptr) {
    return fail(ErrorCode::kInvalidArgument,
                "the value of " + path + " must be 1 to 4095 bytes without NUL");
  }
  return ok();
}

}  // namespace

Result<void> create_claim(const std::string& path, const std::string& value) {
  NETCELL_TRY(check_claim_value(path, value));
  if (::symlink(value.c_str(), path.c_str()) != 0) return fail_errno("claim " + path, errno);
  return ok();
}

Result<std::string> read_claim(const std::string& path) {
  char buf[kMaxClaimBytes + 1];
  ssize_t n = ::readlink(path.c_str(), buf, sizeof buf);
  if (n >= 0) {
    if (static_cast<std::size_t>(n) > kMaxClaimBytes) {
      return fail(ErrorCode::kCorrupt, path + " holds more than 4095 bytes");
    }
    return std::string(buf, static_cast<std::size_t>(n));
  }
  if (errno != EINVAL) return fail_errno("read " + path, errno);
  return read_file(path, kMaxClaimBytes);  // a claim file of an earlier netcell
}

Result<void> replace_claim(const std::string& path, const std::string& value) {
  NETCELL_TRY(check_claim_value(path, value));
  // Unique among processes (the pid) and among the threads of one (the counter); a name left by
  // a crash between the two calls below is reused by the next process with that pid.
  static std::atomic<unsigned> counter{0};
  const std::string tmp = path + ".new-" + std::to_string(::getpid()) + "-" +
                          std::to_string(counter.fetch_add(1, std::memory_order_relaxed));
  if (::symlink(value.c_str(), tmp.c_str()) != 0 &&
      (errno != EEXIST || ::unlink(tmp.c_str()) != 0 ||
       ::symlink(value.c_str(), tmp.c_str()) != 0)) {
    return fail_errno("claim " + tmp, errno);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return fail_errno("replace " + path, err);
  }
  return ok();
}

}  // namespace netcell
