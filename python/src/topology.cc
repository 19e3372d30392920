// Topologies (topology.h): loading and parsing files, the steps of up and down.
#include "binding.h"

namespace netcell::python {

namespace {

// The names of a topology's namespaces or networks, in file order.
template <typename Declared>
std::vector<std::string> names_of(const std::vector<Declared>& declared) {
  std::vector<std::string> out;
  for (const auto& item : declared) out.push_back(item.config.name);
  return out;
}

// The topology of a parse, else its issues raised as a TopologyError.
Topology checked(TopologyParse parse) {
  if (!parse.topology) throw TopologyException{std::move(parse.errors)};
  return std::move(*parse.topology);
}

void bind_topology_issue(py::module_& m) {
  py::class_<TopologyError> issue(m, "TopologyIssue",
                                  "One problem in a topology file (TopologyError.issues).");
  issue.def_readonly("file", &TopologyError::file, "The file.")
      .def_readonly("line", &TopologyError::line, "1-based; 0 when unknown.")
      .def_readonly("field", &TopologyError::field, "The field at fault.")
      .def_readonly("message", &TopologyError::message, "What is wrong.")
      .def("__str__", &TopologyError::to_string, "\"FILE:LINE: FIELD: MESSAGE\".");
  dataclass_like(issue, {"file", "line", "field", "message"});
}

void bind_topology_class(py::module_& m) {
  py::class_<Topology>(m, "Topology",
                       "Namespaces, networks and links declared together (netcell-topology(5)): "
                       "load or parse one, then NamespaceManager.up() / down().")
      .def_static(
          "load", [](const std::string& path) { return checked(load_topology(path)); },
          py::arg("path"), "Reads and validates a topology file; TopologyError lists every issue.")
      .def_static(
          "parse",
          [](const std::string& text, const std::string& file) {
            return checked(parse_topology(text, file));
          },
          py::arg("text"), py::arg("file") = "<string>", "Parses a topology file's YAML text.")
      .def_static(
          "from_dict",
          [](const py::dict& declaration, const std::string& file) {
            // JSON is YAML: the dict's JSON form is a topology file.
            std::string text =
                py::module_::import("json").attr("dumps")(declaration).cast<std::string>();
            return checked(parse_topology(text, file));
          },
          py::arg("declaration"), py::arg("name") = "<dict>",
          "A topology from a dict shaped like the file ({\"name\": ..., \"namespaces\": {...}}).")
      .def_readonly("name", &Topology::name, "The file's name:, else the file name.")
      .def_readonly("source", &Topology::source, "The file it came from.")
      .def_property_readonly(
          "namespaces", [](const Topology& t) { return names_of(t.namespaces); },
          "The namespaces' names, in file order.")
      .def_property_readonly(
          "networks", [](const Topology& t) { return names_of(t.networks); },
          "The networks' names.")
      .def_property_readonly(
          "links",
          [](const Topology& t) {
            std::vector<std::string> out;
            for (const auto& l : t.links) {
              out.push_back(l.a.ns + ":" + l.a.device + "-" + l.b.ns + ":" + l.b.device);
            }
            return out;
          },
          "The links, as \"a:eth1-b:eth1\".")
      .def(
          "config",
          [](const Topology& t, const std::string& name) {
            for (const auto& ns : t.namespaces) {
              if (ns.config.name == name) return ns.config;
            }
            raise(Error(ErrorCode::kNotFound,
                        "topology '" + t.name + "' declares no namespace '" + name + "'"));
          },
          py::arg("name"), "The NamespaceConfig a namespace of it is made from (a copy).")
      .def(
          "__repr__",
          [](const Topology& t) {
            return "<Topology " + py::repr(py::str(t.name)).cast<std::string>() + ": " +
                   std::to_string(t.namespaces.size()) + " namespaces, " +
                   std::to_string(t.networks.size()) + " networks, " +
                   std::to_string(t.links.size()) + " links>";
          },
          "Its name and size.");
}

void bind_topology_step(py::module_& m) {
  py::class_<TopologyStep> step(m, "TopologyStep", "One step of up() or down().");
  step.def_readonly("action", &TopologyStep::action, "\"create\", \"keep\", \"remove\", ...")
      .def_readonly("kind", &TopologyStep::kind, "\"network\", \"namespace\", \"link\", ...")
      .def_readonly("object", &TopologyStep::object, "Its name (\"a\", \"a:eth1-b:eth1\").")
      .def_readonly("detail", &TopologyStep::detail, "More about it.");
  dataclass_like(step, {"action", "kind", "object", "detail"});
}

void bind_topology_report(py::module_& m) {
  py::class_<TopologyReport> report(m, "TopologyReport", "What up() or down() did (or plans).");
  report.def_readonly("steps", &TopologyReport::steps, "A list of TopologyStep.")
      .def_readonly("changed", &TopologyReport::changed, "Steps that changed something.");
  dataclass_like(report, {"steps", "changed"});
}

}  // namespace

void bind_topology(py::module_& m) {
  bind_topology_issue(m);
  bind_topology_class(m);
  bind_topology_step(m);
  bind_topology_report(m);
}

}  // namespace netcell::python
