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
# shellcheck disable=SC2046  # pkg-config's words are separate arguments
clang++ "${flags[@]}" -I"$src" "$src/tests/fuzz/fuzz_dns.cc" "$src/service/dns_wire.cc" \
  "${core[@]}" $(pkg-config --libs ldns) -o "$out/fuzz_dns"
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
