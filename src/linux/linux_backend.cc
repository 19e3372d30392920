#include "linux/linux_backend.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/if_addr.h>
#include <linux/ip.h>
#include <linux/nsfs.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_set>

#include "core/fault.h"
#include "linux/firewall.h"
#include "linux/leftovers.h"
#include "linux/link.h"
#include "linux/netlink.h"
#include "linux/netns.h"
#include "linux/qos.h"
#include "linux/spawn.h"

namespace netcell {
namespace {

using kernel::NetlinkSocket;

// The index a namespace's first link gets when netcell creates it (lo is always 1).
constexpr int kFreshNetnsPeerIndex = 2;

// Interfaces and counters of one network namespace, read over a socket opened inside it.
struct NetnsSnapshot {
  std::vector<kernel::LinkRecord> links;
  std::vector<kernel::AddrRecord> addresses;
};

Result<NetnsSnapshot> snapshot(NetlinkSocket& socket, bool with_addresses) {
  NetnsSnapshot snap;
  auto links = kernel::list_links(socket);
  if (!links) return fail(links.error());
  snap.links = std::move(*links);
  if (with_addresses) {
    auto addrs = kernel::list_addresses(socket);
    if (!addrs) return fail(addrs.error());
    snap.addresses = std::move(*addrs);
  }
  return snap;
}

// Reads the namespace at `path` (or the caller's own when empty).
Result<NetnsSnapshot> snapshot_of(const std::string& path, bool with_addresses) {
  if (path.empty()) {
    auto socket = NetlinkSocket::open();
    if (!socket) return fail(socket.error());
    return snapshot(*socket, with_addresses);
  }
  auto fd = kernel::open_netns(path);
  if (!fd) return fail(fd.error());
  auto socket = kernel::open_netlink_in(fd->get());
  if (!socket) return fail(socket.error());
  return snapshot(*socket, with_addresses);
}

std::vector<InterfaceInfo> interfaces_of(const NetnsSnapshot& snap) {
  std::vector<InterfaceInfo> out;
  for (const auto& link : snap.links) {
    InterfaceInfo iface{link.name, {}, link.mtu, link.mac};
    for (const auto& a : snap.addresses) {
      if (a.ifindex == link.ifindex) iface.addresses.push_back(a.prefix);
    }
    out.push_back(std::move(iface));
  }
  return out;
}

// A host-side link that faces namespaces (a private veth's host end, a bridge) carries IPv4 only:
// IPv6 there would bypass the IPv4 firewall, and the host would take router advertisements from
// the namespace (a default route and addresses pointing into it). arp_ignore=2 answers, and so
// learns a neighbour from, only ARP requests whose sender is on the link's own subnet: a namespace
// cannot fill the host's neighbour table with other addresses. route_localnet: publishing on the
// host's 127.0.0.1 routes DNATed loopback packets out of this link. No IPv6 link-local address
// either: nothing to solicit or defend. No ICMP redirects: the host routes peer traffic of bridged
// namespaces with a policy back out of the bridge it came in on (firewall.h), and each redirect
// it would send uses up the ICMP rate limit of that source, so the admin-prohibited errors of its
// denied flows would not be sent (the kernel's redirect switch is conf.all OR the link's own, so
// the backend turns conf.all off too, see disable_redirects). These go in one netlink message (to
// be sent before the link comes up); disable_ipv6 is written through /proc/sys: IPv6 device
// settings other than addr_gen_mode have no netlink setter.
kernel::NlMessage host_facing_link_af(const std::string& name) {
  return kernel::rtnl::set_link_af(name,
                                   {{IPV4_DEVCONF_ARP_IGNORE, 2},
                                    {IPV4_DEVCONF_ROUTE_LOCALNET, 1},
                                    {IPV4_DEVCONF_SEND_REDIRECTS, 0}},
                                   /*ipv6_addr_gen_none=*/true);
}

// The network address of an IPv6 prefix ("fd00:1:2:3::2/64" -> "fd00:1:2:3::/64").
IpPrefix network_of(const IpPrefix& prefix) {
  auto bytes = prefix.address.bytes();
  for (int bit = prefix.prefix_len; bit < 128; ++bit) {
    bytes[bit / 8] = static_cast<std::uint8_t>(bytes[bit / 8] & ~(0x80u >> (bit % 8)));
  }
  return IpPrefix{IpAddress::v6(bytes), prefix.prefix_len};
}

Result<void> disable_ipv6(const std::string& name) {
  auto v6 = kernel::write_sysctl("net.ipv6.conf." + name + ".disable_ipv6", "1");
  if (!v6 && v6.error().code() != ErrorCode::kNotFound) return v6;  // absent: no IPv6 at all
  return ok();
}

class LinuxBackend final : public Backend {
 public:
  explicit LinuxBackend(LinuxBackendOptions options) : options_(std::move(options)) {}

  BackendKind kind() const override { return BackendKind::kLinux; }
  bool enforces_isolation() const override { return true; }

  Result<NamespaceInfo> plan(const NamespaceInfo& info) override {
    NamespaceInfo out = info;
    if (info.mode == IsolationMode::kShared) return out;  // the host's own network
    if (!info.network.empty()) {
      // Before anything is made: another instance's firewall, links and pool are not shared.
      NETCELL_TRY(with_firewall([](kernel::Firewall& fw) { return fw.check_owner(); }));
    }
    if (!info.adopted_netns_path.empty()) {
      NETCELL_TRY(check_adopted_path(info));
      out.netns_path = info.adopted_netns_path;
      return out;
    }
    out.netns_path = path_of(info.name);
    struct stat st {};
    if (::lstat(out.netns_path.c_str(), &st) == 0) {
      return fail(ErrorCode::kAlreadyExists,
                  out.netns_path + " already exists (a network namespace netcell does not manage)");
    }
    return out;
  }

  Result<NamespaceInfo> create(const NamespaceInfo& info, const NetworkInfo* network) override {
    NamespaceInfo out = info;
    if (info.mode == IsolationMode::kShared) return out;
    if (!info.network.empty()) check_shared_epoch();  // what goes with the last one (manager.cc)
    // A namespace netcell makes comes with a socket bound inside it: everything inside is then
    // configured and read back from this thread. An adopted one is entered on a thread per step.
    std::optional<NetlinkSocket> inside;
    if (!info.adopted_netns_path.empty()) {
      NETCELL_TRY(check_adopted_path(info));  // still the namespace planned for
    } else if (auto dir = prepare_dir(); !dir) {
      return fail(dir.error());
    } else if (info.adopted_from_pid > 0) {
      NETCELL_TRY(kernel::adopt_named_netns(options_.netns_dir, info.name, info.adopted_from_pid));
    } else {
      // A private namespace's one link is its host end (a topology may add others), toward which
      // the ip6 table drops every router advertisement; a full one has no link at all. A bridged
      // one's is its port: the host's bridge sends no advertisement (the same drop, and no IPv6
      // on netcell's bridges), and the bridge table passes only IPv4 and ARP from the ports, so
      // no peer's advertisement reaches it either (firewall.cc; a bridged IPv6 network will need
      // an advertisement guard there first).
      const bool host_end_only = info.topology.empty() && (info.mode == IsolationMode::kPrivate ||
                                                           info.mode == IsolationMode::kFull ||
                                                           info.mode == IsolationMode::kBridged);
      auto made = kernel::create_named_netns(
          options_.netns_dir, info.name,
          host_end_only ? kernel::RouterAdverts::kNoneCanArrive : kernel::RouterAdverts::kRefuse);
      if (!made) return fail(made.error());
      inside.emplace(std::move(*made));
    }
    fault_point("create: netns mounted");
    // The socket inside holds a reference to the namespace: closed before a rollback, so the
    // namespace it made is freed by the kernel rather than cut.
    auto roll_back = [&] {
      inside.reset();
      (void)destroy(out, DestroyOptions{});
    };
    auto made = network == nullptr ? ok() : connect(out, *network, inside);
    if (!made) {
      roll_back();
      return fail(made.error());
    }
    auto snap = inside ? snapshot(*inside, /*with_addresses=*/true)
                       : snapshot_of(out.netns_path, /*with_addresses=*/true);
    if (!snap) {
      roll_back();
      return fail(std::move(snap).error().with_context("read back"));
    }
    out.interfaces = interfaces_of(*snap);
    if (!info.adopted_netns_path.empty()) {
      // The namespace is its owner's and has interfaces of others (the runtime's loopback, another
      // attachment's): the record keeps netcell's own.
      std::erase_if(out.interfaces, [&](const InterfaceInfo& i) {
        return info.interfaces.empty() || i.name != info.interfaces[0].name;
      });
    }
    return out;
  }

  Result<void> destroy(const NamespaceInfo& info, const DestroyOptions& options) override {
    if (info.mode == IsolationMode::kShared) return ok();
    std::optional<Error> first;
    if (!info.network.empty()) {
      auto removed =
          with_firewall([&](kernel::Firewall& fw) { return fw.remove_namespace(rules_of(info)); });
      if (!removed) first = removed.error();
      fault_point("destroy: firewall elements removed");
      std::string dir = options_.etc_netns_dir + "/" + info.name;
      ::unlink((dir + "/resolv.conf").c_str());
      ::rmdir(dir.c_str());
    }
    const bool adopted = info.adopted_from_pid > 0 || !info.adopted_netns_path.empty();
    if (adopted && !info.host_interface.empty()) {
      // An adopted namespace lives on with its process, and so would the veth: delete the pair
      // through its host end (synchronous, notes §1.4), which also takes the namespace side's
      // address and routes.
      auto deleted = delete_host_end(info);
      if (!deleted && !first) first = deleted.error();
    }
    if (!info.adopted_netns_path.empty()) {
      // Nothing of netcell's was mounted: the namespace is its owner's.
    } else if (info.adopted_from_pid > 0) {
      auto unmounted = remove_netns(info);
      if (!unmounted) return unmounted;
    } else if (auto removed = remove_made_netns(info, options); !removed) {
      return removed;
    }
    if (first) return fail(*first);
    return ok();
  }

  // Unmounts a namespace netcell made, and makes sure nothing left inside it keeps a network
  // (leftovers.h): ends what is inside when asked, unmounts, and deletes its links if anything
  // still holds it.
  Result<void> remove_made_netns(const NamespaceInfo& info, const DestroyOptions& options) {
    if (info.netns_path.empty()) return ok();  // creation never got that far
    NETCELL_TRY(check_recorded_path(info));
    if (!kernel::is_netns_mount(info.netns_path)) {
      // An interrupted destroy unmounted it already (or someone else did): the namespace cannot
      // be reached any more, but its veth may live on with whatever holds it. The host end is
      // this record's (its address block is still claimed by it): delete it by name.
      NETCELL_TRY(delete_host_end(info));
      return kernel::remove_named_netns(options_.netns_dir, info.name);
    }
    auto fd = kernel::open_netns(info.netns_path);
    if (!fd) return fail(fd.error());
    auto id = kernel::netns_id_of_fd(fd->get());
    if (!id) return fail(id.error());
    if (options.kill_processes) kernel::end_processes_in(*id);
    auto handle = kernel::NetnsHandle::of(fd->get());
    if (!handle && handle.error().code() != ErrorCode::kUnsupported) return fail(handle.error());
    if (!handle && !kernel::processes_in(*id, /*threads_too=*/true).empty()) {
      // No nsfs file handles (before Linux 6.18): what holds it is seen only as processes and
      // threads inside; cut before the unmount. Fds and sockets held from outside are not seen
      // here; the firewall drops what comes from such a link (firewall.h, guard).
      NETCELL_TRY(kernel::cut_links(fd->get()));
    }
    fd->reset();  // netcell's own reference
    NETCELL_TRY(kernel::remove_named_netns(options_.netns_dir, info.name));
    fault_point("destroy: unmounted");
    if (handle) {
      auto held = handle->reopen();
      if (!held) return fail(held.error());
      if (*held) NETCELL_TRY(kernel::cut_links((*held)->get()));
    }
    return ok();
  }

  // Deletes the host end of the namespace's veth, found by the name recorded for it.
  Result<void> delete_host_end(const NamespaceInfo& info) {
    if (info.host_interface.empty()) return ok();
    return with_host([&](kernel::NetlinkSocket& nl) -> Result<void> {
      auto r = nl.request(kernel::rtnl::link_delete(info.host_interface));
      if (!r && r.error().code() != ErrorCode::kNotFound) return r;
      return ok();
    });
  }

  Result<void> check_recorded_path(const NamespaceInfo& info) const {
    if (info.netns_path != path_of(info.name)) {
      return fail(ErrorCode::kCorrupt, "record points at " + info.netns_path + ", not " +
                                           path_of(info.name) + "; refusing to remove it");
    }
    return ok();
  }

  Result<void> remove_netns(const NamespaceInfo& info) {
    // Only a path netcell itself recorded for this name is ever unmounted: a hand-edited record
    // pointing elsewhere is refused rather than obeyed.
    if (info.netns_path.empty()) return ok();  // creation never got that far
    NETCELL_TRY(check_recorded_path(info));
    return kernel::remove_named_netns(options_.netns_dir, info.name);
  }

  bool alive(const NamespaceInfo& info) override {
    if (info.mode == IsolationMode::kShared) return true;
    if (!info.adopted_netns_path.empty()) return check_adopted_path(info).has_value();
    return !info.netns_path.empty() && kernel::is_netns_mount(info.netns_path);
  }

  Result<void> verify(const NamespaceInfo& info) override {
    if (info.mode == IsolationMode::kShared) return ok();
    if (!info.adopted_netns_path.empty()) {
      NETCELL_TRY(check_adopted_path(info));
    } else if (!alive(info)) {
      return fail(ErrorCode::kNotFound, "network namespace " + info.netns_path + " is gone");
    }
    auto netns = kernel::open_netns(info.netns_path);
    if (!netns) return fail(netns.error());
    auto nl = kernel::open_netlink_in(netns->get());
    if (!nl) return fail(nl.error());
    auto snap = snapshot(*nl, /*with_addresses=*/true);
    if (!snap) return fail(snap.error());
    for (const auto& want : info.interfaces) {
      auto link = std::find_if(snap->links.begin(), snap->links.end(),
                               [&](const kernel::LinkRecord& l) { return l.name == want.name; });
      if (link == snap->links.end()) {
        return fail(ErrorCode::kNotFound, "interface " + want.name + " is missing");
      }
      if ((link->flags & IFF_UP) == 0) {
        return fail(ErrorCode::kNotFound, "interface " + want.name + " is down");
      }
      for (const auto& address : want.addresses) {
        bool found = std::any_of(snap->addresses.begin(), snap->addresses.end(),
                                 [&](const kernel::AddrRecord& a) {
                                   return a.ifindex == link->ifindex && a.prefix == address;
                                 });
        if (!found) {
          return fail(ErrorCode::kNotFound,
                      "address " + address.to_string() + " of " + want.name + " is missing");
        }
      }
    }
    // Its isolation, anti-spoofing, NAT, published ports and policy: every element in the tables.
    if (!info.network.empty()) {
      NETCELL_TRY(
          with_firewall([&](kernel::Firewall& fw) { return fw.verify_namespace(rules_of(info)); }));
    }
    if (info.host_interface.empty() || !info.gateway) return ok();
    // A second attachment of a namespace adopted by path leaves the first one's default route.
    for (const auto& gateway : {info.gateway, info.gateway6}) {
      if (!gateway) continue;
      auto routes = kernel::list_routes(*nl, gateway->is_v4() ? AF_INET : AF_INET6);
      if (!routes) return fail(routes.error());
      bool any_default = false, ours = false;
      for (const auto& r : *routes) {
        if (r.dst.prefix_len != 0) continue;
        any_default = true;
        ours = ours || (r.gateway && *r.gateway == *gateway);
      }
      if (!ours && !(any_default && !info.adopted_netns_path.empty())) {
        return fail(ErrorCode::kNotFound,
                    "the default route via " + gateway->to_string() + " is missing");
      }
    }
    return with_host([&](kernel::NetlinkSocket& host) -> Result<void> {
      auto links = kernel::list_links(host);
      if (!links) return fail(links.error());
      auto l = std::find_if(links->begin(), links->end(), [&](const kernel::LinkRecord& r) {
        return r.name == info.host_interface;
      });
      if (l == links->end()) {
        return fail(ErrorCode::kNotFound, "host end " + info.host_interface + " is missing");
      }
      if ((l->flags & IFF_UP) == 0) {
        return fail(ErrorCode::kNotFound, "host end " + info.host_interface + " is down");
      }
      // A private namespace's IPv6 gateway is an address of the host's lo (ensure_gateway6),
      // unless it was made by a netcell that put it on the host end.
      if (info.mode != IsolationMode::kPrivate || !info.gateway6) return ok();
      auto addrs = kernel::list_addresses(host);
      if (!addrs) return fail(addrs.error());
      const bool there =
          std::any_of(addrs->begin(), addrs->end(), [&](const kernel::AddrRecord& a) {
            return a.prefix.address == *info.gateway6 &&
                   (a.ifindex == kLoopbackIndex || a.ifindex == l->ifindex);
          });
      if (!there) {
        return fail(ErrorCode::kNotFound,
                    "the IPv6 gateway " + info.gateway6->to_string() + " is not on the host's lo");
      }
      return ok();
    });
  }

  Result<void> ready() override { return kernel::probe_firewall(); }

  Result<NamespaceStats> stats(const NamespaceInfo& info) override {
    std::string path = info.mode == IsolationMode::kShared ? "" : info.netns_path;
    if (!path.empty() && !kernel::is_netns_mount(path)) {
      return fail(ErrorCode::kNotFound, "network namespace " + path + " is gone");
    }
    auto snap = snapshot_of(path, /*with_addresses=*/false);
    if (!snap) return fail(snap.error());
    NamespaceStats stats;
    stats.name = info.name;
    stats.total.name = "total";
    for (const auto& link : snap->links) {
      stats.interfaces.push_back(link.stats);
      stats.total += link.stats;
    }
    return stats;
  }

  Result<Child> spawn(const NamespaceInfo& info, const std::vector<std::string>& argv,
                      const SpawnOptions& options) override {
    kernel::SpawnRequest request;
    request.argv = argv;
    request.new_pid_namespace = options.new_pid_namespace;
    request.init = options.init;
    request.new_session = options.detach;
    UniqueFd null_in, output;
    if (options.detach) {
      null_in.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
      if (!null_in) return fail_errno("open /dev/null", errno);
      request.stdin_fd = null_in.get();
      if (!options.output_path.empty()) {
        output.reset(
            ::open(options.output_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640));
        if (!output) return fail_errno("open " + options.output_path, errno);
        request.stdout_fd = output.get();
        request.stderr_fd = output.get();
      }
    }
    if (options.stdin_fd >= 0) request.stdin_fd = options.stdin_fd;
    if (options.stdout_fd >= 0) request.stdout_fd = options.stdout_fd;
    if (options.stderr_fd >= 0) request.stderr_fd = options.stderr_fd;
    UniqueFd netns;
    if (info.mode != IsolationMode::kShared) {
      auto fd = kernel::open_netns(info.netns_path);
      if (!fd) return fail(fd.error());
      netns = std::move(*fd);
      request.netns_fd = netns.get();
      request.netns_name = info.name;
      std::string etc = options_.etc_netns_dir + "/" + info.name;
      struct stat st {};
      if (::stat(etc.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) request.etc_dir = etc;
      request.nested_uid = options_.nested_uid;
      request.nested_gid = options_.nested_gid;
    }
    return kernel::spawn(request);
  }

  Result<void> create_network(const NetworkInfo& network) override {
    check_shared_epoch();
    NETCELL_TRY(with_firewall([](kernel::Firewall& fw) { return fw.ensure_table(); }));
    // The bridge is made here or not at all: a link of that name that exists already is somebody
    // else's and is never taken over (or, on failure, deleted).
    bool bridge_made = false;
    auto made = with_host([&](kernel::NetlinkSocket& nl) -> Result<void> {
      auto bridge = nl.request(kernel::rtnl::bridge_create(network.bridge, 1500));
      if (!bridge && bridge.error().code() == ErrorCode::kAlreadyExists) {
        return fail(ErrorCode::kConflict,
                    "a link named " + network.bridge + " exists already and is not netcell's");
      }
      NETCELL_TRY(bridge);
      bridge_made = true;
      auto index = kernel::link_index(nl, network.bridge);
      if (!index) return fail(index.error());
      NETCELL_TRY(request_ok_if_exists(
          nl,
          kernel::rtnl::addr_add(*index, IpPrefix{*network.gateway, network.subnet.prefix_len})));
      if (network.subnet6) {
        // Dual stack: the gateway's IPv6 address at once (no duplicate address detection), with
        // its prefix route, and no router advertisement taken (none sent either: the ip6 table's
        // output chain drops them). No generated link-local address (host_facing_link_af), but
        // fe80::1: the kernel solicits a neighbour for a packet it forwards (a source not its
        // own) only from a link-local address, so without one the host could not reach a
        // namespace that never spoke first (a policy namespace's routed peer traffic, a
        // published port). The namespaces never use it: a port may send only from its own
        // global address (port_src6).
        NETCELL_TRY(kernel::write_sysctl("net.ipv6.conf." + network.bridge + ".accept_ra", "0"));
        NETCELL_TRY(request_ok_if_exists(
            nl, kernel::rtnl::addr_add(*index, *IpPrefix::parse("fe80::1/64"), {}, IFA_F_NODAD)));
        NETCELL_TRY(request_ok_if_exists(
            nl,
            kernel::rtnl::addr_add(*index, IpPrefix{*network.gateway6, network.subnet6->prefix_len},
                                   {}, IFA_F_NODAD)));
      } else {
        NETCELL_TRY(disable_ipv6(network.bridge));
      }
      return nl.request_all({host_facing_link_af(network.bridge),
                             kernel::rtnl::bridge_fdb_add_local(*index, kernel::kHostMac),
                             kernel::rtnl::link_set(network.bridge, true)});
    });
    auto filtered =
        made.and_then([&] { return enable_forwarding(); })
            .and_then([&] { return network.subnet6 ? enable_forwarding6() : ok(); })
            .and_then([&] { return disable_redirects(); })
            .and_then([&] {
              return with_firewall([&](kernel::Firewall& fw) {
                return fw.apply(kernel::nft_script::add_network(network_rules(network)));
              });
            });
    if (!filtered) {
      if (bridge_made) (void)destroy_network(network);  // the bridge and elements are its own
      return fail(std::move(filtered).error().with_context("bridge " + network.bridge));
    }
    return ok();
  }

  Result<void> destroy_network(const NetworkInfo& network) override {
    auto fw = with_firewall([&](kernel::Firewall& f) {
      return f.apply_each(kernel::nft_script::delete_network(network_rules(network)));
    });
    auto link = with_host([&](kernel::NetlinkSocket& nl) -> Result<void> {
      auto r = nl.request(kernel::rtnl::link_delete(network.bridge));
      if (!r && r.error().code() != ErrorCode::kNotFound) return r;
      return ok();
    });
    if (!link) return link;
    return fw;
  }

  Result<void> release_shared_state() override {
    // First: whatever else fails below, every process's next create looks at the host anew.
    ::unlink(shared_epoch_path().c_str());
    auto removed = with_firewall([](kernel::Firewall& fw) { return fw.remove_table(); });
    NETCELL_TRY(remove_gateways6());
    std::lock_guard lock(mu_);
    NETCELL_TRY(restore_sysctl(kForwarding, saved_forwarding_path()));
    forwarding_ = false;
    NETCELL_TRY(restore_sysctl(kAllRedirects, saved_redirects_path()));
    redirects_off_ = false;
    NETCELL_TRY(restore_sysctl(kForwarding6, saved_forwarding6_path()));
    NETCELL_TRY(restore_accept_ra());
    forwarding6_ = false;
    return removed;
  }

  Result<std::vector<IpPrefix>> host_routes() override {
    std::vector<IpPrefix> out;
    NETCELL_TRY(with_host([&](kernel::NetlinkSocket& nl) -> Result<void> {
      auto links = kernel::list_links(nl);
      if (!links) return fail(links.error());
      // Routes through netcell's own links are its namespaces', not the host's.
      std::unordered_set<int> ours;
      for (const auto& link : *links) {
        if (link.name.rfind("nc", 0) == 0) ours.insert(link.ifindex);
      }
      for (int family : {AF_INET, AF_INET6}) {
        auto routes = kernel::list_routes(nl, family);
        // A host without IPv6 has no IPv6 routes to collide with.
        if (!routes && family == AF_INET6) continue;
        if (!routes) return fail(routes.error());
        for (const auto& route : *routes) {
          // fe80::/64 is on every IPv6 link, and no pool can be in it.
          if (ours.count(route.oif) == 0 && !route.dst.address.is_ipv6_link_local()) {
            out.push_back(route.dst);
          }
        }
      }
      return ok();
    }));
    return out;
  }

  Result<void> change_egress(const NamespaceInfo& info,
                             const std::optional<EgressPolicy>& previous) override {
    const kernel::PolicySource source = policy_source(info);
    NETCELL_TRY(with_firewall([&](kernel::Firewall& fw) {
      return fw.change_policy(source, info.mode == IsolationMode::kBridged, previous, info.egress);
    }));
    // A namespace that gains a policy asks netcell's resolver at its gateway from now on, and one
    // that loses it its own servers again (the manager's point_dns_at_resolver): its resolv.conf
    // says so (rewritten in place, so commands already running see it too).
    if (!info.network.empty() && previous.has_value() != info.egress.has_value()) {
      return write_resolv_conf(info);
    }
    return ok();
  }

  Result<void> change_learned(const NamespaceInfo& info,
                              const std::vector<LearnedDestination>& remove,
                              const std::vector<LearnedDestination>& add) override {
    const kernel::PolicySource source = policy_source(info);
    return with_firewall(
        [&](kernel::Firewall& fw) { return fw.change_learned(source, remove, add); });
  }

  Result<std::vector<PolicyCounter>> learned_counters(
      const NamespaceInfo& info, const std::vector<LearnedDestination>& destinations) override {
    const kernel::PolicySource source = policy_source(info);
    std::vector<PolicyCounter> out;
    NETCELL_TRY(with_firewall([&](kernel::Firewall& fw) -> Result<void> {
      auto counters = fw.learned_counters(source, destinations);
      if (!counters) return fail(counters.error());
      out = std::move(*counters);
      return ok();
    }));
    return out;
  }

  Result<void> set_resolver_port(std::optional<std::uint16_t> previous,
                                 std::optional<std::uint16_t> port) override {
    return with_firewall(
        [&](kernel::Firewall& fw) { return fw.set_resolver_port(previous, port); });
  }

  Result<EgressCounters> egress_counters(const NamespaceInfo& info) override {
    if (!info.egress) return fail(ErrorCode::kNotFound, "no egress policy");
    const kernel::PolicySource source = policy_source(info);
    EgressCounters out;
    NETCELL_TRY(with_firewall([&](kernel::Firewall& fw) -> Result<void> {
      auto counters = fw.policy_counters(source, *info.egress);
      if (!counters) return fail(counters.error());
      out = std::move(*counters);
      return ok();
    }));
    return out;
  }

  Result<bool> host_link_exists(const std::string& name) override {
    bool exists = false;
    NETCELL_TRY(with_host([&](kernel::NetlinkSocket& nl) -> Result<void> {
      auto index = kernel::link_index(nl, name);
      if (!index && index.error().code() != ErrorCode::kNotFound) return fail(index.error());
      exists = index.has_value();
      return ok();
    }));
    return exists;
  }

  // The namespace's own interface (not lo).
  static std::string primary_interface(const NamespaceInfo& info) {
    for (const auto& iface : info.interfaces) {
      if (iface.name != "lo") return iface.name;
    }
    return "eth0";
  }

  std::string ipv6_unavailable() override {
    struct stat st {};
    if (::stat("/proc/sys/net/ipv6", &st) != 0) {
      return "the host has IPv6 disabled (no /proc/sys/net/ipv6)";
    }
    for (const char* which : {"all", "default"}) {
      const std::string key = std::string("net.ipv6.conf.") + which + ".disable_ipv6";
      if (auto value = kernel::read_sysctl(key); value && *value == "1") {
        return "the host has IPv6 disabled (" + key + "=1)";
      }
    }
    return {};
  }

  Result<std::uint64_t> netns_of_pid(pid_t pid) override {
    return kernel::netns_inode_of_path("/proc/" + std::to_string(pid) + "/ns/net");
  }

  std::string owned_netns_path(const std::string& name) const override { return path_of(name); }

  Result<std::uint64_t> netns_of(const NamespaceInfo& info) override {
    if (!info.adopted_netns_path.empty()) NETCELL_TRY(check_adopted_path(info));
    if (info.mode == IsolationMode::kShared)
      return kernel::netns_inode_of_path("/proc/self/ns/net");
    return kernel::netns_inode_of_path(info.netns_path);
  }

 private:
  std::string path_of(const std::string& name) const { return options_.netns_dir + "/" + name; }

  // A namespace adopted by path is a network namespace at that path, and the same one it was when
  // it was adopted (its nsfs inode): the path of a namespace that is gone may name another now.
  static Result<void> check_adopted_path(const NamespaceInfo& info) {
    const std::string& path = info.adopted_netns_path;
    if (!kernel::is_netns_mount(path)) {
      return fail(ErrorCode::kNotFound, path + " is not a namespace (none, or one that is gone)");
    }
    auto fd = kernel::open_netns(path);
    if (!fd) return fail(fd.error());
    int type = ::ioctl(fd->get(), NS_GET_NSTYPE);
    if (type != CLONE_NEWNET) {
      return fail(ErrorCode::kInvalidArgument, path + " is not a network namespace");
    }
    struct stat st {};
    if (::fstat(fd->get(), &st) != 0) return fail_errno("fstat " + path, errno);
    if (info.adopted_netns_inode != 0 && st.st_ino != info.adopted_netns_inode) {
      return fail(ErrorCode::kNotFound,
                  path + " is another network namespace now than the one adopted");
    }
    return ok();
  }

  // Wires a new namespace to its network: the veth (peer made inside the namespace), addresses,
  // routes, forwarding, firewall elements and resolv.conf.
  // An adopted namespace with IPv6 off inside (a runtime's disable_ipv6) is made IPv4-only here:
  // `info` loses its IPv6 addresses and says why (ipv4_only).
  Result<void> connect(NamespaceInfo& info, const NetworkInfo& network,
                       std::optional<NetlinkSocket>& inside) {
    if (info.interfaces.empty() || info.interfaces[0].addresses.empty() || !info.gateway) {
      return fail(ErrorCode::kInvalidArgument, "no address was assigned");
    }
    const InterfaceInfo& iface = info.interfaces[0];
    const IpPrefix& address = iface.addresses[0];
    // Dual stack: the namespace end's IPv6 address; the host end's (private) or the bridge's
    // (bridged) is gateway6.
    std::optional<IpPrefix> address6 = ipv6_address(info);
    const bool adopted = info.adopted_from_pid > 0 || !info.adopted_netns_path.empty();
    // The table first: it drops what comes from a host end before the end is in its sets.
    NETCELL_TRY(with_firewall([](kernel::Firewall& fw) { return fw.ensure_table(); }));
    auto netns = kernel::open_netns(info.netns_path);
    if (!netns) return fail(netns.error());
    // In a namespace made just now only lo (1) exists, so its end can be given index 2 and be
    // configured without a lookup; an adopted namespace's indexes are its own.
    const int inner_index = inside ? kFreshNetnsPeerIndex : 0;
    // Both ends' MACs are chosen here, so that a private namespace's two ends know each other
    // from the start (permanent neighbour entries, link.h neigh_add_permanent): no ARP on the
    // link, and nothing of it in the host-wide neighbour table's limit.
    // The namespace end's is the configured one when there is one (a CNI runtime's --mac-address).
    // A private namespace's two ends share one MAC, and its own end is NOARP (veth_create): even
    // without its entry for the host end (a root workload deleted it) it reaches the host end
    // with no neighbour discovery, so the host end needs neither an IPv6 address nor its
    // multicast route (below).
    auto peer_mac = kernel::rtnl::random_mac();
    if (!iface.mac.empty()) {
      auto mac = parse_mac(iface.mac);
      if (!mac) return fail(mac.error());
      peer_mac = *mac;
    }
    const auto host_mac = network.bridged ? kernel::rtnl::random_mac() : peer_mac;
    int host_index = 0;
    auto host_side = with_host([&](kernel::NetlinkSocket& nl) -> Result<void> {
      if (address6 && !network.bridged) NETCELL_TRY(ensure_gateway6(nl, *info.gateway6));
      auto veth =
          kernel::rtnl::veth_create(info.host_interface, iface.name, netns->get(), iface.mtu, 0,
                                    inner_index, &host_mac, &peer_mac, !network.bridged);
      // NLM_F_ECHO: the kernel answers with the new host end (and so its index) before the ACK,
      // saving a lookup. Kernels before 6.3 do not echo a new link; then it is looked up.
      reinterpret_cast<nlmsghdr*>(veth.data())->nlmsg_flags |= NLM_F_ECHO;
      auto on_echo = [&](const nlmsghdr* nlh) -> Result<void> {
        if (nlh->nlmsg_type != RTM_NEWLINK) return ok();
        auto link = kernel::parse_link(nlh);
        if (link && link->name == info.host_interface) host_index = link->ifindex;
        return ok();
      };
      auto created = nl.request(veth, on_echo);
      if (!created && created.error().code() == ErrorCode::kAlreadyExists) {
        // The host end of an earlier namespace with this (pool-owned) name: the kernel deletes
        // it asynchronously after its namespace was unmounted (notes §1.4). Wait for it, bounded.
        for (int i = 0; i < 100 && kernel::link_index(nl, info.host_interface); ++i) {
          std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        created = nl.request(veth, on_echo);
      }
      NETCELL_TRY(created);
      std::vector<kernel::NlMessage> steps;
      if (network.bridged) {
        auto bridge = kernel::link_index(nl, network.bridge);
        if (!bridge) return fail(bridge.error());
        // A bridge port carries no address of its own: no IPv6 link-local address on it either.
        steps.push_back(kernel::rtnl::set_ipv6_addr_gen_none(info.host_interface));
        steps.push_back(kernel::rtnl::link_set_master(info.host_interface, *bridge));
        steps.push_back(kernel::rtnl::bridge_port_set(info.host_interface, true, false));
      } else {
        if (host_index == 0) {
          auto index = kernel::link_index(nl, info.host_interface);
          if (!index) return fail(index.error());
          host_index = *index;
        }
        // Before it comes up: IPv4 only, or (dual stack) no router advertisement taken from it.
        NETCELL_TRY(address6 ? kernel::write_sysctl(
                                   "net.ipv6.conf." + info.host_interface + ".accept_ra", "0")
                             : disable_ipv6(info.host_interface));
        steps.push_back(host_facing_link_af(info.host_interface));
        steps.push_back(
            kernel::rtnl::addr_add(host_index, IpPrefix{*info.gateway, address.prefix_len}));
        // Dual stack: no IPv6 address on the host end. Every IPv6 route of the host's namespace
        // costs each later create (the host end's carrier coming up walks them all;
        // ARCHITECTURE.md), and an address would bring a local route: the IPv6 gateway is one
        // address of the host's lo for all namespaces (ensure_gateway6).
      }
      steps.push_back(kernel::rtnl::link_set(info.host_interface, true));
      // After the link is up: taking a link down flushes its neighbour entries.
      if (!network.bridged) {
        steps.push_back(kernel::rtnl::neigh_add_permanent(host_index, address.address, peer_mac));
      }
      if (address6 && !network.bridged) {
        // The namespace's whole /64 is routed via its address, never put on the link: the host
        // resolves one neighbour there, the namespace end (a permanent entry), so traffic to the
        // prefix's other 2^64 - 1 addresses cannot fill the host's neighbour table (each would
        // otherwise be an incomplete entry and a solicitation); it reaches the namespace, whose
        // kernel drops what is not its own. The namespace has the /64 on its link, in its own
        // table.
        steps.push_back(kernel::rtnl::neigh_add_permanent(host_index, address6->address, peer_mac));
        steps.push_back(kernel::rtnl::route_add(network_of(*address6), address6->address,
                                                host_index, /*onlink=*/true));
      }
      NETCELL_TRY(nl.request_all(std::move(steps)));
      return limit_egress(nl, info.host_interface, info.rate.ingress_bps, "ingress");
    });
    if (!host_side) return fail(std::move(host_side).error().with_context("host side"));
    fault_point("create: veth and host side");
    auto configure_inside = [&](NetlinkSocket& nl) -> Result<void> {
      int index = inner_index;
      if (index == 0) {
        auto found = kernel::link_index(nl, iface.name);
        if (!found) return fail(found.error());
        index = *found;
      }
      // A namespace netcell did not make may have IPv6 off (its end came with it): then it is
      // IPv4-only, and its host end's IPv6 goes too (below).
      if (address6 && adopted) {
        auto off = kernel::ipv6_disabled_on(nl, iface.name);
        if (!off) return fail(off.error());
        if (*off) address6.reset();
      }
      // IPv4 only: no link-local address, so no solicitations on the link either.
      // Dual stack: its IPv6 address without duplicate address detection, the host end as its
      // permanent neighbour and its IPv6 default gateway. No router advertisement reaches it: the
      // host end sends none and the ip6 table drops any toward netcell's links (firewall.cc).
      std::vector<kernel::NlMessage> steps{kernel::rtnl::set_ipv6_addr_gen_none(iface.name)};
      steps.push_back(kernel::rtnl::addr_add(index, address));
      if (address6) steps.push_back(kernel::rtnl::addr_add(index, *address6, {}, IFA_F_NODAD));
      steps.push_back(kernel::rtnl::link_set(iface.name, true));
      // A bridged namespace's gateway is the bridge, whose MAC is not the host end's.
      if (!network.bridged) {
        steps.push_back(kernel::rtnl::neigh_add_permanent(index, *info.gateway, host_mac));
      }
      if (address6 && !network.bridged) {
        steps.push_back(kernel::rtnl::neigh_add_permanent(index, *info.gateway6, host_mac));
      }
      NETCELL_TRY(nl.request_all(std::move(steps)));
      // A namespace adopted by path may have a default route of another attachment already (a
      // container on two networks): the first one's stays the default, in each family.
      auto add_route = [&](const IpPrefix& to, std::optional<IpAddress> via,
                           bool onlink = false) -> Result<void> {
        auto route = nl.request(kernel::rtnl::route_add(to, via, index, onlink));
        if (route || info.adopted_netns_path.empty()) return route;
        if (route.error().code() == ErrorCode::kAlreadyExists) return ok();
        // The kernel may refuse the route before it sees the other one (an onlink gateway that
        // another link's route reaches): fine when the other one is there.
        auto routes = kernel::list_routes(nl, to.address.is_v4() ? AF_INET : AF_INET6);
        if (!routes) return fail(routes.error());
        for (const auto& r : *routes) {
          if (r.dst.prefix_len == to.prefix_len && r.dst.address == to.address) return ok();
        }
        return route;
      };
      NETCELL_TRY(add_route(IpPrefix{}, *info.gateway));
      if (address6 && !network.bridged) {
        // The IPv6 gateway is outside the namespace's /64: a route to it on the link, so that a
        // default route a runtime or user sets again can name it as a plain gateway. netcell's
        // own is onlink: in a namespace adopted by path, the route to the gateway may be another
        // attachment's, on its link.
        NETCELL_TRY(add_route(IpPrefix{*info.gateway6, 128}, std::nullopt));
      }
      if (address6) {
        NETCELL_TRY(add_route(IpPrefix{IpAddress::v6({}), 0}, *info.gateway6, !network.bridged));
      }
      return limit_egress(nl, iface.name, info.rate.egress_bps, "egress");
    };
    auto configured = inside ? configure_inside(*inside)
                             : kernel::run_in_netns(netns->get(), [&]() -> Result<void> {
                                 auto nl = NetlinkSocket::open();
                                 if (!nl) return fail(nl.error());
                                 return configure_inside(*nl);
                               });
    if (!configured) return fail(std::move(configured).error().with_context("namespace side"));
    if (!address6 && info.gateway6) {
      // IPv6 is off inside: so it is on the host end (which takes its IPv6 address and route).
      NETCELL_TRY(disable_ipv6(info.host_interface));
      info.gateway6.reset();
      info.ipv4_only = "IPv6 is disabled inside the namespace";
      for (auto& i : info.interfaces) {
        if (i.name == "lo") continue;
        std::erase_if(i.addresses, [](const IpPrefix& a) { return !a.address.is_v4(); });
      }
    }
    fault_point("create: namespace side");
    NETCELL_TRY(enable_forwarding());
    if (address6) NETCELL_TRY(enable_forwarding6());
    NETCELL_TRY(
        with_firewall([&](kernel::Firewall& fw) { return fw.add_namespace(rules_of(info)); }));
    fault_point("create: firewall elements");
    if (address6 && !network.bridged) {
      // The kernel's ff00::/8 route of the host end, added when it got carrier: the
      // link carries no neighbour discovery or other multicast, and the route would be one more
      // for every later create to walk. It comes back only if the host end itself goes down and
      // up. The kernel adds it from its link watcher, a work item that runs on its own once the
      // namespace end is up (so this comes after the firewall step, by when it has run); if it
      // is not there yet, it is waited for, bounded (it only costs later creates time).
      auto removed = with_host([&](kernel::NetlinkSocket& nl) -> Result<void> {
        for (int attempt = 0;; ++attempt) {
          auto r = nl.request(kernel::rtnl::route_delete_multicast6(host_index));
          if (r || r.error().code() != ErrorCode::kNotFound) return r;
          if (attempt == 200) return ok();
          std::this_thread::sleep_for(std::chrono::microseconds(250));
        }
      });
      if (!removed) return fail(std::move(removed).error().with_context("host side"));
    }
    return write_resolv_conf(info);
  }

  Result<bool> connect(const NamespaceInfo& a, const NamespaceInfo& b,
                       const LinkConfig& link) override {
    auto a_fd = kernel::open_netns(a.netns_path);
    if (!a_fd) return fail(a_fd.error());
    auto b_fd = kernel::open_netns(b.netns_path);
    if (!b_fd) return fail(b_fd.error());
    bool created = false;
    // The pair is made from inside a, with its peer created directly inside b (notes §2.1).
    NETCELL_TRY(kernel::run_in_netns(a_fd->get(), [&]() -> Result<void> {
      auto nl = NetlinkSocket::open();
      if (!nl) return fail(nl.error());
      if (!kernel::link_index(*nl, link.a.device)) {
        NETCELL_TRY(nl->request(
            kernel::rtnl::veth_create(link.a.device, link.b.device, b_fd->get(), link.mtu)));
        created = true;
      }
      return configure_end(*nl, link.a, link.a_to_b_bps);
    }));
    NETCELL_TRY(kernel::run_in_netns(b_fd->get(), [&]() -> Result<void> {
      auto nl = NetlinkSocket::open();
      if (!nl) return fail(nl.error());
      return configure_end(*nl, link.b, link.b_to_a_bps);
    }));
    return created;
  }

  Result<void> configure(const NamespaceInfo& info, const NamespaceExtras& extras) override {
    if (info.mode == IsolationMode::kShared) {
      return fail(ErrorCode::kInvalidArgument, "namespace '" + info.name +
                                                   "' shares the host's network; netcell does not "
                                                   "configure it");
    }
    auto fd = kernel::open_netns(info.netns_path);
    if (!fd) return fail(fd.error());
    return kernel::run_in_netns(fd->get(), [&]() -> Result<void> {
      // /proc/sys/net resolves to the network namespace of this (entered) thread.
      for (const auto& sysctl : extras.sysctls) {
        NETCELL_TRY(kernel::write_sysctl(sysctl.key, sysctl.value));
      }
      auto nl = NetlinkSocket::open();
      if (!nl) return fail(nl.error());
      for (const auto& extra : extras.addresses) {
        auto index = kernel::link_index(*nl, extra.device);
        if (!index)
          return fail(
              std::move(index).error().with_context("address " + extra.address.to_string()));
        NETCELL_TRY(request_ok_if_exists(
            *nl,
            kernel::rtnl::addr_add(*index, extra.address, {}, static_dad_flags(extra.address))));
        NETCELL_TRY(nl->request(kernel::rtnl::link_set(extra.device, true)));
      }
      for (const auto& route : extras.routes) {
        int oif = 0;
        if (!route.device.empty()) {
          auto index = kernel::link_index(*nl, route.device);
          if (!index) return fail(index.error());
          oif = *index;
        }
        auto set = nl->request(kernel::rtnl::route_replace(route.destination, route.via, oif));
        if (!set) {
          return fail(
              std::move(set).error().with_context("route " + route.destination.to_string()));
        }
      }
      return ok();
    });
  }

  // A static IPv6 address skips duplicate address detection: usable at once, as netcell's own are
  // (its addresses are the file's to keep unique).
  static std::uint8_t static_dad_flags(const IpPrefix& address) {
    return address.address.is_v4() ? std::uint8_t{0} : std::uint8_t{IFA_F_NODAD};
  }

  // One end of a topology link, inside its namespace: no IPv6 link-local address (neighbour
  // discovery then uses the end's own addresses), its addresses (IPv6 ones without DAD), up, and
  // its egress rate.
  static Result<void> configure_end(NetlinkSocket& nl, const LinkEnd& end,
                                    std::uint64_t egress_bps) {
    auto index = kernel::link_index(nl, end.device);
    if (!index) return fail(index.error());
    NETCELL_TRY(nl.request(kernel::rtnl::set_ipv6_addr_gen_none(end.device)));
    for (const auto& address : end.addresses) {
      NETCELL_TRY(request_ok_if_exists(
          nl, kernel::rtnl::addr_add(*index, address, {}, static_dad_flags(address))));
    }
    NETCELL_TRY(nl.request(kernel::rtnl::link_set(end.device, true)));
    return kernel::set_egress_rate(
        nl, *index, egress_bps == 0 ? std::nullopt : std::optional<std::uint64_t>(egress_bps));
  }

  // A namespace's rate in one direction is the egress limit of one end of its veth: the host
  // end's egress is the namespace's ingress, its own end's egress its egress (notes §4). A new
  // veth has no qdisc, so an unset rate needs no request.
  static Result<void> limit_egress(NetlinkSocket& nl, const std::string& device,
                                   const std::optional<std::uint64_t>& bps, const char* direction) {
    if (!bps) return ok();
    auto index = kernel::link_index(nl, device);
    if (!index) return fail(index.error());
    auto set = kernel::set_egress_rate(nl, *index, *bps);
    if (!set) {
      return fail(std::move(set).error().with_context(std::string(direction) + " rate " +
                                                      format_rate(*bps) + " on " + device));
    }
    return ok();
  }

  static kernel::NamespaceRules rules_of(const NamespaceInfo& info) {
    kernel::NamespaceRules rules;
    bool private_mode = info.mode == IsolationMode::kPrivate;
    rules.host_if = private_mode ? info.host_interface : "";
    rules.bridge_port = info.mode == IsolationMode::kBridged ? info.host_interface : "";
    rules.masquerade = private_mode;
    for (const auto& iface : info.interfaces) {
      if (iface.name != "lo" && !iface.addresses.empty()) {
        rules.address = iface.addresses[0].address;
        break;
      }
    }
    if (auto v6 = ipv6_address(info); v6 && (private_mode || !rules.bridge_port.empty())) {
      rules.address6 = v6->address;
      // NAT66 for a ULA pool (fc00::/7); a routable one is routed as it is. A bridged network
      // masquerades its prefix as a whole (network_rules).
      rules.masquerade6 = private_mode && (v6->address.bytes()[0] & 0xfe) == 0xfc;
    }
    rules.forwards = info.port_forwards;
    rules.egress = info.egress;
    return rules;
  }

  // The addresses the namespace's policy elements are keyed by (both families when dual-stack).
  static kernel::PolicySource policy_source(const NamespaceInfo& info) {
    const kernel::NamespaceRules rules = rules_of(info);
    return {rules.address, rules.address6};
  }

  static kernel::NetworkRules network_rules(const NetworkInfo& network) {
    return {network.bridge, network.subnet, network.nat, network.host_access, network.subnet6};
  }

  Result<void> write_resolv_conf(const NamespaceInfo& info) {
    std::string dir = options_.etc_netns_dir + "/" + info.name;
    for (const std::string& d : {options_.etc_netns_dir, dir}) {
      if (::mkdir(d.c_str(), 0755) != 0 && errno != EEXIST) return fail_errno("mkdir " + d, errno);
    }
    std::ofstream out(dir + "/resolv.conf", std::ios::trunc);
    out << "# written by netcell for namespace " << info.name << "\n";
    for (const auto& server : info.dns) out << "nameserver " << server.to_string() << "\n";
    out.close();
    if (!out) return fail(ErrorCode::kSystem, "cannot write " + dir + "/resolv.conf");
    return ok();
  }

  // Creating a link or address that already exists is fine when re-applying a network.
  static Result<void> request_ok_if_exists(kernel::NetlinkSocket& nl, kernel::NlMessage message) {
    auto r = nl.request(std::move(message));
    if (!r && r.error().code() != ErrorCode::kAlreadyExists) return r;
    return ok();
  }

  // Turns IPv4 forwarding on in the host namespace, remembering first (in the state dir, so it
  // survives crashes) that it was off, so release_shared_state can turn it off again.
  Result<void> enable_forwarding() {
    return set_sysctl_once(forwarding_, kForwarding, "1", saved_forwarding_path());
  }

  // IPv6 forwarding on, keeping the host's own IPv6 as it was: with forwarding on, a link whose
  // accept_ra is 1 takes no more router advertisements, and turning conf.all.forwarding on
  // deletes at once every default route learned from one (rt6_purge_dflt_routers) except on
  // links with accept_ra=2, so a host that relied on them would lose its IPv6 default route.
  // Every link (and `default`, for links that come later) with accept_ra=1 gets 2 first, each
  // recorded in the state dir (accept_ra.saved) for restore_accept_ra; then forwarding is saved
  // and set like IPv4's. Nothing is changed when IPv6 forwarding is on already.
  Result<void> enable_forwarding6() {
    std::lock_guard lock(mu_);
    if (forwarding6_) return ok();
    auto current = kernel::read_sysctl(kForwarding6);
    if (!current) return fail(current.error());
    if (*current != "1") {
      NETCELL_TRY(keep_accept_ra());
      NETCELL_TRY(set_saved_sysctl(kForwarding6, "1", saved_forwarding6_path()));
    }
    forwarding6_ = true;
    return ok();
  }

  // The links (not netcell's, not lo) whose accept_ra is 1 go to 2, recorded first.
  Result<void> keep_accept_ra() {
    std::vector<std::string> saved = saved_accept_ra();
    std::vector<std::string> change;
    DIR* dir = ::opendir("/proc/sys/net/ipv6/conf");
    if (dir == nullptr) return fail_errno("open /proc/sys/net/ipv6/conf", errno);
    while (dirent* e = ::readdir(dir)) {
      const std::string name = e->d_name;
      if (name == "." || name == ".." || name == "all" || name == "lo" ||
          name.rfind("nc", 0) == 0) {
        continue;
      }
      auto value = kernel::read_sysctl("net.ipv6.conf." + name + ".accept_ra");
      if (value && *value == "1") change.push_back(name);
    }
    ::closedir(dir);
    if (change.empty()) return ok();
    std::string text;
    for (const auto& name : saved) text += name + "\n";
    for (const auto& name : change) {
      if (std::find(saved.begin(), saved.end(), name) == saved.end()) text += name + "\n";
    }
    {
      std::ofstream out(saved_accept_ra_path() + ".new", std::ios::trunc);
      out << text;
      out.close();
      if (!out || ::rename((saved_accept_ra_path() + ".new").c_str(),
                           saved_accept_ra_path().c_str()) != 0) {
        return fail(ErrorCode::kSystem, "cannot write " + saved_accept_ra_path());
      }
    }
    for (const auto& name : change) {
      auto set = kernel::write_sysctl("net.ipv6.conf." + name + ".accept_ra", "2");
      if (!set && set.error().code() != ErrorCode::kNotFound) return set;  // a link just gone
    }
    return ok();
  }

  // The links keep_accept_ra changed that still have 2 go back to 1.
  Result<void> restore_accept_ra() {
    const std::vector<std::string> saved = saved_accept_ra();
    for (const auto& name : saved) {
      const std::string key = "net.ipv6.conf." + name + ".accept_ra";
      auto value = kernel::read_sysctl(key);
      if (!value || *value != "2") continue;  // gone, or changed since by someone else
      auto set = kernel::write_sysctl(key, "1");
      if (!set && set.error().code() != ErrorCode::kNotFound) return set;
    }
    ::unlink(saved_accept_ra_path().c_str());
    return ok();
  }

  std::vector<std::string> saved_accept_ra() const {
    std::vector<std::string> out;
    std::ifstream in(saved_accept_ra_path());
    std::string name;
    while (in >> name) {
      if (validate_interface_name(name)) out.push_back(name);  // or "default"
    }
    return out;
  }

  // conf.all.send_redirects off, so that each link's own setting decides (host_facing_link_af):
  // netcell's links send none, every other link keeps its own (on by default).
  Result<void> disable_redirects() {
    return set_sysctl_once(redirects_off_, kAllRedirects, "0", saved_redirects_path());
  }

  // The IPv6 gateway of every private dual-stack namespace: one /128 on the host's lo (index 1 in
  // every network namespace), without duplicate address detection. The namespaces reach it
  // through their host ends (a local address of the host, whatever link a packet comes in on)
  // and route everything else via it; the host sends from it to them (the host ends have no IPv6
  // address). One local route for all namespaces, where an address on each host end was one
  // each. Recorded in the state dir before it is added, so that the last user (or `gc` after a
  // crash) removes it with the other shared state (remove_gateways6).
  // Called inside with_host (under the backend's lock).
  Result<void> ensure_gateway6(kernel::NetlinkSocket& nl, const IpAddress& gateway) {
    const std::string text = gateway.to_string();
    if (gateway6_ == text) return ok();
    std::vector<std::string> recorded = saved_gateways6();
    if (std::find(recorded.begin(), recorded.end(), text) == recorded.end()) {
      std::ofstream out(saved_gateways6_path(), std::ios::app);
      out << text << "\n";
      out.close();
      if (!out) return fail(ErrorCode::kSystem, "cannot write " + saved_gateways6_path());
    }
    NETCELL_TRY(
        request_ok_if_exists(nl, kernel::rtnl::addr_add(kLoopbackIndex, IpPrefix{gateway, 128}, {},
                                                        IFA_F_NODAD | IFA_F_NOPREFIXROUTE)));
    gateway6_ = text;
    return ok();
  }

  std::vector<std::string> saved_gateways6() const {
    std::vector<std::string> out;
    std::ifstream in(saved_gateways6_path());
    for (std::string line; std::getline(in, line);) {
      if (!line.empty()) out.push_back(line);
    }
    return out;
  }

  // The recorded gateways off the host's lo (one that is gone already is fine), then the record.
  Result<void> remove_gateways6() {
    const std::vector<std::string> recorded = saved_gateways6();
    if (recorded.empty()) return ok();
    NETCELL_TRY(with_host([&](kernel::NetlinkSocket& nl) -> Result<void> {
      for (const auto& text : recorded) {
        auto address = IpAddress::parse(text);
        if (!address || address->is_v4()) continue;  // not written by ensure_gateway6
        auto r = nl.request(kernel::rtnl::addr_delete(kLoopbackIndex, IpPrefix{*address, 128}));
        if (!r && r.error().sys_errno() != EADDRNOTAVAIL) return r;
      }
      return ok();
    }));
    ::unlink(saved_gateways6_path().c_str());
    std::lock_guard lock(mu_);
    gateway6_.clear();
    return ok();
  }

  // What this process knows of the host's shared state (forwarding and redirects set, the IPv6
  // gateway on lo, the firewall table made: the flags below, kept so that a create does not ask
  // again) holds while STATE_DIR/shared.epoch is the file it saw when it learned it. Every
  // release_shared_state (this process's or another's: they share the run dir and its lock)
  // unlinks that file first; the next create here then forgets it all, makes a new file and
  // puts each thing back as a new process would. A daemon using the library or the Python
  // binding would otherwise create after another process released, with no forwarding, no
  // gateway and no table. One stat per create; the file is known by its inode and ctime (with
  // nanoseconds), so a new file that reuses the inode is not taken for the old one.
  void check_shared_epoch() {
    std::lock_guard lock(mu_);
    struct stat st {};
    const std::string path = shared_epoch_path();
    if (::stat(path.c_str(), &st) == 0 && epoch_ino_ != 0 && st.st_ino == epoch_ino_ &&
        st.st_ctim.tv_sec == epoch_ctime_.tv_sec && st.st_ctim.tv_nsec == epoch_ctime_.tv_nsec) {
      return;
    }
    forwarding_ = redirects_off_ = forwarding6_ = false;
    gateway6_.clear();
    if (firewall_) firewall_->forget_table();
    epoch_ino_ = 0;  // unless a file is there now, the next create asks again
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return;
    if (::fstat(fd, &st) == 0) {
      epoch_ino_ = st.st_ino;
      epoch_ctime_ = st.st_ctim;
    }
    ::close(fd);
  }

  // set_saved_sysctl once per backend (`done` says it was), under the backend's lock.
  Result<void> set_sysctl_once(bool& done, const std::string& key, const std::string& value,
                               const std::string& saved) {
    std::lock_guard lock(mu_);
    if (done) return ok();
    NETCELL_TRY(set_saved_sysctl(key, value, saved));
    done = true;
    return ok();
  }

  // Sets the host's sysctl `key` to `value`, first keeping its value in the file `saved` (unless
  // that holds one already, from a run that did not restore it) for restore_sysctl.
  static Result<void> set_saved_sysctl(const std::string& key, const std::string& value,
                                       const std::string& saved) {
    auto current = kernel::read_sysctl(key);
    if (!current) return fail(current.error());
    if (*current == value) return ok();
    struct stat st {};
    if (::stat(saved.c_str(), &st) != 0) {
      std::ofstream out(saved, std::ios::trunc);
      out << *current << "\n";
      out.close();
      if (!out) return fail(ErrorCode::kSystem, "cannot write " + saved);
    }
    return kernel::write_sysctl(key, value);
  }

  static Result<void> restore_sysctl(const std::string& key, const std::string& saved) {
    std::ifstream in(saved);
    std::string value;
    if (!(in >> value)) return ok();
    NETCELL_TRY(kernel::write_sysctl(key, value));
    ::unlink(saved.c_str());
    return ok();
  }

  static constexpr char kForwarding[] = "net.ipv4.ip_forward";
  static constexpr char kAllRedirects[] = "net.ipv4.conf.all.send_redirects";
  static constexpr char kForwarding6[] = "net.ipv6.conf.all.forwarding";
  std::string saved_forwarding6_path() const {
    return options_.state_dir + "/ipv6_forwarding.saved";
  }
  std::string saved_accept_ra_path() const { return options_.state_dir + "/accept_ra.saved"; }
  std::string saved_gateways6_path() const { return options_.state_dir + "/gateway6.added"; }
  std::string shared_epoch_path() const { return options_.state_dir + "/shared.epoch"; }
  static constexpr int kLoopbackIndex = 1;
  std::string saved_forwarding_path() const { return options_.state_dir + "/ip_forward.saved"; }
  std::string saved_redirects_path() const { return options_.state_dir + "/send_redirects.saved"; }

  // Runs `fn` with the host namespace's netlink socket, opened on first use by this (host)
  // thread and serialised by the backend's mutex.
  Result<void> with_host(const std::function<Result<void>(kernel::NetlinkSocket&)>& fn) {
    std::lock_guard lock(mu_);
    if (!host_nl_) {
      auto nl = kernel::NetlinkSocket::open();
      if (!nl) return fail(nl.error());
      host_nl_.emplace(std::move(*nl));
    }
    return fn(*host_nl_);
  }

  Result<void> with_firewall(const std::function<Result<void>(kernel::Firewall&)>& fn) {
    std::lock_guard lock(mu_);
    if (!firewall_) {
      std::string run_dir = options_.state_dir;
      while (run_dir.size() > 1 && run_dir.back() == '/') run_dir.pop_back();
      struct stat st {};
      const bool ipv6 = ::stat("/proc/sys/net/ipv6", &st) == 0;
      auto fw = kernel::Firewall::open(kernel::owner_tag(run_dir), ipv6);
      if (!fw) return fail(fw.error());
      firewall_.emplace(std::move(*fw));
    }
    return fn(*firewall_);
  }

  Result<void> prepare_dir() {
    std::lock_guard lock(mu_);
    if (dir_ready_) return ok();
    NETCELL_TRY(kernel::prepare_netns_dir(options_.netns_dir));
    dir_ready_ = true;
    return ok();
  }

  LinuxBackendOptions options_;
  std::mutex mu_;
  bool dir_ready_ = false;
  bool forwarding_ = false;
  bool redirects_off_ = false;
  bool forwarding6_ = false;
  std::string gateway6_;  // ensure_gateway6 added (or found) it in this process
  ino_t epoch_ino_ = 0;   // check_shared_epoch: the shared.epoch file the flags above hold for
  timespec epoch_ctime_{};
  std::optional<kernel::NetlinkSocket> host_nl_;
  std::optional<kernel::Firewall> firewall_;
};

}  // namespace

std::unique_ptr<Backend> make_linux_backend(const LinuxBackendOptions& options) {
  return std::make_unique<LinuxBackend>(options);
}

}  // namespace netcell
