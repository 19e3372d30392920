// Sandboxes and their capabilities (netcell/sandbox.h): a sandbox for this process that was
// granted a network namespace and nothing else, what it is refused, and a named profile.
// Run it as root inside a throwaway world:   tests/support/world.sh build/example_sandbox
// or without privileges, on the simulation:  build/example_sandbox --simulation RUN_DIR
// It checks what it shows and exits 1 on anything unexpected.
#include <unistd.h>

#include <cstdio>
#include <string_view>

#include "netcell/netcell.h"

namespace {

int failed(const netcell::Error& error) {
  std::fprintf(stderr, "netcell: %s\n", error.to_string().c_str());
  return 1;
}

int unexpected(const char* what) {
  std::fprintf(stderr, "example_sandbox: %s\n", what);
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace netcell;
  ManagerOptions options;
  if (argc == 3 && std::string_view(argv[1]) == "--simulation") {
    options.backend = BackendChoice::kSimulation;
    options.run_dir = argv[2];
  }
  auto sandboxes = SandboxManager::with_namespaces(options);
  if (!sandboxes) return failed(sandboxes.error());

  // Granted a namespace and nothing more: full isolation, only loopback.
  auto config = SandboxConfig::privileged(::getpid());
  config.network.name = "sandbox-full";
  config.capabilities.insert(Capability::kNetworkNamespace);
  auto full = sandboxes->create(config);
  if (!full) return failed(full.error());
  std::printf("created %s (%s, backend %s, enforced %s)\n", full->name.c_str(),
              std::string(to_string(full->mode)).c_str(),
              std::string(to_string(full->backend)).c_str(), full->enforced ? "yes" : "no");

  // The same grants asking for a private network: refused before anything is made, since its
  // outbound NAT needs outbound-access.
  SandboxConfig wider = config;
  wider.network.name = "sandbox-private";
  wider.network.mode = IsolationMode::kPrivate;
  auto refused = sandboxes->create(wider);
  if (refused || refused.error().code() != ErrorCode::kPermissionDenied) {
    return unexpected("a private network without outbound-access was not refused");
  }
  if (sandboxes->namespaces().exists("sandbox-private")) return unexpected("refused, yet made");
  std::printf("refused: %s\n", refused.error().to_string().c_str());

  // A profile: a private network that reaches only what its allow rules name.
  auto fetch = SandboxConfig::from_profile("egress-allowlist", ::getpid());
  if (!fetch) return failed(fetch.error());
  fetch->network.name = "sandbox-fetch";
  auto https = EgressRule::parse(PolicyAction::kAllow, "192.0.2.10:443/tcp");
  if (!https) return failed(https.error());
  fetch->network.egress->rules.push_back(*https);
  auto fetching = sandboxes->create(*fetch);
  if (!fetching) return failed(fetching.error());
  if (!fetching->egress || fetching->egress->default_action != PolicyAction::kDeny) {
    return unexpected("the egress-allowlist profile's namespace does not deny by default");
  }
  std::printf("created %s (profile %s, %s, egress default %s, allow %s)\n", fetching->name.c_str(),
              fetch->profile.c_str(), std::string(to_string(fetching->mode)).c_str(),
              std::string(to_string(fetching->egress->default_action)).c_str(),
              fetching->egress->rules.front().to_string().c_str());

  // ... which does not grant publishing a port.
  SandboxConfig published = *fetch;
  published.network.name = "sandbox-published";
  auto port = PortForward::parse("8080:80");
  if (!port) return failed(port.error());
  published.network.port_forwards.push_back(*port);
  auto not_granted = sandboxes->check(published);
  if (not_granted) return unexpected("a published port under egress-allowlist was not refused");
  std::printf("refused: %s\n", not_granted.error().to_string().c_str());

  for (const char* name : {"sandbox-fetch", "sandbox-full"}) {
    if (auto destroyed = sandboxes->namespaces().destroy(name); !destroyed) {
      return failed(destroyed.error());
    }
  }
  std::printf("destroyed both; %zu namespace(s) left\n", sandboxes->namespaces().list().size());
  return sandboxes->namespaces().list().empty() ? 0 : 1;
}
