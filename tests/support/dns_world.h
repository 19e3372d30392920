// netcell tests: DNS in a world — the stub authoritative server (dns_stub.py) and its query log,
// lookups with dig and dns_probe.py from inside namespaces, the addresses netcell's resolver
// learned (`nft -j`), and the host service's record. Header-only, for the resolver's tests.
#pragma once

#include <sys/types.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "support/process.h"

namespace netcell::testing {

// A file of tests/support (this header's own directory), by absolute path.
inline std::string support_file(const std::string& name) {
  return std::string(NETCELL_TEST_SUPPORT_DIR) + "/" + name;
}

// What dig made of an answer: "no answer" when none came, else the status (NOERROR, REFUSED...),
// the header's flags and the A records.
struct Dig {
  std::string status = "no answer";
  std::string flags;
  std::vector<std::string> a;

  bool tc() const {
    std::istringstream words(flags);
    for (std::string w; words >> w;) {
      if (w == "tc") return true;
    }
    return false;
  }
  std::string joined() const {
    std::string out;
    for (const auto& x : a) {
      if (!out.empty()) out += ' ';
      out += x;
    }
    return out;
  }
};

// dig (one try, 1 s, `extra` options) from inside `ns` (the world when empty) at `server`.
inline Dig dig(const std::string& ns, const std::string& server, const std::string& name,
               const std::string& extra = "") {
  const std::string where = ns.empty() ? "" : "ip netns exec " + ns + " ";
  auto r = sh(where + "dig +time=1 +tries=1 " + extra + " @" + server + " " + name + " 2>&1", 5000);
  Dig d;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    if (auto at = line.find("status: "); at != std::string::npos) {
      d.status = line.substr(at + 8, line.find(',', at) - at - 8);
    }
    if (auto at = line.find(";; flags: "); at != std::string::npos) {
      d.flags = line.substr(at + 10, line.find(';', at + 10) - at - 10);
    }
    if (line.empty() || line[0] == ';') continue;
    std::istringstream f(line);
    std::string owner, ttl, cls, type, data;
    f >> owner >> ttl >> cls >> type >> data;
    if (type == "A" || type == "AAAA") d.a.push_back(data);
  }
  return d;
}

// tests/support/dns_probe.py ARGS from inside `ns` (the world when empty): its line of output.
inline std::string dns_probe(const std::string& ns, const std::string& args,
                             int timeout_ms = 5000) {
  const std::string where = ns.empty() ? "" : "ip netns exec " + ns + " ";
  auto r = sh(where + "python3 " + support_file("dns_probe.py") + " " + args, timeout_ms);
  std::string out = r.out;
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out.empty() ? "probe failed: " + r.err : out;
}

// dns_stub.py serving `zone` on `address`:53 in namespace `netns`, for at most 120 s; the
// destructor ends it. Files under /run (the world's own): the zone, the log, the pid.
class DnsStub {
 public:
  DnsStub(const std::string& netns, const std::string& address, const nlohmann::json& zone,
          const std::string& tag = "stub")
      : log_("/run/" + tag + ".log"), pid_file_("/run/" + tag + ".pid") {
    const std::string config = "/run/" + tag + "-zone.json";
    {
      std::ofstream out(config);
      out << zone.dump();
      std::ofstream fresh(log_, std::ios::trunc);  // the log of this stub's queries only
    }
    auto r = sh("ip netns exec " + netns + " python3 " + support_file("dns_stub.py") +
                " --config " + config + " --listen " + address + " --log " + log_ +
                " --lifetime 120 --daemon --pid-file " + pid_file_);
    error_ = r.exit_code == 0 ? "" : "dns_stub.py: " + r.err;
  }
  ~DnsStub() { sh("kill $(cat " + pid_file_ + " 2>/dev/null) 2>/dev/null; true"); }
  DnsStub(const DnsStub&) = delete;
  DnsStub& operator=(const DnsStub&) = delete;

  // Empty once it serves, else why not.
  const std::string& error() const { return error_; }
  std::string log() const {
    std::ifstream in(log_);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }
  // Queries it got for `name` (over `transport`, "udp" or "tcp", when given).
  int saw(const std::string& name, const std::string& transport = "") const {
    return count([&](const std::string& via, const std::string& qname) {
      return qname == name && (transport.empty() || via == transport);
    });
  }
  // Queries it got for names ending in `suffix`.
  int saw_ending(const std::string& suffix) const {
    return count([&](const std::string&, const std::string& qname) {
      return qname.size() >= suffix.size() &&
             qname.compare(qname.size() - suffix.size(), suffix.size(), suffix) == 0;
    });
  }

 private:
  template <typename Match>
  int count(Match match) const {
    std::istringstream lines(log());
    int n = 0;
    for (std::string line; std::getline(lines, line);) {
      std::istringstream f(line);
      std::string via, type, qname;
      f >> via >> type >> qname;
      n += match(via, qname);
    }
    return n;
  }
  std::string log_, pid_file_, error_;
};

// One element of table ip netcell's pol_learned_tp (ip6: pol6_learned_tp) as `nft -j` shows it.
struct LearnedElement {
  std::string source, destination, protocol;
  int first = 0, last = 0;
  long timeout = 0;  // seconds
};
inline std::vector<LearnedElement> learned_tp(const std::string& family = "ip") {
  auto j = testing::nft_sets(family == "ip6" ? "pol6_learned_tp" : "pol_learned_tp", family);
  std::vector<LearnedElement> out;
  if (j.is_discarded() || !j.contains("nftables")) return out;
  for (const auto& item : j["nftables"]) {
    if (!item.contains("set") || !item["set"].contains("elem")) continue;
    for (const auto& e : item["set"]["elem"]) {
      const auto& elem = e.contains("elem") ? e["elem"] : e;
      const auto& val = elem.contains("val") ? elem["val"] : elem;
      if (!val.contains("concat") || val["concat"].size() != 4) continue;
      LearnedElement l;
      l.source = val["concat"][0];
      l.destination = val["concat"][1];
      l.protocol = val["concat"][2];
      const auto& ports = val["concat"][3];
      if (ports.is_number()) {
        l.first = l.last = ports;
      } else if (ports.contains("range")) {
        l.first = ports["range"][0];
        l.last = ports["range"][1];
      }
      l.timeout = elem.value("timeout", 0L);
      out.push_back(l);
    }
  }
  return out;
}
// Elements for `destination` (of namespace address `source` when given) in `family`'s table.
inline int learned(const std::string& destination, const std::string& source = "",
                   const std::string& family = "ip") {
  int n = 0;
  for (const auto& l : learned_tp(family)) {
    n += l.destination == destination && (source.empty() || l.source == source);
  }
  return n;
}

// A field of the host service's record (RUN_DIR/service.json), 0 when there is none.
inline long service_field(const std::string& field, const std::string& run_dir = "/run/netcell") {
  std::ifstream in(run_dir + "/service.json");
  auto j = nlohmann::json::parse(in, nullptr, false);
  return j.is_object() ? j.value(field, 0L) : 0;
}
inline pid_t service_pid() {
  return static_cast<pid_t>(service_field("pid"));
}
inline int service_port() {
  return static_cast<int>(service_field("port"));
}

}  // namespace netcell::testing
