#include "core/learned.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "core/files.h"

namespace netcell::learned {
namespace {

using nlohmann::json;

struct Piece {
  PolicyProtocol protocol;
  std::uint16_t first, last;
};

// What one domain rule grants for an address: its pieces (tcp and udp for "any" with ports).
std::vector<Piece> pieces_of(const DomainRule& rule) {
  const std::uint16_t lo = rule.ports.any() ? 0 : rule.ports.first;
  const std::uint16_t hi = rule.ports.any() ? 65535 : rule.ports.last;
  switch (rule.protocol) {
    case PolicyProtocol::kAny:
      if (rule.ports.any()) return {{PolicyProtocol::kAny, 0, 0}};
      return {{PolicyProtocol::kTcp, lo, hi}, {PolicyProtocol::kUdp, lo, hi}};
    case PolicyProtocol::kTcp: return {{PolicyProtocol::kTcp, lo, hi}};
    case PolicyProtocol::kUdp: return {{PolicyProtocol::kUdp, lo, hi}};
    case PolicyProtocol::kIcmp: return {{PolicyProtocol::kIcmp, 0, 0}};
  }
  return {};
}

bool ranged(PolicyProtocol p) {
  return p == PolicyProtocol::kTcp || p == PolicyProtocol::kUdp;
}

// Inserts `grant` into the pieces of one address and protocol (`same`: non-overlapping), splitting
// where they overlap: each part gets the later expiry and the union of the rules. A part the grant
// covers that already lasts at least half as long as the grant would is kept as it is, so that
// answers repeated within a TTL do not rewrite the kernel's elements each time.
std::vector<LearnedDestination> insert(std::vector<LearnedDestination> same,
                                       const LearnedDestination& grant, std::int64_t now) {
  if (!ranged(grant.protocol)) {
    if (same.empty()) return {grant};
    LearnedDestination d = same.front();
    std::set<std::size_t> rules(d.rules.begin(), d.rules.end());
    const std::size_t before = rules.size();
    rules.insert(grant.rules.begin(), grant.rules.end());
    const bool fresh_enough = (d.expires_unix_ms - now) * 2 >= grant.expires_unix_ms - now;
    if (rules.size() == before && d.name == grant.name && fresh_enough) return {d};
    d.rules.assign(rules.begin(), rules.end());
    d.expires_unix_ms = std::max(d.expires_unix_ms, grant.expires_unix_ms);
    d.name = grant.name;
    return {d};
  }
  same.push_back(grant);
  std::set<std::uint32_t> cuts;
  for (const auto& d : same) {
    cuts.insert(d.ports.first);
    cuts.insert(std::uint32_t{d.ports.last} + 1);
  }
  std::vector<std::uint32_t> points(cuts.begin(), cuts.end());
  std::vector<LearnedDestination> out;
  for (std::size_t i = 0; i + 1 < points.size(); ++i) {
    const std::uint32_t lo = points[i], hi = points[i + 1] - 1;
    const LearnedDestination* old = nullptr;  // the part as it was (at most one covers it)
    bool granted = false;
    for (std::size_t k = 0; k < same.size(); ++k) {
      const auto& d = same[k];
      if (d.ports.first > lo || d.ports.last < hi) continue;
      if (k + 1 == same.size()) {
        granted = true;
      } else {
        old = &d;
      }
    }
    if (old == nullptr && !granted) continue;
    LearnedDestination part = old != nullptr ? *old : grant;
    part.ports = {static_cast<std::uint16_t>(lo), static_cast<std::uint16_t>(hi)};
    if (old != nullptr && granted) {
      std::set<std::size_t> rules(old->rules.begin(), old->rules.end());
      const std::size_t before = rules.size();
      rules.insert(grant.rules.begin(), grant.rules.end());
      const bool fresh_enough = (old->expires_unix_ms - now) * 2 >= grant.expires_unix_ms - now;
      if (rules.size() != before || old->name != grant.name || !fresh_enough) {
        part.rules.assign(rules.begin(), rules.end());
        part.expires_unix_ms = std::max(old->expires_unix_ms, grant.expires_unix_ms);
        part.name = grant.name;
      }
    }
    // Joins a part to the one before when they differ only in where they are.
    if (!out.empty() && out.back().ports.last + 1u == lo &&
        out.back().expires_unix_ms == part.expires_unix_ms && out.back().rules == part.rules &&
        out.back().name == part.name) {
      out.back().ports.last = part.ports.last;
    } else {
      out.push_back(std::move(part));
    }
  }
  return out;
}

}  // namespace

std::vector<LearnedDestination> merge(const std::vector<LearnedDestination>& current,
                                      const EgressPolicy& policy, const std::string& name,
                                      const std::vector<std::size_t>& rules,
                                      const std::vector<IpAddress>& addresses,
                                      std::int64_t expires_unix_ms, std::int64_t now_unix_ms) {
  // Grouped by address and protocol: each group's pieces do not overlap.
  std::map<std::pair<std::string, PolicyProtocol>, std::vector<LearnedDestination>> groups;
  std::vector<std::pair<std::string, PolicyProtocol>> order;
  auto group = [&](const IpAddress& a, PolicyProtocol p) -> std::vector<LearnedDestination>& {
    auto key = std::pair{a.to_string(), p};
    auto [it, fresh] = groups.try_emplace(key);
    if (fresh) order.push_back(key);
    return it->second;
  };
  for (const auto& d : current) {
    if (d.expires_unix_ms > now_unix_ms) group(d.address, d.protocol).push_back(d);
  }
  std::vector<IpAddress> unique;
  for (const auto& a : addresses) {
    if (std::find(unique.begin(), unique.end(), a) != unique.end()) continue;
    if (unique.size() == kMaxLearnedPerAnswer) break;
    unique.push_back(a);
  }
  for (const auto& a : unique) {
    for (std::size_t r : rules) {
      if (r >= policy.domains.size() || policy.domains[r].action != PolicyAction::kAllow) continue;
      for (const Piece& p : pieces_of(policy.domains[r])) {
        LearnedDestination grant;
        grant.address = a;
        grant.protocol = p.protocol;
        grant.ports = {p.first, p.last};
        grant.expires_unix_ms = expires_unix_ms;
        grant.name = name;
        grant.rules = {r};
        auto& g = group(a, p.protocol);
        g = insert(std::move(g), grant, now_unix_ms);
      }
    }
  }
  std::vector<LearnedDestination> out;
  for (const auto& key : order) {
    for (auto& d : groups[key]) out.push_back(std::move(d));
  }
  return out;
}

std::string to_text(const State& state) {
  json list = json::array();
  for (const auto& d : state.destinations) {
    list.push_back(json{{"address", d.address.to_string()},
                        {"protocol", std::string(to_string(d.protocol))},
                        {"first", d.ports.first},
                        {"last", d.ports.last},
                        {"expires_unix_ms", d.expires_unix_ms},
                        {"name", d.name},
                        {"rules", d.rules}});
  }
  json out{{"source", state.source.to_string()},
           {"created_unix_ms", state.created_unix_ms},
           {"destinations", list}};
  if (state.source6) out["source6"] = state.source6->to_string();
  return out.dump();
}

Result<State> from_text(const std::string& text) {
  auto corrupt = [](const std::string& why) {
    return fail(ErrorCode::kCorrupt, "learned destinations: " + why);
  };
  json j = json::parse(text, nullptr, false);
  if (!j.is_object()) return corrupt("not a JSON object");
  State state;
  try {
    auto source = IpAddress::parse(j.at("source").get<std::string>());
    if (!source) return corrupt(source.error().message());
    state.source = *source;
    if (j.contains("source6")) {
      auto source6 = IpAddress::parse(j.at("source6").get<std::string>());
      if (!source6 || source6->is_v4()) return corrupt("bad source6");
      state.source6 = *source6;
    }
    state.created_unix_ms = j.at("created_unix_ms").get<std::int64_t>();
    for (const auto& d : j.at("destinations")) {
      LearnedDestination out;
      auto address = IpAddress::parse(d.at("address").get<std::string>());
      if (!address) return corrupt("bad address");
      out.address = *address;
      auto protocol = parse_policy_protocol(d.at("protocol").get<std::string>());
      if (!protocol) return corrupt(protocol.error().message());
      out.protocol = *protocol;
      out.ports = {d.at("first").get<std::uint16_t>(), d.at("last").get<std::uint16_t>()};
      if (out.ports.last < out.ports.first) return corrupt("reversed ports");
      out.expires_unix_ms = d.at("expires_unix_ms").get<std::int64_t>();
      out.name = d.at("name").get<std::string>();
      out.rules = d.at("rules").get<std::vector<std::size_t>>();
      state.destinations.push_back(std::move(out));
    }
  } catch (const json::exception& e) {
    return corrupt(e.what());
  }
  if (state.destinations.size() > kMaxLearnedPerNamespace * 4) return corrupt("too many entries");
  return state;
}

std::string directory(const std::string& run_dir) {
  return run_dir + "/learned";
}

Result<Locked> Locked::open(const std::string& run_dir, const std::string& name) {
  const std::string dir = directory(run_dir);
  const std::string path = dir + "/" + name + ".lock";
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) {
    if (errno == ENOENT) {
      return fail(ErrorCode::kNotFound, "namespace '" + name + "' learns no destinations");
    }
    return fail_errno("open " + path, errno);
  }
  while (::flock(fd.get(), LOCK_EX) != 0) {
    if (errno != EINTR) return fail_errno("lock " + path, errno);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return fail_errno("stat " + path, errno);
  if (st.st_nlink == 0) {
    return fail(ErrorCode::kNotFound, "namespace '" + name + "' learns no destinations");
  }
  return Locked(dir, name, std::move(fd));
}

Result<State> Locked::read() const {
  auto text = read_file(dir_ + "/" + name_ + ".json", 16 << 20);
  if (!text) return fail(text.error());
  return from_text(*text);
}

Result<void> Locked::write(const State& state) const {
  return write_atomically(dir_ + "/" + name_ + ".json", to_text(state));
}

Result<void> Locked::remove() const {
  for (const char* ext : {".json", ".lock"}) {
    const std::string path = dir_ + "/" + name_ + ext;
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) return fail_errno("unlink " + path, errno);
  }
  return ok();
}

NamespaceInfo keyed_as_recorded(NamespaceInfo info, const State& state) {
  info.interfaces = {InterfaceInfo{"eth0", {IpPrefix{state.source, 32}}, 0, ""}};
  if (state.source6) {
    info.mode = IsolationMode::kPrivate;  // the only namespaces with IPv6
    info.interfaces[0].addresses.push_back(IpPrefix{*state.source6, 64});
    if (!info.gateway6) {
      // Dual stack is told by a gateway (ipv6_address); which one keys no element.
      auto bytes = state.source6->bytes();
      bytes[15] = 1;
      info.gateway6 = IpAddress::v6(bytes);
    }
  }
  return info;
}

Result<void> prepare(const std::string& run_dir, const NamespaceInfo& info) {
  const std::string dir = directory(run_dir);
  NETCELL_TRY(mkdir_if_missing(dir));
  State state;
  auto source = primary_address(info);
  if (!source)
    return fail(ErrorCode::kInvalidArgument, "namespace '" + info.name + "' has no address");
  state.source = *source;
  if (auto v6 = ipv6_address(info)) state.source6 = v6->address;
  state.created_unix_ms = info.created_unix_ms;
  NETCELL_TRY(write_atomically(dir + "/" + info.name + ".json", to_text(state)));
  const std::string lock = dir + "/" + info.name + ".lock";
  UniqueFd fd(::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd) return fail_errno("create " + lock, errno);
  return ok();
}

namespace {
// The names of the lock files in learned/, at most `limit` of them, in directory order.
std::vector<std::string> lock_files(const std::string& run_dir, std::size_t limit) {
  std::vector<std::string> out;
  const std::string dir = directory(run_dir);
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return out;
  while (out.size() < limit) {
    dirent* e = ::readdir(d);
    if (e == nullptr) break;
    std::string file = e->d_name;
    if (file.size() > 5 && file.ends_with(".lock")) out.push_back(file.substr(0, file.size() - 5));
  }
  ::closedir(d);
  return out;
}
}  // namespace

std::vector<std::string> listed(const std::string& run_dir) {
  auto out = lock_files(run_dir, SIZE_MAX);
  std::sort(out.begin(), out.end());
  return out;
}

bool any_listed(const std::string& run_dir) {
  return !lock_files(run_dir, 1).empty();
}

}  // namespace netcell::learned
