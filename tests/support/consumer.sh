#!/usr/bin/env bash
# Uses an installed netcell the way another project does: builds the seed example against it as a
# CMake package (find_package(netcell)) and through pkg-config, checks that both link the shared
# library, runs both (as root, each inside a throwaway world), and checks what libnetcell.so.0
# exports: only netcell's public API, under version NETCELL_0, and none of the symbols of the
# libraries it links (libmnl, libnftnl, yaml-cpp), which it needs as DT_NEEDED entries instead.
# Used by the install test (a scratch prefix) and the package test (/usr of a throwaway root).
#   tests/support/consumer.sh PREFIX SEED_SOURCE
set -euo pipefail
prefix=$(realpath "$1")
seed_source=$(realpath "$2")
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/netcell-consumer-XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "consumer: $*" >&2; exit 1; }

export PKG_CONFIG_PATH
PKG_CONFIG_PATH=$(find "$prefix"/lib* -maxdepth 2 -name pkgconfig -type d | paste -sd:)
libdir=$(realpath "$(pkg-config --variable=libdir netcell)")
case "$libdir" in "$prefix"/*) ;; *) fail "pkg-config found a netcell outside $prefix: $libdir" ;; esac
library="$libdir/libnetcell.so.0"

cp "$seed_source" "$work/seed_api.cc"
cat > "$work/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.25)
project(consumer CXX)
set(CMAKE_CXX_STANDARD 20)
find_package(netcell REQUIRED)
add_executable(seed seed_api.cc)
target_link_libraries(seed PRIVATE netcell::netcell)
CMAKE
cmake -S "$work" -B "$work/build" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$work/build" >/dev/null
# shellcheck disable=SC2046  # pkg-config's flags are words
g++ -std=c++20 "$work/seed_api.cc" -o "$work/seed-pc" $(pkg-config --cflags --libs netcell)

# Both link libnetcell.so.0 from this prefix (the CMake one through its RUNPATH, if it needs one).
for seed in "$work/build/seed" "$work/seed-pc"; do
  readelf -d "$seed" | grep -q 'NEEDED.*\[libnetcell\.so\.0\]' ||
    fail "$seed does not link libnetcell.so.0"
  found=$(LD_LIBRARY_PATH=$([ "$seed" = "$work/seed-pc" ] && echo "$libdir") ldd "$seed" |
    awk '$1 == "libnetcell.so.0" { print $3 }')
  [ "$(realpath "$found")" = "$(realpath "$library")" ] ||
    fail "$seed loads libnetcell.so.0 from '$found', not $library"
done

# The library: its soname, what it links, what it exports.
readelf -d "$library" | grep -q 'SONAME.*\[libnetcell\.so\.0\]' || fail "soname is not libnetcell.so.0"
for needed in libmnl.so.0 libnftnl.so libyaml-cpp.so; do
  readelf -d "$library" | grep -q "NEEDED.*\[$needed" || fail "libnetcell.so.0 does not link $needed"
done
# Names the public headers declare at namespace scope: types, aliases, functions, and nested
# namespaces of their own (netcell::rootless).
public=$(grep -hE '^[A-Za-z]' "$prefix"/include/netcell/*.h |
  sed -nE 's/^(class|struct|union|enum class|enum) ([A-Za-z_][A-Za-z0-9_]*).*/\2/p
            s/^namespace netcell::([A-Za-z_][A-Za-z0-9_]*) \{.*/\1/p
            s/^using ([A-Za-z_][A-Za-z0-9_]*) =.*/\1/p
            s/^[^#(]*[^A-Za-z0-9_(]([A-Za-z_][A-Za-z0-9_]*)\(.*/\1/p' | sort -u)
exported=$(nm -D --defined-only "$library" | awk '{ print $3 }' | c++filt)
[ "$(wc -l <<<"$exported")" -gt 20 ] || fail "libnetcell.so.0 exports almost nothing"
bad=$(while IFS= read -r symbol; do
  case "$symbol" in NETCELL_0 | NETCELL_0@@NETCELL_0) continue ;; esac
  name=${symbol%@@NETCELL_0}
  [ "$name" != "$symbol" ] || { echo "unversioned: $symbol"; continue; }
  name=$(sed -E 's/^(typeinfo name for|typeinfo for|vtable for|non-virtual thunk to) //' <<<"$name")
  head=$(sed -nE 's/^netcell::([A-Za-z_][A-Za-z0-9_]*).*/\1/p' <<<"$name")
  grep -qx -- "${head:-.}" <<<"$public" || echo "$symbol"
done <<<"$exported")
[ -z "$bad" ] || fail "libnetcell.so.0 exports names the public headers do not declare:
$bad"
grep -q 'NamespaceManager::create' <<<"$exported" || fail "NamespaceManager::create is not exported"

if [ "$(id -u)" != 0 ]; then
  echo "consumer: not root: the seed examples were built and linked, not run"
  exit 0
fi
"$here/world.sh" "$work/build/seed" >/dev/null || fail "the CMake-built seed example failed"
"$here/world.sh" env LD_LIBRARY_PATH="$libdir" "$work/seed-pc" >/dev/null ||
  fail "the pkg-config-built seed example failed"
echo "consumer: find_package(netcell) and pkg-config netcell build the seed example, which runs" \
  "against libnetcell.so.0 ($(wc -l <<<"$exported") public symbols exported)"
