// Egress policies (policy.h): rules, domain rules, policies, counters, learned destinations.
#include "binding.h"

namespace netcell::python {

namespace {

// What address and domain rules share: parsing from the text form, action, protocol, ports.
template <typename Rule>
void bind_rule(py::class_<Rule>& cls, const char* init_doc) {
  cls.def(
         py::init([](const std::string& text, const py::object& action) {
           return unwrap(Rule::parse(unwrap(parse_policy_action(text_of(action, "action"))), text));
         }),
         py::arg("text"), py::arg("action") = "allow", init_doc)
      .def_property_readonly(
          "action", [](const Rule& r) { return py_enum("PolicyAction", to_string(r.action)); },
          "PolicyAction.ALLOW or PolicyAction.DENY.")
      .def_property_readonly(
          "protocol",
          [](const Rule& r) { return py_enum("PolicyProtocol", to_string(r.protocol)); },
          "A PolicyProtocol.")
      .def_property_readonly(
          "ports", [](const Rule& r) { return py_ports(r.ports); },
          "(first, last), inclusive, or None for every port.")
      .def("__str__", &Rule::to_string, "The normalised text form, without the action.");
}

void bind_egress_rule(py::module_& m) {
  py::class_<EgressRule> rule(
      m, "EgressRule",
      "An address rule: allow or deny DEST[:PORTS][/PROTO] (a CIDR, ports, tcp/udp/icmp/any).");
  bind_rule(rule,
            "Parses \"10.99.0.5:5432/tcp\", \"192.0.2.0/24/icmp\", ... as an allow or deny rule.");
  rule.def_property_readonly(
      "destination", [](const EgressRule& r) { return py_network(r.destination); },
      "An ipaddress network.");
  dataclass_like(rule, {"action", "destination", "protocol", "ports"});
}

void bind_domain_rule(py::module_& m) {
  py::class_<DomainRule> domain(
      m, "DomainRule",
      "A rule by domain name: what PATTERN[:PORTS][/PROTO] resolves to (\"pypi.org:443/tcp\", "
      "\"*.example.com\") may be reached; a deny rule makes the resolver refuse the name.");
  bind_rule(domain,
            "Parses \"pypi.org:443/tcp\", \"*.example.com\", ... as an allow or deny rule.");
  domain.def_property_readonly(
      "pattern", [](const DomainRule& r) { return r.pattern.str(); },
      "The normalised pattern (\"*.example.com\").");
  dataclass_like(domain, {"action", "pattern", "protocol", "ports"});
}

void bind_egress_policy(py::module_& m) {
  py::class_<EgressPolicy> policy(
      m, "EgressPolicy",
      "What a namespace may reach: a default (allow or deny) and unordered rules; deny beats "
      "allow. Entries are address rules or domain rules in their text forms.");
  policy
      .def(py::init([](const py::object& default_action, const py::iterable& allow,
                       const py::iterable& deny, const py::object& refuse_with,
                       std::uint32_t learn_min_ttl, std::uint32_t learn_grace) {
             EgressPolicy p;
             p.default_action =
                 unwrap(parse_policy_action(text_of(default_action, "default_action")));
             for (const auto& entry : allow) {
               unwrap(add_egress_entry(p, PolicyAction::kAllow, text_of(entry, "an entry")));
             }
             for (const auto& entry : deny) {
               unwrap(add_egress_entry(p, PolicyAction::kDeny, text_of(entry, "an entry")));
             }
             p.refuse_with = unwrap(parse_dns_refusal(text_of(refuse_with, "refuse_with")));
             p.learn_min_ttl = learn_min_ttl;
             p.learn_grace = learn_grace;
             unwrap(p.validate());
             return p;
           }),
           py::arg("default_action") = "allow", py::arg("allow") = py::tuple(),
           py::arg("deny") = py::tuple(), py::arg("refuse_with") = "refused",
           py::arg("learn_min_ttl") = kDefaultLearnMinTtl,
           py::arg("learn_grace") = kDefaultLearnGrace,
           "A policy: EgressPolicy(\"deny\", allow=[\"10.99.0.5:5432/tcp\", \"pypi.org:443\"]).")
      .def_static(
          "load", [](const std::string& path) { return unwrap(load_policy_file(path)); },
          py::arg("path"), "Reads a policy file (YAML or JSON, as `netcell policy set --file`).")
      .def_static(
          "parse",
          [](const std::string& text, const std::string& file) {
            return unwrap(parse_policy_file(text, file));
          },
          py::arg("text"), py::arg("file") = "<string>", "Parses a policy file's text.")
      .def(
          "allow",
          [](py::object self, const std::string& entry) {
            unwrap(add_egress_entry(self.cast<EgressPolicy&>(), PolicyAction::kAllow, entry));
            return self;
          },
          py::arg("entry"), "Adds an allow entry (address or domain rule); returns the policy.")
      .def(
          "deny",
          [](py::object self, const std::string& entry) {
            unwrap(add_egress_entry(self.cast<EgressPolicy&>(), PolicyAction::kDeny, entry));
            return self;
          },
          py::arg("entry"), "Adds a deny entry (address or domain rule); returns the policy.")
      .def_property(
          "default_action",
          [](const EgressPolicy& p) {
            return py_enum("PolicyAction", to_string(p.default_action));
          },
          [](EgressPolicy& p, const py::object& v) {
            p.default_action = unwrap(parse_policy_action(text_of(v, "default_action")));
          },
          "What a flow no rule matches gets: PolicyAction.ALLOW or PolicyAction.DENY.")
      .def_readwrite("rules", &EgressPolicy::rules, "The address rules (a copied list).")
      .def_readwrite("domains", &EgressPolicy::domains, "The domain rules (a copied list).")
      .def_property(
          "refuse_with",
          [](const EgressPolicy& p) { return py_enum("DnsRefusal", to_string(p.refuse_with)); },
          [](EgressPolicy& p, const py::object& v) {
            p.refuse_with = unwrap(parse_dns_refusal(text_of(v, "refuse_with")));
          },
          "How the resolver answers a name the policy does not allow.")
      .def_readwrite("learn_min_ttl", &EgressPolicy::learn_min_ttl,
                     "Seconds: the least TTL a learned address is kept for.")
      .def_readwrite("learn_grace", &EgressPolicy::learn_grace,
                     "Seconds a learned address is kept beyond its TTL.")
      .def("name_allowed", &EgressPolicy::name_allowed, py::arg("name"),
           "Whether netcell's resolver answers the name.")
      .def("learn_seconds", &EgressPolicy::learn_seconds, py::arg("ttl"),
           "Seconds an address from an answer with this TTL stays allowed.")
      .def(
          "validate", [](const EgressPolicy& p) { unwrap(p.validate()); },
          "Checks every rule and the count; raises InvalidArgumentError.");
  dataclass_like(policy, {"default_action", "rules", "domains", "refuse_with", "learn_min_ttl",
                          "learn_grace"});
}

void bind_policy_counter(py::module_& m) {
  py::class_<PolicyCounter> counter(m, "PolicyCounter",
                                    "What the kernel counted for one rule: packets and bytes.");
  counter.def_readonly("packets", &PolicyCounter::packets, "Packets decided on.")
      .def_readonly("bytes", &PolicyCounter::bytes, "Their bytes.");
  dataclass_like(counter, {"packets", "bytes"});
}

void bind_egress_counters(py::module_& m) {
  py::class_<EgressCounters> counters(m, "EgressCounters",
                                      "A policy's counters: per rule, per domain rule, default.");
  counters.def_readonly("rules", &EgressCounters::rules, "In the order of EgressPolicy.rules.")
      .def_readonly("domains", &EgressCounters::domains, "In the order of EgressPolicy.domains.")
      .def_readonly("by_default", &EgressCounters::by_default, "What no rule matched.");
  dataclass_like(counters, {"rules", "domains", "by_default"});
}

void bind_learned_destination(py::module_& m) {
  py::class_<LearnedDestination> learned(m, "LearnedDestination",
                                         "A destination netcell's resolver let a namespace reach.");
  learned
      .def_property_readonly(
          "address", [](const LearnedDestination& d) { return py_address(d.address); },
          "The address an answer held.")
      .def_property_readonly(
          "protocol",
          [](const LearnedDestination& d) {
            return py_enum("PolicyProtocol", to_string(d.protocol));
          },
          "A PolicyProtocol.")
      .def_property_readonly(
          "ports",
          [](const LearnedDestination& d) { return py::make_tuple(d.ports.first, d.ports.last); },
          "(first, last), inclusive.")
      .def_readonly("expires_unix_ms", &LearnedDestination::expires_unix_ms,
                    "When it stops being allowed.")
      .def_readonly("name", &LearnedDestination::name, "The last name that resolved to it.")
      .def_readonly("rules", &LearnedDestination::rules,
                    "Indexes in EgressPolicy.domains of the rules that allowed the name.");
  dataclass_like(learned, {"address", "protocol", "ports", "expires_unix_ms", "name", "rules"});
}

}  // namespace

void bind_policy(py::module_& m) {
  bind_egress_rule(m);
  bind_domain_rule(m);
  bind_egress_policy(m);
  bind_policy_counter(m);
  bind_egress_counters(m);
  bind_learned_destination(m);
  m.def(
      "parse_rate", [](const std::string& text) { return unwrap(parse_rate(text)); },
      py::arg("text"), "\"10mbit\", \"500kbit\", \"1gbit\", \"1000000\" -> bits per second.");
  m.def("format_rate", &format_rate, py::arg("bits_per_second"),
        "The shortest exact form: 2500000 -> \"2.5mbit\".");
}

}  // namespace netcell::python
