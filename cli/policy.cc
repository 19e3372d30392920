// netcell policy show|set|clear, and the policy options of create, run and policy set.
#include <cstdio>

#include "cli.h"
#include "core/serialize.h"

namespace netcell::cli {

nlohmann::json counters_json(const EgressPolicy& policy, const EgressCounters& counters) {
  auto counted = [](const PolicyCounter& c) {
    return nlohmann::json{{"packets", c.packets}, {"bytes", c.bytes}};
  };
  nlohmann::json rules = nlohmann::json::array();
  for (std::size_t i = 0; i < policy.rules.size(); ++i) {
    nlohmann::json r = counted(counters.rules[i]);
    r["action"] = std::string(to_string(policy.rules[i].action));
    r["rule"] = policy.rules[i].to_string();
    rules.push_back(std::move(r));
  }
  return {{"rules", rules}, {"default", counted(counters.by_default)}};
}

namespace {

void print_policy(const std::string& name, const std::optional<EgressPolicy>& policy, bool json_out,
                  const std::optional<EgressCounters>& counters = std::nullopt) {
  if (json_out) {
    nlohmann::json j = policy ? to_json(*policy) : nlohmann::json();
    if (policy && counters) j["counters"] = counters_json(*policy, *counters);
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }
  auto shown = [&](const PolicyCounter& c) {
    return counters ? "  (" + std::to_string(c.packets) + " packets, " + std::to_string(c.bytes) +
                          " bytes)"
                    : std::string();
  };
  if (!policy) {
    std::printf("%s: no egress policy (everything its mode allows)\n", name.c_str());
    return;
  }
  std::printf("%s: egress default %s%s\n", name.c_str(),
              std::string(to_string(policy->default_action)).c_str(),
              counters ? shown(counters->by_default).c_str() : "");
  for (std::size_t i = 0; i < policy->rules.size(); ++i) {
    const auto& rule = policy->rules[i];
    std::printf("  %s %s%s\n", std::string(to_string(rule.action)).c_str(),
                rule.to_string().c_str(), counters ? shown(counters->rules[i]).c_str() : "");
  }
}

int change(const GlobalOptions& g, const std::string& name,
           const std::optional<EgressPolicy>& policy, bool json_out) {
  if (auto id = NamespaceId::parse(name); !id) return report(id.error());
  auto mgr = open_manager(g);
  if (!mgr) return report(mgr.error());
  auto info = mgr->set_egress(name, policy);
  if (!info) return report(info.error());
  if (json_out || !g.quiet) print_policy(name, info->egress, json_out);
  return kExitOk;
}

}  // namespace

Result<std::optional<EgressPolicy>> build_policy(const PolicyOptions& o) {
  if (!o.given()) return std::optional<EgressPolicy>();
  EgressPolicy policy;
  policy.default_action = o.allow.empty() ? PolicyAction::kAllow : PolicyAction::kDeny;
  if (o.egress) {
    auto action = parse_policy_action(*o.egress);
    if (!action) return fail(std::move(action).error().with_context("--egress"));
    policy.default_action = *action;
  }
  for (auto [kind, texts] :
       {std::pair{PolicyAction::kAllow, &o.allow}, std::pair{PolicyAction::kDeny, &o.deny}}) {
    for (const auto& text : *texts) {
      auto rule = EgressRule::parse(kind, text);
      if (!rule) return fail(rule.error());
      policy.rules.push_back(*rule);
    }
  }
  if (auto valid = policy.validate(); !valid) return fail(valid.error());
  return std::optional<EgressPolicy>(std::move(policy));
}

int cmd_policy_show(const GlobalOptions& g, const std::string& name, bool json_out) {
  auto mgr = open_manager(g);
  if (!mgr) return report(mgr.error());
  auto info = mgr->info(name);
  if (!info) return report(info.error());
  std::optional<EgressCounters> counters;
  if (info->egress) {
    auto counted = mgr->egress_counters(name);
    if (counted) {
      counters = std::move(*counted);
    } else if (counted.error().code() != ErrorCode::kUnsupported) {
      return report(counted.error());
    }
  }
  print_policy(name, info->egress, json_out, counters);
  return kExitOk;
}

int cmd_policy_set(const GlobalOptions& g, const std::string& name, const PolicyOptions& o,
                   bool json_out) {
  if (!o.given()) {
    return report(Error(ErrorCode::kInvalidArgument,
                        "policy set needs --egress, --allow or --deny (policy clear removes it)"));
  }
  auto policy = build_policy(o);
  if (!policy) return report(policy.error());
  return change(g, name, *policy, json_out);
}

int cmd_policy_clear(const GlobalOptions& g, const std::string& name, bool json_out) {
  return change(g, name, std::nullopt, json_out);
}

}  // namespace netcell::cli
