// netcell: small file helpers shared by the state store and the topology state.
#pragma once

#include <cstddef>
#include <string>

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
// Writes `text` to `path` atomically: a temp file (0600), fsync, rename.
Result<void> write_atomically(const std::string& path, const std::string& text);

}  // namespace netcell
