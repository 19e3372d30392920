#!/usr/bin/env bash
# 01 — a lone network namespace: nothing in it but lo. A plain `ip netns add` leaves lo down
# (not even 127.0.0.1 works); netcell's full isolation brings it up, and still nothing outside
# the namespace is reachable.
set -euo pipefail
source "$(dirname "$0")/common.sh"

cleanup() {
  set +e
  "$NETCELL" destroy lone 2>/dev/null
  ip netns del plain 2>/dev/null
  [ -n "${server:-}" ] && kill "$server" 2>/dev/null
}
trap cleanup EXIT
# Whether lo carries the UP flag in namespace $1.
lo_up() { ip -n "$1" -j link show lo | jq -e '.[0].flags | any(. == "UP")' >/dev/null; }

say "The world stands in for 'the host': it gets 192.0.2.1 and a TCP server on port 8000."
ip addr add 192.0.2.1/32 dev lo
"$NETCELL_RESPONDER" 0.0.0.0 8000 'host\n' & server=$!
wait_listening "" 8000

say "A namespace made by plain iproute2 has only lo, and lo is DOWN."
run ip netns add plain
run ip -n plain -j link | jq -c '.[] | {ifname, flags, operstate}'
links=$(ip -n plain -j link | jq -r '[.[].ifname] | join(",")')
check '[ "$links" = lo ]' "only lo in plain"
check '! lo_up plain' "lo is down in plain"
echo "So even loopback does not work there:"
if ip netns exec plain ping -c1 -W1 127.0.0.1; then fail "ping 127.0.0.1 worked with lo down"; fi
echo "ok: ping 127.0.0.1 in plain fails (lo is down)"
say "Bringing lo up by hand fixes that:"
run ip -n plain link set lo up
run ip netns exec plain ping -c1 -W1 127.0.0.1
run ip netns del plain

say "netcell's full isolation: a new namespace with only lo, already up."
run "$NETCELL" create lone --mode full
run ip -n lone -j link | jq -c '.[] | {ifname, flags, operstate}'
links=$(ip -n lone -j link | jq -r '[.[].ifname] | join(",")')
check '[ "$links" = lo ]' "only lo in lone"
check 'lo_up lone' "lo is up in lone"
run ip -n lone -j addr | jq -c '.[] | {ifname, addr: [.addr_info[] | "\(.local)/\(.prefixlen)"]}'
run ip -n lone -j route
routes=$(ip -n lone -j route | jq length)
check '[ "$routes" = 0 ]' "no routes in lone: there is nowhere to go"
run "$NETCELL" exec lone -- ping -c1 -W1 127.0.0.1
echo "ok: loopback works inside lone"

say "Nothing outside is reachable: not the host's 192.0.2.1, not its services."
if "$NETCELL" exec lone -- ping -c1 -W1 192.0.2.1; then fail "192.0.2.1 answered a ping from lone"; fi
echo "ok: ping 192.0.2.1 from lone fails"
for target in 192.0.2.1 127.0.0.1; do
  if "$NETCELL" exec lone -- nc -z -w1 "$target" 8000; then
    fail "$target:8000 reachable from lone"
  fi
  echo "ok: $target:8000 unreachable from lone"
done
echo "(lone's 127.0.0.1 is its own loopback, not the host's)"
check 'nc -z -w1 192.0.2.1 8000' "the server itself is up: the host reaches it"

run "$NETCELL" destroy lone
check '! ip netns list | grep -qw lone' "lone is gone from ip netns list"
echo "Example 01 done."
