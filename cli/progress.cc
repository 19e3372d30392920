// netcell CLI: the progress counter of long operations (cli.h, Progress).
#include <unistd.h>

#include <cstdio>
#include <string>

#include "cli.h"

namespace netcell::cli {

Progress::Progress(const GlobalOptions& g) : enabled_(!g.quiet && ::isatty(STDERR_FILENO) == 1) {}

Progress::~Progress() {
  clear();
}

void Progress::show(std::size_t done, std::size_t total, std::string_view verb,
                    std::string_view object) {
  if (!enabled_ || total < 2) return;
  // Carriage return, the counter, then erase what a longer earlier line left (ESC [ K).
  std::string line = "\r[" + std::to_string(done) + '/' + std::to_string(total) + "] ";
  line.append(verb).append(1, ' ').append(object).append("\033[K");
  std::fputs(line.c_str(), stderr);
  std::fflush(stderr);
  shown_ = true;
}

void Progress::clear() {
  if (!shown_) return;
  std::fputs("\r\033[K", stderr);
  std::fflush(stderr);
  shown_ = false;
}

}  // namespace netcell::cli
