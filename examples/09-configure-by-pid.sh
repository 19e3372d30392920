#!/usr/bin/env bash
# 09 — configuring a running process's network from outside, by its pid (the way container
# runtimes do it). A process already lives in a network namespace of its own; netcell adopts
# that namespace (`create --netns-of PID`), wires it up, and on destroy takes its additions away
# again, while the process keeps running.
set -euo pipefail
source "$(dirname "$0")/common.sh"

log=$(mktemp /run/wan-log.XXXXXX)
cleanup() {
  set +e
  [ -n "${server:-}" ] && kill "$server" 2>/dev/null
  [ -n "${inner_server:-}" ] && kill "$inner_server" 2>/dev/null
  "$NETCELL" destroy app 2>/dev/null
  [ -n "${app_pid:-}" ] && kill "$app_pid" 2>/dev/null
  ip netns del wan 2>/dev/null
  rm -f "$log"
}
trap cleanup EXIT
# inside CMD...: runs CMD in the network namespace of the app process.
inside() { nsenter -t "$app_pid" -n "$@"; }

say "'The internet': namespace wan (203.0.113.2) behind the world (203.0.113.1), as in example 03."
machine wan wan0 203.0.113.1/24 203.0.113.2/24
run ip route add default via 203.0.113.2
ip netns exec wan "$NETCELL_RESPONDER" 203.0.113.2 80 'hello from the internet\n' "$log" &
server=$!
wait_listening wan 80

say "A process that already runs in a network namespace of its own (nobody named it):"
echo '$ unshare --net sleep 600 &'
unshare --net sleep 600 &
app_pid=$!
for i in $(seq 50); do
  [ "$(readlink "/proc/$app_pid/ns/net")" != "$(readlink /proc/self/ns/net)" ] && break
  sleep 0.1
done
echo "the process: pid $app_pid, $(readlink "/proc/$app_pid/ns/net")"
check '[ "$(readlink /proc/$app_pid/ns/net)" != "$(readlink /proc/self/ns/net)" ]' \
  "pid $app_pid lives in its own network namespace"
run inside ip -j link | jq -c '.[] | {ifname, flags}'
run ip netns identify "$app_pid"
check '[ -z "$(ip netns identify "$app_pid")" ]' "iproute2 knows no name for it"

say "netcell adopts it by pid: names it, and sets it up as a private namespace with a published port."
run "$NETCELL" create app --netns-of "$app_pid" --mode private --publish 8080:80
run "$NETCELL" info app
check '"$NETCELL" info app | grep -q "adopted from pid $app_pid"' "info says it was adopted from pid $app_pid"
run ip netns list
check '[ "$(ip netns identify "$app_pid")" = app ]' "ip netns identify $app_pid says app"
check '[ "$("$NETCELL" find-pid "$app_pid")" = app ]' "netcell find-pid $app_pid says app"
addr=$("$NETCELL" info app --json | jq -r '.interfaces[] | select(.name == "eth0") | .addresses[0]')
run inside ip -j addr show eth0 | jq -c '.[] | {ifname, addr: [.addr_info[] | "\(.local)/\(.prefixlen)"]}'
seen=$(inside ip -j addr show eth0 | jq -r '.[0].addr_info[] | select(.family == "inet") | "\(.local)/\(.prefixlen)"')
check '[ "$seen" = "$addr" ]' "the process's own namespace now has eth0 with $addr"

say "The process's namespace reaches the internet through NAT:"
run inside ping -c1 -W1 203.0.113.2
reply=$(inside nc -w 2 203.0.113.2 80 </dev/null)
check '[ "$reply" = "hello from the internet" ]' "a TCP connection from inside got the internet's reply"
check 'grep -qx 203.0.113.1 "$log"' "the internet saw the host's address (masqueraded)"

say "And a server in it is reachable on the published port:"
nsenter -t "$app_pid" -n "$NETCELL_RESPONDER" 0.0.0.0 80 'hello from app\n' &
inner_server=$!
for i in $(seq 50); do inside ss -Hltn 'sport = :80' | grep -q . && break; sleep 0.1; done
reply=$(nc -w 2 127.0.0.1 8080 </dev/null)
kill "$inner_server"; wait "$inner_server" 2>/dev/null || true; inner_server=
check '[ "$reply" = "hello from app" ]' "127.0.0.1:8080 reaches port 80 inside the process's namespace"

say "destroy takes netcell's additions and the name away, but not the namespace or the process:"
host_if=$("$NETCELL" info app --json | jq -r .host_interface)
run "$NETCELL" destroy app
check 'kill -0 "$app_pid"' "pid $app_pid is still running"
run inside ip -j link | jq -c '.[] | {ifname}'
check '! inside ip link show eth0 >/dev/null 2>&1' "its namespace has no eth0 any more"
check '! ip link show "$host_if" >/dev/null 2>&1' "the host end $host_if is gone"
check '[ ! -e /run/netns/app ] && [ -z "$(ip netns identify "$app_pid")" ]' "/run/netns/app is gone"
check '! nft list table ip netcell >/dev/null 2>&1' "netcell's firewall table (with the published port) is gone with its last user"

run kill "$app_pid"
wait "$app_pid" 2>/dev/null || true
app_pid=
echo "Example 09 done."
