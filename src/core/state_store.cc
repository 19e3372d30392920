#include "core/state_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>

#include "core/files.h"
#include "core/serialize.h"
#include "core/unique_fd.h"

namespace netcell {
namespace {

// Names of the *.json records in `dir`, sorted.
std::vector<std::string> record_names(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return names;
  while (dirent* e = ::readdir(d)) {
    std::string file = e->d_name;
    constexpr std::string_view kSuffix = ".json";
    if (file.size() <= kSuffix.size() || !file.ends_with(kSuffix)) continue;
    names.push_back(file.substr(0, file.size() - kSuffix.size()));
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

// A namespace whose network namespace netcell made (not adopted by path, not the host's).
bool is_owned(const NamespaceInfo& info) {
  return info.mode != IsolationMode::kShared && info.adopted_netns_path.empty();
}

Result<Phase> parse_phase(const std::string& text) {
  if (text == "creating") return Phase::kCreating;
  if (text == "ready") return Phase::kReady;
  if (text == "destroying") return Phase::kDestroying;
  return fail(ErrorCode::kCorrupt, "unknown phase '" + text + "'");
}

Result<Record> parse_record(const std::string& text) {
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return fail(ErrorCode::kCorrupt, "not a JSON object");
  Record record;
  auto phase_it = j.find("phase");
  if (phase_it == j.end() || !phase_it->is_string()) {
    return fail(ErrorCode::kCorrupt, "missing field 'phase'");
  }
  auto phase = parse_phase(phase_it->get<std::string>());
  if (!phase) return fail(phase.error());
  record.phase = *phase;
  auto start_it = j.find("owner_start_time");
  if (start_it == j.end() || !start_it->is_number_unsigned()) {
    return fail(ErrorCode::kCorrupt, "missing field 'owner_start_time'");
  }
  record.owner_start_time = start_it->get<std::uint64_t>();
  // Only while a policy change is under way.
  if (auto change = j.find("egress_change"); change != j.end()) {
    if (!change->is_object()) return fail(ErrorCode::kCorrupt, "field 'egress_change'");
    auto previous = egress_policy_from_json(change->value("previous", nlohmann::json()));
    if (!previous) return fail(previous.error().with_context("egress_change"));
    record.changing_egress = true;
    record.previous_egress = std::move(*previous);
  }
  auto info_it = j.find("namespace");
  if (info_it == j.end()) return fail(ErrorCode::kCorrupt, "missing field 'namespace'");
  auto info = namespace_info_from_json(*info_it);
  if (!info) return fail(info.error());
  record.info = std::move(*info);
  return record;
}

}  // namespace

std::string_view to_string(Phase phase) {
  switch (phase) {
    case Phase::kCreating: return "creating";
    case Phase::kReady: return "ready";
    case Phase::kDestroying: return "destroying";
  }
  return "unknown";
}

Result<StateStore> StateStore::open(const std::string& run_dir) {
  if (run_dir.empty()) return fail(ErrorCode::kInvalidArgument, "empty run dir");
  // Create parents of the run dir as well (e.g. /tmp/x/run).
  for (std::size_t pos = 1; (pos = run_dir.find('/', pos)) != std::string::npos; ++pos) {
    NETCELL_TRY(mkdir_if_missing(run_dir.substr(0, pos)));
  }
  NETCELL_TRY(mkdir_if_missing(run_dir));
  NETCELL_TRY(mkdir_if_missing(run_dir + "/namespaces"));
  NETCELL_TRY(mkdir_if_missing(run_dir + "/networks"));
  StateStore store(run_dir);
  // The markers of namespaces netcell made (owned_names): a run dir of a netcell before them gets
  // them once, made aside and renamed into place (two processes doing it at once both succeed).
  const std::string owned = run_dir + "/owned";
  if (::access(owned.c_str(), F_OK) != 0) {
    const std::string partial = owned + ".partial." + std::to_string(::getpid());
    NETCELL_TRY(mkdir_if_missing(partial));
    for (const auto& record : store.list().records) {
      if (!is_owned(record.info)) continue;
      UniqueFd fd(
          ::open((partial + "/" + record.info.name).c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
    }
    if (::rename(partial.c_str(), owned.c_str()) != 0) {
      std::error_code ignored;
      std::filesystem::remove_all(partial, ignored);
      if (::access(owned.c_str(), F_OK) != 0) return fail_errno("make " + owned, errno);
    }
  }
  return store;
}

Result<StateStore::Lock> StateStore::lock() const {
  std::string path = run_dir_ + "/lock";
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) return fail_errno("open lock " + path, errno);
  while (::flock(fd.get(), LOCK_EX) != 0) {
    if (errno != EINTR) return fail_errno("lock " + path, errno);
  }
  return Lock(std::move(fd));
}

std::string StateStore::record_path(const std::string& name) const {
  return run_dir_ + "/namespaces/" + name + ".json";
}

Result<std::optional<Record>> StateStore::read(const std::string& name) const {
  auto data = read_file(record_path(name));
  if (!data) {
    if (data.error().sys_errno() == ENOENT) return std::optional<Record>();
    return fail(data.error());
  }
  auto record = parse_record(*data);
  if (!record) {
    return fail(std::move(record).error().with_context("record of namespace '" + name + "'"));
  }
  if (record->info.name != name) {
    return fail(ErrorCode::kCorrupt,
                "record of namespace '" + name + "' names '" + record->info.name + "'");
  }
  return std::optional<Record>(std::move(*record));
}

Result<void> StateStore::write(const Record& record) const {
  nlohmann::json j{{"phase", std::string(to_string(record.phase))},
                   {"owner_start_time", record.owner_start_time},
                   {"namespace", to_json(record.info)}};
  if (record.changing_egress) {
    j["egress_change"] = {
        {"previous", record.previous_egress ? to_json(*record.previous_egress) : nlohmann::json()}};
  }
  if (is_owned(record.info)) {
    // Before the record: a marker without a record is only looked at in vain (owned_names).
    const std::string marker = run_dir_ + "/owned/" + record.info.name;
    UniqueFd fd(::open(marker.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
    if (!fd) return fail_errno("create " + marker, errno);
  }
  return write_atomically(record_path(record.info.name), j.dump(2) + "\n");
}

Result<void> StateStore::remove(const std::string& name) const {
  std::string path = record_path(name);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return fail_errno("remove " + path, errno);
  ::unlink((run_dir_ + "/owned/" + name).c_str());  // after the record; a left one is harmless
  return ok();
}

std::vector<std::string> StateStore::owned_names() const {
  std::vector<std::string> names;
  DIR* d = ::opendir((run_dir_ + "/owned").c_str());
  if (d == nullptr) return names;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') names.emplace_back(e->d_name);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

StateStore::Listing StateStore::list() const {
  Listing listing;
  for (const auto& name : record_names(run_dir_ + "/namespaces")) {
    auto record = read(name);
    if (!record) {
      listing.corrupt.push_back(name + ": " + record.error().to_string());
    } else if (*record) {
      listing.records.push_back(std::move(**record));
    }
  }
  return listing;
}

std::string StateStore::network_path(const std::string& name) const {
  return run_dir_ + "/networks/" + name + ".json";
}

Result<std::optional<NetworkRecord>> StateStore::read_network(const std::string& name) const {
  auto data = read_file(network_path(name));
  if (!data) {
    if (data.error().sys_errno() == ENOENT) return std::optional<NetworkRecord>();
    return fail(data.error());
  }
  auto j = nlohmann::json::parse(*data, nullptr, /*allow_exceptions=*/false);
  auto bad = [&](const std::string& why) {
    return fail(ErrorCode::kCorrupt, "record of network '" + name + "': " + why);
  };
  if (j.is_discarded() || !j.is_object()) return bad("not a JSON object");
  auto phase_it = j.find("phase");
  if (phase_it == j.end() || !phase_it->is_string()) return bad("missing field 'phase'");
  auto phase = parse_phase(phase_it->get<std::string>());
  if (!phase) return bad(phase.error().message());
  auto info_it = j.find("network");
  if (info_it == j.end()) return bad("missing field 'network'");
  auto info = network_info_from_json(*info_it);
  if (!info) return bad(info.error().message());
  if (info->name != name) return bad("names '" + info->name + "'");
  return std::optional<NetworkRecord>(NetworkRecord{std::move(*info), *phase});
}

Result<void> StateStore::write_network(const NetworkRecord& record) const {
  nlohmann::json j{{"phase", std::string(to_string(record.phase))},
                   {"network", to_json(record.info)}};
  return write_atomically(network_path(record.info.name), j.dump(2) + "\n");
}

Result<void> StateStore::remove_network(const std::string& name) const {
  std::string path = network_path(name);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return fail_errno("remove " + path, errno);
  return ok();
}

StateStore::NetworkListing StateStore::list_networks() const {
  NetworkListing listing;
  for (const auto& name : record_names(run_dir_ + "/networks")) {
    auto record = read_network(name);
    if (!record) {
      listing.corrupt.push_back(name + ": " + record.error().to_string());
    } else if (*record) {
      listing.records.push_back(std::move(**record));
    }
  }
  return listing;
}

std::vector<std::string> StateStore::sweep_temp_files() const {
  namespace fs = std::filesystem;
  std::vector<std::string> abandoned;
  std::error_code ec;
  for (fs::recursive_directory_iterator
           it(run_dir_, fs::directory_options::skip_permission_denied, ec),
       end;
       !ec && it != end; it.increment(ec)) {
    std::error_code type_ec;
    const auto type = it->symlink_status(type_ec).type();
    if (type_ec || (type != fs::file_type::regular && type != fs::file_type::symlink)) continue;
    const fs::path& path = it->path();
    auto writer = temp_file_writer(path.filename().native());
    if (!writer) continue;
    // A writer that names itself is asked; a nameless one of an earlier netcell is gone when its
    // file lies where every writer holds the lock, which the caller now holds.
    const std::string dir = path.parent_path().filename();
    const bool gone = writer->pid > 0
                          ? temp_file_writer_gone(*writer)
                          : it.depth() == 1 && (dir == "namespaces" || dir == "networks");
    if (gone) abandoned.push_back(path.string());
  }
  std::vector<std::string> removed;
  for (auto& path : abandoned) {
    if (::unlink(path.c_str()) == 0) removed.push_back(std::move(path));
  }
  return removed;
}

std::vector<std::string> StateStore::sweep_markers() const {
  std::vector<std::string> removed;
  for (const auto& name : owned_names()) {
    if (::access(record_path(name).c_str(), F_OK) == 0 || errno != ENOENT) continue;
    std::string marker = run_dir_ + "/owned/" + name;
    if (::unlink(marker.c_str()) == 0) removed.push_back(std::move(marker));
  }
  return removed;
}

}  // namespace netcell
