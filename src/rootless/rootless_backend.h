// netcell: the rootless backend — the Linux backend run inside the user's own namespaces.
#pragma once

#include <memory>
#include <string>

#include "netcell/backend.h"

namespace netcell {

// Every operation on a namespace that is not `shared` first makes the process a member of the
// user's session (rootless/session.h: the holder's user, mount and network namespaces, started
// with its uplink helper when the first namespace is made, and ended by this backend when it is
// destroyed (or by gc) once no namespace and no other member process needs it) and then runs the
// Linux backend's code there: the holder's network namespace is the "host" of private namespaces,
// RUN_DIR/netns their bind mounts, RUN_DIR/etc-netns their /etc files. Commands started in a
// namespace run in a nested user namespace as the user, without any capability over netcell's
// namespaces. Shared namespaces are the user's own network, tracked as the Linux backend tracks
// them. A published port is a forward of the helper's (its API socket: rootless/hostfwd.h) to the
// session's address, where the Linux backend's DNAT takes it on; host ports below the user's
// net.ipv4.ip_unprivileged_port_start are refused. Bridged networks' bridges are made in the
// session's network namespace, journaled and made again by each new session. Rate limits are the
// Linux backend's, inside the session; a process's namespace is adopted
// (--netns-of) only when it belongs to the session's user namespace or one nested in it. Egress
// policies are the Linux backend's too, and their domain rules netcell's resolver's: the host
// service is started by a process that has joined the session (prepare_service), so it serves
// and learns inside the session's namespaces, and it ends with the session. What is not done yet
// (adoption by path) is refused with one line before anything is made. Joining is process-wide:
// operations must come from a single-threaded process (the CLI).
std::unique_ptr<Backend> make_rootless_backend(const std::string& run_dir);

}  // namespace netcell
