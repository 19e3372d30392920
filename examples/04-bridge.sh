#!/usr/bin/env bash
# 04 — a bridge: several namespaces on one L2 segment. Namespaces on network `lab` reach each
# other over its bridge; a namespace on another network cannot reach them.
set -euo pipefail
source "$(dirname "$0")/common.sh"

cleanup() {
  set +e
  "$NETCELL" destroy red blue green 2>/dev/null
  "$NETCELL" network rm lab elsewhere 2>/dev/null
}
trap cleanup EXIT
addr_of() { "$NETCELL" info "$1" --json | jq -r '.interfaces[] | select(.name == "eth0") | .addresses[0]' | cut -d/ -f1; }

say "A bridged network: one bridge on the host, the subnet's first address on it."
run "$NETCELL" network create lab --subnet 10.50.0.0/24
bridge=$("$NETCELL" network list --json | jq -r '.[] | select(.name == "lab") | .bridge')
run ip -j addr show dev "$bridge" | jq -c '.[] | {ifname, addr: [.addr_info[] | "\(.local)/\(.prefixlen)"]}'

say "Two namespaces on lab; the host end of each one's veth is a port of the bridge."
run "$NETCELL" create red --network lab
run "$NETCELL" create blue --network lab
red=$(addr_of red); blue=$(addr_of blue)
echo "red: $red   blue: $blue"
run ip -j link show master "$bridge" | jq -c '.[] | {ifname, master}'
ports=$(ip -j link show master "$bridge" | jq length)
check '[ "$ports" = 2 ]' "the bridge $bridge has 2 ports"

say "red and blue reach each other:"
run "$NETCELL" exec red -- ping -c1 -W1 "$blue"
run "$NETCELL" exec blue -- ping -c1 -W1 "$red"

say "A third namespace on another network, elsewhere (10.60.0.0/24):"
run "$NETCELL" network create elsewhere --subnet 10.60.0.0/24
run "$NETCELL" create green --network elsewhere
green=$(addr_of green)
echo "green: $green"
for target in "$red" "$blue"; do
  if "$NETCELL" exec green -- ping -c1 -W1 "$target"; then fail "green reached $target"; fi
  echo "ok: green cannot reach $target"
done
if "$NETCELL" exec red -- ping -c1 -W1 "$green"; then fail "red reached green"; fi
echo "ok: red cannot reach green either"
run "$NETCELL" exec green -- ping -c1 -W1 10.60.0.1
echo "(green does reach its own network's gateway: the network works, it is just another one)"

run "$NETCELL" destroy red blue green
run "$NETCELL" network rm lab elsewhere
check '! ip link show "$bridge" >/dev/null 2>&1' "the bridge is gone with its network"
echo "Example 04 done."
