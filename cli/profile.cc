// create/run --profile NAME, and netcell profile list: the named profiles of netcell/sandbox.h.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli.h"

namespace netcell::cli {
namespace {

std::string_view to_string(Profile::Egress egress) {
  switch (egress) {
    case Profile::Egress::kNone: return "none";
    case Profile::Egress::kDefaultDeny: return "default-deny";
    case Profile::Egress::kOptional: return "optional";
  }
  return "";
}

std::vector<std::string> grant_names(const Profile& profile) {
  std::vector<std::string> names;
  for (Capability c : profile.grants) names.emplace_back(netcell::to_string(c));
  return names;
}

}  // namespace

Result<SandboxConfig> build_sandbox(const CreateOptions& o) {
  if (o.profile.empty()) {
    // No profile: the command line grants whatever it asks for.
    auto config = build_config(o);
    if (!config) return fail(config.error());
    SandboxConfig sandbox;
    sandbox.capabilities.insert(all_capabilities().begin(), all_capabilities().end());
    sandbox.network = std::move(*config);
    return sandbox;
  }
  auto profile = find_profile(o.profile);
  if (!profile) return fail(std::move(profile).error().with_context("--profile"));
  const std::string named = "--profile " + o.profile;
  const std::string mode(to_string(profile->mode));
  CreateOptions typed = o;
  if (!o.mode.empty()) {
    auto given = parse_isolation_mode(o.mode);
    if (!given) return fail(given.error());
    if (*given != profile->mode) {
      return fail(ErrorCode::kInvalidArgument,
                  "--mode " + o.mode + " contradicts " + named + " (" + mode + " mode)");
    }
  }
  typed.mode = mode;  // also with --network, which the profile then refuses by name
  if (profile->egress == Profile::Egress::kDefaultDeny) {
    if (o.policy.egress && *o.policy.egress != "deny") {
      return fail(ErrorCode::kInvalidArgument, "--egress " + *o.policy.egress + " contradicts " +
                                                   named + " (egress default deny)");
    }
    typed.policy.egress = "deny";
  }
  auto config = build_config(typed);
  if (!config) return fail(config.error());
  return profile->apply(std::move(*config));
}

Result<NamespaceInfo> create_sandbox(SandboxManager& sandboxes, const SandboxConfig& config) {
  // Without a profile there is nothing to check: create as the options say.
  if (config.profile.empty()) return sandboxes.namespaces().create(config.network);
  return sandboxes.create(config);
}

int cmd_profile_list(bool json_out) {
  if (json_out) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& p : profiles()) {
      out.push_back({{"name", p.name},
                     {"description", p.description},
                     {"mode", netcell::to_string(p.mode)},
                     {"egress", to_string(p.egress)},
                     {"grants", grant_names(p)}});
    }
    std::printf("%s\n", out.dump(2).c_str());
    return kExitOk;
  }
  for (const auto& p : profiles()) {
    std::string grants;
    for (const auto& g : grant_names(p)) {
      if (!grants.empty()) grants += ", ";
      grants += g;
    }
    std::printf("%s (%s mode, egress policy %s): %s\n  grants %s\n", std::string(p.name).c_str(),
                std::string(netcell::to_string(p.mode)).c_str(),
                std::string(to_string(p.egress)).c_str(), std::string(p.description).c_str(),
                grants.c_str());
  }
  return kExitOk;
}

}  // namespace netcell::cli
