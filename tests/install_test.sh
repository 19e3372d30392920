#!/usr/bin/env bash
# Installs netcell into a scratch prefix, checks what it installed and uses it from another project
# (tests/support/consumer.sh: the seed example through find_package(netcell) and pkg-config,
# linked against libnetcell.so.0 and run, and the library's exports). Runs the examples as root.
#   tests/install_test.sh BUILD_DIR
set -euo pipefail
build=$(realpath "$1")
src=$(cd "$(dirname "$0")/.." && pwd)
scratch=$(mktemp -d /tmp/netcell-install-XXXXXX)
trap 'rm -rf "$scratch"' EXIT
prefix="$scratch/prefix"
cmake --install "$build" --prefix "$prefix" >/dev/null
# The shared library with its soname link and development link; the static one is internal.
library=$(find "$prefix" -name 'libnetcell.so.0.*' -type f)
libdir=$(dirname "$library")
[ "$(readlink "$libdir/libnetcell.so.0")" = "$(basename "$library")" ]
[ "$(readlink "$libdir/libnetcell.so")" = libnetcell.so.0 ]
test -z "$(find "$prefix" -name 'libnetcell.a')"
test -x "$prefix/bin/netcell"
# The CNI plugin, where CNI runtimes look for "type": "netcell"; it answers VERSION.
echo '{"cniVersion":"1.0.0"}' | CNI_COMMAND=VERSION "$prefix/lib/cni/netcell" | grep -q '"1.1.0"'
# Shell completion.
test -f "$prefix/share/bash-completion/completions/netcell"
test -f "$prefix/share/zsh/site-functions/_netcell"
test -f "$prefix/share/fish/vendor_completions.d/netcell.fish"
# The man pages, when scdoc built them.
for page in netcell.8 netcell-topology.5 netcell-service.8 netcell-cni.8; do
  if [ -f "$build/man/$page" ]; then test -f "$prefix/share/man/man${page##*.}/$page"; fi
done
"$src/tests/support/consumer.sh" "$prefix" "$src/examples/seed_api.cc"
