// netcell: the JSON forms of the public types, exactly as `netcell ... --json` prints them and the
// run dir's records keep them (docs/ARCHITECTURE.md, "State"). Compact text, so that a front-end
// or a program can use them without sharing a JSON library with netcell.
#pragma once

#include <string>

#include "netcell/policy.h"
#include "netcell/types.h"

namespace netcell {

std::string to_json_text(const NamespaceInfo& info);
std::string to_json_text(const NetworkInfo& network);
std::string to_json_text(const NamespaceStats& stats);
std::string to_json_text(const EgressPolicy& policy);

}  // namespace netcell
