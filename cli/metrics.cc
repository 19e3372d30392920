// netcell metrics: the library's Prometheus exposition (netcell/metrics.h, the same text
// netcell-service serves over HTTP), to standard output or node_exporter's textfile directory.
#include "netcell/metrics.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <string>

#include "cli.h"
#include "version.h"

namespace netcell::cli {
namespace {

// Writes `text` to DIR/netcell.prom atomically: a temporary file in DIR (a name node_exporter's
// textfile collector skips, since it does not end in .prom), flushed to disk, then renamed over
// the old one, so a scrape never reads half a file.
Result<void> write_textfile(const std::string& dir, const std::string& text) {
  std::string tmp = dir + "/.netcell.prom.XXXXXX";
  int fd = ::mkostemp(tmp.data(), O_CLOEXEC);
  if (fd < 0) return fail_errno("create a temporary file in " + dir, errno);
  auto fail_with = [&](const std::string& what) {
    int saved = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    return fail_errno(what + " " + tmp, saved);
  };
  for (std::size_t done = 0; done < text.size();) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_with("write");
    done += static_cast<std::size_t>(n);
  }
  if (::fchmod(fd, 0644) != 0) return fail_with("chmod");
  if (::fsync(fd) != 0) return fail_with("fsync");
  if (::close(fd) != 0) {
    int saved = errno;
    ::unlink(tmp.c_str());
    return fail_errno("close " + tmp, saved);
  }
  const std::string target = dir + "/netcell.prom";
  if (::rename(tmp.c_str(), target.c_str()) != 0) {
    int saved = errno;
    ::unlink(tmp.c_str());
    return fail_errno("rename " + tmp + " to " + target, saved);
  }
  return ok();
}

}  // namespace

int cmd_metrics(const GlobalOptions& g, const std::string& textfile_dir) {
  auto mgr = open_manager(g);
  if (!mgr) return report(mgr.error());
  const MetricsSnapshot snapshot = collect_metrics(*mgr);
  for (const auto& error : snapshot.errors)
    std::fprintf(stderr, "netcell: metrics: %s\n", error.c_str());
  const std::string text = render_metrics(
      snapshot, {.version = kVersion, .revision = kRevision, .resolver = std::nullopt});
  if (textfile_dir.empty()) {
    std::fwrite(text.data(), 1, text.size(), stdout);
  } else if (auto written = write_textfile(textfile_dir, text); !written) {
    return report(std::move(written).error().with_context("metrics --textfile"));
  }
  return snapshot.errors.empty() ? kExitOk : kExitFailed;
}

}  // namespace netcell::cli
