#include "support/net_helpers.h"

#include <vector>

#include "support/process.h"

namespace netcell::testing {

nlohmann::json info(const std::string& ns) {
  return nlohmann::json::parse(cli({"info", ns, "--json"}).out);
}

std::string host_if_of(const std::string& ns) {
  return info(ns).value("host_interface", "");
}

std::string address_of(const std::string& ns) {
  for (const auto& link : ip_json({"-n", ns, "-4", "addr", "show", "eth0"})) {
    return link["addr_info"][0]["local"];
  }
  return "";
}

std::string kernel_address6(const std::string& ns) {
  for (const auto& link : ip_json({"-n", ns, "-6", "addr", "show", "dev", "eth0"})) {
    for (const auto& a : link["addr_info"]) {
      if (a.value("scope", "") == "global") return a["local"];
    }
  }
  return "";
}

std::string mac_of(const std::string& ns, const std::string& ifname) {
  std::vector<std::string> args{"link", "show", ifname};
  if (!ns.empty()) args.insert(args.begin(), {"-n", ns});
  auto j = ip_json(args);
  return j.empty() ? "" : j[0].value("address", "");
}

std::string run_in(const std::string& ns, const std::string& cmd) {
  auto r = ns.empty() ? sh(cmd) : cli({"exec", ns, "--", "sh", "-c", cmd});
  return r.exit_code == 0 ? r.out : "";
}

std::string fetch6(const std::string& ns, const std::string& ip, int port,
                   const std::string& from) {
  return run_in(ns, "nc -6 -w 2 " + (from.empty() ? "" : "-s " + from + " ") + ip + " " +
                        std::to_string(port) + " </dev/null");
}

bool ping6(const std::string& ns, const std::string& ip) {
  const std::string cmd = "ping -6 -c 1 -W 1 " + ip + " >/dev/null";
  return (ns.empty() ? sh(cmd) : cli({"exec", ns, "--", "sh", "-c", cmd})).exit_code == 0;
}

}  // namespace netcell::testing
