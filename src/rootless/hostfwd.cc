#include "rootless/hostfwd.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <system_error>

#include "core/files.h"
#include "core/unique_fd.h"

namespace netcell::rootless {
namespace {

using json = nlohmann::json;

constexpr int kReplyMs = 2000;

json forward_json(const HostForward& f) {
  return {{"proto", std::string(to_string(f.protocol))},
          {"host_addr", f.host_addr},
          {"host_port", f.port},
          {"guest_addr", kGuestAddress},
          {"guest_port", f.port}};
}

// The helper's reply as JSON, or its error's description as one.
Result<json> reply_json(const std::string& reply, const char* what) {
  json j = json::parse(reply, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return fail(ErrorCode::kSystem,
                std::string("rootless: the uplink helper's ") + what + " reply is not JSON");
  }
  if (auto e = j.find("error"); e != j.end()) {
    std::string desc = e->is_object() && e->contains("desc") && (*e)["desc"].is_string()
                           ? (*e)["desc"].get<std::string>()
                           : e->dump();
    return fail(ErrorCode::kSystem,
                std::string("rootless: the uplink helper refused ") + what + ": " + desc);
  }
  return j;
}

std::string without_prefix(const std::string& message) {
  const std::string prefix = "rootless: ";
  return message.rfind(prefix, 0) == 0 ? message.substr(prefix.size()) : message;
}

std::string ports_path(const Paths& paths, const std::string& name) {
  return paths.ports_dir + "/" + name;
}

}  // namespace

HostForward host_forward_of(const PortForward& forward) {
  HostForward out;
  out.protocol = forward.protocol;
  if (forward.host_ip) out.host_addr = forward.host_ip->to_string();
  out.port = forward.host_port;
  return out;
}

std::string add_request(const HostForward& forward) {
  return json{{"execute", "add_hostfwd"}, {"arguments", forward_json(forward)}}.dump();
}

std::string list_request() {
  return json{{"execute", "list_hostfwd"}}.dump();
}

std::string remove_request(int id) {
  return json{{"execute", "remove_hostfwd"}, {"arguments", {{"id", id}}}}.dump();
}

Result<int> parse_add_reply(const std::string& reply) {
  auto j = reply_json(reply, "add_hostfwd");
  if (!j) return fail(j.error());
  auto ret = j->find("return");
  if (ret == j->end() || !ret->is_object() || !ret->contains("id") ||
      !(*ret)["id"].is_number_integer()) {
    return fail(ErrorCode::kSystem, "rootless: the uplink helper's add_hostfwd reply has no id");
  }
  return (*ret)["id"].get<int>();
}

Result<std::vector<ListedForward>> parse_list_reply(const std::string& reply) {
  auto j = reply_json(reply, "list_hostfwd");
  if (!j) return fail(j.error());
  auto entries = j->find("entries");
  if (entries == j->end() || !entries->is_array()) {
    return fail(ErrorCode::kSystem, "rootless: the uplink helper's list_hostfwd reply has no list");
  }
  std::vector<ListedForward> out;
  for (const auto& e : *entries) {
    try {
      auto proto = parse_protocol(e.at("proto").get<std::string>());
      if (!proto) continue;
      ListedForward listed;
      listed.id = e.at("id").get<int>();
      listed.forward.protocol = *proto;
      listed.forward.host_addr = e.at("host_addr").get<std::string>();
      listed.forward.port = e.at("host_port").get<std::uint16_t>();
      out.push_back(std::move(listed));
    } catch (const json::exception&) {
      return fail(ErrorCode::kSystem, "rootless: the uplink helper's list_hostfwd reply: " +
                                          e.dump() + " is not a forward");
    }
  }
  return out;
}

Result<void> parse_remove_reply(const std::string& reply) {
  auto j = reply_json(reply, "remove_hostfwd");
  if (!j) return fail(j.error());
  return ok();
}

Result<std::string> HelperApi::call(const std::string& request) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path_.size() >= sizeof addr.sun_path) {
    return fail(ErrorCode::kInvalidArgument,
                "rootless: the helper's API socket path is too long: " + path_);
  }
  std::memcpy(addr.sun_path, path_.c_str(), path_.size() + 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return fail_errno("rootless: socket", errno);
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    return fail_errno("rootless: connect to the uplink helper's API socket " + path_, errno);
  }
  NETCELL_TRY(write_all(fd.get(), request, path_));
  ::shutdown(fd.get(), SHUT_WR);
  std::string reply;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kReplyMs);
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    pollfd pfd{fd.get(), POLLIN, 0};
    int n = left > 0 ? ::poll(&pfd, 1, static_cast<int>(left)) : 0;
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      return fail(ErrorCode::kSystem, "rootless: the uplink helper did not answer within 2 s");
    }
    char buf[4096];
    ssize_t got = ::read(fd.get(), buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return fail_errno("rootless: read the uplink helper's reply", errno);
    if (got == 0) break;
    reply.append(buf, static_cast<std::size_t>(got));
    if (reply.size() > (1U << 20)) {
      return fail(ErrorCode::kSystem, "rootless: the uplink helper's reply is too long");
    }
  }
  return reply;
}

Result<int> HelperApi::add(const HostForward& forward) {
  auto reply = call(add_request(forward));
  if (!reply) return fail(reply.error());
  return parse_add_reply(*reply);
}

Result<std::vector<ListedForward>> HelperApi::list() {
  auto reply = call(list_request());
  if (!reply) return fail(reply.error());
  return parse_list_reply(*reply);
}

Result<void> HelperApi::remove(int id) {
  auto reply = call(remove_request(id));
  if (!reply) return fail(reply.error());
  return parse_remove_reply(*reply);
}

Result<void> HelperApi::remove_all(const std::vector<HostForward>& forwards) {
  if (forwards.empty()) return ok();
  auto listed = list();
  if (!listed) return fail(listed.error());
  for (const auto& l : *listed) {
    for (const auto& f : forwards) {
      if (l.forward == f) {
        NETCELL_TRY(remove(l.id));
        break;
      }
    }
  }
  return ok();
}

Result<void> journal_ports(const Paths& paths, const std::string& name,
                           const std::vector<PortForward>& forwards) {
  if (::mkdir(paths.ports_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return fail_errno("mkdir " + paths.ports_dir, errno);
  }
  std::string text;
  for (const auto& f : forwards) text += f.to_string() + "\n";
  return write_atomically(ports_path(paths, name), text);
}

std::vector<PortForward> journaled_ports(const Paths& paths, const std::string& name) {
  std::vector<PortForward> out;
  auto text = read_file(ports_path(paths, name), 1 << 16);
  if (!text) return out;
  std::istringstream lines(*text);
  std::string line;
  while (std::getline(lines, line)) {
    if (auto f = PortForward::parse(line); f) out.push_back(*f);
  }
  return out;
}

void forget_ports(const Paths& paths, const std::string& name) {
  ::unlink(ports_path(paths, name).c_str());
}

std::vector<std::string> journaled_names(const Paths& paths) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(paths.ports_dir, ec)) {
    std::string name = e.path().filename().string();
    // write_atomically's temporary files of a writer that was killed are not journals.
    if (auto writer = temp_file_writer(name)) {
      if (temp_file_writer_gone(*writer)) ::unlink(e.path().c_str());
      continue;
    }
    out.push_back(std::move(name));
  }
  return out;
}

Result<void> check_ports_free(const Paths& paths, const NamespaceInfo& info) {
  auto conflict = [&](const PortForward& f, const std::string& by) {
    return fail(ErrorCode::kConflict,
                "rootless: host port " + std::to_string(f.host_port) + "/" +
                    std::string(to_string(f.protocol)) + " is published already by '" + by +
                    "' (rootless mode publishes a host port on one host address only)");
  };
  for (const auto& name : journaled_names(paths)) {
    if (name == info.name) continue;
    for (const auto& f : journaled_ports(paths, name)) {
      for (const auto& mine : info.port_forwards) {
        if (mine.protocol == f.protocol && mine.host_port == f.host_port) {
          return conflict(mine, name);
        }
      }
    }
  }
  std::set<std::pair<Protocol, std::uint16_t>> own;
  for (const auto& f : info.port_forwards) {
    if (!own.insert({f.protocol, f.host_port}).second) return conflict(f, info.name);
  }
  return ok();
}

Result<void> publish(const Paths& paths, const NamespaceInfo& info) {
  if (info.port_forwards.empty()) return ok();
  NETCELL_TRY(journal_ports(paths, info.name, info.port_forwards));
  HelperApi api(paths.api_socket);
  std::vector<HostForward> added;
  for (const auto& f : info.port_forwards) {
    auto forward = host_forward_of(f);
    if (auto id = api.add(forward); !id) {
      (void)api.remove_all(added);
      forget_ports(paths, info.name);
      return fail(ErrorCode::kConflict,
                  "rootless: cannot publish host port " + forward.host_addr + ":" +
                      std::to_string(f.host_port) + "/" + std::string(to_string(f.protocol)) +
                      " (the uplink helper could not listen on it: is it in use?): " +
                      without_prefix(id.error().message()));
    }
    added.push_back(forward);
  }
  return ok();
}

Result<void> unpublish(const Paths& paths, const std::string& name) {
  auto forwards = journaled_ports(paths, name);
  std::vector<HostForward> listed;
  for (const auto& f : forwards) listed.push_back(host_forward_of(f));
  if (!listed.empty()) {
    auto removed = HelperApi(paths.api_socket).remove_all(listed);
    if (!removed) {
      return fail(std::move(removed).error().with_context("unpublish the ports of " + name));
    }
  }
  forget_ports(paths, name);
  return ok();
}

void reconcile_ports(const Paths& paths, std::vector<std::string>& notes,
                     std::vector<std::string>& errors) {
  std::vector<HostForward> wanted;
  std::vector<std::string> owner;
  for (const auto& name : journaled_names(paths)) {
    if (::access((paths.netns_dir + "/" + name).c_str(), F_OK) != 0) {
      forget_ports(paths, name);
      notes.push_back("published ports of '" + name + "' (namespace gone)");
      continue;
    }
    for (const auto& f : journaled_ports(paths, name)) {
      wanted.push_back(host_forward_of(f));
      owner.push_back(name);
    }
  }
  HelperApi api(paths.api_socket);
  auto listed = api.list();
  if (!listed) {
    if (!wanted.empty()) errors.push_back(listed.error().to_string());
    return;
  }
  auto text = [](const HostForward& f) {
    return f.host_addr + ":" + std::to_string(f.port) + "/" + std::string(to_string(f.protocol));
  };
  std::vector<bool> present(wanted.size(), false);
  for (const auto& l : *listed) {
    bool keep = false;
    for (std::size_t i = 0; i < wanted.size(); ++i) {
      if (wanted[i] == l.forward && !present[i]) keep = present[i] = true;
    }
    if (keep) continue;
    if (auto removed = api.remove(l.id); !removed) {
      errors.push_back(removed.error().to_string());
    } else {
      notes.push_back("uplink helper's forward of " + text(l.forward) + " (no namespace)");
    }
  }
  for (std::size_t i = 0; i < wanted.size(); ++i) {
    if (present[i]) continue;
    if (auto added = api.add(wanted[i]); !added) {
      errors.push_back("published port " + text(wanted[i]) + " of '" + owner[i] +
                       "' not restored: " + added.error().message());
    } else {
      notes.push_back("uplink helper's forward of " + text(wanted[i]) + " for '" + owner[i] +
                      "' (missing; added again)");
    }
  }
}

}  // namespace netcell::rootless
