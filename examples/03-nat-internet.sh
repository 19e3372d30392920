#!/usr/bin/env bash
# 03 — reaching "the internet" through NAT. Inside the world, a namespace `wan` with 203.0.113.2
# stands in for the internet; a private namespace reaches it through the host, and the internet
# sees the host's address as the source, never the namespace's private one.
set -euo pipefail
source "$(dirname "$0")/common.sh"

log=$(mktemp /run/wan-log.XXXXXX)
cleanup() {
  set +e
  [ -n "${server:-}" ] && kill "$server" 2>/dev/null
  "$NETCELL" destroy inner 2>/dev/null
  ip netns del wan 2>/dev/null
  rm -f "$log"
}
trap cleanup EXIT

say "'The internet': namespace wan (203.0.113.2/24), joined by a veth to the world (203.0.113.1/24)."
machine wan wan0 203.0.113.1/24 203.0.113.2/24
run ip route add default via 203.0.113.2
echo "wan runs a web server on port 80 that logs each client's address:"
ip netns exec wan "$NETCELL_RESPONDER" 203.0.113.2 80 'HTTP/1.0 200 OK\r\n\r\nhello from the internet\n' "$log" &
server=$!
wait_listening wan 80
# wan has no route back to private addresses: only the host's own 203.0.113.1 can get answers.
run ip -n wan -j route | jq -c '.[]'

say "A private namespace: its own address from netcell's pool, default route via the host."
run "$NETCELL" create inner --mode private
inner_addr=$("$NETCELL" info inner --json | jq -r '.interfaces[] | select(.name == "eth0") | .addresses[0]' | cut -d/ -f1)
echo "inner's address: $inner_addr"
run nft list set ip netcell nat_src

say "From inside, the internet answers a ping and serves a page:"
run "$NETCELL" exec inner -- ping -c1 -W1 203.0.113.2
page=$("$NETCELL" exec inner -- sh -c 'printf "GET / HTTP/1.0\r\n\r\n" | nc -w 2 203.0.113.2 80')
printf '%s\n' "$page"
check 'grep -q "hello from the internet" <<<"$page"' "inner fetched the page from 203.0.113.2"

say "What the internet saw as the client's address:"
run cat "$log"
check 'grep -qx 203.0.113.1 "$log"' "wan saw the host's address 203.0.113.1 (masqueraded)"
check '! grep -qx "$inner_addr" "$log"' "wan never saw inner's private address $inner_addr"

say "Without the host's NAT, the private address could not come back: wan has no route to it."
if ip netns exec wan ping -c1 -W1 "$inner_addr"; then fail "wan reached $inner_addr directly"; fi
echo "ok: wan cannot reach $inner_addr"
echo "Example 03 done."
