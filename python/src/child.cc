// Child: a process run inside a namespace (child.h), waited for with the GIL released.
#include <poll.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "binding.h"

namespace netcell::python {

std::optional<int> PyChild::wait_for(std::optional<double> timeout) {
  if (returncode) return returncode;
  Child& c = live();
  auto deadline = std::chrono::steady_clock::now();
  if (timeout) {
    if (std::isnan(*timeout)) throw py::value_error("timeout is NaN");
    deadline += std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(std::max(0.0, std::min(*timeout, 1e9))));
  }
  for (;;) {
    int slice = 100;
    if (timeout) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                      deadline - std::chrono::steady_clock::now())
                      .count();
      slice = static_cast<int>(std::clamp<long long>(left, 0, 100));
    }
    int ready;
    {
      py::gil_scoped_release release;
      pollfd fd{c.pidfd(), POLLIN, 0};
      ready = ::poll(&fd, 1, slice);
    }
    if (ready < 0 && errno != EINTR) raise(Error::from_errno("poll pidfd", errno));
    if (ready > 0) {
      py::gil_scoped_release release;
      returncode = unwrap(c.wait());
      return returncode;
    }
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
    if (timeout && std::chrono::steady_clock::now() >= deadline) return std::nullopt;
  }
}

void bind_child(py::module_& m) {
  py::class_<PyChild>(m, "Child",
                      "A process run inside a namespace (NamespaceManager.spawn), owned through a "
                      "pidfd. A context manager: leaving the block kills and reaps it if it still "
                      "runs; so does its collection, unless it was released.")
      .def_property_readonly(
          "pid", [](const PyChild& c) { return c.pid; }, "Its pid (as the caller sees it).")
      .def_property_readonly(
          "returncode", [](const PyChild& c) { return c.returncode; },
          "None while it runs (or before wait/poll saw it end); then its exit code, or 128 + the "
          "signal that killed it.")
      .def(
          "wait",
          [](PyChild& c, std::optional<double> timeout) {
            auto code = c.wait_for(timeout);
            if (!code) {
              PyErr_SetString(
                  PyExc_TimeoutError,
                  ("child " + std::to_string(c.pid) + " still runs after the timeout").c_str());
              throw py::error_already_set();
            }
            return *code;
          },
          py::arg("timeout") = py::none(),
          "Waits for it to end and reaps it: its exit code, or 128 + the signal that killed it. "
          "TimeoutError when timeout (seconds) passes first.")
      .def(
          "poll", [](PyChild& c) { return c.wait_for(0.0); },
          "Its return code when it has ended (reaping it), else None.")
      .def(
          "send_signal",
          [](PyChild& c, int sig) {
            if (c.returncode) return;
            unwrap(c.live().signal(sig));
          },
          py::arg("signal"), "Sends a signal through the pidfd (no pid-reuse race).")
      .def(
          "terminate",
          [](PyChild& c) {
            if (!c.returncode) unwrap(c.live().signal(SIGTERM));
          },
          "Sends SIGTERM.")
      .def(
          "kill",
          [](PyChild& c) {
            if (!c.returncode) unwrap(c.live().signal(SIGKILL));
          },
          "Sends SIGKILL.")
      .def(
          "release",
          [](PyChild& c) {
            pid_t pid = c.live().release();
            c.released = true;
            return pid;
          },
          "Gives the process up without killing or reaping it (a detached child that should "
          "outlive this object); returns its pid.")
      .def(
          "__enter__", [](py::object self) { return self; }, "Returns the child.")
      .def(
          "__exit__",
          [](PyChild& c, const py::object&, const py::object&, const py::object&) {
            if (c.released || c.returncode) return false;
            (void)c.live().signal(SIGKILL);
            c.wait_for(std::nullopt);
            return false;
          },
          py::arg("type"), py::arg("value"), py::arg("traceback"),
          "Kills and reaps it when it still runs.")
      .def(
          "__repr__",
          [](const PyChild& c) {
            std::string state = c.released     ? "released"
                                : c.returncode ? "returncode=" + std::to_string(*c.returncode)
                                               : "running";
            return "<Child pid=" + std::to_string(c.pid) + " " + state + ">";
          },
          "Its pid and state.");
}

}  // namespace netcell::python
