#!/usr/bin/env bash
# The binding installs offline with pip the way the README says, for Debian's own python3:
# `pip install --no-build-isolation --no-index ./python` into a throwaway venv
# (--system-site-packages: setuptools and pytest are Debian's), which builds the extension with
# netcell's CMake build from this source tree; then, from outside the source tree, the installed
# package imports, carries its stubs, passes the simulation-backend tests, and uninstalls cleanly.
#   python/tests/install_test.sh SOURCE_DIR [PYTHON]
set -euo pipefail
fail() { echo "python.install: $*" >&2; exit 1; }
src=$(realpath "$1")
python=${2:-/usr/bin/python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$python" -c 'import setuptools' 2>/dev/null || fail "no setuptools for $python (python3-setuptools)"
"$python" -m venv --system-site-packages "$tmp/venv" || fail "no venv for $python (python3-venv)"
# pip builds beside setup.py (build/, *.egg-info): a copy keeps the source tree untouched.
cp -r "$src/python" "$tmp/python"
rm -rf "$tmp/python/build" "$tmp/python"/*.egg-info
export NETCELL_SOURCE_DIR=$src NETCELL_CMAKE_BUILD_DIR=$tmp/cmake PIP_NO_INDEX=1
export PIP_DISABLE_PIP_VERSION_CHECK=1 CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-2}
venv_python=$tmp/venv/bin/python
start=$SECONDS
"$venv_python" -m pip install -q --no-build-isolation --no-index "$tmp/python" >"$tmp/pip.log" 2>&1 ||
  { tail -40 "$tmp/pip.log"; fail "pip install failed"; }
echo "python.install: built and installed in $((SECONDS - start)) s"
site=$("$venv_python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
for file in __init__.py _enums.py _netcell.pyi py.typed; do
  [ -f "$site/netcell/$file" ] || fail "the installed package lacks netcell/$file"
done
ls "$site"/netcell/_netcell.cpython-*.so >/dev/null || fail "the installed package lacks the extension"
cd "$tmp"
unset PYTHONPATH
where=$("$venv_python" -c 'import netcell; print(netcell.__file__)')
[ "$where" = "$site/netcell/__init__.py" ] || fail "import netcell found $where, not the installed one"
"$venv_python" - <<'PY' || fail "the installed module's smoke test failed"
import os, tempfile, netcell
mgr = netcell.NamespaceManager(backend="simulation", run_dir=tempfile.mkdtemp())
with mgr.namespace(netcell.NamespaceConfig.private_network(os.getpid(), name="smoke")) as info:
    assert info.mode is netcell.IsolationMode.PRIVATE and info.address is not None
    assert mgr.run("smoke", ["sh", "-c", "exit 7"]).returncode == 7
assert mgr.list() == []
PY
mkdir tests
cp "$src/python/tests/test_simulation.py" "$src/python/tests/test_api.py" tests/
cp -r "$src/python/examples" examples
"$venv_python" -m pytest -q -p no:cacheprovider tests/test_simulation.py tests/test_api.py ||
  fail "the simulation tests failed against the installed package"
"$venv_python" -m pip uninstall -q -y netcell || fail "pip uninstall failed"
[ ! -e "$site/netcell" ] || fail "pip uninstall left $site/netcell"
! "$venv_python" -c 'import netcell' 2>/dev/null || fail "netcell still imports after uninstall"
echo "python.install: ok"
