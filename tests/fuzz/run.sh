#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, with ASan + UBSan) and runs each for SECONDS (default 10),
# starting from the corpus kept in tests/fuzz/corpus/TARGET (copied, so the tree stays clean).
#   tests/fuzz/run.sh [SECONDS] [--save]   CI runs 10 s each; a long run: tests/fuzz/run.sh 3600
# --save merges new interesting inputs back into the kept corpus (minimised).
set -euo pipefail
seconds=${1:-10}
save=${2:-}
src=$(cd "$(dirname "$0")/../.." && pwd)
out=${FUZZ_BUILD_DIR:-$src/build-fuzz}
mkdir -p "$out"
flags=(-std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
       -I"$src/include" -iquote "$src/src")
core=("$src/src/core/types.cc" "$src/src/core/error.cc" "$src/src/core/policy.cc")
clang++ "${flags[@]}" "$src/tests/fuzz/fuzz_parsers.cc" "$src/src/linux/nflog.cc" \
  "$src/src/core/flowlog.cc" "$src/src/core/files.cc" "$src/src/core/fault.cc" \
  "$src/src/core/validate.cc" "$src/src/core/ipam.cc" "${core[@]}" -lnetfilter_log \
  -o "$out/fuzz_parsers"
clang++ "${flags[@]}" "$src/tests/fuzz/fuzz_record.cc" "$src/src/core/serialize.cc" "${core[@]}" \
  -o "$out/fuzz_record"
clang++ "${flags[@]}" "$src/tests/fuzz/fuzz_topology.cc" "$src/src/core/topology_parse.cc" \
  "$src/src/core/validate.cc" "$src/src/core/ipam.cc" "$src/src/core/files.cc" \
  "$src/src/core/fault.cc" "${core[@]}" \
  -lyaml-cpp -o "$out/fuzz_topology"
# The resolver's DNS wire functions (service/resolver.h) live beside code that needs the whole
# library, so fuzz_dns links the library itself, built by its own CMake list with clang and the
# same sanitizers (ccache keeps a rebuild cheap).
lib="$out/lib"
launcher=()
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
lib_flags="-O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined"
cmake -S "$src" -B "$lib" -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=None \
  -DNETCELL_BUILD_TESTS=OFF "${launcher[@]}" "-DCMAKE_CXX_FLAGS=$lib_flags" \
  >"$out/lib-cmake.log" 2>&1 || { tail -20 "$out/lib-cmake.log"; exit 1; }
ninja -C "$lib" -j "${FUZZ_JOBS:-2}" netcell_resolver >"$out/lib-build.log" 2>&1 ||
  { tail -40 "$out/lib-build.log"; exit 1; }
# shellcheck disable=SC2046  # pkg-config's words are separate arguments
clang++ "${flags[@]}" -I"$src" "$src/tests/fuzz/fuzz_dns.cc" "$lib/libnetcell_resolver.a" \
  "$lib/libnetcell.a" $(pkg-config --libs ldns libmnl libnftnl libnetfilter_log yaml-cpp) -ldl \
  -lpthread -o "$out/fuzz_dns"
for target in parsers record topology dns; do
  kept="$src/tests/fuzz/corpus/$target"
  work="$out/corpus-$target"
  rm -rf "$work" && mkdir -p "$work" && cp "$kept"/* "$work"/
  echo "== fuzz_$target for ${seconds}s"
  log="$out/fuzz_$target.log"
  if ! "$out/fuzz_$target" -max_total_time="$seconds" -timeout=5 -rss_limit_mb=2048 \
      -artifact_prefix="$out/" "$work" >"$log" 2>&1; then
    tail -40 "$log"
    echo "fuzz_$target found a crash; the input is in $out/" >&2
    exit 1
  fi
  grep -E "Done [0-9]+ runs" "$log" || true
  if [ "$save" = "--save" ]; then
    "$out/fuzz_$target" -merge=1 "$kept" "$work" >/dev/null 2>&1
  fi
done
echo "fuzzing done: no crash"
