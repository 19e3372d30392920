// netcell tests: the host's network state as the kernel and file system show it, to assert that
// an operation (or its undoing) left exactly nothing behind.
#pragma once

#include <string>

namespace netcell::testing {

// Links, IPv4 addresses and routes (`ip -j`), the nftables ruleset, ip_forward, the mounts and
// files in /run/netns, the files in /run/netcell and /etc/netns.
std::string host_state();
// Polls host_state() (up to 3 s) until it equals `expected`; the kernel reaps a veth
// asynchronously after its namespace is unmounted. `last` gets the final reading.
bool settles_to(const std::string& expected, std::string& last);
// The lines of `a` and `b` that differ, for a readable failure.
std::string diff(const std::string& a, const std::string& b);

}  // namespace netcell::testing
