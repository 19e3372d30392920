// The extension module netcell._netcell (binding.h says what each file binds).
#include "binding.h"

PYBIND11_MODULE(_netcell, m) {
  using namespace netcell::python;
  m.doc() = "netcell's C++ API (the extension behind the netcell package).";
  bind_errors(m);
  bind_policy(m);
  bind_configs(m);
  bind_results(m);
  bind_child(m);
  bind_topology(m);
  bind_manager(m);
}
