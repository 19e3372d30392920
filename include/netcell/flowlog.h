// netcell: the denied-flow log — every new flow a namespace's egress policy refused, and every
// name netcell's resolver refused it, as one JSON line each in a file of that namespace's.
//
//   RUN_DIR/log/NAME.jsonl     the newest lines, appended one write(2) each (O_APPEND), so lines
//                              of concurrent writers never mix
//   RUN_DIR/log/NAME.jsonl.1   the older ones: at kFlowLogMaxBytes the file is renamed to this
//                              (replacing the one before), so a namespace's log stays under twice
//                              that. Both go when the namespace is destroyed (and gc removes the
//                              logs of namespaces that no longer exist).
//
// Lines, one JSON object each ("time": UTC, milliseconds; "rule_index" counts from 0 in the order
// of EgressPolicy::rules, as the counters of `netcell policy show --json` list them):
//   {"time":"2025-05-01T12:00:00.123Z","namespace":"web","kind":"flow","protocol":"tcp",
//    "source":"10.209.0.2","source_port":50000,"destination":"192.0.2.7","port":22,"by":"rule",
//    "rule_index":1,"rule":"deny 192.0.2.0/24:22/tcp","name":"db.example"}
//   "by" is "rule", "default" or "dns" (DNS to another server than netcell's resolver); only
//   "rule" has "rule_index" and "rule". "source_port" and "port" are there for tcp and udp,
//   "icmp_type" and "icmp_code" for icmp, "name" only when a name is known to have resolved to
//   the destination.
//   {"time":"...","namespace":"web","kind":"dns","client":"10.209.0.2","name":"evil.example",
//    "qtype":1,"rcode":5}
//
// Where flow lines come from: the refuse path of netcell's firewall (table ip netcell, chain
// refuse) logs each refused packet to NFLOG group flow_log_group(run_dir) — a number derived from
// the instance's run dir, so that two instances on one host use two groups (one socket per group)
// — at most kFlowLogRate lines a second per namespace after a burst of kFlowLogBurst: a port scan
// costs its own namespace's log lines, never another's. What the limit held back is counted in
// the kernel (FlowLogReader::suppressed). The refusal itself never depends on the log. A
// FlowLogReader turns those packets into DeniedFlow values; whoever runs it (the host service)
// appends them with append_flow_log.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "netcell/address.h"
#include "netcell/manager.h"
#include "netcell/result.h"

namespace netcell {

// Which part of the policy refused a flow.
enum class DeniedBy {
  kRule,     // a deny rule
  kDefault,  // no rule matched and the default is deny
  kDns,      // DNS (port 53) to another server than netcell's resolver, whatever the rules say
};
std::string_view to_string(DeniedBy by);

// One refused flow: its first packet, as the kernel refused it. A flow is its addresses, protocol
// and ports (ICMP: type and code); the reader reports it again only after kFlowQuietSeconds
// without a packet of it (a client resending a datagram is one flow, a new connection another).
struct DeniedFlow {
  std::int64_t time_unix_ms = 0;
  std::string ns;                // the namespace's name; empty when no namespace has the source
  std::uint8_t ip_protocol = 0;  // IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP or any other number
  IpAddress source;
  IpAddress destination;
  std::uint16_t port = 0;         // tcp and udp: the destination port; else 0
  std::uint16_t source_port = 0;  // tcp and udp
  std::uint8_t icmp_type = 0;
  std::uint8_t icmp_code = 0;
  DeniedBy by = DeniedBy::kDefault;
  // kRule: the deny rule's index in EgressPolicy::rules and its text ("deny 192.0.2.0/24/any"),
  // when the namespace's policy (read when the flow was logged) names it.
  std::optional<std::size_t> rule_index;
  std::string rule;
  // The last name netcell's resolver answered with this destination for the namespace, if any.
  std::optional<std::string> name;
  friend bool operator==(const DeniedFlow&, const DeniedFlow&) = default;
};

// One name netcell's resolver refused to resolve for a namespace.
struct DeniedQuery {
  std::int64_t time_unix_ms = 0;
  std::string ns;
  IpAddress client;         // the address the query came from
  std::string name;         // as asked, without the trailing dot
  std::uint16_t qtype = 0;  // 1 A, 28 AAAA, ...
  std::uint16_t rcode = 0;  // the answer's code: 5 REFUSED, 3 NXDOMAIN, ...
  friend bool operator==(const DeniedQuery&, const DeniedQuery&) = default;
};

using FlowLogRecord = std::variant<DeniedFlow, DeniedQuery>;

// The record as one JSON line (no newline) / read back from one; kInvalidArgument for anything
// that is not such a line.
std::string to_json_line(const FlowLogRecord& record);
Result<FlowLogRecord> parse_flow_log_line(std::string_view line);
// One line for people: "2025-05-01T12:00:00.123Z tcp 10.209.0.2 -> 192.0.2.7:22 (db.example)
// refused by deny 192.0.2.0/24:22/tcp".
std::string to_text(const FlowLogRecord& record);
// "2025-05-01T12:00:00.123Z".
std::string format_log_time(std::int64_t unix_ms);

inline constexpr std::size_t kFlowLogMaxBytes = 1 << 20;
inline constexpr unsigned kFlowLogRate = 10;   // lines a second per namespace, after the burst
inline constexpr unsigned kFlowLogBurst = 20;  // lines
inline constexpr unsigned kFlowQuietSeconds = 10;

// RUN_DIR/log/NAME.jsonl (the older file is that and ".1").
std::string flow_log_path(const std::string& run_dir, const std::string& ns);
// Appends the record's line to the namespace's log, first rotating it when the line would take
// it past `max_bytes` (writers that find room at the same moment may each add theirs). Safe with
// concurrent writers (processes and threads): one write each, and a rotation is done once however
// many writers see the file full. kInvalidArgument for a bad name.
Result<void> append_flow_log(const std::string& run_dir, const std::string& ns,
                             const FlowLogRecord& record, std::size_t max_bytes = kFlowLogMaxBytes);
// The last `last` lines of the namespace's log (every line without it), oldest first; none when
// it has no log.
Result<std::vector<std::string>> read_flow_log(const std::string& run_dir, const std::string& ns,
                                               std::optional<std::size_t> last = std::nullopt);
// Removes both files; a log that is not there counts as removed.
Result<void> remove_flow_log(const std::string& run_dir, const std::string& ns);
// The names whose logs are in the run dir (for gc: those of namespaces that are gone).
std::vector<std::string> flow_log_names(const std::string& run_dir);

// The NFLOG group of the instance with this run dir (the run dir as ManagerOptions resolve it):
// 4096..65535, from a hash of the instance's owner tag.
std::uint16_t flow_log_group(const std::string& run_dir);

// Reads the kernel's log of refused packets for one instance (Linux backend; needs
// CAP_NET_ADMIN) in the network namespace of the thread that opens it — the one the instance's
// firewall is in (the host's). Only one socket can read a group: a second reader of the same
// instance gets kConflict. Not thread-safe; the manager must outlive the reader.
//
// In an epoll loop: add fd() for EPOLLIN (level-triggered); on each wake-up call drain(); it never
// blocks and returns after at most a bounded batch, so a flood cannot starve the loop (with more
// queued, fd() stays readable and the next wait returns at once).
class FlowLogReader {
 public:
  static Result<FlowLogReader> open(NamespaceManager& manager);
  FlowLogReader(FlowLogReader&&) noexcept;
  FlowLogReader& operator=(FlowLogReader&&) noexcept;
  ~FlowLogReader();

  int fd() const;
  std::uint16_t group() const;

  // The name the caller's resolver last answered with `destination` for namespace `ns`.
  using NameLookup =
      std::function<std::optional<std::string>(const std::string& ns, const IpAddress& dst)>;
  // Calls `on_flow` for every refused packet queued now, with its namespace (from the source
  // address; the namespaces are re-read when an unknown source or an outdated policy shows up)
  // and the rule (EgressPolicy::decide on that namespace's policy), and `lookup`'s name. Returns
  // how many; packets that are not netcell's are skipped.
  Result<std::size_t> drain(const std::function<void(const DeniedFlow&)>& on_flow,
                            const NameLookup& lookup = nullptr);
  // Log messages the kernel dropped because this socket's buffer was full, since open.
  std::uint64_t lost() const;
  // Refused packets the rate limit kept out of the log, every namespace's, since the firewall
  // table was made (the kernel's counter `log_suppressed`).
  Result<std::uint64_t> suppressed();

 private:
  struct Impl;
  explicit FlowLogReader(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace netcell
