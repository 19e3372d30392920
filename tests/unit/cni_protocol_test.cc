// netcell-cni's protocol: the CNI_* environment, CNI_ARGS, configurations, results and errors.
#include <gtest/gtest.h>

#include <map>

#include "cni.h"

namespace netcell::cni {
namespace {

// The environment parse_environment reads, as a fixture.
std::map<std::string, std::string> g_env;
const char* fake_getenv(const char* name) {
  auto it = g_env.find(name);
  return it == g_env.end() ? nullptr : it->second.c_str();
}

int config_error(const std::string& text, Verb verb = Verb::kAdd) {
  auto r = parse_config(text, verb);
  return r ? 0 : r.error().code;
}

const char* kMinimal = R"({"cniVersion":"1.0.0","name":"net1","type":"netcell"})";

TEST(CniEnvironmentTest, EachVerbNeedsItsVariables) {
  g_env = {{"CNI_COMMAND", "ADD"},
           {"CNI_CONTAINERID", "c1"},
           {"CNI_NETNS", "/run/netns/x"},
           {"CNI_IFNAME", "eth0"},
           {"CNI_PATH", "/usr/lib/cni"}};
  auto env = parse_environment(fake_getenv);
  ASSERT_TRUE(env) << env.error().msg;
  EXPECT_EQ(env->verb, Verb::kAdd);
  EXPECT_EQ(env->netns, "/run/netns/x");
  for (const char* missing : {"CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"}) {
    auto saved = g_env;
    g_env.erase(missing);
    auto r = parse_environment(fake_getenv);
    ASSERT_FALSE(r) << missing;
    EXPECT_EQ(r.error().code, kInvalidEnvironment) << missing;
    g_env = saved;
  }
  // DEL may come without a namespace (it is gone); VERSION needs nothing else.
  g_env = {{"CNI_COMMAND", "DEL"},
           {"CNI_CONTAINERID", "c1"},
           {"CNI_IFNAME", "eth0"},
           {"CNI_PATH", "/usr/lib/cni"}};
  EXPECT_TRUE(parse_environment(fake_getenv));
  g_env = {{"CNI_COMMAND", "VERSION"}};
  EXPECT_TRUE(parse_environment(fake_getenv));
  for (auto [key, value] :
       {std::pair{"CNI_COMMAND", "FROB"}, std::pair{"CNI_COMMAND", ""},
        std::pair{"CNI_CONTAINERID", "a/b"}, std::pair{"CNI_IFNAME", "a b"},
        std::pair{"CNI_IFNAME", "sixteen-chars-xx"}, std::pair{"CNI_NETNS", "relative/x"}}) {
    g_env = {{"CNI_COMMAND", "ADD"},
             {"CNI_CONTAINERID", "c1"},
             {"CNI_NETNS", "/run/netns/x"},
             {"CNI_IFNAME", "eth0"},
             {"CNI_PATH", "/usr/lib/cni"}};
    g_env[key] = value;
    auto r = parse_environment(fake_getenv);
    ASSERT_FALSE(r) << key << "=" << value;
    EXPECT_EQ(r.error().code, kInvalidEnvironment);
  }
}

TEST(CniArgsTest, ReadsPodmansIpAndMac) {
  auto args = parse_cni_args(
      "IgnoreUnknown=1;K8S_POD_NAME=web;FOO=bar;MAC=02:00:00:00:00:07;"
      "IP=10.88.0.9");
  ASSERT_TRUE(args) << args.error().msg;
  ASSERT_TRUE(args->ip);
  EXPECT_EQ(args->ip->to_string(), "10.88.0.9");
  EXPECT_EQ(args->mac, "02:00:00:00:00:07");
  EXPECT_TRUE(parse_cni_args(""));
  for (const char* bad : {"FOO=bar", "IP=10.88.0.300", "MAC=zz", "IP"}) {
    auto r = parse_cni_args(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, kInvalidEnvironment) << bad;
  }
}

TEST(CniConfigTest, RefusesWhatIsNotAConfiguration) {
  EXPECT_EQ(config_error(kMinimal), 0);
  EXPECT_EQ(config_error("{"), kDecodeFailure);
  EXPECT_EQ(config_error("[1,2]"), kDecodeFailure);
  EXPECT_EQ(config_error(std::string(kMaxConfigBytes + 1, ' ')), kDecodeFailure);
  EXPECT_EQ(config_error(R"({"cniVersion":"2.0.0","name":"n","type":"netcell"})"),
            kIncompatibleVersion);
  EXPECT_EQ(config_error(R"({"name":"n","type":"netcell"})"), kIncompatibleVersion);  // 0.1.0
  EXPECT_EQ(config_error(R"({"cniVersion":"1.0.0","type":"netcell"})"), kInvalidConfig);
  EXPECT_EQ(config_error(R"({"cniVersion":"1.0.0","name":"n"})"), kInvalidConfig);
  EXPECT_EQ(config_error(R"({"cniVersion":"1.0.0","name":"-n","type":"netcell"})"), kInvalidConfig);
  EXPECT_EQ(config_error(R"({"cniVersion":"1.0.0","name":"n","type":"netcell","mode":"x"})"),
            kInvalidConfig);
  EXPECT_EQ(config_error(R"({"cniVersion":"1.0.0","name":"n","type":"netcell","mtu":40})"),
            kInvalidConfig);
  EXPECT_EQ(config_error(R"({"cniVersion":"1.0.0","name":"n","type":"netcell","mtu":"x"})"),
            kInvalidConfig);
  // A delegated ipam plugin: bridged only, a plain name, not beside ips.
  EXPECT_EQ(config_error(R"({"cniVersion":"1.0.0","name":"n","type":"netcell",
                             "ipam":{"type":"host-local"}})"),
            kInvalidConfig);
  for (const char* type : {R"("../sh")", R"("a/b")", R"("..")", R"("")", "7", "null"}) {
    EXPECT_EQ(config_error(std::string(R"({"cniVersion":"1.0.0","name":"n","type":"netcell",
        "mode":"bridged","subnet":"10.77.0.0/24","ipam":{"type":)") +
                           type + "}}"),
              kInvalidConfig)
        << type;
  }
  EXPECT_EQ(config_error(R"({"cniVersion":"1.0.0","name":"n","type":"netcell","mode":"bridged",
      "subnet":"10.77.0.0/24","ipam":{"type":"host-local"},
      "runtimeConfig":{"ips":["10.77.0.9/24"]}})"),
            kInvalidConfig);
  EXPECT_EQ(config_error(R"({"cniVersion":"1.0.0","name":"n","type":"netcell",
                             "runtimeConfig":{"dns":{"servers":["ns1"]}}})"),
            kInvalidConfig);
  EXPECT_EQ(config_error(R"({"cniVersion":"1.0.0","name":"n","type":"netcell",
                             "runtimeConfig":{"dns":{"searches":[7]}}})"),
            kInvalidConfig);
  EXPECT_EQ(config_error(R"({"cniVersion":"1.0.0","name":"n","type":"netcell",
                             "runtimeConfig":{"portMappings":[{"hostPort":0,"containerPort":80}]}})"),
            kInvalidConfig);
  // Verbs a version does not have.
  EXPECT_EQ(config_error(R"({"cniVersion":"0.3.1","name":"n","type":"netcell"})", Verb::kCheck),
            kIncompatibleVersion);
  EXPECT_EQ(config_error(kMinimal, Verb::kStatus), kIncompatibleVersion);
  EXPECT_EQ(config_error(R"({"cniVersion":"1.1.0","name":"n","type":"netcell"})", Verb::kGc),
            kInvalidConfig);  // no cni.dev/valid-attachments
}

TEST(CniConfigTest, ReadsCapabilitiesAndModes) {
  auto c = parse_config(R"({"cniVersion":"1.1.0","name":"n","type":"netcell","mode":"bridged",
      "subnet":"10.77.0.0/24","mtu":1400,"dns":{"nameservers":["192.0.2.53"]},
      "runtimeConfig":{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"},
                                       {"hostPort":53,"containerPort":53,"protocol":"UDP",
                                        "hostIP":"127.0.0.1"}],
                       "bandwidth":{"ingressRate":1000000,"egressRate":2000000},
                       "ips":["10.77.0.9/24"],"mac":"02:00:00:00:00:01"},
      "cni.dev/valid-attachments":[{"containerID":"a","ifname":"eth0"}]})",
                        Verb::kGc);
  ASSERT_TRUE(c) << c.error().msg;
  EXPECT_EQ(c->mode, IsolationMode::kBridged);
  EXPECT_EQ(c->network, "n");  // the conflist's name by default
  EXPECT_EQ(c->subnet->to_string(), "10.77.0.0/24");
  EXPECT_EQ(c->mtu, 1400u);
  ASSERT_EQ(c->dns.size(), 1u);
  ASSERT_EQ(c->port_mappings.size(), 2u);
  EXPECT_EQ(c->port_mappings[1].to_string(), "127.0.0.1:53:53/udp");
  EXPECT_EQ(c->rate.ingress_bps, 1000000u);
  EXPECT_EQ(c->rate.egress_bps, 2000000u);
  ASSERT_EQ(c->ips.size(), 1u);
  EXPECT_EQ(c->mac, "02:00:00:00:00:01");
  ASSERT_TRUE(c->valid_attachments);
  EXPECT_EQ(c->valid_attachments->at(0).first, "a");
  EXPECT_EQ(c->valid_attachments->at(0).second, "eth0");
  // A private network has a pool of its own: no subnet, no network name.
  EXPECT_EQ(config_error(R"({"cniVersion":"1.0.0","name":"n","type":"netcell",
                             "subnet":"10.1.0.0/24"})"),
            kInvalidConfig);
}

// A bridged network's IPv6 prefix is its own key; each family's prefix goes in its own key.
TEST(CniConfigTest, ReadsABridgedSubnet6) {
  auto c = parse_config(R"({"cniVersion":"1.1.0","name":"n","type":"netcell","mode":"bridged",
      "subnet":"10.77.0.0/24","subnet6":"fd77:1::/64"})",
                        Verb::kAdd);
  ASSERT_TRUE(c) << c.error().msg;
  ASSERT_TRUE(c->subnet6);
  EXPECT_EQ(c->subnet6->to_string(), "fd77:1::/64");
  EXPECT_FALSE(parse_config(R"({"cniVersion":"1.1.0","name":"n","type":"netcell",
      "mode":"bridged","subnet":"10.77.0.0/24"})",
                            Verb::kAdd)
                   ->subnet6);
  for (const char* bad : {
           R"("mode":"bridged","subnet":"10.77.0.0/24","subnet6":"10.78.0.0/24")",
           R"("mode":"bridged","subnet":"fd77:1::/64")",
           R"("mode":"bridged","subnet":"10.77.0.0/24","subnet6":"fd77:1::/129")",
           R"("mode":"bridged","subnet":"10.77.0.0/24","subnet6":64)",
           R"("subnet6":"fd77:1::/64")",  // private mode has a pool
       }) {
    EXPECT_EQ(config_error(std::string(R"({"cniVersion":"1.1.0","name":"n","type":"netcell",)") +
                           bad + "}"),
              kInvalidConfig)
        << bad;
  }
}

TEST(CniConfigTest, ReadsADelegatedIpamAndTheDnsCapability) {
  const std::string text = R"({"cniVersion":"1.0.0","name":"n","type":"netcell","mode":"bridged",
      "subnet":"10.77.0.0/24","ipam":{"type":"host-local","subnet":"10.77.0.0/24"},
      "dns":{"nameservers":["198.51.100.53"]},
      "runtimeConfig":{"dns":{"servers":["192.0.2.53"],"searches":["example.test"]}}})";
  auto c = parse_config(text, Verb::kAdd);
  ASSERT_TRUE(c) << c.error().msg;
  EXPECT_EQ(c->ipam_type, "host-local");
  EXPECT_EQ(c->text, text);  // what the ipam plugin is given, as it came
  ASSERT_EQ(c->dns.size(), 1u);
  EXPECT_EQ(c->dns[0].to_string(), "192.0.2.53");
  EXPECT_EQ(c->dns_json,
            json::parse(R"({"nameservers":["192.0.2.53"],"search":["example.test"]})"));
}

TEST(CniIpamTest, TheFirstAddressOfEachFamilyOfAResultOfAnyVersion) {
  auto v1 = ipam_addresses(json::parse(R"({"cniVersion":"1.0.0","ips":[
      {"address":"2001:db8::5/64"},{"address":"10.77.0.100/24","gateway":"10.77.0.1"},
      {"address":"10.77.0.101/24"},{"address":"2001:db8::6/64"}]})"));
  ASSERT_TRUE(v1) << v1.error().msg;
  EXPECT_EQ(v1->ip->to_string(), "10.77.0.100/24");
  ASSERT_TRUE(v1->ip6);
  EXPECT_EQ(v1->ip6->to_string(), "2001:db8::5/64");
  auto v03 = ipam_addresses(
      json::parse(R"({"cniVersion":"0.3.1","ips":[{"version":"4","address":"10.77.0.7/24"}]})"));
  ASSERT_TRUE(v03);
  EXPECT_EQ(v03->ip->to_string(), "10.77.0.7/24");
  EXPECT_FALSE(v03->ip6);
  // IPv6 alone: every netcell attachment has an IPv4 address.
  EXPECT_FALSE(ipam_addresses(json::parse(R"({"ips":[{"address":"2001:db8::5/64"}]})")));
  EXPECT_FALSE(ipam_addresses(json::parse(R"({"cniVersion":"1.0.0","ips":[]})")));
  EXPECT_FALSE(ipam_addresses(json::parse(R"({"ips":[{"address":"nonsense"}]})")));
  EXPECT_FALSE(ipam_addresses(json::parse(R"([1])")));
}

TEST(CniConfigTest, ReadsAnEgressPolicy) {
  auto c = parse_config(R"({"cniVersion":"1.0.0","name":"n","type":"netcell",
      "egress":{"allow":["203.0.113.0/24:443/tcp"],"deny":["203.0.113.9"]}})",
                        Verb::kAdd);
  ASSERT_TRUE(c) << c.error().msg;
  ASSERT_TRUE(c->egress);
  EXPECT_EQ(c->egress->default_action, PolicyAction::kDeny);  // an allow list denies the rest
  ASSERT_EQ(c->egress->rules.size(), 2u);
  EXPECT_EQ(c->egress->rules[0].to_string(), "203.0.113.0/24:443/tcp");
  auto open = parse_config(R"({"cniVersion":"1.0.0","name":"n","type":"netcell",
      "egress":{"deny":["192.0.2.0/24"]}})",
                           Verb::kAdd);
  ASSERT_TRUE(open) << open.error().msg;
  EXPECT_EQ(open->egress->default_action, PolicyAction::kAllow);
  // Rules by domain name, told apart from address rules as `netcell create --allow` does.
  auto named = parse_config(R"({"cniVersion":"1.0.0","name":"n","type":"netcell",
      "egress":{"allow":["pypi.org:443/tcp","*.example.test","203.0.113.9"]}})",
                            Verb::kAdd);
  ASSERT_TRUE(named) << named.error().msg;
  ASSERT_EQ(named->egress->domains.size(), 2u);
  EXPECT_EQ(named->egress->domains[0].to_string(), "pypi.org:443/tcp");
  EXPECT_EQ(named->egress->domains[1].pattern.str(), "*.example.test");
  ASSERT_EQ(named->egress->rules.size(), 1u);
  for (const char* bad : {R"("-no-.test")", R"("*")", R"("203.0.113.0/40")", "7"}) {
    EXPECT_EQ(config_error(std::string(R"({"cniVersion":"1.0.0","name":"n","type":"netcell",
        "egress":{"allow":[)") +
                           bad + "]}}"),
              kInvalidConfig)
        << bad;
  }
  EXPECT_EQ(config_error(R"({"cniVersion":"1.0.0","name":"n","type":"netcell",
                             "egress":{"default":"maybe"}})"),
            kInvalidConfig);
  EXPECT_EQ(config_error(R"({"cniVersion":"1.0.0","name":"n","type":"netcell",
                             "egress":{"allowDomains":["pypi.org"]}})"),
            kUnsupportedField);
}

TEST(CniResultTest, ShapeFollowsTheVersion) {
  Attachment a;
  a.host_interface = "ncp3";
  a.ifname = "eth0";
  a.mac = "02:00:00:00:00:01";
  a.sandbox = "/run/netns/x";
  a.addresses = {*IpPrefix::parse("10.209.0.14/30")};
  a.gateway = *IpAddress::parse("10.209.0.13");
  auto v1 = make_result("1.0.0", std::nullopt, a, json());
  EXPECT_EQ(v1["cniVersion"], "1.0.0");
  ASSERT_EQ(v1["interfaces"].size(), 2u);
  EXPECT_EQ(v1["interfaces"][1]["sandbox"], "/run/netns/x");
  EXPECT_EQ(v1["ips"][0]["address"], "10.209.0.14/30");
  EXPECT_EQ(v1["ips"][0]["interface"], 1);
  EXPECT_FALSE(v1["ips"][0].contains("version"));
  EXPECT_EQ(v1["routes"][0]["dst"], "0.0.0.0/0");
  for (const char* old : {"0.3.0", "0.3.1", "0.4.0"}) {
    auto r = make_result(old, std::nullopt, a, json());
    EXPECT_EQ(r["cniVersion"], old);
    EXPECT_EQ(r["ips"][0]["version"], "4") << old;
  }
  // Chained after another plugin: its interfaces come first, indexes shift.
  json prev = json::parse(R"({"cniVersion":"0.4.0","interfaces":[{"name":"x0"}],
      "ips":[{"version":"4","address":"192.0.2.5/24","interface":0}],
      "dns":{"nameservers":["192.0.2.53"]}})");
  auto chained = make_result("1.1.0", prev, a, json());
  ASSERT_EQ(chained["interfaces"].size(), 3u);
  ASSERT_EQ(chained["ips"].size(), 2u);
  EXPECT_EQ(chained["ips"][1]["interface"], 2);
  EXPECT_FALSE(chained["ips"][0].contains("version"));
  EXPECT_EQ(chained["dns"]["nameservers"][0], "192.0.2.53");
}

TEST(CniResultTest, ErrorsAndVersion) {
  auto e = error_json("0.4.0", CniError{kInvalidConfig, "bad", "worse"});
  EXPECT_EQ(e, json::parse(R"({"cniVersion":"0.4.0","code":7,"msg":"bad","details":"worse"})"));
  EXPECT_EQ(error_json("9.9.9", CniError{kIncompatibleVersion, "x", ""})["cniVersion"], "1.1.0");
  auto v = version_json("1.0.0");
  EXPECT_EQ(v["cniVersion"], "1.0.0");
  EXPECT_EQ(v["supportedVersions"].size(), 5u);
}

TEST(CniNameTest, AttachmentNamesAreNamespaceNames) {
  std::string id(64, 'f');
  auto name = attachment_name("podman", id, "eth0");
  EXPECT_TRUE(NamespaceId::parse(name)) << name;
  EXPECT_EQ(name, attachment_name("podman", id, "eth0"));
  EXPECT_NE(name, attachment_name("podman", id, "eth1"));
  EXPECT_NE(name, attachment_name("other", id, "eth0"));
  EXPECT_TRUE(NamespaceId::parse(attachment_name("n", "a.b_c-d", "e")));
}

}  // namespace
}  // namespace netcell::cni
