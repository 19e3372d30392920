#!/usr/bin/env bash
# 06 — a topology file: three namespaces in a chain a - b - c (examples/three-hosts.yaml). b is a
# router with two legs that does not forward: a reaches b, b reaches c, a never reaches c, though
# a and c have routes to each other via b. `netcell up` brings it up, `netcell down` removes it.
set -euo pipefail
source "$(dirname "$0")/common.sh"

file="$examples_dir/three-hosts.yaml"
cleanup() { set +e; "$NETCELL" down "$file" >/dev/null 2>&1; }
trap cleanup EXIT

say "The file:"
grep -v '^#' "$file"

say "Plan first (--dry-run changes nothing), then up:"
run "$NETCELL" up --dry-run "$file"
start=$(date +%s%N)
run "$NETCELL" up "$file"
echo "up took $(( ($(date +%s%N) - start) / 1000000 )) ms"

say "b has two legs:"
run ip -n b -4 -br addr show
check '[ "$(ip -n b -4 -j addr show | jq "[.[].addr_info[].local] | length")" = 3 ]' \
  "b has lo, to-a and to-c addressed"

say "Neighbours reach each other:"
check 'ip netns exec a ping -c1 -W1 10.0.1.2 >/dev/null' "a -> b (10.0.1.2)"
check 'ip netns exec b ping -c1 -W1 10.0.2.2 >/dev/null' "b -> c (10.0.2.2)"
check 'ip netns exec c ping -c1 -W1 10.0.2.1 >/dev/null' "c -> b (10.0.2.1)"

say "a has a route to c's subnet via b, but b does not forward:"
run ip -n a -4 route show
check '! ip netns exec a ping -c1 -W1 10.0.2.2 >/dev/null' "a -> c fails"
check '! ip netns exec c ping -c1 -W1 10.0.1.1 >/dev/null' "c -> a fails"

say "Running up again changes nothing:"
out=$("$NETCELL" up "$file" --json)
check '[ "$(jq .changed <<<"$out")" = 0 ]' "second up: 0 changes"

say "down removes exactly what the file made:"
run "$NETCELL" down "$file"
check '[ -z "$(ip netns list)" ]' "no namespace left"
check '[ -z "$("$NETCELL" list --json | jq -r ".[].name")" ]' "no record left"
