// netcell: the denied-flow log's lines and files (netcell/flowlog.h). The reader of the kernel's
// log is src/linux/flowlog_reader.cc.
#include "netcell/flowlog.h"

#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <ctime>
#include <deque>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/files.h"
#include "core/unique_fd.h"
#include "netcell/policy.h"
#include "netcell/types.h"

namespace netcell {
namespace {

using nlohmann::json;

constexpr char kLogDir[] = "/log";
constexpr char kLogSuffix[] = ".jsonl";
constexpr char kOlderSuffix[] = ".1";
// A line longer than this is not one of ours (the longest has a 253-byte name): reading stops
// trusting the file there.
constexpr std::size_t kMaxLineBytes = 4096;

std::string protocol_name(std::uint8_t ip_protocol) {
  switch (ip_protocol) {
    case IPPROTO_TCP: return "tcp";
    case IPPROTO_UDP: return "udp";
    case IPPROTO_ICMP: return "icmp";
    case IPPROTO_ICMPV6: return "icmpv6";
    default: return std::to_string(ip_protocol);
  }
}

Result<std::uint8_t> parse_protocol_name(const std::string& text) {
  if (text == "tcp") return static_cast<std::uint8_t>(IPPROTO_TCP);
  if (text == "udp") return static_cast<std::uint8_t>(IPPROTO_UDP);
  if (text == "icmp") return static_cast<std::uint8_t>(IPPROTO_ICMP);
  if (text == "icmpv6") return static_cast<std::uint8_t>(IPPROTO_ICMPV6);
  unsigned value = 0;
  if (text.empty() || text.size() > 3 || std::sscanf(text.c_str(), "%3u", &value) != 1 ||
      value > 255 || std::to_string(value) != text) {
    return fail(ErrorCode::kInvalidArgument, "unknown protocol '" + text + "'");
  }
  return static_cast<std::uint8_t>(value);
}

// "2025-05-01T12:00:00.123Z" back to milliseconds.
Result<std::int64_t> parse_log_time(const std::string& text) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0, ms = 0, used = 0;
  constexpr std::string_view kForm = "dddd-dd-ddTdd:dd:dd.dddZ";
  bool digits = text.size() == kForm.size();
  for (std::size_t i = 0; digits && i < kForm.size(); ++i) {
    digits = kForm[i] == 'd' ? std::isdigit(static_cast<unsigned char>(text[i])) != 0
                             : text[i] == kForm[i];
  }
  if (!digits ||
      std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ%n", &y, &mo, &d, &h, &mi, &s, &ms,
                  &used) != 7 ||
      used != 24 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) {
    return fail(ErrorCode::kInvalidArgument, "bad time '" + text + "'");
  }
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  return static_cast<std::int64_t>(::timegm(&tm)) * 1000 + ms;
}

json flow_json(const DeniedFlow& f) {
  json j = {{"time", format_log_time(f.time_unix_ms)},
            {"namespace", f.ns},
            {"kind", "flow"},
            {"protocol", protocol_name(f.ip_protocol)},
            {"source", f.source.to_string()},
            {"destination", f.destination.to_string()}};
  if (f.ip_protocol == IPPROTO_TCP || f.ip_protocol == IPPROTO_UDP) {
    j["source_port"] = f.source_port;
    j["port"] = f.port;
  }
  if (f.ip_protocol == IPPROTO_ICMP || f.ip_protocol == IPPROTO_ICMPV6) {
    j["icmp_type"] = f.icmp_type;
    j["icmp_code"] = f.icmp_code;
  }
  j["by"] = std::string(to_string(f.by));
  if (f.rule_index) j["rule_index"] = *f.rule_index;
  if (!f.rule.empty()) j["rule"] = f.rule;
  if (f.name) j["name"] = *f.name;
  return j;
}

json query_json(const DeniedQuery& q) {
  return {{"time", format_log_time(q.time_unix_ms)},
          {"namespace", q.ns},
          {"kind", "dns"},
          {"client", q.client.to_string()},
          {"name", q.name},
          {"qtype", q.qtype},
          {"rcode", q.rcode}};
}

// Reads field `key` of `j` into `out` (a string, a number of out's type or an address);
// kInvalidArgument when it is missing (unless optional) or of another type or range.
template <typename T>
Result<void> field(const json& j, const char* key, T& out, bool optional = false) {
  auto it = j.find(key);
  if (it == j.end()) {
    if (optional) return ok();
    return fail(ErrorCode::kInvalidArgument, std::string("no \"") + key + "\"");
  }
  auto bad = [&] { return fail(ErrorCode::kInvalidArgument, std::string("bad \"") + key + "\""); };
  if constexpr (std::is_same_v<T, std::string>) {
    if (!it->is_string()) return bad();
    out = it->template get<std::string>();
  } else if constexpr (std::is_same_v<T, IpAddress>) {
    if (!it->is_string()) return bad();
    auto address = IpAddress::parse(it->template get<std::string>());
    if (!address) return bad();
    out = *address;
  } else {
    if (!it->is_number_unsigned()) return bad();
    auto value = it->template get<std::uint64_t>();
    if (value > std::numeric_limits<T>::max()) return bad();
    out = static_cast<T>(value);
  }
  return ok();
}

// The two fields every line has.
Result<void> time_and_namespace(const json& j, std::int64_t& unix_ms, std::string& ns) {
  std::string time;
  NETCELL_TRY(field(j, "time", time));
  auto ms = parse_log_time(time);
  if (!ms) return fail(ms.error());
  unix_ms = *ms;
  return field(j, "namespace", ns);
}

Result<FlowLogRecord> flow_from(const json& j) {
  DeniedFlow f;
  std::string protocol, by;
  NETCELL_TRY(time_and_namespace(j, f.time_unix_ms, f.ns));
  NETCELL_TRY(field(j, "protocol", protocol));
  auto number = parse_protocol_name(protocol);
  if (!number) return fail(number.error());
  f.ip_protocol = *number;
  NETCELL_TRY(field(j, "source", f.source));
  NETCELL_TRY(field(j, "destination", f.destination));
  // The fields of another protocol are not read (a line carries only its own).
  if (f.ip_protocol == IPPROTO_TCP || f.ip_protocol == IPPROTO_UDP) {
    NETCELL_TRY(field(j, "port", f.port, true));
    NETCELL_TRY(field(j, "source_port", f.source_port, true));
  }
  if (f.ip_protocol == IPPROTO_ICMP || f.ip_protocol == IPPROTO_ICMPV6) {
    NETCELL_TRY(field(j, "icmp_type", f.icmp_type, true));
    NETCELL_TRY(field(j, "icmp_code", f.icmp_code, true));
  }
  NETCELL_TRY(field(j, "by", by));
  if (by == "rule") {
    f.by = DeniedBy::kRule;
  } else if (by == "default") {
    f.by = DeniedBy::kDefault;
  } else if (by == "dns") {
    f.by = DeniedBy::kDns;
  } else {
    return fail(ErrorCode::kInvalidArgument, "bad \"by\"");
  }
  if (j.contains("rule_index")) {
    std::size_t index = 0;
    NETCELL_TRY(field(j, "rule_index", index));
    f.rule_index = index;
  }
  NETCELL_TRY(field(j, "rule", f.rule, true));
  if (j.contains("name")) {
    std::string name;
    NETCELL_TRY(field(j, "name", name));
    f.name = std::move(name);
  }
  return FlowLogRecord(std::move(f));
}

Result<FlowLogRecord> query_from(const json& j) {
  DeniedQuery q;
  NETCELL_TRY(time_and_namespace(j, q.time_unix_ms, q.ns));
  NETCELL_TRY(field(j, "client", q.client));
  NETCELL_TRY(field(j, "name", q.name));
  NETCELL_TRY(field(j, "qtype", q.qtype));
  NETCELL_TRY(field(j, "rcode", q.rcode));
  return FlowLogRecord(std::move(q));
}

std::string qtype_name(std::uint16_t qtype) {
  switch (qtype) {
    case 1: return "A";
    case 2: return "NS";
    case 5: return "CNAME";
    case 6: return "SOA";
    case 12: return "PTR";
    case 15: return "MX";
    case 16: return "TXT";
    case 28: return "AAAA";
    case 33: return "SRV";
    case 64: return "SVCB";
    case 65: return "HTTPS";
    case 255: return "ANY";
    default: return "TYPE" + std::to_string(qtype);
  }
}

std::string rcode_name(std::uint16_t rcode) {
  switch (rcode) {
    case 0: return "NOERROR";
    case 2: return "SERVFAIL";
    case 3: return "NXDOMAIN";
    case 5: return "REFUSED";
    default: return "RCODE" + std::to_string(rcode);
  }
}

Result<void> check_name(const std::string& ns) {
  if (auto id = NamespaceId::parse(ns); !id) return fail(id.error());
  return ok();
}

std::string log_dir(const std::string& run_dir) {
  return run_dir + kLogDir;
}

// The complete lines of `path` (none when it does not exist), keeping only the last `keep`.
Result<void> read_lines(const std::string& path, std::optional<std::size_t> keep,
                        std::deque<std::string>& out) {
  auto text = read_file(path, 4 * kFlowLogMaxBytes);
  if (!text) {
    if (text.error().sys_errno() == ENOENT) return ok();
    return fail(text.error());
  }
  std::size_t start = 0;
  for (std::size_t nl; (nl = text->find('\n', start)) != std::string::npos; start = nl + 1) {
    if (nl - start > kMaxLineBytes || nl == start) continue;
    out.push_back(text->substr(start, nl - start));
    if (keep && out.size() > *keep) out.pop_front();
  }
  return ok();
}

}  // namespace

std::string_view to_string(DeniedBy by) {
  switch (by) {
    case DeniedBy::kRule: return "rule";
    case DeniedBy::kDefault: return "default";
    case DeniedBy::kDns: return "dns";
  }
  return "default";
}

std::string format_log_time(std::int64_t unix_ms) {
  std::int64_t seconds = unix_ms / 1000, ms = unix_ms % 1000;
  if (ms < 0) ms += 1000, seconds -= 1;
  std::time_t t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

std::string to_json_line(const FlowLogRecord& record) {
  if (const auto* flow = std::get_if<DeniedFlow>(&record)) return flow_json(*flow).dump();
  return query_json(std::get<DeniedQuery>(record)).dump();
}

Result<FlowLogRecord> parse_flow_log_line(std::string_view line) {
  json j = json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return fail(ErrorCode::kInvalidArgument, "not a JSON object");
  std::string kind;
  NETCELL_TRY(field(j, "kind", kind));
  Result<FlowLogRecord> record = fail(ErrorCode::kInvalidArgument, "unknown kind '" + kind + "'");
  if (kind == "flow") record = flow_from(j);
  if (kind == "dns") record = query_from(j);
  if (!record) return fail(std::move(record).error().with_context("flow log line"));
  return record;
}

std::string to_text(const FlowLogRecord& record) {
  if (const auto* q = std::get_if<DeniedQuery>(&record)) {
    return format_log_time(q->time_unix_ms) + " dns " + q->client.to_string() + " asked " +
           q->name + ' ' + qtype_name(q->qtype) + ": refused (" + rcode_name(q->rcode) + ')';
  }
  const auto& f = std::get<DeniedFlow>(record);
  std::string out = format_log_time(f.time_unix_ms) + ' ' + protocol_name(f.ip_protocol) + ' ' +
                    f.source.to_string() + " -> " + f.destination.to_string();
  if (f.ip_protocol == IPPROTO_TCP || f.ip_protocol == IPPROTO_UDP) {
    out += ':' + std::to_string(f.port);
  } else if (f.ip_protocol == IPPROTO_ICMP || f.ip_protocol == IPPROTO_ICMPV6) {
    out += f.icmp_type == (f.ip_protocol == IPPROTO_ICMP ? 8 : 128)
               ? std::string(" echo-request")
               : " type " + std::to_string(f.icmp_type) + " code " + std::to_string(f.icmp_code);
  }
  if (f.name) out += " (" + *f.name + ')';
  switch (f.by) {
    case DeniedBy::kDefault: out += " refused by the default"; break;
    case DeniedBy::kDns: out += " refused: DNS goes to netcell's resolver only"; break;
    case DeniedBy::kRule:
      out += f.rule.empty() ? " refused by a deny rule" : " refused by " + f.rule;
  }
  return out;
}

std::string flow_log_path(const std::string& run_dir, const std::string& ns) {
  return log_dir(run_dir) + '/' + ns + kLogSuffix;
}

Result<void> append_flow_log(const std::string& run_dir, const std::string& ns,
                             const FlowLogRecord& record, std::size_t max_bytes) {
  NETCELL_TRY(check_name(ns));
  NETCELL_TRY(mkdir_if_missing(log_dir(run_dir)));
  const std::string path = flow_log_path(run_dir, ns);
  const std::string line = to_json_line(record) + '\n';
  // At most a few rounds: each one either writes or sees a rotation done (by this writer or
  // another), after which the file is new and small.
  for (int round = 0; round < 4; ++round) {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd) return fail_errno("open " + path, errno);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return fail_errno("stat " + path, errno);
    if (static_cast<std::size_t>(st.st_size) + line.size() <= max_bytes || st.st_size == 0) {
      // One write: O_APPEND puts it whole at the end, whoever else appends.
      return write_all(fd.get(), line, path);
    }
    // Full: rotate, once. Writers that saw the same full file queue on its lock; each then checks
    // that the name still is that file before renaming it.
    if (::flock(fd.get(), LOCK_EX) != 0) return fail_errno("lock " + path, errno);
    struct stat now {};
    if (::stat(path.c_str(), &now) == 0 && now.st_ino == st.st_ino && now.st_dev == st.st_dev) {
      if (::rename(path.c_str(), (path + kOlderSuffix).c_str()) != 0) {
        return fail_errno("rotate " + path, errno);
      }
    }
  }
  return fail(ErrorCode::kSystem, "append to " + path + ": it kept being rotated");
}

Result<std::vector<std::string>> read_flow_log(const std::string& run_dir, const std::string& ns,
                                               std::optional<std::size_t> last) {
  NETCELL_TRY(check_name(ns));
  const std::string path = flow_log_path(run_dir, ns);
  std::deque<std::string> lines;
  NETCELL_TRY(read_lines(path + kOlderSuffix, last, lines));
  NETCELL_TRY(read_lines(path, last, lines));
  while (last && lines.size() > *last) lines.pop_front();
  return std::vector<std::string>(lines.begin(), lines.end());
}

Result<void> remove_flow_log(const std::string& run_dir, const std::string& ns) {
  NETCELL_TRY(check_name(ns));
  const std::string path = flow_log_path(run_dir, ns);
  for (const std::string& p : {path, path + kOlderSuffix}) {
    if (::unlink(p.c_str()) != 0 && errno != ENOENT) return fail_errno("remove " + p, errno);
  }
  return ok();
}

std::vector<std::string> flow_log_names(const std::string& run_dir) {
  std::vector<std::string> names;
  DIR* dir = ::opendir(log_dir(run_dir).c_str());
  if (dir == nullptr) return names;
  const std::string suffix = kLogSuffix, older = std::string(kLogSuffix) + kOlderSuffix;
  while (const dirent* entry = ::readdir(dir)) {
    std::string file = entry->d_name;
    for (const std::string& s : {suffix, older}) {
      if (file.size() > s.size() && file.ends_with(s)) {
        std::string name = file.substr(0, file.size() - s.size());
        if (check_name(name) && (names.empty() || names.back() != name)) names.push_back(name);
      }
    }
  }
  ::closedir(dir);
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

}  // namespace netcell
