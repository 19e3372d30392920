// netcell: published ports of a rootless session — the uplink helper's host forwards.
//
// A rootless namespace's published port takes two hops: slirp4netns listens on the user's own
// network (HOST_ADDR:PORT, as the user, so ports below ip_unprivileged_port_start are the
// kernel's to refuse) and forwards to the session's guest address (tap0, 10.0.2.100) at the
// same port, where the Linux backend's own DNAT takes it on to the namespace. The forwards are
// asked of the helper over its API socket (`--api-socket`: add_hostfwd, list_hostfwd,
// remove_hostfwd), and journaled per namespace in RUN_DIR/rootless/ports/NAME before they are
// added, so that a helper started again gets them back and gc removes those of a namespace that
// is gone.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "netcell/result.h"
#include "netcell/types.h"
#include "rootless/session.h"

namespace netcell::rootless {

// The session's address on the helper's network, where forwarded connections arrive.
inline constexpr const char* kGuestAddress = "10.0.2.100";

// One host forward: HOST_ADDR:PORT on the user's network to kGuestAddress:PORT.
struct HostForward {
  Protocol protocol = Protocol::kTcp;
  std::string host_addr = "0.0.0.0";
  std::uint16_t port = 0;
  friend bool operator==(const HostForward&, const HostForward&) = default;
};

// The helper's half of a published port (its host address, or every address).
HostForward host_forward_of(const PortForward& forward);

// A forward as the helper lists it, with its id.
struct ListedForward {
  int id = 0;
  HostForward forward{};
};

// The API's requests and replies (pure).
std::string add_request(const HostForward& forward);
std::string list_request();
std::string remove_request(int id);
Result<int> parse_add_reply(const std::string& reply);
Result<std::vector<ListedForward>> parse_list_reply(const std::string& reply);
Result<void> parse_remove_reply(const std::string& reply);

// The helper's API socket: one request a connection, answered within 2 s.
class HelperApi {
 public:
  explicit HelperApi(std::string socket_path) : path_(std::move(socket_path)) {}
  Result<int> add(const HostForward& forward);
  Result<std::vector<ListedForward>> list();
  Result<void> remove(int id);
  // Removes each listed forward equal to one of `forwards` (those not listed are gone already).
  Result<void> remove_all(const std::vector<HostForward>& forwards);

 private:
  Result<std::string> call(const std::string& request);
  std::string path_;
};

// The journal of a namespace's published ports (RUN_DIR/rootless/ports/NAME, one
// PortForward::to_string a line).
Result<void> journal_ports(const Paths& paths, const std::string& name,
                           const std::vector<PortForward>& forwards);
std::vector<PortForward> journaled_ports(const Paths& paths, const std::string& name);
void forget_ports(const Paths& paths, const std::string& name);
// The names of namespaces with a journal.
std::vector<std::string> journaled_names(const Paths& paths);

// Refuses (kConflict, one line) a published port of `info` whose protocol and host port another
// namespace of the session publishes, on whichever host address, or `info` itself twice: inside
// the session a published port is its host port on the session's one address.
Result<void> check_ports_free(const Paths& paths, const NamespaceInfo& info);
// Journals the namespace's published ports and asks the helper for each; on failure takes back
// what it added and the journal, and says which port (a taken one: one line).
Result<void> publish(const Paths& paths, const NamespaceInfo& info);
// Takes the namespace's forwards from the helper, then its journal (kept on failure).
Result<void> unpublish(const Paths& paths, const std::string& name);
// Makes the helper's forwards those of the journals of namespaces mounted in paths.netns_dir (so:
// from inside the session, with its lock held): a journal of a namespace that is gone goes, a
// forward nobody journaled is removed, one journaled but missing (a helper started again) is
// added. Each change goes to `notes`, each failure to `errors`.
void reconcile_ports(const Paths& paths, std::vector<std::string>& notes,
                     std::vector<std::string>& errors);

}  // namespace netcell::rootless
