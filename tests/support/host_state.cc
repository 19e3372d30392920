#include "support/host_state.h"

#include <chrono>
#include <filesystem>
#include <sstream>
#include <thread>

#include "support/process.h"

namespace netcell::testing {
namespace {

namespace fs = std::filesystem;

std::string files_under(const std::string& dir) {
  std::string out;
  if (!fs::exists(dir)) return out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    // The run dir's IPv6 pool, made once and kept on purpose (networking.h).
    if (e.path().filename() == "private-subnet6") continue;
    out += e.path().string() + "\n";
  }
  return out;
}

}  // namespace

std::string host_state() {
  std::ostringstream s;
  s << "links " << sh("ip -j link show | sed 's/\"operstate\":\"[A-Z]*\",//g'").out;
  // IPv6 global addresses only: the world's own link-local ones finish DAD on their own schedule.
  s << "addrs " << sh("ip -4 -j addr show | sed 's/\"operstate\":\"[A-Z]*\",//g'").out;
  s << "addrs6 "
    << sh("ip -6 -j addr show scope global | sed 's/\"operstate\":\"[A-Z]*\",//g'").out;
  s << "routes " << sh("ip -4 -j route show table all").out;
  s << "routes6 " << sh("ip -6 -j route show").out;
  s << "ipv6 "
    << sh("cat /proc/sys/net/ipv6/conf/all/forwarding /proc/sys/net/ipv6/conf/default/accept_ra")
           .out;
  s << "nft " << sh("nft list ruleset").out;
  s << "ip_forward " << sh("cat /proc/sys/net/ipv4/ip_forward").out;
  s << "send_redirects " << sh("cat /proc/sys/net/ipv4/conf/all/send_redirects").out;
  s << "mounts " << sh("grep ' /run/netns' /proc/self/mountinfo | cut -d' ' -f5").out;
  s << "netns " << files_under("/run/netns");
  s << "run " << files_under("/run/netcell");
  s << "etc " << files_under("/etc/netns");
  return s.str();
}

bool settles_to(const std::string& expected, std::string& last) {
  for (int i = 0; i < 60; ++i) {
    last = host_state();
    if (last == expected) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

std::string diff(const std::string& a, const std::string& b) {
  std::istringstream x(a), y(b);
  std::string l1, l2, out;
  while (true) {
    bool g1 = static_cast<bool>(std::getline(x, l1)), g2 = static_cast<bool>(std::getline(y, l2));
    if (!g1 && !g2) break;
    if (!g1) l1.clear();
    if (!g2) l2.clear();
    if (l1 != l2) out += "- " + l1.substr(0, 400) + "\n+ " + l2.substr(0, 400) + "\n";
  }
  return out;
}

}  // namespace netcell::testing
