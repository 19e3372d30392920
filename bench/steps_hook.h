// Checkpoint timestamps for the step benchmarks (netcell-bench-steps, netcell-cli-steps).
//
// netcell calls netcell::fault_point("create: journaled") and so on as an operation passes each
// of its crash-safety checkpoints (src/core/fault.h). steps_hook.cc defines that function itself
// and is linked ahead of the static library, so the library's own definition (fault.cc, which
// defines nothing else) is not linked in: each checkpoint records a timestamp instead. Only these
// two benchmark binaries do that; netcell-bench and the netcell CLI run the unmodified library.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string_view>
#include <vector>

namespace netcell_bench {

struct Mark {
  std::string_view where;  // netcell passes string literals
  std::int64_t realtime_ns;
};

// The checkpoints passed so far; the first is "process started" (before main).
std::vector<Mark>& marks();
std::int64_t realtime_ns();
// Writes one operation's steps to `csv` as rows "I,OP,\"FROM -> TO\",MS": the gaps between its
// start, the checkpoints passed since marks() was last cleared and its end; then clears marks().
void write_steps(std::FILE* csv, int i, const char* op, std::int64_t start, std::int64_t end);

}  // namespace netcell_bench
