// The seed API example: full isolation for a pid, queried every way, then destroyed.
// Run it as root inside a throwaway world: tests/support/world.sh build/example_seed
#include <unistd.h>

#include <cstdio>

#include "netcell/netcell.h"

int main() {
  using namespace netcell;
  auto mgr = NamespaceManager::create(ManagerOptions{});
  if (!mgr) {
    std::fprintf(stderr, "netcell: %s\n", mgr.error().to_string().c_str());
    return 1;
  }
  auto fail_with = [](const Error& e) {
    std::fprintf(stderr, "netcell: %s\n", e.to_string().c_str());
    return 1;
  };

  auto config = NamespaceConfig::full_isolation(::getpid());
  auto created = mgr->create(config);
  if (!created) return fail_with(created.error());
  const std::string& id = created->name;
  std::printf("created %s (backend %s, enforced %s)\n", id.c_str(),
              std::string(to_string(created->backend)).c_str(), created->enforced ? "yes" : "no");

  std::printf("exists: %s\n", mgr->exists(id) ? "yes" : "no");
  auto info = mgr->info(id);
  if (!info) return fail_with(info.error());
  for (const auto& iface : info->interfaces) {
    std::printf("interface %s mtu %u\n", iface.name.c_str(), iface.mtu);
  }
  auto stats = mgr->stats(id);
  if (!stats) return fail_with(stats.error());
  std::printf("stats: %zu interface(s), rx %llu bytes, tx %llu bytes\n", stats->interface_count(),
              static_cast<unsigned long long>(stats->total.rx_bytes),
              static_cast<unsigned long long>(stats->total.tx_bytes));
  std::printf("list: %zu namespace(s)\n", mgr->list().size());
  auto found = mgr->find_by_pid(::getpid());
  if (!found) return fail_with(found.error());
  std::printf("find_by_pid(%d): %s\n", ::getpid(), found->name.c_str());

  if (auto destroyed = mgr->destroy(id); !destroyed) return fail_with(destroyed.error());
  std::printf("destroyed %s; exists: %s\n", id.c_str(), mgr->exists(id) ? "yes" : "no");
  return mgr->exists(id) || found->name != id ? 1 : 0;
}
