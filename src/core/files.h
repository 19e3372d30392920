// netcell: small file helpers shared by the state store and the topology state.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "netcell/result.h"

namespace netcell {

// mkdir(path, 0700); an existing directory is fine.
Result<void> mkdir_if_missing(const std::string& path);
// mkdir -p with mode 0700 for the directories it makes.
Result<void> mkdir_parents(const std::string& dir);
// Writes all of `text` to `fd` (retrying short writes and EINTR); errors name `path`.
Result<void> write_all(int fd, const std::string& text, const std::string& path);
// The whole file (the errno of a failed open is kept: ENOENT = absent); kCorrupt when it is larger
// than `max_bytes`.
Result<std::string> read_file(const std::string& path, std::size_t max_bytes = 1 << 20);
// Writes `text` to `path` atomically: a temporary file of its own (0600, see temp_file_writer),
// fsync, rename.
Result<void> write_atomically(const std::string& path, const std::string& text);

// Temporary files. write_atomically and replace_claim make the new value under a name of its own,
// `PATH.tmp-PID-START-N` and `PATH.new-PID-START-N` (the writer's pid, its start time as
// process_start_time gives it, and a count over the process's writes), then rename it over PATH.
// No two writers ever share one, and a kill between the two steps leaves one whose writer can be
// told: it is gone when no process PID with that start time exists.
struct TempFileWriter {
  pid_t pid = 0;  // 0: an `X.json.tmp` of an earlier netcell, which names no writer
  std::optional<std::uint64_t> start_time;  // nullopt: `PATH.new-PID-N` of an earlier netcell
};
// The writer a file name says made it; nullopt when `file_name` (no directory part) is not the
// name of a temporary file.
std::optional<TempFileWriter> temp_file_writer(std::string_view file_name);
// True when the writer is certainly no longer running: no process `pid`, or one with another
// start time. A nameless writer (pid 0) cannot be told, and an earlier version's (no start time)
// counts as gone only when its pid does not exist.
bool temp_file_writer_gone(const TempFileWriter& writer);

// Claims: small values (an owner's name, a number) kept as the target of a symbolic link, which
// is never followed. Creating one is a single atomic system call that fails with EEXIST when the
// name is taken, and a claim never exists without its value (a file would be empty between its
// create and its write, and a crash there would leave a claim nobody owns). Reading one is one
// readlink. The largest value is 4095 bytes; a value may not contain NUL.
inline constexpr std::size_t kMaxClaimBytes = 4095;
// Creates the claim `path` holding `value`; the error keeps errno (EEXIST: taken).
Result<void> create_claim(const std::string& path, const std::string& value);
// The value of the claim at `path` (errno kept: ENOENT = absent). A regular file there, as
// netcell wrote claims before, is read whole.
Result<std::string> read_claim(const std::string& path);
// Replaces whatever is at `path` by a claim holding `value`, atomically (a uniquely named claim
// renamed over it): concurrent writers leave one complete value, the last one's.
Result<void> replace_claim(const std::string& path, const std::string& value);

}  // namespace netcell
