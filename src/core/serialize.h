// netcell: JSON forms of the public types, shared by the state store and the CLI's --json.
#pragma once

#include <nlohmann/json.hpp>

#include "netcell/json.h"
#include "netcell/result.h"
#include "netcell/types.h"

namespace netcell {

nlohmann::json to_json(const PortForward& forward);
nlohmann::json to_json(const InterfaceInfo& iface);
nlohmann::json to_json(const NamespaceInfo& info);
nlohmann::json to_json(const InterfaceStats& stats);
nlohmann::json to_json(const NamespaceStats& stats);
nlohmann::json to_json(const NetworkInfo& network);
nlohmann::json to_json(const EgressPolicy& policy);
// The policy object to_json writes (null: none); kCorrupt unless it validates.
Result<std::optional<EgressPolicy>> egress_policy_from_json(const nlohmann::json& j);

// Strict readers: a missing or mistyped field, an unknown enum value or an invalid name or address
// gives kCorrupt, never an exception or a half-filled value.
Result<NamespaceInfo> namespace_info_from_json(const nlohmann::json& j);
Result<NetworkInfo> network_info_from_json(const nlohmann::json& j);

}  // namespace netcell
