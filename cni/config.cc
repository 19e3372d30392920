// The CNI protocol's input: versions, the CNI_* environment, CNI_ARGS and the configuration.
#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstdio>

#include "cni.h"

namespace netcell::cni {
namespace {

std::array<int, 3> version_parts(std::string_view v) {
  std::array<int, 3> parts{};
  for (int& part : parts) {
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), part);
    if (ec != std::errc()) return {};
    v.remove_prefix(static_cast<std::size_t>(end - v.data()));
    if (!v.empty() && v.front() == '.') v.remove_prefix(1);
  }
  return parts;
}

// The spec's rule for network names: an alphanumeric first, then [A-Za-z0-9_.-].
bool valid_network_name(const std::string& name) {
  auto alnum = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; };
  if (name.empty() || !alnum(name.front())) return false;
  return std::all_of(name.begin(), name.end(),
                     [&](char c) { return alnum(c) || c == '_' || c == '.' || c == '-'; });
}

CniResult<const json*> member(const json& j, const char* key, json::value_t type) {
  auto it = j.find(key);
  if (it == j.end()) return nullptr;
  bool matches = it->type() == type || (type == json::value_t::number_unsigned &&
                                        it->is_number_integer() && it->get<std::int64_t>() >= 0);
  if (!matches) {
    return cni_fail(kInvalidConfig, std::string("field '") + key + "' has the wrong type");
  }
  return &*it;
}

CniResult<IpAddress> address(const json& j, const std::string& what) {
  if (!j.is_string()) return cni_fail(kInvalidConfig, what + " is not a string");
  auto a = IpAddress::parse(j.get<std::string>());
  if (!a) return cni_fail(kInvalidConfig, what + ": " + a.error().message());
  return *a;
}

// "10.1.2.3/24" or a bare "10.1.2.3" (podman sends bare addresses in runtimeConfig.ips).
CniResult<IpPrefix> prefix_or_address(const json& j, const std::string& what) {
  if (!j.is_string()) return cni_fail(kInvalidConfig, what + " is not a string");
  std::string text = j.get<std::string>();
  if (text.find('/') == std::string::npos) {
    auto a = address(j, what);
    if (!a) return tl::unexpected(a.error());
    return IpPrefix{*a, 0};
  }
  auto p = IpPrefix::parse(text);
  if (!p) return cni_fail(kInvalidConfig, what + ": " + p.error().message());
  return *p;
}

CniResult<std::vector<PortForward>> port_mappings(const json& list) {
  if (!list.is_array()) return cni_fail(kInvalidConfig, "portMappings is not a list");
  std::vector<PortForward> out;
  for (const auto& m : list) {
    if (!m.is_object()) return cni_fail(kInvalidConfig, "a port mapping is not an object");
    PortForward f;
    for (auto [key, port] :
         {std::pair{"hostPort", &f.host_port}, std::pair{"containerPort", &f.container_port}}) {
      auto it = m.find(key);
      if (it == m.end() || !it->is_number_integer() || it->get<std::int64_t>() < 1 ||
          it->get<std::int64_t>() > 65535) {
        return cni_fail(kInvalidConfig, std::string("a port mapping's ") + key +
                                            " is not a port number (1..65535)");
      }
      *port = static_cast<std::uint16_t>(it->get<std::int64_t>());
    }
    if (auto it = m.find("protocol"); it != m.end()) {
      if (!it->is_string()) return cni_fail(kInvalidConfig, "a port mapping's protocol");
      std::string proto = it->get<std::string>();
      std::transform(proto.begin(), proto.end(), proto.begin(), ::tolower);
      auto parsed = parse_protocol(proto);
      if (!parsed) return cni_fail(kInvalidConfig, "port mapping: " + parsed.error().message());
      f.protocol = *parsed;
    }
    if (auto it = m.find("hostIP"); it != m.end() && !(it->is_string() && it->empty())) {
      auto a = address(*it, "a port mapping's hostIP");
      if (!a) return tl::unexpected(a.error());
      f.host_ip = *a;
    }
    out.push_back(f);
  }
  return out;
}

// runtimeConfig.bandwidth (the bandwidth plugin's convention): rates in bits per second.
CniResult<RateLimit> bandwidth(const json& b) {
  if (!b.is_object()) return cni_fail(kInvalidConfig, "bandwidth is not an object");
  RateLimit rate;
  for (auto [key, out] :
       {std::pair{"ingressRate", &rate.ingress_bps}, std::pair{"egressRate", &rate.egress_bps}}) {
    auto it = b.find(key);
    if (it == b.end()) continue;
    if (!it->is_number_integer() || it->get<std::int64_t>() < 0) {
      return cni_fail(kInvalidConfig, std::string("bandwidth ") + key + " is not a rate");
    }
    if (it->get<std::int64_t>() == 0) continue;  // 0: unlimited
    *out = it->get<std::uint64_t>();
    if (auto valid = validate_rate(**out); !valid) {
      return cni_fail(kInvalidConfig,
                      std::string("bandwidth ") + key + ": " + valid.error().message());
    }
  }
  return rate;
}

CniResult<void> read_ips(const json& list, PluginConfig& config) {
  if (!list.is_array()) return cni_fail(kInvalidConfig, "ips is not a list");
  for (const auto& ip : list) {
    auto p = prefix_or_address(ip, "ips");
    if (!p) return tl::unexpected(p.error());
    config.ips.push_back(*p);
  }
  return {};
}

CniResult<void> read_mac(const json& mac, PluginConfig& config) {
  if (!mac.is_string()) return cni_fail(kInvalidConfig, "mac is not a string");
  if (auto parsed = parse_mac(mac.get<std::string>()); !parsed) {
    return cni_fail(kInvalidConfig, parsed.error().message());
  }
  config.mac = mac.get<std::string>();
  return {};
}

// runtimeConfig.dns (the dns capability: {"servers", "searches", "options"}, each a list of
// strings) is what the runtime wants for this container: the result's dns, in place of the
// configuration's.
CniResult<void> read_runtime_dns(const json& dns, PluginConfig& config) {
  if (!dns.is_object()) return cni_fail(kInvalidConfig, "runtimeConfig.dns is not an object");
  json result = json::object();
  std::vector<IpAddress> servers;
  for (auto [key, out] : {std::pair{"servers", "nameservers"}, std::pair{"searches", "search"},
                          std::pair{"options", "options"}}) {
    auto list = member(dns, key, json::value_t::array);
    if (!list) return tl::unexpected(list.error());
    if (*list == nullptr) continue;
    for (const auto& item : **list) {
      if (!item.is_string() || item.get<std::string>().empty() ||
          item.get<std::string>().size() > 255) {
        return cni_fail(kInvalidConfig, std::string("runtimeConfig.dns.") + key +
                                            " holds something that is not a name");
      }
      if (std::string_view(key) == "servers") {
        auto a = address(item, "runtimeConfig.dns server");
        if (!a) return tl::unexpected(a.error());
        servers.push_back(*a);
      }
    }
    if (!(*list)->empty()) result[out] = **list;
  }
  config.dns = std::move(servers);
  config.dns_json = std::move(result);
  return {};
}

// runtimeConfig (what the runtime fills in for declared capabilities) and args.cni (the
// CONVENTIONS.md form of the same).
CniResult<void> read_runtime(const json& j, PluginConfig& config) {
  auto runtime = member(j, "runtimeConfig", json::value_t::object);
  if (!runtime) return tl::unexpected(runtime.error());
  if (*runtime != nullptr) {
    const json& rc = **runtime;
    if (auto it = rc.find("portMappings"); it != rc.end()) {
      auto mappings = port_mappings(*it);
      if (!mappings) return tl::unexpected(mappings.error());
      config.port_mappings = std::move(*mappings);
    }
    if (auto it = rc.find("bandwidth"); it != rc.end()) {
      auto rate = bandwidth(*it);
      if (!rate) return tl::unexpected(rate.error());
      config.rate = *rate;
    }
    if (auto it = rc.find("ips"); it != rc.end()) {
      if (auto read = read_ips(*it, config); !read) return read;
    }
    if (auto it = rc.find("mac"); it != rc.end()) {
      if (auto read = read_mac(*it, config); !read) return read;
    }
    if (auto it = rc.find("dns"); it != rc.end()) {
      if (auto read = read_runtime_dns(*it, config); !read) return read;
    }
  }
  auto args = member(j, "args", json::value_t::object);
  if (!args) return tl::unexpected(args.error());
  if (*args != nullptr) {
    auto cni = (*args)->find("cni");
    if (cni != (*args)->end() && cni->is_object()) {
      if (auto it = cni->find("ips"); it != cni->end() && config.ips.empty()) {
        if (auto read = read_ips(*it, config); !read) return read;
      }
      if (auto it = cni->find("mac"); it != cni->end() && config.mac.empty()) {
        if (auto read = read_mac(*it, config); !read) return read;
      }
    }
  }
  return {};
}

// "ipam": {"type": PLUGIN, ...}: a delegated IPAM plugin (host-local, static, ...) that netcell
// runs from CNI_PATH (ipam.cc). Its name is a file name, nothing that walks out of CNI_PATH.
CniResult<void> read_ipam(const json& ipam, PluginConfig& config) {
  if (!ipam.is_object()) return cni_fail(kInvalidConfig, "ipam is not an object");
  auto type = member(ipam, "type", json::value_t::string);
  if (!type) return tl::unexpected(type.error());
  if (*type == nullptr) return cni_fail(kInvalidConfig, "ipam has no 'type' field");
  std::string name = (*type)->get<std::string>();
  const bool plain = !name.empty() && name.size() <= 255 && name != "." && name != ".." &&
                     std::all_of(name.begin(), name.end(), [](unsigned char c) {
                       return std::isalnum(c) != 0 || c == '-' || c == '_' || c == '.';
                     });
  if (!plain) return cni_fail(kInvalidConfig, "invalid ipam plugin name '" + name + "'");
  config.ipam_type = std::move(name);
  return {};
}

CniResult<void> read_netcell_fields(const json& j, PluginConfig& config) {
  auto mode = member(j, "mode", json::value_t::string);
  if (!mode) return tl::unexpected(mode.error());
  if (*mode != nullptr) {
    std::string text = (*mode)->get<std::string>();
    if (text == "private") {
      config.mode = IsolationMode::kPrivate;
    } else if (text == "bridged") {
      config.mode = IsolationMode::kBridged;
    } else {
      return cni_fail(kInvalidConfig, "unknown mode '" + text + "' (expected private or bridged)");
    }
  }
  for (auto [key, out] :
       {std::pair{"network", &config.network}, std::pair{"runDir", &config.run_dir}}) {
    auto value = member(j, key, json::value_t::string);
    if (!value) return tl::unexpected(value.error());
    if (*value != nullptr) *out = (*value)->get<std::string>();
  }
  if (!config.run_dir.empty() && config.run_dir.front() != '/') {
    return cni_fail(kInvalidConfig, "runDir must be an absolute path");
  }
  if (config.mode == IsolationMode::kBridged && config.network.empty()) {
    config.network = config.name;
  }
  if (config.mode == IsolationMode::kPrivate && !config.network.empty()) {
    return cni_fail(kInvalidConfig, "private mode takes no network (use mode bridged)");
  }
  if (config.mode == IsolationMode::kBridged) {
    if (auto id = NamespaceId::parse(config.network); !id) {
      return cni_fail(kInvalidConfig, "invalid network '" + config.network + "'");
    }
  }
  // Bridged: the network's prefix of each family, each in its own key.
  for (auto [key, out, v4] : {std::tuple{"subnet", &config.subnet, true},
                              std::tuple{"subnet6", &config.subnet6, false}}) {
    auto value = member(j, key, json::value_t::string);
    if (!value) return tl::unexpected(value.error());
    if (*value == nullptr) continue;
    const std::string name = key;
    if (config.mode != IsolationMode::kBridged) {
      return cni_fail(kInvalidConfig,
                      "a " + name + " is for mode bridged (private mode has a pool)");
    }
    auto p = IpPrefix::parse((*value)->get<std::string>());
    if (!p) return cni_fail(kInvalidConfig, name + ": " + p.error().message());
    if (p->address.is_v4() != v4) {
      return cni_fail(kInvalidConfig, name + " " + p->to_string() +
                                          (v4 ? " is an IPv6 prefix (give it as subnet6)"
                                              : " is not an IPv6 prefix"));
    }
    *out = *p;
  }
  for (auto [key, out] : {std::pair{"ipMasq", &config.nat}, std::pair{"nat", &config.nat},
                          std::pair{"hostAccess", &config.host_access}}) {
    auto value = member(j, key, json::value_t::boolean);
    if (!value) return tl::unexpected(value.error());
    if (*value != nullptr) *out = (*value)->get<bool>();
  }
  auto mtu = member(j, "mtu", json::value_t::number_unsigned);
  if (!mtu) return tl::unexpected(mtu.error());
  if (*mtu != nullptr) {
    auto value = (*mtu)->get<std::uint64_t>();
    if (value < 68 || value > 65535) {
      return cni_fail(kInvalidConfig, "mtu " + std::to_string(value) + " is not in 68..65535");
    }
    config.mtu = static_cast<std::uint32_t>(value);
  }
  if (auto ipam = j.find("ipam"); ipam != j.end() && !(ipam->is_object() && ipam->empty())) {
    if (auto read = read_ipam(*ipam, config); !read) return read;
  }
  auto timeout = member(j, "ipamTimeout", json::value_t::number_unsigned);
  if (!timeout) return tl::unexpected(timeout.error());
  if (*timeout != nullptr) {
    auto value = (*timeout)->get<std::uint64_t>();
    if (value < 1 || value > kMaxIpamTimeoutS) {
      return cni_fail(kInvalidConfig, "ipamTimeout " + std::to_string(value) + " is not in 1.." +
                                          std::to_string(kMaxIpamTimeoutS) + " (seconds)");
    }
    config.ipam_timeout_s = static_cast<std::uint32_t>(value);
  }
  return {};
}

// "egress": {"default": "allow"|"deny", "allow": [RULE...], "deny": [RULE...]}, each RULE an
// address rule as `netcell create --allow` takes it (ADDRESS[/LEN][:PORTS][/PROTO]). Without a
// default, an allow list makes it deny. A rule may name a domain (PATTERN[:PORTS][/PROTO]): the
// container then resolves through netcell's resolver at its gateway (the result's dns says so).
CniResult<void> read_egress(const json& j, PluginConfig& config) {
  auto egress = member(j, "egress", json::value_t::object);
  if (!egress) return tl::unexpected(egress.error());
  if (*egress == nullptr) return {};
  const json& e = **egress;
  for (const auto& [key, value] : e.items()) {
    if (key != "default" && key != "allow" && key != "deny") {
      return cni_fail(kUnsupportedField, "egress." + key +
                                             " is not supported (default, allow, "
                                             "deny: address rules)");
    }
  }
  EgressPolicy policy;
  policy.default_action = e.contains("allow") ? PolicyAction::kDeny : PolicyAction::kAllow;
  if (auto it = e.find("default"); it != e.end()) {
    auto action =
        it->is_string() ? parse_policy_action(it->get<std::string>()) : parse_policy_action("");
    if (!action) return cni_fail(kInvalidConfig, "egress.default: " + action.error().message());
    policy.default_action = *action;
  }
  for (auto [key, action] :
       {std::pair{"allow", PolicyAction::kAllow}, std::pair{"deny", PolicyAction::kDeny}}) {
    auto it = e.find(key);
    if (it == e.end()) continue;
    if (!it->is_array()) return cni_fail(kInvalidConfig, std::string("egress.") + key);
    for (const auto& text : *it) {
      // An address rule or a rule by domain name, as `netcell create --allow` tells them apart.
      auto added =
          add_egress_entry(policy, action, text.is_string() ? text.get<std::string>() : "");
      if (!added) {
        return cni_fail(kInvalidConfig,
                        std::string("egress.") + key + ": " + added.error().message());
      }
    }
  }
  if (auto valid = policy.validate(); !valid) {
    return cni_fail(kInvalidConfig, "egress: " + valid.error().message());
  }
  config.egress = std::move(policy);
  return {};
}

CniResult<void> read_dns(const json& j, PluginConfig& config) {
  auto dns = member(j, "dns", json::value_t::object);
  if (!dns) return tl::unexpected(dns.error());
  if (*dns == nullptr) return {};
  config.dns_json = **dns;
  auto servers = member(**dns, "nameservers", json::value_t::array);
  if (!servers) return tl::unexpected(servers.error());
  if (*servers == nullptr) return {};
  for (const auto& s : **servers) {
    auto a = address(s, "dns nameserver");
    if (!a) return tl::unexpected(a.error());
    config.dns.push_back(*a);
  }
  return {};
}

CniResult<void> read_valid_attachments(const json& j, PluginConfig& config) {
  auto it = j.find("cni.dev/valid-attachments");
  if (it == j.end()) {
    return cni_fail(kInvalidConfig, "GC needs cni.dev/valid-attachments");
  }
  if (!it->is_array()) {
    return cni_fail(kInvalidConfig, "cni.dev/valid-attachments is not a list");
  }
  std::vector<std::pair<std::string, std::string>> valid;
  for (const auto& a : *it) {
    auto id = a.is_object() ? a.find("containerID") : a.end();
    auto ifname = a.is_object() ? a.find("ifname") : a.end();
    if (!a.is_object() || id == a.end() || !id->is_string() || ifname == a.end() ||
        !ifname->is_string()) {
      return cni_fail(kInvalidConfig,
                      "each of cni.dev/valid-attachments needs containerID and ifname");
    }
    valid.emplace_back(id->get<std::string>(), ifname->get<std::string>());
  }
  config.valid_attachments = std::move(valid);
  return {};
}

bool is_truthy(std::string_view v) {
  return v == "1" || v == "true" || v == "True";
}

}  // namespace

bool version_supported(std::string_view version) {
  return std::find(kSupportedVersions.begin(), kSupportedVersions.end(), version) !=
         kSupportedVersions.end();
}

bool version_less(std::string_view a, std::string_view b) {
  return version_parts(a) < version_parts(b);
}

std::optional<Verb> parse_verb(std::string_view text) {
  if (text == "ADD") return Verb::kAdd;
  if (text == "DEL") return Verb::kDel;
  if (text == "CHECK") return Verb::kCheck;
  if (text == "STATUS") return Verb::kStatus;
  if (text == "GC") return Verb::kGc;
  if (text == "VERSION") return Verb::kVersion;
  return std::nullopt;
}

CniResult<Environment> parse_environment(const char* (*get)(const char*)) {
  Environment env;
  const char* command = get("CNI_COMMAND");
  if (command == nullptr || *command == '\0') {
    return cni_fail(kInvalidEnvironment, "CNI_COMMAND is not set");
  }
  auto verb = parse_verb(command);
  if (!verb) return cni_fail(kInvalidEnvironment, std::string("unknown CNI_COMMAND ") + command);
  env.verb = *verb;
  if (env.verb == Verb::kVersion) return env;
  bool add_or_check = env.verb == Verb::kAdd || env.verb == Verb::kCheck;
  bool per_container = add_or_check || env.verb == Verb::kDel;
  struct Var {
    const char* name;
    std::string* out;
    bool required;
  };
  for (const Var& v :
       {Var{"CNI_CONTAINERID", &env.container_id, per_container},
        Var{"CNI_NETNS", &env.netns, add_or_check}, Var{"CNI_IFNAME", &env.ifname, per_container},
        Var{"CNI_PATH", &env.path, true}, Var{"CNI_ARGS", &env.args, false}}) {
    const char* value = get(v.name);
    if (value != nullptr) *v.out = value;
    if (v.required && v.out->empty()) {
      return cni_fail(kInvalidEnvironment, std::string(v.name) + " is not set");
    }
  }
  if (per_container) {
    auto alnum = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; };
    if (!std::all_of(env.container_id.begin(), env.container_id.end(),
                     [&](char c) { return alnum(c) || c == '_' || c == '.' || c == '-'; })) {
      return cni_fail(kInvalidEnvironment,
                      "CNI_CONTAINERID may hold only letters, digits, '_', '.' and '-'");
    }
    if (auto valid = validate_interface_name(env.ifname); !valid) {
      return cni_fail(kInvalidEnvironment, "CNI_IFNAME: " + valid.error().message());
    }
  }
  if (add_or_check && env.netns.front() != '/') {
    return cni_fail(kInvalidEnvironment, "CNI_NETNS is not an absolute path");
  }
  return env;
}

CniResult<CniArgs> parse_cni_args(std::string_view text) {
  CniArgs out;
  bool ignore_unknown = false;
  std::vector<std::string> unknown;
  while (!text.empty()) {
    auto end = text.find(';');
    std::string_view pair = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
    if (pair.empty()) continue;
    auto eq = pair.find('=');
    if (eq == std::string_view::npos) {
      return cni_fail(kInvalidEnvironment,
                      "CNI_ARGS: '" + std::string(pair) + "' is not KEY=VALUE");
    }
    std::string_view key = pair.substr(0, eq), value = pair.substr(eq + 1);
    if (key == "IgnoreUnknown") {
      ignore_unknown = is_truthy(value);
    } else if (key == "IP") {
      auto a = IpAddress::parse(value);
      if (!a) return cni_fail(kInvalidEnvironment, "CNI_ARGS IP: " + a.error().message());
      out.ip = *a;
    } else if (key == "MAC") {
      auto mac = parse_mac(value);
      if (!mac) return cni_fail(kInvalidEnvironment, "CNI_ARGS MAC: " + mac.error().message());
      out.mac = std::string(value);
    } else if (key.rfind("K8S_POD_", 0) != 0) {
      unknown.emplace_back(key);
    }
  }
  if (!unknown.empty() && !ignore_unknown) {
    return cni_fail(kInvalidEnvironment, "CNI_ARGS: unknown key " + unknown.front() +
                                             " (give IgnoreUnknown=1 to ignore it)");
  }
  return out;
}

CniResult<PluginConfig> parse_config(std::string_view text, Verb verb) {
  if (text.size() > kMaxConfigBytes) {
    return cni_fail(kDecodeFailure, "the configuration is longer than " +
                                        std::to_string(kMaxConfigBytes) + " bytes");
  }
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return cni_fail(kDecodeFailure, "the configuration is not valid JSON");
  if (!j.is_object()) return cni_fail(kDecodeFailure, "the configuration is not a JSON object");
  PluginConfig config;
  auto version = member(j, "cniVersion", json::value_t::string);
  if (!version) return cni_fail(kDecodeFailure, "cniVersion is not a string");
  // No cniVersion: 0.1.0, which this plugin does not speak.
  config.cni_version = *version != nullptr ? (*version)->get<std::string>() : "0.1.0";
  if (verb == Verb::kVersion) return config;
  if (!version_supported(config.cni_version)) {
    return cni_fail(kIncompatibleVersion, "CNI version " + config.cni_version + " is not supported",
                    "netcell-cni supports 0.3.0, 0.3.1, 0.4.0, 1.0.0 and 1.1.0");
  }
  if (verb == Verb::kCheck && version_less(config.cni_version, "0.4.0")) {
    return cni_fail(kIncompatibleVersion, "config version does not allow CHECK");
  }
  if ((verb == Verb::kStatus || verb == Verb::kGc) && version_less(config.cni_version, "1.1.0")) {
    return cni_fail(kIncompatibleVersion, "config version does not allow STATUS or GC");
  }
  for (auto [key, out] :
       {std::pair{"name", &config.name}, std::pair<const char*, std::string*>{"type", nullptr}}) {
    auto value = member(j, key, json::value_t::string);
    if (!value) return tl::unexpected(value.error());
    if (*value == nullptr) return cni_fail(kInvalidConfig, std::string("no '") + key + "' field");
    if (out != nullptr) *out = (*value)->get<std::string>();
  }
  if (!valid_network_name(config.name)) {
    return cni_fail(kInvalidConfig, "invalid network name '" + config.name + "'");
  }
  if (auto read = read_netcell_fields(j, config); !read) return tl::unexpected(read.error());
  if (auto read = read_dns(j, config); !read) return tl::unexpected(read.error());
  if (auto read = read_egress(j, config); !read) return tl::unexpected(read.error());
  if (auto read = read_runtime(j, config); !read) return tl::unexpected(read.error());
  if (auto prev = j.find("prevResult"); prev != j.end() && !prev->is_null()) {
    if (!prev->is_object()) return cni_fail(kInvalidConfig, "prevResult is not an object");
    config.prev_result = *prev;
  }
  if (verb == Verb::kGc) {
    if (auto read = read_valid_attachments(j, config); !read) return tl::unexpected(read.error());
  }
  if (!config.ipam_type.empty()) {
    if (config.mode != IsolationMode::kBridged) {
      return cni_fail(kInvalidConfig,
                      "a delegated ipam plugin needs mode bridged: a private attachment's "
                      "address is one end of a point-to-point block of netcell's pool");
    }
    if (!config.ips.empty()) {
      return cni_fail(kInvalidConfig,
                      "with a delegated ipam plugin, ips are the ipam plugin's to honour");
    }
    config.text = std::string(text);  // what the ipam plugin is given
  }
  return config;
}

std::string attachment_name(const std::string& network, const std::string& container_id,
                            const std::string& ifname) {
  // FNV-1a over the three names, NUL-separated.
  std::uint64_t hash = 14695981039346656037ull;
  for (const std::string* part : {&network, &container_id, &ifname}) {
    for (unsigned char c : *part + '\0') {
      hash ^= c;
      hash *= 1099511628211ull;
    }
  }
  std::string prefix = container_id.substr(0, 12);
  for (char& c : prefix) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') c = '_';
  }
  char digest[17];
  std::snprintf(digest, sizeof digest, "%016llx", static_cast<unsigned long long>(hash));
  return "cni-" + prefix + "-" + digest;
}

}  // namespace netcell::cni
