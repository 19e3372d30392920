// netcell: fault injection for crash-safety tests. Each fault_point() is a numbered step of an
// operation; with NETCELL_FAULT_AT=N in the environment, the process kills itself with SIGKILL at
// the Nth step it reaches (counted from 1 over the process's life), exactly as a crash would.
// Without the variable it costs one branch.
#pragma once

#include <string_view>

namespace netcell {

void fault_point(std::string_view where);

}  // namespace netcell
