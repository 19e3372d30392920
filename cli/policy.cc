// netcell policy show|set|clear, and the policy options of create, run and policy set.
#include <algorithm>
#include <chrono>
#include <cstdio>

#include "cli.h"
#include "netcell/json.h"

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
  nlohmann::json domains = nlohmann::json::array();
  for (std::size_t i = 0; i < policy.domains.size(); ++i) {
    nlohmann::json r = counted(i < counters.domains.size() ? counters.domains[i] : PolicyCounter{});
    r["action"] = std::string(to_string(policy.domains[i].action));
    r["rule"] = policy.domains[i].to_string();
    domains.push_back(std::move(r));
  }
  return {{"rules", rules}, {"domains", domains}, {"default", counted(counters.by_default)}};
}

namespace {

std::int64_t unix_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string destination_text(const LearnedDestination& d) {
  std::string out = d.address.to_string();
  out += ' ';
  out += to_string(d.protocol);
  if (d.protocol == PolicyProtocol::kTcp || d.protocol == PolicyProtocol::kUdp) {
    out += '/' + std::to_string(d.ports.first);
    if (d.ports.last != d.ports.first) out += '-' + std::to_string(d.ports.last);
  }
  return out;
}

}  // namespace

namespace {

void print_policy(const std::string& name, const std::optional<EgressPolicy>& policy, bool json_out,
                  const std::optional<EgressCounters>& counters = std::nullopt,
                  const std::vector<LearnedDestination>& learned = {}) {
  const std::int64_t now = unix_ms_now();
  if (json_out) {
    nlohmann::json j = policy ? nlohmann::json::parse(to_json_text(*policy)) : nlohmann::json();
    if (policy && counters) j["counters"] = counters_json(*policy, *counters);
    if (policy) {
      nlohmann::json list = nlohmann::json::array();
      for (const auto& d : learned) {
        list.push_back(
            {{"address", d.address.to_string()},
             {"protocol", std::string(to_string(d.protocol))},
             {"ports", std::to_string(d.ports.first) + "-" + std::to_string(d.ports.last)},
             {"name", d.name},
             {"expires_in_ms", std::max<std::int64_t>(0, d.expires_unix_ms - now)}});
      }
      j["learned"] = list;
    }
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
  for (std::size_t i = 0; i < policy->domains.size(); ++i) {
    const auto& rule = policy->domains[i];
    std::printf(
        "  %s %s%s\n", std::string(to_string(rule.action)).c_str(), rule.to_string().c_str(),
        counters && i < counters->domains.size() ? shown(counters->domains[i]).c_str() : "");
  }
  if (!policy->domains.empty()) {
    std::printf("  names refused with %s; learned addresses stay max(TTL, %us) + %us\n",
                std::string(to_string(policy->refuse_with)).c_str(), policy->learn_min_ttl,
                policy->learn_grace);
  }
  for (const auto& d : learned) {
    std::printf("  learned %s (%s, %llds left)\n", destination_text(d).c_str(), d.name.c_str(),
                static_cast<long long>(std::max<std::int64_t>(0, d.expires_unix_ms - now) / 1000));
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
  policy.default_action =
      o.allow.empty() && o.allow_domain.empty() ? PolicyAction::kAllow : PolicyAction::kDeny;
  if (o.file) {
    auto parsed = load_policy_file(*o.file);
    if (!parsed) return fail(std::move(parsed).error().with_context("--policy"));
    policy = std::move(*parsed);
  }
  if (o.egress) {
    auto action = parse_policy_action(*o.egress);
    if (!action) return fail(std::move(action).error().with_context("--egress"));
    policy.default_action = *action;
  }
  for (auto [kind, texts] :
       {std::pair{PolicyAction::kAllow, &o.allow}, std::pair{PolicyAction::kDeny, &o.deny}}) {
    for (const auto& text : *texts) {
      if (auto added = add_egress_entry(policy, kind, text); !added) return fail(added.error());
    }
  }
  for (auto [kind, texts] : {std::pair{PolicyAction::kAllow, &o.allow_domain},
                             std::pair{PolicyAction::kDeny, &o.deny_domain}}) {
    for (const auto& text : *texts) {
      auto rule = DomainRule::parse(kind, text);
      if (!rule) return fail(rule.error());
      policy.domains.push_back(std::move(*rule));
    }
  }
  if (o.refuse_dns) {
    auto refusal = parse_dns_refusal(*o.refuse_dns);
    if (!refusal) return fail(std::move(refusal).error().with_context("--refuse-dns"));
    policy.refuse_with = *refusal;
  }
  for (auto [text, target, flag] :
       {std::tuple{&o.dns_min_ttl, &policy.learn_min_ttl, "--dns-min-ttl"},
        std::tuple{&o.dns_grace, &policy.learn_grace, "--dns-grace"}}) {
    if (!*text) continue;
    auto seconds = parse_seconds(**text);
    if (!seconds) return fail(std::move(seconds).error().with_context(flag));
    *target = *seconds;
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
  std::vector<LearnedDestination> learned;
  if (info->egress) {
    if (auto got = mgr->learned(name); got) learned = std::move(*got);
  }
  print_policy(name, info->egress, json_out, counters, learned);
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
