// The pure parts of "destroy leaves nothing and never hurts anyone else": the firewall table's
// owner tag, the guard rule against stray host ends, and address blocks and bridge names that are
// not handed out while a link of that name still exists (a backend that reports such links).
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <set>

#include "linux/firewall.h"
#include "netcell/manager.h"
#include "sim/sim_backend.h"

namespace netcell {
namespace {

namespace fs = std::filesystem;

TEST(FirewallOwnerTest, TagsNameTheRunDirAndSurviveHostileCharacters) {
  EXPECT_EQ(kernel::owner_tag("/run/netcell"), "netcell:/run/netcell");
  // A quote would end nft's string; a space or newline would split the script.
  const std::string odd = "/run/a \"b\"\n;c";
  const std::string tag = kernel::owner_tag(odd);
  EXPECT_EQ(tag, "netcell:/run/a%20%22b%22%0A%3Bc");
  EXPECT_EQ(kernel::describe_owner(tag), "run dir " + odd);
  EXPECT_NE(kernel::owner_tag("/run/a"), kernel::owner_tag("/run/b"));
  // Too long for a comment: a hash, still told apart.
  const std::string long_a = "/" + std::string(200, 'a');
  const std::string long_b = "/" + std::string(199, 'a') + "b";
  EXPECT_LE(kernel::owner_tag(long_a).size(), 120u);
  EXPECT_EQ(kernel::owner_tag(long_a).rfind("netcell:#", 0), 0u);
  EXPECT_NE(kernel::owner_tag(long_a), kernel::owner_tag(long_b));
  EXPECT_NE(kernel::describe_owner(kernel::owner_tag(long_a)).find("hashes to"), std::string::npos);
}

TEST(FirewallOwnerTest, TheTableIsCreatedExclusivelyWithItsOwnerAndTheStrayGuard) {
  const std::string script = kernel::nft_script::create_table("netcell:/run/x");
  // "create", not "add": a table another process made meanwhile fails the whole transaction.
  EXPECT_EQ(script.rfind("create table ip netcell { comment \"netcell:/run/x v7\"; }\n", 0), 0u)
      << script;
  auto guard = script.find("chain guard", script.find("\ntable ip netcell {"));
  ASSERT_NE(guard, std::string::npos);
  auto stray = script.find("iifname \"ncp*\" iifname != @ns_ifs drop", guard);
  EXPECT_NE(stray, std::string::npos) << script;
  EXPECT_LT(stray, script.find('}', guard)) << "the stray guard must be in the guard chain";
  // Bridge ports: in the bridge-family table, before any frame is bridged.
  auto bridge = script.find("table bridge netcell {");
  ASSERT_NE(bridge, std::string::npos);
  EXPECT_NE(script.find("iifname \"nc*\" iifname != @bridge_ports drop", bridge),
            std::string::npos);
}

// The simulation backend, with host links that "still exist" by name.
class WithHostLinks final : public Backend {
 public:
  explicit WithHostLinks(std::set<std::string>* links)
      : inner_(make_simulation_backend()), links_(links) {}
  BackendKind kind() const override { return inner_->kind(); }
  bool enforces_isolation() const override { return inner_->enforces_isolation(); }
  Result<NamespaceInfo> plan(const NamespaceInfo& i) override { return inner_->plan(i); }
  Result<NamespaceInfo> create(const NamespaceInfo& i, const NetworkInfo* n) override {
    return inner_->create(i, n);
  }
  Result<void> destroy(const NamespaceInfo& i, const DestroyOptions& o) override {
    return inner_->destroy(i, o);
  }
  bool alive(const NamespaceInfo& i) override { return inner_->alive(i); }
  Result<NamespaceStats> stats(const NamespaceInfo& i) override { return inner_->stats(i); }
  Result<void> verify(const NamespaceInfo& i) override { return inner_->verify(i); }
  Result<Child> spawn(const NamespaceInfo& i, const std::vector<std::string>& a,
                      const SpawnOptions& o) override {
    return inner_->spawn(i, a, o);
  }
  Result<void> create_network(const NetworkInfo& n) override { return inner_->create_network(n); }
  Result<void> destroy_network(const NetworkInfo& n) override { return inner_->destroy_network(n); }
  Result<void> release_shared_state() override { return inner_->release_shared_state(); }
  Result<std::vector<IpPrefix>> host_routes() override { return inner_->host_routes(); }
  Result<void> change_egress(const NamespaceInfo& i,
                             const std::optional<EgressPolicy>& p) override {
    return inner_->change_egress(i, p);
  }
  Result<EgressCounters> egress_counters(const NamespaceInfo& i) override {
    return inner_->egress_counters(i);
  }
  Result<void> change_learned(const NamespaceInfo& i, const std::vector<LearnedDestination>& r,
                              const std::vector<LearnedDestination>& a) override {
    return inner_->change_learned(i, r, a);
  }
  Result<std::vector<PolicyCounter>> learned_counters(
      const NamespaceInfo& i, const std::vector<LearnedDestination>& d) override {
    return inner_->learned_counters(i, d);
  }
  Result<void> set_resolver_port(std::optional<std::uint16_t> p,
                                 std::optional<std::uint16_t> q) override {
    return inner_->set_resolver_port(p, q);
  }
  Result<bool> host_link_exists(const std::string& name) override {
    // A link "the kernel is freeing": gone once it has been asked for that often.
    if (auto it = vanishing_.find(name); it != vanishing_.end() && --it->second <= 0) {
      links_->erase(name);
    }
    return links_->count(name) != 0;
  }
  std::map<std::string, int> vanishing_;
  Result<std::uint64_t> netns_of_pid(pid_t p) override { return inner_->netns_of_pid(p); }
  Result<std::uint64_t> netns_of(const NamespaceInfo& i) override { return inner_->netns_of(i); }
  Result<bool> connect(const NamespaceInfo& a, const NamespaceInfo& b,
                       const LinkConfig& l) override {
    return inner_->connect(a, b, l);
  }
  Result<void> configure(const NamespaceInfo& i, const NamespaceExtras& e) override {
    return inner_->configure(i, e);
  }

 private:
  std::unique_ptr<Backend> inner_;
  std::set<std::string>* links_;
};

class HostLinkTest : public ::testing::Test {
 protected:
  void SetUp() override { open("10.209.0.0/16"); }
  void open(const std::string& private_subnet) {
    dir_ = fs::temp_directory_path() / ("netcell-hostlink-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    ManagerOptions options;
    options.backend = BackendChoice::kSimulation;
    options.run_dir = dir_.string();
    options.private_subnet = private_subnet;
    auto backend = std::make_unique<WithHostLinks>(&links_);
    backend_ = backend.get();
    auto mgr = NamespaceManager::create(options, std::move(backend));
    ASSERT_TRUE(mgr) << mgr.error().to_string();
    mgr_.emplace(std::move(*mgr));
  }
  void TearDown() override { fs::remove_all(dir_); }

  Result<NamespaceInfo> create_private(const std::string& name, const std::string& ip = "") {
    auto config = NamespaceConfig::private_network(0);
    config.name = name;
    if (!ip.empty()) {
      InterfaceConfig iface;
      iface.ip = *IpAddress::parse(ip);
      iface.prefix_len = 30;
      config.interface = iface;
    }
    return mgr_->create(config);
  }

  fs::path dir_;
  std::set<std::string> links_;
  WithHostLinks* backend_ = nullptr;
  std::optional<NamespaceManager> mgr_;
};

TEST_F(HostLinkTest, ADynamicCreateSkipsBlocksWhoseHostLinkExists) {
  links_ = {"ncp0", "ncp1"};
  auto a = create_private("a");
  ASSERT_TRUE(a) << a.error().to_string();
  EXPECT_EQ(a->host_interface, "ncp2");
  EXPECT_EQ(a->gateway->to_string(), "10.209.0.9");
  // The skipped blocks were given back: once their links are gone they are handed out.
  links_.clear();
  auto b = create_private("b", "10.209.0.2");
  ASSERT_TRUE(b) << b.error().to_string();
  EXPECT_EQ(b->host_interface, "ncp0");
  auto c = create_private("c", "10.209.0.6");
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(c->host_interface, "ncp1");
}

TEST_F(HostLinkTest, AStaticCreateOnABlockWhoseHostLinkStaysIsRefusedAndLeavesNothing) {
  links_ = {"ncp0"};
  auto start = std::chrono::steady_clock::now();
  auto a = create_private("a", "10.209.0.2");
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error().code(), ErrorCode::kConflict);
  EXPECT_NE(a.error().to_string().find("ncp0"), std::string::npos) << a.error().to_string();
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::seconds(1))
      << "waits for the kernel to free an earlier namespace's link first";
  EXPECT_FALSE(mgr_->exists("a"));
  links_.clear();
  auto again = create_private("a", "10.209.0.2");
  EXPECT_TRUE(again) << again.error().to_string();
}

// A pool whose only free block is one whose old link is still being freed: the create waits for it
// (bounded) instead of reporting the pool exhausted.
TEST_F(HostLinkTest, WhenOnlyShadowedBlocksAreFreeTheCreateWaitsForOne) {
  mgr_.reset();
  open("10.77.0.0/29");  // two blocks
  links_ = {"ncp0"};
  backend_->vanishing_["ncp0"] = 5;
  auto a = create_private("a");
  ASSERT_TRUE(a) << a.error().to_string();
  EXPECT_EQ(a->host_interface, "ncp1");
  auto b = create_private("b");
  ASSERT_TRUE(b) << b.error().to_string();
  EXPECT_EQ(b->host_interface, "ncp0");
  auto c = create_private("c");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code(), ErrorCode::kExhausted) << c.error().to_string();
}

TEST_F(HostLinkTest, ANetworkSkipsBridgeNamesTakenByLinks) {
  links_ = {"ncbr0"};
  NetworkConfig config;
  config.name = "lan";
  config.subnet = *IpPrefix::parse("10.50.0.0/24");
  auto net = mgr_->create_network(config);
  ASSERT_TRUE(net) << net.error().to_string();
  EXPECT_EQ(net->bridge, "ncbr1");
}

}  // namespace
}  // namespace netcell
