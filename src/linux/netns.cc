#include "linux/netns.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
#include <string_view>
#include <utility>

#include "linux/link.h"
#include "linux/netlink.h"

namespace netcell::kernel {
namespace {

constexpr int kLoopbackIfindex = 1;  // lo is ifindex 1 in every new netns

// Runs `fn` on a fresh OS thread and waits for it. Namespace changes made by `fn` (unshare, setns)
// die with the thread. pthread directly rather than std::thread: thread creation failure becomes
// an Error, not an exception.
Result<void> run_on_fresh_thread(const std::function<Result<void>()>& fn) {
  struct Job {
    const std::function<Result<void>()>* fn;
    std::optional<Result<void>> result;
  } job{&fn, std::nullopt};
  auto trampoline = [](void* arg) -> void* {
    auto* j = static_cast<Job*>(arg);
    j->result = (*j->fn)();
    return nullptr;
  };
  pthread_t thread;
  if (int err = ::pthread_create(&thread, nullptr, trampoline, &job); err != 0) {
    return fail_errno("pthread_create", err);
  }
  if (int err = ::pthread_join(thread, nullptr); err != 0) return fail_errno("pthread_join", err);
  return std::move(*job.result);
}

// The thread that runs jobs inside existing namespaces (notes §1.3): it runs one job at a time
// and, after each, returns to the namespace it started in. If that return fails it ends (taking
// the wrong namespace with it) and the next job starts a new thread. Jobs are arbitrary code, so
// they never run on the caller's thread (only create_named_netns, whose few steps are netcell's
// own, visits a new namespace from the calling thread). Reusing it saves a thread start per
// operation, about as much as the kernel spends making the namespace itself.
class NamespaceThread {
 public:
  static NamespaceThread& instance() {
    static auto* thread = new NamespaceThread();  // never destroyed: exit() ends the thread
    return *thread;
  }

  Result<void> run(const std::function<Result<void>()>& fn) {
    // A job that itself needs a namespace thread (none does today) gets a fresh one rather than
    // waiting for itself.
    if (on_this_thread_) return run_on_fresh_thread(fn);
    std::lock_guard one_job(run_mu_);
    std::unique_lock lock(mu_);
    if (!running_) NETCELL_TRY(start());
    job_ = &fn;
    result_.reset();
    cv_.notify_all();
    cv_.wait(lock, [&] { return result_.has_value(); });
    job_ = nullptr;
    return std::move(*result_);
  }

 private:
  NamespaceThread() = default;

  // Called with mu_ held. The thread starts with every signal blocked: it lives as long as the
  // process, and a signal the process handles with sigwait (netcell run) must never be delivered
  // to it instead.
  Result<void> start() {
    pthread_t thread;
    auto trampoline = [](void* self) -> void* {
      static_cast<NamespaceThread*>(self)->loop();
      return nullptr;
    };
    sigset_t all, previous;
    ::sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, &previous);
    int err = ::pthread_create(&thread, nullptr, trampoline, this);
    ::pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    if (err != 0) return fail_errno("pthread_create", err);
    ::pthread_detach(thread);
    running_ = true;
    return ok();
  }

  void loop() {
    on_this_thread_ = true;
    UniqueFd home(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return job_ != nullptr && !result_.has_value(); });
      const auto* fn = job_;
      lock.unlock();
      Result<void> result = (*fn)();
      bool home_again = home && ::setns(home.get(), CLONE_NEWNET) == 0;
      lock.lock();
      result_ = std::move(result);
      if (!home_again) running_ = false;
      cv_.notify_all();
      if (!home_again) return;  // this thread may be in the job's namespace: let it go
    }
  }

  static thread_local bool on_this_thread_;
  std::mutex run_mu_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool running_ = false;
  const std::function<Result<void>()>* job_ = nullptr;
  std::optional<Result<void>> result_;
};

thread_local bool NamespaceThread::on_this_thread_ = false;

Result<void> run_on_namespace_thread(const std::function<Result<void>()>& fn) {
  return NamespaceThread::instance().run(fn);
}

Result<void> mkdir_p(const std::string& dir) {
  for (std::size_t pos = 1; pos <= dir.size(); ++pos) {
    if (pos != dir.size() && dir[pos] != '/') continue;
    const std::string prefix = dir.substr(0, pos);
    if (::mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST) {
      return fail_errno("mkdir " + prefix, errno);
    }
  }
  return ok();
}

// Names become file names under the netns dir; iproute2 refuses '/' too.
Result<void> check_name(const std::string& name) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos) {
    return fail(ErrorCode::kInvalidArgument, "invalid namespace name '" + name + "'");
  }
  return ok();
}

// Undoes a partly created namespace; errors are ignored because the caller already has the one
// that matters.
void discard_netns_file(const std::string& path) {
  ::umount2(path.c_str(), MNT_DETACH);
  ::unlink(path.c_str());
}

// Opens an rtnetlink socket in the namespace the calling thread is in and brings lo up there.
Result<NetlinkSocket> open_and_bring_lo_up() {
  Result<NetlinkSocket> socket = NetlinkSocket::open();
  if (!socket) return fail(std::move(socket).error().with_context("bring lo up"));
  Result<void> up = socket->request(rtnl::link_set_up(kLoopbackIfindex, true));
  if (!up) return fail(std::move(up).error().with_context("bring lo up"));
  return socket;
}

Result<void> bring_lo_up() {
  auto socket = open_and_bring_lo_up();
  if (!socket) return fail(socket.error());
  return ok();
}

// Makes dir/name an empty placeholder to mount on; O_EXCL makes the name the lock.
Result<void> make_placeholder(const std::string& dir, const std::string& name) {
  const std::string path = dir + "/" + name;
  UniqueFd placeholder(::open(path.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0));
  if (!placeholder && errno == EEXIST) {
    return fail(ErrorCode::kAlreadyExists, "namespace " + name + " already exists in " + dir,
                EEXIST);
  }
  if (!placeholder) return fail_errno("create " + path, errno);
  return ok();
}

// Moves the calling thread into a new network namespace, which lives in this thread until the
// bind mount pins it; the socket opened there stays bound to it. The caller takes the thread back.
Result<NetlinkSocket> unshare_and_pin(const std::string& path, RouterAdverts adverts) {
  if (::unshare(CLONE_NEWNET) != 0) return fail_errno("unshare(CLONE_NEWNET)", errno);
  // Not /proc/self: that names the thread-group leader's netns, not this thread's (notes §1.3).
  if (::mount("/proc/thread-self/ns/net", path.c_str(), nullptr, MS_BIND, nullptr) != 0) {
    return fail_errno("bind mount /proc/thread-self/ns/net on " + path, errno);
  }
  // A new netns starts with lo down; a namespace with nothing reachable still needs loopback.
  auto inside = open_and_bring_lo_up();
  if (!inside) return inside;
  if (adverts == RouterAdverts::kNoneCanArrive) return inside;
  // Links made inside later (a veth's namespace end) take their IPv6 settings from the
  // namespace's defaults: no router advertisement configures them, netcell's addresses and
  // routes are static. Absent on a host without IPv6.
  auto no_ra = write_sysctl("net.ipv6.conf.default.accept_ra", "0");
  if (!no_ra && no_ra.error().code() != ErrorCode::kNotFound) return fail(no_ra.error());
  return inside;
}

// Puts the calling thread back into the network namespace `home_fd` names. setns to a namespace
// the thread has just left can fail only for lack of memory; it is retried once, and if the
// thread still cannot go back the process ends: everything the caller does next on this thread
// would otherwise act on the wrong network.
void return_home_or_abort(int home_fd) {
  if (::setns(home_fd, CLONE_NEWNET) == 0 || ::setns(home_fd, CLONE_NEWNET) == 0) return;
  const int err = errno;
  std::fprintf(stderr, "netcell: cannot return to the calling thread's network namespace: %s\n",
               std::strerror(err));
  std::abort();
}

}  // namespace

Result<void> prepare_netns_dir(const std::string& dir) {
  NETCELL_TRY(mkdir_p(dir));
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return fail_errno("open " + dir, errno);
  // Serialises with `ip netns add` and other netcell processes: racing bind-to-self fallbacks used
  // to stack recursive bind mounts (notes §1.1). Released when `fd` closes.
  if (::flock(fd.get(), LOCK_EX) != 0) return fail_errno("flock " + dir, errno);
  // Shared, so nsfs bind mounts (and their removal) propagate to other mount namespaces (§1.2).
  if (::mount("", dir.c_str(), "none", MS_SHARED | MS_REC, nullptr) == 0) return ok();
  if (errno != EINVAL) return fail_errno("make " + dir + " shared", errno);
  // EINVAL: not a mount point yet. Make it one by bind-mounting it on itself, then retry.
  if (::mount(dir.c_str(), dir.c_str(), "none", MS_BIND | MS_REC, nullptr) != 0) {
    return fail_errno("bind mount " + dir + " on itself", errno);
  }
  if (::mount("", dir.c_str(), "none", MS_SHARED | MS_REC, nullptr) != 0) {
    return fail_errno("make " + dir + " shared", errno);
  }
  return ok();
}

Result<NetlinkSocket> create_named_netns(const std::string& dir, const std::string& name,
                                         RouterAdverts adverts) {
  NETCELL_TRY(check_name(name));
  const std::string path = dir + "/" + name;
  NETCELL_TRY(make_placeholder(dir, name));
  // On the calling thread, not the namespace thread: handing the job to another thread costs two
  // wake-ups of an idle CPU, measured at 0.12-0.14 ms per create here, about a third of what the
  // kernel spends making the namespace. The thread is away from its namespace only between
  // unshare and setns below, with every signal blocked, so no code of the caller (not even a
  // signal handler) runs in the new namespace.
  UniqueFd home(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  if (!home) {
    int err = errno;
    discard_netns_file(path);
    return fail_errno("create namespace " + name + ": open /proc/thread-self/ns/net", err);
  }
  sigset_t all, previous;
  ::sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &previous);
  Result<NetlinkSocket> inside = unshare_and_pin(path, adverts);
  return_home_or_abort(home.get());
  ::pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  if (!inside) {
    discard_netns_file(path);
    return fail(std::move(inside).error().with_context("create namespace " + name));
  }
  return inside;
}

Result<void> adopt_named_netns(const std::string& dir, const std::string& name, pid_t pid) {
  NETCELL_TRY(check_name(name));
  const std::string what = "adopt the network namespace of process " + std::to_string(pid);
  // The fd pins the namespace: whatever happens to the process from here on, the namespace
  // checked below is the one mounted.
  auto target = open_netns("/proc/" + std::to_string(pid) + "/ns/net");
  if (!target) return fail(std::move(target).error().with_context(what));
  struct stat theirs {};
  struct stat ours {};
  struct stat init {};
  if (::fstat(target->get(), &theirs) != 0) return fail_errno(what + ": fstat", errno);
  if (::stat("/proc/self/ns/net", &ours) != 0) return fail_errno(what + ": stat", errno);
  auto same = [&](const struct stat& other) {
    return theirs.st_dev == other.st_dev && theirs.st_ino == other.st_ino;
  };
  if (same(ours)) {
    return fail(ErrorCode::kInvalidArgument,
                what + ": it is netcell's own, the host's network, not a namespace of its own");
  }
  // The machine's own network, when netcell itself runs in a child namespace.
  if (::stat("/proc/1/ns/net", &init) == 0 && same(init)) {
    return fail(ErrorCode::kInvalidArgument,
                what + ": it is the network namespace of PID 1, the machine's own network");
  }
  NETCELL_TRY(make_placeholder(dir, name));
  const std::string path = dir + "/" + name;
  const std::string source = "/proc/self/fd/" + std::to_string(target->get());
  if (::mount(source.c_str(), path.c_str(), nullptr, MS_BIND, nullptr) != 0) {
    int err = errno;
    discard_netns_file(path);
    return fail_errno(what + ": bind mount on " + path, err);
  }
  Result<void> up = run_in_netns(target->get(), bring_lo_up);
  if (!up) {
    discard_netns_file(path);
    return fail(std::move(up).error().with_context(what));
  }
  return ok();
}

Result<void> remove_named_netns(const std::string& dir, const std::string& name) {
  NETCELL_TRY(check_name(name));
  const std::string path = dir + "/" + name;
  // Umount first: unlink of a mount point in our own mount namespace fails with EBUSY. EINVAL
  // means "not mounted" (a stale placeholder), ENOENT "already gone".
  if (::umount2(path.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT) {
    return fail_errno("umount " + path, errno);
  }
  // Always unlink as well: it also detaches copies of the mount in other mount namespaces (§1.2).
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return fail_errno("unlink " + path, errno);
  return ok();
}

bool is_netns_mount(const std::string& path) {
  struct statfs fs {};
  if (::statfs(path.c_str(), &fs) != 0) return false;
  return static_cast<unsigned long>(fs.f_type) == NSFS_MAGIC;
}

Result<UniqueFd> open_netns(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return fail_errno("open " + path, errno);
  return fd;
}

Result<std::uint64_t> netns_inode_of_path(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return fail_errno("stat " + path, errno);
  return static_cast<std::uint64_t>(st.st_ino);
}

Result<void> run_in_netns(int netns_fd, const std::function<Result<void>()>& fn) {
  return run_on_namespace_thread([&]() -> Result<void> {
    if (::setns(netns_fd, CLONE_NEWNET) != 0) return fail_errno("setns(CLONE_NEWNET)", errno);
    return fn();
  });
}

Result<NetlinkSocket> open_netlink_in(int netns_fd) {
  std::optional<NetlinkSocket> socket;
  NETCELL_TRY(run_in_netns(netns_fd, [&]() -> Result<void> {
    auto opened = NetlinkSocket::open();
    if (!opened) return fail(std::move(opened).error());
    socket.emplace(std::move(*opened));
    return ok();
  }));
  return std::move(*socket);
}

}  // namespace netcell::kernel
