// netcell-floor: the kernel floor for one private namespace, so that netcell's overhead above the
// kernel is visible. One process, no fork/exec, no state files, no firewall: a named network
// namespace (unshare + bind mount, what `ip netns add` does), a veth made inside it with its peer
// sent to the world, addresses on both ends, lo and both ends up, the default route, IP
// forwarding; raw rtnetlink through libmnl. The same point-to-point /30 layout as netcell's private
// mode, with IPv6 address generation off on both ends as netcell has it. Teardown unmounts and
// unlinks the namespace (the kernel reaps the veth asynchronously, as for netcell).
//
//   netcell-floor N CSV [SETUP_CAP_S]
// Creates N namespaces f1..fN (all kept alive), runs $NETCELL_BENCH_VERIFY if set, then
// removes them. Writes one CSV row per namespace (setup and teardown ms, setup sub-steps) and
// prints a JSON summary on stdout.
// Run it inside a throwaway world: it changes the network of the namespace it runs in.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void die(const std::string& what, int err) {
  std::fprintf(stderr, "netcell-floor: %s: %s\n", what.c_str(), std::strerror(err));
  std::exit(1);
}

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// One rtnetlink socket, bound to the network namespace it was opened in.
class Rtnl {
 public:
  Rtnl() : nl_(mnl_socket_open(NETLINK_ROUTE)) {
    if (nl_ == nullptr || mnl_socket_bind(nl_, 0, MNL_SOCKET_AUTOPID) < 0) die("netlink", errno);
  }
  ~Rtnl() { mnl_socket_close(nl_); }
  Rtnl(const Rtnl&) = delete;
  Rtnl& operator=(const Rtnl&) = delete;

  nlmsghdr* start(std::uint16_t type, std::uint16_t flags) {
    nlmsghdr* nlh = mnl_nlmsg_put_header(buf_);
    nlh->nlmsg_type = type;
    nlh->nlmsg_flags = static_cast<std::uint16_t>(NLM_F_REQUEST | NLM_F_ACK | flags);
    nlh->nlmsg_seq = ++seq_;
    return nlh;
  }

  // Sends the message and waits for its ACK; with `reply` the first answer's ifindex is returned.
  int call(nlmsghdr* nlh, const std::string& what, bool want_index = false) {
    if (mnl_socket_sendto(nl_, nlh, nlh->nlmsg_len) < 0) die(what + ": send", errno);
    int index = 0;
    for (;;) {
      ssize_t n = mnl_socket_recvfrom(nl_, buf_, sizeof buf_);
      if (n < 0) die(what + ": recv", errno);
      auto* got = reinterpret_cast<nlmsghdr*>(buf_);
      for (int len = static_cast<int>(n); mnl_nlmsg_ok(got, len); got = mnl_nlmsg_next(got, &len)) {
        if (got->nlmsg_type == NLMSG_ERROR) {
          auto* err = static_cast<nlmsgerr*>(mnl_nlmsg_get_payload(got));
          if (err->error != 0) die(what, -err->error);
          return index;
        }
        if (want_index && got->nlmsg_type == RTM_NEWLINK) {
          index = static_cast<ifinfomsg*>(mnl_nlmsg_get_payload(got))->ifi_index;
        }
      }
    }
  }

 private:
  mnl_socket* nl_;
  unsigned seq_ = 0;
  alignas(nlmsghdr) char buf_[8192];
};

ifinfomsg* put_ifinfo(nlmsghdr* nlh, int index = 0) {
  auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = index;
  return ifi;
}

// No IPv6 link-local address on the link (set before it goes up, so no DAD or solicitations).
void addr_gen_none(Rtnl& nl, int index) {
  nlmsghdr* nlh = nl.start(RTM_NEWLINK, 0);
  put_ifinfo(nlh, index);
  nlattr* spec = mnl_attr_nest_start(nlh, IFLA_AF_SPEC);
  nlattr* inet6 = mnl_attr_nest_start(nlh, AF_INET6);
  mnl_attr_put_u8(nlh, IFLA_INET6_ADDR_GEN_MODE, IN6_ADDR_GEN_MODE_NONE);
  mnl_attr_nest_end(nlh, inet6);
  mnl_attr_nest_end(nlh, spec);
  nl.call(nlh, "addr_gen_mode none");
}

// The veth, made from inside the namespace: `inner` stays, `outer` goes to `world_fd`.
void veth_in_ns(Rtnl& nl, const std::string& inner, const std::string& outer, int world_fd) {
  nlmsghdr* nlh = nl.start(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
  put_ifinfo(nlh);
  mnl_attr_put_strz(nlh, IFLA_IFNAME, inner.c_str());
  nlattr* linkinfo = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
  mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "veth");
  nlattr* data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
  nlattr* peer = mnl_attr_nest_start(nlh, VETH_INFO_PEER);
  put_ifinfo(nlh);  // the peer's ifinfomsg sits at the start of VETH_INFO_PEER
  mnl_attr_put_strz(nlh, IFLA_IFNAME, outer.c_str());
  mnl_attr_put_u32(nlh, IFLA_NET_NS_FD, static_cast<std::uint32_t>(world_fd));
  mnl_attr_nest_end(nlh, peer);
  mnl_attr_nest_end(nlh, data);
  mnl_attr_nest_end(nlh, linkinfo);
  nl.call(nlh, "veth " + inner + "/" + outer);
}

int link_index(Rtnl& nl, const std::string& name) {
  nlmsghdr* nlh = nl.start(RTM_GETLINK, 0);
  put_ifinfo(nlh);
  mnl_attr_put_strz(nlh, IFLA_IFNAME, name.c_str());
  mnl_attr_put_u32(nlh, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
  return nl.call(nlh, "getlink " + name, true);
}

void link_up(Rtnl& nl, int index) {
  nlmsghdr* nlh = nl.start(RTM_NEWLINK, 0);
  ifinfomsg* ifi = put_ifinfo(nlh, index);
  ifi->ifi_flags = IFF_UP;
  ifi->ifi_change = IFF_UP;
  nl.call(nlh, "link up " + std::to_string(index));
}

void addr_add(Rtnl& nl, int index, in_addr_t address, std::uint8_t prefix_len) {
  nlmsghdr* nlh = nl.start(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
  auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifaddrmsg)));
  ifa->ifa_family = AF_INET;
  ifa->ifa_prefixlen = prefix_len;
  ifa->ifa_index = static_cast<std::uint32_t>(index);
  mnl_attr_put(nlh, IFA_LOCAL, 4, &address);
  mnl_attr_put(nlh, IFA_ADDRESS, 4, &address);
  nl.call(nlh, "address");
}

void default_route(Rtnl& nl, int index, in_addr_t gateway) {
  nlmsghdr* nlh = nl.start(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
  auto* rtm = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(rtmsg)));
  rtm->rtm_family = AF_INET;
  rtm->rtm_table = RT_TABLE_MAIN;
  rtm->rtm_protocol = RTPROT_BOOT;
  rtm->rtm_scope = RT_SCOPE_UNIVERSE;
  rtm->rtm_type = RTN_UNICAST;
  mnl_attr_put(nlh, RTA_GATEWAY, 4, &gateway);
  mnl_attr_put_u32(nlh, RTA_OIF, static_cast<std::uint32_t>(index));
  nl.call(nlh, "default route");
}

struct Row {
  double setup = 0, teardown = -1, netns = 0, veth = 0, inside = 0, host = 0;
};

double cpu_seconds() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: netcell-floor N CSV [SETUP_CAP_S]\n");
    return 2;
  }
  const int n = std::atoi(argv[1]);
  const double cap_s = argc > 3 ? std::atof(argv[3]) : 600;
  if (n < 1 || n > 16000) {
    std::fprintf(stderr, "netcell-floor: N must be 1..16000\n");
    return 2;
  }
  const std::string dir = "/run/netns";
  ::mkdir(dir.c_str(), 0755);
  // What `ip netns add` does once: /run/netns a shared mount point (not timed).
  if (::mount("", dir.c_str(), "none", MS_SHARED | MS_REC, nullptr) != 0) {
    if (::mount(dir.c_str(), dir.c_str(), "none", MS_BIND | MS_REC, nullptr) != 0 ||
        ::mount("", dir.c_str(), "none", MS_SHARED | MS_REC, nullptr) != 0) {
      die("make /run/netns a shared mount", errno);
    }
  }
  const int world_fd = ::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  const int forward_fd = ::open("/proc/sys/net/ipv4/ip_forward", O_WRONLY | O_CLOEXEC);
  if (world_fd < 0 || forward_fd < 0) die("open", errno);
  Rtnl world;

  std::vector<Row> rows;
  const auto run_start = Clock::now();
  const double cpu0 = cpu_seconds();
  for (int i = 0; i < n && ms_since(run_start) < cap_s * 1000; ++i) {
    Row row;
    const std::string name = 'f' + std::to_string(i + 1);
    const std::string host_if = "fv" + std::to_string(i + 1);
    const std::string path = dir + "/" + name;
    // 10.203.0.0/16, one /30 per namespace: .1 the host end, .2 the namespace.
    const std::uint32_t block = (10u << 24) | (203u << 16) | static_cast<std::uint32_t>(4 * i);
    const in_addr_t host_ip = htonl(block | 1);
    const in_addr_t ns_ip = htonl(block | 2);
    const auto start = Clock::now();

    int placeholder = ::open(path.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
    if (placeholder < 0) die("create " + path, errno);
    ::close(placeholder);
    if (::unshare(CLONE_NEWNET) != 0) die("unshare", errno);
    if (::mount("/proc/self/ns/net", path.c_str(), nullptr, MS_BIND, nullptr) != 0) {
      die("bind mount " + path, errno);
    }
    {
      Rtnl inside;  // bound to the new namespace for as long as it is open
      if (::setns(world_fd, CLONE_NEWNET) != 0) die("setns back", errno);
      row.netns = ms_since(start);

      auto t = Clock::now();
      veth_in_ns(inside, "eth0", host_if, world_fd);
      row.veth = ms_since(t);

      t = Clock::now();
      const int host_index = link_index(world, host_if);
      addr_gen_none(world, host_index);
      addr_add(world, host_index, host_ip, 30);
      link_up(world, host_index);
      row.host = ms_since(t);

      t = Clock::now();
      link_up(inside, 1);  // lo
      const int inner_index = link_index(inside, "eth0");
      addr_gen_none(inside, inner_index);
      addr_add(inside, inner_index, ns_ip, 30);
      link_up(inside, inner_index);
      default_route(inside, inner_index, host_ip);
      if (::pwrite(forward_fd, "1\n", 2, 0) != 2) die("ip_forward", errno);
      row.inside = ms_since(t);
    }
    row.setup = ms_since(start);
    rows.push_back(row);
  }
  const double setup_cpu = cpu_seconds() - cpu0;
  const double setup_wall = ms_since(run_start) / 1000;
  const int created = static_cast<int>(rows.size());

  // The caller checks the namespaces here: NETCELL_BENCH_VERIFY is a shell command run (not
  // timed) while all of them exist.
  int verify = -1;
  if (const char* command = std::getenv("NETCELL_BENCH_VERIFY")) {
    int status = std::system(command);
    verify = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
  }

  const double cpu1 = cpu_seconds();
  const auto teardown_start = Clock::now();
  for (int i = 0; i < created; ++i) {
    const std::string path = dir + "/f" + std::to_string(i + 1);
    const auto start = Clock::now();
    if (::umount2(path.c_str(), MNT_DETACH) != 0) die("umount " + path, errno);
    if (::unlink(path.c_str()) != 0) die("unlink " + path, errno);
    rows[i].teardown = ms_since(start);
  }
  const double teardown_cpu = cpu_seconds() - cpu1;
  const double teardown_wall = ms_since(teardown_start) / 1000;

  std::FILE* csv = std::fopen(argv[2], "w");
  if (csv == nullptr) die(std::string("open ") + argv[2], errno);
  std::fprintf(csv, "i,setup_ms,teardown_ms,netns_ms,veth_ms,host_ms,inside_ms\n");
  for (int i = 0; i < created; ++i) {
    const Row& r = rows[i];
    std::fprintf(csv, "%d,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f\n", i + 1, r.setup, r.teardown, r.netns,
                 r.veth, r.host, r.inside);
  }
  std::fclose(csv);
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  std::printf(
      "{\"requested\": %d, \"created\": %d, \"setup_wall_s\": %.3f, \"teardown_wall_s\": %.3f, "
      "\"setup_cpu_s\": %.4f, \"teardown_cpu_s\": %.4f, \"maxrss_kib\": %ld, \"verify_status\": "
      "%d}\n",
      n, created, setup_wall, teardown_wall, setup_cpu, teardown_cpu, ru.ru_maxrss, verify);
  return created == n ? 0 : 3;
}
