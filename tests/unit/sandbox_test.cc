// Sandboxes and profiles (netcell/sandbox.h): what each config needs, every refusal with its
// positive control (on the simulation backend, a scratch run dir), every profile's config, and
// the CLI's --profile (conflicts are one-line usage errors that change nothing).
#include "netcell/sandbox.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <functional>

#include "support/process.h"
#include "support/sim_cli.h"

namespace netcell {
namespace {

namespace fs = std::filesystem;
using C = Capability;

EgressRule rule(PolicyAction action, const std::string& text) {
  auto parsed = EgressRule::parse(action, text);
  EXPECT_TRUE(parsed) << text;
  return parsed ? *parsed : EgressRule{};
}

EgressPolicy policy(PolicyAction default_action, std::vector<EgressRule> rules = {}) {
  EgressPolicy p;
  p.default_action = default_action;
  p.rules = std::move(rules);
  return p;
}

std::vector<Capability> needed(const NamespaceConfig& config,
                               const NetworkInfo* network = nullptr) {
  std::vector<Capability> out;
  for (const auto& need : capability_needs(config, network)) out.push_back(need.capability);
  return out;
}

Capabilities all_but(Capability missing) {
  Capabilities out(all_capabilities().begin(), all_capabilities().end());
  out.erase(missing);
  return out;
}

TEST(CapabilityTest, NamesReadBackAndUnknownOnesAreRefused) {
  std::set<std::string_view> names;
  for (Capability c : all_capabilities()) {
    names.insert(to_string(c));
    EXPECT_EQ(*parse_capability(to_string(c)), c);
  }
  EXPECT_EQ(names.size(), all_capabilities().size());
  auto unknown = parse_capability("root");
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(unknown.error().message(),
            "unknown capability 'root' (expected one of network-namespace, outbound-access, "
            "host-network, publish-ports, host-access, peer-access, adopt-netns)");
}

TEST(CapabilityNeedsTest, EachConfigNeedsWhatItCanReach) {
  using V = std::vector<Capability>;
  EXPECT_EQ(needed(NamespaceConfig::full_isolation(0)), V{C::kNetworkNamespace});
  EXPECT_EQ(needed(NamespaceConfig::private_network(0)),
            (V{C::kNetworkNamespace, C::kOutboundAccess}));
  EXPECT_EQ(needed(NamespaceConfig::shared(0)),
            (V{C::kNetworkNamespace, C::kOutboundAccess, C::kHostNetwork, C::kHostAccess}));

  // Private with a policy: outbound only when something can get out.
  auto closed = NamespaceConfig::private_network(0);
  closed.egress = policy(PolicyAction::kDeny);
  EXPECT_EQ(needed(closed), V{C::kNetworkNamespace});
  closed.egress = policy(PolicyAction::kAllow, {rule(PolicyAction::kDeny, "0.0.0.0/0")});
  EXPECT_EQ(needed(closed), V{C::kNetworkNamespace}) << "a deny-everything rule beats the default";
  closed.egress = policy(PolicyAction::kDeny, {rule(PolicyAction::kDeny, "192.0.2.0/24")});
  EXPECT_EQ(needed(closed), V{C::kNetworkNamespace});
  for (auto open : {policy(PolicyAction::kAllow),
                    policy(PolicyAction::kDeny, {rule(PolicyAction::kAllow, "10.0.0.5:443/tcp")}),
                    policy(PolicyAction::kAllow, {rule(PolicyAction::kDeny, "0.0.0.0/0/tcp")}),
                    policy(PolicyAction::kAllow, {rule(PolicyAction::kDeny, "0.0.0.0/0:1-65535")}),
                    policy(PolicyAction::kAllow, {rule(PolicyAction::kDeny, "0.0.0.0/1")})}) {
    auto config = NamespaceConfig::private_network(0);
    config.egress = open;
    EXPECT_EQ(needed(config), (V{C::kNetworkNamespace, C::kOutboundAccess}));
  }
  std::vector<CapabilityNeed> needs;
  // Bridged: the network's flags decide; an unknown network is taken to have both.
  auto bridged = NamespaceConfig::bridged(0, "lan");
  NetworkInfo lan;
  lan.name = "lan";
  EXPECT_EQ(needed(bridged, &lan), (V{C::kNetworkNamespace, C::kPeerAccess}));
  lan.nat = true;
  EXPECT_EQ(needed(bridged, &lan), (V{C::kNetworkNamespace, C::kOutboundAccess, C::kPeerAccess}));
  lan.nat = false;
  lan.host_access = true;
  EXPECT_EQ(needed(bridged, &lan), (V{C::kNetworkNamespace, C::kHostAccess, C::kPeerAccess}));
  EXPECT_EQ(needed(bridged),
            (V{C::kNetworkNamespace, C::kOutboundAccess, C::kHostAccess, C::kPeerAccess}));
  NetworkInfo other;
  other.name = "wan";
  EXPECT_EQ(needed(bridged, &other), needed(bridged)) << "another network's flags say nothing";

  auto published = NamespaceConfig::private_network(0);
  published.port_forwards = {*PortForward::parse("8080:80"), *PortForward::parse("53:53/udp")};
  needs = capability_needs(published);
  ASSERT_EQ(needs.size(), 3U);
  EXPECT_EQ(needs[2].capability, C::kPublishPorts);
  EXPECT_EQ(needs[2].reason, "published ports 8080:80/tcp, 53:53/udp");

  auto adopted = NamespaceConfig::full_isolation(0);
  adopted.adopt_netns_of = 4321;
  needs = capability_needs(adopted);
  ASSERT_EQ(needs.size(), 2U);
  EXPECT_EQ(needs[1].capability, C::kAdoptNamespace);
  EXPECT_EQ(needs[1].reason, "adopting the network namespace of process 4321");
}

// An allow rule by domain name lets the namespace out too.
TEST(CapabilityNeedsTest, AnAllowedNameNeedsOutboundAccess) {
  EgressPolicy by_name;
  by_name.default_action = PolicyAction::kDeny;
  auto pypi = DomainRule::parse(PolicyAction::kAllow, "pypi.org:443/tcp");
  ASSERT_TRUE(pypi);
  by_name.domains.push_back(*pypi);
  auto config = NamespaceConfig::private_network(0);
  config.egress = by_name;
  auto needs = capability_needs(config);
  ASSERT_EQ(needs.size(), 2U);
  EXPECT_EQ(needs[1].capability, C::kOutboundAccess);
  EXPECT_EQ(needs[1].reason, "egress allow rule " + pypi->to_string());
}

class SandboxManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/netcell-sandbox-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ManagerOptions options;
    options.backend = BackendChoice::kSimulation;
    options.run_dir = dir_;
    auto sandboxes = SandboxManager::with_namespaces(options);
    ASSERT_TRUE(sandboxes) << sandboxes.error().to_string();
    sandboxes_.emplace(std::move(*sandboxes));
  }
  void TearDown() override { fs::remove_all(dir_); }

  NamespaceManager& namespaces() { return sandboxes_->namespaces(); }
  void make_network(const std::string& name, const std::string& subnet, bool nat, bool host) {
    auto made =
        namespaces().create_network(NetworkConfig{name, *IpPrefix::parse(subnet), nat, host, {}});
    ASSERT_TRUE(made) << made.error().to_string();
  }

  std::string dir_;
  std::optional<SandboxManager> sandboxes_;
};

struct Refusal {
  Capability missing;
  std::function<NamespaceConfig()> config;
  const char* reason;
};

// For each capability: a config that needs it, refused when everything else is granted (one line
// naming it and what needs it, nothing made), and made once it is granted too.
TEST_F(SandboxManagerTest, RefusesEveryCapabilityNotGrantedAndMakesItOnceGranted) {
  make_network("plain", "10.71.0.0/24", false, false);
  make_network("natted", "10.72.0.0/24", true, false);
  make_network("hosted", "10.73.0.0/24", false, true);
  auto named = [](NamespaceConfig c) {
    c.name = "box";
    return c;
  };
  const std::vector<Refusal> refusals = {
      {C::kNetworkNamespace, [&] { return named(NamespaceConfig::full_isolation(0)); },
       "a full namespace"},
      {C::kOutboundAccess, [&] { return named(NamespaceConfig::private_network(0)); },
       "private mode's outbound NAT"},
      {C::kOutboundAccess,
       [&] {
         auto c = named(NamespaceConfig::private_network(0));
         c.egress = policy(PolicyAction::kDeny, {rule(PolicyAction::kAllow, "10.0.0.5:443/tcp")});
         return c;
       },
       "egress allow rule 10.0.0.5/32:443/tcp"},
      {C::kOutboundAccess, [&] { return named(NamespaceConfig::bridged(0, "natted")); },
       "network 'natted''s NAT"},
      {C::kOutboundAccess, [&] { return named(NamespaceConfig::shared(0)); }, "shared mode"},
      {C::kHostNetwork, [&] { return named(NamespaceConfig::shared(0)); }, "shared mode"},
      {C::kPublishPorts,
       [&] {
         auto c = named(NamespaceConfig::private_network(0));
         c.port_forwards = {*PortForward::parse("8080:80")};
         return c;
       },
       "published port 8080:80/tcp"},
      {C::kHostAccess, [&] { return named(NamespaceConfig::bridged(0, "hosted")); },
       "network 'hosted''s host access"},
      {C::kHostAccess, [&] { return named(NamespaceConfig::shared(0)); }, "shared mode"},
      {C::kPeerAccess, [&] { return named(NamespaceConfig::bridged(0, "plain")); },
       "network 'plain''s other namespaces"},
      {C::kAdoptNamespace,
       [&] {
         auto c = named(NamespaceConfig::full_isolation(0));
         c.adopt_netns_of = ::getpid();
         return c;
       },
       "adopting the network namespace of process"},
  };
  for (const auto& r : refusals) {
    SandboxConfig config;
    config.network = r.config();
    config.capabilities = all_but(r.missing);
    const std::string what = std::string(to_string(r.missing)) + " / " + r.reason;
    auto made = sandboxes_->create(config);
    ASSERT_FALSE(made) << what;
    EXPECT_EQ(made.error().code(), ErrorCode::kPermissionDenied) << what;
    const std::string line = made.error().to_string();
    EXPECT_EQ(line.rfind("sandbox box: capability " + std::string(to_string(r.missing)) +
                             " is not granted (needed by ",
                         0),
              0U)
        << line;
    EXPECT_NE(line.find(std::string("(needed by ") + r.reason), std::string::npos) << line;
    EXPECT_EQ(line.find('\n'), std::string::npos) << line;
    EXPECT_TRUE(namespaces().list().empty()) << what;
    auto refused = sandboxes_->check(config);
    ASSERT_FALSE(refused) << what;
    EXPECT_EQ(refused.error().to_string(), line);

    // The positive control: granted, it passes; made where the simulation can make it (it
    // cannot adopt its own caller's namespace).
    config.capabilities.insert(r.missing);
    EXPECT_TRUE(sandboxes_->check(config)) << what;
    if (r.missing == C::kAdoptNamespace) continue;
    auto granted = sandboxes_->create(config);
    ASSERT_TRUE(granted) << what << ": " << granted.error().to_string();
    EXPECT_EQ(granted->mode, config.network.mode);
    ASSERT_TRUE(namespaces().destroy("box")) << what;
  }
}

TEST_F(SandboxManagerTest, NamesEveryMissingCapabilityInOneLine) {
  SandboxConfig config = SandboxConfig::privileged(::getpid());
  config.network.name = "web";
  config.network.mode = IsolationMode::kPrivate;
  config.network.port_forwards = {*PortForward::parse("8080:80")};
  config.capabilities.insert(C::kNetworkNamespace);
  config.profile = "mine";
  auto made = sandboxes_->create(config);
  ASSERT_FALSE(made);
  EXPECT_EQ(made.error().to_string(),
            "sandbox web (profile mine): capability outbound-access is not granted (needed by "
            "private mode's outbound NAT); capability publish-ports is not granted (needed by "
            "published port 8080:80/tcp)");
  EXPECT_TRUE(namespaces().list().empty());
}

TEST_F(SandboxManagerTest, InvalidConfigIsInvalidInputBeforeAnyGrant) {
  SandboxConfig config = SandboxConfig::privileged(::getpid());
  config.network.port_forwards = {*PortForward::parse("8080:80")};
  auto made = sandboxes_->create(config);
  ASSERT_FALSE(made);
  EXPECT_EQ(made.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(made.error().message().find("full mode cannot publish ports"), std::string::npos);
}

TEST_F(SandboxManagerTest, AMissingNetworkIsNotFoundNotARefusalOfItsFlags) {
  SandboxConfig config;
  config.network = NamespaceConfig::bridged(0, "nosuch");
  config.network.name = "b";
  config.capabilities = {C::kNetworkNamespace, C::kPeerAccess};
  auto made = sandboxes_->create(config);
  ASSERT_FALSE(made);
  EXPECT_EQ(made.error().code(), ErrorCode::kNotFound) << made.error().to_string();
  config.capabilities = {C::kNetworkNamespace};
  made = sandboxes_->create(config);
  ASSERT_FALSE(made);
  EXPECT_EQ(made.error().code(), ErrorCode::kPermissionDenied);
  EXPECT_NE(made.error().message().find("peer-access"), std::string::npos);
}

// The mission's shape: with_namespaces, privileged, capabilities.insert.
TEST_F(SandboxManagerTest, PrivilegedWithTheNamespaceCapabilityMakesFullIsolation) {
  auto config = SandboxConfig::privileged(::getpid());
  EXPECT_TRUE(config.capabilities.empty());
  EXPECT_EQ(config.network.mode, IsolationMode::kFull);
  EXPECT_EQ(config.network.pid, ::getpid());
  config.capabilities.insert(Capability::kNetworkNamespace);
  auto made = sandboxes_->create(config);
  ASSERT_TRUE(made) << made.error().to_string();
  EXPECT_EQ(made->name, "pid-" + std::to_string(::getpid()));
  EXPECT_EQ(made->mode, IsolationMode::kFull);
  EXPECT_EQ(made->owner_pid, ::getpid());
  EXPECT_TRUE(namespaces().destroy(made->name));
}

TEST(ProfileTest, TheNamedProfilesAndAnUnknownOne) {
  std::vector<std::string_view> names;
  for (const auto& p : profiles()) names.push_back(p.name);
  EXPECT_EQ(names, (std::vector<std::string_view>{"untrusted", "egress-allowlist", "service"}));
  auto unknown = find_profile("trusted");
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(unknown.error().message(),
            "unknown profile 'trusted' (expected untrusted, egress-allowlist, service)");
  EXPECT_FALSE(SandboxConfig::from_profile("trusted", 0));
}

TEST_F(SandboxManagerTest, EveryProfilesConfigIsMadeWithItsGrants) {
  struct Expected {
    const char* profile;
    IsolationMode mode;
    std::optional<EgressPolicy> egress;
    Capabilities grants;
  };
  for (const auto& e : {
           Expected{"untrusted", IsolationMode::kFull, std::nullopt, {C::kNetworkNamespace}},
           Expected{"egress-allowlist",
                    IsolationMode::kPrivate,
                    policy(PolicyAction::kDeny),
                    {C::kNetworkNamespace, C::kOutboundAccess}},
           Expected{"service",
                    IsolationMode::kPrivate,
                    std::nullopt,
                    {C::kNetworkNamespace, C::kOutboundAccess, C::kPublishPorts}},
       }) {
    auto config = SandboxConfig::from_profile(e.profile, ::getpid());
    ASSERT_TRUE(config) << e.profile << ": " << config.error().to_string();
    EXPECT_EQ(config->profile, e.profile);
    EXPECT_EQ(config->network.mode, e.mode) << e.profile;
    EXPECT_EQ(config->network.pid, ::getpid()) << e.profile;
    EXPECT_EQ(config->network.egress, e.egress) << e.profile;
    EXPECT_EQ(config->capabilities, e.grants) << e.profile;
    EXPECT_EQ(find_profile(e.profile)->grants, e.grants) << e.profile;
    config->network.name = std::string("p-") + e.profile;
    auto made = sandboxes_->create(*config);
    ASSERT_TRUE(made) << e.profile << ": " << made.error().to_string();
    EXPECT_EQ(made->mode, e.mode);
    EXPECT_EQ(made->egress, e.egress);
    EXPECT_TRUE(namespaces().destroy(made->name));
  }
  // What the profiles exist for, added by the caller.
  auto allowlist = SandboxConfig::from_profile("egress-allowlist", 0);
  allowlist->network.name = "fetch";
  allowlist->network.egress->rules.push_back(rule(PolicyAction::kAllow, "10.0.0.5:443/tcp"));
  auto made = sandboxes_->create(*allowlist);
  ASSERT_TRUE(made) << made.error().to_string();
  EXPECT_EQ(made->egress->default_action, PolicyAction::kDeny);
  EXPECT_EQ(made->egress->rules.size(), 1U);
  auto service = SandboxConfig::from_profile("service", 0);
  service->network.name = "web";
  service->network.port_forwards = {*PortForward::parse("8080:80")};
  made = sandboxes_->create(*service);
  ASSERT_TRUE(made) << made.error().to_string();
  EXPECT_EQ(made->port_forwards.size(), 1U);
  // ... and what they do not grant, refused at create.
  auto untrusted = SandboxConfig::from_profile("untrusted", 0);
  untrusted->network.name = "u";
  untrusted->network.mode = IsolationMode::kPrivate;
  auto refused = sandboxes_->create(*untrusted);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().to_string(),
            "sandbox u (profile untrusted): capability outbound-access is not granted (needed by "
            "private mode's outbound NAT)");
}

TEST(ProfileTest, ApplyRefusesWhatContradictsTheProfileAndAddsTheRest) {
  struct Conflict {
    const char* profile;
    std::function<void(NamespaceConfig&)> add;
    const char* message;
  };
  const std::vector<Conflict> conflicts = {
      {"untrusted", [](NamespaceConfig& c) { c.port_forwards = {*PortForward::parse("8080:80")}; },
       "profile untrusted does not grant publish-ports, which published port 8080:80/tcp needs"},
      {"untrusted", [](NamespaceConfig& c) { c.egress = policy(PolicyAction::kDeny); },
       "profile untrusted reaches nothing: it takes no egress policy"},
      {"untrusted", [](NamespaceConfig& c) { c.network = "lan"; },
       "profile untrusted makes a full namespace, which joins no network (not 'lan')"},
      {"untrusted", [](NamespaceConfig& c) { c.adopt_netns_of = 77; },
       "profile untrusted does not grant adopt-netns, which adopting the network namespace of "
       "process 77 needs"},
      {"egress-allowlist",
       [](NamespaceConfig& c) { c.port_forwards = {*PortForward::parse("8080:80")}; },
       "profile egress-allowlist does not grant publish-ports, which published port 8080:80/tcp "
       "needs"},
      {"egress-allowlist", [](NamespaceConfig& c) { c.egress = policy(PolicyAction::kAllow); },
       "profile egress-allowlist denies egress by default; a policy that allows by default "
       "contradicts it"},
      {"service", [](NamespaceConfig& c) { c.network = "lan"; },
       "profile service makes a private namespace, which joins no network (not 'lan')"},
      {"service", [](NamespaceConfig& c) { c.adopt_netns_of = 77; },
       "profile service does not grant adopt-netns, which adopting the network namespace of "
       "process 77 needs"},
  };
  for (const auto& c : conflicts) {
    NamespaceConfig config;
    c.add(config);
    auto applied = find_profile(c.profile)->apply(config);
    ASSERT_FALSE(applied) << c.message;
    EXPECT_EQ(applied.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(applied.error().to_string(), c.message);
  }

  // The mode is the profile's whatever the config said; compatible additions are kept.
  NamespaceConfig config;
  config.mode = IsolationMode::kShared;
  config.name = "fetch";
  config.egress = policy(PolicyAction::kDeny, {rule(PolicyAction::kAllow, "10.0.0.5:443/tcp"),
                                               rule(PolicyAction::kDeny, "10.0.0.0/8")});
  config.dns = {*IpAddress::parse("192.0.2.53")};
  auto applied = find_profile("egress-allowlist")->apply(config);
  ASSERT_TRUE(applied) << applied.error().to_string();
  EXPECT_EQ(applied->network.mode, IsolationMode::kPrivate);
  EXPECT_EQ(applied->network.egress, config.egress);
  EXPECT_EQ(applied->network.dns, config.dns);
  EXPECT_EQ(applied->network.name, "fetch");
  NamespaceConfig web;
  web.port_forwards = {*PortForward::parse("8080:80")};
  web.egress = policy(PolicyAction::kAllow, {rule(PolicyAction::kDeny, "198.51.100.0/24")});
  applied = find_profile("service")->apply(web);
  ASSERT_TRUE(applied) << applied.error().to_string();
  EXPECT_EQ(applied->network.port_forwards, web.port_forwards);
  EXPECT_EQ(applied->network.egress, web.egress);
}

// The command line's --profile, against the simulation backend.
class ProfileCliTest : public testing::SimCliTest {};

TEST_F(ProfileCliTest, ConflictsAndUnknownProfilesAreOneLineUsageErrors) {
  ASSERT_EQ(sim({"network", "create", "lan", "--subnet", "10.74.0.0/24"}).exit_code, 0);
  const std::string self = std::to_string(::getpid());
  struct Case {
    std::vector<std::string> args;
    std::string error;  // the whole line after "netcell: "
  };
  const std::vector<Case> cases = {
      {{"create", "m", "--profile", "nosuch"},
       "--profile: unknown profile 'nosuch' (expected untrusted, egress-allowlist, service)"},
      {{"run", "--profile", "nosuch", "--", "true"},
       "--profile: unknown profile 'nosuch' (expected untrusted, egress-allowlist, service)"},
      {{"create", "m", "--profile", "untrusted", "--publish", "8080:80"},
       "profile untrusted does not grant publish-ports, which published port 8080:80/tcp needs"},
      {{"run", "--profile", "untrusted", "--publish", "8080:80", "--", "true"},
       "profile untrusted does not grant publish-ports, which published port 8080:80/tcp needs"},
      {{"create", "m", "--profile", "untrusted", "--mode", "shared"},
       "--mode shared contradicts --profile untrusted (full mode)"},
      {{"create", "m", "--profile", "service", "--mode", "full"},
       "--mode full contradicts --profile service (private mode)"},
      {{"create", "m", "--profile", "untrusted", "--mode", "isolated"},
       "unknown mode 'isolated' (expected full, private, shared or bridged)"},
      {{"create", "m", "--profile", "untrusted", "--network", "lan"},
       "profile untrusted makes a full namespace, which joins no network (not 'lan')"},
      {{"create", "m", "--profile", "service", "--network", "lan"},
       "profile service makes a private namespace, which joins no network (not 'lan')"},
      {{"create", "m", "--profile", "untrusted", "--allow", "10.0.0.5:443/tcp"},
       "profile untrusted reaches nothing: it takes no egress policy"},
      {{"create", "m", "--profile", "egress-allowlist", "--egress", "allow"},
       "--egress allow contradicts --profile egress-allowlist (egress default deny)"},
      {{"create", "m", "--profile", "egress-allowlist", "--publish", "8080:80"},
       "profile egress-allowlist does not grant publish-ports, which published port 8080:80/tcp "
       "needs"},
      {{"create", "m", "--profile", "service", "--netns-of", self},
       "profile service does not grant adopt-netns, which adopting the network namespace of "
       "process " +
           self + " needs"},
      {{"create", "m", "--profile", "untrusted", "--dns", "192.0.2.53"},
       "sandbox m (profile untrusted): full mode takes no DNS servers"},
  };
  for (const auto& c : cases) {
    auto r = sim(c.args);
    std::string shown;
    for (const auto& a : c.args) shown += "'" + a + "' ";
    EXPECT_EQ(r.exit_code, 2) << shown << "\nstderr: " << r.err;
    EXPECT_EQ(r.err, "netcell: " + c.error + "\n") << shown;
    EXPECT_TRUE(records().empty()) << shown;
  }
}

TEST_F(ProfileCliTest, CompatibleOptionsAreAdded) {
  auto fetch = sim({"create", "fetch", "--profile", "egress-allowlist", "--allow",
                    "10.0.0.5:443/tcp", "--deny", "10.0.0.0/8", "--json"});
  ASSERT_EQ(fetch.exit_code, 0) << fetch.err;
  auto j = nlohmann::json::parse(fetch.out);
  EXPECT_EQ(j["mode"], "private");
  EXPECT_EQ(j["egress"]["default"], "deny");
  EXPECT_EQ(j["egress"]["allow"], nlohmann::json::array({"10.0.0.5/32:443/tcp"}));
  EXPECT_EQ(j["egress"]["deny"], nlohmann::json::array({"10.0.0.0/8/any"}));

  auto closed = sim({"create", "closed", "--profile", "egress-allowlist", "--json"});
  ASSERT_EQ(closed.exit_code, 0) << closed.err;
  j = nlohmann::json::parse(closed.out);
  EXPECT_EQ(j["egress"]["default"], "deny");
  EXPECT_TRUE(j["egress"]["allow"].empty());

  auto web = sim({"create", "web", "--profile", "service", "--mode", "private", "--publish",
                  "8080:80", "--rate", "10mbit", "--json"});
  ASSERT_EQ(web.exit_code, 0) << web.err;
  j = nlohmann::json::parse(web.out);
  EXPECT_EQ(j["mode"], "private");
  EXPECT_EQ(j["port_forwards"].size(), 1U);
  EXPECT_FALSE(j.contains("egress"));

  auto box = sim({"create", "box", "--profile", "untrusted", "--mode", "full", "--json"});
  ASSERT_EQ(box.exit_code, 0) << box.err;
  EXPECT_EQ(nlohmann::json::parse(box.out)["mode"], "full");
  EXPECT_EQ(records(),
            (std::vector<std::string>{"box.json", "closed.json", "fetch.json", "web.json"}));

  auto ran = sim({"run", "--profile", "egress-allowlist", "--allow", "192.0.2.0/24:443/tcp", "--",
                  "sh", "-c", "exit 3"});
  EXPECT_EQ(ran.exit_code, 3) << ran.err;
  EXPECT_EQ(records().size(), 4U) << "run destroyed its namespace";
}

TEST_F(ProfileCliTest, ProfileListShowsWhatEachGrants) {
  auto listed = testing::cli({"profile", "list", "--json"});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  auto j = nlohmann::json::parse(listed.out);
  ASSERT_EQ(j.size(), profiles().size());
  for (std::size_t i = 0; i < profiles().size(); ++i) {
    const Profile& p = profiles()[i];
    EXPECT_EQ(j[i]["name"], p.name);
    EXPECT_EQ(j[i]["mode"], to_string(p.mode));
    EXPECT_EQ(j[i]["grants"].size(), p.grants.size());
    for (Capability c : p.grants) {
      EXPECT_NE(std::find(j[i]["grants"].begin(), j[i]["grants"].end(), to_string(c)),
                j[i]["grants"].end());
    }
  }
  EXPECT_EQ(j[1]["egress"], "default-deny");
  auto text = testing::cli({"profile", "list"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("service (private mode, egress policy optional): "), std::string::npos)
      << text.out;
  EXPECT_NE(text.out.find("  grants network-namespace, outbound-access, publish-ports\n"),
            std::string::npos)
      << text.out;
  EXPECT_EQ(testing::cli({"profile"}).exit_code, 2);
}

}  // namespace
}  // namespace netcell
