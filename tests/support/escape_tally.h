// netcell tests: the tally of escape attempts, one for every suite that tries ways out of a
// namespace (tests/integration/escape_test.cc by mode, resolver_attack_test.cc as "resolver").
// Each test prints and records its own counts, "escape-attempts MODE tried=N blocked=N escaped=N
// controls=N" (ctest runs one test per process and world; the README's totals add these lines
// up); a process that ran several tests ends with the sum over all of them, per mode and in all:
// "escape attempts: tried=N blocked=N escaped=N (MODE N, ...)".
#pragma once

#include <map>
#include <string>

namespace netcell::testing {

struct EscapeCount {
  int tried = 0;
  int blocked = 0;
  int controls = 0;
};

// What the tests of this process reported, by mode.
std::map<std::string, EscapeCount>& escape_totals();
// Prints and records one test's counts for `mode` (from inside the test or its TearDown) and
// adds them to escape_totals(). Nothing for a count with neither attempts nor controls.
void report_escape_attempts(const std::string& mode, const EscapeCount& count);

}  // namespace netcell::testing
