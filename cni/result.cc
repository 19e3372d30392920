// The CNI protocol's output: results (in the configuration's version), errors, VERSION.
#include "cni.h"

namespace netcell::cni {
namespace {

json array_of(const std::optional<json>& prev, const char* key) {
  if (!prev) return json::array();
  auto it = prev->find(key);
  if (it == prev->end() || !it->is_array()) return json::array();
  return *it;
}

}  // namespace

json make_result(const std::string& version, const std::optional<json>& prev_result,
                 const Attachment& attachment, const json& dns) {
  json interfaces = array_of(prev_result, "interfaces");
  json ips = array_of(prev_result, "ips");
  json routes = array_of(prev_result, "routes");
  const std::size_t host_index = interfaces.size();
  interfaces.push_back(json{{"name", attachment.host_interface}});
  json inside{{"name", attachment.ifname}, {"sandbox", attachment.sandbox}};
  if (!attachment.mac.empty()) inside["mac"] = attachment.mac;
  interfaces.push_back(inside);
  for (const auto& address : attachment.addresses) {
    json ip{{"address", address.to_string()}, {"interface", host_index + 1}};
    const auto& gateway = address.address.is_v4() ? attachment.gateway : attachment.gateway6;
    if (gateway) ip["gateway"] = gateway->to_string();
    ips.push_back(ip);
  }
  for (const auto& gateway : {attachment.gateway, attachment.gateway6}) {
    if (!gateway) continue;
    routes.push_back(
        json{{"dst", gateway->is_v4() ? "0.0.0.0/0" : "::/0"}, {"gw", gateway->to_string()}});
  }
  // Before 1.0.0 every IP names its family ("4" or "6"); from 1.0.0 on it must not.
  const bool with_family = version_less(version, "1.0.0");
  for (auto& ip : ips) {
    if (!ip.is_object()) continue;
    if (with_family) {
      if (!ip.contains("version")) {
        std::string text = ip.value("address", "");
        ip["version"] = text.find(':') != std::string::npos ? "6" : "4";
      }
    } else {
      ip.erase("version");
    }
  }
  json result{{"cniVersion", version}, {"interfaces", interfaces}, {"ips", ips}};
  if (!routes.empty()) result["routes"] = routes;
  json out_dns = dns;
  if (out_dns.is_null() && prev_result) out_dns = prev_result->value("dns", json());
  result["dns"] = out_dns.is_object() ? out_dns : json::object();
  return result;
}

json error_json(const std::string& version, const CniError& error) {
  json j{{"cniVersion", version_supported(version) ? version : kSupportedVersions.back()},
         {"code", error.code},
         {"msg", error.msg}};
  if (!error.details.empty()) j["details"] = error.details;
  return j;
}

json version_json(const std::string& requested) {
  return json{{"cniVersion", version_supported(requested) ? requested : kSupportedVersions.back()},
              {"supportedVersions", kSupportedVersions}};
}

}  // namespace netcell::cni

namespace netcell::cni {

CniResult<IpamAddresses> ipam_addresses(const json& result) {
  if (!result.is_object()) return cni_fail(kInternal, "the ipam plugin's result is not an object");
  IpamAddresses out;
  auto ips = result.find("ips");
  if (ips != result.end() && ips->is_array()) {
    for (const auto& ip : *ips) {
      if (!ip.is_object() || !ip.contains("address") || !ip["address"].is_string()) continue;
      auto prefix = IpPrefix::parse(ip["address"].get<std::string>());
      if (!prefix) continue;
      auto& slot = prefix->address.is_v4() ? out.ip : out.ip6;
      if (!slot) slot = *prefix;  // the first of each family (one of each per attachment)
    }
  }
  if (!out.ip) {
    return cni_fail(kInternal, "the ipam plugin's result has no IPv4 address", result.dump());
  }
  return out;
}

}  // namespace netcell::cni
