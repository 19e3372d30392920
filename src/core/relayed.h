// netcell: the bookkeeping of namespaces whose publishes the host service relays from [::1]
// (netcell/relay.h). RUN_DIR/relayed/NAME.mark exists while namespace NAME needs the relay, so the
// service runs while any does (manager.cc) and gc finds marks without a record; the service
// answers in NAME.answer once it listens for NAME (or could not).
#pragma once

#include <string>
#include <vector>

#include "netcell/relay.h"
#include "netcell/result.h"

namespace netcell::relayed {

// Marks `name` as relayed and removes an earlier answer.
Result<void> mark(const std::string& run_dir, const std::string& name);
// Removes its mark and answer (missing ones are fine), and the directory once it is empty.
void unmark(const std::string& run_dir, const std::string& name);
// The marked names, and whether there is any.
std::vector<std::string> listed(const std::string& run_dir);
bool any_listed(const std::string& run_dir);
// kConflict naming the port when another program holds [::1]:PORT of one of `routes` (a bind of
// each, closed again): checked before anything is made. Changes nothing.
Result<void> probe(const std::vector<LoopbackRoute>& routes);

}  // namespace netcell::relayed
