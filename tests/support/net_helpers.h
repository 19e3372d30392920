// netcell tests: a namespace as netcell and the kernel describe it (its `netcell info`, its
// addresses and MACs through `ip -j`), and commands and connections from inside it, for the
// integration tests that share them.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace netcell::testing {

// `netcell info NS --json` parsed. Throws (and so fails the test) when the CLI prints no JSON, so
// that a missing namespace is never read as one without the field asked for.
nlohmann::json info(const std::string& ns);
// The host end of the namespace's veth as `netcell info` gives it ("" when it has none).
std::string host_if_of(const std::string& ns);

// The namespace's IPv4 address on eth0 as the kernel shows it ("" when it has none).
std::string address_of(const std::string& ns);
// The namespace's global IPv6 address on eth0 as the kernel shows it ("" when it has none).
std::string kernel_address6(const std::string& ns);
// The MAC address of `ifname` in namespace `ns` (the world when empty); "" when there is no such
// link.
std::string mac_of(const std::string& ns, const std::string& ifname);

// What `sh -c cmd` printed inside namespace `ns` through `netcell exec` (in the world when `ns` is
// empty); empty when it failed.
std::string run_in(const std::string& ns, const std::string& cmd);
// What a TCP server at [ip]:port sent, connecting from `ns` (the world when empty), optionally
// from source address `from`; empty when the connection failed.
std::string fetch6(const std::string& ns, const std::string& ip, int port,
                   const std::string& from = "");
// Whether one ICMPv6 echo from `ns` (the world when empty) to `ip` is answered within 1 s.
bool ping6(const std::string& ns, const std::string& ip);

}  // namespace netcell::testing
