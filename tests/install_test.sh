#!/usr/bin/env bash
# Installs netcell into a scratch prefix and builds the seed example against it twice: as a CMake
# package (find_package(netcell)) and through pkg-config. Needs no privileges.
#   tests/install_test.sh BUILD_DIR
set -euo pipefail
build=$(realpath "$1")
src=$(cd "$(dirname "$0")/.." && pwd)
scratch=$(mktemp -d /tmp/netcell-install-XXXXXX)
trap 'rm -rf "$scratch"' EXIT
cmake --install "$build" --prefix "$scratch/prefix" >/dev/null
mkdir -p "$scratch/consumer"
cp "$src/examples/seed_api.cc" "$scratch/consumer/"
cat > "$scratch/consumer/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.25)
project(consumer CXX)
set(CMAKE_CXX_STANDARD 20)
find_package(netcell REQUIRED)
add_executable(seed seed_api.cc)
target_link_libraries(seed PRIVATE netcell::netcell)
CMAKE
cmake -S "$scratch/consumer" -B "$scratch/consumer/build" -G Ninja \
  -DCMAKE_PREFIX_PATH="$scratch/prefix" >/dev/null
cmake --build "$scratch/consumer/build" >/dev/null
test -x "$scratch/consumer/build/seed"
export PKG_CONFIG_PATH="$scratch/prefix/lib/pkgconfig:$(find "$scratch/prefix" -name pkgconfig -type d | head -1)"
g++ -std=c++20 "$scratch/consumer/seed_api.cc" -o "$scratch/seed-pc" \
  $(pkg-config --cflags --libs netcell)
test -x "$scratch/seed-pc"
test -x "$scratch/prefix/bin/netcell"
# Shell completion.
test -f "$scratch/prefix/share/bash-completion/completions/netcell"
test -f "$scratch/prefix/share/zsh/site-functions/_netcell"
test -f "$scratch/prefix/share/fish/vendor_completions.d/netcell.fish"
# The man pages, when scdoc built them.
for page in netcell.8 netcell-topology.5; do
  if [ -f "$build/man/$page" ]; then test -f "$scratch/prefix/share/man/man${page##*.}/$page"; fi
done
echo "find_package(netcell) and pkg-config netcell both build the seed example"
