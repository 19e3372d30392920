#include "core/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <vector>

#include "core/fault.h"
#include "core/unique_fd.h"
#include "core/validate.h"

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

namespace {

// `PATH.KIND-PID-START-N`: unique among processes (pid and start time, so also against a process
// that had the same pid before) and among the threads and writes of one (the count).
std::string temp_name(const std::string& path, std::string_view kind) {
  static std::atomic<unsigned> counter{0};
  // This process's "PID-START", looked up once per thread (and again in a forked child).
  thread_local pid_t id_pid = 0;
  thread_local std::string id;
  if (pid_t pid = ::getpid(); pid != id_pid) {
    id_pid = pid;
    id = std::to_string(pid) + '-' + std::to_string(process_start_time(pid).value_or(0));
  }
  std::string name = path;
  name += kind;
  name += '-';
  name += id;
  name += '-';
  name += std::to_string(counter.fetch_add(1, std::memory_order_relaxed));
  return name;
}

// The numbers of a "N-N-..." suffix, all of them, or nullopt if it is anything else.
std::optional<std::vector<std::uint64_t>> numbers(std::string_view text) {
  std::vector<std::uint64_t> out;
  for (;;) {
    std::uint64_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end == text.data()) return std::nullopt;
    out.push_back(value);
    text.remove_prefix(static_cast<std::size_t>(end - text.data()));
    if (text.empty()) return out;
    if (text[0] != '-') return std::nullopt;
    text.remove_prefix(1);
  }
}

}  // namespace

std::optional<TempFileWriter> temp_file_writer(std::string_view file_name) {
  for (std::string_view kind : {".tmp-", ".new-"}) {
    auto at = file_name.rfind(kind);
    if (at == std::string_view::npos || at == 0) continue;
    auto n = numbers(file_name.substr(at + kind.size()));
    if (!n || (*n)[0] == 0 || (*n)[0] > 4194304) continue;
    TempFileWriter writer{static_cast<pid_t>((*n)[0]), std::nullopt};
    if (n->size() == 3) writer.start_time = (*n)[1];                           // PID-START-N
    if (n->size() == 3 || (kind == ".new-" && n->size() == 2)) return writer;  // or PID-N
  }
  constexpr std::string_view kLegacy = ".json.tmp";
  if (file_name.size() > kLegacy.size() && file_name.ends_with(kLegacy)) return TempFileWriter{};
  return std::nullopt;
}

bool temp_file_writer_gone(const TempFileWriter& writer) {
  if (writer.pid <= 0) return false;
  auto start = process_start_time(writer.pid);
  if (!start) return true;
  return writer.start_time && *writer.start_time != *start;
}

Result<void> write_atomically(const std::string& path, const std::string& text) {
  const std::string tmp = temp_name(path, ".tmp");
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd) return fail_errno("create " + tmp, errno);
  if (auto written = write_all(fd.get(), text, tmp); !written) {
    ::unlink(tmp.c_str());
    return written;
  }
  auto abandon = [&](int err) {
    ::unlink(tmp.c_str());
    return fail_errno("save " + path, err);
  };
  if (::fsync(fd.get()) != 0) return abandon(errno);
  fault_point("write: temporary file written, not yet renamed");
  if (::rename(tmp.c_str(), path.c_str()) != 0) return abandon(errno);
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
  const std::string tmp = temp_name(path, ".new");
  if (::symlink(value.c_str(), tmp.c_str()) != 0) return fail_errno("claim " + tmp, errno);
  fault_point("claim: temporary claim made, not yet renamed");
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return fail_errno("replace " + path, err);
  }
  return ok();
}

}  // namespace netcell
